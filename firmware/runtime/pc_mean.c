/* pc_mean.c - TFLite's int8 MEAN over H and W (reference_ops::QuantizedMeanOrSum's
 * arithmetic): an int32 sum per channel, the zero points, one requantisation. */
#include "pc_mean.h"

#include "pc_requant.h"

void pc_mean_s8(const pc_mean_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t ch = p->input.c;
    const int32_t n = p->input.h * p->input.w;
    for (int32_t c = 0; c < ch; c++) {
        int32_t sum = 0;
        const int8_t *x = input + c;
        for (int32_t i = 0; i < n; i++) {
            sum += *x;
            x += ch;
        }
        output[c] = pc_requantize_s8(sum + p->count * p->input_offset, p->multiplier, p->shift,
                                     p->output_offset, p->act_min, p->act_max);
    }
}
