"""Resolve what a user names on the command line into an int8 graph.

A model is named by a zoo preset (`mbv2-1.0-224`), an IR file (`.json`, what `python -m patchcam
save-ir` writes), an int8 `.tflite` (imported by `tflite_import`) or an app (`vww`): its
exported IR when there is one, else its untrained network.
Untrained networks get random weights, calibrated on random images: right for memory, MACs
and speed, meaningless for accuracy (the graph's meta says `"weights": "random"`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from patchcam.compiler import quantize, zoo
from patchcam.compiler.ir import Graph
from patchcam.paths import APPS


class ModelNotFound(ValueError):
    pass


def random_weights_graph(model: nn.Module, shape: tuple[int, int, int], name: str,
                         meta: dict, seed: int = 0, calib_images: int = 4) -> Graph:
    """Quantise an untrained float model; shape is (C, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    calib = torch.rand(calib_images, *shape, generator=gen)
    # Give BatchNorm the statistics of these inputs, as training would: without it random
    # weights shrink or blow up the activations layer after layer, and the int8 scales with
    # them, which is nothing like a trained network.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the batch below
    with torch.no_grad():
        model.train()(calib)
    return quantize.quantize(model.eval(), shape, [calib], name, {**meta, "weights": "random"})


def preset_graph(name: str, seed: int = 0) -> Graph:
    """A zoo preset with random weights."""
    cfg = zoo.preset(name)
    torch.manual_seed(seed)
    return random_weights_graph(zoo.build_classifier(cfg), (cfg.in_channels, *cfg.resolution),
                                name, {"source": "preset", "preset": name}, seed)


def app_graph(app: str) -> Graph:
    """The app's exported model, or its untrained network when it has not been exported."""
    exported = APPS / app / "generated" / "model.json"
    if exported.is_file():
        return Graph.load(exported)
    return untrained_app_graph(app)


def untrained_app_graph(app: str | Path) -> Graph:
    """The network an app config (a name or an app.toml path) describes, with random weights:
    what a changed config (another input size, more stages) costs before anything is trained."""
    from patchcam.app.config import load_app
    cfg = load_app(app)
    zc = cfg.zoo_config()
    torch.manual_seed(0)
    return random_weights_graph(cfg.build_model(), (zc.in_channels, *zc.resolution),
                                cfg.app.name, {"source": "app", "app": cfg.app.name,
                                               "preset": cfg.model.preset})


def load_graph(spec: str) -> Graph:
    if spec in zoo.PRESETS:
        return preset_graph(spec)
    p = Path(spec)
    if p.suffix == ".json" and p.is_file():
        return Graph.load(p)
    if (APPS / spec / "app.toml").is_file():
        return app_graph(spec)
    if p.suffix == ".toml" and p.is_file():
        return untrained_app_graph(p)
    if p.suffix == ".tflite":
        if not p.is_file():
            raise ModelNotFound(f"{spec}: no such .tflite file")
        from patchcam.compiler.tflite_import import import_tflite
        return import_tflite(p)
    apps = sorted(d.parent.name for d in APPS.glob("*/app.toml"))
    raise ModelNotFound(f"no model {spec!r}: name a preset ({', '.join(zoo.PRESETS)}), an app "
                        f"({', '.join(apps)}) or its app.toml, an IR file (.json) or an int8 "
                        ".tflite")
