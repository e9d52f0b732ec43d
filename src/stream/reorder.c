/* reorder.c - the reorder buffer: a binary min-heap of pending events in
 * (ts, id, seq) order. THREAD SAFETY: one thread. */
#include "at_stream.h"

#include <stdlib.h>
#include <string.h>

void at_reorder_init(at_reorder_t *r)
{
    memset(r, 0, sizeof *r);
}

void at_reorder_deinit(at_reorder_t *r)
{
    free(r->v);
    memset(r, 0, sizeof *r);
}

bool at_pend_before(const at_pend_t *a, const at_pend_t *b)
{
    if (a->ts != b->ts)
        return a->ts < b->ts;
    size_t n = AT_MIN(a->id_len, b->id_len);
    int c = memcmp(a->id, b->id, n);
    if (c || a->id_len != b->id_len)
        return c ? c < 0 : a->id_len < b->id_len;
    return a->seq < b->seq;
}

static void at_reorder__put(at_reorder_t *r, size_t i, at_pend_t *p)
{
    r->v[i] = p;
    p->heap = (uint32_t)i;
}

void at_reorder_push(at_reorder_t *r, at_pend_t *p)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->v = at_xrealloc(r->v, r->cap * sizeof *r->v);
    }
    size_t i = r->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!at_pend_before(p, r->v[up]))
            break;
        at_reorder__put(r, i, r->v[up]);
        i = up;
    }
    at_reorder__put(r, i, p);
}

/* Puts `last` into the hole at i, sifting it down or up. */
static void at_reorder__fill(at_reorder_t *r, size_t i, at_pend_t *last)
{
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!at_pend_before(last, r->v[up]))
            break;
        at_reorder__put(r, i, r->v[up]);
        i = up;
    }
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= r->n)
            break;
        if (c + 1 < r->n && at_pend_before(r->v[c + 1], r->v[c]))
            c++;
        if (!at_pend_before(r->v[c], last))
            break;
        at_reorder__put(r, i, r->v[c]);
        i = c;
    }
    at_reorder__put(r, i, last);
}

at_pend_t *at_reorder_pop(at_reorder_t *r)
{
    if (!r->n)
        return NULL;
    at_pend_t *top = r->v[0], *last = r->v[--r->n];
    if (r->n)
        at_reorder__fill(r, 0, last);
    return top;
}

void at_reorder_remove(at_reorder_t *r, at_pend_t *p)
{
    size_t i = p->heap;
    AT_ASSERT(i < r->n && r->v[i] == p);
    at_pend_t *last = r->v[--r->n];
    if (i < r->n)
        at_reorder__fill(r, i, last);
}
