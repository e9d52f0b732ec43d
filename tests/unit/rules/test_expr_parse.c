/* test_expr_parse.c - what the expression compiler refuses and where it
 * says the problem is: syntax, names, types, arity, literals, the flags of
 * the env, columns counted in characters over several lines, and the
 * limits on length and nesting (an error, never a deep recursion). */
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

static int compile_n(const char *src, size_t n, unsigned flags, at_expr_err_t *err)
{
    at_expr_env_t env = xt_env(&H, flags);
    at_expr_t *e = NULL;
    int rc = at_expr_compile(src, n, &env, &e, err);
    if (rc == 0)
        assert_non_null(e);
    else
        assert_null(e);
    at_expr_free(e);
    return rc;
}

static void ok_n(const char *src, size_t n, unsigned flags)
{
    at_expr_err_t err;
    if (compile_n(src, n, flags, &err) != 0)
        fail_msg("'%.*s' refused: %s", (int)AT_MIN(n, 80), src, err.msg);
}

static void ok(const char *src)
{
    ok_n(src, strlen(src), 0);
}

typedef struct {
    const char *src;
    int rc;
    int line, col;
    const char *reason; /* a part of it */
} ecase_t;

static void check_errors(const ecase_t *cases, size_t n, unsigned flags)
{
    for (size_t i = 0; i < n; i++) {
        const ecase_t *c = &cases[i];
        at_expr_err_t err;
        int rc = compile_n(c->src, strlen(c->src), flags, &err);
        if (rc != c->rc || err.line != c->line || err.col != c->col ||
            !strstr(err.reason, c->reason))
            fail_msg("'%s': got %d %s, want %d %d:%d: ...%s...", c->src, rc,
                     rc ? err.msg : "(accepted)", c->rc, c->line, c->col, c->reason);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%d:%d: ", c->line, c->col);
        assert_int_equal(strncmp(err.msg, prefix, strlen(prefix)), 0);
        assert_string_equal(err.msg + strlen(prefix), err.reason);
        assert_true(err.pos <= strlen(c->src));
    }
}

#define ERRS(cases, flags) check_errors(cases, AT_ARRAY_LEN(cases), flags)

#define P AT_EPARSE
#define I AT_EINVALID
#define B AT_ETOOBIG

static void test_syntax_errors(void **state)
{
    (void)state;
    static const ecase_t cases[] = {
        {"x = 3", P, 1, 3, "use '==' to compare"},
        {"type & \"b\"", P, 1, 6, "unexpected '&' (use '&&' or 'and')"},
        {"type | \"b\"", P, 1, 6, "unexpected '|' (use '||' or 'or')"},
        {"1 < 2 < 3", P, 1, 7, "comparisons do not chain"},
        {"type == \"a\" == true", P, 1, 13, "comparisons do not chain"},
        {"type == ", P, 1, 9, "expected a value, found the end of the expression"},
        {"(type == \"a\"", P, 1, 13, "expected ')' to close the '(' at 1:1"},
        {"type == \"a\")", P, 1, 12, "unexpected ')' after a complete expression"},
        {"type == \"a\" \"b\"", P, 1, 13, "unexpected '\"b\"'"},
        {"@", P, 1, 1, "unexpected character '@'"},
        {"type == \xc3\xa9", P, 1, 9, "unexpected character '\xc3\xa9'"},
        {"type == \"a\"\x01", P, 1, 12, "unexpected character \\x01"},
        {"", P, 1, 1, "empty expression"},
        {"  \n\t ", P, 1, 1, "empty expression"},
        {"type not \"x\"", P, 1, 10, "expected 'in' after 'not'"},
        {"and", P, 1, 1, "expected a value, found 'and'"},
        {"type == in", P, 1, 9, "expected a value, found 'in'"},
        {"properties.", P, 1, 12, "expected a field name after '.'"},
        {"properties.1", P, 1, 12, "expected a field name after '.'"},
        {"properties[1.5]", P, 1, 12, "expected a quoted name or an index in [...]"},
        {"properties[-1]", P, 1, 12, "expected a quoted name or an index"},
        {"properties[\"a\"", P, 1, 15, "expected ']'"},
        {"hour(timestamp", P, 1, 15, "expected ',' or ')' in the arguments"},
        {"hour(timestamp,)", P, 1, 16, "expected a value, found ')'"},
        {"[1, 2", P, 1, 6, "expected ',' or ']' in the list"},
        {"[,]", P, 1, 2, "expected a value, found ','"},
        {"+1", P, 1, 1, "expected a value, found '+'"},
        {"type ==\n\"a\" &&", P, 2, 7, "expected a value, found the end"},
        {"lower(type)[0]", P, 1, 12, "unexpected '['"},
    };
    ERRS(cases, 0);
}

static void test_literal_errors(void **state)
{
    (void)state;
    static const ecase_t cases[] = {
        {"\"abc", P, 1, 1, "unterminated string"},
        {"'abc\"", P, 1, 1, "unterminated string"},
        {"type == \"a\n\"", P, 1, 9, "unterminated string"},
        {"\"a\\qb\"", P, 1, 3, "unknown escape in a string"},
        {"\"a\\", P, 1, 1, "unterminated string"},
        {"\"\\u12\"", P, 1, 2, "\\u needs four hex digits"},
        {"\"\\u12g4\"", P, 1, 2, "\\u needs four hex digits"},
        {"\"\\udc00\"", P, 1, 2, "a low surrogate"},
        {"\"\\ud800\"", P, 1, 2, "a high surrogate"},
        {"\"x\\ud800\\u0041\"", P, 1, 3, "a high surrogate"},
        {"\"a\tb\"", P, 1, 3, "control character in a string"},
        {"\"\\n\x01\"", P, 1, 4, "control character in a string"},
        {"10x", P, 1, 3, "unknown duration unit 'x'"},
        {"10min", P, 1, 3, "unknown duration unit 'min'"},
        {"1h1h", P, 1, 4, "from the largest unit to the smallest"},
        {"1m1h", P, 1, 4, "from the largest unit to the smallest"},
        {"1h30", P, 1, 5, "a duration part needs a unit"},
        {"0.5ms", I, 1, 1, "a whole number of milliseconds"},
        {"1e3s", P, 1, 1, "a duration takes a plain number"},
        {"1h_", P, 1, 3, "unexpected '_' in a duration"},
        {"1.", P, 1, 2, "unexpected '.' after a number"},
        {"1.e5", P, 1, 2, "unexpected '.' after a number"},
        {"1_000", P, 1, 2, "unexpected '_' after a number"},
        {"1e400", I, 1, 1, "number out of range"},
        {"99999999999999999999w", I, 1, 1, "duration out of range"},
        {"20000000000000000w", I, 1, 1, "duration out of range"},
        {"time(\"yesterday\")", I, 1, 6, "not an RFC 3339 time"},
        {"time(\"2026-02-30T00:00:00Z\")", I, 1, 6, "not an RFC 3339 time"},
    };
    ERRS(cases, 0);
    ok("\"\\\"\\'\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\" != \"\"");
    ok("'\"' == \"\\\"\"");
    ok("1.5e3 + 2E-2 + 0.001");
    ok("1w2d3h4m5s6ms");
    ok("1.25s");
    ok("0ms");
}

static void test_name_errors(void **state)
{
    (void)state;
    static const ecase_t cases[] = {
        {"typ == \"x\"", I, 1, 1,
         "unknown name 'typ' (did you mean 'type'?); the names are type, event_id, user_id, "
         "anonymous_id, session_id, item_id, category, timestamp, received_at, context.*, "
         "properties.*, profile.*, now"},
        {"foo > 1", I, 1, 1, "unknown name 'foo'; the names are type, event_id"},
        {"Type == \"x\"", I, 1, 1, "(did you mean 'type'?)"},
        {"timestmp > now", I, 1, 1, "(did you mean 'timestamp'?)"},
        {"propertys.price > 1", I, 1, 1, "(did you mean 'properties'?)"},
        {"huor(timestamp) > 3", I, 1, 1, "unknown function 'huor' (did you mean 'hour'?)"},
        {"starts(type, \"a\")", I, 1, 1, "unknown function 'starts'; the functions are exists"},
        {"type == \"a\" && dayofweek(now) == 1", I, 1, 16,
         "unknown function 'dayofweek' (did you mean 'day_of_week'?)"},
        {"count > 3", I, 1, 1, "the aggregate count is only allowed in a having clause"},
        {"sum(properties.revenue) > 1", I, 1, 1, "the aggregate sum() is only allowed"},
        {"distinct(item_id) > 1", I, 1, 1, "the aggregate distinct() is only allowed"},
        {"type.x == 1", I, 1, 6, "'type' is a string and has no fields"},
        {"timestamp.x", I, 1, 11, "'timestamp' is a time and has no fields"},
        {"now.x", I, 1, 5, "'now' is a time and has no fields"},
        {"context == 1", I, 1, 1, "'context' needs a field name, as in context.device"},
        {"properties", I, 1, 1, "'properties' needs a field name, as in properties.price"},
        {"profile", I, 1, 1, "'profile' needs a field name: counters.<event type>, first_seen"},
        {"profile.foo", I, 1, 9, "unknown profile field 'foo'; profile has counters.<event type>"},
        {"profile.countrs.x", I, 1, 9,
         "unknown profile field 'countrs' (did you mean 'counters'?)"},
        {"profile.counters", I, 1, 9, "profile.counters needs an event type"},
        {"profile.counters[0]", I, 1, 18, "profile.counters needs an event type"},
        {"profile.counters.a.b", I, 1, 20, "a counter is a number and has no fields"},
        {"profile.first_seen.x", I, 1, 20, "profile.first_seen is a time and has no fields"},
        {"profile.session.foo", I, 1, 17, "profile.session has start, events, pages and duration"},
        {"profile.session.strat", I, 1, 17, "(did you mean 'start'?)"},
        {"profile.session", I, 1, 9, "profile.session has start"},
        {"profile.session.pages.x", I, 1, 23, "profile.session.pages has no fields"},
        {"profile.traits", I, 1, 9, "profile.traits needs a trait name"},
        {"properties.forbidden > 1", I, 1, 1,
         "field 'properties.forbidden' is not available here: the test host refuses it"},
        {"in_segment(\"nope\")", I, 1, 12, "unknown segment 'nope'"},
        {"in_segment(type)", I, 1, 12, "in_segment() takes a segment name in quotes"},
        {"in_segment(\"high\" + \"_intent\")", I, 1, 12, "takes a segment name in quotes"},
    };
    ERRS(cases, 0);
    ok("properties.and == properties.or && properties.true != properties.null");
    ok("profile.counters[\"sign-up\"] > 0 && profile.traits[\"2fa\"] == true");
    ok("profile.traits.address.city == \"Paris\"");
}

static void test_type_errors(void **state)
{
    (void)state;
    static const ecase_t cases[] = {
        {"\"a\" > 3", I, 1, 5, "cannot compare a string with a number"},
        {"3 == \"3\"", I, 1, 3, "cannot compare a number with a string"},
        {"timestamp == \"x\"", I, 1, 11,
         "cannot compare a time with a string (write a time as time(\"2026-05-01T00:00:00Z\"))"},
        {"timestamp > 10m", I, 1, 11,
         "cannot compare a time with a duration (for an age write now - timestamp > 10m)"},
        {"profile.session.duration > 10", I, 1, 26, "cannot compare a duration with a number"},
        {"type == true", I, 1, 6, "cannot compare a string with a condition"},
        {"properties.x > 10m", I, 1, 14, "a JSON value is never a duration"},
        {"true < false", I, 1, 6, "true and false have no order: use == or !="},
        {"null < 1", I, 1, 6, "null can only be compared with == or != (or use exists())"},
        {"[1] == [1]", I, 1, 5, "a list can only be used with in, contains and len()"},
        {"1 && true", I, 1, 1, "'&&' needs conditions, not a number"},
        {"true && 1", I, 1, 9, "'&&' needs conditions, not a number"},
        {"type || true", I, 1, 1, "'||' needs conditions, not a string"},
        {"true and \"yes\"", I, 1, 10, "'&&' needs conditions, not a string"},
        {"!3", I, 1, 1, "'!' needs a condition, not a number"},
        {"not type", I, 1, 1, "'!' needs a condition, not a string"},
        {"-\"a\"", I, 1, 1, "'-' needs a number or a duration, not a string"},
        {"-timestamp", I, 1, 1, "'-' needs a number or a duration, not a time"},
        {"\"a\" + \"b\"", I, 1, 5, "'+' cannot combine a string and a string"},
        {"timestamp + timestamp", I, 1, 11, "'+' cannot combine a time and a time"},
        {"10m * 10m", I, 1, 5, "'*' cannot combine a duration and a duration"},
        {"1 - timestamp", I, 1, 3, "'-' cannot combine a number and a time"},
        {"10m - timestamp", I, 1, 5, "'-' cannot combine a duration and a time"},
        {"2 / 10m", I, 1, 3, "'/' cannot combine a number and a duration"},
        {"true + 1", I, 1, 6, "'+' cannot combine a condition (true or false) and a number"},
        {"1 / 0", I, 1, 3, "division by zero"},
        {"1 % (2 - 2)", I, 1, 3, "division by zero"},
        {"10m % 0s", I, 1, 5, "division by zero"},
        {"10m / 0", I, 1, 5, "division by zero"},
        {"properties.x / 0", I, 1, 14, "division by zero"},
        {"type in \"abc\"", I, 1, 6, "'in' needs a list on its right; for a substring"},
        {"type in 3", I, 1, 6, "'in' needs a list on its right, not a number"},
        {"type in [1, 2]", I, 1, 6, "cannot look for a string in a list of numbers"},
        {"timestamp in [1m]", I, 1, 11, "cannot look for a time in a list of durations"},
        {"properties.x in [1m]", I, 1, 14, "a JSON value is never a duration"},
        {"[1] in [1]", I, 1, 1, "cannot look for a list in a list"},
        {"null in [1]", I, 1, 1, "cannot look for null in a list"},
        {"timestamp in properties.tags", I, 1, 11, "JSON arrays hold strings, numbers and"},
        {"[1, \"a\"]", I, 1, 5,
         "the elements of a list must all have the same type: this is "
         "a string, the first is a number"},
        {"[1m, timestamp]", I, 1, 6, "the elements of a list must be constants"},
        {"[[1]]", I, 1, 2, "lists cannot be nested"},
        {"[null]", I, 1, 2, "null cannot be in a list"},
        {"type starts_with 1", I, 1, 6, "starts_with needs strings on both sides, not a number"},
        {"1 ends_with type", I, 1, 3, "ends_with needs strings on both sides, not a number"},
        {"type contains 1", I, 1, 6, "a string can only contain a string, not a number"},
        {"timestamp contains \"a\"", I, 1, 11,
         "contains needs a string, a list or a JSON array on its left, not a time"},
        {"properties.tags contains 1m", I, 1, 17, "JSON arrays hold strings, numbers and"},
        {"[1, 2] contains \"a\"", I, 1, 8, "cannot look for a string in a list of numbers"},
        {"hour(timestamp, 1, 2)", I, 1, 1, "hour() takes 1 or 2 arguments, not 3"},
        {"hour()", I, 1, 1, "hour() takes 1 or 2 arguments, not 0"},
        {"exists(properties.a, properties.b)", I, 1, 1, "exists() takes 1 argument, not 2"},
        {"lower()", I, 1, 1, "lower() takes 1 argument, not 0"},
        {"hour(\"x\")", I, 1, 6, "hour() needs a time, not a string"},
        {"day_of_week(3)", I, 1, 13, "day_of_week() needs a time, not a number"},
        {"hour(timestamp, 5)", I, 1, 17, "a time zone is a string such as \"Europe/Paris\""},
        {"hour(timestamp, \"Mars/Olympus\")", I, 1, 17, "unknown time zone 'Mars/Olympus'"},
        {"lower(1)", I, 1, 7, "lower() needs a string, not a number"},
        {"upper(timestamp)", I, 1, 7, "upper() needs a string, not a time"},
        {"len(5)", I, 1, 5, "len() needs a string or a list, not a number"},
        {"abs(\"x\")", I, 1, 5, "abs() needs a number or a duration, not a string"},
        {"affinity(3)", I, 1, 10, "affinity() needs a string, not a number"},
        {"exists(1)", I, 1, 8, "exists() takes a field path, as in exists(properties.coupon)"},
        {"exists(now)", I, 1, 8, "exists() takes a field path"},
        {"exists(lower(type))", I, 1, 8, "exists() takes a field path"},
        {"time(true)", I, 1, 6, "time() needs an RFC 3339 string or epoch milliseconds"},
    };
    ERRS(cases, 0);
}

static void test_env_flags(void **state)
{
    (void)state;
    static const ecase_t cond[] = {
        {"1 + 2", I, 1, 1, "a condition must be true or false, but this is number"},
        {"type", I, 1, 1, "a condition must be true or false, but this is string"},
        {"  now", I, 1, 3, "but this is time"},
        {"[true]", I, 1, 1, "but this is list"},
    };
    ERRS(cond, AT_EXPR_BOOL);
    ok_n("properties.flag", 15, AT_EXPR_BOOL); /* any: decided at run time */
    ok_n("type == \"a\"", 11, AT_EXPR_BOOL);

    static const ecase_t noprof[] = {
        {"profile.traits.plan == \"x\"", I, 1, 1, "profile fields are not available here"},
        {"type == \"a\" && profile.counters.purchase > 1", I, 1, 16,
         "profile fields are not available here"},
        {"affinity(\"a\") > 0", I, 1, 1, "affinity() reads the profile, which is not available"},
        {"in_segment(\"high_intent\")", I, 1, 12, "in_segment() reads the profile"},
    };
    ERRS(noprof, AT_EXPR_NO_PROFILE);
    ok_n("type == \"a\" && now - timestamp < 1h", 35, AT_EXPR_NO_PROFILE);

    /* no env at all: fields get default slots, segments are refused */
    at_expr_t *e;
    at_expr_err_t err;
    const char *src = "in_segment(\"high_intent\")";
    assert_int_equal(at_expr_compile(src, strlen(src), NULL, &e, &err), AT_EINVALID);
    assert_string_equal(err.msg, "1:12: segments are not available here");
    assert_null(e);
    /* err may be NULL */
    assert_int_equal(at_expr_compile("1 +", 3, NULL, &e, NULL), AT_EPARSE);
    assert_int_equal(at_expr_compile("1 + 1", 5, NULL, &e, NULL), 0);
    at_expr_free(e);
    /* the text need not be NUL-terminated */
    assert_int_equal(at_expr_compile("type == \"a\"garbage", 11, NULL, &e, NULL), 0);
    at_expr_free(e);
}

static void test_positions(void **state)
{
    (void)state;
    static const ecase_t cases[] = {
        {"type == \"view_item\" &&\n  properties.price > 10m", I, 2, 20, "never a duration"},
        {"type == \"a\"\n\n   && hour(timestamp, \"Mars/X\") > 1", I, 3, 23, "unknown time zone"},
        {"\"\xc3\xa9\" > 1", I, 1, 5, "cannot compare"}, /* columns count characters */
        {"\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\" == 1", I, 1, 7, "cannot compare"},
        {"\"\xf0\x9f\x98\x80\" + 1", I, 1, 5, "cannot combine"},
        {"\r\n\ttype == 1", I, 2, 7, "cannot compare"},
        {"type == \"\xff\"", P, 1, 10, "invalid UTF-8"},
        {"\"\xc0\xaf\"", P, 1, 2, "invalid UTF-8"},         /* overlong */
        {"\"\xed\xa0\x80\"", P, 1, 2, "invalid UTF-8"},     /* a surrogate */
        {"\"\xf4\x90\x80\x80\"", P, 1, 2, "invalid UTF-8"}, /* past U+10FFFF */
        {"\"\xe6\x97\"", P, 1, 2, "invalid UTF-8"},         /* cut short */
    };
    ERRS(cases, 0);
    at_expr_err_t err;
    compile_n("\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\" == 1", 16, 0, &err);
    assert_int_equal(err.pos, 12); /* bytes */
    ok("properties.name == \"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\" || "
       "properties[\"\xc3\xa9t\xc3\xa9\"] == 1");
}

/* Builds prefix + n copies of rep + suffix into a heap string. */
static char *build(const char *prefix, const char *rep, size_t n, const char *mid, const char *rep2,
                   const char *suffix)
{
    size_t len = strlen(prefix) + n * (strlen(rep) + strlen(rep2)) + strlen(mid) + strlen(suffix);
    char *s = malloc(len + 1), *p = s;
    p += sprintf(p, "%s", prefix);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s", rep);
    p += sprintf(p, "%s", mid);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s", rep2);
    sprintf(p, "%s", suffix);
    return s;
}

static void expect_too_deep(char *src)
{
    at_expr_err_t err;
    int rc = compile_n(src, strlen(src), 0, &err);
    if (rc != AT_ETOOBIG || !strstr(err.reason, "nested too deeply (more than 64 levels)"))
        fail_msg("'%.40s...': %d %s", src, rc, err.msg);
    assert_true(err.pos <= strlen(src));
    free(src);
}

static void expect_ok(char *src)
{
    ok(src);
    free(src);
}

static void test_limits(void **state)
{
    (void)state;
    /* length */
    char *s = malloc(AT_EXPR_MAX_LEN + 2);
    memset(s, ' ', AT_EXPR_MAX_LEN + 1);
    memcpy(s, "type == \"a\"", 11);
    ok_n(s, AT_EXPR_MAX_LEN, 0);
    at_expr_err_t err;
    assert_int_equal(compile_n(s, AT_EXPR_MAX_LEN + 1, 0, &err), AT_ETOOBIG);
    assert_string_equal(err.msg, "1:1: expression longer than 8192 bytes");
    free(s);

    /* nesting: parentheses, prefix operators, calls, lists, operator chains */
    expect_ok(build("", "(", 60, "1", ")", ""));
    expect_too_deep(build("", "(", 65, "1", ")", ""));
    expect_too_deep(build("", "(", 4000, "1", ")", ""));
    expect_too_deep(build("", "(", 8192, "", "", ""));
    expect_ok(build("", "!", 60, "true", "", ""));
    expect_too_deep(build("", "!", 100, "true", "", ""));
    expect_too_deep(build("", "not ", 2000, "true", "", ""));
    expect_too_deep(build("", "-", 4000, "1", "", ""));
    expect_ok(build("", "lower(", 60, "type", ")", " == \"a\""));
    expect_too_deep(build("", "lower(", 100, "type", ")", ""));
    expect_too_deep(build("", "[", 8000, "", "", ""));
    expect_ok(build("1", " + 1", 60, "", "", ""));
    expect_too_deep(build("1", " + 1", 100, "", "", ""));
    expect_too_deep(build("", "1 + (", 100, "1", ")", ""));
    /* && and || chains count once however long */
    expect_ok(build("type == \"a\"", " || type == \"a\"", 500, "", "", ""));
    expect_ok(build("true", " && properties.flag", 400, "", "", ""));
    expect_ok(build("(", "type == \"b\" || ", 200, "false) && true", "", ""));
    /* a long list */
    expect_ok(build("properties.x in [0", ", 1", 2500, "]", "", ""));

    /* deep but legal nesting evaluates with its computed stack */
    char *deep = build("", "1 + (", 30, "1", ")", "");
    at_expr_t *e;
    at_expr_env_t env = xt_env(&H, 0);
    assert_int_equal(at_expr_compile(deep, strlen(deep), &env, &e, &err), 0);
    at_expr_rt_t rt = xt_rt(&H);
    at_val_t v;
    at_expr_eval(e, &rt, &v);
    assert_true(v.type == AT_VAL_NUM && v.u.num == 31);
    at_expr_free(e);
    free(deep);
    deep = build("", "properties.a + (", 40, "properties.b", ")", "");
    assert_int_equal(at_expr_compile(deep, strlen(deep), &env, &e, &err), 0);
    at_buf_t b;
    at_buf_init(&b, 0);
    at_expr_disasm(e, &b);
    assert_non_null(strstr(b.data, "stack 41"));
    at_buf_deinit(&b);
    at_expr_free(e);
    free(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_literal_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
