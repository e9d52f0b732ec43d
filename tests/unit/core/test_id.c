/* test_id.c - UUIDv7 ids: shape, strict order within one ms, a clock that
 * goes back, and order and uniqueness across threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "at_core.h"

static void assert_shape(const char *id)
{
    assert_int_equal(strlen(id), AT_ID_LEN);
    for (int i = 0; i < AT_ID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(id[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", id[i]));
    }
    assert_int_equal(id[14], '7');           /* version */
    assert_non_null(strchr("89ab", id[19])); /* variant 10xx */
}

static void test_shape_and_timestamp(void **state)
{
    (void)state;
    char id[AT_ID_LEN + 1];
    int64_t ms = 0x0123456789abLL;
    at_id_new(id, ms);
    assert_shape(id);
    assert_memory_equal(id, "01234567-89ab-7", 15);
}

static void test_strictly_increasing_same_ms(void **state)
{
    (void)state;
    char prev[AT_ID_LEN + 1], cur[AT_ID_LEN + 1];
    int64_t ms = 1777293300123LL + 1000000;
    at_id_new(prev, ms);
    for (int i = 0; i < 100000; i++) {
        at_id_new(cur, ms);
        assert_shape(cur);
        assert_true(strcmp(prev, cur) < 0);
        memcpy(prev, cur, sizeof cur);
    }
    /* a clock that goes back still yields larger ids */
    at_id_new(cur, ms - 5000);
    assert_true(strcmp(prev, cur) < 0);
    memcpy(prev, cur, sizeof cur);
    /* a later ms starts afresh with that timestamp */
    at_id_new(cur, ms + 10);
    assert_true(strcmp(prev, cur) < 0);
}

#define NTHREADS 8
#define PER_THREAD 20000

static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
static char (*ordered)[AT_ID_LEN + 1];
static size_t nordered;
static char (*all)[AT_ID_LEN + 1];

static void *worker(void *arg)
{
    size_t t = (size_t)(uintptr_t)arg;
    int64_t base = at_time_now_ms();
    for (size_t i = 0; i < PER_THREAD; i++) {
        /* threads disagree slightly about the time, as real ones do */
        int64_t now = base + (int64_t)(i / 1000) - (int64_t)t % 3;
        char *mine = all[t * PER_THREAD + i];
        at_id_new(mine, now);
        if (i > 0)
            assert_true(strcmp(all[t * PER_THREAD + i - 1], mine) < 0);
        if (i % 10 == 0) {
            /* taken under one lock: the global sequence must be sorted */
            pthread_mutex_lock(&order_lock);
            at_id_new(ordered[nordered++], now);
            pthread_mutex_unlock(&order_lock);
        }
    }
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_threads(void **state)
{
    (void)state;
    all = calloc(NTHREADS * PER_THREAD, sizeof *all);
    ordered = calloc(NTHREADS * PER_THREAD / 10, sizeof *ordered);
    nordered = 0;
    pthread_t th[NTHREADS];
    for (size_t t = 0; t < NTHREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t), 0);
    for (size_t t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    for (size_t i = 1; i < nordered; i++)
        assert_true(strcmp(ordered[i - 1], ordered[i]) < 0);
    qsort(all, NTHREADS * PER_THREAD, sizeof *all, cmp_id);
    for (size_t i = 1; i < NTHREADS * PER_THREAD; i++)
        assert_true(strcmp(all[i - 1], all[i]) != 0);
    free(all);
    free(ordered);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_and_timestamp),
        cmocka_unit_test(test_strictly_increasing_same_ms),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
