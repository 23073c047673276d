/* test_cam_drivers.c - runs a camera driver against fake_cam_bus.c (driven by
 * tests/test_camera_drivers.py).
 *
 *   test_cam_drivers arducam qvga|qqvga FRAME|- OUT_DIR [options]
 *   test_cam_drivers ov7675  qvga|qqvga rgb565|gray8 FRAME|- OUT_DIR [options]
 *
 * FRAME is the file of bytes the sensor sends (big-endian RGB565, or Y U Y V for ov7675
 * gray8), or - for none. The program prints the fake's transaction log, then
 *   init <cam_err_t>
 *   capture <bytes> <cam_err_t>
 * and writes OUT_DIR/frame.bin (the driver's frame) and, with --model, OUT_DIR/input.bin (the
 * frame through firmware/app/pc_preprocess.c). Options:
 *   --model HxWxC      preprocess the captured frame to an HxWxC int8 input
 *   --cap N            capture buffer size (default: the largest frame + 64)
 *   --wrong-id HH:LL   the sensor reports this product ID
 *   --spi-dead         MISO floats high
 *   --never-done       the capture never completes
 *   --fifo-extra N     the FIFO holds N bytes more than the frame
 *   --short-frame      read_frame delivers a short frame
 *   --no-read-frame    the bus has no read_frame
 *   --no-sensor        nothing answers on I2C
 *   --skip-init        capture without init
 *   --captures N       capture N times (default 1)
 *   --frame-fmt F      what FRAME holds, rgb565 or yuyv, when it is not what the driver is
 *                      asked for (default: what the driver is asked for)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arducam_ov2640.h"
#include "fake_cam_bus.h"
#include "ov7675.h"
#include "pc_preprocess.h"

#define MAX_FRAME (320u * 240u * 2u)

static uint8_t frame_in[MAX_FRAME];
static uint8_t buf[MAX_FRAME + 64];
static int8_t model_in[256 * 256 * 3];

static void die(const char *msg)
{
    fprintf(stderr, "test_cam_drivers: %s\n", msg);
    exit(2);
}

static size_t load(const char *path)
{
    if (strcmp(path, "-") == 0) {
        return 0;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        die("cannot open frame file");
    }
    const size_t n = fread(frame_in, 1, sizeof frame_in, fp);
    fclose(fp);
    return n;
}

static void save(const char *dir, const char *name, const void *data, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, n, fp) != n) {
        die("cannot write output");
    }
    fclose(fp);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        die("usage: see the comment at the top of test_cam_drivers.c");
    }
    const int arducam = strcmp(argv[1], "arducam") == 0;
    if (!arducam && strcmp(argv[1], "ov7675") != 0) {
        die("camera must be arducam or ov7675");
    }
    const int qvga = strcmp(argv[2], "qvga") == 0;
    int gray = 0, a = 3;
    if (!arducam) {
        gray = strcmp(argv[3], "gray8") == 0;
        a = 4;
    }
    if (argc < a + 2) {
        die("missing FRAME or OUT_DIR");
    }
    const char *frame_path = argv[a], *out_dir = argv[a + 1];

    fake_cam_t f;
    fake_cam_init(&f, stdout);
    int with_read_frame = 1, skip_init = 0, captures = 1, frame_fmt = -1;
    unsigned mh = 0, mw = 0, mc = 0;
    size_t cap = sizeof buf;
    if (arducam) {
        f.ov2640_present = 1;
    } else {
        f.ov7675_present = 1;
        f.pid[0] = 0x76;
        f.pid[1] = 0x73;
    }
    for (int i = a + 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        unsigned hi, lo;
        if (strcmp(o, "--model") == 0 && sscanf(v, "%ux%ux%u", &mh, &mw, &mc) == 3) {
            i++;
        } else if (strcmp(o, "--cap") == 0) {
            cap = (size_t)strtoul(v, NULL, 0);
            if (cap > sizeof buf) {
                die("--cap too large");
            }
            i++;
        } else if (strcmp(o, "--wrong-id") == 0 && sscanf(v, "%x:%x", &hi, &lo) == 2) {
            f.pid[0] = (uint8_t)hi;
            f.pid[1] = (uint8_t)lo;
            i++;
        } else if (strcmp(o, "--spi-dead") == 0) {
            f.spi_dead = 1;
        } else if (strcmp(o, "--never-done") == 0) {
            f.never_done = 1;
        } else if (strcmp(o, "--fifo-extra") == 0) {
            f.fifo_extra = (size_t)strtoul(v, NULL, 0);
            i++;
        } else if (strcmp(o, "--short-frame") == 0) {
            f.short_frame = 1;
        } else if (strcmp(o, "--no-read-frame") == 0) {
            with_read_frame = 0;
        } else if (strcmp(o, "--no-sensor") == 0) {
            f.ov2640_present = f.ov7675_present = 0;
        } else if (strcmp(o, "--skip-init") == 0) {
            skip_init = 1;
        } else if (strcmp(o, "--frame-fmt") == 0) {
            frame_fmt = strcmp(v, "yuyv") == 0 ? FAKE_FRAME_YUYV : FAKE_FRAME_RGB565_BE;
            i++;
        } else if (strcmp(o, "--captures") == 0) {
            captures = atoi(v);
            i++;
        } else {
            die("bad option");
        }
    }
    /* The power-on register state was built with the default ID; apply an override. */
    f.ov2640[1][0x0A] = f.ov7675[0x0A] = f.pid[0];
    f.ov2640[1][0x0B] = f.ov7675[0x0B] = f.pid[1];

    uint16_t w = 0, h = 0;
    if (arducam) {
        arducam_ov2640_size(qvga ? ARDUCAM_QVGA : ARDUCAM_QQVGA, &w, &h);
    } else {
        ov7675_size(qvga ? OV7675_QVGA : OV7675_QQVGA, &w, &h);
    }
    f.frame = frame_in;
    f.frame_len = load(frame_path);
    f.frame_w = w;
    f.frame_h = h;
    f.frame_fmt = arducam || !gray ? FAKE_FRAME_RGB565_BE : FAKE_FRAME_YUYV;
    if (frame_fmt >= 0) {
        f.frame_fmt = (fake_frame_fmt_t)frame_fmt;
    }

    const cam_bus_t bus = fake_cam_bus(&f, with_read_frame);
    if (!skip_init) {
        const int e = arducam ? arducam_ov2640_init(&bus, qvga ? ARDUCAM_QVGA : ARDUCAM_QQVGA)
                              : ov7675_init(&bus, qvga ? OV7675_QVGA : OV7675_QQVGA,
                                            gray ? OV7675_OUT_GRAY8 : OV7675_OUT_RGB565);
        printf("init %d\n", e);
        if (e != CAM_OK) {
            return 0;
        }
    }
    size_t n = 0;
    for (int c = 0; c < captures; c++) {
        memset(buf, 0xA5, sizeof buf);
        n = arducam ? arducam_ov2640_capture(&bus, buf, cap) : ov7675_capture(&bus, buf, cap);
        const int e = arducam ? (int)arducam_ov2640_last_error() : (int)ov7675_last_error();
        printf("capture %zu %d\n", n, e);
    }
    if (n == 0) {
        return 0;
    }
    save(out_dir, "frame.bin", buf, n);
    if (mh) {
        const uint8_t fmt = arducam || !gray ? 2 : 1;
        if ((size_t)mh * mw * mc > sizeof model_in ||
            pc_preprocess(buf, w, h, fmt, model_in, (uint16_t)mw, (uint16_t)mh, (uint8_t)mc)) {
            die("pc_preprocess failed");
        }
        save(out_dir, "input.bin", model_in, (size_t)mh * mw * mc);
    }
    return 0;
}
