/* pc_patch.c - kernels on one tile of a patch schedule (see pc_patch.h). */
#include "pc_patch.h"

#include <stddef.h>
#include <string.h>

/* Byte offset of a window's top-left pixel in its c-channel buffer. */
static int32_t start(const pc_window_t *w, int32_t c)
{
    return ((int32_t)w->y * w->stride + w->x) * c;
}

static int contiguous(const pc_window_t *w)
{
    return w->w == w->stride;
}

void pc_patch_copy(const int8_t *src, const pc_window_t *win, int32_t c, int8_t *dst)
{
    const int32_t row = (int32_t)win->w * c;
    src += start(win, c);
    for (int32_t y = 0; y < win->h; y++) {
        memcpy(dst + y * row, src + y * win->stride * c, (size_t)row);
    }
}

void pc_input_read_buffer(const void *ctx, const pc_window_t *win, int32_t c, int8_t *dst)
{
    pc_patch_copy((const int8_t *)ctx, win, c, dst);
}

/* Copy an h x w window between two c-channel buffers (the windows have the same size). */
static void move(const int8_t *src, const pc_window_t *from, int32_t c, int8_t *dst,
                 const pc_window_t *to)
{
    if (from->h <= 0 || from->w <= 0) {
        return;
    }
    const int32_t row = (int32_t)from->w * c;
    src += start(from, c);
    dst += start(to, c);
    for (int32_t y = 0; y < from->h; y++) {
        memcpy(dst + y * to->stride * c, src + y * from->stride * c, (size_t)row);
    }
}

void pc_patch_halo(const pc_halo_t *h, int32_t c, int8_t *tile, int8_t *row_cache,
                   int8_t *col_cache)
{
    if (row_cache != NULL) {
        move(row_cache, &h->row_cache, c, tile, &h->tile_top);
    }
    if (col_cache != NULL) {
        move(col_cache, &h->col_cache, c, tile, &h->tile_left);
    }
    if (row_cache != NULL) {
        move(tile, &h->tile_bottom, c, row_cache, &h->row_save);
    }
    if (col_cache != NULL) {
        move(tile, &h->tile_right, c, col_cache, &h->col_save);
    }
}

static int empty(const pc_window_t *w)
{
    return w->h <= 0 || w->w <= 0;
}

/* ---- conv2d, pointwise, depthwise --------------------------------------------------------- */
typedef enum { CONV, POINTWISE, DEPTHWISE } conv_kind_t;

static void conv_call(conv_kind_t kind, const pc_conv_params_t *p,
                      const pc_per_channel_quant_t *q, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output, void *scratch)
{
    switch (kind) {
    case CONV:
        pc_conv2d_s8(p, q, input, filter, bias, output, scratch);
        break;
    case POINTWISE:
        pc_pointwise_conv2d_s8(p, q, input, filter, bias, output, scratch);
        break;
    case DEPTHWISE:
        pc_depthwise_conv2d_s8(p, q, input, filter, bias, output);
        break;
    }
}

static void conv_tile(conv_kind_t kind, const pc_conv_params_t *layer, const pc_tile_t *t,
                      const pc_per_channel_quant_t *q, const int8_t *input,
                      const int8_t *filter, const int32_t *bias, int8_t *output, void *scratch,
                      int8_t *crop)
{
    if (empty(&t->out)) {
        return;
    }
    const int32_t cin = layer->input.c;
    const int32_t cout = layer->output.c;
    pc_conv_params_t p = *layer; /* the tile: its sizes and its own padding */
    p.input.h = t->in[0].h;
    p.input.w = t->in[0].w;
    p.output.h = t->out.h;
    p.output.w = t->out.w;
    p.pad_top = t->pad_top;
    p.pad_left = t->pad_left;
    const int8_t *x = input + start(&t->in[0], cin);
    int8_t *y = output + start(&t->out, cout);
    if (!contiguous(&t->in[0]) && kind != POINTWISE) {
        pc_patch_copy(input, &t->in[0], cin, crop);
        x = crop;
    }
    /* One call for the whole tile: the output's rows are t->out.stride pixels apart, and a
     * pointwise conv (no padding, 1x1) reads input rows of any length, so its window may stay
     * in its wider buffer. */
    p.output_stride = t->out.stride;
    if (kind == POINTWISE) {
        p.input.w = t->in[0].stride;
    }
    conv_call(kind, &p, q, x, filter, bias, y, scratch);
}

void pc_patch_conv2d_s8(const pc_conv_params_t *p, const pc_tile_t *t,
                        const pc_per_channel_quant_t *q, const int8_t *input,
                        const int8_t *filter, const int32_t *bias, int8_t *output,
                        void *scratch, int8_t *crop)
{
    conv_tile(CONV, p, t, q, input, filter, bias, output, scratch, crop);
}

void pc_patch_pointwise_conv2d_s8(const pc_conv_params_t *p, const pc_tile_t *t,
                                  const pc_per_channel_quant_t *q, const int8_t *input,
                                  const int8_t *filter, const int32_t *bias, int8_t *output,
                                  void *scratch)
{
    conv_tile(POINTWISE, p, t, q, input, filter, bias, output, scratch, NULL);
}

void pc_patch_depthwise_conv2d_s8(const pc_conv_params_t *p, const pc_tile_t *t,
                                  const pc_per_channel_quant_t *q, const int8_t *input,
                                  const int8_t *filter, const int32_t *bias, int8_t *output,
                                  int8_t *crop)
{
    conv_tile(DEPTHWISE, p, t, q, input, filter, bias, output, NULL, crop);
}

/* ---- pooling ------------------------------------------------------------------------------ */
static void pool_tile(int is_max, const pc_pool_params_t *layer, const pc_tile_t *t,
                      const int8_t *input, int8_t *output, int8_t *crop)
{
    if (empty(&t->out)) {
        return;
    }
    const int32_t c = layer->input.c;
    pc_pool_params_t p = *layer;
    p.input.h = t->in[0].h;
    p.input.w = t->in[0].w;
    p.output.h = t->out.h;
    p.output.w = t->out.w;
    p.pad_top = t->pad_top;
    p.pad_left = t->pad_left;
    const int8_t *x = input + start(&t->in[0], c);
    int8_t *y = output + start(&t->out, c);
    if (!contiguous(&t->in[0])) {
        pc_patch_copy(input, &t->in[0], c, crop);
        x = crop;
    }
    if (contiguous(&t->out)) { /* the whole tile in one call */
        if (is_max) {
            pc_max_pool2d_s8(&p, x, y);
        } else {
            pc_avg_pool2d_s8(&p, x, y);
        }
        return;
    }
    /* One output row per call, as for convs. */
    for (int32_t oy = 0; oy < p.output.h; oy++) {
        const int32_t iy = oy * p.stride_h - p.pad_top;
        const int32_t y0 = iy < 0 ? 0 : iy;
        const int32_t y1 = iy + p.kernel_h < p.input.h ? iy + p.kernel_h : p.input.h;
        pc_pool_params_t r = p;
        r.input.h = y1 - y0;
        r.output.h = 1;
        r.pad_top = y0 - iy;
        const int8_t *xr = x + y0 * p.input.w * c;
        int8_t *yr = y + oy * t->out.stride * c;
        if (is_max) {
            pc_max_pool2d_s8(&r, xr, yr);
        } else {
            pc_avg_pool2d_s8(&r, xr, yr);
        }
    }
}

void pc_patch_avg_pool2d_s8(const pc_pool_params_t *p, const pc_tile_t *t, const int8_t *input,
                            int8_t *output, int8_t *crop)
{
    pool_tile(0, p, t, input, output, crop);
}

void pc_patch_max_pool2d_s8(const pc_pool_params_t *p, const pc_tile_t *t, const int8_t *input,
                            int8_t *output, int8_t *crop)
{
    pool_tile(1, p, t, input, output, crop);
}

/* ---- add ---------------------------------------------------------------------------------- */
void pc_patch_add_s8(const pc_add_params_t *p, int32_t c, const pc_tile_t *t,
                     const int8_t *input1, const int8_t *input2, int8_t *output)
{
    if (empty(&t->out)) {
        return;
    }
    pc_add_params_t r = *p;
    const int8_t *a = input1 + start(&t->in[0], c);
    const int8_t *b = input2 + start(&t->in[1], c);
    int8_t *y = output + start(&t->out, c);
    if (contiguous(&t->in[0]) && contiguous(&t->in[1]) && contiguous(&t->out)) {
        r.size = (int32_t)t->out.h * t->out.w * c;
        pc_add_s8(&r, a, b, y);
        return;
    }
    r.size = (int32_t)t->out.w * c; /* row by row, the layer's constants prepared once */
    pc_add_s8_rows(&r, t->out.h, a, t->in[0].stride * c, b, t->in[1].stride * c, y,
                   t->out.stride * c);
}
