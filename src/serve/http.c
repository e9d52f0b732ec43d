/* http.c - the HTTP/1.1 server: listeners, one epoll loop per thread,
 * timers, the async answer queue, and a graceful stop.
 *
 * An own loop over epoll rather than a library, chosen by measurement and by
 * what the packaged libraries cannot do (JSON error bodies, 431/408 with our
 * limits, a request timer that trickled bytes cannot extend):
 * docs/decisions/0001-http-server.md. Connections: http_conn.c; the parser:
 * http_parse.c; responses: http_resp.c; request accessors: http_req.c.
 *
 * THREAD SAFETY: at_http_new/run/free on one thread; at_http_stop from any
 * thread or a signal handler; at_http_stats from any thread.
 */
#include "http_int.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#define AT_HTTP__EVENTS 256
#define AT_HTTP__ACCEPT_BATCH 64
#define AT_HTTP__ACCEPT_PAUSE_NS (100 * 1000000LL) /* after EMFILE and friends */

/* ---- listening ------------------------------------------------------- */

/* Splits "host:port", "[v6]:port" or ":port" and resolves it. */
static int at_http__resolve(const char *listen, struct addrinfo **res, char *err, size_t errlen)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || !colon[1]) {
        (void)snprintf(err, errlen, "listen address '%s' has no port", listen);
        return -EINVAL;
    }
    char host[256];
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {
        listen++;
        hl -= 2;
    }
    if (hl >= sizeof host) {
        (void)snprintf(err, errlen, "listen address '%s' is too long", listen);
        return -EINVAL;
    }
    memcpy(host, listen, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    int rc = getaddrinfo(hl ? host : NULL, colon + 1, &hints, res);
    if (rc) {
        (void)snprintf(err, errlen, "listen address '%s': %s", listen, gai_strerror(rc));
        return -EINVAL;
    }
    return 0;
}

/* Returns a listening socket bound to sa, or -errno. */
static int at_http__listen_fd(const struct sockaddr *sa, socklen_t len, bool reuseport)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, zero = 0, rc = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        rc = -errno;
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (!rc && (bind(fd, sa, len) < 0 || listen(fd, SOMAXCONN) < 0))
        rc = -errno;
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

/* Binds every loop's listener: the first picks the address (and the port,
 * for ":0"), the others share it through SO_REUSEPORT. */
static int at_http__bind_all(at_http_server_t *s, char *err, size_t errlen)
{
    struct addrinfo *res = NULL;
    int rc = at_http__resolve(s->listen, &res, err, errlen);
    if (rc)
        return rc;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl = 0;
    bool reuse = s->nloops > 1;
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai && rc < 0; ai = ai->ai_next) {
        rc = at_http__listen_fd(ai->ai_addr, ai->ai_addrlen, reuse);
        if (rc >= 0) {
            s->loops[0].listen_fd = rc;
            sl = sizeof ss;
            if (getsockname(rc, (struct sockaddr *)&ss, &sl) < 0) {
                rc = -errno;
                close(s->loops[0].listen_fd);
                s->loops[0].listen_fd = -1;
            }
        }
    }
    freeaddrinfo(res);
    for (int i = 1; rc >= 0 && i < s->nloops; i++) {
        rc = at_http__listen_fd((struct sockaddr *)&ss, sl, true);
        if (rc >= 0)
            s->loops[i].listen_fd = rc;
    }
    if (rc < 0) {
        (void)snprintf(err, errlen, "listen on %s: %s", s->listen, at_strerror(rc));
        return rc;
    }
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* Arms or disarms the listener: accepting pauses at the loop's share of
 * max_connections, after accept errors, and for good once stopping.
 * Loop thread. */
void at_http__loop_listen(at_http__loop_t *l)
{
    bool want =
        !l->stopping && l->listen_fd >= 0 && !l->accept_retry_ns && l->nconns < l->max_conns;
    if (want == l->listening)
        return;
    struct epoll_event ev = {.events = want ? EPOLLIN : 0, .data.ptr = &l->listen_kind};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, l->listen_fd, &ev) == 0)
        l->listening = want;
}

static void at_http__loop_accept(at_http__loop_t *l)
{
    for (int i = 0; i < AT_HTTP__ACCEPT_BATCH && l->nconns < l->max_conns; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN) {
                AT_WARN("http: accept failed, pausing", "errno=%d", errno);
                l->accept_retry_ns = l->now_ns + AT_HTTP__ACCEPT_PAUSE_NS;
            }
            break;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        at_http__conn_accept(l, fd, (struct sockaddr *)&ss);
    }
    at_http__loop_listen(l);
}

/* ---- the loop -------------------------------------------------------- */

static void at_http__loop_drain(at_http__loop_t *l)
{
    uint64_t v;
    ssize_t r = read(l->wake_fd, &v, sizeof v);
    (void)r; /* EAGAIN: woken by an event already consumed */
    pthread_mutex_lock(&l->mu);
    at_http__async_t *a = l->aq_head;
    l->aq_head = l->aq_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    while (a) {
        at_http__async_t *next = a->next;
        if (a->op == AT_HTTP__OP_RESPOND)
            at_http__conn_async_done(a->conn, a->data, a->len);
        else
            at_http__stream_op(a);
        free(a);
        a = next;
    }
}

static void at_http__loop_begin_stop(at_http__loop_t *l)
{
    l->stopping = true;
    l->stop_deadline_ns = l->now_ns + AT_HTTP__GRACE_NS;
    if (l->listen_fd >= 0) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->listen_fd, NULL);
        close(l->listen_fd);
        l->listen_fd = -1;
        l->listening = false;
    }
    at_http__conn_t *c = l->conns;
    while (c) {
        at_http__conn_t *next = c->next;
        at_http__conn_stop(c);
        c = next;
    }
}

static void at_http__loop_expire(at_http__loop_t *l)
{
    at_http__tlist_t *lists[3] = {&l->request, &l->idle, &l->linger};
    for (int i = 0; i < 3; i++)
        while (lists[i]->head && lists[i]->head->deadline_ns <= l->now_ns)
            at_http__conn_timeout(lists[i]->head);
    if (l->accept_retry_ns && l->accept_retry_ns <= l->now_ns) {
        l->accept_retry_ns = 0;
        at_http__loop_listen(l);
    }
}

static void at_http__loop_reap(at_http__loop_t *l)
{
    while (l->dead) {
        at_http__conn_t *c = l->dead;
        l->dead = c->next;
        at_http__conn_free(c);
    }
}

/* Milliseconds until the earliest deadline, rounded up; -1: none. */
static int at_http__loop_wait_ms(const at_http__loop_t *l)
{
    int64_t next = INT64_MAX;
    const at_http__tlist_t *lists[3] = {&l->request, &l->idle, &l->linger};
    for (int i = 0; i < 3; i++)
        if (lists[i]->head)
            next = AT_MIN(next, lists[i]->head->deadline_ns);
    if (l->accept_retry_ns)
        next = AT_MIN(next, l->accept_retry_ns);
    if (l->stopping)
        next = AT_MIN(next, l->stop_deadline_ns);
    if (next == INT64_MAX)
        return -1;
    int64_t ms = (next - l->now_ns + 999999) / 1000000;
    return (int)AT_MAX(0, AT_MIN(ms, 60000));
}

static void at_http__loop_events(at_http__loop_t *l, struct epoll_event *evs, int n)
{
    for (int i = 0; i < n; i++) {
        int kind = *(int *)evs[i].data.ptr;
        if (kind == AT_HTTP__EV_CONN)
            at_http__conn_event(evs[i].data.ptr, evs[i].events);
        else if (kind == AT_HTTP__EV_LISTEN)
            at_http__loop_accept(l);
        else
            at_http__loop_drain(l);
    }
}

/* Closes what is left when the loop ends; deferred requests keep their
 * memory until answered or at_http_free(). */
static void at_http__loop_end(at_http__loop_t *l)
{
    at_http__conn_t *c = l->conns;
    while (c) {
        at_http__conn_t *next = c->next;
        at_http__conn_close(c);
        c = next;
    }
    at_http__loop_reap(l);
}

static void *at_http__loop_main(void *arg)
{
    at_http__loop_t *l = arg;
    struct epoll_event evs[AT_HTTP__EVENTS];
    for (;;) {
        l->now_ns = at_time_mono_ns();
        if (!l->stopping && atomic_load(&l->srv->stop))
            at_http__loop_begin_stop(l);
        if (l->stopping && (l->nconns == 0 || l->now_ns >= l->stop_deadline_ns))
            break;
        int n = epoll_wait(l->epfd, evs, AT_HTTP__EVENTS, at_http__loop_wait_ms(l));
        if (n < 0 && errno != EINTR) {
            AT_ERROR("http: epoll_wait failed", "errno=%d", errno);
            at_http_stop(l->srv);
            break;
        }
        l->now_ns = at_time_mono_ns();
        at_http__loop_events(l, evs, n);
        at_http__loop_expire(l);
        at_http__loop_reap(l);
    }
    at_http__loop_end(l);
    return NULL;
}

/* ---- the server ------------------------------------------------------ */

static int at_http__opts_fill(at_http_opts_t *o, char *err, size_t errlen)
{
    if (!o->handler || !o->listen) {
        (void)snprintf(err, errlen, "http: listen and handler are required");
        return -EINVAL;
    }
    if (o->threads <= 0)
        o->threads = 1;
    if (o->max_header_bytes == 0)
        o->max_header_bytes = (size_t)16 * 1024;
    if (o->max_body_bytes == 0)
        o->max_body_bytes = (size_t)1024 * 1024;
    if (o->idle_timeout_ms <= 0)
        o->idle_timeout_ms = 60000;
    if (o->request_timeout_ms <= 0)
        o->request_timeout_ms = 30000;
    if (o->max_connections <= 0)
        o->max_connections = 10000;
    o->max_header_bytes = AT_MAX(o->max_header_bytes, (size_t)64);
    o->max_header_bytes = AT_MIN(o->max_header_bytes, (size_t)1 << 20);
    return 0;
}

/* Lets the process hold max_connections sockets, within the hard limit. */
static void at_http__raise_nofile(int max_connections)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max_connections + 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : AT_MIN(want, rl.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        AT_INFO("http: raised the open file limit", "nofile=%llu", (unsigned long long)rl.rlim_cur);
}

static int at_http__loop_init(at_http_server_t *s, at_http__loop_t *l)
{
    l->kind = AT_HTTP__EV_WAKE;
    l->listen_kind = AT_HTTP__EV_LISTEN;
    l->srv = s;
    l->max_conns = (s->opts.max_connections + s->nloops - 1) / s->nloops;
    l->idle.dur_ns = s->opts.idle_timeout_ms * 1000000;
    l->request.dur_ns = s->opts.request_timeout_ms * 1000000;
    l->linger.dur_ns = AT_MIN(AT_HTTP__LINGER_NS, l->idle.dur_ns);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->wake_fd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->kind};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0)
        return -errno;
    ev.data.ptr = &l->listen_kind;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->listen_fd, &ev) < 0)
        return -errno;
    l->listening = true;
    return 0;
}

/* Creates the server and binds its listeners; returns 0 with *out owned
 * (free with at_http_free), or -errno / -EINVAL with err filled. opts is
 * copied (listen too). Any one thread. */
int at_http_new(at_http_server_t **out, const at_http_opts_t *opts, char *err, size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    at_http_server_t *s = at_xcalloc(1, sizeof *s);
    s->opts = *opts;
    int rc = at_http__opts_fill(&s->opts, err, errlen);
    if (rc)
        goto out;
    s->listen = at_xstrdup(opts->listen);
    s->opts.listen = s->listen;
    s->nloops = s->opts.threads;
    s->loops = at_xcalloc((size_t)s->nloops, sizeof *s->loops);
    for (int i = 0; i < s->nloops; i++) {
        s->loops[i].epfd = s->loops[i].wake_fd = s->loops[i].listen_fd = -1;
        pthread_mutex_init(&s->loops[i].mu, NULL);
    }
    rc = at_http__bind_all(s, err, errlen);
    for (int i = 0; !rc && i < s->nloops; i++)
        rc = at_http__loop_init(s, &s->loops[i]);
    if (rc) {
        if (!err[0])
            (void)snprintf(err, errlen, "http: %s", at_strerror(rc));
        goto out;
    }
    at_http__raise_nofile(s->opts.max_connections);
    *out = s;
    s = NULL;
out:
    at_http_free(s);
    return rc;
}

/* Returns the bound port. Any thread. */
int at_http_port(const at_http_server_t *s)
{
    return s->port;
}

/* Runs loop 0 on the calling thread and the others on their own threads
 * until at_http_stop(); returns 0, or -errno when a thread could not be
 * started (the server then stops). Once per server. */
int at_http_run(at_http_server_t *s)
{
    int started = 1, rc = 0;
    for (; started < s->nloops; started++) {
        rc = -pthread_create(&s->loops[started].thread, NULL, at_http__loop_main,
                             &s->loops[started]);
        if (rc) {
            AT_ERROR("http: cannot start a loop thread", "errno=%d", -rc);
            at_http_stop(s);
            break;
        }
    }
    at_http__loop_main(&s->loops[0]);
    for (int i = 1; i < started; i++)
        pthread_join(s->loops[i].thread, NULL);
    return rc;
}

/* Sets the stop flag and wakes every loop: an atomic store and write(2),
 * so it is async-signal-safe. Any thread, any number of times. */
void at_http_stop(at_http_server_t *s)
{
    int saved = errno; /* signal handlers must not clobber it */
    atomic_store(&s->stop, 1);
    for (int i = 0; i < s->nloops; i++) {
        uint64_t one = 1;
        ssize_t w = write(s->loops[i].wake_fd, &one, sizeof one);
        (void)w;
    }
    errno = saved;
}

/* Frees what a loop holds; its thread has ended (or never ran). */
static void at_http__loop_deinit(at_http__loop_t *l)
{
    at_http__async_t *a = l->aq_head;
    while (a) {
        at_http__async_t *next = a->next;
        if (a->op == AT_HTTP__OP_RESPOND)
            a->conn->in_flight = false;
        else
            at_http__stream_unref(a->st);
        free(a->data);
        free(a);
        a = next;
    }
    while (l->conns) {
        at_http__conn_t *c = l->conns;
        l->conns = c->next;
        at_http__conn_free(c);
    }
    if (l->listen_fd >= 0)
        close(l->listen_fd);
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    if (l->epfd >= 0)
        close(l->epfd);
    pthread_mutex_destroy(&l->mu);
}

/* Frees the server after at_http_run() returned (or instead of running
 * it), including requests still deferred: answering them afterwards is a
 * use after free. NULL is fine. */
void at_http_free(at_http_server_t *s)
{
    if (!s)
        return;
    for (int i = 0; s->loops && i < s->nloops; i++)
        at_http__loop_deinit(&s->loops[i]);
    free(s->loops);
    free(s->listen);
    free(s);
}

/* Copies the counters (each read atomically). Any thread. */
void at_http_stats(const at_http_server_t *s, at_http_stats_t *st)
{
    at_http_server_t *m = (at_http_server_t *)s; /* atomics load through non-const */
    st->connections_open = atomic_load(&m->st_open);
    st->connections_total = atomic_load(&m->st_total);
    st->requests_total = atomic_load(&m->st_requests);
    st->rejected_limits = atomic_load(&m->st_rejected);
}
