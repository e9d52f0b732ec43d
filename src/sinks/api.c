/* api.c - what the admin endpoints and /metrics show of the sinks: their
 * state, the dead-letter listing, replay requests, and the attune_sink_*
 * metrics. Runs on HTTP threads while the delivery thread works. */
#include "sinks_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *at_sinks__breaker_name(int st)
{
    return st == AT_BREAKER_OPEN ? "open" : st == AT_BREAKER_HALF_OPEN ? "half_open" : "closed";
}

static void at_sinks__one(at_sinks_t *s, at_sink_t *k, at_buf_t *b)
{
    int br = atomic_load(&k->a_breaker);
    (void)at_buf_puts(b, "{\"name\":");
    (void)at_buf_json_str(b, k->cfg->name, strlen(k->cfg->name));
    (void)at_buf_puts(b, ",\"url\":");
    (void)at_buf_json_str(b, k->cfg->url, strlen(k->cfg->url));
    (void)at_buf_printf(b, ",\"state\":\"%s\",\"breaker\":\"%s\",\"breaker_opened\":%llu",
                        br == AT_BREAKER_CLOSED ? "delivering" : "paused",
                        at_sinks__breaker_name(br), (unsigned long long)atomic_load(&k->a_opened));
    (void)at_buf_puts(b, ",\"position\":[");
    pthread_mutex_lock(&k->mu);
    for (int p = 0; p < k->partitions; p++)
        (void)at_buf_printf(b, "%s%lld", p ? "," : "", (long long)k->snap[p]);
    pthread_mutex_unlock(&k->mu);
    (void)at_buf_printf(
        b,
        "],\"lag\":%lld,\"inflight\":%d,\"counts\":{\"ok\":%llu,\"retry\":%llu,"
        "\"dead\":%llu,\"skipped\":%llu,\"attempts\":%llu},\"dead\":%llu,"
        "\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"count\":%llu},"
        "\"event_latency_ms\":{\"p50\":%.3f,\"p99\":%.3f}}",
        (long long)at_sinks__lag(s, k), atomic_load(&k->a_inflight),
        (unsigned long long)atomic_load(&k->n_ok), (unsigned long long)atomic_load(&k->n_retry),
        (unsigned long long)atomic_load(&k->n_dead), (unsigned long long)atomic_load(&k->n_skipped),
        (unsigned long long)atomic_load(&k->n_attempts),
        (unsigned long long)atomic_load(&k->a_dead), (double)at_lat_quantile_ns(&k->lat, 0.5) / 1e6,
        (double)at_lat_quantile_ns(&k->lat, 0.99) / 1e6, (unsigned long long)at_lat_count(&k->lat),
        (double)at_lat_quantile_ns(&k->lat_event, 0.5) / 1e6,
        (double)at_lat_quantile_ns(&k->lat_event, 0.99) / 1e6);
}

int at_sinks_list(at_sinks_t *s, char **json, size_t *len)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    (void)at_buf_puts(&b, "{\"sinks\":[");
    for (size_t j = 0; j < at_sinks__count(s); j++) {
        if (j)
            (void)at_buf_putc(&b, ',');
        at_sinks__one(s, at_sinks__at(s, j), &b);
    }
    (void)at_buf_puts(&b, "]}");
    *json = at_buf_steal(&b, len);
    return 0;
}

typedef struct at_sinks_list_dead {
    at_buf_t *b;
    int limit, shown;
    uint64_t total, target;
} at_sinks_list_dead_t;

static int at_sinks__list_fn(void *ud, uint64_t off, const char *json, size_t len)
{
    at_sinks_list_dead_t *x = ud;
    x->total++;
    if (x->shown >= x->limit || len < 2 || json[0] != '{')
        return 0;
    (void)at_buf_printf(x->b, "%s{\"offset\":%llu,\"replaying\":%s,", x->shown ? "," : "",
                        (unsigned long long)off, off < x->target ? "true" : "false");
    (void)at_buf_append(x->b, json + 1, len - 1);
    x->shown++;
    return 0;
}

int at_sinks_dead(at_sinks_t *s, const char *name, int limit, char **json, size_t *len)
{
    at_sink_t *k = at_sinks__find(s, name);
    if (!k)
        return AT_ENOTFOUND;
    char *data = NULL;
    size_t dlen = 0;
    int rc = at_sinks__read_dead(k, &data, &dlen);
    if (rc < 0)
        return rc;
    at_buf_t b;
    at_buf_init(&b, 0);
    (void)at_buf_puts(&b, "{\"sink\":");
    (void)at_buf_json_str(&b, name, strlen(name));
    (void)at_buf_puts(&b, ",\"dead\":[");
    at_sinks_list_dead_t x = {&b, limit > 0 ? limit : 100, 0, 0, atomic_load(&k->dead_target)};
    (void)at_sink_dead_scan(data, dlen, atomic_load(&k->dead_done), at_sinks__list_fn, &x);
    (void)at_buf_printf(&b, "],\"total\":%llu}", (unsigned long long)x.total);
    free(data);
    *json = at_buf_steal(&b, len);
    return 0;
}

int at_sinks_replay(at_sinks_t *s, const char *name, char **json, size_t *len)
{
    at_sink_t *k = at_sinks__find(s, name);
    if (!k)
        return AT_ENOTFOUND;
    atomic_store(&k->replay_req, true);
    at_sinks__wake(s);
    at_buf_t b;
    at_buf_init(&b, 0);
    (void)at_buf_puts(&b, "{\"sink\":");
    (void)at_buf_json_str(&b, name, strlen(name));
    (void)at_buf_printf(&b, ",\"replaying\":%llu}", (unsigned long long)atomic_load(&k->a_dead));
    *json = at_buf_steal(&b, len);
    return 0;
}

/* One sample line per sink of the value that get returns. */
static void at_sinks__family(at_sinks_t *s, at_buf_t *out, const char *name, const char *type,
                             const char *help, double (*get)(at_sinks_t *, at_sink_t *))
{
    for (size_t j = 0; j < at_sinks__count(s); j++) {
        at_sink_t *k = at_sinks__at(s, j);
        char lb[128];
        (void)snprintf(lb, sizeof lb, "sink=\"%s\"", k->cfg->name); /* names are [A-Za-z0-9_-] */
        (void)at_metric_write(out, name, type, j ? NULL : help, lb, get(s, k));
    }
}

static double at_sinks__m_attempts(at_sinks_t *s, at_sink_t *k)
{
    (void)s;
    return (double)atomic_load(&k->n_attempts);
}
static double at_sinks__m_inflight(at_sinks_t *s, at_sink_t *k)
{
    (void)s;
    return (double)atomic_load(&k->a_inflight);
}
static double at_sinks__m_open(at_sinks_t *s, at_sink_t *k)
{
    (void)s;
    return atomic_load(&k->a_breaker) == AT_BREAKER_OPEN ? 1 : 0;
}
static double at_sinks__m_opened(at_sinks_t *s, at_sink_t *k)
{
    (void)s;
    return (double)atomic_load(&k->a_opened);
}
static double at_sinks__m_lag(at_sinks_t *s, at_sink_t *k)
{
    return (double)at_sinks__lag(s, k);
}
static double at_sinks__m_dead(at_sinks_t *s, at_sink_t *k)
{
    (void)s;
    return (double)atomic_load(&k->a_dead);
}

int at_sinks_metrics(at_sinks_t *s, at_buf_t *out)
{
    if (!s)
        return 0;
    (void)at_buf_puts(out, "# HELP attune_sink_deliveries_total Outputs finished by a sink, by "
                           "result (retry: an attempt that will be tried again).\n"
                           "# TYPE attune_sink_deliveries_total counter\n");
    for (size_t j = 0; j < at_sinks__count(s); j++) {
        at_sink_t *k = at_sinks__at(s, j);
        const char *names[] = {"ok", "retry", "dead", "skipped"};
        uint64_t v[] = {atomic_load(&k->n_ok), atomic_load(&k->n_retry), atomic_load(&k->n_dead),
                        atomic_load(&k->n_skipped)};
        for (int i = 0; i < 4; i++) {
            char lb[160];
            (void)snprintf(lb, sizeof lb, "sink=\"%s\",result=\"%s\"", k->cfg->name, names[i]);
            (void)at_metric_write(out, "attune_sink_deliveries_total", "counter", NULL, lb,
                                  (double)v[i]);
        }
    }
    at_sinks__family(s, out, "attune_sink_attempts_total", "counter",
                     "HTTP attempts made by a sink.", at_sinks__m_attempts);
    at_sinks__family(s, out, "attune_sink_inflight", "gauge", "Attempts in flight.",
                     at_sinks__m_inflight);
    at_sinks__family(s, out, "attune_sink_breaker_open", "gauge",
                     "1 while the endpoint's circuit breaker is open.", at_sinks__m_open);
    at_sinks__family(s, out, "attune_sink_breaker_opened_total", "counter",
                     "Times the endpoint's circuit breaker opened.", at_sinks__m_opened);
    at_sinks__family(s, out, "attune_sink_lag", "gauge",
                     "Outputs on the bus past the sink's durable position.", at_sinks__m_lag);
    at_sinks__family(s, out, "attune_sink_dead", "gauge", "Dead letters of the sink not replayed.",
                     at_sinks__m_dead);
    return 0;
}
