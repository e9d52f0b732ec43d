/* test_sdict.c - the string dictionary: ids in first-intern order, the
 * same id for the same bytes, the entry and byte limits, the dirty range
 * checkpoints save, and restore by id in any order with its refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "at_stream.h"

#include <stdio.h>
#include <string.h>

static void test_intern_get(void **state)
{
    (void)state;
    at_sdict_t *d = at_sdict_new(100, 1 << 20);
    assert_int_equal(at_sdict_intern(d, "view_item", 9), 0);
    assert_int_equal(at_sdict_intern(d, "books", 5), 1);
    assert_int_equal(at_sdict_intern(d, "view_item", 9), 0);
    assert_int_equal(at_sdict_intern(d, "view", 4), 2); /* a prefix is another string */
    assert_int_equal(at_sdict_intern(d, "", 0), AT_SDICT_NONE);
    const char *s;
    uint32_t n;
    assert_true(at_sdict_get(d, 1, &s, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(s, "books", 5);
    assert_false(at_sdict_get(d, 3, &s, &n));
    assert_int_equal(at_sdict_count(d), 3);
    at_sdict_free(d);
}

static void test_many_and_limits(void **state)
{
    (void)state;
    at_sdict_t *d = at_sdict_new(5000, 1 << 20);
    char b[32];
    for (int i = 0; i < 6000; i++) {
        int n = snprintf(b, sizeof b, "category/%d", i);
        uint32_t id = at_sdict_intern(d, b, (size_t)n);
        assert_int_equal(id, i < 5000 ? (uint32_t)i : AT_SDICT_NONE);
    }
    /* full: known strings still have their ids, and the index survived growth */
    for (int i = 0; i < 5000; i += 7) {
        int n = snprintf(b, sizeof b, "category/%d", i);
        assert_int_equal(at_sdict_intern(d, b, (size_t)n), (uint32_t)i);
    }
    at_sdict_free(d);
    d = at_sdict_new(1000, 200); /* the byte limit */
    uint32_t last = 0;
    int i = 0;
    for (; i < 100; i++) {
        int n = snprintf(b, sizeof b, "a-long-category-name-%d", i);
        last = at_sdict_intern(d, b, (size_t)n);
        if (last == AT_SDICT_NONE)
            break;
    }
    assert_true(i > 0 && i < 10);
    assert_true(at_sdict_bytes(d) > 0);
    at_sdict_free(d);
}

static void test_dirty_and_restore(void **state)
{
    (void)state;
    at_sdict_t *d = at_sdict_new(100, 1 << 20);
    at_sdict_intern(d, "a", 1);
    at_sdict_intern(d, "b", 1);
    uint32_t from;
    at_sdict_dirty(d, &from);
    assert_int_equal(from, 0);
    at_sdict_clean(d);
    at_sdict_intern(d, "c", 1);
    at_sdict_intern(d, "a", 1);
    at_sdict_dirty(d, &from);
    assert_int_equal(from, 2);
    assert_int_equal(at_sdict_count(d), 3);
    at_sdict_free(d);

    /* restore in any order; then new strings go after the largest id */
    d = at_sdict_new(100, 1 << 20);
    assert_int_equal(at_sdict_put(d, 2, "c", 1), 0);
    assert_int_equal(at_sdict_put(d, 0, "a", 1), 0);
    assert_int_equal(at_sdict_put(d, 1, "b", 1), 0);
    assert_int_equal(at_sdict_put(d, 1, "b", 1), 0);           /* the same again */
    assert_int_equal(at_sdict_put(d, 1, "x", 1), AT_ECORRUPT); /* id taken */
    assert_int_equal(at_sdict_put(d, 5, "a", 1), AT_ECORRUPT); /* string has an id */
    assert_int_equal(at_sdict_put(d, 6, "", 0), AT_ECORRUPT);
    at_sdict_dirty(d, &from);
    assert_int_equal(from, 3); /* restored entries are saved already */
    assert_int_equal(at_sdict_intern(d, "b", 1), 1);
    assert_int_equal(at_sdict_intern(d, "d", 1), 3);
    at_sdict_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern_get),
        cmocka_unit_test(test_many_and_limits),
        cmocka_unit_test(test_dirty_and_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
