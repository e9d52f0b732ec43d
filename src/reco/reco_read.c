/* reco_read.c - reads over every partition's item aggregates: similar
 * items, trending items (through a cache of merged, sorted lists), one
 * user's blended recommendations, and their JSON.
 *
 * A read visits each part under its read lock and copies what it needs
 * (ids, decayed values) out before letting go, so a partition's thread is
 * held up for a lookup at a time, never for a whole request.
 *
 * Scores: an item's co-occurrence with a seed is the decayed pair weight
 * over sqrt(popularity of the seed * popularity of the item) (a cosine
 * over decayed, type-weighted interaction counts); a user's seeds are
 * their recent items, newest first, each weighing its strongest kind of
 * interaction (view, cart, purchase) times 0.8 per place further back.
 * The blend: w_cooc * co-occurrence (scaled to the best candidate's) +
 * w_affinity * (share of the user's interest in the item's category *
 * the item's trend there, scaled to the category's best) + w_trending *
 * (the item's trend scaled to the best's). The reason given is the term
 * that contributed most.
 *
 * THREAD SAFETY: any thread.
 */
#include "reco_int.h"

#include "at_json.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- candidates --------------------------------------------------------------------- */

typedef struct at_rcand {
    const char *id;
    uint32_t n;
    uint32_t hash;
    const char *cat;
    uint32_t cat_len;
    uint8_t flags;
    bool flags_known;
    bool excluded;
    double cooc, best, pop, aff, trend, score;
    int best_seed;
    int reason;
    at_pstr_t via;
} at_rcand_t;

typedef struct at_rcmap {
    at_rcand_t *v;
    uint32_t n, cap;
    uint32_t *slots;
    uint32_t nslots;
    at_arena_t *arena;
    bool borrow; /* ids are kept as given: they outlive the map */
} at_rcmap_t;

static void at_rcmap_init(at_rcmap_t *m, at_arena_t *arena)
{
    memset(m, 0, sizeof *m);
    m->arena = arena;
}

static void at_rcmap_rehash(at_rcmap_t *m, uint32_t nslots);

/* Room for about `expect` candidates, so that the map does not grow on
 * the way. */
static void at_rcmap_reserve(at_rcmap_t *m, uint32_t expect)
{
    uint32_t nslots = 64;
    while (nslots < 2 * expect)
        nslots *= 2;
    at_rcmap_rehash(m, nslots);
    m->cap = nslots / 2;
    m->v = at_xrealloc(m->v, m->cap * sizeof *m->v);
}

/* A map whose ids outlive it (not copied), sized for about `expect`. */
static void at_rcmap_init_borrowed(at_rcmap_t *m, at_arena_t *arena, uint32_t expect)
{
    at_rcmap_init(m, arena);
    m->borrow = true;
    at_rcmap_reserve(m, expect);
}

/* Whether a[0..n) equals b[0..n): item ids are short, and a call to
 * memcmp costs more than the compare. Up to 16 bytes, two loads from each
 * side that overlap in the middle cover every byte. */
static inline bool at_reco__eq(const char *a, const char *b, size_t n)
{
    if (a == b)
        return true;
    if (n >= 8 && n <= 16) {
        uint64_t x0, x1, y0, y1;
        memcpy(&x0, a, 8), memcpy(&x1, a + n - 8, 8);
        memcpy(&y0, b, 8), memcpy(&y1, b + n - 8, 8);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t x0, x1, y0, y1;
        memcpy(&x0, a, 4), memcpy(&x1, a + n - 4, 4);
        memcpy(&y0, b, 4), memcpy(&y1, b + n - 4, 4);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n < 4) {
        for (size_t i = 0; i < n; i++)
            if (a[i] != b[i])
                return false;
        return true;
    }
    return memcmp(a, b, n) == 0;
}

static void at_rcmap_deinit(at_rcmap_t *m)
{
    free(m->v);
    free(m->slots);
}

static void at_rcmap_rehash(at_rcmap_t *m, uint32_t nslots)
{
    free(m->slots);
    m->slots = at_xcalloc(nslots, sizeof *m->slots);
    m->nslots = nslots;
    for (uint32_t i = 0; i < m->n; i++) {
        uint32_t h = m->v[i].hash & (nslots - 1);
        while (m->slots[h])
            h = (h + 1) & (nslots - 1);
        m->slots[h] = i + 1;
    }
}

/* The candidate for id, whose at_reco__hash is hash (created, with a copy
 * of id, when create). */
static at_rcand_t *at_rcmap_get_h(at_rcmap_t *m, const char *id, size_t n, uint32_t hash,
                                  bool create)
{
    if (m->nslots) {
        for (uint32_t h = hash & (m->nslots - 1);; h = (h + 1) & (m->nslots - 1)) {
            uint32_t s = m->slots[h];
            if (!s)
                break;
            at_rcand_t *c = &m->v[s - 1];
            if (c->hash == hash && c->n == n && at_reco__eq(c->id, id, n))
                return c;
        }
    }
    if (!create)
        return NULL;
    if ((m->n + 1) * 2 > m->nslots)
        at_rcmap_rehash(m, m->nslots ? m->nslots * 2 : 64);
    if (m->n == m->cap) {
        m->cap = AT_MAX(32u, m->cap * 2);
        m->v = at_xrealloc(m->v, m->cap * sizeof *m->v);
    }
    at_rcand_t *c = &m->v[m->n];
    memset(c, 0, sizeof *c);
    c->id = m->borrow ? id : at_arena_strndup(m->arena, id, n);
    c->n = (uint32_t)n;
    c->hash = hash;
    c->best_seed = -1;
    uint32_t h = hash & (m->nslots - 1);
    while (m->slots[h])
        h = (h + 1) & (m->nslots - 1);
    m->slots[h] = ++m->n;
    return c;
}

static at_rcand_t *at_rcmap_get(at_rcmap_t *m, const char *id, size_t n, bool create)
{
    return at_rcmap_get_h(m, id, n, at_reco__hash(id, n), create);
}

static void at_rcand_set_cat(at_rcmap_t *m, at_rcand_t *c, const char *cat, uint32_t n)
{
    if (n && !c->cat_len) {
        c->cat = m->borrow ? cat : at_arena_strndup(m->arena, cat, n);
        c->cat_len = n;
    }
}

static bool at_reco__in_category(const char *cat, size_t n, const char *prefix, size_t pn)
{
    if (!pn)
        return true;
    return n >= pn && memcmp(cat, prefix, pn) == 0 && (n == pn || cat[pn] == '/');
}

/* The order of ids a[0..an) and b[0..bn) that breaks ties between equal
 * scores, so that answers do not depend on the order of a map. */
static int at_reco__id_order(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, AT_MIN(an, bn));
    return c ? c : (an < bn ? -1 : an > bn);
}

static int at_rcand_cmp_cooc(const void *a, const void *b)
{
    const at_rcand_t *x = *(void *const *)a, *y = *(void *const *)b;
    if (x->cooc != y->cooc)
        return x->cooc > y->cooc ? -1 : 1;
    return at_reco__id_order(x->id, x->n, y->id, y->n);
}

static int at_rcand_cmp_score(const void *a, const void *b)
{
    const at_rcand_t *x = *(void *const *)a, *y = *(void *const *)b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return at_reco__id_order(x->id, x->n, y->id, y->n);
}

/* Puts the best m of v[0..n) (by cmp, which is given pointers to two
 * elements of v) first, in order: a selection (quickselect) and a sort of
 * those m, not a sort of all n. */
static void at_rcand_best(void **v, size_t n, size_t m, int (*cmp)(const void *, const void *))
{
    if (m >= n) {
        qsort(v, n, sizeof *v, cmp);
        return;
    }
    size_t lo = 0, hi = n; /* the m-th best is in [lo, hi) */
    while (hi - lo > 1) {
        void *pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        /* three-way: [lo, i) better, [i, j) equal, [j, hi) worse */
        for (size_t k = lo; k < j;) {
            int c = cmp(&v[k], &pivot);
            void *t;
            if (c < 0) {
                t = v[k], v[k] = v[i], v[i] = t;
                i++, k++;
            } else if (c > 0) {
                j--;
                t = v[k], v[k] = v[j], v[j] = t;
            } else {
                k++;
            }
        }
        if (m < i)
            hi = i;
        else if (m >= j)
            lo = j;
        else
            break;
    }
    qsort(v, m, sizeof *v, cmp);
}

/* The catalog partition of an item: where the record "i:ITEM" goes. */
static int at_reco__catalog_part(const at_reco_set_t *s, const char *id, size_t n)
{
    char stack[256];
    char *k = n + 2 <= sizeof stack ? stack : at_xmalloc(n + 2);
    k[0] = 'i';
    k[1] = ':';
    memcpy(k + 2, id, n);
    int p = at_partition_of(k, n + 2, s->n);
    if (k != stack)
        free(k);
    return p;
}

/* ---- merged item information, cached per thread ------------------------------- */

/* What every partition knows of one item, merged: popularity, catalog
 * flags, category, and (when asked for) its neighbours summed over the
 * partitions, the best AT_RINFO_NB of them. Built at wall time built_ms
 * and reused for s->cache_ms by the thread that built it. */
#define AT_RINFO_NB 128
#define AT_RCACHE_MAX 16384

typedef struct at_rnb {
    const char *id; /* the copy in this thread's keys (at_rcache_t) */
    uint32_t n, hash;
    uint32_t key; /* the id's number there */
    double v;
} at_rnb_t;

typedef struct at_rinfo {
    uint32_t hash, n;
    char *id;
    int64_t built_ms;
    uint64_t read; /* the read it was built in (at_rcache_t.read) */
    bool found, nb_done;
    uint8_t flags; /* the catalog's (AT_RECO_F_*), when catalog */
    bool catalog;
    double pop;
    char *cat;
    uint32_t cat_len;
    at_rnb_t *nb;
    uint32_t nnb;
} at_rinfo_t;

/* A candidate from the neighbours of a user's seeds: the most of a
 * read's lookups go to a table of these, small enough to stay in the
 * cache; only the best of them become at_rcand_t. */
typedef struct at_rseed {
    const char *id; /* borrowed, or a copy in the table's arena */
    uint32_t n, hash;
    double cooc, best;
    int best_seed;
    bool excluded;
} at_rseed_t;

/* The table of a read's candidates. A slot holds the epoch it was written
 * in and an index: a reset moves the epoch on instead of clearing the
 * slots (16 KB a read), and a slot of another epoch is empty. */
#define AT_RSEEDS_IDX_BITS 20
#define AT_RSEEDS_IDX ((1u << AT_RSEEDS_IDX_BITS) - 1)
#define AT_RSEEDS_EPOCHS (1u << (32 - AT_RSEEDS_IDX_BITS))

typedef struct at_rseeds {
    at_rseed_t *v;
    uint32_t n, cap;
    uint32_t *slots; /* epoch << AT_RSEEDS_IDX_BITS | index + 1 into v */
    uint32_t nslots;
    uint32_t *kslot; /* the same, by key number (at_rseeds_key) */
    uint32_t nkslot;
    uint32_t epoch;    /* 1 .. AT_RSEEDS_EPOCHS - 1 */
    at_arena_t *arena; /* where ids are copied to; NULL: ids are borrowed */
} at_rseeds_t;

static void at_rseeds_free(at_rseeds_t *t)
{
    free(t->v);
    free(t->slots);
    free(t->kslot);
}

/* At most this many ids are numbered by a thread (at_rcache_t.keys)
 * before its cache is emptied. */
#define AT_RKEYS_MAX (1u << 18)

typedef struct at_rcache {
    at_rseeds_t seeds; /* a user's candidates; kept from read to read: no allocation per read */
    at_rseeds_t nbs;   /* an item's neighbours over the parts, their ids in nbarena */
    at_arena_t nbarena;
    /* the ids of the cached neighbour lists, each once, numbered by their
     * index, copied in keysarena: a read gathers candidates by number (an
     * array index) instead of hashing and comparing ids; numbers stay
     * until the cache is emptied */
    at_rseeds_t keys;
    at_arena_t keysarena;
    uint64_t gen;  /* the set it is for */
    uint64_t read; /* counts the reads (at_rcache_of) */
    at_rinfo_t **slots;
    uint32_t nslots, n;
} at_rcache_t;

static _Atomic uint64_t at_reco__gen = 1;
static pthread_key_t at_reco__key;
static pthread_once_t at_reco__once = PTHREAD_ONCE_INIT;

static void at_rinfo_free(at_rinfo_t *e)
{
    if (!e)
        return;
    free(e->id);
    free(e->cat);
    free(e->nb);
    free(e);
}

static void at_rseeds_reset(at_rseeds_t *t, uint32_t expect);

static void at_rcache_clear(at_rcache_t *c)
{
    for (uint32_t i = 0; i < c->nslots; i++) {
        at_rinfo_free(c->slots[i]);
        c->slots[i] = NULL;
    }
    c->n = 0;
    at_rseeds_reset(&c->keys, 1024); /* the lists held the keys' ids and numbers */
}

static void at_rcache_free(void *p)
{
    at_rcache_t *c = p;
    if (!c)
        return;
    at_rcache_clear(c);
    free(c->slots);
    at_rseeds_free(&c->seeds);
    at_rseeds_free(&c->nbs);
    at_rseeds_free(&c->keys);
    at_arena_deinit(&c->keysarena);
    at_arena_deinit(&c->nbarena);
    free(c);
}

static void at_reco__key_init(void)
{
    AT_ASSERT(pthread_key_create(&at_reco__key, at_rcache_free) == 0);
}

/* This thread's cache for set s, at the start of a read (emptied when it
 * was another set's, or full). What the read gets from it stays valid, and
 * in place, until the thread's next read: a read adds at most
 * AT_RECO_SEEDS + 4 * 100 + 20 entries, which the slots leave room for. */
static at_rcache_t *at_rcache_of(const at_reco_set_t *s)
{
    pthread_once(&at_reco__once, at_reco__key_init);
    at_rcache_t *c = pthread_getspecific(at_reco__key);
    if (!c) {
        c = at_xcalloc(1, sizeof *c);
        c->nslots = 2 * AT_RCACHE_MAX;
        c->slots = at_xcalloc(c->nslots, sizeof(at_rinfo_t *));
        at_arena_init(&c->nbarena, 0);
        at_arena_init(&c->keysarena, 0);
        c->nbs.arena = &c->nbarena;
        c->keys.arena = &c->keysarena;
        at_rseeds_reset(&c->keys, 1024);
        AT_ASSERT(pthread_setspecific(at_reco__key, c) == 0);
    }
    if (c->gen != s->gen || c->n >= AT_RCACHE_MAX || c->keys.n >= AT_RKEYS_MAX) {
        at_rcache_clear(c);
        c->gen = s->gen;
    }
    c->read++;
    return c;
}

/* Empties t, with room for about expect candidates. */
static void at_rseeds_reset(at_rseeds_t *t, uint32_t expect)
{
    uint32_t nslots = 64;
    while (nslots < 2 * expect)
        nslots *= 2;
    if (nslots > t->nslots) {
        free(t->slots);
        t->slots = at_xmalloc(nslots * sizeof *t->slots);
        t->nslots = nslots;
        t->epoch = AT_RSEEDS_EPOCHS - 1; /* cleared below, slots by key too */
    }
    if (t->nslots / 2 > t->cap) {
        t->cap = t->nslots / 2;
        t->v = at_xrealloc(t->v, t->cap * sizeof *t->v);
    }
    if (++t->epoch == AT_RSEEDS_EPOCHS) { /* every epoch used: cleared once */
        memset(t->slots, 0, t->nslots * sizeof *t->slots);
        if (t->kslot)
            memset(t->kslot, 0, t->nkslot * sizeof *t->kslot);
        t->epoch = 1;
    }
    t->n = 0;
    if (t->arena)
        at_arena_reset(t->arena);
}

/* t's slots, nslots of them, filled again from its entries. */
static void at_rseeds__rehash(at_rseeds_t *t, uint32_t nslots)
{
    free(t->slots);
    t->slots = at_xcalloc(nslots, sizeof *t->slots); /* epoch 0: never current */
    t->nslots = nslots;
    for (uint32_t i = 0; i < t->n; i++) {
        uint32_t g = t->v[i].hash & (nslots - 1);
        while (t->slots[g])
            g = (g + 1) & (nslots - 1);
        t->slots[g] = t->epoch << AT_RSEEDS_IDX_BITS | (i + 1);
    }
}

/* A new entry for id (hash given) at index t->n - 1, with a copy of id
 * when the table has an arena. */
static inline at_rseed_t *at_rseeds__push(at_rseeds_t *t, const char *id, uint32_t n, uint32_t hash)
{
    AT_ASSERT(t->n < AT_RSEEDS_IDX);
    if (t->n == t->cap) {
        t->cap = AT_MAX(64u, t->cap * 2);
        t->v = at_xrealloc(t->v, t->cap * sizeof *t->v);
    }
    at_rseed_t *e = &t->v[t->n++];
    *e = (at_rseed_t){.id = t->arena ? at_arena_strndup(t->arena, id, n) : id,
                      .n = n,
                      .hash = hash,
                      .best_seed = -1};
    return e;
}

/* The candidate for id (hash given), created when new (with a copy of id
 * when the table has an arena). */
static at_rseed_t *at_rseeds_get(at_rseeds_t *t, const char *id, uint32_t n, uint32_t hash)
{
    uint32_t mask = t->nslots - 1, h = hash & mask, cur = t->epoch << AT_RSEEDS_IDX_BITS;
    for (;; h = (h + 1) & mask) {
        uint32_t s = t->slots[h];
        if ((s & ~AT_RSEEDS_IDX) != cur)
            break;
        at_rseed_t *e = &t->v[(s & AT_RSEEDS_IDX) - 1];
        if (e->hash == hash && e->n == n && at_reco__eq(e->id, id, n))
            return e;
    }
    if ((t->n + 1) * 2 > t->nslots) { /* more than expected: twice the room */
        at_rseeds__rehash(t, t->nslots * 2);
        mask = t->nslots - 1;
        h = hash & mask;
        while (t->slots[h])
            h = (h + 1) & mask;
    }
    at_rseed_t *e = at_rseeds__push(t, id, n, hash);
    t->slots[h] = cur | t->n;
    return e;
}

/* Room in t's slots by key for key numbers below nkeys. */
static void at_rseeds_kreserve(at_rseeds_t *t, uint32_t nkeys)
{
    if (nkeys <= t->nkslot)
        return;
    uint32_t nk = AT_MAX(AT_MAX(1024u, 2 * t->nkslot), nkeys);
    t->kslot = at_xrealloc(t->kslot, nk * sizeof *t->kslot);
    memset(t->kslot + t->nkslot, 0, (nk - t->nkslot) * sizeof *t->kslot); /* epoch 0 */
    t->nkslot = nk;
}

/* The candidate for key number key (id, n and hash its id's; below what
 * at_rseeds_kreserve made room for), created when new. */
static inline at_rseed_t *at_rseeds_key(at_rseeds_t *t, uint32_t key, const char *id, uint32_t n,
                                        uint32_t hash)
{
    AT_ASSERT(key < t->nkslot);
    uint32_t cur = t->epoch << AT_RSEEDS_IDX_BITS, s = t->kslot[key];
    if ((s & ~AT_RSEEDS_IDX) == cur)
        return &t->v[(s & AT_RSEEDS_IDX) - 1];
    at_rseed_t *e = at_rseeds__push(t, id, n, hash);
    t->kslot[key] = cur | t->n;
    return e;
}

/* The number of id (hash given) in keys, given when new; *copy is the
 * id's copy there. */
static uint32_t at_rkeys_get(at_rseeds_t *keys, const char *id, uint32_t n, uint32_t hash,
                             const char **copy)
{
    const at_rseed_t *e = at_rseeds_get(keys, id, n, hash);
    *copy = e->id;
    return (uint32_t)(e - keys->v);
}

static int at_rseed_cmp_cooc(const void *a, const void *b)
{
    const at_rseed_t *x = *(void *const *)a, *y = *(void *const *)b;
    if (x->cooc != y->cooc)
        return x->cooc > y->cooc ? -1 : 1;
    return at_reco__id_order(x->id, x->n, y->id, y->n);
}

/* Fills e (id and hash set) from every part at time now, with c's
 * scratch table for the neighbours. */
static void at_rinfo_build(at_reco_set_t *s, at_rcache_t *c, at_rinfo_t *e, bool nb, int64_t now)
{
    int cp = at_reco__catalog_part(s, e->id, e->n);
    at_rseeds_t *m = &c->nbs;
    if (nb)
        at_rseeds_reset(m, 1024);
    e->pop = 0;
    e->found = e->catalog = false;
    for (int q = 0; q < s->n; q++) {
        at_reco_part_t *rp = s->parts[q];
        pthread_rwlock_rdlock(&rp->lock);
        uint32_t i = at_reco__find_h(rp, e->id, e->n, e->hash);
        if (i != AT_RECO_NONE) {
            const at_reco_item_t *it = &rp->items[i];
            e->found = true;
            e->pop += at_reco__at(rp, it, it->pop, now);
            bool cat = q == cp && (it->flags & AT_RECO_F_CATALOG);
            if (cat) {
                e->catalog = true;
                e->flags = it->flags;
            }
            if (it->cat_len && (cat || (!e->catalog && !e->cat_len))) {
                free(e->cat);
                e->cat = at_xstrndup(it->cat, it->cat_len);
                e->cat_len = it->cat_len;
            }
            /* the neighbours' values share the item's base: one decay */
            double f = nb ? at_reco__at(rp, it, 1.0, now) : 0;
            for (uint16_t k = 0; nb && k < it->nnb; k++) {
                const at_reco_item_t *y = &rp->items[it->nb[k].item];
                /* a short id from the item itself: its copy is another cache miss */
                const char *yid = y->id_len <= AT_RECO_SID ? y->sid : y->id;
                at_rseeds_get(m, yid, y->id_len, y->hash)->cooc += it->nb[k].v * f;
            }
        }
        pthread_rwlock_unlock(&rp->lock);
    }
    if (nb) {
        /* the best AT_RINFO_NB, in order: a selection, not a sort of all */
        void **top = at_xmalloc((m->n ? m->n : 1) * sizeof *top);
        for (uint32_t i = 0; i < m->n; i++)
            top[i] = &m->v[i];
        uint32_t k = AT_MIN(m->n, (uint32_t)AT_RINFO_NB);
        at_rcand_best(top, m->n, k, at_rseed_cmp_cooc);
        free(e->nb);
        e->nb = at_xmalloc((k ? k : 1) * sizeof *e->nb);
        for (uint32_t i = 0; i < k; i++) {
            const at_rseed_t *y = top[i];
            const char *id;
            uint32_t key = at_rkeys_get(&c->keys, y->id, y->n, y->hash, &id);
            e->nb[i] = (at_rnb_t){id, y->n, y->hash, key, y->cooc};
        }
        e->nnb = k;
        e->nb_done = true;
        free(top);
    }
}

/* What is known of item id (hash given): from this thread's cache when it
 * is fresh or was built in this read, else built. Valid until the
 * thread's next read (at_rcache_of). With a cache_ms of 0 nothing is
 * reused from one read to the next, so answers follow every update (eval). */
static const at_rinfo_t *at_rinfo_get(at_reco_set_t *s, at_rcache_t *c, const char *id, uint32_t n,
                                      uint32_t hash, bool nb, int64_t now, int64_t wall)
{
    uint32_t mask = c->nslots - 1, h = hash & mask;
    at_rinfo_t *e = NULL;
    for (;; h = (h + 1) & mask) {
        e = c->slots[h];
        if (!e || (e->hash == hash && e->n == n && at_reco__eq(e->id, id, n)))
            break;
    }
    if (e && (!nb || e->nb_done) &&
        (e->read == c->read || (s->cache_ms > 0 && wall - e->built_ms < s->cache_ms)))
        return e;
    if (!e) {
        AT_ASSERT(c->n < c->nslots / 2 + 1024); /* see at_rcache_of */
        e = at_xcalloc(1, sizeof *e);
        e->id = at_xstrndup(id, n);
        e->n = n;
        e->hash = hash;
        c->slots[h] = e;
        c->n++;
    }
    e->nb_done = false;
    e->built_ms = wall;
    e->read = c->read;
    at_rinfo_build(s, c, e, nb, now);
    return e;
}

static int64_t at_reco__wall(const at_reco_set_t *s)
{
    return s->cache_ms > 0 ? at_time_mono_ns() / 1000000 : 0;
}

/* Fills, for the candidates in top[0..m), their popularity summed over the
 * parts and what the catalog says of them. */
static void at_reco__pop_and_catalog(at_reco_set_t *s, at_rcache_t *c, at_rcmap_t *map, void **top,
                                     size_t m, int64_t now)
{
    int64_t wall = at_reco__wall(s);
    for (size_t j = 0; j < m; j++) {
        at_rcand_t *x = top[j];
        const at_rinfo_t *e = at_rinfo_get(s, c, x->id, x->n, x->hash, false, now, wall);
        x->pop = e->pop;
        if (e->catalog) {
            x->flags = e->flags;
            x->flags_known = true;
        }
        if (e->cat_len && (e->catalog || !x->cat_len)) {
            x->cat = map->borrow ? e->cat : at_arena_strndup(map->arena, e->cat, e->cat_len);
            x->cat_len = e->cat_len;
        }
    }
}

/* Whether a candidate may be shown under req. */
static bool at_reco__allowed(const at_rcand_t *c, const at_reco_req_t *req)
{
    if (c->excluded || (c->flags & AT_RECO_F_UNAVAILABLE))
        return false;
    if (req->category_len &&
        !at_reco__in_category(c->cat, c->cat_len, req->category, req->category_len))
        return false;
    for (size_t i = 0; i < req->nexclude; i++)
        if (req->exclude[i].n == c->n && memcmp(req->exclude[i].s, c->id, c->n) == 0)
            return false;
    if (req->skip && req->skip(req->skip_ud, c->id, c->n))
        return false;
    return true;
}

/* The best req->n allowed candidates by score into out. */
static void at_reco__finish(at_rcmap_t *map, const at_reco_req_t *req, at_reco_result_t *out)
{
    void **all = at_xmalloc((map->n ? map->n : 1) * sizeof *all);
    size_t k = 0;
    for (uint32_t i = 0; i < map->n; i++)
        if (map->v[i].score > 0 && at_reco__allowed(&map->v[i], req))
            all[k++] = &map->v[i];
    size_t n = AT_MIN(k, req->n);
    at_rcand_best(all, k, n, at_rcand_cmp_score);
    out->hits = at_arena_alloc(&out->arena, (n ? n : 1) * sizeof *out->hits);
    for (size_t i = 0; i < n; i++) {
        const at_rcand_t *c = all[i];
        at_reco_hit_t *h = &out->hits[i];
        h->item = (at_pstr_t){at_arena_strndup(&out->arena, c->id, c->n), c->n};
        h->category = (at_pstr_t){
            c->cat_len ? at_arena_strndup(&out->arena, c->cat, c->cat_len) : "", c->cat_len};
        h->score = c->score;
        h->reason = c->reason;
        h->via = c->via.n ? (at_pstr_t){at_arena_strndup(&out->arena, c->via.s, c->via.n), c->via.n}
                          : (at_pstr_t){"", 0};
    }
    out->n = n;
    free(all);
}

/* ---- results -------------------------------------------------------------------------- */

void at_reco_result_init(at_reco_result_t *r)
{
    memset(r, 0, sizeof *r);
    at_arena_init(&r->arena, 0);
}

void at_reco_result_deinit(at_reco_result_t *r)
{
    at_arena_deinit(&r->arena);
}

int64_t at_reco_now(at_reco_set_t *s)
{
    int64_t now = AT_PROFILE_NONE;
    for (int q = 0; q < s->n; q++) {
        int64_t c = __atomic_load_n(&s->parts[q]->clock, __ATOMIC_RELAXED);
        if (c != AT_PROFILE_NONE && (now == AT_PROFILE_NONE || c > now))
            now = c;
    }
    return now;
}

/* ---- trending ------------------------------------------------------------------------- */

typedef struct at_rtrend_e {
    const char *id;
    uint32_t n;
    uint32_t hash; /* at_reco__hash of id */
    uint32_t cat_len;
    const char *cat;
    double score;
    uint8_t flags;
} at_rtrend_e_t;

typedef struct at_rtcat {
    uint32_t *idx; /* entries in the category or below it, best first */
    uint32_t n, cap;
} at_rtcat_t;

typedef struct at_rtrend {
    atomic_int refs;
    at_arena_t arena;
    at_rtrend_e_t *v;
    size_t n;
    int64_t now, wall_ms;
    at_rcmap_t cm;    /* category prefix -> its index in cats */
    at_rtcat_t *cats; /* [cm.n] */
} at_rtrend_t;

typedef struct at_reco_tcache {
    pthread_mutex_t mu;
    at_rtrend_t *cur[AT_RECO_WINDOWS];
    uint32_t items[AT_RECO_WINDOWS]; /* the items merged by the last build */
} at_reco_tcache_t;

void at_reco_set_init(at_reco_set_t *s, at_reco_part_t **parts, int n)
{
    memset(s, 0, sizeof *s);
    s->parts = parts;
    s->n = n;
    s->gen = atomic_fetch_add(&at_reco__gen, 1);
    s->cache_ms = n > 0 ? parts[0]->cfg.cache_ms : 0;
    s->trend = at_xcalloc(1, sizeof *s->trend);
    pthread_mutex_init(&s->trend->mu, NULL);
}

static void at_rtrend_unref(at_rtrend_t *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1) {
        for (uint32_t i = 0; i < t->cm.n; i++)
            free(t->cats[i].idx);
        free(t->cats);
        at_rcmap_deinit(&t->cm);
        free(t->v);
        at_arena_deinit(&t->arena);
        free(t);
    }
}

void at_reco_set_deinit(at_reco_set_t *s)
{
    if (!s->trend)
        return;
    for (int w = 0; w < AT_RECO_WINDOWS; w++)
        at_rtrend_unref(s->trend->cur[w]);
    pthread_mutex_destroy(&s->trend->mu);
    free(s->trend);
    s->trend = NULL;
}

static int at_rtrend_cmp(const void *a, const void *b)
{
    const at_rtrend_e_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return at_reco__id_order(x->id, x->n, y->id, y->n);
}

static at_rtrend_t *at_rtrend_build(at_reco_set_t *s, int w, int64_t now, int64_t wall)
{
    at_rtrend_t *t = at_xcalloc(1, sizeof *t);
    atomic_init(&t->refs, 1);
    at_arena_init(&t->arena, 0);
    t->now = now;
    t->wall_ms = wall;
    at_rcmap_t m;
    at_rcmap_init(&m, &t->arena);
    if (s->trend->items[w]) /* about as many as last time: the map does not grow on the way */
        at_rcmap_reserve(&m, s->trend->items[w] + s->trend->items[w] / 8);
    for (int q = 0; now != AT_PROFILE_NONE && q < s->n; q++) {
        at_reco_part_t *rp = s->parts[q];
        pthread_rwlock_rdlock(&rp->lock);
        for (uint32_t i = 0; i < rp->n; i++) {
            const at_reco_item_t *it = &rp->items[i];
            if (!it->id)
                continue;
            double sc = at_reco__window_sum(it, w, now);
            bool cat = (it->flags & AT_RECO_F_CATALOG) != 0;
            if (sc <= 0 && !cat)
                continue;
            at_rcand_t *c = at_rcmap_get_h(&m, it->id_len <= AT_RECO_SID ? it->sid : it->id,
                                           it->id_len, it->hash, true);
            c->trend += sc;
            if (cat) {
                c->flags = it->flags;
                c->flags_known = true;
                if (it->cat_len) {
                    c->cat = at_arena_strndup(m.arena, it->cat, it->cat_len);
                    c->cat_len = it->cat_len;
                }
            } else if (it->cat_len && !c->flags_known) {
                at_rcand_set_cat(&m, c, it->cat, it->cat_len);
            }
        }
        pthread_rwlock_unlock(&rp->lock);
    }
    t->v = at_xmalloc((m.n ? m.n : 1) * sizeof *t->v);
    for (uint32_t i = 0; i < m.n; i++) {
        const at_rcand_t *c = &m.v[i];
        if (c->trend <= 0)
            continue;
        t->v[t->n++] =
            (at_rtrend_e_t){c->id, c->n, c->hash, c->cat_len, c->cat, c->trend, c->flags};
    }
    qsort(t->v, t->n, sizeof *t->v, at_rtrend_cmp);
    s->trend->items[w] = m.n;
    at_rcmap_deinit(&m);
    /* every category prefix's entries, so a category's best are found
     * without a scan of the others */
    at_rcmap_init(&t->cm, &t->arena);
    uint32_t capc = 0;
    for (size_t i = 0; i < t->n; i++) {
        const at_rtrend_e_t *e = &t->v[i];
        for (uint32_t l = 1; l <= e->cat_len; l++) {
            if (l < e->cat_len && e->cat[l] != '/')
                continue;
            at_rcand_t *c = at_rcmap_get(&t->cm, e->cat, l, true);
            uint32_t k = (uint32_t)(c - t->cm.v);
            if (k >= capc) {
                uint32_t nc = AT_MAX(16u, capc * 2);
                t->cats = at_xrealloc(t->cats, nc * sizeof *t->cats);
                memset(t->cats + capc, 0, (nc - capc) * sizeof *t->cats);
                capc = nc;
            }
            at_rtcat_t *tc = &t->cats[k];
            if (tc->n == tc->cap) {
                tc->cap = AT_MAX(8u, tc->cap * 2);
                tc->idx = at_xrealloc(tc->idx, tc->cap * sizeof *tc->idx);
            }
            tc->idx[tc->n++] = (uint32_t)i;
        }
    }
    return t;
}

/* The current trending list of window w (a reference: unref it). */
static at_rtrend_t *at_rtrend_get(at_reco_set_t *s, int w)
{
    int64_t now = at_reco_now(s);
    int64_t wall = s->trend_by_data_time ? 0 : at_time_mono_ns() / 1000000;
    at_reco_tcache_t *tc = s->trend;
    pthread_mutex_lock(&tc->mu);
    at_rtrend_t *t = tc->cur[w];
    int64_t step = at_reco__wsize[w] / 10;
    bool stale =
        !t || (now != t->now &&
               (s->trend_by_data_time ? now - t->now >= step || now < t->now
                                      : wall - t->wall_ms >= s->cache_ms ||
                                            now / at_reco__wsize[w] != t->now / at_reco__wsize[w]));
    if (stale) {
        at_rtrend_unref(t);
        t = tc->cur[w] = at_rtrend_build(s, w, now, wall);
    }
    atomic_fetch_add(&t->refs, 1);
    pthread_mutex_unlock(&tc->mu);
    return t;
}

/* Adds the best `want` allowed entries of t in category (prefix) to map
 * with `weight * score / best`, into the trend (aff false) or affinity
 * term; via is the category. */
/* The entries of t in category prefix cat (all when empty): *idx NULL
 * means every entry in order; returns how many. */
static size_t at_rtrend_list(const at_rtrend_t *t, const char *cat, size_t n, const uint32_t **idx)
{
    *idx = NULL;
    if (!n)
        return t->n;
    at_rcand_t *c = at_rcmap_get((at_rcmap_t *)&t->cm, cat, n, false);
    if (!c)
        return 0;
    const at_rtcat_t *tc = &t->cats[c - t->cm.v];
    *idx = tc->idx;
    return tc->n;
}

static void at_reco__from_trend(at_rcmap_t *map, const at_rtrend_t *t, const char *cat,
                                size_t cat_len, size_t want, double weight, bool aff,
                                const at_reco_req_t *req)
{
    double best = 0;
    size_t got = 0;
    const uint32_t *idx;
    size_t nl = cat_len ? at_rtrend_list(t, cat, cat_len, &idx)
                        : at_rtrend_list(t, req->category, req->category_len, &idx);
    for (size_t j = 0; j < nl && got < want; j++) {
        const at_rtrend_e_t *e = &t->v[idx ? idx[j] : j];
        /* a category's list holds only entries in the category */
        if (!(cat_len && idx) && !at_reco__in_category(e->cat, e->cat_len, cat, cat_len))
            continue;
        if (req->category_len && !(!cat_len && idx) &&
            !at_reco__in_category(e->cat, e->cat_len, req->category, req->category_len))
            continue;
        if (e->flags & AT_RECO_F_UNAVAILABLE)
            continue;
        if (best == 0)
            best = e->score;
        at_rcand_t *c = at_rcmap_get_h(map, e->id, e->n, e->hash, true);
        if (!c->flags_known) {
            c->flags = e->flags;
            c->flags_known = true;
        }
        at_rcand_set_cat(map, c, e->cat, e->cat_len);
        double v = weight * e->score / best;
        if (aff) {
            if (v > c->aff) {
                c->aff = v;
                if (c->reason != AT_RECO_R_COOC) /* a borrowing map's cat outlives it */
                    c->via =
                        (at_pstr_t){map->borrow ? cat : at_arena_strndup(map->arena, cat, cat_len),
                                    (uint32_t)cat_len};
            }
        } else if (v > c->trend) {
            c->trend = v;
        }
        if (at_reco__allowed(c, req))
            got++;
    }
}

void at_reco_trending(at_reco_set_t *s, const at_reco_req_t *req, at_reco_result_t *out)
{
    at_rtrend_t *t = at_rtrend_get(s, req->window);
    at_arena_t arena;
    at_arena_init(&arena, 0);
    at_rcmap_t map; /* of ids in t, held to the end */
    at_rcmap_init_borrowed(&map, &arena, (uint32_t)req->n + 16);
    size_t got = 0;
    const uint32_t *idx;
    size_t nl = at_rtrend_list(t, req->category, req->category_len, &idx);
    for (size_t j = 0; j < nl && got < req->n; j++) {
        const at_rtrend_e_t *e = &t->v[idx ? idx[j] : j];
        at_rcand_t *c = at_rcmap_get_h(&map, e->id, e->n, e->hash, true);
        c->flags = e->flags;
        at_rcand_set_cat(&map, c, e->cat, e->cat_len);
        c->score = e->score;
        c->reason = AT_RECO_R_TRENDING;
        if (at_reco__allowed(c, req))
            got++;
    }
    at_reco__finish(&map, req, out);
    at_rcmap_deinit(&map);
    at_arena_deinit(&arena);
    at_rtrend_unref(t);
}

/* ---- similar items --------------------------------------------------------------------- */

void at_reco_similar(at_reco_set_t *s, const char *item, size_t len, const at_reco_req_t *req,
                     at_reco_result_t *out)
{
    int64_t now = at_reco_now(s), wall = at_reco__wall(s);
    at_arena_t arena;
    at_arena_init(&arena, 0);
    at_rcache_t *cache = at_rcache_of(s);
    const at_rinfo_t *x =
        at_rinfo_get(s, cache, item, (uint32_t)len, at_reco__hash(item, len), true, now, wall);
    at_rcmap_t map; /* of ids in x, valid until this thread's next read */
    at_rcmap_init_borrowed(&map, &arena, x->nnb);
    double popx = x->pop;
    for (uint32_t k = 0; k < x->nnb; k++) {
        at_rcand_t *e = at_rcmap_get_h(&map, x->nb[k].id, x->nb[k].n, x->nb[k].hash, true);
        e->cooc += x->nb[k].v;
    }
    void **top = at_xmalloc((map.n ? map.n : 1) * sizeof *top);
    for (uint32_t i = 0; i < map.n; i++)
        top[i] = &map.v[i];
    size_t m = AT_MIN((size_t)map.n, 4 * req->n + 20);
    at_rcand_best(top, map.n, m, at_rcand_cmp_cooc);
    at_reco__pop_and_catalog(s, cache, &map, top, m, now);
    for (size_t j = 0; j < m; j++) {
        at_rcand_t *c = top[j];
        double d = sqrt(popx * c->pop);
        c->score = d > 0 ? c->cooc / d : 0;
        c->reason = AT_RECO_R_COOC;
        c->via = (at_pstr_t){item, (uint32_t)len};
    }
    free(top);
    at_reco__finish(&map, req, out);
    at_rcmap_deinit(&map);
    at_arena_deinit(&arena);
}

/* ---- one user -------------------------------------------------------------------------- */

static double at_reco__kind_weight(const at_profile_cfg_t *pc, uint8_t kinds)
{
    double w = 0;
    if (kinds & AT_PK_PURCHASE)
        w = AT_MAX(w, at_profile_weight(pc, "purchase", 8));
    if (kinds & AT_PK_CART)
        w = AT_MAX(w, at_profile_weight(pc, "add_to_cart", 11));
    if (kinds & AT_PK_VIEW)
        w = AT_MAX(w, at_profile_weight(pc, "view_item", 9));
    return w > 0 ? w : 1.0;
}

void at_reco_user(at_reco_set_t *s, const at_profile_t *p, const at_reco_req_t *req,
                  at_reco_result_t *out)
{
    if (!s->n) {
        out->n = 0;
        return;
    }
    const at_reco_cfg_t *cfg = &s->parts[0]->cfg;
    const at_profile_cfg_t *pc = &s->parts[0]->pcfg;
    int64_t now = at_reco_now(s);
    uint32_t nseed = p ? AT_MIN(p->nrecent, (uint32_t)AT_RECO_SEEDS) : 0;
    /* the ids in the tables are the profile's, the cached neighbour lists'
     * (valid until this thread's next read) and the trending list's (held
     * to the end): none is copied */
    at_rcache_t *cache = at_rcache_of(s);
    int64_t wall = at_reco__wall(s);
    at_rseeds_t *seeds = &cache->seeds;
    uint32_t nrecent = p ? p->nrecent : 0;
    at_rseeds_reset(seeds, nseed * AT_RINFO_NB + nrecent);
    /* what the user has interacted with recently (bought included) is not
     * recommended again: in the tables from the start, excluded */
    for (uint32_t si = 0; si < nrecent; si++) {
        at_pstr_t r = p->recent[si].item;
        uint32_t hash = at_reco__hash(r.s, r.n);
        const char *copy;
        uint32_t key = at_rkeys_get(&cache->keys, r.s, r.n, hash, &copy);
        at_rseeds_kreserve(seeds, key + 1);
        at_rseeds_key(seeds, key, r.s, r.n, hash)->excluded = true;
    }
    uint32_t nexcl = seeds->n; /* v[0 .. nexcl): the recent items, each once */
    double f = 1.0;
    for (uint32_t si = 0; si < nseed; si++, f *= 0.8) {
        at_pstr_t r = p->recent[si].item;
        const at_rinfo_t *x =
            at_rinfo_get(s, cache, r.s, r.n, at_reco__hash(r.s, r.n), true, now, wall);
        if (x->pop <= 0)
            continue;
        at_rseeds_kreserve(seeds, cache->keys.n); /* x's neighbours have numbers below */
        double w = at_reco__kind_weight(pc, p->recent[si].kinds) * f / sqrt(x->pop);
        for (uint32_t k = 0; k < x->nnb; k++) {
            const at_rnb_t *y = &x->nb[k];
            at_rseed_t *e = at_rseeds_key(seeds, y->key, y->id, y->n, y->hash);
            double v = w * x->nb[k].v;
            e->cooc += v;
            if (v > e->best) {
                e->best = v;
                e->best_seed = (int)si;
            }
        }
    }
    /* the best m by co-occurrence go on (the others are not considered),
     * with the recent items, excluded, into the map of the blend */
    void **top = at_xmalloc((seeds->n ? seeds->n : 1) * sizeof *top);
    size_t nt = 0;
    for (uint32_t i = 0; i < seeds->n; i++)
        if (!seeds->v[i].excluded)
            top[nt++] = &seeds->v[i];
    size_t m = AT_MIN(nt, 4 * req->n + 20);
    at_rcand_best(top, nt, m, at_rseed_cmp_cooc);
    at_arena_t arena;
    at_arena_init(&arena, 0);
    at_rcmap_t map;
    at_rcmap_init_borrowed(&map, &arena, nexcl + (uint32_t)m + 8 * (uint32_t)req->n + 40);
    for (uint32_t i = 0; i < nexcl; i++) {
        const at_rseed_t *e = &seeds->v[i];
        at_rcmap_get_h(&map, e->id, e->n, e->hash, true)->excluded = true;
    }
    for (size_t j = 0; j < m; j++) {
        const at_rseed_t *e = top[j];
        at_rcand_t *c = at_rcmap_get_h(&map, e->id, e->n, e->hash, true);
        c->cooc = e->cooc;
        c->best = e->best;
        c->best_seed = e->best_seed;
        top[j] = c; /* the map is sized not to grow on the way: c stays in place */
    }
    at_reco__pop_and_catalog(s, cache, &map, top, m, now);
    double best = 0;
    for (size_t j = 0; j < m; j++) {
        at_rcand_t *c = top[j];
        c->cooc = c->pop > 0 ? c->cooc / sqrt(c->pop) : 0;
        best = AT_MAX(best, c->cooc);
    }
    for (size_t j = 0; j < m; j++) {
        at_rcand_t *c = top[j];
        c->cooc = best > 0 ? cfg->w_cooc * c->cooc / best : 0;
        if (c->cooc > 0) {
            c->reason = AT_RECO_R_COOC;
            c->via = p->recent[c->best_seed].item;
        }
    }
    free(top);
    /* the user's categories, and what is trending */
    at_rtrend_t *t = at_rtrend_get(s, req->window);
    size_t want = 2 * req->n + 10;
    if (p && p->naff) {
        double total = 0;
        for (uint32_t i = 0; i < p->naff; i++)
            total += p->aff[i].score > 0 ? p->aff[i].score : 0;
        uint32_t order[3], no = 0;
        for (uint32_t r = 0; r < 3 && total > 0; r++) {
            int bi = -1;
            for (uint32_t i = 0; i < p->naff; i++) {
                bool used = false;
                for (uint32_t j = 0; j < no; j++)
                    used |= order[j] == i;
                if (!used && p->aff[i].score > 0 && (bi < 0 || p->aff[i].score > p->aff[bi].score))
                    bi = (int)i;
            }
            if (bi < 0)
                break;
            order[no++] = (uint32_t)bi;
        }
        for (uint32_t j = 0; j < no; j++) {
            const at_pstr_t cat = p->aff[order[j]].cat;
            at_reco__from_trend(&map, t, cat.s, cat.n, want,
                                cfg->w_affinity * p->aff[order[j]].score / total, true, req);
        }
    }
    at_reco__from_trend(&map, t, "", 0, want, cfg->w_trending, false, req);
    for (uint32_t i = 0; i < map.n; i++) {
        at_rcand_t *c = &map.v[i];
        c->score = c->cooc + c->aff + c->trend;
        if (c->score <= 0)
            continue;
        if (c->cooc >= c->aff && c->cooc >= c->trend && c->cooc > 0)
            c->reason = AT_RECO_R_COOC;
        else if (c->aff >= c->trend && c->aff > 0)
            c->reason = AT_RECO_R_AFFINITY;
        else {
            c->reason = AT_RECO_R_TRENDING;
            c->via = (at_pstr_t){"", 0};
        }
    }
    at_reco__finish(&map, req, out);
    at_rtrend_unref(t);
    at_rcmap_deinit(&map);
    at_arena_deinit(&arena);
}

/* ---- JSON ------------------------------------------------------------------------------ */

void at_reco_render(const at_reco_result_t *r, at_buf_t *out)
{
    static const char *const reasons[] = {"", "viewed_with", "affinity", "trending"};
    at_json_w_raw(out, "[", 1);
    for (size_t i = 0; i < r->n; i++) {
        const at_reco_hit_t *h = &r->hits[i];
        if (i)
            at_json_w_raw(out, ",", 1);
        at_json_w_raw(out, "{\"item_id\":", 11);
        AT_ASSERT(at_buf_json_str(out, h->item.s, h->item.n) == 0);
        AT_ASSERT(at_buf_printf(out, ",\"score\":%.6g,\"reason\":\"%s\"", h->score,
                                reasons[h->reason]) >= 0);
        if (h->via.n) {
            at_json_w_raw(out,
                          h->reason == AT_RECO_R_AFFINITY ? ",\"category_of_interest\":"
                                                          : ",\"because\":",
                          h->reason == AT_RECO_R_AFFINITY ? 24 : 11);
            AT_ASSERT(at_buf_json_str(out, h->via.s, h->via.n) == 0);
        }
        if (h->category.n) {
            at_json_w_raw(out, ",\"category\":", 12);
            AT_ASSERT(at_buf_json_str(out, h->category.s, h->category.n) == 0);
        }
        at_json_w_raw(out, "}", 1);
    }
    at_json_w_raw(out, "]", 1);
}

int at_reco_item_render(at_reco_set_t *s, const char *item, size_t len, at_buf_t *out)
{
    int64_t now = at_reco_now(s);
    int cp = at_reco__catalog_part(s, item, len);
    bool found = false, catalog = false, unavailable = false;
    double pop = 0;
    at_buf_t cat, attrs;
    at_buf_init(&cat, 0);
    at_buf_init(&attrs, 0);
    for (int q = 0; q < s->n; q++) {
        at_reco_part_t *rp = s->parts[q];
        pthread_rwlock_rdlock(&rp->lock);
        uint32_t i = at_reco__find(rp, item, len);
        if (i != AT_RECO_NONE) {
            const at_reco_item_t *it = &rp->items[i];
            found = true;
            pop += at_reco__at(rp, it, it->pop, now);
            if (q == cp && (it->flags & AT_RECO_F_CATALOG)) {
                catalog = true;
                unavailable = (it->flags & AT_RECO_F_UNAVAILABLE) != 0;
                if (it->cat_len) {
                    at_buf_reset(&cat);
                    AT_ASSERT(at_buf_append(&cat, it->cat, it->cat_len) == 0);
                }
                if (it->attrs_len)
                    AT_ASSERT(at_buf_append(&attrs, it->attrs, it->attrs_len) == 0);
            } else if (!catalog && !cat.len && it->cat_len) {
                AT_ASSERT(at_buf_append(&cat, it->cat, it->cat_len) == 0);
            }
        }
        pthread_rwlock_unlock(&rp->lock);
    }
    if (found) {
        at_json_w_raw(out, "{\"item_id\":", 11);
        AT_ASSERT(at_buf_json_str(out, item, len) == 0);
        at_json_w_raw(out, ",\"category\":", 12);
        if (cat.len)
            AT_ASSERT(at_buf_json_str(out, cat.data, cat.len) == 0);
        else
            at_json_w_raw(out, "null", 4);
        AT_ASSERT(at_buf_printf(out, ",\"available\":%s,\"catalog\":%s,\"popularity\":%.6g",
                                unavailable ? "false" : "true", catalog ? "true" : "false",
                                pop) >= 0);
        if (attrs.len) {
            at_json_w_raw(out, ",\"attributes\":", 14);
            at_json_w_raw(out, attrs.data, attrs.len);
        }
        at_json_w_raw(out, "}", 1);
    }
    at_buf_deinit(&cat);
    at_buf_deinit(&attrs);
    return found ? 0 : AT_ENOTFOUND;
}
