/* cnn_adapter.h - patchcam's kernel calls carried out by Arm's CMSIS-NN, for measuring.
 *
 * `patchcam bench --cmsis-nn DIR` builds a model's layer-by-layer C a second time with each
 * runtime call of model_invoke() renamed pc_... -> cnn_... (same arguments), so the same
 * layers, weights, requantisation and arena run on CMSIS-NN's int8 kernels - the ones TFLite
 * Micro uses on a Cortex-M - and the instruction counts of the two can be compared op by op.
 * Not part of the runtime: CMSIS-NN is never built into patchcam's firmware.
 */
#ifndef PATCHCAM_CNN_ADAPTER_H
#define PATCHCAM_CNN_ADAPTER_H

#include <stdint.h>

#include "pc_kernels.h"

void cnn_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                   const int8_t *input, const int8_t *filter, const int32_t *bias,
                   int8_t *output, void *scratch);
void cnn_pointwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                             const int8_t *input, const int8_t *filter, const int32_t *bias,
                             int8_t *output, void *scratch);
void cnn_depthwise_conv2d_s8(const pc_conv_params_t *p, const pc_per_channel_quant_t *q,
                             const int8_t *input, const int8_t *filter, const int32_t *bias,
                             int8_t *output);
void cnn_fully_connected_s8(const pc_fc_params_t *p, const int8_t *input, const int8_t *filter,
                            const int32_t *bias, int8_t *output);
void cnn_add_s8(const pc_add_params_t *p, const int8_t *input1, const int8_t *input2,
                int8_t *output);
void cnn_avg_pool2d_s8(const pc_pool_params_t *p, const int8_t *input, int8_t *output);
void cnn_max_pool2d_s8(const pc_pool_params_t *p, const int8_t *input, int8_t *output);

#endif /* PATCHCAM_CNN_ADAPTER_H */
