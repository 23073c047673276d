"""The wire protocol between a board and the host (docs/design.md §4.5; spec: docs/protocol.md).

    wire = encode(Ping(token=7))          # bytes: 00 | COBS(packet) | 00
    dec = Decoder()
    items = dec.feed(chunk)               # list of messages and DecodeError items, in order

Message classes (dataclasses; `encode` and `Decoder` handle all of them):

    Hello        board -> host: protocol, task, input/camera shape + format, model hash,
                 arena / flash / max frame bytes, output quantisation, board/app/model names,
                 class names.  HelloRequest (empty HELLO) host -> board: "send your HELLO".
    Frame        host -> board: one chunk of an image (frame_id, width, height, fmt, offset,
                 data). `frame_chunks(...)` splits an image into Frames.
    Result       board -> host: frame_id, latency_us, total_us, source, task, scores
                 (classify: the int8 outputs) or detections (list[Detection]).
    Preview      board -> host: one chunk of a thumbnail (same layout as Frame);
                 `ImageAssembler` puts chunks back together.
    Log, Error, Ping, Pong, Set (key: SetKey, value: int).

`Decoder.feed` never raises on bad input: a frame that fails COBS, CRC, version, length or
parsing comes back as a `DecodeError` (an Exception subclass with `.code: ErrorCode`), and
decoding resumes at the next 0x00 delimiter.

A frame can pass all of that and still say nonsense (a HELLO with input width 0, a NaN output
scale, a PREVIEW in pixel format 9). `validate(msg, hello)` is the one place that checks every
field against its documented range (docs/protocol.md, "Ranges"), and in a RESULT the boxes and
classes against the board's HELLO; it returns a `ProtocolError` (a DecodeError) naming the field,
its value and what is allowed. `Decoder(validate=True)`, which every `Link` uses, hands such a
message back as that error instead, so nothing on the host acts on it. The plain `Decoder()`
is the codec alone, the same as the C decoder (they share the test vectors).

`Link(url)` wraps a pyserial port (`"/dev/pts/3"`, `"/dev/ttyACM0"`, `"socket://127.0.0.1:5555"`,
`"loop://"`): `send(msg)`, `send_frame(...)`, `receive(timeout) -> msg | DecodeError | None`,
`wait_for(cls_or_predicate, timeout)`, `hello(timeout)`, `ping(timeout)`, `set(key, value)`,
`close()`. `patchcam.targets.boards.start_board` starts a virtual board and gives its Link.
"""

from __future__ import annotations

import enum
import math
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

VERSION = 1
HEADER_BYTES = 4  # version u8, type u8, length u16
CRC_BYTES = 4
MAX_PAYLOAD = 1024
MAX_PACKET = HEADER_BYTES + MAX_PAYLOAD + CRC_BYTES  # 1032


def cobs_max(n: int) -> int:
    """COBS worst case for n bytes (none of them 0x00): one code byte per full run of 254 bytes
    plus the code byte of the last, possibly empty, run. PC_PROTO_COBS_MAX(n) in pc_proto.h."""
    return n + n // 254 + 1


MAX_ENCODED = cobs_max(MAX_PACKET)  # 1037
CHUNK_HEADER_BYTES = 14  # frame_id, width, height, format, reserved, offset
MAX_CHUNK_DATA = MAX_PAYLOAD - CHUNK_HEADER_BYTES  # 1010


class MsgType(enum.IntEnum):
    HELLO = 0x01
    FRAME = 0x02
    RESULT = 0x03
    PREVIEW = 0x04
    LOG = 0x05
    ERROR = 0x06
    PING = 0x07
    PONG = 0x08
    SET = 0x09


class PixFmt(enum.IntEnum):
    """board_pixfmt_t (firmware/boards/board.h)."""
    NONE = 0
    GRAY8 = 1
    RGB565 = 2
    RGB888 = 3

    @property
    def bytes_per_pixel(self) -> int:
        return (0, 1, 2, 3)[self]


class Task(enum.IntEnum):
    CLASSIFY = 0
    DETECT = 1


class Source(enum.IntEnum):
    FRAME = 0
    CAMERA = 1


class ErrorCode(enum.IntEnum):
    CRC = 1
    FRAMING = 2
    TOO_LONG = 3
    VERSION = 4
    UNKNOWN_TYPE = 5
    MALFORMED = 6
    BAD_FORMAT = 7
    BAD_SIZE = 8
    SEQUENCE = 9
    BAD_SETTING = 10
    NO_CAMERA = 11


class SetKey(enum.IntEnum):
    SCORE_Q = 1
    NMS_IOU_Q10 = 2
    MAX_DETECTIONS = 3
    PREVIEW = 4
    STREAM = 5


class LogLevel(enum.IntEnum):
    DEBUG = 0
    INFO = 1
    WARNING = 2
    ERROR = 3


def _enum(cls, v: int):
    try:
        return cls(v)
    except ValueError:
        return v  # unknown values pass through as ints (enums are only appended to)


# ---- messages ------------------------------------------------------------------------------
@dataclass
class Hello:
    TYPE: ClassVar[MsgType] = MsgType.HELLO
    task: Task
    input_w: int
    input_h: int
    input_c: int
    input_format: PixFmt
    camera_w: int = 0
    camera_h: int = 0
    camera_format: PixFmt = PixFmt.NONE
    model_hash: int = 0
    arena_bytes: int = 0
    flash_bytes: int = 0
    max_frame_bytes: int = 0
    output_scale: float = 1.0
    output_zero_point: int = 0
    board: str = ""
    app: str = ""
    model: str = ""
    classes: list[str] = field(default_factory=list)
    protocol: int = VERSION


@dataclass
class HelloRequest:
    """An empty HELLO, host -> board: the board answers with its Hello."""
    TYPE: ClassVar[MsgType] = MsgType.HELLO


@dataclass
class Frame:
    """One chunk of an image, host -> board."""
    TYPE: ClassVar[MsgType] = MsgType.FRAME
    frame_id: int
    width: int
    height: int
    format: PixFmt
    offset: int
    data: bytes

    @property
    def total_bytes(self) -> int:
        return self.width * self.height * PixFmt(self.format).bytes_per_pixel


@dataclass
class Preview(Frame):
    """One chunk of a thumbnail, board -> host (same layout as Frame)."""
    TYPE: ClassVar[MsgType] = MsgType.PREVIEW


@dataclass
class Detection:
    x0: int
    y0: int
    x1: int
    y1: int
    cls: int
    score: int  # the int8 logit of the winning class


@dataclass
class Result:
    TYPE: ClassVar[MsgType] = MsgType.RESULT
    frame_id: int
    task: Task
    scores: list[int] = field(default_factory=list)  # classify: int8 output per class
    detections: list[Detection] = field(default_factory=list)  # detect
    latency_us: int = 0
    total_us: int = 0
    source: Source = Source.FRAME

    def same_outcome(self, other: Result) -> bool:
        """Equal apart from the timings (what must be bit-exact across executors)."""
        return (self.frame_id, self.task, self.scores, self.detections, self.source) == \
            (other.frame_id, other.task, other.scores, other.detections, other.source)

    @property
    def label(self) -> int:
        """Classify: the first arg-max class."""
        return int(np.argmax(self.scores)) if self.scores else -1


@dataclass
class Log:
    TYPE: ClassVar[MsgType] = MsgType.LOG
    level: LogLevel
    text: str


@dataclass
class Error:
    TYPE: ClassVar[MsgType] = MsgType.ERROR
    code: ErrorCode
    text: str = ""
    frame_id: int = 0


@dataclass
class Ping:
    TYPE: ClassVar[MsgType] = MsgType.PING
    token: int


@dataclass
class Pong:
    TYPE: ClassVar[MsgType] = MsgType.PONG
    token: int
    uptime_us: int = 0
    frames: int = 0
    errors: int = 0


@dataclass
class Set:
    TYPE: ClassVar[MsgType] = MsgType.SET
    key: SetKey
    value: int


Message = Hello | HelloRequest | Frame | Preview | Result | Log | Error | Ping | Pong | Set


class DecodeError(Exception):
    """A frame that could not be decoded; returned by Decoder.feed, not raised."""

    def __init__(self, code: ErrorCode, message: str, raw: bytes = b"") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.raw = raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DecodeError) and (self.code, self.args) == (other.code,
                                                                             other.args)

    def __hash__(self) -> int:
        return hash((self.code, self.args))


class ProtocolError(DecodeError):
    """A message that decoded but holds a value outside its documented range: `.detail` is
    one line naming the message, the field, its value and what is allowed; `.message` is the
    message itself (never acted on)."""

    def __init__(self, msg: Message, field: str, value: object, allowed: str) -> None:
        name = "PREVIEW" if isinstance(msg, Preview) else msg.TYPE.name
        self.detail = f"{name} {field}={_show(value)} (allowed: {allowed})"
        super().__init__(ErrorCode.MALFORMED, self.detail)
        self.message, self.field = msg, field


# ---- COBS and CRC --------------------------------------------------------------------------
def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC (zlib's): the packet checksum."""
    return zlib.crc32(data) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of cobs_encode; ValueError on a 0x00 or a code running past the end."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ValueError("zero byte inside a COBS frame")
        end = i + code
        if end > n:
            raise ValueError("COBS code runs past the end of the frame")
        block = data[i + 1:end]
        if 0 in block:
            raise ValueError("zero byte inside a COBS frame")
        out += block
        if code < 255 and end < n:
            out.append(0)
        i = end
    return bytes(out)


# ---- payloads ------------------------------------------------------------------------------
def _str(s: str) -> bytes:
    b = s.encode()[:255]
    return bytes([len(b)]) + b


def _payload(msg: Message) -> bytes:
    if isinstance(msg, HelloRequest):
        return b""
    if isinstance(msg, Hello):
        if len(msg.classes) > 255:
            raise ValueError("at most 255 classes")
        head = struct.pack("<BBHHBBHHBIIIIfb", msg.protocol, msg.task, msg.input_w, msg.input_h,
                           msg.input_c, msg.input_format, msg.camera_w, msg.camera_h,
                           msg.camera_format, msg.model_hash, msg.arena_bytes, msg.flash_bytes,
                           msg.max_frame_bytes, msg.output_scale, msg.output_zero_point)
        return (head + _str(msg.board) + _str(msg.app) + _str(msg.model) +
                bytes([len(msg.classes)]) + b"".join(_str(c) for c in msg.classes))
    if isinstance(msg, Frame):  # and Preview
        return struct.pack("<IHHBBI", msg.frame_id, msg.width, msg.height, msg.format, 0,
                           msg.offset) + bytes(msg.data)
    if isinstance(msg, Result):
        items = msg.scores if msg.task == Task.CLASSIFY else msg.detections
        head = struct.pack("<IIIBBB", msg.frame_id, msg.latency_us, msg.total_us, msg.source,
                           msg.task, len(items))
        if msg.task == Task.CLASSIFY:
            return head + struct.pack(f"<{len(items)}b", *msg.scores)
        return head + b"".join(struct.pack("<HHHHBb", d.x0, d.y0, d.x1, d.y1, d.cls, d.score)
                               for d in msg.detections)
    if isinstance(msg, Log):
        return bytes([msg.level]) + msg.text.encode()
    if isinstance(msg, Error):
        return struct.pack("<HI", msg.code, msg.frame_id) + msg.text.encode()
    if isinstance(msg, Ping):
        return struct.pack("<I", msg.token)
    if isinstance(msg, Pong):
        return struct.pack("<IIII", msg.token, msg.uptime_us, msg.frames, msg.errors)
    if isinstance(msg, Set):
        return struct.pack("<Bi", msg.key, msg.value)
    raise TypeError(f"not a protocol message: {msg!r}")


def packet(msg_type: int, payload: bytes, version: int = VERSION) -> bytes:
    """version | type | length | payload | crc (before COBS). No size check: tests use it
    to build oversized or wrong-version packets."""
    body = struct.pack("<BBH", version, msg_type, len(payload) & 0xFFFF) + payload
    return body + struct.pack("<I", crc32(body))


def frame_bytes(pkt: bytes) -> bytes:
    """A packet as it goes on the wire: 00 | COBS(pkt) | 00."""
    return b"\x00" + cobs_encode(pkt) + b"\x00"


def encode(msg: Message) -> bytes:
    """The wire bytes of one message: 00 | COBS(version | type | length | payload | crc) | 00."""
    payload = _payload(msg)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"{type(msg).__name__}: payload of {len(payload)} bytes is over "
                         f"MAX_PAYLOAD ({MAX_PAYLOAD}); split images with frame_chunks")
    return frame_bytes(packet(msg.TYPE, payload))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        n = struct.calcsize(fmt)
        if self.pos + n > len(self.data):
            raise ValueError("payload too short")
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += n
        return v

    def str(self) -> str:
        (n,) = self.take("<B")
        (b,) = self.take(f"<{n}s")
        return b.decode(errors="replace")

    def rest(self) -> bytes:
        b = self.data[self.pos:]
        self.pos = len(self.data)
        return b

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ValueError(f"{len(self.data) - self.pos} bytes after the payload")


def parse(msg_type: int, payload: bytes) -> Message:
    """A message from its type and payload; ValueError when the payload does not parse,
    KeyError for an unknown type."""
    r = _Reader(payload)
    t = MsgType(msg_type) if msg_type in MsgType._value2member_map_ else None
    if t is None:
        raise KeyError(msg_type)
    if t == MsgType.HELLO:
        if not payload:
            return HelloRequest()
        (proto, task, iw, ih, ic, ifmt, cw, ch, cfmt, mh, arena, flash, maxf, oscale,
         ozp) = r.take("<BBHHBBHHBIIIIfb")
        board, app, model = r.str(), r.str(), r.str()
        (n,) = r.take("<B")
        classes = [r.str() for _ in range(n)]
        r.end()
        return Hello(_enum(Task, task), iw, ih, ic, _enum(PixFmt, ifmt), cw, ch,
                     _enum(PixFmt, cfmt), mh, arena, flash, maxf, oscale, ozp, board, app, model,
                     classes, proto)
    if t in (MsgType.FRAME, MsgType.PREVIEW):
        fid, w, h, fmt, _, off = r.take("<IHHBBI")
        data = r.rest()
        if not data:
            raise ValueError("image chunk without data")
        cls = Frame if t == MsgType.FRAME else Preview
        return cls(fid, w, h, _enum(PixFmt, fmt), off, data)
    if t == MsgType.RESULT:
        fid, lat, tot, src, task, n = r.take("<IIIBBB")
        if task == Task.CLASSIFY:
            scores = list(r.take(f"<{n}b"))
            dets: list[Detection] = []
        elif task == Task.DETECT:
            scores = []
            dets = [Detection(*r.take("<HHHHBb")) for _ in range(n)]
        else:
            raise ValueError(f"unknown task {task}")
        r.end()
        return Result(fid, Task(task), scores, dets, lat, tot, _enum(Source, src))
    if t == MsgType.LOG:
        (level,) = r.take("<B")
        return Log(_enum(LogLevel, level), r.rest().decode(errors="replace"))
    if t == MsgType.ERROR:
        code, fid = r.take("<HI")
        return Error(_enum(ErrorCode, code), r.rest().decode(errors="replace"), fid)
    if t == MsgType.PING:
        (token,) = r.take("<I")
        r.end()
        return Ping(token)
    if t == MsgType.PONG:
        v = r.take("<IIII")
        r.end()
        return Pong(*v)
    assert t == MsgType.SET
    key, value = r.take("<Bi")
    r.end()
    return Set(_enum(SetKey, key), value)


def decode_frame(encoded: bytes) -> Message | DecodeError:
    """One frame's bytes (between delimiters, COBS-encoded) -> a message or a DecodeError."""
    if len(encoded) > MAX_ENCODED:
        return DecodeError(ErrorCode.TOO_LONG, f"{len(encoded)} bytes without a delimiter",
                           encoded)
    try:
        pkt = cobs_decode(encoded)
    except ValueError as e:
        return DecodeError(ErrorCode.FRAMING, str(e), encoded)
    if len(pkt) < HEADER_BYTES + CRC_BYTES:
        return DecodeError(ErrorCode.FRAMING, f"frame of {len(pkt)} bytes is too short", encoded)
    body, (crc,) = pkt[:-CRC_BYTES], struct.unpack("<I", pkt[-CRC_BYTES:])
    if crc32(body) != crc:
        return DecodeError(ErrorCode.CRC, f"CRC {crc32(body):08x} != {crc:08x}", encoded)
    version, msg_type, length = struct.unpack_from("<BBH", body)
    if version != VERSION:
        return DecodeError(ErrorCode.VERSION, f"protocol version {version}, expected {VERSION}",
                           encoded)
    payload = body[HEADER_BYTES:]
    if length != len(payload) or length > MAX_PAYLOAD:
        return DecodeError(ErrorCode.MALFORMED, f"length field {length}, payload has "
                           f"{len(payload)} bytes (max {MAX_PAYLOAD})", encoded)
    try:
        return parse(msg_type, payload)
    except KeyError:
        return DecodeError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {msg_type:#04x}",
                           encoded)
    except (ValueError, struct.error) as e:
        return DecodeError(ErrorCode.MALFORMED, f"{MsgType(msg_type).name}: {e}", encoded)


# ---- ranges: what a decoded message may say ---------------------------------------------
MAX_SIDE = 4096  # widest / tallest image (model input, camera, FRAME, PREVIEW) accepted
MAX_OUTPUT_SCALE = 1000.0  # a larger int8 output scale gives logits of +-255000: nonsense
SET_RANGES = {SetKey.SCORE_Q: (-128, 128), SetKey.NMS_IOU_Q10: (0, 1024),
              SetKey.MAX_DETECTIONS: (1, 255), SetKey.PREVIEW: (0, 8),
              SetKey.STREAM: (-1, 2**31 - 1)}


def validate(msg: Message, hello: Hello | None = None) -> ProtocolError | None:
    """The first field of msg outside its documented range (docs/protocol.md, "Ranges"), as
    a ProtocolError; None when every field is in range. With the board's HELLO, a RESULT is
    also checked against it (task, boxes inside the input, class indices, score count)."""
    checks = {Hello: _hello_errors, Frame: _image_errors, Preview: _image_errors,
              Result: _result_errors, Log: _log_errors, Error: _error_errors,
              Set: _set_errors}
    check = checks.get(type(msg))
    if check is None:  # HelloRequest, Ping, Pong: every value is valid
        return None
    for field_name, value, allowed, ok in check(msg, hello):
        if not ok:
            return ProtocolError(msg, field_name, value, allowed)
    return None


_Check = tuple[str, object, str, bool]  # field, value, allowed range, in range?


def _in(v: object, lo: float, hi: float) -> bool:
    """A number (never NaN) in lo..hi."""
    return isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi


def _hello_errors(m: Hello, _: Hello | None) -> Iterable[_Check]:
    """HELLO: every number the viewer sizes, scales or draws with, and printable names."""
    side = f"1..{MAX_SIDE}"
    yield "protocol", m.protocol, str(VERSION), m.protocol == VERSION
    yield "task", m.task, "0 classify, 1 detect", m.task in (Task.CLASSIFY, Task.DETECT)
    yield "input_w", m.input_w, side, _in(m.input_w, 1, MAX_SIDE)
    yield "input_h", m.input_h, side, _in(m.input_h, 1, MAX_SIDE)
    yield "input_c", m.input_c, "1 or 3", m.input_c in (1, 3)
    want = PixFmt.GRAY8 if m.input_c == 1 else PixFmt.RGB888
    yield "input_format", m.input_format, f"{int(want)} for {m.input_c} channel(s)", \
        m.input_format == want
    yield "camera_format", m.camera_format, "0..3", m.camera_format in list(PixFmt)
    cam = "0 without a camera" if m.camera_format == PixFmt.NONE else side
    for name, v in (("camera_w", m.camera_w), ("camera_h", m.camera_h)):
        ok = v == 0 if m.camera_format == PixFmt.NONE else _in(v, 1, MAX_SIDE)
        yield name, v, cam, ok
    scale = m.output_scale
    yield "output_scale", scale, f"finite, > 0 and <= {MAX_OUTPUT_SCALE:g}", \
        _in(scale, 0, MAX_OUTPUT_SCALE) and scale > 0
    yield "output_zero_point", m.output_zero_point, "-128..127", \
        _in(m.output_zero_point, -128, 127)
    for name, text in (("board", m.board), ("app", m.app), ("model", m.model),
                       *((f"classes[{i}]", c) for i, c in enumerate(m.classes))):
        yield name, text, "printable text", text.isprintable()


def _image_errors(m: Frame, _: Hello | None) -> Iterable[_Check]:
    """FRAME / PREVIEW: a known format, a size an assembler can hold, a chunk inside it."""
    side = f"1..{MAX_SIDE}"
    yield "format", m.format, "1 GRAY8, 2 RGB565, 3 RGB888", \
        m.format in (PixFmt.GRAY8, PixFmt.RGB565, PixFmt.RGB888)
    yield "width", m.width, side, _in(m.width, 1, MAX_SIDE)
    yield "height", m.height, side, _in(m.height, 1, MAX_SIDE)
    total = m.total_bytes
    yield "offset", m.offset, f"0..{total - len(m.data)} (a {len(m.data)}-byte chunk of a " \
        f"{total}-byte image)", _in(m.offset, 0, total - len(m.data))


def _result_errors(m: Result, hello: Hello | None) -> Iterable[_Check]:
    """RESULT: a known source; with the HELLO, what it can be drawn against."""
    yield "source", m.source, "0 frame, 1 camera", m.source in (Source.FRAME, Source.CAMERA)
    if hello is None:
        return
    yield "task", m.task, f"{int(hello.task)}, the HELLO's", m.task == hello.task
    n = len(hello.classes)
    if m.task == Task.CLASSIFY and n:
        yield "count", len(m.scores), f"{n}, one score per class", len(m.scores) == n
    for i, d in enumerate(m.detections):
        box = f"0 <= x0 <= x1 <= {hello.input_w}, 0 <= y0 <= y1 <= {hello.input_h}"
        yield f"detections[{i}]", (d.x0, d.y0, d.x1, d.y1), box, \
            d.x0 <= d.x1 <= hello.input_w and d.y0 <= d.y1 <= hello.input_h
        if n:
            yield f"detections[{i}].cls", d.cls, f"0..{n - 1}", d.cls < n


def _log_errors(m: Log, _: Hello | None) -> Iterable[_Check]:
    """LOG: one of the four levels."""
    yield "level", m.level, "0..3", m.level in list(LogLevel)


def _error_errors(m: Error, _: Hello | None) -> Iterable[_Check]:
    """ERROR: a code, 0 being none. Codes are appended as the protocol grows: a newer
    board's code passes and is shown as its number."""
    yield "code", m.code, "1..65535", _in(m.code, 1, 65535)


def _set_errors(m: Set, _: Hello | None) -> Iterable[_Check]:
    """SET: a known key and the range the firmware accepts for it."""
    yield "key", m.key, "1..5", m.key in SET_RANGES
    if m.key in SET_RANGES:
        lo, hi = SET_RANGES[SetKey(m.key)]
        yield "value", m.value, f"{lo}..{hi} for {SetKey(m.key).name}", _in(m.value, lo, hi)


def _show(v: object) -> str:
    """A field's value for a one-line message: text quoted with escapes, short."""
    s = repr(v) if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else \
        str(int(v)) if isinstance(v, enum.IntEnum) else str(v)
    return s if len(s) <= 60 else s[:57] + "..."


class Decoder:
    """Streaming decoder: feed it any bytes, get back whole messages (and DecodeErrors).
    Holds at most MAX_ENCODED bytes; resynchronises at every 0x00.

    validate=True (the host side): each message also goes through `validate`, against the
    last valid HELLO seen, and one out of range comes back as its ProtocolError."""

    def __init__(self, validate: bool = False) -> None:
        self._buf = bytearray()
        self._overflow = False
        self.validate = validate
        self.hello: Hello | None = None  # the last valid HELLO (validate=True)

    def feed(self, data: bytes) -> list[Message | DecodeError]:
        out: list[Message | DecodeError] = []
        start = 0
        while True:
            end = data.find(0, start)
            piece = data[start:] if end < 0 else data[start:end]
            if not self._overflow:
                self._buf += piece
                if len(self._buf) > MAX_ENCODED:
                    self._overflow = True
                    out.append(DecodeError(ErrorCode.TOO_LONG, f"more than {MAX_ENCODED} bytes "
                                           "without a delimiter", bytes(self._buf[:64])))
                    self._buf.clear()
            if end < 0:
                return out
            if self._overflow:
                self._overflow = False
            elif self._buf:
                out.append(self._checked(decode_frame(bytes(self._buf))))
            self._buf.clear()
            start = end + 1

    def _checked(self, item: Message | DecodeError) -> Message | DecodeError:
        """The item, or its ProtocolError when validating and a field is out of range."""
        if not self.validate or isinstance(item, DecodeError):
            return item
        err = validate(item, self.hello)
        if err is not None:
            return err
        if isinstance(item, Hello):
            self.hello = item
        return item

    def reset(self) -> None:
        self._buf.clear()
        self._overflow = False


# ---- images --------------------------------------------------------------------------------
def frame_chunks(frame_id: int, pixels: bytes | np.ndarray, width: int, height: int,
                 fmt: PixFmt, chunk: int = MAX_CHUNK_DATA, cls: type[Frame] = Frame
                 ) -> list[Frame]:
    """Split an image (rows of width x height pixels in fmt) into Frame chunks."""
    data = pixels.tobytes() if isinstance(pixels, np.ndarray) else bytes(pixels)
    need = width * height * PixFmt(fmt).bytes_per_pixel
    if len(data) != need:
        raise ValueError(f"{width}x{height} {PixFmt(fmt).name} needs {need} bytes, "
                         f"got {len(data)}")
    chunk = max(1, min(chunk, MAX_CHUNK_DATA))
    return [cls(frame_id, width, height, PixFmt(fmt), off, data[off:off + chunk])
            for off in range(0, need, chunk)]


def image_array(data: bytes, width: int, height: int, fmt: PixFmt) -> np.ndarray:
    """Bytes of an image as numpy: (h, w) uint8, (h, w) uint16 RGB565, or (h, w, 3) uint8."""
    if fmt == PixFmt.GRAY8:
        return np.frombuffer(data, np.uint8).reshape(height, width)
    if fmt == PixFmt.RGB565:
        return np.frombuffer(data, "<u2").reshape(height, width)
    return np.frombuffer(data, np.uint8).reshape(height, width, 3)


class ImageAssembler:
    """Reassembles chunked images (Preview or Frame): `add(chunk)` returns
    (frame_id, width, height, format, bytes) when an image completes, else None."""

    def __init__(self) -> None:
        self._cur: Frame | None = None
        self._buf = bytearray()

    def add(self, c: Frame) -> tuple[int, int, int, PixFmt, bytes] | None:
        if c.offset == 0:
            self._cur, self._buf = c, bytearray()
        cur = self._cur
        if cur is None or (c.frame_id, c.width, c.height, c.format) != \
                (cur.frame_id, cur.width, cur.height, cur.format) or c.offset != len(self._buf):
            self._cur, self._buf = None, bytearray()
            return None
        self._buf += c.data
        if len(self._buf) >= cur.total_bytes:
            done = (cur.frame_id, cur.width, cur.height, PixFmt(cur.format),
                    bytes(self._buf[:cur.total_bytes]))
            self._cur, self._buf = None, bytearray()
            return done
        return None


def score_threshold_q(p: float, scale: float, zero_point: int) -> int:
    """The SET SCORE_Q value for probability p: the smallest int8 q whose logit
    scale * (q - zp) >= logit(p) (128: nothing passes), as patchcam.app.detect computes it."""
    t = math.log(p / (1 - p))
    qs = np.arange(-128, 128)
    v = (np.float32(scale) * (qs.astype(np.float32) - np.float32(zero_point))).astype(np.float64)
    passing = qs[v >= t]
    return int(passing[0]) if len(passing) else 128


# ---- transport -----------------------------------------------------------------------------
class LinkTimeout(TimeoutError):
    pass


class Link:
    """Messages over a pyserial port or URL ("/dev/pts/N", "socket://HOST:PORT", "loop://").

    Messages are validated (`validate`): one with a field out of range arrives as its
    ProtocolError. receive() returns the next message or DecodeError (None on timeout);
    wait_for() skips items until one matches (class or predicate) and raises LinkTimeout
    otherwise. Everything skipped by wait_for stays available in `.skipped` (a bounded deque)
    for inspection."""

    def __init__(self, url: str, baudrate: int = 115200, timeout: float = 0.05,
                 port=None, validate: bool = True) -> None:
        import serial  # pyserial; imported here so protocol.py works without it
        self.url = url
        self.port = port if port is not None else serial.serial_for_url(
            url, baudrate=baudrate, timeout=timeout)
        self.decoder = Decoder(validate=validate)
        self.pending: deque[Message | DecodeError] = deque()
        self.skipped: deque[Message | DecodeError] = deque(maxlen=1000)

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a dead socket must not mask the real error
            pass

    def write(self, data: bytes) -> None:
        """Raw bytes (tests inject garbage with this)."""
        self.port.write(data)
        self.port.flush()

    def send(self, msg: Message) -> None:
        self.write(encode(msg))

    def send_frame(self, frame_id: int, pixels: bytes | np.ndarray, width: int, height: int,
                   fmt: PixFmt) -> None:
        self.write(b"".join(encode(c) for c in frame_chunks(frame_id, pixels, width, height,
                                                           fmt)))

    def poll(self) -> None:
        """Read whatever bytes are waiting (blocking at most the port's timeout)."""
        n = max(1, self.port.in_waiting)
        data = self.port.read(n)
        if data:
            self.pending.extend(self.decoder.feed(data))

    def receive(self, timeout: float = 1.0) -> Message | DecodeError | None:
        deadline = time.monotonic() + timeout
        while not self.pending:
            if time.monotonic() >= deadline:
                return None
            self.poll()
        return self.pending.popleft()

    def wait_for(self, want: type | tuple[type, ...] | Callable[[object], bool],
                 timeout: float = 5.0) -> Message | DecodeError:
        pred = want if not isinstance(want, (type, tuple)) else \
            (lambda m: isinstance(m, want))  # noqa: E731
        deadline = time.monotonic() + timeout
        while True:
            item = self.receive(max(0.0, deadline - time.monotonic()))
            if item is None:
                raise LinkTimeout(f"{self.url}: nothing matching {want} within {timeout:g} s "
                                  f"(last: {list(self.skipped)[-3:]})")
            if pred(item):
                return item
            self.skipped.append(item)

    def collect(self, timeout: float) -> list[Message | DecodeError]:
        """Everything that arrives within timeout."""
        out, deadline = [], time.monotonic() + timeout
        while (item := self.receive(max(0.0, deadline - time.monotonic()))) is not None:
            out.append(item)
        return out

    def hello(self, timeout: float = 5.0, retry: float = 1.0) -> Hello:
        """Ask for the board's HELLO (again every `retry` s) until it comes."""
        deadline = time.monotonic() + timeout
        while True:
            self.send(HelloRequest())
            try:
                return self.wait_for(Hello, min(retry, max(0.01, deadline - time.monotonic())))
            except LinkTimeout:
                if time.monotonic() >= deadline:
                    raise

    def ping(self, token: int = 1, timeout: float = 5.0) -> Pong:
        self.send(Ping(token))
        return self.wait_for(lambda m: isinstance(m, Pong) and m.token == token, timeout)

    def set(self, key: SetKey, value: int, timeout: float = 5.0) -> Set | Error:
        """Send SET; return the board's echo (the value in force) or its ERROR."""
        self.send(Set(key, value))
        return self.wait_for(lambda m: (isinstance(m, Set) and m.key == key) or
                             isinstance(m, Error), timeout)

    def results(self, n: int, timeout: float) -> list[Result]:
        deadline = time.monotonic() + timeout
        return [self.wait_for(Result, max(0.0, deadline - time.monotonic())) for _ in range(n)]


def messages(items: Iterable[Message | DecodeError], cls: type) -> list:
    """The items of one class (e.g. messages(link.collect(1), Result))."""
    return [m for m in items if isinstance(m, cls)]


def describe(item: Message | DecodeError) -> str:
    """One canonical line per decoded item; the C test program (tests/c/test_pc_proto.c)
    prints the same line, which is how the shared test vectors state what a frame decodes to.
    Numbers in decimal (enums as their values), f32 as its bit pattern, strings raw."""
    if isinstance(item, DecodeError):
        return f"DECODE_ERROR code={int(item.code)}"
    if isinstance(item, HelloRequest):
        return "HELLO_REQUEST"
    if isinstance(item, Hello):
        (bits,) = struct.unpack("<I", struct.pack("<f", item.output_scale))
        return (f"HELLO protocol={item.protocol} task={int(item.task)} input={item.input_w}x"
                f"{item.input_h}x{item.input_c} input_format={int(item.input_format)} camera="
                f"{item.camera_w}x{item.camera_h} camera_format={int(item.camera_format)} "
                f"model_hash=0x{item.model_hash:08x} arena={item.arena_bytes} flash="
                f"{item.flash_bytes} max_frame={item.max_frame_bytes} output_scale=0x{bits:08x} "
                f"output_zero_point={item.output_zero_point} board={item.board} app={item.app} "
                f"model={item.model} classes={','.join(item.classes)}")
    if isinstance(item, Frame):
        name = "PREVIEW" if isinstance(item, Preview) else "FRAME"
        return (f"{name} id={item.frame_id} size={item.width}x{item.height} "
                f"format={int(item.format)} offset={item.offset} len={len(item.data)} "
                f"crc=0x{crc32(item.data):08x}")
    if isinstance(item, Result):
        if item.task == Task.CLASSIFY:
            items = ",".join(str(s) for s in item.scores)
            n = len(item.scores)
        else:
            items = ";".join(f"{d.x0},{d.y0},{d.x1},{d.y1},{d.cls},{d.score}"
                             for d in item.detections)
            n = len(item.detections)
        return (f"RESULT id={item.frame_id} latency={item.latency_us} total={item.total_us} "
                f"source={int(item.source)} task={int(item.task)} n={n} items={items}")
    if isinstance(item, Log):
        return f"LOG level={int(item.level)} text={item.text}"
    if isinstance(item, Error):
        return f"ERROR code={int(item.code)} id={item.frame_id} text={item.text}"
    if isinstance(item, Ping):
        return f"PING token={item.token}"
    if isinstance(item, Pong):
        return (f"PONG token={item.token} uptime={item.uptime_us} frames={item.frames} "
                f"errors={item.errors}")
    if isinstance(item, Set):
        return f"SET key={int(item.key)} value={item.value}"
    raise TypeError(f"not a protocol item: {item!r}")
