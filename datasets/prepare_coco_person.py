#!/usr/bin/env python3
"""COCO 2017 instances -> person boxes in YOLO txt (class 0 = person), for person_detect.

Crowd boxes cannot be learnt as one box and cannot be called background, so images with a
person crowd annotation are left out. Boxes smaller than `--min-box` of the image side (on
the longer box side) are dropped; `--negatives N` adds N images without any person.

    python datasets/prepare_coco_person.py --download --split val2017 --limit 1000
    python datasets/prepare_coco_person.py --annotations path/instances_val2017.json \
        --images path/val2017

Writes <out>/images/<split>/*.jpg, <out>/labels/<split>/*.txt and <out>/classes.txt
(train2017 -> train, val2017 -> test); read it with `patchcam.training.readers.read_yolo(out)`.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from _coco import fetch_annotations, load_instances, place_image

from patchcam.paths import REPO


def coco_person_yolo(coco: dict, min_box: float = 0.0, negatives: int = 0,
                     seed: int = 0) -> dict[int, list[str]]:
    """image id -> YOLO lines `0 cx cy w h` (an empty list for a negative image)."""
    person = {c["id"] for c in coco["categories"] if c["name"] == "person"}
    ims = {im["id"]: im for im in coco["images"]}
    lines: dict[int, list[str]] = {}
    crowd, anything = set(), set()
    for a in sorted(coco["annotations"], key=lambda a: a["id"]):
        anything.add(a["image_id"])
        if a["category_id"] not in person:
            continue
        if a.get("iscrowd", 0):
            crowd.add(a["image_id"])
            continue
        im = ims[a["image_id"]]
        w, h = im["width"], im["height"]
        x, y, bw, bh = a["bbox"]
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(float(w), x + bw), min(float(h), y + bh)
        if x1 <= x0 or y1 <= y0 or max((x1 - x0) / w, (y1 - y0) / h) < min_box:
            lines.setdefault(a["image_id"], [])
            continue
        lines.setdefault(a["image_id"], []).append(
            f"0 {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} "
            f"{(y1 - y0) / h:.6f}")
    # images whose people were all too small are not clean negatives: drop them
    out = {i: v for i, v in lines.items() if v and i not in crowd}
    pool = sorted(i for i in ims if i not in lines and i not in crowd)
    random.Random(seed).shuffle(pool)
    out.update({i: [] for i in pool[:negatives]})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--annotations", type=Path, help="instances_<split>.json")
    p.add_argument("--images", type=Path, help="local folder of the split's images")
    p.add_argument("--split", default="val2017", choices=["train2017", "val2017"])
    p.add_argument("--download", action="store_true")
    p.add_argument("--out", type=Path, default=REPO / "data" / "coco_person")
    p.add_argument("--limit", type=int, default=0, help="keep this many person images (0: all)")
    p.add_argument("--negatives", type=int, default=0, help="add this many person-free images")
    p.add_argument("--min-box", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    ann = a.annotations
    if ann is None:
        if not a.download:
            p.error("pass --annotations (and --images), or --download")
        ann = fetch_annotations(REPO / "data" / "coco", a.split)
    if a.images is None and not a.download:
        p.error("pass --images (the local image folder) or --download")
    coco = load_instances(ann)
    per_image = coco_person_yolo(coco, a.min_box, a.negatives, a.seed)
    ims = {im["id"]: im for im in coco["images"]}
    ids = sorted(per_image, key=lambda i: ims[i]["file_name"])
    if a.limit:
        pos = [i for i in ids if per_image[i]][:a.limit]
        ids = sorted(pos + [i for i in ids if not per_image[i]],
                     key=lambda i: ims[i]["file_name"])
    split = "test" if a.split == "val2017" else "train"
    n = 0
    for i in ids:
        img = place_image(ims[i], a.images, a.split, a.out / "images" / split)
        if img is not None:  # its file_name is checked: the label goes beside it, inside out
            txt = (a.out / "labels" / split / img.relative_to(a.out / "images" / split)
                   ).with_suffix(".txt")
            txt.parent.mkdir(parents=True, exist_ok=True)
            txt.write_text("".join(line + "\n" for line in per_image[i]))
            n += 1
    (a.out / "classes.txt").write_text("person\n")
    print(f"wrote {n} images with YOLO labels under {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
