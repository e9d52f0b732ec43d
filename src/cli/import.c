/* import.c - `attune import`: historical events through ingestion and
 * processing exactly as if they had arrived live, as fast as the engine can
 * take them (DESIGN.md §6, docs/operations.md "Importing historical events").
 *
 * Input: NDJSON lines, passed on as they are, or CSV rows, each turned into
 * one event object (import.h); from files or stdin; fed in input order, or
 * with --sort read whole and sorted by timestamp (stable) first.
 *
 * Two targets:
 *   - a data directory (the default): the engine runs in this process with
 *     stream.ticks=false, so historical data keeps its own time. Batches go
 *     through attune_ingest() from the main thread, at most
 *     AT_IMP_INFLIGHT - 1 unanswered at a time; at the end the import waits
 *     for every answer, then until processing has caught up, and
 *     attune_close() writes the final checkpoints. A data directory held by
 *     a running server is refused: the log's writer lock makes
 *     attune_open() fail with -EBUSY.
 *   - a running server (--url): NDJSON batches over keep-alive connections,
 *     one thread each. An event travels on the connection its user key's
 *     partition hash picks modulo the number of connections: when that
 *     number divides the server's partition count (16 by default), all the
 *     events of a partition go over one connection, in input order.
 *
 * THREAD SAFETY: the main thread reads, converts, batches and prints the
 * progress line. Ingest callbacks (the engine's writer thread) and the
 * connection threads count answers into atomics, note reject reasons and
 * fatal errors under run->mu, and give batches back to their pool (its
 * mutex and condition variable).
 */
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "at_cli.h"
#include "at_config.h"
#include "at_json.h"
#include "attune.h"
#include "import.h"
#include "load.h"

#define AT_IMP_LINE_MAX ((size_t)16 << 20)    /* a longer input line stops the import */
#define AT_IMP_SORT_MAX ((size_t)2 << 30)     /* --sort holds at most this much */
#define AT_IMP_CHUNK ((size_t)1 << 20)        /* read(2) size */
#define AT_IMP_INFLIGHT 8                     /* batches of the in-process pool */
#define AT_IMP_LANE_BATCHES 3                 /* batches per connection */
#define AT_IMP_REASONS 10                     /* reject reasons printed */
#define AT_IMP_TICK_NS 250000000LL            /* progress line period */
#define AT_IMP_GIVE_UP_NS 30000000000LL       /* a server unreachable this long */
#define AT_IMP_IO_TIMEOUT_S 120               /* one request's send or answer */
#define AT_IMP_DEFAULT_BODY ((size_t)1 << 20) /* the server's http.max_body_bytes */

/* ============================================================================
 * CSV records, columns and rows (import.h)
 * ========================================================================== */

/* Splits one record; see import.h. Thread: any. */
int at_imp_csv_split(const char *s, size_t n, char sep, at_buf_t *out, at_imp_field_t *f, int maxf,
                     const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    at_buf_reset(out);
    if (at_buf_reserve(out, n + 1) < 0) {
        *why = "the record is too long";
        return AT_ETOOBIG;
    }
    char *d = out->data; /* decoded bytes never outgrow the record */
    size_t i = 0;
    int nf = 0;
    for (;;) {
        if (nf == maxf) {
            *why = "too many fields";
            return AT_ETOOBIG;
        }
        char *start = d;
        if (i < n && s[i] == '"') {
            for (i++;; i++) {
                if (i == n)
                    return AT_IMP_CSV_MORE;
                if (s[i] == '"') {
                    if (i + 1 == n || s[i + 1] != '"')
                        break;
                    i++; /* "" is one quote */
                }
                *d++ = s[i];
            }
            i++; /* past the closing quote */
            if (i < n && s[i] != sep) {
                *why = "text after a closing quote";
                return AT_EPARSE;
            }
        } else {
            while (i < n && s[i] != sep)
                *d++ = s[i++];
        }
        f[nf++] = (at_imp_field_t){start, (size_t)(d - start)};
        if (i == n)
            break;
        i++; /* the separator */
    }
    out->len = (size_t)(d - out->data);
    out->data[out->len] = '\0';
    return nf;
}

static bool at_imp__ieq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* See import.h. Thread: any. */
const char *at_imp_col_canonical(const char *name, size_t n)
{
    static const char *const alias[][2] = {
        {"type", "type"},
        {"event", "type"},
        {"user_id", "user_id"},
        {"user", "user_id"},
        {"userId", "user_id"},
        {"anonymous_id", "anonymous_id"},
        {"anonymousId", "anonymous_id"},
        {"item_id", "item_id"},
        {"item", "item_id"},
        {"category", "category"},
        {"timestamp", "timestamp"},
        {"ts", "timestamp"},
        {"time", "timestamp"},
        {"event_id", "event_id"},
        {"messageId", "event_id"},
        {"session_id", "session_id"},
        {"sessionId", "session_id"},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(alias); i++)
        if (at_imp__ieq(name, n, alias[i][0]))
            return alias[i][1];
    return NULL;
}

/* Which members share a namespace in the event object. */
static int at_imp__col_space(at_imp_col_kind_t k)
{
    return k == AT_IMP_COL_CONTEXT ? 1 : k == AT_IMP_COL_PROP ? 2 : 0;
}

/* Classifies one trimmed name into c. */
static void at_imp__col_classify(at_imp_col_t *c, const char *s, size_t n,
                                 const char *const *keep_from, const char *const *keep_to,
                                 size_t nkeep)
{
    const char *canon = at_imp_col_canonical(s, n);
    c->kind = AT_IMP_COL_PROP;
    for (size_t k = 0; k < nkeep; k++) {
        if (strlen(keep_from[k]) == n && !memcmp(keep_from[k], s, n)) {
            /* the operator's mapping wins over the built-in names */
            c->kind = !strcmp(keep_to[k], "timestamp") ? AT_IMP_COL_TIMESTAMP : AT_IMP_COL_TOP;
            canon = NULL;
            break;
        }
    }
    if (n == 0 || (n == 1 && *s == '-')) {
        c->kind = AT_IMP_COL_SKIP;
    } else if (canon) {
        c->kind = !strcmp(canon, "timestamp") ? AT_IMP_COL_TIMESTAMP : AT_IMP_COL_FIELD;
        s = canon;
        n = strlen(canon);
    } else if (c->kind == AT_IMP_COL_PROP && n > 8 && !strncmp(s, "context.", 8)) {
        c->kind = AT_IMP_COL_CONTEXT;
        s += 8;
        n -= 8;
    } else if (c->kind == AT_IMP_COL_PROP && n > 11 && !strncmp(s, "properties.", 11)) {
        s += 11;
        n -= 11;
    }
    c->name = at_xstrndup(s, n);
    c->len = n;
}

/* See import.h. Thread: any. */
int at_imp_cols_set(at_imp_cols_t *cols, const at_imp_field_t *names, int nf,
                    const char *const *keep_from, const char *const *keep_to, size_t nkeep,
                    char *err, size_t errlen)
{
    memset(cols, 0, sizeof *cols);
    if (nf > AT_IMP_MAX_COLUMNS) {
        (void)snprintf(err, errlen, "%d columns; at most %d", nf, AT_IMP_MAX_COLUMNS);
        return AT_EINVALID;
    }
    for (int i = 0; i < nf; i++) {
        const char *s = names[i].s;
        size_t n = names[i].n;
        while (n && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
            n--;
        at_imp_col_t *c = &cols->c[cols->n++];
        at_imp__col_classify(c, s, n, keep_from, keep_to, nkeep);
        if (c->kind == AT_IMP_COL_FIELD && !strcmp(c->name, "type"))
            cols->has_type = true;
        for (int j = 0; j < i && c->kind != AT_IMP_COL_SKIP; j++) {
            const at_imp_col_t *o = &cols->c[j];
            if (o->kind != AT_IMP_COL_SKIP &&
                at_imp__col_space(o->kind) == at_imp__col_space(c->kind) && o->len == c->len &&
                !memcmp(o->name, c->name, c->len)) {
                (void)snprintf(err, errlen, "columns %d and %d both give %s%s", j + 1, i + 1,
                               c->kind == AT_IMP_COL_CONTEXT ? "context."
                               : c->kind == AT_IMP_COL_PROP  ? "properties."
                                                             : "",
                               c->name);
                return AT_EINVALID;
            }
        }
    }
    return 0;
}

/* Frees the names; cols is left empty. */
void at_imp_cols_free(at_imp_cols_t *cols)
{
    for (int i = 0; i < cols->n; i++)
        free(cols->c[i].name);
    cols->n = 0;
}

/* See import.h. Thread: any. */
bool at_imp_is_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i == n || s[i] < '0' || s[i] > '9')
        return false;
    if (s[i++] != '0')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    return i == n;
}

/* See import.h. Thread: any. */
int at_imp_epoch_ms(const char *s, size_t n, at_imp_unit_t unit, int64_t *ms)
{
    while (n && *s == ' ')
        s++, n--;
    while (n && s[n - 1] == ' ')
        n--;
    size_t i = 0;
    int64_t ip = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i < 18)
        ip = ip * 10 + (s[i++] - '0');
    if (i == 0)
        return 0;
    int64_t frac = 0; /* milliseconds of a fraction of a second */
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        for (int k = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++)
            if (k < 3)
                frac = frac * 10 + (s[i] - '0');
        if (i == d)
            return 0;
        for (size_t k = i - d; k < 3; k++)
            frac *= 10;
    }
    if (i != n)
        return 0;
    if (unit == AT_IMP_TIME_AUTO)
        unit = ip < INT64_C(100000000000) ? AT_IMP_TIME_S : AT_IMP_TIME_MS;
    if (unit == AT_IMP_TIME_MS) {
        *ms = ip;
        return 1;
    }
    if (ip > INT64_C(9000000000000000)) /* ms would overflow */
        return 0;
    *ms = ip * 1000 + frac;
    return 1;
}

/* Appends ,"name": (or without the comma for the first member). */
static int at_imp__key(at_buf_t *out, bool *first, const char *name, size_t n)
{
    int rc = *first ? 0 : at_buf_putc(out, ',');
    *first = false;
    if (!rc)
        rc = at_buf_json_str(out, name, n);
    return rc ? rc : at_buf_putc(out, ':');
}

/* Appends the value of one field of kind k. */
static int at_imp__value(at_buf_t *out, at_imp_col_kind_t k, const at_imp_field_t *v,
                         const at_imp_rowopt_t *o)
{
    int64_t ms;
    if (k == AT_IMP_COL_TIMESTAMP && at_imp_epoch_ms(v->s, v->n, o->unit, &ms))
        return at_buf_i64(out, ms);
    if (k == AT_IMP_COL_PROP && at_imp_is_number(v->s, v->n))
        return at_buf_append(out, v->s, v->n);
    if (k == AT_IMP_COL_CONTEXT && at_imp_is_number(v->s, v->n))
        return at_buf_append(out, v->s, v->n);
    return at_buf_json_str(out, v->s, v->n);
}

/* Appends one nested object ("context" or "properties") of the row's
 * columns of kind k, if any of them is not empty. */
static int at_imp__nested(at_buf_t *out, bool *first, const at_imp_cols_t *cols,
                          const at_imp_field_t *f, int nf, at_imp_col_kind_t k,
                          const at_imp_rowopt_t *o)
{
    bool inner = true;
    int rc = 0;
    for (int i = 0; i < nf && !rc; i++) {
        if (cols->c[i].kind != k || f[i].n == 0)
            continue;
        if (inner)
            rc = at_imp__key(out, first, k == AT_IMP_COL_CONTEXT ? "context" : "properties",
                             k == AT_IMP_COL_CONTEXT ? 7 : 10);
        if (!rc && inner)
            rc = at_buf_putc(out, '{');
        if (!rc)
            rc = at_imp__key(out, &inner, cols->c[i].name, cols->c[i].len);
        if (!rc)
            rc = at_imp__value(out, k, &f[i], o);
    }
    return rc || inner ? rc : at_buf_putc(out, '}');
}

/* Whether the row gives a type. */
static bool at_imp__row_typed(const at_imp_cols_t *cols, const at_imp_field_t *f, int nf)
{
    for (int i = 0; i < nf; i++)
        if (cols->c[i].kind == AT_IMP_COL_FIELD && f[i].n && !strcmp(cols->c[i].name, "type"))
            return true;
    return false;
}

/* See import.h. Thread: any. */
int at_imp_row_json(const at_imp_cols_t *cols, const at_imp_field_t *f, int nf,
                    const at_imp_rowopt_t *o, at_buf_t *out, char *why, size_t whylen)
{
    if (nf > cols->n) {
        (void)snprintf(why, whylen, "the row has %d fields, the columns are %d", nf, cols->n);
        return AT_EINVALID;
    }
    size_t start = out->len;
    bool first = true;
    int rc = at_buf_putc(out, '{');
    if (!rc && !at_imp__row_typed(cols, f, nf)) {
        rc = at_imp__key(out, &first, "type", 4);
        if (!rc)
            rc = at_buf_json_str(out, o->type, strlen(o->type));
    }
    for (int i = 0; i < nf && !rc; i++) {
        at_imp_col_kind_t k = cols->c[i].kind;
        if (f[i].n == 0 || k == AT_IMP_COL_SKIP || k == AT_IMP_COL_CONTEXT || k == AT_IMP_COL_PROP)
            continue;
        rc = at_imp__key(out, &first, cols->c[i].name, cols->c[i].len);
        if (!rc)
            rc = at_imp__value(out, k, &f[i], o);
    }
    if (!rc)
        rc = at_imp__nested(out, &first, cols, f, nf, AT_IMP_COL_CONTEXT, o);
    if (!rc)
        rc = at_imp__nested(out, &first, cols, f, nf, AT_IMP_COL_PROP, o);
    if (!rc)
        rc = at_buf_putc(out, '}');
    if (rc) {
        out->len = start;
        out->data[start] = '\0';
        (void)snprintf(why, whylen, "the event is too large");
    }
    return rc;
}

static const char *at_imp__ext(const char *path)
{
    const char *base = strrchr(path, '/');
    const char *dot = strrchr(base ? base + 1 : path, '.');
    return dot ? dot : "";
}

/* See import.h. Thread: any. */
int at_imp_guess_format(const char *path, int first)
{
    const char *e = at_imp__ext(path);
    if (!strcasecmp(e, ".ndjson") || !strcasecmp(e, ".jsonl") || !strcasecmp(e, ".json"))
        return AT_IMP_NDJSON;
    if (!strcasecmp(e, ".csv") || !strcasecmp(e, ".tsv"))
        return AT_IMP_CSV;
    return first < 0 || first == '{' ? AT_IMP_NDJSON : AT_IMP_CSV;
}

/* See import.h. Thread: any. */
char at_imp_guess_sep(const char *path, const char *line, size_t n)
{
    if (!strcasecmp(at_imp__ext(path), ".tsv"))
        return '\t';
    return memchr(line, '\t', n) && !memchr(line, ',', n) ? '\t' : ',';
}

/* ============================================================================
 * The run: options, counters, batches
 * ========================================================================== */

typedef struct at_imp_opts {
    const char *config, *data_dir, *url, *key, *columns, *type;
    const char *sets[64]; /* borrowed from argv */
    int nsets;
    int format;
    char sep; /* 0: guess */
    at_imp_unit_t unit;
    uint32_t batch, connections;
    bool sort, json;
    char **files;
    int nfiles;
} at_imp_opts_t;

typedef struct at_imp_where {
    uint32_t file; /* index into the run's files */
    uint64_t line; /* 1-based line where the event starts */
} at_imp_where_t;

typedef struct at_imp_run at_imp_run_t;
typedef struct at_imp_pool at_imp_pool_t;

typedef struct at_imp_batch {
    struct at_imp_batch *next;
    at_imp_pool_t *pool;
    at_imp_run_t *run;
    at_buf_t body;         /* NDJSON */
    uint32_t n;            /* events in body */
    at_imp_where_t *where; /* n of them, for reject messages */
} at_imp_batch_t;

/* Batches to fill (free) and, for a connection, batches to send (queue). */
struct at_imp_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    at_imp_batch_t *free;
    at_imp_batch_t *q, *qtail;
    int out;   /* batches taken and not given back */
    bool done; /* nothing more will be queued */
};

typedef struct at_imp_lane {
    at_imp_run_t *run;
    at_imp_pool_t pool;
    at_imp_batch_t *cur; /* being filled by the main thread */
    pthread_t thread;
    bool started;
    int fd; /* the keep-alive connection, -1 when closed */
    at_load_resp_t resp;
} at_imp_lane_t;

typedef struct at_imp_sorted {
    int64_t ts;
    uint64_t seq;
    size_t off; /* the event's bytes in run->held */
    size_t len;
    at_imp_where_t where;
} at_imp_sorted_t;

typedef struct at_imp_sample {
    int64_t ns;
    uint64_t read, bytes;
} at_imp_sample_t;

struct at_imp_run {
    const at_imp_opts_t *o;
    const at_config_t *cfg; /* the engine's or the --config file's; may be NULL */
    at_config_t own_cfg;    /* --url --config */
    attune_t *engine;
    size_t body_max;
    const char *keep_from[64], *keep_to[64]; /* top-level sources of the mapping */
    size_t nkeep;
    const char *map_user, *map_anon, *map_ts; /* for at_imp__probe */
    /* input */
    uint64_t bytes, total;
    at_buf_t line, rec, scratch, ev;
    at_imp_field_t fields[AT_IMP_MAX_COLUMNS + 1];
    at_imp_cols_t cols;
    at_arena_t arena;
    /* counts: read by the main thread, the rest by whoever learns of them;
     * local_rejected: events refused before the engine saw them */
    uint64_t read;
    _Atomic uint64_t accepted, duplicates, rejected, local_rejected;
    /* the data directory target */
    at_imp_pool_t pool;
    at_imp_batch_t *cur;
    /* the server target */
    at_imp_lane_t *lanes;
    struct sockaddr_storage addr;
    char hostport[300];
    /* --sort */
    at_buf_t held;
    at_imp_sorted_t *sorted;
    size_t nsorted, capsorted;
    /* what went wrong */
    pthread_mutex_t mu; /* guards fatal, reasons, nreasons and more_reasons */
    char fatal[600];
    char reasons[AT_IMP_REASONS][400];
    uint64_t more_reasons;
    /* progress */
    int64_t t0_ns, next_ns;
    at_imp_sample_t samples[8];
    const char *phase; /* what the main thread does when not reading, or NULL */
    /* the small ones */
    uint32_t batch;
    socklen_t addrlen;
    int nreasons;
    unsigned nsamples;
    atomic_bool stop;
    bool own_cfg_set, total_known, cols_set;
    bool tty, printed;
};

static volatile sig_atomic_t at_imp__interrupted;

static void at_imp__on_sigint(int sig)
{
    (void)sig;
    at_imp__interrupted = 1;
}

/* A file's name in messages. */
static const char *at_imp__name(const at_imp_run_t *r, uint32_t file)
{
    return strcmp(r->o->files[file], "-") ? r->o->files[file] : "stdin";
}

static bool at_imp__stopping(at_imp_run_t *r)
{
    return atomic_load(&r->stop) || at_imp__interrupted;
}

/* Records the first fatal error and stops the import. Any thread. */
static void at_imp__fail(at_imp_run_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void at_imp__fail(at_imp_run_t *r, const char *fmt, ...)
{
    pthread_mutex_lock(&r->mu);
    if (!r->fatal[0]) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(r->fatal, sizeof r->fatal, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&r->mu);
    atomic_store(&r->stop, true);
}

/* Keeps one reject's reason for the end. Any thread. */
static void at_imp__reason(at_imp_run_t *r, at_imp_where_t w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void at_imp__reason(at_imp_run_t *r, at_imp_where_t w, const char *fmt, ...)
{
    pthread_mutex_lock(&r->mu);
    if (r->nreasons < AT_IMP_REASONS) {
        char *d = r->reasons[r->nreasons++];
        int k = snprintf(d, sizeof r->reasons[0], "%s:%llu: ", at_imp__name(r, w.file),
                         (unsigned long long)w.line);
        va_list ap;
        va_start(ap, fmt);
        if (k > 0 && (size_t)k < sizeof r->reasons[0])
            (void)vsnprintf(d + k, sizeof r->reasons[0] - (size_t)k, fmt, ap);
        va_end(ap);
    } else {
        r->more_reasons++;
    }
    pthread_mutex_unlock(&r->mu);
}

/* ---- the progress line ----------------------------------------------------- */

/* Rewrites the progress line on a terminal, at most 4 times a second
 * (force: now). phase (may be NULL) says what is being waited for. Main
 * thread. */
static void at_imp__progress(at_imp_run_t *r, const char *phase, bool force)
{
    if (!r->tty)
        return;
    int64_t now = at_time_mono_ns();
    if (!force && now < r->next_ns)
        return;
    r->next_ns = now + AT_IMP_TICK_NS;
    at_imp_sample_t *s = &r->samples[r->nsamples++ % AT_ARRAY_LEN(r->samples)];
    *s = (at_imp_sample_t){now, r->read, r->bytes};
    unsigned back = r->nsamples > 5 ? 4 : r->nsamples - 1; /* about a second ago */
    const at_imp_sample_t *old = &r->samples[(r->nsamples - 1 - back) % AT_ARRAY_LEN(r->samples)];
    double dt = (double)(now - old->ns) / 1e9;
    double rate = dt > 0 ? (double)(r->read - old->read) / dt : 0;
    double brate = dt > 0 ? (double)(r->bytes - old->bytes) / dt : 0;
    char line[300];
    int k = snprintf(
        line, sizeof line, "import: %llu read, %.0f events/s, %llu accepted, %llu rejected",
        (unsigned long long)r->read, rate, (unsigned long long)atomic_load(&r->accepted),
        (unsigned long long)(atomic_load(&r->rejected) + atomic_load(&r->local_rejected)));
    if (k > 0 && (size_t)k < sizeof line && r->total_known && r->total > 0 && !phase) {
        double left = (double)(r->total - AT_MIN(r->bytes, r->total));
        long eta = brate > 0 ? (long)(left / brate + 0.5) : -1;
        k += snprintf(line + k, sizeof line - (size_t)k, ", %.1f%%",
                      100.0 * (double)AT_MIN(r->bytes, r->total) / (double)r->total);
        if (eta >= 0 && (size_t)k < sizeof line)
            k += snprintf(line + k, sizeof line - (size_t)k, ", ETA %ld:%02ld", eta / 60, eta % 60);
    }
    if (phase && k > 0 && (size_t)k < sizeof line)
        (void)snprintf(line + k, sizeof line - (size_t)k, ", %s", phase);
    (void)fprintf(stderr, "\r%s\033[K", line);
    r->printed = true;
}

static void at_imp__progress_clear(at_imp_run_t *r)
{
    if (r->tty && r->printed)
        (void)fputs("\r\033[K", stderr);
    r->printed = false;
}

static void at_imp__sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- pools of batches --------------------------------------------------------- */

static void at_imp__pool_init(at_imp_pool_t *p, at_imp_run_t *r, int n)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < n; i++) {
        at_imp_batch_t *b = at_xcalloc(1, sizeof *b);
        b->pool = p;
        b->run = r;
        at_buf_init(&b->body, 0);
        b->where = at_xcalloc(r->batch, sizeof *b->where);
        b->next = p->free;
        p->free = b;
    }
}

static void at_imp__pool_deinit(at_imp_pool_t *p)
{
    AT_ASSERT(p->out == 0);
    for (at_imp_batch_t *b = p->free, *next; b; b = next) {
        next = b->next;
        at_buf_deinit(&b->body);
        free(b->where);
        free(b);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

/* Gives b back to its pool, emptied. Any thread. */
static void at_imp__pool_give(at_imp_batch_t *b)
{
    at_imp_pool_t *p = b->pool;
    at_buf_reset(&b->body);
    b->n = 0;
    pthread_mutex_lock(&p->mu);
    b->next = p->free;
    p->free = b;
    p->out--;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Waits on p's condition for at most one progress tick. Called with p->mu. */
static void at_imp__pool_wait(at_imp_pool_t *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += AT_IMP_TICK_NS;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

/* Takes an empty batch, waiting for one to come back. Main thread. */
static at_imp_batch_t *at_imp__pool_take(at_imp_run_t *r, at_imp_pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    while (!p->free) {
        at_imp__pool_wait(p);
        pthread_mutex_unlock(&p->mu);
        at_imp__progress(r, r->phase, false);
        pthread_mutex_lock(&p->mu);
    }
    at_imp_batch_t *b = p->free;
    p->free = b->next;
    p->out++;
    pthread_mutex_unlock(&p->mu);
    b->next = NULL;
    return b;
}

/* Waits until every batch of p is back. Main thread. */
static void at_imp__pool_drain(at_imp_run_t *r, at_imp_pool_t *p, const char *phase)
{
    pthread_mutex_lock(&p->mu);
    while (p->out > 0) {
        at_imp__pool_wait(p);
        pthread_mutex_unlock(&p->mu);
        at_imp__progress(r, phase, false);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
}

/* Queues a full batch for p's connection. Main thread. */
static void at_imp__pool_push(at_imp_pool_t *p, at_imp_batch_t *b)
{
    pthread_mutex_lock(&p->mu);
    b->next = NULL;
    if (p->qtail)
        p->qtail->next = b;
    else
        p->q = b;
    p->qtail = b;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* The next batch to send, or NULL once p is done and empty. Connection
 * thread. */
static at_imp_batch_t *at_imp__pool_pop(at_imp_pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    while (!p->q && !p->done)
        pthread_cond_wait(&p->cv, &p->mu);
    at_imp_batch_t *b = p->q;
    if (b) {
        p->q = b->next;
        if (!p->q)
            p->qtail = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    return b;
}

static void at_imp__pool_finish(at_imp_pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    p->done = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---- answers ----------------------------------------------------------------- */

/* Notes the reasons of the rejects listed in an ingest answer
 * {"rejected":[{"index","code","error","field"},..]}. Any thread. */
static void at_imp__note_rejects(at_imp_run_t *r, const at_imp_batch_t *b, const char *json,
                                 size_t len)
{
    at_arena_t arena;
    at_arena_init(&arena, 8192);
    at_json_t *root = NULL;
    at_error_t e;
    if (at_json_parse_all(json, len, &arena, 16, &root, &e) == 0 && root->type == AT_JSON_OBJECT) {
        const at_json_t *rej = at_json_get(root, "rejected", 8);
        for (const at_json_t *x = rej ? rej->child : NULL; x; x = x->next) {
            const at_json_t *ix = at_json_get(x, "index", 5);
            const at_json_t *code = at_json_get(x, "code", 4);
            const at_json_t *msg = at_json_get(x, "error", 5);
            int64_t i = -1;
            if (!ix || at_json_i64(ix, &i) < 0 || i < 0 || (uint64_t)i >= b->n)
                continue;
            bool cs = code && code->type == AT_JSON_STRING, ms = msg && msg->type == AT_JSON_STRING;
            at_imp__reason(r, b->where[i], "%.*s: %.*s", cs ? (int)code->len : 0, cs ? code->s : "",
                           ms ? (int)msg->len : 0, ms ? msg->s : "");
        }
    }
    at_arena_deinit(&arena);
}

/* An answer from the engine. Writer thread: counts and gives the batch
 * back, nothing that blocks. */
static void at_imp__on_ingest(void *ud, const attune_ingest_result_t *res)
{
    at_imp_batch_t *b = ud;
    at_imp_run_t *r = b->run;
    if (res->status < 0) {
        at_imp__fail(r, "%s",
                     res->error.message[0] ? res->error.message : attune_strerror(res->status));
    } else {
        atomic_fetch_add(&r->accepted, res->accepted);
        atomic_fetch_add(&r->duplicates, res->duplicates);
        atomic_fetch_add(&r->rejected, res->rejected);
        if (res->rejected)
            at_imp__note_rejects(r, b, res->json, res->json_len);
    }
    at_imp__pool_give(b);
}

/* ---- the data directory target -------------------------------------------------- */

static void at_imp__ingest(at_imp_run_t *r, at_imp_batch_t *b);

/* The events of b one by one, each in a batch of its own (b is given
 * back). For a body refused as a whole: nesting past the parser's hard
 * limit fails a whole NDJSON body, and then only that event should be
 * refused. Main thread. */
static void at_imp__ingest_each(at_imp_run_t *r, at_imp_batch_t *b)
{
    const char *p = b->body.data, *end = p + b->body.len;
    for (uint32_t i = 0; i < b->n && p < end && !at_imp__stopping(r); i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        at_imp_batch_t *one = at_imp__pool_take(r, &r->pool);
        AT_ASSERT(at_buf_append(&one->body, p, n) == 0); /* batch bodies have no cap */
        one->where[0] = b->where[i];
        one->n = 1;
        at_imp__ingest(r, one);
        p += n;
    }
    at_imp__pool_give(b);
}

/* Hands a full batch to the engine, retrying while its queues are full.
 * Takes b (it goes back to the pool once answered). Main thread. */
static void at_imp__ingest(at_imp_run_t *r, at_imp_batch_t *b)
{
    for (int wait_ms = 1;;) {
        attune_error_t e = {0};
        int rc = attune_ingest(r->engine, b->body.data, b->body.len, ATTUNE_BODY_NDJSON, 0,
                               at_imp__on_ingest, b, &e);
        if (rc == 0)
            return;
        if ((rc == ATTUNE_EPARSE || rc == ATTUNE_ETOOBIG) && b->n > 1) {
            at_imp__ingest_each(r, b);
            return;
        }
        if (rc == ATTUNE_EPARSE || rc == ATTUNE_ETOOBIG) {
            atomic_fetch_add(&r->local_rejected, 1);
            at_imp__reason(r, b->where[0], "%s: %s", e.code, e.message);
            at_imp__pool_give(b);
            return;
        }
        bool retry = rc == ATTUNE_EFULL || (rc == ATTUNE_EUNAVAIL && !attune_ready(r->engine));
        if (!retry)
            at_imp__fail(r, "%s", e.message[0] ? e.message : attune_strerror(rc));
        if (!retry || at_imp__stopping(r)) {
            at_imp__pool_give(b);
            return;
        }
        at_imp__progress(r, "the engine's queues are full", false);
        at_imp__sleep_ms(wait_ms);
        wait_ms = AT_MIN(wait_ms * 2, 20);
    }
}

/* Builds the engine's overrides: ticks off and quiet logs, then the
 * user's. Returns owned strings in ov (NULL-terminated, at most 72). */
static void at_imp__overrides(const at_imp_opts_t *o, char **ov)
{
    int k = 0;
    ov[k++] = at_xstrdup("stream.ticks=false");
    ov[k++] = at_xstrdup("log.zero_ahead=0"); /* one pass of writes, not two */
    ov[k++] = at_xstrdup("log_level=warn");
    if (o->data_dir) {
        size_t n = strlen(o->data_dir) + 10;
        ov[k] = at_xmalloc(n);
        (void)snprintf(ov[k++], n, "data_dir=%s", o->data_dir);
    }
    for (int i = 0; i < o->nsets; i++)
        ov[k++] = at_xstrdup(o->sets[i]);
    ov[k] = NULL;
}

/* Opens the engine over the data directory. Returns 0 or 1 (the message
 * printed). Main thread. */
static int at_imp__open(at_imp_run_t *r)
{
    char *ov[72];
    char err[512] = "";
    at_imp__overrides(r->o, ov);
    int rc = attune_open(&r->engine, r->o->config, (const char *const *)ov, err, sizeof err);
    for (int i = 0; ov[i]; i++)
        free(ov[i]);
    if (rc == -EBUSY || rc == -EWOULDBLOCK) {
        (void)fprintf(stderr,
                      "attune import: the data directory %s is in use (%s): a running server "
                      "holds it; stop it first, or import into it with --url http://HOST:PORT\n",
                      r->o->data_dir ? r->o->data_dir : "./attune-data", err);
        return 1;
    }
    if (rc < 0) {
        (void)fprintf(stderr, "attune import: %s\n", err[0] ? err : attune_strerror(rc));
        return 1;
    }
    while (!attune_ready(r->engine) && !at_imp__interrupted) {
        at_imp__progress(r, "recovering the log", false);
        at_imp__sleep_ms(5);
    }
    r->cfg = attune_config(r->engine);
    return 0;
}

/* After the last batch: every answer, then processing, then the final
 * checkpoints. Main thread. */
static void at_imp__finish_engine(at_imp_run_t *r)
{
    if (r->cur && r->cur->n && !at_imp__stopping(r))
        at_imp__ingest(r, r->cur);
    else if (r->cur)
        at_imp__pool_give(r->cur);
    r->cur = NULL;
    at_imp__pool_drain(r, &r->pool, "waiting for the log");
    while (attune_wait_idle(r->engine, 250) == ATTUNE_EUNAVAIL)
        at_imp__progress(r, "processing", false);
    at_imp__progress(r, "writing checkpoints", true);
    attune_close(r->engine);
    r->engine = NULL;
    r->cfg = NULL; /* it was the engine's */
    r->nkeep = 0;
    r->map_user = r->map_anon = r->map_ts = NULL;
}

/* ---- the server target ---------------------------------------------------------- */

static int at_imp__resolve(at_imp_run_t *r, const char *url)
{
    at_load_opts_t lo;
    at_load_opts_default(&lo);
    if (at_load_parse_url(url, &lo) < 0) {
        (void)fprintf(stderr, "attune import: --url wants http://HOST:PORT, not '%s'\n", url);
        return 2;
    }
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(lo.host, lo.port, &hints, &res);
    if (rc != 0) {
        (void)fprintf(stderr, "attune import: cannot resolve %s: %s\n", lo.host, gai_strerror(rc));
        return 1;
    }
    memcpy(&r->addr, res->ai_addr, res->ai_addrlen);
    r->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    bool v6 = strchr(lo.host, ':') != NULL;
    (void)snprintf(r->hostport, sizeof r->hostport, "%s%s%s:%s", v6 ? "[" : "", lo.host,
                   v6 ? "]" : "", lo.port);
    return 0;
}

static void at_imp__lane_close(at_imp_lane_t *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}

static int at_imp__connect(at_imp_lane_t *l)
{
    const at_imp_run_t *r = l->run;
    int fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    struct timeval tv = {10, 0}; /* Linux applies the send timeout to connect() */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (const struct sockaddr *)&r->addr, r->addrlen) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    tv.tv_sec = AT_IMP_IO_TIMEOUT_S;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    l->fd = fd;
    return 0;
}

/* Writes the request: head and body. Returns 0 or -errno. */
static int at_imp__send(at_imp_lane_t *l, const at_imp_batch_t *b)
{
    char head[1024];
    const char *key = l->run->o->key;
    int hl =
        snprintf(head, sizeof head,
                 "POST /v1/events HTTP/1.1\r\nHost: %s\r\nUser-Agent: attune-import/" AT_VERSION
                 "\r\nContent-Type: application/x-ndjson\r\nContent-Length: %zu\r\n%s%s%s\r\n",
                 l->run->hostport, b->body.len, key ? "Authorization: Bearer " : "", key ? key : "",
                 key ? "\r\n" : "");
    AT_ASSERT(hl > 0 && (size_t)hl < sizeof head); /* the key's length is checked */
    size_t total = (size_t)hl + b->body.len, sent = 0;
    while (sent < total) {
        struct iovec iov[2];
        int cnt = 0;
        if (sent < (size_t)hl) {
            iov[cnt++] = (struct iovec){head + sent, (size_t)hl - sent};
            iov[cnt++] = (struct iovec){b->body.data, b->body.len};
        } else {
            iov[cnt++] = (struct iovec){b->body.data + (sent - (size_t)hl), total - sent};
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t w = sendmsg(l->fd, &m, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        sent += (size_t)w;
    }
    return 0;
}

/* Reads one whole answer into l->resp. Returns 0 with *body_len, or <0. */
static int at_imp__receive(at_imp_lane_t *l, size_t *body_len)
{
    at_load_resp_t *resp = &l->resp;
    at_load_resp_reset(resp);
    for (;;) {
        int rc = at_load_resp_parse(resp, false, body_len);
        if (rc != 0)
            return rc < 0 ? rc : 0;
        at_buf_t *in = &resp->in;
        size_t room = AT_MIN((size_t)65536, in->max - in->len);
        if (room == 0 || at_buf_reserve(in, room) < 0)
            return AT_ETOOBIG;
        ssize_t n = read(l->fd, in->data + in->len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        if (n == 0) {
            rc = at_load_resp_parse(resp, true, body_len);
            return rc == 1 ? 0 : rc < 0 ? rc : -ECONNRESET;
        }
        in->len += (size_t)n;
        in->data[in->len] = '\0';
    }
}

/* The message of an error answer {"error":{"message":..}}, or its first
 * bytes. */
static void at_imp__error_text(const char *body, size_t len, char *out, size_t outlen)
{
    at_arena_t arena;
    at_arena_init(&arena, 4096);
    at_json_t *root = NULL;
    at_error_t e;
    const at_json_t *m = NULL;
    if (at_json_parse_all(body, len, &arena, 8, &root, &e) == 0 && root->type == AT_JSON_OBJECT) {
        const at_json_t *err = at_json_get(root, "error", 5);
        m = err && err->type == AT_JSON_OBJECT ? at_json_get(err, "message", 7) : NULL;
    }
    if (m && m->type == AT_JSON_STRING)
        (void)snprintf(out, outlen, "%.*s", (int)m->len, m->s);
    else
        (void)snprintf(out, outlen, "%.*s", (int)AT_MIN(len, (size_t)200), body);
    at_arena_deinit(&arena);
}

/* Acts on a 200 answer. */
static void at_imp__on_ok(at_imp_lane_t *l, const at_imp_batch_t *b, const char *body, size_t len)
{
    at_imp_run_t *r = l->run;
    at_load_ack_t ack;
    if (at_load_ack_parse(body, len, &ack, NULL, 0) < 0 || ack.accepted < 0) {
        at_imp__fail(r, "the server's answer is not an ingest answer: %.*s",
                     (int)AT_MIN(len, (size_t)200), body);
        return;
    }
    atomic_fetch_add(&r->accepted, (uint64_t)ack.accepted);
    atomic_fetch_add(&r->duplicates, ack.duplicates > 0 ? (uint64_t)ack.duplicates : 0);
    atomic_fetch_add(&r->rejected, ack.rejected);
    if (ack.rejected)
        at_imp__note_rejects(r, b, body, len);
}

/* Sleeps ms in slices, giving up early when the import stops. */
static void at_imp__lane_sleep(at_imp_run_t *r, int64_t ms)
{
    for (; ms > 0 && !at_imp__stopping(r); ms -= 100)
        at_imp__sleep_ms((int)AT_MIN(ms, (int64_t)100));
}

#define AT_IMP__SPLIT 2 /* refused as a whole: send the events one by one */

/* One request-answer exchange: 1 done (answered for good), 0 try again
 * (after a wait already made), AT_IMP__SPLIT, <0 the connection failed. */
static int at_imp__exchange(at_imp_lane_t *l, const at_imp_batch_t *b)
{
    at_imp_run_t *r = l->run;
    size_t body_len = 0;
    int rc = at_imp__send(l, b);
    if (rc == 0)
        rc = at_imp__receive(l, &body_len);
    if (rc < 0)
        return rc;
    at_load_resp_t *resp = &l->resp;
    const char *body = resp->in.data + resp->head_len;
    int status = resp->status, done = 1;
    if (status == 200) {
        at_imp__on_ok(l, b, body, body_len);
    } else if (status == 429 || status == 503) {
        at_imp__lane_sleep(r, resp->retry_after_ms >= 0 ? resp->retry_after_ms : 1000);
        done = 0;
    } else if ((status == 400 || status == 413) && b->n > 1) {
        done = AT_IMP__SPLIT; /* one event may spoil the body, or the limit is lower */
    } else if (status == 400 || status == 413) {
        char msg[300];
        at_imp__error_text(body, body_len, msg, sizeof msg);
        atomic_fetch_add(&r->local_rejected, 1);
        at_imp__reason(r, b->where[0], "the server answered %d: %s", status, msg);
    } else {
        char msg[300];
        at_imp__error_text(body, body_len, msg, sizeof msg);
        at_imp__fail(r, "the server answered %d: %s", status, msg);
    }
    if (resp->close)
        at_imp__lane_close(l);
    return done;
}

/* Posts one batch until it is answered for good, the server stays
 * unreachable for AT_IMP_GIVE_UP_NS, or the import stops. Connection
 * thread. A batch whose connection broke is sent again: events without an
 * event_id may then count twice, as with any client. */
static void at_imp__post_each(at_imp_lane_t *l, const at_imp_batch_t *b);

static void at_imp__post(at_imp_lane_t *l, const at_imp_batch_t *b)
{
    at_imp_run_t *r = l->run;
    int64_t failing_since = 0, backoff_ms = 50;
    while (!at_imp__stopping(r)) {
        int rc = l->fd >= 0 ? 0 : at_imp__connect(l);
        if (rc == 0)
            rc = at_imp__exchange(l, b);
        if (rc == AT_IMP__SPLIT)
            at_imp__post_each(l, b);
        if (rc == 1 || rc == AT_IMP__SPLIT)
            return;
        if (rc == 0) {
            failing_since = 0;
            continue;
        }
        at_imp__lane_close(l);
        int64_t now = at_time_mono_ns();
        if (!failing_since)
            failing_since = now;
        if (now - failing_since > AT_IMP_GIVE_UP_NS) {
            at_imp__fail(r, "cannot reach %s: %s", r->o->url, attune_strerror(rc));
            return;
        }
        at_imp__lane_sleep(r, backoff_ms);
        backoff_ms = AT_MIN(backoff_ms * 2, (int64_t)1000);
    }
}

/* The events of b one request each, so that only the one the server
 * refuses is counted as refused. Connection thread. */
static void at_imp__post_each(at_imp_lane_t *l, const at_imp_batch_t *b)
{
    const char *p = b->body.data, *end = p + b->body.len;
    at_imp_batch_t one = {.run = l->run, .n = 1};
    at_buf_init(&one.body, 0);
    for (uint32_t i = 0; i < b->n && p < end && !at_imp__stopping(l->run); i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        at_buf_reset(&one.body);
        AT_ASSERT(at_buf_append(&one.body, p, n) == 0); /* no cap */
        one.where = &b->where[i];
        at_imp__post(l, &one);
        p += n;
    }
    at_buf_deinit(&one.body);
}

static void *at_imp__lane_main(void *arg)
{
    at_imp_lane_t *l = arg;
    at_imp_batch_t *b;
    while ((b = at_imp__pool_pop(&l->pool)) != NULL) {
        if (!at_imp__stopping(l->run))
            at_imp__post(l, b);
        at_imp__pool_give(b);
    }
    at_imp__lane_close(l);
    return NULL;
}

static int at_imp__lanes_start(at_imp_run_t *r)
{
    r->lanes = at_xcalloc(r->o->connections, sizeof *r->lanes);
    for (uint32_t i = 0; i < r->o->connections; i++) {
        at_imp_lane_t *l = &r->lanes[i];
        l->run = r;
        l->fd = -1;
        at_load_resp_init(&l->resp);
        at_imp__pool_init(&l->pool, r, AT_IMP_LANE_BATCHES);
    }
    for (uint32_t i = 0; i < r->o->connections; i++) {
        at_imp_lane_t *l = &r->lanes[i];
        int rc = pthread_create(&l->thread, NULL, at_imp__lane_main, l);
        if (rc) {
            (void)fprintf(stderr, "attune import: cannot start a thread: %s\n", at_strerror(-rc));
            return 1;
        }
        l->started = true;
    }
    return 0;
}

/* Sends what is left, lets every connection finish and frees the lanes.
 * Main thread. */
static void at_imp__lanes_finish(at_imp_run_t *r)
{
    for (uint32_t i = 0; r->lanes && i < r->o->connections; i++) {
        at_imp_lane_t *l = &r->lanes[i];
        if (l->cur && l->cur->n && !at_imp__stopping(r))
            at_imp__pool_push(&l->pool, l->cur);
        else if (l->cur)
            at_imp__pool_give(l->cur);
        l->cur = NULL;
        at_imp__pool_finish(&l->pool);
    }
    for (uint32_t i = 0; r->lanes && i < r->o->connections; i++) {
        at_imp_lane_t *l = &r->lanes[i];
        if (l->started)
            at_imp__pool_drain(r, &l->pool, "waiting for the server");
    }
    for (uint32_t i = 0; r->lanes && i < r->o->connections; i++) {
        at_imp_lane_t *l = &r->lanes[i];
        if (l->started)
            pthread_join(l->thread, NULL);
        at_imp__pool_deinit(&l->pool);
        at_load_resp_deinit(&l->resp);
    }
    free(r->lanes);
    r->lanes = NULL;
}

/* ---- what ingestion will read from an event -------------------------------------- */

/* The value at a dotted path, or NULL; null and "" count as absent. */
static const at_json_t *at_imp__at(const at_json_t *obj, const char *path)
{
    while (obj && obj->type == AT_JSON_OBJECT) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        obj = at_json_get(obj, path, n);
        if (!dot)
            break;
        path = dot + 1;
    }
    if (!obj || obj->type == AT_JSON_NULL || obj->type == AT_JSON_OBJECT ||
        (obj->type == AT_JSON_STRING && obj->len == 0))
        return NULL;
    return obj;
}

/* The first present of the mapping's source, the canonical name and
 * Segment's. */
static const at_json_t *at_imp__field(const at_json_t *root, const char *mapped, const char *canon,
                                      const char *segment)
{
    const at_json_t *v = mapped ? at_imp__at(root, mapped) : NULL;
    if (!v)
        v = at_imp__at(root, canon);
    return v ? v : at_imp__at(root, segment);
}

/* Reads the time and user key of an event line the way ingestion will (the
 * config's mapping, then the canonical names, then Segment's): *ts is
 * INT64_MAX without a readable time (such an event gets its receive time,
 * after every historical one); *klen is 0 without a user. Main thread. */
static void at_imp__probe(at_imp_run_t *r, const char *s, size_t n, int64_t *ts, char *key,
                          size_t keycap, size_t *klen)
{
    *ts = INT64_MAX;
    *klen = 0;
    at_json_t *root = NULL;
    at_error_t e;
    at_arena_reset(&r->arena);
    if (at_json_parse_all(s, n, &r->arena, 64, &root, &e) < 0 || root->type != AT_JSON_OBJECT)
        return;
    const at_json_t *t = at_imp__field(root, r->map_ts, "timestamp", "originalTimestamp");
    int64_t ms;
    bool ok = t && ((t->type == AT_JSON_STRING && at_time_parse_rfc3339(t->s, t->len, &ms) == 0) ||
                    (t->type == AT_JSON_NUMBER && at_json_i64(t, &ms) == 0));
    if (ok)
        *ts = ms;
    const char *ns = "u:";
    const at_json_t *u = at_imp__field(root, r->map_user, "user_id", "userId");
    if (!u) {
        ns = "a:";
        u = at_imp__field(root, r->map_anon, "anonymous_id", "anonymousId");
    }
    if (u && (u->type == AT_JSON_STRING || u->type == AT_JSON_NUMBER) && u->len + 3 <= keycap)
        *klen = (size_t)snprintf(key, keycap, "%s%.*s", ns, (int)u->len, u->s);
}

/* ---- batching -------------------------------------------------------------------- */

/* Sends the batch being filled (if it has events) and starts another. */
static void at_imp__flush(at_imp_run_t *r, at_imp_lane_t *l)
{
    at_imp_batch_t **cur = l ? &l->cur : &r->cur;
    if (*cur && (*cur)->n) {
        if (l)
            at_imp__pool_push(&l->pool, *cur);
        else
            at_imp__ingest(r, *cur);
        *cur = NULL;
    }
}

/* Adds one event to the batch of its connection (or the engine's). Main
 * thread. */
static void at_imp__dispatch(at_imp_run_t *r, const char *ev, size_t n, at_imp_where_t w)
{
    at_imp_lane_t *l = NULL;
    if (r->lanes) {
        int c = 0;
        if (r->o->connections > 1) {
            char key[1100];
            size_t kl;
            int64_t ts;
            at_imp__probe(r, ev, n, &ts, key, sizeof key, &kl);
            c = kl ? at_partition_of(key, kl, (int)r->o->connections) : 0;
        }
        l = &r->lanes[c];
        if (n + 1 > r->body_max) {
            atomic_fetch_add(&r->local_rejected, 1);
            at_imp__reason(r, w, "event_too_large: %zu bytes, over the request body limit (%zu)", n,
                           r->body_max);
            return;
        }
    }
    at_imp_batch_t **cur = l ? &l->cur : &r->cur;
    if (*cur && (*cur)->n && (*cur)->body.len + n + 1 > r->body_max)
        at_imp__flush(r, l);
    if (!*cur)
        *cur = at_imp__pool_take(r, l ? &l->pool : &r->pool);
    at_imp_batch_t *b = *cur;
    int rc = at_buf_append(&b->body, ev, n);
    if (rc == 0)
        rc = at_buf_putc(&b->body, '\n');
    AT_ASSERT(rc == 0); /* batch bodies have no cap */
    b->where[b->n++] = w;
    if (b->n == r->batch)
        at_imp__flush(r, l);
    at_imp__progress(r, r->phase, false);
}

/* One event read: into the --sort store, or on its way. Returns 0, or
 * AT_EFULL when --sort's memory is spent. Main thread. */
static int at_imp__emit(at_imp_run_t *r, const char *ev, size_t n, at_imp_where_t w)
{
    r->read++;
    if (!r->o->sort) {
        at_imp__dispatch(r, ev, n, w);
        return 0;
    }
    if (r->nsorted == r->capsorted) {
        r->capsorted = r->capsorted ? r->capsorted * 2 : 4096;
        r->sorted = at_xrealloc(r->sorted, r->capsorted * sizeof *r->sorted);
    }
    at_imp_sorted_t *e = &r->sorted[r->nsorted];
    if (r->held.len + n + r->capsorted * sizeof *r->sorted > AT_IMP_SORT_MAX ||
        at_buf_append(&r->held, ev, n) < 0)
        return AT_EFULL;
    char key[8];
    size_t kl;
    at_imp__probe(r, ev, n, &e->ts, key, sizeof key, &kl);
    e->seq = r->nsorted++;
    e->off = r->held.len - n;
    e->len = n;
    e->where = w;
    at_imp__progress(r, NULL, false);
    return 0;
}

static int at_imp__cmp_sorted(const void *a, const void *b)
{
    const at_imp_sorted_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Puts what --sort holds in time order; equal times keep input order. */
static void at_imp__feed_sorted_order(at_imp_run_t *r)
{
    if (r->nsorted)
        qsort(r->sorted, r->nsorted, sizeof *r->sorted, at_imp__cmp_sorted);
}

/* --sort: everything read; feeds it in time order. Main thread. */
static void at_imp__feed_sorted(at_imp_run_t *r)
{
    at_imp__progress(r, "sorting", true);
    at_imp__feed_sorted_order(r);
    r->phase = "feeding the sorted events";
    for (size_t i = 0; i < r->nsorted && !at_imp__stopping(r); i++)
        at_imp__dispatch(r, r->held.data + r->sorted[i].off, r->sorted[i].len, r->sorted[i].where);
}

/* ============================================================================
 * Reading the input
 * ========================================================================== */

typedef struct at_imp_in {
    const char *path; /* as given; "-" is stdin */
    int fd;
    char *buf; /* AT_IMP_CHUNK bytes */
    size_t pos, end;
    bool eof;
    uint64_t line; /* lines taken so far */
    uint64_t *bytes;
} at_imp_in_t;

/* Reads the next chunk when the buffer is used up. Returns 0 or -errno. */
static int at_imp__in_fill(at_imp_in_t *in)
{
    if (in->pos < in->end || in->eof)
        return 0;
    for (;;) {
        ssize_t n = read(in->fd, in->buf, AT_IMP_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        in->pos = 0;
        in->end = (size_t)n;
        in->eof = n == 0;
        *in->bytes += (size_t)n;
        return 0;
    }
}

/* Appends the next line (without "\n" or a "\r" before it) to line.
 * Returns 1, 0 at the end of the input, AT_ETOOBIG past line's cap, or
 * -errno. */
static int at_imp__in_line(at_imp_in_t *in, at_buf_t *line)
{
    bool any = false;
    for (;;) {
        int rc = at_imp__in_fill(in);
        if (rc < 0)
            return rc;
        if (in->eof)
            break;
        any = true;
        const char *p = in->buf + in->pos;
        const char *nl = memchr(p, '\n', in->end - in->pos);
        size_t take = nl ? (size_t)(nl - p) : in->end - in->pos;
        if (at_buf_append(line, p, take) < 0)
            return AT_ETOOBIG;
        in->pos += take + (nl ? 1 : 0);
        if (nl)
            break;
    }
    if (!any)
        return 0;
    in->line++;
    if (line->len && line->data[line->len - 1] == '\r')
        line->data[--line->len] = '\0';
    return 1;
}

/* The first byte that is not blank in what is buffered (a UTF-8 byte order
 * mark is skipped for good), or -1. */
static int at_imp__in_peek(at_imp_in_t *in, const char **line, size_t *n)
{
    *line = "";
    *n = 0;
    if (at_imp__in_fill(in) < 0)
        return -1;
    if (in->end - in->pos >= 3 && !memcmp(in->buf + in->pos, "\xef\xbb\xbf", 3))
        in->pos += 3;
    const char *p = in->buf + in->pos, *end = in->buf + in->end;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *line = p;
    *n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            return (unsigned char)*p;
    return -1;
}

static bool at_imp__blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

/* Reads NDJSON: every line that is not blank is an event. */
static int at_imp__read_ndjson(at_imp_run_t *r, at_imp_in_t *in, uint32_t file)
{
    int rc = 0;
    at_buf_reset(&r->line);
    while (!at_imp__stopping(r) && (rc = at_imp__in_line(in, &r->line)) == 1) {
        if (!at_imp__blank(r->line.data, r->line.len) &&
            (rc = at_imp__emit(r, r->line.data, r->line.len, (at_imp_where_t){file, in->line})) < 0)
            return rc;
        at_buf_reset(&r->line);
    }
    return at_imp__stopping(r) ? 0 : rc;
}

/* Reads one CSV record (one or more lines) into r->rec and splits it.
 * Returns the number of fields, 0 at the end, AT_EPARSE (with *why) for a
 * bad record, AT_ETOOBIG or -errno. */
static int at_imp__csv_record(at_imp_run_t *r, at_imp_in_t *in, char sep, uint64_t *first,
                              const char **why)
{
    at_buf_reset(&r->rec);
    int rc;
    do { /* blank lines between records are skipped */
        at_buf_reset(&r->rec);
        if ((rc = at_imp__in_line(in, &r->rec)) != 1)
            return rc;
    } while (at_imp__blank(r->rec.data, r->rec.len));
    *first = in->line;
    for (;;) {
        rc = at_imp_csv_split(r->rec.data, r->rec.len, sep, &r->scratch, r->fields,
                              AT_IMP_MAX_COLUMNS + 1, why);
        if (rc != AT_IMP_CSV_MORE)
            return rc == AT_ETOOBIG && r->rec.len < AT_IMP_LINE_MAX ? AT_EPARSE : rc;
        if (at_buf_putc(&r->rec, '\n') < 0)
            return AT_ETOOBIG;
        rc = at_imp__in_line(in, &r->rec);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            *why = "a quoted field is not closed before the end of the file";
            return AT_EPARSE;
        }
    }
}

/* Sets the columns from --columns, or from the header row. Returns 0, 1
 * (the message printed) or an input error. */
static int at_imp__csv_columns(at_imp_run_t *r, at_imp_in_t *in, char sep, const char *name)
{
    char err[300];
    uint64_t first = 0;
    const char *why = "";
    int nf;
    if (r->cols_set && r->o->columns)
        return 0; /* the same for every file */
    if (r->cols_set)
        at_imp_cols_free(&r->cols);
    r->cols_set = false;
    if (r->o->columns) {
        nf = at_imp_csv_split(r->o->columns, strlen(r->o->columns), ',', &r->scratch, r->fields,
                              AT_IMP_MAX_COLUMNS + 1, &why);
        if (nf < 1) {
            at_imp__fail(r, "--columns: %s", nf == AT_IMP_CSV_MORE ? "a quote is not closed" : why);
            return 1;
        }
    } else {
        nf = at_imp__csv_record(r, in, sep, &first, &why);
        if (nf == 0)
            return 0; /* an empty file */
    }
    if (nf < 0) {
        if (nf != AT_EPARSE)
            return nf;
        at_imp__fail(r, "%s: the header row: %s", name, why);
        return 1;
    }
    int rc = at_imp_cols_set(&r->cols, r->fields, nf, r->keep_from, r->keep_to, r->nkeep, err,
                             sizeof err);
    r->cols_set = true;
    if (rc < 0) {
        at_imp__fail(r, "%s: %s", r->o->columns ? "--columns" : name, err);
        return 1;
    }
    return 0;
}

/* Reads CSV: a header row (unless --columns), then one event per record. */
static int at_imp__read_csv(at_imp_run_t *r, at_imp_in_t *in, uint32_t file, char sep)
{
    const char *name = at_imp__name(r, file);
    int rc = at_imp__csv_columns(r, in, sep, name);
    if (rc != 0 || !r->cols_set)
        return rc < 0 ? rc : 0;
    at_imp_rowopt_t ro = {.unit = r->o->unit, .type = r->o->type};
    while (!at_imp__stopping(r)) {
        uint64_t first = 0;
        const char *why = "";
        char because[200];
        int nf = at_imp__csv_record(r, in, sep, &first, &why);
        if (nf == 0 || (nf < 0 && nf != AT_EPARSE))
            return nf;
        at_imp_where_t w = {file, first};
        at_buf_reset(&r->ev);
        if (nf > 0 &&
            at_imp_row_json(&r->cols, r->fields, nf, &ro, &r->ev, because, sizeof because) == 0) {
            if ((rc = at_imp__emit(r, r->ev.data, r->ev.len, w)) < 0)
                return rc;
            continue;
        }
        r->read++;
        atomic_fetch_add(&r->local_rejected, 1);
        at_imp__reason(r, w, "invalid_csv: %s", nf < 0 ? why : because);
    }
    return 0;
}

/* Reads one input file. Returns 0, or 1 after a message. Main thread. */
static int at_imp__read_file(at_imp_run_t *r, uint32_t file)
{
    const char *path = r->o->files[file];
    bool std = !strcmp(path, "-");
    at_imp_in_t in = {
        .path = path, .fd = std ? 0 : open(path, O_RDONLY | O_CLOEXEC), .bytes = &r->bytes};
    if (in.fd < 0) {
        at_imp__fail(r, "cannot open %s: %s", path, at_strerror(-errno));
        return 1;
    }
    in.buf = at_xmalloc(AT_IMP_CHUNK);
    const char *line;
    size_t n;
    int first = at_imp__in_peek(&in, &line, &n);
    int format = r->o->format ? r->o->format : at_imp_guess_format(std ? "" : path, first);
    char sep = r->o->sep ? r->o->sep : at_imp_guess_sep(std ? "" : path, line, n);
    int rc = format == AT_IMP_NDJSON ? at_imp__read_ndjson(r, &in, file)
                                     : at_imp__read_csv(r, &in, file, sep);
    if (rc == AT_EFULL)
        at_imp__fail(r,
                     "--sort holds the whole input in memory, and it is over %zu GiB: sort "
                     "the input beforehand (in time order, or within stream.lateness of it) "
                     "and import it without --sort",
                     AT_IMP_SORT_MAX >> 30);
    else if (rc == AT_ETOOBIG)
        at_imp__fail(r, "%s:%llu: a line longer than %zu MiB", at_imp__name(r, file),
                     (unsigned long long)in.line + 1, AT_IMP_LINE_MAX >> 20);
    else if (rc < 0)
        at_imp__fail(r, "reading %s: %s", at_imp__name(r, file), attune_strerror(rc));
    free(in.buf);
    if (!std)
        close(in.fd);
    return rc < 0 ? 1 : 0;
}

/* ============================================================================
 * Options and the command
 * ========================================================================== */

static const char at_imp__usage_text[] =
    "usage: attune import [OPTIONS] FILE...\n\n"
    "Puts historical events through ingestion and processing exactly as if they\n"
    "had arrived live, as fast as the engine can. FILE is NDJSON (one event object\n"
    "per line, any field names the config's mapping understands) or CSV; - is stdin.\n\n"
    "Target (default: the data directory of a stopped engine, run in this process):\n"
    "  -c, --config FILE      configuration (rules, mapping, limits); with --url only\n"
    "                         its mapping and limits are read\n"
    "  -d, --data-dir DIR     data directory (default ./attune-data); a running\n"
    "                         server's is refused\n"
    "  -p, --partitions N     log partitions of a new data directory (default 16)\n"
    "  -s, --shards N         processing threads (default 1)\n"
    "      --set NAME=VALUE   any other setting, as for serve; stream.ticks=false and\n"
    "                         log_level=warn are set first (events keep their own time)\n"
    "  -u, --url URL          post to a running server instead: http://HOST:PORT\n"
    "      --key KEY          with --url: an API key with the ingest scope\n"
    "      --connections N    with --url: keep-alive connections (default 2); an event\n"
    "                         goes on the one its user key's partition hash picks\n\n"
    "Input:\n"
    "  -f, --format F         ndjson | csv (default: from the extension, .ndjson .jsonl\n"
    "                         .json or .csv .tsv, else from the first byte: '{' is NDJSON)\n"
    "      --columns LIST     the CSV columns, e.g. user_id,item_id,rating,timestamp, for\n"
    "                         files without a header row (default: the first row names\n"
    "                         them); an empty name or - skips a column\n"
    "      --sep C            CSV separator: a character or 'tab' (default: tab for .tsv\n"
    "                         or a first line with tabs and no commas, else a comma)\n"
    "      --type TYPE        the type of CSV events without one (default view_item)\n"
    "      --time-unit U      epoch timestamps in CSV: s | ms | auto (default: an integer\n"
    "                         below 10^11 is seconds)\n"
    "      --sort             read everything, sort by timestamp (stable), then feed;\n"
    "                         the input is held in memory (at most 2 GiB)\n"
    "      --batch N          events per batch (default 500)\n\n"
    "Output:\n"
    "      --json             also print the summary as one JSON object on stdout\n"
    "  -h, --help             this help\n\n"
    "CSV columns: type (or event), user_id (or user), anonymous_id, item_id (or\n"
    "item), category, timestamp (or ts, time), event_id, session_id, context.NAME;\n"
    "any other column is properties.NAME (numbers as numbers, text as strings).\n"
    "Empty fields are absent. Quoting as RFC 4180.\n\n"
    "Events are fed in input order; processing orders them by event time within\n"
    "stream.lateness (default 5s): the input should be in time order or within that\n"
    "of it, or use --sort.\n\n"
    "Exit status: 0 every event accepted (duplicates included), 1 some rejected\n"
    "(kept in the quarantine log: GET /v1/rejected) or an error, 2 usage error.\n";

enum {
    AT_IMP_OPT_SET = 256,
    AT_IMP_OPT_KEY,
    AT_IMP_OPT_CONNECTIONS,
    AT_IMP_OPT_COLUMNS,
    AT_IMP_OPT_SEP,
    AT_IMP_OPT_TYPE,
    AT_IMP_OPT_UNIT,
    AT_IMP_OPT_SORT,
    AT_IMP_OPT_BATCH,
    AT_IMP_OPT_JSON,
};

static const struct option at_imp__longopts[] = {
    {"config", required_argument, NULL, 'c'},
    {"data-dir", required_argument, NULL, 'd'},
    {"partitions", required_argument, NULL, 'p'},
    {"shards", required_argument, NULL, 's'},
    {"set", required_argument, NULL, AT_IMP_OPT_SET},
    {"url", required_argument, NULL, 'u'},
    {"key", required_argument, NULL, AT_IMP_OPT_KEY},
    {"connections", required_argument, NULL, AT_IMP_OPT_CONNECTIONS},
    {"format", required_argument, NULL, 'f'},
    {"columns", required_argument, NULL, AT_IMP_OPT_COLUMNS},
    {"sep", required_argument, NULL, AT_IMP_OPT_SEP},
    {"type", required_argument, NULL, AT_IMP_OPT_TYPE},
    {"time-unit", required_argument, NULL, AT_IMP_OPT_UNIT},
    {"sort", no_argument, NULL, AT_IMP_OPT_SORT},
    {"batch", required_argument, NULL, AT_IMP_OPT_BATCH},
    {"json", no_argument, NULL, AT_IMP_OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int at_imp__u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end || errno || *s == '-' || v < min || v > max)
        return AT_EINVALID;
    *out = (uint32_t)v;
    return 0;
}

static bool at_imp__key_ok(const char *k)
{
    size_t n = strlen(k);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] <= ' ' || (unsigned char)k[i] >= 0x7f)
            return false;
    return n > 0 && n <= 512;
}

/* A "name=value" setting from a flag; owned by o's table of settings. */
static int at_imp__set(at_imp_opts_t *o, char *own[], const char *name, const char *v)
{
    if (o->nsets >= (int)AT_ARRAY_LEN(o->sets))
        return AT_EINVALID;
    if (!name) {
        if (!strchr(v, '='))
            return AT_EINVALID;
        o->sets[o->nsets++] = v;
        return 0;
    }
    size_t n = strlen(name) + strlen(v) + 2;
    char *s = at_xmalloc(n);
    (void)snprintf(s, n, "%s=%s", name, v);
    own[o->nsets] = s;
    o->sets[o->nsets++] = s;
    return 0;
}

static int at_imp__opt(at_imp_opts_t *o, char *own[], int c, const char *v)
{
    switch (c) {
    case 'c':
        o->config = v;
        return 0;
    case 'd':
        o->data_dir = v;
        return 0;
    case 'p':
        return at_imp__set(o, own, "partitions", v);
    case 's':
        return at_imp__set(o, own, "shards", v);
    case AT_IMP_OPT_SET:
        return at_imp__set(o, own, NULL, v);
    case 'u':
        o->url = v;
        return 0;
    case AT_IMP_OPT_KEY:
        o->key = v;
        return at_imp__key_ok(v) ? 0 : AT_EINVALID;
    case AT_IMP_OPT_CONNECTIONS:
        return at_imp__u32(v, 1, 256, &o->connections);
    case 'f':
        o->format = !strcmp(v, "ndjson") ? AT_IMP_NDJSON : !strcmp(v, "csv") ? AT_IMP_CSV : -1;
        return o->format < 0 ? AT_EINVALID : 0;
    case AT_IMP_OPT_COLUMNS:
        o->columns = v;
        return 0;
    case AT_IMP_OPT_SEP:
        o->sep = !strcmp(v, "tab") || !strcmp(v, "\\t") ? '\t' : v[0];
        return (v[0] && (v[1] == 0 || o->sep == '\t') && o->sep != '"' && o->sep != '\n' &&
                o->sep != '\r')
                   ? 0
                   : AT_EINVALID;
    case AT_IMP_OPT_TYPE:
        o->type = v;
        return *v ? 0 : AT_EINVALID;
    case AT_IMP_OPT_UNIT:
        o->unit = !strcmp(v, "s")    ? AT_IMP_TIME_S
                  : !strcmp(v, "ms") ? AT_IMP_TIME_MS
                                     : AT_IMP_TIME_AUTO;
        return !strcmp(v, "s") || !strcmp(v, "ms") || !strcmp(v, "auto") ? 0 : AT_EINVALID;
    case AT_IMP_OPT_SORT:
        o->sort = true;
        return 0;
    case AT_IMP_OPT_BATCH:
        return at_imp__u32(v, 1, 100000, &o->batch);
    case AT_IMP_OPT_JSON:
        o->json = true;
        return 0;
    default:
        return AT_EINVALID;
    }
}

static const char *at_imp__opt_name(int c)
{
    for (const struct option *lo = at_imp__longopts; lo->name; lo++)
        if (lo->val == c)
            return lo->name;
    return "?";
}

/* Parses argv into o. Returns 0, 1 after --help, or 2 after a message.
 * own[] gets the settings o allocates (free them whatever the result). */
static int at_imp__parse(at_imp_opts_t *o, char *own[], int argc, char **argv)
{
    *o = (at_imp_opts_t){.type = "view_item", .batch = 500, .connections = 2};
    optind = 1;
    opterr = 0;
    int c;
    /* getopt_long() keeps its state in globals: this runs on the main thread
     * before any other thread exists. NOLINTNEXTLINE(concurrency-mt-unsafe) */
    while ((c = getopt_long(argc, argv, "c:d:p:s:u:f:h", at_imp__longopts, NULL)) != -1) {
        if (c == 'h') {
            (void)fputs(at_imp__usage_text, stdout);
            return 1;
        }
        if (c == '?' || c == ':') {
            (void)fprintf(stderr, "attune import: unknown option or missing value: %s\n",
                          argv[optind - 1]);
            return 2;
        }
        if (at_imp__opt(o, own, c, optarg) < 0) {
            (void)fprintf(stderr, "attune import: bad value for --%s: '%s' (see --help)\n",
                          at_imp__opt_name(c), optarg);
            return 2;
        }
    }
    o->files = argv + optind;
    o->nfiles = argc - optind;
    const char *why = NULL;
    if (o->nfiles == 0)
        why = "no input: name a FILE, or - for stdin";
    else if (o->url && (o->data_dir || o->nsets))
        why = "--data-dir, --partitions, --shards and --set are for a data directory, not --url";
    else if (!o->url && (o->key || o->connections != 2))
        why = "--key and --connections go with --url";
    for (int i = 0, dash = 0; !why && i < o->nfiles; i++)
        if (!strcmp(o->files[i], "-") && dash++)
            why = "stdin (-) can be read only once";
    if (why) {
        (void)fprintf(stderr, "attune import: %s (see attune import --help)\n", why);
        return 2;
    }
    return 0;
}

/* Sums the sizes of the inputs (when all are regular files) and checks
 * that they exist. Returns 0 or 1 after a message. */
static int at_imp__sizes(at_imp_run_t *r)
{
    r->total_known = true;
    for (int i = 0; i < r->o->nfiles; i++) {
        struct stat st;
        const char *p = r->o->files[i];
        int rc = !strcmp(p, "-") ? fstat(0, &st) : stat(p, &st);
        if (rc < 0) {
            (void)fprintf(stderr, "attune import: %s: %s\n", p, at_strerror(-errno));
            return 1;
        }
        if (S_ISREG(st.st_mode))
            r->total += (uint64_t)st.st_size;
        else
            r->total_known = false;
    }
    if (r->o->sort && r->total_known && r->total > AT_IMP_SORT_MAX) {
        (void)fprintf(stderr,
                      "attune import: --sort holds the whole input in memory, and these %.1f "
                      "GiB are over %zu GiB: sort the input beforehand (in time order, or "
                      "within stream.lateness of it) and import it without --sort\n",
                      (double)r->total / (double)(1u << 30), AT_IMP_SORT_MAX >> 30);
        return 1;
    }
    return 0;
}

/* The config's mapping: which CSV columns stay at the top level, and what
 * the probe reads. */
static void at_imp__mapping(at_imp_run_t *r)
{
    for (size_t i = 0; r->cfg && i < r->cfg->nmappings; i++) {
        const at_config_map_t *m = &r->cfg->mappings[i];
        if (!strcmp(m->to, "user_id"))
            r->map_user = m->from;
        else if (!strcmp(m->to, "anonymous_id"))
            r->map_anon = m->from;
        else if (!strcmp(m->to, "timestamp"))
            r->map_ts = m->from;
        if (!strchr(m->from, '.') && r->nkeep < AT_ARRAY_LEN(r->keep_from)) {
            r->keep_from[r->nkeep] = m->from;
            r->keep_to[r->nkeep++] = m->to;
        }
    }
}

/* Batch limits from the configuration, when there is one. */
static void at_imp__limits(at_imp_run_t *r)
{
    r->batch = r->o->batch;
    r->body_max = AT_IMP_DEFAULT_BODY;
    if (!r->cfg)
        return;
    if (r->cfg->max_body_bytes > 0)
        r->body_max = (size_t)r->cfg->max_body_bytes;
    if (r->cfg->max_batch_events > 0 && r->batch > (uint32_t)r->cfg->max_batch_events) {
        (void)fprintf(stderr,
                      "attune import: --batch %u is above events.max_batch_events: using %d\n",
                      r->batch, r->cfg->max_batch_events);
        r->batch = (uint32_t)r->cfg->max_batch_events;
    }
}

/* The server target's setup: its address, the --config file's mapping. */
static int at_imp__setup_url(at_imp_run_t *r)
{
    int rc = at_imp__resolve(r, r->o->url);
    if (rc)
        return rc;
    if (r->o->config) {
        char err[512] = "";
        at_config_defaults(&r->own_cfg);
        r->own_cfg_set = true;
        if (at_config_load_file(&r->own_cfg, r->o->config, err, sizeof err) < 0) {
            (void)fprintf(stderr, "attune import: %s: %s\n", r->o->config, err);
            return 1;
        }
        r->cfg = &r->own_cfg;
    }
    at_imp__mapping(r);
    at_imp__limits(r);
    return at_imp__lanes_start(r);
}

static void at_imp__run_init(at_imp_run_t *r, const at_imp_opts_t *o)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    r->tty = isatty(2);
    r->t0_ns = at_time_mono_ns();
    pthread_mutex_init(&r->mu, NULL);
    at_buf_init(&r->line, AT_IMP_LINE_MAX);
    at_buf_init(&r->rec, AT_IMP_LINE_MAX);
    at_buf_init(&r->scratch, 0);
    at_buf_init(&r->ev, 0);
    at_buf_init(&r->held, AT_IMP_SORT_MAX);
    at_arena_init(&r->arena, 16384);
}

static void at_imp__run_deinit(at_imp_run_t *r)
{
    if (r->cols_set)
        at_imp_cols_free(&r->cols);
    if (r->own_cfg_set)
        at_config_free(&r->own_cfg);
    at_buf_deinit(&r->line);
    at_buf_deinit(&r->rec);
    at_buf_deinit(&r->scratch);
    at_buf_deinit(&r->ev);
    at_buf_deinit(&r->held);
    free(r->sorted);
    at_arena_deinit(&r->arena);
    pthread_mutex_destroy(&r->mu);
}

/* Prints the reasons kept, the summary line and --json. Returns the exit
 * code. */
static int at_imp__report(at_imp_run_t *r)
{
    at_imp__progress_clear(r);
    double secs = (double)(at_time_mono_ns() - r->t0_ns) / 1e9;
    uint64_t acc = atomic_load(&r->accepted), dup = atomic_load(&r->duplicates);
    uint64_t rej = atomic_load(&r->rejected) + atomic_load(&r->local_rejected);
    double eps = secs > 0 ? (double)r->read / secs : 0;
    for (int i = 0; i < r->nreasons; i++)
        (void)fprintf(stderr, "import: rejected: %s\n", r->reasons[i]);
    if (r->more_reasons)
        (void)fprintf(stderr, "import: ... and %llu more rejected\n",
                      (unsigned long long)r->more_reasons);
    if (r->fatal[0])
        (void)fprintf(stderr, "attune import: %s\n", r->fatal);
    if (at_imp__interrupted)
        (void)fprintf(stderr, "attune import: interrupted; what was acknowledged is kept\n");
    (void)fprintf(stderr,
                  "import: %llu events read, %llu accepted, %llu duplicates, %llu rejected in "
                  "%.3f s (%.0f events/s)\n",
                  (unsigned long long)r->read, (unsigned long long)acc, (unsigned long long)dup,
                  (unsigned long long)rej, secs, eps);
    if (atomic_load(&r->rejected)) {
        if (r->o->url)
            (void)fprintf(stderr,
                          "import: the rejected events are in the server's quarantine log, with "
                          "the reasons: GET %s/v1/rejected\n",
                          r->o->url);
        else
            (void)fprintf(stderr,
                          "import: the rejected events are in the quarantine log of %s, with the "
                          "reasons: GET /v1/rejected once attune serve runs on it "
                          "(attune_events_rejected_total counts them)\n",
                          r->o->data_dir ? r->o->data_dir : "./attune-data");
    }
    uint64_t local = atomic_load(&r->local_rejected);
    if (local)
        (void)fprintf(stderr,
                      "import: %llu events were refused before ingestion (unreadable CSV rows, "
                      "bodies past a limit): they are listed above, not in the quarantine log\n",
                      (unsigned long long)local);
    if (r->o->json) {
        printf("{\"events\":%llu,\"accepted\":%llu,\"duplicates\":%llu,\"rejected\":%llu,"
               "\"seconds\":%.3f,\"events_per_s\":%.1f}\n",
               (unsigned long long)r->read, (unsigned long long)acc, (unsigned long long)dup,
               (unsigned long long)rej, secs, eps);
        if (fflush(stdout) != 0)
            return 1;
    }
    return r->fatal[0] || at_imp__interrupted || rej ? 1 : 0;
}

/* Reads every input, then lets the target finish. Main thread. */
static void at_imp__import(at_imp_run_t *r)
{
    for (int i = 0; i < r->o->nfiles && !at_imp__stopping(r); i++)
        if (at_imp__read_file(r, (uint32_t)i) != 0)
            break;
    if (r->o->sort && !at_imp__stopping(r))
        at_imp__feed_sorted(r);
    if (r->engine)
        at_imp__finish_engine(r);
    else
        at_imp__lanes_finish(r);
}

/* `attune import`; see at_cli.h. Thread: main. */
int at_cli_import(int argc, char **argv)
{
    at_imp_opts_t o;
    char *own[AT_ARRAY_LEN(o.sets)] = {0};
    int rc = at_imp__parse(&o, own, argc, argv);
    if (rc) {
        for (size_t i = 0; i < AT_ARRAY_LEN(own); i++)
            free(own[i]);
        return rc == 1 ? 0 : rc;
    }
    at_imp_run_t r;
    at_imp__run_init(&r, &o);
    struct sigaction sa = {.sa_handler = at_imp__on_sigint, .sa_flags = SA_RESETHAND}, old;
    sigemptyset(&sa.sa_mask);
    at_imp__interrupted = 0;
    rc = at_imp__sizes(&r);
    if (rc == 0 && o.url) {
        rc = at_imp__setup_url(&r);
    } else if (rc == 0) {
        rc = at_imp__open(&r);
        if (rc == 0) {
            at_imp__mapping(&r);
            at_imp__limits(&r);
            at_imp__pool_init(&r.pool, &r, AT_IMP_INFLIGHT);
        }
    }
    if (rc == 0) {
        sigaction(SIGINT, &sa, &old);
        at_imp__import(&r);
        sigaction(SIGINT, &old, NULL);
        rc = at_imp__report(&r);
        if (!o.url)
            at_imp__pool_deinit(&r.pool);
    } else {
        if (r.engine)
            attune_close(r.engine);
        if (r.lanes)
            at_imp__lanes_finish(&r);
    }
    at_imp__run_deinit(&r);
    for (size_t i = 0; i < AT_ARRAY_LEN(own); i++)
        free(own[i]);
    return rc;
}
