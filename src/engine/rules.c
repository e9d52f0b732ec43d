/* rules.c - the engine's registry of segments and triggers: what the API
 * reads and changes, kept in DATA_DIR/rules.json, and brought to every
 * partition as control records carrying the whole rule set (so replay
 * applies each change at the same point of each partition's log).
 *
 * At start the registry is loaded, the config file's definitions are put
 * over it (a definition that did not change keeps its version; one that
 * left the file is deleted), and the writer appends a control record to
 * every partition whose last one is not the registry's (at_writer__reconcile
 * _rules): a crash between the registry's write and the control records'
 * is repaired there.
 *
 * THREAD SAFETY: rules_mu guards the registry; changes are serialized by it
 * and their control records are queued in the same order.
 */
#include "at_engine.h"
#include "at_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_RULES_FILE_MAX ((size_t)64 << 20)

static int at_rules__kind(const char *k)
{
    return !strcmp(k, "segment") ? AT_RULE_SEGMENT : !strcmp(k, "trigger") ? AT_RULE_TRIGGER : 0;
}

static const char *at_rules__kind_name(int k)
{
    return k == AT_RULE_SEGMENT ? "segment" : "trigger";
}

/* Writes rules.json: {"format":1,"rules":DUMP,"config":["segment:NAME",..]}. */
static int at_rules__save(attune_t *a)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    AT_ASSERT(at_buf_puts(&b, "{\"format\":1,\"rules\":") == 0);
    at_ruleset_dump(a->rules, &b);
    AT_ASSERT(at_buf_puts(&b, ",\"config\":[") == 0);
    for (size_t i = 0; i < a->nconfig_names; i++) {
        if (i)
            AT_ASSERT(at_buf_putc(&b, ',') == 0);
        AT_ASSERT(at_buf_json_str(&b, a->config_names[i], strlen(a->config_names[i])) == 0);
    }
    AT_ASSERT(at_buf_puts(&b, "]}\n") == 0);
    int rc = at_file_write_atomic(a->rules_path, b.data, b.len);
    at_buf_deinit(&b);
    return rc;
}

static void at_rules__rehash(attune_t *a)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    at_ruleset_dump(a->rules, &b);
    a->rules_hash = at_hash64(b.data, b.len);
    at_buf_deinit(&b);
}

char *at_engine__rules_dump(attune_t *a, size_t *len, uint64_t *hash)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    pthread_mutex_lock(&a->rules_mu);
    at_ruleset_dump(a->rules, &b);
    pthread_mutex_unlock(&a->rules_mu);
    *hash = at_hash64(b.data, b.len);
    return at_buf_steal(&b, len);
}

static int at_rules__load(attune_t *a, char *err, size_t errlen)
{
    char *text = NULL;
    size_t n = 0;
    int rc = at_file_read(a->rules_path, AT_RULES_FILE_MAX, &text, &n);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0) {
        (void)snprintf(err, errlen, "%s: %s", a->rules_path, at_strerror(rc));
        return rc;
    }
    at_arena_t arena;
    at_arena_init(&arena, 0);
    at_json_t *v = NULL;
    at_error_t e;
    rc = at_json_parse_all(text, n, &arena, 64, &v, &e);
    const at_json_t *rules = rc == 0 ? at_json_get(v, "rules", 5) : NULL;
    const at_json_t *cfg = rc == 0 ? at_json_get(v, "config", 6) : NULL;
    at_ruleset_t *rs = NULL;
    if (rc == 0 && rules)
        rc = at_ruleset_load(text + rules->off, rules->end - rules->off, &rs, &e);
    else if (rc == 0)
        rc = AT_ECORRUPT;
    if (rc < 0) {
        (void)snprintf(err, errlen, "%s: %s", a->rules_path, e.message);
    } else {
        at_ruleset_unref(a->rules);
        a->rules = rs;
        for (const at_json_t *x = cfg && cfg->type == AT_JSON_ARRAY ? cfg->child : NULL; x;
             x = x->next) {
            if (x->type != AT_JSON_STRING)
                continue;
            a->config_names =
                at_xrealloc(a->config_names, (a->nconfig_names + 1) * sizeof *a->config_names);
            a->config_names[a->nconfig_names++] = at_xstrndup(x->s, x->len);
        }
    }
    at_arena_deinit(&arena);
    free(text);
    return rc;
}

/* Puts def over rs as the next version unless an identical definition is
 * there already. Returns 0 (with *changed), or <0 with err. */
static int at_rules__put(at_ruleset_t **rs, int kind, const char *name, size_t nlen,
                         const char *def, size_t dlen, bool *changed, const at_rule_t **out,
                         at_error_t *err)
{
    at_ruleset_t *next = NULL;
    uint32_t id = (*rs)->next_id;
    int rc = at_ruleset_change(*rs, AT_CHG_PUT, kind, name, nlen, def, dlen, id, 1, &next, err);
    if (rc < 0)
        return rc;
    const at_rule_t *nr = at_ruleset_by_id(next, id);
    /* the same canonical definition as the newest version: nothing to do */
    const at_rule_t *old = at_ruleset_find(*rs, kind, nr->name, strlen(nr->name));
    if (old && old->def_len == nr->def_len && !memcmp(old->def, nr->def, nr->def_len)) {
        at_ruleset_unref(next);
        *changed = false;
        if (out)
            *out = old;
        return 0;
    }
    /* with its version: the change again, numbered */
    uint32_t ver = at_ruleset_next_version(*rs, kind, nr->name, strlen(nr->name));
    at_ruleset_unref(next);
    next = NULL;
    rc = at_ruleset_change(*rs, AT_CHG_PUT, kind, name, nlen, def, dlen, id, ver, &next, err);
    if (rc < 0)
        return rc;
    at_ruleset_unref(*rs);
    *rs = next;
    *changed = true;
    if (out)
        *out = at_ruleset_by_id(*rs, id);
    return 0;
}

/* "having: 1:7: reason" inside the definition at field f of a config
 * rule: the file's line and column. */
static void at_rules__config_error(const at_config_rule_t *cr, const char *what, size_t index,
                                   const at_error_t *e, char *err, size_t errlen)
{
    int line = cr->line, col = cr->col;
    const char *msg = e->message;
    for (int i = 0; i < cr->nfields; i++) {
        if (!e->field[0] || strcmp(cr->fields[i].name, e->field) != 0)
            continue;
        line = cr->fields[i].line;
        col = cr->fields[i].col;
        /* the expression's own "L:C: " after "field: " */
        size_t fl = strlen(e->field);
        int el = 0, ec = 0, used = 0;
        if (!strncmp(msg, e->field, fl) && msg[fl] == ':' &&
            sscanf(msg + fl + 1, " %d:%d: %n", &el, &ec, &used) == 2 && used > 0) {
            if (cr->fields[i].block)
                line += el, col = ec;
            else if (el == 1)
                col += ec - 1;
            else
                line += el - 1, col = ec;
            msg = msg + fl + 1 + used;
        }
        break;
    }
    (void)snprintf(err, errlen, "%d:%d: %s[%zu]%s%s: %s", line, col, what, index,
                   e->field[0] ? "." : "", e->field, msg);
}

/* Puts the config file's definitions over the registry, in passes so that
 * a segment may refer (in_segment) to one defined later in the file. */
static int at_rules__apply_config(attune_t *a, bool *changed, char *err, size_t errlen)
{
    const at_config_rules_t *lists[2] = {&a->cfg.segments, &a->cfg.triggers};
    const int kinds[2] = {AT_RULE_SEGMENT, AT_RULE_TRIGGER};
    size_t total = a->cfg.segments.n + a->cfg.triggers.n;
    bool *done = at_xcalloc(total + 1, sizeof *done);
    char **names = at_xcalloc(total + 1, sizeof *names);
    size_t ndone = 0;
    int rc = 0;
    for (bool progress = true; progress && ndone < total;) {
        progress = false;
        size_t k = 0;
        for (int l = 0; l < 2; l++) {
            for (size_t i = 0; i < lists[l]->n; i++, k++) {
                if (done[k])
                    continue;
                const at_config_rule_t *cr = &lists[l]->v[i];
                at_error_t e = {0};
                bool ch = false;
                const at_rule_t *r = NULL;
                if (at_rules__put(&a->rules, kinds[l], NULL, 0, cr->json, strlen(cr->json), &ch, &r,
                                  &e) == 0) {
                    done[k] = progress = true;
                    ndone++;
                    *changed |= ch;
                    size_t nl = strlen(r->name) + 9;
                    names[k] = at_xmalloc(nl);
                    (void)snprintf(names[k], nl, "%s:%s", at_rules__kind_name(kinds[l]), r->name);
                }
            }
        }
    }
    if (ndone < total) { /* report the first that still fails */
        size_t k = 0;
        for (int l = 0; l < 2 && rc == 0; l++) {
            for (size_t i = 0; i < lists[l]->n && rc == 0; i++, k++) {
                if (done[k])
                    continue;
                const at_config_rule_t *cr = &lists[l]->v[i];
                at_error_t e = {0};
                bool ch;
                rc = at_rules__put(&a->rules, kinds[l], NULL, 0, cr->json, strlen(cr->json), &ch,
                                   NULL, &e);
                if (rc < 0)
                    at_rules__config_error(cr, l ? "triggers" : "segments", i, &e, err, errlen);
            }
        }
    }
    if (rc == 0) {
        /* what the file defined before and no longer does goes */
        for (size_t i = 0; i < a->nconfig_names; i++) {
            bool still = false;
            for (size_t k = 0; k < total && !still; k++)
                still = names[k] && !strcmp(names[k], a->config_names[i]);
            char *colon = strchr(a->config_names[i], ':');
            if (still || !colon)
                continue;
            *colon = '\0';
            int kind = at_rules__kind(a->config_names[i]);
            at_ruleset_t *next = NULL;
            at_error_t e;
            if (kind && at_ruleset_change(a->rules, AT_CHG_DELETE, kind, colon + 1,
                                          strlen(colon + 1), NULL, 0, 0, 0, &next, &e) == 0) {
                at_ruleset_unref(a->rules);
                a->rules = next;
                *changed = true;
            }
            *colon = ':';
        }
        for (size_t i = 0; i < a->nconfig_names; i++)
            free(a->config_names[i]);
        free(a->config_names);
        a->config_names = at_xcalloc(total + 1, sizeof *a->config_names);
        a->nconfig_names = 0;
        for (size_t k = 0; k < total; k++)
            if (names[k])
                a->config_names[a->nconfig_names++] = at_xstrdup(names[k]);
    }
    for (size_t k = 0; k < total; k++)
        free(names[k]);
    free(names);
    free(done);
    return rc;
}

int at_engine__rules_open(attune_t *a, char *err, size_t errlen)
{
    pthread_mutex_init(&a->rules_mu, NULL);
    a->rules = at_ruleset_new();
    size_t n = strlen(a->cfg.data_dir) + 16;
    a->rules_path = at_xmalloc(n);
    (void)snprintf(a->rules_path, n, "%s/rules.json", a->cfg.data_dir);
    int rc = at_rules__load(a, err, errlen);
    bool changed = false;
    if (rc == 0)
        rc = at_rules__apply_config(a, &changed, err, errlen);
    if (rc == 0 && changed && (rc = at_rules__save(a)) < 0)
        (void)snprintf(err, errlen, "%s: %s", a->rules_path, at_strerror(rc));
    at_rules__rehash(a);
    return rc;
}

void at_engine__rules_close(attune_t *a)
{
    at_ruleset_unref(a->rules);
    a->rules = NULL;
    for (size_t i = 0; i < a->nconfig_names; i++)
        free(a->config_names[i]);
    free(a->config_names);
    free(a->rules_path);
    pthread_mutex_destroy(&a->rules_mu);
}

int attune_check_rules(const struct at_config *cfg, char *err, size_t errlen)
{
    attune_t tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.cfg = *cfg;
    tmp.rules = at_ruleset_new();
    bool changed = false;
    int rc = at_rules__apply_config(&tmp, &changed, err, errlen);
    at_placements_t *ps = NULL;
    if (rc == 0 && (rc = at_placements_new(&cfg->placements, &ps, err, errlen)) == 0)
        at_placements_free(ps);
    at_ruleset_unref(tmp.rules);
    for (size_t i = 0; i < tmp.nconfig_names; i++)
        free(tmp.config_names[i]);
    free(tmp.config_names);
    return rc;
}

/* ---- the API ------------------------------------------------------------------ */

typedef struct at_rule_change_ctx {
    attune_done_cb cb;
    void *ud;
    char *json;
    size_t len;
} at_rule_change_ctx_t;

static void at_rules__changed(void *ud, int status)
{
    at_rule_change_ctx_t *c = ud;
    c->cb(c->ud, status, status == 0 ? c->json : NULL, status == 0 ? c->len : 0);
    free(c->json);
    free(c);
}

/* Makes the registry's new set durable in rules.json, then queues the
 * control records; the answer goes out once they are durable. Under
 * rules_mu. */
static int at_rules__publish(attune_t *a, at_ruleset_t *next, char *answer, size_t alen,
                             attune_done_cb cb, void *ud)
{
    at_ruleset_t *prev = a->rules;
    a->rules = next;
    int rc = at_rules__save(a);
    if (rc < 0) {
        a->rules = prev;
        at_ruleset_unref(next);
        free(answer);
        return rc;
    }
    at_ruleset_unref(prev);
    at_rules__rehash(a);
    at_buf_t dump;
    at_buf_init(&dump, 0);
    at_ruleset_dump(a->rules, &dump);
    at_rec_t *recs = at_xcalloc((size_t)a->partitions, sizeof *recs);
    int64_t now = at_time_now_ms();
    for (int p = 0; p < a->partitions; p++)
        recs[p] = (at_rec_t){.partition = p,
                             .type = AT_REC_CONTROL,
                             .version = 1,
                             .recv_ms = now,
                             .ts_ms = now,
                             .key = "",
                             .id = "",
                             .value = dump.data,
                             .value_len = (uint32_t)dump.len};
    at_ijob_t *j = at_engine__ijob(recs, (size_t)a->partitions, -1);
    free(recs);
    at_buf_deinit(&dump);
    at_rule_change_ctx_t *c = at_xcalloc(1, sizeof *c);
    c->cb = cb;
    c->ud = ud;
    c->json = answer;
    c->len = alen;
    j->done = at_rules__changed;
    j->ud = c;
    at_engine__append(a, j);
    return 0;
}

static void at_engine__to_error(attune_error_t *dst, const at_error_t *src)
{
    if (dst)
        memcpy(dst, src, sizeof *dst);
}

/* The error of a change that rules.json could not take (docs/api.md:
 * disk_full when the disk is full, internal otherwise). Returns rc. */
static int at_rules__save_error(const attune_t *a, int rc, attune_error_t *err)
{
    at_error_t e = {0};
    at_error_set(&e, rc, rc == -ENOSPC ? "disk_full" : "internal", NULL, "%s: %s", a->rules_path,
                 at_strerror(rc));
    at_engine__to_error(err, &e);
    return rc;
}

int attune_rule_put(attune_t *a, int kind, const char *name, size_t nlen, const char *def,
                    size_t len, attune_done_cb cb, void *ud, attune_error_t *err)
{
    at_error_t e = {0};
    if (kind != ATTUNE_SEGMENT && kind != ATTUNE_TRIGGER)
        return AT_EINVALID;
    pthread_mutex_lock(&a->rules_mu);
    at_ruleset_t *next = a->rules;
    at_ruleset_ref(next);
    bool changed = false;
    const at_rule_t *r = NULL;
    int rc = at_rules__put(&next, kind, name, nlen, def, len, &changed, &r, &e);
    if (rc < 0) {
        pthread_mutex_unlock(&a->rules_mu);
        at_ruleset_unref(next);
        at_engine__to_error(err, &e);
        return rc;
    }
    at_buf_t b;
    at_buf_init(&b, 0);
    at_rule_render(r, &b);
    size_t alen;
    char *answer = at_buf_steal(&b, &alen);
    if (!changed) { /* the same definition: answered at once */
        pthread_mutex_unlock(&a->rules_mu);
        at_ruleset_unref(next);
        cb(ud, 0, answer, alen);
        free(answer);
        return 0;
    }
    rc = at_rules__publish(a, next, answer, alen, cb, ud);
    pthread_mutex_unlock(&a->rules_mu);
    return rc < 0 ? at_rules__save_error(a, rc, err) : 0;
}

int attune_rule_delete(attune_t *a, int kind, const char *name, size_t nlen, attune_done_cb cb,
                       void *ud, attune_error_t *err)
{
    at_error_t e = {0};
    pthread_mutex_lock(&a->rules_mu);
    at_ruleset_t *next = NULL;
    int rc = at_ruleset_change(a->rules, AT_CHG_DELETE, kind, name, nlen, NULL, 0, 0, 0, &next, &e);
    if (rc < 0) {
        pthread_mutex_unlock(&a->rules_mu);
        at_engine__to_error(err, &e);
        return rc;
    }
    at_buf_t b;
    at_buf_init(&b, 0);
    AT_ASSERT(at_buf_puts(&b, "{\"deleted\":") == 0);
    AT_ASSERT(at_buf_json_str(&b, name, nlen) == 0);
    AT_ASSERT(at_buf_putc(&b, '}') == 0);
    size_t alen;
    char *answer = at_buf_steal(&b, &alen);
    rc = at_rules__publish(a, next, answer, alen, cb, ud);
    pthread_mutex_unlock(&a->rules_mu);
    return rc < 0 ? at_rules__save_error(a, rc, err) : 0;
}

static void at_rules__render_one(attune_t *a, const at_rule_t *r, at_buf_t *b)
{
    size_t at = b->len;
    at_rule_render(r, b);
    /* insert the member count before the closing brace */
    AT_ASSERT(b->len > at && b->data[b->len - 1] == '}');
    b->len--;
    if (r->kind == AT_RULE_SEGMENT && a->streams)
        AT_ASSERT(at_buf_printf(b, ",\"members\":%lld}",
                                (long long)at_streams_members_count(a->streams, r->id)) >= 0);
    else
        AT_ASSERT(at_buf_putc(b, '}') == 0);
}

int attune_rule_get(attune_t *a, int kind, const char *name, size_t nlen, char **json, size_t *len)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    pthread_mutex_lock(&a->rules_mu);
    const at_rule_t *newest = at_ruleset_find(a->rules, kind, name, nlen);
    if (!newest) {
        pthread_mutex_unlock(&a->rules_mu);
        at_buf_deinit(&b);
        return AT_ENOTFOUND;
    }
    /* the newest version, with the others in force (an active one and a
     * candidate) listed */
    at_rules__render_one(a, newest, &b);
    b.len--;
    AT_ASSERT(at_buf_puts(&b, ",\"versions\":[") == 0);
    bool first = true;
    for (size_t i = 0; i < a->rules->n; i++) {
        const at_rule_t *r = a->rules->rules[i];
        if (r->kind != kind || strlen(r->name) != nlen || memcmp(r->name, name, nlen) != 0)
            continue;
        if (!first)
            AT_ASSERT(at_buf_putc(&b, ',') == 0);
        first = false;
        at_rules__render_one(a, r, &b);
    }
    AT_ASSERT(at_buf_puts(&b, "]}") == 0);
    pthread_mutex_unlock(&a->rules_mu);
    *json = at_buf_steal(&b, len);
    return 0;
}

int attune_rule_list(attune_t *a, int kind, char **json, size_t *len)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    AT_ASSERT(at_buf_printf(&b, "{\"%ss\":[", kind == ATTUNE_SEGMENT ? "segment" : "trigger") >= 0);
    pthread_mutex_lock(&a->rules_mu);
    bool first = true;
    for (size_t i = 0; i < a->rules->n; i++) {
        const at_rule_t *r = a->rules->rules[i];
        if (r->kind != kind)
            continue;
        if (!first)
            AT_ASSERT(at_buf_putc(&b, ',') == 0);
        first = false;
        at_rules__render_one(a, r, &b);
    }
    pthread_mutex_unlock(&a->rules_mu);
    AT_ASSERT(at_buf_puts(&b, "]}") == 0);
    *json = at_buf_steal(&b, len);
    return 0;
}
