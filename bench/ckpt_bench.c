/* ckpt_bench.c - the checkpoint store (src/log/at_ckpt.h) measured, and
 * compared with LMDB on the same workload (docs/decisions/0004-checkpoints.md).
 *
 * Workload: 1M keys ("u:" + 10 digits) with 200-byte values, written as 10
 * checkpoints of 100k new keys each (the first is the base); then loaded
 * back (every key delivered once), compacted, loaded again; then deltas of
 * 10k and of 100k changed keys over the 1M. Each phase runs in its own
 * child process, so its peak RSS (ru_maxrss from wait4) is its own; mmap'd
 * file pages that a phase touches count, as they do for the engine.
 * "cold" loads first drop the store's files from the page cache
 * (posix_fadvise DONTNEED on those files only); "warm" loads do not.
 *
 * LMDB side (built when liblmdb-dev is installed): one environment, one
 * write transaction per checkpoint, committed with its default sync; load
 * is a cursor walk over every key; "compaction" is mdb_env_copy2 with
 * MDB_CP_COMPACT (LMDB needs none for correctness; its file keeps free
 * pages).
 *
 * Usage: bench_ckpt [--dir DIR] [--keys N] [--no-lmdb]
 * Output: one line per measurement, "store phase figures...".
 */
#include "at_ckpt.h"
#include "at_core.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef AT_BENCH_LMDB
#include <lmdb.h>
#endif

#define VLEN 200

static long nkeys = 1000000;
static char base_dir[4096];

/* Key number i of the workload: spread so a batch is in no key order. */
static size_t bk_key(char *out, long i)
{
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    unsigned long long v = (unsigned long long)(x % 10000000000ULL);
    return (size_t)snprintf(out, 16, "u:%010llu", v);
}

/* Deterministic value of key i at version v. */
static void bk_val(char *out, long i, int v)
{
    uint64_t s = (uint64_t)i * 31 + (uint64_t)v * 1000003;
    for (int k = 0; k < VLEN; k += 8) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        memcpy(out + k, &s, 8);
    }
}

static double bk_now(void)
{
    return (double)at_time_mono_ns() / 1e9;
}

/* Sum of the sizes of the regular files under dir (one level). */
static int64_t bk_du(const char *dir, int *files)
{
    DIR *d = opendir(dir);
    int64_t sum = 0;
    if (files)
        *files = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, 0) == 0 &&
            S_ISREG(st.st_mode)) {
            sum += st.st_size;
            if (files)
                (*files)++;
        }
    }
    closedir(d);
    return sum;
}

/* Drops the page cache of every file in dir (and nothing else). */
static void bk_drop_cache(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY);
        if (fd >= 0) {
            (void)fdatasync(fd);
            (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
    }
    closedir(d);
}

/* Runs fn in a child process; prints its peak RSS after its own lines. */
static int bk_phase(const char *store, const char *name, void (*fn)(const char *), const char *dir)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        fn(dir);
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s %s: child failed\n", store, name);
        return -1;
    }
    printf("%-6s %-16s peak_rss_mb %.1f\n", store, name, (double)ru.ru_maxrss / 1024.0);
    return 0;
}

/* ---- attune's store ------------------------------------------------------------ */

static void at_die(const char *what, int rc, const char *err)
{
    fprintf(stderr, "%s: %s %s\n", what, at_strerror(rc), err ? err : "");
    exit(1);
}

static at_ckpt_t *ak_open(const char *dir)
{
    at_ckpt_opts_t o = {.compact_ratio = 1e9, .compact_max_deltas = 1000000};
    at_ckpt_t *c = NULL;
    char err[512] = "";
    int rc = at_ckpt_open(&c, dir, 0, &o, err, sizeof err);
    if (rc)
        at_die("open", rc, err);
    return c;
}

/* Keys and values of one checkpoint, generated before any clock runs. */
typedef struct bk_data {
    char (*keys)[16];
    size_t *klen;
    char *vals; /* n * VLEN */
    long n;
} bk_data_t;

static void bk_gen(bk_data_t *d, long from, long to, long stride, int v)
{
    d->n = (to - from + stride - 1) / stride;
    d->keys = malloc((size_t)d->n * sizeof *d->keys);
    d->klen = malloc((size_t)d->n * sizeof *d->klen);
    d->vals = malloc((size_t)d->n * VLEN);
    long j = 0;
    for (long i = from; i < to; i += stride, j++) {
        d->klen[j] = bk_key(d->keys[j], i);
        bk_val(d->vals + j * VLEN, i, v);
    }
}

static void bk_free(bk_data_t *d)
{
    free(d->keys);
    free(d->klen);
    free(d->vals);
}

/* Writes keys [from, to) by stride at version v as one checkpoint; returns
 * the seconds of at_ckpt_write. *build_s (may be NULL) gets the seconds of
 * the puts that fill the batch (the processing thread's share). */
static double ak_write(at_ckpt_t *c, long from, long to, long stride, int v, double *build_s,
                       uint64_t *bytes)
{
    bk_data_t d;
    bk_gen(&d, from, to, stride, v);
    double t0 = bk_now();
    at_ckpt_batch_t *b = at_ckpt_batch_new();
    for (long j = 0; j < d.n; j++) {
        int rc = at_ckpt_batch_put(b, d.keys[j], d.klen[j], d.vals + j * VLEN, VLEN);
        if (rc)
            at_die("put", rc, NULL);
    }
    char meta[32];
    int ml = snprintf(meta, sizeof meta, "offset=%ld", to);
    (void)at_ckpt_batch_set_meta(b, meta, (size_t)ml);
    double t1 = bk_now();
    int rc = at_ckpt_write(c, b, NULL);
    double t2 = bk_now();
    if (rc)
        at_die("write", rc, NULL);
    at_ckpt_stats_t st;
    at_ckpt_stats(c, &st);
    *bytes = st.last_write_bytes;
    at_ckpt_batch_free(b);
    bk_free(&d);
    if (build_s)
        *build_s += t1 - t0;
    return t2 - t1;
}

static void ak_phase_write(const char *dir)
{
    at_ckpt_t *c = ak_open(dir);
    long per = nkeys / 10;
    double total = 0, build = 0;
    uint64_t bytes = 0, b1;
    for (int d = 0; d < 10; d++) {
        total += ak_write(c, d * per, (d + 1) * per, 1, 0, &build, &b1);
        bytes += b1;
    }
    printf("attune write-10x%ld  s %.3f  ms_per_ckpt %.1f  mb_s %.0f  keys_s %.0f  "
           "build_ms_per_ckpt %.1f\n",
           per, total, total * 100, (double)bytes / 1e6 / total, (double)nkeys / total,
           build * 100);
    at_ckpt_close(c);
}

static uint64_t ak_sum;
static int ak_cb(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)ud;
    ak_sum += klen + vlen + ((const uint8_t *)val)[vlen ? vlen - 1 : 0] + ((const uint8_t *)key)[0];
    return 0;
}

static void ak_load(const char *dir, const char *label)
{
    at_ckpt_t *c = ak_open(dir);
    void *meta;
    size_t ml;
    uint64_t id;
    char err[512] = "";
    ak_sum = 0;
    double t0 = bk_now();
    int rc = at_ckpt_load(c, &meta, &ml, &id, ak_cb, NULL, err, sizeof err);
    double t = bk_now() - t0;
    if (rc)
        at_die("load", rc, err);
    at_ckpt_stats_t st;
    at_ckpt_stats(c, &st);
    printf("attune %-16s s %.3f  keys_s %.0f  files %" PRIu64 "  disk_mb %.1f\n", label, t,
           (double)nkeys / t, st.files, (double)st.bytes / 1e6);
    free(meta);
    at_ckpt_close(c);
}

static void ak_phase_load_cold(const char *dir)
{
    bk_drop_cache(dir);
    ak_load(dir, "load-cold");
}

static void ak_phase_load_warm(const char *dir)
{
    ak_load(dir, "load-warm");
}

static void ak_phase_compact(const char *dir)
{
    at_ckpt_t *c = ak_open(dir);
    char err[512] = "";
    double t0 = bk_now();
    int rc = at_ckpt_compact(c, true, err, sizeof err);
    double t = bk_now() - t0;
    if (rc != 1)
        at_die("compact", rc, err);
    at_ckpt_stats_t st;
    at_ckpt_stats(c, &st);
    printf("attune compact           s %.3f  mb_s %.0f  disk_mb %.1f\n", t,
           (double)st.base_bytes / 1e6 / t, (double)st.bytes / 1e6);
    at_ckpt_close(c);
}

/* Deltas of n changed keys spread over the whole key space. */
static void ak_deltas(const char *dir, long n, int rounds)
{
    at_ckpt_t *c = ak_open(dir);
    double total = 0;
    uint64_t bytes = 0, b1;
    long stride = nkeys / n;
    for (int r = 0; r < rounds; r++) {
        total += ak_write(c, r % stride, nkeys, stride, r + 1, NULL, &b1);
        bytes += b1;
    }
    printf("attune delta-%-6ld      ms_per_ckpt %.1f  mb_s %.0f  keys_s %.0f\n", n,
           total * 1000 / rounds, (double)bytes / 1e6 / total, (double)n * rounds / total);
    at_ckpt_close(c);
}

static void ak_phase_d10k(const char *dir)
{
    ak_deltas(dir, 10000, 10);
}

static void ak_phase_d100k(const char *dir)
{
    ak_deltas(dir, 100000, 5);
}

/* ---- LMDB -------------------------------------------------------------------------- */

#ifdef AT_BENCH_LMDB
static void lm_check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "lmdb %s: %s\n", what, mdb_strerror(rc));
        exit(1);
    }
}

static MDB_env *lm_open(const char *dir)
{
    MDB_env *env;
    lm_check(mdb_env_create(&env), "env_create");
    lm_check(mdb_env_set_mapsize(env, (size_t)8 << 30), "set_mapsize");
    lm_check(mdb_env_open(env, dir, 0, 0644), "env_open");
    return env;
}

/* One write transaction: keys [from, to) by stride at version v, plus a
 * meta key. Returns seconds. */
static double lm_write(MDB_env *env, long from, long to, long stride, int v)
{
    bk_data_t dt;
    bk_gen(&dt, from, to, stride, v);
    double t0 = bk_now();
    MDB_txn *txn;
    MDB_dbi dbi;
    lm_check(mdb_txn_begin(env, NULL, 0, &txn), "txn_begin");
    lm_check(mdb_dbi_open(txn, NULL, 0, &dbi), "dbi_open");
    for (long j = 0; j < dt.n; j++) {
        MDB_val k = {dt.klen[j], dt.keys[j]}, d = {VLEN, dt.vals + j * VLEN};
        lm_check(mdb_put(txn, dbi, &k, &d, 0), "put");
    }
    char meta[32];
    int ml = snprintf(meta, sizeof meta, "offset=%ld", to);
    MDB_val mk = {1, "\x01"}, md = {(size_t)ml, meta};
    lm_check(mdb_put(txn, dbi, &mk, &md, 0), "put meta");
    lm_check(mdb_txn_commit(txn), "commit");
    double t = bk_now() - t0;
    bk_free(&dt);
    return t;
}

static void lm_phase_write(const char *dir)
{
    MDB_env *env = lm_open(dir);
    long per = nkeys / 10;
    double total = 0;
    for (int d = 0; d < 10; d++)
        total += lm_write(env, d * per, (d + 1) * per, 1, 0);
    int files;
    int64_t bytes = bk_du(dir, &files);
    printf("lmdb   write-10x%ld  s %.3f  ms_per_ckpt %.1f  mb_s %.0f  keys_s %.0f  disk_mb %.1f\n",
           per, total, total * 100, (double)bytes / 1e6 / total, (double)nkeys / total,
           (double)bytes / 1e6);
    mdb_env_close(env);
}

static void lm_load(const char *dir, const char *label)
{
    MDB_env *env = lm_open(dir);
    double t0 = bk_now();
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    lm_check(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "txn_begin");
    lm_check(mdb_dbi_open(txn, NULL, 0, &dbi), "dbi_open");
    lm_check(mdb_cursor_open(txn, dbi, &cur), "cursor_open");
    MDB_val k, d;
    long n = 0;
    ak_sum = 0;
    int rc;
    while ((rc = mdb_cursor_get(cur, &k, &d, n ? MDB_NEXT : MDB_FIRST)) == 0) {
        ak_cb(NULL, k.mv_data, k.mv_size, d.mv_data, d.mv_size);
        n++;
    }
    if (rc != MDB_NOTFOUND)
        lm_check(rc, "cursor_get");
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    double t = bk_now() - t0;
    printf("lmdb   %-16s s %.3f  keys_s %.0f  disk_mb %.1f\n", label, t, (double)n / t,
           (double)bk_du(dir, NULL) / 1e6);
    mdb_env_close(env);
}

static void lm_phase_load_cold(const char *dir)
{
    bk_drop_cache(dir);
    lm_load(dir, "load-cold");
}

static void lm_phase_load_warm(const char *dir)
{
    lm_load(dir, "load-warm");
}

static void lm_phase_compact(const char *dir)
{
    MDB_env *env = lm_open(dir);
    char to[4200];
    snprintf(to, sizeof to, "%s-compact", dir);
    if (at_mkdirs(to, 0755) != 0)
        exit(1);
    double t0 = bk_now();
    lm_check(mdb_env_copy2(env, to, MDB_CP_COMPACT), "env_copy2");
    int fd = open(to, O_RDONLY | O_DIRECTORY);
    (void)fsync(fd);
    close(fd);
    double t = bk_now() - t0;
    printf("lmdb   compact (copy2)  s %.3f  disk_mb %.1f -> %.1f\n", t,
           (double)bk_du(dir, NULL) / 1e6, (double)bk_du(to, NULL) / 1e6);
    mdb_env_close(env);
}

static void lm_deltas(const char *dir, long n, int rounds)
{
    MDB_env *env = lm_open(dir);
    double total = 0;
    long stride = nkeys / n;
    for (int r = 0; r < rounds; r++)
        total += lm_write(env, r % stride, nkeys, stride, r + 1);
    printf("lmdb   delta-%-6ld      ms_per_ckpt %.1f  keys_s %.0f  disk_mb %.1f\n", n,
           total * 1000 / rounds, (double)n * rounds / total, (double)bk_du(dir, NULL) / 1e6);
    mdb_env_close(env);
}

static void lm_phase_d10k(const char *dir)
{
    lm_deltas(dir, 10000, 10);
}

static void lm_phase_d100k(const char *dir)
{
    lm_deltas(dir, 100000, 5);
}
#endif

/* ---- main ---------------------------------------------------------------------------- */

static int bk_rm(const char *dir)
{
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd); /* NOLINT(cert-env33-c): a benchmark's scratch directory */
}

int main(int argc, char **argv)
{
    const char *parent = getenv("TMPDIR");
    bool lmdb = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            parent = argv[++i];
        else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
            nkeys = atol(argv[++i]);
        else if (strcmp(argv[i], "--no-lmdb") == 0)
            lmdb = false;
        else {
            fprintf(stderr, "usage: %s [--dir DIR] [--keys N] [--no-lmdb]\n", argv[0]);
            return 2;
        }
    }
    if (nkeys < 100000)
        nkeys = 100000;
    snprintf(base_dir, sizeof base_dir, "%s/bench-ckpt-XXXXXX", parent ? parent : "/tmp");
    if (!mkdtemp(base_dir)) {
        perror(base_dir);
        return 1;
    }
    char ad[4200], ld[4200];
    snprintf(ad, sizeof ad, "%s/attune", base_dir);
    snprintf(ld, sizeof ld, "%s/lmdb", base_dir);
    printf("bench_ckpt: %ld keys, %d-byte values, in %s\n", nkeys, VLEN, base_dir);
    int rc = 0;
    rc |= bk_phase("attune", "write-10", ak_phase_write, ad);
    rc |= bk_phase("attune", "load-cold", ak_phase_load_cold, ad);
    rc |= bk_phase("attune", "load-warm", ak_phase_load_warm, ad);
    rc |= bk_phase("attune", "compact", ak_phase_compact, ad);
    rc |= bk_phase("attune", "load-cold-base", ak_phase_load_cold, ad);
    rc |= bk_phase("attune", "delta-10k", ak_phase_d10k, ad);
    rc |= bk_phase("attune", "delta-100k", ak_phase_d100k, ad);
#ifdef AT_BENCH_LMDB
    if (lmdb && at_mkdirs(ld, 0755) == 0) {
        rc |= bk_phase("lmdb", "write-10", lm_phase_write, ld);
        rc |= bk_phase("lmdb", "load-cold", lm_phase_load_cold, ld);
        rc |= bk_phase("lmdb", "load-warm", lm_phase_load_warm, ld);
        rc |= bk_phase("lmdb", "compact", lm_phase_compact, ld);
        rc |= bk_phase("lmdb", "delta-10k", lm_phase_d10k, ld);
        rc |= bk_phase("lmdb", "delta-100k", lm_phase_d100k, ld);
    }
#else
    (void)lmdb;
    (void)ld;
    printf("lmdb: not built (liblmdb-dev missing)\n");
#endif
    (void)bk_rm(base_dir);
    return rc ? 1 : 0;
}
