/* pc_preprocess.c - see pc_preprocess.h. */
#include "pc_preprocess.h"

#include "pc_size.h"

size_t pc_pixfmt_bytes(uint8_t format)
{
    return format == 1 ? 1u : format == 2 ? 2u : format == 3 ? 3u : 0u;
}

/* Source index of destination index d: ((2d + 1) * src) / (2 * dst). */
static uint32_t sample(uint32_t d, uint32_t src, uint32_t dst)
{
    return ((2u * d + 1u) * src) / (2u * dst);
}

int pc_preprocess_check(uint16_t src_w, uint16_t src_h, uint8_t format, uint16_t dst_w,
                        uint16_t dst_h, uint8_t dst_c)
{
    const size_t bpp = pc_pixfmt_bytes(format);
    if (bpp == 0 || src_w == 0 || src_h == 0 || dst_w == 0 || dst_h == 0 ||
        (dst_c != 1 && dst_c != 3)) {
        return -1;
    }
    /* Every index below must fit 32 bits: the source and destination sizes, and sample()'s
     * (2d + 1) * src for the largest d. */
    uint32_t bytes;
    if (pc_image_bytes(src_w, src_h, (uint32_t)bpp, &bytes) != 0 ||
        pc_image_bytes(dst_w, dst_h, dst_c, &bytes) != 0 ||
        pc_mul_size(2u * dst_h - 1u, src_h, &bytes) != 0 ||
        pc_mul_size(2u * dst_w - 1u, src_w, &bytes) != 0) {
        return -1;
    }
    return 0;
}

int pc_preprocess_window(const uint8_t *src, uint16_t src_w, uint16_t src_h, uint8_t format,
                         const pc_rect_t *win, int8_t *dst, uint16_t dst_w, uint16_t dst_h,
                         uint8_t dst_c)
{
    if (pc_preprocess_check(src_w, src_h, format, dst_w, dst_h, dst_c) != 0) {
        return -1;
    }
    if (win->h == 0 || win->w == 0) {
        return 0; /* e.g. a cache-mode patch that reads no new input */
    }
    /* Inside the destination: y + h <= dst_h in 32 bits (uint16_t sums cannot wrap there), so
     * every index below is one pc_preprocess_check has bounded. */
    if ((uint32_t)win->y + win->h > dst_h || (uint32_t)win->x + win->w > dst_w) {
        return -1;
    }
    const size_t bpp = pc_pixfmt_bytes(format);
    const uint32_t y_end = (uint32_t)win->y + win->h, x_end = (uint32_t)win->x + win->w;
    for (uint32_t dy = win->y; dy < y_end; dy++) {
        const uint8_t *row = src + (size_t)sample(dy, src_h, dst_h) * src_w * bpp;
        for (uint32_t dx = win->x; dx < x_end; dx++) {
            const uint8_t *p = row + (size_t)sample(dx, src_w, dst_w) * bpp;
            uint32_t r, g, b;
            if (format == 1) {
                if (dst_c == 1) {
                    *dst++ = (int8_t)((int32_t)p[0] - 128);
                    continue;
                }
                r = g = b = p[0];
            } else if (format == 2) {
                const uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8;
                const uint32_t r5 = (v >> 11) & 31u, g6 = (v >> 5) & 63u, b5 = v & 31u;
                r = (r5 << 3) | (r5 >> 2);
                g = (g6 << 2) | (g6 >> 4);
                b = (b5 << 3) | (b5 >> 2);
            } else {
                r = p[0];
                g = p[1];
                b = p[2];
            }
            if (dst_c == 1) {
                const uint32_t y = (77u * r + 150u * g + 29u * b + 128u) >> 8;
                *dst++ = (int8_t)((int32_t)y - 128);
            } else {
                *dst++ = (int8_t)((int32_t)r - 128);
                *dst++ = (int8_t)((int32_t)g - 128);
                *dst++ = (int8_t)((int32_t)b - 128);
            }
        }
    }
    return 0;
}

int pc_preprocess(const uint8_t *src, uint16_t src_w, uint16_t src_h, uint8_t format,
                  int8_t *dst, uint16_t dst_w, uint16_t dst_h, uint8_t dst_c)
{
    const pc_rect_t whole = {0, 0, dst_h, dst_w};
    return pc_preprocess_window(src, src_w, src_h, format, &whole, dst, dst_w, dst_h, dst_c);
}
