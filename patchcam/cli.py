"""`patchcam COMMAND ...` (or `python -m patchcam`): every command of the suite.

The compiler's own commands (presets, summary, save-ir, export-tflite, plan, run) live here;
the others hand their arguments to the module that owns them, imported only when asked for.
This module imports nothing that imports PyTorch (5-8 s): the commands that need it import
it when they run, so `patchcam view`, `patchcam flash` and `--help` start at once
(tests/test_cli_imports.py holds it).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from patchcam.compiler.ir import Graph, IRError
from patchcam.compiler.patchplan import PlanError
from patchcam.compiler.reference import InputError
from patchcam.paths import file_stem
from patchcam.training import interrupt
from patchcam.training.readers import DatasetError

# command -> (module with a main(argv), what it does); `patchcam COMMAND --help` for each.
DELEGATED = {
    "train": ("patchcam.training.commands.train", "train an app's model: float, then QAT"),
    "eval": ("patchcam.training.commands.evaluate",
             "float vs int8 vs an OpenCV baseline on an app's test photos (or DATA)"),
    "pretrain": ("patchcam.training.commands.pretrain_backbone",
                 "pre-train a detector's backbone on person / no person with the teacher"),
    "finetune": ("patchcam.training.commands.finetune_imported",
                 "fine-tune an imported int8 .tflite (TFLite Micro's person_detect)"),
    "leave-sources-out": ("patchcam.training.commands.leave_sources_out",
                          "train without some data sources, test on them"),
    "bench": ("patchcam.targets.bench", "Cortex-M7 instructions, arena and flash per model"),
    "flash": ("patchcam.targets.flash", "build an app for a real board, check the fit, flash"),
    "openmv": ("patchcam.targets.openmv", "the OpenMV Cam H7 files of an app"),
    "view": ("patchcam.host.view", "stream frames to a board and draw what it answers"),
    "demo": ("patchcam.host.demo", "person detection on the virtual Cortex-M7"),
    "lab": ("patchcam.labs", "prepare or check a course lab (docs/labs/): patchcam lab 1..5"),
}


def user_errors() -> tuple[type[Exception], ...]:
    """The errors a command prints as one `error:` line. A function, not a constant: two of
    them live in modules that import torch, and an except clause evaluates it only when
    something was raised."""
    from patchcam.compiler.models import ModelNotFound
    from patchcam.compiler.quantize import CalibrationError, ConversionError
    return (IRError, ModelNotFound, ConversionError, CalibrationError, DatasetError,
            InputError, FileNotFoundError, PlanError)  # IRError covers TFLiteImportError


def load_graph(spec: str) -> Graph:
    """patchcam.compiler.models.load_graph, imported when a command runs (it imports torch)."""
    from patchcam.compiler.models import load_graph as load
    return load(spec)


def cmd_presets(args: argparse.Namespace) -> None:
    from patchcam.compiler.presets import PRESETS
    for name, cfg in PRESETS.items():
        print(f"{name:<16} {cfg.resolution[0]}x{cfg.resolution[1]}  {cfg.description}")


def cmd_summary(args: argparse.Namespace) -> None:
    print(load_graph(args.model).summary())


def cmd_export_tflite(args: argparse.Namespace) -> None:
    from patchcam.compiler.tflite_export import save_tflite
    g = load_graph(args.model)
    save_tflite(g, args.out)
    print(f"wrote {args.out} ({g.name}: {g.total_macs:,} MACs, {g.total_params:,} params)")


def cmd_save_ir(args: argparse.Namespace) -> None:
    g = load_graph(args.model)
    g.save(args.out)
    print(f"wrote {args.out}")


def _floats_arg(text: str) -> list[float]:
    """0.5 or 0.485,0.456,0.406 (one value, or one per channel)."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"cannot read {text!r}: write one number or one per channel (0.485,0.456,0.406)"
        ) from None


def cmd_run(args: argparse.Namespace) -> None:
    """The numpy reference on one image: resize, quantise, run, print the top classes."""
    import numpy as np

    from patchcam.compiler import reference
    from patchcam.compiler.tflite_import import image_to_input
    from patchcam.training.imagesets import load_image

    g = load_graph(args.model)
    x_t, y_t = g.tensors[g.input], g.tensors[g.output]
    if len(x_t.shape) != 3:
        raise InputError(f"{g.name}: input {x_t.shape} is not an image")
    h, w, c = x_t.shape
    img = load_image(args.image, (h, w), gray=(c == 1))
    if img is None:
        raise FileNotFoundError(f"{args.image}: not a readable image")
    x = image_to_input(g, img[..., 0] if c == 1 else img, args.mean, args.std)
    y = reference.run(g, x).reshape(-1)
    scores = (y.astype(np.float64) - y_t.zero_point) * y_t.scale
    layout = g.meta.get("input_layout", "HWC")
    how = "(p/255 - mean) / std" if args.mean or args.std else "p - 128"
    print(f"{g.name}: input {h}x{w}x{c} ({layout}), pixels {how}, quantised with scale "
          f"{x_t.scale:.6g}, zero point {x_t.zero_point}")
    for note in g.meta.get("dropped", []):
        print(f"note: dropped {note}")
    classes = g.meta.get("classes") or []
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    print(f"{'rank':>4} {'class':>6} {'int8':>5} {'score':>9} {'softmax':>8}  name")
    for rank, k in enumerate(np.argsort(-y, kind="stable")[:args.top], 1):
        label = classes[k] if k < len(classes) else ""
        print(f"{rank:>4} {k:>6} {int(y[k]):>5} {scores[k]:>9.4f} {probs[k]:>8.4f}  {label}")
    print("(score = int8 output dequantised; softmax in float over the scores)")


def _size_arg(text: str) -> int:
    from patchcam.compiler.patchplan import parse_size
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _fraction_arg(text: str) -> float:
    """0.05 or 5%."""
    try:
        v = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"cannot read overhead {text!r}: write a fraction (0.05) or a percentage (5%)"
        ) from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"overhead must be >= 0, got {text!r}")
    return v


def _grid_arg(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"grid must look like 3x4 (rows x columns), got {text!r}")
    return int(parts[0]), int(parts[1])


def cmd_plan(args: argparse.Namespace) -> None:
    """One schedule as a table (and plot), and for an exported app the alternatives beside it.

    Which schedule the table shows: a fixed one (--split/--grid); else the search the options
    ask for (--budget, --max-overhead, --mode, --fuse-input); else, for an app whose
    generated/model.json records the schedule its C runs, that shipped schedule; else the
    smallest-arena search."""
    import json
    from pathlib import Path

    from patchcam.app.export import shipped_schedule
    from patchcam.compiler import patchplan

    g = load_graph(args.model)
    opts = {"fuse_input": args.fuse_input}
    if (args.split is None) != (args.grid is None):
        raise PlanError("--split and --grid go together (a fixed schedule)")
    shipped = shipped_schedule(g)
    asked = (args.budget is not None or args.max_overhead is not None or args.mode != "auto"
             or args.fuse_input)
    if args.split is not None:
        mode = "recompute" if args.mode == "auto" else args.mode
        s = patchplan.plan_patches(g, args.split, args.grid, mode, **opts)
        shown = f"fixed: ops 0..{args.split}, {args.grid[0]}x{args.grid[1]}, {mode}"
    elif shipped is not None and not asked:
        s, shown = shipped, shipped_label(g)
    else:
        s = patchplan.search(g, args.budget, args.max_overhead, args.mode, **opts)
        shown = search_label(args)
    others = (plan_alternatives(g, shipped, s, shown, searches=not (asked or args.split))
              if shipped is not None else [])
    plot = None
    if args.plot is not None:
        plot = Path(args.plot or Path("build") / "plan" / f"{file_stem(g.name)}.png")
        patchplan.plot_memory(g, s, plot, label=shown if shipped is not None else None)
    if args.json:
        doc = s.to_dict()
        if shipped is not None:
            doc["shown"] = shown
            doc["alternatives"] = [{"label": label, **alt.to_dict()} for label, alt in others]
        if plot:
            doc["plot"] = str(plot)
        print(json.dumps(doc, indent=1))
        return
    if shipped is not None:
        print(f"table: {shown}")
    print(patchplan.table(g, s))
    if shipped is not None:
        print()
        print(patchplan.compare(others, shown))
    if plot:
        print(f"plot: {plot}")


def shipped_label(g: Graph) -> str:
    return f"shipped: what {g.meta.get('app', g.name)}'s generated C runs"


def search_label(args: argparse.Namespace) -> str:
    """What the search the options ask for finds, in words."""
    if args.budget is not None:
        what = f"fastest within {args.budget:,} B"
    else:
        what = "smallest arena"
    if args.max_overhead is not None:
        what += f", MAC overhead <= {100 * args.max_overhead:g}%"
    if args.mode != "auto":
        what += f", {args.mode} only"
    if args.fuse_input:
        what += ", input outside the arena"
    return f"search: {what}"


def plan_alternatives(g: Graph, shipped, shown_schedule, shown: str,
                      searches: bool = True) -> list:
    """(label, schedule) rows for an exported app: the shipped schedule, layer by layer, and
    (searches=True: the default view) what export would pick today for the app's budget and
    the smallest arena with the input in the arena and outside it; the shown schedule is
    among them (added when it is not)."""
    from patchcam.app.export import app_schedule
    from patchcam.compiler import patchplan

    rows = [(shipped_label(g), shipped), ("layer by layer", patchplan.layer_schedule(g))]
    budget = g.meta.get("schedule", {}).get("budget_bytes")
    if not searches:
        budget = None
    if isinstance(budget, int) and budget > 0:
        try:
            rows.append((f"export's pick today for the app's budget ({budget:,} B)",
                         app_schedule(g, budget)))
        except PlanError:
            pass
    if searches:
        rows.append(("search: smallest arena, input in the arena", patchplan.search(g)))
        rows.append(("search: smallest arena, input outside the arena",
                     patchplan.search(g, fuse_input=True)))
    if all(label != shown for label, _ in rows):
        rows.append((shown, shown_schedule))
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="patchcam",
        description="patchcam: int8, patch-based CNN inference for microcontrollers. "
                    "MODEL is a zoo preset (see `presets`), an IR file (.json), an int8 .tflite "
                    "or an app name.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    s = sub.add_parser("presets", help="list the zoo presets")
    s.set_defaults(func=cmd_presets)
    s = sub.add_parser("summary", help="per-op table: shapes, MACs, params, activation bytes")
    s.add_argument("model", metavar="MODEL")
    s.set_defaults(func=cmd_summary)
    s = sub.add_parser("save-ir", help="write MODEL's int8 graph as a readable IR file")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("out", help="output .json path")
    s.set_defaults(func=cmd_save_ir)
    s = sub.add_parser("export-tflite", help="write MODEL as an int8 .tflite flatbuffer "
                       "(runs on TFLite Micro, LiteRT, OpenMV's ml module)")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("out", help="output .tflite path")
    s.set_defaults(func=cmd_export_tflite)
    s = sub.add_parser("plan", help="memory profile and the best patch-based schedule "
                       "(layer by layer vs. patches; docs/design.md §4.4)")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("--budget", type=_size_arg, metavar="SIZE",
                   help="SRAM budget for the arena (256kB, 320KiB, 1MB, 100000): pick the "
                        "fastest schedule that fits (fewest MACs, then fewest patch columns, "
                        "then smallest arena)")
    s.add_argument("--max-overhead", type=_fraction_arg, metavar="F",
                   help="largest MAC overhead vs layer by layer (0.05 or 5%%)")
    s.add_argument("--mode", choices=("recompute", "cache", "auto"), default="auto",
                   help="halo handling: recompute (MCUNetV2), cache, or the better (default)")
    s.add_argument("--fuse-input", action="store_true",
                   help="the patch stage reads the camera frame buffer (the input is not in "
                        "the arena; the frame buffer is reported separately)")
    s.add_argument("--split", type=int, metavar="K", help="fixed schedule: last op of the "
                   "patch stage (with --grid)")
    s.add_argument("--grid", type=_grid_arg, metavar="PxQ", help="fixed schedule: patch grid")
    s.add_argument("--json", action="store_true", help="print the schedule as JSON")
    s.add_argument("--plot", nargs="?", const="", metavar="OUT.png",
                   help="write a PNG of per-op memory (default build/plan/MODEL.png)")
    s.set_defaults(func=cmd_plan)
    s = sub.add_parser("run", help="run MODEL (e.g. a .tflite) on an image with the numpy "
                       "integer reference and print the top classes")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("image", metavar="IMAGE", help="an image file (png, jpg, bmp, ...)")
    s.add_argument("--mean", type=_floats_arg, metavar="M", help="float input = (p/255 - M) / "
                   "S per channel, then quantised (ImageNet: 0.485,0.456,0.406); default: "
                   "the int8 pixel p - 128")
    s.add_argument("--std", type=_floats_arg, metavar="S", help="see --mean (ImageNet: "
                   "0.229,0.224,0.225)")
    s.add_argument("--top", type=int, default=5, metavar="N", help="classes to print (5)")
    s.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        module, _ = DELEGATED[argv[0]]
        try:  # a training command loads PyTorch first (seconds): Ctrl-C then is one line too
            command = importlib.import_module(module)
        except KeyboardInterrupt:
            print(interrupt.while_starting(["patchcam", *argv]), file=sys.stderr, flush=True)
            return interrupt.INTERRUPTED
        return command.main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
