"""The training loop the classifier and the detector share (patchcam.training.loop): an
interrupted and resumed run ends with the weights of an uninterrupted one, best.pt, and one
resume behaviour for every training command: --resume with no checkpoint is one error line."""

import numpy as np
import pytest
import torch
from torch import nn

from patchcam.compiler import zoo
from patchcam.training import classifier as tc
from patchcam.training import loop
from patchcam.training.commands import finetune_imported, leave_sources_out, pretrain_backbone
from patchcam.training.commands import train as train_app


class Toy:
    """A linear regression on 32 fixed points; `scores` are the epochs' val metrics."""
    pct_start = 0.2
    clip_grad = 1.0
    best = "val"

    def __init__(self, scores: list[float], interrupt_at: int | None = None):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(32, 3, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(32, generator=g)
        self.scores, self.interrupt_at = scores, interrupt_at

    def steps_per_epoch(self) -> int:
        return 4

    def epoch_order(self, epoch: int, rng: np.random.Generator) -> np.ndarray:
        if epoch == self.interrupt_at:
            raise KeyboardInterrupt
        return rng.permutation(32)

    def batch_loss(self, model, epoch, idx, pos, device):
        noise = torch.randn(len(idx)) * 0.01  # uses the per-epoch torch seed
        loss = ((model(self.x[idx]).squeeze(1) - self.y[idx] + noise) ** 2).mean()
        return loss, {"seen": len(idx)}

    def progress(self, totals, batches):
        return {}

    def record(self, totals, steps):
        return {"seen": totals["seen"]}

    def validate(self, net, epoch, device):
        return {"val": self.scores[epoch - 1]}


class Opts:
    epochs, lr, batch, seed, weight_decay, max_steps, ema = 3, 0.05, 8, 7, 0.0, None, 0.0


class EmaOpts(Opts):
    ema = 0.9


def _toy_run(task: Toy, ckpt, resume=False, opts=Opts):
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    return net, loop.train(net, task, opts(), ckpt,
                           lambda e, h: {"state": net.state_dict(), "epoch": e, "history": h},
                           lambda d: net.load_state_dict(d["state"]), resume, "toy")


def test_interrupted_and_resumed_equals_uninterrupted_and_best_survives(tmp_path):
    scores = [0.3, 0.7, 0.5]
    a, hist_a = _toy_run(Toy(scores), tmp_path / "a" / "last.pt")
    with pytest.raises(KeyboardInterrupt):
        _toy_run(Toy(scores, interrupt_at=2), tmp_path / "b" / "last.pt")
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["epoch"] == 2
    b, hist_b = _toy_run(Toy(scores), tmp_path / "b" / "last.pt", resume=True)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])
    drop = [{k: v for k, v in h.items() if k != "seconds"} for h in (*hist_a, *hist_b)]
    assert drop[:3] == drop[3:] and [h["epoch"] for h in hist_b] == [1, 2, 3]
    for d in "ab":  # best.pt is epoch 2 (val 0.7) in both, the resumed run did not overwrite it
        assert torch.load(tmp_path / d / "best.pt", weights_only=True)["epoch"] == 2
    assert loop.finished(tmp_path / "a" / "last.pt", 3)
    assert not loop.finished(tmp_path / "a" / "last.pt", 4)
    assert not loop.finished(tmp_path / "none.pt", 1)


def test_weight_average_ramps_its_decay_and_follows_integer_buffers():
    net = nn.BatchNorm1d(2)
    avg = loop.WeightAverage(net, 0.5)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.weight.fill_(3.0)
        net.num_batches_tracked.fill_(5)
    avg.update(net)  # decay min(0.5, 2 / 11): mostly the new weights
    d = 2 / 11
    assert torch.allclose(avg.state["weight"], start["weight"] * d + 3.0 * (1 - d))
    assert int(avg.state["num_batches_tracked"]) == 5
    for _ in range(20):
        avg.update(net)
    assert avg.updates == 21 and torch.allclose(avg.state["weight"], torch.full((2,), 3.0))
    with torch.no_grad():
        net.weight.fill_(7.0)
    avg.swap(net)
    assert float(net.weight.detach()[0]) == pytest.approx(3.0)
    assert float(avg.state["weight"][0]) == 7.0
    with pytest.raises(ValueError, match="decay must be in"):
        loop.WeightAverage(net, 1.0)


class SeenWeights(Toy):
    """Toy that records the weights validation sees."""
    def validate(self, net, epoch, device):
        self.seen = net.weight.detach().clone()
        return super().validate(net, epoch, device)


def test_weight_average_is_validated_checkpointed_returned_and_resumed(tmp_path):
    scores = [0.3, 0.7, 0.5]
    plain, _ = _toy_run(Toy(scores), tmp_path / "p" / "last.pt")
    task = SeenWeights(scores)
    a, _ = _toy_run(task, tmp_path / "a" / "last.pt", opts=EmaOpts)
    # same batches as the plain run, so the raw weights match it; the result is the average
    doc = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert torch.equal(doc["raw_state"]["weight"], plain.weight.detach())
    assert torch.equal(doc["state"]["weight"], a.weight.detach())
    assert torch.equal(task.seen, a.weight.detach())
    assert not torch.equal(a.weight, plain.weight)
    assert doc["ema_updates"] == 12
    with pytest.raises(KeyboardInterrupt):
        _toy_run(Toy(scores, interrupt_at=2), tmp_path / "b" / "last.pt", opts=EmaOpts)
    b, _ = _toy_run(Toy(scores), tmp_path / "b" / "last.pt", resume=True, opts=EmaOpts)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])


def test_resume_without_checkpoint_is_an_error_and_writes_nothing(tmp_path):
    with pytest.raises(loop.NothingToResume) as e:
        _toy_run(Toy([0.0] * 3), tmp_path / "run" / "last.pt", resume=True)
    assert str(e.value) == f"nothing to resume in {tmp_path / 'run'}; start without --resume"
    assert not (tmp_path / "run").exists()


# ---- the classifier in the loop (the detector: tests/test_train_detect.py) ---------------
def _tiny_views(n: int = 24) -> tc.ClassData:
    rng = np.random.default_rng(0)
    views = rng.integers(0, 256, (n, 2, 32, 32, 3), dtype=np.uint8)
    labels = (np.arange(n) % 2).astype(np.int64)
    views[labels == 1, :, 8:24, 8:24] = 255
    return tc.ClassData(views, labels, ["s"] * n, soft=rng.normal(size=(n, 2, 2)).astype(
        np.float32))


def _tiny_classifier() -> zoo.Classifier:
    torch.manual_seed(0)
    return zoo.Classifier(zoo.preset("mcu-s-96").with_(num_classes=2, width=0.25,
                                                       resolution=(32, 32)))


def test_classifier_resumed_run_equals_uninterrupted(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    data = _tiny_views()
    o = tc.FitOptions(epochs=2, lr=3e-3, batch=8, seed=1, max_steps=2)
    a = _tiny_classifier()
    tc.fit(a, data, o, tmp_path / "a")
    plain = tc.ClassifierTask.epoch_order

    def interrupted(self, epoch, rng):
        if epoch == 1:
            raise KeyboardInterrupt
        return plain(self, epoch, rng)

    monkeypatch.setattr(tc.ClassifierTask, "epoch_order", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tc.fit(_tiny_classifier(), data, o, tmp_path / "b")
    monkeypatch.setattr(tc.ClassifierTask, "epoch_order", plain)
    b = _tiny_classifier()
    hist = tc.fit(b, data, o, tmp_path / "b", resume=True)
    assert [h["epoch"] for h in hist] == [1, 2]
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])


def test_classifier_resume_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(loop.NothingToResume, match="nothing to resume in .*none; start "
                                                   "without --resume"):
        tc.fit(_tiny_classifier(), _tiny_views(), tc.FitOptions(1, 1e-3, 8, max_steps=1),
               tmp_path / "none", resume=True)


# ---- every training command: one line, before any data is read ---------------------------
@pytest.mark.parametrize("main, args", [
    (train_app.main, ["vww"]),  # classifier (train_classifier.py)
    (train_app.main, ["person_detect"]),  # detector (train_detector.py)
    (pretrain_backbone.main, ["person_detect"]),
    (finetune_imported.main, []),
    (leave_sources_out.main, []),
], ids=["classifier", "detector", "pretrain", "finetune", "leave-sources-out"])
def test_resume_without_checkpoint_is_one_line(main, args, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*args, "--resume", "--out", str(out), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    want = out / "none" if main is leave_sources_out.main else out  # its first arm's folder
    assert err == f"error: nothing to resume in {want}; start without --resume\n"
    assert not out.exists()


def test_training_time_counts_every_logged_epoch_once():
    """A resumed run's card reports the epochs run before the resume too (not the last
    process's wall clock, which after a resume straight to export is about 0)."""
    from patchcam.training.loop import training_seconds
    history = [{"epoch": 1, "seconds": 60.5}, {"epoch": 2, "seconds": 70.0},
               {"epoch": 1, "seconds": 30.0, "phase": "qat"}]
    assert training_seconds(history) == 160.5
    assert training_seconds([]) == 0.0
