/* pc_textline.h - one readable text line per frame, for a board with no viewer attached (the
 * Nano 33 BLE Sense's standalone mode: a serial monitor shows what the camera sees).
 *
 *   detect:   "frame 12: 2 boxes: person 87% at 10,20-50,60; person 55% at 70,8-99,90; 233.1 ms"
 *             "frame 13: no boxes; 231.9 ms"
 *   classify: "frame 12: person 91%; 69.0 ms"
 *
 * Boxes are in model-input pixels (as in RESULT); a percentage is the class probability the
 * viewer shows (sigmoid of the dequantised logit for a box, softmax over the classes for a
 * classifier), rounded to the nearest percent; the latency is model_invoke()'s, in ms with
 * one decimal, rounded half up. No stdio, no malloc: the line goes into the caller's buffer,
 * always NUL-terminated, cut with "..." when it does not fit. No line ending is added.
 */
#ifndef PC_TEXTLINE_H
#define PC_TEXTLINE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint16_t x0, y0, x1, y1;
    uint8_t cls;
    int8_t score;
} pc_line_box_t;

/* round(100 * sigmoid(scale * (score - zero_point))) */
int pc_box_percent(int8_t score, float scale, int zero_point);

size_t pc_line_detect(char *buf, size_t cap, uint32_t frame_id, uint32_t latency_us,
                      const pc_line_box_t *boxes, size_t n, const char *const *names,
                      size_t n_names, float scale, int zero_point);

size_t pc_line_classify(char *buf, size_t cap, uint32_t frame_id, uint32_t latency_us,
                        const int8_t *scores, size_t n, const char *const *names, float scale,
                        int zero_point);

#endif /* PC_TEXTLINE_H */
