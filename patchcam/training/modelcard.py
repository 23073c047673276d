"""apps/<app>/weights/MODEL_CARD.md from measured figures: `make eval` writes them, this
module puts them in the card.

    doc = json.loads(Path("build/eval/person_detect.json").read_text())
    path = write(doc)                  # or: python -m patchcam.training.modelcard person_detect

The card is partly hand-written. The generator owns exactly one block, between the
GENERATED_BEGIN and GENERATED_END comment lines, and rewrites only that; every line outside it
(a title, an introduction, "Known limits", anything a person wrote) is kept byte for byte.
A card without the markers gets the block appended at its end; a missing card is created with
a title, the block, and a "Known limits" section for a person to finish.

What goes into the block: the evaluation report (data, split, float / int8 / baseline per set;
for a detector also AP50 by object size and "Where it fails": counts and the command that draws
the failure grid, never the grid itself, which shows dataset photos), the weights' meta
(recipe, training time, history), the int8 graph's MACs and params, the planner's arena for the
app's SRAM budget (`patchplan.search`, as `make export` does), and flash: `arm-none-eabi-size`
of the model built for Cortex-M7 (`armbuild`, the qemu_m7 image: model + runtime + a minimal
main), or, without the Arm toolchain, the weight bytes (the card says which).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import jinja2

from patchcam.app import export
from patchcam.app.config import AppConfig, load_app
from patchcam.compiler import codegen, patchplan
from patchcam.compiler.ir import Graph
from patchcam.paths import REPO, TEMPLATES
from patchcam.targets import armbuild

GENERATED_BEGIN = ("<!-- generated: begin. `make eval APP={app} EVAL_ARGS=--card` rewrites "
                   "everything down to the end marker; write outside it -->")
GENERATED_END = "<!-- generated: end -->"

class CardError(RuntimeError):
    """Something the card needs is missing (one line says what)."""


def card_path(app: str) -> Path:
    return REPO / "apps" / app / "weights" / "MODEL_CARD.md"


# ---- cost figures --------------------------------------------------------------------------
def int8_graph(doc: dict) -> Graph:
    """The int8 graph the report measured: the shipped one, or the one evaluate.py saved."""
    path = REPO / doc.get("int8_graph", f"apps/{doc['app']}/generated/model.json")
    if not path.is_file():
        raise CardError(f"{path}: no int8 graph; run make eval APP={doc['app']} first")
    return Graph.load(path)


def flash_figure(g: Graph, schedule: patchplan.Schedule, app: str) -> tuple[int | None, str]:
    """Flash bytes of the Cortex-M7 image, and a sentence saying how they were measured."""
    gen = REPO / "apps" / app / "generated"
    model_dir = gen if (gen / "model.c").is_file() else REPO / "build" / "eval" / app / "model"
    if model_dir != gen:
        codegen.generate(g, model_dir, schedule=None if schedule.mode == "layer" else schedule)
    try:
        b = armbuild.build(model_dir, REPO / "build" / "eval" / app / "m7")
    except armbuild.BuildError as e:
        weights = sum(a.nbytes for op in g.ops for a in (op.weights, op.bias) if a is not None)
        return None, (f"{weights:,} bytes of weights and biases (no Cortex-M7 build: "
                      f"{str(e).splitlines()[0]})")
    s = b.sizes
    where = f"apps/{app}/generated" if model_dir == gen else "the model generated " \
        "from this int8 graph"
    return s.flash_bytes, (f"{s.flash_bytes:,} bytes (text {s.text:,} + data {s.data:,}, "
                           f"`arm-none-eabi-size` of {where} + the C runtime + a minimal main, "
                           "built for Cortex-M7 -O2, DSP kernels)")


def plan(g: Graph, cfg: AppConfig) -> tuple[patchplan.Schedule, str]:
    """The schedule the app runs: the one its generated C was built with (recorded in the
    graph), else the one export would pick for the app's arena budget, else the smallest
    arena when none fits; and a sentence, which also names the arena the shipped C declares
    when that differs."""
    budget = cfg.board.arena_kb * 1024
    try:
        s = export.shipped_schedule(g) or export.app_schedule(g, budget)
        text = s.describe()
        if s.fuse_input:
            text += " (the input is read window by window from the camera frame)"
    except patchplan.PlanError:
        s = patchplan.search(g)
        text = f"**no schedule fits the {cfg.board.arena_kb} kB budget**; smallest: " + \
            s.describe()
    header = REPO / "apps" / cfg.app.name / "generated" / "model.h"
    if header.is_file():
        m = re.search(r"#define MODEL_ARENA_BYTES (\d+)", header.read_text())
        if m and int(m.group(1)) != s.arena_bytes:
            text += (f"; the shipped C (apps/{cfg.app.name}/generated) declares "
                     f"{int(m.group(1)):,} bytes")
    return s, text


# ---- text pieces ---------------------------------------------------------------------------
def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, dict):
        v = v.get("map")
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _value(r) -> float | None:
    if r is None:
        return None
    return r["map"] if isinstance(r, dict) else r


def _rows(doc: dict) -> list[dict]:
    rows = []
    for name, r in [*doc["sets"].items(), ("**all (pooled)**", doc["overall"])]:
        rows.append({"name": name, "images": r["images"],
                     **{k: _fmt(r.get(k)) for k in ("float", "int8", "baseline", "tflm")}})
        if doc["task"] == "detect" and len(doc["classes"]) > 1:
            for c in doc["classes"]:
                rows.append({"name": f"&nbsp;&nbsp;AP50 {c}", "images": "",
                             **{k: _fmt(r[k]["ap50"].get(c)) if k in r else "-"
                                for k in ("float", "int8", "baseline")}})
    return rows


def _size_rows(doc: dict) -> list[dict]:
    """The AP50-by-object-size table (detectors; none for a classifier's report)."""
    buckets = (doc.get("by_size") or {}).get("buckets", {})
    return [{"label": r["label"], "boxes": r["boxes"],
             **{k: _fmt(r.get(k)) for k in ("float", "int8")}} for r in buckets.values()]


def _missed_by_size(fails: dict | None) -> str:
    by = (fails or {}).get("missed_by_size") or {}
    return ", ".join(f"{k} {m} / {n}" for k, (m, n) in by.items())


def _describe(v) -> str:
    if isinstance(v, dict):
        return "; ".join(f"{k} {_describe(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_describe(x) for x in v)
    return str(v)


def _recipe(meta: dict) -> str:
    r = meta.get("recipe")
    if r is None:
        return "(the weights' meta has no recipe)"
    if isinstance(r, str):
        return r
    lines = [f"- {k}: `{v}`" if k == "command" else f"- {k}: {_describe(v)}"
             for k, v in r.items()]
    return "\n".join(lines)


def _history(meta: dict) -> str:
    h = meta.get("history") or []
    if not h:
        return ""
    last = h[-1]
    vals = [(e["epoch"], e["val_map"]) for e in h if "val_map" in e]
    txt = f"{len(h)} epochs logged, last loss {last.get('loss', '?')}"
    if vals:
        ep, best = max(vals, key=lambda e: e[1])
        txt += f"; best val mAP50 {best} at epoch {ep}"
    return txt


def _train_time(meta: dict) -> str:
    if "train_minutes" in meta:
        return f"{meta['train_minutes']} min"
    s = meta.get("train_seconds")
    if s:
        return f"{s / 60:.0f} min"
    h = meta.get("history") or []
    if h and all("seconds" in e for e in h):
        return f"{sum(e['seconds'] for e in h) / 60:.0f} min of epochs (from the history)"
    return ""


def render_block(doc: dict, cfg: AppConfig, meta: dict, g: Graph) -> str:
    """The generated block (markers included)."""
    s, schedule_text = plan(g, cfg)
    _, flash_text = flash_figure(g, s, cfg.app.name)
    o, base = doc["overall"], doc.get("baseline") or {}
    f, q, b = (_value(o.get(k)) for k in ("float", "int8", "baseline"))
    data = meta.get("data", meta.get("folders", "(not recorded in the weights)"))
    if isinstance(data, dict) and "train" in data:  # train_detector: images per source
        data = ", ".join(f"{k} ({v} images)" for k, v in data["train"].items())
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    text = env.get_template("model_card.md.j2").render(
        doc=doc, rows=_rows(doc), size_rows=_size_rows(doc), fails=doc.get("failures"),
        missed_by_size=_missed_by_size(doc.get("failures")),
        data_text=_describe(data),
        split_text=meta.get("split") or _describe((meta.get("data") or {}).get("split", ""))
        or "each source's own train / val / test split (patchcam.training.readers)",
        baseline_name="OpenCV baseline" if b is not None else "baseline",
        tflm_name=(doc.get("tflm") or {}).get("name") if "tflm" in o else None,
        baseline_setup=f"{base.get('name', '')}; {base.get('input', '')}"
        + (f"; {base['rule']}" if base.get("rule") else ""),
        baseline_note=base.get("unavailable", "not run" if not base else ""),
        delta_int8=f"{100 * (q - f):+.1f}", delta_base=f"{100 * (q - b):+.1f}" if b is not None
        else "",
        recipe_text=_recipe(meta), train_text=_train_time(meta), history_text=_history(meta),
        input_text=f"{cfg.input.width}x{cfg.input.height} {cfg.input.color.upper()}, int8",
        macs=g.total_macs, sched_macs=s.macs, params=g.total_params, arena=s.arena_bytes,
        schedule_text=schedule_text, budget_kb=cfg.board.arena_kb, flash_text=flash_text)
    return f"{GENERATED_BEGIN.format(app=cfg.app.name)}\n{text.rstrip()}\n{GENERATED_END}\n"


def merge(old: str | None, block: str, title: str, limits: str) -> str:
    """The card with its generated block replaced (or added); all else kept as it was."""
    if old is None:
        return f"# {title}\n\n{block}\n## Known limits\n\n{limits}\n"
    start = old.find("<!-- generated: begin")
    end = old.find(GENERATED_END, max(start, 0))
    if start >= 0 and end > start:
        rest = old[end + len(GENERATED_END):]
        return old[:start] + block + rest.removeprefix("\n")
    return old.rstrip("\n") + "\n\n" + block


def first_limits(doc: dict) -> str:
    """A starting "Known limits" list from the figures; a person edits it, the generator
    never touches it again."""
    items = []
    sets = doc["sets"]
    if sets:
        worst = min(sets, key=lambda k: _value(sets[k].get("int8")) or 0.0)
        items.append(f"- Weakest on `{worst}` (int8 {_fmt(sets[worst].get('int8'))}).")
    val = [k for k in sets if k.endswith("/val")]
    if val:
        items.append(f"- {', '.join(val)} has no test split: its val split is reported, and "
                     "the training run picked its checkpoint on val.")
    for k, r in sets.items():
        f, q = _value(r.get("float")), _value(r.get("int8"))
        if f is not None and q is not None and f - q > 0.01:
            items.append(f"- int8 loses {100 * (f - q):.1f} points to float on `{k}`.")
    small = sum(r["images"] for r in sets.values())
    items.append(f"- Measured on {small} held-out photos: expect a few points of noise.")
    return "\n".join(items)


def write(doc: dict, meta: dict | None = None, g: Graph | None = None,
          path: Path | None = None) -> Path:
    """Regenerate the card of doc['app'] (meta and g default to the shipped files)."""
    cfg = load_app(doc["app"])
    if meta is None:
        import torch
        w = REPO / doc["weights"]
        if not w.is_file():
            raise CardError(f"{w}: no weights; train them first: make train APP={doc['app']}")
        meta = torch.load(w, map_location="cpu", weights_only=True).get("meta", {})
    g = g if g is not None else int8_graph(doc)
    block = render_block(doc, cfg, meta, g)
    path = path or card_path(cfg.app.name)
    old = path.read_text() if path.is_file() else None
    title = f"{cfg.app.name}: model card"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(merge(old, block, title, first_limits(doc)))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m patchcam.training.modelcard",
                                description="rewrite the generated block of "
                                            "apps/<app>/weights/MODEL_CARD.md from "
                                            "build/eval/<app>.json (run make eval first)")
    p.add_argument("app")
    p.add_argument("--report", type=Path, help="the eval report (default build/eval/APP.json)")
    a = p.parse_args(argv)
    report = a.report or REPO / "build" / "eval" / f"{a.app}.json"
    if not report.is_file():
        print(f"error: {report}: no report; run make eval APP={a.app} first", file=sys.stderr)
        return 2
    try:
        print(f"wrote {write(json.loads(report.read_text()))}")
    except CardError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
