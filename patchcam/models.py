"""Resolve what a user names on the command line into an int8 graph.

A model is named by a zoo preset (`mbv2-1.0-224`: random weights, calibrated on random
images - right for memory, MACs and speed, meaningless for accuracy), an IR file (`.json`,
what `make export` writes) or an app name whose exported IR exists.
"""

from __future__ import annotations

from pathlib import Path

import torch

from patchcam import quantize, zoo
from patchcam.ir import Graph


class ModelNotFound(ValueError):
    pass


def preset_graph(name: str, seed: int = 0, calib_images: int = 4) -> Graph:
    """A zoo preset with random weights, quantised after calibration on random images."""
    cfg = zoo.preset(name)
    torch.manual_seed(seed)
    model = zoo.build_classifier(cfg)
    shape = (cfg.in_channels, *cfg.resolution)
    gen = torch.Generator().manual_seed(seed)
    calib = [torch.rand(calib_images, *shape, generator=gen)]
    # Give BatchNorm the statistics of these inputs, as training would: without it random
    # weights shrink or blow up the activations layer after layer, and the int8 scales with
    # them, which is nothing like a trained network.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the batches below
    with torch.no_grad():
        model.train()(calib[0])
    model.eval()
    return quantize.quantize(model, shape, calib, name,
                             {"source": "preset", "preset": name, "weights": "random"})


def load_graph(spec: str) -> Graph:
    if spec in zoo.PRESETS:
        return preset_graph(spec)
    p = Path(spec)
    if p.suffix == ".json" and p.is_file():
        return Graph.load(p)
    app_ir = Path("apps") / spec / "generated" / "model.json"
    if app_ir.is_file():
        return Graph.load(app_ir)
    raise ModelNotFound(f"no model {spec!r}: name a preset ({', '.join(zoo.PRESETS)}), "
                        "an IR file (.json) or an app with an exported model")
