/* arducam_ov2640.c - see arducam_ov2640.h. */
#include "arducam_ov2640.h"

/* ---- ArduCHIP (SPI) ---- */
#define ACHIP_TEST 0x00u
#define ACHIP_FRAMES 0x01u
#define ACHIP_FIFO 0x04u
#define ACHIP_FIFO_CLEAR_DONE 0x01u
#define ACHIP_FIFO_START 0x02u
#define ACHIP_FIFO_RESET_RPTR 0x10u
#define ACHIP_FIFO_RESET_WPTR 0x20u
#define ACHIP_RESET 0x07u
#define ACHIP_RESET_CPLD 0x80u
#define ACHIP_BURST_READ 0x3Cu
#define ACHIP_SINGLE_READ 0x3Du
#define ACHIP_STATUS 0x41u
#define ACHIP_STATUS_DONE 0x08u
#define ACHIP_FIFO_LEN0 0x42u
#define ACHIP_WRITE 0x80u

/* ---- OV2640 (SCCB). Register 0xFF selects which of two register files the other addresses
 * mean: 0 the DSP (format, scaling, output), 1 the sensor core (timing, exposure, ID). ---- */
#define OV_BANK_SEL 0xFFu
#define OV_BANK_DSP 0x00u
#define OV_BANK_SENSOR 0x01u
/* sensor bank */
#define OV_COM7 0x12u
#define OV_COM7_SRST 0x80u
#define OV_COM7_SVGA 0x40u
#define OV_PIDH 0x0Au
#define OV_PIDL 0x0Bu
#define OV_PID 0x26u
/* DSP bank */
#define OV_R_BYPASS 0x05u
#define OV_IMAGE_MODE 0xDAu
#define OV_IMAGE_MODE_RGB565 0x08u
#define OV_RESET 0xE0u
#define OV_RESET_DVP 0x04u

#define I2C_ADDR ARDUCAM_OV2640_I2C_ADDR

/* Sensor-core setup common to both resolutions. The sensor runs in its SVGA mode (800 x 600,
 * full field of view binned 2x2, about twice the frame rate of UXGA) and the DSP scales down:
 * smaller sensor windows would crop the view rather than shrink it. */
static const cam_reg_t k_sensor[] = {
    /* Bypass the DSP while the sensor is reconfigured so no half-set frame reaches the FIFO. */
    {OV_BANK_SEL, OV_BANK_DSP},
    {OV_R_BYPASS, 0x01},
    {OV_BANK_SEL, OV_BANK_SENSOR},
    {OV_COM7, OV_COM7_SVGA},
    {0x11, 0x00}, /* CLKRC: no clock divider; the CPLD latches at full pixel clock */
    {0x09, 0x02}, /* COM2: 2x output drive for the module's ribbon to the CPLD */
    {0x13, 0xE5}, /* COM8: auto exposure, auto gain, banding filter on */
    {0x14, 0x48}, /* COM9: gain ceiling 8x: more keeps noise out of small model inputs */
    /* SVGA output window: HREF 0x11..0x43 (x8 + REG32 low bits), VREF 0x00..0x4B (x4). */
    {0x17, 0x11}, /* HREFST */
    {0x18, 0x43}, /* HREFEND */
    {0x32, 0x09}, /* REG32: low bits of HREFST / HREFEND */
    {0x19, 0x00}, /* VSTRT */
    {0x1A, 0x4B}, /* VEND */
};

/* DSP: input 800 x 600, pre-divide, then zoom to the output size. The DVP output is held in
 * reset while sizes change (RESET.DVP) because a size change mid-frame can leave the DVP
 * producing a torn frame until the next one. */
static const cam_reg_t k_dsp_head[] = {
    {OV_BANK_SEL, OV_BANK_DSP},
    {OV_RESET, OV_RESET_DVP},
    {0xC0, 800 / 8}, /* HSIZE8: sensor image width / 8 */
    {0xC1, 600 / 8}, /* VSIZE8: sensor image height / 8 */
    {0x86, 0x3D},    /* CTRL2: DCW (downsample), SDE, UV adjust / average, colour matrix on */
    {0x51, 800 / 4}, /* HSIZE: input window width / 4 */
    {0x52, 600 / 4}, /* VSIZE: input window height / 4 */
    {0x53, 0x00},    /* XOFFL */
    {0x54, 0x00},    /* YOFFL */
    {0x55, 0x00},    /* VHYX: high bits of the four above */
    {0x57, 0x00},    /* TEST: high bit of HSIZE */
};

/* Per resolution: the pre-divider CTRLI (0x50: bit 7 LP_DP, bits 5:3 V divider, 2:0 H
 * divider, as 2^n) keeps the zoom ratio between 1 and 2, where the DSP's scaler interpolates
 * instead of dropping pixels; ZMOW / ZMOH are the output size / 4. */
static const cam_reg_t k_qvga[] = {
    {0x50, 0x89},    /* CTRLI: /2 -> 400 x 300 */
    {0x5A, 320 / 4}, /* ZMOW */
    {0x5B, 240 / 4}, /* ZMOH */
    {0x5C, 0x00},    /* ZMHH: high bits of ZMOW / ZMOH */
};
static const cam_reg_t k_qqvga[] = {
    {0x50, 0x92},    /* CTRLI: /4 -> 200 x 150 */
    {0x5A, 160 / 4}, /* ZMOW */
    {0x5B, 120 / 4}, /* ZMOH */
    {0x5C, 0x00},    /* ZMHH */
};

static const cam_reg_t k_dsp_tail[] = {
    {0xD3, 0x04}, /* R_DVP_SP: fixed PCLK divider, slow enough for the CPLD at any size */
    /* RGB565, high byte first (bit 0 clear): the FIFO therefore holds big-endian pixels. */
    {OV_IMAGE_MODE, OV_IMAGE_MODE_RGB565},
    {OV_RESET, 0x00},
    {OV_R_BYPASS, 0x00}, /* DSP back in the path */
};

static struct {
    uint8_t ready;
    arducam_res_t res;
    cam_err_t last;
} s_cam;

size_t arducam_ov2640_size(arducam_res_t res, uint16_t *w, uint16_t *h)
{
    if (res != ARDUCAM_QVGA && res != ARDUCAM_QQVGA) {
        return 0;
    }
    return cam_qvga_size(res == ARDUCAM_QQVGA, w, h);
}

static int chip_write(const cam_bus_t *bus, uint8_t reg, uint8_t val)
{
    const uint8_t tx[2] = {(uint8_t)(ACHIP_WRITE | reg), val};
    return bus->spi_xfer(bus->ctx, tx, NULL, 2) == 0 ? CAM_OK : CAM_ERR_BUS;
}

static int chip_read(const cam_bus_t *bus, uint8_t reg, uint8_t *val)
{
    const uint8_t tx[2] = {(uint8_t)(reg & 0x7Fu), 0x00};
    uint8_t rx[2] = {0, 0};
    if (bus->spi_xfer(bus->ctx, tx, rx, 2) != 0) {
        return CAM_ERR_BUS;
    }
    *val = rx[1];
    return CAM_OK;
}

static int fail(int e)
{
    s_cam.last = (cam_err_t)e;
    return e;
}

#define TRY(expr)                                                                          \
    do {                                                                                   \
        const int e_ = (expr);                                                             \
        if (e_ != CAM_OK) {                                                                \
            return fail(e_);                                                               \
        }                                                                                  \
    } while (0)

int arducam_ov2640_init(const cam_bus_t *bus, arducam_res_t res)
{
    s_cam.ready = 0;
    if (bus == NULL || bus->i2c_write == NULL || bus->i2c_read == NULL ||
        bus->spi_xfer == NULL || bus->delay_ms == NULL || arducam_ov2640_size(res, 0, 0) == 0) {
        return fail(CAM_ERR_ARG);
    }

    /* The CPLD keeps its state across an MCU reset (it is powered with the camera), so start
     * from a known one: a capture left running would otherwise fill the FIFO under us. */
    TRY(chip_write(bus, ACHIP_RESET, ACHIP_RESET_CPLD));
    bus->delay_ms(bus->ctx, 100);
    TRY(chip_write(bus, ACHIP_RESET, 0x00));
    bus->delay_ms(bus->ctx, 100);

    /* Two complementary patterns: a floating MISO reads 0xFF and a shorted one 0x00, so one
     * pattern alone can pass by luck. */
    static const uint8_t patterns[2] = {0x55, 0xAA};
    for (int i = 0; i < 2; i++) {
        uint8_t v = 0;
        TRY(chip_write(bus, ACHIP_TEST, patterns[i]));
        TRY(chip_read(bus, ACHIP_TEST, &v));
        if (v != patterns[i]) {
            return fail(CAM_ERR_NO_SPI);
        }
    }

    /* Sensor reset comes before the ID check so the check does not depend on whatever the
     * sensor was left in. The datasheet does not say whether the reset also resets the bank
     * select, so select the sensor bank again before reading the ID rather than rely on it. */
    TRY(cam_sccb_write(bus, I2C_ADDR, OV_BANK_SEL, OV_BANK_SENSOR));
    TRY(cam_sccb_write(bus, I2C_ADDR, OV_COM7, OV_COM7_SRST));
    bus->delay_ms(bus->ctx, 50);
    TRY(cam_sccb_write(bus, I2C_ADDR, OV_BANK_SEL, OV_BANK_SENSOR));
    uint8_t pidh = 0, pidl = 0;
    TRY(cam_sccb_read(bus, I2C_ADDR, OV_PIDH, &pidh));
    TRY(cam_sccb_read(bus, I2C_ADDR, OV_PIDL, &pidl));
    /* 0x42 is the OV2640 on the 2MP Plus; 0x41 is the earlier silicon revision, which takes
     * the same register table. */
    if (pidh != OV_PID || (pidl != 0x42u && pidl != 0x41u)) {
        return fail(CAM_ERR_SENSOR_ID);
    }

    TRY(cam_sccb_write_table(bus, I2C_ADDR, k_sensor, sizeof k_sensor / sizeof k_sensor[0]));
    TRY(cam_sccb_write_table(bus, I2C_ADDR, k_dsp_head,
                             sizeof k_dsp_head / sizeof k_dsp_head[0]));
    if (res == ARDUCAM_QVGA) {
        TRY(cam_sccb_write_table(bus, I2C_ADDR, k_qvga, sizeof k_qvga / sizeof k_qvga[0]));
    } else {
        TRY(cam_sccb_write_table(bus, I2C_ADDR, k_qqvga, sizeof k_qqvga / sizeof k_qqvga[0]));
    }
    TRY(cam_sccb_write_table(bus, I2C_ADDR, k_dsp_tail,
                             sizeof k_dsp_tail / sizeof k_dsp_tail[0]));
    /* Auto exposure needs a few frames to settle before the first capture is usable. */
    bus->delay_ms(bus->ctx, 100);

    TRY(chip_write(bus, ACHIP_FRAMES, 0x00)); /* one frame per capture command */
    s_cam.res = res;
    s_cam.ready = 1;
    s_cam.last = CAM_OK;
    return CAM_OK;
}

static size_t capture_fail(const cam_bus_t *bus, int e)
{
    /* Leave the done flag clear so the next capture's poll cannot see a stale "done". */
    (void)chip_write(bus, ACHIP_FIFO, ACHIP_FIFO_CLEAR_DONE);
    s_cam.last = (cam_err_t)e;
    return 0;
}

size_t arducam_ov2640_capture(const cam_bus_t *bus, uint8_t *buf, size_t cap)
{
    if (bus == NULL || bus->spi_xfer == NULL || bus->delay_ms == NULL || buf == NULL) {
        s_cam.last = CAM_ERR_ARG;
        return 0;
    }
    if (!s_cam.ready) {
        s_cam.last = CAM_ERR_NOT_INIT;
        return 0;
    }
    const size_t frame = arducam_ov2640_size(s_cam.res, NULL, NULL);
    if (cap < frame) {
        s_cam.last = CAM_ERR_BUF_TOO_SMALL; /* checked first: no point exposing a frame */
        return 0;
    }

    if (chip_write(bus, ACHIP_FIFO, ACHIP_FIFO_CLEAR_DONE) != CAM_OK ||
        chip_write(bus, ACHIP_FIFO, ACHIP_FIFO_RESET_RPTR | ACHIP_FIFO_RESET_WPTR) != CAM_OK ||
        chip_write(bus, ACHIP_FIFO, ACHIP_FIFO_START) != CAM_OK) {
        return capture_fail(bus, CAM_ERR_BUS);
    }
    uint32_t waited = 0;
    for (;;) {
        uint8_t st = 0;
        if (chip_read(bus, ACHIP_STATUS, &st) != CAM_OK) {
            return capture_fail(bus, CAM_ERR_BUS);
        }
        if (st & ACHIP_STATUS_DONE) {
            break;
        }
        if (waited >= ARDUCAM_CAPTURE_TIMEOUT_MS) {
            return capture_fail(bus, CAM_ERR_TIMEOUT);
        }
        bus->delay_ms(bus->ctx, 1);
        waited++;
    }

    uint8_t l[3] = {0, 0, 0};
    for (uint8_t i = 0; i < 3; i++) {
        if (chip_read(bus, (uint8_t)(ACHIP_FIFO_LEN0 + i), &l[i]) != CAM_OK) {
            return capture_fail(bus, CAM_ERR_BUS);
        }
    }
    const size_t len = (size_t)l[0] | (size_t)l[1] << 8 | (size_t)(l[2] & 0x7Fu) << 16;
    if (len < frame || len > frame + ARDUCAM_FIFO_SLACK) {
        return capture_fail(bus, CAM_ERR_FIFO_LENGTH);
    }

    /* A burst read returns garbage while its command byte goes out, so N bytes need an
     * (N + 1)-byte transfer. Rather than ask for one spare byte in the caller's buffer, take
     * the first byte with a single read (which advances the FIFO read pointer like a burst
     * does) and burst the other N - 1 in place, the command byte sitting in buf[0]. The chip
     * ignores MOSI during a burst, so the stale bytes clocked out after it do no harm. */
    uint8_t first = 0;
    if (chip_read(bus, ACHIP_SINGLE_READ, &first) != CAM_OK) {
        return capture_fail(bus, CAM_ERR_BUS);
    }
    buf[0] = ACHIP_BURST_READ;
    if (bus->spi_xfer(bus->ctx, buf, buf, frame) != 0) {
        return capture_fail(bus, CAM_ERR_BUS);
    }
    buf[0] = first;
    if (chip_write(bus, ACHIP_FIFO, ACHIP_FIFO_CLEAR_DONE) != CAM_OK) {
        s_cam.last = CAM_ERR_BUS;
        return 0;
    }
    cam_swap16(buf, frame / 2);
    s_cam.last = CAM_OK;
    return frame;
}

cam_err_t arducam_ov2640_last_error(void)
{
    return s_cam.last;
}
