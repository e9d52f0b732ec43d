/* eval_pop.c - the popularity baseline of the harness (at_eval.h): items
 * ranked by how many interactions they have had so far, repeats included,
 * ties by first appearance. The ranking is kept sorted as counts grow (an
 * item that gains one moves up past the items it now beats, found by
 * binary search), so a list costs k plus the user's skipped items.
 *
 * THREAD SAFETY: an instance belongs to one thread.
 */
#include "eval_int.h"

#include "at_stream.h"

#include <stdlib.h>
#include <string.h>

typedef struct at_eval__pop {
    at_sdict_t *items; /* item id -> dense index, in order of first appearance */
    uint64_t *count;   /* by index */
    uint32_t *ord;     /* indexes, by (count desc, index asc) */
    uint32_t *pos;     /* pos[index]: where it is in ord */
    uint32_t n, cap;
} at_eval__pop_t;

static void *at_eval__pop_open(const void *opts)
{
    (void)opts;
    at_eval__pop_t *p = at_xcalloc(1, sizeof *p);
    p->items = at_sdict_new(UINT32_MAX - 1, SIZE_MAX);
    return p;
}

static void at_eval__pop_close(void *m)
{
    at_eval__pop_t *p = m;
    if (!p)
        return;
    at_sdict_free(p->items);
    free(p->count);
    free(p->ord);
    free(p->pos);
    free(p);
}

/* Whether index a ranks before index b. */
static inline bool at_eval__pop_before(const at_eval__pop_t *p, uint32_t a, uint32_t b)
{
    return p->count[a] != p->count[b] ? p->count[a] > p->count[b] : a < b;
}

static void at_eval__pop_observe(void *m, const at_eval_ev_t *ev)
{
    at_eval__pop_t *p = m;
    if (!ev->item_len)
        return;
    uint32_t id = at_sdict_intern(p->items, ev->item, ev->item_len);
    AT_ASSERT(id != AT_SDICT_NONE && id <= p->n);
    if (id == p->n) { /* new: last, with no count */
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 1024;
            p->count = at_xrealloc(p->count, p->cap * sizeof *p->count);
            p->ord = at_xrealloc(p->ord, p->cap * sizeof *p->ord);
            p->pos = at_xrealloc(p->pos, p->cap * sizeof *p->pos);
        }
        p->count[id] = 0;
        p->ord[id] = p->pos[id] = id;
        p->n++;
    }
    p->count[id]++;
    /* [0, pos) is sorted and each of it ranked before id until now: find the
     * first that id now beats, and shift the rest right by one. */
    uint32_t lo = 0, hi = p->pos[id];
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (at_eval__pop_before(p, p->ord[mid], id))
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t from = p->pos[id];
    if (lo == from)
        return;
    memmove(p->ord + lo + 1, p->ord + lo, (size_t)(from - lo) * sizeof *p->ord);
    p->ord[lo] = id;
    for (uint32_t i = lo; i <= from; i++)
        p->pos[p->ord[i]] = i;
}

static size_t at_eval__pop_recommend(void *m, const char *user, size_t user_len, int64_t now_ms,
                                     size_t k, at_eval_skip_fn skip, void *skip_ud,
                                     const char **items, size_t *lens)
{
    at_eval__pop_t *p = m;
    (void)user;
    (void)user_len;
    (void)now_ms;
    size_t got = 0;
    for (uint32_t i = 0; i < p->n && got < k; i++) {
        const char *s;
        uint32_t n;
        AT_ASSERT(at_sdict_get(p->items, p->ord[i], &s, &n));
        if (skip(skip_ud, s, n))
            continue;
        items[got] = s;
        lens[got++] = n;
    }
    return got;
}

const at_eval_method_t at_eval_popularity = {
    .name = "popularity",
    .open = at_eval__pop_open,
    .observe = at_eval__pop_observe,
    .recommend = at_eval__pop_recommend,
    .close = at_eval__pop_close,
};
