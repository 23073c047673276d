"""Evaluate an app's trained model: float vs int8 vs an OpenCV baseline, on held-out photos.

What it measures, per data source and over all of them:

  vww             accuracy of person / no_person on the test split: the vww_* folders split
                  as the weights were trained (imagesets.split_of, 70/15/15 by file-name
                  hash) and the detection sets' test photos, which all show people;
  person_detect,  AP50 per class (PASCAL VOC all-point, IoU 0.5, score >= 0.05) and mAP on
  mask_detect     the sets the detector's training evaluates (train_detector.eval_sets):
                  each source with boxes, its test split (its val split when it has none).

  float     apps/<app>/weights/float.pt in PyTorch;
  int8      the int8 graph that ships (apps/<app>/generated/model.json) run by the integer
            reference with the firmware's integer decoder; an app with no
            generated/ is quantised from float.pt the way its training script does (said so);
  by size   AP50 per object-size bucket (float, int8; all sets pooled): ground truth of other
            sizes ignored, COCO's way; size = sqrt(box area) in input pixels, the buckets
            per app in patchcam/training/metrics.py (SIZE_EDGES);
  failures  where int8 fails at the app's score threshold: ground-truth boxes no detection
            matches, detections matching none, and ground-truth boxes that boxes of two
            classes overlap (NMS per class), counted, and the worst drawn into
            build/eval/<app>_failures.png, beside the report (patchcam/training/failures.py;
            never committed: it shows dataset photos);
  baseline  what OpenCV ships, on the same photos and scored by the same code: the HOG
            people detector (person_detect; "any person found" for vww) and a Haar face
            cascade + a skin-colour rule for the mask (mask_detect); see
            patchcam/training/baselines.py.

The table goes to stdout and everything to build/eval/<app>.json; --card then rewrites
apps/<app>/weights/MODEL_CARD.md from it (patchcam/training/modelcard.py), keeping
hand-written parts. --data DIR scores every photo of any folder instead (see --help).

Examples:
  make eval APP=person_detect
  .venv/bin/patchcam eval person_detect --limit 20 --no-baseline   # smoke test
  .venv/bin/patchcam eval vww --card

Exit status: 0 done; 2 a missing app, dataset or weights (one line says what to run).
The int8 reference takes 0.1-0.3 s an image on one core, HOG about as long.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from patchcam.app import detect
from patchcam.app.config import AppConfig, AppConfigError, load_app
from patchcam.compiler import quantize, reference
from patchcam.compiler.ir import Graph
from patchcam.images import UnreadableImage, read_image
from patchcam.paths import REPO, shown
from patchcam.training import (
    baselines,
    checkpoint,
    failures,
    imagesets,
    metrics,
    quickfit,
    readers,
    userdata,
)
from patchcam.training import detector as td

OUT_DIR = REPO / "build" / "eval"
CALIB_IMAGES = 512  # train_classifier.py calibrates its post-training quantisation on these
MASK_FIT_IMAGES = 300  # train photos whose ground-truth faces fit the baseline's colour rule


class EvalError(Exception):
    """Something the user has to provide first; the message is one line saying what."""


# ---- model files ---------------------------------------------------------------------------
def weights_path(cfg: AppConfig) -> Path:
    return cfg.folder / "weights" / "float.pt"


def generated_path(cfg: AppConfig) -> Path:
    return cfg.folder / "generated" / "model.json"


def load_float(cfg: AppConfig) -> tuple[torch.nn.Module, dict]:
    """The float model and its weights' meta (recipe, data, history)."""
    path = weights_path(cfg)
    if not path.is_file():
        raise EvalError(f"{shown(path)}: no trained weights for {cfg.app.name}; "
                        f"train them first: make train APP={cfg.app.name}")
    try:
        if cfg.app.task == "classify":
            return checkpoint.load_classifier(path)
        model, doc = td.load_checkpoint(path)
        return model, doc.get("meta", {})
    except (checkpoint.CheckpointError, ValueError, RuntimeError, KeyError) as e:
        raise EvalError(f"{shown(path)}: cannot load ({e}); retrain with "
                        f"make train APP={cfg.app.name}") from None


def check_data(cfg: AppConfig) -> None:
    """Every data source must exist: a silently skipped source would change the figures."""
    for src in cfg.data:
        root = cfg.data_path(src)
        if not root.exists():
            try:  # the readers know how to get each public dataset: let them say it
                readers.read_dataset(root, src.format)
            except readers.DatasetError as e:
                raise EvalError(str(e)) from None
            raise EvalError(f"{root}: dataset folder not found")


# ---- detectors -----------------------------------------------------------------------------
# A detection set to score: its data at the model input, and a function giving its samples
# (the original photos, for a baseline that runs on them), only called when needed.
DetSet = tuple[td.DetData, Callable[[], list[readers.Sample]]]


def detect_sets(cfg: AppConfig) -> dict[str, DetSet]:
    """train_detector.eval_sets, each with a way to its original photos."""
    from patchcam.training.commands.train_detector import eval_sets
    sets = eval_sets(cfg)
    by_name = {Path(s.path).name: i for i, s in enumerate(cfg.data)}
    return {k: (d, partial(photos, cfg, by_name[k.split("/")[0]], k.split("/")[1]))
            for k, d in sets.items()}


def photos(cfg: AppConfig, source: int, split: str) -> list[readers.Sample]:
    """The samples behind td.load_split(cfg, split, [source]), in its order (its image cache
    holds the same list, so this costs no decoding)."""
    src = cfg.data[source]
    kw = {"class_names": src.class_names} if src.class_names else {}
    root = cfg.data_path(src)
    mapping = {**{n: n for n in cfg.classes.names}, **src.class_map}
    samples = readers.remap_labels(readers.read_dataset(root, src.format, **kw).split(split),
                                   mapping, drop_unmapped=True)
    _, kept = imagesets.load_images(samples, (cfg.input.height, cfg.input.width),
                                    cfg.input.color == "gray",
                                    desc=f"{cfg.app.name}-{root.name}-{split}")
    return kept


def read_rgb(path: Path) -> np.ndarray:
    """The image as RGB, through the pixel-limit and truncation checks of patchcam.images."""
    try:
        return cv2.cvtColor(read_image(path), cv2.COLOR_BGR2RGB)
    except UnreadableImage as e:
        raise EvalError(str(e)) from None


def detect_baseline(cfg: AppConfig) -> tuple[object, dict]:
    """The app's OpenCV baseline and a record of how it is set up."""
    if "person" in cfg.classes.names and len(cfg.classes.names) == 1:
        hog = baselines.HogPeople()
        return hog, {"name": "OpenCV HOG people detector", "settings": asdict(hog),
                     "on_input": True,
                     "input": f"the app's {cfg.input.width}x{cfg.input.height} input, "
                              f"enlarged to a shorter side of {hog.min_side} px (HOG's window "
                              "is 64x128), boxes scaled back"}
    if set(cfg.classes.names) == {"mask", "no_mask"}:
        return fit_mask_baseline(cfg)
    raise baselines.BaselineUnavailable(f"no OpenCV baseline for classes {cfg.classes.names}")


def fit_mask_baseline(cfg: AppConfig) -> tuple[baselines.HaarMask, dict]:
    """Haar faces + the skin rule, its threshold fitted on train ground-truth faces."""
    haar = baselines.HaarMask()
    ratios, no_mask = [], []
    no = cfg.classes.names.index("no_mask")
    for i, src in enumerate(cfg.data):
        if src.format == "folder":
            continue
        kw = {"class_names": src.class_names} if src.class_names else {}
        mapping = {**{n: n for n in cfg.classes.names}, **src.class_map}
        train = readers.remap_labels(
            readers.read_dataset(cfg.data_path(src), src.format, **kw).split("train"),
            mapping, drop_unmapped=True)
        for s in tqdm(train[:MASK_FIT_IMAGES], desc=f"fitting the colour rule ({i})",
                      leave=False):
            rgb = read_rgb(s.image_path)
            for b, lb in zip(s.boxes, s.labels, strict=True):
                ratios.append(baselines.skin_ratio(rgb, b))
                no_mask.append(cfg.classes.names.index(lb) == no)
    haar.threshold = haar.fit_threshold(np.array(ratios), np.array(no_mask))
    r, n = np.array(ratios), np.array(no_mask, bool)
    pred = r >= haar.threshold
    acc = float((pred == n).mean()) if len(n) else math.nan
    return haar, {"name": "OpenCV Haar frontal face cascade + skin-colour mask rule",
                  "settings": asdict(haar), "on_input": False,
                  "rule": f"no_mask when the lower half of the face box shows at least "
                          f"{haar.threshold:.3f}x the skin fraction of its upper half (fitted "
                          f"on {len(r)} ground-truth train faces: {acc:.1%} right on them)",
                  "input": "the original photo (enlarged to a shorter side of "
                           f"{haar.min_side} px), boxes scaled to the "
                           f"{cfg.input.width}x{cfg.input.height} frame"}


def eval_detector(cfg: AppConfig, model: torch.nn.Module, g: Graph, sets: dict[str, DetSet],
                  limit: int | None, with_baseline: bool,
                  failures_png: Path | None = None) -> dict:
    if not sets:
        raise EvalError(f"{cfg.path}: no source with boxes has a test or val split")
    base, base_doc = None, None
    if with_baseline:
        try:
            base, base_doc = detect_baseline(cfg)
        except baselines.BaselineUnavailable as e:
            base_doc = {"unavailable": str(e)}
    frame = (cfg.input.width, cfg.input.height)
    results: dict[str, dict] = {}
    pooled: dict[str, list] = {"float": [], "int8": [], "baseline": []}
    gts_all: list = []
    images_all: list[np.ndarray] = []
    for name, (data, originals) in sets.items():
        idx = np.arange(len(data) if limit is None else min(limit, len(data)))
        data = data.subset(idx)
        preds = {"float": td.predict_float(model, data, cfg)}
        preds["int8"] = [td.predict_int8(g, data.subset([i]), cfg, model.stride)[0]
                         for i in tqdm(range(len(data)), desc=f"int8 {name}", leave=False)]
        if base is not None:
            every = [] if base_doc.get("on_input") else originals()
            preds["baseline"] = []
            for i in tqdm(idx, desc=f"baseline {name}", leave=False):
                rgb = data.images[i] if base_doc.get("on_input") else \
                    read_rgb(every[i].image_path)
                preds["baseline"].append(baselines.to_frame(base(rgb), (rgb.shape[1],
                                                                        rgb.shape[0]), frame))
        results[name] = {k: _ap(td.scores(p, data, cfg)) for k, p in preds.items()}
        results[name].update(images=len(data), boxes=int(sum(len(b) for b in data.boxes)))
        for k, p in preds.items():
            pooled[k] += p
        gts_all += data.gts()
        images_all += list(data.images)
    all_data = td.DetData(np.zeros((len(gts_all), 1, 1, 1), np.uint8), [b for b, _ in gts_all],
                          [lb for _, lb in gts_all], ["all"] * len(gts_all))
    overall = {k: _ap(td.scores(p, all_data, cfg)) for k, p in pooled.items() if p}
    overall.update(images=len(gts_all), boxes=int(sum(len(b) for b, _ in gts_all)))
    return {"metric": "AP50 (PASCAL VOC all-point, IoU 0.5, detections scored >= "
                      f"{td.EVAL_SCORE}); overall = all sets pooled",
            "sets": results, "overall": overall, "baseline": base_doc,
            "by_size": by_size(cfg, pooled, gts_all),
            "failures": where_it_fails(cfg, g, model.stride, images_all, pooled["int8"],
                                       gts_all, failures_png)}


def _ap(r: dict) -> dict:
    return {"map": round(r["map"], 4), "ap50": r["ap50"]}


def by_size(cfg: AppConfig, preds: dict[str, list], gts: list) -> dict:
    """AP50 per object-size bucket for float and int8, all sets pooled: a detector can score
    well overall on big people and still miss every small one; this shows which."""
    buckets = metrics.size_buckets(cfg.app.name)
    per = {k: metrics.ap50_by_size(preds[k], gts, buckets) for k in ("float", "int8")}
    names = cfg.classes.names
    rows = {}
    for b, (lo, hi) in buckets.items():
        rows[b] = {"label": size_label(b, lo, hi), "px": [lo, None if math.isinf(hi) else hi],
                   "boxes": per["int8"][b]["boxes"]}
        for k, r in per.items():
            m = r[b]["map"]
            rows[b][k] = {"map": None if math.isnan(m) else round(m, 4),
                          "ap50": {names[c]: round(v, 4) for c, v in r[b]["ap50"].items()}}
    return {"metric": "AP50 on the ground-truth boxes of each size (sqrt(box area) in the "
                      f"{cfg.input.width}x{cfg.input.height} input's pixels), other sizes "
                      "ignored as COCO does; all sets pooled", "buckets": rows}


def size_label(name: str, lo: float, hi: float) -> str:
    """'small (< 16 px)', 'medium (16-48 px)', 'large (>= 48 px)': the edges in the name, so
    no reader has to look them up."""
    if lo <= 0:
        return f"{name} (< {hi:g} px)"
    return f"{name} (>= {lo:g} px)" if math.isinf(hi) else f"{name} ({lo:g}-{hi:g} px)"


def at_app_threshold(preds: list[detect.Detections], g: Graph, cfg: AppConfig,
                     stride: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The int8 detections the board reports, (boxes, probability, class): score q >= the
    decoder's q_threshold for the app's score. Filtering the EVAL_SCORE decode gives exactly
    what decoding at the app's score gives: candidates, NMS and the caps all go by score, so a
    lower-scoring box never displaces a higher one."""
    out = g.tensors[g.output]
    t = cfg.thresholds
    q_thr = detect.DecodeParams.prepare(out.scale, out.zero_point, len(cfg.classes.names),
                                        stride, out.shape[:2],
                                        (cfg.input.width, cfg.input.height), t.score,
                                        t.nms_iou).q_threshold
    kept = []
    for p in preds:
        keep = np.asarray(p.scores) >= q_thr
        kept.append((np.asarray(p.boxes, np.float64)[keep],
                     p.probabilities(out.scale, out.zero_point)[keep], np.asarray(p.classes)[keep]))
    return kept


def where_it_fails(cfg: AppConfig, g: Graph, stride: int, images: list[np.ndarray],
                   int8: list[detect.Detections], gts: list, png: Path | None) -> dict:
    """Misses and false boxes of int8 at the app's threshold, counted; the worst drawn to png.

    Dataset photos are never committed to this repository (their licences are the
    datasets'): the grid goes to build/eval/ only, and the model card gets the counts and the
    command that draws it, never the image."""
    preds = at_app_threshold(int8, g, cfg, stride)
    doc = {"score": cfg.thresholds.score, "iou": metrics.IOU,
           **failures.counts(preds, gts, metrics.size_buckets(cfg.app.name))}
    if png is not None:
        png = png.resolve()
        misses, false = failures.find_failures(preds, gts)
        doc["tiles"] = failures.write_grid(png, images, preds, gts, misses, false,
                                           cfg.classes.names)
        if doc["tiles"]:
            doc["png"] = shown(png)
    return doc


# ---- classifier (vww) ----------------------------------------------------------------------
def vww_samples(cfg: AppConfig, meta: dict, split: str) -> dict[str, list[readers.Sample]]:
    """Per source, its samples of `split` with image labels.

    Folder sources are split as the weights were (meta 'split'): by imagesets.split_of for
    the shipped VWW weights, else by the readers' own split. Detection sets (image_label)
    always use the readers' split; a held_out source is all test (readers.read_source).
    """
    by_hash = "split_of" in str(meta.get("split", ""))
    out = {}
    for src in cfg.data:
        root = cfg.data_path(src)
        ss = readers.read_source(root, src)
        if by_hash and not src.held_out and src.image_label is None:
            chosen = [s for s in ss if imagesets.split_of(s.path) == split]
        else:
            chosen = ss.split(split)
        if src.image_label is not None:
            chosen = readers.with_image_label(chosen, src.image_label)
        if chosen:
            out[root.name] = chosen
    return out


def vww_int8(cfg: AppConfig, model: torch.nn.Module, meta: dict) -> tuple[Graph, str]:
    """The shipped int8 graph, or the post-training quantisation train_classifier.py does:
    calibrated on the first 512 train images of the vww_* folders in name order."""
    gen = generated_path(cfg)
    if gen.is_file():
        return Graph.load(gen), f"shipped {shown(gen)}"
    folders = sorted((src for src in cfg.data if src.image_label is None),
                     key=lambda s: Path(s.path).name)
    train = [s for src in folders for s in imagesets.read_folder(cfg.data_path(src))
             if imagesets.split_of(s.path) == "train"][:CALIB_IMAGES]
    res = model.cfg.resolution
    imgs, _ = imagesets.load_images(train, res, cfg.input.color == "gray", desc="vww-calib")
    g = quantize.quantize(model, (model.cfg.in_channels, *res), [quickfit.to_batch(imgs)],
                          model.cfg.name)
    return g, (f"no {shown(gen)}: post-training quantisation of float.pt, "
               f"calibrated on the first {len(imgs)} train images (as "
               "patchcam/training/commands/train_classifier.py does)")


def imported_reference(cfg: AppConfig, spec: str) -> tuple[Graph | None, dict | None]:
    """TFLite Micro's own person_detect.tflite, imported and run by the integer reference:
    the model a vww student has to beat (spec: auto, none or a path; auto finds it in
    data/models/ or ../shared/models/ and is silent when it is not there)."""
    if spec == "none" or cfg.classes.names != ["no_person", "person"]:
        return None, None
    from patchcam.compiler.tflite_import import TFLiteImportError, import_tflite
    from patchcam.training.commands import finetune_imported as imported
    try:
        path = imported.locate("auto" if spec == "auto" else spec)
        g = import_tflite(path)
    except FileNotFoundError as e:
        if spec == "auto":
            return None, {"unavailable": str(e)}
        raise EvalError(str(e)) from None
    except TFLiteImportError as e:
        raise EvalError(f"{spec}: {e}") from None
    return g, {"name": "TFLite Micro person_detect (imported; int8 reference; "
                       "output 1 = person)", "file": str(path), "graph": g.name}


def eval_classifier(cfg: AppConfig, model: torch.nn.Module, g: Graph,
                    sets: dict[str, list[readers.Sample]], limit: int | None,
                    with_baseline: bool, tflm: Graph | None = None,
                    tflm_doc: dict | None = None) -> dict:
    pos = cfg.classes.names.index(cfg.classes.positive or cfg.classes.names[-1])
    hog, base_doc = None, None
    if with_baseline:
        try:
            hog = baselines.HogPeople()
            base_doc = {"name": "OpenCV HOG people detector: person when any window scores "
                                "> 0 (OpenCV's default hit threshold)",
                        "settings": asdict(hog),
                        "input": "the original photo, enlarged to a shorter side of "
                                 f"{hog.min_side} px when smaller"}
        except baselines.BaselineUnavailable as e:
            base_doc = {"unavailable": str(e)}
    results: dict[str, dict] = {}
    pooled: dict[str, list] = {"labels": [], "float": [], "int8": [], "baseline": [],
                               "tflm": []}
    res = model.cfg.resolution
    for name, samples in sets.items():
        samples = samples[:limit] if limit else samples
        imgs, kept = imagesets.load_images(samples, res, cfg.input.color == "gray",
                                           desc=f"vww-eval-{name}")
        labels = np.array([int(s.label == cfg.classes.names[pos]) for s in kept])
        pred = {"float": (quickfit.predict(model, imgs).argmax(1) == pos).astype(int)}
        pred["int8"] = np.array([int(reference.run(g, (x.astype(np.int16) - 128)
                                                   .astype(np.int8)).argmax() == pos)
                                 for x in tqdm(imgs, desc=f"int8 {name}", leave=False)])
        if hog is not None:
            pred["baseline"] = np.array([int(hog.person_score(read_rgb(s.image_path)) > 0)
                                         for s in tqdm(kept, desc=f"HOG {name}", leave=False)])
        if tflm is not None:
            h, w, c = tflm.tensors[tflm.input].shape
            timgs, tkept = imagesets.load_images(kept, (h, w), c == 1, desc=f"tflm-eval-{name}")
            if len(tkept) != len(kept):  # the same files decode the same way at any size
                raise EvalError(f"{name}: images decode for one model and not the other")
            pred["tflm"] = (np.array([int(reference.run(tflm, (x.astype(np.int16) - 128)
                                                        .astype(np.int8)).argmax())
                                      for x in tqdm(timgs, desc=f"TFLM {name}", leave=False)])
                            == 1).astype(int)
        r = {k: round(float((p == labels).mean()), 4) for k, p in pred.items()}
        r.update(images=len(kept), person=int(labels.sum()))
        results[name] = r
        pooled["labels"].append(labels)
        for k, p in pred.items():
            pooled[k].append(p)
    if not results:
        raise EvalError(f"{cfg.path}: no test images in the app's data sources")
    y = np.concatenate(pooled.pop("labels"))
    overall = {k: round(float((np.concatenate(p) == y).mean()), 4)
               for k, p in pooled.items() if p}
    overall.update(images=len(y), person=int(y.sum()))
    other = next(c for c in cfg.classes.names if c != cfg.classes.names[pos])
    recall = {k: {cfg.classes.names[pos]: _recall(np.concatenate(p), y, 1),
                  other: _recall(np.concatenate(p), y, 0)}
              for k, p in pooled.items() if p}
    pos_name = cfg.classes.names[pos]
    return {"metric": f"accuracy ({pos_name} / {other}, P({pos_name}) >= 0.5)", "sets": results,
            "overall": overall, "recall": recall, "baseline": base_doc, "tflm": tflm_doc}


def _recall(pred: np.ndarray, y: np.ndarray, cls: int) -> float | None:
    """The fraction of the images of class `cls` predicted as it (None: no such image)."""
    n = int((y == cls).sum())
    return round(float((pred[y == cls] == cls).mean()), 4) if n else None


# ---- report --------------------------------------------------------------------------------
def _value(r: dict | float | None) -> float | None:
    if r is None:
        return None
    return r["map"] if isinstance(r, dict) else r


def table(doc: dict) -> str:
    rows = [*doc["sets"].items(), ("all (pooled)", doc["overall"])]
    detect = doc["task"] == "detect"
    base = doc.get("baseline") or {}
    tflm = doc.get("tflm") or {}
    cols = ("float", "int8", "baseline") + (("tflm",) if "name" in tflm else ())
    head = (f"{'set':<34} {'images':>6} {'boxes' if detect else 'person':>6} "
            f"{'float':>7} {'int8':>7} {'baseline':>8}" + (f" {'TFLM':>7}" if "tflm" in cols
                                                            else ""))
    lines = [f"{doc['app']}: {doc['metric']}", head, "-" * len(head)]
    for name, r in rows:
        cells = [_value(r.get(k)) for k in cols]
        txt = " ".join(f"{v:>7.3f}" if v is not None else f"{'-':>7}" for v in cells[:2])
        b = f"{cells[2]:>8.3f}" if cells[2] is not None else f"{'-':>8}"
        t = "".join(f" {v:>7.3f}" if v is not None else f" {'-':>7}" for v in cells[3:])
        lines.append(f"{name:<34} {r['images']:>6} {r['boxes' if detect else 'person']:>6} "
                     f"{txt} {b}{t}")
        if detect and len(doc["classes"]) > 1:
            for c in doc["classes"]:
                per = [r[k]["ap50"].get(c) if k in r else None
                       for k in ("float", "int8", "baseline")]
                lines.append(f"  AP50 {c:<27} {'':>6} {'':>6} " + " ".join(
                    f"{v:>7.3f}" if v is not None else f"{'-':>7}" for v in per))
    for c in doc["classes"] if "recall" in doc else ():
        per = [doc["recall"].get(k, {}).get(c) for k in cols]
        lines.append(f"  recall {c:<25} {'':>6} {'':>6} " + " ".join(
            f"{v:>7.3f}" if v is not None else f"{'-':>7}" for v in per[:2]) + " " + " ".join(
            f"{v:>8.3f}" if v is not None else f"{'-':>8}" for v in per[2:3]) + "".join(
            f" {v:>7.3f}" if v is not None else f" {'-':>7}" for v in per[3:]))
    o = doc["overall"]
    f, q, bl = (_value(o.get(k)) for k in ("float", "int8", "baseline"))
    lines.append(f"int8 vs float: {100 * (q - f):+.1f} points "
                 f"({'within' if abs(q - f) <= 0.01 else 'outside'} the 1-point target)")
    if bl is not None:
        lines.append(f"ours (int8) vs {base['name']}: {100 * (q - bl):+.1f} points "
                     f"({q:.3f} vs {bl:.3f})")
    elif base.get("unavailable"):
        lines.append(f"baseline unavailable: {base['unavailable']}")
    tq = _value(o.get("tflm"))
    if tq is not None:
        lines.append(f"ours (int8) vs {tflm['name']}: {100 * (q - tq):+.1f} points "
                     f"({q:.3f} vs {tq:.3f})")
    lines.append(f"int8 model: {doc['int8_source']}")
    return "\n".join(lines + size_lines(doc) + failure_lines(doc))


def size_lines(doc: dict) -> list[str]:
    """The AP50-by-size table of a detector's report (none for a classifier)."""
    if "by_size" not in doc:
        return []
    head = f"{'AP50 by object size':<34} {'':>6} {'boxes':>6} {'float':>7} {'int8':>7}"
    lines = ["", f"{doc['by_size']['metric']}", head, "-" * len(head)]
    for r in doc["by_size"]["buckets"].values():
        cells = " ".join(f"{v:>7.3f}" if v is not None else f"{'-':>7}"
                         for v in (_value(r.get(k)) for k in ("float", "int8")))
        lines.append(f"{r['label']:<34} {'':>6} {r['boxes']:>6} {cells}")
    return lines


def failure_lines(doc: dict) -> list[str]:
    """Where int8 fails, in two lines: the counts and where the grid went."""
    f = doc.get("failures")
    if not f:
        return []
    by = ", ".join(f"{k} {m}/{n}" for k, (m, n) in f.get("missed_by_size", {}).items())
    lines = ["", f"where int8 fails (score >= {f['score']}, IoU {f['iou']}): missed "
                 f"{f['missed']} of {f['boxes']} boxes ({by}) in {f['images_with_misses']} of "
                 f"{f['images']} images; {f['false']} false boxes in "
                 f"{f['images_with_false']} images"
                 + (f"; {f['two_classes']} boxes boxed as two classes" if f.get("two_classes")
                    else "")]
    if f.get("png"):
        lines.append(f"the worst {f['tiles']}, drawn: {f['png']} (dataset photos: not for "
                     "committing)")
    return lines


def user_sets(cfg: AppConfig, data: Path) -> dict:
    """The sets of `--data`: the whole folder as one set, named after it."""
    samples = userdata.read(cfg, data)
    name = userdata.set_name(data)
    if cfg.app.task == "classify":
        return {name: samples}
    det, kept = userdata.detection_data(cfg, samples, f"{cfg.app.name}-data-{name}")
    return {name: (det, lambda: kept)}


def report_name(app: str, data: Path | None) -> str:
    """The report's file stem under build/eval/: <app>, or <app>-data-<folder> for --data (so
    scoring a folder never overwrites the app's own report)."""
    return f"{app}-data-{userdata.set_name(data)}" if data is not None else app


def failures_path(report: Path) -> Path:
    """The failure grid beside its report: build/eval/<app>_failures.png by default, so a
    smoke test with --json elsewhere never overwrites the grid of a real run. It shows
    dataset photos, which are never committed: run() refuses a path under apps/."""
    return report.with_name(f"{report.stem}_failures.png")


def run(app: str, limit: int | None = None, with_baseline: bool = True,
        threads: int = 2, data: Path | None = None, tflm: str = "auto",
        failures_png: Path | None = None) -> dict:
    """Evaluate and return the report document (what build/eval/<app>.json holds).

    data: score every photo of this folder instead of the app's own test split;
    failures_png: where a detector's failure grid goes (default: beside the default report,
    build/eval/<app>_failures.png)."""
    torch.set_num_threads(threads)
    try:
        cfg = load_app(app)
    except AppConfigError as e:
        raise EvalError(str(e)) from None
    if failures_png is None:
        failures_png = failures_path(OUT_DIR / f"{report_name(cfg.app.name, data)}.json")
    if failures_png.resolve().is_relative_to(REPO / "apps"):
        raise EvalError(f"{failures_png}: the failure grid shows dataset photos, which are "
                        "never committed; write it under build/")
    model, meta = load_float(cfg)
    if data is None:
        check_data(cfg)
    t0 = time.time()
    try:
        if data is not None:
            sets = user_sets(cfg, data)
        elif cfg.app.task == "classify":
            sets = vww_samples(cfg, meta, "test")
        else:
            sets = detect_sets(cfg)
        if cfg.app.task == "classify":
            g, how = vww_int8(cfg, model, meta)
            res = eval_classifier(cfg, model, g, sets, limit, with_baseline,
                                  *imported_reference(cfg, tflm))
        else:
            gen = generated_path(cfg)
            if gen.is_file():
                g, how = Graph.load(gen), f"shipped {shown(gen)}"
            else:
                train = td.load_split(cfg, "train")
                g = td.quantize_model(model, cfg, train)
                how = (f"no {shown(gen)}: post-training quantisation of float.pt "
                       "calibrated on 128 train images (as `patchcam train "
                       f"{cfg.app.name} --export` does)")
            res = eval_detector(cfg, model, g, sets, limit, with_baseline, failures_png)
    except readers.DatasetError as e:
        raise EvalError(str(e)) from None
    w = weights_path(cfg)
    graph = generated_path(cfg)
    if not how.startswith("shipped"):  # keep what was measured, for the model card
        graph = OUT_DIR / f"{cfg.app.name}-int8.json"
        graph.parent.mkdir(parents=True, exist_ok=True)
        g.save(graph)
    return {"app": cfg.app.name, "task": cfg.app.task, "classes": list(cfg.classes.names),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "weights": shown(w), "int8_source": how,
            "int8_graph": shown(graph), "limit": limit,
            "data": str(data) if data is not None else None,
            "seconds": round(time.time() - t0, 1), **res}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="patchcam eval", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("app", help="an app under apps/ (vww, person_detect, mask_detect)")
    p.add_argument("--json", type=Path, metavar="OUT",
                   help="where to write the report (default build/eval/<app>.json)")
    p.add_argument("--card", action="store_true",
                   help="then rewrite apps/<app>/weights/MODEL_CARD.md from the report, the "
                        "weights' meta, the planner and the Cortex-M7 build")
    p.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                   help="also run the OpenCV baseline on the same photos (default: yes)")
    p.add_argument("--data", type=Path, metavar="DIR",
                   help="score every photo of this folder instead of the app's test split: "
                        "class sub-folders (person/, no_person/ or non_person/ or "
                        "background/, ...) or a YOLO / VOC / COCO set; the report goes to "
                        "build/eval/<app>-data-<folder>.json")
    p.add_argument("--tflm", default="auto", metavar="MODEL",
                   help="vww: also score TensorFlow Lite Micro's person_detect.tflite on the "
                        "same photos: auto (when data/models/ or ../shared/models/ has it), "
                        "none, or a path")
    p.add_argument("--limit", type=int, metavar="N",
                   help="only the first N images of each set (a quick check, not a result)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    a = p.parse_args(argv)
    if a.card and a.data is not None:
        p.error("--card describes the app's own test split; drop --data or --card")
    try:
        doc = run(a.app, a.limit, a.baseline, a.threads, a.data, a.tflm,
                  failures_path(a.json) if a.json else None)
    except EvalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = a.json or OUT_DIR / f"{report_name(doc['app'], a.data)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(table(doc))
    print(f"wrote {out}")
    if a.card:
        from patchcam.training import modelcard
        try:
            card = modelcard.write(doc)
        except modelcard.CardError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
