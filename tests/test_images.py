"""Image files from datasets and users (patchcam.images): a header claiming more than
MAX_PIXELS is refused before anything is decoded, a truncated JPEG is unreadable, and the
training loaders skip both with a warning naming the file."""

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from patchcam import images
from patchcam.training import imagesets, readers


def forged_png(path: Path, w: int, h: int) -> Path:
    """A real 1x1 PNG whose IHDR (CRC fixed up) claims w x h pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", w, h)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def jpeg(path: Path, w: int = 64, h: int = 48) -> bytes:
    rng = np.random.default_rng(0)
    ok, enc = cv2.imencode(".jpg", rng.integers(0, 255, (h, w, 3), np.uint8))
    assert ok
    path.write_bytes(enc.tobytes())
    return enc.tobytes()


@pytest.fixture
def no_decode(monkeypatch):
    """Fail the test if OpenCV is asked to decode (allocate) anything."""
    def refuse(*_a, **_k):
        raise AssertionError("cv2.imread called on a refused image")
    monkeypatch.setattr(cv2, "imread", refuse)


@pytest.mark.parametrize("w,h,message", [
    (20000, 20000, "more than 40,000,000 pixels"),  # over Pillow's own limit too
    (8000, 6000, "8000x6000 is more than 40,000,000 pixels"),
])
def test_huge_header_is_refused_before_decoding(tmp_path, no_decode, w, h, message):
    png = forged_png(tmp_path / "bomb.png", w, h)
    with pytest.raises(images.UnreadableImage, match=message) as e:
        images.read_image(png)
    assert str(e.value).startswith(f"{png}: ")
    assert readers.probe_image(png) is None
    with pytest.warns(UserWarning, match=rf"{png}: .*{message}, skipped"):
        assert imagesets.load_image(png, (8, 8)) is None


def test_limit_is_one_constant(tmp_path, monkeypatch):
    png = forged_png(tmp_path / "wide.png", 300, 200)
    assert images.image_size(png) == (300, 200)
    monkeypatch.setattr(images, "MAX_PIXELS", 300 * 200 - 1)
    with pytest.raises(images.UnreadableImage, match="300x200 is more than 59,999 pixels"):
        images.image_size(png)


def test_folder_reader_skips_the_bomb(tmp_path, no_decode):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.new("RGB", (4, 4)).save(tmp_path / cls / "ok.png")
    forged_png(tmp_path / "a" / "bomb.png", 20000, 20000)
    with pytest.warns(UserWarning, match="bomb.png: more than 40,000,000 pixels, skipped"):
        ss = readers.read_folder(tmp_path)
    assert [p.name for p, _ in ss.skipped] == ["bomb.png"] and len(ss) == 2


def test_truncated_jpeg_is_unreadable(tmp_path):
    data = jpeg(tmp_path / "full.jpg")
    assert images.jpeg_complete(data)
    assert images.read_image(tmp_path / "full.jpg").shape == (48, 64, 3)
    # data after the end-of-image marker (a phone's appended video) is fine
    (tmp_path / "tail.jpg").write_bytes(data + b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    assert images.read_image(tmp_path / "tail.jpg", gray=True).shape == (48, 64)
    for cut in (len(data) - 2, len(data) * 2 // 3, 200, 3):
        (tmp_path / "cut.jpg").write_bytes(data[:cut])
        assert not images.jpeg_complete(data[:cut])
        with pytest.raises(images.UnreadableImage, match="truncated JPEG|cannot be read"):
            images.read_image(tmp_path / "cut.jpg")
    with pytest.warns(UserWarning, match="cut.jpg: .*, skipped"):
        assert imagesets.load_image(tmp_path / "cut.jpg", (8, 8)) is None


def test_missing_and_not_an_image(tmp_path):
    with pytest.raises(images.UnreadableImage, match="file not found"):
        images.read_image(tmp_path / "nope.png")
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(images.UnreadableImage, match="cannot be read as an image"):
        images.read_image(tmp_path / "text.jpg")


def test_decode_image_checks_bytes_as_read_image_checks_files(tmp_path, monkeypatch):
    """Bytes already in memory get the same checks before cv2.imdecode sees them."""
    data = jpeg(tmp_path / "ok.jpg")
    assert images.decode_image(data, "ok.jpg").shape == (48, 64, 3)
    assert images.decode_image(data, "ok.jpg", gray=True).shape == (48, 64)
    with pytest.raises(images.UnreadableImage, match="^cut.jpg: truncated JPEG"):
        images.decode_image(data[:len(data) * 2 // 3], "cut.jpg")
    bomb = forged_png(tmp_path / "bomb.png", 20000, 20000).read_bytes()
    monkeypatch.setattr(cv2, "imdecode", lambda *_a, **_k: pytest.fail("imdecode called"))
    with pytest.raises(images.UnreadableImage, match="^bomb.png: more than 40,000,000 pixels"):
        images.decode_image(bomb, "bomb.png")


def test_classifier_views_skip_a_forged_header(tmp_path, monkeypatch):
    """make_views (the classifier's training views, decoded from the file's bytes) refuses a
    bomb with a warning naming the file instead of allocating 1.2 GB."""
    from patchcam.training import classifier as tc
    png = forged_png(tmp_path / "bomb.png", 20000, 20000)
    monkeypatch.setattr(cv2, "imdecode", lambda *_a, **_k: pytest.fail("imdecode called"))
    with pytest.warns(UserWarning, match=rf"{png}: more than 40,000,000 pixels, skipped"):
        assert tc.make_views(png.read_bytes(), "ab12", 2, 0, (16, 16), False, png) is None


def test_viewer_image_source_skips_a_forged_header(tmp_path, monkeypatch, capsys):
    """The viewer's image files go through read_image: the bomb is skipped, before any
    decoding, with a line saying why; the good image still streams."""
    from patchcam.host import sources
    bomb = forged_png(tmp_path / "a_bomb.png", 8000, 6000)
    Image.new("RGB", (4, 3)).save(tmp_path / "b_ok.png")
    decoded, imread = [], cv2.imread

    def recording_imread(path, *a):
        decoded.append(Path(path).name)
        return imread(path, *a)
    monkeypatch.setattr(cv2, "imread", recording_imread)
    frames = list(sources.image_folder(tmp_path))
    assert [(name, img.shape) for name, img in frames] == [("b_ok", (3, 4, 3))]
    assert decoded == ["b_ok.png"]
    assert f"viewer: {bomb}: 8000x6000 is more than 40,000,000 pixels, skipped" in \
        capsys.readouterr().out
