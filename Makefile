# patchcam - every user-facing command. `make help` lists them.
# Each target depends on the set-up stamp, so a fresh clone needs no separate set-up step.

PY      := .venv/bin/python
PC      := .venv/bin/patchcam
STAMP   := .venv/.setup-done
JOBS    ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup test test-fast lint train bench plan demo view firmware flash clean
APP     ?= vww
BAUD    ?= 921600
FRAMES  ?= 12
BOARD   ?= qemu_m7

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

setup: $(STAMP)  ## install Debian packages (if missing) and the Python deps into .venv [WINDOW=1: viewer window] [BOARDS=1: board builds]
	@if [ -n "$(WINDOW)$(BOARDS)" ]; then WINDOW="$(WINDOW)" BOARDS="$(BOARDS)" bash scripts/setup.sh; fi

lint: $(STAMP)  ## ruff on all Python code
	$(PY) -m ruff check .

test: $(STAMP) lint  ## run the whole test suite (what CI runs)
	$(PY) -m pytest -n $(JOBS) --dist loadfile

test-fast: $(STAMP)  ## the tests not marked slow
	$(PY) -m pytest -n $(JOBS) --dist loadfile -m "not slow"

train: $(STAMP)  ## train APP (a name or an app.toml), float then QAT: make train APP=vww [EPOCHS=1] [DATA=dir] [TEACHER=none] [RESUME=1] [INSTALL=1] [THREADS=2]
	$(PC) train $(APP) $(if $(THREADS),--threads $(THREADS)) $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(QAT_EPOCHS),--qat-epochs $(QAT_EPOCHS)) $(if $(DATA),--data $(DATA)) $(if $(TEACHER),--teacher $(TEACHER)) $(if $(RESUME),--resume) $(if $(INSTALL),--export)

.PHONY: eval
eval: $(STAMP)  ## float vs int8 vs the OpenCV baseline on APP's test photos -> build/eval/APP.json [DATA=any photo folder] [EVAL_ARGS=--card]
	$(PC) eval $(APP) $(if $(DATA),--data "$(DATA)") $(EVAL_ARGS)

.PHONY: lab
lab: $(STAMP)  ## prepare course lab N (docs/labs/): make lab N=1..5 [CHECK=1 | TFLM=1: lab 3's checks]
	@test -n "$(N)" || { echo "make lab needs N=1..5 (docs/labs/README.md)"; exit 2; }
	$(PC) lab $(N) $(if $(CHECK),--check) $(if $(TFLM),--tflm)

bench: $(STAMP)  ## Cortex-M7 benchmark: MACs, arena, flash, exact instructions, per op -> build/bench.json, build/bench/plots/ [CMSIS_NN=dir: beside Arm's CMSIS-NN] [BENCH_ARGS=--per-op]
	$(PC) bench --plot $(if $(CMSIS_NN),--cmsis-nn "$(CMSIS_NN)") $(BENCH_ARGS)

plan: $(STAMP)  ## memory of APP: the schedule it ships vs layer by layer, alternatives beside (table + plot) [BUDGET=256kB: the fastest that fits]
	$(PC) plan $(APP) --plot build/plan/$(APP).png $(if $(BUDGET),--budget "$(BUDGET)")

demo: $(STAMP)  ## person detection on the virtual Cortex-M7 (QEMU), recorded to build/demo/ [IMAGES=dir]
	$(PC) demo --frames $(FRAMES) $(if $(IMAGES),--images "$(IMAGES)")

view: $(STAMP)  ## the viewer on a real board, found on USB: make view APP=person_detect [PORT=/dev/ttyACM0|COM5] [SOURCE=0]
	$(PC) view --port "$(if $(PORT),$(PORT),auto)" --baud $(BAUD) $(if $(filter command line,$(origin APP)),--app $(APP)) $(if $(SOURCE),--source "$(SOURCE)") $(VIEW_ARGS)

firmware: $(STAMP)  ## build APP for a real board: make firmware APP=vww BOARD=disco_f746ng|nano33ble_sense [MBED_OS_PATH=dir]
	$(PC) flash build --app $(APP) --board $(BOARD) $(if $(MBED_OS_PATH),--mbed-os "$(MBED_OS_PATH)") $(if $(MODEL_DIR),--model-dir "$(MODEL_DIR)") -j $(JOBS)

flash: $(STAMP)  ## build and flash APP to BOARD=disco_f746ng|nano33ble_sense|openmv_h7 (docs/boards.md) [PORT=dev] [DRIVE=dir] [METHOD=drive|STM32CUBE|OPENOCD|PYOCD|STLINK]
	$(PC) flash flash --app $(APP) --board $(BOARD) $(if $(MBED_OS_PATH),--mbed-os "$(MBED_OS_PATH)") $(if $(MODEL_DIR),--model-dir "$(MODEL_DIR)") $(if $(PORT),--port "$(PORT)") $(if $(DRIVE),--drive "$(DRIVE)") $(if $(METHOD),--method "$(METHOD)") -j $(JOBS)

.PHONY: release release-check
release: $(STAMP)  ## prebuilt images of every app for the DISCO, the Nano, the OpenMV Cam -> release/ + manifest.json [APP=one app] [BOARD=one board] [MBED_OS_PATH=dir] [MICROPYTHON=dir]
	$(PY) -m patchcam.targets.release build $(if $(filter command line,$(origin APP)),--app $(APP)) $(if $(filter command line,$(origin BOARD)),--board $(BOARD)) $(if $(MBED_OS_PATH),--mbed-os "$(MBED_OS_PATH)") $(if $(MICROPYTHON),--micropython "$(MICROPYTHON)") -j $(JOBS)

release-check: $(STAMP)  ## every image release/manifest.json lists is there, intact and built from apps/*/generated
	$(PY) -m patchcam.targets.release check

.PHONY: openmv openmv-check
openmv: $(STAMP)  ## OpenMV Cam H7 files for APP -> build/openmv/APP/ (docs/boards.md) [MICROPYTHON=dir]
	$(PC) openmv $(if $(MICROPYTHON),--micropython "$(MICROPYTHON)") natmod $(APP) --regenerate

.PHONY: openmv-ml
openmv-ml: $(STAMP)  ## OpenMV Cam H7 files for APP on OpenMV's ml module (no compiler, offline) -> build/openmv/APP/drive_ml/
	$(PC) openmv ml $(APP) --regenerate

openmv-check: $(STAMP)  ## OpenMV route: x64 natmod in MicroPython's unix port == reference [MICROPYTHON=dir]
	$(PC) openmv $(if $(MICROPYTHON),--micropython "$(MICROPYTHON)") check vww person_detect

clean:  ## remove build outputs (keeps .venv)
	rm -rf build
