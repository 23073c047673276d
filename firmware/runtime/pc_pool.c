/* pc_pool.c - average and max pooling, int8. Only taps inside the image count (TFLite's
 * reference kernels), so padding never dilutes an average or wins a max. */
#include "pc_kernels.h"

#include "pc_dsp.h"

/* The window of output pixel (oy, ox) clipped to the image: rows [*y0, *y1), cols [*x0, *x1). */
static void window(const pc_pool_params_t *p, int32_t oy, int32_t ox, int32_t *y0, int32_t *y1,
                   int32_t *x0, int32_t *x1)
{
    const int32_t iy = oy * p->stride_h - p->pad_top;
    const int32_t ix = ox * p->stride_w - p->pad_left;
    *y0 = iy < 0 ? 0 : iy;
    *y1 = iy + p->kernel_h < p->input.h ? iy + p->kernel_h : p->input.h;
    *x0 = ix < 0 ? 0 : ix;
    *x1 = ix + p->kernel_w < p->input.w ? ix + p->kernel_w : p->input.w;
}

static int8_t clamp(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    return (int8_t)(v > hi ? hi : v);
}

/* The average of a window's sum over count taps, rounded half away from zero as TFLite. */
static int8_t average(int32_t sum, int32_t count, const pc_pool_params_t *p)
{
    const int32_t q = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
    return clamp(q, p->act_min, p->act_max);
}

#if PC_USE_DSP
/* Windows of at most this many taps take the four-channel path: their int8 sums stay within
 * an int16 lane (256 * -128 = -32768, 256 * 127 = 32512). */
#define AVG_MAX_TAPS 256

/* Channels [c, c + 4) of the window rows [y0, y1) x cols [x0, x1) into out[0..3]: per tap one
 * load and two SXTAB16, which add channels (0, 2) and (1, 3) into int16 lanes, instead of
 * four byte loads and adds. */
static void average4(const pc_pool_params_t *p, const int8_t *input, int32_t y0, int32_t y1,
                     int32_t x0, int32_t x1, int32_t c, int8_t *out)
{
    const int32_t ch = p->input.c;
    const int32_t count = (y1 - y0) * (x1 - x0);
    uint32_t s02 = 0;
    uint32_t s13 = 0;
    for (int32_t y = y0; y < y1; y++) {
        const int8_t *x = input + (y * p->input.w + x0) * ch + c;
        for (int32_t n = x1 - x0; n > 0; n--) {
            const uint32_t v = pc_read_u32(x);
            s02 = pc_sxtab16(s02, v);
            s13 = pc_sxtab16_ror8(s13, v);
            x += ch;
        }
    }
    out[0] = average(pc_lo16(s02), count, p);
    out[1] = average(pc_lo16(s13), count, p);
    out[2] = average(pc_hi16(s02), count, p);
    out[3] = average(pc_hi16(s13), count, p);
}
#endif

void pc_avg_pool2d_s8(const pc_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t ch = p->input.c;
    for (int32_t oy = 0; oy < p->output.h; oy++) {
        for (int32_t ox = 0; ox < p->output.w; ox++) {
            int32_t y0, y1, x0, x1;
            window(p, oy, ox, &y0, &y1, &x0, &x1);
            const int32_t count = (y1 - y0) * (x1 - x0);
            int32_t c = 0;
#if PC_USE_DSP
            if (count <= AVG_MAX_TAPS) {
                for (; c + 4 <= ch; c += 4) {
                    average4(p, input, y0, y1, x0, x1, c, output);
                    output += 4;
                }
            }
#endif
            for (; c < ch; c++) {
                int32_t sum = 0;
                for (int32_t y = y0; y < y1; y++) {
                    const int8_t *x = input + (y * p->input.w + x0) * ch + c;
                    for (int32_t n = x1 - x0; n > 0; n--) {
                        sum += *x;
                        x += ch;
                    }
                }
                *output++ = average(sum, count, p);
            }
        }
    }
}

void pc_max_pool2d_s8(const pc_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t ch = p->input.c;
    for (int32_t oy = 0; oy < p->output.h; oy++) {
        for (int32_t ox = 0; ox < p->output.w; ox++) {
            int32_t y0, y1, x0, x1;
            window(p, oy, ox, &y0, &y1, &x0, &x1);
            for (int32_t c = 0; c < ch; c++) {
                int32_t m = -128;
                for (int32_t y = y0; y < y1; y++) {
                    const int8_t *x = input + (y * p->input.w + x0) * ch + c;
                    for (int32_t n = x1 - x0; n > 0; n--) {
                        m = *x > m ? *x : m;
                        x += ch;
                    }
                }
                *output++ = clamp(m, p->act_min, p->act_max);
            }
        }
    }
}
