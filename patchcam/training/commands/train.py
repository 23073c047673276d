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
"""

from __future__ import annotations

import sys

from patchcam.app.config import AppConfigError, load_app


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    app, rest = argv[0], argv[1:]
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


if __name__ == "__main__":
    sys.exit(main())
