/* ckpt_merge.c - the k-way merge of sorted runs that loading and
 * compaction share.
 *
 * A binary heap of cursors ordered by their current key, and among equal
 * keys by rank, newest first. The top is the next key's newest entry; the
 * older entries of that key are skipped before it is returned. Memory is
 * the cursors' buffers and the heap: nothing grows with the number of keys.
 */
#include "ckpt_int.h"

#include <stdlib.h>

/* True when cursor a's entry comes before b's: smaller key, or the same key
 * in a newer file. */
static bool at_ckpt__before(const at_ckpt__cur_t *a, const at_ckpt__cur_t *b)
{
    int c = at_ckpt__keycmp(a->key, a->klen, b->key, b->klen);
    return c < 0 || (c == 0 && a->rank > b->rank);
}

static void at_ckpt__sift_down(at_ckpt__merge_t *m, size_t i)
{
    size_t n = m->nheap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < n && at_ckpt__before(&m->cur[m->heap[l]], &m->cur[m->heap[best]]))
            best = l;
        if (r < n && at_ckpt__before(&m->cur[m->heap[r]], &m->cur[m->heap[best]]))
            best = r;
        if (best == i)
            return;
        size_t t = m->heap[i];
        m->heap[i] = m->heap[best];
        m->heap[best] = t;
        i = best;
    }
}

static void at_ckpt__sift_up(at_ckpt__merge_t *m, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!at_ckpt__before(&m->cur[m->heap[i]], &m->cur[m->heap[parent]]))
            return;
        size_t t = m->heap[i];
        m->heap[i] = m->heap[parent];
        m->heap[parent] = t;
        i = parent;
    }
}

/* Removes the heap's top. */
static void at_ckpt__pop(at_ckpt__merge_t *m)
{
    m->heap[0] = m->heap[--m->nheap];
    if (m->nheap)
        at_ckpt__sift_down(m, 0);
}

/* Advances the top cursor and restores the heap. Returns 0 or <0. */
static int at_ckpt__advance_top(at_ckpt__merge_t *m)
{
    size_t i = m->heap[0];
    int rc = at_ckpt__cur_next(&m->cur[i]);
    if (rc < 0) {
        m->failed = (int)i;
        return rc;
    }
    if (rc == 0)
        at_ckpt__pop(m);
    else
        at_ckpt__sift_down(m, 0);
    return 0;
}

/* Primes every cursor (cur[i].rank must be i) and builds the heap. Returns
 * 0, or a cursor's error with m->failed set to its index. Thread: the
 * cursors' owner. */
int at_ckpt__merge_init(at_ckpt__merge_t *m, at_ckpt__cur_t *cur, size_t n)
{
    m->cur = cur;
    m->n = n;
    m->heap = at_xmalloc((n ? n : 1) * sizeof *m->heap);
    m->nheap = 0;
    m->pending = SIZE_MAX;
    m->failed = -1;
    for (size_t i = 0; i < n; i++) {
        AT_ASSERT(cur[i].rank == (int)i);
        int rc = at_ckpt__cur_next(&cur[i]);
        if (rc < 0) {
            m->failed = (int)i;
            return rc;
        }
        if (rc == 1) {
            m->heap[m->nheap++] = i;
            at_ckpt__sift_up(m, m->nheap - 1);
        }
    }
    return 0;
}

/* Returns 1 with *top pointing at the cursor whose entry is the next key's
 * newest (valid until the next call), 0 when every cursor is done, or <0
 * with m->failed set. */
int at_ckpt__merge_next(at_ckpt__merge_t *m, at_ckpt__cur_t **top)
{
    if (m->pending != SIZE_MAX) {
        size_t i = m->pending;
        m->pending = SIZE_MAX;
        int rc = at_ckpt__cur_next(&m->cur[i]);
        if (rc < 0) {
            m->failed = (int)i;
            return rc;
        }
        if (rc == 1) {
            m->heap[m->nheap++] = i;
            at_ckpt__sift_up(m, m->nheap - 1);
        }
    }
    if (m->nheap == 0)
        return 0;
    size_t i = m->heap[0];
    at_ckpt__cur_t *c = &m->cur[i];
    at_ckpt__pop(m);
    /* Older entries of the same key sit at the top now; c is not advanced
     * yet, so its key stays valid for the comparison. */
    while (m->nheap) {
        const at_ckpt__cur_t *o = &m->cur[m->heap[0]];
        if (at_ckpt__keycmp(o->key, o->klen, c->key, c->klen) != 0)
            break;
        int rc = at_ckpt__advance_top(m);
        if (rc < 0)
            return rc;
    }
    m->pending = i;
    *top = c;
    return 1;
}

/* Frees the heap (the cursors stay the caller's). */
void at_ckpt__merge_deinit(at_ckpt__merge_t *m)
{
    free(m->heap);
    m->heap = NULL;
    m->nheap = 0;
}
