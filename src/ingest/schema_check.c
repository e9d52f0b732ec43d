/* schema_check.c - checking an event's properties against a compiled
 * schema. The first violation found is reported, with the property path
 * ("properties.items[2].sku") as the error's field.
 */
#include "ingest_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct at_check {
    const at_schema_t *s;
    at_error_t *err;
} at_check_t;

__attribute__((format(printf, 3, 4))) static int at_check__fail(at_check_t *c, const at_jpath_t *fr,
                                                                const char *fmt, ...)
{
    char path[128], msg[160];
    at_json_path(fr, path, sizeof path);
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap); /* cut like at_error_t's message */
    va_end(ap);
    return at_error_set(c->err, AT_EINVALID, "schema_violation", path, "%s: %s (schema %s v%d)",
                        path, msg, c->s->type ? c->s->type : "?", c->s->version);
}

/* The AT_ST_* bits a value satisfies. */
static unsigned at_check__bits(const at_json_t *v)
{
    switch (v->type) {
    case AT_JSON_OBJECT:
        return AT_ST_OBJECT;
    case AT_JSON_ARRAY:
        return AT_ST_ARRAY;
    case AT_JSON_STRING:
        return AT_ST_STRING;
    case AT_JSON_TRUE:
    case AT_JSON_FALSE:
        return AT_ST_BOOLEAN;
    case AT_JSON_NULL:
        return AT_ST_NULL;
    default:
        break;
    }
    if (v->flags & AT_JSON_F_INT)
        return AT_ST_NUMBER | AT_ST_INTEGER;
    double d = at_json_number(v);
    return isfinite(d) && d == floor(d) ? AT_ST_NUMBER | AT_ST_INTEGER : AT_ST_NUMBER;
}

/* Writes the names of the type bits as "string or number". */
void at_ingest__types_text(unsigned types, char *out, size_t n)
{
    static const char *const names[] = {"object",  "string", "number", "integer",
                                        "boolean", "array",  "null"};
    size_t o = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < AT_ARRAY_LEN(names); i++) {
        if (!(types & (1u << i)) || o >= n)
            continue;
        int w = snprintf(out + o, n - o, "%s%s", o ? " or " : "", names[i]);
        if (w > 0)
            o += (size_t)w;
    }
}

static int at_check__node(at_check_t *c, const at_schema_node_t *n, const at_json_t *v,
                          const at_jpath_t *fr);

static int at_check__string(at_check_t *c, const at_schema_node_t *n, const at_json_t *v,
                            const at_jpath_t *fr)
{
    if (n->max_length >= 0) {
        int64_t chars = 0;
        for (uint32_t i = 0; i < v->len; i++)
            chars += ((uint8_t)v->s[i] & 0xc0) != 0x80;
        if (chars > n->max_length)
            return at_check__fail(c, fr, "must be at most %lld characters long",
                                  (long long)n->max_length);
    }
    if (!n->re)
        return 0;
    char tmp[256];
    char *z = v->len < sizeof tmp ? tmp : at_xmalloc(v->len + 1);
    memcpy(z, v->s, v->len);
    z[v->len] = '\0';
    int rc = regexec(n->re, z, 0, NULL, 0);
    if (z != tmp)
        free(z);
    if (rc != 0)
        return at_check__fail(c, fr, "must match the pattern \"%s\"", n->pattern);
    return 0;
}

static const at_schema_node_t *at_check__prop(const at_schema_node_t *n, const char *k,
                                              uint32_t len)
{
    for (size_t i = 0; i < n->nprops; i++)
        if (n->props[i].name_len == len && memcmp(n->props[i].name, k, len) == 0)
            return n->props[i].node;
    return NULL;
}

static int at_check__object(at_check_t *c, const at_schema_node_t *n, const at_json_t *v,
                            const at_jpath_t *fr)
{
    for (size_t i = 0; i < n->nrequired; i++) {
        const at_json_t *r = n->required[i];
        if (!at_json_get(v, r->s, r->len)) {
            at_jpath_t rf = {fr, r->s, r->len, -1};
            return at_check__fail(c, &rf, "required property is missing");
        }
    }
    for (const at_json_t *m = v->child; m; m = m->next) {
        at_jpath_t mf = {fr, m->key, m->key_len, -1};
        const at_schema_node_t *pn = at_check__prop(n, m->key, m->key_len);
        int rc = 0;
        if (pn)
            rc = at_check__node(c, pn, m, &mf);
        else if (!n->additional)
            rc = at_check__fail(c, &mf, "property not allowed (additionalProperties is false)");
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int at_check__node(at_check_t *c, const at_schema_node_t *n, const at_json_t *v,
                          const at_jpath_t *fr)
{
    unsigned bits = at_check__bits(v);
    if (n->types && !(n->types & bits)) {
        char want[96];
        at_ingest__types_text(n->types, want, sizeof want);
        return at_check__fail(c, fr, "must be of type %s", want);
    }
    if (n->enums) {
        size_t i = 0;
        while (i < n->nenums && !at_json_equal(n->enums[i], v))
            i++;
        if (i == n->nenums)
            return at_check__fail(c, fr, "must be one of the %zu values of the enum", n->nenums);
    }
    if (v->type == AT_JSON_NUMBER && (n->has_min || n->has_max)) {
        double d = at_json_number(v);
        if (n->has_min && !(d >= n->min))
            return at_check__fail(c, fr, "must be at least %.*s", (int)n->min_json->len,
                                  n->min_json->s);
        if (n->has_max && !(d <= n->max))
            return at_check__fail(c, fr, "must be at most %.*s", (int)n->max_json->len,
                                  n->max_json->s);
    }
    if (v->type == AT_JSON_STRING)
        return at_check__string(c, n, v, fr);
    if (v->type == AT_JSON_OBJECT)
        return at_check__object(c, n, v, fr);
    if (v->type == AT_JSON_ARRAY && n->items) {
        long i = 0;
        for (const at_json_t *m = v->child; m; m = m->next, i++) {
            at_jpath_t mf = {fr, NULL, 0, i};
            int rc = at_check__node(c, n->items, m, &mf);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Checks props (an object) against s; root names it in paths
 * ("properties"). Returns 0 or AT_EINVALID with err: code
 * "schema_violation", field = the property path. Thread: any (s is
 * immutable). */
int at_ingest__schema_check(const at_schema_t *s, const at_json_t *props, const char *root,
                            at_error_t *err)
{
    /* err is only written (callers may pass an uninitialized one) */
    /* cppcheck-suppress ctuuninitvar */
    at_check_t c = {s, err};
    at_jpath_t fr = {NULL, root, (uint32_t)strlen(root), -1};
    return at_check__node(&c, s->root, props, &fr);
}
