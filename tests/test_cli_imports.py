"""`patchcam view`, `patchcam flash` and the CLI's parser never import PyTorch (5-8 s at start):
the CLI module, the two command modules, their --help and reading an app.toml, in a fresh
interpreter, leave torch out of sys.modules."""

import subprocess
import sys

CHECK = """
import contextlib, io, sys
from patchcam import cli
import patchcam.host.view, patchcam.targets.flash, patchcam.targets.usb
from patchcam.app.config import load_app
with contextlib.redirect_stdout(io.StringIO()):
    assert cli.main(["presets"]) == 0
    for argv in (["view", "--help"], ["flash", "--help"]):
        try:
            cli.main(argv)
        except SystemExit as e:
            assert e.code == 0, argv
    # the parts of flash that run without a toolchain: a refused METHOD, the OpenMV route
    with contextlib.redirect_stderr(io.StringIO()):
        for argv in (["flash", "flash", "--app", "vww", "--board", "disco_f746ng",
                      "--method", "nope"],
                     ["flash", "build", "--app", "vww", "--board", "openmv_h7"]):
            try:
                code = cli.main(argv)
            except SystemExit as e:
                code = e.code
            assert code == 2, argv
patchcam.targets.usb.board_ports()
for app in ("vww", "person_detect"):
    load_app(app)
heavy = sorted(m for m in ("torch", "torchvision") if m in sys.modules)
print("imported:", ",".join(heavy) or "none")
"""


def test_view_and_flash_paths_do_not_import_torch():
    res = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("imported: none"), res.stdout
