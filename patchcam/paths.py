"""Where things live in a patchcam checkout: the one definition every module uses."""

from pathlib import Path, PurePosixPath, PureWindowsPath

REPO = Path(__file__).resolve().parents[1]  # the checkout (apps/, firmware/, build/, ...)
APPS = REPO / "apps"
BUILD = REPO / "build"
FIRMWARE = REPO / "firmware"
TEMPLATES = Path(__file__).resolve().parent / "templates"  # Jinja templates of generated files


def shown(path: Path) -> str:
    """A path as messages and reports show it: relative to the checkout when inside it (an
    app.toml given by path may live anywhere)."""
    path = Path(path)
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def file_stem(name: str, fallback: str = "model") -> str:
    """A graph's or app's name as one file or folder name under build/: ASCII letters,
    digits, `-`, `_` and `.` (others become `_`), no leading dot (so never `..`), at most
    80 characters. Names come from model files, which may be hostile (SECURITY.md)."""
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
    return stem.lstrip(".")[:80] or fallback


class UnsafePath(ValueError):
    """A relative path read from a file that would leave the folder it belongs to."""


def inside(root: str | Path, name: object, what: str = "path", *,
           linked_file: bool = False) -> Path:
    """root / name for a relative name read from a file (a json's file_name, a zip member):
    UnsafePath unless it is a non-empty relative path with no NUL, no drive, no `..`, that
    resolves (symbolic links followed) to something inside root, not root itself.

    linked_file: the last part may be a symbolic link to a file elsewhere, placed there by
    whoever laid out the folder (datasets/prepare_vww.py links the COCO photos it labels);
    the folders on the way must still stay inside root. For reading; a file about to be
    written never follows a link out (the default).

    The one containment check: the downloads (patchcam.download) and the dataset readers
    (patchcam.training.readers) use it."""
    text = name if isinstance(name, str) else ""
    bad = (not text or "\x00" in text or PurePosixPath(text).is_absolute()
           or PureWindowsPath(text).drive or PureWindowsPath(text).is_absolute()
           or ".." in PureWindowsPath(text).parts)
    root = Path(root)
    target = root / text
    if not bad:
        real_root = root.resolve()
        real = target.parent.resolve() / target.name if linked_file else target.resolve()
        bad = real == real_root or not real.is_relative_to(real_root)
    if bad:
        raise UnsafePath(f"unsafe {what} {str(name)[:200]!r}: it must stay inside {root}")
    return target
