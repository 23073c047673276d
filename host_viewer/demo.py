"""`make demo` as a script: `python host_viewer/demo.py [...]` == `patchcam demo [...]`."""
import sys

from patchcam.cli import main

sys.exit(main(["demo", *sys.argv[1:]]))
