"""Train an app's model with the training script for its task (what `make train` runs).

    patchcam train vww --epochs 1                 # classifier: train_classifier.py
    patchcam train person_detect --resume         # detector: train_detector.py
    torchrun --nproc_per_node 4 -m patchcam.training.commands.train person_detect
                                                  # data parallel (detectors)

Every argument after the app goes to that script (patchcam/training/commands/
train_classifier.py or train_detector.py): see `patchcam train vww --help` and
`patchcam train person_detect --help`. Both train float, then fine-tune with
quantisation-aware training, checkpoint every epoch under build/train/<app>/ (--resume
continues), print float and int8 metrics on the test split, and with --export write the model
the app ships (apps/<app>/weights/ and apps/<app>/generated/).

Ctrl-C stops it with one line (no traceback) saying where it stopped, whether a checkpoint
was written, and the command that goes on from there; the exit status is then 130
(patchcam.training.interrupt, as in every training command).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from patchcam.app.config import AppConfigError, load_app
from patchcam.paths import REPO
from patchcam.training import interrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    app, rest = argv[0], argv[1:]
    return interrupt.guard(lambda: dispatch(app, rest),
                           lambda: [checkpoint_dir(app, rest) / "last.pt"],
                           lambda resumable: how_to_go_on(app, rest, resumable))


def dispatch(app: str, rest: list[str]) -> int:
    """The training script for the app's task, with the arguments after the app."""
    try:
        cfg = load_app(app)
    except AppConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if cfg.app.task == "classify":
        from patchcam.training.commands import train_classifier
        return train_classifier.main(["--app", app, *rest])
    if "--teacher" in rest:
        print(f"error: --teacher applies to classifier apps; {app} is a detector "
              "(TEACHER=none or leave it out)", file=sys.stderr)
        return 2
    from patchcam.training.commands import train_detector
    return train_detector.main([app, *rest])


def checkpoint_dir(app: str, rest: list[str]) -> Path:
    """Where the training scripts write checkpoints: --out, else build/train/<app name>."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--out", type=Path)
    out = p.parse_known_args(rest)[0].out
    if out is not None:
        return out
    try:
        name = load_app(app).app.name
    except AppConfigError:
        name = app
    return REPO / "build" / "train" / name


def how_to_go_on(app: str, rest: list[str], resumable: bool) -> str:
    """`make train APP=app [RESUME=1]` for a plain run; with other arguments the same
    command (they matter: --epochs sets the schedule, --out the checkpoint folder)."""
    if not [a for a in rest if a != "--resume"]:
        return f"resume with `make train APP={app} RESUME=1`" if resumable else \
            f"start again with `make train APP={app}`"
    return interrupt.rerun(["patchcam", "train", app], rest)(resumable)


if __name__ == "__main__":
    sys.exit(main())
