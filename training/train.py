"""`make train` as a script: `python training/train.py APP [...]` == `patchcam train APP [...]`."""
import sys

from patchcam.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
