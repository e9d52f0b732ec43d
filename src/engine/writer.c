/* writer.c - the log writer thread: group commit.
 *
 * The writer takes every batch queued since its last turn, drops duplicates
 * (exact dedup by event_id), appends the events to the log and the rejected
 * ones to the quarantine log, makes them durable with one fdatasync (fsync
 * batch), and only then answers each batch. Under fsync always each batch
 * gets its own sync; under never none.
 *
 * With the events go the records the engine writes itself: a merge record
 * to the anonymous key's partition for every identify that links an
 * anonymous id (DESIGN.md §6), the internal appends queued by the rule API
 * and by the partitions' processing (handoffs, forwarded events), and tick
 * records for partitions that have been idle (stream.idle_tick). After each
 * group the writer publishes the durable end for the shards.
 *
 * THREAD SAFETY: everything here runs on the writer thread, which alone
 * owns a->log, a->rejlog and a->dedup.
 */
#include "at_engine.h"
#include "at_json.h"

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
    int64_t *lastpos;   /* per partition, scratch for positions */
    at_buf_t mbuf;      /* values of merge records */
    size_t first_merge; /* recs[first_merge..] are merges and internal records */
    at_arena_t arena;   /* parsing identify events */
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

/* The merge records of the group's identify events: an identify with both
 * ids links the anonymous key to the user key (DESIGN.md §6). Values go to
 * mbuf; their pointers are fixed by at_writer__fix_merges. */
static void at_writer__merges(attune_t *a, at_writer_t *w, size_t first, size_t end)
{
    for (size_t i = first; i < end; i++) {
        const at_rec_t *ev = &w->recs[i];
        if (ev->key_len < 3 || ev->key[0] != 'u' || ev->value_len < 20 ||
            !memmem(ev->value, ev->value_len, "\"type\":\"identify\"", 17))
            continue;
        at_json_t *root = NULL;
        at_error_t e;
        at_arena_reset(&w->arena);
        if (at_json_parse_all(ev->value, ev->value_len, &w->arena, 64, &root, &e) < 0)
            continue;
        const at_json_t *anon = at_json_get(root, "anonymous_id", 12);
        if (!anon || anon->type != AT_JSON_STRING || !anon->len)
            continue;
        size_t kat = w->mbuf.len;
        AT_ASSERT(at_buf_puts(&w->mbuf, "a:") == 0);
        AT_ASSERT(at_buf_append(&w->mbuf, anon->s, anon->len) == 0);
        size_t klen = w->mbuf.len - kat, vat = w->mbuf.len;
        AT_ASSERT(at_buf_puts(&w->mbuf, "{\"user\":") == 0);
        AT_ASSERT(at_buf_json_str(&w->mbuf, ev->key, ev->key_len) == 0);
        AT_ASSERT(at_buf_putc(&w->mbuf, '}') == 0);
        at_rec_t m = {.partition = at_partition_of(w->mbuf.data + kat, klen, a->partitions),
                      .type = AT_REC_MERGE,
                      .version = 1,
                      .recv_ms = ev->recv_ms,
                      .ts_ms = ev->ts_ms,
                      .key = (const char *)(uintptr_t)kat,
                      .key_len = (uint32_t)klen,
                      .id = ev->id,
                      .id_len = ev->id_len,
                      .value = (const char *)(uintptr_t)vat,
                      .value_len = (uint32_t)(w->mbuf.len - vat)};
        at_writer__push(&w->recs, &w->nrecs, &w->caprecs, &m);
    }
}

static void at_writer__fix_merges(at_writer_t *w, size_t first, size_t end)
{
    for (size_t i = first; i < end; i++) {
        w->recs[i].key = w->mbuf.data + (uintptr_t)w->recs[i].key;
        w->recs[i].value = w->mbuf.data + (uintptr_t)w->recs[i].value;
    }
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

/* After records are durable (or appended, under fsync never): the tick
 * state learns of them and the shards may read them. */
static void at_writer__appended(attune_t *a, const at_rec_t *recs, size_t n)
{
    int64_t now = at_time_mono_ns() / 1000000;
    for (size_t i = 0; i < n; i++) {
        const at_rec_t *r = &recs[i];
        int p = r->partition;
        a->last_append[p] = now;
        int64_t t = r->type == AT_REC_TICK ? r->ts_ms
                    : (r->type == AT_REC_EVENT || r->type == AT_REC_FORWARDED)
                        ? AT_MIN(r->ts_ms, r->recv_ms)
                        : AT_WM_NONE;
        if (t != AT_WM_NONE && (a->tick_trusted[p] == AT_WM_NONE || t > a->tick_trusted[p]))
            a->tick_trusted[p] = t;
        if (r->type == AT_REC_CONTROL)
            a->last_control[p] = at_hash64(r->value, r->value_len) | 1;
    }
}

static void at_writer__publish(attune_t *a)
{
    uint64_t seq = at_log_seq(a->log);
    atomic_store(&a->durable, seq);
    if (a->streams)
        at_streams_publish(a->streams, seq);
}

/* Writes and answers jobs[0..n) together with the internal appends ij (a
 * list). The records of a failed group are taken back out of the dedup
 * index, so a retry is not called a duplicate; internal appends of the
 * partitions' processing are queued again (they must not be lost), the
 * others fail. */
static void at_writer__group(attune_t *a, at_writer_t *w, at_job_t **jobs, size_t n, at_ijob_t *ij,
                             bool sync)
{
    w->nrecs = w->nrejs = 0;
    at_buf_reset(&w->rejbuf);
    at_buf_reset(&w->mbuf);
    uint32_t *dups = w->dups = at_xrealloc(w->dups, (n + 1) * sizeof *w->dups);
    w->job_first = at_xrealloc(w->job_first, (n + 1) * sizeof *w->job_first);
    for (size_t j = 0; j < n; j++) {
        w->job_first[j] = w->nrecs;
        dups[j] = at_writer__collect(a, w, jobs[j]);
        at_writer__collect_rejects(a, w, jobs[j]);
    }
    w->job_first[n] = w->nrecs;
    size_t nev = w->nrecs;
    at_writer__merges(a, w, 0, nev);
    at_writer__fix_merges(w, nev, w->nrecs);
    for (at_ijob_t *x = ij; x; x = x->next)
        for (size_t i = 0; i < x->n; i++)
            at_writer__push(&w->recs, &w->nrecs, &w->caprecs, &x->recs[i]);
    at_writer__fix_rejs(w);
    int rc = 0;
    if (w->nrejs && (rc = at_log_append(a->rejlog, w->rejs, w->nrejs)) == 0 && sync)
        rc = at_writer__sync(a, a->rejlog);
    if (rc == 0 && w->nrecs && (rc = at_log_append(a->log, w->recs, w->nrecs)) == 0 && sync)
        rc = at_writer__sync(a, a->log);
    if (rc < 0) {
        AT_ERROR("log write failed", "err=\"%s\" batches=%zu", at_strerror(rc), n);
        for (size_t i = 0; i < nev; i++)
            if (w->recs[i].flags & AT_REC_F_CLIENT_ID)
                at_dedup_forget(a->dedup, w->recs[i].partition, w->recs[i].id, w->recs[i].id_len);
        for (size_t j = 0; j < n; j++)
            at_writer__fail(a, jobs[j], rc);
        while (ij) {
            at_ijob_t *next = ij->next;
            if (ij->src >= 0) {
                at_engine__append(a, ij);
            } else {
                if (ij->done)
                    ij->done(ij->ud, rc);
                free(ij);
            }
            ij = next;
        }
        return;
    }
    if (sync)
        atomic_fetch_add(&a->m.commits, 1);
    at_writer__appended(a, w->recs, w->nrecs);
    at_writer__publish(a);
    for (size_t i = 0; i < w->nrejs; i++)
        at_engine__ring_push(a, at_xstrndup(w->rejs[i].value, w->rejs[i].value_len));
    for (size_t j = 0; j < n; j++)
        at_writer__answer(a, w, jobs[j], w->job_first[j], w->job_first[j + 1], dups[j]);
    while (ij) {
        at_ijob_t *next = ij->next;
        if (ij->src >= 0 && a->streams)
            at_streams_sent_durable(a->streams, ij->src, ij->n);
        if (ij->done)
            ij->done(ij->ud, 0);
        free(ij);
        ij = next;
    }
}

/* Tick records for partitions idle for stream.idle_tick: each moves the
 * partition's trusted time on by the wall-clock time since its last
 * record, never past now (DESIGN.md §6). */
static void at_writer__ticks(attune_t *a, at_writer_t *w)
{
    if (!a->cfg.ticks)
        return;
    int64_t mono = at_time_mono_ns() / 1000000, wall = at_time_now_ms();
    w->nrecs = 0;
    for (int p = 0; p < a->partitions; p++) {
        int64_t idle = mono - a->last_append[p];
        if (a->tick_trusted[p] == AT_WM_NONE || idle < a->cfg.idle_tick_ms)
            continue;
        int64_t t = AT_MIN(a->tick_trusted[p] + idle, wall);
        if (t <= a->tick_trusted[p]) {
            a->last_append[p] = mono; /* caught up with the wall clock: look again later */
            continue;
        }
        at_rec_t r = {.partition = p,
                      .type = AT_REC_TICK,
                      .version = 1,
                      .recv_ms = wall,
                      .ts_ms = t,
                      .key = "",
                      .id = "",
                      .value = ""};
        at_writer__push(&w->recs, &w->nrecs, &w->caprecs, &r);
    }
    if (!w->nrecs)
        return;
    int rc = at_log_append(a->log, w->recs, w->nrecs);
    if (rc == 0 && a->cfg.fsync != AT_FSYNC_NEVER)
        rc = at_writer__sync(a, a->log);
    if (rc < 0) {
        AT_WARN("tick write failed", "err=\"%s\"", at_strerror(rc));
        return;
    }
    atomic_fetch_add(&a->ticks, w->nrecs);
    at_writer__appended(a, w->recs, w->nrecs);
    at_writer__publish(a);
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
        at_writer__appended(a, &r, 1);
    }
    int64_t now = at_time_mono_ns() / 1000000;
    for (int p = 0; p < a->partitions; p++)
        a->last_append[p] = now;
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
    int64_t *keep = at_xcalloc((size_t)a->partitions, sizeof *keep);
    for (int p = 0; p < a->partitions; p++)
        keep[p] = a->streams ? at_streams_keep_from(a->streams, p) : 0;
    int rc = at_log_retain(a->log, a->cfg.retention_bytes, age, now, keep);
    free(keep);
    if (rc > 0)
        AT_INFO("retention", "segments_deleted=%d", rc);
    at_log_retain(a->rejlog, a->cfg.rejected_max_bytes, 0, now, NULL);
}

/* Takes the whole queue and the internal appends; blocks until there is
 * something, or up to 100 ms (ticks and housekeeping run between turns).
 * *done: stopping was asked and nothing is left. */
static at_job_t *at_writer__take(attune_t *a, size_t *n, at_ijob_t **ij, bool *done)
{
    pthread_mutex_lock(&a->mu);
    if (!a->head && !a->ihead && !a->writer_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    }
    at_job_t *list = a->head;
    *n = a->queued_jobs;
    *ij = a->ihead;
    a->head = a->tail = NULL;
    a->ihead = a->itail = NULL;
    a->queued_jobs = 0;
    *done = a->writer_stop && !list && !*ij;
    pthread_mutex_unlock(&a->mu);
    return list;
}

/* The rule set every partition must have seen last; control records for
 * the partitions whose last one differs (a crash between the registry's
 * write and the control records', or a changed config file). */
static void at_writer__reconcile_rules(attune_t *a, at_writer_t *w)
{
    size_t len = 0;
    uint64_t h = 0;
    char *dump = at_engine__rules_dump(a, &len, &h);
    w->nrecs = 0;
    for (int p = 0; p < a->partitions; p++) {
        bool empty = len == 2 && a->last_control[p] == 0;
        if (empty || a->last_control[p] == (h | 1))
            continue;
        at_rec_t r = {.partition = p,
                      .type = AT_REC_CONTROL,
                      .version = 1,
                      .recv_ms = at_time_now_ms(),
                      .ts_ms = at_time_now_ms(),
                      .key = "",
                      .id = "",
                      .value = dump,
                      .value_len = (uint32_t)len};
        at_writer__push(&w->recs, &w->nrecs, &w->caprecs, &r);
    }
    if (w->nrecs) {
        int rc = at_log_append(a->log, w->recs, w->nrecs);
        if (rc == 0)
            rc = at_writer__sync(a, a->log);
        if (rc < 0)
            AT_ERROR("writing the rule set failed", "err=\"%s\"", at_strerror(rc));
        else
            at_writer__appended(a, w->recs, w->nrecs);
        AT_INFO("rules", "partitions_updated=%zu", w->nrecs);
    }
    free(dump);
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
    at_buf_init(&w.mbuf, 0);
    at_arena_init(&w.arena, 0);
    w.lastpos = at_xcalloc((size_t)a->partitions, sizeof *w.lastpos);
    int rc = at_writer__recover(a);
    if (rc < 0)
        AT_ERROR("recovery failed", "err=\"%s\"", at_strerror(rc));
    at_writer__reconcile_rules(a, &w);
    atomic_store(&a->ready_seq, at_log_seq(a->log));
    at_writer__publish(a);
    atomic_store(&a->ready, 1);
    at_job_t **jobs = NULL;
    size_t capjobs = 0;
    int64_t last_retain = 0;
    for (;;) {
        size_t n = 0;
        at_ijob_t *ij = NULL;
        bool done = false;
        at_job_t *list = at_writer__take(a, &n, &ij, &done);
        if (done)
            break;
        if (n > capjobs) {
            capjobs = n * 2;
            jobs = at_xrealloc(jobs, capjobs * sizeof(at_job_t *));
        }
        for (size_t j = 0; j < n; j++, list = list->next)
            jobs[j] = list;
        if (a->cfg.fsync == AT_FSYNC_ALWAYS) {
            for (size_t j = 0; j < n; j++)
                at_writer__group(a, &w, &jobs[j], 1, j + 1 == n ? ij : NULL, true);
            if (!n && ij)
                at_writer__group(a, &w, NULL, 0, ij, true);
        } else if (n || ij) {
            at_writer__group(a, &w, jobs, n, ij, a->cfg.fsync == AT_FSYNC_BATCH);
        }
        at_writer__release(a, jobs, n);
        at_writer__ticks(a, &w);
        atomic_store(&a->m.dedup_evicted, at_dedup_evicted(a->dedup));
        atomic_store(&a->m.dedup_size, at_dedup_size(a->dedup));
        atomic_store(&a->m.dedup_bytes, at_dedup_bytes(a->dedup));
        atomic_store(&a->m.dedup_reads, at_dedup_reads(a->dedup));
        atomic_store(&a->m.dedup_errors, at_dedup_errors(a->dedup));
        int64_t now = at_time_mono_ns();
        if (now - last_retain > 10 * 1000000000LL) {
            at_writer__retain(a);
            last_retain = now;
        }
    }
    /* Whatever fsync never left in the page cache is flushed on the way out. */
    (void)at_log_sync(a->log);
    (void)at_log_sync(a->rejlog);
    at_writer__publish(a);
    free(jobs);
    free(w.recs);
    free(w.rejs);
    free(w.job_first);
    free(w.dups);
    free(w.lastpos);
    at_buf_deinit(&w.rejbuf);
    at_buf_deinit(&w.answer);
    at_buf_deinit(&w.mbuf);
    at_arena_deinit(&w.arena);
    return NULL;
}

at_ijob_t *at_engine__ijob(const at_rec_t *recs, size_t n, int src)
{
    size_t bytes = n * sizeof(at_rec_t);
    for (size_t i = 0; i < n; i++)
        bytes += recs[i].key_len + recs[i].id_len + recs[i].value_len;
    at_ijob_t *j = at_xcalloc(1, sizeof *j + bytes);
    j->src = src;
    j->n = n;
    j->recs = (at_rec_t *)(void *)j->data;
    char *p = j->data + n * sizeof(at_rec_t);
    for (size_t i = 0; i < n; i++) {
        at_rec_t r = recs[i];
        memcpy(p, r.key, r.key_len);
        r.key = p;
        p += r.key_len;
        if (r.id_len)
            memcpy(p, r.id, r.id_len);
        r.id = p;
        p += r.id_len;
        if (r.value_len)
            memcpy(p, r.value, r.value_len);
        r.value = p;
        p += r.value_len;
        j->recs[i] = r;
    }
    return j;
}

void at_engine__append(attune_t *a, at_ijob_t *j)
{
    pthread_mutex_lock(&a->mu);
    j->next = NULL;
    if (a->itail)
        a->itail->next = j;
    else
        a->ihead = j;
    a->itail = j;
    pthread_mutex_unlock(&a->mu);
    pthread_cond_signal(&a->cv); /* after the unlock, as in at_notify_signal */
}
