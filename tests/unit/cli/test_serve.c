/* test_serve.c - `attune serve`'s options: every way out before the engine
 * opens (help, a bad option, a stray argument, too many settings) frees the
 * settings copied so far. serve.c allocates through cmocka here, so a block
 * left behind fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../../src/cli/at_cli.h"
#include "at_serve.h"
#include "attune.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define malloc(n) test_malloc(n)
#define free(p) test_free(p)
#include "../../../src/cli/serve.c"
#undef malloc
#undef free

static int serve(int argc, const char **argv)
{
    return at_cli_serve(argc, (char **)argv);
}

static void test_help_after_settings(void **state)
{
    (void)state;
    const char *argv[] = {"serve", "--set", "http.max_body_bytes=2MiB", "-l", "127.0.0.1:1", "-h"};
    assert_int_equal(serve(6, argv), 0);
}

static void test_bad_option_after_settings(void **state)
{
    (void)state;
    const char *argv[] = {"serve", "--partitions", "4", "--set", "shards=2", "--no-such-option"};
    assert_int_equal(serve(6, argv), 2);
}

static void test_stray_argument(void **state)
{
    (void)state;
    const char *argv[] = {"serve", "--fsync", "always", "stray"};
    assert_int_equal(serve(4, argv), 2);
}

static void test_too_many_settings(void **state)
{
    (void)state;
    const char *argv[1 + 2 * 70];
    int argc = 0;
    argv[argc++] = "serve";
    while (argc < (int)(sizeof argv / sizeof argv[0])) {
        argv[argc++] = "--set";
        argv[argc++] = "shards=1";
    }
    assert_int_equal(serve(argc, argv), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_after_settings),
        cmocka_unit_test(test_bad_option_after_settings),
        cmocka_unit_test(test_stray_argument),
        cmocka_unit_test(test_too_many_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
