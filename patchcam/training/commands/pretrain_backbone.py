"""Pre-train a detector's backbone on the person / no-person task (with the teacher).

The detectors train from scratch on a few hundred photos with boxes; the vww app has
thousands of labelled photos and a teacher (`patchcam.training.teacher`). This trains the detector's
own backbone (the app's zoo config, at the detector's input size) as a person / no-person
classifier on the vww app's photos, distilled from the teacher on the same views, and saves
the backbone's weights for `train_detector.py --backbone`:

    .venv/bin/patchcam pretrain person_detect --epochs 3
    .venv/bin/patchcam train person_detect \\
        --backbone build/train/person_detect-backbone/backbone.pt

The teacher's outputs are those cached by vww's training (same photos, same views), so only
the student's views are made anew at the detector's input size. Ctrl-C stops it with one line
saying where, what checkpoint there is and the command that goes on (exit status 130).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

from patchcam.app.config import AppConfigError, load_app
from patchcam.paths import REPO
from patchcam.training import classifier as tc
from patchcam.training import interrupt, loop, readers
from patchcam.training.teacher import Teacher, TeacherError, locate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="patchcam pretrain", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("app", help="a detect app (its backbone and input size)")
    p.add_argument("--epochs", type=int, default=3, help="classifier epochs (default 3)")
    p.add_argument("--teacher", default="auto", help="auto, a path, or none")
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--out", type=Path, help="default build/train/<app>-backbone")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    argv = sys.argv[1:] if argv is None else argv
    a = p.parse_args(argv)
    out = a.out or REPO / "build" / "train" / f"{a.app}-backbone"
    return interrupt.guard(lambda: run(a, out), lambda: [out / "last.pt"],
                           interrupt.rerun(["patchcam", "pretrain"], argv))


def run(a: argparse.Namespace, out: Path) -> int:
    torch.set_num_threads(a.threads)
    try:
        det = load_app(a.app)
        if a.resume:
            loop.require_checkpoint(out / "last.pt")
        vww = load_app("vww")
        # the vww photos and classes, the detector's network and input size
        cfg = replace(vww, input=det.input, model=replace(det.model, head=None))
        samples = tc.read_sources(cfg)
        teacher = None if a.teacher == "none" else Teacher(locate(a.teacher), a.threads)
    except (AppConfigError, loop.NothingToResume, readers.DatasetError, TeacherError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    r = vww.train
    o = tc.FitOptions(epochs=a.epochs, lr=r.lr, batch=r.batch, seed=r.seed,
                      max_steps=a.max_steps)
    no_qat = replace(o, epochs=0)
    st = tc.train_student(cfg, tc.split(samples, "train"), tc.split(samples, "val"), o, no_qat,
                          out, teacher, a.views, a.resume, desc=f"{a.app}-backbone")
    ev = tc.evaluate(st, cfg, tc.split(samples, "test"), "backbone-test", int8=False)
    torch.save(st.model.backbone.state_dict(), out / "backbone.pt")
    print(f"person / no person test accuracy {ev['float']:.4f} ({ev['images']} photos); "
          f"wrote {out / 'backbone.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
