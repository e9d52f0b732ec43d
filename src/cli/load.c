/* load.c - `attune load`: options, the --out mode (events as NDJSON instead
 * of requests), the final report, and the entry point at_cli_load().
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "at_cli.h"
#include "load.h"

static const char k_usage[] =
    "usage: attune load [options]\n"
    "\n"
    "Simulates shoppers (sessions of page views, item views, searches, carts and\n"
    "purchases) and sends their events to attune's POST /v1/events in batches, at a\n"
    "fixed rate whatever the server does (open loop). Latency is measured from the\n"
    "moment each batch was due, so server stalls are not hidden.\n"
    "\n"
    "  --url URL            server, http://HOST:PORT (default http://127.0.0.1:8080)\n"
    "  --rate N             target events per second (default 10000)\n"
    "  --duration D         how long to send: 500ms, 10s, 2m, 1h (default 10s)\n"
    "  --events N           send N events instead (at --rate)\n"
    "  --batch N            events per request (default 100)\n"
    "  --connections N      keep-alive connections (default 8)\n"
    "  --users N            user ids 1..N (default 100000)\n"
    "  --anonymous F        the share of sessions that are anonymous (default 0.2)\n"
    "  --items N            item ids 1..N (default 10000)\n"
    "  --categories N       categories (default 50)\n"
    "  --zipf S             item popularity exponent (default 1.1)\n"
    "  --seed N             same seed, same events and event_ids (default: random)\n"
    "  --key KEY            API key, sent as Authorization: Bearer KEY\n"
    "  --acked FILE         append the event_id of every acknowledged event\n"
    "  --drain D            after the last send, wait this long for answers (default 10s)\n"
    "  --out FILE           write the events as NDJSON to FILE (- for stdout) instead of\n"
    "                       sending them; --events or --duration x --rate give the count\n"
    "  --start-time T       with --out: RFC 3339 time of the first event (default now)\n"
    "  --json               print the report as JSON\n"
    "  --help               this text\n"
    "\n"
    "Batches answered 429 or 503 are sent again after Retry-After (same event_ids).\n"
    "Exit status: 0 every batch acknowledged, 1 some failed, 2 usage error.\n";

/* Sets the defaults --help shows. */
void at_load_opts_default(at_load_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    (void)snprintf(o->host, sizeof(o->host), "127.0.0.1");
    (void)snprintf(o->port, sizeof(o->port), "8080");
    o->rate = 10000;
    o->duration_ms = 10000;
    o->batch = 100;
    o->connections = 8;
    o->gen = (at_load_gen_cfg_t){.seed = 1,
                                 .users = 100000,
                                 .items = 10000,
                                 .categories = 50,
                                 .zipf = 1.1,
                                 .anonymous = 0.2};
    o->drain_ms = 10000;
}

/* ---- parsing -------------------------------------------------------------- */

/* Parses a duration; returns 0 or AT_EINVALID. */
int at_load_parse_duration(const char *s, int64_t *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0) || v > 1e9)
        return AT_EINVALID;
    double unit = 1000;
    if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "m") == 0)
        unit = 60000;
    else if (strcmp(end, "h") == 0)
        unit = 3600000;
    else if (*end != '\0' && strcmp(end, "s") != 0)
        return AT_EINVALID;
    *ms = (int64_t)llround(v * unit);
    return 0;
}

/* Parses http://HOST:PORT[/] into o->host and o->port; returns 0 or
 * AT_EINVALID. */
int at_load_parse_url(const char *url, at_load_opts_t *o)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://"))
        return AT_EINVALID; /* https and others are not spoken here */
    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return AT_EINVALID;
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        p = host_end;
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0 || hl >= sizeof(o->host))
        return AT_EINVALID;
    const char *port = "80";
    size_t pl = 2;
    if (*p == ':') {
        port = ++p;
        pl = strspn(p, "0123456789");
        p += pl;
    }
    if ((*p != '\0' && strcmp(p, "/") != 0) || pl == 0 || pl > 5 || atoi(port) < 1 ||
        atoi(port) > 65535)
        return AT_EINVALID;
    memcpy(o->host, host, hl);
    o->host[hl] = '\0';
    memcpy(o->port, port, pl);
    o->port[pl] = '\0';
    return 0;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || errno || *s == '-' || v < min || v > max)
        return AT_EINVALID;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= min && v <= max))
        return AT_EINVALID;
    *out = v;
    return 0;
}

static bool key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 512)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] <= ' ' || (unsigned char)k[i] >= 0x7f)
            return false;
    return true;
}

enum {
    OPT_URL = 256,
    OPT_RATE,
    OPT_DURATION,
    OPT_BATCH,
    OPT_CONNECTIONS,
    OPT_USERS,
    OPT_ITEMS,
    OPT_CATEGORIES,
    OPT_ZIPF,
    OPT_ANONYMOUS,
    OPT_SEED,
    OPT_KEY,
    OPT_OUT,
    OPT_EVENTS,
    OPT_ACKED,
    OPT_JSON,
    OPT_DRAIN,
    OPT_START,
    OPT_HELP
};

static const struct option k_longopts[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"rate", required_argument, NULL, OPT_RATE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"users", required_argument, NULL, OPT_USERS},
    {"items", required_argument, NULL, OPT_ITEMS},
    {"categories", required_argument, NULL, OPT_CATEGORIES},
    {"zipf", required_argument, NULL, OPT_ZIPF},
    {"anonymous", required_argument, NULL, OPT_ANONYMOUS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"key", required_argument, NULL, OPT_KEY},
    {"out", required_argument, NULL, OPT_OUT},
    {"events", required_argument, NULL, OPT_EVENTS},
    {"acked", required_argument, NULL, OPT_ACKED},
    {"json", no_argument, NULL, OPT_JSON},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"start-time", required_argument, NULL, OPT_START},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Applies one option; returns 0 or AT_EINVALID. */
static int apply_opt(at_load_opts_t *o, int opt, const char *v)
{
    uint64_t u = 0;
    int rc = 0;
    switch (opt) {
    case OPT_URL:
        return at_load_parse_url(v, o);
    case OPT_RATE:
        return parse_double(v, 0.001, 1e9, &o->rate);
    case OPT_DURATION:
        rc = at_load_parse_duration(v, &o->duration_ms);
        return rc ? rc : o->duration_ms > 0 ? 0 : AT_EINVALID;
    case OPT_DRAIN:
        return at_load_parse_duration(v, &o->drain_ms);
    case OPT_BATCH:
        rc = parse_u64(v, 1, 100000, &u);
        o->batch = (uint32_t)u;
        return rc;
    case OPT_CONNECTIONS:
        rc = parse_u64(v, 1, 4096, &u);
        o->connections = (uint32_t)u;
        return rc;
    case OPT_USERS:
        return parse_u64(v, 1, UINT64_C(1) << 48, &o->gen.users);
    case OPT_ITEMS:
        return parse_u64(v, 1, AT_LOAD_MAX_ITEMS, &o->gen.items);
    case OPT_CATEGORIES:
        return parse_u64(v, 1, 1000000, &o->gen.categories);
    case OPT_ZIPF:
        return parse_double(v, 0, 10, &o->gen.zipf);
    case OPT_ANONYMOUS:
        return parse_double(v, 0, 1, &o->gen.anonymous);
    case OPT_SEED:
        o->seed_set = true;
        return parse_u64(v, 0, UINT64_MAX, &o->gen.seed);
    case OPT_KEY:
        o->key = v;
        return key_ok(v) ? 0 : AT_EINVALID;
    case OPT_OUT:
        o->out = v;
        return 0;
    case OPT_EVENTS:
        return parse_u64(v, 1, UINT64_C(1) << 48, &o->events);
    case OPT_ACKED:
        o->acked = v;
        return 0;
    case OPT_JSON:
        o->json = true;
        return 0;
    case OPT_START:
        return at_time_parse_rfc3339(v, strlen(v), &o->start_ms) ? AT_EINVALID : 0;
    default:
        return AT_EINVALID;
    }
}

static const char *opt_name(int opt)
{
    for (const struct option *lo = k_longopts; lo->name; lo++)
        if (lo->val == opt)
            return lo->name;
    return "?";
}

/* Parses argv into o; see load.h. Not reentrant (getopt). */
int at_load_opts_parse(at_load_opts_t *o, int argc, char **argv, FILE *out, char *err,
                       size_t errlen)
{
    optind = 0; /* glibc: start afresh */
    opterr = 0;
    int opt;
    /* NOLINTNEXTLINE(concurrency-mt-unsafe): options are parsed on the main thread */
    while ((opt = getopt_long(argc, argv, "", k_longopts, NULL)) != -1) {
        if (opt == OPT_HELP) {
            (void)fputs(k_usage, out);
            return 1;
        }
        if (opt == '?') {
            (void)snprintf(err, errlen, "unknown option or missing value: %s", argv[optind - 1]);
            return AT_EINVALID;
        }
        if (apply_opt(o, opt, optarg) < 0) {
            (void)snprintf(err, errlen, "bad value for --%s: \"%s\"", opt_name(opt), optarg);
            return AT_EINVALID;
        }
    }
    if (optind < argc) {
        (void)snprintf(err, errlen, "unexpected argument: %s", argv[optind]);
        return AT_EINVALID;
    }
    return 0;
}

/* ---- --out ---------------------------------------------------------------- */

/* Writes the events as NDJSON. Returns the exit code. */
static int write_out(const at_load_opts_t *o)
{
    uint64_t count =
        o->events ? o->events : (uint64_t)llround(o->rate * (double)o->duration_ms / 1000.0);
    bool to_stdout = strcmp(o->out, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(o->out, "w");
    if (!f) {
        (void)fprintf(stderr, "attune load: cannot open %s: %s\n", o->out, at_strerror(-errno));
        return 1;
    }
    int64_t start = o->start_ms ? o->start_ms : at_time_now_ms();
    at_load_gen_t g;
    at_load_gen_init(&g, &o->gen);
    at_buf_t b;
    at_buf_init(&b, 0);
    uint64_t bytes = 0;
    int rc = 0;
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        rc = at_load_gen_next(&g, start + (int64_t)((double)i * 1000.0 / o->rate), &b);
        if (rc == 0)
            rc = at_buf_putc(&b, '\n');
        if (rc == 0 && (b.len >= (1u << 20) || i + 1 == count)) {
            rc = fwrite(b.data, 1, b.len, f) == b.len ? 0 : -EIO;
            bytes += b.len;
            at_buf_reset(&b);
        }
    }
    if (fflush(f) != 0 && rc == 0)
        rc = -errno;
    if (!to_stdout && fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        (void)fprintf(stderr, "attune load: writing %s: %s\n", o->out, at_strerror(rc));
    else
        (void)fprintf(stderr, "attune load: wrote %llu events (%llu bytes) to %s, seed %llu\n",
                      (unsigned long long)count, (unsigned long long)bytes, o->out,
                      (unsigned long long)o->gen.seed);
    at_buf_deinit(&b);
    at_load_gen_deinit(&g);
    return rc < 0 ? 1 : 0;
}

/* ---- the report ------------------------------------------------------------ */

static double ms_of(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void print_text(FILE *f, const at_load_opts_t *o, const at_load_report_t *r, double secs)
{
    const at_load_hist_t *h = r->hist;
    (void)fprintf(
        f,
        "attune load: target %.0f events/s (%.1f requests/s at batch %u), %u connections, seed "
        "%llu\n",
        r->target_rate, r->target_rate / o->batch, o->batch, o->connections,
        (unsigned long long)o->gen.seed);
    (void)fprintf(f, "duration      %.3f s\n", r->elapsed_s);
    (void)fprintf(f, "achieved      %.1f events/s, %.1f requests/s\n",
                  (double)r->events_acked / secs, (double)r->requests / secs);
    (void)fprintf(f,
                  "events        %llu planned, %llu acknowledged (accepted %llu, duplicates %llu, "
                  "rejected %llu)\n",
                  (unsigned long long)r->events_total, (unsigned long long)r->events_acked,
                  (unsigned long long)r->accepted, (unsigned long long)r->duplicates,
                  (unsigned long long)r->rejected);
    (void)fprintf(f, "batches       %llu planned, %llu acknowledged, %llu failed\n",
                  (unsigned long long)r->batches_total, (unsigned long long)r->batches_acked,
                  (unsigned long long)r->batches_failed);
    (void)fprintf(
        f,
        "responses     200: %llu  429: %llu  503: %llu  other: %llu  errors: %llu  connect "
        "errors: %llu\n",
        (unsigned long long)r->st_200, (unsigned long long)r->st_429, (unsigned long long)r->st_503,
        (unsigned long long)r->st_other, (unsigned long long)r->errors,
        (unsigned long long)r->connect_errors);
    (void)fprintf(f,
                  "latency ms    p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n",
                  ms_of(at_load_hist_percentile(h, 50)), ms_of(at_load_hist_percentile(h, 90)),
                  ms_of(at_load_hist_percentile(h, 99)), ms_of(at_load_hist_percentile(h, 99.9)),
                  ms_of(h->total ? h->max : 0), at_load_hist_mean(h) / 1e6);
}

static void print_json(FILE *f, const at_load_opts_t *o, const at_load_report_t *r, double secs)
{
    const at_load_hist_t *h = r->hist;
    (void)fprintf(f,
                  "{\"target_events_per_s\":%.3f,\"duration_s\":%.3f,\"events_per_s\":%.1f,"
                  "\"requests_per_s\":%.1f,\"batch\":%u,\"connections\":%u,\"seed\":%llu,",
                  r->target_rate, r->elapsed_s, (double)r->events_acked / secs,
                  (double)r->requests / secs, o->batch, o->connections,
                  (unsigned long long)o->gen.seed);
    (void)fprintf(f,
                  "\"events\":{\"planned\":%llu,\"acknowledged\":%llu,\"accepted\":%llu,"
                  "\"duplicates\":%llu,\"rejected\":%llu},",
                  (unsigned long long)r->events_total, (unsigned long long)r->events_acked,
                  (unsigned long long)r->accepted, (unsigned long long)r->duplicates,
                  (unsigned long long)r->rejected);
    (void)fprintf(f, "\"batches\":{\"planned\":%llu,\"acknowledged\":%llu,\"failed\":%llu},",
                  (unsigned long long)r->batches_total, (unsigned long long)r->batches_acked,
                  (unsigned long long)r->batches_failed);
    (void)fprintf(f,
                  "\"status\":{\"200\":%llu,\"429\":%llu,\"503\":%llu,\"other\":%llu},"
                  "\"errors\":%llu,\"connect_errors\":%llu,\"connects\":%llu,",
                  (unsigned long long)r->st_200, (unsigned long long)r->st_429,
                  (unsigned long long)r->st_503, (unsigned long long)r->st_other,
                  (unsigned long long)r->errors, (unsigned long long)r->connect_errors,
                  (unsigned long long)r->connects);
    (void)fprintf(f,
                  "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p99_9\":%.3f,"
                  "\"max\":%.3f,\"mean\":%.3f}}\n",
                  ms_of(at_load_hist_percentile(h, 50)), ms_of(at_load_hist_percentile(h, 90)),
                  ms_of(at_load_hist_percentile(h, 99)), ms_of(at_load_hist_percentile(h, 99.9)),
                  ms_of(h->total ? h->max : 0), at_load_hist_mean(h) / 1e6);
}

/* Prints the report; borrows everything. */
void at_load_report_print(FILE *f, const at_load_opts_t *o, const at_load_report_t *rep, bool json)
{
    double secs = rep->elapsed_s > 0 ? rep->elapsed_s : 1e-9;
    if (json)
        print_json(f, o, rep, secs);
    else
        print_text(f, o, rep, secs);
}

/* ---- the command ----------------------------------------------------------- */

static void on_sigint(int sig)
{
    (void)sig;
    at_load_request_stop();
}

static uint64_t random_seed(void)
{
    uint64_t x = (uint64_t)at_time_mono_ns() ^ ((uint64_t)at_time_now_ms() << 20) ^
                 ((uint64_t)getpid() << 40);
    at_load_rng_t r;
    at_load_rng_seed(&r, x);
    return 1 + at_load_rng_next(&r) % 4294967295u;
}

static int send_load(const at_load_opts_t *o)
{
    at_load_report_t rep;
    memset(&rep, 0, sizeof(rep));
    rep.hist = at_xmalloc(sizeof(*rep.hist));
    at_load_hist_init(rep.hist);
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    int rc = at_load_run(o, &rep);
    sigaction(SIGINT, &old, NULL);
    if (rc < 0)
        (void)fprintf(stderr, "attune load: %s\n", at_strerror(rc));
    else
        at_load_report_print(stdout, o, &rep, o->json);
    free(rep.hist);
    return rc < 0 ? 1 : rc;
}

/* `attune load`: returns the exit code (0 all acknowledged, 1 failures, 2
 * usage). Thread: main. */
int at_cli_load(int argc, char **argv)
{
    at_load_opts_t o;
    char err[256];
    at_load_opts_default(&o);
    int rc = at_load_opts_parse(&o, argc, argv, stdout, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc < 0) {
        (void)fprintf(stderr, "attune load: %s (see attune load --help)\n", err);
        return 2;
    }
    if (!o.seed_set)
        o.gen.seed = random_seed();
    return o.out ? write_out(&o) : send_load(&o);
}
