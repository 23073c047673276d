"""`make bench`: what each model costs on a Cortex-M7, measured rather than claimed.

Per model, schedule and kernel path (Armv7E-M DSP, portable C): MACs, parameters, the arena
the generated C declares, flash and RAM from `arm-none-eabi-size`, and the exact number of
instructions one inference executes on the emulated Cortex-M7 (QEMU + our TCG plugin).
Schedules (`--schedules`):

- `layer`: layer by layer (patchcam.compiler.memplan);
- `patch`: the patch schedule the planner picks, `patchplan.search(g, max_overhead=
  MAX_OVERHEAD, mode="recompute")` (recompute is what codegen generates), input in the arena;
- `patch-fused`: the same search with `fuse_input=True`: the patch stage reads its input
  windows from the caller's frame buffer (the camera's), so the input is not in the arena;
- `cache-fused`: `search(g, mode="cache", fuse_input=True)`: halo caching (each op computes
  only its new pixels, no MAC overhead), input from the frame buffer, smallest arena;
- `shipped`: an exported app's own schedule (`apps/<app>/generated/`, patchcam.app.export:
  the fastest that fits the app's `arena_kb`), what its firmware runs; other models have none.

Every M7 output is checked against the numpy reference on the same photo, so a fast wrong
kernel or schedule cannot produce a number. Each record also carries the arena TensorFlow
Lite Micro needs for the same model (its exported .tflite, smallest arena it allocates),
measured once per model; the table shows "arena / TFLM" (the goal: <= 1/3 on the apps).

Each record also carries the per-op profile of that run (patchcam.targets.opprofile: the
instructions of every op, the patch stage's input copy and halo steps, and the generated
driver between calls; they sum exactly to `m7_instructions`), with each op's MACs under the
schedule and the runtime functions its instructions ran in (the kernel variant), and the
same summed per kernel type (`per_kind`: pointwise, depthwise, conv2d, add, ...). The table
shows instructions per MAC per kernel type; `--per-op` prints every op, and `--plot` draws
each record's profile (patchcam.targets.benchplot).

`--cmsis-nn DIR` (a checkout of ARM-software/CMSIS-NN, never part of this repository) also
runs each model's layer-by-layer C with Arm's CMSIS-NN kernels in place of ours
(patchcam.targets.cmsisnn: same layers, weights and driver, the arena planned without in-place
depthwise, the same emulated M7 and
compiler flags; its output must equal the reference too) and reports our instructions divided
by CMSIS-NN's per kernel type and for the whole network (`vs_cmsis_nn` of the DSP layer
record; the CMSIS-NN run is a record of its own, kernels "cmsis-nn").

Records go to build/bench.json (a list of dicts, one per model x schedule x kernels).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from skimage import data as skdata
from tqdm import tqdm

from patchcam.app import export
from patchcam.compiler import codegen, patchplan, reference
from patchcam.compiler.ir import Graph
from patchcam.compiler.models import load_graph
from patchcam.paths import REPO
from patchcam.targets import armbuild, cmsisnn, opprofile, qemu

PRESETS = ("mcu-s-96", "mcu-m-128", "mbv2-0.35-144", "mbv2-1.0-224")
KERNELS = ("dsp", "portable")


class BenchError(RuntimeError):
    """A measurement that must not be reported (an output or arena other than planned)."""

APPS = ("vww", "person_detect", "mask_detect")  # untrained networks unless exported
MODELS = PRESETS + APPS
SCHEDULES = ("layer", "patch", "patch-fused", "cache-fused", "shipped")
OUT = Path("build/bench.json")
PLOTS = Path("build/bench/plots")
MAX_OVERHEAD = 0.2  # the patch schedule may recompute at most 20% extra MACs
TFLM_GOAL = 1 / 3  # our arena <= 1/3 of TFLite Micro's on every app model
# A model that does not fit the STM32F746 still gets its instruction count, on the whole of
# QEMU's memory; the record says it does not fit.
ROOMY = armbuild.Budget("QEMU mps2-an500 (4 MB + 4 MB)", armbuild.QEMU_MEMORY_BYTES,
                        armbuild.QEMU_MEMORY_BYTES)


@dataclass
class Record:
    model: str
    schedule: str  # "layer", "patch", "patch-fused", "cache-fused", "shipped" (module doc)
    kernels: str  # "dsp" / "portable"
    macs: int  # the schedule's MACs (patch: with the recomputed halos)
    params: int
    arena_bytes: int  # MODEL_ARENA_BYTES of the generated C (== the planner's)
    flash_bytes: int
    ram_bytes: int
    fits_stm32f746: bool
    m7_instructions: int
    instr_per_mac: float
    mode: str = "layer"  # the planner's mode: "layer" / "recompute" / "cache"
    split: int = -1  # the patch stage is ops 0..split
    grid: list[int] | None = None  # patches (rows, columns)
    frame_buffer_bytes: int = 0  # patch-fused: the input, outside the arena
    tflm_arena_bytes: int | None = None
    # kind -> {"macs", "instructions", "instr_per_mac" (None without MACs), "ops"}; the kinds'
    # instructions (with "driver") sum to m7_instructions
    per_kind: dict[str, dict] | None = None
    # per step (op, input copy, halo step), in op order: see opprofile.StepProfile
    per_op: list[dict] | None = None
    cmsis_nn_commit: str | None = None  # kernels "cmsis-nn": the CMSIS-NN checkout's commit
    # the DSP layer record, when CMSIS-NN ran beside it: see compare_cmsis_nn
    vs_cmsis_nn: dict | None = None

    @property
    def tflm_ratio(self) -> float | None:
        return self.arena_bytes / self.tflm_arena_bytes if self.tflm_arena_bytes else None


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
        from patchcam.compiler.tflite_export import export_tflite
        from patchcam.compiler.tflm import tflm_min_arena
        return tflm_min_arena(export_tflite(g))
    except ImportError as e:  # tflite-micro is a test-only dependency
        print(f"bench: skipping the TFLite Micro arena ({e})", file=sys.stderr)
        return None


def schedule_for(g: Graph, schedule: str) -> patchplan.Schedule | None:
    """The planner's schedule benchmarked as `schedule` (mode "layer" when no patch schedule
    beats layer by layer; None: "shipped" of a model that is not an exported app)."""
    if schedule == "layer":
        return patchplan.layer_schedule(g)
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")
    if schedule == "shipped":
        return export.shipped_schedule(g)
    if schedule == "cache-fused":
        return patchplan.search(g, mode="cache", fuse_input=True)
    return patchplan.search(g, max_overhead=MAX_OVERHEAD, mode="recompute",
                            fuse_input=schedule == "patch-fused")


def _declared_arena(model_dir: Path) -> int:
    text = (model_dir / "model.h").read_text()
    return int(re.search(r"#define MODEL_ARENA_BYTES (\d+)", text).group(1))


def measure(g: Graph, s: patchplan.Schedule, schedule: str, x: np.ndarray, want: np.ndarray,
            where: Path, kernels_list: tuple[str, ...] = ("dsp", "portable"),
            tflm: int | None = None, cmsis: cmsisnn.Library | None = None) -> list[Record]:
    """Generate, build and run one schedule on the M7 for each kernel path ("dsp",
    "portable"; "cmsis-nn" with cmsis, layer schedule only); refuse to report an output that
    differs from the reference or an arena that differs from the plan."""
    model_dir = where / "model"
    codegen.generate(g, model_dir, schedule=s)
    arena = _declared_arena(model_dir)
    if arena != s.arena_bytes:
        raise BenchError(f"{g.name} ({schedule}): the C declares a {arena} byte arena, the "
                           f"planner placed {s.arena_bytes}; refusing to report a benchmark")
    records = []
    for kernels in kernels_list:
        portable = kernels == "portable"
        model_c = model_dir / "model.c"
        kernels_arena = arena
        if kernels == "cmsis-nn":
            if cmsis is None or s.mode != "layer":
                raise ValueError("CMSIS-NN runs need a checkout (--cmsis-nn) and the layer "
                                 "schedule")
            # CMSIS-NN's own layer plan (no in-place depthwise) and int8 filters
            g_cnn = cmsisnn.cmsis_nn_graph(g)
            cnn_dir, s_cnn = where / "cmsis-nn-model", patchplan.layer_schedule(g_cnn)
            codegen.generate(g_cnn, cnn_dir, schedule=s_cnn)
            kernels_arena = s_cnn.arena_bytes
            build = cmsisnn.build_model(cnn_dir, cmsis, where / "cmsis-nn")
            model_c = where / "cmsis-nn" / "model" / "model.c"
            fits = (build.sizes.flash_bytes <= armbuild.STM32F746.flash_bytes
                    and build.sizes.ram_bytes <= armbuild.STM32F746.ram_bytes)
        else:
            try:
                build = armbuild.build(model_dir, where / "m7", portable=portable)
                fits = True
            except armbuild.BudgetError:
                build = armbuild.build(model_dir, where / "m7", portable=portable,
                                       budget=ROOMY)
                fits = False
        out, prof = opprofile.profile_model(build.elf, x.tobytes(), g, model_c,
                                            patchplan.op_macs(g, s), timeout_s=1800)
        got = np.frombuffer(out, np.int8)
        if not np.array_equal(got, want.reshape(-1)):
            raise BenchError(f"{g.name} ({schedule}, {kernels}): Cortex-M7 output differs "
                               "from the reference; refusing to report a benchmark")
        n = prof.instructions
        per_kind, per_op = profile_fields(prof)
        records.append(Record(
            g.name, schedule, kernels, s.macs, g.total_params, kernels_arena,
            build.sizes.flash_bytes,
            build.sizes.ram_bytes, fits, int(n), round(n / s.macs, 3), s.mode, s.split,
            list(s.grid), s.frame_bytes, tflm, per_kind, per_op,
            cmsis.commit if kernels == "cmsis-nn" and cmsis is not None else None))
    return records


def compare_cmsis_nn(ours: Record, theirs: Record) -> dict:
    """Our instructions / CMSIS-NN's, whole network and per kernel type (the same layers);
    a ratio below 1 means we execute fewer instructions."""
    if (ours.model, ours.schedule, ours.macs) != (theirs.model, theirs.schedule, theirs.macs):
        raise ValueError(f"not the same layers: {ours.model}/{ours.schedule} vs "
                         f"{theirs.model}/{theirs.schedule}")
    per_kind = {}
    for kind, d in (ours.per_kind or {}).items():
        t = (theirs.per_kind or {}).get(kind)
        if t is None or kind == "driver":
            continue
        per_kind[kind] = {"macs": d["macs"], "instructions": d["instructions"],
                          "cmsis_nn_instructions": t["instructions"],
                          "ratio": round(d["instructions"] / t["instructions"], 3)
                          if t["instructions"] else None}
    return {"commit": theirs.cmsis_nn_commit, "kernels": ours.kernels,
            "instructions": ours.m7_instructions,
            "cmsis_nn_instructions": theirs.m7_instructions,
            "ratio": round(ours.m7_instructions / theirs.m7_instructions, 3),
            "per_kind": per_kind}


def attach_cmsis_nn(records: list[Record]) -> None:
    """Sets vs_cmsis_nn of each DSP record that has a CMSIS-NN run of the same model and
    schedule."""
    peers = {(r.model, r.schedule): r for r in records if r.kernels == "cmsis-nn"}
    for r in records:
        peer = peers.get((r.model, r.schedule))
        if r.kernels == "dsp" and peer is not None:
            r.vs_cmsis_nn = compare_cmsis_nn(r, peer)


CMSIS_KINDS = ("pointwise", "depthwise", "conv2d", "add")


def cmsis_table(records: list[Record]) -> str:
    """Our DSP instructions / CMSIS-NN's, per model (layer by layer), whole and per kind."""
    head = (f"{'model':<14} {'ours instr':>13} {'CMSIS-NN instr':>14} {'whole':>6} "
            + " ".join(f"{k:>9}" for k in CMSIS_KINDS))
    rows = [head, "-" * len(head)]
    commits = set()
    for r in records:
        v = r.vs_cmsis_nn
        if v is None:
            continue
        commits.add(v["commit"])
        cells = []
        for k in CMSIS_KINDS:
            d = v["per_kind"].get(k)
            cells.append(f"{d['ratio']:>9.3f}" if d and d["ratio"] is not None else f"{'-':>9}")
        rows.append(f"{r.model:<14} {v['instructions']:>13,} {v['cmsis_nn_instructions']:>14,} "
                    f"{v['ratio']:>6.3f} " + " ".join(cells))
    rows.append(f"ours / CMSIS-NN instructions (< 1: fewer); CMSIS-NN commit "
                f"{', '.join(sorted(c or 'unknown' for c in commits))}")
    return "\n".join(rows)


def _ipm(instructions: int, macs: int) -> float | None:
    return round(instructions / macs, 3) if macs else None


def profile_fields(prof: opprofile.ModelProfile) -> tuple[dict[str, dict], list[dict]]:
    """A run's profile as the records' per_kind and per_op fields (JSON-ready)."""
    per_op = [{"op": st.op, "label": st.label, "kind": st.kind, "callees": st.callees,
               "macs": st.macs, "instructions": st.instructions,
               "instr_per_mac": _ipm(st.instructions, st.macs),
               "functions": dict(sorted(st.functions.items(), key=lambda kv: -kv[1]))}
              for st in prof.steps]
    per_kind: dict[str, dict] = {}
    for st in prof.steps:
        k = per_kind.setdefault(st.kind, {"macs": 0, "instructions": 0, "ops": 0})
        k["macs"] += st.macs
        k["instructions"] += st.instructions
        k["ops"] += 1
    per_kind["driver"] = {"macs": 0, "instructions": prof.driver, "ops": 0}
    for k in per_kind.values():
        k["instr_per_mac"] = _ipm(k["instructions"], k["macs"])
    return per_kind, per_op


def bench_model(spec: str, with_tflm: bool = True, schedules: tuple[str, ...] = SCHEDULES,
                kernels: tuple[str, ...] = ("dsp", "portable"),
                cmsis: cmsisnn.Library | None = None) -> list[Record]:
    """Every schedule x kernel path of one model; with cmsis, also the layer schedule on
    CMSIS-NN's kernels, compared with ours (vs_cmsis_nn)."""
    g = load_graph(spec)
    x = photo_input(g)
    want = reference.run(g, x)
    tflm = tflm_arena(g) if with_tflm else None
    records = []
    for schedule in schedules:
        s = schedule_for(g, schedule)
        if s is None:
            print(f"bench: {g.name}: not an exported app, so no shipped schedule",
                  file=sys.stderr)
            continue
        if schedule not in ("layer", "shipped") and s.mode == "layer":
            print(f"bench: {g.name}: no {schedule} schedule beats layer by layer (recompute: "
                  f"within {100 * MAX_OVERHEAD:.0f}% MACs); not measured", file=sys.stderr)
            continue
        ks = kernels + (("cmsis-nn",) if cmsis is not None and schedule == "layer" else ())
        records += measure(g, s, schedule, x, want, Path("build/bench") / g.name / schedule,
                           ks, tflm, cmsis)
    attach_cmsis_nn(records)
    return records


def table(records: list[Record]) -> str:
    head = (f"{'model':<14} {'schedule':<11} {'kern':<8} {'MACs':>12} {'params':>9} "
            f"{'arena':>9} {'flash':>9} {'fits':>4} {'M7 instr':>13} {'i/MAC':>6} "
            f"{'patches':>9} {'TFLM arena':>10} {'arena / TFLM':>12}")
    rows = [head, "-" * len(head)]
    for r in records:
        patches = f"{r.grid[0]}x{r.grid[1]}@{r.split}" if r.mode != "layer" and r.grid else "-"
        fits = "yes" if r.fits_stm32f746 else "no"
        ratio = r.tflm_ratio
        goal = "" if ratio is None else (" ok" if ratio <= TFLM_GOAL else " >")
        rows.append(f"{r.model:<14} {r.schedule:<11} {r.kernels:<8} {r.macs:>12,} "
                    f"{r.params:>9,} {r.arena_bytes:>9,} {r.flash_bytes:>9,} {fits:>4} "
                    f"{r.m7_instructions:>13,} {r.instr_per_mac:>6.2f} {patches:>9} "
                    f"{r.tflm_arena_bytes if r.tflm_arena_bytes is not None else '-':>10} "
                    f"{'-' if ratio is None else f'{ratio:.3f}{goal}':>12}")
    return "\n".join(rows)


KIND_COLUMNS = ("pointwise", "depthwise", "conv2d")


def kind_table(records: list[Record]) -> str:
    """Per record: instructions per MAC of each MAC-heavy kernel type, and the share of all
    instructions spent in each type (the rest: add, pooling, patch copies, halos, driver)."""
    head = (f"{'model':<14} {'schedule':<11} {'kern':<8} {'all i/MAC':>9} "
            + " ".join(f"{k + ' i/MAC':>15} {'%instr':>6}" for k in KIND_COLUMNS)
            + f" {'other %instr':>12}")
    rows = [head, "-" * len(head)]
    for r in records:
        if not r.per_kind:
            continue
        cells = []
        rest = 100.0
        for k in KIND_COLUMNS:
            d = r.per_kind.get(k)
            if d is None or not d["macs"]:
                cells.append(f"{'-':>15} {'-':>6}")
                continue
            share = 100 * d["instructions"] / r.m7_instructions
            rest -= share
            cells.append(f"{d['instr_per_mac']:>15.2f} {share:>5.1f}%")
        rows.append(f"{r.model:<14} {r.schedule:<11} {r.kernels:<8} {r.instr_per_mac:>9.2f} "
                    + " ".join(cells) + f" {rest:>11.1f}%")
    return "\n".join(rows)


def op_table(r: Record) -> str:
    """Every step of one record: MACs, instructions, instructions per MAC, and the runtime
    functions that executed most of them (the kernel variant)."""
    head = (f"{'step':<44} {'MACs':>11} {'instr':>12} {'i/MAC':>6} {'%instr':>6}  "
            "top functions (own instructions)")
    rows = [f"{r.model} {r.schedule} {r.kernels}: {r.m7_instructions:,} instructions, "
            f"{r.macs:,} MACs", head, "-" * len(head)]
    for st in r.per_op or []:
        top = ", ".join(f"{f} {100 * v / st['instructions']:.0f}%"
                        for f, v in list(st["functions"].items())[:3]) \
            if st["instructions"] else ""
        ipm = f"{st['instr_per_mac']:.2f}" if st["instr_per_mac"] is not None else "-"
        rows.append(f"{st['label']:<44} {st['macs']:>11,} {st['instructions']:>12,} "
                    f"{ipm:>6} {100 * st['instructions'] / r.m7_instructions:>5.1f}%  {top}")
    if r.per_kind:
        d = r.per_kind["driver"]["instructions"]
        rows.append(f"{'driver (generated code between calls)':<44} {0:>11,} {d:>12,} "
                    f"{'-':>6} {100 * d / r.m7_instructions:>5.1f}%")
    return "\n".join(rows)


DOCS_BEGIN = "<!-- bench tables: begin (patchcam bench --docs FILE writes this part) -->"
DOCS_END = "<!-- bench tables: end -->"
HEADLINE_BEGIN = "<!-- bench headline: begin (patchcam bench --docs FILE writes this part) -->"
HEADLINE_END = "<!-- bench headline: end -->"


DOCS_RECORDS = REPO / "docs" / "bench.json"  # the records the docs' tables were written from
DOCS_FILES = (REPO / "README.md", REPO / "docs" / "patch_inference.md")


def save_docs_records(records: list[Record], path: Path = DOCS_RECORDS) -> None:
    """The records behind the project's docs tables (written whenever --docs writes README.md
    or docs/patch_inference.md), without the per-op profiles (build/bench.json keeps those),
    so a test can check the tables are exactly what the records say."""
    path.write_text(json.dumps([{**asdict(r), "per_op": None} for r in records], indent=1)
                    + "\n")


def load_records(path: str | Path) -> list[Record]:
    """The records of a build/bench.json."""
    return [Record(**d) for d in json.loads(Path(path).read_text())]


def _m(n: int) -> str:
    return f"{n / 1e6:,.1f} M"


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n:,} B"


def memory_table(records: list[Record]) -> str:
    """Per model and schedule (DSP kernels): the arena, TFLite Micro's arena for the same
    model and the ratio, the frame buffer outside the arena, flash and instructions."""
    rows = ["Arena (peak activation SRAM) per schedule, beside TensorFlow Lite Micro's smallest "
            "arena for the same model (DSP kernels; flash: `arm-none-eabi-size` of the model, "
            "runtime and a minimal main):", "",
            "| model | schedule | patches | arena | input outside the arena | TFLM arena | "
            "arena / TFLM | flash | instructions | instr/MAC |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        if r.kernels != "dsp":
            continue
        patches = f"{r.grid[0]}x{r.grid[1]}, ops 0..{r.split}" \
            if r.mode != "layer" and r.grid else "-"
        ratio = "-" if r.tflm_ratio is None else f"{r.tflm_ratio:.3f}"
        rows.append(f"| `{r.model}` | {r.schedule} | {patches} | {_kb(r.arena_bytes)} | "
                    f"{_kb(r.frame_buffer_bytes) if r.frame_buffer_bytes else '-'} | "
                    f"{_kb(r.tflm_arena_bytes)} | {ratio} | {_kb(r.flash_bytes)} | "
                    f"{_m(r.m7_instructions)} | {r.instr_per_mac:.2f} |")
    return "\n".join(rows)


def headline_table(records: list[Record]) -> str:
    """The README's summary, one row per model (DSP kernels): layer by layer, and the schedule
    with the smallest arena beside TensorFlow Lite Micro's."""
    rows = ["| model | MACs | layer by layer: arena, instr/MAC | smallest arena (schedule) | "
            "TFLM arena | ours / TFLM |", "|---|---|---|---|---|---|"]
    models = list(dict.fromkeys(r.model for r in records if r.kernels == "dsp"))
    for m in models:
        rs = [r for r in records if r.model == m and r.kernels == "dsp"]
        layer = next((r for r in rs if r.schedule == "layer"), None)
        best = min(rs, key=lambda r: (r.arena_bytes, r.m7_instructions))
        ratio = "-" if best.tflm_ratio is None else f"{best.tflm_ratio:.3f}"
        lay = "-" if layer is None else f"{_kb(layer.arena_bytes)}, {layer.instr_per_mac:.2f}"
        rows.append(f"| `{m}` | {(layer or best).macs:,} | {lay} | {_kb(best.arena_bytes)} "
                    f"({best.schedule}) | {_kb(best.tflm_arena_bytes)} | {ratio} |")
    return "\n".join(rows)


def markdown_tables(records: list[Record]) -> str:
    """The docs' tables, from records: arena and TFLite Micro's per schedule, instructions per
    MAC per kernel type (DSP kernels), and ours / CMSIS-NN's instructions when CMSIS-NN ran."""
    rows = [memory_table(records), "",
            "Instructions per MAC per kernel type (DSP kernels; in brackets the type's share of "
            "the model's instructions):", "",
            "| model | schedule | instructions | all | pointwise | depthwise | conv2d | other |",
            "|---|---|---|---|---|---|---|---|"]
    for r in records:
        if r.kernels != "dsp" or not r.per_kind:
            continue
        cells, rest = [], 100.0
        for k in KIND_COLUMNS:
            d = r.per_kind.get(k)
            if d is None or not d["macs"]:
                cells.append("-")
                continue
            share = 100 * d["instructions"] / r.m7_instructions
            rest -= share
            cells.append(f"{d['instr_per_mac']:.2f} ({share:.1f} %)")
        rows.append(f"| `{r.model}` | {r.schedule} | {_m(r.m7_instructions)} | "
                    f"{r.instr_per_mac:.2f} | " + " | ".join(cells) + f" | {rest:.1f} % |")
    peers = [r for r in records if r.vs_cmsis_nn]
    if peers:
        commits = sorted({r.vs_cmsis_nn["commit"] or "unknown" for r in peers})
        rows += ["", f"Ours / CMSIS-NN's instructions (ARM-software/CMSIS-NN "
                     f"{', '.join(commits)}; same layers, same emulated M7; < 1: fewer):", "",
                 "| model | ours | CMSIS-NN | whole | " + " | ".join(CMSIS_KINDS) + " |",
                 "|---|---|---|---|" + "---|" * len(CMSIS_KINDS)]
        for r in peers:
            v = r.vs_cmsis_nn
            ratios = []
            for k in CMSIS_KINDS:
                d = v["per_kind"].get(k)
                ratios.append(f"{d['ratio']:.3f}" if d and d["ratio"] is not None else "-")
            rows.append(f"| `{r.model}` | {_m(v['instructions'])} | "
                        f"{_m(v['cmsis_nn_instructions'])} | {v['ratio']:.3f} | "
                        + " | ".join(ratios) + " |")
    return "\n".join(rows)


def doc_sections(path: str | Path) -> list[tuple[str, str]]:
    """The generated sections (begin, end markers) a Markdown file has: DOCS_BEGIN ..
    DOCS_END and / or HEADLINE_BEGIN .. HEADLINE_END; ValueError when it has neither or a
    malformed one."""
    text = Path(path).read_text()
    found = []
    for begin, end in ((DOCS_BEGIN, DOCS_END), (HEADLINE_BEGIN, HEADLINE_END)):
        if begin not in text and end not in text:
            continue
        if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
            raise ValueError(f"{path}: needs one {begin!r} ... {end!r} section")
        found.append((begin, end))
    if not found:
        raise ValueError(f"{path}: needs a {DOCS_BEGIN!r} ... {DOCS_END!r} (bench tables) or "
                         f"{HEADLINE_BEGIN!r} ... {HEADLINE_END!r} section")
    return found


def update_docs(path: str | Path, records: list[Record]) -> bool:
    """Rewrites each generated section of a Markdown file (doc_sections): between DOCS_BEGIN
    and DOCS_END markdown_tables(records), between HEADLINE_BEGIN and HEADLINE_END
    headline_table(records); returns whether the file changed."""
    path = Path(path)
    render = {DOCS_BEGIN: markdown_tables, HEADLINE_BEGIN: headline_table}
    text = new = path.read_text()
    for begin, end in doc_sections(path):
        head, rest = new.split(begin)
        _, tail = rest.split(end)
        new = f"{head}{begin}\n{render[begin](records)}\n{end}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


def write_plots(records: list[Record], out_dir: Path) -> list[Path]:
    """benchplot.write_all, and a line saying where the plots went."""
    from patchcam.targets import benchplot  # it builds on this module's Record
    paths = benchplot.write_all(records, out_dir)
    if paths:
        print(f"\nper-op profiles: {len(paths)} plots in {out_dir}/")
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="patchcam bench",
        description="Benchmark models on the emulated Cortex-M7 (exact instruction counts), "
                    "with the arena of layer-by-layer, patch-based and TFLite Micro execution.")
    p.add_argument("models", nargs="*", default=list(MODELS),
                   help=f"presets, apps or IR files (default: {' '.join(MODELS)})")
    p.add_argument("--schedules", default=",".join(SCHEDULES),
                   help=f"comma-separated, from {', '.join(SCHEDULES)} (default: all)")
    p.add_argument("--kernels", default=",".join(KERNELS),
                   help=f"comma-separated, from {', '.join(KERNELS)} (default: both)")
    p.add_argument("--no-tflm", action="store_true", help="skip the TFLite Micro arena search")
    p.add_argument("--out", default=str(OUT), help=f"JSON output (default {OUT})")
    p.add_argument("--cmsis-nn", metavar="DIR",
                   help="a checkout of ARM-software/CMSIS-NN: also run the layer schedule on "
                        "its kernels and report ours / CMSIS-NN's instructions")
    p.add_argument("--per-op", action="store_true",
                   help="also print every op's instructions, MACs and kernel functions")
    p.add_argument("--plot", metavar="DIR", nargs="?", const=str(PLOTS),
                   help="also draw each record's per-op profile, our kernels beside "
                        f"CMSIS-NN's where it ran, as DIR/MODEL-SCHEDULE-KERNELS.png "
                        f"(default {PLOTS}); with --from-json, from a build/bench.json")
    p.add_argument("--docs", metavar="FILE", nargs="+", default=[],
                   help="write the tables into each FILE's generated sections (Markdown: "
                        "bench tables and/or bench headline markers)")
    p.add_argument("--from-json", metavar="JSON",
                   help="measure nothing: the tables (and --docs) from a saved bench.json")
    args = p.parse_args(argv)
    for doc in args.docs:  # before measuring for minutes
        try:
            doc_sections(doc)
        except (OSError, ValueError) as e:
            p.error(str(e))
    if args.from_json:
        try:
            records = load_records(args.from_json)
        except (OSError, ValueError, TypeError) as e:
            p.error(f"--from-json {args.from_json}: not a bench.json that `patchcam bench` "
                    f"wrote ({e})")
        print(markdown_tables(records))
        if args.plot is not None and not write_plots(records, Path(args.plot)):
            p.error(f"--plot: {args.from_json} has no per-op profiles; plot from the {OUT} "
                    "that `make bench` writes (the docs' copy leaves them out)")
        for doc in args.docs:
            changed = update_docs(doc, records)
            print(f"\n{doc}: {'updated' if changed else 'already up to date'}")
        if any(Path(d).resolve() in DOCS_FILES for d in args.docs):
            save_docs_records(records)
        return 0
    schedules = tuple(args.schedules.split(","))
    kernels = tuple(args.kernels.split(","))
    for what, given, known in (("schedule", schedules, SCHEDULES), ("kernels", kernels, KERNELS)):
        for v in given:
            if v not in known:
                p.error(f"unknown {what} {v!r}; choose from {', '.join(known)}")
    cmsis = None
    if args.cmsis_nn:
        try:
            cmsis = cmsisnn.library(args.cmsis_nn)
        except cmsisnn.CmsisNnError as e:
            p.error(str(e))
    records: list[Record] = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from patchcam.cli import user_errors
    try:
        for spec in tqdm(args.models, desc="bench", unit="model"):
            records += bench_model(spec, with_tflm=not args.no_tflm, schedules=schedules,
                                   kernels=kernels, cmsis=cmsis)
            out.write_text(json.dumps([asdict(r) for r in records], indent=1))  # each model
    except (armbuild.BuildError, qemu.QemuError, BenchError, *user_errors()) as e:
        # a missing toolchain, a build that fails, a model that is not there: what went wrong
        # (a failed build's compiler output included), not a traceback
        print(f"error: {e}", file=sys.stderr)
        if records:
            print(f"bench: the {len(records)} records measured before that are in {out}",
                  file=sys.stderr)
        return 2
    print(table(records))
    print("\ninstructions per MAC by kernel type (%instr: share of the model's instructions)")
    print(kind_table(records))
    if cmsis is not None:
        print("\nCMSIS-NN side by side (layer by layer, same layers, same emulated M7)")
        print(cmsis_table(records))
    if args.per_op:
        for r in records:
            print()
            print(op_table(r))
    if args.plot is not None:
        write_plots(records, Path(args.plot))
    for doc in args.docs:
        update_docs(doc, records)
    if any(Path(d).resolve() in DOCS_FILES for d in args.docs):
        save_docs_records(records)
    print(f"\nwrote {out}; instruction counts are exact (QEMU -icount, TCG plugin), one "
          "inference on scikit-image's astronaut photo; 'fits' = within the STM32F746's "
          "1 MB flash / 320 kB SRAM; 'arena / TFLM': the goal is <= 1/3 ('ok')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
