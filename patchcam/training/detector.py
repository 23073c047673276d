"""Detector training for a detect app: data, box-aware augmentation, fit, evaluation, export.

    cfg = apps.load_app("person_detect")
    train = load_split(cfg, "train")             # images resized to the app input, cached
    model = fit(cfg.build_model(), train, epochs=40, lr=3e-3, out_dir=Path("build/train/x"))
    print(evaluate_float(model, load_split(cfg, "test"), cfg))
    export(model, cfg, calibration=train)        # int8 graph + C into apps/<app>/generated/

Images are resized (stretched, no letterbox) and kept as uint8 HWC, the boxes scaled with
them; the model sees p / 255, the float view of the int8 input (zoo). Evaluation images are at
the app's input; training images are kept at TRAIN_ZOOM times it, so a close-up cut from them
has real detail. Each training view is drawn on the fly, boxes moving with the pixels (`View`):
a whole-frame view (scale 0.4-1.5 of the frame: people from tiny to large), a close-up around
one box (the person 0.45-1.7 frame heights tall, head near the top: the head-and-shoulders
view a board's camera sees at 0.5-2 m), or a 2x2 mosaic of four small views (crowds, tiny
people); then aspect jitter, flip, brightness / contrast, sometimes grey. Boxes are clipped to
the frame and kept while MIN_VISIBLE of them stays in it. Sources with no boxes (image folders,
captioned photos) are negatives, every cell background, but only their images whose label is
not an app class ("no_person" photos, not "person" ones). Training runs in the loop the
classifier shares (`patchcam.training.loop`; `DetectorTask` is the detector's part) and is
resumable: a checkpoint (model, optimiser, schedule, epoch) is written after every epoch; the
random streams are seeded per epoch, so a resumed run draws the same batches as an
uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from patchcam.app import detect
from patchcam.app.config import AppConfig, DataSource
from patchcam.compiler import quantize, reference
from patchcam.compiler.ir import Graph
from patchcam.training import imagesets, loop, metrics, readers
from patchcam.training.checkpoint import config_from_dict

MIN_BOX_PX = 4.0  # boxes narrower or lower than this after augmentation are dropped
MIN_VISIBLE = 0.3  # ... and boxes with less than this fraction of their area left in frame
TRAIN_ZOOM = 2  # training images are stored at this multiple of the input (detail for close-ups)
EVAL_SCORE = 0.05  # score threshold for AP (the app's threshold is for the board's output)
CKPT_FORMAT = "patchcam-detector-train"
WEIGHTS_FORMAT = "patchcam-detector"
QAT_FORMAT = "patchcam-detector-qat"


@dataclass
class DetData:
    """Images at the model input size and their boxes in input pixels."""
    images: np.ndarray  # (N, H, W, C) uint8
    boxes: list[np.ndarray]  # per image float32 (n, 4) x0, y0, x1, y1
    labels: list[np.ndarray]  # per image int64 (n,) class indices
    sources: list[str]  # per image: the dataset folder name

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx) -> DetData:
        idx = np.asarray(idx, np.int64)
        return DetData(self.images[idx], [self.boxes[i] for i in idx],
                       [self.labels[i] for i in idx], [self.sources[i] for i in idx])

    def by_source(self) -> dict[str, DetData]:
        names = dict.fromkeys(self.sources)
        return {n: self.subset([i for i, s in enumerate(self.sources) if s == n])
                for n in names}

    def gts(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return list(zip(self.boxes, self.labels, strict=True))

    def summary(self) -> str:
        pos = sum(len(b) > 0 for b in self.boxes)
        return (f"{len(self)} images ({pos} with boxes, {len(self) - pos} negatives), "
                f"{sum(len(b) for b in self.boxes)} boxes")


# ---- data ---------------------------------------------------------------------------------
def negatives_only(src: DataSource) -> bool:
    """A source without boxes (image folders, captioned photos): only its negatives are used."""
    return src.format in ("folder", "captions")


def load_split(cfg: AppConfig, split: str, sources: list[int] | None = None,
               boxes_only: bool = False, zoom: int = 1) -> DetData:
    """The app's data sources' samples of one split (each source's own split), resized to
    zoom times the app's input (boxes in those pixels).

    sources: indices into cfg.data (default all); boxes_only: skip the box-free (negative)
    sources. A box whose class is neither an app class nor mapped to one is dropped. From a
    box-free source, an image labelled with an app class (a "person" photo without boxes)
    is left out: it is neither a negative nor a labelled positive.
    """
    h, w = cfg.input.height * zoom, cfg.input.width * zoom
    names = list(cfg.classes.names)
    images, boxes, labels, srcs = [], [], [], []
    for i, src in enumerate(cfg.data):
        if sources is not None and i not in sources or split not in src.splits:
            continue
        if boxes_only and negatives_only(src):
            continue
        root = cfg.data_path(src)
        ss = readers.read_source(root, src)
        mapping = {**{n: n for n in names}, **src.class_map}
        mine = ss.split(split)
        samples = readers.remap_labels(mine, mapping, drop_unmapped=True)
        if negatives_only(src):
            samples = [x for x in samples if mapping.get(x.image_label or "") not in names]
        if not samples:
            continue
        gray = cfg.input.color == "gray"
        arr, kept = imagesets.load_images(samples, (h, w), gray,
                                          desc=f"{cfg.app.name}-{root.name}-{split}")
        images.append(arr)
        for s in kept:
            b = (readers.scaled_boxes(s, (h, w)).astype(np.float32) if len(s.boxes)
                 else np.zeros((0, 4), np.float32))
            boxes.append(grown(b, src.grow, (h, w)) if src.grow else b)
            labels.append(np.array([names.index(lb) for lb in s.labels], np.int64))
            srcs.append(root.name)
    if not images:
        raise readers.DatasetError(f"{cfg.path}: no {split} images in the app's data sources")
    return DetData(np.concatenate(images), boxes, labels, srcs)


def grown(boxes: np.ndarray, grow: list[float], hw: tuple[int, int]) -> np.ndarray:
    """Each box grown by [left, top, right, bottom] times its own width/height, clipped to
    the image: a part's box (a face) made the box of its whole (a head-and-shoulders person)."""
    b = boxes.astype(np.float32).copy()
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    left, top, right, bottom = grow
    b[:, 0] -= left * bw
    b[:, 1] -= top * bh
    b[:, 2] += right * bw
    b[:, 3] += bottom * bh
    b[:, 0::2] = b[:, 0::2].clip(0, hw[1])
    b[:, 1::2] = b[:, 1::2].clip(0, hw[0])
    return b


# ---- augmentation -------------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    """How training views are drawn (probabilities and ranges); the defaults are the recipe."""
    close_up: float = 0.35  # a close-up around one box (images with boxes)
    mosaic: float = 0.15  # a 2x2 mosaic of four views at half size
    frame_scale: tuple[float, float] = (0.4, 1.5)  # whole-frame view: zoom of the frame
    close_height: tuple[float, float] = (0.45, 1.7)  # close-up: box height / frame height
    shift: float = 0.2  # whole-frame view: translation, fraction of the frame
    aspect: float = 0.15  # log of the largest x/y stretch
    gray: float = 0.1  # share of views turned grey (mono cameras, old photos)

    def describe(self) -> str:
        return (f"whole frame at {self.frame_scale[0]}-{self.frame_scale[1]}x + shift "
                f"{self.shift}, close-up on a box at {self.close_up:.0%} (box "
                f"{self.close_height[0]}-{self.close_height[1]} frame heights), 2x2 mosaic at "
                f"{self.mosaic:.0%}, aspect jitter e^+-{self.aspect}, flip, brightness/"
                f"contrast, grey at {self.gray:.0%}; boxes kept while >= {MIN_VISIBLE:.0%} "
                "visible")


def _log_uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(lo_hi[0]), np.log(lo_hi[1]))))


def _placement(src_hw: tuple[int, int], out_hw: tuple[int, int], boxes: np.ndarray,
               rng: np.random.Generator, v: View) -> tuple[float, float, float, float]:
    """(sx, sy, tx, ty): output = source * s + t, for a whole-frame view or a close-up."""
    (h0, w0), (h, w) = src_hw, out_hw
    a = float(np.exp(rng.uniform(-v.aspect, v.aspect)))
    if len(boxes) and rng.random() < v.close_up:
        x0, y0, x1, y1 = boxes[rng.integers(len(boxes))]
        sy = _log_uniform(rng, v.close_height) * h / max(y1 - y0, 1.0)
        sx = sy * a
        if sy * (y1 - y0) <= h:
            top = rng.uniform(0, h - sy * (y1 - y0))
        else:  # taller than the frame: head near the top
            top = rng.uniform(-0.1, 0.05) * h
        cx = rng.uniform(0.2, 0.8) * w
        return sx, sy, cx - sx * (x0 + x1) / 2, top - sy * y0
    s = _log_uniform(rng, v.frame_scale)
    sx, sy = s * a * w / w0, s / a * h / h0
    tx = (w - sx * w0) / 2 + rng.uniform(-v.shift, v.shift) * w
    ty = (h - sy * h0) / 2 + rng.uniform(-v.shift, v.shift) * h
    return sx, sy, tx, ty


def _warp(img: np.ndarray, boxes: np.ndarray, labels: np.ndarray, m: np.ndarray,
          out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp by the 2x3 affine m (scale + translation); boxes clipped, the mostly-lost dropped."""
    h, w = out_hw
    fill = tuple(int(v) for v in img.reshape(-1, img.shape[2]).mean(0))
    area = cv2.INTER_AREA if m[0, 0] < 1 and m[1, 1] < 1 else cv2.INTER_LINEAR
    out = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=area,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    if out.ndim == 2:
        out = out[..., None]
    if not len(boxes):
        return out, np.zeros((0, 4), np.float32), labels[:0]
    sx, sy, tx, ty = m[0, 0], m[1, 1], m[0, 2], m[1, 2]
    nb = boxes * np.array([sx, sy, sx, sy], np.float32) + np.array([tx, ty, tx, ty], np.float32)
    area_in = (nb[:, 2] - nb[:, 0]) * (nb[:, 3] - nb[:, 1])
    cb = np.clip(nb, 0, [w, h, w, h]).astype(np.float32)
    cw, ch = cb[:, 2] - cb[:, 0], cb[:, 3] - cb[:, 1]
    keep = (cw >= MIN_BOX_PX) & (ch >= MIN_BOX_PX) & \
        (cw * ch >= MIN_VISIBLE * np.maximum(area_in, 1e-6))
    return out, cb[keep].reshape(-1, 4), labels[keep]


def _photometric(img: np.ndarray, rng: np.random.Generator, v: View) -> np.ndarray:
    x = img.astype(np.float32)
    if x.shape[2] == 3 and rng.random() < v.gray:
        x = np.repeat(x @ np.array([[0.299], [0.587], [0.114]], np.float32), 3, axis=2)
    c = rng.uniform(0.7, 1.3)
    x = (x - x.mean()) * c + x.mean() + rng.uniform(-0.15, 0.15) * 255
    return np.clip(x, 0, 255).astype(np.uint8)


def augment_one(img: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                rng: np.random.Generator, out_hw: tuple[int, int] | None = None,
                view: View = View(), photometric: bool = True
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training view of img (any size) at out_hw (default: img's size): a whole-frame
    view or a close-up (`_placement`), flipped half the time, then brightness / contrast.

    Boxes move with the pixels, are clipped to the frame, and are dropped when less than
    MIN_VISIBLE of their area stays in frame or a side is under MIN_BOX_PX pixels.
    """
    out_hw = out_hw or img.shape[:2]
    b = boxes.astype(np.float32).reshape(-1, 4).copy()
    if rng.random() < 0.5:
        img = img[:, ::-1]
        b[:, [0, 2]] = img.shape[1] - b[:, [2, 0]]
    sx, sy, tx, ty = _placement(img.shape[:2], out_hw, b, rng, view)
    m = np.array([[sx, 0, tx], [0, sy, ty]], np.float32)
    out, b, labels = _warp(img, b, labels, m, out_hw)
    return (_photometric(out, rng, view) if photometric else out), b, labels


def mosaic(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], out_hw: tuple[int, int],
           rng: np.random.Generator, view: View = View()
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four (image, boxes, labels) as a 2x2 grid of half-size views at out_hw."""
    h, w = out_hw
    hh, hw = h // 2, w // 2
    canvas = np.zeros((h, w, parts[0][0].shape[2]), np.uint8)
    boxes, labels = [], []
    for k, (img, b, lb) in enumerate(parts[:4]):
        oy, ox = (k // 2) * hh, (k % 2) * hw
        tile, tb, tl = augment_one(img, b, lb, rng, (hh, hw), view, photometric=False)
        canvas[oy:oy + hh, ox:ox + hw] = tile
        boxes.append(tb + np.array([ox, oy, ox, oy], np.float32))
        labels.append(tl)
    return _photometric(canvas, rng, view), np.concatenate(boxes).reshape(-1, 4), \
        np.concatenate(labels)


def at_input(images: np.ndarray, cfg: AppConfig) -> np.ndarray:
    """NHWC uint8 images resized (area) to the app's input when they are not already."""
    h, w = cfg.input.height, cfg.input.width
    if images.shape[1:3] == (h, w):
        return images
    out = [cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in images]
    return np.stack([o[..., None] if o.ndim == 2 else o for o in out])


def to_batch(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW p / 255 (the float view of the int8 input)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def targets(boxes: list[np.ndarray], labels: list[np.ndarray]
            ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.from_numpy(b).float().reshape(-1, 4), torch.from_numpy(lb).long())
            for b, lb in zip(boxes, labels, strict=True)]


def epoch_order(data: DetData, rng: np.random.Generator, neg_ratio: float) -> np.ndarray:
    """All images with boxes plus at most neg_ratio negatives per such image, shuffled."""
    has = np.array([len(b) > 0 for b in data.boxes])
    pos, neg = np.flatnonzero(has), np.flatnonzero(~has)
    n_neg = min(len(neg), int(round(neg_ratio * len(pos)))) if len(pos) else len(neg)
    idx = np.concatenate([pos, rng.choice(neg, n_neg, replace=False)]) if n_neg else pos
    return rng.permutation(idx)


# ---- training -----------------------------------------------------------------------------
@dataclass
class FitOptions:
    # the shared loop's options (patchcam.training.loop.Options) with the detector's own
    # defaults, then the detector's own fields: the classifier's FitOptions starts alike
    epochs: int
    lr: float
    batch: int = 32
    seed: int = 0
    weight_decay: float = 5e-4
    neg_ratio: float = 0.5  # negatives drawn per epoch, per image with boxes
    eval_every: int = 0  # float mAP on `val` every n epochs (0: never); best.pt keeps the best
    max_steps: int | None = None  # stop each epoch after this many batches (tests, timing)
    class_weights: tuple[float, ...] | None = None  # train.balance_classes: class_weights()
    ema: float = 0.0  # train.ema: weight-average decay (loop.WeightAverage; 0: none)


def class_weights(data: DetData, num_classes: int) -> tuple[float, ...]:
    """n / (classes * n_class) over the training boxes: every class weighs the same in the
    focal loss (train.balance_classes)."""
    labels = np.concatenate([lb for lb in data.labels if len(lb)] or [np.zeros(0, np.int64)])
    return loop.balanced_weights(labels.astype(np.int64), num_classes)


def steps_per_epoch(data: DetData, o: FitOptions) -> int:
    return loop.steps_per_epoch(len(epoch_order(data, np.random.default_rng(0), o.neg_ratio)),
                                o)


class DetectorTask:
    """The detector's part of the shared loop (patchcam.training.loop): every epoch the images
    with boxes plus some negatives (epoch_order); each image augmented from its own seeded
    stream (seed, epoch, position), so a resumed run, a single-process run and an n-process
    torchrun all see the same views; focal + GIoU loss (targets assigned on the CPU),
    gradient norm clipped to 10; val_fn (float val mAP) every o.eval_every epochs and at the
    end, best.pt keeping the best."""
    pct_start = 0.1
    clip_grad = 10.0
    best = "val_map"

    def __init__(self, data: DetData, o: FitOptions, stride: int,
                 val_fn: Callable[[], float] | None = None,
                 out_hw: tuple[int, int] | None = None, view: View = View()):
        self.data, self.o, self.stride, self.val_fn = data, o, stride, val_fn
        self.out_hw = out_hw or data.images.shape[1:3]  # the model input (data may be zoomed)
        self.view = view

    def training_view(self, i: int, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image i as one augmented view (sometimes a mosaic with three random others)."""
        d = self.data
        if rng.random() < self.view.mosaic:
            others = rng.integers(len(d), size=3)
            parts = [(d.images[j], d.boxes[j], d.labels[j]) for j in (i, *others)]
            return mosaic(parts, self.out_hw, rng, self.view)
        return augment_one(d.images[i], d.boxes[i], d.labels[i], rng, self.out_hw, self.view)

    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.data, self.o)

    def epoch_order(self, epoch: int, rng: np.random.Generator) -> np.ndarray:
        return epoch_order(self.data, rng, self.o.neg_ratio)

    def batch_loss(self, model: nn.Module, epoch: int, idx: np.ndarray, pos: np.ndarray,
                   device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        aug = [self.training_view(i, np.random.default_rng([self.o.seed, epoch, k]))
               for i, k in zip(idx, pos, strict=True)]
        out = model(to_batch(np.stack([a[0] for a in aug])).to(device))
        # targets are assigned on the CPU; the output map is small, so move it there
        loss, parts = detect.detection_loss(out.cpu(), targets([a[1] for a in aug],
                                                               [a[2] for a in aug]), self.stride,
                                              class_weights=self.o.class_weights)
        return loss, {"focal": parts["focal"], "giou": parts["giou"]}

    def progress(self, totals: dict[str, float], batches: int) -> dict[str, str]:
        return {"giou": f"{totals['giou'] / batches:.3f}"}

    def record(self, totals: dict[str, float], steps: int) -> dict:
        return {k: round(totals[k] / steps, 4) for k in ("focal", "giou")}

    def validate(self, net: nn.Module, epoch: int, device: torch.device) -> dict:
        o = self.o
        if self.val_fn is None or not o.eval_every or (epoch % o.eval_every and
                                                        epoch != o.epochs):
            return {}
        net.to("cpu")
        val_map = self.val_fn()
        net.to(device)
        return {"val_map": val_map}


def fit(model: detect.Detector, data: DetData, o: FitOptions, out_dir: Path,
        resume: bool = False, val: DetData | None = None, cfg: AppConfig | None = None,
        extra: dict | None = None) -> tuple[detect.Detector, list[dict]]:
    """Float training with AdamW + one-cycle (cosine); checkpoint out_dir/last.pt every epoch.

    resume: continue from out_dir/last.pt (model, optimiser, schedule, epoch, history); an
    error (loop.NothingToResume) when there is none.
    With --eval-every, best.pt keeps the epoch with the best val mAP.
    Returns the model (eval mode) and the per-epoch history.
    """
    def doc(epoch: int, history: list[dict]) -> dict:
        return {"format": CKPT_FORMAT, "config": asdict(model.cfg), "head": head_dict(model),
                "state": model.state_dict(), "epoch": epoch, "history": history,
                "options": asdict(o), "extra": extra or {}}

    def restore(d: dict) -> None:
        model.load_state_dict(d["state"])

    val_fn = None
    if val is not None and cfg is not None and o.eval_every:
        def val_fn() -> float:
            return round(evaluate_float(model, val, cfg)["map"], 4)
    task = DetectorTask(data, o, model.stride, val_fn, model.cfg.resolution)
    history = loop.train(model, task, o,
                         Path(out_dir) / "last.pt", doc, restore, resume, "float")
    return model.eval(), history


def qat_finetune(model: detect.Detector, cfg: AppConfig, data: DetData, o: FitOptions,
                 out_dir: Path, calib_n: int = 128, resume: bool = False
                 ) -> quantize.FusedNet:
    """Quantisation-aware fine-tuning: the float model is folded into a FusedNet (BN folded,
    ranges calibrated on calib_n images as for post-training quantisation), then trained for
    o.epochs with weights and activations fake-quantised, so it learns around the int8
    rounding; the ranges follow the activations (EMA). Checkpoints out_dir/qat_last.pt every
    epoch (resumable). quantize.to_int8 turns the result into the int8 graph."""
    fused = calibrated(model, cfg, data, calib_n, o.seed)
    task = DetectorTask(data, o, model.stride, out_hw=model.cfg.resolution)
    loop.train_qat(fused, task, o, out_dir, resume, QAT_FORMAT)
    return fused.eval()


def head_dict(model: detect.Detector) -> dict:
    h = model.head
    dw = h.tower[0] if len(h.tower) else None
    return {"num_classes": model.num_classes, "channels": h.out.in_channels,
            "blocks": len(h.tower) // 2, "kernel": _kernel(dw) if dw is not None else 1}


def _kernel(m: nn.Module) -> int:
    conv = next(c for c in m.modules() if isinstance(c, nn.Conv2d))
    return int(conv.kernel_size[0])


def detector_from(doc: dict) -> detect.Detector:
    """A Detector from a training checkpoint or a weights file (config + head + state)."""
    h = doc["head"]
    m = detect.Detector(config_from_dict(doc["config"]), h["num_classes"], h["channels"],
                        h["blocks"], h["kernel"])
    m.load_state_dict(doc["state"])
    return m.eval()


def load_checkpoint(path: Path) -> tuple[detect.Detector, dict]:
    doc = torch.load(path, map_location="cpu", weights_only=True)
    if doc.get("format") not in (CKPT_FORMAT, WEIGHTS_FORMAT):
        raise ValueError(f"{path}: not a patchcam detector checkpoint")
    return detector_from(doc), doc


def save_weights(model: detect.Detector, path: Path, meta: dict) -> None:
    """The float model alone (no optimiser): config, head, float32 state, meta."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": WEIGHTS_FORMAT, "config": asdict(model.cfg),
                "head": head_dict(model), "state": model.state_dict(), "meta": meta}, path)


# ---- evaluation ---------------------------------------------------------------------------
def _decode_kw(cfg: AppConfig) -> dict:
    t = cfg.thresholds
    return {"nms_iou": t.nms_iou, "max_candidates": t.max_candidates,
            "max_detections": t.max_detections, "class_agnostic": t.class_agnostic_nms}


@torch.no_grad()
def predict_float(model: detect.Detector, data: DetData, cfg: AppConfig,
                  score: float = EVAL_SCORE, batch: int = 64) -> list[detect.Detections]:
    model.eval()
    image = (cfg.input.width, cfg.input.height)
    preds = []
    for i in range(0, len(data), batch):
        y = model(to_batch(data.images[i:i + batch])).permute(0, 2, 3, 1).numpy()
        preds += [detect.decode_float(m, model.stride, image, score, **_decode_kw(cfg))
                  for m in y]
    return preds


def predict_int8(g: Graph, data: DetData, cfg: AppConfig, stride: int,
                 score: float = EVAL_SCORE) -> list[detect.Detections]:
    """The integer reference + the firmware's integer decoder, image by image."""
    out = g.tensors[g.output]
    t = cfg.thresholds
    p = detect.DecodeParams.prepare(out.scale, out.zero_point, len(cfg.classes.names), stride,
                                    out.shape[:2], (cfg.input.width, cfg.input.height), score,
                                    t.nms_iou, t.max_candidates, t.max_detections,
                                    t.class_agnostic_nms)
    preds = []
    for img in data.images:
        q = reference.run(g, (img.astype(np.int16) - 128).astype(np.int8))
        preds.append(detect.decode_int8(q, p))
    return preds


def scores(preds: list[detect.Detections], data: DetData, cfg: AppConfig) -> dict:
    per = metrics.ap50(preds, data.gts())
    names = cfg.classes.names
    m = float(np.mean(list(per.values()))) if per else math.nan
    return {"map": m, "ap50": {names[k]: round(v, 4) for k, v in per.items()},
            "images": len(data), "boxes": sum(len(b) for b in data.boxes)}


def evaluate_float(model: detect.Detector, data: DetData, cfg: AppConfig) -> dict:
    return scores(predict_float(model, data, cfg), data, cfg)


def evaluate_int8(g: Graph, data: DetData, cfg: AppConfig, stride: int) -> dict:
    return scores(predict_int8(g, data, cfg, stride), data, cfg)


# ---- export -------------------------------------------------------------------------------
def calibrated(model: detect.Detector, cfg: AppConfig, calibration: DetData, n: int = 128,
               seed: int = 0) -> quantize.FusedNet:
    """The model folded for int8, its ranges observed on n (unaugmented) images, resized to
    the app's input when they are stored larger (training data at TRAIN_ZOOM)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(calibration), min(n, len(calibration)), replace=False)
    x = to_batch(at_input(calibration.images[np.sort(idx)], cfg))
    shape = (x.shape[1], cfg.input.height, cfg.input.width)
    return quantize.calibrate(quantize.fuse(model.eval(), shape),
                              [x[i:i + 32] for i in range(0, len(x), 32)])


def quantize_model(model: detect.Detector, cfg: AppConfig, calibration: DetData,
                   n: int = 128, seed: int = 0, meta: dict | None = None) -> Graph:
    """Post-training quantisation, calibrated on n (unaugmented) images."""
    return quantize.to_int8(calibrated(model, cfg, calibration, n, seed), cfg.app.name,
                            meta or {})
