"""Downloads for the dataset prepare scripts and pinned models: resumable, with a progress
bar, standard library only (urllib). Used by `datasets/prepare_*.py`, the teacher and the
imported-model commands; the tests never touch the network.

What a download may do is decided here, once (SECURITY.md):

* only `https://` addresses, redirects included (`check_url`); anything else stops with one
  line before a byte is fetched;
* bytes go to `<dest>.part`, which becomes `dest` only when complete and, where the caller
  pins a SHA-256, only when the hash matches (a mismatch deletes the `.part`);
* a path taken from a downloaded or user file (a json's `file_name`, a zip member) is
  joined to its folder by `inside`, which refuses absolute paths, drive letters, `..`, NUL
  and anything else that would land outside the folder.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import urllib.response
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from tqdm import tqdm

CHUNK = 1 << 20


class DownloadError(SystemExit):
    """A refused or failed download, or an unsafe path: one line. A SystemExit so the
    prepare scripts stop with the line and no traceback; callers may catch it."""

    def __init__(self, message: str) -> None:
        super().__init__(f"error: {message}")
        self.message = message


def check_url(url: str) -> str:
    """url, if it is an https address with a host; else DownloadError. Why only https: a
    plain-http or ftp download can be altered on the way, and file:// (or any other scheme)
    would read local files under a name chosen by a json."""
    parts = urllib.parse.urlsplit(str(url))
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise DownloadError(f"refusing to download {str(url)[:200]!r}: only https:// "
                            "addresses are fetched")
    return url


class _HttpsRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to another https address (urllib would follow to http), and
    does not carry credentials (Authorization) to another host."""

    def redirect_request(self, req: urllib.request.Request, fp, code: int, msg: str, headers,
                         newurl: str) -> urllib.request.Request | None:
        check_url(newurl)
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        host = urllib.parse.urlsplit(req.full_url).hostname
        if new is not None and urllib.parse.urlsplit(newurl).hostname != host:
            new.remove_header("Authorization")
        return new


def _open(req: urllib.request.Request, timeout: float) -> urllib.response.addinfourl:
    """The one place that opens a connection (the tests replace it)."""
    return urllib.request.build_opener(_HttpsRedirects).open(req, timeout=timeout)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks (downloads can be hundreds of MB)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verified(part: Path, dest: Path, url: str, sha256: str | None) -> Path:
    """Rename the complete .part to dest, after its hash check when one is pinned."""
    if sha256 is not None:
        got = sha256_of(part)
        if got != sha256.lower():
            part.unlink()
            raise DownloadError(f"{url}: SHA-256 {got[:16]}... is not the pinned "
                                f"{sha256[:16]}...; the download was deleted")
    part.rename(dest)
    return dest


def download(url: str, dest: str | Path, headers: dict[str, str] | None = None,
             sha256: str | None = None) -> Path:
    """Fetch url (https only) to dest. A partial `dest.part` from an interrupted run is
    resumed with an HTTP Range request; an existing dest is kept as is (checked against
    sha256 when given)."""
    check_url(url)
    dest = Path(dest)
    if dest.is_file():
        if sha256 is not None and sha256_of(dest) != sha256.lower():
            raise DownloadError(f"{dest}: SHA-256 is not the pinned one for {url}; delete it "
                                "to download it again")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "patchcam", **(headers or {})})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = _open(req, timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416:  # the .part is already complete
            return _verified(part, dest, url, sha256)
        raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DownloadError(f"cannot download {url}: {e.reason} (no internet? pass local "
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
    if total and part.stat().st_size != total:
        raise DownloadError(f"{url}: got {part.stat().st_size} of {total} bytes; run again to "
                            "resume")
    return _verified(part, dest, url, sha256)


def inside(root: str | Path, name: object, what: str = "path") -> Path:
    """root / name for a relative name read from a file (a json's file_name, a zip member):
    DownloadError unless it is a non-empty relative path with no NUL, no drive, no `..`,
    that resolves (symbolic links followed) to something inside root, not root itself."""
    text = name if isinstance(name, str) else ""
    bad = (not text or "\x00" in text or PurePosixPath(text).is_absolute()
           or PureWindowsPath(text).drive or PureWindowsPath(text).is_absolute()
           or ".." in PureWindowsPath(text).parts)
    root = Path(root)
    target = root / text
    if bad or target.resolve() == root.resolve() or \
            not target.resolve().is_relative_to(root.resolve()):
        raise DownloadError(f"unsafe {what} {str(name)[:200]!r}: it must stay inside {root}")
    return target


def unzip(archive: str | Path, dest: str | Path, members: list[str] | None = None) -> Path:
    """Extract a zip (only `members` when given) into dest; refuses paths leaving dest."""
    dest = Path(dest)
    with zipfile.ZipFile(archive) as z:
        for m in members or z.namelist():
            target = inside(dest, m, f"path in {archive}:")
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
    check_url(url)
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
