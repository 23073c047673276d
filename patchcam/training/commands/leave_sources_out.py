"""Leave-sources-out evaluation of a classify app: does the student generalise to kinds of
photos it never saw, with and without the teacher?

Whole source folders are held out (every split of them): the student trains on the train
split of the other sources (the teacher's probe too), and is tested on all images of the
held-out folders, plus the other sources' own test split (in-distribution). Both arms use
the same views, seed, epochs and schedule; they differ only by the distillation loss.

    .venv/bin/patchcam leave-sources-out --app vww --epochs 6 \\
        --hold-out vww_pos_sports100 vww_neg_food101 vww_neg_camvid_streets

The default held-out folders are one positive and two negative sources that test different
things: sports100 (people in unusual poses, kit and crowds: are "people" learned, or the
har_actions look?), food101 (a kind of object no other source has) and camvid_streets (the
hardest negatives: streets without people, while the detection sets' positives are mostly
street scenes). Results go to <out>/results.json and a markdown table on stdout. Ctrl-C stops
it with one line saying where, what checkpoints there are and the command that goes on
(exit status 130).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from patchcam.app.config import AppConfigError, load_app
from patchcam.paths import REPO
from patchcam.training import classifier as tc
from patchcam.training import interrupt, loop, readers
from patchcam.training.teacher import Teacher, TeacherError, locate

HOLD_OUT = ("vww_pos_sports100", "vww_neg_food101", "vww_neg_camvid_streets")


def balanced(per: dict[str, dict]) -> float:
    """Mean accuracy over held-out folders (each folder is one class, so this weighs the
    person and no-person folders equally rather than by image count)."""
    return round(float(np.mean([v["accuracy"] for v in per.values()])), 4)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="patchcam leave-sources-out", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--app", default="vww")
    p.add_argument("--hold-out", nargs="+", default=list(HOLD_OUT), metavar="FOLDER",
                   help="source folder names to hold out (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=6, help="float epochs, both arms (default 6)")
    p.add_argument("--qat-epochs", type=int, default=0,
                   help="QAT epochs, both arms (default 0: float comparison)")
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--teacher", default="auto", help="the teacher file (auto or a path)")
    p.add_argument("--arms", nargs="+", default=["none", "teacher"],
                   choices=["none", "teacher"])
    p.add_argument("--seed", type=int, help="seed of views, init and batches (default: the "
                   "app's train.seed)")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--out", type=Path, default=REPO / "build" / "train" / "vww-lso")
    p.add_argument("--resume", action="store_true",
                   help="continue the arms' checkpoints in <out>/<arm>/ (an error when there "
                        "are none)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--balance-classes", action=argparse.BooleanOptionalAction,
                   help="weigh the classes equally in the loss (default: the app's "
                        "train.balance_classes)")
    argv = sys.argv[1:] if argv is None else argv
    a = p.parse_args(argv)
    return interrupt.guard(lambda: run(a), lambda: [a.out / arm / "last.pt" for arm in a.arms],
                           interrupt.rerun(["patchcam", "leave-sources-out"], argv))


def run(a: argparse.Namespace) -> int:
    torch.set_num_threads(a.threads)
    try:
        if a.resume and not any((a.out / arm / "last.pt").is_file() for arm in a.arms):
            loop.require_checkpoint(a.out / a.arms[0] / "last.pt")
        cfg = load_app(a.app)
        if a.balance_classes is not None:
            cfg = replace(cfg, train=replace(cfg.train, balance_classes=a.balance_classes))
        names = {cfg.data_path(d).name for d in cfg.data}
        unknown = set(a.hold_out) - names
        if unknown:
            raise AppConfigError(f"{cfg.path}: no [[data]] source named "
                                 f"{', '.join(sorted(unknown))}")
        kept = tc.read_sources(cfg, exclude=set(a.hold_out))
        held = [s for s in tc.read_sources(cfg) if s.source in a.hold_out]
        teacher = Teacher(locate(a.teacher), a.threads) if "teacher" in a.arms else None
    except (AppConfigError, loop.NothingToResume, readers.DatasetError, TeacherError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    r = cfg.train
    seed = r.seed if a.seed is None else a.seed
    o = tc.FitOptions(epochs=a.epochs, lr=r.lr, batch=r.batch, seed=seed,
                      max_steps=a.max_steps)
    q = tc.FitOptions(epochs=a.qat_epochs, lr=r.qat_lr, batch=r.batch, seed=seed,
                      max_steps=a.max_steps)
    tr, va, te = (tc.split(kept, s) for s in ("train", "val", "test"))
    print(f"hold out {', '.join(a.hold_out)} ({len(held)} images); train {len(tr)}, val "
          f"{len(va)}, in-distribution test {len(te)}", flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"held_out": a.hold_out, "seed": seed, "epochs": a.epochs,
                     "qat_epochs": a.qat_epochs, "views": a.views,
                     "balance_classes": cfg.train.balance_classes, "arms": {}}
    res_file = a.out / "results.json"
    for arm in a.arms:
        # resuming, the arms after the interrupted one have not started: they start fresh
        resume = a.resume and (a.out / arm / "last.pt").is_file()
        st = tc.train_student(cfg, tr, va, o, q, a.out / arm,
                              teacher if arm == "teacher" else None, a.views, resume,
                              desc=f"lso-{arm}")
        ev_held = tc.evaluate(st, cfg, held, "lso-heldout", int8=a.qat_epochs > 0)
        ev_in = tc.evaluate(st, cfg, te, "lso-test", int8=a.qat_epochs > 0)
        epoch_s = [h["seconds"] for h in st.history if "phase" not in h]
        rec = {"held_out": ev_held, "in_distribution_test": ev_in,
               "held_out_balanced": balanced(ev_held["float_per_source"]),
               "seconds_per_epoch": float(np.median(epoch_s)), "history": st.history}
        if st.probe is not None:  # the teacher itself on the held-out photos
            hv = tc.load_views(held, cfg, 1, o.seed, teacher, desc="lso-heldout")
            pred = st.probe(hv.teacher_logits[:, 0]).argmax(1)
            per = tc.per_source(pred, hv.labels, hv.sources)
            results["teacher_probe"] = {"held_out": round(tc.accuracy(pred, hv.labels), 4),
                                        "held_out_per_source": per,
                                        "held_out_balanced": balanced(per),
                                        "val": st.teacher_val_acc}
        results["arms"][arm] = rec
        res_file.write_text(json.dumps(results, indent=1))
        print(f"{arm}: held-out {ev_held['float']:.4f} (balanced {rec['held_out_balanced']}), "
              f"in-distribution test {ev_in['float']:.4f}", flush=True)
    print(table(results))
    return 0


def table(results: dict) -> str:
    cols = results["held_out"]
    lines = ["| student | " + " | ".join(cols) + " | held-out (all) | held-out (balanced) | "
             "in-distribution test |", "|---" * (len(cols) + 4) + "|"]
    rows = [(f"{arm} teacher" if arm == "none" else "with teacher",
             r["held_out"]["float_per_source"], r["held_out"]["float"],
             r["held_out_balanced"], r["in_distribution_test"]["float"])
            for arm, r in results["arms"].items()]
    if "teacher_probe" in results:
        t = results["teacher_probe"]
        rows.append(("teacher (MobileNetV2 + probe)", t["held_out_per_source"], t["held_out"],
                     t["held_out_balanced"], float("nan")))
    for name, per, allacc, bal, ind in rows:
        lines.append(f"| {name} | " + " | ".join(f"{per[c]['accuracy']:.3f}" if c in per else "-"
                                                  for c in cols)
                     + f" | {allacc:.3f} | {bal:.3f} | {ind:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
