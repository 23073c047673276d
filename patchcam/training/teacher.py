"""The distillation teacher: ImageNet-pretrained MobileNetV2 (int8, TFLite Micro's copy) with a
logistic-regression probe fitted on the app's labelled training images.

    path = locate("auto")                       # ../shared/models, data/models, or download
    t = Teacher(path)                           # LiteRT interpreter, 2 threads
    logits = t.logits(views_224)                # (N, 1000) float, dequantised
    probe = Probe.fit(logits[train], labels[train])
    soft = probe(logits)                        # (N, classes) logits: the student's soft targets

Why this teacher: MobileNetV2 1.0 has seen 1.2 M ImageNet photos; a linear probe on its 1000
logits generalises to unseen kinds of scenes far better than a 100 k-parameter network
trained from scratch on a few thousand photos, and the student can learn that from the
probe's soft targets. The file is 4 MB, so it is not shipped: it is downloaded once from the
tflite-micro repository (pinned commit) and checked by SHA-256, which also guarantees the
input quantisation (scale / zero point) this module reads matches the model.

Teacher outputs are cached (`TeacherCache`, build/cache/teacher_<sha>.npz): one int8 row per
(image file content, view), so a second run, or a run on a subset of the same images (the
leave-sources-out evaluation), does not run the teacher again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from patchcam import download as dl
from patchcam.paths import REPO

FILE = "mobilenet_v2_quantized_1x3x224x224.tflite"
COMMIT = "90b983c2b3f1480642e040bbd2ddb37b998f3424"
URL = (f"https://raw.githubusercontent.com/tensorflow/tflite-micro/{COMMIT}/third_party/xtensa/"
       f"examples/pytorch_to_tflite/{FILE}")
SHA256 = "2778683128d56fe4a3da6b8cdbbb00ec12663553f30a9b4fe927747ba637bb2f"
SIZE = 224  # the teacher's input is 1x3x224x224 (NCHW)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
# Where a teacher file is looked for, in order (the first is where `auto` downloads to).
SEARCH = (REPO / "data" / "models", REPO.parent / "shared" / "models")
CACHE = REPO / "build" / "cache"


class TeacherError(RuntimeError):
    """The teacher model is missing, damaged or cannot run (one line: what to do)."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path) -> Path:
    """Refuse a file whose SHA-256 is not the pinned one (damaged, truncated or another model)."""
    got = sha256(path)
    if got != SHA256:
        raise TeacherError(f"{path}: SHA-256 {got[:16]}... is not the expected {SHA256[:16]}... "
                           f"(damaged or a different model); delete it and run again to "
                           f"download {FILE}, or pass --teacher none")
    return path


def locate(spec: str = "auto", allow_download: bool = True) -> Path:
    """The teacher file, verified. spec: a path to the .tflite, or "auto": look in
    $PATCHCAM_MODELS, data/models and ../shared/models, else download to data/models."""
    how = (f"download {URL} (or run with --teacher auto, which downloads it to data/models), "
           f"or pass --teacher none to train without a teacher")
    if spec != "auto":
        p = Path(spec)
        if p.is_dir():
            p = p / FILE
        if not p.is_file():
            raise TeacherError(f"teacher model {p} not found: {how}")
        return verify(p)
    dirs = ([Path(os.environ["PATCHCAM_MODELS"])] if os.environ.get("PATCHCAM_MODELS") else [])
    for d in (*dirs, *SEARCH):
        if (d / FILE).is_file():
            return verify(d / FILE)
    if not allow_download:
        raise TeacherError(f"teacher model {FILE} not found in "
                           f"{', '.join(str(d) for d in (*dirs, *SEARCH))}: {how}")
    dest = SEARCH[0] / FILE
    try:
        dl.download(URL, dest, sha256=SHA256)
    except dl.DownloadError as e:
        raise TeacherError(f"{e.message}; or pass --teacher none") from None
    try:
        return verify(dest)
    except TeacherError:
        dest.unlink()  # a bad download must not be found (and refused) again next time
        raise


class Teacher:
    """MobileNetV2 int8 in LiteRT: uint8 RGB 224x224 views in, dequantised ImageNet logits out."""

    def __init__(self, path: Path, threads: int = 2):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:
            raise TeacherError(f"the teacher needs LiteRT (pip install ai-edge-litert): {e}; "
                               "or pass --teacher none") from None
        self.path = Path(path)
        self.sha = sha256(self.path)
        self.it = Interpreter(str(self.path), num_threads=threads)
        self.it.allocate_tensors()
        i, o = self.it.get_input_details()[0], self.it.get_output_details()[0]
        if tuple(i["shape"]) != (1, 3, SIZE, SIZE) or i["dtype"] != np.int8:
            raise TeacherError(f"{path}: expected an int8 1x3x{SIZE}x{SIZE} input, got "
                               f"{i['dtype'].__name__} {tuple(i['shape'])}")
        self.inp, self.out = i["index"], o["index"]
        self.in_scale, self.in_zp = i["quantization"]
        self.out_scale, self.out_zp = o["quantization"]

    def quantize_input(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 (224x224) -> the 1x3x224x224 int8 tensor: ImageNet mean/std, then the
        input's own scale and zero point (read from the model, not hard-coded)."""
        x = (rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        q = np.round(x / self.in_scale) + self.in_zp
        return np.clip(q, -128, 127).astype(np.int8).transpose(2, 0, 1)[None]

    def raw(self, views: np.ndarray) -> np.ndarray:
        """(N, 224, 224, 3) uint8 -> (N, 1000) int8 (the model's output as stored)."""
        out = np.empty((len(views), 1000), np.int8)
        for k, v in enumerate(views):
            self.it.set_tensor(self.inp, self.quantize_input(v))
            self.it.invoke()
            out[k] = self.it.get_tensor(self.out)[0]
        return out

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (q.astype(np.float32) - self.out_zp) * self.out_scale

    def logits(self, views: np.ndarray) -> np.ndarray:
        return self.dequantize(self.raw(views))


class TeacherCache:
    """int8 teacher outputs keyed by (file content hash, view key), per teacher SHA-256.

    The view key names how the view was made (seed, view index, augmentation version), so a
    changed augmentation can never reuse stale outputs."""

    def __init__(self, teacher: Teacher, cache_dir: Path | None = None):
        self.teacher = teacher
        self.file = Path(cache_dir or CACHE) / f"teacher_{teacher.sha[:16]}.npz"
        self.rows: dict[str, np.ndarray] = {}
        self.new = 0
        if self.file.is_file():
            z = np.load(self.file)
            self.rows = dict(zip(z["keys"].tolist(), z["logits"], strict=True))

    def has(self, keys: list[str]) -> bool:
        return all(k in self.rows for k in keys)

    def get(self, keys: list[str], views: np.ndarray | None = None) -> np.ndarray:
        """int8 (len(keys), 1000); views (same order, uint8 224x224 RGB) are run through the
        teacher only for the keys not cached yet."""
        missing = [i for i, k in enumerate(keys) if k not in self.rows]
        if missing:
            if views is None:
                raise KeyError(f"{len(missing)} teacher outputs not cached and no views given")
            for i, row in zip(missing, self.teacher.raw(views[missing]), strict=True):
                self.rows[keys[i]] = row
            self.new += len(missing)
        return np.stack([self.rows[k] for k in keys])

    def save(self) -> None:
        if not self.new:
            return
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(self.file.stem + ".tmp.npz")
        np.savez(tmp, keys=np.array(list(self.rows)), logits=np.stack(list(self.rows.values())))
        tmp.replace(self.file)
        self.new = 0


class Probe:
    """Multinomial logistic regression on standardised teacher logits (L2-regularised,
    full-batch L-BFGS): the "small head" that turns ImageNet logits into the app's classes."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, w: np.ndarray, b: np.ndarray):
        self.mean, self.std, self.w, self.b = mean, std, w, b

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, num_classes: int, l2: float = 1e-3,
            iters: int = 200) -> Probe:
        mean = x.mean(0)
        std = x.std(0) + 1e-3
        xt = torch.from_numpy((x - mean) / std).float()
        yt = torch.from_numpy(y).long()
        w = torch.zeros(x.shape[1], num_classes, requires_grad=True)
        b = torch.zeros(num_classes, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(xt @ w + b, yt) + l2 * (w * w).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return cls(mean, std, w.detach().numpy(), b.detach().numpy())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std) @ self.w + self.b

    def state(self) -> dict:
        return {"mean": self.mean, "std": self.std, "w": self.w, "b": self.b}

