/* test_pc_proto.c - host test program for firmware/protocol/pc_proto.c (run by
 * tests/test_protocol.py, built with AddressSanitizer + UBSan).
 *
 *   test_pc_proto vectors tests/vectors/protocol.json
 *       decode every vector's wire bytes (all at once and byte by byte), print nothing but
 *       failures, compare with its "decoded" lines; re-encode "roundtrip" vectors
 *   test_pc_proto fuzz N SEED
 *       N random inputs (random bytes, mutated valid frames, random valid-CRC packets), each
 *       followed by a sentinel PING that must decode; prints "fuzz: N inputs ..." at the end
 *   test_pc_proto describe < stream
 *       one protocol.describe() line per decoded item (for differential tests with Python)
 *   test_pc_proto bounds N...
 *       for each N: COBS-encode N non-zero bytes, and pc_encode a payload of N bytes whose
 *       packet has no zero byte where its length field allows, each into a malloc'd buffer of
 *       exactly the documented size (PC_PROTO_COBS_MAX, + 2 delimiters), so AddressSanitizer
 *       catches a write past it; prints "bounds N cobs=BYTES wire=BYTES" lines
 *
 * describe() here mirrors patchcam/host/protocol.py's parse() + describe() exactly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc_proto.h"

#define LINE_MAX_BYTES 8192

/* ---- describe: the C twin of protocol.describe(parse(...)) ---- */

typedef struct {
    char *s;
    size_t cap, len;
} out_t;

static void outf(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void outf(out_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(o->s + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0) {
        o->len += (size_t)n < o->cap - o->len ? (size_t)n : o->cap - o->len - 1;
    }
}

static void out_bytes(out_t *o, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && o->len + 1 < o->cap; i++) {
        o->s[o->len++] = (char)p[i];
    }
    o->s[o->len] = '\0';
}

static int read_str(pc_reader_t *r, const uint8_t **p, size_t *n)
{
    *n = pc_r_u8(r);
    if (r->error || *n > pc_r_left(r)) {
        r->error = 1;
        return -1;
    }
    *p = r->p + r->pos;
    r->pos += *n;
    return 0;
}

static const char *error_line(int code, char *buf)
{
    sprintf(buf, "DECODE_ERROR code=%d", code);
    return buf;
}

/* The describe line of one valid packet, or a DECODE_ERROR line (UNKNOWN_TYPE, MALFORMED). */
static const char *describe(const pc_packet_t *pkt, char *buf, size_t cap)
{
    out_t o = {buf, cap, 0};
    pc_reader_t r;
    buf[0] = '\0';
    pc_r_init(&r, pkt->payload, pkt->len);
    switch (pkt->type) {
    case PC_MSG_HELLO: {
        if (pkt->len == 0) {
            outf(&o, "HELLO_REQUEST");
            return buf;
        }
        const uint8_t proto = pc_r_u8(&r), task = pc_r_u8(&r);
        const uint16_t iw = pc_r_u16(&r), ih = pc_r_u16(&r);
        const uint8_t ic = pc_r_u8(&r), ifmt = pc_r_u8(&r);
        const uint16_t cw = pc_r_u16(&r), ch = pc_r_u16(&r);
        const uint8_t cfmt = pc_r_u8(&r);
        const uint32_t hash = pc_r_u32(&r), arena = pc_r_u32(&r), flash = pc_r_u32(&r),
                       maxf = pc_r_u32(&r), scale = pc_r_u32(&r);
        const int8_t zp = (int8_t)pc_r_u8(&r);
        const uint8_t *s[3];
        size_t sn[3];
        for (int i = 0; i < 3; i++) {
            read_str(&r, &s[i], &sn[i]);
        }
        const uint8_t n = pc_r_u8(&r);
        if (r.error) {
            return error_line(PC_ERR_MALFORMED, buf);
        }
        outf(&o,
             "HELLO protocol=%u task=%u input=%ux%ux%u input_format=%u camera=%ux%u "
             "camera_format=%u model_hash=0x%08lx arena=%lu flash=%lu max_frame=%lu "
             "output_scale=0x%08lx output_zero_point=%d",
             proto, task, iw, ih, ic, ifmt, cw, ch, cfmt, (unsigned long)hash,
             (unsigned long)arena, (unsigned long)flash, (unsigned long)maxf,
             (unsigned long)scale, zp);
        static const char *const names[3] = {"board", "app", "model"};
        for (int i = 0; i < 3; i++) {
            outf(&o, " %s=", names[i]);
            out_bytes(&o, s[i], sn[i]);
        }
        outf(&o, " classes=");
        for (unsigned i = 0; i < n; i++) {
            const uint8_t *c;
            size_t cn;
            if (read_str(&r, &c, &cn) != 0) {
                return error_line(PC_ERR_MALFORMED, buf);
            }
            if (i > 0) {
                outf(&o, ",");
            }
            out_bytes(&o, c, cn);
        }
        if (pc_r_left(&r) != 0) {
            return error_line(PC_ERR_MALFORMED, buf);
        }
        return buf;
    }
    case PC_MSG_FRAME:
    case PC_MSG_PREVIEW: {
        const uint32_t id = pc_r_u32(&r);
        const uint16_t w = pc_r_u16(&r), h = pc_r_u16(&r);
        const uint8_t fmt = pc_r_u8(&r);
        (void)pc_r_u8(&r);
        const uint32_t off = pc_r_u32(&r);
        size_t n;
        const uint8_t *data = pc_r_rest(&r, &n);
        if (r.error || n == 0) {
            return error_line(PC_ERR_MALFORMED, buf);
        }
        outf(&o, "%s id=%lu size=%ux%u format=%u offset=%lu len=%lu crc=0x%08lx",
             pkt->type == PC_MSG_FRAME ? "FRAME" : "PREVIEW", (unsigned long)id, w, h, fmt,
             (unsigned long)off, (unsigned long)n, (unsigned long)pc_crc32(0, data, n));
        return buf;
    }
    case PC_MSG_RESULT: {
        const uint32_t id = pc_r_u32(&r), lat = pc_r_u32(&r), tot = pc_r_u32(&r);
        const uint8_t src = pc_r_u8(&r), task = pc_r_u8(&r), n = pc_r_u8(&r);
        if (r.error || task > PC_TASK_DETECT) {
            return error_line(PC_ERR_MALFORMED, buf);
        }
        outf(&o, "RESULT id=%lu latency=%lu total=%lu source=%u task=%u n=%u items=",
             (unsigned long)id, (unsigned long)lat, (unsigned long)tot, src, task, n);
        for (unsigned i = 0; i < n; i++) {
            if (task == PC_TASK_CLASSIFY) {
                const int8_t v = (int8_t)pc_r_u8(&r);
                outf(&o, i ? ",%d" : "%d", v);
            } else {
                const uint16_t x0 = pc_r_u16(&r), y0 = pc_r_u16(&r), x1 = pc_r_u16(&r),
                               y1 = pc_r_u16(&r);
                const uint8_t c = pc_r_u8(&r);
                const int8_t sc = (int8_t)pc_r_u8(&r);
                outf(&o, "%s%u,%u,%u,%u,%u,%d", i ? ";" : "", x0, y0, x1, y1, c, sc);
            }
        }
        if (r.error || pc_r_left(&r) != 0) {
            return error_line(PC_ERR_MALFORMED, buf);
        }
        return buf;
    }
    case PC_MSG_LOG: {
        const uint8_t level = pc_r_u8(&r);
        size_t n;
        const uint8_t *t = pc_r_rest(&r, &n);
        if (r.error) {
            return error_line(PC_ERR_MALFORMED, buf);
        }
        outf(&o, "LOG level=%u text=", level);
        out_bytes(&o, t, n);
        return buf;
    }
    case PC_MSG_ERROR: {
        const uint16_t code = pc_r_u16(&r);
        const uint32_t id = pc_r_u32(&r);
        size_t n;
        const uint8_t *t = pc_r_rest(&r, &n);
        if (r.error) {
            return error_line(PC_ERR_MALFORMED, buf);
        }
        outf(&o, "ERROR code=%u id=%lu text=", code, (unsigned long)id);
        out_bytes(&o, t, n);
        return buf;
    }
    case PC_MSG_PING: {
        const uint32_t token = pc_r_u32(&r);
        if (r.error || pc_r_left(&r) != 0) {
            return error_line(PC_ERR_MALFORMED, buf);
        }
        outf(&o, "PING token=%lu", (unsigned long)token);
        return buf;
    }
    case PC_MSG_PONG: {
        const uint32_t a = pc_r_u32(&r), b = pc_r_u32(&r), c = pc_r_u32(&r), d = pc_r_u32(&r);
        if (r.error || pc_r_left(&r) != 0) {
            return error_line(PC_ERR_MALFORMED, buf);
        }
        outf(&o, "PONG token=%lu uptime=%lu frames=%lu errors=%lu", (unsigned long)a,
             (unsigned long)b, (unsigned long)c, (unsigned long)d);
        return buf;
    }
    case PC_MSG_SET: {
        const uint8_t key = pc_r_u8(&r);
        const int32_t value = (int32_t)pc_r_u32(&r);
        if (r.error || pc_r_left(&r) != 0) {
            return error_line(PC_ERR_MALFORMED, buf);
        }
        outf(&o, "SET key=%u value=%ld", key, (long)value);
        return buf;
    }
    default:
        return error_line(PC_ERR_UNKNOWN_TYPE, buf);
    }
}

/* Feed bytes; call on_line for every decoded item. */
typedef void (*line_fn)(const char *line, void *ctx);

static void feed(pc_decoder_t *d, const uint8_t *p, size_t n, line_fn fn, void *ctx)
{
    static char line[LINE_MAX_BYTES];
    for (size_t i = 0; i < n; i++) {
        pc_packet_t pkt;
        const int r = pc_decoder_put(d, p[i], &pkt);
        if (r == PC_DEC_PACKET) {
            fn(describe(&pkt, line, sizeof line), ctx);
        } else if (r < 0) {
            fn(error_line(-r, line), ctx);
        }
    }
}

/* ---- a tiny reader for our own vector file (json.dumps output, ASCII strings) ---- */

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1); /* test program: malloc is fine here */
    if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    buf[size] = '\0';
    fclose(f);
    *n = (size_t)size;
    return buf;
}

/* Parse a JSON string at *p (pointing at the opening quote) into out; advance *p. */
static size_t json_string(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    size_t n = 0;
    if (*s != '"') {
        fprintf(stderr, "vector file: expected a string at ...%.20s\n", s);
        exit(2);
    }
    s++;
    while (*s != '"' && *s != '\0') {
        char c = *s++;
        if (c == '\\') {
            c = *s++;
            if (c == 'n') {
                c = '\n';
            } else if (c == 't') {
                c = '\t';
            } else if (c == 'u') {
                c = (char)strtol((char[5]){s[0], s[1], s[2], s[3], 0}, NULL, 16);
                s += 4;
            }
        }
        if (n + 1 < cap) {
            out[n++] = c;
        }
    }
    out[n] = '\0';
    *p = s + 1;
    return n;
}

static const char *after_key(const char *p, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *k = strstr(p, pat);
    if (k == NULL) {
        return NULL;
    }
    k += strlen(pat);
    while (*k == ' ' || *k == '\n') {
        k++;
    }
    return k;
}

typedef struct {
    char (*lines)[LINE_MAX_BYTES];
    size_t n, cap;
} lines_t;

static void collect(const char *line, void *ctx)
{
    lines_t *l = ctx;
    if (l->n < l->cap) {
        strncpy(l->lines[l->n], line, LINE_MAX_BYTES - 1);
        l->lines[l->n][LINE_MAX_BYTES - 1] = '\0';
    }
    l->n++;
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

#define MAX_ITEMS 16
static char want[MAX_ITEMS][LINE_MAX_BYTES];
static char got[MAX_ITEMS][LINE_MAX_BYTES];
static char text[1 << 16];
static uint8_t wire_bytes[1 << 15];

static int run_vectors(const char *path)
{
    size_t size;
    char *doc = slurp(path, &size);
    const char *p = doc;
    int vectors = 0, failures = 0;
    while ((p = after_key(p, "name")) != NULL) {
        char name[128];
        json_string(&p, name, sizeof name);
        p = after_key(p, "wire");
        const size_t hex = json_string(&p, text, sizeof text);
        const size_t n = hex / 2;
        for (size_t i = 0; i < n; i++) {
            wire_bytes[i] = (uint8_t)(hexval(text[2 * i]) << 4 | hexval(text[2 * i + 1]));
        }
        p = after_key(p, "decoded");
        size_t n_want = 0;
        p = strchr(p, '[') + 1;
        while (*p == ' ' || *p == '\n') {
            p++;
        }
        while (*p == '"') {
            json_string(&p, want[n_want < MAX_ITEMS ? n_want : MAX_ITEMS - 1], LINE_MAX_BYTES);
            n_want++;
            while (*p == ',' || *p == ' ' || *p == '\n') {
                p++;
            }
        }
        p = after_key(p, "roundtrip");
        const int roundtrip = strncmp(p, "true", 4) == 0;
        vectors++;

        /* all at once, then again with a fresh decoder byte by byte (same thing for a
         * byte-wise decoder, but it also proves no state leaks between vectors) */
        for (int pass = 0; pass < 2; pass++) {
            pc_decoder_t d;
            pc_decoder_init(&d);
            lines_t l = {got, 0, MAX_ITEMS};
            if (pass == 0) {
                feed(&d, wire_bytes, n, collect, &l);
            } else {
                for (size_t i = 0; i < n; i++) {
                    feed(&d, wire_bytes + i, 1, collect, &l);
                }
            }
            int ok = l.n == n_want;
            for (size_t i = 0; ok && i < n_want; i++) {
                ok = strcmp(got[i], want[i]) == 0;
            }
            if (!ok) {
                failures++;
                fprintf(stderr, "FAIL %s: %zu items, want %zu\n", name, l.n, n_want);
                for (size_t i = 0; i < l.n && i < MAX_ITEMS; i++) {
                    fprintf(stderr, "  got:  %.300s\n", got[i]);
                }
                for (size_t i = 0; i < n_want; i++) {
                    fprintf(stderr, "  want: %.300s\n", want[i]);
                }
                break;
            }
        }
        if (roundtrip) {
            /* re-encode the one message from its type and payload: must give the same bytes */
            pc_decoder_t d;
            pc_decoder_init(&d);
            pc_packet_t pkt = {0, NULL, 0};
            for (size_t i = 0; i < n; i++) {
                if (pc_decoder_put(&d, wire_bytes[i], &pkt) == PC_DEC_PACKET) {
                    break;
                }
            }
            static uint8_t payload[PC_PROTO_MAX_PAYLOAD];
            static uint8_t again[PC_PROTO_MAX_WIRE];
            memcpy(payload, pkt.payload, pkt.len);
            const size_t m = pc_encode(pkt.type, payload, pkt.len, again, sizeof again);
            if (m != n || memcmp(again, wire_bytes, n) != 0) {
                failures++;
                fprintf(stderr, "FAIL %s: re-encoding gives different bytes\n", name);
            }
        }
    }
    free(doc);
    printf("vectors: %d checked, %d failed\n", vectors, failures);
    return failures == 0 && vectors > 0 ? 0 : 1;
}

/* ---- fuzz ---- */

static uint64_t rng_state;

static uint32_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

static void count_line(const char *line, void *ctx)
{
    (void)line;
    (*(size_t *)ctx)++;
}

typedef struct {
    uint32_t token;
    int seen; /* the sentinel was the last item */
    size_t items;
} sentinel_t;

static void check_sentinel(const char *line, void *ctx)
{
    sentinel_t *s = ctx;
    char want_line[64];
    snprintf(want_line, sizeof want_line, "PING token=%lu", (unsigned long)s->token);
    s->seen = strcmp(line, want_line) == 0;
    s->items++;
}

static size_t random_packet_wire(uint8_t *out, size_t cap)
{
    static uint8_t payload[PC_PROTO_MAX_PAYLOAD];
    const size_t len = rnd() % 3 == 0 ? rnd() % (PC_PROTO_MAX_PAYLOAD + 1) : rnd() % 40;
    for (size_t i = 0; i < len; i++) {
        payload[i] = rnd() % 4 == 0 ? 0 : (uint8_t)rnd();
    }
    return pc_encode((uint8_t)(rnd() % 12), payload, len, out, cap);
}

static int run_fuzz(long n, unsigned long seed)
{
    static uint8_t input[4 * PC_PROTO_MAX_WIRE];
    static uint8_t sentinel[PC_PROTO_MAX_WIRE];
    pc_decoder_t d;
    size_t items = 0, packets_before = 0;
    long kinds[4] = {0, 0, 0, 0};
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    pc_decoder_init(&d);
    for (long it = 0; it < n; it++) {
        size_t len = 0;
        const int kind = (int)(rnd() % 4);
        kinds[kind]++;
        if (kind == 0) { /* random bytes, random zero density */
            len = rnd() % (sizeof input);
            const uint32_t zero_every = 1 + rnd() % 300;
            for (size_t i = 0; i < len; i++) {
                input[i] = rnd() % zero_every == 0 ? 0 : (uint8_t)rnd();
            }
        } else { /* one to three random packets, then mutations */
            const int count = 1 + (int)(rnd() % 3);
            for (int k = 0; k < count; k++) {
                len += random_packet_wire(input + len, sizeof input - len);
            }
            const int mutations = kind == 1 ? 0 : (int)(rnd() % 6);
            for (int m = 0; m < mutations && len > 0; m++) {
                const size_t at = rnd() % len;
                switch (rnd() % 4) {
                case 0: /* flip a bit */
                    input[at] ^= (uint8_t)(1u << (rnd() % 8));
                    break;
                case 1: /* drop a byte */
                    memmove(input + at, input + at + 1, len - at - 1);
                    len--;
                    break;
                case 2: /* insert a byte */
                    if (len < sizeof input) {
                        memmove(input + at + 1, input + at, len - at);
                        input[at] = (uint8_t)rnd();
                        len++;
                    }
                    break;
                default: /* truncate (a reset mid-frame) */
                    len = at;
                    break;
                }
            }
        }
        feed(&d, input, len, count_line, &items);
        /* Whatever came before, the next valid message must decode. */
        static uint8_t ping[4];
        const uint32_t token = (uint32_t)it;
        for (int i = 0; i < 4; i++) {
            ping[i] = (uint8_t)(token >> (8 * i));
        }
        const size_t sn = pc_encode(PC_MSG_PING, ping, 4, sentinel, sizeof sentinel);
        sentinel_t s = {token, 0, 0};
        feed(&d, sentinel, sn, check_sentinel, &s);
        if (!s.seen) {
            fprintf(stderr, "fuzz: input %ld (kind %d, %zu bytes): the sentinel PING after it "
                            "did not decode\n", it, kind, len);
            return 1;
        }
        packets_before += s.items - 1;
        items += s.items;
    }
    printf("fuzz: %ld inputs (random bytes %ld, valid packets %ld, mutated packets %ld), "
           "%zu items decoded, every sentinel PING after them decoded\n",
           n, kinds[0], kinds[1], kinds[2] + kinds[3], items);
    (void)packets_before;
    return 0;
}

/* ---- bounds: the documented worst case sizes are enough ---- */

static int run_bounds(int argc, char **argv)
{
    int failures = 0;
    for (int a = 0; a < argc; a++) {
        const size_t n = (size_t)strtoul(argv[a], NULL, 10);
        /* pc_cobs_encode: n non-zero bytes, the worst case. */
        uint8_t *in = malloc(n + 1);
        uint8_t *enc = malloc(PC_PROTO_COBS_MAX(n));
        uint8_t *dec = malloc(n + 1);
        if (in == NULL || enc == NULL || dec == NULL) {
            return 2;
        }
        for (size_t i = 0; i < n; i++) {
            in[i] = (uint8_t)(1 + i % 255);
        }
        const size_t m = pc_cobs_encode(in, n, enc);
        const long back = pc_cobs_decode(enc, m, dec);
        if (m != PC_PROTO_COBS_MAX(n) || back != (long)n || memcmp(in, dec, n) != 0) {
            printf("bounds %zu: cobs wrote %zu (PC_PROTO_COBS_MAX %zu), decoded %ld\n", n, m,
                   (size_t)PC_PROTO_COBS_MAX(n), back);
            failures++;
        }
        size_t wire_n = 0;
        if (n <= PC_PROTO_MAX_PAYLOAD) {
            /* pc_encode into exactly PC_PROTO_COBS_MAX(packet) + 2 bytes; vary the payload until
             * the CRC has no zero byte (the length field has one when n < 256 or n % 256 == 0). */
            const size_t packet = n + PC_PROTO_HEADER_BYTES + PC_PROTO_CRC_BYTES;
            const size_t cap = PC_PROTO_COBS_MAX(packet) + 2;
            uint8_t *wire_buf = malloc(cap);
            if (wire_buf == NULL) {
                return 2;
            }
            for (uint8_t salt = 1; salt < 255; salt++) {
                if (n > 0) {
                    in[0] = salt;
                }
                uint8_t pkt[PC_PROTO_HEADER_BYTES] = {PC_PROTO_VERSION, PC_MSG_LOG, (uint8_t)n,
                                                      (uint8_t)(n >> 8)};
                const uint32_t crc = pc_crc32(pc_crc32(0, pkt, sizeof pkt), in, n);
                if ((crc & 0xFFu) && (crc & 0xFF00u) && (crc & 0xFF0000u) && (crc >> 24)) {
                    break;
                }
            }
            wire_n = pc_encode(PC_MSG_LOG, in, n, wire_buf, cap);
            pc_decoder_t d;
            pc_packet_t pkt;
            int r = PC_DEC_MORE;
            pc_decoder_init(&d);
            for (size_t i = 0; i < wire_n && r == PC_DEC_MORE; i++) {
                r = pc_decoder_put(&d, wire_buf[i], &pkt);
            }
            const int zero_free = n >= 256 && n % 256 != 0;
            if (wire_n == 0 || (zero_free && wire_n != cap) || r != PC_DEC_PACKET ||
                pkt.len != n || memcmp(pkt.payload, in, n) != 0 ||
                pc_encode(PC_MSG_LOG, in, n, wire_buf, cap - 1) != 0) {
                printf("bounds %zu: pc_encode wrote %zu of %zu, decoded %d\n", n, wire_n, cap, r);
                failures++;
            }
            free(wire_buf);
        }
        printf("bounds %zu cobs=%zu wire=%zu\n", n, m, wire_n);
        free(in);
        free(enc);
        free(dec);
    }
    return failures == 0 ? 0 : 1;
}

static void print_line(const char *line, void *ctx)
{
    (void)ctx;
    puts(line);
}

static int run_describe(void)
{
    static uint8_t buf[4096];
    pc_decoder_t d;
    size_t n;
    pc_decoder_init(&d);
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        feed(&d, buf, n, print_line, NULL);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "vectors") == 0) {
        return run_vectors(argv[2]);
    }
    if (argc == 4 && strcmp(argv[1], "fuzz") == 0) {
        return run_fuzz(strtol(argv[2], NULL, 10), strtoul(argv[3], NULL, 10));
    }
    if (argc == 2 && strcmp(argv[1], "describe") == 0) {
        return run_describe();
    }
    if (argc >= 3 && strcmp(argv[1], "bounds") == 0) {
        return run_bounds(argc - 2, argv + 2);
    }
    fprintf(stderr, "usage: %s vectors FILE | fuzz N SEED | describe < stream | bounds N...\n",
            argv[0]);
    return 2;
}
