/* test_dedup.c - dedup by (partition, event_id): duplicates within and
 * across calls, expiry by the horizon in receive time (exact to the ms at
 * any horizon), eviction by the per-partition cap (counted), forget, many
 * partitions, the memory an id costs at the cap, short tags settled by the
 * file, the file unlinked or missing, and long randomized runs against a
 * simple model. */
#include "ingest_test.h"

#include <dirent.h>

#define H 1000 /* horizon, ms */

static bool chk(at_dedup_t *d, int p, const char *id, int64_t t)
{
    return at_dedup_check(d, p, id, strlen(id), t);
}

static void test_duplicates(void **state)
{
    (void)state;
    at_dedup_t *d = at_dedup_new(4, H, 100, NULL);
    assert_false(chk(d, 0, "a", 10));
    assert_false(chk(d, 0, "b", 10));
    assert_true(chk(d, 0, "a", 11));
    assert_true(chk(d, 0, "b", 500));
    /* the same id in another partition is another key */
    assert_false(chk(d, 1, "a", 12));
    assert_true(chk(d, 1, "a", 13));
    /* ids are compared exactly, not by hash or prefix */
    assert_false(chk(d, 0, "ab", 14));
    assert_false(chk(d, 0, "", 14));
    assert_true(chk(d, 0, "", 15));
    assert_int_equal(at_dedup_size(d), 5);
    assert_int_equal(at_dedup_evicted(d), 0);
    at_dedup_free(d);
}

static void test_horizon(void **state)
{
    (void)state;
    at_dedup_t *d = at_dedup_new(1, H, 100, NULL);
    assert_false(chk(d, 0, "a", 0));
    assert_false(chk(d, 0, "b", 400));
    assert_true(chk(d, 0, "a", H - 1));    /* still within */
    assert_false(chk(d, 0, "a", H));       /* recv - horizon reached: expired, recorded again */
    assert_int_equal(at_dedup_size(d), 2); /* b and the new a */
    assert_true(chk(d, 0, "b", 1399));
    assert_false(chk(d, 0, "b", 1400));
    assert_true(chk(d, 0, "a", 1999));
    assert_int_equal(at_dedup_evicted(d), 0); /* expiry is not eviction */
    at_dedup_free(d);
}

static void test_cap_evicts_oldest(void **state)
{
    (void)state;
    at_dedup_t *d = at_dedup_new(2, H, 3, NULL);
    assert_false(chk(d, 0, "1", 1));
    assert_false(chk(d, 0, "2", 2));
    assert_false(chk(d, 0, "3", 3));
    assert_false(chk(d, 1, "x", 3));
    assert_false(chk(d, 0, "4", 4)); /* evicts "1" */
    assert_int_equal(at_dedup_evicted(d), 1);
    assert_int_equal(at_dedup_size(d), 4);
    assert_true(chk(d, 0, "2", 5));
    assert_true(chk(d, 0, "4", 5));
    assert_false(chk(d, 0, "1", 6)); /* forgotten early: seen as new, evicts "2" */
    assert_int_equal(at_dedup_evicted(d), 2);
    assert_true(chk(d, 1, "x", 6)); /* the other partition kept its entry */
    at_dedup_free(d);
}

static void test_forget(void **state)
{
    (void)state;
    at_dedup_t *d = at_dedup_new(1, H, 10, NULL);
    assert_false(chk(d, 0, "a", 1));
    assert_false(chk(d, 0, "b", 2));
    assert_false(chk(d, 0, "c", 3));
    at_dedup_forget(d, 0, "c", 1);  /* the newest */
    at_dedup_forget(d, 0, "a", 1);  /* the oldest */
    at_dedup_forget(d, 0, "zz", 2); /* unknown: nothing happens */
    assert_int_equal(at_dedup_size(d), 1);
    assert_false(chk(d, 0, "c", 4));
    assert_false(chk(d, 0, "a", 4));
    assert_true(chk(d, 0, "b", 5));
    assert_int_equal(at_dedup_size(d), 3);
    /* forgotten entries do not count as evictions when they leave */
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, "n%d", i);
        chk(d, 0, id, 6);
    }
    assert_int_equal(at_dedup_size(d), 10);
    assert_int_equal(at_dedup_evicted(d), 13);
    at_dedup_free(d);
}

static void test_many_partitions(void **state)
{
    (void)state;
    enum { P = 64, N = 3000 };
    at_dedup_t *d = at_dedup_new(P, 1000000, 1000000, NULL);
    char id[64];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "9f1c3a7e-5b2d-4c1e-8f00-%012d", i);
        assert_false(chk(d, i % P, id, i));
    }
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "9f1c3a7e-5b2d-4c1e-8f00-%012d", i);
        assert_true(chk(d, i % P, id, N + i));
        assert_false(chk(d, (i + 1) % P, id, N + i)); /* recorded there now */
    }
    assert_int_equal(at_dedup_size(d), 2 * N);
    at_dedup_free(d);
}

/* Receive times are kept to the ms: an id expires exactly its horizon
 * after it came, with the longest horizon too and over many horizons. */
static void test_exact_times(void **state)
{
    (void)state;
    const int64_t h = 365LL * 86400000; /* the longest dedup.horizon */
    at_dedup_t *d = at_dedup_new(1, h, 100, NULL);
    assert_false(chk(d, 0, "a", 0));
    assert_false(chk(d, 0, "b", 14));
    assert_true(chk(d, 0, "b", h - 1));
    assert_true(chk(d, 0, "a", h - 1));
    assert_false(chk(d, 0, "a", h)); /* expired: recorded again at h */
    assert_true(chk(d, 0, "b", h + 13));
    assert_false(chk(d, 0, "b", h + 14));
    assert_false(chk(d, 0, "c", 3 * h - 31));
    assert_true(chk(d, 0, "c", 4 * h - 32));
    assert_false(chk(d, 0, "c", 4 * h - 31));
    assert_int_equal(at_dedup_evicted(d), 0);
    at_dedup_free(d);
    /* expiry goes in arrival order: an id that came with an earlier time
     * than the one before it leaves with that one */
    d = at_dedup_new(1, 1000, 100, NULL);
    assert_false(chk(d, 0, "a", 5000));
    assert_false(chk(d, 0, "b", 4990)); /* the clock went back */
    assert_true(chk(d, 0, "b", 5999));
    assert_false(chk(d, 0, "b", 6000));
    at_dedup_free(d);
}

/* A ring whose head has moved on wraps to its start while the table
 * grows and rehashes: every id is still found. */
static void test_wrap_then_grow(void **state)
{
    (void)state;
    at_dedup_t *d = at_dedup_new(1, 100, 1000, NULL);
    char id[16];
    for (int i = 0; i < 64; i++) { /* fills the first ring, 64 entries */
        snprintf(id, sizeof id, "w%d", i);
        assert_false(chk(d, 0, id, i));
    }
    /* at 150, w0..w50 expire; the next ids wrap to the ring's start, and
     * past 64 entries it grows (the table of 128 slots does not) */
    for (int i = 0; i < 60; i++) {
        snprintf(id, sizeof id, "n%d", i);
        assert_false(chk(d, 0, id, 150));
    }
    assert_int_equal(at_dedup_size(d), 13 + 60);
    for (int i = 51; i < 64; i++) {
        snprintf(id, sizeof id, "w%d", i);
        assert_true(chk(d, 0, id, 150));
    }
    for (int i = 0; i < 60; i++) {
        snprintf(id, sizeof id, "n%d", i);
        assert_true(chk(d, 0, id, 249));
    }
    for (int i = 0; i < 60; i++) {
        snprintf(id, sizeof id, "n%d", i);
        assert_false(chk(d, 0, id, 250)); /* expired, recorded again */
    }
    at_dedup_free(d);
}

/* At the cap an id costs a slot of its table, 4 bytes at a load of 0.85
 * (4.7), whatever its length; besides, each partition holds two chunks
 * of 4,096 positions of 24 bytes (the one being filled and the head's). */
static void test_bytes_at_cap(void **state)
{
    (void)state;
    enum { CAP = 100000 };
    at_dedup_t *d = at_dedup_new(2, 86400000, CAP, NULL);
    char id[80];
    for (int i = 0; i < 3 * CAP; i++) {
        snprintf(id, sizeof id, "order-2026-12-03-%060d", i); /* 77 bytes */
        assert_false(chk(d, i % 2, id, i));
    }
    assert_int_equal(at_dedup_size(d), 2 * CAP);
    assert_int_equal(at_dedup_evicted(d), CAP);
    double chunks = 2 * 2 * 4096 * 24;
    double per = ((double)at_dedup_bytes(d) - chunks) / (double)at_dedup_size(d);
    if (per < 4.6 || per > 4.8)
        fail_msg("%.2f bytes per id at the cap, besides the chunks", per);
    /* the last CAP of each partition are still found, through the file */
    uint64_t reads = at_dedup_reads(d);
    for (int i = 2 * CAP; i < 3 * CAP; i++) {
        snprintf(id, sizeof id, "order-2026-12-03-%060d", i);
        assert_true(chk(d, i % 2, id, 3 * CAP));
    }
    assert_true(at_dedup_reads(d) - reads > CAP / 2); /* most are in the file */
    assert_int_equal(at_dedup_errors(d), 0);
    at_dedup_free(d);
}

/* The largest cap leaves 8 bits of tag in a slot: about 3% of new ids
 * meet a matching tag, and the fingerprint read back from the file
 * settles each one; no new id is taken for a duplicate. */
static void test_short_tags(void **state)
{
    (void)state;
    enum { N = 150000 };
    at_dedup_t *d = at_dedup_new(1, 86400000, AT_DEDUP_MAX_CAP, NULL);
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "t-%d", i);
        assert_false(chk(d, 0, id, 1));
    }
    uint64_t reads = at_dedup_reads(d);
    for (int i = N; i < 2 * N; i++) {
        snprintf(id, sizeof id, "t-%d", i);
        assert_false(chk(d, 0, id, 2));
    }
    uint64_t tagged = at_dedup_reads(d) - reads;
    if (tagged < N / 100 || tagged > N / 10)
        fail_msg("%llu reads for %d new ids", (unsigned long long)tagged, N);
    for (int i = 0; i < 2 * N; i += 7) {
        snprintf(id, sizeof id, "t-%d", i);
        assert_true(chk(d, 0, id, 3));
    }
    assert_int_equal(at_dedup_size(d), 2 * N);
    at_dedup_free(d);
}

/* The file lives in the directory given, unlinked from the start: nothing
 * is left there, even while it holds chunks. */
static void test_file_unlinked(void **state)
{
    (void)state;
    char dir[] = "/tmp/attune-dedup-XXXXXX";
    assert_non_null(mkdtemp(dir));
    at_dedup_t *d = at_dedup_new(2, 86400000, 10000, dir);
    char id[32];
    for (int i = 0; i < 30000; i++) {
        snprintf(id, sizeof id, "u-%d", i);
        assert_false(chk(d, i % 2, id, i));
    }
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    int entries = 0;
    for (struct dirent *e; (e = readdir(dh));)
        entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(dh);
    assert_int_equal(entries, 0);
    for (int i = 20000; i < 30000; i++) {
        snprintf(id, sizeof id, "u-%d", i);
        assert_true(chk(d, i % 2, id, 30000));
    }
    assert_int_equal(at_dedup_errors(d), 0);
    at_dedup_free(d);
    assert_int_equal(rmdir(dir), 0);
}

/* Where the file cannot be made, its chunks stay in memory and the index
 * is as exact as with it (the failure counted). */
static void test_no_file(void **state)
{
    (void)state;
    at_dedup_t *d = at_dedup_new(1, 86400000, 10000, "/nonexistent/attune");
    char id[32];
    for (int i = 0; i < 25000; i++) {
        snprintf(id, sizeof id, "m-%d", i);
        assert_false(chk(d, 0, id, i));
    }
    assert_int_equal(at_dedup_evicted(d), 15000);
    for (int i = 15000; i < 25000; i++) {
        snprintf(id, sizeof id, "m-%d", i);
        assert_true(chk(d, 0, id, 25000));
    }
    snprintf(id, sizeof id, "m-%d", 14999);
    assert_false(chk(d, 0, id, 25000)); /* evicted: new again */
    assert_true(at_dedup_errors(d) > 0);
    assert_true(at_dedup_bytes(d) > 10000 * 24); /* the chunks it kept */
    at_dedup_free(d);
}

/* A model: the entries of one partition in insertion order. */
typedef struct model_ent {
    char id[48];
    int64_t t;
    bool live;
} model_ent_t;

/* Runs random checks and forgets (ids from a space of idspace, padded to
 * pad characters) against the model. */
static void run_model(size_t CAP, int64_t horizon, unsigned idspace, int pad, int steps)
{
    enum { STEPS = 40000 };
    static model_ent_t m[STEPS];
    AT_ASSERT(steps <= STEPS);
    size_t head = 0, tail = 0;
    uint64_t evicted = 0;
    at_dedup_t *d = at_dedup_new(1, horizon, (int64_t)CAP, NULL);
    unsigned seed = 12345;
    int64_t t = 0;
    for (int step = 0; step < steps; step++) {
        seed = seed * 1103515245u + 12345u;
        t += (seed >> 16) % 3;
        char id[48];
        int len = snprintf(id, sizeof id, "%0*u", pad, (seed >> 8) % idspace);
        if ((seed >> 4) % 10 == 0) {
            /* the newest entry is given back, older ones are marked */
            at_dedup_forget(d, 0, id, (size_t)len);
            for (size_t i = head; i < tail; i++) {
                if (!m[i].live || strcmp(m[i].id, id) != 0)
                    continue;
                if (i == tail - 1)
                    tail--;
                else
                    m[i].live = false;
                break;
            }
            continue;
        }
        while (head < tail && m[head].t <= t - horizon)
            head++;
        bool want = false;
        for (size_t i = head; i < tail; i++)
            want |= m[i].live && strcmp(m[i].id, id) == 0;
        if (!want) {
            while (tail - head >= CAP)
                evicted += m[head++].live;
            snprintf(m[tail].id, sizeof m[tail].id, "%s", id);
            m[tail].t = t;
            m[tail].live = true;
            tail++;
        }
        bool got = at_dedup_check(d, 0, id, (size_t)len, t);
        if (got != want)
            fail_msg("step %d id %s t %lld: got %d want %d", step, id, (long long)t, got, want);
    }
    assert_int_equal(at_dedup_evicted(d), evicted);
    at_dedup_free(d);
}

static void test_randomized(void **state)
{
    (void)state;
    run_model(50, 300, 120, 1, 40000);         /* the cap and the horizon both bite */
    run_model(100000, 3000, 20000, 40, 12000); /* the rings grow while they wrap */
    run_model(3, 100000, 5, 1, 20000);         /* mostly evictions and forgets */
    run_model(5000, 100000, 30000, 8, 40000);  /* chunks of 4,096 through the file, wrapping */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicates),        cmocka_unit_test(test_horizon),
        cmocka_unit_test(test_cap_evicts_oldest), cmocka_unit_test(test_forget),
        cmocka_unit_test(test_many_partitions),   cmocka_unit_test(test_wrap_then_grow),
        cmocka_unit_test(test_exact_times),       cmocka_unit_test(test_bytes_at_cap),
        cmocka_unit_test(test_short_tags),        cmocka_unit_test(test_file_unlinked),
        cmocka_unit_test(test_no_file),           cmocka_unit_test(test_randomized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
