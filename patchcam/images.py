"""Reading image files the project did not make (datasets, the user's photos): the header
first, then the decoder (SECURITY.md).

A PNG or JPEG header may claim 20000 x 20000 pixels in a few hundred bytes; OpenCV would
allocate the whole frame (1.2 GB for RGB) before it finds out the data is not there. So every
image is measured from its header (Pillow reads only the header, lazily) and refused above
MAX_PIXELS, and a JPEG whose data stops before its end-of-image marker is refused instead of
being decoded with a grey bottom:

    size = image_size(path)         # (width, height), or UnreadableImage(reason)
    img = read_image(path, gray)    # what cv2.imread gives (BGR or grey), or UnreadableImage
    img = decode_image(data, name)  # the same for bytes already in memory (cv2.imdecode)

Nothing else in the package hands a file it did not write to OpenCV's decoder.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np

MAX_PIXELS = 40_000_000  # 40 MP: above any camera photo in the datasets; 120 MB as RGB

# a JPEG marker inside or after entropy-coded data: 0xFF then not a stuffed 0x00, not a
# restart marker (0xD0..0xD7) and not a fill byte (0xFF)
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


class UnreadableImage(ValueError):
    """A file that is not decoded: missing, not an image, too large, truncated. The message
    is `<path>: <reason>`."""


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file's header alone; UnreadableImage when the file is
    missing, not an image Pillow knows, or over MAX_PIXELS."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableImage(f"{path}: file not found")
    return _header_size(path, path)


def _header_size(src: Path | BinaryIO, name: str | Path) -> tuple[int, int]:
    """image_size for a file or a stream: Pillow reads the header only, so a forged size
    costs nothing; `name` starts the UnreadableImage message."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow's own, larger limit: we say it in our words
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(src) as im:
                w, h = im.size
    except Image.DecompressionBombError:
        raise UnreadableImage(f"{name}: more than {MAX_PIXELS:,} pixels") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        raise UnreadableImage(f"{name}: cannot be read as an image") from None
    if w * h > MAX_PIXELS:
        raise UnreadableImage(f"{name}: {w}x{h} is more than {MAX_PIXELS:,} pixels")
    return w, h


def jpeg_complete(data: bytes) -> bool:
    """Whether a JPEG's segments lead to its end-of-image marker (data after it, e.g. a
    phone's appended video, is allowed). Segment lengths skip headers and thumbnails; scan
    data is skipped to the next marker."""
    pos, n = 2, len(data)
    while pos + 1 < n:
        if data[pos] != 0xFF:  # stray bytes between segments (libjpeg skips them too)
            m = _NEXT_MARKER.search(data, pos)
            if m is None:
                return False
            pos = m.start()
        marker = data[pos + 1]
        if marker == 0xD9:
            return True
        if marker == 0xFF or 0xD0 <= marker <= 0xD8 or marker == 0x01:
            pos += 1 if marker == 0xFF else 2
            continue
        if pos + 4 > n:
            return False
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:
            m = _NEXT_MARKER.search(data, pos)
            if m is None:
                return False
            pos = m.start()
    return False


def read_image(path: str | Path, gray: bool = False) -> np.ndarray:
    """cv2.imread's BGR (or grey) array, after image_size's checks; a truncated JPEG, or a
    file OpenCV cannot decode, is UnreadableImage."""
    import cv2  # here: header checks alone (the dataset readers) need no OpenCV

    path = Path(path)
    image_size(path)
    with path.open("rb") as f:
        if f.read(2) == b"\xff\xd8" and not jpeg_complete(b"\xff\xd8" + f.read()):
            raise UnreadableImage(f"{path}: truncated JPEG (no end-of-image marker)")
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise UnreadableImage(f"{path}: cannot be decoded as an image")
    return img


def decode_image(data: bytes, name: str | Path, gray: bool = False) -> np.ndarray:
    """read_image for an encoded image already in memory (cv2.imdecode), with the same
    checks, so bytes read once (hashed, cached) are no way around them; `name` (the file
    it came from) starts the UnreadableImage message."""
    import cv2

    _header_size(io.BytesIO(data), name)
    if data[:2] == b"\xff\xd8" and not jpeg_complete(data):
        raise UnreadableImage(f"{name}: truncated JPEG (no end-of-image marker)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8),
                       cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise UnreadableImage(f"{name}: cannot be decoded as an image")
    return img
