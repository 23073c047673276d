"""The course labs (docs/labs/) cannot go stale: every command of every lab runs here, and
every figure a lab quotes (docs/labs/figures.toml) is read back from what the commands print.

A lab's commands are the lines of its ```sh blocks, in order (```console blocks are for a
real board or a webcam and are not run). They run from the repository root with
PATCHCAM_LAB_FAST=1 (tiny photo set and epochs) and PATCHCAM_LAB_DIR=build/test-labs, so a
student's build/labs/ is never touched: `build/labs/` in a command becomes
`build/test-labs/`. Lab 3's function to fill in gets the answer key's solution
(docs/labs/answers/lab3.md) first.

    python tests/test_labs.py 2          # run lab 2's commands, print each output and its time
    python tests/test_labs.py --full 4   # the same without PATCHCAM_LAB_FAST (a student's run)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LABS = REPO / "docs" / "labs"
FILES = {1: "lab1_memory_wall.md", 2: "lab2_patches_halos.md", 3: "lab3_integers.md",
         4: "lab4_wakeword.md", 5: "lab5_deploy.md"}
TEST_DIR = "build/test-labs"
SECTIONS = ("## Learning goals", "## Steps", "## What you should see", "## Questions")


def lab_text(n: int) -> str:
    return (LABS / FILES[n]).read_text()


def commands(n: int) -> list[str]:
    """The lines of the lab's ```sh blocks (comments and continuation-free)."""
    out, block = [], False
    for line in lab_text(n).splitlines():
        if line.lstrip().startswith("```"):
            block = line.strip() == "```sh" if not block else False
            continue
        if block:
            cmd = re.sub(r"\s+#\s.*$", "", line).strip()
            if cmd and not cmd.startswith("#"):
                out.append(cmd)
    return out


def figures() -> list[dict]:
    return tomllib.loads((LABS / "figures.toml").read_text())["figure"]


def answer_code(n: int) -> str:
    """The ```python block of the lab's answer key."""
    m = re.search(r"```python\n(.*?)```", (LABS / "answers" / f"lab{n}.md").read_text(), re.S)
    assert m, f"answers/lab{n}.md has no python block"
    return m.group(1)


def env(full: bool = False) -> dict[str, str]:
    return {**os.environ, "PATCHCAM_LAB_FAST": "0" if full else "1",
            "PATCHCAM_LAB_DIR": TEST_DIR, "THREADS": "1", "OMP_NUM_THREADS": "1", "JOBS": "1"}


def prepare(n: int) -> None:
    if n == 3:  # the student's part, done as the answer key does it
        d = REPO / TEST_DIR / "lab3"
        d.mkdir(parents=True, exist_ok=True)
        (d / "requantise.py").write_text(answer_code(3))
    if n in (1, 2):  # the copies the lab edits with sed start afresh
        shutil.rmtree(REPO / TEST_DIR / f"lab{n}", ignore_errors=True)
    if n == 4:  # the recipe of this run (fast or full), not the last run's
        shutil.rmtree(REPO / TEST_DIR / "lab4" / "wakeword", ignore_errors=True)


def run_lab(n: int, verbose: bool = False, full: bool = False) -> dict[str, str]:
    """Run lab n's commands in order; {command as the lab writes it: its output}."""
    prepare(n)
    outputs = {}
    for cmd in commands(n):
        t0 = time.time()
        res = subprocess.run(cmd.replace("build/labs/", f"{TEST_DIR}/"), shell=True, cwd=REPO,
                             env=env(full), capture_output=True, text=True, timeout=900)
        text = res.stdout + res.stderr
        if verbose:
            print(f"$ {cmd}   [{time.time() - t0:.1f} s, exit {res.returncode}]\n{text}")
        assert res.returncode == 0, f"lab {n}: `{cmd}` failed ({res.returncode}):\n{text[-3000:]}"
        outputs[cmd] = text
    return outputs


def check_figures(n: int, outputs: dict[str, str], fast: bool = True) -> None:
    for f in (f for f in figures() if f["lab"] == n):
        assert f["command"] in outputs, f"figure {f['key']}: lab {n} has no `{f['command']}`"
        m = re.search(f["pattern"], outputs[f["command"]], re.M)
        assert m, f"figure {f['key']}: /{f['pattern']}/ not in the output of `{f['command']}`"
        if f.get("trained") and fast:
            continue  # depends on the trained weights: the fast recipe differs
        assert m.group(1) == f["value"], (f"figure {f['key']}: the lab says {f['value']}, "
                                          f"`{f['command']}` prints {m.group(1)}")


# ---- fast checks: the text itself --------------------------------------------------------
@pytest.mark.parametrize("n", sorted(FILES))
def test_lab_has_its_parts(n):
    text = lab_text(n)
    for section in SECTIONS:
        assert section in text, f"{FILES[n]}: no '{section}'"
    assert (LABS / "answers" / f"lab{n}.md").is_file()
    assert f"answers/lab{n}.md" not in text  # the key is for the instructor, not linked
    assert commands(n), f"{FILES[n]}: no ```sh commands"
    assert FILES[n] in (LABS / "README.md").read_text()


def test_every_quoted_figure_is_in_its_lab_and_checked():
    figs = figures()
    keys = [f["key"] for f in figs]
    assert len(keys) == len(set(keys))
    for f in figs:
        assert f["value"] in lab_text(f["lab"]), f"{f['key']}: {f['value']} not in the lab text"
        assert f["command"] in commands(f["lab"]), f"{f['key']}: `{f['command']}` not in lab"
        re.compile(f["pattern"])
    assert {f["lab"] for f in figs} == set(FILES)


def test_lab3_exercise_and_answer_key():
    """The template says it is not filled in (exit 1); the answer key's code passes."""
    py = [sys.executable, "-m", "patchcam", "lab", "3", "--check"]
    tmpl = REPO / "patchcam" / "labs" / "exercises" / "requantise.py"
    res = subprocess.run([*py, str(tmpl)], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1 and "not filled in yet" in res.stdout
    d = REPO / TEST_DIR / "key"
    d.mkdir(parents=True, exist_ok=True)
    (d / "requantise.py").write_text(answer_code(3))
    res = subprocess.run([*py, str(d / "requantise.py")], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "18,432 of 18,432 outputs equal" in res.stdout


# ---- every command of every lab ------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("n", sorted(FILES))
def test_lab_commands_and_figures(n):
    check_figures(n, run_lab(n))


if __name__ == "__main__":
    full = "--full" in sys.argv
    for arg in [a for a in sys.argv[1:] if a != "--full"] or [str(k) for k in FILES]:
        t = time.time()
        out = run_lab(int(arg), verbose=True, full=full)
        check_figures(int(arg), out, fast=not full)
        print(f"lab {arg}: {len(out)} commands, {time.time() - t:.0f} s, figures ok")
