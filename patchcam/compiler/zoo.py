"""Model zoo: MobileNetV2-style inverted-residual networks described by a small config.

A config lists stages of inverted-residual blocks (expand ratio, output channels, repeats,
first stride, depthwise kernel 3/5/7). Convolutions pad like TFLite's 'SAME' (the odd pixel
goes bottom/right), so a trained network exports to TFLite without extra PAD ops and
the int8 graph, the .tflite file and the PyTorch model all compute on the same pixels.

Inputs are RGB (or grey) pixels p in 0..255; the network sees p / 255, which is exactly the
int8 tensor p - 128 with scale 1/255 and zero point -128 (`INPUT_SCALE`, `INPUT_ZERO_POINT`),
so the board's preprocessing is a subtraction. The configs and presets themselves are in
`patchcam.compiler.presets` (no torch) and re-exported here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from patchcam.compiler.ir import same_pads

# The configs live in presets (no torch); re-exported: callers keep writing zoo.Config etc.
from patchcam.compiler.presets import (  # noqa: F401
    INPUT_SCALE,
    INPUT_ZERO_POINT,
    MBV2_RD,
    MBV2_STAGES,
    PRESETS,
    Config,
    Stage,
    make_divisible,
    preset,
    redistribute,
)


class SameConv2d(nn.Conv2d):
    """Conv2d with TFLite 'SAME' padding (asymmetric when the stride does not divide)."""

    def __init__(self, cin: int, cout: int, k: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, groups: int = 1,
                 bias: bool = False):
        super().__init__(cin, cout, k, stride, 0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, same_pad_torch(x.shape[-2:], self.kernel_size,
                                                       self.stride)))


def same_pad_torch(hw, k, s) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) for F.pad: the IR's TFLite 'SAME' rule, in F.pad's order."""
    t, left, b, r = same_pads(int(hw[0]), int(hw[1]), tuple(k), tuple(s))
    return left, r, t, b


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
            act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [SameConv2d(cin, cout, k, stride, groups), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=False))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, kernel: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(cin, hidden, 1))
        layers += [conv_bn(hidden, hidden, kernel, stride, groups=hidden),
                   conv_bn(hidden, cout, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class Backbone(nn.Module):
    """Stem + inverted-residual stages (+ final 1x1 conv). Returns the feature map."""

    def __init__(self, cfg: Config):
        super().__init__()
        c = make_divisible(cfg.stem * cfg.width)
        layers: list[nn.Module] = [conv_bn(cfg.in_channels, c, 3, 2)]
        self.stage_ends: list[int] = []  # index of each stage's last block (for heads)
        for st in cfg.stages:
            cout = make_divisible(st.channels * cfg.width)
            for i in range(st.repeats):
                layers.append(InvertedResidual(c, cout, st.stride if i == 0 else 1, st.expand,
                                               st.kernel))
                c = cout
            self.stage_ends.append(len(layers) - 1)
        if cfg.last:
            layers.append(conv_bn(c, make_divisible(cfg.last * max(1.0, cfg.width)), 1))
            c = make_divisible(cfg.last * max(1.0, cfg.width))
        self.features = nn.Sequential(*layers)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class Classifier(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.backbone.out_channels, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.backbone(x)), 1))


def build_classifier(cfg: Config | str) -> Classifier:
    return Classifier(preset(cfg) if isinstance(cfg, str) else cfg)
