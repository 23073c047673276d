#!/usr/bin/env bash
# One-time (and idempotent) set-up: Debian packages for the firmware, and .venv with the
# Python dependencies pinned in pyproject.toml. `make` runs this before any other target.
# WINDOW=1: the viewer window's OpenCV (the `window` extra); BOARDS=1: the packages the real
# boards' Mbed builds need (`make setup WINDOW=1 BOARDS=1`).
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES="gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
# gcc -m32 (x86-64 hosts): the 32-bit build of the app loop that tests/test_app_fuzz.py fuzzes
if [ "$(uname -m)" = x86_64 ]; then DEB_PACKAGES="$DEB_PACKAGES gcc-multilib"; fi
missing=""
command -v arm-none-eabi-gcc >/dev/null || missing="gcc-arm-none-eabi libnewlib-arm-none-eabi"
[ -e /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -e /usr/lib/arm-none-eabi/lib/libc.a ] \
  || missing="$missing libnewlib-arm-none-eabi"
command -v qemu-system-arm >/dev/null || missing="$missing qemu-system-arm"
if [ "$(uname -m)" = x86_64 ] && ! echo 'int main(void){return 0;}' \
    | gcc -m32 -x c - -o /dev/null 2>/dev/null; then missing="$missing gcc-multilib"; fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: $DEB_PACKAGES"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $DEB_PACKAGES
  else
    echo "setup: missing tools ($missing). Install them, then run make again:" >&2
    echo "  sudo apt-get install --no-install-recommends $DEB_PACKAGES" >&2
    echo "  (other systems: the Arm GNU toolchain 'arm-none-eabi' with newlib, and QEMU's" \
         "qemu-system-arm)" >&2
    exit 1
  fi
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: patchcam needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1));" \
       "set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
echo "setup: installing Python packages (pinned in pyproject.toml)"
.venv/bin/python -m pip install -q --upgrade pip
if [ -n "${WINDOW:-}" ]; then
  # The viewer's window: opencv-python (GUI) at the version of the pinned headless wheel. Both
  # wheels own the same cv2 files, so the GUI wheel is reinstalled last to be the one on disk.
  .venv/bin/python -m pip install -q -e '.[test,window]'
  cv=$(.venv/bin/python -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb"));
print(next(r for r in d["project"]["optional-dependencies"]["window"]
           if r.startswith("opencv-python==")))')
  .venv/bin/python -m pip install -q --force-reinstall --no-deps "$cv"
  if ! .venv/bin/python -c 'import cv2' 2>/dev/null; then
    echo "setup: OpenCV's GUI build needs the system's GL and GLib libraries:" >&2
    echo "  sudo apt-get install --no-install-recommends libgl1 libglib2.0-0" >&2
    exit 1
  fi
  # the baselines' detectors and cascade files are still there (tests/test_setup_extras.py)
  .venv/bin/python -c 'import cv2; cv2.HOGDescriptor_getDefaultPeopleDetector();
assert not cv2.CascadeClassifier(cv2.data.haarcascades
    + "haarcascade_frontalface_default.xml").empty()'
  echo "setup: $cv installed for the viewer window"
else
  .venv/bin/python -m pip install -q -e '.[test]'
fi
if [ -n "${BOARDS:-}" ]; then
  # What `make firmware` / `make flash` need for the Mbed boards (docs/boards.md): the Arm C++
  # library (Mbed OS is C++), CMake >= 3.19, Ninja and git.
  board_pkgs="gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib cmake ninja-build git"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing the board build's packages: $board_pkgs"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $board_pkgs
  else
    echo "setup: the board builds need: sudo apt-get install --no-install-recommends $board_pkgs"
  fi
fi
echo "setup: done"
