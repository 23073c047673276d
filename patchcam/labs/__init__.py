"""`patchcam lab N` (`make lab N=<n>`): prepare what course lab N needs (docs/labs/), offline.

    make lab N=1               # checks the tools; build/labs/lab1/vww.toml, a vww copy to edit
    make lab N=2               # build/labs/lab2/vww.toml, the same for lab 2
    make lab N=3               # build/labs/lab3/requantise.py, the function to fill in
    make lab N=3 CHECK=1       # check it against the integer reference (patchcam.compiler.qmath)
    make lab N=3 TFLM=1        # vww on TensorFlow Lite Micro vs the integer reference
    make lab N=4               # build/labs/lab4/wakeword/app.toml and an example photo set
    make lab N=5               # checks QEMU and the Arm compiler

Nothing is downloaded and nothing outside build/labs/ is written; a file that is already
there (a student's edits) is never overwritten. PATCHCAM_LAB_FAST=1 makes the lab 4 set and
its training recipe tiny (what tests/test_labs.py runs); the figures that depend on the
trained weights then differ from the lab text, the others do not.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from patchcam.paths import REPO

# where the labs' files go: build/labs/ (PATCHCAM_LAB_DIR, relative to the repository root,
# moves it: the test of the labs uses build/test-labs/ and leaves a student's files alone)
LABS = REPO / os.environ.get("PATCHCAM_LAB_DIR", "build/labs")
EXERCISES = Path(__file__).parent / "exercises"
TITLES = {1: "The memory wall", 2: "Patches and halos", 3: "Integers all the way down",
          4: "Train your own wake word", 5: "Deploy on the virtual board"}


def fast() -> bool:
    """PATCHCAM_LAB_FAST=1: tiny data and epochs (the test of the labs)."""
    return os.environ.get("PATCHCAM_LAB_FAST", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="patchcam lab", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("n", type=int, choices=sorted(TITLES), metavar="N", help="the lab, 1-5")
    p.add_argument("--check", nargs="?", const="", metavar="FILE",
                   help="lab 3: check your requantise.py (default build/labs/lab3/"
                        "requantise.py) against the integer reference")
    p.add_argument("--tflm", action="store_true",
                   help="lab 3: run vww on TensorFlow Lite Micro and the integer reference")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    if (a.check is not None or a.tflm) and a.n != 3:
        p.error("--check and --tflm belong to lab 3")
    if a.check is not None:
        from patchcam.labs import lab3
        return lab3.check(Path(a.check) if a.check else LABS / "lab3" / "requantise.py")
    if a.tflm:
        from patchcam.labs import lab3
        return lab3.tflm()
    print(f"lab {a.n}: {TITLES[a.n]} (docs/labs/)")
    ok = tools(a.n)
    PREPARE.get(a.n, lambda: None)()
    print(f"lab {a.n}: ready" if ok else f"lab {a.n}: a tool above is missing: `make setup` "
          "installs it")
    return 0 if ok else 1


def _have_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def tools(n: int) -> bool:
    """Print one line per tool the lab uses; False when one is missing."""
    need: list[tuple[str, bool]] = [
        (f"Python {sys.version.split()[0]} (>= 3.11)", sys.version_info >= (3, 11)),
        ("PyTorch (CPU is enough)", _have_module("torch")),
    ]
    if n == 3:
        need.append(("TensorFlow Lite Micro's Python interpreter (tflite-micro)",
                     _have_module("tflite_micro")))
    if n == 5:
        need += [("qemu-system-arm (the virtual Cortex-M7)",
                  shutil.which("qemu-system-arm") is not None),
                 ("arm-none-eabi-gcc (builds the firmware)",
                  shutil.which("arm-none-eabi-gcc") is not None)]
    for what, ok in need:
        print(f"  [{'ok' if ok else 'missing'}] {what}")
    shared = (REPO.parent / "shared" / "datasets").is_dir()
    print(f"  [{'ok' if shared else 'not needed'}] ../shared/datasets (optional example "
          "photos; every lab works without them)")
    return all(ok for _, ok in need)


def copy_once(src: Path, dst: Path, edit: Callable[[str], str] = lambda s: s) -> Path:
    """Copy src to dst unless dst exists (a student's edits are kept)."""
    if dst.exists():
        print(f"  kept {dst.relative_to(REPO)} (yours; delete it to start again)")
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(edit(src.read_text()))
    print(f"  wrote {dst.relative_to(REPO)}")
    return dst


def prepare_lab2() -> None:
    def edit(text: str) -> str:
        return ("# Lab 2: a copy of apps/vww/app.toml to edit ([model.overrides]);\n"
                "# `patchcam plan build/labs/lab2/vww.toml` plans the network it describes.\n"
                + text)
    copy_once(REPO / "apps" / "vww" / "app.toml", LABS / "lab2" / "vww.toml", edit)


def prepare_lab1() -> None:
    copy_once(REPO / "apps" / "vww" / "app.toml", LABS / "lab1" / "vww.toml",
              lambda text: "# Lab 1: a copy of apps/vww/app.toml to edit ([input] size).\n" + text)


def prepare_lab3() -> None:
    copy_once(EXERCISES / "requantise.py", LABS / "lab3" / "requantise.py")


def prepare_lab4() -> None:
    from patchcam.labs import lab4
    lab4.prepare(LABS / "lab4", fast())


PREPARE: dict[int, Callable[[], None]] = {1: prepare_lab1, 2: prepare_lab2, 3: prepare_lab3,
                                          4: prepare_lab4}
