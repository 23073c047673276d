/* pc_draw.h - the standalone demo's screen: camera image, boxes, labels and latency drawn into
 * an RGB565 framebuffer in memory (the DISCO-F746NG's LCD layer; any board with a display).
 *
 * The geometry and colours are the host viewer's (patchcam/host/viewer/overlay.py), so a board
 * screen and the viewer show the same boxes at the same places: a detection (x0, y0, x1, y1)
 * in model-input pixels lands at round-half-even(x * img_w / input_w) inside the image region,
 * clamped to it; boxes are outlined in the viewer's class colour (PALETTE, as RGB565), two
 * pixels wide (the outline at the box's coordinates and one pixel inside), with a label patch
 * of the same colour above the box (inside it when there is no room above) holding the label
 * in black. tests/test_lcd_draw.py compares a drawn framebuffer with the viewer's canvas.
 *
 * No malloc, no stdio; everything is clipped to the framebuffer, so any coordinates are safe.
 */
#ifndef PC_DRAW_H
#define PC_DRAW_H

#include <stddef.h>
#include <stdint.h>

#include "pc_textline.h"

#define PC_RGB565(r, g, b)                                                                     \
    ((uint16_t)((((unsigned)(r) & 0xF8u) << 8) | (((unsigned)(g) & 0xFCu) << 3) |              \
                ((unsigned)(b) >> 3)))

typedef struct pc_fb {
    uint16_t *px; /* width * height pixels, row by row, RGB565 in the CPU's byte order */
    int width, height;
} pc_fb_t;

typedef struct {
    int x, y, w, h; /* where the camera image is shown on the framebuffer */
} pc_region_t;

/* a number drawn as text: at most this many characters per label (longer names are cut) */
#define PC_DRAW_LABEL_MAX 40

/* The viewer's colour of class cls (overlay.PALETTE), as RGB565. */
uint16_t pc_class_color(unsigned cls);

/* x * num / den rounded half to even (Python's round), 0 when den is 0. */
int32_t pc_round_div(int32_t x, int32_t num, int32_t den);

/* Filled rectangle, corners inclusive, clipped. */
void pc_fill(const pc_fb_t *fb, int x0, int y0, int x1, int y1, uint16_t color);

/* Two-pixel outline: the rectangle (x0, y0)-(x1, y1) and the one just inside it. */
void pc_outline(const pc_fb_t *fb, int x0, int y0, int x1, int y1, uint16_t color);

/* Text with its top-left corner at (x, y); returns its width in pixels. Characters outside
 * printable ASCII are drawn as '?'. */
int pc_text(const pc_fb_t *fb, int x, int y, const char *s, uint16_t color);
int pc_text_width(const char *s);

/* A camera frame scaled (nearest neighbour) into the region. format: 1 GRAY8, 2 RGB565
 * (little endian, as board.h's cameras deliver it), 3 RGB888. Returns 0, or -1 for an
 * unknown format or an empty frame (nothing drawn). */
int pc_draw_frame(const pc_fb_t *fb, const pc_region_t *r, const uint8_t *frame, int fw, int fh,
                  int format);

/* A detection in model-input pixels -> framebuffer pixels (x0, y0, x1, y1), as the viewer's
 * overlay.box_on_canvas maps it, offset by the region's corner. */
void pc_box_on_region(const pc_region_t *r, int input_w, int input_h, int x0, int y0, int x1,
                      int y1, int out[4]);

/* One detection: outline + label patch + label, as the viewer draws it. */
void pc_draw_detection(const pc_fb_t *fb, const pc_region_t *r, int input_w, int input_h,
                       int x0, int y0, int x1, int y1, unsigned cls, const char *label);

/* The whole standalone screen: a bar at the top (title and latency, as text), the camera frame
 * below it as large as the framebuffer's height allows at the frame's aspect, each detection
 * drawn on it (pc_draw_detection, with "name NN%" labels: pc_box_percent), and one line per
 * detection to the right of the image when there is room. title may be NULL. */
void pc_draw_screen(const pc_fb_t *fb, const uint8_t *frame, int fw, int fh, int format,
                    int input_w, int input_h, const pc_line_box_t *boxes, size_t n,
                    const char *const *names, size_t n_names, float scale, int zero_point,
                    uint32_t latency_us, const char *title);

/* The image region pc_draw_screen uses for a frame of fw x fh on fb. */
pc_region_t pc_screen_region(const pc_fb_t *fb, int fw, int fh);

#endif /* PC_DRAW_H */
