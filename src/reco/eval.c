/* eval.c - the prequential next-item harness (at_eval.h,
 * docs/decisions/0008-eval.md).
 *
 * One pass shows every method every interaction in time order. At an
 * interaction of the scored part whose item the user has not had before,
 * each method is first asked for the user's top-k, with the user's items
 * skipped for every method alike; the rank of the interaction's item in
 * that list (0: not in it) is kept; then every method observes it.
 * Repeats (the user had the item) and events without an item are observed
 * and not scored: a next item is a new one.
 *
 * HR@k is the share of scored interactions with the item in the list,
 * MRR@k the mean of 1/rank (0 when absent), NDCG@k the mean of
 * 1/log2(rank + 1) (one relevant item, so the ideal DCG is 1). Their 95%
 * intervals come from a bootstrap over users (interactions of one user are
 * not independent): resample the users who have a scored interaction with
 * replacement, recompute each metric over all their interactions, and take
 * the 2.5% and 97.5% points. Every method is resampled with the same draws
 * (the same seed), so the intervals of two methods are paired.
 *
 * THREAD SAFETY: a run belongs to one thread.
 */
#include "eval_int.h"

#include "at_stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void at_eval_opts_default(at_eval_opts_t *o)
{
    *o = (at_eval_opts_t){.k = 10, .tune = 0.1, .warmup = 0, .resamples = 1000, .seed = 1};
}

/* What a pass needs: the interactions as dense ids, and the methods. */
typedef struct at_eval__run {
    const at_eval_data_t *d;
    size_t n;
    uint32_t *uid, *iid; /* by interaction; iid AT_SDICT_NONE: no item */
    at_sdict_t *items;   /* item ids -> iid; skip() looks method answers up here */
    size_t k;
    const char **list;
    size_t *lens;
} at_eval__run_t;

typedef struct at_eval__skipctx {
    const at_eval__set_t *seen;
    at_sdict_t *items;
    uint32_t user;
} at_eval__skipctx_t;

static bool at_eval__skip(void *ud, const char *item, size_t len)
{
    const at_eval__skipctx_t *c = ud;
    uint32_t id = at_sdict_intern(c->items, item, len);
    return id != AT_SDICT_NONE && at_eval__set_has(c->seen, at_eval__pair(c->user, id));
}

/* One pass's methods and what it records. */
typedef struct at_eval__pass {
    size_t nm;
    const at_eval_method_t *const *m;
    void **inst;
    int64_t *ns; /* time in each method */
    size_t score_from, score_to;
    uint64_t scored, repeats, no_item;
    uint64_t *hits;  /* by method */
    uint16_t **rank; /* NULL, or by method: the rank of each scored interaction */
    uint32_t *who;   /* with rank: the user of each scored interaction */
} at_eval__pass_t;

/* The rank of item i's id in the method's list, 0 when absent. */
static uint16_t at_eval__rank(const at_eval__run_t *r, const at_eval_ev_t *e, size_t got)
{
    for (size_t x = 0; x < got; x++)
        if (r->lens[x] == e->item_len && !memcmp(r->list[x], e->item, e->item_len))
            return (uint16_t)(x + 1);
    return 0;
}

/* Asks every method for the list before interaction x and keeps the ranks. */
static void at_eval__score(const at_eval__run_t *r, at_eval__pass_t *ps, const at_eval__set_t *seen,
                           size_t x)
{
    const at_eval_ev_t *e = &r->d->ev[x];
    at_eval__skipctx_t ctx = {seen, r->items, r->uid[x]};
    for (size_t j = 0; j < ps->nm; j++) {
        int64_t t0 = at_time_mono_ns();
        size_t got = ps->m[j]->recommend(ps->inst[j], e->user, e->user_len, e->ts_ms, r->k,
                                         at_eval__skip, &ctx, r->list, r->lens);
        AT_ASSERT(got <= r->k);
        uint16_t rk = at_eval__rank(r, e, got);
        ps->ns[j] += at_time_mono_ns() - t0;
        ps->hits[j] += rk > 0;
        if (ps->rank)
            ps->rank[j][ps->scored] = rk;
    }
    if (ps->who)
        ps->who[ps->scored] = r->uid[x];
    ps->scored++;
}

/* Interactions [0, to) through every method of ps, scoring [score_from, to). */
static void at_eval__pass(const at_eval__run_t *r, at_eval__pass_t *ps, size_t to)
{
    at_eval__set_t seen = {0};
    for (size_t x = 0; x < to; x++) {
        bool scoring = x >= ps->score_from;
        bool has_item = r->iid[x] != AT_SDICT_NONE;
        bool fresh = has_item && !at_eval__set_has(&seen, at_eval__pair(r->uid[x], r->iid[x]));
        if (scoring && fresh)
            at_eval__score(r, ps, &seen, x);
        else if (scoring && has_item)
            ps->repeats++;
        else if (scoring)
            ps->no_item++;
        for (size_t j = 0; j < ps->nm; j++) {
            int64_t t0 = at_time_mono_ns();
            ps->m[j]->observe(ps->inst[j], &r->d->ev[x]);
            ps->ns[j] += at_time_mono_ns() - t0;
        }
        if (fresh)
            (void)at_eval__set_add(&seen, at_eval__pair(r->uid[x], r->iid[x]));
    }
    at_eval__set_deinit(&seen);
}

/* Opens an instance of m with mo (which it may not keep) into *inst. */
static void at_eval__open(const at_eval_method_t *m, const at_eval_method_opts_t *mo, void **inst,
                          int64_t *ns)
{
    int64_t t0 = at_time_mono_ns();
    *inst = m->open(mo);
    *ns += at_time_mono_ns() - t0;
    AT_ASSERT(*inst);
}

static void at_eval__close(const at_eval_method_t *m, void *inst, int64_t *ns)
{
    int64_t t0 = at_time_mono_ns();
    m->close(inst);
    *ns += at_time_mono_ns() - t0;
}

/* Tunes method mr->method on [0, tune_end): one pass per value of its grid;
 * the value with the most hits wins, the first on a tie. */
static void at_eval__tune(const at_eval__run_t *r, at_eval_mresult_t *mr, size_t tune_end,
                          uint64_t *tune_scored)
{
    const at_eval_method_t *m = mr->method;
    uint64_t best = 0;
    int64_t ns = 0;
    mr->ngrid = m->ngrid;
    mr->param = m->grid[0];
    for (size_t g = 0; g < m->ngrid; g++) {
        uint64_t hits = 0;
        void *inst;
        at_eval_method_opts_t mo = {.k = r->k, .param = m->grid[g]};
        at_eval__open(m, &mo, &inst, &ns);
        at_eval__pass_t ps = {.nm = 1, .m = &m, .inst = &inst, .ns = &ns, .hits = &hits};
        at_eval__pass(r, &ps, tune_end);
        at_eval__close(m, inst, &ns);
        mr->grid[g] = m->grid[g];
        mr->tune_hr[g] = ps.scored ? (double)hits / (double)ps.scored : 0.0;
        *tune_scored = ps.scored;
        if (hits > best) {
            best = hits;
            mr->param = m->grid[g];
        }
    }
    mr->tune_seconds = (double)ns / 1e9;
}

static int at_eval__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The three metrics' sums over one method's scored interactions, by
 * population user (pop[u]: the user's place, counts in cnt). */
typedef struct at_eval__sums {
    double *hr, *rr, *ndcg;
} at_eval__sums_t;

static void at_eval__interval(at_eval_ci_t *ci, double *v, uint32_t R)
{
    qsort(v, R, sizeof *v, at_eval__cmp_double);
    size_t lo = (size_t)((double)R * 0.025);
    ci->lo = v[lo];
    ci->hi = v[R - 1 - lo];
}

/* The point estimates and the bootstrap intervals of one method. */
static void at_eval__metrics(const at_eval_result_t *res, at_eval_mresult_t *mr,
                             const uint16_t *rank, const uint32_t *who, const uint32_t *pop,
                             const uint64_t *cnt, size_t P)
{
    at_eval__sums_t s = {at_xcalloc(P, sizeof(double)), at_xcalloc(P, sizeof(double)),
                         at_xcalloc(P, sizeof(double))};
    double hr = 0, rr = 0, nd = 0;
    for (uint64_t x = 0; x < res->scored; x++) {
        if (!rank[x])
            continue;
        double q = 1.0 / rank[x], g = 1.0 / log2(rank[x] + 1.0);
        uint32_t p = pop[who[x]];
        s.hr[p] += 1.0, s.rr[p] += q, s.ndcg[p] += g;
        hr += 1.0, rr += q, nd += g;
    }
    double N = res->scored ? (double)res->scored : 1.0;
    mr->hr = (at_eval_ci_t){hr / N, hr / N, hr / N};
    mr->mrr = (at_eval_ci_t){rr / N, rr / N, rr / N};
    mr->ndcg = (at_eval_ci_t){nd / N, nd / N, nd / N};
    uint32_t R = res->opts.resamples;
    if (R && P) {
        double *v[3] = {at_xmalloc(R * sizeof(double)), at_xmalloc(R * sizeof(double)),
                        at_xmalloc(R * sizeof(double))};
        uint64_t st = res->opts.seed;
        for (uint32_t b = 0; b < R; b++) {
            double a[3] = {0, 0, 0}, c = 0;
            for (size_t i = 0; i < P; i++) {
                size_t p = (size_t)(at_eval__rand(&st) % P);
                c += (double)cnt[p];
                a[0] += s.hr[p], a[1] += s.rr[p], a[2] += s.ndcg[p];
            }
            for (int m = 0; m < 3; m++)
                v[m][b] = a[m] / c;
        }
        at_eval__interval(&mr->hr, v[0], R);
        at_eval__interval(&mr->mrr, v[1], R);
        at_eval__interval(&mr->ndcg, v[2], R);
        for (int m = 0; m < 3; m++)
            free(v[m]);
    }
    free(s.hr);
    free(s.rr);
    free(s.ndcg);
}

static int at_eval__check(const at_eval_method_t *const *methods, size_t nm,
                          const at_eval_opts_t *o, at_error_t *err)
{
    if (o->k < 1 || o->k > AT_EVAL_K_MAX)
        return at_error_set(err, AT_EINVALID, "invalid_option", "k", "k must be 1 to %d",
                            AT_EVAL_K_MAX);
    if (!(o->tune >= 0 && o->tune < 1))
        return at_error_set(err, AT_EINVALID, "invalid_option", "tune",
                            "the tuning fraction must be in [0, 1)");
    if (!(o->warmup >= 0 && o->warmup < 1))
        return at_error_set(err, AT_EINVALID, "invalid_option", "warmup",
                            "the warm-up fraction must be in [0, 1)");
    if (!nm)
        return at_error_set(err, AT_EINVALID, "invalid_option", "methods", "no method");
    for (size_t j = 0; j < nm; j++)
        if (methods[j]->param && (!methods[j]->ngrid || methods[j]->ngrid > AT_EVAL_GRID_MAX))
            return at_error_set(err, AT_EINVALID, "invalid_option", "methods",
                                "%s: a grid of 1 to %d values", methods[j]->name, AT_EVAL_GRID_MAX);
    return 0;
}

/* Dense ids for the first r->n interactions; the counts into res. */
static void at_eval__ids(at_eval__run_t *r, at_eval_result_t *res)
{
    at_sdict_t *users = at_sdict_new(UINT32_MAX - 1, SIZE_MAX);
    r->items = at_sdict_new(UINT32_MAX - 1, SIZE_MAX);
    r->uid = at_xmalloc((r->n + 1) * sizeof *r->uid);
    r->iid = at_xmalloc((r->n + 1) * sizeof *r->iid);
    for (size_t x = 0; x < r->n; x++) {
        const at_eval_ev_t *e = &r->d->ev[x];
        r->uid[x] = at_sdict_intern(users, e->user, e->user_len);
        r->iid[x] = at_sdict_intern(r->items, e->item, e->item_len); /* NONE when empty */
        AT_ASSERT(r->uid[x] != AT_SDICT_NONE);
    }
    res->users = at_sdict_count(users);
    res->items = at_sdict_count(r->items);
    at_sdict_free(users);
}

/* The main pass: every method at its parameter over all of [0, n). */
static void at_eval__main(const at_eval__run_t *r, at_eval_result_t *res,
                          const at_eval_method_t *const *methods, uint16_t **rank, uint32_t *who)
{
    size_t nm = res->nm;
    void **inst = at_xcalloc(nm, sizeof *inst);
    int64_t *ns = at_xcalloc(nm, sizeof *ns);
    uint64_t *hits = at_xcalloc(nm, sizeof *hits);
    for (size_t j = 0; j < nm; j++) {
        at_eval_method_opts_t mo = {.k = r->k, .param = res->m[j].param};
        at_eval__open(methods[j], &mo, &inst[j], &ns[j]);
    }
    at_eval__pass_t ps = {.nm = nm,
                          .m = methods,
                          .inst = inst,
                          .ns = ns,
                          .score_from = res->score_from,
                          .hits = hits,
                          .rank = rank,
                          .who = who};
    at_eval__pass(r, &ps, r->n);
    for (size_t j = 0; j < nm; j++) {
        at_eval__close(methods[j], inst[j], &ns[j]);
        res->m[j].hits = hits[j];
        res->m[j].seconds = (double)ns[j] / 1e9;
    }
    res->scored = ps.scored;
    res->repeats = ps.repeats;
    res->no_item = ps.no_item;
    free(inst);
    free(ns);
    free(hits);
}

/* See at_eval.h. Thread: any. */
int at_eval_run(const at_eval_data_t *d, const at_eval_method_t *const *methods, size_t nm,
                const at_eval_opts_t *o, at_eval_result_t *res, at_error_t *err)
{
    *res = (at_eval_result_t){0};
    int rc = at_eval__check(methods, nm, o, err);
    if (rc < 0)
        return rc;
    at_eval__run_t r = {.d = d, .n = o->limit && o->limit < d->n ? o->limit : d->n, .k = o->k};
    res->opts = *o;
    res->n = r.n;
    res->nm = nm;
    res->m = at_xcalloc(nm, sizeof *res->m);
    res->tune_end = (size_t)((double)r.n * o->tune);
    res->score_from = AT_MAX(res->tune_end, (size_t)((double)r.n * o->warmup));
    r.list = at_xmalloc(o->k * sizeof *r.list);
    r.lens = at_xmalloc(o->k * sizeof *r.lens);
    at_eval__ids(&r, res);

    for (size_t j = 0; j < nm; j++) {
        res->m[j].method = methods[j];
        if (methods[j]->param)
            at_eval__tune(&r, &res->m[j], res->tune_end, &res->tune_scored);
    }
    /* Scored interactions are at most the interactions after score_from. */
    size_t cap = r.n - res->score_from + 1;
    uint16_t **rank = at_xcalloc(nm, sizeof *rank);
    for (size_t j = 0; j < nm; j++)
        rank[j] = at_xmalloc(cap * sizeof **rank);
    uint32_t *who = at_xmalloc(cap * sizeof *who);
    at_eval__main(&r, res, methods, rank, who);

    /* The bootstrap's population: users with a scored interaction. */
    uint32_t *pop = at_xmalloc((res->users + 1) * sizeof *pop);
    memset(pop, 0xff, (res->users + 1) * sizeof *pop);
    uint64_t *cnt = at_xcalloc(res->users + 1, sizeof *cnt);
    size_t P = 0;
    for (uint64_t x = 0; x < res->scored; x++) {
        if (pop[who[x]] == UINT32_MAX)
            pop[who[x]] = (uint32_t)P++;
        cnt[pop[who[x]]]++;
    }
    res->users_scored = P;
    for (size_t j = 0; j < nm; j++)
        at_eval__metrics(res, &res->m[j], rank[j], who, pop, cnt, P);

    for (size_t j = 0; j < nm; j++)
        free(rank[j]);
    free(rank);
    free(who);
    free(pop);
    free(cnt);
    free(r.uid);
    free(r.iid);
    free(r.list);
    free(r.lens);
    at_sdict_free(r.items);
    return 0;
}

void at_eval_result_free(at_eval_result_t *res)
{
    free(res->m);
    *res = (at_eval_result_t){0};
}
