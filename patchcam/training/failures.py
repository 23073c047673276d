"""Where a detector fails: the photos with its worst misses and its strongest false boxes.

    misses, false = find_failures(preds, gts)        # preds at the app's score threshold
    n = write_grid(path, images, preds, gts, misses, false, class_names)

A ground-truth box is *missed* when no detection of its class matches it (IoU >= 0.5, the
greedy matching of `metrics.match`); a detection is a *false box* when it matches no
ground-truth box. Miss tiles come first, the images with the most missed area (input pixels²)
first; then false-box tiles, the image with the highest-scoring false box first. Each tile is
the model's input enlarged 2x (nearest: the pixels the model saw), ground truth in green,
detections in red with their score, and a one-line caption ("missed 2 of 3", "false box 0.71").

The grid shows crops of third-party dataset photos, whose licences are not ours to grant:
callers write it under build/ (never into apps/ or anywhere committed) and the model card
carries only the counts and the command that draws it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from patchcam.training import metrics

COLS, ROWS = 4, 3  # tiles per row, rows at most: 12 tiles
ZOOM = 2  # tiles are enlarged this much, for readability
CAPTION_H = 20  # pixels under each enlarged tile for its caption
GT_BGR = (0, 200, 0)
DET_BGR = (0, 0, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Failure:
    """One image worth showing, and why."""
    image: int  # index into the evaluated images
    kind: str  # "miss" or "false"
    weight: float  # what it is ranked by: missed area (px²) or the false box's score
    caption: str


def errors(pred: tuple, gt: tuple[np.ndarray, np.ndarray],
           iou: float = metrics.IOU) -> tuple[np.ndarray, np.ndarray]:
    """One image's (missed ground-truth mask, false detection mask): per class, detections by
    score take their best free ground-truth box (`metrics.match`), as the AP figures do."""
    boxes, scores, classes = (np.asarray(a) for a in pred)
    gb = np.asarray(gt[0], np.float64).reshape(-1, 4)
    gc = np.asarray(gt[1], np.int64).reshape(-1)
    missed, false = np.ones(len(gb), bool), np.ones(len(boxes), bool)
    for k in set(gc.tolist()) | set(np.asarray(classes).tolist()):
        d = np.flatnonzero(classes == k)
        d = d[np.argsort(-scores[d], kind="stable")]
        g = np.flatnonzero(gc == k)
        m = metrics.match(boxes[d].reshape(-1, 4), gb[g], iou=iou)
        false[d[m >= 0]] = False
        missed[g[m[m >= 0]]] = False
    return missed, false


def find_failures(preds: Sequence[tuple], gts: Sequence[tuple[np.ndarray, np.ndarray]],
                  iou: float = metrics.IOU) -> tuple[list[Failure], list[Failure]]:
    """Images with misses (most missed area first) and images with false boxes (highest
    false score first); preds are (boxes, scores, classes) at the app's score threshold."""
    misses, false = [], []
    for i, (p, g) in enumerate(zip(preds, gts, strict=True)):
        mi, fa = errors(p, g, iou)
        if mi.any():
            area = float(np.sum(metrics.box_size(np.asarray(g[0])[mi]) ** 2))
            misses.append(Failure(i, "miss", area, f"missed {int(mi.sum())} of {len(mi)}"))
        if fa.any():
            top = float(np.max(np.asarray(p[1])[fa]))
            false.append(Failure(i, "false", top, f"false box {top:.2f}"))
    misses.sort(key=lambda f: -f.weight)  # stable: ties keep image order
    false.sort(key=lambda f: -f.weight)
    return misses, false


def two_classes(pred: tuple, gt: tuple[np.ndarray, np.ndarray], iou: float = metrics.IOU) -> int:
    """One image's ground-truth boxes that detections of two or more classes overlap with
    IoU >= iou: an object the detector was unsure of, boxed once per class (NMS per class)."""
    boxes, _, classes = (np.asarray(a) for a in pred)
    gb = np.asarray(gt[0], np.float64).reshape(-1, 4)
    if not len(boxes) or not len(gb):
        return 0
    over = metrics.iou_matrix(gb, boxes.reshape(-1, 4).astype(np.float64)) >= iou
    return int(sum(len(set(classes[row].tolist())) >= 2 for row in over))


def counts(preds: Sequence[tuple], gts: Sequence[tuple[np.ndarray, np.ndarray]],
           buckets: Mapping[str, tuple[float, float]] | None = None,
           iou: float = metrics.IOU) -> dict:
    """The figures the model card lists: boxes missed and false boxes, over how many images,
    ground-truth boxes boxed as two classes or more, and the misses per size bucket ([missed,
    boxes]) when buckets are given."""
    per = [errors(p, g, iou) for p, g in zip(preds, gts, strict=True)]
    out = {"images": len(per), "boxes": int(sum(len(m) for m, _ in per)),
           "missed": int(sum(m.sum() for m, _ in per)),
           "images_with_misses": int(sum(m.any() for m, _ in per)),
           "false": int(sum(f.sum() for _, f in per)),
           "images_with_false": int(sum(f.any() for _, f in per)),
           "two_classes": sum(two_classes(p, g, iou) for p, g in zip(preds, gts, strict=True))}
    if buckets:
        sizes = [metrics.box_size(np.asarray(g[0])) for g in gts]
        out["missed_by_size"] = {
            name: [int(sum(((s >= lo) & (s < hi) & m).sum() for s, (m, _) in zip(sizes, per,
                                                                               strict=True))),
                   int(sum(((s >= lo) & (s < hi)).sum() for s in sizes))]
            for name, (lo, hi) in buckets.items()}
    return out


def pick(misses: list[Failure], false: list[Failure], n: int = COLS * ROWS) -> list[Failure]:
    """At most n tiles: half misses, half false boxes, either filling what the other lacks."""
    nm = min(len(misses), max(n // 2, n - len(false)))
    return misses[:nm] + false[:n - nm]


def draw_tile(image: np.ndarray, gt_boxes: np.ndarray, pred: tuple, caption: str,
              class_names: Sequence[str] | None = None) -> np.ndarray:
    """One image enlarged ZOOM x: ground truth green, detections red with their score (and
    class, for several classes), the caption underneath. BGR uint8."""
    img = image if image.ndim == 3 and image.shape[2] == 3 else \
        cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    h, w = img.shape[:2]
    big = cv2.resize(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR),
                     (w * ZOOM, h * ZOOM), interpolation=cv2.INTER_NEAREST)
    for b in np.asarray(gt_boxes).reshape(-1, 4):
        cv2.rectangle(big, *_corners(b), GT_BGR, 2)  # thicker: a missed box must stand out
    boxes, scores, classes = pred
    for b, s, c in zip(np.asarray(boxes).reshape(-1, 4), scores, classes, strict=True):
        p0, p1 = _corners(b)
        cv2.rectangle(big, p0, p1, DET_BGR, 1)
        label = f"{class_names[int(c)]} {s:.2f}" if class_names and len(class_names) > 1 \
            else f"{s:.2f}"
        _label(big, label, (p0[0], max(p0[1], 12)))
    tile = np.zeros((h * ZOOM + CAPTION_H, w * ZOOM, 3), np.uint8)
    tile[:h * ZOOM] = big
    cv2.putText(tile, caption, (4, h * ZOOM + CAPTION_H - 6), FONT, 0.45, (255, 255, 255), 1,
                cv2.LINE_AA)
    return tile


def _label(img: np.ndarray, text: str, at: tuple[int, int]) -> None:
    """White on red just above `at` (the box's top-left): readable on any photo."""
    (tw, th), _ = cv2.getTextSize(text, FONT, 0.35, 1)
    x, y = at
    cv2.rectangle(img, (x, y - th - 4), (x + tw + 3, y), DET_BGR, -1)
    cv2.putText(img, text, (x + 2, y - 3), FONT, 0.35, (255, 255, 255), 1, cv2.LINE_AA)


def _corners(b: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    return ((int(round(b[0] * ZOOM)), int(round(b[1] * ZOOM))),
            (int(round(b[2] * ZOOM)) - 1, int(round(b[3] * ZOOM)) - 1))


def grid(tiles: list[np.ndarray], cols: int = COLS) -> np.ndarray:
    """Tiles row by row, cols wide; the last row padded with black tiles."""
    rows = math.ceil(len(tiles) / cols)
    blank = np.zeros_like(tiles[0])
    padded = tiles + [blank] * (rows * cols - len(tiles))
    return np.concatenate([np.concatenate(padded[r * cols:(r + 1) * cols], axis=1)
                           for r in range(rows)], axis=0)


def write_grid(path: Path, images: Sequence[np.ndarray], preds: Sequence[tuple],
               gts: Sequence[tuple[np.ndarray, np.ndarray]], misses: list[Failure],
               false: list[Failure], class_names: Sequence[str] | None = None) -> int:
    """Draw `pick(misses, false)` into one PNG at path; the number of tiles (0: nothing to
    show, no file written and any old one removed, so a stale grid never outlives its run)."""
    chosen = pick(misses, false)
    path = Path(path)
    if not chosen:
        path.unlink(missing_ok=True)
        return 0
    tiles = [draw_tile(images[f.image], gts[f.image][0], preds[f.image], f.caption, class_names)
             for f in chosen]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), grid(tiles)):
        raise OSError(f"{path}: cannot write the PNG")
    return len(tiles)
