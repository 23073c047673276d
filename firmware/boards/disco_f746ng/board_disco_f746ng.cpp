/* board_disco_f746ng.cpp - board.h for the STM32F746G-DISCO on Mbed OS Community Edition.
 *
 *   serial   USART1 (PA9/PB7) = the ST-LINK virtual COM port (/dev/ttyACM0), 921600 baud
 *   time     Mbed's 1 MHz microsecond ticker (a hardware timer, no RTOS needed)
 *   camera   Arducam Mini 2MP Plus (OV2640 behind the ArduCAM SPI FIFO) on the Arduino header:
 *            SPI D10 CS, D11 MOSI, D12 MISO, D13 SCK; I2C (SCCB) D14 SDA, D15 SCL;
 *            RGB565 160x120 (QQVGA) frames, driver firmware/drivers/arducam_ov2640.c
 *   LED      none: LD1 is PI1, which is also D13, the camera's SCK (see board_led)
 *   screen   with PC_APP_SCREEN: the 480x272 LCD, two framebuffers in SDRAM (disco_lcd.c)
 * See docs/boards.md for wiring and flashing.
 *
 * C++ only because Mbed's drivers are C++ classes; the app loop calls the C functions below.
 * Every object is static: nothing here allocates.
 */
#include "mbed.h"

extern "C" {
#include "board.h"
}

/* Built without the driver (firmware/drivers/) the image still links and reports no camera,
 * so the protocol side can be brought up first. */
#if __has_include("arducam_ov2640.h")
extern "C" {
#include "arducam_ov2640.h"
#include "cam_bus.h"
}
#define PC_HAVE_CAMERA 1
#else
#warning "firmware/drivers/arducam_ov2640.h not found: this image reports no camera"
#define PC_HAVE_CAMERA 0
#endif

#ifndef PC_SERIAL_BAUD
#define PC_SERIAL_BAUD 921600
#endif

/* QQVGA (160x120): the largest RGB565 frame that leaves the 320 kB of SRAM to the biggest
 * app's arena (QVGA would take 150 kB). The app loop resizes it to the model input. */
#define CAM_RES ARDUCAM_QQVGA
/* The ArduCAM Mini 2MP Plus's SPI interface runs up to 8 MHz. */
#define CAM_SPI_HZ 8000000
#define CAM_I2C_HZ 100000

static BufferedSerial serial(CONSOLE_TX, CONSOLE_RX, PC_SERIAL_BAUD);
static Timer clock_us;

static int camera_ok;
static uint16_t cam_width, cam_height;

#if PC_HAVE_CAMERA
static SPI cam_spi(ARDUINO_UNO_D11, ARDUINO_UNO_D12, ARDUINO_UNO_D13);
static DigitalOut cam_cs(ARDUINO_UNO_D10, 1);
static I2C cam_i2c(ARDUINO_UNO_D14, ARDUINO_UNO_D15);

/* ---- the camera driver's bus (firmware/drivers/cam_bus.h) ---- */

static int bus_i2c_write(void *, uint8_t addr7, const uint8_t *data, size_t len)
{
    return cam_i2c.write(addr7 << 1, reinterpret_cast<const char *>(data), (int)len) == 0 ? 0
                                                                                        : -1;
}

static int bus_i2c_read(void *, uint8_t addr7, uint8_t *data, size_t len)
{
    return cam_i2c.read(addr7 << 1, reinterpret_cast<char *>(data), (int)len) == 0 ? 0 : -1;
}

/* One transfer = one chip-select window: the ArduCAM latches a register access or a FIFO
 * burst per CS low period. rx may be null (discard) or tx itself: Mbed's STM32 block write
 * sends each byte before it stores the answer, so the in-place frame burst is safe. */
static int bus_spi_xfer(void *, const uint8_t *tx, uint8_t *rx, size_t len)
{
    cam_cs = 0;
    const int n = cam_spi.write(reinterpret_cast<const char *>(tx), (int)len,
                                reinterpret_cast<char *>(rx), rx != nullptr ? (int)len : 0);
    cam_cs = 1;
    return n == (int)len ? 0 : -1;
}

static void bus_delay_ms(void *, uint32_t ms)
{
    ThisThread::sleep_for(std::chrono::milliseconds(ms));
}

static const cam_bus_t cam_bus = {
    nullptr, bus_i2c_write, bus_i2c_read, bus_spi_xfer, bus_delay_ms,
    nullptr, /* read_frame: the ArduCAM buffers the frame; the driver reads it over SPI */
};
#endif

/* ---- board.h ---- */

extern "C" void board_init(void)
{
    clock_us.start();
    serial.set_blocking(false); /* board_serial_read polls with its own timeout */
#if PC_HAVE_CAMERA
    cam_spi.format(8, 0);
    cam_spi.frequency(CAM_SPI_HZ);
    cam_i2c.frequency(CAM_I2C_HZ);
    camera_ok = arducam_ov2640_init(&cam_bus, CAM_RES) == CAM_OK;
    arducam_ov2640_size(CAM_RES, &cam_width, &cam_height);
#else
    camera_ok = 0;
#endif
#if PC_APP_SCREEN
    board_screen_init(); /* no screen if it fails: board_screen_back() is then NULL */
#endif
}

extern "C" uint32_t board_time_us(void)
{
    return (uint32_t)clock_us.elapsed_time().count();
}

extern "C" size_t board_serial_read(uint8_t *buf, size_t cap, uint32_t timeout_us)
{
    const uint32_t start = board_time_us();
    for (;;) {
        const ssize_t n = serial.read(buf, cap);
        if (n > 0) {
            return (size_t)n;
        }
        if (board_time_us() - start >= timeout_us) {
            return 0;
        }
    }
}

extern "C" void board_serial_write(const uint8_t *buf, size_t len)
{
    while (len > 0) { /* non-blocking mode: write returns what fitted the TX buffer */
        const ssize_t n = serial.write(buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        }
    }
}

extern "C" board_pixfmt_t board_camera_format(uint16_t *width, uint16_t *height)
{
    *width = camera_ok ? cam_width : 0;
    *height = camera_ok ? cam_height : 0;
    return camera_ok ? BOARD_PIXFMT_RGB565 : BOARD_PIXFMT_NONE;
}

extern "C" size_t board_camera_capture(uint8_t *buf, size_t cap)
{
#if PC_HAVE_CAMERA
    return camera_ok ? arducam_ov2640_capture(&cam_bus, buf, cap) : 0;
#else
    (void)buf;
    (void)cap;
    return 0;
#endif
}

/* The test-runner hooks (board.h): a real board has no input file and nowhere to exit to. */
extern "C" size_t board_read_input(uint8_t *, size_t)
{
    return 0;
}

extern "C" void board_write_output(const uint8_t *, size_t)
{
}

extern "C" void board_exit(int)
{
    for (;;) {
    }
}

/* LD1 sits on PI1, which is also the Arduino header's D13 = the camera's SCK: driving it as an
 * LED would corrupt SPI, so this board shows no inference LED. */
extern "C" void board_led(int)
{
}
