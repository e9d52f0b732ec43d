/* profile.c - applying events to a profile, merging profiles, and the
 * questions rules ask of one (affinity, counters, session).
 *
 * Affinities: every category's score decays with the same half-life, so
 * all scores are kept decayed to one reference time (aff_ref) and only
 * rescaled when a newer event arrives. A share (a category's score over the
 * sum) therefore does not change between events: conditions such as
 * affinity("electronics") > 0.4 can only change when an event is applied.
 *
 * THREAD SAFETY: one thread per profile.
 */
#include "at_json.h"
#include "at_profile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool at_pstr_eq(at_pstr_t a, const char *s, size_t n)
{
    return a.n == n && (n == 0 || memcmp(a.s, s, n) == 0);
}

/* at_pstr_cmp(a, b) == 0, mostly without calling memcmp (the strings of a
 * profile's lists seldom share a length and a first byte) */
static inline bool at_pstr_same(at_pstr_t a, at_pstr_t b)
{
    return a.n == b.n && (a.n == 0 || (a.s[0] == b.s[0] && memcmp(a.s, b.s, a.n) == 0));
}

static int at_pstr_cmp(at_pstr_t a, at_pstr_t b)
{
    size_t n = AT_MIN(a.n, b.n);
    int c = n ? memcmp(a.s, b.s, n) : 0;
    return c ? c : (a.n > b.n) - (a.n < b.n);
}

#define AT_PS(lit) ((at_pstr_t){(lit), (uint32_t)(sizeof(lit) - 1)})

void at_profile_cfg_defaults(at_profile_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->half_life_ms = 7LL * 86400 * 1000;
    c->session_gap_ms = 30LL * 60 * 1000;
    c->recent_items = 20;
    c->max_categories = 16;
    c->max_counters = 32;
    c->max_traits_bytes = 4096;
    static const struct {
        const char *t;
        double w;
    } d[] = {{"view_item", 1}, {"add_to_cart", 3},  {"purchase", 5},
             {"click", 0.5},   {"page_view", 0.25}, {"search", 0.25}};
    for (size_t i = 0; i < AT_ARRAY_LEN(d); i++) {
        memcpy(c->weights[i].type, d[i].t, strlen(d[i].t) + 1);
        c->weights[i].weight = d[i].w;
    }
    c->nweights = (int)AT_ARRAY_LEN(d);
}

double at_profile_weight(const at_profile_cfg_t *c, const char *type, size_t n)
{
    for (int i = 0; i < c->nweights; i++)
        if (strlen(c->weights[i].type) == n && memcmp(c->weights[i].type, type, n) == 0)
            return c->weights[i].weight;
    return c->default_weight;
}

void at_profile_init(at_profile_t *p, at_arena_t *arena)
{
    /* the arrays are read only up to their counts: not cleared (a profile
     * is initialized for every event, and the arrays are 6 KiB) */
    p->events = p->late = 0;
    p->ncounters = p->naff = p->nrecent = 0;
    p->session.events = p->session.pages = 0;
    p->traits = p->tz = (at_pstr_t){NULL, 0};
    p->tz_sym = AT_SDICT_NONE;
    p->first_seen = p->last_seen = AT_PROFILE_NONE;
    p->aff_ref = AT_PROFILE_NONE;
    p->session.start = p->session.last = AT_PROFILE_NONE;
    p->arena = arena;
}

/* ---- counters ---------------------------------------------------------------- */

static void at_profile__count(at_profile_t *p, const at_profile_cfg_t *cfg, at_pstr_t type,
                              uint64_t n)
{
    for (uint32_t i = 0; i < p->ncounters; i++) {
        if (at_pstr_same(p->counters[i].type, type)) {
            p->counters[i].n += n;
            return;
        }
    }
    /* past the cap a type counts as "other", which has a slot of its own
     * beyond it (counters[] holds AT_PROFILE_MAX_COUNTERS + 1) */
    uint32_t cap = (uint32_t)AT_MIN(cfg->max_counters, AT_PROFILE_MAX_COUNTERS);
    bool other = at_pstr_eq(type, "other", 5);
    if (p->ncounters >= cap && !other) {
        at_profile__count(p, cfg, AT_PS("other"), n);
        return;
    }
    if (p->ncounters >= AT_PROFILE_MAX_COUNTERS + 1)
        return; /* full without "other" (decoded data only): nowhere to count it */
    /* sorted by type, so the encoding does not depend on arrival order */
    uint32_t i = p->ncounters;
    while (i > 0 && at_pstr_cmp(p->counters[i - 1].type, type) > 0) {
        p->counters[i] = p->counters[i - 1];
        i--;
    }
    p->counters[i].type = type;
    p->counters[i].n = n;
    p->counters[i].sym = AT_SDICT_NONE;
    p->ncounters++;
}

uint64_t at_profile_counter(const at_profile_t *p, const char *type, size_t n)
{
    for (uint32_t i = 0; i < p->ncounters; i++)
        if (at_pstr_eq(p->counters[i].type, type, n))
            return p->counters[i].n;
    return 0;
}

/* ---- affinities ---------------------------------------------------------------- */

static double at_profile__decay(const at_profile_cfg_t *cfg, int64_t dt)
{
    if (cfg->half_life_ms <= 0 || dt <= 0)
        return 1.0;
    return exp2(-(double)dt / (double)cfg->half_life_ms);
}

/* Drops the weakest category (ties: the greatest name) when over cap. */
static void at_profile__aff_cap(at_profile_t *p, const at_profile_cfg_t *cfg)
{
    uint32_t cap = (uint32_t)AT_MIN(cfg->max_categories, AT_PROFILE_MAX_CATEGORIES);
    while (p->naff > cap) {
        uint32_t w = 0;
        for (uint32_t i = 1; i < p->naff; i++) {
            if (p->aff[i].score < p->aff[w].score ||
                (p->aff[i].score == p->aff[w].score &&
                 at_pstr_cmp(p->aff[i].cat, p->aff[w].cat) > 0))
                w = i;
        }
        memmove(&p->aff[w], &p->aff[w + 1], (p->naff - w - 1) * sizeof p->aff[0]);
        p->naff--;
    }
}

/* Adds score s (already decayed to aff_ref) to cat, keeping the list sorted
 * by name. */
static void at_profile__aff_add(at_profile_t *p, const at_profile_cfg_t *cfg, at_pstr_t cat,
                                double s)
{
    uint32_t i = 0;
    while (i < p->naff && at_pstr_cmp(p->aff[i].cat, cat) < 0)
        i++;
    if (i < p->naff && at_pstr_same(p->aff[i].cat, cat)) {
        p->aff[i].score = (float)((double)p->aff[i].score + s);
        return;
    }
    memmove(&p->aff[i + 1], &p->aff[i], (p->naff - i) * sizeof p->aff[0]);
    p->aff[i].cat = cat;
    p->aff[i].score = (float)s;
    p->aff[i].sym = AT_SDICT_NONE;
    p->naff++;
    at_profile__aff_cap(p, cfg);
}

/* Brings every score to reference time t (>= aff_ref). */
static void at_profile__aff_rebase(at_profile_t *p, const at_profile_cfg_t *cfg, int64_t t)
{
    if (p->aff_ref == AT_PROFILE_NONE) {
        p->aff_ref = t;
        return;
    }
    if (t <= p->aff_ref)
        return;
    double f = at_profile__decay(cfg, t - p->aff_ref);
    for (uint32_t i = 0; i < p->naff; i++)
        p->aff[i].score = (float)((double)p->aff[i].score * f);
    p->aff_ref = t;
}

static void at_profile__interest(at_profile_t *p, const at_profile_cfg_t *cfg, at_pstr_t cat,
                                 int64_t t, double w)
{
    if (!cat.n || w == 0)
        return;
    at_profile__aff_rebase(p, cfg, t);
    at_profile__aff_add(p, cfg, cat, w * at_profile__decay(cfg, p->aff_ref - t));
}

double at_profile_affinity(const at_profile_t *p, const char *prefix, size_t n)
{
    double total = 0, mine = 0;
    for (uint32_t i = 0; i < p->naff; i++) {
        const at_pstr_t c = p->aff[i].cat;
        double s = p->aff[i].score;
        total += s;
        if (c.n >= n && memcmp(c.s, prefix, n) == 0 && (c.n == n || c.s[n] == '/'))
            mine += s;
    }
    return total > 0 ? mine / total : 0;
}

/* ---- recent items ---------------------------------------------------------------- */

static int at_profile__kind(at_pstr_t type)
{
    if (at_pstr_eq(type, "view_item", 9))
        return AT_PK_VIEW;
    if (at_pstr_eq(type, "add_to_cart", 11))
        return AT_PK_CART;
    if (at_pstr_eq(type, "purchase", 8))
        return AT_PK_PURCHASE;
    return AT_PK_OTHER;
}

/* Newest first; ties by item id. */
static bool at_profile__newer(int64_t ta, at_pstr_t a, int64_t tb, at_pstr_t b)
{
    return ta != tb ? ta > tb : at_pstr_cmp(a, b) < 0;
}

static void at_profile__touch(at_profile_t *p, const at_profile_cfg_t *cfg, at_pstr_t item,
                              int64_t ts, int kinds)
{
    if (!item.n)
        return;
    uint32_t cap = (uint32_t)AT_MAX(1, AT_MIN(cfg->recent_items, AT_PROFILE_MAX_RECENT));
    uint32_t i = 0, sym = AT_SDICT_NONE;
    while (i < p->nrecent && !at_pstr_same(p->recent[i].item, item))
        i++;
    if (i < p->nrecent) {
        kinds |= p->recent[i].kinds;
        ts = AT_MAX(ts, p->recent[i].ts);
        sym = p->recent[i].sym; /* the same id: its entry still is */
        memmove(&p->recent[i], &p->recent[i + 1], (p->nrecent - i - 1) * sizeof p->recent[0]);
        p->nrecent--;
    }
    uint32_t at = 0;
    while (at < p->nrecent && !at_profile__newer(ts, item, p->recent[at].ts, p->recent[at].item))
        at++;
    if (at >= cap)
        return; /* older than everything kept */
    memmove(&p->recent[at + 1], &p->recent[at], (p->nrecent - at) * sizeof p->recent[0]);
    p->recent[at].item = item;
    p->recent[at].ts = ts;
    p->recent[at].kinds = (uint8_t)kinds;
    p->recent[at].sym = sym;
    if (++p->nrecent > cap)
        p->nrecent = cap;
}

/* ---- traits ---------------------------------------------------------------------- */

/* Writes the members of over onto base (both JSON objects as text) into the
 * arena; returns base unchanged when either is not an object or the result
 * would exceed max bytes. */
static at_pstr_t at_profile__merge_traits(at_arena_t *arena, at_pstr_t base, at_pstr_t over,
                                          uint32_t max)
{
    if (!over.n)
        return base;
    at_arena_t tmp;
    at_arena_init(&tmp, 0);
    at_json_t *b = NULL, *o = NULL;
    at_error_t e;
    at_pstr_t out = base;
    if (at_json_parse_all(over.s, over.n, &tmp, 64, &o, &e) < 0 || o->type != AT_JSON_OBJECT)
        goto done;
    if (base.n &&
        (at_json_parse_all(base.s, base.n, &tmp, 64, &b, &e) < 0 || b->type != AT_JSON_OBJECT))
        b = NULL;
    at_buf_t w;
    at_buf_init(&w, 0);
    at_json_w_raw(&w, "{", 1);
    bool first = true;
    for (const at_json_t *m = b ? b->child : NULL; m; m = m->next) {
        const at_json_t *ov = at_json_get(o, m->key, m->key_len);
        if (!first)
            at_json_w_raw(&w, ",", 1);
        first = false;
        at_json_w_str(&w, m->key, m->key_len, false);
        at_json_w_raw(&w, ":", 1);
        at_json_w_value(&w, ov ? ov : m);
    }
    for (const at_json_t *m = o->child; m; m = m->next) {
        if (b && at_json_get(b, m->key, m->key_len))
            continue;
        if (!first)
            at_json_w_raw(&w, ",", 1);
        first = false;
        at_json_w_str(&w, m->key, m->key_len, false);
        at_json_w_raw(&w, ":", 1);
        at_json_w_value(&w, m);
    }
    at_json_w_raw(&w, "}", 1);
    if (w.len <= max) {
        out.s = at_arena_strndup(arena, w.data, w.len);
        out.n = (uint32_t)w.len;
    }
    at_buf_deinit(&w);
done:
    at_arena_deinit(&tmp);
    return out;
}

/* ---- events and merges -------------------------------------------------------------- */

void at_profile_apply(at_profile_t *p, const at_profile_cfg_t *cfg, const at_pevent_t *ev,
                      bool late)
{
    int64_t t = ev->ts;
    if (p->first_seen == AT_PROFILE_NONE || t < p->first_seen)
        p->first_seen = t;
    if (p->last_seen == AT_PROFILE_NONE || t > p->last_seen)
        p->last_seen = t;
    p->events++;
    if (late)
        p->late++;
    at_profile__count(p, cfg, ev->type, 1);
    double w = at_profile_weight(cfg, ev->type.s, ev->type.n);
    int kind = at_profile__kind(ev->type);
    at_profile__interest(p, cfg, ev->category, t, w);
    at_profile__touch(p, cfg, ev->item, t, kind);
    for (size_t i = 0; i < ev->nitems; i++) {
        if (!ev->category.n)
            at_profile__interest(p, cfg, ev->items[i].category, t, w);
        at_profile__touch(p, cfg, ev->items[i].item, t, kind);
    }
    if (!late) {
        if (ev->tz.n) {
            if (!at_pstr_same(p->tz, ev->tz))
                p->tz_sym = AT_SDICT_NONE;
            p->tz = ev->tz;
        }
        bool page = at_pstr_eq(ev->type, "page_view", 9);
        if (p->session.start == AT_PROFILE_NONE || t - p->session.last >= cfg->session_gap_ms) {
            p->session.start = p->session.last = t;
            p->session.events = 1;
            p->session.pages = page;
        } else {
            p->session.last = AT_MAX(p->session.last, t);
            p->session.events++;
            p->session.pages += page;
        }
    }
    if (ev->traits.n && at_pstr_eq(ev->type, "identify", 8))
        p->traits =
            at_profile__merge_traits(p->arena, p->traits, ev->traits, cfg->max_traits_bytes);
}

void at_profile_merge(at_profile_t *dst, const at_profile_t *src, const at_profile_cfg_t *cfg)
{
    if (src->first_seen == AT_PROFILE_NONE)
        return;
    if (dst->first_seen == AT_PROFILE_NONE || src->first_seen < dst->first_seen)
        dst->first_seen = src->first_seen;
    if (dst->last_seen == AT_PROFILE_NONE || src->last_seen > dst->last_seen)
        dst->last_seen = src->last_seen;
    dst->events += src->events;
    dst->late += src->late;
    for (uint32_t i = 0; i < src->ncounters; i++)
        at_profile__count(dst, cfg, src->counters[i].type, src->counters[i].n);
    if (src->naff) {
        at_profile__aff_rebase(dst, cfg, src->aff_ref);
        double f = at_profile__decay(cfg, dst->aff_ref - src->aff_ref);
        for (uint32_t i = 0; i < src->naff; i++)
            at_profile__aff_add(dst, cfg, src->aff[i].cat, (double)src->aff[i].score * f);
    }
    for (uint32_t i = 0; i < src->nrecent; i++)
        at_profile__touch(dst, cfg, src->recent[i].item, src->recent[i].ts, src->recent[i].kinds);
    if (src->session.start != AT_PROFILE_NONE) {
        bool overlap = dst->session.start != AT_PROFILE_NONE &&
                       src->session.start < dst->session.last + cfg->session_gap_ms &&
                       dst->session.start < src->session.last + cfg->session_gap_ms;
        if (overlap) {
            dst->session.start = AT_MIN(dst->session.start, src->session.start);
            dst->session.last = AT_MAX(dst->session.last, src->session.last);
            dst->session.events += src->session.events;
            dst->session.pages += src->session.pages;
        } else if (dst->session.start == AT_PROFILE_NONE || src->session.last > dst->session.last) {
            dst->session = src->session; /* none yet, or the later of two apart */
        }
    }
    if (src->traits.n)
        dst->traits =
            at_profile__merge_traits(dst->arena, src->traits, dst->traits, cfg->max_traits_bytes);
    if (!dst->tz.n) {
        dst->tz = src->tz;
        dst->tz_sym = AT_SDICT_NONE;
    }
}

bool at_profile_session_open(const at_profile_t *p, const at_profile_cfg_t *cfg, int64_t t)
{
    return p->session.start != AT_PROFILE_NONE && t >= p->session.start &&
           t < p->session.last + cfg->session_gap_ms;
}

int64_t at_profile_session_end(const at_profile_t *p, const at_profile_cfg_t *cfg)
{
    return p->session.start == AT_PROFILE_NONE ? AT_PROFILE_NONE
                                               : p->session.last + cfg->session_gap_ms;
}
