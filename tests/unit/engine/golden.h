/* golden.h - a small driver for the partition processor: feeds it records
 * described in a text script and collects its outputs, one line each.
 * Used by the golden tests (tests/golden/rules/NAME.test) and the property
 * tests. A script, one command per line ('#' starts a comment):
 *
 *   partitions N                 (before anything else; default 1)
 *   lateness 5s                  allowed lateness (default 5s)
 *   gap 30m                      session gap (default 30m)
 *   ttl 30d                      state ttl (default none)
 *   segment {JSON definition}    a control record putting a segment (at this point)
 *   trigger {JSON definition}
 *   delete segment NAME
 *   event KEY TIME TYPE [JSON]   an event of user KEY (u:.. or a:..) at TIME,
 *                                [JSON]: more members (item_id, category,
 *                                context, properties, anonymous_id, recv)
 *   tick TIME                    a tick raising the watermark's trusted time to TIME
 *   expect LINE                  the next output must be LINE
 *   expect-none                  no output may be left unmatched here
 *   expect-segments KEY [S@V..]  the user's profile lists exactly these
 *                                memberships (segment name @ version), in
 *                                its order; none when the list is empty
 *   expect-fires KEY [T@V..]     the user's recent fires, newest first,
 *                                each followed by its action's JSON when
 *                                it has one (a name null: "null"; without
 *                                a version: "T" alone)
 *   expect-members SEG [KEY..]   the segment's member list, sorted
 *   expect-count SEG@V N         the member count of that version
 *   digest                       (for the harness: record the digest)
 *
 * TIME is a duration after the base instant 2026-04-27T00:00:00Z ("90s",
 * "1h30m", "0") or an RFC 3339 time. An output line reads
 *   enter|exit|fire RULE USER [group=G] at=TIME [early] [reason=R]
 * with TIME written as a duration after the base.
 */
#ifndef GOLDEN_H
#define GOLDEN_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "at_config.h"
#include "at_core.h"
#include "at_json.h"
#include "proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN_BASE 1777248000000LL /* 2026-04-27T00:00:00Z */
#define GOLDEN_MAXP 16

typedef struct golden_rec {
    at_rec_t r;
    char *key, *id, *value;
} golden_rec_t;

typedef struct golden_log {
    golden_rec_t *v;
    size_t n, cap, done;
} golden_log_t;

typedef struct golden {
    int partitions;
    at_proc_cfg_t cfg;
    at_proc_t *pr[GOLDEN_MAXP];
    golden_log_t log[GOLDEN_MAXP];
    at_ruleset_t *rs; /* the set the script built so far */
    uint32_t next_id;
    char **out; /* output lines not yet matched */
    size_t nout, capout, matched;
    char **all; /* every output line */
    size_t nall, capall;
    int eventno;
    char err[512];
} golden_t;

static inline void golden_fmt_time(int64_t ms, char *out, size_t n)
{
    int64_t d = ms - GOLDEN_BASE;
    if (d == 0) {
        snprintf(out, n, "0");
        return;
    }
    char buf[64] = "";
    size_t k = 0;
    if (d < 0) {
        buf[k++] = '-';
        d = -d;
    }
    static const struct {
        int64_t ms;
        const char *u;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    for (size_t i = 0; i < 5; i++) {
        if (d >= units[i].ms) {
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%lld%s", (long long)(d / units[i].ms),
                                  units[i].u);
            d %= units[i].ms;
        }
    }
    snprintf(out, n, "%s", buf);
}

/* "90s", "1h30m", "0", "-5s", or RFC 3339 -> ms since the epoch. */
static inline int golden_parse_time(const char *s, int64_t *out)
{
    if (strchr(s, 'T'))
        return at_time_parse_rfc3339(s, strlen(s), out);
    int neg = *s == '-';
    s += neg;
    int64_t total = 0;
    if (!strcmp(s, "0")) {
        *out = GOLDEN_BASE;
        return 0;
    }
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s)
            return -1;
        int64_t unit;
        if (!strncmp(end, "ms", 2)) {
            unit = 1;
            end += 2;
        } else if (*end == 's') {
            unit = 1000;
            end++;
        } else if (*end == 'm') {
            unit = 60000;
            end++;
        } else if (*end == 'h') {
            unit = 3600000;
            end++;
        } else if (*end == 'd') {
            unit = 86400000;
            end++;
        } else if (*end == 'w') {
            unit = 7 * 86400000LL;
            end++;
        } else {
            return -1;
        }
        total += v * unit;
        s = end;
    }
    *out = GOLDEN_BASE + (neg ? -total : total);
    return 0;
}

static inline void golden_push_line(char ***v, size_t *n, size_t *cap, char *line)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *v = realloc(*v, *cap * sizeof **v);
        assert_non_null(*v);
    }
    (*v)[(*n)++] = line;
}

static inline void golden_output(void *ud, const at_proc_out_t *po)
{
    golden_t *g = ud;
    const at_rule_out_t *o = po->o;
    char at[64], line[512];
    golden_fmt_time(o->at, at, sizeof at);
    const char *kind = o->kind == AT_OUT_ENTER ? "enter" : o->kind == AT_OUT_EXIT ? "exit" : "fire";
    int n =
        snprintf(line, sizeof line, "%s %s %.*s", kind, o->rule->name, (int)po->key_len, po->key);
    if (o->rule->group && o->kind != AT_OUT_FIRE)
        n += snprintf(line + n, sizeof line - (size_t)n, " group=%.*s", (int)o->group.n,
                      o->group.s ? o->group.s : "");
    n += snprintf(line + n, sizeof line - (size_t)n, " at=%s", at);
    if (o->early)
        n += snprintf(line + n, sizeof line - (size_t)n, " early");
    if (o->reason)
        snprintf(line + n, sizeof line - (size_t)n, " reason=%s", o->reason);
    golden_push_line(&g->out, &g->nout, &g->capout, strdup(line));
    golden_push_line(&g->all, &g->nall, &g->capall, strdup(line));
}

static inline void golden_append(golden_t *g, const at_rec_t *r)
{
    golden_log_t *l = &g->log[r->partition];
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        assert_non_null(l->v);
    }
    golden_rec_t *x = &l->v[l->n];
    x->r = *r;
    x->key = strndup(r->key, r->key_len);
    x->id = strndup(r->id ? r->id : "", r->id_len);
    x->value = strndup(r->value ? r->value : "", r->value_len);
    x->r.key = x->key;
    x->r.id = x->id;
    x->r.value = x->value;
    x->r.offset = (int64_t)l->n;
    l->n++;
}

static inline void golden_send(void *ud, const at_rec_t *rec)
{
    golden_append(ud, rec);
}

/* Processes every appended record, partition by partition, until none is
 * left (records sent between partitions are processed too). */
static inline void golden_run(golden_t *g)
{
    bool any = true;
    while (any) {
        any = false;
        for (int p = 0; p < g->partitions; p++) {
            golden_log_t *l = &g->log[p];
            while (l->done < l->n) {
                golden_rec_t *x = &l->v[l->done++];
                at_proc_record(g->pr[p], &x->r);
                any = true;
            }
        }
    }
}

static inline void golden_init(golden_t *g, int partitions, int64_t lateness, int64_t gap,
                               int64_t ttl)
{
    memset(g, 0, sizeof *g);
    g->partitions = partitions;
    at_profile_cfg_defaults(&g->cfg.profile);
    g->cfg.profile.session_gap_ms = gap;
    g->cfg.lateness_ms = lateness;
    g->cfg.ttl_ms = ttl;
    g->cfg.partitions = partitions;
    at_proc_ops_t ops = {golden_output, golden_send};
    for (int p = 0; p < partitions; p++)
        g->pr[p] = at_proc_new(p, &g->cfg, &ops, g);
    g->rs = at_ruleset_new();
    g->next_id = 1;
}

static inline void golden_free(golden_t *g)
{
    for (int p = 0; p < g->partitions; p++) {
        at_proc_free(g->pr[p]);
        for (size_t i = 0; i < g->log[p].n; i++) {
            free(g->log[p].v[i].key);
            free(g->log[p].v[i].id);
            free(g->log[p].v[i].value);
        }
        free(g->log[p].v);
    }
    for (size_t i = 0; i < g->nall; i++)
        free(g->all[i]);
    for (size_t i = 0; i < g->nout; i++)
        free(g->out[i]);
    free(g->all);
    free(g->out);
    at_ruleset_unref(g->rs);
}

/* A control record carrying the script's current rule set, to every partition. */
static inline void golden_control(golden_t *g)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    at_ruleset_dump(g->rs, &b);
    for (int p = 0; p < g->partitions; p++) {
        at_rec_t r = {.partition = p,
                      .type = AT_REC_CONTROL,
                      .key = "",
                      .value = b.data,
                      .value_len = (uint32_t)b.len,
                      .id = ""};
        golden_append(g, &r);
    }
    at_buf_deinit(&b);
}

static inline int golden_rule(golden_t *g, int kind, const char *json)
{
    at_ruleset_t *next = NULL;
    at_error_t e;
    memset(&e, 0, sizeof e);
    at_arena_t a;
    at_arena_init(&a, 0);
    at_json_t *v = NULL;
    uint32_t version = 1;
    if (at_json_parse_all(json, strlen(json), &a, 32, &v, &e) == 0) {
        const at_json_t *nm = at_json_get(v, "name", 4);
        if (nm && nm->type == AT_JSON_STRING)
            version = at_ruleset_next_version(g->rs, kind, nm->s, nm->len);
    }
    at_arena_deinit(&a);
    int rc = at_ruleset_change(g->rs, AT_CHG_PUT, kind, NULL, 0, json, strlen(json), g->next_id++,
                               version, &next, &e);
    if (rc < 0) {
        snprintf(g->err, sizeof g->err, "rule refused: %s (%s)", e.message, e.field);
        return rc;
    }
    at_ruleset_unref(g->rs);
    g->rs = next;
    golden_control(g);
    return 0;
}

/* An event record, as ingestion would have made it canonical. */
static inline int golden_event(golden_t *g, const char *key, int64_t ts, const char *type,
                               const char *extra)
{
    char id[32];
    snprintf(id, sizeof id, "e%06d", ++g->eventno);
    int64_t recv = ts;
    at_arena_t a;
    at_arena_init(&a, 0);
    at_json_t *x = NULL;
    at_error_t e;
    if (extra && *extra && at_json_parse_all(extra, strlen(extra), &a, 32, &x, &e) < 0) {
        snprintf(g->err, sizeof g->err, "bad event JSON: %s", e.message);
        at_arena_deinit(&a);
        return -1;
    }
    at_buf_t b;
    at_buf_init(&b, 0);
    at_buf_puts(&b, "{\"event_id\":");
    at_buf_json_str(&b, id, strlen(id));
    at_buf_puts(&b, ",\"type\":");
    at_buf_json_str(&b, type, strlen(type));
    bool user = key[0] == 'u';
    at_buf_puts(&b, user ? ",\"user_id\":" : ",\"anonymous_id\":");
    at_buf_json_str(&b, key + 2, strlen(key + 2));
    const at_json_t *anon = x ? at_json_get(x, "anonymous_id", 12) : NULL;
    if (anon && anon->type == AT_JSON_STRING) {
        at_buf_puts(&b, ",\"anonymous_id\":");
        at_buf_json_str(&b, anon->s, anon->len);
    }
    const at_json_t *rv = x ? at_json_get(x, "recv", 4) : NULL;
    if (rv && rv->type == AT_JSON_STRING) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%.*s", (int)rv->len, rv->s);
        int64_t r;
        if (golden_parse_time(tmp, &r) == 0)
            recv = r;
    }
    static const char *const fields[] = {"item_id", "category", "session_id"};
    for (size_t i = 0; i < 3; i++) {
        const at_json_t *v = x ? at_json_get(x, fields[i], strlen(fields[i])) : NULL;
        if (v) {
            at_buf_printf(&b, ",\"%s\":", fields[i]);
            at_json_w_value(&b, v);
        }
    }
    char t[40];
    at_time_format_rfc3339(ts, t);
    at_buf_printf(&b, ",\"timestamp\":\"%s\",\"ts\":%lld,\"received_at\":%lld", t, (long long)ts,
                  (long long)recv);
    static const char *const objs[] = {"context", "properties"};
    for (size_t i = 0; i < 2; i++) {
        const at_json_t *v = x ? at_json_get(x, objs[i], strlen(objs[i])) : NULL;
        if (v) {
            at_buf_printf(&b, ",\"%s\":", objs[i]);
            at_json_w_value(&b, v);
        }
    }
    at_buf_putc(&b, '}');
    int p = at_partition_of(key, strlen(key), g->partitions);
    at_rec_t r = {.partition = p,
                  .type = AT_REC_EVENT,
                  .version = 1,
                  .recv_ms = recv,
                  .ts_ms = ts,
                  .key = key,
                  .key_len = (uint32_t)strlen(key),
                  .id = id,
                  .id_len = (uint32_t)strlen(id),
                  .value = b.data,
                  .value_len = (uint32_t)b.len};
    golden_append(g, &r);
    if (!strcmp(type, "identify") && anon && user) {
        char akey[256], mv[512];
        snprintf(akey, sizeof akey, "a:%.*s", (int)anon->len, anon->s);
        int mn = snprintf(mv, sizeof mv, "{\"user\":\"%s\"}", key);
        at_rec_t m = {.partition = at_partition_of(akey, strlen(akey), g->partitions),
                      .type = AT_REC_MERGE,
                      .version = 1,
                      .recv_ms = recv,
                      .ts_ms = ts,
                      .key = akey,
                      .key_len = (uint32_t)strlen(akey),
                      .id = id,
                      .id_len = (uint32_t)strlen(id),
                      .value = mv,
                      .value_len = (uint32_t)mn};
        golden_append(g, &m);
    }
    at_buf_deinit(&b);
    at_arena_deinit(&a);
    return 0;
}

/* The user's "segments" or "triggers" (what) as "NAME@VERSION" words
 * separated by spaces into out (owned by the caller, at least 4096 bytes),
 * following an alias. Returns 0, or -1 with g->err set. */
static inline int golden_user_list(golden_t *g, const char *key, const char *what, char *out,
                                   size_t cap)
{
    out[0] = '\0';
    int p = at_partition_of(key, strlen(key), g->partitions);
    at_pstr_t target;
    char tk[512];
    if (at_proc_alias(g->pr[p], key, strlen(key), &target)) {
        snprintf(tk, sizeof tk, "%.*s", (int)target.n, target.s);
        key = tk;
        p = at_partition_of(key, strlen(key), g->partitions);
    }
    at_buf_t b;
    at_buf_init(&b, 0);
    int rc = at_proc_render_user(g->pr[p], key, strlen(key), AT_PROC_R_SEGMENTS, &b);
    if (rc == AT_ENOTFOUND) {
        at_buf_deinit(&b);
        return 0; /* no state: in nothing, fired nothing */
    }
    at_arena_t a;
    at_arena_init(&a, 0);
    at_json_t *v = NULL;
    at_error_t e;
    const at_json_t *list = NULL;
    if (rc == 0 && at_json_parse_all(b.data, b.len, &a, 32, &v, &e) == 0)
        list = at_json_get(v, what, strlen(what));
    if (!list || list->type != AT_JSON_ARRAY) {
        snprintf(g->err, sizeof g->err, "bad user answer: %.*s", (int)AT_MIN(b.len, 300u), b.data);
        rc = -1;
    }
    size_t n = 0;
    for (const at_json_t *x = list ? list->child : NULL; x && rc == 0; x = x->next) {
        const at_json_t *nm = at_json_get(x, "name", 4), *ver = at_json_get(x, "version", 7);
        int64_t vv = 0;
        n += (size_t)snprintf(out + n, cap - n, "%s", n ? " " : "");
        if (nm && nm->type == AT_JSON_STRING)
            n += (size_t)snprintf(out + n, cap - n, "%.*s", (int)nm->len, nm->s);
        else
            n += (size_t)snprintf(out + n, cap - n, "null");
        if (ver && at_json_i64(ver, &vv) == 0)
            n += (size_t)snprintf(out + n, cap - n, "@%lld", (long long)vv);
        const at_json_t *act = at_json_get(x, "action", 6);
        if (act && n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%.*s", (int)(act->end - act->off),
                                  b.data + act->off);
        if (n >= cap)
            break;
    }
    at_arena_deinit(&a);
    at_buf_deinit(&b);
    return rc;
}

static inline int golden_cmp_words(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The members of segment name over every partition, sorted, as words
 * separated by spaces into out (at least 4096 bytes). */
static inline void golden_members(golden_t *g, const char *name, char *out, size_t cap)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    at_buf_putc(&b, '[');
    bool first = true;
    for (int p = 0; p < g->partitions; p++) {
        uint32_t cursor = 0;
        bool more = false;
        if (at_proc_members_page(g->pr[p], name, strlen(name), &cursor, 1 << 20, first, &b, &more))
            first = false;
    }
    at_buf_putc(&b, ']');
    at_arena_t a;
    at_arena_init(&a, 0);
    at_json_t *v = NULL;
    at_error_t e;
    char *words[1024];
    size_t nw = 0;
    assert_int_equal(at_json_parse_all(b.data, b.len, &a, 8, &v, &e), 0);
    for (const at_json_t *x = v->child; x && nw < 1024; x = x->next)
        words[nw++] = strndup(x->s, x->len);
    qsort(words, nw, sizeof *words, golden_cmp_words);
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < nw; i++) {
        if (n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? " " : "", words[i]);
        free(words[i]);
    }
    at_arena_deinit(&a);
    at_buf_deinit(&b);
}

/* The member count of version `version` of segment name, over every
 * partition; -1 when the set has no such version. */
static inline int64_t golden_count(golden_t *g, const char *name, uint32_t version)
{
    for (size_t i = 0; i < g->rs->n; i++) {
        const at_rule_t *r = g->rs->rules[i];
        if (r->kind != AT_RULE_SEGMENT || strcmp(r->name, name) != 0 || r->version != version)
            continue;
        int64_t n = 0;
        for (int p = 0; p < g->partitions; p++)
            n += at_proc_members(g->pr[p], r->id);
        return n;
    }
    return -1;
}

static inline void golden_tick(golden_t *g, int64_t t)
{
    for (int p = 0; p < g->partitions; p++) {
        at_rec_t r = {.partition = p,
                      .type = AT_REC_TICK,
                      .version = 1,
                      .recv_ms = t,
                      .ts_ms = t,
                      .key = "",
                      .id = "",
                      .value = ""};
        golden_append(g, &r);
    }
}

#endif
