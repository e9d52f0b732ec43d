/* dedup.c - exact deduplication by (partition, event_id) over a horizon in
 * receive time, capped per partition (DESIGN.md §6).
 *
 * Per partition: a FIFO ring of entries in insertion order (so expiry and
 * eviction pop from its head), the ids' bytes in a byte ring in the same
 * order, and an open-addressing hash table (linear probing, backward-shift
 * deletion) from at_hash64(id) to ring positions. A check allocates
 * nothing beyond the amortized growth of these three arrays.
 *
 * Memory per id: its bytes (the byte ring grows to 1.5 times what it
 * holds), a 16-byte entry and an 8-byte slot in a table at most half full:
 * about 60 bytes for 20-byte ids. An entry keeps no hash: a table slot
 * keeps the hash's high half (so probes that cannot match never touch the
 * ring), and the few places that need the whole hash (moving a slot,
 * rehashing, removing) compute it again from the bytes.
 *
 * THREAD SAFETY: one thread (the log writer) owns an at_dedup_t.
 */
#include "ingest_int.h"

#include <stdlib.h>
#include <string.h>

#define AT_DEDUP_DEAD 0x80000000u /* len bit: forgotten */

typedef struct at_dedup_ent {
    int64_t recv_ms;
    uint32_t off; /* id bytes in the byte ring */
    uint32_t len; /* id length, | AT_DEDUP_DEAD once forgotten */
} at_dedup_ent_t;

typedef struct at_dedup_part {
    at_dedup_ent_t *ents; /* ring of ecap entries (a power of 2) */
    size_t ecap;
    uint64_t head, tail; /* sequence numbers; entry seq is at ents[seq & (ecap - 1)] */
    uint64_t *slots;     /* hash table: hash tag << 32 | ring index + 1; 0 = empty */
    size_t nslots;       /* a power of 2, at least twice live */
    size_t live;
    char *bytes; /* byte ring of bcap bytes */
    size_t bcap;
    size_t bhead, btail; /* used: [bhead, btail), or wrapped [bhead, bcap) + [0, btail) */
} at_dedup_part_t;

struct at_dedup {
    int partitions;
    int64_t horizon_ms;
    uint64_t cap; /* entries per partition */
    uint64_t evicted;
    uint64_t size;
    at_dedup_part_t *parts;
};

/* Returns an owned dedup index; free with at_dedup_free(). Thread: any. */
at_dedup_t *at_dedup_new(int partitions, int64_t horizon_ms, int64_t max_per_partition)
{
    AT_ASSERT(partitions > 0);
    at_dedup_t *d = at_xcalloc(1, sizeof *d);
    d->partitions = partitions;
    d->horizon_ms = horizon_ms > 0 ? horizon_ms : 0;
    d->cap = max_per_partition > 0 ? (uint64_t)AT_MIN(max_per_partition, INT32_MAX) : 1;
    d->parts = at_xcalloc((size_t)partitions, sizeof *d->parts);
    return d;
}

/* Frees d; NULL is fine. */
void at_dedup_free(at_dedup_t *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->partitions; i++) {
        free(d->parts[i].ents);
        free(d->parts[i].slots);
        free(d->parts[i].bytes);
    }
    free(d->parts);
    free(d);
}

static at_dedup_ent_t *at_dedup__ent(const at_dedup_part_t *pt, uint64_t seq)
{
    return &pt->ents[seq & (pt->ecap - 1)];
}

/* A table slot: the high half of the hash (so probes that cannot match
 * never touch the ring) and the ring index + 1. */
static uint64_t at_dedup__slot(uint64_t h, size_t idx)
{
    return (h & 0xffffffff00000000ULL) | (uint64_t)(idx + 1);
}

static size_t at_dedup__idx(uint64_t slot)
{
    return (size_t)(uint32_t)slot - 1;
}

/* The whole hash of the id of the entry at ring position idx. */
static uint64_t at_dedup__hash(const at_dedup_part_t *pt, size_t idx)
{
    const at_dedup_ent_t *e = &pt->ents[idx];
    return at_hash64(pt->bytes + e->off, e->len & ~AT_DEDUP_DEAD);
}

static size_t at_dedup__home(const at_dedup_part_t *pt, uint64_t slot)
{
    return (size_t)at_dedup__hash(pt, at_dedup__idx(slot)) & (pt->nslots - 1);
}

static void at_dedup__rehash(at_dedup_part_t *pt, size_t nslots)
{
    free(pt->slots);
    pt->slots = at_xcalloc(nslots, sizeof *pt->slots);
    pt->nslots = nslots;
    for (uint64_t s = pt->head; s < pt->tail; s++) {
        const at_dedup_ent_t *e = at_dedup__ent(pt, s);
        if (e->len & AT_DEDUP_DEAD)
            continue;
        size_t idx = (size_t)(s & (pt->ecap - 1));
        uint64_t h = at_dedup__hash(pt, idx);
        size_t i = (size_t)h & (nslots - 1);
        while (pt->slots[i])
            i = (i + 1) & (nslots - 1);
        pt->slots[i] = at_dedup__slot(h, idx);
    }
}

/* The table slot holding (h, id), or -1. */
static long at_dedup__find(const at_dedup_part_t *pt, uint64_t h, const char *id, size_t n)
{
    if (!pt->nslots)
        return -1;
    uint64_t tag = h & 0xffffffff00000000ULL;
    for (size_t i = (size_t)h & (pt->nslots - 1); pt->slots[i]; i = (i + 1) & (pt->nslots - 1)) {
        if ((pt->slots[i] & 0xffffffff00000000ULL) != tag)
            continue;
        const at_dedup_ent_t *e = &pt->ents[at_dedup__idx(pt->slots[i])];
        if (e->len == n && (n == 0 || memcmp(pt->bytes + e->off, id, n) == 0))
            return (long)i;
    }
    return -1;
}

/* Empties table slot i, shifting later members of its cluster back. */
static void at_dedup__unslot(at_dedup_part_t *pt, size_t i)
{
    size_t mask = pt->nslots - 1;
    for (size_t j = (i + 1) & mask; pt->slots[j]; j = (j + 1) & mask) {
        size_t k = at_dedup__home(pt, pt->slots[j]);
        bool movable = i <= j ? (k <= i || k > j) : (k <= i && k > j);
        if (movable) {
            pt->slots[i] = pt->slots[j];
            i = j;
        }
    }
    pt->slots[i] = 0;
}

/* Removes the entry at ring position idx from the table. */
static void at_dedup__unindex(at_dedup_part_t *pt, size_t idx)
{
    size_t mask = pt->nslots - 1;
    for (size_t i = (size_t)at_dedup__hash(pt, idx) & mask;; i = (i + 1) & mask) {
        AT_ASSERT(pt->slots[i]);
        if (at_dedup__idx(pt->slots[i]) == idx) {
            at_dedup__unslot(pt, i);
            return;
        }
    }
}

/* Pops the oldest entry; returns true if it was live. */
static bool at_dedup__pop(at_dedup_t *d, at_dedup_part_t *pt)
{
    at_dedup_ent_t *e = at_dedup__ent(pt, pt->head);
    bool live = !(e->len & AT_DEDUP_DEAD);
    if (live) {
        at_dedup__unindex(pt, (size_t)(pt->head & (pt->ecap - 1)));
        pt->live--;
        d->size--;
    }
    pt->head++;
    if (pt->head == pt->tail)
        pt->bhead = pt->btail = 0;
    else
        pt->bhead = at_dedup__ent(pt, pt->head)->off;
    return live;
}

/* Moves the live bytes to a new ring of at least need more free bytes. */
static void at_dedup__grow_bytes(at_dedup_part_t *pt, size_t need)
{
    size_t used = 0;
    for (uint64_t s = pt->head; s < pt->tail; s++)
        used += at_dedup__ent(pt, s)->len & ~AT_DEDUP_DEAD;
    size_t cap = AT_MAX(pt->bcap, (size_t)4096);
    if (cap < used + need + (used + need) / 4)
        cap = used + need + (used + need) / 2;
    char *nb = at_xmalloc(cap);
    size_t o = 0;
    for (uint64_t s = pt->head; s < pt->tail; s++) {
        at_dedup_ent_t *e = at_dedup__ent(pt, s);
        size_t n = e->len & ~AT_DEDUP_DEAD;
        if (n)
            memcpy(nb + o, pt->bytes + e->off, n);
        e->off = (uint32_t)o;
        o += n;
    }
    free(pt->bytes);
    pt->bytes = nb;
    pt->bcap = cap;
    pt->bhead = 0;
    pt->btail = o;
}

/* Room for n id bytes at the byte ring's tail; returns their offset. */
static size_t at_dedup__alloc_bytes(at_dedup_part_t *pt, size_t n)
{
    if (pt->head == pt->tail)
        pt->bhead = pt->btail = 0;
    if (pt->btail >= pt->bhead) {
        if (pt->bcap - pt->btail >= n)
            return (pt->btail += n) - n;
        if (pt->bhead > n) {
            pt->btail = n; /* wrap: the end of the ring stays unused until the head passes */
            return 0;
        }
    } else if (pt->bhead - pt->btail > n) {
        return (pt->btail += n) - n;
    }
    at_dedup__grow_bytes(pt, n);
    return (pt->btail += n) - n;
}

static void at_dedup__grow_ring(at_dedup_part_t *pt)
{
    size_t cap = pt->ecap ? pt->ecap * 2 : 64;
    at_dedup_ent_t *ne = at_xmalloc(cap * sizeof *ne);
    for (uint64_t s = pt->head; s < pt->tail; s++)
        ne[s & (cap - 1)] = *at_dedup__ent(pt, s);
    free(pt->ents);
    pt->ents = ne;
    pt->ecap = cap;
    at_dedup__rehash(pt, pt->nslots ? pt->nslots : 128);
}

static void at_dedup__insert(at_dedup_t *d, at_dedup_part_t *pt, uint64_t h, const char *id,
                             size_t n, int64_t recv_ms)
{
    while (pt->tail - pt->head >= d->cap)
        if (at_dedup__pop(d, pt))
            d->evicted++;
    if (pt->tail - pt->head == pt->ecap)
        at_dedup__grow_ring(pt);
    if ((pt->live + 1) * 2 > pt->nslots)
        at_dedup__rehash(pt, pt->nslots ? pt->nslots * 2 : 128);
    size_t off = at_dedup__alloc_bytes(pt, n);
    if (n)
        memcpy(pt->bytes + off, id, n);
    size_t idx = (size_t)(pt->tail & (pt->ecap - 1));
    pt->ents[idx] = (at_dedup_ent_t){recv_ms, (uint32_t)off, (uint32_t)n};
    pt->tail++;
    size_t i = (size_t)h & (pt->nslots - 1);
    while (pt->slots[i])
        i = (i + 1) & (pt->nslots - 1);
    pt->slots[i] = at_dedup__slot(h, idx);
    pt->live++;
    d->size++;
}

/* See at_ingest.h. Thread: the owner's. */
bool at_dedup_check(at_dedup_t *d, int p, const char *id, size_t n, int64_t recv_ms)
{
    AT_ASSERT(p >= 0 && p < d->partitions);
    AT_ASSERT(n < AT_DEDUP_DEAD);
    at_dedup_part_t *pt = &d->parts[p];
    int64_t oldest = recv_ms - d->horizon_ms; /* at or before: expired */
    while (pt->head < pt->tail && at_dedup__ent(pt, pt->head)->recv_ms <= oldest)
        at_dedup__pop(d, pt);
    uint64_t h = at_hash64(id, n);
    if (at_dedup__find(pt, h, id, n) >= 0)
        return true;
    at_dedup__insert(d, pt, h, id, n, recv_ms);
    return false;
}

/* See at_ingest.h. Thread: the owner's. */
void at_dedup_forget(at_dedup_t *d, int p, const char *id, size_t n)
{
    AT_ASSERT(p >= 0 && p < d->partitions);
    at_dedup_part_t *pt = &d->parts[p];
    long i = at_dedup__find(pt, at_hash64(id, n), id, n);
    if (i < 0)
        return;
    size_t idx = at_dedup__idx(pt->slots[i]);
    at_dedup__unslot(pt, (size_t)i);
    pt->live--;
    d->size--;
    if (idx == (size_t)((pt->tail - 1) & (pt->ecap - 1))) {
        pt->btail = pt->ents[idx].off; /* the newest: give its bytes back */
        pt->tail--;
        if (pt->head == pt->tail)
            pt->bhead = pt->btail = 0;
    } else {
        pt->ents[idx].len |= AT_DEDUP_DEAD;
    }
}

/* Entries evicted by the cap before their horizon. Thread: the owner's. */
uint64_t at_dedup_evicted(const at_dedup_t *d)
{
    return d->evicted;
}

/* Entries currently held. Thread: the owner's. */
uint64_t at_dedup_size(const at_dedup_t *d)
{
    return d->size;
}
