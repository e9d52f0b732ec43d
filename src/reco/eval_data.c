/* eval_data.c - datasets for the evaluation harness (at_eval.h): attune's
 * NDJSON events, CSV with a header row, and MovieLens' u.data, read into
 * interactions and sorted by time, ties in input order.
 *
 * The CSV reader here is the dataset's own: `attune import`'s splitter
 * lives in the CLI, which this library may not reach (STYLE.md's direction
 * of dependencies). A record is one line; quoting follows RFC 4180 within
 * the line ("" is a quote), and a quoted field that runs past the end of
 * its line is an error.
 *
 * THREAD SAFETY: a dataset belongs to one thread.
 */
#include "at_eval.h"
#include "at_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define AT_EVAL__MAX_EV (UINT32_MAX - 1)
#define AT_EVAL__MAX_COLS 64
#define AT_EVAL__FILE_MAX ((size_t)1 << 34)

static const char at_eval__view_item[] = "view_item";

void at_eval_data_init(at_eval_data_t *d)
{
    *d = (at_eval_data_t){0};
    at_arena_init(&d->arena, 1 << 16);
}

void at_eval_data_deinit(at_eval_data_t *d)
{
    free(d->ev);
    at_arena_deinit(&d->arena);
    *d = (at_eval_data_t){0};
}

/* A field of the input: bytes and length. */
typedef struct at_eval__str {
    const char *s;
    size_t n;
} at_eval__str_t;

/* Appends one interaction, copying its strings; the user key gets its
 * namespace (DESIGN.md §3). */
static int at_eval__push(at_eval_data_t *d, char ns, at_eval__str_t user, at_eval__str_t item,
                         at_eval__str_t type, at_eval__str_t cat, int64_t ts, at_error_t *err)
{
    if (d->n == AT_EVAL__MAX_EV)
        return at_error_set(err, AT_ETOOBIG, "too_big", NULL, "more than %u interactions",
                            (unsigned)AT_EVAL__MAX_EV);
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 1024;
        d->ev = at_xrealloc(d->ev, d->cap * sizeof *d->ev);
    }
    char *u = at_arena_alloc(&d->arena, user.n + 3);
    u[0] = ns;
    u[1] = ':';
    memcpy(u + 2, user.s, user.n);
    u[user.n + 2] = '\0';
    at_eval_ev_t *e = &d->ev[d->n++];
    *e = (at_eval_ev_t){.user = u, .user_len = user.n + 2, .ts_ms = ts};
    e->item = at_arena_strndup(&d->arena, item.s ? item.s : "", item.n);
    e->item_len = item.n;
    if (type.n) {
        e->type = at_arena_strndup(&d->arena, type.s, type.n);
        e->type_len = type.n;
    } else {
        e->type = at_eval__view_item;
        e->type_len = sizeof at_eval__view_item - 1;
    }
    e->category = at_arena_strndup(&d->arena, cat.s ? cat.s : "", cat.n);
    e->category_len = cat.n;
    return 0;
}

/* ---- time ---------------------------------------------------------------- */

/* Epoch seconds or milliseconds (an integer part below 10^11 is seconds),
 * with an optional fraction; or RFC 3339. Returns 0 or -1. */
static int at_eval__time(const char *s, size_t n, int64_t *ms)
{
    size_t i = 0;
    uint64_t ip = 0;
    if (n && (s[0] >= '0' && s[0] <= '9')) {
        while (i < n && s[i] >= '0' && s[i] <= '9' && ip < 100000000000000000ULL)
            ip = ip * 10 + (uint64_t)(s[i++] - '0');
        uint64_t frac = 0, scale = 1;
        bool ok = true;
        if (i < n && s[i] == '.') {
            size_t f0 = ++i;
            for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
                if (scale < 1000000000ULL) {
                    frac = frac * 10 + (uint64_t)(s[i] - '0');
                    scale *= 10;
                }
            ok = i > f0;
        }
        if (ok && i == n) {
            if (ip < 100000000000ULL) /* seconds: keep the fraction's milliseconds */
                *ms = (int64_t)(ip * 1000 + frac * 1000 / scale);
            else
                *ms = (int64_t)ip;
            return 0;
        }
    }
    return at_time_parse_rfc3339(s, n, ms) == 0 ? 0 : -1;
}

/* ---- lines ----------------------------------------------------------------- */

typedef struct at_eval__lines {
    const char *src;
    size_t len, pos;
    size_t line; /* the current line's number, 1-based */
} at_eval__lines_t;

/* The next non-blank line into *l (without its LF and a CR before it);
 * false at the end. */
static bool at_eval__next_line(at_eval__lines_t *it, at_eval__str_t *l)
{
    while (it->pos < it->len) {
        const char *s = it->src + it->pos;
        const char *nl = memchr(s, '\n', it->len - it->pos);
        size_t n = nl ? (size_t)(nl - s) : it->len - it->pos;
        it->pos += n + (nl ? 1 : 0);
        it->line++;
        if (n && s[n - 1] == '\r')
            n--;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t'))
            k++;
        if (k == n)
            continue;
        *l = (at_eval__str_t){s, n};
        return true;
    }
    return false;
}

/* ---- NDJSON ------------------------------------------------------------------ */

/* A member that is a string or a number (its text), else absent (false). */
static bool at_eval__jtext(const at_json_t *obj, const char *key, at_eval__str_t *out)
{
    const at_json_t *v = at_json_get(obj, key, strlen(key));
    if (!v || (v->type != AT_JSON_STRING && v->type != AT_JSON_NUMBER))
        return false;
    *out = (at_eval__str_t){v->s, v->len};
    return true;
}

static int at_eval__jfail(at_error_t *err, const at_eval__lines_t *it, at_eval__str_t l,
                          const at_json_t *v, const char *field, const char *msg)
{
    int line, col = 1;
    if (v)
        at_json_where(l.s, v->off, &line, &col);
    return at_error_set(err, AT_EINVALID, "invalid_dataset", field, "line %zu, column %d (%s): %s",
                        it->line, col, field, msg);
}

static int at_eval__ndjson_line(at_eval_data_t *d, const at_eval__lines_t *it, at_eval__str_t l,
                                at_arena_t *scratch, at_error_t *err)
{
    at_jparse_t p;
    at_json_t *v = NULL;
    at_json_init(&p, l.s, l.n, scratch, 32);
    int rc = at_json_value(&p, &v);
    if (rc == 0) {
        at_json_ws(&p);
        if (p.pos != p.len)
            rc = at_json_fail(&p, p.pos, "unexpected data after the JSON value");
    }
    if (rc < 0) {
        int line, col;
        at_json_where(l.s, p.err_pos, &line, &col);
        return at_error_set(err, AT_EPARSE, "invalid_json", NULL, "line %zu, column %d: %s",
                            it->line, col, p.err_msg ? p.err_msg : "invalid JSON");
    }
    if (v->type != AT_JSON_OBJECT)
        return at_error_set(err, AT_EINVALID, "invalid_dataset", NULL,
                            "line %zu: an event must be a JSON object", it->line);
    at_eval__str_t user = {0}, item = {0}, type = {0}, cat = {0};
    char ns = 'u';
    if (!at_eval__jtext(v, "user_id", &user) || !user.n) {
        ns = 'a';
        if (!at_eval__jtext(v, "anonymous_id", &user) || !user.n)
            return at_eval__jfail(err, it, l, NULL, "user_id",
                                  "user_id or anonymous_id is required (a string)");
    }
    (void)at_eval__jtext(v, "item_id", &item);
    const at_json_t *t = at_json_get(v, "type", 4);
    if (t && t->type != AT_JSON_STRING)
        return at_eval__jfail(err, it, l, t, "type", "must be a string");
    if (t)
        type = (at_eval__str_t){t->s, t->len};
    const at_json_t *c = at_json_get(v, "category", 8);
    if (c && c->type == AT_JSON_STRING)
        cat = (at_eval__str_t){c->s, c->len};
    const at_json_t *ts = at_json_get(v, "timestamp", 9);
    int64_t ms = 0;
    if (!ts)
        return at_eval__jfail(err, it, l, NULL, "timestamp", "is required");
    if (ts->type == AT_JSON_NUMBER
            ? at_json_i64(ts, &ms) < 0
            : ts->type != AT_JSON_STRING || at_time_parse_rfc3339(ts->s, ts->len, &ms) < 0)
        return at_eval__jfail(err, it, l, ts, "timestamp",
                              "not a time (epoch milliseconds, or RFC 3339)");
    return at_eval__push(d, ns, user, item, type, cat, ms, err);
}

static int at_eval__ndjson(at_eval_data_t *d, const char *src, size_t len, at_error_t *err)
{
    at_eval__lines_t it = {src, len, 0, 0};
    at_eval__str_t l;
    at_arena_t scratch;
    at_arena_init(&scratch, 1 << 14);
    int rc = 0;
    while (rc == 0 && at_eval__next_line(&it, &l)) {
        rc = at_eval__ndjson_line(d, &it, l, &scratch, err);
        at_arena_reset(&scratch);
    }
    at_arena_deinit(&scratch);
    return rc;
}

/* ---- CSV and u.data ------------------------------------------------------------ */

/* Splits the line l on sep into f (at most maxf); quoted fields are
 * decoded into out (reset first). Returns the count, or -1 with *why and
 * *at (the 1-based field) set. */
static int at_eval__split(at_eval__str_t l, char sep, at_buf_t *out, at_eval__str_t *f, int maxf,
                          const char **why, int *at)
{
    at_buf_reset(out);
    AT_ASSERT(at_buf_reserve(out, l.n + 1) == 0);
    char *dst = out->data;
    size_t i = 0;
    int nf = 0;
    for (;;) {
        *at = nf + 1;
        if (nf == maxf) {
            *why = "too many fields";
            return -1;
        }
        if (i < l.n && l.s[i] == '"') {
            char *start = dst;
            for (i++;; i++) {
                if (i == l.n) {
                    *why = "a quoted field is not closed on its line";
                    return -1;
                }
                if (l.s[i] == '"') {
                    if (i + 1 == l.n || l.s[i + 1] != '"')
                        break;
                    i++;
                }
                *dst++ = l.s[i];
            }
            if (++i < l.n && l.s[i] != sep) {
                *why = "text after a closing quote";
                return -1;
            }
            f[nf++] = (at_eval__str_t){start, (size_t)(dst - start)};
        } else {
            size_t s0 = i;
            while (i < l.n && l.s[i] != sep)
                i++;
            f[nf++] = (at_eval__str_t){l.s + s0, i - s0};
        }
        if (i == l.n)
            return nf;
        i++;
    }
}

enum {
    AT_EVAL__C_USER,
    AT_EVAL__C_ITEM,
    AT_EVAL__C_TS,
    AT_EVAL__C_TYPE,
    AT_EVAL__C_CAT,
    AT_EVAL__NC
};

static const char *const at_eval__cname[AT_EVAL__NC] = {"user", "item", "timestamp", "type",
                                                        "category"};

/* Which of the columns the header name h is, or -1 for one to ignore. */
static int at_eval__column(at_eval__str_t h)
{
    static const struct {
        const char *name;
        int col;
    } alias[] = {
        {"user", AT_EVAL__C_USER},    {"user_id", AT_EVAL__C_USER}, {"userid", AT_EVAL__C_USER},
        {"item", AT_EVAL__C_ITEM},    {"item_id", AT_EVAL__C_ITEM}, {"itemid", AT_EVAL__C_ITEM},
        {"timestamp", AT_EVAL__C_TS}, {"ts", AT_EVAL__C_TS},        {"time", AT_EVAL__C_TS},
        {"type", AT_EVAL__C_TYPE},    {"event", AT_EVAL__C_TYPE},   {"category", AT_EVAL__C_CAT},
    };
    while (h.n && h.s[0] == ' ')
        h.s++, h.n--;
    while (h.n && h.s[h.n - 1] == ' ')
        h.n--;
    for (size_t i = 0; i < AT_ARRAY_LEN(alias); i++)
        if (strlen(alias[i].name) == h.n && strncasecmp(h.s, alias[i].name, h.n) == 0)
            return alias[i].col;
    return -1;
}

static int at_eval__csv_header(at_eval__str_t l, size_t line, char *sep, at_buf_t *buf,
                               int col[AT_EVAL__NC], int *ncols, at_error_t *err)
{
    at_eval__str_t f[AT_EVAL__MAX_COLS];
    const char *why;
    int at;
    *sep = memchr(l.s, '\t', l.n) && !memchr(l.s, ',', l.n) ? '\t' : ',';
    int nf = at_eval__split(l, *sep, buf, f, AT_EVAL__MAX_COLS, &why, &at);
    if (nf < 0)
        return at_error_set(err, AT_EPARSE, "invalid_dataset", NULL,
                            "line %zu, field %d (header): %s", line, at, why);
    for (int c = 0; c < AT_EVAL__NC; c++)
        col[c] = -1;
    for (int i = 0; i < nf; i++) {
        int c = at_eval__column(f[i]);
        if (c < 0)
            continue;
        if (col[c] >= 0)
            return at_error_set(err, AT_EINVALID, "invalid_dataset", at_eval__cname[c],
                                "line %zu, field %d (header): a second %s column", line, i + 1,
                                at_eval__cname[c]);
        col[c] = i;
    }
    for (int c = 0; c <= AT_EVAL__C_TS; c++)
        if (col[c] < 0)
            return at_error_set(err, AT_EINVALID, "invalid_dataset", at_eval__cname[c],
                                "line %zu (header): no %s column (the header names user, item, "
                                "timestamp and optionally type and category)",
                                line, at_eval__cname[c]);
    *ncols = nf;
    return 0;
}

static int at_eval__csv(at_eval_data_t *d, const char *src, size_t len, at_error_t *err)
{
    at_eval__lines_t it = {src, len, 0, 0};
    at_eval__str_t l, f[AT_EVAL__MAX_COLS];
    at_buf_t buf;
    at_buf_init(&buf, 0);
    int col[AT_EVAL__NC], ncols = 0, rc = 0;
    char sep = ',';
    if (!at_eval__next_line(&it, &l))
        goto out; /* empty: no interactions */
    rc = at_eval__csv_header(l, it.line, &sep, &buf, col, &ncols, err);
    while (rc == 0 && at_eval__next_line(&it, &l)) {
        const char *why;
        int at, nf = at_eval__split(l, sep, &buf, f, AT_EVAL__MAX_COLS, &why, &at);
        if (nf < 0) {
            rc = at_error_set(err, AT_EPARSE, "invalid_dataset", NULL, "line %zu, field %d: %s",
                              it.line, at, why);
            break;
        }
        if (nf != ncols) {
            rc = at_error_set(err, AT_EINVALID, "invalid_dataset", NULL,
                              "line %zu: %d fields where the header has %d", it.line, nf, ncols);
            break;
        }
        at_eval__str_t v[AT_EVAL__NC] = {{0}};
        for (int c = 0; c < AT_EVAL__NC; c++)
            if (col[c] >= 0)
                v[c] = f[col[c]];
        int64_t ms = 0;
        int bad = !v[AT_EVAL__C_USER].n                                            ? AT_EVAL__C_USER
                  : !v[AT_EVAL__C_ITEM].n                                          ? AT_EVAL__C_ITEM
                  : at_eval__time(v[AT_EVAL__C_TS].s, v[AT_EVAL__C_TS].n, &ms) < 0 ? AT_EVAL__C_TS
                                                                                   : -1;
        if (bad >= 0) {
            rc = at_error_set(
                err, AT_EINVALID, "invalid_dataset", at_eval__cname[bad],
                "line %zu, field %d (%s): %s", it.line, col[bad] + 1, at_eval__cname[bad],
                bad == AT_EVAL__C_TS ? "not a time (epoch seconds or milliseconds, or RFC 3339)"
                                     : "is empty");
            break;
        }
        rc = at_eval__push(d, 'u', v[AT_EVAL__C_USER], v[AT_EVAL__C_ITEM], v[AT_EVAL__C_TYPE],
                           v[AT_EVAL__C_CAT], ms, err);
    }
out:
    at_buf_deinit(&buf);
    return rc;
}

/* Whether v is a run of 1 to 15 digits. */
static bool at_eval__digits(at_eval__str_t v)
{
    if (!v.n || v.n > 15)
        return false;
    for (size_t i = 0; i < v.n; i++)
        if (v.s[i] < '0' || v.s[i] > '9')
            return false;
    return true;
}

static int at_eval__movielens(at_eval_data_t *d, const char *src, size_t len, at_error_t *err)
{
    static const char *const name[4] = {"user", "item", "rating", "timestamp"};
    at_eval__lines_t it = {src, len, 0, 0};
    at_eval__str_t l, f[5];
    at_buf_t buf;
    at_buf_init(&buf, 0);
    int rc = 0;
    while (rc == 0 && at_eval__next_line(&it, &l)) {
        const char *why;
        int at, nf = at_eval__split(l, '\t', &buf, f, 5, &why, &at);
        if (nf != 4) {
            rc = at_error_set(err, AT_EPARSE, "invalid_dataset", NULL,
                              "line %zu: not 4 tab-separated fields (user, item, rating, unix "
                              "seconds)",
                              it.line);
            break;
        }
        int bad = -1;
        for (int c = 0; c < 4 && bad < 0; c++)
            if (c == 3 ? !at_eval__digits(f[c]) : !f[c].n)
                bad = c;
        if (bad >= 0) {
            rc = at_error_set(err, AT_EINVALID, "invalid_dataset", name[bad],
                              "line %zu, field %d (%s): %s", it.line, bad + 1, name[bad],
                              bad == 3 ? "not a whole number of seconds" : "is empty");
            break;
        }
        int64_t secs = 0; /* at most 15 digits (at_eval__digits): no overflow */
        for (size_t i = 0; i < f[3].n; i++)
            secs = secs * 10 + (f[3].s[i] - '0');
        rc = at_eval__push(d, 'u', f[0], f[1], (at_eval__str_t){0}, (at_eval__str_t){0},
                           secs * 1000, err);
    }
    at_buf_deinit(&buf);
    return rc;
}

/* ---- order ---------------------------------------------------------------------- */

typedef struct at_eval__ord {
    int64_t ts;
    size_t i;
} at_eval__ord_t;

static int at_eval__ord_cmp(const void *a, const void *b)
{
    const at_eval__ord_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Sorts d by (timestamp, input order). */
static void at_eval__sort(at_eval_data_t *d)
{
    if (d->n < 2)
        return;
    at_eval__ord_t *o = at_xmalloc(d->n * sizeof *o);
    for (size_t i = 0; i < d->n; i++)
        o[i] = (at_eval__ord_t){d->ev[i].ts_ms, i};
    qsort(o, d->n, sizeof *o, at_eval__ord_cmp);
    at_eval_ev_t *ev = at_xmalloc(d->cap * sizeof *ev);
    for (size_t i = 0; i < d->n; i++)
        ev[i] = d->ev[o[i].i];
    free(d->ev);
    d->ev = ev;
    free(o);
}

/* See at_eval.h. Thread: any. */
int at_eval_data_parse(at_eval_data_t *d, const char *src, size_t len, at_eval_format_t fmt,
                       at_error_t *err)
{
    int rc;
    switch (fmt) {
    case AT_EVAL_FMT_NDJSON:
        rc = at_eval__ndjson(d, src, len, err);
        break;
    case AT_EVAL_FMT_CSV:
        rc = at_eval__csv(d, src, len, err);
        break;
    case AT_EVAL_FMT_MOVIELENS:
        rc = at_eval__movielens(d, src, len, err);
        break;
    default:
        return at_error_set(err, AT_EINVALID, "invalid_format", NULL, "no format given");
    }
    if (rc == 0)
        at_eval__sort(d);
    return rc;
}

/* Reads all of standard input into *out (owned, free with free()). */
static int at_eval__read_stdin(char **out, size_t *len)
{
    at_buf_t b;
    at_buf_init(&b, AT_EVAL__FILE_MAX);
    char chunk[65536];
    for (;;) {
        ssize_t r = read(0, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = -errno;
            at_buf_deinit(&b);
            return e;
        }
        if (r == 0)
            break;
        if (at_buf_append(&b, chunk, (size_t)r) < 0) {
            at_buf_deinit(&b);
            return AT_ETOOBIG;
        }
    }
    *out = at_buf_steal(&b, len);
    return 0;
}

/* See at_eval.h. Thread: any. */
int at_eval_data_load(at_eval_data_t *d, const char *path, at_eval_format_t fmt, at_error_t *err)
{
    char *src = NULL;
    size_t len = 0;
    int rc = strcmp(path, "-") ? at_file_read(path, AT_EVAL__FILE_MAX, &src, &len)
                               : at_eval__read_stdin(&src, &len);
    if (rc < 0)
        return at_error_set(err, rc, "unreadable", NULL, "%s", at_strerror(rc));
    if (fmt == AT_EVAL_FMT_GUESS)
        fmt = at_eval_guess_format(path, src, len);
    rc = at_eval_data_parse(d, src ? src : "", len, fmt, err);
    free(src);
    return rc;
}

static bool at_eval__ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* See at_eval.h. Thread: any. */
at_eval_format_t at_eval_guess_format(const char *path, const char *src, size_t len)
{
    static const char *const nd[] = {".ndjson", ".jsonl", ".json"};
    for (size_t i = 0; path && i < AT_ARRAY_LEN(nd); i++)
        if (at_eval__ends(path, nd[i]))
            return AT_EVAL_FMT_NDJSON;
    if (path && (at_eval__ends(path, ".csv") || at_eval__ends(path, ".tsv")))
        return AT_EVAL_FMT_CSV;
    if (path && at_eval__ends(path, ".data"))
        return AT_EVAL_FMT_MOVIELENS;
    for (size_t i = 0; i < len; i++)
        if (src[i] != ' ' && src[i] != '\t' && src[i] != '\r' && src[i] != '\n')
            return src[i] == '{' ? AT_EVAL_FMT_NDJSON : AT_EVAL_FMT_CSV;
    return AT_EVAL_FMT_CSV;
}

/* See at_eval.h. Thread: any. */
bool at_eval_format_parse(const char *s, at_eval_format_t *out)
{
    static const struct {
        const char *name;
        at_eval_format_t fmt;
    } f[] = {{"ndjson", AT_EVAL_FMT_NDJSON},
             {"csv", AT_EVAL_FMT_CSV},
             {"movielens", AT_EVAL_FMT_MOVIELENS}};
    for (size_t i = 0; i < AT_ARRAY_LEN(f); i++)
        if (!strcmp(s, f[i].name)) {
            *out = f[i].fmt;
            return true;
        }
    return false;
}
