"""Detector training: a few steps on a tiny generated YOLO set, checkpoint + resume; AP50."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import tiny_detect_toml

from patchcam.app import config, export
from patchcam.compiler import models, patchplan, quantize, reference
from patchcam.compiler.ir import Graph
from patchcam.paths import REPO
from patchcam.training import detector as td
from patchcam.training import imagesets, loop, metrics


def _tiny_yolo(root: Path, n: int = 12) -> None:
    """n 64x48 images, each with one bright rectangle labelled in YOLO txt (train/test)."""
    rng = np.random.default_rng(0)
    (root / "labels").mkdir(parents=True)
    (root / "classes.txt").write_text("pedestrian\n")
    for split in ("train", "test"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
    for i in range(n):
        split = "test" if i % 4 == 0 else "train"
        img = rng.integers(0, 60, (48, 64, 3), dtype=np.uint8)
        x0, y0 = int(rng.integers(0, 40)), int(rng.integers(0, 24))
        img[y0:y0 + 20, x0:x0 + 16] = 230
        cv2.imwrite(str(root / "images" / split / f"im{i}.png"), img)
        cx, cy = (x0 + 8) / 64, (y0 + 10) / 48
        (root / "labels" / split / f"im{i}.txt").write_text(
            f"0 {cx:.5f} {cy:.5f} {16 / 64:.5f} {20 / 48:.5f}\n")


@pytest.fixture
def tiny_app(tmp_path, monkeypatch):
    monkeypatch.setattr(imagesets, "CACHE", tmp_path / "cache")
    data = tmp_path / "tiny"
    _tiny_yolo(data)
    toml = tmp_path / "app.toml"
    toml.write_text(tiny_detect_toml(data, class_map={"pedestrian": "person"}))
    return config.load_app(toml)


def test_load_split_scales_boxes_to_the_input(tiny_app):
    train = td.load_split(tiny_app, "train")
    test = td.load_split(tiny_app, "test")
    assert train.images.shape[1:] == (32, 32, 3) and len(test) == 3
    val = td.load_split(tiny_app, "val")  # carved out of the set's train split by hash
    assert len(train) + len(val) + len(test) == 12
    b = train.boxes[0]
    assert b.shape == (1, 4) and np.all(b >= 0) and np.all(b <= 32)
    assert b[0, 2] - b[0, 0] == pytest.approx(16 * 32 / 64, abs=0.01)  # 64 px wide -> 32
    assert b[0, 3] - b[0, 1] == pytest.approx(20 * 32 / 48, abs=0.01)


def test_augment_keeps_boxes_in_frame():
    rng = np.random.default_rng(1)
    img = np.zeros((32, 40, 3), np.uint8)
    boxes = np.array([[0, 0, 10, 30], [30, 5, 40, 20]], np.float32)
    for _ in range(50):
        out, b, lb = td.augment_one(img, boxes, np.array([0, 0]), rng)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert len(b) == len(lb) <= 2
        assert np.all(b >= 0) and np.all(b[:, [0, 2]] <= 40) and np.all(b[:, [1, 3]] <= 32)
        assert np.all(b[:, 2] - b[:, 0] >= td.MIN_BOX_PX)


def test_augment_draws_views_at_the_output_size_from_a_larger_image():
    rng = np.random.default_rng(2)
    img = np.full((64, 80, 3), 90, np.uint8)  # stored at 2x a 32x40 input
    img[10:60, 30:50] = 230
    boxes = np.array([[30, 10, 50, 60]], np.float32)
    heights = []
    for _ in range(200):
        out, b, lb = td.augment_one(img, boxes, np.array([0]), rng, (32, 40))
        assert out.shape == (32, 40, 3) and len(b) == len(lb) <= 1
        assert np.all(b >= 0) and np.all(b[:, [0, 2]] <= 40) and np.all(b[:, [1, 3]] <= 32)
        heights += list((b[:, 3] - b[:, 1]) / 32)
    # whole-frame views shrink the person, close-ups make it fill (and overflow) the frame
    assert min(heights) < 0.4 and max(heights) > 0.95


def test_close_up_puts_the_box_top_near_the_frame_top():
    v = td.View(close_up=1.0, close_height=(1.5, 1.6), aspect=0.0)
    img = np.full((64, 80, 3), 90, np.uint8)
    boxes = np.array([[30, 20, 50, 60]], np.float32)
    for k in range(20):
        out, b, _ = td.augment_one(img, boxes, np.array([0]), np.random.default_rng(k),
                                   (32, 40), v)
        assert len(b) == 1 and b[0, 1] <= 0.05 * 32 + 1e-3 and b[0, 3] == 32  # cut at the bottom


def test_mosaic_places_four_views_in_their_quadrants():
    rng = np.random.default_rng(0)
    parts = []
    for k in range(4):
        img = np.full((64, 80, 3), 40 * k, np.uint8)
        parts.append((img, np.array([[20, 10, 60, 54]], np.float32), np.array([0])))
    v = td.View(close_up=0.0, frame_scale=(1.0, 1.0), shift=0.0, aspect=0.0, gray=0.0)
    out, b, lb = td.mosaic(parts, (32, 40), rng, v)
    assert out.shape == (32, 40, 3) and len(b) == len(lb) == 4
    centres = (b[:, :2] + b[:, 2:]) / 2
    quadrants = sorted((int(cy >= 16), int(cx >= 20)) for cx, cy in centres)
    assert quadrants == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_box_free_sources_give_only_their_negatives(tmp_path, monkeypatch):
    """A captioned / folder source is a negative source: its "person" photos (no boxes) are
    left out, its "no_person" photos are every-cell-background negatives."""
    monkeypatch.setattr(imagesets, "CACHE", tmp_path / "cache")
    folder = tmp_path / "mixed"
    (folder / "images").mkdir(parents=True)
    rows = ["file,label"]
    for i in range(8):
        cv2.imwrite(str(folder / "images" / f"p{i}.png"), np.full((20, 20, 3), i, np.uint8))
        rows.append(f"images/p{i}.png,{'person' if i % 2 else 'no_person'}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    toml = tmp_path / "app.toml"
    toml.write_text(tiny_detect_toml(None) + f'[[data]]\npath = "{folder}"\nformat = "folder"\n')
    cfg = config.load_app(toml)
    d = td.load_split(cfg, "train")
    assert len(d) > 0 and all(len(b) == 0 for b in d.boxes)
    assert all(len(lb) == 0 for lb in d.labels)
    kept = set(d.images[:, 0, 0, 0].tolist())
    assert kept and kept <= {0, 2, 4, 6}  # only the no_person photos
    big = td.load_split(cfg, "train", zoom=2)
    assert big.images.shape[1:3] == (64, 64) and len(big) == len(d)


def test_fit_writes_checkpoint_and_resumes(tiny_app, tmp_path):
    torch.set_num_threads(1)
    train = td.load_split(tiny_app, "train")
    o = td.FitOptions(epochs=1, lr=3e-3, batch=4, seed=0, max_steps=2)
    out = tmp_path / "run"
    model, hist = td.fit(tiny_app.build_model(), train, o, out)
    assert (out / "last.pt").is_file() and len(hist) == 1 and np.isfinite(hist[0]["loss"])
    o2 = td.FitOptions(epochs=2, lr=3e-3, batch=4, seed=0, max_steps=2)
    # a resumed run continues at epoch 2 from the saved weights and history
    model2, hist2 = td.fit(tiny_app.build_model(), train, o2, out, resume=True)
    assert [h["epoch"] for h in hist2] == [1, 2]
    m, doc = td.load_checkpoint(out / "last.pt")
    assert doc["epoch"] == 2
    for k, v in m.state_dict().items():
        assert torch.equal(v, model2.state_dict()[k])
    res = td.evaluate_float(m, td.load_split(tiny_app, "test"), tiny_app)
    assert 0.0 <= res["map"] <= 1.0 and res["boxes"] == 3


def test_resume_without_checkpoint_says_so(tiny_app, tmp_path):
    train = td.load_split(tiny_app, "train")
    with pytest.raises(loop.NothingToResume) as e:
        td.fit(tiny_app.build_model(), train, td.FitOptions(1, 1e-3, 4, max_steps=1),
               tmp_path / "none", resume=True)
    assert str(e.value) == f"nothing to resume in {tmp_path / 'none'}; start without --resume"


def test_resumed_run_equals_uninterrupted(tiny_app, tmp_path, monkeypatch):
    """The shared loop's promise for the detector: same batches, same weights."""
    torch.set_num_threads(1)
    train = td.load_split(tiny_app, "train")
    o = td.FitOptions(epochs=2, lr=3e-3, batch=4, seed=2, max_steps=2)

    def model():
        torch.manual_seed(0)
        return tiny_app.build_model()

    a, _ = td.fit(model(), train, o, tmp_path / "a")
    plain = td.DetectorTask.epoch_order

    def interrupted(self, epoch, rng):
        if epoch == 1:
            raise KeyboardInterrupt
        return plain(self, epoch, rng)

    monkeypatch.setattr(td.DetectorTask, "epoch_order", interrupted)
    with pytest.raises(KeyboardInterrupt):
        td.fit(model(), train, o, tmp_path / "b")
    monkeypatch.setattr(td.DetectorTask, "epoch_order", plain)
    b, hist = td.fit(model(), train, o, tmp_path / "b", resume=True)
    assert [h["epoch"] for h in hist] == [1, 2]
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])


# ---- AP50 ---------------------------------------------------------------------------------
GT = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 0])),
      (np.array([[5, 5, 15, 15]]), np.array([0]))]


def test_ap50_perfect_predictions_are_one():
    preds = [(b, np.ones(len(b)), c) for b, c in GT]
    assert metrics.ap50(preds, GT) == {0: 1.0}
    assert metrics.map50(preds, GT) == 1.0


def test_ap50_one_miss():
    # 2 of 3 boxes found, both at precision 1: AP = 2/3
    preds = [(GT[0][0], np.array([0.9, 0.8]), GT[0][1]),
             (np.zeros((0, 4)), np.zeros(0), np.zeros(0))]
    assert metrics.ap50(preds, GT)[0] == pytest.approx(2 / 3)


def test_ap50_duplicates_are_false_positives():
    # image 0: the first box twice (the copy ranks second: a false positive), then the second
    # box; image 1 found. Ranked: TP, FP?... scores decide: 0.9 TP, 0.8 dup FP, 0.7 TP, 0.6 TP
    preds = [(np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]]),
              np.array([0.9, 0.8, 0.7]), np.array([0, 0, 0])),
             (np.array([[5, 5, 15, 15]]), np.array([0.6]), np.array([0]))]
    # precision/recall: (1, 1/3), (1/2, 1/3), (2/3, 2/3), (3/4, 1); envelope: 1, 3/4, 3/4
    assert metrics.ap50(preds, GT)[0] == pytest.approx(1 / 3 + 1 / 3 * 0.75 + 1 / 3 * 0.75)


def test_ap50_low_iou_wrong_class_and_extra_classes():
    preds = [(np.array([[0, 0, 10, 4]]), np.array([0.9]), np.array([0])),  # IoU 0.4: FP
             (np.array([[5, 5, 15, 15]]), np.array([0.8]), np.array([1]))]  # wrong class
    gts = [(GT[0][0], GT[0][1]), (GT[1][0], np.array([1]))]
    per = metrics.ap50(preds, gts)
    assert per[0] == 0.0 and per[1] == 1.0
    assert metrics.map50(preds, gts) == 0.5
    with pytest.raises(ValueError):
        metrics.ap50(preds[:1], gts)


def test_export_int8_and_generated_files(tiny_app, tmp_path):
    torch.set_num_threads(1)
    train = td.load_split(tiny_app, "train")
    model, _ = td.fit(tiny_app.build_model(), train,
                      td.FitOptions(1, 3e-3, 4, max_steps=2), tmp_path / "run")
    g = td.quantize_model(model, tiny_app, train, n=8)
    test = td.load_split(tiny_app, "test")
    res = td.evaluate_int8(g, test, tiny_app, model.stride)
    assert 0.0 <= res["map"] <= 1.0
    out = export.write_generated(g, tiny_app, tmp_path / "generated")
    assert all((out / f).is_file() for f in ("model.json", "model.h", "model.c",
                                             "app_config.h"))
    td.save_weights(model, tmp_path / "float.pt", {"ap50": res})
    m, doc = td.load_checkpoint(tmp_path / "float.pt")
    assert doc["meta"]["ap50"]["images"] == 3
    for k, v in m.state_dict().items():
        assert torch.equal(v, model.state_dict()[k])


def test_qat_finetune_learns_around_int8_and_resumes(tiny_app, tmp_path):
    torch.set_num_threads(1)
    train = td.load_split(tiny_app, "train")
    model, _ = td.fit(tiny_app.build_model(), train,
                      td.FitOptions(1, 3e-3, 4, max_steps=2), tmp_path / "run")
    before = {k: v.clone() for k, v in td.calibrated(model, tiny_app, train, 8).state_dict()
              .items()}
    qo = td.FitOptions(epochs=1, lr=1e-3, batch=4, max_steps=2)
    fused = td.qat_finetune(model, tiny_app, train, qo, tmp_path / "run", calib_n=8)
    assert fused.qat and (tmp_path / "run" / "qat_last.pt").is_file()
    changed = [k for k, v in fused.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "QAT did not update any folded weight"
    g = quantize.to_int8(fused, "tiny", {})
    # the int8 graph computes what the fake-quantised network computed
    x = train.images[0]
    q = reference.run(g, (x.astype(np.int16) - 128).astype(np.int8))
    with torch.no_grad():
        y = fused(td.to_batch(x[None]))[0].permute(1, 2, 0).numpy()
    out = g.tensors[g.output]
    deq = (q.astype(np.float32) - out.zero_point) * out.scale
    assert np.abs(deq - y).max() <= 3 * out.scale
    # resuming the QAT phase continues after its saved epoch
    qo2 = td.FitOptions(epochs=2, lr=1e-3, batch=4, max_steps=2)
    td.qat_finetune(model, tiny_app, train, qo2, tmp_path / "run", calib_n=8, resume=True)
    doc = torch.load(tmp_path / "run" / "qat_last.pt", weights_only=True)
    assert doc["epoch"] == 2 and [h["epoch"] for h in doc["history"]] == [1, 2]


def test_generated_code_runs_the_schedule_that_fits_the_budget(tiny_app, tmp_path):
    g = td.quantize_model(tiny_app.build_model(), tiny_app, td.load_split(tiny_app, "train"),
                          n=4)
    out = export.write_generated(g, tiny_app, tmp_path / "gen")
    s = Graph.load(out / "model.json").meta["schedule"]
    assert s["arena_bytes"] <= 128 * 1024 and s["mode"] == "layer"  # tiny: layer fits
    tight = dataclasses.replace(tiny_app, board=dataclasses.replace(tiny_app.board,
                                                                    arena_kb=1))
    with pytest.raises(patchplan.PlanError):
        export.write_generated(g, tight, tmp_path / "gen2")


@pytest.mark.slow
def test_torchrun_data_parallel_two_processes(tiny_app, tmp_path):
    """Two CPU processes (gloo) train one epoch together; rank 0 writes the checkpoint and
    both ranks end with identical parameters (DDP averaged the gradients; BatchNorm's running
    statistics are buffers, each rank's own until DDP broadcasts rank 0's at a forward)."""
    script = tmp_path / "ddp.py"
    script.write_text(f"""
import os, sys, torch
from patchcam.app import config
from patchcam.training import imagesets
from patchcam.training import detector as td
imagesets.CACHE = __import__("pathlib").Path({str(tmp_path / "cache")!r})
torch.set_num_threads(1)
cfg = config.load_app({str(tiny_app.path)!r})
train = td.load_split(cfg, "train")
torch.manual_seed(0)
m, hist = td.fit(cfg.build_model(), train, td.FitOptions(1, 3e-3, 4, max_steps=2),
                 {str(tmp_path / "ddp")!r})
torch.save(m.state_dict(), {str(tmp_path)!r} + f"/rank{{os.environ['RANK']}}.pt")
""")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        "--master_port", "29517", str(script)], capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "ddp" / "last.pt").is_file()
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    torch.manual_seed(0)
    fresh = tiny_app.build_model()
    params = [k for k, _ in fresh.named_parameters()]
    assert all(torch.equal(a[k], b[k]) for k in params)
    assert any(not torch.equal(a[k], fresh.state_dict()[k]) for k in params)


def test_generated_code_moves_the_input_out_of_the_arena_when_only_that_fits(tmp_path):
    """vww's network needs 34,104 B with its input in the arena, over the app's 32 kB: the
    export then takes a schedule whose patch stage reads the input from its own buffer."""
    vww = config.load_app("vww")
    g = models.preset_graph("mcu-s-96")
    with pytest.raises(patchplan.PlanError):
        patchplan.search(g, vww.board.arena_kb * 1024)
    out = export.write_generated(g, vww, tmp_path / "gen")
    s = Graph.load(out / "model.json").meta["schedule"]
    assert s["input_outside_arena"] and s["arena_bytes"] <= vww.board.arena_kb * 1024
    assert f"#define MODEL_ARENA_BYTES {s['arena_bytes']}" in (out / "model.h").read_text()


def test_detector_training_starts_from_a_pretrained_backbone(tiny_app, tmp_path, capsys):
    from patchcam.training.commands import train_detector
    torch.manual_seed(7)
    donor = tiny_app.build_model()
    torch.save(donor.backbone.state_dict(), tmp_path / "backbone.pt")
    out = tmp_path / "run"
    assert train_detector.main([str(tiny_app.path), "--epochs", "1", "--max-steps", "1",
                                "--lr", "1e-9", "--eval-every", "0", "--float-only",
                                "--threads", "1", "--out", str(out),
                                "--backbone", str(tmp_path / "backbone.pt")]) == 0
    assert "backbone from" in capsys.readouterr().out
    trained = torch.load(out / "last.pt", weights_only=True)["state"]
    # one step at lr 1e-9 leaves the donor's backbone weights (BN statistics move)
    for k, v in donor.backbone.state_dict().items():
        if k.endswith("weight"):
            assert torch.allclose(trained[f"backbone.{k}"], v, atol=1e-6), k


def test_an_app_toml_outside_the_checkout_exports_and_evaluates_beside_itself(tiny_app,
                                                                             tmp_path, capsys):
    """train --export and eval on an app.toml given by path keep everything in its folder
    (weights/ and generated/ beside it, not apps/<name>/), and say so with paths as given."""
    from patchcam.training.commands import evaluate, train_detector
    folder = tiny_app.path.parent
    with pytest.raises(evaluate.EvalError, match=f"{folder}/weights/float.pt: no trained"):
        evaluate.load_float(tiny_app)
    assert train_detector.main([str(tiny_app.path), "--epochs", "1", "--max-steps", "1",
                                "--eval-every", "0", "--qat-epochs", "0", "--calib", "4",
                                "--threads", "1", "--out", str(tmp_path / "run"),
                                "--export"]) == 0
    assert (folder / "weights" / "float.pt").is_file()
    assert (folder / "generated" / "model.json").is_file()
    assert not (REPO / "apps" / tiny_app.app.name).exists()
    report = tmp_path / "eval.json"
    assert evaluate.main([str(tiny_app.path), "--no-baseline", "--threads", "1",
                          "--json", str(report)]) == 0
    doc = json.loads(report.read_text())
    assert doc["weights"] == str(folder / "weights" / "float.pt")
    assert doc["int8_graph"] == str(folder / "generated" / "model.json")
    capsys.readouterr()


def test_a_held_out_source_is_all_test(tiny_app):
    """held_out = true: no image of the source is trained on; all of them are test images,
    for the detector's splits and the classifier's sources alike."""
    from dataclasses import replace as dc_replace

    from patchcam.training import classifier as tc
    held = dc_replace(tiny_app, data=[dc_replace(tiny_app.data[0], held_out=True)])
    assert len(td.load_split(held, "test")) == 12
    for split in ("train", "val"):
        with pytest.raises(Exception, match="no .* images"):
            td.load_split(held, split)
    cls = dc_replace(held, data=[dc_replace(held.data[0], image_label="person")])
    assert {s.split for s in tc.read_sources(cls)} == {"test"}


# ---- the training command's bad input and Ctrl-C --------------------------------------------
BAD_SOURCE = """
[[data]]
path = "{data}"
format = "yolo"
splits = ["test"]
class_map = {{ pedestrian = "person" }}
"""


def test_eval_sets_fall_through_only_an_empty_split(tiny_app, tmp_path):
    """A source without a test split is scored on its val split; one without either is left
    out; one whose test split cannot be read is an error naming the file and line."""
    from patchcam.training import readers
    from patchcam.training.commands.train_detector import eval_sets
    root = Path(tiny_app.data[0].path)
    assert list(eval_sets(tiny_app)) == ["tiny/test"]
    for d in ("images", "labels"):  # the set's own test split becomes its val split
        (root / d / "test").rename(root / d / "val")
    assert list(eval_sets(tiny_app)) == ["tiny/val"]
    src = dataclasses.replace(tiny_app.data[0], splits=["train"])
    assert eval_sets(dataclasses.replace(tiny_app, data=[src])) == {}
    bad = next((root / "labels" / "val").glob("*.txt"))
    bad.write_text("0 0.5 0.5 0.2\n")  # four numbers, not five
    with pytest.raises(readers.LabelError, match=rf"{bad}:1: expected 'class cx cy w h'"):
        eval_sets(tiny_app)


def test_train_stops_on_an_unreadable_test_split(tiny_app, tmp_path, capsys):
    """A source used only for testing with a malformed label: one `error:` line and exit 2,
    not a run whose figures silently leave that source out."""
    from patchcam.training.commands import train_detector
    bad = tmp_path / "bad"
    _tiny_yolo(bad, n=8)
    label = bad / "labels" / "test" / "im0.txt"
    label.write_text("0 0.5 0.5 0.2 zero\n")
    toml = tmp_path / "with_bad.toml"
    toml.write_text(tiny_app.path.read_text() + BAD_SOURCE.format(data=bad))
    rc = train_detector.main([str(toml), "--epochs", "0", "--float-only", "--threads", "1",
                              "--out", str(tmp_path / "run")])
    errors = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert rc == 2 and len(errors) == 1 and errors[0].startswith("error: ")
    assert f"{label}:1: not numbers" in errors[0]


def _interrupt_at_batch(monkeypatch, n: int) -> None:
    """Ctrl-C while the n-th batch of the run (1-based, over all epochs) is computed."""
    plain, calls = td.DetectorTask.batch_loss, []

    def batch_loss(*a, **k):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return plain(*a, **k)
    monkeypatch.setattr(td.DetectorTask, "batch_loss", batch_loss)


def _train(args: list[str]) -> int:
    """`patchcam train ARGS`; a KeyboardInterrupt it lets out fails the test (instead of
    stopping pytest)."""
    from patchcam.training.commands import train
    try:
        return train.main(args)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped `patchcam train`")


def test_ctrl_c_ends_training_with_one_line_and_130(tiny_app, tmp_path, monkeypatch, capsys):
    """Before the first checkpoint: where it stopped and "no checkpoint yet"; after one: the
    epoch it holds and the command that resumes, which then finishes the run."""
    torch.set_num_threads(1)
    out = tmp_path / "run"
    args = [str(tiny_app.path), "--epochs", "2", "--max-steps", "2", "--eval-every", "0",
            "--float-only", "--threads", "1", "--out", str(out)]
    _interrupt_at_batch(monkeypatch, 1)
    assert _train(args) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("interrupted at epoch 1 batch 1; no checkpoint yet; start again "
                          "with `patchcam train ")
    assert "--resume" not in err and not (out / "last.pt").exists()

    _interrupt_at_batch(monkeypatch, 4)  # epoch 2, batch 2
    assert _train(args) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted at epoch 2 batch 2; checkpoint written after epoch 1 ")
    resume = line.split("resume with `")[1].rstrip("`").split()
    assert resume[:3] == ["patchcam", "train", str(tiny_app.path)] and resume[-1] == "--resume"

    monkeypatch.undo()
    monkeypatch.setattr(imagesets, "CACHE", tmp_path / "cache")
    assert _train(resume[2:]) == 0
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 2


def test_ctrl_c_hint_for_a_plain_run():
    from patchcam.training.commands.train import how_to_go_on
    assert how_to_go_on("vww", [], True) == "resume with `make train APP=vww RESUME=1`"
    assert how_to_go_on("vww", ["--resume"], False) == "start again with `make train APP=vww`"


def test_eval_scores_a_held_out_source_in_full(tiny_app):
    """`make eval` takes every photo of a held_out source as test, none as train."""
    from dataclasses import replace as dc_replace

    from patchcam.training.commands import evaluate
    src = dc_replace(tiny_app.data[0], held_out=True, image_label="person")
    cfg = dc_replace(tiny_app, data=[src])
    name = cfg.data_path(src).name
    assert len(evaluate.vww_samples(cfg, {}, "test")[name]) == 12
    assert evaluate.vww_samples(cfg, {}, "train") == {}


def test_grown_boxes_become_the_whole_and_stay_in_the_image():
    """data[].grow: a face box grown into a head-and-shoulders person box, clipped."""
    from patchcam.training.detector import grown
    faces = np.array([[40, 20, 50, 32], [0, 100, 10, 112]], np.float32)  # 10x12 faces
    got = grown(faces, [1.0, 0.5, 1.0, 6.0], (128, 160))
    np.testing.assert_allclose(got, [[30, 14, 60, 104], [0, 94, 20, 128]])
    assert grown(np.zeros((0, 4), np.float32), [1, 1, 1, 1], (128, 160)).shape == (0, 4)
