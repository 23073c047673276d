"""`make bench`: what each model costs on a Cortex-M7, measured rather than claimed.

Per model and kernel path (Armv7E-M DSP, portable C): MACs, parameters, the arena the
generated C declares, flash and RAM from `arm-none-eabi-size`, and the exact number of
instructions one inference executes on the emulated Cortex-M7 (QEMU + our TCG plugin). The
M7 output is checked against the numpy reference on the same photo, so a fast wrong kernel
cannot produce a number. Next to it: the patch-based plan, and the arena TensorFlow Lite
Micro needs for the same model (its exported .tflite, smallest arena that runs).

Records go to build/bench.json (a list of dicts, one per model x schedule x kernels).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from skimage import data as skdata
from tqdm import tqdm

from patchcam import armbuild, codegen, patchplan, qemu, reference
from patchcam.ir import Graph
from patchcam.memplan import plan_layers
from patchcam.models import load_graph

MODELS = ("mcu-s-96", "mcu-m-128", "mbv2-0.35-144", "mbv2-1.0-224")
OUT = Path("build/bench.json")
MAX_OVERHEAD = 0.2  # the patch schedule may recompute at most 20% extra MACs
# A model that does not fit the STM32F746 still gets its instruction count, on the whole of
# QEMU's memory; the record says it does not fit.
ROOMY = armbuild.Budget("QEMU mps2-an500 (4 MB + 4 MB)", armbuild.QEMU_MEMORY_BYTES,
                        armbuild.QEMU_MEMORY_BYTES)


@dataclass
class Record:
    model: str
    schedule: str  # "layer" (patch schedules: see patch_* fields of the layer record)
    kernels: str  # "dsp" / "portable"
    macs: int
    params: int
    arena_bytes: int
    flash_bytes: int
    ram_bytes: int
    fits_stm32f746: bool
    m7_instructions: int
    instr_per_mac: float
    patch_arena_bytes: int | None = None
    patch_macs: int | None = None
    patch_mode: str | None = None
    patch_split: int | None = None
    patch_grid: list[int] | None = None
    tflm_arena_bytes: int | None = None


def photo_input(g: Graph) -> np.ndarray:
    """scikit-image's astronaut, resized to the model's input and quantised (pixel - 128)."""
    h, w, c = g.tensors[g.input].shape
    img = cv2.resize(skdata.astronaut(), (w, h), interpolation=cv2.INTER_AREA)
    if c == 1:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None]
    elif c != 3:  # a synthetic graph: cycle through R, G, B
        img = img[..., [i % 3 for i in range(c)]]
    return (img.astype(np.int16) - 128).astype(np.int8)


def tflm_arena(g: Graph) -> int | None:
    try:
        from patchcam.tflite_export import export_tflite
        from patchcam.tflm import tflm_min_arena
        return tflm_min_arena(export_tflite(g))
    except ImportError as e:  # tflite-micro is a test-only dependency
        print(f"bench: skipping the TFLite Micro arena ({e})", file=sys.stderr)
        return None


def bench_model(spec: str, with_tflm: bool = True) -> list[Record]:
    g = load_graph(spec)
    x = photo_input(g)
    want = reference.run(g, x)
    plan = plan_layers(g)
    model_dir = Path("build/bench") / g.name / "model"
    codegen.generate(g, model_dir, plan)
    patch = patchplan.search(g, max_overhead=MAX_OVERHEAD)
    tflm = tflm_arena(g) if with_tflm else None
    records = []
    for kernels in ("dsp", "portable"):
        portable = kernels == "portable"
        try:
            build = armbuild.build(model_dir, portable=portable)
            fits = True
        except armbuild.BudgetError:
            build = armbuild.build(model_dir, portable=portable, budget=ROOMY)
            fits = False
        out, _, n = qemu.run_qemu(build.elf, x.tobytes(), timeout_s=600, count=True)
        got = np.frombuffer(out, np.int8)
        if not np.array_equal(got, want.reshape(-1)):
            raise RuntimeError(f"{g.name} ({kernels}): Cortex-M7 output differs from the "
                               "reference; refusing to report a benchmark")
        records.append(Record(
            g.name, "layer", kernels, g.total_macs, g.total_params, plan.arena_bytes,
            build.sizes.flash_bytes, build.sizes.ram_bytes, fits, int(n),
            round(n / g.total_macs, 3), patch.arena_bytes, patch.macs, patch.mode,
            patch.split, list(patch.grid), tflm))
    return records


def table(records: list[Record]) -> str:
    head = (f"{'model':<14} {'kern':<8} {'MACs':>12} {'params':>9} {'arena':>9} "
            f"{'flash':>9} {'fits':>4} {'M7 instr':>13} {'i/MAC':>6} {'patch arena':>11} "
            f"{'patch':>16} {'TFLM arena':>10}")
    rows = [head, "-" * len(head)]
    for r in records:
        patch = f"{r.patch_mode} {r.patch_grid[0]}x{r.patch_grid[1]}@{r.patch_split}" \
            if r.patch_mode != "layer" else "layer"
        fits = "yes" if r.fits_stm32f746 else "no"
        rows.append(f"{r.model:<14} {r.kernels:<8} {r.macs:>12,} {r.params:>9,} "
                    f"{r.arena_bytes:>9,} {r.flash_bytes:>9,} {fits:>4} "
                    f"{r.m7_instructions:>13,} {r.instr_per_mac:>6.2f} "
                    f"{r.patch_arena_bytes:>11,} {patch:>16} "
                    f"{r.tflm_arena_bytes if r.tflm_arena_bytes is not None else '-':>10}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m patchcam.bench",
        description="Benchmark models on the emulated Cortex-M7 (exact instruction counts), "
                    "with the arena of layer-by-layer, patch-based and TFLite Micro execution.")
    p.add_argument("models", nargs="*", default=list(MODELS),
                   help=f"presets or IR files (default: {' '.join(MODELS)})")
    p.add_argument("--no-tflm", action="store_true", help="skip the TFLite Micro arena search")
    p.add_argument("--out", default=str(OUT), help=f"JSON output (default {OUT})")
    args = p.parse_args(argv)
    records: list[Record] = []
    for spec in tqdm(args.models, desc="bench", unit="model"):
        records += bench_model(spec, with_tflm=not args.no_tflm)
    print(table(records))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([asdict(r) for r in records], indent=1))
    print(f"\nwrote {out}; instruction counts are exact (QEMU -icount, TCG plugin), one "
          "inference on scikit-image's astronaut photo; 'fits' = within the STM32F746's "
          "1 MB flash / 320 kB SRAM")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
