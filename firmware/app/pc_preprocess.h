/* pc_preprocess.h - camera frame -> int8 model input (docs/design.md §4.7; Python twin:
 * patchcam/app/preprocess.py, bit-exact; spec: docs/protocol.md "Preprocessing").
 *
 * Nearest-neighbour resize sampling pixel centres, colour conversion (GRAY8 / RGB565 LE /
 * RGB888 -> grey or RGB), then q = pixel - 128. Integer arithmetic only.
 *
 * Each destination pixel depends on its own coordinates only, so any rectangle of the model
 * input can be computed on its own (pc_preprocess_window): the app loop of a model with a fused
 * input (MODEL_FUSED_INPUT) preprocesses each patch's input window straight from the camera
 * frame and never holds the whole model input. pc_preprocess is the window that covers the
 * whole image, so both give the same bytes by construction.
 */
#ifndef PATCHCAM_PC_PREPROCESS_H
#define PATCHCAM_PC_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

/* A rectangle of destination pixels: top-left (y, x), h rows of w pixels. */
typedef struct {
    uint16_t y, x, h, w;
} pc_rect_t;

/* Bytes per pixel of a board_pixfmt_t (0 for an unknown format). */
size_t pc_pixfmt_bytes(uint8_t format);

/* Whether pc_preprocess accepts these sizes and formats: 0, or -1 for an unknown format, a
 * zero size, dst_c not 1 or 3, or sizes whose byte counts or resize indices overflow 32 bits.
 * A caller that preprocesses an image window by window checks once, before the first one. */
int pc_preprocess_check(uint16_t src_w, uint16_t src_h, uint8_t format, uint16_t dst_w,
                        uint16_t dst_h, uint8_t dst_c);

/* src: src_w x src_h pixels in format (1 GRAY8, 2 RGB565, 3 RGB888); dst: dst_h x dst_w x
 * dst_c int8 (HWC), dst_c 1 (grey) or 3 (RGB). Returns 0, or -1 when pc_preprocess_check
 * refuses the sizes (dst untouched). src must hold src_w * src_h * bpp bytes (the caller
 * checks that, with pc_image_bytes of pc_size.h); src and dst must not overlap. */
int pc_preprocess(const uint8_t *src, uint16_t src_w, uint16_t src_h, uint8_t format,
                  int8_t *dst, uint16_t dst_w, uint16_t dst_h, uint8_t dst_c);

/* The pixels of `win` of the dst_h x dst_w x dst_c image pc_preprocess would write, written
 * contiguously to dst (win->h x win->w x dst_c bytes, HWC). Returns 0, or -1 (dst untouched)
 * when pc_preprocess_check refuses the sizes or a non-empty win does not lie inside the
 * destination image; an empty window (h or w 0) writes nothing, wherever it lies. */
int pc_preprocess_window(const uint8_t *src, uint16_t src_w, uint16_t src_h, uint8_t format,
                         const pc_rect_t *win, int8_t *dst, uint16_t dst_w, uint16_t dst_h,
                         uint8_t dst_c);

#endif /* PATCHCAM_PC_PREPROCESS_H */
