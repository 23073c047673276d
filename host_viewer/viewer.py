"""`make view` as a script: `python host_viewer/viewer.py [...]` == `patchcam view [...]`."""
import sys

from patchcam.cli import main

sys.exit(main(["view", *sys.argv[1:]]))
