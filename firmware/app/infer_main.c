/* infer_main.c - the board-independent test runner: one input in, one inference, output out.
 *
 * Reads MODEL_INPUT_BYTES from board_read_input() straight into the model's input (inside the
 * arena; for a patch schedule with fused input, MODEL_FUSED_INPUT, model_input() is a frame
 * buffer outside the arena and model_invoke() = model_invoke_frame(model_input()), so this
 * runner is the same for both), times model_invoke() with board_time_us(), writes
 * MODEL_OUTPUT_BYTES with board_write_output(), prints one report line on the serial port and
 * exits with status 0.
 * Input of the wrong size: a message on the serial port and exit status 2.
 *
 * board_read_input() is read as a stream: after the input, a second read must return 0 bytes
 * (this is how a too-long input is caught without a buffer larger than the input).
 * Uses no stdio, so the same file links on every board.
 */
#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "model.h"

static void serial_puts(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    board_serial_write((const uint8_t *)s, n);
}

static void serial_putu(uint32_t v)
{
    char buf[11];
    size_t i = sizeof buf;
    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u && i > 0);
    board_serial_write((const uint8_t *)&buf[i], sizeof buf - i);
}

int main(void)
{
    uint8_t extra = 0;
    board_init();

    const size_t got = board_read_input((uint8_t *)model_input(), MODEL_INPUT_BYTES);
    const size_t more = got == MODEL_INPUT_BYTES ? board_read_input(&extra, 1) : 0;
    if (got != MODEL_INPUT_BYTES || more != 0) {
        serial_puts("infer: input must be exactly ");
        serial_putu(MODEL_INPUT_BYTES);
        serial_puts(" bytes (" MODEL_NAME "), got ");
        serial_putu((uint32_t)got);
        serial_puts(more ? " and more\n" : "\n");
        board_exit(2);
        return 2;
    }

    board_led(1);
    const uint32_t t0 = board_time_us();
    model_invoke();
    const uint32_t us = board_time_us() - t0;
    board_led(0);

    board_write_output((const uint8_t *)model_output(), MODEL_OUTPUT_BYTES);
    serial_puts("infer: model=" MODEL_NAME " invoke_us=");
    serial_putu(us);
    serial_puts(" macs=");
    serial_putu((uint32_t)MODEL_MACS);
    serial_puts(" arena_bytes=");
    serial_putu(MODEL_ARENA_BYTES);
    serial_puts("\n");
    board_exit(0);
    return 0;
}
