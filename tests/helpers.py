"""What several test files share: the tiny detect app and loading a datasets/ script.

    from helpers import load_script, tiny_detect_toml
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
