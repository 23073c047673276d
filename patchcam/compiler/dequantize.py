"""An int8 graph back to a float PyTorch network, to fine-tune a model someone else trained.

    g = tflite_import.import_tflite("person_detect.tflite")
    net = to_torch(g)                   # float layers, weights from the int8 ones
    ...train net (float, then QAT)...
    g2 = quantize.quantize(net, (1, 96, 96), calibration, "person_detect-ft")

TFLite's quantisation rules read backwards: a weight is w = s_c * q (per output channel c),
a bias b = s_in * s_c * q_b, and the activation (ReLU / ReLU6) stays where it was. The network
takes patchcam's input convention (pixels p / 255, `zoo.INPUT_SCALE`): a model whose int8
input p - 128 has another scale s and zero point z sees r = s (p - 128 - z) = a x + b with
x = p / 255; the gain a goes into the first layer's weights and the offset b into its bias
(b times the sum of each filter's taps). That is exact wherever the filter lies inside the
image; on the border TFLite pads with r = 0 where the float network pads x = 0 (r = b), so
border outputs of the first layer differ (TFLite Micro's person_detect: s = 1/127.5, z = -1,
so r = 2x - 127/127.5 spans [-1, 1]; its first conv pads only the bottom row and right
column). Fine-tuning then adapts to the new input. `to_torch(g, fold_input=False)` keeps
r = a x + b as a first step of its own (`InputAffine`) instead: every layer, the border
included, is then the int8 op up to rounding (a teacher), but `quantize` cannot fold that
step. The affine map is also kept as a step when the input is not read by exactly one
conv / fully-connected op. A model whose float input is normalised per channel
(ImageNet mean / std, e.g. MobileNetV2) takes x = (r - b) / a, r the normalised image.

Padding: an op's explicit pads (top, left, bottom, right; int8 pads with the input zero
point, float 0) become the plainest layer that computes the same windows: no padding,
TFLite SAME (`zoo.SameConv2d`), symmetric (`nn.Conv2d(padding=...)`, e.g. MobileNetV2's
stride-2 (1, 1, 1, 1) from a folded PAD) or, for any other asymmetric padding,
`PaddedConv2d` (`F.pad`, then the convolution). Padding rows / columns that no window
reaches are ignored when matching. Pooling likewise: `nn.MaxPool2d` / `nn.AvgPool2d(...,
count_include_pad=False)` where PyTorch can pad, else `PaddedPool2d` (max ignores the
padding, average divides by the taps inside the image, as TFLite does).

The result is made of standard layers (`zoo.SameConv2d`, `nn.Conv2d`, `nn.Linear`, pooling,
ReLU6), so `patchcam.compiler.quantize` folds and quantises it again; `PaddedConv2d`,
`PaddedPool2d` and `InputAffine` have no such layer, and quantize refuses them (one line
naming the `pad` or `input_map` node).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from patchcam.compiler import zoo
from patchcam.compiler.ir import Graph, Op, out_size, same_pads

SUPPORTED = ("conv2d", "depthwise_conv2d", "fully_connected", "avg_pool2d", "max_pool2d",
             "mean", "add")
MAC_KINDS = ("conv2d", "depthwise_conv2d", "fully_connected")

Pads = tuple[int, int, int, int]  # top, left, bottom, right (the IR's order)


class DequantizeError(ValueError):
    """A graph this module cannot turn into a float network (names the op and why)."""


class InputAffine(nn.Module):
    """r = gain * x + offset: patchcam's x = p / 255 -> the graph's float input."""

    def __init__(self, gain: float, offset: float) -> None:
        super().__init__()
        self.register_buffer("gain", torch.tensor(float(gain)))
        self.register_buffer("offset", torch.tensor(float(offset)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain + self.offset


class PaddedConv2d(nn.Conv2d):
    """Conv2d with explicit zero padding (top, left, bottom, right), any asymmetry."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int],
                 pads: Pads, groups: int = 1, bias: bool = True) -> None:
        super().__init__(cin, cout, kernel, stride, 0, groups=groups, bias=bias)
        self.pads = tuple(int(p) for p in pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, _torch_pads(self.pads)))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}"


class PaddedPool2d(nn.Module):
    """TFLite pooling with explicit padding (top, left, bottom, right): max ignores the
    padding; average sums the taps inside the image and divides by their number."""

    def __init__(self, kind: str, kernel: tuple[int, int], stride: tuple[int, int],
                 pads: Pads) -> None:
        super().__init__()
        if kind not in ("max", "avg"):
            raise ValueError(f"pooling kind must be 'max' or 'avg', got {kind!r}")
        self.kind, self.kernel, self.stride = kind, tuple(kernel), tuple(stride)
        self.pads = tuple(int(p) for p in pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = _torch_pads(self.pads)
        if self.kind == "max":
            return F.max_pool2d(F.pad(x, p, value=float("-inf")), self.kernel, self.stride)
        total = F.avg_pool2d(F.pad(x, p), self.kernel, self.stride)
        inside = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), p), self.kernel, self.stride)
        return total / inside

    def extra_repr(self) -> str:
        return f"{self.kind}, kernel={self.kernel}, stride={self.stride}, pads={self.pads}"


class GraphNet(nn.Module):
    """The graph's ops as float layers, run in the graph's order (branches and adds too).

    `folded`: the key of the layer that holds the input's affine map (None when there is
    none or `input_map`, an `InputAffine`, applies it first)."""

    def __init__(self, g: Graph, fold_input: bool = True) -> None:
        super().__init__()
        self.input_name, self.output_name = g.input, g.output
        self.steps: list[tuple[str, str, list[str], str]] = []  # kind, module, inputs, output
        self.layers = nn.ModuleDict()
        for i, op in enumerate(g.ops):
            if op.kind not in SUPPORTED:
                raise DequantizeError(f"op {i} ({op.kind} '{op.name}'): not supported; "
                                      f"supported: {', '.join(SUPPORTED)}")
        gain, offset = input_affine(g)
        readers = [i for i, op in enumerate(g.ops) if g.input in op.inputs]
        foldable = len(readers) == 1 and g.ops[readers[0]].kind in MAC_KINDS and \
            g.ops[readers[0]].inputs.count(g.input) == 1
        identity = math.isclose(gain, 1.0, rel_tol=1e-6) and abs(offset) < 1e-9
        self.folded = f"op{readers[0]}" if fold_input and foldable else None
        self.input_map = None if self.folded or (identity and fold_input) else \
            InputAffine(gain, offset)
        for i, op in enumerate(g.ops):
            key = f"op{i}"
            layer = _layer(g, op, (gain, offset) if key == self.folded else (1.0, 0.0))
            if layer is not None:
                self.layers[key] = layer
            self.steps.append((op.kind, key, list(op.inputs), op.output))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vals = {self.input_name: self.input_map(x) if self.input_map is not None else x}
        for kind, key, inputs, output in self.steps:
            a = vals[inputs[0]]
            if kind == "add":
                y = a + vals[inputs[1]]
                act = self.layers[key] if key in self.layers else None
                vals[output] = act(y) if act is not None else y
            elif kind == "mean":
                vals[output] = a.mean((2, 3), keepdim=True)
            elif kind == "fully_connected":
                vals[output] = self.layers[key](torch.flatten(a, 1))
            else:
                vals[output] = self.layers[key](a)
        y = vals[self.output_name]
        return torch.flatten(y, 1)  # logits (N, classes) like a zoo classifier


def input_affine(g: Graph) -> tuple[float, float]:
    """(a, b): the graph's float input is a * x + b for patchcam's x = p / 255."""
    t = g.tensors[g.input]
    return t.scale / zoo.INPUT_SCALE, t.scale * (zoo.INPUT_ZERO_POINT - t.zero_point)


def _activation(op: Op) -> list[nn.Module]:
    return {"none": [], "relu": [nn.ReLU()], "relu6": [nn.ReLU6()]}[op.activation]


def _torch_pads(pads: Pads) -> tuple[int, int, int, int]:
    """The IR's (top, left, bottom, right) in F.pad's order (left, right, top, bottom)."""
    t, left, b, r = pads
    return left, r, t, b


def _reached(hw: tuple[int, ...], op: Op, pads: Pads) -> tuple[tuple[int, int], Pads]:
    """(output H, W) and the pads less the bottom rows / right columns no window reaches."""
    (h, w), (kh, kw), (sh, sw) = hw[:2], op.kernel, op.stride
    t, left, b, r = pads
    ho, wo = out_size(h, kh, sh, t, b), out_size(w, kw, sw, left, r)
    b = min(b, max(0, (ho - 1) * sh + kh - h - t))
    r = min(r, max(0, (wo - 1) * sw + kw - w - left))
    return (ho, wo), (t, left, b, r)


def _same_windows(hw: tuple[int, ...], op: Op, pads: Pads) -> bool:
    """Does padding `pads` give op the same output windows as its own pads?"""
    return _reached(hw, op, pads) == _reached(hw, op, tuple(op.pads))


def _pooling(op: Op, hw: tuple[int, ...]) -> nn.Module:
    kind = op.kind[:3]
    t, left = op.pads[:2]
    if _same_windows(hw, op, (0, 0, 0, 0)):
        return nn.MaxPool2d(op.kernel, op.stride) if kind == "max" else \
            nn.AvgPool2d(op.kernel, op.stride)
    if _same_windows(hw, op, (t, left, t, left)) and 2 * t <= op.kernel[0] and \
            2 * left <= op.kernel[1]:  # PyTorch pads at most half the kernel
        return nn.MaxPool2d(op.kernel, op.stride, (t, left)) if kind == "max" else \
            nn.AvgPool2d(op.kernel, op.stride, (t, left), count_include_pad=False)
    return PaddedPool2d(kind, op.kernel, op.stride, _reached(hw, op, tuple(op.pads))[1])


def _conv(op: Op, hw: tuple[int, ...], cin: int, cout: int, groups: int) -> nn.Conv2d:
    k, s = tuple(op.kernel), tuple(op.stride)
    t, left = op.pads[:2]
    if _same_windows(hw, op, (0, 0, 0, 0)):
        return nn.Conv2d(cin, cout, k, s, groups=groups, bias=True)
    if _same_windows(hw, op, same_pads(hw[0], hw[1], k, s)):
        return zoo.SameConv2d(cin, cout, k, s, groups, bias=True)
    if _same_windows(hw, op, (t, left, t, left)):
        return nn.Conv2d(cin, cout, k, s, (t, left), groups=groups, bias=True)
    return PaddedConv2d(cin, cout, k, s, _reached(hw, op, tuple(op.pads))[1], groups)


def _layer(g: Graph, op: Op, affine: tuple[float, float]) -> nn.Module | None:
    gain, offset = affine
    x = g.tensors[op.inputs[0]]
    if op.kind in ("avg_pool2d", "max_pool2d"):
        return nn.Sequential(_pooling(op, x.shape), *_activation(op))
    if op.kind in ("mean", "add"):
        acts = _activation(op)
        return nn.Sequential(*acts) if acts else None
    w = op.weights.astype(np.float64)
    s = op.weight_scales.astype(np.float64)
    if op.kind == "fully_connected":  # (out, in), one scale
        wf = w * s[0]
        bf = op.bias.astype(np.float64) * x.scale * s[0] + offset * wf.sum(1)
        lin = nn.Linear(wf.shape[1], wf.shape[0])
        lin.weight.data = torch.tensor(wf * gain, dtype=torch.float32)
        lin.bias.data = torch.tensor(bf, dtype=torch.float32)
        return nn.Sequential(lin, *_activation(op)) if op.activation != "none" else lin
    if op.kind == "conv2d":  # TFLite (Cout, kh, kw, Cin) -> torch (Cout, Cin, kh, kw)
        wf = (w * s[:, None, None, None]).transpose(0, 3, 1, 2)
        cin, cout, groups = wf.shape[1], wf.shape[0], 1
    else:  # depthwise (kh, kw, C) -> (C, 1, kh, kw)
        wf = (w * s[None, None, :]).transpose(2, 0, 1)[:, None]
        cin = cout = groups = wf.shape[0]
    bf = op.bias.astype(np.float64) * x.scale * s + offset * wf.sum((1, 2, 3))
    conv = _conv(op, x.shape, cin, cout, groups)
    conv.weight.data = torch.tensor(wf * gain, dtype=torch.float32)
    conv.bias.data = torch.tensor(bf, dtype=torch.float32)
    return nn.Sequential(conv, *_activation(op))


def to_torch(g: Graph, fold_input: bool = True) -> GraphNet:
    """The int8 graph as a float network (eval mode) that reads x = p / 255.

    fold_input: fold the input's affine map into the first layer (the network can then be
    quantised again, but that layer's border outputs differ; see the module docstring);
    False keeps it as a first step, so every output is the int8 model's up to rounding."""
    return GraphNet(g, fold_input).eval()
