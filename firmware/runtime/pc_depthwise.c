/* pc_depthwise.c - depthwise conv (channel multiplier 1), int8, any kernel and stride.
 *
 * No scratch: taps outside the image are skipped by clipping the kernel window, so the inner
 * loops never test for padding. DSP path: four channels at a time; per tap one input word and
 * one filter word are widened by SXTAB16 / SXTB16 (the input offset rides along in SXTAB16)
 * and accumulated with SMLABB / SMLATT into four int32 sums (10 instructions / 4 MACs).
 */
#include "pc_kernels.h"

#include "pc_dsp.h"
#include "pc_requant.h"

void pc_depthwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                            const int8_t *input, const int8_t *filter, const int32_t *bias,
                            int8_t *output)
{
    const int32_t ch = p->input.c;
    const int32_t kh = p->kernel_h;
    const int32_t kw = p->kernel_w;
    const int32_t row = p->input.w * ch; /* bytes per input row */
    const int32_t off = p->input_offset;
    const int32_t out_off = p->output_offset;
    const int32_t lo = p->act_min;
    const int32_t hi = p->act_max;
#if PC_USE_DSP
    const uint32_t off2 = pc_dup16(off);
#endif
    for (int32_t oy = 0; oy < p->output.h; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = p->input.h - iy0 < kh ? p->input.h - iy0 : kh;
        for (int32_t ox = 0; ox < p->output.w; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t kx1 = p->input.w - ix0 < kw ? p->input.w - ix0 : kw;
            const int32_t taps_x = kx1 - kx0;
            /* first tap inside the image, for channel 0 */
            const int8_t *x_base = input + (iy0 + ky0) * row + (ix0 + kx0) * ch;
            const int8_t *w_base = filter + (ky0 * kw + kx0) * ch;
            int32_t c = 0;
#if PC_USE_DSP
            for (; c + 4 <= ch; c += 4) {
                int32_t s0 = bias[c];
                int32_t s1 = bias[c + 1];
                int32_t s2 = bias[c + 2];
                int32_t s3 = bias[c + 3];
                const int8_t *xr = x_base + c;
                const int8_t *wr = w_base + c;
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    const int8_t *x = xr;
                    const int8_t *w = wr;
                    for (int32_t n = taps_x; n > 0; n--) {
                        const uint32_t xv = pc_read_u32(x);
                        const uint32_t wv = pc_read_u32(w);
                        const uint32_t x02 = pc_sxtab16(off2, xv);
                        const uint32_t x13 = pc_sxtab16_ror8(off2, xv);
                        const uint32_t w02 = pc_sxtb16(wv);
                        const uint32_t w13 = pc_sxtb16_ror8(wv);
                        s0 = pc_smlabb(x02, w02, s0);
                        s2 = pc_smlatt(x02, w02, s2);
                        s1 = pc_smlabb(x13, w13, s1);
                        s3 = pc_smlatt(x13, w13, s3);
                        x += ch;
                        w += ch;
                    }
                    xr += row;
                    wr += kw * ch;
                }
                output[c] = PC_REQUANTIZE_S8(s0, q->multiplier[c], q->shift[c], out_off, lo, hi);
                output[c + 1] =
                    PC_REQUANTIZE_S8(s1, q->multiplier[c + 1], q->shift[c + 1], out_off, lo, hi);
                output[c + 2] =
                    PC_REQUANTIZE_S8(s2, q->multiplier[c + 2], q->shift[c + 2], out_off, lo, hi);
                output[c + 3] =
                    PC_REQUANTIZE_S8(s3, q->multiplier[c + 3], q->shift[c + 3], out_off, lo, hi);
            }
#endif
            for (; c < ch; c++) {
                int32_t acc = bias[c];
                const int8_t *xr = x_base + c;
                const int8_t *wr = w_base + c;
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t n = 0; n < taps_x; n++) {
                        acc += (xr[n * ch] + off) * wr[n * ch];
                    }
                    xr += row;
                    wr += kw * ch;
                }
                output[c] = PC_REQUANTIZE_S8(acc, q->multiplier[c], q->shift[c], out_off, lo, hi);
            }
            output += ch;
        }
    }
}
