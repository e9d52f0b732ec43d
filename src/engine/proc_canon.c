/* proc_canon.c - reading what an event's view needs straight from the
 * canonical JSON of the event (docs/events.md "The canonical event"),
 * without building a tree: the top-level members are found in one pass
 * over the text, context and properties only as far as the view reads.
 *
 * Every record value processing sees was written by ingestion in that
 * form: compact, valid UTF-8 JSON without repeated keys, `event_id`
 * first. So the reader checks the shape (compact, well nested, strings
 * without control characters), not what the tree parser checks once more
 * for any JSON (escapes, UTF-8, number syntax). What it hands out it does
 * check: a string it returns has no escape and no byte past ASCII, a number
 * has JSON's syntax. Anything else (another shape, an escape or non-ASCII
 * byte in a string it would return, more members than it keeps) and it
 * declines, and the view is taken from the tree as before: on a canonical
 * event both give the same view, byte for byte.
 *
 * THREAD SAFETY: the partition's thread.
 */
#include "proc_int.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define AT_CANON_MEMBERS 32 /* members of the top level, context, properties read */
#define AT_CANON_DEPTH 32   /* nesting below a top-level member read here; the tree's limit is 64 */

/* A value in the text: [s, e), s at its first byte. */
typedef struct at_cspan {
    const char *s, *e;
} at_cspan_t;

/* The end of the string at p ('"'), past its closing quote, or NULL when it
 * does not end or holds a control character. *plain: no escape and ASCII
 * only. */
static const char *at_canon__str(const char *p, const char *end, bool *plain)
{
    bool ok = true;
    p++;
    for (;;) {
#ifdef __SSE2__
        /* 16 bytes at once: the first that is '"', '\\', < 0x20 or >= 0x80
         * (the last two are below ' ' as signed bytes) */
        const __m128i quote = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'),
                      space = _mm_set1_epi8(' ');
        while (end - p >= 16) {
            __m128i w = _mm_loadu_si128((const __m128i *)(const void *)p);
            unsigned m = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, bs)),
                             _mm_cmplt_epi8(w, space)));
            if (m) {
                p += __builtin_ctz(m);
                goto found;
            }
            p += 16;
        }
#endif
        for (;; p++) {
            if (p >= end)
                return NULL;
            uint8_t c = (uint8_t)*p;
            if (c == '"' || c == '\\' || c < ' ' || c >= 0x80)
                break;
        }
#ifdef __SSE2__
    found:
#endif
        if (*p == '"') {
            *plain = ok;
            return p + 1;
        }
        ok = false;
        if (*p == '\\') {
            if (end - p < 2)
                return NULL;
            p += 2;
        } else if ((uint8_t)*p >= 0x80) {
            p++;
        } else {
            return NULL; /* a control character */
        }
    }
}

/* The end of the value at p, or NULL. */
static const char *at_canon__skip(const char *p, const char *end)
{
    bool plain;
    if (p >= end)
        return NULL;
    switch (*p) {
    case '"':
        return at_canon__str(p, end, &plain);
    case '{':
    case '[': {
        /* nesting only: what is inside is read (and checked) when needed */
        int depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') {
                if (!(p = at_canon__str(p, end, &plain)))
                    return NULL;
                continue;
            }
            if (c == '{' || c == '[') {
                if (++depth > AT_CANON_DEPTH)
                    return NULL; /* the tree says how deep is too deep */
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return p + 1;
            } else if ((uint8_t)c <= ' ') {
                return NULL; /* not compact */
            }
            p++;
        }
        return NULL;
    }
    default: {
        const char *s = p;
        while (p < end && *p != ',' && *p != '}' && *p != ']') {
            if ((uint8_t)*p <= ' ')
                return NULL;
            p++;
        }
        return p > s ? p : NULL;
    }
    }
}

/* Steps over member `"key":` at *pp: *key (without quotes) and the value
 * span. Returns false when the shape is not canonical or a key has an
 * escape or non-ASCII byte. */
static bool at_canon__member(const char **pp, const char *end, at_cspan_t *key, at_cspan_t *val)
{
    const char *p = *pp;
    bool plain;
    if (p >= end || *p != '"')
        return false;
    const char *k = at_canon__str(p, end, &plain);
    if (!k || !plain || k >= end || *k != ':')
        return false;
    key->s = p + 1;
    key->e = k - 1;
    val->s = k + 1;
    if (!(val->e = at_canon__skip(val->s, end)))
        return false;
    *pp = val->e;
    return true;
}

/* The member `name` of object o: 1 found (*out), 0 not there, -1 declined. */
static int at_canon__get(at_cspan_t o, const char *name, size_t n, at_cspan_t *out)
{
    const char *p = o.s + 1, *end = o.e - 1; /* inside the braces */
    if (p == end)
        return 0;
    for (;;) {
        at_cspan_t k, v;
        if (!at_canon__member(&p, end, &k, &v))
            return -1;
        if ((size_t)(k.e - k.s) == n && memcmp(k.s, name, n) == 0) {
            *out = v;
            return 1;
        }
        if (p == end)
            return 0;
        if (*p++ != ',')
            return -1;
    }
}

/* Element i of array a: 1 found, 0 not there, -1 declined. */
static int at_canon__at(at_cspan_t a, int64_t i, at_cspan_t *out)
{
    const char *p = a.s + 1, *end = a.e - 1;
    if (p == end)
        return 0;
    if (i < 0)
        i = 0; /* as at_proc__walk counts */
    for (int64_t k = 0;; k++) {
        const char *e = at_canon__skip(p, end);
        if (!e)
            return -1;
        if (k == i) {
            *out = (at_cspan_t){p, e};
            return 1;
        }
        if (e == end)
            return 0;
        if (*e != ',')
            return -1;
        p = e + 1;
    }
}

/* Whether [s, e) is a JSON number. */
static bool at_canon__number(const char *s, const char *e)
{
    if (s < e && *s == '-')
        s++;
    if (s < e && *s == '0')
        s++;
    else if (s < e && *s >= '1' && *s <= '9')
        while (s < e && *s >= '0' && *s <= '9')
            s++;
    else
        return false;
    if (s < e && *s == '.') {
        if (++s >= e || *s < '0' || *s > '9')
            return false;
        while (s < e && *s >= '0' && *s <= '9')
            s++;
    }
    if (s < e && (*s == 'e' || *s == 'E')) {
        if (++s < e && (*s == '+' || *s == '-'))
            s++;
        if (s >= e || *s < '0' || *s > '9')
            return false;
        while (s < e && *s >= '0' && *s <= '9')
            s++;
    }
    return s == e;
}

static bool at_canon__word(at_cspan_t v, const char *w, size_t n)
{
    return (size_t)(v.e - v.s) == n && memcmp(v.s, w, n) == 0;
}

/* What the tree's node for v gives a rule (at_proc__jval): false declines.
 * known: v was read as a plain string already (not scanned again). */
static bool at_canon__val(at_cspan_t v, bool known, at_val_t *out)
{
    bool plain;
    switch (*v.s) {
    case '"':
        if (!known && (!at_canon__str(v.s, v.e, &plain) || !plain))
            return false;
        *out = at_val_str(v.s + 1, (size_t)(v.e - v.s - 2));
        return true;
    case '{':
    case '[':
        *out = at_val_json(v.s, (size_t)(v.e - v.s));
        return true;
    case 't':
        if (!at_canon__word(v, "true", 4))
            return false;
        *out = at_val_bool(true);
        return true;
    case 'f':
        if (!at_canon__word(v, "false", 5))
            return false;
        *out = at_val_bool(false);
        return true;
    case 'n':
        if (!at_canon__word(v, "null", 4))
            return false;
        out->type = AT_VAL_NULL;
        return true;
    default: {
        if (!at_canon__number(v.s, v.e))
            return false;
        at_json_t node = {.type = AT_JSON_NUMBER, .s = v.s, .len = (uint32_t)(v.e - v.s)};
        *out = at_val_num(at_json_number(&node));
        return true;
    }
    }
}

/* An object read member by member: the first AT_CANON_MEMBERS kept. */
typedef struct at_cobj {
    at_cspan_t span; /* s NULL: not read */
    uint32_t n;
    uint32_t plain; /* bit i: val[i] is a string without escapes, ASCII only */
    at_cspan_t key[AT_CANON_MEMBERS], val[AT_CANON_MEMBERS];
} at_cobj_t;

/* Reads the object at p into o; members named context and properties
 * whose value is an object go into ctx and props (when not NULL: the top
 * level). Returns its end, or NULL to decline. */
static const char *at_canon__object(const char *p, const char *end, at_cobj_t *o, at_cobj_t *ctx,
                                    at_cobj_t *props)
{
    const char *s = p;
    bool plain;
    o->n = 0;
    o->plain = 0;
    if (++p >= end)
        return NULL;
    if (*p == '}') {
        o->span = (at_cspan_t){s, p + 1};
        return p + 1;
    }
    for (;;) {
        if (o->n == AT_CANON_MEMBERS || *p != '"')
            return NULL;
        const char *k = at_canon__str(p, end, &plain);
        if (!k || !plain || k >= end || *k != ':')
            return NULL;
        at_cspan_t key = {p + 1, k - 1}, val = {k + 1, NULL};
        at_cobj_t *sub = NULL;
        if (ctx && val.s < end && *val.s == '{') {
            size_t kn = (size_t)(key.e - key.s);
            if (kn == 7 && memcmp(key.s, "context", 7) == 0 && !ctx->span.s)
                sub = ctx;
            else if (kn == 10 && memcmp(key.s, "properties", 10) == 0 && !props->span.s)
                sub = props;
        }
        bool vplain = false;
        if (sub)
            val.e = at_canon__object(val.s, end, sub, NULL, NULL);
        else if (val.s < end && *val.s == '"')
            val.e = at_canon__str(val.s, end, &vplain); /* kept: not scanned again */
        else
            val.e = at_canon__skip(val.s, end);
        if (!val.e)
            return NULL;
        o->plain |= (uint32_t)vplain << o->n;
        o->key[o->n] = key;
        o->val[o->n++] = val;
        p = val.e;
        if (p >= end)
            return NULL;
        if (*p == '}') {
            o->span = (at_cspan_t){s, p + 1};
            return p + 1;
        }
        if (*p++ != ',')
            return NULL;
    }
}

/* The first member `name` of o: 1 found, 0 not there. *plain (may be
 * NULL): whether the value is a string the reader may return. */
static int at_canon__find(const at_cobj_t *o, const char *name, size_t n, at_cspan_t *out,
                          bool *plain)
{
    for (uint32_t i = 0; i < o->n; i++) {
        if ((size_t)(o->key[i].e - o->key[i].s) == n && memcmp(o->key[i].s, name, n) == 0) {
            *out = o->val[i];
            if (plain)
                *plain = (o->plain >> i) & 1;
            return 1;
        }
    }
    return 0;
}

/* The event read: its members, and those of context and properties. */
typedef struct at_cevent {
    at_cobj_t top, ctx, props;
} at_cevent_t;

/* The object at v (at a member of the top level or below) as read, or NULL. */
static const at_cobj_t *at_canon__read_of(const at_cevent_t *ce, at_cspan_t v)
{
    if (v.s == ce->ctx.span.s)
        return &ce->ctx;
    if (v.s == ce->props.span.s)
        return &ce->props;
    return NULL;
}

/* The string member `name` of object o (read, or only its span) into *dst
 * (left alone when it is missing or not a string): false declines. */
static bool at_canon__str_of(const at_cobj_t *read, at_cspan_t o, const char *name, size_t n,
                             at_pstr_t *dst)
{
    at_cspan_t v;
    bool plain = false;
    int rc = read ? at_canon__find(read, name, n, &v, &plain) : at_canon__get(o, name, n, &v);
    if (rc < 0)
        return false;
    if (rc == 0 || *v.s != '"')
        return true;
    if ((!read && !at_canon__str(v.s, v.e, &plain)) || !plain)
        return false;
    *dst = (at_pstr_t){v.s + 1, (size_t)(v.e - v.s - 2)};
    return true;
}

/* properties.items[] as at_proc__pevent reads them. */
static bool at_canon__items(at_proc_t *pr, at_cspan_t items, at_pevent_t *ev)
{
    const char *p = items.s + 1, *end = items.e - 1;
    if (p == end)
        return true; /* empty: no items */
    at_pitem_t *out = at_arena_alloc(&pr->arena, 64 * sizeof *out);
    size_t k = 0;
    while (k < 64) {
        const char *e = at_canon__skip(p, end);
        if (!e)
            return false;
        if (*p == '{') {
            at_cspan_t it = {p, e};
            at_pitem_t x = {{NULL, 0}, {NULL, 0}};
            if (!at_canon__str_of(NULL, it, "item_id", 7, &x.item))
                return false;
            if (!x.item.n && !at_canon__str_of(NULL, it, "product_id", 10, &x.item))
                return false;
            if (!at_canon__str_of(NULL, it, "category", 8, &x.category))
                return false;
            if (x.item.n || x.category.n)
                out[k++] = x;
        }
        if (e == end)
            break;
        if (*e != ',')
            return false;
        p = e + 1;
    }
    ev->items = out;
    ev->nitems = k;
    return true;
}

/* The value at path f from the root: 1 found, 0 not there, -1 declined.
 * *plain: the value is a string the reader read as plain. */
static int at_canon__walk(const at_cevent_t *ce, const at_fpath_t *f, at_cspan_t *out, bool *plain)
{
    at_cspan_t v = ce->top.span;
    const at_cobj_t *read = &ce->top;
    *plain = false;
    for (int i = 0; i < f->nsteps; i++) {
        int rc; /* a step before the last finds an object or array: *plain stays false */
        if (f->steps[i].s) {
            if (*v.s != '{')
                return 0;
            rc = read ? at_canon__find(read, f->steps[i].s, f->steps[i].len, &v, plain)
                      : at_canon__get(v, f->steps[i].s, f->steps[i].len, &v);
            read = read == &ce->top && rc > 0 ? at_canon__read_of(ce, v) : NULL;
        } else {
            if (*v.s != '[')
                return 0;
            rc = at_canon__at(v, f->steps[i].index, &v);
            read = NULL;
        }
        if (rc <= 0)
            return rc;
    }
    *out = v;
    return 1;
}

bool at_proc__canon(at_proc_t *pr, const char *json, size_t len, int64_t ts, at_pevent_t *ev,
                    at_val_t *slot)
{
    static const char head[] = "{\"event_id\":\"";
    if (len < sizeof head || memcmp(json, head, sizeof head - 1) != 0)
        return false;
    at_cevent_t ce;
    ce.ctx.span.s = ce.props.span.s = NULL;
    ce.ctx.n = ce.props.n = 0;
    if (at_canon__object(json, json + len, &ce.top, &ce.ctx, &ce.props) != json + len)
        return false;
    memset(ev, 0, sizeof *ev);
    ev->ts = ts;
    if (!at_canon__str_of(&ce.top, ce.top.span, "type", 4, &ev->type) ||
        !at_canon__str_of(&ce.top, ce.top.span, "item_id", 7, &ev->item) ||
        !at_canon__str_of(&ce.top, ce.top.span, "category", 8, &ev->category))
        return false;
    at_cspan_t v;
    if (at_canon__find(&ce.top, "context", 7, &v, NULL) && *v.s == '{' &&
        !at_canon__str_of(at_canon__read_of(&ce, v), v, "timezone", 8, &ev->tz))
        return false;
    if (at_canon__find(&ce.top, "properties", 10, &v, NULL) && *v.s == '{') {
        const at_cobj_t *props = at_canon__read_of(&ce, v);
        ev->traits = (at_pstr_t){v.s, (size_t)(v.e - v.s)};
        at_cspan_t items;
        int rc = props ? at_canon__find(props, "items", 5, &items, NULL)
                       : at_canon__get(v, "items", 5, &items);
        if (rc < 0 || (rc > 0 && *items.s == '[' && !at_canon__items(pr, items, ev)))
            return false;
    }
    for (size_t i = 0; i < pr->nfp; i++) {
        slot[i] = at_val_missing();
        if (pr->fp[i].kind != AT_FP_EVENT)
            continue;
        bool plain;
        int rc = at_canon__walk(&ce, &pr->fp[i], &v, &plain);
        if (rc < 0 || (rc > 0 && !at_canon__val(v, plain, &slot[i])))
            return false;
    }
    return true;
}
