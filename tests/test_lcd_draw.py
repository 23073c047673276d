"""The standalone screen (firmware/app/pc_draw.c) against the host viewer's overlay, and the
standalone text line (firmware/app/pc_textline.c), built for the host with gcc (C99, -Wall
-Wextra -Werror -pedantic -Wconversion -Wshadow) and driven by tests/c/test_pc_draw_main.c.

The comparison of a drawn framebuffer with the viewer's canvas (overlay.render of the same
HELLO, RESULT and a frame of one flat colour, at the board's image size):

- geometry: for every detection, the box's corners on the board's screen, moved by the image
  region's offset, are `overlay.box_on_canvas` moved by the viewer's top bar, exactly;
- colour: every pixel of the one-pixel rectangle at those corners is the viewer's class colour
  (overlay.class_color, as RGB565) in both pictures;
- extent: two pixels outside and two inside the box, at the middle of its left, right and
  bottom sides, and at its centre, both show the frame's colour (the viewer's 2-px line spreads
  one pixel either side of the rectangle, the board's one pixel inward), so a box one pixel
  off, filled, or drawn thicker fails.
Labels are not compared pixel by pixel (the fonts differ); each board label patch is the class
colour and sits above the box, or inside it when there is no room, like the viewer's.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from patchcam.host import protocol as pp
from patchcam.host.viewer import overlay

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "firmware" / "app"
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion", "-Wshadow"]
SOURCES = [APP / "pc_draw.c", APP / "pc_textline.c"]


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    exe = tmp_path_factory.mktemp("draw") / "draw"
    subprocess.run(["gcc", *FLAGS, "-O2", f"-I{APP}", str(REPO / "tests/c/test_pc_draw_main.c"),
                    *map(str, SOURCES), "-o", str(exe)], check=True)
    return exe


def rgb565(rgb) -> int:
    r, g, b = (int(v) for v in rgb)
    return ((r & 0xF8) << 8) | ((g & 0xFC) << 3) | (b >> 3)


def test_font_header_is_what_the_script_writes():
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_font", REPO / "scripts/make_font.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (APP / "pc_font.h").read_text() == mod.header()


# ---- the screen -----------------------------------------------------------------------------
FB_W, FB_H = 480, 272  # the DISCO-F746NG's LCD
REGION = (0, 16, 320, 240)  # the camera's 160x120 at 2x, below a 16-pixel bar
FRAME_RGB = (90, 120, 150)
HELLO = pp.Hello(task=pp.Task.DETECT, input_w=160, input_h=128, input_c=3,
                 input_format=pp.PixFmt.RGB888, output_scale=0.05, output_zero_point=-10,
                 board="disco_f746ng", app="person_detect", model="m",
                 classes=["person", "mask", "no_mask"])
DETS = [pp.Detection(10, 30, 50, 90, 0, 40),      # label above the box
        pp.Detection(60, 0, 100, 60, 1, 20),      # at the top: label inside the box
        pp.Detection(120, 70, 175, 140, 2, 90),   # past the right and bottom edges: clamped
        pp.Detection(65, 100, 110, 126, 0, 0)]   # y0 * 240 / 128 = 187.5: a tie, to even


def draw(driver: Path, dets: list[pp.Detection], hello: pp.Hello, region=REGION) -> np.ndarray:
    spec = [FB_W, FB_H, *region, hello.input_w, hello.input_h, 160, 120, *FRAME_RGB, len(dets)]
    lines = [" ".join(map(str, spec))]
    for d in dets:
        label = f"{overlay.class_name(hello, d.cls)}~{overlay.detection_probability(d, hello):.2f}"
        lines.append(f"{d.x0} {d.y0} {d.x1} {d.y1} {d.cls} {label}")
    out = subprocess.run([str(driver), "draw"], input="\n".join(lines).encode(),
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, "<u2").reshape(FB_H, FB_W)


def viewer_canvas(dets: list[pp.Detection], hello: pp.Hello, img_w: int) -> np.ndarray:
    frame = np.empty((120, 160, 3), np.uint8)
    frame[:] = FRAME_RGB[::-1]  # BGR
    view = overlay.View(hello=hello, result=pp.Result(1, pp.Task.DETECT, detections=dets))
    return overlay.render(frame, view, display_w=img_w)


def test_screen_boxes_match_the_viewer(driver):
    fb = draw(driver, DETS, HELLO)
    rx, ry, rw, rh = REGION
    canvas = viewer_canvas(DETS, HELLO, rw)
    assert canvas.shape[1] == rw and canvas.shape[0] == overlay.TOP_H + rh + overlay.BOTTOM_H
    frame565 = rgb565(FRAME_RGB)

    def board(x, y):
        return int(fb[y - overlay.TOP_H + ry, x + rx])

    def viewer(x, y):
        return rgb565(canvas[y, x][::-1])

    for d in DETS:
        x0, y0, x1, y1 = overlay.box_on_canvas(d, HELLO, rw, rh)
        color = rgb565(overlay.class_color(d.cls)[::-1])
        outline = ([(x, y0) for x in range(x0, x1 + 1)] + [(x, y1) for x in range(x0, x1 + 1)]
                   + [(x0, y) for y in range(y0, y1 + 1)] + [(x1, y) for y in range(y0, y1 + 1)])
        assert {board(x, y) for x, y in outline} == {color}, d
        # the viewer's own label text (anti-aliased, descenders) may reach the top edge under
        # the label: that stretch is left out on the viewer's side
        label = f"{overlay.class_name(HELLO, d.cls)} {overlay.detection_probability(d, HELLO):.2f}"
        (tw, _), _ = overlay.cv2.getTextSize(label, overlay.FONT, 0.45, 1)
        assert {viewer(x, y) for x, y in outline if y != y0 or x > x0 + tw + 4} == {color}, d
        xm, ym = (x0 + x1) // 2, (y0 + y1) // 2
        probes = [(xm, ym), (x0 + 2, ym), (x1 - 2, ym), (xm, y1 - 2)]
        probes += [(x, y) for x, y in ((x0 - 2, ym), (x1 + 2, ym), (xm, y1 + 2))
                   if 0 <= x < rw and overlay.TOP_H <= y < overlay.TOP_H + rh]
        for x, y in probes:
            assert board(x, y) == frame565 == viewer(x, y), (d, x, y)
    # outside every box and label: the frame; the bar above the region: not the frame
    assert int(fb[ry + rh - 1, 2]) == frame565 and int(fb[0, 0]) != frame565
    assert (fb[:, rx + rw:] == rgb565((32, 32, 32))).all()  # nothing drawn right of the image


def test_label_patch_above_or_inside_in_the_class_colour(driver):
    fb = draw(driver, DETS[:2], HELLO)
    rx, ry, rw, rh = REGION
    for d, inside in ((DETS[0], False), (DETS[1], True)):
        x0, y0, _x1, _y1 = overlay.box_on_canvas(d, HELLO, rw, rh)
        y0 += ry - overlay.TOP_H
        color = rgb565(overlay.class_color(d.cls)[::-1])
        y = y0 + 3 if inside else y0 - 1  # the patch's first row below / last row above
        assert int(fb[y, x0 + rx]) == color
        text_rows = fb[y0 + 4:y0 + 15, x0 + 2:x0 + 40] if inside else \
            fb[y0 - 15:y0 - 4, x0 + 2:x0 + 40]
        assert (text_rows == 0).any(), "black label text"


def test_screen_with_another_scale_and_offset(driver):
    """A 96x96 input on a 272x204 region right of a 100-pixel panel: the
    exact-rational half-to-even rounding agrees with the viewer's float round() here too."""
    hello = pp.Hello(task=pp.Task.DETECT, input_w=96, input_h=96, input_c=3,
                     input_format=pp.PixFmt.RGB888, classes=["person"], output_scale=0.1)
    dets = [pp.Detection(x, y, x + 20, y + 30, 0, 5) for x, y in ((3, 40), (37, 41), (70, 44))]
    region = (100, 0, 272, 204)  # the 160x120 frame at 1.7x, as the viewer scales it
    fb = draw(driver, dets, hello, region)
    canvas = viewer_canvas(dets, hello, 272)
    for d in dets:
        x0, y0, x1, y1 = overlay.box_on_canvas(d, hello, 272, 204)
        color = rgb565(overlay.class_color(0)[::-1])
        for x, y in ((x0, y1), (x1, y1), (x0, (y0 + y1) // 2), (x1, (y0 + y1) // 2)):
            assert int(fb[y - overlay.TOP_H, x + 100]) == color
            assert rgb565(canvas[y, x][::-1]) == color
        assert int(fb[y1 - overlay.TOP_H + 1, (x0 + x1) // 2 + 100]) == rgb565(FRAME_RGB)


def test_whole_screen_layout_and_boxes(driver):
    """pc_draw_screen on the DISCO's 480x272: the 160x120 frame at 341x256 below a 16-pixel
    bar (the viewer's canvas at display_w=341 has the same 256 rows), boxes where the viewer
    puts them, a line per box in the panel on the right, text in the bar."""
    scale = float(np.float32(HELLO.output_scale))
    spec = [FB_W, FB_H, 160, 128, 160, 120, *FRAME_RGB, repr(scale), HELLO.output_zero_point,
            233_149, len(DETS)]
    spec += [v for d in DETS for v in (d.x0, d.y0, d.x1, d.y1, d.cls, d.score)]
    out = subprocess.run([str(driver), "screen"], input=" ".join(map(str, spec)).encode(),
                         capture_output=True, check=True).stdout
    fb = np.frombuffer(out, "<u2").reshape(FB_H, FB_W)
    rw, rh = 341, 256
    assert overlay.canvas_size(160, 120, rw) == (rw, rh)
    assert int(fb[16, 0]) == int(fb[16 + rh - 1, 0]) == rgb565(FRAME_RGB)
    assert int(fb[15, 0]) != rgb565(FRAME_RGB) and int(fb[16, rw]) != rgb565(FRAME_RGB)
    for i, d in enumerate(DETS):
        x0, y0, x1, y1 = overlay.box_on_canvas(d, HELLO, rw, rh)
        color = rgb565(overlay.class_color(d.cls)[::-1])
        y0, y1 = y0 - overlay.TOP_H + 16, y1 - overlay.TOP_H + 16
        assert {int(v) for v in fb[y1, x0:x1 + 1]} == {color}
        assert {int(v) for v in fb[y0:y1 + 1, x1]} - {0} <= {color}  # labels may cross
        assert int(fb[20 + i * 14 + 2, rw + 5]) == color  # the panel's colour key
    assert (fb[2:13, 4:200] == rgb565((240, 240, 240))).any()  # the bar's text


# ---- the text line (the Nano's standalone mode) ----------------------------------------------
def line(driver: Path, kind: str, frame: int, latency: int, hello: pp.Hello, items: list,
         cap: int = 400) -> str:
    spec = [kind, frame, latency, repr(float(np.float32(hello.output_scale))),
            hello.output_zero_point, cap, len(hello.classes), *hello.classes, len(items)]
    for it in items:
        spec += [it.x0, it.y0, it.x1, it.y1, it.cls, it.score] if kind == "detect" else [it]
    res = subprocess.run([str(driver), "line"], input=" ".join(map(str, spec)).encode(),
                         capture_output=True)
    assert res.returncode == 0
    return res.stdout.decode("ascii")


def expected_detect(frame: int, latency: int, dets: list[pp.Detection]) -> str:
    """The format of pc_textline.h, with the viewer's probabilities."""
    ms = f"{(latency + 50) // 100 // 10}.{(latency + 50) // 100 % 10} ms"
    if not dets:
        return f"frame {frame}: no boxes; {ms}"
    parts = [f"{overlay.class_name(HELLO, d.cls)} "
             f"{round(100 * overlay.detection_probability(d, HELLO))}% at "
             f"{d.x0},{d.y0}-{d.x1},{d.y1}" for d in dets]
    word = "box" if len(dets) == 1 else "boxes"
    return f"frame {frame}: {len(dets)} {word}: " + "; ".join(parts) + f"; {ms}"


def test_text_line_detect(driver):
    for dets, latency in ((DETS[:2], 233_149), (DETS[:1], 1_950), ([], 231_900)):
        assert line(driver, "detect", 12, latency, HELLO, dets) == \
            expected_detect(12, latency, dets)
    assert line(driver, "detect", 7, 69_050, HELLO, DETS[:1]) == \
        "frame 7: 1 box: person 92% at 10,30-50,90; 69.1 ms"
    # a class index past the names: named by number
    odd = [pp.Detection(1, 2, 3, 4, 9, 127)]
    assert line(driver, "detect", 1, 0, HELLO, odd).startswith("frame 1: 1 box: class 9 100%")


def test_text_line_classify(driver):
    hello = pp.Hello(task=pp.Task.CLASSIFY, input_w=96, input_h=96, input_c=3,
                     input_format=pp.PixFmt.RGB888, output_scale=0.0390625,
                     output_zero_point=-128, classes=["no_person", "person"])
    for scores in ([-60, 70], [100, -100], [5, 5]):
        r = pp.Result(1, pp.Task.CLASSIFY, scores=scores)
        probs = overlay.class_probabilities(r, hello)
        best = int(np.argmax(probs))
        assert line(driver, "classify", 3, 69_000, hello, scores) == \
            f"frame 3: {hello.classes[best]} {round(100 * probs[best])}%; 69.0 ms"


def test_text_line_is_cut_to_the_buffer(driver):
    full = expected_detect(12, 233_149, DETS)
    for cap in (5, 20, 64):
        s = line(driver, "detect", 12, 233_149, HELLO, DETS, cap=cap)
        assert len(s) <= cap - 1 and s.endswith("...") and full.startswith(s[:-3])
    assert line(driver, "detect", 12, 233_149, HELLO, DETS, cap=len(full) + 1) == full


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("cpu", ["cortex-m7", "cortex-m4"])
def test_board_code_compiles_warning_free_for_the_boards(cpu, tmp_path):
    for src in SOURCES:
        subprocess.run(["arm-none-eabi-gcc", *FLAGS, "-O2", "-mthumb", f"-mcpu={cpu}",
                        "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16" if cpu == "cortex-m4"
                        else "-mfpu=fpv5-sp-d16", f"-I{APP}", "-c", str(src), "-o",
                        str(tmp_path / (src.stem + ".o"))], check=True)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("app", ["vww", "person_detect"])
@pytest.mark.parametrize("opts", [("PC_APP_SCREEN=1",), ("PC_APP_TEXT_UNTIL_HELLO=1",),
                                  ("PC_APP_SCREEN=1", "PC_APP_TEXT_UNTIL_HELLO=1")])
def test_app_loop_standalone_options_compile_for_cortex_m7(app, opts, tmp_path):
    """The DISCO's build options (screen + text until HELLO) and the Nano's, with a shipped
    classifier and detector."""
    fw = REPO / "firmware"
    subprocess.run(["arm-none-eabi-gcc", *FLAGS[:5], "-O2", "-mthumb", "-mcpu=cortex-m7",
                    "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16", *(f"-D{o}" for o in opts),
                    '-DPC_BOARD_NAME="disco_f746ng"', f"-I{REPO / 'apps' / app / 'generated'}",
                    f"-I{APP}", f"-I{fw / 'protocol'}", f"-I{fw / 'boards'}",
                    f"-I{fw / 'runtime'}", "-c", str(APP / "app_main.c"), "-o",
                    str(tmp_path / "app_main.o")], check=True)
