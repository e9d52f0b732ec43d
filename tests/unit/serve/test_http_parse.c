/* test_http_parse.c - the request head parser on its own: finding the end
 * of a head fed byte by byte, and what is accepted or refused, with which
 * status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "at_core.h"
#include "http_parse.h"

#include <stdio.h>
#include <string.h>

static int parse(const char *s, at_http__head_t *h)
{
    size_t scan = 0;
    size_t n = at_http__head_end(s, strlen(s), &scan);
    assert_true(n > 0);
    return at_http__parse(s, n, h);
}

static void test_head_end_incremental(void **state)
{
    (void)state;
    const char *heads[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\r\nHost: a\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
    };
    for (size_t k = 0; k < sizeof heads / sizeof heads[0]; k++) {
        const char *s = heads[k];
        size_t len = strlen(s), scan = 0, end = 0;
        for (size_t i = 1; i <= len && !end; i++) {
            end = at_http__head_end(s, i, &scan);
            if (i < len)
                assert_int_equal(end, 0);
        }
        assert_int_equal(end, len);
    }
    /* the body after the head is not part of it */
    size_t scan = 0;
    const char *s = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(at_http__head_end(s, strlen(s), &scan), strlen(s) - 3);
    assert_int_equal(at_http__skip_crlf("\r\n\r\nGET", 7), 4);
}

static void test_request_line(void **state)
{
    (void)state;
    at_http__head_t h;
    assert_int_equal(parse("PATCH /v1/users/42/segments?n=10&x HTTP/1.1\r\n\r\n", &h), 0);
    assert_int_equal(h.method_len, 5);
    assert_memory_equal(h.method, "PATCH", 5);
    assert_int_equal(h.path_len, 21);
    assert_memory_equal(h.path, "/v1/users/42/segments", 21);
    assert_int_equal(h.query_len, 6);
    assert_memory_equal(h.query, "n=10&x", 6);
    assert_int_equal(h.minor, 1);
    assert_true(h.keep_alive);

    assert_int_equal(parse("GET http://host:8080/p/q?z=1 HTTP/1.1\r\n\r\n", &h), 0);
    assert_int_equal(h.path_len, 4);
    assert_memory_equal(h.path, "/p/q", 4);
    assert_memory_equal(h.query, "z=1", 3);
    assert_int_equal(parse("GET https://host HTTP/1.1\r\n\r\n", &h), 0);
    assert_int_equal(h.path_len, 1);
    assert_int_equal(parse("OPTIONS * HTTP/1.1\r\n\r\n", &h), 0);
    assert_int_equal(h.path_len, 1);

    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &h), 0);
    assert_false(h.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.9\r\n\r\n", &h), 0);
    assert_int_equal(h.minor, 1);
}

static void expect_fail(const char *req, int rc, int status)
{
    at_http__head_t h;
    assert_int_equal(parse(req, &h), rc);
    assert_int_equal(h.err_status, status);
    assert_non_null(h.err_code);
    assert_non_null(h.err_msg);
}

static void test_refused(void **state)
{
    (void)state;
    expect_fail("GET  / HTTP/1.1\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET /\r\n\r\n", AT_EPARSE, 400);
    expect_fail("G(T / HTTP/1.1\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET foo HTTP/1.1\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET /a\x01 HTTP/1.1\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET / HTTP/1.1x\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET / HTTP/2.0\r\n\r\n", AT_EPARSE, 505);
    expect_fail("GET / HTTP/1.1\r\nHost : a\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET / HTTP/1.1\r\n: a\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET / HTTP/1.1\r\nNoColon\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", AT_EPARSE, 400);
    expect_fail("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", AT_EPARSE, 400);
    expect_fail("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", AT_EPARSE, 411);
    expect_fail("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", AT_EPARSE, 501);

    char big[AT_HTTP__MAX_HEADERS * 8 + 64];
    size_t n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= AT_HTTP__MAX_HEADERS; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "A: b\r\n");
    snprintf(big + n, sizeof big - n, "\r\n");
    expect_fail(big, AT_ETOOBIG, 431);
}

static void test_fields(void **state)
{
    (void)state;
    at_http__head_t h;
    assert_int_equal(parse("POST /e HTTP/1.1\r\nX-Empty:\r\nX-Pad: \t v a l \t\r\n"
                           "content-length: 0012\r\nContent-Length: 12\r\n"
                           "Expect: 100-Continue\r\nConnection: keep-alive, Close\r\n\r\n",
                           &h),
                     0);
    assert_int_equal(h.nhdrs, 6);
    assert_int_equal(h.hdrs[0].value_len, 0);
    assert_int_equal(h.hdrs[1].value_len, 5);
    assert_memory_equal(h.hdrs[1].value, "v a l", 5);
    assert_int_equal(h.content_length, 12);
    assert_true(h.expect_continue);
    assert_false(h.keep_alive); /* close wins */

    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h), 0);
    assert_true(h.keep_alive);
    assert_int_equal(h.content_length, 0);

    assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 123456789012345678901\r\n\r\n", &h),
                     0);
    assert_int_equal(h.content_length, UINT64_MAX); /* the caller answers 413 */

    assert_true(at_http__ieq("Content-TYPE", 12, "content-type", 12));
    assert_false(at_http__ieq("content-typf", 12, "content-type", 12));
    assert_false(at_http__ieq("[", 1, "{", 1)); /* not letters: no case folding */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_end_incremental),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
