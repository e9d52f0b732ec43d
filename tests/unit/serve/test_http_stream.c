/* test_http_stream.c - streaming answers and WebSocket over real loopback
 * sockets: an SSE-like stream fed from the test thread, the cap on unsent
 * bytes, the client going away, the RFC 6455 handshake, text frames both
 * ways, ping/pong and close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "at_core.h"
#include "at_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct srv {
    at_http_server_t *http;
    pthread_t thread;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    at_http_stream_t *st; /* the last stream started */
    int nstarted;
    int ngone;
    size_t cap;
} srv_t;

static void on_gone(void *ud, at_http_stream_t *st)
{
    srv_t *t = ud;
    (void)st;
    pthread_mutex_lock(&t->mu);
    t->ngone++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* WebSocket: echoes a text message back, "bye" ends the stream. */
static void on_msg(void *ud, at_http_stream_t *st, const char *data, size_t len)
{
    (void)ud;
    if (len == 3 && !memcmp(data, "bye", 3)) {
        at_http_stream_end(st, 0);
        return;
    }
    char out[1024];
    int n = snprintf(out, sizeof out, "echo:%.*s", (int)len, data);
    assert_int_equal(at_http_stream_send(st, out, (size_t)n), 0);
}

static int handler(void *ud, at_http_req_t *req)
{
    srv_t *t = ud;
    at_http_stream_t *st = NULL;
    if (req->path_len == 4 && !memcmp(req->path, "/sse", 4)) {
        st = at_http_stream_start(req, 200, "text/event-stream", "Cache-Control: no-cache\r\n",
                                  t->cap, on_gone, t);
        assert_int_equal(at_http_stream_send(st, ": hello\n\n", 9), 0);
    } else if (req->path_len == 3 && !memcmp(req->path, "/ws", 3)) {
        st = at_http_ws_accept(req, NULL, t->cap, on_msg, on_gone, t);
        if (!st)
            return 0;
    } else {
        at_http_respond(req, 200, "text/plain", NULL, "plain", 5);
        return 0;
    }
    pthread_mutex_lock(&t->mu);
    if (t->st)
        at_http_stream_release(t->st);
    t->st = st;
    t->nstarted++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static void *run(void *arg)
{
    srv_t *t = arg;
    at_http_run(t->http);
    return NULL;
}

static srv_t *srv_start(size_t cap)
{
    srv_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->cap = cap;
    at_http_opts_t o = {
        .listen = "127.0.0.1:0", .handler = handler, .ud = t, .idle_timeout_ms = 2000};
    char err[256];
    assert_int_equal(at_http_new(&t->http, &o, err, sizeof err), 0);
    t->port = at_http_port(t->http);
    assert_int_equal(pthread_create(&t->thread, NULL, run, t), 0);
    return t;
}

static void srv_stop(srv_t *t)
{
    at_http_stop(t->http);
    pthread_join(t->thread, NULL);
    if (t->st)
        at_http_stream_release(t->st);
    at_http_free(t->http);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static at_http_stream_t *wait_started(srv_t *t, int n)
{
    pthread_mutex_lock(&t->mu);
    while (t->nstarted < n)
        pthread_cond_wait(&t->cv, &t->mu);
    at_http_stream_t *st = t->st;
    pthread_mutex_unlock(&t->mu);
    return st;
}

static void wait_gone(srv_t *t, int n)
{
    pthread_mutex_lock(&t->mu);
    while (t->ngone < n)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
}

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

static void cli_sends(int fd, const void *s, size_t n)
{
    const char *p = s;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

/* Reads until buf holds needle (or EOF/timeout); returns the bytes read. */
static size_t cli_until(int fd, char *buf, size_t cap, size_t have, const char *needle)
{
    while (!memmem(buf, have, needle, strlen(needle)) && have < cap) {
        ssize_t n = recv(fd, buf + have, cap - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    return have;
}

static bool cli_eof(int fd)
{
    char b[4096];
    for (;;) {
        ssize_t n = recv(fd, b, sizeof b, 0);
        if (n == 0)
            return true;
        if (n < 0)
            return false;
    }
}

/* ---- SSE-like streams ----------------------------------------------------- */

static void test_stream_chunks(void **state)
{
    (void)state;
    srv_t *t = srv_start(0);
    int fd = cli_connect(t->port);
    const char *req = "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n";
    cli_sends(fd, req, strlen(req));
    at_http_stream_t *st = wait_started(t, 1);
    char buf[8192];
    size_t n = cli_until(fd, buf, sizeof buf - 1, 0, ": hello\n\n");
    buf[n] = 0;
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(buf, "Content-Type: text/event-stream\r\n"));
    assert_non_null(strstr(buf, "Connection: close\r\n"));
    assert_null(strstr(buf, "Content-Length"));
    for (int i = 0; i < 100; i++) {
        char m[64];
        int k = snprintf(m, sizeof m, "data: %d\n\n", i);
        assert_int_equal(at_http_stream_send(st, m, (size_t)k), 0);
    }
    n = cli_until(fd, buf, sizeof buf - 1, 0, "data: 99\n\n");
    buf[n] = 0;
    assert_non_null(strstr(buf, "data: 0\n\ndata: 1\n\n"));
    at_http_stream_end(st, 0);
    assert_true(cli_eof(fd));
    wait_gone(t, 1);
    assert_int_equal(at_http_stream_send(st, "x", 1), AT_ECLOSED);
    close(fd);
    srv_stop(t);
}

static void test_stream_cap(void **state)
{
    (void)state;
    srv_t *t = srv_start(4096);
    int fd = cli_connect(t->port);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const char *req = "GET /sse HTTP/1.1\r\n\r\n";
    cli_sends(fd, req, strlen(req));
    at_http_stream_t *st = wait_started(t, 1);
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    /* the client reads nothing: once the socket buffers are full, sends are
     * refused, and what waits stays under the cap */
    int refused = 0;
    size_t sent = 0;
    for (int i = 0; i < 200000 && refused < 10; i++) {
        int rc = at_http_stream_send(st, chunk, sizeof chunk);
        if (rc == AT_EFULL) {
            refused++;
            usleep(1000);
        } else {
            assert_int_equal(rc, 0);
            sent += sizeof chunk;
        }
        assert_true(at_http_stream_unsent(st) <= 4096);
    }
    assert_int_equal(refused, 10);
    assert_true(sent < (size_t)64 << 20);
    /* the client reads again: sends are taken again */
    char buf[65536];
    for (int i = 0; i < 50; i++)
        (void)recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    int ok = 0;
    for (int i = 0; i < 2000 && !ok; i++) {
        ok = at_http_stream_send(st, chunk, 10) == 0;
        if (!ok) {
            (void)recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            usleep(1000);
        }
    }
    assert_true(ok);
    close(fd);
    wait_gone(t, 1);
    srv_stop(t);
}

static void test_stream_client_leaves(void **state)
{
    (void)state;
    srv_t *t = srv_start(0);
    int fd = cli_connect(t->port);
    const char *req = "GET /sse HTTP/1.1\r\n\r\n";
    cli_sends(fd, req, strlen(req));
    at_http_stream_t *st = wait_started(t, 1);
    close(fd);
    wait_gone(t, 1);
    assert_int_equal(at_http_stream_send(st, "x", 1), AT_ECLOSED);
    /* a plain request on another connection is still served */
    fd = cli_connect(t->port);
    const char *r2 = "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n";
    cli_sends(fd, r2, strlen(r2));
    char buf[1024];
    size_t n = cli_until(fd, buf, sizeof buf - 1, 0, "plain");
    buf[n] = 0;
    assert_non_null(strstr(buf, "plain"));
    close(fd);
    srv_stop(t);
}

static void test_stream_server_stop(void **state)
{
    (void)state;
    srv_t *t = srv_start(0);
    int fd = cli_connect(t->port);
    const char *req = "GET /sse HTTP/1.1\r\n\r\n";
    cli_sends(fd, req, strlen(req));
    wait_started(t, 1);
    at_http_stop(t->http);
    assert_true(cli_eof(fd));
    wait_gone(t, 1);
    close(fd);
    srv_stop(t);
}

/* ---- WebSocket ---------------------------------------------------------------- */

/* A masked client frame. */
static size_t ws_frame(unsigned char *out, int opcode, const char *p, size_t n)
{
    static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    size_t k = 0;
    out[k++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        out[k++] = (unsigned char)(0x80 | n);
    } else {
        out[k++] = 0x80 | 126;
        out[k++] = (unsigned char)(n >> 8);
        out[k++] = (unsigned char)n;
    }
    memcpy(out + k, mask, 4);
    k += 4;
    for (size_t i = 0; i < n; i++)
        out[k++] = (unsigned char)(p[i] ^ mask[i % 4]);
    return k;
}

/* Reads one unmasked server frame; returns its opcode, -1 on EOF. */
static int ws_read(int fd, char *pay, size_t cap, size_t *len)
{
    unsigned char h[4];
    if (recv(fd, h, 2, MSG_WAITALL) != 2)
        return -1;
    size_t n = h[1] & 0x7f;
    if (n == 126) {
        if (recv(fd, h + 2, 2, MSG_WAITALL) != 2)
            return -1;
        n = (size_t)h[2] << 8 | h[3];
    }
    assert_true(n <= cap);
    if (n && recv(fd, pay, n, MSG_WAITALL) != (ssize_t)n)
        return -1;
    *len = n;
    return h[0] & 0x0f;
}

static int ws_open(srv_t *t, const char *extra)
{
    int fd = cli_connect(t->port);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n%s",
                     extra ? extra : "");
    cli_sends(fd, req, (size_t)n);
    char buf[1024];
    size_t have = 0;
    /* read the head byte by byte: frames may follow it */
    while (have < sizeof buf - 1 && !memmem(buf, have, "\r\n\r\n", 4)) {
        ssize_t r = recv(fd, buf + have, 1, 0);
        assert_true(r == 1);
        have++;
    }
    buf[have] = 0;
    assert_non_null(strstr(buf, "HTTP/1.1 101 Switching Protocols\r\n"));
    /* RFC 6455 §1.3's example key and answer */
    assert_non_null(strstr(buf, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    return fd;
}

static void test_ws_echo_ping_close(void **state)
{
    (void)state;
    srv_t *t = srv_start(0);
    int fd = ws_open(t, NULL);
    wait_started(t, 1);
    unsigned char f[512];
    char pay[512];
    size_t len;
    cli_sends(fd, f, ws_frame(f, 1, "hello", 5));
    assert_int_equal(ws_read(fd, pay, sizeof pay, &len), 1);
    assert_int_equal(len, 10);
    assert_memory_equal(pay, "echo:hello", 10);
    cli_sends(fd, f, ws_frame(f, 9, "pp", 2)); /* ping */
    assert_int_equal(ws_read(fd, pay, sizeof pay, &len), 10);
    assert_int_equal(len, 2);
    /* a longer message, in two TCP writes */
    char big[300];
    memset(big, 'b', sizeof big);
    size_t k = ws_frame(f, 1, big, sizeof big);
    cli_sends(fd, f, 7);
    usleep(20000);
    cli_sends(fd, f + 7, k - 7);
    assert_int_equal(ws_read(fd, pay, sizeof pay, &len), 1);
    assert_int_equal(len, 305);
    /* a ping from the server */
    assert_int_equal(at_http_stream_ping(t->st), 0);
    assert_int_equal(ws_read(fd, pay, sizeof pay, &len), 9);
    /* the client closes: the server answers with a close and ends */
    const char code[2] = {0x03, (char)0xe8};
    cli_sends(fd, f, ws_frame(f, 8, code, 2));
    assert_int_equal(ws_read(fd, pay, sizeof pay, &len), 8);
    assert_true(cli_eof(fd));
    wait_gone(t, 1);
    close(fd);
    srv_stop(t);
}

static void test_ws_server_end_and_early_frame(void **state)
{
    (void)state;
    srv_t *t = srv_start(0);
    unsigned char f[64];
    char early[64];
    size_t k = ws_frame(f, 1, "first", 5);
    memcpy(early, f, k);
    early[k] = 0;
    /* a frame sent right behind the upgrade request is not lost */
    int fd = cli_connect(t->port);
    char req[512];
    int n = snprintf(
        req, sizeof req,
        "GET /ws HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    memcpy(req + n, f, k);
    cli_sends(fd, req, (size_t)n + k);
    char buf[1024];
    size_t have = cli_until(fd, buf, sizeof buf, 0, "echo:first");
    assert_non_null(memmem(buf, have, "echo:first", 10));
    /* "bye": the server ends with a close frame 1000 */
    cli_sends(fd, f, ws_frame(f, 1, "bye", 3));
    char pay[64];
    size_t len;
    assert_int_equal(ws_read(fd, pay, sizeof pay, &len), 8);
    assert_int_equal(len, 2);
    assert_int_equal((unsigned char)pay[0] << 8 | (unsigned char)pay[1], 1000);
    close(fd);
    wait_gone(t, 1);
    srv_stop(t);
}

static void test_ws_bad_upgrade(void **state)
{
    (void)state;
    srv_t *t = srv_start(0);
    const char *reqs[] = {
        "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n",
        "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    };
    const char *want[] = {"HTTP/1.1 400", "HTTP/1.1 400", "HTTP/1.1 426"};
    for (int i = 0; i < 3; i++) {
        int fd = cli_connect(t->port);
        cli_sends(fd, reqs[i], strlen(reqs[i]));
        char buf[1024];
        size_t n = cli_until(fd, buf, sizeof buf - 1, 0, "}}");
        buf[n] = 0;
        assert_true(!strncmp(buf, want[i], strlen(want[i])));
        assert_non_null(strstr(buf, "\"bad_upgrade\""));
        close(fd);
    }
    srv_stop(t);
}

static void test_ws_too_big(void **state)
{
    (void)state;
    srv_t *t = srv_start(0);
    int fd = ws_open(t, NULL);
    wait_started(t, 1);
    /* a frame announcing 2 MiB (over max_body_bytes): closed with 1009 */
    unsigned char h[200] = {0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0x20, 0, 0, 1, 2, 3, 4};
    cli_sends(fd, h, sizeof h); /* wslay judges the length once payload comes */
    char pay[64];
    size_t len;
    assert_int_equal(ws_read(fd, pay, sizeof pay, &len), 8);
    assert_int_equal((unsigned char)pay[0] << 8 | (unsigned char)pay[1], 1009);
    close(fd);
    wait_gone(t, 1);
    srv_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_chunks),
        cmocka_unit_test(test_stream_cap),
        cmocka_unit_test(test_stream_client_leaves),
        cmocka_unit_test(test_stream_server_stop),
        cmocka_unit_test(test_ws_echo_ping_close),
        cmocka_unit_test(test_ws_server_end_and_early_frame),
        cmocka_unit_test(test_ws_bad_upgrade),
        cmocka_unit_test(test_ws_too_big),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
