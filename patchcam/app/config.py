"""`apps/<app>/app.toml`: one app's input, classes, thresholds, board budgets, model, recipe
and data, loaded into typed dataclasses and validated.

The schema is the dataclasses below: a table per dataclass, a key per field (a field with a
default may be left out). Any mistake stops with one line that names the file and the key:

    apps/vww/app.toml: key 'thresholds.score': expected a number, got str 'high'

Data paths are relative to the repository root. A source under `../shared/datasets/` that is
absent falls back to `data/<name>` (where the `datasets/prepare_*.py` scripts write).
"""

from __future__ import annotations

import math
import re
import struct
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path

from patchcam.compiler import presets
from patchcam.host import protocol
from patchcam.paths import REPO

TASKS = ("classify", "detect")
COLORS = ("rgb", "gray")
FORMATS = ("auto", "folder", "voc", "yolo", "coco", "captions")
SPLIT_NAMES = ("train", "val", "test")
MAX_GROW = 10.0  # data[].grow: a box grown by more than ten times its size is no longer its whole

# Limits the wire and the firmware put on an app (docs/protocol.md, firmware/app/pc_detect.h).
# One RESULT packet: frame_id, latency_us, total_us u32, source, task, count u8, then per
# detection x0, y0, x1, y1 u16, class u8, score i8; count is a u8.
RESULT_HEAD = struct.calcsize("<IIIBBB")
RESULT_DETECTION = struct.calcsize("<HHHHBb")
MAX_DETECTIONS = min(255, (protocol.MAX_PAYLOAD - RESULT_HEAD) // RESULT_DETECTION)
MAX_CANDIDATES = 0xFFFF  # pc_det_params_t.max_candidates is a uint16_t
MAX_CLASSES = 255  # HELLO's class count and RESULT's class index are u8
MAX_NAME_BYTES = 255  # HELLO strings are u8 length + UTF-8
MAX_KB = (2**32 - 1) // 1024  # HELLO reports arena and flash bytes as u32
APP_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a folder name under apps/ and build/


class AppConfigError(ValueError):
    """An app.toml that is missing, malformed or inconsistent (one line: file and key)."""


@dataclass(frozen=True)
class AppInfo:
    name: str
    task: str  # classify | detect
    description: str = ""


@dataclass(frozen=True)
class InputSpec:
    width: int
    height: int
    color: str  # rgb | gray: what the model sees (the board converts its camera format)


@dataclass(frozen=True)
class Classes:
    names: list[str]
    positive: str | None = None  # classify: the class the app reports (e.g. "person")


@dataclass(frozen=True)
class Thresholds:
    score: float = 0.5  # probability; detect: compared as a logit, see detect.DecodeParams
    nms_iou: float = 0.45
    max_candidates: int = 64  # (cell, class) pairs over the score kept for NMS, best first
    max_detections: int = 16
    # True: a box suppresses overlapping boxes of every class (one box per object); False:
    # only of its own class (an unsure object keeps a box of each class that passes)
    class_agnostic_nms: bool = True


@dataclass(frozen=True)
class Board:
    arena_kb: int  # activation SRAM budget (peak of the planned schedule)
    flash_kb: int  # weights + code budget
    targets: list[str] = field(default_factory=lambda: ["qemu_m7", "host"])


@dataclass(frozen=True)
class ZooOverrides:
    width: float | None = None
    stem: int | None = None
    last: int | None = None
    num_stages: int | None = None  # keep the first n stages
    stage_strides: list[int] | None = None  # first stride of each kept stage
    stage_expand: list[int] | None = None  # expansion ratio of each kept stage


@dataclass(frozen=True)
class HeadSpec:
    stride: int = 8  # must equal the backbone's output stride
    channels: int = 64
    blocks: int = 1
    kernel: int = 5


@dataclass(frozen=True)
class ModelSpec:
    preset: str
    overrides: ZooOverrides = field(default_factory=ZooOverrides)
    head: HeadSpec | None = None  # detect apps only


@dataclass(frozen=True)
class TrainSpec:
    epochs: int
    lr: float
    batch: int
    qat_epochs: int
    qat_lr: float = 1e-4
    seed: int = 0
    # weigh each class by n / (classes * n_class) - classify: its cross-entropy over photos;
    # detect: its positive cells' focal loss over boxes - so a class with more examples
    # (person in vww's scenes, mask among the faces) does not pull the decision its way
    balance_classes: bool = False
    # decay of an exponential moving average of the float training's weights, which is what
    # validation sees and export ships (0: none; e.g. 0.999 - patchcam.training.loop)
    ema: float = 0.0


@dataclass(frozen=True)
class DataSource:
    path: str  # relative to the repository root
    format: str = "auto"  # auto | folder | voc | yolo | coco | captions
    class_map: dict[str, str] = field(default_factory=dict)  # dataset name -> app class
    class_names: list[str] | None = None  # YOLO sets without a classes.txt
    image_label: str | None = None  # classify: every image of this source is this class
    splits: list[str] = field(default_factory=lambda: list(SPLIT_NAMES))  # which to use
    # held out of training: every image is a test image, so `make eval` scores a kind of
    # photo the model never saw, in full (generalisation, not a split of a known source);
    # patchcam.training.readers.read_source applies it
    held_out: bool = False
    # detect: each box grown into the box of the whole it is part of, in multiples of the
    # box's own width/height [left, top, right, bottom] (faces -> head-and-shoulders person
    # boxes, clipped to the image). Such boxes are approximate: a grown source is never scored
    # (its splits may not include "test").
    grow: list[float] | None = None


@dataclass(frozen=True)
class AppConfig:
    app: AppInfo
    input: InputSpec
    classes: Classes
    thresholds: Thresholds
    board: Board
    model: ModelSpec
    train: TrainSpec
    data: list[DataSource]
    path: Path = Path("app.toml")

    def zoo_config(self) -> presets.Config:
        """The preset with the app's input, classes and overrides applied."""
        cfg = presets.preset(self.model.preset)
        o = self.model.overrides
        stages = cfg.stages
        if o.num_stages is not None:
            stages = stages[:o.num_stages]
        for key, values in (("stride", o.stage_strides), ("expand", o.stage_expand)):
            if values is not None:
                stages = tuple(replace(st, **{key: values[i]}) if i < len(values) else st
                               for i, st in enumerate(stages))
        kw = {k: getattr(o, k) for k in ("width", "stem", "last") if getattr(o, k) is not None}
        return cfg.with_(name=f"{self.app.name}-{cfg.name}", stages=stages,
                         resolution=(self.input.height, self.input.width),
                         in_channels=1 if self.input.color == "gray" else 3,
                         num_classes=len(self.classes.names), **kw)

    def with_data(self, paths: list[str]) -> AppConfig:
        """The app with its [[data]] sources replaced by these folders (format detected)."""
        return replace(self, data=[DataSource(path=str(Path(p).resolve())) for p in paths])

    @property
    def folder(self) -> Path:
        """The app's folder: its app.toml, weights/ and generated/ (apps/<app>/ for the
        shipped apps; any folder for an app.toml given by path, e.g. a course lab's)."""
        return self.path.resolve().parent

    def data_path(self, src: DataSource) -> Path:
        p = (REPO / src.path).resolve()
        if not p.exists() and "shared/datasets" in src.path:
            local = REPO / "data" / Path(src.path).name
            if local.exists():
                return local
        return p

    def build_model(self):
        """A fresh float model: zoo.Classifier or detect.Detector."""
        if self.app.task == "classify":
            from patchcam.compiler import zoo  # torch: only where a network is built
            return zoo.Classifier(self.zoo_config())
        from patchcam.app.detect import Detector
        h = self.model.head
        return Detector(self.zoo_config(), len(self.classes.names), h.channels, h.blocks,
                        h.kernel)


# ---- loading and validation ---------------------------------------------------------------
def app_path(app: str | Path) -> Path:
    p = Path(app)
    if p.suffix == ".toml":
        return p
    return (REPO / "apps" / str(app) / "app.toml")


def load_app(app: str | Path) -> AppConfig:
    """Load apps/<app>/app.toml (or a .toml path) and validate it."""
    path = app_path(app)
    if not path.is_file():
        known = sorted(p.parent.name for p in (REPO / "apps").glob("*/app.toml"))
        raise AppConfigError(f"{path}: no such app config; apps: {', '.join(known)}")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise AppConfigError(f"{path}: not valid TOML: {e}") from None
    cfg = _build(AppConfig, doc, path, "", skip={"path"})
    cfg = replace(cfg, path=path)
    _check(cfg, path)
    return cfg


def _err(path: Path, key: str, msg: str) -> AppConfigError:
    return AppConfigError(f"{path}: key '{key}': {msg}")


def _describe(v) -> str:
    s = repr(v)
    return f"{type(v).__name__} {s if len(s) < 40 else s[:37] + '...'}"


def _build(cls, doc, path: Path, prefix: str, skip: set[str] = frozenset()):
    where = prefix.rstrip(".") or "(top level)"
    if not isinstance(doc, dict):
        raise _err(path, where, f"expected a table, got {_describe(doc)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls) if f.name not in skip]
    for k in doc:
        if k not in names:
            raise _err(path, prefix + k, f"unknown key (known in this table: "
                                         f"{', '.join(names)})")
    kw = {}
    for f in fields(cls):
        if f.name in skip:
            continue
        key = prefix + f.name
        if f.name not in doc:
            if f.default is MISSING and f.default_factory is MISSING:
                raise _err(path, key, "missing")
            continue
        kw[f.name] = _value(hints[f.name], doc[f.name], path, key)
    return cls(**kw)


def _value(t, v, path: Path, key: str):
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _value(inner[0], v, path, key)
    if is_dataclass(t):
        return _build(t, v, path, key + ".")
    if origin is list:
        if not isinstance(v, list):
            raise _err(path, key, f"expected a list, got {_describe(v)}")
        return [_value(args[0], x, path, f"{key}[{i}]") for i, x in enumerate(v)]
    if origin is dict:
        if not isinstance(v, dict):
            raise _err(path, key, f"expected a table, got {_describe(v)}")
        return {k: _value(args[1], x, path, f"{key}.{k}") for k, x in v.items()}
    if t is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _err(path, key, f"expected a number, got {_describe(v)}")
        return float(v)
    if t is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _err(path, key, f"expected an integer, got {_describe(v)}")
        return v
    if t is bool:
        if not isinstance(v, bool):
            raise _err(path, key, f"expected true or false, got {_describe(v)}")
        return v
    if t is str:
        if not isinstance(v, str):
            raise _err(path, key, f"expected a string, got {_describe(v)}")
        return v
    raise TypeError(f"unsupported schema type {t}")  # a bug in this module, not the toml


def _one_of(path: Path, key: str, v, allowed) -> None:
    if v not in allowed:
        raise _err(path, key, f"{v!r} is not one of {', '.join(map(str, allowed))}")


def _in(path: Path, key: str, v: float, lo: float, hi: float = math.inf) -> None:
    """lo <= v <= hi, or one line naming the key and the range."""
    if not lo <= v <= hi:
        raise _err(path, key, f"must be in {lo}..{hi}, got {v}" if hi < math.inf else
                   f"must be >= {lo}, got {v}")


def _open_unit(path: Path, key: str, v: float, closed_top: bool = False) -> None:
    """0 < v < 1 (0 < v <= 1 with closed_top): a probability or overlap that must allow
    something through and, for a score, must not pass everything."""
    if not (0 < v <= 1 if closed_top else 0 < v < 1):
        raise _err(path, key, f"must be in {'(0, 1]' if closed_top else '(0, 1)'}, got {v}")


def _check_names(path: Path, c: AppConfig) -> None:
    """The app's and classes' names travel in HELLO and into generated C and file names."""
    if not APP_NAME.fullmatch(c.app.name):
        raise _err(path, "app.name", f"{c.app.name!r} must be 1..64 characters of A-Z a-z 0-9 "
                   "_ - (it names folders)")
    names = c.classes.names
    if not names or len(set(names)) != len(names):
        raise _err(path, "classes.names", "must list at least one class, each once")
    if len(names) > MAX_CLASSES:
        raise _err(path, "classes.names", f"must be in 1..{MAX_CLASSES} classes, got "
                   f"{len(names)}")
    for i, n in enumerate(names):
        if not 1 <= len(n.encode()) <= MAX_NAME_BYTES or not n.isprintable():
            raise _err(path, f"classes.names[{i}]", f"{n[:40]!r} must be 1..{MAX_NAME_BYTES} "
                       "UTF-8 bytes of printable characters")


def _check_thresholds(path: Path, c: AppConfig) -> None:
    """Ranges of the decode and NMS settings: what the firmware's decoder (uint16_t counts)
    and one RESULT packet (MAX_DETECTIONS boxes) can hold."""
    t = c.thresholds
    _open_unit(path, "thresholds.score", t.score)
    _open_unit(path, "thresholds.nms_iou", t.nms_iou, closed_top=True)
    _in(path, "thresholds.max_candidates", t.max_candidates, 1, MAX_CANDIDATES)
    top = min(MAX_DETECTIONS, t.max_candidates)
    if not 1 <= t.max_detections <= top:
        why = ("one RESULT packet's limit" if top == MAX_DETECTIONS else
               "thresholds.max_candidates")
        raise _err(path, "thresholds.max_detections", f"must be in 1..{top} ({why}), got "
                   f"{t.max_detections}")


def _check_numbers(path: Path, c: AppConfig) -> None:
    """Sizes, budgets and training settings: each has a range outside which it means
    nothing."""
    for k in ("width", "height"):
        _in(path, f"input.{k}", getattr(c.input, k), 8, 1024)
    for k in ("arena_kb", "flash_kb"):
        _in(path, f"board.{k}", getattr(c.board, k), 1, MAX_KB)
    for k in ("epochs", "batch"):
        _in(path, f"train.{k}", getattr(c.train, k), 1)
    _in(path, "train.qat_epochs", c.train.qat_epochs, 0)
    _in(path, "train.seed", c.train.seed, 0, 2**32 - 1)
    if not 0 <= c.train.ema < 1:
        raise _err(path, "train.ema", f"must be in [0, 1) (0: no weight averaging), got "
                   f"{c.train.ema}")
    for k in ("lr", "qat_lr"):
        if not getattr(c.train, k) > 0:
            raise _err(path, f"train.{k}", f"must be > 0, got {getattr(c.train, k)}")
    o = c.model.overrides
    if o.width is not None and not 0 < o.width <= 4:
        raise _err(path, "model.overrides.width", f"must be in (0, 4], got {o.width}")
    for k in ("stem", "last"):
        if getattr(o, k) is not None:
            _in(path, f"model.overrides.{k}", getattr(o, k), 1)
    h = c.model.head
    if h is not None:
        _in(path, "model.head.channels", h.channels, 1)
        _in(path, "model.head.blocks", h.blocks, 0)
        _in(path, "model.head.kernel", h.kernel, 1, min(c.input.width, c.input.height))


def _check_grow(path: Path, key: str, d: DataSource) -> None:
    g = d.grow
    if len(g) != 4 or not all(isinstance(v, int | float) and 0 <= v <= MAX_GROW for v in g):
        raise _err(path, f"{key}.grow", f"four numbers in 0..{MAX_GROW} (left, top, right, "
                   f"bottom in box widths/heights), got {g!r}")
    if "test" in d.splits or d.held_out:
        raise _err(path, f"{key}.grow", "grown boxes are approximate and must not be scored: "
                   'add splits = ["train", "val"] to this source')


def _check(c: AppConfig, path: Path) -> None:
    """Values and cross-field rules the types cannot express."""
    _one_of(path, "app.task", c.app.task, TASKS)
    _one_of(path, "input.color", c.input.color, COLORS)
    _one_of(path, "model.preset", c.model.preset, tuple(presets.PRESETS))
    _check_names(path, c)
    if c.classes.positive is not None:
        _one_of(path, "classes.positive", c.classes.positive, c.classes.names)
    _check_thresholds(path, c)
    _check_numbers(path, c)
    o, n_stages = c.model.overrides, len(presets.preset(c.model.preset).stages)
    if o.num_stages is not None and not 1 <= o.num_stages <= n_stages:
        raise _err(path, "model.overrides.num_stages", f"must be in 1..{n_stages}")
    if o.stage_strides is not None and any(s not in (1, 2) for s in o.stage_strides):
        raise _err(path, "model.overrides.stage_strides", "strides must be 1 or 2")
    if o.stage_expand is not None and any(not 1 <= e <= 8 for e in o.stage_expand):
        raise _err(path, "model.overrides.stage_expand", "expansion ratios must be in 1..8")
    if c.app.task == "detect":
        if c.model.head is None:
            raise _err(path, "model.head", "missing (a detect app needs a [model.head] table)")
        s = presets.feature_stride(c.zoo_config())
        if s != c.model.head.stride:
            raise _err(path, "model.head.stride", f"{c.model.head.stride} but the backbone's "
                       f"output stride is {s} (set model.overrides.stage_strides)")
        if c.input.width % s or c.input.height % s:
            raise _err(path, "input.width", f"input {c.input.width}x{c.input.height} is not a "
                       f"multiple of the stride {s}")
    elif c.model.head is not None:
        raise _err(path, "model.head", "only detect apps have a head")
    if not c.data:
        raise _err(path, "data", "missing (list at least one [[data]] source)")
    for i, d in enumerate(c.data):
        _one_of(path, f"data[{i}].format", d.format, FORMATS)
        for j, s in enumerate(d.splits):
            _one_of(path, f"data[{i}].splits[{j}]", s, SPLIT_NAMES)
        for k, v in d.class_map.items():
            _one_of(path, f"data[{i}].class_map.{k}", v, c.classes.names)
        if d.image_label is not None:
            _one_of(path, f"data[{i}].image_label", d.image_label, c.classes.names)
        if d.grow is not None:
            _check_grow(path, f"data[{i}]", d)
