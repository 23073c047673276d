"""Dataset readers: real staged sets (when present) and small generated files."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import load_script
from PIL import Image

from patchcam.training import readers as R

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _shared(name: str) -> Path:
    p = SHARED / name
    if not p.is_dir():
        pytest.skip(f"{p} is absent (staged datasets not available on this machine)")
    return p


def _img(path: Path, w: int = 40, h: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path)
    return path


def _disjoint(ss: R.SampleSet) -> None:
    where: dict[str, str] = {}
    for s in ss:
        assert s.split in R.SPLITS
        assert where.setdefault(s.group, s.split) == s.split, s.group
    assert len({s.image_path for s in ss}) == len(ss)


# ---- real staged datasets -------------------------------------------------------------------
def test_penn_fudan_real():
    ss = R.read_dataset(_shared("penn_fudan_ped"))
    assert ss.format == "yolo" and len(ss) == 170 and not ss.skipped
    assert sum(len(s.boxes) for s in ss) == 423
    assert set(lb for s in ss for lb in s.labels) == {"pedestrian"}
    c = ss.counts()
    assert c["test"] == 34 and c["train"] + c["val"] == 136 and c["val"] > 0
    assert all(s.image_path.stem.startswith("PennPed") for s in ss.split("test"))
    for s in ss:
        w, h = s.size
        assert (s.boxes >= 0).all() and (s.boxes[:, [0, 2]] <= w).all()
        assert (s.boxes[:, [1, 3]] <= h).all()
    _disjoint(ss)


def test_capston2_real_uses_suggested_split():
    root = _shared("coco_person_rf_capston2")
    ss = R.read_yolo(root, class_names=["person"])
    assert len(ss) == 401 and sum(len(s.boxes) for s in ss) == 832
    assert ss.counts() == {"train": 326, "val": 75, "test": 0}
    assert all(s.group.startswith("coco/") for s in ss)
    _disjoint(ss)
    with pytest.raises(R.DatasetError, match="no class names"):
        R.read_yolo(root)


def test_face_mask_real_and_class_map():
    ss = R.read_dataset(_shared("face_mask_detection"))
    assert ss.format == "voc" and len(ss) == 853
    assert sum(len(s.boxes) for s in ss) == 4072
    counts = ss.counts()
    assert sum(counts.values()) == 853 and min(counts.values()) > 80
    mapped = R.remap_labels(ss, R.MASK_CLASS_MAP)
    from collections import Counter
    c = Counter(lb for s in mapped for lb in s.labels)
    assert c == {"mask": 3232, "no_mask": 717 + 123}
    # The 12 boxes that end at x = 401 in 400-px images are clipped to the border.
    assert all((s.boxes[:, 2] <= s.size[0]).all() for s in ss)
    _disjoint(ss)


def test_vww_folders_real():
    folders = sorted(SHARED.glob("vww_*")) if SHARED.is_dir() else []
    if not folders:
        pytest.skip(f"{SHARED} has no vww_* folders")
    total = 0
    for f in folders:
        ss = R.read_folder(f)
        assert not ss.skipped and all(s.image_label in ("person", "no_person") for s in ss)
        _disjoint(ss)
        total += len(ss)
    assert total == 3252 + 1975 + 974
    camvid = R.read_folder(_shared("vww_neg_camvid_streets"))
    assert {s.group for s in camvid} <= {"camvid/0001TP", "camvid/0006R0", "camvid/0016E5",
                                          "camvid/Seq05VD"}


# ---- generated files ------------------------------------------------------------------------
def test_image_folder_with_split_dirs_and_unreadable_image(tmp_path):
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            for i in range(3):
                _img(tmp_path / split / cls / f"{cls}{i}.png")
    (tmp_path / "train" / "cat" / "broken.jpg").write_bytes(b"not an image at all")
    with pytest.warns(UserWarning, match="broken.jpg: cannot be read"):
        ss = R.read_folder(tmp_path)
    assert len(ss) == 12 and [p.name for p, _ in ss.skipped] == ["broken.jpg"]
    assert "1 skipped" in ss.summary()
    assert {s.split for s in ss if "test" in s.image_path.parts} == {"test"}
    assert {s.image_label for s in ss} == {"cat", "dog"}


def test_labels_csv_layout_and_bad_header(tmp_path):
    _img(tmp_path / "images" / "a.jpg")
    _img(tmp_path / "images" / "b.jpg")
    (tmp_path / "labels.csv").write_text(
        "file,label\nimages/a.jpg,person\nimages/b.jpg,no_person\n")
    ss = R.read_folder(tmp_path)
    assert [s.image_label for s in ss] == ["person", "no_person"]
    assert ss[0].boxes.shape == (0, 4) and ss[0].size == (40, 30)
    (tmp_path / "labels.csv").write_text("path,cls\nimages/a.jpg,person\n")
    with pytest.raises(R.LabelError, match=r"labels.csv:1: needs 'file' and 'label'"):
        R.read_folder(tmp_path)


def _voc(path: Path, boxes: list[tuple[str, int, int, int, int]], w=40, h=30) -> None:
    objs = "".join(f"""  <object>
    <name>{n}</name>
    <bndbox>
      <xmin>{a}</xmin>
      <ymin>{b}</ymin>
      <xmax>{c}</xmax>
      <ymax>{d}</ymax>
    </bndbox>
  </object>
""" for n, a, b, c, d in boxes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation>\n  <filename>wrong.png</filename>\n  <size><width>{w}"
                    f"</width><height>{h}</height></size>\n{objs}</annotation>\n")


def test_voc_reader_pairs_by_stem_and_names_bad_line(tmp_path):
    _img(tmp_path / "images" / "x0.jpg")
    _img(tmp_path / "images" / "x1.png")
    _voc(tmp_path / "annotations" / "x0.xml", [("with_mask", 1, 2, 20, 25),
                                               ("without_mask", 30, 5, 41, 30)])
    _voc(tmp_path / "annotations" / "x1.xml", [])
    ss = R.read_voc(tmp_path)
    assert len(ss) == 2
    s0 = next(s for s in ss if s.image_path.stem == "x0")
    np.testing.assert_array_equal(s0.boxes, [[1, 2, 20, 25], [30, 5, 40, 30]])  # clipped 41
    assert R.remap_labels([s0], R.MASK_CLASS_MAP)[0].labels == ["mask", "no_mask"]
    # out of range by more than a pixel: the error names the file and the <bndbox> line
    _voc(tmp_path / "annotations" / "x1.xml", [("with_mask", 1, 2, 20, 25),
                                               ("with_mask", 5, 5, 60, 20)])
    with pytest.raises(R.LabelError, match=r"x1\.xml:15: box .* outside the 40x30 image"):
        R.read_voc(tmp_path)
    (tmp_path / "annotations" / "x1.xml").write_text(
        "<annotation>\n<object><name>a</name><bndbox><xmin>1</xmin><ymin>oops</ymin>"
        "<xmax>3</xmax><ymax>4</ymax></bndbox></object>\n</annotation>")
    with pytest.raises(R.LabelError, match=r"x1\.xml:2: <ymin> is not a number"):
        R.read_voc(tmp_path)
    (tmp_path / "annotations" / "x1.xml").write_text("<annotation>\n<object>\n</annotation>")
    with pytest.raises(R.LabelError, match=r"x1\.xml:3: malformed XML"):
        R.read_voc(tmp_path)


def test_yolo_reader_layouts_and_bad_lines(tmp_path):
    for split in ("train", "valid", "test"):
        for i in range(4):
            _img(tmp_path / "images" / split / f"{split}{i}_jpg.rf.ab12{i}.jpg", 100, 50)
            (tmp_path / "labels" / split).mkdir(parents=True, exist_ok=True)
            (tmp_path / "labels" / split / f"{split}{i}_jpg.rf.ab12{i}.txt").write_text(
                "1 0.5 0.5 0.2 0.4\n\n0 0.1 0.2 0.2 0.4\n")
    _img(tmp_path / "images" / "train" / "negative.jpg", 100, 50)
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    ss = R.read_dataset(tmp_path)
    assert ss.format == "yolo" and len(ss) == 13
    assert ss.counts() == {"train": 5, "val": 4, "test": 4}
    s = next(s for s in ss if s.image_path.name.startswith("train0"))
    np.testing.assert_allclose(s.boxes, [[40, 15, 60, 35], [0, 0, 20, 20]], atol=1e-4)
    assert s.labels == ["dog", "cat"] and s.group == "train0.jpgtrain"
    assert len(next(s for s in ss if s.image_path.name == "negative.jpg").boxes) == 0
    np.testing.assert_allclose(R.scaled_boxes(s, (25, 50)), s.boxes / 2)
    bad = tmp_path / "labels" / "test" / "test2_jpg.rf.ab122.txt"
    for text, msg in [("0 0.5 0.5 0.2 0.4\n0 0.9 0.5 0.4 0.2\n", r":2: box .* outside"),
                      ("0 0.5 0.5 0.2\n", r":1: expected 'class cx cy w h'"),
                      ("0 0.5 0.5 0.2 x\n", r":1: not numbers"),
                      ("\n\n7 0.5 0.5 0.2 0.2\n", r":3: class 7 out of range"),
                      ("0 0.5 0.5 0 0.2\n", r":1: empty box")]:
        bad.write_text(text)
        with pytest.raises(R.LabelError, match=rf"test2_jpg\.rf\.ab122\.txt{msg}"):
            R.read_yolo(tmp_path)


def test_roboflow_copies_share_a_split():
    names = [f"000000{i:06d}_jpg.rf.{h}.jpg" for i in range(200) for h in ("0a1b", "ff22")]
    by_group: dict[str, set[str]] = {}
    for n in names:
        p = Path("images") / n
        by_group.setdefault(R.group_key(p), set()).add(R.hash_split(R.group_key(p)))
    assert len(by_group) == 200 and all(len(v) == 1 for v in by_group.values())
    splits = [next(iter(v)) for v in by_group.values()]
    assert {"train", "val", "test"} == set(splits)


def test_coco_json_reader(tmp_path):
    _img(tmp_path / "images" / "a.jpg", 64, 48)
    _img(tmp_path / "images" / "b.jpg", 64, 48)
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
                      {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48},
                      {"id": 3, "file_name": "missing.jpg", "width": 64, "height": 48}],
           "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
           "annotations": [{"id": 10, "image_id": 1, "category_id": 1, "bbox": [4, 5, 10, 20]},
                           {"id": 11, "image_id": 1, "category_id": 18, "bbox": [0, 0, 64, 48]},
                           {"id": 12, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5],
                            "iscrowd": 1}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="missing.jpg: file not found"):
        ss = R.read_dataset(path)
    assert ss.format == "coco" and len(ss) == 2 and len(ss.skipped) == 1
    a = next(s for s in ss if s.image_path.name == "a.jpg")
    np.testing.assert_array_equal(a.boxes, [[4, 5, 14, 25], [0, 0, 64, 48]])
    assert a.labels == ["person", "dog"]
    assert len(next(s for s in ss if s.image_path.name == "b.jpg").boxes) == 0
    doc["annotations"][0]["bbox"] = [60, 5, 10, 20]
    path.write_text(json.dumps(doc))
    with pytest.raises(R.LabelError, match=r"annotation id 10 \(annotations\[0\]\): box"):
        R.read_coco(path)
    path.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(R.LabelError, match=r"instances.json:2: not a COCO"):
        R.read_coco(path)


@pytest.mark.parametrize("name", ["../outside.jpg", "sub/../../outside.jpg", "ABSOLUTE",
                                  "link/outside.jpg", "a.jpg\x00.png", "", 7, None, ".",
                                  "..\\outside.jpg", "C:/outside.jpg"])
def test_coco_file_name_must_stay_inside_the_images_folder(tmp_path, name):
    """A hostile annotation json: a file_name that leaves images/ (`..`, absolute, a symbolic
    link out of it, NUL, not a name at all) is refused with one LabelError naming the json
    and the image, and no image outside is read."""
    outside = _img(tmp_path / "outside.jpg", 64, 48)
    _img(tmp_path / "set" / "images" / "a.jpg", 64, 48)
    (tmp_path / "set" / "images" / "sub").mkdir()
    (tmp_path / "set" / "images" / "link").symlink_to(tmp_path)
    name = str(outside) if name == "ABSOLUTE" else name
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
                      {"id": 2, "file_name": name, "width": 64, "height": 48}],
           "categories": [{"id": 1, "name": "person"}],
           "annotations": [{"id": 10, "image_id": 2, "category_id": 1, "bbox": [4, 5, 10, 20]}]}
    path = tmp_path / "set" / "instances.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(R.LabelError) as e:
        R.read_dataset(tmp_path / "set")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: image id 2: unsafe file_name "), msg
    assert msg.endswith(f"it must stay inside {tmp_path / 'set' / 'images'}")


def test_coco_image_that_is_a_link_is_read(tmp_path):
    """An image file linked into images/ (how datasets/prepare_vww.py lays out a folder) is
    the folder's own: read, unlike a file_name that leaves through a linked folder."""
    outside = _img(tmp_path / "photos" / "x.jpg", 64, 48)
    (tmp_path / "set" / "images").mkdir(parents=True)
    (tmp_path / "set" / "images" / "x.jpg").symlink_to(outside)
    (tmp_path / "set" / "instances.json").write_text(json.dumps(
        {"images": [{"id": 1, "file_name": "x.jpg", "width": 64, "height": 48}],
         "categories": [{"id": 1, "name": "person"}], "annotations": []}))
    ss = R.read_dataset(tmp_path / "set")
    assert [s.image_path for s in ss] == [tmp_path / "set" / "images" / "x.jpg"]


def test_read_source_puts_every_sample_of_a_held_out_source_in_test(tmp_path):
    """The one place an app's [[data]] entry decides splits: its own, or all test."""
    from patchcam.app.config import DataSource
    for i in range(20):
        _img(tmp_path / "set" / "person" / f"p{i}.jpg")
    own = R.read_source(tmp_path / "set", DataSource(path="set"))
    assert {s.split for s in own} == {"train", "val", "test"}  # hashed, as read_dataset
    held = R.read_source(tmp_path / "set", DataSource(path="set", held_out=True))
    assert [s.split for s in held] == ["test"] * 20 and held.counts()["test"] == 20
    assert [s.image_path for s in held] == [s.image_path for s in own]


def test_annotation_paths_of_labels_csv_stay_inside_too(tmp_path):
    _img(tmp_path / "outside.jpg")
    _img(tmp_path / "set" / "images" / "a.jpg")
    for bad in ("../outside.jpg", str(tmp_path / "outside.jpg")):
        (tmp_path / "set" / "labels.csv").write_text(f"file,label\nimages/a.jpg,person\n"
                                                      f"{bad},person\n")
        with pytest.raises(R.LabelError, match=r"labels.csv:3: unsafe file "):
            R.read_folder(tmp_path / "set")


def test_empty_and_missing_datasets(tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(R.DatasetError, match=r"empty: empty dataset") as e:
        R.read_folder(tmp_path / "empty")
    assert "\n" not in str(e.value)
    with pytest.raises(R.DatasetError, match=r"face_mask_x: dataset folder not found; run "
                                             r"`python datasets/prepare_face_mask.py`"):
        R.read_dataset(tmp_path / "face_mask_x")
    with pytest.raises(R.DatasetError, match="dataset folder not found; see datasets/README"):
        R.read_dataset(tmp_path / "nothing")


def test_splits_deterministic():
    keys = [f"img{i}.jpgcls" for i in range(2000)]
    a = [R.hash_split(k) for k in keys]
    assert a == [R.hash_split(k) for k in keys]
    frac = {s: a.count(s) / len(a) for s in R.SPLITS}
    assert abs(frac["val"] - 0.15) < 0.03 and abs(frac["test"] - 0.15) < 0.03
    # the classification helper of imagesets keeps its old rule
    p = Path("x/cls/img7.jpg")
    assert R.split_of(p) == R.hash_split("img7.jpgcls")


# ---- prepare scripts (conversion logic only, no network) ------------------------------------
def _coco_doc():
    return {"images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 100, "height": 100}
                       for i in range(1, 6)],
            "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 40},
                {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 7, 7], "area": 49},
                {"id": 3, "image_id": 3, "category_id": 3, "bbox": [0, 0, 90, 90], "area": 8e3},
                {"id": 4, "image_id": 4, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2e3,
                 "iscrowd": 1},
                {"id": 5, "image_id": 5, "category_id": 1, "bbox": [90, 80, 20, 30],
                 "area": 300}]}


def test_prepare_vww_conversion(tmp_path):
    vww = load_script("prepare_vww")
    doc = _coco_doc()
    labels = vww.vww_labels(doc)
    # 10x10 = 1 % >= 0.5 %; 7x7 = 0.49 %; a car; a crowd; a person box of 20x30
    assert labels == {1: "person", 2: "no_person", 3: "no_person", 4: "no_person", 5: "person"}
    assert vww.vww_labels(doc, area_source="segmentation")[1] == "no_person"  # area 40
    img_dir = tmp_path / "coco"
    for im in doc["images"]:
        _img(img_dir / im["file_name"])
    ann = tmp_path / "instances_train2017.json"
    ann.write_text(json.dumps(doc))
    out = tmp_path / "vww"
    assert vww.main(["--annotations", str(ann), "--images", str(img_dir), "--split", "train2017",
                     "--out", str(out)]) == 0
    ss = R.read_folder(out)
    assert sorted(s.image_label for s in ss) == ["no_person"] * 3 + ["person"] * 2
    assert {s.split for s in ss} <= {"train", "val"}


def test_prepare_coco_person_conversion(tmp_path):
    cp = load_script("prepare_coco_person")
    doc = _coco_doc()
    lines = cp.coco_person_yolo(doc, negatives=1)
    assert lines[1] == ["0 0.050000 0.050000 0.100000 0.100000"]
    assert lines[5] == ["0 0.950000 0.900000 0.100000 0.200000"]  # clipped to the image
    assert 4 not in lines and [i for i, v in lines.items() if not v] == [3]
    img_dir = tmp_path / "coco"
    for im in doc["images"]:
        _img(img_dir / im["file_name"], 100, 100)
    ann = tmp_path / "instances_val2017.json"
    ann.write_text(json.dumps(doc))
    out = tmp_path / "coco_person"
    assert cp.main(["--annotations", str(ann), "--images", str(img_dir), "--out", str(out),
                    "--negatives", "1"]) == 0
    ss = R.read_yolo(out)
    assert len(ss) == 4 and ss.counts()["test"] == 4
    s5 = next(s for s in ss if s.image_path.stem.endswith("5"))
    np.testing.assert_allclose(s5.boxes, [[90, 80, 100, 100]], atol=1e-3)


def test_prepare_face_mask_install(tmp_path):
    fm = load_script("prepare_face_mask")
    src = tmp_path / "archive"
    _img(src / "images" / "maksssksksss0.png")
    _img(src / "images" / "orphan.png")
    _voc(src / "annotations" / "maksssksksss0.xml", [("mask_weared_incorrect", 1, 1, 9, 9)])
    out = tmp_path / "face_mask_detection"
    assert fm.main(["--from", str(src), "--out", str(out)]) == 0
    ss = R.read_voc(out)
    assert len(ss) == 1 and ss[0].labels == ["mask_weared_incorrect"]
