"""pcpipe - preprocessing and detection decode in plain MicroPython, for main_ml.py.

The same integer arithmetic as firmware/app/pc_preprocess.c and pc_detect.c (and their
Python twins patchcam/app/preprocess.py and patchcam/app/detect.py; docs/protocol.md): main.py gets
these from pcmodel in C, main_ml.py (OpenMV's `ml` module, no natmod) needs them here.
tests/test_openmv.py checks both against patchcam under CPython.
"""

import struct

import micropython  # on CPython the tests provide a stand-in whose native() changes nothing


# The compiler only recognises the literal `@micropython.native`: machine code instead of
# bytecode for the two per-pixel / per-cell loops.
@micropython.native
def preprocess(src, sw: int, sh: int, fmt: int, dst, dw: int, dh: int, dc: int) -> None:
    """src: sw x sh pixels (1 GRAY8, 2 RGB565 LE, 3 RGB888) -> dst: dh x dw x dc int8 bytes
    (as 0..255 in a bytearray), nearest neighbour at pixel centres, q = pixel - 128.
    ValueError for an unknown format, a zero size or dc not 1 or 3."""
    bpp = 1 if fmt == 1 else 2 if fmt == 2 else 3 if fmt == 3 else 0
    if bpp == 0 or sw <= 0 or sh <= 0 or dw <= 0 or dh <= 0 or dc not in (1, 3):
        raise ValueError("cannot preprocess this image")
    if len(src) < sw * sh * bpp or len(dst) < dw * dh * dc:
        raise ValueError("buffer too small")
    xs = [((2 * dx + 1) * sw) // (2 * dw) * bpp for dx in range(dw)]
    i = 0
    for dy in range(dh):
        row = ((2 * dy + 1) * sh) // (2 * dh) * sw * bpp
        for sx in xs:
            p = row + sx
            if fmt == 1:
                r = g = b = src[p]
            elif fmt == 2:
                v = src[p] | (src[p + 1] << 8)
                r5 = (v >> 11) & 31
                g6 = (v >> 5) & 63
                b5 = v & 31
                r = (r5 << 3) | (r5 >> 2)
                g = (g6 << 2) | (g6 >> 4)
                b = (b5 << 3) | (b5 >> 2)
            else:
                r = src[p]
                g = src[p + 1]
                b = src[p + 2]
            if dc == 1:
                # q = y - 128 as a byte is y ^ 0x80
                dst[i] = ((77 * r + 150 * g + 29 * b + 128) >> 8) ^ 0x80
                i += 1
            else:
                dst[i] = r ^ 0x80
                dst[i + 1] = g ^ 0x80
                dst[i + 2] = b ^ 0x80
                i += 3


def _s8(b: int) -> int:
    return b - 256 if b > 127 else b


def _clamp(v: int, hi: int) -> int:
    return 0 if v < 0 else hi if v > hi else v


@micropython.native
def detect(out, p, score_q: int, iou_q10: int, max_detections: int) -> tuple:
    """Decode + NMS of the grid head's int8 output `out` (bytes, grid_h x grid_w x (K + 4));
    p: the app's constants (pcapp: NUM_CLASSES, STRIDE, GRID_H, GRID_W, IMAGE_W, IMAGE_H,
    ZERO_POINT, BOX_MULTIPLIER, FRAC_BITS, MAX_CANDIDATES, CLASS_AGNOSTIC). Returns
    (items, count): the RESULT items (10 bytes each), best first."""
    k = p.DET_NUM_CLASSES
    one = 1 << p.DET_FRAC_BITS
    half = one >> 1
    lim_x = p.DET_IMAGE_W * one
    lim_y = p.DET_IMAGE_H * one
    m = p.DET_BOX_MULTIPLIER
    zp = p.DET_ZERO_POINT
    fb = p.DET_FRAC_BITS
    cap = p.DET_MAX_CANDIDATES
    cand = []  # (score, x0, y0, x1, y1, cls), score descending; raster, class order on ties
    for y in range(p.DET_GRID_H):
        for x in range(p.DET_GRID_W):
            base = (y * p.DET_GRID_W + x) * (k + 4)
            best = _s8(out[base])
            for c in range(1, k):
                best = max(best, _s8(out[base + c]))
            if best < score_q:  # no class passes
                continue
            ax = (2 * x + 1) * p.DET_STRIDE * half
            ay = (2 * y + 1) * p.DET_STRIDE * half
            x0 = (_clamp(ax - m * (_s8(out[base + k]) - zp), lim_x) + half) >> fb
            y0 = (_clamp(ay - m * (_s8(out[base + k + 1]) - zp), lim_y) + half) >> fb
            x1 = (_clamp(ax + m * (_s8(out[base + k + 2]) - zp), lim_x) + half) >> fb
            y1 = (_clamp(ay + m * (_s8(out[base + k + 3]) - zp), lim_y) + half) >> fb
            if x1 <= x0 or y1 <= y0:
                continue
            for c in range(k):  # every class that passes is a candidate
                s = _s8(out[base + c])
                if s < score_q:
                    continue
                pos = len(cand)
                while pos > 0 and cand[pos - 1][0] < s:
                    pos -= 1
                if pos >= cap:
                    continue
                cand.insert(pos, (s, x0, y0, x1, y1, c))
                if len(cand) > cap:
                    cand.pop()
    kept = []
    for d in cand:
        if len(kept) >= max_detections:
            break
        suppressed = False
        for e in kept:
            if not p.DET_CLASS_AGNOSTIC and d[5] != e[5]:
                continue
            iw = min(d[3], e[3]) - max(d[1], e[1])
            ih = min(d[4], e[4]) - max(d[2], e[2])
            if iw <= 0 or ih <= 0:
                continue
            inter = iw * ih
            union = (d[3] - d[1]) * (d[4] - d[2]) + (e[3] - e[1]) * (e[4] - e[2]) - inter
            if inter * 1024 > iou_q10 * union:
                suppressed = True
                break
        if not suppressed:
            kept.append(d)
    items = bytearray()
    for s, x0, y0, x1, y1, c in kept:
        items.extend(struct.pack("<HHHHBb", x0, y0, x1, y1, c, s))
    return bytes(items), len(kept)
