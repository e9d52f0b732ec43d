/* proc_ckpt.c - a partition's checkpoint (meta and changed users), its
 * restore, and the order-independent digest of its state.
 *
 * Meta (JSON): {"format":1,"partition":P,"next_offset":N,"replay_from":R,
 * "max_trusted":T|null,"out_next":O,"hwm":[...],"members":[[id,n],...],
 * "rules":[control values]}. Recovery restores it and the users, then reads
 * the log from R: records below N only refill the reorder buffer (an event
 * is pending at the checkpoint exactly when its time is after the
 * checkpoint's watermark), records from N on are processed as usual.
 *
 * THREAD SAFETY: the partition's thread.
 */
#include "proc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int64_t at_proc_replay_from(const at_proc_t *pr)
{
    int64_t from = pr->next_offset;
    size_t pos = 0;
    const at_pend_t *pe;
    while ((pe = at_reorder_next(&pr->pend, &pos))) {
        const at_pev_t *it = (const at_pev_t *)pe;
        if (it->offset < from)
            from = it->offset;
    }
    return from;
}

void at_proc_meta(const at_proc_t *pr, at_buf_t *out)
{
    AT_ASSERT(at_buf_printf(out,
                            "{\"format\":%d,\"partition\":%d,\"next_offset\":%lld,"
                            "\"replay_from\":%lld,\"max_trusted\":",
                            AT_PROC_FORMAT, pr->p, (long long)pr->next_offset,
                            (long long)at_proc_replay_from(pr)) >= 0);
    if (pr->wm.max_trusted == AT_WM_NONE)
        AT_ASSERT(at_buf_puts(out, "null") == 0);
    else
        AT_ASSERT(at_buf_i64(out, pr->wm.max_trusted) == 0);
    AT_ASSERT(at_buf_printf(out, ",\"out_next\":%lld,\"hwm\":[", (long long)pr->out_next) >= 0);
    for (int i = 0; i < pr->cfg.partitions; i++)
        AT_ASSERT(at_buf_printf(out, "%s%lld", i ? "," : "", (long long)pr->hwm[i]) >= 0);
    AT_ASSERT(at_buf_puts(out, "],\"members\":[") == 0);
    for (size_t i = 0; i < pr->nmembers; i++)
        AT_ASSERT(at_buf_printf(out, "%s[%u,%lld]", i ? "," : "", pr->members[i].id,
                                (long long)pr->members[i].n) >= 0);
    AT_ASSERT(at_buf_puts(out, "],\"rules\":") == 0);
    at_ruleset_dump(pr->rs, out);
    AT_ASSERT(at_buf_putc(out, '}') == 0);
}

/* Dictionary entries [from, count) to fn, then marks them saved. */
static void at_proc__dict_out(at_proc_t *pr, uint32_t from,
                              void (*fn)(void *ud, const char *key, size_t klen, const void *val,
                                         size_t vlen),
                              void *ud)
{
    uint32_t end = at_sdict_count(pr->dict);
    for (uint32_t id = from; id < end; id++) {
        const char *s;
        uint32_t n;
        if (!at_sdict_get(pr->dict, id, &s, &n))
            continue;
        char key[5] = {AT_PROC_DICT_KEY, (char)(id >> 24), (char)(id >> 16), (char)(id >> 8),
                       (char)id};
        at_buf_t *b = &pr->msg;
        at_buf_reset(b);
        AT_ASSERT(at_buf_putc(b, AT_PROC_FORMAT) == 0);
        AT_ASSERT(at_buf_putc(b, AT_PROC_DICT) == 0);
        AT_ASSERT(at_buf_append(b, s, n) == 0);
        fn(ud, key, sizeof key, b->data, b->len);
    }
    at_sdict_clean(pr->dict);
}

void at_proc_changes(at_proc_t *pr,
                     void (*fn)(void *ud, const char *key, size_t klen, const void *val,
                                size_t vlen),
                     void *ud)
{
    uint32_t from;
    at_sdict_dirty(pr->dict, &from);
    at_proc__dict_out(pr, from, fn, ud);
    const uint32_t *slots;
    size_t n = at_keyed_dirty(pr->users, &slots);
    for (size_t i = 0; i < n; i++) {
        size_t kl, vl;
        const char *k = at_keyed_key(pr->users, slots[i], &kl);
        if (at_keyed_deleted(pr->users, slots[i])) {
            fn(ud, k, kl, NULL, 0);
        } else {
            const uint8_t *v = at_keyed_value(pr->users, slots[i], &vl);
            fn(ud, k, kl, v, vl);
        }
    }
    at_keyed_clean(pr->users);
    at_reco_changes(pr->reco, false, AT_PROC_FORMAT, AT_PROC_ITEM, fn, ud);
}

void at_proc_all_users(at_proc_t *pr,
                       void (*fn)(void *ud, const char *key, size_t klen, const void *val,
                                  size_t vlen),
                       void *ud)
{
    at_proc__dict_out(pr, 0, fn, ud);
    uint32_t pos = 0, slot;
    while ((slot = at_keyed_next(pr->users, &pos)) != AT_KEYED_NONE) {
        size_t kl, vl;
        const char *k = at_keyed_key(pr->users, slot, &kl);
        const uint8_t *v = at_keyed_value(pr->users, slot, &vl);
        fn(ud, k, kl, v, vl);
    }
    at_keyed_clean(pr->users);
    at_reco_changes(pr->reco, true, AT_PROC_FORMAT, AT_PROC_ITEM, fn, ud);
}

static int at_proc__bad(at_error_t *err, const char *what)
{
    return at_error_set(err, AT_ECORRUPT, "corrupt_checkpoint", NULL, "checkpoint meta: %s", what);
}

int at_proc_restore_meta(at_proc_t *pr, const char *meta, size_t n, at_error_t *err)
{
    at_arena_t a;
    at_arena_init(&a, 0);
    at_json_t *v = NULL;
    int rc = at_json_parse_all(meta, n, &a, 64, &v, err);
    if (rc < 0)
        goto out;
    const at_json_t *fmt = at_json_get(v, "format", 6), *next = at_json_get(v, "next_offset", 11);
    const at_json_t *from = at_json_get(v, "replay_from", 11),
                    *mt = at_json_get(v, "max_trusted", 11);
    const at_json_t *on = at_json_get(v, "out_next", 8), *hwm = at_json_get(v, "hwm", 3);
    const at_json_t *mem = at_json_get(v, "members", 7), *rules = at_json_get(v, "rules", 5);
    int64_t f = 0, nx = 0, fr = 0, o = 0, t = AT_WM_NONE;
    if (!fmt || at_json_i64(fmt, &f) < 0 || f != AT_PROC_FORMAT) {
        rc = at_proc__bad(err, "unknown format");
        goto out;
    }
    if (!next || at_json_i64(next, &nx) < 0 || !from || at_json_i64(from, &fr) < 0 || fr > nx ||
        !on || at_json_i64(on, &o) < 0 || !mt || !hwm || hwm->type != AT_JSON_ARRAY || !rules ||
        (mt->type != AT_JSON_NULL && at_json_i64(mt, &t) < 0)) {
        rc = at_proc__bad(err, "missing or malformed fields");
        goto out;
    }
    at_ruleset_t *rs = NULL;
    if ((rc = at_ruleset_load(meta + rules->off, rules->end - rules->off, &rs, err)) < 0)
        goto out;
    at_ruleset_unref(pr->rs);
    pr->rs = rs;
    at_proc__prepare_fields(pr);
    int i = 0;
    for (const at_json_t *x = hwm->child; x && i < pr->cfg.partitions; x = x->next, i++)
        if (at_json_i64(x, &pr->hwm[i]) < 0)
            pr->hwm[i] = -1;
    pr->nmembers = 0;
    for (const at_json_t *x = mem && mem->type == AT_JSON_ARRAY ? mem->child : NULL; x;
         x = x->next) {
        int64_t id, cnt;
        if (x->type != AT_JSON_ARRAY || !x->child || !x->child->next ||
            at_json_i64(x->child, &id) < 0 || at_json_i64(x->child->next, &cnt) < 0)
            continue;
        pr->members = at_xrealloc(pr->members, (pr->nmembers + 1) * sizeof *pr->members);
        pr->members[pr->nmembers++] = (at_member_count_t){(uint32_t)id, cnt};
    }
    pr->next_offset = fr;
    pr->refill_until = nx;
    pr->refill_trusted = t;
    pr->wm.max_trusted = t;
    pr->out_next = o;
out:
    at_arena_deinit(&a);
    return rc;
}

int at_proc_restore_user(at_proc_t *pr, const char *key, size_t klen, const void *val, size_t vlen)
{
    if (vlen && (vlen < 2 || ((const uint8_t *)val)[0] != AT_PROC_FORMAT))
        return AT_ECORRUPT;
    if (klen && key[0] == AT_PROC_DICT_KEY) { /* the dictionary's */
        const uint8_t *k = (const uint8_t *)key, *v = val;
        if (klen != 5 || vlen < 3 || v[1] != AT_PROC_DICT)
            return AT_ECORRUPT;
        uint32_t id = (uint32_t)k[1] << 24 | (uint32_t)k[2] << 16 | (uint32_t)k[3] << 8 | k[4];
        return at_sdict_put(pr->dict, id, (const char *)v + 2, vlen - 2);
    }
    if (klen && key[0] == AT_RECO_KEY) { /* an item of the recommender */
        if (vlen < 3 || ((const uint8_t *)val)[1] != AT_PROC_ITEM)
            return AT_ECORRUPT;
        return at_reco_restore(pr->reco, key, klen, val, vlen);
    }
    uint32_t slot = at_keyed_get(pr->users, key, klen, NULL);
    at_keyed_set(pr->users, slot, val, vlen);
    return 0;
}

/* The timers are derived from the state: each user's next deadline after
 * the restored watermark (the rule set must be the restored one, which the
 * meta brought: the checkpoint delivers users before its meta). */
void at_proc_restore_done(at_proc_t *pr)
{
    int64_t w = at_wm_get(&pr->wm);
    uint32_t pos = 0, slot;
    while ((slot = at_keyed_next(pr->users, &pos)) != AT_KEYED_NONE) {
        at_user_t u;
        at_proc__load(pr, slot, &u);
        at_keyed_timer_set(pr->users, slot,
                           at_proc__deadline(pr, &u, w == AT_WM_NONE ? INT64_MIN + 1 : w));
        at_arena_reset(&pr->arena);
    }
    at_keyed_clean(pr->users);
}

uint64_t at_proc_digest(at_proc_t *pr)
{
    uint64_t d = 0;
    uint32_t pos = 0, slot;
    while ((slot = at_keyed_next(pr->users, &pos)) != AT_KEYED_NONE) {
        size_t kl, vl;
        const char *k = at_keyed_key(pr->users, slot, &kl);
        const uint8_t *v = at_keyed_value(pr->users, slot, &vl);
        if (!vl && !at_keyed_aux(pr->users, slot))
            continue; /* an empty slot is no state */
        if (vl >= 2 && v[1] == AT_PROC_USER) {
            /* with its strings written out: the digest does not depend on
             * the order the dictionary was filled in */
            at_user_t u;
            at_proc__load(pr, slot, &u);
            at_proc__encode(&u, NULL, &pr->msg);
            v = (const uint8_t *)pr->msg.data;
            vl = pr->msg.len;
        }
        XXH3_state_t *st = XXH3_createState();
        AT_ASSERT(st);
        XXH3_64bits_reset(st);
        XXH3_64bits_update(st, k, kl);
        XXH3_64bits_update(st, "\0", 1);
        XXH3_64bits_update(st, v, vl);
        d += XXH3_64bits_digest(st);
        XXH3_freeState(st);
        at_arena_reset(&pr->arena);
    }
    size_t ppos = 0;
    const at_pend_t *pe;
    while ((pe = at_reorder_next(&pr->pend, &ppos))) {
        const at_pev_t *it = (const at_pev_t *)pe;
        char head[48];
        int n =
            snprintf(head, sizeof head, "P%lld|%lld|", (long long)it->h.ts, (long long)it->recv);
        d += at_hash64(head, (size_t)n) ^ at_hash64(it->json, it->json_len) ^
             at_hash64(it->h.id, it->h.id_len);
    }
    at_buf_t b;
    at_buf_init(&b, 0);
    AT_ASSERT(at_buf_printf(&b, "p%d|%lld|%lld|", pr->p, (long long)pr->wm.max_trusted,
                            (long long)pr->out_next) >= 0);
    for (int i = 0; i < pr->cfg.partitions; i++)
        AT_ASSERT(at_buf_printf(&b, "%lld,", (long long)pr->hwm[i]) >= 0);
    at_ruleset_dump(pr->rs, &b);
    d += at_hash64(b.data, b.len);
    at_buf_deinit(&b);
    return d + at_reco_digest(pr->reco);
}

void at_proc_debug_sizes(at_proc_t *pr)
{
    uint64_t users = 0, bytes = 0, prof = 0, rules = 0, nrules = 0, groups = 0, entries = 0;
    uint64_t per_rule[AT_RULE_MAX_RULES] = {0}, per_rule_e[AT_RULE_MAX_RULES] = {0};
    uint64_t ncnt = 0, cntb = 0, naff = 0, affb = 0, nrec = 0, recb = 0, tzb = 0, trb = 0;
    uint32_t pos = 0, slot;
    while ((slot = at_keyed_next(pr->users, &pos)) != AT_KEYED_NONE) {
        size_t vl;
        const uint8_t *v = at_keyed_value(pr->users, slot, &vl);
        if (vl < 2 || v[1] != AT_PROC_USER)
            continue;
        users++;
        bytes += vl;
        at_dec_t d = {v + 2, v + vl, false};
        uint64_t pl = at_dec_varint(&d);
        prof += pl;
        rules += vl - 2 - pl;
        at_user_t u;
        at_proc__load(pr, slot, &u);
        nrules += u.rst.nr;
        ncnt += u.prof.ncounters;
        for (uint32_t i = 0; i < u.prof.ncounters; i++)
            cntb += u.prof.counters[i].type.n;
        naff += u.prof.naff;
        for (uint32_t i = 0; i < u.prof.naff; i++)
            affb += u.prof.aff[i].cat.n;
        nrec += u.prof.nrecent;
        for (uint32_t i = 0; i < u.prof.nrecent; i++)
            recb += u.prof.recent[i].item.n;
        tzb += u.prof.tz.n;
        trb += u.prof.traits.n;
        for (uint32_t i = 0; i < u.rst.nr; i++) {
            groups += u.rst.r[i].ng;
            const at_rule_t *r = at_ruleset_by_id(pr->rs, u.rst.r[i].id);
            for (uint32_t j = 0; j < u.rst.r[i].ng; j++) {
                entries += u.rst.r[i].g[j].n;
                if (r) {
                    per_rule[r->index]++;
                    per_rule_e[r->index] += u.rst.r[i].g[j].n;
                }
            }
        }
        at_arena_reset(&pr->arena);
    }
    if (!users)
        return;
    (void)fprintf(stderr,
                  "users %llu: value %.0f B (profile %.0f, rules %.0f), rules with state %.1f, "
                  "groups %.1f, entries %.1f per user\n",
                  (unsigned long long)users, (double)bytes / users, (double)prof / users,
                  (double)rules / users, (double)nrules / users, (double)groups / users,
                  (double)entries / users);
    (void)fprintf(stderr,
                  "  profile: counters %.1f (type names %.1f B), categories %.1f (names %.1f B), "
                  "recent items %.1f (ids %.1f B), tz %.1f B, traits %.1f B per user\n",
                  (double)ncnt / users, (double)cntb / users, (double)naff / users,
                  (double)affb / users, (double)nrec / users, (double)recb / users,
                  (double)tzb / users, (double)trb / users);
    for (size_t i = 0; i < pr->rs->n; i++)
        if (per_rule[i])
            (void)fprintf(stderr, "  %-20s groups %.2f entries %.2f per user\n",
                          pr->rs->rules[i]->name, (double)per_rule[i] / users,
                          (double)per_rule_e[i] / users);
}
