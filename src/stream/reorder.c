/* reorder.c - the reorder buffer (at_stream.h): a sorted run in a ring for
 * the arrivals in order, a binary min-heap for the others, both in
 * (ts, id, seq) order.
 *
 * An item's heap field is its heap index, or AT_REORDER_INRUN | its ring
 * slot. A removed run item leaves NULL in its slot; NULLs at either end of
 * the run are trimmed at once, so the run's first and newest slots always
 * hold items (when the run is not empty).
 *
 * THREAD SAFETY: one thread. */
#include "at_stream.h"

#include <stdlib.h>
#include <string.h>

#define AT_REORDER_INRUN 0x80000000u

void at_reorder_init(at_reorder_t *r)
{
    memset(r, 0, sizeof *r);
}

void at_reorder_deinit(at_reorder_t *r)
{
    free(r->v);
    free(r->run);
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

/* ---- the run ---------------------------------------------------------------------- */

static size_t at_reorder__slot(const at_reorder_t *r, size_t k)
{
    return (r->rhead + k) & (r->rcap - 1);
}

static at_pend_t *at_reorder__run_first(const at_reorder_t *r)
{
    return r->rlen ? r->run[r->rhead] : NULL;
}

static at_pend_t *at_reorder__run_last(const at_reorder_t *r)
{
    return r->rlen ? r->run[at_reorder__slot(r, r->rlen - 1)] : NULL;
}

static void at_reorder__run_append(at_reorder_t *r, at_pend_t *p)
{
    if (r->rlen == r->rcap) { /* grow: the slots move, so do their indexes */
        size_t cap = r->rcap ? r->rcap * 2 : 256;
        at_pend_t **run = at_xmalloc(cap * sizeof(at_pend_t *));
        for (size_t k = 0; k < r->rlen; k++) {
            at_pend_t *x = r->run[at_reorder__slot(r, k)];
            run[k] = x;
            if (x)
                x->heap = AT_REORDER_INRUN | (uint32_t)k;
        }
        free(r->run);
        r->run = run;
        r->rcap = cap;
        r->rhead = 0;
    }
    size_t s = at_reorder__slot(r, r->rlen++);
    r->run[s] = p;
    p->heap = AT_REORDER_INRUN | (uint32_t)s;
}

/* Drops NULL slots at both ends. */
static void at_reorder__run_trim(at_reorder_t *r)
{
    while (r->rlen && !r->run[r->rhead]) {
        r->rhead = (r->rhead + 1) & (r->rcap - 1);
        r->rlen--;
    }
    while (r->rlen && !r->run[at_reorder__slot(r, r->rlen - 1)])
        r->rlen--;
    if (!r->rlen)
        r->rhead = 0;
}

/* ---- the heap --------------------------------------------------------------------- */

static void at_reorder__put(at_reorder_t *r, size_t i, at_pend_t *p)
{
    r->v[i] = p;
    p->heap = (uint32_t)i;
}

static void at_reorder__heap_push(at_reorder_t *r, at_pend_t *p)
{
    if (r->nh == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->v = at_xrealloc(r->v, r->cap * sizeof(at_pend_t *));
    }
    size_t i = r->nh++;
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
        if (c >= r->nh)
            break;
        if (c + 1 < r->nh && at_pend_before(r->v[c + 1], r->v[c]))
            c++;
        if (!at_pend_before(r->v[c], last))
            break;
        at_reorder__put(r, i, r->v[c]);
        i = c;
    }
    at_reorder__put(r, i, last);
}

static void at_reorder__heap_remove(at_reorder_t *r, size_t i)
{
    at_pend_t *last = r->v[--r->nh];
    if (i < r->nh)
        at_reorder__fill(r, i, last);
}

/* ---- the buffer ------------------------------------------------------------------- */

void at_reorder_push(at_reorder_t *r, at_pend_t *p)
{
    at_pend_t *newest = at_reorder__run_last(r);
    if (!newest || !at_pend_before(p, newest))
        at_reorder__run_append(r, p);
    else
        at_reorder__heap_push(r, p);
    r->n++;
}

at_pend_t *at_reorder_first(const at_reorder_t *r)
{
    at_pend_t *a = at_reorder__run_first(r), *b = r->nh ? r->v[0] : NULL;
    if (!a || (b && at_pend_before(b, a)))
        return b;
    return a;
}

void at_reorder_remove(at_reorder_t *r, at_pend_t *p)
{
    if (p->heap & AT_REORDER_INRUN) {
        size_t s = p->heap & ~AT_REORDER_INRUN;
        AT_ASSERT(s < r->rcap && r->run[s] == p);
        r->run[s] = NULL;
        at_reorder__run_trim(r);
    } else {
        AT_ASSERT(p->heap < r->nh && r->v[p->heap] == p);
        at_reorder__heap_remove(r, p->heap);
    }
    r->n--;
}

at_pend_t *at_reorder_pop(at_reorder_t *r)
{
    at_pend_t *p = at_reorder_first(r);
    if (p)
        at_reorder_remove(r, p);
    return p;
}

at_pend_t *at_reorder_next(const at_reorder_t *r, size_t *pos)
{
    while (*pos < r->nh + r->rlen) {
        size_t k = (*pos)++;
        if (k < r->nh)
            return r->v[k];
        at_pend_t *p = r->run[at_reorder__slot(r, k - r->nh)];
        if (p)
            return p;
    }
    return NULL;
}
