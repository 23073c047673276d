/* qemu_m7.h - facts about the virtual Cortex-M7 board that host tools rely on.
 * patchcam/targets/qemu.py mirrors these numbers; change both together. */
#ifndef PATCHCAM_QEMU_M7_H
#define PATCHCAM_QEMU_M7_H

/* Exit status when the CPU takes a fault (HardFault, MemManage, BusFault, UsageFault) or an
 * exception without a handler. The handler prints the reason and the faulting PC first. */
#define QEMU_M7_EXIT_FAULT 250

/* Default semihosting file names (relative to QEMU's working directory); the semihosting
 * command line can override them with `in=PATH out=PATH cam=PATH` tokens. */
#define QEMU_M7_INPUT_FILE "input.bin"
#define QEMU_M7_OUTPUT_FILE "output.bin"
#define QEMU_M7_CAMERA_FILE "camera.raw"

/* Virtual camera file: a 16-byte header, then whole frames back to back.
 *   0  char[4]  magic "PCAM"
 *   4  u16 LE   width
 *   6  u16 LE   height
 *   8  u8       pixel format (board_pixfmt_t)
 *   9  u8[7]    zero
 * A frame is width * height * bytes-per-pixel (1, 2 or 3) bytes. A FIFO works too. */
#define QEMU_M7_CAMERA_MAGIC "PCAM"
#define QEMU_M7_CAMERA_HEADER_BYTES 16

/* CMSDK timer 0 and the APB clock it counts (QEMU's mps2 SYSCLK). */
#define QEMU_M7_PCLK_HZ 25000000u

#endif
