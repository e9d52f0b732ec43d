/* test_log_recovery.c - what a crash or a failing disk leaves behind: torn
 * and garbled tails, stale records behind garbage, half-created segments,
 * and appends that fail part-way (RLIMIT_FSIZE makes writes fail with
 * EFBIG, standing in for a full or failing disk). */
#include "log_test.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>

#define SEG (64 * 1024)
#define NREC 5

/* Writes NREC records (partitions alternate) into a new log in dir and
 * closes it. */
static void build(const char *dir, lt_rec_t *recs, int p0_only)
{
    at_log_t *log = lt_open(dir, 2, SEG, false);
    for (int i = 0; i < NREC; i++) {
        lt_rec_make(&recs[i], p0_only ? 0 : i % 2, i, 40);
        assert_int_equal(lt_append(log, &recs[i], 1), 0);
    }
    assert_int_equal(at_log_sync(log), 0);
    at_log_close(log);
}

/* File position where record i starts (all in segment 0). */
static int64_t rec_pos(const lt_rec_t *recs, int i)
{
    int64_t pos = (int64_t)at_log_seg_header_bytes(2);
    for (int k = 0; k < i; k++)
        pos += (int64_t)at_log_rec_size(&recs[k].r);
    return pos;
}

static void free_recs(lt_rec_t *recs, int n)
{
    for (int i = 0; i < n; i++)
        lt_rec_free(&recs[i]);
}

/* After damage to the last record: reopening keeps exactly the first
 * NREC-1, offsets continue from there, and new records read back right. */
static void check_recovered(const char *dir, lt_rec_t *recs, uint64_t min_cut, uint64_t max_cut)
{
    at_log_t *log = lt_open(dir, 2, SEG, false);
    at_log_stats_t st;
    at_log_stats(log, &st);
    assert_in_range(st.truncated_bytes, min_cut, max_cut);
    lt_expect(log, NULL, recs, NREC - 1);
    assert_int_equal(at_log_next_offset(log, recs[NREC - 1].r.partition), recs[NREC - 1].r.offset);
    lt_rec_t fresh[NREC + 2];
    memcpy(fresh, recs, (NREC - 1) * sizeof *recs);
    lt_rec_make(&fresh[NREC - 1], 1, 100, 7);
    lt_rec_make(&fresh[NREC], 1, 101, 70);
    assert_int_equal(lt_append(log, &fresh[NREC - 1], 2), 0);
    assert_int_equal(fresh[NREC - 1].r.offset, 2);
    assert_int_equal(at_log_sync(log), 0);
    at_log_close(log);
    log = lt_open(dir, 2, SEG, false);
    at_log_stats(log, &st);
    assert_int_equal(st.truncated_bytes, 0);
    lt_expect(log, NULL, fresh, NREC + 1);
    at_log_close(log);
    lt_rec_free(&fresh[NREC - 1]);
    lt_rec_free(&fresh[NREC]);
}

static void test_torn_tail_truncated(void **state)
{
    (void)state;
    lt_rec_t recs[NREC];
    char *probe = lt_tmpdir();
    build(probe, recs, 0);
    int64_t start = rec_pos(recs, NREC - 1), end = rec_pos(recs, NREC);
    lt_rmdir(probe);
    free_recs(recs, NREC);
    for (int64_t cut = start; cut < end; cut++) {
        char *dir = lt_tmpdir();
        build(dir, recs, 0);
        assert_int_equal(truncate(lt_seg_path(dir, 0), cut), 0);
        check_recovered(dir, recs, cut > start, (uint64_t)(cut - start));
        free_recs(recs, NREC);
        lt_rmdir(dir);
    }
}

/* The file keeps its size but the end of the last record never reached
 * the disk. */
static void test_torn_tail_zeroed(void **state)
{
    (void)state;
    lt_rec_t recs[NREC];
    char *dir = lt_tmpdir();
    build(dir, recs, 0);
    int64_t start = rec_pos(recs, NREC - 1), end = rec_pos(recs, NREC);
    size_t len;
    uint8_t *orig = lt_read_file(lt_seg_path(dir, 0), &len);
    for (int64_t cut = start; cut < end; cut++) {
        lt_poke(lt_seg_path(dir, 0), 0, orig, len);
        assert_int_equal(truncate(lt_seg_path(dir, 0), (off_t)len), 0);
        lt_zero(lt_seg_path(dir, 0), cut, end);
        check_recovered(dir, recs, cut > start, (uint64_t)(cut - start));
    }
    free(orig);
    free_recs(recs, NREC);
    lt_rmdir(dir);
}

static void test_garbled_tail(void **state)
{
    (void)state;
    lt_rec_t recs[NREC];
    char *dir = lt_tmpdir();
    build(dir, recs, 0);
    int64_t start = rec_pos(recs, NREC - 1), end = rec_pos(recs, NREC);
    size_t len;
    uint8_t *orig = lt_read_file(lt_seg_path(dir, 0), &len);
    for (int64_t pos = start; pos < end; pos++) {
        lt_poke(lt_seg_path(dir, 0), 0, orig, len);
        lt_flip(lt_seg_path(dir, 0), pos, 0x5a);
        check_recovered(dir, recs, (uint64_t)(end - start), (uint64_t)(end - start));
    }
    free(orig);
    free_recs(recs, NREC);
    lt_rmdir(dir);
}

/* Records 3 and 4 are intact but follow a garbled record 2. They are cut,
 * and a new record exactly the size of record 2 must not bring them back
 * (they would pass every check if the tail had not been zeroed). */
static void test_stale_record_stays_dead(void **state)
{
    (void)state;
    lt_rec_t recs[NREC];
    char *dir = lt_tmpdir();
    build(dir, recs, 1);
    lt_flip(lt_seg_path(dir, 0), rec_pos(recs, 2) + 60, 0x01);
    at_log_t *log = lt_open(dir, 2, SEG, false);
    at_log_stats_t st;
    at_log_stats(log, &st);
    assert_int_equal(st.truncated_bytes, rec_pos(recs, NREC) - rec_pos(recs, 2));
    lt_expect(log, NULL, recs, 2);
    lt_rec_t again;
    lt_rec_make(&again, 0, 2, 40); /* same size as record 2 */
    assert_int_equal(lt_append(log, &again, 1), 0);
    assert_int_equal(again.r.offset, 2);
    assert_int_equal(at_log_sync(log), 0);
    at_log_close(log);
    log = lt_open(dir, 2, SEG, false);
    assert_int_equal(lt_count(log), 3);
    assert_int_equal(at_log_next_offset(log, 0), 3);
    at_log_close(log);
    lt_rec_free(&again);
    free_recs(recs, NREC);
    lt_rmdir(dir);
}

/* A torn tail is reported but left alone by a read-only open. */
static void test_read_only_recovery_writes_nothing(void **state)
{
    (void)state;
    lt_rec_t recs[NREC];
    char *dir = lt_tmpdir();
    build(dir, recs, 0);
    lt_flip(lt_seg_path(dir, 0), rec_pos(recs, NREC - 1) + 3, 0x10);
    size_t n0, n1;
    uint8_t *before = lt_read_file(lt_seg_path(dir, 0), &n0);
    at_log_t *log = lt_open(dir, 0, 0, true);
    at_log_stats_t st;
    at_log_stats(log, &st);
    assert_true(st.truncated_bytes > 0);
    lt_expect(log, NULL, recs, NREC - 1);
    at_log_close(log);
    uint8_t *after = lt_read_file(lt_seg_path(dir, 0), &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
    free_recs(recs, NREC);
    lt_rmdir(dir);
}

/* A segment whose header never made it (crash during creation) is dropped;
 * one with a bad header in front of records is corruption. */
static void test_torn_new_segment(void **state)
{
    (void)state;
    lt_rec_t recs[NREC];
    char *dir = lt_tmpdir();
    build(dir, recs, 0);
    lt_poke(lt_seg_path(dir, NREC), 0, "ATLOGSEG\x01", 9); /* 9 bytes of header */
    at_log_t *log = lt_open(dir, 2, SEG, false);
    assert_int_equal(lt_count_files(dir, ".seg"), 1);
    lt_expect(log, NULL, recs, NREC);
    at_log_close(log);

    /* Full size, garbage header, zeros after it. */
    uint8_t junk[64];
    memset(junk, 0xa5, sizeof junk);
    lt_zero(lt_seg_path(dir, NREC), 0, SEG);
    lt_poke(lt_seg_path(dir, NREC), 0, junk, sizeof junk);
    lt_poke(lt_path(dir, "00000000000000000009.seg.tmp"), 0, junk, sizeof junk);
    log = lt_open(dir, 0, 0, true); /* read-only: ignores both, deletes nothing */
    lt_expect(log, NULL, recs, NREC);
    at_log_close(log);
    assert_int_equal(lt_count_files(dir, ".seg"), 2);
    log = lt_open(dir, 2, SEG, false);
    assert_int_equal(lt_count_files(dir, ".seg"), 1);
    assert_int_equal(lt_count_files(dir, ".tmp"), 0);
    lt_expect(log, NULL, recs, NREC);
    assert_int_equal(at_log_next_offset(log, 0), 3);
    at_log_close(log);

    /* Bad header, then something that is not zeros: refuse to guess. */
    lt_zero(lt_seg_path(dir, NREC), 0, SEG);
    lt_poke(lt_seg_path(dir, NREC), 0, junk, sizeof junk);
    lt_poke(lt_seg_path(dir, NREC), 1000, junk, 1);
    at_log_opts_t o = {.partitions = 2, .segment_bytes = SEG};
    char err[256];
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), AT_ECORRUPT);
    assert_non_null(strstr(err, "00000000000000000005.seg"));
    /* The same for the only segment: its records are not thrown away. */
    assert_int_equal(unlink(lt_seg_path(dir, NREC)), 0);
    lt_flip(lt_seg_path(dir, 0), 20, 0x01);
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), AT_ECORRUPT);
    assert_int_equal(lt_count_files(dir, ".seg"), 1);
    free_recs(recs, NREC);
    lt_rmdir(dir);
}

/* Corrupting the header of an older segment makes open fail. */
static void test_bad_old_header(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_t *log = lt_open(dir, 2, 4096, false);
    lt_rec_t recs[40];
    for (int i = 0; i < 40; i++)
        lt_rec_make(&recs[i], i % 2, i, 200);
    assert_int_equal(lt_append(log, recs, 40), 0);
    assert_int_equal(at_log_sync(log), 0);
    at_log_close(log);
    assert_true(lt_count_files(dir, ".seg") > 2);
    lt_flip(lt_seg_path(dir, 0), 30, 0x04);
    at_log_opts_t o = {0};
    char err[256];
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), AT_ECORRUPT);
    o.read_only = true;
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), AT_ECORRUPT);
    free_recs(recs, 40);
    lt_rmdir(dir);
}

static struct rlimit saved_fsize;

static void limit_file_size(rlim_t bytes)
{
    struct rlimit rl = saved_fsize;
    rl.rlim_cur = bytes;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static void unlimit_file_size(void)
{
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
}

/* A batch whose write stops part-way (EFBIG after a short write) leaves
 * nothing behind: not in memory, not after a reopen, and not behind a
 * later, shorter append. */
static void test_failed_write_all_or_nothing(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_t *log = lt_open(dir, 2, SEG, false);
    lt_rec_t recs[10], failed[10], one;
    for (int i = 0; i < 10; i++) {
        lt_rec_make(&recs[i], i % 2, i, 300);
        lt_rec_make(&failed[i], i % 2, 50 + i, 300);
    }
    lt_rec_make(&one, 0, 77, 300);
    assert_int_equal(lt_append(log, recs, 10), 0);
    assert_int_equal(at_log_sync(log), 0);
    at_log_stats_t st0, st1;
    at_log_stats(log, &st0);
    /* Room for two whole records of the next batch and part of a third. */
    rlim_t room = (rlim_t)rec_pos(recs, 10) + 2 * at_log_rec_size(&failed[0].r) + 100;
    limit_file_size(room);
    assert_int_equal(lt_append(log, failed, 10), -EFBIG);
    assert_int_equal(at_log_next_offset(log, 0), 5);
    assert_int_equal(at_log_next_offset(log, 1), 5);
    at_log_stats(log, &st1);
    assert_int_equal(st1.bytes, st0.bytes);
    assert_int_equal(st1.records, st0.records);
    lt_expect(log, NULL, recs, 10);
    unlimit_file_size();
    at_log_close(log); /* as if the process died now */

    log = lt_open(dir, 2, SEG, false);
    lt_expect(log, NULL, recs, 10);
    limit_file_size(room);
    assert_int_equal(lt_append(log, failed, 10), -EFBIG);
    unlimit_file_size();
    assert_int_equal(lt_append(log, &one, 1), 0); /* overwrites the failed batch's start */
    assert_int_equal(one.r.offset, 5);
    assert_int_equal(at_log_sync(log), 0);
    at_log_close(log);
    log = lt_open(dir, 2, SEG, false);
    lt_rec_t want[11];
    memcpy(want, recs, sizeof recs);
    want[10] = one;
    lt_expect(log, NULL, want, 11);
    at_log_close(log);
    free_recs(recs, 10);
    free_recs(failed, 10);
    lt_rec_free(&one);
    lt_rmdir(dir);
}

/* A batch that needs a new segment the disk cannot hold fails before
 * anything is written. */
static void test_failed_roll_all_or_nothing(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_t *log = lt_open(dir, 2, 8192, false);
    lt_rec_t recs[10], big[30];
    for (int i = 0; i < 10; i++)
        lt_rec_make(&recs[i], i % 2, i, 300);
    for (int i = 0; i < 30; i++)
        lt_rec_make(&big[i], i % 2, 100 + i, 300);
    assert_int_equal(lt_append(log, recs, 10), 0);
    assert_int_equal(at_log_sync(log), 0);
    size_t n0, n1;
    uint8_t *before = lt_read_file(lt_seg_path(dir, 0), &n0);
    limit_file_size(8191); /* the active segment is writable, a new one cannot be made */
    assert_int_equal(lt_append(log, big, 30), -EFBIG);
    unlimit_file_size();
    uint8_t *after = lt_read_file(lt_seg_path(dir, 0), &n1);
    assert_memory_equal(before, after, n0);
    assert_int_equal(lt_count_files(dir, ".seg"), 1);
    assert_int_equal(lt_count_files(dir, ".tmp"), 0);
    lt_expect(log, NULL, recs, 10);
    assert_int_equal(at_log_next_offset(log, 1), 5);
    /* Usable again once there is room. */
    assert_int_equal(lt_append(log, big, 30), 0);
    assert_int_equal(at_log_sync(log), 0);
    at_log_close(log);
    assert_true(lt_count_files(dir, ".seg") >= 2);
    log = lt_open(dir, 2, 8192, false);
    lt_rec_t want[40];
    memcpy(want, recs, sizeof recs);
    memcpy(want + 10, big, sizeof big);
    lt_expect(log, NULL, want, 40);
    at_log_close(log);
    free(before);
    free(after);
    free_recs(recs, 10);
    free_recs(big, 30);
    lt_rmdir(dir);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGXFSZ, SIG_IGN);
    return getrlimit(RLIMIT_FSIZE, &saved_fsize);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torn_tail_truncated),
        cmocka_unit_test(test_torn_tail_zeroed),
        cmocka_unit_test(test_garbled_tail),
        cmocka_unit_test(test_stale_record_stays_dead),
        cmocka_unit_test(test_read_only_recovery_writes_nothing),
        cmocka_unit_test(test_torn_new_segment),
        cmocka_unit_test(test_bad_old_header),
        cmocka_unit_test(test_failed_write_all_or_nothing),
        cmocka_unit_test(test_failed_roll_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
