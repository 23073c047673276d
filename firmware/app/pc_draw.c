/* pc_draw.c - see pc_draw.h. */
#include "pc_draw.h"

#include "pc_font.h"

/* overlay.PALETTE (BGR) as RGB565 */
static const uint16_t palette[8] = {
    PC_RGB565(0, 220, 0),   PC_RGB565(255, 0, 0),   PC_RGB565(0, 128, 255),
    PC_RGB565(255, 200, 0), PC_RGB565(255, 0, 255), PC_RGB565(0, 255, 255),
    PC_RGB565(255, 0, 128), PC_RGB565(255, 128, 0),
};

uint16_t pc_class_color(unsigned cls)
{
    return palette[cls % 8u];
}

int32_t pc_round_div(int32_t x, int32_t num, int32_t den)
{
    if (den <= 0) {
        return 0;
    }
    const int64_t n = (int64_t)x * num;
    int64_t q = n / den, rem = n % den;
    if (rem < 0) { /* floor division */
        rem += den;
        q -= 1;
    }
    if (2 * rem > den || (2 * rem == den && (q & 1))) {
        q += 1;
    }
    return (int32_t)q;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

void pc_fill(const pc_fb_t *fb, int x0, int y0, int x1, int y1, uint16_t color)
{
    if (fb == NULL || fb->px == NULL || fb->width <= 0 || fb->height <= 0) {
        return;
    }
    if (x0 > x1 || y0 > y1 || x1 < 0 || y1 < 0 || x0 >= fb->width || y0 >= fb->height) {
        return;
    }
    x0 = clampi(x0, 0, fb->width - 1);
    x1 = clampi(x1, 0, fb->width - 1);
    y0 = clampi(y0, 0, fb->height - 1);
    y1 = clampi(y1, 0, fb->height - 1);
    for (int y = y0; y <= y1; y++) {
        uint16_t *row = fb->px + (size_t)y * (size_t)fb->width;
        for (int x = x0; x <= x1; x++) {
            row[x] = color;
        }
    }
}

void pc_outline(const pc_fb_t *fb, int x0, int y0, int x1, int y1, uint16_t color)
{
    for (int i = 0; i < 2; i++) {
        const int a = x0 + i, b = y0 + i, c = x1 - i, d = y1 - i;
        if (a > c || b > d) {
            break;
        }
        pc_fill(fb, a, b, c, b, color);
        pc_fill(fb, a, d, c, d, color);
        pc_fill(fb, a, b, a, d, color);
        pc_fill(fb, c, b, c, d, color);
    }
}

int pc_text_width(const char *s)
{
    int n = 0;
    while (s != NULL && s[n] != '\0' && n < PC_DRAW_LABEL_MAX) {
        n++;
    }
    return n * PC_FONT_W;
}

int pc_text(const pc_fb_t *fb, int x, int y, const char *s, uint16_t color)
{
    const int w = pc_text_width(s);
    for (int i = 0; i * PC_FONT_W < w; i++) {
        int c = (unsigned char)s[i];
        if (c < PC_FONT_FIRST || c > PC_FONT_LAST) {
            c = '?';
        }
        const uint8_t *g = pc_font[c - PC_FONT_FIRST];
        for (int gy = 0; gy < PC_FONT_H; gy++) {
            for (int gx = 0; gx < PC_FONT_W; gx++) {
                if (g[gy] & (1u << (PC_FONT_W - 1 - gx))) {
                    const int px = x + i * PC_FONT_W + gx, py = y + gy;
                    pc_fill(fb, px, py, px, py, color);
                }
            }
        }
    }
    return w;
}

int pc_draw_frame(const pc_fb_t *fb, const pc_region_t *r, const uint8_t *frame, int fw, int fh,
                  int format)
{
    const int bpp = format == 1 ? 1 : (format == 2 ? 2 : (format == 3 ? 3 : 0));
    if (bpp == 0 || frame == NULL || fw <= 0 || fh <= 0 || r == NULL || r->w <= 0 ||
        r->h <= 0) {
        return -1;
    }
    for (int dy = 0; dy < r->h; dy++) {
        const int sy = (int)(((int64_t)dy * fh) / r->h);
        for (int dx = 0; dx < r->w; dx++) {
            const int sx = (int)(((int64_t)dx * fw) / r->w);
            const uint8_t *p = frame + ((size_t)sy * (size_t)fw + (size_t)sx) * (size_t)bpp;
            uint16_t c;
            if (bpp == 2) {
                c = (uint16_t)(p[0] | (p[1] << 8));
            } else if (bpp == 3) {
                c = PC_RGB565(p[0], p[1], p[2]);
            } else {
                c = PC_RGB565(p[0], p[0], p[0]);
            }
            pc_fill(fb, r->x + dx, r->y + dy, r->x + dx, r->y + dy, c);
        }
    }
    return 0;
}

void pc_box_on_region(const pc_region_t *r, int input_w, int input_h, int x0, int y0, int x1,
                      int y1, int out[4])
{
    const int bx0 = pc_round_div(x0, r->w, input_w), bx1 = pc_round_div(x1, r->w, input_w);
    const int by0 = pc_round_div(y0, r->h, input_h), by1 = pc_round_div(y1, r->h, input_h);
    out[0] = r->x + clampi(bx0, 0, r->w - 1);
    out[1] = r->y + clampi(by0, 0, r->h - 1);
    out[2] = r->x + clampi(bx1, 0, r->w - 1);
    out[3] = r->y + clampi(by1, 0, r->h - 1);
}

void pc_draw_detection(const pc_fb_t *fb, const pc_region_t *r, int input_w, int input_h,
                       int x0, int y0, int x1, int y1, unsigned cls, const char *label)
{
    int b[4];
    const uint16_t color = pc_class_color(cls);
    pc_box_on_region(r, input_w, input_h, x0, y0, x1, y1, b);
    pc_outline(fb, b[0], b[1], b[2], b[3], color);
    if (label == NULL || label[0] == '\0') {
        return;
    }
    /* the viewer's rule: the patch above the box when it fits under the region's top edge,
     * else inside the box; kept inside the region on the right */
    const int tw = pc_text_width(label), th = PC_FONT_H;
    const int ty = (b[1] - th - 6 >= r->y) ? b[1] - 4 : b[1] + th + 6;
    const int right = r->x + r->w - tw - 4;
    const int tx = b[0] < right ? b[0] : right;
    pc_fill(fb, tx, ty - th - 3, tx + tw + 4, ty + 3, color);
    pc_text(fb, tx + 2, ty - th, label, PC_RGB565(0, 0, 0));
}

#define SCREEN_BAR 16

pc_region_t pc_screen_region(const pc_fb_t *fb, int fw, int fh)
{
    pc_region_t r = {0, SCREEN_BAR, 0, 0};
    if (fb == NULL || fw <= 0 || fh <= 0 || fb->height <= SCREEN_BAR || fb->width <= 0) {
        return r;
    }
    r.h = fb->height - SCREEN_BAR;
    r.w = (int)(((int64_t)r.h * fw) / fh);
    if (r.w > fb->width) {
        r.w = fb->width;
        r.h = (int)(((int64_t)r.w * fh) / fw);
    }
    return r;
}

/* "name NN%" into out (cap bytes), cut to fit */
static void box_label(char *out, size_t cap, const char *const *names, size_t n_names,
                      const pc_line_box_t *b, float scale, int zero_point)
{
    size_t len = 0;
    const char *name = (names != NULL && b->cls < n_names) ? names[b->cls] : "class";
    for (; name != NULL && *name != '\0' && len + 6 < cap; name++) {
        out[len++] = *name;
    }
    const int pct = pc_box_percent(b->score, scale, zero_point);
    out[len++] = ' ';
    if (pct >= 100) {
        out[len++] = '1';
    }
    if (pct >= 10) {
        out[len++] = (char)('0' + (pct / 10) % 10);
    }
    out[len++] = (char)('0' + pct % 10);
    out[len++] = '%';
    out[len] = '\0';
}

void pc_draw_screen(const pc_fb_t *fb, const uint8_t *frame, int fw, int fh, int format,
                    int input_w, int input_h, const pc_line_box_t *boxes, size_t n,
                    const char *const *names, size_t n_names, float scale, int zero_point,
                    uint32_t latency_us, const char *title)
{
    if (fb == NULL || fb->px == NULL) {
        return;
    }
    const pc_region_t r = pc_screen_region(fb, fw, fh);
    const uint16_t bar = PC_RGB565(32, 32, 32), text = PC_RGB565(240, 240, 240);
    pc_fill(fb, 0, 0, fb->width - 1, fb->height - 1, bar);
    if (r.w <= 0 || pc_draw_frame(fb, &r, frame, fw, fh, format) != 0) {
        pc_text(fb, 4, SCREEN_BAR + 4, "no camera frame", text);
    }
    /* the bar: title, then the latency ("frame 0: no boxes; 12.3 ms" -> its last field) */
    char line[64];
    const size_t len = pc_line_detect(line, sizeof line, 0, latency_us, NULL, 0, NULL, 0,
                                      scale, zero_point);
    const char *ms = line;
    for (size_t i = 0; i < len; i++) {
        if (line[i] == ';' && i + 2 < len) {
            ms = line + i + 2;
        }
    }
    const int x = title != NULL ? 4 + pc_text(fb, 4, 2, title, text) + PC_FONT_W : 4;
    pc_text(fb, x, 2, ms, text);
    for (size_t i = 0; i < n && boxes != NULL && input_w > 0 && input_h > 0 && r.w > 0; i++) {
        char label[PC_DRAW_LABEL_MAX + 1];
        box_label(label, sizeof label, names, n_names, &boxes[i], scale, zero_point);
        pc_draw_detection(fb, &r, input_w, input_h, boxes[i].x0, boxes[i].y0, boxes[i].x1,
                          boxes[i].y1, boxes[i].cls, label);
        const int ly = SCREEN_BAR + 4 + (int)i * (PC_FONT_H + 3);
        if (r.x + r.w + 8 + 10 * PC_FONT_W <= fb->width && ly + PC_FONT_H < fb->height) {
            pc_fill(fb, r.x + r.w + 4, ly, r.x + r.w + 8, ly + PC_FONT_H - 1,
                    pc_class_color(boxes[i].cls));
            pc_text(fb, r.x + r.w + 12, ly, label, text);
        }
    }
}
