/* batch.c - request bodies to batches (DESIGN.md §4, docs/events.md):
 * {"events":[...]} (or Segment's {"batch":[...]}, or a bare array), a
 * single event object, NDJSON, and text/plain sniffed as one or the other.
 *
 * Events are parsed one at a time into a scratch arena that is reset
 * between them, so memory stays proportional to one event, not the body;
 * an event past max_event_bytes is checked but never built.
 */
#include "ingest_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nesting the parser tolerates beyond max_depth before the body as a whole
 * is refused; up to there a too-deep event is a reject like any other. */
#define AT_BATCH_DEPTH_SLACK 32

typedef struct at_bparse {
    at_evctx_t c;
    at_jparse_t p;
    at_arena_t top; /* top-level members of the body */
    at_arena_t ev;  /* the current event's tree */
    int nevents;    /* events seen: accepted + rejected */
    int rc;         /* a body error found by at_batch__line_scan */
} at_bparse_t;

/* Prepares b (caller storage) as an empty batch. Thread: any. */
void at_batch_init(at_batch_t *b)
{
    memset(b, 0, sizeof *b);
    at_arena_init(&b->arena, 16 << 10);
}

/* Frees everything b holds; b may then be initialized again. */
void at_batch_deinit(at_batch_t *b)
{
    at_arena_deinit(&b->arena);
    memset(b, 0, sizeof *b);
}

static bool at_batch__ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static int at_batch__too_many(const at_bparse_t *bp, at_error_t *err)
{
    return at_error_set(err, AT_ETOOBIG, "batch_too_large", NULL,
                        "the batch holds more than %d events", bp->c.in->max_batch_events);
}

/* Starts a fresh event tree at p->pos. */
static void at_batch__event_start(at_bparse_t *bp)
{
    at_jparse_t *p = &bp->p;
    at_arena_reset(&bp->ev);
    at_json_set_arena(p, &bp->ev);
    at_json_ws(p);
    p->build = true;
    p->base = p->pos;
    p->build_limit = (size_t)bp->c.in->max_event_bytes;
}

/* The single pass (scan.c) over the event of an array at p->pos; false
 * when it is left to the tree path (nothing changed but whitespace). */
static bool at_batch__scan(at_bparse_t *bp)
{
    at_jparse_t *p = &bp->p;
    const at_ingest_t *in = bp->c.in;
    at_json_ws(p);
    if (!in->scan || p->pos >= p->len || p->src[p->pos] != '{')
        return false;
    size_t max = (size_t)in->max_event_bytes;
    size_t end = p->len - p->pos > max ? p->pos + max : p->len, after;
    if (!at_ingest__scan(&bp->c, bp->nevents, p->src, p->pos, end, p->len, 0, &after))
        return false;
    bp->nevents++;
    p->pos = after;
    return true;
}

/* Parses the array of events at p->pos ('['), handing each to the event
 * code. Returns 0, AT_EPARSE (p has the error) or AT_ETOOBIG (err set). */
static int at_batch__array(at_bparse_t *bp, at_error_t *err)
{
    at_jparse_t *p = &bp->p;
    if (++p->depth > p->max_depth)
        return at_json_fail(p, p->pos, "nesting too deep");
    p->pos++;
    at_json_ws(p);
    if (p->pos < p->len && p->src[p->pos] == ']') {
        p->pos++;
        p->depth--;
        return 0;
    }
    for (;;) {
        if (bp->nevents >= bp->c.in->max_batch_events)
            return at_batch__too_many(bp, err);
        if (!at_batch__scan(bp)) {
            at_batch__event_start(bp);
            size_t start = p->pos;
            at_json_t *v;
            int rc = at_json_value(p, &v);
            if (rc < 0)
                return rc;
            at_ingest__event(&bp->c, bp->nevents++, v, p->src + start, p->pos - start);
        }
        at_json_ws(p);
        if (p->pos >= p->len)
            return at_json_fail(p, p->pos, "unexpected end of input in array");
        char ch = p->src[p->pos++];
        if (ch == ']')
            break;
        if (ch != ',')
            return at_json_fail(p, p->pos - 1, "expected ',' or ']'");
    }
    p->depth--;
    return 0;
}

static bool at_batch__is_key(const char *k, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(k, s, n) == 0;
}

/* One member of the top-level object: the events array (*batch set), or a
 * value linked under obj. */
static int at_batch__member(at_bparse_t *bp, at_json_t *obj, at_json_t ***tail, size_t start,
                            bool *batch, bool *big, at_error_t *err)
{
    at_jparse_t *p = &bp->p;
    at_json_ws(p);
    if (p->pos >= p->len || p->src[p->pos] != '"')
        return at_json_fail(p, p->pos, "expected a string key");
    at_json_set_arena(p, &bp->top);
    p->build = true;
    const char *k;
    uint32_t kn;
    uint8_t kesc;
    int rc = at_json_string(p, &k, &kn, &kesc);
    if (rc < 0)
        return rc;
    at_json_ws(p);
    if (p->pos >= p->len || p->src[p->pos] != ':')
        return at_json_fail(p, p->pos, "expected ':' after key");
    p->pos++;
    at_json_ws(p);
    if (!*batch && (at_batch__is_key(k, kn, "events") || at_batch__is_key(k, kn, "batch")) &&
        p->pos < p->len && p->src[p->pos] == '[') {
        *batch = true;
        return at_batch__array(bp, err);
    }
    /* Until "events" shows up this may be a single event: build it while
     * it is within the event size limit; write_key is always kept. */
    p->base = p->pos;
    p->build_limit = (size_t)bp->c.in->max_event_bytes;
    if (p->pos - start > p->build_limit && !at_batch__is_key(k, kn, "write_key"))
        p->build = false;
    at_json_set_arena(p, &bp->top);
    at_json_t *v;
    if ((rc = at_json_value(p, &v)) < 0)
        return rc;
    if (!v) {
        *big = true;
        return 0;
    }
    v->key = k;
    v->key_len = kn;
    v->flags |= kesc ? AT_JSON_F_KEY_ESC : 0;
    **tail = v;
    *tail = &v->next;
    obj->len++;
    return 0;
}

/* The top-level object at p->pos: a batch when it has an "events" (or
 * "batch") array, else a single event. */
static int at_batch__object(at_bparse_t *bp, at_error_t *err)
{
    at_jparse_t *p = &bp->p;
    size_t start = p->pos;
    at_json_t obj = {.type = AT_JSON_OBJECT};
    at_json_t **tail = &obj.child;
    bool batch = false, big = false;
    p->depth = 1;
    p->pos++;
    at_json_ws(p);
    if (p->pos < p->len && p->src[p->pos] == '}') {
        p->pos++;
    } else {
        for (;;) {
            int rc = at_batch__member(bp, &obj, &tail, start, &batch, &big, err);
            if (rc < 0)
                return rc;
            at_json_ws(p);
            if (p->pos >= p->len)
                return at_json_fail(p, p->pos, "unexpected end of input in object");
            char ch = p->src[p->pos++];
            if (ch == '}')
                break;
            if (ch != ',')
                return at_json_fail(p, p->pos - 1, "expected ',' or '}'");
        }
    }
    p->depth = 0;
    obj.off = (uint32_t)start;
    obj.end = (uint32_t)p->pos;
    if (batch) {
        const at_json_t *w = at_json_get(&obj, "write_key", 9);
        if (w && w->type == AT_JSON_STRING)
            bp->c.b->write_key = at_arena_strndup(&bp->c.b->arena, w->s, w->len);
        return 0;
    }
    bp->c.scratch = &bp->top;
    at_ingest__event(&bp->c, bp->nevents++, big ? NULL : &obj, p->src + start, p->pos - start);
    return 0;
}

/* A body in the JSON form. */
static int at_batch__json(at_bparse_t *bp, at_error_t *err)
{
    at_jparse_t *p = &bp->p;
    at_json_ws(p);
    int rc;
    if (p->pos >= p->len) {
        rc = at_json_fail(p, p->pos, "empty body");
    } else if (p->src[p->pos] == '{') {
        rc = at_batch__object(bp, err);
    } else if (p->src[p->pos] == '[') {
        rc = at_batch__array(bp, err);
    } else {
        at_batch__event_start(bp);
        size_t start = p->pos;
        at_json_t *v;
        if ((rc = at_json_value(p, &v)) == 0)
            at_ingest__event(&bp->c, bp->nevents++, v, p->src + start, p->pos - start);
    }
    if (rc == 0) {
        at_json_ws(p);
        if (p->pos != p->len)
            rc = at_json_fail(p, p->pos, "unexpected data after the JSON value");
    }
    if (rc == AT_EPARSE)
        return at_json_error(p, err, "invalid JSON");
    return rc;
}

/* One non-blank NDJSON line [a, z): an event, or a reject when it is not
 * JSON. at_batch__line_scan has already tried the single pass on it. */
static void at_batch__line(at_bparse_t *bp, size_t a, size_t z)
{
    at_jparse_t *p = &bp->p;
    int index = bp->nevents++;
    if (z - a > (size_t)bp->c.in->max_event_bytes) {
        at_ingest__event(&bp->c, index, NULL, p->src + a, z - a);
        return;
    }
    size_t full = p->len;
    p->len = z;
    p->pos = a;
    p->depth = 0;
    at_batch__event_start(bp);
    at_json_t *v;
    int rc = at_json_value(p, &v);
    if (rc == 0) {
        at_json_ws(p);
        if (p->pos != z)
            rc = at_json_fail(p, p->pos,
                              "unexpected data after the event "
                              "(NDJSON holds one event per line)");
    }
    p->len = full;
    if (rc == 0) {
        at_ingest__event(&bp->c, index, v, p->src + a, z - a);
        return;
    }
    at_error_t e;
    int line, col;
    at_json_where(p->src, p->err_pos, &line, &col);
    at_error_set(&e, AT_EPARSE, "invalid_json", NULL, "invalid JSON: line %d, column %d: %s", line,
                 col, p->err_msg);
    at_ingest__reject(&bp->c, index, p->src + a, z - a, &e);
}

/* The line at *pos: blank, or one event that the single pass (scan.c)
 * reads from its first byte to the end of the line without looking for
 * that end first. True when it is done with the line (*pos past it);
 * false when the line is left to at_batch__line (*pos unchanged), and
 * also at a body error (err set, *pos at the end). */
static bool at_batch__line_scan(at_bparse_t *bp, size_t *pos, at_error_t *err)
{
    const at_ingest_t *in = bp->c.in;
    const char *s = bp->p.src;
    size_t len = bp->p.len, a = *pos, after;
    while (a < len && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r'))
        a++;
    if (a == len || s[a] == '\n') { /* a blank line, not counted */
        *pos = a == len ? len : a + 1;
        return true;
    }
    if (!in->scan || s[a] != '{')
        return false;
    if (bp->nevents >= in->max_batch_events) {
        bp->rc = at_batch__too_many(bp, err);
        *pos = len;
        return false;
    }
    size_t max = (size_t)in->max_event_bytes, end = len - a > max ? a + max : len;
    if (!at_ingest__scan(&bp->c, bp->nevents, s, a, end, len, AT_SCAN_LINE, &after))
        return false;
    bp->nevents++;
    *pos = after == len ? len : after + 1;
    return true;
}

/* A body in the NDJSON form, from p->pos. Blank lines are skipped and do
 * not count as events. */
static int at_batch__ndjson(at_bparse_t *bp, at_error_t *err)
{
    at_jparse_t *p = &bp->p;
    const char *s = p->src;
    size_t pos = p->pos, len = p->len;
    while (pos < len) {
        if (at_batch__line_scan(bp, &pos, err))
            continue;
        if (bp->rc < 0)
            return bp->rc;
        const char *nl = memchr(s + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - s) : len;
        size_t a = pos, z = end;
        while (a < z && at_batch__ws(s[a]))
            a++;
        while (z > a && at_batch__ws(s[z - 1]))
            z--;
        pos = nl ? end + 1 : len;
        if (a == z)
            continue;
        if (bp->nevents >= bp->c.in->max_batch_events)
            return at_batch__too_many(bp, err);
        at_batch__line(bp, a, z);
    }
    p->pos = len;
    return 0;
}

/* text/plain: NDJSON when the first non-blank line is a whole JSON value
 * and another non-blank line follows; JSON otherwise. */
static bool at_batch__sniff_ndjson(at_bparse_t *bp)
{
    at_jparse_t *p = &bp->p;
    const char *s = p->src;
    size_t a = p->pos;
    while (a < p->len && at_batch__ws(s[a]))
        a++;
    const char *nl = a < p->len ? memchr(s + a, '\n', p->len - a) : NULL;
    if (!nl)
        return false;
    size_t eol = (size_t)(nl - s), rest = eol;
    while (rest < p->len && at_batch__ws(s[rest]))
        rest++;
    if (rest == p->len)
        return false;
    at_jparse_t probe = *p;
    probe.len = eol;
    probe.pos = a;
    probe.build = false;
    at_json_t *v;
    if (at_json_value(&probe, &v) < 0)
        return false;
    at_json_ws(&probe);
    return probe.pos == eol;
}

static void at_batch__setup(at_bparse_t *bp, at_ingest_t *in, const char *body, size_t len,
                            int64_t recv_ms, int partitions, at_batch_t *b)
{
    memset(bp, 0, sizeof *bp);
    bp->c.in = in;
    bp->c.b = b;
    bp->c.recv_ms = recv_ms;
    bp->c.partitions = partitions;
    bp->c.day = -1;
    bp->c.parse_day = -1;
    bp->c.dec_hi = -1;
    bp->c.recv_text_len = (size_t)snprintf(bp->c.recv_text, sizeof bp->c.recv_text,
                                           ",\"received_at\":%lld", (long long)recv_ms);
    at_arena_init(&bp->top, 16 << 10);
    at_arena_init(&bp->ev, 64 << 10);
    bp->c.scratch = &bp->ev;
    at_buf_init(&bp->c.out, 0);
    at_json_init(&bp->p, body, len, &bp->ev, in->max_depth + AT_BATCH_DEPTH_SLACK);
    if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0)
        bp->p.pos = 3; /* a UTF-8 byte order mark */
}

/* See at_ingest.h. Thread: any; takes the schema registry's read lock for
 * the whole call. */
int at_ingest_parse(at_ingest_t *in, const char *body, size_t len, at_body_kind_t kind,
                    int64_t recv_ms, int partitions, at_batch_t *b, at_error_t *err)
{
    AT_ASSERT(partitions > 0);
    if (len >= UINT32_MAX)
        return at_error_set(err, AT_ETOOBIG, "body_too_large", NULL, "the body is too large");
    at_bparse_t bp;
    at_batch__setup(&bp, in, body, len, recv_ms, partitions, b);
    AT_ASSERT(pthread_rwlock_rdlock(&in->reg.lock) == 0);
    int rc;
    if (kind == AT_BODY_NDJSON || (kind == AT_BODY_TEXT && at_batch__sniff_ndjson(&bp)))
        rc = at_batch__ndjson(&bp, err);
    else
        rc = at_batch__json(&bp, err);
    AT_ASSERT(pthread_rwlock_unlock(&in->reg.lock) == 0);
    at_buf_deinit(&bp.c.out);
    at_arena_deinit(&bp.top);
    at_arena_deinit(&bp.ev);
    return rc;
}
