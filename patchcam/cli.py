"""`python -m patchcam COMMAND ...`: the command-line face of the core package."""

from __future__ import annotations

import argparse
import sys

from patchcam import zoo
from patchcam.imagesets import DatasetError
from patchcam.ir import IRError
from patchcam.models import ModelNotFound, load_graph
from patchcam.quantize import CalibrationError, ConversionError
from patchcam.reference import InputError

USER_ERRORS = (IRError, ModelNotFound, ConversionError, CalibrationError, DatasetError,
               InputError, FileNotFoundError)


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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
