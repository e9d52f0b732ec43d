/* test_schema.c - schemas: each keyword checked against events (code
 * schema_violation, field = property path), versions through put/get/list,
 * every backward-compatibility rule (AT_ECONFLICT, the HTTP 409), what
 * stays allowed, and persistence across at_ingest_new. */
#include "ingest_test.h"

#include <pthread.h>

#define CART                                                                                       \
    "{\"type\":\"object\",\"required\":[\"price\"],\"properties\":{"                               \
    "\"price\":{\"type\":\"number\",\"minimum\":0,\"maximum\":10000},"                             \
    "\"quantity\":{\"type\":\"integer\",\"minimum\":1},"                                           \
    "\"currency\":{\"enum\":[\"EUR\",\"USD\"]},"                                                   \
    "\"coupon\":{\"type\":[\"string\",\"null\"],\"maxLength\":8,\"pattern\":\"^[A-Z0-9]+$\"},"     \
    "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"sku\"],"         \
    "\"properties\":{\"sku\":{\"type\":\"string\"}},\"additionalProperties\":false}}}}"

static at_ingest_t *new_with_cart(const char *dir)
{
    at_config_t c;
    at_config_defaults(&c);
    it_schema(&c, "add_to_cart", CART);
    at_ingest_t *in = it_new(&c, dir);
    at_config_free(&c);
    return in;
}

/* Parses an add_to_cart event with these properties; returns the reject's
 * field ("" when accepted) after checking the code. */
static void check_props(at_ingest_t *in, const char *props, const char *field, const char *msg)
{
    char body[1024];
    snprintf(body, sizeof body, "{\"type\":\"add_to_cart\",\"user_id\":\"1\"%s%s}",
             props ? ",\"properties\":" : "", props ? props : "");
    at_batch_t b;
    at_error_t e;
    assert_int_equal(it_parse(in, body, AT_BODY_JSON, &b, &e), 0);
    if (!field) {
        if (b.nevents != 1) {
            it_dump(&b);
            fail_msg("expected %s to be accepted", props);
        }
    } else if (b.nrejects != 1 || strcmp(b.rejects[0].error.code, "schema_violation") ||
               strcmp(b.rejects[0].error.field, field) ||
               !strstr(b.rejects[0].error.message, msg)) {
        it_dump(&b);
        fail_msg("expected %s to be refused at %s with '%s'", props, field, msg);
    }
    at_batch_deinit(&b);
}

static void test_validation(void **state)
{
    (void)state;
    at_ingest_t *in = new_with_cart(NULL);
    check_props(in,
                "{\"price\":19.99,\"quantity\":2,\"currency\":\"EUR\",\"coupon\":\"AB12\","
                "\"items\":[{\"sku\":\"x\"}],\"other\":{\"free\":true}}",
                NULL, NULL);
    check_props(in, "{\"price\":0,\"coupon\":null,\"quantity\":3.0}", NULL, NULL);
    check_props(in, NULL, "properties.price", "required property is missing");
    check_props(in, "{}", "properties.price",
                "properties.price: required property is missing "
                "(schema add_to_cart v1)");
    check_props(in, "{\"price\":\"19\"}", "properties.price", "must be of type number");
    check_props(in, "{\"price\":-0.01}", "properties.price", "must be at least 0");
    check_props(in, "{\"price\":10000.5}", "properties.price", "must be at most 10000");
    check_props(in, "{\"price\":1,\"quantity\":1.5}", "properties.quantity",
                "must be of type integer");
    check_props(in, "{\"price\":1,\"quantity\":0}", "properties.quantity", "at least 1");
    check_props(in, "{\"price\":1,\"currency\":\"GBP\"}", "properties.currency",
                "must be one of the 2 values of the enum");
    check_props(in, "{\"price\":1,\"coupon\":7}", "properties.coupon",
                "must be of type string or null");
    check_props(in, "{\"price\":1,\"coupon\":\"ABCDEFGHI\"}", "properties.coupon",
                "at most 8 characters");
    check_props(in, "{\"price\":1,\"coupon\":\"ab-1\"}", "properties.coupon",
                "must match the pattern \"^[A-Z0-9]+$\"");
    check_props(in, "{\"price\":1,\"items\":[{\"sku\":\"a\"},{}]}", "properties.items[1].sku",
                "required property is missing");
    check_props(in, "{\"price\":1,\"items\":[{\"sku\":\"a\",\"n\":1}]}", "properties.items[0].n",
                "property not allowed");
    check_props(in, "{\"price\":1,\"items\":{}}", "properties.items", "must be of type array");
    at_ingest_free(in);
}

static void test_traits_for_identify(void **state)
{
    (void)state;
    at_config_t c;
    at_config_defaults(&c);
    it_schema(&c, "identify", "{\"properties\":{\"plan\":{\"enum\":[\"gold\",\"free\"]}}}");
    at_ingest_t *in = it_new(&c, NULL);
    at_config_free(&c);
    at_batch_t b;
    at_error_t e;
    assert_int_equal(it_parse(in,
                              "{\"type\":\"identify\",\"userId\":\"u\",\"traits\":{\"plan\":1}}",
                              AT_BODY_JSON, &b, &e),
                     0);
    assert_int_equal(b.nrejects, 1);
    assert_string_equal(b.rejects[0].error.field, "traits.plan");
    at_batch_deinit(&b);
    at_ingest_free(in);
}

static void expect_get(at_ingest_t *in, const char *type, int version, const char *want)
{
    at_buf_t out;
    at_buf_init(&out, 0);
    int rc = at_ingest_schema_get(in, type, version, &out);
    if (!want) {
        assert_int_equal(rc, AT_ENOTFOUND);
    } else {
        assert_int_equal(rc, 0);
        assert_string_equal(out.data, want);
    }
    at_buf_deinit(&out);
}

static int put(at_ingest_t *in, const char *type, const char *json, int *version, at_error_t *e)
{
    memset(e, 0, sizeof *e);
    *version = -1;
    return at_ingest_schema_put(in, type, json, strlen(json), version, e);
}

static void test_versions(void **state)
{
    (void)state;
    at_ingest_t *in = new_with_cart(NULL);
    int v;
    at_error_t e;
    expect_get(in, "view_item", 0, NULL);
    assert_int_equal(put(in, "view_item", "{ \"required\" : [\"item\"] }", &v, &e), 0);
    assert_int_equal(v, 1);
    assert_int_equal(put(in, "view_item", "{\"required\":[]}", &v, &e), 0);
    assert_int_equal(v, 2);
    /* the same schema again is not a new version */
    assert_int_equal(put(in, "view_item", "{\"required\": []}", &v, &e), 0);
    assert_int_equal(v, 2);
    expect_get(in, "view_item", 1,
               "{\"type\":\"view_item\",\"version\":1,\"schema\":"
               "{\"required\":[\"item\"]}}");
    expect_get(in, "view_item", 0,
               "{\"type\":\"view_item\",\"version\":2,\"schema\":"
               "{\"required\":[]}}");
    expect_get(in, "view_item", 3, NULL);
    at_buf_t out;
    at_buf_init(&out, 0);
    assert_int_equal(at_ingest_schema_list(in, &out), 0);
    assert_string_equal(out.data, "[{\"type\":\"add_to_cart\",\"version\":1},"
                                  "{\"type\":\"view_item\",\"version\":2}]");
    at_buf_deinit(&out);

    /* the latest version applies to the next batch */
    at_batch_t b;
    assert_int_equal(
        it_parse(in, "{\"type\":\"view_item\",\"user_id\":\"1\"}", AT_BODY_JSON, &b, &e), 0);
    assert_int_equal(b.nevents, 1);
    at_batch_deinit(&b);
    at_ingest_free(in);
}

static void test_bad_schemas(void **state)
{
    (void)state;
    at_ingest_t *in = new_with_cart(NULL);
    static const struct {
        const char *json;
        int rc;
        const char *field;
        const char *msg;
    } cases[] = {
        {"{\"type\":", AT_EPARSE, "", "line 1, column 9"},
        {"[]", AT_EINVALID, "", "a schema must be an object"},
        {"{\"type\":\"string\"}", AT_EINVALID, "", "its type must be \"object\""},
        {"{\"properties\":{\"a\":{\"type\":\"text\"}}}", AT_EINVALID, "properties.a.type",
         "unknown type \"text\""},
        {"{\"properties\":{\"a\":{\"oneOf\":[]}}}", AT_EINVALID, "properties.a.oneOf",
         "unsupported keyword \"oneOf\""},
        {"{\"properties\":{\"a\":{\"minimum\":\"1\"}}}", AT_EINVALID, "properties.a.minimum",
         "minimum must be a number"},
        {"{\"properties\":{\"a\":{\"minimum\":2,\"maximum\":1}}}", AT_EINVALID, "properties.a",
         "minimum is greater than maximum"},
        {"{\"properties\":{\"a\":{\"maxLength\":-1}}}", AT_EINVALID, "properties.a.maxLength",
         "non-negative integer"},
        {"{\"properties\":{\"a\":{\"pattern\":\"(\"}}}", AT_EINVALID, "properties.a.pattern",
         "not a POSIX extended regular expression"},
        {"{\"properties\":{\"a\":{\"pattern\":\"(a)\\\\1\"}}}", AT_EINVALID, "properties.a.pattern",
         "back-references"},
        {"{\"properties\":{\"a\":{\"pattern\":\"^[a-z]+++++++++++++++++++++++++++++++$\"}}}",
         AT_EINVALID, "properties.a.pattern", "pattern too complex"},
        {"{\"properties\":{\"a\":{\"pattern\":\"(x{99}){199}\"}}}", AT_EINVALID,
         "properties.a.pattern", "pattern too complex"},
        {"{\"properties\":{\"a\":{\"pattern\":\"^a+*$\"}}}", AT_EINVALID, "properties.a.pattern",
         "adjacent repetitions"},
        {"{\"properties\":{\"a\":{\"pattern\":\"a?{2}\"}}}", AT_EINVALID, "properties.a.pattern",
         "adjacent repetitions"},
        {"{\"required\":[1]}", AT_EINVALID, "required", "list of property names"},
        {"{\"enum\":[]}", AT_EINVALID, "enum", "non-empty list"},
        {"{\"additionalProperties\":{}}", AT_EINVALID, "additionalProperties", "true or false"},
        {"{\"properties\":{\"a\":{},\"a\":{}}}", AT_EINVALID, "properties",
         "property \"a\" defined twice"},
        {"{\"required\":[\"a\"],\"required\":[\"b\",\"c\"]}", AT_EINVALID, "",
         "keyword \"required\" given twice"},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(cases); i++) {
        int v;
        at_error_t e;
        int rc = put(in, "x", cases[i].json, &v, &e);
        if (rc != cases[i].rc || strcmp(e.field, cases[i].field) ||
            !strstr(e.message, cases[i].msg))
            fail_msg("case %zu: rc %d [%s] '%s'", i, rc, e.field, e.message);
        assert_string_equal(e.code, rc == AT_EPARSE ? "invalid_json" : "invalid_schema");
    }
    int v;
    at_error_t e;
    /* ordinary patterns with repetitions are fine */
    assert_int_equal(put(in, "x",
                         "{\"properties\":{\"a\":{\"pattern\":"
                         "\"^([a-z0-9]+[.])*[a-z]{2,10}$|^[[:digit:]]{1,20}(-[]x]+)?$|"
                         "(((a+)+)*)+|a\\\\++|[+*]+\"}}}",
                         &v, &e),
                     0);
    assert_int_equal(put(in, "", "{}", &v, &e), AT_EINVALID);
    char longtype[100];
    memset(longtype, 't', 99);
    longtype[99] = '\0';
    assert_int_equal(put(in, longtype, "{}", &v, &e), AT_EINVALID);
    assert_string_equal(e.field, "type");
    expect_get(in, "y", 0, NULL);
    at_ingest_free(in);
}

/* Puts old then neu for a fresh type; returns put(neu)'s result. */
static int evolve(const char *old, const char *neu, at_error_t *e)
{
    at_config_t c;
    at_config_defaults(&c);
    it_schema(&c, "t", old);
    at_ingest_t *in = it_new(&c, NULL);
    at_config_free(&c);
    int v;
    int rc = put(in, "t", neu, &v, e);
    if (rc == 0)
        assert_int_equal(v, 2);
    else
        assert_int_equal(v, -1);
    at_ingest_free(in);
    return rc;
}

static void test_incompatible(void **state)
{
    (void)state;
    static const struct {
        const char *old, *neu, *field, *msg;
    } cases[] = {
        {"{}", "{\"required\":[\"a\"]}", "properties.a", "required property added"},
        {"{\"properties\":{\"p\":{\"type\":\"object\"}}}",
         "{\"properties\":{\"p\":{\"type\":\"object\",\"required\":[\"q\"]}}}", "properties.p.q",
         "required property added"},
        {"{\"properties\":{\"a\":{\"enum\":[1,2]}}}", "{\"properties\":{\"a\":{\"enum\":[2]}}}",
         "properties.a", "enum value 1 removed"},
        {"{\"properties\":{\"a\":{}}}", "{\"properties\":{\"a\":{\"enum\":[1]}}}", "properties.a",
         "enum added"},
        {"{\"properties\":{\"a\":{\"minimum\":0}}}", "{\"properties\":{\"a\":{\"minimum\":1}}}",
         "properties.a", "minimum raised from 0 to 1"},
        {"{\"properties\":{\"a\":{}}}", "{\"properties\":{\"a\":{\"minimum\":0}}}", "properties.a",
         "minimum 0 added"},
        {"{\"properties\":{\"a\":{\"maximum\":9}}}", "{\"properties\":{\"a\":{\"maximum\":8.5}}}",
         "properties.a", "maximum lowered from 9 to 8.5"},
        {"{\"properties\":{\"a\":{\"maxLength\":10}}}",
         "{\"properties\":{\"a\":{\"maxLength\":9}}}", "properties.a",
         "maxLength lowered from 10 to 9"},
        {"{\"properties\":{\"a\":{}}}", "{\"properties\":{\"a\":{\"maxLength\":9}}}",
         "properties.a", "maxLength 9 added"},
        {"{\"properties\":{\"a\":{\"type\":\"number\"}}}",
         "{\"properties\":{\"a\":{\"type\":\"integer\"}}}", "properties.a",
         "type changed from number to integer"},
        {"{\"properties\":{\"a\":{\"type\":\"string\"}}}",
         "{\"properties\":{\"a\":{\"type\":\"number\"}}}", "properties.a",
         "type changed from string to number"},
        {"{\"properties\":{\"a\":{}}}", "{\"properties\":{\"a\":{\"type\":\"string\"}}}",
         "properties.a", "type string added"},
        {"{\"properties\":{\"a\":{}}}", "{\"properties\":{\"a\":{\"pattern\":\"^x\"}}}",
         "properties.a", "pattern \"^x\" added"},
        {"{\"properties\":{\"a\":{\"pattern\":\"^x\"}}}",
         "{\"properties\":{\"a\":{\"pattern\":\"^y\"}}}", "properties.a", "pattern changed"},
        {"{\"properties\":{\"a\":{},\"b\":{}},\"additionalProperties\":false}",
         "{\"properties\":{\"a\":{}},\"additionalProperties\":false}", "properties.b",
         "property removed while additionalProperties is false"},
        {"{}", "{\"additionalProperties\":false}", "properties",
         "additionalProperties changed to false"},
        {"{\"properties\":{\"l\":{\"type\":\"array\"}}}",
         "{\"properties\":{\"l\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}",
         "properties.l", "items schema added"},
        {"{\"properties\":{\"l\":{\"items\":{\"maximum\":5}}}}",
         "{\"properties\":{\"l\":{\"items\":{\"maximum\":4}}}}", "properties.l[]",
         "maximum lowered"},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(cases); i++) {
        at_error_t e;
        int rc = evolve(cases[i].old, cases[i].neu, &e);
        if (rc != AT_ECONFLICT || strcmp(e.field, cases[i].field) ||
            !strstr(e.message, cases[i].msg))
            fail_msg("case %zu: rc %d [%s] '%s'", i, rc, e.field, e.message);
        assert_string_equal(e.code, "incompatible_schema");
        assert_non_null(strstr(e.message, "version 2 must accept every event version 1 accepted"));
    }
}

static void test_compatible(void **state)
{
    (void)state;
    static const struct {
        const char *old, *neu;
    } cases[] = {
        {"{\"required\":[\"a\",\"b\"]}", "{\"required\":[\"b\"]}"},
        {"{\"properties\":{\"a\":{\"enum\":[1]}}}", "{\"properties\":{\"a\":{\"enum\":[1.0,2]}}}"},
        {"{\"properties\":{\"a\":{\"enum\":[1]}}}", "{\"properties\":{\"a\":{}}}"},
        {"{\"properties\":{\"a\":{\"minimum\":1,\"maximum\":2}}}",
         "{\"properties\":{\"a\":{\"minimum\":0.5,\"maximum\":3}}}"},
        {"{\"properties\":{\"a\":{\"minimum\":1}}}", "{\"properties\":{\"a\":{}}}"},
        {"{\"properties\":{\"a\":{\"maxLength\":3}}}",
         "{\"properties\":{\"a\":{\"maxLength\":4}}}"},
        {"{\"properties\":{\"a\":{\"type\":\"integer\"}}}",
         "{\"properties\":{\"a\":{\"type\":\"number\"}}}"},
        {"{\"properties\":{\"a\":{\"type\":\"string\"}}}",
         "{\"properties\":{\"a\":{\"type\":[\"null\",\"string\"]}}}"},
        {"{\"properties\":{\"a\":{\"type\":\"string\"}}}", "{\"properties\":{\"a\":{}}}"},
        {"{\"properties\":{\"a\":{\"pattern\":\"^x\"}}}", "{\"properties\":{\"a\":{}}}"},
        {"{\"properties\":{\"a\":{}}}", "{\"properties\":{\"a\":{},\"b\":{\"type\":\"string\"}}}"},
        {"{\"properties\":{\"a\":{},\"b\":{}}}", "{\"properties\":{\"a\":{}}}"},
        {"{\"additionalProperties\":false}", "{\"additionalProperties\":true}"},
        {"{\"properties\":{\"a\":{}},\"additionalProperties\":false}",
         "{\"properties\":{\"a\":{},\"b\":{\"maximum\":1}},\"additionalProperties\":false}"},
        {"{\"properties\":{\"l\":{\"items\":{\"maximum\":5}}}}",
         "{\"properties\":{\"l\":{\"title\":\"list\"}}}"},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(cases); i++) {
        at_error_t e;
        int rc = evolve(cases[i].old, cases[i].neu, &e);
        if (rc != 0)
            fail_msg("case %zu: rc %d [%s] '%s'", i, rc, e.field, e.message);
    }
}

static char *read_all(const char *path)
{
    char *data;
    size_t len;
    assert_int_equal(at_file_read(path, 1 << 20, &data, &len), 0);
    return data;
}

static void test_persistence(void **state)
{
    (void)state;
    char *dir = it_tmpdir();
    at_ingest_t *in = new_with_cart(dir);
    int v;
    at_error_t e;
    assert_int_equal(put(in, "Order Completed", "{\"properties\":{\"total\":{}}}", &v, &e), 0);
    assert_int_equal(put(in, "Order Completed", "{}", &v, &e), 0);
    assert_int_equal(v, 2);
    assert_int_equal(put(in, "add_to_cart", "{\"required\":[\"price\"]}", &v, &e), 0);
    assert_int_equal(v, 2);
    /* refused versions are not stored */
    assert_int_equal(put(in, "add_to_cart", "{\"required\":[\"price\",\"sku\"]}", &v, &e),
                     AT_ECONFLICT);
    at_ingest_free(in);

    char path[512];
    snprintf(path, sizeof path, "%s/Order%%20Completed.json", dir);
    char *text = read_all(path);
    assert_string_equal(text, "{\"type\":\"Order Completed\",\"versions\":["
                              "{\"version\":1,\"schema\":{\"properties\":{\"total\":{}}}},"
                              "{\"version\":2,\"schema\":{}}]}\n");
    free(text);

    /* reopened with the same config: versions come back, none is added */
    in = new_with_cart(dir);
    expect_get(in, "Order Completed", 1,
               "{\"type\":\"Order Completed\",\"version\":1,\"schema\":"
               "{\"properties\":{\"total\":{}}}}");
    expect_get(in, "add_to_cart", 0,
               "{\"type\":\"add_to_cart\",\"version\":2,\"schema\":"
               "{\"required\":[\"price\"]}}");
    expect_get(in, "add_to_cart", 3, NULL);
    at_ingest_free(in);

    /* a config schema that is none of the stored versions becomes the next
     * one when compatible, and stops the start when not */
    at_config_t c;
    at_config_defaults(&c);
    it_schema(&c, "add_to_cart", "{\"required\":[]}");
    in = it_new(&c, dir);
    expect_get(in, "add_to_cart", 0,
               "{\"type\":\"add_to_cart\",\"version\":3,\"schema\":"
               "{\"required\":[]}}");
    at_ingest_free(in);
    at_config_free(&c);
    at_config_defaults(&c);
    it_schema(&c, "add_to_cart", "{\"required\":[\"coupon\"]}");
    in = NULL;
    memset(&e, 0, sizeof e);
    assert_int_equal(at_ingest_new(&in, &c, dir, &e), AT_ECONFLICT);
    assert_null(in);
    assert_string_equal(e.field, "schemas.add_to_cart");
    assert_non_null(strstr(e.message, "(config line 7)"));
    assert_non_null(strstr(e.message, "required property added"));
    at_config_free(&c);

    /* a corrupt file stops the start with a clear error */
    snprintf(path, sizeof path, "%s/bad.json", dir);
    assert_int_equal(at_file_write_atomic(path, "{\"type\":1}", 10), 0);
    at_config_defaults(&c);
    memset(&e, 0, sizeof e);
    assert_int_equal(at_ingest_new(&in, &c, dir, &e), AT_ECORRUPT);
    assert_non_null(strstr(e.message, "bad.json"));
    at_config_free(&c);
    it_rmtree(dir);
}

typedef struct racer {
    at_ingest_t *in;
    int accepted, refused;
} racer_t;

static void *race_parse(void *arg)
{
    racer_t *r = arg;
    for (int i = 0; i < 300; i++) {
        at_batch_t b;
        at_error_t e;
        AT_ASSERT(it_parse(r->in, "{\"type\":\"t\",\"user_id\":\"1\",\"properties\":{\"n\":150}}",
                           AT_BODY_JSON, &b, &e) == 0);
        r->accepted += (int)b.nevents;
        r->refused += (int)b.nrejects;
        at_batch_deinit(&b);
    }
    return NULL;
}

static void test_put_while_parsing(void **state)
{
    (void)state;
    at_config_t c;
    at_config_defaults(&c);
    it_schema(&c, "t", "{\"properties\":{\"n\":{\"maximum\":100}}}");
    at_ingest_t *in = it_new(&c, NULL);
    at_config_free(&c);
    racer_t r[2] = {{in, 0, 0}, {in, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_parse, &r[i]), 0);
    /* versions 2..101 raise the maximum; from version 51 on n=150 passes */
    for (int v = 2; v <= 101; v++) {
        char schema[96];
        snprintf(schema, sizeof schema, "{\"properties\":{\"n\":{\"maximum\":%d}}}", 100 + v - 1);
        int got;
        at_error_t e;
        assert_int_equal(put(in, "t", schema, &got, &e), 0);
        assert_int_equal(got, v);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(r[i].accepted + r[i].refused, 300);
    }
    racer_t last = {in, 0, 0};
    race_parse(&last);
    assert_int_equal(last.accepted, 300);
    at_ingest_free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),   cmocka_unit_test(test_traits_for_identify),
        cmocka_unit_test(test_versions),     cmocka_unit_test(test_bad_schemas),
        cmocka_unit_test(test_incompatible), cmocka_unit_test(test_compatible),
        cmocka_unit_test(test_persistence),  cmocka_unit_test(test_put_while_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
