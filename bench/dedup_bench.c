/* dedup_bench.c - memory and time per event id of the dedup index
 * (src/ingest/dedup.c) at its cap, the state a server reaches after
 * `dedup.max_per_partition` ids per partition within the horizon.
 *
 * Usage: bench_dedup [IDS (16000000)] [PARTITIONS (16)] [CAP (1000000)]
 * Checks IDS distinct ids shaped like `attune load`'s ("ld-20260427-N",
 * 13 to 20 bytes) spread over PARTITIONS by a hash, then IDS/4 again (all
 * duplicates, or evicted when IDS exceeds the cap's total), with receive
 * times 1 ms apart inside a 24 h horizon. Prints the resident memory the
 * index added (VmRSS growth) per id held, and ns per check of each phase.
 * For instructions: valgrind --tool=callgrind --toggle-collect=at_dedup_check
 *   bench_dedup 1000000 16 100000
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "at_core.h"
#include "at_ingest.h"

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Checks ids [from, to); returns how many were called duplicates. */
static uint64_t run(at_dedup_t *d, int parts, uint64_t from, uint64_t to, int64_t t0)
{
    char id[32];
    uint64_t dups = 0;
    for (uint64_t i = from; i < to; i++) {
        int n = snprintf(id, sizeof id, "ld-20260427-%" PRIu64, i);
        int p = (int)(at_hash64(id, (size_t)n) % (uint64_t)parts);
        dups += at_dedup_check(d, p, id, (size_t)n, t0 + (int64_t)(i % 86000000));
    }
    return dups;
}

int main(int argc, char **argv)
{
    uint64_t ids = argc > 1 ? strtoull(argv[1], NULL, 10) : 16000000;
    int parts = argc > 2 ? atoi(argv[2]) : 16;
    int64_t cap = argc > 3 ? strtoll(argv[3], NULL, 10) : 1000000;
    if (!ids || parts <= 0 || cap <= 0) {
        fprintf(stderr, "usage: bench_dedup [IDS] [PARTITIONS] [CAP]\n");
        return 2;
    }
    int64_t t0 = 1777248000000; /* 2026-04-27 */
    long r0 = rss_kib();
    at_dedup_t *d = at_dedup_new(parts, 86400000, cap, NULL);
    double a = now_s();
    uint64_t dups = run(d, parts, 0, ids, t0);
    double b = now_s();
    long r1 = rss_kib();
    uint64_t held = at_dedup_size(d);
    uint64_t again = run(d, parts, ids - ids / 4, ids, t0);
    double c = now_s();
    printf("dedup: %" PRIu64 " ids over %d partitions (cap %" PRId64 " each): %" PRIu64
           " held, %" PRIu64 " evicted, %" PRIu64 " false duplicates\n",
           ids, parts, cap, held, at_dedup_evicted(d), dups);
    printf("dedup: RSS %ld -> %ld KiB: %.1f bytes per id held\n", r0, r1,
           (double)(r1 - r0) * 1024.0 / (double)(held ? held : 1));
    printf("dedup: %.0f ns per new id, %.0f ns per repeated id (%" PRIu64 " of %" PRIu64
           " called duplicates)\n",
           (b - a) * 1e9 / (double)ids, (c - b) * 1e9 / (double)(ids / 4 ? ids / 4 : 1), again,
           ids / 4);
    at_dedup_free(d);
    return 0;
}
