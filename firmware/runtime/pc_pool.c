/* pc_pool.c - average and max pooling, int8. Only taps inside the image count (TFLite's
 * reference kernels), so padding never dilutes an average or wins a max. */
#include "pc_kernels.h"

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

void pc_avg_pool2d_s8(const pc_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t ch = p->input.c;
    for (int32_t oy = 0; oy < p->output.h; oy++) {
        for (int32_t ox = 0; ox < p->output.w; ox++) {
            int32_t y0, y1, x0, x1;
            window(p, oy, ox, &y0, &y1, &x0, &x1);
            const int32_t count = (y1 - y0) * (x1 - x0);
            for (int32_t c = 0; c < ch; c++) {
                int32_t sum = 0;
                for (int32_t y = y0; y < y1; y++) {
                    const int8_t *x = input + (y * p->input.w + x0) * ch + c;
                    for (int32_t n = x1 - x0; n > 0; n--) {
                        sum += *x;
                        x += ch;
                    }
                }
                /* round half away from zero, as TFLite */
                const int32_t q = sum > 0 ? (sum + count / 2) / count
                                          : (sum - count / 2) / count;
                *output++ = clamp(q, p->act_min, p->act_max);
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
