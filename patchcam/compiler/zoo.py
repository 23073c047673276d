"""Model zoo: MobileNetV2-style inverted-residual networks described by a small config.

A config lists stages of inverted-residual blocks (expand ratio, output channels, repeats,
first stride, depthwise kernel 3/5/7). Convolutions pad like TFLite's 'SAME' (the odd pixel
goes bottom/right), so a trained network exports to TFLite without extra PAD ops and
the int8 graph, the .tflite file and the PyTorch model all compute on the same pixels.

Inputs are RGB (or grey) pixels p in 0..255; the network sees p / 255, which is exactly the
int8 tensor p - 128 with scale 1/255 and zero point -128 (`INPUT_SCALE`, `INPUT_ZERO_POINT`),
so the board's preprocessing is a subtraction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from patchcam.compiler.ir import same_pads

INPUT_SCALE = 1.0 / 255.0
INPUT_ZERO_POINT = -128


@dataclass(frozen=True)
class Stage:
    expand: int  # expansion ratio of the 1x1 conv (1: no expansion conv)
    channels: int  # output channels before the width multiplier
    repeats: int
    stride: int  # stride of the first block of the stage
    kernel: int = 3  # depthwise kernel: 3, 5 or 7


@dataclass(frozen=True)
class Config:
    name: str
    resolution: tuple[int, int]  # (height, width)
    width: float
    stages: tuple[Stage, ...]
    stem: int = 32
    last: int = 1280  # channels of the final 1x1 conv (0: none)
    num_classes: int = 1000
    in_channels: int = 3
    description: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def with_(self, **kw) -> Config:
        return replace(self, **kw)


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of 8 (as MobileNetV2 does), never dropping below 90%."""
    n = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return n + divisor if n < 0.9 * v else n


MBV2_STAGES = (
    Stage(1, 16, 1, 1), Stage(6, 24, 2, 2), Stage(6, 32, 3, 2), Stage(6, 64, 4, 2),
    Stage(6, 96, 3, 1), Stage(6, 160, 3, 2), Stage(6, 320, 1, 1),
)

PRESETS: dict[str, Config] = {
    c.name: c for c in (
        Config("mbv2-1.0-224", (224, 224), 1.0, MBV2_STAGES,
               description="MobileNetV2 1.0 @224, ImageNet head: the network of MCUNetV2's "
                           "memory figure (1372 kB layer-by-layer peak)"),
        Config("mbv2-0.35-144", (144, 144), 0.35, MBV2_STAGES, num_classes=2,
               description="MobileNetV2 0.35 @144 with a 2-class head (visual wake words)"),
        Config("mcu-s-96", (96, 96), 0.35,
               (Stage(1, 16, 1, 1), Stage(3, 24, 2, 2), Stage(4, 32, 2, 2, 5),
                Stage(4, 64, 2, 2, 5), Stage(4, 96, 2, 1, 3), Stage(5, 160, 2, 2, 7)),
               stem=16, last=0, num_classes=2,
               description="MCUNet-like small VWW net @96 (mixed 3/5/7 kernels), 4.5M MACs"),
        Config("mcu-m-128", (128, 160), 0.5,
               (Stage(1, 16, 1, 1), Stage(4, 24, 2, 2), Stage(4, 40, 2, 2, 5),
                Stage(5, 80, 3, 2, 5), Stage(5, 96, 2, 1, 3), Stage(5, 192, 2, 2, 7)),
               stem=16, last=0, num_classes=2,
               description="MCUNet-like 160x128 backbone for the detection apps"),
    )
}


def redistribute(cfg: Config, patch_stages: int, small_kernel: int = 3, later_kernel: int = 7,
                 patch_repeats: tuple[int, ...] | None = None, name: str | None = None,
                 description: str = "") -> Config:
    """Receptive-field redistribution (MCUNetV2 §3.2): the first `patch_stages` stages (those
    a patch schedule runs patch by patch) get `small_kernel` depthwise kernels and, with
    `patch_repeats`, fewer blocks; the blocks taken out are appended to the first later stage,
    and every later stage gets `later_kernel`. A smaller receptive field in the patch stage
    means smaller halos, so less recomputation (or smaller caches); the later stages, which
    run layer by layer at low resolution, get the receptive field back cheaply."""
    if not 0 < patch_stages < len(cfg.stages):
        raise ValueError(f"patch_stages must be in 1..{len(cfg.stages) - 1}, got {patch_stages}")
    for k in (small_kernel, later_kernel):
        if k not in (3, 5, 7):
            raise ValueError(f"depthwise kernels are 3, 5 or 7, got {k}")
    reps = patch_repeats or tuple(st.repeats for st in cfg.stages[:patch_stages])
    if len(reps) != patch_stages or any(r < 1 for r in reps):
        raise ValueError(f"patch_repeats needs {patch_stages} counts >= 1, got {reps}")
    moved = sum(st.repeats - r for st, r in zip(cfg.stages, reps, strict=False))
    early = tuple(replace(st, kernel=small_kernel, repeats=r)
                  for st, r in zip(cfg.stages, reps, strict=False))
    later = [replace(st, kernel=later_kernel) for st in cfg.stages[patch_stages:]]
    later[0] = replace(later[0], repeats=later[0].repeats + max(0, moved))
    return replace(cfg, name=name or f"{cfg.name}-rd", stages=early + tuple(later),
                   description=description or f"{cfg.name} with receptive-field "
                   f"redistribution after stage {patch_stages}")


PRESETS[MBV2_RD.name] = (MBV2_RD := redistribute(
    PRESETS["mbv2-1.0-224"], 3, 3, 5, patch_repeats=(1, 1, 2), name="mbv2-rd-224",
    description="MobileNetV2 1.0 @224 with receptive-field redistribution: the stride-8 "
                "patch stage keeps 3x3 kernels with one block fewer in stages 2 and 3 (moved to "
                "stage 4), later stages use 5x5 depthwise kernels"))


def preset(name: str) -> Config:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]


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
