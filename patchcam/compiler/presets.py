"""Network configs without PyTorch: the zoo's `Config` / `Stage`, its presets, receptive-field
redistribution and the feature stride.

`patchcam.compiler.zoo` builds the PyTorch modules from these (and re-exports every name
here). app.toml validation (`patchcam.app.config`) and the commands that never train
(`patchcam presets`, `view`, `flash`) read them from here, so they do not import torch (5-8 s).

Inputs are RGB (or grey) pixels p in 0..255; the network sees p / 255, which is exactly the
int8 tensor p - 128 with scale 1/255 and zero point -128 (`INPUT_SCALE`, `INPUT_ZERO_POINT`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

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


def feature_stride(cfg: Config) -> int:
    """The backbone's output stride: the stem's 2 times every stage's first stride."""
    return 2 * math.prod(st.stride for st in cfg.stages)
