/* pc_conv.c - conv2d (any kernel) and pointwise (1x1) conv, int8.
 *
 * DSP path (CMSIS-NN's arm_nn_mat_mult_kernel_s8_s16 scheme): the input patch of two output
 * pixels is widened to int16 with the input offset added ("im2col"), in the order SXTB16
 * leaves the filter bytes in (x0 x2 x1 x3 per group of four), so the inner loop per four
 * input channels is: 2 filter loads, 4 SXTB16, 4 column loads, 8 SMLAD for 16 MACs
 * (2 output channels x 2 pixels). The portable path is direct loops.
 */
#include "pc_kernels.h"

#include "pc_dsp.h"
#include "pc_requant.h"

const char *pc_kernels_variant(void)
{
#if PC_USE_DSP && defined(PC_DSP_EMULATE)
    return "dsp-emulated";
#elif PC_USE_DSP
    return "dsp";
#else
    return "portable";
#endif
}

int32_t pc_conv2d_s8_get_buffer_size(const pc_conv_params_t *p)
{
    return PC_CONV2D_S8_BUFFER_SIZE(p->kernel_h, p->kernel_w, p->input.c);
}

int32_t pc_pointwise_conv2d_s8_get_buffer_size(const pc_conv_params_t *p)
{
    return PC_POINTWISE_CONV2D_S8_BUFFER_SIZE(p->input.c);
}

#if PC_USE_DSP

/* Widen n int8 values to int16 + offset, in SXTB16 order within each group of four. */
static void widen_reordered(const int8_t *src, int16_t *dst, int32_t n, int32_t offset)
{
    const uint32_t off2 = pc_dup16(offset);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t x = pc_read_u32(src + i);
        const uint32_t even = pc_sxtab16(off2, x);     /* x0 x2 */
        const uint32_t odd = pc_sxtab16_ror8(off2, x); /* x1 x3 */
        memcpy(dst + i, &even, 4);
        memcpy(dst + i + 2, &odd, 4);
    }
    for (; i < n; i++) {
        dst[i] = (int16_t)(src[i] + offset);
    }
}

/* The kh*kw*Cin patch of output pixel (oy, ox), widened, padding taps = 0 (after offset). */
static void im2col(const pc_conv_params_t *p, const int8_t *input, int32_t oy, int32_t ox,
                   int16_t *col)
{
    const int32_t cin = p->input.c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    int32_t n = 0;
    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
        const int32_t iy = iy0 + ky;
        for (int32_t kx = 0; kx < p->kernel_w; kx++) {
            const int32_t ix = ix0 + kx;
            if (iy < 0 || iy >= p->input.h || ix < 0 || ix >= p->input.w) {
                for (int32_t c = 0; c < cin; c++) {
                    col[n + c] = 0;
                }
            } else {
                const int8_t *src = input + (iy * p->input.w + ix) * cin;
                for (int32_t c = 0; c < cin; c++) {
                    col[n + c] = (int16_t)(src[c] + p->input_offset);
                }
            }
            n += cin;
        }
    }
    /* natural order -> SXTB16 order */
    for (int32_t i = 0; i + 4 <= n; i += 4) {
        const int16_t t = col[i + 1];
        col[i + 1] = col[i + 2];
        col[i + 2] = t;
    }
}

/* out_a[co], out_b[co] = requant(bias[co] + filter[co, :] . col_x) for all co.
 * filter: (cout, k) int8 natural order; col_a, col_b: k int16 in SXTB16 order. col_b may equal
 * col_a (then out_b must equal out_a: a single pixel). */
static void mat_mult_2x2(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                         const int8_t *filter, const int32_t *bias, int32_t k,
                         const int16_t *col_a, const int16_t *col_b, int8_t *out_a,
                         int8_t *out_b)
{
    const int32_t cout = p->output.c;
    const int32_t out_off = p->output_offset;
    const int32_t lo = p->act_min;
    const int32_t hi = p->act_max;
    int32_t co = 0;
    for (; co + 2 <= cout; co += 2) {
        const int8_t *w0 = filter + co * k;
        const int8_t *w1 = w0 + k;
        const int16_t *a = col_a;
        const int16_t *b = col_b;
        int32_t a0 = bias[co];
        int32_t a1 = bias[co + 1];
        int32_t b0 = a0;
        int32_t b1 = a1;
        int32_t n = k >> 2;
        while (n-- > 0) {
            const uint32_t wa = pc_read_u32(w0);
            const uint32_t wb = pc_read_u32(w1);
            uint32_t we = pc_sxtb16(wa);
            uint32_t wf = pc_sxtb16(wb);
            uint32_t x = pc_read_u32(a);
            a0 = pc_smlad(we, x, a0);
            a1 = pc_smlad(wf, x, a1);
            x = pc_read_u32(b);
            b0 = pc_smlad(we, x, b0);
            b1 = pc_smlad(wf, x, b1);
            we = pc_sxtb16_ror8(wa);
            wf = pc_sxtb16_ror8(wb);
            x = pc_read_u32(a + 2);
            a0 = pc_smlad(we, x, a0);
            a1 = pc_smlad(wf, x, a1);
            x = pc_read_u32(b + 2);
            b0 = pc_smlad(we, x, b0);
            b1 = pc_smlad(wf, x, b1);
            w0 += 4;
            w1 += 4;
            a += 4;
            b += 4;
        }
        for (n = k & 3; n > 0; n--) {
            a0 += *w0 * *a;
            a1 += *w1 * *a;
            b0 += *w0++ * *b;
            b1 += *w1++ * *b;
            a++;
            b++;
        }
        out_a[co] = PC_REQUANTIZE_S8(a0, q->multiplier[co], q->shift[co], out_off, lo, hi);
        out_a[co + 1] =
            PC_REQUANTIZE_S8(a1, q->multiplier[co + 1], q->shift[co + 1], out_off, lo, hi);
        out_b[co] = PC_REQUANTIZE_S8(b0, q->multiplier[co], q->shift[co], out_off, lo, hi);
        out_b[co + 1] =
            PC_REQUANTIZE_S8(b1, q->multiplier[co + 1], q->shift[co + 1], out_off, lo, hi);
    }
    if (co < cout) {
        const int8_t *w0 = filter + co * k;
        const int16_t *a = col_a;
        const int16_t *b = col_b;
        int32_t a0 = bias[co];
        int32_t b0 = a0;
        int32_t n = k >> 2;
        while (n-- > 0) {
            const uint32_t wa = pc_read_u32(w0);
            const uint32_t we = pc_sxtb16(wa);
            const uint32_t wo = pc_sxtb16_ror8(wa);
            a0 = pc_smlad(we, pc_read_u32(a), a0);
            a0 = pc_smlad(wo, pc_read_u32(a + 2), a0);
            b0 = pc_smlad(we, pc_read_u32(b), b0);
            b0 = pc_smlad(wo, pc_read_u32(b + 2), b0);
            w0 += 4;
            a += 4;
            b += 4;
        }
        for (n = k & 3; n > 0; n--) {
            a0 += *w0 * *a++;
            b0 += *w0++ * *b++;
        }
        out_a[co] = PC_REQUANTIZE_S8(a0, q->multiplier[co], q->shift[co], out_off, lo, hi);
        out_b[co] = PC_REQUANTIZE_S8(b0, q->multiplier[co], q->shift[co], out_off, lo, hi);
    }
}

void pc_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                  const int8_t *input, const int8_t *filter, const int32_t *bias,
                  int8_t *output, void *scratch)
{
    const int32_t k = p->kernel_h * p->kernel_w * p->input.c;
    const int32_t wo = p->output.w;
    const int32_t pixels = p->output.h * wo;
    const int32_t cout = p->output.c;
    int16_t *col_a = (int16_t *)scratch;
    int16_t *col_b = col_a + k;
    int32_t i = 0;
    for (; i + 2 <= pixels; i += 2) {
        im2col(p, input, i / wo, i % wo, col_a);
        im2col(p, input, (i + 1) / wo, (i + 1) % wo, col_b);
        mat_mult_2x2(p, q, filter, bias, k, col_a, col_b, output + i * cout,
                     output + (i + 1) * cout);
    }
    if (i < pixels) {
        im2col(p, input, i / wo, i % wo, col_a);
        mat_mult_2x2(p, q, filter, bias, k, col_a, col_a, output + i * cout,
                     output + i * cout);
    }
}

void pc_pointwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                            const int8_t *input, const int8_t *filter, const int32_t *bias,
                            int8_t *output, void *scratch)
{
    const int32_t cin = p->input.c;
    const int32_t cout = p->output.c;
    const int32_t wo = p->output.w;
    const int32_t pixels = p->output.h * wo;
    int16_t *col_a = (int16_t *)scratch;
    int16_t *col_b = col_a + cin;
    const int8_t *px_a;
    const int8_t *px_b;
    int32_t i = 0;
    for (; i + 2 <= pixels; i += 2) {
        if (p->stride_h == 1 && p->stride_w == 1) {
            px_a = input + i * cin;
            px_b = px_a + cin;
        } else {
            px_a = input + ((i / wo) * p->stride_h * p->input.w + (i % wo) * p->stride_w) * cin;
            px_b = input + (((i + 1) / wo) * p->stride_h * p->input.w +
                            ((i + 1) % wo) * p->stride_w) * cin;
        }
        widen_reordered(px_a, col_a, cin, p->input_offset);
        widen_reordered(px_b, col_b, cin, p->input_offset);
        mat_mult_2x2(p, q, filter, bias, cin, col_a, col_b, output + i * cout,
                     output + (i + 1) * cout);
    }
    if (i < pixels) {
        px_a = input + ((i / wo) * p->stride_h * p->input.w + (i % wo) * p->stride_w) * cin;
        widen_reordered(px_a, col_a, cin, p->input_offset);
        mat_mult_2x2(p, q, filter, bias, cin, col_a, col_a, output + i * cout,
                     output + i * cout);
    }
}

#else /* portable C */

void pc_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                  const int8_t *input, const int8_t *filter, const int32_t *bias,
                  int8_t *output, void *scratch)
{
    const int32_t cin = p->input.c;
    const int32_t kh = p->kernel_h;
    const int32_t kw = p->kernel_w;
    const int32_t off = p->input_offset;
    (void)scratch;
    for (int32_t oy = 0; oy < p->output.h; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = p->input.h - iy0 < kh ? p->input.h - iy0 : kh;
        for (int32_t ox = 0; ox < p->output.w; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t kx1 = p->input.w - ix0 < kw ? p->input.w - ix0 : kw;
            for (int32_t co = 0; co < p->output.c; co++) {
                int32_t acc = bias[co];
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        const int8_t *x = input + ((iy0 + ky) * p->input.w + ix0 + kx) * cin;
                        const int8_t *w = filter + ((co * kh + ky) * kw + kx) * cin;
                        for (int32_t c = 0; c < cin; c++) {
                            acc += (x[c] + off) * w[c];
                        }
                    }
                }
                *output++ = PC_REQUANTIZE_S8(acc, q->multiplier[co], q->shift[co],
                                             p->output_offset, p->act_min, p->act_max);
            }
        }
    }
}

void pc_pointwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                            const int8_t *input, const int8_t *filter, const int32_t *bias,
                            int8_t *output, void *scratch)
{
    const int32_t cin = p->input.c;
    const int32_t off = p->input_offset;
    (void)scratch;
    for (int32_t oy = 0; oy < p->output.h; oy++) {
        for (int32_t ox = 0; ox < p->output.w; ox++) {
            const int8_t *x = input + (oy * p->stride_h * p->input.w + ox * p->stride_w) * cin;
            const int8_t *w = filter;
            for (int32_t co = 0; co < p->output.c; co++) {
                int32_t acc = bias[co];
                for (int32_t c = 0; c < cin; c++) {
                    acc += (x[c] + off) * w[c];
                }
                w += cin;
                *output++ = PC_REQUANTIZE_S8(acc, q->multiplier[co], q->shift[co],
                                             p->output_offset, p->act_min, p->act_max);
            }
        }
    }
}

#endif /* PC_USE_DSP */
