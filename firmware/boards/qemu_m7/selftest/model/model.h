/* A stand-in for a generated model (same API as patchcam/compiler/codegen.py's model.h), used by
 * tests/test_qemu_m7.py to bring the board up without the runtime: output = -input. */
#ifndef MODEL_H
#define MODEL_H

#include <stdint.h>

#define MODEL_NAME "selftest"
#define MODEL_INPUT_BYTES 256
#define MODEL_OUTPUT_BYTES 256
#ifndef MODEL_ARENA_BYTES
#define MODEL_ARENA_BYTES 1024
#endif

int8_t *model_input(void);
const int8_t *model_output(void);
void model_invoke(void);

#endif
