/* test_reco.c - the online recommender on small hand-built histories:
 * neighbours from co-occurrence, event-type weights, decay, purchases and
 * recent items excluded, availability from the catalog, cold start,
 * trending windows, merging over partitions, checkpoint round trips, and
 * the OTTO sessions as a golden test of the weights. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "at_reco.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_MS 60000LL
#define DAY_MS 86400000LL
#define T0 1700000000000LL

typedef struct user {
    char name[32];
    at_profile_t prof;
    at_arena_t arena;
    int part;
} user_t;

typedef struct world {
    at_reco_cfg_t cfg;
    at_profile_cfg_t pcfg;
    at_reco_part_t *parts[4];
    int nparts;
    at_reco_set_t set;
    user_t users[64];
    int nusers;
} world_t;

static world_t *world_new(int nparts)
{
    world_t *w = calloc(1, sizeof *w);
    at_reco_cfg_defaults(&w->cfg);
    at_profile_cfg_defaults(&w->pcfg);
    w->nparts = nparts;
    for (int i = 0; i < nparts; i++)
        w->parts[i] = at_reco_part_new(&w->cfg, &w->pcfg);
    at_reco_set_init(&w->set, w->parts, nparts);
    w->set.trend_by_data_time = true;
    w->set.cache_ms = 0; /* every read sees every update */
    return w;
}

static void world_free(world_t *w)
{
    at_reco_set_deinit(&w->set);
    for (int i = 0; i < w->nparts; i++)
        at_reco_part_free(w->parts[i]);
    for (int i = 0; i < w->nusers; i++)
        at_arena_deinit(&w->users[i].arena);
    free(w);
}

static user_t *user_of(world_t *w, const char *name)
{
    for (int i = 0; i < w->nusers; i++)
        if (!strcmp(w->users[i].name, name))
            return &w->users[i];
    assert_true(w->nusers < 64);
    user_t *u = &w->users[w->nusers++];
    snprintf(u->name, sizeof u->name, "%s", name);
    at_arena_init(&u->arena, 0);
    at_profile_init(&u->prof, &u->arena);
    u->part = at_partition_of(name, strlen(name), w->nparts);
    return u;
}

static at_pstr_t ps(at_arena_t *a, const char *s)
{
    return (at_pstr_t){s ? at_arena_strndup(a, s, strlen(s)) : "", s ? (uint32_t)strlen(s) : 0};
}

/* user does type on item (category) at ts: the profile, then the recommender */
static void ev(world_t *w, const char *user, const char *type, const char *item, const char *cat,
               int64_t ts)
{
    user_t *u = user_of(w, user);
    at_pevent_t e = {0};
    e.type = ps(&u->arena, type);
    e.item = ps(&u->arena, item);
    e.category = ps(&u->arena, cat);
    e.ts = ts;
    at_profile_apply(&u->prof, &w->pcfg, &e, false);
    at_reco_observe(w->parts[u->part], &u->prof, &e);
}

static void catalog(world_t *w, const char *json)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    char *id = NULL;
    size_t idn = 0;
    at_error_t err;
    assert_int_equal(at_reco_item_value(json, strlen(json), &b, &id, &idn, &err), 0);
    char key[300];
    snprintf(key, sizeof key, "i:%.*s", (int)idn, id);
    int p = at_partition_of(key, strlen(key), w->nparts);
    assert_int_equal(at_reco_catalog(w->parts[p], b.data, b.len, T0), 0);
    free(id);
    at_buf_deinit(&b);
}

static at_reco_req_t req_n(size_t n)
{
    at_reco_req_t r = {0};
    r.n = n;
    r.window = AT_RECO_W24H;
    return r;
}

/* The result's items as "a,b,c". */
static void ids(const at_reco_result_t *r, char *out, size_t n)
{
    out[0] = 0;
    for (size_t i = 0; i < r->n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s%.*s", i ? "," : "", (int)r->hits[i].item.n, r->hits[i].item.s);
    }
}

static void similar(world_t *w, const char *item, at_reco_req_t rq, char *out, size_t n)
{
    at_reco_result_t r;
    at_reco_result_init(&r);
    at_reco_similar(&w->set, item, strlen(item), &rq, &r);
    ids(&r, out, n);
    for (size_t i = 0; i < r.n; i++) {
        assert_int_equal(r.hits[i].reason, AT_RECO_R_COOC);
        assert_true(r.hits[i].score > 0);
        if (i)
            assert_true(r.hits[i].score <= r.hits[i - 1].score);
    }
    at_reco_result_deinit(&r);
}

static void recs(world_t *w, const char *user, at_reco_req_t rq, char *out, size_t n,
                 at_reco_result_t *keep)
{
    at_reco_result_t r;
    at_reco_result_init(&r);
    user_t *u = user_of(w, user);
    at_reco_user(&w->set, u->prof.events ? &u->prof : NULL, &rq, &r);
    ids(&r, out, n);
    if (keep)
        *keep = r;
    else
        at_reco_result_deinit(&r);
}

static void test_neighbours(void **state)
{
    (void)state;
    world_t *w = world_new(2);
    ev(w, "u1", "view_item", "A", "x", T0);
    ev(w, "u1", "view_item", "B", "x", T0 + MIN_MS);
    ev(w, "u2", "view_item", "A", "x", T0);
    ev(w, "u2", "view_item", "C", "x", T0 + MIN_MS);
    ev(w, "u3", "view_item", "A", "x", T0);
    ev(w, "u3", "view_item", "B", "x", T0 + 2 * MIN_MS);
    /* far apart in time: no pair */
    ev(w, "u4", "view_item", "A", "x", T0);
    ev(w, "u4", "view_item", "D", "x", T0 + 2 * 3600000);
    char got[256];
    similar(w, "A", req_n(10), got, sizeof got);
    assert_string_equal(got, "B,C");
    similar(w, "B", req_n(10), got, sizeof got);
    assert_string_equal(got, "A");
    similar(w, "D", req_n(10), got, sizeof got);
    assert_string_equal(got, "");
    similar(w, "nothing", req_n(10), got, sizeof got);
    assert_string_equal(got, "");
    /* n bounds the answer */
    similar(w, "A", req_n(1), got, sizeof got);
    assert_string_equal(got, "B");
    world_free(w);
}

static void test_type_weights(void **state)
{
    (void)state;
    world_t *w = world_new(1);
    /* Y comes with X once by a cart, Z twice by views: the cart (3) outweighs two views */
    ev(w, "u1", "view_item", "X", "x", T0);
    ev(w, "u1", "add_to_cart", "Y", "x", T0 + MIN_MS);
    ev(w, "u2", "view_item", "X", "x", T0);
    ev(w, "u2", "view_item", "Z", "x", T0 + MIN_MS);
    ev(w, "u3", "view_item", "X", "x", T0);
    ev(w, "u3", "view_item", "Z", "x", T0 + MIN_MS);
    char got[256];
    at_reco_req_t rq = req_n(10);
    at_reco_result_t r;
    at_reco_result_init(&r);
    at_reco_similar(&w->set, "X", 1, &rq, &r);
    ids(&r, got, sizeof got);
    assert_string_equal(got, "Y,Z");
    /* cosine: pair weight / sqrt(pop(X) pop(c)): X has 1 + 1 + 1 (the
     * views), Y 3, Z 2; pairs X-Y 3, X-Z 2 */
    assert_float_equal(r.hits[0].score, 3.0 / sqrt(3.0 * 3.0), 1e-3);
    assert_float_equal(r.hits[1].score, 2.0 / sqrt(3.0 * 2.0), 1e-3);
    at_reco_result_deinit(&r);
    /* an event type that weighs nothing (custom types weigh 0 by default)
     * changes nothing */
    ev(w, "u4", "custom_thing", "X", "x", T0 + 2 * MIN_MS);
    at_buf_t b;
    at_buf_init(&b, 0);
    assert_int_equal(at_reco_item_render(&w->set, "X", 1, &b), 0);
    const char *pq = strstr(b.data, "\"popularity\":");
    assert_non_null(pq);
    assert_float_equal(strtod(pq + 13, NULL), 3.0, 1e-3); /* decayed over a minute */
    at_buf_deinit(&b);
    world_free(w);
}

static void test_decay(void **state)
{
    (void)state;
    world_t *w = world_new(1);
    /* the old pair came twice, the new one once, 3 half-lives later: the
     * new one ranks first (2 * 2^-3 < 1) */
    int64_t hl = w->cfg.half_life_ms;
    ev(w, "u1", "view_item", "A", "x", T0);
    ev(w, "u1", "view_item", "OLD", "x", T0 + MIN_MS);
    ev(w, "u2", "view_item", "A", "x", T0);
    ev(w, "u2", "view_item", "OLD", "x", T0 + MIN_MS);
    ev(w, "u3", "view_item", "A", "x", T0 + 3 * hl);
    ev(w, "u3", "view_item", "NEW", "x", T0 + 3 * hl + MIN_MS);
    char got[256];
    similar(w, "A", req_n(10), got, sizeof got);
    assert_string_equal(got, "NEW,OLD");
    /* popularity decays: A's views 2 at T0 and 1 at 3 hl, seen at 3 hl + 1 min */
    at_buf_t b;
    at_buf_init(&b, 0);
    assert_int_equal(at_reco_item_render(&w->set, "OLD", 3, &b), 0);
    double pop = 0;
    const char *q = strstr(b.data, "\"popularity\":");
    assert_non_null(q);
    pop = strtod(q + 13, NULL);
    assert_float_equal(pop, 2.0 * exp2(-(3.0 * (double)hl) / (double)hl), 1e-3);
    at_buf_deinit(&b);
    /* a rebase far in the future keeps the order and the ratio */
    ev(w, "u9", "view_item", "A", "x", T0 + 40 * hl);
    similar(w, "A", req_n(10), got, sizeof got);
    assert_string_equal(got, "NEW,OLD");
    world_free(w);
}

static void test_exclusions(void **state)
{
    (void)state;
    world_t *w = world_new(2);
    /* others: phone with case and charger */
    for (int i = 0; i < 5; i++) {
        char u[16];
        snprintf(u, sizeof u, "o%d", i);
        ev(w, u, "view_item", "phone", "el/phones", T0 + i);
        ev(w, u, "add_to_cart", "case", "el/acc", T0 + i + MIN_MS);
        if (i < 3)
            ev(w, u, "view_item", "charger", "el/acc", T0 + i + 2 * MIN_MS);
        if (i < 2)
            ev(w, u, "view_item", "cable", "el/acc", T0 + i + 2 * MIN_MS);
    }
    /* the user bought the phone and the case already */
    ev(w, "me", "purchase", "phone", "el/phones", T0 + 10 * MIN_MS);
    ev(w, "me", "purchase", "case", "el/acc", T0 + 11 * MIN_MS);
    char got[256];
    at_reco_result_t r;
    recs(w, "me", req_n(10), got, sizeof got, &r);
    assert_null(strstr(got, "phone"));
    assert_null(strstr(got, "case,"));
    assert_true(strncmp(got, "charger,cable", 13) == 0);
    assert_int_equal(r.hits[0].reason, AT_RECO_R_COOC);
    assert_true(r.hits[0].via.n > 0);
    at_reco_result_deinit(&r);
    /* the request's exclusions and category */
    at_reco_req_t rq = req_n(10);
    at_pstr_t ex[1] = {{"charger", 7}};
    rq.exclude = ex;
    rq.nexclude = 1;
    recs(w, "me", rq, got, sizeof got, NULL);
    assert_true(strncmp(got, "cable", 5) == 0);
    rq = req_n(10);
    rq.category = "el/phones";
    rq.category_len = 9;
    recs(w, "me", rq, got, sizeof got, NULL);
    assert_string_equal(got, ""); /* the only phone is bought */
    /* unavailable in the catalog: gone; available again: back */
    catalog(w, "{\"item_id\":\"charger\",\"category\":\"el/acc\",\"available\":false}");
    recs(w, "me", req_n(10), got, sizeof got, NULL);
    assert_null(strstr(got, "charger"));
    similar(w, "phone", req_n(10), got, sizeof got);
    assert_null(strstr(got, "charger"));
    catalog(w, "{\"item_id\":\"charger\",\"category\":\"el/acc\",\"available\":true}");
    recs(w, "me", req_n(10), got, sizeof got, NULL);
    assert_non_null(strstr(got, "charger"));
    world_free(w);
}

static void test_cold_start_and_trending(void **state)
{
    (void)state;
    world_t *w = world_new(2);
    /* two hours ago: old items; now: new ones */
    int64_t now = T0 + 10 * DAY_MS;
    for (int i = 0; i < 4; i++) {
        char u[16];
        snprintf(u, sizeof u, "a%d", i);
        ev(w, u, "view_item", "old1", "books", now - 2 * 3600000 - i);
    }
    for (int i = 0; i < 3; i++) {
        char u[16];
        snprintf(u, sizeof u, "b%d", i);
        ev(w, u, "view_item", "new1", "toys", now - i);
    }
    ev(w, "c0", "purchase", "new2", "toys/lego", now);
    char got[256];
    at_reco_req_t rq = req_n(10);
    rq.window = AT_RECO_W1H;
    at_reco_result_t r;
    at_reco_result_init(&r);
    at_reco_trending(&w->set, &rq, &r);
    ids(&r, got, sizeof got);
    assert_string_equal(got, "new2,new1"); /* purchase 5 > 3 views */
    assert_float_equal(r.hits[0].score, 5.0, 1e-9);
    at_reco_result_deinit(&r);
    rq.window = AT_RECO_W24H;
    at_reco_result_init(&r);
    at_reco_trending(&w->set, &rq, &r);
    ids(&r, got, sizeof got);
    assert_string_equal(got, "new2,old1,new1");
    at_reco_result_deinit(&r);
    rq.category = "toys";
    rq.category_len = 4;
    at_reco_result_init(&r);
    at_reco_trending(&w->set, &rq, &r);
    ids(&r, got, sizeof got);
    assert_string_equal(got, "new2,new1"); /* toys and toys/lego, not books */
    at_reco_result_deinit(&r);
    /* a user with no history gets what is trending */
    at_reco_result_init(&r);
    recs(w, "stranger", req_n(2), got, sizeof got, &r);
    assert_string_equal(got, "new2,old1");
    assert_int_equal(r.hits[0].reason, AT_RECO_R_TRENDING);
    at_reco_result_deinit(&r);
    /* window names */
    assert_int_equal(at_reco_window_of(3600000), AT_RECO_W1H);
    assert_int_equal(at_reco_window_of(DAY_MS), AT_RECO_W24H);
    assert_int_equal(at_reco_window_of(7 * DAY_MS), AT_RECO_W7D);
    assert_int_equal(at_reco_window_of(2 * 3600000), -1);
    world_free(w);
}

static void test_affinity(void **state)
{
    (void)state;
    world_t *w = world_new(1);
    /* trending: a book most, a toy less; the user likes toys */
    for (int i = 0; i < 6; i++) {
        char u[16];
        snprintf(u, sizeof u, "t%d", i);
        ev(w, u, "view_item", "bestseller", "books", T0 + i);
        if (i < 2)
            ev(w, u, "view_item", "robot", "toys", T0 + 3 * 3600000 + i);
    }
    ev(w, "me", "view_item", "teddy", "toys", T0 + 4 * 3600000);
    char got[256];
    at_reco_result_t r;
    recs(w, "me", req_n(2), got, sizeof got, &r);
    assert_string_equal(got, "robot,bestseller");
    assert_int_equal(r.hits[0].reason, AT_RECO_R_AFFINITY);
    assert_int_equal(r.hits[0].via.n, 4);
    assert_int_equal(r.hits[1].reason, AT_RECO_R_TRENDING);
    at_buf_t b;
    at_buf_init(&b, 0);
    at_reco_render(&r, &b);
    assert_non_null(strstr(b.data, "\"reason\":\"affinity\",\"category_of_interest\":\"toys\""));
    at_buf_deinit(&b);
    at_reco_result_deinit(&r);
    world_free(w);
}

/* Merged item data is reused for cache_ms by the reading thread: an
 * update shows after it, not before; 0 shows every update at once. */
static void test_read_cache(void **state)
{
    (void)state;
    world_t *w = world_new(2);
    ev(w, "u1", "view_item", "A", "x", T0);
    ev(w, "u1", "view_item", "B", "x", T0 + MIN_MS);
    char got[256];
    w->set.cache_ms = 3600000;
    similar(w, "A", req_n(10), got, sizeof got);
    assert_string_equal(got, "B");
    ev(w, "u2", "view_item", "A", "x", T0 + 2 * MIN_MS);
    ev(w, "u2", "view_item", "C", "x", T0 + 3 * MIN_MS);
    similar(w, "A", req_n(10), got, sizeof got);
    assert_string_equal(got, "B"); /* the cached neighbours */
    w->set.cache_ms = 0;
    similar(w, "A", req_n(10), got, sizeof got);
    assert_string_equal(got, "C,B"); /* C's pair is a little fresher */
    /* another set (same parts) never sees this set's cached data */
    w->set.cache_ms = 3600000;
    similar(w, "A", req_n(10), got, sizeof got);
    ev(w, "u3", "view_item", "A", "x", T0 + 4 * MIN_MS);
    ev(w, "u3", "view_item", "D", "x", T0 + 5 * MIN_MS);
    at_reco_set_t s2;
    at_reco_set_init(&s2, w->parts, w->nparts);
    at_reco_req_t rq = req_n(10);
    at_reco_result_t r;
    at_reco_result_init(&r);
    at_reco_similar(&s2, "A", 1, &rq, &r);
    assert_int_equal(r.n, 3);
    at_reco_result_deinit(&r);
    at_reco_set_deinit(&s2);
    world_free(w);
}

/* The result's items with their scores and reasons. */
static void scored(world_t *w, const char *user, char *out, size_t n)
{
    at_reco_result_t r;
    at_reco_result_init(&r);
    user_t *u = user_of(w, user);
    at_reco_req_t rq = req_n(10);
    at_reco_user(&w->set, &u->prof, &rq, &r);
    out[0] = 0;
    for (size_t i = 0; i < r.n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%.*s:%.9g:%d ", (int)r.hits[i].item.n, r.hits[i].item.s,
                 r.hits[i].score, r.hits[i].reason);
    }
    at_reco_result_deinit(&r);
}

/* A read's candidate table is reset by moving its epoch on, and cleared
 * once every 4,095 reads: the same user read again and again past
 * several wraps, two users alternating, and a user read again exactly
 * 4,095 resets later each give the answer of their first read, scores
 * included (a slot of an earlier read taken as current would find a
 * candidate before it was added this time). */
static void test_reads_past_epochs(void **state)
{
    (void)state;
    world_t *w = world_new(2);
    const char *items[] = {"A", "B", "C", "D", "E", "F"};
    for (int k = 0; k < 6; k++) /* pairs among A..F */
        for (int j = 0; j < 6; j++)
            ev(w, k % 2 ? "u1" : "u2", "view_item", items[(k + j) % 6], "x",
               T0 + (k * 6 + j) * MIN_MS);
    ev(w, "u3", "view_item", "A", "x", T0 + 40 * MIN_MS);
    ev(w, "u3", "view_item", "B", "x", T0 + 41 * MIN_MS);
    ev(w, "u4", "view_item", "C", "x", T0 + 42 * MIN_MS);
    char first3[512], first4[512], got[512];
    scored(w, "u3", first3, sizeof first3);
    scored(w, "u4", first4, sizeof first4);
    assert_non_null(strstr(first3, "C:"));
    assert_non_null(strstr(first4, "D:"));
    for (int i = 0; i < 2 * 4096; i++) {
        scored(w, "u3", got, sizeof got);
        assert_string_equal(got, first3);
    }
    for (int i = 0; i < 2 * 4096; i++) {
        scored(w, i % 2 ? "u4" : "u3", got, sizeof got);
        assert_string_equal(got, i % 2 ? first4 : first3);
    }
    /* u3 read in an epoch, then 4,094 reads that add no candidate: the
     * next read of u3 has the same epoch again, and its slots and
     * entries are all still there from the first; only the clearing at
     * the wrap tells them from this read's */
    scored(w, "u3", got, sizeof got);
    for (int i = 0; i < 4094; i++)
        scored(w, "nobody", got, sizeof got);
    scored(w, "u3", got, sizeof got);
    assert_string_equal(got, first3);
    world_free(w);
}

static void kv_restore(void *ud, const char *key, size_t klen, const void *val, size_t vlen)
{
    assert_int_equal(at_reco_restore(ud, key, klen, val, vlen), 0);
}

static void kv_count(void *ud, const char *key, size_t klen, const void *val, size_t vlen)
{
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    (*(int *)ud)++;
}

static void test_checkpoint_roundtrip(void **state)
{
    (void)state;
    world_t *w = world_new(1);
    ev(w, "u1", "view_item", "A", "x", T0);
    ev(w, "u1", "add_to_cart", "B", "y", T0 + MIN_MS);
    ev(w, "u2", "view_item", "A", "x", T0 + 2 * MIN_MS);
    ev(w, "u2", "view_item", "C", "x", T0 + 3 * MIN_MS);
    catalog(w, "{\"item_id\":\"C\",\"category\":\"z\",\"attributes\":{\"price\":3}}");
    int n = 0;
    at_reco_changes(w->parts[0], false, 2, 9, kv_count, &n);
    assert_int_equal(n, 3);
    n = 0;
    at_reco_changes(w->parts[0], false, 2, 9, kv_count, &n);
    assert_int_equal(n, 0); /* nothing changed since */
    ev(w, "u3", "view_item", "B", "y", T0 + 4 * MIN_MS);
    at_reco_changes(w->parts[0], false, 2, 9, kv_count, &n);
    assert_int_equal(n, 1);

    at_reco_part_t *copy = at_reco_part_new(&w->cfg, &w->pcfg);
    at_reco_changes(w->parts[0], true, 2, 9, kv_restore, copy);
    assert_int_equal(at_reco_digest(copy), at_reco_digest(w->parts[0]));
    assert_int_equal(at_reco_items(copy), 3);
    at_reco_set_t s2;
    at_reco_set_init(&s2, &copy, 1);
    s2.trend_by_data_time = true;
    s2.cache_ms = 0;
    at_reco_req_t rq = req_n(10);
    at_reco_result_t a, b;
    at_reco_result_init(&a);
    at_reco_result_init(&b);
    at_reco_similar(&w->set, "A", 1, &rq, &a);
    at_reco_similar(&s2, "A", 1, &rq, &b);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        assert_memory_equal(a.hits[i].item.s, b.hits[i].item.s, a.hits[i].item.n);
        assert_true(a.hits[i].score == b.hits[i].score);
    }
    at_buf_t x;
    at_buf_init(&x, 0);
    assert_int_equal(at_reco_item_render(&s2, "C", 1, &x), 0);
    assert_non_null(strstr(x.data, "{\"item_id\":\"C\",\"category\":\"z\",\"available\":true,"
                                   "\"catalog\":true,\"popularity\":0.9999"));
    assert_non_null(strstr(x.data, ",\"attributes\":{\"price\":3}}"));
    at_buf_deinit(&x);
    /* the copy goes on like the original */
    user_t *u = user_of(w, "u4");
    at_pevent_t e = {.type = {"view_item", 9}, .item = {"A", 1}, .ts = T0 + 5 * MIN_MS};
    at_profile_apply(&u->prof, &w->pcfg, &e, false);
    at_reco_observe(w->parts[0], &u->prof, &e);
    at_reco_observe(copy, &u->prof, &e);
    assert_int_equal(at_reco_digest(copy), at_reco_digest(w->parts[0]));
    /* a garbled value is refused */
    char key[5] = {AT_RECO_KEY, 0, 0, 0, 1};
    assert_int_equal(at_reco_restore(copy, key, 5, "\x02\x09\x01", 3), AT_ECORRUPT);
    assert_int_equal(at_reco_restore(copy, key, 4, "\x02\x09\x01", 3), AT_ECORRUPT);
    at_reco_result_deinit(&a);
    at_reco_result_deinit(&b);
    at_reco_set_deinit(&s2);
    at_reco_part_free(copy);
    world_free(w);
}

/* Partners found by the dictionary ids of a decoded profile's recent
 * items give the same aggregates, bit for bit, as partners looked up by
 * their ids: the processor's way (profiles stored with the partition's
 * dictionary) against profiles without ids. */
static void test_partners_by_dictionary_id(void **state)
{
    (void)state;
    at_reco_cfg_t cfg;
    at_profile_cfg_t pcfg;
    at_reco_cfg_defaults(&cfg);
    at_profile_cfg_defaults(&pcfg);
    cfg.neighbours = 5; /* full lists: replacements too */
    at_reco_part_t *by_id = at_reco_part_new(&cfg, &pcfg), *by_str = at_reco_part_new(&cfg, &pcfg);
    at_sdict_t *d = at_sdict_new(1000, 1 << 20);
    at_arena_t a;
    at_arena_init(&a, 0);
    at_buf_t stored[3], enc;
    for (int u = 0; u < 3; u++)
        at_buf_init(&stored[u], 0);
    at_buf_init(&enc, 0);
    static const char *const types[] = {"view_item", "add_to_cart", "view_item", "purchase"};
    uint64_t r = 42;
    int64_t t = T0;
    for (int i = 0; i < 600; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        int u = (int)((r >> 33) % 3);
        char item[8];
        snprintf(item, sizeof item, "i%d", (int)((r >> 40) % 12));
        t += (int64_t)((r >> 20) % 7) * MIN_MS; /* some pairs fall out of the window */
        at_profile_t p;
        if (stored[u].len)
            assert_true(
                at_profile_decode(&p, (const uint8_t *)stored[u].data, stored[u].len, d, &a) > 0);
        else
            at_profile_init(&p, &a);
        at_pevent_t e = {.type = {types[i % 4], (uint32_t)strlen(types[i % 4])},
                         .item = {item, (uint32_t)strlen(item)},
                         .category = {"c", 1},
                         .ts = t};
        at_profile_apply(&p, &pcfg, &e, false);
        at_reco_observe(by_id, &p, &e);
        at_profile_t q = p;
        for (uint32_t k = 0; k < q.nrecent; k++)
            q.recent[k].sym = AT_SDICT_NONE;
        at_reco_observe(by_str, &q, &e);
        at_buf_reset(&enc);
        at_profile_encode(&p, d, &enc);
        at_buf_reset(&stored[u]);
        assert_int_equal(at_buf_append(&stored[u], enc.data, enc.len), 0);
        at_arena_reset(&a);
    }
    assert_true(at_reco_items(by_id) == 12);
    assert_true(at_reco_digest(by_id) == at_reco_digest(by_str));
    for (int u = 0; u < 3; u++)
        at_buf_deinit(&stored[u]);
    at_buf_deinit(&enc);
    at_arena_deinit(&a);
    at_sdict_free(d);
    at_reco_part_free(by_id);
    at_reco_part_free(by_str);
}

static void test_item_values(void **state)
{
    (void)state;
    at_buf_t b;
    at_buf_init(&b, 0);
    char *id = NULL;
    size_t n = 0;
    at_error_t err;
    const char *ok = "{\"id\":\"sku-1\",\"category\":\"a/b\",\"attributes\":{\"name\":\"x\"}}";
    assert_int_equal(at_reco_item_value(ok, strlen(ok), &b, &id, &n, &err), 0);
    assert_string_equal(b.data, "{\"item_id\":\"sku-1\",\"category\":\"a/b\",\"available\":true,"
                                "\"attributes\":{\"name\":\"x\"}}");
    assert_int_equal(n, 5);
    assert_memory_equal(id, "sku-1", 5);
    free(id);
    struct {
        const char *json, *field;
        int rc;
    } bad[] = {
        {"[1]", "", AT_EINVALID},
        {"{\"category\":\"x\"}", "item_id", AT_EINVALID},
        {"{\"item_id\":\"\"}", "item_id", AT_EINVALID},
        {"{\"item_id\":3}", "item_id", AT_EINVALID},
        {"{\"item_id\":\"a\",\"available\":1}", "available", AT_EINVALID},
        {"{\"item_id\":\"a\",\"category\":[]}", "category", AT_EINVALID},
        {"{\"item_id\":\"a\",\"attributes\":\"x\"}", "attributes", AT_EINVALID},
        {"{\"item_id\":\"a\",\"price\":3}", "price", AT_EINVALID},
        {"{\"item_id\":", NULL, AT_EPARSE},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        int rc = at_reco_item_value(bad[i].json, strlen(bad[i].json), &b, &id, &n, &err);
        assert_int_equal(rc, bad[i].rc);
        if (bad[i].field)
            assert_string_equal(err.field, bad[i].field);
        assert_true(err.message[0] != 0);
    }
    at_buf_deinit(&b);
}

/* The OTTO sessions (clicks, carts, orders) as a golden test of the
 * event-type weights: the neighbours of the items most interacted with,
 * and the same with every type weighing alike, which must differ. */
static void otto_run(bool equal_weights, at_buf_t *out)
{
    const char *dir = getenv("AT_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/../shared/data/otto-session-fixture/train.jsonl",
             dir ? dir : ".");
    FILE *f = fopen(path, "r");
    if (!f) {
        at_buf_puts(out, "missing");
        return;
    }
    world_t *w = world_new(2);
    if (equal_weights) {
        w->pcfg.nweights = 0;
        w->pcfg.default_weight = 1;
        at_reco_set_deinit(&w->set);
        for (int i = 0; i < w->nparts; i++) {
            at_reco_part_free(w->parts[i]);
            w->parts[i] = at_reco_part_new(&w->cfg, &w->pcfg);
        }
        at_reco_set_init(&w->set, w->parts, w->nparts);
        w->set.trend_by_data_time = true;
        w->set.cache_ms = 0;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int counts[64] = {0};
    char top[64][16];
    int ntop = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        int session = atoi(strstr(line, "\"session\":") + 10);
        char user[32];
        snprintf(user, sizeof user, "s%d", session);
        for (char *p = strstr(line, "{\"aid\":"); p; p = strstr(p + 1, "{\"aid\":")) {
            char aid[16];
            long long ts;
            char type[16];
            assert_int_equal(
                sscanf(p, "{\"aid\":%15[0-9],\"ts\":%lld,\"type\":\"%15[a-z]\"", aid, &ts, type),
                3);
            const char *t = !strcmp(type, "clicks")  ? "view_item"
                            : !strcmp(type, "carts") ? "add_to_cart"
                                                     : "purchase";
            ev(w, user, t, aid, "", ts);
            if (strcmp(type, "clicks") != 0) {
                int k = 0;
                while (k < ntop && strcmp(top[k], aid) != 0)
                    k++;
                if (k == ntop && ntop < 64)
                    snprintf(top[ntop++], sizeof top[0], "%s", aid);
                if (k < 64)
                    counts[k]++;
            }
        }
    }
    free(line);
    fclose(f);
    /* the carted or ordered items, in the order first seen */
    for (int k = 0; k < ntop && k < 12; k++) {
        char got[512];
        similar(w, top[k], req_n(5), got, sizeof got);
        at_buf_printf(out, "%s: %s\n", top[k], got);
    }
    world_free(w);
}

static void test_otto_golden(void **state)
{
    (void)state;
    at_buf_t got, flat;
    at_buf_init(&got, 0);
    at_buf_init(&flat, 0);
    otto_run(false, &got);
    if (!strcmp(got.data, "missing")) {
        at_buf_deinit(&got);
        at_buf_deinit(&flat);
        skip();
    }
    otto_run(true, &flat);
    assert_string_not_equal(got.data, flat.data); /* the weights matter */
    const char *dir = getenv("AT_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/golden/reco/otto_similar.txt", dir ? dir : ".");
    char *want = NULL;
    size_t wl = 0;
    if (getenv("AT_GOLDEN_WRITE")) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(got.data, f);
        fclose(f);
    }
    assert_int_equal(at_file_read(path, 1 << 20, &want, &wl), 0);
    assert_string_equal(got.data, want);
    free(want);
    at_buf_deinit(&got);
    at_buf_deinit(&flat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_neighbours),
        cmocka_unit_test(test_type_weights),
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_exclusions),
        cmocka_unit_test(test_cold_start_and_trending),
        cmocka_unit_test(test_affinity),
        cmocka_unit_test(test_read_cache),
        cmocka_unit_test(test_reads_past_epochs),
        cmocka_unit_test(test_checkpoint_roundtrip),
        cmocka_unit_test(test_item_values),
        cmocka_unit_test(test_partners_by_dictionary_id),
        cmocka_unit_test(test_otto_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
