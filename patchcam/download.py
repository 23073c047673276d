"""Downloads for the dataset prepare scripts: resumable, with a progress bar, standard library
only (urllib). Used by `datasets/prepare_*.py`; the tests never touch the network."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

CHUNK = 1 << 20


def download(url: str, dest: str | Path, headers: dict[str, str] | None = None) -> Path:
    """Fetch url to dest. A partial `dest.part` from an interrupted run is resumed with an
    HTTP Range request; an existing dest is kept as is."""
    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "patchcam", **(headers or {})})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416:  # the .part is already complete
            part.rename(dest)
            return dest
        raise SystemExit(f"error: cannot download {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise SystemExit(f"error: cannot download {url}: {e.reason} (no internet? pass local "
                         "paths instead, see datasets/README.md)") from None
    with resp:
        if have and resp.status != 206:  # the server ignored Range: start again
            have = 0
        total = int(resp.headers.get("Content-Length", 0)) + have
        with part.open("ab" if have else "wb") as f, tqdm(
                total=total or None, initial=have, unit="B", unit_scale=True,
                desc=dest.name, leave=False) as bar:
            while chunk := resp.read(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
    part.rename(dest)
    return dest


def unzip(archive: str | Path, dest: str | Path, members: list[str] | None = None) -> Path:
    """Extract a zip (only `members` when given) into dest; refuses paths leaving dest."""
    dest = Path(dest)
    with zipfile.ZipFile(archive) as z:
        for m in members or z.namelist():
            target = (dest / m).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise SystemExit(f"error: {archive}: unsafe path {m!r} in the archive")
            if m.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(m) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)
    return dest


class CloneError(RuntimeError):
    """A pinned source tree could not be fetched (the message says how to do it by hand)."""


def clone_pinned(url: str, dest: Path, commit: str, what: str) -> Path:
    """Clone url at commit into dest (blobless, once): the third-party source trees a build
    needs and the repository never holds (Mbed CE, MicroPython)."""
    by_hand = f"git clone {url} {dest} && git -C {dest} checkout {commit}"
    if shutil.which("git") is None:
        raise CloneError(f"no {what} and no git to fetch it: install git, or run {by_hand}")
    print(f"fetching {what} into {dest} (once)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for cmd in (["git", "clone", "--filter=blob:none", url, str(dest)],
                ["git", "-C", str(dest), "checkout", "--quiet", commit]):
        if subprocess.run(cmd).returncode != 0:
            raise CloneError(f"`{' '.join(cmd)}` failed; fetch {what} yourself: {by_hand}")
    return dest
