/* board_qemu_m7.c - board.h for QEMU's mps2-an500 (Cortex-M7), the virtual board.
 *
 *   serial   CMSDK APB UART0 at 0x40004000 (QEMU: -serial ..., e.g. tcp:127.0.0.1:PORT)
 *   time     CMSDK APB timer 0 at 0x40000000, free running at 25 MHz; with -icount shift=0
 *            one guest instruction takes 1 ns of virtual time, so time is deterministic
 *   camera   frames from a host file or FIFO over semihosting (format in qemu_m7.h)
 *   in/out   model input and output files over semihosting; board_exit ends QEMU
 *   LED      FPGAIO LED register bit 0
 * See docs/qemu_m7.md.
 */
#include <stdint.h>

#include "board.h"
#include "qemu_m7.h"
#include "semihost.h"

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* CMSDK APB UART0 */
#define UART0_BASE 0x40004000u
#define UART_DATA REG32(UART0_BASE + 0x00u)
#define UART_STATE REG32(UART0_BASE + 0x04u)
#define UART_CTRL REG32(UART0_BASE + 0x08u)
#define UART_BAUDDIV REG32(UART0_BASE + 0x10u)
#define UART_STATE_TX_FULL 1u
#define UART_STATE_RX_FULL 2u
#define UART_CTRL_TX_EN 1u
#define UART_CTRL_RX_EN 2u

/* CMSDK APB timer 0 */
#define TIMER0_BASE 0x40000000u
#define TIMER_CTRL REG32(TIMER0_BASE + 0x00u)
#define TIMER_VALUE REG32(TIMER0_BASE + 0x04u)
#define TIMER_RELOAD REG32(TIMER0_BASE + 0x08u)

/* MPS2 FPGA IO: LEDs */
#define FPGAIO_LED REG32(0x40028000u)

#define TICKS_PER_US (QEMU_M7_PCLK_HZ / 1000000u)

/* Longest silence between bytes of one burst before board_serial_read returns what it has. */
#define SERIAL_GAP_US 2000u

static struct {
    uint32_t last_ticks; /* timer value at the previous board_time_us call */
    uint32_t us;         /* microseconds so far */
    uint32_t sub_ticks;  /* ticks not yet worth a microsecond */
} clock;

static struct {
    int opened; /* 0: not tried yet, 1: open, -1: no camera */
    int fd;
    uint16_t width, height;
    board_pixfmt_t format;
} camera;

static int input_state; /* 0: not opened yet, 1: open (input_fd), 2: finished or missing */
static int input_fd;
static int output_fd = -1;

/* Semihosting command line: "<kernel> [in=PATH] [out=PATH] [cam=PATH]". */
static char cmdline[256];
static const char *input_path = QEMU_M7_INPUT_FILE;
static const char *output_path = QEMU_M7_OUTPUT_FILE;
static const char *camera_path = QEMU_M7_CAMERA_FILE;

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix != '\0') {
        if (*s++ != *prefix++) {
            return 0;
        }
    }
    return 1;
}

static void parse_cmdline(void)
{
    if (sh_get_cmdline(cmdline, sizeof cmdline) != 0) {
        return;
    }
    cmdline[sizeof cmdline - 1] = '\0';
    char *p = cmdline;
    while (*p != '\0') {
        while (*p == ' ') {
            *p++ = '\0';
        }
        char *tok = p;
        while (*p != '\0' && *p != ' ') {
            p++;
        }
        if (*p == ' ') {
            *p++ = '\0';
        }
        if (starts_with(tok, "in=")) {
            input_path = tok + 3;
        } else if (starts_with(tok, "out=")) {
            output_path = tok + 4;
        } else if (starts_with(tok, "cam=")) {
            camera_path = tok + 4;
        }
    }
}

void board_init(void)
{
    UART_BAUDDIV = QEMU_M7_PCLK_HZ / 115200u;
    UART_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN;

    TIMER_CTRL = 0;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 1u; /* enable, no interrupt */
    clock.last_ticks = TIMER_VALUE;

    parse_cmdline();
}

uint32_t board_time_us(void)
{
    /* The 32-bit down counter wraps every 171 s; accumulating the difference at every call
     * extends it to the full 32-bit microsecond range, as long as calls come more often than
     * that (the app loop calls it every frame). */
    uint32_t now = TIMER_VALUE;
    uint32_t ticks = clock.last_ticks - now + clock.sub_ticks;
    clock.last_ticks = now;
    clock.us += ticks / TICKS_PER_US;
    clock.sub_ticks = ticks % TICKS_PER_US;
    return clock.us;
}

size_t board_serial_read(uint8_t *buf, size_t cap, uint32_t timeout_us)
{
    size_t n = 0;
    uint32_t start = board_time_us();
    uint32_t last = start;
    while (n < cap) {
        if (UART_STATE & UART_STATE_RX_FULL) {
            buf[n++] = (uint8_t)UART_DATA;
            last = board_time_us();
            continue;
        }
        uint32_t now = board_time_us();
        if (now - start >= timeout_us || (n > 0 && now - last >= SERIAL_GAP_US)) {
            break;
        }
    }
    return n;
}

void board_serial_write(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (UART_STATE & UART_STATE_TX_FULL) {
        }
        UART_DATA = buf[i];
    }
}

static void camera_open(void)
{
    if (camera.opened != 0) {
        return;
    }
    camera.opened = -1;
    camera.format = BOARD_PIXFMT_NONE;
    int fd = sh_open(camera_path, SH_MODE_RB);
    if (fd < 0) {
        return;
    }
    uint8_t h[QEMU_M7_CAMERA_HEADER_BYTES];
    if (sh_read(fd, h, sizeof h) != sizeof h || !starts_with((const char *)h, "PCAM") ||
        h[8] < BOARD_PIXFMT_GRAY8 || h[8] > BOARD_PIXFMT_RGB888) {
        sh_puts("qemu_m7: camera file has no valid PCAM header\n");
        sh_close(fd);
        return;
    }
    camera.fd = fd;
    camera.width = (uint16_t)(h[4] | (h[5] << 8));
    camera.height = (uint16_t)(h[6] | (h[7] << 8));
    camera.format = (board_pixfmt_t)h[8];
    camera.opened = 1;
}

board_pixfmt_t board_camera_format(uint16_t *width, uint16_t *height)
{
    camera_open();
    *width = camera.opened == 1 ? camera.width : 0;
    *height = camera.opened == 1 ? camera.height : 0;
    return camera.format;
}

size_t board_camera_capture(uint8_t *buf, size_t cap)
{
    camera_open();
    if (camera.opened != 1) {
        return 0;
    }
    size_t bpp = camera.format == BOARD_PIXFMT_GRAY8 ? 1u
                 : camera.format == BOARD_PIXFMT_RGB565 ? 2u
                                                        : 3u;
    size_t bytes = (size_t)camera.width * camera.height * bpp;
    if (bytes > cap) {
        return 0;
    }
    /* A partial frame at the end of the stream counts as no frame. */
    return sh_read(camera.fd, buf, bytes) == bytes ? bytes : 0;
}

size_t board_read_input(uint8_t *buf, size_t cap)
{
    /* A stream: each call continues where the previous one stopped (the app reads once more
     * to check that nothing follows the input), 0 at the end. */
    if (input_state == 0) {
        input_fd = sh_open(input_path, SH_MODE_RB);
        input_state = input_fd < 0 ? 2 : 1;
        if (input_fd < 0) {
            sh_puts("qemu_m7: cannot open the input file\n");
        }
    }
    if (input_state != 1) {
        return 0;
    }
    size_t n = sh_read(input_fd, buf, cap);
    if (n < cap) {
        sh_close(input_fd);
        input_state = 2; /* at the end: stays at the end */
    }
    return n;
}

void board_write_output(const uint8_t *buf, size_t len)
{
    /* The first call creates the file; later calls append, until board_exit closes it. */
    if (output_fd < 0) {
        output_fd = sh_open(output_path, SH_MODE_WB);
        if (output_fd < 0) {
            sh_puts("qemu_m7: cannot create the output file\n");
            return;
        }
    }
    sh_write(output_fd, buf, len);
}

void board_exit(int status)
{
    if (input_state == 1) {
        sh_close(input_fd);
        input_state = 2;
    }
    if (output_fd >= 0) {
        sh_close(output_fd);
        output_fd = -1;
    }
    if (camera.opened == 1) {
        sh_close(camera.fd);
        camera.opened = -1;
    }
    sh_exit(status);
}

void board_led(int on)
{
    FPGAIO_LED = on ? 1u : 0u;
}
