/* test_reorder.c - the reorder buffer gives items back in (ts, id, seq)
 * order, also after removals from the middle; the compact encoding round
 * trips; watermarks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "at_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct item {
    at_pend_t h;
    char id[8];
    bool removed;
} item_t;

static void test_order(void **state)
{
    (void)state;
    static item_t v[2000];
    at_reorder_t r;
    at_reorder_init(&r);
    srand(7);
    for (int i = 0; i < 2000; i++) {
        v[i].h.ts = rand() % 100;
        snprintf(v[i].id, sizeof v[i].id, "%c", 'a' + rand() % 5);
        v[i].h.id = v[i].id;
        v[i].h.id_len = 1;
        v[i].h.seq = (uint64_t)i;
        at_reorder_push(&r, &v[i].h);
    }
    for (int i = 0; i < 2000; i += 3) {
        at_reorder_remove(&r, &v[i].h);
        v[i].removed = true;
    }
    const at_pend_t *prev = NULL;
    size_t n = 0;
    at_pend_t *p;
    while ((p = at_reorder_pop(&r))) {
        assert_false(((item_t *)p)->removed);
        if (prev)
            assert_true(at_pend_before(prev, p));
        prev = p;
        n++;
    }
    assert_int_equal(n, 2000 - 667);
    at_reorder_deinit(&r);
}

/* Mostly in order, as events arrive: the run takes the in-order ones, the
 * heap the others; removals anywhere, pushes between pops, iteration sees
 * every item once; the order out is the same as a heap alone gives. */
static void test_mostly_in_order(void **state)
{
    (void)state;
    enum { N = 20000 };
    static item_t v[N];
    static bool seen[N];
    at_reorder_t r;
    at_reorder_init(&r);
    srand(11);
    size_t pushed = 0, popped = 0, removed = 0;
    int64_t last_out = INT64_MIN;
    for (int i = 0; i < N; i++) {
        /* time goes up; one in 8 arrives up to 50 behind */
        v[i].h.ts = i - (rand() % 8 == 0 ? rand() % 50 : 0);
        snprintf(v[i].id, sizeof v[i].id, "%c", 'a' + rand() % 3);
        v[i].h.id = v[i].id;
        v[i].h.id_len = 1;
        v[i].h.seq = (uint64_t)i;
        at_reorder_push(&r, &v[i].h);
        pushed++;
        if (i % 97 == 5 && i > 200) { /* take out something pending */
            int k = i - rand() % 150;
            if (!v[k].removed && v[k].h.seq != UINT64_MAX) {
                at_reorder_remove(&r, &v[k].h);
                v[k].removed = true;
                removed++;
            }
        }
        if (i % 1000 == 999) { /* every item is met once by the iteration */
            memset(seen, 0, sizeof seen);
            size_t pos = 0, cnt = 0;
            at_pend_t *p;
            while ((p = at_reorder_next(&r, &pos))) {
                size_t k = (size_t)p->seq;
                assert_false(seen[k]);
                assert_false(v[k].removed);
                seen[k] = true;
                cnt++;
            }
            assert_int_equal(cnt, r.n);
        }
        /* the watermark trails by 100: pop what is before it */
        at_pend_t *f;
        while ((f = at_reorder_first(&r)) && f->ts <= i - 100) {
            assert_ptr_equal(at_reorder_pop(&r), f);
            assert_true(f->ts >= last_out);
            last_out = f->ts;
            ((item_t *)f)->removed = true;
            popped++;
        }
    }
    const at_pend_t *prev = NULL;
    at_pend_t *p;
    while ((p = at_reorder_pop(&r))) {
        if (prev)
            assert_true(at_pend_before(prev, p));
        assert_true(p->ts >= last_out);
        prev = p;
        popped++;
    }
    assert_int_equal(popped + removed, pushed);
    assert_int_equal(r.n, 0);
    at_reorder_deinit(&r);
}

static void test_encoding(void **state)
{
    (void)state;
    at_buf_t b;
    at_buf_init(&b, 0);
    int64_t vals[] = {0, 1, -1, 63, -64, 1LL << 40, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < AT_ARRAY_LEN(vals); i++)
        at_enc_zigzag(&b, vals[i]);
    at_enc_varint(&b, UINT64_MAX);
    at_enc_str(&b, "hello", 5);
    at_enc_f32(&b, 0.25f);
    at_enc_f64(&b, -1.5e300);
    at_dec_t d = {(const uint8_t *)b.data, (const uint8_t *)b.data + b.len, false};
    for (size_t i = 0; i < AT_ARRAY_LEN(vals); i++)
        assert_true(at_dec_zigzag(&d) == vals[i]);
    assert_true(at_dec_varint(&d) == UINT64_MAX);
    at_pstr_t s = at_dec_str(&d);
    assert_int_equal(s.n, 5);
    assert_memory_equal(s.s, "hello", 5);
    assert_true(at_dec_f32(&d) == 0.25f);
    assert_true(at_dec_f64(&d) == -1.5e300);
    assert_false(d.bad);
    at_dec_varint(&d); /* past the end */
    assert_true(d.bad);
    /* a string longer than what is left is refused */
    at_buf_reset(&b);
    at_enc_varint(&b, 100);
    d = (at_dec_t){(const uint8_t *)b.data, (const uint8_t *)b.data + b.len, false};
    at_dec_str(&d);
    assert_true(d.bad);
    at_buf_deinit(&b);
}

static void test_watermark(void **state)
{
    (void)state;
    at_wm_t w = {AT_WM_NONE, 5000};
    assert_true(at_wm_get(&w) == AT_WM_NONE);
    assert_false(at_wm_late(&w, 0)); /* no watermark: nothing is late */
    assert_true(at_wm_observe(&w, 100000));
    assert_int_equal(at_wm_get(&w), 95000);
    assert_false(at_wm_observe(&w, 90000)); /* never backwards */
    assert_true(at_wm_late(&w, 95000));     /* at the watermark: late */
    assert_false(at_wm_late(&w, 95001));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mostly_in_order),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_watermark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
