/* codec.c - a profile's compact encoding and its JSON rendering.
 *
 * Encoding (format 3), all varints unless said otherwise:
 *   u8 format; 0 when the profile has no event, else zigzag first_seen + 1;
 *   then last_seen - first_seen; events; late; ncounters, {sym type,
 *   count}...; naff, when naff > 0 zigzag last_seen - aff_ref and {sym
 *   category, f32 score}...; nrecent, {item sym, time and kinds}...; session
 *   flag, then zigzag last_seen - last, last - start, events, pages; str
 *   traits; sym tz.
 * A sym is a string many users share: varint 2 * id + 1 for the partition's
 * dictionary entry id (at_sdict_t), or varint 2 * length and the bytes when
 * the dictionary is full or not given (a profile sent to another partition
 * is encoded without one). Item ids are syms too, but take at most half of
 * the dictionary (at_sdict_intern_half): there are many of them.
 * Times are stored relative to last_seen, the latest of them (the
 * affinities' reference and the session's last event are most often that
 * very event), and recent items relative to each other (newest first: small
 * gaps in a session, not days): d, the previous item's time (last_seen for
 * the first) - ts, which is never negative, and the kinds, as varint 2 * d
 * + 1 for a view alone (most items), else varint 2 * d then varint kinds
 * (a negative d, which no profile holds, as 0, kinds | 16, then varint -d).
 *
 * Format 2 (read, not written) had a flags byte, zigzag first_seen, times
 * against first_seen, items as plain strings and their kinds on their own.
 */
#include "at_json.h"
#include "at_profile.h"

#include <stdio.h>
#include <string.h>

enum { AT_PROFILE_FORMAT_2 = 2 };

/* sym: the id s was decoded from (AT_SDICT_NONE: none), which interning
 * s again would find (entries are unique), without reading the entry. */
static void at_profile__sym_enc(at_buf_t *out, at_sdict_t *dict, at_pstr_t s, uint32_t sym,
                                bool many)
{
    uint32_t id = AT_SDICT_NONE;
    if (dict && sym != AT_SDICT_NONE)
        id = sym;
    else if (dict)
        id = many ? at_sdict_intern_half(dict, s.s, s.n) : at_sdict_intern(dict, s.s, s.n);
    if (id != AT_SDICT_NONE) {
        at_enc_varint(out, (uint64_t)id * 2 + 1);
        return;
    }
    at_enc_varint(out, (uint64_t)s.n * 2);
    if (s.n)
        AT_ASSERT(at_buf_append(out, s.s, s.n) == 0);
}

/* A sym; *id its dictionary id, AT_SDICT_NONE for bytes. */
static at_pstr_t at_profile__sym_dec(at_dec_t *d, const at_sdict_t *dict, uint32_t *id)
{
    uint64_t v = at_dec_varint(d);
    at_pstr_t r = {NULL, 0};
    *id = AT_SDICT_NONE;
    if (v & 1) {
        if (!dict || v >> 1 >= AT_SDICT_NONE || !at_sdict_get(dict, (uint32_t)(v >> 1), &r.s, &r.n))
            d->bad = true;
        else
            *id = (uint32_t)(v >> 1);
        return r;
    }
    v >>= 1;
    if (v > (uint64_t)(d->end - d->p)) {
        d->bad = true;
        return r;
    }
    r.s = (const char *)d->p;
    r.n = (uint32_t)v;
    d->p += v;
    return r;
}

static void at_profile__recent_enc(at_buf_t *out, int64_t dt, uint8_t kinds)
{
    if (dt >= 0 && kinds == AT_PK_VIEW) {
        at_enc_varint(out, (uint64_t)dt * 2 + 1);
    } else if (dt >= 0) {
        at_enc_varint(out, (uint64_t)dt * 2);
        at_enc_varint(out, kinds);
    } else {
        at_enc_varint(out, 0);
        at_enc_varint(out, (uint64_t)kinds | 16);
        at_enc_varint(out, (uint64_t)0 - (uint64_t)dt);
    }
}

static int64_t at_profile__recent_dec(at_dec_t *d, uint8_t *kinds)
{
    uint64_t v = at_dec_varint(d);
    if (v & 1) {
        *kinds = AT_PK_VIEW;
        return (int64_t)(v >> 1);
    }
    uint64_t k = at_dec_varint(d);
    if (k > 31)
        d->bad = true;
    *kinds = (uint8_t)(k & 15);
    if (k & 16)
        return (int64_t)((uint64_t)0 - at_dec_varint(d));
    return (int64_t)(v >> 1);
}

void at_profile_encode(const at_profile_t *p, at_sdict_t *dict, at_buf_t *out)
{
    AT_ASSERT(at_buf_putc(out, AT_PROFILE_FORMAT) == 0);
    if (p->first_seen == AT_PROFILE_NONE) {
        at_enc_varint(out, 0);
        return;
    }
    at_enc_varint(out,
                  (((uint64_t)p->first_seen << 1) ^ (0 - ((uint64_t)p->first_seen >> 63))) + 1);
    const int64_t last = p->last_seen;
    at_enc_varint(out, (uint64_t)(last - p->first_seen));
    at_enc_varint(out, p->events);
    at_enc_varint(out, p->late);
    at_enc_varint(out, p->ncounters);
    for (uint32_t i = 0; i < p->ncounters; i++) {
        at_profile__sym_enc(out, dict, p->counters[i].type, p->counters[i].sym, false);
        at_enc_varint(out, p->counters[i].n);
    }
    at_enc_varint(out, p->naff);
    if (p->naff)
        at_enc_zigzag(out, last - p->aff_ref);
    for (uint32_t i = 0; i < p->naff; i++) {
        at_profile__sym_enc(out, dict, p->aff[i].cat, p->aff[i].sym, false);
        at_enc_f32(out, p->aff[i].score);
    }
    at_enc_varint(out, p->nrecent);
    int64_t prev = last;
    for (uint32_t i = 0; i < p->nrecent; i++) {
        at_profile__sym_enc(out, dict, p->recent[i].item, p->recent[i].sym, true);
        at_profile__recent_enc(out, prev - p->recent[i].ts, p->recent[i].kinds);
        prev = p->recent[i].ts;
    }
    bool sess = p->session.start != AT_PROFILE_NONE;
    at_enc_varint(out, sess);
    if (sess) {
        at_enc_zigzag(out, last - p->session.last);
        at_enc_varint(out, (uint64_t)(p->session.last - p->session.start));
        at_enc_varint(out, p->session.events);
        at_enc_varint(out, p->session.pages);
    }
    at_enc_str(out, p->traits.s, p->traits.n);
    at_profile__sym_enc(out, dict, p->tz, p->tz_sym, false);
}

/* Format 2, as the release before wrote it. */
/* The counters by event type, the same in formats 2 and 3; false: too many. */
static bool at_profile__counters_dec(at_profile_t *p, at_dec_t *d, const at_sdict_t *dict)
{
    uint64_t nc = at_dec_varint(d);
    if (nc > AT_PROFILE_MAX_COUNTERS + 1)
        return false;
    for (uint64_t i = 0; i < nc; i++) {
        p->counters[i].type = at_profile__sym_dec(d, dict, &p->counters[i].sym);
        p->counters[i].n = at_dec_varint(d);
    }
    p->ncounters = (uint32_t)nc;
    return true;
}

static int at_profile__decode2(at_profile_t *p, const uint8_t *data, size_t n,
                               const at_sdict_t *dict)
{
    at_dec_t d = {data + 1, data + n, false};
    uint64_t flags = at_dec_varint(&d);
    if (d.bad)
        return AT_ECORRUPT;
    if (!(flags & 1))
        return (int)(d.p - data);
    int64_t base = at_dec_zigzag(&d);
    p->first_seen = base;
    p->last_seen = base + (int64_t)at_dec_varint(&d);
    p->events = at_dec_varint(&d);
    p->late = at_dec_varint(&d);
    if (!at_profile__counters_dec(p, &d, dict))
        return AT_ECORRUPT;
    p->aff_ref = base + at_dec_zigzag(&d);
    uint64_t na = at_dec_varint(&d);
    if (na > AT_PROFILE_MAX_CATEGORIES)
        return AT_ECORRUPT;
    for (uint64_t i = 0; i < na; i++) {
        p->aff[i].cat = at_profile__sym_dec(&d, dict, &p->aff[i].sym);
        p->aff[i].score = at_dec_f32(&d);
    }
    p->naff = (uint32_t)na;
    if (!na)
        p->aff_ref = AT_PROFILE_NONE;
    uint64_t nr = at_dec_varint(&d);
    if (nr > AT_PROFILE_MAX_RECENT)
        return AT_ECORRUPT;
    int64_t prev = p->last_seen;
    for (uint64_t i = 0; i < nr; i++) {
        p->recent[i].item = at_dec_str(&d);
        p->recent[i].sym = AT_SDICT_NONE;
        p->recent[i].ts = prev - at_dec_zigzag(&d);
        prev = p->recent[i].ts;
        uint64_t k = at_dec_varint(&d);
        if (k > 15)
            return AT_ECORRUPT;
        p->recent[i].kinds = (uint8_t)k;
    }
    p->nrecent = (uint32_t)nr;
    if (at_dec_varint(&d)) {
        p->session.start = base + at_dec_zigzag(&d);
        p->session.last = p->session.start + (int64_t)at_dec_varint(&d);
        p->session.events = (uint32_t)at_dec_varint(&d);
        p->session.pages = (uint32_t)at_dec_varint(&d);
    }
    p->traits = at_dec_str(&d);
    p->tz = at_profile__sym_dec(&d, dict, &p->tz_sym);
    return d.bad ? AT_ECORRUPT : (int)(d.p - data);
}

int at_profile_decode(at_profile_t *p, const uint8_t *data, size_t n, const at_sdict_t *dict,
                      at_arena_t *arena)
{
    at_profile_init(p, arena);
    if (n >= 1 && data[0] == AT_PROFILE_FORMAT_2)
        return at_profile__decode2(p, data, n, dict);
    if (n < 1 || data[0] != AT_PROFILE_FORMAT)
        return AT_ECORRUPT;
    at_dec_t d = {data + 1, data + n, false};
    uint64_t first = at_dec_varint(&d);
    if (d.bad)
        return AT_ECORRUPT;
    if (!first)
        return (int)(d.p - data);
    first--;
    p->first_seen = (int64_t)((first >> 1) ^ (0 - (first & 1)));
    const int64_t last = p->first_seen + (int64_t)at_dec_varint(&d);
    p->last_seen = last;
    p->events = at_dec_varint(&d);
    p->late = at_dec_varint(&d);
    if (!at_profile__counters_dec(p, &d, dict))
        return AT_ECORRUPT;
    uint64_t na = at_dec_varint(&d);
    if (na > AT_PROFILE_MAX_CATEGORIES)
        return AT_ECORRUPT;
    if (na)
        p->aff_ref = last - at_dec_zigzag(&d);
    for (uint64_t i = 0; i < na; i++) {
        p->aff[i].cat = at_profile__sym_dec(&d, dict, &p->aff[i].sym);
        p->aff[i].score = at_dec_f32(&d);
    }
    p->naff = (uint32_t)na;
    uint64_t nr = at_dec_varint(&d);
    if (nr > AT_PROFILE_MAX_RECENT)
        return AT_ECORRUPT;
    int64_t prev = last;
    for (uint64_t i = 0; i < nr; i++) {
        p->recent[i].item = at_profile__sym_dec(&d, dict, &p->recent[i].sym);
        p->recent[i].ts = prev - at_profile__recent_dec(&d, &p->recent[i].kinds);
        prev = p->recent[i].ts;
    }
    p->nrecent = (uint32_t)nr;
    if (at_dec_varint(&d)) {
        p->session.last = last - at_dec_zigzag(&d);
        p->session.start = p->session.last - (int64_t)at_dec_varint(&d);
        p->session.events = (uint32_t)at_dec_varint(&d);
        p->session.pages = (uint32_t)at_dec_varint(&d);
    }
    p->traits = at_dec_str(&d);
    p->tz = at_profile__sym_dec(&d, dict, &p->tz_sym);
    return d.bad ? AT_ECORRUPT : (int)(d.p - data);
}

/* ---- rendering ------------------------------------------------------------------------ */

static void at_profile__time(at_buf_t *out, const char *name, int64_t ms)
{
    char t[40];
    at_time_format_rfc3339(ms, t);
    AT_ASSERT(at_buf_printf(out, "\"%s\":\"%s\"", name, t) >= 0);
}

static void at_profile__kinds(at_buf_t *out, int kinds)
{
    static const char *const names[] = {"view", "cart", "purchase", "other"};
    AT_ASSERT(at_buf_putc(out, '[') == 0);
    bool first = true;
    for (int i = 0; i < 4; i++) {
        if (kinds & (1 << i)) {
            AT_ASSERT(at_buf_printf(out, "%s\"%s\"", first ? "" : ",", names[i]) >= 0);
            first = false;
        }
    }
    AT_ASSERT(at_buf_putc(out, ']') == 0);
}

static void at_profile__affinities(const at_profile_t *p, at_buf_t *out)
{
    uint32_t order[AT_PROFILE_MAX_CATEGORIES + 1];
    double total = 0;
    for (uint32_t i = 0; i < p->naff; i++) {
        order[i] = i;
        total += p->aff[i].score;
    }
    for (uint32_t i = 1; i < p->naff; i++) { /* by score, highest first */
        uint32_t k = order[i], j = i;
        while (j > 0 && p->aff[order[j - 1]].score < p->aff[k].score) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
    AT_ASSERT(at_buf_puts(out, "\"affinities\":[") == 0);
    for (uint32_t i = 0; i < p->naff; i++) {
        const uint32_t k = order[i];
        AT_ASSERT(at_buf_puts(out, i ? ",{\"category\":" : "{\"category\":") == 0);
        AT_ASSERT(at_buf_json_str(out, p->aff[k].cat.s, p->aff[k].cat.n) == 0);
        AT_ASSERT(at_buf_printf(out, ",\"affinity\":%.6g,\"score\":%.6g}",
                                total > 0 ? p->aff[k].score / total : 0.0,
                                (double)p->aff[k].score) >= 0);
    }
    AT_ASSERT(at_buf_putc(out, ']') == 0);
}

void at_profile_render(const at_profile_t *p, const at_profile_cfg_t *cfg, int64_t wm,
                       at_buf_t *out)
{
    if (p->first_seen == AT_PROFILE_NONE) {
        AT_ASSERT(at_buf_puts(out, "\"first_seen\":null,\"last_seen\":null,\"events\":0,"
                                   "\"counters\":{},\"affinities\":[],\"recent_items\":[],"
                                   "\"session\":null,\"traits\":{}") == 0);
        return;
    }
    at_profile__time(out, "first_seen", p->first_seen);
    AT_ASSERT(at_buf_putc(out, ',') == 0);
    at_profile__time(out, "last_seen", p->last_seen);
    AT_ASSERT(at_buf_printf(out, ",\"events\":%llu,\"late_events\":%llu,\"counters\":{",
                            (unsigned long long)p->events, (unsigned long long)p->late) >= 0);
    for (uint32_t i = 0; i < p->ncounters; i++) {
        if (i)
            AT_ASSERT(at_buf_putc(out, ',') == 0);
        AT_ASSERT(at_buf_json_str(out, p->counters[i].type.s, p->counters[i].type.n) == 0);
        AT_ASSERT(at_buf_printf(out, ":%llu", (unsigned long long)p->counters[i].n) >= 0);
    }
    AT_ASSERT(at_buf_puts(out, "},") == 0);
    at_profile__affinities(p, out);
    AT_ASSERT(at_buf_puts(out, ",\"recent_items\":[") == 0);
    for (uint32_t i = 0; i < p->nrecent; i++) {
        AT_ASSERT(at_buf_puts(out, i ? ",{\"item_id\":" : "{\"item_id\":") == 0);
        AT_ASSERT(at_buf_json_str(out, p->recent[i].item.s, p->recent[i].item.n) == 0);
        AT_ASSERT(at_buf_putc(out, ',') == 0);
        at_profile__time(out, "at", p->recent[i].ts);
        AT_ASSERT(at_buf_puts(out, ",\"kinds\":") == 0);
        at_profile__kinds(out, p->recent[i].kinds);
        AT_ASSERT(at_buf_putc(out, '}') == 0);
    }
    AT_ASSERT(at_buf_puts(out, "],\"session\":") == 0);
    if (p->session.start == AT_PROFILE_NONE) {
        AT_ASSERT(at_buf_puts(out, "null") == 0);
    } else {
        AT_ASSERT(at_buf_putc(out, '{') == 0);
        at_profile__time(out, "start", p->session.start);
        AT_ASSERT(at_buf_putc(out, ',') == 0);
        at_profile__time(out, "last", p->session.last);
        bool active = wm == AT_PROFILE_NONE || wm < p->session.last + cfg->session_gap_ms;
        AT_ASSERT(at_buf_printf(out,
                                ",\"events\":%u,\"pages\":%u,\"duration_ms\":%lld,\"active\":%s}",
                                p->session.events, p->session.pages,
                                (long long)(p->session.last - p->session.start),
                                active ? "true" : "false") >= 0);
    }
    AT_ASSERT(at_buf_puts(out, ",\"traits\":") == 0);
    if (p->traits.n)
        AT_ASSERT(at_buf_append(out, p->traits.s, p->traits.n) == 0);
    else
        AT_ASSERT(at_buf_puts(out, "{}") == 0);
    if (p->tz.n) {
        AT_ASSERT(at_buf_puts(out, ",\"timezone\":") == 0);
        AT_ASSERT(at_buf_json_str(out, p->tz.s, p->tz.n) == 0);
    }
}
