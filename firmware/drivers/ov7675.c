/* ov7675.c - see ov7675.h. */
#include "ov7675.h"

#define I2C_ADDR OV7675_I2C_ADDR

#define REG_PID 0x0Au
#define REG_VER 0x0Bu
#define PID_OV7675 0x76u
#define VER_OV7675 0x73u
#define REG_COM7 0x12u
#define COM7_RESET 0x80u
#define COM7_QVGA 0x10u
#define COM7_RGB 0x04u

/* Common to every size and format. The window is the full 640 x 480 field: the downsampler
 * shrinks it rather than cropping, so QVGA and QQVGA see the same scene. */
static const cam_reg_t k_common[] = {
    {0x11, 0x01}, /* CLKRC: input clock / 2; GPIO capture on the nRF52840 cannot keep up
                     with the undivided pixel clock */
    {0x04, 0x00}, /* COM1: no CCIR656 codes embedded in the data */
    {0x13, 0xE7}, /* COM8: fast AEC/AGC, unlimited AEC step, banding filter, AGC, AWB, AEC */
    /* Full-field window: HSTART/HSTOP count 8 pixels with HREF's low bits, VSTART/VSTOP
     * 4 lines with VREF's low bits. */
    {0x17, 0x13}, /* HSTART */
    {0x18, 0x01}, /* HSTOP */
    {0x32, 0xB6}, /* HREF */
    {0x19, 0x02}, /* VSTART */
    {0x1A, 0x7A}, /* VSTOP */
    {0x03, 0x0A}, /* VREF */
    {0x8C, 0x00}, /* RGB444 off: otherwise it overrides COM15's RGB565 */
};

/* Output format. COM15 (0x40) bits 7:6 = 11 is the full 0..255 output range (the preprocessing
 * assumes full range; the default 16..235 would shift every quantised input); bits 5:4 = 01
 * RGB565. TSLB (0x3A) bit 3 and COM13 (0x3D) bit 0 both clear give the Y U Y V byte order the
 * GRAY8 path relies on (Y at even bytes). */
static const cam_reg_t k_rgb565[] = {
    {0x40, 0xD0}, /* COM15: full range, RGB565 */
    {0x3A, 0x04}, /* TSLB */
    {0x3D, 0x88}, /* COM13: gamma on, UV saturation auto */
};
static const cam_reg_t k_yuv422[] = {
    {0x40, 0xC0}, /* COM15: full range, (format from COM7: YUV) */
    {0x3A, 0x04}, /* TSLB: bit 3 clear */
    {0x3D, 0x88}, /* COM13: bit 0 clear -> Y U Y V */
};

/* Downsampling: COM3 (0x0C) bit 2 enables the DCW block; COM14 (0x3E) bit 4 divides the pixel
 * clock and bit 3 switches to manual scaling with bits 2:0 the divider (/2 QVGA, /4 QQVGA);
 * DCWCTR (0x72) the horizontal/vertical down-sample (x2 / x4); SCALING_PCLK_DIV (0x73) the
 * matching DSP clock divider; SCALING_XSC/YSC (0x70/0x71) the scale factors with the test
 * pattern bits clear; SCALING_PCLK_DELAY (0xA2) the pixel clock delay the scaler needs. */
static const cam_reg_t k_qvga[] = {
    {0x0C, 0x04}, {0x3E, 0x19}, {0x70, 0x3A}, {0x71, 0x35},
    {0x72, 0x11}, {0x73, 0xF1}, {0xA2, 0x02},
};
static const cam_reg_t k_qqvga[] = {
    {0x0C, 0x04}, {0x3E, 0x1A}, {0x70, 0x3A}, {0x71, 0x35},
    {0x72, 0x22}, {0x73, 0xF2}, {0xA2, 0x02},
};

static struct {
    uint8_t ready;
    ov7675_res_t res;
    ov7675_out_t out;
    cam_err_t last;
} s_cam;

size_t ov7675_size(ov7675_res_t res, uint16_t *w, uint16_t *h)
{
    if (res != OV7675_QVGA && res != OV7675_QQVGA) {
        return 0;
    }
    return cam_qvga_size(res == OV7675_QQVGA, w, h);
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

#define TABLE(t) (t), sizeof(t) / sizeof((t)[0])

int ov7675_init(const cam_bus_t *bus, ov7675_res_t res, ov7675_out_t out)
{
    s_cam.ready = 0;
    if (bus == NULL || bus->i2c_write == NULL || bus->i2c_read == NULL ||
        bus->delay_ms == NULL || bus->read_frame == NULL || ov7675_size(res, 0, 0) == 0 ||
        (out != OV7675_OUT_RGB565 && out != OV7675_OUT_GRAY8)) {
        return fail(CAM_ERR_ARG);
    }
    /* Reset first: the sensor is powered with the board's 3.3 V rail, not reset with the MCU,
     * so after a firmware restart it still holds the last configuration. The datasheet asks
     * for 1 ms after the reset; 10 ms also covers the SCCB block coming back. */
    TRY(cam_sccb_write(bus, I2C_ADDR, REG_COM7, COM7_RESET));
    bus->delay_ms(bus->ctx, 10);
    uint8_t pid = 0, ver = 0;
    TRY(cam_sccb_read(bus, I2C_ADDR, REG_PID, &pid));
    TRY(cam_sccb_read(bus, I2C_ADDR, REG_VER, &ver));
    if (pid != PID_OV7675 || ver != VER_OV7675) {
        return fail(CAM_ERR_SENSOR_ID);
    }

    /* COM7 carries both the output size (bit 4) and RGB vs YUV (bit 2): one write. */
    const uint8_t com7 = (uint8_t)((res == OV7675_QVGA ? COM7_QVGA : 0u) |
                                   (out == OV7675_OUT_RGB565 ? COM7_RGB : 0u));
    TRY(cam_sccb_write(bus, I2C_ADDR, REG_COM7, com7));
    TRY(cam_sccb_write_table(bus, I2C_ADDR, TABLE(k_common)));
    if (out == OV7675_OUT_RGB565) {
        TRY(cam_sccb_write_table(bus, I2C_ADDR, TABLE(k_rgb565)));
    } else {
        TRY(cam_sccb_write_table(bus, I2C_ADDR, TABLE(k_yuv422)));
    }
    if (res == OV7675_QVGA) {
        TRY(cam_sccb_write_table(bus, I2C_ADDR, TABLE(k_qvga)));
    } else {
        TRY(cam_sccb_write_table(bus, I2C_ADDR, TABLE(k_qqvga)));
    }
    /* Let auto exposure and white balance settle on the new mode before the first frame. */
    bus->delay_ms(bus->ctx, 300);
    s_cam.res = res;
    s_cam.out = out;
    s_cam.ready = 1;
    s_cam.last = CAM_OK;
    return CAM_OK;
}

size_t ov7675_capture(const cam_bus_t *bus, uint8_t *buf, size_t cap)
{
    if (bus == NULL || bus->read_frame == NULL || buf == NULL) {
        s_cam.last = CAM_ERR_ARG;
        return 0;
    }
    if (!s_cam.ready) {
        s_cam.last = CAM_ERR_NOT_INIT;
        return 0;
    }
    const size_t raw = ov7675_size(s_cam.res, NULL, NULL);
    if (cap < raw) {
        s_cam.last = CAM_ERR_BUF_TOO_SMALL;
        return 0;
    }
    /* Ask for exactly one frame: a longer read could run into the next frame's bytes. */
    if (bus->read_frame(bus->ctx, buf, raw) != raw) {
        s_cam.last = CAM_ERR_FRAME_SIZE;
        return 0;
    }
    s_cam.last = CAM_OK;
    if (s_cam.out == OV7675_OUT_RGB565) {
        cam_swap16(buf, raw / 2);
        return raw;
    }
    /* Y U Y V -> Y Y: in place, front to back (the write index never passes the read one). */
    const size_t n = raw / 2;
    for (size_t i = 0; i < n; i++) {
        buf[i] = buf[2 * i];
    }
    return n;
}

cam_err_t ov7675_last_error(void)
{
    return s_cam.last;
}
