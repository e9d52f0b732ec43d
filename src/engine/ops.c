/* ops.c - what operators read: metrics, the rejected-event ring, and the
 * log read back for `attune replay`. */
#include "at_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writer thread. */
void at_engine__count_reject(attune_t *a, const char *code)
{
    pthread_mutex_lock(&a->m.reject_mu);
    int i = 0;
    while (i < AT_REJECT_CODES && a->m.reject_code[i][0] && strcmp(a->m.reject_code[i], code) != 0)
        i++;
    if (i == AT_REJECT_CODES)
        i = AT_REJECT_CODES - 1; /* the last slot takes whatever did not fit */
    if (!a->m.reject_code[i][0]) {
        /* code is an at_error_t's, so it fits: a cut one would never match again */
        int n = snprintf(a->m.reject_code[i], sizeof a->m.reject_code[i], "%s", code);
        AT_ASSERT(n >= 0 && n < (int)sizeof a->m.reject_code[i]);
    }
    a->m.reject_count[i]++;
    pthread_mutex_unlock(&a->m.reject_mu);
}

/* Takes ownership of json. Writer thread. */
void at_engine__ring_push(attune_t *a, char *json)
{
    pthread_mutex_lock(&a->ring_mu);
    size_t i = a->ring_next++ % AT_REJECT_RING;
    free(a->ring[i]);
    a->ring[i] = json;
    pthread_mutex_unlock(&a->ring_mu);
}

int attune_rejected(attune_t *a, int limit, char **json, size_t *len)
{
    if (limit <= 0 || limit > AT_REJECT_RING)
        limit = limit <= 0 ? 100 : AT_REJECT_RING;
    at_buf_t b;
    at_buf_init(&b, 0);
    at_buf_puts(&b, "{\"rejected\":[");
    pthread_mutex_lock(&a->ring_mu);
    size_t n = AT_MIN((size_t)limit, AT_MIN(a->ring_next, (size_t)AT_REJECT_RING));
    for (size_t k = 0; k < n; k++) {
        size_t i = (a->ring_next - n + k) % AT_REJECT_RING;
        if (k)
            at_buf_putc(&b, ',');
        at_buf_puts(&b, a->ring[i]);
    }
    pthread_mutex_unlock(&a->ring_mu);
    at_buf_puts(&b, "]}");
    *json = at_buf_steal(&b, len);
    return 0;
}

static void at_engine__counter(at_buf_t *b, const char *name, const char *help, uint64_t v)
{
    at_metric_write(b, name, "counter", help, NULL, (double)v);
}

static void at_engine__gauge(at_buf_t *b, const char *name, const char *help, double v)
{
    at_metric_write(b, name, "gauge", help, NULL, v);
}

static void at_engine__rejects(attune_t *a, at_buf_t *b)
{
    at_buf_puts(b, "# HELP attune_events_rejected_total Events refused, by reason.\n"
                   "# TYPE attune_events_rejected_total counter\n");
    pthread_mutex_lock(&a->m.reject_mu);
    for (int i = 0; i < AT_REJECT_CODES && a->m.reject_code[i][0]; i++) {
        char labels[sizeof "reason=\"\"" + sizeof a->m.reject_code[0]]; /* holds any code */
        (void)snprintf(labels, sizeof labels, "reason=\"%s\"", a->m.reject_code[i]);
        at_metric_write(b, "attune_events_rejected_total", "counter", NULL, labels,
                        (double)a->m.reject_count[i]);
    }
    pthread_mutex_unlock(&a->m.reject_mu);
}

int attune_metrics(attune_t *a, char **text, size_t *len)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    at_engine_metrics_t *m = &a->m;
    at_engine__counter(&b, "attune_events_accepted_total", "Events written to the log.",
                       atomic_load(&m->accepted));
    at_engine__counter(&b, "attune_events_duplicate_total",
                       "Events dropped as duplicates of an event_id seen within the horizon.",
                       atomic_load(&m->duplicates));
    at_engine__rejects(a, &b);
    at_engine__counter(&b, "attune_events_clamped_total",
                       "Events whose future timestamp was clamped to the receive time.",
                       atomic_load(&m->clamped));
    at_engine__counter(&b, "attune_batches_total", "Batches answered.", atomic_load(&m->batches));
    at_engine__counter(&b, "attune_batches_refused_full_total",
                       "Batches refused with 429 because the queues were full.",
                       atomic_load(&m->batches_full));
    at_engine__counter(&b, "attune_log_write_errors_total", "Group commits that failed.",
                       atomic_load(&m->write_errors));
    at_engine__counter(&b, "attune_log_commits_total", "Group commits made durable by a sync.",
                       atomic_load(&m->commits));
    at_engine__counter(&b, "attune_dedup_evicted_total",
                       "Dedup entries evicted by the cap before their horizon.",
                       atomic_load(&m->dedup_evicted));
    at_engine__gauge(&b, "attune_dedup_entries", "Event ids held for deduplication.",
                     (double)atomic_load(&m->dedup_size));
    at_log_stats_t st;
    at_log_stats(a->log, &st);
    at_engine__gauge(&b, "attune_log_bytes", "Bytes of records in the event log.",
                     (double)st.bytes);
    at_engine__gauge(&b, "attune_log_segments", "Segment files of the event log.",
                     (double)st.segments);
    at_engine__counter(&b, "attune_log_truncated_bytes_total",
                       "Bytes of a torn tail cut at start-up.", st.truncated_bytes);
    pthread_mutex_lock(&a->mu);
    double qjobs = (double)a->queued_jobs, qbytes = (double)a->queued_bytes;
    pthread_mutex_unlock(&a->mu);
    at_engine__gauge(&b, "attune_queue_batches", "Batches waiting for the log writer.", qjobs);
    at_engine__gauge(&b, "attune_queue_bytes", "Bytes charged to queued batches.", qbytes);
    at_engine__gauge(&b, "attune_ready", "1 once recovery is done.", atomic_load(&a->ready));
    at_hist_write(&m->fsync, &b, "attune_fsync_seconds", "Time of one log sync.", NULL);
    at_hist_write(&m->commit_wait, &b, "attune_commit_seconds",
                  "Time from queueing a batch to its answer (includes the sync).", NULL);
    *text = at_buf_steal(&b, len);
    return 0;
}

int attune_log_read(const char *data_dir, const int64_t *from, attune_record_cb cb, void *ud,
                    char *err, size_t errlen)
{
    size_t n = strlen(data_dir) + 8;
    char *dir = at_xmalloc(n);
    AT_ASSERT(snprintf(dir, n, "%s/log", data_dir) < (int)n);
    at_log_t *log = NULL;
    at_log_iter_t *it = NULL;
    at_log_opts_t lo = {.read_only = true};
    int rc = at_log_open(&log, dir, &lo, err, errlen);
    if (rc < 0)
        goto out;
    if ((rc = at_log_iter_open(log, from, &it)) < 0)
        goto out;
    at_rec_t r;
    while ((rc = at_log_iter_next(it, &r)) == 1) {
        attune_record_t ar = {.partition = r.partition,
                              .offset = r.offset,
                              .type = at_rec_type_name(r.type),
                              .recv_ms = r.recv_ms,
                              .ts_ms = r.ts_ms,
                              .key = r.key,
                              .key_len = r.key_len,
                              .id = r.id,
                              .id_len = r.id_len,
                              .value = r.value,
                              .value_len = r.value_len};
        if ((rc = cb(ud, &ar)) != 0)
            goto out;
    }
    if (rc < 0)
        (void)snprintf(err, errlen, "reading the log: %s", at_strerror(rc));
out:
    if (it)
        at_log_iter_close(it);
    if (log)
        at_log_close(log);
    free(dir);
    return rc;
}
