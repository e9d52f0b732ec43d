/* corpus_gen.h - a generated corpus of request bodies for the ingest tests
 * that compare whole results (test_corpus.c against recorded outputs,
 * test_scan.c between the two parsing paths): events built at random from
 * the fields of docs/events.md, their Segment and mapped names, and unknown
 * ones, with every kind of value (escapes, non-ASCII, numbers as written,
 * nesting, duplicates, limits, bad UTF-8 and bad syntax), in every body
 * form. The same seed gives the same bodies on every machine: the
 * generator uses nothing but its own random numbers.
 */
#ifndef CORPUS_GEN_H
#define CORPUS_GEN_H

#include "at_config.h"
#include "at_core.h"
#include "at_ingest.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-04-27T14:36:00Z, the receive time of every corpus body. */
#define CG_RECV 1777300560000LL
#define CG_PARTS 16
#define CG_NCONFIGS 4

typedef struct cg_rng {
    uint64_t s;
} cg_rng_t;

static inline uint32_t cg_next(cg_rng_t *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 2685821657736338717ULL) >> 32);
}

static inline uint32_t cg_below(cg_rng_t *r, uint32_t n)
{
    return cg_next(r) % n;
}

/* True with probability pct percent. */
static inline bool cg_pct(cg_rng_t *r, uint32_t pct)
{
    return cg_below(r, 100) < pct;
}

/* A growing text buffer that aborts on OOM (test code). */
typedef struct cg_buf {
    char *p;
    size_t n, cap;
} cg_buf_t;

static inline void cg_put(cg_buf_t *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static inline void cg_puts(cg_buf_t *b, const char *s)
{
    cg_put(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static inline void cg_printf(cg_buf_t *b, const char *fmt,
                                                                   ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    cg_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static inline const char *cg_pick(cg_rng_t *r, const char *const *v, size_t n)
{
    return v[cg_below(r, (uint32_t)n)];
}

#define CG_PICK(r, arr) cg_pick((r), (arr), sizeof(arr) / sizeof((arr)[0]))

/* How wild the values of one event are. */
typedef struct cg_opt {
    bool bad;     /* broken strings, numbers and syntax */
    bool clean;   /* no duplicate keys, no long strings, no deep nesting */
    bool ndjson;  /* no newlines between tokens */
    bool compact; /* no whitespace at all, as most producers send */
    bool ascii;   /* strings in printable ASCII without escapes */
} cg_opt_t;

/* Whitespace between tokens: usually none, as producers send. */
static inline void cg_ws(cg_rng_t *r, cg_buf_t *b, const cg_opt_t *o)
{
    static const char *const ws[] = {" ", "  ", "\t", "\r", " \t "};
    static const char *const wsnl[] = {"\n", " \n  ", "\r\n"};
    if (o->compact)
        return;
    uint32_t k = cg_below(r, 100);
    if (k < 90)
        return;
    if (k < 98 || o->ndjson)
        cg_puts(b, CG_PICK(r, ws));
    else
        cg_puts(b, CG_PICK(r, wsnl));
}

/* The body of a JSON string (without quotes): plain, escaped, non-ASCII,
 * long, or broken (bad UTF-8, lone surrogates, raw control characters). */
static inline void cg_string_body(cg_rng_t *r, cg_buf_t *b, const cg_opt_t *o)
{
    static const char *const plain[] = {
        "mobile",
        "en-US",
        "Europe/Paris",
        "/p/18",
        "https://www.example.com/?q=1",
        "Home",
        "USD",
        "a",
        "books/fiction",
        "electronics/phones",
        "12345",
        "u-77",
        "track",
        "identify",
        "2026-04-27T14:35:00Z",
        "x y z",
        "0",
        "null",
        "true",
        "view_item",
    };
    static const char *const esc[] = {
        "\\\"",
        "\\\\",
        "\\/",
        "\\b",
        "\\f",
        "\\n",
        "\\r",
        "\\t",
        "\\u0000",
        "\\u0001",
        "\\u001f",
        "\\u0020",
        "\\u0022",
        "\\u005c",
        "\\u002F",
        "\\u007f",
        "\\u00e9",
        "\\u00E9",
        "\\u20ac",
        "\\uffff",
        "\\ud83d\\ude00",
        "\\uD83D\\uDE00",
        "\\u0008",
        "\\u000a",
        "\\u000C",
        "\\u000d",
        "\\u0009",
        "\\u0041",
        "\\u07ff",
        "\\u0800",
    };
    static const char *const utf8[] = {
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "\xe6\x97\xa5\xe6\x9c\xac",
        "\xc2\x80",
        "\xdf\xbf",
        "\xe0\xa0\x80",
        "\xef\xbf\xbf",
        "\xf4\x8f\xbf\xbf",
        "\xed\x9f\xbf",
        "\xee\x80\x80",
        ("Gr\xc3\xbc\xc3\x9f"
         "e"),
    };
    static const char *const bad[] = {
        "\xc3",           "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xf8\x88",       "\xff",     "\x80",         "\\ud83d",      "\\ude00",
        "\\ud83d\\u0041", "\\x41",    "\\u12",        "\\u12g4",      "\x01",
        "\x1f",           "\t",       "\\",           "\\U0041",      "\xe2\x82",
    };
    uint32_t k = cg_below(r, 100);
    if (k < 45) {
        cg_puts(b, CG_PICK(r, plain));
        return;
    }
    if (k < 50)
        return; /* "" */
    if (k < 53 && !o->clean) {
        uint32_t n = 20 + cg_below(r, 1100);
        for (uint32_t i = 0; i < n; i++) {
            char c = (char)('a' + cg_below(r, 26));
            cg_put(b, &c, 1);
        }
        return;
    }
    uint32_t parts = 1 + cg_below(r, 5);
    for (uint32_t i = 0; i < parts; i++) {
        uint32_t q = cg_below(r, 100);
        if (q < 35 || o->ascii)
            cg_puts(b, CG_PICK(r, plain));
        else if (q < 70)
            cg_puts(b, CG_PICK(r, esc));
        else if (q < 97 || !o->bad)
            cg_puts(b, CG_PICK(r, utf8));
        else
            cg_puts(b, CG_PICK(r, bad));
    }
}

static inline void cg_string(cg_rng_t *r, cg_buf_t *b, const cg_opt_t *o)
{
    cg_puts(b, "\"");
    cg_string_body(r, b, o);
    cg_puts(b, "\"");
}

static inline void cg_number(cg_rng_t *r, cg_buf_t *b, const cg_opt_t *o)
{
    static const char *const nums[] = {
        "0",
        "-0",
        "1",
        "-42",
        "19.99",
        "1.0E+2",
        "1e-7",
        "2E10",
        "0.5",
        "-0.0",
        "1e400",
        "123456789012345678901234567890",
        "987",
        "1.5",
        "3.0",
        "-1.25e-3",
        "1E0",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "18446744073709551616",
        "1777300500001",
        "1777300860001",
        "253402300799999",
        "253402300800000",
    };
    static const char *const bad[] = {"01", "-",    "1.",   ".5",  "1e", "1e+",
                                      "+1", "0x10", "1.e3", "--1", "-01"};
    if (o->bad && cg_pct(r, 3))
        cg_puts(b, CG_PICK(r, bad));
    else if (cg_pct(r, 60))
        cg_puts(b, CG_PICK(r, nums));
    else
        cg_printf(b, "%u", cg_next(r) % 100000);
}

static inline void cg_value(cg_rng_t *r, cg_buf_t *b, int depth, const cg_opt_t *o);

static inline void cg_key(cg_rng_t *r, cg_buf_t *b, const cg_opt_t *o)
{
    static const char *const keys[] = {
        "price",
        "quantity",
        "currency",
        "title",
        "sku",
        "product_id",
        "category",
        "list",
        "position",
        "device",
        "locale",
        "timezone",
        "page",
        "referrer",
        "items",
        "a",
        "b",
        "c",
        "session",
        "id",
        "k",
        "",
        "x.y",
        "caf\xc3\xa9",
        "caf\\u00e9",
        "\\u0000",
        "tab\\t",
        "q\\\"",
        "k12345678901234567890123456789012345678901",
    };
    cg_puts(b, "\"");
    uint32_t nkeys = (uint32_t)(sizeof keys / sizeof keys[0]) - (o->clean ? 1 : 0);
    if (cg_pct(r, 90))
        cg_puts(b, keys[cg_below(r, o->ascii ? 23 : nkeys)]);
    else
        cg_string_body(r, b, o);
    cg_puts(b, "\"");
}

static inline void cg_object(cg_rng_t *r, cg_buf_t *b, int depth, const cg_opt_t *o)
{
    uint32_t n = cg_below(r, depth > 3 ? 3 : 7);
    char keys[8][64];
    cg_puts(b, "{");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            cg_puts(b, ",");
        cg_ws(r, b, o);
        size_t at = b->n;
        if (i > 0 && !o->clean && cg_pct(r, 4)) { /* a duplicate key */
            cg_puts(b, keys[cg_below(r, i)]);
        } else {
            cg_key(r, b, o);
        }
        size_t kn = b->n - at < 63 ? b->n - at : 63;
        memcpy(keys[i], b->p + at, kn);
        keys[i][kn] = '\0';
        for (uint32_t j = 0; o->clean && j < i; j++)
            if (strcmp(keys[j], keys[i]) == 0) { /* keep clean objects free of duplicates */
                b->n = at;
                cg_printf(b, "\"k%u\"", i);
                snprintf(keys[i], sizeof keys[i], "\"k%u\"", i);
                break;
            }
        cg_ws(r, b, o);
        cg_puts(b, ":");
        cg_ws(r, b, o);
        cg_value(r, b, depth + 1, o);
        cg_ws(r, b, o);
    }
    cg_puts(b, "}");
}

static inline void cg_array(cg_rng_t *r, cg_buf_t *b, int depth, const cg_opt_t *o)
{
    uint32_t n = cg_below(r, depth > 3 ? 3 : 6);
    cg_puts(b, "[");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            cg_puts(b, ",");
        cg_ws(r, b, o);
        cg_value(r, b, depth + 1, o);
        cg_ws(r, b, o);
    }
    cg_puts(b, "]");
}

static inline void cg_value(cg_rng_t *r, cg_buf_t *b, int depth, const cg_opt_t *o)
{
    uint32_t k = cg_below(r, 100);
    if (depth > (o->clean ? 4 : 9))
        k = k % 60;
    if (k < 30)
        cg_string(r, b, o);
    else if (k < 50)
        cg_number(r, b, o);
    else if (k < 54)
        cg_puts(b, "true");
    else if (k < 57)
        cg_puts(b, "false");
    else if (k < 60)
        cg_puts(b, "null");
    else if (k < 82)
        cg_object(r, b, depth, o);
    else
        cg_array(r, b, depth, o);
}

static inline void cg_timestamp(cg_rng_t *r, cg_buf_t *b)
{
    static const char *const ts[] = {
        "\"2026-04-27T14:35:00.000Z\"",
        "\"2026-04-27T14:35:00Z\"",
        "\"2026-04-27T14:35:00.123456Z\"",
        "\"2026-04-27T16:35:00.9+02:00\"",
        "\"2026-04-27t14:35:00z\"",
        "\"2026-04-27 14:35:00Z\"",
        "\"2026-04-27T14:35:60Z\"",
        "\"2026-04-27T14:35:59.999Z\"",
        "\"2026-02-29T00:00:00Z\"",
        "\"2024-02-29T00:00:00.000Z\"",
        "\"2026-04-31T00:00:00Z\"",
        "\"2026-13-01T00:00:00Z\"",
        "\"2026-04-27T24:00:00Z\"",
        "\"2026-04-27T14:35:00\"",
        "\"2026-04-27T14:35:00.Z\"",
        "\"1969-12-31T23:59:59.999Z\"",
        "\"1970-01-01T00:00:00.000Z\"",
        "\"9999-12-31T23:59:59.999Z\"",
        "\"2026-04-27T14:40:00.001Z\"",
        "\"2026-04-27T14:41:00.001Z\"",
        "\"2026-04-27T14:35:00-23:59\"",
        "\"2026-04-27T14:35:00+24:00\"",
        "\"yesterday\"",
        "\"\"",
        "\"2026-04-27T14:35:00.000\\u005a\"",
        "\"2026\\u002d04-27T14:35:00Z\"",
        "1777300500001",
        "1777300860001",
        "-5",
        "1.5e12",
        "0",
        "true",
        "null",
        "253402300799999",
        "253402300800000",
        "{\"t\":1}",
        "\"2026-11-01T00:00:00.004Z\"",
        "\"2000-01-01T00:00:00.000Z\"",
        "\"2026-04-27T14:35:00.000+00:00\"",
        "\"2026-04-27T14:35:00.00Z\"",
        "\"0000-01-01T00:00:00.000Z\"",
        "\"2026-04-27T14:35:00.000z\"",
        "\"2026-04-27T1:35:00.000Z\"",
        "\"2026-04-27T14:35:00.000Z \"",
        "\"2026-4-27T14:35:00.000Z\"",
        "\"2026-04-27T14:35:0a.000Z\"",
    };
    cg_puts(b, CG_PICK(r, ts));
}

/* A value for a canonical string field: mostly a fine string. */
static inline void cg_field(cg_rng_t *r, cg_buf_t *b, const cg_opt_t *o)
{
    uint32_t k = cg_below(r, 100);
    if (k < (o->clean ? 85u : 70u)) {
        static const char *const ids[] = {
            "\"12345\"", "\"u-1\"",       "\"a-77\"",      "\"s-5-190\"", "\"ld-5-0\"",
            "\"987\"",   "\"view_item\"", "\"page_view\"", "\"track\"",   "\"identify\""};
        cg_puts(b, CG_PICK(r, ids));
    } else if (k < 82) {
        cg_string(r, b, o);
    } else if (k < 90) {
        static const char *const ints[] = {"42",  "-42", "0", "-0", "12345678901234567890123",
                                           "1.5", "1e3"};
        cg_puts(b, ints[cg_below(r, o->clean ? 5 : 7)]);
    } else if (k < 94 || o->clean) {
        cg_puts(b, "null");
    } else {
        cg_value(r, b, 2, o);
    }
}

/* One event (usually an object) at b. */
static inline void cg_event(cg_rng_t *r, cg_buf_t *b, bool allow_bad, bool ndjson)
{
    cg_opt_t opt = {.bad = allow_bad, .clean = cg_pct(r, 75), .ndjson = ndjson};
    const cg_opt_t *o = &opt;
    if (o->clean)
        opt.bad = false;
    opt.compact = cg_pct(r, 40);
    opt.ascii = opt.compact && cg_pct(r, 60);
    static const char *const names[] = {
        "type",
        "user_id",
        "anonymous_id",
        "event_id",
        "session_id",
        "item_id",
        "category",
        "timestamp",
        "context",
        "properties",
        "traits",
        "write_key",
        "sentAt",
        "event",
        "userId",
        "anonymousId",
        "messageId",
        "sessionId",
        "originalTimestamp",
        "integrations",
        "channel",
        "customer_id",
        "event_type",
        "meta",
        "ts",
        "a",
        "events",
        "batch",
        "extra",
        "received_at",
        "clamped",
        "x",
        "caf\xc3\xa9",
        "typ\\u0065",
        "",
        "k12345678901234567890123456789012345678901",
    };
    if (o->bad && cg_pct(r, 2)) {
        cg_value(r, b, 1, o);
        return;
    }
    bool seen[sizeof names / sizeof names[0]] = {false};
    size_t start = b->n;
    cg_puts(b, "{");
    bool first = true;
    /* the usual core of an event, in the load generator's order */
    if (cg_pct(r, o->clean ? 97 : 80)) {
        cg_puts(b, "\"type\":");
        cg_field(r, b, o);
        first = false;
        seen[0] = true;
    }
    if (cg_pct(r, o->clean ? 95 : 75)) {
        cg_puts(b, first ? "" : ",");
        cg_puts(b, cg_pct(r, 70) ? "\"user_id\":" : "\"anonymous_id\":");
        cg_field(r, b, o);
        first = false;
        seen[1] = seen[2] = true;
    }
    uint32_t n = cg_below(r, 9);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = cg_below(r, (uint32_t)(sizeof names / sizeof names[0]) - (o->clean ? 1 : 0));
        if (seen[j] && (o->clean || !cg_pct(r, 5)))
            continue; /* a repeated top-level name, rarely */
        if (o->clean && strchr(names[j], '\\'))
            continue; /* "typ\u0065" is "type" again */
        seen[j] = true;
        cg_puts(b, first ? "" : ",");
        first = false;
        cg_ws(r, b, o);
        cg_printf(b, "\"%s\"", names[j]);
        cg_ws(r, b, o);
        cg_puts(b, ":");
        cg_ws(r, b, o);
        const char *nm = names[j];
        if (!strcmp(nm, "timestamp") || !strcmp(nm, "sentAt") || !strcmp(nm, "originalTimestamp") ||
            !strcmp(nm, "ts"))
            cg_timestamp(r, b);
        else if (!strcmp(nm, "context") || !strcmp(nm, "properties") || !strcmp(nm, "traits") ||
                 !strcmp(nm, "meta") || !strcmp(nm, "integrations"))
            cg_pct(r, o->clean ? 98 : 90) ? cg_object(r, b, 2, o) : cg_value(r, b, 2, o);
        else if (j < 19 || !strcmp(nm, "customer_id") || !strcmp(nm, "event_type"))
            cg_field(r, b, o);
        else
            cg_value(r, b, 2, o);
        cg_ws(r, b, o);
    }
    cg_puts(b, "}");
    if (o->bad && cg_pct(r, 3)) {
        /* damage it: cut it short, or replace a byte */
        size_t len = b->n - start;
        size_t at = start + cg_below(r, (uint32_t)len);
        if (cg_pct(r, 50)) {
            b->n = at;
            b->p[b->n] = '\0';
        } else {
            static const char junk[] = "{}[]\",:x\\\x01\xff 0";
            b->p[at] = junk[cg_below(r, sizeof junk - 1)];
        }
    }
}

/* One body: its bytes in *b and its kind. */
static inline at_body_kind_t cg_body(cg_rng_t *r, cg_buf_t *b)
{
    b->n = 0;
    if (b->p)
        b->p[0] = '\0';
    bool bad = cg_pct(r, 30);
    uint32_t form = cg_below(r, 100);
    uint32_t n = 1 + cg_below(r, cg_pct(r, 10) ? 30 : 8);
    if (cg_pct(r, 2))
        cg_puts(b, "\xef\xbb\xbf");
    if (form < 45) { /* NDJSON */
        for (uint32_t i = 0; i < n; i++) {
            if (cg_pct(r, 5))
                cg_puts(b, cg_pct(r, 50) ? "\n" : "  \r\n");
            cg_event(r, b, bad, true);
            cg_puts(b, cg_pct(r, 10) ? "\r\n" : "\n");
        }
        return cg_pct(r, 15) ? AT_BODY_TEXT : AT_BODY_NDJSON;
    }
    if (form < 90) { /* a batch object or a bare array */
        uint32_t shape = cg_below(r, 10);
        if (shape < 6)
            cg_puts(b, "{\"events\":[");
        else if (shape < 7)
            cg_puts(b, "{\"write_key\":\"wk\\u0031\",\"batch\":[");
        else if (shape < 8)
            cg_puts(b, "{\"sentAt\":1,\"events\":[");
        else
            cg_puts(b, "[");
        for (uint32_t i = 0; i < n; i++) {
            if (i)
                cg_puts(b, ",");
            static const cg_opt_t json_ws = {.ndjson = false};
            cg_ws(r, b, &json_ws);
            cg_event(r, b, bad, false);
        }
        cg_puts(b, "]");
        if (shape < 8) {
            if (cg_pct(r, 20))
                cg_puts(b, ",\"write_key\":\"wk-late\"");
            cg_puts(b, "}");
        }
        if (cg_pct(r, 5))
            cg_puts(b, cg_pct(r, 50) ? " x" : "\n");
        return cg_pct(r, 15) ? AT_BODY_TEXT : AT_BODY_JSON;
    }
    cg_event(r, b, bad, false); /* one event */
    return cg_pct(r, 15) ? AT_BODY_TEXT : AT_BODY_JSON;
}

/* The configurations the corpus runs under (mappings, limits, schemas). */
static inline void cg_config(int k, at_config_t *c)
{
    at_config_defaults(c);
    static const char *const maps[][2] = {
        {"customer_id", "user_id"},    {"event_type", "type"},
        {"properties.sku", "item_id"}, {"context.page.session", "session_id"},
        {"meta.id", "event_id"},       {"ts", "timestamp"},
        {"meta.a.b", "category"},      {"traits.cat", "category"},
    };
    size_t nmaps = 0;
    if (k == 1) {
        c->max_event_bytes = 600;
        c->max_field_length = 40;
        c->max_depth = 4;
        nmaps = 4;
    } else if (k == 2) {
        c->max_event_bytes = 300;
        c->max_field_length = 8;
        c->max_depth = 2;
        c->max_batch_events = 12;
        nmaps = 3;
    } else if (k == 3) {
        c->max_future_ms = 0;
        nmaps = sizeof maps / sizeof maps[0];
    }
    if (nmaps) {
        c->mappings = calloc(nmaps, sizeof *c->mappings);
        if (!c->mappings)
            abort();
        for (size_t i = 0; i < nmaps; i++) {
            c->mappings[i].from = strdup(maps[i][0]);
            c->mappings[i].to = strdup(maps[i][1]);
        }
        c->nmappings = nmaps;
    }
    if (k >= 2) {
        static const char *const schemas[][2] = {
            {"view_item", "{\"properties\":{\"price\":{\"type\":\"number\",\"minimum\":0},"
                          "\"title\":{\"type\":\"string\",\"maxLength\":4}}}"},
            {"track", "{\"required\":[\"a\"]}"},
            {"identify", "{\"additionalProperties\":false,\"properties\":{\"plan\":{}}}"},
        };
        size_t ns = sizeof schemas / sizeof schemas[0];
        c->schemas = calloc(ns, sizeof *c->schemas);
        if (!c->schemas)
            abort();
        for (size_t i = 0; i < ns; i++) {
            c->schemas[i].type = strdup(schemas[i][0]);
            c->schemas[i].json = strdup(schemas[i][1]);
            c->schemas[i].line = 1;
        }
        c->nschemas = ns;
    }
}

static inline void cg_text(cg_buf_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == '\\')
            cg_printf(o, "\\x%02x", ch);
        else
            cg_put(o, (const char *)&ch, 1);
    }
}

/* Writes everything the parse produced into o, one line per item; ids the
 * server assigned (random) are written as "<id>". */
static inline void cg_result(cg_buf_t *o, int rc, const at_error_t *e, const at_batch_t *b)
{
    o->n = 0;
    cg_printf(o, "rc %d", rc);
    if (rc != 0) {
        cg_printf(o, " %s [%s] ", e->code, e->field);
        cg_text(o, e->message, strlen(e->message));
        cg_puts(o, "\n");
        return;
    }
    cg_puts(o, " write_key ");
    if (b->write_key)
        cg_text(o, b->write_key, strlen(b->write_key));
    cg_printf(o, " nclamped %zu\n", b->nclamped);
    for (size_t i = 0; i < b->nevents; i++) {
        const at_event_t *ev = &b->events[i];
        cg_printf(o, "E %d p%d ", ev->index, ev->partition);
        cg_text(o, ev->key, ev->key_len);
        cg_puts(o, " ");
        const char *json = ev->json;
        size_t jn = ev->json_len;
        if (ev->id_assigned) {
            cg_puts(o, "<id>");
            if (jn < 13 + AT_ID_LEN || memcmp(json, "{\"event_id\":\"", 13) != 0 ||
                strlen(ev->event_id) != AT_ID_LEN ||
                memcmp(json + 13, ev->event_id, AT_ID_LEN) != 0)
                cg_puts(o, "(bad)");
        } else {
            cg_text(o, ev->event_id, ev->event_id_len);
        }
        cg_puts(o, " ");
        cg_text(o, ev->type, strlen(ev->type));
        cg_printf(o, " ts %lld recv %lld%s ", (long long)ev->ts_ms, (long long)ev->recv_ms,
                  ev->clamped ? " clamped" : "");
        if (ev->id_assigned) {
            cg_puts(o, "{\"event_id\":\"<id>");
            json += 13 + AT_ID_LEN;
            jn -= 13 + AT_ID_LEN;
        }
        cg_text(o, json, jn);
        if (strlen(ev->json) != ev->json_len || strlen(ev->key) != ev->key_len ||
            strlen(ev->event_id) != ev->event_id_len)
            cg_puts(o, " (bad lengths)");
        cg_puts(o, "\n");
    }
    for (size_t i = 0; i < b->nrejects; i++) {
        const at_reject_t *rj = &b->rejects[i];
        cg_printf(o, "R %d %s [%s] ", rj->index, rj->error.code, rj->error.field);
        cg_text(o, rj->error.message, strlen(rj->error.message));
        cg_puts(o, " raw ");
        cg_text(o, rj->raw, rj->raw_len);
        cg_puts(o, "\n");
    }
}

/* Parses body with in and writes the result into o. */
static inline void cg_run(at_ingest_t *in, const cg_buf_t *body, at_body_kind_t kind, cg_buf_t *o)
{
    at_batch_t b;
    at_error_t e;
    at_batch_init(&b);
    memset(&e, 0, sizeof e);
    int rc = at_ingest_parse(in, body->p ? body->p : "", body->n, kind, CG_RECV, CG_PARTS, &b, &e);
    cg_result(o, rc, &e, &b);
    at_batch_deinit(&b);
}

#endif
