/* test_deadlog.c - dead-letter records: a round trip, a torn tail cut at
 * every length, a flipped byte ending the log there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "at_sinks.h"

typedef struct seen {
    int n;
    uint64_t offs[16];
    char text[16][64];
} seen_t;

static int collect(void *ud, uint64_t off, const char *json, size_t len)
{
    seen_t *s = ud;
    if (s->n < 16) {
        s->offs[s->n] = off;
        (void)snprintf(s->text[s->n], sizeof s->text[0], "%.*s", (int)len, json);
    }
    s->n++;
    return 0;
}

static void build(at_buf_t *b, uint64_t ends[3])
{
    const char *recs[] = {"{\"id\":\"a\"}", "{\"id\":\"bb\",\"reason\":\"max_attempts\"}",
                          "{\"id\":\"ccc\"}"};
    at_buf_init(b, 0);
    for (int i = 0; i < 3; i++) {
        at_sink_dead_encode(b, recs[i], strlen(recs[i]));
        ends[i] = b->len;
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    at_buf_t b;
    uint64_t ends[3];
    build(&b, ends);
    seen_t s = {0};
    assert_int_equal(at_sink_dead_scan(b.data, b.len, 0, collect, &s), b.len);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.text[1], "{\"id\":\"bb\",\"reason\":\"max_attempts\"}");
    assert_int_equal(s.offs[1], ends[0]);
    /* from an offset on */
    seen_t t = {0};
    (void)at_sink_dead_scan(b.data, b.len, ends[0], collect, &t);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.text[0], s.text[1]);
    at_buf_deinit(&b);
}

static void test_torn_tail(void **state)
{
    (void)state;
    at_buf_t b;
    uint64_t ends[3];
    build(&b, ends);
    for (uint64_t cut = 0; cut <= b.len; cut++) {
        seen_t s = {0};
        uint64_t ok = at_sink_dead_scan(b.data, cut, 0, collect, &s);
        int whole = cut >= ends[2] ? 3 : cut >= ends[1] ? 2 : cut >= ends[0] ? 1 : 0;
        assert_int_equal(s.n, whole);
        assert_int_equal(ok, whole ? ends[whole - 1] : 0);
    }
    at_buf_deinit(&b);
}

static void test_corrupt_byte(void **state)
{
    (void)state;
    at_buf_t b;
    uint64_t ends[3];
    build(&b, ends);
    b.data[ends[0] + 10] ^= 1; /* inside the second record's JSON */
    seen_t s = {0};
    assert_int_equal(at_sink_dead_scan(b.data, b.len, 0, collect, &s), ends[0]);
    assert_int_equal(s.n, 1);
    at_buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_torn_tail),
        cmocka_unit_test(test_corrupt_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
