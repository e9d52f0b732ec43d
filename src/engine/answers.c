/* answers.c - recent recommendation answers, shared by the shards that
 * build them and the HTTP threads that serve them again (answers.h).
 *
 * An answer is valid for reco.cache after it was built, while its user's
 * generation is the one it was built at. Each partition keeps a table of
 * generations indexed by a hash of the user key (eight entries for each
 * answer it can keep, 32 bytes, so that users rarely share one); the shard owning the
 * partition bumps the user's entry after each record of the user it
 * processed (an event, a merge, a handoff, a forwarded event), so a new
 * event of the user makes the user's old answers invalid at once. Users
 * sharing an entry invalidate each other's answers, which costs a rebuild,
 * never a stale answer. The table is AT_ANSWERS_WAYS-way set associative
 * (the set's tags in one cache line): a new answer replaces the one of its
 * set served least recently, so a user asked for often keeps their answer
 * when rarer ones land beside it. Eight ways lose fewer answers to
 * conflicts than two at the same size (docs/benchmarks.md, "Recommendations
 * served").
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

#define AT_ANSWERS_GENS_MIN 16384     /* generation entries per partition, at least */
#define AT_ANSWERS_GENS_MAX (1 << 21) /* and at most (8 MiB) */
#define AT_ANSWERS_WAYS 8             /* answers per set, a power of two */

typedef struct at_answer {
    uint32_t gen;
    uint32_t len;
    int64_t built_ms;
    int64_t used_ms; /* last served or built: the older of a pair is replaced */
    char *json;
} at_answer_t;

typedef struct at_apart {
    pthread_mutex_t mu;
    uint64_t *tags; /* of v[i], 0: empty; a set's in one cache line */
    at_answer_t *v;
    _Atomic uint32_t *gen; /* of gens entries */
} at_apart_t;

struct at_answers {
    int partitions;
    size_t n;    /* answers per partition, a power of two, at least AT_ANSWERS_WAYS */
    size_t gens; /* generation entries per partition, a power of two */
    int64_t ttl_ms;
    at_apart_t *parts;
    _Atomic uint64_t hits, built;
    _Atomic uint64_t causes[AT_ANSWERS_CAUSES];
};

at_answers_t *at_answers_new(int partitions, int per_partition, int64_t ttl_ms)
{
    if (per_partition <= 0 || ttl_ms <= 0)
        return NULL;
    at_answers_t *a = at_xcalloc(1, sizeof *a);
    a->partitions = partitions;
    a->ttl_ms = ttl_ms;
    a->n = AT_ANSWERS_WAYS;
    while (a->n < (size_t)per_partition)
        a->n *= 2;
    /* an event bumps its user's entry and so makes the answers of every
     * user sharing it invalid: with eight entries a kept answer, at most
     * one bump in eight costs another user's answer (with as many entries
     * as answers, every other one did) */
    a->gens = AT_MIN(AT_MAX((size_t)AT_ANSWERS_GENS_MIN, 8 * a->n), (size_t)AT_ANSWERS_GENS_MAX);
    a->parts = at_xcalloc((size_t)partitions, sizeof *a->parts);
    for (int p = 0; p < partitions; p++) {
        pthread_mutex_init(&a->parts[p].mu, NULL);
        a->parts[p].v = at_xcalloc(a->n, sizeof *a->parts[p].v);
        a->parts[p].gen = at_xcalloc(a->gens, sizeof *a->parts[p].gen);
        /* a set's tags in one cache line: n * 8 is a multiple of 64 */
        a->parts[p].tags = aligned_alloc(64, a->n * sizeof(uint64_t));
        if (!a->parts[p].tags)
            at_panic(__FILE__, __LINE__, "out of memory");
        memset(a->parts[p].tags, 0, a->n * sizeof(uint64_t));
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
        free(a->parts[p].tags);
        free((void *)a->parts[p].gen);
        pthread_mutex_destroy(&a->parts[p].mu);
    }
    free(a->parts);
    free(a);
}

static _Atomic uint32_t *at_answers__gen(at_answers_t *a, int p, uint64_t user)
{
    return &a->parts[p].gen[user & (a->gens - 1)];
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
    return t | 1; /* 0 marks an empty way */
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
    size_t set = tag & (a->n - AT_ANSWERS_WAYS);
    pthread_mutex_lock(&ap->mu);
    for (size_t w = set; w < set + AT_ANSWERS_WAYS; w++) {
        if (ap->tags[w] != tag)
            continue;
        at_answer_t *e = &ap->v[w];
        if (e->gen == gen && now_ms - e->built_ms < a->ttl_ms) {
            AT_ASSERT(at_buf_append(out, e->json, e->len) == 0);
            e->used_ms = now_ms;
            hit = true;
        }
        break;
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
    size_t set = tag & (a->n - AT_ANSWERS_WAYS), end = set + AT_ANSWERS_WAYS;
    pthread_mutex_lock(&ap->mu);
    /* the same request's old answer, else an empty or expired way, else
     * the way served least recently */
    size_t w = end;
    for (size_t i = set; i < end && w == end; i++)
        if (ap->tags[i] == tag)
            w = i;
    int cause = w == end                                  ? AT_ANSWERS_ABSENT
                : now_ms - ap->v[w].built_ms >= a->ttl_ms ? AT_ANSWERS_EXPIRED
                                                          : AT_ANSWERS_CHANGED;
    for (size_t i = set; i < end && w == end; i++)
        if (!ap->tags[i] || now_ms - ap->v[i].built_ms >= a->ttl_ms)
            w = i;
    if (w == end) {
        w = set;
        for (size_t i = set + 1; i < end; i++)
            if (ap->v[i].used_ms < ap->v[w].used_ms)
                w = i;
    }
    at_answer_t *e = &ap->v[w];
    char *old = e->json;
    *e = (at_answer_t){
        .gen = gen, .len = (uint32_t)len, .built_ms = now_ms, .used_ms = now_ms, .json = copy};
    ap->tags[w] = tag;
    pthread_mutex_unlock(&ap->mu);
    free(old);
    atomic_fetch_add_explicit(&a->causes[cause], 1, memory_order_relaxed);
}

void at_answers_stats(const at_answers_t *a, uint64_t *hits, uint64_t *built)
{
    *hits = a ? atomic_load_explicit(&a->hits, memory_order_relaxed) : 0;
    *built = a ? atomic_load_explicit(&a->built, memory_order_relaxed) : 0;
}

void at_answers_causes(const at_answers_t *a, uint64_t out[AT_ANSWERS_CAUSES])
{
    for (int i = 0; i < AT_ANSWERS_CAUSES; i++)
        out[i] = a ? atomic_load_explicit(&a->causes[i], memory_order_relaxed) : 0;
}
