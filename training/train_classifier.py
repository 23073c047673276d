"""Train a zoo classifier on labelled image folders and save a patchcam checkpoint.

The shipped VWW weights (apps/vww/weights/float.pt) come from:

    .venv/bin/python training/train_classifier.py --preset mcu-s-96 --width 0.5 \\
        --epochs 15 --positive person --out apps/vww/weights/float.pt \\
        ../shared/datasets/vww_*

Folders hold a labels.csv (`file,label`) or one sub-folder per class. Splits are fixed by a
hash of each file name (70/15/15, `patchcam.imagesets.split_of`); the test split is never
trained on. The float and int8 (post-training quantised, integer reference) accuracy on the
test split are printed and stored in the checkpoint's meta.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from patchcam import checkpoint, imagesets, quantize, reference, train, zoo


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", help="labelled image folders")
    p.add_argument("--preset", default="mcu-s-96", help="zoo preset (default mcu-s-96)")
    p.add_argument("--width", type=float, help="override the preset's width multiplier")
    p.add_argument("--positive", default="person",
                   help="the class reported as 1; every other label is 0 (default person)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="build/train/classifier.pt", help="checkpoint path")
    args = p.parse_args(argv)

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
    train.fit(model, images[tr], labels[tr], args.epochs, args.lr, args.batch, args.seed)
    minutes = (time.time() - t0) / 60

    float_pred = train.predict(model, images[te]).argmax(1)
    g = quantize.quantize(model, (cfg.in_channels, *cfg.resolution),
                          [train.to_batch(images[tr][:512])], cfg.name)
    int8_pred = np.array([reference.run(g, (x.astype(np.int16) - 128).astype(np.int8)).argmax()
                          for x in images[te]])
    acc_f = float((float_pred == labels[te]).mean())
    acc_q = float((int8_pred == labels[te]).mean())
    agree = float((float_pred == int8_pred).mean())
    print(f"test accuracy: float {acc_f:.4f}, int8 {acc_q:.4f}; agreement {agree:.4f}; "
          f"{minutes:.1f} min")
    checkpoint.save_classifier(model, args.out, {
        "folders": [Path(f).name for f in args.folders], "positive": args.positive,
        "split": "patchcam.imagesets.split_of (70/15/15 by file-name hash)",
        "recipe": vars(args), "train_minutes": round(minutes, 1),
        "test_accuracy_float": acc_f, "test_accuracy_int8_ptq": acc_q,
        "int8_float_agreement": agree})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
