"""patchcam viewer: stream frames to a board and draw what it sees.

Run as `python host_viewer/viewer.py --help` (or `make view`, `make demo`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from patchcam.host import protocol as pp
from patchcam.host import sources as vs
from patchcam.host.viewer.app import app_model_dir
from patchcam.host.viewer.loop import Options, Viewer, display_problem
from patchcam.host.viewer.recorder import Recorder
from patchcam.host.viewer.targets import PortTarget, TargetError, VirtualBoardTarget

EPILOG = """\
sources (--source):
  0, 1, ...                 a webcam (its index)
  clip.mp4                  a video file
  photos/                   a folder of images (searched recursively, in name order)
  DATASET --split test      a dataset folder (VOC, YOLO, COCO, labels.csv) and one split
  samples                   scikit-image's bundled photos (people and no people)
  board                     the board's own camera: it streams PREVIEW thumbnails + RESULTs
  (none)                    with --port, the board's camera when its HELLO reports one; else
                            what `make demo` uses: webcam, else the shared person-detection
                            test images, else the scikit-image photos

targets (one of):
  (none), --port auto                 the one board on USB, found by its USB ID (DISCO's
                                      ST-LINK, Nano 33 BLE, OpenMV Cam); several: listed
  --port /dev/ttyACM0 --baud 921600   a board on a serial port (USB CDC ignores the baud;
                                      COM5 on Windows, /dev/cu.usbmodem1101 on macOS)
  --port socket://127.0.0.1:5555      a board behind a TCP socket (e.g. QEMU's UART)
  --board qemu_m7 --app person_detect start the virtual Cortex-M7 (QEMU) with the app's model
  --board host --app vww              start the same firmware as a host process (fast)

keys (window mode): space pause | + / - detection threshold (sent to the board) |
  s snapshot (PNG) | q quit

examples:
  # the virtual board on the Penn-Fudan test images, recorded, no screen needed
  python host_viewer/viewer.py --board qemu_m7 --app person_detect \\
      --source ../shared/datasets/penn_fudan_ped --split test \\
      --headless --record build/view/out.mp4 --save-dir build/view/frames
  # a real board on a serial port, webcam frames, in a window
  python host_viewer/viewer.py --port /dev/ttyACM0 --baud 921600 --source 0
  # a board (or QEMU started by hand) behind a socket, a folder of photos
  python host_viewer/viewer.py --port socket://127.0.0.1:5555 --source photos/ --threshold 0.3

The board's boxes are drawn where its RESULT says (model-input pixels scaled to the frame);
the bars show board, app, model, arena and flash (from its HELLO), FPS and on-device latency.
When the board goes silent, resets (a new HELLO) or the line drops, a red status line says so
and the viewer reconnects by itself (a virtual board is started again). Wire protocol:
docs/protocol.md; viewer: docs/viewer.md.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="patchcam view", description="Stream webcam frames, a video, an image folder or a "
        "dataset split to a patchcam board\n(real or virtual) and show or record what it "
        "detects, with its latency and memory figures.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("frames")
    src.add_argument("--source", metavar="SRC",
                     help="webcam index, video, image folder, dataset folder, 'samples', or "
                          "'board' (the board's own camera; the default with --port when "
                          "the board has one)")
    src.add_argument("--split", choices=("train", "val", "test"),
                     help="with a dataset folder: which split to stream")
    src.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    tgt = p.add_argument_group("board (one of --port / --board)")
    tgt.add_argument("--port", metavar="DEV|URL|auto",
                     help="serial device (/dev/ttyACM0, COM3), socket://HOST:PORT, or auto "
                          "(the default without --board): the one board found on USB")
    tgt.add_argument("--baud", type=int, default=921600, help="serial speed (default 921600)")
    tgt.add_argument("--board", choices=("qemu_m7", "host"),
                     help="start this virtual board yourself, with --app's model (or "
                          "--model-dir)")
    tgt.add_argument("--app", metavar="APP",
                     help="--board: the app whose model it runs (default person_detect); "
                          "--port: the app you expect (a warning if the board runs another)")
    tgt.add_argument("--model-dir", type=Path, metavar="DIR",
                     help="a generated model (model.c / model.h) instead of the app's")
    tgt.add_argument("--threshold", type=float, metavar="P",
                     help="detection threshold, probability in (0, 1), sent to the board "
                          "(default: the board's own, from app.toml)")
    tgt.add_argument("--timeout", type=float, default=None, metavar="S",
                     help="seconds to wait for one frame's result before showing it without "
                          "(default 10; 60 for qemu_m7)")
    out = p.add_argument_group("output")
    out.add_argument("--headless", action="store_true",
                     help="no window (for machines without a screen); use with --record / "
                          "--save-dir")
    out.add_argument("--record", type=Path, metavar="OUT.mp4",
                     help="write the annotated frames as a video (.mp4 or .avi)")
    out.add_argument("--save-dir", type=Path, metavar="DIR",
                     help="write every annotated frame as a PNG, plus results.jsonl")
    out.add_argument("--fps", type=float, default=5.0, help="frame rate of --record (default 5)")
    out.add_argument("--quiet", action="store_true", help="no status messages on stderr")
    a = p.parse_args(argv)
    if a.port is not None and a.board is not None:
        p.error("name one board: --port DEV|URL|auto (a real board or a socket) or --board "
                "qemu_m7|host (a virtual board)")
    if a.board is None and a.port is None:
        a.port = "auto"
    if a.source == "board" and a.board is not None:
        p.error("--source board is a real board's camera: with --board, give frames "
                "(a folder, a video, a webcam index or 'samples')")
    if a.threshold is not None and not 0 < a.threshold < 1:
        p.error(f"--threshold must be a probability in (0, 1), got {a.threshold}")
    if a.headless and a.record is None and a.save_dir is None:
        p.error("--headless shows nothing: add --record OUT.mp4 and/or --save-dir DIR")
    if a.frames is not None and a.frames <= 0:
        p.error("--frames must be > 0")
    return a


def find_port() -> str:
    """The serial port of the one board on USB (by USB ID), or exit with one line listing the
    candidates (several) or what was looked for (none)."""
    from patchcam.targets import usb
    try:
        port = usb.pick_port()
    except usb.PortError as e:
        raise SystemExit(f"viewer: {e}") from None
    print(f"viewer: found {port.board} on {port.describe()}", flush=True)
    return port.device


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if not a.headless:
        why = display_problem()
        if why:
            raise SystemExit(f"viewer: {why}; run with --headless --record out.mp4 (or "
                             "--save-dir DIR)")
    camera = a.source == "board"
    source = None
    try:
        if a.source is None and a.board is not None:
            source, why = vs.demo_source()
            print(f"viewer: source: {why}", flush=True)
        elif a.source not in (None, "board"):
            source = vs.open_source(a.source, a.split)
    except vs.SourceError as e:
        raise SystemExit(f"viewer: {e}") from None
    note = ""
    if a.board is not None:
        model_dir, trained, what = app_model_dir(a.app or "person_detect", a.model_dir)
        print(f"viewer: model: {what}", flush=True)
        note = "" if trained else "UNTRAINED (random weights)"
        target = VirtualBoardTarget(a.board, model_dir)
    else:
        if a.port == "auto":
            a.port = find_port()
        target = PortTarget(a.port, a.baud)
    try:
        target.check()
    except TargetError as e:
        raise SystemExit(f"viewer: {e}") from None
    timeout = a.timeout if a.timeout is not None else (60.0 if a.board == "qemu_m7" else 10.0)
    opts = Options(timeout=timeout, threshold=a.threshold, headless=a.headless, note=note,
                   snapshot_dir=a.save_dir or Path("snapshots"), quiet=a.quiet,
                   expect_app=a.app if a.port else None)
    recorder = (Recorder(a.record, a.save_dir, a.fps) if a.record or a.save_dir else None)
    key_source = None
    if not a.headless:
        import cv2
        key_source = cv2.waitKey
    viewer = Viewer(target, recorder, opts, key_source)
    try:
        if a.source is None and a.port is not None:
            # A board with a camera streams its own frames; otherwise send ours.
            viewer.connect(time.monotonic() + min(opts.timeout, max(opts.hello_timeout, 5.0)))
            hello = viewer.view.hello
            camera = hello is not None and hello.camera_format != pp.PixFmt.NONE
            if not camera:
                source, why = vs.demo_source()
                print(f"viewer: the board has no camera (or is silent); source: {why}",
                      flush=True)
        if camera:
            print(f"viewer: the board's camera -> {target.description}", flush=True)
            n = viewer.run_camera(a.frames)
        else:
            assert source is not None
            source = vs.limited(source, a.frames)
            print(f"viewer: {source.description} -> {target.description}", flush=True)
            n = viewer.run(source)
    except KeyboardInterrupt:
        n = recorder.count if recorder else 0
    except (vs.SourceError, TargetError) as e:
        raise SystemExit(f"viewer: {e}") from None
    outs = [str(p) for p in (a.record, a.save_dir) if p is not None]
    print(f"viewer: {n} frames, {viewer.view.stats.frames} with a result"
          + (f"; wrote {' and '.join(outs)}" if outs else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
