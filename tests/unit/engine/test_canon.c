/* test_canon.c - reading a canonical event without a tree
 * (src/engine/proc_canon.c) against reading its tree: on every canonical
 * event ingestion writes from the generated corpus of request bodies
 * (tests/unit/ingest/corpus_gen.h, every configuration) and from a few
 * made by hand, the reader either declines or gives the very same view:
 * the profile's fields and the value of every event field of a rule set
 * with paths of every kind (top level, context, properties, array elements,
 * nested, missing). Most events must not be declined. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../unit/ingest/corpus_gen.h"
#include "engine/canon_test.h"

typedef struct canon_count {
    size_t events, read;
} canon_count_t;

/* The reader against the tree on one canonical event. */
static void canon_check(at_proc_t *pr, const char *json, size_t len, canon_count_t *c)
{
    const char *why;
    int rc = canon_diff(pr, json, len, &why);
    if (rc < 0)
        fail_msg("%s differs on %.*s", why, (int)len, json);
    c->events++;
    c->read += (size_t)rc;
}

static void canon_body(at_ingest_t *in, at_proc_t *pr, const char *body, size_t n,
                       at_body_kind_t kind, canon_count_t *c)
{
    at_batch_t b;
    at_batch_init(&b);
    at_error_t e;
    if (at_ingest_parse(in, body, n, kind, CG_RECV, 1, &b, &e) == 0)
        for (size_t i = 0; i < b.nevents; i++)
            canon_check(pr, b.events[i].json, b.events[i].json_len, c);
    at_batch_deinit(&b);
}

static void test_corpus(void **state)
{
    (void)state;
    at_proc_t *pr = canon_proc();
    canon_count_t c = {0, 0};
    cg_buf_t body = {NULL, 0, 0};
    for (int k = 0; k < CG_NCONFIGS; k++) {
        at_config_t cfg;
        cg_config(k, &cfg);
        at_ingest_t *in = NULL;
        at_error_t e;
        assert_int_equal(at_ingest_new(&in, &cfg, NULL, &e), 0);
        cg_rng_t r = {0x9e3779b97f4a7c15ULL + (uint64_t)k};
        for (int i = 0; i < 3000; i++) {
            at_body_kind_t kind = cg_body(&r, &body);
            canon_body(in, pr, body.p, body.n, kind, &c);
        }
        at_ingest_free(in);
        at_config_free(&cfg);
    }
    free(body.p);
    print_message("canonical events %zu, read without a tree %zu\n", c.events, c.read);
    assert_true(c.events > 10000);
    assert_true(c.read * 10 > c.events * 6);
    at_proc_free(pr);
}

static void test_made(void **state)
{
    (void)state;
    static const char *const events[] = {
        ("{\"type\":\"view_item\",\"user_id\":\"1\",\"item_id\":\"987\",\"category\":\"a/b\","
         "\"timestamp\":\"2026-04-27T14:35:00Z\",\"context\":{\"device\":\"mobile\",\"timezone\":"
         "\"Europe/Paris\",\"page\":{\"session\":\"s\"}},\"properties\":{\"price\":19.99,"
         "\"quantity\":2,\"items\":[{\"item_id\":\"a\",\"category\":\"c\"},3,{\"product_id\":"
         "\"p\"},{\"item_id\":\"\",\"product_id\":\"q\"},{\"category\":\"only\"},{}],\"c\":true,"
         "\"k\":null,\"a\":{\"b\":{\"c\":1}},\"b\":[[0,2]]},\"channel\":\"web\",\"meta\":{\"id\":"
         "\"m\"}}"),
        ("{\"type\":\"caf\xc3\xa9\",\"user_id\":\"1\",\"item_id\":\"a\\\"b\",\"context\":{"
         "\"timezone\":\"\\u0041\"},\"properties\":{\"title\":\"\\n\",\"price\":-0.0,"
         "\"quantity\":1e400,\"sku\":12345678901234567890123}}"),
        "{\"type\":\"t\",\"user_id\":\"1\",\"properties\":{\"items\":[]},\"context\":{}}",
        ("{\"type\":\"t\",\"user_id\":\"1\",\"properties\":{\"items\":{\"item_id\":\"x\"}},"
         "\"context\":{\"a\":[{\"b\":1}],\"items\":[0,1,2,{\"x\":false}]}}"),
        ("{\"type\":\"t\",\"user_id\":\"1\",\"properties\":{\"items\":\"s\"},\"context\":{\"a\":"
         "\"c\"}}"),
        "{\"type\":\"t\",\"user_id\":\"1\",\"properties\":{\"caf\xc3\xa9\":1,\"price\":2}}",
        "{\"type\":\"t\",\"user_id\":\"1\",\"properties\":{\"x\\u0041\":1,\"price\":2}}",
    };
    at_proc_t *pr = canon_proc();
    at_config_t cfg;
    at_config_defaults(&cfg);
    at_ingest_t *in = NULL;
    at_error_t e;
    assert_int_equal(at_ingest_new(&in, &cfg, NULL, &e), 0);
    canon_count_t c = {0, 0};
    for (size_t i = 0; i < AT_ARRAY_LEN(events); i++)
        canon_body(in, pr, events[i], strlen(events[i]), AT_BODY_JSON, &c);
    assert_int_equal(c.events, AT_ARRAY_LEN(events));
    assert_true(c.read >= 4);
    /* not canonical: declined, the tree reads them */
    static const char *const other[] = {"{\"type\":\"t\"}",
                                        "{ \"event_id\":\"e\"}",
                                        "{\"event_id\":\"e\",\"type\": \"t\"}",
                                        "{\"event_id\":\"e\"",
                                        "[1]",
                                        ""};
    for (size_t i = 0; i < AT_ARRAY_LEN(other); i++) {
        at_pevent_t ev;
        at_val_t *slot = at_arena_alloc(&pr->arena, (pr->nfp + 1) * sizeof *slot);
        assert_false(at_proc__canon(pr, other[i], strlen(other[i]), 0, &ev, slot));
    }
    at_ingest_free(in);
    at_config_free(&cfg);
    at_proc_free(pr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_made),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
