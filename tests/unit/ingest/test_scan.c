/* test_scan.c - the single pass (scan.c) against the tree path it stands
 * in for: every body of the generated corpus (corpus_gen.h), under several
 * configurations and seeds, gives the very same result (events, keys,
 * partitions, canonical JSON, rejects, body errors) with the single pass
 * on and off; so do bodies aimed at its own shortcuts (the plain path, the
 * NDJSON line shortcut, the date and digit caches, nested source paths,
 * its limits). Also the timestamp shortcut of at_time_parse_rfc3339
 * against its general path. */
#include "corpus_gen.h"
#include "ingest_int.h"
#include "ingest_test.h"

/* One ingest object with the single pass and one without, same config. */
typedef struct pair {
    at_ingest_t *on, *off;
} pair_t;

static pair_t pair_new(const at_config_t *c)
{
    pair_t p = {it_new(c, NULL), it_new(c, NULL)};
    assert_true(p.on->scan);
    p.off->scan = false;
    return p;
}

static void pair_free(pair_t *p)
{
    at_ingest_free(p->on);
    at_ingest_free(p->off);
}

/* Parses body both ways; fails the test, showing both, when they differ. */
static void same(const pair_t *p, const char *body, size_t n, at_body_kind_t kind)
{
    cg_buf_t b = {(char *)body, n, n}, x = {0}, y = {0};
    cg_run(p->on, &b, kind, &x);
    cg_run(p->off, &b, kind, &y);
    if (x.n != y.n || memcmp(x.p, y.p, x.n) != 0)
        fail_msg("kind %d body:\n%.*s\n--- single pass:\n%s\n--- tree path:\n%s", (int)kind, (int)n,
                 body, x.p, y.p);
    free(x.p);
    free(y.p);
}

static void same_all_kinds(const pair_t *p, const char *body)
{
    for (int k = 0; k < 3; k++)
        same(p, body, strlen(body), (at_body_kind_t)k);
}

static void test_corpus_both_ways(void **state)
{
    (void)state;
    cg_buf_t body = {0};
    for (int k = 0; k < CG_NCONFIGS; k++) {
        at_config_t c;
        cg_config(k, &c);
        pair_t p = pair_new(&c);
        at_config_free(&c);
        for (uint64_t seed = 1; seed <= 3; seed++) {
            cg_rng_t r = {seed * 0x2545f4914f6cdd1dULL + (uint64_t)k};
            for (int i = 0; i < 1500; i++) {
                at_body_kind_t kind = cg_body(&r, &body);
                same(&p, body.p, body.n, kind);
            }
        }
        pair_free(&p);
    }
    free(body.p);
}

/* The events of the load generator (`attune load`), and variants of each
 * part the plain path reads. */
static void test_plain_events(void **state)
{
    (void)state;
    at_config_t c;
    at_config_defaults(&c);
    pair_t p = pair_new(&c);
    at_config_free(&c);
    static const char *const events[] = {
        "{\"event_id\":\"ld-5-1999\",\"type\":\"view_item\",\"user_id\":\"52135\",\"session_id\":"
        "\"s-5-473\",\"timestamp\":\"2026-11-01T00:00:01.999Z\",\"item_id\":\"6\",\"category\":"
        "\"books/fiction\",\"context\":{\"device\":\"mobile\",\"locale\":\"pt-BR\",\"timezone\":"
        "\"America/Sao_Paulo\",\"page\":\"/p/6\",\"referrer\":\"/p/17\"},\"properties\":{"
        "\"price\":38.49,\"currency\":\"USD\",\"list\":\"home\",\"position\":1}}",
        "{\"type\":\"a\",\"anonymous_id\":\"x\"}",
        "{\"type\":\"a\",\"user_id\":12,\"item_id\":-0,\"properties\":{\"product_id\":7}}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"properties\":{\"product_id\":\"p\",\"category\":\"c\"}"
        ","
        "\"category\":\"own\"}",
        "{\"type\":\"track\",\"event\":\"Order Completed\",\"userId\":\"u\",\"messageId\":\"m\","
        "\"originalTimestamp\":\"2026-04-27T14:35:00.123Z\",\"traits\":{\"a\":1},"
        "\"properties\":{\"b\":[1,{\"c\":null}]},\"integrations\":{\"All\":true}}",
        "{\"type\":\"identify\",\"userId\":\"u\",\"traits\":{\"plan\":\"gold\"},\"properties\":"
        "null}",
        "{\"type\":\"identify\",\"userId\":\"u\",\"traits\":null}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":\"2026-04-27T14:35:60.000Z\"}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":\"2026-04-27T23:59:60.999Z\"}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":\"2026-04-27T14:40:00.001Z\"}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":\"2026-04-27T14:35:00.000Z\","
        "\"sentAt\":\"2026-04-27T15:35:00.000Z\"}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":1777300500001,\"sentAt\":1}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"write_key\":\"wk\",\"x\":1,\"y\":{},\"z\":[]}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"context\":{},\"properties\":{},\"extra\":{}}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"s\":\"0123456789abcdef0123456789abcdef0123456789\"}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"a\":true,\"b\":false,\"c\":null,\"d\":-1.5e+3}",
        "{}",
        "{\"type\":\"a\"}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"type\":\"b\"}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"x\":1,\"x\":2}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"context\":{\"k\":1,\"k\":2}}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"context\":5}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":\"2026-02-30T00:00:00.000Z\"}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":\"2026-04-27T14:35:00.000Z\",\"sentAt\":7."
        "5}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"properties\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{"
        "\"f\":"
        "{\"g\":{}}}}}}}}}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"properties\":[]}",
        "{\"type\":\"a\" ,\"user_id\":\"1\"}",
        "{\"type\":\"caf\xc3\xa9\",\"user_id\":\"1\"}",
        "{\"type\":\"a\\u0062\",\"user_id\":\"\\\"1\\\"\",\"event_id\":\"e\\/1\"}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"t\\u0079pe\":\"b\"}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"k\":01}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"k\":tru}",
        "{\"type\":\"a\",\"user_id\":\"1\"",
        "{\"type\":\"a\",\"user_id\":\"1\"}}",
        "{\"type\":\"a\",\"user_id\":\"1\",}",
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(events); i++) {
        same_all_kinds(&p, events[i]);
        char body[4096];
        snprintf(body, sizeof body, "{\"events\":[%s,%s]}\n%s\n%s", events[i], events[0], events[i],
                 events[0]);
        same_all_kinds(&p, body);
        snprintf(body, sizeof body, "%s\n%s\r\n  %s  \n\n", events[0], events[i], events[0]);
        same_all_kinds(&p, body);
    }
    pair_free(&p);
}

/* The NDJSON shortcut reads a line without looking for its end first. */
static void test_ndjson_lines(void **state)
{
    (void)state;
    at_config_t c;
    at_config_defaults(&c);
    c.max_event_bytes = 64;
    c.max_batch_events = 4;
    pair_t p = pair_new(&c);
    at_config_free(&c);
    static const char *const bodies[] = {
        "{\"type\":\"a\",\"user_id\":\"1\"}\n{\"type\":\"b\",\"user_id\":\"2\"}",
        "{\"type\":\"a\",\"user_id\":\"1\"} \t\r\n\r\n{\"type\":\"b\",\"user_id\":\"2\"}\r\n",
        "{\"type\":\"a\",\"user_id\":\"1\"}{\"type\":\"b\",\"user_id\":\"2\"}\n",
        "{\"type\":\"a\",\"user_id\":\"1\"}\r{\"type\":\"b\",\"user_id\":\"2\"}\n",
        "{\"type\":\"a\",\"user_id\":\"1\"} x\n{\"type\":\"b\",\"user_id\":\"2\"}\n",
        "{\"type\":\"a\",\n\"user_id\":\"1\"}\n",
        "{\"type\":\"a\",\"user_id\":\"1\"}\n\n\n  \n",
        "\n\n{\"type\":\"a\",\"user_id\":\"1\"}",
        "  {\"type\":\"a\",\"user_id\":\"1\"}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"p\":\"0123456789012345678\"}\n",  /* 64 bytes */
        "{\"type\":\"a\",\"user_id\":\"1\",\"p\":\"01234567890123456789\"}\n", /* 65 */
        "{\"type\":\"a\",\"user_id\":\"1\",\"p\":\"01234567890123456789\"}   \n",
        "{\"type\":\"a\",\"user_id\":\"1\"}\n{\"type\":\"a\",\"user_id\":\"1\"}\n"
        "{\"type\":\"a\",\"user_id\":\"1\"}\n{\"type\":\"a\",\"user_id\":\"1\"}\n",
        "{\"type\":\"a\",\"user_id\":\"1\"}\n{\"type\":\"a\",\"user_id\":\"1\"}\n"
        "{\"type\":\"a\",\"user_id\":\"1\"}\n{\"type\":\"a\",\"user_id\":\"1\"}\n{\"t\":1}",
        "{\"type\":\"a\",\"user_id\":\"1\"}\n{\"type\":\"a\",\"user_id\":\"1\"}\n"
        "{\"type\":\"a\",\"user_id\":\"1\"}\n{\"type\":\"a\",\"user_id\":\"1\"}\n   \n",
        "[{\"type\":\"a\",\"user_id\":\"1\"}]\n{\"type\":\"a\",\"user_id\":\"1\"}\n",
        "{\"type\":\"a\",\"user_id\":\"1\"\n",
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(bodies); i++)
        same_all_kinds(&p, bodies[i]);
    pair_free(&p);
}

/* Dates and times that change within a batch, for the caches of the last
 * date parsed and of the leading digits of ts. */
static void test_caches(void **state)
{
    (void)state;
    at_config_t c;
    at_config_defaults(&c);
    c.max_future_ms = INT64_MAX / 8;
    pair_t p = pair_new(&c);
    at_config_free(&c);
    static const char *const ts[] = {
        "2026-04-27T14:35:00.000Z", "2026-04-27T23:59:59.999Z",      "2026-04-28T00:00:00.000Z",
        "2026-04-27T14:35:00.000Z", "2024-02-29T12:00:00.000Z",      "2023-02-29T12:00:00.000Z",
        "2026-04-27T14:35:00.001Z", "1970-01-01T00:00:00.000Z",      "1970-01-01T00:01:39.999Z",
        "1970-01-01T00:01:40.000Z", "9999-12-31T23:59:59.999Z",      "2026-04-27T24:00:00.000Z",
        "2026-04-27T14:60:00.000Z", "2026-04-27T14:35:00.00aZ",      "2026-04-27T14:35:00.000z",
        "2026-04-27t14:35:00.000Z", "2026-04-27T14:35:00,000Z",      "2026-04-27T14:35:00.000Y",
        "2026-04-27T1:35:00.0000Z", "2026-04-27T14:35:00.000+00:00",
    };
    at_buf_t body;
    at_buf_init(&body, 0);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < AT_ARRAY_LEN(ts); i++)
            AT_ASSERT(at_buf_printf(&body,
                                    "{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":\"%s\"}\n",
                                    ts[i]) == 0);
        for (long long ms = 0; ms < 3000000000000LL; ms = ms * 7 + 99999)
            AT_ASSERT(at_buf_printf(&body,
                                    "{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":%lld}\n",
                                    ms) == 0);
    }
    same(&p, body.data, body.len, AT_BODY_NDJSON);
    at_buf_deinit(&body);
    pair_free(&p);
}

/* Past the single pass's own limits (keys of open objects, members under
 * "extra", nesting at the configured limit, sizes at the event limit). */
static void test_limits(void **state)
{
    (void)state;
    at_config_t c;
    at_config_defaults(&c);
    c.max_event_bytes = 20000;
    c.max_depth = 6;
    pair_t p = pair_new(&c);
    at_config_free(&c);
    at_buf_t b;
    at_buf_init(&b, 0);
    for (int n = 60; n <= 300; n += 60) {
        at_buf_reset(&b);
        AT_ASSERT(at_buf_puts(&b, "{\"type\":\"a\",\"user_id\":\"1\",\"properties\":{") == 0);
        for (int i = 0; i < n; i++)
            AT_ASSERT(at_buf_printf(&b, "%s\"k%d\":{\"x\":%d}", i ? "," : "", i, i) == 0);
        AT_ASSERT(at_buf_puts(&b, "}") == 0);
        for (int i = 0; i < n; i++)
            AT_ASSERT(at_buf_printf(&b, ",\"e%d\":%d", i, i) == 0);
        AT_ASSERT(at_buf_puts(&b, "}") == 0);
        same_all_kinds(&p, b.data);
        /* a repeated key at the end of a long object */
        b.data[b.len - 1] = '\0';
        AT_ASSERT(at_buf_printf(&b, ",\"e%d\":0}", n / 2) == 0);
        same_all_kinds(&p, b.data);
    }
    for (int d = 4; d <= 8; d++) {
        at_buf_reset(&b);
        AT_ASSERT(at_buf_puts(&b, "{\"type\":\"a\",\"user_id\":\"1\",\"properties\":") == 0);
        for (int i = 0; i < d; i++)
            AT_ASSERT(at_buf_puts(&b, i % 2 ? "[" : "{\"a\":") == 0);
        for (int i = d; i-- > 0;)
            AT_ASSERT(at_buf_puts(&b, i % 2 ? "]" : "}") == 0);
        AT_ASSERT(at_buf_puts(&b, "}") == 0);
        same_all_kinds(&p, b.data);
    }
    for (int pad = 19900; pad <= 20000; pad += 1) {
        at_buf_reset(&b);
        AT_ASSERT(at_buf_puts(&b, "{\"events\":[{\"type\":\"a\",\"user_id\":\"1\",\"p\":\"") == 0);
        for (int i = 0; i < pad - 40; i++)
            AT_ASSERT(at_buf_putc(&b, 'x') == 0);
        AT_ASSERT(at_buf_puts(&b, "\"},{\"type\":\"b\",\"user_id\":\"2\"}]}") == 0);
        if (pad % 10 == 0 || pad > 19950)
            same_all_kinds(&p, b.data);
    }
    at_buf_deinit(&b);
    pair_free(&p);
}

/* Configured sources: nested paths of every depth, sources shared by two
 * fields, the same path twice, and names longer than the field limit. */
static void test_mappings(void **state)
{
    (void)state;
    at_config_t c;
    at_config_defaults(&c);
    c.max_field_length = 8;
    it_map(&c, "context.page.session", "session_id");
    it_map(&c, "context.page", "category");
    it_map(&c, "properties.sku", "item_id");
    it_map(&c, "properties.product_id", "item_id");
    it_map(&c, "uid", "user_id");
    it_map(&c, "uid", "anonymous_id");
    it_map(&c, "a.b.c.d", "event_id");
    it_map(&c, "type", "type");
    pair_t p = pair_new(&c);
    at_config_free(&c);
    static const char *const events[] = {
        "{\"type\":\"a\",\"uid\":\"1\",\"context\":{\"page\":{\"session\":\"s\"}}}",
        "{\"type\":\"a\",\"uid\":\"1\",\"context\":{\"page\":\"p\"}}",
        "{\"type\":\"a\",\"uid\":\"1\",\"context\":{\"page\":[{\"session\":\"s\"}]}}",
        "{\"type\":\"a\",\"uid\":\"1\",\"a\":{\"b\":{\"c\":{\"d\":\"e\"}}}}",
        "{\"type\":\"a\",\"uid\":\"1\",\"a\":{\"b\":{\"c\":{\"d\":7}}}}",
        "{\"type\":\"a\",\"uid\":\"1\",\"a\":{\"b\":{\"c\":{\"d\":\"\"}}},\"event_id\":\"e\"}",
        "{\"type\":\"a\",\"uid\":\"1\",\"properties\":{\"product_id\":\"p\",\"sku\":\"s\"}}",
        "{\"type\":\"a\",\"uid\":\"1\",\"properties\":{\"product_id\":\"p\",\"sku\":null}}",
        "{\"type\":\"a\",\"uid\":\"123456789\"}",
        "{\"type\":\"a\",\"user_id\":\"1\",\"anonymous_id\":\"2\",\"uid\":\"3\"}",
        "{\"type\":\"track\",\"uid\":\"1\",\"event\":\"e\"}",
        "{\"type\":\"track\",\"uid\":\"1\"}",
        "{\"type\":\"a\",\"uid\":\"1\",\"originalTimestamp\":\"2026-04-27T14:35:00.000Z\"}",
        "{\"type\":\"a\",\"uid\":\"1\",\"properties\":{\"s\\u006bu\":\"s\"}}",
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(events); i++)
        same_all_kinds(&p, events[i]);
    pair_free(&p);
}

/* Types with a schema: the single pass checks them on a tree of the
 * properties alone. */
static void test_schemas(void **state)
{
    (void)state;
    at_config_t c;
    at_config_defaults(&c);
    it_schema(&c, "s", "{\"required\":[\"n\"],\"properties\":{\"n\":{\"type\":\"integer\"}}}");
    it_schema(&c, "t\xc3\xa9", "{\"properties\":{\"n\":{\"maximum\":3}}}");
    pair_t p = pair_new(&c);
    at_config_free(&c);
    static const char *const events[] = {
        "{\"type\":\"s\",\"user_id\":\"1\",\"properties\":{\"n\":1}}",
        "{\"type\":\"s\",\"user_id\":\"1\",\"properties\":{\"n\":1.5}}",
        "{\"type\":\"s\",\"user_id\":\"1\"}",
        "{\"type\":\"s\",\"user_id\":\"1\",\"traits\":{\"n\":2}}",
        "{\"type\":\"s\",\"user_id\":\"1\",\"traits\":{\"m\":2}}",
        "{\"type\":\"t\\u00e9\",\"user_id\":\"1\",\"properties\":{\"n\":2}}",
        "{\"type\":\"t\\u00e9\",\"user_id\":\"1\",\"properties\":{\"n\":4}}",
        "{\"type\":\"t\xc3\xa9\",\"user_id\":\"1\",\"properties\":{\"n\":4}}",
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(events); i++)
        same_all_kinds(&p, events[i]);
    pair_free(&p);
}

/* at_time_parse_rfc3339 reads "YYYY-MM-DDTHH:MM:SS[.mmm]Z" by a shortcut;
 * with 't' or 'z' instead, the same text takes the general path. */
static void test_time_shortcut(void **state)
{
    (void)state;
    cg_rng_t r = {7};
    char a[32], b[32];
    for (int i = 0; i < 200000; i++) {
        int n = cg_pct(&r, 80) ? 24 : 20;
        snprintf(a, sizeof a, "%04u-%02u-%02uT%02u:%02u:%02u%s", cg_below(&r, 10000),
                 cg_below(&r, 14), cg_below(&r, 33), cg_below(&r, 26), cg_below(&r, 62),
                 cg_below(&r, 63), n == 24 ? ".000Z" : "Z");
        if (n == 24)
            snprintf(a + 19, sizeof a - 19, ".%03uZ", cg_below(&r, 1000));
        if (cg_pct(&r, 3))
            a[cg_below(&r, (uint32_t)n)] = (char)"0a:-.TZ"[cg_below(&r, 7)];
        memcpy(b, a, sizeof b);
        if (b[10] == 'T')
            b[10] = 't';
        if (b[n - 1] == 'Z')
            b[n - 1] = 'z';
        int64_t x = -1, y = -1;
        int rx = at_time_parse_rfc3339(a, (size_t)n, &x);
        int ry = at_time_parse_rfc3339(b, (size_t)n, &y);
        if (rx != ry || x != y)
            fail_msg("%s: %d %lld, general path %d %lld", a, rx, (long long)x, ry, (long long)y);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_both_ways), cmocka_unit_test(test_plain_events),
        cmocka_unit_test(test_ndjson_lines),     cmocka_unit_test(test_caches),
        cmocka_unit_test(test_limits),           cmocka_unit_test(test_mappings),
        cmocka_unit_test(test_schemas),          cmocka_unit_test(test_time_shortcut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
