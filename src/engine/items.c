/* items.c - the calls of attune.h for the item catalog and the
 * recommender (DESIGN.md §7): catalog upserts become item records in the
 * log (key "i:ITEM", so each item's catalog entry has one partition);
 * recommendations for a user are computed on the user's shard (it holds
 * the profile); similar and trending items on the caller's thread, over
 * every partition's aggregates.
 *
 * THREAD SAFETY: any thread.
 */
#include "at_engine.h"
#include "at_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_ITEMS_MAX 1000 /* items per POST /v1/items */

typedef struct at_items_ctx {
    attune_done_cb cb;
    void *ud;
    size_t n;
} at_items_ctx_t;

static void at_items__done(void *ud, int status)
{
    at_items_ctx_t *c = ud;
    char json[64];
    int n = snprintf(json, sizeof json, "{\"accepted\":%zu}", c->n);
    c->cb(c->ud, status, status == 0 ? json : NULL, status == 0 ? (size_t)n : 0);
    free(c);
}

static void at_items__copy_error(attune_error_t *dst, const at_error_t *src)
{
    if (dst)
        memcpy(dst, src, sizeof *dst);
}

int attune_items_put(attune_t *a, const char *body, size_t len, attune_done_cb cb, void *ud,
                     attune_error_t *err)
{
    at_error_t e = {0};
    if (!atomic_load(&a->ready)) {
        int rc = at_error_set(&e, AT_EUNAVAIL, "recovering", NULL, "the engine is recovering");
        at_items__copy_error(err, &e);
        return rc;
    }
    at_arena_t arena;
    at_arena_init(&arena, 0);
    at_json_t *root = NULL;
    int rc = at_json_parse_all(body, len, &arena, 16, &root, &e);
    const at_json_t *list = NULL;
    if (rc == 0) {
        if (root->type == AT_JSON_OBJECT && at_json_get(root, "items", 5))
            list = at_json_get(root, "items", 5);
        else if (root->type == AT_JSON_ARRAY)
            list = root;
        if (list && list->type != AT_JSON_ARRAY)
            rc = at_error_set(&e, AT_EINVALID, "invalid_body", "items", "items must be an array");
        else if (list && list->len > AT_ITEMS_MAX)
            rc = at_error_set(&e, AT_ETOOBIG, "batch_too_large", "items",
                              "at most %d items per request", AT_ITEMS_MAX);
        else if (list && list->len == 0)
            rc = at_error_set(&e, AT_EINVALID, "invalid_body", "items", "no items");
    }
    size_t n = rc == 0 ? (list ? list->len : 1) : 0;
    at_rec_t *recs = n ? at_xcalloc(n, sizeof *recs) : NULL;
    char **keys = n ? at_xcalloc(n, sizeof *keys) : NULL;
    at_buf_t *vals = n ? at_xcalloc(n, sizeof *vals) : NULL;
    int64_t now = at_time_now_ms();
    size_t i = 0;
    for (const at_json_t *it = list ? list->child : root; rc == 0 && it && i < n;
         it = list ? it->next : NULL, i++) {
        at_buf_init(&vals[i], 0);
        char *id = NULL;
        size_t idn = 0;
        rc = at_reco_item_value(body + it->off, it->end - it->off, &vals[i], &id, &idn, &e);
        if (rc < 0) {
            if (list) { /* name the item: items[3].category */
                char f[sizeof e.field + 32];
                (void)snprintf(f, sizeof f, "items[%zu]%s%.100s", i, e.field[0] ? "." : "",
                               e.field);
                memcpy(e.field, f, sizeof e.field - 1);
                e.field[sizeof e.field - 1] = 0;
            }
            i++;
            break;
        }
        keys[i] = at_xmalloc(idn + 2);
        keys[i][0] = 'i';
        keys[i][1] = ':';
        memcpy(keys[i] + 2, id, idn);
        free(id);
        recs[i] = (at_rec_t){.partition = at_partition_of(keys[i], idn + 2, a->partitions),
                             .type = AT_REC_ITEM,
                             .version = 1,
                             .recv_ms = now,
                             .ts_ms = now,
                             .key = keys[i],
                             .key_len = (uint32_t)(idn + 2),
                             .id = "",
                             .value = vals[i].data,
                             .value_len = (uint32_t)vals[i].len};
    }
    if (rc == 0) {
        at_ijob_t *j = at_engine__ijob(recs, n, -1);
        at_items_ctx_t *c = at_xcalloc(1, sizeof *c);
        c->cb = cb;
        c->ud = ud;
        c->n = n;
        j->done = at_items__done;
        j->ud = c;
        at_engine__append(a, j);
    }
    for (size_t k = 0; k < i; k++) {
        free(keys[k]);
        at_buf_deinit(&vals[k]);
    }
    free(keys);
    free(vals);
    free(recs);
    at_arena_deinit(&arena);
    if (rc < 0)
        at_items__copy_error(err, &e);
    return rc;
}

/* A query into a request; ATTUNE_EINVALID for a bad window or size. */
static int at_items__req(const attune_reco_query_t *q, at_reco_req_t *r, at_pstr_t *ex,
                         size_t maxex)
{
    memset(r, 0, sizeof *r);
    r->n = q && q->n > 0 ? (size_t)q->n : 10;
    if (r->n > 100)
        return AT_EINVALID;
    r->window = AT_RECO_W24H;
    if (q && q->window_ms) {
        r->window = at_reco_window_of(q->window_ms);
        if (r->window < 0)
            return AT_EINVALID;
    }
    if (q && q->category && *q->category) {
        r->category = q->category;
        r->category_len = strlen(q->category);
    }
    size_t nex = q ? AT_MIN(q->nexclude, maxex) : 0;
    for (size_t i = 0; i < nex; i++)
        ex[i] = (at_pstr_t){q->exclude[i], (uint32_t)strlen(q->exclude[i])};
    r->exclude = ex;
    r->nexclude = nex;
    return 0;
}

#define AT_ITEMS_MAX_EXCLUDE 100

/* What a recommendation read takes: the user's key, the request (over
 * ex) and the offset of min_position in the user's partition (-1: none).
 * AT_EINVALID for a bad user or query. */
typedef struct at_items_rq {
    char key[1100];
    size_t kl;
    at_pstr_t ex[AT_ITEMS_MAX_EXCLUDE];
    at_reco_req_t r;
    int64_t min_offset;
} at_items_rq_t;

static int at_items__rq(attune_t *a, const char *user, size_t n, const attune_reco_query_t *q,
                        const char *min_position, at_items_rq_t *x)
{
    x->kl = at_engine__user_key(user, n, x->key, sizeof x->key);
    if (!x->kl || at_items__req(q, &x->r, x->ex, AT_ITEMS_MAX_EXCLUDE) < 0)
        return AT_EINVALID;
    int p = at_partition_of(x->key, x->kl, a->partitions);
    x->min_offset = min_position ? at_engine__position_for(min_position, p) : -1;
    return 0;
}

int attune_recommend(attune_t *a, const char *user, size_t n, const attune_reco_query_t *q,
                     const char *min_position, attune_done_cb cb, void *ud)
{
    at_items_rq_t x;
    if (at_items__rq(a, user, n, q, min_position, &x) < 0)
        return AT_EINVALID;
    return at_streams_recommend(a->streams, x.key, x.kl, &x.r, x.min_offset, cb, ud);
}

int attune_recommend_cached(attune_t *a, const char *user, size_t n, const attune_reco_query_t *q,
                            const char *min_position, char **json, size_t *len)
{
    at_items_rq_t x;
    if (at_items__rq(a, user, n, q, min_position, &x) < 0)
        return AT_EINVALID;
    at_buf_t b;
    at_buf_init(&b, 0);
    if (!at_streams_reco_cached(a->streams, x.key, x.kl, &x.r, x.min_offset, &b)) {
        at_buf_deinit(&b);
        return AT_ENOTFOUND;
    }
    *json = at_buf_steal(&b, len);
    return 0;
}

static int at_items__answer(at_buf_t *b, char **json, size_t *len)
{
    *json = at_buf_steal(b, len);
    return 0;
}

int attune_similar(attune_t *a, const char *item, size_t n, const attune_reco_query_t *q,
                   char **json, size_t *len)
{
    at_pstr_t ex[AT_ITEMS_MAX_EXCLUDE];
    at_reco_req_t r;
    if (!n || at_items__req(q, &r, ex, AT_ITEMS_MAX_EXCLUDE) < 0)
        return AT_EINVALID;
    at_reco_set_t *s = at_streams_reco(a->streams);
    at_buf_t b;
    at_buf_init(&b, 0);
    if (at_reco_item_render(s, item, n, &b) < 0) {
        at_buf_deinit(&b);
        return AT_ENOTFOUND;
    }
    at_buf_reset(&b);
    at_reco_result_t res;
    at_reco_result_init(&res);
    at_reco_similar(s, item, n, &r, &res);
    AT_ASSERT(at_buf_puts(&b, "{\"item_id\":") == 0);
    AT_ASSERT(at_buf_json_str(&b, item, n) == 0);
    AT_ASSERT(at_buf_puts(&b, ",\"items\":") == 0);
    at_reco_render(&res, &b);
    AT_ASSERT(at_buf_putc(&b, '}') == 0);
    at_reco_result_deinit(&res);
    return at_items__answer(&b, json, len);
}

int attune_trending(attune_t *a, const attune_reco_query_t *q, char **json, size_t *len)
{
    at_pstr_t ex[AT_ITEMS_MAX_EXCLUDE];
    at_reco_req_t r;
    if (at_items__req(q, &r, ex, AT_ITEMS_MAX_EXCLUDE) < 0)
        return AT_EINVALID;
    at_reco_set_t *s = at_streams_reco(a->streams);
    at_reco_result_t res;
    at_reco_result_init(&res);
    at_reco_trending(s, &r, &res);
    at_buf_t b;
    at_buf_init(&b, 0);
    static const char *const wname[] = {"1h", "24h", "7d"};
    AT_ASSERT(at_buf_printf(&b, "{\"window\":\"%s\",\"items\":", wname[r.window]) >= 0);
    at_reco_render(&res, &b);
    AT_ASSERT(at_buf_putc(&b, '}') == 0);
    at_reco_result_deinit(&res);
    return at_items__answer(&b, json, len);
}

int attune_item_get(attune_t *a, const char *item, size_t n, char **json, size_t *len)
{
    if (!n)
        return AT_EINVALID;
    at_buf_t b;
    at_buf_init(&b, 0);
    if (at_reco_item_render(at_streams_reco(a->streams), item, n, &b) < 0) {
        at_buf_deinit(&b);
        return AT_ENOTFOUND;
    }
    return at_items__answer(&b, json, len);
}

/* ---- decide --------------------------------------------------------------------- */

int attune_decide(attune_t *a, const char *body, size_t len, attune_done_cb cb, void *ud,
                  attune_error_t *err)
{
    at_error_t e = {0};
    at_arena_t arena;
    at_arena_init(&arena, 0);
    at_json_t *v = NULL;
    int rc = at_json_parse_all(body, len, &arena, 32, &v, &e);
    if (rc == 0 && v->type != AT_JSON_OBJECT)
        rc = at_error_set(&e, AT_EINVALID, "invalid_body", NULL,
                          "a decision request is {user_id, placement, context}");
    const at_json_t *pn = rc == 0 ? at_json_get(v, "placement", 9) : NULL;
    const at_placement_t *pl = NULL;
    if (rc == 0 && (!pn || pn->type != AT_JSON_STRING))
        rc = at_error_set(&e, AT_EINVALID, "invalid_body", "placement", "placement is required");
    else if (rc == 0 && !(pl = at_placements_find(a->placements, pn->s, pn->len)))
        rc = at_error_set(&e, AT_ENOTFOUND, "unknown_placement", "placement",
                          "no placement %.*s in the configuration", (int)AT_MIN(pn->len, 200u),
                          pn->s);
    char key[1100];
    size_t kl = 0;
    if (rc == 0) {
        const at_json_t *uid = at_json_get(v, "user_id", 7),
                        *aid = at_json_get(v, "anonymous_id", 12), *u = at_json_get(v, "user", 4);
        const at_json_t *id = uid ? uid : aid ? aid : u;
        if (!id || id->type != AT_JSON_STRING || !id->len || id->len > 1024) {
            rc = at_error_set(&e, AT_EINVALID, "invalid_body", "user_id",
                              "user_id, anonymous_id or user (u:ID, a:ID) is required");
        } else if (id == aid) {
            key[0] = 'a';
            key[1] = ':';
            memcpy(key + 2, id->s, id->len);
            kl = id->len + 2;
        } else if (id == uid) {
            key[0] = 'u';
            key[1] = ':';
            memcpy(key + 2, id->s, id->len);
            kl = id->len + 2;
        } else {
            kl = at_engine__user_key(id->s, id->len, key, sizeof key);
        }
    }
    const at_json_t *ctx = rc == 0 ? at_json_get(v, "context", 7) : NULL;
    if (rc == 0 && ctx && ctx->type != AT_JSON_OBJECT)
        rc = at_error_set(&e, AT_EINVALID, "invalid_body", "context", "context is an object");
    int64_t min_offset = -1;
    if (rc == 0) {
        const at_json_t *mp = at_json_get(v, "min_position", 12);
        if (mp && mp->type == AT_JSON_STRING) {
            char pos[2048];
            size_t n = AT_MIN((size_t)mp->len, sizeof pos - 1);
            memcpy(pos, mp->s, n);
            pos[n] = 0;
            min_offset = at_engine__position_for(pos, at_partition_of(key, kl, a->partitions));
        }
        rc = at_streams_decide(a->streams, key, kl, pl, body, len, min_offset, at_time_now_ms(), cb,
                               ud);
        if (rc < 0)
            rc = at_error_set(&e, AT_EUNAVAIL, "unavailable", NULL, "the engine is stopping");
    }
    at_arena_deinit(&arena);
    if (rc < 0 && err)
        memcpy(err, &e, sizeof *err);
    return rc;
}

int attune_placements(attune_t *a, char **json, size_t *len)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    at_placements_render(a->placements, &b);
    return at_items__answer(&b, json, len);
}
