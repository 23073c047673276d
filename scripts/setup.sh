#!/usr/bin/env bash
# One-time (and idempotent) set-up: Debian packages for the firmware, and .venv with the
# Python dependencies pinned in pyproject.toml. `make` runs this before any other target.
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
.venv/bin/python -m pip install -q -e '.[test]'
echo "setup: done"
