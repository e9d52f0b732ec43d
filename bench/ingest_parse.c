/* ingest_parse.c - the cost of at_ingest_parse (src/ingest, docs/events.md)
 * per event: reads an NDJSON file of events (`attune load --out`), cuts it
 * into bodies of BATCH lines, and parses every body as NDJSON and as a
 * {"events":[...]} batch, printing ns/event and MB/s of body.
 *
 *   bench_ingest_parse [--kind ndjson|json|both] [--batch N] [--events N]
 *                      [--rounds R] [--schema] FILE
 *
 * --events keeps the first N events of FILE; --rounds (default 5) times
 * each body form R times over all bodies and prints the median and the
 * best; --schema gives every event type of FILE a four-property schema.
 * Instructions per event: run one round of one form under callgrind,
 * collecting only inside the parser, and divide Ir by the events printed:
 *   valgrind --tool=callgrind --toggle-collect=at_ingest_parse \
 *       bench_ingest_parse --kind ndjson --rounds 1 --events 20000 FILE
 */
#include "at_config.h"
#include "at_core.h"
#include "at_ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_BENCH_RECV 1793494800000LL /* 2026-11-01T01:00:00Z */
#define AT_BENCH_PARTS 16

typedef struct at_bench_body {
    char *data;
    size_t len;
    size_t nevents;
} at_bench_body_t;

typedef struct at_bench {
    at_bench_body_t *nd, *js; /* the same events as NDJSON and as a batch */
    size_t nbodies;
    size_t nevents;
    size_t nd_bytes, js_bytes;
} at_bench_t;

static char *at_bench_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    at_buf_t b;
    at_buf_init(&b, 0);
    char tmp[1 << 16];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        AT_ASSERT(at_buf_append(&b, tmp, n) == 0);
    (void)fclose(f);
    return at_buf_steal(&b, len);
}

/* Cuts text into bodies of batch non-blank lines, at most max_events in all. */
static void at_bench_split(at_bench_t *bn, const char *text, size_t len, size_t batch,
                           size_t max_events)
{
    size_t cap = 0;
    const char *p = text, *end = text + len;
    while (p < end && bn->nevents < max_events) {
        at_buf_t nd, js;
        at_buf_init(&nd, 0);
        at_buf_init(&js, 0);
        AT_ASSERT(at_buf_puts(&js, "{\"events\":[") == 0);
        size_t k = 0;
        while (p < end && k < batch && bn->nevents < max_events) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (n > 0) {
                AT_ASSERT(at_buf_append(&nd, p, n) == 0 && at_buf_putc(&nd, '\n') == 0);
                if (k > 0)
                    AT_ASSERT(at_buf_putc(&js, ',') == 0);
                AT_ASSERT(at_buf_append(&js, p, n) == 0);
                k++;
                bn->nevents++;
            }
            p += n + (nl != NULL);
        }
        AT_ASSERT(at_buf_puts(&js, "]}") == 0);
        if (k == 0) {
            at_buf_deinit(&nd);
            at_buf_deinit(&js);
            break;
        }
        if (bn->nbodies == cap) {
            cap = cap ? cap * 2 : 64;
            bn->nd = at_xrealloc(bn->nd, cap * sizeof *bn->nd);
            bn->js = at_xrealloc(bn->js, cap * sizeof *bn->js);
        }
        at_bench_body_t *a = &bn->nd[bn->nbodies], *z = &bn->js[bn->nbodies];
        a->data = at_buf_steal(&nd, &a->len);
        z->data = at_buf_steal(&js, &z->len);
        a->nevents = z->nevents = k;
        bn->nd_bytes += a->len;
        bn->js_bytes += z->len;
        bn->nbodies++;
    }
}

/* Parses every body once; returns the elapsed ns. Checks that every event
 * was accepted, so that a broken parser cannot look fast. */
static int64_t at_bench_round(at_ingest_t *in, const at_bench_body_t *bodies, size_t n,
                              at_body_kind_t kind, size_t *accepted)
{
    int64_t t0 = at_time_mono_ns();
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        at_batch_t b;
        at_error_t e;
        at_batch_init(&b);
        int rc = at_ingest_parse(in, bodies[i].data, bodies[i].len, kind, AT_BENCH_RECV,
                                 AT_BENCH_PARTS, &b, &e);
        if (rc != 0) {
            (void)fprintf(stderr, "bench_ingest_parse: body %zu: %s\n", i, e.message);
            exit(1);
        }
        if (b.nrejects > 0 && !*accepted)
            (void)fprintf(stderr, "bench_ingest_parse: body %zu: reject %d: %s\n", i,
                          b.rejects[0].index, b.rejects[0].error.message);
        ok += b.nevents;
        at_batch_deinit(&b);
    }
    int64_t t = at_time_mono_ns() - t0;
    *accepted = ok;
    return t;
}

static int at_bench_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void at_bench_form(at_ingest_t *in, const at_bench_t *bn, bool json, int rounds)
{
    const at_bench_body_t *bodies = json ? bn->js : bn->nd;
    size_t bytes = json ? bn->js_bytes : bn->nd_bytes, accepted = 0;
    int64_t *t = at_xcalloc((size_t)rounds, sizeof *t);
    for (int r = 0; r < rounds; r++)
        t[r] = at_bench_round(in, bodies, bn->nbodies, json ? AT_BODY_JSON : AT_BODY_NDJSON,
                              &accepted);
    qsort(t, (size_t)rounds, sizeof *t, at_bench_cmp);
    double med = (double)t[rounds / 2], best = (double)t[0];
    printf("%-7s %zu events in %zu bodies, %zu bytes, %zu accepted: "
           "median %.0f ns/event (%.1f MB/s), best %.0f ns/event (%.1f MB/s)\n",
           json ? "json" : "ndjson", bn->nevents, bn->nbodies, bytes, accepted,
           med / (double)bn->nevents, (double)bytes / med * 1e3, best / (double)bn->nevents,
           (double)bytes / best * 1e3);
    free(t);
}

/* Adds a schema with four optional properties for every "type" in text. */
static void at_bench_schemas(at_config_t *c, const char *text, size_t len)
{
    static const char schema[] = "{\"properties\":{\"price\":{\"type\":\"number\",\"minimum\":0},"
                                 "\"quantity\":{\"type\":\"integer\",\"minimum\":1},"
                                 "\"currency\":{\"type\":\"string\",\"maxLength\":3},"
                                 "\"title\":{\"type\":\"string\"}}}";
    const char *p = text, *end = text + len;
    while ((p = memmem(p, (size_t)(end - p), "\"type\":\"", 8)) != NULL) {
        p += 8;
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            break;
        bool seen = false;
        for (size_t i = 0; i < c->nschemas && !seen; i++)
            seen = strlen(c->schemas[i].type) == (size_t)(q - p) &&
                   memcmp(c->schemas[i].type, p, (size_t)(q - p)) == 0;
        if (!seen) {
            c->schemas = at_xrealloc(c->schemas, (c->nschemas + 1) * sizeof *c->schemas);
            memset(&c->schemas[c->nschemas], 0, sizeof *c->schemas);
            c->schemas[c->nschemas].type = at_xstrndup(p, (size_t)(q - p));
            c->schemas[c->nschemas].json = at_xstrdup(schema);
            c->nschemas++;
        }
        p = q;
    }
}

static void at_bench_usage(void)
{
    (void)fprintf(stderr, "usage: bench_ingest_parse [--kind ndjson|json|both] [--batch N] "
                          "[--events N] [--rounds R] [--schema] FILE\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *kind = "both", *path = NULL;
    size_t batch = 500, max_events = SIZE_MAX;
    int rounds = 5;
    bool schema = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (strcmp(a, "--kind") == 0 && more)
            kind = argv[++i];
        else if (strcmp(a, "--batch") == 0 && more)
            batch = strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--events") == 0 && more)
            max_events = strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--rounds") == 0 && more)
            rounds = atoi(argv[++i]);
        else if (strcmp(a, "--schema") == 0)
            schema = true;
        else if (a[0] != '-' && !path)
            path = a;
        else
            at_bench_usage();
    }
    if (!path || batch == 0 || rounds < 1)
        at_bench_usage();
    size_t len;
    char *text = at_bench_read(path, &len);
    at_bench_t bn;
    memset(&bn, 0, sizeof bn);
    at_bench_split(&bn, text, len, batch, max_events);

    at_config_t c;
    at_config_defaults(&c);
    c.max_batch_events = (int)batch;
    if (schema)
        at_bench_schemas(&c, text, len);
    at_ingest_t *in;
    at_error_t e;
    if (at_ingest_new(&in, &c, NULL, &e) < 0) {
        (void)fprintf(stderr, "bench_ingest_parse: %s\n", e.message);
        return 1;
    }
    at_config_free(&c);
    if (strcmp(kind, "json") != 0)
        at_bench_form(in, &bn, false, rounds);
    if (strcmp(kind, "ndjson") != 0)
        at_bench_form(in, &bn, true, rounds);

    at_ingest_free(in);
    for (size_t i = 0; i < bn.nbodies; i++) {
        free(bn.nd[i].data);
        free(bn.js[i].data);
    }
    free(bn.nd);
    free(bn.js);
    free(text);
    return 0;
}
