/* app_main.c - the board-independent app loop (docs/design.md §4.6): frames in, results out, over
 * the wire protocol (docs/protocol.md).
 *
 *   start:  HELLO
 *   loop:   read serial bytes -> decode packets ->
 *             FRAME chunks  -> when an image is complete: process it
 *             HELLO (empty) -> HELLO;  PING -> PONG;  SET -> SET (value in force) or ERROR
 *             anything malformed -> ERROR, and carry on
 *           while streaming (SET STREAM), capture camera frames and process them
 *   process: preprocess (resize, colour, q = pixel - 128) into model_input(), [PREVIEW],
 *            model_invoke() timed with board_time_us(), postprocess (class scores, or the
 *            detection decode + NMS of pc_detect.c), RESULT.
 *            A model with a fused input (MODEL_FUSED_INPUT) has no model_input() here: the frame
 *            is checked once, then model_invoke_source() preprocesses each patch's input
 *            window straight from the frame (pc_preprocess_window), so the board never holds
 *            the whole preprocessed input (61,440 bytes for a 160x128 RGB detector); its
 *            latency then includes the preprocessing.
 *
 * Built with the generated model.h and app_config.h (patchcam.app.export), pc_proto.c,
 * pc_preprocess.c and pc_detect.c. No malloc, no stdio: every buffer is static.
 * Sizes taken from a FRAME header or the camera are multiplied with pc_size.h's checked helpers
 * only (size_t is 32 bits on the board: a wrapped product would pass the size checks).
 * Compile-time options: PC_BOARD_NAME (string), PC_APP_FRAME_MAX_BYTES (the largest camera or
 * FRAME image buffered; default: the model input as RGB888), PC_APP_AUTOSTREAM (1: stream
 * from the camera from boot when the board has one; default 0), PC_APP_TEXT_UNTIL_HELLO (1: the
 * standalone mode of a board without a screen: from boot it streams its camera and prints one
 * readable line per frame (pc_textline.h), lighting the LED while something is found, until a
 * host sends any valid packet (the viewer's HELLO): from then on it speaks only the binary
 * protocol; bytes that do not decode are ignored meanwhile, so a serial monitor sees text only),
 * PC_APP_SCREEN (1: every processed frame, its boxes and latency are drawn on the board's
 * display through board.h's board_screen_back/board_screen_show and pc_draw.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "app_config.h"
#include "board.h"
#include "model.h"
#ifdef MODEL_FUSED_INPUT
#include "pc_patch.h" /* pc_input_source_t, pc_window_t */
#endif
#include "pc_preprocess.h"
#include "pc_proto.h"
#include "pc_size.h"
#if PC_APP_TASK == PC_TASK_DETECT
#include "pc_detect.h"
#endif
#ifndef PC_APP_TEXT_UNTIL_HELLO
#define PC_APP_TEXT_UNTIL_HELLO 0
#endif
#ifndef PC_APP_SCREEN
#define PC_APP_SCREEN 0
#endif
#if PC_APP_TEXT_UNTIL_HELLO
#include "pc_textline.h"
#endif
#if PC_APP_SCREEN
#include "pc_draw.h"
#endif

#ifndef PC_BOARD_NAME
#define PC_BOARD_NAME "unknown"
#endif
#ifndef PC_APP_FRAME_MAX_BYTES
#define PC_APP_FRAME_MAX_BYTES ((size_t)MODEL_INPUT_W * MODEL_INPUT_H * 3u)
#endif
#ifndef PC_APP_AUTOSTREAM
#define PC_APP_AUTOSTREAM 0
#endif

#if PC_APP_TASK == PC_TASK_CLASSIFY && PC_APP_NUM_CLASSES != MODEL_OUTPUT_BYTES
#error "a classify app needs one model output per class"
#endif
#if PC_APP_TASK == PC_TASK_DETECT &&                                                           \
    PC_DET_GRID_H * PC_DET_GRID_W * (PC_DET_NUM_CLASSES + 4) != MODEL_OUTPUT_BYTES
#error "the detection head's grid does not match the model output"
#endif
/* One RESULT packet carries every detection: 15 bytes of head, 10 per box, a u8 count
 * (patchcam.app.config.MAX_DETECTIONS); pc_det_params_t holds the counts in uint16_t. */
#if PC_APP_TASK == PC_TASK_DETECT &&                                                           \
    (PC_DET_MAX_DETECTIONS < 1 || PC_DET_MAX_DETECTIONS > 255 ||                               \
     15 + 10 * PC_DET_MAX_DETECTIONS > PC_PROTO_MAX_PAYLOAD || PC_DET_MAX_CANDIDATES < 1 ||    \
     PC_DET_MAX_CANDIDATES > 65535)
#error "PC_DET_MAX_DETECTIONS must fit one RESULT packet, PC_DET_MAX_CANDIDATES a uint16_t"
#endif

#define PREVIEW_MAX_K 8
#define SERIAL_TIMEOUT_US 20000u

static const char *const class_names[PC_APP_NUM_CLASSES] = PC_APP_CLASS_NAMES;

static uint8_t frame_buf[PC_APP_FRAME_MAX_BYTES];
static pc_decoder_t decoder;
static uint8_t wire[PC_PROTO_MAX_WIRE];
static uint8_t payload[PC_PROTO_MAX_PAYLOAD];

/* The image being received in FRAME chunks. */
static struct {
    int active;
    uint32_t id;
    uint16_t width, height;
    uint8_t format;
    size_t received, total;
} rx;

static struct {
    uint8_t preview_k;
    int32_t stream; /* 0 off, n > 0 frames left, -1 forever */
    uint16_t cam_w, cam_h;
    uint8_t cam_format;
    uint32_t cam_frames;
    uint32_t results, errors;
    int text_mode; /* PC_APP_TEXT_UNTIL_HELLO: no host has spoken yet */
} st;

#if PC_APP_TASK == PC_TASK_DETECT
static pc_det_params_t det = {
    PC_DET_NUM_CLASSES, PC_DET_STRIDE,  PC_DET_GRID_H,         PC_DET_GRID_W,
    PC_DET_IMAGE_W,     PC_DET_IMAGE_H, PC_DET_ZERO_POINT,     PC_DET_Q_THRESHOLD,
    PC_DET_BOX_MULTIPLIER, PC_DET_FRAC_BITS, PC_DET_IOU_Q10, PC_DET_MAX_CANDIDATES,
    PC_DET_MAX_DETECTIONS, PC_DET_CLASS_AGNOSTIC,
};
static pc_detection_t candidates[PC_DET_MAX_CANDIDATES];
static pc_detection_t detections[PC_DET_MAX_DETECTIONS];
#endif

/* The image being processed: raw pixels as captured or received. */
typedef struct {
    const uint8_t *pixels;
    uint16_t width, height;
    uint8_t format;
} frame_t;

#ifdef MODEL_FUSED_INPUT
/* Set when the input source could not preprocess a window (it cannot: process() checked the
 * frame and the generated windows lie inside the model input; a failure is still reported
 * rather than a result computed from stale bytes). */
static int input_failed;

/* The input source of model_invoke_source: the model input's window `win`, preprocessed
 * from the frame (ctx), written contiguously to dst. */
static void read_frame_window(const void *ctx, const pc_window_t *win, int32_t c, int8_t *dst)
{
    const frame_t *f = (const frame_t *)ctx;
    if (win->y < 0 || win->x < 0 || win->h < 0 || win->w < 0 || c != MODEL_INPUT_C) {
        input_failed = 1;
        return;
    }
    const pc_rect_t r = {(uint16_t)win->y, (uint16_t)win->x, (uint16_t)win->h,
                         (uint16_t)win->w};
    if (pc_preprocess_window(f->pixels, f->width, f->height, f->format, &r, dst,
                             MODEL_INPUT_W, MODEL_INPUT_H, MODEL_INPUT_C) != 0) {
        input_failed = 1;
    }
}
#endif

/* The preprocessed model input's pixel (y, x): its MODEL_INPUT_C values. With a fused input
 * it is preprocessed from the frame on its own (a 1x1 window: the same bytes by construction);
 * else read from model_input(), which process() filled. */
static void input_pixel(const frame_t *f, uint32_t y, uint32_t x, int8_t *out)
{
#ifdef MODEL_FUSED_INPUT
    const pc_rect_t r = {(uint16_t)y, (uint16_t)x, 1, 1};
    if (pc_preprocess_window(f->pixels, f->width, f->height, f->format, &r, out,
                             MODEL_INPUT_W, MODEL_INPUT_H, MODEL_INPUT_C) != 0) {
        memset(out, 0, MODEL_INPUT_C); /* not reached: process() checked the frame */
    }
#else
    (void)f;
    memcpy(out, model_input() + (y * MODEL_INPUT_W + x) * MODEL_INPUT_C, MODEL_INPUT_C);
#endif
}

/* ---- sending ---- */

static void send(uint8_t type, const uint8_t *p, size_t len)
{
    if (st.text_mode) { /* standalone: only text reaches the serial port */
        return;
    }
    const size_t n = pc_encode(type, p, len, wire, sizeof wire);
    if (n > 0) {
        board_serial_write(wire, n);
    }
}

static void send_error(uint16_t code, uint32_t frame_id, const char *text)
{
    pc_writer_t w;
    pc_w_init(&w, payload, sizeof payload);
    pc_w_u16(&w, code);
    pc_w_u32(&w, frame_id);
    pc_w_text(&w, text);
    send(PC_MSG_ERROR, payload, w.len);
    st.errors++;
}

static void send_log(uint8_t level, const char *text)
{
    pc_writer_t w;
    pc_w_init(&w, payload, sizeof payload);
    pc_w_u8(&w, level);
    pc_w_text(&w, text);
    send(PC_MSG_LOG, payload, w.len);
}

static void send_hello(void)
{
    pc_writer_t w;
    pc_w_init(&w, payload, sizeof payload);
    pc_w_u8(&w, PC_PROTO_VERSION);
    pc_w_u8(&w, PC_APP_TASK);
    pc_w_u16(&w, MODEL_INPUT_W);
    pc_w_u16(&w, MODEL_INPUT_H);
    pc_w_u8(&w, MODEL_INPUT_C);
    pc_w_u8(&w, MODEL_INPUT_C == 1 ? BOARD_PIXFMT_GRAY8 : BOARD_PIXFMT_RGB888);
    pc_w_u16(&w, st.cam_w);
    pc_w_u16(&w, st.cam_h);
    pc_w_u8(&w, st.cam_format);
    pc_w_u32(&w, PC_APP_MODEL_HASH);
    pc_w_u32(&w, MODEL_ARENA_BYTES);
    pc_w_u32(&w, (uint32_t)MODEL_PARAM_BYTES);
    pc_w_u32(&w, (uint32_t)PC_APP_FRAME_MAX_BYTES);
    pc_w_f32(&w, MODEL_OUTPUT_SCALE);
    pc_w_u8(&w, (uint8_t)(int8_t)MODEL_OUTPUT_ZERO_POINT);
    pc_w_str(&w, PC_BOARD_NAME);
    pc_w_str(&w, PC_APP_NAME);
    pc_w_str(&w, MODEL_NAME);
    pc_w_u8(&w, PC_APP_NUM_CLASSES);
    for (size_t i = 0; i < PC_APP_NUM_CLASSES; i++) {
        pc_w_str(&w, class_names[i]);
    }
    send(PC_MSG_HELLO, payload, w.len); /* fits: patchcam.app.export checks the class names */
}

/* The preprocessed model input (q + 128) subsampled by k, in PREVIEW chunks. */
static void send_preview(uint32_t frame_id, const frame_t *f)
{
    const uint32_t k = st.preview_k;
    const uint32_t c = MODEL_INPUT_C;
    const uint32_t th = MODEL_INPUT_H / k > 0 ? MODEL_INPUT_H / k : 1u;
    const uint32_t tw = MODEL_INPUT_W / k > 0 ? MODEL_INPUT_W / k : 1u;
    const uint32_t total = th * tw * c;
    int8_t x[MODEL_INPUT_C];
    uint32_t x_px = UINT32_MAX; /* the pixel x holds (a chunk may start inside a pixel) */
    uint32_t offset = 0;
    while (offset < total) {
        pc_writer_t w;
        pc_w_init(&w, payload, sizeof payload);
        pc_w_u32(&w, frame_id);
        pc_w_u16(&w, (uint16_t)tw);
        pc_w_u16(&w, (uint16_t)th);
        pc_w_u8(&w, c == 1 ? BOARD_PIXFMT_GRAY8 : BOARD_PIXFMT_RGB888);
        pc_w_u8(&w, 0);
        pc_w_u32(&w, offset);
        uint32_t n = total - offset;
        n = n < PC_PROTO_MAX_CHUNK_DATA ? n : PC_PROTO_MAX_CHUNK_DATA;
        for (uint32_t i = offset; i < offset + n; i++) {
            const uint32_t px = i / c, ch = i % c;
            if (px != x_px) {
                input_pixel(f, (px / tw) * k, (px % tw) * k, x);
                x_px = px;
            }
            pc_w_u8(&w, (uint8_t)(x[ch] + 128));
        }
        send(PC_MSG_PREVIEW, payload, w.len);
        offset += n;
    }
}

#if PC_APP_TEXT_UNTIL_HELLO
static void send_text(const char *s, size_t n)
{
    board_serial_write((const uint8_t *)s, n);
    board_serial_write((const uint8_t *)"\r\n", 2);
}
#endif

#if PC_APP_SCREEN
static void show(const uint8_t *pixels, uint16_t width, uint16_t height, uint8_t format,
                 uint32_t latency_us, const pc_line_box_t *boxes, size_t n)
{
    const pc_fb_t *fb = board_screen_back();
    if (fb == 0) {
        return;
    }
    pc_draw_screen(fb, pixels, width, height, format, MODEL_INPUT_W, MODEL_INPUT_H, boxes, n,
                   class_names, PC_APP_NUM_CLASSES, MODEL_OUTPUT_SCALE,
                   MODEL_OUTPUT_ZERO_POINT, latency_us, PC_APP_NAME);
    board_screen_show();
}
#endif

/* ---- the pipeline ---- */

static void process(uint32_t frame_id, uint8_t source, const uint8_t *pixels, uint16_t width,
                    uint16_t height, uint8_t format)
{
    const uint32_t t0 = board_time_us();
    const frame_t frame = {pixels, width, height, format};
#ifdef MODEL_FUSED_INPUT
    /* the input is preprocessed window by window during inference: refuse a frame before */
    if (pc_preprocess_check(width, height, format, MODEL_INPUT_W, MODEL_INPUT_H,
                            MODEL_INPUT_C) != 0) {
#else
    if (pc_preprocess(pixels, width, height, format, model_input(), MODEL_INPUT_W,
                      MODEL_INPUT_H, MODEL_INPUT_C) != 0) {
#endif
        send_error(PC_ERR_BAD_FORMAT, frame_id, "cannot preprocess this image");
        return;
    }
    if (st.preview_k > 0) {
        send_preview(frame_id, &frame);
    }
    board_led(1);
    const uint32_t t1 = board_time_us();
#ifdef MODEL_FUSED_INPUT
    const pc_input_source_t input = {read_frame_window, &frame};
    input_failed = 0;
    model_invoke_source(&input);
#else
    model_invoke();
#endif
    const uint32_t t2 = board_time_us();
    board_led(0);
#ifdef MODEL_FUSED_INPUT
    if (input_failed) {
        send_error(PC_ERR_BAD_FORMAT, frame_id, "cannot preprocess this image");
        return;
    }
#endif

    pc_writer_t w;
    pc_w_init(&w, payload, sizeof payload);
    pc_w_u32(&w, frame_id);
    pc_w_u32(&w, t2 - t1);
    const size_t total_at = w.len;
    pc_w_u32(&w, 0); /* total_us, filled in below */
    pc_w_u8(&w, source);
    pc_w_u8(&w, PC_APP_TASK);
    const int8_t *y = model_output();
#if PC_APP_TEXT_UNTIL_HELLO
    if (st.text_mode) {
        static char line[256];
        size_t len;
        int found;
#if PC_APP_TASK == PC_TASK_CLASSIFY
        len = pc_line_classify(line, sizeof line, frame_id, t2 - t1, y, PC_APP_NUM_CLASSES,
                               class_names, MODEL_OUTPUT_SCALE, MODEL_OUTPUT_ZERO_POINT);
        found = 0; /* the LED: the last class (e.g. vww's "person") wins */
        for (size_t i = 0; i + 1 < PC_APP_NUM_CLASSES; i++) {
            found |= y[PC_APP_NUM_CLASSES - 1] > y[i];
        }
#else
        static pc_line_box_t boxes[PC_DET_MAX_DETECTIONS];
        const size_t nb = pc_detect_decode(y, &det, candidates, detections);
        for (size_t i = 0; i < nb; i++) {
            const pc_detection_t *d = &detections[i];
            boxes[i] = (pc_line_box_t){d->x0, d->y0, d->x1, d->y1, d->cls, (int8_t)d->score};
        }
        len = pc_line_detect(line, sizeof line, frame_id, t2 - t1, boxes, nb, class_names,
                             PC_APP_NUM_CLASSES, MODEL_OUTPUT_SCALE, MODEL_OUTPUT_ZERO_POINT);
        found = nb > 0;
#endif
        send_text(line, len);
#if PC_APP_SCREEN
#if PC_APP_TASK == PC_TASK_CLASSIFY
        show(pixels, width, height, format, t2 - t1, 0, 0);
#else
        show(pixels, width, height, format, t2 - t1, boxes, nb);
#endif
#endif
        board_led(found);
        st.results++;
        return;
    }
#endif
#if PC_APP_TASK == PC_TASK_CLASSIFY
    pc_w_u8(&w, PC_APP_NUM_CLASSES);
    pc_w_bytes(&w, y, PC_APP_NUM_CLASSES);
#else
    const size_t n = pc_detect_decode(y, &det, candidates, detections);
    pc_w_u8(&w, (uint8_t)n);
    for (size_t i = 0; i < n; i++) {
        const pc_detection_t *d = &detections[i];
        pc_w_u16(&w, d->x0);
        pc_w_u16(&w, d->y0);
        pc_w_u16(&w, d->x1);
        pc_w_u16(&w, d->y1);
        pc_w_u8(&w, d->cls);
        pc_w_u8(&w, (uint8_t)d->score);
    }
#endif
    const uint32_t total = board_time_us() - t0;
    for (int i = 0; i < 4; i++) {
        payload[total_at + (size_t)i] = (uint8_t)(total >> (8 * i));
    }
    send(PC_MSG_RESULT, payload, w.len);
    st.results++;
#if PC_APP_SCREEN
#if PC_APP_TASK == PC_TASK_CLASSIFY
    show(pixels, width, height, format, t2 - t1, 0, 0);
#else
    static pc_line_box_t shown[PC_DET_MAX_DETECTIONS];
    for (size_t i = 0; i < n; i++) {
        const pc_detection_t *d = &detections[i];
        shown[i] = (pc_line_box_t){d->x0, d->y0, d->x1, d->y1, d->cls, (int8_t)d->score};
    }
    show(pixels, width, height, format, t2 - t1, shown, n);
#endif
#endif
}

/* ---- handling messages ---- */

static void on_frame(const uint8_t *p, size_t len)
{
    pc_reader_t r;
    pc_r_init(&r, p, len);
    const uint32_t id = pc_r_u32(&r);
    const uint16_t width = pc_r_u16(&r), height = pc_r_u16(&r);
    const uint8_t format = pc_r_u8(&r);
    (void)pc_r_u8(&r); /* reserved */
    const uint32_t offset = pc_r_u32(&r);
    size_t n;
    const uint8_t *data = pc_r_rest(&r, &n);
    if (r.error || n == 0) {
        rx.active = 0;
        send_error(PC_ERR_MALFORMED, id, "FRAME chunk too short");
        return;
    }
    const size_t bpp = pc_pixfmt_bytes(format);
    if (bpp == 0) {
        rx.active = 0;
        send_error(PC_ERR_BAD_FORMAT, id, "unknown pixel format");
        return;
    }
    uint32_t total;
    if (pc_image_bytes(width, height, (uint32_t)bpp, &total) != 0 || total > sizeof frame_buf) {
        rx.active = 0;
        send_error(PC_ERR_BAD_SIZE, id, "image over max_frame_bytes");
        return;
    }
    if (total == 0) {
        rx.active = 0;
        send_error(PC_ERR_BAD_SIZE, id, "empty image");
        return;
    }
    if (offset == 0) {
        rx.active = 1;
        rx.id = id;
        rx.width = width;
        rx.height = height;
        rx.format = format;
        rx.received = 0;
        rx.total = total;
    } else if (!rx.active || rx.id != id || rx.width != width || rx.height != height ||
               rx.format != format || rx.received != offset) {
        rx.active = 0;
        send_error(PC_ERR_SEQUENCE, id, "FRAME chunk does not continue the image");
        return;
    }
    if (n > rx.total - rx.received) {
        rx.active = 0;
        send_error(PC_ERR_BAD_SIZE, id, "FRAME chunk past the end of the image");
        return;
    }
    memcpy(frame_buf + rx.received, data, n);
    rx.received += n;
    if (rx.received == rx.total) {
        rx.active = 0;
        process(rx.id, PC_SOURCE_FRAME, frame_buf, rx.width, rx.height, rx.format);
    }
}

static void on_ping(const uint8_t *p, size_t len)
{
    pc_reader_t r;
    pc_r_init(&r, p, len);
    const uint32_t token = pc_r_u32(&r);
    if (r.error || pc_r_left(&r) != 0) {
        send_error(PC_ERR_MALFORMED, 0, "PING needs a u32 token");
        return;
    }
    pc_writer_t w;
    pc_w_init(&w, payload, sizeof payload);
    pc_w_u32(&w, token);
    pc_w_u32(&w, board_time_us());
    pc_w_u32(&w, st.results);
    pc_w_u32(&w, st.errors);
    send(PC_MSG_PONG, payload, w.len);
}

/* Apply one setting; returns 0, or an error text. */
static const char *apply_setting(uint8_t key, int32_t v)
{
    switch (key) {
    case PC_SET_PREVIEW:
        if (v < 0 || v > PREVIEW_MAX_K) {
            return "PREVIEW must be 0..8";
        }
        st.preview_k = (uint8_t)v;
        return 0;
    case PC_SET_STREAM:
        if (st.cam_format == BOARD_PIXFMT_NONE) {
            return "";
        }
        if (v < -1) {
            return "STREAM must be -1, 0 or a frame count";
        }
        st.stream = v;
        return 0;
#if PC_APP_TASK == PC_TASK_DETECT
    case PC_SET_SCORE_Q:
        if (v < -128 || v > 128) {
            return "SCORE_Q must be -128..128";
        }
        det.q_threshold = v;
        return 0;
    case PC_SET_NMS_IOU_Q10:
        if (v < 0 || v > 1024) {
            return "NMS_IOU_Q10 must be 0..1024";
        }
        det.iou_q10 = v;
        return 0;
    case PC_SET_MAX_DETECTIONS:
        if (v < 1 || v > PC_DET_MAX_DETECTIONS) {
            return "MAX_DETECTIONS out of range";
        }
        det.max_detections = (uint16_t)v;
        return 0;
#endif
    default:
        return "unknown setting for this app";
    }
}

static void on_set(const uint8_t *p, size_t len)
{
    pc_reader_t r;
    pc_r_init(&r, p, len);
    const uint8_t key = pc_r_u8(&r);
    const int32_t value = (int32_t)pc_r_u32(&r);
    if (r.error || pc_r_left(&r) != 0) {
        send_error(PC_ERR_MALFORMED, 0, "SET needs key u8 and value i32");
        return;
    }
    const char *err = apply_setting(key, value);
    if (err != 0) {
        if (err[0] == '\0') {
            send_error(PC_ERR_NO_CAMERA, 0, "this board has no camera");
        } else {
            send_error(PC_ERR_BAD_SETTING, 0, err);
        }
        return;
    }
    payload[0] = key;
    for (int i = 0; i < 4; i++) {
        payload[1 + i] = (uint8_t)((uint32_t)value >> (8 * i));
    }
    send(PC_MSG_SET, payload, 5);
}

static void on_packet(const pc_packet_t *pkt)
{
    if (st.text_mode) { /* a host speaks the protocol: it takes over (and the camera stops) */
        st.text_mode = 0;
        st.stream = 0;
        board_led(0);
    }
    switch (pkt->type) {
    case PC_MSG_HELLO:
        send_hello();
        break;
    case PC_MSG_FRAME:
        on_frame(pkt->payload, pkt->len);
        break;
    case PC_MSG_PING:
        on_ping(pkt->payload, pkt->len);
        break;
    case PC_MSG_SET:
        on_set(pkt->payload, pkt->len);
        break;
    default:
        send_error(PC_ERR_UNKNOWN_TYPE, 0, "unexpected message type");
        break;
    }
}

static const char *decode_error_text(int code)
{
    switch (code) {
    case PC_ERR_CRC:
        return "CRC mismatch";
    case PC_ERR_FRAMING:
        return "bad COBS framing";
    case PC_ERR_TOO_LONG:
        return "frame too long";
    case PC_ERR_VERSION:
        return "unsupported protocol version";
    default:
        return "malformed packet";
    }
}

/* Bytes of one camera frame (checked), or 0 when there is no camera, its format is unknown, or
 * its frames are empty or would not fit frame_buf. */
static uint32_t camera_frame_bytes(void)
{
    uint32_t bytes;
    const uint32_t bpp = (uint32_t)pc_pixfmt_bytes(st.cam_format);
    if (bpp == 0 || pc_image_bytes(st.cam_w, st.cam_h, bpp, &bytes) != 0 ||
        bytes > sizeof frame_buf) {
        return 0;
    }
    return bytes;
}

/* Read the camera's format; a camera whose frames camera_frame_bytes refuses is turned off. */
static void camera_setup(void)
{
    st.cam_format = (uint8_t)board_camera_format(&st.cam_w, &st.cam_h);
    if (st.cam_format != BOARD_PIXFMT_NONE && camera_frame_bytes() == 0) {
        st.cam_format = BOARD_PIXFMT_NONE;
        st.cam_w = st.cam_h = 0;
        send_log(PC_LOG_WARNING, "camera frames are over PC_APP_FRAME_MAX_BYTES (or empty, "
                                 "or of an unknown format): camera off");
    }
    if (st.cam_format == BOARD_PIXFMT_NONE) {
        st.cam_w = st.cam_h = 0;
    }
    st.stream = (PC_APP_AUTOSTREAM && st.cam_format != BOARD_PIXFMT_NONE) ? -1 : 0;
}

static void capture_one(void)
{
    const size_t n = board_camera_capture(frame_buf, sizeof frame_buf);
    const uint32_t want = camera_frame_bytes();
    if (want == 0 || n == 0 || n != want) {
        st.stream = 0;
        send_log(PC_LOG_INFO, "camera: no more frames, streaming stopped");
        return;
    }
    st.cam_frames++;
    process(st.cam_frames, PC_SOURCE_CAMERA, frame_buf, st.cam_w, st.cam_h, st.cam_format);
    if (st.stream > 0) {
        st.stream--;
    }
}

/* Bytes from the serial port: decode them, handle every packet, answer every fault. */
static void on_serial(const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pc_packet_t pkt;
        const int r = pc_decoder_put(&decoder, buf[i], &pkt);
        if (r == PC_DEC_PACKET) {
            on_packet(&pkt);
        } else if (r < 0 && !st.text_mode) {
            send_error((uint16_t)-r, 0, decode_error_text(-r));
        }
    }
}

int main(void)
{
    board_init();
    pc_decoder_init(&decoder);
    camera_setup();
#if PC_APP_TEXT_UNTIL_HELLO
    st.text_mode = 1;
    if (st.cam_format != BOARD_PIXFMT_NONE) {
        st.stream = -1;
        static const char banner[] = "patchcam " PC_APP_NAME " on " PC_BOARD_NAME
                                     ": one line per camera frame; the viewer takes over "
                                     "when it connects";
        send_text(banner, sizeof banner - 1);
    } else {
        st.text_mode = 0; /* nothing to show without a camera: the protocol as usual */
        send_hello();
    }
#else
    send_hello();
#endif
    for (;;) {
        uint8_t buf[64];
        const size_t n = board_serial_read(buf, sizeof buf, st.stream != 0 ? 0u
                                                                            : SERIAL_TIMEOUT_US);
        on_serial(buf, n);
        if (st.stream != 0) {
            capture_one();
        }
    }
}
