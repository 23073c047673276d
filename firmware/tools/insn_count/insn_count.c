/* insn_count.c - a QEMU TCG plugin that counts executed guest instructions exactly.
 *
 *   qemu-system-arm ... -plugin ./insn_count.so,out=counts.txt,begin=0x1234,end=0x5678
 *
 * Every translated instruction gets an inline "add 1" to one counter (a per-block add would
 * over-count when -icount ends a block early at an I/O access and re-translates the rest).
 * Optional markers measure a region: `begin` is an instruction address (e.g. model_invoke's
 * entry) and `end` one or more addresses (e.g. the return sites after each `bl model_invoke`).
 * Each begin ... end pair records the instructions executed in between; since both markers
 * sample the counter at the same point of an instruction, a region's count is exactly the
 * instructions of the call from its first instruction to its return.
 *
 * Output (to `out`, else QEMU's log with -d plugin), at exit:
 *   total <instructions executed by the whole run>
 *   region <instructions of the 1st begin..end>
 *   region ...
 * Single vCPU only (the counter is not atomic); mps2-an500 has one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_ENDS 16
#define MAX_REGIONS 1024

static uint64_t total;
static uint64_t begin_addr = UINT64_MAX;
static uint64_t end_addrs[MAX_ENDS];
static size_t n_ends;
static const char *out_path;

static int inside;
static uint64_t region_start;
static uint64_t regions[MAX_REGIONS];
static size_t n_regions, n_dropped;

static void on_begin(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    (void)udata;
    if (!inside) {
        inside = 1;
        region_start = total;
    }
}

static void on_end(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    (void)udata;
    if (inside) {
        inside = 0;
        if (n_regions < MAX_REGIONS) {
            regions[n_regions++] = total - region_start;
        } else {
            n_dropped++;
        }
    }
}

static int is_end(uint64_t vaddr)
{
    for (size_t i = 0; i < n_ends; i++) {
        if (end_addrs[i] == vaddr) {
            return 1;
        }
    }
    return 0;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &total, 1);
        uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        if (vaddr == begin_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        if (is_end(vaddr)) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void on_exit_report(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    static char text[64 + MAX_REGIONS * 32];
    size_t len = 0;
    len += (size_t)snprintf(text + len, sizeof text - len, "total %" PRIu64 "\n", total);
    for (size_t i = 0; i < n_regions; i++) {
        len += (size_t)snprintf(text + len, sizeof text - len, "region %" PRIu64 "\n",
                                regions[i]);
    }
    if (n_dropped > 0) {
        len += (size_t)snprintf(text + len, sizeof text - len, "dropped %zu\n", n_dropped);
    }
    if (inside) {
        snprintf(text + len, sizeof text - len, "unfinished %" PRIu64 "\n",
                 total - region_start);
    }
    if (out_path != NULL) {
        FILE *f = fopen(out_path, "w");
        if (f != NULL) {
            fputs(text, f);
            fclose(f);
            return;
        }
    }
    qemu_plugin_outs(text);
}

static int parse_addr(const char *s, uint64_t *out)
{
    char *rest;
    unsigned long long v = strtoull(s, &rest, 0);
    if (*s == '\0' || *rest != '\0') {
        return -1;
    }
    *out = (uint64_t)v & ~(uint64_t)1; /* drop the Thumb bit of a function symbol */
    return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "out=", 4) == 0) {
            out_path = a + 4;
        } else if (strncmp(a, "begin=", 6) == 0) {
            if (parse_addr(a + 6, &begin_addr) != 0) {
                fprintf(stderr, "insn_count: bad address in '%s'\n", a);
                return -1;
            }
        } else if (strncmp(a, "end=", 4) == 0) {
            if (n_ends == MAX_ENDS || parse_addr(a + 4, &end_addrs[n_ends]) != 0) {
                fprintf(stderr, "insn_count: bad or too many '%s'\n", a);
                return -1;
            }
            n_ends++;
        } else {
            fprintf(stderr, "insn_count: unknown argument '%s'\n", a);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_report, NULL);
    return 0;
}
