/* pc_textline.c - see pc_textline.h. */
#include "pc_textline.h"


typedef struct {
    char *buf;
    size_t cap, len;
    int full;
} line_t;

static void put(line_t *l, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (l->full) {
            return;
        }
        if (l->len + 1 >= l->cap) { /* no room left: the line ends in "..." */
            for (size_t i = 1; i <= 3 && i <= l->len; i++) {
                l->buf[l->len - i] = '.';
            }
            l->full = 1;
            return;
        }
        const char c = *s;
        l->buf[l->len++] = (c >= 32 && c <= 126) ? c : '?';
    }
}

static void put_u(line_t *l, uint32_t v)
{
    char tmp[11];
    int i = 10;
    tmp[i] = '\0';
    do {
        tmp[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u && i > 0);
    put(l, tmp + i);
}

static void put_ms(line_t *l, uint32_t us)
{
    const uint32_t tenths = us / 100u + (us % 100u >= 50u ? 1u : 0u);
    put_u(l, tenths / 10u);
    put(l, ".");
    put_u(l, tenths % 10u);
    put(l, " ms");
}

static line_t start(char *buf, size_t cap, uint32_t frame_id)
{
    line_t l = {buf, cap, 0, 0};
    if (buf == NULL || cap == 0) {
        l.full = 1;
        return l;
    }
    if (cap < 5) { /* too small even for "..." */
        buf[0] = '\0';
        l.full = 1;
        return l;
    }
    put(&l, "frame ");
    put_u(&l, frame_id);
    put(&l, ": ");
    return l;
}

static size_t finish(line_t *l)
{
    if (l->buf == NULL || l->cap == 0) {
        return 0;
    }
    l->buf[l->len] = '\0';
    return l->len;
}

static void put_name(line_t *l, const char *const *names, size_t n_names, unsigned cls)
{
    if (names != NULL && cls < n_names && names[cls] != NULL) {
        put(l, names[cls]);
    } else {
        put(l, "class ");
        put_u(l, cls);
    }
}

/* e^x without libm (the boards' images need not link it): x = k ln2 + r, |r| <= ln2 / 2,
 * e^r by its Taylor series to r^8 (relative error < 1e-8), times 2^k. */
static float exp_nolibm(float x)
{
    if (x > 80.0f) {
        x = 80.0f;
    } else if (x < -80.0f) {
        x = -80.0f;
    }
    const float ln2 = 0.69314718f;
    const int k = (int)(x / ln2 + (x >= 0.0f ? 0.5f : -0.5f));
    const float r = x - (float)k * ln2;
    float term = 1.0f, sum = 1.0f;
    for (int i = 1; i <= 8; i++) {
        term *= r / (float)i;
        sum += term;
    }
    for (int i = 0; i < k; i++) {
        sum *= 2.0f;
    }
    for (int i = 0; i > k; i--) {
        sum *= 0.5f;
    }
    return sum;
}

int pc_box_percent(int8_t score, float scale, int zero_point)
{
    const float x = scale * (float)((int)score - zero_point);
    const float p = x >= 0.0f ? 1.0f / (1.0f + exp_nolibm(-x))
                              : exp_nolibm(x) / (1.0f + exp_nolibm(x));
    return (int)(100.0f * p + 0.5f);
}

size_t pc_line_detect(char *buf, size_t cap, uint32_t frame_id, uint32_t latency_us,
                      const pc_line_box_t *boxes, size_t n, const char *const *names,
                      size_t n_names, float scale, int zero_point)
{
    line_t l = start(buf, cap, frame_id);
    if (n == 0 || boxes == NULL) {
        put(&l, "no boxes; ");
    } else {
        put_u(&l, (uint32_t)n);
        put(&l, n == 1 ? " box: " : " boxes: ");
        for (size_t i = 0; i < n; i++) {
            const pc_line_box_t *b = &boxes[i];
            put_name(&l, names, n_names, b->cls);
            put(&l, " ");
            put_u(&l, (uint32_t)pc_box_percent(b->score, scale, zero_point));
            put(&l, "% at ");
            put_u(&l, b->x0);
            put(&l, ",");
            put_u(&l, b->y0);
            put(&l, "-");
            put_u(&l, b->x1);
            put(&l, ",");
            put_u(&l, b->y1);
            put(&l, "; ");
        }
    }
    put_ms(&l, latency_us);
    return finish(&l);
}

size_t pc_line_classify(char *buf, size_t cap, uint32_t frame_id, uint32_t latency_us,
                        const int8_t *scores, size_t n, const char *const *names, float scale,
                        int zero_point)
{
    line_t l = start(buf, cap, frame_id);
    if (n == 0 || scores == NULL) {
        put(&l, "no scores; ");
    } else {
        size_t best = 0;
        for (size_t i = 1; i < n; i++) {
            if (scores[i] > scores[best]) {
                best = i;
            }
        }
        /* softmax probability of the best class: 1 / sum(exp(x_i - x_best)) */
        float sum = 0.0f;
        for (size_t i = 0; i < n; i++) {
            sum += exp_nolibm(scale * (float)((int)scores[i] - (int)scores[best]));
        }
        (void)zero_point; /* cancels out of the softmax */
        put_name(&l, names, n, (unsigned)best);
        put(&l, " ");
        put_u(&l, (uint32_t)(int)(100.0f / sum + 0.5f));
        put(&l, "%; ");
    }
    put_ms(&l, latency_us);
    return finish(&l);
}
