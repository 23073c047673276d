"""pcboard - the OpenMV Cam's side of patchcam: camera + USB VCP + the wire protocol.

Shared by main.py (our patch-scheduled model through `pcmodel`) and main_ml.py (the same
app's .tflite through OpenMV's `ml` module). Save the script as main.py on the camera's drive
and run it without OpenMV IDE attached: the protocol owns the USB serial port.
"""

import sys
import time

import pcproto

try:
    import sensor
except ImportError:  # not an OpenMV camera: serve() needs one; the helpers below do not
    sensor = None

# The camera delivers QVGA RGB565; the models take 96x96 or 160x128 (nearest-neighbour
# resize on the board, docs/protocol.md "Preprocessing").
CAMERA_FRAMESIZE = "QVGA"


def frame_memory(nbytes: int):
    """A writable, 32-byte-aligned buffer of nbytes outside the MicroPython heap where the
    firmware allows it (OpenMV <= 4.8: sensor.alloc_extra_fb, frame-buffer RAM), else a
    bytearray on the heap (firmware 5 removed extra frame buffers)."""
    if sensor is not None and hasattr(sensor, "alloc_extra_fb"):
        try:
            w = 1024
            img = sensor.alloc_extra_fb(w, (nbytes + w - 1) // w, sensor.GRAYSCALE)
            return img.bytearray()
        except (OSError, MemoryError, RuntimeError):
            pass
    return bytearray(nbytes)


class Hello:
    """HELLO fields shared by both runners (docs/protocol.md)."""

    def hello_payload(self, board: str, camera_w: int, camera_h: int, camera_format: int,
                      max_frame_bytes: int) -> bytes:
        a = self.app
        return pcproto.hello(a.TASK, a.INPUT_W, a.INPUT_H, a.INPUT_C, camera_w, camera_h,
                             camera_format, a.MODEL_HASH, a.ARENA_BYTES, a.PARAM_BYTES,
                             max_frame_bytes, a.OUTPUT_SCALE_BITS, a.OUTPUT_ZERO_POINT, board,
                             a.APP, a.MODEL, a.CLASSES)

    def init_settings(self) -> None:
        a = self.app
        self.task = a.TASK
        if a.TASK == pcproto.TASK_DETECT:
            self.score_q = a.DET_Q_THRESHOLD
            self.iou_q10 = a.DET_IOU_Q10
            self.max_detections = a.DET_MAX_DETECTIONS
            self.max_detections_limit = a.DET_MAX_DETECTIONS


def serve(make_model, board: str = "openmv_h7") -> None:
    """Run the protocol over USB VCP forever: HELLO at start, FRAME / PING / SET / HELLO
    answered, camera frames processed while the host has STREAM on. make_model() builds the
    runner once the camera is set up: the extra frame buffers it takes (arena, FRAME buffer)
    come after the camera's own frame buffer, which sensor.reset() would otherwise reclaim."""
    import pyb

    usb = pyb.USB_VCP()
    # Our frames are binary: a 0x03 byte must not raise KeyboardInterrupt.
    usb.setinterrupt(-1)
    sensor.reset()
    sensor.set_pixformat(sensor.RGB565)
    sensor.set_framesize(getattr(sensor, CAMERA_FRAMESIZE))
    sensor.skip_frames(time=1000)
    camera = (sensor.width(), sensor.height(), pcproto.RGB565)
    model = make_model()
    a = model.app
    frame_buf = frame_memory(a.INPUT_W * a.INPUT_H * 3)

    def write(data: bytes) -> None:
        if usb.isconnected():
            usb.write(data)

    app = pcproto.App(model, write, frame_buf, time.ticks_us, board, camera, time.ticks_diff)
    app.send_hello()
    rx = bytearray(512)
    camera_frames = 0
    while True:
        n = usb.readinto(rx) if usb.any() else 0
        if n:
            app.feed(memoryview(rx)[:n])
        if app.stream != 0:
            camera_frames += 1
            try:
                img = sensor.snapshot()
                app.camera_frame(camera_frames, img.bytearray())
            except Exception as e:  # report and keep serving (docs/protocol.md)
                app.send_log(pcproto.LOG_WARNING, "camera: " + repr(e))
                app.stream = 0
        elif not n:
            time.sleep_ms(1)


def report(e: Exception) -> None:
    """Print an exception the way MicroPython does (visible in OpenMV IDE's terminal)."""
    if hasattr(sys, "print_exception"):
        sys.print_exception(e)
    else:
        print(repr(e))
