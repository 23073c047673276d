"""patchcam.targets.release: the prebuilt-image manifest (hostile input checked), the check that
every listed image is present, intact and built from apps/<app>/generated, and `make flash`
with a prebuilt image and no toolchain (a fake drive)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from patchcam.targets import flash, release

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_apps(root: Path, hashes: dict[str, int]) -> Path:
    for app, h in hashes.items():
        d = root / "apps" / app / "generated"
        d.mkdir(parents=True)
        (d / "app_config.h").write_text(f"#define PC_APP_MODEL_HASH 0x{h:08x}u /* sha */\n")
    return root / "apps"


def make_release(root: Path, images: dict[tuple[str, str], tuple[bytes, int]]) -> Path:
    rel = root / "release"
    entries = []
    for (app, board), (data, h) in images.items():
        f = rel / board / f"{app}.bin"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
        entries.append(release.Entry(app, board, h, COMMIT, (release.File.of(f, rel),),
                                     len(data), 1000))
    rel.mkdir(exist_ok=True)
    release.write_manifest(entries, rel / "manifest.json")
    return rel / "manifest.json"


def shipped_apps() -> list[str]:
    return sorted(d.name for d in (release.REPO / "apps").iterdir()
                  if (d / "generated" / "app_config.h").is_file())


def test_the_shipped_release_is_complete_and_current():
    """release/ ships an image of every app for every board, each file intact and each built
    from the model in apps/<app>/generated now: a model changed without `make release
    APP=<app>` fails here (a stale image cannot ship silently)."""
    manifest = release.RELEASE / release.MANIFEST_NAME
    assert manifest.is_file(), "no release/manifest.json: make release"
    entries = release.load_manifest(manifest)
    listed = {(e.app, e.board) for e in entries}
    missing = [f"{a} for {b}" for a in shipped_apps() for b in release.BOARDS
               if (a, b) not in listed]
    assert not missing, f"not in release/: {', '.join(missing)} (make release)"
    for e in entries:
        assert e.model_hash == release.model_hash(e.app), (
            f"{e.file}: built from model 0x{e.model_hash:08x}, apps/{e.app}/generated is "
            f"0x{release.model_hash(e.app):08x}: make release APP={e.app}")
        for f in e.files:
            data = (release.RELEASE / f.file).read_bytes()
            assert len(data) == f.bytes < 1 << 20 and \
                hashlib.sha256(data).hexdigest() == f.sha256, f.file
    assert release.check(manifest) == entries
    by_board = {b: sorted(Path(f.file).name for e in entries if e.board == b
                          and e.app == "vww" for f in e.files) for b in release.BOARDS}
    assert by_board["disco_f746ng"] == ["vww.bin"]
    assert by_board["nano33ble_sense"] == ["vww.bin", "vww.hex"]
    assert {"main.py", "main_ide.py", "pcmodel.mpy", "pcapp.py", "vww.tflite",
            "vww.txt"} <= set(by_board["openmv_h7"])
    assert {"main.py", "pcapp.py", "pcpipe.py", "vww.tflite"} <= set(by_board["openmv_h7_ml"])
    assert "pcmodel.mpy" not in by_board["openmv_h7_ml"]


def test_the_shipped_openmv_folders_say_the_shipped_model_hash():
    """pcapp.py in each prebuilt OpenMV folder carries the model hash of apps/<app>/generated
    (the folders are built from that very C), and pcmodel.mpy is an armv7emsp .mpy."""
    for e in release.load_manifest(release.RELEASE / release.MANIFEST_NAME):
        if e.board not in release.OPENMV_BOARDS:
            continue
        folder = release.RELEASE / e.board / e.app
        assert f"MODEL_HASH = 0x{e.model_hash:08x}" in (folder / "pcapp.py").read_text()
        if e.board == "openmv_h7":
            head = (folder / "pcmodel.mpy").read_bytes()[:4]
            assert head[0] == ord("M") and head[1] == 6  # .mpy version 6
            assert head[2] >> 2 == 7  # MP_NATIVE_ARCH_ARMV7EMSP


def test_make_flash_with_the_shipped_image_and_no_mbed_tree(monkeypatch, tmp_path, capsys):
    """The real release/: without a toolchain or an Mbed CE tree, make flash copies the shipped
    DISCO image to the (fake) ST-LINK drive, says so and exits 0."""
    drive = tmp_path / "DIS_F746NG"
    drive.mkdir()
    (drive / "MBED.HTM").write_text("")
    monkeypatch.delenv("MBED_OS_PATH", raising=False)
    monkeypatch.setattr(flash, "MBED_OS_CACHE", tmp_path / "no-mbed-os")
    monkeypatch.setattr(flash.shutil, "which", lambda t: None)
    monkeypatch.setattr(flash, "build", lambda *a, **k: pytest.fail("must not build"))
    monkeypatch.setattr(flash.usb, "mounted_volumes", lambda: [("DIS_F746NG", drive)])
    for app in shipped_apps():
        assert flash.main(["flash", "--app", app, "--board", "disco_f746ng"]) == 0
        out = capsys.readouterr().out
        assert f"using the prebuilt image disco_f746ng/{app}.bin built from model" in out
        assert f"copying {app}.bin to the ST-LINK drive {drive}" in out
        assert (drive / f"{app}.bin").read_bytes() == \
            (release.RELEASE / "disco_f746ng" / f"{app}.bin").read_bytes()


def test_make_flash_openmv_takes_the_shipped_folder(monkeypatch, tmp_path, capsys):
    """No build/openmv/<app>/ here: make flash BOARD=openmv_h7 copies the prebuilt natmod
    folder to the (fake) camera drive."""
    drive = tmp_path / "CAM"
    drive.mkdir()
    (drive / ".openmv_disk").write_text("")
    monkeypatch.setattr(flash, "openmv_drive_folder",
                        lambda app: tmp_path / "build" / "openmv" / app / "drive")
    monkeypatch.setattr(flash, "REPO", tmp_path)
    assert flash.main(["flash", "--app", "vww", "--board", "openmv_h7", "--drive",
                       str(drive)]) == 0
    out = capsys.readouterr().out
    assert "(prebuilt, built from model 0x" in out
    folder = release.RELEASE / "openmv_h7" / "vww"
    for f in folder.iterdir():
        assert (drive / f.name).read_bytes() == f.read_bytes()


def test_model_hashes_of_the_shipped_apps_are_read():
    for app in ("vww", "person_detect", "mask_detect"):
        assert 0 <= release.model_hash(app) <= 0xFFFFFFFF


def test_check_passes_then_catches_stale_and_tampered_images(tmp_path):
    apps = make_apps(tmp_path, {"vww": 0x1A04C3C5, "person_detect": 0xBE8969A0})
    manifest = make_release(tmp_path, {("vww", "disco_f746ng"): (b"\x01" * 64, 0x1A04C3C5),
                                       ("person_detect", "nano33ble_sense"): (b"\x02" * 32,
                                                                              0xBE8969A0)})
    assert [e.app for e in release.check(manifest, apps)] == ["vww", "person_detect"]
    data = json.loads(manifest.read_text())
    assert data["images"][0]["model_hash"] == "0x1a04c3c5"
    # the model changed after the image was built: stale
    (apps / "vww" / "generated" / "app_config.h").write_text(
        "#define PC_APP_MODEL_HASH 0xdeadbeefu\n")
    with pytest.raises(release.ReleaseError, match="built from model 0x1a04c3c5, but "
                                                   "apps/vww/generated is 0xdeadbeef: stale"):
        release.check(manifest, apps)
    make_apps(tmp_path / "b", {"vww": 0x1A04C3C5, "person_detect": 0xBE8969A0})
    (tmp_path / "release" / "nano33ble_sense" / "person_detect.bin").write_bytes(b"\x03" * 32)
    with pytest.raises(release.ReleaseError, match="size or SHA-256 differs"):
        release.check(manifest, tmp_path / "b" / "apps")
    (tmp_path / "release" / "nano33ble_sense" / "person_detect.bin").unlink()
    with pytest.raises(release.ReleaseError, match="listed in the manifest but missing"):
        release.check(manifest, tmp_path / "b" / "apps")


def test_building_one_app_replaces_only_its_images(monkeypatch, tmp_path):
    """make release APP=x: x's images are rebuilt and its entries replaced; the other apps'
    stay as they were; an image that fails to build is reported and keeps its old entry."""
    make_apps(tmp_path, {"vww": 1, "mask_detect": 2})
    rel = tmp_path / "release"
    manifest = make_release(tmp_path, {("vww", "disco_f746ng"): (b"\x01" * 8, 1),
                                       ("mask_detect", "disco_f746ng"): (b"\x02" * 8, 2)})
    monkeypatch.setattr(release, "REPO", tmp_path)
    monkeypatch.setattr(release, "source_commit", lambda app: "f" * 40)
    monkeypatch.setattr(release, "model_hash",
                        lambda app, d=None: {"vww": 1, "mask_detect": 3}[app])

    def fake_mbed(app, board, out, mbed_os, jobs):
        f = out / board / f"{app}.bin"
        f.write_bytes(b"\x03" * 16)
        return [f], 16, 4

    def no_openmv(app, board, out, micropython):
        raise release.ReleaseError("no MicroPython tree")

    monkeypatch.setattr(release, "build_mbed", fake_mbed)
    monkeypatch.setattr(release, "build_openmv", no_openmv)
    built, failed = release.build_release(["mask_detect"], ["disco_f746ng", "openmv_h7"],
                                          out=rel)
    assert [(e.app, e.board) for e in built] == [("mask_detect", "disco_f746ng")]
    assert failed == ["mask_detect for openmv_h7: no MicroPython tree"]
    entries = {(e.app, e.board): e for e in release.load_manifest(manifest)}
    assert entries[("vww", "disco_f746ng")].source_commit == COMMIT
    new = entries[("mask_detect", "disco_f746ng")]
    assert (new.model_hash, new.source_commit, new.files[0].bytes) == (3, "f" * 40, 16)


def test_a_tree_with_uncommitted_firmware_is_not_released(monkeypatch):
    outs = {"rev-parse": "a" * 40}
    monkeypatch.setattr(release, "_git", lambda *a: outs[a[0]])
    # git's porcelain lines as _git returns them: stripped, so the first loses X's space
    for status in ("M firmware/runtime/pc_conv.c\n M apps/vww/app.toml",
                   "?? firmware/runtime/pc_conv.c", "MM firmware/runtime/pc_conv.c"):
        outs["status"] = status
        with pytest.raises(release.ReleaseError, match="uncommitted changes under firmware/ or "
                                                       r"apps/vww/ \(firmware/runtime/pc_conv.c "):
            release.source_commit("vww")
    outs["status"] = ""
    assert release.source_commit("vww") == "a" * 40


FILE = {"file": "disco_f746ng/vww.bin", "bytes": 10, "sha256": "0" * 64}
GOOD = {"app": "vww", "board": "disco_f746ng", "model_hash": "0x1a04c3c5",
        "source_commit": COMMIT, "flash_bytes": 10, "ram_bytes": 10, "files": [FILE]}


@pytest.mark.parametrize("change,msg", [
    ({"files": [{**FILE, "file": "../outside.bin"}]}, "must stay inside"),
    ({"files": [{**FILE, "file": "/etc/passwd"}]}, "must stay inside"),
    ({"board": "uno"}, "unknown board"),
    ({"app": "../x"}, "bad app name"),
    ({"model_hash": 123}, "model_hash must be a str"),
    ({"model_hash": "0x1"}, "0x and 8 hex digits"),
    ({"source_commit": "main"}, "40-hex commit"),
    ({"files": [{**FILE, "sha256": "zz"}]}, "64 hex digits"),
    ({"files": [{**FILE, "bytes": 2 << 20}]}, "bytes out of range"),
    ({"files": [{**FILE, "bytes": 0}]}, "bytes out of range"),
    ({"files": [{**FILE, "bytes": True}]}, "bytes must be a int"),
    ({"files": []}, "files must be a list of 1 to 16"),
    ({"files": [FILE] * 17}, "files must be a list of 1 to 16"),
    ({"files": "disco_f746ng/vww.bin"}, "files must be a list"),
    ({"files": [FILE, FILE]}, "listed twice"),
    ({"ram_bytes": -1}, "out of range"),
    ({"flash_bytes": 1 << 30}, "out of range"),
])
def test_hostile_manifest_entries_are_refused(tmp_path, change, msg):
    m = tmp_path / "manifest.json"
    m.write_text(json.dumps({"format": 2, "images": [{**GOOD, **change}]}))
    with pytest.raises(release.ReleaseError, match=msg):
        release.load_manifest(m)


@pytest.mark.parametrize("doc,msg", [
    ("[]", "not a format-2"), ('{"format": 1}', "not a format-2"), ("{", "cannot read it"),
    (json.dumps({"format": 2, "images": {}}), "must be a list"),
])
def test_hostile_manifests_are_refused(tmp_path, doc, msg):
    m = tmp_path / "manifest.json"
    m.write_text(doc)
    with pytest.raises(release.ReleaseError, match=msg):
        release.load_manifest(m)
    m.write_bytes(b" " * (release.MAX_MANIFEST_BYTES + 1))
    with pytest.raises(release.ReleaseError, match="over"):
        release.load_manifest(m)


def test_a_duplicate_image_is_refused(tmp_path):
    m = tmp_path / "manifest.json"
    m.write_text(json.dumps({"format": 2, "images": [GOOD, GOOD]}))
    with pytest.raises(release.ReleaseError, match="listed twice"):
        release.load_manifest(m)
    other = {**GOOD, "board": "nano33ble_sense"}  # another image, the same file
    m.write_text(json.dumps({"format": 2, "images": [GOOD, other]}))
    with pytest.raises(release.ReleaseError, match="disco_f746ng/vww.bin is listed twice"):
        release.load_manifest(m)


def test_make_flash_uses_the_prebuilt_image_without_a_toolchain(monkeypatch, tmp_path, capsys):
    apps = make_apps(tmp_path, {"vww": 0x1A04C3C5})
    image = b"\x7f" * 128
    manifest = make_release(tmp_path, {("vww", "disco_f746ng"): (image, 0x1A04C3C5)})
    drive = tmp_path / "DIS_F746NG"
    drive.mkdir()
    (drive / "MBED.HTM").write_text("")
    monkeypatch.setattr(release, "RELEASE", manifest.parent)
    monkeypatch.setattr(release, "REPO", tmp_path)
    monkeypatch.setattr(flash.shutil, "which", lambda t: None)  # no arm-none-eabi-gcc, no cmake
    monkeypatch.setattr(flash, "build", lambda *a, **k: pytest.fail("must not build"))
    monkeypatch.setattr(flash.usb, "mounted_volumes", lambda: [("DIS_F746NG", drive)])
    real_hash = release.model_hash
    monkeypatch.setattr(release, "model_hash", lambda app, d=None: real_hash(app, apps))
    assert flash.main(["flash", "--app", "vww", "--board", "disco_f746ng"]) == 0
    out = capsys.readouterr().out
    assert "no toolchain here (missing arm-none-eabi-gcc" in out
    assert "using the prebuilt image disco_f746ng/vww.bin built from model 0x1a04c3c5" in out
    assert "copying vww.bin to the ST-LINK drive" in out
    assert (drive / "vww.bin").read_bytes() == image
    # the app's model changed since: refused, with why, not flashed
    (apps / "vww" / "generated" / "app_config.h").write_text(
        "#define PC_APP_MODEL_HASH 0x00000001u\n")
    (drive / "vww.bin").unlink()
    assert flash.main(["flash", "--app", "vww", "--board", "disco_f746ng"]) == 2
    err = capsys.readouterr().err
    assert "the prebuilt image cannot be used" in err and "stale" in err
    assert not (drive / "vww.bin").exists()
