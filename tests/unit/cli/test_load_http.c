/* test_load_http.c - the HTTP/1.1 client pieces of `attune load`: request
 * head, incremental response parsing, and the ingest answer scanner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "../../../src/cli/load_http.c"

/* Feeds text into r one byte at a time; returns the first non-zero parse
 * result and how many bytes it took. */
static int feed_bytewise(at_load_resp_t *r, const char *text, size_t *used, size_t *body_len)
{
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(at_buf_append(&r->in, text + i, 1), 0);
        int rc = at_load_resp_parse(r, false, body_len);
        if (rc != 0) {
            *used = i + 1;
            return rc;
        }
    }
    *used = n;
    return 0;
}

static void test_request_head(void **state)
{
    (void)state;
    char head[512];
    int n = at_load_request_head(head, sizeof(head), "127.0.0.1:8080", "sekrit", 1234);
    assert_true(n > 0 && (size_t)n == strlen(head));
    assert_true(strncmp(head, "POST /v1/events HTTP/1.1\r\n", 26) == 0);
    assert_non_null(strstr(head, "\r\nHost: 127.0.0.1:8080\r\n"));
    assert_non_null(strstr(head, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(head, "\r\nContent-Length: 1234\r\n"));
    assert_non_null(strstr(head, "\r\nAuthorization: Bearer sekrit\r\n"));
    assert_string_equal(head + n - 4, "\r\n\r\n");
    assert_int_equal(strstr(head, "\r\n\r\n") + 4 - head, n); /* one blank line, at the end */
    n = at_load_request_head(head, sizeof(head), "h:1", NULL, 0);
    assert_null(strstr(head, "Authorization"));
    volatile size_t small = 40; /* not a constant: gcc -O3 would warn of the cut it tests */
    assert_int_equal(at_load_request_head(head, small, "h:1", NULL, 0), AT_ETOOBIG);
}

static void test_response_split_anywhere(void **state)
{
    (void)state;
    const char *text = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "content-length: 13\r\n\r\n{\"accepted\":1}";
    at_load_resp_t r;
    at_load_resp_init(&r);
    size_t used = 0, body_len = 0;
    /* 13 bytes of body announced, 14 sent: the 14th is one too many */
    assert_int_equal(feed_bytewise(&r, text, &used, &body_len), 1);
    assert_int_equal(used, strlen(text) - 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(body_len, 13);
    assert_false(r.close);
    assert_int_equal(r.retry_after_ms, -1);
    assert_memory_equal(r.in.data + r.head_len, "{\"accepted\":1", 13);
    assert_int_equal(at_buf_putc(&r.in, '}'), 0);
    assert_int_equal(at_load_resp_parse(&r, false, &body_len), AT_EPARSE);
    at_load_resp_reset(&r);
    assert_int_equal(r.in.len, 0);
    assert_int_equal(r.head_len, 0);
    at_load_resp_deinit(&r);
}

static int parse_all(at_load_resp_t *r, const char *text, bool eof, size_t *body_len)
{
    at_load_resp_reset(r);
    assert_int_equal(at_buf_puts(&r->in, text), 0);
    return at_load_resp_parse(r, eof, body_len);
}

static void test_response_headers(void **state)
{
    (void)state;
    at_load_resp_t r;
    at_load_resp_init(&r);
    size_t bl = 0;
    assert_int_equal(parse_all(&r,
                               "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\n"
                               "Connection: close\r\nContent-Length: 0\r\n\r\n",
                               false, &bl),
                     1);
    assert_int_equal(r.status, 429);
    assert_int_equal(r.retry_after_ms, 2000);
    assert_true(r.close);
    assert_int_equal(bl, 0);
    /* an HTTP-date Retry-After means "wait a second" */
    assert_int_equal(parse_all(&r,
                               "HTTP/1.1 503 Unavailable\r\nRetry-After: Wed, 21 Oct 2026 07:28:00 "
                               "GMT\r\nContent-Length: 2\r\n\r\n{}",
                               false, &bl),
                     1);
    assert_int_equal(r.retry_after_ms, 1000);
    /* HTTP/1.0 closes unless keep-alive is asked for */
    assert_int_equal(parse_all(&r, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, &bl), 1);
    assert_true(r.close);
    assert_int_equal(parse_all(&r,
                               "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
                               "Content-Length: 0\r\n\r\n",
                               false, &bl),
                     1);
    assert_false(r.close);
    /* 100 Continue is skipped */
    assert_int_equal(parse_all(&r,
                               "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                               "Content-Length: 3\r\n\r\nabc",
                               false, &bl),
                     1);
    assert_int_equal(r.status, 201);
    assert_int_equal(bl, 3);
    at_load_resp_deinit(&r);
}

static void test_response_until_close(void **state)
{
    (void)state;
    at_load_resp_t r;
    at_load_resp_init(&r);
    size_t bl = 0;
    const char *text = "HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\n\r\nbroken";
    assert_int_equal(parse_all(&r, text, false, &bl), 0);
    assert_int_equal(at_load_resp_parse(&r, true, &bl), 1);
    assert_int_equal(bl, 6);
    assert_true(r.close);
    /* a Content-Length response cut short is an error */
    assert_int_equal(parse_all(&r, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", true, &bl),
                     AT_EPARSE);
    assert_int_equal(parse_all(&r, "HTTP/1.1 200 OK\r\n", true, &bl), AT_EPARSE);
    at_load_resp_deinit(&r);
}

static void test_response_malformed(void **state)
{
    (void)state;
    at_load_resp_t r;
    at_load_resp_init(&r);
    size_t bl = 0;
    const char *bad[] = {
        "HTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse_all(&r, bad[i], false, &bl), AT_EPARSE);
    assert_int_equal(
        parse_all(&r, "HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", false, &bl),
        AT_ETOOBIG);
    /* the buffer refuses to grow past its cap */
    at_load_resp_reset(&r);
    static char big[AT_LOAD_RESP_MAX + 1];
    assert_int_equal(at_buf_append(&r.in, big, sizeof(big)), AT_ETOOBIG);
    at_load_resp_deinit(&r);
}

static void test_ack_scan(void **state)
{
    (void)state;
    const char *body = "{\"accepted\":97,\"duplicates\":1,\"rejected\":["
                       "{\"index\":3,\"error\":\"bad \\\"index\\\":7 in text\"},"
                       "{\"index\" : 40,\"error\":\"x\"}],\"positions\":[\"0:12\",\"3:4\"]}";
    at_load_ack_t a;
    uint8_t flags[64] = {0};
    assert_int_equal(at_load_ack_parse(body, strlen(body), &a, flags, 41), 0);
    assert_int_equal(a.accepted, 97);
    assert_int_equal(a.duplicates, 1);
    assert_int_equal(a.rejected, 2);
    for (int i = 0; i < 64; i++)
        assert_int_equal(flags[i], i == 3 || i == 40);
    /* indexes past n are counted but not flagged */
    memset(flags, 0, sizeof(flags));
    assert_int_equal(at_load_ack_parse(body, strlen(body), &a, flags, 10), 0);
    assert_int_equal(flags[40], 0);
    assert_int_equal(a.rejected, 2);
    assert_int_equal(at_load_ack_parse("{}", 2, &a, NULL, 0), 0);
    assert_int_equal(a.accepted, -1);
    assert_int_equal(at_load_ack_parse("[1]", 3, &a, NULL, 0), AT_EPARSE);
    assert_int_equal(at_load_ack_parse("{\"accepted", 10, &a, NULL, 0), AT_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_head),       cmocka_unit_test(test_response_split_anywhere),
        cmocka_unit_test(test_response_headers),   cmocka_unit_test(test_response_until_close),
        cmocka_unit_test(test_response_malformed), cmocka_unit_test(test_ack_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
