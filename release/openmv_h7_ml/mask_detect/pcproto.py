"""pcproto - the patchcam wire protocol (docs/protocol.md) for MicroPython boards.

The board side of patchcam/host/protocol.py and firmware/protocol/pc_proto.c, written in the
subset of Python that MicroPython runs (and CPython too, so tests/test_openmv.py checks it
against the shared vectors, tests/vectors/protocol.json). Framing: 00 | COBS(packet) | 00,
packet = version u8 | type u8 | length u16 | payload | CRC-32 u32, all little endian.

    dec = Decoder()
    for kind, payload in dec.feed(data):   # kind: a message type (> 0) or -ErrorCode
        ...
    port.write(encode(RESULT, result_classify(frame_id, lat, total, src, scores)))

`App` is the board's message loop (the same behaviour as firmware/app/app_main.c) over any
`model` object with the interface of main.py's runners; it sends through `write(bytes)`.
"""

import struct

try:
    from binascii import crc32 as _crc32_builtin
except ImportError:  # a MicroPython build without binascii.crc32
    _crc32_builtin = None

VERSION = 1
MAX_PAYLOAD = 1024
MAX_PACKET = 4 + MAX_PAYLOAD + 4
MAX_ENCODED = MAX_PACKET + (MAX_PACKET + 253) // 254  # 1037
CHUNK_HEADER = 14
MAX_CHUNK_DATA = MAX_PAYLOAD - CHUNK_HEADER  # 1010

HELLO = 1
FRAME = 2
RESULT = 3
PREVIEW = 4
LOG = 5
ERROR = 6
PING = 7
PONG = 8
SET = 9

ERR_CRC = 1
ERR_FRAMING = 2
ERR_TOO_LONG = 3
ERR_VERSION = 4
ERR_UNKNOWN_TYPE = 5
ERR_MALFORMED = 6
ERR_BAD_FORMAT = 7
ERR_BAD_SIZE = 8
ERR_SEQUENCE = 9
ERR_BAD_SETTING = 10
ERR_NO_CAMERA = 11

SET_SCORE_Q = 1
SET_NMS_IOU_Q10 = 2
SET_MAX_DETECTIONS = 3
SET_PREVIEW = 4
SET_STREAM = 5

GRAY8 = 1
RGB565 = 2
RGB888 = 3
BPP = (0, 1, 2, 3)

TASK_CLASSIFY = 0
TASK_DETECT = 1
SOURCE_FRAME = 0
SOURCE_CAMERA = 1
LOG_INFO = 1
LOG_WARNING = 2

_CRC_TABLE = None


def crc32_py(data: bytes, crc: int = 0) -> int:
    """CRC-32 (IEEE, reflected, zlib's) in plain Python, for ports without binascii.crc32."""
    global _CRC_TABLE
    if _CRC_TABLE is None:
        t = []
        for n in range(256):
            c = n
            for _ in range(8):
                c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
            t.append(c)
        _CRC_TABLE = t
    t = _CRC_TABLE
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def crc32(data: bytes) -> int:
    if _crc32_builtin is not None:
        return _crc32_builtin(data) & 0xFFFFFFFF
    return crc32_py(data)


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    code_at = 0
    out.append(0)  # placeholder for the first code byte
    code = 1
    for b in data:
        if b == 0:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
        else:
            out.append(b)
            code += 1
            if code == 255:
                out[code_at] = code
                code_at = len(out)
                out.append(0)
                code = 1
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of cobs_encode; ValueError on a 0x00 or a code running past the end."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ValueError("zero byte in COBS data")
        end = i + code
        if end > n:
            raise ValueError("COBS code past the end")
        for j in range(i + 1, end):
            if data[j] == 0:
                raise ValueError("zero byte in COBS data")
        out.extend(data[i + 1:end])
        if code < 255 and end < n:
            out.append(0)
        i = end
    return bytes(out)


def encode(msg_type: int, payload: bytes = b"") -> bytes:
    """The wire bytes of one message: 00 | COBS(version | type | length | payload | crc) | 00."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload over MAX_PAYLOAD")
    body = struct.pack("<BBH", VERSION, msg_type, len(payload)) + bytes(payload)
    return b"\x00" + cobs_encode(body + struct.pack("<I", crc32(body))) + b"\x00"


def decode_frame(encoded: bytes) -> tuple:
    """One frame (the bytes between delimiters) -> (type, payload) or (-error_code, None).
    Payloads are not parsed here: the app answers unknown types and bad payloads."""
    if len(encoded) > MAX_ENCODED:
        return -ERR_TOO_LONG, None
    try:
        pkt = cobs_decode(encoded)
    except ValueError:
        return -ERR_FRAMING, None
    if len(pkt) < 8:
        return -ERR_FRAMING, None
    body = pkt[:-4]
    if crc32(body) != struct.unpack("<I", pkt[-4:])[0]:
        return -ERR_CRC, None
    version, msg_type, length = struct.unpack("<BBH", body[:4])
    if version != VERSION:
        return -ERR_VERSION, None
    payload = body[4:]
    if length != len(payload) or length > MAX_PAYLOAD:
        return -ERR_MALFORMED, None
    return msg_type, payload


class Decoder:
    """Streaming decoder: feed any bytes, get (type, payload) / (-code, None) items back.
    Holds at most MAX_ENCODED bytes and resynchronises at every 0x00 (docs/protocol.md)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.overflow = False

    def feed(self, data: bytes) -> list:
        out = []
        for b in data:
            if b == 0:
                if self.overflow:
                    self.overflow = False
                elif self.buf:
                    out.append(decode_frame(self.buf))
                self.buf = bytearray()
            elif not self.overflow:
                self.buf.append(b)
                if len(self.buf) > MAX_ENCODED:
                    self.overflow = True
                    self.buf = bytearray()
                    out.append((-ERR_TOO_LONG, None))
        return out


# ---- payloads (board -> host) --------------------------------------------------------------
def _str(s: str) -> bytes:
    b = s.encode()[:255]
    return bytes([len(b)]) + b


def hello(task: int, input_w: int, input_h: int, input_c: int, camera_w: int, camera_h: int,
          camera_format: int, model_hash: int, arena_bytes: int, flash_bytes: int,
          max_frame_bytes: int, output_scale_bits: int, output_zero_point: int, board: str,
          app: str, model: str, classes: tuple) -> bytes:
    """HELLO payload; the output scale goes as its f32 bit pattern (exact on any port)."""
    head = struct.pack("<BBHHBBHHBIIIIIb", VERSION, task, input_w, input_h, input_c,
                       GRAY8 if input_c == 1 else RGB888, camera_w, camera_h, camera_format,
                       model_hash, arena_bytes, flash_bytes, max_frame_bytes,
                       output_scale_bits, output_zero_point)
    out = bytearray(head)
    for s in (board, app, model):
        out.extend(_str(s))
    out.append(len(classes))
    for c in classes:
        out.extend(_str(c))
    return bytes(out)


def result_head(frame_id: int, latency_us: int, total_us: int, source: int, task: int,
                count: int) -> bytes:
    return struct.pack("<IIIBBB", frame_id, latency_us & 0xFFFFFFFF, total_us & 0xFFFFFFFF,
                       source, task, count)


def result_classify(frame_id: int, latency_us: int, total_us: int, source: int,
                    scores: bytes) -> bytes:
    """scores: the model's int8 outputs as bytes / bytearray (one per class)."""
    return result_head(frame_id, latency_us, total_us, source, TASK_CLASSIFY,
                       len(scores)) + bytes(scores)


def result_detect(frame_id: int, latency_us: int, total_us: int, source: int, items: bytes,
                  count: int) -> bytes:
    """items: count x 10 bytes (x0 y0 x1 y1 u16, class u8, score i8), as pcmodel.detect
    writes them."""
    return result_head(frame_id, latency_us, total_us, source, TASK_DETECT,
                       count) + bytes(items[:10 * count])


def detection(x0: int, y0: int, x1: int, y1: int, cls: int, score: int) -> bytes:
    return struct.pack("<HHHHBb", x0, y0, x1, y1, cls, score)


def chunk(frame_id: int, width: int, height: int, fmt: int, offset: int,
          data: bytes) -> bytes:
    """FRAME / PREVIEW payload."""
    return struct.pack("<IHHBBI", frame_id, width, height, fmt, 0, offset) + bytes(data)


def log(level: int, text: str) -> bytes:
    return bytes([level]) + text.encode()


def error(code: int, frame_id: int = 0, text: str = "") -> bytes:
    return struct.pack("<HI", code, frame_id) + text.encode()


def pong(token: int, uptime_us: int, frames: int, errors: int) -> bytes:
    return struct.pack("<IIII", token, uptime_us & 0xFFFFFFFF, frames, errors)


def set_reply(key: int, value: int) -> bytes:
    return struct.pack("<Bi", key, value)


# ---- payloads (host -> board) --------------------------------------------------------------
def parse_frame(p: bytes) -> tuple:
    """(frame_id, width, height, format, offset, data); ValueError when too short."""
    if len(p) <= CHUNK_HEADER:
        raise ValueError("FRAME chunk too short")
    fid, w, h, fmt, _, off = struct.unpack("<IHHBBI", p[:CHUNK_HEADER])
    return fid, w, h, fmt, off, p[CHUNK_HEADER:]


def parse_ping(p: bytes) -> int:
    if len(p) != 4:
        raise ValueError("PING needs a u32 token")
    return struct.unpack("<I", p)[0]


def parse_set(p: bytes) -> tuple:
    if len(p) != 5:
        raise ValueError("SET needs key u8 and value i32")
    return struct.unpack("<Bi", p)


def _diff(a: int, b: int) -> int:
    return (a - b) & 0xFFFFFFFF


# ---- the board's message loop --------------------------------------------------------------
DECODE_TEXT = {ERR_CRC: "CRC mismatch", ERR_FRAMING: "bad COBS framing",
               ERR_TOO_LONG: "frame too long", ERR_VERSION: "unsupported protocol version"}


class App:
    """What a board does with the messages it receives (firmware/app/app_main.c's loop).

    model: an object with `task`; `hello_payload(board, camera_w, camera_h, camera_format,
    max_frame_bytes)`; `prepare(pixels, width, height, fmt)` (the preprocessing; ValueError
    for an image it cannot take); `run()` -> (latency_us, RESULT items as bytes, count);
    `preview(k)` -> (w, h, fmt, bytes); and for detect apps the settings `score_q`,
    `iou_q10`, `max_detections`, `max_detections_limit`. frame_buf: a writable buffer of
    max_frame_bytes for FRAME images. ticks_us / ticks_diff: MicroPython's time.ticks_us and
    time.ticks_diff (ticks wrap), or any counter with a matching difference."""

    def __init__(self, model, write, frame_buf, ticks_us, board: str = "openmv_h7",
                 camera: tuple | None = None, ticks_diff=None) -> None:
        self.model = model
        self.write = write
        self.frame_buf = frame_buf
        self.ticks_us = ticks_us
        self.ticks_diff = ticks_diff or _diff
        self.board = board
        self.camera = camera  # (width, height, format) or None
        self.decoder = Decoder()
        self.rx = None  # (id, width, height, format, total) of the image being received
        self.received = 0
        self.preview_k = 0
        self.stream = 0  # 0 off, n > 0 frames left, -1 forever
        self.results = 0
        self.errors = 0
        self.last = None  # (latency_us, items, count) of the last RESULT sent
        self.t0 = ticks_us()

    def send(self, msg_type: int, payload: bytes) -> None:
        self.write(encode(msg_type, payload))

    def send_error(self, code: int, frame_id: int, text: str) -> None:
        self.send(ERROR, error(code, frame_id, text))
        self.errors += 1

    def send_log(self, level: int, text: str) -> None:
        self.send(LOG, log(level, text))

    def send_hello(self) -> None:
        cw, ch, cf = self.camera or (0, 0, 0)
        self.send(HELLO, self.model.hello_payload(self.board, cw, ch, cf, len(self.frame_buf)))

    def feed(self, data: bytes) -> None:
        """Handle received bytes (any amount, any split)."""
        for kind, payload in self.decoder.feed(data):
            if kind < 0:
                self.send_error(-kind, 0, DECODE_TEXT.get(-kind, "malformed packet"))
            elif kind == HELLO:
                self.send_hello()
            elif kind == FRAME:
                self.on_frame(payload)
            elif kind == PING:
                self.on_ping(payload)
            elif kind == SET:
                self.on_set(payload)
            else:
                self.send_error(ERR_UNKNOWN_TYPE, 0, "unexpected message type")

    def on_ping(self, p: bytes) -> None:
        try:
            token = parse_ping(p)
        except ValueError as e:
            self.send_error(ERR_MALFORMED, 0, str(e))
            return
        uptime = self.ticks_diff(self.ticks_us(), self.t0) & 0xFFFFFFFF
        self.send(PONG, pong(token, uptime, self.results, self.errors))

    def on_frame(self, p: bytes) -> None:
        try:
            fid, w, h, fmt, off, data = parse_frame(p)
        except ValueError:
            self.rx = None
            fid = struct.unpack("<I", p[:4])[0] if len(p) >= 4 else 0
            self.send_error(ERR_MALFORMED, fid, "FRAME chunk too short")
            return
        bpp = BPP[fmt] if 0 < fmt < len(BPP) else 0
        if bpp == 0:
            self.rx = None
            self.send_error(ERR_BAD_FORMAT, fid, "unknown pixel format")
            return
        total = w * h * bpp
        if total == 0 or total > len(self.frame_buf):
            self.rx = None
            self.send_error(ERR_BAD_SIZE, fid,
                            "empty image" if total == 0 else "image over max_frame_bytes")
            return
        if off == 0:
            self.rx = (fid, w, h, fmt, total)
            self.received = 0
        elif self.rx is None or self.rx[:4] != (fid, w, h, fmt) or self.received != off:
            self.rx = None
            self.send_error(ERR_SEQUENCE, fid, "FRAME chunk does not continue the image")
            return
        n = len(data)
        if n > total - self.received:
            self.rx = None
            self.send_error(ERR_BAD_SIZE, fid, "FRAME chunk past the end of the image")
            return
        self.frame_buf[self.received:self.received + n] = data
        self.received += n
        if self.received == total:
            self.rx = None
            self.process(fid, SOURCE_FRAME, memoryview(self.frame_buf)[:total], w, h, fmt)

    def apply_setting(self, key: int, v: int) -> str | None:
        """None, or an error text ("" for NO_CAMERA)."""
        m = self.model
        if key == SET_PREVIEW:
            if v < 0 or v > 8:
                return "PREVIEW must be 0..8"
            self.preview_k = v
        elif key == SET_STREAM:
            if self.camera is None:
                return ""
            if v < -1:
                return "STREAM must be -1, 0 or a frame count"
            self.stream = v
        elif m.task == TASK_DETECT and key == SET_SCORE_Q:
            if v < -128 or v > 128:
                return "SCORE_Q must be -128..128"
            m.score_q = v
        elif m.task == TASK_DETECT and key == SET_NMS_IOU_Q10:
            if v < 0 or v > 1024:
                return "NMS_IOU_Q10 must be 0..1024"
            m.iou_q10 = v
        elif m.task == TASK_DETECT and key == SET_MAX_DETECTIONS:
            if v < 1 or v > m.max_detections_limit:
                return "MAX_DETECTIONS out of range"
            m.max_detections = v
        else:
            return "unknown setting for this app"
        return None

    def on_set(self, p: bytes) -> None:
        try:
            key, value = parse_set(p)
        except ValueError as e:
            self.send_error(ERR_MALFORMED, 0, str(e))
            return
        err = self.apply_setting(key, value)
        if err == "":
            self.send_error(ERR_NO_CAMERA, 0, "this board has no camera")
        elif err is not None:
            self.send_error(ERR_BAD_SETTING, 0, err)
        else:
            self.send(SET, set_reply(key, value))

    def send_preview(self, frame_id: int) -> None:
        w, h, fmt, data = self.model.preview(self.preview_k)
        for off in range(0, len(data), MAX_CHUNK_DATA):
            self.send(PREVIEW, chunk(frame_id, w, h, fmt, off, data[off:off + MAX_CHUNK_DATA]))

    def process(self, frame_id: int, source: int, pixels, w: int, h: int, fmt: int) -> None:
        t0 = self.ticks_us()
        try:
            self.model.prepare(pixels, w, h, fmt)
        except ValueError:
            self.send_error(ERR_BAD_FORMAT, frame_id, "cannot preprocess this image")
            return
        if self.preview_k > 0:
            self.send_preview(frame_id)
        latency, items, count = self.model.run()
        total = self.ticks_diff(self.ticks_us(), t0) & 0xFFFFFFFF
        head = result_head(frame_id, latency, total, source, self.model.task, count)
        self.send(RESULT, head + bytes(items))
        self.results += 1
        self.last = (latency, items, count)

    def camera_frame(self, frame_id: int, pixels) -> None:
        """One captured frame (the camera's width, height, format); self.last is its result,
        None when it had none."""
        self.last = None
        w, h, fmt = self.camera
        self.process(frame_id, SOURCE_CAMERA, pixels, w, h, fmt)
        if self.stream > 0:
            self.stream -= 1


def preview_bytes(x, w: int, h: int, c: int, k: int) -> tuple:
    """The preprocessed input (int8 HWC bytes, q = pixel - 128) as pixels again, subsampled
    by k: what firmware/app/app_main.c sends as PREVIEW. Returns (tw, th, fmt, bytes)."""
    th = h // k if h // k > 0 else 1
    tw = w // k if w // k > 0 else 1
    out = bytearray(tw * th * c)
    i = 0
    for ty in range(th):
        row = ty * k * w
        for tx in range(tw):
            base = (row + tx * k) * c
            for ch in range(c):
                out[i] = (x[base + ch] + 128) & 0xFF
                i += 1
    return tw, th, GRAY8 if c == 1 else RGB888, bytes(out)
