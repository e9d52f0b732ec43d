/* answers.c - recent recommendation answers, shared by the shards that
 * build them and the HTTP threads that serve them again (answers.h).
 *
 * An answer is valid for reco.cache after it was built, while its user's
 * generation is the one it was built at. Each partition keeps a table of
 * generations indexed by a hash of the user key; the shard owning the
 * partition bumps the user's entry after each record of the user it
 * processed (an event, a merge, a handoff, a forwarded event), so a new
 * event of the user makes the user's old answers invalid at once. Users
 * sharing an entry invalidate each other's answers, which costs a rebuild,
 * never a stale answer. The table is two-way set associative: a new
 * answer replaces the one of its pair served least recently, so a user
 * asked for often keeps their answer when a rarer one lands beside it.
 *
 * THREAD SAFETY: at_answers_touch and at_answers_put on the partition's
 * shard thread; at_answers_get from any thread (a mutex per partition
 * guards the answers, the generations are atomics).
 */
#include "answers.h"
#include "at_core.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define AT_ANSWERS_GENS 16384 /* generation entries per partition, a power of two */

typedef struct at_answer {
    uint64_t tag;
    uint32_t gen;
    uint32_t len;
    int64_t built_ms;
    int64_t used_ms; /* last served or built: the older of a pair is replaced */
    char *json;
} at_answer_t;

typedef struct at_apart {
    pthread_mutex_t mu;
    at_answer_t *v;
    _Atomic uint32_t gen[AT_ANSWERS_GENS];
} at_apart_t;

struct at_answers {
    int partitions;
    size_t n; /* answers per partition, a power of two, at least 2 */
    int64_t ttl_ms;
    at_apart_t *parts;
    _Atomic uint64_t hits, built;
};

at_answers_t *at_answers_new(int partitions, int per_partition, int64_t ttl_ms)
{
    if (per_partition <= 0 || ttl_ms <= 0)
        return NULL;
    at_answers_t *a = at_xcalloc(1, sizeof *a);
    a->partitions = partitions;
    a->ttl_ms = ttl_ms;
    a->n = 2;
    while (a->n < (size_t)per_partition)
        a->n *= 2;
    a->parts = at_xcalloc((size_t)partitions, sizeof *a->parts);
    for (int p = 0; p < partitions; p++) {
        pthread_mutex_init(&a->parts[p].mu, NULL);
        a->parts[p].v = at_xcalloc(a->n, sizeof *a->parts[p].v);
    }
    return a;
}

void at_answers_free(at_answers_t *a)
{
    if (!a)
        return;
    for (int p = 0; p < a->partitions; p++) {
        for (size_t i = 0; i < a->n; i++)
            free(a->parts[p].v[i].json);
        free(a->parts[p].v);
        pthread_mutex_destroy(&a->parts[p].mu);
    }
    free(a->parts);
    free(a);
}

static _Atomic uint32_t *at_answers__gen(at_answers_t *a, int p, uint64_t user)
{
    return &a->parts[p].gen[user & (AT_ANSWERS_GENS - 1)];
}

uint64_t at_answers_user(const char *key, size_t n)
{
    return at_hash64(key, n);
}

uint64_t at_answers_tag(uint64_t user, const at_reco_req_t *req)
{
    uint64_t h[4] = {user, req->n, (uint64_t)req->window, req->nexclude};
    uint64_t t = at_hash64(h, sizeof h);
    if (req->category_len)
        t ^= at_hash64(req->category, req->category_len) * 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < req->nexclude; i++)
        t = at_hash64(&t, sizeof t) ^ at_hash64(req->exclude[i].s, req->exclude[i].n);
    return t;
}

void at_answers_touch(at_answers_t *a, int p, uint64_t user)
{
    atomic_fetch_add_explicit(at_answers__gen(a, p, user), 1, memory_order_release);
}

uint32_t at_answers_gen(at_answers_t *a, int p, uint64_t user)
{
    return atomic_load_explicit(at_answers__gen(a, p, user), memory_order_acquire);
}

bool at_answers_get(at_answers_t *a, int p, uint64_t user, uint64_t tag, int64_t now_ms,
                    at_buf_t *out)
{
    uint32_t gen = at_answers_gen(a, p, user);
    at_apart_t *ap = &a->parts[p];
    bool hit = false;
    pthread_mutex_lock(&ap->mu);
    at_answer_t *set = &ap->v[tag & (a->n - 2)];
    for (int w = 0; w < 2 && !hit; w++) {
        at_answer_t *e = &set[w];
        if (e->json && e->tag == tag && e->gen == gen && now_ms - e->built_ms < a->ttl_ms) {
            AT_ASSERT(at_buf_append(out, e->json, e->len) == 0);
            e->used_ms = now_ms;
            hit = true;
        }
    }
    pthread_mutex_unlock(&ap->mu);
    if (hit)
        atomic_fetch_add_explicit(&a->hits, 1, memory_order_relaxed);
    return hit;
}

void at_answers_put(at_answers_t *a, int p, uint64_t tag, uint32_t gen, int64_t now_ms,
                    const char *json, size_t len)
{
    if (len > UINT32_MAX)
        return;
    atomic_fetch_add_explicit(&a->built, 1, memory_order_relaxed);
    char *copy = at_xstrndup(json, len);
    at_apart_t *ap = &a->parts[p];
    pthread_mutex_lock(&ap->mu);
    at_answer_t *set = &ap->v[tag & (a->n - 2)];
    /* the same request's old answer, else an empty or expired way, else
     * the way served least recently */
    at_answer_t *e = NULL;
    for (int w = 0; w < 2 && !e; w++)
        if (set[w].json && set[w].tag == tag)
            e = &set[w];
    for (int w = 0; w < 2 && !e; w++)
        if (!set[w].json || now_ms - set[w].built_ms >= a->ttl_ms)
            e = &set[w];
    if (!e)
        e = set[0].used_ms <= set[1].used_ms ? &set[0] : &set[1];
    char *old = e->json;
    *e = (at_answer_t){.tag = tag,
                       .gen = gen,
                       .len = (uint32_t)len,
                       .built_ms = now_ms,
                       .used_ms = now_ms,
                       .json = copy};
    pthread_mutex_unlock(&ap->mu);
    free(old);
}

void at_answers_stats(const at_answers_t *a, uint64_t *hits, uint64_t *built)
{
    *hits = a ? atomic_load_explicit(&a->hits, memory_order_relaxed) : 0;
    *built = a ? atomic_load_explicit(&a->built, memory_order_relaxed) : 0;
}
