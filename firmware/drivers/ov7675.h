/* ov7675.h - OmniVision OV7675 on a parallel (DVP) bus: the camera of the Arduino TinyML kit
 * (Nano 33 BLE Sense).
 *
 *     if (ov7675_init(&bus, OV7675_QQVGA, OV7675_OUT_GRAY8) != CAM_OK) { ... }
 *     size_t n = ov7675_capture(&bus, frame, sizeof frame);   // 160 x 120 GRAY8, n = 19200
 *     if (n == 0) { cam_err_t why = ov7675_last_error(); ... }
 *
 * Registers go over SCCB (I2C, 7-bit address 0x21, one register file: no bank select); pixels
 * come over the 8-bit parallel bus, which the board samples in bus->read_frame (on the nRF52840
 * that is GPIO polling of PCLK / HREF / VSYNC; the driver does not care how).
 *
 * Two outputs, matching board.h's pixel formats (the enum values are the board_pixfmt_t ones):
 * - OV7675_OUT_RGB565: the sensor sends RGB565 high byte first; the driver swaps in place to
 *   little-endian BOARD_PIXFMT_RGB565.
 * - OV7675_OUT_GRAY8: the sensor sends YUV422 as Y0 U Y1 V; the driver keeps the Ys
 *   (BOARD_PIXFMT_GRAY8). Grey models then get the sensor's own luma with no per-pixel colour
 *   conversion on the MCU, and the bus carries two bytes per pixel either way.
 * Either way the sensor sends 2 bytes per pixel, so the capture buffer must hold w * h * 2
 * bytes even though GRAY8 returns only w * h (the Ys are packed to the front of buf).
 *
 * Sizes: QVGA and QQVGA, made by the sensor's own downsampler (COM3 DCW + COM14 manual
 * scaling) from the full VGA field of view. The pixel clock is divided by the same factor,
 * so a smaller frame also arrives at a lower byte rate, which a GPIO capture needs.
 *
 * Register sequence at init: COM7 reset (bit 7) first, since the sensor keeps its registers
 * across an MCU reset, then the product ID (PID 0x0A = 0x76, VER 0x0B = 0x73), then the
 * common table, the format table and the size table (see ov7675.c for the values and why).
 *
 * One camera per board: the configured size and format live in a static. No allocation.
 */
#ifndef PATCHCAM_OV7675_H
#define PATCHCAM_OV7675_H

#include <stddef.h>
#include <stdint.h>

#include "cam_bus.h"

#define OV7675_I2C_ADDR 0x21u

typedef enum {
    OV7675_QQVGA = 0, /* 160 x 120 */
    OV7675_QVGA = 1,  /* 320 x 240 */
} ov7675_res_t;

typedef enum {
    OV7675_OUT_GRAY8 = 1,  /* = BOARD_PIXFMT_GRAY8: Y of YUV422 */
    OV7675_OUT_RGB565 = 2, /* = BOARD_PIXFMT_RGB565: little endian */
} ov7675_out_t;

/* Width and height of res (either pointer may be NULL); returns the capture buffer size it
 * needs (w * h * 2, whatever the output), or 0 for an unknown res. */
size_t ov7675_size(ov7675_res_t res, uint16_t *w, uint16_t *h);

/* Reset the sensor, check its ID, configure size and output. Needs bus->i2c_write, i2c_read,
 * delay_ms and read_frame. Returns CAM_OK or a negative cam_err_t (CAM_ERR_SENSOR_ID,
 * CAM_ERR_BUS, CAM_ERR_ARG). */
int ov7675_init(const cam_bus_t *bus, ov7675_res_t res, ov7675_out_t out);

/* One frame into buf (cap >= ov7675_size(res)). Returns the bytes of the converted frame
 * (w * h * 2 for RGB565, w * h for GRAY8), or 0 on failure: ov7675_last_error() says why
 * (CAM_ERR_FRAME_SIZE for a short or missing frame, CAM_ERR_BUF_TOO_SMALL, CAM_ERR_NOT_INIT,
 * CAM_ERR_ARG). */
size_t ov7675_capture(const cam_bus_t *bus, uint8_t *buf, size_t cap);

/* The error of the last init or capture (CAM_OK after a success). */
cam_err_t ov7675_last_error(void);

#endif /* PATCHCAM_OV7675_H */
