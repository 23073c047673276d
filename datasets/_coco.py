"""Shared by the COCO prepare scripts (a helper next to them, not a package): load an
instances json, fetch the 2017 annotations, and link or download the images.

The json is data from the network: its `file_name` only names a file inside the output (and
local image) folder (`patchcam.download.inside`), and its `coco_url` is only followed to
COCO's own image server, over https (COCO's files list http:// addresses there).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.parse
from pathlib import Path

from patchcam.download import DownloadError, download, inside, unzip

COCO_HOST = "images.cocodataset.org"
ANNOTATIONS_URL = f"https://{COCO_HOST}/annotations/annotations_trainval2017.zip"
# the digest COCO publishes for that archive (MD5 is all it lists)
ANNOTATIONS_MD5 = "f4bbac642086de4f52a3fdda2de5fa2c"
IMAGES_URL = f"https://{COCO_HOST}/{{split}}/{{file_name}}"


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
        unzip(download(ANNOTATIONS_URL, cache / "annotations_trainval2017.zip",
                       md5=ANNOTATIONS_MD5), cache, [member])
    return out


def image_url(im: dict, split: str) -> str:
    """The https address of one image: its coco_url when that is on COCO's image server
    (scheme upgraded to https), else the 2017 layout; a coco_url elsewhere is refused."""
    url = im.get("coco_url")
    if url is None:
        return IMAGES_URL.format(split=split, file_name=urllib.parse.quote(im["file_name"]))
    parts = urllib.parse.urlsplit(str(url))
    if parts.scheme.lower() not in ("http", "https") or parts.hostname != COCO_HOST:
        raise DownloadError(f"refusing coco_url {str(url)[:200]!r} of image {im.get('id')}: "
                            f"images are only fetched from https://{COCO_HOST}/")
    return urllib.parse.urlunsplit(("https", COCO_HOST, parts.path, "", ""))


def place_image(im: dict, images: Path | None, split: str, out_dir: Path) -> Path | None:
    """Put one COCO image at out_dir / file_name: link / copy from a local folder, else
    download it. Returns its path, or None when the local file is missing."""
    dest = inside(out_dir, im.get("file_name"), "file_name")
    if dest.exists():
        return dest
    if images is not None:
        src = inside(images, im["file_name"], "file_name")
        if not src.is_file():
            print(f"warning: {src}: missing, skipped", file=sys.stderr)
            return None
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(src.resolve(), dest)
        except OSError:
            shutil.copyfile(src, dest)
        return dest
    download(image_url(im, split), dest)
    return dest
