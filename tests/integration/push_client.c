/* push_client.c - a test client for attune's push endpoints, built by
 * test_push.sh (at_build_push_client in lib.sh style: cc push_client.c).
 *
 *   push_client sse PORT PATH [-H HEADER].. [-n COUNT] [-t MS] [-s MS]
 *       GET PATH as an SSE stream; prints "HTTP STATUS" first, then one line
 *       per message: "ID<TAB>EVENT<TAB>DATA" (ID "-" when absent); stops
 *       after COUNT messages, MS milliseconds or the end of the stream.
 *       -s MS: a slow reader: a tiny receive buffer, and nothing read for
 *       the first MS milliseconds.
 *   push_client ws PORT PATH [-H HEADER].. [-n COUNT] [-t MS] [-m TEXT]..
 *       The same over WebSocket: prints "HTTP STATUS", sends each TEXT as a
 *       text frame, then prints every text frame received, one per line.
 *   push_client many PORT PATH N [-t MS]
 *       Opens N SSE connections, waits for each to answer, prints
 *       "open N", then holds them until stdin reaches its end.
 *
 * Exit status: 0, or 1 on a connection error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads into buf (cap) within deadline; returns bytes read, 0 on EOF, -1
 * on timeout. */
static ssize_t recv_until(int fd, char *buf, size_t cap, int64_t deadline)
{
    int64_t left = deadline - now_ms();
    if (left <= 0)
        return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)left) <= 0)
        return -1;
    ssize_t n = recv(fd, buf, cap, 0);
    return n < 0 ? 0 : n;
}

typedef struct conn {
    int fd;
    char *buf;
    size_t len, cap;
    int64_t deadline;
} conn_t;

static int fill(conn_t *c)
{
    if (c->len == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 65536;
        c->buf = realloc(c->buf, c->cap);
        if (!c->buf)
            exit(1);
    }
    ssize_t n = recv_until(c->fd, c->buf + c->len, c->cap - c->len, c->deadline);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 0;
}

static void consume(conn_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads the response head; returns the status, -1 on failure. */
static int read_head(conn_t *c)
{
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (fill(c) < 0)
            return -1;
    int status = c->len > 12 ? atoi(c->buf + 9) : -1;
    consume(c, (size_t)(end - c->buf) + 4);
    return status;
}

static int request(int fd, const char *path, const char *extra, char **hdrs, int nh)
{
    char req[8192];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", path, extra);
    for (int i = 0; i < nh; i++)
        n += snprintf(req + n, sizeof req - (size_t)n, "%s\r\n", hdrs[i]);
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    return send_all(fd, req, (size_t)n);
}

/* Prints SSE messages until count, the deadline or EOF. */
static void sse_loop(conn_t *c, int count)
{
    int got = 0;
    while (count <= 0 || got < count) {
        char *end = memmem(c->buf, c->len, "\n\n", 2);
        if (!end) {
            if (fill(c) < 0)
                break;
            continue;
        }
        size_t mlen = (size_t)(end - c->buf) + 2;
        char id[64] = "-", ev[64] = "message", *data = NULL;
        size_t dlen = 0;
        for (char *line = c->buf; line < end;) {
            char *nl = memchr(line, '\n', (size_t)(end + 1 - line));
            size_t ll = (size_t)(nl - line);
            if (ll > 4 && !strncmp(line, "id: ", 4))
                snprintf(id, sizeof id, "%.*s", (int)(ll - 4), line + 4);
            else if (ll > 7 && !strncmp(line, "event: ", 7))
                snprintf(ev, sizeof ev, "%.*s", (int)(ll - 7), line + 7);
            else if (ll > 6 && !strncmp(line, "data: ", 6)) {
                data = line + 6;
                dlen = ll - 6;
            }
            line = nl + 1;
        }
        if (data) {
            printf("%s\t%s\t%.*s\n", id, ev, (int)dlen, data);
            fflush(stdout);
            got++;
        }
        consume(c, mlen);
    }
}

/* ---- WebSocket ------------------------------------------------------------ */

static int ws_send(int fd, int opcode, const char *p, size_t n)
{
    unsigned char h[14];
    size_t k = 0;
    h[k++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        h[k++] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        h[k++] = 0x80 | 126;
        h[k++] = (unsigned char)(n >> 8);
        h[k++] = (unsigned char)n;
    } else {
        h[k++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[k++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    unsigned char mask[4] = {0x5a, 0x13, 0xc4, 0x7e};
    memcpy(h + k, mask, 4);
    k += 4;
    char *m = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        m[i] = (char)(p[i] ^ mask[i % 4]);
    int rc = send_all(fd, h, k) || send_all(fd, m, n);
    free(m);
    return rc ? -1 : 0;
}

/* Prints text frames until count, the deadline or close. */
static void ws_loop(conn_t *c, int count)
{
    int got = 0;
    while (count <= 0 || got < count) {
        while (c->len < 2)
            if (fill(c) < 0)
                return;
        unsigned char *b = (unsigned char *)c->buf;
        size_t hl = 2, n = b[1] & 0x7f;
        if (n == 126)
            hl = 4;
        else if (n == 127)
            hl = 10;
        while (c->len < hl)
            if (fill(c) < 0)
                return;
        b = (unsigned char *)c->buf;
        if (n == 126)
            n = (size_t)b[2] << 8 | b[3];
        else if (n == 127)
            for (int i = 0; i < 8; i++)
                n = n << 8 | b[2 + i];
        while (c->len < hl + n)
            if (fill(c) < 0)
                return;
        int op = c->buf[0] & 0x0f;
        if (op == 1) {
            printf("%.*s\n", (int)n, c->buf + hl);
            fflush(stdout);
            got++;
        } else if (op == 9) {
            ws_send(c->fd, 10, c->buf + hl, n); /* pong */
        } else if (op == 8) {
            printf("close %d\n",
                   n >= 2 ? (unsigned char)c->buf[hl] << 8 | (unsigned char)c->buf[hl + 1] : 0);
            return;
        }
        consume(c, hl + n);
    }
}

/* ---- many connections ------------------------------------------------------- */

static int many(int port, const char *path, int n, int64_t deadline)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int *fds = calloc((size_t)n, sizeof *fds);
    for (int i = 0; i < n; i++) {
        fds[i] = dial(port, 0);
        if (fds[i] < 0 || request(fds[i], path, "", NULL, 0) < 0) {
            fprintf(stderr, "push_client: connection %d failed: %s\n", i, strerror(errno));
            return 1;
        }
    }
    for (int i = 0; i < n; i++) {
        conn_t c = {.fd = fds[i], .deadline = deadline};
        int st = read_head(&c);
        while (st == 200 && !memmem(c.buf, c.len, ": ok\n\n", 6))
            if (fill(&c) < 0)
                break;
        if (st != 200 || !memmem(c.buf, c.len, ": ok\n\n", 6)) {
            fprintf(stderr, "push_client: connection %d: status %d\n", i, st);
            return 1;
        }
        free(c.buf);
    }
    printf("open %d\n", n);
    fflush(stdout);
    char junk[256];
    while (read(0, junk, sizeof junk) > 0) {
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: push_client sse|ws|many PORT PATH [options]\n");
        return 2;
    }
    const char *mode = argv[1], *path = argv[3];
    int port = atoi(argv[2]);
    char *hdrs[32], *msgs[64];
    int nh = 0, nm = 0, count = 0, slow = 0, nmany = 0;
    int64_t timeout = 5000;
    int i = 4;
    if (!strcmp(mode, "many"))
        nmany = atoi(argv[i++]);
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "-H") && i + 1 < argc && nh < 32)
            hdrs[nh++] = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            count = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc)
            timeout = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            slow = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc && nm < 64)
            msgs[nm++] = argv[++i];
        else {
            fprintf(stderr, "push_client: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    int64_t deadline = now_ms() + timeout;
    if (!strcmp(mode, "many"))
        return many(port, path, nmany, deadline);
    conn_t c = {.deadline = deadline};
    c.fd = dial(port, slow ? 2048 : 0);
    if (c.fd < 0) {
        fprintf(stderr, "push_client: connect: %s\n", strerror(errno));
        return 1;
    }
    int ws = !strcmp(mode, "ws");
    const char *up =
        ws ? "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           : "Accept: text/event-stream\r\n";
    if (request(c.fd, path, up, hdrs, nh) < 0)
        return 1;
    if (slow) {
        usleep((useconds_t)slow * 1000);
        c.deadline = now_ms() + timeout;
    }
    int st = read_head(&c);
    printf("HTTP %d\n", st);
    fflush(stdout);
    if (st != 200 && st != 101) {
        if (c.len)
            printf("%.*s\n", (int)c.len, c.buf);
        else if (fill(&c) == 0)
            printf("%.*s\n", (int)c.len, c.buf);
        return 0;
    }
    if (ws) {
        for (int k = 0; k < nm; k++)
            if (ws_send(c.fd, 1, msgs[k], strlen(msgs[k])) < 0)
                return 1;
        ws_loop(&c, count);
    } else {
        sse_loop(&c, count);
    }
    close(c.fd);
    free(c.buf);
    return 0;
}
