/* test_expr_having.c - having clauses of segments: the accepted forms
 * (each aggregate, each comparison, mirrored, negative and decimal
 * thresholds), the field's slot, and what is refused, with positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "expr_test.h"

static xt_host_t H;

static int setup(void **state)
{
    (void)state;
    xt_init(&H);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    xt_deinit(&H);
    return 0;
}

static at_having_t parse_ok(const char *src)
{
    at_expr_env_t env = xt_env(&H, 0);
    at_having_t h;
    at_expr_err_t err;
    if (at_expr_having_parse(src, strlen(src), &env, &h, &err) != 0)
        fail_msg("'%s' refused: %s", src, err.msg);
    return h;
}

static void test_forms(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        int agg, cmp;
        double threshold;
        const char *path; /* NULL: no field */
    } cases[] = {
        {"count > 3", AT_AGG_COUNT, AT_CMP_GT, 3, NULL},
        {"count() >= 8", AT_AGG_COUNT, AT_CMP_GE, 8, NULL},
        {"sum(properties.revenue) > 500", AT_AGG_SUM, AT_CMP_GT, 500, "properties.revenue"},
        {"distinct(item_id) >= 5", AT_AGG_DISTINCT, AT_CMP_GE, 5, "item_id"},
        {"avg(properties.price) < 20.5", AT_AGG_AVG, AT_CMP_LT, 20.5, "properties.price"},
        {"min(properties.price) <= -1", AT_AGG_MIN, AT_CMP_LE, -1, "properties.price"},
        {"max(properties[\"unit price\"]) == 1e3", AT_AGG_MAX, AT_CMP_EQ, 1000,
         "properties[\"unit price\"]"},
        {"count != 0", AT_AGG_COUNT, AT_CMP_NE, 0, NULL},
        {"3 < count", AT_AGG_COUNT, AT_CMP_GT, 3, NULL},
        {"3 <= count", AT_AGG_COUNT, AT_CMP_GE, 3, NULL},
        {"500 > sum(properties.revenue)", AT_AGG_SUM, AT_CMP_LT, 500, "properties.revenue"},
        {"5 >= distinct(category)", AT_AGG_DISTINCT, AT_CMP_LE, 5, "category"},
        {"2 == count", AT_AGG_COUNT, AT_CMP_EQ, 2, NULL},
        {"-2 != count", AT_AGG_COUNT, AT_CMP_NE, -2, NULL},
        {"  count\n  >\t3  ", AT_AGG_COUNT, AT_CMP_GT, 3, NULL},
        {"distinct(properties.items[0].sku) > 1", AT_AGG_DISTINCT, AT_CMP_GT, 1,
         "properties.items[0].sku"},
        {"distinct(context.page) > 1", AT_AGG_DISTINCT, AT_CMP_GT, 1, "context.page"},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(cases); i++) {
        xt_clear_paths(&H);
        at_having_t h = parse_ok(cases[i].src);
        if (h.agg != cases[i].agg || h.cmp != cases[i].cmp || h.threshold != cases[i].threshold)
            fail_msg("'%s': %s %d %g", cases[i].src, at_agg_name(h.agg), h.cmp, h.threshold);
        if (!cases[i].path) {
            assert_int_equal(h.slot, -1);
        } else {
            assert_int_equal(h.slot, 0);
            assert_string_equal(H.paths[0], cases[i].path);
        }
    }
    /* slots come from the resolver */
    xt_clear_paths(&H);
    xt_field(&H, "a.b", 3, NULL, 0);
    assert_int_equal(parse_ok("sum(properties.revenue) > 1").slot, 1);
    assert_string_equal(at_agg_name(AT_AGG_DISTINCT), "distinct");
}

static void test_holds(void **state)
{
    (void)state;
    at_having_t h = parse_ok("count > 3");
    assert_false(at_expr_having_holds(&h, 3));
    assert_true(at_expr_having_holds(&h, 4));
    h = parse_ok("3 >= count");
    assert_true(at_expr_having_holds(&h, 3));
    assert_false(at_expr_having_holds(&h, 3.5));
    h = parse_ok("sum(properties.revenue) == 500");
    assert_true(at_expr_having_holds(&h, 500));
    assert_false(at_expr_having_holds(&h, 500.000001));
    h = parse_ok("count != 1");
    assert_true(at_expr_having_holds(&h, 0));
    h = parse_ok("avg(properties.x) < 1");
    assert_true(at_expr_having_holds(&h, 0.5));
    h = parse_ok("avg(properties.x) <= 1");
    assert_true(at_expr_having_holds(&h, 1));
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        int rc, line, col;
        const char *reason;
    } cases[] = {
        {"", AT_EPARSE, 1, 1, "empty having clause; a having clause is one aggregate"},
        {"cnt > 3", AT_EINVALID, 1, 1, "unknown aggregate 'cnt' (did you mean 'count'?)"},
        {"total(properties.x) > 3", AT_EINVALID, 1, 1, "unknown aggregate 'total'; the aggregates"},
        {"type == \"a\"", AT_EINVALID, 1, 1, "unknown aggregate 'type'"},
        {"count", AT_EPARSE, 1, 6, "expected a comparison (==, !=, <, <=, >, >=), found the end"},
        {"count in [1]", AT_EPARSE, 1, 7, "expected a comparison"},
        {"count >", AT_EPARSE, 1, 8, "expected a number, found the end"},
        {"count > \"3\"", AT_EPARSE, 1, 9, "expected a number, found '\"3\"'"},
        {"count > 10m", AT_EINVALID, 1, 9,
         "an aggregate is compared with a number, not a duration"},
        {"count > sum(properties.x)", AT_EINVALID, 1, 9, "an aggregate is compared with a number"},
        {"count > 3 && count < 10", AT_EPARSE, 1, 11, "unexpected '&&': a having clause is one"},
        {"count > 3 3", AT_EPARSE, 1, 11, "unexpected '3'"},
        {"count(item_id) > 3", AT_EINVALID, 1, 7, "count takes no field"},
        {"sum > 3", AT_EPARSE, 1, 5, "expected '(' and a field after the aggregate"},
        {"sum() > 3", AT_EPARSE, 1, 5, "expected a field of the events, found ')'"},
        {"sum(properties.x > 3", AT_EPARSE, 1, 18, "expected ')' after the field"},
        {"sum(item_id) > 3", AT_EINVALID, 1, 5,
         "sum() needs a number field, and item_id is a string"},
        {"avg(timestamp) > 3", AT_EINVALID, 1, 5,
         "avg() needs a number field, and timestamp is a time"},
        {"sum(now) > 3", AT_EINVALID, 1, 5, "sum() needs a field of the events"},
        {"sum(profile.counters.x) > 1", AT_EINVALID, 1, 5,
         "aggregates read the window's events, not the profile"},
        {"distinct(typo) > 1", AT_EINVALID, 1, 10, "unknown name 'typo'"},
        {"sum(properties.forbidden) > 1", AT_EINVALID, 1, 5, "is not available here"},
        {"3 < 4", AT_EPARSE, 1, 5, "expected an aggregate (count, sum, avg, min, max, distinct)"},
        {"3 count", AT_EPARSE, 1, 3, "expected a comparison"},
        {"- count > 1", AT_EPARSE, 1, 3, "expected a number, found 'count'"},
        {"(count > 3)", AT_EPARSE, 1, 1, "expected an aggregate"},
        {"count > 1e400", AT_EINVALID, 1, 9, "number out of range"},
        {"count > 3 \xff", AT_EPARSE, 1, 11, "invalid UTF-8"},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(cases); i++) {
        at_expr_env_t env = xt_env(&H, 0);
        at_having_t h;
        at_expr_err_t err;
        int rc = at_expr_having_parse(cases[i].src, strlen(cases[i].src), &env, &h, &err);
        if (rc != cases[i].rc || err.line != cases[i].line || err.col != cases[i].col ||
            !strstr(err.reason, cases[i].reason))
            fail_msg("'%s': got %d %s", cases[i].src, rc, rc ? err.msg : "(accepted)");
        assert_true(err.pos <= strlen(cases[i].src));
    }
    char big[AT_EXPR_MAX_LEN + 16];
    memset(big, ' ', sizeof big);
    memcpy(big, "count > 3", 9);
    at_having_t h;
    at_expr_err_t err;
    assert_int_equal(at_expr_having_parse(big, sizeof big, NULL, &h, &err), AT_ETOOBIG);
    assert_int_equal(at_expr_having_parse(big, AT_EXPR_MAX_LEN, NULL, &h, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
