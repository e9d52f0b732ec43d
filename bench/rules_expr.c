/* rules_expr.c - the cost of evaluating rule conditions (src/rules,
 * docs/rules.md): compiles the conditions of DESIGN.md §5 and evaluates
 * each against one realistic event and profile many times, printing the
 * time per evaluation.
 *
 * The host here is what the engine's will be: the event is decoded once,
 * each slot's value is ready in an array, and a field fetch is a copy;
 * affinity() is a lookup in a short table and in_segment() a bit test. So
 * the numbers are the evaluator's own cost plus one indirect call per field.
 *
 *   bench_rules_expr [iterations]        every example, default 5000000
 *   bench_rules_expr --only K [iter]     example K alone, for instructions
 *     per evaluation: valgrind --tool=callgrind --toggle-collect=at_expr_eval_bool
 *     bench_rules_expr --only K N, then divide the total by N + N/10 + 2 (the
 *     warm-up and the final evaluation are counted too)
 */
#include "at_core.h"
#include "at_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const at_bench_exprs[] = {
    "type == \"view_item\" && context.device == \"mobile\"",
    "properties.price >= 100",
    "category starts_with \"electronics\"",
    "hour(timestamp, context.timezone) >= 18",
    "type in [\"add_to_cart\", \"purchase\"]",
    "exists(properties.coupon)",
    "affinity(\"electronics\") > 0.4 && profile.counters.purchase >= 1",
    "in_segment(\"high_intent\")",
    "profile.traits.plan == \"gold\"",
    "profile.session.duration > 10m",
    "type == \"view_item\" && properties.discount > 0",
    "hour(timestamp, \"Europe/Paris\") >= 18",
    ("type in [\"page_view\", \"view_item\", \"add_to_cart\", \"remove_from_cart\", "
     "\"purchase\", \"search\", \"click\", \"identify\", \"exposure\", \"signup\", \"login\", "
     "\"share\"]"),
    "!exists(properties.coupon) || lower(properties.coupon) != \"spring\"",
};

/* The event of DESIGN.md §3 (2026-04-27T14:35:00Z), decoded, and its user. */
static const struct {
    const char *path;
    at_val_t v;
} at_bench_fields[] = {
    {"type", {.type = AT_VAL_STR, .len = 11, .u.s = "add_to_cart"}},
    {"category", {.type = AT_VAL_STR, .len = 18, .u.s = "electronics/phones"}},
    {"context.device", {.type = AT_VAL_STR, .len = 6, .u.s = "mobile"}},
    {"context.timezone", {.type = AT_VAL_STR, .len = 12, .u.s = "Europe/Paris"}},
    {"timestamp", {.type = AT_VAL_TIME, .u.ms = 1777300500000LL}},
    {"properties.price", {.type = AT_VAL_NUM, .u.num = 19.99}},
    {"properties.discount", {.type = AT_VAL_NUM, .u.num = 0}},
    {"profile.counters.purchase", {.type = AT_VAL_NUM, .u.num = 3}},
    {"profile.traits.plan", {.type = AT_VAL_STR, .len = 4, .u.s = "gold"}},
    {"profile.session.duration", {.type = AT_VAL_DUR, .u.ms = 754000}},
};

typedef struct at_bench_host {
    at_val_t vals[64];
    int nvals;
} at_bench_host_t;

static int at_bench_field(void *ud, const char *path, size_t n, char *why, size_t whylen)
{
    at_bench_host_t *h = ud;
    (void)why;
    (void)whylen;
    at_val_t v = at_val_missing();
    for (size_t i = 0; i < AT_ARRAY_LEN(at_bench_fields); i++)
        if (strlen(at_bench_fields[i].path) == n && memcmp(at_bench_fields[i].path, path, n) == 0)
            v = at_bench_fields[i].v;
    if (h->nvals == (int)AT_ARRAY_LEN(h->vals))
        return -1;
    h->vals[h->nvals] = v;
    return h->nvals++;
}

static int at_bench_segment(void *ud, const char *name, size_t n)
{
    (void)ud;
    return n == 11 && memcmp(name, "high_intent", 11) == 0 ? 3 : -1;
}

static void at_bench_fetch(void *ctx, int slot, at_val_t *out)
{
    const at_bench_host_t *h = ctx;
    *out = h->vals[slot];
}

static double at_bench_affinity(void *ctx, const char *cat, size_t n)
{
    static const struct {
        const char *cat;
        double v;
    } aff[] = {{"books", 0.05}, {"electronics", 0.62}, {"garden", 0.2}};
    (void)ctx;
    for (size_t i = 0; i < AT_ARRAY_LEN(aff); i++)
        if (strlen(aff[i].cat) == n && memcmp(aff[i].cat, cat, n) == 0)
            return aff[i].v;
    return 0;
}

static bool at_bench_in_segment(void *ctx, int id)
{
    (void)ctx;
    return (0x0Au >> id) & 1; /* segments 1 and 3 */
}

#define AT_BENCH_ROUNDS 5

static volatile int at_bench_sink;

static void at_bench_run(size_t k, long iters)
{
    at_bench_host_t host = {.nvals = 0};
    at_expr_env_t env = {.field = at_bench_field, .segment = at_bench_segment, .ud = &host};
    const char *src = at_bench_exprs[k];
    at_expr_t *e;
    at_expr_err_t err;
    if (at_expr_compile(src, strlen(src), &env, &e, &err) != 0) {
        fprintf(stderr, "%s: %s\n", src, err.msg);
        exit(1);
    }
    at_expr_rt_t rt = {.field = at_bench_fetch,
                       .affinity = at_bench_affinity,
                       .in_segment = at_bench_in_segment,
                       .now_ms = 1777300500000LL,
                       .ctx = &host};
    int hits = 0;
    for (long i = 0; i < iters / 10 + 1; i++) /* warm up */
        hits += at_expr_eval_bool(e, &rt);
    /* the best of a few rounds: the machine may be busy with other work */
    int64_t best = INT64_MAX;
    long per = iters / AT_BENCH_ROUNDS + 1;
    for (int r = 0; r < AT_BENCH_ROUNDS; r++) {
        int64_t t0 = at_time_mono_ns();
        for (long i = 0; i < per; i++)
            hits += at_expr_eval_bool(e, &rt);
        best = AT_MIN(best, at_time_mono_ns() - t0);
    }
    at_bench_sink = hits;
    at_buf_t d;
    at_buf_init(&d, 0);
    at_expr_disasm(e, &d);
    unsigned ncode = 0;
    sscanf(d.data, "; %u", &ncode);
    printf("%2zu  %7.1f ns  %2u ops  %-5s  %s\n", k, (double)best / (double)per, ncode,
           at_expr_eval_bool(e, &rt) ? "true" : "false", src);
    at_buf_deinit(&d);
    at_expr_free(e);
}

int main(int argc, char **argv)
{
    long iters = 5000000;
    long only = -1;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--only") == 0) {
        only = atol(argv[i + 1]);
        i += 2;
    }
    if (i < argc)
        iters = atol(argv[i]);
    if (iters <= 0 || only >= (long)AT_ARRAY_LEN(at_bench_exprs)) {
        fprintf(stderr, "usage: %s [--only K] [iterations]\n", argv[0]);
        return 2;
    }
    printf("# ns per evaluation (best of %d rounds), %ld evaluations each (bench/rules_expr.c)\n",
           AT_BENCH_ROUNDS, iters);
    for (size_t k = 0; k < AT_ARRAY_LEN(at_bench_exprs); k++)
        if (only < 0 || (size_t)only == k)
            at_bench_run(k, iters);
    return 0;
}
