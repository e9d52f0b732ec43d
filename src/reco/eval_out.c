/* eval_out.c - the harness's result for people (a table) and for
 * programs (one JSON object), at_eval.h.
 *
 * THREAD SAFETY: any thread, on a result it owns.
 */
#include "at_eval.h"
#include "at_json.h"

#include <stdio.h>
#include <string.h>

/* Appends a string literal. */
#define AT_EVAL__RAW(b, lit) at_json_w_raw((b), (lit), sizeof(lit) - 1)

/* "itemknn (neighbours=50)", or the name alone. */
static void at_eval__label(char *out, size_t n, const at_eval_mresult_t *m)
{
    if (m->method->param)
        (void)snprintf(out, n, "%s (%s=%zu)", m->method->name, m->method->param, m->param);
    else
        (void)snprintf(out, n, "%s", m->method->name);
}

static void at_eval__ci(at_buf_t *b, const at_eval_ci_t *c)
{
    AT_ASSERT(at_buf_printf(b, "  %.4f [%.4f, %.4f]", c->value, c->lo, c->hi) == 0);
}

/* See at_eval.h. Thread: any. */
void at_eval_write_table(at_buf_t *b, const at_eval_result_t *r, const char *source)
{
    size_t k = r->opts.k;
    AT_ASSERT(at_buf_printf(b,
                            "dataset: %s: %zu interactions, %zu users, %zu items\n"
                            "scored: %llu interactions whose item is new to the user, of "
                            "interactions %zu-%zu (%llu repeats and %llu without an item not "
                            "scored), %zu users\n",
                            source, r->n, r->users, r->items, (unsigned long long)r->scored,
                            r->score_from + 1, r->n, (unsigned long long)r->repeats,
                            (unsigned long long)r->no_item, r->users_scored) == 0);
    for (size_t j = 0; j < r->nm; j++) {
        const at_eval_mresult_t *m = &r->m[j];
        if (!m->method->param)
            continue;
        if (!r->tune_scored) {
            AT_ASSERT(at_buf_printf(b, "tuned: %s %s: nothing to tune on, the first value %zu\n",
                                    m->method->name, m->method->param, m->param) == 0);
            continue;
        }
        AT_ASSERT(at_buf_printf(b, "tuned: %s %s on interactions 1-%zu (%llu scored), HR@%zu:",
                                m->method->name, m->method->param, r->tune_end,
                                (unsigned long long)r->tune_scored, k) == 0);
        for (size_t g = 0; g < m->ngrid; g++)
            AT_ASSERT(at_buf_printf(b, " %zu: %.4f", m->grid[g], m->tune_hr[g]) == 0);
        AT_ASSERT(at_buf_printf(b, "; chose %zu\n", m->param) == 0);
    }
    if (r->opts.resamples)
        AT_ASSERT(at_buf_printf(b,
                                "intervals: 95%%, bootstrap over users, %u resamples, seed "
                                "%llu\n",
                                (unsigned)r->opts.resamples,
                                (unsigned long long)r->opts.seed) == 0);
    char h[3][32];
    (void)snprintf(h[0], sizeof h[0], "HR@%zu", k);
    (void)snprintf(h[1], sizeof h[1], "MRR@%zu", k);
    (void)snprintf(h[2], sizeof h[2], "NDCG@%zu", k);
    AT_ASSERT(at_buf_printf(b, "\n%-26s  %-23s  %-23s  %-23s  %8s  %8s\n", "method", h[0], h[1],
                            h[2], "scored", "seconds") == 0);
    for (size_t j = 0; j < r->nm; j++) {
        const at_eval_mresult_t *m = &r->m[j];
        char label[64];
        at_eval__label(label, sizeof label, m);
        AT_ASSERT(at_buf_printf(b, "%-26s", label) == 0);
        at_eval__ci(b, &m->hr);
        at_eval__ci(b, &m->mrr);
        at_eval__ci(b, &m->ndcg);
        AT_ASSERT(at_buf_printf(b, "  %8llu  %8.2f\n", (unsigned long long)r->scored,
                                m->seconds + m->tune_seconds) == 0);
    }
}

static void at_eval__jci(at_buf_t *b, const char *name, const at_eval_ci_t *c)
{
    AT_ASSERT(at_buf_printf(b, "\"%s\":{\"value\":%.6f,\"lo\":%.6f,\"hi\":%.6f}", name, c->value,
                            c->lo, c->hi) == 0);
}

/* See at_eval.h. Thread: any. */
void at_eval_write_json(at_buf_t *b, const at_eval_result_t *r, const char *source)
{
    AT_EVAL__RAW(b, "{\"dataset\":");
    at_json_w_str(b, source, strlen(source), false);
    AT_ASSERT(at_buf_printf(b,
                            ",\"interactions\":%zu,\"users\":%zu,\"items\":%zu,\"k\":%zu,"
                            "\"tune_fraction\":%g,\"warmup\":%g,\"tune_end\":%zu,"
                            "\"scored_from\":%zu,\"scored\":%llu,\"repeats\":%llu,"
                            "\"without_item\":%llu,\"users_scored\":%zu,",
                            r->n, r->users, r->items, r->opts.k, r->opts.tune, r->opts.warmup,
                            r->tune_end, r->score_from, (unsigned long long)r->scored,
                            (unsigned long long)r->repeats, (unsigned long long)r->no_item,
                            r->users_scored) == 0);
    AT_ASSERT(at_buf_printf(b,
                            "\"bootstrap\":{\"unit\":\"user\",\"resamples\":%u,\"seed\":%llu,"
                            "\"level\":0.95},\"methods\":[",
                            (unsigned)r->opts.resamples, (unsigned long long)r->opts.seed) == 0);
    for (size_t j = 0; j < r->nm; j++) {
        const at_eval_mresult_t *m = &r->m[j];
        if (j)
            AT_EVAL__RAW(b, ",");
        AT_EVAL__RAW(b, "{\"name\":");
        at_json_w_str(b, m->method->name, strlen(m->method->name), false);
        AT_EVAL__RAW(b, ",");
        at_eval__jci(b, "hr", &m->hr);
        AT_EVAL__RAW(b, ",");
        at_eval__jci(b, "mrr", &m->mrr);
        AT_EVAL__RAW(b, ",");
        at_eval__jci(b, "ndcg", &m->ndcg);
        AT_ASSERT(at_buf_printf(b, ",\"hits\":%llu,\"seconds\":%.3f", (unsigned long long)m->hits,
                                m->seconds) == 0);
        if (m->method->param) {
            AT_EVAL__RAW(b, ",\"tuned\":{\"param\":");
            at_json_w_str(b, m->method->param, strlen(m->method->param), false);
            AT_ASSERT(at_buf_printf(b, ",\"value\":%zu,\"scored\":%llu,\"grid\":[", m->param,
                                    (unsigned long long)r->tune_scored) == 0);
            for (size_t g = 0; g < m->ngrid; g++)
                AT_ASSERT(at_buf_printf(b, "%s{\"value\":%zu,\"hr\":%.6f}", g ? "," : "",
                                        m->grid[g], m->tune_hr[g]) == 0);
            AT_ASSERT(at_buf_printf(b, "],\"seconds\":%.3f}", m->tune_seconds) == 0);
        }
        AT_EVAL__RAW(b, "}");
    }
    AT_EVAL__RAW(b, "]}\n");
}
