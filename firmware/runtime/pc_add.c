/* pc_add.c - elementwise add, int8 (TFLite's scheme: left shift, rescale, sum, rescale).
 *
 * DSP path: the generic form costs ~100 instructions per element (three
 * MultiplyByQuantizedMultiplier with their branches). With the layer's constants prepared once
 * it is ~26: each input term is ADD (offset and left shift in one), ADD (rounding - sign),
 * SMMLAR, ASR (the fast requantisation of pc_dsp.h with output offset 0), the sum is
 * requantised by pc_rq_fast, and act_min / act_max are applied four bytes at a time. A term
 * depends on its input byte alone, so large adds first tabulate both inputs' 256 terms and
 * then spend ~11 instructions an element (add_table).
 */
#include "pc_kernels.h"

#include "pc_dsp.h"
#include "pc_requant.h"

static void add_generic(const pc_add_params_t *p, const int8_t *input1, const int8_t *input2,
                        int8_t *output, int32_t begin, int32_t n)
{
    for (int32_t i = begin; i < n; i++) {
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

/* A run of rows: row j of each operand starts `step` bytes after row j - 1 (the tiles of a
 * patch schedule; a whole tensor is one row). */
typedef struct {
    const int8_t *in1, *in2;
    int8_t *out;
    int32_t rows, step1, step2, step_out;
} add_rows_t;

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
    const int32_t n = p->size; /* a local: the stores below may alias *p */
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
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

/* Adds of at least this many elements take add_table: filling its two tables costs about
 * 3,400 instructions, and each element then 11 (where act_min / act_max clamp, 13) instead
 * of add_fast's 26 (measured with `make bench BENCH_ARGS=--per-op`; the break-even is near
 * 230; 128 measured slower on vww's cache tiles). */
#define ADD_TABLE_MIN 256

/* A run of 128 table entries from x2 = (x << ls1) + c of its first x on: x2 grows by d =
 * 2^ls1 from one x to the next, so an entry is ADD, SMMLAR, ASR, LSL and STR (add_term
 * recomputed from x took 14 instructions an entry, measured). The last step's x2, of x = 128,
 * is below (128 + 255) << 22 < 2^31: no overflow. */
PC_INLINE void term_run(int32_t *dst, int32_t x2, int32_t d, const add_in_t *t, int32_t lsh,
                        int rounds)
{
    const int32_t m = t->m, rnd = t->rnd, e = t->e; /* locals: the stores may alias *t */
    PC_UNROLL(4)
    for (int32_t i = 0; i < 128; i++, x2 += d) {
        const int32_t h = pc_smmlar(x2, m, rounds ? rnd + (x2 >> 31) : 0) >> e;
        dst[i] = (int32_t)((uint32_t)h << lsh);
    }
}

/* One input's term (add_term) for each of the 256 int8 values, indexed by the byte read as
 * unsigned and shifted left by the output requantisation's r->lsh, so the sum of two entries
 * is pc_rq_fast's x2 of the sum of the two terms. No overflow: each |term| is below
 * pc_add_s8's bound, and pc_rq_prepare checked bound << lsh < 2^31. */
static void term_table(int32_t *table, const add_in_t *t, int32_t ls1, int32_t lsh)
{
    const int32_t d = (int32_t)1 << ls1;
    const int32_t x2_0 = t->c;                                  /* x = 0 at [0] */
    const int32_t x2_neg = (int32_t)((uint32_t)-128 << ls1) + t->c; /* x = -128 at [128] */
    if (t->e > 0) { /* add_term's rounding as a constant: one loop per case */
        term_run(table, x2_0, d, t, lsh, 1);
        term_run(table + 128, x2_neg, d, t, lsh, 1);
    } else {
        term_run(table, x2_0, d, t, lsh, 0);
        term_run(table + 128, x2_neg, d, t, lsh, 0);
    }
}

/* Each row's first n elements (a multiple of 4) from the two term tables, clamped to act_min
 * / act_max on the packed bytes where `clamp` (a constant: without it, the loop keeps both
 * tables' addresses in registers). A word's eight inputs are read before it is stored, so
 * output may be an input (in place). */
PC_INLINE void add_table_rows(const pc_add_params_t *p, const add_rows_t *rows,
                              const int32_t *tab1, const int32_t *tab2, const pc_rq_t *r,
                              int32_t n, int clamp)
{
    const int32_t mult = r->mult;
    const int32_t rnd = r->rnd;
    const int32_t rsh = r->rsh;
    const uint32_t lo4 = pc_dup8(p->act_min);
    const uint32_t hi4 = pc_dup8(p->act_max);
    for (int32_t j = 0; j < rows->rows; j++) {
        const uint8_t *in1 = (const uint8_t *)rows->in1 + j * rows->step1;
        const uint8_t *in2 = (const uint8_t *)rows->in2 + j * rows->step2;
        int8_t *out = rows->out + j * rows->step_out;
        const uint8_t *const end = in1 + n;
        for (; in1 != end; in1 += 4, in2 += 4, out += 4) {
            uint32_t w = pc_pack_s8x4(
                pc_rq_shifted(tab1[in1[0]] + tab2[in2[0]], mult, rnd, rsh),
                pc_rq_shifted(tab1[in1[1]] + tab2[in2[1]], mult, rnd, rsh),
                pc_rq_shifted(tab1[in1[2]] + tab2[in2[2]], mult, rnd, rsh),
                pc_rq_shifted(tab1[in1[3]] + tab2[in2[3]], mult, rnd, rsh));
            if (clamp) {
                w = pc_min_s8x4(pc_max_s8x4(w, lo4), hi4);
            }
            memcpy(out, &w, 4);
        }
    }
}

/* add_table_rows for each `clamp`; not inlined into add_table, whose tables then stay in
 * registers instead of being recomputed from the stack pointer at each load. */
PC_NOINLINE void add_table_clamped(const pc_add_params_t *p, const add_rows_t *rows,
                                   const int32_t *tab1, const int32_t *tab2, const pc_rq_t *r,
                                   int32_t n)
{
    add_table_rows(p, rows, tab1, tab2, r, n, 1);
}

PC_NOINLINE void add_table_plain(const pc_add_params_t *p, const add_rows_t *rows,
                                 const int32_t *tab1, const int32_t *tab2, const pc_rq_t *r,
                                 int32_t n)
{
    add_table_rows(p, rows, tab1, tab2, r, n, 0);
}

/* add_fast with both terms looked up: two byte loads, two table loads, one ADD and the
 * requantisation per element. Tables: 2 kB on the stack, only during this call, filled once
 * for all rows. Returns the elements done in each row. */
PC_NOINLINE int32_t add_table(const pc_add_params_t *p, const add_rows_t *rows,
                              const add_in_t *t1, const add_in_t *t2, const pc_rq_t *r)
{
    int32_t tab1[256];
    int32_t tab2[256];
    const int32_t n = p->size & ~3;
    term_table(tab1, t1, p->left_shift + 1, r->lsh);
    term_table(tab2, t2, p->left_shift + 1, r->lsh);
    if (p->act_min > -128 || p->act_max < 127) {
        add_table_clamped(p, rows, tab1, tab2, r, n);
    } else { /* SSAT has clamped */
        add_table_plain(p, rows, tab1, tab2, r, n);
    }
    return n;
}

/* add_fast on every row; returns the elements done in each row. */
static int32_t add_fast_rows(const pc_add_params_t *p, const add_rows_t *rows,
                             const add_in_t *t1, const add_in_t *t2, const pc_rq_t *r)
{
    int32_t done = 0;
    for (int32_t j = 0; j < rows->rows; j++) {
        const int8_t *in1 = rows->in1 + j * rows->step1;
        const int8_t *in2 = rows->in2 + j * rows->step2;
        int8_t *out = rows->out + j * rows->step_out;
        /* e == 0 (the input with the larger scale usually has shift 0) has no rounding term:
         * one specialised loop per case keeps the inner loop free of tests. */
        if (t1->e > 0 && t2->e > 0) {
            done = add_fast(p, in1, in2, out, t1, t2, r, 1, 1);
        } else if (t1->e > 0) {
            done = add_fast(p, in1, in2, out, t1, t2, r, 1, 0);
        } else if (t2->e > 0) {
            done = add_fast(p, in1, in2, out, t1, t2, r, 0, 1);
        } else {
            done = add_fast(p, in1, in2, out, t1, t2, r, 0, 0);
        }
    }
    return done;
}

static void add_rows(const pc_add_params_t *p, const add_rows_t *rows)
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
    if (fast && rows->rows * p->size >= ADD_TABLE_MIN) {
        done = add_table(p, rows, &t1, &t2, &r);
    } else if (fast) {
        done = add_fast_rows(p, rows, &t1, &t2, &r);
    }
    for (int32_t j = 0; j < rows->rows; j++) { /* what the fast loops left of each row */
        add_generic(p, rows->in1 + j * rows->step1, rows->in2 + j * rows->step2,
                    rows->out + j * rows->step_out, done, p->size);
    }
}

#else /* portable C */

static void add_rows(const pc_add_params_t *p, const add_rows_t *rows)
{
    for (int32_t j = 0; j < rows->rows; j++) {
        add_generic(p, rows->in1 + j * rows->step1, rows->in2 + j * rows->step2,
                    rows->out + j * rows->step_out, 0, p->size);
    }
}

#endif /* PC_USE_DSP */

void pc_add_s8(const pc_add_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output)
{
    const add_rows_t one = {input1, input2, output, 1, 0, 0, 0};
    add_rows(p, &one);
}

void pc_add_s8_rows(const pc_add_params_t *p, int32_t rows, const int8_t *input1,
                    int32_t step1, const int8_t *input2, int32_t step2, int8_t *output,
                    int32_t step_out)
{
    const add_rows_t r = {input1, input2, output, rows, step1, step2, step_out};
    add_rows(p, &r);
}
