/* proc_ident.c - identity across partitions (DESIGN.md §6) and erasure.
 *
 * identify links an anonymous key to a user key. The writer appends a
 * merge record to the anonymous key's partition; there (at_proc__merge)
 * the anonymous state and pending events leave as one handoff record for
 * the user's partition, and the key becomes an alias, so its later events
 * are re-appended there as forwarded records. Both carry their source
 * position (partition, offset); the receiver keeps the highest one seen
 * per source partition and drops what is not above it, so a source that
 * replays after a crash and sends again changes nothing.
 *
 * Values:
 *   merge      {"user": USER_KEY}
 *   handoff    {"src": [P, OFFSET], "from": ANON_KEY, "state": BASE64 of the
 *              anonymous user's value}
 *
 * The anonymous user's pending events are applied to its state at the
 * merge, in (ts, id) order, before it leaves: its timeline ends there. Its
 * memberships end with exits (reason "merged"); the user's partition
 * merges the window state and evaluates the segments again.
 *   forwarded  {"src": [P, OFFSET], "event": EVENT}
 *
 * THREAD SAFETY: the partition's thread.
 */
#include "proc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char at_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void at_proc__b64(at_buf_t *b, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {at_b64[v >> 18 & 63], at_b64[v >> 12 & 63],
                     i + 1 < n ? at_b64[v >> 6 & 63] : '=', i + 2 < n ? at_b64[v & 63] : '='};
        AT_ASSERT(at_buf_append(b, q, 4) == 0);
    }
}

/* Decodes base64 into arena memory; returns the length or -1. */
static ssize_t at_proc__unb64(const char *s, size_t n, at_arena_t *a, uint8_t **out)
{
    if (n % 4)
        return -1;
    uint8_t *d = at_arena_alloc(a, n / 4 * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = s[i + j];
            const char *pos = c == '=' ? NULL : strchr(at_b64, c);
            if (c == '=') {
                pad++;
            } else if (!pos || !c || pad) {
                return -1;
            }
            v = v << 6 | (pos ? (uint32_t)(pos - at_b64) : 0);
        }
        if (pad > 2 || (pad && i + 4 != n))
            return -1;
        d[k++] = (uint8_t)(v >> 16);
        if (pad < 2)
            d[k++] = (uint8_t)(v >> 8);
        if (pad < 1)
            d[k++] = (uint8_t)v;
    }
    *out = d;
    return (ssize_t)k;
}

/* A source position [P, OFFSET] of a handoff or forwarded value. */
static bool at_proc__src(const at_proc_t *pr, const at_json_t *v, int *sp, int64_t *so)
{
    const at_json_t *src = at_json_get(v, "src", 3);
    int64_t p = -1, o = -1;
    if (!src || src->type != AT_JSON_ARRAY || !src->child || !src->child->next ||
        at_json_i64(src->child, &p) < 0 || at_json_i64(src->child->next, &o) < 0 || p < 0 ||
        p >= pr->cfg.partitions || o < 0)
        return false;
    *sp = (int)p;
    *so = o;
    return true;
}

/* Whether (sp, so) was taken already; else records it. */
static bool at_proc__repeat(at_proc_t *pr, int sp, int64_t so)
{
    if (so <= pr->hwm[sp]) {
        pr->st.duplicates_dropped++;
        return true;
    }
    pr->hwm[sp] = so;
    return false;
}

/* Applies the anonymous user's pending events (a list in arrival order)
 * to u in (ts, id) order, announcing nothing. */
static void at_proc__absorb(at_proc_t *pr, at_user_t *u, at_pev_t *list)
{
    at_pev_t **v;
    size_t n = at_proc__pending_list(pr, list, &v);
    for (size_t i = 0; i < n; i++) {
        if (!v[i]->view.slot)
            continue;
        at_profile_apply(&u->prof, &pr->cfg.profile, &v[i]->view.pev, false);
        at_host_t h;
        at_proc__host(pr, &h, u, &v[i]->view, v[i]->h.ts, v[i]->recv, v[i]->h.ts);
        at_rules_on_event(pr->rs, &u->rst, &h.rh, v[i]->h.ts, NULL, NULL);
    }
}

void at_proc__merge(at_proc_t *pr, const at_rec_t *rec)
{
    at_json_t *v = NULL;
    at_error_t e;
    if (at_json_parse_all(rec->value, rec->value_len, &pr->arena, 16, &v, &e) < 0)
        return;
    const at_json_t *uv = at_json_get(v, "user", 4);
    if (!uv || uv->type != AT_JSON_STRING || !uv->len)
        return;
    at_pstr_t target = {uv->s, uv->len}, old;
    if (at_proc_alias(pr, rec->key, rec->key_len, &old))
        return; /* an anonymous id links to one user only: the first */
    if (target.n == rec->key_len && !memcmp(target.s, rec->key, target.n))
        return;
    pr->st.merges++;
    uint32_t slot = at_keyed_get(pr->users, rec->key, rec->key_len, NULL);
    at_pev_t *taken = NULL;
    at_proc__pending_drop(pr, slot, false, &taken);
    size_t vn;
    (void)at_keyed_value(pr->users, slot, &vn);
    if (vn || taken) {
        at_user_t u;
        at_proc__load(pr, slot, &u);
        /* the merge's instant: the identify's time, unless the partition is
         * past it */
        int64_t t = at_proc__now(pr);
        if (t == AT_WM_NONE || rec->ts_ms > t)
            t = rec->ts_ms;
        at_host_t h;
        at_proc__host(pr, &h, &u, NULL, t, t, t);
        at_rules_leave(pr->rs, &u.rst, t, "merged", &h.rh, at_proc__emit, &h);
        at_proc__absorb(pr, &u, taken);
        /* without the dictionary: the other partition has its own */
        at_buf_t state;
        at_buf_init(&state, 0);
        at_proc__encode(&u, NULL, &state);
        at_buf_t b;
        at_buf_init(&b, 0);
        AT_ASSERT(
            at_buf_printf(&b, "{\"src\":[%d,%lld],\"from\":", pr->p, (long long)rec->offset) >= 0);
        AT_ASSERT(at_buf_json_str(&b, rec->key, rec->key_len) == 0);
        AT_ASSERT(at_buf_puts(&b, ",\"state\":\"") == 0);
        at_proc__b64(&b, (const uint8_t *)state.data, state.len);
        AT_ASSERT(at_buf_puts(&b, "\"}") == 0);
        char id[48];
        int idn = snprintf(id, sizeof id, "%d:%lld", pr->p, (long long)rec->offset);
        at_rec_t out = {.partition = at_partition_of(target.s, target.n, pr->cfg.partitions),
                        .type = AT_REC_HANDOFF,
                        .version = 1,
                        .recv_ms = rec->recv_ms,
                        .ts_ms = rec->ts_ms,
                        .key = target.s,
                        .key_len = target.n,
                        .id = id,
                        .id_len = (uint32_t)idn,
                        .value = b.data,
                        .value_len = (uint32_t)b.len};
        if (pr->ops.send)
            pr->ops.send(pr->ud, &out);
        at_buf_deinit(&b);
        at_buf_deinit(&state);
    }
    while (taken) {
        at_pev_t *older = taken->older;
        at_proc__pev_free(pr, taken);
        taken = older;
    }
    at_proc__store_alias(pr, slot, target, rec->offset);
    at_keyed_timer_set(pr->users, slot, AT_TIMER_NONE);
}

void at_proc__handoff(at_proc_t *pr, const at_rec_t *rec, int64_t w, bool refill)
{
    (void)w;
    at_json_t *v = NULL;
    at_error_t e;
    if (at_json_parse_all(rec->value, rec->value_len, &pr->arena, 64, &v, &e) < 0)
        return;
    int sp;
    int64_t so;
    if (!at_proc__src(pr, v, &sp, &so) || at_proc__repeat(pr, sp, so))
        return;
    uint32_t slot = at_keyed_get(pr->users, rec->key, rec->key_len, NULL);
    if (!refill) {
        pr->st.handoffs++;
        const at_json_t *sv = at_json_get(v, "state", 5);
        uint8_t *bytes = NULL;
        ssize_t n = sv && sv->type == AT_JSON_STRING
                        ? at_proc__unb64(sv->s, sv->len, &pr->arena, &bytes)
                        : -1;
        at_user_t u, anon;
        at_proc__load(pr, slot, &u);
        if (n > 0) {
            at_proc__decode(pr, bytes, (size_t)n, &anon);
            if (!anon.alias) {
                at_profile_merge(&u.prof, &anon.prof, &pr->cfg.profile);
                at_rstate_merge(pr->rs, &u.rst, &anon.rst);
                u.degraded0 += anon.rst.degraded; /* counted where they happened */
            }
        }
        int64_t t = at_proc__now(pr);
        if (t == AT_WM_NONE || rec->ts_ms > t)
            t = rec->ts_ms;
        if (u.prof.last_seen != AT_PROFILE_NONE && u.prof.last_seen > t)
            t = u.prof.last_seen;
        if (t != AT_WM_NONE) { /* segments are evaluated again after a merge */
            at_host_t h;
            at_proc__host(pr, &h, &u, NULL, t, t, t);
            at_rules_on_time(pr->rs, &u.rst, &h.rh, t, at_proc__emit, &h);
        }
        at_proc__store_at(pr, &u, t);
    }
}

void at_proc__forwarded(at_proc_t *pr, const at_rec_t *rec, int64_t w, bool refill)
{
    at_json_t *v = NULL;
    at_error_t e;
    if (at_json_parse_all(rec->value, rec->value_len, &pr->arena, 64, &v, &e) < 0)
        return;
    int sp;
    int64_t so;
    const at_json_t *ev = at_json_get(v, "event", 5);
    if (!ev || !at_proc__src(pr, v, &sp, &so) || at_proc__repeat(pr, sp, so))
        return;
    const char *json = rec->value + ev->off;
    size_t jlen = ev->end - ev->off;
    if (refill) {
        at_pstr_t target;
        if ((w != AT_WM_NONE && rec->ts_ms <= w) ||
            at_proc_alias(pr, rec->key, rec->key_len, &target))
            return;
        uint32_t slot = at_keyed_get(pr->users, rec->key, rec->key_len, NULL);
        at_pev_t *it = at_proc__pev_new(pr, slot, rec->id, rec->id_len, json, jlen, rec->ts_ms,
                                        rec->recv_ms, rec->offset);
        at_proc__pending_add(pr, it, false);
        return;
    }
    pr->st.forwarded++;
    /* the event json lives in rec (the caller's) and in the arena's tree:
     * copy before the arena is reset by the event's processing */
    char *copy = at_xstrndup(json, jlen);
    at_proc__event(pr, rec->key, rec->key_len, rec->id, rec->id_len, copy, jlen, rec->ts_ms,
                   rec->recv_ms, rec->offset);
    free(copy);
}

void at_proc__forward(at_proc_t *pr, const at_rec_t *rec, at_pstr_t target)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    AT_ASSERT(at_buf_printf(&b, "{\"src\":[%d,%lld],\"event\":", pr->p, (long long)rec->offset) >=
              0);
    AT_ASSERT(at_buf_append(&b, rec->value, rec->value_len) == 0);
    AT_ASSERT(at_buf_putc(&b, '}') == 0);
    at_rec_t out = {.partition = at_partition_of(target.s, target.n, pr->cfg.partitions),
                    .type = AT_REC_FORWARDED,
                    .version = 1,
                    .recv_ms = rec->recv_ms,
                    .ts_ms = rec->ts_ms,
                    .key = target.s,
                    .key_len = target.n,
                    .id = rec->id,
                    .id_len = rec->id_len,
                    .value = b.data,
                    .value_len = (uint32_t)b.len};
    if (pr->ops.send)
        pr->ops.send(pr->ud, &out);
    at_buf_deinit(&b);
}

void at_proc__erase(at_proc_t *pr, const at_rec_t *rec)
{
    uint32_t slot = at_keyed_find(pr->users, rec->key, rec->key_len);
    if (slot == AT_KEYED_NONE)
        return;
    pr->st.erased++;
    at_proc__pending_drop(pr, slot, true, NULL);
    at_user_t u;
    at_proc__load(pr, slot, &u);
    if (!u.alias) {
        at_host_t h;
        int64_t t = at_proc__now(pr);
        if (t == AT_WM_NONE)
            t = rec->ts_ms;
        at_proc__host(pr, &h, &u, NULL, t, t, t);
        at_rules_drop(pr->rs, &u.rst, t, "erased", &h.rh, at_proc__emit, &h);
    }
    at_keyed_delete(pr->users, slot);
}
