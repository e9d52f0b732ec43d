/* test_config.c - the config table: defaults, the YAML loader and its
 * errors (with line and column), flag overrides, sizes, durations,
 * schemas converted to JSON, cross-field validation and the docs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "at_config.h"
#include "at_core.h"

/* Loads text over the defaults; returns rc and leaves the error in err. */
static int load(at_config_t *c, const char *text, char *err, size_t errlen)
{
    at_config_defaults(c);
    return at_config_load_text(c, text, strlen(text), err, errlen);
}

/* Asserts that text fails with rc and exactly the message want. */
static void expect_error(const char *text, int rc, const char *want)
{
    at_config_t c;
    char err[512] = "";
    int got = load(&c, text, err, sizeof err);
    if (got != rc || strcmp(err, want) != 0)
        fail_msg("for\n%s\nwant %d \"%s\"\ngot  %d \"%s\"", text, rc, want, got, err);
    at_config_free(&c);
}

/* Asserts that text fails with rc and an error starting with prefix. */
static void expect_error_prefix(const char *text, int rc, const char *prefix)
{
    at_config_t c;
    char err[512] = "";
    int got = load(&c, text, err, sizeof err);
    if (got != rc || strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("for\n%s\nwant %d \"%s...\"\ngot  %d \"%s\"", text, rc, prefix, got, err);
    at_config_free(&c);
}

static void test_defaults(void **state)
{
    (void)state;
    at_config_t c;
    at_config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.data_dir, "./attune-data");
    assert_int_equal(c.partitions, 0); /* 16 for a new data directory, else the existing count */
    assert_int_equal(c.shards, 1);
    assert_int_equal(c.fsync, AT_FSYNC_BATCH);
    assert_int_equal(c.max_memory, 256LL << 20);
    assert_string_equal(c.log_level, "info");
    assert_int_equal(c.http_threads, 1);
    assert_int_equal(c.max_header_bytes, 16 << 10);
    assert_int_equal(c.max_body_bytes, 1 << 20);
    assert_int_equal(c.idle_timeout_ms, 60000);
    assert_int_equal(c.request_timeout_ms, 10000);
    assert_int_equal(c.max_connections, 10000);
    assert_null(c.cors_origins);
    assert_int_equal(c.max_event_bytes, 32 << 10);
    assert_int_equal(c.max_batch_events, 500);
    assert_int_equal(c.max_field_length, 1024);
    assert_int_equal(c.max_depth, 8);
    assert_int_equal(c.max_future_ms, 5 * 60000);
    assert_int_equal(c.dedup_horizon_ms, 24 * 3600000LL);
    assert_int_equal(c.dedup_max_per_partition, 1000000);
    assert_int_equal(c.segment_bytes, 64LL << 20);
    assert_int_equal(c.retention_bytes, 0);
    assert_int_equal(c.retention_ms, 7 * 86400000LL);
    assert_int_equal(c.rejected_max_bytes, 64LL << 20);
    assert_int_equal(c.nkeys, 0);
    assert_int_equal(c.nmappings, 0);
    assert_int_equal(c.nschemas, 0);
    char err[256];
    assert_int_equal(at_config_validate(&c, err, sizeof err), 0);
    at_config_free(&c);
}

static const char good_yaml[] =
    "# a complete config\n"
    "listen: 0.0.0.0:9090\n"
    "data_dir: /tmp/attune\n"
    "partitions: 32\n"
    "shards: 4\n"
    "fsync: always\n"
    "max_memory: 1GiB\n"
    "log_level: debug\n"
    "http:\n"
    "  threads: 2\n"
    "  max_header_bytes: 8KiB\n"
    "  max_body_bytes: 2MB\n"
    "  idle_timeout: 90s\n"
    "  request_timeout: 1500ms\n"
    "  max_connections: 50\n"
    "  cors_origins: [https://a.example, 'https://b.example']\n"
    "events: {max_event_bytes: 16KiB, max_batch_events: 100, max_field_length: 64,\n"
    "         max_depth: 4, max_future: 1m}\n"
    "dedup:\n"
    "  horizon: 2h\n"
    "  max_per_partition: 5000\n"
    "log:\n"
    "  segment_bytes: 1MiB\n"
    "  retention_bytes: 10GiB\n"
    "  retention: 30d\n"
    "  rejected_max_bytes: 512KiB\n"
    "keys:\n"
    "  - {name: web, key: pk_123, scopes: [ingest]}\n"
    "  - name: ops\n"
    "    key: \"sk_456\"\n"
    "    scopes: [ingest, read, admin]\n"
    "mapping:\n"
    "  type: event_type\n"
    "  user_id: customer_id\n"
    "  item_id: properties.sku\n"
    "schemas:\n"
    "  purchase:\n"
    "    type: object\n"
    "    required: [item_id]\n";

static void test_good_file(void **state)
{
    (void)state;
    at_config_t c;
    char err[512] = "";
    assert_int_equal(load(&c, good_yaml, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_string_equal(c.listen, "0.0.0.0:9090");
    assert_string_equal(c.data_dir, "/tmp/attune");
    assert_int_equal(c.partitions, 32);
    assert_int_equal(c.shards, 4);
    assert_int_equal(c.fsync, AT_FSYNC_ALWAYS);
    assert_int_equal(c.max_memory, 1LL << 30);
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.http_threads, 2);
    assert_int_equal(c.max_header_bytes, 8192);
    assert_int_equal(c.max_body_bytes, 2000000);
    assert_int_equal(c.idle_timeout_ms, 90000);
    assert_int_equal(c.request_timeout_ms, 1500);
    assert_int_equal(c.max_connections, 50);
    assert_non_null(c.cors_origins);
    assert_string_equal(c.cors_origins[0], "https://a.example");
    assert_string_equal(c.cors_origins[1], "https://b.example");
    assert_null(c.cors_origins[2]);
    assert_int_equal(c.max_event_bytes, 16384);
    assert_int_equal(c.max_batch_events, 100);
    assert_int_equal(c.max_field_length, 64);
    assert_int_equal(c.max_depth, 4);
    assert_int_equal(c.max_future_ms, 60000);
    assert_int_equal(c.dedup_horizon_ms, 7200000);
    assert_int_equal(c.dedup_max_per_partition, 5000);
    assert_int_equal(c.segment_bytes, 1 << 20);
    assert_int_equal(c.retention_bytes, 10LL << 30);
    assert_int_equal(c.retention_ms, 30 * 86400000LL);
    assert_int_equal(c.rejected_max_bytes, 512 << 10);
    assert_int_equal(c.nkeys, 2);
    assert_string_equal(c.keys[0].name, "web");
    assert_string_equal(c.keys[0].secret, "pk_123");
    assert_int_equal(c.keys[0].scopes, AT_SCOPE_INGEST);
    assert_string_equal(c.keys[1].secret, "sk_456");
    assert_int_equal(c.keys[1].scopes, AT_SCOPE_INGEST | AT_SCOPE_READ | AT_SCOPE_ADMIN);
    assert_int_equal(c.nmappings, 3);
    assert_string_equal(c.mappings[0].to, "type");
    assert_string_equal(c.mappings[0].from, "event_type");
    assert_string_equal(c.mappings[2].to, "item_id");
    assert_string_equal(c.mappings[2].from, "properties.sku");
    assert_int_equal(c.nschemas, 1);
    assert_string_equal(c.schemas[0].type, "purchase");
    assert_int_equal(c.schemas[0].line, 37);
    assert_string_equal(c.schemas[0].json, "{\"type\":\"object\",\"required\":[\"item_id\"]}");
    /* keys are configured, so binding all interfaces is allowed */
    assert_int_equal(at_config_validate(&c, err, sizeof err), 0);
    at_config_free(&c);
}

/* The shipped example config loads and validates. */
static void test_example_file(void **state)
{
    (void)state;
    const char *src = getenv("AT_SOURCE_DIR");
    if (!src)
        skip();
    char path[1024];
    snprintf(path, sizeof path, "%s/config/attune.example.yaml", src);
    at_config_t c;
    char err[512] = "";
    at_config_defaults(&c);
    int rc = at_config_load_file(&c, path, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(at_config_validate(&c, err, sizeof err), 0);
    assert_true(c.nkeys >= 1);
    assert_true(c.nschemas >= 1);
    at_config_free(&c);
}

static void test_empty_and_layering(void **state)
{
    (void)state;
    at_config_t c;
    char err[256];
    assert_int_equal(load(&c, "", err, sizeof err), 0);
    assert_int_equal(c.partitions, 0);
    assert_int_equal(at_config_load_text(&c, "# only a comment\n", 17, err, sizeof err), 0);
    assert_int_equal(at_config_load_text(&c, "http:\n", 6, err, sizeof err), 0);
    /* a second load keeps what it does not mention and replaces lists whole */
    const char *a = "partitions: 4\nhttp: {cors_origins: [x, y, z]}\n";
    const char *b = "shards: 2\nhttp: {cors_origins: w}\n";
    assert_int_equal(at_config_load_text(&c, a, strlen(a), err, sizeof err), 0);
    assert_int_equal(at_config_load_text(&c, b, strlen(b), err, sizeof err), 0);
    assert_int_equal(c.partitions, 4);
    assert_int_equal(c.shards, 2);
    assert_string_equal(c.cors_origins[0], "w");
    assert_null(c.cors_origins[1]);
    at_config_free(&c);
}

static void test_error_unknown_key(void **state)
{
    (void)state;
    expect_error("listen: 127.0.0.1:1\nlisten_port: 1\n", AT_EINVALID,
                 "2:1: unknown key 'listen_port'");
    expect_error("http:\n  threads: 2\n  thread: 3\n", AT_EINVALID,
                 "3:3: unknown key 'http.thread'");
    expect_error("events:\n    max_depth: 3\n    nope: {}\n", AT_EINVALID,
                 "3:5: unknown key 'events.nope'");
    expect_error("keys:\n  - {name: a, key: b, scopes: [read], extra: 1}\n", AT_EINVALID,
                 "2:39: unknown key 'keys.extra' (name, key or scopes)");
}

static void test_error_wrong_type(void **state)
{
    (void)state;
    expect_error("partitions: [1]\n", AT_EINVALID,
                 "1:13: partitions: expected a value, got a list");
    expect_error("partitions: abc\n", AT_EINVALID,
                 "1:13: partitions: expected an integer, got 'abc'");
    expect_error("http: 5\n", AT_EINVALID,
                 "1:7: http: expected a mapping of settings, got a scalar");
    expect_error("listen:\n  host: x\n", AT_EINVALID,
                 "2:3: listen: expected a value, got a mapping");
    expect_error("keys: {name: a}\n", AT_EINVALID, "1:7: keys: expected a list, got a mapping");
    expect_error("- a\n- b\n", AT_EINVALID,
                 "1:1: the config must be a mapping of settings, got a list");
    expect_error("partitions: 5000\n", AT_EINVALID,
                 "1:13: partitions: 5000 is out of range [0, 4096]");
    expect_error("http:\n  threads: 0\n", AT_EINVALID,
                 "2:12: http.threads: 0 is out of range [1, 256]");
    expect_error("listen: localhost\n", AT_EINVALID,
                 "1:9: listen: expected HOST:PORT (or [IPV6]:PORT), got 'localhost'");
    expect_error("listen: 127.0.0.1:70000\n", AT_EINVALID,
                 "1:9: listen: expected HOST:PORT (or [IPV6]:PORT), got '127.0.0.1:70000'");
    expect_error("data_dir: \"a\\0b\"\n", AT_EINVALID, "1:11: data_dir: contains a NUL byte");
}

static void test_error_enum(void **state)
{
    (void)state;
    expect_error("fsync: sometimes\n", AT_EINVALID,
                 "1:8: fsync: 'sometimes' is not one of always, batch or never");
    expect_error("log_level: verbose\n", AT_EINVALID,
                 "1:12: log_level: 'verbose' is not one of debug, info, warn or error");
    expect_error("keys:\n  - name: a\n    key: b\n    scopes: [read, write]\n", AT_EINVALID,
                 "4:20: keys.scopes: unknown scope 'write' (ingest, read or admin)");
    expect_error("mapping:\n  userid: customer\n", AT_EINVALID,
                 "2:3: mapping: 'userid' is not a canonical field (type, user_id, anonymous_id, "
                 "event_id, item_id, category, timestamp, session_id)");
}

static void test_error_size_duration(void **state)
{
    (void)state;
    expect_error("http:\n  max_body_bytes: 12XB\n", AT_EINVALID,
                 "2:19: http.max_body_bytes: expected a size like 512, 64KiB, 1MiB or 10GB, got "
                 "'12XB'");
    expect_error("dedup:\n  horizon: 10\n", AT_EINVALID,
                 "2:12: dedup.horizon: expected a duration like 250ms, 90s, 10m, 2h or 7d, got "
                 "'10'");
    expect_error("log: {retention: -1d}\n", AT_EINVALID,
                 "1:18: log.retention: expected a duration like 250ms, 90s, 10m, 2h or 7d, got "
                 "'-1d'");
    expect_error("http:\n  max_header_bytes: 10\n", AT_EINVALID,
                 "2:21: http.max_header_bytes: 10 is out of range [1024, 1048576]");
}

static void test_error_syntax(void **state)
{
    (void)state;
    expect_error("listen: [\n", AT_EPARSE,
                 "2:1: YAML syntax error: did not find expected node content while parsing a "
                 "flow node");
    expect_error("a: b\n c: d\n", AT_EPARSE,
                 "2:3: YAML syntax error: mapping values are not allowed in this context");
    expect_error_prefix("partitions: 1\ndata_dir: \"x\xff\"\n", AT_EPARSE,
                        "2:13: YAML syntax error");
    expect_error("partitions: 2\n---\nshards: 1\n", AT_EINVALID,
                 "2:1: only one YAML document is allowed");
}

static void test_error_duplicates_and_keys(void **state)
{
    (void)state;
    expect_error("partitions: 2\nshards: 1\npartitions: 3\n", AT_EINVALID,
                 "3:1: partitions is set twice (first at 1:1)");
    expect_error("keys:\n  - {name: a, key: k1, scopes: [read]}\n  - {name: a, key: k2, "
                 "scopes: [read]}\n",
                 AT_EINVALID, "3:5: keys: the name 'a' is used twice");
    expect_error("keys:\n  - {name: a, key: k1, scopes: [read]}\n  - {name: b, key: k1, "
                 "scopes: [read]}\n",
                 AT_EINVALID, "3:5: keys: 'b' has the same key as 'a'");
    expect_error("keys:\n  - {name: a, key: k1}\n", AT_EINVALID, "2:5: keys: 'scopes' is missing");
    expect_error("keys:\n  - {name: a, scopes: [read]}\n", AT_EINVALID,
                 "2:5: keys: 'key' is missing");
    expect_error("keys:\n  - {name: a, key: '', scopes: [read]}\n", AT_EINVALID,
                 "2:20: keys.key: must not be empty");
    expect_error("keys:\n  - {name: a, key: b, scopes: []}\n", AT_EINVALID,
                 "2:31: keys.scopes: must not be empty");
    expect_error("mapping: {type: a, type: b}\n", AT_EINVALID,
                 "1:20: mapping: 'type' is mapped twice");
    expect_error("schemas:\n  a: {type: object}\n  a: {type: object}\n", AT_EINVALID,
                 "3:3: schemas: 'a' is defined twice");
    expect_error("schemas:\n  a: string\n", AT_EINVALID,
                 "2:6: schemas.a: expected a mapping (a JSON Schema), got a scalar");
    expect_error("schemas:\n  a: {type: object, type: string}\n", AT_EINVALID,
                 "2:21: schemas: duplicate key 'type'");
    /* an alias cycle is cut by the depth limit */
    expect_error_prefix("schemas:\n  a: &x {p: *x}\n", AT_EINVALID,
                        "2:6: schemas: nested more than");
}

static void check_schema(const char *yaml, const char *json)
{
    at_config_t c;
    char err[512] = "";
    char text[2048];
    snprintf(text, sizeof text, "schemas:\n  t:\n%s", yaml);
    if (load(&c, text, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(c.nschemas, 1);
    assert_string_equal(c.schemas[0].type, "t");
    assert_int_equal(c.schemas[0].line, 2);
    assert_string_equal(c.schemas[0].json, json);
    at_config_free(&c);
}

static void test_schema_json(void **state)
{
    (void)state;
    check_schema("    type: object\n", "{\"type\":\"object\"}");
    /* plain numbers, booleans and nulls stay themselves; quoted ones are strings */
    check_schema("    a: 12\n    b: -1.5e3\n    c: '12'\n    d: true\n    e: \"false\"\n"
                 "    f: null\n    g: ~\n    h:\n    i: 0x10\n    j: 007\n    k: 1.\n",
                 "{\"a\":12,\"b\":-1.5e3,\"c\":\"12\",\"d\":true,\"e\":\"false\",\"f\":null,"
                 "\"g\":null,\"h\":null,\"i\":\"0x10\",\"j\":\"007\",\"k\":\"1.\"}");
    /* strings are escaped */
    check_schema("    pattern: '^a\"b\\\\c$'\n    d: \"tab\\there\\u00e9\"\n",
                 "{\"pattern\":\"^a\\\"b\\\\\\\\c$\",\"d\":\"tab\\there\xc3\xa9\"}");
    /* nesting, lists, empty containers */
    check_schema("    type: object\n    required: [user_id, item_id]\n    properties:\n"
                 "      price: {type: number, minimum: 0, maximum: 1000000}\n"
                 "      tags: {type: array, items: {enum: [a, 'b', 3]}}\n"
                 "      empty: {}\n      none: []\n",
                 "{\"type\":\"object\",\"required\":[\"user_id\",\"item_id\"],\"properties\":{"
                 "\"price\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1000000},"
                 "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\",3]}},"
                 "\"empty\":{},\"none\":[]}}");
}

static void test_overrides(void **state)
{
    (void)state;
    at_config_t c;
    char err[256];
    at_config_defaults(&c);
    assert_int_equal(at_config_set(&c, "http.max_body_bytes", "2MiB", err, sizeof err), 0);
    assert_int_equal(c.max_body_bytes, 2 << 20);
    assert_int_equal(at_config_set(&c, "http-max-body-bytes", "3MiB", err, sizeof err), 0);
    assert_int_equal(c.max_body_bytes, 3 << 20);
    assert_int_equal(at_config_set(&c, "http_max_body_bytes", "4MiB", err, sizeof err), 0);
    assert_int_equal(c.max_body_bytes, 4 << 20);
    assert_int_equal(at_config_set(&c, "fsync", "never", err, sizeof err), 0);
    assert_int_equal(c.fsync, AT_FSYNC_NEVER);
    assert_int_equal(at_config_set(&c, "data-dir", "/srv/x", err, sizeof err), 0);
    assert_string_equal(c.data_dir, "/srv/x");
    assert_int_equal(at_config_set(&c, "dedup.horizon", "1h30m", err, sizeof err), 0);
    assert_int_equal(c.dedup_horizon_ms, 5400000);
    assert_int_equal(
        at_config_set(&c, "http.cors-origins", "https://a, https://b,,", err, sizeof err), 0);
    assert_string_equal(c.cors_origins[0], "https://a");
    assert_string_equal(c.cors_origins[1], "https://b");
    assert_null(c.cors_origins[2]);

    assert_int_equal(at_config_set(&c, "no-such", "1", err, sizeof err), AT_EINVALID);
    assert_string_equal(err, "unknown setting 'no-such'");
    assert_int_equal(at_config_set(&c, "fsync", "maybe", err, sizeof err), AT_EINVALID);
    assert_string_equal(err, "fsync: 'maybe' is not one of always, batch or never");
    assert_int_equal(c.fsync, AT_FSYNC_NEVER);
    assert_int_equal(at_config_set(&c, "partitions", "-1", err, sizeof err), AT_EINVALID);
    assert_string_equal(err, "partitions: -1 is out of range [0, 4096]");
    assert_int_equal(at_config_set(&c, "partitions", "12x", err, sizeof err), AT_EINVALID);
    assert_int_equal(c.partitions, 0);
    assert_int_equal(at_config_set(&c, "keys", "x", err, sizeof err), AT_EINVALID);
    assert_string_equal(err, "keys can only be set in the config file");
    at_config_free(&c);
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t v;
    } ok[] = {
        {"0", 0},
        {"512", 512},
        {"512B", 512},
        {"64KiB", 65536},
        {"1MiB", 1 << 20},
        {"10GiB", 10LL << 30},
        {"1MB", 1000000},
        {"2kb", 2000},
        {"3 KiB", 3072},
        {"1TiB", 1LL << 40},
        {"5GB", 5000000000LL},
        {"9223372036854775807", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = -1;
        if (at_parse_size(ok[i].s, &v) != 0)
            fail_msg("rejected %s", ok[i].s);
        assert_int_equal(v, ok[i].v);
    }
    static const char *bad[] = {"",
                                "KiB",
                                "-1",
                                "1.5MiB",
                                "12XB",
                                "1 ",
                                "1  KiB",
                                "1KiBs",
                                "9223372036854775808",
                                "9007199254740992KiB",
                                "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v;
        if (at_parse_size(bad[i], &v) != AT_EINVALID)
            fail_msg("accepted %s", bad[i]);
    }
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"0", 0},          {"250ms", 250},     {"90s", 90000},
        {"10m", 600000},   {"2h", 7200000},    {"7d", 604800000},
        {"1w", 604800000}, {"1h30m", 5400000}, {"1m30s500ms", 90500},
        {"0s", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = -1;
        if (at_parse_duration_ms(ok[i].s, &v) != 0)
            fail_msg("rejected %s", ok[i].s);
        assert_int_equal(v, ok[i].ms);
    }
    static const char *bad[] = {"",
                                "10",
                                "s",
                                "-5s",
                                "5 s",
                                "5sec",
                                "1.5h",
                                "5S",
                                "h1",
                                "9999999999999999999d",
                                "106751991168d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v;
        if (at_parse_duration_ms(bad[i], &v) != AT_EINVALID)
            fail_msg("accepted %s", bad[i]);
    }
}

static int validate_listen(const char *listen, bool with_key, char *err, size_t errlen)
{
    at_config_t c;
    char text[256];
    snprintf(text, sizeof text, "listen: '%s'\n%s", listen,
             with_key ? "keys: [{name: a, key: secret, scopes: [admin]}]\n" : "");
    int rc = load(&c, text, err, errlen);
    if (rc == 0)
        rc = at_config_validate(&c, err, errlen);
    at_config_free(&c);
    return rc;
}

static void test_validate_loopback(void **state)
{
    (void)state;
    char err[512];
    static const char *loopback[] = {"127.0.0.1:8080", "127.9.9.9:1", "localhost:8080",
                                     "LOCALHOST:80",   "[::1]:8080",  "[::ffff:127.0.0.1]:80",
                                     "127.0.0.1:0"};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        if (validate_listen(loopback[i], false, err, sizeof err) != 0)
            fail_msg("%s: %s", loopback[i], err);
    }
    static const char *open[] = {"0.0.0.0:8080", ":8080",          "[::]:8080",
                                 "10.0.0.1:80",  "example.com:80", "128.0.0.1:80"};
    for (size_t i = 0; i < sizeof open / sizeof open[0]; i++) {
        assert_int_equal(validate_listen(open[i], false, err, sizeof err), AT_EINVALID);
        char want[512];
        snprintf(want, sizeof want,
                 "no API key is configured: refusing to listen on %s (development mode binds "
                 "to loopback only; add keys: to the config)",
                 open[i]);
        assert_string_equal(err, want);
        assert_int_equal(validate_listen(open[i], true, err, sizeof err), 0);
    }
}

static void test_validate_cross_fields(void **state)
{
    (void)state;
    at_config_t c;
    char err[512];
    assert_int_equal(load(&c, "partitions: 4\nshards: 8\n", err, sizeof err), 0);
    assert_int_equal(at_config_validate(&c, err, sizeof err), AT_EINVALID);
    assert_string_equal(err, "shards: 8 must be between 1 and partitions (4)");
    at_config_free(&c);
    assert_int_equal(load(&c, "http: {max_body_bytes: 16KiB}\n", err, sizeof err), 0);
    assert_int_equal(at_config_validate(&c, err, sizeof err), AT_EINVALID);
    assert_string_equal(err, "events.max_event_bytes (32768) is larger than http.max_body_bytes "
                             "(16384)");
    at_config_free(&c);
    assert_int_equal(load(&c, "data_dir: ''\n", err, sizeof err), 0);
    assert_int_equal(at_config_validate(&c, err, sizeof err), AT_EINVALID);
    assert_string_equal(err, "data_dir: must not be empty");
    at_config_free(&c);
}

static void test_load_file_errors(void **state)
{
    (void)state;
    at_config_t c;
    char err[512];
    at_config_defaults(&c);
    assert_int_equal(at_config_load_file(&c, "/nonexistent/attune.yaml", err, sizeof err), -ENOENT);
    assert_string_equal(err, "/nonexistent/attune.yaml: no such file or directory");
    at_config_free(&c);
}

/* Every documented setting has a row, and each default given in the doc
 * is accepted back by at_config_set under the documented name. */
static void test_doc(void **state)
{
    (void)state;
    at_buf_t b;
    at_buf_init(&b, 0);
    assert_int_equal(at_config_doc(&b), 0);
    assert_non_null(strstr(b.data, "| setting | type | default | description |\n"));
    assert_non_null(strstr(b.data, "| `http.max_body_bytes` | size | `1MiB` | "));
    assert_non_null(strstr(b.data, "| `fsync` | enum | `batch` | "));
    assert_non_null(strstr(b.data, "`keys`"));
    assert_non_null(strstr(b.data, "`schemas`"));
    at_config_t c;
    at_config_defaults(&c);
    int rows = 0;
    for (char *line = strstr(b.data, "\n| `"); line; line = strstr(line + 1, "\n| `")) {
        char name[64], def[64];
        if (sscanf(line, "\n| `%63[^`]` | %*[^|] | `%63[^`]`", name, def) != 2)
            continue;
        char err[256];
        if (at_config_set(&c, name, def, err, sizeof err) != 0)
            fail_msg("%s=%s: %s", name, def, err);
        rows++;
    }
    assert_true(rows >= 20);
    at_config_free(&c);
    at_buf_deinit(&b);
    at_buf_init(&b, 100);
    assert_int_equal(at_config_doc(&b), AT_ETOOBIG);
    at_buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_empty_and_layering),
        cmocka_unit_test(test_error_unknown_key),
        cmocka_unit_test(test_error_wrong_type),
        cmocka_unit_test(test_error_enum),
        cmocka_unit_test(test_error_size_duration),
        cmocka_unit_test(test_error_syntax),
        cmocka_unit_test(test_error_duplicates_and_keys),
        cmocka_unit_test(test_schema_json),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_validate_loopback),
        cmocka_unit_test(test_validate_cross_fields),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_doc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
