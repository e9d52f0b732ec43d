/* event.c - one parsed event to one canonical event or one reject
 * (DESIGN.md §3, docs/events.md): field mapping, type and limit checks,
 * timestamps and clamping, the user key, the schema, and the canonical
 * JSON written with a fixed key order.
 */
#include "ingest_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_TS_MAX 253402300799999LL /* 9999-12-31T23:59:59.999Z */

#define AT_EV_MEMO 64 /* top-level members whose name lookup is remembered */

/* The event being turned into canonical form. */
typedef struct at_ev {
    const at_json_t *top[AT_INGEST_MAX_TOP]; /* members by top-level name */
    int8_t memo[AT_EV_MEMO];                 /* k-th member's name index, -1: unknown */
    const at_json_t *f[AT_F_NFIELDS];        /* resolved canonical fields */
    const char *from[AT_F_NFIELDS];          /* the source path each came from */
    const at_json_t *props;                  /* properties (or traits) */
    bool traits_used;
    int64_t ts;
    bool clamped;
    char id[AT_ID_LEN + 1];
} at_ev_t;

/* Fills e for a problem at path fr: "PATH: message". */
__attribute__((format(printf, 3, 4))) static int at_event__fail(at_error_t *e, const at_jpath_t *fr,
                                                                const char *fmt, ...)
{
    char path[128], msg[200];
    at_json_path(fr, path, sizeof path);
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap); /* cut like at_error_t's message */
    va_end(ap);
    return at_error_set(e, AT_EINVALID, "invalid_event", path, "%s: %s", path, msg);
}

/* The first member of obj whose name repeats an earlier one, or NULL. */
static const at_json_t *at_event__dup_key(at_arena_t *scratch, const at_json_t *obj)
{
    if (obj->len < 2)
        return NULL;
    if (obj->len <= 12) {
        for (const at_json_t *a = obj->child->next; a; a = a->next)
            for (const at_json_t *b = obj->child; b != a; b = b->next)
                if (a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0)
                    return a;
        return NULL;
    }
    size_t n = 32;
    while (n < (size_t)obj->len * 2)
        n *= 2;
    const at_json_t **tab = at_arena_alloc(scratch, n * sizeof(const at_json_t *));
    memset(tab, 0, n * sizeof(const at_json_t *));
    for (const at_json_t *a = obj->child; a; a = a->next) {
        size_t h = (size_t)at_hash64(a->key, a->key_len) & (n - 1);
        for (; tab[h]; h = (h + 1) & (n - 1))
            if (tab[h]->key_len == a->key_len && memcmp(tab[h]->key, a->key, a->key_len) == 0)
                return a;
        tab[h] = a;
    }
    return NULL;
}

static int at_event__copy(at_evctx_t *c, const at_json_t *v, const at_jpath_t *fr, int depth,
                          at_error_t *e);

static int at_event__copy_members(at_evctx_t *c, const at_json_t *v, const at_jpath_t *fr,
                                  int depth, at_error_t *e)
{
    bool obj = v->type == AT_JSON_OBJECT;
    const at_json_t *dup = obj ? at_event__dup_key(c->scratch, v) : NULL;
    if (dup) {
        at_jpath_t df = {fr, dup->key, dup->key_len, -1};
        return at_event__fail(e, &df, "duplicate key");
    }
    at_json_w_raw(&c->out, obj ? "{" : "[", 1);
    long i = 0;
    for (const at_json_t *m = v->child; m; m = m->next, i++) {
        at_jpath_t mf = {fr, obj ? m->key : NULL, m->key_len, i};
        if (m != v->child)
            at_json_w_raw(&c->out, ",", 1);
        if (obj) {
            if (m->key_len > (uint32_t)c->in->max_field_length)
                return at_event__fail(e, &mf, "key longer than %d bytes", c->in->max_field_length);
            at_json_w_str(&c->out, m->key, m->key_len, m->flags & AT_JSON_F_KEY_ESC);
            at_json_w_raw(&c->out, ":", 1);
        }
        int rc = at_event__copy(c, m, &mf, depth + 1, e);
        if (rc < 0)
            return rc;
    }
    at_json_w_raw(&c->out, obj ? "}" : "]", 1);
    return 0;
}

/* Writes v (at nesting depth, the event being 1) to c->out, checking the
 * depth, string lengths and duplicate keys. */
static int at_event__copy(at_evctx_t *c, const at_json_t *v, const at_jpath_t *fr, int depth,
                          at_error_t *e)
{
    if (v->type == AT_JSON_STRING) {
        if (v->len > (uint32_t)c->in->max_field_length)
            return at_event__fail(e, fr, "longer than %d bytes", c->in->max_field_length);
        at_json_w_str(&c->out, v->s, v->len, v->flags & AT_JSON_F_ESC);
        return 0;
    }
    if (v->type != AT_JSON_OBJECT && v->type != AT_JSON_ARRAY) {
        at_json_w_value(&c->out, v);
        return 0;
    }
    if (depth > c->in->max_depth)
        return at_event__fail(e, fr, "nested deeper than %d levels", c->in->max_depth);
    return at_event__copy_members(c, v, fr, depth, e);
}

/* Files the event's top-level members by name; refuses repeated names. */
static int at_event__scan(at_evctx_t *c, const at_json_t *v, at_ev_t *ev, at_error_t *e)
{
    const at_json_t *dup = at_event__dup_key(c->scratch, v);
    if (dup) {
        at_jpath_t df = {NULL, dup->key, dup->key_len, -1};
        return at_event__fail(e, &df, "duplicate field");
    }
    size_t k = 0;
    for (const at_json_t *m = v->child; m; m = m->next, k++) {
        int i = at_ingest__top_find(c->in, m->key, m->key_len);
        if (k < AT_EV_MEMO)
            ev->memo[k] = (int8_t)i;
        if (i >= 0)
            ev->top[i] = m;
    }
    return 0;
}

static bool at_event__is(const at_json_t *v, const char *s)
{
    size_t n = strlen(s);
    return v->type == AT_JSON_STRING && v->len == n && memcmp(v->s, s, n) == 0;
}

/* The value of source s in the event, or NULL (null and "" count as absent). */
static const at_json_t *at_event__lookup(const at_ev_t *ev, const at_source_t *s)
{
    const at_json_t *x = ev->top[s->top];
    for (size_t k = 1; x && k < s->nsegs; k++)
        x = at_json_get(x, s->segs[k], s->seg_lens[k]);
    if (!x || x->type == AT_JSON_NULL || (x->type == AT_JSON_STRING && x->len == 0))
        return NULL;
    return x;
}

/* Picks each canonical field from its first present source. Segment's
 * "type":"track" (the call, not the event) yields to "event". */
static void at_event__resolve(const at_ingest_t *in, at_ev_t *ev)
{
    for (int f = 0; f < AT_F_NFIELDS; f++) {
        const at_json_t *track = NULL;
        for (size_t i = 0; i < in->nsources[f] && !ev->f[f]; i++) {
            const at_source_t *s = &in->sources[f][i];
            const at_json_t *x = at_event__lookup(ev, s);
            if (!x)
                continue;
            if (f == AT_F_TYPE && at_event__is(x, "track") && strcmp(s->text, "type") == 0) {
                track = x;
                continue;
            }
            ev->f[f] = x;
            ev->from[f] = s->text;
        }
        if (!ev->f[f] && track) {
            ev->f[f] = track;
            ev->from[f] = "type";
        }
    }
}

static int at_event__bad_field(at_error_t *e, const char *from, const char *what)
{
    return at_error_set(e, AT_EINVALID, "invalid_event", from, "%s %s", from, what);
}

/* Checks the type and length of a canonical string field. */
static int at_event__check_str(const at_evctx_t *c, const at_ev_t *ev, int f, at_error_t *e)
{
    const at_json_t *x = ev->f[f];
    if (!x)
        return 0;
    bool num_ok = f == AT_F_USER_ID || f == AT_F_ITEM_ID;
    bool is_int = x->type == AT_JSON_NUMBER && (x->flags & AT_JSON_F_INT);
    if (x->type != AT_JSON_STRING && !(num_ok && is_int))
        return at_event__bad_field(e, ev->from[f],
                                   num_ok ? "must be a string or an integer" : "must be a string");
    if (x->len > (uint32_t)c->in->max_field_length)
        return at_error_set(e, AT_EINVALID, "invalid_event", ev->from[f],
                            "%s is %u bytes; the limit is %d", ev->from[f], x->len,
                            c->in->max_field_length);
    if (x->flags & AT_JSON_F_ESC)
        for (uint32_t i = 0; i < x->len; i++)
            if ((uint8_t)x->s[i] < 0x20)
                return at_event__bad_field(e, ev->from[f], "contains a control character");
    return 0;
}

/* Parses a timestamp value: RFC 3339 string or epoch-ms integer. */
static int at_event__time(const at_json_t *x, int64_t *ms)
{
    int rc = AT_EINVALID;
    if (x->type == AT_JSON_STRING)
        rc = at_time_parse_rfc3339(x->s, x->len, ms);
    else if (x->type == AT_JSON_NUMBER)
        rc = at_json_i64(x, ms);
    if (rc == 0 && (*ms < 0 || *ms > AT_TS_MAX))
        rc = AT_EINVALID;
    return rc < 0 ? AT_EINVALID : 0;
}

/* Event time: given, corrected for the sender's clock skew by sentAt, or
 * the receive time; clamped when too far in the future. */
static int at_event__timestamp(const at_evctx_t *c, at_ev_t *ev, at_error_t *e)
{
    ev->ts = c->recv_ms;
    const at_json_t *x = ev->f[AT_F_TIMESTAMP];
    if (!x)
        return 0;
    if (at_event__time(x, &ev->ts) < 0)
        return at_error_set(e, AT_EINVALID, "invalid_event", ev->from[AT_F_TIMESTAMP],
                            "%s must be an RFC 3339 date-time (\"2026-04-27T14:35:00Z\") or "
                            "epoch milliseconds",
                            ev->from[AT_F_TIMESTAMP]);
    const at_json_t *sent = ev->top[c->in->ix_sent_at];
    if (sent && sent->type != AT_JSON_NULL) {
        int64_t sent_ms;
        if (at_event__time(sent, &sent_ms) < 0)
            return at_error_set(e, AT_EINVALID, "invalid_event", "sentAt",
                                "sentAt must be an RFC 3339 date-time or epoch milliseconds");
        ev->ts = AT_MAX(ev->ts + (c->recv_ms - sent_ms), 0);
    }
    if (ev->ts > c->recv_ms + c->in->max_future_ms) {
        ev->ts = c->recv_ms;
        ev->clamped = true;
    }
    return 0;
}

/* Checks that the member (when present) is an object or null. */
static int at_event__object_member(const at_json_t *m, at_error_t *e)
{
    if (!m || m->type == AT_JSON_OBJECT || m->type == AT_JSON_NULL)
        return 0;
    at_jpath_t fr = {NULL, m->key, m->key_len, -1};
    return at_event__fail(e, &fr, "must be an object");
}

/* Resolves and checks everything but nested values. */
static int at_event__fields(at_evctx_t *c, at_ev_t *ev, at_error_t *e)
{
    at_event__resolve(c->in, ev);
    if (!ev->f[AT_F_TYPE])
        return at_error_set(e, AT_EINVALID, "invalid_event", "type", "missing type");
    if (!ev->f[AT_F_USER_ID] && !ev->f[AT_F_ANONYMOUS_ID])
        return at_error_set(e, AT_EINVALID, "invalid_event", "user_id",
                            "user_id or anonymous_id is required");
    int rc = 0;
    for (int f = 0; f < AT_F_NFIELDS && rc == 0; f++)
        if (f != AT_F_TIMESTAMP)
            rc = at_event__check_str(c, ev, f, e);
    const at_ingest_t *in = c->in;
    if (rc == 0)
        rc = at_event__object_member(ev->top[in->ix_context], e);
    if (rc == 0)
        rc = at_event__object_member(ev->top[in->ix_properties], e);
    if (rc == 0)
        rc = at_event__object_member(ev->top[in->ix_traits], e);
    if (rc < 0)
        return rc;
    const at_json_t *p = ev->top[in->ix_properties];
    const at_json_t *tr = ev->top[in->ix_traits];
    if (p && p->type == AT_JSON_OBJECT) {
        ev->props = p;
    } else if (tr && tr->type == AT_JSON_OBJECT) {
        ev->props = tr; /* Segment's identify */
        ev->traits_used = true;
    }
    return at_event__timestamp(c, ev, e);
}

static void at_event__w_field(at_buf_t *o, const char *name, const at_json_t *x)
{
    at_json_w_raw(o, name, strlen(name));
    if (x->type == AT_JSON_NUMBER) {
        at_json_w_raw(o, "\"", 1);
        at_json_w_raw(o, x->s, x->len);
        at_json_w_raw(o, "\"", 1);
    } else {
        at_json_w_str(o, x->s, x->len, x->flags & AT_JSON_F_ESC);
    }
}

/* True when top-level member m, the k-th, goes under "extra". */
static bool at_event__is_extra(const at_evctx_t *c, const at_ev_t *ev, const at_json_t *m, size_t k)
{
    int i = k < AT_EV_MEMO ? ev->memo[k] : at_ingest__top_find(c->in, m->key, m->key_len);
    if (i < 0)
        return true;
    const at_topname_t *t = &c->in->top[i];
    if (t->kind == AT_TOP_TRAITS)
        return !ev->traits_used;
    return t->kind == AT_TOP_SOURCE && !t->consumed;
}

static int at_event__w_nested(at_evctx_t *c, const at_ev_t *ev, const at_json_t *v, at_error_t *e)
{
    at_buf_t *o = &c->out;
    const at_json_t *ctx = ev->top[c->in->ix_context];
    int rc = 0;
    if (ctx && ctx->type == AT_JSON_OBJECT) {
        at_jpath_t fr = {NULL, ctx->key, ctx->key_len, -1};
        at_json_w_raw(o, ",\"context\":", 11);
        if ((rc = at_event__copy(c, ctx, &fr, 2, e)) < 0)
            return rc;
    }
    if (ev->props) {
        at_jpath_t fr = {NULL, ev->props->key, ev->props->key_len, -1};
        at_json_w_raw(o, ",\"properties\":", 14);
        if ((rc = at_event__copy(c, ev->props, &fr, 2, e)) < 0)
            return rc;
    }
    bool first = true;
    size_t k = 0;
    for (const at_json_t *m = v->child; m; m = m->next, k++) {
        if (!at_event__is_extra(c, ev, m, k))
            continue;
        at_json_w_raw(o, first ? ",\"extra\":{" : ",", first ? 10 : 1);
        first = false;
        at_jpath_t fr = {NULL, m->key, m->key_len, -1};
        if (m->key_len > (uint32_t)c->in->max_field_length)
            return at_event__fail(e, &fr, "key longer than %d bytes", c->in->max_field_length);
        at_json_w_str(o, m->key, m->key_len, m->flags & AT_JSON_F_KEY_ESC);
        at_json_w_raw(o, ":", 1);
        if ((rc = at_event__copy(c, m, &fr, 2, e)) < 0) /* its level as sent */
            return rc;
    }
    if (!first)
        at_json_w_raw(o, "}", 1);
    return 0;
}

/* See ingest_int.h. The date is formatted once per day seen in the batch:
 * events of a batch mostly share one. */
void at_ingest__time_text(at_evctx_t *c, int64_t ms, char t[24])
{
    const int64_t day_ms = 86400000;
    int64_t day = ms / day_ms, rem = ms % day_ms;
    if (day != c->day) {
        char tmp[40];
        AT_ASSERT(at_time_format_rfc3339(day * day_ms, tmp) >= 10);
        memcpy(c->date, tmp, 10);
        c->day = day;
    }
    memcpy(t, c->date, 10);
    int v[4] = {(int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
                (int)(rem % 1000)};
    t[10] = 'T';
    t[11] = (char)('0' + v[0] / 10), t[12] = (char)('0' + v[0] % 10), t[13] = ':';
    t[14] = (char)('0' + v[1] / 10), t[15] = (char)('0' + v[1] % 10), t[16] = ':';
    t[17] = (char)('0' + v[2] / 10), t[18] = (char)('0' + v[2] % 10), t[19] = '.';
    t[20] = (char)('0' + v[3] / 100), t[21] = (char)('0' + v[3] / 10 % 10);
    t[22] = (char)('0' + v[3] % 10), t[23] = 'Z';
}

static void at_event__w_time(at_evctx_t *c, int64_t ms)
{
    char t[24];
    at_ingest__time_text(c, ms, t);
    at_json_w_raw(&c->out, t, sizeof t);
}

/* Writes the canonical event to c->out (docs/events.md). */
static int at_event__write(at_evctx_t *c, const at_ev_t *ev, const at_json_t *v, at_error_t *e)
{
    static const struct {
        int f;
        const char *name;
    } opt[] = {
        {AT_F_USER_ID, ",\"user_id\":"},       {AT_F_ANONYMOUS_ID, ",\"anonymous_id\":"},
        {AT_F_SESSION_ID, ",\"session_id\":"}, {AT_F_ITEM_ID, ",\"item_id\":"},
        {AT_F_CATEGORY, ",\"category\":"},
    };
    at_buf_t *o = &c->out;
    at_buf_reset(o);
    at_json_w_raw(o, "{\"event_id\":", 12);
    if (ev->f[AT_F_EVENT_ID])
        at_event__w_field(o, "", ev->f[AT_F_EVENT_ID]);
    else
        at_json_w_str(o, ev->id, AT_ID_LEN, false);
    at_event__w_field(o, ",\"type\":", ev->f[AT_F_TYPE]);
    for (size_t i = 0; i < AT_ARRAY_LEN(opt); i++)
        if (ev->f[opt[i].f])
            at_event__w_field(o, opt[i].name, ev->f[opt[i].f]);
    at_json_w_raw(o, ",\"timestamp\":\"", 14);
    at_event__w_time(c, ev->ts);
    at_json_w_raw(o, "\",\"ts\":", 7);
    at_json_w_i64(o, ev->ts);
    at_json_w_raw(o, c->recv_text, c->recv_text_len);
    if (ev->clamped)
        at_json_w_raw(o, ",\"clamped\":true", 15);
    int rc = at_event__w_nested(c, ev, v, e);
    if (rc == 0)
        at_json_w_raw(o, "}", 1);
    return rc;
}

static void *at_event__grow(at_arena_t *a, void *old, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return old;
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = at_arena_alloc(a, nc * size);
    if (n)
        memcpy(p, old, n * size);
    *cap = nc;
    return p;
}

/* Appends a reject (raw bytes and e copied into the batch). */
void at_ingest__reject(at_evctx_t *c, int index, const char *raw, size_t raw_len,
                       const at_error_t *e)
{
    at_batch_t *b = c->b;
    b->rejects =
        at_event__grow(&b->arena, b->rejects, b->nrejects, &c->rejects_cap, sizeof *b->rejects);
    at_reject_t *r = &b->rejects[b->nrejects++];
    r->index = index;
    r->error = *e;
    r->raw = at_arena_strndup(&b->arena, raw, raw_len);
    r->raw_len = (uint32_t)raw_len;
}

static char *at_event__key(at_arena_t *a, const at_ev_t *ev, uint32_t *len)
{
    bool user = ev->f[AT_F_USER_ID] != NULL;
    const at_json_t *x = ev->f[user ? AT_F_USER_ID : AT_F_ANONYMOUS_ID];
    AT_ASSERT(x != NULL); /* at_event__fields() refuses an event with neither */
    char *k = at_arena_alloc(a, x->len + 3);
    k[0] = user ? 'u' : 'a';
    k[1] = ':';
    memcpy(k + 2, x->s, x->len);
    k[x->len + 2] = '\0';
    *len = x->len + 2;
    return k;
}

/* See ingest_int.h. */
at_event_t *at_ingest__event_new(at_evctx_t *c)
{
    at_batch_t *b = c->b;
    b->events = at_event__grow(&b->arena, b->events, b->nevents, &c->events_cap, sizeof *b->events);
    at_event_t *o = &b->events[b->nevents++];
    memset(o, 0, sizeof *o);
    return o;
}

static void at_event__accept(at_evctx_t *c, int index, const at_ev_t *ev)
{
    at_batch_t *b = c->b;
    at_event_t *o = at_ingest__event_new(c);
    o->index = index;
    o->key = at_event__key(&b->arena, ev, &o->key_len);
    o->partition = at_partition_of(o->key, o->key_len, c->partitions);
    const at_json_t *id = ev->f[AT_F_EVENT_ID];
    o->id_assigned = id == NULL;
    o->event_id = id ? at_arena_strndup(&b->arena, id->s, id->len)
                     : at_arena_strndup(&b->arena, ev->id, AT_ID_LEN);
    o->event_id_len = id ? id->len : AT_ID_LEN;
    const at_json_t *t = ev->f[AT_F_TYPE];
    AT_ASSERT(t != NULL); /* at_event__fields() refuses an event without one */
    o->type = at_arena_strndup(&b->arena, t->s, t->len);
    o->clamped = ev->clamped;
    o->ts_ms = ev->ts;
    o->recv_ms = c->recv_ms;
    o->json = at_arena_strndup(&b->arena, c->out.data, c->out.len);
    o->json_len = (uint32_t)c->out.len;
    if (ev->clamped)
        b->nclamped++;
}

static const at_json_t at_event__empty = {.type = AT_JSON_OBJECT};

static int at_event__schema(at_evctx_t *c, const at_ev_t *ev, at_error_t *e)
{
    const at_json_t *t = ev->f[AT_F_TYPE];
    const at_schema_t *s = at_ingest__registry_find(&c->in->reg, t->s, t->len);
    if (!s)
        return 0;
    return at_ingest__schema_check(s, ev->props ? ev->props : &at_event__empty,
                                   ev->traits_used ? "traits" : "properties", e);
}

static void at_event__write_key(at_evctx_t *c, const at_ev_t *ev)
{
    const at_json_t *w = ev->top[c->in->ix_write_key];
    if (w && w->type == AT_JSON_STRING && !c->b->write_key)
        c->b->write_key = at_arena_strndup(&c->b->arena, w->s, w->len);
}

/* Turns the object v into ev and its canonical JSON in c->out. Returns 0,
 * or <0 with e filled. */
static int at_event__build(at_evctx_t *c, const at_json_t *v, at_ev_t *ev, at_error_t *e)
{
    int rc = at_event__scan(c, v, ev, e);
    if (rc < 0)
        return rc;
    at_event__write_key(c, ev);
    if ((rc = at_event__fields(c, ev, e)) < 0)
        return rc;
    if (!ev->f[AT_F_EVENT_ID])
        at_id_new(ev->id, c->recv_ms);
    if ((rc = at_event__write(c, ev, v, e)) < 0)
        return rc;
    return at_event__schema(c, ev, e);
}

/* See ingest_int.h. v is NULL when the event was too large to build. */
void at_ingest__event(at_evctx_t *c, int index, const at_json_t *v, const char *raw, size_t raw_len)
{
    at_error_t e;
    memset(&e, 0, sizeof e);
    at_ev_t ev;
    memset(&ev, 0, sizeof ev);
    int rc;
    if (!v || raw_len > (size_t)c->in->max_event_bytes)
        rc = at_error_set(&e, AT_ETOOBIG, "event_too_large", NULL,
                          "event is %zu bytes; the limit is %lld", raw_len,
                          (long long)c->in->max_event_bytes);
    else if (v->type != AT_JSON_OBJECT)
        rc = at_error_set(&e, AT_EINVALID, "invalid_event", NULL, "event must be a JSON object");
    else
        rc = at_event__build(c, v, &ev, &e);
    if (rc < 0)
        at_ingest__reject(c, index, raw, raw_len, &e);
    else
        at_event__accept(c, index, &ev);
}
