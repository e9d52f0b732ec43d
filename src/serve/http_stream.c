/* http_stream.c - long-lived answers on a connection: a Server-Sent Events
 * stream (close-delimited body written in pieces from any thread) and a
 * WebSocket (RFC 6455 handshake here, framing by libwslay over the
 * connection's non-blocking socket).
 *
 * Both take the connection out of request processing: the read buffer is
 * given back (an open stream costs its connection struct, the stream
 * struct and, only while a reader is behind, its output), and what the
 * owner sends comes through the loop's async queue. The cap on unsent
 * bytes counts the queue and the output buffer, so a slow reader is
 * refused further sends instead of growing memory
 * (docs/decisions/0001-http-server.md, 0006-push.md).
 *
 * THREAD SAFETY: at_http_stream_send/ping/end/unsent/peer/release from
 * any thread while the owner holds its reference; everything else on the
 * connection's loop thread.
 */
#include "http_int.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <wslay/wslay.h>

#define AT_HTTP__STREAM_CAP ((size_t)64 * 1024)

/* ---- references ------------------------------------------------------ */

static at_http_stream_t *at_http__stream_new(at_http__conn_t *c, size_t max_unsent,
                                             at_http_gone_fn gone, void *ud)
{
    at_http_stream_t *st = at_xcalloc(1, sizeof *st);
    st->loop = c->loop;
    st->conn = c;
    st->gone = gone;
    st->ud = ud;
    st->max_unsent = max_unsent ? max_unsent : AT_HTTP__STREAM_CAP;
    atomic_init(&st->refs, 2); /* the connection's and the owner's */
    memcpy(st->peer, c->peer, sizeof st->peer);
    c->stream = st;
    c->responded = true;
    return st;
}

/* Any thread. */
void at_http__stream_unref(at_http_stream_t *st)
{
    if (atomic_fetch_sub(&st->refs, 1) == 1) {
        free(st->pre);
        free(st);
    }
}

void at_http_stream_release(at_http_stream_t *st)
{
    if (st)
        at_http__stream_unref(st);
}

size_t at_http_stream_unsent(const at_http_stream_t *st)
{
    at_http_stream_t *m = (at_http_stream_t *)st; /* atomics load through non-const */
    return atomic_load(&m->queued) + atomic_load(&m->outstanding);
}

const char *at_http_stream_peer(const at_http_stream_t *st)
{
    return st->peer;
}

/* Loop thread: publishes how much of c->out is unwritten. */
void at_http__stream_account(at_http__conn_t *c)
{
    if (c->stream)
        atomic_store(&c->stream->outstanding, c->out.len - c->out_off);
}

/* The connection closed: the stream is gone for its owner. Loop thread
 * (or teardown once the loop ended). */
void at_http__stream_detach(at_http__conn_t *c)
{
    at_http_stream_t *st = c->stream;
    c->stream = NULL;
    st->conn = NULL;
    atomic_store(&st->closed, true);
    atomic_store(&st->outstanding, 0);
    if (st->ws)
        wslay_event_context_free(st->ws);
    st->ws = NULL;
    free(st->pre);
    st->pre = NULL;
    if (st->gone)
        st->gone(st->ud, st);
    at_http__stream_unref(st);
}

/* ---- queueing from any thread ----------------------------------------- */

static int at_http__stream_push(at_http_stream_t *st, int op, const char *data, size_t len)
{
    if (atomic_load(&st->closed))
        return AT_ECLOSED;
    if (op == AT_HTTP__OP_DATA) {
        size_t q = atomic_fetch_add(&st->queued, len);
        if (q + len + atomic_load(&st->outstanding) > st->max_unsent) {
            atomic_fetch_sub(&st->queued, len);
            return AT_EFULL;
        }
    }
    at_http__async_t *a = at_xcalloc(1, sizeof *a);
    a->st = st;
    a->op = op;
    a->len = len;
    if (op == AT_HTTP__OP_DATA) {
        a->data = at_xmalloc(len ? len : 1);
        memcpy(a->data, data, len);
    }
    atomic_fetch_add(&st->refs, 1);
    at_http__queue(st->loop, a);
    return 0;
}

int at_http_stream_send(at_http_stream_t *st, const char *data, size_t len)
{
    return at_http__stream_push(st, AT_HTTP__OP_DATA, data, len);
}

int at_http_stream_ping(at_http_stream_t *st)
{
    if (!st->ws && !atomic_load(&st->closed))
        return 0;
    return at_http__stream_push(st, AT_HTTP__OP_PING, NULL, 0);
}

void at_http_stream_end(at_http_stream_t *st, int going_away)
{
    (void)at_http__stream_push(st, AT_HTTP__OP_END, NULL, going_away ? 1 : 0);
}

/* ---- WebSocket over the connection ------------------------------------ */

static ssize_t at_http__ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                                void *ud)
{
    (void)flags;
    at_http__conn_t *c = ud;
    at_http_stream_t *st = c->stream;
    if (st->pre_off < st->pre_len) {
        size_t n = AT_MIN(len, st->pre_len - st->pre_off);
        memcpy(buf, st->pre + st->pre_off, n);
        st->pre_off += n;
        return (ssize_t)n;
    }
    if (!c->may_read) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n > 0) {
            if ((size_t)n < len)
                c->may_read = false; /* drained */
            return n;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            c->may_read = false;
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        c->rd_eof = true; /* EOF or error: the client is gone */
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
}

/* Frames go to the connection's output buffer (bounded by the cap in
 * front of wslay's queue) and leave through the usual flush. */
static ssize_t at_http__ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                                int flags, void *ud)
{
    (void)ctx;
    (void)flags;
    at_http__conn_t *c = ud;
    int rc = at_buf_append(&c->out, data, len);
    AT_ASSERT(rc == 0);
    return (ssize_t)len;
}

static void at_http__ws_msg(wslay_event_context_ptr ctx,
                            const struct wslay_event_on_msg_recv_arg *m, void *ud)
{
    (void)ctx;
    at_http__conn_t *c = ud;
    at_http_stream_t *st = c->stream;
    if (m->opcode == WSLAY_TEXT_FRAME && st->on_msg)
        st->on_msg(st->ud, st, (const char *)m->msg, m->msg_length);
    /* binary messages are ignored; ping, pong and close wslay handles */
}

/* Writes what wslay has queued and ends the connection once both sides
 * closed. Loop thread. */
static void at_http__ws_pump(at_http__conn_t *c)
{
    at_http_stream_t *st = c->stream;
    if (wslay_event_send(st->ws) != 0) {
        at_http__conn_close(c);
        return;
    }
    if (!wslay_event_want_read(st->ws) && !wslay_event_want_write(st->ws))
        c->closing = true; /* close frames exchanged (or a protocol error sent) */
    (void)at_http__conn_flush(c);
}

/* ---- events ------------------------------------------------------------- */

/* Reads and drops what an SSE client sends; EOF or error closes. */
static int at_http__sse_read(at_http__conn_t *c)
{
    char junk[512];
    while (c->may_read) {
        ssize_t n = recv(c->fd, junk, sizeof junk, 0);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            c->may_read = false;
            return 0;
        }
        at_http__conn_close(c);
        return -1;
    }
    return 0;
}

void at_http__stream_event(at_http__conn_t *c, uint32_t events)
{
    at_http_stream_t *st = c->stream;
    if (!st->ws) {
        if (at_http__sse_read(c) == 0 && (events & EPOLLOUT))
            (void)at_http__conn_flush(c);
        return;
    }
    if ((c->may_read || st->pre_off < st->pre_len) && wslay_event_want_read(st->ws)) {
        if (wslay_event_recv(st->ws) != 0) {
            /* a protocol error (wslay queued its close, e.g. 1009): send
             * it and end; the client gone: close */
            if (c->rd_eof || wslay_event_send(st->ws) != 0) {
                at_http__conn_close(c);
                return;
            }
            atomic_store(&st->closed, true);
            c->closing = true;
            (void)at_http__conn_flush(c);
            return;
        }
    } else if (c->may_read) {
        char junk[512]; /* our close is sent: drop what still comes */
        while (recv(c->fd, junk, sizeof junk, 0) > 0) {
        }
        c->may_read = false;
    }
    if (c->fd >= 0 && c->stream)
        at_http__ws_pump(c);
}

static void at_http__stream_finish(at_http__conn_t *c, int going_away)
{
    at_http_stream_t *st = c->stream;
    atomic_store(&st->closed, true);
    if (st->ws) {
        (void)wslay_event_queue_close(
            st->ws, going_away ? WSLAY_CODE_GOING_AWAY : WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
        if (wslay_event_send(st->ws) != 0) {
            at_http__conn_close(c);
            return;
        }
    }
    c->closing = true;
    (void)at_http__conn_flush(c);
}

void at_http__stream_stop(at_http__conn_t *c)
{
    if (c->stream && c->stream->ws)
        at_http__stream_finish(c, 1);
    else
        at_http__conn_close(c);
}

/* Loop thread: one queued operation. Frees a's data and its reference,
 * not a itself. */
void at_http__stream_op(at_http__async_t *a)
{
    at_http_stream_t *st = a->st;
    if (a->op == AT_HTTP__OP_DATA)
        atomic_fetch_sub(&st->queued, a->len);
    at_http__conn_t *c = st->conn;
    if (c && c->fd >= 0 && !c->closing && !c->lingering) {
        if (a->op == AT_HTTP__OP_END) {
            at_http__stream_finish(c, (int)a->len);
        } else if (!st->ws) {
            if (a->op == AT_HTTP__OP_DATA) {
                int rc = at_buf_append(&c->out, a->data, a->len);
                AT_ASSERT(rc == 0);
                (void)at_http__conn_flush(c);
            }
        } else {
            struct wslay_event_msg m = {
                .opcode = a->op == AT_HTTP__OP_DATA ? WSLAY_TEXT_FRAME : WSLAY_PING,
                .msg = (const uint8_t *)a->data,
                .msg_length = a->op == AT_HTTP__OP_DATA ? a->len : 0,
            };
            if (wslay_event_queue_msg(st->ws, &m) == 0)
                at_http__ws_pump(c);
        }
    }
    free(a->data);
    a->data = NULL;
    at_http__stream_unref(st);
}

/* ---- starting ----------------------------------------------------------- */

at_http_stream_t *at_http_stream_start(at_http_req_t *req, int status, const char *ctype,
                                       const char *headers, size_t max_unsent, at_http_gone_fn gone,
                                       void *ud)
{
    at_http__conn_t *c = req->priv;
    AT_ASSERT(c->in_flight && !c->responded && !c->deferred);
    at_http__resp_stream_head(&c->out, status, ctype, headers);
    return at_http__stream_new(c, max_unsent, gone, ud);
}

/* The handler returned with a stream started on c: drop the request, keep
 * for a WebSocket what the client sent after it, give back the read
 * buffer and send the head. Loop thread. */
void at_http__stream_begin(at_http__conn_t *c)
{
    at_http_stream_t *st = c->stream;
    size_t end = c->roff + c->need;
    if (st->ws && end < c->rlen) {
        st->pre_len = c->rlen - end;
        st->pre = at_xmalloc(st->pre_len);
        memcpy(st->pre, c->rbuf + end, st->pre_len);
    }
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = c->roff = c->need = c->scan = 0;
    c->in_flight = false;
    c->has_head = false;
    c->started = false;
    c->streaming = true;
    at_http__timer_clear(c);
    if (st->ws)
        at_http__stream_event(c, EPOLLOUT);
    else
        (void)at_http__conn_flush(c);
}

int at_http_ws_requested(const at_http_req_t *req)
{
    size_t n = 0;
    const char *v = at_http_header(req, "upgrade", &n);
    return v && n == 9 && at_http__ieq(v, n, "websocket", 9);
}

/* True when the comma-separated header value v holds token tok (any
 * case). */
bool at_http__has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (at_http__ieq(v + s, e - s, tok, tl))
            return true;
    }
    return false;
}

/* True when v is the base64 of 16 bytes (RFC 6455 §4.1). */
bool at_http__ws_key_valid(const char *v, size_t n)
{
    unsigned char raw[24];
    if (n != 24 || v[22] != '=' || v[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        char c = v[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return false;
    }
    return EVP_DecodeBlock(raw, (const unsigned char *)v, 24) == 18;
}

/* Sec-WebSocket-Accept for key: base64(SHA-1(key GUID)), 28 characters
 * and a NUL into out. */
static void at_http__ws_accept_key(const char *key, size_t n, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char md[SHA_DIGEST_LENGTH];
    char buf[64 + sizeof guid];
    memcpy(buf, key, n);
    memcpy(buf + n, guid, sizeof guid - 1);
    SHA1((const unsigned char *)buf, n + sizeof guid - 1, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

/* Checks the upgrade request; NULL when fine, else the reason. */
static const char *at_http__ws_check(const at_http_req_t *req, bool *version)
{
    size_t n = 0;
    *version = false;
    if (!(req->method_len == 3 && !memcmp(req->method, "GET", 3)))
        return "a WebSocket upgrade is a GET";
    if (!at_http_ws_requested(req))
        return "Upgrade: websocket is required";
    const char *v = at_http_header(req, "connection", &n);
    if (!v || !at_http__has_token(v, n, "upgrade"))
        return "Connection: Upgrade is required";
    v = at_http_header(req, "sec-websocket-version", &n);
    if (!v || n != 2 || memcmp(v, "13", 2) != 0) {
        *version = true;
        return "only WebSocket version 13 is spoken";
    }
    v = at_http_header(req, "sec-websocket-key", &n);
    if (!v || !at_http__ws_key_valid(v, n))
        return "Sec-WebSocket-Key must be 16 bytes in base64";
    return NULL;
}

at_http_stream_t *at_http_ws_accept(at_http_req_t *req, const char *headers, size_t max_unsent,
                                    at_http_ws_msg_fn on_msg, at_http_gone_fn gone, void *ud)
{
    at_http__conn_t *c = req->priv;
    bool version = false;
    const char *why = at_http__ws_check(req, &version);
    if (why) {
        at_buf_t b;
        at_buf_init(&b, 0);
        at_buf_puts(&b, "{\"error\":{\"code\":\"bad_upgrade\",\"message\":");
        at_buf_json_str(&b, why, strlen(why));
        at_buf_puts(&b, "}}");
        at_http_respond(req, version ? 426 : 400, "application/json",
                        version ? "Sec-WebSocket-Version: 13\r\n" : NULL, b.data, b.len);
        at_buf_deinit(&b);
        return NULL;
    }
    size_t n = 0;
    const char *key = at_http_header(req, "sec-websocket-key", &n);
    char accept[29];
    at_http__ws_accept_key(key, n, accept);
    at_buf_puts(&c->out, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Accept: ");
    at_buf_puts(&c->out, accept);
    at_buf_puts(&c->out, "\r\n");
    if (headers)
        at_buf_puts(&c->out, headers);
    at_buf_puts(&c->out, "\r\n");
    at_http_stream_t *st = at_http__stream_new(c, max_unsent, gone, ud);
    st->on_msg = on_msg;
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = at_http__ws_recv,
        .send_callback = at_http__ws_send,
        .on_msg_recv_callback = at_http__ws_msg,
    };
    wslay_event_context_ptr ctx = NULL;
    if (wslay_event_context_server_init(&ctx, &cbs, c) != 0)
        at_panic(__FILE__, __LINE__, "wslay context");
    wslay_event_config_set_max_recv_msg_length(ctx, c->loop->srv->opts.max_body_bytes);
    st->ws = ctx;
    return st;
}
