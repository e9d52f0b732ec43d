/* schema.c - event schemas: the subset of JSON Schema of docs/events.md,
 * compiled once, checked against each event's properties, and the rules
 * by which a new version counts as backward compatible with the previous
 * one (it must accept every event the previous one accepted).
 *
 * Patterns are POSIX extended regular expressions (regcomp), searched
 * unanchored like JSON Schema's; back-references are refused.
 */
#include "ingest_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_SCHEMA_MAX_DEPTH 32
#define AT_SCHEMA_MAX_PATTERN 1024
#define AT_SCHEMA_MAX_PATTERN_COST 10000

static const struct {
    const char *name;
    unsigned bit;
} at_schema__types[] = {
    {"object", AT_ST_OBJECT},   {"string", AT_ST_STRING},   {"number", AT_ST_NUMBER},
    {"integer", AT_ST_INTEGER}, {"boolean", AT_ST_BOOLEAN}, {"array", AT_ST_ARRAY},
    {"null", AT_ST_NULL},
};

static const char *const at_schema__annotations[] = {
    "$schema", "$id", "$comment", "title", "description", "default", "examples",
};

/* A schema path being built while compiling: "properties.price.minimum". */
typedef struct at_spath {
    char s[256];
    size_t n;
} at_spath_t;

static size_t at_spath__push(at_spath_t *p, const char *name, size_t len)
{
    size_t old = p->n;
    int w = snprintf(p->s + p->n, sizeof p->s - p->n, "%s%.*s", p->n ? "." : "", (int)len, name);
    if (w > 0)
        p->n = AT_MIN(p->n + (size_t)w, sizeof p->s - 1);
    return old;
}

static void at_spath__pop(at_spath_t *p, size_t old)
{
    p->n = old;
    p->s[old] = '\0';
}

__attribute__((format(printf, 3, 4))) static int
at_schema__bad(at_error_t *err, const at_spath_t *p, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap); /* cut like at_error_t's message */
    va_end(ap);
    return at_error_set(err, AT_EINVALID, "invalid_schema", p->s, "%s%s%s", p->s, p->n ? ": " : "",
                        msg);
}

static bool at_schema__key(const at_json_t *m, const char *k)
{
    size_t n = strlen(k);
    return m->key_len == n && memcmp(m->key, k, n) == 0;
}

static int at_schema__node(at_schema_t *s, const at_json_t *v, at_spath_t *p, int depth,
                           at_schema_node_t **out, at_error_t *err);

static int at_schema__type(at_schema_node_t *n, const at_json_t *v, at_spath_t *p, at_error_t *err)
{
    const at_json_t *one = v->type == AT_JSON_ARRAY ? v->child : v;
    if (v->type == AT_JSON_ARRAY && !one)
        return at_schema__bad(err, p, "type must not be an empty list");
    for (; one; one = v->type == AT_JSON_ARRAY ? one->next : NULL) {
        if (one->type != AT_JSON_STRING)
            return at_schema__bad(err, p, "type must be a string or a list of strings");
        unsigned bit = 0;
        for (size_t i = 0; i < AT_ARRAY_LEN(at_schema__types); i++)
            if (strlen(at_schema__types[i].name) == one->len &&
                memcmp(at_schema__types[i].name, one->s, one->len) == 0)
                bit = at_schema__types[i].bit;
        if (!bit)
            return at_schema__bad(err, p, "unknown type \"%.*s\"", (int)one->len, one->s);
        n->types |= bit;
    }
    return 0;
}

static int at_schema__required(at_schema_t *s, at_schema_node_t *n, const at_json_t *v,
                               at_spath_t *p, at_error_t *err)
{
    if (v->type != AT_JSON_ARRAY)
        return at_schema__bad(err, p, "required must be a list of property names");
    n->required = at_arena_alloc(&s->arena, (v->len + 1) * sizeof(const at_json_t *));
    for (const at_json_t *c = v->child; c; c = c->next) {
        if (c->type != AT_JSON_STRING)
            return at_schema__bad(err, p, "required must be a list of property names");
        n->required[n->nrequired++] = c;
    }
    return 0;
}

static int at_schema__props(at_schema_t *s, at_schema_node_t *n, const at_json_t *v, at_spath_t *p,
                            int depth, at_error_t *err)
{
    if (v->type != AT_JSON_OBJECT)
        return at_schema__bad(err, p, "properties must be an object");
    n->props = at_arena_alloc(&s->arena, (v->len + 1) * sizeof *n->props);
    for (const at_json_t *c = v->child; c; c = c->next) {
        for (size_t i = 0; i < n->nprops; i++)
            if (n->props[i].name_len == c->key_len &&
                memcmp(n->props[i].name, c->key, c->key_len) == 0)
                return at_schema__bad(err, p, "property \"%.*s\" defined twice", (int)c->key_len,
                                      c->key);
        at_schema_prop_t *pr = &n->props[n->nprops++];
        pr->name = c->key;
        pr->name_len = c->key_len;
        size_t old = at_spath__push(p, c->key, c->key_len);
        int rc = at_schema__node(s, c, p, depth + 1, &pr->node, err);
        at_spath__pop(p, old);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Reads "{n}", "{n,}" or "{n,m}" at re[*i] ('{'); returns the most copies
 * it asks for, or 0 when it is not a repetition (then '{' is literal). */
static uint64_t at_schema__interval(const char *re, size_t *i)
{
    size_t k = *i + 1;
    uint64_t n = 0, m = 0;
    bool digits = false, comma = false;
    for (; re[k] && re[k] != '}'; k++) {
        if (re[k] == ',' && !comma) {
            comma = true;
        } else if (re[k] >= '0' && re[k] <= '9') {
            uint64_t *v = comma ? &m : &n;
            *v = AT_MIN(*v * 10 + (uint64_t)(re[k] - '0'), 1000000);
            digits = true;
        } else {
            return 0;
        }
    }
    if (!re[k] || !digits)
        return 0;
    *i = k;
    return AT_MAX(n, m) + 1;
}

/* Index of the ']' closing the bracket expression at re[i] ('['), or i
 * when it is not closed. */
static size_t at_schema__bracket_end(const char *re, size_t i)
{
    size_t k = i + 1;
    k += re[k] == '^';
    k += re[k] == ']';
    while (re[k] && re[k] != ']') {
        char kind = re[k + 1];
        if (re[k] == '[' && (kind == ':' || kind == '.' || kind == '=')) {
            const char close[3] = {kind, ']', '\0'};
            const char *e = strstr(re + k + 2, close);
            k = e ? (size_t)(e - re) + 2 : k + 1;
        } else {
            k++;
        }
    }
    return re[k] ? k : i;
}

/* An upper bound of the nodes the regex compiler expands re into: each
 * repetition copies what it repeats (x{n,m} makes m copies), so nested
 * intervals multiply: "(x{99}){999}" is refused. Adjacent repetition
 * operators ("a++", "a*{3}") are undefined in POSIX and make glibc's
 * compiler take minutes and gigabytes: they count as infinitely costly. */
static uint64_t at_schema__pattern_cost(const char *re)
{
    uint64_t cost[AT_SCHEMA_MAX_PATTERN + 1], last[AT_SCHEMA_MAX_PATTERN + 1];
    size_t d = 0;
    const uint64_t cap = (uint64_t)AT_SCHEMA_MAX_PATTERN_COST * 1000;
    cost[0] = last[0] = 0;
    bool after_rep = false;
    for (size_t i = 0; re[i]; i++) {
        uint64_t atom = 1, rep = 0;
        char c = re[i];
        if (c == '\\' && re[i + 1]) {
            i++;
        } else if (c == '[') {
            i = at_schema__bracket_end(re, i);
        } else if (c == '(') {
            cost[++d] = 0;
            last[d] = 0;
            continue;
        } else if (c == ')' && d > 0) {
            atom = cost[d--];
        } else if (c == '*' || c == '+' || c == '?') {
            rep = 2;
        } else if (c == '{') {
            rep = at_schema__interval(re, &i);
        } else if (c == '|' || c == '^' || c == '$') {
            atom = 0;
        }
        if (rep && after_rep)
            return UINT64_MAX;
        after_rep = rep != 0;
        if (rep) { /* the previous atom, copied rep times */
            uint64_t extra = AT_MIN(last[d] * (rep - 1), cap);
            cost[d] = AT_MIN(cost[d] + extra, cap);
            last[d] = AT_MIN(last[d] * rep, cap);
        } else {
            cost[d] = AT_MIN(cost[d] + atom, cap);
            last[d] = atom;
        }
    }
    while (d > 0) {
        cost[d - 1] = AT_MIN(cost[d - 1] + cost[d], cap);
        d--;
    }
    return cost[0];
}

static int at_schema__pattern(at_schema_t *s, at_schema_node_t *n, const at_json_t *v,
                              at_spath_t *p, at_error_t *err)
{
    if (v->type != AT_JSON_STRING || v->len > AT_SCHEMA_MAX_PATTERN)
        return at_schema__bad(err, p, "pattern must be a string of at most %d bytes",
                              AT_SCHEMA_MAX_PATTERN);
    char *re = at_arena_strndup(&s->arena, v->s, v->len);
    if (strlen(re) != v->len)
        return at_schema__bad(err, p, "pattern must not contain NUL");
    for (size_t i = 0; i + 1 < v->len; i++) {
        if (re[i] == '\\' && re[i + 1] >= '1' && re[i + 1] <= '9')
            return at_schema__bad(err, p, "pattern: back-references are not supported");
        if (re[i] == '\\')
            i++;
    }
    if (at_schema__pattern_cost(re) > AT_SCHEMA_MAX_PATTERN_COST)
        return at_schema__bad(err, p,
                              "pattern too complex: adjacent repetitions (\"a++\") or "
                              "too many copies from nested intervals");
    regex_t *rx = at_arena_alloc(&s->arena, sizeof *rx);
    int rc = regcomp(rx, re, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[128];
        regerror(rc, rx, why, sizeof why);
        return at_schema__bad(err, p, "pattern is not a POSIX extended regular expression: %s",
                              why);
    }
    s->regexes = at_xrealloc(s->regexes, (s->nregexes + 1) * sizeof(regex_t *));
    s->regexes[s->nregexes++] = rx;
    n->pattern = re;
    n->re = rx;
    return 0;
}

static int at_schema__number(const at_json_t *v, at_spath_t *p, const char *what, double *out,
                             at_error_t *err)
{
    if (v->type != AT_JSON_NUMBER)
        return at_schema__bad(err, p, "%s must be a number", what);
    *out = at_json_number(v);
    if (!isfinite(*out))
        return at_schema__bad(err, p, "%s is out of range", what);
    return 0;
}

static int at_schema__keyword(at_schema_t *s, at_schema_node_t *n, const at_json_t *m,
                              at_spath_t *p, int depth, at_error_t *err)
{
    int64_t i64;
    if (at_schema__key(m, "type"))
        return at_schema__type(n, m, p, err);
    if (at_schema__key(m, "required"))
        return at_schema__required(s, n, m, p, err);
    if (at_schema__key(m, "properties"))
        return at_schema__props(s, n, m, p, depth, err);
    if (at_schema__key(m, "items"))
        return at_schema__node(s, m, p, depth + 1, &n->items, err);
    if (at_schema__key(m, "pattern"))
        return at_schema__pattern(s, n, m, p, err);
    if (at_schema__key(m, "minimum")) {
        n->has_min = true;
        n->min_json = m;
        return at_schema__number(m, p, "minimum", &n->min, err);
    }
    if (at_schema__key(m, "maximum")) {
        n->has_max = true;
        n->max_json = m;
        return at_schema__number(m, p, "maximum", &n->max, err);
    }
    if (at_schema__key(m, "additionalProperties")) {
        if (m->type != AT_JSON_TRUE && m->type != AT_JSON_FALSE)
            return at_schema__bad(err, p, "additionalProperties must be true or false");
        n->additional = m->type == AT_JSON_TRUE;
        return 0;
    }
    if (at_schema__key(m, "maxLength")) {
        if (at_json_i64(m, &i64) < 0 || i64 < 0)
            return at_schema__bad(err, p, "maxLength must be a non-negative integer");
        n->max_length = i64;
        return 0;
    }
    if (at_schema__key(m, "enum")) {
        if (m->type != AT_JSON_ARRAY || m->len == 0)
            return at_schema__bad(err, p, "enum must be a non-empty list");
        n->enums = at_arena_alloc(&s->arena, m->len * sizeof(const at_json_t *));
        for (const at_json_t *c = m->child; c; c = c->next)
            n->enums[n->nenums++] = c;
        return 0;
    }
    for (size_t i = 0; i < AT_ARRAY_LEN(at_schema__annotations); i++)
        if (at_schema__key(m, at_schema__annotations[i]))
            return 0;
    return at_schema__bad(err, p,
                          "unsupported keyword \"%.*s\" (supported: type, required, properties, "
                          "additionalProperties, items, enum, minimum, maximum, maxLength, "
                          "pattern)",
                          (int)m->key_len, m->key);
}

static int at_schema__node(at_schema_t *s, const at_json_t *v, at_spath_t *p, int depth,
                           at_schema_node_t **out, at_error_t *err)
{
    if (v->type != AT_JSON_OBJECT)
        return at_schema__bad(err, p, "a schema must be an object");
    if (depth > AT_SCHEMA_MAX_DEPTH)
        return at_schema__bad(err, p, "schema nested too deep");
    at_schema_node_t *n = at_arena_alloc(&s->arena, sizeof *n);
    memset(n, 0, sizeof *n);
    n->max_length = -1;
    n->additional = true;
    *out = n;
    for (const at_json_t *m = v->child; m; m = m->next) {
        for (const at_json_t *k = v->child; k != m; k = k->next)
            if (k->key_len == m->key_len && memcmp(k->key, m->key, m->key_len) == 0)
                return at_schema__bad(err, p, "keyword \"%.*s\" given twice", (int)m->key_len,
                                      m->key);
        size_t old = at_spath__push(p, m->key, m->key_len);
        int rc = at_schema__keyword(s, n, m, p, depth, err);
        at_spath__pop(p, old);
        if (rc < 0)
            return rc;
    }
    if (n->has_min && n->has_max && n->min > n->max)
        return at_schema__bad(err, p, "minimum is greater than maximum");
    return 0;
}

/* Frees s (and its compiled patterns); NULL is fine. */
void at_ingest__schema_free(at_schema_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nregexes; i++)
        regfree(s->regexes[i]);
    free(s->regexes);
    free(s->json);
    at_arena_deinit(&s->arena);
    free(s);
}

/* Compiles the schema text json[0..len) (borrowed). Returns 0 and *out
 * (owned, free with at_ingest__schema_free), or AT_EPARSE ("invalid_json")
 * / AT_EINVALID ("invalid_schema", field = the schema path). */
int at_ingest__schema_compile(const char *json, size_t len, at_schema_t **out, at_error_t *err)
{
    at_schema_t *s = at_xcalloc(1, sizeof *s);
    at_arena_init(&s->arena, 4096);
    char *text = at_arena_strndup(&s->arena, json, len); /* the tree points into it */
    at_json_t *root;
    at_spath_t p = {.n = 0};
    int rc = at_json_parse_all(text, len, &s->arena, AT_SCHEMA_MAX_DEPTH * 2 + 2, &root, err);
    if (rc == 0)
        rc = at_schema__node(s, root, &p, 0, &s->root, err);
    if (rc == 0 && s->root->types && !(s->root->types & AT_ST_OBJECT))
        rc = at_schema__bad(err, &p,
                            "a schema describes the properties object: its type "
                            "must be \"object\"");
    if (rc < 0) {
        at_ingest__schema_free(s);
        *out = NULL;
        return rc;
    }
    at_buf_t b;
    at_buf_init(&b, 0);
    at_json_w_value(&b, root);
    s->json = at_buf_steal(&b, &s->json_len);
    *out = s;
    return 0;
}
