"""`make demo`: person detection on the virtual Cortex-M7, recorded by the viewer.

Builds the person_detect firmware for qemu_m7 (its trained model when
apps/person_detect/generated/ has one, else its untrained network, and it says which), runs
it under QEMU, streams sample frames through the viewer and writes the annotated video and
images under build/demo/. Frames: a webcam when one is present, else IMAGES=..., else the
Penn-Fudan test images when ../shared/datasets is on disk, else scikit-image's photos.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from patchcam.host import sources as vs
from patchcam.host.viewer.app import app_model_dir
from patchcam.host.viewer.loop import Options, Viewer, display_problem
from patchcam.host.viewer.overlay import info_line
from patchcam.host.viewer.recorder import Recorder
from patchcam.host.viewer.targets import TargetError, VirtualBoardTarget
from patchcam.paths import REPO

APP = "person_detect"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="patchcam demo", description=__doc__.splitlines()[0],
        epilog="examples:\n  make demo\n  make demo IMAGES=~/photos FRAMES=20\n"
               "  python host_viewer/demo.py --board host   # the firmware as a host process\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", help="a folder of images, a video or a webcam index to stream "
                                    "(default: webcam, else the shared datasets, else samples)")
    p.add_argument("--frames", type=int, default=12,
                   help="at most this many frames (default 12; a webcam: 100)")
    p.add_argument("--board", choices=("qemu_m7", "host"), default="qemu_m7")
    p.add_argument("--out", type=Path, default=REPO / "build" / "demo")
    p.add_argument("--no-camera", action="store_true", help="do not look for a webcam")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for one frame's result (default 60)")
    a = p.parse_args(argv)

    try:
        source, why = vs.demo_source(a.images, camera=not a.no_camera)
    except vs.SourceError as e:
        raise SystemExit(f"demo: {e}") from None
    frames = 100 if source.live and a.frames == 12 else a.frames
    source = vs.limited(source, frames)
    model_dir, trained, what = app_model_dir(APP)
    print(f"demo: model:  {what}", flush=True)
    kind = ("Cortex-M7 firmware under QEMU (mps2-an500)" if a.board == "qemu_m7" else
            "the same firmware as a host process over a pty")
    print(f"demo: board:  {a.board}: {kind}", flush=True)
    print(f"demo: source: {why}: {source.description}, first {source.count or frames} frames",
          flush=True)

    video, frames_dir = a.out / "demo.mp4", a.out / "frames"
    shutil.rmtree(frames_dir, ignore_errors=True)  # only this run's frames
    headless = display_problem() is not None
    opts = Options(timeout=a.timeout, headless=headless, snapshot_dir=a.out,
                   note="" if trained else "UNTRAINED (random weights)")
    key_source = None
    if not headless:
        import cv2
        key_source = cv2.waitKey
    target = VirtualBoardTarget(a.board, model_dir)
    try:
        target.check()
    except TargetError as e:
        raise SystemExit(f"demo: {e}") from None
    viewer = Viewer(target, Recorder(video, frames_dir), opts, key_source)
    try:
        n = viewer.run(source)
    except KeyboardInterrupt:
        n = viewer.recorder.count if viewer.recorder else 0
    except (vs.SourceError, TargetError) as e:
        raise SystemExit(f"demo: {e}") from None
    hello = viewer.view.hello
    print(f"demo: {n} frames, {viewer.view.stats.frames} with a result"
          + (f"; {info_line(hello)}" if hello else ""), flush=True)
    if viewer.view.stats.latency_us is not None:
        print(f"demo: last on-device latency {viewer.view.stats.latency_us / 1000:.1f} ms "
              "(QEMU -icount: 1 us = 1000 instructions, not a real M7's speed)"
              if a.board == "qemu_m7" else "", flush=True)
    print(f"demo: output: {video} (video) and {frames_dir}/ (annotated PNGs + results.jsonl)",
          flush=True)
    if not trained:
        print(f"demo: note: {APP} has no trained weights yet, so its boxes are meaningless; "
              f"once apps/{APP}/generated/ holds an exported model, the demo runs it",
              flush=True)
    return 0 if viewer.view.stats.frames else 1


if __name__ == "__main__":
    sys.exit(main())
