/* pc_patch.h - running a kernel on one tile of a patch schedule (docs/design.md §4.4).
 *
 * A patch schedule runs the first ops of a model (the "patch stage") one spatial patch at a
 * time, so only tile-sized buffers are live instead of whole feature maps. For every patch
 * and op, the code generator stores a pc_tile_t: the window of each input buffer the op
 * reads, the window of its output buffer it writes, and the padding the tile has at the true
 * image border (0 at the seams between patches: the neighbouring pixels are real data). A
 * conv on a tile is then the ordinary kernel of pc_kernels.h with the tile's sizes and pads.
 *
 * A window is "contiguous" when it spans whole rows of its buffer (w == stride). The
 * functions below
 *   - copy a non-contiguous input window into `crop` first (conv, depthwise, pooling); a
 *     pointwise conv and an add read it in place, row by row;
 *   - write a non-contiguous output window (a piece inside a cached tile, a tile inside the
 *     full output tensor of the stage's last op) in one call where the kernel takes an
 *     output row stride (convs: pc_conv_params_t.output_stride; add: pc_add_s8_rows), so a
 *     layer's constants are prepared once per tile, else with one kernel call per output
 *     row (pooling).
 * The result is bit-identical to running the op on the whole tensor. Nothing allocates.
 * A tile whose output window is empty (h or w 0: a cache-mode patch with nothing new to
 * compute for that op) is skipped.
 */
#ifndef PATCHCAM_PC_PATCH_H
#define PATCHCAM_PC_PATCH_H

#include <stdint.h>

#include "pc_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A rectangle of pixels inside an HWC buffer whose rows are `stride` pixels long. */
typedef struct {
    int16_t y, x;   /* top-left pixel of the window inside its buffer */
    int16_t h, w;   /* window size in pixels */
    int16_t stride; /* pixels per row of the buffer */
} pc_window_t;

/* One op on one patch. */
typedef struct {
    pc_window_t in[2];         /* the window read from each input (in[1]: add only) */
    pc_window_t out;           /* the window written in the output buffer */
    int16_t pad_top, pad_left; /* padding at the image border, 0 at a seam */
} pc_tile_t;

/* Copy the window `win` of the c-channel buffer src into dst (contiguous, win->h x win->w). */
void pc_patch_copy(const int8_t *src, const pc_window_t *win, int32_t c, int8_t *dst);

/* Where the patch stage of a fused-input model (MODEL_FUSED_INPUT) gets its input: read(ctx,
 * win, c, dst) writes the window `win` of the c-channel int8 model input (HWC, win->stride =
 * the input's width) contiguously to dst (win->h x win->w x c bytes); an empty window (h or
 * w 0) writes nothing. The source may compute the pixels on the fly (the app loop preprocesses
 * them from the camera frame, pc_preprocess_window), so the whole input never has to exist. */
typedef struct pc_input_source { /* the tag lets model.h declare it without this header */
    void (*read)(const void *ctx, const pc_window_t *win, int32_t c, int8_t *dst);
    const void *ctx;
} pc_input_source_t;

/* A pc_input_source_t read function for an input that does exist in memory: ctx is the whole
 * int8 model input (HWC) and the window is copied out of it with pc_patch_copy. */
void pc_input_read_buffer(const void *ctx, const pc_window_t *win, int32_t c, int8_t *dst);

/* Halo caching (cache-mode schedules): after an op wrote its new piece into its tile, the
 * halo around it is copied in from the caches, then the tile's own last rows / columns are
 * saved for the next patches. Each pair is (source window, destination window) of the same
 * size; an empty pair (h or w 0) copies nothing. */
typedef struct {
    pc_window_t row_cache, tile_top;  /* row cache -> the rows above the piece */
    pc_window_t col_cache, tile_left; /* column cache -> the columns left of it (all rows) */
    pc_window_t tile_bottom, row_save; /* the tile's last rows -> row cache */
    pc_window_t tile_right, col_save;  /* the tile's last columns -> column cache */
} pc_halo_t;

/* The four copies of h, in that order, for a c-channel tile; a cache may be NULL when its
 * windows are empty. */
void pc_patch_halo(const pc_halo_t *h, int32_t c, int8_t *tile, int8_t *row_cache,
                   int8_t *col_cache);

/* The layer's parameters `p` (whole tensors, the layer's own padding) on tile t. input and
 * output point at the start of their buffers; crop: win->h * win->w * Cin bytes, used only
 * when t->in[0] is not contiguous (may be NULL otherwise); scratch as for the kernel. */
void pc_patch_conv2d_s8(const pc_conv_params_t *p, const pc_tile_t *t,
                        const pc_per_channel_quant_t *q, const int8_t *input,
                        const int8_t *filter, const int32_t *bias, int8_t *output,
                        void *scratch, int8_t *crop);

void pc_patch_pointwise_conv2d_s8(const pc_conv_params_t *p, const pc_tile_t *t,
                                  const pc_per_channel_quant_t *q, const int8_t *input,
                                  const int8_t *filter, const int32_t *bias, int8_t *output,
                                  void *scratch);

void pc_patch_depthwise_conv2d_s8(const pc_conv_params_t *p, const pc_tile_t *t,
                                  const pc_per_channel_quant_t *q, const int8_t *input,
                                  const int8_t *filter, const int32_t *bias, int8_t *output,
                                  int8_t *crop);

void pc_patch_avg_pool2d_s8(const pc_pool_params_t *p, const pc_tile_t *t, const int8_t *input,
                            int8_t *output, int8_t *crop);

void pc_patch_max_pool2d_s8(const pc_pool_params_t *p, const pc_tile_t *t, const int8_t *input,
                            int8_t *output, int8_t *crop);

/* Elementwise add of two c-channel tiles (p->size is ignored). In place like pc_add_s8: the
 * output may be the same buffer and window as an input. */
void pc_patch_add_s8(const pc_add_params_t *p, int32_t c, const pc_tile_t *t,
                     const int8_t *input1, const int8_t *input2, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* PATCHCAM_PC_PATCH_H */
