/* test_policy.c - backoff bounds (full jitter, capped) and the breaker's
 * transitions: closed -> open after N failures -> half-open after the
 * cool-down with one probe -> closed, or open again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "at_sinks.h"

static void test_backoff_bounds(void **state)
{
    (void)state;
    uint64_t rng = 12345;
    for (int attempt = 1; attempt <= 20; attempt++) {
        int64_t cap = 1000;
        for (int i = 1; i < attempt && cap < 300000; i++)
            cap *= 2;
        if (cap > 300000)
            cap = 300000;
        int64_t lo = INT64_MAX, hi = 0;
        for (int k = 0; k < 2000; k++) {
            int64_t d = at_sink_backoff_ms(attempt, 1000, 300000, &rng);
            assert_true(d >= 0 && d <= cap);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* jitter spreads over the whole range */
        assert_true(lo < cap / 10 + 1);
        assert_true(hi > cap - cap / 10 - 1);
    }
}

static void test_backoff_no_overflow(void **state)
{
    (void)state;
    uint64_t rng = 1;
    assert_true(at_sink_backoff_ms(1000, 1000, 300000, &rng) <= 300000);
    assert_true(at_sink_backoff_ms(0, 5, 10, &rng) <= 5);
}

static void test_breaker_opens_and_probes(void **state)
{
    (void)state;
    at_sink_breaker_t b;
    at_sink_breaker_init(&b, 3, 1000);
    for (int i = 0; i < 2; i++) {
        assert_true(at_sink_breaker_allow(&b, 0));
        at_sink_breaker_result(&b, false, 0);
        assert_int_equal(b.state, AT_BREAKER_CLOSED);
    }
    at_sink_breaker_result(&b, false, 10);
    assert_int_equal(b.state, AT_BREAKER_OPEN);
    assert_int_equal(b.opened, 1);
    assert_false(at_sink_breaker_allow(&b, 500));
    assert_false(at_sink_breaker_allow(&b, 1009));
    /* the cool-down is over: one probe, and only one */
    assert_true(at_sink_breaker_allow(&b, 1010));
    assert_int_equal(b.state, AT_BREAKER_HALF_OPEN);
    assert_false(at_sink_breaker_allow(&b, 1011));
    /* the probe fails: open again for a whole cool-down */
    at_sink_breaker_result(&b, false, 1020);
    assert_int_equal(b.state, AT_BREAKER_OPEN);
    assert_int_equal(b.opened, 2);
    assert_false(at_sink_breaker_allow(&b, 2019));
    assert_true(at_sink_breaker_allow(&b, 2020));
    /* the probe succeeds: closed, failures forgotten */
    at_sink_breaker_result(&b, true, 2030);
    assert_int_equal(b.state, AT_BREAKER_CLOSED);
    assert_true(at_sink_breaker_allow(&b, 2031));
    assert_true(at_sink_breaker_allow(&b, 2031));
}

static void test_breaker_success_resets_count(void **state)
{
    (void)state;
    at_sink_breaker_t b;
    at_sink_breaker_init(&b, 2, 100);
    at_sink_breaker_result(&b, false, 0);
    at_sink_breaker_result(&b, true, 0);
    at_sink_breaker_result(&b, false, 0);
    assert_int_equal(b.state, AT_BREAKER_CLOSED); /* not consecutive */
    at_sink_breaker_result(&b, false, 0);
    assert_int_equal(b.state, AT_BREAKER_OPEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_backoff_no_overflow),
        cmocka_unit_test(test_breaker_opens_and_probes),
        cmocka_unit_test(test_breaker_success_resets_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
