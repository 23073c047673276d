/* semihost.h - Arm semihosting calls (BKPT 0xAB) used by the qemu_m7 board.
 *
 * QEMU serves these when started with `-semihosting-config enable=on,target=native`:
 * files are the host's, relative to QEMU's working directory. Each call takes an operation
 * number in r0 and a pointer to an argument block in r1 and returns a word in r0.
 * Without a debugger or QEMU attached, BKPT would fault, so this board runs only under QEMU.
 */
#ifndef PATCHCAM_QEMU_M7_SEMIHOST_H
#define PATCHCAM_QEMU_M7_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

/* Operation numbers from Arm's "Semihosting for AArch32 and AArch64" specification. */
enum {
    SH_SYS_OPEN = 0x01,
    SH_SYS_CLOSE = 0x02,
    SH_SYS_WRITE0 = 0x04,
    SH_SYS_WRITE = 0x05,
    SH_SYS_READ = 0x06,
    SH_SYS_GET_CMDLINE = 0x15,
    SH_SYS_EXIT = 0x18,
    SH_SYS_EXIT_EXTENDED = 0x20,
};

/* SYS_OPEN modes (ISO C fopen modes, in the specification's order). */
enum { SH_MODE_RB = 1, SH_MODE_WB = 5 };

/* Open a host file; returns a handle (> 0) or -1. */
int sh_open(const char *path, int mode);
int sh_close(int fd);
/* Read up to len bytes; returns the bytes read (0 at end of file or on error). */
size_t sh_read(int fd, void *buf, size_t len);
/* Write len bytes; returns 0 when all were written. */
int sh_write(int fd, const void *buf, size_t len);
/* Write a NUL-terminated string to QEMU's semihosting console (stderr). */
void sh_puts(const char *s);
/* Copy the semihosting command line into buf (NUL-terminated); returns 0 on success. */
int sh_get_cmdline(char *buf, size_t cap);
/* End the simulation: QEMU exits with this status (0..255). */
__attribute__((noreturn)) void sh_exit(int status);

#endif
