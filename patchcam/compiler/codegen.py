"""C code generator: int8 graph -> `model.h` / `model.c` (docs/design.md §2, §4.3).

The generated model is plain C99 a student can read top to bottom: per op, its weights,
biases, multipliers and shifts as `static const` arrays (flash) under a comment with the op's
shapes and MACs, its parameter struct, then `model_invoke()` calling the runtime kernels
(`firmware/runtime/pc_kernels.h`) in order with arena offsets from `patchcam.compiler.memplan`.
All activations and scratch live in one `static int8_t model_arena[MODEL_ARENA_BYTES]`.

The C text comes from Jinja templates (`patchcam/templates/`); this module only prepares
values. Everything that turns a generated model into a program (runtime sources, include
directories) is listed here once, for the host build and the Arm builds alike.

    files = generate(graph, "build/mymodel")       # -> {"model.h": Path, "model.c": Path}
    files = generate(graph, "build/mymodel", schedule=patchplan.search(graph))

With a patch schedule (`patchplan`, recompute or cache mode), model_invoke() runs ops
0..K patch by patch: a `static const pc_tile_t model_tiles[patch][op]` table holds each op's
tile geometry (windows read and written, pads at the image border) and a loop calls the
tile helpers of `firmware/runtime/pc_patch.h`; ops K+1.. then run layer by layer. Every
buffer sits where the planner placed it (`Schedule.placement`, looked up by
`placement.BufferKey`), so the declared arena is the planner's `arena_bytes`. A schedule with
`fuse_input` reads each patch's input window from an input source
(`model_invoke_source(&source)`, `pc_input_source_t`: the app loop preprocesses each window
from the camera frame) or from a caller's buffer (`model_invoke_frame(frame)`), so the full
input is not in the arena.

In AddressSanitizer host builds every step is fenced into the arena bytes it may touch: one
row of `model_op_regions` per `placement.CheckPoint` (an op, the stage's input copy, a halo
step), selected by `MODEL_CHECK_OP(row)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from patchcam.compiler import ctext, memplan, patchplan, records
from patchcam.compiler.ir import Graph, Op
from patchcam.compiler.placement import Buffer, BufferKey, CheckPoint, Placement, Region, fence_rows
from patchcam.compiler.qparams import AddParams, MacParams, MeanParams, PoolParams, op_params
from patchcam.paths import REPO

RUNTIME_DIR = REPO / "firmware" / "runtime"

SUPPORTED = ("conv2d", "depthwise_conv2d", "fully_connected", "add", "avg_pool2d", "max_pool2d",
             "mean")


class CodegenError(ValueError):
    """The graph uses something the C runtime does not implement."""


def runtime_sources() -> list[Path]:
    """The runtime's C files: compile these with the generated model.c."""
    return sorted(RUNTIME_DIR.glob("*.c"))


def runtime_include_dirs() -> list[Path]:
    """Include directories for the runtime and the generated model (add the model's folder)."""
    return [RUNTIME_DIR]


@dataclass
class _Array:
    ctype: str
    name: str
    values: np.ndarray
    per_line: int = 16

    @property
    def length(self) -> int:
        return int(self.values.size)

    @property
    def lines(self) -> list[str]:
        fmt = (lambda v: f"0x{v:08x}") if self.ctype == "uint32_t" else _c_int
        flat = [fmt(v) for v in self.values.reshape(-1).tolist()]
        width = max(len(v) for v in flat)
        rows = [flat[i:i + self.per_line] for i in range(0, len(flat), self.per_line)]
        return [", ".join(v.rjust(width) for v in row) + "," for row in rows]


@dataclass
class _OpView:
    """What the template needs to print one op."""
    index: int
    cname: str
    title: str  # comment above the op's data
    short: str  # comment above the call
    params_type: str
    fields: list[tuple[str, str]]
    fn: str
    args: list[str]
    regions: list[Region]  # its fence (check point CheckPoint.op(index)), 4 regions
    arrays: list[_Array] = field(default_factory=list)
    quant: str = ""
    scratch_check: str = ""

    patch_call: str = ""  # in the patch stage: the call of the tile helper (pc_patch.h)
    check: int = -1  # its MODEL_CHECK_OP row (CheckPoint.op(index))

    @property
    def call(self) -> str:
        return _wrap_call(self.fn, self.args, indent=4)


def render(g: Graph, plan: memplan.MemoryPlan | None = None,
           schedule: patchplan.Schedule | None = None) -> dict[str, str]:
    """The generated files as text: {"model.h": ..., "model.c": ...}. With a patch schedule
    (not mode "layer"), ops 0..schedule.split run patch by patch in the schedule's arena."""
    unsupported = [op for op in g.ops if op.kind not in SUPPORTED]
    if unsupported:
        op = unsupported[0]
        raise CodegenError(f"{g.name}: op '{op.name}' has kind '{op.kind}', which the C code "
                           f"generator does not support; supported: {', '.join(SUPPORTED)}")
    x, y = g.tensors[g.input], g.tensors[g.output]
    if len(x.shape) != 3:
        raise CodegenError(f"{g.name}: model input must be HxWxC, got {x.shape}")
    stage = None
    if schedule is not None and schedule.mode != "layer":
        if plan is not None:
            raise CodegenError("pass either a layer-by-layer plan or a patch schedule, not both")
        plan = _schedule_plan(g, schedule)
    plan = plan or memplan.plan_layers(g)
    widened = records.chosen(g)
    ops = [_op_view(g, plan, i, op, i in widened) for i, op in enumerate(g.ops)]
    for v in ops:
        v.check = CheckPoint.op(v.index).row(len(g.ops))
    if schedule is not None and schedule.mode != "layer":
        stage = _stage_view(g, schedule, ops)
    fences = {CheckPoint.op(v.index): v.regions for v in ops} | (stage.fences if stage else {})
    regions = fence_rows(fences, len(g.ops))
    ctx = {
        "g": g, "ops": ops, "plan": plan, "align": memplan.ALIGN,
        "guard": "PATCHCAM_MODEL_H",
        "input_shape": x.shape, "input_bytes": x.size, "output_bytes": y.size,
        "input_scale": _c_float(x.scale), "input_zero_point": x.zero_point,
        "output_scale": _c_float(y.scale), "output_zero_point": y.zero_point,
        "macs": g.total_macs,
        "param_bytes": sum(a.values.nbytes for o in ops for a in o.arrays),
        "input_offset": plan.offset(g.input), "output_offset": plan.offset(g.output),
        "fused": bool(stage and stage.fused),
        "table": _table(g, plan),
        "stage": stage, "regions": regions,
        "layer_ops": ops[stage.split + 1:] if stage else ops,
        "arena_what": (f"patch-based: ops 0..{stage.split} in {stage.grid[0]}x{stage.grid[1]} "
                       "patches, "
                       + ("halos recomputed" if schedule.mode == "recompute" else
                          "halos cached (row / column caches, no recompute)")
                       + f" ({100 * schedule.mac_overhead:+.1f}% MACs);"
                       + ("\n * the input is read window by window from an input source (not "
                          "in the arena);" if schedule.fuse_input else "")
                       + f"\n * layer by layer would need {schedule.layer_peak_bytes:,} bytes"
                       if stage and schedule else "layer by layer"),
    }
    env = ctext.environment()
    return {name: env.get_template(f"{name}.j2").render(ctx) for name in ("model.h", "model.c")}


def generate(g: Graph, out_dir: str | Path, plan: memplan.MemoryPlan | None = None,
             schedule: patchplan.Schedule | None = None) -> dict[str, Path]:
    """Write model.h and model.c into out_dir (created); return their paths by name.
    Files whose text did not change are left untouched (so builds stay incremental).
    schedule: a patchplan schedule to generate patch-based code for (see render)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in render(g, plan, schedule).items():
        path = out / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        paths[name] = path
    return paths


# ---- patch schedules ----------------------------------------------------------------------
@dataclass
class _StageView:
    """What the template needs to print the patch stage."""
    split: int
    grid: tuple[int, int]
    ops: list[_OpView]
    tiles: list[list[str]]  # per patch: one C initializer per stage op
    patch_notes: list[str]  # per patch: a comment (its place in the grid, op K's tile)
    input_windows: list[str]  # per patch: the window of the full input it crops
    input_channels: int
    input_full: int  # arena offsets (input_full -1: read from the input source)
    input_tile: int
    copy_check: int  # the MODEL_CHECK_OP row of the input copy
    copy_call: str = ""  # not fused: the copy of the input window (fused: the template's
    # source->read call)
    fused: bool = False  # the input windows are read from an input source
    mode: str = "recompute"
    halos: list[list[str]] = field(default_factory=list)  # cache: per patch, per halo op
    halo_ops: int = 0  # cache: the number of halo steps (ops whose output has a halo)
    # the fences of the input copy and the halo steps (the ops' are in their _OpView)
    fences: dict[CheckPoint, list[Region]] = field(default_factory=dict)


def _placement(g: Graph, s: patchplan.Schedule) -> Placement:
    if s.placement is None or not s.placement.buffers:
        raise CodegenError(f"{g.name}: the schedule has no buffer placement (place=False?)")
    return s.placement


def _schedule_plan(g: Graph, s: patchplan.Schedule) -> memplan.MemoryPlan:
    """The schedule's placement spelled as a MemoryPlan (what _op_view and the tables read):
    the full input, tiles (for tensors inside the stage), op K's full output and the layer
    phase's tensors, each at the offset the planner gave its storage."""
    if s.mode not in ("recompute", "cache"):
        raise CodegenError(f"{g.name}: cannot generate code for a '{s.mode}' schedule")
    placed = _placement(g, s)
    stage_outs = {op.output for op in g.ops[:s.split]}
    tensors: dict[str, Buffer] = {}
    for name, t in g.tensors.items():
        # a fused input (read from the frame buffer) is in the arena only as its tile
        as_tile = name in stage_outs or (s.fuse_input and name == g.input)
        key = BufferKey.tile(name) if as_tile else BufferKey.tensor(name)
        if key not in placed:
            continue
        b = placed[key]
        size = b.size if as_tile else t.size
        tensors[name] = Buffer(BufferKey.tensor(name), size, b.first, b.last, b.offset)
    scratch = []
    for i, op in enumerate(g.ops):
        key = BufferKey.scratch(i, op)
        scratch.append(placed[key] if key in placed else None)
    aliases = {}
    for op in g.ops[s.split + 1:]:
        out = placed.owners.get(BufferKey.tensor(op.output))
        for t in op.inputs:
            if t != op.output and placed.owners.get(BufferKey.tensor(t)) == out:
                aliases[op.output] = t
    return memplan.MemoryPlan(g.name, s.arena_bytes, tensors, scratch, list(s.op_bytes),
                              sorted(placed.buffers.values(), key=lambda b: b.offset), aliases)


def _window(rows: tuple[int, int], cols: tuple[int, int], buf_rows: tuple[int, int],
            buf_cols: tuple[int, int]) -> tuple[int, int, int, int, int]:
    """(y, x, h, w, stride) of the region rows x cols inside a buffer holding buf_rows x
    buf_cols of the same tensor."""
    assert buf_rows[0] <= rows[0] <= rows[1] <= buf_rows[1], (rows, buf_rows)
    assert buf_cols[0] <= cols[0] <= cols[1] <= buf_cols[1], (cols, buf_cols)
    return (rows[0] - buf_rows[0], cols[0] - buf_cols[0], rows[1] - rows[0] + 1,
            cols[1] - cols[0] + 1, buf_cols[1] - buf_cols[0] + 1)


def _c_window(w: tuple[int, ...]) -> str:
    if max(w) > 32767:
        raise CodegenError(f"tile geometry {w} does not fit int16_t")
    return "{ " + ", ".join(map(str, w)) + " }"


def _stage_view(g: Graph, s: patchplan.Schedule, views: list[_OpView]) -> _StageView:
    """The per-patch tile table and the tile-helper calls of ops 0..K (recompute or cache mode)."""
    rows, cols = s.rows, s.cols
    assert rows is not None and cols is not None
    k = s.split
    ops = g.ops[:k + 1]
    out_k = ops[-1].output
    hk, wk = g.tensors[out_k].shape[:2]
    placed = _placement(g, s)
    n_ops = len(g.ops)

    def region(key: BufferKey) -> Region:
        return (placed.offset(key), placed.size(key))

    def arena(key: BufferKey | None) -> str:
        return "NULL" if key is None else f"ARENA({placed.offset(key)})"

    tile_of = BufferKey.tile  # the stage input too: its tile is cropped from the full input
    full_k = BufferKey.full(out_k)
    cache = s.mode == "cache"
    # recompute: op i computes out[i], a tensor's tile holds need[t], op i reads reads[i][j];
    # cache: op i computes its piece[i] inside the extended tile ext[t] (halo + piece) and
    # reads piece_reads[i][j] (patchplan.AxisRegions)
    computed = (rows.piece, cols.piece) if cache else (rows.out, cols.out)
    held = (rows.ext, cols.ext) if cache else (rows.need, cols.need)
    read = (rows.piece_reads, cols.piece_reads) if cache else (rows.reads, cols.reads)
    tiles: list[list[str]] = []
    notes: list[str] = []
    input_windows: list[str] = []
    halos: list[list[str]] = []  # cache mode: per patch, per op with a halo
    needs_crop = [False] * len(ops)
    for a in range(len(rows.parts)):
        for b in range(len(cols.parts)):
            rk, ck = computed[0][k][a], computed[1][k][b]
            notes.append(f"patch {len(notes)} (row {a}, column {b}): op {k} rows "
                         f"{rk[0]}..{rk[1]}, columns {ck[0]}..{ck[1]}")
            h_in, w_in = g.tensors[g.input].shape[:2]
            er, ec = held[0][g.input][a], held[1][g.input][b]
            input_windows.append(_c_window(  # cache mode: empty when no new input is read
                _window(er, ec, (0, h_in - 1), (0, w_in - 1)) if _ilen(er) and _ilen(ec)
                else (0, 0, 0, 0, w_in)))
            row = []
            halo_row = []
            for i, op in enumerate(ops):
                ro, co = computed[0][i][a], computed[1][i][b]
                empty = _ilen(ro) == 0 or _ilen(co) == 0  # cache mode: nothing new here
                wins = []
                for j, t in enumerate(op.inputs):
                    rr, rc = read[0][i][j][a], read[1][i][j][b]
                    if empty:
                        win = (0, 0, 0, 0, 0)
                    elif _ilen(rr) and _ilen(rc):
                        win = _window(rr, rc, held[0][t][a], held[1][t][b])
                    else:  # a piece of padding only (a padded 1x1 conv's border row)
                        win = (0, 0, _ilen(rr), _ilen(rc), _ilen(rc))
                    if win[3] != win[4] and not (op.kind == "add" or memplan.is_pointwise(op)):
                        needs_crop[i] = True
                    wins.append(win)
                if empty:
                    out = (0, 0, 0, 0, 0)
                elif i == k:  # into op K's full output tensor
                    out = _window(ro, co, (0, hk - 1), (0, wk - 1))
                else:
                    er, ec = held[0][op.output][a], held[1][op.output][b]
                    assert cache or (ro, co) == (er, ec)
                    out = _window(ro, co, er, ec)
                if cache and i < k and _has_halo(s, op.output):
                    halo_row.append(_halo_windows(g, s, i, a, b))
                in_shape = g.tensors[op.inputs[0]].shape
                pads = (0, 0) if op.kind == "add" else (
                    patchplan.tile_pads(op, 0, ro, in_shape[0])[0],
                    patchplan.tile_pads(op, 1, co, in_shape[1])[0])
                wins += [(0, 0, 0, 0, 0)] * (2 - len(wins))
                row.append("{ { " + ", ".join(map(_c_window, wins)) + " }, " + _c_window(out)
                           + f", {pads[0]}, {pads[1]} }}")
            tiles.append(row)
            halos.append(halo_row)

    fences: dict[CheckPoint, list[Region]] = {}
    n_halos = 0
    for i, op in enumerate(ops):
        v = views[i]
        crop_key = BufferKey.crop(i, op, 0)
        crop_at = crop_key if crop_key in placed else None
        if (crop_at is not None) != needs_crop[i]:
            raise CodegenError(f"{g.name}: op {i} ({op.name}): the planner's crop buffer "
                               f"({crop_at is not None}) disagrees with the tile geometry "
                               f"({needs_crop[i]})")
        ins = [arena(tile_of(t)) for t in op.inputs]
        dest = full_k if i == k else tile_of(op.output)
        out = arena(dest)
        crop = arena(crop_at)
        scr_key = BufferKey.scratch(i, op)
        scr_at = scr_key if scr_key in placed else None
        tile = f"&tile[{i}]"
        if op.kind in ("conv2d", "depthwise_conv2d"):
            fn = "pc_patch_" + v.fn.removeprefix("pc_")
            args = [f"&{v.cname}_params", tile, f"&{v.cname}_quant", ins[0], v.args[3],
                    f"{v.cname}_bias", out]
            if op.kind == "conv2d":
                assert scr_at is not None
                args.append(arena(scr_at))
            if fn != "pc_patch_pointwise_conv2d_s8":
                args.append(crop)
        elif op.kind == "add":
            fn = "pc_patch_add_s8"
            args = [f"&{v.cname}_params", str(g.tensors[op.output].shape[2]), tile, *ins, out]
        else:
            fn = "pc_patch_" + v.fn.removeprefix("pc_")
            args = [f"&{v.cname}_params", tile, ins[0], out, crop]
        v.patch_call = _wrap_call(fn, args, indent=8)
        if cache and i < k and _has_halo(s, op.output):
            # the cached halo rows / columns around the new piece; save the new halos
            t = op.output
            caches = [c if c in placed else None
                      for c in (BufferKey.row_cache(t), BufferKey.col_cache(t))]
            check = CheckPoint.halo(n_halos)  # its column of model_halos, too
            n_halos += 1
            v.patch_call += f"\n        MODEL_CHECK_OP({check.row(n_ops)});\n        " + \
                _wrap_call("pc_patch_halo", [f"&model_halos[patch][{check.index}]",
                                             str(g.tensors[t].shape[2]), arena(tile_of(t)),
                                             *map(arena, caches)], indent=8)
            fences[check] = _fence([region(tile_of(t))] +
                                   [region(c) for c in caches if c is not None])
        # the fence: the tile buffers (whole, as placed), op K's full output, crop, scratch
        v.regions = _fence([region(tile_of(t)) for t in op.inputs] + [region(dest)] +
                           [region(b) for b in (crop_at, scr_at) if b is not None])
    tin = tile_of(g.input)
    if s.fuse_input:  # the input source is outside the arena: only the tile is fenced
        full_at, copy = -1, ""
        copy_fence = [region(tin)]
    else:
        full_in = BufferKey.tensor(g.input)
        full_at = placed.offset(full_in)
        copy_fence = [region(full_in), region(tin)]
        copy = _wrap_call("pc_patch_copy", [arena(full_in), "&model_input_windows[patch]",
                                            str(g.tensors[g.input].shape[2]), arena(tin)],
                          indent=8)
    copy_check = CheckPoint.input_copy()
    fences[copy_check] = _fence(copy_fence)
    return _StageView(k, s.grid, views[:k + 1], tiles, notes, input_windows,
                      g.tensors[g.input].shape[2], full_at, placed.offset(tin),
                      copy_check.row(n_ops), copy, s.fuse_input, s.mode, halos, n_halos,
                      fences)


def _fence(regions: list[Region]) -> list[Region]:
    """A row of model_op_regions: up to 4 (offset, bytes) regions, padded with (0, 0)."""
    assert len(regions) <= 4, regions
    return regions + [(0, 0)] * (4 - len(regions))


def _ilen(iv: tuple[int, int]) -> int:
    return max(0, iv[1] - iv[0] + 1)


def _has_halo(s: patchplan.Schedule, t: str) -> bool:
    assert s.rows is not None and s.cols is not None
    return bool(s.rows.halo[t] or s.cols.halo[t])


def _halo_windows(g: Graph, s: patchplan.Schedule, i: int, a: int, b: int) -> str:
    """The pc_halo_t of op i's output tile t for patch (a, b), cache mode. The tile holds
    ext rows x ext columns; op i has just written its piece. The row cache holds the last
    `hr` rows of t above the current patch row (full width, bottom-aligned: cache row j is
    tensor row lo - hr + j, lo = the piece's first row), the column cache the last `hc`
    columns of the previous patch's tile (its ext rows, right-aligned). Order (pc_patch_halo):
    row cache -> the rows above the piece (piece columns); column cache -> the columns left
    of the piece (all rows, the corner included); then the tile's last rows (piece columns)
    -> row cache and its last columns (all rows) -> column cache, for the next patches."""
    rows, cols = s.rows, s.cols
    assert rows is not None and cols is not None
    t = g.ops[i].output
    hr, hc = rows.halo[t], cols.halo[t]
    er, ec = rows.ext[t][a], cols.ext[t][b]
    pr, pc = rows.piece[i][a], cols.piece[i][b]
    width = max(iv[1] for iv in cols.need[t]) + 1  # the row cache's, as the planner sizes it
    tile_w = _ilen(ec)
    none = (0, 0, 0, 0, 0)
    n = pr[0] - er[0]  # rows above the piece, from the row cache
    rc = ((hr - n, pc[0], n, _ilen(pc), width), (0, pc[0] - ec[0], n, _ilen(pc), tile_w)) \
        if n > 0 and _ilen(pc) else (none, none)
    m = pc[0] - ec[0]  # columns left of the piece, from the column cache
    cc = ((0, hc - m, _ilen(er), m, hc), (0, 0, _ilen(er), m, tile_w)) \
        if m > 0 and _ilen(er) else (none, none)
    keep = min(hr, _ilen(er))  # the tile's last rows -> the row cache (piece columns)
    rs = ((_ilen(er) - keep, pc[0] - ec[0], keep, _ilen(pc), tile_w),
          (hr - keep, pc[0], keep, _ilen(pc), width)) if keep and _ilen(pc) else (none, none)
    keep = min(hc, tile_w)  # its last columns -> the column cache (all rows)
    cs = ((0, tile_w - keep, _ilen(er), keep, tile_w), (0, hc - keep, _ilen(er), keep, hc)) \
        if keep and _ilen(er) else (none, none)
    return "{ " + ", ".join(_c_window(w) for pair in (rc, cc, rs, cs) for w in pair) + " }"


# ---- per-op preparation --------------------------------------------------------------------
def _op_view(g: Graph, plan: memplan.MemoryPlan, i: int, op: Op, widened: bool) -> _OpView:
    """widened: op's weights go to flash as pair records (records.chosen)."""
    prefix = f"op{i}_"  # a letter first: the name's own characters follow, 40 at most
    cname = ctext.c_identifier(prefix + op.name)[:len(prefix) + 40]
    x = g.tensors[op.inputs[0]]
    out = g.tensors[op.output]
    p = op_params(g, op)
    arena = [f"ARENA({plan.offset(n)})" for n in op.inputs]
    out_arg = f"ARENA({plan.offset(op.output)})"
    shapes = f"{_shape(x.shape)} -> {_shape(out.shape)}"
    macs = g.macs(op)
    k = f"{op.kernel[0]}x{op.kernel[1]}"
    geometry = f"{k} stride {op.stride[0]}" + (f" pads {op.pads}" if any(op.pads) else "")
    title = f"{op.kind} '{op.name}'"
    regions = plan.op_regions(g, i)
    regions += [(0, 0)] * (4 - len(regions))

    if op.kind in ("conv2d", "depthwise_conv2d"):
        assert isinstance(p, MacParams)
        pointwise = memplan.is_pointwise(op)
        in_place = op.kind == "depthwise_conv2d" and op.output in plan.aliases
        fn = {"depthwise_conv2d": "pc_depthwise_conv2d_s8",
              "conv2d": "pc_pointwise_conv2d_s8" if pointwise else "pc_conv2d_s8"}[op.kind]
        where = " (in place)" if in_place else ""
        v = _OpView(i, cname,
                    f"{title}: {geometry}, {shapes}, {op.activation}, {macs:,} MACs{where}",
                    f"{fn.removeprefix('pc_').removesuffix('_s8')} {k}/{op.stride[0]}, {shapes}"
                    f"{where}", "pc_conv_params_t", _conv_fields(x.shape, out.shape, op, p), fn,
                    [], regions, quant=f"{cname}_quant")
        v.arrays = _mac_arrays(cname, op, p)
        v.args = [f"&{cname}_params", f"&{cname}_quant", arena[0], f"{cname}_filter",
                  f"{cname}_bias", out_arg]
        if widened:  # the weights in flash as pair records instead of the int8 filter
            v.arrays[0] = _Array("uint32_t", f"{cname}_records", records.pair_records(op, p), 8)
            v.fields.append(("pair_records", f"{cname}_records"))
            v.args[3] = "NULL"
        if in_place:  # the output over the input, a ring of output rows as scratch
            if plan.offset(op.inputs[0]) != plan.offset(op.output):
                raise CodegenError(f"{g.name}: op {i} ({op.name}) runs in place but its input "
                                   "and output are not at one offset")
            s = plan.scratch[i]
            v.fn = "pc_depthwise_conv2d_s8_in_place"
            v.args = [*v.args[:5], f"ARENA({s.offset})" if s else "NULL"]
            rows = memplan.dw_in_place_rows(x.shape, out.shape, op.kernel[0], op.stride[0],
                                             op.pads[0])
            v.scratch_check = (f"PC_DEPTHWISE_CONV2D_S8_IN_PLACE_BUFFER_SIZE({rows}, "
                               f"{out.shape[1]}, {out.shape[2]}) <= {s.size if s else 0}")
        if op.kind == "conv2d":
            s = plan.scratch[i]
            v.args.append(f"ARENA({s.offset})")
            macro = ("PC_POINTWISE_CONV2D_S8_BUFFER_SIZE({c})" if pointwise else
                     "PC_CONV2D_S8_BUFFER_SIZE({kh}, {kw}, {c})").format(
                         kh=op.kernel[0], kw=op.kernel[1], c=x.shape[2])
            v.scratch_check = f"{macro} <= {s.size}"
        return v
    if op.kind == "fully_connected":
        assert isinstance(p, MacParams)
        n, kk = op.weights.shape
        fields = [("in_features", str(kk)), ("out_features", str(n)),
                  ("input_offset", str(p.input_offset)), ("output_offset", str(p.output_offset)),
                  ("multiplier", str(int(p.multipliers[0]))), ("shift", str(int(p.shifts[0]))),
                  ("act_min", str(p.act_min)), ("act_max", str(p.act_max))]
        v = _OpView(i, cname, f"{title}: {kk} -> {n}, {op.activation}, {macs:,} MACs",
                    f"fully_connected {kk} -> {n}", "pc_fc_params_t", fields,
                    "pc_fully_connected_s8", [], regions)
        v.arrays = _mac_arrays(cname, op, p, per_channel=False)
        v.args = [f"&{cname}_params", arena[0], f"{cname}_filter", f"{cname}_bias", out_arg]
        return v
    if op.kind == "add":
        assert isinstance(p, AddParams)
        fields = [("size", str(out.size))] + [
            (f, str(getattr(p, f))) for f in (
                "input1_offset", "input2_offset", "output_offset", "left_shift",
                "input1_multiplier", "input1_shift", "input2_multiplier", "input2_shift",
                "output_multiplier", "output_shift", "act_min", "act_max")]
        where = " (in place)" if op.output in plan.aliases else ""
        return _OpView(i, cname, f"{title}: {_shape(out.shape)}, {op.activation}{where}",
                       f"add {_shape(out.shape)}{where}", "pc_add_params_t", fields, "pc_add_s8",
                       [f"&{cname}_params", arena[0], arena[1], out_arg], regions)
    if op.kind == "mean":  # imported .tflite MEAN (firmware/runtime/pc_mean.c)
        assert isinstance(p, MeanParams)
        fields = [("input", _dims(x.shape)), ("count", str(p.count)),
                  ("input_offset", str(p.input_offset)), ("output_offset", str(p.output_offset)),
                  ("multiplier", str(p.multiplier)), ("shift", str(p.shift)),
                  ("act_min", str(p.act_min)), ("act_max", str(p.act_max))]
        return _OpView(i, cname, f"{title}: over {_shape(x.shape[:2])}, {shapes}",
                       f"mean {shapes}", "pc_mean_params_t", fields, "pc_mean_s8",
                       [f"&{cname}_params", arena[0], out_arg], regions)
    assert isinstance(p, PoolParams)
    fn = f"pc_{op.kind}_s8"
    fields = [("input", _dims(x.shape)), ("output", _dims(out.shape)),
              ("kernel_h", str(op.kernel[0])), ("kernel_w", str(op.kernel[1])),
              ("stride_h", str(op.stride[0])), ("stride_w", str(op.stride[1])),
              ("pad_top", str(op.pads[0])), ("pad_left", str(op.pads[1])),
              ("act_min", str(p.act_min)), ("act_max", str(p.act_max))]
    return _OpView(i, cname, f"{title}: {geometry}, {shapes}", f"{op.kind} {k}, {shapes}",
                   "pc_pool_params_t", fields, fn, [f"&{cname}_params", arena[0], out_arg],
                   regions)


def _conv_fields(xs: tuple, ys: tuple, op: Op, p: MacParams) -> list[tuple[str, str]]:
    return [("input", _dims(xs)), ("output", _dims(ys)),
            ("kernel_h", str(op.kernel[0])), ("kernel_w", str(op.kernel[1])),
            ("stride_h", str(op.stride[0])), ("stride_w", str(op.stride[1])),
            ("pad_top", str(op.pads[0])), ("pad_left", str(op.pads[1])),
            ("input_offset", str(p.input_offset)), ("output_offset", str(p.output_offset)),
            ("act_min", str(p.act_min)), ("act_max", str(p.act_max))]


def _mac_arrays(cname: str, op: Op, p: MacParams, per_channel: bool = True) -> list[_Array]:
    arrays = [_Array("int8_t", f"{cname}_filter", np.asarray(op.weights, np.int8)),
              _Array("int32_t", f"{cname}_bias", np.asarray(op.bias, np.int32), 8)]
    if per_channel:
        arrays += [_Array("int32_t", f"{cname}_multiplier", np.asarray(p.multipliers), 8),
                   _Array("int32_t", f"{cname}_shift", np.asarray(p.shifts), 16)]
    return arrays


def _table(g: Graph, plan: memplan.MemoryPlan) -> list[str]:
    rows = [f"{'#':>3}  {'op':<22} {'kernel':<7} {'input':<12} {'output':<12} {'MACs':>12} "
            f"{'out @ arena':>14} {'live bytes':>11}"]
    for i, op in enumerate(g.ops):
        x, y = g.tensors[op.inputs[0]], g.tensors[op.output]
        k = "" if op.kind in ("add", "fully_connected") else \
            f"{op.kernel[0]}x{op.kernel[1]}/{op.stride[0]}"
        rows.append(f"{i:>3}  {op.kind:<22} {k:<7} {_shape(x.shape):<12} {_shape(y.shape):<12} "
                    f"{g.macs(op):>12,} {plan.offset(op.output):>14} {plan.live_bytes[i]:>11,}")
    return rows


# ---- C spelling ---------------------------------------------------------------------------
def _shape(s: tuple) -> str:
    return "x".join(map(str, s))


def _dims(s: tuple) -> str:
    return "{ " + ", ".join(map(str, s)) + " }"


def _c_int(v: int) -> str:
    return "INT32_MIN" if v == -(2**31) else str(v)


def _c_float(v: float) -> str:
    return np.format_float_scientific(np.float32(v), unique=True, exp_digits=2) + "f"


def _wrap_call(fn: str, args: list[str], indent: int, width: int = 100) -> str:
    """fn(a, b, ...); wrapped under the opening parenthesis when longer than width."""
    lines, line = [], f"{fn}("
    pad = " " * (indent + len(fn) + 1)
    for j, a in enumerate(args):
        piece = a + (");" if j == len(args) - 1 else ",")
        if len(line) + len(piece) + 1 + (indent if not lines else 0) > width and \
                not line.endswith("("):
            lines.append(line.rstrip())
            line = pad
        line += piece if line.endswith("(") or line == pad else " " + piece
    lines.append(line)
    return "\n".join(lines)
