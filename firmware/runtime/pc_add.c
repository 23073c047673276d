/* pc_add.c - elementwise add, int8 (TFLite's scheme: left shift, rescale, sum, rescale). */
#include "pc_kernels.h"

#include "pc_requant.h"

void pc_add_s8(const pc_add_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output)
{
    for (int32_t i = 0; i < p->size; i++) {
        /* (x + offset) is in [-255, 255]: shifting it left by 20 cannot overflow. */
        const int32_t a = (int32_t)((uint32_t)(input1[i] + p->input1_offset) << p->left_shift);
        const int32_t b = (int32_t)((uint32_t)(input2[i] + p->input2_offset) << p->left_shift);
        const int32_t sa =
            pc_multiply_by_quantized_multiplier(a, p->input1_multiplier, p->input1_shift);
        const int32_t sb =
            pc_multiply_by_quantized_multiplier(b, p->input2_multiplier, p->input2_shift);
        output[i] = pc_requantize_s8(sa + sb, p->output_multiplier, p->output_shift,
                                     p->output_offset, p->act_min, p->act_max);
    }
}
