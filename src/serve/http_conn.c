/* http_conn.c - one client connection on its loop: reading and framing
 * requests, handing them to the handler one at a time (pipelined requests
 * wait their turn, so answers leave in order), buffering output for slow
 * readers, the three timeouts, and closing without losing the last answer.
 *
 * The socket is registered once, edge-triggered, for input and output, so a
 * request costs no epoll_ctl. A closed connection is freed at the end of the
 * loop iteration (events of the same batch may still name it), or, when its
 * request is deferred, once the deferred answer arrives.
 *
 * THREAD SAFETY: everything here runs on the connection's loop thread.
 */
#include "http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* ---- timers ---------------------------------------------------------- */

/* Takes c off its timer list, if any. Loop thread. */
void at_http__timer_clear(at_http__conn_t *c)
{
    at_http__tlist_t *tl = c->tlist;
    if (!tl)
        return;
    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else
        tl->head = c->tnext;
    if (c->tnext)
        c->tnext->tprev = c->tprev;
    else
        tl->tail = c->tprev;
    c->tprev = c->tnext = NULL;
    c->tlist = NULL;
}

/* Moves c to the tail of tl with deadline start_ns + tl->dur_ns; start_ns
 * never goes back in time, so each list stays sorted. Loop thread. */
void at_http__timer_set(at_http__conn_t *c, at_http__tlist_t *tl, int64_t start_ns)
{
    at_http__timer_clear(c);
    c->deadline_ns = start_ns + tl->dur_ns;
    AT_ASSERT(!tl->tail || tl->tail->deadline_ns <= c->deadline_ns);
    c->tlist = tl;
    c->tprev = tl->tail;
    if (tl->tail)
        tl->tail->tnext = c;
    else
        tl->head = c;
    tl->tail = c;
}

/* ---- lifecycle ------------------------------------------------------- */

static void at_http__conn_unlink(at_http__conn_t *c)
{
    at_http__loop_t *l = c->loop;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Hands c to the graveyard: freed after this loop iteration. */
static void at_http__conn_bury(at_http__conn_t *c)
{
    at_http__loop_t *l = c->loop;
    at_http__conn_unlink(c);
    c->next = l->dead;
    l->dead = c;
}

/* Closes c's socket (idempotent). c stays valid until the end of this
 * iteration, or, with a deferred request, until its answer arrives.
 * Loop thread. */
void at_http__conn_close(at_http__conn_t *c)
{
    at_http__loop_t *l = c->loop;
    if (c->fd < 0)
        return;
    at_http__timer_clear(c);
    close(c->fd);
    c->fd = -1;
    l->nconns--;
    if (c->stream)
        at_http__stream_detach(c);
    atomic_fetch_sub(&l->srv->st_open, 1);
    if (!c->in_flight)
        at_http__conn_bury(c);
    /* else: a deferred request still points into c; freed on its answer */
    at_http__loop_listen(l);
}

/* Frees c, its buffers and its socket. Loop thread, or any thread once
 * the loop has ended. */
void at_http__conn_free(at_http__conn_t *c)
{
    if (c->stream)
        at_http__stream_detach(c);
    if (c->fd >= 0)
        close(c->fd);
    at_buf_deinit(&c->out);
    free(c->rbuf);
    free(c);
}

static void at_http__peer_format(at_http__conn_t *c, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        (void)inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        (void)snprintf(c->peer, sizeof c->peer, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        (void)inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        (void)snprintf(c->peer, sizeof c->peer, "[%s]:%u", host, port);
    } else {
        (void)snprintf(c->peer, sizeof c->peer, "unknown");
    }
}

/* Takes ownership of the accepted socket fd (non-blocking) and starts its
 * idle timer; sa is the peer (borrowed). Loop thread. */
void at_http__conn_accept(at_http__loop_t *l, int fd, const struct sockaddr *sa)
{
    at_http__conn_t *c = at_xcalloc(1, sizeof *c);
    c->kind = AT_HTTP__EV_CONN;
    c->fd = fd;
    c->loop = l;
    c->req.priv = c;
    at_buf_init(&c->out, 0);
    at_http__peer_format(c, sa);
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    l->nconns++;
    atomic_fetch_add(&l->srv->st_open, 1);
    atomic_fetch_add(&l->srv->st_total, 1);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        AT_WARN("http: epoll_ctl failed", "errno=%d", errno);
        at_http__conn_close(c);
        return;
    }
    at_http__timer_set(c, &l->idle, l->now_ns);
}

/* ---- output ---------------------------------------------------------- */

static void at_http__conn_linger(at_http__conn_t *c);

/* Sends what is buffered. Returns 0, or -1 when the connection closed. */
static int at_http__conn_flush_raw(at_http__conn_t *c)
{
    while (c->out_off < c->out.len) {
        size_t want = c->out.len - c->out_off;
        ssize_t n = send(c->fd, c->out.data + c->out_off, want, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0; /* EPOLLOUT will say when */
        if (n < 0) {
            at_http__conn_close(c);
            return -1;
        }
        c->out_off += (size_t)n;
        if ((size_t)n < want)
            return 0; /* socket buffer full: wait for the EPOLLOUT edge */
    }
    c->out_off = 0;
    if (c->out.cap > 4 * AT_HTTP__OUT_HIGH) {
        at_buf_deinit(&c->out); /* give back memory a big answer took */
        at_buf_init(&c->out, 0);
    } else {
        at_buf_reset(&c->out);
    }
    if (c->closing && !c->in_flight) {
        at_http__conn_linger(c);
        return -1;
    }
    return 0;
}

/* Sends what is buffered; on a stream also publishes what is left for the
 * cap, gives back the output buffer once empty and runs the idle timer
 * while a reader stalls (it moves on progress). Returns 0, or -1 when the
 * connection closed (or lingers). Loop thread. */
int at_http__conn_flush(at_http__conn_t *c)
{
    if (!c->streaming)
        return at_http__conn_flush_raw(c);
    at_http__loop_t *l = c->loop;
    size_t before = c->out.len - c->out_off;
    int rc = at_http__conn_flush_raw(c);
    if (rc < 0)
        return rc;
    size_t left = c->out.len - c->out_off;
    if (left == 0) {
        at_buf_deinit(&c->out); /* an idle stream holds no output memory */
        at_buf_init(&c->out, 0);
        at_http__timer_clear(c);
    } else if (left < before || !c->tlist) {
        at_http__timer_set(c, &l->idle, l->now_ns);
    }
    at_http__stream_account(c);
    return 0;
}

/* Reads and drops input while lingering; closes on EOF or error. */
static void at_http__conn_linger_read(at_http__conn_t *c)
{
    char junk[4096];
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(c->fd, junk, sizeof junk, 0);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        at_http__conn_close(c); /* EOF or error */
        return;
    }
}

/* The answer is out: shut our side and read until the client closes, so
 * unread input does not make the kernel reset the connection (which could
 * destroy the answer before the client read it). */
static void at_http__conn_linger(at_http__conn_t *c)
{
    at_http__loop_t *l = c->loop;
    if (c->rd_eof || shutdown(c->fd, SHUT_WR) < 0) {
        at_http__conn_close(c);
        return;
    }
    c->lingering = true;
    at_http__timer_set(c, &l->linger, l->now_ns);
    at_http__conn_linger_read(c);
}

/* ---- input ----------------------------------------------------------- */

/* Makes room to read: compacts, then doubles up to what the current
 * request may occupy. */
static void at_http__conn_space(at_http__conn_t *c)
{
    const at_http_opts_t *o = &c->loop->srv->opts;
    if (c->rcap > c->rlen)
        return;
    uintptr_t before = (uintptr_t)c->rbuf + c->roff;
    if (c->roff > 0) {
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    if (c->rcap == c->rlen) {
        size_t limit = c->has_head ? c->need : o->max_header_bytes;
        size_t ncap = AT_MAX(c->rcap * 2, (size_t)AT_HTTP__RBUF_MIN);
        ncap = AT_MIN(ncap, AT_MAX(limit, (size_t)AT_HTTP__RBUF_MIN));
        AT_ASSERT(ncap > c->rcap);
        c->rbuf = at_xrealloc(c->rbuf, ncap);
        c->rcap = ncap;
    }
    if (c->has_head) /* the parsed head points into the buffer */
        at_http__head_rebase(&c->head, before, (uintptr_t)c->rbuf);
}

/* Reads once. Returns 0, or -1 when the connection closed. */
static int at_http__conn_read(at_http__conn_t *c)
{
    at_http__conn_space(c);
    size_t room = c->rcap - c->rlen;
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, room, 0);
    if (n > 0) {
        c->rlen += (size_t)n;
        if ((size_t)n < room)
            c->may_read = false; /* drained: the next byte brings a new edge */
        return 0;
    }
    if (n == 0) {
        c->rd_eof = true;
        c->may_read = false;
        return 0;
    }
    if (errno == EAGAIN) {
        c->may_read = false;
        return 0;
    }
    if (errno == EINTR)
        return 0;
    at_http__conn_close(c);
    return -1;
}

/* ---- requests -------------------------------------------------------- */

/* Answers with a JSON error of the server's own and stops reading. */
static int at_http__conn_fail(at_http__conn_t *c, int status, const char *code, const char *msg)
{
    at_http__resp_error(&c->out, status, code, msg);
    if (status == 408 || status == 413 || status == 431 || status == 503)
        atomic_fetch_add(&c->loop->srv->st_rejected, 1);
    c->closing = true;
    c->started = false;
    at_http__timer_clear(c);
    return -1;
}

static void at_http__conn_finish(at_http__conn_t *c);

static void at_http__conn_dispatch(at_http__conn_t *c)
{
    at_http__loop_t *l = c->loop;
    const at_http__head_t *h = &c->head;
    at_http_req_t *r = &c->req;
    r->method = h->method;
    r->method_len = h->method_len;
    r->path = h->path;
    r->path_len = h->path_len;
    r->query = h->query;
    r->query_len = h->query_len;
    r->body = c->rbuf + c->roff + h->head_len;
    r->body_len = (size_t)h->content_length;
    c->in_flight = true;
    c->responded = false;
    c->deferred = false;
    c->resp_close = !h->keep_alive || l->stopping;
    c->resp_no_body = at_http__ieq(h->method, h->method_len, "HEAD", 4);
    at_http__timer_clear(c);
    atomic_fetch_add(&l->srv->st_requests, 1);
    int rc = l->srv->opts.handler(l->srv->opts.ud, r);
    if (c->stream) {
        at_http__stream_begin(c);
        return;
    }
    if (rc == AT_HTTP_DEFERRED && !c->responded) {
        c->deferred = true;
        return;
    }
    if (!c->responded) {
        AT_ERROR("http: handler returned without a response", "path=\"%.*s\"",
                 (int)AT_MIN(r->path_len, 200), r->path);
        at_http_respond_error(r, 500, "internal_error", "no response was produced");
    }
    at_http__conn_finish(c);
}

/* The current request is answered: step past it. */
static void at_http__conn_finish(at_http__conn_t *c)
{
    c->in_flight = false;
    c->deferred = false;
    c->roff += c->need;
    c->has_head = false;
    c->started = false;
    c->continue_sent = false;
    c->need = 0;
    c->scan = 0;
    if (c->roff == c->rlen) {
        c->roff = c->rlen = 0;
        if (c->rcap > 16 * AT_HTTP__RBUF_MIN) {
            free(c->rbuf); /* give back what a big body took */
            c->rbuf = NULL;
            c->rcap = 0;
        }
    }
    if (c->resp_close || c->loop->stopping)
        c->closing = true;
}

/* Parses the head at roff once it is complete and checks the limits. */
static int at_http__conn_head(at_http__conn_t *c, size_t avail)
{
    const at_http_opts_t *o = &c->loop->srv->opts;
    const char *p = c->rbuf + c->roff;
    size_t hl = at_http__head_end(p, avail, &c->scan);
    if (!hl && avail < o->max_header_bytes)
        return 0;
    if (!hl || hl > o->max_header_bytes)
        return at_http__conn_fail(c, 431, "header_too_large",
                                  "request line and headers exceed the server's limit");
    int rc = at_http__parse(p, hl, &c->head);
    if (rc)
        return at_http__conn_fail(c, c->head.err_status, c->head.err_code, c->head.err_msg);
    if (c->head.content_length > o->max_body_bytes)
        return at_http__conn_fail(c, 413, "body_too_large",
                                  "request body exceeds the server's limit");
    c->has_head = true;
    c->need = hl + (size_t)c->head.content_length;
    return 1;
}

/* Takes the next request from the buffer. Returns 1 when one was handed to
 * the handler, 0 when more bytes are needed, -1 when the connection stops
 * reading (an error answer is queued). */
static int at_http__conn_next(at_http__conn_t *c)
{
    at_http__loop_t *l = c->loop;
    size_t avail = c->rlen - c->roff;
    if (!c->started) {
        if (avail == 0)
            return 0;
        size_t skip = at_http__skip_crlf(c->rbuf + c->roff, avail);
        c->roff += skip;
        avail -= skip;
        if (avail == 0)
            return 0;
        c->started = true;
        c->req.start_ns = l->now_ns;
        at_http__timer_set(c, &l->request, l->now_ns);
    }
    if (!c->has_head) {
        int rc = at_http__conn_head(c, avail);
        if (rc <= 0)
            return rc;
    }
    if (avail < c->need) {
        if (c->head.expect_continue && !c->continue_sent && c->head.minor >= 1) {
            int rc = at_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            AT_ASSERT(rc == 0);
            c->continue_sent = true;
        }
        return 0;
    }
    at_http__conn_dispatch(c);
    return 1;
}

/* Sets the timer the connection's state calls for. */
static void at_http__conn_retime(at_http__conn_t *c)
{
    at_http__loop_t *l = c->loop;
    if (c->fd < 0 || c->lingering || c->streaming)
        return;
    if (c->in_flight)
        at_http__timer_clear(c);
    else if (!c->started)
        at_http__timer_set(c, &l->idle, l->now_ns); /* activity moves it */
    /* started: the request timer runs from the first byte, untouched */
}

/* Takes requests until one is deferred, output backs up, more bytes are
 * needed and none are ready, or the connection closes. */
static void at_http__conn_drive(at_http__conn_t *c)
{
    while (c->fd >= 0 && !c->in_flight && !c->closing && !c->streaming) {
        if (c->out.len - c->out_off > AT_HTTP__OUT_HIGH)
            break;
        int rc = at_http__conn_next(c);
        if (rc > 0)
            continue;
        if (rc < 0)
            break;
        if (c->rd_eof) {
            if (c->rlen > c->roff) {
                at_http__conn_close(c); /* gave up mid-request */
                return;
            }
            c->closing = true;
            break;
        }
        if (!c->may_read || at_http__conn_read(c) < 0)
            break;
    }
    if (c->fd >= 0 && at_http__conn_flush(c) == 0)
        at_http__conn_retime(c);
}

/* ---- events from the loop -------------------------------------------- */

/* Acts on epoll events for c: reads, takes requests, writes. May close c.
 * Loop thread. */
void at_http__conn_event(at_http__conn_t *c, uint32_t events)
{
    if (c->fd < 0)
        return;
    if (events & EPOLLERR) {
        at_http__conn_close(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
        c->may_read = true;
    if (c->lingering) {
        at_http__conn_linger_read(c);
        return;
    }
    if (c->streaming) {
        at_http__stream_event(c, events);
        return;
    }
    if (c->in_flight) {
        if ((events & EPOLLOUT) && c->out_off < c->out.len)
            at_http__conn_flush(c); /* a 100 Continue, or earlier answers */
        return;
    }
    at_http__conn_drive(c);
}

/* c's deadline passed: a request in progress gets 408, anything else is
 * closed. Moves c to another list or closes it. Loop thread. */
void at_http__conn_timeout(at_http__conn_t *c)
{
    at_http__loop_t *l = c->loop;
    if (c->lingering || c->tlist != &l->request || c->out_off < c->out.len) {
        at_http__conn_close(c); /* idle, stalled reader, or done lingering */
        return;
    }
    at_http__conn_fail(c, 408, "request_timeout", "the request did not arrive in time");
    if (at_http__conn_flush(c) == 0)
        at_http__timer_set(c, &l->idle, l->now_ns);
}

/* The deferred answer for c's request: takes ownership of data (len
 * bytes, a whole response), sends it and goes on with pipelined requests;
 * frees c when its client already left. Loop thread. */
void at_http__conn_async_done(at_http__conn_t *c, char *data, size_t len)
{
    AT_ASSERT(c->in_flight && c->deferred);
    c->responded = true;
    if (c->fd < 0) {
        c->in_flight = false; /* the client left: drop the answer */
        at_http__conn_bury(c);
        free(data);
        return;
    }
    int rc = at_buf_append(&c->out, data, len);
    AT_ASSERT(rc == 0);
    free(data);
    at_http__conn_finish(c);
    at_http__conn_drive(c);
}

/* The server is stopping: closes c when it is idle; otherwise it closes
 * after its current request. Loop thread. */
void at_http__conn_stop(at_http__conn_t *c)
{
    if (c->fd >= 0 && c->streaming && !c->lingering && !c->closing) {
        at_http__stream_stop(c); /* WebSocket: close frame 1001; SSE: close */
        return;
    }
    if (c->fd < 0 || c->in_flight || c->started || c->lingering)
        return; /* these finish (or time out) on their own */
    c->closing = true;
    if (c->out_off == c->out.len)
        at_http__conn_close(c); /* idle keep-alive: nothing to lose */
}
