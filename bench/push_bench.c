/* push_bench.c - latency from POST /v1/events to the Server-Sent Event it
 * causes at the subscriber (bench/push.sh).
 *
 * USERS subscribers each hold GET /v1/users/pb<i>/stream open. A sender
 * posts, open-loop at RATE events/s, batches of BATCH "ping" events, each
 * for the next user in turn; the server's trigger `ping` (on: type ==
 * "ping", final at once) fires for each, and the fire reaches the user's
 * stream. A user's k-th ping causes the user's k-th output (seq k in a
 * new data directory), which is how a message is matched to its event.
 * Per event: send (its intended time: a late sender counts against the
 * server, no coordinated omission), ack (the ingest answer read), sse (the
 * message read). Prints p50/p99/p99.9 of send->ack, ack->sse and
 * send->sse over the events after the warm-up, the events lost, and the
 * p50/p99 of fdatasync on this machine (a file in --fsync-dir).
 *
 * RATE 0: only opens the USERS streams and holds them until killed (for
 * the memory per connection); with BENCH_PUSH_WS=1 in the environment
 * they are WebSockets (GET /v1/ws?user_id=...) instead.
 *
 * usage: bench_push HOST:PORT USERS RATE SECONDS BATCH CONNS WARMUP_S FSYNC_DIR
 *        bench_push fsync DIR BYTES INTERVAL_US COUNT   (fsync_paced below)
 *        bench_push fsync-overlap DIR BYTES COUNT       (fsync_overlap below)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct sockaddr_in g_addr;
static bool g_ws; /* subscribers on WebSockets (hold mode only) */
static char g_host[64];
static int g_users, g_batch, g_per_user;
static int64_t *g_ack, *g_sse, *g_int; /* [user * per_user + k] */
static _Atomic int64_t g_received;
static atomic_bool g_stop;

static int connect_one(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr) < 0) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror("write");
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* ---- subscribers ---------------------------------------------------------------- */

typedef struct sub {
    int fd, user;
    char buf[16384];
    size_t len;
} sub_t;

/* One SSE frame: for "event: trigger" the user's seq from the data. */
static void on_frame(sub_t *s, const char *f, size_t n, int64_t t)
{
    const char *ev = memmem(f, n, "event: trigger\n", 15);
    if (!ev)
        return;
    const char *q = memmem(f, n, "\"seq\":", 6);
    if (!q)
        return;
    long k = strtol(q + 6, NULL, 10);
    if (k < 1 || k > g_per_user)
        return;
    int64_t *slot = &g_sse[(size_t)s->user * (size_t)g_per_user + (size_t)(k - 1)];
    if (*slot == 0) {
        *slot = t;
        atomic_fetch_add_explicit(&g_received, 1, memory_order_relaxed);
    }
}

static void *sub_main(void *arg)
{
    (void)arg;
    int ep = epoll_create1(0);
    sub_t *subs = calloc((size_t)g_users, sizeof *subs);
    char req[256];
    for (int i = 0; i < g_users; i++) {
        subs[i].fd = connect_one();
        subs[i].user = i;
        int n = g_ws ? snprintf(req, sizeof req,
                                "GET /v1/ws?user_id=pb%d HTTP/1.1\r\nHost: %s\r\n"
                                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n\r\n",
                                i, g_host)
                     : snprintf(req, sizeof req,
                                "GET /v1/users/pb%d/stream HTTP/1.1\r\nHost: %s\r\n"
                                "Accept: text/event-stream\r\n\r\n",
                                i, g_host);
        write_all(subs[i].fd, req, (size_t)n);
        fcntl(subs[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = &subs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &e);
    }
    struct epoll_event evs[256];
    while (!atomic_load(&g_stop)) {
        int n = epoll_wait(ep, evs, 256, 100);
        int64_t t = now_ns();
        for (int i = 0; i < n; i++) {
            sub_t *s = evs[i].data.ptr;
            for (;;) {
                ssize_t r = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
                if (r <= 0) {
                    if (r == 0) {
                        fprintf(stderr, "bench_push: stream of pb%d closed\n", s->user);
                        epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
                    }
                    break;
                }
                s->len += (size_t)r;
                size_t off = 0;
                for (;;) { /* frames end with a blank line; the head with \r\n\r\n */
                    char *e = memmem(s->buf + off, s->len - off, "\n\n", 2);
                    if (!e)
                        break;
                    size_t fl = (size_t)(e - (s->buf + off)) + 2;
                    on_frame(s, s->buf + off, fl, t);
                    off += fl;
                }
                memmove(s->buf, s->buf + off, s->len - off);
                s->len -= off;
                if (s->len == sizeof s->buf)
                    s->len = 0; /* a frame larger than the buffer: not ours */
            }
        }
    }
    return NULL;
}

/* ---- the sender ----------------------------------------------------------------- */

typedef struct conn {
    int fd;
    bool busy;
    int64_t first; /* index of the batch's first event */
    char in[8192];
    size_t inlen;
} conn_t;

/* The answer on c is complete: returns true and drops it from the buffer. */
static bool answer_done(conn_t *c)
{
    char *h = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (!h)
        return false;
    char *cl = memmem(c->in, (size_t)(h - c->in), "Content-Length: ", 16);
    if (!cl)
        cl = memmem(c->in, (size_t)(h - c->in), "content-length: ", 16);
    size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
    size_t total = (size_t)(h - c->in) + 4 + body;
    if (c->inlen < total)
        return false;
    if (strncmp(c->in, "HTTP/1.1 200", 12) != 0) {
        fprintf(stderr, "bench_push: ingest answered %.40s\n", c->in);
        exit(1);
    }
    memmove(c->in, c->in + total, c->inlen - total);
    c->inlen -= total;
    return true;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, int64_t *v, size_t n)
{
    if (!n) {
        printf("  %-9s no samples\n", name);
        return;
    }
    qsort(v, n, sizeof *v, cmp64);
    printf("  %-9s p50 %8.3f ms  p99 %8.3f ms  p99.9 %8.3f ms  max %8.3f ms\n", name,
           (double)v[n / 2] / 1e6, (double)v[(size_t)((double)n * 0.99)] / 1e6,
           (double)v[(size_t)((double)n * 0.999)] / 1e6, (double)v[n - 1] / 1e6);
}

static void fsync_probe(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/fsync-probe", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        return;
    }
    enum { N = 400 };
    int64_t v[N];
    char block[4096];
    memset(block, 'x', sizeof block);
    for (int i = 0; i < N; i++) {
        write_all(fd, block, sizeof block);
        int64_t t = now_ns();
        fdatasync(fd);
        v[i] = now_ns() - t;
    }
    close(fd);
    unlink(path);
    report("fdatasync", v, N);
}

/* `bench_push fsync DIR BYTES INTERVAL_US COUNT`: fdatasync of appends of
 * BYTES into a file preallocated like a log segment (64 MiB,
 * posix_fallocate), one every INTERVAL_US: the machine's sync for a group
 * commit of that size at that pace (bench/push.sh passes the run's own). */
static int fsync_paced(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bench_push fsync DIR BYTES INTERVAL_US COUNT\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/fsync-probe-paced", argv[2]);
    size_t bytes = (size_t)atol(argv[3]);
    int64_t gap = (int64_t)(atof(argv[4]) * 1000);
    int n = atoi(argv[5]);
    if (bytes < 1 || bytes > (1 << 20) || gap < 0 || n < 1 || n > 100000) {
        fprintf(stderr, "bench_push fsync: BYTES 1..1048576, INTERVAL_US >= 0, COUNT 1..100000\n");
        return 2;
    }
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0 || posix_fallocate(fd, 0, (off_t)64 << 20) != 0) {
        perror(path);
        return 1;
    }
    int64_t *v = calloc((size_t)n, sizeof *v);
    char *block = malloc(bytes);
    if (!v || !block)
        return 1;
    memset(block, 'x', bytes);
    off_t off = 0;
    int64_t due = now_ns();
    int i = 0;
    for (; i < n && off + (off_t)bytes <= ((off_t)64 << 20); i++) {
        due += gap;
        int64_t t = now_ns();
        if (due > t) {
            struct timespec ts = {(due - t) / 1000000000LL, (due - t) % 1000000000LL};
            nanosleep(&ts, NULL);
        }
        if (pwrite(fd, block, bytes, off) != (ssize_t)bytes) {
            perror(path);
            return 1;
        }
        off += (off_t)bytes;
        t = now_ns();
        fdatasync(fd);
        v[i] = now_ns() - t;
    }
    close(fd);
    unlink(path);
    report("fdatasync", v, (size_t)i);
    free(v);
    free(block);
    return 0;
}

/* One thread of fsync_overlap: COUNT appends of BYTES, each synced. */
typedef struct overlap {
    int fd;
    size_t bytes;
    int n;
    _Atomic int64_t *off;
    int64_t *v;
} overlap_t;

static void *overlap_main(void *arg)
{
    overlap_t *o = arg;
    char *block = malloc(o->bytes);
    if (!block)
        return NULL;
    memset(block, 'x', o->bytes);
    for (int i = 0; i < o->n; i++) {
        int64_t off = atomic_fetch_add(o->off, (int64_t)o->bytes);
        if (pwrite(o->fd, block, o->bytes, (off_t)off) != (ssize_t)o->bytes)
            break;
        int64_t t = now_ns();
        fdatasync(o->fd);
        o->v[i] = now_ns() - t;
    }
    free(block);
    return NULL;
}

/* `bench_push fsync-overlap DIR BYTES COUNT`: whether two syncs of one
 * file overlap on this disk (what a pipelined group commit would need):
 * one thread, then two at once, appending BYTES and syncing COUNT times
 * each, back to back, into a file whose blocks were written with zeros
 * first. Prints syncs a second and their p50/p99 for each. */
static int fsync_overlap(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_push fsync-overlap DIR BYTES COUNT\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/fsync-probe-overlap", argv[2]);
    size_t bytes = (size_t)atol(argv[3]);
    int n = atoi(argv[4]);
    if (bytes < 1 || bytes > (1 << 20) || n < 1 || n > 100000 ||
        (int64_t)bytes * n * 2 > ((int64_t)256 << 20)) {
        fprintf(stderr, "bench_push fsync-overlap: BYTES 1..1048576, COUNT 1..100000, "
                        "BYTES * COUNT * 2 at most 256 MiB\n");
        return 2;
    }
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    static char zeros[1 << 16];
    for (int64_t w = 0; w < (int64_t)bytes * n * 2; w += (int64_t)sizeof zeros)
        write_all(fd, zeros, sizeof zeros);
    fdatasync(fd);
    for (int threads = 1; threads <= 2; threads++) {
        _Atomic int64_t off = 0;
        overlap_t o[2];
        pthread_t th[2];
        int64_t *v = calloc((size_t)n * 2, sizeof *v);
        if (!v)
            return 1;
        int64_t t0 = now_ns();
        for (int k = 0; k < threads; k++) {
            o[k] = (overlap_t){fd, bytes, n, &off, v + (size_t)k * (size_t)n};
            pthread_create(&th[k], NULL, overlap_main, &o[k]);
        }
        for (int k = 0; k < threads; k++)
            pthread_join(th[k], NULL);
        double secs = (double)(now_ns() - t0) / 1e9;
        printf("  %d thread%s: %.0f syncs/s\n", threads, threads > 1 ? "s" : " ",
               (double)n * threads / secs);
        report("fdatasync", v, (size_t)n * (size_t)threads);
        free(v);
    }
    close(fd);
    unlink(path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "fsync-overlap") == 0)
        return fsync_overlap(argc, argv);
    if (argc > 1 && strcmp(argv[1], "fsync") == 0)
        return fsync_paced(argc, argv);
    if (argc != 9) {
        fprintf(stderr, "usage: bench_push HOST:PORT USERS RATE SECONDS BATCH CONNS WARMUP_S "
                        "FSYNC_DIR\n");
        return 2;
    }
    snprintf(g_host, sizeof g_host, "%s", argv[1]);
    char *colon = strrchr(g_host, ':');
    if (!colon)
        return 2;
    *colon = 0;
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, g_host, &g_addr.sin_addr);
    *colon = ':';
    g_users = atoi(argv[2]);
    double rate = atof(argv[3]);
    double secs = atof(argv[4]);
    g_batch = atoi(argv[5]);
    int nconn = atoi(argv[6]);
    double warm = atof(argv[7]);
    int64_t total = (int64_t)(rate * secs) / g_batch * g_batch;
    g_per_user = (int)(total / g_users + 1);
    size_t cells = (size_t)g_users * (size_t)g_per_user;
    g_ack = calloc(cells, sizeof *g_ack);
    g_sse = calloc(cells, sizeof *g_sse);
    g_int = calloc(cells, sizeof *g_int);

    pthread_t th;
    g_ws = rate <= 0 && getenv("BENCH_PUSH_WS") && atoi(getenv("BENCH_PUSH_WS")) == 1;
    pthread_create(&th, NULL, sub_main, NULL);
    if (rate <= 0) { /* only hold the streams open, until killed */
        for (;;)
            pause();
    }
    sleep(2); /* every stream open before the first event */

    conn_t *cs = calloc((size_t)nconn, sizeof *cs);
    int ep = epoll_create1(0);
    for (int i = 0; i < nconn; i++) {
        cs[i].fd = connect_one();
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &e);
    }
    int64_t start = now_ns() + 1000000;
    double gap = 1e9 * g_batch / rate;
    int64_t next = 0; /* next event to send */
    int64_t acked = 0;
    char body[65536], head[256];
    while (acked < total) {
        int64_t t = now_ns();
        /* batches due now go out on free connections */
        while (next < total && start + (int64_t)((double)(next / g_batch) * gap) <= t) {
            conn_t *c = NULL;
            for (int i = 0; i < nconn && !c; i++)
                if (!cs[i].busy)
                    c = &cs[i];
            if (!c)
                break; /* all busy: it goes out late, counted from its intended time */
            int64_t due = start + (int64_t)((double)(next / g_batch) * gap);
            size_t bl = (size_t)snprintf(body, sizeof body, "{\"events\":[");
            for (int j = 0; j < g_batch; j++) {
                int64_t e = next + j;
                int u = (int)(e % g_users);
                int k = (int)(e / g_users);
                g_int[(size_t)u * (size_t)g_per_user + (size_t)k] = due;
                bl +=
                    (size_t)snprintf(body + bl, sizeof body - bl,
                                     "%s{\"type\":\"ping\",\"user_id\":\"pb%d\"}", j ? "," : "", u);
            }
            bl += (size_t)snprintf(body + bl, sizeof body - bl, "]}");
            int hl = snprintf(head, sizeof head,
                              "POST /v1/events HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                              "application/json\r\nContent-Length: %zu\r\n\r\n",
                              g_host, bl);
            write_all(c->fd, head, (size_t)hl);
            write_all(c->fd, body, bl);
            c->busy = true;
            c->first = next;
            next += g_batch;
        }
        int64_t due =
            next < total ? start + (int64_t)((double)(next / g_batch) * gap) : t + 10000000;
        /* sleep to the next batch with nanosecond precision: a whole-ms
         * timeout would spin at high rates and starve the subscriber
         * thread on the same CPU, which would count against the server */
        int64_t wait_ns = due > t ? due - t : 0;
        struct timespec wts = {wait_ns / 1000000000LL, wait_ns % 1000000000LL};
        struct epoll_event evs[64];
        int n = epoll_pwait2(ep, evs, 64, &wts, NULL);
        int64_t ta = now_ns();
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
            if (r <= 0) {
                fprintf(stderr, "bench_push: ingest connection closed\n");
                return 1;
            }
            c->inlen += (size_t)r;
            if (c->busy && answer_done(c)) {
                for (int j = 0; j < g_batch; j++) {
                    int64_t e = c->first + j;
                    g_ack[(size_t)(e % g_users) * (size_t)g_per_user + (size_t)(e / g_users)] = ta;
                }
                acked += g_batch;
                c->busy = false;
            }
        }
    }
    int64_t sent_end = now_ns();
    while (atomic_load(&g_received) < total && now_ns() - sent_end < 3000000000LL)
        usleep(10000);
    atomic_store(&g_stop, true);
    pthread_join(th, NULL);

    int64_t *a = malloc((size_t)total * sizeof *a), *b = malloc((size_t)total * sizeof *b),
            *e2e = malloc((size_t)total * sizeof *e2e);
    size_t na = 0, nb = 0, lost = 0, counted = 0;
    int64_t warm_end = start + (int64_t)(warm * 1e9);
    for (int64_t e = 0; e < total; e++) {
        size_t i = (size_t)(e % g_users) * (size_t)g_per_user + (size_t)(e / g_users);
        if (g_int[i] < warm_end)
            continue;
        counted++;
        a[na++] = g_ack[i] - g_int[i];
        if (!g_sse[i]) {
            lost++;
            continue;
        }
        /* a message read before its ack (the ack's read came later in the
         * same loop turn): 0 */
        b[nb] = g_sse[i] > g_ack[i] ? g_sse[i] - g_ack[i] : 0;
        e2e[nb++] = g_sse[i] - g_int[i];
    }
    double took = (double)(sent_end - start) / 1e9;
    printf("events: %lld sent in %.2f s (%.0f/s) to %d users, batches of %d on %d connections; "
           "%zu after the %.0f s warm-up measured, %zu without a message\n",
           (long long)total, took, (double)total / took, g_users, g_batch, nconn, counted, warm,
           lost);
    report("send->ack", a, na);
    report("ack->sse", b, nb);
    report("send->sse", e2e, nb);
    fsync_probe(argv[8]);
    return lost ? 1 : 0;
}
