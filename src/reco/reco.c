/* reco.c - one partition's item aggregates: the table of items with their
 * top-K co-occurring neighbours, decayed popularity, trending buckets and
 * catalog data; their updates from events and catalog records; their
 * encoding for checkpoints and the digest.
 *
 * Neighbour lists are not kept sorted: an update finds its neighbour by a
 * scan of at most K 8-byte entries; when the list is full, a new
 * neighbour replaces the weakest one if its weight is larger (so a list
 * holds the heaviest recent co-occurrences, not all of them: bounded
 * memory per item, the price being that a pair that only ever comes in
 * small steps cannot enter a full list).
 *
 * THREAD SAFETY: at_reco.h.
 */
#include "reco_int.h"

#include "at_json.h"
#include "at_stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const int64_t at_reco__wsize[AT_RECO_WINDOWS] = {300000, 3600000, 86400000};
const int at_reco__wcount[AT_RECO_WINDOWS] = {12, 24, 7};
const int at_reco__woff[AT_RECO_WINDOWS] = {0, 12, 36};

void at_reco_cfg_defaults(at_reco_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->neighbours = 100;
    c->half_life_ms = 30LL * 86400000;
    c->pair_window_ms = 30LL * 60000;
    c->max_pairs = 10;
    c->w_cooc = 1.0;
    c->w_affinity = 0.3;
    c->w_trending = 0.1;
    c->cache_ms = 10000;
}

int at_reco_window_of(int64_t ms)
{
    if (ms == 3600000)
        return AT_RECO_W1H;
    if (ms == 86400000)
        return AT_RECO_W24H;
    if (ms == 7LL * 86400000)
        return AT_RECO_W7D;
    return -1;
}

at_reco_part_t *at_reco_part_new(const at_reco_cfg_t *cfg, const at_profile_cfg_t *pcfg)
{
    at_reco_part_t *rp = at_xcalloc(1, sizeof *rp);
    rp->cfg = *cfg;
    /* zero fields (a configuration that does not set them) take the defaults */
    at_reco_cfg_t d;
    at_reco_cfg_defaults(&d);
    if (rp->cfg.neighbours <= 0)
        rp->cfg.neighbours = d.neighbours;
    rp->cfg.neighbours = AT_MIN(rp->cfg.neighbours, AT_RECO_MAX_NEIGHBOURS);
    if (rp->cfg.half_life_ms <= 0)
        rp->cfg.half_life_ms = d.half_life_ms;
    if (rp->cfg.pair_window_ms <= 0)
        rp->cfg.pair_window_ms = d.pair_window_ms;
    if (rp->cfg.max_pairs <= 0)
        rp->cfg.max_pairs = d.max_pairs;
    if (rp->cfg.w_cooc == 0 && rp->cfg.w_affinity == 0 && rp->cfg.w_trending == 0) {
        rp->cfg.w_cooc = d.w_cooc;
        rp->cfg.w_affinity = d.w_affinity;
        rp->cfg.w_trending = d.w_trending;
    }
    rp->pcfg = *pcfg;
    pthread_rwlockattr_t at;
    pthread_rwlockattr_init(&at);
    /* a stream of reads must not starve the partition's updates */
    pthread_rwlockattr_setkind_np(&at, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&rp->lock, &at);
    pthread_rwlockattr_destroy(&at);
    rp->clock = AT_PROFILE_NONE;
    return rp;
}

static void at_reco__item_free(at_reco_item_t *it)
{
    free(it->id);
    free(it->cat);
    free(it->attrs);
    free(it->nb);
}

void at_reco_part_free(at_reco_part_t *rp)
{
    if (!rp)
        return;
    for (uint32_t i = 0; i < rp->n; i++)
        at_reco__item_free(&rp->items[i]);
    free(rp->items);
    free(rp->slots);
    free(rp->dirty);
    free(rp->by_sym);
    pthread_rwlock_destroy(&rp->lock);
    free(rp);
}

/* ---- the table ------------------------------------------------------------------- */

uint32_t at_reco__hash(const char *s, size_t n)
{
    return (uint32_t)at_hash64(s, n);
}

uint32_t at_reco__find_h(const at_reco_part_t *rp, const char *id, size_t n, uint32_t hash)
{
    if (!rp->nslots)
        return AT_RECO_NONE;
    uint32_t mask = rp->nslots - 1;
    for (uint32_t h = hash & mask;; h = (h + 1) & mask) {
        uint32_t s = rp->slots[h];
        if (!s)
            return AT_RECO_NONE;
        const at_reco_item_t *it = &rp->items[s - 1];
        if (it->hash == hash && it->id_len == n &&
            memcmp(n <= AT_RECO_SID ? it->sid : it->id, id, n) == 0)
            return s - 1;
    }
}

uint32_t at_reco__find(const at_reco_part_t *rp, const char *id, size_t n)
{
    return at_reco__find_h(rp, id, n, at_reco__hash(id, n));
}

static void at_reco__slot_put(uint32_t *slots, uint32_t nslots, const at_reco_item_t *it,
                              uint32_t index)
{
    uint32_t mask = nslots - 1;
    uint32_t h = it->hash & mask;
    while (slots[h])
        h = (h + 1) & mask;
    slots[h] = index + 1;
}

static void at_reco__rehash(at_reco_part_t *rp, uint32_t nslots)
{
    free(rp->slots);
    rp->slots = at_xcalloc(nslots, sizeof *rp->slots);
    rp->nslots = nslots;
    for (uint32_t i = 0; i < rp->n; i++)
        if (rp->items[i].id)
            at_reco__slot_put(rp->slots, nslots, &rp->items[i], i);
}

/* Makes room for index i in the items array (new entries zeroed). */
static void at_reco__grow_to(at_reco_part_t *rp, uint32_t i)
{
    if (i < rp->cap)
        return;
    uint32_t cap = AT_MAX(64u, rp->cap);
    while (cap <= i)
        cap *= 2;
    rp->items = at_xrealloc(rp->items, cap * sizeof *rp->items);
    memset(rp->items + rp->cap, 0, (cap - rp->cap) * sizeof *rp->items);
    rp->cap = cap;
}

static void at_reco__item_init(at_reco_item_t *it, const char *id, size_t n)
{
    memset(it, 0, sizeof *it);
    it->id = at_xstrndup(id, n);
    it->id_len = (uint32_t)n;
    if (n <= AT_RECO_SID)
        memcpy(it->sid, id, n);
    it->hash = at_reco__hash(id, n);
    it->base = AT_PROFILE_NONE;
    it->updated = AT_PROFILE_NONE;
    for (int w = 0; w < AT_RECO_WINDOWS; w++)
        it->tb[w] = INT64_MIN;
}

static void at_reco__mark(at_reco_part_t *rp, uint32_t i)
{
    at_reco_item_t *it = &rp->items[i];
    if (it->dirty)
        return;
    it->dirty = true;
    if (rp->ndirty == rp->dirty_cap) {
        rp->dirty_cap = AT_MAX(64u, rp->dirty_cap * 2);
        rp->dirty = at_xrealloc(rp->dirty, rp->dirty_cap * sizeof *rp->dirty);
    }
    rp->dirty[rp->ndirty++] = i;
}

/* The index of item id (whose hash is given), added when new. */
static uint32_t at_reco__get_h(at_reco_part_t *rp, const char *id, size_t n, uint32_t hash)
{
    uint32_t i = at_reco__find_h(rp, id, n, hash);
    if (i != AT_RECO_NONE)
        return i;
    if ((rp->n + 1) * 2 > rp->nslots)
        at_reco__rehash(rp, rp->nslots ? rp->nslots * 2 : 256);
    i = rp->n++;
    at_reco__grow_to(rp, i);
    at_reco__item_init(&rp->items[i], id, n);
    at_reco__slot_put(rp->slots, rp->nslots, &rp->items[i], i);
    rp->bytes += sizeof(at_reco_item_t) + n + 2 * sizeof(uint32_t);
    return i;
}

static uint32_t at_reco__get(at_reco_part_t *rp, const char *id, size_t n)
{
    return at_reco__get_h(rp, id, n, at_reco__hash(id, n));
}

/* ---- decay ------------------------------------------------------------------------ */

double at_reco__at(const at_reco_part_t *rp, const at_reco_item_t *it, double v, int64_t t)
{
    if (it->base == AT_PROFILE_NONE || v == 0)
        return 0;
    return v * exp2(-(double)(t - it->base) / (double)rp->cfg.half_life_ms);
}

/* The factor that scales a weight at t to its base, rebasing first when
 * t is too far past it. */
static double at_reco__scale(at_reco_part_t *rp, at_reco_item_t *it, int64_t t)
{
    double hl = (double)rp->cfg.half_life_ms;
    if (it->base == AT_PROFILE_NONE) {
        it->base = t;
        return 1.0;
    }
    double e = (double)(t - it->base) / hl;
    if (e > AT_RECO_REBASE) {
        float f = (float)exp2(-e);
        it->minok = false;
        it->pop *= f;
        for (uint16_t k = 0; k < it->nnb; k++)
            it->nb[k].v *= f;
        it->base = t;
        return 1.0;
    }
    return exp2(e);
}

/* ---- trending ---------------------------------------------------------------------- */

static int64_t at_reco__floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int at_reco__mod(int64_t a, int b)
{
    int64_t m = a % b;
    return (int)(m < 0 ? m + b : m);
}

static void at_reco__trend_add(at_reco_item_t *it, double w, int64_t t)
{
    for (int k = 0; k < AT_RECO_WINDOWS; k++) {
        int cnt = at_reco__wcount[k];
        float *tv = it->tv + at_reco__woff[k];
        int64_t b = at_reco__floordiv(t, at_reco__wsize[k]);
        if (it->tb[k] == INT64_MIN || b - it->tb[k] >= cnt) {
            memset(tv, 0, (size_t)cnt * sizeof *tv);
            it->tb[k] = b;
        } else if (b > it->tb[k]) {
            for (int64_t j = it->tb[k] + 1; j <= b; j++)
                tv[at_reco__mod(j, cnt)] = 0;
            it->tb[k] = b;
        } else if (b <= it->tb[k] - cnt) {
            continue; /* older than the window */
        }
        tv[at_reco__mod(b, cnt)] += (float)w;
    }
}

double at_reco__window_sum(const at_reco_item_t *it, int w, int64_t t)
{
    if (it->tb[w] == INT64_MIN)
        return 0;
    int cnt = at_reco__wcount[w];
    const float *tv = it->tv + at_reco__woff[w];
    int64_t bn = at_reco__floordiv(t, at_reco__wsize[w]);
    int64_t lo = AT_MAX(bn - cnt + 1, it->tb[w] - cnt + 1), hi = AT_MIN(bn, it->tb[w]);
    if (lo > hi)
        return 0;
    /* the buckets in order as two runs of the ring, not one division a
     * bucket: a trending list sums every item's */
    int k = at_reco__mod(lo, cnt), left = (int)(hi - lo + 1), first = AT_MIN(left, cnt - k);
    double s = 0;
    for (int j = k; j < k + first; j++)
        s += tv[j];
    for (int j = 0; j < left - first; j++)
        s += tv[j];
    return s;
}

/* ---- updates ----------------------------------------------------------------------- */

/* Where neighbour b is, or goes, in it's list (kept sorted by index). */
static uint16_t at_reco__nb_pos(const at_reco_item_t *it, uint32_t b)
{
    uint16_t lo = 0, hi = it->nnb;
    while (lo < hi) {
        uint16_t mid = (uint16_t)((lo + hi) / 2);
        if (it->nb[mid].item < b)
            lo = (uint16_t)(mid + 1);
        else
            hi = mid;
    }
    return lo;
}

/* Adds s (a weight already scaled to a's base) to neighbour b of a. */
static void at_reco__nb_add(at_reco_part_t *rp, uint32_t a, uint32_t b, float s)
{
    at_reco_item_t *it = &rp->items[a];
    uint16_t pos = at_reco__nb_pos(it, b);
    if (pos < it->nnb && it->nb[pos].item == b) {
        it->nb[pos].v += s;
        if (pos == it->minpos)
            it->minok = false; /* the weakest grew */
        return;
    }
    uint16_t kmax = (uint16_t)rp->cfg.neighbours;
    if (it->nnb == kmax) { /* full: the newcomer replaces the weakest if heavier */
        if (!it->minok) {
            uint16_t m = 0;
            for (uint16_t k = 1; k < it->nnb; k++)
                if (it->nb[k].v < it->nb[m].v)
                    m = k;
            it->minpos = m;
            it->minok = true;
        }
        uint16_t weakest = it->minpos;
        if (!(it->nb[weakest].v < s))
            return;
        memmove(&it->nb[weakest], &it->nb[weakest + 1],
                (size_t)(it->nnb - weakest - 1) * sizeof *it->nb);
        it->nnb--;
        if (weakest < pos)
            pos--;
    } else if (it->nnb == it->cap) {
        uint16_t cap = (uint16_t)AT_MIN(kmax, AT_MAX(4, it->cap * 2));
        it->nb = at_xrealloc(it->nb, cap * sizeof *it->nb);
        rp->bytes += (size_t)(cap - it->cap) * sizeof *it->nb;
        it->cap = cap;
    }
    memmove(&it->nb[pos + 1], &it->nb[pos], (size_t)(it->nnb - pos) * sizeof *it->nb);
    it->nb[pos] = (at_reco_nb_t){b, s};
    it->nnb++;
    it->minok = false; /* positions moved */
}

/* Sets the item's category; one learned from an event (catalog false)
 * never replaces the catalog's. */
static void at_reco__set_category(at_reco_part_t *rp, at_reco_item_t *it, at_pstr_t cat,
                                  bool catalog)
{
    if (!cat.n || (!catalog && (it->flags & AT_RECO_F_CATALOG)) ||
        (it->cat_len == cat.n && memcmp(it->cat, cat.s, cat.n) == 0))
        return;
    rp->bytes += cat.n;
    rp->bytes -= it->cat_len;
    free(it->cat);
    it->cat = at_xstrndup(cat.s, cat.n);
    it->cat_len = cat.n;
}

/* Asks for the cache lines an item's update reads (no effect on results). */
static void at_reco__prefetch_item(const at_reco_item_t *it)
{
    __builtin_prefetch(it, 1);
    __builtin_prefetch((const char *)it + 64, 1);
}

static void at_reco__prefetch_nb(const at_reco_item_t *it)
{
    /* the binary search reads the list from the middle out: all of it */
    for (size_t off = 0; off < it->nnb * sizeof *it->nb; off += 64)
        __builtin_prefetch((const char *)it->nb + off, 1);
}

#define AT_RECO_BATCH 16        /* partners looked up together */
#define AT_RECO_SYMS (1u << 20) /* dictionary ids by_sym keeps (a partition's are fewer) */

/* The item of dictionary id sym, or AT_RECO_NONE when not known. */
static uint32_t at_reco__by_sym(const at_reco_part_t *rp, uint32_t sym)
{
    return sym < rp->nby_sym && rp->by_sym[sym] ? rp->by_sym[sym] - 1 : AT_RECO_NONE;
}

static void at_reco__set_sym(at_reco_part_t *rp, uint32_t sym, uint32_t i)
{
    if (sym >= AT_RECO_SYMS)
        return;
    if (sym >= rp->nby_sym) {
        uint32_t n = AT_MAX(1024u, rp->nby_sym);
        while (n <= sym)
            n *= 2;
        rp->by_sym = at_xrealloc(rp->by_sym, n * sizeof *rp->by_sym);
        memset(rp->by_sym + rp->nby_sym, 0, (n - rp->nby_sym) * sizeof *rp->by_sym);
        rp->bytes += (size_t)(n - rp->nby_sym) * sizeof *rp->by_sym;
        rp->nby_sym = n;
    }
    rp->by_sym[sym] = i + 1;
}

/* A partner: its id, and its index when its dictionary id told it
 * (AT_RECO_NONE: to be looked up, then remembered under sym). */
typedef struct at_reco_partner {
    at_pstr_t id;
    uint32_t sym;
    uint32_t index;
} at_reco_partner_t;

/* The pairs of item x with a batch of the user's recent items, in their
 * order. The partners' lookups go first, each stage asking for the cache
 * lines of the next (hash slot, item, neighbour list), so that the
 * misses of the batch overlap instead of coming one after another: the
 * item table and its lists are much larger than the caches. A partner
 * whose index its dictionary id gave skips the first two. Items are
 * added in the partners' order, as one at a time would. */
static void at_reco__pairs(at_reco_part_t *rp, uint32_t x, double sx, const at_reco_partner_t *part,
                           int n, double w, int64_t t)
{
    uint32_t hash[AT_RECO_BATCH], y[AT_RECO_BATCH];
    for (int k = 0; k < n; k++) {
        if (part[k].index != AT_RECO_NONE) {
            at_reco__prefetch_item(&rp->items[part[k].index]);
            continue;
        }
        hash[k] = at_reco__hash(part[k].id.s, part[k].id.n);
        __builtin_prefetch(&rp->slots[hash[k] & (rp->nslots - 1)]);
    }
    for (int k = 0; k < n; k++) {
        if (part[k].index != AT_RECO_NONE)
            continue;
        uint32_t s = rp->slots[hash[k] & (rp->nslots - 1)];
        if (s)
            at_reco__prefetch_item(&rp->items[s - 1]);
    }
    for (int k = 0; k < n; k++) {
        y[k] = part[k].index;
        if (y[k] == AT_RECO_NONE) {
            y[k] = at_reco__get_h(rp, part[k].id.s, part[k].id.n, hash[k]);
            if (part[k].sym != AT_SDICT_NONE)
                at_reco__set_sym(rp, part[k].sym, y[k]);
        }
        at_reco__prefetch_nb(&rp->items[y[k]]);
    }
    for (int k = 0; k < n; k++) {
        at_reco_item_t *iy = &rp->items[y[k]];
        at_reco__nb_add(rp, x, y[k], (float)(w * sx));
        at_reco__nb_add(rp, y[k], x, (float)(w * at_reco__scale(rp, iy, t)));
        iy->updated = AT_MAX(iy->updated, t);
        at_reco__mark(rp, y[k]);
    }
}

/* One item of an event: its popularity, trend and pairs. */
static void at_reco__touch(at_reco_part_t *rp, const at_profile_t *p, at_pstr_t item, at_pstr_t cat,
                           double w, int64_t t)
{
    /* the partners' entries of by_sym are read one after another below:
     * asked for first, they come while x is looked up and updated */
    for (uint32_t i = 0; p && i < p->nrecent && i <= (uint32_t)rp->cfg.max_pairs; i++)
        if (p->recent[i].sym < rp->nby_sym)
            __builtin_prefetch(&rp->by_sym[p->recent[i].sym]);
    uint32_t x = at_reco__get(rp, item.s, item.n);
    at_reco_item_t *it = &rp->items[x];
    at_reco__prefetch_nb(it);
    at_reco__set_category(rp, it, cat, false);
    /* x's base is set here (or moved to t): the factor holds for every
     * pair below */
    double sx = at_reco__scale(rp, it, t);
    it->pop += (float)(w * sx);
    at_reco__trend_add(it, w, t);
    it->updated = AT_MAX(it->updated, t);
    at_reco__mark(rp, x);
    at_reco_partner_t part[AT_RECO_BATCH];
    int pairs = 0, n = 0;
    for (uint32_t i = 0; p && i < p->nrecent && pairs < rp->cfg.max_pairs; i++) {
        int64_t d = p->recent[i].ts - t;
        if (d > rp->cfg.pair_window_ms || -d > rp->cfg.pair_window_ms)
            continue;
        at_pstr_t r = p->recent[i].item;
        uint32_t sym = p->recent[i].sym, y = at_reco__by_sym(rp, sym);
        /* the item itself is no partner: the same index is the same id */
        if (y != AT_RECO_NONE ? y == x : (r.n == item.n && memcmp(r.s, item.s, r.n) == 0))
            continue;
        part[n++] = (at_reco_partner_t){r, sym, y};
        pairs++;
        if (n == AT_RECO_BATCH) {
            at_reco__pairs(rp, x, sx, part, n, w, t);
            n = 0;
        }
    }
    if (n)
        at_reco__pairs(rp, x, sx, part, n, w, t);
}

void at_reco_observe(at_reco_part_t *rp, const at_profile_t *p, const at_pevent_t *ev)
{
    if (!ev->item.n && !ev->nitems)
        return;
    double w = at_profile_weight(&rp->pcfg, ev->type.s, ev->type.n);
    if (!(w > 0))
        return;
    pthread_rwlock_wrlock(&rp->lock);
    if (rp->clock == AT_PROFILE_NONE || ev->ts > rp->clock)
        __atomic_store_n(&rp->clock, ev->ts, __ATOMIC_RELAXED); /* at_reco_now reads it */
    if (ev->item.n)
        at_reco__touch(rp, p, ev->item, ev->category, w, ev->ts);
    for (size_t i = 0; i < ev->nitems; i++) {
        const at_pitem_t *pi = &ev->items[i];
        if (pi->item.n &&
            !(ev->item.n == pi->item.n && !memcmp(ev->item.s, pi->item.s, pi->item.n)))
            at_reco__touch(rp, p, pi->item, pi->category.n ? pi->category : ev->category, w,
                           ev->ts);
    }
    pthread_rwlock_unlock(&rp->lock);
}

/* ---- the catalog -------------------------------------------------------------------- */

static int at_reco__field_error(at_error_t *err, const char *field, const char *msg)
{
    return at_error_set(err, AT_EINVALID, "invalid_item", field, "%s", msg);
}

int at_reco_item_value(const char *json, size_t len, at_buf_t *out, char **id, size_t *id_len,
                       at_error_t *err)
{
    at_arena_t a;
    at_arena_init(&a, 0);
    at_json_t *v = NULL;
    int rc = at_json_parse_all(json, len, &a, 16, &v, err);
    if (rc < 0)
        goto done;
    if (v->type != AT_JSON_OBJECT) {
        rc = at_reco__field_error(err, NULL, "an item must be a JSON object");
        goto done;
    }
    const at_json_t *idv = NULL, *cat = NULL, *avail = NULL, *attrs = NULL;
    for (const at_json_t *m = v->child; m; m = m->next) {
        if ((m->key_len == 7 && !memcmp(m->key, "item_id", 7)) ||
            (m->key_len == 2 && !memcmp(m->key, "id", 2)))
            idv = m;
        else if (m->key_len == 8 && !memcmp(m->key, "category", 8))
            cat = m;
        else if (m->key_len == 9 && !memcmp(m->key, "available", 9))
            avail = m;
        else if (m->key_len == 10 && !memcmp(m->key, "attributes", 10))
            attrs = m;
        else {
            char f[64];
            size_t n = AT_MIN((size_t)m->key_len, sizeof f - 1);
            memcpy(f, m->key, n);
            f[n] = 0;
            rc = at_error_set(err, AT_EINVALID, "invalid_item", f,
                              "unknown field: an item has item_id, category, available and "
                              "attributes (put other data in attributes)");
            goto done;
        }
    }
    if (!idv || idv->type != AT_JSON_STRING || idv->len == 0 || idv->len > 1024) {
        rc = at_reco__field_error(err, "item_id", "item_id must be a string of 1 to 1024 bytes");
        goto done;
    }
    if (cat && cat->type != AT_JSON_STRING && cat->type != AT_JSON_NULL) {
        rc = at_reco__field_error(err, "category", "category must be a string");
        goto done;
    }
    if (cat && cat->type == AT_JSON_STRING && cat->len > 1024) {
        rc = at_reco__field_error(err, "category", "category is longer than 1024 bytes");
        goto done;
    }
    if (avail && avail->type != AT_JSON_TRUE && avail->type != AT_JSON_FALSE) {
        rc = at_reco__field_error(err, "available", "available must be true or false");
        goto done;
    }
    if (attrs && attrs->type != AT_JSON_OBJECT) {
        rc = at_reco__field_error(err, "attributes", "attributes must be an object");
        goto done;
    }
    at_buf_reset(out);
    at_json_w_raw(out, "{\"item_id\":", 11);
    at_json_w_str(out, idv->s, idv->len, (idv->flags & AT_JSON_F_ESC) != 0);
    if (cat && cat->type == AT_JSON_STRING) {
        at_json_w_raw(out, ",\"category\":", 12);
        at_json_w_str(out, cat->s, cat->len, (cat->flags & AT_JSON_F_ESC) != 0);
    }
    at_json_w_raw(out, ",\"available\":", 13);
    if (!avail || avail->type == AT_JSON_TRUE)
        at_json_w_raw(out, "true", 4);
    else
        at_json_w_raw(out, "false", 5);
    if (attrs) {
        at_json_w_raw(out, ",\"attributes\":", 14);
        at_json_w_value(out, attrs);
    }
    at_json_w_raw(out, "}", 1);
    *id = at_xstrndup(idv->s, idv->len);
    *id_len = idv->len;
done:
    at_arena_deinit(&a);
    return rc;
}

int at_reco_catalog(at_reco_part_t *rp, const char *json, size_t len, int64_t ts)
{
    at_arena_t a;
    at_arena_init(&a, 0);
    at_json_t *v = NULL;
    at_error_t err;
    int rc = at_json_parse_all(json, len, &a, 16, &v, &err);
    const at_json_t *idv =
        rc == 0 && v->type == AT_JSON_OBJECT ? at_json_get(v, "item_id", 7) : NULL;
    if (!idv || idv->type != AT_JSON_STRING || !idv->len) {
        at_arena_deinit(&a);
        return AT_EPARSE;
    }
    const at_json_t *cat = at_json_get(v, "category", 8), *avail = at_json_get(v, "available", 9),
                    *attrs = at_json_get(v, "attributes", 10);
    pthread_rwlock_wrlock(&rp->lock);
    uint32_t x = at_reco__get(rp, idv->s, idv->len);
    at_reco_item_t *it = &rp->items[x];
    if (cat && cat->type == AT_JSON_STRING)
        at_reco__set_category(rp, it, (at_pstr_t){cat->s, cat->len}, true);
    it->flags |= AT_RECO_F_CATALOG;
    if (avail && avail->type == AT_JSON_FALSE)
        it->flags |= AT_RECO_F_UNAVAILABLE;
    else
        it->flags &= (uint8_t)~AT_RECO_F_UNAVAILABLE;
    rp->bytes -= it->attrs_len;
    free(it->attrs);
    it->attrs = NULL;
    it->attrs_len = 0;
    if (attrs && attrs->type == AT_JSON_OBJECT) {
        it->attrs_len = attrs->end - attrs->off;
        it->attrs = at_xstrndup(json + attrs->off, it->attrs_len);
        rp->bytes += it->attrs_len;
    }
    it->updated = AT_MAX(it->updated, ts);
    at_reco__mark(rp, x);
    pthread_rwlock_unlock(&rp->lock);
    at_arena_deinit(&a);
    return 0;
}

/* ---- checkpoints and digests ------------------------------------------------------- */

static void at_reco__encode(const at_reco_item_t *it, at_buf_t *b)
{
    AT_ASSERT(at_buf_putc(b, AT_RECO_FORMAT) == 0);
    at_enc_str(b, it->id, it->id_len);
    at_enc_str(b, it->cat ? it->cat : "", it->cat_len);
    at_enc_str(b, it->attrs ? it->attrs : "", it->attrs_len);
    AT_ASSERT(at_buf_putc(b, (char)it->flags) == 0);
    at_enc_zigzag(b, it->base);
    at_enc_f32(b, it->pop);
    at_enc_zigzag(b, it->updated);
    for (int w = 0; w < AT_RECO_WINDOWS; w++) {
        at_enc_zigzag(b, it->tb[w] == INT64_MIN ? INT64_MIN + 1 : it->tb[w]);
        if (it->tb[w] != INT64_MIN)
            for (int k = 0; k < at_reco__wcount[w]; k++)
                at_enc_f32(b, it->tv[at_reco__woff[w] + k]);
    }
    at_enc_varint(b, it->nnb);
    for (uint16_t k = 0; k < it->nnb; k++) {
        at_enc_varint(b, it->nb[k].item);
        at_enc_f32(b, it->nb[k].v);
    }
}

static void at_reco__key(uint32_t i, char key[5])
{
    key[0] = AT_RECO_KEY;
    key[1] = (char)(i >> 24);
    key[2] = (char)(i >> 16);
    key[3] = (char)(i >> 8);
    key[4] = (char)i;
}

void at_reco_changes(at_reco_part_t *rp, bool all, uint8_t fmt, uint8_t kind, at_reco_kv_fn fn,
                     void *ud)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    uint32_t n = all ? rp->n : rp->ndirty;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t i = all ? j : rp->dirty[j];
        at_reco_item_t *it = &rp->items[i];
        it->dirty = false;
        at_buf_reset(&b);
        AT_ASSERT(at_buf_putc(&b, (char)fmt) == 0);
        AT_ASSERT(at_buf_putc(&b, (char)kind) == 0);
        at_reco__encode(it, &b);
        char key[5];
        at_reco__key(i, key);
        fn(ud, key, sizeof key, b.data, b.len);
    }
    for (uint32_t j = 0; all && j < rp->ndirty; j++)
        rp->items[rp->dirty[j]].dirty = false;
    rp->ndirty = 0;
    at_buf_deinit(&b);
}

int at_reco_restore(at_reco_part_t *rp, const char *key, size_t klen, const void *val, size_t vlen)
{
    const uint8_t *k = (const uint8_t *)key;
    if (klen != 5 || k[0] != (uint8_t)AT_RECO_KEY || vlen < 3)
        return AT_ECORRUPT;
    uint32_t i = (uint32_t)k[1] << 24 | (uint32_t)k[2] << 16 | (uint32_t)k[3] << 8 | k[4];
    at_dec_t d = {(const uint8_t *)val + 2, (const uint8_t *)val + vlen, false};
    if (*d.p++ != AT_RECO_FORMAT || i > (1u << 28))
        return AT_ECORRUPT;
    at_pstr_t id = at_dec_str(&d), cat = at_dec_str(&d), attrs = at_dec_str(&d);
    if (d.bad || !id.n || d.p >= d.end)
        return AT_ECORRUPT;
    uint8_t flags = *d.p++;
    int64_t base = at_dec_zigzag(&d);
    float pop = at_dec_f32(&d);
    int64_t updated = at_dec_zigzag(&d);
    at_reco_item_t tmp;
    memset(&tmp, 0, sizeof tmp);
    for (int w = 0; w < AT_RECO_WINDOWS; w++) {
        int64_t tb = at_dec_zigzag(&d);
        tmp.tb[w] = tb == INT64_MIN + 1 ? INT64_MIN : tb;
        if (tmp.tb[w] != INT64_MIN)
            for (int j = 0; j < at_reco__wcount[w]; j++)
                tmp.tv[at_reco__woff[w] + j] = at_dec_f32(&d);
    }
    uint64_t nnb = at_dec_varint(&d);
    if (d.bad || nnb > AT_RECO_MAX_NEIGHBOURS)
        return AT_ECORRUPT;
    at_reco_nb_t *nb = nnb ? at_xmalloc(nnb * sizeof *nb) : NULL;
    for (uint64_t j = 0; j < nnb; j++) {
        uint64_t ix = at_dec_varint(&d);
        nb[j] = (at_reco_nb_t){(uint32_t)ix, at_dec_f32(&d)};
        if (ix > (1u << 28))
            d.bad = true;
    }
    for (uint64_t j = 1; !d.bad && j < nnb; j++)
        if (nb[j - 1].item >= nb[j].item)
            d.bad = true; /* the lists are kept sorted by index, each neighbour once */
    if (d.bad || d.p != d.end) {
        free(nb);
        return AT_ECORRUPT;
    }
    pthread_rwlock_wrlock(&rp->lock);
    at_reco__grow_to(rp, i);
    at_reco_item_t *it = &rp->items[i];
    if (it->id)
        at_reco__item_free(it);
    if (rp->nby_sym) /* an index may now hold another item */
        memset(rp->by_sym, 0, rp->nby_sym * sizeof *rp->by_sym);
    at_reco__item_init(it, id.s, id.n);
    it->cat = cat.n ? at_xstrndup(cat.s, cat.n) : NULL;
    it->cat_len = cat.n;
    it->attrs = attrs.n ? at_xstrndup(attrs.s, attrs.n) : NULL;
    it->attrs_len = attrs.n;
    it->flags = flags;
    it->base = base;
    it->pop = pop;
    it->updated = updated;
    memcpy(it->tb, tmp.tb, sizeof it->tb);
    memcpy(it->tv, tmp.tv, sizeof it->tv);
    it->nb = nb;
    it->nnb = it->cap = (uint16_t)nnb;
    if (i >= rp->n)
        rp->n = i + 1;
    rp->bytes += sizeof *it + id.n + cat.n + attrs.n + nnb * sizeof *nb;
    if (updated != AT_PROFILE_NONE && (rp->clock == AT_PROFILE_NONE || updated > rp->clock))
        rp->clock = updated;
    /* the index is rebuilt as items come (a checkpoint gives them in any order) */
    uint32_t ns = rp->nslots ? rp->nslots : 256;
    while (rp->n * 2 > ns)
        ns *= 2;
    if (ns != rp->nslots)
        at_reco__rehash(rp, ns);
    else
        at_reco__slot_put(rp->slots, rp->nslots, it, i);
    pthread_rwlock_unlock(&rp->lock);
    return 0;
}

uint64_t at_reco_digest(at_reco_part_t *rp)
{
    uint64_t d = 0;
    at_buf_t b;
    at_buf_init(&b, 0);
    for (uint32_t i = 0; i < rp->n; i++) {
        if (!rp->items[i].id)
            continue;
        at_buf_reset(&b);
        char key[5];
        at_reco__key(i, key);
        AT_ASSERT(at_buf_append(&b, key, sizeof key) == 0);
        at_reco__encode(&rp->items[i], &b);
        d += at_hash64(b.data, b.len);
    }
    at_buf_deinit(&b);
    return d;
}

size_t at_reco_items(at_reco_part_t *rp)
{
    pthread_rwlock_rdlock(&rp->lock);
    size_t n = rp->n;
    pthread_rwlock_unlock(&rp->lock);
    return n;
}

size_t at_reco_bytes(at_reco_part_t *rp)
{
    pthread_rwlock_rdlock(&rp->lock);
    size_t n = rp->bytes + (size_t)rp->nslots * sizeof(uint32_t);
    pthread_rwlock_unlock(&rp->lock);
    return n;
}
