/* tz_bench.c - cost per call of the time zone functions (src/core/tz.c) on
 * cached zones, in ns, for the per-event path of the expression language
 * and of tumbling windows.
 *
 * Usage: bench_tz [--only-local] [CALLS (10000000)] [ZONE...]
 * Each measured loop makes CALLS calls over 4096 instants spread at random
 * across 2020..2030 (the column "far": 2300..2310, past the unrolled table,
 * a quarter as many calls). --only-local runs just the at_tz_local loop
 * over 2020..2030, for instruction counts under callgrind: collect in that
 * one function and divide the total by CALLS times the number of zones:
 *   valgrind --tool=callgrind --toggle-collect=at_tz_local \
 *       bench_tz --only-local 100000 Europe/Paris
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "at_core.h"
#include "at_tz.h"

#define NINSTANTS 4096 /* a power of two: the loops index with a mask */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void fill(int64_t *ms, int64_t from, int64_t to, uint64_t seed)
{
    for (int i = 0; i < NINSTANTS; i++)
        ms[i] = from + (int64_t)(rnd(&seed) % (uint64_t)(to - from));
}

typedef enum { OP_LOCAL, OP_OFFSET, OP_FLOOR_DAY, OP_NEXT_DAY, OP_FLOOR_WEEK } op_t;

static const char *const op_names[] = {"at_tz_local", "at_tz_offset", "at_tz_floor(day)",
                                       "at_tz_next(day)", "at_tz_floor(week)"};

/* Runs calls of op over ms[]; returns ns per call, adds a checksum to *sink
 * so that nothing is optimized away. */
static double run(const at_tz_t *tz, op_t op, const int64_t *ms, long calls, int64_t *sink)
{
    int64_t acc = 0, t0 = at_time_mono_ns();
    at_tm_t tm;
    for (long i = 0; i < calls; i++) {
        int64_t t = ms[i & (NINSTANTS - 1)];
        switch (op) {
        case OP_LOCAL:
            at_tz_local(tz, t, &tm);
            acc += tm.hour + tm.mday + tm.wday;
            break;
        case OP_OFFSET:
            acc += at_tz_offset(tz, t);
            break;
        case OP_FLOOR_DAY:
            acc += at_tz_floor(tz, t, AT_TZ_DAY);
            break;
        case OP_NEXT_DAY:
            acc += at_tz_next(tz, t, AT_TZ_DAY);
            break;
        case OP_FLOOR_WEEK:
            acc += at_tz_floor(tz, t, AT_TZ_WEEK);
            break;
        }
    }
    *sink += acc;
    return (double)(at_time_mono_ns() - t0) / (double)calls;
}

/* ns per cached at_tz_get of one name. */
static double run_get(const char *name, long calls, int64_t *sink)
{
    size_t n = strlen(name);
    int64_t acc = 0, t0 = at_time_mono_ns();
    for (long i = 0; i < calls; i++)
        acc += at_tz_get(name, n) != NULL;
    *sink += acc;
    return (double)(at_time_mono_ns() - t0) / (double)calls;
}

int main(int argc, char **argv)
{
    static const char *const fallback[] = {"Europe/Paris", "America/New_York", "Asia/Kolkata",
                                           "America/Santiago", "UTC"};
    int only_local = argc > 1 && strcmp(argv[1], "--only-local") == 0;
    argc -= only_local;
    argv += only_local;
    long calls = argc > 1 ? strtol(argv[1], NULL, 10) : 10000000;
    const char *const *zones = argc > 2 ? (const char *const *)argv + 2 : fallback;
    int nzones = argc > 2 ? argc - 2 : (int)AT_ARRAY_LEN(fallback);
    static int64_t near[NINSTANTS], far[NINSTANTS];
    int64_t sink = 0;
    if (calls <= 0) {
        fprintf(stderr, "usage: bench_tz [--only-local] [CALLS] [ZONE...]\n");
        return 2;
    }
    fill(near, 1577836800000LL, 1893456000000LL, 1);  /* 2020..2030 */
    fill(far, 10413792000000LL, 10729411200000LL, 2); /* 2300..2310 */
    printf("%-18s %-18s %8s %8s\n", "zone", "function", "ns/call", "far");
    for (int z = 0; z < nzones; z++) {
        const at_tz_t *tz = at_tz_get(zones[z], strlen(zones[z]));
        if (!tz) {
            fprintf(stderr, "bench_tz: unknown zone %s\n", zones[z]);
            return 1;
        }
        if (only_local) {
            printf("%-18s %-18s %8.1f\n", zones[z], op_names[OP_LOCAL],
                   run(tz, OP_LOCAL, near, calls, &sink));
            continue;
        }
        for (op_t op = OP_LOCAL; op <= OP_FLOOR_WEEK; op++) {
            double ns = run(tz, op, near, calls, &sink);
            double fns = op == OP_LOCAL ? run(tz, op, far, calls / 4 + 1, &sink) : 0;
            printf("%-18s %-18s %8.1f", zones[z], op_names[op], ns);
            if (op == OP_LOCAL)
                printf(" %8.1f", fns);
            printf("\n");
        }
        printf("%-18s %-18s %8.1f\n", zones[z], "at_tz_get (cached)",
               run_get(zones[z], calls, &sink));
    }
    printf("calls per loop: %ld (far: %ld); checksum %" PRId64 "\n", calls, calls / 4 + 1, sink);
    return 0;
}
