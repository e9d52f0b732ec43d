/* fuzz_reco_dataset.c - the datasets of `attune eval` on arbitrary bytes.
 * The first byte picks the format (NDJSON, CSV, MovieLens); the rest is the
 * file. Checks what must hold for any input: a failure is an error that
 * names its line; a success gives interactions in time order whose strings
 * are whole (namespaced user keys, a type, NUL after each); and a small
 * dataset goes through the harness with both baselines twice with the
 * same figures, every count adding up and every metric within [0, 1]. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "at_eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_data(const at_eval_data_t *d, size_t size)
{
    for (size_t i = 0; i < d->n; i++) {
        const at_eval_ev_t *e = &d->ev[i];
        AT_ASSERT(i == 0 || d->ev[i - 1].ts_ms <= e->ts_ms);
        AT_ASSERT(e->user_len >= 3 && e->user_len <= size + 2);
        AT_ASSERT((e->user[0] == 'u' || e->user[0] == 'a') && e->user[1] == ':');
        AT_ASSERT(e->user[e->user_len] == '\0');
        AT_ASSERT(e->item_len <= size && e->item[e->item_len] == '\0');
        AT_ASSERT(e->type_len > 0 && e->type[e->type_len] == '\0');
        AT_ASSERT(e->category[e->category_len] == '\0');
    }
}

static void check_ci(const at_eval_ci_t *c)
{
    AT_ASSERT(c->value >= 0 && c->value <= 1);
    AT_ASSERT(c->lo >= 0 && c->lo <= c->hi && c->hi <= 1);
}

static void check_run(const at_eval_data_t *d)
{
    static const at_eval_method_t *const m[] = {&at_eval_popularity, &at_eval_itemknn};
    at_eval_opts_t o;
    at_eval_opts_default(&o);
    o.k = 3;
    o.resamples = 20;
    o.tune = 0.2;
    at_eval_result_t r1, r2;
    at_error_t err;
    AT_ASSERT(at_eval_run(d, m, 2, &o, &r1, &err) == 0);
    AT_ASSERT(at_eval_run(d, m, 2, &o, &r2, &err) == 0);
    AT_ASSERT(r1.scored + r1.repeats + r1.no_item == r1.n - r1.score_from);
    AT_ASSERT(r1.users <= r1.n && r1.items <= r1.n && r1.users_scored <= r1.users);
    for (size_t j = 0; j < 2; j++) {
        AT_ASSERT(r1.m[j].hits <= r1.scored);
        AT_ASSERT(r1.m[j].hits == r2.m[j].hits && r1.m[j].param == r2.m[j].param);
        AT_ASSERT(!memcmp(&r1.m[j].hr, &r2.m[j].hr, sizeof r1.m[j].hr));
        AT_ASSERT(!memcmp(&r1.m[j].ndcg, &r2.m[j].ndcg, sizeof r1.m[j].ndcg));
        check_ci(&r1.m[j].hr);
        check_ci(&r1.m[j].mrr);
        check_ci(&r1.m[j].ndcg);
        AT_ASSERT(r1.m[j].mrr.value <= r1.m[j].ndcg.value + 1e-12);
        AT_ASSERT(r1.m[j].ndcg.value <= r1.m[j].hr.value + 1e-12);
    }
    at_buf_t b;
    at_buf_init(&b, 0);
    at_eval_write_json(&b, &r1, "fuzz");
    at_eval_write_table(&b, &r1, "fuzz");
    AT_ASSERT(b.len > 0);
    at_buf_deinit(&b);
    at_eval_result_free(&r1);
    at_eval_result_free(&r2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const at_eval_format_t fmt[3] = {AT_EVAL_FMT_NDJSON, AT_EVAL_FMT_CSV,
                                            AT_EVAL_FMT_MOVIELENS};
    at_eval_data_t d;
    at_error_t err = {0};
    at_eval_data_init(&d);
    int rc = at_eval_data_parse(&d, (const char *)data + 1, size - 1, fmt[data[0] % 3], &err);
    if (rc < 0) {
        AT_ASSERT(rc == AT_EPARSE || rc == AT_EINVALID);
        AT_ASSERT(!strncmp(err.message, "line ", 5));
    } else {
        AT_ASSERT(rc == 0);
        check_data(&d, size);
        if (d.n <= 300)
            check_run(&d);
    }
    at_eval_data_deinit(&d);
    return 0;
}
