/* pc_add.c - elementwise add, int8 (TFLite's scheme: left shift, rescale, sum, rescale).
 *
 * DSP path: the generic form costs ~100 instructions per element (three
 * MultiplyByQuantizedMultiplier with their branches). With the layer's constants prepared once
 * it is ~20: each input term is ADD (offset and left shift in one), ADD (rounding - sign),
 * SMMLAR, ASR (the fast requantisation of pc_dsp.h with output offset 0), the sum is
 * requantised by pc_rq_fast, and act_min / act_max are applied four bytes at a time.
 */
#include "pc_kernels.h"

#include "pc_dsp.h"
#include "pc_requant.h"

static void add_generic(const pc_add_params_t *p, const int8_t *input1, const int8_t *input2,
                        int8_t *output, int32_t begin)
{
    for (int32_t i = begin; i < p->size; i++) {
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

#if PC_USE_DSP

/* One input's constants: term(x) = MultiplyByQuantizedMultiplier((x + off) << ls, m, -e). */
typedef struct {
    int32_t c;   /* off << (ls + 1): x2 = 2 * ((x + off) << ls) = (x << (ls + 1)) + c */
    int32_t rnd; /* 2^(e-1) (0 when e == 0) */
    int32_t m;
    int32_t e;
} add_in_t;

/* |(x + off) << ls| <= 255 * 2^ls < 2^30 (so SMMULR(2a, m) is the doubling high mul), and
 * e <= 31 keeps |h| + 2^(e-1) < 2^31. With e >= 1 the rounding divide is
 * SMMLAR(x2, m, 2^(e-1) - [x2 < 0]) >> e (pc_dsp.h's argument, output offset 0); e == 0 is
 * SMMULR alone, so the sign term must be left out: `rounds` is a compile-time constant. */
static int32_t add_in_prepare(add_in_t *t, int32_t off, int32_t ls, int32_t m, int32_t shift)
{
    t->c = (int32_t)((uint32_t)off << (ls + 1));
    t->m = m;
    t->e = -shift;
    t->rnd = shift < 0 ? (int32_t)(1u << (-shift - 1)) : 0;
    return shift <= 0 && shift >= -31;
}

PC_INLINE int32_t add_term(int32_t x, const add_in_t *t, int32_t ls1, int rounds)
{
    const int32_t x2 = (int32_t)((uint32_t)x << ls1) + t->c;
    return pc_smmlar(x2, t->m, rounds ? t->rnd + (x2 >> 31) : 0) >> t->e;
}

PC_INLINE int32_t add_one(int32_t x, int32_t y, const add_in_t *t1, const add_in_t *t2,
                          int32_t ls1, const pc_rq_t *r, int rounds1, int rounds2)
{
    return pc_rq_fast(add_term(x, t1, ls1, rounds1) + add_term(y, t2, ls1, rounds2), r);
}

/* Four elements per step: all eight inputs are read before the word is stored, so output may
 * equal input1 or input2 (in place). Returns the elements done. */
PC_INLINE int32_t add_fast(const pc_add_params_t *p, const int8_t *in1, const int8_t *in2,
                           int8_t *out, const add_in_t *t1, const add_in_t *t2,
                           const pc_rq_t *r, int rounds1, int rounds2)
{
    const int32_t ls1 = p->left_shift + 1;
    const uint32_t lo4 = pc_dup8(p->act_min);
    const uint32_t hi4 = pc_dup8(p->act_max);
    int32_t i = 0;
    for (; i + 4 <= p->size; i += 4) {
        uint32_t v = pc_pack_s8x4(
            add_one(in1[i], in2[i], t1, t2, ls1, r, rounds1, rounds2),
            add_one(in1[i + 1], in2[i + 1], t1, t2, ls1, r, rounds1, rounds2),
            add_one(in1[i + 2], in2[i + 2], t1, t2, ls1, r, rounds1, rounds2),
            add_one(in1[i + 3], in2[i + 3], t1, t2, ls1, r, rounds1, rounds2));
        v = pc_min_s8x4(pc_max_s8x4(v, lo4), hi4);
        memcpy(out + i, &v, 4);
    }
    return i;
}

void pc_add_s8(const pc_add_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output)
{
    const int32_t ls = p->left_shift;
    add_in_t t1, t2;
    pc_rq_t r;
    int32_t fast = ls >= 0 && ls <= 21;
    int32_t done = 0;
    if (fast) {
        /* |term| <= 255 * 2^ls + 1 (the multipliers are < 1, e >= 0), so the sum is bounded
         * as a "bias" of a 0-MAC output for pc_rq_prepare's checks. */
        const int32_t bound = 2 * ((int32_t)255 << ls) + 2;
        fast = add_in_prepare(&t1, p->input1_offset, ls, p->input1_multiplier,
                              p->input1_shift) &
               add_in_prepare(&t2, p->input2_offset, ls, p->input2_multiplier,
                              p->input2_shift) &
               pc_rq_prepare(&r, bound, p->output_multiplier, p->output_shift,
                             p->output_offset, 0);
    }
    if (fast) {
        /* e == 0 (the input with the larger scale usually has shift 0) has no rounding term:
         * one specialised loop per case keeps the inner loop free of tests. */
        if (t1.e > 0 && t2.e > 0) {
            done = add_fast(p, input1, input2, output, &t1, &t2, &r, 1, 1);
        } else if (t1.e > 0) {
            done = add_fast(p, input1, input2, output, &t1, &t2, &r, 1, 0);
        } else if (t2.e > 0) {
            done = add_fast(p, input1, input2, output, &t1, &t2, &r, 0, 1);
        } else {
            done = add_fast(p, input1, input2, output, &t1, &t2, &r, 0, 0);
        }
    }
    add_generic(p, input1, input2, output, done);
}

#else /* portable C */

void pc_add_s8(const pc_add_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output)
{
    add_generic(p, input1, input2, output, 0);
}

#endif /* PC_USE_DSP */
