/* pc_preprocess.h - camera frame -> int8 model input (docs/design.md §4.7; Python twin:
 * patchcam/app/preprocess.py, bit-exact; spec: docs/protocol.md "Preprocessing").
 *
 * Nearest-neighbour resize sampling pixel centres, colour conversion (GRAY8 / RGB565 LE /
 * RGB888 -> grey or RGB), then q = pixel - 128. Integer arithmetic only.
 */
#ifndef PATCHCAM_PC_PREPROCESS_H
#define PATCHCAM_PC_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

/* Bytes per pixel of a board_pixfmt_t (0 for an unknown format). */
size_t pc_pixfmt_bytes(uint8_t format);

/* src: src_w x src_h pixels in format (1 GRAY8, 2 RGB565, 3 RGB888); dst: dst_h x dst_w x
 * dst_c int8 (HWC), dst_c 1 (grey) or 3 (RGB). Returns 0, or -1 for an unknown format, a zero
 * size, dst_c not 1 or 3, or sizes whose byte counts or resize indices overflow 32 bits (dst
 * untouched). src must hold src_w * src_h * bpp bytes (the caller checks that, with
 * pc_image_bytes of pc_size.h); src and dst must not overlap. */
int pc_preprocess(const uint8_t *src, uint16_t src_w, uint16_t src_h, uint8_t format,
                  int8_t *dst, uint16_t dst_w, uint16_t dst_h, uint8_t dst_c);

#endif /* PATCHCAM_PC_PREPROCESS_H */
