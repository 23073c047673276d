/* pc_size.h - checked size arithmetic for sizes that come from outside (FRAME headers, camera
 * headers): every product of such fields goes through pc_mul_size.
 *
 * Sizes are uint32_t on every target, so the host build (64-bit size_t) accepts and rejects
 * exactly what the Cortex-M build (32-bit size_t) does: 46341 x 46341 RGB565 is "9266 bytes"
 * in wrapping 32-bit arithmetic, and an overflow here is refused rather than wrapped.
 */
#ifndef PATCHCAM_PC_SIZE_H
#define PATCHCAM_PC_SIZE_H

#include <stdint.h>

/* *out = a * b; returns 0, or -1 (and *out = 0) when the product does not fit in uint32_t. */
static inline int pc_mul_size(uint32_t a, uint32_t b, uint32_t *out)
{
    if (a != 0u && b > UINT32_MAX / a) {
        *out = 0u;
        return -1;
    }
    *out = a * b;
    return 0;
}

/* *out = width * height * bytes_per_pixel, checked; returns 0, or -1 on overflow. */
static inline int pc_image_bytes(uint32_t width, uint32_t height, uint32_t bytes_per_pixel,
                                 uint32_t *out)
{
    uint32_t pixels;
    if (pc_mul_size(width, height, &pixels) != 0) {
        *out = 0u;
        return -1;
    }
    return pc_mul_size(pixels, bytes_per_pixel, out);
}

#endif /* PATCHCAM_PC_SIZE_H */
