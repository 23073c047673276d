"""Fine-tune a model someone else trained: TFLite Micro's person_detect.tflite on our photos.

The model is TFLite Micro's person-detection example (MobileNetV1 width 0.25, 96x96 grey,
trained by Google on COCO-based Visual Wake Words). It is imported into the int8 IR, turned
back into a float PyTorch network (`patchcam.compiler.dequantize`), fine-tuned on the vww app's
photos in grey (float, then quantisation-aware), and measured the way the vww student is
measured (`leave_sources_out.py`): whole source folders held out of training and tested on,
plus the other sources' test split. The imported model as it is (int8, integer reference)
is measured on the same photos first, so the table shows what fine-tuning adds.

    .venv/bin/patchcam finetune --epochs 4 --qat-epochs 2

The model file is read from data/models/ or ../shared/models/ (or --model); on a machine
with internet, `--model download` fetches it from the tflite-micro repository (pinned
commit, SHA-256 checked). Results: <out>/results.json and a markdown table on stdout. Ctrl-C
stops it with one line saying where, what checkpoint there is and the command that goes on
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
from torch import nn

from patchcam import download as dl
from patchcam.app.config import AppConfigError, load_app
from patchcam.compiler import dequantize, quantize
from patchcam.compiler.tflite_import import TFLiteImportError, import_tflite
from patchcam.paths import REPO
from patchcam.training import classifier as tc
from patchcam.training import interrupt, loop, readers
from patchcam.training.commands.leave_sources_out import HOLD_OUT, balanced
from patchcam.training.teacher import sha256

FILE = "person_detect.tflite"
COMMIT = "90b983c2b3f1480642e040bbd2ddb37b998f3424"
URL = (f"https://raw.githubusercontent.com/tensorflow/tflite-micro/{COMMIT}/tensorflow/lite/"
       f"micro/models/{FILE}")
SHA256 = "808cfdfc0cf3a6fa6f6fa26bfa379ea97c16d5db7334637766e39c3408502e9d"
SEARCH = (REPO / "data" / "models", REPO.parent / "shared" / "models")


def locate(spec: str) -> Path:
    """The model file, SHA-256 checked: a path, or auto (data/models, ../shared/models), or
    download (fetched once into data/models)."""
    if spec not in ("auto", "download"):
        path = Path(spec)
    else:
        path = next((d / FILE for d in SEARCH if (d / FILE).is_file()), SEARCH[0] / FILE)
        if not path.is_file() and spec == "download":
            dl.download(URL, path, sha256=SHA256)
    if not path.is_file():
        raise FileNotFoundError(f"{FILE} not found in {', '.join(map(str, SEARCH))}: pass "
                                "--model PATH, or --model download (needs internet)")
    if sha256(path) != SHA256:
        raise FileNotFoundError(f"{path}: SHA-256 is not that of TFLite Micro's {FILE} "
                                f"(commit {COMMIT[:10]}); delete it or pass the right file")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="patchcam finetune", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="auto", help="the .tflite (auto, download or a path)")
    p.add_argument("--hold-out", nargs="+", default=list(HOLD_OUT), metavar="FOLDER",
                   help="vww source folders held out (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=4, help="float fine-tuning epochs (4)")
    p.add_argument("--qat-epochs", type=int, default=2, help="QAT epochs (2)")
    p.add_argument("--lr", type=float, default=1e-3,
                   help="peak learning rate (default 1e-3: below the from-scratch recipe's, "
                        "the weights are already good)")
    p.add_argument("--views", type=int, default=4, help="augmented views per image (4)")
    p.add_argument("--max-steps", type=int, help="at most this many batches per epoch")
    p.add_argument("--out", type=Path, default=REPO / "build" / "train" / "vww-imported")
    p.add_argument("--resume", action="store_true",
                   help="continue from <out>/last.pt (and qat_last.pt)")
    p.add_argument("--threads", type=int, default=2)
    argv = sys.argv[1:] if argv is None else argv
    a = p.parse_args(argv)
    return interrupt.guard(lambda: run(a), lambda: [a.out / "last.pt"],
                           interrupt.rerun(["patchcam", "finetune"], argv))


def run(a: argparse.Namespace) -> int:
    torch.set_num_threads(a.threads)
    try:
        if a.resume:
            loop.require_checkpoint(a.out / "last.pt")
        g = import_tflite(locate(a.model))
        cfg = load_app("vww")
        h, w, c = g.tensors[g.input].shape
        cfg = replace(cfg, input=replace(cfg.input, height=h, width=w,
                                         color="gray" if c == 1 else "rgb"))
        kept = tc.read_sources(cfg, exclude=set(a.hold_out))
        held = [s for s in tc.read_sources(cfg) if s.source in a.hold_out]
    except (FileNotFoundError, TFLiteImportError, AppConfigError, loop.NothingToResume,
            readers.DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tr, va, te = (tc.split(kept, s) for s in ("train", "val", "test"))
    print(f"{g.name}: {h}x{w}x{c}; hold out {', '.join(a.hold_out)} ({len(held)} images); "
          f"train {len(tr)}, val {len(va)}, in-distribution test {len(te)}", flush=True)
    sets = {"held_out": held, "in_distribution_test": te}
    clean = {k: tc.load_clean(v, cfg, desc=f"imported-{k}") for k, v in sets.items()}

    def measure(name: str, pred) -> dict:
        out = {}
        for k, (x, y, src) in clean.items():
            pr = pred(x)
            out[k] = {"accuracy": round(tc.accuracy(pr, y), 4),
                      "per_source": tc.per_source(pr, y, src)}
        out["held_out_balanced"] = balanced(out["held_out"]["per_source"])
        print(f"{name}: held-out {out['held_out']['accuracy']:.4f} (balanced "
              f"{out['held_out_balanced']}), in-distribution test "
              f"{out['in_distribution_test']['accuracy']:.4f}", flush=True)
        return out

    results: dict = {"model": g.name, "held_out": a.hold_out, "epochs": a.epochs,
                     "qat_epochs": a.qat_epochs, "rows": {}}
    results["rows"]["as imported (int8)"] = measure("as imported (int8)",
                                                    lambda x: tc.int8_predict(g, x))
    net = dequantize.to_torch(g)
    data = tc.load_views(tr, cfg, a.views, cfg.train.seed, desc="imported-train")
    val = tc.load_clean(va, cfg, desc="imported-val")[:2]
    o = tc.FitOptions(epochs=a.epochs, lr=a.lr, batch=cfg.train.batch, seed=cfg.train.seed,
                      max_steps=a.max_steps)
    a.out.mkdir(parents=True, exist_ok=True)

    def float_doc(epoch: int, history: list[dict]) -> dict:
        return {"format": "patchcam-imported-finetune", "state": net.state_dict(),
                "epoch": epoch, "history": history}

    # QAT resumes only on top of the float model it started from
    float_done = a.resume and loop.finished(a.out / "last.pt", o.epochs)
    hist = loop.train(net, tc.ClassifierTask(data, o, val), o, a.out / "last.pt", float_doc,
                      lambda d: net.load_state_dict(d["state"]), a.resume, "float")
    net.eval()
    results["rows"]["fine-tuned (float)"] = measure(
        "fine-tuned (float)", lambda x: tc.predict(net, x).argmax(1))
    fused = tc.calibrated(net, data, seed=cfg.train.seed)
    if a.qat_epochs > 0:
        fused.qat = True
        q = replace(o, epochs=a.qat_epochs, lr=cfg.train.qat_lr)

        def qat_doc(epoch: int, history: list[dict]) -> dict:
            return {"format": "patchcam-imported-qat", "state": fused.state_dict(),
                    "ranges": fused.ranges, "epoch": epoch, "history": history}

        def qat_restore(d: dict) -> None:
            fused.load_state_dict(d["state"])
            fused.ranges = {k: list(v) for k, v in d["ranges"].items()}

        # the folded network ends at the last conv's (N, 2, 1, 1): flatten to logits
        hist += loop.train(nn.Sequential(fused, nn.Flatten()), tc.ClassifierTask(data, q, val),
                           q, a.out / "qat_last.pt", qat_doc, qat_restore,
                           float_done and (a.out / "qat_last.pt").is_file(), "qat")
        fused.eval()
    g2 = quantize.to_int8(fused, f"{g.name}-finetuned")
    g2.save(a.out / "model.json")
    results["rows"]["fine-tuned (int8)"] = measure("fine-tuned (int8)",
                                                   lambda x: tc.int8_predict(g2, x))
    results["seconds_per_epoch"] = float(np.median([r["seconds"] for r in hist]))
    results["history"] = hist
    (a.out / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    print(f"wrote {a.out / 'results.json'} and the int8 model {a.out / 'model.json'}")
    return 0


def table(results: dict) -> str:
    cols = results["held_out"]
    lines = ["| model | " + " | ".join(cols) + " | held-out (all) | held-out (balanced) | "
             "in-distribution test |", "|---" * (len(cols) + 4) + "|"]
    for name, r in results["rows"].items():
        per = r["held_out"]["per_source"]
        lines.append(f"| {name} | " + " | ".join(f"{per[c]['accuracy']:.3f}" if c in per
                                                  else "-" for c in cols)
                     + f" | {r['held_out']['accuracy']:.3f} | {r['held_out_balanced']:.3f} | "
                     f"{r['in_distribution_test']['accuracy']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
