/* sdict.c - a partition's string dictionary (at_stream.h): entries in an
 * array by id, their bytes in an arena that never moves them, and an
 * open-addressing index from hash to id. Strings read from the dictionary
 * are interned again each time a profile is stored; those (the entry's own
 * bytes) are found by address in a small cache, without hashing them.
 *
 * THREAD SAFETY: one thread (the partition's shard).
 */
#include "at_stream.h"

#include <stdlib.h>
#include <string.h>

#define AT_SDICT_BY_ADDR 8192 /* a power of 2 */

typedef struct at_sdent {
    const char *s; /* NULL: a hole (restore not finished, or corrupt) */
    uint32_t n;
    uint32_t h; /* low bits of the hash, to skip most compares */
} at_sdent_t;

struct at_sdict {
    at_sdent_t *v;
    uint32_t count, cap, clean;
    uint32_t *idx; /* 0 empty, else id + 1 */
    uint32_t idx_cap, used;
    uint32_t max_entries;
    size_t max_bytes, bytes;
    at_arena_t arena;
    /* by the address of an entry's bytes: 0, or its id + 1 (checked on use) */
    uint32_t by_addr[AT_SDICT_BY_ADDR];
};

static inline uint32_t *at_sdict__slot(at_sdict_t *d, const char *s)
{
    uintptr_t a = (uintptr_t)s;
    return &d->by_addr[(a ^ (a >> 12)) & (AT_SDICT_BY_ADDR - 1)];
}

at_sdict_t *at_sdict_new(uint32_t max_entries, size_t max_bytes)
{
    at_sdict_t *d = at_xcalloc(1, sizeof *d);
    d->max_entries = max_entries;
    d->max_bytes = max_bytes;
    d->idx_cap = 64;
    d->idx = at_xcalloc(d->idx_cap, sizeof *d->idx);
    at_arena_init(&d->arena, 16384);
    return d;
}

void at_sdict_free(at_sdict_t *d)
{
    if (!d)
        return;
    at_arena_deinit(&d->arena);
    free(d->v);
    free(d->idx);
    free(d);
}

static uint32_t at_sdict__find(const at_sdict_t *d, const char *s, size_t n, uint64_t h)
{
    uint32_t mask = d->idx_cap - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        uint32_t e = d->idx[i];
        if (!e)
            return AT_SDICT_NONE;
        const at_sdent_t *x = &d->v[e - 1];
        if (x->h == (uint32_t)(h >> 32) && x->n == n && !memcmp(x->s, s, n))
            return e - 1;
    }
}

static void at_sdict__index(at_sdict_t *d, uint32_t id)
{
    if ((d->used + 1) * 4 > d->idx_cap * 3) {
        uint32_t cap = d->idx_cap * 2;
        uint32_t *idx = at_xcalloc(cap, sizeof *idx);
        for (uint32_t i = 0; i < d->count; i++) {
            if (!d->v[i].s)
                continue;
            uint32_t j = (uint32_t)at_hash64(d->v[i].s, d->v[i].n) & (cap - 1);
            while (idx[j])
                j = (j + 1) & (cap - 1);
            idx[j] = i + 1;
        }
        free(d->idx);
        d->idx = idx;
        d->idx_cap = cap;
    }
    uint64_t h = at_hash64(d->v[id].s, d->v[id].n);
    uint32_t mask = d->idx_cap - 1, j = (uint32_t)h & mask;
    while (d->idx[j])
        j = (j + 1) & mask;
    d->idx[j] = id + 1;
    d->used++;
}

static void at_sdict__set(at_sdict_t *d, uint32_t id, const char *s, size_t n, uint64_t h)
{
    if (id >= d->cap) {
        uint32_t cap = d->cap ? d->cap : 16;
        while (cap <= id)
            cap *= 2;
        d->v = at_xrealloc(d->v, cap * sizeof *d->v);
        memset(d->v + d->cap, 0, (cap - d->cap) * sizeof *d->v);
        d->cap = cap;
    }
    d->v[id] = (at_sdent_t){at_arena_strndup(&d->arena, s, n), (uint32_t)n, (uint32_t)(h >> 32)};
    if (id >= d->count)
        d->count = id + 1;
    d->bytes += n + sizeof(at_sdent_t) + 2 * sizeof(uint32_t);
    at_sdict__index(d, id);
}

static uint32_t at_sdict__intern(at_sdict_t *d, const char *s, size_t n, uint32_t max_entries,
                                 size_t max_bytes)
{
    if (!n || n > UINT32_MAX)
        return AT_SDICT_NONE;
    uint32_t *c = at_sdict__slot(d, s);
    if (*c && d->v[*c - 1].s == s && d->v[*c - 1].n == n)
        return *c - 1; /* the entry's own bytes: entries are unique, so it is this one */
    uint64_t h = at_hash64(s, n);
    uint32_t id = at_sdict__find(d, s, n, h);
    if (id != AT_SDICT_NONE) {
        *at_sdict__slot(d, d->v[id].s) = id + 1;
        return id;
    }
    if (d->count >= max_entries || d->bytes + n > max_bytes)
        return id;
    id = d->count;
    at_sdict__set(d, id, s, n, h);
    return id;
}

uint32_t at_sdict_intern(at_sdict_t *d, const char *s, size_t n)
{
    return at_sdict__intern(d, s, n, d->max_entries, d->max_bytes);
}

uint32_t at_sdict_intern_half(at_sdict_t *d, const char *s, size_t n)
{
    return at_sdict__intern(d, s, n, d->max_entries / 2, d->max_bytes / 2);
}

bool at_sdict_get(const at_sdict_t *d, uint32_t id, const char **s, uint32_t *n)
{
    if (id >= d->count || !d->v[id].s)
        return false;
    *s = d->v[id].s;
    *n = d->v[id].n;
    return true;
}

int at_sdict_put(at_sdict_t *d, uint32_t id, const char *s, size_t n)
{
    if (!n || n > UINT32_MAX || id == AT_SDICT_NONE)
        return AT_ECORRUPT;
    uint64_t h = at_hash64(s, n);
    uint32_t have = at_sdict__find(d, s, n, h);
    if (have != AT_SDICT_NONE)
        return have == id ? 0 : AT_ECORRUPT;
    if (id < d->count && d->v[id].s)
        return AT_ECORRUPT;
    at_sdict__set(d, id, s, n, h);
    d->clean = d->count;
    return 0;
}

uint32_t at_sdict_count(const at_sdict_t *d)
{
    return d->count;
}

void at_sdict_dirty(const at_sdict_t *d, uint32_t *from)
{
    *from = d->clean;
}

void at_sdict_clean(at_sdict_t *d)
{
    d->clean = d->count;
}

size_t at_sdict_bytes(const at_sdict_t *d)
{
    return sizeof *d + (size_t)d->cap * sizeof *d->v + (size_t)d->idx_cap * sizeof *d->idx +
           d->bytes;
}
