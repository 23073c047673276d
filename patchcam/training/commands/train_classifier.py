"""Train a zoo classifier and save a patchcam checkpoint: an app (`--app vww`) or folders.

App mode (what `make train APP=vww` runs):

    .venv/bin/patchcam train vww [--epochs E] [--data DIR ...]
        [--teacher auto|PATH|none] [--resume] [--out build/train/vww] [--export]

  1. reads the app's [[data]] sources (apps/<app>/app.toml; --data replaces them), each with
     its own train / val / test split (patchcam.training.readers; test is never trained on);
  2. makes K fixed views per training image (--views; view 0 the photo itself, the others
     seeded augmentations) at the teacher's 224x224 and the app input, and runs the teacher
     (ImageNet MobileNetV2, patchcam.training.teacher) once per view, cached in build/cache;
  3. fits the teacher's probe (logistic regression on its 1000 logits) on the train split;
  4. trains the app's model (preset and width from app.toml) on hard labels + the teacher's
     soft targets for the same view (--teacher none: hard labels only), app.toml's
     train.epochs / lr / batch / seed, then train.qat_epochs of quantisation-aware
     fine-tuning at train.qat_lr; checkpoints <out>/last.pt and <out>/qat_last.pt every
     epoch (--resume continues them);
  5. reports float and int8 (integer reference) accuracy on the test split, per source too;
     with --export writes apps/<app>/weights/float.pt and apps/<app>/generated/.

The teacher file (mobilenet_v2_quantized_1x3x224x224.tflite, 4 MB) is looked for in
data/models and ../shared/models, else downloaded once from the tflite-micro repository into
data/models and checked by SHA-256.

The shipped VWW model (see apps/vww/weights/MODEL_CARD.md):

    .venv/bin/patchcam train vww --epochs 25 --teacher none \\
        --threads 1 --out build/train/vww-noteacher --export

Folder mode (the older recipe, kept for quick experiments on any labelled folders):

    .venv/bin/python -m patchcam.training.commands.train_classifier --preset mcu-s-96 \\
        --width 0.5 --epochs 15 --positive person --out build/train/classifier.pt \\
        ../shared/datasets/vww_*

Folders hold a labels.csv (`file,label`) or one sub-folder per class; splits by a hash of
each file name (70/15/15); post-training quantisation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from patchcam.app.config import AppConfigError, load_app
from patchcam.compiler import quantize, reference, zoo
from patchcam.paths import REPO
from patchcam.training import checkpoint, imagesets, loop, quickfit, readers
from patchcam.training import classifier as tc
from patchcam.training.teacher import Teacher, TeacherError, locate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="patchcam train APP", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="*", help="folder mode: labelled image folders")
    p.add_argument("--app", help="a classify app under apps/ (e.g. vww)")
    p.add_argument("--data", nargs="+", metavar="DIR",
                   help="app mode: train on these folders instead of the app's sources")
    p.add_argument("--teacher", default="auto",
                   help="app mode: auto (find or download the MobileNetV2 teacher), a path to "
                        "it, or none (no distillation); default auto")
    p.add_argument("--views", type=int, default=4,
                   help="app mode: fixed views per training image, the first unaugmented "
                        "(default 4)")
    p.add_argument("--kd-weight", type=float, default=1.0,
                   help="app mode: weight of the distillation loss (default 1)")
    p.add_argument("--temperature", type=float, default=2.0,
                   help="app mode: distillation temperature (default 2)")
    p.add_argument("--qat-epochs", type=int,
                   help="app mode: quantisation-aware epochs (default: the app's qat_epochs)")
    p.add_argument("--max-steps", type=int, help="app mode: at most this many batches per epoch")
    p.add_argument("--resume", action="store_true",
                   help="app mode: continue from <out>/last.pt and <out>/qat_last.pt (an "
                        "error when there is none)")
    p.add_argument("--export", action="store_true",
                   help="app mode: write weights/float.pt and generated/ beside the app's "
                        "app.toml (apps/<app>/)")
    p.add_argument("--no-int8-eval", action="store_true",
                   help="app mode: skip the (slow) integer-reference test accuracy")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--preset", default="mcu-s-96", help="folder mode: zoo preset")
    p.add_argument("--width", type=float, help="folder mode: override the preset's width")
    p.add_argument("--positive", default="person",
                   help="folder mode: the class reported as 1; every other label is 0")
    p.add_argument("--epochs", type=int, help="float epochs (default: the app's train.epochs; "
                   "folder mode 15)")
    p.add_argument("--lr", type=float, help="peak learning rate (app's train.lr; folder 4e-3)")
    p.add_argument("--batch", type=int, help="batch size (app's train.batch; folder 64)")
    p.add_argument("--seed", type=int, help="random seed (app's train.seed; folder 0)")
    p.add_argument("--out", help="app mode: checkpoint folder (default build/train/<app>); "
                   "folder mode: checkpoint path (default build/train/classifier.pt)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.app:
        if args.folders:
            p.error("give either --app (with --data DIR ...) or folders, not both")
        return app_main(args, argv)
    if not args.folders:
        p.error("give --app APP or labelled image folders")
    return folder_main(args)


def app_main(a: argparse.Namespace, argv: list[str] | None) -> int:
    try:
        cfg = load_app(a.app)
        if cfg.app.task != "classify":
            raise AppConfigError(f"{a.app} is a {cfg.app.task} app; use "
                                 "`patchcam train APP` picks the detector's training")
        out = Path(a.out) if a.out else REPO / "build" / "train" / cfg.app.name
        if a.resume:
            loop.require_checkpoint(out / "last.pt")
        # the teacher first: a missing file should stop the run before minutes of data loading
        teacher = None if a.teacher == "none" else Teacher(locate(a.teacher), a.threads)
        if a.data:
            cfg = cfg.with_data(a.data)
        samples = tc.read_sources(cfg)
    except (AppConfigError, loop.NothingToResume, readers.DatasetError, TeacherError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    r = cfg.train
    seed = r.seed if a.seed is None else a.seed
    o = tc.FitOptions(epochs=r.epochs if a.epochs is None else a.epochs, lr=a.lr or r.lr,
                      batch=a.batch or r.batch, seed=seed, kd_weight=a.kd_weight,
                      temperature=a.temperature, max_steps=a.max_steps, ema=r.ema)
    q = tc.FitOptions(epochs=r.qat_epochs if a.qat_epochs is None else a.qat_epochs,
                      lr=r.qat_lr, batch=o.batch, seed=seed, kd_weight=a.kd_weight,
                      temperature=a.temperature, max_steps=a.max_steps)
    tr, va, te = (tc.split(samples, s) for s in ("train", "val", "test"))
    zc = cfg.zoo_config()
    print(f"{cfg.app.name}: {zc.name} width {zc.width} @{zc.resolution}; {len(tr)} train, "
          f"{len(va)} val, {len(te)} test images from {len(cfg.data)} sources; teacher "
          f"{teacher.path if teacher else 'none'}; {o.epochs} float + {q.epochs} QAT epochs; "
          f"checkpoints in {out}", flush=True)
    if not tr or not va:
        print("error: need train and val images (each source is split 70/15/15)",
              file=sys.stderr)
        return 2
    st = tc.train_student(cfg, tr, va, o, q, out, teacher, a.views, a.resume,
                          desc=cfg.app.name)
    epoch_s = [h["seconds"] for h in st.history if "phase" not in h]
    print(f"trained in {st.seconds / 60:.1f} min ({np.median(epoch_s):.0f} s per float epoch)")
    res = tc.evaluate(st, cfg, te, "test", int8=not a.no_int8_eval) if te else {}
    if res:
        print(f"test accuracy: float {res['float']:.4f}" + (
            f", int8 {res['int8']:.4f}; agreement {res['int8_float_agreement']:.4f}"
            if "int8" in res else ""))
        for k, v in res["float_per_source"].items():
            i8 = res.get("int8_per_source", {}).get(k, {}).get("accuracy")
            print(f"  {k:28s} {v['images']:5d} images  float {v['accuracy']:.4f}"
                  + (f"  int8 {i8:.4f}" if i8 is not None else ""))
    if not a.export:
        return 0
    meta = {"app": cfg.app.name, "stage": "float",
            "data": {"train": st.train_counts, "sources": [Path(d.path).name for d in cfg.data],
                     "split": "each source's own train/val/test (patchcam.training.readers); test "
                              "never trained on"},
            "recipe": {"float": vars(o), "qat": vars(q), "views": a.views,
                       "teacher": str(teacher.path.name) if teacher else None,
                       "teacher_sha256": teacher.sha if teacher else None,
                       "teacher_val_accuracy": st.teacher_val_acc,
                       "command": "python -m patchcam.training.commands.train_classifier "
                                  + " ".join(argv if argv is not None else sys.argv[1:])},
            "test": res, "history": st.history, "train_seconds": round(st.seconds)}
    g = quantize.to_int8(st.fused, cfg.app.name)
    g.meta.update({"source": "trained", "app": cfg.app.name, "weights": "trained (QAT)",
                   "preset": cfg.model.preset, "classes": list(cfg.classes.names),
                   "test_accuracy": {k: res.get(k) for k in ("float", "int8")}})
    from patchcam.app.export import write_generated
    from patchcam.compiler.patchplan import PlanError
    weights = cfg.folder / "weights" / "float.pt"  # apps/<app>/, or beside a given app.toml
    checkpoint.save_classifier(st.model, weights, meta)
    (out / "export.json").write_text(json.dumps(meta, indent=1, default=str))
    g.save(out / "model.json")  # the int8 IR, also when no schedule fits the board below
    print(f"wrote {weights} and {out / 'model.json'}")
    try:
        gen = write_generated(g, cfg)
    except PlanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {gen}/ (model.json, model.h, model.c, app_config.h)")
    return 0


def folder_main(args: argparse.Namespace) -> int:
    args.epochs = 15 if args.epochs is None else args.epochs
    args.lr = args.lr or 4e-3
    args.batch = args.batch or 64
    args.seed = args.seed or 0
    args.out = args.out or "build/train/classifier.pt"
    try:
        samples = [s for d in args.folders for s in imagesets.read_folder(d)]
    except imagesets.DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cfg = zoo.preset(args.preset).with_(num_classes=2)
    if args.width:
        cfg = cfg.with_(width=args.width)
    images, samples = imagesets.load_images(samples, cfg.resolution, desc="data")
    labels = np.array([int(s.label == args.positive) for s in samples])
    split = np.array([imagesets.split_of(s.path) for s in samples])
    tr, te = split == "train", split == "test"
    print(f"{len(samples)} images: {tr.sum()} train, {te.sum()} test; "
          f"{labels.mean():.0%} '{args.positive}'")

    torch.manual_seed(args.seed)
    model = zoo.Classifier(cfg)
    t0 = time.time()
    quickfit.fit(model, images[tr], labels[tr], args.epochs, args.lr, args.batch, args.seed)
    minutes = (time.time() - t0) / 60

    float_pred = quickfit.predict(model, images[te]).argmax(1)
    g = quantize.quantize(model, (cfg.in_channels, *cfg.resolution),
                          [quickfit.to_batch(images[tr][:512])], cfg.name)
    int8_pred = np.array([reference.run(g, (x.astype(np.int16) - 128).astype(np.int8)).argmax()
                          for x in images[te]])
    acc_f = float((float_pred == labels[te]).mean())
    acc_q = float((int8_pred == labels[te]).mean())
    agree = float((float_pred == int8_pred).mean())
    print(f"test accuracy: float {acc_f:.4f}, int8 {acc_q:.4f}; agreement {agree:.4f}; "
          f"{minutes:.1f} min")
    checkpoint.save_classifier(model, args.out, {
        "folders": [Path(f).name for f in args.folders], "positive": args.positive,
        "split": "patchcam.training.imagesets.split_of (70/15/15 by file-name hash)",
        "recipe": vars(args), "train_minutes": round(minutes, 1),
        "test_accuracy_float": acc_f, "test_accuracy_int8_ptq": acc_q,
        "int8_float_agreement": agree})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
