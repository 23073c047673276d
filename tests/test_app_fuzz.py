"""Hostile headers on a 32-bit build of the app loop (firmware/app/pc_size.h, docs/protocol.md).

On the Cortex-M7 size_t is 32 bits, so an unchecked `width * height * bpp` from a FRAME or
camera header wraps: 46341 x 46341 RGB565 "is" 9266 bytes. The app loop is built here with
`gcc -m32` (size_t of 32 bits, like the board) under AddressSanitizer + UBSan, with a small
generated detector:

- tests/c/fuzz_app_loop.c (firmware/app/app_main.c included whole, on a fake board) feeds
  100k hostile FRAME / SET / camera headers (random, extreme and 32-bit-wrapping sizes, bad
  formats, offsets, truncated payloads, out-of-range settings, garbage) through the loop's own
  byte handler and checks every reply against a 64-bit reference model: no sanitizer report,
  every bad header answered with the right ERROR, every good one served;
- the real app (app_main.c + the host board) over a pipe: wrapping FRAME headers get
  ERROR BAD_SIZE, a wrapping camera header turns the camera off (SET STREAM -> ERROR NO_CAMERA),
  and a valid frame after them still gets its RESULT.

Both with the detector run layer by layer and with a fused input in 2x3 cached patches (what
the apps ship): there process() only checks the frame (pc_preprocess_check), each patch's
input window is preprocessed straight from the received frame during inference
(model_invoke_source, pc_preprocess_window) and PREVIEW pixels are 1x1 windows, so the frames
that pass the size checks reach other code than in the layer-by-layer build.

Needs gcc's 32-bit multilib (`apt-get install gcc-multilib`, in scripts/setup.sh on x86-64).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import tiny_detector_model

from patchcam.compiler import codegen
from patchcam.host import protocol as pp
from patchcam.targets import armbuild, hostbuild

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "tests" / "c" / "fuzz_app_loop.c"
FRAME_MAX = 4096
FUZZ_INPUTS = 100_000
ENV = {"PATH": "/usr/bin:/bin"}


def _m32_works() -> bool:
    if shutil.which("gcc") is None:
        return False
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(["gcc", "-m32", *hostbuild.SANITIZERS, "-x", "c", "-", "-o",
                            str(Path(d) / "a")], input="int main(void){return 0;}\n",
                           capture_output=True, text=True)
        return r.returncode == 0


@pytest.fixture(scope="module", params=["layer", "fused"])
def build32(request, tmp_path_factory) -> tuple[Path, Path]:
    """(the fuzz harness, the real host-board app), both -m32 with ASan + UBSan; the detector
    layer by layer, or both ops in 2x3 cached patches with a fused input (MODEL_FUSED_INPUT:
    the app loop preprocesses each patch's input window from the frame)."""
    if not _m32_works():
        pytest.skip("needs gcc -m32 with AddressSanitizer (apt-get install gcc-multilib)")
    out = tmp_path_factory.mktemp(f"app32_{request.param}")
    _, _, model_dir = tiny_detector_model(out, request.param)
    flags = ["-m32", *hostbuild.WARNINGS, "-O1", "-g", *hostbuild.SANITIZERS,
             f"-DPC_APP_FRAME_MAX_BYTES={FRAME_MAX}"]
    includes = [f"-I{d}" for d in (model_dir, *codegen.runtime_include_dirs(),
                                   hostbuild.BOARD_INCLUDE, *armbuild.APP_LOOP_INCLUDES)]
    objs = out / "obj"
    objs.mkdir()
    common = [model_dir / "model.c", *codegen.runtime_sources(), *armbuild.APP_LOOP_SOURCES]
    subprocess.run(["gcc", *flags, *includes, "-c", *map(str, common)], cwd=objs, check=True)
    libs = sorted(map(str, objs.glob("*.o")))
    fuzz, app = out / "fuzz_app_loop", out / "app32"
    subprocess.run(["gcc", *flags, *includes, str(HARNESS), *libs, "-o", str(fuzz)], check=True)
    subprocess.run(["gcc", *flags, *includes, '-DPC_BOARD_NAME="host"', str(armbuild.APP_MAIN),
                    *map(str, hostbuild.HOST_BOARD_SOURCES), *libs, "-o", str(app)], check=True)
    return fuzz, app


def wrapping_sizes(limit: int) -> list[tuple[int, int, pp.PixFmt, int]]:
    """(w, h, format, w * h * bpp mod 2^32) with a product over 2^32 whose 32-bit remainder is
    1..limit bytes: what an unchecked size_t product on the board takes for a small image."""
    found = []
    for fmt in (pp.PixFmt.RGB565, pp.PixFmt.RGB888):
        bpp = fmt.bytes_per_pixel
        for w in range(65535, 20000, -1):
            h = -(-(1 << 32) // (bpp * w))
            wrapped = w * h * bpp - (1 << 32)
            if h <= 65535 and 0 < wrapped <= limit:
                found.append((w, h, fmt, wrapped))
                break
    return found


def test_wrapping_sizes_wrap():
    sizes = wrapping_sizes(pp.MAX_CHUNK_DATA)
    assert len(sizes) == 2
    for w, h, fmt, wrapped in sizes:
        assert w * h * fmt.bytes_per_pixel > 0xFFFFFFFF
        assert (w * h * fmt.bytes_per_pixel) & 0xFFFFFFFF == wrapped <= pp.MAX_CHUNK_DATA


def test_app_loop_fuzz_32bit(build32):
    fuzz, _ = build32
    r = subprocess.run([str(fuzz), str(FUZZ_INPUTS), "1"], capture_output=True, text=True,
                       timeout=300, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr[-4000:]
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr[-4000:]
    m = re.search(r"app fuzz: (\d+) inputs \(frame (\d+), set (\d+), camera (\d+), garbage "
                  r"(\d+); (\d+) headers over 2\^32 bytes\), (\d+) ERRORs, (\d+) RESULTs, every "
                  r"reply as expected, sizeof\(size_t\) 4", r.stdout)
    assert m, r.stdout
    n, frames, sets, cameras, _, wrapping, errors, results = map(int, m.groups())
    assert n == FUZZ_INPUTS
    assert min(frames, sets, cameras) > FUZZ_INPUTS // 10
    assert wrapping > FUZZ_INPUTS // 10  # the case the 32-bit board got wrong
    assert errors > FUZZ_INPUTS // 2 and results > 1000  # bad ones refused, good ones served
    print(r.stdout.strip())


def test_real_app_32bit_refuses_wrapping_frames(build32):
    _, app = build32
    hostile = [(46341, 46341, pp.PixFmt.RGB565, 9266), *wrapping_sizes(pp.MAX_CHUNK_DATA),
               *wrapping_sizes(FRAME_MAX)]
    wire = bytearray()
    for i, (w, h, fmt, wrapped) in enumerate(hostile):
        data = bytes(range(1, 256)) * 4
        wire += pp.encode(pp.Frame(100 + i, w, h, fmt, 0, data[:min(wrapped, pp.MAX_CHUNK_DATA)]))
        wire += pp.encode(pp.Ping(i))
    px = bytes(range(200)) * 3
    wire += b"".join(pp.encode(c) for c in pp.frame_chunks(7, px, 20, 10, pp.PixFmt.RGB888))
    r = subprocess.run([str(app)], input=bytes(wire), capture_output=True, timeout=60, env=ENV)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    items = pp.Decoder().feed(r.stdout)
    assert isinstance(items[0], pp.Hello) and items[0].max_frame_bytes == FRAME_MAX
    for i in range(len(hostile)):
        err, pong = items[1 + 2 * i: 3 + 2 * i]
        assert isinstance(err, pp.Error), (hostile[i], err)
        assert (err.code, err.frame_id, pong) == (pp.ErrorCode.BAD_SIZE, 100 + i,
                                                  pp.Pong(i, pong.uptime_us, 0, i + 1))
    assert [type(x) for x in items[1 + 2 * len(hostile):]] == [pp.Result]
    assert items[-1].frame_id == 7


def test_real_app_32bit_turns_a_wrapping_camera_off(build32, tmp_path):
    _, app = build32
    (w, h, fmt, wrapped), *_ = wrapping_sizes(FRAME_MAX)
    cam = tmp_path / "camera.raw"
    # a header whose frames "are" `wrapped` bytes in 32 bits, and those bytes
    cam.write_bytes(b"PCAM" + struct.pack("<HHB", w, h, int(fmt)) + bytes(7) +
                    bytes(range(1, 256)) * (wrapped // 255 + 1))
    wire = pp.encode(pp.HelloRequest()) + pp.encode(pp.Set(pp.SetKey.STREAM, -1)) + \
        pp.encode(pp.Ping(5))
    r = subprocess.run([str(app)], input=wire, capture_output=True, timeout=60,
                       env={**ENV, "PATCHCAM_CAMERA": str(cam)})
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    log, hello, hello2, err, pong = pp.Decoder().feed(r.stdout)
    assert log.level == pp.LogLevel.WARNING and "camera off" in log.text
    for hl in (hello, hello2):
        assert (hl.camera_w, hl.camera_h, hl.camera_format) == (0, 0, pp.PixFmt.NONE)
    assert err.code == pp.ErrorCode.NO_CAMERA
    assert (pong.token, pong.frames, pong.errors) == (5, 0, 1)
