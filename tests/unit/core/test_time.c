/* test_time.c - RFC 3339 parsing and formatting, calendar edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "at_core.h"

static int parse(const char *s, int64_t *ms)
{
    return at_time_parse_rfc3339(s, strlen(s), ms);
}

static int64_t parse_ok(const char *s)
{
    int64_t ms = -12345;
    int rc = parse(s, &ms);
    if (rc != 0)
        fail_msg("expected %s to parse", s);
    return ms;
}

static void test_parse_vectors(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_ok("1970-01-01T00:00:01.5Z"), 1500);
    assert_int_equal(parse_ok("2026-04-27T14:35:00.123+02:00"), 1777293300123LL);
    assert_int_equal(parse_ok("2026-04-27T12:35:00.123Z"), 1777293300123LL);
    assert_int_equal(parse_ok("2026-04-27t12:35:00.123z"), 1777293300123LL);
    assert_int_equal(parse_ok("2026-04-27 12:35:00.123Z"), 1777293300123LL);
    assert_int_equal(parse_ok("2026-04-27T08:05:00.123-04:30"), 1777293300123LL);
    /* fractions finer than ms are truncated, not rounded */
    assert_int_equal(parse_ok("2026-04-27T12:35:00.123999999Z"), 1777293300123LL);
    assert_int_equal(parse_ok("2026-04-27T12:35:00.12Z"), 1777293300120LL);
    assert_int_equal(parse_ok("1969-12-31T23:59:59.999Z"), -1);
    assert_int_equal(parse_ok("0000-01-01T00:00:00Z"), -62167219200000LL);
    assert_int_equal(parse_ok("9999-12-31T23:59:59.999Z"), 253402300799999LL);
    /* a leap second counts as the next second */
    assert_int_equal(parse_ok("2016-12-31T23:59:60Z"), parse_ok("2017-01-01T00:00:00Z"));
}

static void test_leap_years(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(parse("2024-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(parse("2000-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(parse("2023-02-29T00:00:00Z", &ms), AT_EPARSE);
    assert_int_equal(parse("1900-02-29T00:00:00Z", &ms), AT_EPARSE);
    assert_int_equal(parse("2100-02-29T00:00:00Z", &ms), AT_EPARSE);
    assert_int_equal(parse_ok("2024-03-01T00:00:00Z") - parse_ok("2024-02-28T00:00:00Z"),
                     2 * 86400000LL);
    assert_int_equal(parse_ok("2023-03-01T00:00:00Z") - parse_ok("2023-02-28T00:00:00Z"),
                     86400000LL);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "2026-04-27",
        "2026-04-27T14:35Z",    /* seconds required */
        "2026-04-27T14:35:00",  /* offset required */
        "2026-02-30T00:00:00Z", /* no Feb 30 */
        "2026-04-31T00:00:00Z", /* April has 30 days */
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-01T24:00:00Z", /* hour 24 */
        "2026-01-01T23:60:00Z",
        "2026-01-01T23:59:61Z",
        "2026-01-01T00:00:00.Z",    /* empty fraction */
        "2026-01-01T00:00:00+0200", /* offset needs a colon */
        "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00+02:60",
        "2026-01-01X00:00:00Z",
        "2026-1-01T00:00:00Z",
        "26-01-01T00:00:00Z",
        "2026-01-01T00:00:00ZZ", /* trailing bytes */
        "2026-01-01T00:00:00Z ",
        "+2026-01-01T00:00:00Z",
        "2026-01-01T0a:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 777;
        if (parse(bad[i], &ms) != AT_EPARSE)
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(ms, 777);
    }
}

/* n bounds the input: a valid prefix is judged alone, nothing past n read. */
static void test_parse_length(void **state)
{
    (void)state;
    const char *s = "2026-04-27T12:35:00Zgarbage";
    int64_t ms;
    assert_int_equal(at_time_parse_rfc3339(s, 20, &ms), 0);
    assert_int_equal(ms, 1777293300000LL);
    assert_int_equal(at_time_parse_rfc3339(s, 19, &ms), AT_EPARSE);
    assert_int_equal(at_time_parse_rfc3339(s, strlen(s), &ms), AT_EPARSE);
}

static void test_format(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(at_time_format_rfc3339(0, out), 24);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    at_time_format_rfc3339(1777293300123LL, out);
    assert_string_equal(out, "2026-04-27T12:35:00.123Z");
    at_time_format_rfc3339(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    at_time_format_rfc3339(951782400000LL, out);
    assert_string_equal(out, "2000-02-29T00:00:00.000Z");
    at_time_format_rfc3339(253402300799999LL, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
}

/* Formatting then parsing gives the same instant, and both agree with the
 * C library's gmtime_r over a wide range of days. */
static void test_round_trip(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t ms = (int64_t)(x % 253402300800000ULL) - 62167219200000LL;
        char out[32];
        int n = at_time_format_rfc3339(ms, out);
        int64_t back;
        assert_int_equal(at_time_parse_rfc3339(out, (size_t)n, &back), 0);
        assert_int_equal(back, ms);
        if (ms >= 0 && i % 10 == 0) {
            time_t t = (time_t)(ms / 1000);
            struct tm tm;
            gmtime_r(&t, &tm);
            char want[80];
            snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
            assert_memory_equal(out, want, 19);
        }
    }
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t now = at_time_now_ms();
    assert_true(now > 1700000000000LL);
    int64_t a = at_time_mono_ns();
    int64_t b = at_time_mono_ns();
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_vectors), cmocka_unit_test(test_leap_years),
        cmocka_unit_test(test_parse_rejects), cmocka_unit_test(test_parse_length),
        cmocka_unit_test(test_format),        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
