/* pc_fully_connected.c - fully connected layer, int8, per-tensor requantisation.
 *
 * DSP path: two output rows at a time share each widened input word (SXTAB16 adds the input
 * offset), 13 instructions per 8 MACs.
 */
#include "pc_kernels.h"

#include "pc_dsp.h"
#include "pc_requant.h"

void pc_fully_connected_s8(const pc_fc_params_t *p, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, int8_t *output)
{
    const int32_t k = p->in_features;
    const int32_t off = p->input_offset;
    int32_t n = 0;
#if PC_USE_DSP
    const uint32_t off2 = pc_dup16(off);
    for (; n + 2 <= p->out_features; n += 2) {
        const int8_t *w0 = filter + n * k;
        const int8_t *w1 = w0 + k;
        int32_t s0 = bias[n];
        int32_t s1 = bias[n + 1];
        int32_t i = 0;
        for (; i + 4 <= k; i += 4) {
            const uint32_t xv = pc_read_u32(input + i);
            const uint32_t x02 = pc_sxtab16(off2, xv);
            const uint32_t x13 = pc_sxtab16_ror8(off2, xv);
            const uint32_t wa = pc_read_u32(w0 + i);
            const uint32_t wb = pc_read_u32(w1 + i);
            s0 = pc_smlad(x02, pc_sxtb16(wa), s0);
            s0 = pc_smlad(x13, pc_sxtb16_ror8(wa), s0);
            s1 = pc_smlad(x02, pc_sxtb16(wb), s1);
            s1 = pc_smlad(x13, pc_sxtb16_ror8(wb), s1);
        }
        for (; i < k; i++) {
            s0 += (input[i] + off) * w0[i];
            s1 += (input[i] + off) * w1[i];
        }
        output[n] = PC_REQUANTIZE_S8(s0, p->multiplier, p->shift, p->output_offset, p->act_min,
                                     p->act_max);
        output[n + 1] = PC_REQUANTIZE_S8(s1, p->multiplier, p->shift, p->output_offset,
                                         p->act_min, p->act_max);
    }
#endif
    for (; n < p->out_features; n++) {
        const int8_t *w = filter + n * k;
        int32_t acc = bias[n];
        for (int32_t i = 0; i < k; i++) {
            acc += (input[i] + off) * w[i];
        }
        output[n] = PC_REQUANTIZE_S8(acc, p->multiplier, p->shift, p->output_offset, p->act_min,
                                     p->act_max);
    }
}
