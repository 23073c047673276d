/* pc_kernels.h - patchcam's int8 kernels (docs/design.md §4.1, §4.2).
 *
 * How to use
 * ----------
 * Every kernel computes one op of the int8 graph, bit-exactly like patchcam.compiler.reference (and
 * TFLite Micro's reference kernels). The code generator (patchcam/compiler/codegen.py) fills the
 * parameter structs at build time, places every tensor and scratch buffer in one static arena,
 * and calls the kernels in order, e.g.
 *
 *     static const pc_conv_params_t p = { .input = {32, 32, 8}, .output = {16, 16, 16},
 *         .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_top = 0,
 *         .pad_left = 0, .input_offset = 5, .output_offset = -3, .act_min = -128,
 *         .act_max = 127 };
 *     pc_conv2d_s8(&p, &quant, arena + 0, weights, bias, arena + 8192, arena + 12288);
 *
 * Conventions
 * -----------
 * - Tensors are int8, HWC (channels last), batch 1, contiguous (conv outputs may have
 *   longer rows: pc_conv_params_t.output_stride).
 * - Weights follow TFLite's layouts: conv2d (Cout, kh, kw, Cin); depthwise (kh, kw, C);
 *   fully connected (N, K). Bias is int32, one per output channel.
 * - input_offset = -(input zero point), in [-127, 128]; output_offset = output zero point, in
 *   [-128, 127]. act_min <= act_max, both in [-128, 127] (the fused ReLU / ReLU6 clamp).
 * - Requantisation: per output channel Q31 multiplier in [2^30, 2^31) (or 0) and shift in
 *   [-31, 30] (> 0 shifts left), applied as TFLite's MultiplyByQuantizedMultiplier
 *   (pc_requant.h). Accumulators are int32 and must not overflow (true for any layer with
 *   fewer than ~130,000 MACs per output).
 * - Padding: pad_top / pad_left give the rows / columns of zero-point padding before the
 *   image; bottom / right padding follows from the output size. Taps outside the image are
 *   skipped, which equals padding with the zero point (conv) and matches TFLite's reference
 *   pooling (only taps inside the image count).
 * - Scratch: a kernel that needs working memory has pc_..._get_buffer_size() (and a matching
 *   PC_..._BUFFER_SIZE() macro usable in constant expressions) and takes a caller-owned
 *   `scratch` pointer, 4-byte aligned, that many bytes. The size is the same on every code
 *   path (portable or DSP), so one memory plan serves every build. Nothing here allocates.
 * - Input and output buffers must not overlap, except where a kernel says "in place".
 * - Shapes are checked by the generator (TFLM's "prepare"); the kernels only compute.
 *
 * Code paths
 * ----------
 * With __ARM_FEATURE_DSP (Cortex-M4/M7/M33 ...) the kernels use the 16-bit SIMD MACs
 * (SXTB16 / SMLAD); elsewhere, or with -DPC_PORTABLE, plain C. -DPC_DSP_EMULATE runs the DSP
 * algorithms on any host with C stand-ins for the instructions (to test them under
 * sanitizers). All paths give identical results.
 */
#ifndef PATCHCAM_PC_KERNELS_H
#define PATCHCAM_PC_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Alignment for the arena and other buffers the kernels read word-wise. */
#if defined(__GNUC__) || defined(__clang__)
#define PC_ALIGNED(n) __attribute__((aligned(n)))
#else
#define PC_ALIGNED(n)
#endif

/* C99 compile-time check: fails to compile (negative array size) when cond is false. */
#define PC_STATIC_ASSERT(cond, name) typedef char pc_static_assert_##name[(cond) ? 1 : -1]

/* Which code path this build of the runtime uses (for reports): "dsp" or "portable". */
const char *pc_kernels_variant(void);

/* ---- shapes and parameters ---------------------------------------------------------------- */

typedef struct {
    int32_t h; /* rows */
    int32_t w; /* columns */
    int32_t c; /* channels */
} pc_dims_t;

/* Per-output-channel requantisation (conv2d, pointwise, depthwise). */
typedef struct {
    const int32_t *multiplier; /* Q31, [2^30, 2^31) or 0 */
    const int32_t *shift;      /* [-31, 30], > 0 = left shift */
} pc_per_channel_quant_t;

/* conv2d, pointwise (1x1) conv and depthwise conv. */
typedef struct {
    pc_dims_t input;  /* H x W x Cin */
    pc_dims_t output; /* Ho x Wo x Cout (depthwise: Cout == Cin) */
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w; /* >= 1 */
    int32_t pad_top, pad_left;  /* >= 0, < kernel size */
    int32_t input_offset;       /* -input zero point */
    int32_t output_offset;      /* output zero point */
    int32_t act_min, act_max;
    /* Pixels from the start of one output row to the next: 0 (or output.w) for a contiguous
     * output; wider when the output is a window of a larger buffer (a patch schedule's tile).
     * conv2d, pointwise and depthwise honour it; the in-place depthwise kernel needs 0. */
    int32_t output_stride;
    /* Pointwise only: NULL, or the filter as the compiler's pair records (widened weights with
     * their requantisation constants; pc_conv.c's "pair records"), and then the filter
     * argument may be NULL. */
    const uint32_t *pair_records;
} pc_conv_params_t;

/* Pixels from one output row to the next (see output_stride). */
static inline int32_t pc_output_stride(const pc_conv_params_t *p)
{
    return p->output_stride > 0 ? p->output_stride : p->output.w;
}

/* Fully connected: output[n] = sum_k (input[k] + input_offset) * weights[n][k] + bias[n]. */
typedef struct {
    int32_t in_features;  /* K */
    int32_t out_features; /* N */
    int32_t input_offset;
    int32_t output_offset;
    int32_t multiplier; /* per tensor */
    int32_t shift;
    int32_t act_min, act_max;
} pc_fc_params_t;

/* Elementwise add, TFLite's int8 scheme: both inputs are shifted left by left_shift (20),
 * rescaled to a common scale, summed and rescaled to the output. */
typedef struct {
    int32_t size; /* elements */
    int32_t input1_offset, input2_offset, output_offset;
    int32_t left_shift;
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} pc_add_params_t;

/* Average and max pooling (output keeps the input's scale and zero point). */
typedef struct {
    pc_dims_t input;
    pc_dims_t output; /* output.c == input.c */
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t act_min, act_max;
} pc_pool_params_t;

/* ---- scratch sizes (bytes) ---------------------------------------------------------------- */
/* conv2d: two im2col columns of kh*kw*Cin int16 values. */
#define PC_CONV2D_S8_BUFFER_SIZE(kh, kw, cin) (4 * (kh) * (kw) * (cin))
/* pointwise: two input pixels widened to int16. */
#define PC_POINTWISE_CONV2D_S8_BUFFER_SIZE(cin) (4 * (cin))

/* in-place depthwise: a ring of `rows` output rows of Wo pixels x (up to) 4 channels, rows =
 * pc_depthwise_in_place_rows(p) (2 for 3x3 stride 1 "same", 1 for stride 2, 3 for 5x5 ...). */
#define PC_DEPTHWISE_IN_PLACE_GROUP 4
#define PC_DEPTHWISE_CONV2D_S8_IN_PLACE_BUFFER_SIZE(rows, wo, c) \
    ((rows) * (wo) * ((c) < PC_DEPTHWISE_IN_PLACE_GROUP ? (c) : PC_DEPTHWISE_IN_PLACE_GROUP))

int32_t pc_conv2d_s8_get_buffer_size(const pc_conv_params_t *p);
int32_t pc_pointwise_conv2d_s8_get_buffer_size(const pc_conv_params_t *p);
int32_t pc_depthwise_in_place_rows(const pc_conv_params_t *p);
int32_t pc_depthwise_conv2d_s8_in_place_get_buffer_size(const pc_conv_params_t *p);

/* ---- kernels ------------------------------------------------------------------------------ */

/* Convolution, any kh x kw, any stride, explicit top/left pads.
 * filter: (Cout, kh, kw, Cin); bias: Cout; scratch: pc_conv2d_s8_get_buffer_size bytes. */
void pc_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                  const int8_t *input, const int8_t *filter, const int32_t *bias,
                  int8_t *output, void *scratch);

/* 1x1 convolution without padding (any stride): the matrix product of the pixels with the
 * (Cout, Cin) filter. scratch: pc_pointwise_conv2d_s8_get_buffer_size bytes. */
void pc_pointwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                            const int8_t *input, const int8_t *filter, const int32_t *bias,
                            int8_t *output, void *scratch);

/* Depthwise convolution, channel multiplier 1, any kh x kw (3, 5, 7 typical), any stride.
 * filter: (kh, kw, C); bias: C. No scratch. */
void pc_depthwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                            const int8_t *input, const int8_t *filter, const int32_t *bias,
                            int8_t *output);

/* The same, in place: `data` holds the input (H x W x C) on entry and the output
 * (Ho x Wo x C, from the same address) on return; it must have room for the larger of the
 * two. In HWC, output channel c only lands on bytes of input channel c, so the kernel runs
 * four channels at a time (the last pass: the rest), and within a pass stores an output row
 * straight away where the input rows under it are no longer read, else keeps it in `scratch`
 * (a ring of pc_depthwise_in_place_rows(p) rows of Wo x 4 bytes) until they are.
 * scratch: pc_depthwise_conv2d_s8_in_place_get_buffer_size bytes, any alignment. Results are
 * identical to pc_depthwise_conv2d_s8's. */
void pc_depthwise_conv2d_s8_in_place(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                                     int8_t *data, const int8_t *filter, const int32_t *bias,
                                     int8_t *scratch);

/* Fully connected. input: K values (any layout, flattened); filter: (N, K); bias: N. */
void pc_fully_connected_s8(const pc_fc_params_t *p, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, int8_t *output);

/* Elementwise add of two tensors of p->size values. In place: output may equal input1 or
 * input2 (each element is read before it is written). */
void pc_add_s8(const pc_add_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output);

/* The same on `rows` rows of p->size values each; a row of input1, input2 and output starts
 * step1, step2 and step_out bytes after the previous one (the windows of a patch schedule's
 * tiles). Within a row, in place as pc_add_s8; rows must not overlap one another. */
void pc_add_s8_rows(const pc_add_params_t *p, int32_t rows, const int8_t *input1,
                    int32_t step1, const int8_t *input2, int32_t step2, int8_t *output,
                    int32_t step_out);

/* Average pooling; only taps inside the image count (TFLite's reference AveragePool). */
void pc_avg_pool2d_s8(const pc_pool_params_t *p, const int8_t *input, int8_t *output);

/* Max pooling; only taps inside the image count. */
void pc_max_pool2d_s8(const pc_pool_params_t *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* PATCHCAM_PC_KERNELS_H */
