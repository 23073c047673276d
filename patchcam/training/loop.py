"""The training loop the classifier and the detector share: seeds, the epoch loop with its
progress bar, AdamW + one-cycle cosine schedule, a checkpoint after every epoch, resume,
validation and best.pt, a GPU when present, data parallelism under torchrun.

    task = detector.DetectorTask(data, o, model.stride, val_fn)
    history = loop.train(net, task, o, out / "last.pt", doc, restore, resume, "float")

What differs between tasks is a `Task` (`classifier.ClassifierTask`, `detector.DetectorTask`):
the epoch's order of examples, the loss of one batch, what the progress bar and the epoch
record show, validation, and a few constants of the recipe (warm-up share, gradient clip,
the metric best.pt keeps the best of). doc(epoch, history) is the document to checkpoint,
restore(doc) puts a checkpoint's weights back.

Weight averaging (`o.ema` > 0, the app's `train.ema`): an exponential moving average of the
weights and batch-norm statistics after every step (`WeightAverage`), as YOLO-family
detectors train. Validation, best.pt, the checkpoint's `state` and the returned network are
the averaged weights; the raw ones travel in the checkpoint's `raw_state` so a resumed run
goes on from both.

Seeds. torch is seeded with `seed` before the optimiser is made and with
`seed * 100003 + epoch` at the start of every epoch; the epoch's order (and whatever else the
task draws for it) comes from a numpy generator seeded with (seed, epoch). Nothing random
carries over from one epoch to the next, so a resumed run trains on the same batches as an
uninterrupted one.

Resume. `resume=True` continues from the checkpoint (weights, optimiser, schedule position,
epoch, history). No checkpoint there is an error, `NothingToResume` ("nothing to resume in
<dir>; start without --resume"), never a silent fresh start; the commands check it before
loading any data and print it as one line. The schedule keeps this run's length
(`checkpoint.resume_training`), so a run resumed with more epochs anneals to its own end.
A second phase (QAT) is resumed only when the first was complete before this run
(`finished`): otherwise its checkpoint was fine-tuned from another float model.

Ctrl-C. Inside `train` it becomes `Interrupted` (a KeyboardInterrupt) saying the phase, epoch
and batch it stopped at and the last epoch checkpointed; every training command prints that
as one line with the command that goes on from there, and exits with 130
(patchcam.training.interrupt).

Data parallelism (patchcam.training.parallel): each rank trains on its share
(`batch[rank::world]`) of every batch; only rank 0 validates, prints and writes files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from patchcam.training import checkpoint, parallel


class NothingToResume(checkpoint.CheckpointError):
    """--resume where there is no checkpoint to continue from."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C inside `train`: where it stopped, so the command can say it in one line and
    which way to go on. Still a KeyboardInterrupt, so code that does not know it stops too.

    phase: train's desc ("float", "qat"); epoch, batch: 1-based, the batch that was running
    (batch 0: outside one: drawing the epoch's order, validating, checkpointing); saved: the
    last epoch this run's checkpoint holds (a resumed one counts), None when there is none;
    ckpt: that checkpoint's path."""

    def __init__(self, phase: str, epoch: int, batch: int, saved: int | None, ckpt: Path):
        super().__init__(f"{phase} epoch {epoch} batch {batch}")
        self.phase, self.epoch, self.batch, self.saved, self.ckpt = \
            phase, epoch, batch, saved, ckpt


def require_checkpoint(ckpt: Path) -> None:
    """Raise NothingToResume unless ckpt exists (what --resume needs)."""
    if not Path(ckpt).is_file():
        raise NothingToResume(f"nothing to resume in {Path(ckpt).parent}; "
                              "start without --resume")


def finished(ckpt: Path, epochs: int) -> bool:
    """Whether ckpt holds a run that trained `epochs` epochs or more. A later phase started
    from that run may be resumed; one started from a run that trains on may not."""
    ckpt = Path(ckpt)
    return ckpt.is_file() and \
        torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"] >= epochs


class Options(Protocol):
    """The fields of a task's FitOptions the loop reads."""
    epochs: int
    lr: float
    batch: int
    seed: int
    weight_decay: float
    max_steps: int | None
    ema: float


class WeightAverage:
    """An exponential moving average of a network's floating-point state (weights, batch-norm
    running statistics); integer buffers follow the network. The decay ramps up as
    min(decay, (1 + t) / (10 + t)) over the first updates t, so the random or pre-trained
    start is forgotten within a few hundred steps and a short run is still averaged."""

    def __init__(self, net: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"weight-average decay must be in (0, 1), got {decay}")
        self.decay, self.updates = decay, 0
        self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in net.state_dict().items():
            a = self.state[k]
            if a.is_floating_point():
                a.lerp_(v.detach().to(a.device), 1 - d)
            else:
                a.copy_(v)

    @torch.no_grad()
    def swap(self, net: nn.Module) -> None:
        """Exchange the network's state with the average (twice: back as it was)."""
        for k, v in net.state_dict().items():
            a = self.state[k]
            keep = v.detach().clone()
            v.copy_(a)
            a.copy_(keep)

    def to(self, device: torch.device | str) -> None:
        self.state = {k: v.to(device) for k, v in self.state.items()}


def steps_per_epoch(n: int, o: Options) -> int:
    """Batches per epoch for n examples an epoch: whole batches, at most o.max_steps."""
    steps = max(1, n // o.batch)
    return min(steps, o.max_steps) if o.max_steps else steps


class Task(Protocol):
    """What one kind of training adds to the loop."""
    pct_start: float  # share of the one-cycle schedule spent warming up
    clip_grad: float | None  # clip the gradient norm to this (None: no clipping)
    best: str | None  # the epoch-record key best.pt keeps the best epoch of (None: no best.pt)

    def steps_per_epoch(self) -> int:
        """Batches in every epoch."""
        ...

    def epoch_order(self, epoch: int, rng: np.random.Generator) -> np.ndarray:
        """The examples of this epoch in training order, drawn from rng (seeded with
        (seed, epoch)); the task may draw more from it for the epoch (e.g. views)."""
        ...

    def batch_loss(self, model: nn.Module, epoch: int, idx: np.ndarray, pos: np.ndarray,
                   device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss on examples idx (at positions pos of the epoch's order: this rank's share
        of one batch) and numbers to sum over the epoch (e.g. correct predictions)."""
        ...

    def progress(self, totals: dict[str, float], batches: int) -> dict[str, str]:
        """The progress bar's fields besides the loss, after `batches` batches."""
        ...

    def record(self, totals: dict[str, float], steps: int) -> dict:
        """The epoch record's fields besides epoch, seconds, lr and loss."""
        ...

    def validate(self, net: nn.Module, epoch: int, device: torch.device) -> dict:
        """Validation fields for the record after epoch (1-based; {}: none this epoch)."""
        ...


def train(net: nn.Module, task: Task, o: Options, ckpt: Path,
          doc: Callable[[int, list[dict]], dict], restore: Callable[[dict], None],
          resume: bool, desc: str) -> list[dict]:
    """Train net for o.epochs (from the checkpoint's epoch with resume), writing ckpt after
    every epoch and ckpt's folder/best.pt when task.best improves. Returns the history (one
    record per epoch, the resumed ones included); net ends on the CPU."""
    ckpt = Path(ckpt)
    if resume:
        require_checkpoint(ckpt)
    rank, world = parallel.rank_world()
    dev = parallel.device()
    net.to(dev)
    model = parallel.wrap(net, dev, world)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(o.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    spe = task.steps_per_epoch()
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, o.lr, total_steps=max(1, o.epochs * spe),
                                                pct_start=task.pct_start, anneal_strategy="cos")
    start, history = 0, []
    avg = WeightAverage(net, o.ema) if o.ema else None
    if resume:
        d = checkpoint.resume_training(ckpt, restore, opt, sched)
        if avg is not None and "raw_state" in d:
            avg.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            avg.updates = d.get("ema_updates", 0)
            net.load_state_dict(d["raw_state"])
        net.to(dev)
        if avg is not None:
            avg.to(dev)
        start, history = d["epoch"], d["history"]
        if rank == 0:
            print(f"resuming {ckpt} after epoch {start}/{o.epochs}", flush=True)
    best = max((h.get(task.best, -math.inf) for h in history), default=-math.inf) \
        if task.best else -math.inf
    saved = start if resume else None
    for epoch in range(start, o.epochs):
        i, bar = -1, None
        try:
            order = task.epoch_order(epoch, np.random.default_rng([o.seed, epoch]))
            torch.manual_seed(o.seed * 100003 + epoch)
            model.train()
            t0 = time.time()
            bar = tqdm(range(spe), desc=f"{desc} {epoch + 1}/{o.epochs}", unit="b",
                       leave=False, disable=rank != 0)
            totals: dict[str, float] = {"loss": 0.0}
            for i in bar:
                pos = np.arange(i * o.batch, min((i + 1) * o.batch, len(order)))[rank::world]
                loss, stats = task.batch_loss(model, epoch, order[pos], pos, dev)
                opt.zero_grad()
                loss.backward()
                if task.clip_grad is not None:
                    nn.utils.clip_grad_norm_(net.parameters(), task.clip_grad)
                opt.step()
                sched.step()
                if avg is not None:
                    avg.update(net)
                totals["loss"] += float(loss.detach())
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0) + v
                bar.set_postfix(loss=f"{totals['loss'] / (i + 1):.3f}",
                                **task.progress(totals, i + 1))
            i = -1  # past the batches: validating or writing the checkpoint
            rec = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1),
                   "lr": float(sched.get_last_lr()[0]), "loss": round(totals["loss"] / spe, 4),
                   **task.record(totals, spe)}
            if rank != 0:
                history.append(rec)
                continue
            if avg is not None:
                avg.swap(net)  # validate and checkpoint the averaged weights
            rec.update(task.validate(net, epoch + 1, dev))
            history.append(rec)
            print(f"{desc} " + " ".join(f"{k} {v}" for k, v in rec.items()), flush=True)
            net.to("cpu")  # checkpoints hold CPU tensors, loadable anywhere
            extra = {} if avg is None else {
                "raw_state": {k: v.cpu() for k, v in avg.state.items()},
                "ema_updates": avg.updates}
            d = checkpoint.save_training(ckpt, {**doc(epoch + 1, history), **extra}, opt,
                                         sched)
            saved = epoch + 1
            net.to(dev)
            if avg is not None:
                avg.swap(net)
            if task.best and rec.get(task.best, -math.inf) > best:
                best = rec[task.best]
                torch.save(d, ckpt.parent / "best.pt")
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()  # the one line that follows starts on a clean line
            net.to("cpu")
            raise Interrupted(desc, epoch + 1, i + 1, saved, ckpt) from None
    if avg is not None:
        avg.swap(net)  # the run's result is the averaged network
    net.to("cpu")
    return history


def train_qat(fused: nn.Module, task: Task, o: Options, out_dir: Path, resume: bool,
              fmt: str) -> list[dict]:
    """Quantisation-aware fine-tuning of a calibrated FusedNet (quantize.FusedNet) through
    `train`: fake-quantised forward passes, the ranges (EMA) saved and restored with the
    weights in out_dir/qat_last.pt. Leaves fused in training mode; returns the history."""
    fused.qat = True

    def doc(epoch: int, history: list[dict]) -> dict:
        return {"format": fmt, "state": fused.state_dict(), "ranges": fused.ranges,
                "epoch": epoch, "history": history, "options": asdict(o)}

    def restore(d: dict) -> None:
        fused.load_state_dict(d["state"])
        fused.ranges = {k: list(v) for k, v in d["ranges"].items()}

    return train(fused, task, o, Path(out_dir) / "qat_last.pt", doc, restore, resume, "qat")


def training_seconds(history: list[dict]) -> float:
    """The time of the epochs logged, so a resumed run counts each epoch once (the wall clock
    of the last process would leave out every epoch run before the resume)."""
    return sum(float(h.get("seconds", 0.0)) for h in history)


def balanced_weights(labels: np.ndarray, num_classes: int) -> tuple[float, ...]:
    """n / (classes * n_class) for each class: every class weighs the same in the loss
    (train.balance_classes; labels are photos for a classifier, boxes for a detector)."""
    counts = np.bincount(labels, minlength=num_classes)
    if (counts == 0).any():
        missing = [i for i, c in enumerate(counts) if c == 0]
        raise ValueError(f"no training example of class {missing}: cannot balance the classes")
    return tuple(float(len(labels) / (num_classes * c)) for c in counts)
