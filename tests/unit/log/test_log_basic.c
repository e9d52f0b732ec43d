/* test_log_basic.c - the log's everyday contract: append, sync, reopen and
 * read back; offsets per partition; partition count fixed at creation;
 * read-only opens; limits; the small text helpers. */
#include "log_test.h"

#include <errno.h>

#define SEG (64 * 1024)

/* Appends recs in batches of `batch`, asserting success. */
static void append_all(at_log_t *log, lt_rec_t *recs, size_t n, size_t batch)
{
    for (size_t i = 0; i < n; i += batch)
        assert_int_equal(lt_append(log, recs + i, AT_MIN(batch, n - i)), 0);
}

static void test_roundtrip(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_t *log = lt_open(dir, 4, SEG, false);
    assert_int_equal(at_log_partitions(log), 4);
    lt_rec_t recs[40];
    int per_part[4] = {0};
    for (int i = 0; i < 40; i++)
        lt_rec_make(&recs[i], (i * 3) % 4 == 0 ? 0 : i % 4, i, (size_t)(i * 13) % 300);
    append_all(log, recs, 40, 9);
    /* Offsets count up by one per record within each partition. */
    for (int i = 0; i < 40; i++)
        assert_int_equal(recs[i].r.offset, per_part[recs[i].r.partition]++);
    for (int p = 0; p < 4; p++)
        assert_int_equal(at_log_next_offset(log, p), per_part[p]);
    assert_int_equal(at_log_sync(log), 0);
    lt_expect(log, NULL, recs, 40); /* on the writer, before reopening */
    at_log_stats_t st;
    at_log_stats(log, &st);
    assert_int_equal(st.records, 40);
    assert_int_equal(st.segments, 1);
    size_t bytes = at_log_seg_header_bytes(4);
    for (int i = 0; i < 40; i++)
        bytes += at_log_rec_size(&recs[i].r);
    assert_int_equal(st.bytes, bytes);
    at_log_close(log);

    log = lt_open(dir, 0, SEG, false);
    assert_int_equal(at_log_partitions(log), 4);
    for (int p = 0; p < 4; p++)
        assert_int_equal(at_log_next_offset(log, p), per_part[p]);
    lt_expect(log, NULL, recs, 40);
    at_log_stats(log, &st);
    assert_int_equal(st.bytes, bytes);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.truncated_bytes, 0);
    /* Offsets continue after a reopen. */
    lt_rec_t more;
    lt_rec_make(&more, 2, 99, 10);
    assert_int_equal(lt_append(log, &more, 1), 0);
    assert_int_equal(more.r.offset, per_part[2]);
    at_log_close(log);
    for (int i = 0; i < 40; i++)
        lt_rec_free(&recs[i]);
    lt_rec_free(&more);
    lt_rmdir(dir);
}

/* An iterator at the tail of a log being written reads each record as it
 * arrives, through its mapping of the segment, well past the point where
 * it gives pages back (every 1 MiB), and into the next segment. */
static void test_tail_follows_appends(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_t *log = lt_open(dir, 2, 3 * 1024 * 1024, false);
    enum { ROUNDS = 600, PER = 10 };
    lt_rec_t *recs = calloc(ROUNDS * PER, sizeof *recs);
    assert_non_null(recs);
    at_log_iter_t *it = NULL;
    assert_int_equal(at_log_iter_open(log, NULL, &it), 0);
    int64_t want[2] = {0, 0};
    size_t seen = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < PER; k++) {
            int i = round * PER + k;
            lt_rec_make(&recs[i], i % 2, i, 700 + (size_t)(i % 5) * 100);
        }
        assert_int_equal(lt_append(log, recs + round * PER, PER), 0);
        at_rec_t r;
        int rc;
        while ((rc = at_log_iter_next(it, &r)) == 1) {
            const lt_rec_t *w = &recs[seen++];
            assert_int_equal(r.partition, w->r.partition);
            assert_int_equal(r.offset, want[r.partition]++);
            assert_int_equal(r.value_len, w->r.value_len);
            assert_memory_equal(r.value, w->r.value, r.value_len);
        }
        assert_int_equal(rc, 0);
        assert_int_equal(seen, (size_t)(round + 1) * PER);
    }
    at_log_stats_t st;
    at_log_stats(log, &st);
    assert_true(st.segments >= 2); /* ~4.5 MB of records in 3 MiB segments */
    at_log_iter_close(it);
    at_log_close(log);
    lt_recs_free(recs, ROUNDS * PER);
    lt_rmdir(dir);
}

/* The sync in two steps: begin takes what needs syncing (and nothing the
 * second time), run syncs it on any thread; appends go on in between; a
 * failed log refuses both. */
static void test_sync_in_two_steps(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_t *log = lt_open(dir, 2, 4096, false);
    lt_rec_t recs[60];
    for (int i = 0; i < 60; i++)
        lt_rec_make(&recs[i], i % 2, i, 200);
    append_all(log, recs, 30, 10); /* past a segment: the directory too */
    at_log_syncjob_t j;
    assert_int_equal(at_log_sync_begin(log, &j), 0);
    assert_true(j.fd >= 0);
    assert_true(j.dirfd >= 0);
    append_all(log, recs + 30, 30, 10); /* the writer goes on */
    assert_int_equal(at_log_sync_run(&j), 0);
    assert_int_equal(j.fd, -1);
    at_log_syncjob_t again;
    assert_int_equal(at_log_sync_begin(log, &again), 0);
    assert_true(again.fd >= 0); /* the appends after the first begin */
    assert_int_equal(at_log_sync_run(&again), 0);
    assert_int_equal(at_log_sync_begin(log, &again), 0);
    assert_int_equal(again.fd, -1); /* nothing new */
    assert_int_equal(again.dirfd, -1);
    assert_int_equal(at_log_sync_run(&again), 0);
    at_log_fail(log, -EIO);
    assert_int_equal(at_log_sync_begin(log, &again), -EIO);
    assert_int_equal(lt_append(log, recs, 1), -EIO);
    assert_int_equal(at_log_sync(log), -EIO);
    at_log_close(log);
    log = lt_open(dir, 0, 4096, false);
    lt_expect(log, NULL, recs, 60);
    at_log_close(log);
    for (int i = 0; i < 60; i++)
        lt_rec_free(&recs[i]);
    lt_rmdir(dir);
}

static void test_empty_fields(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_t *log = lt_open(dir, 1, SEG, false);
    lt_rec_t t;
    lt_rec_make(&t, 0, 1, 0);
    t.r.key = NULL, t.r.key_len = 0, t.r.id = NULL, t.r.id_len = 0;
    assert_int_equal(lt_append(log, &t, 1), 0);
    assert_int_equal(at_log_sync(log), 0);
    at_log_close(log);
    log = lt_open(dir, 1, SEG, false);
    at_log_iter_t *it;
    at_rec_t rec;
    assert_int_equal(at_log_iter_open(log, NULL, &it), 0);
    assert_int_equal(at_log_iter_next(it, &rec), 1);
    assert_int_equal(rec.key_len + rec.id_len + rec.value_len, 0);
    assert_int_equal(rec.type, t.r.type);
    assert_int_equal(at_log_iter_next(it, &rec), 0);
    at_log_iter_close(it);
    at_log_close(log);
    lt_rec_free(&t);
    lt_rmdir(dir);
}

static void test_partition_count_fixed(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_opts_t o = {.partitions = 0, .segment_bytes = SEG};
    at_log_t *log = NULL;
    char err[256] = "";
    /* A new log needs a partition count. */
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), AT_EINVALID);
    assert_null(log);
    assert_true(err[0] != '\0');
    log = lt_open(dir, 4, SEG, false);
    at_log_close(log);
    o.partitions = 8;
    err[0] = '\0';
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), AT_EINVALID);
    assert_null(log);
    assert_non_null(strstr(err, "4 partitions"));
    o.partitions = 4;
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), 0);
    at_log_close(log);
    o.partitions = AT_LOG_MAX_PARTITIONS + 1;
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), AT_EINVALID);
    lt_rmdir(dir);
}

static void test_meta_checked(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_close(lt_open(dir, 2, SEG, false));
    at_log_opts_t o = {0};
    at_log_t *log = NULL;
    char err[256];
    const char *newer = "attune-log\nformat 2\npartitions 2\n";
    assert_int_equal(at_file_write_atomic(lt_path(dir, "meta"), newer, strlen(newer)), 0);
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), AT_EVERSION);
    const char *junk = "attune-log\nformat 1\npartitions 2x\n";
    assert_int_equal(at_file_write_atomic(lt_path(dir, "meta"), junk, strlen(junk)), 0);
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), AT_ECORRUPT);
    /* Segments without a meta file are not a new log. */
    assert_int_equal(unlink(lt_path(dir, "meta")), 0);
    o.partitions = 2;
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), AT_ECORRUPT);
    assert_null(log);
    lt_rmdir(dir);
}

static void test_read_only(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_opts_t o = {.read_only = true};
    at_log_t *log = NULL;
    char err[256];
    assert_true(at_log_open(&log, lt_path(dir, "none"), &o, err, sizeof err) < 0);
    assert_null(log);

    log = lt_open(dir, 2, SEG, false);
    lt_rec_t recs[5];
    for (int i = 0; i < 5; i++)
        lt_rec_make(&recs[i], i % 2, i, 50);
    assert_int_equal(lt_append(log, recs, 5), 0);
    assert_int_equal(at_log_sync(log), 0);
    at_log_close(log);
    size_t n0, n1;
    uint8_t *before = lt_read_file(lt_seg_path(dir, 0), &n0);

    log = lt_open(dir, 0, 0, true);
    lt_expect(log, NULL, recs, 5);
    assert_int_equal(at_log_next_offset(log, 0), 3);
    assert_int_equal(lt_append(log, recs, 1), AT_EINVALID);
    assert_int_equal(at_log_sync(log), AT_EINVALID);
    assert_int_equal(at_log_retain(log, 1, 0, 0, NULL), AT_EINVALID);
    at_log_close(log);
    uint8_t *after = lt_read_file(lt_seg_path(dir, 0), &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
    for (int i = 0; i < 5; i++)
        lt_rec_free(&recs[i]);
    lt_rmdir(dir);
}

static void test_one_writer(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_t *w = lt_open(dir, 2, SEG, false);
    at_log_opts_t o = {.partitions = 2, .segment_bytes = SEG};
    at_log_t *log = NULL;
    char err[256];
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), -EBUSY);
    /* Readers are welcome. */
    at_log_t *r = lt_open(dir, 0, 0, true);
    at_log_close(r);
    at_log_close(w);
    log = lt_open(dir, 2, SEG, false);
    at_log_close(log);
    lt_rmdir(dir);
}

static void test_limits(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_t *log = lt_open(dir, 2, 8192, false);
    lt_rec_t ok[2], big;
    lt_rec_make(&ok[0], 0, 0, 100);
    lt_rec_make(&ok[1], 1, 1, 100);
    lt_rec_make(&big, 1, 2, 8192);
    at_rec_t batch[2] = {ok[0].r, big.r};
    assert_int_equal(at_log_append(log, batch, 2), AT_ETOOBIG);
    assert_int_equal(at_log_next_offset(log, 0), 0);
    assert_int_equal(at_log_next_offset(log, 1), 0);
    batch[1] = ok[1].r;
    batch[1].partition = 2;
    assert_int_equal(at_log_append(log, batch, 2), AT_EINVALID);
    batch[1].partition = -1;
    assert_int_equal(at_log_append(log, batch, 2), AT_EINVALID);
    assert_int_equal(at_log_append(log, batch, 0), 0);
    /* The largest record that fits an empty segment is fine. */
    size_t room = 8192 - at_log_seg_header_bytes(2);
    lt_rec_free(&big);
    lt_rec_make(&big, 1, 2, 0);
    big.r.value_len = (uint32_t)(room - at_log_rec_size(&big.r));
    free(big.value);
    big.value = calloc(1, big.r.value_len);
    big.r.value = big.value;
    assert_int_equal(lt_append(log, ok, 2), 0);
    assert_int_equal(lt_append(log, &big, 1), 0);
    big.r.value_len++;
    assert_int_equal(at_log_append(log, &big.r, 1), AT_ETOOBIG);
    big.r.value_len--;
    assert_int_equal(at_log_sync(log), 0);
    at_log_close(log);
    log = lt_open(dir, 2, 8192, false);
    lt_rec_t all[3] = {ok[0], ok[1], big};
    lt_expect(log, NULL, all, 3);
    at_log_stats_t st;
    at_log_stats(log, &st);
    assert_int_equal(st.segments, 2);
    at_log_close(log);
    /* segment_bytes out of range */
    at_log_opts_t o = {.partitions = 2, .segment_bytes = 100};
    char err[256];
    assert_int_equal(at_log_open(&log, dir, &o, err, sizeof err), AT_EINVALID);
    lt_rec_free(&ok[0]);
    lt_rec_free(&ok[1]);
    lt_rec_free(&big);
    lt_rmdir(dir);
}

static void test_rec_encode(void **state)
{
    (void)state;
    lt_rec_t t;
    lt_rec_make(&t, 3, 5, 20);
    t.r.offset = 77;
    size_t n = at_log_rec_size(&t.r);
    assert_int_equal(n, AT_LOG_REC_HEADER_BYTES + t.r.key_len + t.r.id_len + 20);
    uint8_t *a = malloc(n), *b = malloc(n);
    at_log_rec_encode(a, &t.r);
    at_log_rec_encode(b, &t.r);
    assert_memory_equal(a, b, n);
    t.r.offset = 78; /* the checksum covers the offset */
    at_log_rec_encode(b, &t.r);
    assert_memory_not_equal(a + 4, b + 4, 8);
    free(a);
    free(b);
    lt_rec_free(&t);
}

static void test_names_and_positions(void **state)
{
    (void)state;
    assert_string_equal(at_rec_type_name(AT_REC_EVENT), "event");
    assert_string_equal(at_rec_type_name(AT_REC_TICK), "tick");
    assert_string_equal(at_rec_type_name(AT_REC_REDACTED), "redacted");
    assert_string_equal(at_rec_type_name(0), "unknown");
    assert_string_equal(at_rec_type_name(99), "unknown");
    int p = -1;
    int64_t off = -1;
    assert_int_equal(at_log_parse_position("3:42", &p, &off), 0);
    assert_int_equal(p, 3);
    assert_int_equal(off, 42);
    assert_int_equal(at_log_parse_position("0:9223372036854775807", &p, &off), 0);
    assert_int_equal(off, INT64_MAX);
    const char *bad[] = {"",
                         ":",
                         "1:",
                         ":1",
                         "a:1",
                         "1:2x",
                         "-1:2",
                         "1:-2",
                         "1: 2",
                         "2147483648:1",
                         "1:9223372036854775808",
                         "1:2:3",
                         NULL};
    for (int i = 0; i < (int)AT_ARRAY_LEN(bad); i++) {
        p = 7;
        assert_int_equal(at_log_parse_position(bad[i], &p, &off), AT_EPARSE);
        assert_int_equal(p, 7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_sync_in_two_steps),
        cmocka_unit_test(test_empty_fields),
        cmocka_unit_test(test_partition_count_fixed),
        cmocka_unit_test(test_meta_checked),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_one_writer),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_rec_encode),
        cmocka_unit_test(test_names_and_positions),
        cmocka_unit_test(test_tail_follows_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
