"""`python -m patchcam COMMAND ...`: the command-line face of the core package."""

from __future__ import annotations

import argparse
import sys

from patchcam import zoo
from patchcam.imagesets import DatasetError
from patchcam.ir import IRError
from patchcam.models import ModelNotFound, load_graph
from patchcam.patchplan import PlanError
from patchcam.quantize import CalibrationError, ConversionError
from patchcam.reference import InputError

USER_ERRORS = (IRError, ModelNotFound, ConversionError, CalibrationError, DatasetError,
               InputError, FileNotFoundError, PlanError)


def cmd_presets(args: argparse.Namespace) -> None:
    for name, cfg in zoo.PRESETS.items():
        print(f"{name:<16} {cfg.resolution[0]}x{cfg.resolution[1]}  {cfg.description}")


def cmd_summary(args: argparse.Namespace) -> None:
    print(load_graph(args.model).summary())


def cmd_export_tflite(args: argparse.Namespace) -> None:
    from patchcam.tflite_export import save_tflite
    g = load_graph(args.model)
    save_tflite(g, args.out)
    print(f"wrote {args.out} ({g.name}: {g.total_macs:,} MACs, {g.total_params:,} params)")


def cmd_save_ir(args: argparse.Namespace) -> None:
    g = load_graph(args.model)
    g.save(args.out)
    print(f"wrote {args.out}")


def _size_arg(text: str) -> int:
    from patchcam.patchplan import parse_size
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
    import json
    from pathlib import Path

    from patchcam import patchplan

    if args.model.endswith(".tflite"):
        raise ModelNotFound(f"{args.model}: importing .tflite models is not supported yet; "
                            "plan a preset or an IR file (.json)")
    g = load_graph(args.model)
    opts = {"fuse_input": args.fuse_input, "inplace_dw": args.inplace_dw}
    if (args.split is None) != (args.grid is None):
        raise PlanError("--split and --grid go together (a fixed schedule)")
    if args.split is not None:
        mode = "recompute" if args.mode == "auto" else args.mode
        s = patchplan.plan_patches(g, args.split, args.grid, mode, **opts)
    else:
        s = patchplan.search(g, args.budget, args.max_overhead, args.mode, **opts)
    plot = None
    if args.plot is not None:
        plot = Path(args.plot or Path("build") / "plan" / f"{_safe(g.name)}.png")
        patchplan.plot_memory(g, s, plot)
    if args.json:
        doc = s.to_dict()
        if plot:
            doc["plot"] = str(plot)
        print(json.dumps(doc, indent=1))
        return
    print(patchplan.table(g, s))
    if plot:
        print(f"plot: {plot}")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m patchcam",
        description="patchcam: int8, patch-based CNN inference for microcontrollers. "
                    "MODEL is a zoo preset (see `presets`), an IR file (.json) or an app name.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
                       "(layer by layer vs. patches; DESIGN §4.4)")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("--budget", type=_size_arg, metavar="SIZE",
                   help="SRAM budget for the arena (256kB, 320KiB, 1MB, 100000): pick the "
                        "fewest MACs that fit")
    s.add_argument("--max-overhead", type=_fraction_arg, metavar="F",
                   help="largest MAC overhead vs layer by layer (0.05 or 5%%)")
    s.add_argument("--mode", choices=("recompute", "cache", "auto"), default="auto",
                   help="halo handling: recompute (MCUNetV2), cache, or the better (default)")
    s.add_argument("--fuse-input", action="store_true",
                   help="the patch stage reads the camera frame buffer (the input is not in "
                        "the arena; the frame buffer is reported separately)")
    s.add_argument("--inplace-dw", action="store_true",
                   help="assume in-place depthwise convs (MCUNetV2's accounting; the runtime "
                        "does not do this yet)")
    s.add_argument("--split", type=int, metavar="K", help="fixed schedule: last op of the "
                   "patch stage (with --grid)")
    s.add_argument("--grid", type=_grid_arg, metavar="PxQ", help="fixed schedule: patch grid")
    s.add_argument("--json", action="store_true", help="print the schedule as JSON")
    s.add_argument("--plot", nargs="?", const="", metavar="OUT.png",
                   help="write a PNG of per-op memory (default build/plan/MODEL.png)")
    s.set_defaults(func=cmd_plan)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
