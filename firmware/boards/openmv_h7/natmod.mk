# natmod.mk - build pcmodel.mpy (a MicroPython native module) from the C runtime and one
# generated model, with MicroPython's natmod tooling (py/dynruntime.mk).
#
#   mkdir -p build/openmv/vww/armv7emsp && cd build/openmv/vww/armv7emsp
#   echo 'include /path/to/patchcam/firmware/boards/openmv_h7/natmod.mk' > Makefile
#   make MPY_DIR=/path/to/micropython MODEL_DIR=/path/to/build/openmv/vww/model ARCH=armv7emsp
#
# (dynruntime.mk's compile rules depend on a file named Makefile in the current folder, hence
# the one-line Makefile; `python -m patchcam.targets.openmv natmod vww` does all of this.)
# MODEL_DIR holds model.c / model.h / app_config.h as written by `python -m patchcam.targets.openmv
# generate` (model.c with its arena turned into a pointer, see pcmodel.c). ARCH: armv7emsp for
# the OpenMV Cam H7 / H7 Plus firmware (Cortex-M7 built with a single-precision FPU), x64 to
# load the module into MicroPython's unix port for the bit-exactness check. pyelftools must be
# importable by $(PYTHON) (mpy_ld.py needs it).

BOARD_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
FW_DIR := $(BOARD_DIR)/../..

MOD = pcmodel
ARCH ?= armv7emsp
MODEL_DIR ?= build/openmv/model

# dynruntime.mk compiles each SRC to $(BUILD)/<path>.o; absolute paths keep them apart.
SRC = $(BOARD_DIR)/pcmodel.c $(MODEL_DIR)/model.c \
      $(wildcard $(FW_DIR)/runtime/*.c) \
      $(FW_DIR)/app/pc_preprocess.c $(FW_DIR)/app/pc_detect.c

CFLAGS += -I$(MODEL_DIR) -I$(FW_DIR)/runtime -I$(FW_DIR)/app -I$(FW_DIR)/boards
CFLAGS += -std=c99 -Wall -Wextra -Werror

include $(MPY_DIR)/py/dynruntime.mk

# After dynruntime.mk's -Os: the kernels are the hot loop, and the other boards use -O2 too.
CFLAGS += -O2

# py/dynruntime.h (inline helpers with unused parameters, the fixed mpy_init signature)
# trips these two in the wrapper; the model and the runtime keep the full warning set.
$(BUILD)/$(BOARD_DIR)/pcmodel.o: CFLAGS += -Wno-unused-parameter -Wno-missing-field-initializers
