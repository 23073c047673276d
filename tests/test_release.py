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
        entries.append(release.Entry(app, board, f"{board}/{app}.bin", h, len(data),
                                     hashlib.sha256(data).hexdigest(), len(data), 1000))
    rel.mkdir(exist_ok=True)
    release.write_manifest(entries, COMMIT, rel / "manifest.json")
    return rel / "manifest.json"


def test_repository_manifest_if_any_is_current():
    """A manifest in the repository lists only images that are there, intact, and built from
    the apps' generated models (no manifest: nothing is shipped yet)."""
    manifest = release.RELEASE / release.MANIFEST_NAME
    if not manifest.exists():
        pytest.skip("no prebuilt images in this checkout (make release)")
    assert release.check(manifest)


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


GOOD = {"app": "vww", "board": "disco_f746ng", "file": "disco_f746ng/vww.bin",
        "model_hash": "0x1a04c3c5", "bytes": 10, "sha256": "0" * 64, "flash_bytes": 10,
        "ram_bytes": 10}


@pytest.mark.parametrize("change,msg", [
    ({"file": "../outside.bin"}, "must stay inside"),
    ({"file": "/etc/passwd"}, "must stay inside"),
    ({"board": "uno"}, "unknown board"),
    ({"app": "../x"}, "bad app name"),
    ({"model_hash": 123}, "model_hash must be a str"),
    ({"model_hash": "0x1"}, "0x and 8 hex digits"),
    ({"sha256": "zz"}, "64 hex digits"),
    ({"bytes": 2 << 20}, "sizes out of range"),
    ({"bytes": True}, "bytes must be a int"),
    ({"ram_bytes": -1}, "sizes out of range"),
])
def test_hostile_manifest_entries_are_refused(tmp_path, change, msg):
    m = tmp_path / "manifest.json"
    m.write_text(json.dumps({"format": 1, "source_commit": COMMIT,
                             "images": [{**GOOD, **change}]}))
    with pytest.raises(release.ReleaseError, match=msg):
        release.load_manifest(m)


@pytest.mark.parametrize("doc,msg", [
    ("[]", "not a format-1"), ('{"format": 2}', "not a format-1"), ("{", "cannot read it"),
    ('{"format": 1, "source_commit": "main", "images": []}', "40-hex commit"),
    (json.dumps({"format": 1, "source_commit": COMMIT, "images": {}}), "must be a list"),
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
    m.write_text(json.dumps({"format": 1, "source_commit": COMMIT, "images": [GOOD, GOOD]}))
    with pytest.raises(release.ReleaseError, match="listed twice"):
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
