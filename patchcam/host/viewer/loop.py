"""The viewer's main loop: `Viewer` streams frames to a target one at a time, waits for each
RESULT, and shows / records one canvas per frame, reconnecting when the board goes silent, resets
or drops the line; `Viewer.run_camera` shows the board's own camera instead.

The viewer resizes each frame to the model's input on the host (INTER_AREA) before sending it:
the fewest bytes on a slow line, and the board's own nearest-neighbour resize is then the
identity. Frames go as RGB888 (GRAY8 for a grey model).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from patchcam.host import protocol as pp
from patchcam.host.sources import Source
from patchcam.host.viewer.app import app_threshold
from patchcam.host.viewer.overlay import View, info_line, render, sigmoid
from patchcam.host.viewer.recorder import Recorder, result_record
from patchcam.host.viewer.targets import TargetError, VirtualBoardTarget, _one_line

THRESHOLD_STEP = 0.05  # the + / - keys move the detection threshold by this
RETRY_FIRST, RETRY_MAX = 0.05, 1.0  # pauses between attempts to open a port: doubling, capped
HELLO_RETRY = 1.0  # seconds between HELLO requests to a silent board


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
        return ("this OpenCV has no GUI (opencv-python-headless); make setup WINDOW=1 "
                "installs the pinned OpenCV with its window")
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
        self._opened = False  # the target has opened once (later failures are reconnections)

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
        """Open the link and get a HELLO, retrying until deadline. True when connected.

        Every wait ends by the deadline, opening the target included (`target.open(deadline)`:
        a socket that never connects, QEMU that never listens), with pauses between attempts
        to open (a port that refuses is not hammered). A target that has never opened and
        cannot by the deadline, or cannot ever (TargetFatal: permission denied, not a serial
        port), raises a one-line TargetError: there is nothing to show, so the viewer stops
        and says why."""
        if self._silent_since is None:
            self._silent_since = time.monotonic()
        started, pause = time.monotonic(), RETRY_FIRST
        while not self.quit:
            if self.link is None:
                try:
                    self.link = self.target.open(deadline)
                except TargetError as e:
                    if e.fatal:
                        raise
                    if not self._pause_after_open_failure(e, deadline, pause, started):
                        return False
                    pause = min(2 * pause, RETRY_MAX)
                    continue
                if self.view.hello is not None or self.target_started_before():
                    self.view.stats.reconnects += 1
                    self.log(f"reconnected to {self.target.description}")
                self._opened = True
            left = deadline - time.monotonic()
            try:
                hello = self._request_hello(time.monotonic() +
                                            max(0.05, min(self.opt.hello_timeout, left)))
            except Exception as e:  # noqa: BLE001 - serial / socket errors: reconnect
                self._lost(e)
                if time.monotonic() >= deadline:
                    return False
                continue
            if hello is None:
                if self.quit:
                    return False
                self._silent(deadline)
                if time.monotonic() >= deadline:
                    return False
                continue
            self._on_hello(hello)
            self._settle()
            return True
        return False

    def _pause_after_open_failure(self, e: TargetError, deadline: float, pause: float,
                                  started: float) -> bool:
        """After a failed open: wait `pause` (never past the deadline) and say whether to try
        again. Past the deadline: False, or TargetError when the target never opened."""
        if self._opened:
            self.set_status(f"{e}; retrying")
        else:  # one line at the end, not one per attempt
            self.view.status = str(e)
        if not self._sleep_until(min(deadline, time.monotonic() + pause)):
            return False
        if time.monotonic() < deadline:
            return True
        if not self._opened:
            raise TargetError(f"{e}; gave up after {time.monotonic() - started:.1f} s") \
                from None
        return False

    def _request_hello(self, until: float) -> pp.Hello | None:
        """Ask for the board's HELLO (again every HELLO_RETRY s) until `until`; None when
        none came. What else arrives meanwhile is handled as usual, so a bad HELLO is
        reported, not silently skipped."""
        assert self.link is not None
        ask_at = 0.0
        while (now := time.monotonic()) < until and not self.quit:
            if now >= ask_at:
                self.link.send(pp.HelloRequest())
                ask_at = now + HELLO_RETRY
            m = self.link.receive(min(until - now, 0.1))
            if isinstance(m, pp.Hello):
                return m
            if m is not None:
                self._other(m, 0)
            self._pump_keys(1)
        return None

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
        """Wait until t (monotonic), reading keys in a window; False when q was pressed.
        Headless, it sleeps: waiting must not spin."""
        while (left := t - time.monotonic()) > 0:
            if self.quit:
                return False
            if self.opt.headless or self._wait_key is None:
                time.sleep(min(left, 0.05))
            else:
                self._pump_keys(max(1, min(50, int(left * 1000))))
        return not self.quit

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
        """Everything but the RESULT / HELLO being waited for: one line each at most."""
        if isinstance(m, pp.Log):
            self.log(f"board: {_printable(m.text)}")
        elif isinstance(m, pp.Error):
            name = m.code.name if isinstance(m.code, pp.ErrorCode) else str(m.code)
            what = f" (frame {m.frame_id})" if m.frame_id else ""
            self.set_status(f"board error {name}{what}: {_printable(m.text)}")
        elif isinstance(m, pp.Set):
            self._on_set(m)
        elif isinstance(m, pp.ProtocolError):  # validated by the link: never acted on
            self.log(f"dropped a bad message from the board: {m.detail}")
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
                        preview = (fid, _preview_bgr(data, w, h, fmt))
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


def _preview_bgr(data: bytes, width: int, height: int, fmt: pp.PixFmt) -> np.ndarray:
    """A thumbnail in any pixel format the protocol has, as 8-bit BGR."""
    img = pp.image_array(data, width, height, fmt)
    if fmt == pp.PixFmt.RGB565:  # bit replication, as the board's preprocessing does
        r, g, b = (img >> 11) & 31, (img >> 5) & 63, img & 31
        img = np.stack([(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)],
                       axis=-1).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)


def _printable(text: str, limit: int = 200) -> str:
    """A board's text for a one-line log or status: control characters escaped, shortened."""
    t = text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1]
                                                for c in text)
    return t if len(t) <= limit else t[:limit - 3] + "..."
