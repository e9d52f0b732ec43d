/* shard.c - shard threads: each tails the log through its own read-only
 * view, bounded by the durable sequence number the writer publishes, and
 * hands the records of its partitions to the processor in offset order.
 * Messages from other threads (reads of state, checkpoints) run between
 * batches of records.
 *
 * Why tail the log rather than receive records from the writer: the log is
 * already the buffer between ingestion and processing (a slow shard never
 * stalls the writer, and nothing is held in memory for it), and recovery
 * and live processing are then one and the same code path: read the log
 * from the checkpoint's offsets on.
 *
 * THREAD SAFETY: at_shard_wake/post/processed/position/status from any
 * thread; everything else runs on the shard's thread.
 */
#include "at_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct at_shard {
    at_shard_opts_t o;
    bool *owned;
    int64_t *from;
    at_log_t *log;
    at_log_iter_t *it;
    pthread_t th;
    at_notify_t nt;
    pthread_mutex_t mu; /* guards the message queue and stopping */
    at_shard_msg_t *head, *tail;
    bool stopping;
    _Atomic uint64_t processed;
    _Atomic uint64_t position;
    _Atomic int status;
    char name[16];
};

/* Runs every queued message. Returns true when stopping was asked. */
static bool at_shard__messages(at_shard_t *s)
{
    pthread_mutex_lock(&s->mu);
    at_shard_msg_t *m = s->head;
    s->head = s->tail = NULL;
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    while (m) {
        at_shard_msg_t *next = m->next;
        m->fn(m, s->o.ud);
        m = next;
    }
    return stopping;
}

/* Processes up to batch records below the durable end. Returns how many,
 * or <0 on a read error. */
static long at_shard__read(at_shard_t *s, int batch)
{
    at_log_iter_set_limit(s->it, atomic_load_explicit(s->o.durable_seq, memory_order_acquire));
    long n = 0;
    at_rec_t rec;
    int rc = 0;
    while (n < batch && (rc = at_log_iter_next(s->it, &rec)) == 1) {
        if (s->owned[rec.partition]) {
            s->o.ops.record(s->o.ud, &rec);
            n++;
        }
    }
    atomic_store_explicit(&s->position, at_log_iter_seq(s->it), memory_order_relaxed);
    atomic_fetch_add_explicit(&s->processed, (uint64_t)n, memory_order_relaxed);
    return rc < 0 ? rc : n;
}

static void *at_shard__main(void *arg)
{
    at_shard_t *s = arg;
    uint64_t seen = 0;
    (void)pthread_setname_np(pthread_self(), s->name);
    for (;;) {
        bool stopping = at_shard__messages(s);
        long n = atomic_load(&s->status) < 0 ? 0 : at_shard__read(s, s->o.batch);
        if (n < 0) {
            AT_ERROR("shard stopped reading the log", "shard=%s err=\"%s\"", s->name,
                     at_strerror((int)n));
            atomic_store(&s->status, (int)n);
            n = 0;
        }
        if (n > 0 && s->o.ops.flush)
            s->o.ops.flush(s->o.ud);
        if (n == s->o.batch)
            continue;
        s->o.ops.idle(s->o.ud);
        if (stopping) {
            at_shard__messages(s);
            break;
        }
        at_notify_wait(&s->nt, &seen, s->o.idle_ms);
    }
    return NULL;
}

int at_shard_start(at_shard_t **out, const at_shard_opts_t *o, char *err, size_t errlen)
{
    at_shard_t *s = at_xcalloc(1, sizeof *s);
    s->o = *o;
    if (s->o.idle_ms <= 0)
        s->o.idle_ms = 100;
    if (s->o.batch <= 0)
        s->o.batch = 256;
    size_t P = (size_t)o->partitions;
    s->owned = at_xcalloc(P, sizeof *s->owned);
    s->from = at_xcalloc(P, sizeof *s->from);
    for (size_t p = 0; p < P; p++) {
        s->owned[p] = o->owned[p];
        s->from[p] = o->owned[p] ? o->from[p] : INT64_MAX;
    }
    (void)snprintf(s->name, sizeof s->name, "%s", o->name ? o->name : "shard");
    at_notify_init(&s->nt);
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->processed, 0);
    atomic_init(&s->position, 0);
    atomic_init(&s->status, 1);
    at_log_opts_t lo = {.partitions = o->partitions, .read_only = true};
    int rc = at_log_open(&s->log, o->log_dir, &lo, err, errlen);
    if (rc == 0)
        rc = at_log_iter_open(s->log, s->from, &s->it);
    if (rc == 0 && (rc = -pthread_create(&s->th, NULL, at_shard__main, s)) < 0)
        (void)snprintf(err, errlen, "shard thread: %s", at_strerror(rc));
    if (rc < 0) {
        at_log_iter_close(s->it);
        if (s->log)
            at_log_close(s->log);
        at_notify_deinit(&s->nt);
        pthread_mutex_destroy(&s->mu);
        free(s->owned);
        free(s->from);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void at_shard_wake(at_shard_t *s)
{
    at_notify_signal(&s->nt);
}

int at_shard_post(at_shard_t *s, at_shard_msg_t *m)
{
    pthread_mutex_lock(&s->mu);
    bool stopping = s->stopping;
    if (!stopping) {
        m->next = NULL;
        if (s->tail)
            s->tail->next = m;
        else
            s->head = m;
        s->tail = m;
    }
    pthread_mutex_unlock(&s->mu);
    if (stopping)
        return AT_ECLOSED;
    at_notify_signal(&s->nt);
    return 0;
}

void at_shard_stop(at_shard_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    at_notify_signal(&s->nt);
    pthread_join(s->th, NULL);
    at_log_iter_close(s->it);
    at_log_close(s->log);
    at_notify_deinit(&s->nt);
    pthread_mutex_destroy(&s->mu);
    free(s->owned);
    free(s->from);
    free(s);
}

uint64_t at_shard_processed(const at_shard_t *s)
{
    return atomic_load_explicit(&((at_shard_t *)s)->processed, memory_order_relaxed);
}

uint64_t at_shard_position(const at_shard_t *s)
{
    return atomic_load_explicit(&((at_shard_t *)s)->position, memory_order_relaxed);
}

int at_shard_status(const at_shard_t *s)
{
    int st = atomic_load(&((at_shard_t *)s)->status);
    return st < 0 ? st : 1;
}
