/* test_keyed.c - keyed state: find/get/delete with tombstones until clean,
 * values, the dirty set, timers in (deadline, key) order whatever the
 * insertion history, and growth past many keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "at_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_get_find_delete(void **state)
{
    (void)state;
    at_keyed_t *t = at_keyed_new();
    bool created;
    uint32_t a = at_keyed_get(t, "u:1", 3, &created);
    assert_true(created);
    assert_int_equal(at_keyed_get(t, "u:1", 3, &created), a);
    assert_false(created);
    assert_int_equal(at_keyed_find(t, "u:2", 3), AT_KEYED_NONE);
    at_keyed_set(t, a, "hello", 5);
    size_t n;
    const uint8_t *v = at_keyed_value(t, a, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(v, "hello", 5);
    at_keyed_delete(t, a);
    assert_int_equal(at_keyed_find(t, "u:1", 3), AT_KEYED_NONE);
    assert_int_equal(at_keyed_count(t), 0);
    /* a tombstone until clean: reviving it gives the same slot, empty */
    assert_int_equal(at_keyed_get(t, "u:1", 3, &created), a);
    assert_true(created);
    v = at_keyed_value(t, a, &n);
    assert_int_equal(n, 0);
    at_keyed_delete(t, a);
    at_keyed_clean(t);
    /* freed and reused */
    uint32_t b = at_keyed_get(t, "u:9", 3, NULL);
    assert_int_equal(b, a);
    at_keyed_free(t);
}

static void test_dirty(void **state)
{
    (void)state;
    at_keyed_t *t = at_keyed_new();
    uint32_t a = at_keyed_get(t, "a", 1, NULL), b = at_keyed_get(t, "b", 1, NULL);
    const uint32_t *d;
    assert_int_equal(at_keyed_dirty(t, &d), 2);
    at_keyed_clean(t);
    assert_int_equal(at_keyed_dirty(t, &d), 0);
    at_keyed_set(t, b, "x", 1);
    at_keyed_set(t, b, "yy", 2);
    at_keyed_delete(t, a);
    assert_int_equal(at_keyed_dirty(t, &d), 2);
    assert_int_equal(d[0], b);
    assert_int_equal(d[1], a);
    assert_true(at_keyed_deleted(t, a));
    at_keyed_free(t);
}

/* Timers pop in (deadline, key) order, however they were set. */
static void test_timer_order(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        at_keyed_t *t = at_keyed_new();
        srand((unsigned)round);
        char key[16];
        for (int i = 0; i < 300; i++) {
            int k = rand() % 200;
            snprintf(key, sizeof key, "k%03d", k);
            uint32_t s = at_keyed_get(t, key, strlen(key), NULL);
            int64_t dl = rand() % 7 == 0 ? AT_TIMER_NONE : (int64_t)(rand() % 50);
            at_keyed_timer_set(t, s, dl);
        }
        int64_t prev = -1;
        char prevkey[16] = "";
        size_t popped = 0, expect = at_keyed_timers(t);
        int64_t dl;
        uint32_t s;
        while ((s = at_keyed_timer_first(t, &dl)) != AT_KEYED_NONE) {
            size_t kl;
            const char *k = at_keyed_key(t, s, &kl);
            char cur[16];
            snprintf(cur, sizeof cur, "%.*s", (int)kl, k);
            assert_true(dl > prev || (dl == prev && strcmp(prevkey, cur) < 0));
            assert_int_equal(at_keyed_timer_get(t, s), dl);
            prev = dl;
            snprintf(prevkey, sizeof prevkey, "%s", cur);
            at_keyed_timer_set(t, s, AT_TIMER_NONE);
            popped++;
        }
        assert_int_equal(popped, expect);
        at_keyed_free(t);
    }
}

static void test_many(void **state)
{
    (void)state;
    at_keyed_t *t = at_keyed_new();
    char key[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "u:%d", i);
        uint32_t s = at_keyed_get(t, key, strlen(key), NULL);
        at_keyed_set(t, s, &i, sizeof i);
    }
    assert_int_equal(at_keyed_count(t), 100000);
    for (int i = 0; i < 100000; i += 2) {
        snprintf(key, sizeof key, "u:%d", i);
        at_keyed_delete(t, at_keyed_find(t, key, strlen(key)));
    }
    at_keyed_clean(t);
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "u:%d", i);
        uint32_t s = at_keyed_find(t, key, strlen(key));
        if (i % 2 == 0) {
            assert_int_equal(s, AT_KEYED_NONE);
        } else {
            size_t n;
            const uint8_t *v = at_keyed_value(t, s, &n);
            int x;
            memcpy(&x, v, sizeof x);
            assert_int_equal(x, i);
        }
    }
    uint32_t pos = 0, n = 0;
    while (at_keyed_next(t, &pos) != AT_KEYED_NONE)
        n++;
    assert_int_equal(n, 50000);
    at_keyed_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_find_delete),
        cmocka_unit_test(test_dirty),
        cmocka_unit_test(test_timer_order),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
