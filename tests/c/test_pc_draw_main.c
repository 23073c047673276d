/* Host driver for tests/test_lcd_draw.py: draws into a framebuffer with pc_draw.c, or formats a
 * text line with pc_textline.c, from a spec on stdin (the test's own input, trusted).
 *
 *   draw: fb_w fb_h  rx ry rw rh  input_w input_h  frame_w frame_h r g b  n  {x0 y0 x1 y1 cls label}
 *         -> the framebuffer, fb_w * fb_h RGB565 pixels (little endian), on stdout
 *   screen: fb_w fb_h  input_w input_h  frame_w frame_h r g b  scale zero_point latency_us  n
 *           {x0 y0 x1 y1 cls score}   (classes person, mask, no_mask) -> the framebuffer
 *   line: detect|classify frame latency_us scale zero_point cap n_names {name} n {box|score}
 *         -> the line on stdout
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_draw.h"
#include "pc_textline.h"

#define MAX_N 32

static uint16_t fb_px[640 * 480];
static uint8_t frame[640 * 480 * 3];

static int draw(void)
{
    int fbw, fbh, n, inw, inh, fw, fh, r, g, b;
    pc_region_t reg;
    if (scanf("%d %d %d %d %d %d %d %d %d %d %d %d %d %d", &fbw, &fbh, &reg.x, &reg.y, &reg.w,
              &reg.h, &inw, &inh, &fw, &fh, &r, &g, &b, &n) != 14 ||
        fbw * fbh > 640 * 480 || fw * fh > 640 * 480 || n > MAX_N) {
        return 2;
    }
    pc_fb_t fb = {fb_px, fbw, fbh};
    pc_fill(&fb, 0, 0, fbw - 1, fbh - 1, PC_RGB565(32, 32, 32));
    for (int i = 0; i < fw * fh; i++) {
        frame[3 * i] = (uint8_t)r;
        frame[3 * i + 1] = (uint8_t)g;
        frame[3 * i + 2] = (uint8_t)b;
    }
    if (pc_draw_frame(&fb, &reg, frame, fw, fh, 3) != 0) {
        return 3;
    }
    for (int i = 0; i < n; i++) {
        int x0, y0, x1, y1;
        unsigned cls;
        char label[64];
        if (scanf("%d %d %d %d %u %63s", &x0, &y0, &x1, &y1, &cls, label) != 6) {
            return 2;
        }
        for (char *c = label; *c; c++) {
            if (*c == '~') {
                *c = ' ';
            }
        }
        pc_draw_detection(&fb, &reg, inw, inh, x0, y0, x1, y1, cls, label);
    }
    for (int i = 0; i < fbw * fbh; i++) {
        putchar(fb_px[i] & 0xFF);
        putchar(fb_px[i] >> 8);
    }
    return 0;
}

static int screen(void)
{
    static const char *const names[] = {"person", "mask", "no_mask"};
    int fbw, fbh, n, inw, inh, fw, fh, r, g, b, zp;
    unsigned latency;
    float scale;
    pc_line_box_t boxes[MAX_N];
    if (scanf("%d %d %d %d %d %d %d %d %d %f %d %u %d", &fbw, &fbh, &inw, &inh, &fw, &fh, &r, &g,
              &b, &scale, &zp, &latency, &n) != 13 ||
        fbw * fbh > 640 * 480 || fw * fh > 640 * 480 || n > MAX_N || n < 0) {
        return 2;
    }
    for (int i = 0; i < n; i++) {
        unsigned x0, y0, x1, y1, cls;
        int score;
        if (scanf("%u %u %u %u %u %d", &x0, &y0, &x1, &y1, &cls, &score) != 6) {
            return 2;
        }
        boxes[i] = (pc_line_box_t){(uint16_t)x0, (uint16_t)y0, (uint16_t)x1, (uint16_t)y1,
                                   (uint8_t)cls, (int8_t)score};
    }
    for (int i = 0; i < fw * fh; i++) {
        frame[3 * i] = (uint8_t)r;
        frame[3 * i + 1] = (uint8_t)g;
        frame[3 * i + 2] = (uint8_t)b;
    }
    pc_fb_t fb = {fb_px, fbw, fbh};
    pc_draw_screen(&fb, frame, fw, fh, 3, inw, inh, boxes, (size_t)n, names, 3, scale, zp,
                   latency, "person_detect");
    for (int i = 0; i < fbw * fbh; i++) {
        putchar(fb_px[i] & 0xFF);
        putchar(fb_px[i] >> 8);
    }
    return 0;
}

static int line(void)
{
    char kind[16], buf[512];
    static char names[MAX_N][32];
    const char *name_ptrs[MAX_N];
    unsigned frame_id, latency;
    float scale;
    int zp, cap, n_names, n;
    if (scanf("%15s %u %u %f %d %d %d", kind, &frame_id, &latency, &scale, &zp, &cap,
              &n_names) != 7 ||
        n_names > MAX_N || cap < 0 || cap > (int)sizeof buf) {
        return 2;
    }
    for (int i = 0; i < n_names; i++) {
        if (scanf("%31s", names[i]) != 1) {
            return 2;
        }
        name_ptrs[i] = names[i];
    }
    if (scanf("%d", &n) != 1 || n > MAX_N || n < 0) {
        return 2;
    }
    memset(buf, 'X', sizeof buf);
    if (strcmp(kind, "detect") == 0) {
        pc_line_box_t boxes[MAX_N];
        for (int i = 0; i < n; i++) {
            unsigned x0, y0, x1, y1, cls;
            int score;
            if (scanf("%u %u %u %u %u %d", &x0, &y0, &x1, &y1, &cls, &score) != 6) {
                return 2;
            }
            boxes[i] = (pc_line_box_t){(uint16_t)x0, (uint16_t)y0, (uint16_t)x1, (uint16_t)y1,
                                       (uint8_t)cls, (int8_t)score};
        }
        const size_t len = pc_line_detect(buf, (size_t)cap, frame_id, latency, boxes, (size_t)n,
                                          name_ptrs, (size_t)n_names, scale, zp);
        if (cap > 0 && (len >= (size_t)cap || buf[len] != '\0' || strlen(buf) != len)) {
            return 4;
        }
    } else {
        int8_t scores[MAX_N];
        for (int i = 0; i < n; i++) {
            int s;
            if (scanf("%d", &s) != 1) {
                return 2;
            }
            scores[i] = (int8_t)s;
        }
        const size_t len = pc_line_classify(buf, (size_t)cap, frame_id, latency, scores,
                                            (size_t)n, name_ptrs, scale, zp);
        if (cap > 0 && (len >= (size_t)cap || strlen(buf) != len)) {
            return 4;
        }
    }
    if (cap > 0) {
        fputs(buf, stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        return 2;
    }
    if (strcmp(argv[1], "screen") == 0) {
        return screen();
    }
    return strcmp(argv[1], "draw") == 0 ? draw() : line();
}
