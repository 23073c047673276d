"""PyTorch model -> int8 graph: BN folding, calibration, per-channel weights, QAT.

Three steps, one concept each:

1. `fuse(model, input_shape)` traces the model with torch.fx and folds it into a `FusedNet`:
   a flat list of float ops that map one-to-one onto IR ops (BatchNorm folded into the conv,
   ReLU/ReLU6 folded into the op before it, flatten/dropout dropped).
2. The `FusedNet` observes every tensor's range (`calibrate`, post-training) and, switched
   to `qat=True`, fake-quantises weights (per output channel, symmetric) and activations
   (per tensor) in its forward pass, so fine-tuning sees the int8 rounding.
3. `to_int8(fused)` writes the int8 graph with TFLite's rules: weights
   round(w / s_c) in [-127, 127], bias round(b / (s_in * s_c)) in int32, activations from the
   observed ranges, pooling keeps its input's scale and zero point.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from patchcam.compiler import zoo
from patchcam.compiler.builder import GraphBuilder
from patchcam.compiler.ir import Graph, out_size

SUPPORTED = ("nn.Conv2d (groups 1 or depthwise)", "nn.BatchNorm2d after a conv",
             "nn.ReLU", "nn.ReLU6", "nn.Linear", "nn.AvgPool2d", "nn.MaxPool2d",
             "nn.AdaptiveAvgPool2d(1)", "nn.Flatten", "nn.Dropout", "nn.Identity",
             "+ / torch.add", "torch.flatten", "F.relu", "F.relu6", "x.mean((2, 3))")


class ConversionError(ValueError):
    """A PyTorch model that the int8 graph cannot represent."""


class CalibrationError(ValueError):
    pass


@dataclass
class FloatOp:
    kind: str  # an IR op kind
    name: str  # the PyTorch module path it came from
    inputs: list[str]
    output: str
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    activation: str = "none"
    weight: str | None = None  # key into FusedNet.params
    bias: str | None = None


# ---- 1. tracing and folding ---------------------------------------------------------------
class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, zoo.SameConv2d) or super().is_leaf_module(m, qualname)


def fuse(model: nn.Module, input_shape: tuple[int, int, int]) -> FusedNet:
    """Fold a float model (eval mode) into a FusedNet. input_shape is (C, H, W)."""
    model = model.eval()
    try:
        gm = fx.GraphModule(model, _Tracer().trace(model))
    except Exception as e:  # fx raises many types; the message is what matters to the user
        raise ConversionError(f"cannot trace the model with torch.fx: {e}") from None
    mods = dict(gm.named_modules())
    ops: list[FloatOp] = []
    params: dict[str, torch.Tensor] = {}
    alias: dict[str, str] = {}  # fx node -> the tensor that carries its value
    shapes: dict[str, tuple[int, ...]] = {}
    users = {n.name: len(n.users) for n in gm.graph.nodes}
    producer: dict[str, FloatOp] = {}
    input_name = output_name = ""

    def src(n: fx.Node) -> str:
        return alias.get(n.name, n.name)

    def emit(op: FloatOp, shape: tuple[int, ...]) -> None:
        ops.append(op)
        producer[op.output] = op
        shapes[op.output] = shape

    def fold_activation(n: fx.Node, act: str, what: str) -> None:
        prev = producer.get(src(n.args[0]))
        if prev is None or users[n.args[0].name] != 1 or prev.activation != "none" or \
                prev.kind in ("avg_pool2d", "max_pool2d"):
            raise ConversionError(f"layer '{n.target}' ({what}) must directly follow a conv, "
                                  "linear or add whose output has no other use")
        prev.activation = act
        alias[n.name] = src(n.args[0])

    for n in gm.graph.nodes:
        if n.op == "placeholder":
            if input_name:
                raise ConversionError("models with more than one input are not supported")
            input_name = n.name
            shapes[n.name] = tuple(input_shape)
        elif n.op == "output":
            output_name = src(n.args[0])
        elif n.op == "call_module":
            m = mods[n.target]
            x = src(n.args[0])
            c, h, w = shapes[x] if len(shapes[x]) == 3 else (*shapes[x], 1, 1)[:3]
            if isinstance(m, nn.Conv2d):
                depthwise = m.groups == m.in_channels == m.out_channels and m.groups > 1
                if m.groups != 1 and not depthwise:
                    raise ConversionError(f"layer '{n.target}' (nn.Conv2d, groups={m.groups}) "
                                          "is not supported: use groups=1 or depthwise")
                if m.dilation != (1, 1) or m.padding_mode != "zeros" or \
                        isinstance(m.padding, str):
                    raise ConversionError(f"layer '{n.target}' (nn.Conv2d): dilation, padding "
                                          "modes and string padding are not supported")
                k, s = tuple(m.kernel_size), tuple(m.stride)
                if isinstance(m, zoo.SameConv2d):
                    left, r, t, b = zoo.same_pad_torch((h, w), k, s)
                else:
                    (t, left), (b, r) = m.padding, m.padding
                ho, wo = out_size(h, k[0], s[0], t, b), out_size(w, k[1], s[1], left, r)
                # Trim padding the window never reaches (torch's symmetric pad on even sizes).
                b = max(0, min(b, (ho - 1) * s[0] + k[0] - h - t))
                r = max(0, min(r, (wo - 1) * s[1] + k[1] - w - left))
                params[f"{n.target}.weight"] = m.weight.detach().clone()
                if m.bias is not None:
                    params[f"{n.target}.bias"] = m.bias.detach().clone()
                emit(FloatOp("depthwise_conv2d" if depthwise else "conv2d", n.target, [x],
                             n.name, k, s, (t, left, b, r), weight=f"{n.target}.weight",
                             bias=f"{n.target}.bias" if m.bias is not None else None),
                     (m.out_channels, ho, wo))
            elif isinstance(m, nn.BatchNorm2d):
                prev = producer.get(x)
                if prev is None or prev.kind not in ("conv2d", "depthwise_conv2d") or \
                        users[n.args[0].name] != 1 or prev.activation != "none":
                    raise ConversionError(f"layer '{n.target}' (nn.BatchNorm2d) must directly "
                                          "follow a conv whose output has no other use")
                _fold_bn(prev, m, params)
                alias[n.name] = x
            elif isinstance(m, (nn.ReLU, nn.ReLU6)):
                fold_activation(n, "relu" if isinstance(m, nn.ReLU) else "relu6",
                                type(m).__name__)
            elif isinstance(m, nn.Linear):
                params[f"{n.target}.weight"] = m.weight.detach().clone()
                params[f"{n.target}.bias"] = (m.bias.detach().clone() if m.bias is not None
                                              else torch.zeros(m.out_features))
                if int(np.prod(shapes[x])) != m.in_features:
                    raise ConversionError(f"layer '{n.target}' (nn.Linear): input has "
                                          f"{int(np.prod(shapes[x]))} values, expects "
                                          f"{m.in_features}")
                if len(shapes[x]) == 3 and shapes[x][1:] != (1, 1):
                    raise ConversionError(f"layer '{n.target}' (nn.Linear) on a {shapes[x]} "
                                          "map: pool to 1x1 first (flatten order differs)")
                emit(FloatOp("fully_connected", n.target, [x], n.name,
                             weight=f"{n.target}.weight", bias=f"{n.target}.bias"),
                     (m.out_features,))
            elif isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1)):
                emit(FloatOp("avg_pool2d", n.target, [x], n.name, (h, w)), (c, 1, 1))
            elif isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
                k = _pair(m.kernel_size)
                s = _pair(m.stride or m.kernel_size)
                p = _pair(m.padding)
                if isinstance(m, nn.AvgPool2d) and p != (0, 0) and m.count_include_pad:
                    raise ConversionError(f"layer '{n.target}' (nn.AvgPool2d): padding needs "
                                          "count_include_pad=False (TFLite's rule)")
                if getattr(m, "ceil_mode", False) or getattr(m, "dilation", 1) not in (1, (1, 1)):
                    raise ConversionError(f"layer '{n.target}': ceil_mode/dilation unsupported")
                ho, wo = out_size(h, k[0], s[0], p[0], p[0]), out_size(w, k[1], s[1], p[1], p[1])
                kind = "avg_pool2d" if isinstance(m, nn.AvgPool2d) else "max_pool2d"
                emit(FloatOp(kind, n.target, [x], n.name, k, s, (p[0], p[1], p[0], p[1])),
                     (c, ho, wo))
            elif isinstance(m, (nn.Flatten, nn.Dropout, nn.Identity)):
                alias[n.name] = x
            else:
                raise ConversionError(f"layer '{n.target}' ({type(m).__name__}) is not "
                                      f"supported; supported: {', '.join(SUPPORTED)}")
        elif n.op in ("call_function", "call_method"):
            t = n.target
            if t in (operator.add, torch.add, "add"):
                a, b = (src(v) for v in n.args[:2])
                emit(FloatOp("add", f"{n.name}", [a, b], n.name), shapes[a])
            elif t in (torch.flatten, "flatten", "view", "reshape", F.dropout):
                alias[n.name] = src(n.args[0])
            elif t in (F.relu, torch.relu, "relu"):
                fold_activation(n, "relu", "relu")
            elif t is F.relu6:
                fold_activation(n, "relu6", "relu6")
            elif t == "mean" and tuple(n.args[1:2]) in (((2, 3),), ([2, 3],)):
                x = src(n.args[0])
                c, h, w = shapes[x]
                emit(FloatOp("avg_pool2d", n.name, [x], n.name, (h, w)), (c, 1, 1))
            else:
                name = getattr(t, "__name__", str(t))
                raise ConversionError(f"operation '{name}' at '{n.name}' is not supported; "
                                      f"supported: {', '.join(SUPPORTED)}")
        else:
            raise ConversionError(f"fx node kind {n.op!r} ({n.name}) is not supported")
    return FusedNet(ops, params, input_name, output_name, tuple(input_shape))


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _fold_bn(op: FloatOp, bn: nn.BatchNorm2d, params: dict[str, torch.Tensor]) -> None:
    w = params[op.weight]
    b = params[op.bias] if op.bias else torch.zeros(w.shape[0])
    gamma = bn.weight.detach() if bn.affine else torch.ones_like(bn.running_var)
    beta = bn.bias.detach() if bn.affine else torch.zeros_like(bn.running_var)
    inv = gamma / torch.sqrt(bn.running_var + bn.eps)
    params[op.weight] = w * inv.view(-1, 1, 1, 1)
    op.bias = op.bias or f"{op.name}.bias"
    params[op.bias] = (b - bn.running_mean) * inv + beta


# ---- 2. the fused float network: calibration and fake quantisation ------------------------
def qparams_from_range(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 (scale, zero point) covering [lo, hi] and exactly representing 0."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    # A dead tensor (all zeros) still needs a scale with which 6.0 fits int32 (TFLite checks).
    scale = float(np.float32(max(hi - lo, 1e-3) / 255.0))
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return scale, zp


class FusedNet(nn.Module):
    """The model as the int8 graph will compute it, in float (optionally fake-quantised)."""

    def __init__(self, ops: list[FloatOp], params: dict[str, torch.Tensor], input_name: str,
                 output_name: str, input_shape: tuple[int, int, int]):
        super().__init__()
        self.ops = ops
        self.keys = {k: k.replace(".", "__") for k in params}
        self.params = nn.ParameterDict({self.keys[k]: nn.Parameter(v) for k, v in
                                        params.items()})
        self.input_name, self.output_name = input_name, output_name
        self.input_shape = input_shape
        self.ranges: dict[str, list[float]] = {}  # tensor -> [min, max] observed
        self.observe = False
        self.qat = False
        self.momentum = 0.1  # EMA of the ranges during QAT

    def p(self, key: str | None) -> torch.Tensor | None:
        return None if key is None else self.params[self.keys[key]]

    def qparams(self, name: str) -> tuple[float, int]:
        if name == self.input_name:
            return zoo.INPUT_SCALE, zoo.INPUT_ZERO_POINT
        src = self.pool_source(name)
        if src != name:
            return self.qparams(src)
        if name not in self.ranges:
            raise CalibrationError(f"tensor '{name}' has no observed range: calibrate first")
        return qparams_from_range(*self.ranges[name])

    def pool_source(self, name: str) -> str:
        """Pooling outputs share their input's quantisation (TFLite's rule)."""
        for op in self.ops:
            if op.output == name and op.kind in ("avg_pool2d", "max_pool2d"):
                return self.pool_source(op.inputs[0])
        return name

    def _observe(self, name: str, v: torch.Tensor) -> torch.Tensor:
        if self.pool_source(name) != name:
            return self._fake_quant(name, v) if self.qat else v
        if self.observe or (self.qat and self.training):
            lo, hi = float(v.detach().min()), float(v.detach().max())
            r = self.ranges.get(name)
            if r is None:
                self.ranges[name] = [lo, hi]
            elif self.qat:
                r[0] += self.momentum * (lo - r[0])
                r[1] += self.momentum * (hi - r[1])
            else:
                r[0], r[1] = min(r[0], lo), max(r[1], hi)
        return self._fake_quant(name, v) if self.qat else v

    def _fake_quant(self, name: str, v: torch.Tensor) -> torch.Tensor:
        scale, zp = self.qparams(name)
        return torch.fake_quantize_per_tensor_affine(v, scale, zp, -128, 127)

    def weight(self, op: FloatOp) -> torch.Tensor:
        w = self.p(op.weight)
        if not self.qat:
            return w
        scales = weight_scales(w, per_channel=op.kind != "fully_connected")
        if op.kind == "fully_connected":
            return torch.fake_quantize_per_tensor_affine(w, float(scales[0]), 0, -127, 127)
        return torch.fake_quantize_per_channel_affine(
            w, scales, torch.zeros_like(scales, dtype=torch.int32), 0, -127, 127)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vals = {self.input_name: self._observe(self.input_name, x)}
        for op in self.ops:
            a = vals[op.inputs[0]]
            if op.kind in ("conv2d", "depthwise_conv2d"):
                t, left, b, r = op.pads
                groups = a.shape[1] if op.kind == "depthwise_conv2d" else 1
                y = F.conv2d(F.pad(a, (left, r, t, b)), self.weight(op), self.p(op.bias),
                             op.stride, groups=groups)
            elif op.kind == "fully_connected":
                y = F.linear(torch.flatten(a, 1), self.weight(op), self.p(op.bias))
            elif op.kind == "add":
                y = a + vals[op.inputs[1]]
            elif op.kind == "max_pool2d":
                t, left, b, r = op.pads
                y = F.max_pool2d(F.pad(a, (left, r, t, b), value=-1e30), op.kernel, op.stride)
            else:  # avg_pool2d: only taps inside the image count
                t, left, b, r = op.pads
                ones = torch.ones_like(a[:1, :1])
                total = F.avg_pool2d(F.pad(a, (left, r, t, b)), op.kernel, op.stride)
                count = F.avg_pool2d(F.pad(ones, (left, r, t, b)), op.kernel, op.stride)
                y = total / count
            if op.activation == "relu":
                y = F.relu(y)
            elif op.activation == "relu6":
                y = F.relu6(y)
            vals[op.output] = self._observe(op.output, y)
        return vals[self.output_name]


def weight_scales(w: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """Symmetric int8 scales: max |w| / 127 per output channel (or for the whole tensor)."""
    a = w.detach().abs()
    m = a.flatten(1).amax(1) if per_channel else a.max().reshape(1)
    return (torch.clamp(m, min=1e-8) / 127.0).float()


@torch.no_grad()
def calibrate(fused: FusedNet, batches: Iterable[torch.Tensor]) -> FusedNet:
    """Post-training calibration: observe min/max of every tensor over representative inputs."""
    fused.eval()
    fused.ranges.clear()
    fused.observe, fused.qat = True, False
    n = 0
    for x in batches:
        fused(x)
        n += len(x)
    fused.observe = False
    if n == 0:
        raise CalibrationError("calibration needs at least one representative image; got none "
                               "(check the dataset path / split)")
    return fused


# ---- 3. int8 graph --------------------------------------------------------------------------
def to_int8(fused: FusedNet, name: str, meta: dict | None = None) -> Graph:
    c, h, w = fused.input_shape
    b = GraphBuilder(name, (h, w, c), zoo.INPUT_SCALE, zoo.INPUT_ZERO_POINT)
    tname = {fused.input_name: b.input}
    for op in fused.ops:
        ins = [tname[i] for i in op.inputs]
        if op.kind in ("avg_pool2d", "max_pool2d"):
            tname[op.output] = b.pool2d(op.kind[:3], ins[0], op.kernel, op.stride[0], op.pads,
                                        op.activation, name=op.name)
            continue
        scale, zp = fused.qparams(op.output)
        if op.kind == "add":
            tname[op.output] = b.add(ins[0], ins[1], scale, zp, op.activation, name=op.name)
            continue
        wt = fused.p(op.weight).detach().float()
        s = weight_scales(wt, per_channel=op.kind != "fully_connected")
        in_scale = b.tensors[ins[0]].scale
        q = torch.clamp(torch.round(wt / s.view(-1, *([1] * (wt.dim() - 1)))), -127, 127)
        bias_f = fused.p(op.bias).detach().double()
        s32 = s.numpy().astype(np.float32)
        bias_q = np.clip(np.round(bias_f.numpy() / (np.float64(in_scale) * s32)),
                         -(2**31), 2**31 - 1).astype(np.int32)
        qn = q.numpy().astype(np.int8)
        if op.kind == "conv2d":  # torch (Cout, Cin, kh, kw) -> TFLite (Cout, kh, kw, Cin)
            tname[op.output] = b.conv2d(ins[0], qn.transpose(0, 2, 3, 1), s32, bias_q, scale,
                                        zp, op.stride[0], op.pads, op.activation, op.name)
        elif op.kind == "depthwise_conv2d":  # (C, 1, kh, kw) -> (kh, kw, C)
            tname[op.output] = b.depthwise_conv2d(ins[0], qn[:, 0].transpose(1, 2, 0), s32,
                                                  bias_q, scale, zp, op.stride[0], op.pads,
                                                  op.activation, op.name)
        else:
            tname[op.output] = b.fully_connected(ins[0], qn, float(s32[0]), bias_q, scale, zp,
                                                 op.activation, op.name)
    return b.finish(tname[fused.output_name], meta or {})


def quantize(model: nn.Module, input_shape: tuple[int, int, int],
             calibration: Iterable[torch.Tensor], name: str, meta: dict | None = None) -> Graph:
    """Post-training quantisation in one call: fuse, calibrate, convert."""
    return to_int8(calibrate(fuse(model, input_shape), calibration), name, meta)


def to_nchw_float(x_int8: np.ndarray) -> torch.Tensor:
    """An int8 HWC input tensor as the float NCHW batch the PyTorch model sees."""
    x = (x_int8.astype(np.float32) - zoo.INPUT_ZERO_POINT) * zoo.INPUT_SCALE
    return torch.from_numpy(x).permute(2, 0, 1)[None]
