"""Detection accuracy: average precision at IoU 0.5 (PASCAL VOC, all-point interpolation).

    per_class = ap50(preds, gts)        # {class index: AP}, classes that have ground truth
    mean = map50(preds, gts)            # their mean

`preds` holds one entry per image: a `patchcam.app.detect.Detections` or a (boxes, scores,
classes) tuple; `gts` one (boxes, classes) tuple per image. Boxes are (n, 4) x0, y0, x1, y1
in the same pixels. Over all images, a class's detections are taken by score (descending); each
one is a true positive when its best-overlapping ground-truth box of that class has IoU >= 0.5
and was not matched already (a second detection of the same person is a false positive), else
a false positive. AP is the area under the precision envelope over recall (VOC 2010+).

    buckets = size_buckets("person_detect")          # {"small": (0, 16), ...}
    by_size = ap50_by_size(preds, gts, buckets)      # {"small": {"boxes", "ap50", "map"}, ...}

AP50 by object size follows COCO's area ranges, so that a bucket's figure is about the objects
in it and nothing else: ground truth outside the bucket is *ignored* (a detection matched to it
is neither a true nor a false positive), and so is an unmatched detection whose own box is
outside the bucket. Size = sqrt(box area) in model-input pixels, buckets half-open [lo, hi).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from patchcam.app.detect import iou_matrix

IOU = 0.5

# Object-size bucket edges, sqrt(box area) in model-input pixels: (small below, large from).
# One place for every app, so the eval report and the model card agree on what "small" is.
SIZE_EDGES: dict[str, tuple[float, float]] = {
    "person_detect": (16.0, 48.0),  # 160x128 input: under 16 px is a person far off
    "mask_detect": (16.0, 32.0),  # faces are smaller than people: the face buckets
}
DEFAULT_SIZE_EDGES = (16.0, 48.0)


def _unpack(p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if hasattr(p, "boxes"):
        b, s, c = p.boxes, p.scores, p.classes
    else:
        b, s, c = p
    return (np.asarray(b, np.float64).reshape(-1, 4), np.asarray(s, np.float64).reshape(-1),
            np.asarray(c, np.int64).reshape(-1))


def _unpack_gts(gts: Sequence) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(b, np.float64).reshape(-1, 4), np.asarray(c, np.int64).reshape(-1))
            for b, c in gts]


def _ap_of(tp: np.ndarray, npos: int) -> float:
    """AP of detections already ranked by score (tp: 1 true, 0 false positive)."""
    if not len(tp):
        return 0.0
    ctp = np.cumsum(tp)
    return average_precision(ctp / npos, ctp / np.arange(1, len(tp) + 1))


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
    gt = _unpack_gts(gts)
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
        out[k] = _ap_of(tp, npos)
    return out


def map50(preds: Sequence, gts: Sequence[tuple[np.ndarray, np.ndarray]],
          iou: float = IOU) -> float:
    """Mean of `ap50` over the classes with ground truth (nan when there are none)."""
    per = ap50(preds, gts, iou)
    return float(np.mean(list(per.values()))) if per else float("nan")


# ---- AP50 by object size ------------------------------------------------------------------
def size_buckets(app: str) -> dict[str, tuple[float, float]]:
    """The app's size buckets, name -> [lo, hi) of sqrt(box area) in model-input pixels
    (SIZE_EDGES; apps not listed get DEFAULT_SIZE_EDGES)."""
    lo, hi = SIZE_EDGES.get(app, DEFAULT_SIZE_EDGES)
    return {"small": (0.0, lo), "medium": (lo, hi), "large": (hi, math.inf)}


def box_size(boxes: np.ndarray) -> np.ndarray:
    """sqrt(area) of (n, 4) x0, y0, x1, y1 boxes: one length, so a bucket means the same for a
    tall person and a square face."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.sqrt(np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None))


def match(det_boxes: np.ndarray, gt_boxes: np.ndarray, gt_ignore: np.ndarray | None = None,
          iou: float = IOU) -> np.ndarray:
    """The ground-truth index each detection matches (-1: none), detections in score order.

    COCO's greedy rule: each detection takes the not yet matched ground-truth box it overlaps
    most with IoU >= iou, preferring a box that is not ignored, so an ignored neighbour never
    steals a match that counts (and a second detection of one box finds it taken)."""
    d = np.asarray(det_boxes, np.float64).reshape(-1, 4)
    g = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    ign = np.zeros(len(g), bool) if gt_ignore is None else np.asarray(gt_ignore, bool)
    out = np.full(len(d), -1, np.int64)
    if not len(d) or not len(g):
        return out
    o = iou_matrix(d, g)
    free = np.ones(len(g), bool)
    for j in range(len(d)):
        for pool in (~ign, ign):
            cand = np.where(free & pool & (o[j] >= iou), o[j], -1.0)
            if cand.max() >= 0:
                out[j] = int(np.argmax(cand))
                free[out[j]] = False
                break
    return out


def _ranked_in_range(pr: tuple, g: np.ndarray, k: int, rng: tuple[float, float],
                     iou: float) -> tuple[list[tuple[float, int]], int]:
    """One image, one class: (score, tp) of the detections that count in the size range, and
    the number of ground-truth boxes in it."""
    lo, hi = rng
    boxes, ss, cs = pr
    sel = np.flatnonzero(cs == k)
    sel = sel[np.argsort(-ss[sel], kind="stable")]
    gsz = box_size(g)
    ignored = (gsz < lo) | (gsz >= hi)
    m = match(boxes[sel], g, ignored, iou)
    dsz = box_size(boxes[sel])
    hit_ignored = np.array([ignored[i] for i in m if i >= 0], bool)
    counted = (dsz >= lo) & (dsz < hi)  # an unmatched detection counts by its own size
    counted[m >= 0] = ~hit_ignored  # a matched one by its ground truth's
    tp = (m >= 0) & counted
    return ([(float(ss[sel[j]]), int(tp[j])) for j in np.flatnonzero(counted)],
            int((~ignored).sum()))


def ap50_in_range(preds: Sequence, gts: Sequence[tuple[np.ndarray, np.ndarray]],
                  rng: tuple[float, float], iou: float = IOU) -> dict[int, float]:
    """AP per class index over the ground truth whose size is in rng = [lo, hi) (module
    docstring: the rest is ignored, not counted against the detector), for every class with a
    ground-truth box in range. Ranking and AP as `ap50`; matching is COCO's (`match`)."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} prediction lists for {len(gts)} images")
    gt, pr = _unpack_gts(gts), [_unpack(p) for p in preds]
    out: dict[int, float] = {}
    for k in sorted({int(c) for _, cs in gt for c in cs}):
        dets: list[tuple[float, int]] = []
        npos = 0
        for p, (gb, gc) in zip(pr, gt, strict=True):
            d, n = _ranked_in_range(p, gb[gc == k], k, rng, iou)
            dets += d
            npos += n
        if npos:
            dets.sort(key=lambda t: -t[0])  # stable: ties keep image order
            out[k] = _ap_of(np.array([t for _, t in dets], np.float64), npos)
    return out


def ap50_by_size(preds: Sequence, gts: Sequence[tuple[np.ndarray, np.ndarray]],
                 buckets: Mapping[str, tuple[float, float]], iou: float = IOU
                 ) -> dict[str, dict]:
    """Per bucket: its ground-truth box count, AP50 per class index (`ap50_in_range`) and
    their mean (nan when the bucket holds no box)."""
    sizes = np.concatenate([box_size(b) for b, _ in gts]) if len(gts) else np.zeros(0)
    out = {}
    for name, (lo, hi) in buckets.items():
        per = ap50_in_range(preds, gts, (lo, hi), iou)
        out[name] = {"boxes": int(((sizes >= lo) & (sizes < hi)).sum()), "ap50": per,
                     "map": float(np.mean(list(per.values()))) if per else math.nan}
    return out
