"""Train a detect app's detector (float), evaluate AP50, quantise to int8 and export it.

What it does, in order:

  1. reads the app's [[data]] sources (apps/<app>/app.toml) with patchcam.training.readers, each in
     its own train / val / test split (the test split is never trained on), resizes every
     image to the app input (plain resize, boxes scaled) and caches the arrays in build/cache;
  2. trains the float Detector (focal + GIoU loss, patchcam.app.detect) with box-aware
     augmentation, AdamW and a one-cycle cosine schedule, writing a resumable checkpoint to
     build/train/<app>/last.pt after every epoch (best.pt: best val mAP with --eval-every);
  3. evaluates AP50 (PASCAL VOC all-point) per class and mAP of the float model on the test
     split of every source that has one (else its val split);
  4. quantisation-aware fine-tuning (the app's train.qat_epochs at train.qat_lr, fake-quant
     int8, checkpoint <out>/qat_last.pt every epoch; 0 epochs: post-training quantisation),
     starting from best.pt when the run evaluated val mAP, calibrated on --calib train
     images; then the int8 AP50 with the integer reference + the firmware's integer decoder
     on the same images;
  5. with --export: apps/<app>/generated/ (model.json, model.h, model.c with the patch
     schedule that fits the app's arena budget, app_config.h: what `make demo` and the
     firmware build use) and apps/<app>/weights/float.pt (float weights + meta).

The shipped person_detect model is epoch 60 (best val mAP50) of the app's 120-epoch recipe,
stopped after epoch 72 (an epoch is 20 batches of 32: 9 s on 2 idle cores, 60-90 s when they
are shared), then exported:

    .venv/bin/patchcam train person_detect --eval-every 10
    .venv/bin/patchcam train person_detect --epochs 0 \\
        --from build/train/person_detect/best.pt --export

Time one epoch first:  --epochs 1 --out build/train/timing
Continue a run:        the same command with --resume (e.g. after Ctrl-C)
Export a checkpoint:   --epochs 0 --from build/train/person_detect/last.pt --export
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from patchcam.app import export
from patchcam.app.config import AppConfig, AppConfigError, DataSource, load_app
from patchcam.compiler import patchplan, quantize
from patchcam.paths import REPO
from patchcam.training import detector as td
from patchcam.training import loop, readers


def eval_sets(cfg: AppConfig, sources: list[int] | None = None) -> dict[str, td.DetData]:
    """Per source with boxes: its test split, else its val split ("name/split" -> data).

    Only a split with no samples falls through to the next: a source that cannot be read
    (a malformed label, a missing folder) raises readers.DatasetError, as a silently dropped
    test set would change the figures without a word."""
    out = {}
    for i, src in enumerate(cfg.data):
        if td.negatives_only(src) or (sources is not None and i not in sources):
            continue
        split = first_split_with_samples(cfg, src, ("test", "val"))
        if split is not None:
            out[f"{Path(src.path).name}/{split}"] = td.load_split(cfg, split, sources=[i])
    return out


def first_split_with_samples(cfg: AppConfig, src: DataSource,
                             splits: tuple[str, ...]) -> str | None:
    """The first of `splits` the app uses from `src` that holds samples, or None. Reading the
    source here, instead of catching load_split's errors, tells "this split is empty" from
    "this source is broken": the second raises readers.DatasetError."""
    wanted = [s for s in splits if s in src.splits]
    if not wanted:
        return None
    have = {x.split for x in readers.read_source(cfg.data_path(src), src)}
    return next((s for s in wanted if s in have), None)


def report(title: str, results: dict[str, dict]) -> None:
    print(title)
    for name, r in results.items():
        per = ", ".join(f"{k} {v:.3f}" for k, v in r["ap50"].items())
        print(f"  {name:40s} mAP50 {r['map']:.3f}  ({per}; {r['images']} images, "
              f"{r['boxes']} boxes)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="patchcam train APP", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("app", help="a detect app under apps/ (e.g. person_detect)")
    p.add_argument("--epochs", type=int, help="float epochs (default: the app's train.epochs)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the app's train.lr)")
    p.add_argument("--batch", type=int, help="batch size (default: the app's train.batch)")
    p.add_argument("--seed", type=int, help="random seed (default: the app's train.seed)")
    p.add_argument("--neg-ratio", type=float, default=0.5,
                   help="box-free (negative) images drawn per epoch per image with boxes "
                        "(default 0.5)")
    p.add_argument("--eval-every", type=int, default=5,
                   help="float mAP on the val splits every n epochs, best.pt keeps the best "
                        "(default 5; 0: never)")
    p.add_argument("--max-steps", type=int, help="at most this many batches per epoch")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="average the weights over training with this decay, e.g. 0.999 "
                        "(default: the app's train.ema; 0: no averaging)")
    p.add_argument("--out", type=Path, help="checkpoint folder (default build/train/<app>)")
    p.add_argument("--resume", action="store_true",
                   help="continue from <out>/last.pt (and qat_last.pt); an error when there "
                        "is none")
    p.add_argument("--from", dest="from_ckpt", type=Path,
                   help="start from this checkpoint's weights (with --epochs 0: just "
                        "evaluate / export it)")
    p.add_argument("--qat-epochs", type=int,
                   help="quantisation-aware fine-tuning epochs (default: the app's "
                        "train.qat_epochs; 0: post-training quantisation)")
    p.add_argument("--data", nargs="+", metavar="DIR",
                   help="train on these dataset folders instead of the app's [[data]] "
                        "(format detected: VOC, YOLO, COCO or image folders)")
    p.add_argument("--float-only", action="store_true", help="stop after the float model")
    p.add_argument("--backbone", type=Path,
                   help="start the backbone from these weights (`patchcam pretrain APP`)")
    p.add_argument("--export", action="store_true",
                   help="write the int8 model to apps/<app>/generated/ and the float "
                        "weights to apps/<app>/weights/ (what make demo / flash use)")
    p.add_argument("--calib", type=int, default=128,
                   help="train images to calibrate the int8 ranges on (default 128)")
    p.add_argument("--eval-limit", type=int, metavar="N",
                   help="evaluate on the first N images of each test set (quick checks)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    a = p.parse_args(argv)

    torch.set_num_threads(a.threads)
    try:
        cfg = load_app(a.app)
    except AppConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.data:
        cfg = cfg.with_data(a.data)
    if cfg.app.task != "detect":
        print(f"error: {a.app} is a {cfg.app.task} app; use `patchcam train {a.app}`",
              file=sys.stderr)
        return 2
    r = cfg.train
    o = td.FitOptions(epochs=r.epochs if a.epochs is None else a.epochs,
                      lr=a.lr or r.lr, batch=a.batch or r.batch,
                      seed=r.seed if a.seed is None else a.seed, neg_ratio=a.neg_ratio,
                      eval_every=a.eval_every, max_steps=a.max_steps,
                      ema=r.ema if a.ema is None else a.ema)
    if not 0 <= o.ema < 1:
        print(f"error: --ema {o.ema}: the decay must be in [0, 1) (0: no averaging; "
              "0.999 is usual)", file=sys.stderr)
        return 2
    out = a.out or REPO / "build" / "train" / cfg.app.name
    try:
        if a.resume:
            loop.require_checkpoint(out / "last.pt")
        train = td.load_split(cfg, "train", zoom=td.TRAIN_ZOOM)
        val = td.load_split(cfg, "val", boxes_only=True)
        tests = eval_sets(cfg)
        if a.eval_limit:
            tests = {k: d.subset(range(min(a.eval_limit, len(d)))) for k, d in tests.items()}
    except (loop.NothingToResume, readers.DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{cfg.app.name}: train {train.summary()}; val {val.summary()}", flush=True)
    if r.balance_classes:
        o.class_weights = td.class_weights(train, len(cfg.classes.names))
        print("class weights (train.balance_classes): " + ", ".join(
            f"{n} {w:.2f}" for n, w in zip(cfg.classes.names, o.class_weights, strict=True)))
    for name, d in train.by_source().items():
        print(f"  train {name}: {d.summary()}")
    print(f"  evaluation: {', '.join(f'{k} ({len(v)})' for k, v in tests.items())}")

    torch.manual_seed(o.seed)
    source_doc: dict = {}
    if a.from_ckpt:
        model, source_doc = td.load_checkpoint(a.from_ckpt)
    else:
        model = cfg.build_model()
        if a.backbone:
            model.backbone.load_state_dict(torch.load(a.backbone, map_location="cpu",
                                                      weights_only=True))
            print(f"backbone from {a.backbone}")
    history: list[dict] = []
    last = out / "last.pt"
    # a QAT run can only be resumed if the float model under it is the one it started from
    float_was_done = a.resume and loop.finished(last, o.epochs)
    if o.epochs > 0:
        print(f"training {o.epochs} epochs x {td.steps_per_epoch(train, o)} batches of "
              f"{o.batch}, lr {o.lr}; checkpoints in {out}", flush=True)
        model, history = td.fit(model, train, o, out, resume=a.resume, val=val, cfg=cfg,
                                extra={"app": cfg.app.name})
    if o.epochs > 0 and o.eval_every and (out / "best.pt").is_file():
        model, best = td.load_checkpoint(out / "best.pt")
        print(f"using best.pt (epoch {best['epoch']}, val mAP50 "
              f"{best['history'][-1].get('val_map')})")

    float_res = {k: td.evaluate_float(model, d, cfg) for k, d in tests.items()}
    report("float AP50 (VOC all-point, IoU 0.5, score >= 0.05):", float_res)
    if a.float_only:
        return 0

    qat_epochs = r.qat_epochs if a.qat_epochs is None else a.qat_epochs
    if qat_epochs > 0:
        qo = td.FitOptions(epochs=qat_epochs, lr=r.qat_lr, batch=o.batch, seed=o.seed,
                           neg_ratio=o.neg_ratio, max_steps=o.max_steps,
                           class_weights=o.class_weights)
        print(f"quantisation-aware fine-tuning: {qat_epochs} epochs, lr {r.qat_lr}",
              flush=True)
        fused = td.qat_finetune(model, cfg, train, qo, out, a.calib,
                                resume=float_was_done and (out / "qat_last.pt").is_file())
        g = quantize.to_int8(fused, cfg.app.name, {})
    else:
        g = td.quantize_model(model, cfg, train, a.calib, o.seed)
    int8_res = {k: td.evaluate_int8(g, d, cfg, model.stride) for k, d in tests.items()}
    report(f"int8 AP50 ({'QAT' if qat_epochs else 'post-training quantisation'}; integer "
           "reference + integer decoder):", int8_res)
    summary = {k: {"float_map50": round(float_res[k]["map"], 4),
                   "int8_map50": round(int8_res[k]["map"], 4),
                   "float_ap50": float_res[k]["ap50"], "int8_ap50": int8_res[k]["ap50"]}
               for k in tests}
    print(json.dumps(summary, indent=1))
    if not a.export:
        return 0

    recipe = {"epochs": o.epochs, "lr": o.lr, "batch": o.batch, "seed": o.seed,
              "neg_ratio": o.neg_ratio, "class_weights": o.class_weights, "ema": o.ema,
              "optimizer": "AdamW wd 5e-4, one-cycle cosine",
              "augment": td.View().describe(),
              "calibration_images": a.calib, "qat_epochs": qat_epochs, "qat_lr": r.qat_lr,
              "command": "patchcam train " + " ".join(argv or sys.argv[1:])}
    if source_doc.get("format") == td.CKPT_FORMAT:  # exporting a training checkpoint
        history = history or source_doc.get("history", [])
        recipe["checkpoint"] = {"path": str(a.from_ckpt), "epoch": source_doc["epoch"],
                                "options": source_doc.get("options", {})}
    data = {"train": {k: len(v) for k, v in train.by_source().items()},
            "evaluated_on": list(tests), "split": "each source's own train/val/test "
            "(readers); test never trained on"}
    g.meta.update({"source": "trained", "app": cfg.app.name, "weights": "trained",
                   "preset": cfg.model.preset, "classes": list(cfg.classes.names),
                   "ap50": summary})
    try:
        gen = export.write_generated(g, cfg)
    except patchplan.PlanError as e:
        print(f"error: {cfg.app.name} does not fit its arena budget "
              f"(board.arena_kb = {cfg.board.arena_kb}): {e}", file=sys.stderr)
        return 2
    weights = cfg.folder / "weights" / "float.pt"  # apps/<app>/, or beside a given app.toml
    td.save_weights(model, weights, {"app": cfg.app.name, "data": data, "recipe": recipe,
                                     "ap50": summary, "history": history,
                                     "train_seconds": round(loop.training_seconds(history))})
    print(f"wrote {gen}/ (model.json, model.h, model.c, app_config.h) and {weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
