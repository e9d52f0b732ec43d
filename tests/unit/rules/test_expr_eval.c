/* test_expr_eval.c - what expressions evaluate to (docs/rules.md,
 * "Expressions"): every operator and function, precedence, three-valued
 * logic and missing values, run-time types, durations and times, time
 * zones, in-lists and JSON arrays, the profile, folding, introspection
 * and determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "at_tz.h"
#include "expr_test.h"

static const char EV[] =
    "{\"event_id\":\"e1\",\"type\":\"view_item\",\"user_id\":\"12345\",\"anonymous_id\":\"a-77\","
    "\"session_id\":\"s-1\",\"item_id\":\"987\",\"category\":\"electronics/phones\","
    "\"timestamp\":\"2026-04-27T19:35:00Z\",\"received_at\":\"2026-04-27T19:35:00.250Z\","
    "\"context\":{\"device\":\"mobile\",\"locale\":\"en-US\",\"timezone\":\"+02:00\","
    "\"page\":\"/p/987\",\"zone_ny\":\"America/New_York\",\"bad_zone\":\"Mars/Olympus\"},"
    "\"properties\":{\"price\":119.99,\"quantity\":1,\"discount\":0,\"coupon\":null,\"flag\":true,"
    "\"name\":\"Zo\\u00eb\",\"tags\":[\"sale\",\"new\",3,true,[\"x\"],{\"k\":1}],"
    "\"esc\":[\"a\\\"b\",\"\\u00e9\",\"\\ud83d\\ude00\"],\"obj\":{\"a\":1,\"b\":[1,2]},"
    "\"my key\":\"x\",\"expires\":\"2026-05-01T00:00:00Z\",\"at_ms\":1777318500000,"
    "\"in\":\"kw\",\"items\":[{\"sku\":\"A1\"},{\"sku\":\"B2\"}],\"zero\":0,\"neg\":-5,"
    "\"str3\":\"3\",\"three\":3,\"empty\":\"\",\"emptyarr\":[],\"upper\":\"MiXeD\"}}";

static const char PR[] =
    "{\"counters\":{\"purchase\":2,\"view_item\":10},\"first_seen\":\"2026-01-01T00:00:00Z\","
    "\"last_seen\":\"2026-04-27T19:30:00Z\",\"session\":{\"start\":\"2026-04-27T19:00:00Z\","
    "\"events\":5,\"pages\":3,\"duration\":900000},\"traits\":{\"plan\":\"gold\",\"age\":42},"
    "\"affinity\":{\"electronics\":0.7,\"books\":0.1},\"segments\":[1]}";

#define NOW_MS 1777318500000LL /* 2026-04-27T19:35:00Z */

static xt_host_t H;
static at_expr_t *g_last;

static int setup(void **state)
{
    (void)state;
    xt_init(&H);
    assert_int_equal(xt_set(&H, EV, PR), 0);
    H.now_ms = NOW_MS;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    at_expr_free(g_last);
    g_last = NULL;
    xt_deinit(&H);
    return 0;
}

static at_expr_t *compile_flags(const char *src, unsigned flags)
{
    at_expr_env_t env = xt_env(&H, flags);
    at_expr_err_t err;
    at_expr_t *e = NULL;
    if (at_expr_compile(src, strlen(src), &env, &e, &err) != 0)
        fail_msg("'%s' refused: %s", src, err.msg);
    at_expr_free(g_last);
    g_last = e;
    return e;
}

static at_val_t val(const char *src)
{
    at_expr_t *e = compile_flags(src, 0);
    at_expr_rt_t rt = xt_rt(&H);
    at_val_t v;
    assert_int_equal(at_expr_eval(e, &rt, &v), 0);
    return v;
}

/* 1 true, 0 false, -1 unknown (missing); fails on other values. */
static int tri(const char *src)
{
    at_val_t v = val(src);
    at_expr_rt_t rt = xt_rt(&H);
    bool holds = at_expr_eval_bool(g_last, &rt);
    if (v.type == AT_VAL_BOOL) {
        if (holds != v.u.b)
            fail_msg("'%s': eval_bool disagrees with eval", src);
        return v.u.b;
    }
    if (holds)
        fail_msg("'%s' holds but is not true", src);
    if (v.type == AT_VAL_MISSING)
        return -1;
    fail_msg("'%s' is %s, not a truth value", src, at_val_type_name(v.type));
    return -2;
}

typedef struct {
    const char *src;
    int want; /* 1 true, 0 false, -1 unknown */
} tcase_t;

static void run_cases(const tcase_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = tri(cases[i].src);
        if (got != cases[i].want)
            fail_msg("'%s' gave %d, want %d", cases[i].src, got, cases[i].want);
    }
}

#define RUN(cases) run_cases(cases, AT_ARRAY_LEN(cases))

static double num(const char *src)
{
    at_val_t v = val(src);
    if (v.type != AT_VAL_NUM)
        fail_msg("'%s' is %s, not a number", src, at_val_type_name(v.type));
    return v.u.num;
}

static int64_t ms_of(const char *src, int type)
{
    at_val_t v = val(src);
    if (v.type != type)
        fail_msg("'%s' is %s, not %s", src, at_val_type_name(v.type), at_val_type_name(type));
    return v.u.ms;
}

static void test_design_examples(void **state)
{
    (void)state;
    static const tcase_t cases[] = {
        {"type == \"view_item\" && context.device == \"mobile\"", 1},
        {"properties.price >= 100", 1},
        {"category starts_with \"electronics\"", 1},
        {"hour(timestamp, context.timezone) >= 18", 1}, /* 21:35 at +02:00 */
        {"type in [\"add_to_cart\", \"purchase\"]", 0},
        {"exists(properties.coupon)", 0}, /* null is missing */
        {"affinity(\"electronics\") > 0.4 && profile.counters.purchase >= 1", 1},
        {"in_segment(\"high_intent\")", 1},
        {"in_segment(\"big_spender\")", 0},
        {"profile.traits.plan == \"gold\"", 1},
        {"profile.session.duration > 10m", 1},
        {"type == \"view_item\" && properties.discount > 0", 0},
        {"type == \"view_item\" && context.device == \"desktop\"", 0},
    };
    RUN(cases);
}

static void test_precedence(void **state)
{
    (void)state;
    static const tcase_t cases[] = {
        {"1 + 2 * 3 == 7", 1},
        {"(1 + 2) * 3 == 9", 1},
        {"10 - 4 - 3 == 3", 1}, /* left associative */
        {"8 / 4 / 2 == 1", 1},
        {"2 * 3 % 4 == 2", 1},
        {"-2 * 3 == -6", 1},
        {"- 2 - 3 == -5", 1},
        {"--2 == 2", 1},
        {"true || false && false", 1}, /* && binds tighter */
        {"(true || false) && false", 0},
        {"false && true || true", 1},
        {"!true || true", 1},
        {"! 1 == 2", 1}, /* ! is looser than comparisons: !(1 == 2) */
        {"not 1 > 2 and true", 1},
        {"true or false and false", 1},
        {"1 + 1 == 2 && 2 * 2 == 4", 1},
        {"properties.price > 100 && properties.quantity == 1 || false", 1},
        {"(1 < 2) == true", 1},
    };
    RUN(cases);
    assert_true(num("2 + 3 * 4 - 6 / 2") == 11);
    assert_true(num("(2 + 3) * (4 - 6) / 2") == -5);
}

static void test_three_valued_logic(void **state)
{
    (void)state;
    /* properties.nope == 1 is unknown: nothing is known about it */
    static const tcase_t cases[] = {
        {"properties.nope == 1", -1},
        {"properties.nope != 1", -1},
        {"!(properties.nope == 1)", -1},
        {"not properties.nope == 1", -1},
        {"properties.nope == 1 && false", 0},
        {"false && properties.nope == 1", 0},
        {"properties.nope == 1 && true", -1},
        {"properties.nope == 1 || true", 1},
        {"true || properties.nope == 1", 1},
        {"properties.nope == 1 || false", -1},
        {"properties.nope == 1 || properties.nope == 2", -1},
        {"properties.nope == 1 && properties.nope == 2", -1},
        {"!exists(properties.nope) || properties.nope == 1", 1},
        {"exists(properties.nope) && properties.nope == 1", 0},
        {"properties.flag", 1},
        {"!properties.flag", 0},
        {"properties.flag && true", 1},
        {"properties.nope", -1},
        {"!properties.nope", -1},
        {"properties.price && true", -1}, /* a number is not a truth value */
        {"properties.price || true", 1},
        {"true && properties.flag", 1},
        {"true && properties.price", -1},
    };
    RUN(cases);
}

static void test_missing_values(void **state)
{
    (void)state;
    static const tcase_t cases[] = {
        {"properties.coupon != \"X\"", -1},
        {"properties.coupon == \"X\"", -1},
        {"!exists(properties.coupon) || properties.coupon != \"X\"", 1},
        {"properties.nope < 1", -1},
        {"properties.nope >= 1", -1},
        {"properties.nope starts_with \"a\"", -1},
        {"properties.nope contains \"a\"", -1},
        {"properties.nope in [1, 2]", -1},
        {"properties.nope not in [1, 2]", -1},
        {"properties.nope + 1 > 0", -1},
        {"properties.nope * 0 == 0", -1},
        {"-properties.nope < 0", -1},
        {"lower(properties.nope) == \"a\"", -1},
        {"len(properties.nope) == 0", -1},
        {"exists(properties.coupon)", 0},
        {"exists(properties.nope)", 0},
        {"exists(properties.price)", 1},
        {"exists(properties.empty)", 1}, /* an empty string is present */
        {"exists(properties.zero)", 1},
        {"exists(properties.emptyarr)", 1},
        {"exists(properties.items[1].sku)", 1},
        {"exists(properties.items[2].sku)", 0},
        {"properties.coupon == null", 1},
        {"properties.coupon != null", 0},
        {"null == properties.price", 0},
        {"null != properties.price", 1},
        {"lower(properties.nope) == null", 1},
        {"properties.price + 1 != null", 1},
        {"null == null", 1},
        {"null != null", 0},
        {"exists(session_id)", 1},
        {"exists(anonymous_id)", 1},
        {"profile.counters.nope == 0", 1}, /* counters are 0 when absent */
        {"profile.counters.nope + 1 == 1", 1},
        {"exists(profile.counters.nope)", 1},
        {"profile.counters.nope in [0]", 1},
        {"exists(profile.traits.nope)", 0},
        {"profile.traits.nope == \"gold\"", -1},
    };
    RUN(cases);
    assert_int_equal(val("properties.nope + 1").type, AT_VAL_MISSING);
    assert_int_equal(val("properties.coupon").type, AT_VAL_MISSING);
    assert_int_equal(val("null").type, AT_VAL_NULL);
    assert_true(num("profile.counters.purchase") == 2);
    assert_true(num("profile.counters.nope") == 0);

    /* an event without most fields */
    assert_int_equal(xt_set(&H, "{\"type\":\"page_view\"}", NULL), 0);
    static const tcase_t bare[] = {
        {"type == \"page_view\"", 1},          {"exists(user_id)", 0},
        {"timestamp > now - 1h", -1},          {"hour(timestamp) == 0", -1},
        {"profile.counters.purchase == 0", 1}, {"profile.traits.plan == \"gold\"", -1},
        {"affinity(\"electronics\") == 0", 1}, /* the host says 0 */
    };
    RUN(bare);
}

static void test_runtime_types(void **state)
{
    (void)state;
    static const tcase_t cases[] = {
        {"properties.price == \"119.99\"", -1}, /* no conversions */
        {"properties.str3 == 3", -1},
        {"properties.str3 == \"3\"", 1},
        {"properties.three == 3", 1},
        {"properties.three == properties.str3", -1},
        {"properties.three != properties.str3", -1},
        {"properties.three == properties.quantity + 2", 1},
        {"properties.name == properties.name", 1},
        {"properties.flag == true", 1},
        {"properties.flag != false", 1},
        {"properties.flag == 1", -1},
        {"properties.flag == properties.flag", 1},
        {"properties.flag != properties.three", -1},
        {"properties.flag < properties.flag", -1},  /* bools have no order */
        {"properties.tags == properties.tags", -1}, /* JSON arrays are not compared */
        {"properties.price > properties.quantity", 1},
        {"properties.name > properties.empty", 1},
        {"properties.name > properties.price", -1},
        {"properties.name starts_with \"Zo\"", 1},
        {"properties.price starts_with \"1\"", -1},
        {"properties.name + 1 > 0", -1},
        {"properties.price * 2 > 200", 1},
        {"properties.price - properties.price == 0", 1},
        {"properties.tags + 1 > 0", -1},
        {"len(properties.price) > 0", -1},
        {"properties.flag in [true]", 1},
        {"properties.name in [1, 2]", -1},
        {"lower(properties.price) == \"x\"", -1},
        {"abs(properties.name) > 0", -1},
        {"abs(properties.neg) == 5", 1},
        {"-properties.neg == 5", 1},
        {"context.device == \"mobile\"", 1},
    };
    RUN(cases);
}

static void test_strings(void **state)
{
    (void)state;
    static const tcase_t cases[] = {
        {"category starts_with \"electronics\"", 1},
        {"category starts_with \"phones\"", 0},
        {"category ends_with \"/phones\"", 1},
        {"category ends_with \"electronics\"", 0},
        {"category contains \"nics/ph\"", 1},
        {"category contains \"tablets\"", 0},
        {"category contains \"\"", 1},
        {"category starts_with \"\"", 1},
        {"\"\" ends_with \"\"", 1},
        {"\"ab\" starts_with \"abc\"", 0},
        {"\"abc\" < \"abd\"", 1},
        {"\"abc\" < \"ab\"", 0},
        {"\"ab\" < \"abc\"", 1},
        {"\"B\" < \"a\"", 1}, /* by bytes: uppercase sorts first */
        {"\"a\" <= \"a\" && \"a\" >= \"a\"", 1},
        {"\"\\u00e9\" > \"z\"", 1}, /* UTF-8 bytes: 0xC3 > 'z' */
        {"\"\" == \"\"", 1},
        {"properties.empty == \"\"", 1},
        {"lower(\"MiXeD\") == \"mixed\"", 1},
        {"upper(\"MiXeD\") == \"MIXED\"", 1},
        {"lower(properties.upper) == \"mixed\"", 1},
        {"upper(properties.upper) == \"MIXED\"", 1},
        {"lower(properties.upper) starts_with \"mix\"", 1},
        {"lower(properties.upper) ends_with \"xed\"", 1},
        {"lower(properties.upper) contains \"ixe\"", 1},
        {"upper(properties.upper) contains \"IXE\"", 1},
        {"\"mixed\" contains lower(properties.upper)", 1},
        {"lower(properties.upper) == lower(\"MIXED\")", 1},
        {"lower(properties.upper) == upper(properties.upper)", 0},
        {"lower(properties.upper) < \"mixee\"", 1},
        {"lower(type) in [\"VIEW_ITEM\", \"view_item\"]", 1},
        {"upper(type) in [\"view_item\"]", 0},
        {"upper(lower(properties.upper)) == \"MIXED\"", 1},
        {"lower(\"\\u00c9A\") == \"\\u00c9a\"", 1}, /* ASCII only: \u00c9 stays */
        {"upper(\"\\u00e9a\") == \"\\u00e9A\"", 1},
        {"properties.name == \"Zo\\u00eb\"", 1},
        {"properties.name == \"Zo\xc3\xab\"", 1},
        {"'single' == \"single\"", 1},
        {"'it\\'s' == \"it's\"", 1},
        {"\"say \\\"hi\\\"\" == 'say \"hi\"'", 1},
        {"\"a\\tb\\nc\\\\d\\/\" == 'a\\tb\\nc\\\\d/'", 1},
        {"\"\\ud83d\\ude00\" == \"\xf0\x9f\x98\x80\"", 1},
        {"len(\"\\ud83d\\ude00\") == 1", 1},
        {"len(\"h\\u00e9llo\") == 5", 1},
        {"len(\"\") == 0", 1},
        {"len(properties.name) == 3", 1},
        {"len(lower(properties.name)) == 3", 1},
        {"\"\\u0000\" != \"\"", 1},
        {"len(\"a\\u0000b\") == 3", 1},
    };
    RUN(cases);
    at_val_t v = val("lower(properties.upper)");
    assert_int_equal(v.type, AT_VAL_STR);
    assert_int_equal(v.flags, AT_VAL_F_LOWER);
    char buf[8];
    at_val_copy(&v, buf);
    assert_memory_equal(buf, "mixed", 5);
    v = val("upper(\"abc\")"); /* folded at compile time */
    assert_int_equal(v.flags, 0);
    assert_memory_equal(v.u.s, "ABC", 3);
}

static void test_numbers(void **state)
{
    (void)state;
    assert_true(num("42") == 42);
    assert_true(num("0.5") == 0.5);
    assert_true(num("1e3") == 1000);
    assert_true(num("1E3") == 1000);
    assert_true(num("2.5e-3") == 0.0025);
    assert_true(num("1e+2") == 100);
    assert_true(num("007") == 7);
    assert_true(num("-0.1") == -0.1);
    assert_true(num("0.1 + 0.2") == 0.1 + 0.2);
    assert_true(num("7 % 3") == 1);
    assert_true(num("-7 % 3") == -1); /* the sign of the dividend */
    assert_true(num("7.5 % 2") == 1.5);
    assert_true(num("1 / 4") == 0.25);
    assert_true(num("abs(-3.5)") == 3.5);
    assert_true(num("abs(properties.neg)") == 5);
    assert_true(num("123456789012345678901234567890") == 123456789012345678901234567890.0);
    assert_true(num("properties.price") == 119.99);
    assert_true(num("properties.price * properties.quantity") == 119.99);
    static const tcase_t cases[] = {
        {"0.1 + 0.2 != 0.3", 1}, /* IEEE doubles */
        {"properties.price / properties.zero > 0", -1},
        {"properties.price % properties.zero == 0", -1},
        {"1e308 * properties.price > 0", -1}, /* no finite result */
        {"-0 == 0", 1},
        {"3 > 2.999", 1},
        {"properties.price >= 119.99 && properties.price <= 119.99", 1},
        {"properties.quantity in [1, 2, 3]", 1},
        {"properties.quantity in [1.0]", 1},
        {"properties.quantity not in [2, 3]", 1},
    };
    RUN(cases);
}

static void test_durations(void **state)
{
    (void)state;
    assert_int_equal(ms_of("250ms", AT_VAL_DUR), 250);
    assert_int_equal(ms_of("90s", AT_VAL_DUR), 90000);
    assert_int_equal(ms_of("10m", AT_VAL_DUR), 600000);
    assert_int_equal(ms_of("2h", AT_VAL_DUR), 7200000);
    assert_int_equal(ms_of("7d", AT_VAL_DUR), 604800000);
    assert_int_equal(ms_of("1w", AT_VAL_DUR), 604800000);
    assert_int_equal(ms_of("1h30m", AT_VAL_DUR), 5400000);
    assert_int_equal(ms_of("1d2h3m4s5ms", AT_VAL_DUR), 93784005);
    assert_int_equal(ms_of("1.5h", AT_VAL_DUR), 5400000);
    assert_int_equal(ms_of("0.25s", AT_VAL_DUR), 250);
    assert_int_equal(ms_of("0s", AT_VAL_DUR), 0);
    assert_int_equal(ms_of("-5m", AT_VAL_DUR), -300000);
    assert_int_equal(ms_of("10m + 30s", AT_VAL_DUR), 630000);
    assert_int_equal(ms_of("10m - 30s", AT_VAL_DUR), 570000);
    assert_int_equal(ms_of("2 * 10m", AT_VAL_DUR), 1200000);
    assert_int_equal(ms_of("10m * 1.5", AT_VAL_DUR), 900000);
    assert_int_equal(ms_of("10m / 4", AT_VAL_DUR), 150000);
    assert_int_equal(ms_of("1ms * 0.5", AT_VAL_DUR), 1); /* half away from zero */
    assert_int_equal(ms_of("-1ms * 0.5", AT_VAL_DUR), -1);
    assert_int_equal(ms_of("10m % 3m", AT_VAL_DUR), 60000);
    assert_int_equal(ms_of("abs(-2h)", AT_VAL_DUR), 7200000);
    assert_int_equal(ms_of("profile.session.duration", AT_VAL_DUR), 900000);
    assert_true(num("1h / 1m") == 60);
    assert_true(num("profile.session.duration / 1m") == 15);
    static const tcase_t cases[] = {
        {"1w == 7d", 1},
        {"1d == 24h", 1},
        {"90s == 1m30s", 1},
        {"250ms < 1s", 1},
        {"1h30m > 90m", 0},
        {"1h30m >= 90m", 1},
        {"profile.session.duration > 10m", 1},
        {"profile.session.duration <= 15m", 1},
        {"profile.session.duration == 900000ms", 1},
        {"profile.session.duration in [15m, 30m]", 1},
        {"profile.session.duration not in [1m]", 1},
        {"10m / properties.zero > 0s", -1},
        {"10m * properties.price > 1h", 1},
        {"properties.quantity * 10m == 10m", 1},
    };
    RUN(cases);
}

static void test_times(void **state)
{
    (void)state;
    assert_int_equal(ms_of("timestamp", AT_VAL_TIME), NOW_MS);
    assert_int_equal(ms_of("now", AT_VAL_TIME), NOW_MS);
    assert_int_equal(ms_of("received_at", AT_VAL_TIME), NOW_MS + 250);
    assert_int_equal(ms_of("received_at - timestamp", AT_VAL_DUR), 250);
    assert_int_equal(ms_of("timestamp + 1h", AT_VAL_TIME), NOW_MS + 3600000);
    assert_int_equal(ms_of("1h + timestamp", AT_VAL_TIME), NOW_MS + 3600000);
    assert_int_equal(ms_of("timestamp - 1d", AT_VAL_TIME), NOW_MS - 86400000);
    assert_int_equal(ms_of("now - profile.session.start", AT_VAL_DUR), 35 * 60000);
    assert_int_equal(ms_of("time(\"2026-04-27T19:35:00Z\")", AT_VAL_TIME), NOW_MS);
    assert_int_equal(ms_of("time(\"2026-04-27T21:35:00+02:00\")", AT_VAL_TIME), NOW_MS);
    assert_int_equal(ms_of("time(1777318500000)", AT_VAL_TIME), NOW_MS);
    assert_int_equal(ms_of("time(properties.at_ms)", AT_VAL_TIME), NOW_MS);
    assert_int_equal(ms_of("time(properties.expires)", AT_VAL_TIME), 1777593600000LL);
    assert_int_equal(ms_of("time(timestamp)", AT_VAL_TIME), NOW_MS);
    assert_int_equal(ms_of("properties.expires - now", AT_VAL_DUR), 1777593600000LL - NOW_MS);
    assert_int_equal(val("time(properties.name)").type, AT_VAL_MISSING);
    assert_int_equal(val("time(properties.price)").type, AT_VAL_MISSING); /* not integral */
    static const tcase_t cases[] = {
        {"timestamp == now", 1},
        {"timestamp > time(\"2026-01-01T00:00:00Z\")", 1},
        {"timestamp < time(\"2026-01-01T00:00:00Z\")", 0},
        {"now - profile.first_seen > 7d", 1},
        {"now - profile.last_seen < 10m", 1},
        {"profile.last_seen < now", 1},
        {"properties.expires > now", 1}, /* a JSON string read as a time */
        {"now < properties.expires", 1},
        {"properties.at_ms == now", 1}, /* a JSON integer read as epoch ms */
        {"properties.name < now", -1},  /* not a time */
        {"properties.expires - 3d > now", 1},
        {"timestamp in [time(\"2026-04-27T19:35:00Z\"), time(\"2026-01-01T00:00:00Z\")]", 1},
        {"properties.expires in [time(\"2026-05-01T00:00:00Z\")]", 1},
        {"timestamp + 15000000w > now", -1}, /* past the range of times */
    };
    RUN(cases);
}

static void test_date_parts(void **state)
{
    (void)state;
    /* 2026-04-27T19:35:00Z is a Monday */
    assert_true(num("year(timestamp)") == 2026);
    assert_true(num("month(timestamp)") == 4);
    assert_true(num("day(timestamp)") == 27);
    assert_true(num("hour(timestamp)") == 19);
    assert_true(num("minute(timestamp)") == 35);
    assert_true(num("second(received_at)") == 0);
    assert_true(num("second(time(\"2026-04-27T19:35:07.999Z\"))") == 7);
    assert_true(num("day_of_week(timestamp)") == 1);
    assert_true(num("day_of_week(timestamp + 6d)") == 7);
    assert_true(num("day_of_week(time(\"1970-01-01T00:00:00Z\"))") == 4);
    assert_true(num("day_of_week(time(\"1969-12-31T23:59:59Z\"))") == 3);
    assert_true(num("hour(time(\"1969-12-31T23:59:59Z\"))") == 23);
    assert_true(num("year(time(\"2024-02-29T12:00:00Z\"))") == 2024);
    assert_true(num("day(time(\"2024-02-29T12:00:00Z\"))") == 29);
    assert_true(num("hour(now)") == 19);
    assert_true(num("hour(timestamp, \"UTC\")") == 19);
    assert_true(num("hour(properties.expires)") == 0);
    assert_true(num("hour(properties.at_ms)") == 19);
    assert_int_equal(val("hour(properties.name)").type, AT_VAL_MISSING);
    assert_int_equal(val("year(properties.nope)").type, AT_VAL_MISSING);
}

/* hour() across zones: fixed offsets always, IANA zones once the system's
 * zone files are there. */
static void test_time_zones(void **state)
{
    (void)state;
    assert_true(num("hour(timestamp, \"+02:00\")") == 21);
    assert_true(num("hour(timestamp, \"-05:30\")") == 14);
    assert_true(num("minute(timestamp, \"-05:30\")") == 5);
    assert_true(num("hour(timestamp, context.timezone)") == 21); /* "+02:00" */
    assert_true(num("hour(timestamp, context.bad_zone)") == 19); /* unknown: UTC */
    assert_true(num("hour(timestamp, context.nope)") == 19);     /* missing: UTC */
    assert_true(num("hour(timestamp, properties.price)") == 19); /* not a string: UTC */
    assert_true(num("day_of_week(time(\"2026-04-26T23:30:00Z\"), \"+02:00\")") == 1);
    assert_true(num("day(time(\"2026-04-30T23:30:00Z\"), \"+02:00\")") == 1);
    assert_true(num("month(time(\"2026-04-30T23:30:00Z\"), \"+02:00\")") == 5);
    assert_true(num("year(time(\"2026-12-31T23:30:00Z\"), \"+01:00\")") == 2027);
    assert_true(num("hour(timestamp, upper(\"utc\"))") == 19);

    if (!at_tz_get("Europe/Paris", 12) || !at_tz_get("America/New_York", 16)) {
        skip();
        return;
    }
    static const struct {
        const char *src;
        double want;
    } zones[] = {
        {"hour(time(\"2026-01-15T12:00:00Z\"), \"Europe/Paris\")", 13},
        {"hour(time(\"2026-07-15T12:00:00Z\"), \"Europe/Paris\")", 14},
        {"hour(time(\"2026-01-15T12:00:00Z\"), \"America/New_York\")", 7},
        {"hour(time(\"2026-07-15T12:00:00Z\"), \"America/New_York\")", 8},
        /* summer time starts 2026-03-29 01:00 UTC in Paris, 2026-03-08 07:00 UTC in New York */
        {"hour(time(\"2026-03-29T00:59:59Z\"), \"Europe/Paris\")", 1},
        {"hour(time(\"2026-03-29T01:00:00Z\"), \"Europe/Paris\")", 3},
        {"hour(time(\"2026-03-08T06:59:59Z\"), \"America/New_York\")", 1},
        {"hour(time(\"2026-03-08T07:00:00Z\"), \"America/New_York\")", 3},
        /* and ends 2026-10-25 01:00 UTC in Paris: 02:00-03:00 happens twice */
        {"hour(time(\"2026-10-25T00:30:00Z\"), \"Europe/Paris\")", 2},
        {"hour(time(\"2026-10-25T01:30:00Z\"), \"Europe/Paris\")", 2},
        {"day_of_week(time(\"2026-04-26T23:30:00Z\"), \"Europe/Paris\")", 1},
        {"day_of_week(time(\"2026-04-26T23:30:00Z\"), \"America/New_York\")", 7},
        {"day(time(\"2026-05-01T02:00:00Z\"), \"America/New_York\")", 30},
        {"hour(timestamp, context.zone_ny)", 15},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(zones); i++)
        if (num(zones[i].src) != zones[i].want)
            fail_msg("'%s' gave %g, want %g", zones[i].src, num(zones[i].src), zones[i].want);
    /* a literal zone is looked up once, at compile time */
    at_buf_t b;
    at_buf_init(&b, 0);
    assert_int_equal(
        at_expr_disasm(compile_flags("hour(timestamp, \"Europe/Paris\") >= 18", 0), &b), 0);
    assert_non_null(strstr(b.data, "tpart "));
    assert_null(strstr(b.data, "tpart.dyn"));
    at_buf_deinit(&b);
}

static void test_in_lists(void **state)
{
    (void)state;
    static const tcase_t cases[] = {
        {"type in [\"add_to_cart\", \"purchase\"]", 0},
        {"type in [\"add_to_cart\", \"view_item\"]", 1},
        {"type in [\"view_item\"]", 1},
        {"type not in [\"add_to_cart\", \"purchase\"]", 1},
        {"type not in [\"view_item\"]", 0},
        {"type in []", 0},
        {"type not in []", 1},
        {"type in [\"view_item\", \"view_item\", \"a\"]", 1},
        {"type in [\"view_item\",]", 1},
        {"item_id in [\"987\", \"988\"]", 1},
        {"properties.quantity in [3, 2, 1]", 1},
        {"properties.flag in [false]", 0},
        {"3 in [1, 2, 3]", 1},
        {"\"b\" in [\"a\", \"b\"]", 1},
        {"[\"a\", \"view_item\"] contains type", 1},
        {"[1, 2] contains properties.quantity", 1},
        {"[1, 2] contains 3", 0},
        {"-1 in [-1, 1]", 1},
        {"1m in [60s]", 1},
        {"properties.nope in []", -1},
        /* JSON arrays of the event */
        {"properties.tags contains \"sale\"", 1},
        {"properties.tags contains \"old\"", 0},
        {"properties.tags contains 3", 1},
        {"properties.tags contains 3.0", 1},
        {"properties.tags contains 4", 0},
        {"properties.tags contains true", 1},
        {"properties.tags contains false", 0},
        {"properties.tags contains \"x\"", 0}, /* nested arrays are not searched */
        {"\"sale\" in properties.tags", 1},
        {"\"old\" not in properties.tags", 1},
        {"type in properties.tags", 0},
        {"properties.esc contains \"a\\\"b\"", 1},
        {"properties.esc contains \"\\u00e9\"", 1},
        {"properties.esc contains \"\\ud83d\\ude00\"", 1},
        {"properties.esc contains \"a\"", 0},
        {"properties.esc contains upper(\"\\u00e9\")", 1},
        {"properties.emptyarr contains 1", 0},
        {"properties.obj contains 1", -1}, /* an object is not an array */
        {"properties.name contains \"o\"", 1},
        {"properties.tags contains properties.quantity", 0},
        {"properties.tags contains properties.three", 1},
        {"len(properties.tags) == 6", 1},
        {"len(properties.obj) == 2", 1},
        {"len(properties.emptyarr) == 0", 1},
        {"len([1, 2, 3]) == 3", 1},
        {"len([]) == 0", 1},
        {"properties.items[0].sku == \"A1\"", 1},
        {"properties.items[1][\"sku\"] == \"B2\"", 1},
        {"len(properties.items) == 2", 1},
    };
    RUN(cases);

    /* a long list: binary search over the sorted constants */
    char src[4096];
    size_t n = (size_t)snprintf(src, sizeof src, "item_id in [");
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(src + n, sizeof src - n, "%s\"%d\"", i ? ", " : "", 1000 - i * 3);
    snprintf(src + n, sizeof src - n, "]");
    assert_int_equal(tri(src), 0);
    assert_int_equal(xt_set(&H,
                            "{\"type\":\"x\",\"item_id\":\"997\",\"category\":\"1000\","
                            "\"properties\":{\"k\":\"403\"}}",
                            PR),
                     0);
    static const char *const hits[] = {"997", "1000", "403", "406"};
    for (size_t h = 0; h < AT_ARRAY_LEN(hits); h++) {
        char one[4200];
        snprintf(one, sizeof one, "\"%s\" in %s", hits[h], strchr(src, '['));
        assert_int_equal(tri(one), 1);
    }
    char miss[4200];
    snprintf(miss, sizeof miss, "\"404\" in %s", strchr(src, '['));
    assert_int_equal(tri(miss), 0);
    snprintf(miss, sizeof miss, "properties.k in %s", strchr(src, '['));
    assert_int_equal(tri(miss), 1);
    snprintf(miss, sizeof miss, "lower(properties.k) not in %s", strchr(src, '['));
    assert_int_equal(tri(miss), 0);
}

static void test_paths(void **state)
{
    (void)state;
    static const tcase_t cases[] = {
        {"properties[\"my key\"] == \"x\"", 1},
        {"properties.\"my key\" == \"x\"", 1},
        {"properties['my key'] == \"x\"", 1},
        {"properties[\"price\"] == properties.price", 1},
        {"properties.in == \"kw\"", 1}, /* keywords are names after a dot */
        {"properties.obj.b contains 2", 1},
        {"properties.obj[\"b\"] contains 2", 1},
        {"properties.items[0].sku in [\"A1\"]", 1},
        {"context[\"device\"] == \"mobile\"", 1},
        {"context . device == \"mobile\"", 1},
    };
    RUN(cases);
    /* the same path written two ways is one field */
    at_expr_t *e = compile_flags("properties[\"price\"] > 1 && properties.price < 200", 0);
    size_t n;
    const at_expr_field_t *f = at_expr_fields(e, &n);
    assert_int_equal(n, 1);
    assert_string_equal(f[0].path, "properties.price");
    e = compile_flags("properties.\"my key\" == properties.items[1].sku", 0);
    f = at_expr_fields(e, &n);
    assert_int_equal(n, 2);
    assert_string_equal(f[0].path, "properties[\"my key\"]");
    assert_string_equal(f[1].path, "properties.items[1].sku");

    at_expr_step_t st[8];
    char buf[64];
    const char *p = "properties[\"a.b\\\"c\"].items[12].sku";
    assert_int_equal(at_expr_path_split(p, strlen(p), st, 8, buf, sizeof buf), 5);
    assert_true(st[0].len == 10 && memcmp(st[0].s, "properties", 10) == 0);
    assert_true(st[1].len == 5 && memcmp(st[1].s, "a.b\"c", 5) == 0 && st[1].index == -1);
    assert_true(st[3].index == 12 && st[3].s == NULL);
    assert_true(st[4].len == 3 && memcmp(st[4].s, "sku", 3) == 0);
    assert_int_equal(at_expr_path_split(p, strlen(p), st, 4, buf, sizeof buf), AT_ETOOBIG);
    static const char *const bad[] = {"a..b", ".a", "a[", "a[x]", "a[\"x\"", "a.1b", "a]"};
    for (size_t i = 0; i < AT_ARRAY_LEN(bad); i++)
        assert_int_equal(at_expr_path_split(bad[i], strlen(bad[i]), st, 8, buf, sizeof buf),
                         AT_EINVALID);
}

static void test_profile(void **state)
{
    (void)state;
    static const tcase_t cases[] = {
        {"affinity(\"electronics\") > 0.4", 1},
        {"affinity(\"books\") > 0.4", 0},
        {"affinity(\"nope\") == 0", 1},
        {"affinity(\"electronics/phones\") == 0", 1},
        {"affinity(lower(\"ELECTRONICS\")) == 0.7", 1},
        {"affinity(category) == 0", 1},
        {"affinity(properties.nope) > 0", -1},
        {"in_segment(\"high_intent\") && !in_segment(\"big_spender\")", 1},
        {"profile.counters.purchase >= 1", 1},
        {"profile.counters.view_item == 10", 1},
        {"profile.counters[\"view_item\"] > profile.counters.purchase", 1},
        {"profile.first_seen < profile.last_seen", 1},
        {"profile.session.events == 5 && profile.session.pages == 3", 1},
        {"profile.session.start == time(\"2026-04-27T19:00:00Z\")", 1},
        {"profile.traits.age > 40", 1},
        {"profile.traits.plan in [\"gold\", \"platinum\"]", 1},
    };
    RUN(cases);
    assert_true(num("affinity(\"electronics\")") == 0.7);
    /* a host without affinity or segments */
    at_expr_t *e =
        compile_flags("affinity(\"electronics\") > 0.4 || in_segment(\"high_intent\")", 0);
    at_expr_rt_t rt = xt_rt(&H);
    rt.affinity = NULL;
    rt.in_segment = NULL;
    at_val_t v;
    at_expr_eval(e, &rt, &v);
    assert_int_equal(v.type, AT_VAL_MISSING);
    assert_false(at_expr_eval_bool(e, &rt));
}

static void test_folding(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        const char *code; /* expected in the listing */
        unsigned ncode;
    } cases[] = {
        {"1 + 2 * 3 > 6", "k=true", 2},
        {"10m + 30s", "k=630000ms", 2},
        {"lower(\"ABC\")", "k=\"abc\"", 2},
        {"time(\"2026-01-01T00:00:00Z\") + 1d", "k=2026-01-02T00:00:00.000Z", 2},
        {"hour(time(\"2026-01-01T10:00:00Z\"), \"+02:00\")", "k=12", 2},
        {"\"a\" in [\"a\", \"b\"]", "k=true", 2},
        {"false && type == \"x\"", "k=false", 2},
        {"type == \"x\" && false", "k=false", 2},
        {"true || type == \"x\"", "k=true", 2},
        {"true && type == \"x\"", "fk.str", 2},
        {"type == \"x\" || false", "fk.str", 2},
        {"true && properties.flag", "tobool", 3},
        {"properties.price > 2 * 50", "k=100", 2},
        {"len([1, 2, 3])", "k=3", 2},
        {"-(-5m)", "k=300000ms", 2},
        {"!(1 == 1)", "k=false", 2},
        {"exists(profile.counters.x)", "k=true", 2},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(cases); i++) {
        at_expr_t *e = compile_flags(cases[i].src, 0);
        at_buf_t b;
        at_buf_init(&b, 0);
        assert_int_equal(at_expr_disasm(e, &b), 0);
        if (!strstr(b.data, cases[i].code))
            fail_msg("'%s' compiled to\n%s", cases[i].src, b.data);
        char want[32];
        snprintf(want, sizeof want, "; %u instructions", cases[i].ncode);
        if (strncmp(b.data, want, strlen(want)) != 0)
            fail_msg("'%s' compiled to\n%s", cases[i].src, b.data);
        at_buf_deinit(&b);
    }
    /* folded constants are never missing from the field list of what remains */
    size_t n;
    at_expr_fields(compile_flags("false && properties.price > 1", 0), &n);
    assert_int_equal(n, 0);
}

static void test_introspection(void **state)
{
    (void)state;
    at_expr_t *e = compile_flags("type == \"view_item\" && context.device == \"mobile\" && "
                                 "profile.counters.purchase > 0 && type != \"x\"",
                                 0);
    size_t n;
    const at_expr_field_t *f = at_expr_fields(e, &n);
    assert_int_equal(n, 3);
    assert_string_equal(f[0].path, "type");
    assert_int_equal(f[0].type, AT_VAL_STR);
    assert_false(f[0].profile);
    assert_string_equal(f[1].path, "context.device");
    assert_int_equal(f[1].type, AT_VAL_ANY);
    assert_string_equal(f[2].path, "profile.counters.purchase");
    assert_int_equal(f[2].type, AT_VAL_NUM);
    assert_true(f[2].profile);
    assert_int_equal(f[2].slot, xt_field(&H, "profile.counters.purchase", 25, NULL, 0));
    assert_int_equal(at_expr_reads(e), AT_EXPR_READS_EVENT | AT_EXPR_READS_PROFILE);
    assert_true(at_expr_reads_profile(e));
    assert_int_equal(at_expr_type(e), AT_VAL_BOOL);

    e = compile_flags("in_segment(\"big_spender\") || in_segment(\"high_intent\") || "
                      "in_segment(\"big_spender\")",
                      0);
    const int *segs = at_expr_segments(e, &n);
    assert_int_equal(n, 2);
    assert_int_equal(segs[0], 2);
    assert_int_equal(segs[1], 1);
    assert_int_equal(at_expr_reads(e), AT_EXPR_READS_PROFILE | AT_EXPR_READS_SEGMENT);
    at_expr_fields(e, &n);
    assert_int_equal(n, 0);

    e = compile_flags("now - timestamp > 10m", 0);
    assert_int_equal(at_expr_reads(e), AT_EXPR_READS_EVENT | AT_EXPR_READS_NOW);
    assert_false(at_expr_reads_profile(e));
    e = compile_flags("affinity(category) > 0.5", 0);
    assert_int_equal(at_expr_reads(e),
                     AT_EXPR_READS_EVENT | AT_EXPR_READS_PROFILE | AT_EXPR_READS_AFFINITY);
    e = compile_flags("1 + 1", 0);
    assert_int_equal(at_expr_reads(e), 0);
    assert_int_equal(at_expr_type(e), AT_VAL_NUM);
    assert_int_equal(at_expr_type(compile_flags("properties.x", 0)), AT_VAL_ANY);
    assert_int_equal(at_expr_type(compile_flags("[1]", 0)), AT_VAL_LIST);

    /* without a resolver, paths get slots 0, 1, 2... in order of appearance */
    at_expr_err_t err;
    at_expr_t *d;
    const char *src = "category == \"a\" || type == \"b\" || category == \"c\"";
    assert_int_equal(at_expr_compile(src, strlen(src), NULL, &d, &err), 0);
    f = at_expr_fields(d, &n);
    assert_int_equal(n, 2);
    assert_int_equal(f[0].slot, 0);
    assert_int_equal(f[1].slot, 1);
    at_expr_free(d);
}

static void test_lists_as_values(void **state)
{
    (void)state;
    at_val_t v = val("[\"b\", \"a\", \"b\"]");
    assert_int_equal(v.type, AT_VAL_LIST);
    assert_int_equal(v.len, 3); /* in order, with repeats */
    assert_int_equal(v.u.list[0].type, AT_VAL_STR);
    assert_memory_equal(v.u.list[0].u.s, "b", 1);
    assert_memory_equal(v.u.list[1].u.s, "a", 1);
    v = val("[1m, 2m]");
    assert_int_equal(v.u.list[1].u.ms, 120000);
    v = val("\"sale\"");
    assert_int_equal(v.type, AT_VAL_STR);
}

static void test_determinism(void **state)
{
    (void)state;
    static const char *const srcs[] = {
        "hour(timestamp, context.timezone) >= 18 && properties.tags contains \"sale\"",
        "now - profile.session.start > 30m || affinity(category) > 0.1",
        "lower(properties.upper) in [\"mixed\", \"x\"]",
        "properties.price * 3 % 7",
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(srcs); i++) {
        at_expr_t *e = compile_flags(srcs[i], 0);
        at_expr_rt_t rt = xt_rt(&H);
        at_val_t a, b;
        at_expr_eval(e, &rt, &a);
        for (int k = 0; k < 1000; k++) {
            at_expr_eval(e, &rt, &b);
            assert_int_equal(a.type, b.type);
            assert_memory_equal(&a.u, &b.u, sizeof a.u);
        }
    }
    /* now comes from the host, never from the clock */
    at_expr_t *e = compile_flags("now == time(\"2001-09-09T01:46:40Z\")", 0);
    at_expr_rt_t rt = xt_rt(&H);
    rt.now_ms = 1000000000000LL;
    assert_true(at_expr_eval_bool(e, &rt));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_design_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_valued_logic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_date_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_zones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introspection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists_as_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
