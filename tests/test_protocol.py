"""The wire protocol (docs/protocol.md): shared vectors, round trips, fuzzing, Python == C.

The same tests/vectors/protocol.json is checked here against patchcam/host/protocol.py and by the C
test program (tests/c/test_pc_proto.c, AddressSanitizer + UBSan) against pc_proto.c; the C
decoder also runs 100k random / mutated inputs, and a long random stream is decoded by both
decoders, which must return the same items.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchcam.host import protocol as pp

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors" / "protocol.json"
C_TEST = ROOT / "tests" / "c" / "test_pc_proto.c"
PROTO_DIR = ROOT / "firmware" / "protocol"
FUZZ_INPUTS = 100_000
COUNTS: dict[str, int] = {}  # hypothesis examples run, by test (printed with -s)


def _vectors() -> list[dict]:
    return json.loads(VECTORS.read_text())["vectors"]


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


# ---- shared vectors ------------------------------------------------------------------------
def test_vector_file_matches_the_constants():
    doc = json.loads(VECTORS.read_text())
    assert (doc["version"], doc["max_payload"], doc["max_encoded"]) == \
        (pp.VERSION, pp.MAX_PAYLOAD, pp.MAX_ENCODED)
    header = (PROTO_DIR / "pc_proto.h").read_text()
    for name, value in (("VERSION", pp.VERSION), ("MAX_PAYLOAD", pp.MAX_PAYLOAD),
                        ("HEADER_BYTES", pp.HEADER_BYTES), ("CRC_BYTES", pp.CRC_BYTES),
                        ("CHUNK_HEADER_BYTES", pp.CHUNK_HEADER_BYTES)):
        assert f"#define PC_PROTO_{name} {value}\n" in header


@pytest.mark.parametrize("v", _vectors(), ids=lambda v: v["name"])
def test_python_decodes_vector(v):
    wire = bytes.fromhex(v["wire"])
    assert [pp.describe(i) for i in pp.Decoder().feed(wire)] == v["decoded"]
    # byte by byte: the same items
    dec = pp.Decoder()
    items = [i for b in wire for i in dec.feed(bytes([b]))]
    assert [pp.describe(i) for i in items] == v["decoded"]
    if v["roundtrip"]:
        (msg,) = pp.Decoder().feed(wire)
        assert pp.encode(msg) == wire


def test_crc_check_value():
    assert pp.crc32(b"123456789") == 0xCBF43926


@pytest.fixture(scope="module")
def c_test(tmp_path_factory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    exe = tmp_path_factory.mktemp("proto") / "test_pc_proto"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-g",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    f"-I{PROTO_DIR}", str(C_TEST), str(PROTO_DIR / "pc_proto.c"), "-o", str(exe)],
                   check=True)
    return exe


def test_c_decodes_vectors(c_test):
    r = subprocess.run([str(c_test), "vectors", str(VECTORS)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"vectors: {len(_vectors())} checked, 0 failed" in r.stdout


def test_c_decoder_fuzz(c_test):
    """100k random byte strings, valid packets and mutated packets (flipped bits, dropped /
    inserted bytes, truncation) under ASan + UBSan; after each one a PING must decode."""
    r = subprocess.run([str(c_test), "fuzz", str(FUZZ_INPUTS), "1"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"fuzz: {FUZZ_INPUTS} inputs" in r.stdout
    print(r.stdout.strip())


# 254 * k zero-free bytes are COBS's worst case (one more code byte than ceil(n / 254)); a
# 500-byte payload makes a zero-free 508-byte packet (its length field is 0x01F4).
COBS_BOUND_SIZES = (0, 1, 253, 254, 255, 500, 507, 508, 509, 754, 762, 1008, 1016, 1024, 1032)


def test_cobs_worst_case_fits_the_documented_size(c_test):
    """pc_cobs_encode of n non-zero bytes, and pc_encode of n-byte payloads, each into a buffer
    of exactly the documented size (AddressSanitizer catches one byte past it), for sizes
    around multiples of 254; C's PC_PROTO_COBS_MAX and Python's cobs_max agree with both
    encoders' actual output."""
    r = subprocess.run([str(c_test), "bounds", *map(str, COBS_BOUND_SIZES)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    got = {int(n): (int(c), int(w))
           for n, c, w in re.findall(r"bounds (\d+) cobs=(\d+) wire=(\d+)", r.stdout)}
    assert sorted(got) == sorted(COBS_BOUND_SIZES)
    for n in COBS_BOUND_SIZES:
        data = bytes(1 + i % 255 for i in range(n))
        assert got[n][0] == len(pp.cobs_encode(data)) == pp.cobs_max(n) == n + n // 254 + 1
        if n <= pp.MAX_PAYLOAD:
            packet_bytes = n + pp.HEADER_BYTES + pp.CRC_BYTES
            assert got[n][1] <= pp.cobs_max(packet_bytes) + 2
            if n >= 256 and n % 256:  # the packet has no zero byte: the worst case, exactly
                assert got[n][1] == pp.cobs_max(packet_bytes) + 2
    assert pp.cobs_max(254) == 256 and pp.cobs_max(508) == 511
    assert pp.MAX_ENCODED == pp.cobs_max(pp.MAX_PACKET) == 1037
    assert len(pp.cobs_encode(b"\x01" * pp.MAX_PACKET)) == pp.MAX_ENCODED


def _random_stream(seed: int, pieces: int) -> bytes:
    """Valid messages, valid-CRC packets with random payloads, mutations and garbage."""
    rng = np.random.default_rng(seed)
    out = bytearray()
    for _ in range(pieces):
        k = rng.integers(0, 6)
        if k == 0:
            out += bytes(rng.integers(0, 256, rng.integers(0, 80), dtype=np.uint8))
        elif k == 1:  # random payload for the types without text fields
            t = int(rng.choice([2, 3, 4, 7, 8, 9, 0, 10, 200]))
            n = int(rng.integers(0, 40))
            out += pp.frame_bytes(pp.packet(t, bytes(rng.integers(0, 256, n, dtype=np.uint8))))
        else:
            msg = _random_message(rng)
            w = bytearray(pp.encode(msg))
            if k == 5 and len(w) > 2:
                at = int(rng.integers(0, len(w)))
                w[at] ^= 1 << int(rng.integers(0, 8))
            if k == 4:
                w = w[:int(rng.integers(0, len(w)))]
            out += w
    return bytes(out)


def _random_message(rng: np.random.Generator) -> pp.Message:
    text = "".join(chr(c) for c in rng.integers(32, 127, rng.integers(0, 30)))
    u32 = int(rng.integers(0, 2**32))
    choice = rng.integers(0, 8)
    if choice == 0:
        return pp.Frame(u32, int(rng.integers(1, 60)), int(rng.integers(1, 60)),
                        pp.PixFmt(int(rng.integers(1, 4))), int(rng.integers(0, 5000)),
                        bytes(rng.integers(0, 256, rng.integers(1, 1010), dtype=np.uint8)))
    if choice == 1:
        dets = [pp.Detection(*(int(v) for v in rng.integers(0, 65536, 4)),
                             int(rng.integers(0, 256)), int(rng.integers(-128, 128)))
                for _ in range(rng.integers(0, 10))]
        return pp.Result(u32, pp.Task.DETECT, detections=dets, latency_us=u32 // 3,
                         total_us=u32 // 2, source=pp.Source(int(rng.integers(0, 2))))
    if choice == 2:
        return pp.Result(u32, pp.Task.CLASSIFY,
                         [int(v) for v in rng.integers(-128, 128, rng.integers(0, 20))])
    if choice == 3:
        return pp.Log(pp.LogLevel(int(rng.integers(0, 4))), text)
    if choice == 4:
        return pp.Error(int(rng.integers(0, 65536)), text, u32)
    if choice == 5:
        return pp.Set(int(rng.integers(0, 256)), int(rng.integers(-2**31, 2**31)))
    if choice == 6:
        return pp.Hello(pp.Task(int(rng.integers(0, 2))), *(int(v) for v in
                        rng.integers(0, 65536, 2)), 3, pp.PixFmt.RGB888,
                        output_scale=float(np.float32(rng.uniform(0, 1))),
                        output_zero_point=int(rng.integers(-128, 128)), board=text, app="a",
                        model=text[:5], classes=[text[:i] for i in range(rng.integers(0, 5))])
    return pp.Ping(u32)


def test_python_and_c_decode_the_same_stream(c_test):
    stream = _random_stream(7, 3000)
    r = subprocess.run([str(c_test), "describe"], input=stream, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    c_lines = r.stdout.decode().splitlines()
    py_lines = [pp.describe(i) for i in pp.Decoder().feed(stream)]
    assert len(py_lines) > 2000
    assert c_lines == py_lines


# ---- round trips and hypothesis fuzzing of the Python decoder -------------------------------
u32 = st.integers(0, 2**32 - 1)
u16 = st.integers(0, 2**16 - 1)
i8 = st.integers(-128, 127)
text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40).filter(
    lambda s: len(s.encode()) <= 255)
fmt = st.sampled_from(list(pp.PixFmt)[1:])
messages = st.one_of(
    st.builds(pp.Ping, u32),
    st.builds(pp.Pong, u32, u32, u32, u32),
    st.builds(pp.Set, st.sampled_from(list(pp.SetKey)), st.integers(-2**31, 2**31 - 1)),
    st.builds(pp.Log, st.sampled_from(list(pp.LogLevel)), text),
    st.builds(pp.Error, st.sampled_from(list(pp.ErrorCode)), text, u32),
    st.builds(pp.Frame, u32, u16, u16, fmt, u32, st.binary(min_size=1, max_size=1010)),
    st.builds(pp.Preview, u32, u16, u16, fmt, u32, st.binary(min_size=1, max_size=1010)),
    st.builds(pp.Result, u32, st.just(pp.Task.CLASSIFY), st.lists(i8, max_size=255),
              latency_us=u32, total_us=u32),
    st.builds(pp.Result, u32, st.just(pp.Task.DETECT), st.just([]),
              st.lists(st.builds(pp.Detection, u16, u16, u16, u16, st.integers(0, 255), i8),
                       max_size=90), latency_us=u32, total_us=u32,
              source=st.sampled_from(list(pp.Source))),
    st.builds(pp.Hello, st.sampled_from(list(pp.Task)), u16, u16, st.sampled_from([1, 3]),
              fmt, u16, u16, fmt, u32, u32, u32, u32,
              st.floats(width=32, allow_nan=False), i8, text, text, text,
              st.lists(text, max_size=8)),
    st.just(pp.HelloRequest()),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, min_size=1, max_size=4))
def test_round_trip(msgs):
    _count("round_trip")
    wire = b"".join(pp.encode(m) for m in msgs)
    assert pp.Decoder().feed(wire) == msgs


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=3000), u32)
def test_any_garbage_then_a_valid_message(garbage, token):
    """Whatever came before (garbage, a half frame), the next message decodes, and the
    decoder's output is the same however the bytes are split."""
    _count("garbage")
    wire = garbage + pp.encode(pp.Ping(token))
    items = pp.Decoder().feed(wire)
    assert items[-1] == pp.Ping(token)
    assert all(isinstance(i, pp.DecodeError) or isinstance(i, pp.Message) for i in items)
    dec = pp.Decoder()
    split = len(wire) // 3
    assert dec.feed(wire[:split]) + dec.feed(wire[split:]) == items


@settings(max_examples=600, deadline=None)
@given(st.lists(messages, min_size=1, max_size=3), st.data())
def test_mutated_frames_resynchronise(msgs, data):
    """Flip bits, drop / insert bytes or cut a frame short (a reset mid-frame): that frame
    is lost (a DecodeError, or at worst nothing), the next message always decodes."""
    _count("mutations")
    wire = bytearray(b"".join(pp.encode(m) for m in msgs))
    for _ in range(data.draw(st.integers(1, 4))):
        if not wire:
            break
        at = data.draw(st.integers(0, len(wire) - 1))
        how = data.draw(st.sampled_from(["flip", "drop", "insert", "truncate"]))
        if how == "flip":
            wire[at] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "drop":
            del wire[at]
        elif how == "insert":
            wire.insert(at, data.draw(st.integers(0, 255)))
        else:
            del wire[at:]
    sentinel = pp.Ping(0xC0FFEE)
    items = pp.Decoder().feed(bytes(wire) + pp.encode(sentinel))
    assert items[-1] == sentinel


@settings(max_examples=200, deadline=None)
@given(st.integers(pp.MAX_ENCODED + 1, 5000), u32)
def test_oversized_frames_are_dropped(n, token):
    _count("oversized")
    items = pp.Decoder().feed(b"\x01" * n + pp.encode(pp.Ping(token)))
    assert [type(i) for i in items] == [pp.DecodeError, pp.Ping]
    assert items[0].code == pp.ErrorCode.TOO_LONG


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255).filter(lambda v: v != pp.VERSION), u32)
def test_wrong_version_is_reported(version, token):
    _count("version")
    pkt = pp.packet(pp.MsgType.PING, struct.pack("<I", token), version)
    items = pp.Decoder().feed(pp.frame_bytes(pkt) + pp.encode(pp.Ping(token)))
    assert items[0].code == pp.ErrorCode.VERSION and items[1] == pp.Ping(token)


def test_encode_refuses_oversized_payloads():
    with pytest.raises(ValueError, match="MAX_PAYLOAD"):
        pp.encode(pp.Frame(1, 2000, 1, pp.PixFmt.GRAY8, 0, bytes(2000)))
    assert len(pp.encode(pp.Frame(1, 1010, 1, pp.PixFmt.GRAY8, 0, b"\xff" * 1010))) \
        <= pp.MAX_ENCODED + 2


def test_frame_chunks_and_image_assembler():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
    chunks = pp.frame_chunks(5, img, 40, 50, pp.PixFmt.RGB888)
    assert len(chunks) == 6 and all(len(pp.encode(c)) <= pp.MAX_ENCODED + 2 for c in chunks)
    asm = pp.ImageAssembler()
    done = [asm.add(c) for c in chunks]
    assert done[:-1] == [None] * 5
    assert done[-1] == (5, 40, 50, pp.PixFmt.RGB888, img.tobytes())
    # a lost chunk loses that image only
    assert [asm.add(c) for c in chunks[:2] + chunks[3:]] == [None] * 5
    assert [asm.add(c) for c in chunks][-1] is not None


def test_link_over_a_loopback_port():
    with pp.Link("loop://") as link:
        link.write(b"junk\x00")
        link.send(pp.Ping(3))
        link.send_frame(9, bytes(3000), 100, 30, pp.PixFmt.GRAY8)
        assert isinstance(link.receive(1), pp.DecodeError)
        assert link.wait_for(pp.Ping, 1) == pp.Ping(3)
        frames = [link.receive(1) for _ in range(3)]
        assert [f.offset for f in frames] == [0, 1010, 2020]
        assert link.receive(0.05) is None


# ---- validate: CRC-valid nonsense -----------------------------------------------------------
GOOD_HELLO = pp.Hello(pp.Task.DETECT, 160, 128, 3, pp.PixFmt.RGB888, output_scale=0.0625,
                      board="b", app="a", model="m", classes=["person", "bag"])
BAD = [  # (message, the field validate must name)
    (dataclasses.replace(GOOD_HELLO, input_w=0), "input_w"),
    (dataclasses.replace(GOOD_HELLO, input_h=5000), "input_h"),
    (dataclasses.replace(GOOD_HELLO, input_c=4), "input_c"),
    (dataclasses.replace(GOOD_HELLO, input_format=pp.PixFmt.GRAY8), "input_format"),
    (dataclasses.replace(GOOD_HELLO, task=2), "task"),
    (dataclasses.replace(GOOD_HELLO, protocol=0), "protocol"),
    (dataclasses.replace(GOOD_HELLO, output_scale=float("nan")), "output_scale"),
    (dataclasses.replace(GOOD_HELLO, output_scale=float("-inf")), "output_scale"),
    (dataclasses.replace(GOOD_HELLO, output_scale=1e30), "output_scale"),
    (dataclasses.replace(GOOD_HELLO, output_scale=0.0), "output_scale"),
    (dataclasses.replace(GOOD_HELLO, camera_format=4), "camera_format"),
    (dataclasses.replace(GOOD_HELLO, camera_w=320), "camera_w"),  # no camera: 0 x 0
    (dataclasses.replace(GOOD_HELLO, camera_format=pp.PixFmt.GRAY8, camera_w=320), "camera_h"),
    (dataclasses.replace(GOOD_HELLO, app="a\rb"), "app"),
    (pp.Preview(1, 8, 8, 9, 0, b"x"), "format"),
    (pp.Frame(1, 8, 0, pp.PixFmt.GRAY8, 0, b"x"), "height"),
    (pp.Preview(1, 8, 8, pp.PixFmt.GRAY8, 60, bytes(8)), "offset"),  # past 64 bytes
    (pp.Result(1, pp.Task.DETECT, source=2), "source"),
    (pp.Log(4, "x"), "level"),
    (pp.Error(0, "x"), "code"),
    (pp.Set(0, 1), "key"),
    (pp.Set(pp.SetKey.NMS_IOU_Q10, 1025), "value"),
    (pp.Set(pp.SetKey.MAX_DETECTIONS, 0), "value"),
    (pp.Set(pp.SetKey.STREAM, -2), "value"),
]
BAD_IN_CONTEXT = [  # RESULTs that only the board's HELLO (GOOD_HELLO) shows to be nonsense
    (pp.Result(1, pp.Task.CLASSIFY, scores=[1, 2]), "task"),
    (pp.Result(1, pp.Task.DETECT, detections=[pp.Detection(0, 0, 161, 10, 0, 1)]),
     "detections[0]"),
    (pp.Result(1, pp.Task.DETECT, detections=[pp.Detection(5, 9, 6, 8, 0, 1)]),
     "detections[0]"),
    (pp.Result(1, pp.Task.DETECT, detections=[pp.Detection(0, 0, 9, 9, 2, 1)]),
     "detections[0].cls"),
]


@pytest.mark.parametrize("msg, field", BAD, ids=[f"{type(m).__name__}-{f}" for m, f in BAD])
def test_validate_names_the_field_and_its_range(msg, field):
    err = pp.validate(msg)
    assert isinstance(err, pp.ProtocolError) and isinstance(err, pp.DecodeError)
    assert err.field == field and err.message is msg
    assert err.detail.split(" ", 1)[1].startswith(f"{field}=") and "(allowed: " in err.detail
    assert "\n" not in err.detail and "\r" not in err.detail


@pytest.mark.parametrize("msg, field", BAD_IN_CONTEXT)
def test_validate_checks_a_result_against_the_hello(msg, field):
    assert pp.validate(msg) is None  # on its own it is fine
    assert pp.validate(msg, GOOD_HELLO).field == field


def test_every_vector_message_is_valid():
    msgs = [i for v in _vectors() for i in pp.Decoder().feed(bytes.fromhex(v["wire"]))
            if not isinstance(i, pp.DecodeError)]
    assert len(msgs) > 20
    assert [m for m in msgs if pp.validate(m) is not None] == []
    ok = pp.Result(1, pp.Task.DETECT, detections=[pp.Detection(0, 0, 160, 128, 1, 5)])
    assert pp.validate(ok, GOOD_HELLO) is None  # boxes may touch the input's edge


def test_validating_decoder_drops_nonsense_and_goes_on():
    """Decoder(validate=True) (every Link's) turns each bad message into its ProtocolError,
    checks RESULTs against the last good HELLO, and decodes what follows; the plain Decoder
    (the codec, equal to C's) still returns the messages themselves."""
    bad = [m for m, _ in BAD] + [m for m, _ in BAD_IN_CONTEXT]
    good = [GOOD_HELLO, pp.Result(3, pp.Task.DETECT, detections=[])]
    wire = b"".join(pp.encode(m) for m in [good[0], *bad, good[1]])
    items = pp.Decoder(validate=True).feed(wire)
    assert items[0] == good[0] and items[-1] == good[1]
    assert [i.field for i in items[1:-1]] == [f for _, f in BAD + BAD_IN_CONTEXT]
    plain = pp.Decoder().feed(wire)
    assert not any(isinstance(i, pp.DecodeError) for i in plain)
    with pp.Link("loop://") as link:
        link.send(pp.Set(pp.SetKey.PREVIEW, 9))
        link.send(pp.Set(pp.SetKey.PREVIEW, 2))
        assert isinstance(link.receive(1), pp.ProtocolError)
        assert link.receive(1) == pp.Set(pp.SetKey.PREVIEW, 2)


def test_score_threshold_q_matches_decode_params():
    from patchcam.app.detect import DecodeParams
    for scale, zp, p in ((0.08, 0, 0.4), (0.02, -10, 0.9), (0.5, 3, 0.01), (0.001, 0, 0.99)):
        d = DecodeParams.prepare(scale, zp, 1, 8, (2, 2), (16, 16), p, 0.5)
        assert pp.score_threshold_q(p, scale, zp) == d.q_threshold


def test_report_hypothesis_counts():
    """Runs last in this file: prints how many hypothesis examples ran (pytest -s)."""
    print(f"hypothesis examples run: {COUNTS}")
