"""Where the viewer draws: one annotated canvas per frame, the board's boxes (or class scores)
on the frame, with an info bar above and a status bar below. Pure drawing, no I/O.

The canvas is the frame scaled to `DISPLAY_W` pixels wide, with an info bar above it
(`TOP_H` pixels: board, app, model, arena, flash) and a status bar below (`BOTTOM_H`: FPS,
latency, threshold, and a status line when the board is silent, resets or reconnects). A box
(x0, y0, x1, y1) in model-input pixels lands at (x * img_w / input_w, TOP_H + y * img_h /
input_h): the board stretches the whole frame to its input (docs/protocol.md, preprocessing),
so the mapping back is a plain scale.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from patchcam.host import protocol as pp

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


def class_color(cls: int) -> tuple[int, int, int]:
    return PALETTE[cls % len(PALETTE)]


def sigmoid(x: float) -> float:
    """The logistic function, without math.exp overflowing for a large |x|."""
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


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
