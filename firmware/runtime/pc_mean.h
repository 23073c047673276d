/* pc_mean.h - TFLite's int8 MEAN over H and W (imported .tflite models: a global average
 * pooling that requantises). Kept apart from pc_kernels.h; model.c includes it. */
#ifndef PATCHCAM_PC_MEAN_H
#define PATCHCAM_PC_MEAN_H

#include "pc_kernels.h"

/* out[c] = MultiplyByQuantizedMultiplier(sum_hw in[h][w][c] + count * input_offset,
 *                                        multiplier, shift) + output_offset, clamped,
 * where multiplier and shift already hold 1 / count (patchcam.compiler.qparams.MeanParams). */
typedef struct {
    pc_dims_t input;       /* H x W x C; the output is 1 x 1 x C */
    int32_t count;         /* H * W */
    int32_t input_offset;  /* -input zero point */
    int32_t output_offset; /* output zero point */
    int32_t multiplier;    /* Q31 */
    int32_t shift;         /* [-31, 30], > 0 = left shift */
    int32_t act_min, act_max;
} pc_mean_params_t;

void pc_mean_s8(const pc_mean_params_t *p, const int8_t *input, int8_t *output);

#endif /* PATCHCAM_PC_MEAN_H */
