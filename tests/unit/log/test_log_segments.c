/* test_log_segments.c - a log of many segments: rolling over, reading from
 * per-partition positions (skipping whole segments), retention by size and
 * age that respects keep_from, and iterators that follow a growing log. */
#include "log_test.h"

#define SEG 4096
#define P 3
#define VLEN 150

/* Records of fixed size: partition i % P, recv_ms = 1000 * i. */
static lt_rec_t *make_recs(int n)
{
    lt_rec_t *recs = calloc((size_t)n, sizeof *recs);
    assert_non_null(recs);
    for (int i = 0; i < n; i++) {
        lt_rec_make(&recs[i], i % P, i, VLEN);
        recs[i].r.recv_ms = 1000 * (int64_t)i;
    }
    return recs;
}

/* Records per segment, as the layout puts them. */
static int per_seg(const lt_rec_t *recs)
{
    return (int)((SEG - at_log_seg_header_bytes(P)) / at_log_rec_size(&recs[0].r));
}

/* A log of n records appended in batches of 7, synced and closed. */
static void build(const char *dir, lt_rec_t *recs, int n)
{
    at_log_t *log = lt_open(dir, P, SEG, false);
    for (int i = 0; i < n; i += 7)
        assert_int_equal(lt_append(log, recs + i, (size_t)AT_MIN(7, n - i)), 0);
    assert_int_equal(at_log_sync(log), 0);
    at_log_close(log);
}

static void test_roll_over(void **state)
{
    (void)state;
    int n = 200;
    lt_rec_t *recs = make_recs(n);
    char *dir = lt_tmpdir();
    build(dir, recs, n);
    int nseg = (n + per_seg(recs) - 1) / per_seg(recs);
    assert_int_equal(lt_count_files(dir, ".seg"), nseg);
    at_log_t *log = lt_open(dir, 0, SEG, false);
    at_log_stats_t st;
    at_log_stats(log, &st);
    assert_int_equal(st.segments, nseg);
    uint64_t bytes = (uint64_t)nseg * at_log_seg_header_bytes(P);
    for (int i = 0; i < n; i++)
        bytes += at_log_rec_size(&recs[i].r);
    assert_int_equal(st.bytes, bytes);
    for (int p = 0; p < P; p++)
        assert_int_equal(at_log_next_offset(log, p), (n - p + P - 1) / P);
    lt_expect(log, NULL, recs, (size_t)n);
    /* The segment files are named by the sequence number of their first
     * record. */
    assert_int_equal(access(lt_seg_path(dir, (unsigned long long)per_seg(recs)), F_OK), 0);
    at_log_close(log);
    lt_recs_free(recs, (size_t)n);
    lt_rmdir(dir);
}

/* One append much larger than a segment spans several of them. */
static void test_batch_spans_segments(void **state)
{
    (void)state;
    int n = 100;
    lt_rec_t *recs = make_recs(n);
    char *dir = lt_tmpdir();
    at_log_t *log = lt_open(dir, P, SEG, false);
    assert_int_equal(lt_append(log, recs, 10), 0);
    assert_int_equal(lt_append(log, recs + 10, 90), 0);
    lt_expect(log, NULL, recs, (size_t)n);
    assert_int_equal(at_log_sync(log), 0);
    at_log_close(log);
    assert_true(lt_count_files(dir, ".seg") >= n / per_seg(recs));
    log = lt_open(dir, 0, SEG, false);
    lt_expect(log, NULL, recs, (size_t)n);
    at_log_close(log);
    lt_recs_free(recs, (size_t)n);
    lt_rmdir(dir);
}

/* The records of recs[0..n) at/after from[], in order, into out. */
static size_t select_from(const lt_rec_t *recs, int n, const int64_t *from, lt_rec_t *out)
{
    size_t k = 0;
    for (int i = 0; i < n; i++)
        if (recs[i].r.offset >= from[recs[i].r.partition])
            out[k++] = recs[i];
    return k;
}

static void test_iter_from(void **state)
{
    (void)state;
    int n = 150;
    lt_rec_t *recs = make_recs(n);
    lt_rec_t *want = calloc((size_t)n, sizeof *want);
    char *dir = lt_tmpdir();
    build(dir, recs, n);
    at_log_t *log = lt_open(dir, 0, SEG, false);
    const int64_t froms[][P] = {{0, 0, 0},    {10, 0, 49},   {49, 50, 50},   {50, 50, 50},
                                {30, 31, 32}, {0, 100, 100}, {1000, 1000, 3}};
    for (size_t f = 0; f < AT_ARRAY_LEN(froms); f++) {
        size_t k = select_from(recs, n, froms[f], want);
        lt_expect(log, froms[f], want, k);
    }
    at_log_close(log);

    /* Garble a record in the middle of the first segment: reading
     * everything finds it, reading from past that segment never opens it. */
    lt_flip(lt_seg_path(dir, 0), (int64_t)at_log_seg_header_bytes(P) + 100, 0x20);
    log = lt_open(dir, 0, SEG, true);
    at_log_iter_t *it;
    at_rec_t rec;
    assert_int_equal(at_log_iter_open(log, NULL, &it), 0);
    assert_int_equal(at_log_iter_next(it, &rec), AT_ECORRUPT);
    at_log_iter_close(it);
    int64_t past[P];
    for (int p = 0; p < P; p++)
        past[p] = per_seg(recs) / P + 1;
    size_t k = select_from(recs, n, past, want);
    lt_expect(log, past, want, k);
    at_log_close(log);
    free(want);
    lt_recs_free(recs, (size_t)n);
    lt_rmdir(dir);
}

/* Index of the first record of the log (by recv_ms, which is 1000 * i). */
static int first_index(at_log_t *log)
{
    at_log_iter_t *it;
    at_rec_t rec;
    assert_int_equal(at_log_iter_open(log, NULL, &it), 0);
    assert_int_equal(at_log_iter_next(it, &rec), 1);
    at_log_iter_close(it);
    return (int)(rec.recv_ms / 1000);
}

static void test_retain_by_size(void **state)
{
    (void)state;
    int n = 200;
    lt_rec_t *recs = make_recs(n);
    int r = per_seg(recs), nseg = (n + r - 1) / r;
    char *dir = lt_tmpdir();
    build(dir, recs, n);
    at_log_t *log = lt_open(dir, 0, SEG, false);
    /* Nothing to do within the limits. */
    assert_int_equal(at_log_retain(log, (int64_t)nseg * SEG, 0, 0, NULL), 0);
    assert_int_equal(at_log_retain(log, 0, 0, 0, NULL), 0);
    /* keep_from holds back the segment holding partition 1's offset 20. */
    int64_t keep[P] = {1000, 20, 1000};
    int holder = (20 * P + 1) / r; /* record index of p1 offset 20 */
    assert_int_equal(at_log_retain(log, 3 * SEG, 0, 0, keep), holder);
    assert_int_equal(lt_count_files(dir, ".seg"), nseg - holder);
    assert_int_equal(first_index(log), holder * r);
    /* Without keep_from, down to three segments (the size limit). */
    assert_int_equal(at_log_retain(log, 3 * SEG, 0, 0, NULL), nseg - holder - 3);
    assert_int_equal(lt_count_files(dir, ".seg"), 3);
    at_log_stats_t st;
    at_log_stats(log, &st);
    assert_int_equal(st.segments, 3);
    int first = (nseg - 3) * r;
    lt_expect(log, NULL, recs + first, (size_t)(n - first));
    /* Never the active segment. */
    assert_int_equal(at_log_retain(log, 1, 0, 0, NULL), 2);
    assert_int_equal(lt_count_files(dir, ".seg"), 1);
    at_log_close(log);
    /* Offsets survive retention and a reopen. */
    log = lt_open(dir, 0, SEG, false);
    first = (nseg - 1) * r;
    lt_expect(log, NULL, recs + first, (size_t)(n - first));
    for (int p = 0; p < P; p++)
        assert_int_equal(at_log_next_offset(log, p), (n - p + P - 1) / P);
    at_log_close(log);
    lt_recs_free(recs, (size_t)n);
    lt_rmdir(dir);
}

static void test_retain_by_age(void **state)
{
    (void)state;
    int n = 200;
    lt_rec_t *recs = make_recs(n);
    int r = per_seg(recs), nseg = (n + r - 1) / r;
    char *dir = lt_tmpdir();
    build(dir, recs, n);
    /* After a reopen the ages come from the segment headers. */
    at_log_t *log = lt_open(dir, 0, SEG, false);
    /* Segment j's newest record is number (j + 1) * r - 1. Keep everything
     * received in the last 1000 * (n - 2.5 r) ms before now = 1000 * n. */
    int64_t now = 1000 * (int64_t)n, age = 1000 * (n - 5 * r / 2);
    assert_int_equal(at_log_retain(log, 0, age, now, NULL), 2);
    assert_int_equal(first_index(log), 2 * r);
    /* keep_from wins over age. */
    int64_t keep[P] = {(3 * r) / P, 1000, 1000};
    assert_int_equal(at_log_retain(log, 0, 1, now, keep), 1);
    assert_int_equal(first_index(log), 3 * r);
    /* An age limit none is older than deletes nothing. */
    assert_int_equal(at_log_retain(log, 0, now, now, NULL), 0);
    assert_int_equal(at_log_retain(log, 0, 1, now, NULL), nseg - 4);
    assert_int_equal(lt_count_files(dir, ".seg"), 1);
    at_log_close(log);
    lt_recs_free(recs, (size_t)n);
    lt_rmdir(dir);
}

/* An iterator at the end of the writer's log sees later appends, also
 * across a roll-over. */
static void test_iter_follows_writer(void **state)
{
    (void)state;
    int n = 60;
    lt_rec_t *recs = make_recs(n);
    char *dir = lt_tmpdir();
    at_log_t *log = lt_open(dir, P, SEG, false);
    at_log_iter_t *it;
    at_rec_t rec;
    assert_int_equal(at_log_iter_open(log, NULL, &it), 0);
    assert_int_equal(at_log_iter_next(it, &rec), 0);
    for (int i = 0; i < n; i += 5) {
        assert_int_equal(lt_append(log, recs + i, 5), 0);
        for (int k = i; k < i + 5; k++) {
            assert_int_equal(at_log_iter_next(it, &rec), 1);
            lt_rec_check(&rec, &recs[k].r);
        }
        assert_int_equal(at_log_iter_next(it, &rec), 0);
    }
    at_log_iter_close(it);
    at_log_close(log);
    lt_recs_free(recs, (size_t)n);
    lt_rmdir(dir);
}

/* A read-only log opened beside a live writer follows its appends,
 * including into segments created after the read-only open. */
static void test_reader_follows_other_writer(void **state)
{
    (void)state;
    int n = 80;
    lt_rec_t *recs = make_recs(n);
    char *dir = lt_tmpdir();
    at_log_t *w = lt_open(dir, P, SEG, false);
    assert_int_equal(lt_append(w, recs, 10), 0);
    at_log_t *ro = lt_open(dir, 0, 0, true);
    at_log_iter_t *it;
    at_rec_t rec;
    assert_int_equal(at_log_iter_open(ro, NULL, &it), 0);
    int got = 0;
    for (int i = 10; i <= n; i += 10) {
        int rc;
        while ((rc = at_log_iter_next(it, &rec)) == 1) {
            assert_true(got < i);
            lt_rec_check(&rec, &recs[got].r);
            got++;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(got, i);
        if (i < n)
            assert_int_equal(lt_append(w, recs + i, 10), 0);
    }
    assert_true(lt_count_files(dir, ".seg") > 3);
    at_log_iter_close(it);
    at_log_close(ro);
    at_log_close(w);
    lt_recs_free(recs, (size_t)n);
    lt_rmdir(dir);
}

/* An empty active segment smaller than a new one would be (segment_bytes
 * grew since it was made) is replaced, not followed by a segment of the
 * same name. */
static void test_empty_segment_regrown(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_log_close(lt_open(dir, P, SEG, false));
    at_log_t *log = lt_open(dir, P, 4 * SEG, false);
    lt_rec_t big[2];
    lt_rec_make(&big[0], 1, 0, 2 * SEG);
    lt_rec_make(&big[1], 2, 1, 2 * SEG);
    assert_int_equal(lt_append(log, big, 2), 0);
    assert_int_equal(at_log_sync(log), 0);
    lt_expect(log, NULL, big, 2);
    at_log_close(log);
    assert_int_equal(lt_count_files(dir, ".seg"), 2);
    log = lt_open(dir, 0, 4 * SEG, false);
    lt_expect(log, NULL, big, 2);
    at_log_close(log);
    lt_rec_free(&big[0]);
    lt_rec_free(&big[1]);
    lt_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roll_over),
        cmocka_unit_test(test_batch_spans_segments),
        cmocka_unit_test(test_iter_from),
        cmocka_unit_test(test_retain_by_size),
        cmocka_unit_test(test_retain_by_age),
        cmocka_unit_test(test_iter_follows_writer),
        cmocka_unit_test(test_reader_follows_other_writer),
        cmocka_unit_test(test_empty_segment_regrown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
