"""Where things live in a patchcam checkout: the one definition every module uses."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # the checkout (apps/, firmware/, build/, ...)
APPS = REPO / "apps"
BUILD = REPO / "build"
FIRMWARE = REPO / "firmware"
TEMPLATES = Path(__file__).resolve().parent / "templates"  # Jinja templates of generated files


def file_stem(name: str, fallback: str = "model") -> str:
    """A graph's or app's name as one file or folder name under build/: ASCII letters,
    digits, `-`, `_` and `.` (others become `_`), no leading dot (so never `..`), at most
    80 characters. Names come from model files, which may be hostile (SECURITY.md)."""
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
    return stem.lstrip(".")[:80] or fallback
