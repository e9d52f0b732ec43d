/* engine.c - opening and closing the engine, and the calls of attune.h that
 * run on the caller's thread: parsing and queueing batches, schemas, keys.
 * The log writer thread is in writer.c; metrics and the rejected ring in
 * ops.c. */
#include "at_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *at_engine__path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = at_xmalloc(n);
    AT_ASSERT(snprintf(p, n, "%s/%s", dir, name) == (int)n - 1);
    return p;
}

static int at_engine__load_config(attune_t *a, const char *config_path,
                                  const char *const *overrides, char *err, size_t errlen)
{
    at_config_defaults(&a->cfg);
    int rc = 0;
    if (config_path && (rc = at_config_load_file(&a->cfg, config_path, err, errlen)) < 0)
        return rc;
    for (size_t i = 0; overrides && overrides[i]; i++) {
        const char *eq = strchr(overrides[i], '=');
        if (!eq) {
            (void)snprintf(err, errlen, "override '%s': expected name=value", overrides[i]);
            return AT_EINVALID;
        }
        char name[128]; /* longer than any setting's name */
        int len = (int)(eq - overrides[i]);
        if (snprintf(name, sizeof name, "%.*s", len, overrides[i]) >= (int)sizeof name) {
            (void)snprintf(err, errlen, "unknown setting '%.*s'", len, overrides[i]);
            return AT_EINVALID;
        }
        if ((rc = at_config_set(&a->cfg, name, eq + 1, err, errlen)) < 0)
            return rc;
    }
    return at_config_validate(&a->cfg, err, errlen);
}

static int at_engine__open_parts(attune_t *a, char *err, size_t errlen)
{
    int rc = at_mkdirs(a->cfg.data_dir, 0755);
    if (rc < 0) {
        (void)snprintf(err, errlen, "data directory %s: %s", a->cfg.data_dir, at_strerror(rc));
        return rc;
    }
    a->log_dir = at_engine__path(a->cfg.data_dir, "log");
    a->rejected_dir = at_engine__path(a->cfg.data_dir, "rejected");
    a->schema_dir = at_engine__path(a->cfg.data_dir, "schemas");
    if ((rc = at_mkdirs(a->schema_dir, 0755)) < 0) {
        (void)snprintf(err, errlen, "%s: %s", a->schema_dir, at_strerror(rc));
        return rc;
    }
    /* 0: the existing log's count, or 16 for a new one */
    char meta[4200];
    (void)snprintf(meta, sizeof meta, "%s/meta", a->log_dir);
    int want = a->cfg.partitions ? a->cfg.partitions : access(meta, F_OK) == 0 ? 0 : 16;
    at_log_opts_t lo = {.partitions = want,
                        .segment_bytes = a->cfg.segment_bytes,
                        .zero_ahead = a->cfg.fsync == AT_FSYNC_NEVER ? 0 : a->cfg.zero_ahead};
    if ((rc = at_log_open(&a->log, a->log_dir, &lo, err, errlen)) < 0)
        return rc;
    a->partitions = at_log_partitions(a->log);
    at_log_opts_t ro = {.partitions = 1, .segment_bytes = AT_MIN(a->cfg.segment_bytes, 16 << 20)};
    if ((rc = at_log_open(&a->rejlog, a->rejected_dir, &ro, err, errlen)) < 0)
        return rc;
    at_error_t e = {0};
    if ((rc = at_ingest_new(&a->ingest, &a->cfg, a->schema_dir, &e)) < 0) {
        (void)snprintf(err, errlen, "%s%s%s", e.field, e.field[0] ? ": " : "", e.message);
        return rc;
    }
    a->dedup = at_dedup_new(a->partitions, a->cfg.dedup_horizon_ms, a->cfg.dedup_max_per_partition,
                            a->cfg.data_dir);
    size_t P = (size_t)a->partitions;
    a->tick_trusted = at_xcalloc(P, sizeof *a->tick_trusted);
    a->last_append = at_xcalloc(P, sizeof *a->last_append);
    a->last_control = at_xcalloc(P, sizeof *a->last_control);
    for (size_t p = 0; p < P; p++)
        a->tick_trusted[p] = AT_WM_NONE;
    return at_engine__rules_open(a, err, errlen);
}

/* A record a partition's processing sends to another (shard thread). */
static void at_engine__send(void *ud, int src, const at_rec_t *rec)
{
    attune_t *a = ud;
    at_engine__append(a, at_engine__ijob(rec, 1, src));
}

void at_engine__proc_cfg(const at_config_t *c, at_proc_cfg_t *pc, int partitions);
void at_engine__proc_cfg(const at_config_t *c, at_proc_cfg_t *pc, int partitions)
{
    memset(pc, 0, sizeof *pc);
    at_profile_cfg_defaults(&pc->profile);
    pc->profile.half_life_ms = c->half_life_ms;
    pc->profile.session_gap_ms = c->session_gap_ms;
    pc->profile.recent_items = c->recent_items;
    pc->profile.max_categories = c->max_categories;
    at_reco_cfg_defaults(&pc->reco);
    pc->reco.neighbours = c->reco_neighbours;
    pc->reco.half_life_ms = c->reco_half_life_ms;
    pc->reco.pair_window_ms = c->reco_pair_window_ms;
    pc->reco.max_pairs = c->reco_max_pairs;
    pc->reco.cache_ms = c->reco_cache_ms;
    pc->reco_answers = c->reco_answers;
    pc->reco_answer_ttl_ms = c->reco_answer_ttl_ms;
    pc->lateness_ms = c->lateness_ms;
    pc->ttl_ms = c->state_ttl_ms;
    pc->partitions = partitions;
    pc->no_early = !c->early;
}

static int at_engine__open_streams(attune_t *a, char *err, size_t errlen)
{
    a->watch = at_watch_new(a->partitions);
    at_streams_cfg_t sc = {.data_dir = a->cfg.data_dir,
                           .log_dir = a->log_dir,
                           .partitions = a->partitions,
                           .shards = a->cfg.shards,
                           .ckpt_interval_ms = a->cfg.checkpoint_interval_ms,
                           .out_segment_bytes = a->cfg.out_segment_bytes,
                           .out_writeback = a->cfg.out_writeback,
                           .watch = a->watch};
    at_engine__proc_cfg(&a->cfg, &sc.proc, a->partitions);
    at_streams_hooks_t h = {at_engine__send, a};
    return at_streams_open(&a->streams, &sc, &h, at_log_seq(a->log), err, errlen);
}

static void at_engine__init_sync(attune_t *a)
{
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    pthread_mutex_init(&a->ring_mu, NULL);
    pthread_mutex_init(&a->m.reject_mu, NULL);
    at_hist_init(&a->m.fsync);
    at_hist_init(&a->m.commit_wait);
    atomic_init(&a->ready, 0);
}

static void at_engine__free(attune_t *a)
{
    at_streams_close(a->streams);
    at_watch_free(a->watch);
    while (a->ihead) { /* appends nobody will write: answered as failed */
        at_ijob_t *j = a->ihead;
        a->ihead = j->next;
        if (j->done)
            j->done(j->ud, AT_ECLOSED);
        free(j);
    }
    if (a->rules_path)
        at_engine__rules_close(a);
    free(a->tick_trusted);
    free(a->last_append);
    free(a->last_control);
    if (a->dedup)
        at_dedup_free(a->dedup);
    if (a->ingest)
        at_ingest_free(a->ingest);
    if (a->rejlog)
        at_log_close(a->rejlog);
    if (a->log)
        at_log_close(a->log);
    for (size_t i = 0; i < AT_REJECT_RING; i++)
        free(a->ring[i]);
    free(a->log_dir);
    free(a->rejected_dir);
    free(a->schema_dir);
    at_placements_free(a->placements);
    at_config_free(&a->cfg);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->ring_mu);
    pthread_mutex_destroy(&a->m.reject_mu);
    free(a);
}

int attune_open(attune_t **out, const char *config_path, const char *const *overrides, char *err,
                size_t errlen)
{
    attune_t *a = at_xcalloc(1, sizeof *a);
    at_engine__init_sync(a);
    int rc = at_engine__load_config(a, config_path, overrides, err, errlen);
    if (rc < 0)
        goto out;
    at_logf_level(!strcmp(a->cfg.log_level, "debug")   ? AT_LOG_DEBUG
                  : !strcmp(a->cfg.log_level, "warn")  ? AT_LOG_WARN
                  : !strcmp(a->cfg.log_level, "error") ? AT_LOG_ERROR
                                                       : AT_LOG_INFO);
    if ((rc = at_placements_new(&a->cfg.placements, &a->placements, err, errlen)) < 0)
        goto out;
    if ((rc = at_engine__open_parts(a, err, errlen)) < 0)
        goto out;
    if ((rc = at_engine__open_streams(a, err, errlen)) < 0)
        goto out;
    if ((rc = -pthread_create(&a->writer, NULL, at_engine__writer_main, a)) < 0) {
        (void)snprintf(err, errlen, "writer thread: %s", at_strerror(rc));
        goto out;
    }
    *out = a;
    a = NULL;
out:
    if (a)
        at_engine__free(a);
    return rc;
}

/* Whether processing has read everything durable and nothing is queued
 * for the writer. */
static bool at_engine__drained(attune_t *a)
{
    pthread_mutex_lock(&a->mu);
    bool queued = a->head || a->ihead;
    pthread_mutex_unlock(&a->mu);
    return !queued && at_streams_caught_up(a->streams, atomic_load(&a->durable));
}

void attune_close(attune_t *a)
{
    pthread_mutex_lock(&a->mu);
    a->stopping = true; /* no new batches */
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    /* Let processing finish what is in the log: it may still send records
     * (handoffs, forwarded events) for the writer to append. Twice quiet in
     * a row, so a send in flight between the checks is not missed. */
    for (int quiet = 0, i = 0; quiet < 2 && i < 30000 && atomic_load(&a->ready); i++) {
        quiet = at_engine__drained(a) ? quiet + 1 : 0;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&a->mu);
    a->writer_stop = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->writer, NULL);
    at_engine__free(a);
}

int attune_ready(const attune_t *a)
{
    attune_t *m = (attune_t *)a;
    if (!atomic_load(&m->ready))
        return 0;
    if (atomic_load(&m->caught_up))
        return 1;
    if (!at_streams_caught_up(m->streams, atomic_load(&m->ready_seq)))
        return 0;
    atomic_store(&m->caught_up, 1);
    return 1;
}

static void at_engine__copy_error(attune_error_t *dst, const at_error_t *src)
{
    if (!dst)
        return;
    _Static_assert(sizeof *dst == sizeof *src, "attune_error_t mirrors at_error_t");
    memcpy(dst, src, sizeof *dst);
}

/* Enqueues job unless the memory budget is spent. Caller's thread. */
static int at_engine__enqueue(attune_t *a, at_job_t *job)
{
    pthread_mutex_lock(&a->mu);
    /* what waits for the writer and what waits for the watermark share the
     * budget: a flood cannot grow either without bound */
    size_t held = a->queued_bytes + (a->streams ? (size_t)at_streams_pending_bytes(a->streams) : 0);
    bool full = held + job->cost > (size_t)a->cfg.max_memory && (a->queued_jobs > 0 || held > 0);
    if (!full && !a->stopping) {
        job->next = NULL;
        if (a->tail)
            a->tail->next = job;
        else
            a->head = job;
        a->tail = job;
        a->queued_bytes += job->cost;
        a->queued_jobs++;
    }
    bool stopping = a->stopping;
    pthread_mutex_unlock(&a->mu);
    if (!full && !stopping) /* after the unlock, as in at_notify_signal */
        pthread_cond_signal(&a->cv);
    return stopping ? AT_ECLOSED : full ? AT_EFULL : 0;
}

int attune_ingest(attune_t *a, const char *body, size_t len, int kind, unsigned flags,
                  attune_ingest_cb cb, void *ud, attune_error_t *err)
{
    at_error_t e = {0};
    int rc = 0;
    if (!atomic_load(&a->ready)) {
        rc = at_error_set(&e, AT_EUNAVAIL, "recovering", NULL, "the engine is recovering its log");
        at_engine__copy_error(err, &e);
        return rc;
    }
    at_job_t *job = at_xcalloc(1, sizeof *job);
    at_batch_init(&job->batch);
    rc = at_ingest_parse(a->ingest, body, len, (at_body_kind_t)kind, at_time_now_ms(),
                         a->partitions, &job->batch, &e);
    if (rc < 0)
        goto out;
    if ((flags & ATTUNE_INGEST_NEED_KEY) &&
        (!job->batch.write_key || attune_auth(a, job->batch.write_key, strlen(job->batch.write_key),
                                              ATTUNE_SCOPE_INGEST) < 0)) {
        rc = at_error_set(&e, AT_EAUTH, "unauthorized", NULL,
                          "an ingest key is required: Authorization: Bearer, ?key= or write_key");
        goto out;
    }
    job->cb = cb;
    job->ud = ud;
    job->cost = len * 2 + sizeof *job + 4096;
    job->queued_ns = at_time_mono_ns();
    rc = at_engine__enqueue(a, job);
    if (rc == AT_EFULL) {
        atomic_fetch_add(&a->m.batches_full, 1);
        at_error_set(&e, rc, "queue_full", NULL, "ingestion queues are full; retry later");
    } else if (rc == AT_ECLOSED) {
        rc = at_error_set(&e, AT_EUNAVAIL, "shutting_down", NULL, "the engine is stopping");
    }
    if (rc == 0)
        job = NULL;
out:
    if (job) {
        at_batch_deinit(&job->batch);
        free(job);
    }
    if (rc < 0)
        at_engine__copy_error(err, &e);
    return rc;
}

int attune_schema_get(attune_t *a, const char *type, int version, char **json, size_t *len)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    int rc = at_ingest_schema_get(a->ingest, type, version, &b);
    if (rc < 0) {
        at_buf_deinit(&b);
        return rc;
    }
    *json = at_buf_steal(&b, len);
    return 0;
}

int attune_schema_put(attune_t *a, const char *type, const char *json, size_t len, int *version,
                      attune_error_t *err)
{
    at_error_t e = {0};
    int rc = at_ingest_schema_put(a->ingest, type, json, len, version, &e);
    if (rc < 0)
        at_engine__copy_error(err, &e);
    return rc;
}

int attune_schema_list(attune_t *a, char **json, size_t *len)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    int rc = at_ingest_schema_list(a->ingest, &b);
    if (rc < 0) {
        at_buf_deinit(&b);
        return rc;
    }
    *json = at_buf_steal(&b, len);
    return 0;
}

/* Compares in time that depends only on the lengths. */
static bool at_engine__key_eq(const char *a, size_t an, const char *b, size_t bn)
{
    unsigned char d = an != bn;
    for (size_t i = 0; i < an && i < bn; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

int attune_auth(const attune_t *a, const char *key, size_t len, int scope)
{
    if (a->cfg.nkeys == 0)
        return 0;
    bool ok = false;
    for (size_t i = 0; i < a->cfg.nkeys; i++) {
        const at_config_key_t *k = &a->cfg.keys[i];
        if (key && at_engine__key_eq(key, len, k->secret, strlen(k->secret)) &&
            (k->scopes & scope) == scope)
            ok = true;
    }
    return ok ? 0 : AT_EAUTH;
}

int attune_dev_mode(const attune_t *a)
{
    return a->cfg.nkeys == 0;
}

const struct at_config *attune_config(const attune_t *a)
{
    return &a->cfg;
}

void attune_free(void *p)
{
    free(p);
}

const char *attune_strerror(int code)
{
    return at_strerror(code);
}

const char *attune_version(void)
{
    return AT_VERSION;
}
