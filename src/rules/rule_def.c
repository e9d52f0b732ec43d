/* rule_def.c - segment and trigger definitions: from JSON to a compiled
 * at_rule_t, with errors that name the field and, inside an expression,
 * the line and column.
 *
 * A definition is a JSON object with the fields of docs/rules.md. Unknown
 * fields are refused (a misspelt `havin:` would otherwise be a rule that
 * silently means something else). The canonical form kept in the rule and
 * in control records lists the known fields in a fixed order.
 */
#include "at_config.h"
#include "at_json.h"
#include "rules_def.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The builder's view while compiling: the set being built. */
typedef struct at_rdef_ctx {
    at_ruleset_t *rs; /* fields and names are appended to it */
    const char *self; /* the rule's own name: in_segment() of it is a cycle */
    size_t self_len;
    int kind;
} at_rdef_ctx_t;

static int at_rdef__field(void *ud, const char *path, size_t n, char *why, size_t whylen)
{
    at_rdef_ctx_t *c = ud;
    at_ruleset_t *rs = c->rs;
    (void)why;
    (void)whylen;
    for (size_t i = 0; i < rs->nfields; i++)
        if (strlen(rs->fields[i]) == n && memcmp(rs->fields[i], path, n) == 0)
            return (int)i;
    rs->fields = at_xrealloc(rs->fields, (rs->nfields + 1) * sizeof *rs->fields);
    rs->field_profile = at_xrealloc(rs->field_profile, (rs->nfields + 1) * sizeof(bool));
    rs->fields[rs->nfields] = at_xstrndup(path, n);
    rs->field_profile[rs->nfields] = n >= 8 && memcmp(path, "profile.", 8) == 0;
    return (int)rs->nfields++;
}

/* in_segment(name): a segment of the set other than the rule itself. */
static int at_rdef__segment(void *ud, const char *name, size_t n)
{
    at_rdef_ctx_t *c = ud;
    at_ruleset_t *rs = c->rs;
    if (c->kind == AT_RULE_SEGMENT && n == c->self_len && memcmp(name, c->self, n) == 0)
        return -1;
    if (!at_ruleset_find(rs, AT_RULE_SEGMENT, name, n))
        return -1;
    for (size_t i = 0; i < rs->nnames; i++)
        if (strlen(rs->names[i]) == n && memcmp(rs->names[i], name, n) == 0)
            return (int)i;
    rs->names = at_xrealloc(rs->names, (rs->nnames + 1) * sizeof *rs->names);
    rs->names[rs->nnames] = at_xstrndup(name, n);
    return (int)rs->nnames++;
}

int at_rules__name_id(at_ruleset_t *rs, const char *name, size_t n);
int at_rules__name_id(at_ruleset_t *rs, const char *name, size_t n)
{
    for (size_t i = 0; i < rs->nnames; i++)
        if (strlen(rs->names[i]) == n && memcmp(rs->names[i], name, n) == 0)
            return (int)i;
    rs->names = at_xrealloc(rs->names, (rs->nnames + 1) * sizeof *rs->names);
    rs->names[rs->nnames] = at_xstrndup(name, n);
    return (int)rs->nnames++;
}

static int at_rdef__fail(at_error_t *err, int rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int at_rdef__fail(at_error_t *err, int rc, const char *field, const char *fmt, ...)
{
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return at_error_set(err, rc, "invalid_rule", field, "%s", msg);
}

/* The string member `name` of obj, or NULL; a member of another type is an
 * error. */
static int at_rdef__str(const at_json_t *obj, const char *name, const at_json_t **out,
                        at_error_t *err)
{
    const at_json_t *v = at_json_get(obj, name, strlen(name));
    *out = NULL;
    if (!v || v->type == AT_JSON_NULL)
        return 0;
    if (v->type != AT_JSON_STRING)
        return at_rdef__fail(err, AT_EINVALID, name, "%s must be a string", name);
    *out = v;
    return 0;
}

static int at_rdef__expr(at_rdef_ctx_t *c, const at_json_t *obj, const char *name, unsigned flags,
                         at_expr_t **out, at_error_t *err)
{
    const at_json_t *v;
    int rc = at_rdef__str(obj, name, &v, err);
    *out = NULL;
    if (rc < 0 || !v)
        return rc;
    at_expr_env_t env = {at_rdef__field, at_rdef__segment, c, flags};
    at_expr_err_t ee;
    rc = at_expr_compile(v->s, v->len, &env, out, &ee);
    if (rc < 0)
        return at_error_set(err, rc, "invalid_rule", name, "%s: %s", name, ee.msg);
    return 0;
}

static int at_rdef__duration(const at_json_t *obj, const char *name, int64_t *ms, at_error_t *err)
{
    const at_json_t *v;
    int rc = at_rdef__str(obj, name, &v, err);
    *ms = 0;
    if (rc < 0 || !v)
        return rc;
    char buf[64];
    bool ok = v->len < sizeof buf;
    if (ok) {
        memcpy(buf, v->s, v->len);
        buf[v->len] = '\0';
        ok = at_parse_duration_ms(buf, ms) == 0 && *ms > 0;
    }
    if (!ok)
        return at_rdef__fail(err, AT_EINVALID, name,
                             "%s: '%.*s' is not a duration (90s, 10m, 2h, 7d)", name,
                             (int)AT_MIN(v->len, 40u), v->s);
    return 0;
}

static bool at_rdef__name_ok(const char *s, size_t n)
{
    if (n == 0 || n > AT_RULE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        if (!ok)
            return false;
    }
    return true;
}

/* window: "10m" | "sliding 10m" | "tumbling 1h" | "tumbling 1d" | "tumbling 1w" | "session" */
static int at_rdef__window(at_rule_t *r, const at_json_t *obj, at_error_t *err)
{
    const at_json_t *v;
    int rc = at_rdef__str(obj, "window", &v, err);
    if (rc < 0 || !v)
        return rc;
    char buf[64];
    if (v->len >= sizeof buf)
        return at_rdef__fail(err, AT_EINVALID, "window", "window: too long");
    memcpy(buf, v->s, v->len);
    buf[v->len] = '\0';
    const char *d = buf;
    if (!strcmp(buf, "session")) {
        r->win = AT_WIN_SESSION;
        return 0;
    }
    r->win = AT_WIN_SLIDING;
    if (!strncmp(buf, "tumbling ", 9)) {
        r->win = AT_WIN_TUMBLING;
        d = buf + 9;
    } else if (!strncmp(buf, "sliding ", 8)) {
        d = buf + 8;
    }
    while (*d == ' ')
        d++;
    if (at_parse_duration_ms(d, &r->win_ms) < 0 || r->win_ms <= 0)
        return at_rdef__fail(err, AT_EINVALID, "window",
                             "window: '%s' is not a duration, 'tumbling DURATION' or 'session'",
                             buf);
    if (r->win == AT_WIN_TUMBLING) {
        int64_t day = 86400000;
        bool ok = r->win_ms == 7 * day || (r->win_ms <= day && day % r->win_ms == 0);
        if (!ok)
            return at_rdef__fail(err, AT_EINVALID, "window",
                                 "window: a tumbling bucket must divide a day (1h, 15m, 1d) "
                                 "or be a week (1w)");
    }
    return 0;
}

static const char *const at_rdef__seg_fields[] = {"name",    "description", "filter", "group_by",
                                                  "window",  "having",      "when",   "mode",
                                                  "rollout", NULL};
static const char *const at_rdef__trg_fields[] = {"name",   "description", "on",   "unless",
                                                  "within", "cooldown",    "when", "action",
                                                  "mode",   "rollout",     NULL};

static int at_rdef__known(const at_json_t *obj, int kind, at_error_t *err)
{
    const char *const *names = kind == AT_RULE_SEGMENT ? at_rdef__seg_fields : at_rdef__trg_fields;
    for (const at_json_t *m = obj->child; m; m = m->next) {
        bool ok = false;
        for (size_t i = 0; names[i] && !ok; i++)
            ok = strlen(names[i]) == m->key_len && memcmp(names[i], m->key, m->key_len) == 0;
        if (!ok) {
            char f[64];
            (void)snprintf(f, sizeof f, "%.*s", (int)AT_MIN(m->key_len, 60u), m->key);
            return at_rdef__fail(err, AT_EINVALID, f, "unknown field '%s' in a %s", f,
                                 kind == AT_RULE_SEGMENT ? "segment" : "trigger");
        }
    }
    return 0;
}

static int at_rdef__mode(at_rule_t *r, const at_json_t *obj, at_error_t *err)
{
    const at_json_t *v;
    int rc = at_rdef__str(obj, "mode", &v, err);
    if (rc < 0)
        return rc;
    r->mode = AT_RULE_ACTIVE;
    if (v && v->len == 6 && !memcmp(v->s, "shadow", 6))
        r->mode = AT_RULE_SHADOW;
    else if (v && !(v->len == 6 && !memcmp(v->s, "active", 6)))
        return at_rdef__fail(err, AT_EINVALID, "mode", "mode must be 'active' or 'shadow'");
    r->rollout = 100;
    const at_json_t *ro = at_json_get(obj, "rollout", 7);
    if (!ro || ro->type == AT_JSON_NULL)
        return 0;
    double pct = -1;
    if (ro->type == AT_JSON_NUMBER) {
        pct = at_json_number(ro);
    } else if (ro->type == AT_JSON_STRING && ro->len > 1 && ro->len < 8 &&
               ro->s[ro->len - 1] == '%') {
        char buf[8];
        memcpy(buf, ro->s, ro->len - 1);
        buf[ro->len - 1] = '\0';
        char *end;
        pct = strtod(buf, &end);
        if (*end)
            pct = -1;
    }
    if (!(pct >= 1 && pct <= 100) || pct != floor(pct))
        return at_rdef__fail(err, AT_EINVALID, "rollout",
                             "rollout must be a whole percentage from 1%% to 100%%");
    r->rollout = (uint8_t)pct;
    return 0;
}

/* Whether the segment's enters are final at once: a count, distinct or
 * max compared with > or >=, over a window, without a when condition and
 * with a filter and group that read no profile (the early path evaluates
 * them before the profile has the event). sum is not among them: a later
 * event with a negative value would undo the enter. */
static bool at_rdef__early(const at_rule_t *r)
{
    if (!r->has_having || r->when)
        return false;
    if (r->filter && (at_expr_reads(r->filter) & (AT_EXPR_READS_PROFILE | AT_EXPR_READS_NOW)))
        return false;
    if (r->group && (at_expr_reads(r->group) & (AT_EXPR_READS_PROFILE | AT_EXPR_READS_NOW)))
        return false;
    int a = r->having.agg, c = r->having.cmp;
    return (a == AT_AGG_COUNT || a == AT_AGG_DISTINCT || a == AT_AGG_MAX) &&
           (c == AT_CMP_GT || c == AT_CMP_GE);
}

static int at_rdef__segment_body(at_rdef_ctx_t *c, at_rule_t *r, const at_json_t *obj,
                                 at_error_t *err)
{
    int rc = at_rdef__expr(c, obj, "filter", AT_EXPR_BOOL, &r->filter, err);
    if (!rc)
        rc = at_rdef__expr(c, obj, "group_by", AT_EXPR_NO_PROFILE, &r->group, err);
    if (!rc)
        rc = at_rdef__window(r, obj, err);
    if (!rc)
        rc = at_rdef__expr(c, obj, "when", AT_EXPR_BOOL, &r->when, err);
    if (rc)
        return rc;
    const at_json_t *hv;
    if ((rc = at_rdef__str(obj, "having", &hv, err)) < 0)
        return rc;
    if (hv) {
        at_expr_env_t env = {at_rdef__field, at_rdef__segment, c, AT_EXPR_NO_PROFILE};
        at_expr_err_t ee;
        if ((rc = at_expr_having_parse(hv->s, hv->len, &env, &r->having, &ee)) < 0)
            return at_error_set(err, rc, "invalid_rule", "having", "having: %s", ee.msg);
        r->has_having = true;
    }
    if (r->has_having && r->win == AT_WIN_NONE)
        return at_rdef__fail(err, AT_EINVALID, "window",
                             "a segment with having needs a window (10m, tumbling 1d, session)");
    if (!r->has_having && r->win != AT_WIN_NONE)
        return at_rdef__fail(err, AT_EINVALID, "having", "a window needs a having clause");
    if (r->group && !r->has_having)
        return at_rdef__fail(err, AT_EINVALID, "group_by", "group_by needs a window and having");
    if (!r->has_having && !r->when)
        return at_rdef__fail(err, AT_EINVALID, "having",
                             "a segment needs having (with filter and window) or when");
    if (r->filter && !r->has_having)
        return at_rdef__fail(err, AT_EINVALID, "filter",
                             "filter selects the events of a window: it needs window and having");
    r->early = at_rdef__early(r);
    /* count and distinct: only the newest floor(K) + 1 entries can matter to
     * a comparison with K (the rest expire first and the count is past K
     * while they would) */
    if (r->has_having && (r->having.agg == AT_AGG_COUNT || r->having.agg == AT_AGG_DISTINCT) &&
        r->having.threshold >= 0 && r->having.threshold < AT_RULE_MAX_ENTRIES)
        r->keep = (uint32_t)floor(r->having.threshold) + 1;
    size_t nf = 0;
    const at_expr_field_t *f = r->when ? at_expr_fields(r->when, &nf) : NULL;
    for (size_t i = 0; i < nf; i++)
        r->when_session |= f[i].len >= 16 && !memcmp(f[i].path, "profile.session.", 16);
    return 0;
}

static int at_rdef__trigger_body(at_rdef_ctx_t *c, at_rule_t *r, const at_json_t *obj,
                                 at_error_t *err)
{
    int rc = at_rdef__expr(c, obj, "on", AT_EXPR_BOOL, &r->on, err);
    if (!rc && !r->on)
        rc = at_rdef__fail(err, AT_EINVALID, "on", "a trigger needs on: the event that arms it");
    if (!rc)
        rc = at_rdef__expr(c, obj, "unless", AT_EXPR_BOOL, &r->unless, err);
    if (!rc)
        rc = at_rdef__expr(c, obj, "when", AT_EXPR_BOOL, &r->when, err);
    if (!rc)
        rc = at_rdef__duration(obj, "within", &r->within_ms, err);
    if (!rc)
        rc = at_rdef__duration(obj, "cooldown", &r->cooldown_ms, err);
    if (rc)
        return rc;
    if (r->unless && !r->within_ms)
        return at_rdef__fail(err, AT_EINVALID, "within",
                             "unless needs within: how long the trigger waits for it");
    const at_json_t *a = at_json_get(obj, "action", 6);
    if (a && a->type != AT_JSON_NULL) {
        at_buf_t b;
        at_buf_init(&b, 0);
        at_json_w_value(&b, a);
        r->action = at_buf_steal(&b, &r->action_len);
    }
    r->early_fire = !r->within_ms && !r->cooldown_ms && !r->when &&
                    !(at_expr_reads(r->on) & (AT_EXPR_READS_PROFILE | AT_EXPR_READS_NOW));
    return 0;
}

/* Writes the canonical definition: known fields, in table order. */
static char *at_rdef__canonical(const at_json_t *obj, int kind, size_t *len)
{
    const char *const *names = kind == AT_RULE_SEGMENT ? at_rdef__seg_fields : at_rdef__trg_fields;
    at_buf_t b;
    at_buf_init(&b, 0);
    at_json_w_raw(&b, "{", 1);
    bool first = true;
    for (size_t i = 0; names[i]; i++) {
        const at_json_t *v = at_json_get(obj, names[i], strlen(names[i]));
        if (!v || v->type == AT_JSON_NULL)
            continue;
        if (!first)
            at_json_w_raw(&b, ",", 1);
        first = false;
        at_json_w_str(&b, names[i], strlen(names[i]), false);
        at_json_w_raw(&b, ":", 1);
        at_json_w_value(&b, v);
    }
    at_json_w_raw(&b, "}", 1);
    return at_buf_steal(&b, len);
}

void at_rules__rule_free(at_rule_t *r);
void at_rules__rule_free(at_rule_t *r)
{
    if (!r)
        return;
    at_expr_free(r->filter);
    at_expr_free(r->when);
    at_expr_free(r->group);
    at_expr_free(r->on);
    at_expr_free(r->unless);
    free(r->def);
    free(r->action);
    free(r);
}

/* Compiles definition def of kind into *out (owned), adding its fields and
 * names to rs. name (may be NULL) must match the definition's own name when
 * it has one. */
int at_rules__compile(at_ruleset_t *rs, int kind, const char *name, size_t name_len,
                      const char *def, size_t def_len, at_rule_t **out, at_error_t *err);
int at_rules__compile(at_ruleset_t *rs, int kind, const char *name, size_t name_len,
                      const char *def, size_t def_len, at_rule_t **out, at_error_t *err)
{
    at_arena_t arena;
    at_arena_init(&arena, 0);
    at_json_t *obj = NULL;
    at_rule_t *r = at_xcalloc(1, sizeof *r);
    atomic_init(&r->refs, 1);
    int rc = at_json_parse_all(def, def_len, &arena, 32, &obj, err);
    if (rc < 0) {
        at_error_set(err, rc, "invalid_json", NULL, "%s", err->message);
        goto out;
    }
    if (obj->type != AT_JSON_OBJECT) {
        rc = at_rdef__fail(err, AT_EINVALID, NULL, "a rule definition must be a JSON object");
        goto out;
    }
    if ((rc = at_rdef__known(obj, kind, err)) < 0)
        goto out;
    const at_json_t *nv;
    if ((rc = at_rdef__str(obj, "name", &nv, err)) < 0)
        goto out;
    if (!nv && !name) {
        rc = at_rdef__fail(err, AT_EINVALID, "name", "a rule needs a name");
        goto out;
    }
    if (nv && name && (nv->len != name_len || memcmp(nv->s, name, name_len) != 0)) {
        rc = at_rdef__fail(err, AT_EINVALID, "name",
                           "the definition's name '%.*s' differs from the path's '%.*s'",
                           (int)AT_MIN(nv->len, 64u), nv->s, (int)AT_MIN(name_len, 64u), name);
        goto out;
    }
    const char *nm = nv ? nv->s : name;
    size_t nl = nv ? nv->len : name_len;
    if (!at_rdef__name_ok(nm, nl)) {
        rc = at_rdef__fail(err, AT_EINVALID, "name", "a name is 1 to 64 of A-Z a-z 0-9 _ - .");
        goto out;
    }
    memcpy(r->name, nm, nl);
    r->name[nl] = '\0';
    r->kind = (uint8_t)kind;
    if ((rc = at_rdef__mode(r, obj, err)) < 0)
        goto out;
    at_rdef_ctx_t c = {rs, r->name, nl, kind};
    rc = kind == AT_RULE_SEGMENT ? at_rdef__segment_body(&c, r, obj, err)
                                 : at_rdef__trigger_body(&c, r, obj, err);
    if (rc < 0)
        goto out;
    r->def = at_rdef__canonical(obj, kind, &r->def_len);
    if (!nv) { /* the name came from the path: put it into the canonical form */
        at_buf_t b;
        at_buf_init(&b, 0);
        at_buf_puts(&b, "{\"name\":");
        at_buf_json_str(&b, name, name_len);
        if (r->def_len > 2)
            at_buf_putc(&b, ',');
        at_buf_append(&b, r->def + 1, r->def_len - 1);
        free(r->def);
        r->def = at_buf_steal(&b, &r->def_len);
    }
    r->name_id = kind == AT_RULE_SEGMENT ? at_rules__name_id(rs, r->name, nl) : -1;
    *out = r;
    r = NULL;
out:
    at_rules__rule_free(r);
    at_arena_deinit(&arena);
    return rc;
}
