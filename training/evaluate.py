"""`make eval` as a script: `python training/evaluate.py APP [...]` == `patchcam eval APP [...]`."""
import sys

from patchcam.cli import main

sys.exit(main(["eval", *sys.argv[1:]]))
