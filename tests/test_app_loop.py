"""The app loop end to end over real transports (docs/design.md §4.5-4.7, §5.4).

- pc_preprocess.c / pc_detect.c == patchcam/app/preprocess.py / detect.py on random cases, and
  pc_preprocess_window == the same rectangle of pc_preprocess's whole image;
- the host board (AddressSanitizer + UBSan) over a pseudo-terminal and the qemu_m7 board
  (Cortex-M7 under QEMU) over TCP to its UART: every FRAME gets a RESULT equal, bit for bit, to
  patchcam/app/pipeline.py's on the same frame; garbage, truncated frames, flipped bits, a reset
  mid-frame, oversized frames, a wrong version ... get an ERROR (or are resynchronised) and
  the board keeps serving: no valid frame after a fault is lost.

Models are small and untrained (exactness does not need training): a 3-conv detector with a
(4, 6, 2 + 4) grid head and a random-graph grey classifier.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_detector_model

from patchcam.app import detect, export
from patchcam.app.export import AppSpec
from patchcam.app.pipeline import Pipeline
from patchcam.app.preprocess import preprocess
from patchcam.compiler import randgraph
from patchcam.host import protocol as pp
from patchcam.targets import armbuild, boards

ROOT = Path(__file__).resolve().parents[1]
APP_DIR = ROOT / "firmware" / "app"
FRAME_MAX = 4096
DEFINES = (f"PC_APP_FRAME_MAX_BYTES={FRAME_MAX}",)
HAVE_QEMU = boards.have_board("qemu_m7")


@pytest.fixture(scope="module", params=["layer", "fused"])
def det(request, tmp_path_factory):
    """The tiny detector run layer by layer, and with a fused input (what the apps ship): ops
    0..1 in 2x3 cached patches whose input windows the app loop preprocesses straight from the
    frame (model_invoke_source; cache mode: some patches read no new input)."""
    return tiny_detector_model(tmp_path_factory.mktemp(f"det_{request.param}"), request.param)


@pytest.fixture(scope="module")
def host_det(det):
    g, spec, model_dir = det
    return boards.build_board("host", model_dir, defines=DEFINES)


def random_frame(rng: np.random.Generator, max_bytes: int = FRAME_MAX):
    fmt = pp.PixFmt(int(rng.integers(1, 4)))
    while True:
        w, h = int(rng.integers(1, 48)), int(rng.integers(1, 40))
        if w * h * fmt.bytes_per_pixel <= max_bytes:
            break
    return rng.integers(0, 256, w * h * fmt.bytes_per_pixel, dtype=np.uint8).tobytes(), w, h, fmt


def until_result(link: pp.Link, frame_id: int, timeout: float = 20.0):
    """(items before it, the RESULT of frame_id); fails on any other RESULT first."""
    before = []
    while True:
        item = link.wait_for(lambda m: True, timeout)
        if isinstance(item, pp.Result):
            assert item.frame_id == frame_id, (item, before)
            return before, item
        before.append(item)


# ---- C == Python, unit level ---------------------------------------------------------------
@pytest.fixture(scope="module")
def app_harness(tmp_path_factory) -> Path:
    exe = tmp_path_factory.mktemp("harness") / "test_pc_app"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-g",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", f"-I{APP_DIR}",
                    str(ROOT / "tests" / "c" / "test_pc_app.c"), str(APP_DIR / "pc_preprocess.c"),
                    str(APP_DIR / "pc_detect.c"), "-o", str(exe)], check=True)
    return exe


def test_preprocess_c_matches_python(app_harness):
    rng = np.random.default_rng(0)
    cases, records = [], bytearray()
    for _ in range(400):
        px, w, h, fmt = random_frame(rng, 1 << 14)
        shape = (int(rng.integers(1, 50)), int(rng.integers(1, 50)), int(rng.choice([1, 3])))
        cases.append((px, w, h, fmt, shape))
        records += struct.pack("<HHBHHB", w, h, fmt, shape[1], shape[0], shape[2]) + px
    r = subprocess.run([str(app_harness), "preprocess"], input=bytes(records),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    out, pos = r.stdout, 0
    for px, w, h, fmt, shape in cases:
        (status,) = struct.unpack_from("<i", out, pos)
        n = int(np.prod(shape))
        got = np.frombuffer(out, np.int8, n, pos + 4).reshape(shape)
        pos += 4 + n
        assert status == 0
        np.testing.assert_array_equal(got, preprocess(px, w, h, fmt, shape))
    assert pos == len(out)


def test_preprocess_window_is_the_same_rectangle_of_the_whole_image(tmp_path):
    """pc_preprocess_window (what the app loop of a fused-input model streams the input with)
    == the same rectangle of pc_preprocess's image, byte for byte, over random sizes, formats
    (up- and downscaling, odd sizes) and windows; refused windows write nothing (C, ASan)."""
    exe = tmp_path / "test_preprocess_window"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-g",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", f"-I{APP_DIR}",
                    str(ROOT / "tests" / "c" / "test_preprocess_window.c"),
                    str(APP_DIR / "pc_preprocess.c"), "-o", str(exe)], check=True)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["36000", "windows"]


def test_preprocess_known_values():
    # RGB565 white / pure red / grey conversions and the centre-sampling resize
    white = struct.pack("<H", 0xFFFF)
    assert preprocess(white, 1, 1, pp.PixFmt.RGB565, (1, 1, 3)).tolist() == [[[127] * 3]]
    assert preprocess(white, 1, 1, pp.PixFmt.RGB565, (1, 1, 1)).tolist() == [[[127]]]
    red = struct.pack("<H", 0xF800)
    assert preprocess(red, 1, 1, pp.PixFmt.RGB565, (1, 1, 3)).tolist() == [[[127, -128, -128]]]
    row = bytes(range(0, 40, 10))  # 4 pixels -> 2: centres of 0..1 and 2..3 -> pixels 1, 3
    assert preprocess(row, 4, 1, pp.PixFmt.GRAY8, (1, 2, 1)).reshape(-1).tolist() == \
        [10 - 128, 30 - 128]


def test_detect_c_matches_python(app_harness):
    rng = np.random.default_rng(1)
    cases, records = [], bytearray()
    for _ in range(300):
        k = int(rng.integers(1, 4))
        gh, gw, stride = int(rng.integers(1, 7)), int(rng.integers(1, 9)), int(rng.choice([4, 8]))
        scale = float(rng.uniform(0.01, 0.3))
        p = detect.DecodeParams.prepare(scale, int(rng.integers(-20, 20)), k, stride, (gh, gw),
                                        (gw * stride, gh * stride), float(rng.uniform(0.05, 0.9)),
                                        float(rng.uniform(0, 1)), int(rng.integers(1, 40)),
                                        int(rng.integers(1, 20)), bool(rng.integers(0, 2)))
        q = rng.integers(-128, 128, (gh, gw, k + 4)).astype(np.int8)
        q[..., k:] = np.clip(q[..., k:].astype(int) + 60, -128, 127)
        cases.append((p, q))
        v = [p.num_classes, p.stride, gh, gw, p.image[0], p.image[1], p.zero_point,
             p.q_threshold, p.box_multiplier, detect.FRAC_BITS, p.iou_q10, p.max_candidates,
             p.max_detections, int(p.class_agnostic)]
        records += struct.pack("<14i", *v) + q.tobytes()
    r = subprocess.run([str(app_harness), "detect"], input=bytes(records), capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    out, pos, total = r.stdout, 0, 0
    for p, q in cases:
        (n,) = struct.unpack_from("<H", out, pos)
        pos += 2
        got = [struct.unpack_from("<4HBbH", out, pos + 12 * i) for i in range(n)]
        pos += 12 * n
        d = detect.decode_int8(q, p)
        want = [(*map(int, b), int(c), int(s), int(cell))
                for b, c, s, cell in zip(d.boxes, d.classes, d.scores, d.cells, strict=True)]
        assert got == want
        total += n
    assert total > 300  # the cases do produce detections


# ---- host board over a pty -----------------------------------------------------------------
def test_host_board_hello_and_frames(det, host_det):
    g, spec, model_dir = det
    pipe = Pipeline(g, spec)
    rng = np.random.default_rng(2)
    with boards.start_board("host", host_det) as board:
        h = board.hello
        assert (h.board, h.app, h.task, h.classes) == ("host", "tiny_det", pp.Task.DETECT,
                                                       ["a", "b"])
        assert (h.input_w, h.input_h, h.input_c, h.input_format) == (24, 16, 3, pp.PixFmt.RGB888)
        assert h.model_hash == export.model_hash(model_dir)
        assert h.max_frame_bytes == FRAME_MAX and h.camera_format == pp.PixFmt.NONE
        assert board.url.startswith("/dev/pts/")
        n_dets = 0
        for i in range(1, 21):
            px, w, h_, fmt = random_frame(rng)
            board.link.send_frame(i, px, w, h_, fmt)
            before, r = until_result(board.link, i)
            assert before == []
            assert r.same_outcome(pipe.run(px, w, h_, fmt, i)), i
            assert 0 < r.latency_us <= r.total_us
            n_dets += len(r.detections)
        assert n_dets > 20
        pong = board.link.ping(99)
        assert (pong.frames, pong.errors) == (20, 0)
        assert board.alive()


def _chunk_wires(frame_id: int, px: bytes, w: int, h: int, fmt: pp.PixFmt) -> list[bytes]:
    return [pp.encode(c) for c in pp.frame_chunks(frame_id, px, w, h, fmt)]


def fault_cases(rng: np.random.Generator):
    """(name, bytes to send, ERROR codes that may answer) -- each followed by a valid frame."""
    px, w, h, fmt = rng.integers(0, 256, 40 * 30 * 2, dtype=np.uint8).tobytes(), 40, 30, \
        pp.PixFmt.RGB565
    chunks = _chunk_wires(900, px, w, h, fmt)  # 3 chunks
    flipped = bytearray(chunks[1])
    flipped[len(flipped) // 2] ^= 0x04
    E = pp.ErrorCode
    ver2 = pp.frame_bytes(pp.packet(pp.MsgType.PING, struct.pack("<I", 1), version=2))
    bad_len = bytearray(pp.packet(pp.MsgType.PING, struct.pack("<I", 1)))
    bad_len[2:4] = struct.pack("<H", 3000)
    bad_len[-4:] = struct.pack("<I", pp.crc32(bytes(bad_len[:-4])))
    return [
        ("garbage", b"\x13\x37 line noise \xff\xfe" * 5, {E.FRAMING, E.CRC}),
        ("garbage_with_zeros", bytes(rng.integers(0, 256, 300, dtype=np.uint8)),
         {E.FRAMING, E.CRC, E.VERSION, E.MALFORMED, E.UNKNOWN_TYPE}),
        ("truncated_chunk", chunks[0][:len(chunks[0]) // 2], {E.FRAMING, E.CRC}),
        ("flipped_bit", chunks[0] + bytes(flipped) + chunks[2], {E.CRC, E.FRAMING, E.SEQUENCE}),
        ("dropped_byte", chunks[0][:100] + chunks[0][101:], {E.CRC, E.FRAMING}),
        ("reset_mid_frame", chunks[0] + chunks[1][:300], {E.FRAMING, E.CRC}),
        ("half_an_image", chunks[0] + chunks[1], set()),  # dropped when the next image starts
        ("oversized", b"\x01" * 3000, {E.TOO_LONG}),
        ("oversized_length_field", pp.frame_bytes(bytes(bad_len)), {E.MALFORMED}),
        ("wrong_version", ver2, {E.VERSION}),
        ("unknown_type", pp.frame_bytes(pp.packet(0x55, b"??")), {E.UNKNOWN_TYPE}),
        ("board_only_type", pp.encode(pp.Pong(1)), {E.UNKNOWN_TYPE}),
        ("malformed_ping", pp.frame_bytes(pp.packet(pp.MsgType.PING, b"\x01")), {E.MALFORMED}),
        ("short_frame_header", pp.frame_bytes(pp.packet(pp.MsgType.FRAME, b"\x01\x02\x03")),
         {E.MALFORMED}),
        ("bad_pixel_format", pp.encode(pp.Frame(901, 4, 4, 7, 0, bytes(16))), {E.BAD_FORMAT}),
        ("zero_size", pp.encode(pp.Frame(902, 0, 4, pp.PixFmt.GRAY8, 0, bytes(16))),
         {E.BAD_SIZE}),
        ("too_big", pp.encode(pp.Frame(903, 100, 100, pp.PixFmt.RGB888, 0, bytes(1000))),
         {E.BAD_SIZE}),
        ("out_of_order_chunk", chunks[1], {E.SEQUENCE}),
        ("chunk_past_end", pp.encode(pp.Frame(904, 4, 4, pp.PixFmt.GRAY8, 0, bytes(20))),
         {E.BAD_SIZE}),
        ("bad_setting", pp.encode(pp.Set(77, 1)), {E.BAD_SETTING}),
        ("bad_preview_value", pp.encode(pp.Set(pp.SetKey.PREVIEW, 99)), {E.BAD_SETTING}),
        ("stream_without_camera", pp.encode(pp.Set(pp.SetKey.STREAM, -1)), {E.NO_CAMERA}),
    ]


def run_faults(board: boards.VirtualBoard, pipe: Pipeline, cases, frame_size=(20, 14),
               fmt: pp.PixFmt = pp.PixFmt.RGB565) -> int:
    """Send each fault then a valid frame; check the ERROR and the frame's RESULT."""
    rng = np.random.default_rng(3)
    errors = 0
    for i, (name, wire, codes) in enumerate(cases):
        fid = 1000 + i
        w, h = frame_size
        px = rng.integers(0, 256, w * h * fmt.bytes_per_pixel, dtype=np.uint8).tobytes()
        board.link.write(wire)
        board.link.send_frame(fid, px, w, h, fmt)
        before, r = until_result(board.link, fid)
        errs = [m for m in before if isinstance(m, pp.Error)]
        others = [m for m in before if not isinstance(m, pp.Error)]
        assert others == [], (name, others)
        if codes:
            assert errs and {e.code for e in errs} <= codes, (name, errs)
        else:
            assert errs == [], (name, errs)
        errors += len(errs)
        assert r.same_outcome(pipe.run(px, w, h, fmt, fid)), name
    return errors


def test_host_board_survives_faults(det, host_det):
    g, spec, _ = det
    pipe = Pipeline(g, spec)
    cases = fault_cases(np.random.default_rng(4))
    with boards.start_board("host", host_det) as board:
        errors = run_faults(board, pipe, cases)
        pong = board.link.ping(7)
        assert (pong.frames, pong.errors) == (len(cases), errors)
        assert board.alive(), board.log()


def test_host_side_reset_mid_frame(det, host_det):
    """The host dies mid-frame and reconnects: the board drops the half frame, keeps going."""
    g, spec, _ = det
    pipe = Pipeline(g, spec)
    rng = np.random.default_rng(5)
    with boards.start_board("host", host_det) as board:
        px, w, h, fmt = rng.integers(0, 256, 40 * 30 * 3, dtype=np.uint8).tobytes(), 40, 30, \
            pp.PixFmt.RGB888
        wire = b"".join(_chunk_wires(1, px, w, h, fmt))
        board.link.write(wire[:len(wire) // 2])
        board.link.close()
        with pp.Link(board.url) as link:  # a new host process would do exactly this
            link.send_frame(2, px, w, h, fmt)
            _, r = until_result(link, 2)
            assert r.same_outcome(pipe.run(px, w, h, fmt, 2))


def test_host_board_settings_and_preview(det, host_det):
    g, spec, _ = det
    pipe = Pipeline(g, spec)
    rng = np.random.default_rng(6)
    frames = [random_frame(rng) for _ in range(4)]
    with boards.start_board("host", host_det) as board:
        for key, value in ((pp.SetKey.PREVIEW, 2), (pp.SetKey.SCORE_Q, 20),
                           (pp.SetKey.NMS_IOU_Q10, 200), (pp.SetKey.MAX_DETECTIONS, 3)):
            echo = board.link.set(key, value)
            assert echo == pp.Set(key, value)
            pipe.apply(echo)
        for i, (px, w, h, fmt) in enumerate(frames, 1):
            board.link.send_frame(i, px, w, h, fmt)
            before, r = until_result(board.link, i)
            asm = pp.ImageAssembler()
            done = [d for m in before if isinstance(m, pp.Preview) and (d := asm.add(m))]
            want_img, want_fmt = pipe.preview(px, w, h, fmt)
            assert len(done) == 1
            fid, tw, th, tfmt, data = done[0]
            assert (fid, tw, th, tfmt) == (i, 12, 8, want_fmt)
            assert data == want_img.tobytes()
            assert r.same_outcome(pipe.run(px, w, h, fmt, i))
            assert len(r.detections) <= 3


def test_host_board_camera_stream(det, host_det):
    g, spec, _ = det
    pipe = Pipeline(g, spec)
    rng = np.random.default_rng(7)
    w, h, fmt = 32, 24, pp.PixFmt.RGB565
    frames = [rng.integers(0, 256, w * h * 2, dtype=np.uint8).tobytes() for _ in range(5)]
    with boards.start_board("host", host_det,
                            camera=boards.camera_file(frames, w, h, fmt)) as board:
        assert (board.hello.camera_w, board.hello.camera_h, board.hello.camera_format) == \
            (w, h, fmt)
        assert board.link.set(pp.SetKey.STREAM, 3) == pp.Set(pp.SetKey.STREAM, 3)
        got = board.link.results(3, 20)
        assert board.link.set(pp.SetKey.STREAM, -1) == pp.Set(pp.SetKey.STREAM, -1)
        got += board.link.results(2, 20)
        log = board.link.wait_for(pp.Log, 10)
        assert "no more frames" in log.text
        for i, (r, px) in enumerate(zip(got, frames, strict=True), 1):
            assert r.same_outcome(pipe.run(px, w, h, fmt, i, pp.Source.CAMERA))


def test_host_board_classifier(tmp_path):
    g = randgraph.random_graph(3, size=(12, 10), channels=1)
    spec = AppSpec.classify("tiny_cls", g)
    model_dir = boards.prepare_model(g, spec, tmp_path)
    exe = boards.build_board("host", model_dir, defines=DEFINES)
    pipe = Pipeline(g, spec)
    rng = np.random.default_rng(8)
    with boards.start_board("host", exe) as board:
        assert (board.hello.task, board.hello.input_format) == (pp.Task.CLASSIFY,
                                                                pp.PixFmt.GRAY8)
        assert board.hello.classes == list(spec.classes)
        for i in range(1, 9):
            px, w, h, fmt = random_frame(rng)
            board.link.send_frame(i, px, w, h, fmt)
            _, r = until_result(board.link, i)
            want = pipe.run(px, w, h, fmt, i)
            assert r.same_outcome(want) and len(r.scores) == len(spec.classes)
        assert board.link.set(pp.SetKey.SCORE_Q, 3).code == pp.ErrorCode.BAD_SETTING


def test_host_board_over_a_pipe(det, host_det):
    """Without PATCHCAM_SERIAL the board speaks on stdin / stdout and exits at end of input."""
    g, spec, _ = det
    px = bytes(range(200)) * 3
    wire = pp.encode(pp.HelloRequest()) + b"".join(_chunk_wires(5, px, 20, 10, pp.PixFmt.RGB888))
    r = subprocess.run([str(host_det)], input=wire, capture_output=True, timeout=30,
                       env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    items = pp.Decoder().feed(r.stdout)
    assert [type(i) for i in items] == [pp.Hello, pp.Hello, pp.Result]
    assert items[2].same_outcome(Pipeline(g, spec).run(px, 20, 10, pp.PixFmt.RGB888, 5))


# ---- qemu_m7 over TCP ----------------------------------------------------------------------
qemu_only = pytest.mark.skipif(not HAVE_QEMU, reason="needs gcc-arm-none-eabi and "
                               "qemu-system-arm (make setup)")


@pytest.fixture(scope="module")
def qemu_det(det):
    if not HAVE_QEMU:
        pytest.skip("needs qemu")
    g, spec, model_dir = det
    return boards.build_board("qemu_m7", model_dir, defines=DEFINES)


@qemu_only
def test_qemu_board_frames_faults_camera_and_reset(det, qemu_det):
    g, spec, model_dir = det
    pipe = Pipeline(g, spec)
    rng = np.random.default_rng(9)
    w, h, fmt = 32, 24, pp.PixFmt.RGB565
    cam = [rng.integers(0, 256, w * h * 2, dtype=np.uint8).tobytes() for _ in range(3)]
    with boards.start_board("qemu_m7", qemu_det,
                            camera=boards.camera_file(cam, w, h, fmt)) as board:
        hello = board.hello
        assert (hello.board, hello.model_hash) == ("qemu_m7", export.model_hash(model_dir))
        assert board.url.startswith("socket://127.0.0.1:")
        # frames over the (slow) UART: small ones
        for i in range(1, 7):
            px, fw, fh, ffmt = random_frame(rng, 600)
            board.link.send_frame(i, px, fw, fh, ffmt)
            before, r = until_result(board.link, i)
            assert before == [] and r.same_outcome(pipe.run(px, fw, fh, ffmt, i))
            assert 0 < r.latency_us <= r.total_us
        # faults, each followed by a valid frame
        cases = [c for c in fault_cases(np.random.default_rng(10)) if c[0] in {
            "garbage", "truncated_chunk", "flipped_bit", "reset_mid_frame", "oversized",
            "oversized_length_field", "wrong_version", "unknown_type", "bad_pixel_format",
            "too_big", "out_of_order_chunk", "bad_setting"}]
        errors = run_faults(board, pipe, cases, frame_size=(12, 8))
        pong = board.link.ping(3)
        assert (pong.frames, pong.errors) == (6 + len(cases), errors)
        # frames from the semihosting camera
        assert board.link.set(pp.SetKey.STREAM, -1) == pp.Set(pp.SetKey.STREAM, -1)
        got = board.link.results(3, 30)
        for i, (r, px) in enumerate(zip(got, cam, strict=True), 1):
            assert r.same_outcome(pipe.run(px, w, h, fmt, i, pp.Source.CAMERA))
        assert "no more frames" in board.link.wait_for(pp.Log, 10).text
        # a board-side reset mid-frame: half a frame sent, the CPU resets, HELLO again
        px, fw, fh, ffmt = random_frame(rng, 600)
        wire = b"".join(_chunk_wires(50, px, fw, fh, ffmt))
        board.link.write(wire[:len(wire) // 2])
        board.reset()
        assert isinstance(board.link.wait_for(pp.Hello, 20), pp.Hello)
        board.link.send_frame(51, px, fw, fh, ffmt)
        _, r = until_result(board.link, 51)
        assert r.same_outcome(pipe.run(px, fw, fh, ffmt, 51))
        assert board.alive(), board.log()


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or
                    shutil.which("arm-none-eabi-nm") is None,
                    reason="needs gcc-arm-none-eabi (make setup)")
def test_fused_app_image_holds_no_full_size_input(det, tmp_path):
    """The app loop of a fused-input model preprocesses each input window from the frame: its
    Cortex-M7 image has no model_frame (the static whole input behind model_input(), in a
    section of its own that --gc-sections drops), while the test runner (infer_main.c, which
    writes the input to model_input()) keeps it, MODEL_INPUT_BYTES long."""
    g, spec, model_dir = det
    if "#define MODEL_FUSED_INPUT 1" not in (model_dir / "model.h").read_text():
        pytest.skip("layer by layer: the input lives in the arena, there is no such buffer")

    def symbols(elf: Path) -> dict[str, int]:
        out = subprocess.run(["arm-none-eabi-nm", "--print-size", str(elf)], check=True,
                             capture_output=True, text=True).stdout
        return {f[3]: int(f[1], 16) for f in map(str.split, out.splitlines()) if len(f) == 4}

    app = symbols(armbuild.build_app(model_dir, tmp_path / "app", defines=DEFINES).elf)
    runner = symbols(armbuild.build(model_dir, tmp_path / "runner").elf)
    x = g.tensors[g.input]
    assert runner["model_frame"] == x.size
    assert "model_frame" not in app and "model_invoke_frame" not in app
    assert "model_invoke_source" in app and app["model_arena"] == runner["model_arena"]


def test_have_tools():
    assert shutil.which("gcc") is not None


def test_host_board_text_until_hello(det, tmp_path):
    """PC_APP_TEXT_UNTIL_HELLO (the Nano's standalone mode): from boot the board streams its
    camera and prints one readable line per frame (the detections patchcam.app.pipeline finds,
    with the viewer's probabilities), nothing binary; a HELLO from a host switches it to the
    protocol (its HELLO answer, then FRAMEs as usual)."""
    import os
    import re
    import select
    import time

    from patchcam.host.viewer import overlay
    g, spec, model_dir = det
    exe = boards.build_board("host", model_dir, tmp_path / "b",
                             defines=(*DEFINES, "PC_APP_TEXT_UNTIL_HELLO=1"))
    rng = np.random.default_rng(11)
    w, h, fmt = 32, 24, pp.PixFmt.RGB565
    frames = [rng.integers(0, 256, w * h * 2, dtype=np.uint8).tobytes() for _ in range(3)]
    cam = tmp_path / "cam.pcam"
    cam.write_bytes(boards.camera_file(frames, w, h, fmt))
    log = tmp_path / "board.log"
    env = {"PATH": "/usr/bin:/bin", "PATCHCAM_SERIAL": "pty", "PATCHCAM_CAMERA": str(cam)}
    with open(log, "wb") as logf:
        proc = subprocess.Popen([str(exe)], env=env, stdout=logf, stderr=logf,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (m := re.search(r"board_host: serial on (\S+)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.01)
        # read what is queued on the pty as it is (pyserial's open would flush it)
        fd = os.open(m.group(1), os.O_RDWR | os.O_NOCTTY)
        text = b""
        while text.count(b"\r\n") < 4 and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                text += os.read(fd, 4096)
        os.close(fd)
        lines = text.decode("ascii").split("\r\n")
        assert lines[0] == "patchcam tiny_det on host: one line per camera frame; the viewer " \
                           "takes over when it connects"
        with pp.Link(m.group(1)) as link:
            hello = link.hello(timeout=10)
            assert hello.app == "tiny_det"
            pipe = Pipeline(g, spec)
            for i, px in enumerate(frames, 1):
                r = pipe.run(px, w, h, fmt, i, pp.Source.CAMERA)
                boxes = "; ".join(
                    f"{overlay.class_name(hello, d.cls)} "
                    f"{round(100 * overlay.detection_probability(d, hello))}% at "
                    f"{d.x0},{d.y0}-{d.x1},{d.y1}" for d in r.detections)
                n = len(r.detections)
                head = (f"frame {i}: {n} {'box' if n == 1 else 'boxes'}: {boxes}; " if n
                        else f"frame {i}: no boxes; ")
                if lines[i].endswith("..."):  # more boxes than the 256-byte line holds
                    assert len(lines[i]) == 255 and head.startswith(lines[i][:-3])
                else:
                    assert lines[i].startswith(head) and \
                        re.fullmatch(r"\d+\.\d ms", lines[i][len(head):]), (lines[i], head)
            # the protocol from now on: a FRAME gets its RESULT
            link.send_frame(9, frames[0], w, h, fmt)
            res = link.wait_for(pp.Result, 20)
            assert res.same_outcome(pipe.run(frames[0], w, h, fmt, 9, pp.Source.FRAME))
    finally:
        proc.kill()
        proc.wait()
