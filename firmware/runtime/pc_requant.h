/* pc_requant.h - TFLite's fixed-point requantisation, exactly (docs/design.md §4.1).
 *
 * The same arithmetic as patchcam/compiler/qmath.py and TFLite's MultiplyByQuantizedMultiplier
 * (double rounding: gemmlowp's SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT).
 * Right shifts of negative values are arithmetic (true of every compiler we target).
 */
#ifndef PATCHCAM_PC_REQUANT_H
#define PATCHCAM_PC_REQUANT_H

#include <stdint.h>

/* gemmlowp's SaturatingRoundingDoublingHighMul: (a * b * 2) / 2^32, rounded half away from zero.
 *
 * gemmlowp adds a sign-dependent nudge (2^30 or 1 - 2^30) and divides by 2^31 truncating toward
 * zero. For ab < 0, trunc((ab + 1 - 2^30) / 2^31) = ceil(...) = floor((ab + 2^30) / 2^31), the
 * same expression as for ab >= 0, so one multiply-accumulate and one shift give the exact
 * result (the form CMSIS-NN uses; SMLAL + two shifts on Cortex-M). */
static inline int32_t pc_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 30)) >> 31);
}

/* gemmlowp's RoundingDivideByPOT: x / 2^exponent, rounded half away from zero; 0 <= exponent
 * <= 31. */
static inline int32_t pc_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite's MultiplyByQuantizedMultiplier: x * multiplier * 2^(shift - 31), shift in [-31, 30].
 * The left shift (shift > 0) must not overflow int32, as in TFLite. */
static inline int32_t pc_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                          int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t scaled = (int32_t)((uint32_t)x << left);
    return pc_rounding_divide_by_pot(pc_saturating_rounding_doubling_high_mul(scaled, multiplier),
                                     right);
}

/* Accumulator -> int8 output: requantise, add the output zero point, clamp. */
static inline int8_t pc_requantize_s8(int32_t acc, int32_t multiplier, int32_t shift,
                                      int32_t output_offset, int32_t act_min, int32_t act_max)
{
    int32_t v = pc_multiply_by_quantized_multiplier(acc, multiplier, shift) + output_offset;
    v = v < act_min ? act_min : v;
    v = v > act_max ? act_max : v;
    return (int8_t)v;
}

#endif /* PATCHCAM_PC_REQUANT_H */
