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
column). Fine-tuning then adapts to the new input. The result is made
of standard layers (`zoo.SameConv2d`, `nn.Linear`, pooling, ReLU6), so `patchcam.compiler.quantize`
folds and quantises it again.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from patchcam.compiler import zoo
from patchcam.compiler.ir import Graph, Op, same_pads

SUPPORTED = ("conv2d", "depthwise_conv2d", "fully_connected", "avg_pool2d", "max_pool2d",
             "mean", "add")


class DequantizeError(ValueError):
    """A graph this module cannot turn into a float network (names the op and why)."""


class GraphNet(nn.Module):
    """The graph's ops as float layers, run in the graph's order (branches and adds too)."""

    def __init__(self, g: Graph) -> None:
        super().__init__()
        self.input_name, self.output_name = g.input, g.output
        self.steps: list[tuple[str, str, list[str], str]] = []  # kind, module, inputs, output
        self.layers = nn.ModuleDict()
        first = True
        for i, op in enumerate(g.ops):
            if op.kind not in SUPPORTED:
                raise DequantizeError(f"op {i} ({op.kind} '{op.name}'): not supported; "
                                      f"supported: {', '.join(SUPPORTED)}")
            key = f"op{i}"
            layer = _layer(g, op, i, input_affine(g) if first and op.inputs[0] == g.input
                           else (1.0, 0.0))
            if layer is not None:
                self.layers[key] = layer
            if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
                first = False
            self.steps.append((op.kind, key, list(op.inputs), op.output))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vals = {self.input_name: x}
        for kind, key, inputs, output in self.steps:
            a = vals[inputs[0]]
            if kind == "add":
                y = a + vals[inputs[1]]
                act = self.layers[key] if key in self.layers else None
                vals[output] = act(y) if act is not None else y
            elif kind == "mean":
                vals[output] = a.mean((2, 3))
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


def _layer(g: Graph, op: Op, i: int, affine: tuple[float, float]) -> nn.Module | None:
    gain, offset = affine
    x = g.tensors[op.inputs[0]]
    if op.kind in ("avg_pool2d", "max_pool2d"):
        if any(op.pads):
            raise DequantizeError(f"op {i} ({op.kind} '{op.name}'): padded pooling is not "
                                  "supported")
        pool = nn.AvgPool2d if op.kind == "avg_pool2d" else nn.MaxPool2d
        return nn.Sequential(pool(op.kernel, op.stride), *_activation(op))
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
    h, wd = x.shape[:2]
    if tuple(op.pads) != same_pads(h, wd, op.kernel, op.stride) and any(op.pads):
        raise DequantizeError(f"op {i} ({op.kind} '{op.name}'): padding {op.pads} is neither "
                              "VALID nor TFLite SAME")
    if op.kind == "conv2d":  # TFLite (Cout, kh, kw, Cin) -> torch (Cout, Cin, kh, kw)
        wf = (w * s[:, None, None, None]).transpose(0, 3, 1, 2)
        cin, cout, groups = wf.shape[1], wf.shape[0], 1
    else:  # depthwise (kh, kw, C) -> (C, 1, kh, kw)
        wf = (w * s[None, None, :]).transpose(2, 0, 1)[:, None]
        cin = cout = groups = wf.shape[0]
    bf = op.bias.astype(np.float64) * x.scale * s + offset * wf.sum((1, 2, 3))
    if any(op.pads):
        conv = zoo.SameConv2d(cin, cout, op.kernel[0], op.stride[0], groups, bias=True)
    else:
        conv = nn.Conv2d(cin, cout, op.kernel, op.stride, groups=groups, bias=True)
    conv.weight.data = torch.tensor(wf * gain, dtype=torch.float32)
    conv.bias.data = torch.tensor(bf, dtype=torch.float32)
    return nn.Sequential(conv, *_activation(op))


def to_torch(g: Graph) -> GraphNet:
    """The int8 graph as a float network (eval mode)."""
    return GraphNet(g).eval()
