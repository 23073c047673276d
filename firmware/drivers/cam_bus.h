/* cam_bus.h - the buses a camera driver needs, filled in by the board (docs/design.md §4.6).
 *
 *     static const cam_bus_t bus = { &board_ctx, my_i2c_write, my_i2c_read, my_spi_xfer,
 *                                    my_delay_ms, NULL };
 *     if (arducam_ov2640_init(&bus, ARDUCAM_QVGA) != CAM_OK) { ... }
 *
 * The drivers (arducam_ov2640.c, ov7675.c) never touch a peripheral themselves: every pin
 * wiggle goes through these function pointers. That keeps the drivers plain C99 that compiles
 * for any MCU and for the host, where tests/c/fake_cam_bus.c stands in for the devices and
 * records every transaction.
 *
 * Bus contract (what the drivers rely on):
 * - i2c_write / i2c_read: one complete I2C transaction (START, 7-bit address, data, STOP) to
 *   addr7. Return 0 on success, nonzero on NACK or bus error. The OmniVision sensors speak
 *   SCCB, which has no repeated START, so a register read is always two transactions: a
 *   1-byte write of the register address, then a 1-byte read (see cam_sccb_read below).
 * - spi_xfer: full duplex, chip select asserted from the first byte to the last and released
 *   after. tx is never NULL; rx may be NULL (discard what comes back). tx and rx may be the
 *   SAME buffer (in place: each byte is sent before its answer is stored): the ArduCAM FIFO
 *   burst streams a whole frame inside one chip-select window and the driver uses the frame
 *   buffer as both, so no second frame-sized buffer is needed. Return 0 on success.
 * - delay_ms: busy-wait or sleep at least ms milliseconds; drivers also use it as their clock
 *   for timeouts, so it must really wait.
 * - read_frame: for parallel-bus (DVP) sensors, capture one whole frame (VSYNC to VSYNC, every
 *   byte in the order the sensor clocks it out) into buf, at most cap bytes; return the number
 *   of bytes stored, 0 when no frame came. NULL for boards or sensors that do not use it.
 *
 * Unused pointers may be NULL; a driver checks for the ones it needs at init.
 */
#ifndef PATCHCAM_CAM_BUS_H
#define PATCHCAM_CAM_BUS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cam_bus {
    void *ctx; /* passed back to every call: the board's peripheral handles */
    int (*i2c_write)(void *ctx, uint8_t addr7, const uint8_t *data, size_t len);
    int (*i2c_read)(void *ctx, uint8_t addr7, uint8_t *data, size_t len);
    int (*spi_xfer)(void *ctx, const uint8_t *tx, uint8_t *rx, size_t len);
    void (*delay_ms)(void *ctx, uint32_t ms);
    size_t (*read_frame)(void *ctx, uint8_t *buf, size_t cap);
} cam_bus_t;

/* Why a driver call failed. Values are negative so an int return can carry either a count or
 * an error; append only (tests and board code print them by number). */
typedef enum {
    CAM_OK = 0,
    CAM_ERR_ARG = -1,           /* NULL bus / missing bus function / unknown resolution */
    CAM_ERR_BUS = -2,           /* an i2c or spi call returned nonzero (NACK, no device) */
    CAM_ERR_NO_SPI = -3,        /* ArduCAM test register did not echo: SPI wiring or CS */
    CAM_ERR_SENSOR_ID = -4,     /* the sensor answered with another product ID */
    CAM_ERR_TIMEOUT = -5,       /* capture never signalled done */
    CAM_ERR_FIFO_LENGTH = -6,   /* the FIFO holds a different amount than one frame */
    CAM_ERR_BUF_TOO_SMALL = -7, /* caller's buffer cannot hold the frame */
    CAM_ERR_FRAME_SIZE = -8,    /* read_frame delivered a short (or no) frame */
    CAM_ERR_NOT_INIT = -9,      /* capture before a successful init */
} cam_err_t;

/* One register write of an init table. */
typedef struct {
    uint8_t reg;
    uint8_t val;
} cam_reg_t;

/* SCCB register access (8-bit register address, 8-bit value). */
static inline int cam_sccb_write(const cam_bus_t *bus, uint8_t addr7, uint8_t reg, uint8_t val)
{
    const uint8_t d[2] = {reg, val};
    return bus->i2c_write(bus->ctx, addr7, d, 2) == 0 ? CAM_OK : CAM_ERR_BUS;
}

static inline int cam_sccb_read(const cam_bus_t *bus, uint8_t addr7, uint8_t reg, uint8_t *val)
{
    if (bus->i2c_write(bus->ctx, addr7, &reg, 1) != 0 ||
        bus->i2c_read(bus->ctx, addr7, val, 1) != 0) {
        return CAM_ERR_BUS;
    }
    return CAM_OK;
}

static inline int cam_sccb_write_table(const cam_bus_t *bus, uint8_t addr7,
                                       const cam_reg_t *regs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const int e = cam_sccb_write(bus, addr7, regs[i].reg, regs[i].val);
        if (e != CAM_OK) {
            return e;
        }
    }
    return CAM_OK;
}

/* Sensors clock RGB565 out high byte first; board.h's BOARD_PIXFMT_RGB565 is little endian. */
static inline void cam_swap16(uint8_t *buf, size_t n_pixels)
{
    for (size_t i = 0; i < n_pixels; i++) {
        const uint8_t t = buf[2 * i];
        buf[2 * i] = buf[2 * i + 1];
        buf[2 * i + 1] = t;
    }
}

/* Both drivers offer QVGA (320x240) and QQVGA (160x120) at 2 bytes per pixel (RGB565 or
 * YUV422 as the sensor sends it): writes the size to *w / *h (either may be NULL) and returns
 * the frame's bytes. */
static inline size_t cam_qvga_size(int qqvga, uint16_t *w, uint16_t *h)
{
    const uint16_t ww = qqvga ? 160u : 320u;
    const uint16_t hh = qqvga ? 120u : 240u;
    if (w) {
        *w = ww;
    }
    if (h) {
        *h = hh;
    }
    return (size_t)ww * hh * 2u;
}

#endif /* PATCHCAM_CAM_BUS_H */
