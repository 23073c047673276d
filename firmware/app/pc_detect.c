/* pc_detect.c - see pc_detect.h; mirrors patchcam/app/detect.py decode_int8 + nms_int. */
#include "pc_detect.h"

static int32_t clamp(int32_t v, int32_t hi)
{
    return v < 0 ? 0 : v > hi ? hi : v;
}

/* Insert c into the ranked list cand[0..*n) (score descending; candidates arrive in raster,
 * then class order, so among equal scores the earlier one stays first), keeping at most cap
 * entries. */
static void rank(pc_detection_t *cand, size_t *n, size_t cap, const pc_detection_t *c)
{
    size_t pos = *n;
    while (pos > 0 && cand[pos - 1].score < c->score) {
        pos--;
    }
    if (pos >= cap) {
        return;
    }
    size_t last = *n < cap ? *n : cap - 1;
    for (size_t i = last; i > pos; i--) {
        cand[i] = cand[i - 1];
    }
    cand[pos] = *c;
    if (*n < cap) {
        (*n)++;
    }
}

static int suppressed_by(const pc_detection_t *a, const pc_detection_t *b, int32_t iou_q10)
{
    const int32_t iw = (a->x1 < b->x1 ? a->x1 : b->x1) - (a->x0 > b->x0 ? a->x0 : b->x0);
    const int32_t ih = (a->y1 < b->y1 ? a->y1 : b->y1) - (a->y0 > b->y0 ? a->y0 : b->y0);
    if (iw <= 0 || ih <= 0) {
        return 0;
    }
    const int64_t inter = (int64_t)iw * ih;
    const int64_t area_a = (int64_t)(a->x1 - a->x0) * (a->y1 - a->y0);
    const int64_t area_b = (int64_t)(b->x1 - b->x0) * (b->y1 - b->y0);
    return inter * 1024 > (int64_t)iou_q10 * (area_a + area_b - inter);
}

size_t pc_detect_decode(const int8_t *out, const pc_det_params_t *p, pc_detection_t *scratch,
                        pc_detection_t *dets)
{
    const size_t k = p->num_classes;
    const int32_t one = (int32_t)1 << p->frac_bits, half = one >> 1;
    const int32_t lim_x = (int32_t)p->image_w * one, lim_y = (int32_t)p->image_h * one;
    size_t n_cand = 0;
    if (p->max_candidates == 0 || p->max_detections == 0) {
        return 0;
    }
    for (uint32_t y = 0; y < p->grid_h; y++) {
        for (uint32_t x = 0; x < p->grid_w; x++) {
            const int8_t *v = out + ((size_t)y * p->grid_w + x) * (k + 4);
            int32_t best = v[0];
            for (uint32_t c = 1; c < k; c++) {
                best = v[c] > best ? v[c] : best;
            }
            if (best < p->q_threshold) { /* no class passes */
                continue;
            }
            const int32_t ax = (int32_t)(2 * x + 1) * p->stride * half;
            const int32_t ay = (int32_t)(2 * y + 1) * p->stride * half;
            const int32_t m = p->box_multiplier, zp = p->zero_point;
            const int32_t x0 = (clamp(ax - m * (v[k] - zp), lim_x) + half) >> p->frac_bits;
            const int32_t y0 = (clamp(ay - m * (v[k + 1] - zp), lim_y) + half) >> p->frac_bits;
            const int32_t x1 = (clamp(ax + m * (v[k + 2] - zp), lim_x) + half) >> p->frac_bits;
            const int32_t y1 = (clamp(ay + m * (v[k + 3] - zp), lim_y) + half) >> p->frac_bits;
            if (x1 <= x0 || y1 <= y0) {
                continue;
            }
            for (uint32_t c = 0; c < k; c++) {
                if (v[c] >= p->q_threshold) {
                    const pc_detection_t d = {(uint16_t)x0, (uint16_t)y0, (uint16_t)x1,
                                              (uint16_t)y1, (uint16_t)(y * p->grid_w + x),
                                              (uint8_t)c, v[c]};
                    rank(scratch, &n_cand, p->max_candidates, &d);
                }
            }
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < n_cand && kept < p->max_detections; i++) {
        int suppressed = 0;
        for (size_t j = 0; j < kept && !suppressed; j++) {
            if (!p->class_agnostic && scratch[i].cls != dets[j].cls) {
                continue;
            }
            suppressed = suppressed_by(&scratch[i], &dets[j], p->iou_q10);
        }
        if (!suppressed) {
            dets[kept++] = scratch[i];
        }
    }
    return kept;
}
