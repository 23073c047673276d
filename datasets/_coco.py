"""Shared by the COCO prepare scripts (a helper next to them, not a package): load an
instances json, fetch the 2017 annotations, and link or download the images."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from patchcam.download import download, unzip

ANNOTATIONS_URL = "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"
IMAGES_URL = "http://images.cocodataset.org/{split}/{file_name}"


def load_instances(path: Path) -> dict:
    if not path.is_file():
        raise SystemExit(f"error: {path}: COCO instances json not found (pass --annotations, "
                         "or --download to fetch the COCO 2017 annotations)")
    return json.loads(path.read_text())


def fetch_annotations(cache: Path, split: str) -> Path:
    """instances_<split>.json from the official 2017 zip (241 MB, resumable)."""
    member = f"annotations/instances_{split}.json"
    out = cache / member
    if not out.is_file():
        unzip(download(ANNOTATIONS_URL, cache / "annotations_trainval2017.zip"), cache, [member])
    return out


def place_image(im: dict, images: Path | None, split: str, dest: Path) -> bool:
    """Put one COCO image at dest: link / copy from a local folder, else download it."""
    if dest.exists():
        return True
    dest.parent.mkdir(parents=True, exist_ok=True)
    if images is not None:
        src = images / im["file_name"]
        if not src.is_file():
            print(f"warning: {src}: missing, skipped", file=sys.stderr)
            return False
        try:
            os.symlink(src.resolve(), dest)
        except OSError:
            shutil.copyfile(src, dest)
        return True
    url = im.get("coco_url") or IMAGES_URL.format(split=split, file_name=im["file_name"])
    download(url, dest)
    return True
