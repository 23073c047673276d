/* pc_depthwise.c - depthwise conv (channel multiplier 1), int8, any kernel and stride.
 *
 * No scratch (only stack buffers): the inner loops never test for padding, because taps
 * outside the image are either skipped by clipping the kernel window or read from a padded
 * copy whose padding adds exactly 0.
 *
 * DSP path, five algorithms (which one a layer takes: covered_pays, planes_pay,
 * padded_pays, then rows_fit):
 * - four channels at a time from a widened copy of their plane, each window clipped:
 *   kernels taller or wider than a small map (covered_pays; described at covered_groups'
 *   section);
 * - four channels widened together into channel planes, then one channel at a time, two or
 *   four outputs a step: 3x3 and 5x5, stride 1 or 2, on maps and patch tiles up to 78
 *   (3x3) or 52 (5x5) wide, 3x3 with stride 2 on output rows of 8+ (planes_pay;
 *   described at planes_groups' section);
 * - four channels at a time from a padded copy of their plane: the other 3x3 maps and
 *   patch tiles up to 18x18, and small maps whose border holds a third of the outputs
 *   (padded_pays; described at padded_groups' section);
 * - widened rows, one channel at a time: maps of 4+ rows and 64+ outputs a channel, but for
 *   3x3 with stride 2 (rows_fit; described at rows_layer's section);
 * - four channels at a time on the tensor itself: the rest (3x3 with stride 2 on maps too
 *   wide for the planes, a patch stage's larger tiles and single rows).
 *
 * Four channels at a time, in an outer loop, so everything that belongs to those
 * channels is done once per layer rather than once per pixel: their kh*kw filter words are
 * widened to int16 pairs into a stack buffer (SXTB16: channels 0, 2 and 1, 3) and their
 * requantisation constants prepared (pc_rq_t, pc_dsp.h). Per tap and pixel that leaves one
 * input load, two SXTAB16 (which also add the input offset), one LDRD of the widened weights
 * and four SMLABB / SMLATT: 8 instructions for 4 MACs. The four results are requantised,
 * packed, clamped (only when act_min / act_max are narrower than int8) and stored as one
 * word. Pixels whose window lies inside the image (all but
 * a border of about kernel/2) take a path without clipping: for 3x3 (stride 1 or 2) two
 * neighbouring pixels at a time, which share input loads, weight words and requantisation
 * constants; for 5x5 / 7x7 with each kernel row unrolled.
 */
#include "pc_kernels.h"

#include <stddef.h>

#include "pc_dsp.h"
#include "pc_requant.h"

#if PC_USE_DSP

/* Channels [c_begin, C) of the layer in plain C: those left over after the groups of four,
 * or all of them for kernels over DW_MAX_TAPS taps. */
static void depthwise_scalar(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                             const int8_t *input, const int8_t *filter, const int32_t *bias,
                             int8_t *output, int32_t c_begin)
{
    const int32_t ch = p->input.c;
    const int32_t kh = p->kernel_h;
    const int32_t kw = p->kernel_w;
    const int32_t row = p->input.w * ch; /* bytes per input row */
    const int32_t off = p->input_offset;
    const int32_t out_off = p->output_offset;
    const int32_t lo = p->act_min;
    const int32_t hi = p->act_max;
    const int32_t skip = (pc_output_stride(p) - p->output.w) * ch; /* a row's end */
    for (int32_t oy = 0; oy < p->output.h; oy++, output += skip) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = p->input.h - iy0 < kh ? p->input.h - iy0 : kh;
        for (int32_t ox = 0; ox < p->output.w; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t kx1 = p->input.w - ix0 < kw ? p->input.w - ix0 : kw;
            const int32_t taps_x = kx1 - kx0;
            /* first tap inside the image, for channel 0 */
            const int8_t *x_base = input + (iy0 + ky0) * row + (ix0 + kx0) * ch;
            const int8_t *w_base = filter + (ky0 * kw + kx0) * ch;
            for (int32_t c = c_begin; c < ch; c++) {
                int32_t acc = bias[c];
                const int8_t *xr = x_base + c;
                const int8_t *wr = w_base + c;
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t n = 0; n < taps_x; n++) {
                        acc += (xr[n * ch] + off) * wr[n * ch];
                    }
                    xr += row;
                    wr += kw * ch;
                }
                output[c] = PC_REQUANTIZE_S8(acc, q->multiplier[c], q->shift[c], out_off, lo, hi);
            }
            output += ch;
        }
    }
}

/* Most kernel taps (kh * kw) whose widened weights the stack buffer holds (512 bytes). */
#define DW_MAX_TAPS 64
PC_STATIC_ASSERT(DW_MAX_TAPS * 128 <= INT16_MAX, dw_weight_sums_fit_int16);

/* Everything about one group of four channels that does not change from pixel to pixel. */
typedef struct {
    uint32_t w[2 * DW_MAX_TAPS]; /* per tap: channels (0, 2) and (1, 3) as int16 pairs */
    pc_rq_t rq[4];
    int32_t bias_inside[4]; /* bias + input_offset * sum of the channel's weights */
    int32_t bias[4];        /* where each tap adds its input offset (clipped windows) */
    int32_t fast; /* all four rq are fast */
    uint32_t off2; /* input offset in both int16 lanes */
    uint32_t lo4, hi4;
    int32_t clamp; /* act_min / act_max narrower than int8 (else SSAT has clamped) */
    const int32_t *mult, *shift; /* the group's q->multiplier / q->shift (generic route) */
    int32_t out_off, lo, hi;
} group_t;

typedef struct {
    int32_t s0, s1, s2, s3;
} acc4_t;

/* Four accumulators starting from the group's biases b. */
PC_INLINE acc4_t acc4_from(const int32_t b[4])
{
    const acc4_t a = {b[0], b[1], b[2], b[3]};
    return a;
}

/* One tap of four channels: x points at channel 0 of the input pixel, w at the tap's two
 * widened weight words; SXTAB16 adds the input offset (off2) while widening. */
PC_INLINE void tap(acc4_t *a, const int8_t *x, const uint32_t *w, uint32_t off2)
{
    const uint32_t xv = pc_read_u32(x);
    const uint32_t x02 = pc_sxtab16(off2, xv);
    const uint32_t x13 = pc_sxtab16_ror8(off2, xv);
    a->s0 = pc_smlabb(x02, w[0], a->s0);
    a->s2 = pc_smlatt(x02, w[0], a->s2);
    a->s1 = pc_smlabb(x13, w[1], a->s1);
    a->s3 = pc_smlatt(x13, w[1], a->s3);
}

/* Where the inside path reads and writes (`mode`, always a constant where it is passed, so
 * each variant is compiled for its own steps): TO_OUTPUT, from the input tensor to the
 * output tensor (C bytes a pixel, both); TO_RING, from the input tensor into a row of the
 * in-place kernel's ring (4 bytes a pixel); FROM_PAD, from padded_groups' copy of a group
 * (8 bytes a pixel: its four channels already widened, pixel_pair) to the output tensor. */
#define TO_OUTPUT 0
#define TO_RING 1
#define FROM_PAD 2
#define OUT_STEP(mode, ch) ((mode) == TO_RING ? PC_DEPTHWISE_IN_PLACE_GROUP : (ch))
#define PAD_STEP 8 /* bytes a pixel in padded_groups' copy: one group as two int16 pairs */
#define IN_STEP(mode, ch) ((mode) == FROM_PAD ? PAD_STEP : (ch))

/* Channels (odd, odd + 2) of the input pixel at x as int16 pair: widened here from the
 * tensor's four bytes, or read as padded_groups widened them (FROM_PAD). */
PC_INLINE uint32_t pixel_pair(const int8_t *x, int odd, int mode)
{
    uint32_t v;
    if (mode == FROM_PAD) {
        return pc_read_u32(x + 4 * odd);
    }
    v = pc_read_u32(x);
    return odd ? pc_sxtb16_ror8(v) : pc_sxtb16(v);
}

/* tap without the offset, for pixels whose taps are all inside the image: there the
 * offset's share, input_offset * sum(weights), is constant and sits in group_t.bias_inside
 * (one register less in the hot loop). */
PC_INLINE void tap_raw(acc4_t *a, const int8_t *x, const uint32_t *w, int mode)
{
    const uint32_t x02 = pixel_pair(x, 0, mode);
    const uint32_t x13 = pixel_pair(x, 1, mode);
    a->s0 = pc_smlabb(x02, w[0], a->s0);
    a->s2 = pc_smlatt(x02, w[0], a->s2);
    a->s1 = pc_smlabb(x13, w[1], a->s1);
    a->s3 = pc_smlatt(x13, w[1], a->s3);
}

PC_INLINE void store4(const group_t *g, const acc4_t *a, int8_t *out)
{
    uint32_t packed;
    if (g->fast) {
        packed = pc_pack_s8x4(pc_rq_fast_x2(a->s0, &g->rq[0]), pc_rq_fast_x2(a->s1, &g->rq[1]),
                              pc_rq_fast_x2(a->s2, &g->rq[2]), pc_rq_fast_x2(a->s3, &g->rq[3]));
        if (g->clamp) {
            packed = pc_min_s8x4(pc_max_s8x4(packed, g->lo4), g->hi4);
        }
    } else {
        const int32_t s[4] = {a->s0, a->s1, a->s2, a->s3};
        int32_t v[4];
        for (int32_t i = 0; i < 4; i++) {
            v[i] = PC_REQUANTIZE_S8(s[i], g->mult[i], g->shift[i], g->out_off, g->lo, g->hi);
        }
        packed = pc_pack_s8x4(v[0], v[1], v[2], v[3]);
    }
    memcpy(out, &packed, 4);
}

/* A run of n output pixels of one row whose taps are all inside the image; x: the top-left
 * tap of the first, step: bytes between the top-left taps of neighbours (stride_w * C). */
PC_INLINE void run_inside_at(const group_t *g, const int8_t *x, int32_t step, int32_t row,
                             int32_t ch, int32_t kh, int32_t kw, int8_t *out, int32_t n,
                             int mode)
{
    const int32_t out_step = OUT_STEP(mode, ch);
    const int32_t cs = IN_STEP(mode, ch); /* bytes between input pixels */
    for (; n > 0; n--) {
        const uint32_t *w = g->w;
        const int8_t *xp = x;
        acc4_t a = acc4_from(g->bias_inside);
        if (kh == 3 && kw == 3) { /* unrolled: the weights are at fixed offsets from g */
            const int32_t cs2 = 2 * cs;
            tap_raw(&a, xp, w, mode);
            tap_raw(&a, xp + cs, w + 2, mode);
            tap_raw(&a, xp + cs2, w + 4, mode);
            xp += row;
            tap_raw(&a, xp, w + 6, mode);
            tap_raw(&a, xp + cs, w + 8, mode);
            tap_raw(&a, xp + cs2, w + 10, mode);
            xp += row;
            tap_raw(&a, xp, w + 12, mode);
            tap_raw(&a, xp + cs, w + 14, mode);
            tap_raw(&a, xp + cs2, w + 16, mode);
        } else {
            for (int32_t ky = 0; ky < kh; ky++) {
                const int8_t *xr = xp;
                for (int32_t kx = 0; kx < kw; kx++) {
                    tap_raw(&a, xr, w, mode);
                    xr += cs;
                    w += 2;
                }
                xp += row;
            }
        }
        store4(g, &a, out);
        x += step;
        out += out_step;
    }
}

/* Not inlined: in a function of its own the accumulators and pointers stay in registers. */
static void run_inside(const group_t *g, const int8_t *x, int32_t step, int32_t row,
                       int32_t ch, int32_t kh, int32_t kw, int8_t *out, int32_t n)
{
    run_inside_at(g, x, step, row, ch, kh, kw, out, n, 0);
}

static void run_inside_ring(const group_t *g, const int8_t *x, int32_t step, int32_t row,
                            int32_t ch, int32_t kh, int32_t kw, int8_t *out, int32_t n)
{
    run_inside_at(g, x, step, row, ch, kh, kw, out, n, 1);
}

static void run_inside_pad(const group_t *g, const int8_t *x, int32_t step, int32_t row,
                           int32_t ch, int32_t kh, int32_t kw, int8_t *out, int32_t n)
{
    run_inside_at(g, x, step, row, ch, kh, kw, out, n, FROM_PAD);
}

/* tap_raw of tap k of a kernel row (a constant) from padded_groups' copy: x, the row's first
 * pixel as words (PAD_STEP = 2 words a pixel); w, the row's widened weights. A macro, so k
 * stays the constant offset that pc_load2_at's LDRD takes. */
#define TAP_PAD(a, x, w, k)                                                                    \
    do {                                                                                       \
        uint32_t x02_, x13_, w02_, w13_;                                                       \
        pc_load2_at(x, 2 * (k), &x02_, &x13_);                                                 \
        pc_load2_at(w, 2 * (k), &w02_, &w13_);                                                 \
        (a).s0 = pc_smlabb(x02_, w02_, (a).s0);                                                \
        (a).s2 = pc_smlatt(x02_, w02_, (a).s2);                                                \
        (a).s1 = pc_smlabb(x13_, w13_, (a).s1);                                                \
        (a).s3 = pc_smlatt(x13_, w13_, (a).s3);                                                \
    } while (0)

/* run_inside for kw = 5 or 7 with each kernel row unrolled (no per-tap loop overhead, ~25%
 * of a tap). A function of its own: added to run_inside it costs the 3x3 copy registers. */
PC_INLINE void run_inside_wide_at(const group_t *g, const int8_t *x, int32_t step, int32_t row,
                                  int32_t ch, int32_t kh, int32_t kw, int8_t *out, int32_t n,
                                  int mode)
{
    const int32_t out_step = OUT_STEP(mode, ch);
    const int32_t cs = IN_STEP(mode, ch); /* bytes between input pixels */
    for (; n > 0; n--) {
        const uint32_t *w = g->w;
        const int8_t *xp = x;
        acc4_t a = acc4_from(g->bias_inside);
        for (int32_t ky = 0; ky < kh; ky++) {
            if (mode == FROM_PAD) { /* word pairs at constant offsets: one LDRD each */
                const uint32_t *xw = (const uint32_t *)(const void *)xp;
                TAP_PAD(a, xw, w, 0);
                TAP_PAD(a, xw, w, 1);
                TAP_PAD(a, xw, w, 2);
                TAP_PAD(a, xw, w, 3);
                TAP_PAD(a, xw, w, 4);
                if (kw == 7) {
                    TAP_PAD(a, xw, w, 5);
                    TAP_PAD(a, xw, w, 6);
                }
            } else {
                tap_raw(&a, xp, w, mode);
                tap_raw(&a, xp + cs, w + 2, mode);
                tap_raw(&a, xp + 2 * cs, w + 4, mode);
                tap_raw(&a, xp + 3 * cs, w + 6, mode);
                tap_raw(&a, xp + 4 * cs, w + 8, mode);
                if (kw == 7) {
                    tap_raw(&a, xp + 5 * cs, w + 10, mode);
                    tap_raw(&a, xp + 6 * cs, w + 12, mode);
                }
            }
            xp += row;
            w += 2 * kw;
        }
        store4(g, &a, out);
        x += step;
        out += out_step;
    }
}

PC_NOINLINE void run_inside_wide(const group_t *g, const int8_t *x, int32_t step, int32_t row,
                                 int32_t ch, int32_t kh, int32_t kw, int8_t *out, int32_t n)
{
    run_inside_wide_at(g, x, step, row, ch, kh, kw, out, n, 0);
}

PC_NOINLINE void run_inside_wide_ring(const group_t *g, const int8_t *x, int32_t step,
                                      int32_t row, int32_t ch, int32_t kh, int32_t kw,
                                      int8_t *out, int32_t n)
{
    run_inside_wide_at(g, x, step, row, ch, kh, kw, out, n, 1);
}

/* One kernel row of two neighbouring output pixels (stride 1), for the channel pair
 * (odd, odd + 2) only: the four input columns the two pixels read are loaded and widened once
 * (the middle two serve both), and each of the row's three weight words is used for both
 * pixels. a0 / a2: pixel A's accumulators of channels odd / odd + 2; b0 / b2: pixel B's. */
PC_INLINE void row_pair(int32_t *a0, int32_t *a2, int32_t *b0, int32_t *b2,
                        const int8_t **xp, int32_t ch, const uint32_t *w, int odd, int s2,
                        int mode)
{
    /* *xp walks the four columns (one register, no precomputed offsets to spill) */
    const int8_t *x = *xp;
    const uint32_t w0 = w[odd];
    const uint32_t w1 = w[2 + odd];
    const uint32_t w2 = w[4 + odd];
    uint32_t e = pixel_pair(x, odd, mode);
    x += ch;
    *a0 = pc_smlabb(e, w0, *a0);
    *a2 = pc_smlatt(e, w0, *a2);
    if (s2) {
        /* stride 2: B's columns are 2..4, so only column 2 is shared */
        e = pixel_pair(x, odd, mode);
        x += ch;
        *a0 = pc_smlabb(e, w1, *a0);
        *a2 = pc_smlatt(e, w1, *a2);
        e = pixel_pair(x, odd, mode);
        x += ch;
        *a0 = pc_smlabb(e, w2, *a0);
        *a2 = pc_smlatt(e, w2, *a2);
        *b0 = pc_smlabb(e, w0, *b0);
        *b2 = pc_smlatt(e, w0, *b2);
        e = pixel_pair(x, odd, mode);
        x += ch;
        *b0 = pc_smlabb(e, w1, *b0);
        *b2 = pc_smlatt(e, w1, *b2);
    } else {
        e = pixel_pair(x, odd, mode);
        x += ch;
        *a0 = pc_smlabb(e, w1, *a0);
        *a2 = pc_smlatt(e, w1, *a2);
        *b0 = pc_smlabb(e, w0, *b0);
        *b2 = pc_smlatt(e, w0, *b2);
        e = pixel_pair(x, odd, mode);
        x += ch;
        *a0 = pc_smlabb(e, w2, *a0);
        *a2 = pc_smlatt(e, w2, *a2);
        *b0 = pc_smlabb(e, w1, *b0);
        *b2 = pc_smlatt(e, w1, *b2);
    }
    e = pixel_pair(x, odd, mode);
    x += ch;
    *b0 = pc_smlabb(e, w2, *b0);
    *b2 = pc_smlatt(e, w2, *b2);
    *xp = x;
}

/* The 3x3 taps of channels (odd, odd + 2) for pixels A and B, requantised (before the
 * act_min / act_max clamp): va[odd], va[odd + 2], vb[odd], vb[odd + 2]. Doing the two channel
 * pairs one after the other keeps 4 accumulators live instead of 8 (8 spill on Cortex-M). */
PC_INLINE void pair_half(const group_t *g, const int8_t *x, int32_t row, int32_t ch, int odd,
                         int32_t *va, int32_t *vb, int s2, int mode)
{
    int32_t a0 = g->bias_inside[odd];
    int32_t a2 = g->bias_inside[odd + 2];
    int32_t b0 = a0;
    int32_t b2 = a2;
    const int32_t skip = row - (s2 ? 5 : 4) * ch; /* from past a row's last column to the next */
    row_pair(&a0, &a2, &b0, &b2, &x, ch, g->w, odd, s2, mode);
    x += skip;
    row_pair(&a0, &a2, &b0, &b2, &x, ch, g->w + 6, odd, s2, mode);
    x += skip;
    row_pair(&a0, &a2, &b0, &b2, &x, ch, g->w + 12, odd, s2, mode);
    va[odd] = pc_rq_fast_x2(a0, &g->rq[odd]);
    vb[odd] = pc_rq_fast_x2(b0, &g->rq[odd]);
    va[odd + 2] = pc_rq_fast_x2(a2, &g->rq[odd + 2]);
    vb[odd + 2] = pc_rq_fast_x2(b2, &g->rq[odd + 2]);
}

/* run_inside for a 3x3 kernel with stride 1, two neighbouring output pixels per step (per
 * pixel ~1.5 instead of 2 instructions per MAC, and each requantisation constant loaded once
 * for both). */
PC_INLINE void run_inside_3x3_pairs(const group_t *g, const int8_t *x, int32_t row,
                                    int32_t ch, int8_t *out, int32_t n, int s2, int clamp,
                                    int mode)
{
    const int32_t cs = IN_STEP(mode, ch); /* bytes between input pixels */
    const int32_t step = s2 ? 2 * cs : cs; /* between neighbouring pixels' first columns */
    const int32_t out_step = OUT_STEP(mode, ch);
    if (!g->fast) {
        if (mode == FROM_PAD) {
            run_inside_pad(g, x, step, row, ch, 3, 3, out, n);
        } else if (mode == TO_RING) {
            run_inside_ring(g, x, step, row, ch, 3, 3, out, n);
        } else {
            run_inside(g, x, step, row, ch, 3, 3, out, n);
        }
        return;
    }
    for (; n >= 2; n -= 2) {
        int32_t va[4], vb[4];
        uint32_t pa, pb;
        pair_half(g, x, row, cs, 0, va, vb, s2, mode);
        PC_BARRIER(); /* a second pass over the same inputs, not one with 8 accumulators */
        pair_half(g, x, row, cs, 1, va, vb, s2, mode);
        pa = pc_pack_s8x4(va[0], va[1], va[2], va[3]);
        pb = pc_pack_s8x4(vb[0], vb[1], vb[2], vb[3]);
        if (clamp) {
            pa = pc_min_s8x4(pc_max_s8x4(pa, g->lo4), g->hi4);
            pb = pc_min_s8x4(pc_max_s8x4(pb, g->lo4), g->hi4);
        }
        memcpy(out, &pa, 4);
        memcpy(out + out_step, &pb, 4);
        x += 2 * step;
        out += 2 * out_step;
    }
    if (n > 0) {
        if (mode == FROM_PAD) { /* inline: the columns' offsets are immediates here */
            run_inside_at(g, x, step, row, ch, 3, 3, out, 1, FROM_PAD);
        } else if (mode == TO_RING) {
            run_inside_ring(g, x, step, row, ch, 3, 3, out, 1);
        } else {
            run_inside(g, x, step, row, ch, 3, 3, out, 1);
        }
    }
}

/* run_inside_3x3_pairs for one stride (s2: 0 or 1) and mode, with act_min / act_max
 * clamping chosen once per call. Stride 2: the pair shares one input column per row (5 loads
 * instead of 6). The _pad variants read padded_groups' copy of a group: PAD_STEP bytes
 * between input pixels, a constant, so the columns' offsets are immediates rather than
 * registers spilled to the stack. */
#define RUN_INSIDE_3X3(name, s2, mode)                                                        \
    PC_NOINLINE void name(const group_t *g, const int8_t *x, int32_t row, int32_t ch,         \
                          int8_t *out, int32_t n)                                              \
    {                                                                                          \
        if (g->clamp) {                                                                        \
            run_inside_3x3_pairs(g, x, row, ch, out, n, s2, 1, mode);                          \
        } else {                                                                               \
            run_inside_3x3_pairs(g, x, row, ch, out, n, s2, 0, mode);                          \
        }                                                                                      \
    }

RUN_INSIDE_3X3(run_inside_3x3_s1, 0, TO_OUTPUT)
RUN_INSIDE_3X3(run_inside_3x3_s2, 1, TO_OUTPUT)
RUN_INSIDE_3X3(run_inside_3x3_s1_ring, 0, TO_RING)
RUN_INSIDE_3X3(run_inside_3x3_s2_ring, 1, TO_RING)
RUN_INSIDE_3X3(run_inside_3x3_s1_pad, 0, FROM_PAD)
RUN_INSIDE_3X3(run_inside_3x3_s2_pad, 1, FROM_PAD)

PC_NOINLINE void run_inside_wide_pad(const group_t *g, const int8_t *x, int32_t step,
                                     int32_t row, int32_t ch, int32_t kh, int32_t kw,
                                     int8_t *out, int32_t n)
{
    run_inside_wide_at(g, x, step, row, ch, kh, kw, out, n, FROM_PAD);
}

/* A pixel at the border: only the taps [ky0, ky1) x [kx0, kx1) are inside the image; x: the
 * input pixel of tap (ky0, kx0). */
static void pixel_clipped(const group_t *g, const int8_t *x, int32_t row, int32_t ch,
                          int32_t kw, int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1,
                          int8_t *out)
{
    acc4_t a = acc4_from(g->bias);
    for (int32_t ky = ky0; ky < ky1; ky++) {
        const int8_t *xr = x;
        const uint32_t *w = g->w + 2 * (ky * kw + kx0);
        for (int32_t kx = kx0; kx < kx1; kx++) {
            tap(&a, xr, w, g->off2);
            xr += ch;
            w += 2;
        }
        x += row;
    }
    store4(g, &a, out);
}

/* group_prepare's weights: per tap, the four channels' weights at f (one word, `ch` bytes
 * from tap to tap) as the int16 pairs (0, 2) and (1, 3), doubled where `doubled` (a
 * constant), their sums added to *sum02 / *sum13. */
PC_INLINE void group_taps(uint32_t *w, const int8_t *f, int32_t ch, int32_t taps,
                          uint32_t *sum02, uint32_t *sum13, int doubled)
{
    uint32_t s02 = *sum02, s13 = *sum13;
    for (int32_t t = 0; t < taps; t++, f += ch, w += 2) {
        const uint32_t wv = pc_read_u32(f);
        const uint32_t w02 = pc_sxtb16(wv);
        const uint32_t w13 = pc_sxtb16_ror8(wv);
        w[0] = doubled ? pc_double16(w02) : w02;
        w[1] = doubled ? pc_double16(w13) : w13;
        s02 = pc_sxtab16(s02, wv);
        s13 = pc_sxtab16_ror8(s13, wv);
    }
    *sum02 = s02;
    *sum13 = s13;
}

static void group_prepare(group_t *g, const pc_conv_params_t *p,
                          const pc_per_channel_quant_t *q, const int8_t *filter,
                          const int32_t *bias, int32_t c)
{
    const int32_t ch = p->input.c;
    const int32_t taps = p->kernel_h * p->kernel_w;
    /* the channels' weight sums in int16 lanes, (0, 2) and (1, 3), summed while widening:
     * |sum| <= DW_MAX_TAPS * 128 fits a lane */
    uint32_t sum02 = 0;
    uint32_t sum13 = 0;
    int32_t wsum[4];
    g->fast = 1;
    for (int32_t i = 0; i < 4; i++) {
        g->fast &= pc_rq_prepare(&g->rq[i], bias[c + i], q->multiplier[c + i],
                                 q->shift[c + i], p->output_offset, taps);
    }
    /* Fast: weights and biases doubled (|2w| <= 256 fits a lane), so every accumulator comes
     * out as the 2 * acc that the requantisation starts from (pc_rq_fast_x2: a fast
     * channel's lsh is 1), one shift less an output. */
    if (g->fast) { /* one loop per case, not a test of g->fast a tap (vww's 7x7: -9 %) */
        group_taps(g->w, filter + c, ch, taps, &sum02, &sum13, 1);
    } else {
        group_taps(g->w, filter + c, ch, taps, &sum02, &sum13, 0);
    }
    wsum[0] = pc_lo16(sum02);
    wsum[1] = pc_lo16(sum13);
    wsum[2] = pc_hi16(sum02);
    wsum[3] = pc_hi16(sum13);
    for (int32_t i = 0; i < 4; i++) {
        /* wraps like the accumulator would (the sum itself cannot overflow, see pc_kernels.h) */
        const uint32_t inside = (uint32_t)bias[c + i] + (uint32_t)(p->input_offset * wsum[i]);
        g->bias_inside[i] = (int32_t)(g->fast ? inside << 1 : inside);
        g->bias[i] = g->fast ? g->rq[i].bias2 : bias[c + i];
    }
    g->off2 = pc_dup16(p->input_offset);
    g->lo4 = pc_dup8(p->act_min);
    g->hi4 = pc_dup8(p->act_max);
    g->clamp = p->act_min > -128 || p->act_max < 127;
    g->mult = q->multiplier + c;
    g->shift = q->shift + c;
    g->out_off = p->output_offset;
    g->lo = p->act_min;
    g->hi = p->act_max;
}

/* ceil(a / b) for b > 0, any a. */
static int32_t div_ceil(int32_t a, int32_t b)
{
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

/* Output columns [*in0, *in1) have every tap column inside the image:
 * ix0 = ox * sw - pad_left >= 0 and ix0 + kw <= input.w. */
static void inside_columns(const pc_conv_params_t *p, int32_t *in0, int32_t *in1)
{
    const int32_t wo = p->output.w;
    const int32_t sw = p->stride_w;
    int32_t ox_in0 = div_ceil(p->pad_left, sw);
    int32_t ox_in1 = p->input.w - p->kernel_w + p->pad_left >= 0
                         ? (p->input.w - p->kernel_w + p->pad_left) / sw + 1
                         : 0;
    ox_in0 = ox_in0 < wo ? ox_in0 : wo;
    ox_in1 = ox_in1 < ox_in0 ? ox_in0 : ox_in1 > wo ? wo : ox_in1;
    *in0 = ox_in0;
    *in1 = ox_in1;
}

/* Output row oy of the group of four channels starting at channel c; out: that row's first
 * pixel, channel c; ring: out is a row of the in-place kernel's ring (4 bytes per pixel),
 * else of the output tensor (C bytes per pixel). */
PC_INLINE void group_row(const group_t *g, const pc_conv_params_t *p, const int8_t *input,
                         int32_t c, int32_t oy, int32_t ox_in0, int32_t ox_in1, int8_t *out,
                         int ring)
{
    const int32_t out_step = OUT_STEP(ring, p->input.c);
    const int32_t ch = p->input.c;
    const int32_t kh = p->kernel_h;
    const int32_t kw = p->kernel_w;
    const int32_t sw = p->stride_w;
    const int32_t row = p->input.w * ch;
    const int32_t wo = p->output.w;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
    const int32_t ky1 = p->input.h - iy0 < kh ? p->input.h - iy0 : kh;
    const int8_t *x_row = input + (iy0 + ky0) * row + c; /* row of tap ky0 */
    int32_t ox = 0;
    int32_t ox_clip_end = ox_in0; /* columns before it need clipping */
    if (ky0 != 0 || ky1 != kh) {
        ox_clip_end = wo; /* the whole row is at the top / bottom border */
    }
    for (; ox < ox_clip_end; ox++) {
        const int32_t ix0 = ox * sw - p->pad_left;
        const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
        const int32_t kx1 = p->input.w - ix0 < kw ? p->input.w - ix0 : kw;
        pixel_clipped(g, x_row + (ix0 + kx0) * ch, row, ch, kw, ky0, ky1, kx0, kx1,
                      out + ox * out_step);
    }
    if (ox < ox_in1) {
        const int8_t *x = x_row + (ox * sw - p->pad_left) * ch;
        int8_t *o = out + ox * out_step;
        const int32_t n = ox_in1 - ox;
        if (ring) {
            if (kh == 3 && kw == 3 && sw == 1) {
                run_inside_3x3_s1_ring(g, x, row, ch, o, n);
            } else if (kh == 3 && kw == 3 && sw == 2) {
                run_inside_3x3_s2_ring(g, x, row, ch, o, n);
            } else if (kw == 5 || kw == 7) {
                run_inside_wide_ring(g, x, sw * ch, row, ch, kh, kw, o, n);
            } else {
                run_inside_ring(g, x, sw * ch, row, ch, kh, kw, o, n);
            }
        } else if (kh == 3 && kw == 3 && sw == 1) {
            run_inside_3x3_s1(g, x, row, ch, o, n);
        } else if (kh == 3 && kw == 3 && sw == 2) {
            run_inside_3x3_s2(g, x, row, ch, o, n);
        } else if (kh == 3 && kw == 3) { /* constant kernel size: unrolled copy */
            run_inside(g, x, sw * ch, row, ch, 3, 3, o, n);
        } else if (kw == 5) {
            run_inside_wide(g, x, sw * ch, row, ch, kh, 5, o, n);
        } else if (kw == 7) {
            run_inside_wide(g, x, sw * ch, row, ch, kh, 7, o, n);
        } else {
            run_inside(g, x, sw * ch, row, ch, kh, kw, o, n);
        }
        ox = ox_in1;
    }
    for (; ox < wo; ox++) {
        const int32_t ix0 = ox * sw - p->pad_left;
        const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
        const int32_t kx1 = p->input.w - ix0 < kw ? p->input.w - ix0 : kw;
        pixel_clipped(g, x_row + (ix0 + kx0) * ch, row, ch, kw, ky0, ky1, kx0, kx1,
                      out + ox * out_step);
    }
}

/* ---- small maps: the group's plane padded once ------------------------------------------
 * On a small map most pixels are at the border (a 6x6 map under a 5x5 kernel: 32 of 36), and
 * pixel_clipped pays a loop per kernel row and the input offset per tap. There the group's
 * four channels of the padded input plane are first copied into a stack buffer, widened to
 * two int16 pairs a pixel (SXTB16 once per pixel rather than once per tap and pass), the
 * padding holding the input zero point: a padding tap then adds
 * -input_offset * w, which bias_inside's input_offset * sum(w) cancels, so every pixel takes
 * the inside path (FROM_PAD). The copy holds all the group reads, so in place its outputs go
 * straight to their place, with no ring. */
#define DW_PAD_PIXELS 400 /* the padded plane on the stack: 3.2 kB, up to 18x18 under 3x3 */

#ifndef PC_DW_PADDED_ALWAYS /* 1: every layer whose plane fits takes it (the tests sweep it) */
#define PC_DW_PADDED_ALWAYS 0
#endif

/* Padded plane: the input rows and columns the outputs read, from (-pad_top, -pad_left). */
static int32_t padded_w(const pc_conv_params_t *p)
{
    return (p->output.w - 1) * p->stride_w + p->kernel_w;
}

static int32_t padded_h(const pc_conv_params_t *p)
{
    return (p->output.h - 1) * p->stride_h + p->kernel_h;
}

/* Whether a layer takes this path (measured by `make bench`, per op): its padded plane fits
 * (for 3x3, maps up to 18x18; a 24x24 map is faster on the widened rows), and either the
 * kernel is 3x3 (on every such map or patch tile faster than the widened rows and the
 * clipped border: mbv2-0.35-144's 18x18 -4 %, 9x9 -21 %, its patch tiles -22 %;
 * person_detect's tiles -23 %), or the layer is not for the widened rows, a third or more
 * of its outputs are at the border and the kernel is no larger than the input (where most
 * taps would be padding, pixel_clipped skips them). */
static int rows_fit(const pc_conv_params_t *p); /* the widened rows' section, below */

static int padded_pays(const pc_conv_params_t *p)
{
    const int32_t kh = p->kernel_h;
    const int32_t kw = p->kernel_w;
    const int32_t ho = p->output.h;
    const int32_t wo = p->output.w;
    int32_t ox_in0, ox_in1;
    int32_t rows_in = 0; /* output rows with every kernel row inside the image */
    if (padded_w(p) * padded_h(p) > DW_PAD_PIXELS || kh * kw > DW_MAX_TAPS || p->input.c < 4) {
        return 0;
    }
    if (PC_DW_PADDED_ALWAYS || (kh == 3 && kw == 3)) {
        return 1;
    }
    if (kh > p->input.h || kw > p->input.w || rows_fit(p)) {
        return 0;
    }
    inside_columns(p, &ox_in0, &ox_in1);
    for (int32_t oy = 0; oy < ho; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        rows_in += iy0 >= 0 && iy0 + kh <= p->input.h;
    }
    return 3 * (ho * wo - rows_in * (ox_in1 - ox_in0)) >= ho * wo;
}

/* Channels c..c + 3 of the image's part of the padded plane into pad (2 * padded_w words
 * a row, each pixel's channels (0, 2) and (1, 3) as int16 pairs: pixel_pair); the padding
 * around it is filled once, by padded_groups. */
static void pad_group(const pc_conv_params_t *p, const int8_t *input, int32_t c, uint32_t *pad)
{
    const int32_t ch = p->input.c;
    const int32_t pw = padded_w(p);
    /* the image's rows [y0, y1) and columns [x0, x1) of the padded plane */
    const int32_t y0 = p->pad_top;
    const int32_t y1 = p->input.h + p->pad_top < padded_h(p) ? p->input.h + p->pad_top
                                                              : padded_h(p);
    const int32_t x0 = p->pad_left;
    const int32_t x1 = p->input.w + p->pad_left < pw ? p->input.w + p->pad_left : pw;
    const int32_t n = x1 - x0;
    for (int32_t y = y0; y < y1; y++) {
        const int8_t *src = input + (y - y0) * p->input.w * ch + c;
        uint32_t *dst = pad + 2 * (y * pw + x0);
        uint32_t *const end = dst + 2 * n;
        PC_UNROLL(2)
        for (; dst != end; src += ch) {
            const uint32_t v = pc_read_u32(src);
            pc_store2_inc(&dst, pc_sxtb16(v), pc_sxtb16_ror8(v));
        }
    }
}

/* Every group of four channels (the rest are left to the caller: returns the first);
 * output may be the input itself. */
PC_NOINLINE int32_t padded_groups(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                                  const int8_t *input, const int8_t *filter,
                                  const int32_t *bias, int8_t *output)
{
    uint32_t pad[2 * DW_PAD_PIXELS];
    group_t g;
    const int32_t ch = p->input.c;
    const int32_t kh = p->kernel_h;
    const int32_t kw = p->kernel_w;
    const int32_t sw = p->stride_w;
    const int32_t step = sw * PAD_STEP; /* bytes between neighbouring outputs' first taps */
    const int32_t ho = p->output.h;
    const int32_t wo = p->output.w;
    const int32_t out_w = pc_output_stride(p);
    const int32_t row = PAD_STEP * padded_w(p); /* bytes from one padded row to the next */
    const uint32_t fill = pc_dup16(-p->input_offset); /* the zero point, widened */
    const int32_t words = 2 * padded_w(p) * padded_h(p);
    int32_t c = 0;
    for (int32_t i = 0; i < words; i++) {
        pad[i] = fill;
    }
    for (; c + 4 <= ch; c += 4) {
        group_prepare(&g, p, q, filter, bias, c);
        pad_group(p, input, c, pad);
        for (int32_t oy = 0; oy < ho; oy++) {
            const int8_t *x = (const int8_t *)pad + oy * p->stride_h * row;
            int8_t *out = output + oy * out_w * ch + c;
            if (kh == 3 && kw == 3 && sw == 1) {
                run_inside_3x3_s1_pad(&g, x, row, ch, out, wo);
            } else if (kh == 3 && kw == 3 && sw == 2) {
                run_inside_3x3_s2_pad(&g, x, row, ch, out, wo);
            } else if (kw == 5 || kw == 7) {
                run_inside_wide_pad(&g, x, step, row, ch, kh, kw, out, wo);
            } else {
                run_inside_pad(&g, x, step, row, ch, kh, kw, out, wo);
            }
        }
    }
    return c;
}

/* ---- kernels larger than the map: the group's plane widened once, windows clipped --------
 * Where the kernel is taller or wider than its input (a late 7x7 on a 3x3 or 6x6 map, where
 * receptive-field redistribution puts large kernels), the padded plane would be mostly
 * padding (a 3x3 map under 7x7: 40 of each output's 49 taps), and pixel_clipped widens a
 * tap's input again for every output that reads it. Here the group's input plane is widened
 * once, with the input offset, into a stack copy, and each output pixel runs its clipped
 * window over the copy: per tap two word loads and four MACs. The copy holds all the group
 * reads, so in place its outputs go straight to their place, with no ring. Layers for the
 * widened rows (rows_fit: maps wide enough) stay there; -DPC_DW_PADDED_ALWAYS=1 sends these
 * layers to the padded plane instead (the tests sweep every path). */
static int covered_pays(const pc_conv_params_t *p)
{
    return !PC_DW_PADDED_ALWAYS && p->input.c >= 4 &&
           (p->kernel_h > p->input.h || p->kernel_w > p->input.w) &&
           p->kernel_h * p->kernel_w <= DW_MAX_TAPS && p->input.w <= DW_PAD_PIXELS &&
           p->input.h <= DW_PAD_PIXELS / p->input.w && !rows_fit(p);
}

/* Channels c..c + 3 of every input pixel, plus the input offset, into plane: two int16 pairs
 * a pixel, (0, 2) and (1, 3), as tap() widens them. */
static void widen_plane(const pc_conv_params_t *p, const int8_t *input, int32_t c,
                        uint32_t off2, uint32_t *plane)
{
    const int32_t ch = p->input.c;
    const int8_t *src = input + c;
    uint32_t *const end = plane + 2 * p->input.h * p->input.w;
    for (; plane != end; src += ch) {
        const uint32_t v = pc_read_u32(src);
        pc_store2_inc(&plane, pc_sxtab16(off2, v), pc_sxtab16_ror8(off2, v));
    }
}

/* pixel_clipped over widen_plane's copy: x, the copy's pixel of tap (ky0, kx0); row_words:
 * words from one input row to the next. */
static void pixel_covered(const group_t *g, const uint32_t *x, int32_t row_words, int32_t kw,
                          int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, int8_t *out)
{
    const int32_t n = kx1 - kx0;
    acc4_t a = acc4_from(g->bias);
    for (int32_t ky = ky0; ky < ky1; ky++) {
        const uint32_t *xr = x;
        const uint32_t *const end = x + 2 * n;
        const uint32_t *w = g->w + 2 * (ky * kw + kx0);
        while (xr != end) { /* per tap: two LDRD, four MACs */
            uint32_t x02, x13, w02, w13;
            pc_load2_inc(&xr, &x02, &x13);
            pc_load2_inc(&w, &w02, &w13);
            a.s0 = pc_smlabb(x02, w02, a.s0);
            a.s2 = pc_smlatt(x02, w02, a.s2);
            a.s1 = pc_smlabb(x13, w13, a.s1);
            a.s3 = pc_smlatt(x13, w13, a.s3);
        }
        x += row_words;
    }
    store4(g, &a, out);
}

/* Every group of four channels (the rest are left to the caller: returns the first);
 * output may be the input itself. */
PC_NOINLINE int32_t covered_groups(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                                   const int8_t *input, const int8_t *filter,
                                   const int32_t *bias, int8_t *output)
{
    uint32_t plane[2 * DW_PAD_PIXELS];
    group_t g;
    const int32_t ch = p->input.c;
    const int32_t h = p->input.h;
    const int32_t w = p->input.w;
    const int32_t kh = p->kernel_h;
    const int32_t kw = p->kernel_w;
    const int32_t out_w = pc_output_stride(p);
    int32_t c = 0;
    for (; c + 4 <= ch; c += 4) {
        group_prepare(&g, p, q, filter, bias, c);
        widen_plane(p, input, c, g.off2, plane);
        for (int32_t oy = 0; oy < p->output.h; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
            const int32_t ky1 = h - iy0 < kh ? h - iy0 : kh;
            for (int32_t ox = 0; ox < p->output.w; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
                const int32_t kx1 = w - ix0 < kw ? w - ix0 : kw;
                pixel_covered(&g, plane + 2 * ((iy0 + ky0) * w + ix0 + kx0), 2 * w, kw, ky0,
                              ky1, kx0, kx1, output + (oy * out_w + ox) * ch + c);
            }
        }
    }
    return c;
}

/* ---- widened rows: one channel at a time ---------------------------------------------------
 * The path for layers where it is faster (rows_fit). Each input row of the channel is widened
 * to int16 once, into a ring on the stack; the columns outside the image, and rows above /
 * below it, hold -input_offset, so with input_offset * sum(weights) in the bias a padding tap
 * adds exactly 0 and border pixels need no path of their own. Horizontally neighbouring taps
 * are then int16 pairs in one word, and outputs take SMLAD (2 MACs per instruction) against
 * pairs of weights prepared once per channel: two neighbouring outputs per step for 3x3
 * (stride 1), four for 5x5 / 7x7 (stride 1 or 2), so each weight word serves several. The
 * accumulators of a chunk of outputs are requantised in a second pass, with the channel's
 * constants in registers.
 *
 * Two ring modes (rows_layer): when the channel's whole padded plane fits the ring, every row
 * is widened first and output rows are requantised several at a time ("plane"); otherwise the
 * ring holds kh rows and each is widened when the first output row needs it.
 *
 * Weights are pre-shifted by the requantisation's left shift (pc_rq_t.lsh, at most 7 so that
 * 128 << 7 still fits an int16 lane), so the accumulator comes out already shifted and
 * requantising is ASR, ADD, SMMLAR, ASR, SSAT (pc_dsp.h explains why that is exact).
 * Stack: the ring (DW_RING_BYTES), a chunk of accumulators (4 * DW_CHUNK) and one chan_t,
 * about 2.2 kB; the four-channel path below is not on the stack at the same time. */

#define DW_RING_BYTES 1536  /* the ring on the stack: rows of dw_slot(p) int16 values */
#define DW_ROW_MAX_WORDS 32 /* weight pairs: kh * ceil(kw / 2), 28 for 7x7 */

/* int16 values per ring row: the (Wo - 1) * stride + kw input columns the outputs read, plus
 * one for the zero-weighted upper lane of an odd kernel's last pair, rounded up to even. */
static int32_t dw_slot(const pc_conv_params_t *p)
{
    const int32_t cols = (p->output.w - 1) * p->stride_w + p->kernel_w + 1;
    return (cols + 1) & ~1;
}

/* Input rows the outputs read: (Ho - 1) * stride + kh, from row -pad_top. */
static int32_t dw_plane_rows(const pc_conv_params_t *p)
{
    return (p->output.h - 1) * p->stride_h + p->kernel_h;
}

/* Whether the whole padded input plane of a channel fits the ring: then every row is widened
 * up front ("plane" mode), which also makes running in place safe for any geometry. */
static int plane_fits(const pc_conv_params_t *p)
{
    return dw_plane_rows(p) * dw_slot(p) * 2 <= DW_RING_BYTES;
}

/* Whether a layer takes this path (measured by `make bench`, per op): its kernel's weights fit
 * chan_t, its rows fit the ring, and it has work enough per channel to repay the channel's
 * set-up and the widening of its rows: 4+ output rows (a kernel row's widened input serves up
 * to kh of them), 64+ outputs, rows of 12+ outputs unless the whole plane fits the ring (the
 * per-row calls of ring mode); and not 3x3 with stride 2, where each input value feeds
 * only 2.25 MACs and widening it (about 2.5 instructions) does not pay. The rest (small
 * tiles of a patch stage, single output rows, tiny maps) is faster on the four-channel path.
 * -DPC_DW_ROWS_ALWAYS=1 sends every layer that fits here (the tests sweep both paths). */
#ifndef PC_DW_ROWS_ALWAYS
#define PC_DW_ROWS_ALWAYS 0
#endif

static int rows_fit(const pc_conv_params_t *p)
{
    const int32_t pairs = (p->kernel_w + 1) / 2;
    const int pays = p->output.h >= 4 && p->output.h * p->output.w >= 64 &&
                     (plane_fits(p) || p->output.w >= 12) &&
                     !(p->kernel_w == 3 && p->stride_w == 2);
    return p->kernel_h * pairs <= DW_ROW_MAX_WORDS &&
           p->kernel_h * dw_slot(p) * 2 <= DW_RING_BYTES && (PC_DW_ROWS_ALWAYS || pays);
}

/* One channel's constants. */
typedef struct {
    uint32_t w[DW_ROW_MAX_WORDS]; /* per kernel row: (w[kx], w[kx + 1]) for kx = 0, 2, ..;
                                     an odd kernel's last tap with 0 in the upper lane */
    int32_t bias;                 /* bias + input_offset * sum(w), << rq.lsh when fast */
    pc_rq_t rq;
    int32_t fast;
    int32_t mult, shift, out_off, lo, hi; /* the generic route (not fast) */
    int32_t kh, kw, sw;                   /* the kernel, the horizontal stride */
    int32_t plain; /* fast, and act_min / act_max the whole int8 range: store_run */
    int32_t step;  /* bytes from one output pixel to the next (the channels) */
} chan_t;

/* Whether a channel takes the fast requantisation (its rq prepared for outputs of `taps`
 * MACs); returns the left shift its widened weights take (rq.lsh, at most 7; 0 where it is
 * not fast). chan_finish completes the channel once its weight sum is known. */
PC_INLINE int32_t chan_quant(chan_t *k, const pc_conv_params_t *p,
                             const pc_per_channel_quant_t *q, const int32_t *bias, int32_t c,
                             int32_t taps)
{
    k->fast = pc_rq_prepare(&k->rq, bias[c], q->multiplier[c], q->shift[c], p->output_offset,
                            taps) &&
              k->rq.lsh <= 7;
    return k->fast ? k->rq.lsh : 0;
}

/* The rest of a channel's constants: the accumulator's start, bias + input_offset * wsum
 * shifted as the weights are, and the generic requantisation's. */
PC_INLINE void chan_finish(chan_t *k, const pc_conv_params_t *p,
                           const pc_per_channel_quant_t *q, const int32_t *bias, int32_t c,
                           int32_t wsum, int32_t lsh)
{
    /* wraps like the accumulator would (the sum itself cannot overflow, see pc_kernels.h) */
    k->bias = (int32_t)(((uint32_t)bias[c] + (uint32_t)(p->input_offset * wsum)) << lsh);
    k->mult = q->multiplier[c];
    k->shift = q->shift[c];
    k->out_off = p->output_offset;
    k->lo = p->act_min;
    k->hi = p->act_max;
    k->plain = k->fast && p->act_min == -128 && p->act_max == 127;
    k->step = p->input.c;
}

PC_NOINLINE void chan_prepare(chan_t *k, const pc_conv_params_t *p,
                              const pc_per_channel_quant_t *q, const int8_t *filter,
                              const int32_t *bias, int32_t c)
{
    const int32_t ch = p->input.c;
    const int32_t kh = p->kernel_h;
    const int32_t kw = p->kernel_w;
    const int32_t pairs = (kw + 1) / 2;
    const int32_t lsh = chan_quant(k, p, q, bias, c, kh * kw);
    int32_t wsum = 0;
    for (int32_t ky = 0; ky < kh; ky++) {
        for (int32_t i = 0; i < pairs; i++) {
            const int32_t kx = 2 * i;
            const int32_t lo = filter[(ky * kw + kx) * ch + c];
            const int32_t hi = kx + 1 < kw ? filter[(ky * kw + kx + 1) * ch + c] : 0;
            wsum += lo + hi;
            k->w[ky * pairs + i] = pc_lane16(lo * (1 << lsh)) | (pc_lane16(hi * (1 << lsh)) << 16);
        }
    }
    chan_finish(k, p, q, bias, c, wsum, lsh);
    k->kh = kh;
    k->kw = kw;
    k->sw = p->stride_w;
}

/* Two int16 values of a ring row as one word (unaligned where x is odd: one LDR on the M7). */
PC_INLINE uint32_t rd2(const int16_t *x)
{
    return pc_read_u32(x);
}

/* Outputs are made in two passes over chunks of DW_CHUNK: their accumulators first, with the
 * weights in registers, then their requantisation, with the channel's constants in registers
 * (both sets at once would not fit the 13 registers of a Cortex-M loop). */
#define DW_CHUNK 128

/* The accumulators of n outputs of one row; r: the kernel rows' ring rows at the first
 * output row's first tap, off: int16 values from there to this row's (0, or in plane mode a
 * multiple of the stride's rows). Each row function is a function of its own, which keeps
 * its loop's accumulators, weights and pointers in registers. */
typedef void (*row_fn_t)(const chan_t *k, const int16_t *const *r, int32_t off, int32_t *acc,
                         int32_t n);

/* One row, 3x3, stride 1, two neighbouring outputs A (s) and B (t) per step. Per kernel row:
 * A's taps 0, 1 are the word (x0, x1) and B's (x1, x2), both against (w0, w1); tap 2 is the
 * bottom (A: x2) or top (B: x3) lane of (x2, x3). */
PC_NOINLINE void row_3x3_s1(const chan_t *k, const int16_t *const *r, int32_t off,
                            int32_t *acc, int32_t n)
{
    /* the weights in 5 registers: (w0, w1) of each row in a0..a2; tap 2 of rows 0 and 1
     * share one word, b01 = (w2 of row 0, w2 of row 1); b2 = (w2 of row 2, 0) */
    const uint32_t a0 = k->w[0], a1 = k->w[2], a2 = k->w[4];
    const uint32_t b01 = (k->w[1] & 0xffffu) | (k->w[3] << 16);
    const uint32_t b2 = k->w[5];
    const int32_t bias = k->bias;
    const int16_t *r0 = r[0] + off;
    const int16_t *r1 = r[1] + off;
    const int16_t *r2 = r[2] + off;
    for (; n >= 2; n -= 2) {
        int32_t s = pc_smlad(rd2(r0), a0, bias);
        int32_t t = pc_smlad(rd2(r0 + 1), a0, bias);
        uint32_t x23 = rd2(r0 + 2);
        s = pc_smlabb(x23, b01, s);
        t = pc_smlatb(x23, b01, t);
        s = pc_smlad(rd2(r1), a1, s);
        t = pc_smlad(rd2(r1 + 1), a1, t);
        x23 = rd2(r1 + 2);
        s = pc_smlabt(x23, b01, s);
        t = pc_smlatt(x23, b01, t);
        s = pc_smlad(rd2(r2), a2, s);
        t = pc_smlad(rd2(r2 + 1), a2, t);
        x23 = rd2(r2 + 2);
        s = pc_smlabb(x23, b2, s);
        t = pc_smlatb(x23, b2, t);
        acc[0] = s;
        acc[1] = t;
        acc += 2;
        r0 += 2;
        r1 += 2;
        r2 += 2;
    }
    if (n > 0) { /* the last, odd output */
        int32_t s = pc_smlad(rd2(r0), a0, bias);
        s = pc_smlabb(rd2(r0 + 2), b01, s);
        s = pc_smlad(rd2(r1), a1, s);
        s = pc_smlabt(rd2(r1 + 2), b01, s);
        s = pc_smlad(rd2(r2), a2, s);
        acc[0] = pc_smlabb(rd2(r2 + 2), b2, s);
    }
}

/* The accumulator of one output: kh kernel rows of `pairs` weight words each, x at
 * r[ky] + off (an odd kernel's last word has 0 in its upper lane, chan_prepare). */
PC_INLINE int32_t row_one(const chan_t *k, const int16_t *const *r, int32_t off, int32_t kh,
                          int32_t pairs)
{
    int32_t a = k->bias;
    const uint32_t *w = k->w;
    for (int32_t ky = 0; ky < kh; ky++) {
        const int16_t *x = r[ky] + off;
        for (int32_t t = 0; t < pairs; t++) {
            a = pc_smlad(rd2(x + 2 * t), w[t], a);
        }
        w += pairs;
    }
    return a;
}

/* m neighbouring outputs (m = 4 or 2, a constant) of a row of a kernel kw wide (a constant: 5
 * or 7), stride 1 or 2, into acc[0 .. m): per kernel row, each of the ceil(kw / 2) weight
 * words is loaded once for all m, and the outputs' overlapping pairs are loaded once
 * (stride 1: kw + m - 2 words instead of kw a pair); an odd kernel's last tap is the low or
 * high lane of one word for two neighbours (stride 1). x: the first output's top-left tap in
 * each kernel row's ring row (r[ky] + off). */
PC_INLINE void row_wide_step(const chan_t *k, const int16_t *const *r, int32_t off, int32_t kh,
                             int32_t *acc, int32_t kw, int s2, int m)
{
    const int32_t full = kw / 2; /* pairs with two taps; kw is odd, so one tap is left */
    const int32_t d = s2 ? 2 : 1;
    const uint32_t *w = k->w;
    int32_t a[4];
    PC_UNROLL(4)
    for (int32_t o = 0; o < m; o++) {
        a[o] = k->bias;
    }
    PC_UNROLL(7)
    for (int32_t ky = 0; ky < kh; ky++) {
        const int16_t *x = r[ky] + off;
        uint32_t wl;
        PC_UNROLL(3)
        for (int32_t i = 0; i < full; i++) {
            const uint32_t wi = w[i];
            PC_UNROLL(4)
            for (int32_t o = 0; o < m; o++) {
                a[o] = pc_smlad(rd2(x + o * d + 2 * i), wi, a[o]);
            }
        }
        wl = w[full];
        PC_UNROLL(2)
        for (int32_t o = 0; o < m; o += 2) {
            if (s2) {
                a[o] = pc_smlabb(rd2(x + 2 * full + 2 * o), wl, a[o]);
                a[o + 1] = pc_smlabb(rd2(x + 2 * full + 2 * o + 2), wl, a[o + 1]);
            } else {
                const uint32_t last = rd2(x + 2 * full + o);
                a[o] = pc_smlabb(last, wl, a[o]);
                a[o + 1] = pc_smlatb(last, wl, a[o + 1]);
            }
        }
        w += full + 1;
    }
    PC_UNROLL(4)
    for (int32_t o = 0; o < m; o++) {
        acc[o] = a[o];
    }
}

/* One row of a kernel kw wide (a constant: 5 or 7), stride 1 or 2: four neighbouring outputs
 * a step, then two, then one (row_wide_step). Four at a time: 5x5 stride 1 -15 %, stride 2
 * -10 % (person_detect) against two; the same for 3x3 spills (+5 %), so row_3x3_s1 keeps two.
 * Rows whose width leaves two (mask_detect's 26) need the two-output step: one at a time
 * there costs +1.9 %. r: the kernel rows, off: int16 values from them to this output row's. */
PC_INLINE void row_wide(const chan_t *k, const int16_t *const *r, int32_t off, int32_t kh,
                        int32_t *acc, int32_t n, int32_t kw, int s2)
{
    const int32_t pairs = (kw + 1) / 2;
    const int32_t d = s2 ? 2 : 1;
    int32_t j = 0;
    for (; j + 4 <= n; j += 4) {
        row_wide_step(k, r, off + j * d, kh, acc + j, kw, s2, 4);
    }
    for (; j + 2 <= n; j += 2) {
        row_wide_step(k, r, off + j * d, kh, acc + j, kw, s2, 2);
    }
    if (j < n) {
        acc[j] = row_one(k, r, off + j * d, kh, pairs);
    }
}

#define ROW_WIDE(name, kw, s2)                                                                \
    PC_NOINLINE void name(const chan_t *k, const int16_t *const *r, int32_t off, int32_t *acc, \
                          int32_t n)                                                           \
    {                                                                                          \
        row_wide(k, r, off, kw, acc, n, kw, s2); /* kh = kw: each kernel row unrolled */       \
    }

ROW_WIDE(row_5x5_s1, 5, 0)
ROW_WIDE(row_5x5_s2, 5, 1)
ROW_WIDE(row_7x7_s1, 7, 0)
ROW_WIDE(row_7x7_s2, 7, 1)

/* Any kernel and stride. */
PC_NOINLINE void row_any(const chan_t *k, const int16_t *const *r, int32_t off, int32_t *acc,
                         int32_t n)
{
    const int32_t pairs = (k->kw + 1) / 2;
    for (int32_t j = 0; j < n; j++) {
        acc[j] = row_one(k, r, off + j * k->sw, k->kh, pairs);
    }
}

static row_fn_t pick_row(const pc_conv_params_t *p)
{
    const int32_t kh = p->kernel_h;
    const int32_t kw = p->kernel_w;
    const int32_t sw = p->stride_w;
    if (kh == 3 && kw == 3) {
        return sw == 1 ? row_3x3_s1 : row_any; /* stride 2 stays on the four-channel path */
    }
    if (kh == 5 && kw == 5) {
        return sw == 1 ? row_5x5_s1 : sw == 2 ? row_5x5_s2 : row_any;
    }
    if (kh == 7 && kw == 7) {
        return sw == 1 ? row_7x7_s1 : sw == 2 ? row_7x7_s2 : row_any;
    }
    return row_any;
}

/* n accumulators of a fast channel (already << lsh) to outputs out[0], out[step], ...,
 * clamped where lo / hi: where act_min / act_max are narrower than int8 (SSAT has done the
 * rest). */
PC_INLINE void store_at(const chan_t *k, const int32_t *acc, int32_t n, int8_t *out,
                        int32_t step, int lo, int hi)
{
    const int32_t mult = k->rq.mult;
    const int32_t rnd = k->rq.rnd;
    const int32_t rsh = k->rq.rsh;
    const int32_t vmin = k->lo;
    const int32_t vmax = k->hi;
    const int32_t step2 = 2 * step;
    for (; n >= 2; n -= 2) {
        const int32_t a = acc[0];
        const int32_t b = acc[1];
        int32_t u = pc_rq_shifted(a, mult, rnd, rsh);
        int32_t v = pc_rq_shifted(b, mult, rnd, rsh);
        if (lo) {
            u = u < vmin ? vmin : u;
            v = v < vmin ? vmin : v;
        }
        if (hi) {
            u = u > vmax ? vmax : u;
            v = v > vmax ? vmax : v;
        }
        out[0] = (int8_t)u;
        out[step] = (int8_t)v;
        out += step2;
        acc += 2;
    }
    if (n > 0) {
        const int32_t a = acc[0];
        int32_t u = pc_rq_shifted(a, mult, rnd, rsh);
        u = lo && u < vmin ? vmin : u;
        u = hi && u > vmax ? vmax : u;
        out[0] = (int8_t)u;
    }
}

/* The outputs of a plain channel (chan_t.plain), six a step: one LDM, six requantisations
 * and six STRB (two a pointer step) and the loop, 36 instructions for six outputs where the C
 * loop took 26 for four; then one at a time. About 10 instructions a call, against ~60 for
 * store_outputs' dispatch and set-up in C (measured). */
#if defined(PC_DSP_EMULATE)
PC_NOINLINE void store_run(const int32_t *acc, int32_t n, int8_t *out, const chan_t *k)
{
    for (int32_t j = 0; j < n; j++) {
        out[j * k->step] = (int8_t)pc_rq_shifted(acc[j], k->rq.mult, k->rq.rnd, k->rq.rsh);
    }
}
#else
/* r0 the accumulators, r1 how many are left, r2 the output, r3 the step; r5 rnd, r6 mult,
 * r7 rsh; r4, r8 - ip the values, lr the temporary. */
#define STORE_RQ(x) PC_ASM_RQ(x, "r6", "r5", "r7", "lr")
__attribute__((naked, noinline)) static void store_run(
    __attribute__((unused)) const int32_t *acc, __attribute__((unused)) int32_t n,
    __attribute__((unused)) int8_t *out, __attribute__((unused)) const chan_t *k)
{
    __asm__("push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
            "add lr, r3, #132\n\t"         /* &k->rq */
            "ldm lr, {r4, r5, r6, r7}\n\t" /* lsh (unused), rnd, mult, rsh */
            "ldr r3, [r3, #200]\n\t"       /* k->step */
            "subs r1, r1, #6\n\t"
            "blo 3f\n"
            "1:\n\t" /* six */
            "ldm r0!, {r4, r8, r9, r10, r11, ip}\n\t"
            STORE_RQ("r4") STORE_RQ("r8") STORE_RQ("r9") STORE_RQ("r10") STORE_RQ("r11")
            STORE_RQ("ip")
            "strb r4, [r2]\n\t"
            "strb r8, [r2, r3]\n\t"
            "add r2, r2, r3, lsl #1\n\t"
            "strb r9, [r2]\n\t"
            "strb r10, [r2, r3]\n\t"
            "add r2, r2, r3, lsl #1\n\t"
            "strb r11, [r2]\n\t"
            "strb ip, [r2, r3]\n\t"
            "add r2, r2, r3, lsl #1\n\t"
            "subs r1, r1, #6\n\t"
            "bhs 1b\n"
            "3:\n\t"
            "adds r1, r1, #6\n\t"
            "beq 5f\n"
            "4:\n\t" /* the rest, one at a time */
            "ldr r4, [r0], #4\n\t" STORE_RQ("r4")
            "strb r4, [r2]\n\t"
            "add r2, r2, r3\n\t"
            "subs r1, r1, #1\n\t"
            "bne 4b\n"
            "5:\n\t"
            "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}");
}
#undef STORE_RQ
PC_STATIC_ASSERT(offsetof(chan_t, rq) == 132 && offsetof(pc_rq_t, rnd) == 4 &&
                     offsetof(pc_rq_t, mult) == 8 && offsetof(pc_rq_t, rsh) == 12 &&
                     offsetof(chan_t, step) == 200,
                 store_run_layout);
#endif

/* The other channels: clamped, or the generic requantisation. */
PC_NOINLINE void store_clamped(const chan_t *k, const int32_t *acc, int32_t n, int8_t *out)
{
    const int lo = k->lo > -128;
    const int hi = k->hi < 127;
    const int32_t step = k->step;
    if (!k->fast) {
        for (int32_t j = 0; j < n; j++) {
            out[j * step] = PC_REQUANTIZE_S8(acc[j], k->mult, k->shift, k->out_off, k->lo,
                                             k->hi);
        }
    } else if (lo && hi) {
        store_at(k, acc, n, out, step, 1, 1);
    } else if (hi) {
        store_at(k, acc, n, out, step, 0, 1);
    } else {
        store_at(k, acc, n, out, step, 1, 0);
    }
}

/* n accumulators of channel k to out[0], out[k->step], ... */
PC_INLINE void store_outputs(const chan_t *k, const int32_t *acc, int32_t n, int8_t *out)
{
    if (k->plain) {
        store_run(acc, n, out, k);
    } else {
        store_clamped(k, acc, n, out);
    }
}

/* Input row iy of channel c into the ring row dst, whose columns outside the image already
 * hold the padding (rows_layer fills the whole ring with it first). */
PC_NOINLINE void widen_row(const pc_conv_params_t *p, const int8_t *input, int32_t c,
                           int32_t iy, int16_t *dst, int32_t cols)
{
    const int32_t ch = p->input.c;
    dst += p->pad_left;
    if (iy < 0 || iy >= p->input.h) {
        const int16_t pad = (int16_t)-p->input_offset;
        for (int32_t x = 0; x < cols; x++) {
            dst[x] = pad;
        }
        return;
    }
    input += iy * p->input.w * ch + c;
    for (; cols >= 4; cols -= 4) { /* four values, two word stores */
        const uint32_t p01 = pc_pack16x2(input[0], input[ch]);
        const uint32_t p23 = pc_pack16x2(input[2 * ch], input[3 * ch]);
        memcpy(dst, &p01, 4);
        memcpy(dst + 2, &p23, 4);
        dst += 4;
        input += 4 * ch;
    }
    for (; cols > 1; cols--) {
        *dst++ = *input;
        input += ch;
    }
    if (cols > 0) {
        dst[0] = input[0];
    }
}

/* The whole layer, channel by channel, into output (which may be the input itself when
 * in_place_rows_ok: see pc_depthwise_conv2d_s8_in_place). */
PC_NOINLINE void rows_layer(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                            const int8_t *input, const int8_t *filter, const int32_t *bias,
                            int8_t *output)
{
    union {
        int16_t v[DW_RING_BYTES / 2];
        uint32_t align; /* word loads */
    } ring;
    int32_t acc[DW_CHUNK];
    const int16_t *r[8]; /* kh <= 7 where rows_fit (DW_ROW_MAX_WORDS) */
    chan_t k;
    const row_fn_t row = pick_row(p);
    const int32_t ch = p->input.c;
    const int32_t kh = p->kernel_h;
    const int32_t sh = p->stride_h;
    const int32_t ho = p->output.h;
    const int32_t wo = p->output.w;
    const int32_t out_w = pc_output_stride(p); /* pixels from one output row to the next */
    const int32_t slot = dw_slot(p);
    /* plane mode: a ring row for every input row read, all widened before the first output
     * row, and output rows taken DW_CHUNK outputs at a time; else a ring of kh rows, each
     * widened when the first output row needs it, one output row at a time */
    const int32_t plane = plane_fits(p);
    const int32_t ring_rows = plane ? dw_plane_rows(p) : kh;
    const int32_t block = plane && wo <= DW_CHUNK ? DW_CHUNK / wo : 1; /* output rows a call */
    /* input columns inside both the image and the span the outputs read */
    int32_t cols = slot - 1 - p->pad_left;
    cols = cols < 0 ? 0 : cols > p->input.w ? p->input.w : cols;
    for (int32_t i = 0; i < ring_rows * slot; i++) {
        ring.v[i] = (int16_t)-p->input_offset;
    }
    for (int32_t c = 0; c < ch; c++) {
        /* input row iy sits in ring row (iy + pad_top) % ring_rows; rows are widened in order */
        int32_t next = -p->pad_top; /* the next input row to widen */
        int32_t next_slot = 0;      /* its ring row */
        int32_t top_slot = 0;       /* the ring row of the output row's first kernel row */
        chan_prepare(&k, p, q, filter, bias, c);
        for (int32_t oy = 0; oy < ho; oy += block) {
            const int32_t iy0 = oy * sh - p->pad_top;
            const int32_t rows = ho - oy < block ? ho - oy : block;
            const int32_t last = plane ? ring_rows - p->pad_top : iy0 + kh; /* widen below */
            int8_t *out = output + oy * out_w * ch + c;
            if (next < iy0) { /* rows a stride over kh skips */
                next_slot = (next_slot + iy0 - next) % ring_rows;
                next = iy0;
            }
            for (; next < last; next++) {
                widen_row(p, input, c, next, ring.v + next_slot * slot, cols);
                next_slot = next_slot + 1 == ring_rows ? 0 : next_slot + 1;
            }
            for (int32_t ky = 0, s = top_slot; ky < kh; ky++) {
                r[ky] = ring.v + s * slot;
                s = s + 1 == ring_rows ? 0 : s + 1;
            }
            top_slot = (top_slot + rows * sh) % ring_rows;
            if (rows > 1) { /* plane mode: whole output rows */
                for (int32_t i = 0; i < rows; i++) {
                    row(&k, r, i * sh * slot, acc + i * wo, wo);
                }
                if (out_w == wo) { /* contiguous in the output */
                    store_outputs(&k, acc, rows * wo, out);
                } else {
                    for (int32_t i = 0; i < rows; i++) {
                        store_outputs(&k, acc + i * wo, wo, out + i * out_w * ch);
                    }
                }
                continue;
            }
            for (int32_t ox = 0; ox < wo; ox += DW_CHUNK) {
                const int32_t n = wo - ox < DW_CHUNK ? wo - ox : DW_CHUNK;
                row(&k, r, 0, acc, n);
                store_outputs(&k, acc, n, out + ox * ch);
                for (int32_t ky = 0; ky < kh; ky++) {
                    r[ky] += DW_CHUNK * p->stride_w;
                }
            }
        }
    }
}

/* ---- 3x3 and 5x5, stride 1 or 2: channel planes, band by band -----------------------------
 * The four-channel paths take one instruction a MAC (SMLABB / SMLATT: HWC keeps a channel's
 * neighbouring taps apart), and the widened rows widen one channel at a time (3.5
 * instructions a value). Here a group's four channels are widened together (2.0 a value)
 * into four int16 planes, the padding holding the zero point as in padded_groups; a plane
 * row's neighbouring taps are then one word, and each channel runs two or four outputs a
 * step. Plane rows are `pitch` values apart, a constant of each kernel (20, 40, 56 or 80), so
 * a kernel row's words are LDRD at immediate offsets. Per kernel row of a 3x3, with (x0, x1)
 * and (x2, x3) loaded: A = (x0, x1) . (w0, w1) + x2 * w2 and B = x1 * w0 + (x2, x3) .
 * (w1, w2) (SMLADX against (w2, w1)): one load and four MAC instructions for six taps, 8.5
 * instructions an output in all, the weights in registers (plane_rows_*, in assembly). A
 * 5x5 takes four outputs a step, 12 MAC instructions for a kernel row's 20 taps, its
 * weights loaded per row (23.7 instructions an output, against 34 on the widened rows); at
 * stride 2 the same, each output from its own pairs; a 3x3 at stride 2 takes (x0, x1) .
 * (w0, w1) + x2 * w2 for A and (x2, x3) . (w0, w1) + x4 * w2 for B, two loads and four MAC
 * instructions a kernel row.
 * Outputs are requantised as the widened rows' (store_outputs).
 *
 * The planes hold PLANE_VALUES / 4 / pitch rows: the whole padded plane of small maps, else
 * a band of output rows at a time, the next band keeping the last kh - stride input rows the
 * band read (copied to the top) and widening the rest. In place, a band's outputs go
 * straight to their place: output row o lands on input rows <= o (Wo <= W), so a band that
 * ends before output row o1 overwrites input rows < o1 only, and the later bands widen input
 * rows >= stride * o1 + kh - stride - pad_top >= o1 (pad_top <= kh - stride): none is
 * overwritten before it is read.
 *
 * Measured by `make bench`: mbv2-0.35-144's 3x3 72x72 -14 % and 36x36 -27 % against the
 * widened rows, 18x18 and 9x9 -17 % and -14 % against the four-channel padded path;
 * mask_detect's 5x5 on 20x26 -24 % and its 5x5 stride 2 -14 %, vww's 5x5 on 12x12 -34 %.
 * 3x3 with stride 2, where each input value feeds only 2.25 MACs, on output rows of
 * PLANES_S2_MIN_W or more: mbv2-0.35-144's 72x72 -8 % and 36x36 -14 %, vww's 48x48 -6 %
 * against the four-channel path on the tensor (with plane rows in C); with the assembly's,
 * also rows of 8 to 15: mbv2-0.35-144's 18x18 -13 % and the cache tiles of its 72x72 -4.5 %
 * against the padded copy (at 16+ they had measured +2 %). Not taken: maps of fewer than
 * PLANES_MIN_OUTPUTS outputs, where each channel's set-up and calls are not repaid (taking
 * every map of 4+ outputs: vww cache-fused +0.9 %); 16 and over pay since the assembly's
 * plane rows and stores: mbv2-0.35-144's 5x5 -11 %, vww's cache tiles of its 24x24 3x3 -2 %
 * and of its 5x5 stride 2 -1 % (with C plane rows the 5x5 had measured +1 %). */
#define PLANE_VALUES 1600  /* the four planes on the stack: 3.2 kB */
#define PLANE_CHUNK 96     /* accumulators a chunk of output rows: > 78 */
#define PLANES_MIN_OUTPUTS 16
#define PLANES_S2_MIN_W 8 /* 3x3 stride 2: output rows at least this long */

/* Plane columns the outputs read: stride 1, the last step of two reads kw + 1 columns;
 * stride 2, the last output reads kw + 1, from 2 (Wo - 1). */
static int32_t plane_cols(const pc_conv_params_t *p)
{
    const int32_t wo = p->output.w;
    return p->stride_w == 1 ? ((wo + 1) & ~1) + p->kernel_w - 1 : 2 * wo + p->kernel_w - 1;
}

/* Values from one plane row to the next (0: the map is too wide): 20, 40 or 80 for 3x3, 20,
 * 40 or 56 for 5x5 (whose rows at 80 would leave a band of one row). */
static int32_t plane_pitch(const pc_conv_params_t *p)
{
    const int32_t cols = plane_cols(p);
    const int32_t widest = p->kernel_w == 3 ? 80 : 56;
    return cols <= 20 ? 20 : cols <= 40 ? 40 : cols <= widest ? widest : 0;
}

/* Input rows a band keeps for the next: kh - stride. */
static int32_t plane_carry(const pc_conv_params_t *p)
{
    return p->kernel_h - p->stride_h;
}

/* Output rows a band: its input rows, stride * band + carry, fill the planes. */
static int32_t plane_band(const pc_conv_params_t *p)
{
    return (PLANE_VALUES / 4 / plane_pitch(p) - plane_carry(p)) / p->stride_h;
}

static int planes_pay(const pc_conv_params_t *p)
{
    const int32_t k = p->kernel_w;
    const int32_t s = p->stride_w;
    return !PC_DW_PADDED_ALWAYS && (k == 3 || k == 5) && (s == 1 || s == 2) &&
           (k == 5 || s == 1 || p->output.w >= PLANES_S2_MIN_W) &&
           p->kernel_h == k && p->stride_h == s && p->input.c >= 4 && plane_pitch(p) > 0 &&
           plane_band(p) >= 1 && p->output.w <= p->input.w &&
           p->pad_top <= plane_carry(p) && /* in place: see above */
           p->output.h * p->output.w >= PLANES_MIN_OUTPUTS;
}

/* One channel's constants, as chan_prepare's for the widened rows but with each kernel row's
 * weights (w0 .. w[kw - 1], kw = 2n + 1) as the n pairs (w[2j], w[2j + 1]) that output A
 * takes, then the n crossed pairs (w[2j + 2], w[2j + 1]) against which SMLADX gives output B
 * its taps 2j + 1 and 2j + 2 (and whose low lane is A's last tap). */
PC_INLINE void plane_prepare_at(chan_t *k, const pc_conv_params_t *p,
                                const pc_per_channel_quant_t *q, const int8_t *filter,
                                const int32_t *bias, int32_t c, int32_t kw)
{
    const int32_t ch = p->input.c;
    const int32_t n = kw / 2;
    const int32_t lsh = chan_quant(k, p, q, bias, c, kw * kw);
    int32_t wsum = 0;
    PC_UNROLL(5)
    for (int32_t ky = 0; ky < kw; ky++) {
        const int8_t *f = filter + kw * ky * ch + c;
        uint32_t *w = k->w + 2 * n * ky;
        int32_t v[5]; /* the row's taps, each read once (kw <= 5), shifted */
        PC_UNROLL(5)
        for (int32_t kx = 0; kx < kw; kx++) {
            v[kx] = f[kx * ch];
            wsum += v[kx];
            v[kx] *= 1 << lsh;
        }
        PC_UNROLL(2)
        for (int32_t j = 0; j < n; j++) {
            w[j] = pc_pack16x2(v[2 * j], v[2 * j + 1]);
            w[n + j] = pc_pack16x2(v[2 * j + 2], v[2 * j + 1]);
        }
    }
    chan_finish(k, p, q, bias, c, wsum, lsh);
}

/* plane_prepare_at with kw a constant, its loops unrolled: a 5x5 channel in ~210 instructions
 * (from ~350 with a loop over the taps), paid once per channel and band. Not inlined into
 * planes_groups: 0.2 % fewer instructions in all (measured). */
PC_NOINLINE void plane_prepare(chan_t *k, const pc_conv_params_t *p,
                               const pc_per_channel_quant_t *q, const int8_t *filter,
                               const int32_t *bias, int32_t c)
{
    if (p->kernel_w == 5) {
        plane_prepare_at(k, p, q, filter, bias, c, 5);
    } else {
        plane_prepare_at(k, p, q, filter, bias, c, 3);
    }
}

/* The accumulators of `rows` output rows of wo outputs of a 3x3 at stride 1 or 2 (s2), two
 * a step (the section's comment gives each stride's taps); x: the first one's top-left tap
 * in a plane whose rows are `pitch` values apart (a constant). At stride 2, B's last tap is
 * the low lane of the crossed pair (w2, w1). */
PC_INLINE void plane_rows3_at(const chan_t *k, const int16_t *x, int32_t *acc, int32_t wo,
                              int32_t rows, int32_t pitch, int s2)
{
    const uint32_t a0 = k->w[0], b0 = k->w[1], a1 = k->w[2], b1 = k->w[3];
    const uint32_t a2 = k->w[4], b2 = k->w[5];
    const int32_t bias = k->bias;
    for (; rows > 0; rows--, x += (s2 ? 2 : 1) * pitch) {
        const uint32_t *xw = (const uint32_t *)(const void *)x;
        int32_t *const end = acc + (wo & ~1);
        uint32_t u, v;
        int32_t s, t;
        while (acc != end) {
            if (s2) {
                pc_load2_at(xw, 0, &u, &v);
                s = pc_smlabb(v, b0, pc_smlad(u, a0, bias));
                t = pc_smlabb(xw[2], b0, pc_smlad(v, a0, bias));
                pc_load2_at(xw, pitch / 2, &u, &v);
                s = pc_smlabb(v, b1, pc_smlad(u, a1, s));
                t = pc_smlabb(xw[pitch / 2 + 2], b1, pc_smlad(v, a1, t));
                pc_load2_at(xw, pitch, &u, &v);
                s = pc_smlabb(v, b2, pc_smlad(u, a2, s));
                t = pc_smlabb(xw[pitch + 2], b2, pc_smlad(v, a2, t));
                xw += 2;
            } else {
                pc_load2_at(xw, 0, &u, &v);
                s = pc_smlad(u, a0, bias);
                t = pc_smlatb(u, a0, bias);
                s = pc_smlabb(v, b0, s);
                t = pc_smladx(v, b0, t);
                pc_load2_at(xw, pitch / 2, &u, &v);
                s = pc_smlad(u, a1, s);
                t = pc_smlatb(u, a1, t);
                s = pc_smlabb(v, b1, s);
                t = pc_smladx(v, b1, t);
                pc_load2_at(xw, pitch, &u, &v);
                s = pc_smlad(u, a2, s);
                t = pc_smlatb(u, a2, t);
                s = pc_smlabb(v, b2, s);
                t = pc_smladx(v, b2, t);
                xw++;
            }
            acc[0] = s;
            acc[1] = t;
            acc += 2;
        }
        if (wo & 1) { /* the last, odd output */
            pc_load2_at(xw, 0, &u, &v);
            s = pc_smlabb(v, b0, pc_smlad(u, a0, bias));
            pc_load2_at(xw, pitch / 2, &u, &v);
            s = pc_smlabb(v, b1, pc_smlad(u, a1, s));
            pc_load2_at(xw, pitch, &u, &v);
            *acc++ = pc_smlabb(v, b2, pc_smlad(u, a2, s));
        }
    }
}

PC_INLINE void plane_rows_at(const chan_t *k, const int16_t *x, int32_t *acc, int32_t wo,
                             int32_t rows, int32_t pitch)
{
    plane_rows3_at(k, x, acc, wo, rows, pitch, 0);
}

PC_INLINE void plane_rows3s2_at(const chan_t *k, const int16_t *x, int32_t *acc, int32_t wo,
                                int32_t rows, int32_t pitch)
{
    plane_rows3_at(k, x, acc, wo, rows, pitch, 1);
}

typedef void (*plane_rows_fn_t)(const chan_t *k, const int16_t *x, int32_t *acc, int32_t wo,
                                int32_t rows);

/* Kernel `name`_`pitch`: the inline kernel `at` compiled for one pitch (its loads' offsets). */
#define PLANE_KERNEL(name, at, pitch)                                                          \
    PC_NOINLINE void name##_##pitch(const chan_t *k, const int16_t *x, int32_t *acc,          \
                                    int32_t wo, int32_t rows)                                 \
    {                                                                                          \
        at(k, x, acc, wo, rows, pitch);                                                        \
    }

#if defined(PC_DSP_EMULATE)
PLANE_KERNEL(plane_rows, plane_rows_at, 20)
PLANE_KERNEL(plane_rows, plane_rows_at, 40)
PLANE_KERNEL(plane_rows, plane_rows_at, 80)

PLANE_KERNEL(plane_rows3s2, plane_rows3s2_at, 20)
PLANE_KERNEL(plane_rows3s2, plane_rows3s2_at, 40)
PLANE_KERNEL(plane_rows3s2, plane_rows3s2_at, 80)
#else
/* The 3x3 kernels in assembly: the loop of plane_rows3_at needs fourteen registers (six
 * weight words, the bias, the taps' pointer, the accumulators and their end, two input
 * words, two sums), one more than gcc finds, and the first load's post-increment steps the
 * taps' pointer. Two output pairs a pass: 8.5 instructions an output at stride 1 (C: 10),
 * 10 at stride 2. Registers: r4 - r9 the weights (a0, b0, a1, b1, a2, b2), r10 the bias, r1
 * the taps, r2 the accumulators, r3 the pairs' end; r0, ip the input words; r11, lr the sums
 * s and t. The row's first tap and wo on the stack, rows above them (the fifth argument). */
#define PLANE3_PAIR_S1(pitch)                                                                  \
    "ldrd r0, ip, [r1], #4\n\t"                                                                \
    "smlad r11, r0, r4, r10\n\t"                                                               \
    "smlatb lr, r0, r4, r10\n\t"                                                               \
    "smlabb r11, ip, r5, r11\n\t"                                                              \
    "smladx lr, ip, r5, lr\n\t"                                                                \
    "ldrd r0, ip, [r1, #(2 * " #pitch " - 4)]\n\t"                                             \
    "smlad r11, r0, r6, r11\n\t"                                                               \
    "smlatb lr, r0, r6, lr\n\t"                                                                \
    "smlabb r11, ip, r7, r11\n\t"                                                              \
    "smladx lr, ip, r7, lr\n\t"                                                                \
    "ldrd r0, ip, [r1, #(4 * " #pitch " - 4)]\n\t"                                             \
    "smlad r11, r0, r8, r11\n\t"                                                               \
    "smlatb lr, r0, r8, lr\n\t"                                                                \
    "smlabb r11, ip, r9, r11\n\t"                                                              \
    "smladx lr, ip, r9, lr\n\t"                                                                \
    "strd r11, lr, [r2], #8\n\t"
/* Stride 2: A from (x0, x1) . (w0, w1) + x2 * w2, B from (x2, x3) . (w0, w1) + x4 * w2. */
#define PLANE3_PAIR_S2(pitch)                                                                  \
    "ldrd r0, ip, [r1], #8\n\t"                                                                \
    "smlad r11, r0, r4, r10\n\t"                                                               \
    "smlad lr, ip, r4, r10\n\t"                                                                \
    "smlabb r11, ip, r5, r11\n\t"                                                              \
    "ldr r0, [r1]\n\t"                                                                         \
    "smlabb lr, r0, r5, lr\n\t"                                                                \
    "ldrd r0, ip, [r1, #(2 * " #pitch " - 8)]\n\t"                                             \
    "smlad r11, r0, r6, r11\n\t"                                                               \
    "smlad lr, ip, r6, lr\n\t"                                                                 \
    "smlabb r11, ip, r7, r11\n\t"                                                              \
    "ldr r0, [r1, #(2 * " #pitch ")]\n\t"                                                      \
    "smlabb lr, r0, r7, lr\n\t"                                                                \
    "ldrd r0, ip, [r1, #(4 * " #pitch " - 8)]\n\t"                                             \
    "smlad r11, r0, r8, r11\n\t"                                                               \
    "smlad lr, ip, r8, lr\n\t"                                                                 \
    "smlabb r11, ip, r9, r11\n\t"                                                              \
    "ldr r0, [r1, #(4 * " #pitch ")]\n\t"                                                      \
    "smlabb lr, r0, r9, lr\n\t"                                                                \
    "strd r11, lr, [r2], #8\n\t"
/* A row's odd last output (either stride): A alone. */
#define PLANE3_ODD(pitch)                                                                      \
    "ldrd r0, ip, [r1]\n\t"                                                                    \
    "smlad r11, r0, r4, r10\n\t"                                                               \
    "smlabb r11, ip, r5, r11\n\t"                                                              \
    "ldrd r0, ip, [r1, #(2 * " #pitch ")]\n\t"                                                 \
    "smlad r11, r0, r6, r11\n\t"                                                               \
    "smlabb r11, ip, r7, r11\n\t"                                                              \
    "ldrd r0, ip, [r1, #(4 * " #pitch ")]\n\t"                                                 \
    "smlad r11, r0, r8, r11\n\t"                                                               \
    "smlabb r11, ip, r9, r11\n\t"                                                              \
    "str r11, [r2], #4\n\t"
/* name(k, x, acc, wo, rows): `pair` two outputs, `row_bytes` from one output row's taps to
 * the next's. An odd number of pairs enters the two-pair loop at its second half. */
#define PLANE3_RUN(name, pair, pitch, row_bytes)                                               \
    __attribute__((naked, noinline)) static void name(                                         \
        __attribute__((unused)) const chan_t *k, __attribute__((unused)) const int16_t *x,     \
        __attribute__((unused)) int32_t *acc, __attribute__((unused)) int32_t wo,              \
        __attribute__((unused)) int32_t rows)                                                  \
    {                                                                                          \
        __asm__("push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                              \
                "sub sp, sp, #8\n\t"                                                          \
                "ldr r10, [r0, #128]\n\t" /* offsetof(chan_t, bias) */                         \
                "ldm r0, {r4, r5, r6, r7, r8, r9}\n\t"                                        \
                "str r3, [sp, #4]\n"                                                          \
                "1:\n\t" /* a row */                                                         \
                "str r1, [sp]\n\t"                                                            \
                "ldr r0, [sp, #4]\n\t"                                                        \
                "lsrs ip, r0, #1\n\t"                                                         \
                "add r3, r2, ip, lsl #3\n\t"                                                  \
                "beq 4f\n\t"                                                                  \
                "tst ip, #1\n\t"                                                              \
                "bne 3f\n"                                                                    \
                "2:\n\t" pair(pitch) "3:\n\t" pair(pitch)                                      \
                "cmp r2, r3\n\t"                                                              \
                "bne 2b\n"                                                                    \
                "4:\n\t"                                                                      \
                "ldr r0, [sp, #4]\n\t"                                                        \
                "tst r0, #1\n\t"                                                              \
                "beq 5f\n\t" PLANE3_ODD(pitch) "5:\n\t"                                        \
                "ldr r1, [sp]\n\t"                                                            \
                "add r1, r1, #" #row_bytes "\n\t"                                             \
                "ldr r0, [sp, #44]\n\t"                                                       \
                "subs r0, r0, #1\n\t"                                                         \
                "str r0, [sp, #44]\n\t"                                                       \
                "bne 1b\n\t"                                                                  \
                "add sp, sp, #8\n\t"                                                          \
                "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}");                                 \
    }
PC_STATIC_ASSERT(offsetof(chan_t, bias) == 128, plane3_bias_offset);
PLANE3_RUN(plane_rows_20, PLANE3_PAIR_S1, 20, 40)
PLANE3_RUN(plane_rows_40, PLANE3_PAIR_S1, 40, 80)
PLANE3_RUN(plane_rows_80, PLANE3_PAIR_S1, 80, 160)
PLANE3_RUN(plane_rows3s2_20, PLANE3_PAIR_S2, 20, 80)
PLANE3_RUN(plane_rows3s2_40, PLANE3_PAIR_S2, 40, 160)
PLANE3_RUN(plane_rows3s2_80, PLANE3_PAIR_S2, 80, 320)
#undef PLANE3_RUN
#undef PLANE3_ODD
#undef PLANE3_PAIR_S2
#undef PLANE3_PAIR_S1
#endif

/* Kernel row ky of a 5x5 for outputs A (s) and B (t): (x0, x1) . (w0, w1) + (x2, x3) .
 * (w2, w3) + x4 * w4 and x1 * w0 + SMLADX of (x2, x3) and (x4, x5) against (w2, w1) and
 * (w4, w3). A macro, so the offsets stay the constants that pc_load2_at's LDRD takes. */
#define PLANE5_ROW(ky, pitch)                                                                  \
    do {                                                                                       \
        uint32_t u, v, z, w01, w23, x1, x2;                                                    \
        pc_load2_at(xw, (ky) * (pitch) / 2, &u, &v);                                           \
        z = xw[(ky) * (pitch) / 2 + 2];                                                        \
        pc_load2_at(k->w, 4 * (ky), &w01, &w23);                                               \
        pc_load2_at(k->w, 4 * (ky) + 2, &x1, &x2);                                             \
        s = pc_smlad(u, w01, s);                                                               \
        t = pc_smlatb(u, w01, t);                                                              \
        s = pc_smlad(v, w23, s);                                                               \
        t = pc_smladx(v, x1, t);                                                               \
        s = pc_smlabb(z, x2, s);                                                               \
        t = pc_smladx(z, x2, t);                                                               \
    } while (0)

/* Four 5x5 outputs a .. d into acc[0 .. 3], ROW (PLANE5_ROW4 or PLANE5S2_ROW4) giving each
 * kernel row's taps. */
#define PLANE5_STEP4(ROW, pitch)                                                               \
    do {                                                                                       \
        int32_t a = k->bias, b = a, c = a, d = a;                                              \
        ROW(0, pitch);                                                                         \
        ROW(1, pitch);                                                                         \
        ROW(2, pitch);                                                                         \
        ROW(3, pitch);                                                                         \
        ROW(4, pitch);                                                                         \
        acc[0] = a;                                                                            \
        acc[1] = b;                                                                            \
        acc[2] = c;                                                                            \
        acc[3] = d;                                                                            \
    } while (0)

/* Kernel row ky of a 5x5 for one output a: (x0, x1) . (w0, w1) + (x2, x3) . (w2, w3) + x4 * w4. */
#define PLANE5_ROW1(ky, pitch)                                                                 \
    do {                                                                                       \
        uint32_t u, v, w01, w23;                                                               \
        pc_load2_at(xw, (ky) * (pitch) / 2, &u, &v);                                           \
        pc_load2_at(k->w, 4 * (ky), &w01, &w23);                                               \
        a = pc_smlad(u, w01, a);                                                               \
        a = pc_smlad(v, w23, a);                                                               \
        a = pc_smlabb(xw[(ky) * (pitch) / 2 + 2], k->w[4 * (ky) + 3], a);                      \
    } while (0)

/* One 5x5 output from its top-left tap xw: a row's odd last output at stride 1, and the
 * outputs past the four-output steps at stride 2. */
PC_INLINE int32_t plane5_one(const chan_t *k, const uint32_t *xw, int32_t pitch)
{
    int32_t a = k->bias;
    PLANE5_ROW1(0, pitch);
    PLANE5_ROW1(1, pitch);
    PLANE5_ROW1(2, pitch);
    PLANE5_ROW1(3, pitch);
    PLANE5_ROW1(4, pitch);
    return a;
}

/* Kernel row ky of a 5x5 for four outputs A, B, C, D (a .. d): two LDRD of inputs (x0 .. x7)
 * and two of weights, 12 MAC instructions for 20 taps. */
#define PLANE5_ROW4(ky, pitch)                                                                 \
    do {                                                                                       \
        uint32_t p0, p1, p2, p3, w01, w23, x1, x2;                                             \
        pc_load2_at(k->w, 4 * (ky), &w01, &w23);                                               \
        pc_load2_at(xw, (ky) * (pitch) / 2, &p0, &p1);                                         \
        a = pc_smlad(p0, w01, a);                                                              \
        b = pc_smlatb(p0, w01, b);                                                             \
        c = pc_smlad(p1, w01, c);                                                              \
        d = pc_smlatb(p1, w01, d);                                                             \
        a = pc_smlad(p1, w23, a);                                                              \
        pc_load2_at(xw, (ky) * (pitch) / 2 + 2, &p2, &p3);                                     \
        c = pc_smlad(p2, w23, c);                                                              \
        pc_load2_at(k->w, 4 * (ky) + 2, &x1, &x2);                                             \
        b = pc_smladx(p1, x1, b);                                                              \
        d = pc_smladx(p2, x1, d);                                                              \
        a = pc_smlabb(p2, x2, a);                                                              \
        b = pc_smladx(p2, x2, b);                                                              \
        c = pc_smlabb(p3, x2, c);                                                              \
        d = pc_smladx(p3, x2, d);                                                              \
    } while (0)

/* plane_rows_at for 5x5, four outputs a step, then two, then one: the weights (20 words) are
 * loaded per kernel row, two LDRD, and serve all outputs of the step. (A four-output step for
 * 3x3, which would then load its weights per row too, measured no faster than two.) */
PC_INLINE void plane_rows5_at(const chan_t *k, const int16_t *x, int32_t *acc, int32_t wo,
                              int32_t rows, int32_t pitch)
{
    for (; rows > 0; rows--, x += pitch) {
        const uint32_t *xw = (const uint32_t *)(const void *)x;
        int32_t *const end = acc + (wo & ~1);
        int32_t s, t;
        for (; end - acc >= 4; acc += 4, xw += 2) {
            PLANE5_STEP4(PLANE5_ROW4, pitch);
        }
        if (acc != end) { /* two left */
            s = k->bias;
            t = s;
            PLANE5_ROW(0, pitch);
            PLANE5_ROW(1, pitch);
            PLANE5_ROW(2, pitch);
            PLANE5_ROW(3, pitch);
            PLANE5_ROW(4, pitch);
            acc[0] = s;
            acc[1] = t;
            acc += 2;
            xw++;
        }
        if (wo & 1) { /* the last, odd output */
            *acc++ = plane5_one(k, xw, pitch);
        }
    }
}

PLANE_KERNEL(plane_rows5, plane_rows5_at, 20)
PLANE_KERNEL(plane_rows5, plane_rows5_at, 40)
PLANE_KERNEL(plane_rows5, plane_rows5_at, 56)

/* Kernel row ky of a 5x5, stride 2, for four outputs a .. d (A's taps from x0, B's from x2,
 * ..): three LDRD of inputs (x0 .. x11), an LDRD and an LDR of weights, 12 MAC instructions
 * for 20 taps: (x0, x1) . (w0, w1) + (x2, x3) . (w2, w3) + x4 * w4 for A, and so on. */
#define PLANE5S2_ROW4(ky, pitch)                                                               \
    do {                                                                                       \
        uint32_t p0, p1, p2, p3, w01, w23;                                                     \
        const uint32_t w4 = k->w[4 * (ky) + 3];                                                \
        pc_load2_at(k->w, 4 * (ky), &w01, &w23);                                               \
        pc_load2_at(xw, (ky) * (pitch) / 2, &p0, &p1);                                         \
        a = pc_smlad(p0, w01, a);                                                              \
        a = pc_smlad(p1, w23, a);                                                              \
        b = pc_smlad(p1, w01, b);                                                              \
        pc_load2_at(xw, (ky) * (pitch) / 2 + 2, &p2, &p3);                                     \
        a = pc_smlabb(p2, w4, a);                                                              \
        b = pc_smlad(p2, w23, b);                                                              \
        b = pc_smlabb(p3, w4, b);                                                              \
        c = pc_smlad(p2, w01, c);                                                              \
        c = pc_smlad(p3, w23, c);                                                              \
        d = pc_smlad(p3, w01, d);                                                              \
        pc_load2_at(xw, (ky) * (pitch) / 2 + 4, &p0, &p1);                                     \
        c = pc_smlabb(p0, w4, c);                                                              \
        d = pc_smlad(p0, w23, d);                                                              \
        d = pc_smlabb(p1, w4, d);                                                              \
    } while (0)

/* plane_rows5_at for stride 2: four outputs a step, then one at a time; x: the first
 * output's top-left tap, output rows two plane rows apart. */
PC_INLINE void plane_rows5s2_at(const chan_t *k, const int16_t *x, int32_t *acc, int32_t wo,
                                int32_t rows, int32_t pitch)
{
    for (; rows > 0; rows--, x += 2 * pitch) {
        const uint32_t *xw = (const uint32_t *)(const void *)x;
        int32_t *const end = acc + wo;
        for (; end - acc >= 4; acc += 4, xw += 4) {
            PLANE5_STEP4(PLANE5S2_ROW4, pitch);
        }
        for (; acc != end; acc++, xw++) {
            *acc = plane5_one(k, xw, pitch);
        }
    }
}

PLANE_KERNEL(plane_rows5s2, plane_rows5s2_at, 20)
PLANE_KERNEL(plane_rows5s2, plane_rows5s2_at, 40)
PLANE_KERNEL(plane_rows5s2, plane_rows5s2_at, 56)

/* The kernel for the layer's kernel size and plane pitch (planes_pay has checked both). */
static plane_rows_fn_t plane_rows_kernel(const pc_conv_params_t *p)
{
    const int32_t pitch = plane_pitch(p);
    if (p->kernel_w == 5 && p->stride_w == 2) {
        return pitch == 20 ? plane_rows5s2_20 : pitch == 40 ? plane_rows5s2_40 : plane_rows5s2_56;
    }
    if (p->kernel_w == 5) {
        return pitch == 20 ? plane_rows5_20 : pitch == 40 ? plane_rows5_40 : plane_rows5_56;
    }
    if (p->stride_w == 2) {
        return pitch == 20 ? plane_rows3s2_20 : pitch == 40 ? plane_rows3s2_40 : plane_rows3s2_80;
    }
    return pitch == 20 ? plane_rows_20 : pitch == 40 ? plane_rows_40 : plane_rows_80;
}

/* Input pixel x's channels c..c + 3 to column 0 of the four planes (plane i: channel c + i;
 * `size`: values a plane). */
PC_INLINE void plane_pixel(int16_t *dst, const int8_t *x, int32_t size)
{
    const uint32_t v = pc_read_u32(x);
    const uint32_t e = pc_sxtb16(v);
    const uint32_t o = pc_sxtb16_ror8(v);
    dst[0] = (int16_t)pc_lo16(e);
    dst[size] = (int16_t)pc_lo16(o);
    dst[2 * size] = (int16_t)pc_hi16(e);
    dst[3 * size] = (int16_t)pc_hi16(o);
}

/* Values [x0, x1) of a row of each of the four planes to pad. */
static void plane_pad(int16_t *row, int32_t size, int32_t x0, int32_t x1, int16_t pad)
{
    for (int16_t *d = row + x0; d < row + x1; d++) {
        d[0] = pad;
        d[size] = pad;
        d[2 * size] = pad;
        d[3 * size] = pad;
    }
}

/* n values (a multiple of 4) from src to dst, below it, forward, so the two may overlap (a
 * 5x5 stride-2 band of two output rows carries three input rows): in assembly, eight words
 * a step with LDM / STM (each block read whole before it is written), then word pairs;
 * newlib's memmove took 60 % longer than a C loop of word pairs, which took ~4 times this. */
#if defined(PC_DSP_EMULATE)
static void plane_rows_up(int16_t *dst, const int16_t *src, int32_t n)
{
    uint32_t *d = (uint32_t *)(void *)dst;
    const uint32_t *s = (const uint32_t *)(const void *)src;
    uint32_t *const end = d + n / 2;
    while (d != end) {
        uint32_t x, y;
        pc_load2_inc(&s, &x, &y);
        pc_store2_inc(&d, x, y);
    }
}
#else
__attribute__((naked, noinline)) static void plane_rows_up(
    __attribute__((unused)) int16_t *dst, __attribute__((unused)) const int16_t *src,
    __attribute__((unused)) int32_t n)
{
    __asm__("push {r4, r5, r6, r7, r8, r9}\n\t"
            "subs r2, r2, #16\n\t"
            "blo 2f\n"
            "1:\n\t"
            "ldm r1!, {r3, r4, r5, r6, r7, r8, r9, ip}\n\t"
            "stm r0!, {r3, r4, r5, r6, r7, r8, r9, ip}\n\t"
            "subs r2, r2, #16\n\t"
            "bhs 1b\n"
            "2:\n\t"
            "adds r2, r2, #16\n\t"
            "beq 4f\n"
            "3:\n\t"
            "ldrd r3, r4, [r1], #8\n\t"
            "strd r3, r4, [r0], #8\n\t"
            "subs r2, r2, #4\n\t"
            "bne 3b\n"
            "4:\n\t"
            "pop {r4, r5, r6, r7, r8, r9}\n\t"
            "bx lr");
}
#endif

/* Everything about the planes of a layer that does not change from group to group. */
typedef struct {
    int32_t pitch, size; /* values from row to row, values a plane */
    int32_t band;        /* output rows a band */
    int32_t cols;        /* plane columns the outputs read */
    int32_t x0, w;       /* the image's columns [0, w) sit at plane columns [x0, x0 + w) */
    int16_t pad;         /* the zero point */
    int padded;          /* the rows outside the image are padded already */
} planes_t;

/* Pixels x, x + ch (channels c..c + 3 each) into one word of each of the four planes at dst
 * (plane i: channel c + i, `size` values apart): their SXTB16 pairs packed with PKHBT /
 * PKHTB. */
PC_INLINE void plane_pair(int16_t *dst, const int8_t *x, int32_t ch, int32_t size)
{
    const uint32_t v0 = pc_read_u32(x);
    const uint32_t v1 = pc_read_u32(x + ch);
    const uint32_t e0 = pc_sxtb16(v0), e1 = pc_sxtb16(v1);
    const uint32_t o0 = pc_sxtb16_ror8(v0), o1 = pc_sxtb16_ror8(v1);
    uint32_t *d = (uint32_t *)(void *)dst;
    d[0] = pc_pack16x2((int32_t)e0, (int32_t)e1);
    d[size / 2] = pc_pack16x2((int32_t)o0, (int32_t)o1);
    d[size] = pc_pack16x2_top(e0, e1);
    d[3 * size / 2] = pc_pack16x2_top(o0, o1);
}

/* `quads` runs of four pixels from x (`ch` bytes apart) into the four planes at dst (a word
 * boundary; plane i PLANE_VALUES / 4 values after plane i - 1): in assembly, two words of
 * each plane a step with STRD, 28 instructions for 16 values where the C pairs took 34. */
#if defined(PC_DSP_EMULATE)
PC_NOINLINE void plane_quads(int16_t *dst, const int8_t *x, int32_t quads, int32_t ch)
{
    for (; quads > 0; quads--, dst += 4, x += 4 * ch) {
        plane_pair(dst, x, ch, PLANE_VALUES / 4);
        plane_pair(dst + 2, x + 2 * ch, ch, PLANE_VALUES / 4);
    }
}
#else
/* Pixels x, y (registers holding four channels each) into their plane words: o the (x, y)
 * pair of plane 0, t of plane 1, u of plane 2, y of plane 3 (x is clobbered). */
#define PLANE_PAIR_ASM(x, y, t, u, o)                                                          \
    "sxtb16 " t ", " x "\n\t"          /* x0, x2 */                                            \
    "sxtb16 " x ", " x ", ror #8\n\t"  /* x1, x3 */                                            \
    "sxtb16 " u ", " y "\n\t"                                                                   \
    "sxtb16 " y ", " y ", ror #8\n\t"                                                           \
    "pkhbt " o ", " t ", " u ", lsl #16\n\t" /* x0, y0 */                                       \
    "pkhtb " u ", " u ", " t ", asr #16\n\t" /* x2, y2 */                                       \
    "pkhbt " t ", " x ", " y ", lsl #16\n\t" /* x1, y1 */                                       \
    "pkhtb " y ", " y ", " x ", asr #16\n\t" /* x3, y3 */
/* r0 planes 0 and 1, r9 planes 2 and 3 (their words at +0 and +800 bytes); r1 the pixels, r3
 * ch, r2 the runs left; r4 - r7 pixels a - d, then with r8, r10, r11, ip, lr the packed
 * words. */
__attribute__((naked, noinline)) static void plane_quads(
    __attribute__((unused)) int16_t *dst, __attribute__((unused)) const int8_t *x,
    __attribute__((unused)) int32_t quads, __attribute__((unused)) int32_t ch)
{
    __asm__("push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
            "add r9, r0, #1600\n"
            "1:\n\t"
            "ldr r4, [r1]\n\t" /* pixels a, b, c, d */
            "ldr r5, [r1, r3]\n\t"
            "add r1, r1, r3, lsl #1\n\t"
            "ldr r6, [r1]\n\t"
            "ldr r7, [r1, r3]\n\t"
            "add r1, r1, r3, lsl #1\n\t"
            PLANE_PAIR_ASM("r4", "r5", "r8", "r10", "r11")
            PLANE_PAIR_ASM("r6", "r7", "r4", "ip", "lr")
            "strd r8, r4, [r0, #800]\n\t"
            "strd r11, lr, [r0], #8\n\t"
            "strd r5, r7, [r9, #800]\n\t"
            "strd r10, ip, [r9], #8\n\t"
            "subs r2, r2, #1\n\t"
            "bne 1b\n\t"
            "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}");
}
#undef PLANE_PAIR_ASM
PC_STATIC_ASSERT(PLANE_VALUES == 1600, plane_quads_offsets);
#endif

/* Input row iy of channels c..c + 3 into row `row` of the four planes: the image's columns
 * four pixels a step (plane_quads), then a pair and a pixel, or the zero point for a row
 * above or below the image (unless g->padded: one band, whose rows outside the image were
 * padded once for every group). */
PC_INLINE void plane_row(const planes_t *g, const pc_conv_params_t *p, const int8_t *input,
                         int32_t c, int32_t iy, int16_t *row)
{
    const int32_t ch = p->input.c;
    const int32_t size = g->size;
    const int8_t *src = input + iy * p->input.w * ch + c;
    int16_t *dst = row + g->x0;
    int16_t *const end = dst + g->w;
    int32_t quads;
    if (iy < 0 || iy >= p->input.h) {
        if (!g->padded) {
            plane_pad(row, size, g->x0, g->x0 + g->w, g->pad);
        }
        return;
    }
    if (g->x0 & 1 && dst != end) { /* from here on, word-aligned pairs */
        plane_pixel(dst++, src, size);
        src += ch;
    }
    quads = (int32_t)(end - dst) / 4;
    if (quads > 0) {
        plane_quads(dst, src, quads, ch);
        dst += 4 * quads;
        src += 4 * quads * ch;
    }
    if (end - dst >= 2) {
        plane_pair(dst, src, ch, size);
        dst += 2;
        src += 2 * ch;
    }
    if (dst != end) {
        plane_pixel(dst, src, size);
    }
}

/* Every group of four channels (the rest are left to the caller: returns the first); output
 * may be the input itself (see above). */
PC_NOINLINE int32_t planes_groups(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                                  const int8_t *input, const int8_t *filter,
                                  const int32_t *bias, int8_t *output)
{
    union {
        int16_t v[PLANE_VALUES];
        uint32_t align; /* LDRD */
    } planes;
    int32_t acc[PLANE_CHUNK];
    chan_t k;
    planes_t g;
    const int32_t ch = p->input.c;
    const int32_t ho = p->output.h;
    const int32_t wo = p->output.w;
    const int32_t out_w = pc_output_stride(p);
    const int32_t block = PLANE_CHUNK / wo; /* output rows a chunk */
    const int32_t sh = p->stride_h;
    const int32_t carry = plane_carry(p);
    const plane_rows_fn_t rows_fn = plane_rows_kernel(p);
    int32_t c = 0;
    g.pitch = plane_pitch(p);
    g.size = PLANE_VALUES / 4;
    g.band = plane_band(p);
    g.cols = plane_cols(p);
    g.x0 = p->pad_left;
    g.w = p->input.w < g.cols - g.x0 ? p->input.w : g.cols - g.x0;
    g.pad = (int16_t)-p->input_offset;
    g.padded = ho <= g.band;
    for (int32_t r = 0; r < sh * g.band + carry && r < sh * ho + carry; r++) {
        int16_t *row = planes.v + r * g.pitch;
        const int32_t iy = r - p->pad_top;
        plane_pad(row, g.size, 0, g.x0, g.pad); /* the columns beside the image */
        plane_pad(row, g.size, g.x0 + g.w, g.cols, g.pad);
        if (g.padded && (iy < 0 || iy >= p->input.h)) { /* one band: its rows outside */
            plane_pad(row, g.size, g.x0, g.x0 + g.w, g.pad);
        }
    }
    for (; c + 4 <= ch; c += 4) {
        for (int32_t o0 = 0; o0 < ho; o0 += g.band) {
            const int32_t rows = ho - o0 < g.band ? ho - o0 : g.band; /* output rows */
            const int32_t iy0 = sh * o0 - p->pad_top; /* the input row of plane row 0 */
            int32_t r = 0;
            if (o0 > 0) { /* the previous band's last `carry` rows: now the first */
                for (int32_t i = 0; i < 4; i++) {
                    int16_t *plane = planes.v + i * g.size;
                    plane_rows_up(plane, plane + sh * g.band * g.pitch, carry * g.pitch);
                }
                r = carry;
            }
            for (; r < sh * rows + carry; r++) {
                plane_row(&g, p, input, c, iy0 + r, planes.v + r * g.pitch);
            }
            for (int32_t i = 0; i < 4; i++) {
                const int16_t *plane = planes.v + i * g.size;
                plane_prepare(&k, p, q, filter, bias, c + i);
                for (int32_t oy = 0; oy < rows; oy += block) {
                    const int32_t n = rows - oy < block ? rows - oy : block;
                    int8_t *out = output + (o0 + oy) * out_w * ch + c + i;
                    rows_fn(&k, plane + sh * oy * g.pitch, acc, wo, n);
                    if (out_w == wo) { /* contiguous in the output */
                        store_outputs(&k, acc, n * wo, out);
                    } else {
                        for (int32_t j = 0; j < n; j++) {
                            store_outputs(&k, acc + j * wo, wo, out + j * out_w * ch);
                        }
                    }
                }
            }
        }
    }
    return c;
}

/* In place, output row o lands on the flat pixels [o * Wo, (o + 1) * Wo) of the input: every
 * input row under it must have been widened by then (true for "same" and "valid" padding). */
static int in_place_rows_ok(const pc_conv_params_t *p)
{
    if (plane_fits(p)) {
        return 1; /* the whole plane is widened first */
    }
    for (int32_t o = 0; o < p->output.h; o++) {
        int32_t widened = o * p->stride_h - p->pad_top + p->kernel_h - 1;
        int32_t landing = ((o + 1) * p->output.w - 1) / p->input.w;
        widened = widened > p->input.h - 1 ? p->input.h - 1 : widened;
        landing = landing > p->input.h - 1 ? p->input.h - 1 : landing;
        if (landing > widened) {
            return 0;
        }
    }
    return 1;
}

void pc_depthwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                            const int8_t *input, const int8_t *filter, const int32_t *bias,
                            int8_t *output)
{
    const int32_t ch = p->input.c;
    const int32_t out_w = pc_output_stride(p);
    int32_t ox_in0, ox_in1;
    int32_t c = 0;
    group_t g;
    if (covered_pays(p) || planes_pay(p) || padded_pays(p)) {
        c = covered_pays(p) ? covered_groups(p, q, input, filter, bias, output)
            : planes_pay(p) ? planes_groups(p, q, input, filter, bias, output)
                            : padded_groups(p, q, input, filter, bias, output);
        if (c < ch) {
            depthwise_scalar(p, q, input, filter, bias, output, c);
        }
        return;
    }
    if (rows_fit(p)) {
        rows_layer(p, q, input, filter, bias, output);
        return;
    }
    inside_columns(p, &ox_in0, &ox_in1);
    if (p->kernel_h * p->kernel_w <= DW_MAX_TAPS) {
        for (; c + 4 <= ch; c += 4) {
            group_prepare(&g, p, q, filter, bias, c);
            for (int32_t oy = 0; oy < p->output.h; oy++) {
                group_row(&g, p, input, c, oy, ox_in0, ox_in1, output + oy * out_w * ch + c,
                          0);
            }
        }
    }
    if (c < ch) {
        depthwise_scalar(p, q, input, filter, bias, output, c);
    }
}

#else /* portable C: the loops of depthwise_scalar, kept apart (sharing the function costs
       * the portable build ~20%: worse register allocation) */

void pc_depthwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                            const int8_t *input, const int8_t *filter, const int32_t *bias,
                            int8_t *output)
{
    const int32_t ch = p->input.c;
    const int32_t kh = p->kernel_h;
    const int32_t kw = p->kernel_w;
    const int32_t row = p->input.w * ch; /* bytes per input row */
    const int32_t off = p->input_offset;
    const int32_t out_off = p->output_offset;
    const int32_t lo = p->act_min;
    const int32_t hi = p->act_max;
    const int32_t skip = (pc_output_stride(p) - p->output.w) * ch; /* a row's end */
    for (int32_t oy = 0; oy < p->output.h; oy++, output += skip) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = p->input.h - iy0 < kh ? p->input.h - iy0 : kh;
        for (int32_t ox = 0; ox < p->output.w; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t kx1 = p->input.w - ix0 < kw ? p->input.w - ix0 : kw;
            const int32_t taps_x = kx1 - kx0;
            /* first tap inside the image, for channel 0 */
            const int8_t *x_base = input + (iy0 + ky0) * row + (ix0 + kx0) * ch;
            const int8_t *w_base = filter + (ky0 * kw + kx0) * ch;
            int32_t c = 0;
            for (; c < ch; c++) {
                int32_t acc = bias[c];
                const int8_t *xr = x_base + c;
                const int8_t *wr = w_base + c;
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t n = 0; n < taps_x; n++) {
                        acc += (xr[n * ch] + off) * wr[n * ch];
                    }
                    xr += row;
                    wr += kw * ch;
                }
                output[c] = PC_REQUANTIZE_S8(acc, q->multiplier[c], q->shift[c], out_off, lo, hi);
            }
            output += ch;
        }
    }
}

#endif /* PC_USE_DSP */

/* ---- in place ------------------------------------------------------------------------------
 * The output is written over the input (pc_kernels.h). Output pixel p lands on the bytes of
 * input pixel p, and channel c on channel c, so a pass over a group of channels only ever
 * overwrites that group's own input. Within a pass, output row o may be stored once every
 * output row that reads an input row under it has been computed (ready_row(o)); before that
 * it waits in the ring. Rows become ready in order, so the rows waiting at one time are
 * consecutive and row o has ring slot o % rows. */

/* The last output row whose window covers input row r (-1: none reads it). */
static int32_t last_reader(const pc_conv_params_t *p, int32_t r)
{
    int32_t o = (r + p->pad_top) / p->stride_h;
    if (o > p->output.h - 1) {
        o = p->output.h - 1;
    }
    return o * p->stride_h - p->pad_top + p->kernel_h - 1 >= r ? o : -1;
}

/* After which output row row o may be stored: the last reader of the input rows it lands on
 * (below o: at once, straight to its place). Readers grow with the row, so that is the
 * reader of the lowest of those rows that some window covers. */
static int32_t ready_row(const pc_conv_params_t *p, int32_t o)
{
    const int32_t w = p->input.w;
    const int32_t wo = p->output.w;
    const int32_t r0 = o * wo / w;
    int32_t r = ((o + 1) * wo - 1) / w;
    if (r > p->input.h - 1) {
        r = p->input.h - 1;
    }
    for (; r >= r0; r--) {
        const int32_t last = last_reader(p, r);
        if (last >= 0) {
            return last;
        }
    }
    return -1;
}

int32_t pc_depthwise_in_place_rows(const pc_conv_params_t *p)
{
    int32_t rows = 0;
    int32_t waiting = 0;
    int32_t head = 0; /* the oldest row not yet stored */
    for (int32_t o = 0; o < p->output.h; o++) {
        if (ready_row(p, o) >= o) {
            waiting++;
        }
        rows = waiting > rows ? waiting : rows;
        for (; head <= o; head++) {
            const int32_t ready = ready_row(p, head);
            if (ready >= head && ready > o) {
                break;
            }
            if (ready >= head) {
                waiting--;
            }
        }
    }
    return rows;
}

int32_t pc_depthwise_conv2d_s8_in_place_get_buffer_size(const pc_conv_params_t *p)
{
    return PC_DEPTHWISE_CONV2D_S8_IN_PLACE_BUFFER_SIZE(pc_depthwise_in_place_rows(p),
                                                       p->output.w, p->output.c);
}

/* Output row oy of channels [c0, c0 + n) in plain C; out: the row's first pixel, channel c0;
 * out_step: bytes between its pixels. */
static void row_scalar(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                       const int8_t *input, const int8_t *filter, const int32_t *bias,
                       int32_t oy, int32_t c0, int32_t n, int8_t *out, int32_t out_step)
{
    const int32_t ch = p->input.c;
    const int32_t kh = p->kernel_h;
    const int32_t kw = p->kernel_w;
    const int32_t row = p->input.w * ch;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
    const int32_t ky1 = p->input.h - iy0 < kh ? p->input.h - iy0 : kh;
    for (int32_t ox = 0; ox < p->output.w; ox++) {
        const int32_t ix0 = ox * p->stride_w - p->pad_left;
        const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
        const int32_t kx1 = p->input.w - ix0 < kw ? p->input.w - ix0 : kw;
        const int8_t *x_base = input + (iy0 + ky0) * row + (ix0 + kx0) * ch;
        const int8_t *w_base = filter + (ky0 * kw + kx0) * ch;
        for (int32_t c = c0; c < c0 + n; c++) {
            int32_t acc = bias[c];
            const int8_t *xr = x_base + c;
            const int8_t *wr = w_base + c;
            for (int32_t ky = ky0; ky < ky1; ky++) {
                for (int32_t k = 0; k < kx1 - kx0; k++) {
                    acc += (xr[k * ch] + p->input_offset) * wr[k * ch];
                }
                xr += row;
                wr += kw * ch;
            }
            out[c - c0] = PC_REQUANTIZE_S8(acc, q->multiplier[c], q->shift[c], p->output_offset,
                                           p->act_min, p->act_max);
        }
        out += out_step;
    }
}

/* Ring row `slot` (Wo pixels of n channels) to output row o, channels [c, c + n). */
static void store_row(const pc_conv_params_t *p, const int8_t *slot, int8_t *data, int32_t o,
                      int32_t c, int32_t n)
{
    const int32_t ch = p->output.c;
    const int32_t wo = p->output.w;
    int8_t *dst = data + o * wo * ch + c;
    if (n == PC_DEPTHWISE_IN_PLACE_GROUP) {
        for (int32_t x = 0; x < wo; x++) {
            memcpy(dst + x * ch, slot + x * PC_DEPTHWISE_IN_PLACE_GROUP,
                   PC_DEPTHWISE_IN_PLACE_GROUP);
        }
        return;
    }
    for (int32_t x = 0; x < wo; x++) {
        for (int32_t k = 0; k < n; k++) {
            dst[x * ch + k] = slot[x * n + k];
        }
    }
}

void pc_depthwise_conv2d_s8_in_place(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                                     int8_t *data, const int8_t *filter, const int32_t *bias,
                                     int8_t *scratch)
{
    const int32_t ch = p->input.c;
    const int32_t wo = p->output.w;
    const int32_t rows = pc_depthwise_in_place_rows(p);
    int32_t c0 = 0; /* the first channel left to the ring */
#if PC_USE_DSP
    const int fast = p->kernel_h * p->kernel_w <= DW_MAX_TAPS;
    int32_t ox_in0, ox_in1;
    group_t g;
    inside_columns(p, &ox_in0, &ox_in1);
#endif
#if PC_USE_DSP
    if (covered_pays(p)) { /* each group's copy holds all it reads */
        c0 = covered_groups(p, q, data, filter, bias, data);
    } else if (planes_pay(p)) { /* the same */
        c0 = planes_groups(p, q, data, filter, bias, data);
    } else if (padded_pays(p)) { /* the same */
        c0 = padded_groups(p, q, data, filter, bias, data);
    } else if (rows_fit(p) && in_place_rows_ok(p)) { /* the ring holds the rows still read */
        rows_layer(p, q, data, filter, bias, data);
        return;
    }
#endif
    for (int32_t c = c0; c < ch; c += PC_DEPTHWISE_IN_PLACE_GROUP) {
        const int32_t n = ch - c < PC_DEPTHWISE_IN_PLACE_GROUP ? ch - c
                                                                : PC_DEPTHWISE_IN_PLACE_GROUP;
        int32_t head = 0;       /* the oldest row not yet stored */
        int32_t head_ready = 0; /* its ready_row */
#if PC_USE_DSP
        if (fast && n == 4) {
            group_prepare(&g, p, q, filter, bias, c);
        }
#endif
        for (int32_t o = 0; o < p->output.h; o++) {
            const int32_t ready = ready_row(p, o);
            const int ring = ready >= o; /* else straight to its place */
            int8_t *out = ring ? scratch + (o % rows) * wo * n : data + o * wo * ch + c;
            if (head == o) {
                head_ready = ready;
            }
#if PC_USE_DSP
            if (fast && n == 4 && ring) {
                group_row(&g, p, data, c, o, ox_in0, ox_in1, out, 1);
            } else if (fast && n == 4) {
                group_row(&g, p, data, c, o, ox_in0, ox_in1, out, 0);
            } else
#endif
            {
                row_scalar(p, q, data, filter, bias, o, c, n, out, ring ? n : ch);
            }
            /* store the waiting rows whose input rows no later output row reads */
            while (head <= o && (head_ready < head || head_ready <= o)) {
                if (head_ready >= head) {
                    store_row(p, scratch + (head % rows) * wo * n, data, head, c, n);
                }
                head++;
                head_ready = head == o ? ready : head < o ? ready_row(p, head) : 0;
            }
        }
    }
}
