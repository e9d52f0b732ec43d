/* redis_xadd.c - the Redis side of bench/ingest.sh: sends every line of an
 * NDJSON file of events to Redis as `XADD events:P * e <event>`, DEPTH
 * commands pipelined per round trip on each of CONNECTIONS connections, and
 * prints the rate.
 *
 * Like `attune load`, it is one thread with one poll loop: each connection
 * has one pipeline of DEPTH commands in flight, and gets the next DEPTH
 * events of the file as soon as all its replies are in. P is a hash of the
 * event's user key modulo 16, so the events land in 16 streams the way
 * attune spreads them over 16 partitions. The clock runs from the first
 * send to the last reply.
 *
 * Build: cc -O2 -o redis_xadd bench/redis_xadd.c -lhiredis
 * Usage: redis_xadd HOST PORT FILE [CONNECTIONS (8)] [DEPTH (100)]
 * Output: a human line, then "events_per_s R" on the last line.
 */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAMS 16
#define MAX_CONNS 256

typedef struct line {
    const char *p;
    size_t len;
    int stream;
} line_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "redis_xadd: %s: %s\n", what, why);
    exit(1);
}

/* The stream of an event: FNV-1a of its user_id (else anonymous_id). */
static int stream_of(const char *p, size_t len)
{
    static const char *const keys[] = {"\"user_id\"", "\"anonymous_id\""};
    uint32_t h = 2166136261u;
    const char *end = p + len;
    for (size_t k = 0; k < 2; k++) {
        const char *s = memmem(p, len, keys[k], strlen(keys[k]));
        if (!s)
            continue;
        for (s += strlen(keys[k]); s < end && (*s == ' ' || *s == ':' || *s == '"'); s++)
            ;
        for (; s < end && *s != '"'; s++)
            h = (h ^ (uint8_t)*s) * 16777619u;
        break;
    }
    return (int)(h % STREAMS);
}

/* Reads the whole file and splits it into lines. Exits on failure. */
static line_t *load_lines(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, "cannot open");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size)
        die(path, "cannot read");
    fclose(f);
    size_t cap = 1024, cnt = 0;
    line_t *lines = malloc(cap * sizeof(*lines));
    for (char *p = buf, *end = buf + size; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len > 0) {
            if (cnt == cap)
                lines = realloc(lines, (cap *= 2) * sizeof(*lines));
            if (!lines)
                die(path, "out of memory");
            lines[cnt++] = (line_t){p, len, stream_of(p, len)};
        }
        p += len + 1;
    }
    *n = cnt;
    return lines;
}

/* Sends lines[*next ..] (at most depth of them) on c; returns how many. */
static size_t send_pipeline(redisContext *c, const line_t *lines, size_t n, size_t *next, int depth)
{
    size_t m = 0;
    for (; m < (size_t)depth && *next < n; m++, (*next)++) {
        const line_t *l = &lines[*next];
        redisAppendCommand(c, "XADD events:%d * e %b", l->stream, l->p, l->len);
    }
    int done = 0;
    while (m && !done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            die("write", c->errstr);
    return m;
}

/* Takes the replies that have arrived on c; returns how many. */
static size_t take_replies(redisContext *c, size_t want)
{
    size_t got = 0;
    if (redisBufferRead(c) != REDIS_OK)
        die("read", c->errstr);
    while (got < want) {
        redisReply *r = NULL;
        if (redisGetReplyFromReader(c, (void **)&r) != REDIS_OK)
            die("reply", c->errstr);
        if (!r)
            break;
        if (r->type == REDIS_REPLY_ERROR)
            die("XADD", r->str);
        freeReplyObject(r);
        got++;
    }
    return got;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: redis_xadd HOST PORT FILE [CONNECTIONS] [DEPTH]\n");
        return 2;
    }
    int conns = argc > 4 ? atoi(argv[4]) : 8;
    int depth = argc > 5 ? atoi(argv[5]) : 100;
    if (conns < 1 || conns > MAX_CONNS || depth < 1) {
        fprintf(stderr, "redis_xadd: bad CONNECTIONS or DEPTH\n");
        return 2;
    }
    size_t n, next = 0, replied = 0;
    line_t *lines = load_lines(argv[3], &n);
    redisContext *c[MAX_CONNS];
    size_t inflight[MAX_CONNS];
    struct pollfd pfd[MAX_CONNS];
    for (int i = 0; i < conns; i++) {
        c[i] = redisConnect(argv[1], atoi(argv[2]));
        if (!c[i] || c[i]->err)
            die("connect", c[i] ? c[i]->errstr : "out of memory");
        pfd[i] = (struct pollfd){.fd = c[i]->fd, .events = POLLIN};
    }
    double t0 = now_s();
    for (int i = 0; i < conns; i++)
        inflight[i] = send_pipeline(c[i], lines, n, &next, depth);
    while (replied < n) {
        if (poll(pfd, (nfds_t)conns, 10000) <= 0)
            die("poll", "no reply within 10 s");
        for (int i = 0; i < conns; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            size_t got = take_replies(c[i], inflight[i]);
            inflight[i] -= got;
            replied += got;
            if (inflight[i] == 0)
                inflight[i] = send_pipeline(c[i], lines, n, &next, depth);
        }
    }
    double secs = now_s() - t0;
    for (int i = 0; i < conns; i++)
        redisFree(c[i]);
    printf("redis_xadd: %zu events in %.3f s over %d connections, pipeline %d\n", n, secs, conns,
           depth);
    printf("events_per_s %.0f\n", (double)n / secs);
    return 0;
}
