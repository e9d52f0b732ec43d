/* test_sign.c - the delivery signature against vectors computed with
 * `openssl dgst -sha256 -hmac SECRET` over "TIMESTAMP.BODY". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "at_sinks.h"

static void test_vector(void **state)
{
    (void)state;
    /* printf '%s' '1796166015.BODY' | openssl dgst -sha256 -hmac 'whsec-test-123' */
    const char *body = "{\"id\":\"4b71044033382b194357cdfc30ade157\",\"type\":\"segment_enter\","
                       "\"seq\":1}";
    char hex[65];
    at_sink_sign("whsec-test-123", 14, 1796166015, body, strlen(body), hex);
    assert_string_equal(hex, "013e1d89a949d3220fe2fbed4e203d41f7207fdbdb1c44b499e4fada0dadc445");
}

static void test_empty_body(void **state)
{
    (void)state;
    /* printf '%s' '0.' | openssl dgst -sha256 -hmac 'k' */
    char hex[65];
    at_sink_sign("k", 1, 0, "", 0, hex);
    assert_string_equal(hex, "6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329167641e7");
}

static void test_every_byte_counts(void **state)
{
    (void)state;
    char a[65], b[65], c[65];
    at_sink_sign("secret-1", 8, 100, "{}", 2, a);
    at_sink_sign("secret-2", 8, 100, "{}", 2, b);
    at_sink_sign("secret-1", 8, 101, "{}", 2, c);
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_every_byte_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
