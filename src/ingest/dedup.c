/* dedup.c - deduplication by (partition, event_id) over a horizon in
 * receive time, capped per partition (DESIGN.md §6; docs/decisions/0009
 * and 0010).
 *
 * An id is held as its 128-bit fingerprint (XXH3-128 with a seed drawn at
 * random for each index: the index is rebuilt from the log at every start,
 * so the seed need not outlive the process), not as its bytes. Two ids
 * are taken for one only if all 128 bits agree: with a partition's cap of
 * n ids the odds that any new id meets a false duplicate are about
 * n / 2^128 (for n = 1,000,000: 3e-33), far below those of the disk
 * returning a wrong byte.
 *
 * Per partition: a FIFO ring of `cap` positions in insertion order (so
 * expiry and eviction pop from its head), each a fingerprint and a receive
 * time in ms. The ring lives in a scratch file (24 bytes a position,
 * partition after partition; created unlinked in the data directory, so it
 * never outlives the process), written a chunk of 4,096 positions at a
 * time; memory holds the chunk being filled and a copy of the chunk the
 * head is in.
 *
 * In front of the file sits a cuckoo table of 32-bit slots, buckets of
 * four: each slot holds a ring position and as many other bits of the
 * fingerprint as the rest of its 32 bits hold (its tag: 12 bits at the
 * default cap of 1,000,000, 8 at the largest, 2^24 - 1). A fingerprint has
 * two buckets, the first from its low bits and the second from the first
 * and the tag, so an entry moves between them without its fingerprint
 * (partial-key cuckoo hashing). A check reads the file only for a slot
 * whose tag matches: a new id about once in 500 checks at the default cap,
 * a duplicate once. The table grows by half up to a load of 0.85 at the
 * cap, so an id costs about 4.9 bytes of memory there, whatever its
 * length, and 24 bytes of the file, in the page cache while the kernel has
 * room for it. When the file cannot be written (no space) a chunk stays in
 * memory until a later write succeeds, and reads of it never fail.
 *
 * THREAD SAFETY: one thread (the log writer) owns an at_dedup_t.
 */
#include "ingest_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#define AT_DEDUP_CHUNK 4096 /* ring positions one write of the file holds */
#define AT_DEDUP_WAYS 4     /* slots a bucket */
#define AT_DEDUP_KICKS 500  /* moves an insertion tries before the table grows */
#define AT_DEDUP_LOAD 85    /* percent of slots used at most, unless an insertion gives up */
#define AT_DEDUP_NONE SIZE_MAX
#define AT_DEDUP_MAP ((size_t)1 << 20) /* arrays this large are mapped */
#define AT_DEDUP_W 3 /* words of a position: the fingerprint's two, the receive time */
#define AT_DEDUP_REC (AT_DEDUP_W * sizeof(uint64_t)) /* bytes of a position in the file */

/* A chunk the file did not take: kept until a later write succeeds. */
typedef struct at_dedup_pend {
    size_t chunk;
    uint64_t *fp;
} at_dedup_pend_t;

typedef struct at_dedup_part {
    uint32_t *slots; /* nb buckets of AT_DEDUP_WAYS: tag << ib | position + 1; 0 = empty */
    size_t nb;       /* buckets */
    size_t head;     /* position of the oldest entry */
    size_t n;        /* entries, live or forgotten */
    size_t live;
    uint64_t *tail;    /* the chunk being filled: position i at AT_DEDUP_W * i */
    size_t tail_chunk; /* AT_DEDUP_NONE before the first */
    uint64_t *hbuf;    /* a copy of a chunk read from the file for the head */
    size_t head_chunk; /* the chunk in hbuf, or AT_DEDUP_NONE */
    at_dedup_pend_t *pend;
    size_t npend;
} at_dedup_part_t;

struct at_dedup {
    int partitions;
    int ib; /* bits of a slot for position + 1; the rest is the tag */
    int64_t horizon_ms;
    uint64_t cap; /* positions per partition */
    size_t chunk; /* positions a chunk: AT_DEDUP_CHUNK, or the cap if smaller */
    uint64_t seed;
    uint64_t rng; /* picks the slot an insertion moves */
    uint64_t evicted;
    uint64_t size;
    uint64_t reads;  /* fingerprints read from the file for a matching tag */
    uint64_t errors; /* failed reads and writes of the file */
    char *dir;
    int fd; /* the file, -1 until a chunk is first written */
    at_dedup_part_t *parts;
};

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

/* Returns an owned dedup index whose file goes in dir (NULL: /tmp); free
 * with at_dedup_free(). Thread: any. */
at_dedup_t *at_dedup_new(int partitions, int64_t horizon_ms, int64_t max_per_partition,
                         const char *dir)
{
    AT_ASSERT(partitions > 0);
    at_dedup_t *d = at_xcalloc(1, sizeof *d);
    d->partitions = partitions;
    d->horizon_ms = horizon_ms > 0 ? horizon_ms : 0;
    d->cap = max_per_partition > 0 ? (uint64_t)AT_MIN(max_per_partition, AT_DEDUP_MAX_CAP) : 1;
    d->chunk = (size_t)AT_MIN(d->cap, (uint64_t)AT_DEDUP_CHUNK);
    while (d->ib < 32 && (1ULL << d->ib) <= d->cap)
        d->ib++;
    if (getrandom(&d->seed, sizeof d->seed, 0) != (ssize_t)sizeof d->seed)
        d->seed = (uint64_t)at_time_mono_ns() * 0x9e3779b97f4a7c15ULL;
    d->rng = d->seed | 1;
    d->dir = at_xstrdup(dir ? dir : "/tmp");
    d->fd = -1;
    d->parts = at_xcalloc((size_t)partitions, sizeof *d->parts);
    for (int i = 0; i < partitions; i++)
        d->parts[i].tail_chunk = d->parts[i].head_chunk = AT_DEDUP_NONE;
    return d;
}

static size_t at_dedup__chunk_bytes(const at_dedup_t *d)
{
    return d->chunk * AT_DEDUP_REC;
}

/* Frees d; NULL is fine. */
void at_dedup_free(at_dedup_t *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->partitions; i++) {
        at_dedup_part_t *pt = &d->parts[i];
        at_dedup__free(pt->slots, pt->nb * AT_DEDUP_WAYS * sizeof *pt->slots);
        free(pt->tail);
        free(pt->hbuf);
        for (size_t k = 0; k < pt->npend; k++)
            free(pt->pend[k].fp);
        free(pt->pend);
    }
    if (d->fd >= 0)
        close(d->fd);
    free(d->dir);
    free(d->parts);
    free(d);
}

/* ---- the file ------------------------------------------------------------ */

/* The file's descriptor, created on first use; -1 if it cannot be. */
static int at_dedup__file(at_dedup_t *d)
{
    if (d->fd >= 0)
        return d->fd;
    int fd = open(d->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) { /* a file system without O_TMPFILE */
        size_t n = strlen(d->dir) + 32;
        char *path = at_xmalloc(n);
        (void)snprintf(path, n, "%s/.dedup-XXXXXX", d->dir);
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0)
            (void)unlink(path);
        free(path);
    }
    if (fd < 0) {
        if (!d->errors++)
            AT_WARN("dedup file", "dir=%s error=\"%s\" (held in memory)", d->dir,
                    at_strerror(errno));
        return -1;
    }
    return d->fd = fd;
}

static uint64_t at_dedup__off(const at_dedup_t *d, int p, size_t pos)
{
    return ((uint64_t)p * d->cap + pos) * AT_DEDUP_REC;
}

/* Reads n bytes at off; what the file never held reads as zeros. */
static void at_dedup__read(at_dedup_t *d, void *buf, size_t n, uint64_t off)
{
    char *b = buf;
    size_t got = 0;
    while (got < n && d->fd >= 0) {
        ssize_t r = pread(d->fd, b + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && !d->errors++)
            AT_ERROR("dedup file", "error=\"%s\"", at_strerror(errno));
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    memset(b + got, 0, n - got);
}

/* Writes n bytes at off; false if the file did not take them all. */
static bool at_dedup__write(at_dedup_t *d, const void *buf, size_t n, uint64_t off)
{
    if (at_dedup__file(d) < 0)
        return false;
    const char *b = buf;
    size_t put = 0;
    while (put < n) {
        ssize_t r = pwrite(d->fd, b + put, n - put, (off_t)(off + put));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (!d->errors++)
                AT_WARN("dedup file", "error=\"%s\" (held in memory)",
                        r < 0 ? at_strerror(errno) : "short write");
            return false;
        }
        put += (size_t)r;
    }
    return true;
}

/* ---- the ring ------------------------------------------------------------ */

/* The ring position of the k-th oldest entry. */
static size_t at_dedup__at(const at_dedup_t *d, const at_dedup_part_t *pt, size_t k)
{
    size_t i = pt->head + k;
    return i >= d->cap ? i - (size_t)d->cap : i;
}

/* Chunk c's positions if memory holds them, else NULL. */
static uint64_t *at_dedup__held(at_dedup_part_t *pt, size_t c)
{
    if (c == pt->tail_chunk)
        return pt->tail;
    for (size_t k = 0; k < pt->npend; k++)
        if (pt->pend[k].chunk == c)
            return pt->pend[k].fp;
    if (c == pt->head_chunk)
        return pt->hbuf;
    return NULL;
}

/* Chunk c's positions: from memory, or read into buf (chunk bytes). */
static const uint64_t *at_dedup__chunk_fps(at_dedup_t *d, at_dedup_part_t *pt, int p, size_t c,
                                           uint64_t *buf)
{
    const uint64_t *m = at_dedup__held(pt, c);
    if (m)
        return m;
    at_dedup__read(d, buf, at_dedup__chunk_bytes(d), at_dedup__off(d, p, c * d->chunk));
    return buf;
}

/* The fingerprint at ring position pos. */
static void at_dedup__fp_at(at_dedup_t *d, at_dedup_part_t *pt, int p, size_t pos, uint64_t fp[2])
{
    size_t c = pos / d->chunk;
    const uint64_t *m = at_dedup__held(pt, c);
    if (m) {
        fp[0] = m[AT_DEDUP_W * (pos - c * d->chunk)];
        fp[1] = m[AT_DEDUP_W * (pos - c * d->chunk) + 1];
        return;
    }
    d->reads++;
    at_dedup__read(d, fp, 2 * sizeof *fp, at_dedup__off(d, p, pos));
}

/* Writes every kept chunk the file now takes. */
static void at_dedup__flush_pending(at_dedup_t *d, at_dedup_part_t *pt, int p)
{
    for (size_t k = 0; k < pt->npend;) {
        at_dedup_pend_t *q = &pt->pend[k];
        if (!at_dedup__write(d, q->fp, at_dedup__chunk_bytes(d),
                             at_dedup__off(d, p, q->chunk * d->chunk)))
            return;
        free(q->fp);
        pt->pend[k] = pt->pend[--pt->npend];
    }
}

/* Makes chunk c the one being filled: the last one goes to the file (or
 * is kept), and c is loaded with what it held (entries still live when the
 * ring has wrapped, or given back into it). */
static void at_dedup__start(at_dedup_t *d, at_dedup_part_t *pt, int p, size_t c)
{
    size_t bytes = at_dedup__chunk_bytes(d);
    if (pt->tail_chunk != AT_DEDUP_NONE) {
        size_t old = pt->tail_chunk;
        pt->tail_chunk = AT_DEDUP_NONE;
        if (pt->head_chunk == old)
            pt->head_chunk = AT_DEDUP_NONE; /* its copy is older than the file now */
        if (!at_dedup__write(d, pt->tail, bytes, at_dedup__off(d, p, old * d->chunk))) {
            pt->pend = at_xrealloc(pt->pend, (pt->npend + 1) * sizeof *pt->pend);
            pt->pend[pt->npend++] = (at_dedup_pend_t){.chunk = old, .fp = pt->tail};
            pt->tail = NULL;
        }
        at_dedup__flush_pending(d, pt, p);
    }
    for (size_t k = 0; k < pt->npend; k++) {
        if (pt->pend[k].chunk != c)
            continue;
        free(pt->tail);
        pt->tail = pt->pend[k].fp;
        pt->pend[k] = pt->pend[--pt->npend];
        pt->tail_chunk = c;
        return;
    }
    if (!pt->tail)
        pt->tail = at_xmalloc(bytes);
    at_dedup__read(d, pt->tail, bytes, at_dedup__off(d, p, c * d->chunk));
    pt->tail_chunk = c;
}

/* ---- the table ----------------------------------------------------------- */

static uint32_t at_dedup__tag(const at_dedup_t *d, const uint64_t fp[2])
{
    return (uint32_t)(fp[1] >> 32) >> d->ib;
}

static uint32_t at_dedup__slot(const at_dedup_t *d, uint32_t tag, size_t pos)
{
    return tag << d->ib | (uint32_t)(pos + 1);
}

static size_t at_dedup__pos(const at_dedup_t *d, uint32_t slot)
{
    return (size_t)(slot & (uint32_t)((1ULL << d->ib) - 1)) - 1;
}

/* A fingerprint's first bucket: its low 32 bits scaled to the table. */
static size_t at_dedup__b1(const at_dedup_part_t *pt, const uint64_t fp[2])
{
    return (size_t)(((fp[0] & 0xffffffffULL) * (uint64_t)pt->nb) >> 32);
}

/* The other bucket of an entry with this tag in bucket b: (h - b) mod nb
 * for an h of the tag, so that the other of the other is b again. */
static size_t at_dedup__alt(const at_dedup_part_t *pt, size_t b, uint32_t tag)
{
    uint32_t x = (tag + 1) * 0x9e3779b1u;
    x ^= x >> 15;
    size_t h = (size_t)(((uint64_t)x * (uint64_t)pt->nb) >> 32);
    return h >= b ? h - b : h + pt->nb - b;
}

static bool at_dedup__put_in(at_dedup_part_t *pt, size_t b, uint32_t slot)
{
    uint32_t *s = &pt->slots[b * AT_DEDUP_WAYS];
    for (int j = 0; j < AT_DEDUP_WAYS; j++)
        if (!s[j]) {
            s[j] = slot;
            return true;
        }
    return false;
}

/* The next of d's xorshift sequence. */
static uint64_t at_dedup__rand(at_dedup_t *d)
{
    d->rng ^= d->rng << 13;
    d->rng ^= d->rng >> 7;
    d->rng ^= d->rng << 17;
    return d->rng;
}

/* Places slot with first bucket b1, moving others to their other buckets;
 * false if it gave up, when one entry (maybe another) has no slot: the
 * caller rebuilds the table. */
static bool at_dedup__place(at_dedup_t *d, at_dedup_part_t *pt, uint32_t slot, size_t b1)
{
    size_t b2 = at_dedup__alt(pt, b1, slot >> d->ib);
    if (at_dedup__put_in(pt, b1, slot) || at_dedup__put_in(pt, b2, slot))
        return true;
    size_t b = at_dedup__rand(d) & 1 ? b1 : b2;
    for (int kick = 0; kick < AT_DEDUP_KICKS; kick++) {
        uint32_t *s = &pt->slots[b * AT_DEDUP_WAYS + (at_dedup__rand(d) >> 32) % AT_DEDUP_WAYS];
        uint32_t moved = *s;
        *s = slot;
        slot = moved;
        b = at_dedup__alt(pt, b, slot >> d->ib);
        if (at_dedup__put_in(pt, b, slot))
            return true;
    }
    return false;
}

/* Rebuilds the table with nb buckets (more if an insertion gives up) from
 * the ring's live entries. */
static void at_dedup__rehash(at_dedup_t *d, at_dedup_part_t *pt, int p, size_t nb)
{
    uint64_t *buf = at_xmalloc(at_dedup__chunk_bytes(d));
    for (;;) {
        at_dedup__free(pt->slots, pt->nb * AT_DEDUP_WAYS * sizeof *pt->slots);
        pt->slots = at_dedup__alloc(nb * AT_DEDUP_WAYS * sizeof *pt->slots);
        pt->nb = nb;
        bool ok = true;
        size_t cur = AT_DEDUP_NONE;
        const uint64_t *fps = NULL;
        for (size_t k = 0; ok && k < pt->n; k++) {
            size_t pos = at_dedup__at(d, pt, k), c = pos / d->chunk;
            if (!fps || c != cur)
                fps = at_dedup__chunk_fps(d, pt, p, cur = c, buf);
            const uint64_t *fp = &fps[AT_DEDUP_W * (pos - c * d->chunk)];
            if (fp[0] || fp[1])
                ok = at_dedup__place(d, pt, at_dedup__slot(d, at_dedup__tag(d, fp), pos),
                                     at_dedup__b1(pt, fp));
        }
        if (ok)
            break;
        nb += nb / 2 + 1;
    }
    free(buf);
}

/* The index in pt->slots of the slot holding fp, or -1. */
static long at_dedup__find(at_dedup_t *d, at_dedup_part_t *pt, int p, const uint64_t fp[2])
{
    if (!pt->nb)
        return -1;
    uint32_t tag = at_dedup__tag(d, fp);
    size_t b[2];
    b[0] = at_dedup__b1(pt, fp);
    b[1] = at_dedup__alt(pt, b[0], tag);
    for (int i = 0; i < 2; i++) {
        const uint32_t *s = &pt->slots[b[i] * AT_DEDUP_WAYS];
        for (int j = 0; j < AT_DEDUP_WAYS; j++) {
            if (!s[j] || s[j] >> d->ib != tag)
                continue;
            uint64_t got[2];
            at_dedup__fp_at(d, pt, p, at_dedup__pos(d, s[j]), got);
            if (got[0] == fp[0] && got[1] == fp[1])
                return (long)(b[i] * AT_DEDUP_WAYS + (size_t)j);
        }
    }
    return -1;
}

/* Empties the slot of the entry fp at pos; false if it has none (it was
 * forgotten). */
static bool at_dedup__unindex(const at_dedup_t *d, at_dedup_part_t *pt, const uint64_t fp[2],
                              size_t pos)
{
    uint32_t want = at_dedup__slot(d, at_dedup__tag(d, fp), pos);
    size_t b = at_dedup__b1(pt, fp);
    for (int i = 0; i < 2; i++, b = at_dedup__alt(pt, b, want >> d->ib)) {
        uint32_t *s = &pt->slots[b * AT_DEDUP_WAYS];
        for (int j = 0; j < AT_DEDUP_WAYS; j++)
            if (s[j] == want) {
                s[j] = 0;
                return true;
            }
    }
    return false;
}

/* ---- expiry, eviction, insertion ---------------------------------------- */

/* The oldest entry (its fingerprint and receive time), its chunk read
 * into the head's copy if memory does not hold it. */
static const uint64_t *at_dedup__oldest(at_dedup_t *d, at_dedup_part_t *pt, int p)
{
    size_t c = pt->head / d->chunk;
    const uint64_t *m = at_dedup__held(pt, c);
    if (!m) {
        if (!pt->hbuf)
            pt->hbuf = at_xmalloc(at_dedup__chunk_bytes(d));
        at_dedup__read(d, pt->hbuf, at_dedup__chunk_bytes(d), at_dedup__off(d, p, c * d->chunk));
        pt->head_chunk = c;
        m = pt->hbuf;
    }
    return &m[AT_DEDUP_W * (pt->head - c * d->chunk)];
}

/* Pops the oldest entry; returns true if it was live. */
static bool at_dedup__pop(at_dedup_t *d, at_dedup_part_t *pt, int p)
{
    const uint64_t *fp = at_dedup__oldest(d, pt, p);
    bool live = (fp[0] || fp[1]) && at_dedup__unindex(d, pt, fp, pt->head);
    if (live) {
        pt->live--;
        d->size--;
    }
    pt->head = at_dedup__at(d, pt, 1);
    pt->n--;
    return live;
}

/* Buckets for live + 1 entries: growing by half while under a load of
 * AT_DEDUP_LOAD, and no more than the cap needs at that load (at 0.9,
 * insertions moved entries often enough to cost a quarter more time per
 * check in bench_dedup; 0.85 costs 0.3 bytes an id more). */
static void at_dedup__grow_table(at_dedup_t *d, at_dedup_part_t *pt, int p)
{
    size_t need = pt->live + 1, ways = AT_DEDUP_WAYS;
    if (pt->nb && need * 100 <= pt->nb * ways * AT_DEDUP_LOAD)
        return;
    size_t most = (size_t)(d->cap * 100 / AT_DEDUP_LOAD / ways) + 1;
    size_t n = pt->nb ? pt->nb + pt->nb / 2 : 32;
    if (n > most)
        n = most;
    if (n * ways * AT_DEDUP_LOAD < need * 100)
        n = need * 100 / AT_DEDUP_LOAD / ways + 1;
    at_dedup__rehash(d, pt, p, n);
}

static void at_dedup__insert(at_dedup_t *d, at_dedup_part_t *pt, int p, const uint64_t fp[2],
                             int64_t recv_ms)
{
    while (pt->n >= d->cap)
        if (at_dedup__pop(d, pt, p))
            d->evicted++;
    at_dedup__grow_table(d, pt, p);
    size_t pos = at_dedup__at(d, pt, pt->n), c = pos / d->chunk;
    if (c != pt->tail_chunk)
        at_dedup__start(d, pt, p, c);
    uint64_t *e = &pt->tail[AT_DEDUP_W * (pos - c * d->chunk)];
    e[0] = fp[0];
    e[1] = fp[1];
    e[2] = (uint64_t)recv_ms;
    pt->n++;
    pt->live++;
    d->size++;
    if (!at_dedup__place(d, pt, at_dedup__slot(d, at_dedup__tag(d, fp), pos), at_dedup__b1(pt, fp)))
        at_dedup__rehash(d, pt, p, pt->nb + pt->nb / 2 + 1);
}

/* The fingerprint of id; never {0, 0}, which marks a forgotten entry. */
static void at_dedup__fingerprint(const at_dedup_t *d, const char *id, size_t n, uint64_t fp[2])
{
    at_hash128(id, n, d->seed, fp);
    if (!fp[0] && !fp[1])
        fp[0] = 1;
}

/* See at_ingest.h. Thread: the owner's. */
bool at_dedup_check(at_dedup_t *d, int p, const char *id, size_t n, int64_t recv_ms)
{
    AT_ASSERT(p >= 0 && p < d->partitions);
    at_dedup_part_t *pt = &d->parts[p];
    int64_t oldest = recv_ms - d->horizon_ms; /* at or before: expired */
    while (pt->n && (int64_t)at_dedup__oldest(d, pt, p)[2] <= oldest)
        at_dedup__pop(d, pt, p);
    uint64_t fp[2];
    at_dedup__fingerprint(d, id, n, fp);
    if (at_dedup__find(d, pt, p, fp) >= 0)
        return true;
    at_dedup__insert(d, pt, p, fp, recv_ms);
    return false;
}

/* See at_ingest.h. Thread: the owner's. */
void at_dedup_forget(at_dedup_t *d, int p, const char *id, size_t n)
{
    AT_ASSERT(p >= 0 && p < d->partitions);
    at_dedup_part_t *pt = &d->parts[p];
    uint64_t fp[2];
    at_dedup__fingerprint(d, id, n, fp);
    long i = at_dedup__find(d, pt, p, fp);
    if (i < 0)
        return;
    size_t pos = at_dedup__pos(d, pt->slots[i]);
    pt->slots[i] = 0;
    pt->live--;
    d->size--;
    if (pos == at_dedup__at(d, pt, pt->n - 1)) {
        pt->n--; /* the newest: its place is given back */
        return;
    }
    /* marked forgotten where it is kept: the chunk in memory, or the file
     * (and the head's copy of it) */
    size_t c = pos / d->chunk, k = AT_DEDUP_W * (pos - c * d->chunk);
    uint64_t *m = at_dedup__held(pt, c);
    if (!m || m == pt->hbuf) {
        static const uint64_t zero[2];
        (void)at_dedup__write(d, zero, sizeof zero, at_dedup__off(d, p, pos));
    }
    if (m)
        m[k] = m[k + 1] = 0;
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

/* Fingerprints read from the file to settle a matching tag. Thread: the
 * owner's. */
uint64_t at_dedup_reads(const at_dedup_t *d)
{
    return d->reads;
}

/* Failed reads and writes of the file. Thread: the owner's. */
uint64_t at_dedup_errors(const at_dedup_t *d)
{
    return d->errors;
}

/* Bytes of memory: tables and chunks (what they were
 * allocated, used or not), not the file. Thread: the owner's. */
uint64_t at_dedup_bytes(const at_dedup_t *d)
{
    uint64_t b = 0, chunk = at_dedup__chunk_bytes(d);
    for (int i = 0; i < d->partitions; i++) {
        const at_dedup_part_t *pt = &d->parts[i];
        b += pt->nb * AT_DEDUP_WAYS * sizeof *pt->slots;
        b += (pt->tail ? chunk : 0) + (pt->hbuf ? chunk : 0) + pt->npend * chunk;
    }
    return b;
}
