/* eval_map.c - the harness's small containers (eval_int.h): a set of
 * 64-bit keys and a map of 32-bit keys to counts, both open addressing with
 * linear probing, kept at most 3/4 full; and a growable array of ids.
 *
 * THREAD SAFETY: each object belongs to one thread.
 */
#include "eval_int.h"

#include <stdlib.h>
#include <string.h>

/* A 64-bit mix (splitmix64's finalizer): ids are dense, so spread them. */
static inline uint64_t at_eval__mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void at_eval__set_deinit(at_eval__set_t *s)
{
    free(s->k);
    *s = (at_eval__set_t){0};
}

static void at_eval__set_grow(at_eval__set_t *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    uint64_t *k = at_xmalloc(cap * sizeof *k);
    memset(k, 0xff, cap * sizeof *k);
    for (size_t i = 0; i < s->cap; i++) {
        if (s->k[i] == UINT64_MAX)
            continue;
        size_t j = (size_t)at_eval__mix(s->k[i]) & (cap - 1);
        while (k[j] != UINT64_MAX)
            j = (j + 1) & (cap - 1);
        k[j] = s->k[i];
    }
    free(s->k);
    s->k = k;
    s->cap = cap;
}

bool at_eval__set_add(at_eval__set_t *s, uint64_t key)
{
    AT_ASSERT(key != UINT64_MAX);
    if ((s->used + 1) * 4 > s->cap * 3)
        at_eval__set_grow(s);
    size_t j = (size_t)at_eval__mix(key) & (s->cap - 1);
    for (; s->k[j] != UINT64_MAX; j = (j + 1) & (s->cap - 1))
        if (s->k[j] == key)
            return false;
    s->k[j] = key;
    s->used++;
    return true;
}

bool at_eval__set_has(const at_eval__set_t *s, uint64_t key)
{
    if (!s->cap)
        return false;
    size_t j = (size_t)at_eval__mix(key) & (s->cap - 1);
    for (; s->k[j] != UINT64_MAX; j = (j + 1) & (s->cap - 1))
        if (s->k[j] == key)
            return true;
    return false;
}

void at_eval__map_deinit(at_eval__map_t *m)
{
    free(m->e);
    *m = (at_eval__map_t){0};
}

static void at_eval__map_grow(at_eval__map_t *m)
{
    uint32_t cap = m->cap ? m->cap * 2 : 8;
    AT_ASSERT(cap > m->cap);
    at_eval__cnt_t *e = at_xcalloc(cap, sizeof *e);
    for (uint32_t i = 0; i < m->cap; i++) {
        if (!m->e[i].key)
            continue;
        uint32_t j = (uint32_t)at_eval__mix(m->e[i].key) & (cap - 1);
        while (e[j].key)
            j = (j + 1) & (cap - 1);
        e[j] = m->e[i];
    }
    free(m->e);
    m->e = e;
    m->cap = cap;
}

uint32_t at_eval__map_inc(at_eval__map_t *m, uint32_t key)
{
    AT_ASSERT(key != UINT32_MAX);
    if ((m->used + 1) * 4 > m->cap * 3)
        at_eval__map_grow(m);
    uint32_t k1 = key + 1;
    uint32_t j = (uint32_t)at_eval__mix(k1) & (m->cap - 1);
    for (; m->e[j].key; j = (j + 1) & (m->cap - 1))
        if (m->e[j].key == k1)
            return ++m->e[j].n;
    m->e[j] = (at_eval__cnt_t){k1, 1};
    m->used++;
    return 1;
}

void at_eval__vec_push(at_eval__vec_t *v, uint32_t x)
{
    if (v->n == v->cap) {
        AT_ASSERT(v->cap < UINT32_MAX / 2);
        v->cap = v->cap ? v->cap * 2 : 4;
        v->v = at_xrealloc(v->v, (size_t)v->cap * sizeof *v->v);
    }
    v->v[v->n++] = x;
}
