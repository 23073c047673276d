/* board_nano33ble_sense.cpp - board.h for the Arduino Nano 33 BLE Sense on Mbed OS Community
 * Edition, with the OV7675 camera of the Arduino TinyML kit (its shield wires the camera).
 *
 *   serial   native USB (CDC ACM): /dev/ttyACM0 on the host; the baud rate is ignored
 *   time     Mbed's 1 MHz microsecond ticker
 *   camera   OV7675: SCCB on the shield's I2C (A4 SDA, A5 SCL); 8-bit parallel bus sampled by
 *            GPIO polling; 16 MHz XCLK from the I2S master clock; RGB565 160x120 (QQVGA);
 *            driver firmware/drivers/ov7675.c
 *   LED      the orange LED (P0.13, D13: not used by the shield)
 * See docs/boards.md for the kit, flashing (bossac, double-tap reset) and limits.
 *
 * C++ only because Mbed's drivers are C++ classes; the app loop calls the C functions below.
 * Every object is static: nothing here allocates.
 */
#include "USBSerial.h"
#include "mbed.h"

extern "C" {
#include "board.h"
}

#if __has_include("ov7675.h")
extern "C" {
#include "cam_bus.h"
#include "ov7675.h"
}
#define PC_HAVE_CAMERA 1
#else
#warning "firmware/drivers/ov7675.h not found: this image reports no camera"
#define PC_HAVE_CAMERA 0
#endif

/* QQVGA RGB565 (38400 bytes): the models take RGB input, and 256 kB of SRAM leaves no room
 * for QVGA next to the detection apps' arenas. The app loop resizes it to the model input. */
#define CAM_RES OV7675_QQVGA
#define CAM_I2C_HZ 100000

/* Arduino's USB IDs for this board, so the host's Arduino udev rules and tools know it. */
#define USB_VID 0x2341
#define USB_PID 0x805A

static USBSerial usb(false, USB_VID, USB_PID); /* false: do not wait for a host at boot */
static Timer clock_us;
static DigitalOut led(LED1, 0);
static int camera_ok;

#if PC_HAVE_CAMERA
/* The TinyML shield's camera pins, as nRF52840 GPIOs (Arduino pin -> port.pin):
 *   VSYNC D8 = P0.21, HREF A1 = P0.05, PCLK A0 = P0.04, XCLK D9 = P0.27,
 *   data bit 0..7 = D10 P1.02, D1 P1.10, D0 P1.03, D2 P1.11, D3 P1.12, D5 P1.13, D6 P1.14,
 *   D4 P1.15. All eight data bits are on port 1, so one read of P1.IN gives a whole byte. */
#define CAM_VSYNC (1u << 21)
#define CAM_HREF (1u << 5)
#define CAM_PCLK (1u << 4)
#define CAM_XCLK_PIN 27u /* on port 0 */

static I2C cam_i2c(I2C_SDA0, I2C_SCL0); /* A4 / A5 */
static DigitalIn cam_in[] = {
    DigitalIn(P0_21), DigitalIn(P0_5),  DigitalIn(P0_4),  DigitalIn(P1_2),
    DigitalIn(P1_10), DigitalIn(P1_3),  DigitalIn(P1_11), DigitalIn(P1_12),
    DigitalIn(P1_13), DigitalIn(P1_14), DigitalIn(P1_15),
};
static uint16_t cam_width, cam_height;

/* Busy-wait budget for one edge: ~0.5 s at 64 MHz, far longer than any line or frame gap
 * of the sensor; a missing camera or a loose wire ends the capture instead of hanging. */
#define EDGE_SPINS 8000000u

static inline uint8_t cam_byte(uint32_t p1)
{
    return (uint8_t)(((p1 >> 2) & 0x01u) | ((p1 >> 9) & 0x02u) | ((p1 >> 1) & 0x04u) |
                     ((p1 >> 8) & 0xF8u));
}

/* Wait until (P0.IN & mask) == want; 0 on timeout. */
static inline int wait_p0(uint32_t mask, uint32_t want)
{
    for (uint32_t n = EDGE_SPINS; n > 0; n--) {
        if ((NRF_P0->IN & mask) == want) {
            return 1;
        }
    }
    return 0;
}

/* cam_bus.h read_frame: one frame, VSYNC to VSYNC, every byte clocked while HREF is high.
 * Interrupts are off while sampling: at QQVGA the pixel clock leaves ~10 CPU cycles per byte,
 * and one USB interrupt would lose bytes. USB NAKs the host meanwhile, which is legal. */
static size_t bus_read_frame(void *, uint8_t *buf, size_t cap)
{
    const uint32_t line = CAM_PCLK | CAM_HREF;
    size_t n = 0;
    uint32_t s = 0;
    uint32_t spins = 1;
    core_util_critical_section_enter();
    /* VSYNC pulses high between frames; the first line follows its falling edge. */
    if (wait_p0(CAM_VSYNC, CAM_VSYNC) && wait_p0(CAM_VSYNC, 0)) {
        while (n < cap && spins > 0) {
            /* The next line (HREF high) or the end of the frame (VSYNC high). */
            spins = EDGE_SPINS;
            while (((s = NRF_P0->IN) & (CAM_HREF | CAM_VSYNC)) == 0 && --spins > 0) {
            }
            if (spins == 0 || (s & CAM_VSYNC) != 0) {
                break;
            }
            /* The sensor changes data on PCLK's falling edge: sample after each rising one.
             * HREF falling ends the line whichever edge we wait for (PCLK may stop then). */
            while (n < cap) {
                spins = EDGE_SPINS;
                while (((s = NRF_P0->IN) & line) == line && --spins > 0) {
                }
                if ((s & CAM_HREF) == 0 || spins == 0) {
                    break;
                }
                spins = EDGE_SPINS;
                while (((s = NRF_P0->IN) & line) == CAM_HREF && --spins > 0) {
                }
                if ((s & CAM_HREF) == 0 || spins == 0) {
                    break;
                }
                buf[n++] = cam_byte(NRF_P1->IN);
            }
        }
    }
    core_util_critical_section_exit();
    return n;
}

static int bus_i2c_write(void *, uint8_t addr7, const uint8_t *data, size_t len)
{
    return cam_i2c.write(addr7 << 1, reinterpret_cast<const char *>(data), (int)len) == 0 ? 0
                                                                                        : -1;
}

static int bus_i2c_read(void *, uint8_t addr7, uint8_t *data, size_t len)
{
    return cam_i2c.read(addr7 << 1, reinterpret_cast<char *>(data), (int)len) == 0 ? 0 : -1;
}

static void bus_delay_ms(void *, uint32_t ms)
{
    ThisThread::sleep_for(std::chrono::milliseconds(ms));
}

static const cam_bus_t cam_bus = {
    nullptr, bus_i2c_write, bus_i2c_read,
    nullptr, /* spi_xfer: a parallel-bus sensor */
    bus_delay_ms, bus_read_frame,
};

/* The sensor needs a clock before it answers on SCCB. The I2S peripheral's master clock
 * output is the one nRF52840 source of a steady 16 MHz on any pin (32 MHz / 2). */
static void xclk_start(void)
{
    NRF_I2S->CONFIG.MCKFREQ = 0x80000000UL; /* MCKFREQ = 32MDIV2 (nRF52840 PS, I2S) */
    NRF_I2S->CONFIG.RATIO = I2S_CONFIG_RATIO_RATIO_32X;
    NRF_I2S->CONFIG.MODE = I2S_CONFIG_MODE_MODE_Master;
    NRF_I2S->CONFIG.MCKEN = I2S_CONFIG_MCKEN_MCKEN_Enabled;
    NRF_I2S->PSEL.MCK = (0u << I2S_PSEL_MCK_PORT_Pos) | (CAM_XCLK_PIN << I2S_PSEL_MCK_PIN_Pos);
    NRF_I2S->ENABLE = I2S_ENABLE_ENABLE_Enabled;
    NRF_I2S->TASKS_START = 1;
}
#endif

/* ---- board.h ---- */

extern "C" void board_init(void)
{
    clock_us.start();
    usb.connect();
#if PC_HAVE_CAMERA
    for (DigitalIn &pin : cam_in) {
        pin.mode(PullNone);
    }
    cam_i2c.frequency(CAM_I2C_HZ);
    xclk_start();
    ThisThread::sleep_for(std::chrono::milliseconds(10));
    camera_ok = ov7675_init(&cam_bus, CAM_RES, OV7675_OUT_RGB565) == CAM_OK;
    ov7675_size(CAM_RES, &cam_width, &cam_height);
#else
    camera_ok = 0;
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
        uint32_t n = 0;
        usb.receive_nb(buf, (uint32_t)cap, &n);
        if (n > 0) {
            return n;
        }
        if (board_time_us() - start >= timeout_us) {
            return 0;
        }
    }
}

extern "C" void board_serial_write(const uint8_t *buf, size_t len)
{
    /* Nobody listening (no host, or the port is closed): drop, as a UART would. */
    if (usb.connected()) {
        usb.send(const_cast<uint8_t *>(buf), (uint32_t)len);
    }
}

extern "C" board_pixfmt_t board_camera_format(uint16_t *width, uint16_t *height)
{
#if PC_HAVE_CAMERA
    *width = camera_ok ? cam_width : 0;
    *height = camera_ok ? cam_height : 0;
#else
    *width = *height = 0;
#endif
    return camera_ok ? BOARD_PIXFMT_RGB565 : BOARD_PIXFMT_NONE;
}

extern "C" size_t board_camera_capture(uint8_t *buf, size_t cap)
{
#if PC_HAVE_CAMERA
    return camera_ok ? ov7675_capture(&cam_bus, buf, cap) : 0;
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

extern "C" void board_led(int on)
{
    led = on;
}
