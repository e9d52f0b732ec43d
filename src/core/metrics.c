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

/* ---- fine latency histograms ------------------------------------------------ */

void at_lat_init(at_lat_t *h)
{
    for (int i = 0; i < AT_LAT_BUCKETS; i++)
        atomic_init(&h->b[i], 0);
    atomic_init(&h->count, 0);
}

static int at_lat__index(int64_t ns)
{
    if (ns < ((int64_t)1 << AT_LAT_MIN_SHIFT))
        return 0;
    int p = 63 - __builtin_clzll((unsigned long long)ns); /* ns in [2^p, 2^(p+1)) */
    int k = p - AT_LAT_MIN_SHIFT;
    if (k >= AT_LAT_POWERS)
        return AT_LAT_BUCKETS - 1;
    int sub = (int)((ns >> (p - 3)) & (AT_LAT_SUB - 1)); /* the next 3 bits */
    return 1 + k * AT_LAT_SUB + sub;
}

static int64_t at_lat__upper(int i)
{
    if (i == 0)
        return (int64_t)1 << AT_LAT_MIN_SHIFT;
    if (i >= AT_LAT_BUCKETS - 1)
        return INT64_MAX;
    int k = (i - 1) / AT_LAT_SUB, sub = (i - 1) % AT_LAT_SUB, p = k + AT_LAT_MIN_SHIFT;
    return ((int64_t)1 << p) + ((int64_t)(sub + 1) << (p - 3));
}

void at_lat_observe_ns(at_lat_t *h, int64_t ns)
{
    atomic_fetch_add_explicit(&h->b[at_lat__index(ns)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

uint64_t at_lat_count(const at_lat_t *h)
{
    return atomic_load_explicit(&((at_lat_t *)h)->count, memory_order_relaxed);
}

int64_t at_lat_quantile_ns(const at_lat_t *h, double q)
{
    at_lat_t *m = (at_lat_t *)h;
    uint64_t v[AT_LAT_BUCKETS], total = 0;
    for (int i = 0; i < AT_LAT_BUCKETS; i++)
        total += v[i] = atomic_load_explicit(&m->b[i], memory_order_relaxed);
    if (!total)
        return 0;
    uint64_t want = (uint64_t)(q * (double)total);
    if (want >= total)
        want = total - 1;
    uint64_t seen = 0;
    for (int i = 0; i < AT_LAT_BUCKETS; i++) {
        seen += v[i];
        if (seen > want)
            return at_lat__upper(i);
    }
    return at_lat__upper(AT_LAT_BUCKETS - 1);
}

int at_lat_write(const at_lat_t *h, at_buf_t *out, const char *name, const char *help)
{
    int rc = at_buf_printf(out, "# HELP %s %s\n# TYPE %s summary\n", name, help, name);
    static const double qs[] = {0.5, 0.99, 0.999};
    for (size_t i = 0; rc == 0 && i < 3; i++)
        rc = at_buf_printf(out, "%s{quantile=\"%g\"} %.9f\n", name, qs[i],
                           (double)at_lat_quantile_ns(h, qs[i]) / 1e9);
    if (rc == 0)
        rc = at_buf_printf(out, "%s_count %llu\n", name, (unsigned long long)at_lat_count(h));
    return rc;
}
