"""Prebuilt images: `release/manifest.json` and the images it lists, so that `make flash` works
without a toolchain when the app's model is the one the image was built from.

    python -m patchcam.targets.release build [--app vww ...] [--board disco_f746ng ...]
    python -m patchcam.targets.release check          # every listed image is there and current

Manifest (JSON, format 1), written by `build`, read by `make flash` and the tests:

    {"format": 1,
     "source_commit": "<the 40-hex commit the images were built from>",
     "images": [{"app": "vww", "board": "disco_f746ng", "file": "disco_f746ng/vww.bin",
                 "model_hash": "0x1a04c3c5", "bytes": 216300,
                 "sha256": "<64 hex>", "flash_bytes": 216300, "ram_bytes": 109192}]}

`file` is relative to release/; `model_hash` is PC_APP_MODEL_HASH of the apps/<app>/generated
the image was built from (what its HELLO reports). An image is used only when its size and
SHA-256 match and its model hash is that of apps/<app>/generated now: a stale image is refused
with one line, never flashed silently. A manifest is read as hostile input (size limit, types
and ranges checked, paths kept inside release/).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from patchcam import paths
from patchcam.download import sha256_of
from patchcam.paths import REPO

RELEASE = REPO / "release"
MANIFEST_NAME = "manifest.json"
FORMAT = 1
MAX_MANIFEST_BYTES = 1 << 20
MAX_IMAGE_BYTES = 1 << 20  # each image stays well under 1 MB
MAX_IMAGES = 64
BOARDS = ("disco_f746ng", "nano33ble_sense")  # the Mbed boards with a .bin image
NAME = re.compile(r"[a-z0-9_]{1,40}")


class ReleaseError(RuntimeError):
    """A manifest or image that cannot be used (one line saying why and what to do)."""


@dataclass(frozen=True)
class Entry:
    app: str
    board: str
    file: str
    model_hash: int
    bytes: int
    sha256: str
    flash_bytes: int
    ram_bytes: int

    def to_json(self) -> dict:
        d = asdict(self)
        d["model_hash"] = f"0x{self.model_hash:08x}"
        return d


def model_hash(app: str, apps_dir: Path | None = None) -> int:
    """PC_APP_MODEL_HASH of apps/<app>/generated/app_config.h."""
    header = (apps_dir or REPO / "apps") / app / "generated" / "app_config.h"
    try:
        text = header.read_text(errors="replace")
    except OSError:
        raise ReleaseError(f"{app}: no {header} (export the app's model first)") from None
    m = re.search(r"#define\s+PC_APP_MODEL_HASH\s+0x([0-9a-fA-F]{1,8})u?", text)
    if m is None:
        raise ReleaseError(f"{header}: no PC_APP_MODEL_HASH")
    return int(m.group(1), 16)


def _field(d: dict, key: str, kind: type, where: str):
    v = d.get(key)
    if not isinstance(v, kind) or isinstance(v, bool):
        raise ReleaseError(f"{where}: {key} must be a {kind.__name__}")
    return v


def _entry(d: object, i: int, root: Path) -> Entry:
    where = f"manifest image {i}"
    if not isinstance(d, dict):
        raise ReleaseError(f"{where}: not an object")
    app = _field(d, "app", str, where)
    board = _field(d, "board", str, where)
    if not NAME.fullmatch(app):
        raise ReleaseError(f"{where}: bad app name {app[:60]!r}")
    if board not in BOARDS:
        raise ReleaseError(f"{where}: unknown board {board[:60]!r} (one of {', '.join(BOARDS)})")
    file = _field(d, "file", str, where)
    try:
        paths.inside(root, file, "image file")
    except paths.UnsafePath as e:
        raise ReleaseError(f"{where}: {e}") from None
    h = _field(d, "model_hash", str, where)
    if not re.fullmatch(r"0x[0-9a-f]{8}", h):
        raise ReleaseError(f"{where}: model_hash must be 0x and 8 hex digits")
    sha = _field(d, "sha256", str, where)
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ReleaseError(f"{where}: sha256 must be 64 hex digits")
    sizes = [_field(d, k, int, where) for k in ("bytes", "flash_bytes", "ram_bytes")]
    if not 0 < sizes[0] <= MAX_IMAGE_BYTES or not all(0 <= s <= 1 << 24 for s in sizes[1:]):
        raise ReleaseError(f"{where}: sizes out of range (an image is at most "
                           f"{MAX_IMAGE_BYTES:,} bytes)")
    return Entry(app, board, file, int(h, 16), sizes[0], sha, sizes[1], sizes[2])


def load_manifest(path: Path) -> tuple[str, list[Entry]]:
    """(source commit, entries) of a manifest; ReleaseError for anything malformed."""
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ReleaseError(f"{path}: over {MAX_MANIFEST_BYTES:,} bytes")
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ReleaseError(f"{path}: cannot read it ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReleaseError(f"{path}: not a format-{FORMAT} patchcam manifest")
    commit = data.get("source_commit")
    if not isinstance(commit, str) or not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise ReleaseError(f"{path}: source_commit must be a 40-hex commit")
    images = data.get("images")
    if not isinstance(images, list) or len(images) > MAX_IMAGES:
        raise ReleaseError(f"{path}: images must be a list of at most {MAX_IMAGES}")
    entries = [_entry(d, i, path.parent) for i, d in enumerate(images)]
    seen = set()
    for e in entries:
        if (e.app, e.board) in seen:
            raise ReleaseError(f"{path}: {e.app} for {e.board} is listed twice")
        seen.add((e.app, e.board))
    return commit, entries


def verify(entry: Entry, root: Path, apps_dir: Path | None = None) -> Path:
    """The image file of entry, when it is there, intact and built from the app's current
    model; else ReleaseError saying which."""
    f = paths.inside(root, entry.file, "image file")
    if not f.is_file():
        raise ReleaseError(f"{entry.file} is listed in the manifest but missing")
    if f.stat().st_size != entry.bytes or sha256_of(f) != entry.sha256:
        raise ReleaseError(f"{entry.file}: size or SHA-256 differs from the manifest")
    now = model_hash(entry.app, apps_dir)
    if now != entry.model_hash:
        raise ReleaseError(f"{entry.file} was built from model 0x{entry.model_hash:08x}, but "
                           f"apps/{entry.app}/generated is 0x{now:08x}: stale, rebuild it "
                           "(make release)")
    return f


def check(manifest: Path | None = None, apps_dir: Path | None = None) -> list[Entry]:
    """Every image of the manifest verified (ReleaseError on the first problem)."""
    path = manifest or RELEASE / MANIFEST_NAME
    if not path.is_file():
        raise ReleaseError(f"no {path}: no prebuilt images yet (make release builds them)")
    _commit, entries = load_manifest(path)
    for e in entries:
        verify(e, path.parent, apps_dir)
    return entries


def find_prebuilt(app: str, board: str, manifest: Path | None = None,
                  apps_dir: Path | None = None) -> tuple[Entry, Path] | None:
    """(entry, image) for app on board when the manifest lists it; None when there is no
    manifest or no such image. ReleaseError when it is listed but cannot be used."""
    path = manifest or RELEASE / MANIFEST_NAME
    if not path.is_file():
        return None
    _commit, entries = load_manifest(path)
    for e in entries:
        if e.app == app and e.board == board:
            return e, verify(e, path.parent, apps_dir)
    return None


def write_manifest(entries: list[Entry], commit: str, path: Path) -> None:
    data = {"format": FORMAT, "source_commit": commit,
            "images": [e.to_json() for e in entries]}
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def build_release(apps: list[str], boards: list[str], jobs: int | None = None,
                  out: Path = RELEASE) -> list[Entry]:
    """Build every app for every board (make firmware), copy the images into out/<board>/ and
    write out/manifest.json listing exactly the images written."""
    from patchcam.targets import flash
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    if not re.fullmatch(r"[0-9a-f]{40}", head):
        raise ReleaseError("not a git checkout: the manifest names the source commit")
    entries = []
    for board in boards:
        spec = flash.board_spec(board)
        for app in apps:
            image = flash.build(app, spec, None, jobs)
            if image.bin.stat().st_size > MAX_IMAGE_BYTES:
                raise ReleaseError(f"{image.bin} is over {MAX_IMAGE_BYTES:,} bytes")
            dest = out / board / f"{app}.bin"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image.bin, dest)
            entries.append(Entry(app, board, f"{board}/{app}.bin", model_hash(app),
                                 dest.stat().st_size, sha256_of(dest), image.flash_bytes,
                                 image.ram_bytes))
    write_manifest(entries, head, out / MANIFEST_NAME)
    return entries


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m patchcam.targets.release",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("build", "check"))
    p.add_argument("--app", action="append", help="default: every app under apps/")
    p.add_argument("--board", action="append", choices=BOARDS, help="default: both")
    p.add_argument("-j", "--jobs", type=int)
    a = p.parse_args(argv)
    from patchcam.targets.flash import FlashError
    try:
        if a.action == "check":
            entries = check()
            print(f"release: {len(entries)} images, all present and current")
            return 0
        apps = a.app or sorted(d.name for d in (REPO / "apps").iterdir()
                               if (d / "generated" / "app_config.h").is_file())
        entries = build_release(apps, a.board or list(BOARDS), a.jobs)
        print(f"release: {len(entries)} images and {RELEASE / MANIFEST_NAME}")
    except (ReleaseError, FlashError) as e:
        print(f"release: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
