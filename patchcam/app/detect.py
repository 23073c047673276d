"""An anchor-free grid detection head for MCUs, its loss, and its decoders (float and integer).

The head
--------
`Detector` = `zoo.Backbone` (the config decides the feature stride, 8 for the detection apps:
see `apps.AppConfig.zoo_config`) + `DetectHead`: `blocks` x (depthwise kxk + pointwise, BN,
ReLU6), then one 1x1 conv with bias. Only conv / depthwise / pointwise ops, so
`quantize.fuse` converts the whole detector and the int8 graph ends in ONE output tensor:

    out[y, x, c]  int8, shape (H, W, K + 4), H = input_h / stride, W = input_w / stride
    c in 0..K-1   class logits (sigmoid-free: compared against logit(threshold))
    c = K..K+3    l, t, r, b: distances from the cell's anchor point to the box's left, top,
                  right, bottom edge, in units of the stride

    anchor of cell (y, x) = ((x + 0.5) * stride, (y + 0.5) * stride)  in input pixels
    box = (ax - l*stride, ay - t*stride, ax + r*stride, ay + b*stride), clipped to the input

All channels share the tensor's scale S and zero point Z (value = S * (q - Z)). Training is
FCOS-like: a cell is positive for a box when its anchor lies inside the box and within
`radius` strides of the box centre (the cell holding the centre always is; the smallest box
wins ties); sigmoid focal loss on the class logits, GIoU loss on the positive cells' boxes.

Decoding (both decoders take the same decisions; docs/design.md §4.7)
-------------------------------------------------------------
For every cell in raster order and every class c in order: (cell, c) is a candidate, with
the cell's box, when logit c >= logit(score_threshold) - the classes are scored
independently (sigmoid), as in RetinaNet and FCOS. Candidates are ordered by logit
(descending; ties: raster order, then class), the first `max_candidates` kept, then greedy
NMS (IoU > nms_iou suppresses) keeps at most `max_detections`. Class-agnostic NMS keeps one
box per object: a cell's second class has the same box as its first, so it is suppressed;
per-class NMS keeps a box of each class that scores above the threshold (an unsure face is
then both a `mask` and a `no_mask` candidate, which is what AP per class rewards).

`decode_float` works on float logits (a float model's output, or the dequantised int8 one).
`decode_int8` is what the firmware runs, written as C-like loops over Python ints, with
everything that needs floats computed once by `DecodeParams.prepare`:

- q_threshold = the smallest int8 q with S * (q - Z) >= logit(score_threshold)
  (128: nothing passes), so the per-cell test is one integer compare;
- box_multiplier = round(stride * S * 2**16); a box edge in Q16 input pixels is
  anchor_q16 -/+ box_multiplier * (q - Z), with anchor_q16 = (2x + 1) * stride * 2**15,
  then clamped to [0, W * 2**16] and rounded half up to whole pixels: (v + 2**15) >> 16.
  Every intermediate stays inside int32 (checked in `prepare`);
- iou_q10 = round(nms_iou * 1024): box A is suppressed by B when
  inter * 1024 > iou_q10 * union (areas are products of whole pixels: int32 for inputs up
  to 2**10 px a side).

Rounding contract: `decode_float(dequantize(q), ..., round_pixels=True)` and `decode_int8(q)`
give the same detections, except that a box edge may differ by 1 px when the exact edge lies
within 255 * 2**-17 px (< 0.002 px) of a half pixel (box_multiplier is S * stride rounded to
2**-16); the float NMS compares IoU against iou_q10 / 1024, the threshold the firmware uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from patchcam.app.config import MAX_CANDIDATES, MAX_DETECTIONS
from patchcam.compiler import zoo
from patchcam.compiler.presets import feature_stride

FRAC_BITS = 16
IOU_ONE = 1024  # NMS IoU threshold resolution (Q10)
PRIOR = 0.01  # initial foreground probability of the class logits (focal-loss prior)


class DetectHead(nn.Module):
    def __init__(self, cin: int, num_classes: int, channels: int = 64, blocks: int = 1,
                 kernel: int = 5):
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        for _ in range(blocks):
            layers += [zoo.conv_bn(c, c, kernel, groups=c), zoo.conv_bn(c, channels, 1)]
            c = channels
        self.tower = nn.Sequential(*layers)
        self.num_classes = num_classes
        self.out = zoo.SameConv2d(c, num_classes + 4, 1, bias=True)
        nn.init.normal_(self.out.weight, std=0.01)
        with torch.no_grad():
            self.out.bias[:num_classes] = -math.log((1 - PRIOR) / PRIOR)
            self.out.bias[num_classes:] = 1.0  # a box 2 strides wide before training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.tower(x))


class Detector(nn.Module):
    """Backbone + grid head; forward returns the raw (N, K + 4, H, W) map."""

    def __init__(self, cfg: zoo.Config, num_classes: int, head_channels: int = 64,
                 head_blocks: int = 1, head_kernel: int = 5):
        super().__init__()
        self.cfg = cfg
        self.stride = feature_stride(cfg)
        self.num_classes = num_classes
        self.backbone = zoo.Backbone(cfg)
        self.head = DetectHead(self.backbone.out_channels, num_classes, head_channels,
                               head_blocks, head_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


# ---- training targets and loss ------------------------------------------------------------
def anchors(h: int, w: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor points (ay, ax), each (H, W), in input pixels."""
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * stride
    return torch.meshgrid(ys, xs, indexing="ij")


def assign(boxes: torch.Tensor, labels: torch.Tensor, h: int, w: int, stride: int,
           num_classes: int, radius: float = 1.5) -> tuple[torch.Tensor, torch.Tensor,
                                                           torch.Tensor]:
    """Targets of one image: class map (K, H, W), box map (H, W, 4) and positive mask (H, W)."""
    cls_t = torch.zeros(num_classes, h, w)
    box_t = torch.zeros(h, w, 4)
    if len(boxes) == 0:
        return cls_t, box_t, torch.zeros(h, w, dtype=torch.bool)
    ay, ax = anchors(h, w, stride)
    b = boxes.float()[:, :, None, None]  # (n, 4, 1, 1)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    inside = (ax > b[:, 0]) & (ax < b[:, 2]) & (ay > b[:, 1]) & (ay < b[:, 3])
    near = ((ax - cx).abs() < radius * stride) & ((ay - cy).abs() < radius * stride)
    centre_cell = ((cx / stride).floor().clamp(0, w - 1) == (ax / stride).floor()) & \
                  ((cy / stride).floor().clamp(0, h - 1) == (ay / stride).floor())
    mask = (inside & near) | centre_cell  # (n, H, W)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    cost = torch.where(mask, area.float()[:, None, None], torch.tensor(float("inf")))
    best = cost.argmin(0)
    pos = mask.any(0)
    box_t = boxes.float()[best]  # (H, W, 4)
    cls_t[labels.long()[best], torch.arange(h)[:, None], torch.arange(w)[None, :]] = \
        pos.float()
    return cls_t, box_t, pos


def decode_torch(out: torch.Tensor, stride: int) -> torch.Tensor:
    """(N, K + 4, H, W) -> boxes (N, H, W, 4) in input pixels, float, unclipped."""
    k = out.shape[1] - 4
    ay, ax = anchors(out.shape[2], out.shape[3], stride)
    d = out[:, k:].permute(0, 2, 3, 1) * stride
    return torch.stack([ax - d[..., 0], ay - d[..., 1], ax + d[..., 2], ay + d[..., 3]], -1)


def giou_loss(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """1 - GIoU of (n, 4) boxes; well defined for the degenerate boxes an early head makes."""
    pw, ph = (p[:, 2] - p[:, 0]).clamp(min=0), (p[:, 3] - p[:, 1]).clamp(min=0)
    tw, th = t[:, 2] - t[:, 0], t[:, 3] - t[:, 1]
    iw = (torch.min(p[:, 2], t[:, 2]) - torch.max(p[:, 0], t[:, 0])).clamp(min=0)
    ih = (torch.min(p[:, 3], t[:, 3]) - torch.max(p[:, 1], t[:, 1])).clamp(min=0)
    inter = iw * ih
    union = pw * ph + tw * th - inter
    cw = torch.max(p[:, 2], t[:, 2]) - torch.min(p[:, 0], t[:, 0])
    ch = torch.max(p[:, 3], t[:, 3]) - torch.min(p[:, 1], t[:, 1])
    hull = (cw * ch).clamp(min=1e-6)
    iou = inter / union.clamp(min=1e-6)
    return 1 - (iou - (hull - union) / hull)


def detection_loss(out: torch.Tensor, targets: list[tuple[torch.Tensor, torch.Tensor]],
                   stride: int, radius: float = 1.5, box_weight: float = 2.0,
                   alpha: float = 0.25, gamma: float = 2.0,
                   class_weights: tuple[float, ...] | None = None
                   ) -> tuple[torch.Tensor, dict]:
    """Focal loss on the class logits + GIoU on positive cells, both per positive cell.

    targets: one (boxes (n, 4) in input pixels, class indices (n,)) pair per image.
    class_weights: one factor per class on its positive cells' focal term, so a rare class
    (no_mask among masked faces) is not learned as background.
    """
    n, c, h, w = out.shape
    k = c - 4
    cls_t, box_t, pos = (torch.stack(v) for v in zip(
        *(assign(b, lb, h, w, stride, k, radius) for b, lb in targets), strict=True))
    num_pos = max(1.0, float(pos.sum()))
    focal_map = sigmoid_focal_loss(out[:, :k], cls_t, alpha, gamma)
    if class_weights is not None:
        if len(class_weights) != k:
            raise ValueError(f"class_weights has {len(class_weights)} factors for {k} classes")
        w = torch.tensor(class_weights, dtype=out.dtype).view(1, k, 1, 1)
        focal_map = focal_map * (1 + cls_t * (w - 1))  # negatives keep weight 1
    focal = focal_map.sum() / num_pos
    if pos.any():
        pred = decode_torch(out, stride)[pos]
        box = giou_loss(pred, box_t[pos]).sum() / num_pos
    else:
        box = out.sum() * 0.0
    loss = focal + box_weight * box
    parts = {"focal": float(focal.detach()), "giou": float(box.detach()),
             "positives": int(pos.sum())}
    return loss, parts


def sigmoid_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float,
                           gamma: float) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017), elementwise."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    a_t = alpha * target + (1 - alpha) * (1 - target)
    return a_t * ce * (1 - p_t) ** gamma


# ---- decoding -----------------------------------------------------------------------------
@dataclass
class Detections:
    boxes: np.ndarray  # (n, 4) x0, y0, x1, y1 in input pixels (int32 from decode_int8)
    scores: np.ndarray  # (n,) the class's logit: float, or int8 q from decode_int8
    classes: np.ndarray  # (n,) int class index
    cells: np.ndarray  # (n,) raster index y * W + x of the cell that produced each box

    def __len__(self) -> int:
        return len(self.boxes)

    def probabilities(self, scale: float = 1.0, zero_point: int = 0) -> np.ndarray:
        """Scores as probabilities (for int8 scores pass the output's scale / zero point)."""
        return 1 / (1 + np.exp(-scale * (self.scores.astype(np.float64) - zero_point)))


def logit(p: float) -> float:
    if not 0 < p < 1:
        raise ValueError(f"score threshold must be in (0, 1), got {p}")
    return math.log(p / (1 - p))


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """The float value of int8 q, computed in float32 as the firmware-side reference does."""
    return np.float32(scale) * (q.astype(np.float32) - np.float32(zero_point))


@dataclass(frozen=True)
class DecodeParams:
    """Everything the integer decoder needs, computed once (the C port's `prepare`)."""
    num_classes: int
    stride: int
    grid: tuple[int, int]  # (H, W) of the output map
    image: tuple[int, int]  # (width, height) of the model input
    zero_point: int
    q_threshold: int  # (cell, class) is a candidate when the class's q >= this (128: never)
    box_multiplier: int  # round(stride * scale * 2**16)
    iou_q10: int  # round(nms_iou * 1024)
    max_candidates: int
    max_detections: int
    class_agnostic: bool

    @staticmethod
    def prepare(scale: float, zero_point: int, num_classes: int, stride: int,
                grid: tuple[int, int], image: tuple[int, int], score_threshold: float,
                nms_iou: float, max_candidates: int = 64, max_detections: int = 16,
                class_agnostic: bool = True) -> DecodeParams:
        t = logit(score_threshold)
        qs = np.arange(-128, 128)
        passing = qs[dequantize(qs, scale, zero_point).astype(np.float64) >= t]
        q_thr = int(passing[0]) if len(passing) else 128
        m = int(round(stride * float(np.float32(scale)) * (1 << FRAC_BITS)))
        w, h = image
        worst = m * 255 + max(w, h) * stride * (1 << FRAC_BITS)
        if worst >= 2**31 or max(w, h) > 1024:
            raise ValueError(f"decode would overflow int32 (scale {scale}, stride {stride}, "
                             f"image {w}x{h})")
        if not 0 <= nms_iou <= 1:
            raise ValueError(f"NMS IoU threshold must be in [0, 1], got {nms_iou}")
        if not 1 <= max_candidates <= MAX_CANDIDATES:
            raise ValueError(f"max_candidates must be in 1..{MAX_CANDIDATES}, got "
                             f"{max_candidates}")
        if not 1 <= max_detections <= MAX_DETECTIONS:  # more than max_candidates never come
            raise ValueError(f"max_detections must be in 1..{MAX_DETECTIONS} (one RESULT "
                             f"packet), got {max_detections}")
        return DecodeParams(num_classes, stride, tuple(grid), tuple(image), int(zero_point),
                            q_thr, m, int(round(nms_iou * IOU_ONE)), max_candidates,
                            max_detections, class_agnostic)

    def c_defines(self, prefix: str = "PC_DET") -> dict[str, int]:
        """The constants a firmware header needs, by #define name."""
        return {f"{prefix}_NUM_CLASSES": self.num_classes, f"{prefix}_STRIDE": self.stride,
                f"{prefix}_GRID_H": self.grid[0], f"{prefix}_GRID_W": self.grid[1],
                f"{prefix}_IMAGE_W": self.image[0], f"{prefix}_IMAGE_H": self.image[1],
                f"{prefix}_ZERO_POINT": self.zero_point,
                f"{prefix}_Q_THRESHOLD": self.q_threshold,
                f"{prefix}_BOX_MULTIPLIER": self.box_multiplier,
                f"{prefix}_FRAC_BITS": FRAC_BITS, f"{prefix}_IOU_Q10": self.iou_q10,
                f"{prefix}_MAX_CANDIDATES": self.max_candidates,
                f"{prefix}_MAX_DETECTIONS": self.max_detections,
                f"{prefix}_CLASS_AGNOSTIC": int(self.class_agnostic)}


def _candidates(scores: list[int], max_candidates: int) -> list[int]:
    """Indices into the candidate lists (built in raster, then class order): by score
    descending, that order on ties."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order[:max_candidates]


def decode_int8(q: np.ndarray, p: DecodeParams) -> Detections:
    """The firmware's decoder: integer arithmetic only (see the module docstring)."""
    h, w = p.grid
    k = p.num_classes
    if q.shape != (h, w, k + 4) or q.dtype != np.int8:
        raise ValueError(f"expected int8 {(h, w, k + 4)}, got {q.dtype} {q.shape}")
    one, half = 1 << FRAC_BITS, 1 << (FRAC_BITS - 1)
    img_w, img_h = p.image
    boxes, scores, classes, cells = [], [], [], []
    for y in range(h):
        for x in range(w):
            v = q[y, x]
            passing = [c for c in range(k) if int(v[c]) >= p.q_threshold]
            if not passing:
                continue
            ax, ay = (2 * x + 1) * p.stride * half, (2 * y + 1) * p.stride * half  # Q16
            d = [p.box_multiplier * (int(v[k + i]) - p.zero_point) for i in range(4)]
            edges = (ax - d[0], ay - d[1], ax + d[2], ay + d[3])
            lims = (img_w * one, img_h * one, img_w * one, img_h * one)
            x0, y0, x1, y1 = ((min(max(e, 0), lim) + half) >> FRAC_BITS
                              for e, lim in zip(edges, lims, strict=True))
            if x1 <= x0 or y1 <= y0:
                continue
            for c in passing:
                boxes.append((x0, y0, x1, y1))
                scores.append(int(v[c]))
                classes.append(c)
                cells.append(y * w + x)
    keep = nms_int(boxes, scores, classes, p.iou_q10, p.max_candidates, p.max_detections,
                   p.class_agnostic)
    return Detections(np.array([boxes[i] for i in keep], np.int32).reshape(-1, 4),
                      np.array([scores[i] for i in keep], np.int8),
                      np.array([classes[i] for i in keep], np.int32),
                      np.array([cells[i] for i in keep], np.int32))


def nms_int(boxes: list[tuple[int, int, int, int]], scores: list[int], classes: list[int],
            iou_q10: int, max_candidates: int, max_detections: int,
            class_agnostic: bool = True) -> list[int]:
    """Greedy NMS on whole-pixel boxes, candidates in raster, then class order; suppress
    when inter * 1024 > iou_q10 * union."""
    kept: list[int] = []
    for i in _candidates(scores, max_candidates):
        ax0, ay0, ax1, ay1 = boxes[i]
        area_a = (ax1 - ax0) * (ay1 - ay0)
        suppressed = False
        for j in kept:
            if not class_agnostic and classes[i] != classes[j]:
                continue
            bx0, by0, bx1, by1 = boxes[j]
            iw = min(ax1, bx1) - max(ax0, bx0)
            ih = min(ay1, by1) - max(ay0, by0)
            if iw <= 0 or ih <= 0:
                continue
            inter = iw * ih
            union = area_a + (bx1 - bx0) * (by1 - by0) - inter
            if inter * IOU_ONE > iou_q10 * union:
                suppressed = True
                break
        if not suppressed:
            kept.append(i)
            if len(kept) == max_detections:
                break
    return kept


def decode_float(y: np.ndarray, stride: int, image: tuple[int, int], score_threshold: float,
                 nms_iou: float, max_candidates: int = 64, max_detections: int = 16,
                 class_agnostic: bool = True, round_pixels: bool = False) -> Detections:
    """Float decode + NMS of an (H, W, K + 4) map of logits and distances (vectorised).

    round_pixels=True rounds the clipped edges half up to whole pixels and runs NMS on those,
    as the firmware does; nms_iou is then taken in 1/1024 steps like `DecodeParams`.
    """
    h, w, c = y.shape
    k = c - 4
    y = y.astype(np.float64)
    ay, ax = np.meshgrid((np.arange(h) + 0.5) * stride, (np.arange(w) + 0.5) * stride,
                         indexing="ij")
    d = y[..., k:] * stride
    b = np.stack([ax - d[..., 0], ay - d[..., 1], ax + d[..., 2], ay + d[..., 3]], -1)
    b = np.clip(b, 0, [image[0], image[1], image[0], image[1]])
    if round_pixels:
        b = np.floor(b + 0.5)
    logits = y[..., :k].reshape(-1, k)
    ok = (logits >= logit(score_threshold)) & \
        ((b[..., 2] > b[..., 0]) & (b[..., 3] > b[..., 1])).reshape(-1, 1)
    cells, classes = np.nonzero(ok)  # raster, then class order
    boxes, scores = b.reshape(-1, 4)[cells], logits[cells, classes]
    iou_thr = round(nms_iou * IOU_ONE) / IOU_ONE if round_pixels else nms_iou
    keep = nms_float(boxes, scores, classes, iou_thr, max_candidates, max_detections,
                     class_agnostic)
    return Detections(boxes[keep], scores[keep], classes[keep].astype(np.int32),
                      cells[keep].astype(np.int32))


def nms_float(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float,
              max_candidates: int = 64, max_detections: int = 16,
              class_agnostic: bool = True) -> np.ndarray:
    """Greedy NMS (IoU > iou suppresses); order: score descending, then the candidates'
    own order (raster, then class)."""
    order = np.argsort(-scores, kind="stable")[:max_candidates]
    kept: list[int] = []
    for i in order:
        if kept:
            kb = boxes[kept]
            same = np.ones(len(kept), bool) if class_agnostic else classes[kept] == classes[i]
            iw = np.clip(np.minimum(kb[:, 2], boxes[i, 2]) - np.maximum(kb[:, 0], boxes[i, 0]),
                         0, None)
            ih = np.clip(np.minimum(kb[:, 3], boxes[i, 3]) - np.maximum(kb[:, 1], boxes[i, 1]),
                         0, None)
            inter = iw * ih
            union = _area(kb) + _area(boxes[i]) - inter
            if np.any(same & (inter > iou * union)):
                continue
        kept.append(int(i))
        if len(kept) == max_detections:
            break
    return np.array(kept, np.int64)


def _area(b: np.ndarray) -> np.ndarray:
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (n, 4) with every box in b (m, 4)."""
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0],
                                                                       b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1],
                                                                       b[None, :, 1]), 0, None)
    inter = iw * ih
    return inter / np.maximum(_area(a)[:, None] + _area(b)[None, :] - inter, 1e-9)
