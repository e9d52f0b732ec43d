/* metrics.c - Prometheus histograms and samples (see at_metrics.h). */
#include "at_metrics.h"

#include <stdio.h>

/* Upper bounds in nanoseconds: 25us .. 10s, roughly x2.5 apart. */
static const int64_t at_hist__le_ns[AT_HIST_BUCKETS] = {
    25000,    50000,    100000,   250000,    500000,    1000000,    2500000,    5000000,
    10000000, 25000000, 50000000, 100000000, 250000000, 1000000000, 2500000000, 10000000000,
};

void at_hist_init(at_hist_t *h)
{
    for (int i = 0; i <= AT_HIST_BUCKETS; i++)
        atomic_init(&h->buckets[i], 0);
    atomic_init(&h->count, 0);
    atomic_init(&h->sum_ns, 0);
}

void at_hist_observe_ns(at_hist_t *h, int64_t ns)
{
    int i = 0;
    while (i < AT_HIST_BUCKETS && ns > at_hist__le_ns[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)(ns > 0 ? ns : 0), memory_order_relaxed);
}

int at_hist_write(const at_hist_t *h, at_buf_t *out, const char *name, const char *help,
                  const char *labels)
{
    const char *sep = labels && *labels ? "," : "";
    const char *lb = labels ? labels : "";
    int rc = 0;
    if (help)
        rc |= at_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i <= AT_HIST_BUCKETS; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < AT_HIST_BUCKETS)
            rc |= at_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, lb, sep,
                                (double)at_hist__le_ns[i] / 1e9, (unsigned long long)cum);
        else
            rc |= at_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lb, sep,
                                (unsigned long long)cum);
    }
    double sum = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
    const char *ob = labels && *labels ? "{" : "";
    const char *cb = labels && *labels ? "}" : "";
    rc |= at_buf_printf(out, "%s_sum%s%s%s %.9g\n", name, ob, lb, cb, sum);
    rc |= at_buf_printf(out, "%s_count%s%s%s %llu\n", name, ob, lb, cb, (unsigned long long)cum);
    return rc ? AT_ETOOBIG : 0;
}

int at_metric_write(at_buf_t *out, const char *name, const char *type, const char *help,
                    const char *labels, double value)
{
    int rc = 0;
    if (help)
        rc |= at_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    if (labels && *labels)
        rc |= at_buf_printf(out, "%s{%s} %.17g\n", name, labels, value);
    else
        rc |= at_buf_printf(out, "%s %.17g\n", name, value);
    return rc ? AT_ETOOBIG : 0;
}
