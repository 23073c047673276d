/* pcmodel.c - a generated patchcam model + the C runtime as a MicroPython module `pcmodel`.
 *
 * The same C that the other boards run (firmware/runtime, the generated model.c, and the app's
 * pc_preprocess.c / pc_detect.c), wrapped for MicroPython two ways from this one file:
 *
 *   - a native module (.mpy) built with MicroPython's natmod tooling (py/dynruntime.mk, see
 *     natmod.mk): MICROPY_ENABLE_DYNRUNTIME is defined, the entry point is mpy_init();
 *   - a user C module compiled into an OpenMV firmware image (micropython.mk):
 *     MP_REGISTER_MODULE.
 *
 * Python API (firmware/boards/openmv_h7/main.py uses it):
 *
 *   pcmodel.info()            -> (model_name, app_name, task, input_w, input_h, input_c,
 *                                 arena_bytes, param_bytes, output_bytes, output_scale_bits,
 *                                 output_zero_point, model_hash, classes, memory_bytes)
 *                             memory_bytes: what set_arena() needs, arena_bytes plus, for a
 *                             model with a fused input (MODEL_FUSED_INPUT), the input after it
 *   pcmodel.set_arena(buf)    give the model its memory: a writable buffer of at least
 *                             memory_bytes, 8-byte aligned (on the camera: frame-buffer memory,
 *                             outside the MicroPython heap). Kept alive by the module.
 *   pcmodel.input()           the model input in that memory (a bytearray view, int8 HWC)
 *   pcmodel.output()          the model output inside the arena (a bytearray view)
 *   pcmodel.invoke()          run the model on input() -> output()
 *   pcmodel.preprocess(src, w, h, fmt)   camera / FRAME image -> input() (docs/protocol.md
 *                             "Preprocessing": resize, colour, q = pixel - 128)
 *   pcmodel.detect(dst, score_q, iou_q10, max_detections) -> n   (detect apps only)
 *                             decode + NMS of output() into dst as n RESULT items of 10 bytes
 *                             (x0 y0 x1 y1 u16 LE, class u8, score i8)
 *
 * Why the arena is a pointer set from Python: a native module's BSS is allocated on the
 * MicroPython heap together with its rodata (the weights), in one block; on the OpenMV Cam H7
 * that heap is split into 64 kB + 264 kB blocks, so weights + arena of a real model do not fit
 * one allocation, while the camera's frame-buffer memory (480 kB) does. The build turns the
 * generated `static int8_t model_arena[...]` into `int8_t *model_arena` (patchcam/targets/openmv.py,
 * make_arena_external) and this file owns that pointer. A fused-input model's whole input
 * (model_frame, outside the arena) is the same kind of BSS, as large as a heap block for a
 * 208x160 RGB model: it becomes `int8_t *model_frame` too, placed after the arena in the same
 * buffer, so the module's BSS is only a few small globals. Nothing here allocates memory.
 */
#include <stdint.h>

#include "app_config.h"
#include "model.h"
#include "pc_preprocess.h"
#if PC_APP_TASK == 1
#include "pc_detect.h"
#endif

#ifdef MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#else
#include "py/obj.h"
#include "py/runtime.h"
#endif

#define PCMODEL_ARENA_ALIGN 8u
#define PCMODEL_ITEM_BYTES 10u /* one detection in a RESULT payload */

/* Defined here; the rewritten model.c declares it `extern` (see the header comment). */
int8_t *model_arena;

#ifdef MODEL_FUSED_INPUT
int8_t *model_frame; /* rewritten model.c: extern, the input model_input() returns */
/* The input starts at the first 8-byte boundary after the arena, as an arena offset would. */
#define PCMODEL_INPUT_OFFSET                                                                 \
    (((size_t)MODEL_ARENA_BYTES + PCMODEL_ARENA_ALIGN - 1u) & ~(size_t)(PCMODEL_ARENA_ALIGN - 1u))
#define PCMODEL_MEMORY_BYTES (PCMODEL_INPUT_OFFSET + (size_t)MODEL_INPUT_BYTES)
#define PCMODEL_TOO_SMALL "pcmodel: buffer too small for arena + input (info()[13] bytes)"
#else
#define PCMODEL_MEMORY_BYTES ((size_t)MODEL_ARENA_BYTES)
#define PCMODEL_TOO_SMALL "pcmodel: arena buffer too small"
#endif

/* The Python object that owns the arena must stay reachable for the GC: a root pointer in
 * the firmware build; a native module cannot add roots, so it stores a module global. */
#ifndef MICROPY_ENABLE_DYNRUNTIME
MP_REGISTER_ROOT_POINTER(mp_obj_t pcmodel_arena_owner);
#endif

static const char *const class_names[PC_APP_NUM_CLASSES] = PC_APP_CLASS_NAMES;

static void need_arena(void)
{
    if (model_arena == 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("pcmodel: call set_arena(buf) first"));
    }
}

static mp_obj_t pcmodel_info(void)
{
    union {
        float f;
        uint32_t u;
    } scale;
    scale.f = MODEL_OUTPUT_SCALE;
    mp_obj_t classes[PC_APP_NUM_CLASSES];
    for (size_t i = 0; i < PC_APP_NUM_CLASSES; i++) {
        const char *s = class_names[i];
        size_t n = 0;
        while (s[n] != '\0') {
            n++;
        }
        classes[i] = mp_obj_new_str(s, n);
    }
    const mp_obj_t items[14] = {
        mp_obj_new_str(MODEL_NAME, sizeof MODEL_NAME - 1),
        mp_obj_new_str(PC_APP_NAME, sizeof PC_APP_NAME - 1),
        mp_obj_new_int(PC_APP_TASK),
        mp_obj_new_int(MODEL_INPUT_W),
        mp_obj_new_int(MODEL_INPUT_H),
        mp_obj_new_int(MODEL_INPUT_C),
        mp_obj_new_int(MODEL_ARENA_BYTES),
        mp_obj_new_int((mp_int_t)MODEL_PARAM_BYTES),
        mp_obj_new_int(MODEL_OUTPUT_BYTES),
        mp_obj_new_int_from_uint(scale.u),
        mp_obj_new_int(MODEL_OUTPUT_ZERO_POINT),
        mp_obj_new_int_from_uint(PC_APP_MODEL_HASH),
        mp_obj_new_tuple(PC_APP_NUM_CLASSES, classes),
        mp_obj_new_int((mp_int_t)PCMODEL_MEMORY_BYTES),
    };
    return mp_obj_new_tuple(14, items);
}
static MP_DEFINE_CONST_FUN_OBJ_0(pcmodel_info_obj, pcmodel_info);

static mp_obj_t pcmodel_set_arena(mp_obj_t buf)
{
    mp_buffer_info_t info;
    mp_get_buffer_raise(buf, &info, MP_BUFFER_WRITE);
    if (info.len < PCMODEL_MEMORY_BYTES) {
        mp_raise_ValueError(MP_ERROR_TEXT(PCMODEL_TOO_SMALL));
    }
    /* The kernels read words from the arena; the planner aligned every offset to 8. */
    if ((uintptr_t)info.buf % PCMODEL_ARENA_ALIGN != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("pcmodel: arena buffer not 8-byte aligned"));
    }
    model_arena = (int8_t *)info.buf;
#ifdef MODEL_FUSED_INPUT
    model_frame = (int8_t *)info.buf + PCMODEL_INPUT_OFFSET;
#endif
#ifdef MICROPY_ENABLE_DYNRUNTIME
    mp_store_global(MP_QSTR__arena, buf);
#else
    MP_STATE_VM(pcmodel_arena_owner) = buf;
#endif
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(pcmodel_set_arena_obj, pcmodel_set_arena);

static mp_obj_t pcmodel_input(void)
{
    need_arena();
    return mp_obj_new_bytearray_by_ref(MODEL_INPUT_BYTES, model_input());
}
static MP_DEFINE_CONST_FUN_OBJ_0(pcmodel_input_obj, pcmodel_input);

static mp_obj_t pcmodel_output(void)
{
    need_arena();
    /* Read-only in spirit: the bytearray view is how MicroPython exposes raw memory. */
    return mp_obj_new_bytearray_by_ref(MODEL_OUTPUT_BYTES, (void *)model_output());
}
static MP_DEFINE_CONST_FUN_OBJ_0(pcmodel_output_obj, pcmodel_output);

static mp_obj_t pcmodel_invoke(void)
{
    need_arena();
    model_invoke();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(pcmodel_invoke_obj, pcmodel_invoke);

static mp_obj_t pcmodel_preprocess(size_t n_args, const mp_obj_t *args)
{
    (void)n_args;
    need_arena();
    mp_buffer_info_t src;
    mp_get_buffer_raise(args[0], &src, MP_BUFFER_READ);
    const mp_int_t w = mp_obj_get_int(args[1]);
    const mp_int_t h = mp_obj_get_int(args[2]);
    const mp_int_t fmt = mp_obj_get_int(args[3]);
    const size_t bpp = pc_pixfmt_bytes((uint8_t)fmt);
    if (w <= 0 || h <= 0 || w > 0xFFFF || h > 0xFFFF || fmt < 0 || fmt > 0xFF || bpp == 0 ||
        src.len < (size_t)w * (size_t)h * bpp) {
        mp_raise_ValueError(MP_ERROR_TEXT("pcmodel: bad image size or format"));
    }
    if (pc_preprocess((const uint8_t *)src.buf, (uint16_t)w, (uint16_t)h, (uint8_t)fmt,
                      model_input(), MODEL_INPUT_W, MODEL_INPUT_H, MODEL_INPUT_C) != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("pcmodel: cannot preprocess this image"));
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(pcmodel_preprocess_obj, 4, 4, pcmodel_preprocess);

#if PC_APP_TASK == 1
/* Scratch for the decoder: module-level (BSS), not the stack, and small. */
pc_detection_t pcmodel_candidates[PC_DET_MAX_CANDIDATES];
pc_detection_t pcmodel_detections[PC_DET_MAX_DETECTIONS];

static mp_obj_t pcmodel_detect(size_t n_args, const mp_obj_t *args)
{
    (void)n_args;
    need_arena();
    mp_buffer_info_t dst;
    mp_get_buffer_raise(args[0], &dst, MP_BUFFER_WRITE);
    const mp_int_t score_q = mp_obj_get_int(args[1]);
    const mp_int_t iou_q10 = mp_obj_get_int(args[2]);
    const mp_int_t max_det = mp_obj_get_int(args[3]);
    if (score_q < -128 || score_q > 128 || iou_q10 < 0 || iou_q10 > 1024 || max_det < 1 ||
        max_det > PC_DET_MAX_DETECTIONS) {
        mp_raise_ValueError(MP_ERROR_TEXT("pcmodel: detection setting out of range"));
    }
    if (dst.len < (size_t)max_det * PCMODEL_ITEM_BYTES) {
        mp_raise_ValueError(MP_ERROR_TEXT("pcmodel: detection buffer too small"));
    }
    /* Built at run time, not as an initialised static: native modules have no data section. */
    pc_det_params_t p;
    p.num_classes = PC_DET_NUM_CLASSES;
    p.stride = PC_DET_STRIDE;
    p.grid_h = PC_DET_GRID_H;
    p.grid_w = PC_DET_GRID_W;
    p.image_w = PC_DET_IMAGE_W;
    p.image_h = PC_DET_IMAGE_H;
    p.zero_point = PC_DET_ZERO_POINT;
    p.q_threshold = (int32_t)score_q;
    p.box_multiplier = PC_DET_BOX_MULTIPLIER;
    p.frac_bits = PC_DET_FRAC_BITS;
    p.iou_q10 = (int32_t)iou_q10;
    p.max_candidates = PC_DET_MAX_CANDIDATES;
    p.max_detections = (uint16_t)max_det;
    p.class_agnostic = PC_DET_CLASS_AGNOSTIC;
    const size_t n = pc_detect_decode(model_output(), &p, pcmodel_candidates, pcmodel_detections);
    uint8_t *o = (uint8_t *)dst.buf;
    for (size_t i = 0; i < n; i++, o += PCMODEL_ITEM_BYTES) {
        const pc_detection_t *d = &pcmodel_detections[i];
        const uint16_t v[4] = {d->x0, d->y0, d->x1, d->y1};
        for (size_t k = 0; k < 4; k++) {
            o[2 * k] = (uint8_t)(v[k] & 0xFFu);
            o[2 * k + 1] = (uint8_t)(v[k] >> 8);
        }
        o[8] = d->cls;
        o[9] = (uint8_t)d->score;
    }
    return mp_obj_new_int((mp_int_t)n);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(pcmodel_detect_obj, 4, 4, pcmodel_detect);
#endif

#ifdef MICROPY_ENABLE_DYNRUNTIME

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args)
{
    MP_DYNRUNTIME_INIT_ENTRY
    model_arena = 0; /* BSS is zeroed on load; explicit for a re-import */
#ifdef MODEL_FUSED_INPUT
    model_frame = 0;
#endif
    mp_store_global(MP_QSTR_info, MP_OBJ_FROM_PTR(&pcmodel_info_obj));
    mp_store_global(MP_QSTR_set_arena, MP_OBJ_FROM_PTR(&pcmodel_set_arena_obj));
    mp_store_global(MP_QSTR_input, MP_OBJ_FROM_PTR(&pcmodel_input_obj));
    mp_store_global(MP_QSTR_output, MP_OBJ_FROM_PTR(&pcmodel_output_obj));
    mp_store_global(MP_QSTR_invoke, MP_OBJ_FROM_PTR(&pcmodel_invoke_obj));
    mp_store_global(MP_QSTR_preprocess, MP_OBJ_FROM_PTR(&pcmodel_preprocess_obj));
#if PC_APP_TASK == 1
    mp_store_global(MP_QSTR_detect, MP_OBJ_FROM_PTR(&pcmodel_detect_obj));
#endif
    MP_DYNRUNTIME_INIT_EXIT
}

#else

static const mp_rom_map_elem_t pcmodel_globals_table[] = {
    {MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_pcmodel)},
    {MP_ROM_QSTR(MP_QSTR_info), MP_ROM_PTR(&pcmodel_info_obj)},
    {MP_ROM_QSTR(MP_QSTR_set_arena), MP_ROM_PTR(&pcmodel_set_arena_obj)},
    {MP_ROM_QSTR(MP_QSTR_input), MP_ROM_PTR(&pcmodel_input_obj)},
    {MP_ROM_QSTR(MP_QSTR_output), MP_ROM_PTR(&pcmodel_output_obj)},
    {MP_ROM_QSTR(MP_QSTR_invoke), MP_ROM_PTR(&pcmodel_invoke_obj)},
    {MP_ROM_QSTR(MP_QSTR_preprocess), MP_ROM_PTR(&pcmodel_preprocess_obj)},
#if PC_APP_TASK == 1
    {MP_ROM_QSTR(MP_QSTR_detect), MP_ROM_PTR(&pcmodel_detect_obj)},
#endif
};
static MP_DEFINE_CONST_DICT(pcmodel_globals, pcmodel_globals_table);

const mp_obj_module_t pcmodel_user_cmodule = {
    .base = {&mp_type_module},
    .globals = (mp_obj_dict_t *)&pcmodel_globals,
};

MP_REGISTER_MODULE(MP_QSTR_pcmodel, pcmodel_user_cmodule);

#endif
