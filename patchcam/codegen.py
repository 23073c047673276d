"""C code generator: int8 graph -> `model.h` / `model.c` (DESIGN §2, §4.3).

The generated model is plain C99 a student can read top to bottom: per op, its weights,
biases, multipliers and shifts as `static const` arrays (flash) under a comment with the op's
shapes and MACs, its parameter struct, then `model_invoke()` calling the runtime kernels
(`firmware/runtime/pc_kernels.h`) in order with arena offsets from `patchcam.memplan`.
All activations and scratch live in one `static int8_t model_arena[MODEL_ARENA_BYTES]`.

The C text comes from Jinja templates (`patchcam/templates/`); this module only prepares
values. Everything that turns a generated model into a program (runtime sources, include
directories) is listed here once, for the host build and the Arm builds alike.

    files = generate(graph, "build/mymodel")       # -> {"model.h": Path, "model.c": Path}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from patchcam import memplan
from patchcam.ir import Graph, Op
from patchcam.qparams import AddParams, MacParams, PoolParams, op_params

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DIR = ROOT / "firmware" / "runtime"
TEMPLATES = Path(__file__).resolve().parent / "templates"
SUPPORTED = ("conv2d", "depthwise_conv2d", "fully_connected", "add", "avg_pool2d", "max_pool2d")


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
        flat = [_c_int(v) for v in self.values.reshape(-1).tolist()]
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
    regions: list[tuple[int, int]]
    arrays: list[_Array] = field(default_factory=list)
    quant: str = ""
    scratch_check: str = ""

    @property
    def call(self) -> str:
        return _wrap_call(self.fn, self.args, indent=4)


def render(g: Graph, plan: memplan.MemoryPlan | None = None) -> dict[str, str]:
    """The generated files as text: {"model.h": ..., "model.c": ...}."""
    unsupported = [op for op in g.ops if op.kind not in SUPPORTED]
    if unsupported:
        op = unsupported[0]
        raise CodegenError(f"{g.name}: op '{op.name}' has kind '{op.kind}', which the C code "
                           f"generator does not support; supported: {', '.join(SUPPORTED)}")
    plan = plan or memplan.plan_layers(g)
    ops = [_op_view(g, plan, i, op) for i, op in enumerate(g.ops)]
    x, y = g.tensors[g.input], g.tensors[g.output]
    if len(x.shape) != 3:
        raise CodegenError(f"{g.name}: model input must be HxWxC, got {x.shape}")
    ctx = {
        "g": g, "ops": ops, "plan": plan, "align": memplan.ALIGN,
        "name_str": g.name.replace("\\", "\\\\").replace('"', '\\"'),
        "guard": "PATCHCAM_MODEL_H",
        "input_shape": x.shape, "input_bytes": x.size, "output_bytes": y.size,
        "input_scale": _c_float(x.scale), "input_zero_point": x.zero_point,
        "output_scale": _c_float(y.scale), "output_zero_point": y.zero_point,
        "macs": g.total_macs,
        "param_bytes": sum(a.values.nbytes for o in ops for a in o.arrays),
        "input_offset": plan.offset(g.input), "output_offset": plan.offset(g.output),
        "table": _table(g, plan),
    }
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    return {name: env.get_template(f"{name}.j2").render(ctx) for name in ("model.h", "model.c")}


def generate(g: Graph, out_dir: str | Path,
             plan: memplan.MemoryPlan | None = None) -> dict[str, Path]:
    """Write model.h and model.c into out_dir (created); return their paths by name.
    Files whose text did not change are left untouched (so builds stay incremental)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in render(g, plan).items():
        path = out / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        paths[name] = path
    return paths


# ---- per-op preparation --------------------------------------------------------------------
def _op_view(g: Graph, plan: memplan.MemoryPlan, i: int, op: Op) -> _OpView:
    cname = f"op{i}_" + re.sub(r"\W", "_", op.name, flags=re.ASCII)[:40]
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
        fn = {"depthwise_conv2d": "pc_depthwise_conv2d_s8",
              "conv2d": "pc_pointwise_conv2d_s8" if pointwise else "pc_conv2d_s8"}[op.kind]
        v = _OpView(i, cname, f"{title}: {geometry}, {shapes}, {op.activation}, {macs:,} MACs",
                    f"{fn.removeprefix('pc_').removesuffix('_s8')} {k}/{op.stride[0]}, {shapes}",
                    "pc_conv_params_t", _conv_fields(x.shape, out.shape, op, p), fn, [],
                    regions, quant=f"{cname}_quant")
        v.arrays = _mac_arrays(cname, op, p)
        v.args = [f"&{cname}_params", f"&{cname}_quant", arena[0], f"{cname}_filter",
                  f"{cname}_bias", out_arg]
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
