"""Labelled image folders -> uint8 arrays at the model's resolution, with honest splits.

A folder is described by a `labels.csv` with at least `file,label` columns (the layout of the
`vww_*` sets), or, without one, by one sub-folder per class (ImageFolder). Decoded, resized
images are cached as .npy under build/cache so a second run starts at once.
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
CACHE = Path("build/cache")


class DatasetError(ValueError):
    """A dataset that is missing, empty or malformed (the message says what to do)."""


@dataclass
class Sample:
    path: Path
    label: str
    source: str  # the dataset folder it came from (for leave-sources-out evaluation)


def read_folder(root: str | Path) -> list[Sample]:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found; see datasets/README.md for how "
                           "to download it, or pass DATA=path/to/your/images")
    labels = root / "labels.csv"
    if labels.is_file():
        with labels.open(newline="") as f:
            rows = list(csv.DictReader(f))
        if rows and not {"file", "label"} <= set(rows[0]):
            raise DatasetError(f"{labels}: needs 'file' and 'label' columns, has {list(rows[0])}")
        out = [Sample(root / r["file"], r["label"], root.name) for r in rows]
    else:
        out = [Sample(p, d.name, root.name) for d in sorted(root.iterdir()) if d.is_dir()
               for p in sorted(d.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not out:
        raise DatasetError(f"{root}: no labelled images found (expected labels.csv or one "
                           "sub-folder of images per class)")
    return out


def split_of(path: Path, val: float = 0.15, test: float = 0.15) -> str:
    """Deterministic split by a hash of the file name: stable across machines and runs."""
    h = int(hashlib.sha1(path.name.encode() + path.parent.name.encode()).hexdigest()[:8], 16)
    u = h / 0xFFFFFFFF
    return "test" if u < test else "val" if u < test + val else "train"


def load_image(path: Path, size: tuple[int, int], gray: bool = False) -> np.ndarray | None:
    """HxWxC uint8 RGB (or HxWx1 grey) resized to size=(h, w); None if unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        return None
    img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return img[..., None] if gray else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_images(samples: list[Sample], size: tuple[int, int], gray: bool = False,
                desc: str = "images") -> tuple[np.ndarray, list[Sample]]:
    """Decode and resize (cached); unreadable files are skipped with one warning each."""
    key = hashlib.sha1(("|".join(str(s.path) for s in samples) + f"{size}{gray}").encode())
    cache = CACHE / f"{desc}-{size[0]}x{size[1]}{'g' if gray else ''}-{key.hexdigest()[:12]}.npz"
    if cache.is_file():
        z = np.load(cache)
        keep = z["keep"]
        return z["images"], [s for s, k in zip(samples, keep, strict=True) if k]
    imgs, keep = [], []
    for s in tqdm(samples, desc=f"loading {desc}", unit="img", leave=False):
        img = load_image(s.path, size, gray)
        keep.append(img is not None)
        if img is None:
            warnings.warn(f"{s.path}: cannot be read as an image, skipped", stacklevel=2)
        else:
            imgs.append(img)
    if not imgs:
        raise DatasetError(f"{desc}: none of the {len(samples)} images could be read")
    skipped = len(samples) - len(imgs)
    if skipped:
        warnings.warn(f"{desc}: {skipped} of {len(samples)} images skipped", stacklevel=2)
    arr = np.stack(imgs)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache, images=arr, keep=np.array(keep))
    return arr, [s for s, k in zip(samples, keep, strict=True) if k]
