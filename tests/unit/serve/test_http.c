/* test_http.c - the HTTP server over real loopback sockets: a server runs on
 * 127.0.0.1:0 in a thread with a test handler, raw sockets play the client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "at_core.h"
#include "at_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- the server under test ------------------------------------------- */

typedef struct test_srv {
    at_http_server_t *http;
    pthread_t thread;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    at_http_req_t *deferred; /* the last request the handler deferred */
    int ndeferred;
    int run_rc;
    int run_done;
} test_srv_t;

static void reply(at_http_req_t *req, const char *ctype, const char *body, size_t len)
{
    at_http_respond(req, 200, ctype, "X-Handler: test\r\n", body, len);
}

static int path_is(const at_http_req_t *req, const char *p)
{
    return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

static int test_query(at_http_req_t *req)
{
    char a[64], b[8], out[200];
    int na = at_http_query(req, "a", a, sizeof a);
    int nb = at_http_query(req, "b c", b, sizeof b);
    int nz = at_http_query(req, "zz", out, sizeof out);
    int n = snprintf(out, sizeof out, "a=%s(%d) b=%s(%d) zz=%d", a, na, b, nb, nz);
    reply(req, "text/plain", out, (size_t)n);
    return 0;
}

static int test_handler(void *ud, at_http_req_t *req)
{
    test_srv_t *t = ud;
    if (path_is(req, "/echo")) {
        size_t n;
        const char *ct = at_http_header(req, "content-TYPE", &n);
        char ctype[64];
        snprintf(ctype, sizeof ctype, "%.*s", ct ? (int)n : 0, ct ? ct : "");
        reply(req, ctype, req->body, req->body_len);
    } else if (path_is(req, "/query")) {
        return test_query(req);
    } else if (path_is(req, "/defer")) {
        pthread_mutex_lock(&t->mu);
        t->deferred = req;
        t->ndeferred++;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
        return AT_HTTP_DEFERRED;
    } else if (path_is(req, "/silent")) {
        return 0; /* forgot to answer: the server says 500 */
    } else if (path_is(req, "/peer")) {
        const char *p = at_http_peer(req);
        reply(req, "text/plain", p, strlen(p));
    } else {
        char body[128];
        int n = snprintf(body, sizeof body, "%.*s %.*s", (int)req->method_len, req->method,
                         (int)req->path_len, req->path);
        reply(req, "text/plain", body, (size_t)n);
    }
    return 0;
}

static void *run_thread(void *arg)
{
    test_srv_t *t = arg;
    int rc = at_http_run(t->http);
    pthread_mutex_lock(&t->mu);
    t->run_rc = rc;
    t->run_done = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static test_srv_t *srv_start(const at_http_opts_t *over)
{
    test_srv_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    at_http_opts_t o = over ? *over : (at_http_opts_t){0};
    o.listen = "127.0.0.1:0";
    o.handler = test_handler;
    o.ud = t;
    char err[256];
    assert_int_equal(at_http_new(&t->http, &o, err, sizeof err), 0);
    t->port = at_http_port(t->http);
    assert_true(t->port > 0);
    assert_int_equal(pthread_create(&t->thread, NULL, run_thread, t), 0);
    return t;
}

static void srv_stop(test_srv_t *t)
{
    at_http_stop(t->http);
    pthread_join(t->thread, NULL);
    assert_int_equal(t->run_rc, 0);
    at_http_free(t->http);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* Waits until the handler deferred n requests in total; returns the last. */
static at_http_req_t *wait_deferred(test_srv_t *t, int n)
{
    pthread_mutex_lock(&t->mu);
    while (t->ndeferred < n)
        pthread_cond_wait(&t->cv, &t->mu);
    at_http_req_t *r = t->deferred;
    pthread_mutex_unlock(&t->mu);
    return r;
}

static int64_t now_ms(void)
{
    return at_time_mono_ns() / 1000000;
}

/* ---- the client ------------------------------------------------------ */

static int cli_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void cli_send(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void cli_sends(int fd, const char *s)
{
    cli_send(fd, s, strlen(s));
}

typedef struct resp {
    int status;
    char head[4096];
    char *body; /* owned */
    size_t body_len;
} resp_t;

/* Per-connection read-ahead, so pipelined answers split cleanly. */
typedef struct cli {
    int fd;
    char buf[1 << 20];
    size_t len;
} cli_t;

static int cli_fill(cli_t *c)
{
    if (c->len == sizeof c->buf)
        return -1;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 0;
}

/* Reads one response (skipping 1xx ones). Returns 0, or -1 on EOF/timeout
 * before a whole response. */
static int cli_read(cli_t *c, resp_t *r)
{
    memset(r, 0, sizeof *r);
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) {
            if (cli_fill(c) < 0)
                return -1;
            continue;
        }
        size_t hl = (size_t)(end - c->buf) + 4;
        assert_true(hl < sizeof r->head);
        memcpy(r->head, c->buf, hl);
        r->head[hl] = '\0';
        r->status = atoi(r->head + 9);
        if (r->status >= 100 && r->status < 200) {
            memmove(c->buf, c->buf + hl, c->len - hl);
            c->len -= hl;
            continue;
        }
        const char *cl = strcasestr(r->head, "\r\nContent-Length:");
        size_t bl = cl ? strtoul(cl + 17, NULL, 10) : 0;
        while (c->len < hl + bl)
            if (cli_fill(c) < 0)
                return -1;
        r->body = malloc(bl + 1);
        memcpy(r->body, c->buf + hl, bl);
        r->body[bl] = '\0';
        r->body_len = bl;
        memmove(c->buf, c->buf + hl + bl, c->len - hl - bl);
        c->len -= hl + bl;
        return 0;
    }
}

static cli_t *cli_open(int port)
{
    cli_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fd = cli_connect(port);
    return c;
}

static void cli_close(cli_t *c)
{
    close(c->fd);
    free(c);
}

/* Returns 1 when the server closed the connection (EOF or reset) with no
 * further bytes, 0 when bytes came, -1 on timeout. */
static int cli_eof(cli_t *c)
{
    if (c->len)
        return 0;
    char b;
    ssize_t n = recv(c->fd, &b, 1, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
        return 1;
    return n > 0 ? 0 : -1;
}

static void resp_free(resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

/* One request on a fresh connection; returns the response. */
static void roundtrip(int port, const char *req, resp_t *r)
{
    cli_t *c = cli_open(port);
    cli_sends(c->fd, req);
    assert_int_equal(cli_read(c, r), 0);
    cli_close(c);
}

static void assert_json_error(const resp_t *r, int status, const char *code)
{
    assert_int_equal(r->status, status);
    assert_non_null(strcasestr(r->head, "\r\nContent-Type: application/json\r\n"));
    char want[64];
    snprintf(want, sizeof want, "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
    assert_non_null(strstr(r->body, want));
    assert_non_null(strcasestr(r->head, "\r\nConnection: close\r\n"));
}

/* ---- tests ----------------------------------------------------------- */

static void test_simple_get(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    resp_t r;
    roundtrip(t->port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "GET /hello");
    assert_non_null(strstr(r.head, "\r\nContent-Length: 10\r\n"));
    assert_non_null(strstr(r.head, "\r\nContent-Type: text/plain\r\n"));
    assert_non_null(strstr(r.head, "\r\nX-Handler: test\r\n"));
    assert_non_null(strstr(r.head, "\r\nDate: "));
    assert_null(strstr(r.head, "Connection:"));
    resp_free(&r);
    at_http_stats_t st;
    at_http_stats(t->http, &st);
    assert_int_equal(st.requests_total, 1);
    assert_int_equal(st.connections_total, 1);
    srv_stop(t);
}

static void test_keep_alive(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    cli_t *c = cli_open(t->port);
    const char *paths[3] = {"/a", "/bb", "/ccc"};
    for (int i = 0; i < 3; i++) {
        char req[128];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i]);
        cli_sends(c->fd, req);
        resp_t r;
        assert_int_equal(cli_read(c, &r), 0);
        char want[64];
        snprintf(want, sizeof want, "GET %s", paths[i]);
        assert_string_equal(r.body, want);
        resp_free(&r);
    }
    /* Connection: close is honoured */
    cli_sends(c->fd, "GET /last HTTP/1.1\r\nConnection: close\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(c, &r), 0);
    assert_non_null(strstr(r.head, "\r\nConnection: close\r\n"));
    resp_free(&r);
    assert_int_equal(cli_eof(c), 1);
    cli_close(c);
    at_http_stats_t st;
    at_http_stats(t->http, &st);
    assert_int_equal(st.connections_total, 1);
    assert_int_equal(st.requests_total, 4);
    srv_stop(t);
}

static void test_http10(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    cli_t *c = cli_open(t->port);
    cli_sends(c->fd, "GET /one HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(c, &r), 0);
    assert_non_null(strstr(r.head, "\r\nConnection: keep-alive\r\n"));
    resp_free(&r);
    cli_sends(c->fd, "GET /two HTTP/1.0\r\n\r\n");
    assert_int_equal(cli_read(c, &r), 0);
    assert_string_equal(r.body, "GET /two");
    assert_non_null(strstr(r.head, "\r\nConnection: close\r\n"));
    resp_free(&r);
    assert_int_equal(cli_eof(c), 1);
    cli_close(c);
    srv_stop(t);
}

static void test_pipelined(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    cli_t *c = cli_open(t->port);
    cli_sends(c->fd, "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nfirst"
                     "GET /second HTTP/1.1\r\n\r\n"
                     "\r\n" /* a stray empty line between requests is ignored */
                     "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nthird");
    const char *want[3] = {"first", "GET /second", "third"};
    for (int i = 0; i < 3; i++) {
        resp_t r;
        assert_int_equal(cli_read(c, &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, want[i]);
        resp_free(&r);
    }
    cli_close(c);
    srv_stop(t);
}

static void test_post_echo(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    size_t n = 200 * 1000; /* several reads, buffer growth */
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    cli_t *c = cli_open(t->port);
    char head[256];
    snprintf(head, sizeof head,
             "POST /echo HTTP/1.1\r\nContent-Type: application/x-ndjson\r\n"
             "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
             n);
    cli_sends(c->fd, head);
    /* curl waits for "100 Continue" before the body */
    char cont[64] = {0};
    ssize_t k = recv(c->fd, cont, 25, MSG_WAITALL);
    assert_int_equal(k, 25);
    assert_string_equal(cont, "HTTP/1.1 100 Continue\r\n\r\n");
    cli_send(c->fd, body, n);
    resp_t r;
    assert_int_equal(cli_read(c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "\r\nContent-Type: application/x-ndjson\r\n"));
    assert_int_equal(r.body_len, n);
    assert_memory_equal(r.body, body, n);
    resp_free(&r);
    free(body);
    cli_close(c);
    srv_stop(t);
}

static void test_body_too_large(void **state)
{
    (void)state;
    at_http_opts_t o = {.max_body_bytes = 1000};
    test_srv_t *t = srv_start(&o);
    cli_t *c = cli_open(t->port);
    /* answered before the body is sent */
    cli_sends(c->fd, "POST /echo HTTP/1.1\r\nContent-Length: 1001\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(c, &r), 0);
    assert_json_error(&r, 413, "body_too_large");
    resp_free(&r);
    assert_int_equal(cli_eof(c), 1);
    cli_close(c);
    /* a huge number is too large too, not a parse error */
    roundtrip(t->port, "POST /echo HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
              &r);
    assert_json_error(&r, 413, "body_too_large");
    resp_free(&r);
    /* at the limit is fine */
    char req[1200];
    int hl = snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
    memset(req + hl, 'x', 1000);
    req[hl + 1000] = '\0';
    roundtrip(t->port, req, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 1000);
    resp_free(&r);
    at_http_stats_t st;
    at_http_stats(t->http, &st);
    assert_int_equal(st.rejected_limits, 2);
    srv_stop(t);
}

static void test_header_too_large(void **state)
{
    (void)state;
    at_http_opts_t o = {.max_header_bytes = 8192};
    test_srv_t *t = srv_start(&o);
    size_t n = 20000;
    char *req = malloc(n + 100);
    int hl = snprintf(req, n + 100, "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + hl, 'a', n);
    strcpy(req + hl + n, "\r\n\r\n");
    cli_t *c = cli_open(t->port);
    cli_send(c->fd, req, strlen(req));
    resp_t r;
    assert_int_equal(cli_read(c, &r), 0);
    assert_json_error(&r, 431, "header_too_large");
    resp_free(&r);
    assert_int_equal(cli_eof(c), 1);
    cli_close(c);
    /* a head that never ends is cut off at the limit too */
    c = cli_open(t->port);
    cli_send(c->fd, req, (size_t)hl + 9000);
    assert_int_equal(cli_read(c, &r), 0);
    assert_json_error(&r, 431, "header_too_large");
    resp_free(&r);
    cli_close(c);
    free(req);
    srv_stop(t);
}

static void test_bad_requests(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    resp_t r;
    roundtrip(t->port, "GET /x HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", &r);
    assert_json_error(&r, 400, "bad_request");
    resp_free(&r);
    roundtrip(t->port,
              "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
              &r);
    assert_json_error(&r, 411, "length_required");
    resp_free(&r);
    roundtrip(t->port, "GET / HTTP/2.0\r\n\r\n", &r);
    assert_json_error(&r, 505, "version_not_supported");
    resp_free(&r);
    roundtrip(t->port, "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
              &r);
    assert_json_error(&r, 400, "bad_request");
    resp_free(&r);
    roundtrip(t->port, "GET /silent HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.body, "\"internal_error\""));
    resp_free(&r);
    srv_stop(t);
}

static void test_head_and_absolute_form(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    cli_t *c = cli_open(t->port);
    cli_sends(c->fd, "HEAD /h HTTP/1.1\r\n\r\nGET http://example.com/abs?q=1 HTTP/1.1\r\n\r\n");
    /* HEAD: Content-Length of the body that GET would send, no body */
    char buf[1024] = {0};
    size_t got = 0;
    while (!strstr(buf, "GET /abs")) {
        ssize_t n = recv(c->fd, buf + got, sizeof buf - 1 - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_non_null(strstr(buf, "Content-Length: 7\r\n"));
    assert_null(strstr(buf, "HEAD /h"));
    cli_close(c);
    srv_stop(t);
}

static void test_slow_loris(void **state)
{
    (void)state;
    at_http_opts_t o = {.request_timeout_ms = 300, .idle_timeout_ms = 5000};
    test_srv_t *t = srv_start(&o);
    cli_t *c = cli_open(t->port);
    const char *req = "GET /slow HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n"
                      "X-D: 4\r\nX-E: 5\r\nX-F: 6\r\nX-G: 7\r\nX-H: 8\r\n\r\n";
    int64_t t0 = now_ms();
    size_t sent = 0;
    /* one byte every 20 ms: the whole head would take ~1.7 s */
    while (sent < strlen(req) && now_ms() - t0 < 3000) {
        if (send(c->fd, req + sent, 1, MSG_NOSIGNAL) != 1)
            break;
        sent++;
        usleep(20 * 1000);
        struct timeval tv = {0};
        fd_set rf;
        FD_ZERO(&rf);
        FD_SET(c->fd, &rf);
        if (select(c->fd + 1, &rf, NULL, NULL, &tv) > 0)
            break; /* the server spoke */
    }
    resp_t r;
    assert_int_equal(cli_read(c, &r), 0);
    int64_t took = now_ms() - t0;
    assert_json_error(&r, 408, "request_timeout");
    resp_free(&r);
    assert_true(took >= 280 && took < 1200);
    assert_true(sent > 5 && sent < strlen(req)); /* kept trickling, to no avail */
    assert_int_equal(cli_eof(c), 1);
    cli_close(c);
    srv_stop(t);
}

static void test_idle_close(void **state)
{
    (void)state;
    at_http_opts_t o = {.idle_timeout_ms = 300};
    test_srv_t *t = srv_start(&o);
    cli_t *c = cli_open(t->port);
    cli_sends(c->fd, "GET /x HTTP/1.1\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(c, &r), 0);
    resp_free(&r);
    int64_t t0 = now_ms();
    assert_int_equal(cli_eof(c), 1);
    int64_t took = now_ms() - t0;
    assert_true(took >= 250 && took < 1500);
    cli_close(c);
    /* a connection that never sends anything is idle too */
    c = cli_open(t->port);
    t0 = now_ms();
    assert_int_equal(cli_eof(c), 1);
    assert_true(now_ms() - t0 < 1500);
    cli_close(c);
    srv_stop(t);
}

typedef struct later {
    at_http_req_t *req;
    const char *body;
    int delay_ms;
} later_t;

static void *answer_later(void *arg)
{
    later_t *l = arg;
    usleep((useconds_t)l->delay_ms * 1000);
    at_http_respond_async(l->req, 202, "application/json", NULL, l->body, strlen(l->body));
    return NULL;
}

static void test_deferred(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    cli_t *c = cli_open(t->port);
    /* the pipelined second request waits for the deferred first */
    cli_sends(c->fd,
              "POST /defer HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /after HTTP/1.1\r\n\r\n");
    at_http_req_t *req = wait_deferred(t, 1);
    assert_int_equal(req->body_len, 2);
    assert_memory_equal(req->body, "hi", 2);
    later_t l = {req, "{\"accepted\":1}", 100};
    pthread_t th;
    pthread_create(&th, NULL, answer_later, &l);
    resp_t r;
    assert_int_equal(cli_read(c, &r), 0);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.body, "{\"accepted\":1}");
    resp_free(&r);
    assert_int_equal(cli_read(c, &r), 0);
    assert_string_equal(r.body, "GET /after");
    resp_free(&r);
    pthread_join(th, NULL);
    /* an error answered from another thread */
    cli_sends(c->fd, "GET /defer HTTP/1.1\r\n\r\n");
    req = wait_deferred(t, 2);
    at_http_respond_error_async(req, 503, "unavailable", "log \"full\"");
    assert_int_equal(cli_read(c, &r), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body,
                        "{\"error\":{\"code\":\"unavailable\",\"message\":\"log \\\"full\\\"\"}}");
    resp_free(&r);
    cli_close(c);
    srv_stop(t);
}

static void wait_open_conns(test_srv_t *t, uint64_t n)
{
    at_http_stats_t st;
    int64_t t0 = now_ms();
    do {
        at_http_stats(t->http, &st);
        if (st.connections_open == n)
            return;
        usleep(5000);
    } while (now_ms() - t0 < 3000);
    fail_msg("connections_open stayed %llu, want %llu", (unsigned long long)st.connections_open,
             (unsigned long long)n);
}

static void test_deferred_client_gone(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    for (int i = 0; i < 2; i++) {
        cli_t *c = cli_open(t->port);
        cli_sends(c->fd, "POST /defer HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody");
        at_http_req_t *req = wait_deferred(t, i + 1);
        if (i == 0) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* reset */
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        cli_close(c);
        if (i == 0)
            wait_open_conns(t, 0); /* the socket is gone, the request is not */
        else
            usleep(50 * 1000);
        assert_memory_equal(req->body, "body", 4); /* still valid */
        at_http_respond_async(req, 200, "text/plain", NULL, "late", 4);
    }
    /* the server carries on */
    resp_t r;
    roundtrip(t->port, "GET /ok HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    wait_open_conns(t, 0);
    srv_stop(t);
}

static void test_query_decoding(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    resp_t r;
    roundtrip(t->port, "GET /query?x=1&a=hello+w%C3%B6rld%21%2&b%20c=0123456789 HTTP/1.1\r\n\r\n",
              &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "a=hello w\xc3\xb6rld!%2(15) b=0123456(10) zz=-1");
    resp_free(&r);
    roundtrip(t->port, "GET /query?a&b+c= HTTP/1.1\r\n\r\n", &r);
    assert_string_equal(r.body, "a=(0) b=(0) zz=-1");
    resp_free(&r);
    roundtrip(t->port, "GET /peer HTTP/1.1\r\n\r\n", &r);
    assert_true(strncmp(r.body, "127.0.0.1:", 10) == 0);
    resp_free(&r);
    srv_stop(t);
}

static void test_stop_with_deferred(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    cli_t *idle = cli_open(t->port);
    cli_t *c = cli_open(t->port);
    cli_sends(c->fd, "GET /defer HTTP/1.1\r\n\r\n");
    at_http_req_t *req = wait_deferred(t, 1);
    int64_t t0 = now_ms();
    at_http_stop(t->http);
    assert_int_equal(cli_eof(idle), 1); /* idle keep-alive: closed at once */
    cli_close(idle);
    usleep(100 * 1000);
    pthread_mutex_lock(&t->mu);
    assert_int_equal(t->run_done, 0); /* waits for the deferred answer */
    pthread_mutex_unlock(&t->mu);
    at_http_respond_async(req, 200, "text/plain", NULL, "done", 4);
    resp_t r;
    assert_int_equal(cli_read(c, &r), 0);
    assert_string_equal(r.body, "done");
    resp_free(&r);
    assert_int_equal(cli_eof(c), 1);
    cli_close(c);
    pthread_join(t->thread, NULL);
    assert_true(now_ms() - t0 < 2000);
    at_http_free(t->http);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static void test_stop_grace_expires(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    cli_t *c = cli_open(t->port);
    cli_sends(c->fd, "GET /defer HTTP/1.1\r\n\r\n");
    at_http_req_t *req = wait_deferred(t, 1);
    int64_t t0 = now_ms();
    at_http_stop(t->http);
    pthread_join(t->thread, NULL);
    int64_t took = now_ms() - t0;
    assert_true(took >= 4900 && took < 7000);
    assert_int_equal(cli_eof(c), 1);
    cli_close(c);
    /* answering after run returned is harmless; at_http_free drops it */
    at_http_respond_async(req, 200, "text/plain", NULL, "too late", 8);
    at_http_free(t->http);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static void test_max_connections(void **state)
{
    (void)state;
    at_http_opts_t o = {.max_connections = 2};
    test_srv_t *t = srv_start(&o);
    cli_t *a = cli_open(t->port), *b = cli_open(t->port);
    cli_sends(a->fd, "GET /a HTTP/1.1\r\n\r\n");
    cli_sends(b->fd, "GET /b HTTP/1.1\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(a, &r), 0);
    resp_free(&r);
    assert_int_equal(cli_read(b, &r), 0);
    resp_free(&r);
    /* the third waits in the backlog until one of the first two leaves */
    cli_t *c = cli_open(t->port);
    struct timeval tv = {.tv_usec = 300 * 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    cli_sends(c->fd, "GET /c HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_read(c, &r), -1);
    cli_close(a);
    tv.tv_sec = 5;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(cli_read(c, &r), 0);
    assert_string_equal(r.body, "GET /c");
    resp_free(&r);
    cli_close(b);
    cli_close(c);
    srv_stop(t);
}

static void test_threads(void **state)
{
    (void)state;
    at_http_opts_t o = {.threads = 3};
    test_srv_t *t = srv_start(&o);
    for (int i = 0; i < 30; i++) {
        resp_t r;
        roundtrip(t->port, "GET /mt HTTP/1.1\r\n\r\n", &r);
        assert_string_equal(r.body, "GET /mt");
        resp_free(&r);
    }
    at_http_stats_t st;
    at_http_stats(t->http, &st);
    assert_int_equal(st.requests_total, 30);
    srv_stop(t);
}

static void test_new_errors(void **state)
{
    (void)state;
    test_srv_t *t = srv_start(NULL);
    char listen[64], err[256] = "";
    snprintf(listen, sizeof listen, "127.0.0.1:%d", t->port);
    at_http_opts_t o = {.listen = listen, .handler = test_handler};
    at_http_server_t *s = NULL;
    assert_int_equal(at_http_new(&s, &o, err, sizeof err), -EADDRINUSE);
    assert_null(s);
    assert_non_null(strstr(err, listen));
    o.listen = "127.0.0.1";
    assert_int_equal(at_http_new(&s, &o, err, sizeof err), -EINVAL);
    o.listen = "[::1]:0"; /* IPv6 may be off here: just no crash */
    if (at_http_new(&s, &o, err, sizeof err) == 0) {
        assert_true(at_http_port(s) > 0);
        at_http_free(s);
    }
    srv_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_post_echo),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_header_too_large),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_head_and_absolute_form),
        cmocka_unit_test(test_slow_loris),
        cmocka_unit_test(test_idle_close),
        cmocka_unit_test(test_deferred),
        cmocka_unit_test(test_deferred_client_gone),
        cmocka_unit_test(test_query_decoding),
        cmocka_unit_test(test_stop_with_deferred),
        cmocka_unit_test(test_stop_grace_expires),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_new_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
