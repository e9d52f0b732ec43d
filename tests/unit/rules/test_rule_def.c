/* test_rule_def.c - segment and trigger definitions: what compiles, every
 * error with its field and the expression's line and column, which rules
 * are final at once, versions and candidates in a rule set, dumps that
 * rebuild the same set, and the stable share of a rollout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "rules_def.h"

#include <stdio.h>
#include <string.h>

static int put(at_ruleset_t **rs, int kind, const char *def, uint32_t id, at_error_t *e)
{
    at_ruleset_t *next = NULL;
    memset(e, 0, sizeof *e);
    int rc = at_ruleset_change(*rs, AT_CHG_PUT, kind, NULL, 0, def, strlen(def), id, id, &next, e);
    if (rc == 0) {
        at_ruleset_unref(*rs);
        *rs = next;
    }
    return rc;
}

static void expect_error(int kind, const char *def, int rc, const char *field, const char *msg)
{
    at_ruleset_t *rs = at_ruleset_new();
    at_error_t e;
    int got = put(&rs, kind, def, 1, &e);
    if (got != rc || strcmp(e.field, field) != 0 || !strstr(e.message, msg))
        fail_msg("%s\n  got rc %d field '%s' message '%s'\n  want rc %d field '%s' message ~'%s'",
                 def, got, e.field, e.message, rc, field, msg);
    at_ruleset_unref(rs);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error(AT_RULE_SEGMENT, "{\"name\":\"x\",\"having\":\"count > 3\"}", AT_EINVALID,
                 "window", "needs a window");
    expect_error(AT_RULE_SEGMENT, "{\"name\":\"x\",\"window\":\"10m\",\"having\":\"count >\"}",
                 AT_EPARSE, "having", "having: 1:");
    expect_error(
        AT_RULE_SEGMENT,
        "{\"name\":\"x\",\"filter\":\"type === 1\",\"window\":\"1m\",\"having\":\"count > 1\"}",
        AT_EPARSE, "filter", "filter: 1:");
    expect_error(AT_RULE_SEGMENT,
                 "{\"name\":\"x\",\"window\":\"ten minutes\",\"having\":\"count > 1\"}",
                 AT_EINVALID, "window", "not a duration");
    expect_error(AT_RULE_SEGMENT,
                 "{\"name\":\"x\",\"window\":\"tumbling 7h\",\"having\":\"count > 1\"}",
                 AT_EINVALID, "window", "divide a day");
    expect_error(AT_RULE_SEGMENT, "{\"name\":\"x\",\"havin\":\"count > 1\"}", AT_EINVALID, "havin",
                 "unknown field 'havin'");
    expect_error(AT_RULE_SEGMENT, "{\"name\":\"bad name!\",\"when\":\"true\"}", AT_EINVALID, "name",
                 "a name is");
    expect_error(AT_RULE_SEGMENT, "{\"name\":\"x\",\"when\":\"in_segment(\\\"nope\\\")\"}",
                 AT_EINVALID, "when", "when: 1:");
    expect_error(AT_RULE_SEGMENT, "{\"name\":\"x\",\"when\":\"true\",\"rollout\":\"150%\"}",
                 AT_EINVALID, "rollout", "percentage");
    expect_error(AT_RULE_SEGMENT, "{\"name\":\"x\",\"when\":\"true\",\"mode\":\"loud\"}",
                 AT_EINVALID, "mode", "active");
    expect_error(AT_RULE_SEGMENT, "{\"name\":\"x\"}", AT_EINVALID, "having", "needs having");
    expect_error(AT_RULE_TRIGGER, "{\"name\":\"t\",\"unless\":\"true\"}", AT_EINVALID, "on",
                 "needs on");
    expect_error(AT_RULE_TRIGGER, "{\"name\":\"t\",\"on\":\"true\",\"unless\":\"true\"}",
                 AT_EINVALID, "within", "unless needs within");
    expect_error(AT_RULE_TRIGGER, "{\"name\":\"t\",\"on\":\"true\",\"cooldown\":\"-1s\"}",
                 AT_EINVALID, "cooldown", "not a duration");
    expect_error(AT_RULE_SEGMENT, "[1,2]", AT_EINVALID, "", "JSON object");
    expect_error(AT_RULE_SEGMENT, "{\"name\":", AT_EPARSE, "", "");
}

static void test_final_at_once(void **state)
{
    (void)state;
    static const struct {
        const char *def;
        bool early;
    } cases[] = {
        {"{\"name\":\"a\",\"window\":\"10m\",\"having\":\"count > 3\"}", true},
        {"{\"name\":\"a\",\"window\":\"10m\",\"having\":\"count >= 3\"}", true},
        {"{\"name\":\"a\",\"window\":\"10m\",\"having\":\"count < 3\"}", false},
        {"{\"name\":\"a\",\"window\":\"10m\",\"having\":\"distinct(item_id) >= 5\"}", true},
        {"{\"name\":\"a\",\"window\":\"10m\",\"having\":\"max(properties.price) > 5\"}", true},
        {"{\"name\":\"a\",\"window\":\"10m\",\"having\":\"min(properties.price) > 5\"}", false},
        {"{\"name\":\"a\",\"window\":\"10m\",\"having\":\"sum(properties.price) > 5\"}", false},
        {"{\"name\":\"a\",\"window\":\"10m\",\"having\":\"avg(properties.price) > 5\"}", false},
        {"{\"name\":\"a\",\"filter\":\"profile.counters.purchase > 0\",\"window\":\"10m\","
         "\"having\":\"count > 3\"}",
         false},
        {"{\"name\":\"a\",\"when\":\"profile.counters.purchase > 0\"}", false},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(cases); i++) {
        at_ruleset_t *rs = at_ruleset_new();
        at_error_t e;
        if (put(&rs, AT_RULE_SEGMENT, cases[i].def, 1, &e) != 0)
            fail_msg("%s: %s", cases[i].def, e.message);
        assert_int_equal(rs->rules[0]->early, cases[i].early);
        at_ruleset_unref(rs);
    }
}

static void test_versions_and_dump(void **state)
{
    (void)state;
    at_ruleset_t *rs = at_ruleset_new();
    at_error_t e;
    assert_int_equal(put(&rs, AT_RULE_SEGMENT,
                         "{\"name\":\"v\",\"window\":\"1h\",\"having\":\"count > 1\"}", 1, &e),
                     0);
    assert_int_equal(
        put(&rs, AT_RULE_SEGMENT,
            "{\"name\":\"v\",\"mode\":\"shadow\",\"window\":\"1h\",\"having\":\"count > 2\"}", 2,
            &e),
        0);
    assert_int_equal(rs->n, 2); /* the active one and a candidate */
    assert_int_equal(
        put(&rs, AT_RULE_SEGMENT,
            "{\"name\":\"v\",\"rollout\":\"10%\",\"window\":\"1h\",\"having\":\"count > 3\"}", 3,
            &e),
        0);
    assert_int_equal(rs->n, 2); /* the candidate replaced */
    assert_int_equal(at_ruleset_find(rs, AT_RULE_SEGMENT, "v", 1)->id, 3);
    /* a rollout takes a stable share of users from the active version */
    size_t cand = 0;
    char key[32];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(key, sizeof key, "u:%d", i);
        bool a = at_rule_acts_for(rs, at_ruleset_by_id(rs, 1), key, (size_t)n);
        bool c = at_rule_acts_for(rs, at_ruleset_by_id(rs, 3), key, (size_t)n);
        assert_true(a != c);
        cand += c;
    }
    assert_true(cand > 800 && cand < 1200);
    /* a dump rebuilds the same set */
    at_buf_t b, b2;
    at_buf_init(&b, 0);
    at_buf_init(&b2, 0);
    at_ruleset_dump(rs, &b);
    at_ruleset_t *back = NULL;
    assert_int_equal(at_ruleset_load(b.data, b.len, &back, &e), 0);
    at_ruleset_dump(back, &b2);
    assert_string_equal(b.data, b2.data);
    /* an active full version replaces both */
    assert_int_equal(put(&rs, AT_RULE_SEGMENT,
                         "{\"name\":\"v\",\"window\":\"1h\",\"having\":\"count > 4\"}", 4, &e),
                     0);
    assert_int_equal(rs->n, 1);
    at_buf_deinit(&b);
    at_buf_deinit(&b2);
    at_ruleset_unref(back);
    at_ruleset_unref(rs);
}

static void test_dependencies(void **state)
{
    (void)state;
    at_ruleset_t *rs = at_ruleset_new();
    at_error_t e;
    assert_int_equal(
        put(&rs, AT_RULE_SEGMENT, "{\"name\":\"a\",\"when\":\"profile.counters.x > 0\"}", 1, &e),
        0);
    assert_int_equal(
        put(&rs, AT_RULE_SEGMENT, "{\"name\":\"b\",\"when\":\"in_segment(\\\"a\\\")\"}", 2, &e), 0);
    /* a now depending on b would be a cycle */
    assert_int_equal(
        put(&rs, AT_RULE_SEGMENT, "{\"name\":\"a\",\"when\":\"in_segment(\\\"b\\\")\"}", 3, &e),
        AT_ECONFLICT);
    /* a segment in use cannot be deleted */
    at_ruleset_t *next = NULL;
    assert_int_equal(
        at_ruleset_change(rs, AT_CHG_DELETE, AT_RULE_SEGMENT, "a", 1, NULL, 0, 0, 0, &next, &e),
        AT_ECONFLICT);
    assert_non_null(strstr(e.message, "used by"));
    assert_int_equal(
        at_ruleset_change(rs, AT_CHG_DELETE, AT_RULE_SEGMENT, "zz", 2, NULL, 0, 0, 0, &next, &e),
        AT_ENOTFOUND);
    at_ruleset_unref(rs);
}

static int put_version(at_ruleset_t **rs, const char *def, uint32_t id, uint32_t version)
{
    at_ruleset_t *next = NULL;
    at_error_t e;
    int rc = at_ruleset_change(*rs, AT_CHG_PUT, AT_RULE_SEGMENT, NULL, 0, def, strlen(def), id,
                               version, &next, &e);
    if (rc == 0) {
        at_ruleset_unref(*rs);
        *rs = next;
    }
    return rc;
}

static void del(at_ruleset_t **rs, const char *name)
{
    at_ruleset_t *next = NULL;
    at_error_t e;
    assert_int_equal(at_ruleset_change(*rs, AT_CHG_DELETE, AT_RULE_SEGMENT, name, strlen(name),
                                       NULL, 0, 0, 0, &next, &e),
                     0);
    at_ruleset_unref(*rs);
    *rs = next;
}

/* A dump and a load back again (what rules.json, control records and
 * checkpoints do) keep the next id and the last version of deleted names:
 * ids are never given out twice, versions of a name never restart. */
static at_ruleset_t *reload(at_ruleset_t *rs)
{
    at_buf_t b, b2;
    at_buf_init(&b, 0);
    at_buf_init(&b2, 0);
    at_ruleset_dump(rs, &b);
    at_ruleset_t *back = NULL;
    at_error_t e;
    if (at_ruleset_load(b.data, b.len, &back, &e) != 0)
        fail_msg("%s: %s", b.data, e.message);
    at_ruleset_dump(back, &b2);
    assert_string_equal(b.data, b2.data);
    at_buf_deinit(&b);
    at_buf_deinit(&b2);
    at_ruleset_unref(rs);
    return back;
}

static void test_ids_and_versions_kept(void **state)
{
    (void)state;
    const char *x = "{\"name\":\"x\",\"when\":\"profile.counters.a > 0\"}";
    const char *y = "{\"name\":\"y\",\"when\":\"profile.counters.a > 1\"}";
    at_ruleset_t *rs = at_ruleset_new();
    assert_int_equal(at_ruleset_next_version(rs, AT_RULE_SEGMENT, "x", 1), 1);
    assert_int_equal(put_version(&rs, x, 1, 1), 0);
    assert_int_equal(put_version(&rs, y, 2, 1), 0);
    assert_int_equal(put_version(&rs, y, 3, 2), 0);
    assert_int_equal(at_ruleset_next_version(rs, AT_RULE_SEGMENT, "y", 1), 3);
    /* the rule with the highest id goes: its id is not given out again */
    del(&rs, "y");
    assert_int_equal(rs->next_id, 4);
    assert_int_equal(at_ruleset_next_version(rs, AT_RULE_SEGMENT, "y", 1), 3);
    assert_int_equal(at_ruleset_next_version(rs, AT_RULE_TRIGGER, "y", 1), 1);
    rs = reload(rs);
    assert_int_equal(rs->next_id, 4);
    assert_int_equal(at_ruleset_next_version(rs, AT_RULE_SEGMENT, "y", 1), 3);
    assert_int_equal(at_ruleset_next_version(rs, AT_RULE_SEGMENT, "x", 1), 2);
    /* put again: version 3; the name is in force again */
    assert_int_equal(put_version(&rs, y, rs->next_id, 3), 0);
    assert_int_equal(at_ruleset_next_version(rs, AT_RULE_SEGMENT, "y", 1), 4);
    /* an empty set still remembers */
    del(&rs, "x");
    del(&rs, "y");
    assert_int_equal(rs->n, 0);
    rs = reload(rs);
    assert_int_equal(rs->next_id, 5);
    assert_int_equal(at_ruleset_next_version(rs, AT_RULE_SEGMENT, "x", 1), 2);
    assert_int_equal(at_ruleset_next_version(rs, AT_RULE_SEGMENT, "y", 1), 4);
    /* a dump of a set without deletions is what it always was: the puts */
    at_ruleset_t *plain = at_ruleset_new();
    assert_int_equal(put_version(&plain, x, 1, 1), 0);
    at_buf_t b;
    at_buf_init(&b, 0);
    at_ruleset_dump(plain, &b);
    assert_null(strstr(b.data, "\"ids\""));
    at_buf_deinit(&b);
    at_ruleset_unref(plain);
    at_ruleset_unref(rs);
}

/* The rules' state encoding: hashes (distinct) as dictionary ids, inline
 * without a dictionary, the same state back either way; and the layout
 * of the release before (ng as a varint of its own) still reads. */
static void test_rstate_encoding(void **state)
{
    (void)state;
    at_arena_t a;
    at_arena_init(&a, 0);
    const int64_t T = 1777248000000LL;
    at_rentry_t hashes[3] = {{T, INT64_MAX / 3}, {T + 5, -(INT64_MAX / 5)}, {T + 9, INT64_MAX / 3}};
    at_rentry_t small[2] = {{T + 1, 1999}, {T + 2, -7}};
    at_rgroup_t g[2] = {{.key = {"", 0},
                         .member = true,
                         .since = T + 9,
                         .early = AT_RULE_NONE,
                         .bucket = AT_RULE_NONE,
                         .n = 3,
                         .cap = 3,
                         .e = hashes},
                        {.key = {"books", 5},
                         .early = AT_RULE_NONE,
                         .bucket = AT_RULE_NONE,
                         .n = 2,
                         .cap = 2,
                         .e = small}};
    at_rrule_t r[2] = {{.id = 3,
                        .ng = 1,
                        .g = &g[0],
                        .armed_at = AT_RULE_NONE,
                        .deadline = AT_RULE_NONE,
                        .last_fired = AT_RULE_NONE},
                       {.id = 7,
                        .ng = 1,
                        .g = &g[1],
                        .armed_at = AT_RULE_NONE,
                        .deadline = AT_RULE_NONE,
                        .last_fired = T}};
    at_rstate_t s;
    at_rstate_init(&s, &a);
    s.out_seq = 4;
    s.nr = 2;
    s.r = r;
    at_sdict_t *d = at_sdict_new(100, 1 << 20);
    at_buf_t plain, ids, again;
    at_buf_init(&plain, 0);
    at_buf_init(&ids, 0);
    at_buf_init(&again, 0);
    at_rstate_encode(&s, NULL, &plain);
    at_rstate_encode(&s, d, &ids);
    assert_int_equal(at_sdict_count(d), 2); /* two distinct hashes */
    assert_true(ids.len + 2 * 8 <= plain.len);
    at_rstate_t q;
    assert_int_equal(at_rstate_decode(&q, (const uint8_t *)ids.data, ids.len, d, &a), (int)ids.len);
    at_rstate_encode(&q, NULL, &again);
    assert_int_equal(again.len, plain.len);
    assert_memory_equal(again.data, plain.data, plain.len);
    assert_int_equal(q.r[0].g[0].e[1].v, -(INT64_MAX / 5));
    assert_int_equal(q.r[1].g[0].e[0].v, 1999);
    assert_int_equal(at_rstate_decode(&q, (const uint8_t *)ids.data, ids.len, NULL, &a),
                     AT_ECORRUPT);
    /* the layout before: rule flags without 16, then ng as a varint */
    at_buf_reset(&plain);
    at_enc_varint(&plain, 1); /* out_seq */
    at_enc_varint(&plain, 0); /* degraded */
    at_enc_zigzag(&plain, T);
    at_enc_varint(&plain, 1); /* nr */
    at_enc_varint(&plain, 9); /* id */
    at_enc_varint(&plain, 0); /* flags */
    at_enc_varint(&plain, 1); /* ng */
    at_enc_str(&plain, "x", 1);
    at_enc_varint(&plain, 32); /* values all zero */
    at_enc_varint(&plain, 2);
    at_enc_zigzag(&plain, -10);
    at_enc_zigzag(&plain, 10);
    at_enc_varint(&plain, 0); /* nfired */
    assert_int_equal(at_rstate_decode(&q, (const uint8_t *)plain.data, plain.len, NULL, &a),
                     (int)plain.len);
    assert_true(q.nr == 1 && q.r[0].id == 9 && q.r[0].ng == 1 && q.r[0].g[0].n == 2);
    assert_int_equal(q.r[0].g[0].e[1].ts, T);
    at_buf_deinit(&plain);
    at_buf_deinit(&ids);
    at_buf_deinit(&again);
    at_sdict_free(d);
    at_arena_deinit(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_final_at_once),
        cmocka_unit_test(test_versions_and_dump),
        cmocka_unit_test(test_dependencies),
        cmocka_unit_test(test_ids_and_versions_kept),
        cmocka_unit_test(test_rstate_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
