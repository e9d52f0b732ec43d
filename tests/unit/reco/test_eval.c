/* test_eval.c - the prequential harness of `attune eval` on a dataset
 * small enough to work out by hand: HR, MRR and NDCG of popularity and
 * item-kNN (exact values, ties included), the neighbourhood limit and its
 * tuning, the exclusion of the user's items for every method, repeats and
 * events without an item left unscored, the ask-before-observe order, and
 * the bootstrap intervals (deterministic for a seed, around the point
 * estimate). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "at_eval.h"
#include "eval_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Eleven interactions on items a-d; the last is a repeat. Worked out by
 * hand with k = 2 (popularity's counts and item-kNN's similarities at each
 * step are in the comments of the tests). */
static const char k_csv[] = "user,item,timestamp\n"
                            "1,a,1\n"
                            "2,a,2\n"
                            "2,b,3\n"
                            "3,b,4\n"
                            "1,b,5\n"
                            "3,c,6\n"
                            "1,c,7\n"
                            "2,d,8\n"
                            "4,b,9\n"
                            "4,c,10\n"
                            "1,a,11\n";

static void load(at_eval_data_t *d, const char *src, at_eval_format_t fmt)
{
    at_error_t err = {0};
    at_eval_data_init(d);
    int rc = at_eval_data_parse(d, src, strlen(src), fmt, &err);
    if (rc != 0)
        fail_msg("parse: %s", err.message);
}

static void opts_exact(at_eval_opts_t *o)
{
    at_eval_opts_default(o);
    o->k = 2;
    o->tune = 0; /* score everything */
    o->resamples = 200;
}

static void run(const at_eval_data_t *d, const at_eval_method_t *const *m, size_t nm,
                const at_eval_opts_t *o, at_eval_result_t *res)
{
    at_error_t err = {0};
    int rc = at_eval_run(d, m, nm, o, res, &err);
    if (rc != 0)
        fail_msg("run: %s", err.message);
}

#define EPS 1e-12

static void test_popularity_by_hand(void **state)
{
    (void)state;
    /* counts before each (ties by first appearance), list with k = 2 minus
     * the user's items, rank of the item:
     *  1a {}                   []     miss     6c b3 a2       [a]    miss (u3 has b)
     *  2a a1                   [a]    1        7c b3 a2 c1    [c]    1 (u1 has a, b)
     *  2b a2                   []     miss     8d b3 a2 c2    [c]    miss
     *  3b a2 b1                [a b]  2        9b b3 a2 c2 d1 [b a]  1
     *  1b a2 b2 (a first)      [b]    1       10c b4 a2 c2    [a c]  2 (a before c)
     * 11a is a repeat. HR 6/10, MRR 5/10, NDCG (4 + 2/log2 3)/10. */
    at_eval_data_t d;
    load(&d, k_csv, AT_EVAL_FMT_CSV);
    at_eval_opts_t o;
    opts_exact(&o);
    const at_eval_method_t *m[] = {&at_eval_popularity};
    at_eval_result_t r;
    run(&d, m, 1, &o, &r);
    assert_int_equal(r.n, 11);
    assert_int_equal(r.users, 4);
    assert_int_equal(r.items, 4);
    assert_int_equal(r.scored, 10);
    assert_int_equal(r.repeats, 1);
    assert_int_equal(r.m[0].hits, 6);
    assert_true(fabs(r.m[0].hr.value - 0.6) < EPS);
    assert_true(fabs(r.m[0].mrr.value - 0.5) < EPS);
    assert_true(fabs(r.m[0].ndcg.value - (4 + 2 / log2(3)) / 10) < EPS);
    at_eval_result_free(&r);
    at_eval_data_deinit(&d);
}

static void test_itemknn_by_hand(void **state)
{
    (void)state;
    /* sim(i,j) = C(i,j) / sqrt(U(i) U(j)) over the counts before each:
     *  1a 2a 2b 3b: no user item with a co-occurrence yet     miss x4
     *  1b: a -> b 1/sqrt(2*2)                       [b]       1
     *  6c: b -> a 2/sqrt(3*2)                       [a]       miss
     *  7c: a -> b .816; b -> a .816, c 1/sqrt(3*1)  [c]       1
     *  8d: a -> b, c .5; b -> a, c 2/sqrt(3*2)      [c]       miss
     *  9b: u4 has nothing                           []        miss
     * 10c: b -> a 2/sqrt(4*2), c 2/sqrt(4*2) (tie: a first), d .5
     *                                               [a c]     2
     * HR 3/10, MRR 2.5/10, NDCG (2 + 1/log2 3)/10. */
    at_eval_data_t d;
    load(&d, k_csv, AT_EVAL_FMT_CSV);
    at_eval_opts_t o;
    opts_exact(&o);
    const at_eval_method_t *m[] = {&at_eval_popularity, &at_eval_itemknn};
    at_eval_result_t r;
    run(&d, m, 2, &o, &r);
    assert_int_equal(r.m[1].param, 10); /* nothing to tune on: the grid's first */
    assert_int_equal(r.m[1].hits, 3);
    assert_true(fabs(r.m[1].hr.value - 0.3) < EPS);
    assert_true(fabs(r.m[1].mrr.value - 0.25) < EPS);
    assert_true(fabs(r.m[1].ndcg.value - (2 + 1 / log2(3)) / 10) < EPS);
    /* the other method in the same run is unchanged by the company */
    assert_int_equal(r.m[0].hits, 6);
    at_eval_result_free(&r);
    at_eval_data_deinit(&d);
}

static void test_itemknn_neighbours_and_tuning(void **state)
{
    (void)state;
    at_eval_data_t d;
    load(&d, k_csv, AT_EVAL_FMT_CSV);
    at_eval_opts_t o;
    opts_exact(&o);
    /* N = 1: at 7c, b's one neighbour is a (.816 against c's .577), and at
     * 10c it is a again (a tie with c, a seen first), so c is in neither
     * list: 1 hit (1b). */
    static const size_t one[] = {1};
    at_eval_method_t knn1 = at_eval_itemknn;
    knn1.grid = one;
    knn1.ngrid = 1;
    const at_eval_method_t *m1[] = {&knn1};
    at_eval_result_t r;
    run(&d, m1, 1, &o, &r);
    assert_int_equal(r.m[0].param, 1);
    assert_int_equal(r.m[0].hits, 1);
    at_eval_result_free(&r);

    /* Tuning on the first 10 interactions (0.95 of 11): N = 1 has 1 hit,
     * N = 2 and N = 10 have 3; the first best wins. Only the repeat is left
     * to score. */
    static const size_t grid[] = {1, 2, 10};
    at_eval_method_t knn = at_eval_itemknn;
    knn.grid = grid;
    knn.ngrid = 3;
    const at_eval_method_t *m[] = {&knn};
    o.tune = 0.95;
    run(&d, m, 1, &o, &r);
    assert_int_equal(r.tune_end, 10);
    assert_int_equal(r.tune_scored, 10);
    assert_true(fabs(r.m[0].tune_hr[0] - 0.1) < EPS);
    assert_true(fabs(r.m[0].tune_hr[1] - 0.3) < EPS);
    assert_true(fabs(r.m[0].tune_hr[2] - 0.3) < EPS);
    assert_int_equal(r.m[0].param, 2);
    assert_int_equal(r.score_from, 10);
    assert_int_equal(r.scored, 0);
    assert_int_equal(r.repeats, 1);
    at_eval_result_free(&r);

    /* --warmup later than the tuning part moves the start of scoring. */
    o.tune = 0.1;
    o.warmup = 0.5;
    run(&d, m, 1, &o, &r);
    assert_int_equal(r.tune_end, 1);
    assert_int_equal(r.score_from, 5);
    assert_int_equal(r.scored, 5); /* 6c 7c 8d 9b 10c */
    at_eval_result_free(&r);

    /* --limit: the first 8 only. */
    o.warmup = 0;
    o.tune = 0;
    o.limit = 8;
    run(&d, m, 1, &o, &r);
    assert_int_equal(r.n, 8);
    assert_int_equal(r.scored, 8);
    at_eval_result_free(&r);
    at_eval_data_deinit(&d);
}

/* ---- a probe method: what the harness shows and asks ------------------- */

typedef struct probe {
    int observed;
    char seq[64]; /* the items observed, in order */
    int asked_at[64];
    bool skip_seen[64][5]; /* at each ask: skip() of a, b, c, d, zzz */
    int asks;
} probe_t;

static probe_t g_probe;

static void *probe_open(const void *opts)
{
    (void)opts;
    memset(&g_probe, 0, sizeof g_probe);
    return &g_probe;
}

static void probe_observe(void *m, const at_eval_ev_t *ev)
{
    probe_t *p = m;
    p->seq[p->observed++] = ev->item_len ? ev->item[0] : '-';
}

static size_t probe_recommend(void *m, const char *user, size_t user_len, int64_t now_ms, size_t k,
                              at_eval_skip_fn skip_fn, void *skip_ud, const char **items,
                              size_t *lens)
{
    probe_t *p = m;
    (void)user;
    (void)user_len;
    (void)now_ms;
    static const char *const cand[5] = {"a", "b", "c", "d", "zzz"};
    p->asked_at[p->asks] = p->observed;
    size_t got = 0;
    for (int i = 0; i < 5; i++) {
        p->skip_seen[p->asks][i] = skip_fn(skip_ud, cand[i], strlen(cand[i]));
        if (!p->skip_seen[p->asks][i] && got < k) {
            items[got] = cand[i];
            lens[got++] = strlen(cand[i]);
        }
    }
    p->asks++;
    return got;
}

static void probe_close(void *m)
{
    (void)m;
}

static const at_eval_method_t k_probe = {
    .name = "probe",
    .open = probe_open,
    .observe = probe_observe,
    .recommend = probe_recommend,
    .close = probe_close,
};

static void test_exclusion_and_order(void **state)
{
    (void)state;
    at_eval_data_t d;
    load(&d, k_csv, AT_EVAL_FMT_CSV);
    at_eval_opts_t o;
    opts_exact(&o);
    const at_eval_method_t *m[] = {&k_probe};
    at_eval_result_t r;
    run(&d, m, 1, &o, &r);
    probe_t *p = &g_probe;
    assert_int_equal(p->observed, 11);
    assert_string_equal(p->seq, "aabbbccdbca");
    assert_int_equal(p->asks, 10); /* not at the repeat */
    for (int i = 0; i < 10; i++)
        assert_int_equal(p->asked_at[i], i); /* asked before it observes */
    /* ask 5 is 3c: user 3 has b only; an unknown id is never skipped */
    bool want5[5] = {false, true, false, false, false};
    /* ask 9 is 4c: user 4 has b */
    bool want9[5] = {false, true, false, false, false};
    /* ask 6 is 1c: user 1 has a and b */
    bool want6[5] = {true, true, false, false, false};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(p->skip_seen[5][i], want5[i]);
        assert_int_equal(p->skip_seen[9][i], want9[i]);
        assert_int_equal(p->skip_seen[6][i], want6[i]);
    }
    at_eval_result_free(&r);
    at_eval_data_deinit(&d);
}

static void test_ties_in_time_and_no_item(void **state)
{
    (void)state;
    /* Equal timestamps keep their input order; an event without an item is
     * shown to the methods and not scored; a repeat within the scored part
     * is not scored. */
    static const char nd[] =
        "{\"type\":\"view_item\",\"user_id\":\"1\",\"item_id\":\"c\",\"timestamp\":2000}\n"
        "{\"type\":\"view_item\",\"user_id\":\"1\",\"item_id\":\"a\",\"timestamp\":1000}\n"
        "{\"type\":\"view_item\",\"user_id\":\"2\",\"item_id\":\"b\",\"timestamp\":1000}\n"
        "{\"type\":\"page_view\",\"user_id\":\"2\",\"timestamp\":1000}\n"
        "{\"type\":\"view_item\",\"user_id\":\"2\",\"item_id\":\"b\",\"timestamp\":3000}\n"
        "{\"type\":\"view_item\",\"user_id\":\"3\",\"item_id\":\"d\",\"timestamp\":1000}\n";
    at_eval_data_t d;
    load(&d, nd, AT_EVAL_FMT_NDJSON);
    at_eval_opts_t o;
    opts_exact(&o);
    const at_eval_method_t *m[] = {&k_probe};
    at_eval_result_t r;
    run(&d, m, 1, &o, &r);
    assert_string_equal(g_probe.seq, "ab-dcb");
    assert_int_equal(r.scored, 4);
    assert_int_equal(r.no_item, 1);
    assert_int_equal(r.repeats, 1);
    at_eval_result_free(&r);
    at_eval_data_deinit(&d);
}

/* ---- bootstrap ----------------------------------------------------------- */

/* A bigger dataset: 40 users over 100 items of uneven popularity, from a
 * fixed pseudo-random sequence. */
static void gen(at_buf_t *b)
{
    uint64_t s = 7;
    AT_ASSERT(at_buf_puts(b, "user,item,timestamp\n") == 0);
    for (int i = 0; i < 1500; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned u = (unsigned)(s >> 33) % 40;
        unsigned it = (unsigned)((s >> 40) % 100 * ((s >> 20) % 100) / 100); /* uneven */
        AT_ASSERT(at_buf_printf(b, "%u,i%u,%d\n", u, it, 1000 + i) == 0);
    }
}

static void test_bootstrap(void **state)
{
    (void)state;
    at_buf_t b;
    at_buf_init(&b, 0);
    gen(&b);
    at_eval_data_t d;
    load(&d, b.data, AT_EVAL_FMT_CSV);
    at_eval_opts_t o;
    at_eval_opts_default(&o);
    const at_eval_method_t *m[] = {&at_eval_popularity, &at_eval_itemknn};
    at_eval_result_t r1, r2, r3;
    run(&d, m, 2, &o, &r1);
    run(&d, m, 2, &o, &r2);
    o.seed = 99;
    run(&d, m, 2, &o, &r3);
    assert_true(r1.scored > 100);
    assert_int_equal(r1.users_scored, 40);
    bool differs = false;
    for (size_t j = 0; j < 2; j++) {
        const at_eval_ci_t *a[3] = {&r1.m[j].hr, &r1.m[j].mrr, &r1.m[j].ndcg};
        const at_eval_ci_t *c[3] = {&r2.m[j].hr, &r2.m[j].mrr, &r2.m[j].ndcg};
        const at_eval_ci_t *e[3] = {&r3.m[j].hr, &r3.m[j].mrr, &r3.m[j].ndcg};
        for (int x = 0; x < 3; x++) {
            /* the same seed gives the same bits */
            assert_memory_equal(a[x], c[x], sizeof *a[x]);
            /* a real interval around the point estimate */
            assert_true(a[x]->lo <= a[x]->value && a[x]->value <= a[x]->hi);
            assert_true(a[x]->lo < a[x]->hi);
            assert_true(e[x]->lo <= e[x]->value && e[x]->value <= e[x]->hi);
            assert_true(a[x]->value == e[x]->value);
            differs |= a[x]->lo != e[x]->lo || a[x]->hi != e[x]->hi;
        }
    }
    assert_true(differs); /* another seed, other draws */
    /* the JSON is the same, apart from the seconds */
    at_buf_t j1, j2;
    at_buf_init(&j1, 0);
    at_buf_init(&j2, 0);
    for (size_t j = 0; j < 2; j++) {
        r1.m[j].seconds = r2.m[j].seconds = 0;
        r1.m[j].tune_seconds = r2.m[j].tune_seconds = 0;
    }
    at_eval_write_json(&j1, &r1, "x");
    at_eval_write_json(&j2, &r2, "x");
    assert_string_equal(j1.data, j2.data);
    assert_non_null(strstr(j1.data, "\"unit\":\"user\",\"resamples\":1000,\"seed\":1"));
    at_buf_reset(&j1);
    at_eval_write_table(&j1, &r1, "x");
    assert_non_null(strstr(j1.data, "itemknn (neighbours="));
    assert_non_null(strstr(j1.data, "HR@10"));
    at_buf_deinit(&j1);
    at_buf_deinit(&j2);
    at_eval_result_free(&r1);
    at_eval_result_free(&r2);
    at_eval_result_free(&r3);

    /* no resamples: the interval is the point */
    o.resamples = 0;
    run(&d, m, 1, &o, &r1);
    assert_true(r1.m[0].hr.lo == r1.m[0].hr.value && r1.m[0].hr.hi == r1.m[0].hr.value);
    at_eval_result_free(&r1);
    at_eval_data_deinit(&d);
    at_buf_deinit(&b);
}

/* ---- item-kNN against a brute-force reference ---------------------------- */

#define RU 64
#define RI 128

typedef struct ref_nb {
    double s;
    uint32_t id;
} ref_nb_t;

/* The reference: sets as a matrix, co-occurrences counted afresh, every
 * neighbour list sorted in full. Returns the hits and the sum of 1/rank. */
static void knn_reference(const at_eval_data_t *d, size_t N, size_t k, uint64_t *hits, double *rr)
{
    static bool has[RU][RI];
    static uint32_t mine[RU][RI];
    static uint32_t nmine[RU], U[RI];
    static char names[RI][8];
    static char unames[RU][8];
    uint32_t ni = 0, nu = 0;
    memset(has, 0, sizeof has);
    memset(nmine, 0, sizeof nmine);
    memset(U, 0, sizeof U);
    *hits = 0;
    *rr = 0;
    for (size_t x = 0; x < d->n; x++) {
        const at_eval_ev_t *e = &d->ev[x];
        uint32_t u = 0, t = 0;
        while (u < nu && strcmp(unames[u], e->user))
            u++;
        if (u == nu)
            (void)snprintf(unames[nu++], sizeof unames[0], "%s", e->user);
        while (t < ni && strcmp(names[t], e->item))
            t++;
        bool known = t < ni;
        if (!has[u][t]) {
            double score[RI] = {0};
            size_t from = nmine[u] > AT_EVAL_KNN_RECENT ? nmine[u] - AT_EVAL_KNN_RECENT : 0;
            for (size_t a = from; a < nmine[u]; a++) {
                uint32_t i = mine[u][a];
                ref_nb_t nb[RI], tmp;
                size_t n = 0;
                for (uint32_t j = 0; j < ni; j++) {
                    uint32_t c = 0;
                    for (uint32_t v = 0; v < nu; v++)
                        c += has[v][i] && has[v][j];
                    if (j != i && c)
                        nb[n++] = (ref_nb_t){
                            (double)c * (1.0 / sqrt((double)U[i])) * (1.0 / sqrt((double)U[j])), j};
                }
                for (size_t p = 1; p < n; p++) /* insertion sort, best first */
                    for (size_t q = p;
                         q > 0 && (nb[q].s > nb[q - 1].s ||
                                   (nb[q].s == nb[q - 1].s && nb[q].id < nb[q - 1].id));
                         q--)
                        tmp = nb[q], nb[q] = nb[q - 1], nb[q - 1] = tmp;
                for (size_t p = 0; p < n && p < N; p++)
                    score[nb[p].id] += nb[p].s;
            }
            /* the list: best score, then the item seen first; not the user's */
            bool used[RI] = {false};
            for (size_t r = 1; r <= k; r++) {
                int best = -1;
                for (uint32_t j = 0; j < ni; j++)
                    if (score[j] > 0 && !has[u][j] && !used[j] &&
                        (best < 0 || score[j] > score[best]))
                        best = (int)j;
                if (best < 0)
                    break;
                used[best] = true;
                if (known && (uint32_t)best == t) {
                    (*hits)++;
                    *rr += 1.0 / (double)r;
                    break;
                }
            }
        }
        if (!known)
            (void)snprintf(names[ni++], sizeof names[0], "%s", e->item);
        if (!has[u][t]) {
            has[u][t] = true;
            mine[u][nmine[u]++] = t;
            U[t]++;
        }
    }
}

static void test_itemknn_reference(void **state)
{
    (void)state;
    at_buf_t b;
    at_buf_init(&b, 0);
    gen(&b);
    at_eval_data_t d;
    load(&d, b.data, AT_EVAL_FMT_CSV);
    at_eval_opts_t o;
    at_eval_opts_default(&o);
    o.k = 5;
    o.tune = 0;
    o.resamples = 0;
    static const size_t grid[][1] = {{1}, {2}, {3}, {5}, {8}, {50}};
    for (size_t g = 0; g < AT_ARRAY_LEN(grid); g++) {
        at_eval_method_t knn = at_eval_itemknn;
        knn.grid = grid[g];
        knn.ngrid = 1;
        const at_eval_method_t *m[] = {&knn};
        at_eval_result_t r;
        run(&d, m, 1, &o, &r);
        uint64_t hits;
        double rr;
        knn_reference(&d, grid[g][0], o.k, &hits, &rr);
        if (r.m[0].hits != hits)
            fail_msg("N=%zu: %llu hits, the reference %llu", grid[g][0],
                     (unsigned long long)r.m[0].hits, (unsigned long long)hits);
        assert_true(hits > 50);
        assert_true(fabs(r.m[0].mrr.value - rr / (double)r.scored) < 1e-12);
        at_eval_result_free(&r);
    }
    at_eval_data_deinit(&d);
    at_buf_deinit(&b);
}

static void test_bad_options(void **state)
{
    (void)state;
    at_eval_data_t d;
    load(&d, k_csv, AT_EVAL_FMT_CSV);
    at_eval_opts_t o;
    at_eval_opts_default(&o);
    const at_eval_method_t *m[] = {&at_eval_popularity};
    at_eval_result_t r;
    at_error_t err = {0};
    o.k = 0;
    assert_int_equal(at_eval_run(&d, m, 1, &o, &r, &err), AT_EINVALID);
    assert_string_equal(err.field, "k");
    at_eval_opts_default(&o);
    o.warmup = 1.0;
    assert_int_equal(at_eval_run(&d, m, 1, &o, &r, &err), AT_EINVALID);
    assert_string_equal(err.field, "warmup");
    at_eval_opts_default(&o);
    assert_int_equal(at_eval_run(&d, m, 0, &o, &r, &err), AT_EINVALID);
    at_eval_data_deinit(&d);
}

static void test_registry(void **state)
{
    (void)state;
    const at_eval_method_t *const *all;
    size_t n = at_eval_methods(&all);
    assert_true(n >= 2);
    assert_ptr_equal(all[0], &at_eval_popularity);
    assert_ptr_equal(all[1], &at_eval_itemknn);
    assert_ptr_equal(at_eval_method_find("itemknn", 7), &at_eval_itemknn);
    assert_null(at_eval_method_find("itemkn", 6));
    assert_null(at_eval_method_find("nope", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_popularity_by_hand),
        cmocka_unit_test(test_itemknn_by_hand),
        cmocka_unit_test(test_itemknn_neighbours_and_tuning),
        cmocka_unit_test(test_exclusion_and_order),
        cmocka_unit_test(test_ties_in_time_and_no_item),
        cmocka_unit_test(test_bootstrap),
        cmocka_unit_test(test_itemknn_reference),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
