"""The host viewer: frame sources, the overlay read back from its recorded output, and the
viewer against boards that answer, stay silent, reset or drop the line; end to end with the
virtual boards (host process over a pty, qemu_m7 under QEMU).

Most tests talk to `FakeBoard`, a TCP server speaking the wire protocol (patchcam.host.protocol)
with scripted RESULTs, so they check the viewer and not a model's behaviour.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from patchcam.host import protocol as pp
from patchcam.host import sources as vs
from patchcam.host.viewer import targets
from patchcam.host.viewer.app import app_model_dir
from patchcam.host.viewer.loop import Options, Viewer
from patchcam.host.viewer.overlay import BOTTOM_H, STATUS_BAD, TOP_H, class_color, sigmoid
from patchcam.host.viewer.recorder import Recorder
from patchcam.host.viewer.targets import PortTarget, VirtualBoardTarget

ROOT = Path(__file__).resolve().parents[1]
VIEWER = ROOT / "host_viewer" / "viewer.py"
PENN = ROOT.parent / "shared" / "datasets" / "penn_fudan_ped"

HELLO = pp.Hello(task=pp.Task.DETECT, input_w=160, input_h=128, input_c=3,
                 input_format=pp.PixFmt.RGB888, model_hash=0x1234ABCD, arena_bytes=100_000,
                 flash_bytes=200_000, max_frame_bytes=160 * 128 * 3, output_scale=0.1,
                 output_zero_point=0, board="fake", app="person_detect", model="fake_model",
                 classes=["person", "bag"])
# Boxes in model-input pixels; frames of 640x512 make the canvas scale exactly 4.
BOXES = [pp.Detection(10, 20, 60, 100, 0, 20), pp.Detection(100, 30, 150, 90, 1, 5)]


class FakeBoard:
    """A board behind a TCP socket. Sends HELLO on connect and on request, answers each
    complete FRAME with RESULT(BOXES). Scripted faults, counted in complete frames:
    silent (never writes), reset_after=k (HELLO instead of the k-th RESULT, as a board that
    rebooted), drop_after=k (closes the line at the k-th frame and is gone for `down` s).
    greeting: raw wire bytes sent once, before the HELLO that answers the first request;
    noise: raw wire bytes sent once, before the first RESULT (hostile boards)."""

    def __init__(self, silent: bool = False, reset_after: int | None = None,
                 drop_after: int | None = None, down: float = 1.0, camera: bool = False,
                 greeting: bytes = b"", noise: bytes = b"") -> None:
        self.silent, self.reset_after, self.drop_after, self.down = \
            silent, reset_after, drop_after, down
        self.greeting, self.noise = greeting, noise
        self.hello = HELLO if not camera else dataclasses.replace(
            HELLO, camera_w=320, camera_h=240, camera_format=pp.PixFmt.RGB565)
        self.streaming = False
        self.preview_k = 0
        self.camera_frames = 0
        self.frames = 0
        self.connections = 0
        self.sets: list[pp.Set] = []
        self.received: list[np.ndarray] = []
        self._stop = threading.Event()
        self._srv = self._listen(0)
        self.port = self._srv.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _listen(self, port: int) -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1)
        s.settimeout(0.1)
        return s

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            dropped = self._talk(conn)
            conn.close()
            if dropped:  # the board is off for a while: nobody listens
                self._srv.close()
                time.sleep(self.down)
                self._srv = self._listen(self.port)

    def _talk(self, conn: socket.socket) -> bool:
        conn.settimeout(0.05)
        dec, asm = pp.Decoder(), pp.ImageAssembler()

        def send(m) -> None:
            if not self.silent:
                try:
                    conn.sendall(pp.encode(m))
                except OSError:  # the viewer hung up; the next recv sees it
                    pass
        send(self.hello)
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                if self.streaming:
                    self._camera_frame(send, conn)
                continue
            except OSError:
                return False
            if not data:
                return False
            for m in dec.feed(data):
                if isinstance(m, pp.HelloRequest):
                    if self.greeting:  # after the request: pyserial drops what came before
                        conn.sendall(self.greeting)
                        self.greeting = b""
                    send(self.hello)
                elif isinstance(m, pp.Set):
                    self.sets.append(m)
                    if m.key == pp.SetKey.STREAM:
                        self.streaming = m.value != 0
                    elif m.key == pp.SetKey.PREVIEW:
                        self.preview_k = m.value
                    send(m)
                elif isinstance(m, pp.Ping):
                    send(pp.Pong(m.token))
                elif isinstance(m, pp.Frame) and (img := asm.add(m)) is not None:
                    fid, w, h, fmt, pixels = img
                    self.frames += 1
                    self.received.append(pp.image_array(pixels, w, h, fmt))
                    if self.frames == self.drop_after:
                        return True
                    if self.frames == self.reset_after:
                        send(self.hello)
                        continue
                    self._send_noise(conn)
                    send(pp.Result(fid, pp.Task.DETECT, detections=BOXES, latency_us=12_345,
                                   total_us=15_000))
        return False

    def _send_noise(self, conn: socket.socket) -> None:
        if self.noise:
            conn.sendall(self.noise)
            self.noise = b""

    def _camera_frame(self, send, conn: socket.socket) -> None:
        """One camera frame: a PREVIEW of the model input (flat grey) and its RESULT."""
        self._send_noise(conn)
        self.camera_frames += 1
        fid = self.camera_frames
        if self.preview_k:
            k = self.preview_k
            thumb = np.full((128 // k, 160 // k, 3), 100, np.uint8)
            for c in pp.frame_chunks(fid, thumb, 160 // k, 128 // k, pp.PixFmt.RGB888,
                                     cls=pp.Preview):
                send(c)
        send(pp.Result(fid, pp.Task.DETECT, detections=BOXES, latency_us=9_000,
                       source=pp.Source.CAMERA))

    def close(self) -> None:
        self._stop.set()
        self._srv.close()
        self._thread.join(5)


@pytest.fixture
def frames_dir(tmp_path: Path) -> Path:
    """Three 640x512 frames, flat grey with a dark square (easy to read pixels back from)."""
    d = tmp_path / "frames"
    d.mkdir()
    for i in range(3):
        img = np.full((512, 640, 3), 90 + 20 * i, np.uint8)
        img[200:260, 280:360] = 30
        cv2.imwrite(str(d / f"f{i}.png"), img)
    return d


def run_viewer(target, source: vs.Source, tmp_path: Path, **opt) -> tuple[Viewer, Path]:
    out = tmp_path / "out"
    rec = Recorder(out / "video.mp4", out / "frames")
    v = Viewer(target, rec, Options(quiet=True, **{"timeout": 5.0, **opt}))
    v.run(source)
    return v, out


def records(out: Path) -> list[dict]:
    return [json.loads(ln) for ln in (out / "frames" / "results.jsonl").read_text().splitlines()]


# ---- sources ------------------------------------------------------------------------------
def test_folder_source_sorted_recursive_and_skips_other_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for p in ("b.png", "a.jpg", "sub/c.png"):
        cv2.imwrite(str(tmp_path / p), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    src = vs.open_source(str(tmp_path))
    assert [n for n, _ in src] == ["a", "b", "c"]
    assert src.count == 3 and not src.live


def test_video_source(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 48))
    for i in range(4):
        w.write(np.full((48, 64, 3), 60 * i, np.uint8))
    w.release()
    src = vs.open_source(str(path))
    got = list(src)
    assert [n for n, _ in got] == [f"clip_{i:06d}" for i in range(4)]
    assert got[0][1].shape == (48, 64, 3) and src.count == 4
    assert [n for n, _ in vs.limited(src, 2)] == ["clip_000000", "clip_000001"]


def test_source_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(vs.SourceError, match="image folder is empty"):
        vs.open_source(str(tmp_path))
    with pytest.raises(vs.SourceError, match="no such file or folder"):
        vs.open_source(str(tmp_path / "missing"))
    with pytest.raises(vs.SourceError, match="camera 7 not found"):
        vs.open_source("7")
    with pytest.raises(vs.SourceError, match="--split needs a dataset folder"):
        (tmp_path / "x.png").write_bytes(b"")
        vs.open_source(str(tmp_path / "x.png"), split="test")


def test_dataset_split_source(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for split, names in (("train", ["t1", "t2"]), ("test", ["s1", "s2", "s3"])):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations" / split).mkdir(parents=True)
        for n in names:
            cv2.imwrite(str(root / "images" / split / f"{n}.jpg"), np.zeros((40, 50, 3), np.uint8))
            (root / "annotations" / split / f"{n}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "annotations" / "classes.txt").write_text("pedestrian\n")
    src = vs.open_source(str(root), split="test")
    assert [n for n, _ in src] == ["s1", "s2", "s3"]
    assert "test split" in src.description


@pytest.mark.skipif(not PENN.is_dir(), reason="shared datasets not on this machine")
def test_penn_fudan_test_split_is_the_demo_default() -> None:
    src, why = vs.demo_source(camera=False)
    assert "penn_fudan_ped" in why
    names = src.names
    assert names and all((PENN / "images" / "test" / f"{n}.jpg").is_file() for n in names)


def test_skimage_fallback_has_people_and_no_people(tmp_path: Path) -> None:
    src, why = vs.demo_source(datasets=tmp_path / "nothing", camera=False)
    assert "scikit-image" in why
    got = list(src)
    assert [n for n, _ in got] == ["astronaut", "camera", "coffee", "chelsea"]
    assert all(img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8 for _, img in got)
    # IMAGES= wins over the fallback.
    cv2.imwrite(str(tmp_path / "mine.png"), np.zeros((8, 8, 3), np.uint8))
    src, why = vs.demo_source(images=str(tmp_path), datasets=tmp_path / "nothing",
                              camera=False)
    assert why == f"IMAGES={tmp_path}" and src.names == ["mine"]


# ---- the overlay, read back from the recorded frames --------------------------------------
def _has_color(img: np.ndarray, x: int, y: int, color, tol: int = 0, r: int = 1) -> bool:
    patch = img[y - r:y + r + 1, x - r:x + r + 1].astype(int)
    return bool((np.abs(patch - np.array(color)).max(axis=-1) <= tol).any())


def test_boxes_are_drawn_where_the_result_says(frames_dir: Path, tmp_path: Path) -> None:
    board = FakeBoard()
    try:
        v, out = run_viewer(PortTarget(board.url), vs.open_source(str(frames_dir)), tmp_path)
    finally:
        board.close()
    recs = records(out)
    assert len(recs) == 3 and all(r["status"] == "" for r in recs)
    assert recs[0]["result"]["detections"][0]["box"] == [10, 20, 60, 100]
    pngs = sorted((out / "frames").glob("*.png"))
    assert len(pngs) == 3
    # What the board received: the frame resized to its input, RGB.
    assert board.received[0].shape == (128, 160, 3)
    assert abs(int(board.received[0][0, 0, 0]) - 90) <= 1
    s, top = 4, TOP_H  # model px -> canvas px
    for png in pngs:
        img = cv2.imread(str(png))
        assert img.shape == (TOP_H + 512 + BOTTOM_H, 640, 3)
        for d in BOXES:
            color = class_color(d.cls)
            x0, y0, x1, y1 = d.x0 * s, d.y0 * s + top, d.x1 * s, d.y1 * s + top
            ym, xm = (y0 + y1) // 2, (x0 + x1) // 2
            for x, y in ((x0, ym), (x1, ym), (xm, y1)):  # left, right, bottom edges
                assert _has_color(img, x, y, color), (png.name, d, x, y)
            # inside the box, away from the label: the photo, untouched
            assert not _has_color(img, xm, ym + 20, color, tol=40)
        # the info bar is drawn (not the frame's grey) and no red status band
        assert img[:TOP_H].mean() < 80
        assert not _has_color(img, 3, img.shape[0] - 5, STATUS_BAD, tol=10)
    # The video holds the same frames (lossy: look for the box's green on its left edge).
    cap = cv2.VideoCapture(str(out / "video.mp4"))
    n = 0
    while True:
        ok, f = cap.read()
        if not ok:
            break
        n += 1
        d = BOXES[0]
        x0, ym = d.x0 * s, (d.y0 + d.y1) * s // 2 + top
        assert int(f[ym, x0, 1]) - int(f[ym, x0, 2]) > 60  # green, not the grey frame
    assert n == 3


def test_threshold_is_sent_as_score_q(frames_dir: Path, tmp_path: Path) -> None:
    board = FakeBoard()
    try:
        v, _ = run_viewer(PortTarget(board.url), vs.open_source(str(frames_dir)), tmp_path,
                          threshold=0.7)
        v.link = pp.Link(board.url)
        v.handle_key(ord("+"))
        time.sleep(0.2)
        v.link.close()
    finally:
        board.close()
    # + steps from the threshold in force (the board's echo of q = 9), not the one asked for
    in_force = sigmoid(HELLO.output_scale * 9)
    want = [pp.score_threshold_q(p, HELLO.output_scale, 0) for p in (0.7, in_force + 0.05)]
    assert [s.value for s in board.sets] == want == [9, 12]
    assert all(s.key == pp.SetKey.SCORE_Q for s in board.sets)


def test_keys_pause_snapshot_quit(frames_dir: Path, tmp_path: Path) -> None:
    board = FakeBoard()
    keys = iter([ord(" "), ord("s"), ord(" "), ord("q")])  # one key per wait, after frame 1

    def wait_key(ms: int) -> int:
        return next(keys, -1) if v.view.stats.frames >= 1 else -1
    try:
        v = Viewer(PortTarget(board.url), None,
                   Options(quiet=True, headless=False, snapshot_dir=tmp_path / "snaps"),
                   key_source=wait_key)
        v.show = lambda canvas: setattr(v, "_last_canvas", canvas)  # no window here
        n = v.run(vs.open_source(str(frames_dir)))
    finally:
        board.close()
    assert n == 1 and v.quit  # q stopped it after the first frame
    assert v.events[-3:-1] == ["paused", f"snapshot {next((tmp_path / 'snaps').glob('*.png'))}"]
    assert v.events[-1] == "resumed"


# ---- silent board, reset, reconnection -----------------------------------------------------
def test_silent_board_gives_a_status_line(frames_dir: Path, tmp_path: Path) -> None:
    board = FakeBoard(silent=True)
    t0 = time.monotonic()
    try:
        v, out = run_viewer(PortTarget(board.url), vs.open_source(str(frames_dir)),
                            tmp_path, timeout=0.6, hello_timeout=0.3)
    finally:
        board.close()
    assert time.monotonic() - t0 < 10
    recs = records(out)
    assert len(recs) == 3 and all(r["result"] is None for r in recs)
    assert all(r["status"].startswith("board silent") for r in recs)
    assert "no HELLO" in recs[0]["status"]
    img = cv2.imread(str(sorted((out / "frames").glob("*.png"))[0]))
    assert _has_color(img, 3, img.shape[0] - 5, STATUS_BAD, tol=10)  # the red band


def test_board_reset_is_reported_and_the_frame_resent(frames_dir: Path, tmp_path: Path) -> None:
    board = FakeBoard(reset_after=2)
    try:
        v, out = run_viewer(PortTarget(board.url), vs.open_source(str(frames_dir)), tmp_path)
    finally:
        board.close()
    recs = records(out)
    assert [r["result"] is None for r in recs] == [False] * 3
    assert v.view.stats.resets == 1 and board.frames == 4
    # the frame during which it happened says so; the others are clean
    assert [r["status"].split(" (")[0] for r in recs] == ["", "board reset", ""]
    assert any(e.startswith("board reset") for e in v.events)


def test_reconnects_after_the_board_restarts(frames_dir: Path, tmp_path: Path) -> None:
    board = FakeBoard(drop_after=2, down=1.0)
    try:
        v, out = run_viewer(PortTarget(board.url), vs.open_source(str(frames_dir)), tmp_path,
                            timeout=6.0)
    finally:
        board.close()
    recs = records(out)
    assert [r["result"] is not None for r in recs] == [True, True, True]
    assert board.connections == 2 and v.view.stats.reconnects == 1
    assert any(e.startswith("connection lost") for e in v.events)
    assert any(e.startswith("reconnected") for e in v.events)


# ---- hostile boards: CRC-valid nonsense --------------------------------------------------
def _bad(msg, field: str) -> tuple[bytes, str]:
    """A message that encodes fine (CRC and all) but says nonsense in `field`."""
    return pp.encode(msg), field


R = pp.Result(1, pp.Task.DETECT, detections=BOXES[:1])
BAD_HELLOS = [_bad(dataclasses.replace(HELLO, **{f: v}), f) for f, v in (
    ("input_w", 0), ("input_h", 0), ("input_c", 2), ("input_format", 9), ("task", 7),
    ("protocol", 2), ("output_scale", float("nan")), ("output_scale", float("inf")),
    ("output_scale", 1e30), ("output_scale", -0.1), ("output_scale", 0.0),
    ("camera_format", 9), ("board", "fa\nke"))] + [
    _bad(dataclasses.replace(HELLO, camera_format=pp.PixFmt.RGB565), "camera_w"),
    _bad(dataclasses.replace(HELLO, classes=["per\x00son"]), "classes[0]")]
BAD_OTHERS = [
    _bad(dataclasses.replace(R, source=5), "source"),
    _bad(pp.Result(1, pp.Task.CLASSIFY, scores=[1, 2]), "task"),  # the board detects
    _bad(dataclasses.replace(R, detections=[pp.Detection(10, 20, 1000, 100, 0, 5)]),
         "detections[0]"),
    _bad(dataclasses.replace(R, detections=[pp.Detection(60, 20, 10, 100, 0, 5)]),
         "detections[0]"),
    _bad(dataclasses.replace(R, detections=[pp.Detection(10, 20, 60, 100, 9, 5)]),
         "detections[0].cls"),
    _bad(pp.Preview(1, 8, 8, 9, 0, bytes(64)), "format"),
    _bad(pp.Preview(1, 8, 8, 0, 0, bytes(64)), "format"),
    _bad(pp.Preview(1, 0, 8, pp.PixFmt.GRAY8, 0, bytes(8)), "width"),
    _bad(pp.Preview(1, 8, 8, pp.PixFmt.GRAY8, 10**6, bytes(8)), "offset"),
    _bad(pp.Frame(1, 8, 8, 9, 0, bytes(8)), "format"),
    _bad(pp.Set(99, 1), "key"),
    _bad(pp.Set(pp.SetKey.SCORE_Q, 1000), "value"),
    _bad(pp.Set(pp.SetKey.PREVIEW, 9), "value"),
    _bad(pp.Log(9, "level nine"), "level"),
    _bad(pp.Error(0, "no code"), "code"),
]
# Frames the codec itself refuses (reported as line noise), odd text that is fine, and the
# kinds a board has no reason to send (a PING, a PONG nobody asked for with extreme counters,
# an empty HELLO, a well-formed FRAME): valid in every field, so silently ignored.
NOISE = (pp.frame_bytes(pp.packet(0x55, b"?")) +  # unknown type
         pp.frame_bytes(pp.packet(pp.MsgType.RESULT, bytes(12) + b"\x00\x09\x00")) +  # task 9
         pp.encode(pp.Log(pp.LogLevel.INFO, "two\nlines\x1b[2J")) +
         pp.encode(pp.Error(pp.ErrorCode.BAD_SIZE, "multi\nline", 0)) +
         pp.encode(pp.Ping(0xFFFFFFFF)) + pp.encode(pp.Pong(0xFFFFFFFF, 2**32 - 1, 2**32 - 1,
                                                            2**32 - 1)) +
         pp.encode(pp.HelloRequest()) + pp.encode(pp.Frame(1, 2, 2, pp.PixFmt.GRAY8, 0,
                                                           bytes(4))))


def _strict_json(line: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")
    return json.loads(line, parse_constant=refuse)


@pytest.mark.parametrize("camera", [False, True], ids=["frames", "camera"])
def test_nonsense_from_a_board_is_reported_and_dropped(frames_dir: Path, tmp_path: Path,
                                                       camera: bool) -> None:
    """Every message kind with each bad field, then good messages: the viewer keeps going,
    says one line per bad message naming the field, and uses only the good ones."""
    bad = BAD_HELLOS + BAD_OTHERS
    board = FakeBoard(camera=camera, greeting=b"".join(w for w, _ in BAD_HELLOS),
                      noise=b"".join(w for w, _ in BAD_OTHERS) + NOISE)
    out = tmp_path / "out"
    try:
        v = Viewer(PortTarget(board.url), Recorder(None, out / "frames"),
                   Options(quiet=True, timeout=5.0))
        if camera:
            assert v.connect(time.monotonic() + 5)
            assert v.run_camera(max_frames=3) == 3
        else:
            assert v.run(vs.open_source(str(frames_dir))) == 3
    finally:
        board.close()
    assert all("\n" not in e for e in v.events)
    dropped = [e for e in v.events if e.startswith("dropped a bad message from the board: ")]
    fields = [e.split(": ", 1)[1].split(" ", 1)[1].split("=", 1)[0] for e in dropped]
    assert fields == [f for _, f in bad], dropped
    assert all("allowed: " in e for e in dropped)
    assert sum(e.startswith("line noise") for e in v.events) == 2
    assert "board: two\\nlines\\x1b[2J" in v.events
    assert v.view.hello == pp.Decoder().feed(pp.encode(board.hello))[0]  # the good one
    recs = [_strict_json(ln) for ln in (out / "frames" / "results.jsonl").read_text().split("\n")
            if ln]
    assert len(recs) == 3 and all(r["result"]["detections"] for r in recs)
    assert [d["box"] for d in recs[0]["result"]["detections"]] == \
        [[b.x0, b.y0, b.x1, b.y1] for b in BOXES]


def test_results_jsonl_is_strict_json(tmp_path: Path) -> None:
    rec = Recorder(None, tmp_path)
    rec.write(np.zeros((8, 8, 3), np.uint8), "f", {"p": float("nan"), "q": [float("inf"), 1.5]})
    rec.close()
    (line,) = (tmp_path / "results.jsonl").read_text().splitlines()
    assert _strict_json(line) == {"image": "00000_f.png", "name": "f", "p": None,
                                  "q": [None, 1.5]}


def test_sigmoid_never_overflows() -> None:
    assert sigmoid(-1e6) == 0.0 and sigmoid(1e6) == 1.0 and sigmoid(0.0) == 0.5


# ---- ports that do not open ---------------------------------------------------------------
def _closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connecting is refused
    return f"socket://127.0.0.1:{port}"


@pytest.mark.parametrize("what", ["refused", "directory", "file", "permission"])
def test_unopenable_port_gives_up_within_the_timeout(what: str, frames_dir: Path,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A port that exists but does not open: one clear TargetError within the timeout, no
    busy loop (little CPU while waiting), whatever the source holds."""
    url = {"refused": _closed_port(), "directory": str(tmp_path),
           "file": str(frames_dir / "f0.png"), "permission": "/dev/ttyACM0"}[what]
    if what == "permission":  # tests may run as root: make open fail as it would for a user
        import serial

        def denied(*_a, **_k):
            raise serial.SerialException(13, "could not open port /dev/ttyACM0: [Errno 13] "
                                              "Permission denied: '/dev/ttyACM0'")
        monkeypatch.setattr(serial, "serial_for_url", denied)
    timeout = 1.5
    v = Viewer(PortTarget(url), None, Options(quiet=True, timeout=timeout))
    t0, cpu0 = time.monotonic(), time.process_time()
    with pytest.raises(targets.TargetError) as e:
        v.run(vs.open_source(str(frames_dir)))
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    assert elapsed < timeout + 1 and cpu < 0.5 * timeout, (elapsed, cpu)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith({
        "refused": f"connection refused: nothing listens at {url}",
        "directory": f"cannot open {url}: it is a directory, not a serial port",
        "file": f"cannot open {url}: not a serial port",
        "permission": "cannot open /dev/ttyACM0: permission denied; add yourself to the "
                      "dialout group: sudo usermod -aG dialout $USER, then log in again",
    }[what]), msg
    if what == "refused":  # waited (a board may be starting), then said for how long
        assert elapsed >= timeout and "gave up after" in msg


def test_a_port_that_never_opens_ends_within_the_timeout(frames_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """pyserial's open blocks (a socket:// whose connect hangs: 5 s a try in pyserial; a
    device whose open never returns): the viewer still gives up by --timeout, with one line,
    and the link that opens after that is closed, not leaked."""
    import serial
    release, late = threading.Event(), []

    class LatePort:
        closed = False

        def close(self) -> None:
            self.closed = True

    def hang(*_a, **_k):
        release.wait(30)
        late.append(LatePort())
        return late[-1]
    monkeypatch.setattr(serial, "serial_for_url", hang)
    url, timeout = "socket://192.0.2.1:5555", 1.0
    v = Viewer(PortTarget(url), None, Options(quiet=True, timeout=timeout))
    t0 = time.monotonic()
    with pytest.raises(targets.TargetError) as e:
        v.run(vs.open_source(str(frames_dir)))
    elapsed = time.monotonic() - t0
    release.set()
    assert timeout <= elapsed < timeout + 0.5, elapsed
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{url} did not open within the timeout"), msg
    assert "gave up after" in msg
    for _ in range(100):  # the late link is closed by the thread that opened it
        if late and late[0].closed:
            break
        time.sleep(0.01)
    assert late and late[0].closed


# A stand-in for qemu-system-arm: "deaf" never listens on its serial port; "mute" listens
# and accepts, and never says HELLO.
FAKE_QEMU = """
import socket, sys, time
if sys.argv[1] == "mute":
    port = int(sys.argv[2].split(":")[2].split(",")[0])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    conn, _ = s.accept()
time.sleep(60)
"""


@pytest.mark.parametrize("fake", ["deaf", "mute"])
def test_a_virtual_board_that_never_starts_ends_within_the_timeout(
        fake: str, frames_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting QEMU used to wait 30 s whatever --timeout said: a QEMU that never opens its
    serial port, or never says HELLO on it, now ends the viewer by the timeout with one line,
    and the process is stopped."""
    from patchcam.targets import boards, qemu
    started = []

    def command(fw, serial, cmdline=None):
        started.append(serial)
        return [sys.executable, "-c", FAKE_QEMU, fake, serial]
    monkeypatch.setattr(qemu, "qemu_command", command)
    popen = subprocess.Popen
    procs: list[subprocess.Popen] = []

    def tracked(*a, **k):
        procs.append(popen(*a, **k))
        return procs[-1]
    monkeypatch.setattr(boards.subprocess, "Popen", tracked)
    firmware = tmp_path / "fake.elf"
    firmware.write_bytes(b"\x7fELF")
    target = VirtualBoardTarget("qemu_m7", tmp_path, feed="frame")
    monkeypatch.setattr(target, "build", lambda: firmware)
    timeout = 1.5
    v = Viewer(target, None, Options(quiet=True, timeout=timeout))
    t0 = time.monotonic()
    with pytest.raises(targets.TargetError) as e:
        v.run(vs.open_source(str(frames_dir)))
    elapsed = time.monotonic() - t0
    assert timeout <= elapsed < timeout + 1.0, elapsed
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("cannot start the qemu_m7 board: "), msg
    assert ("cannot connect to socket://" if fake == "deaf" else "sent no HELLO") in msg
    assert "gave up after" in msg
    assert started and procs and all(p.poll() is not None for p in procs)


def test_cli_unopenable_port_exits_with_one_line(frames_dir: Path, tmp_path: Path) -> None:
    url = _closed_port()
    r = _cli("--port", url, "--source", str(frames_dir), "--headless", "--save-dir",
             str(tmp_path / "o"), "--timeout", "1", "--frames", "5")
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"viewer: connection refused: nothing listens "
                                               f"at {url}"), r.stderr


# ---- the command line ---------------------------------------------------------------------
def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(VIEWER), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_help_teaches() -> None:
    r = _cli("--help")
    assert r.returncode == 0
    for s in ("--source", "--split", "--port", "--board", "--headless", "--record",
              "--save-dir", "examples:", "socket://", "space pause"):
        assert s in r.stdout


@pytest.mark.parametrize("args, msg", [
    (["--port", "/dev/ttyNOPE0", "--source", "samples", "--headless", "--save-dir", "x"],
     "no such port /dev/ttyNOPE0"),
    (["--port", "socket://127.0.0.1:9", "--source", "9", "--headless", "--save-dir", "x"],
     "camera 9 not found"),
    (["--port", "socket://127.0.0.1:9", "--source", "samples"], "no display"),
])
def test_cli_errors_are_one_line(args: list[str], msg: str, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    r = _cli(*args)
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and msg in err[0], r.stderr


def test_cli_empty_folder(tmp_path: Path) -> None:
    r = _cli("--port", "socket://127.0.0.1:9", "--source", str(tmp_path), "--headless",
             "--save-dir", str(tmp_path / "o"))
    assert r.returncode != 0 and "image folder is empty" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_headless_against_a_socket_board(frames_dir: Path, tmp_path: Path) -> None:
    board = FakeBoard()
    try:
        r = _cli("--port", board.url, "--source", str(frames_dir), "--headless",
                 "--record", str(tmp_path / "o.mp4"), "--save-dir", str(tmp_path / "o"))
    finally:
        board.close()
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "o").glob("*.png"))) == 3
    assert (tmp_path / "o.mp4").stat().st_size > 0
    assert "3 frames, 3 with a result" in r.stdout


def test_camera_mode_shows_previews_with_boxes(tmp_path: Path) -> None:
    board = FakeBoard(camera=True)
    out = tmp_path / "out"
    try:
        v = Viewer(PortTarget(board.url), Recorder(None, out),
                   Options(quiet=True, timeout=5.0))
        assert v.connect(time.monotonic() + 5)  # as the command line does, to read HELLO
        assert v.view.hello.camera_format == pp.PixFmt.RGB565
        assert v.run_camera(max_frames=3) == 3
        time.sleep(0.2)
    finally:
        board.close()
    assert [(s.key, s.value) for s in board.sets] == [(pp.SetKey.PREVIEW, 2),
                                                      (pp.SetKey.STREAM, -1),
                                                      (pp.SetKey.STREAM, 0)]
    recs = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    assert len(recs) == 3 and all(r["result"]["detections"] for r in recs)
    img = cv2.imread(str(sorted(out.glob("*.png"))[0]))
    assert img.shape == (TOP_H + 512 + BOTTOM_H, 640, 3)  # 80x64 preview, 8x
    d = BOXES[0]
    assert _has_color(img, d.x0 * 4, (d.y0 + d.y1) * 2 + TOP_H, class_color(0))
    assert tuple(img[TOP_H + 460, 300]) == (100, 100, 100)  # the thumbnail's grey


# ---- end to end with the virtual boards ---------------------------------------------------
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
needs_qemu = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs gcc-arm-none-eabi and qemu-system-arm (make setup)")


@pytest.fixture(scope="module")
def app_model() -> Path:
    """person_detect's model folder (its untrained network until it is exported; cached)."""
    model_dir, _, _ = app_model_dir("person_detect")
    return model_dir


@needs_gcc
def test_end_to_end_host_board_matches_the_python_pipeline(frames_dir: Path, tmp_path: Path,
                                                            app_model: Path) -> None:
    from patchcam.app.config import load_app
    from patchcam.app.export import AppSpec
    from patchcam.app.pipeline import Pipeline
    from patchcam.compiler.ir import Graph
    out = tmp_path / "out"
    r = _cli("--board", "host", "--app", "person_detect", "--source", str(frames_dir),
             "--headless", "--save-dir", str(out), "--record", str(tmp_path / "o.mp4"),
             timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "UNTRAINED" in r.stdout or "trained person_detect model" in r.stdout
    recs = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    assert len(recs) == 3 and all(x["result"] is not None for x in recs)
    assert all(x["result"]["latency_us"] > 0 for x in recs)
    # The board's answer is what the Python pipeline gives for the pixels the viewer sent.
    if (app_model / "model.json").is_file():  # an exported model may come without its IR
        g = Graph.load(app_model / "model.json")
        pipe = Pipeline(g, AppSpec.from_app(load_app("person_detect"), g))
        bgr = cv2.imread(str(frames_dir / "f0.png"))
        rgb = cv2.cvtColor(cv2.resize(bgr, (160, 128), interpolation=cv2.INTER_AREA),
                           cv2.COLOR_BGR2RGB)
        want = pipe.run(rgb.tobytes(), 160, 128, pp.PixFmt.RGB888, frame_id=1)
        got = recs[0]["result"]
        assert got["detections"] == [{"box": [d.x0, d.y0, d.x1, d.y1], "class": d.cls,
                                      "score": d.score, "label": "person",
                                      "p": got["detections"][i]["p"]}
                                     for i, d in enumerate(want.detections)]


@pytest.mark.parametrize("kind", [pytest.param("host", marks=needs_gcc),
                                  pytest.param("qemu_m7", marks=needs_qemu)])
def test_virtual_board_restarted_when_it_dies(kind: str, frames_dir: Path, tmp_path: Path,
                                              app_model: Path) -> None:
    """The board process is killed between frames: the viewer starts it again, and every
    frame's result is the one for that frame's pixels (none mis-attributed)."""
    target = VirtualBoardTarget(kind, app_model)
    src = vs.open_source(str(frames_dir))

    def frames():
        for i, f in enumerate(src.frames()):
            if i == 1:  # the board crashes between frames 1 and 2
                target.board.proc.kill()
                target.board.proc.wait()
            yield f
    killing = vs.Source("frames, board killed after the first", frames, count=3)
    # a low threshold, so that the three grey frames get boxes, and different ones
    v, out = run_viewer(target, killing, tmp_path, timeout=60.0, threshold=0.05)
    recs = records(out)
    assert [x["result"] is not None for x in recs] == [True, True, True]
    assert target.starts == 2 and v.view.stats.reconnects == 1
    if (app_model / "model.json").is_file():  # each answer is its own frame's
        boxes = [[d["box"] for d in rec["result"]["detections"]] for rec in recs]
        assert boxes == [[[d.x0, d.y0, d.x1, d.y1] for d in _python_result(
            app_model, frames_dir / f"f{i}.png", 0.05).detections] for i in range(3)]
        assert boxes[0] and boxes[0] != boxes[1] != boxes[2]  # a mix-up would show


def _python_result(app_model: Path, image: Path, threshold: float) -> pp.Result:
    """What the Python pipeline answers for the pixels the viewer sends for image."""
    from patchcam.app.config import load_app
    from patchcam.app.export import AppSpec
    from patchcam.app.pipeline import Pipeline
    from patchcam.compiler.ir import Graph
    g = Graph.load(app_model / "model.json")
    pipe = Pipeline(g, AppSpec.from_app(load_app("person_detect"), g))
    out = g.tensors[g.output]
    pipe.apply(pp.Set(pp.SetKey.SCORE_Q,
                      pp.score_threshold_q(threshold, out.scale, out.zero_point)))
    rgb = cv2.cvtColor(cv2.resize(cv2.imread(str(image)), (160, 128),
                                  interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return pipe.run(rgb.tobytes(), 160, 128, pp.PixFmt.RGB888, frame_id=1)


@needs_qemu
def test_end_to_end_qemu_m7_n_frames_n_outputs(frames_dir: Path, tmp_path: Path,
                                               app_model: Path) -> None:
    out = tmp_path / "out"
    r = _cli("--board", "qemu_m7", "--app", "person_detect", "--source", str(frames_dir),
             "--headless", "--save-dir", str(out), "--record", str(tmp_path / "o.mp4"),
             "--threshold", "0.3", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    recs = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    pngs = sorted(out.glob("*.png"))
    assert len(recs) == len(pngs) == 3
    assert all(x["result"] is not None and x["status"] == "" for x in recs)
    assert [x["result"]["frame_id"] for x in recs] == [1, 2, 3]  # camera frames, in order
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert "3 frames, 3 with a result" in r.stdout


def test_cli_uses_the_board_camera_by_default(tmp_path: Path) -> None:
    """`make view` without SOURCE on a board with a camera: its own frames."""
    board = FakeBoard(camera=True)
    try:
        r = _cli("--port", board.url, "--headless", "--save-dir", str(tmp_path / "o"),
                 "--frames", "2", "--app", "vww")
    finally:
        board.close()
    assert r.returncode == 0, r.stderr
    assert "the board's camera" in r.stdout and "2 frames, 2 with a result" in r.stdout
    assert "the board runs 'person_detect', not 'vww'" in r.stderr
    assert len(list((tmp_path / "o").glob("*.png"))) == 2


def test_firmware_rebuild_key_covers_the_build_scripts(tmp_path):
    # A build script that moved would silently drop out of the rebuild key.
    assert all(p.is_file() for p in targets.BUILD_SCRIPTS)
    (tmp_path / "a.c").write_text("int a;")
    before = targets._sources_hash([tmp_path], list(targets.BUILD_SCRIPTS))
    (tmp_path / "a.c").write_text("int b;")
    assert targets._sources_hash([tmp_path], list(targets.BUILD_SCRIPTS)) != before
