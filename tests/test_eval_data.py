"""`make eval APP=... DATA=<folder>`: any folder of photos scored, all of it, or refused with
one line; the app's own report and model card are left alone."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from patchcam.app.config import load_app
from patchcam.training import readers, userdata
from patchcam.training.commands import evaluate as ev

PEOPLE = {"astronaut": skimage.data.astronaut, "camera": skimage.data.camera}
NO_PEOPLE = {"coffee": skimage.data.coffee, "chelsea": skimage.data.chelsea,
             "rocket": skimage.data.rocket}


def _write(folder: Path, name: str, img: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    path = folder / f"{name}.png"
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """person/ and non_person/ class folders, under a path with a space."""
    root = tmp_path / "my photos"
    for name, f in PEOPLE.items():
        _write(root / "person", name, f())
    for name, f in NO_PEOPLE.items():
        _write(root / "non_person", name, f())
    return root


def test_class_names_map_through_common_spellings():
    cfg = load_app("vww")
    m = userdata.class_mapping(cfg, {"Person", "non-person", "background", "cats"})
    assert m == {"Person": "person", "non-person": "no_person", "background": "no_person"}
    mask = load_app("mask_detect")
    assert userdata.class_mapping(mask, {"with_mask", "without_mask"}) == \
        {"with_mask": "mask", "without_mask": "no_mask"}


def test_vww_scores_every_photo_of_a_folder(photo_folder, tmp_path, capsys):
    out = tmp_path / "report.json"
    own = ev.OUT_DIR / "vww.json"
    before = own.read_bytes() if own.is_file() else None
    assert ev.main(["vww", "--data", str(photo_folder), "--no-baseline", "--json",
                    str(out)]) == 0
    doc = json.loads(out.read_text())
    # every image counts, not a hashed test split of the folder
    assert doc["overall"]["images"] == 5 and doc["overall"]["person"] == 2
    assert list(doc["sets"]) == ["my_photos"] and doc["data"] == str(photo_folder)
    for k in ("float", "int8"):
        assert 0 <= doc["overall"][k] <= 1
        r = doc["recall"][k]
        assert set(r) == {"person", "no_person"}
        # accuracy is the image-weighted mean of the two recalls
        assert doc["overall"][k] == pytest.approx((2 * r["person"] + 3 * r["no_person"]) / 5,
                                                  abs=1e-3)
    text = capsys.readouterr().out
    assert "recall person" in text and "recall no_person" in text
    assert (own.read_bytes() if own.is_file() else None) == before


def test_default_report_name_does_not_overwrite_the_apps_own(photo_folder, monkeypatch,
                                                             tmp_path):
    monkeypatch.setattr(ev, "OUT_DIR", tmp_path / "eval")
    assert ev.main(["vww", "--data", str(photo_folder), "--no-baseline", "--limit", "1"]) == 0
    assert [p.name for p in (tmp_path / "eval").iterdir()] == ["vww-data-my_photos.json"]


def test_unknown_class_folder_is_refused_in_one_line(photo_folder, capsys):
    _write(photo_folder / "cats", "chelsea", skimage.data.chelsea())
    assert ev.main(["vww", "--data", str(photo_folder), "--no-baseline"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "cats" in err and "rename" in err


def test_unreadable_data_is_refused_in_one_line(tmp_path, capsys):
    assert ev.main(["vww", "--data", str(tmp_path / "nowhere"), "--no-baseline"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "nowhere" in err
    with pytest.raises(SystemExit):
        ev.main(["vww", "--data", str(tmp_path), "--card"])


def test_a_detector_needs_boxes_not_class_folders(photo_folder, capsys):
    assert ev.main(["person_detect", "--data", str(photo_folder), "--no-baseline"]) == 2
    assert "needs boxes" in capsys.readouterr().err


def test_a_detection_set_scores_a_detector_and_labels_a_classifier(tmp_path):
    """A YOLO set: AP50 for person_detect; for vww a photo with a person box is `person`."""
    root = tmp_path / "boxes"
    _write(root / "images", "astronaut", skimage.data.astronaut())
    _write(root / "images", "coffee", skimage.data.coffee())
    (root / "labels").mkdir()
    (root / "labels" / "astronaut.txt").write_text("0 0.5 0.55 0.8 0.9\n")
    (root / "labels" / "coffee.txt").write_text("")
    (root / "classes.txt").write_text("person\n")
    cfg = load_app("vww")
    labels = {s.image_path.stem: s.label for s in userdata.read(cfg, root)}
    assert labels == {"astronaut": "person", "coffee": "no_person"}
    out = tmp_path / "pd.json"
    assert ev.main(["person_detect", "--data", str(root), "--no-baseline", "--json",
                    str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["overall"]["images"] == 2 and doc["overall"]["boxes"] == 1
    assert 0 <= doc["overall"]["int8"]["map"] <= 1


def test_read_refuses_an_empty_folder(tmp_path):
    with pytest.raises(readers.DatasetError, match="no labelled images"):
        userdata.read(load_app("vww"), tmp_path)


SHARED_TFLM = Path(__file__).resolve().parents[2] / "shared" / "models" / "person_detect.tflite"


@pytest.mark.skipif(not SHARED_TFLM.is_file(), reason="needs ../shared/models/person_detect.tflite")
def test_vww_scores_tflite_micros_person_detect_on_the_same_photos(photo_folder, tmp_path,
                                                                   capsys):
    out = tmp_path / "report.json"
    assert ev.main(["vww", "--data", str(photo_folder), "--no-baseline", "--tflm",
                    str(SHARED_TFLM), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["tflm"]["file"] == str(SHARED_TFLM)
    # the column is the imported model's own answers: recompute them here
    from patchcam.compiler.tflite_import import import_tflite
    from patchcam.training import classifier as tc
    g = import_tflite(SHARED_TFLM)
    samples = userdata.read(load_app("vww"), photo_folder)
    imgs, kept = ev.imagesets.load_images(samples, (96, 96), True, desc="test-tflm")
    y = np.array([int(s.label == "person") for s in kept])
    expected = float((tc.int8_predict(g, imgs) == y).mean())
    assert doc["overall"]["tflm"] == pytest.approx(expected, abs=1e-4)
    assert set(doc["recall"]["tflm"]) == {"person", "no_person"}
    text = capsys.readouterr().out
    assert "TFLM" in text and "TFLite Micro person_detect" in text


def test_a_missing_tflm_model_named_explicitly_is_one_line(photo_folder, tmp_path, capsys):
    assert ev.main(["vww", "--data", str(photo_folder), "--no-baseline", "--tflm",
                    str(tmp_path / "nope.tflite")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
