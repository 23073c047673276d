"""Dataset readers: image folders, PASCAL VOC XML, YOLO txt and COCO json -> one `Sample` list.

Every reader returns a `SampleSet`: a list of `Sample`s plus the images it had to skip, with a
deterministic train / val / test split already assigned to each sample.

`Sample.boxes` are float32 (N, 4) `x0, y0, x1, y1` in pixels of the image file as stored
(not resized); `Sample.labels` has one class name per box. A classification sample (image
folders, `labels.csv`) has no boxes and its class in `Sample.image_label`.

Splits (`Sample.split` in train / val / test):
- the dataset's own split when it has one: sub-folders named train / val / valid / test, or a
  `suggested_split` / `split` column in `labels.csv` (coco_person_rf_capston2). A dataset that
  only has train / test (penn_fudan_ped) gets its val carved out of train by hash;
- otherwise a hash of the sample's *group key* (`hash_split`): the file name and its parent
  folder, with Roboflow's `_jpg.rf.<hash>` suffix removed, so the augmented copies of one
  photo always land in the same split. CamVid frames are grouped by video sequence.

Bad input: an image that cannot be opened is skipped with a warning naming it and counted
(`SampleSet.skipped`); a label line that is malformed or a box outside the image (by more than
`TOLERANCE_PX` pixels, or 0.1 % of a YOLO image side) raises `LabelError` as `file:line: why`;
so does an image path an annotation file names (COCO's `file_name`, labels.csv's `file`,
captions.txt's `image`) that would leave its folder (`patchcam.paths.inside`: absolute, `..`,
through a folder that links out; an image file that is itself a link is read); an empty
dataset or a missing folder raises `DatasetError` with one line that says what to do.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import warnings
import xml.parsers.expat
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from patchcam.images import UnreadableImage, image_size
from patchcam.paths import UnsafePath, inside

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
SPLITS = ("train", "val", "test")
VAL_FRACTION = 0.15
TEST_FRACTION = 0.15
TOLERANCE_PX = 1.0  # VOC boxes may end one pixel past the border (1-based coordinates)
TOLERANCE_NORM = 1e-3  # YOLO: exports round, so allow 0.1 % of the side
FORMATS = ("auto", "folder", "voc", "yolo", "coco", "captions")

# face_mask_detection's three classes -> the two of the mask_detect app.
MASK_CLASS_MAP = {"with_mask": "mask", "without_mask": "no_mask",
                  "mask_weared_incorrect": "no_mask"}

# How to get each public dataset when its folder is missing (keyed by a folder-name prefix).
_HOW_TO_GET = {
    "vww": "run `python datasets/prepare_vww.py`",
    "coco_person": "run `python datasets/prepare_coco_person.py`",
    "face_mask": "run `python datasets/prepare_face_mask.py`",
    "penn_fudan": "download https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip "
                  "(see datasets/README.md)",
}


class DatasetError(ValueError):
    """A dataset that is missing, empty or malformed (the message says what to do)."""


class LabelError(DatasetError):
    """A malformed annotation: the message starts with `file:line:`."""


@dataclass
class Sample:
    image_path: Path
    boxes: np.ndarray  # float32 (N, 4): x0, y0, x1, y1 in pixels of the stored image
    labels: list[str]  # one class name per box
    source: str  # the dataset folder it came from (for leave-sources-out evaluation)
    split: str = "train"  # train / val / test
    image_label: str | None = None  # classification sets: the class of the whole image
    size: tuple[int, int] | None = None  # (width, height) of the stored image, when known
    group: str = ""  # split key: copies of one photo share it

    @property
    def path(self) -> Path:  # the name imagesets used
        return self.image_path

    @property
    def label(self) -> str:
        """Image-level class (classification samples)."""
        if self.image_label is None:
            raise DatasetError(f"{self.image_path}: a detection sample has no image label; "
                               "set one with `with_image_label`")
        return self.image_label


@dataclass
class SampleSet:
    samples: list[Sample]
    root: Path
    format: str
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (image, why)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    def split(self, name: str) -> list[Sample]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; splits: {', '.join(SPLITS)}")
        return [s for s in self.samples if s.split == name]

    def counts(self) -> dict[str, int]:
        c = Counter(s.split for s in self.samples)
        return {k: c.get(k, 0) for k in SPLITS}

    def summary(self) -> str:
        """One line: images per split, boxes per class (or images per class), skipped."""
        splits = " / ".join(f"{k} {v}" for k, v in self.counts().items())
        boxes = Counter(lb for s in self.samples for lb in s.labels)
        images = Counter(s.image_label for s in self.samples if s.image_label is not None)
        parts = [f"{self.root.name} ({self.format}): {len(self.samples)} images ({splits})"]
        if boxes:
            parts.append(f"{sum(boxes.values())} boxes (" +
                         ", ".join(f"{k} {v}" for k, v in sorted(boxes.items())) + ")")
        if images:
            parts.append(", ".join(f"{k} {v}" for k, v in sorted(images.items())))
        parts.append(f"{len(self.skipped)} skipped")
        return "; ".join(parts)


# ---- splits -------------------------------------------------------------------------------
def hash_unit(key: str) -> float:
    """A stable number in [0, 1] from a string (first 32 bits of its SHA-1)."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def hash_split(key: str, val: float = VAL_FRACTION, test: float = TEST_FRACTION) -> str:
    u = hash_unit(key)
    return "test" if u < test else "val" if u < test + val else "train"


def split_of(path: Path, val: float = VAL_FRACTION, test: float = TEST_FRACTION) -> str:
    """Deterministic split by a hash of the file name and its folder (stable across machines)."""
    return hash_split(path.name + path.parent.name, val, test)


_ROBOFLOW = re.compile(r"_(jpe?g|png|bmp|webp)\.rf\.[0-9a-f]+(?=\.[A-Za-z]+$)", re.IGNORECASE)


def group_key(path: Path) -> str:
    """Split key of an image: name + folder, without Roboflow's `_jpg.rf.<hash>` suffix."""
    name = _ROBOFLOW.sub("", path.name)
    if re.fullmatch(r"(0001TP|0006R0|0016E5|Seq05VD)_f?\d+\.\w+", name):  # CamVid sequences
        return "camvid/" + name.split("_")[0]
    return name + path.parent.name


def own_split(name: str) -> str | None:
    """A dataset's own split name -> ours (valid -> val); None if it is not a split name."""
    return {"train": "train", "val": "val", "valid": "val", "validation": "val",
            "test": "test"}.get(name.lower())


def _assign(s: Sample, given: str | None, has_val: bool) -> Sample:
    if given is None:
        s.split = hash_split(s.group)
    elif given == "train" and not has_val:  # carve val out of the dataset's train split
        s.split = "val" if hash_unit(s.group) < VAL_FRACTION else "train"
    else:
        s.split = given
    return s


def _finish(samples: list[Sample], given: list[str | None], root: Path, fmt: str,
            skipped: list[tuple[Path, str]]) -> SampleSet:
    if not samples:
        what = f"; {len(skipped)} images could not be read" if skipped else ""
        raise DatasetError(f"{root}: empty dataset, no labelled images found ({fmt} layout{what})")
    has_val = "val" in given
    for s, g in zip(samples, given, strict=True):
        _assign(s, g, has_val)
    if skipped:
        warnings.warn(f"{root}: {len(skipped)} of {len(samples) + len(skipped)} images skipped "
                      "(unreadable)", stacklevel=3)
    return SampleSet(samples, root, fmt, skipped)


# ---- shared checks ------------------------------------------------------------------------
def _require_dir(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        hint = next((v for k, v in _HOW_TO_GET.items() if root.name.startswith(k)),
                    "see datasets/README.md for the prepare scripts")
        raise DatasetError(f"{root}: dataset folder not found; {hint}, or pass "
                           "DATA=path/to/your/data")
    return root


def probe_image(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, or None if it is missing, not an image or over
    the pixel limit (patchcam.images.MAX_PIXELS)."""
    try:
        return image_size(path)
    except UnreadableImage:
        return None


def _probe(path: Path, skipped: list[tuple[Path, str]]) -> tuple[int, int] | None:
    try:
        return image_size(path)
    except UnreadableImage as e:
        why = str(e).removeprefix(f"{path}: ")
        warnings.warn(f"{path}: {why}, skipped", stacklevel=3)
        skipped.append((path, why))
        return None


def check_box(box: np.ndarray, size: tuple[int, int], where: str, tol: float) -> np.ndarray:
    """Raise LabelError unless the box is non-empty and inside the image (+tol); clip it."""
    w, h = size
    x0, y0, x1, y1 = (float(v) for v in box)
    if not np.all(np.isfinite(box)):
        raise LabelError(f"{where}: box {x0, y0, x1, y1} is not finite")
    if x1 <= x0 or y1 <= y0:
        raise LabelError(f"{where}: empty box (x0={x0:g}, y0={y0:g}, x1={x1:g}, y1={y1:g})")
    if x0 < -tol or y0 < -tol or x1 > w + tol or y1 > h + tol:
        raise LabelError(f"{where}: box (x0={x0:g}, y0={y0:g}, x1={x1:g}, y1={y1:g}) is outside "
                         f"the {w}x{h} image")
    return np.clip(np.array([x0, y0, x1, y1], np.float32), 0, [w, h, w, h]).astype(np.float32)


def _images_under(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _boxes(rows: list[np.ndarray]) -> np.ndarray:
    return np.array(rows, np.float32).reshape(-1, 4)


# ---- image folders and labels.csv ---------------------------------------------------------
def read_folder(root: str | Path) -> SampleSet:
    """Classification: `labels.csv` with `file,label` columns, or one sub-folder per class.

    Sub-folders named train / val / valid / test above the class folders give the split.
    """
    root = _require_dir(root)
    labels = root / "labels.csv"
    entries: list[tuple[Path, str, str | None]] = []  # path, label, given split
    if labels.is_file():
        with labels.open(newline="") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            if not {"file", "label"} <= set(cols):
                raise LabelError(f"{labels}:1: needs 'file' and 'label' columns, has {cols}")
            for line, r in enumerate(reader, start=2):
                if not r["file"] or not r["label"]:
                    raise LabelError(f"{labels}:{line}: empty 'file' or 'label'")
                split = r.get("suggested_split") or r.get("split")
                try:
                    path = inside(root, r["file"], "file", linked_file=True)
                except UnsafePath as e:
                    raise LabelError(f"{labels}:{line}: {e}") from None
                entries.append((path, r["label"], own_split(split) if split else None))
    else:
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            split = own_split(d.name)
            class_dirs = sorted(p for p in d.iterdir() if p.is_dir()) if split else [d]
            for c in class_dirs:
                entries += [(p, c.name, split) for p in _images_under(c)]
    samples, given, skipped = [], [], []
    for path, label, split in entries:
        s = _labelled_image(path, label, root, skipped)
        if s is not None:
            samples.append(s)
            given.append(split)
    return _finish(samples, given, root, "folder", skipped)


def _labelled_image(path: Path, label: str, root: Path, unreadable: list) -> Sample | None:
    """A sample with an image label and no boxes; None (and noted) when it cannot be read."""
    size = _probe(path, unreadable)
    if size is None:
        return None
    return Sample(path, _boxes([]), [], root.name, image_label=label, size=size,
                  group=group_key(path))


# ---- PASCAL VOC ---------------------------------------------------------------------------
@dataclass
class _Node:
    tag: str
    line: int
    text: str = ""
    children: list[_Node] = field(default_factory=list)

    def find(self, tag: str) -> _Node | None:
        return next((c for c in self.children if c.tag == tag), None)


def _parse_xml(path: Path) -> _Node:
    """A tiny XML tree that keeps each element's line number (ElementTree drops it)."""
    parser = xml.parsers.expat.ParserCreate()
    root = _Node("", 0)
    stack = [root]

    def start(tag: str, _attrs: dict) -> None:
        n = _Node(tag, parser.CurrentLineNumber)
        stack[-1].children.append(n)
        stack.append(n)

    def end(_tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        stack[-1].text += data

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(path.read_bytes(), True)
    except xml.parsers.expat.ExpatError as e:
        why = xml.parsers.expat.ErrorString(e.code)
        raise LabelError(f"{path}:{e.lineno}: malformed XML ({why})") from None
    if not root.children:
        raise LabelError(f"{path}:1: empty XML file")
    return root.children[0]


def _voc_number(node: _Node | None, tag: str, path: Path, line: int) -> float:
    child = node.find(tag) if node is not None else None
    if child is None:
        raise LabelError(f"{path}:{line}: missing <{tag}>")
    try:
        return float(child.text.strip())
    except ValueError:
        raise LabelError(f"{path}:{child.line}: <{tag}> is not a number: "
                         f"{child.text.strip()!r}") from None


def read_voc_file(xml_path: Path, image_path: Path, size: tuple[int, int], source: str,
                  tol: float = TOLERANCE_PX) -> Sample:
    """One VOC annotation. Images and XML pair by stem (the <filename> field is ignored)."""
    doc = _parse_xml(xml_path)
    boxes, labels = [], []
    for obj in (c for c in doc.children if c.tag == "object"):
        name = obj.find("name")
        if name is None or not name.text.strip():
            raise LabelError(f"{xml_path}:{obj.line}: <object> without a <name>")
        bb = obj.find("bndbox")
        line = bb.line if bb is not None else obj.line
        box = np.array([_voc_number(bb, k, xml_path, line)
                        for k in ("xmin", "ymin", "xmax", "ymax")], np.float32)
        boxes.append(check_box(box, size, f"{xml_path}:{line}", tol))
        labels.append(name.text.strip())
    return Sample(image_path, _boxes(boxes), labels, source, size=size, group=group_key(image_path))


def read_voc(root: str | Path, images: str = "images", annotations: str = "annotations",
             tol: float = TOLERANCE_PX) -> SampleSet:
    """PASCAL VOC: `images/<stem>.*` and `annotations/<stem>.xml` (sub-folders allowed).

    The box corners are taken as written (VOC's 1-based pixels, not shifted) and clipped to
    the image; a box ending up to `tol` pixels past the border is clipped, further is an error.
    A split sub-folder (train / val / test) under annotations/ gives the split.
    """
    root = _require_dir(root)
    img_dir, ann_dir = root / images, root / annotations
    if not ann_dir.is_dir():
        raise DatasetError(f"{root}: no '{annotations}/' folder of VOC .xml files")
    by_stem = {p.stem: p for p in _images_under(img_dir)} if img_dir.is_dir() else {}
    samples, given, skipped = [], [], []
    for xml_path in sorted(ann_dir.rglob("*.xml")):
        image = by_stem.get(xml_path.stem, img_dir / (xml_path.stem + ".jpg"))
        size = _probe(image, skipped)
        if size is None:
            continue
        samples.append(read_voc_file(xml_path, image, size, root.name, tol))
        rel = xml_path.relative_to(ann_dir).parts
        given.append(own_split(rel[0]) if len(rel) > 1 else None)
    return _finish(samples, given, root, "voc", skipped)


# ---- YOLO ---------------------------------------------------------------------------------
def yolo_class_names(root: Path, label_dir: Path) -> list[str] | None:
    """Class names from classes.txt / *.names (one per line) or data.yaml's `names:`."""
    for d in (root, label_dir):
        for p in [d / "classes.txt", *sorted(d.glob("*.names"))]:
            if p.is_file():
                return [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
        y = d / "data.yaml"
        if y.is_file():
            m = re.search(r"^names:\s*\[(.*?)\]", y.read_text(), re.MULTILINE | re.DOTALL)
            if m:
                return [n.strip().strip("'\"") for n in m.group(1).split(",") if n.strip()]
    return None


def read_yolo_file(txt: Path | None, image_path: Path, size: tuple[int, int],
                   names: list[str], source: str, tol: float = TOLERANCE_NORM) -> Sample:
    """`class cx cy w h` per line, normalised to [0, 1]; no file or an empty file: no boxes."""
    boxes, labels = [], []
    lines = txt.read_text().splitlines() if txt is not None else []
    w, h = size
    for i, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        where = f"{txt}:{i}"
        if len(parts) != 5:
            raise LabelError(f"{where}: expected 'class cx cy w h', got {line.strip()!r}")
        try:
            cls = int(parts[0])
            cx, cy, bw, bh = (float(v) for v in parts[1:])
        except ValueError:
            raise LabelError(f"{where}: not numbers: {line.strip()!r}") from None
        if not 0 <= cls < len(names):
            raise LabelError(f"{where}: class {cls} out of range (0..{len(names) - 1}: "
                             f"{', '.join(names)})")
        box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], np.float64)
        box = check_box(box, (1, 1), where, tol) * np.array([w, h, w, h], np.float32)
        boxes.append(box.astype(np.float32))
        labels.append(names[cls])
    return Sample(image_path, _boxes(boxes), labels, source, size=size, group=group_key(image_path))


def read_yolo(root: str | Path, class_names: list[str] | None = None,
              tol: float = TOLERANCE_NORM) -> SampleSet:
    """YOLO txt. Pairs images and label files by stem, with either layout:

    - `labels.csv` with `image` and `label` (= the .txt path) columns, and optionally
      `suggested_split` (coco_person_rf_capston2's own train / val split);
    - `images/` next to `labels/` or `annotations/`, each optionally split into train / val /
      valid / test sub-folders (penn_fudan_ped: train / test, val carved from train).

    Class names: `class_names`, else classes.txt / *.names / data.yaml. An image without a label
    file is a negative (no boxes).
    """
    root = _require_dir(root)
    label_dir = next((root / d for d in ("labels", "annotations") if (root / d).is_dir()), root)
    names = class_names or yolo_class_names(root, label_dir)
    if not names:
        raise DatasetError(f"{root}: no class names for the YOLO labels: add classes.txt "
                           "(one name per line) or pass class_names")
    manifest = root / "labels.csv"
    pairs: list[tuple[Path, Path | None, str | None, str]] = []  # image, txt, split, group
    if manifest.is_file():
        with manifest.open(newline="") as f:
            reader = csv.DictReader(f)
            if not {"image", "label"} <= set(reader.fieldnames or []):
                raise LabelError(f"{manifest}:1: needs 'image' and 'label' columns")
            for r in reader:
                split = r.get("suggested_split") or r.get("split")
                img = root / r["image"]
                group = f"coco/{r['coco_image_id']}" if r.get("coco_image_id") else group_key(img)
                pairs.append((img, root / r["label"], own_split(split) if split else None, group))
    else:
        img_dir = root / "images" if (root / "images").is_dir() else root
        for img in _images_under(img_dir):
            rel = img.relative_to(img_dir)
            txt = label_dir / rel.with_suffix(".txt")
            split = own_split(rel.parts[0]) if len(rel.parts) > 1 else None
            pairs.append((img, txt if txt.is_file() else None, split, group_key(img)))
    samples, given, skipped = [], [], []
    for img, txt, split, group in pairs:
        size = _probe(img, skipped)
        if size is None:
            continue
        if txt is not None and not txt.is_file():
            raise LabelError(f"{txt}:0: label file listed in {manifest.name} does not exist")
        s = read_yolo_file(txt, img, size, names, root.name, tol)
        s.group = group
        samples.append(s)
        given.append(split)
    return _finish(samples, given, root, "yolo", skipped)


# ---- COCO json ----------------------------------------------------------------------------
def read_coco(json_path: str | Path, image_dir: str | Path | None = None,
              tol: float = TOLERANCE_PX, split: str | None = None) -> SampleSet:
    """COCO instances json: `bbox` = [x, y, w, h] in pixels; crowd boxes are left out.

    Images resolve as `image_dir / file_name` (default: an `images/` folder next to the json,
    else the json's folder). A `file_name` that would leave image_dir (absolute, `..`, a
    folder on the way that links out of it) is refused with a LabelError. Images without
    annotations are negatives. `split` fixes the split of every sample (e.g. "val" for
    instances_val2017.json); otherwise it is hashed.
    """
    json_path = Path(json_path)
    if not json_path.is_file():
        raise DatasetError(f"{json_path}: COCO json not found; run "
                           "`python datasets/prepare_coco_person.py` or pass its path")
    try:
        doc = json.loads(json_path.read_text())
        images, anns = doc["images"], doc.get("annotations", [])
        cats = {int(c["id"]): str(c["name"]) for c in doc.get("categories", [])}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        line = getattr(e, "lineno", 1)
        raise LabelError(f"{json_path}:{line}: not a COCO instances json ({e})") from None
    if image_dir is None:
        image_dir = json_path.parent / "images"
        image_dir = image_dir if image_dir.is_dir() else json_path.parent
    image_dir = Path(image_dir)
    per_image: dict[int, list[tuple[int, dict]]] = {}
    for i, a in enumerate(anns):
        per_image.setdefault(int(a.get("image_id", -1)), []).append((i, a))
    samples, given, skipped = [], [], []
    for im in sorted(images, key=lambda m: str(m.get("file_name"))):
        try:
            path = inside(image_dir, im.get("file_name"), "file_name", linked_file=True)
        except UnsafePath as e:
            raise LabelError(f"{json_path}: image id {im.get('id')}: {e}") from None
        size = _probe(path, skipped)
        if size is None:
            continue
        size = (int(im.get("width", size[0])), int(im.get("height", size[1])))
        boxes, labels = [], []
        for i, a in per_image.get(int(im["id"]), []):
            where = f"{json_path}: annotation id {a.get('id')} (annotations[{i}])"
            if a.get("iscrowd", 0):
                continue
            try:
                x, y, bw, bh = (float(v) for v in a["bbox"])
                name = cats[int(a["category_id"])]
            except (KeyError, TypeError, ValueError) as e:
                raise LabelError(f"{where}: malformed annotation ({type(e).__name__}: {e})"
                                 ) from None
            boxes.append(check_box(np.array([x, y, x + bw, y + bh]), size, where, tol))
            labels.append(name)
        samples.append(Sample(path, _boxes(boxes), labels, json_path.stem, size=size,
                              group=group_key(path)))
        given.append(split)
    return _finish(samples, given, json_path.parent, "coco", skipped)


# ---- captioned photos (Flickr8k) ----------------------------------------------------------
def read_captions(root: str | Path, images: str = "images") -> SampleSet:
    """`captions.txt` (CSV `image,caption`, several rows a photo) + `images/`: person /
    no_person image labels by patchcam.training.captions; photos whose captions disagree are
    left out (listed in `skipped`)."""
    from patchcam.training import captions as cap
    root = _require_dir(root)
    table = root / "captions.txt"
    if not table.is_file():
        raise DatasetError(f"{table}: not found (a captioned set needs captions.txt with "
                           "image,caption rows)")
    by_image: dict[str, list[str]] = {}
    with table.open(newline="") as f:
        reader = csv.DictReader(f)
        if not {"image", "caption"} <= set(reader.fieldnames or []):
            raise LabelError(f"{table}:1: needs 'image' and 'caption' columns, has "
                             f"{reader.fieldnames}")
        for r in reader:
            by_image.setdefault(r["image"], []).append(r["caption"] or "")
    image_dir = root / images
    samples, given, unreadable, ambiguous = [], [], [], []
    for name, caps in sorted(by_image.items()):
        try:  # a hostile name such as ../../etc/passwd
            path = inside(image_dir, name, "image", linked_file=True)
        except UnsafePath as e:
            raise LabelError(f"{table}: {e}") from None
        label = cap.label(caps)
        if label is None:
            ambiguous.append((path, "captions disagree on a person"))
            continue
        s = _labelled_image(path, label, root, unreadable)
        if s is not None:
            samples.append(s)
            given.append(None)
    ss = _finish(samples, given, root, "captions", unreadable)
    ss.skipped += ambiguous
    return ss


# ---- dispatch and label maps --------------------------------------------------------------
def detect_format(path: Path) -> str:
    if path.is_file() and path.suffix == ".json":
        return "coco"
    if not path.is_dir():
        _require_dir(path)
    if any(path.glob("*.json")) and not (path / "labels.csv").is_file():
        return "coco"
    if (path / "annotations").is_dir() and any((path / "annotations").rglob("*.xml")):
        return "voc"
    if (path / "captions.txt").is_file() and not (path / "labels.csv").is_file():
        return "captions"
    if (path / "labels.csv").is_file():
        with (path / "labels.csv").open(newline="") as f:
            cols = next(csv.reader(f), [])
        return "yolo" if "image" in cols else "folder"
    if any((path / d).is_dir() and any((path / d).rglob("*.txt"))
           for d in ("labels", "annotations")):
        return "yolo"
    return "folder"


def read_dataset(path: str | Path, format: str = "auto", **kw) -> SampleSet:
    """Read any supported layout; `format="auto"` looks at the files to decide."""
    path = Path(path)
    if format not in FORMATS:
        raise DatasetError(f"{path}: unknown dataset format {format!r}; formats: "
                           f"{', '.join(FORMATS)}")
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "coco":
        if path.is_dir():
            jsons = sorted(path.glob("*.json"))
            if len(jsons) != 1:
                raise DatasetError(f"{path}: expected one COCO .json, found {len(jsons)}")
            path = jsons[0]
        return read_coco(path, **kw)
    readers: dict[str, Callable[..., SampleSet]] = {"folder": read_folder, "voc": read_voc,
                                                    "yolo": read_yolo,
                                                    "captions": read_captions}
    return readers[fmt](path, **kw)


class SourceSpec(Protocol):
    """What read_source needs of an app's [[data]] entry (patchcam.app.config.DataSource)."""
    format: str
    class_names: list[str] | None
    held_out: bool


def read_source(path: str | Path, src: SourceSpec) -> SampleSet:
    """One [[data]] source of an app, each sample in the split it has for the app: its own
    (read_dataset's), or "test" for every sample of a held_out source (never trained on, so
    scored in full). The one place that decides it: training, evaluation and the split
    checks all read an app's sources through here."""
    kw = {"class_names": src.class_names} if src.class_names else {}
    ss = read_dataset(path, src.format, **kw)
    if src.held_out:
        ss.samples = [replace(s, split="test") for s in ss.samples]
    return ss


def remap_labels(samples: Iterable[Sample], mapping: dict[str, str],
                 drop_unmapped: bool = False) -> list[Sample]:
    """Rename classes (boxes and image labels); with drop_unmapped, boxes of other classes go."""
    out = []
    for s in samples:
        keep = [i for i, lb in enumerate(s.labels) if lb in mapping or not drop_unmapped]
        labels = [mapping.get(s.labels[i], s.labels[i]) for i in keep]
        il = mapping.get(s.image_label, s.image_label) if s.image_label else None
        out.append(Sample(s.image_path, s.boxes[keep], labels, s.source, s.split, il, s.size,
                          s.group))
    return out


def with_image_label(samples: Iterable[Sample], label: str) -> list[Sample]:
    """Give every sample an image-level class (detection sets as VWW positives)."""
    return [Sample(s.image_path, s.boxes, s.labels, s.source, s.split, label, s.size, s.group)
            for s in samples]


def scaled_boxes(s: Sample, size: tuple[int, int]) -> np.ndarray:
    """The sample's boxes in pixels of the image resized (stretched) to size = (h, w)."""
    if s.size is None:
        raise DatasetError(f"{s.image_path}: image size unknown")
    w0, h0 = s.size
    return s.boxes * np.array([size[1] / w0, size[0] / h0] * 2, np.float32)
