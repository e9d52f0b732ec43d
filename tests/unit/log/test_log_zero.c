/* test_log_zero.c - zeros written ahead of the appends (src/log/zero.c):
 * where the file system leaves preallocated space unwritten, the blocks
 * just ahead of the appends become written ones; the records, across rolls
 * and batches larger than a claim, read back intact; the zeros past the
 * end are not taken for a torn tail; and the thread keeps within its
 * distance. Also the early writeback of a log synced rarely
 * (opts.writeback): its appends reach the disk without a sync. */
#include "log_test.h"

#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <time.h>

#define P 3

/* Counts the unwritten extents of [from, from + len) of path's file, or -1
 * when the file system cannot say (no FIEMAP). sync: write dirty pages
 * first (FIEMAP_FLAG_SYNC); without it, a range only in the page cache
 * still shows as unwritten. */
static int unwritten_extents_of(const char *path, int64_t from, int64_t len, bool sync)
{
    enum { N = 64 };
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct fiemap *fm = calloc(1, sizeof *fm + N * sizeof(struct fiemap_extent));
    assert_non_null(fm);
    fm->fm_start = (uint64_t)from;
    fm->fm_length = (uint64_t)len;
    fm->fm_flags = sync ? FIEMAP_FLAG_SYNC : 0;
    fm->fm_extent_count = N;
    int rc = ioctl(fd, FS_IOC_FIEMAP, fm), n = 0;
    close(fd);
    for (uint32_t i = 0; rc == 0 && i < fm->fm_mapped_extents; i++)
        n += (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN) != 0;
    free(fm);
    return rc < 0 ? -1 : n;
}

static int unwritten_extents(const char *path, int64_t from, int64_t len)
{
    return unwritten_extents_of(path, from, len, true);
}

/* Whether the file system under dir leaves posix_fallocate'd space as
 * unwritten extents (ext4, XFS): only there is zeroing ahead worth it. */
static bool fs_has_unwritten(const char *dir)
{
    const char *path = lt_path(dir, "probe");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    bool ok = posix_fallocate(fd, 0, 1 << 20) == 0;
    close(fd);
    ok = ok && unwritten_extents(path, 0, 1 << 20) > 0;
    unlink(path);
    return ok;
}

/* A new temporary directory on a file system with unwritten extents, or
 * the test skipped (why: what cannot be seen without them). */
static char *tmpdir_unwritten(const char *why)
{
    char *dir = lt_tmpdir();
    if (!fs_has_unwritten(dir)) {
        lt_rmdir(dir);
        print_message("file system without unwritten extents: %s\n", why);
        skip();
    }
    return dir;
}

static at_log_t *open_zero(const char *dir, int64_t seg, int64_t ahead)
{
    at_log_opts_t o = {.partitions = P, .segment_bytes = seg, .zero_ahead = ahead};
    return lt_open_opts(dir, &o);
}

static uint64_t zeroed(at_log_t *log)
{
    at_log_stats_t st;
    at_log_stats(log, &st);
    return st.zeroed_bytes;
}

static void test_blocks_ahead_written(void **state)
{
    (void)state;
    char *dir = tmpdir_unwritten("nothing to zero");
    const int64_t seg = 8 << 20, ahead = 1 << 20; /* claims of 256 KiB */
    at_log_t *log = open_zero(dir, seg, ahead);
    enum { N = 200 };
    lt_rec_t recs[N];
    for (int i = 0; i < N; i++)
        lt_rec_make(&recs[i], i % P, i, 900);
    for (int i = 0; i < N; i += 10) {
        assert_int_equal(lt_append(log, recs + i, 10), 0);
        assert_int_equal(at_log_sync(log), 0);
    }
    at_log_stats_t st;
    at_log_stats(log, &st);
    int64_t end = (int64_t)st.bytes; /* one segment: its logical end */
    /* The thread keeps a claim's length clear of the end, then zeros up to
     * `ahead` past it. */
    const char *path = lt_seg_path(dir, 0);
    int64_t from = (end + (256 << 10) + 4095) / 4096 * 4096;
    for (int i = 0; i < 1000 && unwritten_extents(path, from, ahead / 2) != 0; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    assert_int_equal(unwritten_extents(path, from, ahead / 2), 0);
    uint64_t z = zeroed(log);
    assert_true(z >= (uint64_t)(ahead / 2));
    assert_true(z <= (uint64_t)(end + ahead + (256 << 10)));
    /* far ahead it is still the preallocated space */
    assert_true(unwritten_extents(path, seg - (1 << 20), 1 << 20) > 0);
    at_log_close(log);
    /* Zeros past the end are what a segment holds there: no torn tail. */
    log = lt_open(dir, 0, seg, false);
    at_log_stats(log, &st);
    assert_int_equal(st.truncated_bytes, 0);
    assert_int_equal(st.zeroed_bytes, 0);
    lt_expect(log, NULL, recs, N);
    at_log_close(log);
    for (int i = 0; i < N; i++)
        lt_rec_free(&recs[i]);
    lt_rmdir(dir);
}

/* Small segments and a small distance: many rolls, and batches larger
 * than a claim (16 KiB here) that can catch the thread's claim and wait
 * for it. Everything reads back, before and after a reopen. */
static void test_records_intact(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    const int64_t seg = 256 << 10, ahead = 64 << 10;
    at_log_t *log = open_zero(dir, seg, ahead);
    enum { N = 3000 };
    lt_rec_t *recs = calloc(N, sizeof *recs);
    assert_non_null(recs);
    uint32_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        lt_rec_make(&recs[i], i % P, i, 50 + (x >> 16) % 700);
    }
    for (int i = 0; i < N;) {
        x = x * 1103515245u + 12345u;
        int n = (x >> 16) % 9 == 0 ? 80 : 1 + (int)((x >> 16) % 12); /* 80: ~30 KiB */
        n = AT_MIN(n, N - i);
        assert_int_equal(lt_append(log, recs + i, (size_t)n), 0);
        assert_int_equal(at_log_sync(log), 0);
        i += n;
        if ((i & 15) == 0) /* let the thread run now and then */
            nanosleep(&(struct timespec){0, 200 * 1000}, NULL);
    }
    lt_expect(log, NULL, recs, N);
    at_log_close(log);
    assert_true(lt_count_files(dir, ".seg") > 4);
    log = lt_open(dir, 0, seg, false);
    at_log_stats_t st;
    at_log_stats(log, &st);
    assert_int_equal(st.truncated_bytes, 0);
    lt_expect(log, NULL, recs, N);
    at_log_close(log);
    lt_recs_free(recs, N);
    lt_rmdir(dir);
}

/* Off by default: no thread, no zeros. */
static void test_off(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_t *log = lt_open(dir, P, 1 << 20, false);
    lt_rec_t r;
    lt_rec_make(&r, 0, 0, 100);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(lt_append(log, &r, 1), 0);
        assert_int_equal(at_log_sync(log), 0);
    }
    nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    assert_int_equal(zeroed(log), 0);
    at_log_close(log);
    lt_rec_free(&r);
    lt_rmdir(dir);
}

/* opts.writeback: appends never synced still reach the disk, a whole
 * number of pages each time that much was appended; with 0 they wait in
 * the page cache (for the sync, or the kernel's flusher much later). */
static void test_writeback(void **state)
{
    (void)state;
    char *dir = tmpdir_unwritten("cannot see the writeback");
    const int64_t seg = 8 << 20, wb = 256 << 10;
    enum { N = 1200 }; /* 900-byte values: about 1.1 MB */
    lt_rec_t *recs = calloc(N, sizeof *recs);
    assert_non_null(recs);
    for (int i = 0; i < N; i++)
        lt_rec_make(&recs[i], i % P, i, 900);
    for (int on = 1; on >= 0; on--) {
        char sub[256];
        assert_true(snprintf(sub, sizeof sub, "%s/wb%d", dir, on) < (int)sizeof sub);
        assert_int_equal(mkdir(sub, 0755), 0);
        at_log_opts_t o = {.partitions = P, .segment_bytes = seg, .writeback = on ? wb : 0};
        at_log_t *log = lt_open_opts(sub, &o);
        for (int i = 0; i < N; i += 10)
            assert_int_equal(lt_append(log, recs + i, 10), 0);
        at_log_stats_t st;
        at_log_stats(log, &st);
        int64_t end = (int64_t)st.bytes;
        assert_true(end > 4 * wb);
        const char *path = lt_seg_path(sub, 0);
        if (on) {
            /* started up to a page boundary within wb of the end */
            assert_true(st.writeback_bytes > (uint64_t)(end - wb - 4096));
            assert_true(st.writeback_bytes <= (uint64_t)end);
            assert_int_equal(st.writeback_bytes % 4096, 0);
            int64_t to = (int64_t)st.writeback_bytes / 4096 * 4096;
            for (int i = 0; i < 1000 && unwritten_extents_of(path, 0, to, false) != 0; i++)
                nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
            assert_int_equal(unwritten_extents_of(path, 0, to, false), 0);
        } else {
            assert_int_equal(st.writeback_bytes, 0);
            assert_true(unwritten_extents_of(path, 0, end, false) > 0);
        }
        assert_int_equal(at_log_sync(log), 0);
        lt_expect(log, NULL, recs, N);
        at_log_close(log);
    }
    lt_recs_free(recs, N);
    lt_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_ahead_written),
        cmocka_unit_test(test_records_intact),
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_writeback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
