"""Start a virtual board serving the wire protocol and hand back its Link
(docs/design.md §4.6, §5.4).

    model_dir = prepare_model(graph, AppSpec.detect("demo", graph, ["person"]), "build/demo")
    with start_board("host", model_dir) as board:        # or "qemu_m7"
        print(board.hello)                               # protocol.Hello
        board.link.send_frame(1, pixels, w, h, PixFmt.RGB565)
        result = board.link.wait_for(Result, timeout=10)

- "host": firmware/app/app_main.c built for the POSIX host board (AddressSanitizer + UBSan by
  default), serving the protocol on a pseudo-terminal it opens itself; `board.url` is the
  slave (/dev/pts/N), which any serial program can open like a real board's /dev/ttyACM0.
- "qemu_m7": the same app built for Cortex-M7 and booted under QEMU with UART0 on a TCP
  socket; `board.url` is "socket://127.0.0.1:PORT". Frames over the UART are slow
  (~18 kB/s inbound), so pass `camera=` (a PCAM file, see `camera_file`) and SET STREAM to
  feed frames through the semihosting camera instead.

Both take `camera=`: bytes of a PCAM camera file, or a path to one (a FIFO works for qemu_m7).
`VirtualBoard.close()` (or leaving the `with`) stops the board; `.log()` returns what it
printed (ASan reports, QEMU messages).

`BOARD_SPECS` holds the facts about every board, virtual or real (SRAM, flash, camera, Mbed
target) that `make firmware` / `make flash` (patchcam.targets.flash, docs/boards.md) check a model
against.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from patchcam.app import export
from patchcam.app.export import AppSpec
from patchcam.compiler import codegen, patchplan
from patchcam.compiler.ir import Graph
from patchcam.host.protocol import Hello, Link, PixFmt
from patchcam.targets import armbuild, hostbuild, qemu

KINDS = ("host", "qemu_m7")


@dataclass(frozen=True)
class BoardSpec:
    """Facts about a board that `make firmware` / `make flash` (patchcam.targets.flash) rely on.

    sram_bytes / flash_bytes: what the firmware image may use (the Nano's Arduino bootloader
    keeps the first 64 kB of flash). firmware_ram_bytes / firmware_flash_bytes: what the image
    needs besides the model's arena, its frame buffer and its parameters (Mbed OS, the app loop,
    the runtime's code, the stack), measured from `arm-none-eabi-size` of the built images
    (docs/boards.md) and rounded up; the fit check adds the model's own numbers to them."""
    name: str
    title: str  # what to buy
    mcu: str
    cpu_hz: int
    sram_bytes: int
    flash_bytes: int
    camera: str  # "" for none
    camera_width: int = 0
    camera_height: int = 0
    camera_bytes_per_pixel: int = 2  # what the sensor sends (RGB565 / YUV422: 2)
    firmware_ram_bytes: int = 0
    firmware_flash_bytes: int = 0
    mbed_target: str | None = None  # Mbed OS Community Edition target; None: not an Mbed board
    flasher: str = ""  # how `make flash` uploads: "st_link" or "bossac" (patchcam.targets.flash)
    virtual: bool = False

    @property
    def camera_frame_bytes(self) -> int:
        return self.camera_width * self.camera_height * self.camera_bytes_per_pixel


BOARD_SPECS: dict[str, BoardSpec] = {
    "qemu_m7": BoardSpec(
        "qemu_m7", "virtual Cortex-M7 (QEMU mps2-an500), budgeted as an STM32F746",
        "Cortex-M7 under QEMU", 216_000_000, armbuild.STM32F746.ram_bytes,
        armbuild.STM32F746.flash_bytes, "", virtual=True),
    "disco_f746ng": BoardSpec(
        "disco_f746ng", "STM32F746G-DISCO + Arducam Mini 2MP Plus (OV2640, SPI)",
        "STM32F746NG, Cortex-M7, 216 MHz", 216_000_000, 320 * 1024, 1024 * 1024,
        "Arducam Mini 2MP Plus (OV2640)", 160, 120, 2,
        # measured 22,408..23,400 B RAM (incl. the 8 kB stack, 5 kB of UART buffers) and
        # 77,116..77,488 B flash besides the model (docs/boards.md)
        firmware_ram_bytes=24 * 1024, firmware_flash_bytes=96 * 1024,
        mbed_target="DISCO_F746NG", flasher="st_link"),
    "nano33ble_sense": BoardSpec(
        "nano33ble_sense", "Arduino Nano 33 BLE Sense + OV7675 (Arduino TinyML kit)",
        "nRF52840, Cortex-M4F, 64 MHz", 64_000_000, 256 * 1024, 1024 * 1024 - 64 * 1024,
        "OV7675 (TinyML kit shield)", 160, 120, 2,
        # measured 15,992..16,992 B RAM (incl. the 8 kB stack) and 78,352..81,032 B flash
        # besides the model (docs/boards.md)
        firmware_ram_bytes=18 * 1024, firmware_flash_bytes=96 * 1024,
        mbed_target="ARDUINO_NANO33BLE", flasher="bossac"),
}


class BoardError(RuntimeError):
    """A virtual board did not start or stopped unexpectedly (the message holds its log)."""


def prepare_model(g: Graph, spec: AppSpec, out_dir: str | Path,
                  schedule: patchplan.Schedule | None = None) -> Path:
    """Generate model.h / model.c / app_config.h into out_dir/model; return that folder.
    schedule: a patch schedule to run (default: layer by layer)."""
    model_dir = Path(out_dir) / "model"
    codegen.generate(g, model_dir, schedule=schedule)
    export.generate(spec, model_dir)
    return model_dir


def build_board(kind: str, model_dir: str | Path, out_dir: str | Path | None = None, *,
                sanitize: bool = True, defines: tuple[str, ...] = ()) -> Path:
    """Build the app firmware of model_dir for a virtual board: the host executable or the
    qemu_m7 ELF. out_dir defaults to model_dir's parent."""
    model_dir = Path(model_dir)
    out = Path(out_dir) if out_dir is not None else model_dir.parent
    if kind == "host":
        return hostbuild.build_host_app(model_dir, out / "host",
                                        hostbuild.HostConfig(sanitize=sanitize), defines)
    if kind == "qemu_m7":
        return armbuild.build_app(model_dir, out / "qemu_m7", defines=defines).elf
    raise ValueError(f"unknown virtual board {kind!r}; choose from {', '.join(KINDS)}")


def camera_file(frames: list[bytes | np.ndarray], width: int, height: int,
                fmt: PixFmt) -> bytes:
    """A virtual camera file: 16-byte PCAM header + frames (docs/qemu_m7.md)."""
    head = b"PCAM" + struct.pack("<HHB", width, height, int(fmt)) + bytes(7)
    need = width * height * PixFmt(fmt).bytes_per_pixel
    body = [f.tobytes() if isinstance(f, np.ndarray) else bytes(f) for f in frames]
    if any(len(b) != need for b in body):
        raise ValueError(f"every frame must be {need} bytes ({width}x{height} {fmt.name})")
    return head + b"".join(body)


@dataclass
class VirtualBoard:
    kind: str
    url: str
    link: Link
    hello: Hello
    proc: subprocess.Popen
    workdir: Path
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def __enter__(self) -> VirtualBoard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        p = self.workdir / "board.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def reset(self) -> None:
        """qemu_m7 only: reset the CPU (QEMU monitor `system_reset`), as a board's reset
        button would; the firmware boots again and sends a fresh HELLO."""
        if self.kind != "qemu_m7" or self.proc.stdin is None:
            raise BoardError("reset() needs a qemu_m7 board")
        self.proc.stdin.write(b"system_reset\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        self.link.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _camera(camera: bytes | str | Path | None, work: Path) -> Path | None:
    if camera is None:
        return None
    if isinstance(camera, bytes):
        path = work / qemu.CAMERA_FILE
        path.write_bytes(camera)
        return path
    return Path(camera).resolve()


def _fail(msg: str, proc: subprocess.Popen, log: Path) -> BoardError:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    text = log.read_text(errors="replace") if log.exists() else ""
    return BoardError(f"{msg} (exit status {proc.returncode})\n{text[-3000:]}")


def start_board(kind: str, firmware: str | Path, *, camera: bytes | str | Path | None = None,
                timeout: float = 30.0, workdir: str | Path | None = None) -> VirtualBoard:
    """Start a virtual board and return it once its HELLO arrived; BoardError (the board
    stopped) when it has not within `timeout` seconds, every wait included.

    firmware: a model folder (model.c / model.h / app_config.h: built with build_board first)
    or an already built host executable / qemu_m7 ELF. camera: PCAM file bytes or path.
    workdir: where the board's log (and camera file) go; default a temporary folder."""
    fw = Path(firmware)
    if fw.is_dir():
        fw = build_board(kind, fw)
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix=f"patchcam-{kind}-")
        work = Path(tmp.name)
    else:
        work = Path(workdir)
        work.mkdir(parents=True, exist_ok=True)
    log = work / "board.log"
    cam = _camera(camera, work)
    deadline = time.monotonic() + timeout
    with open(log, "wb") as logf:
        if kind == "host":
            env = dict(os.environ, PATCHCAM_SERIAL="pty")
            env.pop("PATCHCAM_CAMERA", None)
            if cam is not None:
                env["PATCHCAM_CAMERA"] = str(cam)
            proc = subprocess.Popen([str(fw.resolve())], env=env, cwd=work,
                                    stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
            url = None
            while url is None:
                m = re.search(r"board_host: serial on (\S+)", log.read_text(errors="replace"))
                if m:
                    url = m.group(1)
                elif proc.poll() is not None or time.monotonic() > deadline:
                    raise _fail("host board did not open its pty", proc, log)
                else:
                    time.sleep(0.01)
        elif kind == "qemu_m7":
            port = _free_port()
            cmd = qemu.qemu_command(fw, serial=f"tcp:127.0.0.1:{port},server=on,wait=off",
                                    cmdline=f"cam={cam}" if cam is not None else None)
            proc = subprocess.Popen(cmd, cwd=work, stdin=subprocess.PIPE, stdout=logf,
                                    stderr=logf)
            url = f"socket://127.0.0.1:{port}"
        else:
            raise ValueError(f"unknown virtual board {kind!r}; choose from {', '.join(KINDS)}")
    link = None
    while link is None:
        try:
            link = Link(url)
        except Exception as e:  # noqa: BLE001 - QEMU may not listen yet
            if proc.poll() is not None or time.monotonic() > deadline:
                raise _fail(f"cannot connect to {url}: {e}", proc, log) from None
            time.sleep(0.05)
    try:
        # every wait ends by the deadline: a caller's timeout (the viewer's) holds
        hello = link.hello(timeout=max(0.01, deadline - time.monotonic()))
        # A slow start may answer a repeated HELLO request twice: a PING round trip drains
        # whatever is still in flight, so the caller starts from a quiet line.
        link.ping(token=0x5EED, timeout=max(0.01, deadline - time.monotonic()))
        link.skipped.clear()
    except Exception as e:
        link.close()
        raise _fail(f"{kind} board sent no HELLO: {e}", proc, log) from None
    return VirtualBoard(kind, url, link, hello, proc, work, tmp)


def have_board(kind: str) -> bool:
    """Whether the tools to build and run a virtual board of this kind are installed."""
    if kind == "host":
        return shutil.which("gcc") is not None
    return shutil.which(armbuild.CC) is not None and shutil.which(qemu.QEMU) is not None
