"""make eval (training/evaluate.py), the OpenCV baselines and the model card generator."""

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from patchcam.app import config
from patchcam.app.detect import iou_matrix
from patchcam.training import baselines, modelcard, readers

ROOT = Path(__file__).resolve().parents[1]
PENN = ROOT.parent / "shared" / "datasets" / "penn_fudan_ped"


def _evaluate():
    from patchcam.training.commands import evaluate
    return evaluate


ev = _evaluate()


def _need(make):
    try:
        return make()
    except baselines.BaselineUnavailable as e:
        pytest.skip(str(e))


# ---- baselines ------------------------------------------------------------------------------
def test_to_frame_scales_boxes_into_the_app_input():
    dets = (np.array([[64, 48, 320, 240]], np.float32), np.ones(1, np.float32),
            np.zeros(1, np.int64))
    b, s, c = baselines.to_frame(dets, (640, 480), (160, 128))
    np.testing.assert_allclose(b, [[16, 12.8, 80, 64]], rtol=1e-6)
    assert s is dets[1] and c is dets[2]


def test_haar_finds_the_astronauts_face_in_her_pixels_and_at_half_size():
    haar = _need(baselines.HaarMask)
    img = skimage.data.astronaut()  # 512x512; her face spans about x 170-275, y 60-165
    face = np.array([[175, 65, 270, 160]], np.float32)
    boxes, conf = haar.faces(img)
    assert len(boxes) and iou_matrix(boxes[np.argmax(conf)][None], face)[0, 0] > 0.6
    small = cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA)
    b2, c2 = haar.faces(small)
    # the cascade enlarges small photos itself: the box must come back in the small photo's
    # pixels, i.e. half the first one
    assert iou_matrix(b2[np.argmax(c2)][None] * 2, face)[0, 0] > 0.6
    b, s, c = haar(img)  # every face twice: once per class, shares summing to its confidence
    assert sorted(set(c.tolist())) == [0, 1] and len(b) == 2 * len(boxes)
    np.testing.assert_allclose(s[:len(boxes)] + s[len(boxes):], conf, rtol=1e-5)


def test_mask_rule_threshold_separates_labelled_ratios():
    t = baselines.HaarMask.fit_threshold(np.array([0.1, 0.2, 0.3, 0.8, 0.9, 1.2]),
                                         np.array([0, 0, 0, 1, 1, 1]))
    assert 0.3 < t <= 0.8


def test_skin_ratio_sees_a_covered_lower_face():
    skin = np.zeros((40, 40, 3), np.uint8)
    skin[:] = (220, 170, 140)  # a light skin tone, inside the YCrCb skin box
    box = np.array([0, 0, 40, 40], np.float32)
    assert baselines.skin_ratio(skin, box) == pytest.approx(1.0)
    masked = skin.copy()
    masked[20:] = (90, 140, 220)  # a blue surgical mask over the lower half
    assert baselines.skin_ratio(masked, box) < 0.1


@pytest.mark.skipif(not PENN.is_dir(), reason="needs ../shared/datasets/penn_fudan_ped")
def test_hog_finds_pedestrians_in_the_app_input_frame():
    hog = _need(baselines.HogPeople)
    test = readers.read_dataset(PENN, "yolo").split("test")[:6]
    hits = 0
    for s in test:
        img = cv2.cvtColor(cv2.imread(str(s.image_path)), cv2.COLOR_BGR2RGB)
        x = cv2.resize(img, (160, 128), interpolation=cv2.INTER_AREA)
        b, sc, _ = hog(x)
        gt = readers.scaled_boxes(s, (128, 160))
        assert np.all(b >= 0) and np.all(b[:, [0, 2]] <= 160) and np.all(b[:, [1, 3]] <= 128)
        hits += bool(len(b)) and iou_matrix(b[np.argmax(sc)][None], gt).max() >= 0.5
    assert hits >= 3, f"HOG's best box matched a pedestrian in only {hits} of {len(test)}"


# ---- evaluate.py: errors --------------------------------------------------------------------
def test_missing_weights_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(ev, "weights_path", lambda cfg: ROOT / "build" / "no-such" / "f.pt")
    assert ev.main(["person_detect", "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "make train APP=person_detect" in err
    assert not (tmp_path / "r.json").exists()


def test_missing_dataset_is_one_line_and_exit_2(monkeypatch, capsys):
    cfg = config.load_app("person_detect")
    gone = dataclasses.replace(cfg, data=[dataclasses.replace(cfg.data[0],
                                                              path="data/no_such_set")])
    monkeypatch.setattr(ev, "load_app", lambda app: gone)
    monkeypatch.setattr(ev, "load_float", lambda cfg: (None, {}))
    assert ev.main(["person_detect"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no_such_set" in err and "not found" in err


def test_unknown_app_is_one_line_and_exit_2(capsys):
    assert ev.main(["no_such_app"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no such app config" in err


def test_help_teaches():
    with pytest.raises(SystemExit):
        ev.main(["--help"])


# ---- evaluate.py: the report ----------------------------------------------------------------
@pytest.mark.skipif(not (ROOT / "apps/person_detect/weights/float.pt").is_file()
                    or not PENN.is_dir(), reason="needs person_detect weights and datasets")
def test_report_structure_on_a_few_images(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert ev.main(["person_detect", "--limit", "2", "--no-baseline", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["app"] == "person_detect" and doc["task"] == "detect" and doc["limit"] == 2
    assert doc["sets"] and all(r["images"] <= 2 for r in doc["sets"].values())
    for r in [*doc["sets"].values(), doc["overall"]]:
        for k in ("float", "int8"):
            assert 0 <= r[k]["map"] <= 1 and set(r[k]["ap50"]) <= {"person"}
        assert "baseline" not in r
    assert doc["overall"]["images"] == sum(r["images"] for r in doc["sets"].values())
    assert (ROOT / doc["int8_graph"]).is_file() and doc["baseline"] is None
    text = capsys.readouterr().out
    assert "all (pooled)" in text and "int8 vs float" in text


# ---- model card -----------------------------------------------------------------------------
def _block(n: int) -> str:
    return f"{modelcard.GENERATED_BEGIN.format(app='x')}\nfigures {n}\n{modelcard.GENERATED_END}\n"


def test_card_keeps_hand_written_parts_across_regeneration():
    first = modelcard.merge(None, _block(1), "x: model card", "- a limit")
    assert first.startswith("# x: model card\n") and "figures 1" in first
    assert "## Known limits\n\n- a limit" in first
    edited = first.replace("- a limit", "- a limit\n- written by hand") + "\nNotes by hand.\n"
    edited = edited.replace("# x: model card\n", "# x: model card\n\nIntro by hand.\n")
    second = modelcard.merge(edited, _block(2), "ignored", "- ignored")
    assert "figures 2" in second and "figures 1" not in second
    assert second == edited.replace("figures 1", "figures 2")
    assert modelcard.merge(second, _block(2), "t", "l") == second  # idempotent


def test_card_without_markers_gets_the_block_appended():
    hand = "# vww\n\nWritten by hand, no markers.\n"
    out = modelcard.merge(hand, _block(3), "t", "l")
    assert out.startswith(hand) and out.rstrip().endswith(modelcard.GENERATED_END)
    assert modelcard.merge(out, _block(4), "t", "l") == out.replace("figures 3", "figures 4")


def test_card_block_renders_from_a_report(monkeypatch):
    graph = ROOT / "apps" / "person_detect" / "generated" / "model.json"
    if not graph.is_file():
        pytest.skip("needs apps/person_detect/generated")
    monkeypatch.setattr(modelcard, "flash_figure", lambda g, s, app: (1000, "1,000 bytes"))
    doc = {"app": "person_detect", "task": "detect", "classes": ["person"], "date": "d",
           "limit": None, "weights": "apps/person_detect/weights/float.pt",
           "int8_source": "shipped", "int8_graph": str(graph.relative_to(ROOT)),
           "metric": "AP50", "baseline": {"name": "HOG", "input": "x3"},
           "sets": {"a/test": {"images": 3, "boxes": 4, "float": {"map": 0.5, "ap50": {}},
                               "int8": {"map": 0.49, "ap50": {}},
                               "baseline": {"map": 0.2, "ap50": {}}}},
           "overall": {"images": 3, "boxes": 4, "float": {"map": 0.5, "ap50": {}},
                       "int8": {"map": 0.49, "ap50": {}}, "baseline": {"map": 0.2, "ap50": {}}}}
    text = modelcard.render_block(doc, config.load_app("person_detect"),
                                  {"recipe": {"epochs": 3}}, modelcard.int8_graph(doc))
    assert text.startswith("<!-- generated: begin") and text.endswith(
        modelcard.GENERATED_END + "\n")
    assert "| a/test | 3 | 0.500 | 0.490 | 0.200 |" in text
    assert "-1.0 points" in text and "+29.0 points" in text and "1,000 bytes" in text
