"""Ctrl-C in the training commands other than `patchcam train` (tests/test_train_detect.py has
that one): `patchcam pretrain`, `leave-sources-out` and `finetune` end with one line saying
where they stopped, what checkpoint there is and the command that goes on, exit status 130,
no traceback (patchcam.training.interrupt). The Ctrl-C is a KeyboardInterrupt raised by a
monkeypatched step; the data and the training are stand-ins, so no dataset is read."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from patchcam.training import classifier as tc
from patchcam.training import interrupt, loop
from patchcam.training.commands import finetune_imported as ft
from patchcam.training.commands import leave_sources_out as lso
from patchcam.training.commands import pretrain_backbone as pb


def _ctrl_c(main, args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run a command's main(args); it must return 130 and print one line, no traceback.
    A KeyboardInterrupt it lets out fails the test (instead of stopping pytest)."""
    try:
        rc = main(args)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped the command")
    err = capsys.readouterr().err
    assert rc == interrupt.INTERRUPTED == 130
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
    assert len(lines) == 1, err
    return lines[0]


def _no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tc, "read_sources", lambda cfg, exclude=frozenset(): [])


def _raise(e: BaseException):
    def f(*_a, **_k):
        raise e
    return f


# ---- patchcam pretrain ------------------------------------------------------------------------
def test_pretrain_ctrl_c_in_an_epoch_after_a_checkpoint(tmp_path, monkeypatch, capsys):
    _no_data(monkeypatch)
    out = tmp_path / "bb"

    def train_student(*_a, **_k):
        out.mkdir()
        (out / "last.pt").write_bytes(b"checkpoint")
        raise loop.Interrupted("float", 2, 3, 1, out / "last.pt")
    monkeypatch.setattr(tc, "train_student", train_student)
    args = ["person_detect", "--teacher", "none", "--epochs", "3", "--out", str(out)]
    assert _ctrl_c(pb.main, args, capsys) == (
        f"interrupted at epoch 2 batch 3; checkpoint written after epoch 1 ({out / 'last.pt'}); "
        f"resume with `patchcam pretrain person_detect --teacher none --epochs 3 --out {out} "
        "--resume`")


def test_pretrain_ctrl_c_before_any_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tc, "read_sources", _raise(KeyboardInterrupt()))
    out = tmp_path / "bb"
    line = _ctrl_c(pb.main, ["person_detect", "--teacher", "none", "--out", str(out)], capsys)
    assert line == ("interrupted outside the training epochs (reading data, evaluating or "
                    "exporting); no checkpoint yet; start again with `patchcam pretrain "
                    f"person_detect --teacher none --out {out}`")


# ---- patchcam leave-sources-out -----------------------------------------------------------
def test_leave_sources_out_ctrl_c_in_the_qat_phase(tmp_path, monkeypatch, capsys):
    _no_data(monkeypatch)
    out = tmp_path / "lso"

    def train_student(cfg, tr, va, o, q, out_dir, *_a, **_k):
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "last.pt").write_bytes(b"float")
        raise loop.Interrupted("qat", 1, 0, None, Path(out_dir) / "qat_last.pt")
    monkeypatch.setattr(tc, "train_student", train_student)
    line = _ctrl_c(lso.main, ["--arms", "none", "--qat-epochs", "1", "--out", str(out)], capsys)
    assert line == (
        f"interrupted at qat epoch 1 (between batches); float model complete in "
        f"{out / 'none' / 'last.pt'}, no qat checkpoint yet; resume with `patchcam "
        f"leave-sources-out --arms none --qat-epochs 1 --out {out} --resume`")


def test_leave_sources_out_ctrl_c_in_the_second_arm_keeps_the_first(tmp_path, monkeypatch,
                                                                    capsys):
    """The first arm finished (its checkpoint is there); the second stopped before its first:
    resuming continues, and the line names both folders."""
    _no_data(monkeypatch)
    monkeypatch.setattr(lso, "Teacher", lambda *_a: object())
    monkeypatch.setattr(lso, "locate", lambda spec: spec)
    monkeypatch.setattr(tc, "evaluate", lambda *_a, **_k: {
        "images": 1, "float": 0.5, "float_per_source": {"vww_neg_food101": {"accuracy": 0.5}}})
    out = tmp_path / "lso"

    def train_student(cfg, tr, va, o, q, out_dir, *_a, **_k):
        if Path(out_dir).name == "none":
            Path(out_dir).mkdir(parents=True)
            (Path(out_dir) / "last.pt").write_bytes(b"done")
            return types.SimpleNamespace(history=[{"seconds": 1.0}], probe=None)
        raise loop.Interrupted("float", 1, 1, None, Path(out_dir) / "last.pt")
    monkeypatch.setattr(tc, "train_student", train_student)
    line = _ctrl_c(lso.main, ["--arms", "none", "teacher", "--out", str(out)], capsys)
    assert line == (
        f"interrupted at epoch 1 batch 1; no checkpoint yet in {out / 'teacher'}; checkpoint in "
        f"{out / 'none' / 'last.pt'}; resume with `patchcam leave-sources-out --arms none "
        f"teacher --out {out} --resume`")
    assert (out / "results.json").is_file()  # the finished arm's figures are kept


# ---- patchcam finetune --------------------------------------------------------------------
@pytest.fixture
def imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for TFLite Micro's person_detect (96x96 grey) and no photos."""
    _no_data(monkeypatch)
    g = types.SimpleNamespace(name="person_detect", input=0,
                              tensors=[types.SimpleNamespace(shape=(96, 96, 1))])
    monkeypatch.setattr(ft, "locate", lambda spec: Path(spec))
    monkeypatch.setattr(ft, "import_tflite", lambda path: g)
    monkeypatch.setattr(tc, "load_clean", _raise(KeyboardInterrupt()))


def test_finetune_ctrl_c_outside_the_epochs(tmp_path, imported, capsys):
    out = tmp_path / "ft"
    line = _ctrl_c(ft.main, ["--model", "m.tflite", "--out", str(out)], capsys)
    assert line == ("interrupted outside the training epochs (reading data, evaluating or "
                    "exporting); no checkpoint yet; start again with `patchcam finetune "
                    f"--model m.tflite --out {out}`")
    # a float model already written: the same Ctrl-C offers to resume from it
    out.mkdir()
    (out / "last.pt").write_bytes(b"float")
    line = _ctrl_c(ft.main, ["--model", "m.tflite", "--out", str(out), "--resume"], capsys)
    assert line.endswith(f"; checkpoint in {out / 'last.pt'}; resume with `patchcam finetune "
                         f"--model m.tflite --out {out} --resume`")


def test_a_ctrl_c_while_loading_is_one_line_too(monkeypatch, capsys):
    """`patchcam pretrain ...` interrupted while its modules (PyTorch) still load."""
    import importlib

    from patchcam import cli
    monkeypatch.setattr(importlib, "import_module", _raise(KeyboardInterrupt()))
    assert cli.main(["pretrain", "person_detect", "--epochs", "1"]) == 130
    assert capsys.readouterr().err.strip() == (
        "interrupted while starting; nothing done; start again with `patchcam pretrain "
        "person_detect --epochs 1`")
