/* test_profile.c - profiles: counters, decayed affinities and their shares,
 * recent items, sessions, traits, late events, merges, and the encoding
 * round trip that makes state bit-identical across checkpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "at_profile.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define T0 1777248000000LL
#define MIN 60000LL
#define DAY 86400000LL

static at_arena_t g_arena;
static at_profile_cfg_t g_cfg;

static int setup(void **state)
{
    (void)state;
    at_arena_init(&g_arena, 0);
    at_profile_cfg_defaults(&g_cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    at_arena_deinit(&g_arena);
    return 0;
}

static at_pstr_t S(const char *s)
{
    return (at_pstr_t){s, (uint32_t)strlen(s)};
}

static void ev(at_profile_t *p, const char *type, int64_t ts, const char *item, const char *cat,
               bool late)
{
    at_pevent_t e = {
        .type = S(type), .ts = ts, .item = S(item ? item : ""), .category = S(cat ? cat : "")};
    at_profile_apply(p, &g_cfg, &e, late);
}

/* Encodes, decodes and encodes again: the bytes must not change. */
static void roundtrip(const at_profile_t *p, at_profile_t *out, at_buf_t *b)
{
    at_buf_reset(b);
    at_profile_encode(p, NULL, b);
    int n = at_profile_decode(out, (const uint8_t *)b->data, b->len, NULL, &g_arena);
    assert_int_equal(n, (int)b->len);
    at_buf_t again;
    at_buf_init(&again, 0);
    at_profile_encode(out, NULL, &again);
    assert_int_equal(again.len, b->len);
    assert_memory_equal(again.data, b->data, b->len);
    at_buf_deinit(&again);
}

static void test_counters_and_seen(void **state)
{
    (void)state;
    at_profile_t p;
    at_profile_init(&p, &g_arena);
    ev(&p, "view_item", T0 + 5 * MIN, "1", NULL, false);
    ev(&p, "view_item", T0 + 6 * MIN, "2", NULL, false);
    ev(&p, "purchase", T0 + 7 * MIN, "2", NULL, false);
    ev(&p, "page_view", T0, NULL, NULL, true); /* late, earlier than all */
    assert_int_equal(at_profile_counter(&p, "view_item", 9), 2);
    assert_int_equal(at_profile_counter(&p, "purchase", 8), 1);
    assert_int_equal(at_profile_counter(&p, "search", 6), 0);
    assert_true(p.first_seen == T0);
    assert_true(p.last_seen == T0 + 7 * MIN);
    assert_int_equal(p.events, 4);
    assert_int_equal(p.late, 1);
    at_profile_t q;
    at_buf_t b;
    at_buf_init(&b, 0);
    roundtrip(&p, &q, &b);
    assert_int_equal(at_profile_counter(&q, "view_item", 9), 2);
    at_buf_deinit(&b);
}

/* Past max_counters event types, a further type counts as "other", also
 * when no "other" counter exists yet, and merges keep doing so. */
static void test_counters_other(void **state)
{
    (void)state;
    at_profile_cfg_t cfg = g_cfg;
    cfg.max_counters = 3;
    at_profile_t p;
    at_profile_init(&p, &g_arena);
    static const char *const types[] = {"a", "b", "c", "d", "e", "a", "d"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        at_pevent_t e = {.type = S(types[i]), .ts = T0 + (int64_t)i * MIN};
        at_profile_apply(&p, &cfg, &e, false);
    }
    assert_int_equal(p.ncounters, 4); /* a, b, c and other */
    assert_int_equal(at_profile_counter(&p, "a", 1), 2);
    assert_int_equal(at_profile_counter(&p, "d", 1), 0);
    assert_int_equal(at_profile_counter(&p, "other", 5), 3); /* d, e, d */
    /* a merged profile's types past the cap go to other too */
    at_profile_t q;
    at_profile_init(&q, &g_arena);
    static const char *const more[] = {"f", "g", "h", "i"};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        at_pevent_t e = {.type = S(more[i]), .ts = T0 + (int64_t)i * MIN};
        at_profile_apply(&q, &cfg, &e, false);
    }
    at_profile_merge(&p, &q, &cfg);
    assert_int_equal(p.ncounters, 4);
    assert_int_equal(at_profile_counter(&p, "other", 5), 7); /* + f, g, h and q's other (i) */
    at_profile_t r;
    at_buf_t b;
    at_buf_init(&b, 0);
    roundtrip(&p, &r, &b);
    assert_int_equal(at_profile_counter(&r, "other", 5), 7);
    at_buf_deinit(&b);
}

static void test_affinity(void **state)
{
    (void)state;
    at_profile_t p;
    at_profile_init(&p, &g_arena);
    ev(&p, "view_item", T0, "1", "electronics/phones", false);
    ev(&p, "view_item", T0, "2", "electronics/tv", false);
    ev(&p, "view_item", T0, "3", "books", false);
    assert_true(fabs(at_profile_affinity(&p, "electronics", 11) - 2.0 / 3) < 1e-6);
    assert_true(fabs(at_profile_affinity(&p, "electronics/tv", 14) - 1.0 / 3) < 1e-6);
    assert_true(at_profile_affinity(&p, "electro", 7) == 0); /* prefixes end at '/' */
    /* a week later (one half-life) the old interest counts half: a purchase
     * (weight 5) of books outweighs it */
    ev(&p, "purchase", T0 + 7 * DAY, "4", "books", false);
    double e = 2 * 0.5, bk = 1 * 0.5 + 5;
    assert_true(fabs(at_profile_affinity(&p, "books", 5) - bk / (e + bk)) < 1e-5);
    /* the share does not change with time alone: same value after decoding */
    at_profile_t q;
    at_buf_t b;
    at_buf_init(&b, 0);
    roundtrip(&p, &q, &b);
    assert_true(at_profile_affinity(&q, "books", 5) == at_profile_affinity(&p, "books", 5));
    at_buf_deinit(&b);
}

static void test_recent_items(void **state)
{
    (void)state;
    g_cfg.recent_items = 3;
    at_profile_t p;
    at_profile_init(&p, &g_arena);
    ev(&p, "view_item", T0, "a", NULL, false);
    ev(&p, "view_item", T0 + 1, "b", NULL, false);
    ev(&p, "add_to_cart", T0 + 2, "a", NULL, false);
    ev(&p, "view_item", T0 + 3, "c", NULL, false);
    ev(&p, "view_item", T0 + 4, "d", NULL, false);
    assert_int_equal(p.nrecent, 3);
    assert_memory_equal(p.recent[0].item.s, "d", 1);
    assert_memory_equal(p.recent[1].item.s, "c", 1);
    assert_memory_equal(p.recent[2].item.s, "a", 1);
    assert_int_equal(p.recent[2].kinds, AT_PK_VIEW | AT_PK_CART);
    g_cfg.recent_items = 20;
}

static void test_sessions(void **state)
{
    (void)state;
    at_profile_t p;
    at_profile_init(&p, &g_arena);
    ev(&p, "page_view", T0, NULL, NULL, false);
    ev(&p, "view_item", T0 + 10 * MIN, "1", NULL, false);
    ev(&p, "page_view", T0 + 20 * MIN, NULL, NULL, false);
    assert_true(p.session.start == T0);
    assert_int_equal(p.session.events, 3);
    assert_int_equal(p.session.pages, 2);
    assert_true(at_profile_session_open(&p, &g_cfg, T0 + 49 * MIN));
    assert_false(at_profile_session_open(&p, &g_cfg, T0 + 50 * MIN));
    assert_true(at_profile_session_end(&p, &g_cfg) == T0 + 50 * MIN);
    ev(&p, "page_view", T0 + 50 * MIN, NULL, NULL, false); /* the gap: a new session */
    assert_true(p.session.start == T0 + 50 * MIN);
    assert_int_equal(p.session.events, 1);
    ev(&p, "page_view", T0 + 1, NULL, NULL, true); /* late: not the session's */
    assert_int_equal(p.session.events, 1);
}

static void test_traits(void **state)
{
    (void)state;
    at_profile_t p;
    at_profile_init(&p, &g_arena);
    at_pevent_t e = {
        .type = S("identify"), .ts = T0, .traits = S("{\"plan\":\"free\",\"age\":30}")};
    at_profile_apply(&p, &g_cfg, &e, false);
    e.traits = S("{\"plan\":\"gold\",\"city\":\"Lyon\"}");
    e.ts = T0 + 1;
    at_profile_apply(&p, &g_cfg, &e, false);
    assert_int_equal(p.traits.n, strlen("{\"plan\":\"gold\",\"age\":30,\"city\":\"Lyon\"}"));
    assert_memory_equal(p.traits.s, "{\"plan\":\"gold\",\"age\":30,\"city\":\"Lyon\"}", p.traits.n);
    /* traits of other types are not traits */
    e.type = S("page_view");
    e.traits = S("{\"plan\":\"x\"}");
    at_profile_apply(&p, &g_cfg, &e, false);
    assert_memory_equal(p.traits.s, "{\"plan\":\"gold\"", 14);
}

static void test_merge(void **state)
{
    (void)state;
    at_profile_t u, a;
    at_profile_init(&u, &g_arena);
    at_profile_init(&a, &g_arena);
    ev(&a, "view_item", T0, "x", "books", false);
    ev(&a, "view_item", T0 + 1 * MIN, "y", "books", false);
    ev(&u, "view_item", T0 + 2 * MIN, "z", "garden", false);
    at_pevent_t e = {.type = S("identify"), .ts = T0 + 3 * MIN, .traits = S("{\"plan\":\"gold\"}")};
    at_profile_apply(&u, &g_cfg, &e, false);
    at_profile_merge(&u, &a, &g_cfg);
    assert_int_equal(at_profile_counter(&u, "view_item", 9), 3);
    assert_true(u.first_seen == T0);
    assert_int_equal(u.nrecent, 3);
    assert_memory_equal(u.recent[0].item.s, "z", 1); /* interleaved by time */
    assert_memory_equal(u.recent[2].item.s, "x", 1);
    assert_true(at_profile_affinity(&u, "books", 5) > 0.6);
    assert_true(u.session.start == T0); /* the sessions overlap: one */
    assert_int_equal(u.session.events, 4);
}

static void test_render(void **state)
{
    (void)state;
    at_profile_t p;
    at_profile_init(&p, &g_arena);
    ev(&p, "view_item", T0, "1", "books", false);
    at_buf_t b;
    at_buf_init(&b, 0);
    at_buf_putc(&b, '{');
    at_profile_render(&p, &g_cfg, T0, &b);
    at_buf_putc(&b, '}');
    assert_non_null(strstr(b.data, "\"counters\":{\"view_item\":1}"));
    assert_non_null(strstr(b.data, "\"category\":\"books\",\"affinity\":1"));
    assert_non_null(strstr(b.data, "\"first_seen\":\"2026-04-27T00:00:00.000Z\""));
    assert_non_null(strstr(b.data, "\"active\":true"));
    at_buf_deinit(&b);
}

/* With a dictionary the shared strings are ids: smaller, the same profile
 * back, and refused without the dictionary. */
static void test_dictionary(void **state)
{
    (void)state;
    at_profile_t p;
    at_profile_init(&p, &g_arena);
    for (int i = 0; i < 5; i++) {
        ev(&p, "view_item", T0 + i * 60000, i % 2 ? "1" : "2", "electronics/phones", false);
        ev(&p, "add_to_cart", T0 + i * 60000 + 5, "1", "electronics/phones", false);
    }
    p.tz = S("America/New_York");
    at_sdict_t *d = at_sdict_new(100, 1 << 20);
    at_buf_t plain, ids;
    at_buf_init(&plain, 0);
    at_buf_init(&ids, 0);
    at_profile_encode(&p, NULL, &plain);
    at_profile_encode(&p, d, &ids);
    assert_true(ids.len + 9 + 11 + 18 + 16 - 4 <= plain.len);
    assert_int_equal(at_sdict_count(d), 6); /* 2 types, the category, the zone, 2 items */
    at_profile_t q;
    assert_int_equal(at_profile_decode(&q, (const uint8_t *)ids.data, ids.len, d, &g_arena),
                     (int)ids.len);
    at_buf_t again;
    at_buf_init(&again, 0);
    at_profile_encode(&q, NULL, &again);
    assert_int_equal(again.len, plain.len);
    assert_memory_equal(again.data, plain.data, plain.len);
    assert_int_equal(at_profile_counter(&q, "add_to_cart", 11), 5);
    assert_int_equal(q.tz.n, 16);
    assert_int_equal(at_profile_decode(&q, (const uint8_t *)ids.data, ids.len, NULL, &g_arena),
                     AT_ECORRUPT);
    /* a full dictionary: the strings it lacks are written out */
    at_sdict_t *small = at_sdict_new(1, 1 << 20);
    at_buf_reset(&ids);
    at_profile_encode(&p, small, &ids);
    assert_int_equal(at_profile_decode(&q, (const uint8_t *)ids.data, ids.len, small, &g_arena),
                     (int)ids.len);
    assert_true(ids.len + 9 <= plain.len && ids.len + 11 >= plain.len); /* one string saved */
    at_buf_deinit(&again);
    at_buf_deinit(&plain);
    at_buf_deinit(&ids);
    at_sdict_free(small);
    at_sdict_free(d);
}

/* Item ids fill at most half of the dictionary: the strings most profiles
 * share still find room after them. */
static void test_dictionary_items_half(void **state)
{
    (void)state;
    at_profile_t p;
    at_profile_init(&p, &g_arena);
    static const char *const items[] = {"a", "b", "c", "d", "e", "f"};
    for (int i = 0; i < 6; i++)
        ev(&p, "view_item", T0 + i * MIN, items[i], NULL, false);
    at_sdict_t *d = at_sdict_new(8, 1 << 20);
    at_buf_t ids;
    at_buf_init(&ids, 0);
    at_profile_encode(&p, d, &ids);
    assert_int_equal(at_sdict_count(d), 4); /* view_item, then items up to half of 8 */
    p.tz = S("Europe/Paris");
    at_buf_reset(&ids);
    at_profile_encode(&p, d, &ids);
    assert_int_equal(at_sdict_count(d), 5); /* the zone still went in */
    at_profile_t q;
    assert_int_equal(at_profile_decode(&q, (const uint8_t *)ids.data, ids.len, d, &g_arena),
                     (int)ids.len);
    assert_int_equal(q.nrecent, 6);
    for (int i = 0; i < 6; i++)
        assert_true(q.recent[i].item.n == 1 && q.recent[i].item.s[0] == items[5 - i][0]);
    at_buf_deinit(&ids);
    at_sdict_free(d);
}

/* A profile decoded with its dictionary keeps the ids its strings came
 * from: encoded again with it, the bytes are the ones interning gives; an
 * event on a recent item keeps that item's id, a new item has none. */
static void test_dictionary_ids_kept(void **state)
{
    (void)state;
    at_profile_t p;
    at_profile_init(&p, &g_arena);
    ev(&p, "view_item", T0, "1", "electronics/phones", false);
    ev(&p, "add_to_cart", T0 + MIN, "2", "home/kitchen", false);
    p.tz = S("Europe/Paris");
    at_sdict_t *d = at_sdict_new(100, 1 << 20);
    at_buf_t ids, again;
    at_buf_init(&ids, 0);
    at_buf_init(&again, 0);
    at_profile_encode(&p, d, &ids);
    uint32_t count = at_sdict_count(d);
    at_profile_t q;
    assert_int_equal(at_profile_decode(&q, (const uint8_t *)ids.data, ids.len, d, &g_arena),
                     (int)ids.len);
    assert_true(q.nrecent == 2 && q.recent[0].sym != AT_SDICT_NONE &&
                q.recent[1].sym != AT_SDICT_NONE);
    assert_true(q.counters[0].sym != AT_SDICT_NONE && q.aff[0].sym != AT_SDICT_NONE &&
                q.tz_sym != AT_SDICT_NONE);
    at_profile_encode(&q, d, &again);
    assert_int_equal(again.len, ids.len);
    assert_memory_equal(again.data, ids.data, ids.len);
    uint32_t sym1 = q.recent[1].sym; /* item "1" */
    ev(&q, "view_item", T0 + 2 * MIN, "1", "electronics/phones", false);
    ev(&q, "view_item", T0 + 3 * MIN, "3", "electronics/phones", false);
    assert_true(q.nrecent == 3 && q.recent[0].sym == AT_SDICT_NONE && q.recent[1].sym == sym1);
    /* and its encoding is the one of the same profile never decoded */
    ev(&p, "view_item", T0 + 2 * MIN, "1", "electronics/phones", false);
    ev(&p, "view_item", T0 + 3 * MIN, "3", "electronics/phones", false);
    at_buf_reset(&ids);
    at_buf_reset(&again);
    at_profile_encode(&p, d, &ids);
    at_profile_encode(&q, d, &again);
    assert_int_equal(again.len, ids.len);
    assert_memory_equal(again.data, ids.data, ids.len);
    assert_int_equal(at_sdict_count(d), count + 1); /* item "3" */
    at_buf_deinit(&ids);
    at_buf_deinit(&again);
    at_sdict_free(d);
}

/* Recent items' kinds and times: a view alone, other kinds, and a time
 * after last_seen (which no profile holds) all come back. */
static void test_recent_kinds_encoding(void **state)
{
    (void)state;
    at_profile_t p, q;
    at_profile_init(&p, &g_arena);
    ev(&p, "view_item", T0, "a", NULL, false);
    ev(&p, "add_to_cart", T0 + 5, "b", NULL, false);
    ev(&p, "view_item", T0 + 7 * DAY, "c", NULL, false);
    at_buf_t b;
    at_buf_init(&b, 0);
    roundtrip(&p, &q, &b);
    assert_int_equal(q.nrecent, 3);
    assert_int_equal(q.recent[1].kinds, AT_PK_CART);
    assert_int_equal(q.recent[2].ts, T0);
    p.recent[0].ts = p.last_seen + 1000; /* made up */
    p.recent[1].kinds = AT_PK_VIEW | AT_PK_PURCHASE | AT_PK_OTHER;
    roundtrip(&p, &q, &b);
    assert_int_equal(q.recent[0].ts, p.last_seen + 1000);
    assert_int_equal(q.recent[1].kinds, AT_PK_VIEW | AT_PK_PURCHASE | AT_PK_OTHER);
    assert_int_equal(q.recent[2].ts, T0);
    at_buf_deinit(&b);
}

/* Format 2, as the release before wrote it, still loads. */
static void test_decode_format2(void **state)
{
    (void)state;
    uint8_t v2[64];
    size_t n = 0;
    at_buf_t b;
    at_buf_init(&b, 0);
    AT_ASSERT(at_buf_putc(&b, 2) == 0);
    at_enc_varint(&b, 1);                   /* has events */
    at_enc_zigzag(&b, T0);                  /* first_seen */
    at_enc_varint(&b, (uint64_t)(2 * MIN)); /* last_seen - first_seen */
    at_enc_varint(&b, 3);                   /* events */
    at_enc_varint(&b, 1);                   /* late */
    at_enc_varint(&b, 1);                   /* counters */
    at_enc_varint(&b, 9 * 2);
    AT_ASSERT(at_buf_append(&b, "view_item", 9) == 0);
    at_enc_varint(&b, 3);
    at_enc_zigzag(&b, 2 * MIN); /* aff_ref - first_seen */
    at_enc_varint(&b, 1);       /* categories */
    at_enc_varint(&b, 5 * 2);
    AT_ASSERT(at_buf_append(&b, "books", 5) == 0);
    at_enc_f32(&b, 2.5f);
    at_enc_varint(&b, 1); /* recent items */
    at_enc_str(&b, "42", 2);
    at_enc_zigzag(&b, MIN); /* last_seen - ts */
    at_enc_varint(&b, AT_PK_VIEW | AT_PK_CART);
    at_enc_varint(&b, 1);             /* a session */
    at_enc_zigzag(&b, MIN);           /* start - first_seen */
    at_enc_varint(&b, (uint64_t)MIN); /* last - start */
    at_enc_varint(&b, 2);
    at_enc_varint(&b, 0);
    at_enc_str(&b, "", 0); /* traits */
    at_enc_varint(&b, 0);  /* tz */
    n = b.len;
    memcpy(v2, b.data, n);
    at_profile_t p;
    assert_int_equal(at_profile_decode(&p, v2, n, NULL, &g_arena), (int)n);
    assert_int_equal(p.first_seen, T0);
    assert_int_equal(p.last_seen, T0 + 2 * MIN);
    assert_int_equal(p.events, 3);
    assert_int_equal(p.late, 1);
    assert_int_equal(at_profile_counter(&p, "view_item", 9), 3);
    assert_int_equal(p.aff_ref, T0 + 2 * MIN);
    assert_true(p.naff == 1 && p.aff[0].score == 2.5f);
    assert_true(p.nrecent == 1 && p.recent[0].item.n == 2 && p.recent[0].ts == T0 + MIN);
    assert_int_equal(p.recent[0].kinds, AT_PK_VIEW | AT_PK_CART);
    assert_int_equal(p.session.start, T0 + MIN);
    assert_int_equal(p.session.last, T0 + 2 * MIN);
    assert_int_equal(p.session.events, 2);
    /* written again, it is format 3 and the same profile */
    at_profile_t q;
    roundtrip(&p, &q, &b);
    assert_int_equal(((const uint8_t *)b.data)[0], AT_PROFILE_FORMAT);
    assert_int_equal(q.session.start, T0 + MIN);
    assert_int_equal(q.aff_ref, T0 + 2 * MIN);
    at_buf_deinit(&b);
}

static void test_decode_garbage(void **state)
{
    (void)state;
    at_profile_t p;
    uint8_t bad[] = {AT_PROFILE_FORMAT, 1, 0xff, 0xff, 0xff};
    assert_int_equal(at_profile_decode(&p, bad, sizeof bad, NULL, &g_arena), AT_ECORRUPT);
    bad[0] = 2;
    assert_int_equal(at_profile_decode(&p, bad, sizeof bad, NULL, &g_arena), AT_ECORRUPT);
    uint8_t ver[] = {9, 0};
    assert_int_equal(at_profile_decode(&p, ver, sizeof ver, NULL, &g_arena), AT_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counters_and_seen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_other, setup, teardown),
        cmocka_unit_test_setup_teardown(test_affinity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recent_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dictionary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dictionary_items_half, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dictionary_ids_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recent_kinds_encoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_format2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
