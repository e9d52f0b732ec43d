/* test_config_sinks.c - the sinks section: defaults, every field, and
 * errors that name the line and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "at_config.h"
#include "at_core.h"

static int load(at_config_t *c, const char *text, char *err, size_t errlen)
{
    at_config_defaults(c);
    return at_config_load_text(c, text, strlen(text), err, errlen);
}

static void test_defaults_and_fields(void **state)
{
    (void)state;
    at_config_t c;
    char err[512];
    assert_int_equal(load(&c, "", err, sizeof err), 0);
    assert_int_equal(c.sinks_max_age_ms, 3600000);
    assert_int_equal(c.nwebhooks, 0);
    at_config_free(&c);
    const char *y = "sinks:\n"
                    "  max_age: 10m\n"
                    "  webhooks:\n"
                    "    - name: crm\n"
                    "      url: https://crm.example.com/hook\n"
                    "      secret: s3cr3t-key\n"
                    "    - name: slack\n"
                    "      url: http://127.0.0.1:9000/\n"
                    "      secret: another-secret\n"
                    "      events: [trigger]\n"
                    "      triggers: [cart_abandoned]\n"
                    "      timeout: 2s\n"
                    "      max_attempts: 3\n"
                    "      backoff: 100ms\n"
                    "      backoff_max: 2s\n"
                    "      concurrency: 1\n"
                    "      breaker_failures: 2\n"
                    "      breaker_cooldown: 5s\n";
    assert_int_equal(load(&c, y, err, sizeof err), 0);
    assert_int_equal(c.sinks_max_age_ms, 600000);
    assert_int_equal(c.nwebhooks, 2);
    assert_string_equal(c.webhooks[0].name, "crm");
    assert_int_equal(c.webhooks[0].events, AT_SINK_EV_ALL);
    assert_int_equal(c.webhooks[0].timeout_ms, 5000);
    assert_int_equal(c.webhooks[0].max_attempts, 8);
    assert_int_equal(c.webhooks[0].backoff_ms, 1000);
    assert_int_equal(c.webhooks[0].backoff_max_ms, 300000);
    assert_int_equal(c.webhooks[0].concurrency, 4);
    assert_null(c.webhooks[0].segments);
    assert_int_equal(c.webhooks[1].events, AT_SINK_EV_TRIGGER);
    assert_string_equal(c.webhooks[1].triggers[0], "cart_abandoned");
    assert_null(c.webhooks[1].triggers[1]);
    assert_int_equal(c.webhooks[1].timeout_ms, 2000);
    assert_int_equal(c.webhooks[1].max_attempts, 3);
    assert_int_equal(c.webhooks[1].concurrency, 1);
    assert_int_equal(c.webhooks[1].breaker_failures, 2);
    assert_int_equal(c.webhooks[1].breaker_cooldown_ms, 5000);
    at_config_free(&c);
}

static void expect_error(const char *y, const char *want)
{
    at_config_t c;
    char err[512];
    assert_int_equal(load(&c, y, err, sizeof err), AT_EINVALID);
    if (!strstr(err, want))
        fail_msg("got '%s', want '%s'", err, want);
    at_config_free(&c);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("sinks:\n  webhooks:\n    - name: a\n      url: ftp://x\n      secret: 12345678\n",
                 "4:12: sinks.webhooks.url");
    expect_error("sinks:\n  webhooks:\n    - name: a\n      url: http://x\n",
                 "3:7: sinks.webhooks: 'secret' is missing");
    expect_error("sinks:\n  webhooks:\n    - name: a\n      url: http://x\n      secret: 12345678\n"
                 "      events: [segment_enter, bogus]\n",
                 "6:31: sinks.webhooks.events: unknown type 'bogus'");
    expect_error("sinks:\n  webhooks:\n    - {name: a, url: 'http://x', secret: 12345678, "
                 "max_attempts: 0}\n",
                 "sinks.webhooks.max_attempts: 0 is out of range");
    expect_error("sinks:\n  webhooks:\n    - {name: a, url: 'http://x', secret: 12345678}\n"
                 "    - {name: a, url: 'http://y', secret: 12345678}\n",
                 "4:7: sinks.webhooks: the name 'a' is used twice");
    expect_error("sinks:\n  webhooks:\n    - {name: 'a b', url: 'http://x', secret: 12345678}\n",
                 "sinks.webhooks.name");
    expect_error("sinks:\n  webhooks:\n    - {name: a, url: 'http://x', secret: 12345678, "
                 "timeout: soon}\n",
                 "sinks.webhooks.timeout: 'soon' is not a duration");
    expect_error("sinks:\n  webhooks: nope\n", "2:13: sinks.webhooks: expected a list");
    expect_error("sinks:\n  max_age: forever\n", "2:12: ");
}

static void test_not_a_flag(void **state)
{
    (void)state;
    at_config_t c;
    char err[256];
    at_config_defaults(&c);
    assert_int_equal(at_config_set(&c, "sinks.webhooks", "x", err, sizeof err), AT_EINVALID);
    assert_int_equal(at_config_set(&c, "sinks.max_age", "0", err, sizeof err), 0);
    assert_int_equal(c.sinks_max_age_ms, 0);
    at_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_fields),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_not_a_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
