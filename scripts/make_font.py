"""Writes firmware/app/pc_font.h: printable ASCII (32..126) as 6x11 bitmaps, one byte per row
(bit 5 = leftmost pixel), rendered from Pillow's built-in bitmap font
(PIL.ImageFont.load_default_imagefont, Pillow's HPND licence). tests/test_lcd_draw.py checks
that the header is what this script writes.

    .venv/bin/python scripts/make_font.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

W, H = 6, 11
OUT = Path(__file__).resolve().parents[1] / "firmware" / "app" / "pc_font.h"


def glyph_rows(ch: str) -> list[int]:
    font = ImageFont.load_default_imagefont()
    im = Image.new("L", (W, H))
    ImageDraw.Draw(im).text((0, 0), ch, font=font, fill=255)
    bits = np.array(im) > 127
    return [sum(1 << (W - 1 - x) for x in range(W) if bits[y, x]) for y in range(H)]


def header() -> str:
    lines = ["/* pc_font.h - printable ASCII (32..126) as 6x11 bitmaps, one byte per row (bit 5 =",
             " * leftmost pixel). Written by scripts/make_font.py from Pillow's built-in bitmap",
             " * font (HPND licence); do not edit. */",
             "#ifndef PATCHCAM_PC_FONT_H", "#define PATCHCAM_PC_FONT_H", "",
             "#include <stdint.h>", "",
             f"#define PC_FONT_W {W}", f"#define PC_FONT_H {H}",
             "#define PC_FONT_FIRST 32", "#define PC_FONT_LAST 126", "",
             "static const uint8_t pc_font[PC_FONT_LAST - PC_FONT_FIRST + 1][PC_FONT_H] = {"]
    for c in range(32, 127):
        rows = ", ".join(f"0x{r:02x}" for r in glyph_rows(chr(c)))
        name = {"\\": "backslash", "*": "star", "/": "slash"}.get(chr(c), chr(c))
        lines.append(f"    {{{rows}}}, /* {name} */")
    lines += ["};", "", "#endif /* PATCHCAM_PC_FONT_H */", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    OUT.write_text(header())
    print(f"wrote {OUT}")
