# micropython.mk - `pcmodel` as a user C module of an OpenMV firmware build: the same
# pcmodel.c, generated model and C runtime as the native module, but linked into the
# firmware, so code and weights stay in flash and the whole MicroPython heap is free for the
# arena (docs/boards.md, "OpenMV Cam H7", says when this route is needed).
#
# OpenMV builds every <openmv>/*/micropython.mk (USER_C_MODULES is its top folder), so link
# this folder in and name the patchcam checkout and the generated model:
#
#   ln -s /path/to/patchcam/firmware/boards/openmv_h7/usermod /path/to/openmv/patchcam
#   make -C /path/to/openmv TARGET=OPENMV4 PATCHCAM_ROOT=/path/to/patchcam \
#        PATCHCAM_MODEL_DIR=/path/to/patchcam/build/openmv/person_detect/model

ifeq ($(PATCHCAM_ROOT),)
$(error pcmodel user C module: set PATCHCAM_ROOT to the patchcam checkout)
endif
ifeq ($(PATCHCAM_MODEL_DIR),)
$(error pcmodel user C module: set PATCHCAM_MODEL_DIR (python -m patchcam.targets.openmv generate APP))
endif

PATCHCAM_FW := $(PATCHCAM_ROOT)/firmware

SRC_USERMOD += \
	$(PATCHCAM_FW)/boards/openmv_h7/pcmodel.c \
	$(PATCHCAM_MODEL_DIR)/model.c \
	$(wildcard $(PATCHCAM_FW)/runtime/*.c) \
	$(PATCHCAM_FW)/app/pc_preprocess.c \
	$(PATCHCAM_FW)/app/pc_detect.c

CFLAGS_USERMOD += \
	-I$(PATCHCAM_MODEL_DIR) \
	-I$(PATCHCAM_FW)/runtime \
	-I$(PATCHCAM_FW)/app \
	-I$(PATCHCAM_FW)/boards
