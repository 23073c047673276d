"""apps/<app>/app.toml: the three apps load, and every mistake is one line naming the key."""

import re
from pathlib import Path

import pytest

from patchcam.app import config, detect
from patchcam.compiler import zoo

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["vww", "person_detect", "mask_detect"])
def test_apps_load(name):
    c = config.load_app(name)
    assert c.app.name == name and c.data
    cfg = c.zoo_config()
    assert cfg.resolution == (c.input.height, c.input.width)
    assert cfg.num_classes == len(c.classes.names)
    if c.app.task == "detect":
        assert (c.input.width, c.input.height) == (160, 128)
        assert c.board.arena_kb <= 128 and c.board.flash_kb <= 1024
        assert detect.feature_stride(cfg) == c.model.head.stride == 8
        assert len(cfg.stages) == 5 and cfg.stages[3].stride == 1
    else:
        assert (c.input.width, c.input.height, c.input.color) == (96, 96, "rgb")
        assert c.board.arena_kb == 32 and c.model.preset == "mcu-s-96"
        assert cfg.stages == zoo.preset("mcu-s-96").stages
    for d in c.data:
        assert not Path(d.path).is_absolute()


def test_mask_classes_map():
    c = config.load_app("mask_detect")
    assert c.classes.names == ["mask", "no_mask"]
    assert c.data[0].class_map == {"with_mask": "mask", "without_mask": "no_mask",
                                   "mask_weared_incorrect": "no_mask"}


def _variant(tmp_path: Path, old: str, new: str, app: str = "person_detect") -> Path:
    text = (REPO / "apps" / app / "app.toml").read_text()
    assert old in text, old
    p = tmp_path / "app.toml"
    p.write_text(text.replace(old, new, 1))
    return p


@pytest.mark.parametrize("old,new,message", [
    ("score = 0.4", 'score = "high"', r"key 'thresholds.score': expected a number, got str"),
    ("score = 0.4", "score = 1.5", r"key 'thresholds.score': must be in \(0, 1\)"),
    ("score = 0.4", "scor = 0.4", r"key 'thresholds.scor': unknown key \(known in this table"),
    ("arena_kb = 128\n", "", r"key 'board.arena_kb': missing"),
    ("width = 160", "width = 160.0", r"key 'input.width': expected an integer, got float"),
    ('color = "rgb"', 'color = "rgb565"', r"key 'input.color': 'rgb565' is not one of rgb, gray"),
    ('preset = "mcu-m-128"', 'preset = "big"', r"key 'model.preset': 'big' is not one of"),
    ("stride = 8", "stride = 16", r"key 'model.head.stride': 16 but the backbone's output"),
    ("class_map = { pedestrian = \"person\" }", "class_map = { pedestrian = \"human\" }",
     r"key 'data\[0\].class_map.pedestrian': 'human' is not one of person"),
    ('format = "yolo"', 'format = "kitti"', r"key 'data\[0\].format': 'kitti'"),
    ("[train]", "[training]", r"key 'training': unknown key"),
    ("epochs = 80", "epochs = true", r"key 'train.epochs': expected an integer, got bool"),
    ("stage_expand = [1, 4, 4, 4, 3]", "stage_expand = [1, 4, 4, 4, 9]",
     r"key 'model.overrides.stage_expand': expansion ratios must be in 1..8"),
    ('names = ["person"]', 'names = "person"', r"key 'classes.names': expected a list"),
    ("[model.head]", "[model.neck]", r"key 'model.neck': unknown key"),
])
def test_validation_errors_name_file_and_key(tmp_path, old, new, message):
    p = _variant(tmp_path, old, new)
    with pytest.raises(config.AppConfigError, match=message) as e:
        config.load_app(p)
    text = str(e.value)
    assert text.startswith(str(p) + ": ") and "\n" not in text


def test_bad_toml_and_missing_app(tmp_path):
    p = tmp_path / "app.toml"
    p.write_text("[app\nname = 1\n")
    with pytest.raises(config.AppConfigError, match=re.escape(f"{p}: not valid TOML")):
        config.load_app(p)
    with pytest.raises(config.AppConfigError, match="no such app config; apps: mask_detect, "
                                                  "person_detect, vww"):
        config.load_app("nope")
    p = _variant(tmp_path, 'task = "classify"', 'task = "detect"', "vww")
    with pytest.raises(config.AppConfigError, match=r"key 'model.head': missing \(a detect app"):
        config.load_app(p)
