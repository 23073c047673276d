"""What the viewer talks to: a board on a serial port or a pyserial URL (`PortTarget`), or a
virtual board it builds and starts itself, and starts again when it dies (`VirtualBoardTarget`).
Both open a `protocol.Link`; failures are one-line `TargetError`s.

`open(deadline)` returns by the deadline (time.monotonic()), whatever is on the other side:
a socket whose connect hangs, a device whose open blocks, QEMU that never listens or never
sends HELLO. So the viewer's --timeout holds from the first connection on.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from patchcam.host import protocol as pp
from patchcam.paths import REPO

T = TypeVar("T")


class TargetError(RuntimeError):
    """The board cannot be reached right now (the message is one line)."""
    fatal = False  # True: retrying cannot help (e.g. the firmware does not build)


class TargetFatal(TargetError):
    fatal = True


class PortTarget:
    """A serial device or a pyserial URL (socket://host:port, rfc2217://...)."""

    def __init__(self, url: str, baud: int = 921600) -> None:
        self.url, self.baud = url, baud
        self.description = url if "://" in url else f"{url} @ {baud} baud"
        self.opened = False  # once open, a failure to reopen may pass (a board re-plugged)

    def check(self) -> None:
        """Fail fast with one line when a device path does not exist at all."""
        if "://" not in self.url and not Path(self.url).exists():
            raise TargetError(f"no such port {self.url} ({available_ports()})")

    def open(self, deadline: float | None = None) -> pp.Link:
        """The link, or a one-line TargetError saying why not and what to do about it;
        TargetFatal for a port that never opened and cannot by waiting (permission, not a
        serial device, a malformed URL). Returns or raises by `deadline` (time.monotonic()):
        pyserial's own waits (5 s to connect a socket://, 3 s per rfc2217 option, a device
        whose open blocks) run in a thread that is left behind when they take longer."""
        import serial
        try:
            link = by_deadline(deadline, lambda: pp.Link(self.url, baudrate=self.baud,
                                                         timeout=0.02), pp.Link.close)
        except Late:
            raise TargetError(f"{self.description} did not open within the timeout (a socket "
                              "nothing answers, or a device that does not respond)") from None
        except (serial.SerialException, OSError, ValueError) as e:
            text, lasting = open_failure(self.url, self.description, e)
            raise (TargetFatal if lasting and not self.opened else TargetError)(text) \
                from None
        self.opened = True
        return link

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        pass


class Late(Exception):
    """by_deadline: the call had not returned by the deadline."""


def by_deadline(deadline: float | None, call: Callable[[], T],
                discard: Callable[[T], object]) -> T:
    """call()'s result (or exception) if it comes by deadline (time.monotonic(); None: wait
    as long as it takes); else Late. The call goes on in a daemon thread, and a result that
    comes after the deadline is handed to discard (a link opened too late is closed)."""
    if deadline is None:
        return call()
    outcome: list[tuple[bool, T | BaseException]] = []  # (returned, value or exception)
    lock, done = threading.Lock(), threading.Event()
    gave_up = False

    def work() -> None:
        try:
            out: tuple[bool, T | BaseException] = (True, call())
        except BaseException as e:  # noqa: BLE001 - handed to the caller as it is
            out = (False, e)
        with lock:
            outcome.append(out)
            late = gave_up
        done.set()
        if late and out[0]:
            discard(out[1])

    threading.Thread(target=work, daemon=True, name="patchcam-open").start()
    done.wait(max(0.0, deadline - time.monotonic()))
    with lock:
        if not outcome:
            gave_up = True
            raise Late
    returned, value = outcome[0]
    if not returned:
        raise value
    return value


def available_ports() -> str:
    try:
        from serial.tools import list_ports
        ports = [p.device for p in list_ports.comports()]
    except Exception:  # noqa: BLE001 - only a hint in an error message
        ports = []
    return f"ports here: {', '.join(ports)}" if ports else "no serial ports found here"


def open_failure(url: str, description: str, e: BaseException) -> tuple[str, bool]:
    """(one line saying why url does not open and what helps, whether waiting cannot help),
    from the errno somewhere in e's chain (pyserial wraps the OSError, or only its text)."""
    import errno
    n = _errno(e)
    if n in (errno.EACCES, errno.EPERM):
        hint = ("; add yourself to the dialout group: sudo usermod -aG dialout $USER, then "
                "log in again") if sys.platform.startswith("linux") else ""
        return f"cannot open {url}: permission denied{hint}", True
    if n == errno.ECONNREFUSED:
        return (f"connection refused: nothing listens at {url} (is the board, or QEMU, "
                "running?)"), False
    if n == errno.EISDIR:
        return f"cannot open {url}: it is a directory, not a serial port", True
    if n == errno.ENOTTY:
        return (f"cannot open {url}: not a serial port (a terminal device such as "
                "/dev/ttyACM0 or /dev/ttyUSB0)"), True
    if n == errno.EBUSY:
        return (f"cannot open {url}: port busy (another program has it open: a serial "
                "monitor, another viewer?)"), False
    if n == errno.ENOENT:
        return f"no such port {url} ({available_ports()})", False
    return f"cannot open {description}: {_one_line(e)}", isinstance(e, ValueError)


def _errno(e: BaseException) -> int | None:
    """The first errno in e, its causes or contexts, or in its text ("[Errno 13] ...")."""
    import re
    seen: BaseException | None = e
    while seen is not None:
        n = getattr(seen, "errno", None)
        if isinstance(n, int):
            return n
        if seen.args and isinstance(seen.args[0], int):  # termios.error(25, '...')
            return seen.args[0]
        seen = seen.__cause__ or seen.__context__
    m = re.search(r"\[Errno (\d+)\]", str(e))
    return int(m.group(1)) if m else None


def _one_line(e: BaseException) -> str:
    """The first line of e's message (a status line and an exit message are one line)."""
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


class VirtualBoardTarget:
    """A virtual board (host process over a pty, or qemu_m7 under QEMU) that the viewer builds
    and starts itself with patchcam.targets.boards, and starts again when it dies or resets.

    feed="camera" (qemu_m7's default) gives frames through the board's virtual camera, a FIFO
    read by Arm semihosting, and asks for each with SET STREAM 1: QEMU's emulated UART takes
    only ~18 kB/s inbound, so a 160x128 RGB frame would need over 3 s as FRAME messages. The
    RESULT then names the camera frame (source CAMERA, ids from 1). feed="frame" sends FRAME
    messages over the serial line, as with a real board (the host board's default: a pty is
    fast)."""

    def __init__(self, kind: str, model_dir: Path, feed: str | None = None,
                 build_dir: Path | None = None) -> None:
        from patchcam.targets import boards
        if kind not in boards.KINDS:
            raise TargetError(f"unknown virtual board {kind!r}; choose from "
                              f"{', '.join(boards.KINDS)}")
        self.kind, self.model_dir = kind, Path(model_dir)
        self.feed = feed or ("camera" if kind == "qemu_m7" else "frame")
        # Never next to the model: apps/<app>/generated/ is committed, build outputs are not.
        self.build_dir = build_dir or (REPO / "build" / "viewer" / "firmware" /
                                       f"{self.model_dir.parent.name}-{self.model_dir.name}")
        self.description = f"virtual board {kind}"
        self.board = None
        self.starts = 0
        self.firmware: Path | None = None
        self._camera: _CameraFifo | None = None
        self._cam_frames = 0

    def check(self) -> None:
        """Fail with one line when the board cannot run here; else build its firmware now
        (TargetFatal when it does not build), so that no deadline is spent compiling."""
        from patchcam.targets import boards
        if not boards.have_board(self.kind):
            need = ("gcc" if self.kind == "host" else
                    "gcc-arm-none-eabi and qemu-system-arm (make setup)")
            raise TargetError(f"cannot run the {self.kind} board here: install {need}")
        self.build()

    def build(self) -> Path:
        """The board's firmware for the model, rebuilt only when a source changed."""
        from patchcam.targets import boards
        if self.firmware is not None:
            return self.firmware
        stamp = self.build_dir / f"{self.kind}-firmware.txt"
        self.build_dir.mkdir(parents=True, exist_ok=True)
        key = _sources_hash([self.model_dir, REPO / "firmware"], list(BUILD_SCRIPTS))
        if stamp.is_file():
            path, _, old = stamp.read_text().partition("\n")
            if old.strip() == key and Path(path).is_file():
                self.firmware = Path(path)
                return self.firmware
        try:
            self.firmware = boards.build_board(self.kind, self.model_dir, self.build_dir,
                                               sanitize=False)
        except Exception as e:  # noqa: BLE001 - compiler output: first line + where
            raise TargetFatal(f"cannot build the {self.kind} firmware for "
                              f"{self.model_dir}: {_one_line(e)}") from None
        stamp.write_text(f"{self.firmware}\n{key}\n")
        return self.firmware

    def open(self, deadline: float | None = None) -> pp.Link:
        """Start the board and return its link once it said HELLO; a one-line TargetError
        when it does not start by deadline (time.monotonic(); None: within START_TIMEOUT).
        The firmware is built first when check() has not built it."""
        from patchcam.targets import boards
        self.close()
        fw = self.build()
        left = START_TIMEOUT if deadline is None else deadline - time.monotonic()
        if left <= 0:
            raise TargetError(f"cannot start the {self.kind} board: no time left before the "
                              "timeout")
        camera = None
        if self.feed == "camera":
            w, h, c = model_input_shape(self.model_dir)
            self._camera = _CameraFifo(w, h, pp.PixFmt.GRAY8 if c == 1 else pp.PixFmt.RGB888)
            camera = self._camera.path
        try:
            self.board = boards.start_board(self.kind, fw, camera=camera, timeout=left)
        except Exception as e:  # noqa: BLE001 - a start failure, shown as one line
            self.close()
            raise TargetError(f"cannot start the {self.kind} board: {_one_line(e)}") from None
        self.starts += 1
        self._cam_frames = 0
        return self.board.link

    def send_frame(self, link: pp.Link, fid: int, pixels: bytes, w: int, h: int,
                   fmt: pp.PixFmt) -> tuple[int, pp.Source]:
        """Hand one frame to the board; returns the (frame_id, source) its RESULT will carry."""
        if self._camera is None:
            link.send_frame(fid, pixels, w, h, fmt)
            return fid, pp.Source.FRAME
        link.send(pp.Set(pp.SetKey.STREAM, 1))
        self._camera.put(pixels)
        self._cam_frames += 1
        return self._cam_frames, pp.Source.CAMERA

    def alive(self) -> bool:
        b = self.board
        return b is not None and b.alive()

    def close(self) -> None:
        if self.board is not None:
            try:
                self.board.close()
            except Exception:  # noqa: BLE001 - the board may be dead already
                pass
            self.board = None
        if self._camera is not None:
            self._camera.close()
            self._camera = None


START_TIMEOUT = 30.0  # seconds a virtual board may take to say HELLO when no deadline is given

# The Python that decides how the firmware is built: a change here rebuilds it too.
BUILD_SCRIPTS = tuple(REPO / "patchcam" / "targets" / f
                      for f in ("boards.py", "hostbuild.py", "armbuild.py"))


def _sources_hash(dirs: list[Path], files: list[Path]) -> str:
    """SHA-256 over the C sources and headers under dirs, and files (names and contents)."""
    h = hashlib.sha256()
    paths = [f for d in dirs for f in sorted(Path(d).rglob("*"))
             if f.suffix in (".c", ".h", ".ld", ".S", ".s")] + [f for f in files if f.is_file()]
    for f in paths:
        h.update(str(f).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def model_input_shape(model_dir: Path) -> tuple[int, int, int]:
    """(width, height, channels) from a generated model.h."""
    import re
    text = (Path(model_dir) / "model.h").read_text()
    v = {k: int(re.search(rf"#define\s+MODEL_INPUT_{k}\s+(\d+)", text).group(1))
         for k in ("W", "H", "C")}
    return v["W"], v["H"], v["C"]


class _CameraFifo:
    """A named pipe in a temporary folder that a virtual board reads as its camera: a PCAM
    header (docs/qemu_m7.md), then one frame per put(). A thread does the writing, so a board
    that stops reading never blocks the viewer."""

    def __init__(self, width: int, height: int, fmt: pp.PixFmt) -> None:
        import os
        import queue
        import struct
        import tempfile
        import threading
        self._dir = tempfile.TemporaryDirectory(prefix="patchcam-camera-")
        self.path = Path(self._dir.name) / "camera.fifo"
        os.mkfifo(self.path)
        self._q: queue.Queue[bytes | None] = queue.Queue()
        self._q.put(b"PCAM" + struct.pack("<HHB", width, height, int(fmt)) + bytes(7))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import errno
        import os
        fd = -1
        while fd < 0 and not self._stop.is_set():  # wait for the board to open its camera
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO:
                    return
                self._stop.wait(0.02)
        if fd < 0:
            return
        os.set_blocking(fd, True)
        try:
            while (data := self._q.get()) is not None:
                view = memoryview(data)
                while len(view):
                    n = os.write(fd, view)
                    view = view[n:]
        except OSError:
            pass  # the board went away; the viewer notices on the serial line
        finally:
            os.close(fd)

    def put(self, data: bytes) -> None:
        self._q.put(bytes(data))

    def close(self) -> None:
        self._stop.set()
        self._q.put(None)
        self._thread.join(1.0)
        self._dir.cleanup()
