/* pc_detect.h - integer decode + NMS of the grid detection head (docs/design.md §4.7).
 *
 * A C port of patchcam/app/detect.py's decode_int8 / nms_int, taking exactly the same decisions
 * (see the module docstring there for the output layout and the arithmetic):
 *
 *     out[y][x][c], int8, (grid_h, grid_w, K + 4): K class logits, then l, t, r, b
 *
 * For every cell in raster order and every class in order, (cell, class) is a candidate when
 * the class's logit is >= q_threshold and the cell's clamped, rounded box is not empty (the
 * classes are scored independently). Candidates are ranked by logit (descending; raster, then
 * class order on ties), the first max_candidates kept, then greedy NMS (suppress when
 * inter * 1024 > iou_q10 * union; class-agnostic or per class) keeps at most max_detections.
 * The caller owns all memory: `scratch` holds max_candidates entries.
 */
#ifndef PATCHCAM_PC_DETECT_H
#define PATCHCAM_PC_DETECT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint16_t num_classes;
    uint16_t stride;
    uint16_t grid_h, grid_w;
    uint16_t image_w, image_h;
    int32_t zero_point;
    int32_t q_threshold;    /* -128..128 (128: nothing passes) */
    int32_t box_multiplier; /* round(stride * scale * 2^frac_bits) */
    uint8_t frac_bits;      /* 16 */
    int32_t iou_q10;        /* 0..1024 */
    uint16_t max_candidates;
    uint16_t max_detections;
    uint8_t class_agnostic;
} pc_det_params_t;

typedef struct {
    uint16_t x0, y0, x1, y1; /* model-input pixels */
    uint16_t cell;           /* y * grid_w + x */
    uint8_t cls;
    int8_t score; /* the class's logit */
} pc_detection_t;

/* Decode out (grid_h * grid_w * (num_classes + 4) int8) into at most p->max_detections
 * detections (dets has room for them), best first; returns how many. scratch: room for
 * p->max_candidates entries. */
size_t pc_detect_decode(const int8_t *out, const pc_det_params_t *p, pc_detection_t *scratch,
                        pc_detection_t *dets);

#endif /* PATCHCAM_PC_DETECT_H */
