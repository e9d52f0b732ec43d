/* proc.c - one partition's records: arrival, the reorder buffer, the
 * watermark, timers, and rule changes (proc.h says what each record does).
 *
 * The order of work when the watermark moves to w: pending events with
 * time <= w and timers with deadline <= w, earliest instant first, events
 * before timers at the same instant (so an entry that expires at t and an
 * event at t are seen together, and an armed trigger's deadline is checked
 * against an unless at the same instant the way DESIGN.md §5 says).
 *
 * THREAD SAFETY: the partition's thread.
 */
#include "proc_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- a user's pending events' head (at_pev_user_t) ---------------------------------- */

static at_pev_user_t *at_proc__pu_new(void)
{
    at_pev_user_t *pu = at_xmalloc(sizeof *pu);
    pu->newest = NULL;
    pu->n = pu->first = 0;
    pu->cap = AT_PEV_INLINE;
    pu->v = pu->inl;
    return pu;
}

static void at_proc__pu_free(at_pev_user_t *pu)
{
    if (!pu)
        return;
    if (pu->v != pu->inl)
        free(pu->v);
    free(pu);
}

/* Room for one more entry at the end of the array: the taken entries'
 * room first, then a larger array of its own. */
static void at_proc__pu_reserve(at_pev_user_t *pu)
{
    if (pu->first + pu->n < pu->cap)
        return;
    if (pu->first) {
        memmove(pu->v, pu->v + pu->first, pu->n * sizeof *pu->v);
        pu->first = 0;
        return; /* first + n was cap: now n < cap */
    }
    uint32_t cap = pu->cap * 2;
    if (pu->v == pu->inl) {
        pu->v = at_xmalloc(cap * sizeof *pu->v);
        memcpy(pu->v, pu->inl, pu->n * sizeof *pu->v);
    } else {
        pu->v = at_xrealloc(pu->v, cap * sizeof *pu->v);
    }
    pu->cap = cap;
}

at_proc_t *at_proc_new(int partition, const at_proc_cfg_t *cfg, const at_proc_ops_t *ops, void *ud)
{
    at_proc_t *pr = at_xcalloc(1, sizeof *pr);
    pr->p = partition;
    pr->cfg = *cfg;
    if (ops)
        pr->ops = *ops;
    pr->ud = ud;
    pr->users = at_keyed_new();
    pr->dict = at_sdict_new(AT_PROC_DICT_ENTRIES, AT_PROC_DICT_BYTES);
    pr->reco = at_reco_part_new(&pr->cfg.reco, &pr->cfg.profile);
    at_reorder_init(&pr->pend);
    pr->wm.max_trusted = AT_WM_NONE;
    pr->wm.lateness_ms = cfg->lateness_ms;
    pr->rs = at_ruleset_new();
    pr->hwm = at_xcalloc((size_t)AT_MAX(cfg->partitions, 1), sizeof *pr->hwm);
    for (int i = 0; i < cfg->partitions; i++)
        pr->hwm[i] = -1;
    pr->refill_until = -1;
    pr->refill_trusted = AT_WM_NONE;
    at_arena_init(&pr->arena, 64 << 10);
    at_buf_init(&pr->enc, 0);
    at_buf_init(&pr->msg, 0);
    at_proc__prepare_fields(pr);
    return pr;
}

void at_proc_free(at_proc_t *pr)
{
    if (!pr)
        return;
    at_pend_t *p;
    while ((p = at_reorder_pop(&pr->pend)))
        at_proc__pev_free(pr, (at_pev_t *)p);
    at_reorder_deinit(&pr->pend);
    uint32_t pos = 0, slot;
    while ((slot = at_keyed_next(pr->users, &pos)) != AT_KEYED_NONE) {
        at_proc__pu_free(at_keyed_aux(pr->users, slot));
    }
    at_keyed_free(pr->users);
    at_sdict_free(pr->dict);
    at_reco_part_free(pr->reco);
    at_proc__free_fields(pr);
    at_ruleset_unref(pr->rs);
    free(pr->hwm);
    free(pr->members);
    at_arena_deinit(&pr->arena);
    at_buf_deinit(&pr->enc);
    at_buf_deinit(&pr->msg);
    free(pr);
}

void at_proc_suppress_until(at_proc_t *pr, int64_t offset)
{
    pr->out_suppress = offset;
}

const at_ruleset_t *at_proc_rules(const at_proc_t *pr)
{
    return pr->rs;
}

int64_t at_proc_next_offset(const at_proc_t *pr)
{
    return pr->next_offset;
}

int64_t at_proc__now(const at_proc_t *pr)
{
    return at_wm_get(&pr->wm);
}

/* ---- pending events ------------------------------------------------------------ */

at_pev_t *at_proc__pev_new(at_proc_t *pr, uint32_t slot, const char *id, size_t id_len,
                           const char *json, size_t json_len, int64_t ts, int64_t recv,
                           int64_t offset)
{
    size_t bytes = sizeof(at_pev_t) + id_len + 1 + json_len + 1;
    pr->st.pending_bytes += bytes;
    at_pev_t *it = at_xmalloc(bytes);
    memset(it, 0, sizeof *it);
    memcpy(it->data, id, id_len);
    it->data[id_len] = '\0';
    it->json = it->data + id_len + 1;
    memcpy(it->json, json, json_len);
    it->json[json_len] = '\0';
    it->json_len = (uint32_t)json_len;
    it->h.ts = ts;
    it->h.id = it->data;
    it->h.id_len = (uint32_t)id_len;
    it->h.seq = (uint64_t)offset;
    it->slot = slot;
    it->recv = recv;
    it->offset = offset;
    return it;
}

void at_proc__pev_free(at_proc_t *pr, at_pev_t *it)
{
    if (!it)
        return;
    pr->st.pending_bytes -=
        sizeof(at_pev_t) + it->h.id_len + 1 + it->json_len + 1 + it->view.mem_bytes;
    at_proc__view_free(&it->view);
    free(it->facts_mem);
    free(it);
}

/* The event's view under the current rule set (again after a change). */
static void at_proc__pev_view(at_proc_t *pr, at_pev_t *it)
{
    pr->st.pending_bytes -= it->view.mem_bytes;
    at_proc__view_free(&it->view);
    if (!at_proc__view(pr, it->json, it->json_len, it->h.ts, &it->view, true))
        memset(&it->view, 0, sizeof it->view);
    pr->st.pending_bytes += it->view.mem_bytes;
}

/* The early path's facts of a pending event under the current rule set. */
void at_proc__facts(at_proc_t *pr, at_pev_t *it)
{
    free(it->facts_mem);
    it->facts_mem = NULL;
    it->facts = (at_rule_facts_t){pr->rs, 0, NULL};
    if (!pr->rs->has_early)
        return;
    at_arena_t *a = &pr->arena; /* reset by the caller after the record */
    if (it->view.slot) {
        at_host_t h;
        at_proc__host(pr, &h, NULL, &it->view, it->h.ts, it->recv, it->h.ts);
        at_rule_facts_t f;
        at_rules_facts(pr->rs, &h.rh, a, &f);
        if (f.n <= 1 && (!f.n || f.f[0].group.n <= AT_PEV_GROUP)) {
            /* the usual case, kept in the item: no allocation, no other line to read */
            if (f.n) {
                it->fact1 = f.f[0];
                if (f.f[0].group.n)
                    memcpy(it->group1, f.f[0].group.s, f.f[0].group.n);
                it->fact1.group.s = it->group1;
            }
            it->facts = (at_rule_facts_t){pr->rs, f.n, &it->fact1};
            return;
        }
        /* else copied into one block owned by the item */
        size_t bytes = f.n * sizeof(at_rule_fact_t);
        for (uint32_t i = 0; i < f.n; i++)
            bytes += f.f[i].group.n;
        char *mem = at_xmalloc(bytes + 1);
        at_rule_fact_t *out = (at_rule_fact_t *)(void *)mem;
        char *s = mem + f.n * sizeof(at_rule_fact_t);
        for (uint32_t i = 0; i < f.n; i++) {
            out[i] = f.f[i];
            if (f.f[i].group.n)
                memcpy(s, f.f[i].group.s, f.f[i].group.n);
            out[i].group.s = s;
            s += f.f[i].group.n;
        }
        it->facts_mem = mem;
        it->facts = (at_rule_facts_t){pr->rs, f.n, out};
    }
}

size_t at_proc__pending_list(at_proc_t *pr, at_pev_t *newest, at_pev_t ***out)
{
    size_t n = 0;
    for (at_pev_t *x = newest; x; x = x->older)
        n++;
    at_pev_t **v = at_arena_alloc(&pr->arena, (n + 1) * sizeof(at_pev_t *));
    size_t k = n;
    for (at_pev_t *x = newest; x; x = x->older)
        v[--k] = x;
    *out = v;
    return n;
}

size_t at_proc__pending_of(at_proc_t *pr, uint32_t slot, at_pev_t ***out)
{
    at_pev_user_t *pu = at_keyed_aux(pr->users, slot);
    return at_proc__pending_list(pr, pu ? pu->newest : NULL, out);
}

/* The user's pending events for the early path (at_rule_pending_fn): the
 * array kept beside the list. */
typedef struct at_proc_early {
    at_proc_t *pr;
    uint32_t slot;
} at_proc_early_t;

static size_t at_proc__early_list(void *ud, const at_rule_pending_t **out)
{
    at_proc_t *pr = ((at_proc_early_t *)ud)->pr;
    at_pev_user_t *pu = at_keyed_aux(pr->users, ((at_proc_early_t *)ud)->slot);
    AT_ASSERT(pu); /* the event that just arrived is in it */
    *out = pu->v + pu->first;
    return pu->n;
}

/* The early path for the user of `it`, which just arrived. The user's value
 * is stored again only when something was announced: most events change
 * nothing here. */
static void at_proc__early(at_proc_t *pr, at_pev_t *it)
{
    if (!it->facts.n)
        return;
    at_user_t u;
    at_proc__load(pr, it->slot, &u);
    at_host_t h;
    at_proc__host(pr, &h, &u, &it->view, it->h.ts, it->recv, it->h.ts);
    uint64_t before = pr->st.outputs + pr->st.shadow_outputs + pr->st.outputs_suppressed;
    at_rule_pending_t now = {it->h.ts, &it->facts};
    at_proc_early_t list = {pr, it->slot};
    at_rules_early(pr->rs, &u.rst, &h.rh, &now, at_proc__early_list, &list, u.prof.session.start,
                   u.prof.session.last, pr->cfg.profile.session_gap_ms, at_proc__emit, &h);
    if (pr->st.outputs + pr->st.shadow_outputs + pr->st.outputs_suppressed != before)
        at_proc__store(pr, &u);
}

void at_proc__pending_add(at_proc_t *pr, at_pev_t *it, bool early)
{
    /* into the user's list in (ts, id) order: arrivals are mostly in order,
     * so this stops at once */
    at_pev_user_t *pu = at_keyed_aux(pr->users, it->slot);
    if (!pu) {
        pu = at_proc__pu_new();
        at_keyed_set_aux(pr->users, it->slot, pu);
    }
    it->user = pu;
    at_pev_t *newer = NULL, *cur = pu->newest;
    uint32_t later = 0; /* events after it */
    while (cur && at_pend_before(&it->h, &cur->h)) {
        newer = cur;
        cur = cur->older;
        later++;
    }
    it->older = cur;
    it->newer = newer;
    if (cur)
        cur->newer = it;
    if (newer)
        newer->older = it;
    else
        pu->newest = it;
    at_proc__pu_reserve(pu);
    at_rule_pending_t *v = pu->v + pu->first;
    uint32_t at = pu->n - later;
    memmove(&v[at + 1], &v[at], later * sizeof *v);
    v[at] = (at_rule_pending_t){it->h.ts, &it->facts};
    pu->n++;
    at_reorder_push(&pr->pend, &it->h);
    pr->st.pending = pr->pend.n;
    at_proc__pev_view(pr, it);
    at_proc__facts(pr, it);
    if (early && !pr->cfg.no_early)
        at_proc__early(pr, it);
}

/* Takes the user's pending events out of the buffer: freed, or handed to
 * *taken (the newest, linked through older) for a merge. */
void at_proc__pending_drop(at_proc_t *pr, uint32_t slot, bool free_them, at_pev_t **taken)
{
    at_pev_user_t *pu = at_keyed_aux(pr->users, slot);
    at_pev_t *x = pu ? pu->newest : NULL;
    if (pu) {
        at_keyed_set_aux(pr->users, slot, NULL);
        at_proc__pu_free(pu);
    }
    if (taken)
        *taken = x;
    while (x) {
        at_pev_t *older = x->older;
        x->user = NULL;
        at_reorder_remove(&pr->pend, &x->h);
        if (free_them)
            at_proc__pev_free(pr, x);
        x = older;
    }
    pr->st.pending = pr->pend.n;
}

static void at_proc__unlink(at_proc_t *pr, at_pev_t *it)
{
    at_pev_user_t *pu = it->user; /* not looked up: the slot's table is cold */
    AT_ASSERT(pu);
    it->user = NULL;
    if (it->newer)
        it->newer->older = it->older;
    else
        pu->newest = it->older;
    if (it->older)
        it->older->newer = it->newer;
    it->older = it->newer = NULL;
    /* the array's entry: mostly the first (the oldest goes first) */
    at_rule_pending_t *v = pu->v + pu->first;
    uint32_t i = 0;
    while (i < pu->n && v[i].facts != &it->facts)
        i++;
    AT_ASSERT(i < pu->n);
    if (i == 0) {
        pu->first++;
    } else {
        memmove(&v[i], &v[i + 1], (pu->n - i - 1) * sizeof *v);
    }
    pu->n--;
    if (!pu->newest) {
        at_keyed_set_aux(pr->users, it->slot, NULL);
        at_proc__pu_free(pu);
    }
}

/* ---- applying events and timers ---------------------------------------------------- */

/* Applies one event to the user's profile and (unless late) rules. */
void at_proc__apply(at_proc_t *pr, uint32_t slot, const at_eview_t *v, int64_t ts, int64_t recv,
                    bool late)
{
    at_user_t u;
    at_proc__load(pr, slot, &u);
    at_profile_apply(&u.prof, &pr->cfg.profile, &v->pev, late);
    at_reco_observe(pr->reco, &u.prof, &v->pev);
    pr->st.events++;
    int64_t now = at_wm_get(&pr->wm);
    at_host_t h;
    if (!late) {
        at_proc__host(pr, &h, &u, v, ts, recv, ts);
        at_rules_on_event(pr->rs, &u.rst, &h.rh, ts, at_proc__emit, &h);
    } else if (now != AT_WM_NONE) {
        /* windows stay closed to it, but the profile changed: conditions
         * over it are evaluated again, at the watermark, where everything
         * before is known */
        at_proc__host(pr, &h, &u, NULL, now, now, now);
        at_rules_on_time(pr->rs, &u.rst, &h.rh, now, at_proc__emit, &h);
    }
    at_proc__store_at(pr, &u, late ? AT_MAX(now, ts) : ts);
}

/* The user's timer at instant t: rules first, then expiry. */
static void at_proc__timer(at_proc_t *pr, uint32_t slot, int64_t t)
{
    at_user_t u;
    at_proc__load(pr, slot, &u);
    if (u.alias) { /* aliases set no timer (at_proc__deadline): never reached */
        at_keyed_delete(pr->users, slot);
        return;
    }
    at_host_t h;
    at_proc__host(pr, &h, &u, NULL, t, t, t);
    at_rules_on_time(pr->rs, &u.rst, &h.rh, t, at_proc__emit, &h);
    if (pr->cfg.ttl_ms > 0 && u.prof.last_seen != AT_PROFILE_NONE &&
        t >= u.prof.last_seen + pr->cfg.ttl_ms) {
        at_rules_drop(pr->rs, &u.rst, t, "expired", &h.rh, at_proc__emit, &h);
        pr->st.expired_users++;
        if (at_keyed_aux(pr->users, slot)) {
            /* a later event of the user waits for the watermark: it finds
             * the slot (which holds its place in the pending list) empty,
             * as a new user */
            at_keyed_set(pr->users, slot, "", 0);
            at_keyed_timer_set(pr->users, slot, AT_TIMER_NONE);
        } else {
            at_keyed_delete(pr->users, slot);
        }
        return;
    }
    at_proc__store_at(pr, &u, t);
}

/* Runs pending events and timers up to the watermark, in instant order. */
static void at_proc__advance(at_proc_t *pr)
{
    int64_t w = at_wm_get(&pr->wm);
    if (w == AT_WM_NONE)
        return;
    for (;;) {
        at_pend_t *p = at_reorder_first(&pr->pend);
        int64_t dl;
        uint32_t slot = at_keyed_timer_first(pr->users, &dl);
        bool ev = p && p->ts <= w;
        bool tm = slot != AT_KEYED_NONE && dl <= w;
        if (!ev && !tm)
            break;
        if (ev && (!tm || p->ts <= dl)) {
            at_pev_t *it = (at_pev_t *)at_reorder_pop(&pr->pend);
            at_proc__unlink(pr, it);
            if (it->view.slot)
                at_proc__apply(pr, it->slot, &it->view, it->h.ts, it->recv, false);
            at_proc__pev_free(pr, it);
        } else {
            at_proc__timer(pr, slot, dl);
        }
        at_arena_reset(&pr->arena);
    }
    pr->st.pending = pr->pend.n;
}

/* ---- records --------------------------------------------------------------------------- */

/* An event (or a forwarded one, unwrapped) arrives. */
void at_proc__event(at_proc_t *pr, const char *key, size_t klen, const char *id, size_t id_len,
                    const char *json, size_t jlen, int64_t ts, int64_t recv, int64_t offset)
{
    bool created;
    uint32_t slot = at_keyed_get(pr->users, key, klen, &created);
    at_pstr_t target;
    int64_t trusted = AT_MIN(ts, recv);
    if (!created && at_proc__alias_at(pr, slot, &target)) {
        at_rec_t rec = {.key = key,
                        .key_len = (uint32_t)klen,
                        .id = id,
                        .id_len = (uint32_t)id_len,
                        .value = json,
                        .value_len = (uint32_t)jlen,
                        .ts_ms = ts,
                        .recv_ms = recv,
                        .offset = offset};
        at_proc__forward(pr, &rec, target);
        if (at_wm_observe(&pr->wm, trusted))
            at_proc__advance(pr);
        return;
    }
    bool late = at_wm_late(&pr->wm, ts);
    bool moved = at_wm_observe(&pr->wm, trusted);
    if (late) {
        pr->st.late++;
        at_eview_t v;
        if (at_proc__view(pr, json, jlen, ts, &v, false))
            at_proc__apply(pr, slot, &v, ts, recv, true);
        at_arena_reset(&pr->arena);
    } else {
        at_pev_t *it = at_proc__pev_new(pr, slot, id, id_len, json, jlen, ts, recv, offset);
        at_proc__pending_add(pr, it, true);
        at_arena_reset(&pr->arena);
        if (created) /* a new user: nothing stored yet; keep it (empty) with its pending list */
            at_keyed_timer_set(pr->users, slot, AT_TIMER_NONE);
    }
    if (moved)
        at_proc__advance(pr);
}

/* After a restore, records before the checkpoint's next offset only refill
 * the reorder buffer: an event is pending at the checkpoint exactly when
 * its time is after the checkpoint's watermark (an event at or before it
 * was late or final then, and is in the state already). */
static void at_proc__refill(at_proc_t *pr, const at_rec_t *rec)
{
    int64_t w =
        pr->refill_trusted == AT_WM_NONE ? AT_WM_NONE : pr->refill_trusted - pr->cfg.lateness_ms;
    at_pstr_t target;
    switch (rec->type) {
    case AT_REC_EVENT: {
        if (w != AT_WM_NONE && rec->ts_ms <= w)
            return;
        if (at_proc_alias(pr, rec->key, rec->key_len, &target))
            return; /* forwarded or handed off before the checkpoint */
        uint32_t slot = at_keyed_get(pr->users, rec->key, rec->key_len, NULL);
        at_pev_t *it = at_proc__pev_new(pr, slot, rec->id, rec->id_len, rec->value, rec->value_len,
                                        rec->ts_ms, rec->recv_ms, rec->offset);
        at_proc__pending_add(pr, it, false);
        return;
    }
    case AT_REC_MERGE:
    case AT_REC_ERASE: {
        uint32_t slot = at_keyed_find(pr->users, rec->key, rec->key_len);
        if (slot != AT_KEYED_NONE)
            at_proc__pending_drop(pr, slot, true, NULL);
        return;
    }
    case AT_REC_HANDOFF:
        at_proc__handoff(pr, rec, w, true);
        return;
    case AT_REC_FORWARDED:
        at_proc__forwarded(pr, rec, w, true);
        return;
    default:
        return;
    }
}

/* Member counts being counted again (at a control record). */
typedef struct at_proc_recount {
    at_member_count_t *v;
    size_t n;
} at_proc_recount_t;

static void at_proc__count_one(void *ud, uint32_t id)
{
    at_proc_recount_t *c = ud;
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].id == id) {
            c->v[i].n++;
            return;
        }
    }
    c->v = at_xrealloc(c->v, (c->n + 1) * sizeof *c->v);
    c->v[c->n++] = (at_member_count_t){id, 1};
}

static void at_proc__control(at_proc_t *pr, const at_rec_t *rec)
{
    at_ruleset_t *next = NULL;
    at_error_t e;
    if (at_ruleset_load(rec->value, rec->value_len, &next, &e) < 0) {
        AT_ERROR("control record refused", "partition=%d offset=%lld err=\"%s\"", pr->p,
                 (long long)rec->offset, e.message);
        return;
    }
    at_ruleset_t *prev = pr->rs;
    pr->rs = next;
    at_proc__prepare_fields(pr);
    int64_t t = at_wm_get(&pr->wm);
    uint32_t pos = 0, slot;
    /* member counts are counted again: a version that takes over the state
     * of another takes its members along without a transition */
    at_proc_recount_t cnt = {NULL, 0};
    while (t != AT_WM_NONE && (slot = at_keyed_next(pr->users, &pos)) != AT_KEYED_NONE) {
        at_user_t u;
        at_proc__load(pr, slot, &u);
        if (u.alias)
            continue;
        at_host_t h;
        at_proc__host(pr, &h, &u, NULL, t, t, t);
        at_rules_migrate(prev, next, &u.rst, &h.rh, t, at_proc__emit, &h);
        at_rstate_memberships(next, &u.rst, h.rh.key, h.rh.key_len, at_proc__count_one, &cnt);
        at_proc__store_at(pr, &u, t);
        at_arena_reset(&pr->arena);
    }
    if (t != AT_WM_NONE) {
        free(pr->members);
        pr->members = cnt.v;
        pr->nmembers = cnt.n;
    }
    /* pending events: their views and facts were made under the old set */
    size_t ppos = 0;
    at_pend_t *pe;
    while ((pe = at_reorder_next(&pr->pend, &ppos))) {
        at_proc__pev_view(pr, (at_pev_t *)pe);
        at_proc__facts(pr, (at_pev_t *)pe);
        at_arena_reset(&pr->arena);
    }
    at_ruleset_unref(prev);
    pr->st.controls++;
}

void at_proc_record(at_proc_t *pr, const at_rec_t *rec)
{
    AT_ASSERT(rec->partition == pr->p);
    if (rec->offset < pr->next_offset)
        return;
    pr->next_offset = rec->offset + 1;
    pr->st.records++;
    if (rec->offset < pr->refill_until) {
        at_proc__refill(pr, rec);
        at_arena_reset(&pr->arena);
        return;
    }
    switch (rec->type) {
    case AT_REC_EVENT:
        at_proc__event(pr, rec->key, rec->key_len, rec->id, rec->id_len, rec->value, rec->value_len,
                       rec->ts_ms, rec->recv_ms, rec->offset);
        break;
    case AT_REC_TICK:
        pr->st.ticks++;
        if (at_wm_observe(&pr->wm, rec->ts_ms))
            at_proc__advance(pr);
        break;
    case AT_REC_CONTROL:
        at_proc__control(pr, rec);
        break;
    case AT_REC_MERGE:
        at_proc__merge(pr, rec);
        break;
    case AT_REC_HANDOFF:
        at_proc__handoff(pr, rec, AT_WM_NONE, false);
        break;
    case AT_REC_FORWARDED:
        at_proc__forwarded(pr, rec, AT_WM_NONE, false);
        break;
    case AT_REC_ERASE:
        at_proc__erase(pr, rec);
        break;
    case AT_REC_ITEM:
        if (at_reco_catalog(pr->reco, rec->value, rec->value_len, rec->ts_ms) < 0)
            AT_ERROR("item record refused", "partition=%d offset=%lld", pr->p,
                     (long long)rec->offset);
        pr->st.items++;
        break;
    default:
        break; /* redacted and unknown records carry nothing to process */
    }
    at_arena_reset(&pr->arena);
}

void at_proc_stats(const at_proc_t *pr, at_proc_stats_t *st)
{
    *st = pr->st;
    st->users = at_keyed_count(pr->users);
    st->state_bytes = at_keyed_bytes(pr->users) + at_sdict_bytes(pr->dict);
    st->watermark = at_wm_get(&pr->wm);
    st->next_offset = pr->next_offset;
    st->out_next = pr->out_next;
    st->pending = pr->pend.n;
}

at_reco_part_t *at_proc_reco(at_proc_t *pr)
{
    return pr->reco;
}

int64_t at_proc_members(const at_proc_t *pr, uint32_t id)
{
    for (size_t i = 0; i < pr->nmembers; i++)
        if (pr->members[i].id == id)
            return pr->members[i].n;
    return 0;
}
