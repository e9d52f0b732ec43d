/* fuzz_rules_expr.c - feeds arbitrary bytes to the expression compiler (as
 * an expression under two sets of env flags, and as a having clause).
 * Every outcome is a known code; an error points inside the text and its
 * message is "line:col: reason". An expression that compiles is evaluated
 * against a few fixed events: twice, with the same result each time,
 * eval_bool agreeing with eval, and its field paths splitting back into
 * steps; compiling it again gives the same code. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../unit/rules/expr_test.h"
#include "at_core.h"
#include "at_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const at_fz_events[][2] = {
    {"{\"event_id\":\"e1\",\"type\":\"view_item\",\"user_id\":\"12345\",\"session_id\":\"s-1\","
     "\"item_id\":\"987\",\"category\":\"electronics/"
     "phones\",\"timestamp\":\"2026-04-27T19:35:00Z\","
     "\"received_at\":\"2026-04-27T19:35:00.250Z\",\"context\":{\"device\":\"mobile\","
     "\"timezone\":\"Europe/"
     "Paris\"},\"properties\":{\"price\":119.99,\"quantity\":1,\"coupon\":null,"
     "\"tags\":[\"sale\",3,true,[1],{\"a\":\"\\u00e9\"}],\"name\":\"Zo\\u00eb\",\"flag\":true}}",
     "{\"counters\":{\"purchase\":2},\"first_seen\":\"2026-01-01T00:00:00Z\",\"session\":{"
     "\"start\":\"2026-04-27T19:00:00Z\",\"events\":5,\"pages\":3,\"duration\":900000},"
     "\"traits\":{\"plan\":\"gold\"},\"affinity\":{\"electronics\":0.7},\"segments\":[1]}"},
    {"{\"type\":\"page_view\"}", NULL},
    {"{\"type\":\"purchase\",\"timestamp\":-62167219200000,\"category\":\"\",\"context\":{"
     "\"timezone\":\"America/New_York\"},\"properties\":{\"price\":\"12\",\"quantity\":1e308,"
     "\"tags\":\"sale\",\"coupon\":[],\"flag\":0,\"revenue\":-0.0}}",
     "{\"counters\":{},\"session\":{\"duration\":-1},\"traits\":[1,2]}"},
};

static void at_fz_check_err(int rc, const at_expr_err_t *err, size_t size)
{
    AT_ASSERT(rc == 0 || rc == AT_EPARSE || rc == AT_EINVALID || rc == AT_ETOOBIG);
    if (rc == 0)
        return;
    AT_ASSERT(err->pos <= size && err->line >= 1 && err->col >= 1);
    AT_ASSERT(err->reason[0] != '\0');
    char prefix[32];
    int n = snprintf(prefix, sizeof prefix, "%d:%d: ", err->line, err->col);
    AT_ASSERT(strncmp(err->msg, prefix, (size_t)n) == 0);
}

static bool at_fz_same(const at_val_t *a, const at_val_t *b)
{
    if (a->type != b->type || a->len != b->len || a->flags != b->flags)
        return false;
    switch (a->type) {
    case AT_VAL_STR:
    case AT_VAL_JSON:
        return a->len == 0 || memcmp(a->u.s, b->u.s, a->len) == 0;
    case AT_VAL_BOOL:
        return a->u.b == b->u.b;
    case AT_VAL_MISSING:
    case AT_VAL_NULL:
        return true;
    default:
        return memcmp(&a->u, &b->u, sizeof a->u) == 0;
    }
}

static void at_fz_eval(xt_host_t *h, const at_expr_t *e)
{
    for (size_t i = 0; i < AT_ARRAY_LEN(at_fz_events); i++) {
        AT_ASSERT(xt_set(h, at_fz_events[i][0], at_fz_events[i][1]) == 0);
        h->now_ms = 1777318500000LL + (int64_t)i;
        at_expr_rt_t rt = xt_rt(h);
        at_val_t a, b;
        AT_ASSERT(at_expr_eval(e, &rt, &a) == 0);
        AT_ASSERT(at_expr_eval(e, &rt, &b) == 0);
        AT_ASSERT(at_fz_same(&a, &b));
        AT_ASSERT(at_expr_eval_bool(e, &rt) == (a.type == AT_VAL_BOOL && a.u.b));
        int t = at_expr_type(e);
        AT_ASSERT(t == AT_VAL_ANY || a.type == AT_VAL_MISSING || a.type == t);
    }
}

static void at_fz_disasm(const at_expr_t *e, at_buf_t *out)
{
    at_buf_init(out, 0);
    AT_ASSERT(at_expr_disasm(e, out) == 0);
}

static void at_fz_expr(xt_host_t *h, const char *src, size_t size, unsigned flags)
{
    xt_clear_paths(h);
    at_expr_env_t env = xt_env(h, flags);
    at_expr_t *e = NULL;
    at_expr_err_t err;
    int rc = at_expr_compile(src, size, &env, &e, &err);
    at_fz_check_err(rc, &err, size);
    if (rc != 0) {
        AT_ASSERT(e == NULL);
        return;
    }
    AT_ASSERT((flags & AT_EXPR_BOOL) == 0 || at_expr_type(e) == AT_VAL_BOOL ||
              at_expr_type(e) == AT_VAL_ANY);
    size_t nf;
    const at_expr_field_t *f = at_expr_fields(e, &nf);
    for (size_t i = 0; i < nf; i++) {
        at_expr_step_t st[40];
        static char buf[4 * AT_EXPR_MAX_LEN];
        AT_ASSERT(strlen(f[i].path) == f[i].len);
        AT_ASSERT(at_expr_path_split(f[i].path, f[i].len, st, 40, buf, sizeof buf) > 0);
        AT_ASSERT((flags & AT_EXPR_NO_PROFILE) == 0 || !f[i].profile);
    }
    at_fz_eval(h, e);

    at_expr_t *again = NULL;
    xt_clear_paths(h);
    AT_ASSERT(at_expr_compile(src, size, &env, &again, &err) == 0);
    at_buf_t d1, d2;
    at_fz_disasm(e, &d1);
    at_fz_disasm(again, &d2);
    AT_ASSERT(d1.len == d2.len && memcmp(d1.data, d2.data, d1.len) == 0);
    at_buf_deinit(&d1);
    at_buf_deinit(&d2);
    at_expr_free(again);
    at_expr_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static xt_host_t h;
    static bool ready;
    if (!ready) {
        xt_init(&h);
        ready = true;
    }
    const char *src = (const char *)data;
    at_fz_expr(&h, src, size, 0);
    at_fz_expr(&h, src, size, AT_EXPR_BOOL | AT_EXPR_NO_PROFILE);

    xt_clear_paths(&h);
    at_expr_env_t env = xt_env(&h, 0);
    at_having_t hv;
    at_expr_err_t err;
    int rc = at_expr_having_parse(src, size, &env, &hv, &err);
    at_fz_check_err(rc, &err, size);
    if (rc == 0) {
        AT_ASSERT(hv.agg <= AT_AGG_DISTINCT && hv.cmp <= AT_CMP_GE);
        AT_ASSERT((hv.agg == AT_AGG_COUNT) == (hv.slot < 0));
        AT_ASSERT(hv.threshold == hv.threshold);
    }
    return 0;
}
