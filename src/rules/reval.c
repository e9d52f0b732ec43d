/* reval.c - evaluating segments and triggers over one user's final events
 * in event-time order, at timer instants, on the early path, and when the
 * rule set changes. The semantics are those of DESIGN.md §5; the file
 * comment of rules_def.h says why in-order evaluation makes them simple.
 *
 * Membership of a (rule, group) at instant t is:
 *   having(window at t) [and when], or when alone for profile segments,
 * where the sliding window at t holds the entries in (t - W, t], the
 * tumbling window those of t's bucket in the user's zone, the session
 * window those of the session t lies in. It changes only at entries,
 * expiries, bucket and session ends and at the user's events (when), so
 * those are the only instants evaluated.
 *
 * THREAD SAFETY: the thread of the user's partition.
 */
#include "rules_def.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct at_reval {
    const at_ruleset_t *rs;
    at_rstate_t *s;
    const at_rule_host_t *h;
    int64_t now;
    at_rule_emit_fn emit;
    void *ud;
} at_reval_t;

/* ---- state access ----------------------------------------------------------- */

at_rrule_t *at_rules__rule_state(at_rstate_t *s, uint32_t id);
at_rrule_t *at_rules__rule_state(at_rstate_t *s, uint32_t id)
{
    uint32_t lo = 0, hi = s->nr;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->r[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->nr && s->r[lo].id == id)
        return &s->r[lo];
    at_rrule_t *r = at_arena_alloc(s->arena, (s->nr + 1) * sizeof *r);
    if (lo)
        memcpy(r, s->r, lo * sizeof *r);
    if (s->nr > lo)
        memcpy(r + lo + 1, s->r + lo, (s->nr - lo) * sizeof *r);
    memset(&r[lo], 0, sizeof r[lo]);
    r[lo].id = id;
    r[lo].armed_at = r[lo].deadline = r[lo].last_fired = AT_RULE_NONE;
    s->r = r;
    s->nr++;
    return &s->r[lo];
}

static at_rrule_t *at_reval__find_state(at_rstate_t *s, uint32_t id)
{
    uint32_t lo = 0, hi = s->nr; /* sorted by id */
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->r[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nr && s->r[lo].id == id ? &s->r[lo] : NULL;
}

at_rgroup_t *at_rules__group(at_rstate_t *s, at_rrule_t *r, at_pstr_t key, bool create);
at_rgroup_t *at_rules__group(at_rstate_t *s, at_rrule_t *r, at_pstr_t key, bool create)
{
    for (uint32_t i = 0; i < r->ng; i++)
        if (r->g[i].key.n == key.n && (key.n == 0 || !memcmp(r->g[i].key.s, key.s, key.n)))
            return &r->g[i];
    if (!create)
        return NULL;
    if (r->ng >= AT_RULE_MAX_GROUPS) {
        s->degraded++;
        return NULL;
    }
    at_rgroup_t *g = at_arena_alloc(s->arena, (r->ng + 1) * sizeof *g);
    if (r->ng)
        memcpy(g, r->g, r->ng * sizeof *g);
    r->g = g;
    g = &r->g[r->ng++];
    memset(g, 0, sizeof *g);
    char *k = key.n ? at_arena_strndup(s->arena, key.s, key.n) : NULL;
    g->key = (at_pstr_t){k, key.n};
    g->since = g->early = g->bucket = AT_RULE_NONE;
    return g;
}

/* Appends an entry, keeping time order; past the cap the oldest goes and
 * the group is marked degraded. */
uint32_t at_rules__push_entry(at_rstate_t *s, at_rgroup_t *g, int64_t ts, int64_t v);
uint32_t at_rules__push_entry(at_rstate_t *s, at_rgroup_t *g, int64_t ts, int64_t v)
{
    if (g->n >= AT_RULE_MAX_ENTRIES) {
        memmove(g->e, g->e + 1, (g->n - 1) * sizeof *g->e);
        g->n--;
        s->degraded++; /* each event past the cap */
        g->degraded = true;
    }
    if (g->n == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 4;
        at_rentry_t *e = at_arena_alloc(s->arena, cap * sizeof *e);
        if (g->n)
            memcpy(e, g->e, g->n * sizeof *e);
        g->e = e;
        g->cap = cap;
    }
    uint32_t i = g->n;
    while (i > 0 && g->e[i - 1].ts > ts) {
        g->e[i] = g->e[i - 1];
        i--;
    }
    g->e[i] = (at_rentry_t){ts, v};
    g->n++;
    return i;
}

/* Drops the entries of g that cannot change the having clause's answer at
 * any later instant, after e[i] was pushed (DESIGN.md §5 caps state per
 * user; this keeps it at what exactness needs):
 *   count     the newest floor(K)+1 (entries expire oldest first, and while
 *             more than K are in the window the answer does not depend on
 *             how many more);
 *   distinct  per value only its newest entry, then the newest floor(K)+1;
 *   max, min  entries dominated by a newer one (a newer value at least as
 *             big, or as small) can never be the maximum (minimum) again;
 *   sum       with no negative value and > or >=: entries older than the
 *             newest run whose sum already passes K expire before it does,
 *             and that run alone decides until then;
 *   avg       nothing can go. */
static void at_rules__prune(const at_rule_t *r, at_rgroup_t *g, uint32_t i)
{
    int agg = r->having.agg;
#define AT_DROP(k)                                                                                 \
    do {                                                                                           \
        memmove(&g->e[(k)], &g->e[(k) + 1], (g->n - (k)-1) * sizeof *g->e);                        \
        g->n--;                                                                                    \
    } while (0)
    if (agg == AT_AGG_DISTINCT) {
        int64_t v = g->e[i].v, ts = g->e[i].ts;
        for (uint32_t k = 0; k < g->n;) {
            /* k < i orders equal instants; k < g->n bounds it */
            /* cppcheck-suppress arrayIndexThenCheck */
            if (g->e[k].v == v && (g->e[k].ts < ts || (g->e[k].ts == ts && k < i))) {
                AT_DROP(k);
                if (k < i)
                    i--;
            } else {
                k++;
            }
        }
    }
    if ((agg == AT_AGG_COUNT || agg == AT_AGG_DISTINCT) && r->keep && g->n > r->keep) {
        uint32_t d = g->n - r->keep;
        memmove(g->e, g->e + d, r->keep * sizeof *g->e);
        g->n = r->keep;
        return;
    }
    if ((agg == AT_AGG_MAX || agg == AT_AGG_MIN) && i + 1 == g->n) {
        while (g->n >= 2) {
            int64_t a = g->e[g->n - 2].v, b = g->e[g->n - 1].v;
            if (agg == AT_AGG_MAX ? a > b : a < b)
                break;
            g->e[g->n - 2] = g->e[g->n - 1];
            g->n--;
        }
        return;
    }
    if (agg == AT_AGG_SUM && (r->having.cmp == AT_CMP_GT || r->having.cmp == AT_CMP_GE)) {
        int64_t sum = 0;
        uint32_t k = g->n;
        while (k > 0) {
            if (g->e[k - 1].v < 0)
                return; /* a negative value: every entry may matter */
            sum += g->e[k - 1].v;
            k--;
            double s = (double)sum / AT_RULE_FIXED;
            if (r->having.cmp == AT_CMP_GT ? s > r->having.threshold : s >= r->having.threshold)
                break;
        }
        for (uint32_t j = 0; j < k; j++)
            if (g->e[j].v < 0)
                return;
        if (k) {
            memmove(g->e, g->e + k, (g->n - k) * sizeof *g->e);
            g->n -= k;
        }
    }
#undef AT_DROP
}

/* ---- expressions ---------------------------------------------------------------- */

static bool at_reval__in_segment(void *ctx, int name_id)
{
    const at_reval_t *c = ctx;
    for (size_t i = 0; i < c->rs->n; i++) {
        const at_rule_t *r = c->rs->rules[i];
        if (r->kind != AT_RULE_SEGMENT || r->name_id != name_id ||
            !at_rule_acts_for(c->rs, r, c->h->key, c->h->key_len))
            continue;
        /* as of the evaluation instant: an early enter announced for a
         * later instant does not count yet */
        const at_rrule_t *rr = at_reval__find_state(c->s, r->id);
        for (uint32_t j = 0; rr && j < rr->ng; j++)
            if (rr->g[j].member && rr->g[j].since <= c->now)
                return true;
    }
    return false;
}

static void at_reval__field(void *ctx, int slot, at_val_t *out)
{
    const at_reval_t *c = ctx;
    c->h->field(c->h->ctx, slot, out);
}

static double at_reval__affinity(void *ctx, const char *cat, size_t n)
{
    const at_reval_t *c = ctx;
    return c->h->affinity ? c->h->affinity(c->h->ctx, cat, n) : 0;
}

static bool at_reval__holds_expr(const at_reval_t *c, const at_expr_t *e)
{
    at_expr_rt_t rt = {at_reval__field, at_reval__affinity, at_reval__in_segment, c->now,
                       (void *)c};
    return at_expr_eval_bool(e, &rt);
}

static void at_reval__value(const at_reval_t *c, const at_expr_t *e, at_val_t *out)
{
    at_expr_rt_t rt = {at_reval__field, at_reval__affinity, at_reval__in_segment, c->now,
                       (void *)c};
    at_expr_eval(e, &rt, out);
}

/* The text of a group (or distinct) value: a string as it is, whole (a
 * case-folded one from lower()/upper() copied folded, into buf when it
 * fits and into arena otherwise), a number as its shortest text, a bool,
 * a time or duration as milliseconds; false when it has none. The text
 * lives until buf goes or arena is reset. */
static bool at_reval__group_text(const at_val_t *v, at_arena_t *arena, char *buf, size_t cap,
                                 at_pstr_t *out)
{
    switch (v->type) {
    case AT_VAL_STR:
        if (v->flags) {
            char *t = v->len <= cap ? buf : at_arena_alloc(arena, v->len);
            at_val_copy(v, t);
            *out = (at_pstr_t){t, v->len};
        } else {
            *out = (at_pstr_t){v->u.s, v->len};
        }
        return true;
    case AT_VAL_NUM: {
        int n = snprintf(buf, cap, "%.17g", v->u.num);
        /* the shortest text that reads back to the same number */
        for (int p = 1; p <= 17; p++) {
            char t[40];
            int m = snprintf(t, sizeof t, "%.*g", p, v->u.num);
            if (strtod(t, NULL) == v->u.num) {
                memcpy(buf, t, (size_t)m);
                n = m;
                break;
            }
        }
        *out = (at_pstr_t){buf, (uint32_t)n};
        return true;
    }
    case AT_VAL_BOOL:
        *out = v->u.b ? (at_pstr_t){"true", 4} : (at_pstr_t){"false", 5};
        return true;
    case AT_VAL_TIME:
    case AT_VAL_DUR: {
        int n = snprintf(buf, cap, "%lld", (long long)v->u.ms);
        *out = (at_pstr_t){buf, (uint32_t)n};
        return true;
    }
    default:
        return false;
    }
}

/* The entry value of the having aggregate for the current event: false
 * when the event has no usable value (it then does not count). */
static bool at_reval__entry_value(const at_reval_t *c, const at_rule_t *r, int64_t *v)
{
    *v = 0;
    if (r->having.agg == AT_AGG_COUNT)
        return true;
    at_val_t x = at_val_missing();
    c->h->field(c->h->ctx, r->having.slot, &x);
    if (r->having.agg == AT_AGG_DISTINCT) {
        char buf[64];
        at_pstr_t t;
        if (!at_reval__group_text(&x, c->s->arena, buf, sizeof buf, &t))
            return false;
        *v = (int64_t)(at_hash64(t.s, t.n) >> 1) ^ (x.type == AT_VAL_STR ? 0 : 1);
        return true;
    }
    if (x.type != AT_VAL_NUM || !isfinite(x.u.num))
        return false;
    double f = x.u.num * AT_RULE_FIXED;
    *v = f >= 9.2e18 ? INT64_MAX : f <= -9.2e18 ? INT64_MIN : llround(f);
    return true;
}

/* ---- windows ---------------------------------------------------------------------- */

static int64_t at_reval__bucket_start(const at_rule_t *r, const at_tz_t *tz, int64_t t)
{
    const int64_t hour = 3600000, day = 86400000;
    if (r->win_ms == hour)
        return at_tz_floor(tz, t, AT_TZ_HOUR);
    if (r->win_ms == day)
        return at_tz_floor(tz, t, AT_TZ_DAY);
    if (r->win_ms == 7 * day)
        return at_tz_floor(tz, t, AT_TZ_WEEK);
    int64_t off = (int64_t)at_tz_offset(tz, t) * 1000, l = t + off;
    int64_t f = l / r->win_ms * r->win_ms;
    if (f > l)
        f -= r->win_ms;
    return f - off;
}

static int64_t at_reval__bucket_end(const at_rule_t *r, const at_tz_t *tz, int64_t start)
{
    const int64_t hour = 3600000, day = 86400000;
    if (r->win_ms == hour)
        return at_tz_next(tz, start, AT_TZ_HOUR);
    if (r->win_ms == day)
        return at_tz_next(tz, start, AT_TZ_DAY);
    if (r->win_ms == 7 * day)
        return at_tz_next(tz, start, AT_TZ_WEEK);
    return start + r->win_ms;
}

/* Brings g's window to instant t. */
static void at_reval__expire(const at_reval_t *c, const at_rule_t *r, at_rgroup_t *g, int64_t t)
{
    switch (r->win) {
    case AT_WIN_SLIDING: {
        uint32_t k = 0;
        while (k < g->n && g->e[k].ts <= t - r->win_ms)
            k++;
        if (k) {
            g->e += k; /* arena memory: the front is simply left behind */
            g->n -= k;
            g->cap -= k;
        }
        break;
    }
    case AT_WIN_TUMBLING: {
        int64_t b = at_reval__bucket_start(r, c->h->tz, t);
        if (b != g->bucket) {
            g->n = 0;
            g->bucket = b;
        }
        break;
    }
    case AT_WIN_SESSION:
        if (c->h->session_start != g->bucket) {
            g->n = 0;
            g->bucket = c->h->session_start;
        }
        break;
    default:
        break;
    }
}

/* The aggregate over g's entries; false when it has no value (avg, min,
 * max of nothing). */
static bool at_reval__aggregate(const at_rule_t *r, const at_rgroup_t *g, at_arena_t *arena,
                                double *out)
{
    switch (r->having.agg) {
    case AT_AGG_COUNT:
        *out = g->n;
        return true;
    case AT_AGG_SUM:
    case AT_AGG_AVG: {
        int64_t sum = 0;
        for (uint32_t i = 0; i < g->n; i++)
            if (__builtin_add_overflow(sum, g->e[i].v, &sum))
                sum = g->e[i].v > 0 ? INT64_MAX : INT64_MIN;
        if (r->having.agg == AT_AGG_AVG) {
            if (!g->n)
                return false;
            *out = (double)sum / (double)g->n / AT_RULE_FIXED;
        } else {
            *out = (double)sum / AT_RULE_FIXED;
        }
        return true;
    }
    case AT_AGG_MIN:
    case AT_AGG_MAX: {
        if (!g->n)
            return false;
        int64_t m = g->e[0].v;
        for (uint32_t i = 1; i < g->n; i++)
            m = r->having.agg == AT_AGG_MIN ? AT_MIN(m, g->e[i].v) : AT_MAX(m, g->e[i].v);
        *out = (double)m / AT_RULE_FIXED;
        return true;
    }
    case AT_AGG_DISTINCT: {
        int64_t *v = at_arena_alloc(arena, (g->n + 1) * sizeof *v);
        uint32_t n = 0;
        for (uint32_t i = 0; i < g->n; i++) {
            uint32_t j = n;
            while (j > 0 && v[j - 1] > g->e[i].v) {
                v[j] = v[j - 1];
                j--;
            }
            if (j > 0 && v[j - 1] == g->e[i].v) { /* already there: undo the shift */
                memmove(&v[j], &v[j + 1], (n - j) * sizeof *v);
                continue;
            }
            v[j] = g->e[i].v;
            n++;
        }
        *out = n;
        return true;
    }
    default:
        return false;
    }
}

static bool at_reval__having(const at_reval_t *c, const at_rule_t *r, const at_rgroup_t *g)
{
    double v;
    return at_reval__aggregate(r, g, c->s->arena, &v) && at_expr_having_holds(&r->having, v);
}

/* ---- transitions -------------------------------------------------------------------- */

static uint32_t at_reval__members(const at_rrule_t *rr)
{
    uint32_t n = 0;
    for (uint32_t j = 0; j < rr->ng; j++)
        n += rr->g[j].member;
    return n;
}

/* Emits an output; for enters and exits, call it after the group's member
 * flag changed, with rr (the rule's state) so the user-level change is
 * known. */
static void at_reval__emit(const at_reval_t *c, const at_rule_t *r, const at_rrule_t *rr, int kind,
                           at_pstr_t group, int64_t at, bool early, const char *reason)
{
    bool shadow = !at_rule_acts_for(c->rs, r, c->h->key, c->h->key_len);
    at_rule_out_t o = {.kind = (uint8_t)kind,
                       .shadow = shadow,
                       .early = early,
                       .rule = r,
                       .group = group,
                       .at = at,
                       .seq = shadow ? 0 : ++c->s->out_seq,
                       .reason = reason};
    if (rr && kind == AT_OUT_ENTER)
        o.user_delta = at_reval__members(rr) == 1 ? 1 : 0;
    else if (rr && kind == AT_OUT_EXIT)
        o.user_delta = at_reval__members(rr) == 0 ? -1 : 0;
    if (c->emit)
        c->emit(c->ud, &o);
}

static const char *at_reval__exit_reason(const at_rule_t *r, const at_rrule_t *rr)
{
    if (r->when && !rr->when_ok)
        return "condition";
    switch (r->win) {
    case AT_WIN_SESSION:
        return "session";
    case AT_WIN_NONE:
        return "condition";
    default:
        return "window";
    }
}

/* ev: an event at t is being applied (more events at t may follow); else
 * time reached t (every event at t is in). */
static void at_reval__transition(const at_reval_t *c, const at_rule_t *r, at_rrule_t *rr,
                                 at_rgroup_t *g, bool m, int64_t t, bool ev)
{
    g->internal = m;
    if (g->early != AT_RULE_NONE) {
        /* before the announced enter the in-order run catches up silently;
         * at its instant too, until every event of that instant is in */
        if (t < g->early || (ev && t == g->early))
            return;
        g->early = AT_RULE_NONE;
    }
    if (m == g->member)
        return;
    g->member = m;
    if (m)
        g->since = t;
    at_reval__emit(c, r, rr, m ? AT_OUT_ENTER : AT_OUT_EXIT, g->key, t, false,
                   m ? NULL : at_reval__exit_reason(r, rr));
}

/* Drops groups that hold nothing. */
static void at_reval__compact(at_rrule_t *rr)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < rr->ng; i++) {
        const at_rgroup_t *g = &rr->g[i];
        if (g->n || g->member || g->early != AT_RULE_NONE || g->degraded)
            rr->g[k++] = rr->g[i];
    }
    rr->ng = k;
}

/* Evaluates segment r for the user at c->now; ev: an event is being applied. */
static void at_reval__segment(const at_reval_t *c, const at_rule_t *r, bool ev)
{
    int64_t t = c->now;
    at_rrule_t *rr = at_reval__find_state(c->s, r->id);
    for (uint32_t i = 0; rr && i < rr->ng; i++)
        at_reval__expire(c, r, &rr->g[i], t);
    char buf[64];
    at_pstr_t key = {"", 0};
    int64_t v = 0;
    bool entry = false;
    if (ev && r->has_having && (!r->filter || at_reval__holds_expr(c, r->filter))) {
        at_val_t gv = at_val_missing();
        bool grouped = true;
        if (r->group) {
            at_reval__value(c, r->group, &gv);
            grouped = at_reval__group_text(&gv, c->s->arena, buf, sizeof buf, &key);
        }
        entry = grouped && at_reval__entry_value(c, r, &v);
    }
    bool w = r->when && at_reval__holds_expr(c, r->when);
    if (!rr && !entry && !w)
        return; /* nothing held and nothing new: most rules for most events */
    if (!rr)
        rr = at_rules__rule_state(c->s, r->id);
    if (entry) {
        at_rgroup_t *g = at_rules__group(c->s, rr, key, true);
        if (g) {
            at_reval__expire(c, r, g, t);
            at_rules__prune(r, g, at_rules__push_entry(c->s, g, t, v));
        }
    }
    if (r->when)
        rr->when_ok = w;
    if (!r->has_having) {
        at_rgroup_t *g = at_rules__group(c->s, rr, (at_pstr_t){"", 0}, rr->when_ok);
        if (g)
            at_reval__transition(c, r, rr, g, rr->when_ok, t, ev);
    } else {
        for (uint32_t i = 0; i < rr->ng; i++) {
            at_rgroup_t *g = &rr->g[i];
            bool m = at_reval__having(c, r, g) && (!r->when || rr->when_ok);
            at_reval__transition(c, r, rr, g, m, t, ev);
        }
    }
    at_reval__compact(rr);
}

/* ---- triggers ------------------------------------------------------------------------- */

static void at_reval__fire(const at_reval_t *c, const at_rule_t *r, at_rrule_t *rr, int64_t t,
                           bool early)
{
    rr->last_fired = t;
    if (at_rule_acts_for(c->rs, r, c->h->key, c->h->key_len)) {
        at_rstate_t *s = c->s;
        uint32_t n = AT_MIN(s->nfired, AT_RULE_RECENT_FIRES - 1);
        memmove(&s->fired[1], &s->fired[0], n * sizeof s->fired[0]);
        s->fired[0] = (at_rfired_t){.id = r->id, .at = t};
        s->nfired = n + 1;
    }
    at_reval__emit(c, r, NULL, AT_OUT_FIRE, (at_pstr_t){"", 0}, t, early, NULL);
}

static bool at_reval__cooled(const at_rule_t *r, const at_rrule_t *rr, int64_t t)
{
    return !r->cooldown_ms || rr->last_fired == AT_RULE_NONE ||
           t - rr->last_fired >= r->cooldown_ms;
}

/* The armed trigger's deadline passed: it fires there (when its condition
 * and cooldown allow) and disarms. */
static void at_reval__deadline(const at_reval_t *c, const at_rule_t *r, at_rrule_t *rr)
{
    int64_t d = rr->deadline;
    rr->armed_at = rr->deadline = AT_RULE_NONE;
    at_reval_t at = *c;
    at.now = d;
    if ((!r->when || at_reval__holds_expr(&at, r->when)) && at_reval__cooled(r, rr, d))
        at_reval__fire(&at, r, rr, d, false);
}

/* Whether an early fire at t awaits this event; if so it is consumed. */
static bool at_reval__early_fired(at_rrule_t *rr, int64_t t)
{
    for (uint32_t i = 0; i < rr->nearly; i++) {
        if (rr->early_at[i] == t) {
            memmove(&rr->early_at[i], &rr->early_at[i + 1], (rr->nearly - i - 1) * sizeof(int64_t));
            rr->nearly--;
            return true;
        }
    }
    return false;
}

static void at_reval__trigger_event(const at_reval_t *c, const at_rule_t *r)
{
    at_rrule_t *rr = at_rules__rule_state(c->s, r->id);
    int64_t t = c->now;
    if (rr->armed_at != AT_RULE_NONE && rr->deadline <= t)
        at_reval__deadline(c, r, rr);
    bool on = at_reval__holds_expr(c, r->on);
    if (!r->within_ms) {
        if (!on)
            return;
        if (r->early_fire && at_reval__early_fired(rr, t)) {
            rr->last_fired = t; /* announced on arrival */
            return;
        }
        if ((!r->when || at_reval__holds_expr(c, r->when)) && at_reval__cooled(r, rr, t))
            at_reval__fire(c, r, rr, t, false);
        return;
    }
    if (r->unless && rr->armed_at != AT_RULE_NONE && t >= rr->armed_at && t < rr->deadline &&
        at_reval__holds_expr(c, r->unless))
        rr->armed_at = rr->deadline = AT_RULE_NONE;
    if (on) {
        if (rr->armed_at == AT_RULE_NONE)
            rr->armed_at = t;
        rr->deadline = t + r->within_ms;
    }
}

/* ---- entry points ----------------------------------------------------------------------- */

static bool at_reval__evaluated_for(const at_reval_t *c, const at_rule_t *r)
{
    return r->mode == AT_RULE_SHADOW || at_rule_acts_for(c->rs, r, c->h->key, c->h->key_len);
}

static const at_rule_fact_t *at_reval__fact(const at_rule_facts_t *f, const at_ruleset_t *rs,
                                            uint32_t index)
{
    if (!f || f->rs != rs)
        return NULL;
    for (uint32_t i = 0; i < f->n; i++)
        if (f->f[i].rule == index)
            return &f->f[i];
    return NULL;
}

void at_rules_on_event(const at_ruleset_t *rs, at_rstate_t *s, const at_rule_host_t *h, int64_t t,
                       at_rule_emit_fn emit, void *ud)
{
    at_reval_t c = {rs, s, h, t, emit, ud};
    for (size_t i = 0; i < rs->n; i++) {
        const at_rule_t *r = rs->rules[i];
        if (!at_reval__evaluated_for(&c, r))
            continue;
        if (r->kind == AT_RULE_SEGMENT)
            at_reval__segment(&c, r, true);
        else
            at_reval__trigger_event(&c, r);
    }
}

void at_rules_on_time(const at_ruleset_t *rs, at_rstate_t *s, const at_rule_host_t *h, int64_t t,
                      at_rule_emit_fn emit, void *ud)
{
    at_reval_t c = {rs, s, h, t, emit, ud};
    for (size_t i = 0; i < rs->n; i++) {
        const at_rule_t *r = rs->rules[i];
        if (!at_reval__evaluated_for(&c, r))
            continue;
        if (r->kind == AT_RULE_SEGMENT) {
            /* only segments that hold state or read the profile can change */
            if (at_reval__find_state(s, r->id) || r->when)
                at_reval__segment(&c, r, false);
        } else {
            at_rrule_t *rr = at_reval__find_state(s, r->id);
            if (rr && rr->armed_at != AT_RULE_NONE && rr->deadline <= t)
                at_reval__deadline(&c, r, rr);
        }
    }
}

int64_t at_rules_deadline(const at_ruleset_t *rs, const at_rstate_t *s, const at_tz_t *tz,
                          int64_t after, int64_t session_end)
{
    int64_t dl = AT_TIMER_NONE;
#define AT_CAND(x)                                                                                 \
    do {                                                                                           \
        int64_t x_ = (x);                                                                          \
        if (x_ > after && x_ < dl)                                                                 \
            dl = x_;                                                                               \
    } while (0)
    for (uint32_t i = 0; i < s->nr; i++) {
        const at_rrule_t *rr = &s->r[i];
        const at_rule_t *r = at_ruleset_by_id(rs, rr->id);
        if (!r)
            continue;
        if (r->kind == AT_RULE_TRIGGER) {
            if (rr->armed_at != AT_RULE_NONE)
                AT_CAND(rr->deadline);
            continue;
        }
        if (r->when_session && session_end != AT_RULE_NONE)
            AT_CAND(session_end);
        for (uint32_t j = 0; j < rr->ng; j++) {
            const at_rgroup_t *g = &rr->g[j];
            if (!g->n)
                continue;
            if (r->win == AT_WIN_SLIDING)
                AT_CAND(g->e[0].ts + r->win_ms);
            else if (r->win == AT_WIN_TUMBLING && g->bucket != AT_RULE_NONE)
                AT_CAND(at_reval__bucket_end(r, tz, g->bucket));
            else if (r->win == AT_WIN_SESSION && session_end != AT_RULE_NONE)
                AT_CAND(session_end);
        }
    }
#undef AT_CAND
    return dl;
}

void at_rules_facts(const at_ruleset_t *rs, const at_rule_host_t *h, at_arena_t *arena,
                    at_rule_facts_t *out)
{
    at_rstate_t empty;
    at_rstate_init(&empty, arena);
    at_reval_t c = {rs, &empty, h, 0, NULL, NULL};
    out->rs = rs;
    out->n = 0;
    out->f = NULL;
    if (!rs->has_early)
        return;
    at_rule_fact_t *f = at_arena_alloc(arena, (rs->n + 1) * sizeof *f);
    for (size_t i = 0; i < rs->n; i++) {
        const at_rule_t *r = rs->rules[i];
        at_rule_fact_t x = {.rule = (uint32_t)i};
        if (r->early_fire) {
            if (!at_reval__holds_expr(&c, r->on))
                continue;
        } else if (r->early) {
            if (r->filter && !at_reval__holds_expr(&c, r->filter))
                continue;
            char buf[64];
            at_pstr_t key = {"", 0};
            if (r->group) {
                at_val_t gv = at_val_missing();
                at_reval__value(&c, r->group, &gv);
                if (!at_reval__group_text(&gv, arena, buf, sizeof buf, &key))
                    continue;
            }
            if (!at_reval__entry_value(&c, r, &x.v))
                continue;
            x.group.s = key.n ? at_arena_strndup(arena, key.s, key.n) : "";
            x.group.n = key.n;
        } else {
            continue;
        }
        f[out->n++] = x;
    }
    out->f = f;
}

/* Whether the early enter of r for group `key` would happen given the
 * user's final entries in g and the pending events: the first pending
 * instant at which the having clause holds, or AT_RULE_NONE. */
static int64_t at_reval__speculate(const at_reval_t *c, const at_rule_t *r, const at_rgroup_t *g,
                                   at_pstr_t key, const at_rule_pending_t *pend, size_t n,
                                   int64_t sess_start, int64_t sess_last, int64_t gap)
{
    at_rgroup_t w = *g;
    w.cap = g->n + (uint32_t)n + 1;
    w.e = at_arena_alloc(c->s->arena, w.cap * sizeof *w.e);
    if (g->n)
        memcpy(w.e, g->e, g->n * sizeof *w.e);
    at_rstate_t scratch = *c->s; /* entries of the copy go to the arena, nothing else changes */
    for (size_t i = 0; i < n; i++) {
        int64_t t = pend[i].ts;
        if (r->win == AT_WIN_SESSION) {
            if (sess_start == AT_RULE_NONE || t - sess_last >= gap) {
                sess_start = t;
                w.n = 0;
            }
            sess_last = AT_MAX(sess_last, t);
        }
        const at_rule_fact_t *f = at_reval__fact(pend[i].facts, c->rs, r->index);
        if (!f || f->group.n != key.n || (key.n && memcmp(f->group.s, key.s, key.n) != 0))
            continue;
        at_rule_host_t hh = *c->h;
        hh.session_start = sess_start;
        at_reval_t cc = *c;
        cc.h = &hh;
        at_reval__expire(&cc, r, &w, t);
        at_rules__push_entry(&scratch, &w, t, f->v);
        if (at_reval__having(c, r, &w))
            return t;
    }
    return AT_RULE_NONE;
}

void at_rules_early(const at_ruleset_t *rs, at_rstate_t *s, const at_rule_host_t *h,
                    const at_rule_pending_t *now, at_rule_pending_fn list, void *list_ud,
                    int64_t sess_start, int64_t sess_last, int64_t gap, at_rule_emit_fn emit,
                    void *ud)
{
    const at_rule_facts_t *facts = now->facts;
    if (!facts || facts->rs != rs)
        return;
    at_reval_t c = {rs, s, h, now->ts, emit, ud};
    const at_rule_pending_t *pend = NULL;
    size_t n = 0;
    for (uint32_t i = 0; i < facts->n; i++) {
        const at_rule_fact_t *f = &facts->f[i];
        const at_rule_t *r = rs->rules[f->rule];
        if (!at_reval__evaluated_for(&c, r))
            continue;
        if (r->kind == AT_RULE_TRIGGER) {
            if (r->early_fire) {
                at_rrule_t *rr = at_rules__rule_state(s, r->id);
                /* each early fire is remembered until its event is final;
                 * past the bound the fire waits for that (still exactly
                 * once, only later), so the state stays decodable */
                if (rr->nearly >= AT_RULE_MAX_ENTRIES)
                    continue;
                int64_t *e = at_arena_alloc(s->arena, (rr->nearly + 1) * sizeof *e);
                if (rr->nearly)
                    memcpy(e, rr->early_at, rr->nearly * sizeof *e);
                e[rr->nearly++] = now->ts;
                rr->early_at = e;
                at_reval__fire(&c, r, rr, now->ts, true);
            }
            continue;
        }
        at_rrule_t *rr = at_rules__rule_state(s, r->id);
        at_rgroup_t *g = at_rules__group(s, rr, f->group, true);
        if (!g || g->member || g->early != AT_RULE_NONE)
            continue;
        if (!pend) /* the pending events are walked only when a rule reads them */
            n = list(list_ud, &pend);
        int64_t at = at_reval__speculate(&c, r, g, f->group, pend, n, sess_start, sess_last, gap);
        if (at == AT_RULE_NONE)
            continue;
        g->member = true;
        g->since = g->early = at;
        at_reval__emit(&c, r, rr, AT_OUT_ENTER, g->key, at, true, NULL);
    }
}

/* ---- rule set changes and drops -------------------------------------------------------- */

static bool at_reval__same_text(const at_expr_t *a, const at_expr_t *b, const char *da,
                                const char *db, const char *field)
{
    (void)a;
    (void)b;
    /* compare the field's text in the two canonical definitions */
    char key[32];
    int kn = snprintf(key, sizeof key, "\"%s\":", field);
    const char *pa = strstr(da, key), *pb = strstr(db, key);
    if (!pa || !pb)
        return !pa && !pb;
    pa += kn;
    pb += kn;
    /* both are JSON strings written canonically: compare up to the closing quote */
    if (*pa != '"' || *pb != '"')
        return false;
    for (size_t i = 1;; i++) {
        if (pa[i] != pb[i])
            return false;
        if (pa[i] == '"' && pa[i - 1] != '\\')
            return true;
        if (!pa[i])
            return false;
    }
}

/* Whether a comparison of a sum with cmp/k holds for every sum for which
 * cmp0/k0 holds (both > or >=). */
static bool at_reval__sum_implies(int cmp0, double k0, int cmp, double k)
{
    return k < k0 || (k == k0 && (cmp == AT_CMP_GE || cmp0 == AT_CMP_GT));
}

/* Whether what a kept of the user's window entries (at_rules__prune: it
 * drops what its own having clause can no longer need) is all that b
 * needs. c: a's set, at the instant of the change; rr: the user's state
 * of a, brought to that instant. */
static bool at_reval__kept_enough(const at_reval_t *c, const at_rule_t *a, const at_rule_t *b,
                                  at_rrule_t *rr)
{
    int agg = a->having.agg;
    if ((agg == AT_AGG_COUNT || agg == AT_AGG_DISTINCT) && a->keep &&
        (!b->keep || b->keep > a->keep)) {
        /* b needs more of the newest entries than a kept. While an entry a
         * dropped is still in the window, a holds at least keep newer
         * ones; so a group holding fewer lost nothing its window has */
        for (uint32_t j = 0; j < rr->ng; j++) {
            at_reval__expire(c, a, &rr->g[j], c->now);
            if (rr->g[j].n >= a->keep)
                return false;
        }
        return true;
    }
    if (agg == AT_AGG_SUM && (a->having.cmp == AT_CMP_GT || a->having.cmp == AT_CMP_GE))
        /* a kept the newest entries whose sum passes its threshold: enough
         * for a comparison that every such sum passes */
        return (b->having.cmp == AT_CMP_GT || b->having.cmp == AT_CMP_GE) &&
               at_reval__sum_implies(a->having.cmp, a->having.threshold, b->having.cmp,
                                     b->having.threshold);
    return true; /* avg keeps everything; min and max drop only what a newer value dominates */
}

/* Whether version b can take over the user's state rr of version a: it
 * reads the same events, and what a kept is enough for it. fa, fb: the
 * sets of a and b; c: a's set at the instant of the change. */
static bool at_reval__compatible(const at_reval_t *c, const at_ruleset_t *fa, const at_rule_t *a,
                                 const at_ruleset_t *fb, const at_rule_t *b, at_rrule_t *rr)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == AT_RULE_TRIGGER)
        return a->within_ms == b->within_ms &&
               at_reval__same_text(a->on, b->on, a->def, b->def, "on") &&
               at_reval__same_text(a->unless, b->unless, a->def, b->def, "unless");
    if (a->win != b->win || a->has_having != b->has_having)
        return false;
    if (!at_reval__same_text(a->filter, b->filter, a->def, b->def, "filter") ||
        !at_reval__same_text(a->group, b->group, a->def, b->def, "group_by"))
        return false;
    if (!a->has_having)
        return true;
    if (a->having.agg != b->having.agg)
        return false;
    if (a->having.agg != AT_AGG_COUNT &&
        strcmp(fa->fields[a->having.slot], fb->fields[b->having.slot]) != 0)
        return false;
    if (a->win == AT_WIN_TUMBLING && a->win_ms != b->win_ms)
        return false;
    /* a longer sliding window would need the entries that left a's */
    if (a->win == AT_WIN_SLIDING && b->win_ms > a->win_ms)
        return false;
    return at_reval__kept_enough(c, a, b, rr);
}

static void at_reval__exit_all(const at_reval_t *c, const at_rule_t *r, at_rrule_t *rr,
                               const char *reason)
{
    for (uint32_t j = 0; j < rr->ng; j++) {
        at_rgroup_t *g = &rr->g[j];
        if (g->member) {
            g->member = false;
            /* never before the enter (an early one may lie ahead of now) */
            int64_t at = g->since != AT_RULE_NONE && g->since > c->now ? g->since : c->now;
            at_reval__emit(c, r, rr, AT_OUT_EXIT, g->key, at, false, reason);
        }
    }
}

/* The version of r's name that the user's state of r goes to when r stops
 * being evaluated for the user: of the same kind and name in `to`,
 * evaluated for the user, of the same class (the acting version's state
 * goes to the version acting now, a shadow's to a shadow: a shadow's
 * memberships were never announced) and without state of its own yet
 * (out[0..n) holds the states placed so far). */
static const at_rule_t *at_reval__heir(const at_reval_t *now, const at_rule_t *r,
                                       const at_rrule_t *out, uint32_t n)
{
    const at_ruleset_t *to = now->rs;
    for (size_t j = 0; j < to->n; j++) {
        const at_rule_t *x = to->rules[j];
        if (x->id == r->id || x->kind != r->kind || strcmp(x->name, r->name) != 0 ||
            (x->mode == AT_RULE_SHADOW) != (r->mode == AT_RULE_SHADOW) ||
            !at_reval__evaluated_for(now, x))
            continue;
        for (uint32_t k = 0; k < n; k++)
            if (out[k].id == x->id)
                return NULL;
        return x;
    }
    return NULL;
}

void at_rules_migrate(const at_ruleset_t *from, const at_ruleset_t *to, at_rstate_t *s,
                      const at_rule_host_t *h, int64_t t, at_rule_emit_fn emit, void *ud)
{
    at_reval_t old = {from, s, h, t, emit, ud};
    at_reval_t now = {to, s, h, t, emit, ud};
    /* The user keeps state only of the versions evaluated for it. First
     * the states that stay: versions still evaluated for the user (and
     * states of rules unknown to both sets, kept as they are) */
    at_rrule_t *out = at_arena_alloc(s->arena, (s->nr + 1) * sizeof *out);
    uint32_t k = 0;
    for (uint32_t i = 0; i < s->nr; i++) {
        const at_rule_t *c = at_ruleset_by_id(to, s->r[i].id);
        if ((c && at_reval__evaluated_for(&now, c)) || (!c && !at_ruleset_by_id(from, s->r[i].id)))
            out[k++] = s->r[i];
    }
    /* then the states of versions gone, or no longer evaluated for the
     * user (a rollout took the user, or gave it back): the version that is
     * evaluated for the user now takes the state over when it reads the
     * same events, or the memberships end (changed, or deleted when the
     * name is gone) and the state goes */
    for (uint32_t i = 0; i < s->nr; i++) {
        at_rrule_t rr = s->r[i];
        const at_rule_t *a = at_ruleset_by_id(from, rr.id), *c = at_ruleset_by_id(to, rr.id);
        if ((c && at_reval__evaluated_for(&now, c)) || (!c && !a))
            continue;
        const at_rule_t *r = a ? a : c; /* as the set the user was evaluated under knew it */
        const at_reval_t *rc = a ? &old : &now;
        const at_rule_t *b = at_reval__heir(&now, r, out, k);
        if (b && at_reval__compatible(rc, rc->rs, r, to, b, &rr)) {
            rr.id = b->id;
            for (uint32_t j = 0; j < rr.ng; j++)
                rr.g[j].early = AT_RULE_NONE;
            out[k++] = rr;
            continue;
        }
        if (r->kind == AT_RULE_SEGMENT) {
            bool named = at_ruleset_find(to, r->kind, r->name, strlen(r->name)) != NULL;
            at_reval__exit_all(rc, r, &rr, named ? "changed" : "deleted");
        }
    }
    s->r = out;
    s->nr = k;
    /* recent fires of versions that are gone: by name and version */
    for (uint32_t i = 0; i < s->nfired; i++) {
        at_rfired_t *f = &s->fired[i];
        const at_rule_t *a = f->id ? at_ruleset_by_id(from, f->id) : NULL;
        if (!a || at_ruleset_by_id(to, f->id))
            continue;
        size_t nl = strlen(a->name);
        *f = (at_rfired_t){.version = a->version,
                           .name = {at_arena_strndup(s->arena, a->name, nl), (uint32_t)nl},
                           .at = f->at};
    }
    /* keep the state sorted by id after renames */
    for (uint32_t i = 1; i < s->nr; i++) {
        at_rrule_t x = s->r[i];
        uint32_t j = i;
        while (j > 0 && s->r[j - 1].id > x.id) {
            s->r[j] = s->r[j - 1];
            j--;
        }
        s->r[j] = x;
    }
    for (size_t i = 0; i < to->n; i++) {
        const at_rule_t *r = to->rules[i];
        if (r->kind == AT_RULE_SEGMENT && at_reval__evaluated_for(&now, r) &&
            (at_reval__find_state(s, r->id) || r->when))
            at_reval__segment(&now, r, false);
    }
}

void at_rules_leave(const at_ruleset_t *rs, at_rstate_t *s, int64_t t, const char *reason,
                    const at_rule_host_t *h, at_rule_emit_fn emit, void *ud)
{
    at_reval_t c = {rs, s, h, t, emit, ud};
    for (uint32_t i = 0; i < s->nr; i++) {
        const at_rule_t *r = at_ruleset_by_id(rs, s->r[i].id);
        if (r && r->kind == AT_RULE_SEGMENT && at_reval__evaluated_for(&c, r))
            at_reval__exit_all(&c, r, &s->r[i], reason);
        for (uint32_t j = 0; j < s->r[i].ng; j++) {
            s->r[i].g[j].member = s->r[i].g[j].internal = false;
            s->r[i].g[j].early = AT_RULE_NONE;
        }
    }
}

void at_rules_drop(const at_ruleset_t *rs, at_rstate_t *s, int64_t t, const char *reason,
                   const at_rule_host_t *h, at_rule_emit_fn emit, void *ud)
{
    at_rules_leave(rs, s, t, reason, h, emit, ud);
    s->nr = 0;
    s->nfired = 0;
}
