/* selftest_main.c - the test runner app for the stand-in model, with ways to misbehave.
 * SELFTEST_MODE: 0 run the model (default), 1 hang, 2 crash (bus fault), 3 exit status 7,
 * 4 run and also write the inference time, the camera format and every camera frame,
 * 5 call malloc (which must not link). */
#include <stdint.h>
#if SELFTEST_MODE == 5
#include <stdlib.h>
#endif

#include "board.h"
#include "model.h"

#ifndef SELFTEST_MODE
#define SELFTEST_MODE 0
#endif

#if SELFTEST_MODE == 4
static uint8_t frame[64 * 64 * 3];
#endif

int main(void)
{
    board_init();
    if (board_read_input((uint8_t *)model_input(), MODEL_INPUT_BYTES) != MODEL_INPUT_BYTES) {
        return 2;
    }
#if SELFTEST_MODE == 1
    for (;;) {
        __asm__ volatile("" ::: "memory");
    }
#elif SELFTEST_MODE == 2
    *(volatile uint32_t *)0xF0000000u = 1u;
#elif SELFTEST_MODE == 3
    return 7;
#elif SELFTEST_MODE == 5
    board_write_output(malloc(16), 1);
#endif
    uint32_t t0 = board_time_us();
    model_invoke();
    uint32_t t1 = board_time_us();
    board_write_output((const uint8_t *)model_output(), MODEL_OUTPUT_BYTES);
#if SELFTEST_MODE == 4
    uint32_t dt = t1 - t0;
    board_write_output((const uint8_t *)&dt, sizeof dt);
    uint16_t w, h;
    uint8_t fmt = (uint8_t)board_camera_format(&w, &h);
    board_write_output(&fmt, 1);
    size_t n;
    while ((n = board_camera_capture(frame, sizeof frame)) > 0) {
        board_write_output(frame, n);
    }
    board_serial_write((const uint8_t *)"uart ok\n", 8);
#else
    (void)t0;
    (void)t1;
#endif
    return 0;
}
