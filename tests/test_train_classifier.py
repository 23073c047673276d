"""A few training steps of the classifier recipe, end to end, on a generated image folder."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from patchcam import checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_train_classifier_writes_a_loadable_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("person", "no_person"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(24):
            img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
            if label == "person":
                img[10:30, 20:30] = 255  # something a net can learn in one epoch
            cv2.imwrite(str(tmp_path / "data" / label / f"{i}.png"), img)
    out = tmp_path / "w.pt"
    res = subprocess.run([sys.executable, str(ROOT / "training" / "train_classifier.py"),
                          str(tmp_path / "data"), "--epochs", "1", "--batch", "8",
                          "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "test accuracy: float" in res.stdout
    model, meta = checkpoint.load_classifier(out)
    assert meta["recipe"]["epochs"] == 1 and 0 <= meta["int8_float_agreement"] <= 1
    assert model.cfg.num_classes == 2


def test_missing_folder_is_one_clear_line(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "training" / "train_classifier.py"),
                          str(tmp_path / "nope")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and "not found" in res.stderr
    assert "Traceback" not in res.stderr
