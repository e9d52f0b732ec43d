/* load_run.c - the open-loop scheduler of `attune load`.
 *
 * Batch k is due at a fixed instant, t0 + (events up to the end of batch k)
 * / rate, whatever the server does: that is what makes the loop open. A due
 * batch goes out on the first idle keep-alive connection; while every
 * connection is busy it waits (nothing is built yet, so a backlog costs no
 * memory), and its latency keeps counting. Latency is measured from the
 * intended instant, never from the actual send, so a slow server cannot
 * hide its stalls by slowing the generator down (coordinated omission, as
 * wrk2 corrects it).
 *
 * A batch answered 429 or 503 is sent again, the same bytes with the same
 * event_ids, after Retry-After; one whose connection failed is sent again
 * at once on another connection (the server drops repeats by event_id).
 * Other statuses fail the batch. After the last intended send the run
 * waits at most drain_ms for the stragglers.
 *
 * One thread: epoll (edge-triggered) over the connections plus a timerfd
 * armed at the next instant something is due.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "load.h"

#define AT_LOAD_HEAD_MAX 1024
#define AT_LOAD_BACKOFF_MIN_NS 50000000LL   /* 50 ms after a failed connection */
#define AT_LOAD_BACKOFF_MAX_NS 1000000000LL /* doubling up to 1 s */
#define AT_LOAD_RETRY_DEFAULT_MS 1000       /* 429/503 without Retry-After */
#define AT_LOAD_MAX_FAILURE_LOGS 3

static volatile sig_atomic_t at_load__stop;

/* Asks the running at_load_run() to stop scheduling (a second call: to
 * stop waiting). Async-signal-safe. */
void at_load_request_stop(void)
{
    at_load__stop++;
}

typedef struct at_load_batch at_load_batch_t;
struct at_load_batch {
    uint64_t first;        /* counter of its first event */
    uint32_t n;            /* events in it */
    int64_t intended_ns;   /* when it was due the first time */
    int64_t not_before_ns; /* a retry waits until then */
    char head[AT_LOAD_HEAD_MAX];
    size_t head_len;
    at_buf_t body;
    at_load_batch_t *next; /* in the retry or free list */
};

typedef enum { AT_LOAD_DOWN, AT_LOAD_CONNECTING, AT_LOAD_IDLE, AT_LOAD_BUSY } at_load_cstate_t;

typedef struct at_load_conn {
    int fd;
    at_load_cstate_t state;
    int64_t reconnect_ns;   /* DOWN: open again at this time */
    int64_t backoff_ns;     /* the next failure's wait */
    at_load_batch_t *batch; /* BUSY: the request on the wire */
    size_t sent;            /* bytes of head + body written */
    at_load_resp_t resp;
} at_load_conn_t;

typedef struct at_load_runner {
    const at_load_opts_t *o;
    at_load_report_t *rep;
    at_load_gen_t gen;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char hostport[300];
    int ep, tfd;
    int64_t armed_ns; /* the timerfd's current expiry, 0 none */
    at_load_conn_t *conns;
    int64_t t0_ns, deadline_ns;
    int64_t wall0_ms; /* the wall clock at t0 */
    uint64_t total_events;
    uint64_t total; /* batches planned */
    uint64_t next;  /* batches built so far */
    uint64_t inflight;
    at_load_batch_t *retry, *spare;
    uint8_t *rejected; /* o->batch flags for the current answer */
    FILE *acked;
    int64_t last_answer_ns;
    int failure_logs;
    int stops_seen;
} at_load_runner_t;

/* ---- batches ------------------------------------------------------------ */

static int64_t batch_due_ns(const at_load_runner_t *r, uint64_t k)
{
    uint64_t end = AT_MIN((k + 1) * (uint64_t)r->o->batch, r->total_events);
    return r->t0_ns + (int64_t)((double)end * 1e9 / r->o->rate);
}

/* Builds batch number r->next from the generator. */
static at_load_batch_t *batch_build(at_load_runner_t *r)
{
    at_load_batch_t *b = r->spare;
    if (b) {
        r->spare = b->next;
    } else {
        b = at_xcalloc(1, sizeof(*b));
        at_buf_init(&b->body, 0);
    }
    uint64_t k = r->next++;
    b->first = r->gen.next_event;
    b->n = (uint32_t)AT_MIN((uint64_t)r->o->batch, r->total_events - k * r->o->batch);
    b->intended_ns = batch_due_ns(r, k);
    b->not_before_ns = 0;
    b->next = NULL;
    /* The events happened when the batch was due, whenever it leaves. */
    int64_t ev_ms = r->wall0_ms + (b->intended_ns - r->t0_ns) / 1000000;
    at_buf_reset(&b->body);
    int rc = at_buf_puts(&b->body, "{\"events\":[");
    for (uint32_t i = 0; rc == 0 && i < b->n; i++) {
        if (i)
            rc = at_buf_putc(&b->body, ',');
        if (rc == 0)
            rc = at_load_gen_next(&r->gen, ev_ms, &b->body);
    }
    if (rc == 0)
        rc = at_buf_puts(&b->body, "]}");
    AT_ASSERT(rc == 0); /* the body buffer has no cap */
    int hl = at_load_request_head(b->head, sizeof(b->head), r->hostport, r->o->key, b->body.len);
    AT_ASSERT(hl > 0); /* the key's length is checked by the options */
    b->head_len = (size_t)hl;
    return b;
}

static void batch_release(at_load_runner_t *r, at_load_batch_t *b)
{
    b->next = r->spare;
    r->spare = b;
}

/* Queues b to be sent again not before at_ns (FIFO among retries). */
static void batch_retry(at_load_runner_t *r, at_load_batch_t *b, int64_t at_ns)
{
    b->not_before_ns = at_ns;
    b->next = NULL;
    at_load_batch_t **p = &r->retry;
    while (*p)
        p = &(*p)->next;
    *p = b;
}

/* Returns the next batch to send at now, or NULL: retries first (they are
 * older), then the next due batch. */
static at_load_batch_t *batch_next(at_load_runner_t *r, int64_t now)
{
    for (at_load_batch_t **p = &r->retry; *p; p = &(*p)->next) {
        if ((*p)->not_before_ns <= now) {
            at_load_batch_t *b = *p;
            *p = b->next;
            b->next = NULL;
            return b;
        }
    }
    if (r->next < r->total && batch_due_ns(r, r->next) <= now)
        return batch_build(r);
    return NULL;
}

/* ---- connections ---------------------------------------------------------- */

static void conn_close(at_load_conn_t *c, int64_t reopen_ns)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->state = AT_LOAD_DOWN;
    c->reconnect_ns = reopen_ns;
    c->batch = NULL;
    at_load_resp_reset(&c->resp);
}

/* A connection broke (or never came up): its batch goes to another one at
 * once, and this one waits out its backoff before opening again. */
static void conn_fail(at_load_runner_t *r, at_load_conn_t *c, int64_t now)
{
    if (c->state == AT_LOAD_BUSY)
        r->rep->errors++;
    else
        r->rep->connect_errors++;
    if (c->batch) {
        r->inflight--;
        batch_retry(r, c->batch, now);
    }
    int64_t wait = c->backoff_ns;
    c->backoff_ns = AT_MIN(c->backoff_ns * 2, AT_LOAD_BACKOFF_MAX_NS);
    conn_close(c, now + wait);
}

static void conn_open(at_load_runner_t *r, at_load_conn_t *c, int64_t now)
{
    c->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_fail(r, c, now);
        return;
    }
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    r->rep->connects++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        conn_fail(r, c, now);
        return;
    }
    if (connect(c->fd, (struct sockaddr *)&r->addr, r->addrlen) == 0)
        c->state = AT_LOAD_IDLE;
    else if (errno == EINPROGRESS)
        c->state = AT_LOAD_CONNECTING;
    else
        conn_fail(r, c, now);
}

/* Writes what is left of the request. Returns 0 (done or would block) or a
 * negative errno. */
static int conn_flush(at_load_conn_t *c)
{
    const at_load_batch_t *b = c->batch;
    size_t total = b->head_len + b->body.len;
    while (c->sent < total) {
        struct iovec iov[2];
        int cnt = 0;
        if (c->sent < b->head_len) {
            iov[cnt++] = (struct iovec){(void *)(b->head + c->sent), b->head_len - c->sent};
            iov[cnt++] = (struct iovec){b->body.data, b->body.len};
        } else {
            size_t off = c->sent - b->head_len;
            iov[cnt++] = (struct iovec){b->body.data + off, b->body.len - off};
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        c->sent += (size_t)w;
    }
    return 0;
}

static void conn_send(at_load_runner_t *r, at_load_conn_t *c, at_load_batch_t *b, int64_t now)
{
    c->batch = b;
    c->sent = 0;
    c->state = AT_LOAD_BUSY;
    r->inflight++;
    if (conn_flush(c) < 0)
        conn_fail(r, c, now);
}

/* ---- answers ---------------------------------------------------------- */

static void log_failure(at_load_runner_t *r, const at_load_resp_t *resp, size_t body_len)
{
    if (r->failure_logs++ >= AT_LOAD_MAX_FAILURE_LOGS)
        return;
    int n = (int)AT_MIN(body_len, (size_t)300);
    at_logf(AT_LOG_WARN, "batch refused", "status=%d body=\"%.*s\"", resp->status, n,
            resp->in.data + resp->head_len);
}

static void write_acked(at_load_runner_t *r, const at_load_batch_t *b)
{
    char id[48];
    for (uint32_t i = 0; i < b->n; i++) {
        if (r->rejected[i])
            continue;
        int n = at_load_event_id(r->o->gen.seed, b->first + i, id);
        id[n] = '\n';
        (void)fwrite(id, 1, (size_t)n + 1, r->acked);
    }
    (void)fflush(r->acked);
}

static void on_ok(at_load_runner_t *r, at_load_batch_t *b, const char *body, size_t len,
                  int64_t now)
{
    at_load_report_t *rep = r->rep;
    at_load_ack_t ack;
    memset(r->rejected, 0, r->o->batch);
    if (at_load_ack_parse(body, len, &ack, r->rejected, b->n) < 0)
        rep->errors++; /* acknowledged all the same: it was a 200 */
    rep->accepted += ack.accepted > 0 ? (uint64_t)ack.accepted : 0;
    rep->duplicates += ack.duplicates > 0 ? (uint64_t)ack.duplicates : 0;
    rep->rejected += ack.rejected;
    rep->batches_acked++;
    rep->events_acked += b->n - AT_MIN((uint64_t)b->n, ack.rejected);
    at_load_hist_record(rep->hist, (uint64_t)(now - b->intended_ns));
    if (r->acked)
        write_acked(r, b);
    batch_release(r, b);
}

/* Acts on a whole answer to c's batch; c is then idle or closed. */
static void on_answer(at_load_runner_t *r, at_load_conn_t *c, size_t body_len, int64_t now)
{
    at_load_resp_t *resp = &c->resp;
    at_load_batch_t *b = c->batch;
    at_load_report_t *rep = r->rep;
    c->batch = NULL;
    r->inflight--;
    rep->requests++;
    r->last_answer_ns = now;
    c->backoff_ns = AT_LOAD_BACKOFF_MIN_NS;
    if (resp->status == 200) {
        rep->st_200++;
        on_ok(r, b, resp->in.data + resp->head_len, body_len, now);
    } else if (resp->status == 429 || resp->status == 503) {
        *(resp->status == 429 ? &rep->st_429 : &rep->st_503) += 1;
        int64_t ms = resp->retry_after_ms >= 0 ? resp->retry_after_ms : AT_LOAD_RETRY_DEFAULT_MS;
        batch_retry(r, b, now + ms * 1000000);
    } else {
        rep->st_other++;
        log_failure(r, resp, body_len);
        batch_release(r, b); /* failed for good: counted at the end */
    }
    if (resp->close) {
        conn_close(c, now);
        return;
    }
    at_load_resp_reset(resp);
    c->state = AT_LOAD_IDLE;
}

/* Reads what the peer sent. Returns 1 at end of stream, 0 when it would
 * block, or a negative code. */
static int conn_read_some(at_load_conn_t *c)
{
    at_buf_t *in = &c->resp.in;
    for (;;) {
        size_t room = AT_MIN((size_t)16384, in->max - in->len);
        if (room == 0 || at_buf_reserve(in, room) < 0)
            return AT_ETOOBIG;
        ssize_t n = read(c->fd, in->data + in->len, room);
        if (n > 0) {
            in->len += (size_t)n;
            in->data[in->len] = '\0';
            continue;
        }
        if (n == 0)
            return 1;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    }
}

static void conn_readable(at_load_runner_t *r, at_load_conn_t *c, int64_t now)
{
    int rc = conn_read_some(c);
    if (rc < 0) {
        conn_fail(r, c, now);
        return;
    }
    bool eof = rc == 1;
    if (c->state == AT_LOAD_IDLE) {
        /* The server closed a spare connection (or spoke out of turn). */
        if (c->resp.in.len)
            r->rep->errors++;
        if (eof || c->resp.in.len)
            conn_close(c, now);
        return;
    }
    size_t body_len = 0;
    rc = at_load_resp_parse(&c->resp, eof, &body_len);
    if (rc < 0)
        conn_fail(r, c, now);
    else if (rc == 1)
        on_answer(r, c, body_len, now);
    if (rc == 1 && eof && c->state == AT_LOAD_IDLE)
        conn_close(c, now);
}

static void conn_event(at_load_runner_t *r, at_load_conn_t *c, uint32_t ev, int64_t now)
{
    if (c->state == AT_LOAD_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
            conn_fail(r, c, now);
            return;
        }
        if (!(ev & EPOLLOUT) && !(ev & (EPOLLIN | EPOLLRDHUP)))
            return;
        c->state = AT_LOAD_IDLE;
    }
    if (c->state == AT_LOAD_BUSY && (ev & EPOLLOUT) && conn_flush(c) < 0) {
        conn_fail(r, c, now);
        return;
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_readable(r, c, now);
}

/* ---- the loop ------------------------------------------------------------ */

static bool work_left(const at_load_runner_t *r)
{
    return r->next < r->total || r->inflight > 0 || r->retry != NULL;
}

/* Opens connections whose wait is over, then gives due batches to idle
 * ones. */
static void dispatch(at_load_runner_t *r, int64_t now)
{
    for (uint32_t i = 0; i < r->o->connections && work_left(r); i++) {
        at_load_conn_t *c = &r->conns[i];
        if (c->state == AT_LOAD_DOWN && c->reconnect_ns <= now)
            conn_open(r, c, now);
    }
    for (uint32_t i = 0; i < r->o->connections; i++) {
        at_load_conn_t *c = &r->conns[i];
        if (c->state != AT_LOAD_IDLE)
            continue;
        at_load_batch_t *b = batch_next(r, now);
        if (!b)
            return;
        conn_send(r, c, b, now);
    }
}

/* The earliest instant after now at which something becomes due. */
static int64_t next_wake(const at_load_runner_t *r, int64_t now)
{
    int64_t t = r->deadline_ns;
    if (r->next < r->total) {
        int64_t due = batch_due_ns(r, r->next);
        if (due > now)
            t = AT_MIN(t, due);
    }
    for (const at_load_batch_t *b = r->retry; b; b = b->next)
        if (b->not_before_ns > now)
            t = AT_MIN(t, b->not_before_ns);
    for (uint32_t i = 0; i < r->o->connections; i++) {
        const at_load_conn_t *c = &r->conns[i];
        if (c->state == AT_LOAD_DOWN && c->reconnect_ns > now)
            t = AT_MIN(t, c->reconnect_ns);
    }
    return t;
}

static int arm_timer(at_load_runner_t *r, int64_t at_ns)
{
    if (at_ns == r->armed_ns)
        return 0;
    struct itimerspec its = {
        .it_value = {.tv_sec = at_ns / 1000000000, .tv_nsec = at_ns % 1000000000}};
    if (timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        return -errno;
    r->armed_ns = at_ns;
    return 0;
}

/* SIGINT: the first stops scheduling and drains; the second ends now. */
static void on_stop(at_load_runner_t *r, int64_t now)
{
    r->stops_seen = at_load__stop;
    if (r->stops_seen == 1) {
        r->total = r->next;
        r->deadline_ns = AT_MIN(r->deadline_ns, now + r->o->drain_ms * 1000000);
    } else {
        r->deadline_ns = now;
    }
}

static void on_events(at_load_runner_t *r, const struct epoll_event *evs, int n, int64_t now)
{
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == NULL) {
            uint64_t ticks;
            ssize_t rd = read(r->tfd, &ticks, sizeof(ticks)); /* only clears it */
            (void)rd;
            r->armed_ns = 0;
            continue;
        }
        conn_event(r, evs[i].data.ptr, evs[i].events, now);
    }
}

static int run_loop(at_load_runner_t *r)
{
    struct epoll_event evs[64];
    for (;;) {
        int64_t now = at_time_mono_ns();
        if (at_load__stop != r->stops_seen)
            on_stop(r, now);
        dispatch(r, now);
        if (!work_left(r) || now >= r->deadline_ns)
            return 0;
        int rc = arm_timer(r, next_wake(r, now));
        if (rc < 0)
            return rc;
        int n = epoll_wait(r->ep, evs, (int)AT_ARRAY_LEN(evs), -1);
        if (n < 0 && errno != EINTR)
            return -errno;
        on_events(r, evs, n, at_time_mono_ns());
    }
}

/* ---- setup and teardown ----------------------------------------------------- */

static int resolve(at_load_runner_t *r)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(r->o->host, r->o->port, &hints, &res);
    if (rc != 0) {
        at_logf(AT_LOG_ERROR, "cannot resolve the server", "host=%s error=\"%s\"", r->o->host,
                gai_strerror(rc));
        return AT_EINVALID;
    }
    memcpy(&r->addr, res->ai_addr, res->ai_addrlen);
    r->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    bool v6 = strchr(r->o->host, ':') != NULL;
    (void)snprintf(r->hostport, sizeof(r->hostport), "%s%s%s:%s", v6 ? "[" : "", r->o->host,
                   v6 ? "]" : "", r->o->port);
    return 0;
}

static int runner_init(at_load_runner_t *r, const at_load_opts_t *o, at_load_report_t *rep)
{
    memset(r, 0, sizeof(*r));
    r->o = o;
    r->rep = rep;
    r->ep = r->tfd = -1;
    int rc = resolve(r);
    if (rc < 0)
        return rc;
    if (o->acked && !(r->acked = fopen(o->acked, "a"))) {
        rc = -errno;
        at_logf(AT_LOG_ERROR, "cannot open the acked file", "path=%s error=\"%s\"", o->acked,
                at_strerror(rc));
        return rc;
    }
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (r->ep < 0 || r->tfd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, r->tfd, &ev) < 0)
        return -errno;
    at_load_gen_init(&r->gen, &o->gen);
    r->conns = at_xcalloc(o->connections, sizeof(*r->conns));
    for (uint32_t i = 0; i < o->connections; i++) {
        r->conns[i].fd = -1;
        r->conns[i].backoff_ns = AT_LOAD_BACKOFF_MIN_NS;
        at_load_resp_init(&r->conns[i].resp);
    }
    r->rejected = at_xcalloc(o->batch, 1);
    return 0;
}

static void batch_list_free(at_load_batch_t *b)
{
    while (b) {
        at_load_batch_t *next = b->next;
        at_buf_deinit(&b->body);
        free(b);
        b = next;
    }
}

static void runner_deinit(at_load_runner_t *r)
{
    for (uint32_t i = 0; r->conns && i < r->o->connections; i++) {
        at_load_conn_t *c = &r->conns[i];
        if (c->batch)
            batch_release(r, c->batch);
        conn_close(c, 0);
        at_load_resp_deinit(&c->resp);
    }
    free(r->conns);
    batch_list_free(r->retry);
    batch_list_free(r->spare);
    free(r->rejected);
    if (r->conns)
        at_load_gen_deinit(&r->gen);
    if (r->acked)
        (void)fclose(r->acked);
    if (r->tfd >= 0)
        close(r->tfd);
    if (r->ep >= 0)
        close(r->ep);
}

/* Runs the load described by o; see load.h. Thread: the caller's. */
int at_load_run(const at_load_opts_t *o, at_load_report_t *rep)
{
    AT_ASSERT(o->rate > 0 && o->batch > 0 && o->connections > 0 && rep->hist);
    at_load_runner_t r;
    at_load__stop = 0;
    int rc = runner_init(&r, o, rep);
    if (rc < 0)
        goto out;
    r.total_events =
        o->events ? o->events : (uint64_t)(o->rate * (double)o->duration_ms / 1000.0 + 0.5);
    r.total = (r.total_events + o->batch - 1) / o->batch;
    rep->target_rate = o->rate;
    r.t0_ns = at_time_mono_ns();
    r.wall0_ms = at_time_now_ms();
    r.deadline_ns = batch_due_ns(&r, r.total ? r.total - 1 : 0) + o->drain_ms * 1000000;
    rc = run_loop(&r);
    int64_t end = r.last_answer_ns ? r.last_answer_ns : at_time_mono_ns();
    rep->elapsed_s = (double)(end - r.t0_ns) / 1e9;
    rep->events_total = AT_MIN(r.total * o->batch, r.total_events);
    rep->batches_total = r.total;
    rep->batches_failed = r.total - rep->batches_acked;
    if (rc == 0)
        rc = rep->batches_failed ? 1 : 0;
out:
    runner_deinit(&r);
    return rc;
}
