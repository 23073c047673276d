"""The viewer window's OpenCV: the `window` extra pins opencv-python (GUI) at exactly the
version of the pinned headless wheel (OpenCV 4: the HOG and Haar baselines), and
scripts/setup.sh installs it with WINDOW=1 so that the GUI wheel's files are the ones on disk.
"""

import re
import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for rs in project["optional-dependencies"].values()
                                      for r in rs]
    out = {}
    for r in reqs:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", r)
        assert m, f"{r}: every dependency is pinned with =="
        out[m.group(1).lower()] = m.group(2)
    return out


def test_window_extra_is_the_headless_version_with_a_gui():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    window = project["optional-dependencies"]["window"]
    assert window == [f"opencv-python=={pins()['opencv-python-headless']}"]
    assert pins()["opencv-python-headless"].startswith("4.")  # the baselines need OpenCV 4
    assert not any(r.startswith("opencv-python==") for r in project["dependencies"])


def test_setup_installs_the_window_extra_last():
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "'.[test,window]'" in setup and "--force-reinstall --no-deps" in setup
    assert setup.index("'.[test,window]'") < setup.index("--force-reinstall --no-deps")
    assert subprocess.run(["bash", "-n", str(REPO / "scripts" / "setup.sh")]).returncode == 0
    assert "libstdc++-arm-none-eabi-newlib" in setup  # BOARDS=1: what the Mbed builds need
