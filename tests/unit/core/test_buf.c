/* test_buf.c - the capped buffer: growth, caps, NUL termination, JSON
 * string escaping, and steal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "at_core.h"

static void test_empty_is_string(void **state)
{
    (void)state;
    at_buf_t b;
    at_buf_init(&b, 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    at_buf_reset(&b);
    assert_string_equal(b.data, "");
    at_buf_deinit(&b);
    assert_string_equal(b.data, "");
}

static void test_append_grows(void **state)
{
    (void)state;
    at_buf_t b;
    at_buf_init(&b, 0);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(at_buf_putc(&b, (char)('a' + i % 26)), 0);
    assert_int_equal(b.len, 10000);
    assert_int_equal(b.data[10000], '\0');
    assert_int_equal(b.data[27], 'b');
    assert_true(b.cap > b.len);
    at_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(at_buf_puts(&b, "xyz"), 0);
    assert_string_equal(b.data, "xyz");
    assert_int_equal(at_buf_append(&b, "a\0b", 3), 0);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "xyza\0b", 7);
    at_buf_deinit(&b);
}

static void test_cap(void **state)
{
    (void)state;
    at_buf_t b;
    at_buf_init(&b, 8);
    assert_int_equal(at_buf_puts(&b, "12345"), 0);
    assert_int_equal(at_buf_puts(&b, "6789"), AT_ETOOBIG);
    assert_string_equal(b.data, "12345"); /* unchanged on failure */
    assert_int_equal(at_buf_puts(&b, "678"), 0);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(at_buf_putc(&b, 'x'), AT_ETOOBIG);
    assert_int_equal(at_buf_printf(&b, "%d", 1), AT_ETOOBIG);
    assert_int_equal(at_buf_i64(&b, 1), AT_ETOOBIG);
    assert_int_equal(at_buf_json_str(&b, "", 0), AT_ETOOBIG);
    assert_int_equal(at_buf_reserve(&b, 1), AT_ETOOBIG);
    assert_int_equal(at_buf_reserve(&b, SIZE_MAX), AT_ETOOBIG);
    assert_string_equal(b.data, "12345678");
    assert_true(b.cap <= 9);
    at_buf_deinit(&b);
}

static void test_printf(void **state)
{
    (void)state;
    at_buf_t b;
    at_buf_init(&b, 0);
    assert_int_equal(at_buf_printf(&b, "%s=%d", "k", 42), 0);
    assert_string_equal(b.data, "k=42");
    char big[3000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(at_buf_printf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 4 + 2 + 2999);
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(at_buf_i64(&b, INT64_MIN), 0);
    assert_string_equal(b.data + 4 + 2 + 2999, "-9223372036854775808");
    at_buf_deinit(&b);

    /* a printf that would pass the cap fails and leaves b as it was */
    at_buf_init(&b, 10);
    assert_int_equal(at_buf_printf(&b, "%s", "abc"), 0);
    assert_int_equal(at_buf_printf(&b, "%s", "defghijk"), AT_ETOOBIG);
    assert_string_equal(b.data, "abc");
    assert_int_equal(at_buf_printf(&b, "%s", "defghij"), 0);
    assert_string_equal(b.data, "abcdefghij");
    at_buf_deinit(&b);
}

static void check_json(const char *in, size_t n, const char *want)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    assert_int_equal(at_buf_json_str(&b, in, n), 0);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    at_buf_deinit(&b);
}

static void test_json_escapes(void **state)
{
    (void)state;
    check_json("", 0, "\"\"");
    check_json("plain", 5, "\"plain\"");
    check_json("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
    check_json("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
    check_json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
    check_json("a\0b", 3, "\"a\\u0000b\"");
    /* valid UTF-8 passes through unchanged */
    check_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
               "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    /* invalid: lone continuation, truncated, overlong, surrogate, > U+10FFFF */
    check_json("\x80", 1, "\"\\ufffd\"");
    check_json("\xc3", 1, "\"\\ufffd\"");
    check_json("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");
    check_json("\xc0\x80", 2, "\"\\ufffd\\ufffd\"");
    check_json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
    check_json("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    check_json("\xff", 1, "\"\\ufffd\"");
}

static void test_json_cap_is_atomic(void **state)
{
    (void)state;
    at_buf_t b;
    at_buf_init(&b, 12);
    assert_int_equal(at_buf_puts(&b, "x:"), 0);
    /* "\n\n\n\n" escapes to 8 bytes + 2 quotes = 10: fits exactly */
    assert_int_equal(at_buf_json_str(&b, "\n\n\n\n", 4), 0);
    assert_int_equal(b.len, 12);
    at_buf_reset(&b);
    assert_int_equal(at_buf_puts(&b, "x:"), 0);
    /* one byte more does not fit; nothing of it may remain */
    assert_int_equal(at_buf_json_str(&b, "\n\n\n\na", 5), AT_ETOOBIG);
    assert_string_equal(b.data, "x:");
    assert_int_equal(b.len, 2);
    at_buf_deinit(&b);
}

static void test_steal(void **state)
{
    (void)state;
    at_buf_t b;
    at_buf_init(&b, 100);
    size_t len = 99;
    char *p = at_buf_steal(&b, &len);
    assert_string_equal(p, "");
    assert_int_equal(len, 0);
    free(p);
    assert_int_equal(at_buf_puts(&b, "hello"), 0);
    p = at_buf_steal(&b, &len);
    assert_string_equal(p, "hello");
    assert_int_equal(len, 5);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 100);
    assert_string_equal(b.data, "");
    free(p);
    at_buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_is_string),
        cmocka_unit_test(test_append_grows),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_json_cap_is_atomic),
        cmocka_unit_test(test_steal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
