"""The classifier recipe: a few training steps end to end (folder mode on generated images,
app mode on real photos), checkpoints and resume, fixed views, distillation with the real
MobileNetV2 teacher, and the teacher file's checks."""

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from patchcam.app.config import load_app
from patchcam.compiler import zoo
from patchcam.training import checkpoint, readers, teacher
from patchcam.training import classifier as tc

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
    res = subprocess.run([sys.executable, "-m", "patchcam.training.commands.train_classifier",
                          str(tmp_path / "data"), "--epochs", "1", "--batch", "8",
                          "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "test accuracy: float" in res.stdout
    model, meta = checkpoint.load_classifier(out)
    assert meta["recipe"]["epochs"] == 1 and 0 <= meta["int8_float_agreement"] <= 1
    assert model.cfg.num_classes == 2


def test_missing_folder_is_one_clear_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "patchcam.training.commands.train_classifier",
                          str(tmp_path / "nope")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and "not found" in res.stderr
    assert "Traceback" not in res.stderr


# ---- app mode (--app vww) on real photos, distillation with the real teacher -------------
SHARED = ROOT.parent / "shared"
TEACHER_FILE = SHARED / "models" / "mobilenet_v2_quantized_1x3x224x224.tflite"
needs_data = pytest.mark.skipif(not (SHARED / "datasets" / "vww_pos_har_actions").is_dir(),
                                reason="../shared/datasets is not present")
needs_teacher = pytest.mark.skipif(not TEACHER_FILE.is_file(),
                                   reason="../shared/models has no MobileNetV2 teacher")


def _real_folder(tmp_path: Path, n: int = 20) -> Path:
    """A labels.csv naming n person + n no_person photos of the shared sets, linked into the
    folder (a labels.csv may only name files inside its folder; nothing is copied)."""
    out = tmp_path / "data"
    out.mkdir()
    rows = []
    for d in ("vww_pos_har_actions", "vww_neg_house_rooms"):
        with (SHARED / "datasets" / d / "labels.csv").open(newline="") as f:
            for i, r in enumerate(list(csv.DictReader(f))[:n]):
                link = out / f"{d}_{i}{Path(r['file']).suffix}"
                link.symlink_to(SHARED / "datasets" / d / r["file"])
                rows.append((link.name, r["label"]))
    (out / "labels.csv").write_text("file,label\n" + "".join(f"{p},{lb}\n" for p, lb in rows))
    return out


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "patchcam.training.commands.train_classifier",
                           *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@needs_data
def test_app_mode_checkpoints_every_epoch_and_resumes(tmp_path):
    data = _real_folder(tmp_path)
    out = tmp_path / "ckpt"
    common = ["--app", "vww", "--data", str(data), "--teacher", "none", "--batch", "8",
              "--max-steps", "2", "--views", "2", "--qat-epochs", "1", "--out", str(out),
              "--threads", "1"]
    res = _run([*common, "--epochs", "1"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "test accuracy: float" in res.stdout and "int8" in res.stdout
    d = torch.load(out / "last.pt", weights_only=True)
    assert d["epoch"] == 1 and len(d["history"]) == 1 and "val_acc" in d["history"][0]
    assert torch.load(out / "qat_last.pt", weights_only=True)["epoch"] == 1
    first = {k: v.clone() for k, v in d["state"].items()}

    res = _run([*common, "--epochs", "2", "--resume"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "resuming" in res.stdout and "after epoch 1/2" in res.stdout
    d = torch.load(out / "last.pt", weights_only=True)
    assert d["epoch"] == 2 and [h["epoch"] for h in d["history"]] == [1, 2]
    assert any(not torch.equal(first[k], v) for k, v in d["state"].items())  # it trained on


def test_views_are_the_same_for_teacher_and_student():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)
    ok, enc = cv2.imencode(".png", img)
    small, big = tc.make_views(enc.tobytes(), "ab12cd34ef56ab12cd34", 3, 0, (96, 96), False)
    assert small.shape == (3, 96, 96, 3) and big.shape == (3, 224, 224, 3)
    for s, b in zip(small, big, strict=True):  # the student's view is the teacher's, resized
        assert np.array_equal(s, cv2.resize(b, (96, 96), interpolation=cv2.INTER_AREA))
    assert not np.array_equal(big[1], big[2])  # views differ ...
    again = tc.make_views(enc.tobytes(), "ab12cd34ef56ab12cd34", 3, 0, (96, 96), False)
    assert np.array_equal(again[0], small)  # ... and are reproducible


def test_distillation_loss_is_zero_only_when_student_matches_teacher():
    o = tc.FitOptions(epochs=1, lr=1e-3)
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    y = torch.tensor([0, 1])
    _, kd_same = tc.loss_fn(logits, y, logits.clone(), o)
    _, kd_diff = tc.loss_fn(logits, y, -logits, o)
    assert abs(kd_same) < 1e-6 and kd_diff > 0.5


@needs_teacher
def test_teacher_sees_a_cat():
    from skimage import data as skdata
    t = teacher.Teacher(teacher.locate(str(TEACHER_FILE)), threads=1)
    img = cv2.resize(skdata.chelsea(), (224, 224), interpolation=cv2.INTER_AREA)
    assert int(t.logits(img[None]).argmax()) in range(281, 286)  # ImageNet's cats


@needs_data
@needs_teacher
def test_distillation_steps_with_the_real_teacher(tmp_path, monkeypatch):
    monkeypatch.setattr(tc, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(teacher, "CACHE", tmp_path / "cache")
    cfg = load_app("vww")
    samples = [s for s in readers.read_folder(_real_folder(tmp_path, 4))]
    t = teacher.Teacher(teacher.locate(str(TEACHER_FILE)), threads=1)
    data = tc.load_views(samples, cfg, 2, 0, t, desc="kd-test")
    assert data.views.shape == (8, 2, 96, 96, 3) and data.teacher_logits.shape == (8, 2, 1000)
    probe = tc.fit_probe(data, 2)
    assert data.soft.shape == (8, 2, 2)
    assert tc.accuracy(probe(data.teacher_logits[:, 0]).argmax(1), data.labels) == 1.0

    model = zoo.Classifier(cfg.zoo_config())
    before = [p.detach().clone() for p in model.parameters()]
    hist = tc.fit(model, data, tc.FitOptions(epochs=1, lr=1e-3, batch=4), tmp_path / "out")
    assert hist[0]["kd"] > 0 and np.isfinite(hist[0]["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))

    # a second run takes every teacher output from the cache: the teacher must not run
    monkeypatch.setattr(teacher.Teacher, "raw", lambda *a: pytest.fail("teacher ran again"))
    again = tc.load_views(samples, cfg, 2, 0, t, desc="kd-test")
    assert np.array_equal(again.teacher_logits, data.teacher_logits)


def test_missing_teacher_is_one_clear_line(tmp_path):
    res = _run(["--app", "vww", "--teacher", str(tmp_path / "nope.tflite")], tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: teacher model ")
    assert "not found" in lines[0] and "--teacher none" in lines[0]
    assert "github" in lines[0] and "Traceback" not in res.stderr


def test_teacher_with_wrong_sha256_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / teacher.FILE
    bad.write_bytes(b"not the model")
    with pytest.raises(teacher.TeacherError, match="SHA-256"):
        teacher.locate(str(bad))
    # a download that does not match is refused and removed, so it is fetched again next time
    monkeypatch.delenv("PATCHCAM_MODELS", raising=False)
    monkeypatch.setattr(teacher, "SEARCH", (tmp_path / "dl", tmp_path / "none"))

    def fake_download(url: str, dest: Path, **_) -> Path:
        assert url == teacher.URL
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"truncated")
        return dest

    monkeypatch.setattr(teacher.dl, "download", fake_download)
    with pytest.raises(teacher.TeacherError, match="SHA-256"):
        teacher.locate("auto")
    assert not (tmp_path / "dl" / teacher.FILE).exists()
    with pytest.raises(teacher.TeacherError, match="not found.*--teacher none"):
        teacher.locate("auto", allow_download=False)
