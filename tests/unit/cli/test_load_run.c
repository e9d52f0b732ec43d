/* test_load_run.c - `attune load` end to end against a small HTTP responder
 * that lives in this test: well-formed requests, keep-alive, 429 with
 * Retry-After, reconnection, latency counted from the intended send time,
 * the --acked file, --out, and the options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../../../src/cli/load.c"
#include "../../../src/cli/load_gen.c"
#include "../../../src/cli/load_hist.c"
#include "../../../src/cli/load_http.c"
#include "../../../src/cli/load_run.c"

/* ---- the responder ---------------------------------------------------------- */

#define MAX_CONN_THREADS 256
#define SEEN_MAX 400000

typedef struct responder {
    int lfd, port;
    pthread_t acceptor;
    pthread_t threads[MAX_CONN_THREADS];
    atomic_int nthreads;
    atomic_bool stop;
    /* behaviour */
    int n429;          /* answer the first n429 requests 429 */
    int retry_after_s; /* with this Retry-After */
    int delay_ms;      /* service time of each request */
    int drop_every;    /* close without answering every n-th request (0: never) */
    int status;        /* the answer otherwise */
    const char *key;   /* the bearer key expected */
    uint64_t seed;     /* of the event ids expected */
    /* what it saw */
    atomic_int requests, connections, bad, seq;
    atomic_uchar seen[SEEN_MAX]; /* times event n arrived */
} responder_t;

typedef struct {
    responder_t *rs;
    int fd;
} conn_arg_t;

static bool has_header(const char *head, const char *line)
{
    return strcasestr(head, line) != NULL;
}

/* Checks a request head; returns its Content-Length or -1. */
static long check_head(responder_t *rs, const char *head)
{
    if (strncmp(head, "POST /v1/events HTTP/1.1\r\n", 26) != 0)
        return -1;
    char want[64];
    snprintf(want, sizeof(want), "\r\nHost: 127.0.0.1:%d\r\n", rs->port);
    if (!has_header(head, want) || !has_header(head, "\r\nContent-Type: application/json\r\n"))
        return -1;
    if (rs->key) {
        char auth[128];
        snprintf(auth, sizeof(auth), "\r\nAuthorization: Bearer %s\r\n", rs->key);
        if (!strstr(head, auth))
            return -1;
    }
    const char *cl = strcasestr(head, "\r\nContent-Length: ");
    return cl ? strtol(cl + 18, NULL, 10) : -1;
}

/* Counts the events of a body and marks their ids; returns the count or -1
 * when the body is not the batch it should be. */
static int check_body(responder_t *rs, const char *body, size_t len)
{
    if (len < 13 || strncmp(body, "{\"events\":[{", 12) != 0 || strcmp(body + len - 2, "]}") != 0)
        return -1;
    char pat[64];
    int plen = snprintf(pat, sizeof(pat), "{\"event_id\":\"ld-%llu-", (unsigned long long)rs->seed);
    int n = 0;
    const char *end = body + len;
    for (const char *p = body; (p = memmem(p, (size_t)(end - p), pat, (size_t)plen)); p++) {
        unsigned long long id = strtoull(p + plen, NULL, 10);
        if (id < SEEN_MAX)
            atomic_fetch_add(&rs->seen[id], 1);
        n++;
    }
    return n;
}

static void answer(responder_t *rs, int fd, int k, int events)
{
    char resp[512];
    int n;
    if (k < rs->n429) {
        n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 429 Too Many Requests\r\nRetry-After: %d\r\n"
                     "Content-Length: 2\r\n\r\n{}",
                     rs->retry_after_s);
    } else {
        char body[128];
        int bl =
            snprintf(body, sizeof(body),
                     "{\"accepted\":%d,\"duplicates\":0,\"rejected\":[],\"positions\":[]}", events);
        n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     rs->status, bl, body);
    }
    if (write(fd, resp, (size_t)n) != n)
        atomic_fetch_add(&rs->bad, 1);
}

/* Reads into buf until it holds at least want bytes (want 0: a whole head).
 * Returns false on close or stop. */
static bool read_more(responder_t *rs, int fd, char *buf, size_t *len, size_t cap, size_t want)
{
    while (want ? *len < want : !memmem(buf, *len, "\r\n\r\n", 4)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (atomic_load(&rs->stop))
            return false;
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        ssize_t n = read(fd, buf + *len, cap - *len - 1);
        if (n <= 0)
            return false;
        *len += (size_t)n;
        buf[*len] = '\0';
    }
    return true;
}

static void *serve_conn(void *arg)
{
    conn_arg_t *ca = arg;
    responder_t *rs = ca->rs;
    int fd = ca->fd;
    free(ca);
    size_t cap = 8u << 20, len = 0;
    char *buf = malloc(cap);
    while (read_more(rs, fd, buf, &len, cap, 0)) {
        char *sep = memmem(buf, len, "\r\n\r\n", 4);
        sep[2] = '\0'; /* the head, its last line's CRLF kept */
        long cl = check_head(rs, buf);
        size_t head = (size_t)(sep - buf) + 4;
        if (cl < 0 || !read_more(rs, fd, buf, &len, cap, head + (size_t)cl)) {
            atomic_fetch_add(&rs->bad, cl < 0);
            break;
        }
        int events = check_body(rs, buf + head, (size_t)cl);
        int k = atomic_fetch_add(&rs->seq, 1);
        atomic_fetch_add(&rs->requests, 1);
        if (events < 0 || len != head + (size_t)cl)
            atomic_fetch_add(&rs->bad, 1);
        len = 0;
        if (rs->drop_every && (k + 1) % rs->drop_every == 0)
            break;
        if (rs->delay_ms)
            usleep((useconds_t)rs->delay_ms * 1000);
        answer(rs, fd, k, events);
    }
    free(buf);
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    responder_t *rs = arg;
    while (!atomic_load(&rs->stop)) {
        struct pollfd pfd = {.fd = rs->lfd, .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        int fd = accept(rs->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&rs->connections, 1);
        conn_arg_t *ca = malloc(sizeof(*ca));
        *ca = (conn_arg_t){rs, fd};
        int i = atomic_fetch_add(&rs->nthreads, 1);
        assert_true(i < MAX_CONN_THREADS);
        pthread_create(&rs->threads[i], NULL, serve_conn, ca);
    }
    return NULL;
}

/* Listens on an ephemeral loopback port. */
static responder_t *responder_new(void)
{
    responder_t *rs = calloc(1, sizeof(*rs));
    rs->status = 200;
    rs->seed = 77;
    rs->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(rs->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(rs->lfd, 128), 0);
    socklen_t al = sizeof(a);
    getsockname(rs->lfd, (struct sockaddr *)&a, &al);
    rs->port = ntohs(a.sin_port);
    return rs;
}

static void responder_start(responder_t *rs)
{
    pthread_create(&rs->acceptor, NULL, accept_loop, rs);
}

static void responder_free(responder_t *rs)
{
    atomic_store(&rs->stop, true);
    pthread_join(rs->acceptor, NULL);
    for (int i = 0; i < atomic_load(&rs->nthreads); i++)
        pthread_join(rs->threads[i], NULL);
    close(rs->lfd);
    free(rs);
}

/* ---- helpers ------------------------------------------------------------ */

static at_load_opts_t opts_for(const responder_t *rs)
{
    at_load_opts_t o;
    at_load_opts_default(&o);
    snprintf(o.port, sizeof(o.port), "%d", rs ? rs->port : 9);
    o.gen.seed = 77;
    o.seed_set = true;
    o.drain_ms = 5000;
    return o;
}

static int run(const at_load_opts_t *o, at_load_report_t *rep)
{
    memset(rep, 0, sizeof(*rep));
    rep->hist = malloc(sizeof(*rep->hist));
    at_load_hist_init(rep->hist);
    return at_load_run(o, rep);
}

static void tmp_dir(char *out, size_t n)
{
    const char *base = getenv("AT_TEST_TMP");
    if (!base || at_mkdirs(base, 0755) < 0)
        base = "/tmp";
    snprintf(out, n, "%s/load-XXXXXX", base);
    assert_non_null(mkdtemp(out));
}

static void assert_each_seen(const responder_t *rs, uint64_t n, int min, int max)
{
    for (uint64_t i = 0; i < n; i++) {
        int s = atomic_load(&rs->seen[i]);
        if (s < min || s > max)
            fail_msg("event %llu seen %d times", (unsigned long long)i, s);
    }
    assert_int_equal(atomic_load(&rs->seen[n]), 0);
}

/* ---- tests -------------------------------------------------------------- */

static void test_sends_every_event_once(void **state)
{
    (void)state;
    responder_t *rs = responder_new();
    rs->key = "k-123";
    responder_start(rs);
    char dir[256], acked[300];
    tmp_dir(dir, sizeof(dir));
    snprintf(acked, sizeof(acked), "%s/acked.txt", dir);
    at_load_opts_t o = opts_for(rs);
    o.rate = 20000;
    o.events = 4000;
    o.connections = 4;
    o.key = rs->key;
    o.acked = acked;
    at_load_report_t rep;
    assert_int_equal(run(&o, &rep), 0);
    assert_int_equal(atomic_load(&rs->bad), 0);
    assert_int_equal(atomic_load(&rs->requests), 40);
    assert_true(atomic_load(&rs->connections) <= 4); /* keep-alive */
    assert_each_seen(rs, 4000, 1, 1);
    assert_int_equal(rep.st_200, 40);
    assert_int_equal(rep.batches_acked, 40);
    assert_int_equal(rep.batches_failed, 0);
    assert_int_equal(rep.events_acked, 4000);
    assert_int_equal(rep.accepted, 4000);
    assert_int_equal(rep.hist->total, 40);
    /* open loop: 4000 events at 20000/s take 0.2 s, not less */
    assert_true(rep.elapsed_s >= 0.199 && rep.elapsed_s < 3.0);
    /* every acknowledged id is in the file, once */
    FILE *f = fopen(acked, "r");
    assert_non_null(f);
    static uint8_t once[4000];
    memset(once, 0, sizeof(once));
    char line[64];
    int lines = 0;
    while (fgets(line, sizeof(line), f)) {
        assert_true(strncmp(line, "ld-77-", 6) == 0);
        unsigned long n = strtoul(line + 6, NULL, 10);
        assert_true(n < 4000 && !once[n]);
        once[n] = 1;
        lines++;
    }
    assert_int_equal(lines, 4000);
    fclose(f);
    free(rep.hist);
    responder_free(rs);
}

static void test_429_is_retried_after_retry_after(void **state)
{
    (void)state;
    responder_t *rs = responder_new();
    rs->n429 = 3;
    rs->retry_after_s = 1;
    responder_start(rs);
    at_load_opts_t o = opts_for(rs);
    o.rate = 10000;
    o.events = 1000;
    o.connections = 2;
    at_load_report_t rep;
    assert_int_equal(run(&o, &rep), 0);
    assert_int_equal(atomic_load(&rs->bad), 0);
    assert_int_equal(rep.st_429, 3);
    assert_int_equal(rep.st_200, 10);
    assert_int_equal(rep.requests, 13);
    assert_int_equal(atomic_load(&rs->requests), 13);
    /* the three refused batches came again with the same event ids */
    int twice = 0;
    for (int i = 0; i < 1000; i++)
        twice += atomic_load(&rs->seen[i]) == 2;
    assert_int_equal(twice, 300);
    assert_each_seen(rs, 1000, 1, 2);
    /* their latency counts from the first intended send: over a second */
    assert_true(rep.hist->max >= 1000000000);
    assert_true(at_load_hist_percentile(rep.hist, 50) < 500000000);
    assert_true(rep.elapsed_s >= 1.0);
    free(rep.hist);
    responder_free(rs);
}

static void test_latency_counts_from_intended_time(void **state)
{
    (void)state;
    /* One connection, 20 ms per request, a batch due every 5 ms: batches
     * queue up. Batch k is due at 5(k+1) ms and answered at about 20(k+1)
     * ms, so its latency is about 15(k+1) ms: up to 600 ms for 40 batches.
     * Measured from the actual send, every one would look like 20 ms. */
    responder_t *rs = responder_new();
    rs->delay_ms = 20;
    responder_start(rs);
    at_load_opts_t o = opts_for(rs);
    o.rate = 2000;
    o.batch = 10;
    o.events = 400;
    o.connections = 1;
    at_load_report_t rep;
    assert_int_equal(run(&o, &rep), 0);
    assert_int_equal(rep.batches_acked, 40);
    assert_int_equal(atomic_load(&rs->connections), 1);
    assert_true(rep.hist->min >= 20000000);
    assert_true(at_load_hist_percentile(rep.hist, 50) >= 250000000);
    assert_true(rep.hist->max >= 550000000);
    assert_true(rep.elapsed_s >= 0.8);
    free(rep.hist);
    responder_free(rs);
}

static void test_reconnects_and_resends_after_drops(void **state)
{
    (void)state;
    responder_t *rs = responder_new();
    rs->drop_every = 3; /* every third request: connection closed, no answer */
    responder_start(rs);
    at_load_opts_t o = opts_for(rs);
    o.rate = 20000;
    o.events = 2000;
    o.connections = 2;
    at_load_report_t rep;
    assert_int_equal(run(&o, &rep), 0);
    assert_int_equal(atomic_load(&rs->bad), 0);
    assert_int_equal(rep.st_200, 20);
    assert_int_equal(rep.events_acked, 2000);
    assert_true(rep.errors >= 9);
    assert_true(atomic_load(&rs->connections) > 2);
    assert_each_seen(rs, 2000, 1, 3);
    free(rep.hist);
    responder_free(rs);
}

static void test_fails_without_server(void **state)
{
    (void)state;
    responder_t *rs = responder_new(); /* bound, never started, then closed */
    int port = rs->port;
    close(rs->lfd);
    rs->lfd = -1;
    at_load_opts_t o = opts_for(NULL);
    snprintf(o.port, sizeof(o.port), "%d", port);
    o.events = 300;
    o.drain_ms = 300;
    at_load_report_t rep;
    assert_int_equal(run(&o, &rep), 1);
    assert_int_equal(rep.batches_total, 3);
    assert_int_equal(rep.batches_failed, 3);
    assert_int_equal(rep.st_200, 0);
    assert_true(rep.connect_errors >= 1);
    free(rep.hist);
    free(rs);
}

static void test_refused_batches_fail(void **state)
{
    (void)state;
    responder_t *rs = responder_new();
    rs->status = 400;
    responder_start(rs);
    at_load_opts_t o = opts_for(rs);
    o.events = 500;
    at_load_report_t rep;
    assert_int_equal(run(&o, &rep), 1);
    assert_int_equal(rep.st_other, 5);
    assert_int_equal(rep.batches_failed, 5);
    assert_int_equal(atomic_load(&rs->requests), 5); /* not retried */
    free(rep.hist);
    responder_free(rs);
}

static pthread_t g_main_thread;

static void *interrupt_later(void *arg)
{
    (void)arg;
    usleep(300000);
    pthread_kill(g_main_thread, SIGINT);
    return NULL;
}

static void test_sigint_stops_and_drains(void **state)
{
    (void)state;
    responder_t *rs = responder_new();
    responder_start(rs);
    at_load_opts_t o = opts_for(rs);
    o.rate = 1000;
    o.duration_ms = 60000;
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    g_main_thread = pthread_self();
    pthread_t t;
    pthread_create(&t, NULL, interrupt_later, NULL);
    at_load_report_t rep;
    int64_t t0 = at_time_mono_ns();
    assert_int_equal(run(&o, &rep), 0);
    double secs = (double)(at_time_mono_ns() - t0) / 1e9;
    pthread_join(t, NULL);
    sigaction(SIGINT, &old, NULL);
    assert_true(secs < 5.0); /* not the 60 s asked for */
    assert_true(rep.batches_total >= 2 && rep.batches_total <= 5);
    assert_int_equal(rep.batches_acked, rep.batches_total);
    free(rep.hist);
    responder_free(rs);
}

static void test_throughput(void **state)
{
    (void)state;
    responder_t *rs = responder_new();
    responder_start(rs);
    at_load_opts_t o = opts_for(rs);
    o.rate = 1e8; /* far past what one core can build: measures the ceiling */
    o.events = 200000;
    at_load_report_t rep;
    assert_int_equal(run(&o, &rep), 0);
    assert_int_equal(rep.events_acked, 200000);
    print_message("throughput: %.0f events/s, %.0f requests/s (batch %u, %u connections)\n",
                  (double)rep.events_acked / rep.elapsed_s, (double)rep.requests / rep.elapsed_s,
                  o.batch, o.connections);
    free(rep.hist);
    responder_free(rs);
}

static void test_options(void **state)
{
    (void)state;
    at_load_opts_t o;
    char err[256];
    at_load_opts_default(&o);
    char *argv[] = {"load",   "--url",   "http://localhost:9090/",
                    "--rate", "2500",    "--duration",
                    "1.5m",   "--batch", "50",
                    "--seed", "9",       "--zipf",
                    "0.8",    "--key",   "abc",
                    "--json", "--drain", "250ms",
                    NULL};
    assert_int_equal(at_load_opts_parse(&o, 18, argv, stdout, err, sizeof(err)), 0);
    assert_string_equal(o.host, "localhost");
    assert_string_equal(o.port, "9090");
    assert_true(o.rate == 2500 && o.batch == 50 && o.gen.zipf == 0.8);
    assert_int_equal(o.duration_ms, 90000);
    assert_int_equal(o.drain_ms, 250);
    assert_true(o.seed_set && o.gen.seed == 9 && o.json);
    assert_string_equal(o.key, "abc");
    assert_int_equal(o.connections, 8); /* default kept */

    assert_int_equal(at_load_parse_url("[::1]:81", &o), 0);
    assert_string_equal(o.host, "::1");
    assert_string_equal(o.port, "81");
    assert_int_equal(at_load_parse_url("example.com", &o), 0);
    assert_string_equal(o.port, "80");
    const char *bad_urls[] = {"https://h:1", "http://h:1/v1", "http://:80", "h:0", "h:99999", "h:"};
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++)
        assert_int_equal(at_load_parse_url(bad_urls[i], &o), AT_EINVALID);
    int64_t ms;
    assert_int_equal(at_load_parse_duration("10", &ms), 0);
    assert_int_equal(ms, 10000);
    assert_int_equal(at_load_parse_duration("2h", &ms), 0);
    assert_int_equal(ms, 7200000);
    assert_int_equal(at_load_parse_duration("10d", &ms), AT_EINVALID);
    assert_int_equal(at_load_parse_duration("-1s", &ms), AT_EINVALID);

    char *bad[][3] = {{"load", "--rate", "0"},      {"load", "--batch", "0"},
                      {"load", "--items", "x"},     {"load", "--key", "a b"},
                      {"load", "--duration", "0s"}, {"load", "--zipf", "-1"},
                      {"load", "--bogus", "1"},     {"load", "stray", "arg"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        at_load_opts_default(&o);
        assert_int_equal(at_load_opts_parse(&o, 3, bad[i], stdout, err, sizeof(err)), AT_EINVALID);
        assert_true(strlen(err) > 0);
    }
    char *help[] = {"load", "--help", NULL};
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(at_load_opts_parse(&o, 2, help, devnull, err, sizeof(err)), 1);
    fclose(devnull);
    char *usage[] = {"load", "--connections", "0", NULL};
    assert_int_equal(at_cli_load(3, usage), 2);
}

static void test_out_writes_ndjson(void **state)
{
    (void)state;
    char dir[256], a[300], b[300];
    tmp_dir(dir, sizeof(dir));
    snprintf(a, sizeof(a), "%s/a.ndjson", dir);
    snprintf(b, sizeof(b), "%s/b.ndjson", dir);
    char *argv_a[] = {"load",
                      "--out",
                      a,
                      "--events",
                      "1000",
                      "--seed",
                      "5",
                      "--rate",
                      "100",
                      "--start-time",
                      "2026-04-27T14:35:00Z",
                      NULL};
    char *argv_b[] = {"load",
                      "--out",
                      b,
                      "--events",
                      "1000",
                      "--seed",
                      "5",
                      "--rate",
                      "100",
                      "--start-time",
                      "2026-04-27T14:35:00Z",
                      NULL};
    assert_int_equal(at_cli_load(11, argv_a), 0);
    assert_int_equal(at_cli_load(11, argv_b), 0);
    char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    assert_int_equal(at_file_read(a, 1 << 24, &da, &la), 0);
    assert_int_equal(at_file_read(b, 1 << 24, &db, &lb), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, la); /* same seed and start: same bytes */
    int lines = 0;
    for (size_t i = 0; i < la; i++)
        lines += da[i] == '\n';
    assert_int_equal(lines, 1000);
    assert_non_null(strstr(da, "\"timestamp\":\"2026-04-27T14:35:00.000Z\""));
    /* 100 events per second: the last is 9.99 s after the first */
    assert_non_null(strstr(da, "\"timestamp\":\"2026-04-27T14:35:09.990Z\""));
    assert_true(strncmp(da, "{\"event_id\":\"ld-5-0\",", 21) == 0);
    free(da);
    free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_out_writes_ndjson),
        cmocka_unit_test(test_sends_every_event_once),
        cmocka_unit_test(test_429_is_retried_after_retry_after),
        cmocka_unit_test(test_latency_counts_from_intended_time),
        cmocka_unit_test(test_reconnects_and_resends_after_drops),
        cmocka_unit_test(test_fails_without_server),
        cmocka_unit_test(test_refused_batches_fail),
        cmocka_unit_test(test_sigint_stops_and_drains),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
