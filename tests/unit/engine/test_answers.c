/* test_answers.c - the cache of recent recommendation answers: an answer
 * is served for the same user and request, not after a record of the user
 * was processed, not after reco.cache, and never to another request. */
#include "answers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static at_reco_req_t req_n(size_t n)
{
    at_reco_req_t r;
    memset(&r, 0, sizeof r);
    r.n = n;
    return r;
}

static bool get(at_answers_t *a, uint64_t user, const at_reco_req_t *r, int64_t now, char *out)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    bool hit = at_answers_get(a, 0, user, at_answers_tag(user, r), now, &b);
    if (hit)
        memcpy(out, b.data, b.len), out[b.len] = 0;
    at_buf_deinit(&b);
    return hit;
}

static void test_answers(void **state)
{
    (void)state;
    assert_null(at_answers_new(2, 0, 1000));
    assert_null(at_answers_new(2, 16, 0));
    at_answers_t *a = at_answers_new(2, 16, 1000);
    uint64_t u = at_answers_user("u:1", 3), v = at_answers_user("u:2", 3);
    at_reco_req_t r10 = req_n(10), r5 = req_n(5);
    char out[64];
    assert_false(get(a, u, &r10, 0, out));
    at_answers_put(a, 0, at_answers_tag(u, &r10), at_answers_gen(a, 0, u), 0, "A", 1);
    assert_true(get(a, u, &r10, 999, out));
    assert_string_equal(out, "A");
    assert_false(get(a, u, &r5, 10, out));    /* another request */
    assert_false(get(a, v, &r10, 10, out));   /* another user */
    assert_false(get(a, u, &r10, 1000, out)); /* too old */

    /* a category or an exclusion is part of the request */
    at_reco_req_t rc = r10;
    rc.category = "home";
    rc.category_len = 4;
    assert_int_not_equal(at_answers_tag(u, &rc), at_answers_tag(u, &r10));
    at_pstr_t ex[1] = {{"x", 1}};
    at_reco_req_t re = r10;
    re.exclude = ex;
    re.nexclude = 1;
    assert_int_not_equal(at_answers_tag(u, &re), at_answers_tag(u, &r10));

    /* a record of the user: the old answer is not served, a new one is */
    at_answers_put(a, 0, at_answers_tag(u, &r10), at_answers_gen(a, 0, u), 100, "B", 1);
    assert_true(get(a, u, &r10, 100, out));
    at_answers_touch(a, 0, u);
    assert_false(get(a, u, &r10, 101, out));
    at_answers_put(a, 0, at_answers_tag(u, &r10), at_answers_gen(a, 0, u), 102, "C", 1);
    assert_true(get(a, u, &r10, 103, out));
    assert_string_equal(out, "C");
    /* the same user in another partition's table is another counter */
    at_answers_touch(a, 1, u);
    assert_true(get(a, u, &r10, 104, out));
    /* eight ways per set: of nine answers landing in one set (a table
     * of one set), the one served least recently goes */
    at_answers_t *b = at_answers_new(1, 2, 1000);
    at_reco_req_t q[9];
    for (int i = 0; i < 9; i++)
        q[i] = req_n((size_t)i + 1);
    for (int i = 0; i < 8; i++)
        at_answers_put(b, 0, at_answers_tag(u, &q[i]), at_answers_gen(b, 0, u), i, "0", 1);
    assert_true(get(b, u, &q[0], 8, out)); /* q0 served after the others were built */
    at_answers_put(b, 0, at_answers_tag(u, &q[8]), at_answers_gen(b, 0, u), 9, "8", 1);
    assert_true(get(b, u, &q[0], 10, out));
    assert_false(get(b, u, &q[1], 10, out));
    for (int i = 2; i < 9; i++)
        assert_true(get(b, u, &q[i], 10, out));
    assert_string_equal(out, "8");
    at_answers_free(b);

    uint64_t hits, built;
    at_answers_stats(a, &hits, &built);
    assert_int_equal(hits, 4);
    assert_int_equal(built, 3); /* the answers put */
    /* why they were built: A was the first; B and C replaced answers of
     * the request still within reco.answer_ttl (C after a record of the
     * user); D replaces C after the ttl */
    at_answers_put(a, 0, at_answers_tag(u, &r10), at_answers_gen(a, 0, u), 1102, "D", 1);
    uint64_t causes[AT_ANSWERS_CAUSES];
    at_answers_causes(a, causes);
    assert_int_equal(causes[AT_ANSWERS_ABSENT], 1);
    assert_int_equal(causes[AT_ANSWERS_CHANGED], 2);
    assert_int_equal(causes[AT_ANSWERS_EXPIRED], 1);
    at_answers_causes(NULL, causes);
    assert_int_equal(causes[AT_ANSWERS_ABSENT], 0);
    at_answers_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
