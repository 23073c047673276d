"""Patch-based inference planner (docs/design.md §4.4): memory profile, patch schedules, search.

Layer-by-layer execution keeps each op's whole input and output in SRAM, so the first,
high-resolution layers of a CNN set the peak ("the memory spike"). A *patch schedule* runs the
first ops 0..K (the *patch stage*) one spatial patch at a time: op K's output is cut into a
p x q grid (rows and columns split as evenly as possible), and for every patch the region each
earlier op must compute is derived backwards through kernel, stride and padding. Only
tile-sized buffers are live in the stage, plus op K's full output (each patch writes its tile
into it) and the full input (or none of it, when the stage reads straight from the camera's
frame buffer: `fuse_input`). After the stage, ops K+1.. run layer by layer.

Regions are *separable*: the rows an op computes depend only on the patch row, the columns
only on the patch column. So each axis is derived once (`AxisRegions`) and a patch's region is
the product of its row and column intervals. Intervals are inclusive `(lo, hi)` pairs.

Two ways to handle the halo (the input rows/columns neighbouring patches share):

- `recompute` (MCUNetV2): every patch computes its whole region; overlaps are computed again.
- `cache`: each op computes only the rows/columns no earlier patch computed (a *piece*: the
  pieces of an op partition its output, so MACs equal layer-by-layer), and keeps the last
  `halo` rows of its output (a strip over the tensor's full width) and the last `halo` columns
  (a strip over the tile's height) for the next patch row / next patch. A consumer then reads
  an *extended tile* = the cached halo + the new piece. Halos are only the consumer's kernel
  overlap (k - s), not the accumulated receptive-field growth, because pieces have fixed
  boundaries at every layer.

Memory is measured by placing every buffer (tensor tiles, pieces, caches, crop temporaries,
kernel scratch, full tensors) in one arena with memplan's greedy placement, on a timeline of
steps (one patch's steps stand for all patches, since each patch reuses the same buffers). So
`arena_bytes` is an address map that generated code can use, not an estimate.

How an op reads a tile that is larger than what it needs (a tensor with several consumers,
or a halo it does not use): directly when the column ranges agree (the rows it needs are
contiguous); row by row for `add` and pointwise convs; otherwise through a crop temporary
(counted in the arena).

Buffers are named by `placement.BufferKey` (a tensor, op K's full output, a tile, a row or
column cache, a crop temporary, a kernel scratch) and a schedule's `placement` maps each to
its place in the arena: what the code generator reads.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from functools import lru_cache

from patchcam.compiler import memplan
from patchcam.compiler.ir import Graph, Op
from patchcam.compiler.memplan import ALIGN, align_up
from patchcam.compiler.placement import Buffer, BufferKey, Placement

MODES = ("layer", "recompute", "cache")
STAGE_KINDS = ("conv2d", "depthwise_conv2d", "add", "avg_pool2d", "max_pool2d")
MAX_GRID = 8

Interval = tuple[int, int]  # inclusive; empty when lo > hi


class PlanError(ValueError):
    """No schedule satisfies the request (the message says what is reachable and what to do)."""


# ---- sizes ----------------------------------------------------------------------------------
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmM]?)(i?)([bB]?)\s*$")


def parse_size(text: str | int) -> int:
    """'256kB' -> 256000, '320KiB' -> 327680, '1MB' -> 1000000, '100000' -> 100000 bytes."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m or (m.group(3) and not m.group(2)):
        raise ValueError(f"cannot read size {text!r}: write bytes (100000) or a number with "
                         "a unit: kB, KiB, MB, MiB (e.g. 256kB, 320KiB, 1MB)")
    value, prefix, binary = float(m.group(1)), m.group(2).lower(), bool(m.group(3))
    scale = {"": 1, "k": 1024 if binary else 1000, "m": 1024**2 if binary else 1000**2}[prefix]
    n = value * scale
    if n != int(n) or n <= 0:
        raise ValueError(f"size {text!r} must be a positive whole number of bytes")
    return int(n)


def fmt_bytes(n: int) -> str:
    return f"{n:,} B ({n / 1024:.1f} KiB)"


# ---- interval arithmetic --------------------------------------------------------------------
def split_even(n: int, parts: int) -> list[Interval]:
    """n indices cut into `parts` consecutive intervals whose lengths differ by at most one
    (the longer ones first)."""
    if not 1 <= parts <= n:
        raise PlanError(f"cannot cut {n} rows/columns into {parts} patches")
    base, extra = divmod(n, parts)
    out, lo = [], 0
    for j in range(parts):
        hi = lo + base + (1 if j < extra else 0) - 1
        out.append((lo, hi))
        lo = hi + 1
    return out


def _len(iv: Interval) -> int:
    return max(0, iv[1] - iv[0] + 1)


def _union(a: Interval | None, b: Interval) -> Interval:
    if a is None or _len(a) == 0:
        return b
    if _len(b) == 0:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]))


def input_interval(op: Op, axis: int, out: Interval, n_in: int) -> Interval:
    """The input rows (axis 0) or columns (axis 1) op reads to compute `out`, clipped to the
    tensor: padding only exists at the true border."""
    if _len(out) == 0:
        return (0, -1)
    if op.kind == "add":
        return out
    k, s, pad = op.kernel[axis], op.stride[axis], op.pads[axis]
    return (max(0, out[0] * s - pad), min(n_in - 1, out[1] * s - pad + k - 1))


def tile_pads(op: Op, axis: int, out: Interval, n_in: int) -> tuple[int, int]:
    """(before, after) padding of a tile computing `out`: the op's own padding where the tile
    touches the image border, none at seams. A conv over the clipped input interval with these
    pads is exactly the full conv restricted to `out`."""
    if op.kind == "add":
        return (0, 0)
    k, s, pad = op.kernel[axis], op.stride[axis], op.pads[axis]
    return (max(0, pad - out[0] * s), max(0, out[1] * s - pad + k - 1 - (n_in - 1)))


# ---- the patch stage ------------------------------------------------------------------------
def consumers(g: Graph) -> dict[str, list[int]]:
    uses: dict[str, list[int]] = {name: [] for name in g.tensors}
    for i, op in enumerate(g.ops):
        for name in op.inputs:
            uses[name].append(i)
    return uses


class _GraphKey:
    """Hashable by identity, so derivations are cached per graph object."""

    def __init__(self, g: Graph):
        self.g = g

    def __hash__(self) -> int:
        return id(self.g)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _GraphKey) and other.g is self.g


def valid_splits(g: Graph) -> list[int]:
    """Ops K that can end a patch stage: ops 0..K are spatial (no FC, HxWxC tensors) and no
    tensor made before K (nor the input) is needed after K - only K's output crosses."""
    return list(_valid_splits(_GraphKey(g)))


@lru_cache(maxsize=64)
def _valid_splits(key: _GraphKey) -> tuple[int, ...]:
    g = key.g
    uses = consumers(g)
    out: list[int] = []
    for k, op in enumerate(g.ops):
        if op.kind not in STAGE_KINDS or len(g.tensors[op.output].shape) != 3:
            break
        crossing = [t for t in [g.input] + [o.output for o in g.ops[:k]]
                    if any(j > k for j in uses[t]) or t == g.output]
        if not crossing:
            out.append(k)
    return tuple(out)


@dataclass
class AxisRegions:
    """One axis (0 rows, 1 columns) of a patch stage 0..K cut into len(parts) patches.

    recompute mode: `out[i][a]` is what op i computes for patch index a, `need[t][a]` what is
    kept of tensor t (the union over its stage consumers), `reads[i][j][a]` the part of its
    j-th input op i reads. cache mode: `piece[i][a]` is what op i newly computes, `halo[t]` the
    rows/columns of t cached for the next patch, `ext[t][a]` the extended tile (halo + piece)
    of t, `piece_reads[i][j][a]` what op i reads for its piece."""
    axis: int
    parts: list[Interval]
    out: list[list[Interval]]
    need: dict[str, list[Interval]]
    reads: list[list[list[Interval]]]
    piece: list[list[Interval]]
    halo: dict[str, int]
    ext: dict[str, list[Interval]]
    piece_reads: list[list[list[Interval]]]


def derive_axis(g: Graph, split: int, axis: int, n_parts: int,
                balance: bool = False) -> AxisRegions:
    """Regions of one axis. Op K's output is cut evenly; with balance=True (cache mode) the
    cut is chosen so that the *pieces* of the stage's largest tensor are even instead (the
    first piece of every layer also holds the receptive-field growth, so an even cut of op K
    makes the first tile of early layers the largest)."""
    return _derive_axis(_GraphKey(g), split, axis, n_parts, balance)


def _need_one(g: Graph, split: int, axis: int, iv: Interval
              ) -> tuple[dict[str, Interval], list[Interval], list[list[Interval]]]:
    """Backwards from op K's output interval iv: what each tensor must hold, what each op
    computes, what each op reads of each input."""
    ops = g.ops[:split + 1]
    cur: dict[str, Interval] = {ops[-1].output: iv}
    out: list[Interval] = [(0, -1)] * len(ops)
    reads: list[list[Interval]] = [[] for _ in ops]
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        r = cur.get(op.output, (0, -1))
        out[i] = r
        for t in op.inputs:
            rd = input_interval(op, axis, r, g.tensors[t].shape[axis])
            reads[i].append(rd)
            cur[t] = _union(cur.get(t), rd)
    return cur, out, reads


def _balanced_parts(g: Graph, split: int, axis: int, n: int) -> list[Interval]:
    ops = g.ops[:split + 1]
    n_k = g.tensors[ops[-1].output].shape[axis]
    if split == 0 or n == 1 or n > n_k:
        return split_even(n_k, n)
    heavy = max((op.output for op in ops[:-1]), key=lambda t: g.tensors[t].size)
    n_t = g.tensors[heavy].shape[axis]
    ends = [_need_one(g, split, axis, (0, b))[0][heavy][1] for b in range(n_k)]
    parts, lo = [], 0
    for a in range(1, n):
        target = round(a * n_t / n) - 1
        top = n_k - 1 - (n - a)
        b = lo
        while b + 1 <= top and ends[b + 1] <= target:
            b += 1
        parts.append((lo, b))
        lo = b + 1
    parts.append((lo, n_k - 1))
    return parts


@lru_cache(maxsize=4096)
def _derive_axis(key: _GraphKey, split: int, axis: int, n_parts: int,
                 balance: bool) -> AxisRegions:
    g = key.g
    ops = g.ops[:split + 1]
    out_k = g.tensors[ops[-1].output].shape[axis]
    parts = _balanced_parts(g, split, axis, n_parts) if balance else split_even(out_k, n_parts)
    n = len(parts)
    need: dict[str, list[Interval]] = {}
    out: list[list[Interval]] = [[(0, -1)] * n for _ in ops]
    reads: list[list[list[Interval]]] = [[[(0, -1)] * n for _ in op.inputs] for op in ops]
    for a in range(n):
        cur, o, rd = _need_one(g, split, axis, parts[a])
        for i in range(len(ops)):
            out[i][a] = o[i]
            for j in range(len(ops[i].inputs)):
                reads[i][j][a] = rd[i][j]
        for t, iv in cur.items():
            need.setdefault(t, [(0, -1)] * n)[a] = iv
    # cache mode: fixed piece boundaries at every layer (the hi end of each patch's need)
    piece = []
    for op in ops:
        ys = [iv[1] for iv in need[op.output]]
        piece.append([(ys[a - 1] + 1 if a else 0, ys[a]) for a in range(n)])
    piece_reads = [[[input_interval(op, axis, piece[i][a], g.tensors[t].shape[axis])
                     for a in range(n)] for t in op.inputs] for i, op in enumerate(ops)]
    halo: dict[str, int] = {}
    ext: dict[str, list[Interval]] = {}
    producer = {op.output: i for i, op in enumerate(ops)}
    for t in need:
        ys = [iv[1] for iv in need[t]]
        h = 0
        for i, op in enumerate(ops):
            for j, name in enumerate(op.inputs):
                if name != t:
                    continue
                for a in range(n):
                    iv = piece_reads[i][j][a]
                    if _len(iv):
                        h = max(h, (ys[a - 1] + 1 if a else 0) - iv[0])
        halo[t] = h
        if t in producer:
            ext[t] = [(max(0, (ys[a - 1] + 1 if a else 0) - h), ys[a]) for a in range(n)]
        else:  # the stage input: cropped from the full input, the union of what is read
            ivs: list[Interval | None] = [None] * n
            for i, op in enumerate(ops):
                for j, name in enumerate(op.inputs):
                    if name == t:
                        for a in range(n):
                            ivs[a] = _union(ivs[a], piece_reads[i][j][a])
            ext[t] = [iv if iv is not None else (0, -1) for iv in ivs]
    return AxisRegions(axis, parts, out, need, reads, piece, halo, ext, piece_reads)


# ---- timeline of buffers -> arena -----------------------------------------------------------
class _Timeline:
    """Steps touching planned buffers; lifetimes = first..last touching step. Aliased buffers
    (in-place ops) share one storage. `place()` runs memplan's greedy placement."""

    def __init__(self, align: int = ALIGN):
        self.align = align
        self.size: dict[BufferKey, int] = {}
        self.first: dict[BufferKey, int] = {}
        self.last: dict[BufferKey, int] = {}
        self.owner: dict[BufferKey, BufferKey] = {}
        self.labels: list[str] = []
        self.op_of_step: list[int] = []

    def buf(self, key: BufferKey, size: int) -> BufferKey:
        self.size[key] = max(self.size.get(key, 0), size)
        self.owner.setdefault(key, key)
        return key

    def alias(self, key: BufferKey, onto: BufferKey, size: int) -> None:
        root = self.owner[onto]
        self.owner[key] = root
        self.size[root] = max(self.size[root], size)

    def step(self, label: str, op: int, touch: list[BufferKey]) -> int:
        t = len(self.labels)
        self.labels.append(label)
        self.op_of_step.append(op)
        for key in touch:
            r = self.owner[key]
            self.first[r] = min(self.first.get(r, t), t)
            self.last[r] = max(self.last.get(r, t), t)
        return t

    def extend(self, key: BufferKey, until: int) -> None:
        r = self.owner[key]
        self.last[r] = max(self.last[r], until)

    def buffers(self) -> list[Buffer]:
        return [Buffer(r, self.size[r], self.first[r], self.last[r]) for r in self.first]

    def live(self) -> list[int]:
        diff = [0] * (len(self.labels) + 1)
        for b in self.buffers():
            diff[b.first] += align_up(b.size, self.align)
            diff[b.last + 1] -= align_up(b.size, self.align)
        out, run = [], 0
        for d in diff[:-1]:
            run += d
            out.append(run)
        return out

    def place(self) -> Placement:
        placed = memplan._best_placement(self.buffers(), self.align)
        arena = max((align_up(b.end, self.align) for b in placed), default=0)
        return Placement(arena, {b.key: b for b in placed}, dict(self.owner))


def _layer_phase(tl: _Timeline, g: Graph, start: int, have: set[str]) -> None:
    """Ops start.. layer by layer on full tensors (memplan's rules). `have` names the tensors
    already in buffers (the full input or op K's output)."""
    last_use = memplan.lifetimes(g)
    tensor = BufferKey.tensor
    for i in range(start, len(g.ops)):
        op = g.ops[i]
        out = g.tensors[op.output]
        ins = [t for t in op.inputs if t in have]  # a fused frame-buffer input is absent
        touch = [tensor(t) for t in ins]
        aliased = False
        for t in op.inputs:
            if t in have and last_use[t][1] == i and t != g.output and t in ins:
                if memplan.in_place_ok(g, op, t):
                    tl.alias(tensor(op.output), tensor(t), out.size)
                    aliased = True
                    break
        if not aliased:
            tl.buf(tensor(op.output), out.size)
        touch.append(tensor(op.output))
        scr = memplan.scratch_bytes(g, op, in_place=aliased)
        if scr:
            touch.append(tl.buf(BufferKey.scratch(i, op), scr))
        tl.step(op.name, i, touch)
        have.add(op.output)
    if tensor(g.output) in tl.owner:
        tl.extend(tensor(g.output), len(tl.labels) - 1)


# ---- schedules ------------------------------------------------------------------------------
@dataclass
class Schedule:
    """A way to run a graph and what it costs. mode "layer": no patch stage (split -1)."""
    graph: str
    mode: str
    split: int
    grid: tuple[int, int]
    macs: int
    layer_macs: int
    arena_bytes: int
    layer_peak_bytes: int
    frame_bytes: int  # the input tensor, when the stage reads it from the frame buffer
    fuse_input: bool
    lower_bound: int  # the most bytes live at one step (the placement is near it)
    op_bytes: list[int]  # per op: bytes live while it runs under this schedule
    layer_op_bytes: list[int]  # per op: bytes live while it runs layer by layer
    # where every planned buffer sits in the arena (None: not placed, place=False)
    placement: Placement | None = None
    rows: AxisRegions | None = None
    cols: AxisRegions | None = None

    @property
    def patches(self) -> int:
        """Patches per inference (1 layer by layer): each re-runs every stage kernel's set-up,
        so of two schedules with the same arena and MACs the one with fewer runs faster."""
        return self.grid[0] * self.grid[1] if self.mode != "layer" else 1

    @property
    def columns(self) -> int:
        """Patches across the width (1 layer by layer). The kernels stream along rows, so a
        column split costs more than a row split: every row of every stage op is cut into
        shorter runs, each with its own set-up and halo columns (measured per schedule by
        `make bench`: docs/patch_inference.md)."""
        return self.grid[1] if self.mode != "layer" else 1

    @property
    def speed_key(self) -> tuple[int, int]:
        """Of schedules with the same MACs, the one with the smaller key runs faster: fewer
        columns, then fewer patches."""
        return self.columns, self.patches

    @property
    def mac_overhead(self) -> float:
        return self.macs / self.layer_macs - 1.0 if self.layer_macs else 0.0

    @property
    def saving(self) -> float:
        return self.layer_peak_bytes / self.arena_bytes if self.arena_bytes else math.inf

    def describe(self) -> str:
        if self.mode == "layer":
            return f"layer by layer: arena {fmt_bytes(self.arena_bytes)}, {self.macs:,} MACs"
        return (f"patch stage ops 0..{self.split}, {self.grid[0]}x{self.grid[1]} patches, "
                f"halo {self.mode}: arena {fmt_bytes(self.arena_bytes)} "
                f"({self.saving:.1f}x smaller than layer by layer "
                f"{fmt_bytes(self.layer_peak_bytes)}), {self.macs:,} MACs "
                f"({100 * self.mac_overhead:+.1f}%)")

    def to_dict(self) -> dict:
        return {"model": self.graph, "mode": self.mode, "split": self.split,
                "grid": list(self.grid), "layer_peak_bytes": self.layer_peak_bytes,
                "arena_bytes": self.arena_bytes, "macs": self.macs,
                "layer_macs": self.layer_macs, "mac_overhead": self.mac_overhead,
                "frame_buffer_bytes": self.frame_bytes, "fuse_input": self.fuse_input,
                "lower_bound_bytes": self.lower_bound}


def layer_schedule(g: Graph, fuse_input: bool = False) -> Schedule:
    """Layer-by-layer execution. Without options the arena equals memplan.plan_layers'."""
    tl = _Timeline()
    have: set[str] = set()
    if not fuse_input:
        tl.buf(BufferKey.tensor(g.input), g.tensors[g.input].size)
        have.add(g.input)
    _layer_phase(tl, g, 0, have)
    placed = tl.place()
    live = tl.live()
    op_bytes = [0] * len(g.ops)
    for s, i in enumerate(tl.op_of_step):
        op_bytes[i] = max(op_bytes[i], live[s])
    macs = g.total_macs
    arena = placed.arena_bytes
    return Schedule(g.name, "layer", -1, (1, 1), macs, macs, arena, arena,
                    g.tensors[g.input].size if fuse_input else 0, fuse_input,
                    max(live, default=0), op_bytes, op_bytes, placed)


def plan_patches(g: Graph, split: int, grid: tuple[int, int], mode: str = "recompute",
                 fuse_input: bool = False, layer: Schedule | None = None,
                 place: bool = True) -> Schedule:
    """The schedule running ops 0..split patch by patch on a grid = (rows, cols) of patches.
    place=False skips the placement (arena_bytes = the lower bound; for the search)."""
    if mode not in ("recompute", "cache"):
        raise PlanError(f"mode must be 'recompute' or 'cache', got {mode!r}")
    if split not in valid_splits(g):
        raise PlanError(f"{g.name}: op {split} cannot end a patch stage; valid splits: "
                        f"{valid_splits(g)}")
    layer = layer or layer_schedule(g, fuse_input)
    rows = derive_axis(g, split, 0, grid[0], balance=mode == "cache")
    cols = derive_axis(g, split, 1, grid[1], balance=mode == "cache")
    tl, macs = _stage_timeline(g, split, rows, cols, mode, fuse_input, place)
    live = tl.live()
    if not place:
        live.append(_phase2_lower_bound(g, split))
    op_bytes = [0] * len(g.ops)
    for s, i in enumerate(tl.op_of_step):
        if i >= 0:
            op_bytes[i] = max(op_bytes[i], live[s])
    lower = max(live, default=0)
    placed = tl.place() if place else None
    arena = placed.arena_bytes if placed else lower
    return Schedule(g.name, mode, split, (len(rows.parts), len(cols.parts)), macs,
                    layer.layer_macs, arena, layer.arena_bytes,
                    g.tensors[g.input].size if fuse_input else 0, fuse_input,
                    lower, op_bytes, layer.layer_op_bytes, placed, rows, cols)


def _pixels_mac(g: Graph, op: Op) -> int:
    out = g.tensors[op.output]
    return g.macs(op) // (out.shape[0] * out.shape[1]) if g.macs(op) else 0


def schedule_macs(g: Graph, split: int, rows: AxisRegions, cols: AxisRegions,
                  mode: str) -> int:
    """MACs of a schedule: per patch, each stage op's computed region (recompute: its whole
    region; cache: its new piece), then the rest of the graph once."""
    macs = 0
    for i, op in enumerate(g.ops[:split + 1]):
        r, c = (rows.piece[i], cols.piece[i]) if mode == "cache" else (rows.out[i], cols.out[i])
        macs += _pixels_mac(g, op) * sum(map(_len, r)) * sum(map(_len, c))
    return macs + sum(g.macs(op) for op in g.ops[split + 1:])


def op_macs(g: Graph, s: Schedule) -> list[int]:
    """Per op, its MACs under the schedule (stage ops: summed over the patches, recompute:
    with the recomputed halos; cache: only the new pieces); they sum to s.macs."""
    stage = s.split if s.mode != "layer" else -1
    out = []
    for i, op in enumerate(g.ops):
        if i <= stage and s.rows is not None and s.cols is not None:
            r = s.rows.piece[i] if s.mode == "cache" else s.rows.out[i]
            c = s.cols.piece[i] if s.mode == "cache" else s.cols.out[i]
            out.append(_pixels_mac(g, op) * sum(map(_len, r)) * sum(map(_len, c)))
        else:
            out.append(g.macs(op))
    return out


def _max_area(rs: list[Interval], cs: list[Interval]) -> int:
    return max((_len(r) for r in rs), default=0) * max((_len(c) for c in cs), default=0)


def _is_pointwise_like(op: Op) -> bool:
    return op.kind == "add" or memplan.is_pointwise(op)


def _stage_timeline(g: Graph, split: int, rows: AxisRegions, cols: AxisRegions, mode: str,
                    fuse_input: bool,
                    with_layer_phase: bool = True) -> tuple[_Timeline, int]:
    """Buffers and steps of one patch (standing for all), then the layer phase. Also the
    schedule's MACs."""
    cache = mode == "cache"
    ops = g.ops[:split + 1]
    uses = consumers(g)
    tl = _Timeline()
    out_k = ops[-1].output
    full_in = None if fuse_input else tl.buf(BufferKey.tensor(g.input),
                                              g.tensors[g.input].size)
    full_k = tl.buf(BufferKey.full(out_k), g.tensors[out_k].size)

    def region(t: str) -> tuple[list[Interval], list[Interval]]:
        """The buffer region of tensor t's tile per patch row / column."""
        if cache:
            return rows.ext[t], cols.ext[t]
        return rows.need[t], cols.need[t]

    def chan(t: str) -> int:
        return g.tensors[t].shape[2]

    def reads(i: int, j: int) -> tuple[list[Interval], list[Interval]]:
        if cache:
            return rows.piece_reads[i][j], cols.piece_reads[i][j]
        return rows.reads[i][j], cols.reads[i][j]

    macs = schedule_macs(g, split, rows, cols, mode)

    # caches (cache mode) live through the whole stage
    persistent = [key for key in (full_in, full_k) if key]
    if cache:
        for op in ops[:-1]:
            t = op.output
            hr, hc = rows.halo[t], cols.halo[t]
            if hr:
                width = max(iv[1] for iv in cols.need[t]) + 1
                persistent.append(tl.buf(BufferKey.row_cache(t), hr * width * chan(t)))
            if hc:
                height = max(map(_len, rows.ext[t]))
                persistent.append(tl.buf(BufferKey.col_cache(t), hc * height * chan(t)))

    # step 0: crop the stage input's region from the full input / frame buffer
    start = tl.step("crop input", 0, [tl.buf(
        BufferKey.tile(g.input), _max_area(*region(g.input)) * chan(g.input))])
    tile = {g.input: BufferKey.tile(g.input)}
    last_in_stage = {t: max(j for j in uses[t]) for t in rows.need if uses[t]}
    for i, op in enumerate(ops):
        t_out = op.output
        r_out, c_out = region(t_out)
        touch: list[BufferKey] = []
        # inputs: direct, row-wise, or through a crop temporary
        for j, t in enumerate(op.inputs):
            touch.append(tile[t])
            rr, rc = reads(i, j)
            br, bc = region(t)
            differ = any(r != b for r, b in zip(rc, bc, strict=True) if _len(r))
            if differ and not _is_pointwise_like(op):
                touch.append(tl.buf(BufferKey.crop(i, op, j), _max_area(rr, rc) * chan(t)))
        # output: op K writes straight into its full tensor; the others into their tile.
        # Kernels are called per output row where a row of the destination is not contiguous
        # with the next (a tile narrower than its buffer, a piece inside a cached tile), so no
        # separate output buffer is ever needed.
        if i == len(ops) - 1:
            dest = full_k
        else:
            dest = BufferKey.tile(t_out)
            size = _max_area(r_out, c_out) * chan(t_out)
            for t in op.inputs:
                if last_in_stage.get(t) != i or t == g.input:
                    continue
                if op.kind == "add" and region(t) == (r_out, c_out):
                    tl.alias(dest, tile[t], size)
                    break
            else:
                tl.buf(dest, size)
        touch.append(dest)
        scr = memplan.scratch_bytes(g, op)
        if scr:
            touch.append(tl.buf(BufferKey.scratch(i, op), scr))
        tl.step(op.name, i, touch)
        tile[t_out] = dest
        if cache and i < len(ops) - 1 and (rows.halo[t_out] or cols.halo[t_out]):
            # copy the cached rows/columns into the tile around the new piece; save the halos
            tl.step(f"{op.name}: halo", i, [dest])
    end = len(tl.labels) - 1
    for key in persistent:
        r = tl.owner[key]
        tl.first[r] = start
        tl.last[r] = max(tl.last.get(r, end), end)
    if not with_layer_phase:
        return tl, macs
    # after the stage: layer by layer from op K's full output
    tl.alias(BufferKey.tensor(out_k), full_k, g.tensors[out_k].size)
    have = {out_k}
    if not fuse_input and any(j > split for j in uses[g.input]):  # never (valid split)
        have.add(g.input)
    _layer_phase(tl, g, split + 1, have)
    if g.output == out_k:
        tl.extend(BufferKey.tensor(out_k), len(tl.labels) - 1)
    return tl, macs


# ---- search ---------------------------------------------------------------------------------
def _phase2_lower_bound(g: Graph, split: int) -> int:
    """Bytes live at the worst op after the stage (a lower bound of any schedule split there)."""
    return _phase2_lb(_GraphKey(g), split)


@lru_cache(maxsize=1024)
def _phase2_lb(key: _GraphKey, split: int) -> int:
    g = key.g
    tl = _Timeline()
    out_k = BufferKey.tensor(g.ops[split].output)
    tl.buf(out_k, g.tensors[out_k.name].size)
    tl.step("stage", split, [out_k])
    _layer_phase(tl, g, split + 1, {out_k.name})
    return max(tl.live(), default=0)


def candidates(g: Graph, modes: tuple[str, ...] = ("recompute", "cache"),
               max_grid: int = MAX_GRID) -> list[tuple[int, tuple[int, int], str]]:
    """Every (split, grid, mode) the search considers (grids 1..max_grid per axis, not 1x1)."""
    out = []
    for k in valid_splits(g):
        h, w = g.tensors[g.ops[k].output].shape[:2]
        for p in range(1, min(max_grid, h) + 1):
            for q in range(1, min(max_grid, w) + 1):
                if p * q > 1:
                    out += [(k, (p, q), m) for m in modes]
    return out


def search(g: Graph, budget_bytes: int | str | None = None, max_overhead: float | None = None,
           mode: str = "auto", fuse_input: bool = False,
           max_grid: int = MAX_GRID) -> Schedule:
    """The best schedule over split K, grid p x q (1..max_grid each) and halo mode.

    - no budget: the smallest arena whose MAC overhead is <= max_overhead (if given), ties
      broken by fewer MACs, then by Schedule.speed_key (fewer patch columns, then patches);
    - a budget: the fastest schedule whose arena fits: the fewest MACs, ties by fewer patch
      columns (Schedule.columns: a column split costs more than MACs show), then the smaller
      arena, then fewer patches.
    Patch schedules are only candidates when their arena is below layer by layer's, so the
    answer is never worse than layer by layer (mode "layer" when nothing beats it). A budget
    nothing meets raises PlanError saying what is reachable and what to change.

    Branch and bound: a split whose layer phase alone needs more than the best arena found is
    skipped; exact placements run in order of the cheap lower bound (most bytes live at once)."""
    if mode not in ("auto", "recompute", "cache"):
        raise PlanError(f"mode must be auto, recompute or cache, got {mode!r}")
    modes = ("recompute", "cache") if mode == "auto" else (mode,)
    budget = None if budget_bytes is None else parse_size(budget_bytes)
    layer = layer_schedule(g, fuse_input)
    splits = valid_splits(g)
    p2 = {k: _phase2_lower_bound(g, k) for k in splits}
    cands = []
    for k, grid, m in candidates(g, modes, max_grid):
        bal = m == "cache"
        macs = schedule_macs(g, k, derive_axis(g, k, 0, grid[0], bal),
                             derive_axis(g, k, 1, grid[1], bal), m)
        if max_overhead is None or macs <= layer.layer_macs * (1 + max_overhead) + 1e-9:
            cands.append((k, grid, m, macs))

    def exact(k: int, grid: tuple[int, int], m: str, place: bool = True) -> Schedule:
        return plan_patches(g, k, grid, m, fuse_input, layer, place)

    if budget is None:
        return _smallest(cands, p2, layer, exact) or layer

    def fastest(s: Schedule) -> tuple:
        return s.macs, s.columns, s.arena_bytes, s.patches

    best: Schedule | None = layer if layer.arena_bytes <= budget else None
    cands = [c for c in cands if p2[c[0]] <= budget and (best is None or c[3] <= best.macs)]
    cands.sort(key=lambda c: (c[3], c[1][1], c[0], c[1][0]))
    # groups of equal MACs and columns, fastest first: the first that fits is the answer
    for _, group in itertools.groupby(cands, key=lambda c: (c[3], c[1][1])):
        found = _smallest(list(group), p2, layer, exact, limit=budget)
        if found is not None:
            if best is None or fastest(found) < fastest(best):
                best = found
            break
    if best is not None:
        return best
    smallest = _smallest([(k, grid, m, 0) for k, grid, m in candidates(g, modes, max_grid)],
                         p2, layer, exact) or layer
    msg = (f"{g.name}: no schedule fits a {fmt_bytes(budget)} arena. Layer by layer needs "
           f"{fmt_bytes(layer.arena_bytes)}; the smallest reachable arena is "
           f"{fmt_bytes(smallest.arena_bytes)} ({smallest.describe()})")
    if max_overhead is not None:
        within = search(g, None, max_overhead, mode, fuse_input, max_grid)
        if within.arena_bytes > smallest.arena_bytes:
            msg += (f"; within the {100 * max_overhead:.1f}% MAC-overhead limit it is "
                    f"{fmt_bytes(within.arena_bytes)} (allow more overhead: --max-overhead)")
    msg += (". To fit: lower the input resolution or the width multiplier, move kernels out of "
            "the first stages (receptive-field redistribution), use more patches or another "
            "split, try --mode cache or --fuse-input, or raise the budget.")
    raise PlanError(msg)


def _smallest(cands: list, p2: dict[int, int], layer: Schedule, exact,
              limit: int | None = None) -> Schedule | None:
    """The candidate with the smallest arena below layer by layer's and within limit (if
    given); ties: fewer MACs, then Schedule.speed_key. None when no candidate qualifies.

    Branch and bound: splits in order of their layer phase's lower bound (p2), and within a
    split rough placements in order of (lower bound, MACs, speed key), which never decreases,
    so the first that cannot beat the best found ends the split."""
    cap = layer.arena_bytes - 1 if limit is None else min(limit, layer.arena_bytes - 1)
    best: Schedule | None = None

    def key(s: Schedule) -> tuple:
        return s.arena_bytes, s.macs, s.speed_key

    by_split: dict[int, list] = {}
    for c in cands:
        by_split.setdefault(c[0], []).append(c)
    for k in sorted(by_split, key=p2.__getitem__):
        if p2[k] > (best.arena_bytes if best else cap):
            break
        rough = sorted((exact(kk, grid, m, place=False) for kk, grid, m, _ in by_split[k]),
                       key=lambda s: (s.lower_bound, s.macs, s.speed_key))
        for r in rough:
            if r.lower_bound > cap or (best and (r.lower_bound, r.macs, r.speed_key) >= key(best)):
                break
            s = exact(r.split, r.grid, r.mode)
            if s.arena_bytes <= cap and (best is None or key(s) < key(best)):
                best = s
    return best


# ---- reports --------------------------------------------------------------------------------
def table(g: Graph, s: Schedule) -> str:
    """Per op: output shape, MACs, bytes live layer by layer and under the schedule."""
    stage = s.split if s.mode != "layer" else -1
    head = (f"{'#':>3} {'op':<18} {'output':<13} {'MACs':>12} {'sched MACs':>12} "
            f"{'layer bytes':>12} {'sched bytes':>12}")
    rows = [f"{g.name}: {g.total_macs:,} MACs", head, "-" * len(head)]
    for i, op in enumerate(g.ops):
        macs = g.macs(op)
        if i <= stage and s.rows is not None and s.cols is not None:
            r = s.rows.piece[i] if s.mode == "cache" else s.rows.out[i]
            c = s.cols.piece[i] if s.mode == "cache" else s.cols.out[i]
            smacs = _pixels_mac(g, op) * sum(map(_len, r)) * sum(map(_len, c))
        else:
            smacs = macs
        mark = "*" if i <= stage else " "
        shape = "x".join(map(str, g.tensors[op.output].shape))
        rows.append(f"{i:>3}{mark}{op.kind:<18} {shape:<13} {macs:>12,} {smacs:>12,} "
                    f"{s.layer_op_bytes[i]:>12,} {s.op_bytes[i]:>12,}")
    if stage >= 0:
        rows.append(f"* patch stage ({s.grid[0]}x{s.grid[1]} patches, halo {s.mode}): bytes "
                    "are tiles + op K's full output" + ("" if s.fuse_input else
                                                        " + the full input"))
    rows.append("")
    rows.append(f"schedule: {s.describe()}")
    rows.append(f"layer-by-layer peak: {fmt_bytes(s.layer_peak_bytes)}")
    rows.append(f"arena: {fmt_bytes(s.arena_bytes)}; MAC overhead "
                f"{100 * s.mac_overhead:.2f}%")
    if s.fuse_input:
        rows.append(f"frame buffer (outside the arena): {fmt_bytes(s.frame_bytes)}")
    return "\n".join(rows)


def compare(rows: list[tuple[str, Schedule]], shown: str) -> str:
    """One line per (label, schedule): patch stage, grid, halo mode, where the input lives,
    arena and MACs; '>' marks the schedule the table above shows."""
    head = (f"  {'schedule':<58} {'stage':>9} {'grid':>5} {'halo':<9} {'input':<8} "
            f"{'arena B':>9} {'MACs':>11} {'overhead':>8}")
    out = ["schedules (> = the table above):", head, "  " + "-" * (len(head) - 2)]
    for label, s in rows:
        patched = s.mode != "layer"
        stage = f"0..{s.split}" if patched else "-"
        grid = f"{s.grid[0]}x{s.grid[1]}" if patched else "-"
        halo = s.mode if patched else "-"
        where = "outside" if s.fuse_input else "arena"
        out.append(f"{'>' if label == shown else ' '} {label:<58} {stage:>9} {grid:>5} "
                   f"{halo:<9} {where:<8} {s.arena_bytes:>9,} {s.macs:>11,} "
                   f"{100 * s.mac_overhead:>+7.1f}%")
    out.append("input 'outside': the patch stage reads the frame buffer, which is not in the "
               "arena")
    return "\n".join(out)


def plot_memory(g: Graph, s: Schedule, path, label: str | None = None) -> None:
    """PNG of per-op live memory, layer by layer vs the schedule (cf. MCUNetV2 Figure 1);
    label (e.g. "shipped") names the schedule in the legend."""
    from pathlib import Path

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = list(range(len(g.ops)))
    fig, ax = plt.subplots(figsize=(10, 4.2))
    ax.bar(x, [b / 1024 for b in s.layer_op_bytes], color="#d62728", alpha=0.55,
           label=f"layer by layer (peak {s.layer_peak_bytes / 1024:.0f} KiB)")
    what = ("layer by layer" if s.mode == "layer" else
            f"patch-based, {s.grid[0]}x{s.grid[1]} {s.mode}, ops 0..{s.split}"
            + (", input outside the arena" if s.fuse_input else "")
            + f" (arena {s.arena_bytes / 1024:.0f} KiB, {100 * s.mac_overhead:+.1f}% MACs)")
    if label:
        what = f"{label.split(' (')[0]}: {what}"
    ax.bar(x, [b / 1024 for b in s.op_bytes], color="#1f77b4", alpha=0.8, label=what)
    ax.axhline(s.arena_bytes / 1024, color="#1f77b4", lw=1, ls="--")
    if s.mode != "layer":
        ax.axvspan(-0.5, s.split + 0.5, color="#1f77b4", alpha=0.07)
    ax.set_xlabel("op")
    ax.set_ylabel("live activation memory (KiB)")
    ax.set_title(f"{g.name}: per-op memory")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- a numpy patch executor (the reference for generated patch code) ------------------------
def tile_op(op: Op, rows_out: Interval, cols_out: Interval, in_shape: tuple[int, ...]) -> Op:
    """The op as it runs on one tile: the same kernel with the tile's own padding."""
    from dataclasses import replace
    if op.kind == "add":
        return op
    pt, pb = tile_pads(op, 0, rows_out, in_shape[0])
    pl, pr = tile_pads(op, 1, cols_out, in_shape[1])
    return replace(op, pads=(pt, pl, pb, pr))


def run_schedule(g: Graph, s: Schedule, x):
    """Execute a schedule with the reference kernels, tile by tile, exactly as generated code
    would (recompute: each patch computes its regions from cropped tiles; cache: each op
    computes only its new piece, reading what earlier pieces computed). Checks the planner's
    promises on the way: regions inside their buffers, no pixel computed twice in cache mode,
    nothing read before it was computed. Returns the graph output."""
    import numpy as np

    from patchcam.compiler import reference
    if s.mode == "layer":
        return reference.run(g, x)
    rows, cols = s.rows, s.cols
    assert rows is not None and cols is not None
    ops = g.ops[:s.split + 1]
    full = {g.input: np.asarray(x)}
    done = {g.input: np.ones(np.asarray(x).shape[:2], bool)}
    for op in ops:
        h, w, c = g.tensors[op.output].shape
        full[op.output] = np.zeros((h, w, c), np.int8)
        done[op.output] = np.zeros((h, w), bool)
    cache = s.mode == "cache"
    for a in range(len(rows.parts)):
        for b in range(len(cols.parts)):
            tiles: dict[str, tuple[Interval, Interval, np.ndarray]] = {}
            for i, op in enumerate(ops):
                ro, co = (rows.piece[i][a], cols.piece[i][b]) if cache else \
                    (rows.out[i][a], cols.out[i][b])
                if not _len(ro) or not _len(co):
                    continue
                ins = []
                for j, t in enumerate(op.inputs):
                    rr, cc = ((rows.piece_reads[i][j][a], cols.piece_reads[i][j][b]) if cache
                              else (rows.reads[i][j][a], cols.reads[i][j][b]))
                    br, bc = ((rows.ext[t][a], cols.ext[t][b]) if cache else
                              (rows.need[t][a], cols.need[t][b]))
                    assert br[0] <= rr[0] and rr[1] <= br[1], (op.name, t, rr, br)
                    assert bc[0] <= cc[0] and cc[1] <= bc[1], (op.name, t, cc, bc)
                    src = full[t] if cache or t == g.input else None
                    if src is None:  # recompute: read the tile this patch computed
                        tr, tc, arr = tiles[t]
                        src_arr = arr[rr[0] - tr[0]:rr[1] - tr[0] + 1,
                                      cc[0] - tc[0]:cc[1] - tc[0] + 1]
                    else:
                        assert done[t][rr[0]:rr[1] + 1, cc[0]:cc[1] + 1].all(), \
                            f"{op.name} reads {t} rows {rr} cols {cc} before they exist"
                        src_arr = src[rr[0]:rr[1] + 1, cc[0]:cc[1] + 1]
                    ins.append(src_arr)
                top = tile_op(op, ro, co, g.tensors[op.inputs[0]].shape)
                y = reference.run_op(g, top, ins)
                assert y.shape[:2] == (_len(ro), _len(co)), (op.name, y.shape, ro, co)
                tiles[op.output] = (ro, co, y)
                if cache:
                    assert not done[op.output][ro[0]:ro[1] + 1, co[0]:co[1] + 1].any(), \
                        f"{op.name} computes a pixel twice"
                if cache or i == len(ops) - 1:
                    full[op.output][ro[0]:ro[1] + 1, co[0]:co[1] + 1] = y
                    done[op.output][ro[0]:ro[1] + 1, co[0]:co[1] + 1] = True
    out_k = ops[-1].output
    assert done[out_k].all(), "the patches do not cover op K's output"
    values = {out_k: full[out_k]}
    for op in g.ops[s.split + 1:]:
        values[op.output] = reference.run_op(g, op, [values[n] for n in op.inputs])
    return values[g.output]
