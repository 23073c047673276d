/* The stand-in model: negates its input (int8 wrap-around), through the FPU on purpose so a
 * board that forgot to enable the FPU faults here. */
#include "model.h"

static int8_t arena[MODEL_ARENA_BYTES] __attribute__((aligned(8)));
static volatile float one = 1.0f;

int8_t *model_input(void) { return arena; }
const int8_t *model_output(void) { return arena + MODEL_INPUT_BYTES; }

#ifdef SELFTEST_EXACT_INVOKE
/* A model_invoke of known length for checking the instruction counter: 2 setup instructions,
 * 100 iterations of 3 (one reads a timer register, so QEMU's -icount ends the block there),
 * and the return: 303 instructions. */
__attribute__((naked, noinline)) void model_invoke(void)
{
    __asm__ volatile(
        "ldr r1, =0x40000004\n\t"
        "movs r0, #100\n\t"
        "1: ldr r2, [r1]\n\t"
        "subs r0, #1\n\t"
        "bne 1b\n\t"
        "bx lr\n\t"
        ".ltorg\n\t");
}
#else
void model_invoke(void)
{
    const int8_t *in = model_input();
    int8_t *out = arena + MODEL_INPUT_BYTES;
    float k = -one;
    for (int i = 0; i < MODEL_INPUT_BYTES; i++) {
        out[i] = (int8_t)(uint8_t)(int)((float)in[i] * k);
    }
}
#endif
