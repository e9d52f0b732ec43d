/* test_arena.c - arena alignment, large allocations, reset and reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "at_core.h"

static void test_alignment_and_disjoint(void **state)
{
    (void)state;
    at_arena_t a;
    at_arena_init(&a, 1024);
    unsigned char *ptrs[500];
    size_t sizes[500];
    for (int i = 0; i < 500; i++) {
        sizes[i] = (size_t)(i * 7 % 97);
        ptrs[i] = at_arena_alloc(&a, sizes[i]);
        assert_non_null(ptrs[i]);
        assert_int_equal((uintptr_t)ptrs[i] % 16, 0);
        memset(ptrs[i], i & 0xff, sizes[i]);
    }
    /* nothing written later overlapped an earlier allocation */
    for (int i = 0; i < 500; i++) {
        for (size_t k = 0; k < sizes[i]; k++)
            assert_int_equal(ptrs[i][k], i & 0xff);
    }
    at_arena_deinit(&a);
    assert_null(a.head);
}

static void test_large_allocations(void **state)
{
    (void)state;
    at_arena_t a;
    at_arena_init(&a, 256);
    char *small1 = at_arena_alloc(&a, 16);
    char *big = at_arena_alloc(&a, 100000);
    char *small2 = at_arena_alloc(&a, 16);
    assert_int_equal((uintptr_t)big % 16, 0);
    memset(big, 'B', 100000);
    memset(small1, 'a', 16);
    memset(small2, 'b', 16);
    /* a big block does not waste the current chunk: small ones stay together */
    assert_ptr_equal(small2, small1 + 16);
    assert_int_equal(big[0], 'B');
    assert_int_equal(big[99999], 'B');
    at_arena_deinit(&a);
}

static void test_reset_reuses(void **state)
{
    (void)state;
    at_arena_t a;
    at_arena_init(&a, 4096);
    void *first = NULL;
    for (int round = 0; round < 5; round++) {
        void *p = at_arena_alloc(&a, 100);
        if (round == 0)
            first = p;
        else
            assert_ptr_equal(p, first); /* the kept chunk serves again */
        for (int i = 0; i < 200; i++)
            memset(at_arena_alloc(&a, 300), 1, 300);
        at_arena_alloc(&a, 1 << 20);
        at_arena_reset(&a);
        assert_non_null(a.head);
    }
    at_arena_deinit(&a);
}

static void test_strndup(void **state)
{
    (void)state;
    at_arena_t a;
    at_arena_init(&a, 0);
    char *s = at_arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    char *e = at_arena_strndup(&a, "", 0);
    assert_string_equal(e, "");
    char *z = at_arena_alloc(&a, 0);
    assert_non_null(z);
    assert_true(z != e);
    at_arena_deinit(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment_and_disjoint),
        cmocka_unit_test(test_large_allocations),
        cmocka_unit_test(test_reset_reuses),
        cmocka_unit_test(test_strndup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
