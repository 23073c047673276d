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
 * Profile (optional, `profile=FILE`): a text file of lines
 *   fn <start> <end>       a function's address range [start, end), the i-th line is fn i
 *   mark <addr> <bucket>   when the instruction at addr executes, later instructions count
 *                          into bucket (1 ... 65535; 0 is where the region starts)
 * splits the first begin..end region: per bucket its instructions, and per bucket and
 * function the instructions executed inside that function (a function's "self" count; the
 * last function index, the number of fn lines, stands for code outside every range). Buckets
 * are what the caller makes of them, e.g. a call site's `bl` opens the bucket of its op and
 * the return site goes back to bucket 0. Every number comes from the same per-instruction
 * counters sampled at the same point of an instruction, so the buckets of the region sum to
 * the region exactly, and each bucket's cells to the bucket.
 *
 * Output (to `out`, else QEMU's log with -d plugin), at exit:
 *   total <instructions executed by the whole run>
 *   region <instructions of the 1st begin..end>
 *   region ...
 *   bucket <b> <instructions>        (profile: every bucket with instructions)
 *   cell <b> <fn> <instructions>     (profile: every nonzero bucket x function)
 * Single vCPU only (the counter is not atomic); mps2-an500 has one.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_ENDS 16
#define MAX_REGIONS 1024
#define MAX_BUCKETS 65536

static uint64_t total;
static uint64_t begin_addr = UINT64_MAX;
static uint64_t end_addrs[MAX_ENDS];
static size_t n_ends;
static const char *out_path;

static int inside;
static uint64_t region_start;
static uint64_t regions[MAX_REGIONS];
static size_t n_regions, n_dropped;

/* ---- profile ---- */
typedef struct {
    uint64_t start, end;
    size_t index; /* its line in the profile file */
} fn_range_t;

/* An instruction with something to do: region begin / end, a bucket switch. */
typedef struct {
    uint64_t addr;
    int begin, end;
    long bucket; /* -1: none */
} mark_t;

static fn_range_t *fns;      /* sorted by start */
static size_t n_fns;
static uint64_t *fn_counts;  /* n_fns + 1 (outside), indexed by file line; whole run */
static uint64_t *fn_last;    /* fn_counts at the last bucket switch */
static mark_t *marks;        /* sorted by addr */
static size_t n_marks;
static size_t n_buckets;     /* 1 + the largest bucket named */
static uint64_t *bucket_insns;
static uint64_t *cells;      /* n_buckets x (n_fns + 1) */
static int profiling;        /* inside the first region, with a profile */
static int profiled;         /* the first region is over */
static size_t cur_bucket;
static uint64_t last_total;

static void flush_bucket(void)
{
    uint64_t *row = cells + cur_bucket * (n_fns + 1);
    bucket_insns[cur_bucket] += total - last_total;
    last_total = total;
    for (size_t f = 0; f <= n_fns; f++) {
        row[f] += fn_counts[f] - fn_last[f];
        fn_last[f] = fn_counts[f];
    }
}

static void region_begin(void)
{
    if (!inside) {
        inside = 1;
        region_start = total;
        if (cells != NULL && !profiled) {
            profiling = 1;
            cur_bucket = 0;
            last_total = total;
            memcpy(fn_last, fn_counts, (n_fns + 1) * sizeof *fn_counts);
        }
    }
}

static void region_end(void)
{
    if (inside) {
        inside = 0;
        if (n_regions < MAX_REGIONS) {
            regions[n_regions++] = total - region_start;
        } else {
            n_dropped++;
        }
        if (profiling) {
            flush_bucket();
            profiling = 0;
            profiled = 1;
        }
    }
}

static void on_begin(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    (void)udata;
    region_begin();
}

static void on_end(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    (void)udata;
    region_end();
}

static void on_mark(unsigned int vcpu, void *udata)
{
    const mark_t *m = udata;
    (void)vcpu;
    if (m->begin) {
        region_begin();
    }
    if (m->bucket >= 0 && profiling) {
        flush_bucket();
        cur_bucket = (size_t)m->bucket;
    }
    if (m->end) {
        region_end();
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

static size_t fn_of(uint64_t vaddr)
{
    size_t lo = 0, hi = n_fns; /* the last range with start <= vaddr */
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (fns[mid].start <= vaddr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo > 0 && vaddr < fns[lo - 1].end) {
        return fns[lo - 1].index;
    }
    return n_fns;
}

static mark_t *mark_of(uint64_t vaddr)
{
    size_t lo = 0, hi = n_marks;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (marks[mid].addr < vaddr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < n_marks && marks[lo].addr == vaddr ? &marks[lo] : NULL;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &total, 1);
        uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        if (cells != NULL) {
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                       &fn_counts[fn_of(vaddr)], 1);
            mark_t *m = mark_of(vaddr);
            if (m != NULL) {
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, m);
            }
            continue;
        }
        if (vaddr == begin_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        if (is_end(vaddr)) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void report(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(FILE *f, const char *fmt, ...)
{
    char line[96];
    va_list ap;
    va_start(ap, fmt);
    if (f != NULL) {
        vfprintf(f, fmt, ap);
    } else {
        vsnprintf(line, sizeof line, fmt, ap);
        qemu_plugin_outs(line);
    }
    va_end(ap);
}

static void on_exit_report(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    FILE *f = out_path != NULL ? fopen(out_path, "w") : NULL;
    report(f, "total %" PRIu64 "\n", total);
    for (size_t i = 0; i < n_regions; i++) {
        report(f, "region %" PRIu64 "\n", regions[i]);
    }
    if (n_dropped > 0) {
        report(f, "dropped %zu\n", n_dropped);
    }
    if (inside) {
        report(f, "unfinished %" PRIu64 "\n", total - region_start);
    }
    if (profiled) {
        for (size_t b = 0; b < n_buckets; b++) {
            if (bucket_insns[b] != 0) {
                report(f, "bucket %zu %" PRIu64 "\n", b, bucket_insns[b]);
            }
        }
        for (size_t b = 0; b < n_buckets; b++) {
            for (size_t fn = 0; fn <= n_fns; fn++) {
                const uint64_t v = cells[b * (n_fns + 1) + fn];
                if (v != 0) {
                    report(f, "cell %zu %zu %" PRIu64 "\n", b, fn, v);
                }
            }
        }
    }
    if (f != NULL) {
        fclose(f);
    }
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

static int by_start(const void *a, const void *b)
{
    const fn_range_t *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int by_addr(const void *a, const void *b)
{
    const mark_t *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static mark_t *add_mark(uint64_t addr, size_t *cap)
{
    for (size_t i = 0; i < n_marks; i++) {
        if (marks[i].addr == addr) {
            return &marks[i];
        }
    }
    if (n_marks == *cap) {
        mark_t *grown = realloc(marks, (*cap = *cap ? 2 * *cap : 64) * sizeof *marks);
        if (grown == NULL) {
            return NULL;
        }
        marks = grown;
    }
    marks[n_marks] = (mark_t){addr, 0, 0, -1};
    return &marks[n_marks++];
}

/* Reads the profile file; the region's begin / end become marks too. 0 on success. */
static int load_profile(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[128];
    size_t fn_cap = 0, mark_cap = 0;
    if (f == NULL) {
        fprintf(stderr, "insn_count: cannot read profile '%s'\n", path);
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        long long a, b;
        if (sscanf(line, "fn %lli %lli", &a, &b) == 2 && a >= 0 && b >= a) {
            if (n_fns == fn_cap) {
                fn_range_t *grown = realloc(fns, (fn_cap = fn_cap ? 2 * fn_cap : 64) *
                                                     sizeof *fns);
                if (grown == NULL) {
                    fclose(f);
                    return -1;
                }
                fns = grown;
            }
            fns[n_fns] = (fn_range_t){(uint64_t)a & ~1ull, (uint64_t)b & ~1ull, n_fns};
            n_fns++;
        } else if (sscanf(line, "mark %lli %lli", &a, &b) == 2 && a >= 0 && b >= 0 &&
                   b < MAX_BUCKETS) {
            mark_t *m = add_mark((uint64_t)a & ~1ull, &mark_cap);
            if (m == NULL) {
                fclose(f);
                return -1;
            }
            m->bucket = (long)b;
            if ((size_t)b + 1 > n_buckets) {
                n_buckets = (size_t)b + 1;
            }
        } else if (line[0] != '\n' && line[0] != '#') {
            fprintf(stderr, "insn_count: bad profile line '%s'\n", line);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    if (begin_addr != UINT64_MAX) {
        mark_t *m = add_mark(begin_addr, &mark_cap);
        if (m == NULL) {
            return -1;
        }
        m->begin = 1;
    }
    for (size_t i = 0; i < n_ends; i++) {
        mark_t *m = add_mark(end_addrs[i], &mark_cap);
        if (m == NULL) {
            return -1;
        }
        m->end = 1;
    }
    if (n_buckets == 0) {
        n_buckets = 1;
    }
    if (n_fns > 0) {
        qsort(fns, n_fns, sizeof *fns, by_start);
    }
    if (n_marks > 0) {
        qsort(marks, n_marks, sizeof *marks, by_addr);
    }
    fn_counts = calloc(n_fns + 1, sizeof *fn_counts);
    fn_last = calloc(n_fns + 1, sizeof *fn_last);
    bucket_insns = calloc(n_buckets, sizeof *bucket_insns);
    cells = calloc(n_buckets * (n_fns + 1), sizeof *cells);
    return fn_counts && fn_last && bucket_insns && cells ? 0 : -1;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *profile = NULL;
    (void)info;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "out=", 4) == 0) {
            out_path = a + 4;
        } else if (strncmp(a, "profile=", 8) == 0) {
            profile = a + 8;
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
    if (profile != NULL && load_profile(profile) != 0) {
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_report, NULL);
    return 0;
}
