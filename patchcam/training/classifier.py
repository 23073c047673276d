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

Training is resumable: out/last.pt (float) and out/qat_last.pt (quantisation-aware) hold
model, optimiser, schedule, epoch and history after every epoch; each epoch's order and view
choice come from a generator seeded with (seed, epoch), so a resumed run trains on the same
batches as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from patchcam.app.config import AppConfig
from patchcam.compiler import quantize, reference, zoo
from patchcam.paths import REPO
from patchcam.training import checkpoint, imagesets, parallel, readers
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
        kw = {"class_names": src.class_names} if src.class_names else {}
        ss = readers.read_dataset(root, src.format, **kw)
        samples = [s for s in ss if s.split in src.splits]
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
               gray: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """(K, h, w, c) student views and (K, 224, 224, 3) teacher views of one encoded image."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
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
            made = make_views(blobs[i], hashes[i], k_views, seed, size, gray)
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
    max_steps: int | None = None  # at most this many batches per epoch (tests, timing)


def steps_per_epoch(n: int, o: FitOptions) -> int:
    steps = max(1, n // o.batch)
    return min(steps, o.max_steps) if o.max_steps else steps


def to_batch(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW p / 255 (the float view of the int8 input)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def loss_fn(logits: torch.Tensor, y: torch.Tensor, soft: torch.Tensor | None,
            o: FitOptions) -> tuple[torch.Tensor, float]:
    """Cross-entropy on hard labels + the distillation term; returns (loss, kd part)."""
    loss = F.cross_entropy(logits, y, label_smoothing=o.label_smoothing)
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


def train_loop(net: nn.Module, data: ClassData, o: FitOptions, ckpt: Path,
           doc: Callable[[int, list[dict]], dict], restore: Callable[[dict], None],
           resume: bool, val: tuple[np.ndarray, np.ndarray] | None, desc: str) -> list[dict]:
    """The loop float training and QAT share: AdamW + one-cycle cosine, one checkpoint per
    epoch, resume, a GPU when present, a progress bar with loss / accuracy, val accuracy;
    under torchrun each rank trains on its share of every batch (patchcam.training.parallel)."""
    rank, world = parallel.rank_world()
    dev = parallel.device()
    net.to(dev)
    model = parallel.wrap(net, dev, world)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(o.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    spe = steps_per_epoch(len(data), o)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, o.lr, total_steps=max(1, o.epochs * spe),
                                                pct_start=0.15, anneal_strategy="cos")
    start, history = 0, []
    if resume and ckpt.is_file():
        d = checkpoint.resume_training(ckpt, restore, opt, sched)
        net.to(dev)
        start, history = d["epoch"], d["history"]
        print(f"resuming {ckpt} after epoch {start}/{o.epochs}", flush=True)
    y_all = torch.from_numpy(data.labels)
    k_views = data.views.shape[1]
    for epoch in range(start, o.epochs):
        rng = np.random.default_rng([o.seed, epoch])
        order = rng.permutation(len(data))
        which = rng.integers(0, k_views, len(data))  # the view of each image this epoch
        torch.manual_seed(o.seed * 100003 + epoch)
        model.train()
        t0 = time.time()
        bar = tqdm(range(spe), desc=f"{desc} {epoch + 1}/{o.epochs}", unit="b", leave=False,
                   disable=rank != 0)
        tot = {"loss": 0.0, "kd": 0.0, "correct": 0, "seen": 0}
        for i in bar:
            idx = order[i * o.batch:(i + 1) * o.batch][rank::world]
            x = to_batch(data.views[idx, which[idx]]).to(dev)
            y = y_all[idx].to(dev)
            soft = (torch.from_numpy(data.soft[idx, which[idx]]).float().to(dev)
                    if data.soft is not None else None)
            out = model(x)
            loss, kd = loss_fn(out, y, soft, o)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot["loss"] += float(loss.detach())
            tot["kd"] += kd
            tot["correct"] += int((out.argmax(1) == y).sum())
            tot["seen"] += len(idx)
            bar.set_postfix(loss=f"{tot['loss'] / (i + 1):.3f}",
                            acc=f"{tot['correct'] / tot['seen']:.3f}")
        rec = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1),
               "lr": float(sched.get_last_lr()[0]), "loss": round(tot["loss"] / spe, 4),
               "train_acc": round(tot["correct"] / max(1, tot["seen"]), 4)}
        if data.soft is not None:
            rec["kd"] = round(tot["kd"] / spe, 4)
        if rank != 0:
            history.append(rec)
            continue
        if val is not None:
            rec["val_acc"] = round(float((predict(net, val[0]).argmax(1) == val[1]).mean()), 4)
        history.append(rec)
        print(f"{desc} " + " ".join(f"{k} {v}" for k, v in rec.items()), flush=True)
        net.to("cpu")  # checkpoints hold CPU tensors, loadable anywhere
        checkpoint.save_training(ckpt, doc(epoch + 1, history), opt, sched)
        net.to(dev)
    net.to("cpu")
    return history


def fit(model: zoo.Classifier, data: ClassData, o: FitOptions, out_dir: Path,
        resume: bool = False, val: tuple[np.ndarray, np.ndarray] | None = None,
        extra: dict | None = None) -> list[dict]:
    """Float training; out_dir/last.pt after every epoch."""
    def doc(epoch: int, history: list[dict]) -> dict:
        return {"format": CKPT_FORMAT, "config": asdict(model.cfg), "state": model.state_dict(),
                "epoch": epoch, "history": history, "options": asdict(o),
                "extra": extra or {}}

    def restore(d: dict) -> None:
        model.load_state_dict(d["state"])

    hist = train_loop(model, data, o, Path(out_dir) / "last.pt", doc, restore, resume, val, "float")
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
    fused.qat = True

    def doc(epoch: int, history: list[dict]) -> dict:
        return {"format": QAT_FORMAT, "state": fused.state_dict(), "ranges": fused.ranges,
                "epoch": epoch, "history": history, "options": asdict(o)}

    def restore(d: dict) -> None:
        fused.load_state_dict(d["state"])
        fused.ranges = {k: list(v) for k, v in d["ranges"].items()}

    hist = train_loop(fused, data, o, Path(out_dir) / "qat_last.pt", doc, restore, resume, val,
                  "qat")
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
    """Views (+ teacher outputs and probe), float training, QAT: the app recipe end to end."""
    data = load_views(train_samples, cfg, k_views, o.seed, teacher, desc=f"{desc}-train")
    val_x, val_y, _ = load_clean(val_samples, cfg, desc=f"{cfg.app.name}-{desc}-val")
    counts = dict(zip(*np.unique(data.sources, return_counts=True), strict=True))
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
    t0 = time.time()
    extra = {"app": cfg.app.name, "teacher": teacher is not None, "views": k_views}
    hist = fit(model, data, o, out_dir, resume, (val_x, val_y), extra)
    if qat.epochs > 0:
        fused, qhist = qat_finetune(model, data, qat, out_dir,
                                    resume and (Path(out_dir) / "qat_last.pt").is_file(),
                                    (val_x, val_y))
    else:
        fused, qhist = calibrated(model, data, seed=o.seed), []
    return Student(model, fused, hist + [{**h, "phase": "qat"} for h in qhist], probe,
                   teacher_val, {str(k): int(v) for k, v in counts.items()},
                   time.time() - t0)


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
