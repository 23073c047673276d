"""Labelled image folders -> uint8 arrays at the model's resolution, with honest splits.

The folders are read by `readers` (a `labels.csv` with at least `file,label` columns,
the layout of the `vww_*` sets, or one sub-folder per class); this module decodes and resizes
their images. Decoded, resized images are cached as .npz under build/cache so a second run
starts at once.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from patchcam.images import UnreadableImage, read_image
from patchcam.training.readers import (  # noqa: F401  (re-exported: the readers used to live here)
    IMAGE_SUFFIXES,
    DatasetError,
    Sample,
    read_folder,
    split_of,
)

CACHE = Path("build/cache")


def load_image(path: Path, size: tuple[int, int], gray: bool = False) -> np.ndarray | None:
    """HxWxC uint8 RGB (or HxWx1 grey) resized to size=(h, w); None, with a warning that
    says why, if unreadable (missing, not an image, over patchcam.images.MAX_PIXELS,
    truncated)."""
    try:
        img = read_image(path, gray)
    except UnreadableImage as e:
        warnings.warn(f"{e}, skipped", stacklevel=2)
        return None
    img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return img[..., None] if gray else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_images(samples: list[Sample], size: tuple[int, int], gray: bool = False,
                desc: str = "images") -> tuple[np.ndarray, list[Sample]]:
    """Decode and resize (cached); unreadable files are skipped with one warning each."""
    key = hashlib.sha1(("|".join(str(s.image_path) for s in samples) + f"{size}{gray}").encode())
    cache = CACHE / f"{desc}-{size[0]}x{size[1]}{'g' if gray else ''}-{key.hexdigest()[:12]}.npz"
    if cache.is_file():
        z = np.load(cache)
        keep = z["keep"]
        return z["images"], [s for s, k in zip(samples, keep, strict=True) if k]
    imgs, keep = [], []
    for s in tqdm(samples, desc=f"loading {desc}", unit="img", leave=False):
        img = load_image(s.image_path, size, gray)  # warns when it skips one
        keep.append(img is not None)
        if img is not None:
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
