"""Any folder of photos, scored against an app: `patchcam eval APP --data DIR`.

The folder may be a classification set (one sub-folder per class, or `labels.csv`) or a
detection set (YOLO, VOC or COCO; readers.detect_format decides). Every image counts: the
folder's own train / val / test split is ignored, since nothing here was trained on it.
Class names are matched to the app's classes through common spellings (`non_person`,
`background`, `with_mask`, ...); a name that matches none is refused, never guessed.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from patchcam.app.config import AppConfig
from patchcam.training import imagesets, readers
from patchcam.training.detector import DetData

# Common names of each app class in public datasets (compared after lower-casing and
# folding "-" and " " to "_").
CLASS_ALIASES: dict[str, tuple[str, ...]] = {
    "person": ("person", "persons", "people", "human", "humans", "pedestrian", "pedestrians",
               "with_person", "yes"),
    "no_person": ("no_person", "non_person", "nonperson", "not_person", "noperson",
                  "without_person", "background", "negative", "negatives", "none", "empty",
                  "no"),
    "mask": ("mask", "with_mask", "masked", "face_mask"),
    "no_mask": ("no_mask", "without_mask", "unmasked", "nomask", "mask_weared_incorrect",
                "incorrect_mask", "mask_incorrect"),
}


def _fold(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def class_mapping(cfg: AppConfig, names: set[str]) -> dict[str, str]:
    """{name in the data: app class} for every name that means one of the app's classes."""
    out = {}
    for name in names:
        folded = _fold(name)
        for cls in cfg.classes.names:
            if folded == _fold(cls) or folded in CLASS_ALIASES.get(cls, ()):
                out[name] = cls
    return out


def _known(cfg: AppConfig) -> str:
    return "; ".join(f"{c}: " + ", ".join(dict.fromkeys((c, *CLASS_ALIASES.get(c, ()))))
                     for c in cfg.classes.names)


def read(cfg: AppConfig, root: Path) -> list[readers.Sample]:
    """Every readable image of `root` with its labels mapped onto the app's classes.

    Classification apps get one image label per sample (a detection set's photo is the
    positive class when it holds a box of it, else the other class); detection apps get
    their boxes (boxes of classes that are not the app's are dropped, as in training).
    Raises readers.DatasetError with one line when the folder cannot be used.
    """
    if not root.is_dir() and not (root.is_file() and root.suffix == ".json"):
        raise readers.DatasetError(f"{root}: not a folder of photos (give a folder with class "
                                   "sub-folders, labels.csv, or YOLO / VOC / COCO labels)")
    ss = readers.read_dataset(root)  # refuses a folder without labelled images
    names = {s.image_label for s in ss if s.image_label is not None} | \
        {lb for s in ss for lb in s.labels}
    mapping = class_mapping(cfg, names)
    if cfg.app.task == "classify":
        return _image_labels(cfg, ss, mapping, root)
    if ss.format == "folder":
        raise readers.DatasetError(f"{root}: {cfg.app.name} is a detector; it needs boxes "
                                   "(a YOLO, VOC or COCO set), not class folders")
    unknown = {lb for s in ss for lb in s.labels} - set(mapping)
    if not mapping:
        raise readers.DatasetError(f"{root}: none of its box classes ({', '.join(sorted(unknown))})"
                                   f" is one of {cfg.app.name}'s ({_known(cfg)})")
    return readers.remap_labels(ss, mapping, drop_unmapped=True)


def _image_labels(cfg: AppConfig, ss: readers.SampleSet, mapping: dict[str, str],
                  root: Path) -> list[readers.Sample]:
    positive = cfg.classes.positive or cfg.classes.names[-1]
    negative = next(c for c in cfg.classes.names if c != positive)
    if ss.format == "folder":
        unknown = sorted({s.image_label for s in ss} - set(mapping))
        if unknown:
            raise readers.DatasetError(
                f"{root}: class folder(s) {', '.join(unknown)} mean none of "
                f"{cfg.app.name}'s classes; rename them (known names: {_known(cfg)})")
        return readers.remap_labels(ss, mapping)
    # A detection set: the photo shows the positive class when one of its boxes does.
    return [readers.with_image_label([s], positive if any(mapping.get(lb) == positive
                                                          for lb in s.labels) else negative)[0]
            for s in ss]


def set_name(root: Path) -> str:
    """A file-name-safe name for the folder's report (build/eval/<app>-data-<name>.json)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name).strip("._") or "data"


def detection_data(cfg: AppConfig, samples: list[readers.Sample], desc: str
                   ) -> tuple[DetData, list[readers.Sample]]:
    """The samples resized to the model input with boxes in input pixels, and the samples
    that could be decoded (in the same order)."""
    h, w = cfg.input.height, cfg.input.width
    names = list(cfg.classes.names)
    images, kept = imagesets.load_images(samples, (h, w), cfg.input.color == "gray", desc=desc)
    boxes = [readers.scaled_boxes(s, (h, w)).astype(np.float32) if len(s.boxes)
             else np.zeros((0, 4), np.float32) for s in kept]
    labels = [np.array([names.index(lb) for lb in s.labels], np.int64) for s in kept]
    return DetData(images, boxes, labels, [s.source for s in kept]), kept
