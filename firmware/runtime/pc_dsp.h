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

/* For the small helpers of hot loops: gcc -O2 otherwise sometimes calls them out of line,
 * passing accumulators through memory. */
#if defined(__GNUC__) || defined(__clang__)
#define PC_INLINE static inline __attribute__((always_inline))
#else
#define PC_INLINE static inline
#endif

/* For hot loops kept in a function of their own: inlined into a big caller they lose
 * registers to its variables and spill accumulators. */
#if defined(__GNUC__) || defined(__clang__)
#define PC_NOINLINE static __attribute__((noinline))
#else
#define PC_NOINLINE static
#endif

/* A compiler-only memory barrier (no instruction): loads after it are not merged with loads
 * before it. Used where gcc would otherwise keep a whole block's loaded inputs live across a
 * second pass over them and spill them. */
#if defined(__GNUC__) || defined(__clang__)
#define PC_BARRIER() __asm__ __volatile__("" ::: "memory")
#else
#define PC_BARRIER() ((void)0)
#endif

/* Asks gcc to unroll the next loop n times (a loop with a constant trip count: completely). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define PC_STR_(x) #x
#define PC_UNROLL(n) _Pragma(PC_STR_(GCC unroll n))
#else
#define PC_UNROLL(n)
#endif

/* Unaligned little-endian loads (one LDR / LDRH on Cortex-M7). */
static inline uint32_t pc_read_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* int16 lanes in plain C (the stand-ins, and odd tails outside the SIMD loops). */
static inline uint32_t pc_lane16(int32_t v) { return (uint32_t)v & 0xffffu; }
static inline int32_t pc_lo16(uint32_t x) { return (int16_t)(x & 0xffffu); }
static inline int32_t pc_hi16(uint32_t x) { return (int16_t)(x >> 16); }

#if defined(PC_DSP_EMULATE)

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


/* SMLAD: acc + x.lo * y.lo + x.hi * y.hi (wrapping like the instruction). */
static inline int32_t pc_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    const uint32_t s = (uint32_t)acc + (uint32_t)(pc_lo16(x) * pc_lo16(y)) +
                       (uint32_t)(pc_hi16(x) * pc_hi16(y));
    return (int32_t)s;
}

/* SMLADX: acc + x.lo * y.hi + x.hi * y.lo, y's lanes exchanged (wrapping likewise). */
static inline int32_t pc_smladx(uint32_t x, uint32_t y, int32_t acc)
{
    const uint32_t s = (uint32_t)acc + (uint32_t)(pc_lo16(x) * pc_hi16(y)) +
                       (uint32_t)(pc_hi16(x) * pc_lo16(y));
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

/* SMLATB / SMLABT: acc + top of x * bottom of y, acc + bottom of x * top of y. */
static inline int32_t pc_smlatb(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(pc_hi16(x) * pc_lo16(y)));
}

static inline int32_t pc_smlabt(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(pc_lo16(x) * pc_hi16(y)));
}

/* SMMULR: the top word of a * b, rounded: (a * b + 2^31) >> 32. */
static inline int32_t pc_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 31)) >> 32);
}

/* SMMLAR: acc + the top word of a * b, rounded: (acc * 2^32 + a * b + 2^31) >> 32, computed
 * modulo 2^64 like the instruction. */
static inline int32_t pc_smmlar(int32_t a, int32_t b, int32_t acc)
{
    const uint64_t s = ((uint64_t)(uint32_t)acc << 32) + (uint64_t)((int64_t)a * b) +
                       0x80000000u;
    return (int32_t)(uint32_t)(s >> 32);
}

/* SSAT #8: v saturated to [-128, 127]. */
static inline int32_t pc_ssat8(int32_t v) { return v < -128 ? -128 : v > 127 ? 127 : v; }

/* Bytewise signed max / min of two int8x4 (SSUB8 + SEL on the chip). */
static inline uint32_t pc_bytewise(uint32_t a, uint32_t b, int want_max)
{
    uint32_t r = 0;
    for (int i = 0; i < 32; i += 8) {
        const int8_t x = (int8_t)((a >> i) & 0xffu);
        const int8_t y = (int8_t)((b >> i) & 0xffu);
        const int8_t m = (x >= y) == (want_max != 0) ? x : y;
        r |= (uint32_t)(uint8_t)m << i;
    }
    return r;
}

static inline uint32_t pc_max_s8x4(uint32_t a, uint32_t b) { return pc_bytewise(a, b, 1); }
static inline uint32_t pc_min_s8x4(uint32_t a, uint32_t b) { return pc_bytewise(a, b, 0); }

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

static inline int32_t pc_smladx(uint32_t x, uint32_t y, int32_t acc)
{
    return __smladx((int16x2_t)x, (int16x2_t)y, acc);
}

static inline int32_t pc_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlabb((int32_t)x, (int32_t)y, acc);
}

static inline int32_t pc_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlatt((int32_t)x, (int32_t)y, acc);
}

static inline int32_t pc_smlatb(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlatb((int32_t)x, (int32_t)y, acc);
}

static inline int32_t pc_smlabt(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlabt((int32_t)x, (int32_t)y, acc);
}

static inline int32_t pc_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline int32_t pc_smmlar(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

static inline int32_t pc_ssat8(int32_t v) { return __ssat(v, 8); }

/* SEL picks bytes by the GE flags the SSUB8 just before it set; one asm statement keeps the
 * pair together (the compiler does not track GE). */
static inline uint32_t pc_max_s8x4(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b));
    return r;
}

static inline uint32_t pc_min_s8x4(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r"(r) : "r"(a), "r"(b));
    return r;
}

#endif /* PC_DSP_EMULATE */

/* Two consecutive words of a word-aligned buffer, the pointer then advanced past them: one
 * LDRD with post-increment. gcc loads such pairs with two LDR and keeps separate pointer
 * updates, which in the pointwise kernels' inner loop cost as much as the MACs' extension. */
PC_INLINE void pc_load2_inc(const uint32_t **p, uint32_t *x, uint32_t *y)
{
#if defined(PC_DSP_EMULATE)
    *x = (*p)[0];
    *y = (*p)[1];
    *p += 2;
#else
    __asm__("ldrd %0, %1, [%2], #8"
            : "=&r"(*x), "=&r"(*y), "+r"(*p)
            : "m"(*(const uint32_t(*)[2]) * p));
#endif
}

/* x and y into two consecutive words of a word-aligned buffer, the pointer then advanced
 * past them: one STRD with post-increment (gcc stores such pairs with two STR). */
PC_INLINE void pc_store2_inc(uint32_t **p, uint32_t x, uint32_t y)
{
#if defined(PC_DSP_EMULATE)
    (*p)[0] = x;
    (*p)[1] = y;
    *p += 2;
#else
    __asm__("strd %2, %3, [%0], #8"
            : "+r"(*p), "=m"(*(uint32_t(*)[2]) * p)
            : "r"(x), "r"(y));
#endif
}

/* Words i and i + 1 of a word-aligned buffer (i a constant below 256): one LDRD with an
 * immediate offset, where gcc would load the pair with two LDR. */
#if defined(PC_DSP_EMULATE)
#define pc_load2_at(p, i, x, y) (*(x) = (p)[i], *(y) = (p)[(i) + 1])
#else
#define pc_load2_at(p, i, x, y)                                                              \
    __asm__("ldrd %0, %1, [%2, #%c3]"                                                        \
            : "=&r"(*(x)), "=&r"(*(y))                                                       \
            : "r"(p), "n"(4 * (i)), "m"(*(const uint32_t(*)[(i) + 2])(p)))
#endif

/* A (possibly unaligned) word, the pointer then advanced past it: one LDR with
 * post-increment. */
PC_INLINE uint32_t pc_load_s8x4_inc(const int8_t **p)
{
    uint32_t v;
#if defined(PC_DSP_EMULATE)
    v = pc_read_u32(*p);
    *p += 4;
#else
    __asm__("ldr %0, [%1], #4" : "=&r"(v), "+r"(*p) : "m"(*(const int8_t(*)[4]) * p));
#endif
    return v;
}

/* The low bytes of v to p[0] and of u to p[off], then the pointer advanced by one: two STRB
 * (the second with post-increment). Written out because gcc otherwise keeps one pointer per
 * destination (four in the pointwise kernel) and spills them. */
PC_INLINE void pc_store2_s8_inc(int8_t **p, int32_t off, int32_t v, int32_t u)
{
#if defined(PC_DSP_EMULATE)
    (*p)[0] = (int8_t)v;
    (*p)[off] = (int8_t)u;
    *p += 1;
#else
    __asm__ __volatile__("strb %[u], [%[p], %[off]]\n\tstrb %[v], [%[p]], #1"
                         : [p] "+r"(*p)
                         : [off] "r"(off), [v] "r"(v), [u] "r"(u)
                         : "memory");
#endif
}

/* lo and hi as the two int16 lanes (PKHBT: one instruction; the C form takes two). */
static inline uint32_t pc_pack16x2(int32_t lo, int32_t hi)
{
#if defined(PC_DSP_EMULATE)
    return pc_lane16(lo) | (pc_lane16(hi) << 16);
#else
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
#endif
}

/* The top lanes of lo and hi as the two int16 lanes (PKHTB). */
static inline uint32_t pc_pack16x2_top(uint32_t lo, uint32_t hi)
{
#if defined(PC_DSP_EMULATE)
    return (lo >> 16) | (hi & 0xffff0000u);
#else
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(hi), "r"(lo));
    return r;
#endif
}

/* An int16x2 with both lanes = v (for SXTAB16's offset operand). */
static inline uint32_t pc_dup16(int32_t v)
{
    const uint32_t lane = (uint32_t)v & 0xffffu;
    return lane | (lane << 16);
}

/* Four values in [-128, 127] as an int8x4 (a = byte 0): three BFI on the chip (the compiler
 * makes 8 instructions of the C form). */
static inline uint32_t pc_pack_s8x4(int32_t a, int32_t b, int32_t c, int32_t d)
{
#if defined(PC_DSP_EMULATE)
    return ((uint32_t)a & 0xffu) | (((uint32_t)b & 0xffu) << 8) |
           (((uint32_t)c & 0xffu) << 16) | ((uint32_t)d << 24);
#else
    uint32_t r = (uint32_t)a;
    __asm__("bfi %0, %1, #8, #8\n\tbfi %0, %2, #16, #8\n\tbfi %0, %3, #24, #8"
            : "+&r"(r) : "r"(b), "r"(c), "r"(d));
    return r;
#endif
}

/* An int8x4 with all four bytes = v. */
static inline uint32_t pc_dup8(int32_t v) { return ((uint32_t)v & 0xffu) * 0x01010101u; }


/* ---- requantisation with per-channel constants prepared once per layer ----
 *
 * pc_requantize_s8 needs ~a dozen instructions and a handful of branches per output, which
 * dominates layers with few MACs per output (pointwise convs with 8..32 input channels,
 * depthwise 3x3). The kernels therefore prepare each channel's constants once (pc_rq_prepare)
 * and requantise with pc_rq_fast: LSL, ADD, SMMLAR, ASR, SSAT (5 instructions); the
 * act_min / act_max clamp is then done four outputs at a time on the packed bytes.
 *
 * Why it is exact (acc -> x = acc << left, e = right shift >= 1, o = output offset):
 *   h = SaturatingRoundingDoublingHighMul(x, m) = SMMULR(2x, m) while |x| < 2^30;
 *   RoundingDivideByPOT(h, e) + o = (h + 2^(e-1) - [h < 0] + o * 2^e) >> e.
 * [h < 0] may be replaced by [x < 0]: they differ only when h == 0, and then both give
 * (2^(e-1) - 1 or 2^(e-1)) >> e = 0. So with rnd = 2^(e-1) + o * 2^e the result is
 *   SMMLAR(2x, m, rnd - [x < 0]) >> e     (SMMLAR adds its accumulator to the rounded top word).
 * The bounds that make this safe are checked per channel in pc_rq_prepare: |acc| can reach at
 * most |bias| + K * 255 * 128 (K MACs per output), and that shifted left must stay < 2^30;
 * 1 <= e <= 22 keeps |h + rnd| < 2^31. A channel outside them ("not fast", in practice never)
 * makes its caller use the generic pc_requantize_s8_dsp for the whole chunk. */
typedef struct {
    int32_t lsh; /* left shift + 1 (the doubling of SMMULR(2x, m)) */
    int32_t rnd; /* 2^(rsh-1) + output_offset * 2^rsh */
    int32_t mult;
    int32_t rsh; /* right shift, >= 1 when fast */
    int32_t bias;
    int32_t fast;
    int32_t bias2; /* 2 * bias: where kernels double the weights (pc_rq_fast_x2) */
} pc_rq_t;

/* Channels whose constants a kernel prepares at a time (on the stack: 28 bytes each). */
#define PC_RQ_CHUNK 64

/* Prepare one channel for outputs of k MACs; returns r->fast. */
static inline int32_t pc_rq_prepare(pc_rq_t *r, int32_t bias, int32_t mult, int32_t shift,
                                    int32_t output_offset, int32_t k)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int64_t abs_bias = bias < 0 ? -(int64_t)bias : (int64_t)bias;
    const int64_t bound = (abs_bias + (int64_t)k * 255 * 128) * ((int64_t)1 << left);
    r->bias = bias;
    r->bias2 = (int32_t)((uint32_t)bias << 1); /* fits when fast (|bias| < 2^30) */
    r->mult = mult;
    r->lsh = left + 1;
    r->rsh = right;
    r->fast = right >= 1 && right <= 22 && bound < ((int64_t)1 << 30);
    r->rnd = r->fast ? (int32_t)(1 << (right - 1)) + output_offset * (int32_t)(1 << right) : 0;
    return r->fast;
}

/* The fast requantisation of an accumulator already shifted left by lsh (x2), from a
 * channel's constants: for loops that keep mult, rnd and rsh in registers. */
PC_INLINE int32_t pc_rq_shifted(int32_t x2, int32_t mult, int32_t rnd, int32_t rsh)
{
    return pc_ssat8(pc_smmlar(x2, mult, rnd + (x2 >> 31)) >> rsh);
}

#if !defined(PC_DSP_EMULATE)
/* pc_rq_shifted as assembly text, for the kernels written in assembly: the register x2 (the
 * doubled accumulator) requantised in place; tmp may be rnd's register where rnd is not
 * needed again. */
#define PC_ASM_RQ(x2, mult, rnd, rsh, tmp)                                                     \
    "add " tmp ", " rnd ", " x2 ", asr #31\n\t"                                                 \
    "smmlar " x2 ", " x2 ", " mult ", " tmp "\n\t"                                              \
    "asr " x2 ", " x2 ", " rsh "\n\t"                                                          \
    "ssat " x2 ", #8, " x2 "\n\t"
#endif

/* acc -> requantised value + output offset, saturated to int8 (before act_min / act_max). */
PC_INLINE int32_t pc_rq_fast(int32_t acc, const pc_rq_t *r)
{
    return pc_rq_shifted((int32_t)((uint32_t)acc << r->lsh), r->mult, r->rnd, r->rsh);
}

/* pc_rq_fast of an accumulator that is already doubled (2 * acc, from doubled weights and
 * bias): a fast channel's lsh is always 1, so this skips the shift. */
PC_INLINE int32_t pc_rq_fast_x2(int32_t x2, const pc_rq_t *r)
{
    return pc_rq_shifted(x2, r->mult, r->rnd, r->rsh);
}

/* Both int16 lanes doubled (|lane| <= 128: no overflow): SADD16 of x and itself (in C, bit
 * 16 is the low lane's carry). */
static inline uint32_t pc_double16(uint32_t x)
{
#if defined(PC_DSP_EMULATE)
    return (x << 1) & 0xfffeffffu;
#else
    uint32_t r;
    __asm__("sadd16 %0, %1, %1" : "=r"(r) : "r"(x));
    return r;
#endif
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
