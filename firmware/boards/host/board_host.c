/* board_host.c - the host (POSIX) board: the same firmware as a process (DESIGN §4.6).
 *
 * Environment:
 *   PATCHCAM_INPUT   file board_read_input() reads (default: stdin)
 *   PATCHCAM_OUTPUT  file board_write_output() writes (default: stdout)
 *   PATCHCAM_SERIAL  device or file for the serial port, e.g. a pseudo-terminal
 *                    (default: read stdin, write stdout)
 * Camera: none. LED: no-op. board_exit() flushes and exits the process.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "board.h"

static FILE *input_file;
static FILE *output_file;
static int serial_in = STDIN_FILENO;
static int serial_out = STDOUT_FILENO;
static struct timespec t_start;

static void fail(const char *what, const char *path)
{
    fprintf(stderr, "board_host: %s %s: %s\n", what, path, strerror(errno));
    exit(3);
}

void board_init(void)
{
    const char *in = getenv("PATCHCAM_INPUT");
    const char *out = getenv("PATCHCAM_OUTPUT");
    const char *serial = getenv("PATCHCAM_SERIAL");
    clock_gettime(CLOCK_MONOTONIC, &t_start);
    input_file = stdin;
    output_file = stdout;
    if (in != NULL && in[0] != '\0' && (input_file = fopen(in, "rb")) == NULL) {
        fail("cannot open input", in);
    }
    if (out != NULL && out[0] != '\0' && (output_file = fopen(out, "wb")) == NULL) {
        fail("cannot create output", out);
    }
    if (serial != NULL && serial[0] != '\0') {
        serial_in = serial_out = open(serial, O_RDWR | O_NOCTTY);
        if (serial_in < 0) {
            fail("cannot open serial port", serial);
        }
    }
}

uint32_t board_time_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    const int64_t us = (int64_t)(t.tv_sec - t_start.tv_sec) * 1000000 +
                       (t.tv_nsec - t_start.tv_nsec) / 1000;
    return (uint32_t)us;
}

size_t board_serial_read(uint8_t *buf, size_t cap, uint32_t timeout_us)
{
    struct pollfd pfd = {serial_in, POLLIN, 0};
    if (cap == 0 || poll(&pfd, 1, (int)((timeout_us + 999u) / 1000u)) <= 0) {
        return 0;
    }
    const ssize_t n = read(serial_in, buf, cap);
    return n > 0 ? (size_t)n : 0;
}

void board_serial_write(const uint8_t *buf, size_t len)
{
    if (serial_out == STDOUT_FILENO) {
        fflush(stdout); /* keep order with output written through stdio */
    }
    while (len > 0) {
        const ssize_t n = write(serial_out, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

board_pixfmt_t board_camera_format(uint16_t *width, uint16_t *height)
{
    *width = 0;
    *height = 0;
    return BOARD_PIXFMT_NONE;
}

size_t board_camera_capture(uint8_t *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return 0;
}

size_t board_read_input(uint8_t *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        const size_t n = fread(buf + got, 1, cap - got, input_file);
        if (n == 0) {
            break;
        }
        got += n;
    }
    return got;
}

void board_write_output(const uint8_t *buf, size_t len)
{
    if (fwrite(buf, 1, len, output_file) != len || fflush(output_file) != 0) {
        fprintf(stderr, "board_host: cannot write output: %s\n", strerror(errno));
        exit(3);
    }
}

void board_exit(int status)
{
    fflush(stdout);
    if (output_file != NULL && output_file != stdout) {
        fclose(output_file);
    }
    exit(status);
}

void board_led(int on)
{
    (void)on;
}
