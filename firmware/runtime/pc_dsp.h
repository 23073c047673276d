/* pc_dsp.h - internal: the Armv7E-M DSP instructions the optimised kernels use.
 *
 * PC_USE_DSP is 1 when the kernels take the SIMD path:
 *   - on a core with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4/M7/M33/M55), unless
 *     -DPC_PORTABLE forces plain C (to compare both on the same chip);
 *   - with -DPC_DSP_EMULATE on any host, where each instruction is a small C function, so the
 *     DSP algorithms run under AddressSanitizer / UBSan on a PC.
 * Values are packed as on the chip: "int16x2" is two int16 lanes in a uint32 (lane 0 = bits
 * 0..15), "int8x4" four bytes (byte 0 = lowest address, little endian).
 */
#ifndef PATCHCAM_PC_DSP_H
#define PATCHCAM_PC_DSP_H

#include <stdint.h>
#include <string.h>

#include "pc_requant.h"

#if defined(PC_DSP_EMULATE) || (defined(__ARM_FEATURE_DSP) && !defined(PC_PORTABLE))
#define PC_USE_DSP 1
#else
#define PC_USE_DSP 0
#endif

#if PC_USE_DSP

/* Unaligned little-endian loads (one LDR / LDRH on Cortex-M7). */
static inline uint32_t pc_read_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#if defined(PC_DSP_EMULATE)

static inline uint32_t pc_lane16(int32_t v) { return (uint32_t)v & 0xffffu; }

/* SXTB16: bytes 0 and 2, sign-extended to the two int16 lanes. */
static inline uint32_t pc_sxtb16(uint32_t x)
{
    return pc_lane16((int8_t)(x & 0xffu)) | (pc_lane16((int8_t)((x >> 16) & 0xffu)) << 16);
}

/* SXTB16 with ROR #8: bytes 1 and 3. */
static inline uint32_t pc_sxtb16_ror8(uint32_t x) { return pc_sxtb16((x >> 8) | (x << 24)); }

/* SXTAB16: a's lanes + sign-extended bytes 0 and 2 of x (each lane modulo 2^16). */
static inline uint32_t pc_sxtab16(uint32_t a, uint32_t x)
{
    const uint32_t e = pc_sxtb16(x);
    return ((a + e) & 0xffffu) | (((a >> 16) + (e >> 16)) << 16);
}

static inline uint32_t pc_sxtab16_ror8(uint32_t a, uint32_t x)
{
    return pc_sxtab16(a, (x >> 8) | (x << 24));
}

static inline int32_t pc_lo16(uint32_t x) { return (int16_t)(x & 0xffffu); }
static inline int32_t pc_hi16(uint32_t x) { return (int16_t)(x >> 16); }

/* SMLAD: acc + x.lo * y.lo + x.hi * y.hi (wrapping like the instruction). */
static inline int32_t pc_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    const uint32_t s = (uint32_t)acc + (uint32_t)(pc_lo16(x) * pc_lo16(y)) +
                       (uint32_t)(pc_hi16(x) * pc_hi16(y));
    return (int32_t)s;
}

/* SMLABB / SMLATT: acc + bottom * bottom, acc + top * top. */
static inline int32_t pc_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(pc_lo16(x) * pc_lo16(y)));
}

static inline int32_t pc_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(pc_hi16(x) * pc_hi16(y)));
}

/* SMMULR: the top word of a * b, rounded: (a * b + 2^31) >> 32. */
static inline int32_t pc_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 31)) >> 32);
}

#else /* real Arm DSP instructions */

#include <arm_acle.h>

static inline uint32_t pc_sxtb16(uint32_t x) { return (uint32_t)__sxtb16((int8x4_t)x); }

static inline uint32_t pc_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline uint32_t pc_sxtab16(uint32_t a, uint32_t x)
{
    return (uint32_t)__sxtab16((int16x2_t)a, (int8x4_t)x);
}

static inline uint32_t pc_sxtab16_ror8(uint32_t a, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

static inline int32_t pc_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlad((int16x2_t)x, (int16x2_t)y, acc);
}

static inline int32_t pc_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlabb((int32_t)x, (int32_t)y, acc);
}

static inline int32_t pc_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlatt((int32_t)x, (int32_t)y, acc);
}

static inline int32_t pc_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

#endif /* PC_DSP_EMULATE */

/* An int16x2 with both lanes = v (for SXTAB16's offset operand). */
static inline uint32_t pc_dup16(int32_t v)
{
    const uint32_t lane = (uint32_t)v & 0xffffu;
    return lane | (lane << 16);
}

/* pc_requantize_s8 (pc_requant.h) in about a dozen instructions, bit-exact:
 * - SaturatingRoundingDoublingHighMul(x, m) = floor((x * m + 2^30) / 2^31)
 *   = floor((2x * m + 2^31) / 2^32) = SMMULR(2x, m), when |x| < 2^30 (then 2x fits);
 * - then |h| <= 2^30, so RoundingDivideByPOT(h, e) = (h + 2^(e-1) - [h < 0]) >> e cannot
 *   overflow (e >= 1; e = 0 is h itself).
 * Accumulators outside +-2^30 (never seen in practice) take the generic route. */
static inline int8_t pc_requantize_s8_dsp(int32_t acc, int32_t multiplier, int32_t shift,
                                          int32_t output_offset, int32_t act_min,
                                          int32_t act_max)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const uint32_t x = (uint32_t)acc << left;
    int32_t v;
    if ((int32_t)((x << 1) ^ x) < 0) {
        return pc_requantize_s8(acc, multiplier, shift, output_offset, act_min, act_max);
    }
    v = pc_smmulr((int32_t)(x << 1), multiplier);
    if (right > 0) {
        v = (v + (int32_t)(1u << (right - 1)) + (v >> 31)) >> right;
    }
    v += output_offset;
    v = v < act_min ? act_min : v;
    v = v > act_max ? act_max : v;
    return (int8_t)v;
}

#endif /* PC_USE_DSP */

/* The requantisation the kernels call: the DSP form where available, else the generic one. */
#if PC_USE_DSP
#define PC_REQUANTIZE_S8 pc_requantize_s8_dsp
#else
#define PC_REQUANTIZE_S8 pc_requantize_s8
#endif

#endif /* PATCHCAM_PC_DSP_H */
