/* log_test.h - helpers shared by the log's unit tests: scratch directories,
 * deterministic records, reading a log back, poking at segment files. */
#ifndef LOG_TEST_H
#define LOG_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "at_core.h"
#include "at_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates a fresh directory under $AT_TEST_TMP (or /tmp); returns it owned. */
static inline char *lt_tmpdir(void)
{
    const char *base = getenv("AT_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    assert_int_equal(at_mkdirs(base, 0755), 0);
    char *path = malloc(strlen(base) + 32);
    assert_non_null(path);
    sprintf(path, "%s/log-XXXXXX", base);
    assert_non_null(mkdtemp(path));
    return path;
}

static inline int lt_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

/* Removes dir and everything in it, and frees it. */
static inline void lt_rmdir(char *dir)
{
    nftw(dir, lt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* Returns dir + "/" + name in a static buffer. */
static inline const char *lt_path(const char *dir, const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

/* Returns the path of segment seq in a static buffer. */
static inline const char *lt_seg_path(const char *dir, unsigned long long seq)
{
    char name[64];
    snprintf(name, sizeof name, "%020llu.seg", seq);
    return lt_path(dir, name);
}

/* Counts the files in dir whose name ends in suffix. */
static inline int lt_count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l >= sl && strcmp(e->d_name + l - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Opens a log with opts, asserting success. */
static inline at_log_t *lt_open_opts(const char *dir, const at_log_opts_t *o)
{
    char err[256] = "";
    at_log_t *log = NULL;
    int rc = at_log_open(&log, dir, o, err, sizeof err);
    if (rc)
        fail_msg("at_log_open(%s): %s: %s", dir, at_strerror(rc), err);
    return log;
}

/* Opens a log, asserting success. */
static inline at_log_t *lt_open(const char *dir, int partitions, int64_t seg_bytes, bool ro)
{
    at_log_opts_t o = {.partitions = partitions, .segment_bytes = seg_bytes, .read_only = ro};
    return lt_open_opts(dir, &o);
}

/* A record with owned contents, for comparing what was written with what
 * is read back. */
typedef struct lt_rec {
    at_rec_t r;
    char key[64];
    char id[64];
    char *value;
} lt_rec_t;

/* Fills a deterministic record number i of partition p with a value of
 * vlen bytes. */
static inline void lt_rec_make(lt_rec_t *t, int p, int i, size_t vlen)
{
    memset(t, 0, sizeof *t);
    snprintf(t->key, sizeof t->key, "u:user-%d-%d", p, i % 7);
    snprintf(t->id, sizeof t->id, "ev-%08d", i);
    t->value = malloc(vlen + 1);
    assert_non_null(t->value);
    for (size_t k = 0; k < vlen; k++)
        t->value[k] = (char)('a' + (i * 7 + (int)k) % 26);
    t->r = (at_rec_t){.partition = p,
                      .type = (uint8_t)(1 + i % 8),
                      .version = 1,
                      .flags = (uint16_t)(i % 4),
                      .recv_ms = 1700000000000 + i,
                      .ts_ms = 1700000000000 + i - 5,
                      .key = t->key,
                      .key_len = (uint32_t)strlen(t->key),
                      .id = t->id,
                      .id_len = (uint32_t)strlen(t->id),
                      .value = t->value,
                      .value_len = (uint32_t)vlen};
}

static inline void lt_rec_free(lt_rec_t *t)
{
    free(t->value);
    t->value = NULL;
}

/* Frees n records of a heap array and the array. */
static inline void lt_recs_free(lt_rec_t *recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        lt_rec_free(&recs[i]);
    free(recs);
}

/* Appends the records of ts (their at_rec_t copied out and back so offsets
 * land in ts). Returns at_log_append's result. */
static inline int lt_append(at_log_t *log, lt_rec_t *ts, size_t n)
{
    at_rec_t *rs = calloc(n ? n : 1, sizeof *rs);
    assert_non_null(rs);
    for (size_t i = 0; i < n; i++)
        rs[i] = ts[i].r;
    int rc = at_log_append(log, rs, n);
    if (rc == 0)
        for (size_t i = 0; i < n; i++)
            ts[i].r.offset = rs[i].offset;
    free(rs);
    return rc;
}

/* Asserts that a record read back equals the one written. */
static inline void lt_rec_check(const at_rec_t *got, const at_rec_t *want)
{
    assert_int_equal(got->partition, want->partition);
    assert_int_equal(got->offset, want->offset);
    assert_int_equal(got->type, want->type);
    assert_int_equal(got->version, want->version);
    assert_int_equal(got->flags, want->flags);
    assert_int_equal(got->recv_ms, want->recv_ms);
    assert_int_equal(got->ts_ms, want->ts_ms);
    assert_int_equal(got->key_len, want->key_len);
    assert_int_equal(got->id_len, want->id_len);
    assert_int_equal(got->value_len, want->value_len);
    assert_memory_equal(got->key, want->key, want->key_len);
    assert_memory_equal(got->id, want->id, want->id_len);
    assert_memory_equal(got->value, want->value, want->value_len);
}

/* Reads the log (records at/after from[]) and asserts it holds exactly
 * want[0..n), in order. */
static inline void lt_expect(at_log_t *log, const int64_t *from, const lt_rec_t *want, size_t n)
{
    at_log_iter_t *it = NULL;
    assert_int_equal(at_log_iter_open(log, from, &it), 0);
    at_rec_t rec;
    size_t i = 0;
    int rc;
    while ((rc = at_log_iter_next(it, &rec)) == 1) {
        if (i >= n)
            fail_msg("extra record %zu: p=%d off=%lld", i, rec.partition, (long long)rec.offset);
        lt_rec_check(&rec, &want[i].r);
        i++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(i, n);
    at_log_iter_close(it);
}

/* Counts the records of the log (asserting the iterator ends cleanly). */
static inline size_t lt_count(at_log_t *log)
{
    at_log_iter_t *it = NULL;
    assert_int_equal(at_log_iter_open(log, NULL, &it), 0);
    at_rec_t rec;
    size_t n = 0;
    int rc;
    while ((rc = at_log_iter_next(it, &rec)) == 1)
        n++;
    assert_int_equal(rc, 0);
    at_log_iter_close(it);
    return n;
}

/* Reads a whole file; returns it owned with its size in *len. */
static inline uint8_t *lt_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *p = malloc((size_t)st.st_size + 1);
    assert_non_null(p);
    assert_int_equal(pread(fd, p, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return p;
}

/* Overwrites n bytes at pos of the file at path (created if missing). */
static inline void lt_poke(const char *path, int64_t pos, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, n, pos), (ssize_t)n);
    close(fd);
}

/* Xors the byte at pos of the file at path with x. */
static inline void lt_flip(const char *path, int64_t pos, uint8_t x)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, pos), 1);
    b ^= x;
    assert_int_equal(pwrite(fd, &b, 1, pos), 1);
    close(fd);
}

/* Zeroes [from, to) of the file at path. */
static inline void lt_zero(const char *path, int64_t from, int64_t to)
{
    size_t n = (size_t)(to - from);
    void *z = calloc(1, n ? n : 1);
    lt_poke(path, from, z, n);
    free(z);
}

#endif
