"""pcboard - the OpenMV Cam's side of patchcam: camera + USB VCP + the wire protocol.

Shared by main.py (our patch-scheduled model through `pcmodel`) and main_ml.py (the same
app's .tflite through OpenMV's `ml` module). Save the script as main.py on the camera's drive
and run it without OpenMV IDE attached: the protocol owns the USB serial port. main_ide.py
(`serve_ide`) is the variant for OpenMV IDE: boxes drawn on the frame buffer, one text line
per frame in the IDE's terminal, the USB serial left to the IDE.
"""

import math
import struct
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
    answered, camera frames processed while the host has STREAM on, each camera frame's
    result also drawn on the frame buffer as main_ide.py does. make_model() builds the
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
    drawing = True
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
                continue
            if app.last is not None and drawing:  # the boxes on the frame buffer too
                try:
                    latency, items, count = app.last
                    draw_result(img, a, items, count, latency)
                except Exception as e:  # the results still go out; say so once
                    app.send_log(pcproto.LOG_WARNING, "drawing on the frame buffer: " + repr(e))
                    drawing = False
        elif not n:
            time.sleep_ms(1)


def report(e: Exception) -> None:
    """Print an exception the way MicroPython does (visible in OpenMV IDE's terminal)."""
    if hasattr(sys, "print_exception"):
        sys.print_exception(e)
    else:
        print(repr(e))


# ---- standalone: boxes on the frame buffer, a text line per frame (OpenMV IDE) --------------
# The host viewer's class colours (patchcam/host/viewer/overlay.py PALETTE), as RGB.
PALETTE = ((0, 220, 0), (255, 0, 0), (0, 128, 255), (255, 200, 0), (255, 0, 255),
           (0, 255, 255), (255, 0, 128), (255, 128, 0))
FONT_W, FONT_H = 8, 10  # OpenMV's draw_string at scale 1


def round_div(x: int, num: int, den: int) -> int:
    """x * num / den rounded half to even (the viewer's round()), in integers."""
    if den <= 0:
        return 0
    q, r = divmod(x * num, den)
    if 2 * r > den or (2 * r == den and q & 1):
        q += 1
    return q


def box_on_image(x0, y0, x1, y1, img_w, img_h, in_w, in_h):
    """A box in model-input pixels -> image pixels (x0, y0, x1, y1), as the viewer maps it
    (overlay.box_on_canvas without its top bar): scaled, rounded half to even, clamped."""
    def clamp(v, hi):
        return 0 if v < 0 else (hi if v > hi else v)
    return (clamp(round_div(x0, img_w, in_w), img_w - 1), clamp(round_div(y0, img_h, in_h),
            img_h - 1), clamp(round_div(x1, img_w, in_w), img_w - 1),
            clamp(round_div(y1, img_h, in_h), img_h - 1))


def output_scale(app) -> float:
    return struct.unpack("<f", struct.pack("<I", app.OUTPUT_SCALE_BITS))[0]


def percent(score: int, app) -> int:
    """round(100 * sigmoid(scale * (score - zero_point))): the viewer's box probability."""
    x = output_scale(app) * (score - app.OUTPUT_ZERO_POINT)
    p = 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))
    return int(100 * p + 0.5)


def class_name(app, cls: int) -> str:
    return app.CLASSES[cls] if 0 <= cls < len(app.CLASSES) else f"class {cls}"


def ms(latency_us: int) -> str:
    t = latency_us // 100 + (1 if latency_us % 100 >= 50 else 0)
    return f"{t // 10}.{t % 10} ms"


def detections(items, n: int) -> list:
    """RESULT items (10 bytes each) -> [(x0, y0, x1, y1, cls, score)]."""
    return [struct.unpack_from("<HHHHBb", items, 10 * i) for i in range(n)]


def best_class(items, n: int) -> tuple:
    """(index, softmax percent) of a classifier's int8 scores."""
    s = [b - 256 if b > 127 else b for b in bytes(items)[:n]]
    best = max(range(n), key=lambda i: s[i])
    return best, s


def text_line(frame_id: int, latency_us: int, items, n: int, app) -> str:
    """One readable line per frame, the format of firmware/app/pc_textline.h."""
    if app.TASK == pcproto.TASK_CLASSIFY:
        if n == 0:
            return f"frame {frame_id}: no scores; {ms(latency_us)}"
        best, s = best_class(items, n)
        scale = output_scale(app)
        total = sum(math.exp(scale * (v - s[best])) for v in s)
        pct = int(100 / total + 0.5)
        return f"frame {frame_id}: {class_name(app, best)} {pct}%; {ms(latency_us)}"
    dets = detections(items, n)
    if not dets:
        return f"frame {frame_id}: no boxes; {ms(latency_us)}"
    parts = [f"{class_name(app, c)} {percent(sc, app)}% at {x0},{y0}-{x1},{y1}"
             for x0, y0, x1, y1, c, sc in dets]
    word = "box" if len(dets) == 1 else "boxes"
    return f"frame {frame_id}: {len(dets)} {word}: {'; '.join(parts)}; {ms(latency_us)}"


def draw_result(img, app, items, n: int, latency_us: int) -> None:
    """Boxes and labels on the frame buffer image (what OpenMV IDE shows), in the viewer's
    geometry and colours: a 2-pixel outline from the box's corners inward, a label patch of
    the class colour above the box (inside it when there is no room) with the label in black;
    the latency in the top-left corner."""
    w, h = img.width(), img.height()
    if app.TASK == pcproto.TASK_CLASSIFY:
        if n:
            best, _ = best_class(items, n)
            label = text_line(0, 0, items, n, app).split(": ", 1)[1].split(";")[0]
            img.draw_rectangle(0, FONT_H + 4, len(label) * FONT_W + 4, FONT_H + 4,
                               color=PALETTE[best % 8], fill=True)
            img.draw_string(2, FONT_H + 6, label, color=(0, 0, 0))
    else:
        for x0, y0, x1, y1, cls, score in detections(items, n):
            bx0, by0, bx1, by1 = box_on_image(x0, y0, x1, y1, w, h, app.INPUT_W, app.INPUT_H)
            color = PALETTE[cls % 8]
            img.draw_rectangle(bx0, by0, bx1 - bx0 + 1, by1 - by0 + 1, color=color,
                               thickness=2)
            label = f"{class_name(app, cls)} {percent(score, app)}%"
            tw = len(label) * FONT_W
            ty = by0 - FONT_H - 3 if by0 - FONT_H - 3 >= 0 else by0 + 3
            tx = min(bx0, w - tw - 4)
            img.draw_rectangle(tx, ty, tw + 4, FONT_H + 2, color=color, fill=True)
            img.draw_string(tx + 2, ty + 1, label, color=(0, 0, 0))
    img.draw_string(2, 2, ms(latency_us), color=(255, 255, 255))


def serve_ide(make_model) -> None:
    """The standalone loop for OpenMV IDE (main_ide.py): capture, run, draw the result on the
    frame buffer and print one text line per frame; the USB serial stays the IDE's (no
    protocol: the viewer cannot connect meanwhile)."""
    sensor.reset()
    sensor.set_pixformat(sensor.RGB565)
    sensor.set_framesize(getattr(sensor, CAMERA_FRAMESIZE))
    sensor.skip_frames(time=1000)
    model = make_model()
    frame_id = 0
    while True:
        img = sensor.snapshot()
        frame_id += 1
        model.prepare(img.bytearray(), img.width(), img.height(), pcproto.RGB565)
        latency, items, n = model.run()
        draw_result(img, model.app, items, n, latency)
        print(text_line(frame_id, latency, items, n, model.app))
