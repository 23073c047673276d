#!/usr/bin/env python3
"""COCO 2017 instances -> Visual Wake Words labels (person / no_person), as a labels.csv folder.

An image is "person" when at least one person box (not crowd) covers >= 0.5 % of the image
area (`--min-area`; Chowdhery et al. 2019). The original VWW script measures the annotation's
segmentation `area` with a strict `>`; `--area-source segmentation` does the same.

    python datasets/prepare_vww.py --download --split val2017 --limit 2000
    python datasets/prepare_vww.py --annotations path/instances_train2017.json \
        --images path/train2017 --split train2017

Writes <out>/labels.csv (file,label,coco_image_id,split) and <out>/images/ (links to the local
images, or downloaded ones). train2017 images are split train / val by patchcam's hash;
val2017 images are the test split. Read it with `patchcam.training.readers.read_folder(out)`.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

from _coco import fetch_annotations, load_instances, place_image

from patchcam.paths import REPO


def vww_labels(coco: dict, min_area: float = 0.005, category: str = "person",
               area_source: str = "box") -> dict[int, str]:
    """image id -> "person" / "no_person"."""
    cat_ids = {c["id"] for c in coco["categories"] if c["name"] == category}
    if not cat_ids:
        raise SystemExit(f"error: no category {category!r} in the annotations")
    size = {im["id"]: im["width"] * im["height"] for im in coco["images"]}
    label = dict.fromkeys(size, f"no_{category}")
    for a in coco["annotations"]:
        if a["category_id"] not in cat_ids or a.get("iscrowd", 0):
            continue
        if area_source == "box":
            big = a["bbox"][2] * a["bbox"][3] >= min_area * size[a["image_id"]]
        else:
            big = a["area"] > min_area * size[a["image_id"]]
        if big:
            label[a["image_id"]] = category
    return label


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--annotations", type=Path, help="instances_<split>.json")
    p.add_argument("--images", type=Path, help="local folder of the split's images")
    p.add_argument("--split", default="val2017", choices=["train2017", "val2017"])
    p.add_argument("--download", action="store_true",
                   help="fetch the annotations (and images unless --images) from cocodataset.org")
    p.add_argument("--out", type=Path, default=REPO / "data" / "vww_coco")
    p.add_argument("--limit", type=int, default=0, help="keep this many images (0: all), "
                   "half person and half no_person where possible")
    p.add_argument("--min-area", type=float, default=0.005)
    p.add_argument("--area-source", choices=["box", "segmentation"], default="box")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    ann = a.annotations
    if ann is None:
        if not a.download:
            p.error("pass --annotations (and --images), or --download")
        ann = fetch_annotations(REPO / "data" / "coco", a.split)
    coco = load_instances(ann)
    labels = vww_labels(coco, a.min_area, area_source=a.area_source)
    images = sorted(coco["images"], key=lambda im: im["file_name"])
    if a.limit:
        rng = random.Random(a.seed)
        pos = [im for im in images if labels[im["id"]] == "person"]
        neg = [im for im in images if labels[im["id"]] != "person"]
        rng.shuffle(pos)
        rng.shuffle(neg)
        n_pos = min(len(pos), a.limit // 2)
        images = sorted(pos[:n_pos] + neg[:a.limit - n_pos], key=lambda im: im["file_name"])
    if a.images is None and not a.download:
        p.error("pass --images (the local image folder) or --download")
    split = "test" if a.split == "val2017" else "train"
    rows = []
    for im in images:
        img = place_image(im, a.images, a.split, a.out / "images")
        if img is not None:
            rows.append({"file": img.relative_to(a.out).as_posix(), "label": labels[im["id"]],
                         "coco_image_id": im["id"], "split": split})
    a.out.mkdir(parents=True, exist_ok=True)
    with (a.out / "labels.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["file", "label", "coco_image_id", "split"])
        w.writeheader()
        w.writerows(rows)
    n_pos = sum(r["label"] == "person" for r in rows)
    print(f"wrote {a.out / 'labels.csv'}: {len(rows)} images ({n_pos} person, "
          f"{len(rows) - n_pos} no_person)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
