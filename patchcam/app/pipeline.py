"""The whole board pipeline in Python: frame -> preprocess -> int8 reference -> postprocess ->
the exact RESULT a board must send (docs/design.md §4.7, §5.4).

    pipe = Pipeline(graph, AppSpec.detect("person_detect", graph, ["person"]))
    want = pipe.run(pixels, width, height, PixFmt.RGB565, frame_id=7)      # protocol.Result
    assert board_result.same_outcome(want)                                # timings aside

`apply(Set(...))` mirrors a SET the board accepted (threshold, NMS IoU, max detections,
preview), so the expected results follow the board's settings.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from patchcam.app import preprocess as pre
from patchcam.app.detect import decode_int8
from patchcam.app.export import AppSpec
from patchcam.compiler import reference
from patchcam.compiler.ir import Graph
from patchcam.host import protocol as pp


class Pipeline:
    def __init__(self, g: Graph, spec: AppSpec) -> None:
        self.g, self.spec = g, spec
        self.decode = spec.decode
        self.preview_k = 0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.g.tensors[self.g.input].shape)

    def preprocess(self, pixels: bytes | np.ndarray, width: int, height: int,
                   fmt: pp.PixFmt) -> np.ndarray:
        return pre.preprocess(pixels, width, height, fmt, self.input_shape)

    def postprocess(self, y: np.ndarray, frame_id: int,
                    source: pp.Source = pp.Source.FRAME) -> pp.Result:
        if self.spec.task == "classify":
            return pp.Result(frame_id, pp.Task.CLASSIFY, [int(v) for v in y.reshape(-1)],
                             source=source)
        assert self.decode is not None
        d = decode_int8(y, self.decode)
        dets = [pp.Detection(*(int(v) for v in b), int(c), int(s))
                for b, c, s in zip(d.boxes, d.classes, d.scores, strict=True)]
        return pp.Result(frame_id, pp.Task.DETECT, detections=dets, source=source)

    def run(self, pixels: bytes | np.ndarray, width: int, height: int, fmt: pp.PixFmt,
            frame_id: int, source: pp.Source = pp.Source.FRAME) -> pp.Result:
        x = self.preprocess(pixels, width, height, fmt)
        return self.postprocess(reference.run(self.g, x), frame_id, source)

    def preview(self, pixels: bytes | np.ndarray, width: int, height: int,
                fmt: pp.PixFmt) -> tuple[np.ndarray, pp.PixFmt] | None:
        """The PREVIEW image the board sends before the RESULT (None while preview is off)."""
        if self.preview_k == 0:
            return None
        return pre.preview(self.preprocess(pixels, width, height, fmt), self.preview_k)

    def apply(self, s: pp.Set) -> None:
        """Mirror a setting the board accepted."""
        if s.key == pp.SetKey.PREVIEW:
            self.preview_k = s.value
            return
        if self.decode is None:
            raise ValueError(f"{pp.SetKey(s.key).name} applies to detect apps only")
        field = {pp.SetKey.SCORE_Q: "q_threshold", pp.SetKey.NMS_IOU_Q10: "iou_q10",
                 pp.SetKey.MAX_DETECTIONS: "max_detections"}.get(pp.SetKey(s.key))
        if field is not None:
            self.decode = replace(self.decode, **{field: s.value})
