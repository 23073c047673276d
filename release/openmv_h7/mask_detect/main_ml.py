"""OpenMV Cam H7, zero-build fallback: the app's .tflite on OpenMV's own `ml` module
(TensorFlow Lite Micro inside the stock firmware), with the same camera, preprocessing,
decode and wire protocol as main.py, so the host sees the same RESULTs and can compare the
two side by side (latency_us: TFLM's invoke vs ours).

Copy to the camera's drive: this file (as main.py), pcproto.py, pcboard.py, pcpipe.py, and
from build/openmv/<app>/ pcapp.py and <app>.tflite (docs/boards.md, "OpenMV Cam H7").
"""

import time

import ml
import pcapp
import pcboard
import pcpipe
import pcproto


class MlModel(pcboard.Hello):
    """The model in TFLite Micro; preprocessing and decode in MicroPython (pcpipe)."""

    def __init__(self, app):
        self.app = app
        # load_to_fb (firmware 4.x): the model goes to frame-buffer RAM, not the heap.
        # postprocess: hand back the raw int8 output tensor instead of dequantised floats.
        self.net = ml.Model(app.APP + ".tflite", load_to_fb=True, postprocess=self._raw)
        self.x = bytearray(app.INPUT_W * app.INPUT_H * app.INPUT_C)
        self.init_settings()

    @staticmethod
    def _raw(model, inputs, outputs):
        return outputs[0]

    def _fill(self, buf, shape, dtype):
        # ml calls this with the input tensor's memory: copy our int8 input in as it is.
        buf[:len(self.x)] = self.x

    def prepare(self, pixels, width, height, fmt):
        a = self.app
        pcpipe.preprocess(pixels, width, height, fmt, self.x, a.INPUT_W, a.INPUT_H, a.INPUT_C)

    def run(self):
        t0 = time.ticks_us()
        out = self.net.predict([self._fill])
        latency = time.ticks_diff(time.ticks_us(), t0)
        y = bytes(out.tobytes()) if hasattr(out, "tobytes") else bytes(
            (int(v) & 0xFF) for v in out.flatten())
        if self.task == pcproto.TASK_CLASSIFY:
            return latency, y, len(y)
        items, n = pcpipe.detect(y, self.app, self.score_q, self.iou_q10, self.max_detections)
        return latency, items, n

    def preview(self, k):
        a = self.app
        return pcproto.preview_bytes(self.x, a.INPUT_W, a.INPUT_H, a.INPUT_C, k)


def main():
    try:
        pcboard.serve(lambda: MlModel(pcapp), board="openmv_h7_ml")
    except Exception as e:
        pcboard.report(e)
        raise


if __name__ == "__main__":
    main()
