/* test_pc_app.c - host harness for firmware/app/pc_preprocess.c and pc_detect.c, driven by
 * tests/test_app_loop.py (which compares with patchcam/app/preprocess.py and patchcam/app/detect.py).
 *
 *   test_pc_app preprocess < records    record: u16 sw, u16 sh, u8 fmt, u16 dw, u16 dh, u8 dc,
 *                                        pixels (sw*sh*bpp); out: i32 status, dw*dh*dc int8
 *   test_pc_app detect < records        record: 14 x i32 params (pc_det_params_t order), then
 *                                        grid_h*grid_w*(K+4) int8; out: u16 n, n x (u16 x0 y0
 *                                        x1 y1, u8 cls, i8 score, u16 cell)
 * All little endian (the host's order). The test program may use malloc; the firmware not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_detect.h"
#include "pc_preprocess.h"

static int get(void *p, size_t n)
{
    return fread(p, 1, n, stdin) == n;
}

static int preprocess(void)
{
    uint8_t h[10];
    while (get(h, sizeof h)) {
        const uint16_t sw = (uint16_t)(h[0] | h[1] << 8), sh = (uint16_t)(h[2] | h[3] << 8);
        const uint8_t fmt = h[4];
        const uint16_t dw = (uint16_t)(h[5] | h[6] << 8), dh = (uint16_t)(h[7] | h[8] << 8);
        const uint8_t dc = h[9];
        const size_t in = (size_t)sw * sh * pc_pixfmt_bytes(fmt), out = (size_t)dw * dh * dc;
        uint8_t *src = malloc(in + 1);
        int8_t *dst = calloc(out + 1, 1);
        if (src == NULL || dst == NULL || !get(src, in)) {
            return 2;
        }
        const int32_t status = pc_preprocess(src, sw, sh, fmt, dst, dw, dh, dc);
        fwrite(&status, 4, 1, stdout);
        fwrite(dst, 1, out, stdout);
        free(src);
        free(dst);
    }
    return 0;
}

static int detect(void)
{
    int32_t v[14];
    while (get(v, sizeof v)) {
        pc_det_params_t p = {(uint16_t)v[0], (uint16_t)v[1], (uint16_t)v[2], (uint16_t)v[3],
                             (uint16_t)v[4], (uint16_t)v[5], v[6], v[7], v[8], (uint8_t)v[9],
                             v[10], (uint16_t)v[11], (uint16_t)v[12], (uint8_t)v[13]};
        const size_t n = (size_t)p.grid_h * p.grid_w * (p.num_classes + 4u);
        int8_t *out = malloc(n);
        pc_detection_t *scratch = malloc(sizeof *scratch * (p.max_candidates + 1u));
        pc_detection_t *dets = malloc(sizeof *dets * (p.max_detections + 1u));
        if (out == NULL || scratch == NULL || dets == NULL || !get(out, n)) {
            return 2;
        }
        const uint16_t k = (uint16_t)pc_detect_decode(out, &p, scratch, dets);
        fwrite(&k, 2, 1, stdout);
        for (uint16_t i = 0; i < k; i++) {
            const pc_detection_t *d = &dets[i];
            const uint16_t b[4] = {d->x0, d->y0, d->x1, d->y1};
            fwrite(b, 2, 4, stdout);
            fwrite(&d->cls, 1, 1, stdout);
            fwrite(&d->score, 1, 1, stdout);
            fwrite(&d->cell, 2, 1, stdout);
        }
        free(out);
        free(scratch);
        free(dets);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "preprocess") == 0) {
        return preprocess();
    }
    if (argc == 2 && strcmp(argv[1], "detect") == 0) {
        return detect();
    }
    fprintf(stderr, "usage: %s preprocess|detect < records\n", argv[0]);
    return 2;
}
