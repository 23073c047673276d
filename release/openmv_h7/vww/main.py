"""OpenMV Cam H7: the app's patch-scheduled int8 model (our C runtime, as the native module
`pcmodel`), camera frames from `sensor`, results over USB VCP in patchcam's wire protocol.

Copy to the camera's drive: this file as main.py, pcproto.py, pcboard.py, and from
build/openmv/<app>/ pcapp.py and armv7emsp/pcmodel.mpy (docs/boards.md, "OpenMV Cam H7").
On a firmware with pcmodel built in (the user C module route) pcmodel.mpy is not needed.
"""

# pcmodel first: loading a native module takes one large block of the MicroPython heap (its
# code and weights), which only a heap that nothing has fragmented yet still has.
import pcmodel  # isort: skip

import time

import pcapp
import pcboard
import pcproto


class NatmodModel(pcboard.Hello):
    """The model in C: preprocessing, inference and detection decode all in pcmodel."""

    def __init__(self, app):
        self.app = app
        info = pcmodel.info()
        if info[11] != app.MODEL_HASH:
            raise ValueError("pcmodel.mpy and pcapp.py come from different models")
        # info[13]: the arena, plus a fused-input model's input after it (info[6] is the
        # arena alone, as HELLO reports it): all from frame-buffer memory, off the heap.
        self.model_memory = pcboard.frame_memory(info[13])
        pcmodel.set_arena(self.model_memory)
        self.x = pcmodel.input()
        self.y = pcmodel.output()
        self.items = bytearray(10 * max(1, getattr(app, "DET_MAX_DETECTIONS", 1)))
        self.init_settings()

    def prepare(self, pixels, width, height, fmt):
        pcmodel.preprocess(pixels, width, height, fmt)

    def run(self):
        t0 = time.ticks_us()
        pcmodel.invoke()
        latency = time.ticks_diff(time.ticks_us(), t0)
        if self.task == pcproto.TASK_CLASSIFY:
            return latency, bytes(self.y), len(self.y)
        n = pcmodel.detect(self.items, self.score_q, self.iou_q10, self.max_detections)
        return latency, bytes(self.items[:10 * n]), n

    def preview(self, k):
        a = self.app
        return pcproto.preview_bytes(self.x, a.INPUT_W, a.INPUT_H, a.INPUT_C, k)


def main():
    try:
        pcboard.serve(lambda: NatmodModel(pcapp))
    except Exception as e:
        pcboard.report(e)
        raise


# The camera runs this file as __main__; the unix-port protocol check imports it.
if __name__ == "__main__":
    main()
