"""Prebuilt images: `release/manifest.json` and the files it lists, so that `make flash` works
without a toolchain when the app's model is the one the image was built from.

    python -m patchcam.targets.release build [--app vww ...] [--board disco_f746ng ...]
    python -m patchcam.targets.release check          # every listed file is there and current

Per app, four images (BOARDS):

    disco_f746ng/<app>.bin                the STM32F746G-DISCO (copied to the ST-LINK drive)
    nano33ble_sense/<app>.bin, <app>.hex  the Nano 33 BLE Sense (bossac; the .hex for other
                                          flashers: it carries the 0x10000 start address)
    openmv_h7/<app>/                      the OpenMV Cam H7's drive folder: main.py,
                                          pcmodel.mpy (armv7emsp), the .tflite, the scripts
    openmv_h7_ml/<app>/                   the `ml`-module fallback folder (no compiler, offline)

Every image is built from apps/<app>/generated as committed: the Mbed images with `make
firmware`, the OpenMV folders with `patchcam openmv ... --schedule shipped` (the same generated
C, so the same model hash in HELLO). `build` refuses a tree whose firmware/ or
apps/<app>/generated differ from the commit it would name. Building some apps or boards
replaces only their entries: `make release APP=mask_detect` after mask_detect's model changed.

Manifest (JSON, format 2), written by `build`, read by `make flash` and the tests:

    {"format": 2,
     "images": [{"app": "vww", "board": "nano33ble_sense", "model_hash": "0x1a04c3c5",
                 "source_commit": "<the 40-hex commit the image was built from>",
                 "flash_bytes": 226000, "ram_bytes": 103040,
                 "files": [{"file": "nano33ble_sense/vww.bin", "bytes": 161440,
                            "sha256": "<64 hex>"}, {"file": "nano33ble_sense/vww.hex", ...}]}]}

`file` is relative to release/; the first file of an Mbed board's image is what `make flash`
writes. `model_hash` is PC_APP_MODEL_HASH of the apps/<app>/generated the image was built
from (what its HELLO reports). flash_bytes / ram_bytes: the image's flash and static RAM
(`arm-none-eabi-size`, as `make firmware` prints them); for the OpenMV folders the bytes
copied to the camera's drive and, for openmv_h7, the model's arena (frame-buffer memory on
the camera; 0 for openmv_h7_ml, whose arena OpenMV's `ml` module plans).
An image is used only when every file's size and SHA-256 match and its model hash is that of
apps/<app>/generated now: a stale image is refused with one line, never flashed silently. A
manifest is read as hostile input (size limit, types and ranges checked, paths kept inside
release/).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from patchcam import paths
from patchcam.download import sha256_of
from patchcam.paths import REPO

RELEASE = REPO / "release"
MANIFEST_NAME = "manifest.json"
FORMAT = 2
MAX_MANIFEST_BYTES = 1 << 20
MAX_IMAGE_BYTES = 1 << 20  # each file stays well under 1 MB
MAX_IMAGES = 64
MAX_FILES = 16  # per image
MBED_BOARDS = ("disco_f746ng", "nano33ble_sense")
OPENMV_BOARDS = ("openmv_h7", "openmv_h7_ml")  # our model as pcmodel.mpy / OpenMV's `ml`
BOARDS = (*MBED_BOARDS, *OPENMV_BOARDS)
NAME = re.compile(r"[a-z0-9_]{1,40}")


class ReleaseError(RuntimeError):
    """A manifest or image that cannot be used (one line saying why and what to do)."""


@dataclass(frozen=True)
class File:
    file: str  # relative to release/
    bytes: int
    sha256: str

    @staticmethod
    def of(path: Path, root: Path) -> File:
        return File(path.relative_to(root).as_posix(), path.stat().st_size, sha256_of(path))


@dataclass(frozen=True)
class Entry:
    app: str
    board: str
    model_hash: int
    source_commit: str
    files: tuple[File, ...]
    flash_bytes: int
    ram_bytes: int

    @property
    def file(self) -> str:
        """The image `make flash` writes to an Mbed board (the first file)."""
        return self.files[0].file

    def to_json(self) -> dict:
        return {"app": self.app, "board": self.board,
                "model_hash": f"0x{self.model_hash:08x}", "source_commit": self.source_commit,
                "flash_bytes": self.flash_bytes, "ram_bytes": self.ram_bytes,
                "files": [{"file": f.file, "bytes": f.bytes, "sha256": f.sha256}
                          for f in self.files]}


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


def _file(d: object, where: str, root: Path) -> File:
    if not isinstance(d, dict):
        raise ReleaseError(f"{where}: not an object")
    file = _field(d, "file", str, where)
    try:
        paths.inside(root, file, "image file")
    except paths.UnsafePath as e:
        raise ReleaseError(f"{where}: {e}") from None
    sha = _field(d, "sha256", str, where)
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ReleaseError(f"{where}: sha256 must be 64 hex digits")
    size = _field(d, "bytes", int, where)
    if not 0 < size <= MAX_IMAGE_BYTES:
        raise ReleaseError(f"{where}: bytes out of range (a file is at most "
                           f"{MAX_IMAGE_BYTES:,} bytes)")
    return File(file, size, sha)


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
    h = _field(d, "model_hash", str, where)
    if not re.fullmatch(r"0x[0-9a-f]{8}", h):
        raise ReleaseError(f"{where}: model_hash must be 0x and 8 hex digits")
    commit = _field(d, "source_commit", str, where)
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise ReleaseError(f"{where}: source_commit must be a 40-hex commit")
    sizes = [_field(d, k, int, where) for k in ("flash_bytes", "ram_bytes")]
    if not all(0 <= s <= 1 << 24 for s in sizes):
        raise ReleaseError(f"{where}: flash_bytes / ram_bytes out of range")
    files = d.get("files")
    if not isinstance(files, list) or not 0 < len(files) <= MAX_FILES:
        raise ReleaseError(f"{where}: files must be a list of 1 to {MAX_FILES}")
    return Entry(app, board, int(h, 16), commit,
                 tuple(_file(f, f"{where} file {j}", root) for j, f in enumerate(files)),
                 sizes[0], sizes[1])


def load_manifest(path: Path) -> list[Entry]:
    """The entries of a manifest; ReleaseError for anything malformed."""
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ReleaseError(f"{path}: over {MAX_MANIFEST_BYTES:,} bytes")
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ReleaseError(f"{path}: cannot read it ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReleaseError(f"{path}: not a format-{FORMAT} patchcam manifest")
    images = data.get("images")
    if not isinstance(images, list) or len(images) > MAX_IMAGES:
        raise ReleaseError(f"{path}: images must be a list of at most {MAX_IMAGES}")
    entries = [_entry(d, i, path.parent) for i, d in enumerate(images)]
    seen, files = set(), set()
    for e in entries:
        if (e.app, e.board) in seen:
            raise ReleaseError(f"{path}: {e.app} for {e.board} is listed twice")
        seen.add((e.app, e.board))
        for f in e.files:
            if f.file in files:
                raise ReleaseError(f"{path}: {f.file} is listed twice")
            files.add(f.file)
    return entries


def verify(entry: Entry, root: Path, apps_dir: Path | None = None) -> list[Path]:
    """The files of entry, when they are all there, intact and built from the app's current
    model; else ReleaseError saying which."""
    found = []
    for ref in entry.files:
        f = paths.inside(root, ref.file, "image file")
        if not f.is_file():
            raise ReleaseError(f"{ref.file} is listed in the manifest but missing")
        if f.stat().st_size != ref.bytes or sha256_of(f) != ref.sha256:
            raise ReleaseError(f"{ref.file}: size or SHA-256 differs from the manifest")
        found.append(f)
    now = model_hash(entry.app, apps_dir)
    if now != entry.model_hash:
        raise ReleaseError(f"{entry.file} was built from model 0x{entry.model_hash:08x}, but "
                           f"apps/{entry.app}/generated is 0x{now:08x}: stale, rebuild it "
                           f"(make release APP={entry.app})")
    return found


def check(manifest: Path | None = None, apps_dir: Path | None = None) -> list[Entry]:
    """Every image of the manifest verified (ReleaseError on the first problem)."""
    path = manifest or RELEASE / MANIFEST_NAME
    if not path.is_file():
        raise ReleaseError(f"no {path}: no prebuilt images yet (make release builds them)")
    entries = load_manifest(path)
    for e in entries:
        verify(e, path.parent, apps_dir)
    return entries


def find_prebuilt(app: str, board: str, manifest: Path | None = None,
                  apps_dir: Path | None = None) -> tuple[Entry, list[Path]] | None:
    """(entry, its files) for app on board when the manifest lists it; None when there is no
    manifest or no such image. ReleaseError when it is listed but cannot be used."""
    path = manifest or RELEASE / MANIFEST_NAME
    if not path.is_file():
        return None
    for e in load_manifest(path):
        if e.app == app and e.board == board:
            return e, verify(e, path.parent, apps_dir)
    return None


def write_manifest(entries: list[Entry], path: Path) -> None:
    order = {b: i for i, b in enumerate(BOARDS)}
    entries = sorted(entries, key=lambda e: (order[e.board], e.app))
    data = {"format": FORMAT, "images": [e.to_json() for e in entries]}
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


# ---- building -----------------------------------------------------------------------------
def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                          text=True).stdout.strip()


def source_commit(app: str) -> str:
    """HEAD, when what goes into app's images (firmware/, apps/<app>/) is as committed there;
    else ReleaseError (the manifest would name a commit the images do not come from)."""
    head = _git("rev-parse", "HEAD")
    if not re.fullmatch(r"[0-9a-f]{40}", head):
        raise ReleaseError("not a git checkout: the manifest names the source commit")
    dirty = _git("status", "--porcelain", "--", "firmware", f"apps/{app}")
    if dirty:
        first = dirty.splitlines()[0].split(maxsplit=1)[-1]  # "XY path"; _git strips X's space
        raise ReleaseError(f"uncommitted changes under firmware/ or apps/{app}/ ({first} ...): "
                           "commit them, or build from a clean checkout, so the manifest's "
                           "source commit is what the images are built from")
    return head


def _replace_files(dest: Path, files: list[tuple[Path, str]]) -> list[Path]:
    """Copy (source, name) pairs into dest, which holds nothing else afterwards."""
    if dest.is_dir():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for src, name in files:
        shutil.copyfile(src, dest / name)
    return [dest / name for _src, name in files]


def build_mbed(app: str, board: str, out: Path, mbed_os: str | None,
               jobs: int | None) -> tuple[list[Path], int, int]:
    """make firmware for app on board; the image(s) copied to out/<board>/; (files, flash,
    RAM)."""
    from patchcam.targets import flash
    image = flash.build(app, flash.board_spec(board), mbed_os, jobs)
    dest = out / board
    dest.mkdir(parents=True, exist_ok=True)
    files = [dest / f"{app}.bin"]
    shutil.copyfile(image.bin, files[0])
    if board == "nano33ble_sense":  # bossac writes the .bin; other flashers take the .hex
        files.append(dest / f"{app}.hex")
        subprocess.run(["arm-none-eabi-objcopy", "-O", "ihex", str(image.elf), str(files[1])],
                       check=True)
    return files, image.flash_bytes, image.ram_bytes


def build_openmv(app: str, board: str, out: Path,
                 micropython: Path | None) -> tuple[list[Path], int, int]:
    """The OpenMV drive folder (openmv_h7: pcmodel.mpy for armv7emsp, needs a MicroPython tree
    and arm-none-eabi-gcc; openmv_h7_ml: the `ml`-module folder, offline) from the app's
    shipped generated C, copied to out/<board>/<app>/; (files, drive bytes, our arena: 0 for
    the `ml` folder)."""
    from patchcam.targets import openmv
    work = REPO / "build" / "release" / "openmv" / app
    openmv.generate(app, work, "shipped")
    if board == "openmv_h7":
        folder = openmv.drive_folder(work, openmv.build_natmod(work, "armv7emsp", micropython))
    else:
        folder = openmv.ml_drive_folder(work)
    files = _replace_files(out / board / app,
                           [(f, f.name) for f in sorted(folder.iterdir()) if f.is_file()])
    arena = 0  # openmv_h7_ml: TensorFlow Lite Micro plans its own arena on the camera
    if board == "openmv_h7":
        arena = int(re.search(r"ARENA_BYTES = (\d+)", (work / "pcapp.py").read_text())[1])
    return files, sum(f.stat().st_size for f in files), arena


def build_release(apps: list[str], boards: list[str], jobs: int | None = None,
                  mbed_os: str | None = None, micropython: Path | None = None,
                  out: Path = RELEASE) -> tuple[list[Entry], list[str]]:
    """Build every app for every board, copy the images into out/ and write out/manifest.json:
    the entries built now replace those of the same app and board, the others stay.
    Returns (the entries built, one line per image that could not be built)."""
    from patchcam.targets.flash import FlashError
    from patchcam.targets.openmv import OpenMVError
    commits = {app: source_commit(app) for app in apps}
    manifest = out / MANIFEST_NAME
    kept = load_manifest(manifest) if manifest.is_file() else []
    built, failed = [], []
    for board in boards:
        for app in apps:
            try:
                if board in MBED_BOARDS:
                    files, fl, ram = build_mbed(app, board, out, mbed_os, jobs)
                else:
                    files, fl, ram = build_openmv(app, board, out, micropython)
                for f in files:
                    if f.stat().st_size > MAX_IMAGE_BYTES:
                        raise ReleaseError(f"{f} is over {MAX_IMAGE_BYTES:,} bytes")
            except (FlashError, OpenMVError, ReleaseError, subprocess.CalledProcessError) as e:
                failed.append(f"{app} for {board}: {str(e).splitlines()[0]}")
                continue
            built.append(Entry(app, board, model_hash(app), commits[app],
                               tuple(File.of(f, out) for f in files), fl, ram))
            print(f"release: {app} for {board}: "
                  + ", ".join(f"{f.relative_to(out)} {f.stat().st_size:,} B" for f in files)
                  if len(files) <= 2 else
                  f"release: {app} for {board}: {len(files)} files in "
                  f"{files[0].parent.relative_to(out)}/, {fl:,} B")
    new = {(e.app, e.board) for e in built}
    out.mkdir(parents=True, exist_ok=True)
    write_manifest([e for e in kept if (e.app, e.board) not in new] + built, manifest)
    return built, failed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m patchcam.targets.release",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("build", "check"))
    p.add_argument("--app", action="append", help="default: every app under apps/")
    p.add_argument("--board", action="append", choices=BOARDS, help="default: all four")
    p.add_argument("--mbed-os", help="Mbed CE tree (as make firmware's MBED_OS_PATH)")
    p.add_argument("--micropython", type=Path, help="MicroPython tree (as make openmv's)")
    p.add_argument("-j", "--jobs", type=int)
    a = p.parse_args(argv)
    try:
        if a.action == "check":
            entries = check()
            n = sum(len(e.files) for e in entries)
            print(f"release: {len(entries)} images ({n} files), all present and current")
            return 0
        apps = a.app or sorted(d.name for d in (REPO / "apps").iterdir()
                               if (d / "generated" / "app_config.h").is_file())
        built, failed = build_release(apps, a.board or list(BOARDS), a.jobs, a.mbed_os,
                                      a.micropython)
        print(f"release: {len(built)} images built, {RELEASE / MANIFEST_NAME} updated")
    except ReleaseError as e:
        print(f"release: {e}", file=sys.stderr)
        return 2
    for line in failed:
        print(f"release: not built: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
