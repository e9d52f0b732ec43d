/* keyed.c - keyed state: slots, a hash index over their keys, one
 * event-time timer per slot in an indexed binary heap, and dirty tracking.
 *
 * Memory per key: a 32-byte slot, about 11 bytes of index (8-byte buckets at
 * most 3/4 full), the key and value in one allocation, and 16 bytes of heap
 * entry while a timer is set.
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
};

typedef struct at_kslot {
    uint8_t *data; /* key bytes, then value bytes (owned) */
    uint32_t klen, vlen;
    uint32_t heap;  /* timer heap position; next free slot while free */
    uint32_t flags; /* AT_KS_* */
    void *aux;
} at_kslot_t;

typedef struct at_kheap {
    int64_t dl;
    uint32_t slot;
} at_kheap_t;

struct at_keyed {
    at_kslot_t *slots;
    uint32_t nslots, capslots;
    uint32_t free_head; /* AT_KEYED_NONE when no free slot */
    uint64_t *idx;      /* 0 empty; else (hash >> 32) << 32 | (slot + 1) */
    size_t idx_cap, idx_used;
    size_t live;
    at_kheap_t *heap;
    size_t nheap, capheap;
    uint32_t *dirty;
    size_t ndirty, capdirty;
    size_t value_bytes;
};

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
    free(t->heap);
    free(t->dirty);
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

static bool at_keyed__is(const at_keyed_t *t, uint32_t slot, const char *key, size_t n)
{
    const at_kslot_t *s = &t->slots[slot];
    return s->klen == n && memcmp(s->data, key, n) == 0;
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
        const at_kslot_t *s = &t->slots[(uint32_t)(old[i] & 0xffffffffu) - 1];
        uint64_t h = at_keyed__hash((const char *)s->data, s->klen);
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
        size_t home = (size_t)at_keyed__hash((const char *)s->data, s->klen) & mask;
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
    return (t->slots[slot].flags & AT_KS_LIVE) ? slot : AT_KEYED_NONE;
}

static void at_keyed__mark_dirty(at_keyed_t *t, uint32_t slot)
{
    at_kslot_t *s = &t->slots[slot];
    if (s->flags & AT_KS_DIRTY)
        return;
    s->flags |= AT_KS_DIRTY;
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
        if (created)
            *created = !(s->flags & AT_KS_LIVE);
        if (!(s->flags & AT_KS_LIVE)) { /* revive a tombstone */
            s->flags = (s->flags & ~(uint32_t)AT_KS_DELETED) | AT_KS_LIVE;
            t->live++;
            at_keyed__mark_dirty(t, slot);
        }
        return slot;
    }
    uint32_t slot = at_keyed__new_slot(t);
    at_kslot_t *s = &t->slots[slot];
    memset(s, 0, sizeof *s);
    s->data = at_xmalloc(n ? n : 1);
    memcpy(s->data, key, n);
    s->klen = (uint32_t)n;
    s->heap = AT_KEYED_NONE;
    s->flags = AT_KS_LIVE;
    t->value_bytes += n;
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
    const at_kslot_t *s = &t->slots[slot];
    *n = s->klen;
    return (const char *)s->data;
}

const uint8_t *at_keyed_value(const at_keyed_t *t, uint32_t slot, size_t *n)
{
    const at_kslot_t *s = &t->slots[slot];
    *n = s->vlen;
    return s->data + s->klen;
}

void at_keyed_set(at_keyed_t *t, uint32_t slot, const void *v, size_t n)
{
    at_kslot_t *s = &t->slots[slot];
    AT_ASSERT((s->flags & AT_KS_LIVE) && n <= UINT32_MAX / 2);
    if (n != s->vlen) {
        s->data = at_xrealloc(s->data, s->klen + n + (s->klen + n == 0));
        t->value_bytes = t->value_bytes - s->vlen + n;
        s->vlen = (uint32_t)n;
    }
    if (n)
        memcpy(s->data + s->klen, v, n);
    at_keyed__mark_dirty(t, slot);
}

bool at_keyed_deleted(const at_keyed_t *t, uint32_t slot)
{
    return !(t->slots[slot].flags & AT_KS_LIVE);
}

void *at_keyed_aux(const at_keyed_t *t, uint32_t slot)
{
    return t->slots[slot].aux;
}

void at_keyed_set_aux(at_keyed_t *t, uint32_t slot, void *aux)
{
    t->slots[slot].aux = aux;
}

/* ---- timers: an indexed binary heap ordered by (deadline, key) -------------- */

static bool at_keyed__before(const at_keyed_t *t, const at_kheap_t *a, const at_kheap_t *b)
{
    if (a->dl != b->dl)
        return a->dl < b->dl;
    const at_kslot_t *x = &t->slots[a->slot], *y = &t->slots[b->slot];
    size_t n = AT_MIN(x->klen, y->klen);
    int c = memcmp(x->data, y->data, n);
    return c ? c < 0 : x->klen < y->klen;
}

static void at_keyed__hset(at_keyed_t *t, size_t i, at_kheap_t e)
{
    t->heap[i] = e;
    t->slots[e.slot].heap = (uint32_t)i;
}

static void at_keyed__up(at_keyed_t *t, size_t i)
{
    at_kheap_t e = t->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!at_keyed__before(t, &e, &t->heap[p]))
            break;
        at_keyed__hset(t, i, t->heap[p]);
        i = p;
    }
    at_keyed__hset(t, i, e);
}

static void at_keyed__down(at_keyed_t *t, size_t i)
{
    at_kheap_t e = t->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->nheap)
            break;
        if (c + 1 < t->nheap && at_keyed__before(t, &t->heap[c + 1], &t->heap[c]))
            c++;
        if (!at_keyed__before(t, &t->heap[c], &e))
            break;
        at_keyed__hset(t, i, t->heap[c]);
        i = c;
    }
    at_keyed__hset(t, i, e);
}

static void at_keyed__hremove(at_keyed_t *t, uint32_t slot)
{
    size_t i = t->slots[slot].heap;
    t->slots[slot].heap = AT_KEYED_NONE;
    t->nheap--;
    if (i == t->nheap)
        return;
    at_kheap_t last = t->heap[t->nheap];
    at_keyed__hset(t, i, last);
    at_keyed__down(t, i);
    at_keyed__up(t, t->slots[last.slot].heap);
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
        int64_t old = t->heap[i].dl;
        t->heap[i].dl = deadline;
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
        t->heap = at_xrealloc(t->heap, t->capheap * sizeof *t->heap);
    }
    t->heap[t->nheap] = (at_kheap_t){deadline, slot};
    s->heap = (uint32_t)t->nheap;
    t->nheap++;
    at_keyed__up(t, t->nheap - 1);
}

int64_t at_keyed_timer_get(const at_keyed_t *t, uint32_t slot)
{
    const at_kslot_t *s = &t->slots[slot];
    return s->heap == AT_KEYED_NONE ? AT_TIMER_NONE : t->heap[s->heap].dl;
}

uint32_t at_keyed_timer_first(const at_keyed_t *t, int64_t *dl)
{
    if (!t->nheap) {
        *dl = AT_TIMER_NONE;
        return AT_KEYED_NONE;
    }
    *dl = t->heap[0].dl;
    return t->heap[0].slot;
}

size_t at_keyed_timers(const at_keyed_t *t)
{
    return t->nheap;
}

void at_keyed_delete(at_keyed_t *t, uint32_t slot)
{
    at_kslot_t *s = &t->slots[slot];
    if (!(s->flags & AT_KS_LIVE))
        return;
    at_keyed_timer_set(t, slot, AT_TIMER_NONE);
    if (s->vlen) {
        t->value_bytes -= s->vlen;
        s->data = at_xrealloc(s->data, s->klen ? s->klen : 1);
        s->vlen = 0;
    }
    s->flags = (s->flags & ~(uint32_t)AT_KS_LIVE) | AT_KS_DELETED;
    s->aux = NULL;
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
        s->flags &= ~(uint32_t)AT_KS_DIRTY;
        if (!(s->flags & AT_KS_DELETED))
            continue;
        uint64_t h = at_keyed__hash((const char *)s->data, s->klen);
        size_t b = at_keyed__probe(t, (const char *)s->data, s->klen, h);
        AT_ASSERT(t->idx[b]);
        at_keyed__unindex(t, b);
        t->value_bytes -= s->klen;
        free(s->data);
        memset(s, 0, sizeof *s);
        s->flags = AT_KS_FREE;
        s->heap = t->free_head;
        t->free_head = slot;
    }
    t->ndirty = 0;
}

uint32_t at_keyed_next(const at_keyed_t *t, uint32_t *pos)
{
    while (*pos < t->nslots) {
        uint32_t i = (*pos)++;
        if (t->slots[i].flags & AT_KS_LIVE)
            return i;
    }
    return AT_KEYED_NONE;
}

size_t at_keyed_bytes(const at_keyed_t *t)
{
    return (size_t)t->capslots * sizeof(at_kslot_t) + t->idx_cap * sizeof(uint64_t) +
           t->capheap * sizeof(at_kheap_t) + t->capdirty * sizeof(uint32_t) + t->value_bytes;
}
