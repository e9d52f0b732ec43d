/* eval_knn.c - the item-kNN baseline of the harness (at_eval.h).
 *
 * Interactions are binary: a user has an item or not. For two items i and
 * j, C(i,j) counts the users who have both and U(i) the users who have i;
 * their cosine similarity is C(i,j) / sqrt(U(i) U(j)). The neighbours of
 * i are the N items of highest similarity to it (ties: the item seen
 * first); a candidate scores the sum of its similarities to the user's
 * items of which it is a neighbour, and the list is the candidates of
 * highest score (ties: the item seen first), never the user's own items.
 *
 * C and U are kept up to date as interactions arrive: a user's first
 * interaction with an item adds one to C(item, j) and C(j, item) for each
 * item j the user already has. Similarities are computed when asked, for
 * the user's AT_EVAL_KNN_RECENT (10) most recent items, from the counts of
 * that moment: no cache to invalidate, and a list costs the sum of those
 * items' co-occurrence rows (docs/decisions/0008-eval.md has the
 * measurement that chose 10, and why not all of the user's items).
 *
 * THREAD SAFETY: an instance belongs to one thread.
 */
#include "eval_int.h"

#include "at_stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct at_eval__kitem {
    at_eval__map_t co; /* j -> C(i, j) */
    uint32_t users;    /* U(i) */
} at_eval__kitem_t;

typedef struct at_eval__scored {
    double s;
    uint32_t id;
} at_eval__scored_t;

typedef struct at_eval__knn {
    size_t neighbours;
    at_sdict_t *users, *items; /* ids -> dense indexes, in order of first appearance */
    at_eval__vec_t *uitems;    /* by user: the user's items, in order of first interaction */
    uint32_t nu;
    at_eval__kitem_t *it;
    uint32_t ni;
    double *inv;          /* by item: 1 / sqrt(U(i)) */
    size_t recent;        /* a list looks at the user's last `recent` items; 0: all */
    at_eval__set_t pairs; /* (user, item) pairs seen */
    /* a list's scratch, by item */
    double *score;
    uint32_t *touched, ntouched;
    at_eval__scored_t *heap; /* a row's similarities, then the candidates */
    size_t heap_cap;
} at_eval__knn_t;

static void *at_eval__knn_open(const void *opts)
{
    const at_eval_method_opts_t *o = opts;
    at_eval__knn_t *p = at_xcalloc(1, sizeof *p);
    p->neighbours = o && o->param ? o->param : AT_EVAL_KNN_DEFAULT;
    p->recent = AT_EVAL_KNN_RECENT;
    p->users = at_sdict_new(UINT32_MAX - 1, SIZE_MAX);
    p->items = at_sdict_new(UINT32_MAX - 1, SIZE_MAX);
    return p;
}

static void at_eval__knn_close(void *m)
{
    at_eval__knn_t *p = m;
    if (!p)
        return;
    for (uint32_t u = 0; u < p->nu; u++)
        free(p->uitems[u].v);
    for (uint32_t i = 0; i < p->ni; i++)
        at_eval__map_deinit(&p->it[i].co);
    free(p->uitems);
    free(p->it);
    at_eval__set_deinit(&p->pairs);
    at_sdict_free(p->users);
    at_sdict_free(p->items);
    free(p->score);
    free(p->inv);
    free(p->touched);
    free(p->heap);
    free(p);
}

/* Makes room for user index u (new ones empty). */
static void at_eval__knn_user(at_eval__knn_t *p, uint32_t u)
{
    if (u < p->nu)
        return;
    uint32_t n = AT_MAX(u + 1, p->nu * 2);
    p->uitems = at_xrealloc(p->uitems, (size_t)n * sizeof *p->uitems);
    memset(p->uitems + p->nu, 0, (size_t)(n - p->nu) * sizeof *p->uitems);
    p->nu = n;
}

/* Makes room for item index i (new ones empty), and the scratch. */
static void at_eval__knn_item(at_eval__knn_t *p, uint32_t i)
{
    if (i < p->ni)
        return;
    uint32_t n = AT_MAX(i + 1, p->ni * 2);
    p->it = at_xrealloc(p->it, (size_t)n * sizeof *p->it);
    memset(p->it + p->ni, 0, (size_t)(n - p->ni) * sizeof *p->it);
    p->inv = at_xrealloc(p->inv, (size_t)n * sizeof *p->inv);
    p->score = at_xrealloc(p->score, (size_t)n * sizeof *p->score);
    memset(p->score + p->ni, 0, (size_t)(n - p->ni) * sizeof *p->score);
    p->touched = at_xrealloc(p->touched, (size_t)n * sizeof *p->touched);
    p->ni = n;
}

static void at_eval__knn_observe(void *m, const at_eval_ev_t *ev)
{
    at_eval__knn_t *p = m;
    if (!ev->item_len)
        return;
    uint32_t u = at_sdict_intern(p->users, ev->user, ev->user_len);
    uint32_t i = at_sdict_intern(p->items, ev->item, ev->item_len);
    AT_ASSERT(u != AT_SDICT_NONE && i != AT_SDICT_NONE);
    at_eval__knn_user(p, u);
    at_eval__knn_item(p, i);
    if (!at_eval__set_add(&p->pairs, at_eval__pair(u, i)))
        return; /* a repeat: the sets do not change */
    at_eval__vec_t *ui = &p->uitems[u];
    for (uint32_t x = 0; x < ui->n; x++) {
        (void)at_eval__map_inc(&p->it[i].co, ui->v[x]);
        (void)at_eval__map_inc(&p->it[ui->v[x]].co, i);
    }
    at_eval__vec_push(ui, i);
    p->it[i].users++;
    p->inv[i] = 1.0 / sqrt((double)p->it[i].users);
}

/* Whether a ranks before b: higher score, then the item seen first. */
static inline bool at_eval__better(const at_eval__scored_t *a, const at_eval__scored_t *b)
{
    return a->s != b->s ? a->s > b->s : a->id < b->id;
}

static inline void at_eval__swap(at_eval__scored_t *a, size_t i, size_t j)
{
    at_eval__scored_t x = a[i];
    a[i] = a[j];
    a[j] = x;
}

/* Sifts h[i] down in a heap of n with the best on top. */
static void at_eval__sift(at_eval__scored_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, t = i;
        if (l < n && at_eval__better(&h[l], &h[t]))
            t = l;
        if (r < n && at_eval__better(&h[r], &h[t]))
            t = r;
        if (t == i)
            return;
        at_eval__swap(h, i, t);
        i = t;
    }
}

static void at_eval__knn_heap(at_eval__knn_t *p, size_t n)
{
    if (n <= p->heap_cap)
        return;
    p->heap_cap = AT_MAX(n, p->heap_cap * 2);
    p->heap = at_xrealloc(p->heap, p->heap_cap * sizeof *p->heap);
}

/* Rearranges a[0, n) so that a[0, k) are its k best (in no order):
 * quickselect, the middle element as pivot. The order is total (ids are
 * unique), so which k are the best is exact. */
static void at_eval__select(at_eval__scored_t *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        at_eval__swap(a, lo + (hi - lo) / 2, hi - 1);
        size_t st = lo;
        for (size_t i = lo; i < hi - 1; i++)
            if (at_eval__better(&a[i], &a[hi - 1]))
                at_eval__swap(a, i, st++);
        at_eval__swap(a, st, hi - 1); /* [lo, st) better than a[st], the rest worse */
        if (st == k || st + 1 == k)
            return;
        if (k < st)
            hi = st;
        else
            lo = st + 1;
    }
}

/* Adds item i's top-N neighbours' similarities to the scores. */
static void at_eval__knn_row(at_eval__knn_t *p, uint32_t i)
{
    const at_eval__kitem_t *x = &p->it[i];
    double inv = p->inv[i];
    size_t h = 0;
    at_eval__knn_heap(p, x->co.used);
    for (uint32_t s = 0; s < x->co.cap; s++) {
        const at_eval__cnt_t *e = &x->co.e[s];
        if (e->key)
            p->heap[h++] = (at_eval__scored_t){(double)e->n * inv * p->inv[e->key - 1], e->key - 1};
    }
    if (h > p->neighbours) {
        at_eval__select(p->heap, h, p->neighbours);
        h = p->neighbours;
    }
    for (size_t k = 0; k < h; k++) {
        uint32_t j = p->heap[k].id;
        if (p->score[j] == 0.0)
            p->touched[p->ntouched++] = j;
        p->score[j] += p->heap[k].s;
    }
}

static size_t at_eval__knn_recommend(void *m, const char *user, size_t user_len, int64_t now_ms,
                                     size_t k, at_eval_skip_fn skip, void *skip_ud,
                                     const char **items, size_t *lens)
{
    at_eval__knn_t *p = m;
    (void)now_ms;
    uint32_t u = at_sdict_intern(p->users, user, user_len);
    if (u == AT_SDICT_NONE || u >= p->nu || !p->uitems[u].n)
        return 0;
    const at_eval__vec_t *ui = &p->uitems[u];
    p->ntouched = 0;
    uint32_t from = p->recent && ui->n > p->recent ? ui->n - (uint32_t)p->recent : 0;
    for (uint32_t x = from; x < ui->n; x++)
        at_eval__knn_row(p, ui->v[x]);
    /* The candidates into a heap, best on top; their scores back to 0. */
    size_t n = p->ntouched, got = 0;
    at_eval__knn_heap(p, n);
    for (size_t c = 0; c < n; c++) {
        uint32_t j = p->touched[c];
        p->heap[c] = (at_eval__scored_t){p->score[j], j};
        p->score[j] = 0.0;
    }
    for (size_t c = n / 2; c-- > 0;)
        at_eval__sift(p->heap, n, c);
    while (n && got < k) {
        uint32_t j = p->heap[0].id;
        p->heap[0] = p->heap[--n];
        at_eval__sift(p->heap, n, 0);
        if (at_eval__set_has(&p->pairs, at_eval__pair(u, j)))
            continue; /* the user's own: skip() would say so too */
        const char *s;
        uint32_t len;
        AT_ASSERT(at_sdict_get(p->items, j, &s, &len));
        if (skip(skip_ud, s, len))
            continue;
        items[got] = s;
        lens[got++] = len;
    }
    return got;
}

static const size_t at_eval__knn_grid[] = {10, 20, 50, 100, 200};

const at_eval_method_t at_eval_itemknn = {
    .name = "itemknn",
    .open = at_eval__knn_open,
    .observe = at_eval__knn_observe,
    .recommend = at_eval__knn_recommend,
    .close = at_eval__knn_close,
    .param = "neighbours",
    .grid = at_eval__knn_grid,
    .ngrid = AT_ARRAY_LEN(at_eval__knn_grid),
};
