"""Per-op profile plots of `make bench` records: where a model's instructions go.

One PNG per record that carries its per-op profile (build/bench.json keeps them;
docs/bench.json does not). Top panel: each step's instructions, a bar coloured by kernel
type, and where CMSIS-NN ran beside our DSP kernels (layer by layer) a black tick at its
instructions for the same op. Bottom panel: each op's instructions per MAC, ours and
CMSIS-NN's, on a log scale. The tall bars are where the time goes; the high dots are the
kernels far from the ~1 instruction per MAC of a dual-MAC inner loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from patchcam.paths import file_stem
from patchcam.targets.bench import Record, _m

KIND_COLOURS = {
    "pointwise": "#1f77b4", "depthwise": "#ff7f0e", "conv2d": "#2ca02c", "add": "#9467bd",
    "avg_pool2d": "#8c564b", "fully_connected": "#e377c2", "input_copy": "#7f7f7f",
    "halo": "#bcbd22",
}
OTHER_COLOUR = "#17becf"
MAX_TICKS = 80  # more steps than this (many halo steps): every n-th labelled


@dataclass
class Series:
    """One record's steps as the plot draws them; theirs_* are None for steps CMSIS-NN has
    no counterpart of (input copy, halo steps) or when it did not run."""
    ticks: list[str]  # the op's index, "in" for the input copy, "h" for a halo step
    kinds: list[str]
    instructions: list[int]
    ipm: list[float | None]
    theirs_instructions: list[int | None]
    theirs_ipm: list[float | None]


def series(ours: Record, theirs: Record | None = None) -> Series:
    """ours' per-op profile, with theirs' (CMSIS-NN's) matched op by op."""
    by_op = {st["op"]: st for st in (theirs.per_op or [])} if theirs else {}
    s = Series([], [], [], [], [], [])
    for st in ours.per_op or []:
        op = st["op"]
        s.ticks.append(str(op) if op >= 0 else "in" if st["kind"] == "input_copy" else "h")
        s.kinds.append(st["kind"])
        s.instructions.append(st["instructions"])
        s.ipm.append(st["instr_per_mac"])
        match = by_op.get(op) if op >= 0 else None
        s.theirs_instructions.append(match["instructions"] if match else None)
        s.theirs_ipm.append(match["instr_per_mac"] if match else None)
    return s


def pairs(records: Sequence[Record]) -> list[tuple[Record, Record | None]]:
    """Every record with a per-op profile except CMSIS-NN's own, each with the CMSIS-NN
    record that ran beside it (our DSP kernels, same model and schedule) or None."""
    cmsis = {(r.model, r.schedule): r for r in records if r.kernels == "cmsis-nn" and r.per_op}
    return [(r, cmsis.get((r.model, r.schedule)) if r.kernels == "dsp" else None)
            for r in records if r.per_op and r.kernels != "cmsis-nn"]


def plot_path(out_dir: Path, r: Record) -> Path:
    """Where r's plot goes: one file per model, schedule and kernels, inside out_dir."""
    return out_dir / f"{file_stem(r.model)}-{r.schedule}-{r.kernels}.png"


def plot_profile(ours: Record, theirs: Record | None, path: Path) -> None:
    """The two panels (module doc) of one record as a PNG at path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    s = series(ours, theirs)
    x = list(range(len(s.ticks)))
    colours = [KIND_COLOURS.get(k, OTHER_COLOUR) for k in s.kinds]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    top.bar(x, [n / 1e6 for n in s.instructions], color=colours)
    title = (f"{ours.model}, {ours.schedule}, {ours.kernels} kernels: "
             f"{_m(ours.m7_instructions)} instructions, {ours.instr_per_mac:.2f} per MAC")
    handles = [Patch(color=KIND_COLOURS.get(k, OTHER_COLOUR), label=k)
               for k in dict.fromkeys(s.kinds)]
    if theirs is not None:
        xs = [i for i in x if s.theirs_instructions[i] is not None]
        top.scatter(xs, [s.theirs_instructions[i] / 1e6 for i in xs], marker="_", s=120,
                    color="black", zorder=3)
        title += (f"\nCMSIS-NN on the same layers: {_m(theirs.m7_instructions)}, "
                  f"{theirs.instr_per_mac:.2f} per MAC")
        handles.append(plt.Line2D([], [], color="black", marker="_", ls="", ms=10,
                                  label="CMSIS-NN"))
    top.set_ylabel("instructions (millions)")
    top.set_title(title, fontsize=10)
    top.legend(handles=handles, fontsize=8, loc="upper right")
    mac_steps = [i for i in x if s.ipm[i] is not None]
    bottom.scatter(mac_steps, [s.ipm[i] for i in mac_steps],
                   c=[colours[i] for i in mac_steps], s=18, zorder=3)
    if theirs is not None:
        xs = [i for i in mac_steps if s.theirs_ipm[i] is not None]
        bottom.scatter(xs, [s.theirs_ipm[i] for i in xs], marker="x", s=18, color="black")
    bottom.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.8, 2, 6: not 6x10^0
    bottom.yaxis.set_major_formatter(plain)
    bottom.yaxis.set_minor_formatter(plain)
    bottom.tick_params(axis="y", which="minor", labelsize=7)
    bottom.set_ylabel("instructions per MAC")
    bottom.grid(axis="y", which="both", alpha=0.3)
    every = max(1, -(-len(x) // MAX_TICKS))
    bottom.set_xticks(x[::every], s.ticks[::every], fontsize=7 if len(x) <= 40 else 5)
    bottom.set_xlabel("step (op index; in: input copy, h: halo step)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(records: Sequence[Record], out_dir: Path) -> list[Path]:
    """A plot per pairs(records), in out_dir; the paths written (none: no record had a
    per-op profile)."""
    written = []
    for ours, theirs in pairs(records):
        path = plot_path(out_dir, ours)
        plot_profile(ours, theirs, path)
        written.append(path)
    return written
