/* test_json.c - attune's JSON parser and writer: what is accepted and
 * refused (RFC 8259, UTF-8, surrogates, numbers, nesting), decoding of
 * escapes, zero-copy strings, the writer's canonical escapes, equality
 * and integer reading. */
#include "at_json.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static at_arena_t g_a;

static int reset(void **state)
{
    (void)state;
    at_arena_deinit(&g_a);
    at_arena_init(&g_a, 0);
    return 0;
}

static at_json_t *parse_ok(const char *s)
{
    at_json_t *v = NULL;
    at_error_t e;
    memset(&e, 0, sizeof e);
    if (at_json_parse_all(s, strlen(s), &g_a, 16, &v, &e) != 0)
        fail_msg("'%s' refused: %s", s, e.message);
    return v;
}

/* Writes v compactly into a static buffer. */
static const char *compact(const at_json_t *v)
{
    static at_buf_t b;
    at_buf_deinit(&b);
    at_buf_init(&b, 0);
    at_json_w_value(&b, v);
    return b.data;
}

static void test_accepts(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {" {} ", "{}"},
        {"[]", "[]"},
        {"\t[ 1 , -0.5e+10 , 0 , 1E-2 , true , false , null ]\r\n",
         "[1,-0.5e+10,0,1E-2,true,false,null]"},
        {"{\"a\" : {\"b\" : [ {\"c\" : \"d\"} ] } }", "{\"a\":{\"b\":[{\"c\":\"d\"}]}}"},
        {"\"\"", "\"\""},
        {"\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"", "\"A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u001f\\u0000\"",
         "\"\\\"\\\\/\\b\\f\\n\\r\\t\\u001f\\u0000\""},
        {"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\"",
         "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\""},
        {"{\"\\u006b\":1}", "{\"k\":1}"},
        {"123456789012345678901234567890", "123456789012345678901234567890"},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(cases); i++)
        assert_string_equal(compact(parse_ok(cases[i].in)), cases[i].out);
}

static void test_refuses(void **state)
{
    (void)state;
    static const struct {
        const char *in, *msg;
        int col;
    } cases[] = {
        {"", "a value was expected", 1},
        {"{\"a\":1,}", "expected a string key", 8},
        {"[1,]", "a value was expected", 4},
        {"[1 2]", "expected ',' or ']'", 4},
        {"{\"a\" 1}", "expected ':'", 6},
        {"01", "unexpected data", 2},
        {"-", "invalid number", 1},
        {"1.", "digit expected after '.'", 3},
        {"1e", "digit expected in exponent", 3},
        {".5", "a value was expected", 1},
        {"+1", "a value was expected", 1},
        {"NaN", "a value was expected", 1},
        {"nul", "a value was expected", 1},
        {"\"abc", "unterminated string", 1},
        {"\"a\\x\"", "invalid escape", 3},
        {"\"\\u12g4\"", "invalid escape", 2},
        {"\"\\udc00\"", "invalid escape", 2},         /* lone low surrogate */
        {"\"\\ud800x\"", "invalid escape", 2},        /* high without low */
        {"\"\\ud800\\u0041\"", "invalid escape", 2},  /* high with a non-surrogate */
        {"\"\xc0\xaf\"", "invalid UTF-8", 2},         /* overlong '/' */
        {"\"\xe0\x80\xaf\"", "invalid UTF-8", 2},     /* overlong, 3 bytes */
        {"\"\xed\xa0\x80\"", "invalid UTF-8", 2},     /* an encoded surrogate */
        {"\"\xf4\x90\x80\x80\"", "invalid UTF-8", 2}, /* past U+10FFFF */
        {"\"\xc3\"", "invalid UTF-8", 2},             /* truncated */
        {"\"\x80\"", "invalid UTF-8", 2},             /* a lone continuation byte */
        {"\"a\nb\"", "control character", 3},
        {"[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]", "nesting too deep", 17},
        {"{} {}", "unexpected data", 4},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(cases); i++) {
        at_json_t *v;
        at_error_t e;
        memset(&e, 0, sizeof e);
        int rc = at_json_parse_all(cases[i].in, strlen(cases[i].in), &g_a, 16, &v, &e);
        char where[64];
        snprintf(where, sizeof where, "line 1, column %d: ", cases[i].col);
        if (rc != AT_EPARSE || !strstr(e.message, where) || !strstr(e.message, cases[i].msg))
            fail_msg("case %zu '%s': rc %d '%s'", i, cases[i].in, rc, e.message);
        assert_string_equal(e.code, "invalid_json");
    }
}

static void test_line_and_column(void **state)
{
    (void)state;
    int line, col;
    at_json_where("ab\ncd\n\nef", 8, &line, &col);
    assert_int_equal(line, 4);
    assert_int_equal(col, 2);
    at_json_where("x", 0, &line, &col);
    assert_int_equal(line, 1);
    assert_int_equal(col, 1);
}

static void test_tree(void **state)
{
    (void)state;
    const char *src = "{\"s\":\"plain\",\"e\":\"a\\nb\",\"n\":-12,\"f\":1.5,\"o\":{\"x\":[1,2]}}";
    at_json_t *v = parse_ok(src);
    assert_int_equal(v->type, AT_JSON_OBJECT);
    assert_int_equal(v->len, 5);
    assert_int_equal(v->off, 0);
    assert_int_equal(v->end, strlen(src));
    const at_json_t *s = at_json_get(v, "s", 1);
    assert_int_equal(s->type, AT_JSON_STRING);
    assert_ptr_equal(s->s, src + 6); /* not copied */
    assert_int_equal(s->flags & AT_JSON_F_ESC, 0);
    const at_json_t *e = at_json_get(v, "e", 1);
    assert_int_equal(e->len, 3);
    assert_memory_equal(e->s, "a\nb", 3);
    assert_true(e->flags & AT_JSON_F_ESC);
    int64_t n;
    assert_int_equal(at_json_i64(at_json_get(v, "n", 1), &n), 0);
    assert_int_equal(n, -12);
    assert_int_equal(at_json_i64(at_json_get(v, "f", 1), &n), AT_EINVALID);
    assert_true(at_json_number(at_json_get(v, "f", 1)) == 1.5);
    const at_json_t *o = at_json_get(v, "o", 1);
    assert_memory_equal(src + o->off, "{\"x\":[1,2]}", o->end - o->off);
    assert_null(at_json_get(v, "missing", 7));
    assert_null(at_json_get(s, "s", 1));
}

static void test_i64_range(void **state)
{
    (void)state;
    int64_t n;
    assert_int_equal(at_json_i64(parse_ok("9223372036854775807"), &n), 0);
    assert_true(n == INT64_MAX);
    assert_int_equal(at_json_i64(parse_ok("-9223372036854775808"), &n), 0);
    assert_true(n == INT64_MIN);
    assert_int_equal(at_json_i64(parse_ok("9223372036854775808"), &n), AT_EINVALID);
    assert_int_equal(at_json_i64(parse_ok("99999999999999999999"), &n), AT_EINVALID);
    assert_int_equal(at_json_i64(parse_ok("1e3"), &n), AT_EINVALID);
}

static void test_numbers(void **state)
{
    (void)state;
    /* the fast path and strtod agree, to the last bit */
    static const char *const cases[] = {
        "0",
        "-0",
        "19.99",
        "-19.99",
        "0.1",
        "0.3",
        "123456789012345",
        "1234567890.12345",
        "0.000000000000000000001",
        "9007199254740993",
        "1e2",
        "1.5E-3",
        "-2.5e+10",
        "123456789012345678901234567890",
        "0.1234567890123456789",
        "3.14159",
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(cases); i++) {
        double d = at_json_number(parse_ok(cases[i]));
        double want = strtod(cases[i], NULL);
        if (memcmp(&d, &want, sizeof d) != 0)
            fail_msg("%s: %.17g, want %.17g", cases[i], d, want);
    }
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(at_json_equal(parse_ok("{\"a\":[1,\"x\"],\"b\":null}"),
                              parse_ok("{\"b\":null,\"a\":[1.0,\"\\u0078\"]}")));
    assert_true(at_json_equal(parse_ok("100"), parse_ok("1e2")));
    assert_false(at_json_equal(parse_ok("[1,2]"), parse_ok("[2,1]")));
    assert_false(at_json_equal(parse_ok("{\"a\":1}"), parse_ok("{\"a\":1,\"b\":2}")));
    assert_false(at_json_equal(parse_ok("\"1\""), parse_ok("1")));
    assert_false(at_json_equal(parse_ok("true"), parse_ok("false")));
}

static void test_long_strings(void **state)
{
    (void)state;
    /* the eight-bytes-at-a-time scan must stop at the first special byte
     * wherever it falls in a word */
    char src[128], want[128];
    for (int at = 0; at < 40; at++) {
        for (int k = 0; k < 4; k++) {
            static const char *const special[] = {"\\n", "\\\"", "\xc3\xa9", "\\u0001"};
            static const char *const out[] = {"\\n", "\\\"", "\xc3\xa9", "\\u0001"};
            snprintf(src, sizeof src, "\"%.*s%sabcdefghijklmnop\"", at,
                     "0123456789012345678901234567890123456789", special[k]);
            snprintf(want, sizeof want, "\"%.*s%sabcdefghijklmnop\"", at,
                     "0123456789012345678901234567890123456789", out[k]);
            assert_string_equal(compact(parse_ok(src)), want);
        }
        snprintf(src, sizeof src, "\"%.*s\x01\"", at, "0123456789012345678901234567890123456789");
        at_json_t *v;
        at_error_t e;
        assert_int_equal(at_json_parse_all(src, strlen(src), &g_a, 16, &v, &e), AT_EPARSE);
    }
}

/* at_json_unescape gives the bytes the parser decodes, and writes no more. */
static void test_unescape(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "plain",
        "",
        "a\\/b\\n\\\"q\\\" \\u0001",
        "caf\\u00e9 \\ud83d\\ude00 \\u20AC",
        "\\b\\f\\r\\t\\/\\\\",
        "caf\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char src[128], out[128];
        snprintf(src, sizeof src, "\"%s\"", bodies[i]);
        at_json_t *v = parse_ok(src);
        size_t n = strlen(bodies[i]);
        memset(out, '#', sizeof out);
        size_t d = at_json_unescape(out, bodies[i], n);
        assert_int_equal(d, v->len);
        assert_memory_equal(out, v->s, d);
        assert_int_equal(out[d], '#');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_accepts, reset),
        cmocka_unit_test_setup(test_refuses, reset),
        cmocka_unit_test_setup(test_line_and_column, reset),
        cmocka_unit_test_setup(test_tree, reset),
        cmocka_unit_test_setup(test_i64_range, reset),
        cmocka_unit_test_setup(test_numbers, reset),
        cmocka_unit_test_setup(test_equal, reset),
        cmocka_unit_test_setup(test_long_strings, reset),
        cmocka_unit_test_setup(test_unescape, reset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    at_arena_deinit(&g_a);
    return rc;
}
