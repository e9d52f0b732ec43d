/* test_load_hist.c - the log-linear latency histogram of `attune load`:
 * bucket layout, precision, and percentiles on known inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>

#include "../../../src/cli/load_hist.c"

static at_load_hist_t *hist_new(void)
{
    at_load_hist_t *h = malloc(sizeof(*h));
    at_load_hist_init(h);
    return h;
}

static void assert_within(double got, double want, double rel)
{
    if (fabs(got - want) > rel * want)
        fail_msg("got %.1f, want %.1f within %.2f%%", got, want, rel * 100);
}

static void test_buckets_cover_values_with_bounded_width(void **state)
{
    (void)state;
    /* Walk the whole range: every value falls in a bucket whose range holds
     * it, buckets are ordered, and a bucket is at most 1/128 of its value. */
    size_t prev = 0;
    for (uint64_t v = 0; v < (UINT64_C(1) << 49); v = v < 1000 ? v + 1 : v + v / 97) {
        size_t idx = at_load_hist_index(v);
        assert_true(idx < AT_LOAD_HIST_BUCKETS);
        assert_true(idx >= prev);
        prev = idx;
        uint64_t lo, hi;
        at_load_hist_range(idx, &lo, &hi);
        assert_true(lo <= v && v <= hi);
        assert_true((double)(hi - lo) <= (double)lo / 128.0);
    }
    /* Small values are exact; the last bucket takes what is too large. */
    assert_int_equal(at_load_hist_index(255), 255);
    assert_int_equal(at_load_hist_index(UINT64_MAX), AT_LOAD_HIST_BUCKETS - 1);
    uint64_t lo, hi;
    at_load_hist_range(AT_LOAD_HIST_BUCKETS - 1, &lo, &hi);
    assert_int_equal(hi, (UINT64_C(1) << AT_LOAD_HIST_MAX_BITS) - 1);
}

static void test_empty(void **state)
{
    (void)state;
    at_load_hist_t *h = hist_new();
    assert_int_equal(at_load_hist_percentile(h, 50), 0);
    assert_int_equal(at_load_hist_percentile(h, 100), 0);
    assert_true(at_load_hist_mean(h) == 0.0);
    free(h);
}

static void test_small_values_are_exact(void **state)
{
    (void)state;
    at_load_hist_t *h = hist_new();
    for (uint64_t v = 1; v <= 200; v++)
        at_load_hist_record(h, v);
    assert_int_equal(at_load_hist_percentile(h, 50), 100);
    assert_int_equal(at_load_hist_percentile(h, 90), 180);
    assert_int_equal(at_load_hist_percentile(h, 99), 198);
    assert_int_equal(at_load_hist_percentile(h, 0), 1);
    assert_int_equal(at_load_hist_percentile(h, 100), 200);
    assert_within(at_load_hist_mean(h), 100.5, 1e-9);
    free(h);
}

static void test_uniform_percentiles_within_one_percent(void **state)
{
    (void)state;
    at_load_hist_t *h = hist_new();
    /* 1 ms .. 1000 ms in 1 us steps, shuffled order does not matter */
    for (uint64_t v = 1000000; v <= 1000000000; v += 1000)
        at_load_hist_record(h, v);
    assert_int_equal(h->total, 999001);
    const double ps[] = {50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        double want = 1e6 + ps[i] / 100.0 * (1e9 - 1e6);
        assert_within((double)at_load_hist_percentile(h, ps[i]), want, 0.01);
    }
    assert_int_equal(at_load_hist_percentile(h, 100), 1000000000);
    assert_int_equal(h->max, 1000000000);
    assert_int_equal(h->min, 1000000);
    free(h);
}

static void test_bimodal_tail(void **state)
{
    (void)state;
    at_load_hist_t *h = hist_new();
    /* 990 answers at 1.5 ms, 9 at 40 ms, 1 stall of 2 s */
    for (int i = 0; i < 990; i++)
        at_load_hist_record(h, 1500000);
    for (int i = 0; i < 9; i++)
        at_load_hist_record(h, 40000000);
    at_load_hist_record(h, 2000000000);
    assert_within((double)at_load_hist_percentile(h, 50), 1.5e6, 0.01);
    assert_within((double)at_load_hist_percentile(h, 99), 1.5e6, 0.01);
    assert_within((double)at_load_hist_percentile(h, 99.5), 4e7, 0.01);
    assert_within((double)at_load_hist_percentile(h, 99.9), 4e7, 0.01);
    assert_within((double)at_load_hist_percentile(h, 99.99), 2e9, 0.01);
    assert_int_equal(h->max, 2000000000);
    free(h);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_random_values_against_sorted_truth(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint64_t *vals = malloc(N * sizeof(uint64_t));
    at_load_hist_t *h = hist_new();
    uint64_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        /* log-uniform from 10 us to 10 s */
        double u = (double)(x >> 11) / 9007199254740992.0;
        vals[i] = (uint64_t)exp(log(1e4) + u * (log(1e10) - log(1e4)));
        at_load_hist_record(h, vals[i]);
    }
    qsort(vals, N, sizeof(uint64_t), cmp_u64);
    const double ps[] = {10, 50, 75, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        size_t rank = (size_t)ceil(ps[i] / 100.0 * N);
        assert_within((double)at_load_hist_percentile(h, ps[i]), (double)vals[rank - 1], 0.01);
    }
    free(vals);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_cover_values_with_bounded_width),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_small_values_are_exact),
        cmocka_unit_test(test_uniform_percentiles_within_one_percent),
        cmocka_unit_test(test_bimodal_tail),
        cmocka_unit_test(test_random_values_against_sorted_truth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
