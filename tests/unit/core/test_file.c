/* test_file.c - files (atomic writes, capped reads, mkdirs), error
 * strings and the logfmt logger. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "at_core.h"

static char tmpdir[512];

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("AT_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    if (at_mkdirs(base, 0755) != 0)
        return -1;
    snprintf(tmpdir, sizeof tmpdir, "%s/core-file-XXXXXX", base);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static void test_write_read(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/a.txt", tmpdir);
    assert_int_equal(at_file_write_atomic(path, "hello", 5), 0);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(at_file_read(path, 0, &data, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal(data, "hello");
    free(data);
    /* overwrite replaces the content whole */
    assert_int_equal(at_file_write_atomic(path, "bye", 3), 0);
    assert_int_equal(at_file_read(path, 3, &data, &len), 0);
    assert_string_equal(data, "bye");
    free(data);
    /* a cap below the size refuses */
    assert_int_equal(at_file_read(path, 2, &data, &len), AT_ETOOBIG);
    /* empty file */
    assert_int_equal(at_file_write_atomic(path, "", 0), 0);
    assert_int_equal(at_file_read(path, 10, &data, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);
    /* a path without a directory part is relative to the working directory */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    assert_int_equal(at_file_write_atomic("rel.txt", "r", 1), 0);
    assert_int_equal(chdir(cwd), 0);
    snprintf(path, sizeof path, "%s/rel.txt", tmpdir);
    assert_int_equal(at_file_read(path, 0, &data, &len), 0);
    assert_string_equal(data, "r");
    free(data);
    /* no tmp file is left behind */
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s/a.txt.tmp.%ld.0", tmpdir, (long)getpid());
    assert_int_equal(access(tmp, F_OK), -1);
}

static void test_read_large_and_errors(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/big.bin", tmpdir);
    size_t n = 300000;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 31);
    assert_int_equal(at_file_write_atomic(path, big, n), 0);
    char *data;
    size_t len;
    assert_int_equal(at_file_read(path, n, &data, &len), 0);
    assert_int_equal(len, n);
    assert_memory_equal(data, big, n);
    free(data);
    free(big);
    snprintf(path, sizeof path, "%s/missing", tmpdir);
    assert_int_equal(at_file_read(path, 0, &data, &len), -ENOENT);
    assert_int_equal(at_file_read(tmpdir, 0, &data, &len), -EISDIR);
    snprintf(path, sizeof path, "%s/nodir/x", tmpdir);
    assert_int_equal(at_file_write_atomic(path, "x", 1), -ENOENT);
}

static void test_mkdirs(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/x/y/z/", tmpdir);
    assert_int_equal(at_mkdirs(path, 0755), 0);
    assert_int_equal(at_mkdirs(path, 0755), 0); /* exists: fine */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(at_fsync_dir(path), 0);
    snprintf(path, sizeof path, "%s/file", tmpdir);
    assert_int_equal(at_file_write_atomic(path, "x", 1), 0);
    assert_int_equal(at_mkdirs(path, 0755), -ENOTDIR);
    assert_int_equal(at_fsync_dir("/nonexistent-dir-for-test"), -ENOENT);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(at_strerror(0), "success");
    assert_string_equal(at_strerror(AT_ETOOBIG), "size limit exceeded");
    assert_string_equal(at_strerror(AT_EUNAVAIL), "temporarily unavailable");
    assert_string_equal(at_strerror(AT_EPARSE), "input could not be parsed");
    assert_string_equal(at_strerror(-ENOENT), "no such file or directory");
    assert_string_equal(at_strerror(-ENOSPC), "no space left on device");
    assert_string_equal(at_strerror(-9999), "system error");
    assert_string_equal(at_strerror(-10000), "system error");
    assert_string_equal(at_strerror(-20000), "system error");
    assert_string_equal(at_strerror(ENOENT), "no such file or directory");
}

static void test_error_set(void **state)
{
    (void)state;
    at_error_t e;
    assert_int_equal(
        at_error_set(&e, AT_EINVALID, "invalid_event", "timestamp", "bad %s %d", "value", 7),
        AT_EINVALID);
    assert_string_equal(e.code, "invalid_event");
    assert_string_equal(e.field, "timestamp");
    assert_string_equal(e.message, "bad value 7");
    assert_int_equal(at_error_set(&e, AT_ETOOBIG, "too_big", NULL, "x"), AT_ETOOBIG);
    assert_string_equal(e.field, "");
    assert_int_equal(at_error_set(NULL, AT_EAUTH, "a", NULL, "x"), AT_EAUTH);
}

/* Runs at_logf with stderr pointed at a file and returns what it wrote. */
static char *capture_log(void (*fn)(void))
{
    char path[600];
    snprintf(path, sizeof path, "%s/log.txt", tmpdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    char *data;
    size_t len;
    assert_int_equal(at_file_read(path, 1 << 20, &data, &len), 0);
    return data;
}

static void log_some(void)
{
    at_logf_level(AT_LOG_INFO);
    AT_DEBUG("hidden", "k=%d", 1);
    AT_INFO("hello \"world\"\nnext", "port=%d path=%s", 8080, "/x");
    at_logf(AT_LOG_ERROR, "bare", NULL);
    at_logf_level(AT_LOG_ERROR);
    AT_WARN("dropped", "%s", "");
    at_logf_level(AT_LOG_INFO);
}

static void test_logf(void **state)
{
    (void)state;
    char *out = capture_log(log_some);
    assert_null(strstr(out, "hidden"));
    assert_null(strstr(out, "dropped"));
    char *l1 = strstr(out, "level=info msg=\"hello \\\"world\\\"\\nnext\" port=8080 path=/x\n");
    assert_non_null(l1);
    assert_int_equal(strncmp(out, "ts=", 3), 0);
    assert_int_equal(out[3 + 23], 'Z');
    assert_non_null(strstr(out, "level=error msg=\"bare\"\n"));
    /* exactly two lines */
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read), cmocka_unit_test(test_read_large_and_errors),
        cmocka_unit_test(test_mkdirs),     cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_error_set),  cmocka_unit_test(test_logf),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
