"""`app_config.h`: the app loop's constants, generated next to model.h (docs/design.md §4.6, §4.7).

    spec = AppSpec.from_app(load_app("person_detect"), graph)     # or AppSpec.detect(...)
    generate(spec, "build/person_detect/model")                   # -> .../app_config.h

The header names the app, its task and classes, the model's hash (what HELLO reports) and,
for detectors, every `patchcam.app.detect.DecodeParams` constant as a `PC_DET_*` macro. Codegen
writes model.h / model.c; this module only adds app_config.h beside them, so models and apps
stay independent. `model_hash(model_dir)` is the hash both sides compute.

`write_generated(graph, app_config)` writes an app's whole generated folder (beside its
app.toml: apps/<app>/generated/; model.json,
model.h / model.c with the schedule `app_schedule` picks for the app's arena budget, and
app_config.h): what the training scripts export and the firmware builds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from patchcam.app.config import AppConfig
from patchcam.compiler import codegen, ctext, patchplan
from patchcam.compiler.ir import Graph

if TYPE_CHECKING:  # patchcam.app.detect imports torch; `patchcam flash` never needs it
    from patchcam.app.detect import DecodeParams

TASKS = {"classify": 0, "detect": 1}


@dataclass(frozen=True)
class AppSpec:
    name: str
    task: str  # classify | detect
    classes: tuple[str, ...]
    decode: DecodeParams | None = None  # detect only
    score_threshold: float = 0.5
    nms_iou: float = 0.45

    @staticmethod
    def classify(name: str, g: Graph, classes: list[str] | None = None) -> AppSpec:
        n = g.tensors[g.output].size
        names = tuple(classes) if classes is not None else tuple(f"class{i}" for i in range(n))
        if len(names) != n:
            raise ValueError(f"{name}: {len(names)} class names for {n} outputs")
        return AppSpec(name, "classify", names)

    @staticmethod
    def detect(name: str, g: Graph, classes: list[str], score_threshold: float = 0.4,
               nms_iou: float = 0.45, max_candidates: int = 64, max_detections: int = 16,
               class_agnostic: bool = True) -> AppSpec:
        x, y = g.tensors[g.input], g.tensors[g.output]
        if len(y.shape) != 3 or y.shape[2] != len(classes) + 4:
            raise ValueError(f"{name}: detection output must be (H, W, {len(classes) + 4}), "
                             f"got {y.shape}")
        (ih, iw, _), (gh, gw, _) = x.shape, y.shape
        if iw % gw or ih % gh or iw // gw != ih // gh:
            raise ValueError(f"{name}: input {iw}x{ih} is not a whole multiple of the grid "
                             f"{gw}x{gh}")
        from patchcam.app.detect import DecodeParams
        p = DecodeParams.prepare(y.scale, y.zero_point, len(classes), iw // gw, (gh, gw),
                                 (iw, ih), score_threshold, nms_iou, max_candidates,
                                 max_detections, class_agnostic)
        return AppSpec(name, "detect", tuple(classes), p, score_threshold, nms_iou)

    @staticmethod
    def from_app(cfg, g: Graph) -> AppSpec:
        """From a patchcam.app.config.AppConfig and the app's int8 graph."""
        if cfg.app.task == "classify":
            return AppSpec.classify(cfg.app.name, g, list(cfg.classes.names))
        t = cfg.thresholds
        return AppSpec.detect(cfg.app.name, g, list(cfg.classes.names), t.score, t.nms_iou,
                              t.max_candidates, t.max_detections, t.class_agnostic_nms)


def model_hash(model_dir: str | Path) -> int:
    """First 4 bytes (little endian) of SHA-256 over model.h then model.c."""
    d = Path(model_dir)
    h = hashlib.sha256((d / "model.h").read_bytes() + (d / "model.c").read_bytes())
    return int.from_bytes(h.digest()[:4], "little")


def render(spec: AppSpec, model_hash_value: int) -> str:
    if spec.task not in TASKS:
        raise ValueError(f"unknown task {spec.task!r}")
    if spec.task == "detect" and spec.decode is None:
        raise ValueError(f"{spec.name}: a detect app needs DecodeParams")
    # HELLO (docs/protocol.md) must fit one packet: 34 fixed bytes, board / app / model names
    # (board <= 32 bytes, model as long as the app's name here) and the class names.
    hello = 34 + (1 + 32) + 2 * (1 + len(spec.name.encode())) + 1 + \
        sum(1 + len(c.encode()) for c in spec.classes)
    if hello > 1024 or len(spec.classes) > 255 or any(len(c.encode()) > 255
                                                        for c in spec.classes):
        raise ValueError(f"{spec.name}: class names too long for one HELLO ({hello} bytes, "
                         "max 1024)")
    defines = list(spec.decode.c_defines().items()) if spec.decode is not None else []
    return ctext.environment().get_template("app_config.h.j2").render(
        spec=spec, task_value=TASKS[spec.task], model_hash=model_hash_value, defines=defines)


def generate(spec: AppSpec, model_dir: str | Path) -> Path:
    """Write model_dir/app_config.h (model.h and model.c must be there already)."""
    path = Path(model_dir) / "app_config.h"
    text = render(spec, model_hash(model_dir))
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def app_schedule(g: Graph, budget: int) -> patchplan.Schedule:
    """How an app's exported C runs its model within `budget` bytes of arena: layer by layer
    when that fits (fastest), else the fastest patch schedule that fits (patchplan.search
    with a budget: fewest MACs, then fewest patch columns, then the smaller arena) among
    those whose patch stage reads its input window by window from outside the arena
    (MODEL_FUSED_INPUT). The app loop streams that input: each window is preprocessed straight
    from the camera frame (model_invoke_source), so the arena is all the activation memory the
    board holds and no copy of the whole input exists; a schedule with the input in the arena
    would only add it. A model that no schedule fits raises patchplan.PlanError naming the
    smallest arena reachable."""
    layer = patchplan.layer_schedule(g)
    if layer.arena_bytes <= budget:  # patch code only where it is needed: it costs time
        return layer
    s = patchplan.search(g, budget, fuse_input=True)
    if s.mode == "layer":  # layer by layer without its input: the C has no such schedule
        raise patchplan.PlanError(
            f"{g.name}: only layer by layer with its input outside the arena fits "
            f"{budget:,} B ({s.arena_bytes:,} B; with the input {layer.arena_bytes:,} B) and "
            "the generated C keeps a layer-by-layer input in the arena: raise the budget")
    return s


def schedule_record(s: patchplan.Schedule, budget: int) -> dict:
    """What an exported graph's meta["schedule"] holds: the schedule its C runs (read back by
    shipped_schedule) and the budget it was picked for."""
    return {"mode": s.mode, "split": s.split, "grid": list(s.grid),
            "arena_bytes": s.arena_bytes, "input_outside_arena": s.fuse_input, "macs": s.macs,
            "budget_bytes": budget}


def write_generated(g: Graph, cfg: AppConfig, out_dir: Path | None = None) -> Path:
    """model.json (the IR), model.h / model.c (codegen) and app_config.h into the folder,
    running the schedule `app_schedule` picks for the app's arena budget (board.arena_kb).
    The graph's meta["schedule"] records that choice: `shipped_schedule` reads it back."""
    out = out_dir or cfg.folder / "generated"
    budget = cfg.board.arena_kb * 1024
    schedule = app_schedule(g, budget)
    g.meta["schedule"] = schedule_record(schedule, budget)
    out.mkdir(parents=True, exist_ok=True)
    g.save(out / "model.json")
    codegen.generate(g, out, schedule=schedule)
    generate(AppSpec.from_app(cfg, g), out)
    return out


def shipped_schedule(g: Graph) -> patchplan.Schedule | None:
    """The schedule an exported app runs (what `write_generated` recorded in the graph's
    meta["schedule"], so what generated/model.c was built with), re-planned for its per-op
    figures; None for a graph that was not exported for an app."""
    rec = g.meta.get("schedule")
    if not isinstance(rec, dict) or "mode" not in rec:
        return None
    fuse = bool(rec.get("input_outside_arena", False))
    layer = patchplan.layer_schedule(g)  # compared with layer by layer as it would run
    if rec["mode"] == "layer":
        return layer
    return patchplan.plan_patches(g, int(rec["split"]), tuple(rec["grid"]), rec["mode"], fuse,
                                  layer)
