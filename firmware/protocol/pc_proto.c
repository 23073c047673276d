/* pc_proto.c - see pc_proto.h and docs/protocol.md. */
#include "pc_proto.h"

#include <string.h>

uint32_t pc_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    /* Half-byte table: 64 bytes of flash, two lookups per byte. */
    static const uint32_t table[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
        0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
        0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
    };
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ table[crc & 0xFu];
        crc = (crc >> 4) ^ table[crc & 0xFu];
    }
    return ~crc;
}

size_t pc_cobs_encode(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t code_at = 0, o = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        } else {
            out[o++] = in[i];
            if (++code == 0xFF) {
                out[code_at] = code;
                code_at = o++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    return o;
}

long pc_cobs_decode(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t i = 0, o = 0;
    while (i < len) {
        const uint8_t code = in[i];
        if (code == 0 || (size_t)code > len - i) {
            return -1;
        }
        i++;
        for (uint8_t k = 1; k < code; k++) {
            const uint8_t b = in[i++];
            if (b == 0) {
                return -1;
            }
            out[o++] = b; /* o < i always: decoding in place is safe */
        }
        if (code < 0xFF && i < len) {
            out[o++] = 0;
        }
    }
    return (long)o;
}

size_t pc_encode(uint8_t type, const uint8_t *payload, size_t payload_len, uint8_t *out,
                 size_t cap)
{
    uint8_t pkt[PC_PROTO_MAX_PACKET];
    if (payload_len > PC_PROTO_MAX_PAYLOAD ||
        cap < PC_PROTO_COBS_MAX(payload_len + PC_PROTO_HEADER_BYTES + PC_PROTO_CRC_BYTES) + 2) {
        return 0;
    }
    pkt[0] = PC_PROTO_VERSION;
    pkt[1] = type;
    pkt[2] = (uint8_t)(payload_len & 0xFFu);
    pkt[3] = (uint8_t)(payload_len >> 8);
    if (payload_len > 0) {
        memcpy(pkt + PC_PROTO_HEADER_BYTES, payload, payload_len);
    }
    const size_t body = PC_PROTO_HEADER_BYTES + payload_len;
    const uint32_t crc = pc_crc32(0, pkt, body);
    for (int i = 0; i < 4; i++) {
        pkt[body + (size_t)i] = (uint8_t)(crc >> (8 * i));
    }
    out[0] = 0;
    const size_t n = pc_cobs_encode(pkt, body + PC_PROTO_CRC_BYTES, out + 1);
    out[n + 1] = 0;
    return n + 2;
}

void pc_decoder_init(pc_decoder_t *d)
{
    d->len = 0;
    d->overflow = 0;
}

static int finish_frame(pc_decoder_t *d, pc_packet_t *pkt)
{
    const long n = pc_cobs_decode(d->buf, d->len, d->buf);
    d->len = 0;
    if (n < 0 || n < PC_PROTO_HEADER_BYTES + PC_PROTO_CRC_BYTES) {
        return -PC_ERR_FRAMING;
    }
    const size_t body = (size_t)n - PC_PROTO_CRC_BYTES;
    const uint8_t *c = d->buf + body;
    const uint32_t crc = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 |
                         (uint32_t)c[3] << 24;
    if (pc_crc32(0, d->buf, body) != crc) {
        return -PC_ERR_CRC;
    }
    if (d->buf[0] != PC_PROTO_VERSION) {
        return -PC_ERR_VERSION;
    }
    const size_t length = (size_t)d->buf[2] | (size_t)d->buf[3] << 8;
    if (length != body - PC_PROTO_HEADER_BYTES || length > PC_PROTO_MAX_PAYLOAD) {
        return -PC_ERR_MALFORMED;
    }
    pkt->type = d->buf[1];
    pkt->payload = d->buf + PC_PROTO_HEADER_BYTES;
    pkt->len = length;
    return PC_DEC_PACKET;
}

int pc_decoder_put(pc_decoder_t *d, uint8_t byte, pc_packet_t *pkt)
{
    if (byte == 0) {
        if (d->overflow) {
            d->overflow = 0;
            return PC_DEC_MORE;
        }
        if (d->len == 0) {
            return PC_DEC_MORE; /* empty frame: the leading delimiter */
        }
        return finish_frame(d, pkt);
    }
    if (d->overflow) {
        return PC_DEC_MORE;
    }
    if (d->len == sizeof d->buf) {
        d->overflow = 1;
        d->len = 0;
        return -PC_ERR_TOO_LONG;
    }
    d->buf[d->len++] = byte;
    return PC_DEC_MORE;
}

void pc_w_init(pc_writer_t *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = 0;
}

void pc_w_bytes(pc_writer_t *w, const void *p, size_t n)
{
    if (n > w->cap - w->len) {
        w->overflow = 1;
        return;
    }
    if (n > 0) {
        memcpy(w->buf + w->len, p, n);
    }
    w->len += n;
}

void pc_w_u8(pc_writer_t *w, uint8_t v)
{
    pc_w_bytes(w, &v, 1);
}

void pc_w_u16(pc_writer_t *w, uint16_t v)
{
    const uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    pc_w_bytes(w, b, 2);
}

void pc_w_u32(pc_writer_t *w, uint32_t v)
{
    const uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    pc_w_bytes(w, b, 4);
}

void pc_w_f32(pc_writer_t *w, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    pc_w_u32(w, u);
}

void pc_w_str(pc_writer_t *w, const char *s)
{
    size_t n = strlen(s);
    n = n > 255 ? 255 : n;
    pc_w_u8(w, (uint8_t)n);
    pc_w_bytes(w, s, n);
}

void pc_w_text(pc_writer_t *w, const char *s)
{
    size_t n = strlen(s);
    const size_t room = w->cap - w->len;
    pc_w_bytes(w, s, n < room ? n : room);
}

void pc_r_init(pc_reader_t *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->pos = 0;
    r->error = 0;
}

static const uint8_t *take(pc_reader_t *r, size_t n)
{
    if (r->error || n > r->len - r->pos) {
        r->error = 1;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

uint8_t pc_r_u8(pc_reader_t *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}

uint16_t pc_r_u16(pc_reader_t *r)
{
    const uint8_t *p = take(r, 2);
    return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

uint32_t pc_r_u32(pc_reader_t *r)
{
    const uint8_t *p = take(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                   (uint32_t)p[3] << 24
             : 0;
}

float pc_r_f32(pc_reader_t *r)
{
    const uint32_t u = pc_r_u32(r);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

size_t pc_r_left(const pc_reader_t *r)
{
    return r->error ? 0 : r->len - r->pos;
}

const uint8_t *pc_r_rest(pc_reader_t *r, size_t *n)
{
    *n = pc_r_left(r);
    const uint8_t *p = r->p + r->pos;
    r->pos = r->len;
    return p;
}
