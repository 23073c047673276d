/* startup.c - vector table, reset and fault handlers of the qemu_m7 board (Cortex-M7).
 *
 * Reset_Handler turns the FPU on (the firmware is built for the hard-float ABI), copies .data
 * from flash, zeroes .bss and calls main(). Every fault or unexpected exception prints what
 * happened over semihosting and ends QEMU with QEMU_M7_EXIT_FAULT, so a crash can never pass
 * for a result.
 */
#include <stdint.h>

#include "board.h"
#include "qemu_m7.h"
#include "semihost.h"

int main(void);

/* Linker script symbols. */
extern uint32_t __stack_top[];
extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];

#define REG32(addr) (*(volatile uint32_t *)(addr))
#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_SHCSR REG32(0xE000ED24u)
#define SCB_CFSR REG32(0xE000ED28u)
#define SCB_HFSR REG32(0xE000ED2Cu)
#define SCB_MMFAR REG32(0xE000ED34u)
#define SCB_BFAR REG32(0xE000ED38u)

void Reset_Handler(void);
void Fault_Handler(void);
void fault_report(const uint32_t *frame, uint32_t exc_return);

/* The copy loops must not become memcpy/memset calls: nothing is initialised yet. */
__attribute__((used, optimize("no-tree-loop-distribute-patterns"))) void Reset_Handler(void)
{
    /* CP10 and CP11 full access, then make sure no FP instruction runs before it applies. */
    SCB_CPACR |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    /* Report MemManage, BusFault and UsageFault by name rather than as HardFault. */
    SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18);

    const uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start; dst < __bss_end;) {
        *dst++ = 0;
    }
    board_exit(main());
}

static void put_hex(char *out, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--) {
        out[7 - i] = digits[(v >> (4 * i)) & 0xFu];
    }
}

static const char *exception_name(uint32_t n)
{
    switch (n) {
    case 2: return "NMI";
    case 3: return "HardFault";
    case 4: return "MemManage";
    case 5: return "BusFault";
    case 6: return "UsageFault";
    default: return "unexpected exception";
    }
}

/* frame: the stacked r0-r3, r12, lr, pc, xpsr of the interrupted code. */
void fault_report(const uint32_t *frame, uint32_t exc_return)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    ipsr &= 0x1FFu;
    /* "qemu_m7: FAULT <name> exc=xxxxxxxx pc=xxxxxxxx lr=xxxxxxxx cfsr=xxxxxxxx
     *  hfsr=xxxxxxxx bfar=xxxxxxxx mmfar=xxxxxxxx" */
    static char line[192];
    const char *name = exception_name(ipsr);
    char *p = line;
    for (const char *s = "qemu_m7: FAULT "; *s; s++) *p++ = *s;
    for (const char *s = name; *s; s++) *p++ = *s;
    const char *labels[] = {" exc=", " pc=", " lr=", " cfsr=", " hfsr=", " bfar=", " mmfar="};
    uint32_t values[] = {ipsr, frame[6], frame[5], SCB_CFSR, SCB_HFSR, SCB_BFAR, SCB_MMFAR};
    for (unsigned i = 0; i < sizeof values / sizeof values[0]; i++) {
        for (const char *s = labels[i]; *s; s++) *p++ = *s;
        put_hex(p, values[i]);
        p += 8;
    }
    (void)exc_return;
    *p++ = '\n';
    *p = '\0';
    sh_puts(line);
    sh_exit(QEMU_M7_EXIT_FAULT);
}

/* Find the stacked frame (main or process stack) and report. */
__attribute__((naked)) void Fault_Handler(void)
{
    __asm__ volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mov r1, lr\n\t"
        "b fault_report\n\t");
}

typedef void (*vector_t)(void);

/* 16 system exceptions + the MPS2 FPGA image's 32 interrupts, all unexpected. */
__attribute__((section(".vectors"), used)) const vector_t vector_table[16 + 32] = {
    [0] = (vector_t)(uintptr_t)__stack_top,
    [1] = Reset_Handler,
    [2 ... 16 + 32 - 1] = Fault_Handler,
};
