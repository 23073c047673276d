/* test_output_stride.c - host test program for pc_conv_params_t.output_stride of conv2d and
 * pointwise conv (run by tests/test_runtime_host.py on both code paths, built with
 * AddressSanitizer + UBSan; depthwise has its own sweep in test_dw_in_place.c).
 *
 *   test_output_stride SEED
 *       for random layers (kernels 1x1 .. 5x5 and 3x3 over 3 channels like an RGB stem,
 *       strides 1 and 2, 1..40 input and 1..80 output channels, so both the small-patch and
 *       the general conv route, and more than one chunk of output channels), runs the kernel
 *       once into a contiguous output and once with output rows 1..3 pixels longer than Wo,
 *       into a malloc'd buffer that ends right after the last output pixel (AddressSanitizer
 *       catches a byte past it); every row must equal the contiguous run's and the bytes
 *       between rows must stay untouched. A pointwise layer also reads its input from rows
 *       longer than its own (input.w wider than needed, as a patch tile's window inside its
 *       buffer). Prints "checked N, failed F".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_kernels.h"

static uint32_t rng_state;

static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static int32_t between(int32_t lo, int32_t hi)
{
    return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}

/* One layer: 1 when the strided output equals the contiguous one, else 0. */
static int check(int pointwise)
{
    const int32_t k = pointwise ? 1 : (int32_t[]){1, 2, 3, 5}[rnd() % 4];
    const int32_t s = between(1, 2);
    const int32_t cin = !pointwise && rnd() % 3 == 0 ? 3 : between(1, 40);
    const int32_t cout = between(1, 80);
    const int32_t ho = between(1, 9), wo = between(1, 11);
    const int32_t pad = pointwise ? 0 : between(0, k - 1);
    const int32_t h = (ho - 1) * s + k - pad, w = (wo - 1) * s + k - pad;
    const int32_t in_w = pointwise ? w + between(0, 3) : w; /* the input's row length */
    const int32_t pitch = (wo + between(1, 3)) * cout;      /* bytes per strided output row */
    const size_t out_bytes = (size_t)(ho * wo * cout);
    const size_t strided_bytes = (size_t)((ho - 1) * pitch + wo * cout);
    pc_conv_params_t p;
    pc_per_channel_quant_t q;
    int32_t *mult = malloc(sizeof(int32_t) * (size_t)cout);
    int32_t *shift = malloc(sizeof(int32_t) * (size_t)cout);
    int32_t *bias = malloc(sizeof(int32_t) * (size_t)cout);
    int8_t *filter = malloc((size_t)(cout * k * k * cin));
    int8_t *input = malloc((size_t)(h * in_w * cin));
    int8_t *want = malloc(out_bytes);
    int8_t *got = malloc(strided_bytes);
    void *scratch = malloc((size_t)PC_CONV2D_S8_BUFFER_SIZE(k, k, cin));
    int ok = 1;
    memset(&p, 0, sizeof(p));
    p.input = (pc_dims_t){h, in_w, cin};
    p.output = (pc_dims_t){ho, wo, cout};
    p.kernel_h = p.kernel_w = k;
    p.stride_h = p.stride_w = s;
    p.pad_top = p.pad_left = pad;
    p.input_offset = between(-127, 128);
    p.output_offset = between(-128, 127);
    p.act_min = rnd() % 2 ? -128 : -100;
    p.act_max = rnd() % 2 ? 127 : 90;
    for (int32_t i = 0; i < cout; i++) {
        mult[i] = (int32_t)((1u << 30) + rnd() % (1u << 30));
        shift[i] = -between(6, 9);
        bias[i] = between(-2000, 2000);
    }
    for (int32_t i = 0; i < cout * k * k * cin; i++) {
        filter[i] = (int8_t)(rnd() & 0xff);
    }
    for (int32_t i = 0; i < h * in_w * cin; i++) {
        input[i] = (int8_t)(rnd() & 0xff);
    }
    q.multiplier = mult;
    q.shift = shift;
    memset(got, 0x5a, strided_bytes);
    if (pointwise) {
        pc_pointwise_conv2d_s8(&p, &q, input, filter, bias, want, scratch);
        p.output_stride = pitch / cout;
        pc_pointwise_conv2d_s8(&p, &q, input, filter, bias, got, scratch);
    } else {
        pc_conv2d_s8(&p, &q, input, filter, bias, want, scratch);
        p.output_stride = pitch / cout;
        pc_conv2d_s8(&p, &q, input, filter, bias, got, scratch);
    }
    for (int32_t y = 0; y < ho; y++) {
        ok &= memcmp(got + y * pitch, want + y * wo * cout, (size_t)(wo * cout)) == 0;
        for (int32_t i = wo * cout; i < pitch && y + 1 < ho; i++) {
            ok &= got[y * pitch + i] == 0x5a;
        }
    }
    if (!ok) {
        printf("FAILED %s k %d s %d cin %d cout %d ho %d wo %d pad %d\n",
               pointwise ? "pointwise" : "conv2d", (int)k, (int)s, (int)cin, (int)cout,
               (int)ho, (int)wo, (int)pad);
    }
    free(mult);
    free(shift);
    free(bias);
    free(filter);
    free(input);
    free(want);
    free(got);
    free(scratch);
    return ok;
}

int main(int argc, char **argv)
{
    int checked = 0, failed = 0;
    rng_state = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1u;
    for (int n = 0; n < 400; n++) {
        failed += !check(n % 2);
        checked++;
    }
    printf("checked %d, failed %d\n", checked, failed);
    return failed ? 1 : 0;
}
