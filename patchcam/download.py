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
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import urllib.response
import zipfile
from pathlib import Path

from tqdm import tqdm

from patchcam import paths

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


def digest_of(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (downloads can be hundreds of MB)."""
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    return digest_of(path, "sha256")


def _pins(sha256: str | None, md5: str | None) -> list[tuple[str, str, str]]:
    """(hashlib name, display name, expected hex) of each digest the caller pinned."""
    return [(algo, name, want.lower()) for algo, name, want in
            (("sha256", "SHA-256", sha256), ("md5", "MD5", md5)) if want is not None]


def _mismatch(path: Path, sha256: str | None, md5: str | None) -> str | None:
    for algo, name, want in _pins(sha256, md5):
        got = digest_of(path, algo)
        if got != want:
            return f"{name} {got[:16]}... is not the pinned {want[:16]}..."
    return None


def _verified(part: Path, dest: Path, url: str, sha256: str | None, md5: str | None) -> Path:
    """Rename the complete .part to dest, after its hash check when one is pinned."""
    if (why := _mismatch(part, sha256, md5)) is not None:
        part.unlink()
        raise DownloadError(f"{url}: {why}; the download was deleted")
    part.rename(dest)
    return dest


def download(url: str, dest: str | Path, headers: dict[str, str] | None = None,
             sha256: str | None = None, md5: str | None = None) -> Path:
    """Fetch url (https only) to dest. A partial `dest.part` from an interrupted run is
    resumed with an HTTP Range request; an existing dest is kept as is. Pinned digests are
    checked either way: sha256, or md5 where the publisher lists only that (it catches a
    corrupt or truncated file, not a deliberately forged one)."""
    check_url(url)
    dest = Path(dest)
    if dest.is_file():
        if (why := _mismatch(dest, sha256, md5)) is not None:
            raise DownloadError(f"{dest}: {why} for {url}; delete it to download it again")
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
            return _verified(part, dest, url, sha256, md5)
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
    return _verified(part, dest, url, sha256, md5)


def inside(root: str | Path, name: object, what: str = "path") -> Path:
    """root / name for a relative name read from a file (a json's file_name, a zip member);
    DownloadError where patchcam.paths.inside refuses it (absolute, drive, `..`, NUL, a
    symbolic link out of root, root itself)."""
    try:
        return paths.inside(root, name, what)
    except paths.UnsafePath as e:
        raise DownloadError(str(e)) from None


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


def git_head(tree: Path) -> str | None:
    """The commit checked out in tree (40 hex digits), or None when it is not a git checkout
    (or git is missing)."""
    if shutil.which("git") is None or not (tree / ".git").exists():
        return None
    res = subprocess.run(["git", "-C", str(tree), "rev-parse", "--verify", "HEAD^{commit}"],
                         capture_output=True, text=True)
    head = res.stdout.strip().lower()
    return head if res.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", head) else None


def verify_pinned(tree: Path, commit: str, what: str) -> Path:
    """tree, when it is a git checkout of exactly commit; else CloneError saying what to do."""
    head = git_head(tree)
    if head != commit.lower():
        found = f"commit {head[:12]}" if head else "no git checkout"
        raise CloneError(f"{tree} holds {found}, not {what} at the pinned {commit[:12]}: "
                         f"remove it (rm -rf {tree}) and run again")
    return tree


def clone_pinned(url: str, dest: Path, commit: str, what: str) -> Path:
    """Clone url at commit into dest (blobless, once): the third-party source trees a build
    needs and the repository never holds (Mbed CE, MicroPython).

    The clone is made in dest.part and renamed to dest only once the checked-out commit is
    verified to be `commit`: a failed or interrupted clone or checkout never leaves a tree at
    dest that a later run would accept. An existing dest is verified the same way."""
    check_url(url)
    if not re.fullmatch(r"[0-9a-fA-F]{40}", commit):
        raise CloneError(f"{what}: the pin must be a full 40-digit commit, not {commit!r}")
    by_hand = f"git clone {url} {dest} && git -C {dest} checkout {commit}"
    if dest.exists():
        return verify_pinned(dest, commit, what)
    if shutil.which("git") is None:
        raise CloneError(f"no {what} and no git to fetch it: install git, or run {by_hand}")
    print(f"fetching {what} into {dest} (once)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    try:
        for cmd in (["git", "clone", "--filter=blob:none", "--no-checkout", url, str(part)],
                    ["git", "-C", str(part), "checkout", "--quiet", "--detach", commit]):
            if subprocess.run(cmd).returncode != 0:
                raise CloneError(f"`{' '.join(cmd)}` failed; fetch {what} yourself: {by_hand}")
        head = git_head(part)
        if head != commit.lower():
            raise CloneError(f"{what}: the checkout is at {head or 'no commit'}, not the pinned "
                             f"{commit}; fetch it yourself: {by_hand}")
        part.rename(dest)
    finally:
        shutil.rmtree(part, ignore_errors=True)
    return dest
