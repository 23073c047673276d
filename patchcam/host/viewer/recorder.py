"""The viewer's outputs on disk: annotated canvases as a video and/or a folder of PNGs, with
results.jsonl saying what the board answered for each frame (what tests and `make demo` read).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from patchcam.host import protocol as pp
from patchcam.host.viewer.overlay import class_name, detection_probability


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
            line = json.dumps(_finite({"image": fname, "name": name, **(record or {})}),
                              allow_nan=False)
            self._log.write(line + "\n")
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


def _finite(v: object) -> object:
    """v with every NaN or infinite float replaced by None: results.jsonl stays strict JSON
    (json.dumps would write NaN, which JSON parsers reject), whatever a board sent."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    return v


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
