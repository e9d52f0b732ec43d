/* test_hash.c - murmur2 against Kafka's own test vectors, the partitioner,
 * and XXH3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "at_core.h"

static int32_t murmur_s(const char *s)
{
    return (int32_t)at_murmur2(s, strlen(s));
}

/* Vectors from Kafka's UtilsTest.testMurmur2 (signed Java ints). */
static void test_murmur2_kafka_vectors(void **state)
{
    (void)state;
    assert_int_equal(murmur_s("21"), -973932308);
    assert_int_equal(murmur_s("foobar"), -790332482);
    assert_int_equal(murmur_s("a-little-bit-long-string"), -985981536);
    assert_int_equal(murmur_s("a-little-bit-longer-string"), -1486304829);
    assert_int_equal(murmur_s("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
    assert_int_equal(murmur_s("abc"), 479470107);
}

/* Every tail length (0..3 bytes past a multiple of 4) takes its own path. */
static void test_murmur2_tails_differ(void **state)
{
    (void)state;
    const char *s = "abcdefgh";
    uint32_t seen[9];
    for (size_t n = 0; n <= 8; n++) {
        seen[n] = at_murmur2(s, n);
        for (size_t k = 0; k < n; k++)
            assert_true(seen[k] != seen[n]);
    }
    /* bytes >= 0x80 are taken unsigned, as Java's & 0xff does */
    const unsigned char hi[] = {0xff, 0x80, 0xfe};
    const unsigned char lo[] = {0x7f, 0x00, 0x7e};
    assert_true(at_murmur2(hi, 3) != at_murmur2(lo, 3));
}

static void test_partition_of(void **state)
{
    (void)state;
    /* (murmur2 & 0x7fffffff) % n, computed from the vectors above */
    assert_int_equal(at_partition_of("21", 2, 16), (int)((uint32_t)-973932308 & 0x7fffffff) % 16);
    assert_int_equal(at_partition_of("abc", 3, 16), 479470107 % 16);
    assert_int_equal(at_partition_of("foobar", 6, 7),
                     (int)(((uint32_t)-790332482 & 0x7fffffffU) % 7));
    assert_int_equal(at_partition_of("anything", 8, 1), 0);
    for (int i = 0; i < 1000; i++) {
        char key[16];
        int n = snprintf(key, sizeof key, "u:%d", i);
        int p = at_partition_of(key, (size_t)n, 13);
        assert_true(p >= 0 && p < 13);
    }
}

static void test_hash64(void **state)
{
    (void)state;
    /* XXH3_64bits of the empty input, from the xxHash reference */
    assert_true(at_hash64("", 0) == 0x2D06800538D394C2ULL);
    assert_true(at_hash64("a", 1) != at_hash64("b", 1));
    assert_true(at_hash64("hello", 5) == at_hash64("hello world", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_kafka_vectors),
        cmocka_unit_test(test_murmur2_tails_differ),
        cmocka_unit_test(test_partition_of),
        cmocka_unit_test(test_hash64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
