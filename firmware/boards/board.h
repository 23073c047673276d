/* board.h - the one interface every patchcam board implements (docs/design.md §4.6).
 *
 * The app loop (firmware/app/) and the test runners are written against these functions only,
 * so a new board is one folder under firmware/boards/ with one C file that fills them in.
 * No function here allocates memory; every buffer belongs to the caller.
 */
#ifndef PATCHCAM_BOARD_H
#define PATCHCAM_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* Pixel formats a camera can deliver (values are part of the wire protocol: append only). */
typedef enum {
    BOARD_PIXFMT_NONE = 0,   /* board has no camera */
    BOARD_PIXFMT_GRAY8 = 1,
    BOARD_PIXFMT_RGB565 = 2, /* little endian */
    BOARD_PIXFMT_RGB888 = 3,
} board_pixfmt_t;

/* Bring up clocks, serial port and camera. Called once, first. */
void board_init(void);

/* Microseconds since an arbitrary start; wraps after ~71 minutes. */
uint32_t board_time_us(void);

/* Serial port (the wire protocol's transport).
 * board_serial_read returns the number of bytes read (0..cap), without blocking longer than
 * timeout_us; board_serial_write sends all len bytes. */
size_t board_serial_read(uint8_t *buf, size_t cap, uint32_t timeout_us);
void board_serial_write(const uint8_t *buf, size_t len);

/* Camera. board_camera_format reports what board_camera_capture delivers (width, height,
 * pixel format); BOARD_PIXFMT_NONE means "no camera" and capture returns 0.
 * board_camera_capture fills buf (cap bytes) with one frame and returns the bytes written,
 * or 0 when no frame is available (for example the end of a virtual camera's file). */
board_pixfmt_t board_camera_format(uint16_t *width, uint16_t *height);
size_t board_camera_capture(uint8_t *buf, size_t cap);

/* Test runners only: the boards we run in CI (host, qemu_m7) read a model input from a file
 * and write the model output back, then exit with a status. Real boards may leave them out. */
size_t board_read_input(uint8_t *buf, size_t cap);
void board_write_output(const uint8_t *buf, size_t len);
void board_exit(int status);

/* Optional: status LED (no-op where absent). */
void board_led(int on);

/* Optional, for builds with PC_APP_SCREEN=1 (a board with a display, e.g. the DISCO's LCD):
 * board_screen_init brings it up (0, or -1: no screen); board_screen_back returns the
 * framebuffer to draw the next picture into (pc_draw.h's pc_fb_t; NULL without a screen) and
 * board_screen_show shows it and hands the other buffer back for drawing (double buffering). */
struct pc_fb;
int board_screen_init(void);
const struct pc_fb *board_screen_back(void);
void board_screen_show(void);

#endif /* PATCHCAM_BOARD_H */
