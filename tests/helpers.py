"""What several test files share: the tiny detect app, the tiny detector model the app-loop
tests build (layer by layer or with a fused input), and loading a datasets/ script.

    from helpers import load_script, tiny_detect_toml, tiny_detector_model
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from patchcam.app.export import AppSpec
from patchcam.compiler import patchplan
from patchcam.compiler.builder import GraphBuilder
from patchcam.targets import boards

REPO = Path(__file__).resolve().parents[1]

TINY_DETECT = """
[app]
name = "tiny_detect"
task = "detect"
[input]
width = 32
height = 32
color = "rgb"
[classes]
names = ["person"]
[thresholds]
score = 0.4
[board]
arena_kb = 128
flash_kb = 1024
[model]
preset = "mcu-m-128"
[model.overrides]
width = 0.25
num_stages = 3
stage_strides = [1, 2, 2]
[model.head]
stride = 8
channels = 8
blocks = 1
kernel = 3
[train]
epochs = {epochs}
lr = 0.003
batch = 4
qat_epochs = 0
"""


def tiny_detect_toml(data: Path | None, epochs: int = 2,
                     class_map: dict[str, str] | None = None) -> str:
    """The app.toml of a detect app small enough to train for a few steps on a CPU in
    seconds: 32x32 RGB input, one class `person`, a three-stage backbone of width 0.25 and a
    stride-8 head, no QAT. data: a YOLO folder, its one [[data]] source (None: no source,
    the caller adds its own); class_map: dataset class -> app class for that source."""
    text = TINY_DETECT.format(epochs=epochs)
    if data is None:
        return text
    text += f'[[data]]\npath = "{data}"\nformat = "yolo"\n'
    if class_map:
        text += "class_map = { " + ", ".join(f'{k} = "{v}"' for k, v in class_map.items()) \
            + " }\n"
    return text


def load_script(name: str) -> ModuleType:
    """datasets/<name>.py as a module (the prepare scripts are scripts, not a package; their
    own `import _coco` finds datasets/ on sys.path)."""
    if str(REPO / "datasets") not in sys.path:
        sys.path.insert(0, str(REPO / "datasets"))
    spec = importlib.util.spec_from_file_location(name, REPO / "datasets" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tiny_detector():
    """Two stride-2 3x3 convs and a 1x1 head: a (4, 6, 2 + 4) grid on a 16 x 24 RGB input, box
    channels biased positive so that boxes are mostly non-empty and NMS has work to do. In
    2x3 cached patches its input windows overlap (halos) and reach the last input row and
    column, so a window off by one there falls outside the input."""
    rng = np.random.default_rng(0)
    b = GraphBuilder("tiny_det", (16, 24, 3), 1 / 255, -128)
    x, cin = b.input, 3
    for cout in (8, 8):
        w = rng.integers(-127, 128, (cout, 3, 3, cin)).astype(np.int8)
        x = b.conv2d(x, w, rng.uniform(0.002, 0.01, cout).astype(np.float32),
                     rng.integers(-300, 300, cout).astype(np.int32), 0.05, -10, 2, "same",
                     "relu6")
        cin = cout
    w = rng.integers(-127, 128, (6, 1, 1, cin)).astype(np.int8)
    bias = np.concatenate([rng.integers(-300, 300, 2), rng.integers(6000, 14000, 4)])
    x = b.conv2d(x, w, rng.uniform(0.002, 0.01, 6).astype(np.float32), bias.astype(np.int32),
                 0.08, 0, 1, "same", "none")
    return b.finish(x, {"source": "test"})


def tiny_detector_model(out: Path, variant: str):
    """(graph, AppSpec, generated model folder) of tiny_detector(): variant "layer" runs it
    layer by layer, "fused" as the apps ship (ops 0..1 in 2x3 cached patches whose input
    windows the app loop preprocesses straight from the frame; some patches read no new
    input)."""
    g = tiny_detector()
    spec = AppSpec.detect("tiny_det", g, ["a", "b"], score_threshold=0.3, nms_iou=0.4,
                          max_detections=8)
    schedule = None
    if variant == "fused":
        schedule = patchplan.plan_patches(g, 1, (2, 3), "cache", fuse_input=True)
    model_dir = boards.prepare_model(g, spec, out, schedule)
    fused = "#define MODEL_FUSED_INPUT 1" in (model_dir / "model.h").read_text()
    assert fused == (variant == "fused")
    return g, spec, model_dir
