"""Camera frame -> model input, bit-exact with firmware/app/pc_preprocess.c (docs/design.md §4.7).

    x = preprocess(pixels, width, height, PixFmt.RGB565, (96, 96, 3))   # int8 (96, 96, 3)

1. resize by nearest neighbour sampling pixel centres: sx = ((2 dx + 1) src_w) // (2 dst_w);
2. colour: RGB565 -> RGB888 by bit replication; RGB -> grey (77 R + 150 G + 29 B + 128) >> 8;
   grey -> RGB by copying;
3. quantise: q = pixel - 128.

Integer arithmetic only, so C and numpy agree exactly. `preview(x, k)` is the thumbnail a board
sends in PREVIEW messages: the preprocessed input (q + 128) subsampled by k.
"""

from __future__ import annotations

import numpy as np

from patchcam.host.protocol import PixFmt


def sample_index(dst: int, src: int) -> np.ndarray:
    """Source index of each destination index (nearest neighbour, pixel centres)."""
    return ((2 * np.arange(dst, dtype=np.int64) + 1) * src) // (2 * dst)


def to_rgb888(img: np.ndarray, fmt: PixFmt) -> np.ndarray:
    """(h, w, 3) uint8 from GRAY8 (h, w), RGB565 (h, w) uint16 or RGB888 (h, w, 3)."""
    if fmt == PixFmt.RGB888:
        return img.astype(np.uint8)
    if fmt == PixFmt.GRAY8:
        return np.repeat(img.astype(np.uint8)[..., None], 3, axis=2)
    if fmt == PixFmt.RGB565:
        v = img.astype(np.uint32)
        r5, g6, b5 = (v >> 11) & 31, (v >> 5) & 63, v & 31
        rgb = np.stack([(r5 << 3) | (r5 >> 2), (g6 << 2) | (g6 >> 4), (b5 << 3) | (b5 >> 2)], -1)
        return rgb.astype(np.uint8)
    raise ValueError(f"unknown pixel format {fmt}")


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    return ((77 * r + 150 * g + 29 * b + 128) >> 8).astype(np.uint8)


def decode_image(pixels: bytes | np.ndarray, width: int, height: int, fmt: PixFmt) -> np.ndarray:
    """Raw frame bytes -> numpy: (h, w) uint8, (h, w) uint16 (RGB565) or (h, w, 3) uint8."""
    data = pixels.tobytes() if isinstance(pixels, np.ndarray) else bytes(pixels)
    fmt = PixFmt(fmt)
    if fmt == PixFmt.NONE or width <= 0 or height <= 0:
        raise ValueError(f"bad image {width}x{height} {fmt.name}")
    if len(data) != width * height * fmt.bytes_per_pixel:
        raise ValueError(f"{width}x{height} {fmt.name} needs "
                         f"{width * height * fmt.bytes_per_pixel} bytes, got {len(data)}")
    if fmt == PixFmt.GRAY8:
        return np.frombuffer(data, np.uint8).reshape(height, width)
    if fmt == PixFmt.RGB565:
        return np.frombuffer(data, "<u2").reshape(height, width)
    return np.frombuffer(data, np.uint8).reshape(height, width, 3)


def preprocess(pixels: bytes | np.ndarray, width: int, height: int, fmt: PixFmt,
               shape: tuple[int, int, int]) -> np.ndarray:
    """The model input (int8, shape (H, W, C), C = 1 grey or 3 RGB) of one camera frame."""
    dst_h, dst_w, dst_c = shape
    if dst_c not in (1, 3):
        raise ValueError(f"model input must have 1 or 3 channels, got {dst_c}")
    img = decode_image(pixels, width, height, fmt)
    img = img[sample_index(dst_h, height)][:, sample_index(dst_w, width)]
    if dst_c == 1:
        gray = img if fmt == PixFmt.GRAY8 else rgb_to_gray(to_rgb888(img, fmt))
        px = gray[..., None]
    else:
        px = to_rgb888(img, fmt)
    return (px.astype(np.int16) - 128).astype(np.int8)


def preview(x: np.ndarray, k: int) -> tuple[np.ndarray, PixFmt]:
    """The PREVIEW thumbnail of model input x subsampled by k: (pixels uint8, format)."""
    h, w, c = x.shape
    th, tw = max(1, h // k), max(1, w // k)
    img = (x.astype(np.int16) + 128).astype(np.uint8)[0:th * k:k, 0:tw * k:k]
    return (img[..., 0], PixFmt.GRAY8) if c == 1 else (img, PixFmt.RGB888)


def to_rgb565(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (h, w) uint16 RGB565 (truncating), for test frames."""
    r, g, b = (rgb[..., i].astype(np.uint16) for i in range(3))
    return ((r >> 3) << 11 | (g >> 2) << 5 | (b >> 3)).astype("<u2")
