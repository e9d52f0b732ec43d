/* test_body.c - the body forms of POST /v1/events: {"events":[...]},
 * Segment's {"batch":[...]}, a bare array, a single event, NDJSON,
 * text/plain sniffing, write_key, and body-level errors. */
#include "ingest_test.h"

static at_ingest_t *g_in;

static int setup(void **state)
{
    (void)state;
    at_config_t c;
    at_config_defaults(&c);
    c.max_batch_events = 3;
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

#define EV(n) "{\"type\":\"page_view\",\"user_id\":\"u" #n "\",\"event_id\":\"e" #n "\"}"

static void assert_ids(const at_batch_t *b, const char *const *ids, size_t n)
{
    assert_int_equal(b->nevents, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(b->events[i].event_id, ids[i]);
        assert_int_equal(b->events[i].index, (int)i);
    }
}

static void test_events_object(void **state)
{
    (void)state;
    at_batch_t b;
    at_error_t e;
    static const char *const ids[] = {"e1", "e2", "e3"};
    assert_int_equal(
        it_parse(g_in, "{\"events\":[" EV(1) "," EV(2) ",\n " EV(3) "]}", AT_BODY_JSON, &b, &e), 0);
    assert_ids(&b, ids, 3);
    assert_int_equal(b.nrejects, 0);
    assert_null(b.write_key);
    assert_string_equal(b.events[1].key, "u:u2");
    at_batch_deinit(&b);

    assert_int_equal(it_parse(g_in, "{\"batch\":[" EV(1) "]}", AT_BODY_JSON, &b, &e), 0);
    assert_ids(&b, ids, 1);
    at_batch_deinit(&b);

    assert_int_equal(it_parse(g_in, " [" EV(1) "," EV(2) "] ", AT_BODY_JSON, &b, &e), 0);
    assert_ids(&b, ids, 2);
    at_batch_deinit(&b);

    assert_int_equal(it_parse(g_in, "{\"events\":[]}", AT_BODY_JSON, &b, &e), 0);
    assert_int_equal(b.nevents + b.nrejects, 0);
    at_batch_deinit(&b);
}

static void test_single_event(void **state)
{
    (void)state;
    at_batch_t b;
    at_error_t e;
    static const char *const ids[] = {"e7"};
    assert_int_equal(it_parse(g_in, "\xef\xbb\xbf" EV(7) "\n", AT_BODY_JSON, &b, &e), 0);
    assert_ids(&b, ids, 1);
    at_batch_deinit(&b);

    /* "events" that is not an array is just a field of a single event */
    assert_int_equal(
        it_parse(g_in, "{\"type\":\"x\",\"user_id\":\"1\",\"events\":5}", AT_BODY_JSON, &b, &e), 0);
    assert_int_equal(b.nevents, 1);
    assert_non_null(strstr(b.events[0].json, "\"extra\":{\"events\":5}"));
    at_batch_deinit(&b);
}

static void test_ndjson(void **state)
{
    (void)state;
    at_batch_t b;
    at_error_t e;
    static const char *const ids[] = {"e1", "e2", "e3"};
    assert_int_equal(
        it_parse(g_in, "\n" EV(1) "\r\n  \n" EV(2) "\n\n" EV(3), AT_BODY_NDJSON, &b, &e), 0);
    assert_ids(&b, ids, 3);
    at_batch_deinit(&b);

    /* a line that is not JSON is a reject; the others go through */
    assert_int_equal(it_parse(g_in, EV(1) "\n{\"type\":\n" EV(3), AT_BODY_NDJSON, &b, &e), 0);
    assert_int_equal(b.nevents, 2);
    assert_int_equal(b.events[1].index, 2);
    assert_int_equal(b.nrejects, 1);
    assert_int_equal(b.rejects[0].index, 1);
    assert_string_equal(b.rejects[0].error.code, "invalid_json");
    assert_non_null(strstr(b.rejects[0].error.message, "line 2, column 9"));
    assert_int_equal(b.rejects[0].raw_len, strlen("{\"type\":"));
    assert_memory_equal(b.rejects[0].raw, "{\"type\":", 8);
    at_batch_deinit(&b);

    /* two values on one line */
    assert_int_equal(it_parse(g_in, EV(1) " " EV(2), AT_BODY_NDJSON, &b, &e), 0);
    assert_int_equal(b.nevents, 0);
    assert_int_equal(b.nrejects, 1);
    at_batch_deinit(&b);
}

static void test_text_sniffing(void **state)
{
    (void)state;
    at_batch_t b;
    at_error_t e;
    static const char *const ids[] = {"e1", "e2"};
    assert_int_equal(it_parse(g_in, EV(1) "\n" EV(2) "\n", AT_BODY_TEXT, &b, &e), 0);
    assert_ids(&b, ids, 2);
    at_batch_deinit(&b);

    assert_int_equal(it_parse(g_in, "{\n  \"events\": [\n    " EV(1) ",\n    " EV(2) "\n  ]\n}",
                              AT_BODY_TEXT, &b, &e),
                     0);
    assert_ids(&b, ids, 2);
    at_batch_deinit(&b);

    assert_int_equal(it_parse(g_in, EV(1), AT_BODY_TEXT, &b, &e), 0);
    assert_ids(&b, ids, 1);
    at_batch_deinit(&b);

    /* pretty-printed JSON with an error stays JSON: one body error */
    assert_int_equal(
        it_parse(g_in, "{\n  \"events\": [\n    {\"type\" 1}\n  ]\n}", AT_BODY_TEXT, &b, &e),
        AT_EPARSE);
    assert_string_equal(e.code, "invalid_json");
    assert_non_null(strstr(e.message, "line 3, column 13"));
    at_batch_deinit(&b);
}

static void test_write_key(void **state)
{
    (void)state;
    at_batch_t b;
    at_error_t e;
    assert_int_equal(
        it_parse(g_in, "{\"events\":[" EV(1) "],\"write_key\":\"wk_1\"}", AT_BODY_JSON, &b, &e), 0);
    assert_string_equal(b.write_key, "wk_1");
    assert_null(strstr(b.events[0].json, "wk_1"));
    at_batch_deinit(&b);

    assert_int_equal(it_parse(g_in, "{\"write_key\":\"wk_2\",\"type\":\"a\",\"user_id\":\"1\"}",
                              AT_BODY_JSON, &b, &e),
                     0);
    assert_string_equal(b.write_key, "wk_2");
    assert_int_equal(b.nevents, 1);
    assert_null(strstr(b.events[0].json, "write_key"));
    assert_null(strstr(b.events[0].json, "wk_2"));
    at_batch_deinit(&b);

    assert_int_equal(it_parse(g_in,
                              "{\"type\":\"a\",\"user_id\":\"1\",\"write_key\":\"wk_3\"}\n"
                              "{\"type\":\"a\",\"user_id\":\"2\",\"write_key\":\"other\"}",
                              AT_BODY_NDJSON, &b, &e),
                     0);
    assert_string_equal(b.write_key, "wk_3");
    assert_int_equal(b.nevents, 2);
    assert_null(strstr(b.events[1].json, "other"));
    at_batch_deinit(&b);

    /* the batch's own key wins over one in an event */
    assert_int_equal(
        it_parse(g_in,
                 "{\"events\":[{\"type\":\"a\",\"user_id\":\"1\",\"write_key\":\"ev\"}],"
                 "\"write_key\":\"top\"}",
                 AT_BODY_JSON, &b, &e),
        0);
    assert_string_equal(b.write_key, "top");
    at_batch_deinit(&b);

    /* a rejected event still yields its key (the request is authorized
     * once, whatever its events hold) */
    assert_int_equal(
        it_parse(g_in, "{\"write_key\":\"wk_4\",\"user_id\":\"1\"}", AT_BODY_JSON, &b, &e), 0);
    assert_string_equal(b.write_key, "wk_4");
    assert_int_equal(b.nrejects, 1);
    at_batch_deinit(&b);
}

static void test_invalid_json(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *where;
    } cases[] = {
        {"", "line 1, column 1: empty body"},
        {"  \n ", "line 2, column 2: empty body"},
        {"{\"events\":[" EV(1) ",\n  {\"type\":}]}", "line 2, column 11"},
        {"{\"events\":[" EV(1) "]", "line 1, column 64: unexpected end of input in object"},
        {EV(1) " x", "line 1, column 53: unexpected data after the JSON value"},
        {"{\"a\":\"\xff\"}", "invalid UTF-8"},
        {"{\"a\":\"\\ud800\"}", "invalid escape"},
        {"{\"a\":01}", "line 1, column 7: expected ',' or '}'"},
        {"{\"a\":1.}", "digit expected"},
        {"{\"a\":\"x\ty\"}", "control character"},
        {"{\"a\":tru}", "a value was expected"},
        {"{'a':1}", "expected a string key"},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(cases); i++) {
        at_batch_t b;
        at_error_t e;
        int rc = it_parse(g_in, cases[i].body, AT_BODY_JSON, &b, &e);
        if (rc != AT_EPARSE || !strstr(e.message, cases[i].where))
            fail_msg("case %zu: rc %d message '%s', want '%s'", i, rc, e.message, cases[i].where);
        assert_string_equal(e.code, "invalid_json");
        at_batch_deinit(&b);
    }
}

static void test_nesting_cap(void **state)
{
    (void)state;
    char body[4096];
    size_t o = (size_t)sprintf(body, "{\"type\":\"a\",\"user_id\":\"1\",\"properties\":");
    for (int i = 0; i < 200; i++)
        body[o++] = '[';
    for (int i = 0; i < 200; i++)
        body[o++] = ']';
    strcpy(body + o, "}");
    at_batch_t b;
    at_error_t e;
    assert_int_equal(it_parse(g_in, body, AT_BODY_JSON, &b, &e), AT_EPARSE);
    assert_non_null(strstr(e.message, "nesting too deep"));
    at_batch_deinit(&b);
}

static void test_batch_too_large(void **state)
{
    (void)state;
    at_batch_t b;
    at_error_t e;
    assert_int_equal(it_parse(g_in, "{\"events\":[" EV(1) "," EV(2) "," EV(3) "," EV(4) "]}",
                              AT_BODY_JSON, &b, &e),
                     AT_ETOOBIG);
    assert_string_equal(e.code, "batch_too_large");
    at_batch_deinit(&b);
    assert_int_equal(
        it_parse(g_in, EV(1) "\n" EV(2) "\n" EV(3) "\n\n" EV(4), AT_BODY_NDJSON, &b, &e),
        AT_ETOOBIG);
    assert_string_equal(e.code, "batch_too_large");
    at_batch_deinit(&b);
    /* exactly the limit is fine, blank lines do not count */
    assert_int_equal(it_parse(g_in, EV(1) "\n\n" EV(2) "\n" EV(3) "\n\n", AT_BODY_NDJSON, &b, &e),
                     0);
    assert_int_equal(b.nevents, 3);
    at_batch_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_object), cmocka_unit_test(test_single_event),
        cmocka_unit_test(test_ndjson),        cmocka_unit_test(test_text_sniffing),
        cmocka_unit_test(test_write_key),     cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_nesting_cap),   cmocka_unit_test(test_batch_too_large),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
