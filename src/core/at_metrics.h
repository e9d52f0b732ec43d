/* at_metrics.h - lock-free counters and histograms rendered in the
 * Prometheus text format.
 *
 * THREAD SAFETY: at_hist_observe may be called from any thread at once
 * (relaxed atomics); at_hist_write reads a consistent-enough snapshot.
 */
#ifndef AT_METRICS_H
#define AT_METRICS_H

#include "at_core.h"

#include <stdatomic.h>
#include <stdint.h>

#define AT_HIST_BUCKETS 16

/* A histogram of seconds with fixed bucket bounds (le) from 25 µs to 10 s. */
typedef struct at_hist {
    _Atomic uint64_t buckets[AT_HIST_BUCKETS + 1]; /* last one is +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
} at_hist_t;

void at_hist_init(at_hist_t *h);
void at_hist_observe_ns(at_hist_t *h, int64_t ns);
/* Appends "# HELP", "# TYPE" and the _bucket/_sum/_count lines of name.
 * labels may be NULL or e.g. "route=\"events\"" (without braces). */
int at_hist_write(const at_hist_t *h, at_buf_t *out, const char *name, const char *help,
                  const char *labels);
/* Appends a counter or gauge: "# HELP", "# TYPE" (when help is not NULL)
 * and one sample line. */
int at_metric_write(at_buf_t *out, const char *name, const char *type, const char *help,
                    const char *labels, double value);

/* A finer histogram for latency percentiles: log-linear buckets (8 per
 * power of two, about 9 % wide) from 1 µs to 34 s. Lock-free. */
#define AT_LAT_SUB 8
#define AT_LAT_MIN_SHIFT 10 /* 2^10 ns ~ 1 us */
#define AT_LAT_POWERS 25
#define AT_LAT_BUCKETS (AT_LAT_POWERS * AT_LAT_SUB + 2)
typedef struct at_lat {
    _Atomic uint64_t b[AT_LAT_BUCKETS];
    _Atomic uint64_t count;
} at_lat_t;
void at_lat_init(at_lat_t *h);
void at_lat_observe_ns(at_lat_t *h, int64_t ns);
/* The value (ns) under which a fraction q (0..1) of the observations lie:
 * the upper bound of the bucket that holds the q-quantile; 0 when empty. */
int64_t at_lat_quantile_ns(const at_lat_t *h, double q);
uint64_t at_lat_count(const at_lat_t *h);
/* Appends a Prometheus summary (quantiles 0.5, 0.99, 0.999 in seconds,
 * _count) of h. */
int at_lat_write(const at_lat_t *h, at_buf_t *out, const char *name, const char *help);

#endif
