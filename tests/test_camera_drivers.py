"""Camera drivers (firmware/drivers/) against fakes of their buses (tests/c/fake_cam_bus.c).

The fake models the ArduCHIP SPI FIFO, the OV2640 (two register banks) and the OV7675, and
logs every transaction; these tests read the log back and check:
- the init sequences: resets first, the product ID read after the reset and in the right bank,
  the format / size registers ending at the documented values in the right bank;
- the capture sequence and the error paths (wrong ID, dead SPI, no sensor, capture timeout,
  FIFO length wrong, buffer too small, short parallel frame, capture before init);
- a frame made from a real photo (scikit-image's astronaut), encoded as the sensor sends it
  (big-endian RGB565 into the FIFO; RGB565 or Y U Y V on the OV7675's parallel bus), comes out
  of driver + firmware/app/pc_preprocess.c byte-identical to patchcam/app/preprocess.py;
- the drivers compile warning-free for the host and for Cortex-M7, and need no library call
  (so no malloc).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from patchcam.app.preprocess import preprocess, rgb_to_gray, sample_index, to_rgb565
from patchcam.host.protocol import PixFmt

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = ROOT / "firmware" / "drivers"
APP = ROOT / "firmware" / "app"
C_DIR = ROOT / "tests" / "c"
DRIVER_SOURCES = [DRIVERS / "arducam_ov2640.c", DRIVERS / "ov7675.c"]
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
ARM_GCC = shutil.which("arm-none-eabi-gcc")

# cam_err_t (firmware/drivers/cam_bus.h)
OK, ERR_ARG, ERR_BUS, ERR_NO_SPI, ERR_SENSOR_ID, ERR_TIMEOUT = 0, -1, -2, -3, -4, -5
ERR_FIFO_LENGTH, ERR_BUF_TOO_SMALL, ERR_FRAME_SIZE, ERR_NOT_INIT = -6, -7, -8, -9

SIZES = {"qvga": (320, 240), "qqvga": (160, 120)}
CAPTURE_TIMEOUT_MS = 1000  # ARDUCAM_CAPTURE_TIMEOUT_MS
FIFO_SLACK = 16  # ARDUCAM_FIFO_SLACK


@pytest.fixture(scope="module")
def exe(tmp_path_factory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    out = tmp_path_factory.mktemp("cam") / "test_cam_drivers"
    subprocess.run(["gcc", *WARNINGS, "-O1", "-g", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", f"-I{DRIVERS}", f"-I{APP}", f"-I{C_DIR}",
                    str(C_DIR / "test_cam_drivers.c"), str(C_DIR / "fake_cam_bus.c"),
                    *map(str, DRIVER_SOURCES), str(APP / "pc_preprocess.c"), "-o", str(out)],
                   check=True)
    return out


@dataclass
class Run:
    log: list[tuple[str, ...]]  # transactions, split into words
    init: int | None
    init_end: int  # transactions before the init result (== len(log) without init)
    captures: list[tuple[int, int]]  # (bytes, cam_err_t) per capture
    frame: bytes | None
    model_input: np.ndarray | None

    def i2c_writes(self) -> list[tuple[str, int, int]]:
        """(bank, reg, value) of every sensor register write, bank '-' for the OV7675."""
        return [(t[3], int(t[4], 16), int(t[5], 16)) for t in self.log if t[:2] == ("i2c", "W")]

    def regs(self) -> dict[tuple[str, int], int]:
        """Final value of every written register, by (bank, reg)."""
        return {(b, r): v for b, r, v in self.i2c_writes() if r != 0xFF}

    def index(self, entry: tuple[str, ...], start: int = 0) -> int:
        return self.log.index(entry, start)


def run(exe: Path, tmp_path: Path, cam: str, res: str, *args: str,
        frame: bytes | None = None, model: tuple[int, int, int] | None = None) -> Run:
    fpath = "-"
    if frame is not None:
        (tmp_path / "frame_in.bin").write_bytes(frame)
        fpath = str(tmp_path / "frame_in.bin")
    opts = list(args)
    if model:
        opts += ["--model", "x".join(map(str, model))]
    for f in ("frame.bin", "input.bin"):
        (tmp_path / f).unlink(missing_ok=True)
    head = [cam, res] if cam == "arducam" else [cam, res, opts.pop(0)]
    r = subprocess.run([str(exe), *head, fpath, str(tmp_path), *opts], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    log, init, init_end, caps = [], None, None, []
    for line in r.stdout.splitlines():
        w = tuple(line.split())
        if w[0] == "init":
            init = int(w[1])
            init_end = len(log)
        elif w[0] == "capture":
            caps.append((int(w[1]), int(w[2])))
        else:
            log.append(w)
    fr = tmp_path / "frame.bin"
    inp = tmp_path / "input.bin"
    return Run(log, init, len(log) if init_end is None else init_end, caps,
               fr.read_bytes() if fr.exists() else None,
               np.fromfile(inp, np.int8).reshape(model) if model and inp.exists() else None)


# ---- test frames from a real photo ----

def scene(w: int, h: int) -> np.ndarray:
    """What the sensor sees: the astronaut photo (512 x 512 RGB), cropped to 4:3 and scaled
    to w x h."""
    from skimage import data
    img = data.astronaut()[64:448]
    return img[sample_index(h, img.shape[0])][:, sample_index(w, img.shape[1])]


def rgb565_be(rgb: np.ndarray) -> bytes:
    return to_rgb565(rgb).astype(">u2").tobytes()


def yuyv(rgb: np.ndarray) -> tuple[bytes, bytes]:
    """(Y U Y V bytes as the OV7675 sends them, the Y plane). U and V from the even pixel of
    each pair (BT.601, integer)."""
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    y = rgb_to_gray(rgb)
    u = np.clip(((-43 * r - 85 * g + 128 * b + 128) >> 8) + 128, 0, 255).astype(np.uint8)
    v = np.clip(((128 * r - 107 * g - 21 * b + 128) >> 8) + 128, 0, 255).astype(np.uint8)
    out = np.empty((rgb.shape[0], rgb.shape[1] * 2), np.uint8)
    out[:, 0::4], out[:, 2::4] = y[:, 0::2], y[:, 1::2]
    out[:, 1::4], out[:, 3::4] = u[:, 0::2], v[:, 0::2]
    return out.tobytes(), y.tobytes()


# ---- ArduCAM Mini 2MP Plus ----

def arducam_ok(exe: Path, tmp_path: Path, res: str, *args: str, **kw) -> tuple[Run, bytes]:
    w, h = SIZES[res]
    rgb = scene(w, h)
    return run(exe, tmp_path, "arducam", res, *args, frame=rgb565_be(rgb), **kw), \
        to_rgb565(rgb).astype("<u2").tobytes()


@pytest.mark.parametrize("res", ["qvga", "qqvga"])
def test_arducam_init_sequence(exe, tmp_path, res):
    r, _ = arducam_ok(exe, tmp_path, res)
    assert r.init == OK
    spi = [t for t in r.log[:r.init_end] if t[0] == "spi"]
    i2c = [t for t in r.log[:r.init_end] if t[0] == "i2c"]
    # CPLD reset is the very first transaction, with settling delays after both edges.
    assert r.log[:4] == [("spi", "W", "07", "80"), ("delay", "100"), ("spi", "W", "07", "00"),
                         ("delay", "100")]
    # SPI echo test with two complementary patterns before the sensor is touched.
    assert spi[2:6] == [("spi", "W", "00", "55"), ("spi", "R", "00", "55"),
                        ("spi", "W", "00", "aa"), ("spi", "R", "00", "aa")]
    assert r.index(("spi", "R", "00", "aa")) < r.log.index(i2c[0])
    # Sensor: select the sensor bank, reset (COM7 bit 7), wait, select again, read the ID.
    assert i2c[:2] == [("i2c", "W", "30", "0", "ff", "01"), ("i2c", "W", "30", "1", "12", "80")]
    reset = r.index(i2c[1])
    assert r.log[reset + 1][0] == "delay" and int(r.log[reset + 1][1]) >= 1
    assert i2c[2:7] == [("i2c", "W", "30", "0", "ff", "01"), ("i2c", "P", "30", "0a"),
                        ("i2c", "R", "30", "1", "0a", "26"), ("i2c", "P", "30", "0b"),
                        ("i2c", "R", "30", "1", "0b", "42")]
    assert sum(1 for t in i2c if t[4:] == ("12", "80")) == 1  # reset exactly once
    # Format and size registers: final values, in the bank they belong to.
    w, h = SIZES[res]
    regs = r.regs()
    expect = {("1", 0x12): 0x40,               # COM7: SVGA sensor mode (reset bit clear)
              ("0", 0xDA): 0x08,               # IMAGE_MODE: RGB565, high byte first
              ("0", 0x05): 0x00,               # R_BYPASS: DSP in the path
              ("0", 0xE0): 0x00,               # RESET: DVP running
              ("0", 0xC0): 800 // 8, ("0", 0xC1): 600 // 8,   # HSIZE8 / VSIZE8
              ("0", 0x51): 800 // 4, ("0", 0x52): 600 // 4,   # HSIZE / VSIZE
              ("0", 0x5A): w // 4, ("0", 0x5B): h // 4, ("0", 0x5C): 0,  # ZMOW/ZMOH/ZMHH
              ("0", 0x50): 0x89 if res == "qvga" else 0x92}  # CTRLI pre-divider
    assert {k: regs.get(k) for k in expect} == expect
    # The DSP is bypassed while the sensor is reconfigured and the DVP held in reset while
    # the sizes change.
    writes = r.i2c_writes()
    bypass_on, bypass_off = writes.index(("0", 0x05, 0x01)), writes.index(("0", 0x05, 0x00))
    assert bypass_on < writes.index(("1", 0x12, 0x40)) < bypass_off == len(writes) - 1
    dvp_hold, dvp_run = writes.index(("0", 0xE0, 0x04)), writes.index(("0", 0xE0, 0x00))
    assert dvp_hold < writes.index(("0", 0x5A, w // 4)) < dvp_run
    assert spi[-1] == ("spi", "W", "01", "00")  # one frame per capture


def test_arducam_capture_sequence(exe, tmp_path):
    r, expected = arducam_ok(exe, tmp_path, "qvga", "--captures", "2")
    n = 320 * 240 * 2
    assert r.captures == [(n, OK), (n, OK)]
    assert r.frame == expected  # the second capture too: FIFO pointers were reset
    spi = [t for t in r.log if t[0] == "spi"]
    first = spi.index(("spi", "W", "04", "01"))
    assert spi[first:first + 3] == [("spi", "W", "04", "01"), ("spi", "W", "04", "30"),
                                    ("spi", "W", "04", "02")]
    burst = spi.index(("spi", "BURST", str(n)), first)
    # done flag polled, then length 0x42..0x44, then one single read, then the burst
    assert spi[burst - 5][:3] == ("spi", "R", "41") and int(spi[burst - 5][3], 16) & 0x08
    assert [t[2] for t in spi[burst - 4:burst]] == ["42", "43", "44", "3d"]
    assert spi[burst + 1] == ("spi", "W", "04", "01")
    assert sum(1 for t in r.log if t[:2] == ("spi", "BURST")) == 2


@pytest.mark.parametrize("res", ["qvga", "qqvga"])
@pytest.mark.parametrize("shape", [(96, 96, 3), (96, 96, 1), (128, 160, 3)])
def test_arducam_frame_bit_exact_with_python(exe, tmp_path, res, shape):
    w, h = SIZES[res]
    r, expected = arducam_ok(exe, tmp_path, res, model=shape)
    assert r.captures == [(w * h * 2, OK)]
    assert r.frame == expected
    want = preprocess(expected, w, h, PixFmt.RGB565, shape)
    assert r.model_input is not None and r.model_input.shape == want.shape
    np.testing.assert_array_equal(r.model_input, want)
    assert want.std() > 20  # a real picture, not a flat frame


def test_arducam_fifo_byte_order_matters(exe, tmp_path):
    """The same frame loaded little endian into the FIFO must not pass: the swap is real."""
    rgb = scene(320, 240)
    r = run(exe, tmp_path, "arducam", "qvga", frame=to_rgb565(rgb).astype("<u2").tobytes())
    assert r.captures == [(320 * 240 * 2, OK)]
    assert r.frame != to_rgb565(rgb).astype("<u2").tobytes()


def test_arducam_no_spi_echo(exe, tmp_path):
    r, _ = arducam_ok(exe, tmp_path, "qvga", "--spi-dead")
    assert r.init == ERR_NO_SPI
    assert not [t for t in r.log if t[0] == "i2c"]  # gave up before the sensor


@pytest.mark.parametrize("pid", ["77:73", "26:00", "00:42"])
def test_arducam_wrong_sensor_id(exe, tmp_path, pid):
    r, _ = arducam_ok(exe, tmp_path, "qvga", "--wrong-id", pid)
    assert r.init == ERR_SENSOR_ID
    assert not [w for w in r.i2c_writes() if w[1] == 0xDA]  # no table loaded


def test_arducam_earlier_ov2640_revision_accepted(exe, tmp_path):
    r, _ = arducam_ok(exe, tmp_path, "qvga", "--wrong-id", "26:41")
    assert r.init == OK


def test_arducam_no_sensor_on_i2c(exe, tmp_path):
    r, _ = arducam_ok(exe, tmp_path, "qvga", "--no-sensor")
    assert r.init == ERR_BUS
    assert ("i2c", "NACK", "30") in r.log


def test_arducam_capture_timeout(exe, tmp_path):
    r, _ = arducam_ok(exe, tmp_path, "qvga", "--never-done")
    assert r.init == OK and r.captures == [(0, ERR_TIMEOUT)]
    start = r.index(("spi", "W", "04", "02"))
    waited = sum(int(t[1]) for t in r.log[start:] if t[0] == "delay")
    assert waited == CAPTURE_TIMEOUT_MS
    assert not [t for t in r.log if t[:2] == ("spi", "BURST")]
    assert r.log[-1] == ("spi", "W", "04", "01")  # done flag left clear
    assert r.frame is None


@pytest.mark.parametrize("extra, err", [(FIFO_SLACK, OK), (FIFO_SLACK + 1, ERR_FIFO_LENGTH),
                                        (50_000, ERR_FIFO_LENGTH)])
def test_arducam_fifo_length_above_frame(exe, tmp_path, extra, err):
    r, expected = arducam_ok(exe, tmp_path, "qvga", "--fifo-extra", str(extra))
    assert r.captures == [(320 * 240 * 2 if err == OK else 0, err)]
    if err == OK:
        assert r.frame == expected
    else:
        assert not [t for t in r.log if t[:2] == ("spi", "BURST")]


def test_arducam_fifo_shorter_than_frame(exe, tmp_path):
    rgb = scene(320, 240)
    r = run(exe, tmp_path, "arducam", "qvga", frame=rgb565_be(rgb)[:320 * 200 * 2])
    assert r.captures == [(0, ERR_FIFO_LENGTH)]


def test_arducam_wrong_size_configured_gives_length_error(exe, tmp_path):
    """A QQVGA-configured sensor with a QVGA scene: the fake's FIFO stays empty."""
    rgb = scene(320, 240)
    r = run(exe, tmp_path, "arducam", "qqvga", frame=rgb565_be(rgb))
    assert r.init == OK and r.captures == [(0, ERR_FIFO_LENGTH)]


def test_arducam_buffer_too_small(exe, tmp_path):
    r, _ = arducam_ok(exe, tmp_path, "qvga", "--cap", str(320 * 240 * 2 - 1))
    assert r.captures == [(0, ERR_BUF_TOO_SMALL)]
    assert ("spi", "W", "04", "02") not in r.log  # nothing started


def test_arducam_capture_before_init(exe, tmp_path):
    r, _ = arducam_ok(exe, tmp_path, "qvga", "--skip-init")
    assert r.init is None and r.captures == [(0, ERR_NOT_INIT)]
    assert not [t for t in r.log if t[0] in ("spi", "i2c")]


# ---- OV7675 ----

def ov7675_frame(res: str, out: str) -> tuple[bytes, bytes, PixFmt]:
    """(bytes on the parallel bus, the driver's expected output, its format)."""
    w, h = SIZES[res]
    rgb = scene(w, h)
    if out == "rgb565":
        return rgb565_be(rgb), to_rgb565(rgb).astype("<u2").tobytes(), PixFmt.RGB565
    wire, y = yuyv(rgb)
    return wire, y, PixFmt.GRAY8


def ov7675_ok(exe: Path, tmp_path: Path, res: str, out: str, *args: str, **kw) -> Run:
    wire, _, _ = ov7675_frame(res, out)
    return run(exe, tmp_path, "ov7675", res, out, *args, frame=wire, **kw)


@pytest.mark.parametrize("res", ["qvga", "qqvga"])
@pytest.mark.parametrize("out", ["rgb565", "gray8"])
def test_ov7675_init_sequence(exe, tmp_path, res, out):
    r = ov7675_ok(exe, tmp_path, res, out)
    assert r.init == OK
    assert r.log[0] == ("i2c", "W", "21", "-", "12", "80")  # reset first
    assert r.log[1][0] == "delay" and int(r.log[1][1]) >= 1
    assert r.log[2:6] == [("i2c", "P", "21", "0a"), ("i2c", "R", "21", "-", "0a", "76"),
                          ("i2c", "P", "21", "0b"), ("i2c", "R", "21", "-", "0b", "73")]
    assert sum(1 for w in r.i2c_writes() if w[1:] == (0x12, 0x80)) == 1
    rgb, qvga = out == "rgb565", res == "qvga"
    regs = r.regs()
    expect = {("-", 0x12): (0x10 if qvga else 0) | (0x04 if rgb else 0),  # COM7 size + format
              ("-", 0x40): 0xD0 if rgb else 0xC0,   # COM15: full range (+ RGB565)
              ("-", 0x8C): 0x00,                    # RGB444 off
              ("-", 0x04): 0x00,                    # COM1: no CCIR656
              ("-", 0x0C): 0x04,                    # COM3: downsampler on
              ("-", 0x3E): 0x19 if qvga else 0x1A,  # COM14: PCLK and manual scaling /2 or /4
              ("-", 0x72): 0x11 if qvga else 0x22,  # DCWCTR
              ("-", 0x73): 0xF1 if qvga else 0xF2}  # SCALING_PCLK_DIV
    assert {k: regs.get(k) for k in expect} == expect
    assert regs[("-", 0x3A)] & 0x08 == 0 and regs[("-", 0x3D)] & 0x01 == 0  # Y U Y V order


@pytest.mark.parametrize("res", ["qvga", "qqvga"])
@pytest.mark.parametrize("out", ["rgb565", "gray8"])
@pytest.mark.parametrize("shape", [(96, 96, 1), (96, 96, 3)])
def test_ov7675_frame_bit_exact_with_python(exe, tmp_path, res, out, shape):
    w, h = SIZES[res]
    wire, expected, fmt = ov7675_frame(res, out)
    r = run(exe, tmp_path, "ov7675", res, out, frame=wire, model=shape)
    assert r.captures == [(len(expected), OK)]
    assert r.frame == expected
    want = preprocess(expected, w, h, fmt, shape)
    assert r.model_input is not None
    np.testing.assert_array_equal(r.model_input, want)
    assert want.std() > 20


def test_ov7675_wrong_sensor_id(exe, tmp_path):
    r = ov7675_ok(exe, tmp_path, "qvga", "rgb565", "--wrong-id", "76:70")  # an OV7670 rev
    assert r.init == ERR_SENSOR_ID
    assert r.i2c_writes() == [("-", 0x12, 0x80)]  # nothing configured after the reset


def test_ov7675_short_frame(exe, tmp_path):
    r = ov7675_ok(exe, tmp_path, "qqvga", "gray8", "--short-frame")
    assert r.init == OK and r.captures == [(0, ERR_FRAME_SIZE)]


def test_ov7675_format_mismatch_gives_no_frame(exe, tmp_path):
    """Y U Y V bytes while the driver configured RGB565: the fake sensor sends nothing."""
    wire, _, _ = ov7675_frame("qqvga", "gray8")
    r = run(exe, tmp_path, "ov7675", "qqvga", "rgb565", "--frame-fmt", "yuyv", frame=wire)
    assert r.init == OK and r.captures == [(0, ERR_FRAME_SIZE)]
    r = run(exe, tmp_path, "ov7675", "qqvga", "gray8", "--frame-fmt", "yuyv", frame=wire)
    assert r.captures == [(160 * 120, OK)]  # the control: the same frame, asked for right


def test_ov7675_buffer_too_small(exe, tmp_path):
    # GRAY8 returns w * h bytes but needs w * h * 2 to receive the YUV422 frame.
    r = ov7675_ok(exe, tmp_path, "qqvga", "gray8", "--cap", str(160 * 120))
    assert r.captures == [(0, ERR_BUF_TOO_SMALL)]
    assert not [t for t in r.log if t[0] == "frame"]


def test_ov7675_needs_read_frame(exe, tmp_path):
    r = ov7675_ok(exe, tmp_path, "qvga", "rgb565", "--no-read-frame")
    assert r.init == ERR_ARG and r.log == []


def test_ov7675_no_sensor(exe, tmp_path):
    r = ov7675_ok(exe, tmp_path, "qvga", "rgb565", "--no-sensor")
    assert r.init == ERR_BUS


# ---- compilers ----

def test_drivers_warning_free_on_host_gcc(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    for src in DRIVER_SOURCES:
        subprocess.run(["gcc", *WARNINGS, "-Wconversion", "-Wshadow", "-O2", f"-I{DRIVERS}",
                        "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))], check=True)


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
def test_drivers_compile_for_cortex_m7_without_library_calls(tmp_path):
    from patchcam.targets.armbuild import CPU_FLAGS
    for src in DRIVER_SOURCES:
        obj = tmp_path / (src.stem + ".o")
        subprocess.run([str(ARM_GCC), *WARNINGS, *CPU_FLAGS, "-Os", f"-I{DRIVERS}", "-c",
                        str(src), "-o", str(obj)], check=True)
        nm = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True,
                            text=True, check=True)
        # Nothing undefined: no malloc, no libc, only the bus the board passes in.
        assert nm.stdout.split() == [], f"{src.name} calls {nm.stdout.split()}"
