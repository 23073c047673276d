/* fake_cam_bus.h - a cam_bus_t whose far end is a software model of the camera modules, for
 * tests/test_camera_drivers.py (via test_cam_drivers.c).
 *
 * Modelled devices:
 * - ArduCHIP on SPI: register file, test register echo, CPLD reset, FIFO control (clear done
 *   flag, pointer resets, start), capture-done status after capture_ms of fake time, FIFO
 *   length registers, single and burst FIFO reads (burst done in place when tx == rx).
 * - OV2640 at I2C 0x30: two register banks selected by 0xFF, reset by COM7 bit 7 in the sensor
 *   bank (which also puts the bank select back to the DSP bank: the worst case for a driver
 *   that forgets to select again), product ID in the sensor bank.
 * - OV7675 at I2C 0x21: one register file, reset by COM7 bit 7, product ID.
 * - A captured frame: the bytes the sensor would put on its bus. It reaches the FIFO / the
 *   read_frame buffer only if the sensor registers describe that frame (format and size), so
 *   a driver that configures the wrong thing fails its capture.
 *
 * Every transaction is written to `log` as one line (see fake_cam_bus.c for the grammar), and
 * delay_ms advances the fake clock instead of sleeping.
 */
#ifndef FAKE_CAM_BUS_H
#define FAKE_CAM_BUS_H

#include <stdio.h>

#include "cam_bus.h"

typedef enum { FAKE_FRAME_RGB565_BE = 0, FAKE_FRAME_YUYV = 1 } fake_frame_fmt_t;

typedef struct {
    FILE *log;
    uint32_t now_ms;

    /* faults */
    int spi_dead;           /* MISO floats high: every SPI read returns 0xFF */
    int never_done;         /* capture never completes */
    int short_frame;        /* read_frame delivers 100 bytes less than a frame */
    uint8_t pid[2];         /* product ID the sensor reports */
    int ov2640_present, ov7675_present;

    /* the frame the sensor sees */
    const uint8_t *frame;
    size_t frame_len;
    uint16_t frame_w, frame_h;
    fake_frame_fmt_t frame_fmt;
    size_t fifo_extra; /* bytes the CPLD latches after the frame */

    /* ArduCHIP state */
    uint8_t achip[128];
    int capturing;
    uint32_t capture_start, capture_ms;
    size_t fifo_len, rptr;
    int fifo_valid;

    /* sensor state */
    uint8_t ov2640[2][256];
    uint8_t ov2640_sel; /* last value written to 0xFF */
    uint8_t ptr;        /* SCCB register pointer (last 1-byte write) */
    uint8_t ov7675[256];
} fake_cam_t;

/* Power-on state: no faults, both sensors absent, capture takes 40 ms. */
void fake_cam_init(fake_cam_t *f, FILE *log);

/* A cam_bus_t whose ctx is f; with_read_frame 0 leaves read_frame NULL. */
cam_bus_t fake_cam_bus(fake_cam_t *f, int with_read_frame);

#endif /* FAKE_CAM_BUS_H */
