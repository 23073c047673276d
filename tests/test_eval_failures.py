"""Honest measurement of the detect apps: AP50 by object size (COCO's ignore rules, checked on
hand-made boxes whose AP is worked out by hand) and the "where it fails" grid and counts."""

import math
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import tiny_detect_toml

from patchcam.app import config
from patchcam.app.detect import Detections
from patchcam.paths import REPO
from patchcam.training import detector as td
from patchcam.training import failures, metrics, modelcard
from patchcam.training.commands import evaluate as ev

SMALL = np.array([0, 0, 10, 10], np.float64)  # size 10: small for every app
LARGE = np.array([40, 40, 100, 100], np.float64)  # size 60: large for every app
BUCKETS = metrics.size_buckets("person_detect")
NONE = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))


def _dets(*rows: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(box, score) or (box, score, class) rows -> (boxes, scores, classes)."""
    if not rows:
        return NONE
    return (np.array([r[0] for r in rows], np.float64), np.array([r[1] for r in rows]),
            np.array([r[2] if len(r) > 2 else 0 for r in rows], np.int64))


def _gt(*boxes: np.ndarray, classes: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    return (np.array(boxes, np.float64).reshape(-1, 4),
            np.array(classes if classes is not None else [0] * len(boxes), np.int64))


# ---- AP50 by size ---------------------------------------------------------------------------
def test_size_buckets_are_per_app_and_half_open():
    assert BUCKETS == {"small": (0.0, 16.0), "medium": (16.0, 48.0), "large": (48.0, math.inf)}
    assert metrics.size_buckets("mask_detect")["medium"] == (16.0, 32.0)
    assert metrics.size_buckets("some_new_app") == BUCKETS  # the default edges
    np.testing.assert_allclose(metrics.box_size(np.array([[0, 0, 4, 9], [0, 0, 16, 16]])),
                               [6.0, 16.0])
    by = metrics.ap50_by_size([NONE], [_gt([0, 0, 16, 16])], BUCKETS)
    assert [by[b]["boxes"] for b in BUCKETS] == [0, 1, 0]  # 16 px is medium, not small


def test_small_found_and_large_missed():
    # one image: the small box found, the large one missed. small AP 1, large AP 0, medium
    # holds no box (no AP, nan mean) and the small detection is no false positive for large
    by = metrics.ap50_by_size([_dets((SMALL, 0.9))], [_gt(SMALL, LARGE)], BUCKETS)
    assert by["small"] == {"boxes": 1, "ap50": {0: 1.0}, "map": 1.0}
    assert by["large"] == {"boxes": 1, "ap50": {0: 0.0}, "map": 0.0}
    assert by["medium"]["boxes"] == 0 and by["medium"]["ap50"] == {}
    assert math.isnan(by["medium"]["map"])


def test_a_match_to_an_ignored_box_is_no_false_positive():
    # the large box found at 0.9 ranks first; for the small bucket it is ignored, not a false
    # positive (counted, it would halve precision: AP 0.5)
    preds = [_dets((LARGE, 0.9), (SMALL, 0.5))]
    assert metrics.ap50_in_range(preds, [_gt(SMALL, LARGE)], BUCKETS["small"]) == {0: 1.0}
    assert metrics.ap50_in_range(preds, [_gt(SMALL, LARGE)], BUCKETS["large"]) == {0: 1.0}


def test_an_unmatched_detection_counts_by_its_own_size():
    gts = [_gt(SMALL)]
    far_small = np.array([100, 100, 110, 110], np.float64)  # a small false box
    far_large = np.array([60, 0, 120, 60], np.float64)  # a large false box
    # a large false box at 0.9 is outside the small bucket: ignored, AP stays 1
    assert metrics.ap50_in_range([_dets((far_large, 0.9), (SMALL, 0.5))], gts,
                                 BUCKETS["small"]) == {0: 1.0}
    # a small false box at 0.9 counts: precision 1/2 at recall 1, AP 0.5
    assert metrics.ap50_in_range([_dets((far_small, 0.9), (SMALL, 0.5))], gts,
                                 BUCKETS["small"]) == {0: 0.5}


def test_a_detection_prefers_the_box_in_range_over_an_ignored_one():
    # medium box A (20 px) and small box B (14 px) overlap; the detection overlaps B more
    # (IoU 0.87) than A (0.56), but for the medium bucket it takes A, which counts
    a, b, d = [0, 0, 20, 20], [0, 0, 14, 14], [0, 0, 15, 15]
    gts = [_gt(a, b)]
    preds = [_dets((np.array(d, np.float64), 0.9))]
    assert metrics.match(np.array([d]), np.array([a, b]), np.array([False, True]))[0] == 0
    assert metrics.match(np.array([d]), np.array([a, b]))[0] == 1  # no ignores: best IoU
    assert metrics.ap50_in_range(preds, gts, BUCKETS["medium"]) == {0: 1.0}


def test_the_whole_range_agrees_with_ap50():
    # the duplicate case of test_train_detect: 0.9 TP, 0.8 duplicate FP, 0.7 TP, 0.6 TP
    gts = [_gt([0, 0, 10, 10], [20, 20, 30, 30]), _gt([5, 5, 15, 15])]
    preds = [_dets(([0, 0, 10, 10], 0.9), ([0, 0, 10, 10], 0.8), ([20, 20, 30, 30], 0.7)),
             _dets(([5, 5, 15, 15], 0.6))]
    whole = metrics.ap50_in_range(preds, gts, (0.0, math.inf))
    assert whole == metrics.ap50(preds, gts)
    assert whole[0] == pytest.approx(1 / 3 + 1 / 3 * 0.75 + 1 / 3 * 0.75)


def test_size_ap_is_per_class_and_a_class_without_boxes_in_range_is_left_out():
    gts = [_gt(SMALL, LARGE, classes=[0, 1])]
    preds = [_dets((SMALL, 0.9, 0), (LARGE, 0.8, 0))]  # the large one has the wrong class
    by = metrics.ap50_by_size(preds, gts, BUCKETS)
    assert by["small"]["ap50"] == {0: 1.0}  # the wrong-class large box: outside, ignored
    assert by["large"]["ap50"] == {1: 0.0}
    with pytest.raises(ValueError):
        metrics.ap50_in_range(preds * 2, gts, BUCKETS["small"])


# ---- where it fails ------------------------------------------------------------------------
def _case() -> tuple[list, list]:
    """Five images: 0 misses a small box (area 100), 1 misses a big one (1600) and finds
    another, 2 has a false box at 0.5, 3 one at 0.9, 4 is right."""
    big, other = np.array([10, 10, 50, 50.0]), np.array([100, 60, 140, 120.0])
    far = np.array([120, 0, 150, 30.0])
    gts = [_gt(SMALL), _gt(big, other), _gt(SMALL), _gt(SMALL), _gt(SMALL)]
    preds = [NONE, _dets((other, 0.8)), _dets((SMALL, 0.7), (far, 0.5)),
             _dets((far, 0.9), (SMALL, 0.6)), _dets((SMALL, 0.95))]
    return preds, gts


def test_failures_are_ranked_misses_by_area_false_boxes_by_score():
    preds, gts = _case()
    misses, false = failures.find_failures(preds, gts)
    assert [(f.image, f.caption) for f in misses] == [(1, "missed 1 of 2"),
                                                      (0, "missed 1 of 1")]
    assert [f.weight for f in misses] == [1600.0, 100.0]
    assert [(f.image, f.caption) for f in false] == [(3, "false box 0.90"),
                                                     (2, "false box 0.50")]
    c = failures.counts(preds, gts, BUCKETS)
    assert c == {"images": 5, "boxes": 6, "missed": 2, "images_with_misses": 2, "false": 2,
                 "images_with_false": 2, "two_classes": 0,
                 "missed_by_size": {"small": [1, 4], "medium": [1, 1], "large": [0, 1]}}


def test_a_wrong_class_is_a_miss_and_a_false_box():
    missed, false = failures.errors(_dets((SMALL, 0.8, 1)), _gt(SMALL, classes=[0]))
    assert missed.tolist() == [True] and false.tolist() == [True]


def test_a_box_of_each_class_on_one_object_is_counted_once():
    gt = _gt(SMALL, LARGE, classes=[0, 0])
    both = _dets((SMALL, 0.8, 0), (SMALL, 0.5, 1), (LARGE, 0.9, 0))
    assert failures.two_classes(both, gt) == 1
    assert failures.counts([both], [gt])["two_classes"] == 1
    assert failures.two_classes(_dets((SMALL, 0.8, 0), (SMALL, 0.7, 0)), gt) == 0  # one class
    assert failures.two_classes(_dets(), gt) == 0


def test_pick_shares_the_tiles_between_misses_and_false_boxes():
    def fs(n: int, kind: str) -> list:
        return [failures.Failure(i, kind, float(n - i), "") for i in range(n)]
    for nm, nf, want in [(10, 10, (6, 6)), (2, 20, (2, 10)), (20, 2, (10, 2)), (1, 1, (1, 1))]:
        chosen = failures.pick(fs(nm, "miss"), fs(nf, "false"))
        assert (sum(f.kind == "miss" for f in chosen),
                sum(f.kind == "false" for f in chosen)) == want
        assert [f.kind for f in chosen] == sorted((f.kind for f in chosen), reverse=True)


def _images(n: int, h: int = 128, w: int = 160, c: int = 3) -> list[np.ndarray]:
    """Image i is a flat grey of 20 * i + 10 (mod 256): a tile's pixels say which it shows."""
    return [np.full((h, w, c), (20 * i + 10) % 256, np.uint8) for i in range(n)]


def test_grid_png_tiles_in_order(tmp_path: Path):
    preds, gts = _case()
    misses, false = failures.find_failures(preds, gts)
    png = tmp_path / "f.png"
    assert failures.write_grid(png, _images(5), preds, gts, misses, false, ["person"]) == 4
    img = cv2.imread(str(png))
    th, tw = 128 * failures.ZOOM + failures.CAPTION_H, 160 * failures.ZOOM
    assert img.shape == (th, 4 * tw, 3)  # one row of 4 tiles
    order = [int(img[th // 2 + 30, t * tw + 10, 0]) for t in range(4)]  # a plain pixel each
    assert order == [20 * i + 10 for i in (1, 0, 3, 2)]  # misses by area, false by score
    # image 1's missed box (10..50) is green at 2x; the detection of its other box red
    assert tuple(img[20, 60]) == failures.GT_BGR
    assert tuple(img[120, 200]) == failures.DET_BGR
    assert img[th - failures.CAPTION_H:, :tw].max() > 200  # a caption was written


def test_grid_is_at_most_three_rows_and_handles_gray(tmp_path: Path):
    n = 20
    gts = [_gt([4, 4, 24, 24]) for _ in range(n)]
    preds = [_dets(([40, 40, 60, 60], 0.5 + i / 100)) for i in range(n)]  # miss + false
    misses, false = failures.find_failures(preds, gts)
    png = tmp_path / "g.png"
    assert failures.write_grid(png, _images(n, 32, 40, 1), preds, gts, misses, false) == 12
    assert cv2.imread(str(png)).shape == (3 * (64 + failures.CAPTION_H), 4 * 80, 3)


def test_nothing_to_show_writes_no_grid(tmp_path: Path):
    png = tmp_path / "none.png"
    png.write_bytes(b"stale")
    assert failures.write_grid(png, _images(1), [_dets((SMALL, 0.9))], [_gt(SMALL)],
                               [], []) == 0
    assert not png.exists()


# ---- evaluate.py ---------------------------------------------------------------------------
def test_int8_detections_are_cut_at_the_apps_threshold_as_the_board_does():
    cfg = config.load_app("person_detect")  # score 0.4: logit -0.405; scale 0.1 -> q >= -4
    out = types.SimpleNamespace(scale=0.1, zero_point=0, shape=(16, 20, 5))
    g = types.SimpleNamespace(tensors={"y": out}, output="y")
    d = Detections(np.array([[0, 0, 8, 8], [0, 0, 9, 9], [0, 0, 10, 10]], np.int32),
                   np.array([-5, -4, 10]), np.zeros(3, np.int64), np.arange(3))
    (boxes, probs, classes), = ev.at_app_threshold([d], g, cfg, 8)
    assert boxes.tolist() == [[0, 0, 9, 9], [0, 0, 10, 10]] and classes.tolist() == [0, 0]
    np.testing.assert_allclose(probs, 1 / (1 + np.exp([0.4, -1.0])))


def test_the_failure_grid_goes_beside_its_report_and_never_into_apps(tmp_path: Path):
    assert ev.failures_path(tmp_path / "r.json") == tmp_path / "r_failures.png"
    assert ev.failures_path(ev.OUT_DIR / f"{ev.report_name('mask_detect', None)}.json") == \
        REPO / "build" / "eval" / "mask_detect_failures.png"
    with pytest.raises(ev.EvalError, match="never committed"):
        ev.run("person_detect", failures_png=REPO / "apps" / "person_detect" / "weights" /
               "failures.png")


def _doc() -> dict:
    return {"app": "person_detect", "task": "detect", "classes": ["person"], "date": "d",
            "limit": None, "weights": "apps/person_detect/weights/float.pt",
            "int8_source": "shipped", "int8_graph": "apps/person_detect/generated/model.json",
            "metric": "AP50", "baseline": None,
            "sets": {"a/test": {"images": 3, "boxes": 4, "float": {"map": 0.5, "ap50": {}},
                                "int8": {"map": 0.49, "ap50": {}}}},
            "overall": {"images": 3, "boxes": 4, "float": {"map": 0.5, "ap50": {}},
                        "int8": {"map": 0.49, "ap50": {}}},
            "by_size": {"metric": "AP50 by size", "buckets": {
                "small": {"label": "small (< 16 px)", "px": [0, 16], "boxes": 1,
                          "float": {"map": 0.25, "ap50": {}}, "int8": {"map": 0.2, "ap50": {}}},
                "medium": {"label": "medium (16-48 px)", "px": [16, 48], "boxes": 0,
                           "float": {"map": None, "ap50": {}},
                           "int8": {"map": None, "ap50": {}}}}},
            "failures": {"score": 0.4, "iou": 0.5, "images": 3, "boxes": 4, "missed": 2,
                         "images_with_misses": 1, "false": 5, "images_with_false": 2,
                         "missed_by_size": {"small": [1, 1], "medium": [0, 0]}, "tiles": 3,
                         "png": "build/eval/person_detect_failures.png"}}


def test_the_text_report_has_the_size_table_and_the_failures():
    text = ev.table(_doc())
    assert "small (< 16 px)" in text and " 0.250   0.200" in text
    assert "medium (16-48 px)" in text and "      -       -" in text
    assert "missed 2 of 4 boxes (small 1/1, medium 0/0) in 1 of 3 images" in text
    assert "5 false boxes in 2 images" in text and "person_detect_failures.png" in text


def test_the_card_lists_sizes_and_failures_but_links_no_photo(monkeypatch):
    graph = REPO / "apps" / "person_detect" / "generated" / "model.json"
    if not graph.is_file():
        pytest.skip("needs apps/person_detect/generated")
    monkeypatch.setattr(modelcard, "flash_figure", lambda g, s, app: (1000, "1,000 bytes"))
    monkeypatch.setattr(modelcard, "plan", lambda g, cfg: (
        types.SimpleNamespace(macs=g.total_macs, arena_bytes=1), "a plan"))
    text = modelcard.render_block(_doc(), config.load_app("person_detect"), {},
                                  modelcard.int8_graph(_doc()))
    assert "### AP50 by object size" in text and "| small (< 16 px) | 1 | 0.250 | 0.200 |" in text
    assert "| medium (16-48 px) | 0 | - | - |" in text
    assert "### Where it fails" in text and "missed 2 of 4 ground-truth boxes" in text
    assert "small 1 / 1, medium 0 / 0" in text and "5 false boxes" in text
    assert "`make eval APP=person_detect`" in text and "build/eval/person_detect_failures.png" \
        in text
    assert "![" not in text and "](" not in text  # counts and a command, never the photos


def test_eval_detector_reports_sizes_and_draws_failures(tmp_path: Path):
    """A tiny untrained detector end to end: the report's new parts add up."""
    torch.set_num_threads(1)
    toml = tmp_path / "app.toml"
    toml.write_text(tiny_detect_toml(tmp_path, epochs=1))
    cfg = config.load_app(toml)
    model = cfg.build_model().eval()
    rng = np.random.default_rng(0)
    data = td.DetData(rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8),
                      [np.array([[2, 2, 10, 10], [4, 4, 30, 30]], np.float32)] * 4,
                      [np.zeros(2, np.int64)] * 4, ["t"] * 4)
    g = td.quantize_model(model, cfg, data, n=4)
    png = tmp_path / "f.png"
    doc = ev.eval_detector(cfg, model, g, {"t/test": (data, list)}, None, False, png)
    rows = doc["by_size"]["buckets"]
    assert list(rows) == ["small", "medium", "large"]
    assert [r["boxes"] for r in rows.values()] == [4, 4, 0]  # sizes 8 and 26 px
    assert rows["large"]["int8"]["map"] is None
    f = doc["failures"]
    assert f["boxes"] == 8 and f["images"] == 4 and 0 <= f["missed"] <= 8
    assert f["missed_by_size"]["small"][1] == 4
    assert png.is_file() == bool(f["tiles"]) and f["tiles"] <= 12
