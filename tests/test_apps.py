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
        # mask_detect spends the SRAM patches free on pixels: its faces are small
        assert (c.input.width, c.input.height) == \
            ((208, 160) if name == "mask_detect" else (160, 128))
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
    ("grow = [1.0, 0.3, 1.0, 6.0]", "grow = [1.0, 0.3, 1.0]",
     r"key 'data\[2\].grow': four numbers in 0..10.0 \(left, top, right, bottom"),
    ("grow = [1.0, 0.3, 1.0, 6.0]", "grow = [1.0, -0.3, 1.0, 6.0]", r"'data\[2\].grow': four"),
    ("grow = [1.0, 0.3, 1.0, 6.0]", 'grow = "big"', r"'data\[2\].grow': expected a list"),
    ('splits = ["train"]', 'splits = ["train", "test"]',
     r"'data\[2\].grow': grown boxes are approximate and must not be scored"),
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


def _set(text: str, table: str, key: str, value: str) -> str:
    """text with `key = value` in [table] (replaced when there, else added first)."""
    start = re.search(rf"(?m)^\[{re.escape(table)}\][^\n]*\n", text).end()
    end = text.find("\n[", start)
    end = len(text) if end < 0 else end + 1
    body, n = re.subn(rf"(?m)^{re.escape(key)} = .*$", lambda _: f"{key} = {value}",
                      text[start:end])
    if not n:
        body = f"{key} = {value}\n" + body
    return text[:start] + body + text[end:]


@pytest.mark.parametrize("table,key,value,message", [
    ("thresholds", "score", "0.0", r"'thresholds.score': must be in \(0, 1\), got 0.0"),
    ("thresholds", "score", "1", r"'thresholds.score': must be in \(0, 1\), got 1.0"),
    ("thresholds", "nms_iou", "0", r"'thresholds.nms_iou': must be in \(0, 1\], got 0.0"),
    ("thresholds", "nms_iou", "1.01", r"'thresholds.nms_iou': must be in \(0, 1\], got 1.01"),
    ("thresholds", "max_candidates", "0", r"'thresholds.max_candidates': must be in 1..65535"),
    ("thresholds", "max_candidates", "65536", r"'thresholds.max_candidates': must be in 1..6553"),
    ("thresholds", "max_detections", "0", r"'thresholds.max_detections': must be in 1..64 "
     r"\(thresholds.max_candidates\), got 0"),
    ("thresholds", "max_detections", "65", r"'thresholds.max_detections': must be in 1..64 "),
    ("input", "width", "4", r"'input.width': must be in 8..1024, got 4"),
    ("input", "height", "2048", r"'input.height': must be in 8..1024, got 2048"),
    ("board", "arena_kb", "0", r"'board.arena_kb': must be in 1..4194303, got 0"),
    ("board", "flash_kb", "4194304", r"'board.flash_kb': must be in 1..4194303"),
    ("train", "epochs", "0", r"'train.epochs': must be >= 1, got 0"),
    ("train", "batch", "-2", r"'train.batch': must be >= 1, got -2"),
    ("train", "qat_epochs", "-1", r"'train.qat_epochs': must be >= 0, got -1"),
    ("train", "seed", "-1", r"'train.seed': must be in 0..4294967295, got -1"),
    ("train", "lr", "0.0", r"'train.lr': must be > 0, got 0.0"),
    ("train", "qat_lr", "-1e-4", r"'train.qat_lr': must be > 0, got -0.0001"),
    ("model.overrides", "width", "0.0", r"'model.overrides.width': must be in \(0, 4\]"),
    ("model.overrides", "stem", "0", r"'model.overrides.stem': must be >= 1, got 0"),
    ("model.head", "channels", "0", r"'model.head.channels': must be >= 1, got 0"),
    ("model.head", "blocks", "-1", r"'model.head.blocks': must be >= 0, got -1"),
    ("model.head", "kernel", "129", r"'model.head.kernel': must be in 1..128, got 129"),
    ("app", "name", '"../evil"', r"'app.name': '../evil' must be 1..64 characters of A-Z"),
    ("classes", "names", '["per\\nson"]', r"'classes.names\[0\]': 'per\\nson' must be 1..255 "
     r"UTF-8 bytes of printable characters"),
    ("classes", "names", '["' + "x" * 256 + '"]', r"'classes.names\[0\]': 'x+' must be 1..255"),
])
def test_ranges_name_key_and_range(tmp_path, table, key, value, message):
    text = (REPO / "apps" / "person_detect" / "app.toml").read_text()
    p = tmp_path / "app.toml"
    p.write_text(_set(text, table, key, value))
    with pytest.raises(config.AppConfigError, match=message) as e:
        config.load_app(p)
    assert str(e.value).startswith(f"{p}: key ") and "\n" not in str(e.value)


def test_max_detections_is_what_one_result_packet_holds(tmp_path):
    """The limit is the wire's: that many boxes encode as one RESULT, one more does not."""
    from patchcam.host import protocol as P
    n = config.MAX_DETECTIONS
    boxes = [P.Detection(0, 0, 1, 1, 0, 0)] * n
    P.encode(P.Result(1, P.Task.DETECT, detections=boxes))
    with pytest.raises(ValueError, match="MAX_PAYLOAD"):
        P.encode(P.Result(1, P.Task.DETECT, detections=boxes + boxes[:1]))
    text = (REPO / "apps" / "person_detect" / "app.toml").read_text()
    p = tmp_path / "app.toml"
    p.write_text(_set(_set(text, "thresholds", "max_candidates", str(2 * n)),
                      "thresholds", "max_detections", str(n + 1)))
    with pytest.raises(config.AppConfigError, match=rf"'thresholds.max_detections': must be in "
                       rf"1..{n} \(one RESULT packet's limit\), got {n + 1}"):
        config.load_app(p)
    p.write_text(_set(_set(text, "thresholds", "max_candidates", str(2 * n)),
                      "thresholds", "max_detections", str(n)))
    assert config.load_app(p).thresholds.max_detections == n
    with pytest.raises(ValueError, match=rf"max_detections must be in 1..{n} \(one RESULT"):
        detect.DecodeParams.prepare(0.1, 0, 1, 8, (16, 20), (160, 128), 0.4, 0.45, 2 * n, n + 1)


@pytest.mark.parametrize("key,value,message", [
    ("max_detections", "0", r"'thresholds.max_detections': must be in 1\.\."),
    ("max_candidates", "0", r"'thresholds.max_candidates': .*1\.\.65535"),
    ("max_candidates", "70000", r"'thresholds.max_candidates': .*1\.\.65535"),
    ("max_detections", "-1", r"'thresholds.max_detections': must be in 1\.\."),
])
def test_zero_or_negative_box_counts_are_refused(tmp_path, key, value, message):
    """0 would silently disable every box on the board; above 65535 wraps a uint16_t."""
    text = (REPO / "apps" / "person_detect" / "app.toml").read_text()
    p = tmp_path / "app.toml"
    p.write_text(_set(text, "thresholds", key, value))
    with pytest.raises(config.AppConfigError, match=message):
        config.load_app(p)


def test_too_many_classes(tmp_path):
    text = (REPO / "apps" / "vww" / "app.toml").read_text()
    p = tmp_path / "app.toml"
    names = "[" + ", ".join(f'"c{i}"' for i in range(config.MAX_CLASSES + 1)) + "]"
    p.write_text(_set(text, "classes", "names", names))
    with pytest.raises(config.AppConfigError, match=r"'classes.names': must be in 1..255 "
                                                    r"classes, got 256"):
        config.load_app(p)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vww", "person_detect", "mask_detect"])
def test_shipped_c_is_what_the_compiler_makes_of_the_app_today(name, tmp_path):
    """apps/<app>/generated/ is export.write_generated of its own model.json with today's
    planner and codegen: a compiler change that would move an app's schedule or its C fails
    here until the apps are exported again. Every app's schedule within its budget has no
    column split (patchplan.Schedule.columns: those cost the most time)."""
    from patchcam.app import export
    from patchcam.compiler.ir import Graph
    cfg = config.load_app(name)
    gen = REPO / "apps" / name / "generated"
    g = Graph.load(gen / "model.json")
    shipped = dict(g.meta["schedule"])
    out = export.write_generated(g, cfg, tmp_path)
    assert g.meta["schedule"] == shipped
    assert shipped["grid"][1] == 1 and shipped["arena_bytes"] <= cfg.board.arena_kb * 1024
    for f in ("model.h", "model.c", "app_config.h"):
        assert (out / f).read_bytes() == (gen / f).read_bytes(), f


@pytest.mark.parametrize("n,fits", [(config.MAX_DETECTIONS, True),
                                    (config.MAX_DETECTIONS + 1, False)])
def test_firmware_refuses_more_detections_than_one_result_holds(tmp_path, n, fits):
    """firmware/app/app_main.c checks the same limit at build time."""
    import shutil
    import subprocess

    from patchcam.targets import armbuild, hostbuild
    if shutil.which("gcc") is None:
        pytest.skip("no host gcc")
    gen = REPO / "apps" / "person_detect" / "generated"
    for f in ("model.h", "app_config.h"):
        shutil.copy(gen / f, tmp_path / f)
    cfg = tmp_path / "app_config.h"
    text, k = re.subn(r"(?m)^#define PC_DET_MAX_DETECTIONS \d+$",
                      f"#define PC_DET_MAX_DETECTIONS {n}", cfg.read_text())
    assert k == 1
    cfg.write_text(re.sub(r"(?m)^#define PC_DET_MAX_CANDIDATES \d+$",
                          f"#define PC_DET_MAX_CANDIDATES {2 * n}", text))
    r = subprocess.run(["gcc", *hostbuild.WARNINGS, "-fsyntax-only", f"-I{tmp_path}",
                        *(f"-I{d}" for d in (*armbuild.APP_LOOP_INCLUDES, hostbuild.BOARD_INCLUDE,
                                             *hostbuild.codegen.runtime_include_dirs())),
                        str(armbuild.APP_MAIN)], capture_output=True, text=True)
    assert (r.returncode == 0) == fits, r.stderr
    assert fits or "must fit one RESULT packet" in r.stderr
