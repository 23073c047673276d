/* fake_cam_bus.c - see fake_cam_bus.h.
 *
 * Log grammar (hex without 0x, one transaction per line):
 *   spi W <reg> <val>                  ArduCHIP register write
 *   spi R <reg> <val>                  ArduCHIP register read (0x3D: one FIFO byte)
 *   spi BURST <len>                    burst FIFO read, len bytes including the command byte
 *   spi BAD <len> <byte0>              anything else
 *   i2c W <addr> <bank> <reg> <val>    register write (bank 0/1 for OV2640, - for OV7675)
 *   i2c P <addr> <reg>                 register pointer set (first half of a read)
 *   i2c R <addr> <bank> <reg> <val>    register read
 *   i2c NACK <addr>                    no device there, or a malformed transaction
 *   delay <ms>
 *   frame <bytes>                      read_frame
 */
#include "fake_cam_bus.h"

#include <string.h>

#define OV2640_ADDR 0x30u
#define OV7675_ADDR 0x21u

static void ov2640_reset(fake_cam_t *f)
{
    memset(f->ov2640, 0, sizeof f->ov2640);
    f->ov2640[1][0x0A] = f->pid[0];
    f->ov2640[1][0x0B] = f->pid[1];
    f->ov2640_sel = 0x00;
}

static void ov7675_reset(fake_cam_t *f)
{
    memset(f->ov7675, 0, sizeof f->ov7675);
    f->ov7675[0x0A] = f->pid[0];
    f->ov7675[0x0B] = f->pid[1];
}

void fake_cam_init(fake_cam_t *f, FILE *log)
{
    memset(f, 0, sizeof *f);
    f->log = log;
    f->capture_ms = 40;
    f->pid[0] = 0x26;
    f->pid[1] = 0x42;
    ov2640_reset(f);
    ov7675_reset(f);
    /* power-on garbage in the sensor, which the driver's reset must clear */
    f->ov2640[0][0xDA] = 0x10;
    f->ov7675[0x12] = 0x14;
}

/* ---- ArduCHIP ---- */

/* Does the OV2640 register state produce f->frame? RGB565 on the DVP, DSP in the path and not
 * held in reset, output size from ZMOW / ZMOH (x4, high bits in ZMHH). */
static int ov2640_produces_frame(const fake_cam_t *f)
{
    const uint8_t *dsp = f->ov2640[0];
    const unsigned w = ((unsigned)dsp[0x5A] | (unsigned)(dsp[0x5C] & 0x03u) << 8) * 4u;
    const unsigned h = ((unsigned)dsp[0x5B] | (unsigned)(dsp[0x5C] & 0x04u) << 6) * 4u;
    return f->frame_fmt == FAKE_FRAME_RGB565_BE && (dsp[0xDA] & 0x0Cu) == 0x08u &&
           (dsp[0xDA] & 0x01u) == 0 && dsp[0x05] == 0 && dsp[0xE0] == 0 && w == f->frame_w &&
           h == f->frame_h;
}

static void achip_poll(fake_cam_t *f)
{
    if (f->capturing && !f->never_done && f->now_ms - f->capture_start >= f->capture_ms) {
        f->capturing = 0;
        f->achip[0x41] |= 0x08;
        f->fifo_valid = f->ov2640_present && ov2640_produces_frame(f);
        f->fifo_len = f->fifo_valid ? f->frame_len + f->fifo_extra : 0;
    }
}

static uint8_t fifo_byte(fake_cam_t *f)
{
    const size_t i = f->rptr++;
    return f->fifo_valid && i < f->frame_len ? f->frame[i] : 0x00;
}

static void achip_write(fake_cam_t *f, uint8_t reg, uint8_t val)
{
    if (reg == 0x07) {
        if (val & 0x80) {
            memset(f->achip, 0, sizeof f->achip);
            f->capturing = 0;
            f->fifo_len = f->rptr = 0;
        }
        return;
    }
    if (reg == 0x04) {
        if (val & 0x01) {
            f->achip[0x41] &= (uint8_t)~0x08u;
        }
        if (val & 0x10) {
            f->rptr = 0;
        }
        if (val & 0x20) {
            f->fifo_len = 0;
            f->fifo_valid = 0;
        }
        if (val & 0x02) {
            f->capturing = 1;
            f->capture_start = f->now_ms;
        }
        return;
    }
    f->achip[reg] = val;
}

static uint8_t achip_read(fake_cam_t *f, uint8_t reg)
{
    achip_poll(f);
    switch (reg) {
    case 0x3D:
        return fifo_byte(f);
    case 0x42:
        return (uint8_t)(f->fifo_len & 0xFF);
    case 0x43:
        return (uint8_t)(f->fifo_len >> 8 & 0xFF);
    case 0x44:
        return (uint8_t)(f->fifo_len >> 16 & 0x7F);
    default:
        return f->achip[reg];
    }
}

static int spi_xfer(void *ctx, const uint8_t *tx, uint8_t *rx, size_t len)
{
    fake_cam_t *f = ctx;
    const uint8_t cmd = len ? tx[0] : 0; /* read before rx is written: tx may be rx */
    if (len >= 1 && cmd == 0x3C) {
        fprintf(f->log, "spi BURST %zu\n", len);
        achip_poll(f);
        if (rx) {
            rx[0] = f->spi_dead ? 0xFF : 0xEE; /* the command byte's slot: garbage */
        }
        for (size_t i = 1; i < len; i++) {
            const uint8_t b = fifo_byte(f);
            if (rx) {
                rx[i] = f->spi_dead ? 0xFF : b;
            }
        }
        return 0;
    }
    if (len != 2) {
        fprintf(f->log, "spi BAD %zu %02x\n", len, cmd);
        return -1;
    }
    const uint8_t reg = cmd & 0x7F;
    if (cmd & 0x80) {
        const uint8_t val = tx[1];
        fprintf(f->log, "spi W %02x %02x\n", reg, val);
        achip_write(f, reg, val);
        if (rx) {
            rx[0] = rx[1] = f->spi_dead ? 0xFF : 0x00;
        }
        return 0;
    }
    uint8_t val = achip_read(f, reg);
    if (f->spi_dead) {
        val = 0xFF;
    }
    fprintf(f->log, "spi R %02x %02x\n", reg, val);
    if (rx) {
        rx[0] = f->spi_dead ? 0xFF : 0x00;
        rx[1] = val;
    }
    return 0;
}

/* ---- SCCB sensors ---- */

static int i2c_write(void *ctx, uint8_t addr7, const uint8_t *data, size_t len)
{
    fake_cam_t *f = ctx;
    const int is2640 = addr7 == OV2640_ADDR && f->ov2640_present;
    const int is7675 = addr7 == OV7675_ADDR && f->ov7675_present;
    if ((!is2640 && !is7675) || len < 1 || len > 2) {
        fprintf(f->log, "i2c NACK %02x\n", addr7);
        return -1;
    }
    if (len == 1) {
        f->ptr = data[0];
        fprintf(f->log, "i2c P %02x %02x\n", addr7, data[0]);
        return 0;
    }
    const uint8_t reg = data[0], val = data[1];
    if (is7675) {
        fprintf(f->log, "i2c W %02x - %02x %02x\n", addr7, reg, val);
        if (reg == 0x12 && (val & 0x80)) {
            ov7675_reset(f);
        } else if (reg != 0x0A && reg != 0x0B) {
            f->ov7675[reg] = val;
        }
        return 0;
    }
    const unsigned bank = f->ov2640_sel & 1u;
    fprintf(f->log, "i2c W %02x %u %02x %02x\n", addr7, bank, reg, val);
    if (reg == 0xFF) {
        f->ov2640_sel = val;
    } else if (bank == 1 && reg == 0x12 && (val & 0x80)) {
        ov2640_reset(f);
    } else if (!(bank == 1 && (reg == 0x0A || reg == 0x0B))) {
        f->ov2640[bank][reg] = val;
    }
    return 0;
}

static int i2c_read(void *ctx, uint8_t addr7, uint8_t *data, size_t len)
{
    fake_cam_t *f = ctx;
    const int is2640 = addr7 == OV2640_ADDR && f->ov2640_present;
    const int is7675 = addr7 == OV7675_ADDR && f->ov7675_present;
    if ((!is2640 && !is7675) || len != 1) {
        fprintf(f->log, "i2c NACK %02x\n", addr7);
        return -1;
    }
    if (is7675) {
        data[0] = f->ov7675[f->ptr];
        fprintf(f->log, "i2c R %02x - %02x %02x\n", addr7, f->ptr, data[0]);
        return 0;
    }
    const unsigned bank = f->ov2640_sel & 1u;
    data[0] = f->ptr == 0xFF ? f->ov2640_sel : f->ov2640[bank][f->ptr];
    fprintf(f->log, "i2c R %02x %u %02x %02x\n", addr7, bank, f->ptr, data[0]);
    return 0;
}

static void delay_ms(void *ctx, uint32_t ms)
{
    fake_cam_t *f = ctx;
    fprintf(f->log, "delay %u\n", (unsigned)ms);
    f->now_ms += ms;
}

/* Does the OV7675 register state produce f->frame? COM7 picks RGB vs YUV and QVGA; QQVGA is
 * VGA mode with the manual /4 scaler (COM14 0x1A, DCWCTR 0x22). RGB565 also needs COM15's
 * RGB565 bits; full range (COM15 bits 7:6) is required for both. */
static int ov7675_produces_frame(const fake_cam_t *f)
{
    const uint8_t *r = f->ov7675;
    const uint8_t com7 = r[0x12], com15 = r[0x40];
    const int rgb = (com7 & 0x04) != 0;
    if ((com15 & 0xC0) != 0xC0 || (r[0x3A] & 0x08) || (r[0x3D] & 0x01) || (com7 & 0x01)) {
        return 0;
    }
    if (rgb ? (f->frame_fmt != FAKE_FRAME_RGB565_BE || (com15 & 0x30) != 0x10 || r[0x8C] != 0)
            : f->frame_fmt != FAKE_FRAME_YUYV) {
        return 0;
    }
    if (f->frame_w == 320 && f->frame_h == 240) {
        return (com7 & 0x10) && r[0x3E] == 0x19 && r[0x72] == 0x11;
    }
    if (f->frame_w == 160 && f->frame_h == 120) {
        return !(com7 & 0x10) && r[0x3E] == 0x1A && r[0x72] == 0x22;
    }
    return 0;
}

static size_t read_frame(void *ctx, uint8_t *buf, size_t cap)
{
    fake_cam_t *f = ctx;
    size_t n = 0;
    if (f->ov7675_present && ov7675_produces_frame(f)) {
        n = f->frame_len - (f->short_frame ? 100u : 0u);
        if (n > cap) {
            n = cap;
        }
        memcpy(buf, f->frame, n);
    }
    fprintf(f->log, "frame %zu\n", n);
    return n;
}

cam_bus_t fake_cam_bus(fake_cam_t *f, int with_read_frame)
{
    cam_bus_t b = {f, i2c_write, i2c_read, spi_xfer, delay_ms,
                   with_read_frame ? read_frame : NULL};
    return b;
}
