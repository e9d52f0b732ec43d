/* test_store.c - a sink's files on disk: positions written and read back,
 * a corrupt position file refused, dead letters counted across a reopen
 * and a torn tail cut at open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sinks_int.h"

static char dir[512];

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("AT_TEST_TMP");
    (void)snprintf(dir, sizeof dir, "%s/sinks_store.XXXXXX", tmp ? tmp : "/tmp");
    if (tmp)
        (void)at_mkdirs(tmp, 0755);
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    (void)snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1; /* NOLINT(cert-env33-c): a test's own temp dir */
}

static at_config_webhook_t hook = {.name = "crm"};

static void sink_open(at_sink_t *k, int expect)
{
    memset(k, 0, sizeof *k);
    k->cfg = &hook;
    k->partitions = 4;
    k->pos = calloc(4, sizeof *k->pos);
    k->next_read = calloc(4, sizeof *k->next_read);
    char err[256];
    assert_int_equal(at_sinks__open_files(k, dir, err, sizeof err), expect);
}

static void sink_close(at_sink_t *k)
{
    at_sinks__close_files(k);
    free(k->pos);
    free(k->next_read);
}

static void test_positions(void **state)
{
    (void)state;
    at_sink_t k;
    sink_open(&k, 0);
    for (int p = 0; p < 4; p++)
        assert_int_equal(k.pos[p], 0);
    int64_t want[4] = {7, 0, 123456789012LL, 3};
    memcpy(k.pos, want, sizeof want);
    assert_int_equal(at_sinks__save(&k), 0);
    sink_close(&k);
    sink_open(&k, 0);
    for (int p = 0; p < 4; p++) {
        assert_int_equal(k.pos[p], want[p]);
        assert_int_equal(k.next_read[p], want[p]);
    }
    sink_close(&k);
    char path[700];
    (void)snprintf(path, sizeof path, "%s/sinks/crm/position", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    (void)fputs("v1 5 1 2 3 4 5\n", f); /* another partition count */
    (void)fclose(f);
    sink_open(&k, AT_ECORRUPT);
    sink_close(&k);
    assert_int_equal(unlink(path), 0);
}

static void test_dead_letters_and_torn_tail(void **state)
{
    (void)state;
    at_sink_t k;
    sink_open(&k, 0);
    at_sink_item_t it = {.partition = 1, .offset = 9, .seq = 4, .attempts = 8, .last_status = 503};
    char json[] = "{\"id\":\"abc\",\"type\":\"trigger\"}";
    it.json = json;
    it.len = strlen(json);
    (void)snprintf(it.id, sizeof it.id, "abc");
    (void)snprintf(it.last_error, sizeof it.last_error, "HTTP 503");
    for (int i = 0; i < 3; i++)
        at_sinks__record(&k, true, &it, "max_attempts");
    at_sinks__record(&k, false, &it, "max_age");
    assert_int_equal(atomic_load(&k.a_dead), 3);
    uint64_t end = k.dead_end;
    assert_int_equal(at_sinks__save(&k), 0);
    sink_close(&k);
    /* a crash in the middle of a fourth append */
    char path[700];
    (void)snprintf(path, sizeof path, "%s/sinks/crm/dead", dir);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    (void)fwrite("\x40\x00\x00\x00\x01\x02\x03\x04{\"id\":", 1, 14, f);
    (void)fclose(f);
    sink_open(&k, 0);
    assert_int_equal(k.dead_end, end);
    assert_int_equal(atomic_load(&k.a_dead), 3);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(at_sinks__read_dead(&k, &data, &len), 0);
    assert_int_equal(len, end); /* cut */
    assert_non_null(strstr(data + 8, "\"reason\":\"max_attempts\",\"attempts\":8,\"status\":503"));
    assert_non_null(strstr(data + 8, "\"output\":{\"id\":\"abc\",\"type\":\"trigger\"}}"));
    free(data);
    sink_close(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_dead_letters_and_torn_tail),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
