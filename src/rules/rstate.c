/* rstate.c - the per-user state of the rules: its compact encoding, the
 * profile's view of it, and identity merges.
 *
 * Encoding (varints; times zigzag and relative to a base, the state's
 * newest time, so they are short): out_seq; degraded; zigzag base; nr;
 * per rule: id, flags (1 when_ok, 2 armed, 4 has last_fired, 8 early
 * fires, 16 ng is flags >> 5 and not a varint of its own), [armed_at,
 * deadline], [last_fired], [nearly, instants], [ng], per group: str key,
 * flags (1 member, 2 internal, 4 degraded, 8 early, 16 bucket, 32 values
 * all zero, 64 values as syms), [since], [early], [bucket], n, entries as
 * (ts - the previous entry's ts, the first against base) and v unless flag
 * 32: zigzag, or with flag 64 a sym of its 8 bytes little-endian; nfired,
 * per fire: id (0: a version no longer in force, then str name, version),
 * at. Rules sorted by id, entries oldest first.
 * A sym is varint 2 * id + 1 for an entry of the partition's dictionary,
 * or varint 2 * length and the bytes (as the profile's, at_profile.h):
 * flag 64 is for values that are hashes (distinct), 63 bits that would
 * take a 10-byte varint each, and that the few values a user's window
 * holds (categories, items) repeat across users.
 * (Flags 16 and 64 are new in this release, fires with id 0 in the one
 * before; earlier encodings read the same.)
 */
#include "rules_def.h"

#include <stdio.h>
#include <string.h>

void at_rstate_init(at_rstate_t *s, at_arena_t *arena)
{
    memset(s, 0, sizeof *s);
    s->arena = arena;
}

static bool at_rstate__keep(const at_rrule_t *r)
{
    return r->ng || r->when_ok || r->armed_at != AT_RULE_NONE || r->last_fired != AT_RULE_NONE ||
           r->nearly;
}

/* The newest time the state holds, the base of the encoding. */
static int64_t at_rstate__base(const at_rstate_t *s)
{
    int64_t b = INT64_MIN;
#define AT_B(t)                                                                                    \
    do {                                                                                           \
        int64_t t_ = (t);                                                                          \
        if (t_ != AT_RULE_NONE && t_ > b)                                                          \
            b = t_;                                                                                \
    } while (0)
    for (uint32_t i = 0; i < s->nr; i++) {
        const at_rrule_t *r = &s->r[i];
        AT_B(r->armed_at);
        AT_B(r->last_fired);
        for (uint32_t j = 0; j < r->ng; j++) {
            const at_rgroup_t *g = &r->g[j];
            if (g->n)
                AT_B(g->e[g->n - 1].ts);
            if (g->member)
                AT_B(g->since);
        }
    }
    for (uint32_t i = 0; i < s->nfired; i++)
        AT_B(s->fired[i].at);
#undef AT_B
    return b == INT64_MIN ? 0 : b;
}

/* Whether a group's values go as syms: all of them large (hashes). */
static bool at_rstate__as_syms(const at_rgroup_t *g)
{
    for (uint32_t k = 0; k < g->n; k++) {
        int64_t v = g->e[k].v;
        if (v > -((int64_t)1 << 48) && v < ((int64_t)1 << 48))
            return false;
    }
    return g->n > 0;
}

static void at_rstate__sym_enc(at_buf_t *out, at_sdict_t *dict, int64_t v)
{
    char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (char)((uint64_t)v >> (8 * i));
    uint32_t id = dict ? at_sdict_intern_half(dict, b, 8) : AT_SDICT_NONE;
    if (id != AT_SDICT_NONE) {
        at_enc_varint(out, (uint64_t)id * 2 + 1);
        return;
    }
    at_enc_varint(out, 16);
    AT_ASSERT(at_buf_append(out, b, 8) == 0);
}

static int64_t at_rstate__sym_dec(at_dec_t *d, const at_sdict_t *dict)
{
    uint64_t x = at_dec_varint(d);
    const char *s = NULL;
    uint32_t n = 0;
    if (x & 1) {
        if (!dict || x >> 1 >= AT_SDICT_NONE || !at_sdict_get(dict, (uint32_t)(x >> 1), &s, &n))
            d->bad = true;
    } else if (x == 16 && d->end - d->p >= 8) {
        s = (const char *)d->p;
        n = 8;
        d->p += 8;
    } else {
        d->bad = true;
    }
    if (n != 8) {
        d->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)(uint8_t)s[i] << (8 * i);
    return (int64_t)v;
}

void at_rstate_encode(const at_rstate_t *s, at_sdict_t *dict, at_buf_t *out)
{
    at_enc_varint(out, s->out_seq);
    at_enc_varint(out, s->degraded);
    int64_t base = at_rstate__base(s);
    at_enc_zigzag(out, base);
    uint32_t nr = 0;
    for (uint32_t i = 0; i < s->nr; i++) /* rules with nothing to keep are left out */
        nr += at_rstate__keep(&s->r[i]);
    at_enc_varint(out, nr);
    for (uint32_t i = 0; i < s->nr; i++) {
        const at_rrule_t *r = &s->r[i];
        if (!at_rstate__keep(r))
            continue;
        at_enc_varint(out, r->id);
        uint64_t f = (r->when_ok ? 1u : 0) | (r->armed_at != AT_RULE_NONE ? 2u : 0) |
                     (r->last_fired != AT_RULE_NONE ? 4u : 0) | (r->nearly ? 8u : 0);
        at_enc_varint(out, f | 16 | (uint64_t)r->ng << 5);
        if (f & 2) {
            at_enc_zigzag(out, r->armed_at - base);
            at_enc_zigzag(out, r->deadline - base);
        }
        if (f & 4)
            at_enc_zigzag(out, r->last_fired - base);
        if (f & 8) {
            at_enc_varint(out, r->nearly);
            for (uint32_t k = 0; k < r->nearly; k++)
                at_enc_zigzag(out, r->early_at[k] - base);
        }
        for (uint32_t j = 0; j < r->ng; j++) {
            const at_rgroup_t *g = &r->g[j];
            at_enc_str(out, g->key.s, g->key.n);
            bool zero = true;
            for (uint32_t k = 0; k < g->n && zero; k++)
                zero = g->e[k].v == 0;
            bool syms = !zero && at_rstate__as_syms(g);
            unsigned gf = (g->member ? 1u : 0) | (g->internal ? 2u : 0) | (g->degraded ? 4u : 0) |
                          (g->early != AT_RULE_NONE ? 8u : 0) |
                          (g->bucket != AT_RULE_NONE ? 16u : 0) | (zero ? 32u : 0) |
                          (syms ? 64u : 0);
            at_enc_varint(out, gf);
            if (g->member)
                at_enc_zigzag(out, g->since - base);
            if (gf & 8)
                at_enc_zigzag(out, g->early - base);
            if (gf & 16)
                at_enc_zigzag(out, g->bucket - base);
            at_enc_varint(out, g->n);
            int64_t prev = base;
            for (uint32_t k = 0; k < g->n; k++) {
                at_enc_zigzag(out, g->e[k].ts - prev);
                if (syms)
                    at_rstate__sym_enc(out, dict, g->e[k].v);
                else if (!zero)
                    at_enc_zigzag(out, g->e[k].v);
                prev = g->e[k].ts;
            }
        }
    }
    at_enc_varint(out, s->nfired);
    for (uint32_t i = 0; i < s->nfired; i++) {
        const at_rfired_t *f = &s->fired[i];
        at_enc_varint(out, f->id);
        if (!f->id) {
            at_enc_str(out, f->name.s, f->name.n);
            at_enc_varint(out, f->version);
        }
        at_enc_zigzag(out, f->at - base);
    }
}

int at_rstate_decode(at_rstate_t *s, const uint8_t *data, size_t n, const at_sdict_t *dict,
                     at_arena_t *arena)
{
    at_rstate_init(s, arena);
    if (n == 0)
        return 0; /* a user the rules never saw */
    at_dec_t d = {data, data + n, false};
    s->out_seq = at_dec_varint(&d);
    s->degraded = at_dec_varint(&d);
    int64_t base = at_dec_zigzag(&d);
    uint64_t nr = at_dec_varint(&d);
    if (d.bad || nr > (uint64_t)AT_RULE_MAX_RULES * 2)
        return AT_ECORRUPT;
    s->r = at_arena_alloc(arena, (nr + 1) * sizeof *s->r);
    for (uint64_t i = 0; i < nr && !d.bad; i++) {
        at_rrule_t *r = &s->r[i];
        memset(r, 0, sizeof *r);
        r->id = (uint32_t)at_dec_varint(&d);
        uint64_t f = at_dec_varint(&d);
        r->when_ok = f & 1;
        r->armed_at = r->deadline = r->last_fired = AT_RULE_NONE;
        if (f & 2) {
            r->armed_at = base + at_dec_zigzag(&d);
            r->deadline = base + at_dec_zigzag(&d);
        }
        if (f & 4)
            r->last_fired = base + at_dec_zigzag(&d);
        if (f & 8) {
            uint64_t ne = at_dec_varint(&d);
            if (ne > AT_RULE_MAX_ENTRIES)
                return AT_ECORRUPT;
            r->nearly = (uint32_t)ne;
            r->early_at = at_arena_alloc(arena, (ne + 1) * sizeof *r->early_at);
            for (uint64_t k = 0; k < ne; k++)
                r->early_at[k] = base + at_dec_zigzag(&d);
        }
        uint64_t ng = (f & 16) ? f >> 5 : at_dec_varint(&d);
        if (ng > AT_RULE_MAX_GROUPS + 1)
            return AT_ECORRUPT;
        r->ng = (uint32_t)ng;
        r->g = at_arena_alloc(arena, (ng + 1) * sizeof *r->g);
        for (uint64_t j = 0; j < ng && !d.bad; j++) {
            at_rgroup_t *g = &r->g[j];
            g->key = at_dec_str(&d);
            uint64_t gf = at_dec_varint(&d);
            g->member = gf & 1;
            g->internal = gf & 2;
            g->degraded = gf & 4;
            g->since = g->member ? base + at_dec_zigzag(&d) : AT_RULE_NONE;
            g->early = (gf & 8) ? base + at_dec_zigzag(&d) : AT_RULE_NONE;
            g->bucket = (gf & 16) ? base + at_dec_zigzag(&d) : AT_RULE_NONE;
            uint64_t ne = at_dec_varint(&d);
            if (ne > AT_RULE_MAX_ENTRIES)
                return AT_ECORRUPT;
            g->n = g->cap = (uint32_t)ne;
            g->e = at_arena_alloc(arena, (ne + 1) * sizeof *g->e);
            int64_t prev = base;
            bool zero = gf & 32, syms = gf & 64;
            for (uint64_t k = 0; k < ne; k++) {
                g->e[k].ts = prev + at_dec_zigzag(&d);
                g->e[k].v = syms ? at_rstate__sym_dec(&d, dict) : zero ? 0 : at_dec_zigzag(&d);
                prev = g->e[k].ts;
            }
        }
        s->nr++;
    }
    uint64_t nf = at_dec_varint(&d);
    if (nf > AT_RULE_RECENT_FIRES)
        return AT_ECORRUPT;
    for (uint64_t i = 0; i < nf; i++) {
        at_rfired_t *f = &s->fired[i];
        memset(f, 0, sizeof *f);
        f->id = (uint32_t)at_dec_varint(&d);
        if (!f->id) {
            f->name = at_dec_str(&d);
            uint64_t v = at_dec_varint(&d);
            if (f->name.n == 0 || f->name.n > AT_RULE_NAME_MAX || v == 0 || v > UINT32_MAX)
                return AT_ECORRUPT;
            f->version = (uint32_t)v;
        }
        f->at = base + at_dec_zigzag(&d);
    }
    s->nfired = (uint32_t)nf;
    return d.bad ? AT_ECORRUPT : (int)(d.p - data);
}

static const at_rrule_t *at_rstate__get(const at_rstate_t *s, uint32_t id)
{
    uint32_t lo = 0, hi = s->nr;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->r[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nr && s->r[lo].id == id ? &s->r[lo] : NULL;
}

static bool at_rrule__member(const at_rrule_t *r)
{
    for (uint32_t j = 0; r && j < r->ng; j++)
        if (r->g[j].member)
            return true;
    return false;
}

bool at_rstate_in_segment(const at_ruleset_t *rs, const at_rstate_t *s, const char *key,
                          size_t klen, const char *name, size_t n)
{
    /* only the version acting for the user counts: a rollout's share, the
     * active version for the others; shadow versions never */
    for (size_t i = 0; i < rs->n; i++) {
        const at_rule_t *r = rs->rules[i];
        if (r->kind == AT_RULE_SEGMENT && strlen(r->name) == n && memcmp(r->name, name, n) == 0 &&
            at_rule_acts_for(rs, r, key, klen) && at_rrule__member(at_rstate__get(s, r->id)))
            return true;
    }
    return false;
}

void at_rstate_memberships(const at_ruleset_t *rs, const at_rstate_t *s, const char *key,
                           size_t klen, void (*fn)(void *ud, uint32_t id), void *ud)
{
    for (uint32_t i = 0; i < s->nr; i++) {
        const at_rule_t *r = at_ruleset_by_id(rs, s->r[i].id);
        if (r && r->kind == AT_RULE_SEGMENT && at_rrule__member(&s->r[i]) &&
            at_rule_acts_for(rs, r, key, klen))
            fn(ud, r->id);
    }
}

static void at_rstate__time(at_buf_t *out, int64_t ms)
{
    char t[40];
    at_time_format_rfc3339(ms, t);
    AT_ASSERT(at_buf_printf(out, "\"%s\"", t) >= 0);
}

void at_rstate_render(const at_ruleset_t *rs, const at_rstate_t *s, const char *key, size_t klen,
                      at_buf_t *out)
{
    AT_ASSERT(at_buf_puts(out, "\"segments\":[") == 0);
    bool first = true;
    for (size_t i = 0; i < rs->n; i++) {
        const at_rule_t *r = rs->rules[i];
        const at_rrule_t *rr = at_rstate__get(s, r->id);
        if (r->kind != AT_RULE_SEGMENT || !at_rrule__member(rr) ||
            !at_rule_acts_for(rs, r, key, klen))
            continue;
        int64_t since = INT64_MAX;
        for (uint32_t j = 0; j < rr->ng; j++)
            if (rr->g[j].member && rr->g[j].since < since)
                since = rr->g[j].since;
        AT_ASSERT(at_buf_puts(out, first ? "{\"name\":" : ",{\"name\":") == 0);
        first = false;
        AT_ASSERT(at_buf_json_str(out, r->name, strlen(r->name)) == 0);
        AT_ASSERT(at_buf_printf(out, ",\"version\":%u,\"since\":", r->version) >= 0);
        at_rstate__time(out, since);
        if (r->group) {
            AT_ASSERT(at_buf_puts(out, ",\"groups\":[") == 0);
            bool gf = true;
            for (uint32_t j = 0; j < rr->ng; j++) {
                if (!rr->g[j].member)
                    continue;
                AT_ASSERT(at_buf_puts(out, gf ? "{\"group\":" : ",{\"group\":") == 0);
                gf = false;
                AT_ASSERT(at_buf_json_str(out, rr->g[j].key.s, rr->g[j].key.n) == 0);
                AT_ASSERT(at_buf_puts(out, ",\"since\":") == 0);
                at_rstate__time(out, rr->g[j].since);
                AT_ASSERT(at_buf_putc(out, '}') == 0);
            }
            AT_ASSERT(at_buf_putc(out, ']') == 0);
        }
        AT_ASSERT(at_buf_putc(out, '}') == 0);
    }
    AT_ASSERT(at_buf_puts(out, "],\"triggers\":[") == 0);
    for (uint32_t i = 0; i < s->nfired; i++) {
        const at_rfired_t *f = &s->fired[i];
        const at_rule_t *r = f->id ? at_ruleset_by_id(rs, f->id) : NULL;
        AT_ASSERT(at_buf_puts(out, i ? ",{\"name\":" : "{\"name\":") == 0);
        if (r)
            AT_ASSERT(at_buf_json_str(out, r->name, strlen(r->name)) == 0);
        else if (!f->id)
            AT_ASSERT(at_buf_json_str(out, f->name.s, f->name.n) == 0);
        else /* an id that no set ever named here: nothing to say */
            AT_ASSERT(at_buf_puts(out, "null") == 0);
        if (r || !f->id)
            AT_ASSERT(at_buf_printf(out, ",\"version\":%u", r ? r->version : f->version) >= 0);
        AT_ASSERT(at_buf_puts(out, ",\"at\":") == 0);
        at_rstate__time(out, f->at);
        if (r && r->action) {
            AT_ASSERT(at_buf_puts(out, ",\"action\":") == 0);
            AT_ASSERT(at_buf_append(out, r->action, r->action_len) == 0);
        }
        AT_ASSERT(at_buf_putc(out, '}') == 0);
    }
    AT_ASSERT(at_buf_putc(out, ']') == 0);
}

/* ---- merges --------------------------------------------------------------- */

at_rrule_t *at_rules__rule_state(at_rstate_t *s, uint32_t id);
at_rgroup_t *at_rules__group(at_rstate_t *s, at_rrule_t *r, at_pstr_t key, bool create);
uint32_t at_rules__push_entry(at_rstate_t *s, at_rgroup_t *g, int64_t ts, int64_t v);

static void at_rstate__merge_group(at_rstate_t *dst, at_rgroup_t *g, const at_rgroup_t *src)
{
    /* interleave by time (equal times: dst's entries first); past the cap
     * the oldest go */
    uint32_t n = g->n + src->n;
    at_rentry_t *e = at_arena_alloc(dst->arena, (n + 1) * sizeof *e);
    uint32_t i = 0, j = 0, k = 0;
    while (i < g->n || j < src->n) {
        bool take_dst = j >= src->n || (i < g->n && g->e[i].ts <= src->e[j].ts);
        e[k++] = take_dst ? g->e[i++] : src->e[j++];
    }
    uint32_t drop = n > AT_RULE_MAX_ENTRIES ? n - AT_RULE_MAX_ENTRIES : 0;
    g->degraded |= src->degraded || drop > 0;
    g->e = e + drop;
    g->n = g->cap = n - drop;
    if (src->bucket > g->bucket)
        g->bucket = src->bucket;
}

void at_rstate_merge(const at_ruleset_t *rs, at_rstate_t *dst, const at_rstate_t *src)
{
    (void)rs;
    for (uint32_t i = 0; i < src->nr; i++) {
        const at_rrule_t *sr = &src->r[i];
        at_rrule_t *dr = at_rules__rule_state(dst, sr->id);
        for (uint32_t j = 0; j < sr->ng; j++) {
            at_rgroup_t *g = at_rules__group(dst, dr, sr->g[j].key, true);
            if (g)
                at_rstate__merge_group(dst, g, &sr->g[j]);
        }
        if (sr->armed_at != AT_RULE_NONE) {
            if (dr->armed_at == AT_RULE_NONE) {
                dr->armed_at = sr->armed_at;
                dr->deadline = sr->deadline;
            } else {
                dr->armed_at = AT_MIN(dr->armed_at, sr->armed_at);
                dr->deadline = AT_MAX(dr->deadline, sr->deadline);
            }
        }
        if (sr->nearly) {
            int64_t *e = at_arena_alloc(dst->arena, (dr->nearly + sr->nearly) * sizeof *e);
            if (dr->nearly)
                memcpy(e, dr->early_at, dr->nearly * sizeof *e);
            memcpy(e + dr->nearly, sr->early_at, sr->nearly * sizeof *e);
            dr->early_at = e;
            dr->nearly += sr->nearly;
        }
        if (sr->last_fired != AT_RULE_NONE &&
            (dr->last_fired == AT_RULE_NONE || sr->last_fired > dr->last_fired))
            dr->last_fired = sr->last_fired;
    }
    /* recent fires: newest first, at most AT_RULE_RECENT_FIRES */
    at_rfired_t all[2 * AT_RULE_RECENT_FIRES] = {{0}}; /* a merge: rare */
    uint32_t n = 0, a = 0, b = 0;
    while (n < AT_RULE_RECENT_FIRES && (a < dst->nfired || b < src->nfired)) {
        bool take_dst =
            b >= src->nfired || (a < dst->nfired && dst->fired[a].at >= src->fired[b].at);
        all[n++] = take_dst ? dst->fired[a++] : src->fired[b++];
    }
    for (uint32_t i = 0; i < n; i++) /* names of src's fires live with src */
        if (!all[i].id && all[i].name.n)
            all[i].name.s = at_arena_strndup(dst->arena, all[i].name.s, all[i].name.n);
    memcpy(dst->fired, all, n * sizeof all[0]);
    dst->nfired = n;
    dst->degraded += src->degraded;
}
