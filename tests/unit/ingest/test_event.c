/* test_event.c - one event at a time: the canonical JSON (golden), every
 * kind of reject with its code and field, field mapping (config and the
 * Segment names), timestamps and clamping, event ids. */
#include "ingest_test.h"

static at_ingest_t *g_in;
static at_batch_t g_b;

static int setup(void **state)
{
    (void)state;
    at_config_t c;
    at_config_defaults(&c);
    c.max_event_bytes = 600;
    c.max_field_length = 40;
    c.max_depth = 4;
    it_map(&c, "customer_id", "user_id");
    it_map(&c, "event_type", "type");
    it_map(&c, "properties.sku", "item_id");
    it_map(&c, "context.page.session", "session_id");
    g_in = it_new(&c, NULL);
    at_config_free(&c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    at_ingest_free(g_in);
    return 0;
}

static int each_teardown(void **state)
{
    (void)state;
    at_batch_deinit(&g_b);
    return 0;
}

/* Parses one event; returns it (fails the test if it was rejected). */
static const at_event_t *accept(const char *body)
{
    at_error_t e;
    at_batch_deinit(&g_b);
    assert_int_equal(it_parse(g_in, body, AT_BODY_JSON, &g_b, &e), 0);
    if (g_b.nevents != 1) {
        it_dump(&g_b);
        fail_msg("expected one accepted event for %s", body);
    }
    return &g_b.events[0];
}

static void reject(const char *body, const char *code, const char *field, const char *msg)
{
    at_error_t e;
    at_batch_deinit(&g_b);
    assert_int_equal(it_parse(g_in, body, AT_BODY_JSON, &g_b, &e), 0);
    if (g_b.nrejects != 1 || g_b.nevents != 0) {
        it_dump(&g_b);
        fail_msg("expected one reject for %s", body);
    }
    const at_reject_t *r = &g_b.rejects[0];
    if (strcmp(r->error.code, code) || strcmp(r->error.field, field) ||
        !strstr(r->error.message, msg))
        fail_msg("%s: got %s [%s] '%s', want %s [%s] '%s'", body, r->error.code, r->error.field,
                 r->error.message, code, field, msg);
    assert_int_equal(r->index, 0);
    assert_int_equal(r->raw_len, strlen(body));
    assert_memory_equal(r->raw, body, r->raw_len);
}

static void test_canonical_golden(void **state)
{
    (void)state;
    const at_event_t *ev = accept(
        "{\"event_id\": \"9f1c\", \"type\": \"add_to_cart\", \"user_id\": \"12345\",\n"
        " \"anonymous_id\": \"a-77\", \"session_id\": \"s-1\", \"item_id\": \"987\",\n"
        " \"category\": \"electronics/phones\", \"timestamp\": \"2026-04-27T14:35:00Z\",\n"
        " \"context\": {\"device\": \"mobile\", \"locale\": \"en-US\"},\n"
        " \"properties\": {\"price\": 19.99, \"quantity\": 1, \"tags\": [\"a\", null, true]}}");
    assert_string_equal(
        ev->json, "{\"event_id\":\"9f1c\",\"type\":\"add_to_cart\",\"user_id\":\"12345\","
                  "\"anonymous_id\":\"a-77\",\"session_id\":\"s-1\",\"item_id\":\"987\","
                  "\"category\":\"electronics/phones\",\"timestamp\":\"2026-04-27T14:35:00.000Z\","
                  "\"ts\":1777300500000,\"received_at\":1777300560000,"
                  "\"context\":{\"device\":\"mobile\",\"locale\":\"en-US\"},"
                  "\"properties\":{\"price\":19.99,\"quantity\":1,\"tags\":[\"a\",null,true]}}");
    assert_int_equal(ev->json_len, strlen(ev->json));
    assert_string_equal(ev->key, "u:12345");
    assert_int_equal(ev->key_len, 7);
    assert_int_equal(ev->partition, at_partition_of("u:12345", 7, IT_PARTS));
    assert_string_equal(ev->event_id, "9f1c");
    assert_false(ev->id_assigned);
    assert_false(ev->clamped);
    assert_string_equal(ev->type, "add_to_cart");
    assert_int_equal(ev->ts_ms, 1777300500000LL);
    assert_int_equal(ev->recv_ms, IT_RECV);
}

static void test_minimal_and_extra(void **state)
{
    (void)state;
    const at_event_t *ev =
        accept("{\"anonymous_id\":\"a-1\",\"type\":\"click\",\"zz\":{\"k\":[1]},\"aa\":2}");
    assert_string_equal(ev->key, "a:a-1");
    assert_true(ev->id_assigned);
    assert_int_equal(ev->event_id_len, AT_ID_LEN);
    char want[512];
    snprintf(want, sizeof want,
             "{\"event_id\":\"%s\",\"type\":\"click\",\"anonymous_id\":\"a-1\","
             "\"timestamp\":\"2026-04-27T14:36:00.000Z\",\"ts\":1777300560000,"
             "\"received_at\":1777300560000,\"extra\":{\"zz\":{\"k\":[1]},\"aa\":2}}",
             ev->event_id);
    assert_string_equal(ev->json, want);
}

static void test_strings_and_numbers(void **state)
{
    (void)state;
    const at_event_t *ev = accept(
        "{\"type\":\"caf\\u00e9\",\"user_id\":\"1\",\"properties\":{\"s\":\"a\\/b\\n\\\"q\\\" "
        "\\ud83d\\ude00 \\u0001\",\"n\":[1.0E+2,-0,12345678901234567890123,1e-7]}}");
    assert_string_equal(ev->type, "caf\xc3\xa9");
    assert_non_null(strstr(ev->json, "\"type\":\"caf\xc3\xa9\""));
    assert_non_null(strstr(ev->json, "\"properties\":{\"s\":\"a/b\\n\\\"q\\\" \xf0\x9f\x98\x80 "
                                     "\\u0001\",\"n\":[1.0E+2,-0,12345678901234567890123,1e-7]}"));
}

static void test_rejects(void **state)
{
    (void)state;
    reject("7", "invalid_event", "", "event must be a JSON object");
    reject("\"x\"", "invalid_event", "", "event must be a JSON object");
    reject("{\"user_id\":\"1\"}", "invalid_event", "type", "missing type");
    reject("{\"type\":\"\",\"user_id\":\"1\"}", "invalid_event", "type", "missing type");
    reject("{\"type\":\"a\"}", "invalid_event", "user_id", "user_id or anonymous_id is required");
    reject("{\"type\":\"a\",\"user_id\":null,\"anonymous_id\":\"\"}", "invalid_event", "user_id",
           "required");
    reject("{\"type\":7,\"user_id\":\"1\"}", "invalid_event", "type", "type must be a string");
    reject("{\"type\":\"a\",\"user_id\":1.5}", "invalid_event", "user_id",
           "user_id must be a string or an integer");
    reject("{\"type\":\"a\",\"user_id\":true}", "invalid_event", "user_id", "must be a string");
    reject("{\"type\":\"a\",\"anonymous_id\":5}", "invalid_event", "anonymous_id",
           "anonymous_id must be a string");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"event_id\":5}", "invalid_event", "event_id",
           "must be a string");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"item_id\":false}", "invalid_event", "item_id",
           "must be a string or an integer");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"category\":[]}", "invalid_event", "category",
           "must be a string");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"session_id\":{}}", "invalid_event", "session_id",
           "must be a string");
    reject("{\"type\":\"a\",\"user_id\":\"a\\nb\"}", "invalid_event", "user_id",
           "control character");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"context\":\"x\"}", "invalid_event", "context",
           "context: must be an object");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"properties\":[1]}", "invalid_event", "properties",
           "properties: must be an object");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"type\":\"b\"}", "invalid_event", "type",
           "type: duplicate field");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"properties\":{\"x\":1,\"y\":2,\"x\":3}}",
           "invalid_event", "properties.x", "properties.x: duplicate key");
}

static void test_limits(void **state)
{
    (void)state;
    reject("{\"type\":\"a\",\"user_id\":\"12345678901234567890123456789012345678901\"}",
           "invalid_event", "user_id", "user_id is 41 bytes; the limit is 40");
    accept("{\"type\":\"a\",\"user_id\":\"1234567890123456789012345678901234567890\"}");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"properties\":{\"items\":[{\"sku\":"
           "\"12345678901234567890123456789012345678901\"}]}}",
           "invalid_event", "properties.items[0].sku",
           "properties.items[0].sku: longer than 40 bytes");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"context\":{"
           "\"k12345678901234567890123456789012345678901\":1}}",
           "invalid_event", "context.k12345678901234567890123456789012345678901",
           "key longer than 40 bytes");
    /* depth: the event is level 1, so properties.a.b is level 4 */
    accept("{\"type\":\"a\",\"user_id\":\"1\",\"properties\":{\"a\":{\"b\":{}}}}");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"properties\":{\"a\":{\"b\":{\"c\":[]}}}}",
           "invalid_event", "properties.a.b.c", "nested deeper than 4 levels");
    char big[800];
    snprintf(big, sizeof big,
             "{\"type\":\"a\",\"user_id\":\"1\",\"properties\":{\"p\":\"%0600d\"}}", 0);
    reject(big, "event_too_large", "", "the limit is 600");
}

static void test_event_too_large_in_batch(void **state)
{
    (void)state;
    char body[2048];
    int n = snprintf(body, sizeof body,
                     "{\"events\":[{\"type\":\"a\",\"user_id\":\"1\"},"
                     "{\"type\":\"b\",\"user_id\":\"2\",\"p\":[");
    for (int i = 0; i < 300; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s1", i ? "," : "");
    snprintf(body + n, sizeof body - (size_t)n, "]},{\"type\":\"c\",\"user_id\":\"3\"}]}");
    at_error_t e;
    at_batch_deinit(&g_b);
    assert_int_equal(it_parse(g_in, body, AT_BODY_JSON, &g_b, &e), 0);
    assert_int_equal(g_b.nevents, 2);
    assert_string_equal(g_b.events[1].type, "c");
    assert_int_equal(g_b.events[1].index, 2);
    assert_int_equal(g_b.nrejects, 1);
    assert_int_equal(g_b.rejects[0].index, 1);
    assert_string_equal(g_b.rejects[0].error.code, "event_too_large");
    assert_true(g_b.rejects[0].raw_len > 600);
    assert_int_equal(g_b.rejects[0].raw[0], '{');
    assert_int_equal(g_b.rejects[0].raw[g_b.rejects[0].raw_len - 1], '}');
}

static void test_mapping_config(void **state)
{
    (void)state;
    const at_event_t *ev =
        accept("{\"event_type\":\"purchase\",\"type\":\"ignored\","
               "\"customer_id\":\"c9\",\"context\":{\"page\":{\"session\":\"s7\"}},"
               "\"properties\":{\"sku\":\"SKU-1\",\"product_id\":\"p2\"}}");
    assert_string_equal(ev->type, "purchase");
    assert_string_equal(ev->key, "u:c9");
    assert_non_null(strstr(ev->json, "\"type\":\"purchase\",\"user_id\":\"c9\","
                                     "\"session_id\":\"s7\",\"item_id\":\"SKU-1\","));
    /* sources at the top level are consumed; nested ones are copied */
    assert_null(strstr(ev->json, "customer_id"));
    assert_null(strstr(ev->json, "event_type"));
    assert_non_null(strstr(ev->json, "\"properties\":{\"sku\":\"SKU-1\",\"product_id\":\"p2\"}"));
    assert_non_null(strstr(ev->json, "\"context\":{\"page\":{\"session\":\"s7\"}}"));

    /* a mapped source with a wrong type is named as sent */
    reject("{\"event_type\":\"a\",\"customer_id\":[1]}", "invalid_event", "customer_id",
           "customer_id must be a string or an integer");
}

static void test_mapping_segment(void **state)
{
    (void)state;
    const at_event_t *ev = accept(
        "{\"type\":\"track\",\"event\":\"Product Added\",\"userId\":\"u1\",\"anonymousId\":\"an1\","
        "\"messageId\":\"m-1\",\"timestamp\":\"2026-04-27T14:35:00.123456Z\","
        "\"properties\":{\"product_id\":\"507f\",\"category\":\"Games\",\"price\":18.99},"
        "\"context\":{\"ip\":\"8.8.8.8\"},\"integrations\":{\"All\":true}}");
    assert_string_equal(ev->type, "Product Added");
    assert_string_equal(ev->event_id, "m-1");
    assert_false(ev->id_assigned);
    assert_int_equal(ev->ts_ms, 1777300500123LL);
    assert_string_equal(
        ev->json, "{\"event_id\":\"m-1\",\"type\":\"Product Added\",\"user_id\":\"u1\","
                  "\"anonymous_id\":\"an1\",\"item_id\":\"507f\",\"category\":\"Games\","
                  "\"timestamp\":\"2026-04-27T14:35:00.123Z\",\"ts\":1777300500123,"
                  "\"received_at\":1777300560000,\"context\":{\"ip\":\"8.8.8.8\"},"
                  "\"properties\":{\"product_id\":\"507f\",\"category\":\"Games\",\"price\":18.99},"
                  "\"extra\":{\"integrations\":{\"All\":true}}}");

    /* identify: traits become the properties */
    ev = accept("{\"type\":\"identify\",\"userId\":\"u1\",\"traits\":{\"plan\":\"gold\"}}");
    assert_non_null(strstr(ev->json, "\"properties\":{\"plan\":\"gold\"}"));
    assert_null(strstr(ev->json, "traits"));

    /* a plain "track" with no event name stays "track" */
    ev = accept("{\"type\":\"track\",\"userId\":\"u1\"}");
    assert_string_equal(ev->type, "track");

    /* canonical names win over Segment's */
    ev = accept("{\"type\":\"a\",\"user_id\":\"x\",\"userId\":\"y\"}");
    assert_string_equal(ev->key, "u:x");
    assert_null(strstr(ev->json, "userId"));

    /* numbers as user and item ids become their decimal text */
    ev = accept("{\"type\":\"a\",\"user_id\":-42,\"properties\":{\"product_id\":987}}");
    assert_string_equal(ev->key, "u:-42");
    assert_non_null(strstr(ev->json, "\"user_id\":\"-42\",\"item_id\":\"987\""));
}

static void test_timestamps(void **state)
{
    (void)state;
    const at_event_t *ev =
        accept("{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":\"2026-04-27T16:35:00.9+02:00\"}");
    assert_int_equal(ev->ts_ms, 1777300500900LL);
    assert_non_null(strstr(ev->json, "\"timestamp\":\"2026-04-27T14:35:00.900Z\""));

    ev = accept("{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":1777300500001}");
    assert_int_equal(ev->ts_ms, 1777300500001LL);
    assert_non_null(
        strstr(ev->json, "\"timestamp\":\"2026-04-27T14:35:00.001Z\",\"ts\":1777300500001,"));

    ev = accept("{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":null}");
    assert_int_equal(ev->ts_ms, IT_RECV);

    reject("{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":\"yesterday\"}", "invalid_event",
           "timestamp", "timestamp must be an RFC 3339 date-time");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":\"2026-04-27T14:35:00\"}",
           "invalid_event", "timestamp", "RFC 3339");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":1.5e12}", "invalid_event", "timestamp",
           "epoch milliseconds");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":-5}", "invalid_event", "timestamp",
           "RFC 3339");
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":true}", "invalid_event", "timestamp",
           "RFC 3339");
}

static void test_clamping(void **state)
{
    (void)state;
    at_error_t e;
    at_batch_deinit(&g_b);
    /* default max_future is 5 minutes: +5 min is kept, +5 min + 1 ms is clamped */
    char body[512];
    snprintf(body, sizeof body,
             "{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":%lld}\n"
             "{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":%lld}\n",
             IT_RECV + 300000, IT_RECV + 300001);
    assert_int_equal(it_parse(g_in, body, AT_BODY_NDJSON, &g_b, &e), 0);
    assert_int_equal(g_b.nevents, 2);
    assert_false(g_b.events[0].clamped);
    assert_int_equal(g_b.events[0].ts_ms, IT_RECV + 300000);
    assert_null(strstr(g_b.events[0].json, "clamped"));
    assert_true(g_b.events[1].clamped);
    assert_int_equal(g_b.events[1].ts_ms, IT_RECV);
    assert_non_null(strstr(g_b.events[1].json, "\"ts\":1777300560000,\"received_at\":"
                                               "1777300560000,\"clamped\":true}"));
    assert_int_equal(g_b.nclamped, 1);
}

static void test_sent_at_skew(void **state)
{
    (void)state;
    /* the sender's clock is 1 h ahead: its timestamp moves back by 1 h */
    const at_event_t *ev = accept("{\"type\":\"a\",\"user_id\":\"1\","
                                  "\"timestamp\":\"2026-04-27T15:35:00Z\","
                                  "\"sentAt\":\"2026-04-27T15:36:00Z\"}");
    assert_int_equal(ev->ts_ms, 1777300500000LL);
    assert_false(ev->clamped);
    assert_null(strstr(ev->json, "sentAt"));
    reject("{\"type\":\"a\",\"user_id\":\"1\",\"timestamp\":1,\"sentAt\":\"soon\"}",
           "invalid_event", "sentAt", "sentAt must be");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_canonical_golden, each_teardown),
        cmocka_unit_test_teardown(test_minimal_and_extra, each_teardown),
        cmocka_unit_test_teardown(test_strings_and_numbers, each_teardown),
        cmocka_unit_test_teardown(test_rejects, each_teardown),
        cmocka_unit_test_teardown(test_limits, each_teardown),
        cmocka_unit_test_teardown(test_event_too_large_in_batch, each_teardown),
        cmocka_unit_test_teardown(test_mapping_config, each_teardown),
        cmocka_unit_test_teardown(test_mapping_segment, each_teardown),
        cmocka_unit_test_teardown(test_timestamps, each_teardown),
        cmocka_unit_test_teardown(test_clamping, each_teardown),
        cmocka_unit_test_teardown(test_sent_at_skew, each_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
