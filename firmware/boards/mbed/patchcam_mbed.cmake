# patchcam_mbed.cmake - what the two Mbed OS Community Edition boards share (docs/design.md §4.6).
#
# A board's CMakeLists.txt sets MBED_TARGET and its mbed_app.json5, brings in Mbed CE from
# MBED_OS_PATH, then calls patchcam_mbed_app(<board glue> [LIBS ...] [DRIVERS ...]).
# The image is the generated model (PATCHCAM_MODEL_DIR: model.c, model.h, app_config.h), the C
# runtime, the shared app loop (firmware/app/app_main.c) and the board glue, linked against
# mbed-baremetal: the app is one loop, so the RTOS would only cost SRAM the arena needs.
#
# Cache variables (python -m patchcam.targets.flash sets them; see docs/boards.md):
#   MBED_OS_PATH          Mbed CE source tree
#   PATCHCAM_MODEL_DIR    the generated model folder
#   PATCHCAM_APP          the app's name: names the image (<app>.elf / .bin / .hex)
#   PATCHCAM_FRAME_BYTES  the app loop's frame buffer (PC_APP_FRAME_MAX_BYTES): the larger of
#                         one camera frame and the model input as RGB888

set(PATCHCAM_ROOT ${CMAKE_CURRENT_LIST_DIR}/../../..)
get_filename_component(PATCHCAM_ROOT ${PATCHCAM_ROOT} ABSOLUTE)
set(PATCHCAM_FIRMWARE ${PATCHCAM_ROOT}/firmware)

set(PATCHCAM_MODEL_DIR "" CACHE PATH "generated model folder (model.c, model.h, app_config.h)")
set(PATCHCAM_APP "" CACHE STRING "app name; names the image")
set(PATCHCAM_FRAME_BYTES "" CACHE STRING "frame buffer bytes (PC_APP_FRAME_MAX_BYTES)")

foreach(f model.c model.h app_config.h)
    if(NOT EXISTS "${PATCHCAM_MODEL_DIR}/${f}")
        message(FATAL_ERROR "PATCHCAM_MODEL_DIR=${PATCHCAM_MODEL_DIR} has no ${f}: "
                "build through `make firmware APP=... BOARD=...`, which generates the model")
    endif()
endforeach()
if(PATCHCAM_APP STREQUAL "")
    get_filename_component(PATCHCAM_APP ${PATCHCAM_MODEL_DIR} NAME)
endif()

# patchcam_mbed_app(<glue.cpp> [LIBS <mbed libraries>] [DRIVERS <firmware/drivers/*.c>])
function(patchcam_mbed_app GLUE)
    cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "LIBS;DRIVERS")
    file(GLOB model_sources ${PATCHCAM_MODEL_DIR}/*.c)
    file(GLOB runtime_sources ${PATCHCAM_FIRMWARE}/runtime/*.c)
    set(app_sources
        ${PATCHCAM_FIRMWARE}/app/app_main.c
        ${PATCHCAM_FIRMWARE}/app/pc_preprocess.c
        ${PATCHCAM_FIRMWARE}/app/pc_detect.c
        ${PATCHCAM_FIRMWARE}/app/pc_textline.c
        ${PATCHCAM_FIRMWARE}/app/pc_draw.c
        ${PATCHCAM_FIRMWARE}/protocol/pc_proto.c)
    set(driver_sources "")
    foreach(d ${ARG_DRIVERS})
        if(EXISTS ${PATCHCAM_FIRMWARE}/drivers/${d})
            list(APPEND driver_sources ${PATCHCAM_FIRMWARE}/drivers/${d})
        else()
            message(WARNING "patchcam: firmware/drivers/${d} is missing: the image has no camera")
        endif()
    endforeach()
    set(c_sources ${model_sources} ${runtime_sources} ${app_sources} ${driver_sources})

    add_executable(${PATCHCAM_APP} ${GLUE} ${c_sources})
    target_include_directories(${PATCHCAM_APP} PRIVATE
        ${PATCHCAM_MODEL_DIR} ${PATCHCAM_FIRMWARE}/runtime ${PATCHCAM_FIRMWARE}/app
        ${PATCHCAM_FIRMWARE}/protocol ${PATCHCAM_FIRMWARE}/boards ${PATCHCAM_FIRMWARE}/drivers)
    # The viewer starts the camera stream with SET STREAM; the board waits for it.
    target_compile_definitions(${PATCHCAM_APP} PRIVATE PC_BOARD_NAME="${PATCHCAM_BOARD}")
    if(NOT PATCHCAM_FRAME_BYTES STREQUAL "")
        target_compile_definitions(${PATCHCAM_APP} PRIVATE
            PC_APP_FRAME_MAX_BYTES=${PATCHCAM_FRAME_BYTES}u)
    endif()
    # Our C is C99 and warning-free, as on the virtual boards; -O2 because the kernels are the
    # hot loop and the instruction counts in docs/boards.md were measured at -O2 (Mbed's
    # default profile builds everything else with -Os).
    set_source_files_properties(${c_sources} PROPERTIES COMPILE_OPTIONS
        "-std=c99;-Wall;-Wextra;-Werror;-O2")
    set_source_files_properties(${GLUE} PROPERTIES COMPILE_OPTIONS "-Wall;-Wextra")
    target_link_libraries(${PATCHCAM_APP} mbed-baremetal ${ARG_LIBS})
    mbed_set_post_build(${PATCHCAM_APP})
endfunction()
