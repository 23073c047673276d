/* cnn_adapter.c - see cnn_adapter.h. Each call fills CMSIS-NN's parameter structs from
 * patchcam's (same conventions: TFLite's offsets, per-channel Q31 multipliers and shifts,
 * OHWI / 1HWC weights, top / left padding with the output size implying the rest) and calls
 * the wrapper TFLite Micro calls: arm_convolve_wrapper_s8 (1x1 -> arm_convolve_1x1_s8_fast or
 * arm_convolve_1x1_s8, else arm_convolve_s8), arm_depthwise_conv_wrapper_s8 (3x3 with pads
 * <= 1 -> arm_depthwise_conv_3x3_s8, else arm_depthwise_conv_s8_opt), arm_elementwise_add_s8,
 * arm_avgpool_s8, arm_max_pool_s8, arm_fully_connected_s8. Their working memory is one static
 * buffer (the largest need of any op must fit it); a CMSIS-NN error or a buffer too small
 * ends the run with exit status CNN_EXIT_ERROR. The struct filling costs a few dozen
 * instructions per op (TFLite Micro does it once, in Prepare); the bench counts it with the op.
 */
#include "cnn_adapter.h"

#include "arm_nnfunctions.h"
#include "board.h"

#ifndef CNN_SCRATCH_BYTES
#define CNN_SCRATCH_BYTES (64 * 1024)
#endif
#define CNN_EXIT_ERROR 3

static int8_t cnn_scratch[CNN_SCRATCH_BYTES] __attribute__((aligned(8)));

static void cnn_check(arm_cmsis_nn_status status, int32_t need)
{
    if (status != ARM_CMSIS_NN_SUCCESS || need > CNN_SCRATCH_BYTES) {
        static const char msg[] = "cnn_adapter: CMSIS-NN error or scratch too small\n";
        board_serial_write((const uint8_t *)msg, sizeof msg - 1);
        board_exit(CNN_EXIT_ERROR);
    }
}

static cmsis_nn_dims dims(int32_t n, int32_t h, int32_t w, int32_t c)
{
    const cmsis_nn_dims d = {n, h, w, c};
    return d;
}

static cmsis_nn_per_channel_quant_params quant(const pc_per_channel_quant_t *q)
{
    cmsis_nn_per_channel_quant_params cq;
    cq.multiplier = (int32_t *)(uintptr_t)q->multiplier; /* CMSIS-NN only reads them */
    cq.shift = (int32_t *)(uintptr_t)q->shift;
    return cq;
}

static void conv(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                 const int8_t *input, const int8_t *filter, const int32_t *bias,
                 int8_t *output)
{
    cmsis_nn_conv_params cp;
    const cmsis_nn_per_channel_quant_params cq = quant(q);
    const cmsis_nn_dims in = dims(1, p->input.h, p->input.w, p->input.c);
    const cmsis_nn_dims fd = dims(p->output.c, p->kernel_h, p->kernel_w, p->input.c);
    const cmsis_nn_dims bd = dims(1, 1, 1, p->output.c);
    const cmsis_nn_dims out = dims(1, p->output.h, p->output.w, p->output.c);
    cmsis_nn_context ctx;
    int32_t need;
    cp.input_offset = p->input_offset;
    cp.output_offset = p->output_offset;
    cp.stride.w = p->stride_w;
    cp.stride.h = p->stride_h;
    cp.padding.w = p->pad_left;
    cp.padding.h = p->pad_top;
    cp.dilation.w = 1;
    cp.dilation.h = 1;
    cp.activation.min = p->act_min;
    cp.activation.max = p->act_max;
    need = arm_convolve_wrapper_s8_get_buffer_size(&cp, &in, &fd, &out);
    ctx.buf = cnn_scratch;
    ctx.size = need;
    cnn_check(ARM_CMSIS_NN_SUCCESS, need);
    cnn_check(arm_convolve_wrapper_s8(&ctx, &cp, &cq, &in, input, &fd, filter, &bd, bias, &out,
                                      output),
              need);
}

void cnn_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                   const int8_t *input, const int8_t *filter, const int32_t *bias,
                   int8_t *output, void *scratch)
{
    (void)scratch;
    conv(p, q, input, filter, bias, output);
}

void cnn_pointwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                             const int8_t *input, const int8_t *filter, const int32_t *bias,
                             int8_t *output, void *scratch)
{
    (void)scratch;
    conv(p, q, input, filter, bias, output);
}

void cnn_depthwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                             const int8_t *input, const int8_t *filter, const int32_t *bias,
                             int8_t *output)
{
    cmsis_nn_dw_conv_params dp;
    const cmsis_nn_per_channel_quant_params cq = quant(q);
    const cmsis_nn_dims in = dims(1, p->input.h, p->input.w, p->input.c);
    const cmsis_nn_dims fd = dims(1, p->kernel_h, p->kernel_w, p->output.c);
    const cmsis_nn_dims bd = dims(1, 1, 1, p->output.c);
    const cmsis_nn_dims out = dims(1, p->output.h, p->output.w, p->output.c);
    cmsis_nn_context ctx;
    int32_t need;
    dp.input_offset = p->input_offset;
    dp.output_offset = p->output_offset;
    dp.ch_mult = 1;
    dp.stride.w = p->stride_w;
    dp.stride.h = p->stride_h;
    dp.padding.w = p->pad_left;
    dp.padding.h = p->pad_top;
    dp.dilation.w = 1;
    dp.dilation.h = 1;
    dp.activation.min = p->act_min;
    dp.activation.max = p->act_max;
    need = arm_depthwise_conv_wrapper_s8_get_buffer_size(&dp, &in, &fd, &out);
    ctx.buf = cnn_scratch;
    ctx.size = need;
    cnn_check(ARM_CMSIS_NN_SUCCESS, need);
    cnn_check(arm_depthwise_conv_wrapper_s8(&ctx, &dp, &cq, &in, input, &fd, filter, &bd, bias,
                                            &out, output),
              need);
}

void cnn_fully_connected_s8(const pc_fc_params_t *p, const int8_t *input, const int8_t *filter,
                            const int32_t *bias, int8_t *output)
{
    cmsis_nn_fc_params fp;
    cmsis_nn_per_tensor_quant_params tq;
    const cmsis_nn_dims in = dims(1, 1, 1, p->in_features);
    const cmsis_nn_dims fd = dims(p->in_features, 1, 1, p->out_features);
    const cmsis_nn_dims bd = dims(1, 1, 1, p->out_features);
    const cmsis_nn_dims out = dims(1, 1, 1, p->out_features);
    cmsis_nn_context ctx;
    const int32_t need = arm_fully_connected_s8_get_buffer_size(&fd);
    fp.input_offset = p->input_offset;
    fp.filter_offset = 0;
    fp.output_offset = p->output_offset;
    fp.activation.min = p->act_min;
    fp.activation.max = p->act_max;
    tq.multiplier = p->multiplier;
    tq.shift = p->shift;
    ctx.buf = need > 0 ? cnn_scratch : NULL; /* the kernel sums: MVE only */
    ctx.size = need;
    cnn_check(ARM_CMSIS_NN_SUCCESS, need);
    cnn_check(arm_fully_connected_s8(&ctx, &fp, &tq, &in, input, &fd, filter, &bd, bias, &out,
                                     output),
              need);
}

void cnn_add_s8(const pc_add_params_t *p, const int8_t *input1, const int8_t *input2,
                int8_t *output)
{
    cnn_check(arm_elementwise_add_s8(input1, input2, p->input1_offset, p->input1_multiplier,
                                     p->input1_shift, p->input2_offset, p->input2_multiplier,
                                     p->input2_shift, p->left_shift, output, p->output_offset,
                                     p->output_multiplier, p->output_shift, p->act_min,
                                     p->act_max, p->size),
              0);
}

static void pool(const pc_pool_params_t *p, const int8_t *input, int8_t *output, int avg)
{
    cmsis_nn_pool_params pp;
    const cmsis_nn_dims in = dims(1, p->input.h, p->input.w, p->input.c);
    const cmsis_nn_dims fd = dims(1, p->kernel_h, p->kernel_w, 1);
    const cmsis_nn_dims out = dims(1, p->output.h, p->output.w, p->output.c);
    cmsis_nn_context ctx;
    const int32_t need = avg ? arm_avgpool_s8_get_buffer_size(p->output.w, p->input.c) : 0;
    pp.stride.w = p->stride_w;
    pp.stride.h = p->stride_h;
    pp.padding.w = p->pad_left;
    pp.padding.h = p->pad_top;
    pp.activation.min = p->act_min;
    pp.activation.max = p->act_max;
    ctx.buf = cnn_scratch;
    ctx.size = need;
    cnn_check(ARM_CMSIS_NN_SUCCESS, need);
    if (avg) {
        cnn_check(arm_avgpool_s8(&ctx, &pp, &in, input, &fd, &out, output), need);
    } else {
        cnn_check(arm_max_pool_s8(&ctx, &pp, &in, input, &fd, &out, output), need);
    }
}

void cnn_avg_pool2d_s8(const pc_pool_params_t *p, const int8_t *input, int8_t *output)
{
    pool(p, input, output, 1);
}

void cnn_max_pool2d_s8(const pc_pool_params_t *p, const int8_t *input, int8_t *output)
{
    pool(p, input, output, 0);
}
