"""The int8 graph: the one model representation that the reference executor, the planner, the
code generator and the .tflite exporter all read (docs/design.md §4.2).

Tensors are HWC, batch 1, int8 with a per-tensor scale and zero point. Ops run in list order
(a topological order). Weights follow TFLite's layouts so export and import are copies:

| kind               | inputs | weights (int8)        | per-channel scales | bias (int32) |
|--------------------|--------|-----------------------|--------------------|--------------|
| `conv2d`           | 1      | (Cout, kh, kw, Cin)   | Cout               | Cout         |
| `depthwise_conv2d` | 1      | (kh, kw, C)           | C                  | C            |
| `fully_connected`  | 1      | (N, K), K = input size| 1 (per tensor)     | N            |
| `add`              | 2      | -                     | -                  | -            |
| `avg_pool2d`       | 1      | -                     | -                  | -            |
| `max_pool2d`       | 1      | -                     | -                  | -            |
| `mean`             | 1      | -                     | -                  | -            |

A pointwise convolution is a `conv2d` with a 1x1 kernel; global average pooling is an
`avg_pool2d` whose kernel covers the whole input. Pooling keeps its input's scale and zero
point (as TFLite requires). `mean` is TFLite's MEAN over H and W (output 1x1xC): the sum
minus the zero points, rescaled to the output's scale and zero point by a multiplier that
folds in 1/(H*W) (`qparams.MeanParams`); it rounds differently from `avg_pool2d`, so imported
MEAN ops keep their own kind. `activation` (`none` / `relu` / `relu6`) is folded into the
output clamp by `qmath.activation_range`.

Files: `save`/`load` write one JSON document: the graph is readable and diffable; each array
is base64 with its dtype, shape and SHA-256, so a damaged file is caught on load.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from patchcam.compiler import qmath

FORMAT = "patchcam-ir"
VERSION = 1
OP_KINDS = ("conv2d", "depthwise_conv2d", "fully_connected", "add", "avg_pool2d", "max_pool2d",
            "mean")
ACTIVATIONS = ("none", "relu", "relu6")


class IRError(ValueError):
    """A graph that breaks the IR's rules, or a file that is not a valid IR document."""


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]  # (H, W, C) for feature maps, (N,) for vectors
    scale: float
    zero_point: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class Op:
    kind: str
    name: str
    inputs: list[str]
    output: str
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    activation: str = "none"
    weights: np.ndarray | None = None
    weight_scales: np.ndarray | None = None  # float32, one per output channel
    bias: np.ndarray | None = None  # int32

    @property
    def params(self) -> int:
        return sum(a.size for a in (self.weights, self.bias) if a is not None)


@dataclass
class Graph:
    name: str
    tensors: dict[str, Tensor]
    ops: list[Op]
    input: str
    output: str
    meta: dict = field(default_factory=dict)  # free-form: preset, classes, input format

    # ---- queries -------------------------------------------------------------------------
    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def macs(self, op: Op) -> int:
        out = self.tensors[op.output]
        if op.kind == "conv2d":
            cout, kh, kw, cin = op.weights.shape
            return out.shape[0] * out.shape[1] * cout * kh * kw * cin
        if op.kind == "depthwise_conv2d":
            kh, kw, c = op.weights.shape
            return out.shape[0] * out.shape[1] * c * kh * kw
        if op.kind == "fully_connected":
            return int(op.weights.size)
        return 0

    @property
    def total_macs(self) -> int:
        return sum(self.macs(op) for op in self.ops)

    @property
    def total_params(self) -> int:
        return sum(op.params for op in self.ops)

    def summary(self) -> str:
        """One line per op: shapes, MACs, params and the bytes of its input + output."""
        rows = [f"{self.name}: input {self.tensors[self.input].shape} -> output "
                f"{self.tensors[self.output].shape}"]
        head = f"{'#':>3} {'op':<18} {'kernel':<7} {'s':<3} {'act':<5} {'in':<14} {'out':<14} " \
               f"{'MACs':>11} {'params':>8} {'act bytes':>10}"
        rows += [head, "-" * len(head)]
        for i, op in enumerate(self.ops):
            ins = [self.tensors[n] for n in op.inputs]
            out = self.tensors[op.output]
            spatial = op.kind not in ("add", "fully_connected")
            k = f"{op.kernel[0]}x{op.kernel[1]}" if spatial else ""
            s = str(op.stride[0]) if k else ""
            act_bytes = sum(t.size for t in ins) + out.size
            rows.append(f"{i:>3} {op.kind:<18} {k:<7} {s:<3} {op.activation:<5} "
                        f"{_shape(ins[0].shape):<14} {_shape(out.shape):<14} "
                        f"{self.macs(op):>11,} {op.params:>8,} {act_bytes:>10,}")
        rows.append(f"total: {self.total_macs:,} MACs, {self.total_params:,} params")
        return "\n".join(rows)

    # ---- validation ----------------------------------------------------------------------
    def check(self) -> Graph:
        """Raise IRError naming the op when shapes, layouts or quantisation do not agree."""
        if self.input not in self.tensors or self.output not in self.tensors:
            raise IRError(f"{self.name}: graph input/output tensor missing")
        defined = {self.input}
        for op in self.ops:
            where = f"{self.name}: op '{op.name}' ({op.kind})"
            if op.kind not in OP_KINDS:
                raise IRError(f"{where}: unknown op kind; supported: {', '.join(OP_KINDS)}")
            if op.activation not in ACTIVATIONS:
                raise IRError(f"{where}: unknown activation {op.activation!r}")
            for n in op.inputs:
                if n not in defined:
                    raise IRError(f"{where}: input '{n}' is not computed before this op")
            if op.output in defined:
                raise IRError(f"{where}: output '{op.output}' is written twice")
            _check_op(self, op, where)
            defined.add(op.output)
        if self.output not in defined:
            raise IRError(f"{self.name}: output '{self.output}' is never computed")
        return self

    # ---- files ---------------------------------------------------------------------------
    def to_json(self) -> str:
        doc = {
            "format": FORMAT, "version": VERSION, "name": self.name, "meta": self.meta,
            "input": self.input, "output": self.output,
            "tensors": [{"name": t.name, "shape": list(t.shape), "scale": float(t.scale),
                         "zero_point": int(t.zero_point)} for t in self.tensors.values()],
            "ops": [_op_to_doc(op) for op in self.ops],
        }
        return json.dumps(doc, indent=1)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @staticmethod
    def from_json(text: str, source: str = "<string>") -> Graph:
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT:
                raise IRError("not a patchcam IR document (missing 'format': 'patchcam-ir')")
            if doc.get("version") != VERSION:
                raise IRError(f"IR version {doc.get('version')} is not supported (need {VERSION})")
            tensors = {t["name"]: Tensor(t["name"], tuple(t["shape"]), float(t["scale"]),
                                         int(t["zero_point"])) for t in doc["tensors"]}
            ops = [_op_from_doc(o) for o in doc["ops"]]
            g = Graph(doc["name"], tensors, ops, doc["input"], doc["output"], doc.get("meta", {}))
        except IRError as e:
            raise IRError(f"{source}: corrupt IR file: {e}") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise IRError(f"{source}: corrupt IR file ({type(e).__name__}: {e}); "
                          "re-create it with `python -m patchcam export`") from None
        try:
            return g.check()
        except IRError as e:
            raise IRError(f"{source}: corrupt IR file: {e}") from None

    @staticmethod
    def load(path: str | Path) -> Graph:
        p = Path(path)
        if not p.is_file():
            raise IRError(f"{p}: no such IR file")
        return Graph.from_json(p.read_text(errors="replace"), str(p))


# ---- shape arithmetic (shared with the planner and the exporter) ------------------------
def out_size(n: int, k: int, s: int, pad_before: int, pad_after: int) -> int:
    return (n + pad_before + pad_after - k) // s + 1


def same_pads(h: int, w: int, k: tuple[int, int], s: tuple[int, int]) -> tuple[int, int, int, int]:
    """TFLite 'SAME' padding: output ceil(n / s); the odd pixel goes bottom / right."""
    def one(n: int, k: int, s: int) -> tuple[int, int]:
        total = max((-(-n // s) - 1) * s + k - n, 0)
        return total // 2, total - total // 2
    (t, b), (left, r) = one(h, k[0], s[0]), one(w, k[1], s[1])
    return t, left, b, r


def clamp_range(g: Graph, op: Op) -> tuple[int, int]:
    out = g.tensors[op.output]
    return qmath.activation_range(op.activation, out.scale, out.zero_point)


def _shape(s: tuple[int, ...]) -> str:
    return "x".join(map(str, s))


def _check_op(g: Graph, op: Op, where: str) -> None:
    ins = [g.tensors[n] for n in op.inputs]
    out = g.tensors[op.output]
    want_inputs = 2 if op.kind == "add" else 1
    if len(ins) != want_inputs:
        raise IRError(f"{where}: takes {want_inputs} input(s), has {len(ins)}")
    x = ins[0]
    if op.kind == "fully_connected":
        n, k = op.weights.shape
        if k != x.size or out.shape != (n,):
            raise IRError(f"{where}: weights {op.weights.shape} do not match input {x.shape} "
                          f"/ output {out.shape}")
    elif op.kind == "add":
        if ins[1].shape != x.shape or out.shape != x.shape:
            raise IRError(f"{where}: add needs equal shapes, got {x.shape}, {ins[1].shape} "
                          f"-> {out.shape}")
    elif op.kind == "mean":
        if len(x.shape) != 3 or out.shape != (1, 1, x.shape[2]):
            raise IRError(f"{where}: mean reduces HxWxC to 1x1xC, got {x.shape} -> {out.shape}")
        if op.activation != "none":
            raise IRError(f"{where}: mean has no fused activation")
    else:
        if len(x.shape) != 3:
            raise IRError(f"{where}: input must be HxWxC, got {x.shape}")
        h, w, c = x.shape
        kh, kw = op.kernel
        pt, pl, pb, pr = op.pads
        ho, wo = out_size(h, kh, op.stride[0], pt, pb), out_size(w, kw, op.stride[1], pl, pr)
        cout = {"conv2d": op.weights.shape[0] if op.weights is not None else -1}.get(op.kind, c)
        if out.shape != (ho, wo, cout):
            raise IRError(f"{where}: output {out.shape} != expected {(ho, wo, cout)}")
        if op.kind == "conv2d" and op.weights.shape[1:] != (kh, kw, c):
            raise IRError(f"{where}: weights {op.weights.shape} do not match kernel {op.kernel} "
                          f"and {c} input channels")
        if op.kind == "depthwise_conv2d" and op.weights.shape != (kh, kw, c):
            raise IRError(f"{where}: weights {op.weights.shape} != {(kh, kw, c)}")
        if op.kind.endswith("pool2d") and (out.scale, out.zero_point) != (x.scale, x.zero_point):
            raise IRError(f"{where}: pooling must keep its input's scale and zero point")
    if op.weights is not None:
        if op.weights.dtype != np.int8 or op.bias is None or op.bias.dtype != np.int32:
            raise IRError(f"{where}: weights must be int8 and bias int32")
        channels = op.weights.shape[-1] if op.kind == "depthwise_conv2d" else op.weights.shape[0]
        if op.bias.shape != (channels,):
            raise IRError(f"{where}: bias shape {op.bias.shape} != ({channels},)")
        n_scales = 1 if op.kind == "fully_connected" else channels
        if op.weight_scales is None or op.weight_scales.shape != (n_scales,):
            raise IRError(f"{where}: needs {n_scales} weight scale(s)")


def _array_to_doc(a: np.ndarray) -> dict:
    raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
    return {"dtype": str(a.dtype), "shape": list(a.shape),
            "sha256": hashlib.sha256(raw).hexdigest(), "data": base64.b64encode(raw).decode()}


def _array_from_doc(d: dict) -> np.ndarray:
    raw = base64.b64decode(d["data"], validate=True)
    if hashlib.sha256(raw).hexdigest() != d["sha256"]:
        raise IRError("an array's SHA-256 does not match its data")
    dtype = np.dtype(d["dtype"]).newbyteorder("<")
    return np.frombuffer(raw, dtype=dtype).astype(np.dtype(d["dtype"])).reshape(d["shape"])


def _op_to_doc(op: Op) -> dict:
    doc = {"kind": op.kind, "name": op.name, "inputs": op.inputs, "output": op.output,
           "kernel": list(op.kernel), "stride": list(op.stride), "pads": list(op.pads),
           "activation": op.activation}
    for key in ("weights", "weight_scales", "bias"):
        a = getattr(op, key)
        if a is not None:
            doc[key] = _array_to_doc(a)
    return doc


def _op_from_doc(d: dict) -> Op:
    arrays = {k: _array_from_doc(d[k]) for k in ("weights", "weight_scales", "bias") if k in d}
    return Op(d["kind"], d["name"], list(d["inputs"]), d["output"], tuple(d["kernel"]),
              tuple(d["stride"]), tuple(d["pads"]), d["activation"], **arrays)
