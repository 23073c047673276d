"""`make train` on the real detector apps: a few steps of float training, QAT and int8
evaluation on the app's own data (../shared/datasets), a checkpoint, and a resumed run."""


import pytest
import torch

from patchcam.app.config import load_app
from patchcam.training.commands import train as train_app

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("app", ["person_detect", "mask_detect"])
def test_a_few_training_steps_checkpoint_and_resume(app, tmp_path, capsys):
    cfg = load_app(app)
    if not all(cfg.data_path(s).exists() for s in cfg.data):
        pytest.skip(f"{app}: datasets not present")
    torch.set_num_threads(1)
    out = tmp_path / "run"
    args = [app, "--max-steps", "2", "--qat-epochs", "1", "--eval-every", "0",
            "--eval-limit", "3", "--calib", "8", "--threads", "1", "--out", str(out)]
    assert train_app.main([*args, "--epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert "float AP50" in text and "int8 AP50 (QAT" in text
    first = torch.load(out / "last.pt", weights_only=True)
    assert first["epoch"] == 1 and (out / "qat_last.pt").is_file()
    assert train_app.main([*args, "--epochs", "2", "--resume"]) == 0
    text = capsys.readouterr().out
    assert f"resuming {out / 'last.pt'} after epoch 1/2" in text
    second = torch.load(out / "last.pt", weights_only=True)
    assert [h["epoch"] for h in second["history"]] == [1, 2]


def test_train_names_a_wrong_app_in_one_line(capsys):
    assert train_app.main(["no_such_app"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no_such_app" in err and "\n" not in err


def test_teacher_is_refused_for_detectors(capsys):
    assert train_app.main(["person_detect", "--teacher", "none"]) == 2
    assert "classifier apps" in capsys.readouterr().err
