/* sinks.c - the delivery thread: follows the output bus for every sink
 * from its durable position, filters, skips what is older than
 * sinks.max_age, POSTs the rest with libcurl's multi interface (bounded
 * concurrency per endpoint, backoff, breaker), dead-letters what fails for
 * good, and writes the positions once outputs are finished. A second,
 * small thread follows the bus to the end for the lag and wakes the
 * delivery thread when outputs arrive. */
#include "at_json.h"
#include "sinks_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AT_SINK_WINDOW 1024 /* outputs read ahead and not finished, per sink */
#define AT_SINK_SAVE_MS 50  /* positions are written at most this often */
#define AT_SINK_POLL_MS 100 /* longest sleep of the delivery thread */

struct at_sinks {
    attune_t *a;
    const at_config_t *cfg;
    at_sink_t *v;
    size_t n;
    int partitions;
    CURLM *multi;
    pthread_t th, head_th;
    bool th_started, head_started;
    _Atomic bool stop;
    attune_outputs_t *head_reader;
    _Atomic int64_t *head; /* per partition: offset after the newest output */
    at_arena_t arena;      /* delivery thread: parsing outputs */
};

static int64_t at_sinks__now_ms(void)
{
    return at_time_mono_ns() / 1000000;
}

/* ---- the window -------------------------------------------------------------- */

static void at_sinks__push(at_sink_t *k, at_sink_item_t *it)
{
    if (k->nwin == k->capwin) {
        k->capwin = k->capwin ? 2 * k->capwin : 64;
        k->win = at_xrealloc(k->win, k->capwin * sizeof(at_sink_item_t *));
    }
    k->win[k->nwin++] = it;
    if (it->partition >= 0)
        k->nlive++;
    else
        k->nreplay++;
}

static void at_sinks__item_free(at_sink_item_t *it)
{
    if (!it)
        return;
    curl_slist_free_all(it->hdrs);
    free(it->json);
    free(it);
}

/* Removes item it (finished) from the window and frees it. */
static void at_sinks__finish(at_sink_t *k, at_sink_item_t *it)
{
    for (size_t i = 0; i < k->nwin; i++) {
        if (k->win[i] == it) {
            memmove(&k->win[i], &k->win[i + 1], (k->nwin - i - 1) * sizeof(at_sink_item_t *));
            k->nwin--;
            break;
        }
    }
    bool replay = it->partition < 0;
    if (replay)
        k->nreplay--;
    else
        k->nlive--;
    at_sinks__item_free(it);
    k->dirty = true;
    if (replay && k->nreplay == 0) {
        /* every replayed dead letter is delivered or dead again (appended) */
        atomic_store(&k->dead_done, atomic_load(&k->dead_target));
        if (at_sinks__save_replay(k) < 0)
            AT_WARN("sink_replay_state", "sink=%s", k->cfg->name);
        char *data = NULL;
        size_t len = 0;
        if (at_sinks__read_dead(k, &data, &len) == 0)
            atomic_store(&k->a_dead, at_sinks__count_dead(data, len, atomic_load(&k->dead_done)));
        free(data);
    }
}

/* pos[p]: the oldest unfinished output of p, else the next to read. */
static void at_sinks__positions(at_sink_t *k)
{
    for (int p = 0; p < k->partitions; p++)
        k->pos[p] = k->next_read[p];
    for (size_t i = k->nwin; i-- > 0;) {
        const at_sink_item_t *it = k->win[i];
        if (it->partition >= 0 && it->offset < k->pos[it->partition])
            k->pos[it->partition] = it->offset;
    }
    pthread_mutex_lock(&k->mu);
    memcpy(k->snap, k->pos, (size_t)k->partitions * sizeof *k->pos);
    pthread_mutex_unlock(&k->mu);
}

static void at_sinks__maybe_save(at_sink_t *k, int64_t now, bool force)
{
    if (!k->dirty || (!force && now - k->saved_ms < AT_SINK_SAVE_MS))
        return;
    at_sinks__positions(k);
    int rc = at_sinks__save(k);
    if (rc < 0) {
        AT_WARN("sink_position", "sink=%s error=%s", k->cfg->name, at_strerror(rc));
        return;
    }
    k->dirty = false;
    k->saved_ms = now;
}

/* ---- reading outputs ------------------------------------------------------------ */

typedef struct at_sinks_read {
    at_sinks_t *s;
    at_sink_t *k;
} at_sinks_read_t;

static bool at_sinks__in(char **names, const at_json_t *v)
{
    if (!names)
        return true;
    if (!v || v->type != AT_JSON_STRING)
        return false;
    for (char **n = names; *n; n++) {
        if (strlen(*n) == v->len && !memcmp(*n, v->s, v->len))
            return true;
    }
    return false;
}

/* Whether sink k wants the output o (its events and name filters). */
static bool at_sinks__wants(const at_config_webhook_t *c, const at_json_t *o)
{
    const at_json_t *t = at_json_get(o, "type", 4);
    if (!t || t->type != AT_JSON_STRING)
        return false;
    int bit = 0;
    if (t->len == 13 && !memcmp(t->s, "segment_enter", 13))
        bit = AT_SINK_EV_ENTER;
    else if (t->len == 12 && !memcmp(t->s, "segment_exit", 12))
        bit = AT_SINK_EV_EXIT;
    else if (t->len == 7 && !memcmp(t->s, "trigger", 7))
        bit = AT_SINK_EV_TRIGGER;
    if (!(c->events & bit))
        return false;
    if (bit == AT_SINK_EV_TRIGGER)
        return at_sinks__in(c->triggers, at_json_get(o, "trigger", 7));
    return at_sinks__in(c->segments, at_json_get(o, "segment", 7));
}

static at_sink_item_t *at_sinks__item(at_sink_t *k, int p, int64_t off, const char *json,
                                      size_t len)
{
    at_sink_item_t *it = at_xcalloc(1, sizeof *it);
    it->sink = k;
    it->partition = p;
    it->offset = off;
    it->json = at_xmalloc(len + 1);
    memcpy(it->json, json, len);
    it->json[len] = '\0';
    it->len = len;
    it->read_ns = at_time_mono_ns();
    return it;
}

/* Fills id and seq from the parsed output o. */
static void at_sinks__ids(at_sink_item_t *it, const at_json_t *o)
{
    const at_json_t *id = at_json_get(o, "id", 2);
    if (id && id->type == AT_JSON_STRING && id->len < sizeof it->id) {
        memcpy(it->id, id->s, id->len);
        it->id[id->len] = '\0';
    }
    const at_json_t *seq = at_json_get(o, "seq", 3);
    if (seq)
        (void)at_json_i64(seq, &it->seq);
    const at_json_t *ts = at_json_get(o, "ts", 2);
    if (ts)
        (void)at_json_i64(ts, &it->ts);
}

static int at_sinks__on_output(void *ud, int p, int64_t off, const char *json, size_t len)
{
    at_sinks_read_t *x = ud;
    at_sink_t *k = x->k;
    if (p < 0 || p >= k->partitions)
        return 0;
    k->next_read[p] = off + 1;
    k->dirty = true;
    at_arena_reset(&x->s->arena);
    at_json_t *o = NULL;
    at_error_t err;
    if (at_json_parse_all(json, len, &x->s->arena, 16, &o, &err) < 0 || o->type != AT_JSON_OBJECT)
        return 0; /* not an output: nothing to deliver */
    if (!at_sinks__wants(k->cfg, o))
        return 0;
    at_sink_item_t *it = at_sinks__item(k, p, off, json, len);
    at_sinks__ids(it, o);
    int64_t max_age = x->s->cfg->sinks_max_age_ms;
    if (max_age > 0 && it->ts > 0 && at_time_now_ms() - it->ts > max_age) {
        at_sinks__record(k, false, it, "max_age");
        atomic_fetch_add(&k->n_skipped, 1);
        at_sinks__item_free(it);
        return 0;
    }
    at_sinks__push(k, it);
    return 0;
}

static void at_sinks__read(at_sinks_t *s, at_sink_t *k)
{
    at_sinks_read_t x = {s, k};
    while (k->nlive < AT_SINK_WINDOW) {
        int got = attune_outputs_next(k->reader, at_sinks__on_output, &x,
                                      (int)(AT_SINK_WINDOW - k->nlive));
        if (got <= 0)
            break;
    }
}

/* ---- replays ------------------------------------------------------------------- */

typedef struct at_sinks_replay {
    at_sinks_t *s;
    at_sink_t *k;
    uint64_t target;
} at_sinks_replay_t;

static int at_sinks__on_dead(void *ud, uint64_t off, const char *json, size_t len)
{
    at_sinks_replay_t *x = ud;
    if (off >= x->target)
        return 1;
    at_arena_reset(&x->s->arena);
    at_json_t *r = NULL;
    at_error_t err;
    if (at_json_parse_all(json, len, &x->s->arena, 20, &r, &err) < 0 || r->type != AT_JSON_OBJECT)
        return 0;
    const at_json_t *o = at_json_get(r, "output", 6);
    if (!o || o->type != AT_JSON_OBJECT)
        return 0;
    at_sink_item_t *it = at_sinks__item(x->k, -1, (int64_t)off, json + o->off, o->end - o->off);
    at_sinks__ids(it, o);
    at_sinks__push(x->k, it);
    return 0;
}

/* Queues the dead letters in [dead_done, dead_target). */
static void at_sinks__load_replay(at_sinks_t *s, at_sink_t *k)
{
    char *data = NULL;
    size_t len = 0;
    if (at_sinks__read_dead(k, &data, &len) == 0) {
        at_sinks_replay_t x = {s, k, atomic_load(&k->dead_target)};
        (void)at_sink_dead_scan(data, len, atomic_load(&k->dead_done), at_sinks__on_dead, &x);
    }
    free(data);
    if (k->nreplay == 0 && atomic_load(&k->dead_target) > atomic_load(&k->dead_done)) {
        atomic_store(&k->dead_done, atomic_load(&k->dead_target));
        (void)at_sinks__save_replay(k);
    }
    AT_INFO("sink_replay", "sink=%s dead_letters=%zu", k->cfg->name, k->nreplay);
}

static void at_sinks__replay_requested(at_sinks_t *s, at_sink_t *k)
{
    if (!atomic_load(&k->replay_req) || k->nreplay > 0)
        return;
    atomic_store(&k->replay_req, false);
    if (k->dead_end <= atomic_load(&k->dead_done))
        return;
    if (k->logs_unsynced && fdatasync(k->dead_fd) == 0)
        k->logs_unsynced = false;
    atomic_store(&k->dead_target, k->dead_end);
    if (at_sinks__save_replay(k) < 0)
        AT_WARN("sink_replay_state", "sink=%s", k->cfg->name);
    at_sinks__load_replay(s, k);
}

/* ---- attempts --------------------------------------------------------------------- */

static size_t at_sinks__discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

static void at_sinks__start_attempt(at_sinks_t *s, at_sink_t *k, at_sink_item_t *it)
{
    const at_config_webhook_t *c = k->cfg;
    int64_t ts = at_time_now_ms() / 1000;
    char sig[65], line[256];
    at_sink_sign(c->secret, strlen(c->secret), ts, it->json, it->len, sig);
    curl_slist_free_all(it->hdrs);
    it->hdrs = NULL;
    const char *fixed[] = {"Content-Type: application/json", "Expect:", NULL};
    for (int i = 0; fixed[i]; i++)
        it->hdrs = curl_slist_append(it->hdrs, fixed[i]);
    (void)snprintf(line, sizeof line, "Attune-Id: %s", it->id);
    it->hdrs = curl_slist_append(it->hdrs, line);
    (void)snprintf(line, sizeof line, "Idempotency-Key: %s", it->id);
    it->hdrs = curl_slist_append(it->hdrs, line);
    (void)snprintf(line, sizeof line, "Attune-Seq: %lld", (long long)it->seq);
    it->hdrs = curl_slist_append(it->hdrs, line);
    (void)snprintf(line, sizeof line, "Attune-Timestamp: %lld", (long long)ts);
    it->hdrs = curl_slist_append(it->hdrs, line);
    (void)snprintf(line, sizeof line, "Attune-Signature: v1=%s", sig);
    it->hdrs = curl_slist_append(it->hdrs, line);
    (void)snprintf(line, sizeof line, "Attune-Attempt: %d", it->attempts + 1);
    it->hdrs = curl_slist_append(it->hdrs, line);
    AT_ASSERT(it->hdrs);
    CURL *e = curl_easy_init();
    AT_ASSERT(e);
    (void)curl_easy_setopt(e, CURLOPT_URL, c->url);
    (void)curl_easy_setopt(e, CURLOPT_POST, 1L);
    (void)curl_easy_setopt(e, CURLOPT_POSTFIELDS, it->json);
    (void)curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
    (void)curl_easy_setopt(e, CURLOPT_HTTPHEADER, it->hdrs);
    (void)curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    (void)curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
    (void)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(e, CURLOPT_USERAGENT, "attune/" AT_VERSION);
    (void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, at_sinks__discard);
    (void)curl_easy_setopt(e, CURLOPT_PRIVATE, it);
    it->easy = e;
    it->state = AT_ITEM_INFLIGHT;
    k->inflight++;
    atomic_fetch_add(&k->a_inflight, 1);
    AT_ASSERT(curl_multi_add_handle(s->multi, e) == CURLM_OK);
}

/* Starts the attempts that are due, within the endpoint's concurrency and
 * while its breaker lets them through. */
static void at_sinks__dispatch(at_sinks_t *s, at_sink_t *k, int64_t now)
{
    for (size_t i = 0; i < k->nwin && k->inflight < k->cfg->concurrency; i++) {
        at_sink_item_t *it = k->win[i];
        if (it->state != AT_ITEM_QUEUED || it->due_ms > now)
            continue;
        if (!at_sink_breaker_allow(&k->br, now))
            break;
        at_sinks__start_attempt(s, k, it);
    }
    atomic_store(&k->a_breaker, (int)k->br.state);
}

/* The outcome of an attempt: delivered, retried later, or dead. */
static void at_sinks__done(at_sinks_t *s, at_sink_item_t *it, CURLcode cc)
{
    at_sink_t *k = it->sink;
    long status = 0;
    if (cc == CURLE_OK)
        (void)curl_easy_getinfo(it->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(s->multi, it->easy);
    curl_easy_cleanup(it->easy);
    it->easy = NULL;
    it->state = AT_ITEM_QUEUED;
    it->attempts++;
    it->last_status = status;
    k->inflight--;
    atomic_fetch_sub(&k->a_inflight, 1);
    atomic_fetch_add(&k->n_attempts, 1);
    int64_t now = at_sinks__now_ms();
    bool ok = cc == CURLE_OK && status >= 200 && status < 300;
    bool permanent =
        cc == CURLE_OK && status >= 400 && status < 500 && status != 408 && status != 429;
    if (cc != CURLE_OK)
        (void)snprintf(it->last_error, sizeof it->last_error, "%s", curl_easy_strerror(cc));
    else if (!ok)
        (void)snprintf(it->last_error, sizeof it->last_error, "HTTP %ld", status);
    at_sink_breaker_result(&k->br, ok || permanent, now);
    atomic_store(&k->a_breaker, (int)k->br.state);
    atomic_store(&k->a_opened, k->br.opened);
    if (ok) {
        atomic_fetch_add(&k->n_ok, 1);
        at_lat_observe_ns(&k->lat, at_time_mono_ns() - it->read_ns);
        int64_t age = at_time_now_ms() - it->ts;
        if (it->ts > 0 && age >= 0)
            at_lat_observe_ns(&k->lat_event, age * 1000000);
        at_sinks__finish(k, it);
    } else if (permanent || it->attempts >= k->cfg->max_attempts) {
        at_sinks__record(k, true, it, permanent ? "rejected" : "max_attempts");
        atomic_fetch_add(&k->n_dead, 1);
        AT_INFO("sink_dead_letter", "sink=%s id=%s attempts=%d status=%ld", k->cfg->name, it->id,
                it->attempts, status);
        at_sinks__finish(k, it);
    } else {
        atomic_fetch_add(&k->n_retry, 1);
        it->due_ms = now + at_sink_backoff_ms(it->attempts, k->cfg->backoff_ms,
                                              k->cfg->backoff_max_ms, &k->rng);
    }
}

static void at_sinks__collect(at_sinks_t *s)
{
    int left = 0;
    CURLMsg *m;
    while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        at_sink_item_t *it = NULL;
        (void)curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&it);
        CURLcode cc = m->data.result;
        at_sinks__done(s, it, cc);
    }
}

/* How long the thread may sleep: until the next retry is due, at most
 * AT_SINK_POLL_MS. */
static int at_sinks__timeout(const at_sinks_t *s, int64_t now)
{
    int64_t t = AT_SINK_POLL_MS;
    for (size_t j = 0; j < s->n; j++) {
        const at_sink_t *k = &s->v[j];
        if (k->inflight >= k->cfg->concurrency)
            continue;
        for (size_t i = 0; i < k->nwin; i++) {
            const at_sink_item_t *it = k->win[i];
            if (it->state == AT_ITEM_QUEUED) {
                int64_t d = it->due_ms - now;
                if (k->br.state == AT_BREAKER_OPEN)
                    d = k->br.open_until - now;
                if (d < t)
                    t = d < 0 ? 0 : d;
            }
        }
    }
    return (int)t;
}

static void *at_sinks__main(void *ud)
{
    at_sinks_t *s = ud;
    for (size_t j = 0; j < s->n; j++) {
        at_sink_t *k = &s->v[j];
        if (atomic_load(&k->dead_target) > atomic_load(&k->dead_done))
            at_sinks__load_replay(s, k); /* interrupted by the last stop */
    }
    while (!atomic_load(&s->stop)) {
        int64_t now = at_sinks__now_ms();
        for (size_t j = 0; j < s->n; j++) {
            at_sink_t *k = &s->v[j];
            at_sinks__read(s, k);
            at_sinks__replay_requested(s, k);
            at_sinks__dispatch(s, k, now);
        }
        int running = 0;
        (void)curl_multi_perform(s->multi, &running);
        at_sinks__collect(s);
        now = at_sinks__now_ms();
        for (size_t j = 0; j < s->n; j++) {
            at_sinks__maybe_save(&s->v[j], now, false);
            at_sinks__dispatch(s, &s->v[j], now);
        }
        (void)curl_multi_perform(s->multi, &running);
        (void)curl_multi_poll(s->multi, NULL, 0, at_sinks__timeout(s, now), NULL);
    }
    /* stop: finish what is in flight, within the longest timeout */
    int64_t deadline = at_sinks__now_ms() + 1000;
    for (size_t j = 0; j < s->n; j++)
        if (at_sinks__now_ms() + s->v[j].cfg->timeout_ms > deadline)
            deadline = at_sinks__now_ms() + s->v[j].cfg->timeout_ms;
    for (;;) {
        int running = 0;
        (void)curl_multi_perform(s->multi, &running);
        at_sinks__collect(s);
        int inflight = 0;
        for (size_t j = 0; j < s->n; j++)
            inflight += s->v[j].inflight;
        if (inflight == 0 || at_sinks__now_ms() >= deadline)
            break;
        (void)curl_multi_poll(s->multi, NULL, 0, 50, NULL);
    }
    for (size_t j = 0; j < s->n; j++)
        at_sinks__maybe_save(&s->v[j], at_sinks__now_ms(), true);
    return NULL;
}

/* ---- the head follower ------------------------------------------------------------ */

static int at_sinks__on_head(void *ud, int p, int64_t off, const char *json, size_t len)
{
    (void)json, (void)len;
    at_sinks_t *s = ud;
    if (p >= 0 && p < s->partitions && off + 1 > atomic_load(&s->head[p]))
        atomic_store(&s->head[p], off + 1);
    return 0;
}

static void *at_sinks__head_main(void *ud)
{
    at_sinks_t *s = ud;
    while (!atomic_load(&s->stop)) {
        int got = attune_outputs_next(s->head_reader, at_sinks__on_head, s, 4096);
        if (got > 0)
            (void)curl_multi_wakeup(s->multi);
        else
            attune_outputs_wait(s->head_reader, AT_SINK_POLL_MS);
    }
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------------ */

static int at_sinks__open_sink(at_sinks_t *s, at_sink_t *k, const at_config_webhook_t *c, char *err,
                               size_t errlen)
{
    k->cfg = c;
    k->partitions = s->partitions;
    k->next_read = at_xcalloc((size_t)s->partitions, sizeof *k->next_read);
    k->pos = at_xcalloc((size_t)s->partitions, sizeof *k->pos);
    k->snap = at_xcalloc((size_t)s->partitions, sizeof *k->snap);
    k->rng = (uint64_t)at_time_mono_ns() | 1;
    at_lat_init(&k->lat);
    at_lat_init(&k->lat_event);
    pthread_mutex_init(&k->mu, NULL);
    at_sink_breaker_init(&k->br, c->breaker_failures, c->breaker_cooldown_ms);
    int rc = at_sinks__open_files(k, s->cfg->data_dir, err, errlen);
    if (rc < 0)
        return rc;
    memcpy(k->snap, k->pos, (size_t)s->partitions * sizeof *k->pos);
    if ((rc = attune_outputs_open(s->a, k->pos, &k->reader)) < 0)
        (void)snprintf(err, errlen, "sink %s: the output logs: %s", c->name, at_strerror(rc));
    return rc;
}

static void at_sinks__free(at_sinks_t *s)
{
    for (size_t j = 0; j < s->n; j++) {
        at_sink_t *k = &s->v[j];
        for (size_t i = 0; i < k->nwin; i++) {
            if (k->win[i]->easy) {
                curl_multi_remove_handle(s->multi, k->win[i]->easy);
                curl_easy_cleanup(k->win[i]->easy);
            }
            at_sinks__item_free(k->win[i]);
        }
        free(k->win);
        attune_outputs_close(k->reader);
        at_sinks__close_files(k);
        free(k->next_read);
        free(k->pos);
        free(k->snap);
        if (k->cfg)
            pthread_mutex_destroy(&k->mu);
    }
    free(s->v);
    attune_outputs_close(s->head_reader);
    free((void *)s->head);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    at_arena_deinit(&s->arena);
    free(s);
}

int at_sinks_start(attune_t *a, at_sinks_t **out, char *err, size_t errlen)
{
    const at_config_t *cfg = attune_config(a);
    *out = NULL;
    if (cfg->nwebhooks == 0)
        return 0;
    AT_ASSERT(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
    at_sinks_t *s = at_xcalloc(1, sizeof *s);
    s->a = a;
    s->cfg = cfg;
    s->partitions = attune_partitions(a);
    at_arena_init(&s->arena, 16384);
    s->multi = curl_multi_init();
    AT_ASSERT(s->multi);
    s->v = at_xcalloc(cfg->nwebhooks, sizeof *s->v);
    int rc = 0;
    for (size_t j = 0; j < cfg->nwebhooks && rc == 0; j++, s->n++)
        rc = at_sinks__open_sink(s, &s->v[j], &cfg->webhooks[j], err, errlen);
    int64_t *from = at_xcalloc((size_t)s->partitions, sizeof *from);
    s->head = at_xcalloc((size_t)s->partitions, sizeof *s->head);
    for (int p = 0; rc == 0 && p < s->partitions; p++) {
        from[p] = s->v[0].pos[p];
        for (size_t j = 1; j < s->n; j++)
            from[p] = s->v[j].pos[p] < from[p] ? s->v[j].pos[p] : from[p];
        atomic_store(&s->head[p], from[p]);
    }
    if (rc == 0 && (rc = attune_outputs_open(a, from, &s->head_reader)) < 0)
        (void)snprintf(err, errlen, "sinks: the output logs: %s", at_strerror(rc));
    free(from);
    if (rc == 0 && pthread_create(&s->th, NULL, at_sinks__main, s) == 0)
        s->th_started = true;
    if (rc == 0 && pthread_create(&s->head_th, NULL, at_sinks__head_main, s) == 0)
        s->head_started = true;
    if (rc == 0 && (!s->th_started || !s->head_started)) {
        rc = -EAGAIN;
        (void)snprintf(err, errlen, "sinks: cannot start a thread");
    }
    if (rc < 0) {
        at_sinks_stop(s);
        return rc;
    }
    for (size_t j = 0; j < s->n; j++)
        AT_INFO("sink_started", "sink=%s url=%s", s->v[j].cfg->name, s->v[j].cfg->url);
    *out = s;
    return 0;
}

void at_sinks_stop(at_sinks_t *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    (void)curl_multi_wakeup(s->multi);
    if (s->th_started)
        pthread_join(s->th, NULL);
    if (s->head_started)
        pthread_join(s->head_th, NULL);
    at_sinks__free(s);
}

/* ---- for the API (any thread) ------------------------------------------------------ */

at_sink_t *at_sinks__find(at_sinks_t *s, const char *name)
{
    for (size_t j = 0; s && j < s->n; j++) {
        if (!strcmp(s->v[j].cfg->name, name))
            return &s->v[j];
    }
    return NULL;
}

size_t at_sinks__count(const at_sinks_t *s)
{
    return s ? s->n : 0;
}

at_sink_t *at_sinks__at(at_sinks_t *s, size_t j)
{
    return &s->v[j];
}

/* Outputs behind: the bus's end minus the sink's position, summed. */
int64_t at_sinks__lag(at_sinks_t *s, at_sink_t *k)
{
    int64_t lag = 0;
    pthread_mutex_lock(&k->mu);
    for (int p = 0; p < s->partitions; p++) {
        int64_t d = atomic_load(&s->head[p]) - k->snap[p];
        lag += d > 0 ? d : 0;
    }
    pthread_mutex_unlock(&k->mu);
    return lag;
}

void at_sinks__wake(at_sinks_t *s)
{
    (void)curl_multi_wakeup(s->multi);
}
