/* proc_user.c - a user's value (decode and encode), what rule expressions
 * read of the event and the profile, outputs, and reads of a user.
 *
 * THREAD SAFETY: the partition's thread.
 */
#include "at_tz.h"
#include "proc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ---- the value ------------------------------------------------------------------ */

void at_proc__load(at_proc_t *pr, uint32_t slot, at_user_t *u)
{
    size_t n;
    const uint8_t *v = at_keyed_value(pr->users, slot, &n);
    at_proc__decode(pr, v, n, u);
    u->slot = slot;
    u->key = at_keyed_key(pr->users, slot, &u->klen);
}

void at_proc__decode(at_proc_t *pr, const uint8_t *v, size_t n, at_user_t *u)
{
    /* not a memset: the profile inside is 6 KiB of arrays read only up to
     * their counts */
    u->key = NULL;
    u->klen = 0;
    u->alias = false;
    u->target = (at_pstr_t){NULL, 0};
    u->alias_offset = 0;
    u->slot = AT_KEYED_NONE;
    u->degraded0 = 0;
    at_profile_init(&u->prof, &pr->arena);
    at_rstate_init(&u->rst, &pr->arena);
    if (n < 2 || v[0] != AT_PROC_FORMAT)
        return; /* new */
    at_dec_t d = {v + 2, v + n, false};
    if (v[1] == AT_PROC_ALIAS) {
        u->alias = true;
        u->target = at_dec_str(&d);
        u->alias_offset = (int64_t)at_dec_varint(&d);
        AT_ASSERT(!d.bad);
        return;
    }
    uint64_t plen = at_dec_varint(&d);
    AT_ASSERT(!d.bad && plen <= (uint64_t)(d.end - d.p));
    int rc = at_profile_decode(&u->prof, d.p, (size_t)plen, pr->dict, &pr->arena);
    AT_ASSERT(rc >= 0);
    d.p += plen;
    rc = at_rstate_decode(&u->rst, d.p, (size_t)(d.end - d.p), pr->dict, &pr->arena);
    AT_ASSERT(rc >= 0);
    u->degraded0 = u->rst.degraded;
}

void at_proc__encode(at_user_t *u, at_sdict_t *dict, at_buf_t *b)
{
    at_buf_reset(b);
    AT_ASSERT(at_buf_putc(b, AT_PROC_FORMAT) == 0);
    AT_ASSERT(at_buf_putc(b, AT_PROC_USER) == 0);
    size_t at = b->len;
    at_profile_encode(&u->prof, dict, b);
    size_t plen = b->len - at;
    /* the length goes before the profile: encode it, then move */
    uint8_t tmp[10];
    size_t tl = 0;
    uint64_t x = plen;
    do {
        uint8_t c = x & 0x7f;
        x >>= 7;
        tmp[tl++] = (uint8_t)(c | (x ? 0x80 : 0));
    } while (x);
    AT_ASSERT(at_buf_reserve(b, tl) == 0);
    memmove(b->data + at + tl, b->data + at, plen);
    memcpy(b->data + at, tmp, tl);
    b->len += tl;
    at_rstate_encode(&u->rst, dict, b);
}

void at_proc__store(at_proc_t *pr, at_user_t *u)
{
    if (u->rst.degraded > u->degraded0) { /* events past a state cap */
        pr->st.degraded += u->rst.degraded - u->degraded0;
        u->degraded0 = u->rst.degraded;
    }
    at_proc__encode(u, pr->dict, &pr->enc);
    at_keyed_set(pr->users, u->slot, pr->enc.data, pr->enc.len);
}

void at_proc__store_at(at_proc_t *pr, at_user_t *u, int64_t after)
{
    /* the deadline reads u's strings, which point into the old value */
    int64_t dl = at_proc__deadline(pr, u, after);
    at_proc__store(pr, u);
    at_keyed_timer_set(pr->users, u->slot, dl);
}

void at_proc__store_alias(at_proc_t *pr, uint32_t slot, at_pstr_t target, int64_t offset)
{
    at_buf_t *b = &pr->enc;
    at_buf_reset(b);
    AT_ASSERT(at_buf_putc(b, AT_PROC_FORMAT) == 0);
    AT_ASSERT(at_buf_putc(b, AT_PROC_ALIAS) == 0);
    at_enc_str(b, target.s, target.n);
    at_enc_varint(b, (uint64_t)offset);
    at_keyed_set(pr->users, slot, b->data, b->len);
}

bool at_proc_alias(const at_proc_t *pr, const char *key, size_t n, at_pstr_t *target)
{
    uint32_t slot = at_keyed_find(pr->users, key, n);
    return slot != AT_KEYED_NONE && at_proc__alias_at(pr, slot, target);
}

bool at_proc__alias_at(const at_proc_t *pr, uint32_t slot, at_pstr_t *target)
{
    size_t vn;
    const uint8_t *v = at_keyed_value(pr->users, slot, &vn);
    if (vn < 2 || v[0] != AT_PROC_FORMAT || v[1] != AT_PROC_ALIAS)
        return false;
    at_dec_t d = {v + 2, v + vn, false};
    *target = at_dec_str(&d);
    return !d.bad;
}

/* ---- fields ---------------------------------------------------------------------- */

void at_proc__free_fields(at_proc_t *pr)
{
    for (size_t i = 0; i < pr->nfp; i++)
        at_proc__fpath_free(&pr->fp[i]);
    free(pr->fp);
    pr->fp = NULL;
    pr->nfp = 0;
}

void at_proc__fpath_init(at_fpath_t *f, const char *path, size_t n)
{
    memset(f, 0, sizeof *f);
    f->path = at_xstrndup(path, n);
    f->buf = at_xmalloc(n + 1);
    f->nsteps = at_expr_path_split(f->path, n, f->steps, AT_PROC_MAX_STEPS, f->buf, n + 1);
    if (f->nsteps <= 0) {
        f->kind = AT_FP_NONE;
        return;
    }
    const at_expr_step_t *s = f->steps;
#define IS(k, w) (s[k].s && s[k].len == sizeof(w) - 1 && !memcmp(s[k].s, w, sizeof(w) - 1))
    if (IS(0, "profile")) {
        if (f->nsteps == 3 && IS(1, "counters"))
            f->kind = AT_FP_COUNTER;
        else if (f->nsteps == 2 && IS(1, "first_seen"))
            f->kind = AT_FP_FIRST;
        else if (f->nsteps == 2 && IS(1, "last_seen"))
            f->kind = AT_FP_LAST;
        else if (f->nsteps == 3 && IS(1, "session"))
            f->kind = IS(2, "start")      ? AT_FP_SESS_START
                      : IS(2, "events")   ? AT_FP_SESS_EVENTS
                      : IS(2, "pages")    ? AT_FP_SESS_PAGES
                      : IS(2, "duration") ? AT_FP_SESS_DURATION
                                          : AT_FP_NONE;
        else if (f->nsteps >= 3 && IS(1, "traits"))
            f->kind = AT_FP_TRAIT;
        else
            f->kind = AT_FP_NONE;
    } else if (f->nsteps == 1 && IS(0, "timestamp")) {
        f->kind = AT_FP_TIMESTAMP;
    } else if (f->nsteps == 1 && IS(0, "received_at")) {
        f->kind = AT_FP_RECEIVED;
    } else {
        f->kind = AT_FP_EVENT;
    }
#undef IS
}

void at_proc__fpath_free(at_fpath_t *f)
{
    free(f->buf);
    free(f->path);
}

/* Splits every field path of the rule set once, so fetching walks steps. */
void at_proc__prepare_fields(at_proc_t *pr)
{
    at_proc__free_fields(pr);
    const at_ruleset_t *rs = pr->rs;
    pr->nfp = rs->nfields;
    pr->fp = at_xcalloc(rs->nfields + 1, sizeof *pr->fp);
    for (size_t i = 0; i < rs->nfields; i++)
        at_proc__fpath_init(&pr->fp[i], rs->fields[i], strlen(rs->fields[i]));
}

const at_json_t *at_proc__walk(const at_json_t *v, const at_expr_step_t *s, int n)
{
    for (int i = 0; v && i < n; i++) {
        if (s[i].s) {
            v = v->type == AT_JSON_OBJECT ? at_json_get(v, s[i].s, s[i].len) : NULL;
        } else {
            if (v->type != AT_JSON_ARRAY)
                return NULL;
            const at_json_t *c = v->child;
            for (int64_t k = 0; c && k < s[i].index; k++)
                c = c->next;
            v = c;
        }
    }
    return v;
}

void at_proc__jval(const at_json_t *v, const char *src, at_val_t *out)
{
    if (!v)
        return;
    switch (v->type) {
    case AT_JSON_NULL:
        out->type = AT_VAL_NULL;
        break;
    case AT_JSON_TRUE:
        *out = at_val_bool(true);
        break;
    case AT_JSON_FALSE:
        *out = at_val_bool(false);
        break;
    case AT_JSON_NUMBER:
        *out = at_val_num(at_json_number(v));
        break;
    case AT_JSON_STRING:
        *out = at_val_str(v->s, v->len);
        break;
    default:
        *out = at_val_json(src + v->off, v->end - v->off);
        break;
    }
}

static bool at_proc__session_open(const at_host_t *h)
{
    const at_profile_t *p = &h->u->prof;
    return p->session.start != AT_PROFILE_NONE && h->now >= p->session.start &&
           h->now < p->session.last + h->pr->cfg.profile.session_gap_ms;
}

static void at_proc__fetch(at_host_t *h, int slot, at_val_t *out);

/* A field's value for this host: every rule that reads `type` gets the one
 * lookup. */
static void at_proc__field(void *ctx, int slot, at_val_t *out)
{
    at_host_t *h = ctx;
    if (slot < 0 || (size_t)slot >= h->pr->nfp)
        return;
    if (h->cached[slot]) {
        *out = h->cache[slot];
        return;
    }
    at_proc__fetch(h, slot, out);
    h->cache[slot] = *out;
    h->cached[slot] = 1;
}

static void at_proc__fetch(at_host_t *h, int slot, at_val_t *out)
{
    const at_fpath_t *f = &h->pr->fp[slot];
    if (f->kind == AT_FP_EVENT) {
        if (h->view && h->view->slot)
            *out = h->view->slot[slot];
        return;
    }
    at_proc__fetch_fp(h, f, out);
}

void at_proc__fetch_fp(at_host_t *h, const at_fpath_t *f, at_val_t *out)
{
    at_proc_t *pr = h->pr;
    const at_profile_t *p = h->u ? &h->u->prof : NULL;
    switch (f->kind) {
    case AT_FP_TIMESTAMP:
        if (h->view)
            *out = at_val_time(h->ts);
        break;
    case AT_FP_RECEIVED:
        if (h->view)
            *out = at_val_time(h->recv);
        break;
    case AT_FP_COUNTER:
        if (p)
            *out = at_val_num((double)at_profile_counter(p, f->steps[2].s, f->steps[2].len));
        break;
    case AT_FP_FIRST:
        if (p && p->first_seen != AT_PROFILE_NONE)
            *out = at_val_time(p->first_seen);
        break;
    case AT_FP_LAST:
        if (p && p->last_seen != AT_PROFILE_NONE)
            *out = at_val_time(p->last_seen);
        break;
    case AT_FP_SESS_START:
        if (p && at_proc__session_open(h))
            *out = at_val_time(p->session.start);
        break;
    case AT_FP_SESS_EVENTS:
        if (p)
            *out = at_val_num(at_proc__session_open(h) ? p->session.events : 0);
        break;
    case AT_FP_SESS_PAGES:
        if (p)
            *out = at_val_num(at_proc__session_open(h) ? p->session.pages : 0);
        break;
    case AT_FP_SESS_DURATION:
        if (p && at_proc__session_open(h))
            *out = at_val_dur(p->session.last - p->session.start);
        break;
    case AT_FP_TRAIT:
        if (!p || !p->traits.n)
            break;
        if (!h->traits_done) {
            at_json_t *t = NULL;
            at_error_t e;
            h->traits_done = true;
            if (at_json_parse_all(p->traits.s, p->traits.n, &pr->arena, 64, &t, &e) == 0)
                h->traits = t;
        }
        if (h->traits)
            at_proc__jval(at_proc__walk(h->traits, f->steps + 2, f->nsteps - 2), p->traits.s, out);
        break;
    default:
        break;
    }
}

static double at_proc__affinity(void *ctx, const char *cat, size_t n)
{
    const at_host_t *h = ctx;
    return h->u ? at_profile_affinity(&h->u->prof, cat, n) : 0;
}

void at_proc__host(at_proc_t *pr, at_host_t *h, const at_user_t *u, const at_eview_t *view,
                   int64_t ts, int64_t recv, int64_t now)
{
    memset(h, 0, sizeof *h);
    h->pr = pr;
    h->u = u;
    h->cache = at_arena_alloc(&pr->arena, (pr->nfp + 1) * sizeof *h->cache);
    h->cached = at_arena_alloc(&pr->arena, pr->nfp + 1);
    memset(h->cached, 0, pr->nfp + 1);
    h->view = view;
    h->ts = ts;
    h->recv = recv;
    h->now = now;
    const at_tz_t *tz = NULL;
    if (u && u->prof.tz.n)
        tz = at_tz_get(u->prof.tz.s, u->prof.tz.n);
    h->rh = (at_rule_host_t){
        .field = at_proc__field,
        .affinity = at_proc__affinity,
        .ctx = h,
        .session_start = u && at_proc__session_open(h) ? u->prof.session.start : AT_RULE_NONE,
        .tz = tz ? tz : at_tz_utc(),
        .key = u ? u->key : "",
        .key_len = u ? u->klen : 0,
    };
}

/* What the profile reads of a canonical event. */
void at_proc__pevent(const at_json_t *root, const char *src, int64_t ts, at_pevent_t *ev,
                     at_arena_t *arena)
{
    memset(ev, 0, sizeof *ev);
    ev->ts = ts;
#define STR(obj, name, dst)                                                                        \
    do {                                                                                           \
        const at_json_t *v_ = (obj) ? at_json_get((obj), name, sizeof(name) - 1) : NULL;           \
        if (v_ && v_->type == AT_JSON_STRING)                                                      \
            (dst) = (at_pstr_t){v_->s, v_->len};                                                   \
    } while (0)
    STR(root, "type", ev->type);
    STR(root, "item_id", ev->item);
    STR(root, "category", ev->category);
    const at_json_t *ctx = at_json_get(root, "context", 7);
    if (ctx && ctx->type == AT_JSON_OBJECT)
        STR(ctx, "timezone", ev->tz);
    const at_json_t *props = at_json_get(root, "properties", 10);
    if (props && props->type == AT_JSON_OBJECT) {
        ev->traits = (at_pstr_t){src + props->off, props->end - props->off};
        const at_json_t *items = at_json_get(props, "items", 5);
        if (items && items->type == AT_JSON_ARRAY && items->len) {
            size_t n = AT_MIN(items->len, 64u), k = 0;
            at_pitem_t *out = at_arena_alloc(arena, n * sizeof *out);
            for (const at_json_t *it = items->child; it && k < n; it = it->next) {
                if (it->type != AT_JSON_OBJECT)
                    continue;
                at_pitem_t x = {{NULL, 0}, {NULL, 0}};
                STR(it, "item_id", x.item);
                if (!x.item.n)
                    STR(it, "product_id", x.item);
                STR(it, "category", x.category);
                if (x.item.n || x.category.n)
                    out[k++] = x;
            }
            ev->items = out;
            ev->nitems = k;
        }
    }
#undef STR
}

/* ---- deadlines and outputs ------------------------------------------------------------ */

int64_t at_proc__deadline(at_proc_t *pr, const at_user_t *u, int64_t after)
{
    if (u->alias)
        return AT_TIMER_NONE; /* aliases stay: a later event of the key must still forward */
    const at_tz_t *tz = u->prof.tz.n ? at_tz_get(u->prof.tz.s, u->prof.tz.n) : NULL;
    int64_t send = at_profile_session_end(&u->prof, &pr->cfg.profile);
    if (send != AT_PROFILE_NONE && send <= after)
        send = AT_RULE_NONE;
    int64_t dl = at_rules_deadline(pr->rs, &u->rst, tz ? tz : at_tz_utc(), after,
                                   send == AT_PROFILE_NONE ? AT_RULE_NONE : send);
    if (pr->cfg.ttl_ms > 0 && u->prof.last_seen != AT_PROFILE_NONE) {
        int64_t exp = u->prof.last_seen + pr->cfg.ttl_ms;
        if (exp > after && exp < dl)
            dl = exp;
        else if (exp <= after && dl == AT_TIMER_NONE)
            dl = after + 1;
    }
    return dl;
}

static void at_proc__count_member(at_proc_t *pr, uint32_t id, int delta)
{
    for (size_t i = 0; i < pr->nmembers; i++) {
        if (pr->members[i].id == id) {
            pr->members[i].n += delta;
            return;
        }
    }
    pr->members = at_xrealloc(pr->members, (pr->nmembers + 1) * sizeof *pr->members);
    pr->members[pr->nmembers++] = (at_member_count_t){id, delta};
}

/* The deterministic id of an output: (rule, version, user key, kind, group,
 * instant), DESIGN.md §6: XXH3-128 of "name\x1fversion\x1fkind\x1fat\x1fkey\x1fgroup"
 * in hex. */
static void at_proc__out_id(const at_rule_out_t *o, const char *key, size_t klen, char out[33])
{
    size_t nl = strlen(o->rule->name), gn = o->group.n,
           need = nl + klen + gn + 65; /* 3 numbers of 20, 5 separators */
    char stack[512], *buf = need <= sizeof stack ? stack : at_xmalloc(need), *p = buf;
    memcpy(p, o->rule->name, nl);
    p += nl;
    *p++ = '\x1f';
    p += at_fmt_u64(p, o->rule->version);
    *p++ = '\x1f';
    p += at_fmt_i64(p, o->kind);
    *p++ = '\x1f';
    p += at_fmt_i64(p, o->at);
    *p++ = '\x1f';
    memcpy(p, key, klen);
    p += klen;
    *p++ = '\x1f';
    if (gn)
        memcpy(p, o->group.s, gn);
    p += gn;
    XXH128_hash_t h = XXH3_128bits(buf, (size_t)(p - buf));
    if (buf != stack)
        free(buf);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(h.high64 >> (60 - 4 * i)) & 15];
        out[16 + i] = hex[(h.low64 >> (60 - 4 * i)) & 15];
    }
    out[32] = '\0';
}

static const char *at_proc__kind_name(int kind)
{
    return kind == AT_OUT_ENTER  ? "segment_enter"
           : kind == AT_OUT_EXIT ? "segment_exit"
                                 : "trigger";
}

void at_proc__emit(void *ud, const at_rule_out_t *o)
{
    at_host_t *h = ud;
    at_proc_t *pr = h->pr;
    const char *key = h->rh.key;
    size_t klen = h->rh.key_len;
    if (o->shadow) {
        pr->st.shadow_outputs++;
        return;
    }
    if (o->user_delta)
        at_proc__count_member(pr, o->rule->id, o->user_delta);
    int64_t off = pr->out_next++;
    pr->st.early_outputs += o->early;
    if (off < pr->out_suppress) {
        pr->st.outputs_suppressed++;
        return;
    }
    pr->st.outputs++;
    char id[33], at[40];
    at_proc__out_id(o, key, klen, id);
    at_time_format_rfc3339(o->at, at);
    at_buf_t *b = &pr->msg;
    at_buf_reset(b);
    bool seg = o->kind != AT_OUT_FIRE;
    AT_ASSERT(at_buf_puts(b, "{\"id\":\"") == 0 && at_buf_append(b, id, 32) == 0 &&
              at_buf_puts(b, "\",\"type\":\"") == 0 &&
              at_buf_puts(b, at_proc__kind_name(o->kind)) == 0 &&
              at_buf_puts(b, seg ? "\",\"segment\":" : "\",\"trigger\":") == 0);
    AT_ASSERT(at_buf_json_str(b, o->rule->name, strlen(o->rule->name)) == 0);
    AT_ASSERT(at_buf_puts(b, ",\"version\":") == 0 && at_buf_u64(b, o->rule->version) == 0 &&
              at_buf_puts(b, ",\"user\":") == 0);
    AT_ASSERT(at_buf_json_str(b, key, klen) == 0);
    if (seg && o->rule->group) {
        AT_ASSERT(at_buf_puts(b, ",\"group\":") == 0);
        AT_ASSERT(at_buf_json_str(b, o->group.s ? o->group.s : "", o->group.n) == 0);
    }
    AT_ASSERT(at_buf_puts(b, ",\"at\":\"") == 0 && at_buf_puts(b, at) == 0 &&
              at_buf_puts(b, "\",\"ts\":") == 0 && at_buf_i64(b, o->at) == 0 &&
              at_buf_puts(b, ",\"seq\":") == 0 && at_buf_u64(b, o->seq) == 0 &&
              at_buf_puts(b, ",\"position\":\"") == 0 && at_buf_i64(b, pr->p) == 0 &&
              at_buf_putc(b, ':') == 0 && at_buf_i64(b, off) == 0 && at_buf_putc(b, '"') == 0);
    if (o->early)
        AT_ASSERT(at_buf_puts(b, ",\"early\":true") == 0);
    if (o->reason)
        AT_ASSERT(at_buf_printf(b, ",\"reason\":\"%s\"", o->reason) >= 0);
    if (!seg && o->rule->action) {
        AT_ASSERT(at_buf_puts(b, ",\"action\":") == 0);
        AT_ASSERT(at_buf_append(b, o->rule->action, o->rule->action_len) == 0);
    }
    AT_ASSERT(at_buf_putc(b, '}') == 0);
    if (pr->ops.output) {
        at_proc_out_t po = {pr->p, off, o, key, klen, id, b->data, b->len};
        pr->ops.output(pr->ud, &po);
    }
}

/* ---- reads ---------------------------------------------------------------------------- */

bool at_proc__live(at_proc_t *pr, uint32_t slot, at_user_t *u, at_pev_t ***pending, size_t *npend)
{
    *npend = 0;
    if (slot == AT_KEYED_NONE)
        return false;
    at_proc__load(pr, slot, u);
    if (u->alias)
        return false;
    at_pev_t **items;
    size_t n = at_proc__pending_of(pr, slot, &items);
    for (size_t i = 0; i < n; i++)
        at_profile_apply(&u->prof, &pr->cfg.profile, &items[i]->view.pev, false);
    if (pending)
        *pending = items;
    *npend = n;
    return true;
}

int at_proc_render_user(at_proc_t *pr, const char *key, size_t n, unsigned what, at_buf_t *out)
{
    uint32_t slot = at_keyed_find(pr->users, key, n);
    if (slot == AT_KEYED_NONE)
        return AT_ENOTFOUND;
    at_user_t u;
    at_pev_t **items;
    size_t npend;
    if (!at_proc__live(pr, slot, &u, &items, &npend))
        return AT_ENOTFOUND; /* an alias: the caller follows it */
    AT_ASSERT(at_buf_puts(out, "{\"user\":") == 0);
    AT_ASSERT(at_buf_json_str(out, key, n) == 0);
    if (what & (AT_PROC_R_PROFILE | AT_PROC_R_EXPORT)) {
        AT_ASSERT(at_buf_putc(out, ',') == 0);
        at_profile_render(&u.prof, &pr->cfg.profile, at_wm_get(&pr->wm), out);
    }
    AT_ASSERT(at_buf_putc(out, ',') == 0);
    at_rstate_render(pr->rs, &u.rst, key, n, out);
    AT_ASSERT(at_buf_printf(out, ",\"pending_events\":%zu,\"partition\":%d", npend, pr->p) >= 0);
    if (what & AT_PROC_R_EXPORT) {
        AT_ASSERT(at_buf_puts(out, ",\"pending\":[") == 0);
        for (size_t i = 0; i < npend; i++) {
            if (i)
                AT_ASSERT(at_buf_putc(out, ',') == 0);
            AT_ASSERT(at_buf_append(out, items[i]->json, items[i]->json_len) == 0);
        }
        AT_ASSERT(at_buf_putc(out, ']') == 0);
    }
    AT_ASSERT(at_buf_putc(out, '}') == 0);
    at_arena_reset(&pr->arena);
    return 0;
}

size_t at_proc_members_page(at_proc_t *pr, const char *name, size_t n, uint32_t *cursor,
                            size_t limit, bool first, at_buf_t *out, bool *more)
{
    size_t got = 0;
    uint32_t slot;
    *more = false;
    while ((slot = at_keyed_next(pr->users, cursor)) != AT_KEYED_NONE) {
        at_user_t u;
        at_proc__load(pr, slot, &u);
        size_t kl;
        const char *k = at_keyed_key(pr->users, slot, &kl);
        bool in = !u.alias && at_rstate_in_segment(pr->rs, &u.rst, k, kl, name, n);
        at_arena_reset(&pr->arena);
        if (!in)
            continue;
        if (got == limit) {
            (*cursor)--; /* come back to this one */
            *more = true;
            break;
        }
        if (got || !first)
            AT_ASSERT(at_buf_putc(out, ',') == 0);
        AT_ASSERT(at_buf_json_str(out, k, kl) == 0);
        got++;
    }
    return got;
}

/* ---- event views ------------------------------------------------------------------ */

bool at_proc__view_tree(at_proc_t *pr, const char *json, size_t len, int64_t ts, at_pevent_t *ev,
                        at_val_t *slot)
{
    at_json_t *root = NULL;
    at_error_t e;
    if (at_json_parse_all(json, len, &pr->arena, 64, &root, &e) < 0 || root->type != AT_JSON_OBJECT)
        return false;
    at_proc__pevent(root, json, ts, ev, &pr->arena);
    for (size_t i = 0; i < pr->nfp; i++) {
        slot[i] = at_val_missing();
        if (pr->fp[i].kind == AT_FP_EVENT)
            at_proc__jval(at_proc__walk(root, pr->fp[i].steps, pr->fp[i].nsteps), json, &slot[i]);
    }
    return true;
}

bool at_proc__view(at_proc_t *pr, const char *json, size_t len, int64_t ts, at_eview_t *v, bool own)
{
    memset(v, 0, sizeof *v);
    at_val_t *slot = at_arena_alloc(&pr->arena, (pr->nfp + 1) * sizeof *slot);
    if (!at_proc__canon(pr, json, len, ts, &v->pev, slot) &&
        !at_proc__view_tree(pr, json, len, ts, &v->pev, slot))
        return false;
    v->rs = pr->rs;
    v->slot = slot;
    if (!own)
        return true;
        /* into one block: the slots, the purchase items, and every string that
         * the parser decoded into the scratch arena (those with escapes) */
#define AT_OUTSIDE(p_, n_) ((n_) && ((p_) < json || (p_) + (n_) > json + len))
    size_t bytes = (pr->nfp + 1) * sizeof(at_val_t) + v->pev.nitems * sizeof(at_pitem_t);
    at_pstr_t *strs[6] = {&v->pev.type, &v->pev.item,   &v->pev.category,
                          &v->pev.tz,   &v->pev.traits, NULL};
    for (int k = 0; strs[k]; k++)
        if (AT_OUTSIDE(strs[k]->s, strs[k]->n))
            bytes += strs[k]->n;
    for (size_t i = 0; i < v->pev.nitems; i++)
        bytes +=
            (AT_OUTSIDE(v->pev.items[i].item.s, v->pev.items[i].item.n) ? v->pev.items[i].item.n
                                                                        : 0) +
            (AT_OUTSIDE(v->pev.items[i].category.s, v->pev.items[i].category.n)
                 ? v->pev.items[i].category.n
                 : 0);
    for (size_t i = 0; i < pr->nfp; i++)
        if ((slot[i].type == AT_VAL_STR || slot[i].type == AT_VAL_JSON) &&
            AT_OUTSIDE(slot[i].u.s, slot[i].len))
            bytes += slot[i].len;
    char *mem = at_xmalloc(bytes + 1), *p = mem;
    v->mem = mem;
    v->mem_bytes = bytes + 1;
    v->slot = (at_val_t *)(void *)p;
    memcpy(v->slot, slot, (pr->nfp + 1) * sizeof *slot);
    p += (pr->nfp + 1) * sizeof(at_val_t);
    if (v->pev.nitems) {
        at_pitem_t *items = (at_pitem_t *)(void *)p;
        memcpy(items, v->pev.items, v->pev.nitems * sizeof *items);
        v->pev.items = items;
        p += v->pev.nitems * sizeof *items;
    }
#define AT_KEEP(str_)                                                                              \
    do {                                                                                           \
        if (AT_OUTSIDE((str_).s, (str_).n)) {                                                      \
            memcpy(p, (str_).s, (str_).n);                                                         \
            (str_).s = p;                                                                          \
            p += (str_).n;                                                                         \
        }                                                                                          \
    } while (0)
    for (int k = 0; strs[k]; k++)
        AT_KEEP(*strs[k]);
    for (size_t i = 0; i < v->pev.nitems; i++) {
        at_pitem_t *it = (at_pitem_t *)&v->pev.items[i];
        AT_KEEP(it->item);
        AT_KEEP(it->category);
    }
    for (size_t i = 0; i < pr->nfp; i++) {
        at_val_t *x = &v->slot[i];
        if ((x->type == AT_VAL_STR || x->type == AT_VAL_JSON) && AT_OUTSIDE(x->u.s, x->len)) {
            memcpy(p, x->u.s, x->len);
            x->u.s = p;
            p += x->len;
        }
    }
#undef AT_KEEP
#undef AT_OUTSIDE
    return true;
}

void at_proc__view_free(at_eview_t *v)
{
    free(v->mem);
    v->mem = NULL;
    v->slot = NULL;
}

void at_proc_render_reco(at_proc_t *pr, const char *key, size_t n, at_reco_set_t *set,
                         const at_reco_req_t *req, at_buf_t *out)
{
    uint32_t slot = at_keyed_find(pr->users, key, n);
    at_user_t u;
    size_t npend;
    bool known = at_proc__live(pr, slot, &u, NULL, &npend) && u.prof.events > 0;
    at_reco_result_t r;
    at_reco_result_init(&r);
    at_reco_user(set, known ? &u.prof : NULL, req, &r);
    AT_ASSERT(at_buf_puts(out, "{\"user\":") == 0);
    AT_ASSERT(at_buf_json_str(out, key, n) == 0);
    AT_ASSERT(at_buf_puts(out, known ? ",\"known\":true,\"items\":"
                                     : ",\"known\":false,\"items\":") == 0);
    at_reco_render(&r, out);
    AT_ASSERT(at_buf_putc(out, '}') == 0);
    at_reco_result_deinit(&r);
    at_arena_reset(&pr->arena);
}
