/* pc_conv.c - conv2d (any kernel) and pointwise (1x1) conv, int8.
 *
 * DSP path (CMSIS-NN's arm_nn_mat_mult_kernel_s8_s16 scheme): the input patch of two output
 * pixels is widened to int16 with the input offset added ("im2col"), in the order SXTB16
 * leaves the filter bytes in (x0 x2 x1 x3 per group of four), so the inner loop per four
 * input channels is: 2 filter loads, 4 SXTB16, 4 column loads, 8 SMLAD for 16 MACs
 * (2 output channels x 2 pixels). Convs with patches of <= 64 values (such as the RGB first
 * layer) keep the two pixels' columns interleaved so one LDRD fetches both (see widen_pair).
 * Pointwise convs by their input channels K: K = 8 one pixel against every output channel
 * (pointwise_k8); 16 to 64 by 8, and 96, two channels of four pixels from weights widened
 * once (pointwise_narrow); past 96, the same from the compiler's pair records where it wrote
 * them (pointwise_records); other multiples of 8 up to 192, six pixels of one channel
 * (pw6_run); the rest up to 384 four pixels of one channel (pw4_run where K % 8 == 0, else
 * mat_mult_pw4); wider ones, and the last pixels of a run, the 2x2 blocks. The hottest
 * loops are assembly functions, each taking all fourteen registers with LDM loads of four
 * words and more.
 * When the activation range is all of int8 (no ReLU clamp narrower than SSAT's, the usual
 * case), the packed act_min / act_max clamp is left out (a compile-time variant). The
 * portable path is direct loops.
 */
#include "pc_kernels.h"

#include "pc_dsp.h"
#include "pc_requant.h"

const char *pc_kernels_variant(void)
{
#if PC_USE_DSP && defined(PC_DSP_EMULATE)
    return "dsp-emulated";
#elif PC_USE_DSP
    return "dsp";
#else
    return "portable";
#endif
}

int32_t pc_conv2d_s8_get_buffer_size(const pc_conv_params_t *p)
{
    return PC_CONV2D_S8_BUFFER_SIZE(p->kernel_h, p->kernel_w, p->input.c);
}

int32_t pc_pointwise_conv2d_s8_get_buffer_size(const pc_conv_params_t *p)
{
    return PC_POINTWISE_CONV2D_S8_BUFFER_SIZE(p->input.c);
}

/* ---- pair records --------------------------------------------------------------------------
 * A pointwise layer's weights may come widened by the compiler (pc_conv_params_t.pair_records;
 * patchcam/compiler/records.py): per pair of output channels, a record of the four
 * accumulators' start (2 * bias: c0, c0, c1, c1), then per group of four input channels the
 * doubled int16 pairs (c0's k0, k2), (c1's k0, k2), (c0's k1, k3), (c1's k1, k3), then each
 * channel's requantisation constants (pc_rq_t's mult, rnd, rsh: c0's, then c1's). The DSP
 * kernels build the same records on the stack where K is small (pw2x2_records). */
#define PW2X2_RECORD(kpad) ((kpad) + 10) /* words a record takes */

/* The weight in a record word's low (hi = 0) or high lane: halved, as the records double it. */
static int32_t record_lane(uint32_t word, int hi)
{
    return (int16_t)(hi ? word >> 16 : word) / 2;
}

/* Weight k of output channel co from the pair records of a layer of cin input channels. */
static int32_t record_weight(const uint32_t *records, int32_t cin, int32_t co, int32_t k)
{
    const int32_t kpad = (cin + 3) & ~3;
    const uint32_t word =
        records[co / 2 * PW2X2_RECORD(kpad) + 4 + k / 4 * 4 + 2 * (k % 2) + co % 2];
    return record_lane(word, k % 4 >= 2); /* the low lanes hold k0 and k1 */
}

/* The pointwise conv from pair records, one output at a time: the portable build's, and the
 * DSP build's for records its kernels do not take. */
static void pointwise_from_records(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                                   const int8_t *input, const int32_t *bias, int8_t *output)
{
    const int32_t cin = p->input.c;
    const int32_t kpad = (cin + 3) & ~3;
    const int32_t off = p->input_offset;
    const int32_t skip = (pc_output_stride(p) - p->output.w) * p->output.c; /* row's end */
    for (int32_t oy = 0; oy < p->output.h; oy++, output += skip) {
        for (int32_t ox = 0; ox < p->output.w; ox++) {
            const int8_t *x = input + (oy * p->stride_h * p->input.w + ox * p->stride_w) * cin;
            for (int32_t co = 0; co < p->output.c; co++) {
                /* the channel's words of k0, k2 in each group; those of k1, k3 two after */
                const uint32_t *w = p->pair_records + co / 2 * PW2X2_RECORD(kpad) + 4 + co % 2;
                int32_t acc = bias[co];
                int32_t c = 0;
                for (; c + 4 <= cin; c += 4, w += 4) {
                    acc += (x[c] + off) * record_lane(w[0], 0) +
                           (x[c + 1] + off) * record_lane(w[2], 0) +
                           (x[c + 2] + off) * record_lane(w[0], 1) +
                           (x[c + 3] + off) * record_lane(w[2], 1);
                }
                for (; c < cin; c++) {
                    acc += (x[c] + off) * record_weight(p->pair_records, cin, co, c);
                }
                *output++ = PC_REQUANTIZE_S8(acc, q->multiplier[co], q->shift[co],
                                             p->output_offset, p->act_min, p->act_max);
            }
        }
    }
}

#if PC_USE_DSP

/* The kh*kw*Cin patch of output pixel (oy, ox), widened, padding taps = 0 (after offset). */
static void im2col(const pc_conv_params_t *p, const int8_t *input, int32_t oy, int32_t ox,
                   int16_t *col)
{
    const int32_t cin = p->input.c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    const int32_t off = p->input_offset;
    int32_t n = 0;
    if (iy0 >= 0 && iy0 + p->kernel_h <= p->input.h && ix0 >= 0 &&
        ix0 + p->kernel_w <= p->input.w) {
        /* Inside the image (most pixels): each kernel row is kw * Cin contiguous bytes, so
         * it is widened without per-tap bounds tests (for the 3-channel first layer the
         * tests were a large part of the layer's time). */
        const int32_t run = p->kernel_w * cin;
        const int8_t *src = input + (iy0 * p->input.w + ix0) * cin;
        for (int32_t ky = 0; ky < p->kernel_h; ky++) {
            for (int32_t c = 0; c < run; c++) {
                col[n + c] = (int16_t)(src[c] + off);
            }
            n += run;
            src += p->input.w * cin;
        }
    } else {
        for (int32_t ky = 0; ky < p->kernel_h; ky++) {
            const int32_t iy = iy0 + ky;
            for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                const int32_t ix = ix0 + kx;
                if (iy < 0 || iy >= p->input.h || ix < 0 || ix >= p->input.w) {
                    for (int32_t c = 0; c < cin; c++) {
                        col[n + c] = 0;
                    }
                } else {
                    const int8_t *src = input + (iy * p->input.w + ix) * cin;
                    for (int32_t c = 0; c < cin; c++) {
                        col[n + c] = (int16_t)(src[c] + off);
                    }
                }
                n += cin;
            }
        }
    }
    /* natural order -> SXTB16 order */
    for (int32_t i = 0; i + 4 <= n; i += 4) {
        const int16_t t = col[i + 1];
        col[i + 1] = col[i + 2];
        col[i + 2] = t;
    }
}

/* n bytes, a word at a time (unaligned LDR / STR are fine on Armv7E-M): a memcpy call costs
 * more than the copy for the few bytes of a kernel row. */
static inline void copy_bytes(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t v = pc_read_u32(src + i);
        memcpy(dst + i, &v, 4);
    }
    for (; i < n; i++) {
        dst[i] = src[i];
    }
}

/* The patch of output pixel (oy, ox) as int8 (natural order), padding taps = the zero point
 * (-input_offset, so that after the offset they are 0), for widen_pair. */
static void im2col_s8(const pc_conv_params_t *p, const int8_t *input, int32_t oy, int32_t ox,
                      int8_t *patch)
{
    const int32_t cin = p->input.c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    const int32_t run = p->kernel_w * cin;
    const int8_t zp = (int8_t)(-p->input_offset);
    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
        const int32_t iy = iy0 + ky;
        if (iy < 0 || iy >= p->input.h) {
            memset(patch, zp, (size_t)run);
        } else if (ix0 >= 0 && ix0 + p->kernel_w <= p->input.w) {
            copy_bytes(patch, input + (iy * p->input.w + ix0) * cin, run);
        } else {
            for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                const int32_t ix = ix0 + kx;
                if (ix < 0 || ix >= p->input.w) {
                    memset(patch + kx * cin, zp, (size_t)cin);
                } else {
                    memcpy(patch + kx * cin, input + (iy * p->input.w + ix) * cin, (size_t)cin);
                }
            }
        }
        patch += run;
    }
}

/* Four bytes as one unaligned word. */
static inline void copy4(int8_t *dst, const int8_t *src)
{
    const uint32_t v = pc_read_u32(src);
    memcpy(dst, &v, 4);
}

/* Whether the windows of output pixels (oy, ox) .. (oy, ox + 3), one row, all lie inside
 * the image and a kernel row holds a word or more: then im2col_s8_inside4 gathers their
 * patches, no padding to fill. */
static int windows4_inside(const pc_conv_params_t *p, int32_t oy, int32_t ox)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    return p->kernel_w * p->input.c >= 4 && ox + 4 <= p->output.w && iy0 >= 0 &&
           iy0 + p->kernel_h <= p->input.h && ix0 >= 0 &&
           ix0 + 3 * p->stride_w + p->kernel_w <= p->input.w;
}

/* im2col_s8 of four neighbouring pixels of one output row whose windows lie inside the image
 * (windows4_inside), window = the first one's top-left input byte. The four are copied
 * together, a word at a time, so the loops and the address arithmetic are paid once for four
 * (a pixel's patch alone costs ~170 instructions through im2col_s8). */
static void im2col_s8_inside4(const pc_conv_params_t *p, const int8_t *window, int8_t *a,
                              int8_t *b, int8_t *c, int8_t *d)
{
    const int32_t run = p->kernel_w * p->input.c;    /* bytes of one kernel row */
    const int32_t step = p->stride_w * p->input.c;   /* from one window to the next */
    const int32_t row = p->input.w * p->input.c;     /* from one input row to the next */
    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
        const int8_t *s = window + ky * row;
        for (int32_t w = 0; w < run; w += 4) {
            /* the last word ends at run, overlapping the one before when run % 4 != 0 (run >=
             * 4); that also keeps GCC from turning the loop into four memcpy calls */
            const int32_t i = w + 4 <= run ? w : run - 4;
            copy4(a + i, s + i);
            copy4(b + i, s + step + i);
            copy4(c + i, s + 2 * step + i);
            copy4(d + i, s + 3 * step + i);
        }
        a += run;
        b += run;
        c += run;
        d += run;
    }
}

/* One chunk of up to PC_RQ_CHUNK output channels, with their requantisation prepared. */
typedef struct {
    pc_rq_t rq[PC_RQ_CHUNK];
    int32_t n;    /* channels in the chunk */
    int32_t fast; /* every channel's rq is fast */
    const int32_t *mult, *shift; /* the chunk's q->multiplier / q->shift (generic route) */
    int32_t out_off, lo, hi;
    uint32_t lo4, hi4; /* act_min / act_max in all four bytes */
    int32_t clamp;     /* act_min / act_max narrower than int8 (else SSAT has clamped) */
} chunk_t;

/* The output pixels of a call as runs of pixels that are contiguous in the output: `rows`
 * runs of n pixels, run r starting at pixel r * n and at output + r * out_row bytes. A
 * contiguous output is one run of all its pixels; one with an output_stride, a run per row. */
typedef struct {
    int32_t rows, n, out_row;
} pw_runs_t;

static pw_runs_t output_runs(const pc_conv_params_t *p)
{
    const int32_t wo = p->output.w;
    const int32_t out_w = pc_output_stride(p);
    return out_w == wo ? (pw_runs_t){1, p->output.h * wo, 0}
                       : (pw_runs_t){p->output.h, wo, out_w * p->output.c};
}

static void chunk_prepare(chunk_t *ch, const pc_conv_params_t *p,
                          const pc_per_channel_quant_t *q, const int32_t *bias, int32_t co0,
                          int32_t k)
{
    const int32_t n = p->output.c - co0 < PC_RQ_CHUNK ? p->output.c - co0 : PC_RQ_CHUNK;
    ch->n = n;
    ch->fast = 1;
    for (int32_t i = 0; i < n; i++) {
        ch->fast &= pc_rq_prepare(&ch->rq[i], bias[co0 + i], q->multiplier[co0 + i],
                                  q->shift[co0 + i], p->output_offset, k);
    }
    ch->mult = q->multiplier + co0;
    ch->shift = q->shift + co0;
    ch->out_off = p->output_offset;
    ch->lo = p->act_min;
    ch->hi = p->act_max;
    ch->lo4 = pc_dup8(p->act_min);
    ch->hi4 = pc_dup8(p->act_max);
    ch->clamp = p->act_min > -128 || p->act_max < 127;
}

static int32_t requant_generic(const chunk_t *ch, int32_t i, int32_t acc)
{
    return PC_REQUANTIZE_S8(acc, ch->mult[i], ch->shift[i], ch->out_off, ch->lo, ch->hi);
}

/* out_a[i], out_b[i] = requant(bias + filter[i, :] . col_x) for the chunk's channels i.
 * filter: the chunk's first row, (n, k) int8 natural order; col_a, col_b: k int16 in SXTB16
 * order. col_b may equal col_a (then out_b must equal out_a: a single pixel). Per two channels
 * the four accumulators are requantised together and the four bytes clamped in one go. */
static void mat_mult_2x2(const chunk_t *ch, const int8_t *filter, int32_t k,
                         const int16_t *col_a, const int16_t *col_b, int8_t *out_a,
                         int8_t *out_b)
{
    const int32_t n_ch = ch->n;
    int32_t co = 0;
    for (; co + 2 <= n_ch; co += 2) {
        const pc_rq_t *r0 = &ch->rq[co];
        const pc_rq_t *r1 = r0 + 1;
        const int8_t *w0 = filter + co * k;
        const int8_t *w1 = w0 + k;
        const int16_t *a = col_a;
        const int16_t *b = col_b;
        int32_t a0 = r0->bias;
        int32_t a1 = r1->bias;
        int32_t b0 = a0;
        int32_t b1 = a1;
        int32_t n = k >> 2;
        uint32_t packed;
        while (n-- > 0) {
            const uint32_t wa = pc_read_u32(w0);
            const uint32_t wb = pc_read_u32(w1);
            uint32_t we = pc_sxtb16(wa);
            uint32_t wf = pc_sxtb16(wb);
            uint32_t x = pc_read_u32(a);
            a0 = pc_smlad(we, x, a0);
            a1 = pc_smlad(wf, x, a1);
            x = pc_read_u32(b);
            b0 = pc_smlad(we, x, b0);
            b1 = pc_smlad(wf, x, b1);
            we = pc_sxtb16_ror8(wa);
            wf = pc_sxtb16_ror8(wb);
            x = pc_read_u32(a + 2);
            a0 = pc_smlad(we, x, a0);
            a1 = pc_smlad(wf, x, a1);
            x = pc_read_u32(b + 2);
            b0 = pc_smlad(we, x, b0);
            b1 = pc_smlad(wf, x, b1);
            w0 += 4;
            w1 += 4;
            a += 4;
            b += 4;
        }
        for (n = k & 3; n > 0; n--) {
            a0 += *w0 * *a;
            a1 += *w1 * *a;
            b0 += *w0++ * *b;
            b1 += *w1++ * *b;
            a++;
            b++;
        }
        if (ch->fast) {
            packed = pc_pack_s8x4(pc_rq_fast(a0, r0), pc_rq_fast(a1, r1), pc_rq_fast(b0, r0),
                                  pc_rq_fast(b1, r1));
            packed = pc_min_s8x4(pc_max_s8x4(packed, ch->lo4), ch->hi4);
        } else {
            packed = pc_pack_s8x4(requant_generic(ch, co, a0), requant_generic(ch, co + 1, a1),
                                  requant_generic(ch, co, b0), requant_generic(ch, co + 1, b1));
        }
        {
            /* bytes 0, 1 -> out_a; 2, 3 -> out_b (little endian: two STRH) */
            const uint16_t pa = (uint16_t)packed;
            const uint16_t pb = (uint16_t)(packed >> 16);
            memcpy(out_a + co, &pa, 2);
            memcpy(out_b + co, &pb, 2);
        }
    }
    if (co < n_ch) {
        const int8_t *w0 = filter + co * k;
        const int16_t *a = col_a;
        const int16_t *b = col_b;
        int32_t a0 = ch->rq[co].bias;
        int32_t b0 = a0;
        int32_t n = k >> 2;
        while (n-- > 0) {
            const uint32_t wa = pc_read_u32(w0);
            const uint32_t we = pc_sxtb16(wa);
            const uint32_t wo = pc_sxtb16_ror8(wa);
            a0 = pc_smlad(we, pc_read_u32(a), a0);
            a0 = pc_smlad(wo, pc_read_u32(a + 2), a0);
            b0 = pc_smlad(we, pc_read_u32(b), b0);
            b0 = pc_smlad(wo, pc_read_u32(b + 2), b0);
            w0 += 4;
            a += 4;
            b += 4;
        }
        for (n = k & 3; n > 0; n--) {
            a0 += *w0 * *a++;
            b0 += *w0++ * *b++;
        }
        out_a[co] = (int8_t)requant_generic(ch, co, a0);
        out_b[co] = (int8_t)requant_generic(ch, co, b0);
    }
}

/* Pointwise columns: the two pixels' widened channels interleaved per group of four,
 * [a x0 x2 | b x0 x2 | a x1 x3 | b x1 x3] (int16x2 words), then the cin % 4 tail as
 * (a, b) int16 pairs. Both pixels' words for one filter word sit side by side, so the inner
 * loop fetches them with one LDRD and walks one pointer instead of two (18 instead of 21+
 * instructions per 16 MACs). Same size as two separate columns: 4 * cin bytes. */
static void widen_pair(const int8_t *px_a, const int8_t *px_b, uint32_t *col, int32_t cin,
                       int32_t offset)
{
    const uint32_t off2 = pc_dup16(offset);
    int32_t i = 0;
    for (; i + 4 <= cin; i += 4) {
        const uint32_t xa = pc_read_u32(px_a + i);
        const uint32_t xb = pc_read_u32(px_b + i);
        pc_store2_inc(&col, pc_sxtab16(off2, xa), pc_sxtab16(off2, xb));
        pc_store2_inc(&col, pc_sxtab16_ror8(off2, xa), pc_sxtab16_ror8(off2, xb));
    }
    for (; i < cin; i++) {
        *col++ = pc_lane16(px_a[i] + offset) | (pc_lane16(px_b[i] + offset) << 16);
    }
}

/* The last k % 4 (= n, 1..3) filter bytes of a row as a word, upper bytes 0: a 4-byte read
 * could run past the end of the filter. */
static inline uint32_t read_tail(const int8_t *w, int32_t n)
{
    uint32_t v = (uint8_t)w[0];
    if (n > 1) {
        v |= (uint32_t)(uint8_t)w[1] << 8;
    }
    if (n > 2) {
        v |= (uint32_t)(uint8_t)w[2] << 16;
    }
    return v;
}

/* One group of four input channels of two filter rows (raw words wa, wb) times widen_pair's
 * columns of two pixels (c[0..3]): 8 SMLAD, 16 MACs. */
PC_INLINE void pw_group(int32_t *a0, int32_t *a1, int32_t *b0, int32_t *b1, uint32_t wa,
                        uint32_t wb, const uint32_t *c)
{
    uint32_t we = pc_sxtb16(wa);
    uint32_t wf = pc_sxtb16(wb);
    uint32_t x = c[0];
    uint32_t y = c[1];
    *a0 = pc_smlad(we, x, *a0);
    *a1 = pc_smlad(wf, x, *a1);
    *b0 = pc_smlad(we, y, *b0);
    *b1 = pc_smlad(wf, y, *b1);
    we = pc_sxtb16_ror8(wa);
    wf = pc_sxtb16_ror8(wb);
    x = c[2];
    y = c[3];
    *a0 = pc_smlad(we, x, *a0);
    *a1 = pc_smlad(wf, x, *a1);
    *b0 = pc_smlad(we, y, *b0);
    *b1 = pc_smlad(wf, y, *b1);
}

/* mat_mult_2x2 on widen_pair's columns, for the chunk's channel pairs [0, n & ~1): pointers
 * advance from pair to pair (the filter rows of a pair are consecutive) instead of being
 * recomputed, and `fast` is a compile-time constant in each of the two inlined copies, so
 * the ~25 instructions around each inner loop stay few.
 *
 * padded: the columns' k % 4 tail is a full group of four, zero-filled (widen_pair of
 * patches padded with the zero point), so it costs one more SIMD step instead of a scalar
 * loop (the RGB first layer: k = 27). */
PC_INLINE void mat_mult_pw_pairs(const chunk_t *ch, const int8_t *filter, int32_t k,
                                 const uint32_t *col, int8_t *out_a, int8_t *out_b, int fast,
                                 int padded, int clamp)
{
    const uint32_t *col_end = col + 4 * (k >> 2);
    const uint32_t *col_end8 = col + 8 * (k >> 3);
    const int32_t tail = k & 3;
    const pc_rq_t *r0 = ch->rq;
    const pc_rq_t *r_end = ch->rq + (ch->n & ~1);
    const int8_t *w0 = filter;
    int32_t co = 0;
    for (; r0 != r_end; r0 += 2, co += 2) {
        const int8_t *w1 = w0 + k;
        const uint32_t *c = col;
        int32_t a0 = r0[0].bias;
        int32_t a1 = r0[1].bias;
        int32_t b0 = a0;
        int32_t b1 = a1;
        uint32_t packed;
        uint16_t half;
        /* Eight input channels per pass: the loop's pointer updates, compare and branch
         * are paid once per 32 MACs instead of 16. */
        while (c != col_end8) {
            pw_group(&a0, &a1, &b0, &b1, pc_read_u32(w0), pc_read_u32(w1), c);
            pw_group(&a0, &a1, &b0, &b1, pc_read_u32(w0 + 4), pc_read_u32(w1 + 4), c + 4);
            w0 += 8;
            w1 += 8;
            c += 8;
        }
        if (c != col_end) {
            pw_group(&a0, &a1, &b0, &b1, pc_read_u32(w0), pc_read_u32(w1), c);
            w0 += 4;
            w1 += 4;
            c += 4;
        }
        if (padded) {
            if (tail > 0) {
                const uint32_t wa = read_tail(w0, tail);
                const uint32_t wb = read_tail(w1, tail);
                uint32_t we = pc_sxtb16(wa);
                uint32_t wf = pc_sxtb16(wb);
                a0 = pc_smlad(we, c[0], a0);
                a1 = pc_smlad(wf, c[0], a1);
                b0 = pc_smlad(we, c[1], b0);
                b1 = pc_smlad(wf, c[1], b1);
                we = pc_sxtb16_ror8(wa);
                wf = pc_sxtb16_ror8(wb);
                a0 = pc_smlad(we, c[2], a0);
                a1 = pc_smlad(wf, c[2], a1);
                b0 = pc_smlad(we, c[3], b0);
                b1 = pc_smlad(wf, c[3], b1);
                w1 += tail;
            }
        } else {
            for (int32_t n = tail; n > 0; n--) {
                const uint32_t x = *c++;
                a0 += *w0 * pc_lo16(x);
                a1 += *w1 * pc_lo16(x);
                b0 += *w0++ * pc_hi16(x);
                b1 += *w1++ * pc_hi16(x);
            }
        }
        w0 = w1; /* the next pair's first row */
        if (fast) {
            packed = pc_pack_s8x4(pc_rq_fast(a0, r0), pc_rq_fast(a1, r0 + 1),
                                  pc_rq_fast(b0, r0), pc_rq_fast(b1, r0 + 1));
            if (clamp) {
                packed = pc_min_s8x4(pc_max_s8x4(packed, ch->lo4), ch->hi4);
            }
        } else {
            packed = pc_pack_s8x4(requant_generic(ch, co, a0), requant_generic(ch, co + 1, a1),
                                  requant_generic(ch, co, b0), requant_generic(ch, co + 1, b1));
        }
        /* bytes 0, 1 -> out_a; 2, 3 -> out_b (little endian: two STRH) */
        half = (uint16_t)packed;
        memcpy(out_a + co, &half, 2);
        half = (uint16_t)(packed >> 16);
        memcpy(out_b + co, &half, 2);
    }
}

static void mat_mult_pw(const chunk_t *ch, const int8_t *filter, int32_t k,
                        const uint32_t *col, int8_t *out_a, int8_t *out_b, int padded)
{
    const int32_t co = ch->n & ~1;
    if (padded) {
        if (ch->fast && !ch->clamp) {
            mat_mult_pw_pairs(ch, filter, k, col, out_a, out_b, 1, 1, 0);
        } else if (ch->fast) {
            mat_mult_pw_pairs(ch, filter, k, col, out_a, out_b, 1, 1, 1);
        } else {
            mat_mult_pw_pairs(ch, filter, k, col, out_a, out_b, 0, 1, 1);
        }
    } else if (!ch->fast) {
        mat_mult_pw_pairs(ch, filter, k, col, out_a, out_b, 0, 0, 1);
    } else if (ch->clamp) {
        mat_mult_pw_pairs(ch, filter, k, col, out_a, out_b, 1, 0, 1);
    } else { /* the common case: fast, SSAT's int8 range is the activation's */
        mat_mult_pw_pairs(ch, filter, k, col, out_a, out_b, 1, 0, 0);
    }
    if (co < ch->n) { /* an odd last channel: plain dot products */
        const int8_t *w = filter + co * k;
        const uint32_t *c = col;
        int32_t a0 = ch->rq[co].bias;
        int32_t b0 = a0;
        for (int32_t i = 0; i + 4 <= k; i += 4) {
            const uint32_t wv = pc_read_u32(w + i);
            const uint32_t we = pc_sxtb16(wv);
            const uint32_t wo = pc_sxtb16_ror8(wv);
            a0 = pc_smlad(we, c[0], a0);
            b0 = pc_smlad(we, c[1], b0);
            a0 = pc_smlad(wo, c[2], a0);
            b0 = pc_smlad(wo, c[3], b0);
            c += 4;
        }
        if (padded && (k & 3) != 0) {
            const uint32_t wv = read_tail(w + (k & ~3), k & 3);
            a0 = pc_smlad(pc_sxtb16(wv), c[0], a0);
            b0 = pc_smlad(pc_sxtb16(wv), c[1], b0);
            a0 = pc_smlad(pc_sxtb16_ror8(wv), c[2], a0);
            b0 = pc_smlad(pc_sxtb16_ror8(wv), c[3], b0);
        } else {
            for (int32_t i = k & ~3; i < k; i++) {
                const uint32_t x = *c++;
                a0 += w[i] * pc_lo16(x);
                b0 += w[i] * pc_hi16(x);
            }
        }
        out_a[co] = (int8_t)requant_generic(ch, co, a0);
        out_b[co] = (int8_t)requant_generic(ch, co, b0);
    }
}

/* ---- pointwise: one output channel of four pixels at a time ----
 *
 * The 2x2 blocks above pay each output's share of a block's set-up, requantisation constants,
 * packing and stores (15-30 instructions) and re-extend each filter word for every pixel pair.
 * Here four pixels are widened once into one buffer and every output channel runs down all
 * four: per four input channels one filter load and two SXTB16 feed 8 SMLAD (four LDRD fetch
 * the columns through one post-incremented pointer), the channel's constants are loaded once
 * for four outputs, and each result is stored with one STRB (the four pixels' outputs are
 * cout bytes apart), without packing. Any channel count works (no channel pairs), so only the
 * last pixels % 4 take the 2x2 path. K is a compile-time constant in the copies for 8 and 16
 * input channels (the MAC code is then unrolled, no loop). */
#define PW4_MAX_CIN 384 /* the four widened pixels live on the stack: 8 * cin bytes (3 kB) */

/* The first cin4 values (a multiple of 4) of npx pixels (even) widened with the input
 * offset: per group of four channels, pixels (0, 1), (2, 3), ... each as even words, then
 * odd. Returns the columns' end. */
PC_INLINE uint32_t *widen_pairs(const int8_t *const *px, int npx, uint32_t *col, int32_t cin4,
                                uint32_t off2)
{
    for (int32_t i = 0; i < cin4; i += 4) {
        for (int j = 0; j < npx; j += 2) {
            const uint32_t x = pc_read_u32(px[j] + i);
            const uint32_t y = pc_read_u32(px[j + 1] + i);
            pc_store2_inc(&col, pc_sxtab16(off2, x), pc_sxtab16(off2, y));
            pc_store2_inc(&col, pc_sxtab16_ror8(off2, x), pc_sxtab16_ror8(off2, y));
        }
    }
    return col;
}

/* Pixels a, b, c, d widened with the input offset, per group of four channels x0..x3:
 * [a x0 x2 | b x0 x2 | a x1 x3 | b x1 x3 | c x0 x2 | d x0 x2 | c x1 x3 | d x1 x3] (int16x2
 * words, SXTB16's order), then the cin % 4 tail as (a, b), (c, d) int16 pairs. */
static void widen_quad(const int8_t *const px[4], uint32_t *col, int32_t cin, int32_t offset)
{
    int32_t i = cin & ~3;
    col = widen_pairs(px, 4, col, i, pc_dup16(offset));
    for (; i < cin; i++) {
        col[0] = pc_lane16(px[0][i] + offset) | (pc_lane16(px[1][i] + offset) << 16);
        col[1] = pc_lane16(px[2][i] + offset) | (pc_lane16(px[3][i] + offset) << 16);
        col += 2;
    }
}

/* Word g (a constant) of the 28 values of an RGB stem window (3x3 kernel, 3 channels: three
 * kernel rows of 9 bytes, `row` bytes apart, then the pad) from the input at s. Four words
 * are one load (values 0..3, 4..7, 12..15, 20..23); three straddle two kernel rows or the
 * pad: 8..11 is row 1's bytes 0..3 shifted up under row 0's byte 8; 16..19, the low halves
 * of row 1's 7..10 and row 2's 0..3 (PKHBT); 24..27, row 2's 5..8 shifted down, so value
 * 27 is 0 (it meets the zero weight that read_tail gives the pad). Every byte read lies
 * between s and row 2's byte 8, inside the image (windows4_inside). */
PC_INLINE uint32_t rgb_word(const int8_t *s, int32_t row, int g)
{
    switch (g) {
    case 0:
        return pc_read_u32(s);
    case 1:
        return pc_read_u32(s + 4);
    case 2:
        return (pc_read_u32(s + row) << 8) | (uint8_t)s[8];
    case 3:
        return pc_read_u32(s + row + 3);
    case 4:
        return pc_pack16x2((int32_t)pc_read_u32(s + row + 7), (int32_t)pc_read_u32(s + 2 * row));
    case 5:
        return pc_read_u32(s + 2 * row + 2);
    default:
        return pc_read_u32(s + 2 * row + 5) >> 8;
    }
}

/* widen_quad of four RGB stem windows straight from the input (window: the first one's
 * top-left byte; the windows inside the image, windows4_inside), with no int8 patch copied:
 * the 28-value patches' columns in widen_quad_halves' layout. */
PC_NOINLINE void widen_rgb4(const pc_conv_params_t *p, const int8_t *window, uint32_t *col)
{
    const uint32_t off2 = pc_dup16(p->input_offset);
    const int32_t step = p->stride_w * 3;
    const int32_t row = p->input.w * 3;
    const int8_t *const a = window;
    const int8_t *const b = a + step;
    const int8_t *const c = b + step;
    const int8_t *const d = c + step;
    uint32_t *col2 = col + 28;
    PC_UNROLL(7)
    for (int g = 0; g < 7; g++) {
        const uint32_t u = rgb_word(a, row, g);
        const uint32_t v = rgb_word(b, row, g);
        const uint32_t x = rgb_word(c, row, g);
        const uint32_t y = rgb_word(d, row, g);
        pc_store2_inc(&col, pc_sxtab16(off2, u), pc_sxtab16(off2, v));
        pc_store2_inc(&col, pc_sxtab16_ror8(off2, u), pc_sxtab16_ror8(off2, v));
        pc_store2_inc(&col2, pc_sxtab16(off2, x), pc_sxtab16(off2, y));
        pc_store2_inc(&col2, pc_sxtab16_ror8(off2, x), pc_sxtab16_ror8(off2, y));
    }
}

/* Four input channels (filter word wv) of the four pixels (widen_quad's group at *col);
 * advances the pointer. With the filter load: 15 instructions for 16 MACs (LDR, 2 SXTB16,
 * 4 LDRD, 8 SMLAD). */
PC_INLINE void pw4_group_wide(int32_t *a, int32_t *b, int32_t *c, int32_t *d, uint32_t we,
                              uint32_t wo, const uint32_t **col)
{
    uint32_t x, y;
    pc_load2_inc(col, &x, &y);
    *a = pc_smlad(we, x, *a);
    *b = pc_smlad(we, y, *b);
    pc_load2_inc(col, &x, &y);
    *a = pc_smlad(wo, x, *a);
    *b = pc_smlad(wo, y, *b);
    pc_load2_inc(col, &x, &y);
    *c = pc_smlad(we, x, *c);
    *d = pc_smlad(we, y, *d);
    pc_load2_inc(col, &x, &y);
    *c = pc_smlad(wo, x, *c);
    *d = pc_smlad(wo, y, *d);
}

PC_INLINE void pw4_group(int32_t *a, int32_t *b, int32_t *c, int32_t *d, uint32_t wv,
                         const uint32_t **col)
{
    pw4_group_wide(a, b, c, d, pc_sxtb16(wv), pc_sxtb16_ror8(wv), col);
}

/* v clamped to the chunk's act_min / act_max. */
PC_INLINE int32_t clamp_to(const chunk_t *ch, int32_t v)
{
    return v < ch->lo ? ch->lo : v > ch->hi ? ch->hi : v;
}

/* The four requantised outputs of one channel, clamped to act_min / act_max when clamp,
 * stored at *out, *out + cout (pixels a, b) and *out2, *out2 + cout (c, d); both pointers
 * then move on to the next channel. */
PC_INLINE void pw4_store(const chunk_t *ch, int32_t a, int32_t b, int32_t c, int32_t d,
                         int8_t **out, int8_t **out2, int32_t cout, int clamp)
{
    if (clamp) {
        a = clamp_to(ch, a);
        b = clamp_to(ch, b);
        c = clamp_to(ch, c);
        d = clamp_to(ch, d);
    }
    pc_store2_s8_inc(out, cout, a, b);
    pc_store2_s8_inc(out2, cout, c, d);
}

/* All the chunk's channels (all fast) for four pixels (widen_quad's col) whose outputs start
 * at out, out + cout, out + 2 cout, out + 3 cout.
 *
 * padded: the columns' k % 4 tail is a full group of four, zero-filled (widen_quad of patches
 * padded with the zero point), so it costs one more SIMD step instead of a scalar loop (the
 * RGB first layer: k = 27). */
PC_INLINE void mat_mult_pw4(const chunk_t *ch, const int8_t *filter, int32_t k,
                            const uint32_t *col, int8_t *out, int32_t cout, int clamp,
                            int padded)
{
    const pc_rq_t *r = ch->rq;
    const pc_rq_t *r_end = r + ch->n;
    const int8_t *w = filter;
    int8_t *out2 = out + 2 * cout;
    for (; r != r_end; r++) {
        const uint32_t *c4 = col;
        int32_t a = r->bias;
        int32_t b = a;
        int32_t c = a;
        int32_t d = a;
        /* Eight input channels per pass (the loop's count and branch per 32 MACs); K = 8 or
         * 16: unrolled. */
        PC_UNROLL(2)
        for (int32_t g = k >> 3; g > 0; g--) {
            pw4_group(&a, &b, &c, &d, pc_load_s8x4_inc(&w), &c4);
            pw4_group(&a, &b, &c, &d, pc_load_s8x4_inc(&w), &c4);
        }
        if (k & 4) {
            pw4_group(&a, &b, &c, &d, pc_load_s8x4_inc(&w), &c4);
        }
        if (padded && (k & 3) != 0) {
            pw4_group(&a, &b, &c, &d, read_tail(w, k & 3), &c4);
            w += k & 3;
        }
        for (int32_t n = padded ? 0 : k & 3; n > 0; n--) {
            const int32_t wt = *w++;
            uint32_t x, y;
            pc_load2_inc(&c4, &x, &y);
            a += wt * pc_lo16(x);
            b += wt * pc_hi16(x);
            c += wt * pc_lo16(y);
            d += wt * pc_hi16(y);
        }
        a = pc_rq_fast(a, r);
        b = pc_rq_fast(b, r);
        c = pc_rq_fast(c, r);
        d = pc_rq_fast(d, r);
        pw4_store(ch, a, b, c, d, &out, &out2, cout, clamp);
    }
}

PC_NOINLINE void mat_mult_pw4_any(const chunk_t *ch, const int8_t *filter, int32_t k,
                                  const uint32_t *col, int8_t *out, int32_t cout)
{
    if (ch->clamp) {
        mat_mult_pw4(ch, filter, k, col, out, cout, 1, 0);
    } else {
        mat_mult_pw4(ch, filter, k, col, out, cout, 0, 0);
    }
}

PC_NOINLINE void mat_mult_pw4_k8(const chunk_t *ch, const int8_t *filter, const uint32_t *col,
                                 int8_t *out, int32_t cout)
{
    mat_mult_pw4(ch, filter, 8, col, out, cout, 0, 0);
}

PC_NOINLINE void mat_mult_pw4_k16(const chunk_t *ch, const int8_t *filter, const uint32_t *col,
                                  int8_t *out, int32_t cout)
{
    mat_mult_pw4(ch, filter, 16, col, out, cout, 0, 0);
}

/* The small-patch conv2d route: k = the real patch size, the columns padded to a multiple
 * of 4. */
PC_NOINLINE void mat_mult_pw4_padded(const chunk_t *ch, const int8_t *filter, int32_t k,
                                     const uint32_t *col, int8_t *out, int32_t cout)
{
    if (ch->clamp) {
        mat_mult_pw4(ch, filter, k, col, out, cout, 1, 1);
    } else {
        mat_mult_pw4(ch, filter, k, col, out, cout, 0, 1);
    }
}

/* ---- pointwise: six pixels at a time -------------------------------------------------------
 * For K a multiple of 8 up to PW6_MAX_CIN: one output channel of six pixels per pass, so each
 * filter word's two SXTB16 serve 24 MACs, and the columns come four words a load: per four
 * input channels LDR, 2 SXTB16, 3 LDM and 12 SMLAD (18 instructions for 24 MACs). Eight
 * pixels a pass (LDR, 2 SXTB16, 8 LDRD, 16 SMLAD: 27 for 32) took 12-14 % more: its eight
 * accumulators left no four registers for an LDM. Six accumulators, the two weight halves,
 * four column words and two pointers take all fourteen registers, the LDM's named in order,
 * so the kernel is assembly (pw6_run4: four groups a step, K % 16 == 0; pw6_run2: two). */
#define PW6_MAX_CIN 192 /* the six widened pixels on the stack: 12 * cin bytes (2.25 kB) */


/* The chunk's channels (all fast, no clamp) of six pixels (pw6_run*: widen_pairs' columns)
 * or four (pw4_run*: widen_quad's); the assembly reads the fields at these offsets. */
typedef struct {
    const int8_t *w;            /*  0: the first channel's filter row (k values a row) */
    const pc_rq_t *rq, *rq_end; /*  4, 8: the channels' constants */
    const uint32_t *col;        /* 12: widen_pairs' columns */
    const uint32_t *col_end;    /* 16: col + 3 * k (six pixels), col + 2 * k (four) */
    int8_t *out;                /* 20: the first pixel's first output */
    int32_t cout;               /* 24: bytes from one pixel's outputs to the next's */
} pw_pixels_run_t;

#if defined(PC_DSP_EMULATE)
/* One output channel of npx (4 or 6) pixels at a time, as the assembly computes it. */
PC_INLINE void pw_pixels_run(pw_pixels_run_t *a, int npx)
{
    const int8_t *w = a->w;
    for (const pc_rq_t *r = a->rq; r != a->rq_end; r++, a->out++) {
        int32_t acc[6] = {r->bias, r->bias, r->bias, r->bias, r->bias, r->bias};
        for (const uint32_t *x = a->col; x != a->col_end; w += 4) {
            const uint32_t wv = pc_read_u32(w);
            const uint32_t we = pc_sxtb16(wv), wo = pc_sxtb16_ror8(wv);
            for (int j = 0; j < npx; j += 2, x += 4) {
                acc[j] = pc_smlad(wo, x[2], pc_smlad(we, x[0], acc[j]));
                acc[j + 1] = pc_smlad(wo, x[3], pc_smlad(we, x[1], acc[j + 1]));
            }
        }
        for (int j = 0; j < npx; j++) { /* fast: lsh is 1 (pc_dsp.h) */
            a->out[j * a->cout] = (int8_t)pc_rq_shifted(acc[j] * 2, r->mult, r->rnd, r->rsh);
        }
    }
}

/* the unrolling (four groups a step or two) is the assembly's */
PC_NOINLINE void pw6_run4(pw_pixels_run_t *a)
{
    pw_pixels_run(a, 6);
}

PC_NOINLINE void pw6_run2(pw_pixels_run_t *a)
{
    pw_pixels_run(a, 6);
}

PC_NOINLINE void pw4_run4(pw_pixels_run_t *a)
{
    pw_pixels_run(a, 4);
}

PC_NOINLINE void pw4_run2(pw_pixels_run_t *a)
{
    pw_pixels_run(a, 4);
}
#else
/* r0 - r5: the six accumulators; r6, r7: the weight halves; r8 - r11: the LDM's column
 * words; ip: the filter; lr: the columns. */
#define PW6_GROUP                                                                              \
    "ldr r7, [ip], #4\n\t"                                                                     \
    "sxtb16 r6, r7\n\t"                                                                        \
    "sxtb16 r7, r7, ror #8\n\t"                                                                \
    "ldm lr!, {r8, r9, r10, r11}\n\t"                                                          \
    "smlad r0, r6, r8, r0\n\t"                                                                 \
    "smlad r1, r6, r9, r1\n\t"                                                                 \
    "smlad r0, r7, r10, r0\n\t"                                                                \
    "smlad r1, r7, r11, r1\n\t"                                                                \
    "ldm lr!, {r8, r9, r10, r11}\n\t"                                                          \
    "smlad r2, r6, r8, r2\n\t"                                                                 \
    "smlad r3, r6, r9, r3\n\t"                                                                 \
    "smlad r2, r7, r10, r2\n\t"                                                                \
    "smlad r3, r7, r11, r3\n\t"                                                                \
    "ldm lr!, {r8, r9, r10, r11}\n\t"                                                          \
    "smlad r4, r6, r8, r4\n\t"                                                                 \
    "smlad r5, r6, r9, r5\n\t"                                                                 \
    "smlad r4, r7, r10, r4\n\t"                                                                \
    "smlad r5, r7, r11, r5\n\t"
/* accumulator acc requantised: pc_rq_shifted of 2 * acc (r8 rnd, r9 mult, r10 rsh) */
#define PW6_RQ(acc) "lsl " acc ", " acc ", #1\n\t" PC_ASM_RQ(acc, "r9", "r8", "r10", "r11")
/* One output channel of several pixels a pass, the channels one after the other: *a onto
 * the stack, then per channel the accumulators from the bias (`init`), the input channels
 * (`groups` a step until `done` sets the flags), and `finish` (requantise, store). */
#define PW_PIXELS_RUN(name, enter, init, groups, done, finish)                                 \
    __attribute__((naked, noinline)) static void name(                                         \
        __attribute__((unused)) pw_pixels_run_t *a)                                            \
    {                                                                                          \
        __asm__("push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                              \
                "sub sp, sp, #28\n\t"                                                          \
                "ldm r0, {r0, r1, r2, r3, r4, r5, r6}\n\t"                                     \
                "stm sp, {r0, r1, r2, r3, r4, r5, r6}\n\t"                                     \
                "mov ip, r0\n\t" enter                                                         \
                "1:\n\t" /* a channel */                                                       \
                "ldr r6, [sp, #4]\n\t"                                                         \
                "ldr lr, [sp, #12]\n\t"                                                        \
                "ldr r0, [r6, #16]\n\t" /* pc_rq_t.bias */                                     \
                init "2:\n\t" groups done "bne 2b\n\t" finish                                  \
                "ldrd r6, r7, [sp, #4]\n\t" /* the next channel, if any */                     \
                "cmp r6, r7\n\t"                                                               \
                "bne 1b\n\t"                                                                   \
                "add sp, sp, #28\n\t"                                                          \
                "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}");                                 \
    }

/* Four accumulators from the bias in r0; six. */
#define PW4_INIT "mov r1, r0\n\t" "mov r2, r0\n\t" "mov r3, r0\n\t"
/* Six pixels: the columns' end read from the stack; the constants into r7 - r10. */
#define PW6_INIT PW4_INIT "mov r4, r0\n\t" "mov r5, r0\n\t"
#define PW6_DONE "ldr r6, [sp, #16]\n\t" "cmp lr, r6\n\t"
#define PW6_FINISH                                                                             \
    "ldr r6, [sp, #4]\n\t"                                                                     \
    "ldm r6, {r7, r8, r9, r10}\n\t" /* lsh (1), rnd, mult, rsh */                              \
    "add r6, r6, #28\n\t"           /* the next channel's */                                   \
    "str r6, [sp, #4]\n\t" PW6_RQ("r0") PW6_RQ("r1") PW6_RQ("r2") PW6_RQ("r3") PW6_RQ("r4")    \
    PW6_RQ("r5")                                                                               \
    "ldrd r10, r11, [sp, #20]\n\t"                                                             \
    "add r6, r10, #1\n\t"                                                                      \
    "str r6, [sp, #20]\n\t"                                                                    \
    "strb r0, [r10]\n\t"                                                                       \
    "strb r1, [r10, r11]\n\t"                                                                  \
    "add r10, r10, r11, lsl #1\n\t"                                                            \
    "strb r2, [r10]\n\t"                                                                       \
    "strb r3, [r10, r11]\n\t"                                                                  \
    "add r10, r10, r11, lsl #1\n\t"                                                            \
    "strb r4, [r10]\n\t"                                                                       \
    "strb r5, [r10, r11]\n\t"
PW_PIXELS_RUN(pw6_run4, "", PW6_INIT, PW6_GROUP PW6_GROUP PW6_GROUP PW6_GROUP, PW6_DONE,
              PW6_FINISH) /* K % 16 == 0 */
PW_PIXELS_RUN(pw6_run2, "", PW6_INIT, PW6_GROUP PW6_GROUP, PW6_DONE, PW6_FINISH) /* K % 8 */

/* Four pixels (widen_quad's columns: two LDM a group, 13 instructions for 16 MACs against
 * mat_mult_pw4's 15 with LDRD; K = 336 -12.5 %): r0 - r3 accumulating, r4, r5 the weight
 * halves, r6 - r9 the column words, r10 the columns' end. */
#define PW4_GROUP                                                                              \
    "ldr r5, [ip], #4\n\t"                                                                     \
    "sxtb16 r4, r5\n\t"                                                                        \
    "sxtb16 r5, r5, ror #8\n\t"                                                                \
    "ldm lr!, {r6, r7, r8, r9}\n\t"                                                            \
    "smlad r0, r4, r6, r0\n\t"                                                                 \
    "smlad r1, r4, r7, r1\n\t"                                                                 \
    "smlad r0, r5, r8, r0\n\t"                                                                 \
    "smlad r1, r5, r9, r1\n\t"                                                                 \
    "ldm lr!, {r6, r7, r8, r9}\n\t"                                                            \
    "smlad r2, r4, r6, r2\n\t"                                                                 \
    "smlad r3, r4, r7, r3\n\t"                                                                 \
    "smlad r2, r5, r8, r2\n\t"                                                                 \
    "smlad r3, r5, r9, r3\n\t"
/* r7 rnd, r8 mult, r9 rsh; r11 the temporary */
#define PW4_RQ(acc) "lsl " acc ", " acc ", #1\n\t" PC_ASM_RQ(acc, "r8", "r7", "r9", "r11")
#define PW4_FINISH                                                                             \
    "ldr r6, [sp, #4]\n\t"                                                                     \
    "add r11, r6, #28\n\t" /* the next channel's */                                            \
    "str r11, [sp, #4]\n\t"                                                                    \
    "ldm r6, {r6, r7, r8, r9}\n\t" /* lsh (1), rnd, mult, rsh */                               \
    PW4_RQ("r0") PW4_RQ("r1") PW4_RQ("r2") PW4_RQ("r3")                                        \
    "ldrd r4, r5, [sp, #20]\n\t"                                                               \
    "add r6, r4, #1\n\t"                                                                       \
    "str r6, [sp, #20]\n\t"                                                                    \
    "strb r0, [r4]\n\t"                                                                        \
    "strb r1, [r4, r5]\n\t"                                                                    \
    "add r4, r4, r5, lsl #1\n\t"                                                               \
    "strb r2, [r4]\n\t"                                                                        \
    "strb r3, [r4, r5]\n\t"
PW_PIXELS_RUN(pw4_run4, "mov r10, r4\n\t", PW4_INIT, PW4_GROUP PW4_GROUP PW4_GROUP PW4_GROUP,
              "cmp lr, r10\n\t", PW4_FINISH) /* K % 16 == 0 */
PW_PIXELS_RUN(pw4_run2, "mov r10, r4\n\t", PW4_INIT, PW4_GROUP PW4_GROUP, "cmp lr, r10\n\t",
              PW4_FINISH) /* K % 8 == 0 */
#undef PW_PIXELS_RUN
#undef PW4_GROUP
#undef PW4_RQ
#undef PW4_INIT
#undef PW4_FINISH
#undef PW6_GROUP
#undef PW6_RQ
#undef PW6_INIT
#undef PW6_DONE
#undef PW6_FINISH
PC_STATIC_ASSERT(sizeof(pw_pixels_run_t) == 28, pw_pixels_layout);
#endif

/* ---- pointwise: the last pixel of a run, two output channels at a time ----
 * A run of 4n + 1 pixels (5x5 and 9x9 maps) leaves one pixel after the quads; as half of a
 * 2x2 block it would pay for two. Here each of its widened column's word pairs serves two
 * filter rows: per four input channels one LDRD, two filter loads, four SXTB16 and four
 * SMLAD for 8 MACs (four rows at a time would spill). */

/* One pixel's cin (a multiple of 4) values widened with the input offset: per group of four,
 * (x0, x2) and (x1, x3). */
static void widen_one(const int8_t *px, uint32_t *col, int32_t cin, int32_t offset)
{
    const uint32_t off2 = pc_dup16(offset);
    for (int32_t i = 0; i < cin; i += 4) {
        const uint32_t x = pc_read_u32(px + i);
        pc_store2_inc(&col, pc_sxtab16(off2, x), pc_sxtab16_ror8(off2, x));
    }
}

/* One filter word (four input channels of one output channel) times the column's pair. */
PC_INLINE int32_t pw1_group(const int8_t *w, uint32_t xe, uint32_t xo, int32_t acc)
{
    const uint32_t wv = pc_read_u32(w);
    return pc_smlad(pc_sxtb16_ror8(wv), xo, pc_smlad(pc_sxtb16(wv), xe, acc));
}

/* v requantised (fast), clamped to act_min / act_max when clamp. */
PC_INLINE int8_t pw1_out(const chunk_t *ch, const pc_rq_t *r, int32_t v, int clamp)
{
    v = pc_rq_fast(v, r);
    return (int8_t)(clamp ? clamp_to(ch, v) : v);
}

/* The chunk's channels (all fast) of one pixel (widen_one's col, k a multiple of 4) into
 * out[0 .. n). */
PC_INLINE void mat_mult_pw1_at(const chunk_t *ch, const int8_t *filter, int32_t k,
                               const uint32_t *col, int8_t *out, int clamp)
{
    const pc_rq_t *r = ch->rq;
    const uint32_t *col_end = col + k / 2;
    const int8_t *w0 = filter;
    int32_t c = 0;
    for (; c + 2 <= ch->n; c += 2, r += 2, w0 += k) {
        const int8_t *w1 = w0 + k;
        int32_t a0 = r[0].bias;
        int32_t a1 = r[1].bias;
        PC_UNROLL(2)
        for (const uint32_t *x = col; x != col_end; w0 += 4, w1 += 4) {
            uint32_t xe, xo;
            pc_load2_inc(&x, &xe, &xo);
            a0 = pw1_group(w0, xe, xo, a0);
            a1 = pw1_group(w1, xe, xo, a1);
        }
        out[c] = pw1_out(ch, r, a0, clamp);
        out[c + 1] = pw1_out(ch, r + 1, a1, clamp);
    }
    if (c < ch->n) { /* an odd last channel */
        int32_t a = r->bias;
        for (const uint32_t *x = col; x != col_end; w0 += 4, x += 2) {
            a = pw1_group(w0, x[0], x[1], a);
        }
        out[c] = pw1_out(ch, r, a, clamp);
    }
}

PC_NOINLINE void mat_mult_pw1(const chunk_t *ch, const int8_t *filter, int32_t k,
                              const uint32_t *col, int8_t *out)
{
    if (ch->clamp) {
        mat_mult_pw1_at(ch, filter, k, col, out, 1);
    } else {
        mat_mult_pw1_at(ch, filter, k, col, out, 0);
    }
}

/* ---- weights widened once per chunk ---------------------------------------------------------
 * Where every chunk of weights serves many pixels, widening them once (and doubling them, and
 * the bias with them, so each accumulator comes out as the 2 * acc the requantisation starts
 * from: pc_rq_fast_x2) saves each group's SXTB16 pair and each output's shift. */

/* widen_weights of one filter row; returns the words' end. */
PC_INLINE uint32_t *widen_row(uint32_t *ww, const int8_t *w, int32_t k)
{
    int32_t j = 0;
    for (; j + 4 <= k; j += 4) {
        const uint32_t wv = pc_read_u32(w + j);
        *ww++ = pc_double16(pc_sxtb16(wv));
        *ww++ = pc_double16(pc_sxtb16_ror8(wv));
    }
    if (j < k) {
        const uint32_t wv = read_tail(w + j, k - j);
        *ww++ = pc_double16(pc_sxtb16(wv));
        *ww++ = pc_double16(pc_sxtb16_ror8(wv));
    }
    return ww;
}

/* The first n filter rows of k int8 values (a row's k % 4 tail zero-padded to a group of
 * four) as kpad / 4 groups of two doubled int16x2 words each, pw4_group's order. */
static void widen_weights(uint32_t *ww, const int8_t *w, int32_t n, int32_t k)
{
    for (int32_t co = 0; co < n; co++, w += k) {
        ww = widen_row(ww, w, k);
    }
}

/* mat_mult_pw4 (padded columns, kpad a multiple of 4) with the groups from ww. */
PC_INLINE void mat_mult_pw4_ww_at(const chunk_t *ch, const uint32_t *ww, int32_t kpad,
                                  const uint32_t *col, int8_t *out, int32_t cout, int clamp)
{
    const pc_rq_t *r = ch->rq;
    const pc_rq_t *r_end = r + ch->n;
    int8_t *out2 = out + 2 * cout;
    for (; r != r_end; r++) {
        const uint32_t *c4 = col;
        int32_t a = r->bias2; /* doubled, as the weights */
        int32_t b = a;
        int32_t c = a;
        int32_t d = a;
        for (int32_t g = kpad >> 2; g > 0; g--) {
            pw4_group_wide(&a, &b, &c, &d, ww[0], ww[1], &c4);
            ww += 2;
        }
        a = pc_rq_fast_x2(a, r);
        b = pc_rq_fast_x2(b, r);
        c = pc_rq_fast_x2(c, r);
        d = pc_rq_fast_x2(d, r);
        pw4_store(ch, a, b, c, d, &out, &out2, cout, clamp);
    }
}

PC_NOINLINE void mat_mult_pw4_ww(const chunk_t *ch, const uint32_t *ww, int32_t kpad,
                                 const uint32_t *col, int8_t *out, int32_t cout)
{
    if (ch->clamp) {
        mat_mult_pw4_ww_at(ch, ww, kpad, col, out, cout, 1);
    } else {
        mat_mult_pw4_ww_at(ch, ww, kpad, col, out, cout, 0);
    }
}

/* ---- two channels at a time ----------------------------------------------------------------
 * With the weights widened once, two channels of two pixels share every load: a group of four
 * K takes one LDM of the pair's four weight words, one LDM of the two pixels' four column
 * words and 8 SMLAD for 16 MACs. Each pair of channels is a record (pw2x2_records): the four
 * accumulators' start (2 * bias), the widened weights, and both channels' requantisation
 * constants, so one pointer streams through all of it; the four pixels' columns are two
 * halves (widen_quad_halves: pixels a, b, then c, d), each a stream of its own. The loop
 * takes all fourteen registers, the LDMs' named in order, so it is assembly, one function a
 * K (pw2x2_run_k*: K a constant, the groups unrolled); gcc's loop with LDRD took 12
 * instructions a group and reloaded the constants for each pixel pair. */

/* One group of four k of two channels (v0, v1: their int8 words), widened and doubled. */
PC_INLINE void widen_group_x2(uint32_t **ww, uint32_t v0, uint32_t v1)
{
    pc_store2_inc(ww, pc_double16(pc_sxtb16(v0)), pc_double16(pc_sxtb16(v1)));
    pc_store2_inc(ww, pc_double16(pc_sxtb16_ror8(v0)), pc_double16(pc_sxtb16_ror8(v1)));
}

/* widen_weights for channel pairs: per pair and group of four k, (even of the first, even of
 * the second, odd of the first, odd of the second); an odd last channel as widen_weights lays
 * it out. */
static void widen_weights_x2(uint32_t *ww, const int8_t *w, int32_t n, int32_t k)
{
    int32_t co = 0;
    for (; co + 2 <= n; co += 2, w += 2 * k) {
        const int8_t *w1 = w + k;
        int32_t j = 0;
        for (; j + 4 <= k; j += 4) { /* whole groups: the tail's test left out of the loop */
            widen_group_x2(&ww, pc_read_u32(w + j), pc_read_u32(w1 + j));
        }
        if (j < k) {
            widen_group_x2(&ww, read_tail(w + j, k - j), read_tail(w1 + j, k - j));
        }
    }
    if (co < n) {
        widen_weights(ww, w, 1, k);
    }
}

/* widen_quad_halves' loop for cin a multiple of 8, two groups of four channels a step; the
 * assembly reads the fields at these offsets. */
typedef struct {
    const int8_t *pa, *pb, *pc, *pd; /*  0 - 12: the four pixels */
    uint32_t *col, *col2;            /* 16, 20: the two halves */
    uint32_t off2;                   /* 24 */
    int32_t steps;                   /* 28: cin / 8 */
} widen_quad_t;

#if !defined(PC_DSP_EMULATE)
/* Two pixels' group of four channels, each word loaded once and widened twice into one STM:
 * r8, r9 the words, r10, r11, ip, lr the widened values, r6 off2. */
#define WIDEN_PAIR_ASM(x, y, dst)                                                              \
    "ldr r8, [" x "], #4\n\t"                                                                  \
    "ldr r9, [" y "], #4\n\t"                                                                  \
    "sxtab16 r10, r6, r8\n\t"                                                                 \
    "sxtab16 r11, r6, r9\n\t"                                                                 \
    "sxtab16 ip, r6, r8, ror #8\n\t"                                                          \
    "sxtab16 lr, r6, r9, ror #8\n\t"                                                          \
    "stm " dst "!, {r10, r11, ip, lr}\n\t"
/* 15 instructions a group, where gcc's loop takes 18 (one LDR and two SXTAB16 a word, STRD). */
__attribute__((naked, noinline)) static void widen_quad8(
    __attribute__((unused)) const widen_quad_t *a)
{
    __asm__("push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
            "ldm r0, {r0, r1, r2, r3, r4, r5, r6, r7}\n"
            "1:\n\t" WIDEN_PAIR_ASM("r0", "r1", "r4") WIDEN_PAIR_ASM("r2", "r3", "r5")
            WIDEN_PAIR_ASM("r0", "r1", "r4") WIDEN_PAIR_ASM("r2", "r3", "r5")
            "subs r7, r7, #1\n\t"
            "bne 1b\n\t"
            "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}");
}
#undef WIDEN_PAIR_ASM
PC_STATIC_ASSERT(sizeof(widen_quad_t) == 32, widen_quad_layout);
#endif

/* Channels from which widen_quad8's call pays for itself: already at 16 (mbv2-0.35-144's
 * 72x72x16 -> 8 -0.6 %, against 32 as the threshold, measured); K = 8 is pointwise_k8's. */
#define WIDEN_QUAD8_MIN_CIN 16

/* widen_quad's values (off2: the input offset in both halves) in two halves: pixels a, b
 * from col (per group of four channels: a even, b even, a odd, b odd), pixels c, d from
 * col + cin, as pw2x2_run reads them.
 * cin % 4 == 0. */
PC_INLINE void widen_quad_halves(const int8_t *pa, const int8_t *pb, const int8_t *pc,
                                 const int8_t *pd, uint32_t *col, int32_t cin, uint32_t off2)
{
    uint32_t *col2 = col + cin;
#if !defined(PC_DSP_EMULATE)
    if (cin % 8 == 0 && cin >= WIDEN_QUAD8_MIN_CIN) {
        const widen_quad_t a = {pa, pb, pc, pd, col, col2, off2, cin / 8};
        widen_quad8(&a);
        return;
    }
#endif
    for (int32_t i = 0; i < cin; i += 4) {
        const uint32_t a = pc_read_u32(pa + i), b = pc_read_u32(pb + i);
        const uint32_t c = pc_read_u32(pc + i), d = pc_read_u32(pd + i);
        pc_store2_inc(&col, pc_sxtab16(off2, a), pc_sxtab16(off2, b));
        pc_store2_inc(&col, pc_sxtab16_ror8(off2, a), pc_sxtab16_ror8(off2, b));
        pc_store2_inc(&col2, pc_sxtab16(off2, c), pc_sxtab16(off2, d));
        pc_store2_inc(&col2, pc_sxtab16_ror8(off2, c), pc_sxtab16_ror8(off2, d));
    }
}

/* The records of the chunk's channel pairs [c0, c0 + 2 * pairs) (all fast), filter rows of k
 * values from w (channel c0's), kpad = k rounded up to 4. */
static void pw2x2_records(uint32_t *rec, const chunk_t *ch, int32_t c0, int32_t pairs,
                          const int8_t *w, int32_t k)
{
    const int32_t kpad = (k + 3) & ~3;
    for (int32_t i = 0; i < pairs; i++, rec += PW2X2_RECORD(kpad), w += 2 * k) {
        const pc_rq_t *r = ch->rq + c0 + 2 * i;
        uint32_t *rq = rec + 4 + kpad;
        rec[0] = rec[1] = (uint32_t)r[0].bias2;
        rec[2] = rec[3] = (uint32_t)r[1].bias2;
        widen_weights_x2(rec + 4, w, 2, k);
        rq[0] = (uint32_t)r[0].mult;
        rq[1] = (uint32_t)r[0].rnd;
        rq[2] = (uint32_t)r[0].rsh;
        rq[3] = (uint32_t)r[1].mult;
        rq[4] = (uint32_t)r[1].rnd;
        rq[5] = (uint32_t)r[1].rsh;
    }
}

/* Four pixels of the pairs' channels, for pw2x2_run; the assembly reads the fields at these
 * offsets. */
typedef struct {
    const uint32_t *rec, *end;   /*  0, 4: the pairs' records */
    const uint32_t *col0, *col1; /*  8, 12: widen_quad_halves' two halves */
    int8_t *out;                 /* 16: pixel a's output of the first pair's first channel */
    int32_t cout;                /* 20: bytes from one pixel's outputs to the next's */
} pw2x2_run_t;

/* Four pixels of each pair's two channels, as the assembly computes them; clamped to
 * act_min / act_max when clamp (which the assembly never is). */
PC_INLINE void pw2x2_run_c(const chunk_t *ch, const pw2x2_run_t *a, int32_t kpad, int clamp)
{
    int8_t *out = a->out;
    for (const uint32_t *rec = a->rec; rec != a->end; rec += PW2X2_RECORD(kpad), out += 2) {
        const uint32_t *rq = rec + 4 + kpad;
        for (int h = 0; h < 2; h++) {
            const uint32_t *x = h == 0 ? a->col0 : a->col1;
            const uint32_t *w = rec + 4;
            int32_t acc[4] = {(int32_t)rec[0], (int32_t)rec[1], (int32_t)rec[2], (int32_t)rec[3]};
            int8_t *o = out + 2 * h * a->cout;
            for (int32_t g = 0; g < kpad / 4; g++, w += 4, x += 4) {
                acc[0] = pc_smlad(w[2], x[2], pc_smlad(w[0], x[0], acc[0]));
                acc[1] = pc_smlad(w[2], x[3], pc_smlad(w[0], x[1], acc[1]));
                acc[2] = pc_smlad(w[3], x[2], pc_smlad(w[1], x[0], acc[2]));
                acc[3] = pc_smlad(w[3], x[3], pc_smlad(w[1], x[1], acc[3]));
            }
            for (int i = 0; i < 4; i++) {
                const uint32_t *c = rq + 3 * (i / 2); /* accumulators 0, 1: the first channel */
                acc[i] = pc_rq_shifted(acc[i], (int32_t)c[0], (int32_t)c[1], (int32_t)c[2]);
                acc[i] = clamp ? clamp_to(ch, acc[i]) : acc[i];
            }
            o[0] = (int8_t)acc[0];
            o[1] = (int8_t)acc[2];
            o[a->cout] = (int8_t)acc[1];
            o[a->cout + 1] = (int8_t)acc[3];
        }
    }
}

#if defined(PC_DSP_EMULATE)
#define PW2X2_RUN_K(k)                                                                         \
    PC_NOINLINE void pw2x2_run_k##k(const pw2x2_run_t *a)                                      \
    {                                                                                          \
        pw2x2_run_c(NULL, a, k, 0);                                                            \
    }
#else
/* ip: the record; lr: the half's columns; r0 - r3: the four accumulators (pixels a, b of the
 * first channel, then of the second); r4 - r11: the LDMs' words. */
#define PW2X2_GROUP                                                                            \
    "ldm ip!, {r4, r5, r6, r7}\n\t"                                                            \
    "ldm lr!, {r8, r9, r10, r11}\n\t"                                                          \
    "smlad r0, r4, r8, r0\n\t"                                                                 \
    "smlad r1, r4, r9, r1\n\t"                                                                 \
    "smlad r2, r5, r8, r2\n\t"                                                                 \
    "smlad r3, r5, r9, r3\n\t"                                                                 \
    "smlad r0, r6, r10, r0\n\t"                                                                \
    "smlad r1, r6, r11, r1\n\t"                                                                \
    "smlad r2, r7, r10, r2\n\t"                                                                \
    "smlad r3, r7, r11, r3\n\t"
#define PW2X2_G2 PW2X2_GROUP PW2X2_GROUP
#define PW2X2_G4 PW2X2_G2 PW2X2_G2
#define PW2X2_G8 PW2X2_G4 PW2X2_G4
#define PW2X2_GROUPS_8 PW2X2_G2
#define PW2X2_GROUPS_16 PW2X2_G4
#define PW2X2_GROUPS_24 PW2X2_G4 PW2X2_G2
#define PW2X2_GROUPS_28 PW2X2_G4 PW2X2_G2 PW2X2_GROUP
#define PW2X2_GROUPS_32 PW2X2_G8
#define PW2X2_GROUPS_40 PW2X2_G8 PW2X2_G2
#define PW2X2_GROUPS_48 PW2X2_G8 PW2X2_G4
#define PW2X2_GROUPS_56 PW2X2_G8 PW2X2_G4 PW2X2_G2
#define PW2X2_GROUPS_64 PW2X2_G8 PW2X2_G8
#define PW2X2_GROUPS_96 PW2X2_G8 PW2X2_G8 PW2X2_G8
/* The pair's six constants, then each accumulator requantised (pc_rq_shifted). */
#define PW2X2_RQ                                                                               \
    "ldm ip!, {r4, r5, r6, r7, r8, r9}\n\t"                                                    \
    PC_ASM_RQ("r0", "r4", "r5", "r6", "r10") PC_ASM_RQ("r1", "r4", "r5", "r6", "r10")          \
    PC_ASM_RQ("r2", "r7", "r8", "r9", "r10") PC_ASM_RQ("r3", "r7", "r8", "r9", "r10")
/* r10: the half's first pixel's output; r11: cout. */
#define PW2X2_STORE                                                                            \
    "strb r0, [r10]\n\t"                                                                       \
    "strb r2, [r10, #1]\n\t"                                                                   \
    "add r10, r10, r11\n\t"                                                                    \
    "strb r1, [r10]\n\t"                                                                       \
    "strb r3, [r10, #1]\n\t"
/* After a pair's second half: its stores (pixels c, d), the next pair's outputs, and the
 * loop over the pairs (their end on the stack at 4). */
#define PW2X2_PAIR_END                                                                         \
    "ldrd r10, r11, [sp, #16]\n\t"                                                             \
    "add r4, r10, #2\n\t" /* the next pair's outputs */                                        \
    "str r4, [sp, #16]\n\t"                                                                    \
    "add r10, r10, r11, lsl #1\n\t" PW2X2_STORE                                                \
    "ldr r0, [sp, #4]\n\t"                                                                     \
    "cmp ip, r0\n\t"                                                                           \
    "bne 1b\n\t"
#define PW2X2_RUN_K(k)                                                                         \
    __attribute__((naked, noinline)) static void pw2x2_run_k##k(                               \
        __attribute__((unused)) const pw2x2_run_t *a)                                          \
    {                                                                                          \
        __asm__("push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                               \
                "sub sp, sp, #24\n\t"                                                          \
                "ldm r0, {r0, r1, r2, r3, r4, r5}\n\t" /* *a onto the stack */                 \
                "stm sp, {r0, r1, r2, r3, r4, r5}\n\t"                                         \
                "mov ip, r0\n"                                                                 \
                "1:\n\t" /* a pair: pixels a, b */                                             \
                "ldr lr, [sp, #8]\n\t"                                                         \
                "ldm ip!, {r0, r1, r2, r3}\n\t" PW2X2_GROUPS_##k PW2X2_RQ                      \
                "ldrd r10, r11, [sp, #16]\n\t" PW2X2_STORE                                     \
                "subw ip, ip, #(4 * (" #k " + 10))\n\t" /* the record again: pixels c, d */   \
                "ldr lr, [sp, #12]\n\t"                                                        \
                "ldm ip!, {r0, r1, r2, r3}\n\t" PW2X2_GROUPS_##k PW2X2_RQ                      \
                PW2X2_PAIR_END                                                                 \
                "add sp, sp, #24\n\t"                                                          \
                "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}");                                 \
    }
PC_STATIC_ASSERT(sizeof(pw2x2_run_t) == 24, pw2x2_layout);
#endif

/* The K values with a kernel of their own (pointwise_narrow; 28: the RGB stem, 27 padded). */
#define PW_NARROW_KS(X) X(8) X(16) X(24) X(32) X(40) X(48) X(56) X(64) X(96)

PW_NARROW_KS(PW2X2_RUN_K)
PW2X2_RUN_K(28)

/* ---- pointwise from the compiler's pair records ----------------------------------------------
 * Past K = 96 the pair records of a part of the channels no longer fit the stack
 * (pointwise_narrow), so the compiler builds all of them into flash (pair_records, above),
 * where they take the int8 filter's place: 2 bytes a weight and 40 a pair of channels,
 * against 1 a weight. Four pixels are widened once for all the output channels, and each
 * pair takes the two-channel kernel's groups (10 instructions for 16 MACs, where the
 * six-pixel kernel takes 18 for 24 and widens the weights again for each six pixels). K
 * varies, so the groups loop, eight (32 K) a step, after K / 4 % 8 of them ahead of the loop
 * (pw_records_*); the loop's end is on the stack (three instructions a step). A pixel left
 * over (a run of 4n + 1) takes records_one. */
typedef struct {
    pw2x2_run_t run;         /*  0: as pw2x2_run_k* */
    const uint32_t *col_end; /* 24: the second half's columns' end: run.col1 + K */
    const uint32_t *pair;    /* 28: the assembly's: the pair's record, for the second half */
} pw_records_run_t;

typedef void (*pw_records_fn_t)(pw_records_run_t *a);

#if defined(PC_DSP_EMULATE)
PC_NOINLINE void pw_records_run(pw_records_run_t *a)
{
    pw2x2_run_c(NULL, &a->run, (int32_t)(a->col_end - a->run.col1), 0);
}
#define pw_records_0 pw_records_run
#define pw_records_2 pw_records_run
#define pw_records_4 pw_records_run
#define pw_records_6 pw_records_run
#else
/* pw2x2_run_k's loop with `ahead` groups, then eight a step until the half's columns end. */
#define PW_RECORDS_RUN(name, ahead)                                                            \
    __attribute__((naked, noinline)) static void name(                                         \
        __attribute__((unused)) pw_records_run_t *a)                                           \
    {                                                                                          \
        __asm__("push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                               \
                "sub sp, sp, #32\n\t"                                                          \
                "ldm r0, {r0, r1, r2, r3, r4, r5, r6}\n\t" /* *a onto the stack */             \
                "stm sp, {r0, r1, r2, r3, r4, r5, r6}\n\t"                                     \
                "mov ip, r0\n"                                                                 \
                "1:\n\t" /* a pair: pixels a, b */                                             \
                "str ip, [sp, #28]\n\t"                                                        \
                "ldr lr, [sp, #8]\n\t"                                                         \
                "ldm ip!, {r0, r1, r2, r3}\n\t" ahead                                          \
                "2:\n\t" PW2X2_G8                                                              \
                "ldr r4, [sp, #12]\n\t"                                                        \
                "cmp lr, r4\n\t"                                                               \
                "bne 2b\n\t" PW2X2_RQ                                                          \
                "ldrd r10, r11, [sp, #16]\n\t" PW2X2_STORE                                     \
                "ldr ip, [sp, #28]\n\t" /* the record again: pixels c, d */                    \
                "ldr lr, [sp, #12]\n\t"                                                        \
                "ldm ip!, {r0, r1, r2, r3}\n\t" ahead                                          \
                "3:\n\t" PW2X2_G8                                                              \
                "ldr r4, [sp, #24]\n\t"                                                        \
                "cmp lr, r4\n\t"                                                               \
                "bne 3b\n\t" PW2X2_RQ                                                          \
                PW2X2_PAIR_END                                                                 \
                "add sp, sp, #32\n\t"                                                          \
                "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}");                                 \
    }
PW_RECORDS_RUN(pw_records_0, "")
PW_RECORDS_RUN(pw_records_2, PW2X2_G2)
PW_RECORDS_RUN(pw_records_4, PW2X2_G4)
PW_RECORDS_RUN(pw_records_6, PW2X2_G4 PW2X2_G2)
#undef PW_RECORDS_RUN
PC_STATIC_ASSERT(sizeof(pw_records_run_t) == 32, pw_records_layout);
#endif

/* One pixel (widen_one's columns, run.col0 to col_end) of every pair of the records: per two
 * groups two LDM of weights, one of columns and 8 SMLAD for 16 MACs. */
#if defined(PC_DSP_EMULATE)
PC_NOINLINE void records_one(const pw_records_run_t *a)
{
    const int32_t kpad = 2 * (int32_t)(a->col_end - a->run.col0);
    int8_t *out = a->run.out;
    for (const uint32_t *rec = a->run.rec; rec != a->run.end; rec += PW2X2_RECORD(kpad)) {
        const uint32_t *w = rec + 4;
        const uint32_t *rq = w + kpad;
        const uint32_t *x = a->run.col0;
        int32_t s = (int32_t)rec[0], t = (int32_t)rec[2];
        for (int32_t g = 0; g < kpad / 4; g++, w += 4, x += 2) {
            s = pc_smlad(w[2], x[1], pc_smlad(w[0], x[0], s));
            t = pc_smlad(w[3], x[1], pc_smlad(w[1], x[0], t));
        }
        *out++ = (int8_t)pc_rq_shifted(s, (int32_t)rq[0], (int32_t)rq[1], (int32_t)rq[2]);
        *out++ = (int8_t)pc_rq_shifted(t, (int32_t)rq[3], (int32_t)rq[4], (int32_t)rq[5]);
    }
}
#else
/* r0, r1: the pair's accumulators; ip: the record; lr: the columns, r3 their start, r2 their
 * end; r4 - r11: the LDMs' words; the outputs and the records' end on the stack. */
__attribute__((naked, noinline)) static void records_one(
    __attribute__((unused)) const pw_records_run_t *a)
{
    __asm__("push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
            "sub sp, sp, #8\n\t"
            "ldr r4, [r0, #16]\n\t" /* run.out */
            "ldr r5, [r0, #4]\n\t"  /* run.end */
            "strd r4, r5, [sp]\n\t"
            "ldr ip, [r0]\n\t"      /* run.rec */
            "ldr r3, [r0, #8]\n\t"  /* run.col0 */
            "ldr r2, [r0, #24]\n"   /* col_end */
            "1:\n\t"                /* a pair */
            "ldm ip!, {r0, r1, r4, r5}\n\t"
            "mov r1, r4\n\t"
            "mov lr, r3\n"
            "2:\n\t" /* two groups */
            "ldm ip!, {r4, r5, r6, r7}\n\t"
            "ldm lr!, {r8, r9, r10, r11}\n\t"
            "smlad r0, r4, r8, r0\n\t"
            "smlad r1, r5, r8, r1\n\t"
            "smlad r0, r6, r9, r0\n\t"
            "smlad r1, r7, r9, r1\n\t"
            "ldm ip!, {r4, r5, r6, r7}\n\t"
            "smlad r0, r4, r10, r0\n\t"
            "smlad r1, r5, r10, r1\n\t"
            "smlad r0, r6, r11, r0\n\t"
            "smlad r1, r7, r11, r1\n\t"
            "cmp lr, r2\n\t"
            "bne 2b\n\t"
            "ldm ip!, {r4, r5, r6, r7, r8, r9}\n\t"
            PC_ASM_RQ("r0", "r4", "r5", "r6", "r10") PC_ASM_RQ("r1", "r7", "r8", "r9", "r10")
            "ldr r10, [sp]\n\t"
            "strb r0, [r10], #1\n\t"
            "strb r1, [r10], #1\n\t"
            "str r10, [sp]\n\t"
            "ldr r10, [sp, #4]\n\t"
            "cmp ip, r10\n\t"
            "bne 1b\n\t"
            "add sp, sp, #8\n\t"
            "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}");
}
#endif

typedef void (*pw2x2_fn_t)(const pw2x2_run_t *a);

/* The kernel for K = cin, or NULL when cin is not a narrow K. */
static pw2x2_fn_t pw_narrow_kernel(int32_t cin)
{
#define PW_NARROW_CASE(k)                                                                      \
    case k:                                                                                    \
        return pw2x2_run_k##k;
    switch (cin) {
        PW_NARROW_KS(PW_NARROW_CASE)
    default:
        return NULL;
    }
#undef PW_NARROW_CASE
}

/* The last channel of an odd part, alone (ww: its widen_weights words) for the same four
 * pixels (widen_quad_halves' col, kpad values). */
static void pw4_last_channel(const chunk_t *ch, const pc_rq_t *r, const uint32_t *ww,
                             int32_t kpad, const uint32_t *col, int8_t *out, int32_t cout,
                             int clamp)
{
    const uint32_t *x = col;
    const uint32_t *y = col + kpad;
    int32_t a = r->bias2, b = a, c = a, d = a;
    for (int32_t g = 0; g < kpad / 4; g++, ww += 2, x += 4, y += 4) {
        a = pc_smlad(ww[1], x[2], pc_smlad(ww[0], x[0], a));
        b = pc_smlad(ww[1], x[3], pc_smlad(ww[0], x[1], b));
        c = pc_smlad(ww[1], y[2], pc_smlad(ww[0], y[0], c));
        d = pc_smlad(ww[1], y[3], pc_smlad(ww[0], y[1], d));
    }
    int8_t *out2 = out + 2 * cout;
    pw4_store(ch, pc_rq_fast_x2(a, r), pc_rq_fast_x2(b, r), pc_rq_fast_x2(c, r),
              pc_rq_fast_x2(d, r), &out, &out2, cout, clamp);
}

/* The small-patch conv's widened weights on the stack: up to this many words (1.5 kB: the
 * RGB first layer's records, 28 values, up to 20 channels); wider chunks widen as they go. */
#define CONV_WW_WORDS 384

/* Patches up to this many values take the int8-gather + pointwise route (stack: 2 x this). */
#define CONV_SMALL_K 64

/* Words of the widened weights of n channels of kpad values: the RGB stem's pair records
 * (pw2x2_records, an odd last channel as widen_weights), or widen_weights'. */
static int32_t conv_ww_words(int32_t n, int32_t kpad)
{
    return kpad == 28 ? n / 2 * PW2X2_RECORD(28) + n % 2 * kpad / 2 : n * kpad / 2;
}

/* The RGB stem's four pixels (widen_quad_halves' col) of all the chunk's channels: the pairs
 * (ww: their records), then an odd last channel (its widen_weights words after them). */
static void conv_pw4x2_k28(const chunk_t *ch, const uint32_t *ww, const uint32_t *col,
                           int8_t *out, int32_t cout)
{
    const int32_t pairs = ch->n / 2;
    const pw2x2_run_t a = {ww, ww + pairs * PW2X2_RECORD(28), col, col + 28, out, cout};
    if (ch->clamp) {
        pw2x2_run_c(ch, &a, 28, 1);
    } else if (pairs > 0) {
        pw2x2_run_k28(&a);
    }
    if (ch->n % 2) {
        pw4_last_channel(ch, ch->rq + ch->n - 1, a.end, 28, col, out + ch->n - 1, cout,
                         ch->clamp);
    }
}

/* One chunk of a conv with patches of up to CONV_SMALL_K values (the RGB first layer: 27):
 * gathered as int8 on the stack (or, the RGB stem's inside windows, read straight from the
 * input: widen_rgb4), then widened and multiplied like a pointwise layer. The patches are
 * padded to a multiple of 4 with the zero point, so the columns (on the stack: the padded
 * size can exceed the scratch) end in a full group. A function of its own, so its stack
 * buffers and the caller's chunk are two frames under 4 kB. */
PC_NOINLINE void conv_small(const pc_conv_params_t *p, const chunk_t *ch, const int8_t *w,
                            const int8_t *input, int8_t *output, const pw_runs_t *runs)
{
    const int32_t k = p->kernel_h * p->kernel_w * p->input.c;
    const int32_t kpad = (k + 3) & ~3;
    const int32_t wo = p->output.w;
    const int32_t cout = p->output.c;
    const int8_t zp = (int8_t)(-p->input_offset);
    const uint32_t off2 = pc_dup16(p->input_offset);
    int8_t pa[CONV_SMALL_K], pb[CONV_SMALL_K], pc[CONV_SMALL_K], pd[CONV_SMALL_K];
    const int8_t *const px[4] = {pa, pb, pc, pd};
    uint32_t col4[2 * CONV_SMALL_K]; /* four pixels' columns, or two (widen_pair) */
    uint32_t ww[CONV_WW_WORDS];
    const int wide = ch->fast && conv_ww_words(ch->n, kpad) <= CONV_WW_WORDS;
    const int pairs = wide && kpad == 28; /* the RGB first conv: two channels at a time */
    /* the RGB stem: its inside windows widened straight from the input (widen_rgb4;
     * widen_weights_x2 gives the pad a zero weight) */
    const int rgb = pairs && p->kernel_h == 3 && p->kernel_w == 3 && p->input.c == 3;
    for (int32_t j = k; j < kpad; j++) {
        pa[j] = pb[j] = pc[j] = pd[j] = zp;
    }
    if (pairs) {
        pw2x2_records(ww, ch, 0, ch->n / 2, w, k);
        if (ch->n % 2) {
            widen_weights(ww + ch->n / 2 * PW2X2_RECORD(28), w + (ch->n - 1) * k, 1, k);
        }
    } else if (wide) {
        widen_weights(ww, w, ch->n, k);
    }
    for (int32_t r = 0; r < runs->rows; r++) {
        const int32_t end = (r + 1) * runs->n;
        int32_t i = r * runs->n;
        /* output pixel i of this run at out + i * cout */
        int8_t *out = output + r * (runs->out_row - runs->n * cout);
        for (; ch->fast && i + 4 <= end; i += 4) { /* as pointwise (mat_mult_pw4) */
            const int32_t oy = i / wo;
            const int32_t ox = i % wo;
            int widened = 0; /* col4 holds the four columns already */
            if (windows4_inside(p, oy, ox)) {
                const int32_t iy0 = oy * p->stride_h - p->pad_top;
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                const int8_t *window = input + (iy0 * p->input.w + ix0) * p->input.c;
                if (rgb) {
                    widen_rgb4(p, window, col4);
                    widened = 1;
                } else {
                    im2col_s8_inside4(p, window, pa, pb, pc, pd);
                }
            } else {
                im2col_s8(p, input, oy, ox, pa);
                im2col_s8(p, input, (i + 1) / wo, (i + 1) % wo, pb);
                im2col_s8(p, input, (i + 2) / wo, (i + 2) % wo, pc);
                im2col_s8(p, input, (i + 3) / wo, (i + 3) % wo, pd);
            }
            if (pairs) {
                if (!widened) {
                    widen_quad_halves(pa, pb, pc, pd, col4, kpad, off2);
                }
                conv_pw4x2_k28(ch, ww, col4, out + i * cout, cout);
            } else {
                widen_quad(px, col4, kpad, p->input_offset);
                if (wide) {
                    mat_mult_pw4_ww(ch, ww, kpad, col4, out + i * cout, cout);
                } else {
                    mat_mult_pw4_padded(ch, w, k, col4, out + i * cout, cout);
                }
            }
        }
        for (; i + 2 <= end; i += 2) {
            im2col_s8(p, input, i / wo, i % wo, pa);
            im2col_s8(p, input, (i + 1) / wo, (i + 1) % wo, pb);
            widen_pair(pa, pb, col4, kpad, p->input_offset);
            mat_mult_pw(ch, w, k, col4, out + i * cout, out + (i + 1) * cout, 1);
        }
        if (i < end) {
            im2col_s8(p, input, i / wo, i % wo, pa);
            widen_pair(pa, pa, col4, kpad, p->input_offset);
            mat_mult_pw(ch, w, k, col4, out + i * cout, out + i * cout, 1);
        }
    }
}

void pc_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                  const int8_t *input, const int8_t *filter, const int32_t *bias,
                  int8_t *output, void *scratch)
{
    const int32_t k = p->kernel_h * p->kernel_w * p->input.c;
    const int32_t wo = p->output.w;
    const int32_t cout = p->output.c;
    const pw_runs_t runs = output_runs(p);
    int16_t *col_a = (int16_t *)scratch;
    int16_t *col_b = col_a + k;
    chunk_t ch;
    /* Output channels in chunks (usually one), so each channel's constants are prepared once
     * per layer; the patches are rebuilt per chunk. */
    for (int32_t co0 = 0; co0 < cout; co0 += PC_RQ_CHUNK) {
        const int8_t *w = filter + co0 * k;
        chunk_prepare(&ch, p, q, bias, co0, k);
        if (k <= CONV_SMALL_K) {
            conv_small(p, &ch, w, input, output + co0, &runs);
            continue;
        }
        for (int32_t r = 0; r < runs.rows; r++) {
            const int32_t end = (r + 1) * runs.n;
            int32_t i = r * runs.n;
            int8_t *out = output + r * (runs.out_row - runs.n * cout) + co0;
            for (; i + 2 <= end; i += 2) {
                im2col(p, input, i / wo, i % wo, col_a);
                im2col(p, input, (i + 1) / wo, (i + 1) % wo, col_b);
                mat_mult_2x2(&ch, w, k, col_a, col_b, out + i * cout, out + (i + 1) * cout);
            }
            if (i < end) {
                im2col(p, input, i / wo, i % wo, col_a);
                mat_mult_2x2(&ch, w, k, col_a, col_a, out + i * cout, out + i * cout);
            }
        }
    }
}

/* Input pixel of output pixel i (pixels counted row by row, output.w to a row). */
static const int8_t *pw_pixel(const pc_conv_params_t *p, const int8_t *input, int32_t i)
{
    const int32_t wo = p->output.w;
    return input + ((i / wo) * p->stride_h * p->input.w + (i % wo) * p->stride_w) * p->input.c;
}

/* Whether input pixel i is at input + i * cin (stride 1, rows as long as the output's). */
static int pw_dense(const pc_conv_params_t *p)
{
    return p->stride_h == 1 && p->stride_w == 1 && p->input.w == p->output.w;
}

/* Input pixels i .. i + 3 widened into col4's two halves (widen_quad_halves); dense: pw_dense. */
PC_INLINE void widen_quad_at(const pc_conv_params_t *p, const int8_t *input, int dense,
                             int32_t i, uint32_t *col4, uint32_t off2)
{
    const int32_t cin = p->input.c;
    if (dense) { /* four pixels one after the other */
        const int8_t *px = input + i * cin;
        widen_quad_halves(px, px + cin, px + 2 * cin, px + 3 * cin, col4, cin, off2);
    } else {
        widen_quad_halves(pw_pixel(p, input, i), pw_pixel(p, input, i + 1),
                          pw_pixel(p, input, i + 2), pw_pixel(p, input, i + 3), col4, cin, off2);
    }
}

/* The chunk's outputs of pixels [0, n - n % 4) of every run, four pixels at a time (ch all
 * fast, cin <= PW4_MAX_CIN). Returns the pixels done in each run. A function of its own,
 * like pointwise_narrow, so their stack buffers are never live together. */
PC_NOINLINE int32_t pointwise_quads(const pc_conv_params_t *p, const chunk_t *ch,
                                    const int8_t *w, const int8_t *input, int8_t *output,
                                    const pw_runs_t *runs)
{
    uint32_t col4[2 * PW4_MAX_CIN];
    const int32_t cin = p->input.c;
    const int32_t cout = p->output.c;
    const int dense = pw_dense(p);
    int32_t i = 0;
    const int32_t n = runs->n; /* locals: the int8 stores below may alias *runs */
    const int32_t rows = runs->rows;
    const int hex = cin % 8 == 0 && cin > 16 && cin <= PW6_MAX_CIN && !ch->clamp;
    const uint32_t off2 = pc_dup16(p->input_offset);
    void (*const run6)(pw_pixels_run_t *a) = cin % 16 == 0 ? pw6_run4 : pw6_run2;
    void (*const run4)(pw_pixels_run_t *a) = cin % 16 == 0 ? pw4_run4 : pw4_run2;
    for (int32_t r = 0; r < rows; r++) {
        const int32_t base = r * n;
        int8_t *out = output + r * runs->out_row;
        i = 0;
        for (; hex && i + 6 <= n; i += 6) {
            const int8_t *px[6];
            for (int32_t j = 0; j < 6; j++) {
                px[j] = dense ? input + (base + i + j) * cin : pw_pixel(p, input, base + i + j);
            }
            widen_pairs(px, 6, col4, cin, off2);
            pw_pixels_run_t a = {w,    ch->rq, ch->rq + ch->n, col4, col4 + 3 * cin,
                                 out + i * cout, cout};
            run6(&a);
        }
        for (; i + 4 <= n; i += 4) {
            const int8_t *px[4];
            for (int32_t j = 0; j < 4; j++) {
                px[j] = dense ? input + (base + i + j) * cin : pw_pixel(p, input, base + i + j);
            }
            widen_quad(px, col4, cin, p->input_offset);
            if (cin == 8 && !ch->clamp) {
                mat_mult_pw4_k8(ch, w, col4, out + i * cout, cout);
            } else if (cin == 16 && !ch->clamp) {
                mat_mult_pw4_k16(ch, w, col4, out + i * cout, cout);
            } else if (cin % 8 == 0 && !ch->clamp) {
                pw_pixels_run_t a = {w,    ch->rq, ch->rq + ch->n, col4, col4 + 2 * cin,
                                     out + i * cout, cout};
                run4(&a);
            } else {
                mat_mult_pw4_any(ch, w, cin, col4, out + i * cout, cout);
            }
        }
    }
    return i;
}

/* ---- narrow pointwise: K = 8 to 64 by 8, and 96 ---------------------------------------------
 * Layers with few input channels (a block's expansion, a projection's input) have so few
 * MACs per output that each SXTB16 of a filter word shows: their weights are widened (and
 * doubled, with the bias, so each accumulator comes out as the 2 * acc the requantisation
 * starts from: pc_rq_fast_x2) once for all pixels into pair records (pw2x2_records), and
 * taken two channels of four pixels at a time (pw2x2_run_k*). The stack holds a part of the
 * channels' records, and each part widens the four pixels again: past K = 96 the parts are
 * so small that those layers take the compiler's records from flash (pointwise_records), or
 * without them the six-pixel kernel (pw6_run), which stayed ahead of the parts (measured
 * with a loop over any K, records in 2.25 kB: K = 112 +3.9 %, 128 +6 %, 144 -1.8 to +2.8 %,
 * 160 +10 %). Stack: 3 kB of records and the four pixels' columns, under the 4 kB a
 * kernel's frame may take. */
#define PW_NARROW_K 96
#define PW_NARROW_WW 768
/* Widening the weights costs about 1.75 * cin instructions per output channel and saves
 * about one per output channel and pixel: calls with fewer pixels than a 5x5 map (a patch
 * stage's pieces) keep mat_mult_pw4_k8 / _k16, which widen as they go. */
#define PW_NARROW_MIN_PIXELS 25

/* One pixel (widen_one's col) of a channel alone (ww: its widen_weights words), K = cin. */
static int8_t last_channel_one(const pc_rq_t *r, const uint32_t *ww, int32_t cin,
                               const uint32_t *col)
{
    int32_t acc = r->bias2;
    for (int32_t g = 0; g < cin / 4; g++, ww += 2, col += 2) {
        acc = pc_smlad(ww[1], col[1], pc_smlad(ww[0], col[0], acc));
    }
    return (int8_t)pc_rq_fast_x2(acc, r);
}

/* One pixel px of m channels into a->out: their pairs from a's records (records_one), an
 * odd last channel from its widen_weights words at a->end and its constants rq[m - 1]; col:
 * room for the pixel's widened values. A function of its own, so pointwise_narrow's frame
 * stays under 4 kB. */
PC_NOINLINE void records_pixel(const pc_conv_params_t *p, const pc_rq_t *rq,
                               const pw2x2_run_t *a, int32_t m, const int8_t *px, uint32_t *col)
{
    const int32_t cin = p->input.c;
    const pw_records_run_t one = {*a, col + cin / 2, NULL};
    widen_one(px, col, cin, p->input_offset);
    if (m >= 2) {
        records_one(&one);
    }
    if (m % 2) {
        a->out[m - 1] = last_channel_one(rq + m - 1, a->end, cin, col);
    }
}

/* pointwise_quads for K = cin with its kernel (pw_narrow_kernel; ch all fast, no clamp), and
 * a run's one pixel after the quads (records_one); two or three are left to the caller's 2x2
 * blocks (cheaper there than one at a time). Returns the pixels done in each run. */
PC_NOINLINE int32_t pointwise_narrow(const pc_conv_params_t *p, const chunk_t *ch,
                                     pw2x2_fn_t kernel, const int8_t *w, const int8_t *input,
                                     int8_t *output, const pw_runs_t *runs)
{
    uint32_t ww[PW_NARROW_WW]; /* a part's pair records, then an odd last channel's weights */
    uint32_t col4[2 * PW_NARROW_K];
    const int32_t cin = p->input.c;
    const int32_t cout = p->output.c;
    const int32_t rec = PW2X2_RECORD(cin);
    /* channels a part: as many pairs as fit beside an odd channel's cin / 2 words */
    const int32_t part = 2 * ((PW_NARROW_WW - cin / 2) / rec);
    const int dense = pw_dense(p);
    const uint32_t off2 = pc_dup16(p->input_offset);
    const int32_t n = runs->n; /* locals: the int8 stores below may alias *runs */
    const int32_t rows = runs->rows;
    int32_t i = 0;
    for (int32_t c0 = 0; c0 < ch->n; c0 += part) {
        const int32_t m = ch->n - c0 < part ? ch->n - c0 : part;
        pw2x2_run_t a = {ww, ww + m / 2 * rec, col4, col4 + cin, NULL, cout};
        pw2x2_records(ww, ch, c0, m / 2, w + c0 * cin, cin);
        if (m % 2) {
            widen_weights((uint32_t *)a.end, w + (c0 + m - 1) * cin, 1, cin);
        }
        for (int32_t r = 0; r < rows; r++) {
            const int32_t base = r * n;
            int8_t *out = output + r * runs->out_row + c0;
            for (i = 0; i + 4 <= n; i += 4) {
                widen_quad_at(p, input, dense, base + i, col4, off2);
                a.out = out + i * cout;
                if (m >= 2) {
                    kernel(&a);
                }
                if (m % 2) {
                    pw4_last_channel(ch, ch->rq + c0 + m - 1, a.end, cin, col4, a.out + m - 1,
                                     cout, 0);
                }
            }
            if (i + 1 == n) { /* one pixel left (a run of 4n + 1) */
                a.out = out + i * cout;
                records_pixel(p, ch->rq + c0, &a, m, pw_pixel(p, input, base + i), col4);
                i = n;
            }
        }
    }
    return i;
}

/* Whether the DSP kernels take p's pair records: K a multiple of 8 past 96 (their groups
 * are unrolled by two, their loop by eight) whose four pixels' columns fit the stack, and
 * whole pairs. The compiler builds records only for such layers. */
static int records_fit(const pc_conv_params_t *p)
{
    const int32_t cin = p->input.c;
    return cin > PW_NARROW_K && cin <= PW4_MAX_CIN && cin % 8 == 0 && p->output.c % 2 == 0;
}

/* The pointwise conv from p's pair records (records_fit): every run four pixels at a time,
 * then its last pixels one at a time. */
PC_NOINLINE void pointwise_records(const pc_conv_params_t *p, const int8_t *input,
                                   int8_t *output)
{
    static const pw_records_fn_t kernels[4] = {pw_records_0, pw_records_2, pw_records_4,
                                               pw_records_6}; /* by K / 8 % 4 */
    uint32_t col4[2 * PW4_MAX_CIN];
    const int32_t cin = p->input.c;
    const int32_t cout = p->output.c;
    const pw_runs_t runs = output_runs(p);
    const int dense = pw_dense(p);
    const uint32_t off2 = pc_dup16(p->input_offset);
    const uint32_t *rec = p->pair_records;
    const pw_records_fn_t kernel = kernels[cin / 8 % 4];
    pw_records_run_t a = {{rec, rec + cout / 2 * PW2X2_RECORD(cin), col4, col4 + cin, NULL, cout},
                          col4 + 2 * cin, NULL};
    for (int32_t r = 0; r < runs.rows; r++) {
        const int32_t base = r * runs.n;
        int8_t *out = output + r * runs.out_row;
        int32_t i = 0;
        for (; i + 4 <= runs.n; i += 4) {
            widen_quad_at(p, input, dense, base + i, col4, off2);
            a.run.out = out + i * cout;
            kernel(&a);
        }
        for (; i < runs.n; i++) {
            a.run.out = out + i * cout;
            records_pixel(p, NULL, &a.run, cout, pw_pixel(p, input, base + i), col4);
        }
    }
}

/* ---- pointwise K = 8: one pixel in four registers --------------------------------------------
 * A pixel's eight input values, widened (and offset) into four registers, serve every output
 * channel: per channel one LDM brings its requantisation constants and its four doubled,
 * widened weight words (pw_k8_chan_t, prepared once a call), four SMLAD make 2 * acc, and
 * the requantisation and the store follow, ten instructions an output; with the loop, 10.2
 * (sixteen channels a step: pw_k8_run16; eight or four, 10.4 and 10.8: _run8, _run4) and
 * about 18 a pixel. Two channels of two pixels took 13.9 an output: at eight MACs an
 * output, the loads of weights, columns and constants find no register block to hide in.
 * The loop takes all fourteen registers, the LDM's eight named in the order of the struct,
 * so it is a function of its own in assembly (pw_k8_run*), whose pixel loop keeps its state
 * on the stack. */
typedef struct {
    int32_t bias2, mult, rnd, rsh; /* the channel's pc_rq_t: 2 * bias and the fast constants */
    uint32_t w[4];                 /* widen_row's: (w0, w2), (w1, w3), (w4, w6), (w5, w7) */
} pw_k8_chan_t;

/* One run of pixels for pw_k8_run*; the assembly reads the fields at these offsets. */
typedef struct {
    const int8_t *px;               /*  0: the first pixel's eight input values */
    int32_t step;                   /*  4: bytes from one pixel to the next */
    const pw_k8_chan_t *chans, *end; /*  8, 12: the channels, a multiple of 4 */
    int8_t *out;                    /* 16: the first pixel's outputs */
    int32_t cout;                   /* 20: bytes from one pixel's outputs to the next's */
    uint32_t off2;                  /* 24: the input offset in both halves */
    int32_t count;                  /* 28: pixels, at least 1 */
} pw_k8_run_t;

/* Calls with fewer pixels keep the other routes: the constants cost about 20 instructions a
 * channel, and each pixel saves about 2.5 a channel. */
#define PW_K8_MIN_PIXELS 8

#if defined(PC_DSP_EMULATE)
PC_NOINLINE void pw_k8_run4(pw_k8_run_t *a)
{
    for (; a->count > 0; a->count--, a->px += a->step, a->out += a->cout) {
        const uint32_t lo = pc_read_u32(a->px);
        const uint32_t hi = pc_read_u32(a->px + 4);
        const uint32_t c0 = pc_sxtab16(a->off2, lo), c1 = pc_sxtab16_ror8(a->off2, lo);
        const uint32_t c2 = pc_sxtab16(a->off2, hi), c3 = pc_sxtab16_ror8(a->off2, hi);
        int8_t *out = a->out;
        for (const pw_k8_chan_t *s = a->chans; s != a->end; s++) {
            int32_t acc = pc_smlad(s->w[0], c0, s->bias2);
            acc = pc_smlad(s->w[1], c1, acc);
            acc = pc_smlad(s->w[2], c2, acc);
            acc = pc_smlad(s->w[3], c3, acc);
            *out++ = (int8_t)pc_rq_shifted(acc, s->mult, s->rnd, s->rsh);
        }
    }
}
/* the same: the unrolling is the assembly's */
PC_NOINLINE void pw_k8_run8(pw_k8_run_t *a)
{
    pw_k8_run4(a);
}

PC_NOINLINE void pw_k8_run16(pw_k8_run_t *a)
{
    pw_k8_run4(a);
}
#else
/* r8 - r11: the pixel's columns; ip: the channel; lr: the output; r0 - r7: the LDM. */
#define PW_K8_CHANNEL                                                                          \
    "ldm ip!, {r0, r1, r2, r3, r4, r5, r6, r7}\n\t"                                            \
    "smlad r0, r4, r8, r0\n\t"                                                                 \
    "smlad r0, r5, r9, r0\n\t"                                                                 \
    "smlad r0, r6, r10, r0\n\t"                                                                \
    "smlad r0, r7, r11, r0\n\t"                                                                \
    PC_ASM_RQ("r0", "r1", "r2", "r3", "r2")                                                  \
    "strb r0, [lr], #1\n\t"
#define PW_K8_CHANNELS4 PW_K8_CHANNEL PW_K8_CHANNEL PW_K8_CHANNEL PW_K8_CHANNEL
/* pw_k8_run with `channels` (a multiple of n a step) unrolled. */
#define PW_K8_RUN(name, channels)                                                              \
    __attribute__((naked, noinline)) static void name(__attribute__((unused)) pw_k8_run_t *a) \
    {                                                                                          \
        __asm__("push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                               \
                "sub sp, sp, #32\n\t"                                                          \
                "ldm r0, {r0, r1, r2, r3, r4, r5, r6, r7}\n\t" /* *a onto the stack */         \
                "stm sp, {r0, r1, r2, r3, r4, r5, r6, r7}\n"                                   \
                "1:\n\t" /* a pixel */                                                         \
                "ldrd r0, r1, [sp, #0]\n\t"                                                    \
                "ldr r2, [r0]\n\t"                                                             \
                "ldr r3, [r0, #4]\n\t"                                                         \
                "add r0, r0, r1\n\t"                                                           \
                "str r0, [sp, #0]\n\t"                                                         \
                "ldr r4, [sp, #24]\n\t"                                                        \
                "sxtab16 r8, r4, r2\n\t"                                                       \
                "sxtab16 r9, r4, r2, ror #8\n\t"                                               \
                "sxtab16 r10, r4, r3\n\t"                                                      \
                "sxtab16 r11, r4, r3, ror #8\n\t"                                              \
                "ldr ip, [sp, #8]\n\t"                                                         \
                "ldrd lr, r1, [sp, #16]\n\t"                                                   \
                "add r1, lr, r1\n\t"                                                           \
                "str r1, [sp, #16]\n"                                                          \
                "2:\n\t" channels                                                              \
                "ldr r0, [sp, #12]\n\t"                                                        \
                "cmp ip, r0\n\t"                                                               \
                "bne 2b\n\t"                                                                   \
                "ldr r0, [sp, #28]\n\t"                                                        \
                "subs r0, r0, #1\n\t"                                                          \
                "str r0, [sp, #28]\n\t"                                                        \
                "bne 1b\n\t"                                                                   \
                "add sp, sp, #32\n\t"                                                          \
                "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}");                                 \
    }
PW_K8_RUN(pw_k8_run4, PW_K8_CHANNELS4)
PW_K8_RUN(pw_k8_run8, PW_K8_CHANNELS4 PW_K8_CHANNELS4)
PW_K8_RUN(pw_k8_run16, PW_K8_CHANNELS4 PW_K8_CHANNELS4 PW_K8_CHANNELS4 PW_K8_CHANNELS4)
#undef PW_K8_RUN
#undef PW_K8_CHANNELS4
#undef PW_K8_CHANNEL
PC_STATIC_ASSERT(sizeof(pw_k8_chan_t) == 32 && sizeof(pw_k8_run_t) == 32, pw_k8_layout);
#endif

/* The chunk's channels (all fast, no clamp, a multiple of 4) of every pixel, K = 8. */
PC_NOINLINE void pointwise_k8(const pc_conv_params_t *p, const chunk_t *ch, const int8_t *w,
                              const int8_t *input, int8_t *output, const pw_runs_t *runs)
{
    pw_k8_chan_t chans[PC_RQ_CHUNK];
    const int32_t cout = p->output.c;
    const int32_t wo = p->output.w;
    const int32_t n = runs->n; /* locals: the int8 stores below may alias *runs */
    const int32_t rows = runs->rows;
    void (*const run)(pw_k8_run_t *a) = ch->n % 16 == 0 ? pw_k8_run16
                                        : ch->n % 8 == 0  ? pw_k8_run8
                                                          : pw_k8_run4;
    for (int32_t c = 0; c < ch->n; c++, w += 8) {
        const pc_rq_t *r = ch->rq + c;
        chans[c].bias2 = r->bias2;
        chans[c].mult = r->mult;
        chans[c].rnd = r->rnd;
        chans[c].rsh = r->rsh;
        widen_row(chans[c].w, w, 8);
    }
    for (int32_t r = 0; r < rows; r++) {
        if (pw_dense(p)) { /* the run's pixels follow one another in the input */
            pw_k8_run_t a = {input + r * n * 8, 8, chans, chans + ch->n,
                             output + r * runs->out_row, cout, pc_dup16(p->input_offset), n};
            run(&a);
            continue;
        }
        for (int32_t i = 0; i < n; i += wo) { /* an output row at a time: a constant step */
            pw_k8_run_t a = {pw_pixel(p, input, r * n + i), 8 * p->stride_w, chans,
                             chans + ch->n, output + r * runs->out_row + i * cout, cout,
                             pc_dup16(p->input_offset), n - i < wo ? n - i : wo};
            run(&a);
        }
    }
}

void pc_pointwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                            const int8_t *input, const int8_t *filter, const int32_t *bias,
                            int8_t *output, void *scratch)
{
    const int32_t cin = p->input.c;
    const int32_t cout = p->output.c;
    const int32_t wo = p->output.w;
    const int32_t pixels = p->output.h * wo;
    const pw_runs_t runs = output_runs(p);
    const int dense = pw_dense(p);
    const pw2x2_fn_t narrow = pw_narrow_kernel(cin);
    uint32_t *col = (uint32_t *)scratch;
    chunk_t ch;
    if (p->pair_records != NULL) {
        if (records_fit(p)) {
            pointwise_records(p, input, output);
        } else {
            pointwise_from_records(p, q, input, bias, output);
        }
        return;
    }
    for (int32_t co0 = 0; co0 < cout; co0 += PC_RQ_CHUNK) {
        const int8_t *w = filter + co0 * cin;
        int32_t done = 0;
        chunk_prepare(&ch, p, q, bias, co0, cin);
        if (ch.fast && !ch.clamp && cin == 8 && ch.n % 4 == 0 && pixels >= PW_K8_MIN_PIXELS) {
            pointwise_k8(p, &ch, w, input, output + co0, &runs);
            done = runs.n;
        } else if (ch.fast && !ch.clamp && narrow != NULL && pixels >= PW_NARROW_MIN_PIXELS) {
            done = pointwise_narrow(p, &ch, narrow, w, input, output + co0, &runs);

        } else if (ch.fast && cin <= PW4_MAX_CIN) {
            done = pointwise_quads(p, &ch, w, input, output + co0, &runs);
        }
        for (int32_t r = 0; r < runs.rows; r++) { /* what is left of each run: 2x2 blocks */
            const int32_t base = r * runs.n;
            int8_t *out = output + r * runs.out_row + co0;
            int32_t i = done;
            for (; i + 2 <= runs.n; i += 2) {
                const int8_t *px_a =
                    dense ? input + (base + i) * cin : pw_pixel(p, input, base + i);
                const int8_t *px_b = dense ? px_a + cin : pw_pixel(p, input, base + i + 1);
                widen_pair(px_a, px_b, col, cin, p->input_offset);
                mat_mult_pw(&ch, w, cin, col, out + i * cout, out + (i + 1) * cout, 0);
            }
            if (i < runs.n && ch.fast && cin % 4 == 0) {
                widen_one(pw_pixel(p, input, base + i), col, cin, p->input_offset);
                mat_mult_pw1(&ch, w, cin, col, out + i * cout);
            } else if (i < runs.n) {
                const int8_t *px_a = pw_pixel(p, input, base + i);
                widen_pair(px_a, px_a, col, cin, p->input_offset);
                mat_mult_pw(&ch, w, cin, col, out + i * cout, out + i * cout, 0);
            }
        }
    }
}

#else /* portable C */

void pc_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                  const int8_t *input, const int8_t *filter, const int32_t *bias,
                  int8_t *output, void *scratch)
{
    const int32_t cin = p->input.c;
    const int32_t kh = p->kernel_h;
    const int32_t kw = p->kernel_w;
    const int32_t off = p->input_offset;
    const int32_t skip = (pc_output_stride(p) - p->output.w) * p->output.c; /* row's end */
    (void)scratch;
    for (int32_t oy = 0; oy < p->output.h; oy++, output += skip) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = p->input.h - iy0 < kh ? p->input.h - iy0 : kh;
        for (int32_t ox = 0; ox < p->output.w; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t kx1 = p->input.w - ix0 < kw ? p->input.w - ix0 : kw;
            for (int32_t co = 0; co < p->output.c; co++) {
                int32_t acc = bias[co];
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        const int8_t *x = input + ((iy0 + ky) * p->input.w + ix0 + kx) * cin;
                        const int8_t *w = filter + ((co * kh + ky) * kw + kx) * cin;
                        for (int32_t c = 0; c < cin; c++) {
                            acc += (x[c] + off) * w[c];
                        }
                    }
                }
                *output++ = PC_REQUANTIZE_S8(acc, q->multiplier[co], q->shift[co],
                                             p->output_offset, p->act_min, p->act_max);
            }
        }
    }
}

void pc_pointwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                            const int8_t *input, const int8_t *filter, const int32_t *bias,
                            int8_t *output, void *scratch)
{
    const int32_t cin = p->input.c;
    const int32_t off = p->input_offset;
    const int32_t skip = (pc_output_stride(p) - p->output.w) * p->output.c; /* row's end */
    (void)scratch;
    if (p->pair_records != NULL) {
        pointwise_from_records(p, q, input, bias, output);
        return;
    }
    for (int32_t oy = 0; oy < p->output.h; oy++, output += skip) {
        for (int32_t ox = 0; ox < p->output.w; ox++) {
            const int8_t *x = input + (oy * p->stride_h * p->input.w + ox * p->stride_w) * cin;
            const int8_t *w = filter;
            for (int32_t co = 0; co < p->output.c; co++) {
                int32_t acc = bias[co];
                for (int32_t c = 0; c < cin; c++) {
                    acc += (x[c] + off) * w[c];
                }
                w += cin;
                *output++ = PC_REQUANTIZE_S8(acc, q->multiplier[co], q->shift[co],
                                             p->output_offset, p->act_min, p->act_max);
            }
        }
    }
}

#endif /* PC_USE_DSP */
