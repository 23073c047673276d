"""Trained weights on disk: the float model's config, its float32 weights and a free-form
`meta` record (data, split, recipe, metrics). Loading uses torch's safe `weights_only` mode:
a checkpoint can hold tensors and plain values, never code."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from patchcam.compiler import zoo


class CheckpointError(ValueError):
    pass


def save_classifier(model: zoo.Classifier, path: str | Path, meta: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # float32, not float16: halving the file moves the int8 model's decisions on a few
    # borderline images, and the weights are the reference the int8 model is judged against.
    state = model.state_dict()
    torch.save({"format": "patchcam-classifier", "config": asdict(model.cfg), "state": state,
                "meta": meta}, path)


def config_from_dict(d: dict) -> zoo.Config:
    d = dict(d)
    d["stages"] = tuple(zoo.Stage(**s) for s in d["stages"])
    d["resolution"] = tuple(d["resolution"])
    return zoo.Config(**d)


def load_classifier(path: str | Path) -> tuple[zoo.Classifier, dict]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint; train one with "
                              "training/train_classifier.py")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
        if doc.get("format") != "patchcam-classifier":
            raise CheckpointError(f"{path}: not a patchcam classifier checkpoint")
        model = zoo.Classifier(config_from_dict(doc["config"]))
        model.load_state_dict(doc["state"])
    except CheckpointError:
        raise
    except Exception as e:  # torch raises many types for a damaged file
        raise CheckpointError(f"{path}: cannot load checkpoint ({type(e).__name__}: {e})") \
            from None
    return model.eval(), doc["meta"]


# ---- training checkpoints (float and QAT loops of both training scripts) ------------------
def save_training(path: Path, doc: dict, opt: torch.optim.Optimizer,
                  sched: torch.optim.lr_scheduler.LRScheduler) -> dict:
    """Write doc + the optimiser and schedule state to path, atomically (a crash mid-write
    leaves the previous checkpoint); returns what was written. Tensors must be on the CPU."""
    d = {**doc, "optim": opt.state_dict(), "sched": sched.state_dict()}
    tmp = path.with_suffix(".tmp")
    torch.save(d, tmp)
    tmp.replace(path)
    return d


def resume_training(path: Path, restore, opt: torch.optim.Optimizer,
                    sched: torch.optim.lr_scheduler.OneCycleLR) -> dict:
    """Load a checkpoint written by save_training: restore(doc) puts the weights back, the
    optimiser and the schedule's position follow. The schedule keeps this run's length, so
    a run resumed with another --epochs anneals to its own end. Returns the doc."""
    d = torch.load(path, map_location="cpu", weights_only=True)
    restore(d)
    opt.load_state_dict(d["optim"])
    fresh = sched.total_steps, sched._schedule_phases
    sched.load_state_dict(d["sched"])
    sched.total_steps, sched._schedule_phases = fresh
    return d
