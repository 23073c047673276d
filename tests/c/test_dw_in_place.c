/* test_dw_in_place.c - host test program for pc_depthwise_conv2d_s8_in_place (run by
 * tests/test_runtime_host.py on both code paths, built with AddressSanitizer + UBSan).
 *
 *   test_dw_in_place SEED
 *       for every geometry of a sweep (sizes 1..13 x 1..30 and, one in three, 1..13 x 1..80
 *       for the widest bands of the channel planes; kernels 1x1 .. 7x7 and 3x5,
 *       strides 1..3, every top / left pad below the kernel, bottom / right pads giving the
 *       "same" and the "valid" output, 1..9 channels and 16) and random data (a channel in 8
 *       with a positive shift, which takes the kernels' generic requantisation), runs the
 *       depthwise kernel into a separate output and the in-place kernel over a malloc'd copy
 *       of the input of exactly max(input, output) bytes, with a malloc'd scratch of exactly
 *       pc_depthwise_conv2d_s8_in_place_get_buffer_size bytes (AddressSanitizer catches a
 *       byte past either), and compares both outputs byte for byte with the plain loops of
 *       `reference` below; so is a third run with output rows longer than Wo
 *       (output_stride), whose gaps must stay untouched. Prints one line per geometry,
 *       "H W C KH KW SH SW PT PL HO WO ROWS", then "checked N, failed F".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_kernels.h"
#include "pc_requant.h"

static uint32_t rng_state;

static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static int8_t rnd_s8(void)
{
    return (int8_t)(rnd() & 0xff);
}

/* Depthwise convolution as the definition reads (docs/design.md: int8 arithmetic). */
static void reference(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                      const int8_t *input, const int8_t *filter, const int32_t *bias,
                      int8_t *output)
{
    const int32_t c = p->input.c;
    for (int32_t oy = 0; oy < p->output.h; oy++) {
        for (int32_t ox = 0; ox < p->output.w; ox++) {
            for (int32_t ch = 0; ch < c; ch++) {
                int32_t acc = bias[ch];
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                        if (iy >= 0 && iy < p->input.h && ix >= 0 && ix < p->input.w) {
                            acc += (input[(iy * p->input.w + ix) * c + ch] + p->input_offset) *
                                   filter[(ky * p->kernel_w + kx) * c + ch];
                        }
                    }
                }
                output[(oy * p->output.w + ox) * c + ch] =
                    pc_requantize_s8(acc, q->multiplier[ch], q->shift[ch], p->output_offset,
                                     p->act_min, p->act_max);
            }
        }
    }
}

/* The kernel with output rows 1..3 pixels longer than Wo (output_stride, a window of a wider
 * buffer) into a buffer that ends right after the last output pixel: every row must equal
 * ref's, and the bytes between rows must be untouched. */
static int strided_ok(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                      const int8_t *input, const int8_t *filter, const int32_t *bias,
                      const int8_t *ref)
{
    pc_conv_params_t s = *p;
    const int32_t c = p->output.c;
    const int32_t row = p->output.w * c;
    const int32_t pitch = (p->output.w + 1 + (int32_t)(rnd() % 3)) * c;
    const size_t bytes = (size_t)((p->output.h - 1) * pitch + row);
    int8_t *out = malloc(bytes);
    int ok = 1;
    memset(out, 0x5a, bytes);
    s.output_stride = pitch / c;
    pc_depthwise_conv2d_s8(&s, q, input, filter, bias, out);
    for (int32_t y = 0; y < p->output.h; y++) {
        ok &= memcmp(out + y * pitch, ref + y * row, (size_t)row) == 0;
        for (int32_t i = row; i < pitch && y + 1 < p->output.h; i++) {
            ok &= out[y * pitch + i] == 0x5a;
        }
    }
    free(out);
    return ok;
}

static int check(int32_t h, int32_t w, int32_t c, int32_t kh, int32_t kw, int32_t sh,
                 int32_t sw, int32_t pt, int32_t pl, int32_t pb, int32_t pr)
{
    const int32_t ho = (h + pt + pb - kh) / sh + 1;
    const int32_t wo = (w + pl + pr - kw) / sw + 1;
    pc_conv_params_t p;
    pc_per_channel_quant_t q;
    int32_t mult[16], shift[16], bias[16];
    int8_t filter[7 * 7 * 16];
    size_t in_bytes, out_bytes, bytes;
    int8_t *input, *want, *data, *scratch, *ref;
    int32_t scratch_bytes;
    int failed;
    if (h + pt + pb < kh || w + pl + pr < kw) {
        return 0;
    }
    memset(&p, 0, sizeof(p));
    p.input.h = h;
    p.input.w = w;
    p.input.c = c;
    p.output.h = ho;
    p.output.w = wo;
    p.output.c = c;
    p.kernel_h = kh;
    p.kernel_w = kw;
    p.stride_h = sh;
    p.stride_w = sw;
    p.pad_top = pt;
    p.pad_left = pl;
    p.input_offset = (int32_t)(rnd() % 256) - 127;
    p.output_offset = (int32_t)(rnd() % 256) - 128;
    p.act_min = rnd() % 2 ? -128 : -100;
    p.act_max = rnd() % 2 ? 127 : 90;
    for (int32_t i = 0; i < c; i++) {
        mult[i] = (int32_t)((1u << 30) + rnd() % (1u << 30));
        shift[i] = rnd() % 8 == 0 ? 1 : -(int32_t)(6 + rnd() % 4);
        bias[i] = (int32_t)(rnd() % 4001) - 2000;
    }
    for (int32_t i = 0; i < kh * kw * c; i++) {
        filter[i] = rnd_s8();
    }
    q.multiplier = mult;
    q.shift = shift;
    in_bytes = (size_t)(h * w * c);
    out_bytes = (size_t)(ho * wo * c);
    bytes = in_bytes > out_bytes ? in_bytes : out_bytes;
    input = malloc(in_bytes);
    want = malloc(out_bytes);
    ref = malloc(out_bytes);
    data = malloc(bytes);
    scratch_bytes = pc_depthwise_conv2d_s8_in_place_get_buffer_size(&p);
    scratch = malloc(scratch_bytes > 0 ? (size_t)scratch_bytes : 1);
    for (size_t i = 0; i < in_bytes; i++) {
        input[i] = rnd_s8();
    }
    for (size_t i = 0; i < bytes; i++) {
        data[i] = i < in_bytes ? input[i] : rnd_s8();
    }
    pc_depthwise_conv2d_s8(&p, &q, input, filter, bias, want);
    pc_depthwise_conv2d_s8_in_place(&p, &q, data, filter, bias, scratch);
    reference(&p, &q, input, filter, bias, ref);
    failed = memcmp(want, data, out_bytes) != 0 || memcmp(ref, want, out_bytes) != 0 ||
             !strided_ok(&p, &q, input, filter, bias, ref);
    printf("%d %d %d %d %d %d %d %d %d %d %d %d%s\n", (int)h, (int)w, (int)c, (int)kh, (int)kw,
           (int)sh, (int)sw, (int)pt, (int)pl, (int)ho, (int)wo,
           (int)pc_depthwise_in_place_rows(&p), failed ? " FAILED" : "");
    free(input);
    free(want);
    free(ref);
    free(data);
    free(scratch);
    return failed ? 2 : 1;
}

int main(int argc, char **argv)
{
    static const int32_t kernels[][2] = {{1, 1}, {2, 2}, {3, 3}, {5, 5}, {7, 7}, {3, 5}};
    static const int32_t channels[] = {1, 2, 3, 4, 5, 7, 8, 9, 16};
    int checked = 0, failed = 0;
    rng_state = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1u;
    for (size_t k = 0; k < sizeof(kernels) / sizeof(kernels[0]); k++) {
        const int32_t kh = kernels[k][0], kw = kernels[k][1];
        for (int32_t s = 1; s <= 3; s++) {
            for (int32_t pt = 0; pt < kh; pt++) {
                for (int32_t same = 0; same < 2; same++) {
                    /* bottom / right pads: "same" (the rest of kernel - 1) or none */
                    const int32_t pl = pt < kw ? pt : kw - 1;
                    const int32_t pb = same ? kh - 1 - pt : 0;
                    const int32_t pr = same ? kw - 1 - pl : 0;
                    for (int32_t n = 0; n < 6; n++) {
                        const int32_t h = 1 + (int32_t)(rnd() % 13);
                        const int32_t w = 1 + (int32_t)(rnd() % (n % 3 == 2 ? 80 : 30));
                        const int32_t c = channels[rnd() % (sizeof(channels) / sizeof(channels[0]))];
                        const int r = check(h, w, c, kh, kw, s, s == 3 ? 1 : s, pt, pl, pb, pr);
                        checked += r > 0;
                        failed += r == 2;
                    }
                }
            }
        }
    }
    printf("checked %d, failed %d\n", checked, failed);
    return failed ? 1 : 0;
}
