/* test_preprocess_window.c - pc_preprocess_window == the same rectangle of pc_preprocess's
 * whole image, byte for byte, over random source sizes, formats, destination sizes (down- and
 * upscaling, odd sizes) and windows (empty, single pixels, single rows, the whole image).
 * Also: a window outside the image, or sizes pc_preprocess_check refuses, leave dst untouched.
 * Built with AddressSanitizer by tests/test_app_loop.py: every window is written into a buffer
 * of exactly its size, so a byte written past it stops the test. Exit status 0 on success;
 * prints the case count. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_preprocess.h"

#define MAX_SIDE 70

static uint32_t rng_state = 12345u;

/* xorshift32: the same cases on every host */
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

static int fail(const char *what, int i)
{
    fprintf(stderr, "preprocess window: %s (case %d)\n", what, i);
    return 1;
}

int main(void)
{
    static uint8_t src[MAX_SIDE * MAX_SIDE * 3];
    static int8_t whole[MAX_SIDE * MAX_SIDE * 3];
    long windows = 0;
    for (int i = 0; i < 3000; i++) {
        const uint8_t format = (uint8_t)(1 + rnd(3));
        const uint16_t sw = (uint16_t)(1 + rnd(MAX_SIDE)), sh = (uint16_t)(1 + rnd(MAX_SIDE));
        const uint16_t dw = (uint16_t)(1 + rnd(MAX_SIDE)), dh = (uint16_t)(1 + rnd(MAX_SIDE));
        const uint8_t dc = rnd(2) ? 3 : 1;
        for (size_t j = 0; j < sizeof src; j++) {
            src[j] = (uint8_t)rnd(256);
        }
        if (pc_preprocess_check(sw, sh, format, dw, dh, dc) != 0 ||
            pc_preprocess(src, sw, sh, format, whole, dw, dh, dc) != 0) {
            return fail("valid sizes refused", i);
        }
        for (int k = 0; k < 12; k++) {
            pc_rect_t r;
            switch (k) {
            case 0: r = (pc_rect_t){0, 0, dh, dw}; break;                  /* the whole image */
            case 1: r = (pc_rect_t){(uint16_t)rnd(dh), (uint16_t)rnd(dw), 1, 1}; break;
            case 2: r = (pc_rect_t){(uint16_t)rnd(dh), 0, 1, dw}; break;   /* one row */
            case 3: r = (pc_rect_t){(uint16_t)rnd(dh + 1u), (uint16_t)rnd(dw + 1u), 0,
                                    (uint16_t)rnd(3)}; break;             /* empty */
            default:
                r.y = (uint16_t)rnd(dh);
                r.x = (uint16_t)rnd(dw);
                r.h = (uint16_t)(1 + rnd((uint32_t)(dh - r.y)));
                r.w = (uint16_t)(1 + rnd((uint32_t)(dw - r.x)));
            }
            const size_t n = (size_t)r.h * r.w * dc;
            int8_t *got = malloc(n ? n : 1); /* exactly the window: ASan sees any overrun */
            if (got == NULL) {
                return fail("out of memory", i);
            }
            if (pc_preprocess_window(src, sw, sh, format, &r, got, dw, dh, dc) != 0) {
                free(got);
                return fail("a window inside the image refused", i);
            }
            for (uint32_t y = 0; y < r.h; y++) {
                const int8_t *want = whole + ((size_t)(r.y + y) * dw + r.x) * dc;
                if (memcmp(got + (size_t)y * r.w * dc, want, (size_t)r.w * dc) != 0) {
                    fprintf(stderr, "src %ux%u fmt %u -> %ux%ux%u, window y %u x %u h %u w %u\n",
                            sw, sh, format, dw, dh, dc, r.y, r.x, r.h, r.w);
                    free(got);
                    return fail("window differs from the whole image", i);
                }
            }
            free(got);
            windows++;
        }
        /* outside the image, or sizes the check refuses: -1 and nothing written */
        int8_t guard[4] = {7, 7, 7, 7};
        const pc_rect_t outside[] = {{dh, 0, 1, 1}, {0, dw, 1, 1}, {(uint16_t)(dh - 1), 0, 2, 1},
                                     {0, (uint16_t)(dw - 1), 1, 2}, {65535, 65535, 2, 2}};
        for (size_t k = 0; k < sizeof outside / sizeof outside[0]; k++) {
            if (pc_preprocess_window(src, sw, sh, format, &outside[k], guard, dw, dh, dc) !=
                -1) {
                return fail("a window outside the image accepted", i);
            }
        }
        const pc_rect_t one = {0, 0, 1, 1};
        if (pc_preprocess_window(src, sw, sh, 4, &one, guard, dw, dh, dc) != -1 ||
            pc_preprocess_window(src, 0, sh, format, &one, guard, dw, dh, dc) != -1 ||
            pc_preprocess_window(src, sw, sh, format, &one, guard, dw, dh, 2) != -1 ||
            pc_preprocess_window(src, 65535, 65535, 3, &one, guard, dw, dh, dc) != -1) {
            return fail("refused sizes accepted", i);
        }
        if (guard[0] != 7 || guard[1] != 7 || guard[2] != 7 || guard[3] != 7) {
            return fail("a refused window wrote to dst", i);
        }
    }
    printf("%ld windows\n", windows);
    return 0;
}
