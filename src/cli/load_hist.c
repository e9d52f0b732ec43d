/* load_hist.c - a log-linear latency histogram in the manner of HDR
 * histograms: fixed memory, constant-time recording, and a relative error
 * bounded by the number of linear buckets per power of two.
 *
 * Layout with SUB = 2^AT_LOAD_HIST_SUB_BITS (128): values below 2*SUB have a
 * bucket each; a value v >= 2*SUB with highest bit e falls into the octave
 * [2^e, 2^(e+1)), cut into SUB buckets of width 2^(e - SUB_BITS). A bucket's
 * width is at most 1/SUB of its lower bound, and a percentile is reported as
 * the bucket's midpoint, so the error is at most 1/(2*SUB) = 0.4%.
 */
#include <string.h>

#include "load.h"

#define SUB ((size_t)1 << AT_LOAD_HIST_SUB_BITS)

/* Empties h (caller storage, no allocation). Thread: h's owner. */
void at_load_hist_init(at_load_hist_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

/* Returns the bucket of v (values past the top are clamped into it). */
size_t at_load_hist_index(uint64_t v)
{
    if (v < 2 * SUB)
        return (size_t)v;
    int e = 63 - __builtin_clzll(v);
    if (e >= AT_LOAD_HIST_MAX_BITS)
        return AT_LOAD_HIST_BUCKETS - 1;
    int shift = e - AT_LOAD_HIST_SUB_BITS;
    uint64_t sub = (v >> shift) - SUB; /* 0..SUB-1 */
    return 2 * SUB + (size_t)(e - AT_LOAD_HIST_SUB_BITS - 1) * SUB + (size_t)sub;
}

/* Sets [*lo, *hi], the values bucket idx holds. */
void at_load_hist_range(size_t idx, uint64_t *lo, uint64_t *hi)
{
    AT_ASSERT(idx < AT_LOAD_HIST_BUCKETS);
    if (idx < 2 * SUB) {
        *lo = *hi = idx;
        return;
    }
    size_t rel = idx - 2 * SUB;
    int e = (int)(rel / SUB) + AT_LOAD_HIST_SUB_BITS + 1;
    int shift = e - AT_LOAD_HIST_SUB_BITS;
    uint64_t sub = SUB + rel % SUB;
    *lo = sub << shift;
    *hi = *lo + ((uint64_t)1 << shift) - 1;
}

/* Records one value. Thread: h's owner. */
void at_load_hist_record(at_load_hist_t *h, uint64_t v)
{
    h->counts[at_load_hist_index(v)]++;
    h->total++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

/* Returns the value at percentile p: the midpoint of the bucket holding the
 * ceil(p% * total)-th smallest value, kept within [min, max]. */
uint64_t at_load_hist_percentile(const at_load_hist_t *h, double p)
{
    if (h->total == 0)
        return 0;
    if (p <= 0)
        return h->min;
    if (p >= 100)
        return h->max;
    uint64_t rank = (uint64_t)((p / 100.0) * (double)h->total + 0.999999999);
    rank = AT_MAX(rank, (uint64_t)1);
    uint64_t seen = 0;
    for (size_t i = 0; i < AT_LOAD_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            at_load_hist_range(i, &lo, &hi);
            uint64_t mid = lo + (hi - lo) / 2;
            return AT_MIN(AT_MAX(mid, h->min), h->max);
        }
    }
    return h->max;
}

/* Returns the exact mean of the recorded values, 0 when empty. */
double at_load_hist_mean(const at_load_hist_t *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}
