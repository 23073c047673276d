/* semihost.c - Arm semihosting (see semihost.h). */
#include "semihost.h"

static int sh_call(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static size_t cstrlen(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return n;
}

int sh_open(const char *path, int mode)
{
    uint32_t args[3] = {(uint32_t)(uintptr_t)path, (uint32_t)mode, (uint32_t)cstrlen(path)};
    return sh_call(SH_SYS_OPEN, args);
}

int sh_close(int fd)
{
    uint32_t args[1] = {(uint32_t)fd};
    return sh_call(SH_SYS_CLOSE, args);
}

size_t sh_read(int fd, void *buf, size_t len)
{
    /* SYS_READ returns the number of bytes NOT read; a FIFO may deliver a frame in pieces. */
    size_t done = 0;
    while (done < len) {
        uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)((uint8_t *)buf + done),
                            (uint32_t)(len - done)};
        int left = sh_call(SH_SYS_READ, args);
        if (left < 0 || (size_t)left >= len - done) {
            break; /* error or end of file */
        }
        done = len - (size_t)left;
    }
    return done;
}

int sh_write(int fd, const void *buf, size_t len)
{
    uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, (uint32_t)len};
    return sh_call(SH_SYS_WRITE, args);
}

void sh_puts(const char *s)
{
    sh_call(SH_SYS_WRITE0, (void *)(uintptr_t)s);
}

int sh_get_cmdline(char *buf, size_t cap)
{
    uint32_t args[2] = {(uint32_t)(uintptr_t)buf, (uint32_t)cap};
    return sh_call(SH_SYS_GET_CMDLINE, args);
}

void sh_exit(int status)
{
    /* SYS_EXIT_EXTENDED carries any status; reason 0x20026 = ADP_Stopped_ApplicationExit. */
    uint32_t args[2] = {0x20026u, (uint32_t)status};
    for (;;) {
        sh_call(SH_SYS_EXIT_EXTENDED, args);
        /* Plain SYS_EXIT on AArch32 can only say "success" or "failure". */
        sh_call(SH_SYS_EXIT, (void *)(uintptr_t)(status == 0 ? 0x20026u : 0x20024u));
    }
}
