"""The host viewer's logic: stream frames to a board, draw what it answers, show or record it.

    link target ── FRAME ──►  board (serial port, socket://, or a virtual board we start)
                ◄─ RESULT ──  boxes / class scores, on-device latency
    canvas = frame + boxes + labels + scores + FPS, latency, arena / flash, board / app / model

The entry point is `host_viewer/viewer.py` (`make view`, `make demo`); this module holds what
tests import: the overlay (`render`, `box_on_canvas`), the outputs (`Recorder`), the targets
(`PortTarget`, `VirtualBoardTarget`) and the loop (`Viewer`).

The canvas is the frame scaled to `DISPLAY_W` pixels wide, with an info bar above it
(`TOP_H` pixels: board, app, model, arena, flash) and a status bar below (`BOTTOM_H`: FPS,
latency, threshold, and a status line when the board is silent, resets or reconnects). A box
(x0, y0, x1, y1) in model-input pixels lands at (x * img_w / input_w, TOP_H + y * img_h /
input_h): the board stretches the whole frame to its input (docs/protocol.md, preprocessing),
so the mapping back is a plain scale.

The viewer resizes each frame to the model's input on the host (INTER_AREA) before sending it:
the fewest bytes on a slow line, and the board's own nearest-neighbour resize is then the
identity. Frames go as RGB888 (GRAY8 for a grey model).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from patchcam.host import protocol as pp
from patchcam.host.sources import Source
from patchcam.paths import REPO

DISPLAY_W = 640
TOP_H = 26
BOTTOM_H = 46
FONT = cv2.FONT_HERSHEY_SIMPLEX
# BGR colours per class index (class 0 is green, 1 red, ...): distinct on photos.
PALETTE = ((0, 220, 0), (0, 0, 255), (255, 128, 0), (0, 200, 255), (255, 0, 255),
           (255, 255, 0), (128, 0, 255), (0, 128, 255))
BAR_BG = (32, 32, 32)
STATUS_BAD = (0, 0, 200)
TEXT = (240, 240, 240)
NOTE = (0, 200, 255)  # orange: e.g. an untrained model
THRESHOLD_STEP = 0.05


def class_color(cls: int) -> tuple[int, int, int]:
    return PALETTE[cls % len(PALETTE)]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# ---- what the canvas shows ----------------------------------------------------------------
@dataclass
class Stats:
    """Frame rate (completed results per second, smoothed) and the last device timings."""
    fps: float = 0.0
    latency_us: int | None = None
    total_us: int | None = None
    frames: int = 0
    resets: int = 0
    reconnects: int = 0
    _last: float | None = None

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._last is not None and now > self._last:
            inst = 1.0 / (now - self._last)
            self.fps = inst if self.fps == 0 else 0.8 * self.fps + 0.2 * inst
        self._last = now
        self.frames += 1


@dataclass
class View:
    """Everything one canvas shows besides the frame."""
    hello: pp.Hello | None = None
    result: pp.Result | None = None
    stats: Stats = field(default_factory=Stats)
    threshold: float | None = None  # detection probability threshold in force, if known
    status: str = ""  # empty: all well
    name: str = ""  # frame name (file stem)
    paused: bool = False
    note: str = ""  # e.g. "untrained network (random weights)"


def canvas_size(frame_w: int, frame_h: int, display_w: int = DISPLAY_W) -> tuple[int, int]:
    """(width, height) of the frame on the canvas (bars not included)."""
    return display_w, max(1, round(frame_h * display_w / frame_w))


def box_on_canvas(d: pp.Detection, hello: pp.Hello, img_w: int, img_h: int
                  ) -> tuple[int, int, int, int]:
    """A detection in model-input pixels -> canvas pixels (x0, y0, x1, y1), bars included."""
    sx, sy = img_w / hello.input_w, img_h / hello.input_h
    x0, x1 = round(d.x0 * sx), round(d.x1 * sx)
    y0, y1 = round(d.y0 * sy) + TOP_H, round(d.y1 * sy) + TOP_H
    return (min(max(x0, 0), img_w - 1), min(max(y0, TOP_H), TOP_H + img_h - 1),
            min(max(x1, 0), img_w - 1), min(max(y1, TOP_H), TOP_H + img_h - 1))


def detection_probability(d: pp.Detection, hello: pp.Hello) -> float:
    return sigmoid(hello.output_scale * (d.score - hello.output_zero_point))


def class_probabilities(r: pp.Result, hello: pp.Hello) -> list[float]:
    """Classify: softmax over the dequantised int8 scores."""
    v = np.array([hello.output_scale * (s - hello.output_zero_point) for s in r.scores])
    if not len(v):
        return []
    e = np.exp(v - v.max())
    return list(e / e.sum())


def class_name(hello: pp.Hello, cls: int) -> str:
    return hello.classes[cls] if 0 <= cls < len(hello.classes) else f"class {cls}"


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} kB"


def info_line(hello: pp.Hello | None) -> str:
    if hello is None:
        return "no board yet"
    return (f"{hello.board} | {hello.app} | model {hello.model} #{hello.model_hash:08x} | "
            f"arena {_kb(hello.arena_bytes)} | flash {_kb(hello.flash_bytes)}")


def stats_line(v: View) -> str:
    parts = [f"FPS {v.stats.fps:4.1f}" if v.stats.fps else "FPS --"]
    if v.stats.latency_us is not None:
        parts.append(f"device {v.stats.latency_us / 1000:.1f} ms")
    if v.stats.total_us is not None:
        parts.append(f"total {v.stats.total_us / 1000:.1f} ms")
    if v.threshold is not None:
        parts.append(f"thr {v.threshold:.2f}")
    if v.result is not None and v.result.task == pp.Task.DETECT:
        parts.append(f"{len(v.result.detections)} boxes")
    if v.name:
        parts.append(v.name)
    if v.paused:
        parts.append("PAUSED")
    return " | ".join(parts)


def _text(img: np.ndarray, s: str, x: int, y: int, color=TEXT, scale: float = 0.45,
          max_w: int | None = None) -> None:
    """Text with its baseline at y, shortened with '...' to fit max_w pixels."""
    if max_w is not None:
        while len(s) > 4 and cv2.getTextSize(s, FONT, scale, 1)[0][0] > max_w:
            s = s[:-4] + "..."
    cv2.putText(img, s, (x, y), FONT, scale, color, 1, cv2.LINE_AA)


def render(frame_bgr: np.ndarray, v: View, display_w: int = DISPLAY_W) -> np.ndarray:
    """The annotated canvas for one frame (uint8 BGR, TOP_H + image + BOTTOM_H rows)."""
    h0, w0 = frame_bgr.shape[:2]
    img_w, img_h = canvas_size(w0, h0, display_w)
    canvas = np.empty((TOP_H + img_h + BOTTOM_H, img_w, 3), np.uint8)
    canvas[:TOP_H] = BAR_BG
    canvas[TOP_H + img_h:] = BAR_BG
    interp = cv2.INTER_AREA if img_w < w0 else cv2.INTER_LINEAR
    canvas[TOP_H:TOP_H + img_h] = cv2.resize(frame_bgr, (img_w, img_h), interpolation=interp)
    _text(canvas, info_line(v.hello), 6, TOP_H - 8, max_w=img_w - 12)
    if v.hello is not None and v.result is not None:
        if v.result.task == pp.Task.DETECT:
            _draw_boxes(canvas, v.result, v.hello, img_w, img_h)
        else:
            _draw_scores(canvas, v.result, v.hello)
    y = TOP_H + img_h
    _text(canvas, stats_line(v), 6, y + 17, max_w=img_w - 12)
    note_w = 0
    if v.note:  # right-aligned on the status row, e.g. "UNTRAINED (random weights)"
        note_w = cv2.getTextSize(v.note, FONT, 0.45, 1)[0][0] + 12
    if v.status:
        canvas[y + 24:] = STATUS_BAD
        _text(canvas, v.status, 6, y + 39, max_w=img_w - 12 - note_w)
    else:
        _text(canvas, "ok", 6, y + 39, color=(150, 150, 150))
    if v.note:
        _text(canvas, v.note, img_w - note_w + 6, y + 39, color=NOTE)
    return canvas


def _draw_boxes(canvas: np.ndarray, r: pp.Result, hello: pp.Hello, img_w: int,
                img_h: int) -> None:
    for d in r.detections:
        x0, y0, x1, y1 = box_on_canvas(d, hello, img_w, img_h)
        color = class_color(d.cls)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, 2)
        label = f"{class_name(hello, d.cls)} {detection_probability(d, hello):.2f}"
        (tw, th), _ = cv2.getTextSize(label, FONT, 0.45, 1)
        ty = y0 - 4 if y0 - th - 6 >= TOP_H else y0 + th + 6  # above the box, else inside
        tx = min(x0, img_w - tw - 4)
        cv2.rectangle(canvas, (tx, ty - th - 3), (tx + tw + 4, ty + 3), color, -1)
        _text(canvas, label, tx + 2, ty, color=(0, 0, 0))


def _draw_scores(canvas: np.ndarray, r: pp.Result, hello: pp.Hello) -> None:
    probs = class_probabilities(r, hello)
    best = int(np.argmax(probs)) if probs else -1
    for i, p in enumerate(probs):
        y = TOP_H + 12 + 26 * i
        cv2.rectangle(canvas, (8, y), (8 + 150, y + 20), BAR_BG, -1)
        cv2.rectangle(canvas, (8, y), (8 + round(150 * p), y + 20), class_color(i), -1)
        _text(canvas, f"{class_name(hello, i)} {p:.2f}", 164, y + 15,
              color=class_color(i) if i == best else TEXT, scale=0.6 if i == best else 0.45)


# ---- outputs ------------------------------------------------------------------------------
class Recorder:
    """Writes annotated canvases to a video (`video`, .mp4 or .avi) and/or a folder of PNGs
    (`save_dir`, with `results.jsonl`: one line per frame, what the board answered)."""

    def __init__(self, video: str | Path | None = None, save_dir: str | Path | None = None,
                 fps: float = 5.0) -> None:
        self.video_path = Path(video) if video else None
        self.save_dir = Path(save_dir) if save_dir else None
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._log = None
        self.count = 0
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            self._log = (self.save_dir / "results.jsonl").open("w")
        if self.video_path is not None:
            self.video_path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, canvas: np.ndarray, name: str, record: dict | None = None) -> None:
        if self.video_path is not None:
            self._video_frame(canvas)
        if self.save_dir is not None:
            fname = f"{self.count:05d}_{_safe(name)}.png"
            cv2.imwrite(str(self.save_dir / fname), canvas)
            assert self._log is not None
            self._log.write(json.dumps({"image": fname, "name": name, **(record or {})}) + "\n")
            self._log.flush()
        self.count += 1

    def _video_frame(self, canvas: np.ndarray) -> None:
        h, w = canvas.shape[:2]
        if self._writer is None:
            self._size = (w + w % 2, h + h % 2)  # codecs want even sizes
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.video_path.suffix.lower() == ".avi"
                                              else "mp4v"))
            self._writer = cv2.VideoWriter(str(self.video_path), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                raise RuntimeError(f"{self.video_path}: cannot write a video here (use .mp4 or "
                                   ".avi)")
        assert self._size is not None
        tw, th = self._size
        if (w, h) != (tw, th):  # another aspect ratio: letterbox into the first frame's size
            s = min(tw / w, th / h)
            nw, nh = max(1, round(w * s)), max(1, round(h * s))
            box = np.zeros((th, tw, 3), np.uint8)
            x, y = (tw - nw) // 2, (th - nh) // 2
            box[y:y + nh, x:x + nw] = cv2.resize(canvas, (nw, nh), interpolation=cv2.INTER_AREA)
            canvas = box
        self._writer.write(canvas)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._log is not None:
            self._log.close()
            self._log = None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "frame"


def result_record(r: pp.Result | None, hello: pp.Hello | None, status: str) -> dict:
    """A JSON-able summary of one frame's outcome (a line of results.jsonl): the status line
    and the board's RESULT (None when there was none), boxes in model-input pixels."""
    if r is None:
        return {"status": status, "result": None}
    res: dict = {"frame_id": r.frame_id, "latency_us": r.latency_us, "total_us": r.total_us,
                 "task": pp.Task(r.task).name.lower()}
    if r.task == pp.Task.DETECT:
        res["detections"] = [{"box": [d.x0, d.y0, d.x1, d.y1], "class": d.cls, "score": d.score,
                              **({"label": class_name(hello, d.cls),
                                  "p": round(detection_probability(d, hello), 4)}
                                 if hello else {})} for d in r.detections]
    else:
        res["scores"] = list(r.scores)
    if hello is not None:
        res["input"] = [hello.input_w, hello.input_h]
    return {"status": status, "result": res}


# ---- targets: what the viewer talks to ----------------------------------------------------
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

    def check(self) -> None:
        """Fail fast with one line when a device path does not exist at all."""
        if "://" not in self.url and not Path(self.url).exists():
            raise TargetError(f"no such port {self.url} ({available_ports()})")

    def open(self) -> pp.Link:
        import serial
        try:
            return pp.Link(self.url, baudrate=self.baud, timeout=0.02)
        except (serial.SerialException, OSError, ValueError) as e:
            raise TargetError(f"cannot open {self.description}: {_one_line(e)}") from None

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        pass


def available_ports() -> str:
    try:
        from serial.tools import list_ports
        ports = [p.device for p in list_ports.comports()]
    except Exception:  # noqa: BLE001 - only a hint in an error message
        ports = []
    return f"ports here: {', '.join(ports)}" if ports else "no serial ports found here"


def _one_line(e: BaseException) -> str:
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
        from patchcam.targets import boards
        if not boards.have_board(self.kind):
            need = ("gcc" if self.kind == "host" else
                    "gcc-arm-none-eabi and qemu-system-arm (make setup)")
            raise TargetError(f"cannot run the {self.kind} board here: install {need}")

    def build(self) -> Path:
        """The board's firmware for the model, rebuilt only when a source changed."""
        from patchcam.targets import boards
        if self.firmware is not None:
            return self.firmware
        stamp = self.build_dir / f"{self.kind}-firmware.txt"
        self.build_dir.mkdir(parents=True, exist_ok=True)
        key = _sources_hash([self.model_dir, REPO / "firmware"],
                            [REPO / "patchcam" / f for f in ("boards.py", "hostbuild.py",
                                                             "armbuild.py")])
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

    def open(self) -> pp.Link:
        from patchcam.targets import boards
        self.close()
        fw = self.build()
        camera = None
        if self.feed == "camera":
            w, h, c = model_input_shape(self.model_dir)
            self._camera = _CameraFifo(w, h, pp.PixFmt.GRAY8 if c == 1 else pp.PixFmt.RGB888)
            camera = self._camera.path
        try:
            self.board = boards.start_board(self.kind, fw, camera=camera, timeout=30.0)
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


# ---- display ----------------------------------------------------------------------------
def display_problem() -> str | None:
    """Why a window cannot open here, or None."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or
                                                  os.environ.get("WAYLAND_DISPLAY")):
        return "no display here (DISPLAY is not set)"
    import cv2
    try:
        cv2.namedWindow("patchcam-probe", cv2.WINDOW_AUTOSIZE)
        cv2.destroyWindow("patchcam-probe")
    except cv2.error:
        return ("this OpenCV has no GUI (opencv-python-headless); pip install opencv-python "
                "for a window")
    return None


# ---- the loop -----------------------------------------------------------------------------
@dataclass
class Options:
    timeout: float = 10.0  # seconds to wait for a frame's RESULT
    hello_timeout: float = 3.0
    threshold: float | None = None  # sent to the board (SET SCORE_Q) when given
    headless: bool = True
    window: str = "patchcam"
    note: str = ""
    snapshot_dir: Path = Path("snapshots")
    max_frames: int | None = None
    quiet: bool = False
    expect_app: str | None = None  # warn when the board's HELLO names another app
    preview_k: int = 2  # camera mode: PREVIEW thumbnails of the model input subsampled by k


class Viewer:
    """Streams a Source through a target, one frame in flight at a time.

    For every frame the source gives, exactly one canvas is shown / recorded: with the board's
    boxes, or with a status line saying why there are none (board silent, reset, unreachable).
    Lost connections are reopened (a virtual board is started again) before the next frame."""

    def __init__(self, target, recorder: Recorder | None = None,
                 options: Options | None = None,
                 key_source: Callable[[int], int] | None = None) -> None:
        self.target = target
        self.recorder = recorder
        self.opt = options or Options()
        self.view = View(threshold=self.opt.threshold, note=self.opt.note)
        self.link: pp.Link | None = None
        self.next_id = 1
        self.quit = False
        self.events: list[str] = []  # status changes, in order (tests read them)
        self._last_canvas: np.ndarray | None = None
        self._wait_key = key_source
        self._silent_since: float | None = None  # when we began waiting for a HELLO
        self._hello_asked = False  # a HELLO request is out (its answer is not a reset)
        self._redo = False  # paused and the threshold changed: run the frame again
        self._last_frame: tuple[str, np.ndarray] | None = None

    # -- reporting
    def log(self, msg: str) -> None:
        self.events.append(msg)
        if not self.opt.quiet:
            print(f"viewer: {msg}", file=sys.stderr, flush=True)

    def set_status(self, s: str) -> None:
        changed = s != self.view.status
        if s and changed:
            self.log(s)
        self.view.status = s
        if changed and s and not self.opt.headless and self._last_frame is not None:
            # A window shows the news at once, not only when the frame is done.
            self.show(render(self._last_frame[1], self.view))

    # -- connection
    def connect(self, deadline: float) -> bool:
        """Open the link and get a HELLO, retrying until deadline. True when connected."""
        if self._silent_since is None:
            self._silent_since = time.monotonic()
        while not self.quit:
            if self.link is None:
                try:
                    self.link = self.target.open()
                    if self.view.hello is not None or self.target_started_before():
                        self.view.stats.reconnects += 1
                        self.log(f"reconnected to {self.target.description}")
                except TargetError as e:
                    if e.fatal:
                        raise
                    self.set_status(f"{e}; retrying")
                    if not self._sleep_until(min(deadline, time.monotonic() + 1.0)):
                        return False
                    continue
            try:
                hello = self.link.hello(timeout=max(0.05, min(self.opt.hello_timeout,
                                                              deadline - time.monotonic())))
            except pp.LinkTimeout:
                self._silent(deadline)
                if time.monotonic() >= deadline:
                    return False
                continue
            except Exception as e:  # noqa: BLE001 - serial / socket errors: reconnect
                self._lost(e)
                if time.monotonic() >= deadline:
                    return False
                continue
            self._on_hello(hello)
            self._settle()
            return True
        return False

    def _settle(self, window: float = 0.15) -> None:
        """Swallow a second HELLO right after connecting: a board that booted as we connected
        sends one unasked besides the answer to our request, which is not a reset."""
        assert self.link is not None
        end = time.monotonic() + window
        while (left := end - time.monotonic()) > 0:
            try:
                m = self.link.receive(left)
            except Exception as e:  # noqa: BLE001
                self._lost(e)
                return
            if m is None:
                return
            if isinstance(m, pp.Hello):
                self.view.hello = m
            else:
                self._other(m, 0)

    def target_started_before(self) -> bool:
        return getattr(self.target, "starts", 0) > 1

    def _sleep_until(self, t: float) -> bool:
        while time.monotonic() < t:
            if self.quit:
                return False
            self._pump_keys(50)
        return True

    def _silent(self, deadline: float) -> None:
        now = time.monotonic()
        s = now - (self._silent_since or now)
        if not self.target.alive():
            self.set_status(f"board {self.target.description} stopped; restarting it")
            self._drop_link()
        else:
            self.set_status(f"board silent for {s:.0f} s: no HELLO from "
                            f"{self.target.description} (firmware running? right baud?)")

    def _lost(self, e: BaseException) -> None:
        self.set_status(f"connection lost ({_one_line(e)}); reconnecting")
        self._drop_link()

    def _drop_link(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None
        if isinstance(self.target, VirtualBoardTarget):
            self.target.close()

    def _on_hello(self, hello: pp.Hello, reset: bool = False) -> None:
        """A HELLO: the answer to our request, or (reset) one the board sent unasked."""
        self._silent_since = None
        self._hello_asked = False
        if reset:
            self.view.stats.resets += 1
        first = self.view.hello is None
        self.view.hello = hello
        if first:
            self.log(f"connected: {info_line(hello)}; input {hello.input_w}x{hello.input_h}x"
                     f"{hello.input_c}, classes {', '.join(hello.classes)}")
            if self.opt.expect_app and hello.app != self.opt.expect_app:
                self.log(f"warning: the board runs {hello.app!r}, not {self.opt.expect_app!r} "
                         f"(flash it with `make flash APP={self.opt.expect_app}`)")
        self.set_status("")
        if hello.task != pp.Task.DETECT:
            self.view.threshold = None
        elif self.opt.threshold is not None:
            self.send_threshold(self.opt.threshold)
        elif self.view.threshold is None:
            self.view.threshold = app_threshold(hello.app)

    # -- threshold
    def send_threshold(self, p: float) -> None:
        hello, link = self.view.hello, self.link
        if hello is None or link is None or hello.task != pp.Task.DETECT:
            return
        p = min(max(p, 0.01), 0.99)
        q = pp.score_threshold_q(p, hello.output_scale, hello.output_zero_point)
        self.opt.threshold = p
        try:
            link.send(pp.Set(pp.SetKey.SCORE_Q, q))
        except Exception as e:  # noqa: BLE001
            self._lost(e)
            return
        self.view.threshold = p  # confirmed (or corrected) by the board's SET echo
        self._redo = self.view.paused

    def _on_set(self, m: pp.Set) -> None:
        hello = self.view.hello
        if m.key == pp.SetKey.SCORE_Q and hello is not None:
            self.view.threshold = (0.0 if m.value <= -128 else 1.0 if m.value >= 128 else
                                   sigmoid(hello.output_scale *
                                           (m.value - hello.output_zero_point)))

    # -- one frame
    def frame_pixels(self, bgr: np.ndarray) -> tuple[bytes, pp.PixFmt]:
        hello = self.view.hello
        assert hello is not None
        img = cv2.resize(bgr, (hello.input_w, hello.input_h), interpolation=cv2.INTER_AREA)
        if hello.input_c == 1:
            return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).tobytes(), pp.PixFmt.GRAY8
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB).tobytes(), pp.PixFmt.RGB888

    def infer(self, bgr: np.ndarray) -> pp.Result | None:
        """Send one frame and wait for its RESULT (reconnecting when needed), or None.
        The status line starts empty for each frame and says what went wrong with this one."""
        self.view.status = ""
        deadline = time.monotonic() + self.opt.timeout
        sent_at = None
        first_send = True
        fid = 0
        want: tuple[int, pp.Source] = (0, pp.Source.FRAME)
        while not self.quit:
            if self.link is None or self.view.hello is None:
                if not self.connect(deadline):
                    return None
                sent_at = None
            if sent_at is None:
                fid = self.next_id
                self.next_id += 1
                pixels, fmt = self.frame_pixels(bgr)
                hello = self.view.hello
                try:
                    send = getattr(self.target, "send_frame", None)
                    if send is None:
                        self.link.send_frame(fid, pixels, hello.input_w, hello.input_h, fmt)
                        want = (fid, pp.Source.FRAME)
                    else:
                        want = send(self.link, fid, pixels, hello.input_w, hello.input_h, fmt)
                except Exception as e:  # noqa: BLE001
                    self._lost(e)
                    continue
                sent_at = time.monotonic()
                if first_send:  # the first connection does not eat into the frame's time
                    deadline = max(deadline, sent_at + self.opt.timeout)
                    first_send = False
            left = deadline - time.monotonic()
            if left <= 0:
                self.set_status(f"board silent for {time.monotonic() - sent_at:.0f} s: no RESULT "
                                f"for frame {fid}")
                if isinstance(self.target, VirtualBoardTarget):
                    self._drop_link()  # hung (or reset and stuck opening its camera): restart
                else:
                    self._ask_hello()
                return None
            try:
                m = self.link.receive(min(left, 0.1))
            except Exception as e:  # noqa: BLE001 - serial / socket errors
                self._lost(e)
                continue
            self._pump_keys(1)
            if m is None:
                if not self.target.alive():
                    self._silent(deadline)
                continue
            if isinstance(m, pp.Result):
                if (m.frame_id, m.source) == want:
                    return m
                continue  # an answer to an older frame we gave up on
            if isinstance(m, pp.Hello):
                answer = self._hello_asked  # to our "are you there?" after a silent frame
                self._on_hello(m, reset=not answer)
                sent_at = None  # send the frame again: a board that reset lost it
                if answer:
                    continue
                if isinstance(self.target, VirtualBoardTarget) and \
                        self.target.feed == "camera":
                    # Its camera pipe does not survive a reset: start the board afresh.
                    self.set_status("board reset (HELLO again); restarting it")
                    self._drop_link()
                    continue
                self.set_status(f"board reset (HELLO again, {self.view.stats.resets} so "
                                "far); frame sent again")
                continue
            self._other(m, fid)
            if isinstance(m, pp.Error) and m.frame_id == fid:
                return None
        return None

    def _ask_hello(self) -> None:
        try:
            if self.link is not None:
                self.link.send(pp.HelloRequest())  # a board that reset answers with HELLO
                self._hello_asked = True
        except Exception as e:  # noqa: BLE001
            self._lost(e)

    def _other(self, m, fid: int) -> None:
        if isinstance(m, pp.Log):
            self.log(f"board: {m.text}")
        elif isinstance(m, pp.Error):
            name = m.code.name if isinstance(m.code, pp.ErrorCode) else str(m.code)
            what = f" (frame {m.frame_id})" if m.frame_id else ""
            self.set_status(f"board error {name}{what}: {m.text}")
        elif isinstance(m, pp.Set):
            self._on_set(m)
        elif isinstance(m, pp.DecodeError):
            self.log(f"line noise: {m}")

    # -- keys and display
    def _pump_keys(self, ms: int) -> None:
        if self.opt.headless or self._wait_key is None:
            return
        key = self._wait_key(ms)
        if key >= 0:
            self.handle_key(key & 0xFF)

    def handle_key(self, key: int) -> None:
        """space pause, + / - threshold, s snapshot, q (or Esc) quit."""
        c = chr(key) if 0 <= key < 256 else ""
        if c in ("q", "\x1b"):
            self.quit = True
        elif c == " ":
            self.view.paused = not self.view.paused
            self.log("paused" if self.view.paused else "resumed")
        elif c in ("+", "="):
            self.send_threshold((self.view.threshold or 0.5) + THRESHOLD_STEP)
        elif c in ("-", "_"):
            self.send_threshold((self.view.threshold or 0.5) - THRESHOLD_STEP)
        elif c == "s":
            self.snapshot()

    def snapshot(self) -> Path | None:
        if self._last_canvas is None:
            return None
        d = self.opt.snapshot_dir
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"snapshot_{time.strftime('%Y%m%d_%H%M%S')}_{self.view.stats.frames:05d}.png"
        cv2.imwrite(str(p), self._last_canvas)
        self.log(f"snapshot {p}")
        return p

    def show(self, canvas: np.ndarray) -> None:
        self._last_canvas = canvas
        if not self.opt.headless:
            cv2.imshow(self.opt.window, canvas)

    # -- the loop
    def run(self, source: Source) -> int:
        """Stream every frame of source; returns the number of canvases produced."""
        n = 0
        try:
            for name, bgr in source:
                if self.quit:
                    break
                while self.view.paused and not self.quit:
                    self._pump_keys(50)
                    if self._redo and self._last_frame is not None:  # threshold changed
                        self._redo = False
                        self._emit(self._last_frame[1], self._last_frame[0],
                                   self.infer(self._last_frame[1]), record=False)
                if self.quit:
                    break
                self.view.name = name
                self._last_frame = (name, bgr)
                self.view.result = None
                r = self.infer(bgr)
                if self.quit:  # q while waiting: stop now, no half-done frame
                    break
                self._emit(bgr, name, r)
                n += 1
                self._pump_keys(1)
                if self.opt.max_frames is not None and n >= self.opt.max_frames:
                    break
        finally:
            self._finish()
        return n

    # -- the board's own camera
    def start_stream(self) -> bool:
        """Ask the board for PREVIEW thumbnails and a RESULT per camera frame."""
        assert self.link is not None
        try:
            self.link.send(pp.Set(pp.SetKey.PREVIEW, self.opt.preview_k))
            self.link.send(pp.Set(pp.SetKey.STREAM, -1))
        except Exception as e:  # noqa: BLE001
            self._lost(e)
            return False
        return True

    def run_camera(self, max_frames: int | None = None) -> int:
        """Show what the board's camera sees (its PREVIEW thumbnails) with its RESULTs, until
        q, max_frames results, or Ctrl-C. A board without a camera: SourceError."""
        from patchcam.host.sources import SourceError
        n = 0
        asm = pp.ImageAssembler()
        preview: tuple[int, np.ndarray] | None = None  # (frame_id, BGR thumbnail)
        last_result = time.monotonic()
        streaming: pp.Link | None = None  # the link we asked to stream
        try:
            while not self.quit and (max_frames is None or n < max_frames):
                if self.link is None or self.view.hello is None or streaming is not self.link:
                    if (self.link is None or self.view.hello is None) and \
                            not self.connect(time.monotonic() + self.opt.timeout):
                        self._show_status_frame(preview, n)
                        n += 1
                        continue
                    if self.view.hello.camera_format == pp.PixFmt.NONE:
                        raise SourceError(f"{self.target.description} has no camera: give "
                                          "frames with --source (a folder, a video, 0 for a "
                                          "webcam)")
                    if not self.start_stream():
                        continue
                    streaming = self.link
                    last_result = time.monotonic()
                try:
                    m = self.link.receive(0.1)
                except Exception as e:  # noqa: BLE001
                    self._lost(e)
                    continue
                self._pump_keys(1)
                if m is None:
                    if time.monotonic() - last_result > self.opt.timeout:
                        self.set_status(f"board silent for {time.monotonic() - last_result:.0f}"
                                        " s: no camera RESULT")
                        self._show_status_frame(preview, n)
                        n += 1
                        last_result = time.monotonic()
                        self._ask_hello()
                    continue
                if isinstance(m, pp.Preview):
                    done = asm.add(m)
                    if done is not None:
                        fid, w, h, fmt, data = done
                        img = pp.image_array(data, w, h, fmt)
                        bgr = (cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else
                               cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                        preview = (fid, bgr)
                elif isinstance(m, pp.Result):
                    last_result = time.monotonic()
                    self.view.name = f"camera {m.frame_id}"
                    self._emit(self._camera_image(preview, m.frame_id), self.view.name, m)
                    self.view.status = ""  # shown once, on the frame where it happened
                    n += 1
                elif isinstance(m, pp.Hello):
                    answer = self._hello_asked
                    self._on_hello(m, reset=not answer)
                    if not answer:
                        self.set_status(f"board reset (HELLO again, {self.view.stats.resets} "
                                        "so far); streaming again")
                    self.start_stream()  # a reset board, or a silent one, streams no more
                else:
                    self._other(m, 0)
        finally:
            if self.link is not None:
                try:
                    self.link.send(pp.Set(pp.SetKey.STREAM, 0))
                except Exception:  # noqa: BLE001 - the line may be gone already
                    pass
            self._finish()
        return n

    def _camera_image(self, preview: tuple[int, np.ndarray] | None, fid: int) -> np.ndarray:
        hello = self.view.hello
        if preview is not None and preview[0] == fid:
            return preview[1]
        # No thumbnail for this frame (preview off or lost): a grey frame of the input's shape.
        w, h = (hello.input_w, hello.input_h) if hello else (160, 120)
        return np.full((h, w, 3), 64, np.uint8)

    def _show_status_frame(self, preview: tuple[int, np.ndarray] | None, n: int) -> None:
        self._emit(self._camera_image(preview, -1) if preview is None else preview[1],
                   f"camera_status_{n}", None)

    def _emit(self, bgr: np.ndarray, name: str, r: pp.Result | None,
              record: bool = True) -> None:
        """Show (and record) one canvas: the frame with result r, or with the status line."""
        self.view.result = r
        if r is not None:
            self.view.stats.tick()
            self.view.stats.latency_us, self.view.stats.total_us = r.latency_us, r.total_us
        canvas = render(bgr, self.view)
        self.show(canvas)
        if self.recorder is not None and record:
            self.recorder.write(canvas, name, result_record(r, self.view.hello,
                                                            self.view.status))

    def _finish(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None
        self.target.close()
        if self.recorder is not None:
            self.recorder.close()

def app_threshold(app: str) -> float | None:
    """The app's default detection threshold (its app.toml), when this checkout has the app."""
    import tomllib

    try:  # the toml alone: patchcam.app.config would import torch (seconds)
        doc = tomllib.loads((REPO / "apps" / app / "app.toml").read_text())
        return float(doc.get("thresholds", {}).get("score", 0.5))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


# ---- which model a virtual board runs -----------------------------------------------------
_GENERATOR_FILES = ("app/export.py", "app/config.py", "app/detect.py", "compiler/codegen.py",
                    "compiler/ir.py", "compiler/memplan.py", "compiler/models.py",
                    "compiler/patchplan.py", "compiler/qparams.py", "compiler/quantize.py",
                    "compiler/zoo.py")

def app_model_dir(app: str, model_dir: Path | None = None,
                  build: Path | None = None) -> tuple[Path, bool, str]:
    """(generated model folder, trained?, one line saying which) for a virtual board.

    The app's exported model (apps/<app>/generated/) when it exists; otherwise its untrained
    network (random weights, right for memory and speed, meaningless boxes), generated once
    into build/viewer/<app>/model and reused while app.toml is unchanged."""
    if model_dir is not None:
        if not (model_dir / "model.c").is_file():
            raise SystemExit(f"viewer: {model_dir}: no model.c (a folder written by "
                             "patchcam.compiler.codegen)")
        return model_dir, True, f"generated model in {model_dir}"
    toml = REPO / "apps" / app / "app.toml"
    if not toml.is_file():
        known = sorted(t.parent.name for t in (REPO / "apps").glob("*/app.toml"))
        raise SystemExit(f"viewer: no app {app!r} (apps: {', '.join(known)})")
    gen = REPO / "apps" / app / "generated"
    if (gen / "model.c").is_file():
        meta = {}
        if (gen / "model.json").is_file():
            meta = json.loads((gen / "model.json").read_text()).get("meta", {})
        if meta.get("weights") != "random":
            return gen, True, f"trained {app} model ({_rel(gen, REPO)})"
    out = (build or REPO / "build" / "viewer") / app / "model"
    stamp = out / "generated-from.txt"
    # Regenerate when the app or the code that turns it into C changes.
    h = hashlib.sha256(toml.read_bytes())
    pkg = REPO / "patchcam"
    for f in sorted(p for p in [*(pkg / n for n in _GENERATOR_FILES),
                                *(pkg / "templates").glob("*")] if p.is_file()):
        h.update(f.name.encode() + f.read_bytes())
    key = f"{toml}\n{h.hexdigest()}\n"
    if not all((out / f).is_file() for f in ("model.c", "app_config.h", "model.json")) or \
            not stamp.is_file() or stamp.read_text() != key:
        from patchcam.app import export
        from patchcam.app.config import load_app
        from patchcam.compiler import codegen
        from patchcam.compiler.models import app_graph
        cfg = load_app(app)
        g = app_graph(app)
        codegen.generate(g, out)
        export.generate(export.AppSpec.from_app(cfg, g), out)  # app_config.h for the app loop
        g.save(out / "model.json")  # the int8 graph, for patchcam.app.pipeline and inspection
        stamp.write_text(key)
    return out, False, (f"{app}: no trained weights in apps/{app}/generated/ yet, running its "
                        f"UNTRAINED network (random weights: real memory and speed, "
                        f"meaningless boxes) from {_rel(out, REPO)}")


def _rel(p: Path, root: Path) -> Path:
    try:
        return p.relative_to(root)
    except ValueError:
        return p
