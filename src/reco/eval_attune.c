/* eval_attune.c - attune's own recommender behind the harness's method
 * interface (at_eval.h): the same profile and item aggregates the engine
 * keeps (at_profile.h, at_reco.h), in one partition, fed each interaction
 * as an event; recommend() is GET /v1/users/{id}/recommendations with the
 * user's items skipped. The read cache is off (every answer sees every
 * interaction before it) and trending moves with the data's time, so a
 * run is deterministic.
 *
 * THREAD SAFETY: one instance per thread.
 */
#include "at_eval.h"
#include "at_reco.h"

#include <stdlib.h>
#include <string.h>

typedef struct at_eattune {
    at_profile_cfg_t pcfg;
    at_reco_cfg_t rcfg;
    at_reco_part_t *part;
    at_reco_set_t set;
    at_keyed_t *users; /* user key -> encoded profile */
    at_arena_t arena;  /* scratch of one call */
    at_buf_t enc;
    at_reco_result_t res;
    size_t k;
} at_eattune_t;

static void *at_eattune_open(const void *opts)
{
    const at_eval_method_opts_t *o = opts;
    at_eattune_t *m = at_xcalloc(1, sizeof *m);
    at_profile_cfg_defaults(&m->pcfg);
    at_reco_cfg_defaults(&m->rcfg);
    m->part = at_reco_part_new(&m->rcfg, &m->pcfg);
    at_reco_set_init(&m->set, &m->part, 1);
    m->set.cache_ms = 0;
    m->set.trend_by_data_time = true;
    m->users = at_keyed_new();
    at_arena_init(&m->arena, 0);
    at_buf_init(&m->enc, 0);
    at_reco_result_init(&m->res);
    m->k = o ? o->k : 10;
    return m;
}

static void at_eattune_close(void *mp)
{
    at_eattune_t *m = mp;
    at_reco_result_deinit(&m->res);
    at_buf_deinit(&m->enc);
    at_arena_deinit(&m->arena);
    at_keyed_free(m->users);
    at_reco_set_deinit(&m->set);
    at_reco_part_free(m->part);
    free(m);
}

/* The user's profile (empty when new) into *p; its strings in m->arena or
 * the stored value. Returns the slot. */
static uint32_t at_eattune_load(at_eattune_t *m, const char *user, size_t n, at_profile_t *p,
                                bool create)
{
    at_profile_init(p, &m->arena);
    uint32_t slot =
        create ? at_keyed_get(m->users, user, n, NULL) : at_keyed_find(m->users, user, n);
    if (slot == AT_KEYED_NONE)
        return slot;
    size_t vl = 0;
    const uint8_t *v = at_keyed_value(m->users, slot, &vl);
    if (vl && at_profile_decode(p, v, vl, NULL, &m->arena) < 0)
        at_profile_init(p, &m->arena);
    return slot;
}

static void at_eattune_observe(void *mp, const at_eval_ev_t *ev)
{
    at_eattune_t *m = mp;
    at_profile_t *p = at_arena_alloc(&m->arena, sizeof *p);
    uint32_t slot = at_eattune_load(m, ev->user, ev->user_len, p, true);
    at_pevent_t pe = {
        .type = {ev->type, (uint32_t)ev->type_len},
        .ts = ev->ts_ms,
        .item = {ev->item ? ev->item : "", (uint32_t)ev->item_len},
        .category = {ev->category ? ev->category : "", (uint32_t)ev->category_len},
    };
    at_profile_apply(p, &m->pcfg, &pe, false);
    at_reco_observe(m->part, p, &pe);
    at_buf_reset(&m->enc);
    at_profile_encode(p, NULL, &m->enc);
    at_keyed_set(m->users, slot, m->enc.data, m->enc.len);
    at_arena_reset(&m->arena);
}

static size_t at_eattune_recommend(void *mp, const char *user, size_t user_len, int64_t now_ms,
                                   size_t k, at_eval_skip_fn skip, void *skip_ud,
                                   const char **items, size_t *lens)
{
    (void)now_ms; /* the aggregates' own time is the newest interaction's */
    at_eattune_t *m = mp;
    at_profile_t *p = at_arena_alloc(&m->arena, sizeof *p);
    uint32_t slot = at_eattune_load(m, user, user_len, p, false);
    at_reco_req_t rq = {
        .n = AT_MIN(k, (size_t)100), .window = AT_RECO_W7D, .skip = skip, .skip_ud = skip_ud};
    at_reco_result_deinit(&m->res);
    at_reco_result_init(&m->res);
    at_reco_user(&m->set, slot != AT_KEYED_NONE && p->events ? p : NULL, &rq, &m->res);
    for (size_t i = 0; i < m->res.n; i++) {
        items[i] = m->res.hits[i].item.s;
        lens[i] = m->res.hits[i].item.n;
    }
    at_arena_reset(&m->arena);
    return m->res.n;
}

const at_eval_method_t at_eval_attune = {
    .name = "attune",
    .open = at_eattune_open,
    .observe = at_eattune_observe,
    .recommend = at_eattune_recommend,
    .close = at_eattune_close,
};
