"""Classifier training for a classify app (VWW): data, fixed augmented views, distillation from
a teacher, float training, quantisation-aware fine-tuning, evaluation, export.

    cfg = apps.load_app("vww")
    samples = read_sources(cfg)                          # every [[data]] source, labelled
    tr = [s for s in samples if s.split == "train"]
    data = load_views(tr, cfg, views=4, seed=0, teacher=Teacher(locate()))
    model, fused, hist = train_student(cfg, data, val, options, Path("build/train/vww"))

Views. Every training image gets K views, made once: view 0 is the image itself, views
1..K-1 are seeded augmentations (flip, zoom / shift, brightness / contrast). Each view is
made at the teacher's 224x224 and resized to the app input for the student, so teacher and
student see exactly the same crop, flip and lighting; the teacher runs once per view and its
outputs are cached (`patchcam.training.teacher.TeacherCache`). The student's views are cached too
(build/cache/views-*.npy), so a resumed or repeated run starts training at once. Without a
teacher the student trains on the same views, so "with" and "without teacher" differ only by
the distillation loss.

Loss: cross-entropy on the hard labels (label smoothing 0.05) plus, with a teacher,
kd_weight * T^2 * KL(teacher || student) at temperature T on the probe's class logits for
that very view (Hinton et al. 2015).

Training runs in the loop the detector shares (`patchcam.training.loop`; `ClassifierTask` is
the classifier's part): out/last.pt (float) and out/qat_last.pt (quantisation-aware) hold
model, optimiser, schedule, epoch and history after every epoch; each epoch's order and view
choice come from a generator seeded with (seed, epoch), so a resumed run trains on the same
batches as an uninterrupted one. Resuming with no checkpoint is an error
(`loop.NothingToResume`); QAT resumes only on top of a float phase that was complete.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from patchcam.app.config import AppConfig
from patchcam.compiler import quantize, reference, zoo
from patchcam.images import UnreadableImage, decode_image
from patchcam.paths import REPO
from patchcam.training import imagesets, loop, readers
from patchcam.training.teacher import SIZE as TEACHER_SIZE
from patchcam.training.teacher import Probe, Teacher, TeacherCache

AUG_VERSION = "a1"  # change when the view augmentation changes: cached views become stale
CACHE = REPO / "build" / "cache"
CKPT_FORMAT = "patchcam-classifier-train"
QAT_FORMAT = "patchcam-classifier-qat"


# ---- data ---------------------------------------------------------------------------------
def read_sources(cfg: AppConfig, exclude: set[str] = frozenset()) -> list[readers.Sample]:
    """Every sample of the app's sources (each with its own split), image_label set to an app
    class. Detection sets need `image_label` in app.toml (the class of every photo in them).
    A binary app with a `positive` class maps every other label to the other class, so a
    folder of cats and dogs is a set of negatives; otherwise unknown labels are an error."""
    names = list(cfg.classes.names)
    out: list[readers.Sample] = []
    for src in cfg.data:
        root = cfg.data_path(src)
        if root.name in exclude:
            continue
        samples = [s for s in readers.read_source(root, src) if s.split in src.splits]
        if src.image_label:
            samples = readers.with_image_label(samples, src.image_label)
        elif any(s.image_label is None for s in samples):
            raise readers.DatasetError(f"{root}: a detection set in a classify app needs "
                                       "`image_label` in its [[data]] entry")
        samples = readers.remap_labels(samples, src.class_map)
        for s in samples:
            if s.image_label not in names:
                if len(names) == 2 and cfg.classes.positive:
                    neg = next(n for n in names if n != cfg.classes.positive)
                    s.image_label = neg
                else:
                    raise readers.DatasetError(f"{s.image_path}: label {s.image_label!r} is not "
                                               f"an app class ({', '.join(names)})")
        out += samples
    if not out:
        raise readers.DatasetError(f"{cfg.path}: no images in the app's data sources")
    return out


def labels_of(samples: list[readers.Sample], cfg: AppConfig) -> np.ndarray:
    return np.array([cfg.classes.names.index(s.image_label) for s in samples], np.int64)


def split(samples: list[readers.Sample], name: str) -> list[readers.Sample]:
    return [s for s in samples if s.split == name]


@dataclass
class ClassData:
    """Training views (N, K, H, W, C) uint8, labels, and the teacher's class logits per view."""
    views: np.ndarray
    labels: np.ndarray
    sources: list[str]
    teacher_logits: np.ndarray | None = None  # (N, K, 1000) ImageNet logits
    soft: np.ndarray | None = None  # (N, K, classes): the probe's logits, the KD targets
    file_hashes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.views)


def view_params(file_hash: str, seed: int, k: int) -> dict:
    """The augmentation of view k (>= 1) of one image: a pure function of its content hash,
    the seed and k, so the same file gets the same views on any machine."""
    rng = np.random.default_rng([seed, k, int(file_hash[:12], 16)])
    return {"flip": bool(rng.random() < 0.5), "scale": float(np.exp(rng.uniform(np.log(0.85),
                                                                                np.log(1.3)))),
            "dx": float(rng.uniform(-0.12, 0.12)), "dy": float(rng.uniform(-0.12, 0.12)),
            "contrast": float(rng.uniform(0.75, 1.25)),
            "brightness": float(rng.uniform(-0.12, 0.12))}


def augment_view(img: np.ndarray, p: dict) -> np.ndarray:
    """Flip, zoom about the centre + shift (reflected border), contrast / brightness."""
    h, w = img.shape[:2]
    if p["flip"]:
        img = img[:, ::-1]
    s = p["scale"]
    m = np.array([[s, 0, (w - s * w) / 2 + p["dx"] * w],
                  [0, s, (h - s * h) / 2 + p["dy"] * h]], np.float32)
    out = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    x = out.astype(np.float32)
    mean = x.mean()
    x = (x - mean) * p["contrast"] + mean + p["brightness"] * 255
    return np.clip(x, 0, 255).astype(np.uint8)


def make_views(data: bytes, file_hash: str, k_views: int, seed: int, size: tuple[int, int],
               gray: bool, name: str | Path = "image") -> tuple[np.ndarray, np.ndarray] | None:
    """(K, h, w, c) student views and (K, 224, 224, 3) teacher views of one encoded image;
    None, with a warning naming the file (`name`), when patchcam.images refuses it (over
    MAX_PIXELS, truncated, not an image): the bytes are decoded only after its checks."""
    try:
        img = decode_image(data, name)
    except UnreadableImage as e:
        warnings.warn(f"{e}, skipped", stacklevel=2)
        return None
    base = cv2.cvtColor(cv2.resize(img, (TEACHER_SIZE, TEACHER_SIZE),
                                   interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    big = [base] + [augment_view(base, view_params(file_hash, seed, k))
                    for k in range(1, k_views)]
    small = []
    for v in big:
        s = cv2.resize(v, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        small.append(cv2.cvtColor(s, cv2.COLOR_RGB2GRAY)[..., None] if gray else s)
    return np.stack(small), np.stack(big)


def view_keys(file_hash: str, k_views: int, seed: int) -> list[str]:
    """Teacher-cache keys: view 0 (the image itself) is shared by every seed and K."""
    return [f"{file_hash}:clean"] + [f"{file_hash}:{seed}:{k}:{AUG_VERSION}"
                                     for k in range(1, k_views)]


def load_views(samples: list[readers.Sample], cfg: AppConfig, k_views: int, seed: int,
               teacher: Teacher | None = None, desc: str = "views") -> ClassData:
    """K views per sample (cached) and, with a teacher, its logits on each view (cached)."""
    size = (cfg.input.height, cfg.input.width)
    gray = cfg.input.color == "gray"
    blobs = []
    hashes = []
    for s in samples:
        b = Path(s.image_path).read_bytes()
        blobs.append(b)
        hashes.append(hashlib.sha1(b).hexdigest()[:20])
    key = hashlib.sha1(f"{'|'.join(hashes)}{k_views}{seed}{size}{gray}{AUG_VERSION}".encode())
    vfile = CACHE / f"views-{desc}-{size[0]}x{size[1]}-{key.hexdigest()[:12]}.npz"
    tcache = TeacherCache(teacher) if teacher is not None else None
    keys = [view_keys(h, k_views, seed) for h in hashes]
    have_views = vfile.is_file()
    need_teacher = tcache is not None and not all(tcache.has(k) for k in keys)
    keep = np.ones(len(samples), bool)
    if have_views:
        z = np.load(vfile)
        views, keep = z["views"], z["keep"]
    if not have_views or need_teacher:
        out = []
        bar = tqdm(range(len(samples)), desc=f"{desc}: views" + (" + teacher" if need_teacher
                                                                 else ""), unit="img",
                   leave=False)
        for i in bar:
            if have_views and tcache.has(keys[i]) or not keep[i]:
                continue
            made = make_views(blobs[i], hashes[i], k_views, seed, size, gray,
                              samples[i].image_path)
            if made is None:
                keep[i] = False
                continue
            if not have_views:
                out.append(made[0])
            if tcache is not None:
                tcache.get(keys[i], made[1])
                if tcache.new >= 2048:  # an interrupted run keeps what the teacher computed
                    tcache.save()
        if tcache is not None:
            tcache.save()
        if not have_views:
            if not out:
                raise readers.DatasetError(f"{desc}: none of the {len(samples)} images could "
                                           "be read")
            views = np.stack(out)
            CACHE.mkdir(parents=True, exist_ok=True)
            tmp = vfile.with_name(vfile.stem + ".tmp.npz")
            np.savez(tmp, views=views, keep=keep)
            tmp.replace(vfile)
    kept = [s for s, k in zip(samples, keep, strict=True) if k]
    data = ClassData(views, labels_of(kept, cfg), [s.source for s in kept],
                     file_hashes=[h for h, k in zip(hashes, keep, strict=True) if k])
    if tcache is not None:
        rows = [tcache.get(k) for k, ok in zip(keys, keep, strict=True) if ok]
        data.teacher_logits = teacher.dequantize(np.stack(rows))
    return data


def load_clean(samples: list[readers.Sample], cfg: AppConfig, desc: str
               ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Evaluation images: each photo resized to the app input once (the board's view)."""
    size = (cfg.input.height, cfg.input.width)
    images, kept = imagesets.load_images(samples, size, cfg.input.color == "gray", desc=desc)
    return images, labels_of(kept, cfg), [s.source for s in kept]


def fit_probe(data: ClassData, num_classes: int) -> Probe:
    """The teacher's head, fitted on every view of the training images only."""
    n, k = data.teacher_logits.shape[:2]
    probe = Probe.fit(data.teacher_logits.reshape(n * k, -1), np.repeat(data.labels, k),
                      num_classes)
    data.soft = probe(data.teacher_logits.reshape(n * k, -1)).reshape(n, k, -1)
    return probe


# ---- training -----------------------------------------------------------------------------
@dataclass
class FitOptions:
    epochs: int
    lr: float
    batch: int = 64
    seed: int = 0
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    kd_weight: float = 1.0  # weight of the distillation term (with a teacher)
    temperature: float = 2.0
    class_weights: tuple[float, ...] | None = None  # per-class cross-entropy weights
    max_steps: int | None = None  # at most this many batches per epoch (tests, timing)
    ema: float = 0.0  # train.ema: weight-average decay (loop.WeightAverage; 0: none)


def to_batch(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW p / 255 (the float view of the int8 input)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def loss_fn(logits: torch.Tensor, y: torch.Tensor, soft: torch.Tensor | None,
            o: FitOptions) -> tuple[torch.Tensor, float]:
    """Cross-entropy on hard labels + the distillation term; returns (loss, kd part)."""
    weight = (torch.tensor(o.class_weights, dtype=logits.dtype, device=logits.device)
              if o.class_weights is not None else None)
    loss = F.cross_entropy(logits, y, weight=weight, label_smoothing=o.label_smoothing)
    if soft is None:
        return loss, 0.0
    t = o.temperature
    kd = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(soft / t, 1), log_target=True,
                  reduction="batchmean") * t * t
    return loss + o.kd_weight * kd, float(kd.detach())


@torch.no_grad()
def predict(net: nn.Module, images: np.ndarray, batch: int = 256) -> np.ndarray:
    net.eval()
    dev = next(net.parameters()).device
    return torch.cat([net(to_batch(images[i:i + batch]).to(dev)).cpu()
                      for i in range(0, len(images), batch)]).numpy()


class ClassifierTask:
    """The classifier's part of the shared loop (patchcam.training.loop): every epoch a
    permutation of the images and one of its K views per image; cross-entropy + distillation
    (loss_fn); train accuracy; val accuracy (val: clean images, labels) after every epoch."""
    pct_start = 0.15
    clip_grad = None
    best = None

    def __init__(self, data: ClassData, o: FitOptions,
                 val: tuple[np.ndarray, np.ndarray] | None = None):
        self.data, self.o, self.val = data, o, val
        self.labels = torch.from_numpy(data.labels)
        self.which = np.zeros(len(data), np.int64)  # the view of each image this epoch

    def steps_per_epoch(self) -> int:
        return loop.steps_per_epoch(len(self.data), self.o)

    def epoch_order(self, epoch: int, rng: np.random.Generator) -> np.ndarray:
        order = rng.permutation(len(self.data))
        self.which = rng.integers(0, self.data.views.shape[1], len(self.data))
        return order

    def batch_loss(self, model: nn.Module, epoch: int, idx: np.ndarray, pos: np.ndarray,
                   device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        d = self.data
        x = to_batch(d.views[idx, self.which[idx]]).to(device)
        y = self.labels[idx].to(device)
        soft = (torch.from_numpy(d.soft[idx, self.which[idx]]).float().to(device)
                if d.soft is not None else None)
        out = model(x)
        loss, kd = loss_fn(out, y, soft, self.o)
        return loss, {"kd": kd, "correct": int((out.argmax(1) == y).sum()), "seen": len(idx)}

    def progress(self, totals: dict[str, float], batches: int) -> dict[str, str]:
        return {"acc": f"{totals['correct'] / max(1, totals['seen']):.3f}"}

    def record(self, totals: dict[str, float], steps: int) -> dict:
        rec = {"train_acc": round(totals["correct"] / max(1, totals["seen"]), 4)}
        if self.data.soft is not None:
            rec["kd"] = round(totals["kd"] / steps, 4)
        return rec

    def validate(self, net: nn.Module, epoch: int, device: torch.device) -> dict:
        if self.val is None:
            return {}
        acc = float((predict(net, self.val[0]).argmax(1) == self.val[1]).mean())
        return {"val_acc": round(acc, 4)}


def fit(model: zoo.Classifier, data: ClassData, o: FitOptions, out_dir: Path,
        resume: bool = False, val: tuple[np.ndarray, np.ndarray] | None = None,
        extra: dict | None = None) -> list[dict]:
    """Float training; out_dir/last.pt after every epoch. resume: continue from it (an
    error, loop.NothingToResume, when there is none)."""
    def doc(epoch: int, history: list[dict]) -> dict:
        return {"format": CKPT_FORMAT, "config": asdict(model.cfg), "state": model.state_dict(),
                "epoch": epoch, "history": history, "options": asdict(o),
                "extra": extra or {}}

    def restore(d: dict) -> None:
        model.load_state_dict(d["state"])

    hist = loop.train(model, ClassifierTask(data, o, val), o, Path(out_dir) / "last.pt", doc,
                      restore, resume, "float")
    model.eval()
    return hist


def calibrated(model: zoo.Classifier, data: ClassData, n: int = 256,
               seed: int = 0) -> quantize.FusedNet:
    """The model folded for int8 (BN folded), its ranges observed on n unaugmented views."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(data), min(n, len(data)), replace=False))
    x = to_batch(data.views[idx, 0])
    fused = quantize.fuse(model.eval(), tuple(x.shape[1:]))
    return quantize.calibrate(fused, [x[i:i + 64] for i in range(0, len(x), 64)])


def qat_finetune(model: zoo.Classifier, data: ClassData, o: FitOptions, out_dir: Path,
                 resume: bool = False, val: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[quantize.FusedNet, list[dict]]:
    """Quantisation-aware fine-tuning: weights (per channel) and activations fake-quantised in
    the forward pass, ranges following the activations (EMA), so the network learns around the
    int8 rounding. out_dir/qat_last.pt after every epoch. Returns the FusedNet (eval mode)."""
    fused = calibrated(model, data, seed=o.seed)
    hist = loop.train_qat(fused, ClassifierTask(data, o, val), o, out_dir, resume, QAT_FORMAT)
    return fused.eval(), hist


# ---- evaluation ---------------------------------------------------------------------------
def int8_predict(g, images: np.ndarray) -> np.ndarray:
    """Top-1 of the integer reference (the firmware's arithmetic) per image."""
    return np.array([int(reference.run(g, (x.astype(np.int16) - 128).astype(np.int8)).argmax())
                     for x in images])


def accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    return float((pred == labels).mean()) if len(labels) else float("nan")


def per_source(pred: np.ndarray, labels: np.ndarray, sources: list[str]) -> dict[str, dict]:
    src = np.array(sources)
    return {s: {"images": int((src == s).sum()),
                "accuracy": round(accuracy(pred[src == s], labels[src == s]), 4)}
            for s in dict.fromkeys(sources)}


# ---- the whole recipe ---------------------------------------------------------------------
@dataclass
class Student:
    model: zoo.Classifier  # float
    fused: quantize.FusedNet  # after QAT (or post-training calibrated when qat_epochs is 0)
    history: list[dict]
    probe: Probe | None
    teacher_val_acc: float | None
    train_counts: dict[str, int]
    seconds: float


def train_student(cfg: AppConfig, train_samples: list[readers.Sample],
                  val_samples: list[readers.Sample], o: FitOptions, qat: FitOptions,
                  out_dir: Path, teacher: Teacher | None = None, k_views: int = 4,
                  resume: bool = False, desc: str = "train") -> Student:
    """Views (+ teacher outputs and probe), float training, QAT: the app recipe end to end.
    resume: continue from out_dir/last.pt (and qat_last.pt); none there is an error, raised
    before any data is loaded."""
    if resume:
        loop.require_checkpoint(Path(out_dir) / "last.pt")
    data = load_views(train_samples, cfg, k_views, o.seed, teacher, desc=f"{desc}-train")
    val_x, val_y, _ = load_clean(val_samples, cfg, desc=f"{cfg.app.name}-{desc}-val")
    counts = dict(zip(*np.unique(data.sources, return_counts=True), strict=True))
    if cfg.train.balance_classes:
        w = loop.balanced_weights(data.labels, len(cfg.classes.names))
        o, qat = replace(o, class_weights=w), replace(qat, class_weights=w)
        print("class weights (train.balance_classes): " + ", ".join(
            f"{n} {x:.3f}" for n, x in zip(cfg.classes.names, w, strict=True)), flush=True)
    probe, teacher_val = None, None
    if teacher is not None:
        probe = fit_probe(data, len(cfg.classes.names))
        vdata = load_views(val_samples, cfg, 1, o.seed, teacher, desc=f"{desc}-val")
        teacher_val = accuracy(probe(vdata.teacher_logits[:, 0]).argmax(1), vdata.labels)
        train_acc = accuracy(data.soft[:, 0].argmax(1), data.labels)
        print(f"teacher probe: train accuracy {train_acc:.4f}, val {teacher_val:.4f}",
              flush=True)
    torch.manual_seed(o.seed)
    model = zoo.Classifier(cfg.zoo_config())
    extra = {"app": cfg.app.name, "teacher": teacher is not None, "views": k_views}
    # QAT resumes only on top of the float model it started from (loop.finished)
    float_done = resume and loop.finished(Path(out_dir) / "last.pt", o.epochs)
    hist = fit(model, data, o, out_dir, resume, (val_x, val_y), extra)
    if qat.epochs > 0:
        fused, qhist = qat_finetune(model, data, qat, out_dir,
                                    float_done and (Path(out_dir) / "qat_last.pt").is_file(),
                                    (val_x, val_y))
    else:
        fused, qhist = calibrated(model, data, seed=o.seed), []
    history = hist + [{**h, "phase": "qat"} for h in qhist]
    return Student(model, fused, history, probe, teacher_val,
                   {str(k): int(v) for k, v in counts.items()}, loop.training_seconds(history))


def evaluate(st: Student, cfg: AppConfig, samples: list[readers.Sample], desc: str,
             int8: bool = True) -> dict:
    """Float (and int8: integer reference) accuracy, overall and per source."""
    x, y, src = load_clean(samples, cfg, desc=f"{cfg.app.name}-{desc}")
    fp = predict(st.model, x).argmax(1)
    res = {"images": len(y), "float": round(accuracy(fp, y), 4),
           "float_per_source": per_source(fp, y, src)}
    if int8:
        g = quantize.to_int8(st.fused, cfg.app.name)
        qp = int8_predict(g, x)
        res.update({"int8": round(accuracy(qp, y), 4), "int8_per_source": per_source(qp, y, src),
                    "int8_float_agreement": round(accuracy(qp, fp), 4)})
    return res
