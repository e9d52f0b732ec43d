/* ruleset.c - rule sets: immutable snapshots of the rules in force, built
 * one change (one control record) at a time, with the evaluation order and
 * the rollout of candidate versions.
 *
 * A name may have two versions at once: the active one, and a candidate
 * that is either in shadow mode (evaluated for everyone, never announced)
 * or rolled out to a stable share of users (acting for them instead of the
 * active one). A put of an active version with rollout 100% replaces both.
 */
#include "at_json.h"
#include "rules_def.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void at_rules__rule_free(at_rule_t *r);
int at_rules__compile(at_ruleset_t *rs, int kind, const char *name, size_t name_len,
                      const char *def, size_t def_len, at_rule_t **out, at_error_t *err);

at_ruleset_t *at_ruleset_new(void)
{
    at_ruleset_t *rs = at_xcalloc(1, sizeof *rs);
    atomic_init(&rs->refs, 1);
    rs->next_id = 1;
    return rs;
}

void at_ruleset_ref(at_ruleset_t *rs)
{
    atomic_fetch_add(&rs->refs, 1);
}

static void at_rule__unref(at_rule_t *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1)
        at_rules__rule_free(r);
}

void at_ruleset_unref(at_ruleset_t *rs)
{
    if (!rs || atomic_fetch_sub(&rs->refs, 1) != 1)
        return;
    for (size_t i = 0; i < rs->n; i++)
        at_rule__unref(rs->rules[i]);
    for (size_t i = 0; i < rs->nfields; i++)
        free(rs->fields[i]);
    for (size_t i = 0; i < rs->nnames; i++)
        free(rs->names[i]);
    free(rs->rules);
    free(rs->by_id);
    free(rs->fields);
    free(rs->field_profile);
    free(rs->names);
    free(rs->past);
    free(rs);
}

const at_rule_t *at_ruleset_find(const at_ruleset_t *rs, int kind, const char *name, size_t n)
{
    const at_rule_t *best = NULL;
    for (size_t i = 0; i < rs->n; i++) {
        const at_rule_t *r = rs->rules[i];
        if (r->kind == kind && strlen(r->name) == n && memcmp(r->name, name, n) == 0 &&
            (!best || r->version > best->version))
            best = r;
    }
    return best;
}

const at_rule_t *at_ruleset_by_id(const at_ruleset_t *rs, uint32_t id)
{
    if (!rs->by_id) { /* a set being built: not indexed yet */
        for (size_t i = 0; i < rs->n; i++)
            if (rs->rules[i]->id == id)
                return rs->rules[i];
        return NULL;
    }
    size_t lo = 0, hi = rs->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rs->by_id[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < rs->n && rs->by_id[lo]->id == id ? rs->by_id[lo] : NULL;
}

/* A copy of prev sharing its rules (each referenced once more). */
static at_ruleset_t *at_ruleset__clone(const at_ruleset_t *prev)
{
    at_ruleset_t *rs = at_ruleset_new();
    rs->changes = prev->changes;
    rs->next_id = prev->next_id;
    rs->n = prev->n;
    rs->rules = at_xcalloc(prev->n + 1, sizeof(at_rule_t *));
    for (size_t i = 0; i < prev->n; i++) {
        rs->rules[i] = prev->rules[i];
        atomic_fetch_add(&rs->rules[i]->refs, 1);
    }
    rs->nfields = prev->nfields;
    rs->fields = at_xcalloc(prev->nfields + 1, sizeof *rs->fields);
    rs->field_profile = at_xcalloc(prev->nfields + 1, sizeof *rs->field_profile);
    for (size_t i = 0; i < prev->nfields; i++) {
        rs->fields[i] = at_xstrdup(prev->fields[i]);
        rs->field_profile[i] = prev->field_profile[i];
    }
    rs->nnames = prev->nnames;
    rs->names = at_xcalloc(prev->nnames + 1, sizeof *rs->names);
    for (size_t i = 0; i < prev->nnames; i++)
        rs->names[i] = at_xstrdup(prev->names[i]);
    rs->npast = prev->npast;
    rs->past = at_xcalloc(prev->npast + 1, sizeof *rs->past);
    if (prev->npast)
        memcpy(rs->past, prev->past, prev->npast * sizeof *rs->past);
    return rs;
}

/* ---- deleted names ------------------------------------------------------- */

static int at_rule_past__cmp(const at_rule_past_t *p, int kind, const char *name, size_t n)
{
    if (p->kind != kind)
        return p->kind < kind ? -1 : 1;
    size_t pn = strlen(p->name);
    int c = memcmp(p->name, name, AT_MIN(pn, n));
    return c ? c : (pn > n) - (pn < n);
}

/* The index of kind/name in rs->past, or where it would go (*found false). */
static size_t at_ruleset__past_at(const at_ruleset_t *rs, int kind, const char *name, size_t n,
                                  bool *found)
{
    size_t lo = 0, hi = rs->npast;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (at_rule_past__cmp(&rs->past[mid], kind, name, n) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < rs->npast && at_rule_past__cmp(&rs->past[lo], kind, name, n) == 0;
    return lo;
}

/* Remembers that kind/name was deleted at version (the higher one stays). */
static void at_ruleset__past_set(at_ruleset_t *rs, int kind, const char *name, size_t n,
                                 uint32_t version)
{
    bool found;
    size_t i = at_ruleset__past_at(rs, kind, name, n, &found);
    if (found) {
        rs->past[i].version = AT_MAX(rs->past[i].version, version);
        return;
    }
    rs->past = at_xrealloc(rs->past, (rs->npast + 1) * sizeof *rs->past);
    memmove(&rs->past[i + 1], &rs->past[i], (rs->npast - i) * sizeof *rs->past);
    memset(&rs->past[i], 0, sizeof rs->past[i]);
    rs->past[i].kind = (uint8_t)kind;
    rs->past[i].version = version;
    memcpy(rs->past[i].name, name, AT_MIN(n, (size_t)AT_RULE_NAME_MAX));
    rs->npast++;
}

/* kind/name is in force again: its versions are the rules'. */
static void at_ruleset__past_drop(at_ruleset_t *rs, int kind, const char *name, size_t n)
{
    bool found;
    size_t i = at_ruleset__past_at(rs, kind, name, n, &found);
    if (!found)
        return;
    memmove(&rs->past[i], &rs->past[i + 1], (rs->npast - i - 1) * sizeof *rs->past);
    rs->npast--;
}

uint32_t at_ruleset_next_version(const at_ruleset_t *rs, int kind, const char *name, size_t n)
{
    uint32_t v = 0;
    for (size_t i = 0; i < rs->n; i++) {
        const at_rule_t *r = rs->rules[i];
        if (r->kind == kind && strlen(r->name) == n && !memcmp(r->name, name, n) && r->version > v)
            v = r->version;
    }
    bool found;
    size_t i = at_ruleset__past_at(rs, kind, name, n, &found);
    if (found && rs->past[i].version > v)
        v = rs->past[i].version;
    return v + 1;
}

static bool at_rule__is(const at_rule_t *r, int kind, const char *name, size_t n)
{
    return r->kind == kind && strlen(r->name) == n && memcmp(r->name, name, n) == 0;
}

static bool at_rule__full(const at_rule_t *r)
{
    return r->mode == AT_RULE_ACTIVE && r->rollout == 100;
}

/* Removes the rules of kind/name (only the candidates: those not active
 * at 100%). Returns how many, with the highest version removed in
 * *version. */
static size_t at_ruleset__remove(at_ruleset_t *rs, int kind, const char *name, size_t n,
                                 bool only_candidates, uint32_t *version)
{
    size_t k = 0, removed = 0;
    *version = 0;
    for (size_t i = 0; i < rs->n; i++) {
        at_rule_t *r = rs->rules[i];
        if (at_rule__is(r, kind, name, n) && (!only_candidates || !at_rule__full(r))) {
            *version = AT_MAX(*version, r->version);
            at_rule__unref(r);
            removed++;
        } else {
            rs->rules[k++] = r;
        }
    }
    rs->n = k;
    return removed;
}

/* The segment names a rule asks in_segment() of. */
static void at_rule__deps(const at_rule_t *r, const int **ids, size_t *n, int which)
{
    const at_expr_t *e = which == 0   ? r->when
                         : which == 1 ? r->filter
                         : which == 2 ? r->on
                                      : r->unless;
    *n = 0;
    *ids = NULL;
    if (e)
        *ids = at_expr_segments(e, n);
}

/* Orders rs->rules so that a segment comes before every rule that asks
 * in_segment() of its name; otherwise by id. Returns AT_ECONFLICT on a cycle
 * (err names a rule of it). */
static int at_ruleset__order(at_ruleset_t *rs, at_error_t *err)
{
    size_t n = rs->n;
    at_rule_t **out = at_xcalloc(n + 1, sizeof(at_rule_t *));
    bool *done = at_xcalloc(n + 1, sizeof *done);
    /* by id first, so ties are deterministic */
    for (size_t i = 1; i < n; i++) {
        at_rule_t *r = rs->rules[i];
        size_t j = i;
        while (j > 0 && rs->rules[j - 1]->id > r->id) {
            rs->rules[j] = rs->rules[j - 1];
            j--;
        }
        rs->rules[j] = r;
    }
    size_t k = 0;
    int rc = 0;
    while (k < n) {
        bool progress = false;
        for (size_t i = 0; i < n; i++) {
            if (done[i])
                continue;
            bool ready = true;
            for (int w = 0; w < 4 && ready; w++) {
                const int *ids;
                size_t nd;
                at_rule__deps(rs->rules[i], &ids, &nd, w);
                for (size_t d = 0; d < nd && ready; d++) {
                    for (size_t j = 0; j < n && ready; j++)
                        if (!done[j] && j != i && rs->rules[j]->kind == AT_RULE_SEGMENT &&
                            rs->rules[j]->name_id == ids[d])
                            ready = false;
                }
            }
            if (ready) {
                done[i] = true;
                out[k++] = rs->rules[i];
                progress = true;
            }
        }
        if (!progress) {
            for (size_t i = 0; i < n; i++) {
                if (!done[i]) {
                    rc = at_error_set(err, AT_ECONFLICT, "rule_cycle", "when",
                                      "segment '%s' depends on itself through in_segment()",
                                      rs->rules[i]->name);
                    break;
                }
            }
            break;
        }
    }
    if (rc == 0) {
        memcpy(rs->rules, out, n * sizeof(at_rule_t *));
        for (size_t i = 0; i < n; i++)
            rs->rules[i]->index = (uint32_t)i;
        free(rs->by_id);
        rs->by_id = at_xcalloc(n + 1, sizeof(at_rule_t *));
        for (size_t i = 0; i < n; i++) { /* insertion by id */
            size_t j = i;
            while (j > 0 && rs->by_id[j - 1]->id > rs->rules[i]->id) {
                rs->by_id[j] = rs->by_id[j - 1];
                j--;
            }
            rs->by_id[j] = rs->rules[i];
        }
    }
    free(out);
    free(done);
    return rc;
}

/* Every in_segment() of the set names a segment that is in it. */
static int at_ruleset__check_refs(const at_ruleset_t *rs, at_error_t *err)
{
    for (size_t i = 0; i < rs->n; i++) {
        for (int w = 0; w < 4; w++) {
            const int *ids;
            size_t nd;
            at_rule__deps(rs->rules[i], &ids, &nd, w);
            for (size_t d = 0; d < nd; d++) {
                const char *name = rs->names[ids[d]];
                if (!at_ruleset_find(rs, AT_RULE_SEGMENT, name, strlen(name)))
                    return at_error_set(err, AT_ECONFLICT, "segment_in_use", NULL,
                                        "segment '%s' is used by in_segment() of '%s'", name,
                                        rs->rules[i]->name);
            }
        }
    }
    return 0;
}

int at_ruleset_change(const at_ruleset_t *prev, int op, int kind, const char *name, size_t name_len,
                      const char *def, size_t def_len, uint32_t id, uint32_t version,
                      at_ruleset_t **out, at_error_t *err)
{
    if (kind != AT_RULE_SEGMENT && kind != AT_RULE_TRIGGER)
        return at_error_set(err, AT_EINVALID, "invalid_rule", "kind", "unknown rule kind");
    at_ruleset_t *rs = at_ruleset__clone(prev);
    int rc = 0;
    if (op == AT_CHG_PUT) {
        if (rs->n >= AT_RULE_MAX_RULES) {
            rc = at_error_set(err, AT_ETOOBIG, "too_many_rules", NULL, "at most %d rules",
                              AT_RULE_MAX_RULES);
            goto out;
        }
        at_rule_t *r = NULL;
        if ((rc = at_rules__compile(rs, kind, name, name_len, def, def_len, &r, err)) < 0)
            goto out;
        r->id = id;
        r->version = version;
        uint32_t gone;
        at_ruleset__remove(rs, kind, r->name, strlen(r->name), !at_rule__full(r), &gone);
        at_ruleset__past_drop(rs, kind, r->name, strlen(r->name));
        rs->rules[rs->n++] = r;
        if (id >= rs->next_id)
            rs->next_id = id + 1;
    } else if (op == AT_CHG_DELETE) {
        uint32_t last;
        if (!at_ruleset__remove(rs, kind, name, name_len, false, &last)) {
            rc = at_error_set(err, AT_ENOTFOUND, "not_found", NULL, "no %s named '%.*s'",
                              kind == AT_RULE_SEGMENT ? "segment" : "trigger",
                              (int)AT_MIN(name_len, 64u), name);
            goto out;
        }
        at_ruleset__past_set(rs, kind, name, name_len, last);
    } else {
        rc = at_error_set(err, AT_EINVALID, "invalid_rule", "op", "unknown change");
        goto out;
    }
    if ((rc = at_ruleset__check_refs(rs, err)) < 0 || (rc = at_ruleset__order(rs, err)) < 0)
        goto out;
    rs->has_early = false;
    for (size_t i = 0; i < rs->n; i++) {
        at_rule_t *r = rs->rules[i];
        rs->has_early |= r->early || r->early_fire;
        /* rules are shared between sets: recomputed for each set they are in,
         * from the same set content, so every holder agrees */
        r->contested = false;
        for (size_t j = 0; j < rs->n; j++) {
            const at_rule_t *c = rs->rules[j];
            if (c != r && c->kind == r->kind && c->mode == AT_RULE_ACTIVE && c->rollout < 100 &&
                !strcmp(c->name, r->name))
                r->contested = true;
        }
    }
    rs->changes = prev->changes + 1;
    *out = rs;
    rs = NULL;
out:
    at_ruleset_unref(rs);
    return rc;
}

int at_rule_validate(const at_ruleset_t *rs, int kind, const char *def, size_t len, at_error_t *err)
{
    at_ruleset_t *next = NULL;
    int rc = at_ruleset_change(rs, AT_CHG_PUT, kind, NULL, 0, def, len, rs->next_id, 1, &next, err);
    at_ruleset_unref(next);
    return rc;
}

static const char *at_rule__kind_name(int kind)
{
    return kind == AT_RULE_SEGMENT ? "segment" : "trigger";
}

int at_rule_change_encode(at_buf_t *out, int op, int kind, const char *name, size_t name_len,
                          const char *def, size_t def_len, uint32_t id, uint32_t version)
{
    int rc = at_buf_printf(out, "{\"op\":\"%s\",\"kind\":\"%s\",\"name\":",
                           op == AT_CHG_PUT ? "put" : "delete", at_rule__kind_name(kind));
    rc = rc < 0 ? rc : at_buf_json_str(out, name, name_len);
    rc = rc < 0 ? rc : at_buf_printf(out, ",\"id\":%u,\"version\":%u", id, version);
    if (rc >= 0 && op == AT_CHG_PUT) {
        rc = at_buf_puts(out, ",\"def\":");
        rc = rc < 0 ? rc : at_buf_append(out, def, def_len);
    }
    rc = rc < 0 ? rc : at_buf_putc(out, '}');
    return rc < 0 ? rc : 0;
}

static int at_rule__kind_of(const at_json_t *k)
{
    if (!k || k->type != AT_JSON_STRING || k->len != 7)
        return 0;
    return !memcmp(k->s, "segment", 7)   ? AT_RULE_SEGMENT
           : !memcmp(k->s, "trigger", 7) ? AT_RULE_TRIGGER
                                         : 0;
}

/* The "ids" element of a dump (at_ruleset_dump): prev with its next id and
 * deleted names. */
static int at_ruleset__apply_ids(const at_ruleset_t *prev, const at_json_t *v, at_ruleset_t **out,
                                 at_error_t *err)
{
    const at_json_t *next = at_json_get(v, "next_id", 7), *del = at_json_get(v, "deleted", 7);
    int64_t nx = 0;
    if (!next || at_json_i64(next, &nx) < 0 || nx <= 0 || nx > UINT32_MAX ||
        (del && del->type != AT_JSON_ARRAY))
        return at_error_set(err, AT_ECORRUPT, "invalid_control", NULL, "malformed rule ids");
    at_ruleset_t *rs = at_ruleset__clone(prev);
    if ((uint32_t)nx > rs->next_id)
        rs->next_id = (uint32_t)nx;
    for (const at_json_t *d = del ? del->child : NULL; d; d = d->next) {
        const at_json_t *name = at_json_get(d, "name", 4), *ver = at_json_get(d, "version", 7);
        int kind = at_rule__kind_of(at_json_get(d, "kind", 4));
        int64_t vv = 0;
        if (!kind || !name || name->type != AT_JSON_STRING || name->len == 0 ||
            name->len > AT_RULE_NAME_MAX || !ver || at_json_i64(ver, &vv) < 0 || vv <= 0 ||
            vv > UINT32_MAX) {
            at_ruleset_unref(rs);
            return at_error_set(err, AT_ECORRUPT, "invalid_control", NULL,
                                "malformed deleted rule in the rule ids");
        }
        at_ruleset__past_set(rs, kind, name->s, name->len, (uint32_t)vv);
    }
    int rc = at_ruleset__order(rs, err); /* the same order as prev's: it indexes the copy */
    if (rc < 0) {
        at_ruleset_unref(rs);
        return rc;
    }
    rs->has_early = prev->has_early;
    *out = rs;
    return 0;
}

int at_ruleset_apply(const at_ruleset_t *prev, const char *rec, size_t len, at_ruleset_t **out,
                     at_error_t *err)
{
    at_arena_t arena;
    at_arena_init(&arena, 0);
    at_json_t *v = NULL;
    int rc = at_json_parse_all(rec, len, &arena, 64, &v, err);
    if (rc < 0)
        goto out;
    const at_json_t *op = at_json_get(v, "op", 2), *kind = at_json_get(v, "kind", 4);
    if (op && op->type == AT_JSON_STRING && op->len == 3 && !memcmp(op->s, "ids", 3)) {
        rc = at_ruleset__apply_ids(prev, v, out, err);
        goto out;
    }
    const at_json_t *name = at_json_get(v, "name", 4), *id = at_json_get(v, "id", 2);
    const at_json_t *ver = at_json_get(v, "version", 7), *def = at_json_get(v, "def", 3);
    int64_t idv = 0, verv = 0;
    if (!op || op->type != AT_JSON_STRING || !kind || kind->type != AT_JSON_STRING || !name ||
        name->type != AT_JSON_STRING || !id || at_json_i64(id, &idv) < 0 || !ver ||
        at_json_i64(ver, &verv) < 0 || idv <= 0 || idv > UINT32_MAX || verv <= 0 ||
        verv > UINT32_MAX) {
        rc = at_error_set(err, AT_ECORRUPT, "invalid_control", NULL, "malformed control record");
        goto out;
    }
    int o = op->len == 3 && !memcmp(op->s, "put", 3)      ? AT_CHG_PUT
            : op->len == 6 && !memcmp(op->s, "delete", 6) ? AT_CHG_DELETE
                                                          : 0;
    int k = at_rule__kind_of(kind);
    const char *ds = def ? rec + def->off : NULL;
    size_t dl = def ? def->end - def->off : 0;
    rc = at_ruleset_change(prev, o, k, name->s, name->len, ds, dl, (uint32_t)idv, (uint32_t)verv,
                           out, err);
out:
    at_arena_deinit(&arena);
    return rc;
}

void at_ruleset_dump(const at_ruleset_t *rs, at_buf_t *out)
{
    const at_rule_t **byid = at_xcalloc(rs->n + 1, sizeof(const at_rule_t *));
    for (size_t i = 0; i < rs->n; i++) {
        size_t j = i;
        while (j > 0 && byid[j - 1]->id > rs->rules[i]->id) {
            byid[j] = byid[j - 1];
            j--;
        }
        byid[j] = rs->rules[i];
    }
    AT_ASSERT(at_buf_putc(out, '[') == 0);
    for (size_t i = 0; i < rs->n; i++) {
        if (i)
            AT_ASSERT(at_buf_putc(out, ',') == 0);
        const at_rule_t *r = byid[i];
        AT_ASSERT(at_rule_change_encode(out, AT_CHG_PUT, r->kind, r->name, strlen(r->name), r->def,
                                        r->def_len, r->id, r->version) == 0);
    }
    /* what the puts alone do not say: ids given out past the highest in
     * force, and the names deleted (left out when there is nothing, so a
     * set that never lost a rule dumps as it always did) */
    uint32_t top = rs->n ? byid[rs->n - 1]->id : 0;
    if (rs->npast || rs->next_id != top + 1) {
        AT_ASSERT(at_buf_printf(out, "%s{\"op\":\"ids\",\"next_id\":%u,\"deleted\":[",
                                rs->n ? "," : "", rs->next_id) >= 0);
        for (size_t i = 0; i < rs->npast; i++) {
            const at_rule_past_t *p = &rs->past[i];
            AT_ASSERT(at_buf_printf(out, "%s{\"kind\":\"%s\",\"name\":", i ? "," : "",
                                    at_rule__kind_name(p->kind)) >= 0);
            AT_ASSERT(at_buf_json_str(out, p->name, strlen(p->name)) == 0);
            AT_ASSERT(at_buf_printf(out, ",\"version\":%u}", p->version) >= 0);
        }
        AT_ASSERT(at_buf_puts(out, "]}") == 0);
    }
    AT_ASSERT(at_buf_putc(out, ']') == 0);
    free(byid);
}

int at_ruleset_load(const char *json, size_t len, at_ruleset_t **out, at_error_t *err)
{
    at_arena_t arena;
    at_arena_init(&arena, 0);
    at_json_t *v = NULL;
    at_ruleset_t *rs = at_ruleset_new();
    int rc = at_json_parse_all(json, len, &arena, 64, &v, err);
    if (rc == 0 && v->type != AT_JSON_ARRAY)
        rc = at_error_set(err, AT_ECORRUPT, "invalid_control", NULL, "not a rule set dump");
    for (const at_json_t *c = rc == 0 ? v->child : NULL; c; c = c->next) {
        at_ruleset_t *next = NULL;
        if ((rc = at_ruleset_apply(rs, json + c->off, c->end - c->off, &next, err)) < 0)
            break;
        AT_ASSERT(next);
        at_ruleset_unref(rs);
        rs = next;
    }
    at_arena_deinit(&arena);
    if (rc < 0) {
        at_ruleset_unref(rs);
        return rc;
    }
    *out = rs;
    return 0;
}

void at_rule_render(const at_rule_t *r, at_buf_t *out)
{
    AT_ASSERT(at_buf_puts(out, "{\"name\":") == 0);
    AT_ASSERT(at_buf_json_str(out, r->name, strlen(r->name)) == 0);
    AT_ASSERT(at_buf_printf(out,
                            ",\"kind\":\"%s\",\"id\":%u,\"version\":%u,\"mode\":\"%s\","
                            "\"rollout\":%u,\"final_at_once\":%s,\"definition\":",
                            at_rule__kind_name(r->kind), r->id, r->version,
                            r->mode == AT_RULE_SHADOW ? "shadow" : "active", r->rollout,
                            (r->early || r->early_fire) ? "true" : "false") >= 0);
    AT_ASSERT(at_buf_append(out, r->def, r->def_len) == 0);
    AT_ASSERT(at_buf_putc(out, '}') == 0);
}

/* A stable number in [0, 100) for (rule name, user key). */
static unsigned at_rule__bucket(const at_rule_t *r, const char *key, size_t n)
{
    char buf[AT_RULE_NAME_MAX + 1 + 512];
    size_t nl = strlen(r->name), kl = AT_MIN(n, sizeof buf - nl - 1);
    memcpy(buf, r->name, nl);
    buf[nl] = ':';
    memcpy(buf + nl + 1, key, kl);
    return (unsigned)(at_hash64(buf, nl + 1 + kl) % 100);
}

bool at_rule_acts_for(const at_ruleset_t *rs, const at_rule_t *r, const char *key, size_t n)
{
    if (r->mode == AT_RULE_SHADOW)
        return false;
    if (r->rollout < 100)
        return at_rule__bucket(r, key, n) < r->rollout;
    if (!r->contested)
        return true;
    /* the full active version acts unless a partial candidate took the user */
    for (size_t i = 0; i < rs->n; i++) {
        const at_rule_t *c = rs->rules[i];
        if (c != r && c->kind == r->kind && c->mode == AT_RULE_ACTIVE && c->rollout < 100 &&
            !strcmp(c->name, r->name) && at_rule__bucket(c, key, n) < c->rollout)
            return false;
    }
    return true;
}
