/* arducam_ov2640.h - Arducam Mini 2MP Plus (OV2640 sensor + ArduCHIP SPI frame FIFO).
 *
 *     if (arducam_ov2640_init(&bus, ARDUCAM_QVGA) != CAM_OK) { ... }     // once
 *     size_t n = arducam_ov2640_capture(&bus, frame, sizeof frame);       // per frame
 *     if (n == 0) { cam_err_t why = arducam_ov2640_last_error(); ... }
 *     // frame: 320 x 240 RGB565 little endian (BOARD_PIXFMT_RGB565), n = 153600
 *
 * The module has two buses. The OV2640 is configured over SCCB (I2C, 7-bit address 0x30);
 * pixels never cross I2C. The sensor's parallel output is latched by the ArduCHIP (a CPLD) into
 * an 8 MB FIFO that the MCU reads over SPI. So init talks to both, capture only to SPI.
 *
 * ArduCHIP SPI protocol: 2-byte transfers, first byte the register address with bit 7 set for
 * a write (0x80 | reg, value) or clear for a read (reg, dummy -> value in the second byte).
 * Registers used: 0x00 test (any value reads back: the only way to know SPI works, since the
 * chip has no ID worth trusting across CPLD revisions), 0x01 frames per capture, 0x04 FIFO
 * control (bit 0 clear the capture-done flag, bit 1 start capture, bit 4/5 reset the read /
 * write pointer), 0x07 CPLD reset (bit 7), 0x3C burst FIFO read, 0x3D single FIFO read, 0x41
 * status (bit 3 capture done), 0x42..0x44 FIFO length (23 bits, little endian).
 *
 * Capture = clear flag, reset FIFO pointers, start, poll 0x41 until done (1 ms steps,
 * ARDUCAM_CAPTURE_TIMEOUT_MS), check the FIFO length against the configured frame, then
 * stream the frame out. The FIFO stores what the sensor clocks out, RGB565 high byte first;
 * the driver swaps bytes in place so the caller gets board.h's little-endian RGB565.
 *
 * Only 320x240 and 160x120 RGB565 are offered: the models take 96..160 pixel inputs, and a
 * QVGA frame (150 kB) already takes half the SRAM of the smallest board that carries this
 * camera (STM32F746, 320 kB).
 *
 * The driver keeps the configured resolution in a static (one camera per board); every
 * buffer belongs to the caller; nothing is allocated.
 */
#ifndef PATCHCAM_ARDUCAM_OV2640_H
#define PATCHCAM_ARDUCAM_OV2640_H

#include <stddef.h>
#include <stdint.h>

#include "cam_bus.h"

#define ARDUCAM_OV2640_I2C_ADDR 0x30u /* 0x60 / 0x61 as 8-bit write / read addresses */
#define ARDUCAM_CAPTURE_TIMEOUT_MS 1000u
/* The CPLD may latch a few bytes past the last pixel before it sees VSYNC; more than this
 * means the sensor is not producing the frame we configured. */
#define ARDUCAM_FIFO_SLACK 16u

typedef enum {
    ARDUCAM_QQVGA = 0, /* 160 x 120 */
    ARDUCAM_QVGA = 1,  /* 320 x 240 */
} arducam_res_t;

/* Width and height of res; returns the frame size in bytes (w * h * 2), or 0 for an unknown
 * res (w and h untouched). Either pointer may be NULL. */
size_t arducam_ov2640_size(arducam_res_t res, uint16_t *w, uint16_t *h);

/* Reset the ArduCHIP and the sensor, check SPI and the sensor ID, load the RGB565 table for
 * res. Needs bus->i2c_write, i2c_read, spi_xfer and delay_ms. Returns CAM_OK or a negative
 * cam_err_t (CAM_ERR_NO_SPI, CAM_ERR_SENSOR_ID, CAM_ERR_BUS, CAM_ERR_ARG). Takes about 0.35 s
 * (the resets and auto exposure need their settling delays). */
int arducam_ov2640_init(const cam_bus_t *bus, arducam_res_t res);

/* Capture one frame into buf (cap bytes, at least arducam_ov2640_size(res)) as RGB565 little
 * endian. Returns the bytes written (w * h * 2), or 0 on failure: then
 * arducam_ov2640_last_error() says why (CAM_ERR_TIMEOUT, CAM_ERR_FIFO_LENGTH,
 * CAM_ERR_BUF_TOO_SMALL, CAM_ERR_NOT_INIT, CAM_ERR_BUS). The whole frame is read in one
 * spi_xfer with buf as both tx and rx (see cam_bus.h), so the board's SPI must cope with a
 * transfer of w * h * 2 bytes. */
size_t arducam_ov2640_capture(const cam_bus_t *bus, uint8_t *buf, size_t cap);

/* The error of the last init or capture (CAM_OK after a success). */
cam_err_t arducam_ov2640_last_error(void);

#endif /* PATCHCAM_ARDUCAM_OV2640_H */
