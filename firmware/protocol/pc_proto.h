/* pc_proto.h - the patchcam wire protocol in C99 (spec: docs/protocol.md; Python twin:
 * patchcam/host/protocol.py; shared test vectors: tests/vectors/protocol.json).
 *
 * Usage (board side):
 *
 *     static pc_decoder_t dec;                 // ~1 kB, no malloc anywhere
 *     pc_decoder_init(&dec);
 *     for each received byte b:
 *         pc_packet_t pkt;
 *         int r = pc_decoder_put(&dec, b, &pkt);
 *         if (r == PC_DEC_PACKET) handle(pkt.type, pkt.payload, pkt.len);  // valid until next put
 *         else if (r < 0) reply ERROR with code -r;                         // and carry on
 *
 *     uint8_t wire[PC_PROTO_MAX_WIRE];
 *     size_t n = pc_encode(PC_MSG_PONG, payload, payload_len, wire, sizeof wire);
 *
 * A packet is  version u8 | type u8 | length u16 LE | payload | CRC-32 LE  (CRC over all before
 * it); on the wire it is COBS-encoded between two 0x00 delimiters. Payloads are built with
 * pc_writer_t and read with pc_reader_t (little endian, bounds-checked, sticky error flag).
 */
#ifndef PATCHCAM_PC_PROTO_H
#define PATCHCAM_PC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PC_PROTO_VERSION 1
#define PC_PROTO_HEADER_BYTES 4
#define PC_PROTO_CRC_BYTES 4
#define PC_PROTO_MAX_PAYLOAD 1024
#define PC_PROTO_MAX_PACKET (PC_PROTO_HEADER_BYTES + PC_PROTO_MAX_PAYLOAD + PC_PROTO_CRC_BYTES)
/* COBS worst case (no zero bytes in the input): one code byte per full run of 254 bytes, plus
 * the code byte of the last, possibly empty, run -- n + floor(n / 254) + 1 (pc_cobs_encode of
 * 254 non-zero bytes writes 256). The wire adds the two delimiters (PC_PROTO_MAX_WIRE). */
#define PC_PROTO_COBS_MAX(n) ((n) + (n) / 254 + 1)
#define PC_PROTO_MAX_ENCODED PC_PROTO_COBS_MAX(PC_PROTO_MAX_PACKET)
#define PC_PROTO_MAX_WIRE (PC_PROTO_MAX_ENCODED + 2) /* with both delimiters */
/* FRAME / PREVIEW chunk: frame_id u32, width u16, height u16, format u8, reserved u8,
 * offset u32, then data. */
#define PC_PROTO_CHUNK_HEADER_BYTES 14
#define PC_PROTO_MAX_CHUNK_DATA (PC_PROTO_MAX_PAYLOAD - PC_PROTO_CHUNK_HEADER_BYTES)

/* Message types (append only). */
enum {
    PC_MSG_HELLO = 0x01,
    PC_MSG_FRAME = 0x02,
    PC_MSG_RESULT = 0x03,
    PC_MSG_PREVIEW = 0x04,
    PC_MSG_LOG = 0x05,
    PC_MSG_ERROR = 0x06,
    PC_MSG_PING = 0x07,
    PC_MSG_PONG = 0x08,
    PC_MSG_SET = 0x09
};

/* ERROR codes (append only). */
enum {
    PC_ERR_CRC = 1,
    PC_ERR_FRAMING = 2,
    PC_ERR_TOO_LONG = 3,
    PC_ERR_VERSION = 4,
    PC_ERR_UNKNOWN_TYPE = 5,
    PC_ERR_MALFORMED = 6,
    PC_ERR_BAD_FORMAT = 7,
    PC_ERR_BAD_SIZE = 8,
    PC_ERR_SEQUENCE = 9,
    PC_ERR_BAD_SETTING = 10,
    PC_ERR_NO_CAMERA = 11
};

/* SET keys (append only). */
enum {
    PC_SET_SCORE_Q = 1,
    PC_SET_NMS_IOU_Q10 = 2,
    PC_SET_MAX_DETECTIONS = 3,
    PC_SET_PREVIEW = 4,
    PC_SET_STREAM = 5
};

/* Tasks are macros: app_config.h's PC_APP_TASK picks code with #if. */
#define PC_TASK_CLASSIFY 0
#define PC_TASK_DETECT 1
enum { PC_SOURCE_FRAME = 0, PC_SOURCE_CAMERA = 1 };
enum { PC_LOG_DEBUG = 0, PC_LOG_INFO = 1, PC_LOG_WARNING = 2, PC_LOG_ERROR = 3 };

/* ---- checksum and byte stuffing ---- */

/* CRC-32/ISO-HDLC (zlib's crc32): start with crc = 0, chain calls over pieces. */
uint32_t pc_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* COBS-encode len bytes into out (room for PC_PROTO_COBS_MAX(len)); returns bytes written.
 * in and out must not overlap. */
size_t pc_cobs_encode(const uint8_t *in, size_t len, uint8_t *out);

/* COBS-decode len bytes (no delimiters); out may equal in (decodes in place). Returns the
 * decoded length, or -1 for invalid input (a zero byte, or a code past the end). */
long pc_cobs_decode(const uint8_t *in, size_t len, uint8_t *out);

/* ---- packets ---- */

/* The wire bytes of one message (00 | COBS(packet) | 00) into out; returns their number, or
 * 0 when payload_len > PC_PROTO_MAX_PAYLOAD or cap is too small (PC_PROTO_MAX_WIRE always is
 * enough). */
size_t pc_encode(uint8_t type, const uint8_t *payload, size_t payload_len, uint8_t *out,
                 size_t cap);

typedef struct {
    uint8_t type;
    const uint8_t *payload; /* inside the decoder: valid until the next pc_decoder_put */
    size_t len;
} pc_packet_t;

typedef struct {
    uint8_t buf[PC_PROTO_MAX_ENCODED];
    size_t len;
    int overflow; /* dropping bytes up to the next delimiter */
} pc_decoder_t;

#define PC_DEC_MORE 0   /* nothing yet */
#define PC_DEC_PACKET 1 /* *pkt holds a valid packet */
/* negative: -PC_ERR_xxx, a frame was dropped (CRC, FRAMING, TOO_LONG, VERSION, MALFORMED) */

void pc_decoder_init(pc_decoder_t *d);
int pc_decoder_put(pc_decoder_t *d, uint8_t byte, pc_packet_t *pkt);

/* ---- payload building and parsing (little endian) ---- */

typedef struct {
    uint8_t *buf;
    size_t cap, len;
    int overflow; /* set when a put did not fit; the payload is then invalid */
} pc_writer_t;

void pc_w_init(pc_writer_t *w, uint8_t *buf, size_t cap);
void pc_w_u8(pc_writer_t *w, uint8_t v);
void pc_w_u16(pc_writer_t *w, uint16_t v);
void pc_w_u32(pc_writer_t *w, uint32_t v);
void pc_w_f32(pc_writer_t *w, float v);
void pc_w_bytes(pc_writer_t *w, const void *p, size_t n);
void pc_w_str(pc_writer_t *w, const char *s); /* u8 length + bytes (cut at 255) */
void pc_w_text(pc_writer_t *w, const char *s); /* bytes only, cut to what fits */

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    int error; /* set when a get ran past the end; values read then are 0 */
} pc_reader_t;

void pc_r_init(pc_reader_t *r, const uint8_t *p, size_t len);
uint8_t pc_r_u8(pc_reader_t *r);
uint16_t pc_r_u16(pc_reader_t *r);
uint32_t pc_r_u32(pc_reader_t *r);
float pc_r_f32(pc_reader_t *r);
/* Bytes left; pc_r_rest returns a pointer to them and consumes them. */
size_t pc_r_left(const pc_reader_t *r);
const uint8_t *pc_r_rest(pc_reader_t *r, size_t *n);

#endif /* PATCHCAM_PC_PROTO_H */
