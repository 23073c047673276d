#!/usr/bin/env python3
"""The Kaggle "Face Mask Detection" set (andrewmvd, CC0; 853 images, PASCAL VOC XML).

    python datasets/prepare_face_mask.py --download            # Kaggle API, see below
    python datasets/prepare_face_mask.py --from archive.zip    # the zip from the Kaggle page
    python datasets/prepare_face_mask.py --from path/to/unpacked/folder

The Kaggle download uses KAGGLE_USERNAME / KAGGLE_KEY (or ~/.kaggle/kaggle.json) when set.
Writes <out>/images/ and <out>/annotations/ (pairs matched by file stem: the XML <filename>
field is not trusted) for `patchcam.training.readers.read_voc(out)`. When ../shared/datasets/
face_mask_detection exists, the apps use it and this script is not needed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from patchcam.download import download, unzip
from patchcam.paths import REPO

KAGGLE_URL = "https://www.kaggle.com/api/v1/datasets/download/andrewmvd/face-mask-detection"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def collect_pairs(src: Path) -> list[tuple[Path, Path]]:
    """(image, xml) pairs anywhere under src, matched by stem; unpaired files are reported."""
    images = {p.stem: p for p in sorted(src.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES}
    xmls = {p.stem: p for p in sorted(src.rglob("*.xml"))}
    for stem in sorted(set(images) ^ set(xmls)):
        which = "image" if stem in images else "annotation"
        print(f"warning: {(images | xmls)[stem]}: {which} without a partner, skipped",
              file=sys.stderr)
    pairs = [(images[s], xmls[s]) for s in sorted(set(images) & set(xmls))]
    if not pairs:
        raise SystemExit(f"error: {src}: no image + .xml pairs found (expected the Kaggle "
                         "layout images/*.png + annotations/*.xml)")
    return pairs


def install(src: Path, out: Path) -> int:
    """Copy the pairs into out/images and out/annotations; returns the number of pairs."""
    pairs = collect_pairs(src)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for img, xml in pairs:
        shutil.copyfile(img, out / "images" / img.name)
        shutil.copyfile(xml, out / "annotations" / xml.name)
    return len(pairs)


def kaggle_headers() -> dict[str, str]:
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    cfg = Path.home() / ".kaggle" / "kaggle.json"
    if not (user and key) and cfg.is_file():
        doc = json.loads(cfg.read_text())
        user, key = doc.get("username"), doc.get("key")
    if not (user and key):
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--from", dest="src", type=Path, help="the Kaggle zip or an unpacked folder")
    g.add_argument("--download", action="store_true", help="fetch the zip from Kaggle")
    p.add_argument("--out", type=Path, default=REPO / "data" / "face_mask_detection")
    a = p.parse_args(argv)
    src = a.src
    if a.download:
        src = download(KAGGLE_URL, REPO / "data" / "face-mask-detection.zip", kaggle_headers())
    if src is None or not src.exists():
        raise SystemExit(f"error: {src}: not found")
    if src.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            n = install(unzip(src, tmp), a.out)
    else:
        n = install(src, a.out)
    print(f"wrote {n} image + annotation pairs under {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
