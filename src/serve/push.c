/* push.c - push to the browser (DESIGN.md §4, §7): GET
 * /v1/users/{id}/stream (Server-Sent Events) and GET /v1/ws (WebSocket)
 * carry a user's segment and trigger events as they happen.
 *
 * One hub thread follows the output bus from now (attune_outputs_*) and
 * routes each output by its "user" to that user's open connections (a hash
 * map from user key to connections). A connection that resumes
 * (Last-Event-ID: P:OFFSET) is first replayed, on the replay thread, from
 * the durable output log of partition P after OFFSET; live outputs that
 * arrive meanwhile wait in a bounded list, and a per-connection cursor
 * (partition, next offset) drops what both paths saw, so the join loses
 * and repeats nothing, across restarts too.
 *
 * A slow reader: each connection may have push.max_buffer bytes waiting
 * (the HTTP layer's cap). Past it, outputs are dropped and counted, and
 * every later one too, so nothing is delivered behind a gap; once there is
 * room the client gets `event: dropped` with the count, the first missed
 * position and an SSE id just before it, and the stream ends: EventSource
 * reconnects with that Last-Event-ID and gets exactly what it missed. The
 * hub never waits for a connection and never blocks the engine.
 *
 * Wire format (SSE): "id: P:OFFSET\nevent: TYPE\ndata: JSON\n\n"; a
 * heartbeat ": hb\n\n" every push.heartbeat. WebSocket: the output JSON as
 * a text frame, a ping as heartbeat; events sent by the client are
 * ingested like POST /v1/events and answered with an ack or error frame.
 * docs/api.md, docs/decisions/0006-push.md.
 *
 * THREAD SAFETY: hub->mu guards the map, the lists and every field of a
 * connection's state (sub) below it; stream sends happen under it (they
 * only queue). gone() runs on an HTTP loop thread and takes hub->mu.
 */
#include "at_json.h"
#include "push_int.h"

#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define AT_PUSH__BUCKETS0 1024
#define AT_PUSH__TICK_MS 100
#define AT_PUSH__REPLAY_WAIT_NS (30 * 1000000000LL) /* a replay waits this long for room */

enum {
    AT_PUSH__T_ENTER,
    AT_PUSH__T_EXIT,
    AT_PUSH__T_TRIGGER,
    AT_PUSH__T_DROPPED,
    AT_PUSH__T_DECISION,
    AT_PUSH__T_RECO,
    AT_PUSH__T_OTHER,
    AT_PUSH__NTYPES
};
static const char *const at_push__type_names[AT_PUSH__NTYPES] = {
    "segment_enter", "segment_exit", "trigger", "dropped", "decision", "recommendations", "other"};

/* An output held for a connection being replayed. */
typedef struct at_push_pend {
    struct at_push_pend *next;
    int part;
    int64_t off;
    int type;
    size_t len;
    char data[]; /* the frame as this connection's kind sends it */
} at_push_pend_t;

typedef struct at_push_sub at_push_sub_t;
struct at_push_sub {
    at_push_t *hub;
    at_http_stream_t *st;
    at_push_sub_t *hnext;         /* bucket chain */
    at_push_sub_t *anext, *aprev; /* hub->all */
    uint64_t hash;
    char *user; /* namespaced key, NUL-terminated */
    size_t ulen;
    bool ws;
    bool linked;    /* in the map (until gone) */
    bool replaying; /* live outputs wait in pend */
    bool dropping;  /* an output did not fit: the rest is dropped until the notice */
    bool ending;    /* the stream was ended */
    unsigned ingest_flags;
    uint64_t ndropped;
    int drop_part;
    int64_t drop_off;
    int rpart; /* the cursor: outputs of rpart before rnext were sent; -1 none */
    int64_t rnext;
    at_push_pend_t *phead, *ptail;
    size_t pbytes;
    struct at_push_want *want; /* decisions / recommendations asked for, or NULL */
    atomic_int refs;
};

/* What a connection asked to be kept up to date on (derived messages):
 * decisions for placements, recommendations. Guarded by hub->mu. */
#define AT_PUSH__MAX_PLACEMENTS 8
typedef struct at_push_want {
    int nplacements;
    char *placements[AT_PUSH__MAX_PLACEMENTS];
    char *variant[AT_PUSH__MAX_PLACEMENTS]; /* last sent; NULL: none yet */
    char *context;                          /* JSON object, or NULL */
    int reco_n;                             /* 0: no recommendations */
    char *reco_top;                         /* last sent top-3 set */
    int64_t reco_next_ns;                   /* not before this */
    bool reco_due;                          /* a change waits for reco_next_ns */
    int inflight;                           /* decide/recommend calls out */
    bool again;                             /* a change came while they were out */
} at_push_want_t;

/* A replay to do: the connection (a reference) and where to start. */
typedef struct at_push_job {
    struct at_push_job *next;
    at_push_sub_t *sub;
    int part;
    int64_t from;
} at_push_job_t;

struct at_push {
    at_serve_t *s;
    attune_t *a;
    int partitions;
    size_t max_buffer;
    int64_t heartbeat_ns;
    unsigned char secret[AT_PUSH_SECRET_MAX];
    size_t secret_len;
    int64_t token_ttl_s;

    pthread_mutex_t mu;
    at_push_sub_t **buckets;
    size_t nbuckets, nsubs;
    at_push_sub_t *all;
    size_t ndropping;

    pthread_t hub_thread, replay_thread;
    bool started;
    atomic_bool stop;
    pthread_cond_t jobs_cv; /* with mu */
    at_push_job_t *jobs_head, *jobs_tail;
    at_arena_t arena; /* the hub thread's parses */

    /* changed users (attune_watch callback), coalesced, for the decider */
    pthread_mutex_t cmu;
    pthread_cond_t ccv;
    char **changed;
    size_t nchanged, capchanged;
    pthread_t decide_thread;
    int64_t reco_interval_ns;
    size_t nreco_due; /* subs with reco_due, under mu */

    atomic_uint_fast64_t conns[2]; /* open: sse, ws */
    atomic_uint_fast64_t msgs[AT_PUSH__NTYPES];
    atomic_uint_fast64_t dropped, resumes;
    atomic_int calls; /* engine calls whose callback is still to come */
    int following;    /* under mu: 1 once the hub's reader is open, -1 failed */
};

/* ---- connections -------------------------------------------------------- */

static uint64_t at_push__hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void at_push__want_free(at_push_want_t *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->nplacements; i++) {
        free(w->placements[i]);
        free(w->variant[i]);
    }
    free(w->context);
    free(w->reco_top);
    free(w);
}

static void at_push__sub_unref(at_push_sub_t *sub)
{
    if (atomic_fetch_sub(&sub->refs, 1) != 1)
        return;
    at_push_pend_t *p = sub->phead;
    while (p) {
        at_push_pend_t *n = p->next;
        free(p);
        p = n;
    }
    at_push__want_free(sub->want);
    at_http_stream_release(sub->st);
    free(sub->user);
    free(sub);
}

/* hub->mu held. */
static void at_push__grow(at_push_t *h)
{
    size_t nb = h->nbuckets * 2;
    at_push_sub_t **b = at_xcalloc(nb, sizeof(at_push_sub_t *));
    for (size_t i = 0; i < h->nbuckets; i++) {
        at_push_sub_t *s = h->buckets[i];
        while (s) {
            at_push_sub_t *n = s->hnext;
            size_t k = s->hash & (nb - 1);
            s->hnext = b[k];
            b[k] = s;
            s = n;
        }
    }
    free(h->buckets);
    h->buckets = b;
    h->nbuckets = nb;
}

/* hub->mu held. */
static void at_push__link(at_push_t *h, at_push_sub_t *sub)
{
    if (h->nsubs >= h->nbuckets)
        at_push__grow(h);
    size_t k = sub->hash & (h->nbuckets - 1);
    sub->hnext = h->buckets[k];
    h->buckets[k] = sub;
    sub->anext = h->all;
    if (h->all)
        h->all->aprev = sub;
    h->all = sub;
    sub->linked = true;
    h->nsubs++;
}

/* hub->mu held. */
static void at_push__unlink(at_push_t *h, at_push_sub_t *sub)
{
    at_push_sub_t **pp = &h->buckets[sub->hash & (h->nbuckets - 1)];
    while (*pp && *pp != sub)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = sub->hnext;
    if (sub->aprev)
        sub->aprev->anext = sub->anext;
    else
        h->all = sub->anext;
    if (sub->anext)
        sub->anext->aprev = sub->aprev;
    sub->linked = false;
    if (sub->dropping && !sub->ending)
        h->ndropping--;
    if (sub->want && sub->want->reco_due)
        h->nreco_due--;
    h->nsubs--;
}

/* The connection closed (loop thread). */
static void at_push__gone(void *ud, at_http_stream_t *st)
{
    (void)st;
    at_push_sub_t *sub = ud;
    at_push_t *h = sub->hub;
    pthread_mutex_lock(&h->mu);
    if (sub->linked)
        at_push__unlink(h, sub);
    pthread_mutex_unlock(&h->mu);
    if (sub->want)
        attune_unwatch(h->a, sub->user, sub->ulen);
    atomic_fetch_sub(&h->conns[sub->ws ? 1 : 0], 1);
    at_push__sub_unref(sub);
}

/* ---- messages ------------------------------------------------------------- */

static int at_push__type_of(const char *t, size_t n)
{
    for (int i = 0; i < AT_PUSH__NTYPES - 1; i++)
        if (strlen(at_push__type_names[i]) == n && !memcmp(at_push__type_names[i], t, n))
            return i;
    return AT_PUSH__T_OTHER;
}

/* The SSE frame of an output. */
static void at_push__sse(at_buf_t *b, int part, int64_t off, const char *type, size_t tn,
                         const char *json, size_t len)
{
    at_buf_printf(b, "id: %d:%lld\nevent: %.*s\ndata: ", part, (long long)off, (int)tn, type);
    at_buf_append(b, json, len);
    at_buf_puts(b, "\n\n");
}

/* The notice of what a connection missed; ends its stream. hub->mu held. */
static void at_push__notice(at_push_t *h, at_push_sub_t *sub)
{
    if (!sub->dropping || sub->ending)
        return;
    char json[256], frame[512];
    int jn = snprintf(json, sizeof json,
                      "{\"type\":\"dropped\",\"count\":%llu,\"first_missed\":\"%d:%lld\","
                      "\"last_event_id\":\"%d:%lld\"}",
                      (unsigned long long)sub->ndropped, sub->drop_part, (long long)sub->drop_off,
                      sub->drop_part, (long long)sub->drop_off - 1);
    const char *msg = json;
    int n = jn;
    if (!sub->ws) {
        n = snprintf(frame, sizeof frame, "id: %d:%lld\nevent: dropped\ndata: %s\n\n",
                     sub->drop_part, (long long)sub->drop_off - 1, json);
        msg = frame;
    }
    if (at_http_stream_send(sub->st, msg, (size_t)n) != 0)
        return; /* still no room: at the next tick */
    atomic_fetch_add(&h->msgs[AT_PUSH__T_DROPPED], 1);
    sub->ending = true;
    h->ndropping--;
    at_http_stream_end(sub->st, 0);
}

static void at_push__drop(at_push_t *h, at_push_sub_t *sub, int part, int64_t off)
{
    atomic_fetch_add(&h->dropped, 1);
    if (!sub->dropping) {
        sub->dropping = true;
        sub->ndropped = 0;
        sub->drop_part = part;
        sub->drop_off = off;
        h->ndropping++;
    }
    sub->ndropped++;
}

/* Hands one output (frame as sub's kind sends it) to sub. hub->mu held. */
static void at_push__deliver(at_push_t *h, at_push_sub_t *sub, int part, int64_t off, int type,
                             const char *frame, size_t len)
{
    if (sub->ending)
        return;
    if (sub->rpart == part && off < sub->rnext)
        return; /* the replay sent it */
    if (sub->replaying) {
        if (sub->dropping || sub->pbytes + len > h->max_buffer) {
            at_push__drop(h, sub, part, off);
            return;
        }
        at_push_pend_t *p = at_xmalloc(sizeof *p + len);
        p->next = NULL;
        p->part = part;
        p->off = off;
        p->type = type;
        p->len = len;
        memcpy(p->data, frame, len);
        if (sub->ptail)
            sub->ptail->next = p;
        else
            sub->phead = p;
        sub->ptail = p;
        sub->pbytes += len;
        return;
    }
    if (sub->dropping) {
        at_push__drop(h, sub, part, off);
        at_push__notice(h, sub);
        return;
    }
    int rc = at_http_stream_send(sub->st, frame, len);
    if (rc == AT_EFULL) {
        at_push__drop(h, sub, part, off);
        return;
    }
    if (rc == 0) {
        atomic_fetch_add(&h->msgs[type], 1);
        if (sub->rpart < 0)
            sub->rpart = part;
        if (sub->rpart == part)
            sub->rnext = off + 1;
    }
}

typedef struct at_push_out {
    const char *user, *type;
    size_t ulen, tlen;
} at_push_out_t;

/* Reads "user" and "type" of an output (engine-made JSON). */
static bool at_push__parse(at_arena_t *ar, const char *json, size_t len, at_push_out_t *o)
{
    at_json_t *root = NULL;
    at_error_t err;
    at_arena_reset(ar);
    if (at_json_parse_all(json, len, ar, 16, &root, &err) != 0 || root->type != AT_JSON_OBJECT)
        return false;
    const at_json_t *u = at_json_get(root, "user", 4), *t = at_json_get(root, "type", 4);
    if (!u || u->type != AT_JSON_STRING || !t || t->type != AT_JSON_STRING)
        return false;
    o->user = u->s;
    o->ulen = u->len;
    o->type = t->s;
    o->tlen = t->len;
    return true;
}

/* ---- the hub thread ---------------------------------------------------------- */

static int at_push__on_output(void *ud, int part, int64_t off, const char *json, size_t len)
{
    at_push_t *h = ud;
    at_push_out_t o;
    if (!at_push__parse(&h->arena, json, len, &o))
        return 0;
    uint64_t hash = at_push__hash(o.user, o.ulen);
    int type = at_push__type_of(o.type, o.tlen);
    at_buf_t sse;
    at_buf_init(&sse, 0);
    pthread_mutex_lock(&h->mu);
    for (at_push_sub_t *s = h->buckets[hash & (h->nbuckets - 1)]; s; s = s->hnext) {
        if (s->hash != hash || s->ulen != o.ulen || memcmp(s->user, o.user, o.ulen) != 0)
            continue;
        if (s->ws) {
            at_push__deliver(h, s, part, off, type, json, len);
        } else {
            if (!sse.len)
                at_push__sse(&sse, part, off, o.type, o.tlen, json, len);
            at_push__deliver(h, s, part, off, type, sse.data, sse.len);
        }
    }
    pthread_mutex_unlock(&h->mu);
    at_buf_deinit(&sse);
    return 0;
}

/* Heartbeats and pending notices. */
static void at_push__tick(at_push_t *h, bool beat)
{
    pthread_mutex_lock(&h->mu);
    if (beat || h->ndropping) {
        for (at_push_sub_t *s = h->all; s; s = s->anext) {
            if (s->dropping)
                at_push__notice(h, s);
            else if (beat && !s->ending)
                (void)(s->ws ? at_http_stream_ping(s->st)
                             : at_http_stream_send(s->st, ": hb\n\n", 6));
        }
    }
    pthread_mutex_unlock(&h->mu);
}

/* Follows the outputs from the moment at_push_start returned: that waits
 * for the reader to be open (opening the output logs takes a while). */
static void *at_push__hub_main(void *arg)
{
    at_push_t *h = arg;
    attune_outputs_t *o = NULL;
    int rc = attune_outputs_open(h->a, NULL, &o);
    pthread_mutex_lock(&h->mu);
    h->following = rc == 0 ? 1 : -1;
    pthread_cond_broadcast(&h->jobs_cv);
    pthread_mutex_unlock(&h->mu);
    if (rc < 0) {
        AT_ERROR("push: cannot follow the outputs", "error=%s", at_strerror(rc));
        return NULL;
    }
    int64_t next_beat = at_time_mono_ns() + h->heartbeat_ns;
    while (!atomic_load(&h->stop)) {
        int n = attune_outputs_next(o, at_push__on_output, h, 256);
        if (n < 0) {
            AT_WARN("push: reading the outputs failed", "error=%s", at_strerror(n));
            n = 0;
        }
        int64_t now = at_time_mono_ns();
        bool beat = now >= next_beat;
        if (beat)
            next_beat = now + h->heartbeat_ns;
        at_push__tick(h, beat);
        if (n == 0)
            attune_outputs_wait(o, AT_PUSH__TICK_MS);
    }
    attune_outputs_close(o);
    return NULL;
}

/* ---- replay ------------------------------------------------------------------- */

typedef struct at_push_replay {
    at_push_t *h;
    at_push_sub_t *sub;
    int part;
    at_arena_t arena;
    bool stop;
} at_push_replay_t;

/* Sends one replayed frame, waiting for room (this thread may wait: it is
 * not the hub). false: the connection is gone or stalled. */
static bool at_push__replay_send(at_push_replay_t *r, const char *frame, size_t len)
{
    int64_t until = at_time_mono_ns() + AT_PUSH__REPLAY_WAIT_NS;
    for (;;) {
        int rc = at_http_stream_send(r->sub->st, frame, len);
        if (rc == 0)
            return true;
        if (rc != AT_EFULL || atomic_load(&r->h->stop) || at_time_mono_ns() > until)
            return false;
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int at_push__on_replay(void *ud, int part, int64_t off, const char *json, size_t len)
{
    at_push_replay_t *r = ud;
    if (part != r->part)
        return 0;
    at_push_out_t o;
    at_push_sub_t *sub = r->sub;
    if (!at_push__parse(&r->arena, json, len, &o) || o.ulen != sub->ulen ||
        memcmp(o.user, sub->user, o.ulen) != 0)
        return 0;
    at_buf_t b;
    at_buf_init(&b, 0);
    if (!sub->ws)
        at_push__sse(&b, part, off, o.type, o.tlen, json, len);
    bool ok = sub->ws ? at_push__replay_send(r, json, len) : at_push__replay_send(r, b.data, b.len);
    at_buf_deinit(&b);
    if (!ok) {
        r->stop = true;
        return 1;
    }
    atomic_fetch_add(&r->h->msgs[at_push__type_of(o.type, o.tlen)], 1);
    pthread_mutex_lock(&r->h->mu);
    sub->rnext = off + 1;
    pthread_mutex_unlock(&r->h->mu);
    return 0;
}

/* Replays one connection, then lets it join the live outputs. */
static void at_push__replay(at_push_t *h, at_push_job_t *j)
{
    at_push_replay_t r = {.h = h, .sub = j->sub, .part = j->part};
    at_arena_init(&r.arena, 4096);
    int64_t *from = at_xcalloc((size_t)h->partitions, sizeof *from);
    for (int p = 0; p < h->partitions; p++)
        from[p] = p == j->part ? j->from : INT64_MAX;
    attune_outputs_t *o = NULL;
    int rc = attune_outputs_open(h->a, from, &o);
    free(from);
    if (rc < 0)
        AT_WARN("push: cannot replay", "error=%s", at_strerror(rc));
    while (rc >= 0 && !r.stop && !atomic_load(&h->stop)) {
        rc = attune_outputs_next(o, at_push__on_replay, &r, 256);
        if (rc <= 0)
            break;
    }
    attune_outputs_close(o);
    at_arena_deinit(&r.arena);
    at_push_sub_t *sub = j->sub;
    pthread_mutex_lock(&h->mu);
    sub->replaying = false;
    at_push_pend_t *p = sub->phead;
    sub->phead = sub->ptail = NULL;
    sub->pbytes = 0;
    while (p) {
        at_push_pend_t *n = p->next;
        if (sub->linked)
            at_push__deliver(h, sub, p->part, p->off, p->type, p->data, p->len);
        free(p);
        p = n;
    }
    if (sub->linked && r.stop && !sub->ending) {
        sub->ending = true; /* stalled for good during the replay */
        at_http_stream_end(sub->st, 0);
    }
    pthread_mutex_unlock(&h->mu);
}

static void *at_push__replay_main(void *arg)
{
    at_push_t *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->jobs_head && !atomic_load(&h->stop))
            pthread_cond_wait(&h->jobs_cv, &h->mu);
        at_push_job_t *j = h->jobs_head;
        if (!j)
            break;
        h->jobs_head = j->next;
        if (!h->jobs_head)
            h->jobs_tail = NULL;
        pthread_mutex_unlock(&h->mu);
        if (!atomic_load(&h->stop))
            at_push__replay(h, j);
        at_push__sub_unref(j->sub);
        free(j);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ---- decisions and recommendations (derived: no SSE id) ------------------------ */

typedef struct at_push_call {
    at_push_sub_t *sub; /* a reference */
    int index;          /* the placement; -1: recommendations */
} at_push_call_t;

/* Sends a derived message {"type":TYPE, ...rest of json}. false: no room.
 * hub->mu held. */
static bool at_push__derived(at_push_t *h, at_push_sub_t *sub, int type, const char *json,
                             size_t len)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    if (!sub->ws)
        at_buf_printf(&b, "event: %s\ndata: ", at_push__type_names[type]);
    at_buf_printf(&b, "{\"type\":\"%s\",", at_push__type_names[type]);
    at_buf_append(&b, json + 1, len - 1);
    if (!sub->ws)
        at_buf_puts(&b, "\n\n");
    bool ok = at_http_stream_send(sub->st, b.data, b.len) == 0;
    at_buf_deinit(&b);
    if (ok)
        atomic_fetch_add(&h->msgs[type], 1);
    return ok;
}

/* The raw text of member key of an object answer, into out (NUL-ended). */
static bool at_push__member(at_arena_t *ar, const char *json, size_t len, const char *key,
                            at_buf_t *out)
{
    at_json_t *root = NULL;
    at_error_t err;
    if (at_json_parse_all(json, len, ar, 32, &root, &err) != 0 || root->type != AT_JSON_OBJECT)
        return false;
    const at_json_t *v = at_json_get(root, key, strlen(key));
    if (!v)
        return false;
    if (strcmp(key, "items") != 0) {
        at_buf_append(out, json + v->off, v->end - v->off);
        return true;
    }
    /* recommendations: the set of the first three item ids, sorted */
    const char *ids[3];
    size_t lens[3];
    int n = 0;
    for (const at_json_t *it = v->type == AT_JSON_ARRAY ? v->child : NULL; it && n < 3;
         it = it->next) {
        const at_json_t *id = at_json_get(it, "item_id", 7);
        if (id && id->type == AT_JSON_STRING) {
            ids[n] = id->s;
            lens[n++] = id->len;
        }
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            size_t m = AT_MIN(lens[j], lens[j - 1]);
            int c = memcmp(ids[j], ids[j - 1], m);
            if (c > 0 || (c == 0 && lens[j] >= lens[j - 1]))
                break;
            const char *t = ids[j];
            size_t tl = lens[j];
            ids[j] = ids[j - 1];
            lens[j] = lens[j - 1];
            ids[j - 1] = t;
            lens[j - 1] = tl;
        }
    for (int i = 0; i < n; i++) {
        at_buf_json_str(out, ids[i], lens[i]);
        at_buf_putc(out, '\n');
    }
    return true;
}

static void at_push__changed(void *ud, const char *key, size_t n);

/* An engine thread: a decision or recommendations for sub. Sent when what
 * it shows changed (the variant; the top-3 set). */
static void at_push__answered(void *ud, int status, const char *json, size_t len)
{
    at_push_call_t *c = ud;
    at_push_sub_t *sub = c->sub;
    at_push_t *h = sub->hub;
    at_buf_t key;
    at_buf_init(&key, 0);
    at_arena_t ar;
    at_arena_init(&ar, 4096);
    bool have = status == 0 && len > 2 && json[0] == '{' &&
                at_push__member(&ar, json, len, c->index < 0 ? "items" : "variant", &key);
    at_buf_putc(&key, '\0');
    pthread_mutex_lock(&h->mu);
    at_push_want_t *w = sub->want;
    char **last = c->index < 0 ? &w->reco_top : &w->variant[c->index];
    if (have && sub->linked && !sub->ending && (!*last || strcmp(*last, key.data) != 0) &&
        at_push__derived(h, sub, c->index < 0 ? AT_PUSH__T_RECO : AT_PUSH__T_DECISION, json, len)) {
        free(*last);
        *last = at_xstrdup(key.data);
    }
    bool again = --w->inflight == 0 && w->again && sub->linked;
    if (again)
        w->again = false;
    pthread_mutex_unlock(&h->mu);
    at_arena_deinit(&ar);
    at_buf_deinit(&key);
    if (again)
        at_push__changed(h, sub->user, sub->ulen); /* for the decider: never wait here */
    at_push__sub_unref(sub);
    free(c);
    atomic_fetch_sub(&h->calls, 1); /* last: the hub may be freed after it */
}

static bool at_push__call(at_push_t *h, at_push_sub_t *sub, int index)
{
    at_push_want_t *w = sub->want;
    at_push_call_t *c = at_xcalloc(1, sizeof *c);
    c->sub = sub;
    c->index = index;
    atomic_fetch_add(&sub->refs, 1);
    atomic_fetch_add(&h->calls, 1);
    int rc;
    if (index >= 0) {
        at_buf_t b;
        at_buf_init(&b, 0);
        at_buf_puts(&b, "{\"user\":");
        at_buf_json_str(&b, sub->user, sub->ulen);
        at_buf_puts(&b, ",\"placement\":");
        at_buf_json_str(&b, w->placements[index], strlen(w->placements[index]));
        if (w->context) {
            at_buf_puts(&b, ",\"context\":");
            at_buf_puts(&b, w->context);
        }
        at_buf_putc(&b, '}');
        attune_error_t err = {0};
        rc = attune_decide(h->a, b.data, b.len, at_push__answered, c, &err);
        at_buf_deinit(&b);
    } else {
        attune_reco_query_t q = {.n = w->reco_n};
        rc = attune_recommend(h->a, sub->user, sub->ulen, &q, NULL, at_push__answered, c);
    }
    if (rc == 0)
        return true;
    atomic_fetch_sub(&h->calls, 1);
    at_push__sub_unref(sub);
    free(c);
    return false;
}

/* Asks again what sub shows: every placement, and the recommendations
 * unless they were computed less than push.reco_interval ago (they are
 * then due at that time). Takes hub->mu itself; not held. */
static void at_push__refresh(at_push_t *h, at_push_sub_t *sub, bool reco_only)
{
    at_push_want_t *w = sub->want;
    int64_t now = at_time_mono_ns();
    pthread_mutex_lock(&h->mu);
    if (!sub->linked || sub->ending || (!reco_only && w->inflight)) {
        if (sub->linked && !reco_only)
            w->again = true;
        pthread_mutex_unlock(&h->mu);
        return;
    }
    int np = reco_only ? 0 : w->nplacements;
    bool reco = w->reco_n > 0 && now >= w->reco_next_ns;
    if (w->reco_n > 0 && !reco && !w->reco_due) {
        w->reco_due = true;
        h->nreco_due++;
    }
    if (reco) {
        w->reco_next_ns = now + h->reco_interval_ns;
        if (w->reco_due) {
            w->reco_due = false;
            h->nreco_due--;
        }
    }
    w->inflight += np + (reco ? 1 : 0);
    atomic_fetch_add(&sub->refs, 1);
    pthread_mutex_unlock(&h->mu);
    /* the reference taken above keeps sub alive through these calls (the
     * analyzer does not follow the atomic count) */
    int failed = 0;
    for (int i = 0; i < np; i++)
        failed += !at_push__call(h, sub, i); /* NOLINT(clang-analyzer-unix.Malloc) */
    if (reco)
        failed += !at_push__call(h, sub, -1);
    if (failed) {
        pthread_mutex_lock(&h->mu);
        w->inflight -= failed;
        pthread_mutex_unlock(&h->mu);
    }
    at_push__sub_unref(sub); /* NOLINT(clang-analyzer-unix.Malloc) */
}

/* A shard thread: a watched user's record was processed. Only notes the
 * key (once: changes coalesce) for the decider thread. */
static void at_push__changed(void *ud, const char *key, size_t n)
{
    at_push_t *h = ud;
    pthread_mutex_lock(&h->cmu);
    for (size_t i = 0; i < h->nchanged; i++)
        if (!strncmp(h->changed[i], key, n) && h->changed[i][n] == '\0') {
            pthread_mutex_unlock(&h->cmu);
            return;
        }
    if (h->nchanged == h->capchanged) {
        h->capchanged = h->capchanged ? h->capchanged * 2 : 64;
        h->changed = at_xrealloc(h->changed, h->capchanged * sizeof *h->changed);
    }
    h->changed[h->nchanged++] = at_xstrndup(key, n);
    pthread_cond_signal(&h->ccv);
    pthread_mutex_unlock(&h->cmu);
}

/* Refreshes every connection of user that asked for derived messages. */
static void at_push__refresh_user(at_push_t *h, const char *user, size_t n, bool reco_only)
{
    uint64_t hash = at_push__hash(user, n);
    at_push_sub_t *list[64];
    int k = 0;
    pthread_mutex_lock(&h->mu);
    for (at_push_sub_t *s = h->buckets[hash & (h->nbuckets - 1)]; s && k < 64; s = s->hnext)
        if (s->want && s->hash == hash && s->ulen == n && !memcmp(s->user, user, n) &&
            (!reco_only || s->want->reco_due)) {
            atomic_fetch_add(&s->refs, 1);
            list[k++] = s;
        }
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < k; i++) {
        at_push__refresh(h, list[i], reco_only);
        at_push__sub_unref(list[i]);
    }
}

/* Recommendations that waited for push.reco_interval. */
static void at_push__reco_due(at_push_t *h)
{
    int64_t now = at_time_mono_ns();
    char *users[64];
    int k = 0;
    pthread_mutex_lock(&h->mu);
    for (at_push_sub_t *s = h->all; s && h->nreco_due && k < 64; s = s->anext)
        if (s->want && s->want->reco_due && now >= s->want->reco_next_ns)
            users[k++] = at_xstrndup(s->user, s->ulen);
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < k; i++) {
        at_push__refresh_user(h, users[i], strlen(users[i]), true);
        free(users[i]);
    }
}

static void *at_push__decide_main(void *arg)
{
    at_push_t *h = arg;
    pthread_mutex_lock(&h->cmu);
    while (!atomic_load(&h->stop)) {
        if (!h->nchanged) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += AT_PUSH__TICK_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&h->ccv, &h->cmu, &ts);
        }
        char **keys = h->changed;
        size_t n = h->nchanged;
        h->changed = NULL;
        h->nchanged = h->capchanged = 0;
        pthread_mutex_unlock(&h->cmu);
        for (size_t i = 0; i < n; i++) {
            if (!atomic_load(&h->stop))
                at_push__refresh_user(h, keys[i], strlen(keys[i]), false);
            free(keys[i]);
        }
        free(keys);
        at_push__reco_due(h);
        pthread_mutex_lock(&h->cmu);
    }
    pthread_mutex_unlock(&h->cmu);
    return NULL;
}

/* ---- the hub's life --------------------------------------------------------- */

at_push_t *at_push_new(at_serve_t *s)
{
    at_push_t *h = at_xcalloc(1, sizeof *h);
    h->s = s;
    h->a = s->a;
    h->partitions = attune_partitions(s->a);
    h->max_buffer = (size_t)s->cfg->push_max_buffer;
    h->heartbeat_ns = s->cfg->push_heartbeat_ms * 1000000;
    h->token_ttl_s = AT_MAX(s->cfg->push_token_ttl_ms / 1000, (int64_t)1);
    const char *sec = s->cfg->push_token_secret;
    if (sec && *sec) {
        h->secret_len = AT_MIN(strlen(sec), (size_t)AT_PUSH_SECRET_MAX);
        memcpy(h->secret, sec, h->secret_len);
    } else {
        h->secret_len = 32;
        if (RAND_bytes(h->secret, 32) != 1)
            at_panic(__FILE__, __LINE__, "RAND_bytes");
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->jobs_cv, NULL);
    h->nbuckets = AT_PUSH__BUCKETS0;
    h->buckets = at_xcalloc(h->nbuckets, sizeof(at_push_sub_t *));
    at_arena_init(&h->arena, 4096);
    pthread_mutex_init(&h->cmu, NULL);
    pthread_cond_init(&h->ccv, NULL);
    h->reco_interval_ns = s->cfg->push_reco_interval_ms * 1000000;
    attune_watch_callback(s->a, at_push__changed, h);
    return h;
}

int at_push_start(at_push_t *h)
{
    int rc = pthread_create(&h->hub_thread, NULL, at_push__hub_main, h);
    if (rc)
        return -rc;
    rc = pthread_create(&h->replay_thread, NULL, at_push__replay_main, h);
    if (rc) {
        atomic_store(&h->stop, true);
        pthread_join(h->hub_thread, NULL);
        return -rc;
    }
    pthread_mutex_lock(&h->mu); /* "from now" means from here: wait for the reader */
    while (!h->following)
        pthread_cond_wait(&h->jobs_cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    rc = pthread_create(&h->decide_thread, NULL, at_push__decide_main, h);
    if (rc) {
        pthread_mutex_lock(&h->mu);
        atomic_store(&h->stop, true);
        pthread_cond_broadcast(&h->jobs_cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->hub_thread, NULL);
        pthread_join(h->replay_thread, NULL);
        return -rc;
    }
    h->started = true;
    return 0;
}

void at_push_stop(at_push_t *h)
{
    if (!h || !h->started)
        return;
    pthread_mutex_lock(&h->mu);
    atomic_store(&h->stop, true);
    pthread_cond_broadcast(&h->jobs_cv);
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_lock(&h->cmu);
    pthread_cond_broadcast(&h->ccv);
    pthread_mutex_unlock(&h->cmu);
    pthread_join(h->hub_thread, NULL);
    pthread_join(h->replay_thread, NULL);
    pthread_join(h->decide_thread, NULL);
    h->started = false;
}

void at_push_free(at_push_t *h)
{
    if (!h)
        return;
    at_push_stop(h);
    /* answers still on their way from the engine touch the hub */
    for (int i = 0; i < 5000 && atomic_load(&h->calls) > 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&h->calls) > 0) {
        AT_WARN("push: engine answers still pending at exit; the hub is left allocated", "calls=%d",
                atomic_load(&h->calls));
        return;
    }
    while (h->jobs_head) {
        at_push_job_t *j = h->jobs_head;
        h->jobs_head = j->next;
        at_push__sub_unref(j->sub);
        free(j);
    }
    /* connections still linked (the loops ended without closing them) */
    while (h->all) {
        at_push_sub_t *s = h->all;
        at_push__unlink(h, s);
        at_push__sub_unref(s);
    }
    at_arena_deinit(&h->arena);
    for (size_t i = 0; i < h->nchanged; i++)
        free(h->changed[i]);
    free(h->changed);
    pthread_cond_destroy(&h->ccv);
    pthread_mutex_destroy(&h->cmu);
    free(h->buckets);
    pthread_cond_destroy(&h->jobs_cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void at_push_metrics(at_push_t *h, at_buf_t *b)
{
    if (!h)
        return;
    at_buf_puts(b, "# HELP attune_push_connections Open push connections.\n"
                   "# TYPE attune_push_connections gauge\n");
    at_metric_write(b, "attune_push_connections", "gauge", NULL, "kind=\"sse\"",
                    (double)atomic_load(&h->conns[0]));
    at_metric_write(b, "attune_push_connections", "gauge", NULL, "kind=\"ws\"",
                    (double)atomic_load(&h->conns[1]));
    at_buf_puts(b, "# HELP attune_push_messages_total Messages handed to push connections.\n"
                   "# TYPE attune_push_messages_total counter\n");
    for (int i = 0; i < AT_PUSH__NTYPES; i++) {
        char lb[64];
        (void)snprintf(lb, sizeof lb, "type=\"%s\"", at_push__type_names[i]);
        at_metric_write(b, "attune_push_messages_total", "counter", NULL, lb,
                        (double)atomic_load(&h->msgs[i]));
    }
    at_metric_write(b, "attune_push_dropped_total", "counter",
                    "Outputs not delivered because a connection's buffer was full.", NULL,
                    (double)atomic_load(&h->dropped));
    at_metric_write(b, "attune_push_resumes_total", "counter",
                    "Connections that resumed with Last-Event-ID.", NULL,
                    (double)atomic_load(&h->resumes));
}

/* ---- routes ----------------------------------------------------------------- */

/* "u:KEY", "a:KEY", or a bare id = "u:id" into out. */
static bool at_push__user_key(const char *id, size_t n, char *out, size_t cap, size_t *len)
{
    bool ns = n > 2 && (id[0] == 'u' || id[0] == 'a') && id[1] == ':';
    size_t k = ns ? n : n + 2;
    if (n == 0 || k >= cap || k > AT_PUSH_USER_MAX || memchr(id, '\0', n))
        return false;
    if (ns) {
        memcpy(out, id, n);
    } else {
        memcpy(out, "u:", 2);
        memcpy(out + 2, id, n);
    }
    out[k] = '\0';
    *len = k;
    return true;
}

/* "P:OFFSET" into *part, *off. */
bool at_push_position_parse(const char *s, size_t n, int partitions, int *part, int64_t *off)
{
    const char *c = memchr(s, ':', n);
    if (!c || c == s || c - s > 6 || (size_t)(c - s) + 1 >= n || n - (size_t)(c - s) - 1 > 18)
        return false;
    int p = 0;
    for (const char *x = s; x < c; x++) {
        if (*x < '0' || *x > '9')
            return false;
        p = p * 10 + (*x - '0');
    }
    int64_t o = 0;
    for (const char *x = c + 1; x < s + n; x++) {
        if (*x < '0' || *x > '9')
            return false;
        o = o * 10 + (*x - '0');
    }
    if (p >= partitions)
        return false;
    *part = p;
    *off = o;
    return true;
}

/* Who may open the stream of user: a read or admin key, a token for that
 * user, or anyone in development mode. Answers the refusal itself. */
static bool at_push__allowed(at_serve_t *s, at_http_req_t *r, const char *user, size_t ulen,
                             unsigned *flags)
{
    at_push_t *h = s->push;
    *flags = ATTUNE_INGEST_NEED_KEY;
    if (attune_dev_mode(s->a)) {
        *flags = 0;
        return true;
    }
    size_t n = 0;
    const char *hd = at_http_header(r, "authorization", &n);
    if (hd && n > 7 && !strncasecmp(hd, "Bearer ", 7)) {
        if (attune_auth(s->a, hd + 7, n - 7, ATTUNE_SCOPE_INGEST) == 0)
            *flags = 0;
        if (attune_auth(s->a, hd + 7, n - 7, ATTUNE_SCOPE_READ) == 0 ||
            attune_auth(s->a, hd + 7, n - 7, ATTUNE_SCOPE_ADMIN) == 0)
            return true;
        at_serve__error(s, r, 403, NULL, "forbidden", NULL, "the key is not valid for this scope");
        return false;
    }
    char tok[AT_PUSH_TOKEN_MAX];
    int tn = at_http_query(r, "token", tok, sizeof tok);
    if (tn < 0) {
        at_serve__error(s, r, 401, "WWW-Authenticate: Bearer\r\n", "unauthorized", NULL,
                        "a stream token (?token=) or an API key (Authorization: Bearer KEY) is "
                        "required");
        return false;
    }
    char tuser[AT_PUSH_USER_MAX + 1];
    size_t tul = 0;
    int64_t exp = 0;
    int rc = (size_t)tn >= sizeof tok
                 ? AT_PUSH_TOKEN_BAD
                 : at_push_token_check(h->secret, h->secret_len, tok, (size_t)tn,
                                       at_time_now_ms() / 1000, tuser, sizeof tuser, &tul, &exp);
    if (rc == AT_PUSH_TOKEN_BAD) {
        at_serve__error(s, r, 401, NULL, "invalid_token", "token",
                        "the stream token is malformed or not signed by this server");
        return false;
    }
    if (rc == AT_PUSH_TOKEN_EXPIRED) {
        at_serve__error(s, r, 401, NULL, "token_expired", "token",
                        "the stream token expired: ask the site's backend for a new one");
        return false;
    }
    if (tul != ulen || memcmp(tuser, user, ulen) != 0) {
        at_serve__error(s, r, 403, NULL, "forbidden", "token",
                        "the stream token is for another user");
        return false;
    }
    return true;
}

static int at_push__token_route(at_serve_t *s, at_http_req_t *r, const char *user, size_t ulen)
{
    if (!at_serve__is(r, "POST")) {
        at_serve__error(s, r, 405, "Allow: POST\r\n", "method_not_allowed", NULL, "use POST");
        return 0;
    }
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
        return 0;
    at_push_t *h = s->push;
    int64_t exp = at_time_now_ms() / 1000 + h->token_ttl_s;
    char tok[AT_PUSH_TOKEN_MAX], when[40];
    size_t tl = at_push_token_make(h->secret, h->secret_len, user, ulen, exp, tok, sizeof tok);
    AT_ASSERT(tl > 0);
    int wl = at_time_format_rfc3339(exp * 1000, when);
    at_buf_t b;
    at_buf_init(&b, 0);
    at_buf_puts(&b, "{\"token\":");
    at_buf_json_str(&b, tok, tl);
    at_buf_puts(&b, ",\"user\":");
    at_buf_json_str(&b, user, ulen);
    at_buf_puts(&b, ",\"expires_at\":");
    at_buf_json_str(&b, when, (size_t)wl);
    at_buf_puts(&b, "}");
    at_serve__json(s, r, 200, b.data, b.len);
    at_buf_deinit(&b);
    return 0;
}

/* Reads Last-Event-ID (or ?last_event_id=); false after answering 400. */
static bool at_push__resume_of(at_serve_t *s, at_http_req_t *r, int *part, int64_t *off)
{
    *part = -1;
    size_t n = 0;
    const char *v = at_http_header(r, "last-event-id", &n);
    char q[64];
    if (!v) {
        int qn = at_http_query(r, "last_event_id", q, sizeof q);
        if (qn >= 0) {
            v = q;
            n = (size_t)AT_MIN(qn, (int)sizeof q - 1);
        }
    }
    if (!v || n == 0)
        return true;
    if (!at_push_position_parse(v, n, s->push->partitions, part, off)) {
        at_serve__error(s, r, 400, NULL, "invalid_last_event_id", "Last-Event-ID",
                        "Last-Event-ID is a position P:OFFSET from an earlier message");
        return false;
    }
    return true;
}

/* Whether the configuration has placement name. */
static bool at_push__placement_known(at_push_t *h, const char *name, size_t n)
{
    char *json = NULL;
    size_t len = 0;
    if (attune_placements(h->a, &json, &len) != 0)
        return false;
    at_arena_t ar;
    at_arena_init(&ar, 4096);
    at_json_t *root = NULL;
    at_error_t err;
    bool found = false;
    if (at_json_parse_all(json, len, &ar, 32, &root, &err) == 0) {
        const at_json_t *list = at_json_get(root, "placements", 10);
        for (const at_json_t *p = list ? list->child : NULL; p && !found; p = p->next) {
            const at_json_t *nm = p->type == AT_JSON_OBJECT ? at_json_get(p, "name", 4) : p;
            found = nm && nm->type == AT_JSON_STRING && nm->len == n && !memcmp(nm->s, name, n);
        }
    }
    at_arena_deinit(&ar);
    attune_free(json);
    return found;
}

/* ?context.KEY=VALUE parameters as a JSON object of strings, or NULL. */
static char *at_push__context(const at_http_req_t *r)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    const char *q = r->query, *end = r->query + r->query_len;
    while (q && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        if (eq && eq - q > 8 && !memcmp(q, "context.", 8)) {
            char k[256], v[1024];
            size_t kl = 0, vl = 0;
            if (at_serve__unescape(q + 8, (size_t)(eq - q - 8), k, sizeof k, &kl) &&
                (eq + 1 == pe ||
                 at_serve__unescape(eq + 1, (size_t)(pe - eq - 1), v, sizeof v, &vl))) {
                at_buf_putc(&b, b.len ? ',' : '{');
                at_buf_json_str(&b, k, kl);
                at_buf_putc(&b, ':');
                at_buf_json_str(&b, v, vl);
            }
        }
        q = amp ? amp + 1 : end;
    }
    if (!b.len) {
        at_buf_deinit(&b);
        return NULL;
    }
    at_buf_puts(&b, "}");
    at_buf_putc(&b, '\0');
    size_t n;
    return at_buf_steal(&b, &n);
}

/* ?placements=a,b and ?recommendations=N: what to keep the connection up
 * to date on. Returns 0 with *out (NULL: nothing asked), or answers 400
 * itself and returns -1. */
static int at_push__want_of(at_serve_t *s, at_http_req_t *r, at_push_want_t **out)
{
    *out = NULL;
    char pl[1024], rn[16];
    int pn = at_http_query(r, "placements", pl, sizeof pl);
    int nn = at_http_query(r, "recommendations", rn, sizeof rn);
    if (pn <= 0 && nn < 0)
        return 0;
    at_push_want_t *w = at_xcalloc(1, sizeof *w);
    *out = w;
    if (nn >= 0) {
        w->reco_n = nn == 0 ? 10 : atoi(rn);
        if (w->reco_n < 1 || w->reco_n > 100) {
            at_serve__error(s, r, 400, NULL, "invalid_query", "recommendations",
                            "recommendations is a count of items, 1..100");
            return -1;
        }
    }
    const char *p = pl, *end = pl + (pn > 0 ? AT_MIN((size_t)pn, sizeof pl - 1) : 0);
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *e = c ? c : end;
        if (e > p) {
            if (w->nplacements == AT_PUSH__MAX_PLACEMENTS) {
                at_serve__error(s, r, 400, NULL, "invalid_query", "placements",
                                "at most 8 placements per connection");
                return -1;
            }
            if (!at_push__placement_known(s->push, p, (size_t)(e - p))) {
                char msg[300];
                (void)snprintf(msg, sizeof msg, "no placement named '%.*s'",
                               (int)AT_MIN(e - p, 200), p);
                at_serve__error(s, r, 404, NULL, "unknown_placement", "placements", msg);
                return -1;
            }
            w->placements[w->nplacements++] = at_xstrndup(p, (size_t)(e - p));
        }
        p = c ? c + 1 : end;
    }
    w->context = at_push__context(r);
    return 0;
}

static at_push_sub_t *at_push__sub_new(at_push_t *h, const char *user, size_t ulen, bool ws)
{
    at_push_sub_t *sub = at_xcalloc(1, sizeof *sub);
    sub->hub = h;
    sub->user = at_xstrndup(user, ulen);
    sub->ulen = ulen;
    sub->hash = at_push__hash(user, ulen);
    sub->ws = ws;
    sub->rpart = -1;
    atomic_init(&sub->refs, 1); /* the map's, dropped in gone() */
    return sub;
}

/* Links the new connection and queues its replay. */
static void at_push__join(at_push_t *h, at_push_sub_t *sub, int part, int64_t off)
{
    if (sub->want) /* before linking: no change is missed */
        (void)attune_watch(h->a, sub->user, sub->ulen);
    pthread_mutex_lock(&h->mu);
    at_push__link(h, sub);
    if (part >= 0) {
        sub->replaying = true;
        sub->rpart = part;
        sub->rnext = off + 1;
        at_push_job_t *j = at_xcalloc(1, sizeof *j);
        atomic_fetch_add(&sub->refs, 1);
        j->sub = sub;
        j->part = part;
        j->from = off + 1;
        if (h->jobs_tail)
            h->jobs_tail->next = j;
        else
            h->jobs_head = j;
        h->jobs_tail = j;
        pthread_cond_signal(&h->jobs_cv);
        atomic_fetch_add(&h->resumes, 1);
    }
    pthread_mutex_unlock(&h->mu);
    atomic_fetch_add(&h->conns[sub->ws ? 1 : 0], 1);
    if (sub->want)
        at_push__refresh(h, sub, false); /* what it shows now */
}

/* What opening a stream or a WebSocket checks first: the key or token,
 * the resume position, the placements and recommendations wanted. False:
 * answered with the error. */
static bool at_push__open_checks(at_serve_t *s, at_http_req_t *r, const char *user, size_t ulen,
                                 unsigned *flags, int *part, int64_t *off, at_push_want_t **want)
{
    if (!at_push__allowed(s, r, user, ulen, flags) || !at_push__resume_of(s, r, part, off))
        return false;
    if (at_push__want_of(s, r, want) < 0) {
        at_push__want_free(*want);
        *want = NULL;
        return false;
    }
    return true;
}

static int at_push__stream_route(at_serve_t *s, at_http_req_t *r, const char *user, size_t ulen)
{
    if (!at_serve__is(r, "GET")) {
        at_serve__error(s, r, 405, "Allow: GET\r\n", "method_not_allowed", NULL, "use GET");
        return 0;
    }
    unsigned flags;
    int part;
    int64_t off = 0;
    at_push_want_t *want = NULL;
    if (!at_push__open_checks(s, r, user, ulen, &flags, &part, &off, &want))
        return 0;
    at_push_t *h = s->push;
    char hdr[1024];
    at_serve__cors(s, r, hdr, sizeof hdr - 64);
    strncat(hdr, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n",
            sizeof hdr - strlen(hdr) - 1);
    at_push_sub_t *sub = at_push__sub_new(h, user, ulen, false);
    sub->want = want;
    at_serve__observe(s, r, 200, false);
    sub->st =
        at_http_stream_start(r, 200, "text/event-stream", hdr, h->max_buffer, at_push__gone, sub);
    (void)at_http_stream_send(sub->st, ": ok\n\n", 6);
    at_push__join(h, sub, part, off);
    return 0;
}

int at_push_users_route(at_serve_t *s, at_http_req_t *r, const char *id, size_t idn,
                        const char *rest, size_t restn)
{
    char raw[1024], user[AT_PUSH_USER_MAX + 8];
    size_t n = 0, ulen = 0;
    if (!at_serve__unescape(id, idn, raw, sizeof raw, &n) ||
        !at_push__user_key(raw, n, user, sizeof user, &ulen)) {
        at_serve__error(s, r, 400, NULL, "invalid_user", NULL,
                        "a user id is u:ID, a:ANONYMOUS_ID or a bare user id");
        return 0;
    }
    if (restn == 0)
        return at_push__stream_route(s, r, user, ulen);
    if (restn == 6 && !memcmp(rest, "-token", 6))
        return at_push__token_route(s, r, user, ulen);
    at_serve__error(s, r, 404, NULL, "not_found", NULL, "no such route");
    return 0;
}

/* ---- WebSocket ------------------------------------------------------------- */

typedef struct at_push_ack {
    at_push_sub_t *sub; /* a reference */
} at_push_ack_t;

static void at_push__ws_error(at_http_stream_t *st, const char *code, const char *field,
                              const char *msg)
{
    at_buf_t e, b;
    at_buf_init(&e, 0);
    at_buf_init(&b, 0);
    at_serve__error_body(&e, code, field, msg);
    at_buf_puts(&b, "{\"type\":\"error\",");
    at_buf_append(&b, e.data + 1, e.len - 1); /* {"error":..} without its brace */
    (void)at_http_stream_send(st, b.data, b.len);
    at_buf_deinit(&e);
    at_buf_deinit(&b);
}

/* The writer thread: the events are durable (or writing failed). */
static void at_push__ws_ingested(void *ud, const attune_ingest_result_t *res)
{
    at_push_ack_t *k = ud;
    if (res->status == 0 && res->json_len > 2 && res->json[0] == '{') {
        at_buf_t b;
        at_buf_init(&b, 0);
        at_buf_puts(&b, "{\"type\":\"ack\",");
        at_buf_append(&b, res->json + 1, res->json_len - 1);
        (void)at_http_stream_send(k->sub->st, b.data, b.len);
        at_buf_deinit(&b);
    } else {
        at_push__ws_error(k->sub->st, res->error.code[0] ? res->error.code : "internal",
                          res->error.field, res->error.message);
    }
    at_push_t *h = k->sub->hub;
    at_push__sub_unref(k->sub);
    free(k);
    atomic_fetch_sub(&h->calls, 1);
}

/* A text message from the client: events, as the body of POST /v1/events
 * (one event object or {"events":[..]}). Loop thread. */
static void at_push__ws_msg(void *ud, at_http_stream_t *st, const char *data, size_t len)
{
    at_push_sub_t *sub = ud;
    at_push_t *h = sub->hub;
    at_push_ack_t *k = at_xcalloc(1, sizeof *k);
    k->sub = sub;
    atomic_fetch_add(&sub->refs, 1);
    atomic_fetch_add(&h->calls, 1);
    attune_error_t err = {0};
    int rc = attune_ingest(h->a, data, len, ATTUNE_BODY_JSON, sub->ingest_flags,
                           at_push__ws_ingested, k, &err);
    if (rc == 0)
        return;
    atomic_fetch_sub(&h->calls, 1);
    at_push__sub_unref(sub);
    free(k);
    at_push__ws_error(st, err.code[0] ? err.code : "invalid", err.field,
                      err.message[0] ? err.message : at_strerror(rc));
}

int at_push_ws_route(at_serve_t *s, at_http_req_t *r)
{
    char raw[1024], user[AT_PUSH_USER_MAX + 8];
    size_t ulen = 0;
    int n = at_http_query(r, "user_id", raw, sizeof raw);
    if (n <= 0 || (size_t)n >= sizeof raw ||
        !at_push__user_key(raw, (size_t)n, user, sizeof user, &ulen)) {
        at_serve__error(s, r, 400, NULL, "invalid_user", "user_id",
                        "user_id is u:ID, a:ANONYMOUS_ID or a bare user id");
        return 0;
    }
    unsigned flags;
    int part;
    int64_t off = 0;
    at_push_want_t *want = NULL;
    if (!at_push__open_checks(s, r, user, ulen, &flags, &part, &off, &want))
        return 0;
    at_push_t *h = s->push;
    char cors[512];
    at_serve__cors(s, r, cors, sizeof cors);
    at_push_sub_t *sub = at_push__sub_new(h, user, ulen, true);
    sub->ingest_flags = flags;
    sub->want = want;
    sub->st = at_http_ws_accept(r, cors[0] ? cors : NULL, h->max_buffer, at_push__ws_msg,
                                at_push__gone, sub);
    if (!sub->st) {
        at_serve__observe(s, r, 400, false);
        at_push__sub_unref(sub);
        return 0;
    }
    at_serve__observe(s, r, 101, false);
    at_push__join(h, sub, part, off);
    return 0;
}
