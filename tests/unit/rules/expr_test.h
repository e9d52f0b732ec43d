/* expr_test.h - a small expression host for the tests of src/rules and its
 * fuzz target: an event and a profile given as JSON text, fields resolved
 * to slots by canonical path and fetched by walking the trees, affinity
 * and segment membership read from the profile. Not a model of the
 * engine's host (which fetches from decoded events), only a faithful one.
 *
 * The profile JSON: {"counters": {"purchase": 2}, "first_seen": "<rfc3339>",
 * "last_seen": ..., "session": {"start": ..., "events": 3, "pages": 2,
 * "duration": <ms>}, "traits": {...}, "affinity": {"electronics": 0.7},
 * "segments": [1]}. Segments known to the resolver: high_intent = 1,
 * big_spender = 2. A path containing "forbidden" is refused.
 */
#ifndef AT_EXPR_TEST_H
#define AT_EXPR_TEST_H

#include "at_json.h"
#include "at_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XT_MAX_PATHS 512

typedef struct xt_host {
    at_arena_t arena;
    const char *event_src;
    const at_json_t *event;
    const char *profile_src;
    const at_json_t *profile;
    char *paths[XT_MAX_PATHS];
    size_t npaths;
    int64_t now_ms;
} xt_host_t;

static inline void xt_init(xt_host_t *h)
{
    memset(h, 0, sizeof *h);
    at_arena_init(&h->arena, 0);
}

static inline void xt_clear_paths(xt_host_t *h)
{
    for (size_t i = 0; i < h->npaths; i++)
        free(h->paths[i]);
    h->npaths = 0;
}

static inline void xt_deinit(xt_host_t *h)
{
    xt_clear_paths(h);
    at_arena_deinit(&h->arena);
}

/* Sets the event and the profile (either may be NULL); the texts are
 * borrowed and must outlive the evaluations. Returns 0 or -1. */
static inline int xt_set(xt_host_t *h, const char *event, const char *profile)
{
    at_error_t e;
    at_arena_reset(&h->arena);
    h->event = h->profile = NULL;
    h->event_src = event;
    h->profile_src = profile;
    at_json_t *v;
    if (event) {
        if (at_json_parse_all(event, strlen(event), &h->arena, 32, &v, &e) != 0)
            return -1;
        h->event = v;
    }
    if (profile) {
        if (at_json_parse_all(profile, strlen(profile), &h->arena, 32, &v, &e) != 0)
            return -1;
        h->profile = v;
    }
    return 0;
}

static inline int xt_field(void *ud, const char *path, size_t n, char *why, size_t whylen)
{
    xt_host_t *h = ud;
    if (memmem(path, n, "forbidden", 9)) {
        snprintf(why, whylen, "the test host refuses it");
        return -1;
    }
    for (size_t i = 0; i < h->npaths; i++)
        if (strlen(h->paths[i]) == n && memcmp(h->paths[i], path, n) == 0)
            return (int)i;
    if (h->npaths == XT_MAX_PATHS)
        return -1;
    h->paths[h->npaths] = at_xstrndup(path, n);
    return (int)h->npaths++;
}

static inline int xt_segment(void *ud, const char *name, size_t n)
{
    (void)ud;
    if (n == 11 && memcmp(name, "high_intent", 11) == 0)
        return 1;
    if (n == 11 && memcmp(name, "big_spender", 11) == 0)
        return 2;
    return -1;
}

static inline at_expr_env_t xt_env(xt_host_t *h, unsigned flags)
{
    at_expr_env_t env = {.field = xt_field, .segment = xt_segment, .ud = h, .flags = flags};
    return env;
}

static inline void xt_json_val(const char *src, const at_json_t *j, at_val_t *out)
{
    switch (j->type) {
    case AT_JSON_NULL:
        out->type = AT_VAL_NULL;
        break;
    case AT_JSON_TRUE:
    case AT_JSON_FALSE:
        *out = at_val_bool(j->type == AT_JSON_TRUE);
        break;
    case AT_JSON_NUMBER:
        *out = at_val_num(at_json_number(j));
        break;
    case AT_JSON_STRING:
        *out = at_val_str(j->s, j->len);
        break;
    default:
        *out = at_val_json(src + j->off, j->end - j->off);
        break;
    }
}

static inline void xt_time_val(const at_json_t *j, at_val_t *out)
{
    int64_t ms;
    if (j->type == AT_JSON_STRING && at_time_parse_rfc3339(j->s, j->len, &ms) == 0)
        *out = at_val_time(ms);
    else if (j->type == AT_JSON_NUMBER && at_json_i64(j, &ms) == 0)
        *out = at_val_time(ms);
}

static inline const at_json_t *xt_walk(const at_json_t *j, const at_expr_step_t *st, int n)
{
    for (int i = 0; i < n && j; i++) {
        if (st[i].index >= 0) {
            if (j->type != AT_JSON_ARRAY)
                return NULL;
            const at_json_t *c = j->child;
            for (int64_t k = 0; c && k < st[i].index; k++)
                c = c->next;
            j = c;
        } else {
            j = at_json_get(j, st[i].s, st[i].len);
        }
    }
    return j;
}

static inline bool xt_step_is(const at_expr_step_t *st, const char *w)
{
    return st->index < 0 && st->len == strlen(w) && memcmp(st->s, w, st->len) == 0;
}

static inline void xt_fetch(void *ctx, int slot, at_val_t *out)
{
    xt_host_t *h = ctx;
    if (slot < 0 || (size_t)slot >= h->npaths)
        return;
    const char *path = h->paths[slot];
    at_expr_step_t st[40];
    char buf[AT_EXPR_MAX_LEN * 4];
    int n = at_expr_path_split(path, strlen(path), st, 40, buf, sizeof buf);
    if (n <= 0)
        return;
    if (xt_step_is(&st[0], "profile")) {
        const at_json_t *j = xt_walk(h->profile, st + 1, n - 1);
        if (!j)
            return;
        bool is_time =
            n >= 2 && (xt_step_is(&st[1], "first_seen") || xt_step_is(&st[1], "last_seen") ||
                       (n == 3 && xt_step_is(&st[1], "session") && xt_step_is(&st[2], "start")));
        bool is_dur = n == 3 && xt_step_is(&st[1], "session") && xt_step_is(&st[2], "duration");
        if (is_time)
            xt_time_val(j, out);
        else if (is_dur && j->type == AT_JSON_NUMBER)
            *out = at_val_dur((int64_t)at_json_number(j));
        else
            xt_json_val(h->profile_src, j, out);
        return;
    }
    const at_json_t *j = xt_walk(h->event, st, n);
    if (!j)
        return;
    if (n == 1 && (xt_step_is(&st[0], "timestamp") || xt_step_is(&st[0], "received_at")))
        xt_time_val(j, out);
    else
        xt_json_val(h->event_src, j, out);
}

static inline double xt_affinity(void *ctx, const char *cat, size_t n)
{
    xt_host_t *h = ctx;
    const at_json_t *a = h->profile ? at_json_get(h->profile, "affinity", 8) : NULL;
    const at_json_t *v = a ? at_json_get(a, cat, n) : NULL;
    return v && v->type == AT_JSON_NUMBER ? at_json_number(v) : 0;
}

static inline bool xt_in_segment(void *ctx, int id)
{
    xt_host_t *h = ctx;
    const at_json_t *s = h->profile ? at_json_get(h->profile, "segments", 8) : NULL;
    for (const at_json_t *c = s ? s->child : NULL; c; c = c->next)
        if (c->type == AT_JSON_NUMBER && at_json_number(c) == id)
            return true;
    return false;
}

static inline at_expr_rt_t xt_rt(xt_host_t *h)
{
    at_expr_rt_t rt = {.field = xt_fetch,
                       .affinity = xt_affinity,
                       .in_segment = xt_in_segment,
                       .now_ms = h->now_ms,
                       .ctx = h};
    return rt;
}

#endif
