/* keyed.c - keyed state: slots, a hash index over their keys, one
 * event-time timer per slot in an indexed binary heap, and dirty tracking.
 *
 * Memory per key: a 16-byte slot (the key's length is in its block, the
 * flags in the top bits of the value's length), about 11 bytes of index
 * (8-byte buckets at most 3/4 full), the key and value in one block, and 12
 * bytes of heap entry while a timer is set (two arrays: no padding). The
 * auxiliary pointers, which few slots have at a time (the users with events
 * waiting in the reorder buffer), live in a small table of their own.
 *
 * THREAD SAFETY: one thread (the partition's shard).
 */
#include "at_stream.h"

#include <stdlib.h>
#include <string.h>

enum {
    AT_KS_LIVE = 1,
    AT_KS_DELETED = 2, /* tombstone until the next clean */
    AT_KS_DIRTY = 4,
    AT_KS_FREE = 8,
    AT_KS_AUX = 16, /* has an entry in the aux table */
};

/* 16 bytes: the key's length is the block's first bytes (a varint), the
 * flags the top bits of vlen. */
typedef struct at_kslot {
    uint8_t *data; /* varint klen, the key, the value (owned: at_keyed__alloc) */
    uint32_t vlen; /* the top AT_KS_FLAG_BITS bits: AT_KS_* */
    uint32_t heap; /* timer heap position; next free slot while free */
} at_kslot_t;

#define AT_KS_FLAG_BITS 5
#define AT_KS_VLEN_MAX ((1u << (32 - AT_KS_FLAG_BITS)) - 1)

typedef struct at_kaux {
    uint32_t slot; /* UINT32_MAX: empty */
    void *p;
} at_kaux_t;

struct at_keyed {
    at_kslot_t *slots;
    uint32_t nslots, capslots;
    uint32_t free_head; /* AT_KEYED_NONE when no free slot */
    uint64_t *idx;      /* 0 empty; else (hash >> 32) << 32 | (slot + 1) */
    size_t idx_cap, idx_used;
    size_t live;
    /* the timer heap, as two arrays: 12 bytes an entry, not 16 */
    int64_t *heap_dl;
    uint32_t *heap_slot;
    size_t nheap, capheap;
    uint32_t *dirty;
    size_t ndirty, capdirty;
    size_t block_bytes; /* of the slots' blocks */
    /* aux pointers by slot: open addressing, at most half full */
    at_kaux_t *aux;
    size_t aux_cap, aux_used;
};

static inline uint32_t at_ks_flags(const at_kslot_t *s)
{
    return s->vlen >> (32 - AT_KS_FLAG_BITS);
}

static inline uint32_t at_ks_vlen(const at_kslot_t *s)
{
    return s->vlen & AT_KS_VLEN_MAX;
}

static inline void at_ks_set_flags(at_kslot_t *s, uint32_t f)
{
    s->vlen = (s->vlen & AT_KS_VLEN_MAX) | f << (32 - AT_KS_FLAG_BITS);
}

static inline void at_ks_set_vlen(at_kslot_t *s, uint32_t n)
{
    s->vlen = (s->vlen & ~AT_KS_VLEN_MAX) | n;
}

/* ---- blocks ------------------------------------------------------------------ */

static uint8_t *at_keyed__alloc(at_keyed_t *t, size_t n)
{
    t->block_bytes += n;
    return at_xmalloc(n);
}

static void at_keyed__release(at_keyed_t *t, uint8_t *b, size_t n)
{
    if (!b)
        return;
    t->block_bytes -= n;
    free(b);
}

/* Slot s's block from old to n bytes. */
static void at_keyed__resize(at_keyed_t *t, at_kslot_t *s, size_t old, size_t n)
{
    t->block_bytes = t->block_bytes - old + n;
    s->data = at_xrealloc(s->data, n);
}

/* ---- aux pointers -------------------------------------------------------------- */

static size_t at_keyed__aux_find(const at_keyed_t *t, uint32_t slot)
{
    size_t mask = t->aux_cap - 1;
    for (size_t i = (slot * (size_t)0x9E3779B1u) & mask;; i = (i + 1) & mask)
        if (t->aux[i].slot == slot || t->aux[i].slot == UINT32_MAX)
            return i;
}

static void at_keyed__aux_put(at_keyed_t *t, uint32_t slot, void *p)
{
    if ((t->aux_used + 1) * 2 > t->aux_cap) {
        at_kaux_t *old = t->aux;
        size_t oc = t->aux_cap;
        t->aux_cap = oc ? oc * 2 : 64;
        t->aux = at_xmalloc(t->aux_cap * sizeof *t->aux);
        for (size_t i = 0; i < t->aux_cap; i++)
            t->aux[i] = (at_kaux_t){UINT32_MAX, NULL};
        for (size_t i = 0; i < oc; i++)
            if (old[i].slot != UINT32_MAX)
                t->aux[at_keyed__aux_find(t, old[i].slot)] = old[i];
        free(old);
    }
    size_t i = at_keyed__aux_find(t, slot);
    if (t->aux[i].slot == UINT32_MAX)
        t->aux_used++;
    t->aux[i] = (at_kaux_t){slot, p};
}

static void at_keyed__aux_del(at_keyed_t *t, uint32_t slot)
{
    size_t mask = t->aux_cap - 1, i = at_keyed__aux_find(t, slot);
    if (t->aux[i].slot == UINT32_MAX)
        return;
    t->aux[i] = (at_kaux_t){UINT32_MAX, NULL};
    t->aux_used--;
    /* backward shift: entries after the hole that may move into it */
    for (size_t j = (i + 1) & mask; t->aux[j].slot != UINT32_MAX; j = (j + 1) & mask) {
        size_t home = (t->aux[j].slot * (size_t)0x9E3779B1u) & mask;
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->aux[i] = t->aux[j];
            t->aux[j] = (at_kaux_t){UINT32_MAX, NULL};
            i = j;
        }
    }
}

/* The key of slot s (its bytes, its length in *klen): after the varint. */
static inline const uint8_t *at_ks_key(const at_kslot_t *s, uint32_t *klen)
{
    const uint8_t *p = s->data;
    if (p[0] < 0x80) {
        *klen = p[0];
        return p + 1;
    }
    uint32_t n = 0;
    int shift = 0;
    while (*p & 0x80) {
        n |= (uint32_t)(*p++ & 0x7f) << shift;
        shift += 7;
    }
    n |= (uint32_t)*p++ << shift;
    *klen = n;
    return p;
}

/* Bytes of slot s's block: the varint, the key and the value. */
static inline size_t at_ks_block(const at_kslot_t *s)
{
    uint32_t kl;
    const uint8_t *k = at_ks_key(s, &kl);
    return (size_t)(k - s->data) + kl + at_ks_vlen(s);
}

at_keyed_t *at_keyed_new(void)
{
    at_keyed_t *t = at_xcalloc(1, sizeof *t);
    t->free_head = AT_KEYED_NONE;
    t->idx_cap = 64;
    t->idx = at_xcalloc(t->idx_cap, sizeof *t->idx);
    return t;
}

void at_keyed_free(at_keyed_t *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->nslots; i++)
        free(t->slots[i].data);
    free(t->slots);
    free(t->idx);
    free(t->heap_dl);
    free(t->heap_slot);
    free(t->dirty);
    free(t->aux);
    free(t);
}

size_t at_keyed_count(const at_keyed_t *t)
{
    return t->live;
}

static uint64_t at_keyed__hash(const char *key, size_t n)
{
    return at_hash64(key, n);
}

static uint64_t at_keyed__slot_hash(const at_kslot_t *s)
{
    uint32_t kl;
    const uint8_t *k = at_ks_key(s, &kl);
    return at_keyed__hash((const char *)k, kl);
}

static bool at_keyed__is(const at_keyed_t *t, uint32_t slot, const char *key, size_t n)
{
    uint32_t kl;
    const uint8_t *k = at_ks_key(&t->slots[slot], &kl);
    return kl == n && memcmp(k, key, n) == 0;
}

/* The bucket holding key, or the empty bucket where it would go. */
static size_t at_keyed__probe(const at_keyed_t *t, const char *key, size_t n, uint64_t h)
{
    size_t mask = t->idx_cap - 1, b = (size_t)h & mask;
    uint64_t frag = h >> 32;
    for (;;) {
        uint64_t e = t->idx[b];
        if (!e)
            return b;
        if ((e >> 32) == frag && at_keyed__is(t, (uint32_t)(e & 0xffffffffu) - 1, key, n))
            return b;
        b = (b + 1) & mask;
    }
}

static void at_keyed__grow_index(at_keyed_t *t)
{
    size_t old_cap = t->idx_cap;
    uint64_t *old = t->idx;
    t->idx_cap *= 2;
    t->idx = at_xcalloc(t->idx_cap, sizeof *t->idx);
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i])
            continue;
        uint64_t h = at_keyed__slot_hash(&t->slots[(uint32_t)(old[i] & 0xffffffffu) - 1]);
        size_t mask = t->idx_cap - 1, b = (size_t)h & mask;
        while (t->idx[b])
            b = (b + 1) & mask;
        t->idx[b] = old[i];
    }
    free(old);
}

/* Removes bucket b with backward-shift deletion (linear probing). */
static void at_keyed__unindex(at_keyed_t *t, size_t b)
{
    size_t mask = t->idx_cap - 1;
    t->idx[b] = 0;
    t->idx_used--;
    for (size_t j = (b + 1) & mask; t->idx[j]; j = (j + 1) & mask) {
        const at_kslot_t *s = &t->slots[(uint32_t)(t->idx[j] & 0xffffffffu) - 1];
        size_t home = (size_t)at_keyed__slot_hash(s) & mask;
        /* the entry at j may move to the hole at b if its home is not in (b, j] */
        bool stays = b <= j ? (home > b && home <= j) : (home > b || home <= j);
        if (!stays) {
            t->idx[b] = t->idx[j];
            t->idx[j] = 0;
            b = j;
        }
    }
}

uint32_t at_keyed_find(const at_keyed_t *t, const char *key, size_t n)
{
    uint64_t h = at_keyed__hash(key, n);
    uint64_t e = t->idx[at_keyed__probe(t, key, n, h)];
    if (!e)
        return AT_KEYED_NONE;
    uint32_t slot = (uint32_t)(e & 0xffffffffu) - 1;
    return (at_ks_flags(&t->slots[slot]) & AT_KS_LIVE) ? slot : AT_KEYED_NONE;
}

static void at_keyed__mark_dirty(at_keyed_t *t, uint32_t slot)
{
    at_kslot_t *s = &t->slots[slot];
    if (at_ks_flags(s) & AT_KS_DIRTY)
        return;
    at_ks_set_flags(s, at_ks_flags(s) | AT_KS_DIRTY);
    if (t->ndirty == t->capdirty) {
        t->capdirty = t->capdirty ? t->capdirty * 2 : 256;
        t->dirty = at_xrealloc(t->dirty, t->capdirty * sizeof *t->dirty);
    }
    t->dirty[t->ndirty++] = slot;
}

static uint32_t at_keyed__new_slot(at_keyed_t *t)
{
    if (t->free_head != AT_KEYED_NONE) {
        uint32_t slot = t->free_head;
        t->free_head = t->slots[slot].heap;
        return slot;
    }
    if (t->nslots == t->capslots) {
        AT_ASSERT(t->capslots < UINT32_MAX / 2);
        t->capslots = t->capslots ? t->capslots * 2 : 64;
        t->slots = at_xrealloc(t->slots, (size_t)t->capslots * sizeof *t->slots);
    }
    return t->nslots++;
}

uint32_t at_keyed_get(at_keyed_t *t, const char *key, size_t n, bool *created)
{
    AT_ASSERT(n <= UINT32_MAX / 2);
    uint64_t h = at_keyed__hash(key, n);
    size_t b = at_keyed__probe(t, key, n, h);
    if (t->idx[b]) {
        uint32_t slot = (uint32_t)(t->idx[b] & 0xffffffffu) - 1;
        at_kslot_t *s = &t->slots[slot];
        uint32_t f = at_ks_flags(s);
        if (created)
            *created = !(f & AT_KS_LIVE);
        if (!(f & AT_KS_LIVE)) { /* revive a tombstone */
            at_ks_set_flags(s, (f & ~(uint32_t)AT_KS_DELETED) | AT_KS_LIVE);
            t->live++;
            at_keyed__mark_dirty(t, slot);
        }
        return slot;
    }
    uint32_t slot = at_keyed__new_slot(t);
    at_kslot_t *s = &t->slots[slot];
    uint8_t hdr[5];
    size_t hl = 0;
    for (size_t x = n;; x >>= 7) {
        hdr[hl++] = (uint8_t)((x & 0x7f) | (x >= 0x80 ? 0x80 : 0));
        if (x < 0x80)
            break;
    }
    s->data = at_keyed__alloc(t, hl + n);
    memcpy(s->data, hdr, hl);
    if (n)
        memcpy(s->data + hl, key, n);
    s->vlen = 0;
    s->heap = AT_KEYED_NONE;
    at_ks_set_flags(s, AT_KS_LIVE);
    t->idx[b] = ((h >> 32) << 32) | ((uint64_t)slot + 1);
    t->idx_used++;
    t->live++;
    at_keyed__mark_dirty(t, slot);
    if (t->idx_used * 4 > t->idx_cap * 3)
        at_keyed__grow_index(t);
    if (created)
        *created = true;
    return slot;
}

const char *at_keyed_key(const at_keyed_t *t, uint32_t slot, size_t *n)
{
    uint32_t kl;
    const uint8_t *k = at_ks_key(&t->slots[slot], &kl);
    *n = kl;
    return (const char *)k;
}

const uint8_t *at_keyed_value(const at_keyed_t *t, uint32_t slot, size_t *n)
{
    const at_kslot_t *s = &t->slots[slot];
    uint32_t kl;
    const uint8_t *k = at_ks_key(s, &kl);
    *n = at_ks_vlen(s);
    return k + kl;
}

void at_keyed_set(at_keyed_t *t, uint32_t slot, const void *v, size_t n)
{
    at_kslot_t *s = &t->slots[slot];
    AT_ASSERT((at_ks_flags(s) & AT_KS_LIVE) && n <= AT_KS_VLEN_MAX);
    uint32_t kl;
    size_t head = (size_t)(at_ks_key(s, &kl) - s->data) + kl, vl = at_ks_vlen(s);
    if (n != vl) {
        at_keyed__resize(t, s, head + vl, head + n);
        at_ks_set_vlen(s, (uint32_t)n);
    }
    if (n)
        memcpy(s->data + head, v, n);
    at_keyed__mark_dirty(t, slot);
}

bool at_keyed_deleted(const at_keyed_t *t, uint32_t slot)
{
    return !(at_ks_flags(&t->slots[slot]) & AT_KS_LIVE);
}

void *at_keyed_aux(const at_keyed_t *t, uint32_t slot)
{
    if (!(at_ks_flags(&t->slots[slot]) & AT_KS_AUX))
        return NULL;
    return t->aux[at_keyed__aux_find(t, slot)].p;
}

void at_keyed_set_aux(at_keyed_t *t, uint32_t slot, void *aux)
{
    at_kslot_t *s = &t->slots[slot];
    uint32_t f = at_ks_flags(s);
    if (aux) {
        at_keyed__aux_put(t, slot, aux);
        at_ks_set_flags(s, f | AT_KS_AUX);
    } else if (f & AT_KS_AUX) {
        at_keyed__aux_del(t, slot);
        at_ks_set_flags(s, f & ~(uint32_t)AT_KS_AUX);
    }
}

/* ---- timers: an indexed binary heap ordered by (deadline, key) -------------- */

static bool at_keyed__before(const at_keyed_t *t, int64_t da, uint32_t a, int64_t db, uint32_t b)
{
    if (da != db)
        return da < db;
    uint32_t xl, yl;
    const uint8_t *x = at_ks_key(&t->slots[a], &xl), *y = at_ks_key(&t->slots[b], &yl);
    size_t n = AT_MIN(xl, yl);
    int c = memcmp(x, y, n);
    return c ? c < 0 : xl < yl;
}

static void at_keyed__hset(at_keyed_t *t, size_t i, int64_t dl, uint32_t slot)
{
    t->heap_dl[i] = dl;
    t->heap_slot[i] = slot;
    t->slots[slot].heap = (uint32_t)i;
}

static void at_keyed__up(at_keyed_t *t, size_t i)
{
    int64_t dl = t->heap_dl[i];
    uint32_t slot = t->heap_slot[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!at_keyed__before(t, dl, slot, t->heap_dl[p], t->heap_slot[p]))
            break;
        at_keyed__hset(t, i, t->heap_dl[p], t->heap_slot[p]);
        i = p;
    }
    at_keyed__hset(t, i, dl, slot);
}

static void at_keyed__down(at_keyed_t *t, size_t i)
{
    int64_t dl = t->heap_dl[i];
    uint32_t slot = t->heap_slot[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->nheap)
            break;
        if (c + 1 < t->nheap && at_keyed__before(t, t->heap_dl[c + 1], t->heap_slot[c + 1],
                                                 t->heap_dl[c], t->heap_slot[c]))
            c++;
        if (!at_keyed__before(t, t->heap_dl[c], t->heap_slot[c], dl, slot))
            break;
        at_keyed__hset(t, i, t->heap_dl[c], t->heap_slot[c]);
        i = c;
    }
    at_keyed__hset(t, i, dl, slot);
}

static void at_keyed__hremove(at_keyed_t *t, uint32_t slot)
{
    size_t i = t->slots[slot].heap;
    t->slots[slot].heap = AT_KEYED_NONE;
    t->nheap--;
    if (i == t->nheap)
        return;
    uint32_t last = t->heap_slot[t->nheap];
    at_keyed__hset(t, i, t->heap_dl[t->nheap], last);
    at_keyed__down(t, i);
    at_keyed__up(t, t->slots[last].heap);
}

void at_keyed_timer_set(at_keyed_t *t, uint32_t slot, int64_t deadline)
{
    at_kslot_t *s = &t->slots[slot];
    if (s->heap != AT_KEYED_NONE) {
        if (deadline == AT_TIMER_NONE) {
            at_keyed__hremove(t, slot);
            return;
        }
        size_t i = s->heap;
        int64_t old = t->heap_dl[i];
        t->heap_dl[i] = deadline;
        if (deadline < old)
            at_keyed__up(t, i);
        else if (deadline > old)
            at_keyed__down(t, i);
        return;
    }
    if (deadline == AT_TIMER_NONE)
        return;
    if (t->nheap == t->capheap) {
        t->capheap = t->capheap ? t->capheap * 2 : 64;
        t->heap_dl = at_xrealloc(t->heap_dl, t->capheap * sizeof *t->heap_dl);
        t->heap_slot = at_xrealloc(t->heap_slot, t->capheap * sizeof *t->heap_slot);
    }
    t->heap_dl[t->nheap] = deadline;
    t->heap_slot[t->nheap] = slot;
    s->heap = (uint32_t)t->nheap;
    t->nheap++;
    at_keyed__up(t, t->nheap - 1);
}

int64_t at_keyed_timer_get(const at_keyed_t *t, uint32_t slot)
{
    const at_kslot_t *s = &t->slots[slot];
    return s->heap == AT_KEYED_NONE ? AT_TIMER_NONE : t->heap_dl[s->heap];
}

uint32_t at_keyed_timer_first(const at_keyed_t *t, int64_t *dl)
{
    if (!t->nheap) {
        *dl = AT_TIMER_NONE;
        return AT_KEYED_NONE;
    }
    *dl = t->heap_dl[0];
    return t->heap_slot[0];
}

size_t at_keyed_timers(const at_keyed_t *t)
{
    return t->nheap;
}

void at_keyed_delete(at_keyed_t *t, uint32_t slot)
{
    at_kslot_t *s = &t->slots[slot];
    if (!(at_ks_flags(s) & AT_KS_LIVE))
        return;
    at_keyed_timer_set(t, slot, AT_TIMER_NONE);
    uint32_t vl = at_ks_vlen(s);
    if (vl) {
        uint32_t kl;
        size_t head = (size_t)(at_ks_key(s, &kl) - s->data) + kl;
        at_keyed__resize(t, s, head + vl, head);
        at_ks_set_vlen(s, 0);
    }
    at_keyed_set_aux(t, slot, NULL);
    at_ks_set_flags(s, (at_ks_flags(s) & ~(uint32_t)AT_KS_LIVE) | AT_KS_DELETED);
    t->live--;
    at_keyed__mark_dirty(t, slot);
}

/* ---- checkpoints and iteration ---------------------------------------------- */

size_t at_keyed_dirty(const at_keyed_t *t, const uint32_t **slots)
{
    *slots = t->dirty;
    return t->ndirty;
}

void at_keyed_clean(at_keyed_t *t)
{
    for (size_t i = 0; i < t->ndirty; i++) {
        uint32_t slot = t->dirty[i];
        at_kslot_t *s = &t->slots[slot];
        uint32_t f = at_ks_flags(s) & ~(uint32_t)AT_KS_DIRTY;
        at_ks_set_flags(s, f);
        if (!(f & AT_KS_DELETED))
            continue;
        uint32_t kl;
        const uint8_t *k = at_ks_key(s, &kl);
        uint64_t h = at_keyed__hash((const char *)k, kl);
        size_t b = at_keyed__probe(t, (const char *)k, kl, h);
        AT_ASSERT(t->idx[b]);
        at_keyed__unindex(t, b);
        at_keyed__release(t, s->data, at_ks_block(s));
        s->data = NULL;
        s->vlen = 0;
        at_ks_set_flags(s, AT_KS_FREE);
        s->heap = t->free_head;
        t->free_head = slot;
    }
    t->ndirty = 0;
}

uint32_t at_keyed_next(const at_keyed_t *t, uint32_t *pos)
{
    while (*pos < t->nslots) {
        uint32_t i = (*pos)++;
        if (at_ks_flags(&t->slots[i]) & AT_KS_LIVE)
            return i;
    }
    return AT_KEYED_NONE;
}

size_t at_keyed_bytes(const at_keyed_t *t)
{
    return (size_t)t->capslots * sizeof(at_kslot_t) + t->idx_cap * sizeof(uint64_t) +
           t->capheap * (sizeof(int64_t) + sizeof(uint32_t)) + t->capdirty * sizeof(uint32_t) +
           t->aux_cap * sizeof(at_kaux_t) + t->block_bytes;
}
