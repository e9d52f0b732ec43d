/* dedup.c - deduplication by (partition, event_id) over a horizon in
 * receive time, capped per partition (DESIGN.md §6; docs/decisions/0009).
 *
 * An id is held as its 128-bit fingerprint (XXH3-128 with a seed drawn at
 * random for each index: the index is rebuilt from the log at every start,
 * so the seed need not outlive the process), not as its bytes. Two ids
 * are taken for one only if all 128 bits agree: with a partition's cap of
 * n ids the odds that any new id meets a false duplicate are about
 * n / 2^128 (for n = 1,000,000: 3e-33), far below those of the disk
 * returning a wrong byte.
 *
 * Per partition: a FIFO ring of entries in insertion order (so expiry and
 * eviction pop from its head), each a fingerprint (16 bytes, {0, 0} once
 * forgotten) and a receive time (4 bytes: units after the partition's
 * base; a unit is 1 ms unless the horizon exceeds 2^31 ms), and an
 * open-addressing table (linear probing, backward-shift deletion) of
 * 8-byte slots: 32 bits of the fingerprint (so probes that cannot match
 * never touch the ring) and the ring index. Both grow by half: the ring
 * up to the cap, the table (load 1/2 to 3/4) up to a third more slots
 * than the cap, so at the cap an id costs about 31 bytes, below it 31 to
 * 46. Arrays of 1 MiB or more are mapped
 * and unmapped whole, so the smaller ones a partition grew out of go back
 * to the kernel instead of staying in the heap as gaps. A check allocates
 * nothing beyond the amortized growth of these arrays.
 *
 * THREAD SAFETY: one thread (the log writer) owns an at_dedup_t.
 */
#include "ingest_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

typedef struct at_dedup_part {
    uint64_t *fp;    /* ring: the fingerprint of entry i at fp[2i], fp[2i + 1] */
    uint32_t *ts;    /* ring: receive time of entry i, units after base */
    size_t ecap;     /* ring capacity */
    size_t head;     /* index of the oldest entry */
    size_t n;        /* entries, live or forgotten */
    int64_t base;    /* ms; set when the ring was last empty, moved by rebasing */
    uint64_t *slots; /* fingerprint bits << 32 | ring index + 1; 0 = empty */
    size_t nslots;
    size_t live;
} at_dedup_part_t;

struct at_dedup {
    int partitions;
    int64_t horizon_ms;
    int64_t unit_ms; /* of the entries' times */
    uint64_t cap;    /* entries per partition */
    uint64_t seed;
    uint64_t evicted;
    uint64_t size;
    at_dedup_part_t *parts;
};

#define AT_DEDUP_MAP ((size_t)1 << 20) /* arrays this large are mapped */

/* n zeroed bytes. */
static void *at_dedup__alloc(size_t n)
{
    if (n < AT_DEDUP_MAP)
        return at_xcalloc(1, n);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        at_panic(__FILE__, __LINE__, "out of memory");
    return p;
}

/* Frees p of n bytes from at_dedup__alloc; NULL is fine. */
static void at_dedup__free(void *p, size_t n)
{
    if (p && n >= AT_DEDUP_MAP)
        munmap(p, n);
    else
        free(p);
}

/* p of n bytes from at_dedup__alloc grown to m > n, its bytes kept (the
 * new ones not zeroed); a mapping is moved by the kernel, not copied. */
static void *at_dedup__grow(void *p, size_t n, size_t m)
{
    if (m < AT_DEDUP_MAP)
        return at_xrealloc(p, m);
    if (n >= AT_DEDUP_MAP) {
        p = mremap(p, n, m, MREMAP_MAYMOVE);
        if (p == MAP_FAILED)
            at_panic(__FILE__, __LINE__, "out of memory");
        return p;
    }
    void *q = at_dedup__alloc(m);
    if (n)
        memcpy(q, p, n);
    free(p);
    return q;
}

static void at_dedup__free_ring(at_dedup_part_t *pt)
{
    at_dedup__free(pt->fp, pt->ecap * 2 * sizeof *pt->fp);
    at_dedup__free(pt->ts, pt->ecap * sizeof *pt->ts);
}

/* Returns an owned dedup index; free with at_dedup_free(). Thread: any. */
at_dedup_t *at_dedup_new(int partitions, int64_t horizon_ms, int64_t max_per_partition)
{
    AT_ASSERT(partitions > 0);
    at_dedup_t *d = at_xcalloc(1, sizeof *d);
    d->partitions = partitions;
    d->horizon_ms = horizon_ms > 0 ? horizon_ms : 0;
    /* times span at least twice the horizon before a rebase clamps any */
    d->unit_ms = AT_MAX((int64_t)1, (d->horizon_ms + INT32_MAX - 1) / INT32_MAX);
    d->cap = max_per_partition > 0 ? (uint64_t)AT_MIN(max_per_partition, INT32_MAX) : 1;
    if (getrandom(&d->seed, sizeof d->seed, 0) != (ssize_t)sizeof d->seed)
        d->seed = (uint64_t)at_time_mono_ns() * 0x9e3779b97f4a7c15ULL;
    d->parts = at_xcalloc((size_t)partitions, sizeof *d->parts);
    return d;
}

/* Frees d; NULL is fine. */
void at_dedup_free(at_dedup_t *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->partitions; i++) {
        at_dedup__free_ring(&d->parts[i]);
        at_dedup__free(d->parts[i].slots, d->parts[i].nslots * sizeof *d->parts[i].slots);
    }
    free(d->parts);
    free(d);
}

/* The fingerprint of id; never {0, 0}, which marks a forgotten entry. */
static void at_dedup__fingerprint(const at_dedup_t *d, const char *id, size_t n, uint64_t fp[2])
{
    at_hash128(id, n, d->seed, fp);
    if (!fp[0] && !fp[1])
        fp[0] = 1;
}

/* The ring index of the k-th oldest entry. */
static size_t at_dedup__at(const at_dedup_part_t *pt, size_t k)
{
    size_t i = pt->head + k;
    return i >= pt->ecap ? i - pt->ecap : i;
}

static bool at_dedup__dead(const at_dedup_part_t *pt, size_t idx)
{
    return !pt->fp[2 * idx] && !pt->fp[2 * idx + 1];
}

/* A fingerprint's first slot: its low 32 bits scaled to the table. */
static size_t at_dedup__home_of(const at_dedup_part_t *pt, uint64_t lo)
{
    return (size_t)(((lo & 0xffffffffULL) * (uint64_t)pt->nslots) >> 32);
}

#define AT_DEDUP_TAG 0xffffffff00000000ULL /* a slot's fingerprint bits */

/* The ring index a table slot holds. */
static size_t at_dedup__idx(uint64_t slot)
{
    return (size_t)(uint32_t)slot - 1;
}

static size_t at_dedup__home(const at_dedup_part_t *pt, uint64_t slot)
{
    return at_dedup__home_of(pt, pt->fp[2 * at_dedup__idx(slot)]);
}

static uint64_t at_dedup__slot(const uint64_t fp[2], size_t idx)
{
    return (fp[1] & AT_DEDUP_TAG) | (uint64_t)(idx + 1);
}

static size_t at_dedup__probe(const at_dedup_part_t *pt, size_t i)
{
    return i + 1 == pt->nslots ? 0 : i + 1;
}

static void at_dedup__put(at_dedup_part_t *pt, size_t idx)
{
    size_t i = at_dedup__home_of(pt, pt->fp[2 * idx]);
    while (pt->slots[i])
        i = at_dedup__probe(pt, i);
    pt->slots[i] = at_dedup__slot(&pt->fp[2 * idx], idx);
}

static void at_dedup__rehash(at_dedup_part_t *pt, size_t nslots)
{
    at_dedup__free(pt->slots, pt->nslots * sizeof *pt->slots);
    pt->slots = at_dedup__alloc(nslots * sizeof *pt->slots);
    pt->nslots = nslots;
    for (size_t k = 0; k < pt->n; k++) {
        size_t idx = at_dedup__at(pt, k);
        if (!at_dedup__dead(pt, idx))
            at_dedup__put(pt, idx);
    }
}

/* The table slot holding fp, or -1. */
static long at_dedup__find(const at_dedup_part_t *pt, const uint64_t fp[2])
{
    if (!pt->nslots)
        return -1;
    uint64_t tag = fp[1] & AT_DEDUP_TAG;
    for (size_t i = at_dedup__home_of(pt, fp[0]); pt->slots[i]; i = at_dedup__probe(pt, i)) {
        if ((pt->slots[i] & AT_DEDUP_TAG) != tag)
            continue;
        size_t idx = at_dedup__idx(pt->slots[i]);
        if (pt->fp[2 * idx] == fp[0] && pt->fp[2 * idx + 1] == fp[1])
            return (long)i;
    }
    return -1;
}

/* Empties table slot i, shifting later members of its cluster back. */
static void at_dedup__unslot(at_dedup_part_t *pt, size_t i)
{
    for (size_t j = at_dedup__probe(pt, i); pt->slots[j]; j = at_dedup__probe(pt, j)) {
        size_t k = at_dedup__home(pt, pt->slots[j]);
        bool movable = i <= j ? (k <= i || k > j) : (k <= i && k > j);
        if (movable) {
            pt->slots[i] = pt->slots[j];
            i = j;
        }
    }
    pt->slots[i] = 0;
}

/* Removes the entry at ring index idx from the table. */
static void at_dedup__unindex(at_dedup_part_t *pt, size_t idx)
{
    for (size_t i = at_dedup__home_of(pt, pt->fp[2 * idx]);; i = at_dedup__probe(pt, i)) {
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
    size_t idx = pt->head;
    bool live = !at_dedup__dead(pt, idx);
    if (live) {
        at_dedup__unindex(pt, idx);
        pt->live--;
        d->size--;
    }
    pt->head = at_dedup__at(pt, 1);
    pt->n--;
    return live;
}

/* The receive time of the oldest entry, ms (floored to the unit). */
static int64_t at_dedup__oldest_ms(const at_dedup_t *d, const at_dedup_part_t *pt)
{
    return pt->base + (int64_t)pt->ts[pt->head] * d->unit_ms;
}

/* Grows the ring in place: entries keep their indexes (and the table its
 * slots) unless the ring had wrapped, when the run from the head to the
 * old end moves to the new end. */
static void at_dedup__grow_ring(at_dedup_t *d, at_dedup_part_t *pt)
{
    size_t old = pt->ecap;
    size_t cap = AT_MIN(AT_MAX(old + old / 2, (size_t)64), (size_t)d->cap);
    AT_ASSERT(cap > pt->n);
    bool wrapped = pt->head + pt->n > old;
    pt->fp = at_dedup__grow(pt->fp, old * 2 * sizeof *pt->fp, cap * 2 * sizeof *pt->fp);
    pt->ts = at_dedup__grow(pt->ts, old * sizeof *pt->ts, cap * sizeof *pt->ts);
    pt->ecap = cap;
    if (wrapped) {
        size_t k = old - pt->head, head = cap - k;
        memmove(&pt->fp[2 * head], &pt->fp[2 * pt->head], k * 2 * sizeof *pt->fp);
        memmove(&pt->ts[head], &pt->ts[pt->head], k * sizeof *pt->ts);
        pt->head = head;
        at_dedup__rehash(pt, pt->nslots);
    }
}

/* Slots for live + 1 entries: growing by half while under a load of 3/4,
 * and no more than the cap needs at that load. */
static void at_dedup__grow_table(at_dedup_t *d, at_dedup_part_t *pt)
{
    size_t need = pt->live + 1;
    if (pt->nslots && need * 4 <= pt->nslots * 3)
        return;
    size_t most = (size_t)d->cap + (size_t)d->cap / 3 + 1;
    size_t n = pt->nslots ? pt->nslots + pt->nslots / 2 : 128;
    if (n > most)
        n = most;
    if (n * 3 < need * 4)
        n = need + need / 3 + 1;
    at_dedup__rehash(pt, n);
}

/* recv_ms as an entry's time; moves the base on when recv_ms is too far
 * past it. Times before the base count as the base. */
static uint32_t at_dedup__time(at_dedup_t *d, at_dedup_part_t *pt, int64_t recv_ms)
{
    if (!pt->n)
        pt->base = recv_ms;
    if (recv_ms <= pt->base)
        return 0;
    int64_t u = (recv_ms - pt->base) / d->unit_ms;
    if (u <= (int64_t)UINT32_MAX)
        return (uint32_t)u;
    /* the oldest time still wanted: the horizon's start, or the oldest
     * entry if newer (entries before it have expired: clamped to it) */
    int64_t from = AT_MAX(recv_ms - d->horizon_ms, at_dedup__oldest_ms(d, pt));
    uint32_t shift = (uint32_t)AT_MIN((from - pt->base) / d->unit_ms, (int64_t)UINT32_MAX);
    for (size_t k = 0; k < pt->n; k++) {
        size_t idx = at_dedup__at(pt, k);
        pt->ts[idx] = pt->ts[idx] > shift ? pt->ts[idx] - shift : 0;
    }
    pt->base += (int64_t)shift * d->unit_ms;
    u = (recv_ms - pt->base) / d->unit_ms;
    return (uint32_t)AT_MIN(u, (int64_t)UINT32_MAX);
}

static void at_dedup__insert(at_dedup_t *d, at_dedup_part_t *pt, const uint64_t fp[2],
                             int64_t recv_ms)
{
    while (pt->n >= d->cap)
        if (at_dedup__pop(d, pt))
            d->evicted++;
    if (pt->n == pt->ecap)
        at_dedup__grow_ring(d, pt);
    at_dedup__grow_table(d, pt);
    uint32_t t = at_dedup__time(d, pt, recv_ms);
    size_t idx = at_dedup__at(pt, pt->n);
    pt->fp[2 * idx] = fp[0];
    pt->fp[2 * idx + 1] = fp[1];
    pt->ts[idx] = t;
    pt->n++;
    at_dedup__put(pt, idx);
    pt->live++;
    d->size++;
}

/* See at_ingest.h. Thread: the owner's. */
bool at_dedup_check(at_dedup_t *d, int p, const char *id, size_t n, int64_t recv_ms)
{
    AT_ASSERT(p >= 0 && p < d->partitions);
    at_dedup_part_t *pt = &d->parts[p];
    int64_t oldest = recv_ms - d->horizon_ms; /* at or before: expired */
    while (pt->n && at_dedup__oldest_ms(d, pt) <= oldest)
        at_dedup__pop(d, pt);
    uint64_t fp[2];
    at_dedup__fingerprint(d, id, n, fp);
    if (at_dedup__find(pt, fp) >= 0)
        return true;
    at_dedup__insert(d, pt, fp, recv_ms);
    return false;
}

/* See at_ingest.h. Thread: the owner's. */
void at_dedup_forget(at_dedup_t *d, int p, const char *id, size_t n)
{
    AT_ASSERT(p >= 0 && p < d->partitions);
    at_dedup_part_t *pt = &d->parts[p];
    uint64_t fp[2];
    at_dedup__fingerprint(d, id, n, fp);
    long i = at_dedup__find(pt, fp);
    if (i < 0)
        return;
    size_t idx = at_dedup__idx(pt->slots[i]);
    at_dedup__unslot(pt, (size_t)i);
    pt->live--;
    d->size--;
    if (idx == at_dedup__at(pt, pt->n - 1))
        pt->n--; /* the newest: its place is given back */
    else
        pt->fp[2 * idx] = pt->fp[2 * idx + 1] = 0;
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

/* Bytes of the rings and tables (what they were allocated, used or not).
 * Thread: the owner's. */
uint64_t at_dedup_bytes(const at_dedup_t *d)
{
    uint64_t b = 0;
    for (int i = 0; i < d->partitions; i++) {
        const at_dedup_part_t *pt = &d->parts[i];
        b += pt->ecap * (2 * sizeof *pt->fp + sizeof *pt->ts) + pt->nslots * sizeof *pt->slots;
    }
    return b;
}
