"""OpenMV Cam H7 with OpenMV IDE: the same model as main.py (pcmodel), but the USB serial stays
the IDE's. Each frame's boxes, labels and latency are drawn on the frame buffer (the IDE's
frame buffer view shows them, in the host viewer's colours) and one text line per frame goes
to the IDE's serial terminal. Open this file in OpenMV IDE and run it (main.py, pcmodel.mpy,
pcapp.py, pcboard.py and pcproto.py on the camera's drive); the viewer (`make view`) needs
main.py instead.
"""

# pcmodel first, as in main.py: its block of the heap before anything fragments it.
import pcmodel  # noqa: F401  # isort: skip

import pcapp
import pcboard
from main import NatmodModel


def main_ide():
    try:
        pcboard.serve_ide(lambda: NatmodModel(pcapp))
    except Exception as e:
        pcboard.report(e)
        raise


main_ide()
