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
was written, and the command that goes on from there; the exit status is then 130.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from patchcam.app.config import AppConfigError, load_app
from patchcam.paths import REPO

INTERRUPTED = 130  # what a shell reports for a command ended by SIGINT


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    app, rest = argv[0], argv[1:]
    try:
        return dispatch(app, rest)
    except KeyboardInterrupt as e:
        print(interrupted_line(e, app, rest), file=sys.stderr, flush=True)
        return INTERRUPTED


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


def interrupted_line(e: KeyboardInterrupt, app: str, rest: list[str]) -> str:
    """One line for a Ctrl-C: where it stopped (the loop's epoch and batch when it was in
    one), what checkpoint there is to go on from, and the command that does."""
    loop = sys.modules.get("patchcam.training.loop")  # not imported: not in the loop either
    if loop is not None and isinstance(e, loop.Interrupted):
        phase = "" if e.phase == "float" else f"{e.phase} "
        at = f"at {phase}epoch {e.epoch}" + (f" batch {e.batch}" if e.batch else
                                             " (between batches)")
        if e.saved is not None:
            state = f"{phase}checkpoint written after epoch {e.saved} ({e.ckpt})"
        elif e.phase == "qat":  # the float phase before it is complete in last.pt
            state = f"float model complete in {e.ckpt.parent / 'last.pt'}, no qat checkpoint yet"
        else:
            state = "no checkpoint yet"
        resumable = e.saved is not None or e.phase == "qat"
    else:
        at = "outside the training epochs (reading data, evaluating or exporting)"
        ckpt = checkpoint_dir(app, rest) / "last.pt"
        resumable = ckpt.is_file()
        state = f"checkpoint in {ckpt}" if resumable else "no checkpoint yet"
    return f"interrupted {at}; {state}; {how_to_go_on(app, rest, resumable)}"


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
    args = [a for a in rest if a != "--resume"]
    if not args:
        return f"resume with `make train APP={app} RESUME=1`" if resumable else \
            f"start again with `make train APP={app}`"
    cmd = shlex.join(["patchcam", "train", app, *args, *(["--resume"] if resumable else [])])
    return f"resume with `{cmd}`" if resumable else f"start again with `{cmd}`"


if __name__ == "__main__":
    sys.exit(main())
