/* writer.c - the log writer thread: group commit.
 *
 * The writer takes every batch queued since its last turn, drops duplicates
 * (exact dedup by event_id), appends the events to the log and the rejected
 * ones to the quarantine log, makes them durable with one fdatasync (fsync
 * batch), and only then answers each batch. Under fsync always each batch
 * gets its own sync; under never none.
 *
 * THREAD SAFETY: everything here runs on the writer thread, which alone
 * owns a->log, a->rejlog and a->dedup.
 */
#include "at_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Scratch space reused across turns. */
typedef struct at_writer {
    at_rec_t *recs; /* events of the group, in job order */
    size_t nrecs, caprecs;
    size_t *job_first; /* index of each job's first rec */
    uint32_t *dups;    /* duplicates dropped per job */
    at_rec_t *rejs;    /* quarantine records */
    size_t nrejs, caprejs;
    at_buf_t rejbuf; /* their values */
    at_buf_t answer;
    int64_t *lastpos; /* per partition, scratch for positions */
} at_writer_t;

static void at_writer__push(at_rec_t **v, size_t *n, size_t *cap, const at_rec_t *r)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *v = at_xrealloc(*v, *cap * sizeof **v);
    }
    (*v)[(*n)++] = *r;
}

/* Dedups job's events into w->recs. */
static uint32_t at_writer__collect(attune_t *a, at_writer_t *w, at_job_t *job)
{
    uint32_t dups = 0;
    for (size_t i = 0; i < job->batch.nevents; i++) {
        const at_event_t *ev = &job->batch.events[i];
        if (!ev->id_assigned &&
            at_dedup_check(a->dedup, ev->partition, ev->event_id, ev->event_id_len, ev->recv_ms)) {
            dups++;
            continue;
        }
        at_rec_t r = {
            .partition = ev->partition,
            .type = AT_REC_EVENT,
            .version = 1,
            .flags = (uint16_t)((ev->id_assigned ? 0 : AT_REC_F_CLIENT_ID) |
                                (ev->clamped ? AT_REC_F_CLAMPED : 0)),
            .recv_ms = ev->recv_ms,
            .ts_ms = ev->ts_ms,
            .key = ev->key,
            .key_len = ev->key_len,
            .id = ev->event_id,
            .id_len = ev->event_id_len,
            .value = ev->json,
            .value_len = ev->json_len,
        };
        at_writer__push(&w->recs, &w->nrecs, &w->caprecs, &r);
    }
    return dups;
}

/* Builds the quarantine record values of job's rejects. The records' value
 * pointers are fixed up in at_writer__fix_rejs once rejbuf stops moving. */
static void at_writer__collect_rejects(attune_t *a, at_writer_t *w, at_job_t *job)
{
    for (size_t i = 0; i < job->batch.nrejects; i++) {
        const at_reject_t *rj = &job->batch.rejects[i];
        size_t start = w->rejbuf.len;
        int64_t now = at_time_now_ms();
        at_buf_printf(&w->rejbuf,
                      "{\"received_at\":%lld,\"index\":%d,\"error\":{\"code\":", (long long)now,
                      rj->index);
        at_buf_json_str(&w->rejbuf, rj->error.code, strlen(rj->error.code));
        at_buf_puts(&w->rejbuf, ",\"message\":");
        at_buf_json_str(&w->rejbuf, rj->error.message, strlen(rj->error.message));
        at_buf_puts(&w->rejbuf, ",\"field\":");
        at_buf_json_str(&w->rejbuf, rj->error.field, strlen(rj->error.field));
        at_buf_puts(&w->rejbuf, "},\"raw\":");
        at_buf_json_str(&w->rejbuf, rj->raw ? rj->raw : "", rj->raw ? rj->raw_len : 0);
        at_buf_putc(&w->rejbuf, '}');
        at_rec_t r = {.partition = 0,
                      .type = AT_REC_EVENT,
                      .version = 1,
                      .recv_ms = now,
                      .ts_ms = now,
                      .key = "",
                      .value = (const char *)(uintptr_t)start, /* offset until fixed */
                      .value_len = (uint32_t)(w->rejbuf.len - start)};
        at_writer__push(&w->rejs, &w->nrejs, &w->caprejs, &r);
        at_engine__count_reject(a, rj->error.code);
    }
}

static void at_writer__fix_rejs(at_writer_t *w)
{
    for (size_t i = 0; i < w->nrejs; i++)
        w->rejs[i].value = w->rejbuf.data + (uintptr_t)w->rejs[i].value;
}

/* Writes the answer body of one job. recs[first..end) are its records. */
static void at_writer__answer(attune_t *a, at_writer_t *w, at_job_t *job, size_t first, size_t end,
                              uint32_t dups)
{
    at_buf_t *b = &w->answer;
    at_buf_reset(b);
    at_buf_printf(b, "{\"accepted\":%zu,\"duplicates\":%u,\"rejected\":[", end - first, dups);
    for (size_t i = 0; i < job->batch.nrejects; i++) {
        const at_reject_t *rj = &job->batch.rejects[i];
        at_buf_printf(b, "%s{\"index\":%d,\"code\":", i ? "," : "", rj->index);
        at_buf_json_str(b, rj->error.code, strlen(rj->error.code));
        at_buf_puts(b, ",\"error\":");
        at_buf_json_str(b, rj->error.message, strlen(rj->error.message));
        if (rj->error.field[0]) {
            at_buf_puts(b, ",\"field\":");
            at_buf_json_str(b, rj->error.field, strlen(rj->error.field));
        }
        at_buf_putc(b, '}');
    }
    at_buf_puts(b, "],\"positions\":[");
    for (int p = 0; p < a->partitions; p++)
        w->lastpos[p] = -1;
    for (size_t i = first; i < end; i++)
        w->lastpos[w->recs[i].partition] = w->recs[i].offset;
    bool any = false;
    for (int p = 0; p < a->partitions; p++) {
        if (w->lastpos[p] >= 0) {
            at_buf_printf(b, "%s\"%d:%lld\"", any ? "," : "", p, (long long)w->lastpos[p]);
            any = true;
        }
    }
    at_buf_puts(b, "]}");
    attune_ingest_result_t res = {.status = 0,
                                  .accepted = (uint32_t)(end - first),
                                  .duplicates = dups,
                                  .rejected = (uint32_t)job->batch.nrejects,
                                  .json = b->data,
                                  .json_len = b->len};
    atomic_fetch_add(&a->m.accepted, end - first);
    atomic_fetch_add(&a->m.duplicates, dups);
    atomic_fetch_add(&a->m.clamped, job->batch.nclamped);
    atomic_fetch_add(&a->m.batches, 1);
    at_hist_observe_ns(&a->m.commit_wait, at_time_mono_ns() - job->queued_ns);
    job->cb(job->ud, &res);
}

static void at_writer__fail(attune_t *a, at_job_t *job, int rc)
{
    attune_ingest_result_t res = {.status = rc};
    at_error_t e;
    if (rc == -ENOSPC)
        at_error_set(&e, rc, "disk_full", NULL,
                     "the disk is full; nothing of this batch was written");
    else
        at_error_set(&e, rc, "write_failed", NULL, "writing the log failed: %s", at_strerror(rc));
    memcpy(&res.error, &e, sizeof res.error);
    atomic_fetch_add(&a->m.write_errors, 1);
    job->cb(job->ud, &res);
}

static int at_writer__sync(attune_t *a, at_log_t *log)
{
    int64_t t0 = at_time_mono_ns();
    int rc = at_log_sync(log);
    at_hist_observe_ns(&a->m.fsync, at_time_mono_ns() - t0);
    return rc;
}

/* Writes and answers jobs[0..n). The records of a failed group are taken
 * back out of the dedup index, so a retry is not called a duplicate. */
static void at_writer__group(attune_t *a, at_writer_t *w, at_job_t **jobs, size_t n, bool sync)
{
    w->nrecs = w->nrejs = 0;
    at_buf_reset(&w->rejbuf);
    uint32_t *dups = w->dups = at_xrealloc(w->dups, n * sizeof *w->dups);
    w->job_first = at_xrealloc(w->job_first, (n + 1) * sizeof *w->job_first);
    for (size_t j = 0; j < n; j++) {
        w->job_first[j] = w->nrecs;
        dups[j] = at_writer__collect(a, w, jobs[j]);
        at_writer__collect_rejects(a, w, jobs[j]);
    }
    w->job_first[n] = w->nrecs;
    at_writer__fix_rejs(w);
    int rc = 0;
    if (w->nrejs && (rc = at_log_append(a->rejlog, w->rejs, w->nrejs)) == 0 && sync)
        rc = at_writer__sync(a, a->rejlog);
    if (rc == 0 && w->nrecs && (rc = at_log_append(a->log, w->recs, w->nrecs)) == 0 && sync)
        rc = at_writer__sync(a, a->log);
    if (rc < 0) {
        AT_ERROR("log write failed", "err=\"%s\" batches=%zu", at_strerror(rc), n);
        for (size_t i = 0; i < w->nrecs; i++)
            if (w->recs[i].flags & AT_REC_F_CLIENT_ID)
                at_dedup_forget(a->dedup, w->recs[i].partition, w->recs[i].id, w->recs[i].id_len);
        for (size_t j = 0; j < n; j++)
            at_writer__fail(a, jobs[j], rc);
        return;
    }
    if (sync)
        atomic_fetch_add(&a->m.commits, 1);
    for (size_t i = 0; i < w->nrejs; i++)
        at_engine__ring_push(a, at_xstrndup(w->rejs[i].value, w->rejs[i].value_len));
    for (size_t j = 0; j < n; j++)
        at_writer__answer(a, w, jobs[j], w->job_first[j], w->job_first[j + 1], dups[j]);
}

/* Rebuilds the dedup index from the log records within the horizon, and
 * the rejected ring from the quarantine log. */
static int at_writer__recover(attune_t *a)
{
    int64_t since = at_time_now_ms() - a->cfg.dedup_horizon_ms;
    at_log_iter_t *it = NULL;
    int rc = at_log_iter_open(a->log, NULL, &it);
    if (rc < 0)
        return rc;
    at_rec_t r;
    uint64_t n = 0;
    while ((rc = at_log_iter_next(it, &r)) == 1) {
        if (r.type == AT_REC_EVENT && (r.flags & AT_REC_F_CLIENT_ID) && r.recv_ms >= since) {
            at_dedup_check(a->dedup, r.partition, r.id, r.id_len, r.recv_ms);
            n++;
        }
    }
    at_log_iter_close(it);
    if (rc < 0)
        return rc;
    if ((rc = at_log_iter_open(a->rejlog, NULL, &it)) < 0)
        return rc;
    while ((rc = at_log_iter_next(it, &r)) == 1)
        at_engine__ring_push(a, at_xstrndup(r.value, r.value_len));
    at_log_iter_close(it);
    AT_INFO("recovered", "dedup_entries=%llu", (unsigned long long)n);
    return rc;
}

static void at_writer__retain(attune_t *a)
{
    int64_t now = at_time_now_ms();
    /* Never drop what the dedup rebuild still needs. */
    int64_t age = a->cfg.retention_ms ? AT_MAX(a->cfg.retention_ms, a->cfg.dedup_horizon_ms) : 0;
    int rc = at_log_retain(a->log, a->cfg.retention_bytes, age, now, NULL);
    if (rc > 0)
        AT_INFO("retention", "segments_deleted=%d", rc);
    at_log_retain(a->rejlog, a->cfg.rejected_max_bytes, 0, now, NULL);
}

/* Takes the whole queue; blocks until there is something or stopping.
 * Returns NULL when stopping and drained. */
static at_job_t *at_writer__take(attune_t *a, size_t *n)
{
    pthread_mutex_lock(&a->mu);
    while (!a->head && !a->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&a->cv, &a->mu, &ts);
        if (!a->head)
            break; /* idle turn: let the caller run housekeeping */
    }
    at_job_t *list = a->head;
    *n = a->queued_jobs;
    a->head = a->tail = NULL;
    a->queued_jobs = 0;
    pthread_mutex_unlock(&a->mu);
    return list;
}

static void at_writer__release(attune_t *a, at_job_t **jobs, size_t n)
{
    size_t cost = 0;
    for (size_t j = 0; j < n; j++) {
        cost += jobs[j]->cost;
        at_batch_deinit(&jobs[j]->batch);
        free(jobs[j]);
    }
    pthread_mutex_lock(&a->mu);
    a->queued_bytes -= cost;
    pthread_mutex_unlock(&a->mu);
}

void *at_engine__writer_main(void *arg)
{
    attune_t *a = arg;
    at_writer_t w = {0};
    at_buf_init(&w.rejbuf, 0);
    at_buf_init(&w.answer, 0);
    w.lastpos = at_xcalloc((size_t)a->partitions, sizeof *w.lastpos);
    int rc = at_writer__recover(a);
    if (rc < 0)
        AT_ERROR("recovery failed", "err=\"%s\"", at_strerror(rc));
    atomic_store(&a->ready, 1);
    at_job_t **jobs = NULL;
    size_t capjobs = 0;
    int64_t last_retain = 0;
    for (;;) {
        size_t n = 0;
        at_job_t *list = at_writer__take(a, &n);
        if (!list) {
            pthread_mutex_lock(&a->mu);
            bool done = a->stopping && !a->head;
            pthread_mutex_unlock(&a->mu);
            if (done)
                break;
        }
        if (n > capjobs) {
            capjobs = n * 2;
            jobs = at_xrealloc(jobs, capjobs * sizeof(at_job_t *));
        }
        for (size_t j = 0; j < n; j++, list = list->next)
            jobs[j] = list;
        if (a->cfg.fsync == AT_FSYNC_ALWAYS) {
            for (size_t j = 0; j < n; j++)
                at_writer__group(a, &w, &jobs[j], 1, true);
        } else if (n) {
            at_writer__group(a, &w, jobs, n, a->cfg.fsync == AT_FSYNC_BATCH);
        }
        at_writer__release(a, jobs, n);
        atomic_store(&a->m.dedup_evicted, at_dedup_evicted(a->dedup));
        atomic_store(&a->m.dedup_size, at_dedup_size(a->dedup));
        int64_t now = at_time_mono_ns();
        if (now - last_retain > 10 * 1000000000LL) {
            at_writer__retain(a);
            last_retain = now;
        }
    }
    /* Whatever fsync never left in the page cache is flushed on the way out. */
    at_log_sync(a->log);
    at_log_sync(a->rejlog);
    free(jobs);
    free(w.recs);
    free(w.rejs);
    free(w.job_first);
    free(w.dups);
    free(w.lastpos);
    at_buf_deinit(&w.rejbuf);
    at_buf_deinit(&w.answer);
    return NULL;
}
