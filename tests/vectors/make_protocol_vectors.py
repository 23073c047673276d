"""Regenerate tests/vectors/protocol.json (the wire protocol's shared test vectors).

    .venv/bin/python tests/vectors/make_protocol_vectors.py

Each vector: `wire` (hex, the bytes on the line), `decoded` (the items a decoder must return
for them, as protocol.describe lines: the C test prints the same), `roundtrip` (the wire is
exactly encode() of its one decoded message). The file is committed: a change to the Python
encoder that alters any of these bytes fails tests/test_protocol.py until regenerated on
purpose, and the C decoder is checked against the same file.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from patchcam.host import protocol as pp

OUT = Path(__file__).with_name("protocol.json")


def vectors() -> list[dict]:
    rng = np.random.default_rng(2024)
    v: list[tuple[str, bytes, bool]] = []

    def msg(name: str, m) -> None:
        v.append((name, pp.encode(m), True))

    def raw(name: str, wire: bytes) -> None:
        v.append((name, wire, False))

    hello = pp.Hello(pp.Task.DETECT, 160, 128, 3, pp.PixFmt.RGB888, 320, 240, pp.PixFmt.RGB565,
                     0xDEADBEEF, 131072, 500000, 230400, 0.0625, -3, "qemu_m7", "person_detect",
                     "person_detect", ["person"])
    msg("hello", hello)
    msg("hello_classify", pp.Hello(pp.Task.CLASSIFY, 96, 96, 1, pp.PixFmt.GRAY8,
                                   output_scale=0.00390625, output_zero_point=-128, board="host",
                                   app="vww", model="vww", classes=["no_person", "person"]))
    msg("hello_request", pp.HelloRequest())
    px = bytes(rng.integers(0, 256, 600, dtype=np.uint8))
    msg("frame_chunk", pp.Frame(7, 20, 15, pp.PixFmt.RGB565, 0, px))
    msg("frame_chunk_offset", pp.Frame(7, 20, 15, pp.PixFmt.RGB888, 600, px[:300]))
    msg("frame_max_payload", pp.Frame(0xFFFFFFFF, 1010, 1, pp.PixFmt.GRAY8, 0,
                                      bytes(rng.integers(1, 256, 1010, dtype=np.uint8))))
    msg("frame_zeros", pp.Frame(1, 100, 1, pp.PixFmt.GRAY8, 0, bytes(100)))
    msg("preview", pp.Preview(3, 12, 8, pp.PixFmt.GRAY8, 0, bytes(range(96))))
    msg("result_classify", pp.Result(9, pp.Task.CLASSIFY, [-128, 127, 0, 5], latency_us=1234,
                                     total_us=2345))
    msg("result_detect", pp.Result(10, pp.Task.DETECT, detections=[
        pp.Detection(0, 1, 159, 127, 0, 100), pp.Detection(20, 30, 40, 50, 1, -7)],
        latency_us=70000, total_us=71000, source=pp.Source.CAMERA))
    msg("result_detect_empty", pp.Result(11, pp.Task.DETECT, latency_us=1, total_us=2))
    msg("log", pp.Log(pp.LogLevel.WARNING, "camera: no more frames"))
    msg("log_long_cobs_run", pp.Log(pp.LogLevel.INFO, "a" * 600))
    msg("error", pp.Error(pp.ErrorCode.SEQUENCE, "FRAME chunk does not continue the image", 42))
    msg("error_unknown_code", pp.Error(999, "future", 0))
    msg("ping", pp.Ping(0x01020304))
    msg("ping_zero", pp.Ping(0))
    msg("pong", pp.Pong(5, 123456789, 10, 2))
    msg("set_score", pp.Set(pp.SetKey.SCORE_Q, -20))
    msg("set_stream_forever", pp.Set(pp.SetKey.STREAM, -1))

    ping = pp.encode(pp.Ping(77))
    raw("two_messages", pp.encode(pp.Ping(1)) + pp.encode(pp.Set(pp.SetKey.PREVIEW, 2)))
    raw("no_leading_delimiter", ping[1:] + ping[1:])
    raw("empty_frames", b"\x00\x00\x00" + ping + b"\x00\x00")
    raw("garbage_then_ping", b"hello garbage" + ping)
    raw("garbage_with_zeros_then_ping", bytes(rng.integers(0, 256, 200, dtype=np.uint8)) + ping)
    raw("truncated_then_ping", ping[:5] + ping)
    raw("reset_mid_frame_then_ping", pp.encode(pp.Frame(1, 10, 10, pp.PixFmt.GRAY8, 0,
                                                        bytes(range(1, 101))))[:60] + ping)
    flipped = bytearray(ping)
    flipped[4] ^= 0x10
    raw("flipped_bit_then_ping", bytes(flipped) + ping)
    raw("dropped_byte_then_ping", ping[:3] + ping[4:] + ping)
    raw("inserted_byte_then_ping", ping[:3] + b"\x55" + ping[3:] + ping)
    raw("too_long_then_ping", bytes([0x41]) * 2000 + ping)
    raw("exactly_max_encoded", bytes([0x41]) * pp.MAX_ENCODED + ping)
    raw("payload_over_max", pp.frame_bytes(pp.packet(pp.MsgType.LOG, b"\x01" + b"x" * 1024))
        + ping)
    raw("length_field_too_big", pp.frame_bytes(
        _with_length(pp.packet(pp.MsgType.PING, struct.pack("<I", 5)), 2000)) + ping)
    raw("length_field_too_small", pp.frame_bytes(
        _with_length(pp.packet(pp.MsgType.PING, struct.pack("<I", 5)), 2)) + ping)
    raw("wrong_version", pp.frame_bytes(pp.packet(pp.MsgType.PING, struct.pack("<I", 5), 2))
        + ping)
    raw("unknown_type", pp.frame_bytes(pp.packet(0x7F, b"abc")) + ping)
    raw("ping_too_short", pp.frame_bytes(pp.packet(pp.MsgType.PING, b"\x01\x02")) + ping)
    raw("ping_too_long", pp.frame_bytes(pp.packet(pp.MsgType.PING, b"\x01\x02\x03\x04\x05"))
        + ping)
    raw("result_unknown_task", pp.frame_bytes(pp.packet(
        pp.MsgType.RESULT, struct.pack("<IIIBBB", 1, 2, 3, 0, 9, 0))) + ping)
    raw("result_short_items", pp.frame_bytes(pp.packet(
        pp.MsgType.RESULT, struct.pack("<IIIBBB", 1, 2, 3, 0, 1, 2) + bytes(10))) + ping)
    raw("frame_without_data", pp.frame_bytes(pp.packet(
        pp.MsgType.FRAME, struct.pack("<IHHBBI", 1, 2, 2, 1, 0, 0))) + ping)
    raw("hello_truncated_strings", pp.frame_bytes(pp.packet(
        pp.MsgType.HELLO, pp._payload(hello)[:-3])) + ping)
    raw("too_short_for_header", b"\x00\x03\x01\x01\x00" + ping)
    raw("bad_cobs_code", b"\x00\x09\x01\x02\x00" + ping)
    return [{"name": n, "wire": w.hex(), "decoded": [pp.describe(i) for i in pp.Decoder().feed(w)],
             "roundtrip": rt} for n, w, rt in v]


def _with_length(pkt: bytes, length: int) -> bytes:
    """A packet whose length field says `length`, with a valid CRC (so only the length is
    wrong)."""
    body = pkt[:2] + struct.pack("<H", length) + pkt[4:-4]
    return body + struct.pack("<I", pp.crc32(body))


def main() -> None:
    doc = {"about": "wire protocol test vectors (docs/protocol.md); regenerate with "
                    "tests/vectors/make_protocol_vectors.py",
           "version": pp.VERSION, "max_payload": pp.MAX_PAYLOAD, "max_encoded": pp.MAX_ENCODED,
           "vectors": vectors()}
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{OUT}: {len(doc['vectors'])} vectors")


if __name__ == "__main__":
    main()
