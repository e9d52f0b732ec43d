/* schema_compat.c - is a new schema version backward compatible with the
 * previous one? It must accept every event the previous one accepted. The
 * rules (docs/events.md, "Schema versions") are checked property by
 * property; the first one broken is reported with the property's path.
 *
 * One deliberate exception: a new optional property may be added to an
 * object that allowed additional properties, although an old event could
 * have carried that name with another shape. It is how schemas grow, and
 * refusing it would freeze every open object forever.
 */
#include "ingest_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct at_compat {
    char path[256];
    size_t n;
    int oldv, newv;
    at_error_t *err;
} at_compat_t;

__attribute__((format(printf, 2, 3))) static int at_compat__fail(at_compat_t *c, const char *fmt,
                                                                 ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap); /* cut like at_error_t's message */
    va_end(ap);
    return at_error_set(c->err, AT_ECONFLICT, "incompatible_schema", c->path,
                        "%s: %s; version %d must accept every event version %d accepted", c->path,
                        msg, c->newv, c->oldv);
}

static size_t at_compat__push(at_compat_t *c, const char *sep, const char *name, size_t len)
{
    size_t old = c->n;
    int w = snprintf(c->path + c->n, sizeof c->path - c->n, "%s%.*s", sep, (int)len, name);
    if (w > 0)
        c->n = AT_MIN(c->n + (size_t)w, sizeof c->path - 1);
    return old;
}

static void at_compat__pop(at_compat_t *c, size_t old)
{
    c->n = old;
    c->path[old] = '\0';
}

/* Does the type set neu accept every value the type set old accepts? */
static bool at_compat__covers(unsigned neu, unsigned old)
{
    if (!neu)
        return true;
    if (!old)
        return false;
    if (neu & AT_ST_NUMBER)
        old &= ~(unsigned)AT_ST_INTEGER;
    return (old & ~neu) == 0;
}

static int at_compat__types(at_compat_t *c, const at_schema_node_t *o, const at_schema_node_t *n)
{
    if (at_compat__covers(n->types, o->types))
        return 0;
    char a[96], b[96];
    at_ingest__types_text(n->types, b, sizeof b);
    if (!o->types)
        return at_compat__fail(c, "type %s added", b);
    at_ingest__types_text(o->types, a, sizeof a);
    return at_compat__fail(c, "type changed from %s to %s", a, b);
}

static bool at_compat__in_enum(const at_schema_node_t *n, const at_json_t *v)
{
    for (size_t i = 0; i < n->nenums; i++)
        if (at_json_equal(n->enums[i], v))
            return true;
    return false;
}

static int at_compat__enum(at_compat_t *c, const at_schema_node_t *o, const at_schema_node_t *n)
{
    if (!n->enums)
        return 0;
    if (!o->enums)
        return at_compat__fail(c, "enum added");
    for (size_t i = 0; i < o->nenums; i++) {
        if (at_compat__in_enum(n, o->enums[i]))
            continue;
        at_buf_t b;
        at_buf_init(&b, 0);
        at_json_w_value(&b, o->enums[i]);
        int rc = at_compat__fail(c, "enum value %.60s removed", b.data);
        at_buf_deinit(&b);
        return rc;
    }
    return 0;
}

static int at_compat__bounds(at_compat_t *c, const at_schema_node_t *o, const at_schema_node_t *n)
{
    if (n->has_min && !o->has_min)
        return at_compat__fail(c, "minimum %.*s added", (int)n->min_json->len, n->min_json->s);
    if (n->has_min && n->min > o->min)
        return at_compat__fail(c, "minimum raised from %.*s to %.*s", (int)o->min_json->len,
                               o->min_json->s, (int)n->min_json->len, n->min_json->s);
    if (n->has_max && !o->has_max)
        return at_compat__fail(c, "maximum %.*s added", (int)n->max_json->len, n->max_json->s);
    if (n->has_max && n->max < o->max)
        return at_compat__fail(c, "maximum lowered from %.*s to %.*s", (int)o->max_json->len,
                               o->max_json->s, (int)n->max_json->len, n->max_json->s);
    if (n->max_length >= 0 && o->max_length < 0)
        return at_compat__fail(c, "maxLength %lld added", (long long)n->max_length);
    if (n->max_length >= 0 && n->max_length < o->max_length)
        return at_compat__fail(c, "maxLength lowered from %lld to %lld", (long long)o->max_length,
                               (long long)n->max_length);
    if (n->pattern && !o->pattern)
        return at_compat__fail(c, "pattern \"%.80s\" added", n->pattern);
    if (n->pattern && strcmp(n->pattern, o->pattern) != 0)
        return at_compat__fail(c, "pattern changed from \"%.60s\" to \"%.60s\"", o->pattern,
                               n->pattern);
    return 0;
}

static const at_schema_prop_t *at_compat__prop(const at_schema_node_t *n, const char *k,
                                               uint32_t len)
{
    for (size_t i = 0; i < n->nprops; i++)
        if (n->props[i].name_len == len && memcmp(n->props[i].name, k, len) == 0)
            return &n->props[i];
    return NULL;
}

static bool at_compat__required(const at_schema_node_t *n, const at_json_t *r)
{
    for (size_t i = 0; i < n->nrequired; i++)
        if (n->required[i]->len == r->len && memcmp(n->required[i]->s, r->s, r->len) == 0)
            return true;
    return false;
}

static int at_compat__node(at_compat_t *c, const at_schema_node_t *o, const at_schema_node_t *n);

static int at_compat__object(at_compat_t *c, const at_schema_node_t *o, const at_schema_node_t *n)
{
    int rc = 0;
    for (size_t i = 0; i < n->nrequired && rc == 0; i++) {
        const at_json_t *r = n->required[i];
        if (at_compat__required(o, r))
            continue;
        size_t old = at_compat__push(c, ".", r->s, r->len);
        rc = at_compat__fail(c, "required property added");
        at_compat__pop(c, old);
    }
    if (rc == 0 && o->additional && !n->additional)
        rc = at_compat__fail(c, "additionalProperties changed to false");
    for (size_t i = 0; i < o->nprops && rc == 0 && !n->additional; i++) {
        const at_schema_prop_t *op = &o->props[i];
        if (at_compat__prop(n, op->name, op->name_len))
            continue;
        size_t old = at_compat__push(c, ".", op->name, op->name_len);
        rc = at_compat__fail(c, "property removed while additionalProperties is false");
        at_compat__pop(c, old);
    }
    for (size_t i = 0; i < n->nprops && rc == 0; i++) {
        const at_schema_prop_t *np = &n->props[i];
        const at_schema_prop_t *op = at_compat__prop(o, np->name, np->name_len);
        if (!op)
            continue; /* new optional property: the documented exception */
        size_t old = at_compat__push(c, ".", np->name, np->name_len);
        rc = at_compat__node(c, op->node, np->node);
        at_compat__pop(c, old);
    }
    return rc;
}

static int at_compat__node(at_compat_t *c, const at_schema_node_t *o, const at_schema_node_t *n)
{
    int rc = at_compat__types(c, o, n);
    if (rc == 0)
        rc = at_compat__enum(c, o, n);
    if (rc == 0)
        rc = at_compat__bounds(c, o, n);
    if (rc == 0)
        rc = at_compat__object(c, o, n);
    if (rc == 0 && n->items) {
        if (!o->items)
            return at_compat__fail(c, "items schema added");
        size_t old = at_compat__push(c, "[]", "", 0);
        rc = at_compat__node(c, o->items, n->items);
        at_compat__pop(c, old);
    }
    return rc;
}

/* Returns 0 when neu accepts every event old accepts (by the rules of
 * docs/events.md), else AT_ECONFLICT with err: code "incompatible_schema",
 * field = the property path, message naming the rule. Thread: any. */
int at_ingest__schema_compat(const at_schema_t *old, const at_schema_t *neu, at_error_t *err)
{
    at_compat_t c = {.oldv = old->version, .newv = neu->version, .err = err};
    at_compat__push(&c, "", "properties", 10);
    return at_compat__node(&c, old->root, neu->root);
}
