/* board_host.c - the host (POSIX) board: the same firmware as a process (docs/design.md §4.6).
 *
 * Environment:
 *   PATCHCAM_INPUT   file board_read_input() reads (default: stdin)
 *   PATCHCAM_OUTPUT  file board_write_output() writes (default: stdout)
 *   PATCHCAM_SERIAL  the serial port: a device or file (e.g. /dev/pts/3), or `pty` to open
 *                    a new pseudo-terminal (its slave's name is printed on stderr as
 *                    "board_host: serial on /dev/pts/N"; `pty:PATH` also makes PATH a
 *                    symlink to it). Default: read stdin, write stdout; end of stdin exits
 *                    the process with status 0 (so a pipe can drive the app loop).
 *   PATCHCAM_CAMERA  a virtual camera file: 16-byte PCAM header + frames, the same format as
 *                    the qemu_m7 board's camera.raw (docs/qemu_m7.md). Default: no camera.
 * LED: no-op. board_exit() flushes and exits the process.
 *
 * With a pty the board keeps the slave side open itself (in raw mode), so a host may open,
 * close and reopen it (a host-side reset) without the board seeing a hangup; bytes the board
 * writes while no host reads are dropped after 2 s, as a UART with nobody listening would.
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "board.h"

static FILE *input_file;
static FILE *output_file;
static int serial_in = STDIN_FILENO;
static int serial_out = STDOUT_FILENO;
static int serial_is_pty;
static int serial_is_stdin = 1;
static int pty_slave = -1;
static struct timespec t_start;

static struct {
    FILE *file;
    uint16_t width, height;
    board_pixfmt_t format;
} camera;

static void fail(const char *what, const char *path)
{
    fprintf(stderr, "board_host: %s %s: %s\n", what, path, strerror(errno));
    exit(3);
}

static void open_pty(const char *link)
{
    const int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        fail("cannot open a pseudo-terminal", "/dev/ptmx");
    }
    const char *name = ptsname(master);
    if (name == NULL) {
        fail("cannot name the pseudo-terminal", "/dev/ptmx");
    }
    /* Hold the slave open in raw mode: no echo, no line editing, 8 bits through. */
    pty_slave = open(name, O_RDWR | O_NOCTTY);
    struct termios t;
    if (pty_slave < 0 || tcgetattr(pty_slave, &t) != 0) {
        fail("cannot open", name);
    }
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag &= ~(tcflag_t)OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    t.c_cflag |= CS8;
    if (tcsetattr(pty_slave, TCSANOW, &t) != 0) {
        fail("cannot set raw mode on", name);
    }
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    serial_in = serial_out = master;
    serial_is_pty = 1;
    serial_is_stdin = 0;
    if (link != NULL && link[0] != '\0') {
        unlink(link);
        if (symlink(name, link) != 0) {
            fail("cannot create the symlink", link);
        }
    }
    fprintf(stderr, "board_host: serial on %s\n", name);
    fflush(stderr);
}

static void open_camera(const char *path)
{
    uint8_t h[16];
    if (path == NULL || path[0] == '\0') {
        return;
    }
    if ((camera.file = fopen(path, "rb")) == NULL) {
        fail("cannot open camera", path);
    }
    if (fread(h, 1, sizeof h, camera.file) != sizeof h || memcmp(h, "PCAM", 4) != 0 ||
        h[8] < BOARD_PIXFMT_GRAY8 || h[8] > BOARD_PIXFMT_RGB888) {
        fprintf(stderr, "board_host: camera file %s has no valid PCAM header\n", path);
        fclose(camera.file);
        camera.file = NULL;
        return;
    }
    camera.width = (uint16_t)(h[4] | h[5] << 8);
    camera.height = (uint16_t)(h[6] | h[7] << 8);
    camera.format = (board_pixfmt_t)h[8];
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
    if (serial != NULL && (strcmp(serial, "pty") == 0 || strncmp(serial, "pty:", 4) == 0)) {
        open_pty(serial[3] == ':' ? serial + 4 : NULL);
    } else if (serial != NULL && serial[0] != '\0') {
        serial_in = serial_out = open(serial, O_RDWR | O_NOCTTY);
        serial_is_stdin = 0;
        if (serial_in < 0) {
            fail("cannot open serial port", serial);
        }
    }
    open_camera(getenv("PATCHCAM_CAMERA"));
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
    if (n == 0 && serial_is_stdin) {
        board_exit(0); /* the host closed the pipe: nothing more will come */
    }
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
        if (n < 0 && serial_is_pty && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {serial_out, POLLOUT, 0};
            if (poll(&pfd, 1, 2000) > 0) {
                continue;
            }
            return; /* nobody reads: drop the rest, like a UART */
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
    *width = camera.file != NULL ? camera.width : 0;
    *height = camera.file != NULL ? camera.height : 0;
    return camera.file != NULL ? camera.format : BOARD_PIXFMT_NONE;
}

size_t board_camera_capture(uint8_t *buf, size_t cap)
{
    if (camera.file == NULL) {
        return 0;
    }
    const size_t bytes = (size_t)camera.width * camera.height * (size_t)camera.format;
    if (bytes > cap) {
        return 0;
    }
    /* A partial frame at the end of the file counts as no frame. */
    return fread(buf, 1, bytes, camera.file) == bytes ? bytes : 0;
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
