/* test_ckpt.c - the checkpoint store (at_ckpt.h): round trips, newest
 * value wins, deletions, meta, compaction, and what a crash or a damaged
 * file leaves: a load gives exactly the previous or the new checkpoint,
 * or fails, never anything else.
 *
 * Every test keeps a model of the state (a sorted array of key -> value)
 * next to the store and compares each load with it. */
#include "log_test.h"

#include "at_ckpt.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>

/* ---- the model ------------------------------------------------------------ */

typedef struct mkv {
    char *key;
    size_t klen;
    char *val;
    size_t vlen;
} mkv_t;

typedef struct model {
    mkv_t *e; /* sorted by key (memcmp, shorter first) */
    size_t n, cap;
    char *meta;
    size_t meta_len;
} model_t;

static int keycmp(const void *a, size_t al, const void *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* Index of key in m, or where it would go (with *found). */
static size_t m_find(const model_t *m, const void *key, size_t klen, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = keycmp(m->e[mid].key, m->e[mid].klen, key, klen);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void m_put(model_t *m, const void *key, size_t klen, const void *val, size_t vlen)
{
    bool found;
    size_t i = m_find(m, key, klen, &found);
    if (found) {
        free(m->e[i].val);
    } else {
        if (m->n == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 64;
            m->e = realloc(m->e, m->cap * sizeof *m->e);
        }
        memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof *m->e);
        m->n++;
        m->e[i].key = malloc(klen);
        memcpy(m->e[i].key, key, klen);
        m->e[i].klen = klen;
    }
    m->e[i].val = malloc(vlen ? vlen : 1);
    if (vlen)
        memcpy(m->e[i].val, val, vlen);
    m->e[i].vlen = vlen;
}

static void m_del(model_t *m, const void *key, size_t klen)
{
    bool found;
    size_t i = m_find(m, key, klen, &found);
    if (!found)
        return;
    free(m->e[i].key);
    free(m->e[i].val);
    memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof *m->e);
    m->n--;
}

static void m_set_meta(model_t *m, const void *meta, size_t len)
{
    free(m->meta);
    m->meta = malloc(len ? len : 1);
    if (len)
        memcpy(m->meta, meta, len);
    m->meta_len = len;
}

static void m_free(model_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].key);
        free(m->e[i].val);
    }
    free(m->e);
    free(m->meta);
    memset(m, 0, sizeof *m);
}

static void m_copy(model_t *dst, const model_t *src)
{
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < src->n; i++)
        m_put(dst, src->e[i].key, src->e[i].klen, src->e[i].val, src->e[i].vlen);
    m_set_meta(dst, src->meta, src->meta_len);
}

/* ---- stores and batches ---------------------------------------------------- */

static at_ckpt_t *ck_open(const char *dir, const at_ckpt_opts_t *o)
{
    char err[512] = "";
    at_ckpt_t *c = NULL;
    int rc = at_ckpt_open(&c, dir, 7, o, err, sizeof err);
    if (rc)
        fail_msg("at_ckpt_open(%s): %s: %s", dir, at_strerror(rc), err);
    return c;
}

/* A deterministic value of length vlen for key number i, version v. */
static void mkval(char *out, size_t vlen, int i, int v)
{
    for (size_t k = 0; k < vlen; k++)
        out[k] = (char)((i * 31 + v * 17 + (int)k * 7) & 0xff);
}

/* Batch and model in one step. */
static void put(at_ckpt_batch_t *b, model_t *m, const char *key, const void *val, size_t vlen)
{
    assert_int_equal(at_ckpt_batch_put(b, key, strlen(key), val, vlen), 0);
    m_put(m, key, strlen(key), val, vlen);
}

static void del(at_ckpt_batch_t *b, model_t *m, const char *key)
{
    assert_int_equal(at_ckpt_batch_del(b, key, strlen(key)), 0);
    m_del(m, key, strlen(key));
}

static void meta(at_ckpt_batch_t *b, model_t *m, uint64_t id)
{
    char text[64];
    int n = snprintf(text, sizeof text, "offset=%llu", (unsigned long long)(id * 1000));
    text[n] = '\0';
    assert_int_equal(at_ckpt_batch_set_meta(b, text, (size_t)n + 1), 0);
    m_set_meta(m, text, (size_t)n + 1);
}

/* Writes b (asserting success and the id) and resets it. */
static void write_ok(at_ckpt_t *c, at_ckpt_batch_t *b, uint64_t want_id)
{
    uint64_t id = 0;
    int rc = at_ckpt_write(c, b, &id);
    if (rc)
        fail_msg("at_ckpt_write: %s", at_strerror(rc));
    assert_int_equal(id, want_id);
    at_ckpt_batch_reset(b);
}

/* A delta of n changes over keys "user:%06d" < nkeys: puts of fresh
 * versions, every del_every-th a deletion (0: none). */
static void ck_delta(at_ckpt_t *c, model_t *m, uint64_t id, int nkeys, int n, int seed,
                     int del_every)
{
    at_ckpt_batch_t *b = at_ckpt_batch_new();
    char key[32], val[512];
    for (int j = 0; j < n; j++) {
        int i = (int)(((unsigned)j * 2654435761u + (unsigned)seed * 40503u) % (unsigned)nkeys);
        snprintf(key, sizeof key, "user:%06d", i);
        if (del_every && j % del_every == del_every - 1) {
            del(b, m, key);
            continue;
        }
        size_t vlen = 20 + (size_t)((i * 7 + seed * 13) % 300);
        mkval(val, vlen, i, seed);
        put(b, m, key, val, vlen);
    }
    meta(b, m, id);
    write_ok(c, b, id);
    at_ckpt_batch_free(b);
}

/* What a load delivered, checked against a model as it comes. */
typedef struct seen {
    const model_t *m;
    size_t n;
    char last[AT_CKPT_MAX_KEY];
    size_t last_len;
    int bad;
} seen_t;

static int seen_cb(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    seen_t *s = ud;
    if (s->n && keycmp(s->last, s->last_len, key, klen) >= 0)
        s->bad = 1; /* out of order or repeated */
    memcpy(s->last, key, klen);
    s->last_len = klen;
    bool found;
    size_t i = m_find(s->m, key, klen, &found);
    if (!found || s->m->e[i].vlen != vlen || memcmp(s->m->e[i].val, val, vlen) != 0)
        s->bad = s->bad ? s->bad : 2; /* not in the model, or another value */
    s->n++;
    return 0;
}

/* Loads and returns the rc; on 0 compares with m and the id. */
static int ck_load_rc(at_ckpt_t *c, const model_t *m, uint64_t want_id, char *err, size_t errlen)
{
    seen_t *s = calloc(1, sizeof *s);
    s->m = m;
    void *mt = NULL;
    size_t mlen = 0;
    uint64_t id = 0;
    int rc = at_ckpt_load(c, &mt, &mlen, &id, seen_cb, s, err, errlen);
    if (rc == 0) {
        assert_int_equal(s->bad, 0);
        assert_int_equal(s->n, m->n);
        assert_int_equal(id, want_id);
        assert_int_equal(mlen, m->meta_len);
        if (mlen)
            assert_memory_equal(mt, m->meta, mlen);
    }
    free(mt);
    free(s);
    return rc;
}

static void ck_expect(at_ckpt_t *c, const model_t *m, uint64_t want_id)
{
    char err[512] = "";
    int rc = ck_load_rc(c, m, want_id, err, sizeof err);
    if (rc)
        fail_msg("at_ckpt_load: %s: %s", at_strerror(rc), err);
}

/* Reopens dir and expects m. */
static void ck_expect_dir(const char *dir, const model_t *m, uint64_t want_id)
{
    at_ckpt_t *c = ck_open(dir, NULL);
    ck_expect(c, m, want_id);
    at_ckpt_close(c);
}

static const char *ck_name(uint64_t id, const char *kind)
{
    static char name[64];
    snprintf(name, sizeof name, "%020llu.%s", (unsigned long long)id, kind);
    return name;
}

/* ---- snapshots of a directory ----------------------------------------------- */

typedef struct snap {
    char names[64][256];
    uint8_t *data[64];
    size_t len[64];
    int n;
} snap_t;

static void snap_take(snap_t *s, const char *dir)
{
    memset(s, 0, sizeof *s);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        assert_true(s->n < 64);
        snprintf(s->names[s->n], sizeof s->names[0], "%s", e->d_name);
        s->data[s->n] = lt_read_file(lt_path(dir, e->d_name), &s->len[s->n]);
        s->n++;
    }
    closedir(d);
}

static void snap_free(snap_t *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->data[i]);
    s->n = 0;
}

/* Empties dir and writes the snapshot's files into it. */
static void snap_restore(const snap_t *s, const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    for (int i = 0; i < s->n; i++)
        lt_poke(lt_path(dir, s->names[i]), 0, s->data[i], s->len[i]);
}

static const uint8_t *snap_get(const snap_t *s, const char *name, size_t *len)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) {
            *len = s->len[i];
            return s->data[i];
        }
    fail_msg("no %s in the snapshot", name);
    return NULL;
}

static void write_prefix(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    int fd = open(lt_path(dir, name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static bool file_exists(const char *dir, const char *name)
{
    return access(lt_path(dir, name), F_OK) == 0;
}

/* ---- tests ---------------------------------------------------------------------- */

/* A fresh store has nothing to load. */
static void test_fresh(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    char sub[4200];
    assert_int_equal(at_ckpt_dir(sub, sizeof sub, dir, 7), 0);
    assert_true(strstr(sub, "/ckpt/p0007") != NULL);
    at_ckpt_t *c = ck_open(sub, NULL);
    void *mt = (void *)1;
    size_t mlen = 9;
    uint64_t id = 9;
    char err[256];
    assert_int_equal(at_ckpt_load(c, &mt, &mlen, &id, seen_cb, NULL, err, sizeof err),
                     AT_ENOTFOUND);
    assert_null(mt);
    assert_int_equal(mlen, 0);
    assert_int_equal(id, 0);
    at_ckpt_stats_t st;
    at_ckpt_stats(c, &st);
    assert_int_equal(st.files, 0);
    assert_int_equal(st.last_id, 0);
    assert_false(at_ckpt_compact_due(c));
    assert_int_equal(at_ckpt_compact(c, true, err, sizeof err), 0);
    at_ckpt_close(c);
    lt_rmdir(dir);
}

/* Puts, then load: every key once, in order, with its value, and the meta. */
static void test_roundtrip(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_ckpt_t *c = ck_open(dir, NULL);
    model_t m = {0};
    ck_delta(c, &m, 1, 5000, 3000, 1, 0);
    ck_expect(c, &m, 1);
    at_ckpt_close(c);
    ck_expect_dir(dir, &m, 1);
    assert_true(file_exists(dir, ck_name(1, "base")));
    m_free(&m);
    lt_rmdir(dir);
}

/* Across deltas the newest value wins and deletions stay deleted; an empty
 * delta changes only the meta; the state survives a reopen. */
static void test_newest_wins_and_deletes(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_ckpt_opts_t o = {.compact_max_deltas = 1000, .compact_ratio = 1000};
    at_ckpt_t *c = ck_open(dir, &o);
    model_t m = {0};
    uint64_t id = 0;
    for (int round = 0; round < 8; round++) {
        ck_delta(c, &m, ++id, 800, 300 + round * 50, round, round ? 3 : 0);
        ck_expect(c, &m, id);
    }
    /* Deleting a key that was never there is harmless. */
    at_ckpt_batch_t *b = at_ckpt_batch_new();
    del(b, &m, "never-was");
    meta(b, &m, ++id);
    write_ok(c, b, id);
    ck_expect(c, &m, id);
    /* Empty delta: same state, new meta. */
    meta(b, &m, ++id);
    write_ok(c, b, id);
    ck_expect(c, &m, id);
    /* No meta at all. */
    m_set_meta(&m, "", 0);
    write_ok(c, b, ++id);
    ck_expect(c, &m, id);
    /* A key deleted, then put back in a later delta. */
    char v[] = "back again";
    del(b, &m, "user:000001");
    meta(b, &m, ++id);
    write_ok(c, b, id);
    put(b, &m, "user:000001", v, sizeof v);
    meta(b, &m, ++id);
    write_ok(c, b, id);
    ck_expect(c, &m, id);
    at_ckpt_stats_t st;
    at_ckpt_stats(c, &st);
    assert_int_equal(st.last_id, id);
    assert_int_equal(st.base_id, 1);
    assert_int_equal(st.deltas, id - 1);
    assert_int_equal(st.files, id);
    assert_true(st.bytes > 0 && st.last_write_ns > 0);
    at_ckpt_close(c);
    ck_expect_dir(dir, &m, id);
    at_ckpt_batch_free(b);
    m_free(&m);
    lt_rmdir(dir);
}

/* Within one batch a key given twice: the last one wins. */
static void test_batch_last_wins(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_ckpt_t *c = ck_open(dir, NULL);
    model_t m = {0};
    at_ckpt_batch_t *b = at_ckpt_batch_new();
    put(b, &m, "a", "1", 1);
    put(b, &m, "b", "1", 1);
    put(b, &m, "a", "2", 1);
    put(b, &m, "c", "1", 1);
    meta(b, &m, 1);
    write_ok(c, b, 1);
    put(b, &m, "b", "2", 1);
    del(b, &m, "b");
    del(b, &m, "c");
    put(b, &m, "c", "3", 1);
    put(b, &m, "a", "3", 1);
    put(b, &m, "a", "4", 1);
    meta(b, &m, 2);
    assert_int_equal(at_ckpt_batch_count(b), 6);
    write_ok(c, b, 2);
    ck_expect(c, &m, 2);
    assert_int_equal(m.n, 2);
    /* A batch written again after more changes keeps last-wins. */
    put(b, &m, "z", "1", 1);
    put(b, &m, "y", "1", 1);
    meta(b, &m, 3);
    uint64_t id;
    assert_int_equal(at_ckpt_write(c, b, &id), 0);
    put(b, &m, "z", "2", 1);
    meta(b, &m, 4);
    assert_int_equal(at_ckpt_write(c, b, &id), 0);
    assert_int_equal(id, 4);
    ck_expect(c, &m, 4);
    /* Bad arguments. */
    assert_int_equal(at_ckpt_batch_put(b, "", 0, "x", 1), AT_EINVALID);
    static char big[AT_CKPT_MAX_KEY + 1];
    assert_int_equal(at_ckpt_batch_put(b, big, sizeof big, "x", 1), AT_ETOOBIG);
    assert_int_equal(at_ckpt_batch_del(b, big, sizeof big), AT_ETOOBIG);
    assert_int_equal(at_ckpt_batch_set_meta(b, big, AT_CKPT_MAX_META + 1), AT_ETOOBIG);
    at_ckpt_batch_free(b);
    at_ckpt_close(c);
    m_free(&m);
    lt_rmdir(dir);
}

/* Keys of every length with long shared prefixes, and binary bytes, sort
 * and merge in memcmp order. */
static void test_key_order(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_ckpt_t *c = ck_open(dir, NULL);
    model_t m = {0};
    unsigned x = 12345;
    for (uint64_t id = 1; id <= 6; id++) {
        at_ckpt_batch_t *b = at_ckpt_batch_new();
        for (int j = 0; j < 400; j++) {
            char key[64];
            x = x * 1103515245u + 12345u;
            size_t klen = 1 + (x >> 8) % 20;
            for (size_t k = 0; k < klen; k++) {
                x = x * 1103515245u + 12345u;
                key[k] = (x >> 16) % 4 == 0 ? '\0' : (char)("ab\xff"[(x >> 20) % 3]);
            }
            assert_int_equal(at_ckpt_batch_put(b, key, klen, key, klen), 0);
            m_put(&m, key, klen, key, klen);
            if (j % 5 == 0) {
                assert_int_equal(at_ckpt_batch_del(b, key, klen > 2 ? klen - 1 : klen), 0);
                m_del(&m, key, klen > 2 ? klen - 1 : klen);
            }
        }
        meta(b, &m, id);
        write_ok(c, b, id);
        at_ckpt_batch_free(b);
        ck_expect(c, &m, id);
    }
    char err[256];
    assert_int_equal(at_ckpt_compact(c, true, err, sizeof err), 1);
    ck_expect(c, &m, 6);
    at_ckpt_close(c);
    m_free(&m);
    lt_rmdir(dir);
}

/* Compaction gives the same load as before, leaves one file, and later
 * deltas build on the new base. */
static void test_compact_equivalence(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_ckpt_opts_t o = {.compact_ratio = 1000, .compact_max_deltas = 1000};
    at_ckpt_t *c = ck_open(dir, &o);
    model_t m = {0};
    char err[256];
    for (uint64_t id = 1; id <= 10; id++)
        ck_delta(c, &m, id, 3000, id == 1 ? 3000 : 700, (int)id, 4);
    ck_expect(c, &m, 10);
    assert_false(at_ckpt_compact_due(c));
    assert_int_equal(at_ckpt_compact(c, false, err, sizeof err), 0);
    assert_int_equal(at_ckpt_compact(c, true, err, sizeof err), 1);
    at_ckpt_stats_t st;
    at_ckpt_stats(c, &st);
    assert_int_equal(st.files, 1);
    assert_int_equal(st.base_id, 10);
    assert_int_equal(st.deltas, 0);
    assert_int_equal(st.compactions, 1);
    assert_true(file_exists(dir, ck_name(10, "base")));
    ck_expect(c, &m, 10);
    assert_int_equal(at_ckpt_compact(c, true, err, sizeof err), 0); /* nothing to do */
    ck_delta(c, &m, 11, 3000, 500, 11, 2);
    ck_expect(c, &m, 11);
    at_ckpt_close(c);
    ck_expect_dir(dir, &m, 11);
    m_free(&m);
    lt_rmdir(dir);
}

/* The policy: by ratio of bytes and by count of deltas. */
static void test_compact_policy(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_ckpt_opts_t o = {.compact_ratio = 0.5, .compact_max_deltas = 4};
    at_ckpt_t *c = ck_open(dir, &o);
    model_t m = {0};
    char err[256];
    ck_delta(c, &m, 1, 4000, 4000, 1, 0);
    ck_delta(c, &m, 2, 4000, 100, 2, 0);
    assert_false(at_ckpt_compact_due(c));
    ck_delta(c, &m, 3, 4000, 2500, 3, 0); /* more than half the base */
    assert_true(at_ckpt_compact_due(c));
    assert_int_equal(at_ckpt_compact(c, false, err, sizeof err), 1);
    assert_false(at_ckpt_compact_due(c));
    for (uint64_t id = 4; id <= 8; id++)
        ck_delta(c, &m, id, 4000, 10, (int)id, 0);
    assert_true(at_ckpt_compact_due(c)); /* five small deltas > 4 */
    assert_int_equal(at_ckpt_compact(c, false, err, sizeof err), 1);
    ck_expect(c, &m, 8);
    at_ckpt_close(c);
    m_free(&m);
    lt_rmdir(dir);
}

/* Many deltas load (one cursor each) and compact. */
static void test_many_deltas(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_ckpt_opts_t o = {.compact_ratio = 1e9, .compact_max_deltas = 1000000};
    at_ckpt_t *c = ck_open(dir, &o);
    model_t m = {0};
    char err[256];
    for (uint64_t id = 1; id <= 200; id++)
        ck_delta(c, &m, id, 2000, 25, (int)id, 5);
    ck_expect(c, &m, 200);
    at_ckpt_close(c);
    c = ck_open(dir, &o);
    ck_expect(c, &m, 200);
    assert_int_equal(at_ckpt_compact(c, true, err, sizeof err), 1);
    ck_expect(c, &m, 200);
    assert_int_equal(lt_count_files(dir, ".delta"), 0);
    at_ckpt_close(c);
    m_free(&m);
    lt_rmdir(dir);
}

/* Values bigger than a block and than a batch chunk, the longest key, and
 * a large meta. */
static void test_large_values(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_ckpt_t *c = ck_open(dir, NULL);
    model_t m = {0};
    size_t sizes[] = {64 << 10, (64 << 10) + 1, 3 << 20, 100, 0, 200 << 10};
    at_ckpt_batch_t *b = at_ckpt_batch_new();
    char *v = malloc(3 << 20);
    for (size_t i = 0; i < AT_ARRAY_LEN(sizes); i++) {
        char key[32];
        snprintf(key, sizeof key, "big:%zu", i);
        mkval(v, sizes[i], (int)i, 1);
        put(b, &m, key, v, sizes[i]);
    }
    char *longkey = malloc(AT_CKPT_MAX_KEY + 1);
    memset(longkey, 'k', AT_CKPT_MAX_KEY);
    longkey[AT_CKPT_MAX_KEY] = '\0';
    put(b, &m, longkey, "v", 1);
    char *bigmeta = malloc(AT_CKPT_MAX_META);
    mkval(bigmeta, AT_CKPT_MAX_META, 5, 5);
    assert_int_equal(at_ckpt_batch_set_meta(b, bigmeta, AT_CKPT_MAX_META), 0);
    m_set_meta(&m, bigmeta, AT_CKPT_MAX_META);
    write_ok(c, b, 1);
    ck_expect(c, &m, 1);
    mkval(v, 3 << 20, 9, 9);
    put(b, &m, "big:1", v, 3 << 20);
    del(b, &m, "big:2");
    meta(b, &m, 2);
    write_ok(c, b, 2);
    ck_expect(c, &m, 2);
    char err[256];
    assert_int_equal(at_ckpt_compact(c, true, err, sizeof err), 1);
    ck_expect(c, &m, 2);
    at_ckpt_close(c);
    at_ckpt_batch_free(b);
    free(v);
    free(longkey);
    free(bigmeta);
    m_free(&m);
    lt_rmdir(dir);
}

/* A full batch is written as a base: its deletions are dropped and every
 * older file goes. */
static void test_full_batch(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_ckpt_t *c = ck_open(dir, NULL);
    model_t m = {0};
    ck_delta(c, &m, 1, 100, 100, 1, 0);
    ck_delta(c, &m, 2, 100, 50, 2, 3);
    m_free(&m);
    at_ckpt_batch_t *b = at_ckpt_batch_new();
    at_ckpt_batch_set_full(b, true);
    put(b, &m, "only", "1", 1);
    del(b, &m, "gone");
    meta(b, &m, 3);
    write_ok(c, b, 3);
    ck_expect(c, &m, 3);
    assert_int_equal(lt_count_files(dir, ".delta"), 0);
    assert_int_equal(lt_count_files(dir, ".base"), 1);
    at_ckpt_close(c);
    ck_expect_dir(dir, &m, 3);
    at_ckpt_batch_free(b);
    m_free(&m);
    lt_rmdir(dir);
}

/* Builds a store with ids 1..n (a base and deltas) in dir; m gets the state
 * after n-1 (prev) and after n (m). The last file's bytes stay in *last. */
static void build_chain(const char *dir, int n, model_t *prev, model_t *m, int nkeys, int per)
{
    at_ckpt_opts_t o = {.compact_ratio = 1e9, .compact_max_deltas = 1000};
    at_ckpt_t *c = ck_open(dir, &o);
    memset(m, 0, sizeof *m);
    for (int id = 1; id <= n; id++) {
        if (id == n)
            m_copy(prev, m);
        ck_delta(c, m, (uint64_t)id, nkeys, id == 1 ? nkeys : per, id, 3);
    }
    at_ckpt_close(c);
}

static int fallback_calls;
static bool fallback_yes(void *ud, uint64_t id, const void *mt, size_t mlen)
{
    const model_t *want = ud;
    fallback_calls++;
    assert_int_equal(mlen, want->meta_len);
    assert_memory_equal(mt, want->meta, mlen);
    (void)id;
    return true;
}
static bool fallback_no(void *ud, uint64_t id, const void *mt, size_t mlen)
{
    (void)ud, (void)id, (void)mt, (void)mlen;
    fallback_calls++;
    return false;
}

/* A crash while the newest file was being written leaves a .tmp of any
 * length: the load gives the previous checkpoint and deletes the .tmp. The
 * whole file under its name gives the new one. A file cut short under its
 * final name (which a sync before the rename rules out) is corruption:
 * an error, or with a fallback the previous checkpoint. */
static void test_crash_every_prefix(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    model_t prev, m;
    build_chain(dir, 3, &prev, &m, 60, 20);
    snap_t full, old;
    snap_take(&full, dir);
    size_t len = 0;
    const uint8_t *newest = snap_get(&full, ck_name(3, "delta"), &len);
    unlink(lt_path(dir, ck_name(3, "delta")));
    snap_take(&old, dir);
    assert_true(len > 200 && len < 20000);
    char tmpname[96];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", ck_name(3, "delta"));
    for (size_t cut = 0; cut <= len; cut++) {
        snap_restore(&old, dir);
        write_prefix(dir, tmpname, newest, cut);
        at_ckpt_t *c = ck_open(dir, NULL);
        assert_false(file_exists(dir, tmpname));
        ck_expect(c, &prev, 2);
        at_ckpt_close(c);
    }
    snap_restore(&full, dir);
    ck_expect_dir(dir, &m, 3);
    at_ckpt_opts_t fb = {.fallback = NULL};
    for (size_t cut = 0; cut < len; cut += 1 + cut / 16) {
        snap_restore(&old, dir);
        write_prefix(dir, ck_name(3, "delta"), newest, cut);
        char err[512] = "";
        at_ckpt_t *c = ck_open(dir, &fb);
        assert_int_equal(ck_load_rc(c, &m, 3, err, sizeof err), AT_ECORRUPT);
        assert_non_null(strstr(err, ck_name(3, "delta")));
        at_ckpt_close(c);
        if (cut % 5 == 0) {
            at_ckpt_opts_t o = {.fallback = fallback_yes, .fallback_ud = &prev};
            c = ck_open(dir, &o);
            ck_expect(c, &prev, 2);
            at_ckpt_close(c);
            assert_int_equal(lt_count_files(dir, ".corrupt"), 1);
        }
    }
    snap_free(&full);
    snap_free(&old);
    m_free(&prev);
    m_free(&m);
    lt_rmdir(dir);
}

/* A garbled byte anywhere in the newest file is always caught: strict
 * loads fail naming the file, and nothing is delivered; with a fallback
 * the previous checkpoint loads, the bad file is set aside and the next
 * write continues from there. A garbled .tmp changes nothing. */
static void test_garbled_bytes(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    model_t prev, m;
    build_chain(dir, 3, &prev, &m, 40, 15);
    snap_t full;
    snap_take(&full, dir);
    size_t len = 0;
    const uint8_t *newest = snap_get(&full, ck_name(3, "delta"), &len);
    char err[512];
    for (size_t pos = 0; pos < len; pos++) {
        snap_restore(&full, dir);
        lt_flip(lt_path(dir, ck_name(3, "delta")), (int64_t)pos, (uint8_t)(1u << (pos % 8)));
        at_ckpt_t *c = ck_open(dir, NULL);
        seen_t s = {.m = &m};
        void *mt = NULL;
        size_t mlen;
        uint64_t id;
        int rc = at_ckpt_load(c, &mt, &mlen, &id, seen_cb, &s, err, sizeof err);
        assert_int_equal(rc, AT_ECORRUPT);
        assert_int_equal(s.n, 0); /* nothing delivered */
        assert_non_null(strstr(err, ck_name(3, "delta")));
        at_ckpt_close(c);
        assert_true(file_exists(dir, ck_name(3, "delta"))); /* nothing changed */
        if (pos % 7 == 0) {
            at_ckpt_opts_t o = {.fallback = fallback_yes, .fallback_ud = &prev};
            c = ck_open(dir, &o);
            ck_expect(c, &prev, 2);
            at_ckpt_close(c);
            assert_false(file_exists(dir, ck_name(3, "delta")));
            char aside[96];
            snprintf(aside, sizeof aside, "%s.corrupt", ck_name(3, "delta"));
            assert_true(file_exists(dir, aside));
        }
    }
    /* A garbled .tmp is only a write cut short. */
    snap_restore(&full, dir);
    char tmpname[96];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", ck_name(4, "delta"));
    write_prefix(dir, tmpname, newest, len);
    lt_flip(lt_path(dir, tmpname), 20, 0x10);
    ck_expect_dir(dir, &m, 3);
    snap_free(&full);
    m_free(&prev);
    m_free(&m);
    lt_rmdir(dir);
}

/* The fallback rules: a refusal is an error; after an accepted fallback,
 * writes continue from the loaded checkpoint and later loads see them. A
 * damaged base has nothing older to fall back to. */
static void test_fallback(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    model_t prev, m;
    build_chain(dir, 4, &prev, &m, 50, 10);
    /* Damage delta 3: checkpoint 3 and 4 are both lost; 2 is whole. */
    size_t len = 0;
    uint8_t *d3 = lt_read_file(lt_path(dir, ck_name(3, "delta")), &len);
    lt_flip(lt_path(dir, ck_name(3, "delta")), (int64_t)len / 2, 0x01);
    free(d3);
    char err[512];
    at_ckpt_opts_t no = {.fallback = fallback_no};
    at_ckpt_t *c = ck_open(dir, &no);
    fallback_calls = 0;
    assert_int_equal(ck_load_rc(c, &m, 4, err, sizeof err), AT_ECORRUPT);
    assert_int_equal(fallback_calls, 1);
    assert_non_null(strstr(err, ck_name(3, "delta")));
    /* A delta on a chain known to be broken is refused. */
    at_ckpt_batch_t *b = at_ckpt_batch_new();
    assert_int_equal(at_ckpt_write(c, b, NULL), AT_ECORRUPT);
    at_ckpt_close(c);
    /* Rebuild the state of checkpoint 2 in the model. */
    model_t m2 = {0};
    {
        at_ckpt_opts_t o = {.compact_ratio = 1e9, .compact_max_deltas = 1000};
        char *scratch = lt_tmpdir();
        at_ckpt_t *s = ck_open(scratch, &o);
        ck_delta(s, &m2, 1, 50, 50, 1, 3);
        ck_delta(s, &m2, 2, 50, 10, 2, 3);
        at_ckpt_close(s);
        lt_rmdir(scratch);
    }
    at_ckpt_opts_t yes = {.fallback = fallback_yes, .fallback_ud = &m2};
    c = ck_open(dir, &yes);
    fallback_calls = 0;
    ck_expect(c, &m2, 2);
    assert_int_equal(fallback_calls, 1);
    at_ckpt_stats_t st;
    at_ckpt_stats(c, &st);
    assert_int_equal(st.last_id, 2);
    put(b, &m2, "after", "fallback", 8);
    meta(b, &m2, 3);
    write_ok(c, b, 3);
    ck_expect(c, &m2, 3);
    at_ckpt_close(c);
    ck_expect_dir(dir, &m2, 3);
    assert_int_equal(lt_count_files(dir, ".corrupt"), 2);
    /* Damaged base: nothing to fall back to. */
    lt_flip(lt_path(dir, ck_name(1, "base")), 60, 0x80);
    c = ck_open(dir, &yes);
    assert_int_equal(ck_load_rc(c, &m2, 3, err, sizeof err), AT_ECORRUPT);
    assert_non_null(strstr(err, ck_name(1, "base")));
    assert_int_equal(at_ckpt_write(c, b, NULL), AT_ECORRUPT);
    /* A full batch starts over. */
    at_ckpt_batch_reset(b);
    model_t m3 = {0};
    at_ckpt_batch_set_full(b, true);
    put(b, &m3, "fresh", "start", 5);
    meta(b, &m3, 4);
    write_ok(c, b, 4);
    ck_expect(c, &m3, 4);
    at_ckpt_close(c);
    at_ckpt_batch_free(b);
    m_free(&prev);
    m_free(&m);
    m_free(&m2);
    m_free(&m3);
    lt_rmdir(dir);
}

/* A compaction that meets a damaged file fails naming it, leaves nothing
 * behind and changes nothing; deltas on that chain are refused from then
 * on, and a full batch starts over. */
static void test_compact_corrupt(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    model_t prev, m;
    build_chain(dir, 4, &prev, &m, 200, 50);
    size_t len = 0;
    free(lt_read_file(lt_path(dir, ck_name(2, "delta")), &len));
    lt_flip(lt_path(dir, ck_name(2, "delta")), (int64_t)len - 100, 0x02);
    at_ckpt_t *c = ck_open(dir, NULL);
    char err[512] = "";
    assert_int_equal(at_ckpt_compact(c, true, err, sizeof err), AT_ECORRUPT);
    assert_non_null(strstr(err, ck_name(2, "delta")));
    assert_int_equal(lt_count_files(dir, ".tmp"), 0);
    assert_int_equal(lt_count_files(dir, ".delta"), 3);
    at_ckpt_batch_t *b = at_ckpt_batch_new();
    assert_int_equal(at_ckpt_write(c, b, NULL), AT_ECORRUPT);
    model_t m2 = {0};
    at_ckpt_batch_set_full(b, true);
    put(b, &m2, "k", "v", 1);
    meta(b, &m2, 5);
    write_ok(c, b, 5);
    ck_expect(c, &m2, 5);
    assert_int_equal(lt_count_files(dir, ".corrupt"), 1);
    assert_int_equal(lt_count_files(dir, ".delta"), 0);
    at_ckpt_close(c);
    at_ckpt_batch_free(b);
    m_free(&prev);
    m_free(&m);
    m_free(&m2);
    lt_rmdir(dir);
}

/* A missing delta in the middle of the chain is corruption too. */
static void test_missing_delta(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    model_t prev, m;
    build_chain(dir, 4, &prev, &m, 30, 5);
    unlink(lt_path(dir, ck_name(2, "delta")));
    at_ckpt_t *c = ck_open(dir, NULL);
    char err[512];
    assert_int_equal(ck_load_rc(c, &m, 4, err, sizeof err), AT_ECORRUPT);
    if (!strstr(err, ck_name(2, "delta")))
        fail_msg("err: %s", err);
    assert_non_null(strstr(err, "missing"));
    at_ckpt_close(c);
    m_free(&prev);
    m_free(&m);
    lt_rmdir(dir);
}

/* A crash at each step of a compaction: while the new base is a .tmp
 * (any length), after its rename with the whole old chain still there,
 * and after each deletion of an old file; with a damaged new base and the
 * old chain still there. Every one loads the state of the newest
 * checkpoint, and a writable load removes the leftovers. */
static void test_compact_crash_steps(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    model_t prev, m;
    build_chain(dir, 5, &prev, &m, 80, 20);
    snap_t before, after;
    snap_take(&before, dir);
    at_ckpt_t *c = ck_open(dir, NULL);
    char err[256];
    assert_int_equal(at_ckpt_compact(c, true, err, sizeof err), 1);
    at_ckpt_close(c);
    snap_take(&after, dir);
    assert_int_equal(after.n, 1);
    size_t blen = 0;
    const uint8_t *base = snap_get(&after, ck_name(5, "base"), &blen);
    char tmpname[96];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", ck_name(5, "base"));
    for (size_t cut = 0; cut <= blen; cut += 1 + cut / 8) {
        snap_restore(&before, dir);
        write_prefix(dir, tmpname, base, cut);
        ck_expect_dir(dir, &m, 5);
        assert_int_equal(lt_count_files(dir, ".delta"), 4);
        assert_false(file_exists(dir, tmpname));
    }
    /* Renamed; then the old files deleted oldest first, one at a time. */
    for (int deleted = 0; deleted <= 5; deleted++) {
        snap_restore(&before, dir);
        write_prefix(dir, ck_name(5, "base"), base, blen);
        for (int k = 0; k < deleted; k++)
            unlink(lt_path(dir, ck_name((uint64_t)k + 1, k == 0 ? "base" : "delta")));
        c = ck_open(dir, NULL);
        ck_expect(c, &m, 5);
        at_ckpt_stats_t st;
        at_ckpt_stats(c, &st);
        assert_int_equal(st.files, 1); /* leftovers removed */
        at_ckpt_close(c);
        assert_int_equal(lt_count_files(dir, ".delta"), 0);
        ck_expect_dir(dir, &m, 5);
    }
    /* A damaged new base with the old chain intact: the chain holds the
     * same state and is used; the base is set aside. */
    snap_restore(&before, dir);
    write_prefix(dir, ck_name(5, "base"), base, blen);
    lt_flip(lt_path(dir, ck_name(5, "base")), (int64_t)blen / 2, 0x20);
    ck_expect_dir(dir, &m, 5);
    assert_int_equal(lt_count_files(dir, ".corrupt"), 1);
    ck_expect_dir(dir, &m, 5);
    snap_free(&before);
    snap_free(&after);
    m_free(&prev);
    m_free(&m);
    lt_rmdir(dir);
}

/* A file of a newer format (its checksum right) is reported as such, not
 * as damage. */
static void test_newer_format(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    model_t prev, m;
    build_chain(dir, 1, &prev, &m, 10, 10);
    size_t len = 0;
    uint8_t *p = lt_read_file(lt_path(dir, ck_name(1, "base")), &len);
    uint32_t meta_len;
    memcpy(&meta_len, p + 20, 4);
    p[8] = 2; /* format 2 */
    uint64_t sum = at_hash64(p, 48 + meta_len);
    memcpy(p + 48 + meta_len, &sum, 8);
    lt_poke(lt_path(dir, ck_name(1, "base")), 0, p, len);
    at_ckpt_t *c = ck_open(dir, NULL);
    char err[512];
    assert_int_equal(ck_load_rc(c, &m, 1, err, sizeof err), AT_EVERSION);
    at_ckpt_close(c);
    free(p);
    m_free(&prev);
    m_free(&m);
    lt_rmdir(dir);
}

static struct rlimit saved_fsize;

/* A write that fails part-way (EFBIG) publishes nothing and leaves no
 * .tmp; the same batch written again succeeds. */
static void test_write_failure(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    at_ckpt_t *c = ck_open(dir, NULL);
    model_t m = {0};
    ck_delta(c, &m, 1, 500, 500, 1, 0);
    model_t want;
    m_copy(&want, &m);
    at_ckpt_batch_t *b = at_ckpt_batch_new();
    char val[300];
    for (int i = 0; i < 400; i++) {
        char key[32];
        snprintf(key, sizeof key, "user:%06d", i);
        mkval(val, sizeof val, i, 77);
        put(b, &m, key, val, sizeof val);
    }
    meta(b, &m, 2);
    struct rlimit rl = saved_fsize;
    rl.rlim_cur = 5000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
    uint64_t id = 0;
    assert_int_equal(at_ckpt_write(c, b, &id), -EFBIG);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
    assert_int_equal(lt_count_files(dir, ".tmp"), 0);
    ck_expect(c, &want, 1);
    write_ok(c, b, 2);
    ck_expect(c, &m, 2);
    at_ckpt_close(c);
    ck_expect_dir(dir, &m, 2);
    at_ckpt_batch_free(b);
    m_free(&m);
    m_free(&want);
    lt_rmdir(dir);
}

/* One writer per directory; read-only stores load but never write or
 * clean up; a file of another partition is refused. */
static void test_lock_read_only_partition(void **state)
{
    (void)state;
    char *dir = lt_tmpdir();
    model_t prev, m;
    build_chain(dir, 2, &prev, &m, 20, 5);
    at_ckpt_t *c = ck_open(dir, NULL), *c2 = NULL;
    char err[256];
    assert_int_equal(at_ckpt_open(&c2, dir, 7, NULL, err, sizeof err), -EWOULDBLOCK);
    at_ckpt_opts_t ro = {.read_only = true};
    char tmpname[96];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", ck_name(3, "delta"));
    write_prefix(dir, tmpname, (const uint8_t *)"junk", 4);
    c2 = ck_open(dir, &ro);
    ck_expect(c2, &m, 2);
    at_ckpt_batch_t *b = at_ckpt_batch_new();
    assert_int_equal(at_ckpt_write(c2, b, NULL), -EROFS);
    assert_int_equal(at_ckpt_compact(c2, true, err, sizeof err), -EROFS);
    at_ckpt_close(c2);
    assert_true(file_exists(dir, tmpname));
    at_ckpt_close(c);
    /* Another partition's file. */
    at_ckpt_t *p8 = NULL;
    assert_int_equal(at_ckpt_open(&p8, dir, 8, NULL, err, sizeof err), 0);
    assert_int_equal(ck_load_rc(p8, &m, 2, err, sizeof err), AT_ECORRUPT);
    at_ckpt_close(p8);
    ck_expect_dir(dir, &m, 2);
    at_ckpt_batch_free(b);
    m_free(&prev);
    m_free(&m);
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
        cmocka_unit_test(test_fresh),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_newest_wins_and_deletes),
        cmocka_unit_test(test_batch_last_wins),
        cmocka_unit_test(test_key_order),
        cmocka_unit_test(test_compact_equivalence),
        cmocka_unit_test(test_compact_policy),
        cmocka_unit_test(test_many_deltas),
        cmocka_unit_test(test_large_values),
        cmocka_unit_test(test_full_batch),
        cmocka_unit_test(test_crash_every_prefix),
        cmocka_unit_test(test_garbled_bytes),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_compact_corrupt),
        cmocka_unit_test(test_missing_delta),
        cmocka_unit_test(test_compact_crash_steps),
        cmocka_unit_test(test_newer_format),
        cmocka_unit_test(test_write_failure),
        cmocka_unit_test(test_lock_read_only_partition),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
