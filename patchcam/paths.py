"""Where things live in a patchcam checkout: the one definition every module uses."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # the checkout (apps/, firmware/, build/, ...)
APPS = REPO / "apps"
BUILD = REPO / "build"
FIRMWARE = REPO / "firmware"
TEMPLATES = Path(__file__).resolve().parent / "templates"  # Jinja templates of generated files
