"""The host viewer: stream frames to a board, draw what it answers, show or record it.

    link target ── FRAME ──►  board (serial port, socket://, or a virtual board we start)
                ◄─ RESULT ──  boxes / class scores, on-device latency
    canvas = frame + boxes + labels + scores + FPS, latency, arena / flash, board / app / model

The entry point is `host_viewer/viewer.py` (`make view`, `make demo`: patchcam/host/view.py,
patchcam/host/demo.py). One module per concern:

    overlay.py   drawing the canvas: boxes, labels, class scores, info and status bars (`render`)
    recorder.py  writing canvases to a video / PNGs + results.jsonl (`Recorder`)
    targets.py   what the viewer talks to: `PortTarget`, `VirtualBoardTarget`
    loop.py      the main loop (`Viewer.run`, `Viewer.run_camera`), `Options`, `display_problem`
    app.py       what it takes from apps/<app>/: the model a virtual board runs, the threshold

The names below are re-exported so `patchcam.host.viewer.X` keeps working; new code imports
from the module that defines X.
"""

from patchcam.host.viewer.app import app_model_dir, app_threshold
from patchcam.host.viewer.loop import THRESHOLD_STEP, Options, Viewer, display_problem
from patchcam.host.viewer.overlay import (
    BAR_BG,
    BOTTOM_H,
    DISPLAY_W,
    FONT,
    NOTE,
    PALETTE,
    STATUS_BAD,
    TEXT,
    TOP_H,
    Stats,
    View,
    box_on_canvas,
    canvas_size,
    class_color,
    class_name,
    class_probabilities,
    detection_probability,
    info_line,
    render,
    sigmoid,
    stats_line,
)
from patchcam.host.viewer.recorder import Recorder, result_record
from patchcam.host.viewer.targets import (
    PortTarget,
    TargetError,
    TargetFatal,
    VirtualBoardTarget,
    available_ports,
    model_input_shape,
)

__all__ = [
    "BAR_BG", "BOTTOM_H", "DISPLAY_W", "FONT", "NOTE", "PALETTE", "STATUS_BAD", "TEXT",
    "THRESHOLD_STEP", "TOP_H", "Options", "PortTarget", "Recorder", "Stats", "TargetError",
    "TargetFatal", "View", "Viewer", "VirtualBoardTarget", "app_model_dir", "app_threshold",
    "available_ports", "box_on_canvas", "canvas_size", "class_color", "class_name",
    "class_probabilities", "detection_probability", "display_problem", "info_line",
    "model_input_shape", "render", "result_record", "sigmoid", "stats_line",
]
