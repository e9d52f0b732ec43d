/* streams.c - shards, output logs, checkpoints and reads (streams.h).
 *
 * Each partition has a processor (owned by the thread of the shard that
 * owns the partition), an output log written by that thread without fsync
 * (outputs are derived: recovery regenerates what a power cut took, at the
 * same offsets, and suppresses the ones that survived), and a checkpoint
 * store written by the one checkpoint thread.
 *
 * A checkpoint of a partition is built on its shard thread between two
 * batches of records: the users changed since the last checkpoint are
 * copied into a batch with the meta and the output log's end, and the batch
 * goes to the checkpoint thread, which syncs the output log up to that end
 * before it writes the checkpoint (so a checkpoint never points past
 * outputs that could be lost). Processing goes on meanwhile. A partition waits
 * with its next checkpoint while records it sent to other partitions are
 * not durable yet, so a checkpoint never covers a merge whose handoff could
 * still be lost.
 *
 * THREAD SAFETY: see streams.h. Per-partition figures are copied under a
 * mutex at every batch for readers on other threads.
 */
#include "streams.h"
#include "answers.h"
#include "at_ckpt.h"
#include "at_metrics.h"
#include "at_stream.h"
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AT_STREAMS_WAIT_MS 1000 /* longest a read waits for min_position */

typedef struct at_swait at_swait_t;

typedef struct at_spart {
    int p, shard;
    at_streams_t *s;
    at_proc_t *proc;
    at_log_t *out;
    at_rec_t *orecs; /* outputs waiting for the next flush */
    size_t norecs, caporecs;
    at_buf_t obytes;
    at_ckpt_t *ckpt;
    int64_t last_ckpt_ms; /* monotonic */
    atomic_bool ckpt_inflight;
    atomic_bool need_full;
    _Atomic int out_sync_err; /* a failed output log sync, for the shard to poison the log */
    _Atomic uint64_t sent, sent_durable;
    _Atomic int64_t keep_from;
    _Atomic int64_t next_offset;
    _Atomic int64_t out_published;
    at_swait_t *waits;              /* parked reads, shard thread */
    uint64_t cur_seq;               /* global sequence number of the record being processed */
    _Atomic uint64_t pending_bytes; /* of the reorder buffer, as of the last batch */
    pthread_mutex_t mu;             /* guards the published copies below */
    at_proc_stats_t pub;
    at_member_count_t *pub_members;
    size_t npub_members;
} at_spart_t;

typedef struct at_sshard {
    at_streams_t *s;
    int id;
    at_shard_t *sh;
    int *parts;
    int nparts;
    int64_t last_periodic_ms; /* stats published, checkpoints considered (monotonic) */
} at_sshard_t;

/* How often a busy shard (one that never runs out of records) publishes
 * its stats and considers checkpoints; an idle one does at every pause. */
#define AT_STREAMS_PERIODIC_MS 100

typedef struct at_ckjob {
    struct at_ckjob *next;
    at_spart_t *part;
    at_ckpt_batch_t *b;
    int64_t replay_from;
    at_log_syncjob_t osync; /* the output log's sync, run before the checkpoint is written */
    bool sync;              /* the caller waits on done */
    int rc;
    bool done;
} at_ckjob_t;

#define AT_STREAMS_RING 1024

struct at_streams {
    at_streams_cfg_t cfg;
    /* when each durable end was published, for the ack-to-output latency */
    struct {
        _Atomic uint64_t seq;
        _Atomic int64_t ns;
    } ring[AT_STREAMS_RING];
    _Atomic uint64_t ring_n;
    at_lat_t lat_early, lat_final;
    at_streams_hooks_t hooks;
    at_spart_t *parts;
    at_sshard_t *shards;
    _Atomic uint64_t durable_seq;
    at_notify_t out_nt;
    pthread_t ckth;
    bool ckth_started;
    pthread_mutex_t ckmu;
    pthread_cond_t ckcv;
    at_ckjob_t *ckhead, *cktail;
    bool ckstop;
    at_hist_t ckpt_hist;
    _Atomic uint64_t ckpts, ckerrs, ckbytes, orecs, obytes;
    char *out_dir;
    at_reco_part_t **rparts; /* every partition's item aggregates, for reads */
    at_reco_set_t reco;
    bool reco_init;
    at_answers_t *answers; /* recent recommendation answers (answers.h), or NULL */
};

/* ---- outputs --------------------------------------------------------------------- */

/* When the record with global sequence number g was published durable:
 * the first publication past it. 0 when too old to know. */
static int64_t at_streams__published_at(at_streams_t *s, uint64_t g)
{
    uint64_t n = atomic_load_explicit(&s->ring_n, memory_order_acquire);
    int64_t ns = 0;
    for (uint64_t k = n; k > 0 && n - k < AT_STREAMS_RING; k--) {
        uint64_t i = (k - 1) % AT_STREAMS_RING;
        if (atomic_load_explicit(&s->ring[i].seq, memory_order_relaxed) <= g)
            break;
        ns = atomic_load_explicit(&s->ring[i].ns, memory_order_relaxed);
    }
    return ns;
}

static void at_streams__output(void *ud, const at_proc_out_t *po)
{
    at_spart_t *pt = ud;
    int64_t pub = at_streams__published_at(pt->s, pt->cur_seq);
    if (pub)
        at_lat_observe_ns(po->o->early ? &pt->s->lat_early : &pt->s->lat_final,
                          at_time_mono_ns() - pub);
    if (pt->norecs == pt->caporecs) {
        pt->caporecs = pt->caporecs ? pt->caporecs * 2 : 64;
        pt->orecs = at_xrealloc(pt->orecs, pt->caporecs * sizeof *pt->orecs);
    }
    /* bytes go to obytes; pointers are fixed at flush (obytes may move) */
    size_t at = pt->obytes.len;
    AT_ASSERT(at_buf_append(&pt->obytes, po->key, po->key_len) == 0);
    AT_ASSERT(at_buf_append(&pt->obytes, po->id, 32) == 0);
    AT_ASSERT(at_buf_append(&pt->obytes, po->json, po->json_len) == 0);
    pt->orecs[pt->norecs++] = (at_rec_t){.partition = 0,
                                         .offset = po->offset,
                                         .type = AT_REC_EVENT,
                                         .version = 1,
                                         .ts_ms = po->o->at,
                                         .recv_ms = po->o->at,
                                         .key = (const char *)(uintptr_t)at,
                                         .key_len = (uint32_t)po->key_len,
                                         .id_len = 32,
                                         .value_len = (uint32_t)po->json_len};
}

static void at_streams__send(void *ud, const at_rec_t *rec)
{
    at_spart_t *pt = ud;
    atomic_fetch_add(&pt->sent, 1);
    pt->s->hooks.send(pt->s->hooks.ud, pt->p, rec);
}

/* Appends the buffered outputs to the output log and publishes them. */
static void at_streams__flush_outputs(at_spart_t *pt)
{
    if (!pt->norecs)
        return;
    int64_t expect = at_log_next_offset(pt->out, 0);
    for (size_t i = 0; i < pt->norecs; i++) {
        at_rec_t *r = &pt->orecs[i];
        size_t at = (size_t)(uintptr_t)r->key;
        r->key = pt->obytes.data + at;
        r->id = r->key + r->key_len;
        r->value = r->id + r->id_len;
        AT_ASSERT(r->offset == expect + (int64_t)i); /* offsets are the processor's */
    }
    int rc = at_log_append(pt->out, pt->orecs, pt->norecs);
    if (rc < 0) {
        AT_ERROR("output log write failed", "partition=%d err=\"%s\"", pt->p, at_strerror(rc));
    } else {
        atomic_fetch_add(&pt->s->orecs, pt->norecs);
        atomic_fetch_add(&pt->s->obytes, pt->obytes.len);
        atomic_store(&pt->out_published, at_log_next_offset(pt->out, 0));
        at_notify_signal(&pt->s->out_nt);
    }
    pt->norecs = 0;
    at_buf_reset(&pt->obytes);
}

/* ---- checkpoints --------------------------------------------------------------- */

static void at_streams__ck_put(void *ud, const char *key, size_t klen, const void *val, size_t vlen)
{
    at_ckpt_batch_t *b = ud;
    int rc = val ? at_ckpt_batch_put(b, key, klen, val, vlen) : at_ckpt_batch_del(b, key, klen);
    AT_ASSERT(rc == 0);
}

static at_ckjob_t *at_streams__build_ckpt(at_spart_t *pt)
{
    int err = atomic_exchange(&pt->out_sync_err, 0);
    if (err)
        at_log_fail(pt->out, err);
    at_streams__flush_outputs(pt);
    /* the outputs must be durable before a checkpoint past them is: the
     * checkpoint thread syncs them first, off the processing path */
    at_log_syncjob_t osync;
    int rc = at_log_sync_begin(pt->out, &osync);
    if (rc < 0) {
        AT_ERROR("output log sync failed", "partition=%d err=\"%s\"", pt->p, at_strerror(rc));
        return NULL;
    }
    at_ckjob_t *j = at_xcalloc(1, sizeof *j);
    j->osync = osync;
    j->part = pt;
    j->b = at_ckpt_batch_new();
    if (atomic_exchange(&pt->need_full, false)) {
        at_ckpt_batch_set_full(j->b, true);
        at_proc_all_users(pt->proc, at_streams__ck_put, j->b);
    } else {
        at_proc_changes(pt->proc, at_streams__ck_put, j->b);
    }
    at_buf_t meta;
    at_buf_init(&meta, 0);
    at_proc_meta(pt->proc, &meta);
    AT_ASSERT(at_ckpt_batch_set_meta(j->b, meta.data, meta.len) == 0);
    at_buf_deinit(&meta);
    j->replay_from = at_proc_replay_from(pt->proc);
    return j;
}

static void at_streams__ck_run(at_streams_t *s, at_ckjob_t *j)
{
    at_spart_t *pt = j->part;
    int64_t t0 = at_time_mono_ns();
    uint64_t id = 0;
    j->rc = at_log_sync_run(&j->osync);
    if (j->rc < 0) {
        AT_ERROR("output log sync failed", "partition=%d err=\"%s\"", pt->p, at_strerror(j->rc));
        atomic_store(&pt->out_sync_err, j->rc);
    } else {
        j->rc = at_ckpt_write(pt->ckpt, j->b, &id);
    }
    if (j->rc == 0) {
        atomic_store(&pt->keep_from, j->replay_from);
        atomic_fetch_add(&s->ckpts, 1);
        at_ckpt_stats_t st;
        at_ckpt_stats(pt->ckpt, &st);
        atomic_fetch_add(&s->ckbytes, st.last_write_bytes);
        at_hist_observe_ns(&s->ckpt_hist, at_time_mono_ns() - t0);
        char err[256];
        if (at_ckpt_compact_due(pt->ckpt) && at_ckpt_compact(pt->ckpt, false, err, sizeof err) < 0)
            AT_WARN("checkpoint compaction failed", "partition=%d err=\"%s\"", pt->p, err);
    } else {
        /* the changes it held are not in any checkpoint: the next is full */
        atomic_store(&pt->need_full, true);
        atomic_fetch_add(&s->ckerrs, 1);
        AT_ERROR("checkpoint write failed", "partition=%d err=\"%s\"", pt->p, at_strerror(j->rc));
    }
    at_ckpt_batch_free(j->b);
    j->b = NULL;
    atomic_store(&pt->ckpt_inflight, false);
}

static void *at_streams__ck_main(void *arg)
{
    at_streams_t *s = arg;
    (void)pthread_setname_np(pthread_self(), "checkpoint");
    pthread_mutex_lock(&s->ckmu);
    for (;;) {
        while (!s->ckhead && !s->ckstop)
            pthread_cond_wait(&s->ckcv, &s->ckmu);
        at_ckjob_t *j = s->ckhead;
        if (!j)
            break;
        s->ckhead = j->next;
        if (!s->ckhead)
            s->cktail = NULL;
        pthread_mutex_unlock(&s->ckmu);
        at_streams__ck_run(s, j);
        pthread_mutex_lock(&s->ckmu);
        if (j->sync) {
            j->done = true;
            pthread_cond_broadcast(&s->ckcv);
        } else {
            free(j);
        }
    }
    pthread_mutex_unlock(&s->ckmu);
    return NULL;
}

static void at_streams__ck_queue(at_streams_t *s, at_ckjob_t *j)
{
    pthread_mutex_lock(&s->ckmu);
    j->next = NULL;
    if (s->cktail)
        s->cktail->next = j;
    else
        s->ckhead = j;
    s->cktail = j;
    pthread_cond_broadcast(&s->ckcv);
    pthread_mutex_unlock(&s->ckmu);
}

/* Starts a checkpoint of pt when one is due. Shard thread. */
static void at_streams__maybe_ckpt(at_spart_t *pt, int64_t now_ms)
{
    at_streams_t *s = pt->s;
    if (s->cfg.ckpt_interval_ms <= 0 || now_ms - pt->last_ckpt_ms < s->cfg.ckpt_interval_ms ||
        atomic_load(&pt->ckpt_inflight) || atomic_load(&pt->sent) != atomic_load(&pt->sent_durable))
        return;
    pt->last_ckpt_ms = now_ms;
    atomic_store(&pt->ckpt_inflight, true);
    at_ckjob_t *j = at_streams__build_ckpt(pt);
    if (!j) {
        atomic_store(&pt->ckpt_inflight, false);
        return;
    }
    at_streams__ck_queue(s, j);
}

/* ---- reads --------------------------------------------------------------------------- */

enum { AT_SM_USER, AT_SM_MEMBERS, AT_SM_DIGEST, AT_SM_RECO, AT_SM_DECIDE };

typedef struct at_digest_acc {
    pthread_mutex_t mu;
    int left;
    uint64_t sum;
    at_streams_cb cb;
    void *ud;
} at_digest_acc_t;

typedef struct at_smsg {
    at_shard_msg_t m;
    at_streams_t *s;
    int kind;
    int p; /* the partition it is for */
    unsigned what;
    int64_t min_offset;
    int64_t deadline_ms; /* monotonic */
    int hops;
    at_streams_cb cb;
    void *ud;
    /* members */
    uint32_t cursor;
    size_t limit, got;
    at_buf_t acc;
    at_digest_acc_t *dig;
    at_reco_req_t *req;       /* recommendations: the request (owned, one block) */
    const at_placement_t *pl; /* decide: the placement, and the request body in acc */
    int64_t now_ms;
    size_t klen;
    char key[]; /* user key or segment name */
} at_smsg_t;

struct at_swait {
    at_swait_t *next;
    at_smsg_t *msg;
};

static void at_streams__msg_fn(at_shard_msg_t *m, void *ud);

static int at_streams__post(at_streams_t *s, at_smsg_t *msg)
{
    msg->m.fn = at_streams__msg_fn;
    int rc = at_shard_post(s->shards[s->parts[msg->p].shard].sh, &msg->m);
    if (rc < 0) {
        at_buf_deinit(&msg->acc);
        free(msg->req);
        free(msg);
    }
    return rc;
}

static at_smsg_t *at_streams__msg(at_streams_t *s, int kind, const char *key, size_t n)
{
    at_smsg_t *m = at_xcalloc(1, sizeof *m + n + 1);
    m->s = s;
    m->kind = kind;
    memcpy(m->key, key, n);
    m->klen = n;
    at_buf_init(&m->acc, 0);
    return m;
}

static void at_streams__finish(at_smsg_t *m, int status, const char *json, size_t len)
{
    m->cb(m->ud, status, json, len);
    at_buf_deinit(&m->acc);
    free(m->req);
    free(m);
}

/* A recommendation answer: from the cache when another request built it
 * meanwhile, else built and kept there. */
static void at_streams__reco(at_spart_t *pt, at_smsg_t *m, at_buf_t *out)
{
    at_answers_t *ans = m->s->answers;
    if (!ans || m->req->skip) {
        at_proc_render_reco(pt->proc, m->key, m->klen, &m->s->reco, m->req, out);
        return;
    }
    uint64_t user = at_answers_user(m->key, m->klen);
    uint64_t tag = at_answers_tag(user, m->req);
    int64_t now = at_time_mono_ns() / 1000000;
    if (at_answers_get(ans, pt->p, user, tag, now, out))
        return;
    uint32_t gen = at_answers_gen(ans, pt->p, user);
    at_proc_render_reco(pt->proc, m->key, m->klen, &m->s->reco, m->req, out);
    at_answers_put(ans, pt->p, tag, gen, now, out->data, out->len);
}

static void at_streams__user(at_spart_t *pt, at_smsg_t *m)
{
    at_pstr_t target;
    if (at_proc_alias(pt->proc, m->key, m->klen, &target) && m->hops < 4) {
        /* follow the alias to the user's partition */
        at_smsg_t *n = at_streams__msg(m->s, m->kind, target.s, target.n);
        n->p = at_partition_of(target.s, target.n, m->s->cfg.partitions);
        n->what = m->what;
        n->min_offset = -1;
        n->hops = m->hops + 1;
        n->cb = m->cb;
        n->ud = m->ud;
        n->req = m->req;
        n->pl = m->pl;
        n->now_ms = m->now_ms;
        at_buf_deinit(&n->acc);
        n->acc = m->acc; /* the decide request's body moves along */
        free(m);
        if (at_streams__post(n->s, n) < 0)
            return; /* stopping: the answer is lost with the engine */
        return;
    }
    at_buf_t out;
    at_buf_init(&out, 0);
    int rc = 0;
    if (m->kind == AT_SM_RECO)
        at_streams__reco(pt, m, &out);
    else if (m->kind == AT_SM_DECIDE)
        at_proc_decide(pt->proc, m->key, m->klen, m->pl, m->acc.data, m->acc.len,
                       m->min_offset >= 0 && at_proc_next_offset(pt->proc) <= m->min_offset,
                       m->now_ms, &m->s->reco, &out);
    else
        rc = at_proc_render_user(pt->proc, m->key, m->klen, m->what, &out);
    at_streams__finish(m, rc, out.data, out.len);
    at_buf_deinit(&out);
}

bool at_streams_reco_cached(at_streams_t *s, const char *key, size_t n, const at_reco_req_t *req,
                            int64_t min_offset, at_buf_t *out)
{
    if (!s->answers || req->skip)
        return false;
    int p = at_partition_of(key, n, s->cfg.partitions);
    if (min_offset >= 0 &&
        atomic_load_explicit(&s->parts[p].next_offset, memory_order_acquire) <= min_offset)
        return false; /* the shard waits for it */
    uint64_t user = at_answers_user(key, n);
    return at_answers_get(s->answers, p, user, at_answers_tag(user, req),
                          at_time_mono_ns() / 1000000, out);
}

static void at_streams__members(at_spart_t *pt, at_smsg_t *m)
{
    at_streams_t *s = m->s;
    bool more = false;
    if (m->acc.len == 0)
        AT_ASSERT(at_buf_puts(&m->acc, "{\"members\":[") == 0);
    m->got += at_proc_members_page(pt->proc, m->key, m->klen, &m->cursor, m->limit - m->got,
                                   m->got == 0, &m->acc, &more);
    if (!more && m->p + 1 < s->cfg.partitions && m->got < m->limit) {
        m->p++;
        m->cursor = 0;
        (void)at_streams__post(s, m);
        return;
    }
    if (more || m->p + 1 < s->cfg.partitions)
        AT_ASSERT(at_buf_printf(&m->acc, "],\"cursor\":\"%d.%u\"}", more ? m->p : m->p + 1,
                                more ? m->cursor : 0) >= 0);
    else
        AT_ASSERT(at_buf_puts(&m->acc, "],\"cursor\":null}") == 0);
    at_streams__finish(m, 0, m->acc.data, m->acc.len);
}

static void at_streams__digest_part(at_spart_t *pt, at_smsg_t *m)
{
    at_digest_acc_t *d = m->dig;
    uint64_t x = at_proc_digest(pt->proc);
    pthread_mutex_lock(&d->mu);
    d->sum += x;
    bool last = --d->left == 0;
    pthread_mutex_unlock(&d->mu);
    if (last) {
        char json[96];
        int n = snprintf(json, sizeof json, "{\"digest\":\"%016llx\",\"partitions\":%d}",
                         (unsigned long long)d->sum, m->s->cfg.partitions);
        d->cb(d->ud, 0, json, (size_t)n);
        pthread_mutex_destroy(&d->mu);
        free(d);
    }
    at_buf_deinit(&m->acc);
    free(m);
}

static void at_streams__serve(at_spart_t *pt, at_smsg_t *m)
{
    switch (m->kind) {
    case AT_SM_USER:
    case AT_SM_RECO:
    case AT_SM_DECIDE:
        at_streams__user(pt, m);
        break;
    case AT_SM_MEMBERS:
        at_streams__members(pt, m);
        break;
    default:
        at_streams__digest_part(pt, m);
        break;
    }
}

/* Runs on the shard thread of m->p. */
static void at_streams__msg_fn(at_shard_msg_t *sm, void *ud)
{
    (void)ud;
    at_smsg_t *m = (at_smsg_t *)sm;
    at_spart_t *pt = &m->s->parts[m->p];
    if ((m->kind == AT_SM_USER || m->kind == AT_SM_RECO || m->kind == AT_SM_DECIDE) &&
        m->min_offset >= 0 && at_proc_next_offset(pt->proc) <= m->min_offset &&
        at_time_mono_ns() / 1000000 < m->deadline_ms) {
        at_swait_t *w = at_xcalloc(1, sizeof *w);
        w->msg = m;
        w->next = pt->waits;
        pt->waits = w;
        return;
    }
    at_streams__serve(pt, m);
}

static void at_streams__check_waits(at_spart_t *pt, int64_t now_ms)
{
    at_swait_t **pp = &pt->waits;
    while (*pp) {
        at_swait_t *w = *pp;
        if (at_proc_next_offset(pt->proc) > w->msg->min_offset || now_ms >= w->msg->deadline_ms) {
            *pp = w->next;
            at_streams__serve(pt, w->msg);
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

int at_streams_user(at_streams_t *s, const char *key, size_t n, unsigned what, int64_t min_offset,
                    at_streams_cb cb, void *ud)
{
    at_smsg_t *m = at_streams__msg(s, AT_SM_USER, key, n);
    m->p = at_partition_of(key, n, s->cfg.partitions);
    m->what = what;
    m->min_offset = min_offset;
    m->deadline_ms = at_time_mono_ns() / 1000000 + AT_STREAMS_WAIT_MS;
    m->cb = cb;
    m->ud = ud;
    return at_streams__post(s, m);
}

/* One block holding req and its strings. */
static at_reco_req_t *at_streams__req_copy(const at_reco_req_t *req)
{
    size_t n = sizeof *req + req->category_len + 1 + req->nexclude * sizeof(at_pstr_t);
    for (size_t i = 0; i < req->nexclude; i++)
        n += req->exclude[i].n + 1;
    at_reco_req_t *c = at_xmalloc(n);
    *c = *req;
    at_pstr_t *ex = (at_pstr_t *)(c + 1);
    char *p = (char *)(ex + req->nexclude);
    for (size_t i = 0; i < req->nexclude; i++) {
        memcpy(p, req->exclude[i].s, req->exclude[i].n);
        p[req->exclude[i].n] = 0;
        ex[i] = (at_pstr_t){p, req->exclude[i].n};
        p += req->exclude[i].n + 1;
    }
    c->exclude = ex;
    memcpy(p, req->category ? req->category : "", req->category_len);
    p[req->category_len] = 0;
    c->category = p;
    return c;
}

int at_streams_recommend(at_streams_t *s, const char *key, size_t n, const at_reco_req_t *req,
                         int64_t min_offset, at_streams_cb cb, void *ud)
{
    at_smsg_t *m = at_streams__msg(s, AT_SM_RECO, key, n);
    m->p = at_partition_of(key, n, s->cfg.partitions);
    m->req = at_streams__req_copy(req);
    m->min_offset = min_offset;
    m->deadline_ms = at_time_mono_ns() / 1000000 + AT_STREAMS_WAIT_MS;
    m->cb = cb;
    m->ud = ud;
    return at_streams__post(s, m);
}

int at_streams_decide(at_streams_t *s, const char *key, size_t n, const at_placement_t *pl,
                      const char *req, size_t req_len, int64_t min_offset, int64_t now_ms,
                      at_streams_cb cb, void *ud)
{
    at_smsg_t *m = at_streams__msg(s, AT_SM_DECIDE, key, n);
    m->p = at_partition_of(key, n, s->cfg.partitions);
    m->pl = pl;
    m->now_ms = now_ms;
    AT_ASSERT(at_buf_append(&m->acc, req, req_len) == 0);
    m->min_offset = min_offset;
    m->deadline_ms = at_time_mono_ns() / 1000000 + AT_STREAMS_WAIT_MS;
    m->cb = cb;
    m->ud = ud;
    return at_streams__post(s, m);
}

at_reco_set_t *at_streams_reco(at_streams_t *s)
{
    return &s->reco;
}

int at_streams_members(at_streams_t *s, const char *name, size_t n, const char *cursor,
                       size_t limit, at_streams_cb cb, void *ud)
{
    at_smsg_t *m = at_streams__msg(s, AT_SM_MEMBERS, name, n);
    unsigned p = 0, pos = 0;
    if (cursor && *cursor && sscanf(cursor, "%u.%u", &p, &pos) != 2) {
        at_buf_deinit(&m->acc);
        free(m);
        return AT_EINVALID;
    }
    if ((int)p >= s->cfg.partitions) {
        at_buf_deinit(&m->acc);
        free(m);
        return AT_EINVALID;
    }
    m->p = (int)p;
    m->cursor = pos;
    m->limit = limit ? limit : 100;
    m->cb = cb;
    m->ud = ud;
    return at_streams__post(s, m);
}

int at_streams_digest(at_streams_t *s, at_streams_cb cb, void *ud)
{
    at_digest_acc_t *d = at_xcalloc(1, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    d->left = s->cfg.partitions;
    d->cb = cb;
    d->ud = ud;
    for (int p = 0; p < s->cfg.partitions; p++) {
        at_smsg_t *m = at_streams__msg(s, AT_SM_DIGEST, "", 0);
        m->p = p;
        m->dig = d;
        if (at_streams__post(s, m) < 0)
            return AT_ECLOSED; /* only while stopping; d leaks with the process */
    }
    return 0;
}

/* ---- shard callbacks ------------------------------------------------------------------ */

static void at_streams__record(void *ud, const at_rec_t *rec)
{
    at_sshard_t *sh = ud;
    at_spart_t *pt = &sh->s->parts[rec->partition];
    pt->cur_seq = rec->seq;
    at_proc_record(pt->proc, rec);
    bool user = rec->type == AT_REC_EVENT || rec->type == AT_REC_MERGE ||
                rec->type == AT_REC_HANDOFF || rec->type == AT_REC_FORWARDED ||
                rec->type == AT_REC_ERASE;
    /* before the offset is published: a read that sees the offset sees
     * the user's answers invalid (at_streams_reco_cached) */
    if (user && sh->s->answers)
        at_answers_touch(sh->s->answers, rec->partition, at_answers_user(rec->key, rec->key_len));
    atomic_store_explicit(&pt->next_offset, at_proc_next_offset(pt->proc), memory_order_release);
    if (user && sh->s->cfg.watch)
        at_watch_hit(sh->s->cfg.watch, rec->key, rec->key_len);
}

static void at_streams__publish_stats(at_spart_t *pt)
{
    at_proc_stats_t st;
    at_proc_stats(pt->proc, &st);
    pthread_mutex_lock(&pt->mu);
    pt->pub = st;
    const at_ruleset_t *rs = at_proc_rules(pt->proc);
    pt->pub_members = at_xrealloc(pt->pub_members, (rs->n + 1) * sizeof *pt->pub_members);
    pt->npub_members = 0;
    for (size_t i = 0; i < rs->n; i++)
        pt->pub_members[pt->npub_members++] =
            (at_member_count_t){rs->rules[i]->id, at_proc_members(pt->proc, rs->rules[i]->id)};
    pthread_mutex_unlock(&pt->mu);
}

static void at_streams__periodic(at_sshard_t *sh, int64_t now)
{
    sh->last_periodic_ms = now;
    for (int i = 0; i < sh->nparts; i++) {
        at_spart_t *pt = &sh->s->parts[sh->parts[i]];
        at_streams__publish_stats(pt);
        at_streams__maybe_ckpt(pt, now);
    }
}

static void at_streams__flush(void *ud)
{
    at_sshard_t *sh = ud;
    int64_t now = at_time_mono_ns() / 1000000;
    for (int i = 0; i < sh->nparts; i++) {
        at_spart_t *pt = &sh->s->parts[sh->parts[i]];
        at_streams__flush_outputs(pt);
        at_streams__check_waits(pt, now);
        at_proc_stats_t st;
        at_proc_stats(pt->proc, &st);
        atomic_store_explicit(&pt->pending_bytes, st.pending_bytes, memory_order_relaxed);
    }
    /* a shard that stays behind (an import, a backlog) still checkpoints */
    if (now - sh->last_periodic_ms >= AT_STREAMS_PERIODIC_MS)
        at_streams__periodic(sh, now);
}

static void at_streams__idle(void *ud)
{
    at_sshard_t *sh = ud;
    at_streams__flush(ud);
    at_streams__periodic(sh, at_time_mono_ns() / 1000000);
}

/* ---- open and close ---------------------------------------------------------------------- */

typedef struct at_restore {
    at_proc_t *proc;
    int rc;
} at_restore_t;

static int at_streams__restore_user(void *ud, const void *key, size_t klen, const void *val,
                                    size_t vlen)
{
    at_restore_t *r = ud;
    return at_proc_restore_user(r->proc, key, klen, val, vlen);
}

static int at_streams__open_part(at_streams_t *s, at_spart_t *pt, char *err, size_t errlen)
{
    char dir[4096];
    at_proc_ops_t ops = {at_streams__output, at_streams__send};
    pt->proc = at_proc_new(pt->p, &s->cfg.proc, &ops, pt);
    pthread_mutex_init(&pt->mu, NULL);
    at_buf_init(&pt->obytes, 0);
    atomic_init(&pt->ckpt_inflight, false);
    atomic_init(&pt->need_full, false);
    atomic_init(&pt->out_sync_err, 0);
    atomic_init(&pt->sent, 0);
    atomic_init(&pt->sent_durable, 0);
    int rc = at_ckpt_dir(dir, sizeof dir, s->cfg.data_dir, pt->p);
    if (rc == 0)
        rc = at_ckpt_open(&pt->ckpt, dir, pt->p, NULL, err, errlen);
    if (rc < 0)
        return rc;
    void *meta = NULL;
    size_t mlen = 0;
    uint64_t id = 0;
    at_restore_t r = {pt->proc, 0};
    rc = at_ckpt_load(pt->ckpt, &meta, &mlen, &id, at_streams__restore_user, &r, err, errlen);
    if (rc == 0) {
        at_error_t e;
        rc = at_proc_restore_meta(pt->proc, meta, mlen, &e);
        if (rc < 0)
            (void)snprintf(err, errlen, "partition %d: %s", pt->p, e.message);
        at_proc_restore_done(pt->proc);
    } else if (rc == AT_ENOTFOUND) {
        rc = 0;
    } else if (rc > 0) {
        rc = AT_ECORRUPT;
        (void)snprintf(err, errlen,
                       "partition %d: a checkpoint value was refused (damaged, or of "
                       "another format than this version writes)",
                       pt->p);
    }
    free(meta);
    if (rc < 0)
        return rc;
    atomic_init(&pt->keep_from, at_proc_replay_from(pt->proc));
    if (snprintf(dir, sizeof dir, "%s/p%04d", s->out_dir, pt->p) >= (int)sizeof dir)
        return -ENAMETOOLONG;
    at_log_opts_t lo = {.partitions = 1,
                        .segment_bytes = s->cfg.out_segment_bytes,
                        .writeback = s->cfg.out_writeback};
    if ((rc = at_log_open(&pt->out, dir, &lo, err, errlen)) < 0)
        return rc;
    at_proc_stats_t st;
    at_proc_stats(pt->proc, &st);
    int64_t end = at_log_next_offset(pt->out, 0);
    if (end < st.out_next) {
        (void)snprintf(err, errlen,
                       "partition %d: the output log ends at %lld but the checkpoint says %lld",
                       pt->p, (long long)end, (long long)st.out_next);
        return AT_ECORRUPT;
    }
    at_proc_suppress_until(pt->proc, end);
    atomic_init(&pt->out_published, end);
    atomic_init(&pt->next_offset, at_proc_next_offset(pt->proc));
    pt->last_ckpt_ms = at_time_mono_ns() / 1000000;
    at_streams__publish_stats(pt);
    return 0;
}

int at_streams_open(at_streams_t **out, const at_streams_cfg_t *cfg, const at_streams_hooks_t *h,
                    uint64_t durable_seq, char *err, size_t errlen)
{
    at_streams_t *s = at_xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    s->hooks = *h;
    int P = cfg->partitions, S = AT_MAX(1, AT_MIN(cfg->shards, P));
    s->cfg.shards = S;
    atomic_init(&s->durable_seq, durable_seq);
    at_notify_init(&s->out_nt);
    pthread_mutex_init(&s->ckmu, NULL);
    pthread_cond_init(&s->ckcv, NULL);
    at_hist_init(&s->ckpt_hist);
    at_lat_init(&s->lat_early);
    at_lat_init(&s->lat_final);
    size_t n = strlen(cfg->data_dir) + 8;
    s->out_dir = at_xmalloc(n);
    (void)snprintf(s->out_dir, n, "%s/out", cfg->data_dir);
    s->parts = at_xcalloc((size_t)P, sizeof *s->parts);
    s->shards = at_xcalloc((size_t)S, sizeof *s->shards);
    int rc = at_mkdirs(s->out_dir, 0755);
    if (rc < 0)
        (void)snprintf(err, errlen, "%s: %s", s->out_dir, at_strerror(rc));
    for (int p = 0; rc == 0 && p < P; p++) {
        s->parts[p].p = p;
        s->parts[p].s = s;
        s->parts[p].shard = p % S;
        rc = at_streams__open_part(s, &s->parts[p], err, errlen);
    }
    if (rc == 0) {
        s->rparts = at_xcalloc((size_t)P, sizeof(at_reco_part_t *));
        for (int p = 0; p < P; p++)
            s->rparts[p] = at_proc_reco(s->parts[p].proc);
        at_reco_set_init(&s->reco, s->rparts, P);
        s->reco_init = true;
        s->answers = at_answers_new(P, cfg->proc.reco_answers, cfg->proc.reco_answer_ttl_ms);
    }
    if (rc == 0 && (rc = -pthread_create(&s->ckth, NULL, at_streams__ck_main, s)) == 0)
        s->ckth_started = true;
    bool *owned = at_xcalloc((size_t)P, sizeof *owned);
    int64_t *from = at_xcalloc((size_t)P, sizeof *from);
    for (int k = 0; rc == 0 && k < S; k++) {
        at_sshard_t *sh = &s->shards[k];
        sh->s = s;
        sh->id = k;
        sh->parts = at_xcalloc((size_t)P, sizeof *sh->parts);
        for (int p = 0; p < P; p++) {
            owned[p] = s->parts[p].shard == k;
            from[p] = at_proc_next_offset(s->parts[p].proc);
            if (owned[p])
                sh->parts[sh->nparts++] = p;
        }
        char name[24];
        (void)snprintf(name, sizeof name, "shard-%d", k);
        at_shard_opts_t so = {.log_dir = cfg->log_dir,
                              .partitions = P,
                              .owned = owned,
                              .from = from,
                              .durable_seq = &s->durable_seq,
                              .idle_ms = 100,
                              .batch = 256,
                              .ops = {at_streams__record, at_streams__flush, at_streams__idle},
                              .ud = sh,
                              .name = name};
        rc = at_shard_start(&sh->sh, &so, err, errlen);
    }
    free(owned);
    free(from);
    if (rc < 0) {
        at_streams_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void at_streams_close(at_streams_t *s)
{
    if (!s)
        return;
    int P = s->cfg.partitions;
    for (int k = 0; k < s->cfg.shards; k++)
        if (s->shards[k].sh)
            at_shard_stop(s->shards[k].sh);
    /* the shards are gone: this thread owns the processors now (a failed
     * open has none running and writes no checkpoint) */
    bool ok = s->ckth_started;
    for (int k = 0; k < s->cfg.shards && ok; k++)
        ok = s->shards[k].sh != NULL;
    for (int p = 0; p < P; p++) {
        at_spart_t *pt = &s->parts[p];
        while (pt->waits) { /* reads parked at the end get what there is */
            at_swait_t *w = pt->waits;
            pt->waits = w->next;
            at_streams__serve(pt, w->msg);
            free(w);
        }
    }
    for (int p = 0; ok && p < P; p++) {
        at_spart_t *pt = &s->parts[p];
        while (atomic_load(&pt->ckpt_inflight)) { /* one checkpoint at a time per store */
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        atomic_store(&pt->ckpt_inflight, true);
        at_ckjob_t *j = at_streams__build_ckpt(pt);
        if (!j) {
            atomic_store(&pt->ckpt_inflight, false);
            continue;
        }
        j->sync = true;
        at_streams__ck_queue(s, j);
        pthread_mutex_lock(&s->ckmu);
        while (!j->done)
            pthread_cond_wait(&s->ckcv, &s->ckmu);
        pthread_mutex_unlock(&s->ckmu);
        free(j);
    }
    if (s->ckth_started) {
        pthread_mutex_lock(&s->ckmu);
        s->ckstop = true;
        pthread_cond_broadcast(&s->ckcv);
        pthread_mutex_unlock(&s->ckmu);
        pthread_join(s->ckth, NULL);
    }
    if (s->reco_init)
        at_reco_set_deinit(&s->reco);
    at_answers_free(s->answers);
    free(s->rparts);
    for (int p = 0; p < P; p++) {
        at_spart_t *pt = &s->parts[p];
        if (pt->out) {
            at_streams__flush_outputs(pt);
            (void)at_log_sync(pt->out);
            at_log_close(pt->out);
        }
        at_ckpt_close(pt->ckpt);
        at_proc_free(pt->proc);
        free(pt->orecs);
        free(pt->pub_members);
        at_buf_deinit(&pt->obytes);
        if (pt->proc || pt->ckpt)
            pthread_mutex_destroy(&pt->mu);
    }
    for (int k = 0; k < s->cfg.shards; k++)
        free(s->shards[k].parts);
    at_notify_deinit(&s->out_nt);
    pthread_mutex_destroy(&s->ckmu);
    pthread_cond_destroy(&s->ckcv);
    free(s->parts);
    free(s->shards);
    free(s->out_dir);
    free(s);
}

/* ---- the writer's side --------------------------------------------------------------------- */

void at_streams_publish(at_streams_t *s, uint64_t seq)
{
    if (seq == atomic_load_explicit(&s->durable_seq, memory_order_relaxed))
        return;
    uint64_t n = atomic_load_explicit(&s->ring_n, memory_order_relaxed);
    atomic_store_explicit(&s->ring[n % AT_STREAMS_RING].seq, seq, memory_order_relaxed);
    atomic_store_explicit(&s->ring[n % AT_STREAMS_RING].ns, at_time_mono_ns(),
                          memory_order_relaxed);
    atomic_store_explicit(&s->ring_n, n + 1, memory_order_release);
    atomic_store_explicit(&s->durable_seq, seq, memory_order_release);
    for (int k = 0; k < s->cfg.shards; k++)
        at_shard_wake(s->shards[k].sh);
}

void at_streams_sent_durable(at_streams_t *s, int src, uint64_t n)
{
    atomic_fetch_add(&s->parts[src].sent_durable, n);
}

bool at_streams_caught_up(const at_streams_t *s, uint64_t seq)
{
    for (int k = 0; k < s->cfg.shards; k++)
        if (at_shard_position(s->shards[k].sh) < seq)
            return false;
    return true;
}

uint64_t at_streams_pending_bytes(const at_streams_t *s)
{
    uint64_t n = 0;
    for (int p = 0; p < s->cfg.partitions; p++)
        n += atomic_load_explicit(&((at_streams_t *)s)->parts[p].pending_bytes,
                                  memory_order_relaxed);
    return n;
}

int64_t at_streams_keep_from(const at_streams_t *s, int p)
{
    return atomic_load(&((at_streams_t *)s)->parts[p].keep_from);
}

/* ---- figures ----------------------------------------------------------------------------------
 */

void at_streams_stats(at_streams_t *s, at_streams_stats_t *st)
{
    memset(st, 0, sizeof *st);
    st->total.watermark = AT_WM_NONE;
    for (int p = 0; p < s->cfg.partitions; p++) {
        at_spart_t *pt = &s->parts[p];
        pthread_mutex_lock(&pt->mu);
        at_proc_stats_t x = pt->pub;
        pthread_mutex_unlock(&pt->mu);
        at_proc_stats_t *t = &st->total;
        t->records += x.records;
        t->events += x.events;
        t->late += x.late;
        t->ticks += x.ticks;
        t->controls += x.controls;
        t->merges += x.merges;
        t->handoffs += x.handoffs;
        t->forwarded += x.forwarded;
        t->erased += x.erased;
        t->duplicates_dropped += x.duplicates_dropped;
        t->outputs += x.outputs;
        t->outputs_suppressed += x.outputs_suppressed;
        t->shadow_outputs += x.shadow_outputs;
        t->early_outputs += x.early_outputs;
        t->expired_users += x.expired_users;
        t->items += x.items;
        t->degraded += x.degraded;
        t->pending += x.pending;
        t->pending_bytes += x.pending_bytes;
        t->users += x.users;
        t->state_bytes += x.state_bytes;
        if (x.watermark != AT_WM_NONE && (t->watermark == AT_WM_NONE || x.watermark < t->watermark))
            t->watermark = x.watermark;
    }
    st->checkpoints = atomic_load(&s->ckpts);
    st->checkpoint_errors = atomic_load(&s->ckerrs);
    st->checkpoint_bytes = atomic_load(&s->ckbytes);
    st->ckpt_seconds = &s->ckpt_hist;
    st->lat_early = &s->lat_early;
    st->lat_final = &s->lat_final;
    st->out_records = atomic_load(&s->orecs);
    st->out_bytes = atomic_load(&s->obytes);
    at_answers_stats(s->answers, &st->total.reco_cached, &st->total.reco_built);
    _Static_assert(sizeof st->total.reco_built_by == AT_ANSWERS_CAUSES * sizeof(uint64_t),
                   "a counter per cause");
    at_answers_causes(s->answers, st->total.reco_built_by);
}

int64_t at_streams_members_count(at_streams_t *s, uint32_t id)
{
    int64_t n = 0;
    for (int p = 0; p < s->cfg.partitions; p++) {
        at_spart_t *pt = &s->parts[p];
        pthread_mutex_lock(&pt->mu);
        for (size_t i = 0; i < pt->npub_members; i++)
            if (pt->pub_members[i].id == id)
                n += pt->pub_members[i].n;
        pthread_mutex_unlock(&pt->mu);
    }
    return n;
}

int64_t at_streams_watermark(at_streams_t *s, int p)
{
    at_spart_t *pt = &s->parts[p];
    pthread_mutex_lock(&pt->mu);
    int64_t w = pt->pub.watermark;
    pthread_mutex_unlock(&pt->mu);
    return w;
}

/* ---- the output bus ----------------------------------------------------------------------------
 */

struct at_outreader {
    at_streams_t *s;
    at_log_t **logs;
    at_log_iter_t **its;
    uint64_t seen;
    int next_p;
};

int at_outreader_open(at_streams_t *s, const int64_t *from, at_outreader_t **out)
{
    int P = s->cfg.partitions;
    at_outreader_t *r = at_xcalloc(1, sizeof *r);
    r->s = s;
    r->logs = at_xcalloc((size_t)P, sizeof(at_log_t *));
    r->its = at_xcalloc((size_t)P, sizeof(at_log_iter_t *));
    int rc = 0;
    for (int p = 0; p < P && rc == 0; p++) {
        char dir[4096], err[256];
        (void)snprintf(dir, sizeof dir, "%s/p%04d", s->out_dir, p);
        at_log_opts_t lo = {.partitions = 1, .read_only = true};
        if ((rc = at_log_open(&r->logs[p], dir, &lo, err, sizeof err)) < 0)
            break;
        int64_t f = from ? from[p] : atomic_load(&s->parts[p].out_published);
        rc = at_log_iter_open(r->logs[p], &f, &r->its[p]);
    }
    if (rc < 0) {
        at_outreader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

int at_outreader_next(at_outreader_t *r, at_out_fn fn, void *ud, int max)
{
    int P = r->s->cfg.partitions, got = 0;
    for (int k = 0; k < P && got < max; k++) {
        int p = (r->next_p + k) % P;
        at_log_iter_set_limit(r->its[p], (uint64_t)atomic_load(&r->s->parts[p].out_published));
        at_rec_t rec;
        int rc = 0;
        while (got < max && (rc = at_log_iter_next(r->its[p], &rec)) == 1) {
            got++;
            if (fn(ud, p, rec.offset, rec.key, rec.key_len, rec.value, rec.value_len) != 0)
                return got;
        }
        if (rc < 0)
            return rc;
    }
    r->next_p = (r->next_p + 1) % P;
    return got;
}

void at_outreader_wait(at_outreader_t *r, int timeout_ms)
{
    at_notify_wait(&r->s->out_nt, &r->seen, timeout_ms);
}

void at_outreader_close(at_outreader_t *r)
{
    if (!r)
        return;
    for (int p = 0; p < r->s->cfg.partitions; p++) {
        at_log_iter_close(r->its[p]);
        if (r->logs[p])
            at_log_close(r->logs[p]);
    }
    free(r->logs);
    free(r->its);
    free(r);
}
