/* fuzz_log_ckpt.c - arbitrary bytes as a checkpoint file.
 *
 * The scratch store holds a valid base, checkpoint 1 (five keys). The input
 * is written next to it under the name its header claims (id at byte 24,
 * base flag at byte 12: "NNNN.base" or "NNNN.delta"; it may replace the
 * base), then the store is loaded read-only and writable, compacted,
 * loaded again, written to and loaded again. Nothing may crash, and:
 * keys come strictly increasing, within the limits; a read-only and a
 * writable load agree; a load of checkpoint 1 gives exactly the base's
 * state (unless the input replaced it); compaction changes nothing a load returns; after a failed
 * load nothing is delivered.
 *
 * Each input runs twice: as it is, and with every checksum recomputed over
 * the structure its length fields describe, so that the checks behind the
 * checksums (order of keys, counts, lengths, kinds) get fuzzed too: a file
 * crafted to pass its checksums must still never make a load misbehave.
 */
#include "at_ckpt.h"
#include "at_core.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define FZ_PARTITION 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_dir[4096];
static uint8_t *fz_base; /* the valid base's bytes */
static size_t fz_base_len;
static uint64_t fz_base_digest;
static bool fz_base_replaced; /* the input took the base's name */

#define FZ_CHECK(c)                                                                                \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_log_ckpt: check failed: %s (line %d)\n", #c, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* What a load delivered: a digest of the stream and order checks. */
typedef struct fz_seen {
    uint64_t digest;
    size_t n;
    uint8_t last[AT_CKPT_MAX_KEY];
    size_t last_len;
} fz_seen_t;

static int fz_cb(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    fz_seen_t *s = ud;
    FZ_CHECK(klen >= 1 && klen <= AT_CKPT_MAX_KEY && vlen <= AT_CKPT_MAX_VALUE);
    if (s->n) {
        int c = memcmp(s->last, key, klen < s->last_len ? klen : s->last_len);
        FZ_CHECK(c < 0 || (c == 0 && s->last_len < klen));
    }
    memcpy(s->last, key, klen);
    s->last_len = klen;
    s->digest = (s->digest * 0x100000001b3ULL) ^ at_hash64(key, klen) ^
                (at_hash64(val, vlen) * 0x9e3779b97f4a7c15ULL);
    s->n++;
    return 0;
}

/* Opens the store, loads it, and returns the rc; *s, *id describe it. */
static int fz_load(bool read_only, fz_seen_t *s, uint64_t *id, at_ckpt_t **keep)
{
    at_ckpt_opts_t o = {.read_only = read_only};
    at_ckpt_t *c = NULL;
    char err[512];
    int rc = at_ckpt_open(&c, fz_dir, FZ_PARTITION, &o, err, sizeof err);
    FZ_CHECK(rc == 0);
    memset(s, 0, sizeof *s);
    void *meta = NULL;
    size_t mlen = 0;
    rc = at_ckpt_load(c, &meta, &mlen, id, fz_cb, s, err, sizeof err);
    FZ_CHECK(rc == 0 || rc == AT_ECORRUPT || rc == AT_EVERSION || rc == AT_ENOTFOUND);
    FZ_CHECK(rc == 0 || (s->n == 0 && meta == NULL));
    FZ_CHECK(mlen <= AT_CKPT_MAX_META);
    if (rc == 0 && *id == 1 && !fz_base_replaced)
        FZ_CHECK(s->digest == fz_base_digest && s->n == 5);
    free(meta);
    if (keep)
        *keep = c;
    else
        at_ckpt_close(c);
    return rc;
}

/* Empties the scratch directory and puts the valid base back. */
static void fz_reset(void)
{
    DIR *d = opendir(fz_dir);
    FZ_CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    char path[4200];
    snprintf(path, sizeof path, "%s/%020d.base", fz_dir, 1);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    FZ_CHECK(fd >= 0 && write(fd, fz_base, fz_base_len) == (ssize_t)fz_base_len);
    close(fd);
}

/* Creates the scratch store with its base, once. */
static void fz_setup(void)
{
    const char *base = getenv("AT_TEST_TMP");
    base = base && *base ? base : "/tmp";
    FZ_CHECK(at_mkdirs(base, 0755) == 0);
    snprintf(fz_dir, sizeof fz_dir, "%s/fuzz-ckpt-XXXXXX", base);
    FZ_CHECK(mkdtemp(fz_dir) != NULL);
    at_ckpt_t *c = NULL;
    char err[256];
    FZ_CHECK(at_ckpt_open(&c, fz_dir, FZ_PARTITION, NULL, err, sizeof err) == 0);
    at_ckpt_batch_t *b = at_ckpt_batch_new();
    static const char *const keys[] = {"u:a", "u:b", "u:c", "u:d", "u:e"};
    for (size_t i = 0; i < 5; i++)
        FZ_CHECK(at_ckpt_batch_put(b, keys[i], 3, "value-of-user", 6 + i) == 0);
    FZ_CHECK(at_ckpt_batch_set_meta(b, "offset=1", 8) == 0);
    FZ_CHECK(at_ckpt_write(c, b, NULL) == 0);
    at_ckpt_batch_free(b);
    at_ckpt_close(c);
    char path[4200];
    snprintf(path, sizeof path, "%s/%020d.base", fz_dir, 1);
    char *p = NULL;
    FZ_CHECK(at_file_read(path, 1 << 20, &p, &fz_base_len) == 0);
    fz_base = (uint8_t *)p;
    fz_seen_t s;
    uint64_t id;
    fz_base_replaced = true; /* no digest to compare with yet */
    FZ_CHECK(fz_load(true, &s, &id, NULL) == 0 && id == 1 && s.n == 5);
    fz_base_digest = s.digest;
}

static uint32_t fz_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void fz_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Recomputes the header, block and trailer checksums of p in place, as far
 * as its length fields make sense (ckpt_int.h). */
static void fz_fix_sums(uint8_t *p, size_t size)
{
    if (size < 48 + 8 + 48)
        return;
    size_t meta = fz_get32(p + 20), end = size - 48;
    if (meta > end - 56)
        return;
    uint64_t seed = XXH3_64bits(p, 48 + meta);
    fz_put64(p + 48 + meta, seed);
    size_t pos = 56 + meta;
    while (pos + 16 <= end) {
        size_t body = fz_get32(p + pos + 8);
        if (body > end - pos - 16)
            break;
        seed = XXH3_64bits_withSeed(p + pos + 8, body + 8, seed);
        fz_put64(p + pos, seed);
        pos += 16 + body;
    }
    fz_put64(p + end, XXH3_64bits_withSeed(p + end + 8, 40, seed));
}

static int fz_one(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_one(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    FZ_CHECK(fixed != NULL);
    memcpy(fixed, data, size);
    fz_fix_sums(fixed, size);
    fz_one(fixed, size);
    free(fixed);
    return 0;
}

/* Runs one file through the store. */
static int fz_one(const uint8_t *data, size_t size)
{
    if (!fz_dir[0])
        fz_setup();
    fz_reset();
    uint64_t id = 0;
    uint32_t flags = 0;
    for (int i = 0; i < 8 && size >= 32; i++)
        id |= (uint64_t)data[24 + i] << (8 * i);
    if (size >= 16)
        flags = data[12];
    if (id == 0 || id > 1000000)
        id = 2;
    char path[4200];
    snprintf(path, sizeof path, "%s/%020llu.%s", fz_dir, (unsigned long long)id,
             (flags & 1) ? "base" : "delta");
    fz_base_replaced = id == 1 && (flags & 1);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    FZ_CHECK(fd >= 0 && write(fd, data, size) == (ssize_t)size);
    close(fd);

    fz_seen_t ro, rw, after;
    uint64_t ro_id = 0, rw_id = 0, after_id = 0;
    int ro_rc = fz_load(true, &ro, &ro_id, NULL);
    at_ckpt_t *c = NULL;
    int rw_rc = fz_load(false, &rw, &rw_id, &c);
    FZ_CHECK(ro_rc == rw_rc);
    FZ_CHECK(ro_rc != 0 || (ro_id == rw_id && ro.digest == rw.digest && ro.n == rw.n));
    char err[512];
    if (rw_rc == 0) {
        int crc = at_ckpt_compact(c, true, err, sizeof err);
        FZ_CHECK(crc == 0 || crc == 1);
        at_ckpt_close(c);
        c = NULL;
        FZ_CHECK(fz_load(false, &after, &after_id, &c) == 0);
        FZ_CHECK(after_id == rw_id && after.digest == rw.digest && after.n == rw.n);
        /* The store keeps working. */
        at_ckpt_batch_t *b = at_ckpt_batch_new();
        FZ_CHECK(at_ckpt_batch_put(b, "u:zz", 4, "new", 3) == 0);
        uint64_t nid = 0;
        FZ_CHECK(at_ckpt_write(c, b, &nid) == 0 && nid == after_id + 1);
        at_ckpt_batch_free(b);
        at_ckpt_close(c);
        c = NULL;
        FZ_CHECK(fz_load(true, &after, &after_id, NULL) == 0 && after_id == nid);
    }
    at_ckpt_close(c);
    return 0;
}
