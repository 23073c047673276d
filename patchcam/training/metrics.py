"""Detection accuracy: average precision at IoU 0.5 (PASCAL VOC, all-point interpolation).

    per_class = ap50(preds, gts)        # {class index: AP}, classes that have ground truth
    mean = map50(preds, gts)            # their mean

`preds` holds one entry per image: a `patchcam.app.detect.Detections` or a (boxes, scores,
classes) tuple; `gts` one (boxes, classes) tuple per image. Boxes are (n, 4) x0, y0, x1, y1
in the same pixels. Over all images, a class's detections are taken by score (descending); each
one is a true positive when its best-overlapping ground-truth box of that class has IoU >= 0.5
and was not matched already (a second detection of the same person is a false positive), else
a false positive. AP is the area under the precision envelope over recall (VOC 2010+).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from patchcam.app.detect import iou_matrix

IOU = 0.5


def _unpack(p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if hasattr(p, "boxes"):
        b, s, c = p.boxes, p.scores, p.classes
    else:
        b, s, c = p
    return (np.asarray(b, np.float64).reshape(-1, 4), np.asarray(s, np.float64).reshape(-1),
            np.asarray(c, np.int64).reshape(-1))


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP of a precision / recall curve (recall ascending)."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the envelope: max precision to the right
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def ap50(preds: Sequence, gts: Sequence[tuple[np.ndarray, np.ndarray]],
         iou: float = IOU) -> dict[int, float]:
    """AP per class index, for every class with at least one ground-truth box."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} prediction lists for {len(gts)} images")
    gt = [(np.asarray(b, np.float64).reshape(-1, 4), np.asarray(c, np.int64).reshape(-1))
          for b, c in gts]
    pr = [_unpack(p) for p in preds]
    classes = sorted({int(c) for _, cs in gt for c in cs})
    out: dict[int, float] = {}
    for k in classes:
        npos = sum(int((cs == k).sum()) for _, cs in gt)
        dets = [(s, i, j) for i, (_, ss, cs) in enumerate(pr)
                for j, (s, c) in enumerate(zip(ss, cs, strict=True)) if c == k]
        dets.sort(key=lambda d: -d[0])  # stable: ties keep image order
        matched = [np.zeros(int((cs == k).sum()), bool) for _, cs in gt]
        tp = np.zeros(len(dets))
        for n, (_, i, j) in enumerate(dets):
            g = gt[i][0][gt[i][1] == k]
            if len(g) == 0:
                continue
            o = iou_matrix(pr[i][0][j:j + 1], g)[0]
            best = int(np.argmax(o))
            if o[best] >= iou and not matched[i][best]:
                matched[i][best] = True
                tp[n] = 1
        ctp = np.cumsum(tp)
        recall = ctp / npos
        precision = ctp / np.arange(1, len(dets) + 1)
        out[k] = average_precision(recall, precision) if len(dets) else 0.0
    return out


def map50(preds: Sequence, gts: Sequence[tuple[np.ndarray, np.ndarray]],
          iou: float = IOU) -> float:
    """Mean of `ap50` over the classes with ground truth (nan when there are none)."""
    per = ap50(preds, gts, iou)
    return float(np.mean(list(per.values()))) if per else float("nan")
