/* test_eval_data.c - the datasets of `attune eval`: CSV with a header
 * (aliases, tab separation, quoting, optional type and category, time in
 * seconds, milliseconds or RFC 3339), NDJSON events (user keys, default
 * type, events without an item), MovieLens' u.data, the sort by time with
 * ties in input order, the format guesses, and every error naming its line
 * and field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "at_eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(at_eval_data_t *d, const char *src, at_eval_format_t fmt, at_error_t *err)
{
    at_eval_data_init(d);
    *err = (at_error_t){0};
    return at_eval_data_parse(d, src, strlen(src), fmt, err);
}

static void assert_str(const char *s, size_t n, const char *want)
{
    if (n != strlen(want) || memcmp(s, want, n) != 0)
        fail_msg("got '%.*s', want '%s'", (int)n, s, want);
}

/* Parsing src fails with rc, a message containing each of want (NULL
 * ended) and field. */
static void assert_fails(const char *src, at_eval_format_t fmt, int rc, const char *field, ...)
{
    at_eval_data_t d;
    at_error_t err;
    assert_int_equal(parse(&d, src, fmt, &err), rc);
    assert_string_equal(err.field, field);
    va_list ap;
    va_start(ap, field);
    for (const char *w; (w = va_arg(ap, const char *));)
        if (!strstr(err.message, w))
            fail_msg("message '%s' lacks '%s'", err.message, w);
    va_end(ap);
    at_eval_data_deinit(&d);
}

static void test_csv(void **state)
{
    (void)state;
    at_eval_data_t d;
    at_error_t err;
    /* aliases in any case, an ignored column, a quoted item holding the
     * separator and a quote, CRLF, a blank line, three time forms */
    const char *src = "User_ID,rating,ITEM,ts,Type,category\r\n"
                      "u1,5,\"x,\"\"y\",1700000000,add_to_cart,books\r\n"
                      "\r\n"
                      "u2,4,i2,1700000000500,,\r\n"
                      "u3,3,i3,2023-11-14T22:13:21.25Z,purchase,\r\n"
                      "u4,1,i4,1700000000.75,,\n";
    assert_int_equal(parse(&d, src, AT_EVAL_FMT_CSV, &err), 0);
    assert_int_equal(d.n, 4);
    /* sorted by time: u1 (..000 000), u2 (..000 500), u4 (..000 750), u3 */
    assert_str(d.ev[0].user, d.ev[0].user_len, "u:u1");
    assert_str(d.ev[0].item, d.ev[0].item_len, "x,\"y");
    assert_str(d.ev[0].type, d.ev[0].type_len, "add_to_cart");
    assert_str(d.ev[0].category, d.ev[0].category_len, "books");
    assert_int_equal(d.ev[0].ts_ms, 1700000000000LL);
    assert_str(d.ev[1].user, d.ev[1].user_len, "u:u2");
    assert_int_equal(d.ev[1].ts_ms, 1700000000500LL);
    assert_str(d.ev[1].type, d.ev[1].type_len, "view_item"); /* empty: the default */
    assert_int_equal(d.ev[1].category_len, 0);
    assert_str(d.ev[2].user, d.ev[2].user_len, "u:u4");
    assert_int_equal(d.ev[2].ts_ms, 1700000000750LL);
    assert_str(d.ev[3].user, d.ev[3].user_len, "u:u3");
    assert_int_equal(d.ev[3].ts_ms, 1700000001250LL);
    at_eval_data_deinit(&d);

    /* tab separated, only the three columns; ties keep input order */
    assert_int_equal(
        parse(&d, "item\tuser\ttimestamp\nb\t1\t5\na\t2\t5\nc\t1\t4\n", AT_EVAL_FMT_CSV, &err), 0);
    assert_int_equal(d.n, 3);
    assert_str(d.ev[0].item, d.ev[0].item_len, "c");
    assert_str(d.ev[1].item, d.ev[1].item_len, "b");
    assert_str(d.ev[2].item, d.ev[2].item_len, "a");
    assert_str(d.ev[2].type, d.ev[2].type_len, "view_item");
    assert_int_equal(d.ev[1].ts_ms, 5000);
    at_eval_data_deinit(&d);

    /* nothing at all, or a header alone: no interactions */
    assert_int_equal(parse(&d, "", AT_EVAL_FMT_CSV, &err), 0);
    assert_int_equal(d.n, 0);
    at_eval_data_deinit(&d);
    assert_int_equal(parse(&d, "user,item,timestamp\n", AT_EVAL_FMT_CSV, &err), 0);
    assert_int_equal(d.n, 0);
    at_eval_data_deinit(&d);
}

static void test_csv_errors(void **state)
{
    (void)state;
    assert_fails("user,item\n1,a\n", AT_EVAL_FMT_CSV, AT_EINVALID, "timestamp", "line 1",
                 "no timestamp column", NULL);
    assert_fails("user,item,user,timestamp\n", AT_EVAL_FMT_CSV, AT_EINVALID, "user", "line 1",
                 "field 3", "a second user column", NULL);
    assert_fails("user,item,timestamp\n1,a,1\n\n2,b,yesterday\n", AT_EVAL_FMT_CSV, AT_EINVALID,
                 "timestamp", "line 4, field 3 (timestamp)", "not a time", NULL);
    assert_fails("user,item,timestamp\n1,a,1\n2,b\n", AT_EVAL_FMT_CSV, AT_EINVALID, "",
                 "line 3: 2 fields where the header has 3", NULL);
    assert_fails("user,item,timestamp\n1,\"a,1\n", AT_EVAL_FMT_CSV, AT_EPARSE, "",
                 "line 2, field 2: a quoted field is not closed", NULL);
    assert_fails("user,item,timestamp\n1,\"a\"x,1\n", AT_EVAL_FMT_CSV, AT_EPARSE, "",
                 "line 2, field 2: text after a closing quote", NULL);
    assert_fails("timestamp,user,item\n1,,a\n", AT_EVAL_FMT_CSV, AT_EINVALID, "user",
                 "line 2, field 2 (user): is empty", NULL);
    assert_fails("timestamp,user,item\n1,u,\n", AT_EVAL_FMT_CSV, AT_EINVALID, "item",
                 "line 2, field 3 (item): is empty", NULL);
    assert_fails("user,item,timestamp\n1,a,1.\n", AT_EVAL_FMT_CSV, AT_EINVALID, "timestamp",
                 "line 2", NULL);
}

static void test_ndjson(void **state)
{
    (void)state;
    at_eval_data_t d;
    at_error_t err;
    const char *src =
        "{\"type\":\"add_to_cart\",\"user_id\":\"12345\",\"anonymous_id\":\"a-1\",\"item_id\":"
        "\"987\",\"category\":\"electronics/phones\",\"timestamp\":\"2026-04-27T14:35:00Z\","
        "\"properties\":{\"price\":19.99}}\n"
        "\n"
        "  {\"anonymous_id\":\"a-77\",\"item_id\":42,\"timestamp\":1777300000000}\n"
        "{\"type\":\"search\",\"user_id\":\"7\",\"timestamp\":1}\n"
        "{\"type\":\"view_item\",\"user_id\":\"caf\\u00e9\",\"item_id\":\"x\",\"timestamp\":1}\n";
    assert_int_equal(parse(&d, src, AT_EVAL_FMT_NDJSON, &err), 0);
    assert_int_equal(d.n, 4);
    assert_str(d.ev[0].user, d.ev[0].user_len, "u:7");
    assert_int_equal(d.ev[0].item_len, 0); /* no item: kept, never scored */
    assert_str(d.ev[0].type, d.ev[0].type_len, "search");
    assert_str(d.ev[1].user, d.ev[1].user_len, "u:caf\xc3\xa9");
    assert_str(d.ev[2].user, d.ev[2].user_len, "a:a-77");
    assert_str(d.ev[2].item, d.ev[2].item_len, "42");
    assert_str(d.ev[2].type, d.ev[2].type_len, "view_item");
    assert_int_equal(d.ev[2].ts_ms, 1777300000000LL);
    assert_str(d.ev[3].user, d.ev[3].user_len, "u:12345"); /* user_id wins */
    assert_str(d.ev[3].item, d.ev[3].item_len, "987");
    assert_str(d.ev[3].category, d.ev[3].category_len, "electronics/phones");
    assert_int_equal(d.ev[3].ts_ms, 1777300500000LL);
    at_eval_data_deinit(&d);
}

static void test_ndjson_errors(void **state)
{
    (void)state;
    assert_fails("{\"user_id\":\"1\",\"timestamp\":1}\n{\"user_id\":\"1\",,}\n", AT_EVAL_FMT_NDJSON,
                 AT_EPARSE, "", "line 2, column 16", NULL);
    assert_fails("{\"user_id\":\"1\",\"timestamp\":1} x\n", AT_EVAL_FMT_NDJSON, AT_EPARSE, "",
                 "line 1, column 31", "after the JSON value", NULL);
    assert_fails("[1]\n", AT_EVAL_FMT_NDJSON, AT_EINVALID, "", "line 1", "JSON object", NULL);
    assert_fails("\n\n{\"item_id\":\"a\",\"timestamp\":1}\n", AT_EVAL_FMT_NDJSON, AT_EINVALID,
                 "user_id", "line 3", "user_id or anonymous_id", NULL);
    assert_fails("{\"user_id\":\"1\",\"item_id\":\"a\"}\n", AT_EVAL_FMT_NDJSON, AT_EINVALID,
                 "timestamp", "line 1", "(timestamp): is required", NULL);
    assert_fails("{\"user_id\":\"1\",\"timestamp\":\"soon\"}\n", AT_EVAL_FMT_NDJSON, AT_EINVALID,
                 "timestamp", "line 1, column 28 (timestamp)", "not a time", NULL);
    assert_fails("{\"user_id\":\"1\",\"timestamp\":1.5}\n", AT_EVAL_FMT_NDJSON, AT_EINVALID,
                 "timestamp", "line 1", NULL);
    assert_fails("{\"user_id\":\"1\",\"type\":3,\"timestamp\":1}\n", AT_EVAL_FMT_NDJSON,
                 AT_EINVALID, "type", "line 1, column 23 (type)", "must be a string", NULL);
}

static void test_movielens(void **state)
{
    (void)state;
    at_eval_data_t d;
    at_error_t err;
    assert_int_equal(
        parse(&d, "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n",
              AT_EVAL_FMT_MOVIELENS, &err),
        0);
    assert_int_equal(d.n, 3);
    assert_str(d.ev[0].user, d.ev[0].user_len, "u:22");
    assert_str(d.ev[0].item, d.ev[0].item_len, "377");
    assert_int_equal(d.ev[0].ts_ms, 878887116000LL);
    assert_str(d.ev[0].type, d.ev[0].type_len, "view_item");
    assert_str(d.ev[2].user, d.ev[2].user_len, "u:186");
    at_eval_data_deinit(&d);

    /* the last line without its newline: the seconds end with the input
     * (a copy without a NUL after it, so ASan sees a read past the end) */
    char *src = malloc(8);
    assert_non_null(src);
    memcpy(src, "1\t2\t3\t45", 8);
    at_eval_data_init(&d);
    assert_int_equal(at_eval_data_parse(&d, src, 8, AT_EVAL_FMT_MOVIELENS, &err), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.ev[0].ts_ms, 45000);
    at_eval_data_deinit(&d);
    free(src);

    assert_fails("1\t2\t3\t4\n1\t2\t3\n", AT_EVAL_FMT_MOVIELENS, AT_EPARSE, "", "line 2",
                 "not 4 tab-separated fields", NULL);
    assert_fails("1\t2\t3\t4x\n", AT_EVAL_FMT_MOVIELENS, AT_EINVALID, "timestamp",
                 "line 1, field 4 (timestamp)", NULL);
    assert_fails("1\t\t3\t4\n", AT_EVAL_FMT_MOVIELENS, AT_EINVALID, "item",
                 "line 1, field 2 (item): is empty", NULL);
}

static void test_guess_and_load(void **state)
{
    (void)state;
    assert_int_equal(at_eval_guess_format("x.ndjson", "", 0), AT_EVAL_FMT_NDJSON);
    assert_int_equal(at_eval_guess_format("x.JSONL", "", 0), AT_EVAL_FMT_NDJSON);
    assert_int_equal(at_eval_guess_format("x.tsv", "{", 1), AT_EVAL_FMT_CSV);
    assert_int_equal(at_eval_guess_format("ml/u.data", "", 0), AT_EVAL_FMT_MOVIELENS);
    assert_int_equal(at_eval_guess_format("x", "\n  {", 4), AT_EVAL_FMT_NDJSON);
    assert_int_equal(at_eval_guess_format("x", "user,", 5), AT_EVAL_FMT_CSV);
    at_eval_format_t f;
    assert_true(at_eval_format_parse("movielens", &f));
    assert_int_equal(f, AT_EVAL_FMT_MOVIELENS);
    assert_false(at_eval_format_parse("tsv", &f));

    const char *tmp = getenv("AT_TEST_TMP");
    char path[512];
    (void)snprintf(path, sizeof path, "%s/eval_data.csv", tmp ? tmp : "/tmp");
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs("user,item,timestamp\n1,a,1\n", fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    at_eval_data_t d;
    at_error_t err = {0};
    at_eval_data_init(&d);
    assert_int_equal(at_eval_data_load(&d, path, AT_EVAL_FMT_GUESS, &err), 0);
    assert_int_equal(d.n, 1);
    at_eval_data_deinit(&d);
    at_eval_data_init(&d);
    assert_int_equal(at_eval_data_load(&d, "/nonexistent/x.csv", AT_EVAL_FMT_GUESS, &err), -ENOENT);
    at_eval_data_deinit(&d);
    (void)remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv),       cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_ndjson),    cmocka_unit_test(test_ndjson_errors),
        cmocka_unit_test(test_movielens), cmocka_unit_test(test_guess_and_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
