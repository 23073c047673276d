/* fuzz_app_loop.c - the app loop (firmware/app/app_main.c, included whole with its main()
 * renamed) on a fake board, fed hostile FRAME, SET and camera headers; run by
 * tests/test_app_fuzz.py, built 32-bit (-m32: size_t is 32 bits, as on the Cortex-M7) under
 * AddressSanitizer + UBSan, with a generated model (model.c, model.h, app_config.h).
 *
 *   fuzz_app_loop N SEED
 *
 * Each of the N inputs is one of
 *   FRAME   a FRAME chunk: random / extreme / 32-bit-wrapping width x height x bpp (46341 x
 *           46341 RGB565 "is" 9266 bytes in 32 bits), random formats, offsets and lengths,
 *           truncated headers, continuations of the image being received, images that fit;
 *   SET     a random key and value (edges of every range), or a payload of the wrong size;
 *   CAMERA  a new camera header (random / extreme / wrapping sizes, formats 0..255) read the way
 *           main() reads it, then HELLO and SET STREAM 1, and one capture as the loop would;
 *   GARBAGE random bytes (the decoder's faults, at the app level),
 * fed through the same byte handler main() uses (on_serial), followed by a sentinel PING. A
 * reference model of the loop in 64-bit arithmetic says what the board must answer -- the ERROR
 * code (and frame id) for every bad header, RESULT / SET / LOG / HELLO fields otherwise, and
 * the PONG with the right token and result / error counters -- and every reply is checked.
 * Prints "app fuzz: N inputs ..." and exits 0, or describes the first mismatch and exits 1.
 * The test program may use stdio; the firmware does not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define main pc_app_main
#include "app_main.c"
#undef main

/* ---- the fake board ---- */

static uint8_t fz_out[1 << 17];
static size_t fz_out_len;
static int fz_out_overflow;
static uint32_t fz_clock;
static struct {
    uint16_t width, height;
    uint8_t format;
    unsigned frames_left;
} fz_cam;

static uint64_t fz_rng;

static uint32_t rnd(void)
{
    /* xorshift64* */
    fz_rng ^= fz_rng >> 12;
    fz_rng ^= fz_rng << 25;
    fz_rng ^= fz_rng >> 27;
    return (uint32_t)((fz_rng * 0x2545F4914F6CDD1DULL) >> 32);
}

void board_init(void)
{
}

uint32_t board_time_us(void)
{
    return fz_clock += 7;
}

size_t board_serial_read(uint8_t *buf, size_t cap, uint32_t timeout_us)
{
    (void)buf;
    (void)cap;
    (void)timeout_us;
    return 0;
}

void board_serial_write(const uint8_t *buf, size_t len)
{
    if (len > sizeof fz_out - fz_out_len) {
        fz_out_overflow = 1;
        return;
    }
    memcpy(fz_out + fz_out_len, buf, len);
    fz_out_len += len;
}

board_pixfmt_t board_camera_format(uint16_t *width, uint16_t *height)
{
    *width = fz_cam.width;
    *height = fz_cam.height;
    return (board_pixfmt_t)fz_cam.format;
}

/* A camera driver that trusts its own header, as board_host.c does: its size wraps in 32 bits
 * just like the app loop's would have. */
size_t board_camera_capture(uint8_t *buf, size_t cap)
{
    const size_t bytes = (size_t)fz_cam.width * fz_cam.height * pc_pixfmt_bytes(fz_cam.format);
    if (fz_cam.frames_left == 0 || bytes > cap) {
        return 0;
    }
    fz_cam.frames_left--;
    for (size_t i = 0; i < bytes; i++) {
        buf[i] = (uint8_t)rnd();
    }
    return bytes;
}

size_t board_read_input(uint8_t *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return 0;
}

void board_write_output(const uint8_t *buf, size_t len)
{
    (void)buf;
    (void)len;
}

void board_exit(int status)
{
    exit(status);
}

void board_led(int on)
{
    (void)on;
}

/* ---- the reference model: what the loop must answer (64-bit sizes, no wrap-around) ---- */

static struct {
    struct {
        int active;
        uint32_t id;
        uint16_t width, height;
        uint8_t format;
        uint64_t received, total;
    } rx;
    int cam_on;
    uint16_t cam_w, cam_h;
    uint8_t cam_format;
    int32_t stream;
    uint32_t cam_frames, results, errors;
    uint8_t preview_k;
} ref;

enum { ANY_DECODE_ERRORS = 0xFF }; /* an expectation: any number of decoder ERRORs */

typedef struct {
    uint8_t type;
    uint16_t code;      /* ERROR */
    int check_id;       /* ERROR: check frame_id */
    uint32_t id;        /* ERROR / RESULT frame id; PONG token */
    uint8_t source;     /* RESULT */
    uint8_t key;        /* SET */
    int32_t value;      /* SET */
    uint8_t level;      /* LOG */
} expect_t;

static expect_t want[16];
static size_t n_want;

static expect_t *expect(uint8_t type)
{
    expect_t *e = &want[n_want++];
    memset(e, 0, sizeof *e);
    e->type = type;
    return e;
}

static void expect_error(uint16_t code, int check_id, uint32_t id)
{
    expect_t *e = expect(PC_MSG_ERROR);
    e->code = code;
    e->check_id = check_id;
    e->id = id;
    ref.errors++;
}

static void expect_result(uint32_t id, uint8_t source)
{
    expect_t *e = expect(PC_MSG_RESULT);
    e->id = id;
    e->source = source;
    ref.results++;
}

static uint64_t ref_bytes(uint16_t w, uint16_t h, uint8_t format)
{
    const uint64_t bpp = format >= 1 && format <= 3 ? format : 0;
    return (uint64_t)w * h * bpp;
}

/* Does w x h x bpp wrap in 32 bits? (the inputs the old size check got wrong) */
static int wraps(uint16_t w, uint16_t h, uint8_t format)
{
    return ref_bytes(w, h, format) > UINT32_MAX;
}

static void ref_frame(const uint8_t *p, size_t len)
{
    if (len < PC_PROTO_CHUNK_HEADER_BYTES + 1) {
        const uint32_t id = len >= 4 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 |
                                           (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
                                     : 0;
        ref.rx.active = 0;
        expect_error(PC_ERR_MALFORMED, 1, id);
        return;
    }
    const uint32_t id = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                        (uint32_t)p[3] << 24;
    const uint16_t w = (uint16_t)(p[4] | p[5] << 8), h = (uint16_t)(p[6] | p[7] << 8);
    const uint8_t format = p[8];
    const uint32_t offset = (uint32_t)p[10] | (uint32_t)p[11] << 8 | (uint32_t)p[12] << 16 |
                            (uint32_t)p[13] << 24;
    const uint64_t n = len - PC_PROTO_CHUNK_HEADER_BYTES;
    const uint64_t total = ref_bytes(w, h, format);
    if (format < 1 || format > 3) {
        ref.rx.active = 0;
        expect_error(PC_ERR_BAD_FORMAT, 1, id);
        return;
    }
    if (total == 0 || total > sizeof frame_buf) {
        ref.rx.active = 0;
        expect_error(PC_ERR_BAD_SIZE, 1, id);
        return;
    }
    if (offset == 0) {
        ref.rx.active = 1;
        ref.rx.id = id;
        ref.rx.width = w;
        ref.rx.height = h;
        ref.rx.format = format;
        ref.rx.received = 0;
        ref.rx.total = total;
    } else if (!ref.rx.active || ref.rx.id != id || ref.rx.width != w || ref.rx.height != h ||
               ref.rx.format != format || ref.rx.received != offset) {
        ref.rx.active = 0;
        expect_error(PC_ERR_SEQUENCE, 1, id);
        return;
    }
    if (n > ref.rx.total - ref.rx.received) {
        ref.rx.active = 0;
        expect_error(PC_ERR_BAD_SIZE, 1, id);
        return;
    }
    ref.rx.received += n;
    if (ref.rx.received == ref.rx.total) {
        ref.rx.active = 0;
        expect_result(id, PC_SOURCE_FRAME);
    }
}

static void ref_set(const uint8_t *p, size_t len)
{
    if (len != 5) {
        expect_error(PC_ERR_MALFORMED, 1, 0);
        return;
    }
    const uint8_t key = p[0];
    const int32_t v = (int32_t)((uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 |
                                (uint32_t)p[4] << 24);
    int ok = 0;
    switch (key) {
    case PC_SET_PREVIEW:
        ok = v >= 0 && v <= PREVIEW_MAX_K;
        if (ok) {
            ref.preview_k = (uint8_t)v;
        }
        break;
    case PC_SET_STREAM:
        if (!ref.cam_on) {
            expect_error(PC_ERR_NO_CAMERA, 1, 0);
            return;
        }
        ok = v >= -1;
        if (ok) {
            ref.stream = v;
        }
        break;
#if PC_APP_TASK == PC_TASK_DETECT
    case PC_SET_SCORE_Q:
        ok = v >= -128 && v <= 128;
        break;
    case PC_SET_NMS_IOU_Q10:
        ok = v >= 0 && v <= 1024;
        break;
    case PC_SET_MAX_DETECTIONS:
        ok = v >= 1 && v <= PC_DET_MAX_DETECTIONS;
        break;
#endif
    default:
        break;
    }
    if (!ok) {
        expect_error(PC_ERR_BAD_SETTING, 1, 0);
        return;
    }
    expect_t *e = expect(PC_MSG_SET);
    e->key = key;
    e->value = v;
}

/* One pass of main()'s loop after the serial bytes: a capture while streaming. */
static void ref_capture(unsigned frames_left)
{
    if (ref.stream == 0) {
        return;
    }
    if (frames_left == 0) {
        ref.stream = 0;
        expect(PC_MSG_LOG)->level = PC_LOG_INFO;
        return;
    }
    ref.cam_frames++;
    expect_result(ref.cam_frames, PC_SOURCE_CAMERA);
    if (ref.stream > 0) {
        ref.stream--;
    }
}

/* ---- checking the replies ---- */

static pc_decoder_t fz_dec;
static char fz_why[256];

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int fail(const char *why)
{
    snprintf(fz_why, sizeof fz_why, "%s", why);
    return -1;
}

/* Decode fz_out and match it against want[]; 0 or -1 (fz_why says why). */
static int check_replies(void)
{
    static uint8_t types[1024];
    static uint8_t bodies[1024][PC_PROTO_MAX_PAYLOAD];
    static size_t lens[1024];
    size_t n = 0;
    if (fz_out_overflow) {
        return fail("the replies overflowed the capture buffer");
    }
    pc_decoder_init(&fz_dec);
    for (size_t i = 0; i < fz_out_len; i++) {
        pc_packet_t pkt;
        const int r = pc_decoder_put(&fz_dec, fz_out[i], &pkt);
        if (r < 0) {
            return fail("a reply does not decode");
        }
        if (r == PC_DEC_PACKET) {
            if (n == sizeof types) {
                return fail("too many replies");
            }
            types[n] = pkt.type;
            memcpy(bodies[n], pkt.payload, pkt.len);
            lens[n++] = pkt.len;
        }
    }
    size_t k = 0;
    for (size_t j = 0; j < n_want; j++) {
        const expect_t *e = &want[j];
        if (e->type == ANY_DECODE_ERRORS) {
            while (k < n && types[k] == PC_MSG_ERROR) {
                const uint16_t code = (uint16_t)(bodies[k][0] | bodies[k][1] << 8);
                if (code != PC_ERR_CRC && code != PC_ERR_FRAMING && code != PC_ERR_TOO_LONG &&
                    code != PC_ERR_VERSION && code != PC_ERR_MALFORMED &&
                    code != PC_ERR_UNKNOWN_TYPE) {
                    return fail("garbage answered with an unexpected ERROR code");
                }
                ref.errors++;
                k++;
            }
            continue;
        }
        if (e->type == PC_MSG_RESULT && ref.preview_k > 0) {
            size_t previews = 0;
            while (k < n && types[k] == PC_MSG_PREVIEW) {
                if (lens[k] < 4 || get32(bodies[k]) != e->id) {
                    return fail("a PREVIEW of another frame");
                }
                previews++;
                k++;
            }
            if (previews == 0) {
                return fail("no PREVIEW before a RESULT while previews are on");
            }
        }
        if (k == n) {
            snprintf(fz_why, sizeof fz_why, "reply %zu (type %u) missing", j, e->type);
            return -1;
        }
        const uint8_t *b = bodies[k];
        const size_t len = lens[k];
        if (types[k] != e->type) {
            snprintf(fz_why, sizeof fz_why, "reply %zu: type %u (code %u), expected type %u "
                     "(code %u)", j, types[k], types[k] == PC_MSG_ERROR && len >= 2 ?
                     (unsigned)(b[0] | b[1] << 8) : 0u, e->type, e->code);
            return -1;
        }
        switch (e->type) {
        case PC_MSG_ERROR:
            if (len < 6 || (uint16_t)(b[0] | b[1] << 8) != e->code ||
                (e->check_id && get32(b + 2) != e->id)) {
                snprintf(fz_why, sizeof fz_why, "ERROR code %u frame %lu, expected code %u "
                         "frame %lu", len >= 2 ? (unsigned)(b[0] | b[1] << 8) : 0u,
                         len >= 6 ? (unsigned long)get32(b + 2) : 0ul, e->code,
                         (unsigned long)e->id);
                return -1;
            }
            break;
        case PC_MSG_RESULT:
            if (len < 14 || get32(b) != e->id || b[12] != e->source || b[13] != PC_APP_TASK) {
                return fail("RESULT of the wrong frame or source");
            }
            break;
        case PC_MSG_SET:
            if (len != 5 || b[0] != e->key || (int32_t)get32(b + 1) != e->value) {
                return fail("SET echo differs");
            }
            break;
        case PC_MSG_LOG:
            if (len < 1 || b[0] != e->level) {
                return fail("LOG of the wrong level");
            }
            break;
        case PC_MSG_HELLO:
            if (len < 13 || (uint16_t)(b[8] | b[9] << 8) != ref.cam_w ||
                (uint16_t)(b[10] | b[11] << 8) != ref.cam_h || b[12] != ref.cam_format) {
                return fail("HELLO reports another camera");
            }
            break;
        case PC_MSG_PONG:
            if (len != 16 || get32(b) != e->id || get32(b + 8) != ref.results ||
                get32(b + 12) != ref.errors) {
                snprintf(fz_why, sizeof fz_why, "PONG token %lu results %lu errors %lu, "
                         "expected %lu %lu %lu", len == 16 ? (unsigned long)get32(b) : 0ul,
                         len == 16 ? (unsigned long)get32(b + 8) : 0ul,
                         len == 16 ? (unsigned long)get32(b + 12) : 0ul, (unsigned long)e->id,
                         (unsigned long)ref.results, (unsigned long)ref.errors);
                return -1;
            }
            break;
        default:
            break;
        }
        k++;
    }
    if (k != n) {
        snprintf(fz_why, sizeof fz_why, "%zu unexpected replies, the first of type %u", n - k,
                 types[k]);
        return -1;
    }
    return 0;
}

/* ---- generating hostile inputs ---- */

static uint8_t fz_wire[PC_PROTO_MAX_WIRE];

static void feed_packet(uint8_t type, const uint8_t *p, size_t len)
{
    const size_t n = pc_encode(type, p, len, fz_wire, sizeof fz_wire);
    on_serial(fz_wire, n);
}

/* A width or height: anything, small, near 2^15 / 2^16, or 0. */
static uint16_t hostile_dim(void)
{
    switch (rnd() % 6) {
    case 0:
        return (uint16_t)rnd();
    case 1:
        return (uint16_t)(65535u - rnd() % 64u);
    case 2:
        return (uint16_t)(32768u + rnd() % 64u - 32u);
    case 3:
        return (uint16_t)(rnd() % 4 == 0 ? 0u : 46341u + rnd() % 8u - 4u);
    default:
        return (uint16_t)(rnd() % 70u);
    }
}

/* Width x height x bpp beyond 2^32 whose 32-bit remainder is a small, "fitting" size (1 ..
 * frame_buf bytes): exactly what slipped past the old unchecked product. */
static void wrapping_dims(uint16_t *w, uint16_t *h, uint8_t *format)
{
    for (;;) {
        const uint64_t bpp = 2u + rnd() % 2u;
        const uint64_t target = (uint64_t)(bpp == 3u ? 1u + rnd() % 2u : 1u) << 32;
        const uint64_t ww = 1u + rnd() % 65535u;
        const uint64_t hh = (target + bpp * ww - 1u) / (bpp * ww);
        if (hh > 65535u) {
            continue;
        }
        const uint64_t excess = ww * hh * bpp - target;
        if (excess == 0 || excess > sizeof frame_buf) {
            continue;
        }
        *w = (uint16_t)ww;
        *h = (uint16_t)hh;
        *format = (uint8_t)bpp;
        return;
    }
}

/* An image that fits frame_buf. */
static void fitting_dims(uint16_t *w, uint16_t *h, uint8_t *format)
{
    do {
        *format = (uint8_t)(1u + rnd() % 3u);
        *w = (uint16_t)(1u + rnd() % 48u);
        *h = (uint16_t)(1u + rnd() % 40u);
    } while (ref_bytes(*w, *h, *format) > sizeof frame_buf);
}

static long n_wrapping;

static void gen_frame(void)
{
    static uint8_t p[PC_PROTO_MAX_PAYLOAD];
    uint32_t id = rnd();
    uint16_t w, h;
    uint8_t format;
    uint32_t offset = 0;
    size_t n;
    const uint32_t kind = rnd() % 16;
    if (kind < 4) { /* 32-bit wrap-around, with data up to the wrapped "size" */
        wrapping_dims(&w, &h, &format);
        const uint32_t wrapped = (uint32_t)((uint64_t)w * h * format);
        n = 1 + rnd() % (wrapped < PC_PROTO_MAX_CHUNK_DATA ? wrapped : PC_PROTO_MAX_CHUNK_DATA);
        if (rnd() % 2 == 0 && wrapped <= PC_PROTO_MAX_CHUNK_DATA) {
            n = wrapped; /* what would complete the image and run preprocessing on it */
        }
    } else if (kind < 9) { /* extreme sizes and formats */
        w = hostile_dim();
        h = hostile_dim();
        format = (uint8_t)(rnd() % 8 == 0 ? rnd() : rnd() % 5);
        n = rnd() % 4 == 0 ? rnd() % (PC_PROTO_MAX_CHUNK_DATA + 1) : rnd() % 64;
    } else if (kind < 12 && ref.rx.active) { /* continue (or nearly) the image in progress */
        id = ref.rx.id;
        w = ref.rx.width;
        h = ref.rx.height;
        format = ref.rx.format;
        offset = (uint32_t)ref.rx.received;
        const uint64_t left = ref.rx.total - ref.rx.received;
        n = 1 + rnd() % (left < PC_PROTO_MAX_CHUNK_DATA ? left : PC_PROTO_MAX_CHUNK_DATA);
        switch (rnd() % 8) {
        case 0:
            offset += rnd() % 3 - 1u;
            break;
        case 1:
            n += 1 + rnd() % 4;
            n = n > PC_PROTO_MAX_CHUNK_DATA ? PC_PROTO_MAX_CHUNK_DATA : n;
            break;
        case 2:
            h ^= (uint16_t)(1u << rnd() % 16);
            break;
        default:
            break;
        }
    } else { /* an image that fits: the first chunk, or the whole of a small one */
        fitting_dims(&w, &h, &format);
        const uint32_t total = (uint32_t)ref_bytes(w, h, format);
        n = rnd() % 3 == 0 && total <= PC_PROTO_MAX_CHUNK_DATA
                ? total
                : 1 + rnd() % (total < PC_PROTO_MAX_CHUNK_DATA ? total : PC_PROTO_MAX_CHUNK_DATA);
        if (rnd() % 8 == 0) {
            offset = rnd() % 2 ? rnd() : (uint32_t)n;
        }
    }
    n_wrapping += wraps(w, h, format);
    pc_writer_t wr;
    pc_w_init(&wr, p, sizeof p);
    pc_w_u32(&wr, id);
    pc_w_u16(&wr, w);
    pc_w_u16(&wr, h);
    pc_w_u8(&wr, format);
    pc_w_u8(&wr, (uint8_t)rnd());
    pc_w_u32(&wr, offset);
    for (size_t i = 0; i < n; i++) {
        pc_w_u8(&wr, (uint8_t)rnd());
    }
    size_t len = wr.len;
    if (rnd() % 24 == 0) {
        len = rnd() % (PC_PROTO_CHUNK_HEADER_BYTES + 1); /* a truncated header */
    }
    ref_frame(p, len);
    feed_packet(PC_MSG_FRAME, p, len);
}

static int32_t hostile_value(void)
{
    static const int32_t edges[] = {INT32_MIN, -1025, -129, -128, -2, -1, 0, 1, 2, 7, 8, 9,
                                    127, 128, 129, 1024, 1025, 65536, INT32_MAX};
    if (rnd() % 3 == 0) {
        return (int32_t)rnd();
    }
    const int32_t v = edges[rnd() % (sizeof edges / sizeof edges[0])];
    return v == INT32_MIN || v == INT32_MAX ? v : v + (int32_t)(rnd() % 3) - 1;
}

static void gen_set(void)
{
    uint8_t p[8];
    p[0] = (uint8_t)(rnd() % 4 == 0 ? rnd() : rnd() % 7);
    const uint32_t v = (uint32_t)hostile_value();
    for (int i = 0; i < 4; i++) {
        p[1 + i] = (uint8_t)(v >> (8 * i));
    }
    p[5] = (uint8_t)rnd();
    p[6] = (uint8_t)rnd();
    p[7] = (uint8_t)rnd();
    size_t len = 5;
    if (rnd() % 12 == 0) {
        len = rnd() % (sizeof p + 1);
    }
    if (p[0] == PC_SET_PREVIEW && rnd() % 2 == 0) {
        p[1] = 0; /* keep previews mostly off: they only slow the fuzzing down */
    }
    ref_set(p, len);
    feed_packet(PC_MSG_SET, p, len);
}

static void gen_camera(void)
{
    uint16_t w, h;
    uint8_t format;
    const uint32_t kind = rnd() % 8;
    if (kind < 3) {
        wrapping_dims(&w, &h, &format);
    } else if (kind < 6) {
        w = hostile_dim();
        h = hostile_dim();
        format = (uint8_t)(rnd() % 8 == 0 ? rnd() : rnd() % 5);
    } else {
        fitting_dims(&w, &h, &format);
    }
    n_wrapping += wraps(w, h, format);
    fz_cam.width = w;
    fz_cam.height = h;
    fz_cam.format = format;
    fz_cam.frames_left = rnd() % 3;
    /* main()'s start-up, again */
    const uint64_t bytes = ref_bytes(w, h, format);
    ref.cam_on = format != BOARD_PIXFMT_NONE && bytes != 0 && bytes <= sizeof frame_buf;
    if (format != BOARD_PIXFMT_NONE && !ref.cam_on) {
        expect(PC_MSG_LOG)->level = PC_LOG_WARNING;
    }
    ref.cam_w = ref.cam_on ? w : 0;
    ref.cam_h = ref.cam_on ? h : 0;
    ref.cam_format = ref.cam_on ? format : 0;
    ref.stream = 0;
    camera_setup();
    /* the host asks what it is talking to, then for one camera frame */
    expect(PC_MSG_HELLO);
    feed_packet(PC_MSG_HELLO, NULL, 0);
    const uint8_t set[5] = {PC_SET_STREAM, 1, 0, 0, 0};
    ref_set(set, sizeof set);
    feed_packet(PC_MSG_SET, set, sizeof set);
}

static void gen_garbage(void)
{
    static uint8_t g[3 * PC_PROTO_MAX_WIRE];
    const size_t n = 1 + rnd() % (rnd() % 8 == 0 ? sizeof g - 1 : 64u);
    const uint32_t zero_every = 4 + rnd() % 100;
    for (size_t i = 0; i < n; i++) {
        g[i] = rnd() % zero_every == 0 ? 0 : (uint8_t)rnd();
    }
    g[n] = 0;
    expect(ANY_DECODE_ERRORS);
    on_serial(g, n + 1);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s N SEED\n", argv[0]);
        return 2;
    }
    const long n = strtol(argv[1], NULL, 10);
    fz_rng = strtoull(argv[2], NULL, 10) * 0x9E3779B97F4A7C15ULL + 1;
    long kinds[4] = {0, 0, 0, 0};
    /* pc_preprocess itself refuses sizes whose bytes or resize indices overflow 32 bits
     * (it returns before touching src or dst) */
    int8_t *x = model_input();
    if (pc_preprocess(frame_buf, 46341, 46341, 2, x, MODEL_INPUT_W, MODEL_INPUT_H,
                      MODEL_INPUT_C) != -1 ||
        pc_preprocess(frame_buf, 65535, 65535, 3, x, MODEL_INPUT_W, MODEL_INPUT_H,
                      MODEL_INPUT_C) != -1 ||
        pc_preprocess(frame_buf, 65535, 1, 1, x, 40000, 1, 1) != -1) {
        fprintf(stderr, "app fuzz: pc_preprocess accepted a size that overflows 32 bits\n");
        return 1;
    }
    pc_decoder_init(&decoder);
    camera_setup(); /* no camera at first */
    for (long it = 0; it < n; it++) {
        fz_out_len = 0;
        fz_out_overflow = 0;
        n_want = 0;
        const uint32_t r = rnd() % 20;
        const int kind = r < 11 ? 0 : r < 15 ? 1 : r < 19 ? 2 : 3;
        kinds[kind]++;
        if (kind == 0) {
            gen_frame();
        } else if (kind == 1) {
            gen_set();
        } else if (kind == 2) {
            gen_camera();
        } else {
            gen_garbage();
        }
        /* main() captures once per pass while streaming */
        ref_capture(fz_cam.frames_left);
        if (st.stream != 0) {
            capture_one();
        }
        /* the sentinel */
        const uint8_t ping[4] = {(uint8_t)it, (uint8_t)(it >> 8), (uint8_t)(it >> 16),
                                 (uint8_t)(it >> 24)};
        expect(PC_MSG_PONG)->id = (uint32_t)it;
        feed_packet(PC_MSG_PING, ping, sizeof ping);
        if (check_replies() != 0) {
            fprintf(stderr, "app fuzz: input %ld (kind %d): %s\n", it, kind, fz_why);
            return 1;
        }
        if (rx.active != ref.rx.active) {
            fprintf(stderr, "app fuzz: input %ld: the board %s an image\n", it,
                    rx.active ? "still receives" : "dropped");
            return 1;
        }
    }
    printf("app fuzz: %ld inputs (frame %ld, set %ld, camera %ld, garbage %ld; %ld headers "
           "over 2^32 bytes), %lu ERRORs, %lu RESULTs, every reply as expected, sizeof(size_t) "
           "%u\n",
           n, kinds[0], kinds[1], kinds[2], kinds[3], n_wrapping, (unsigned long)ref.errors,
           (unsigned long)ref.results, (unsigned)sizeof(size_t));
    return 0;
}
