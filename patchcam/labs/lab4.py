"""Lab 4: an app of the student's own (build/labs/lab4/wakeword/app.toml) and an example
photo set to use until their own photos are ready (docs/labs/lab4_wakeword.md).

The example set is drawn here, not photographed: a "no entry" road sign (a red disc with a
white bar) at any size and place on cluttered backgrounds, and the same backgrounds with
look-alikes (red squares, blue discs with a bar, orange discs without one) or nothing. It is
deterministic (seeded), needs no download, and is as hard as a first wake word should be.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from patchcam.paths import REPO

SIZE = 128  # drawn at 128x128; the app's input is 96x96, resized as any photo is
COUNTS = {False: (100, 30), True: (24, 12)}  # fast -> (per class for training, per class new)

APP_TOML = """\
# Lab 4: your own wake word (docs/labs/lab4_wakeword.md). An app like apps/vww/app.toml:
# `make train APP=build/labs/lab4/wakeword/app.toml` trains it, INSTALL=1 writes weights/ and
# generated/ beside this file, `make eval APP=...` measures it.

[app]
name = "wakeword"
task = "classify"
description = "is the target in view? 96x96 RGB, for boards with 32 kB of activation SRAM"

[input]
width = 96
height = 96
color = "rgb"

[classes]
names = ["other", "target"]   # the sub-folders of your photo folder must be named like this
positive = "target"

[thresholds]
score = 0.5

[board]
arena_kb = 32              # peak activation SRAM of the planned schedule
flash_kb = 1024
targets = ["qemu_m7", "host"]

[model]
preset = "mcu-s-96"        # `.venv/bin/patchcam presets`

[train]
epochs = {epochs}                 # float epochs: more learn more, and take longer
lr = 0.004
batch = 32
qat_epochs = {qat_epochs}             # quantisation-aware epochs after them
qat_lr = 0.0001
seed = 0
balance_classes = true

# Your photos: a folder with one sub-folder per class (target/, other/), about 100 photos
# each. Until you have them, the example set `make lab N=4` drew:
[[data]]
path = "{data}"
"""


def background(rng: np.random.Generator) -> np.ndarray:
    """A smooth random colour field with a few random shapes on it (BGR uint8)."""
    coarse = rng.uniform(30, 220, (4, 4, 3)).astype(np.float32)
    img = cv2.resize(coarse, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(2, 7)):
        colour = tuple(float(v) for v in rng.uniform(20, 235, 3))
        c = tuple(int(v) for v in rng.integers(0, SIZE, 2))
        if rng.random() < 0.5:
            d = tuple(int(v) for v in rng.integers(4, 40, 2))
            cv2.rectangle(img, c, (c[0] + d[0], c[1] + d[1]), colour, -1)
        else:
            ax = tuple(int(v) for v in rng.integers(4, 30, 2))
            cv2.ellipse(img, c, ax, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    return img


def sign(img: np.ndarray, rng: np.random.Generator, colour: tuple[float, float, float],
         bar: bool, square: bool = False) -> None:
    """A disc (or square) of `colour` with an optional white bar, anywhere, any size."""
    r = int(rng.integers(10, 38))
    cx, cy = (int(v) for v in rng.integers(r // 2, SIZE - r // 2, 2))
    if square:
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
    else:
        cv2.circle(img, (cx, cy), r, colour, -1, cv2.LINE_AA)
        cv2.circle(img, (cx, cy), r, (235, 235, 235), max(1, r // 10), cv2.LINE_AA)
    if bar:
        h = max(2, r // 4)
        cv2.rectangle(img, (cx - int(0.7 * r), cy - h), (cx + int(0.7 * r), cy + h),
                      (245, 245, 245), -1)


RED, BLUE, ORANGE = (40.0, 30.0, 200.0), (180.0, 70.0, 30.0), (30.0, 140.0, 240.0)


def draw(target: bool, rng: np.random.Generator) -> np.ndarray:
    img = background(rng)
    if target:
        sign(img, rng, RED, bar=True)
    else:
        kind = rng.integers(0, 4)
        if kind == 1:
            sign(img, rng, RED, bar=False, square=True)
        elif kind == 2:
            sign(img, rng, BLUE, bar=True)
        elif kind == 3:
            sign(img, rng, ORANGE, bar=False)
    gain = float(rng.uniform(0.6, 1.3))
    return np.clip(img * gain, 0, 255).astype(np.uint8)


def write_set(root: Path, per_class: int, seed: int) -> None:
    """root/target/*.jpg and root/other/*.jpg, `per_class` each."""
    rng = np.random.default_rng(seed)
    for cls in ("target", "other"):
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            cv2.imwrite(str(d / f"{cls}_{i:03d}.jpg"), draw(cls == "target", rng),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])


def prepare(root: Path, fast: bool) -> None:
    """build/labs/lab4/: example/ (training), example_new/ (never trained on) and
    wakeword/app.toml pointing at example/."""
    train_n, new_n = COUNTS[fast]
    for name, n, seed in (("example", train_n, 4), ("example_new", new_n, 40)):
        d = root / name
        have = sum(1 for _ in d.glob("*/*.jpg")) if d.is_dir() else 0
        if have != 2 * n:
            for old in d.glob("*/*.jpg"):
                old.unlink()
            write_set(d, n, seed)
            print(f"  wrote {d.relative_to(REPO)}/ ({n} 'target' + {n} 'other' photos)")
        else:
            print(f"  kept {d.relative_to(REPO)}/ ({n} 'target' + {n} 'other' photos)")
    toml = root / "wakeword" / "app.toml"
    epochs, qat = (1, 1) if fast else (30, 2)
    text = APP_TOML.format(epochs=epochs, qat_epochs=qat,
                           data=(root / "example").relative_to(REPO).as_posix())
    if toml.exists() and not fast:
        print(f"  kept {toml.relative_to(REPO)} (yours; delete it to start again)")
        return
    toml.parent.mkdir(parents=True, exist_ok=True)
    toml.write_text(text)
    print(f"  wrote {toml.relative_to(REPO)}")
