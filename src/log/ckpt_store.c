/* ckpt_store.c - a partition's checkpoint store: opening its directory,
 * the table of its files, which files make up a checkpoint (its chain),
 * deleting what is obsolete, and the statistics.
 *
 * Opening reads names and headers only (a few hundred bytes a file): what a
 * write needs to continue the newest chain. Contents are checked by
 * at_ckpt_load, the one place that may decide a file is obsolete, because
 * only it has seen the file that replaces it whole.
 */
#include "ckpt_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Formats "DATA_DIR/ckpt/pNNNN" into out. Returns 0 or -ENAMETOOLONG.
 * Thread: any. */
int at_ckpt_dir(char *out, size_t outlen, const char *data_dir, int partition)
{
    int n = snprintf(out, outlen, "%s/ckpt/p%04d", data_dir, partition);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* Parses "<20 digits>.base" / ".delta", with a ".tmp" suffix when tmp.
 * Returns true and fills *id and *base. */
static bool at_ckpt__parse_name(const char *name, bool tmp, uint64_t *id, bool *base)
{
    size_t n = strlen(name), sl = tmp ? 4 : 0;
    if (n < 21 + sl || name[20] != '.')
        return false;
    if (tmp && strcmp(name + n - 4, ".tmp") != 0)
        return false;
    size_t kind = n - 21 - sl;
    if (kind == 4 && memcmp(name + 21, "base", 4) == 0)
        *base = true;
    else if (kind == 5 && memcmp(name + 21, "delta", 5) == 0)
        *base = false;
    else
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *id = v;
    return v > 0;
}

/* Table order: by id, the delta before the base of the same id. */
static int at_ckpt__file_cmp(uint64_t id, bool base, const at_ckpt__file_t *f)
{
    if (id != f->id)
        return id < f->id ? -1 : 1;
    return (int)base - (int)f->base;
}

/* Returns the index where (id, base) is or would go. */
static size_t at_ckpt__file_lower(const at_ckpt_t *c, uint64_t id, bool base)
{
    size_t lo = 0, hi = c->nfiles;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (at_ckpt__file_cmp(id, base, &c->files[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Returns the table index of file (id, base), or -1. Thread: the store's. */
ssize_t at_ckpt__file_find(const at_ckpt_t *c, uint64_t id, bool base)
{
    size_t i = at_ckpt__file_lower(c, id, base);
    return i < c->nfiles && at_ckpt__file_cmp(id, base, &c->files[i]) == 0 ? (ssize_t)i : -1;
}

/* Inserts *f in order (replacing an entry for the same file). Thread: the
 * store's. */
void at_ckpt__file_add(at_ckpt_t *c, const at_ckpt__file_t *f)
{
    size_t i = at_ckpt__file_lower(c, f->id, f->base);
    if (i < c->nfiles && at_ckpt__file_cmp(f->id, f->base, &c->files[i]) == 0) {
        c->files[i] = *f;
        return;
    }
    if (c->nfiles == c->files_cap) {
        c->files_cap = c->files_cap ? 2 * c->files_cap : 16;
        c->files = at_xrealloc(c->files, c->files_cap * sizeof *c->files);
    }
    memmove(&c->files[i + 1], &c->files[i], (c->nfiles - i) * sizeof *c->files);
    c->files[i] = *f;
    c->nfiles++;
}

/* Removes entry i of the table. Thread: the store's. */
void at_ckpt__file_remove(at_ckpt_t *c, size_t i)
{
    memmove(&c->files[i], &c->files[i + 1], (c->nfiles - i - 1) * sizeof *c->files);
    c->nfiles--;
}

/* True when file i may be part of a chain: its header passed and its
 * contents did not fail. */
static bool at_ckpt__usable(const at_ckpt_t *c, ssize_t i, bool skip_bad)
{
    return i >= 0 && c->files[i].hdr_rc == 0 && !(skip_bad && c->files[i].vrc < 0);
}

/* Reports file (id, base) as the reason a chain is not whole: its name into
 * bad (may be NULL), and into *bad_rc (may be NULL) why: its own verdict,
 * or AT_ENOTFOUND when it is missing. */
static void at_ckpt__bad(const at_ckpt_t *c, char *bad, size_t badlen, int *bad_rc, uint64_t id,
                         bool base)
{
    if (bad && badlen) {
        char name[AT_CKPT__NAME_MAX];
        at_ckpt__name(name, id, base, NULL);
        (void)snprintf(bad, badlen, "%s", name);
    }
    if (bad_rc) {
        ssize_t i = at_ckpt__file_find(c, id, base);
        *bad_rc = i < 0 ? AT_ENOTFOUND : c->files[i].hdr_rc ? c->files[i].hdr_rc : c->files[i].vrc;
    }
}

/* The chain of checkpoint id: id.base alone if usable, else the base named
 * by id.delta and every delta up to id, all usable and naming that base.
 * Fills idx[] oldest first and returns the count, or 0 (bad and *bad_rc
 * describe the first file missing or unusable). Thread: the store's. */
size_t at_ckpt__chain(const at_ckpt_t *c, uint64_t id, bool skip_bad, size_t *idx, size_t cap,
                      char *bad, size_t badlen, int *bad_rc)
{
    ssize_t b = at_ckpt__file_find(c, id, true);
    if (at_ckpt__usable(c, b, skip_bad) && cap >= 1) {
        idx[0] = (size_t)b;
        return 1;
    }
    ssize_t d = at_ckpt__file_find(c, id, false);
    if (!at_ckpt__usable(c, d, skip_bad)) {
        at_ckpt__bad(c, bad, badlen, bad_rc, id, d < 0 && b >= 0);
        return 0;
    }
    uint64_t base = c->files[d].base_id;
    b = at_ckpt__file_find(c, base, true);
    if (!at_ckpt__usable(c, b, skip_bad)) {
        at_ckpt__bad(c, bad, badlen, bad_rc, base, true);
        return 0;
    }
    /* Newest first: a gap shows within nfiles + 1 steps, however far the
     * header says the base is. */
    for (uint64_t k = id - 1; k > base; k--) {
        ssize_t i = at_ckpt__file_find(c, k, false);
        if (!at_ckpt__usable(c, i, skip_bad) || c->files[i].base_id != base) {
            at_ckpt__bad(c, bad, badlen, bad_rc, k, false);
            if (bad_rc && i >= 0 && *bad_rc == 0)
                *bad_rc = AT_ECORRUPT; /* names another base */
            return 0;
        }
    }
    size_t n = (size_t)(id - base + 1);
    AT_ASSERT(n <= cap && n <= c->nfiles);
    idx[0] = (size_t)b;
    for (uint64_t k = base + 1; k <= id; k++)
        idx[k - base] = (size_t)at_ckpt__file_find(c, k, false);
    return n;
}

/* Recomputes last_id, the newest chain and the statistics from the table.
 * Thread: the store's. */
void at_ckpt__refresh(at_ckpt_t *c)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < c->nfiles; i++)
        bytes += (uint64_t)c->files[i].bytes;
    c->last_id = c->nfiles ? c->files[c->nfiles - 1].id : 0;
    size_t cap = c->nfiles ? c->nfiles : 1, *idx = at_xmalloc(cap * sizeof *idx);
    size_t n = c->last_id ? at_ckpt__chain(c, c->last_id, true, idx, cap, NULL, 0, NULL) : 0;
    c->chain_ok = n > 0;
    c->base_id = n ? c->files[idx[0]].id : 0;
    uint64_t dbytes = 0;
    for (size_t i = 1; i < n; i++)
        dbytes += (uint64_t)c->files[idx[i]].bytes;
    atomic_store(&c->st.bytes, bytes);
    atomic_store(&c->st.files, c->nfiles);
    atomic_store(&c->st.last_id, c->last_id);
    atomic_store(&c->st.base_id, c->base_id);
    atomic_store(&c->st.deltas, n ? n - 1 : 0);
    atomic_store(&c->st.base_bytes, n ? (uint64_t)c->files[idx[0]].bytes : 0);
    atomic_store(&c->st.delta_bytes, dbytes);
    free(idx);
}

/* Deletes every file with id <= upto that is not among keep[0..n) (one
 * found damaged is renamed to NAME.corrupt instead), then fsyncs the
 * directory. Failures are only logged: a leftover is deleted by
 * a later load. Thread: the store's. */
void at_ckpt__delete_except(at_ckpt_t *c, uint64_t upto, const size_t *keep, size_t n)
{
    uint64_t *ids = at_xmalloc((n ? n : 1) * sizeof *ids);
    bool *bases = at_xmalloc((n ? n : 1) * sizeof *bases);
    for (size_t k = 0; k < n; k++) {
        ids[k] = c->files[keep[k]].id;
        bases[k] = c->files[keep[k]].base;
    }
    bool any = false;
    for (size_t i = 0; i < c->nfiles;) {
        const at_ckpt__file_t *f = &c->files[i];
        bool kept = f->id > upto;
        for (size_t k = 0; k < n && !kept; k++)
            kept = ids[k] == f->id && bases[k] == f->base;
        if (kept) {
            i++;
            continue;
        }
        char name[AT_CKPT__NAME_MAX], aside[AT_CKPT__NAME_MAX];
        at_ckpt__name(name, f->id, f->base, NULL);
        at_ckpt__name(aside, f->id, f->base, ".corrupt");
        /* A file found damaged is kept for inspection, under a name no
         * store reads. */
        bool bad = f->hdr_rc != 0 || f->vrc < 0;
        int r = bad ? renameat(c->dirfd, name, c->dirfd, aside) : unlinkat(c->dirfd, name, 0);
        if (r < 0 && errno != ENOENT) {
            AT_WARN("ckpt: cannot delete an obsolete file", "dir=%s file=%s err=\"%s\"", c->dir,
                    name, at_strerror(-errno));
            i++;
            continue;
        }
        any = true;
        at_ckpt__file_remove(c, i);
    }
    if (any && fsync(c->dirfd) < 0)
        AT_WARN("ckpt: cannot sync the directory", "dir=%s err=\"%s\"", c->dir,
                at_strerror(-errno));
    free(ids);
    free(bases);
    at_ckpt__refresh(c);
}

/* Reads the header of a listed file into its table entry. */
static int at_ckpt__scan_one(at_ckpt_t *c, const char *name, uint64_t id, bool base)
{
    at_ckpt__cur_t cur;
    at_ckpt__file_t f = {.id = id, .base = base, .vrc = 1};
    struct stat st;
    if (fstatat(c->dirfd, name, &st, 0) < 0)
        return -errno;
    f.bytes = (int64_t)st.st_size;
    f.hdr_rc = at_ckpt__cur_open(&cur, c->dirfd, name, c->partition, id, base);
    if (f.hdr_rc == -ENOENT)
        return 0; /* gone meanwhile */
    if (f.hdr_rc < 0 && f.hdr_rc > -4096 && f.hdr_rc != -EIO)
        return f.hdr_rc; /* cannot look: not a verdict on the file */
    if (f.hdr_rc == 0) {
        f.base_id = cur.hdr.base_id;
        at_ckpt__cur_deinit(&cur);
    } else {
        f.vrc = f.hdr_rc;
        AT_WARN("ckpt: bad checkpoint file header", "dir=%s file=%s err=\"%s\"", c->dir, name,
                at_strerror(f.hdr_rc));
    }
    at_ckpt__file_add(c, &f);
    return 0;
}

/* Lists the directory: deletes .tmp files (unless read-only) and reads the
 * header of every checkpoint file. */
static int at_ckpt__scan(at_ckpt_t *c, char *err, size_t errlen)
{
    int fd = openat(c->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return at_ckpt__errf(err, errlen, -errno, "cannot list %s", c->dir);
    DIR *d = fdopendir(fd);
    if (!d) {
        int rc = -errno;
        close(fd);
        return at_ckpt__errf(err, errlen, rc, "cannot list %s", c->dir);
    }
    struct dirent *e;
    int rc = 0;
    bool removed = false;
    while (!rc && (e = readdir(d)) != NULL) { /* NOLINT(concurrency-mt-unsafe): own stream */
        uint64_t id;
        bool base;
        if (at_ckpt__parse_name(e->d_name, true, &id, &base)) {
            if (!c->opts.read_only && unlinkat(c->dirfd, e->d_name, 0) == 0)
                removed = true;
            continue;
        }
        if (!at_ckpt__parse_name(e->d_name, false, &id, &base))
            continue;
        rc = at_ckpt__scan_one(c, e->d_name, id, base);
        if (rc)
            at_ckpt__errf(err, errlen, rc, "%s/%s: %s", c->dir, e->d_name, at_strerror(rc));
    }
    closedir(d);
    if (!rc && removed && fsync(c->dirfd) < 0)
        rc = at_ckpt__errf(err, errlen, -errno, "cannot sync %s", c->dir);
    return rc;
}

/* Opens the store of partition in dir. Returns 0 with *out owned
 * (at_ckpt_close()) or <0 with a message in err. Thread: any (then the
 * store's). */
int at_ckpt_open(at_ckpt_t **out, const char *dir, int partition, const at_ckpt_opts_t *opts,
                 char *err, size_t errlen)
{
    *out = NULL;
    if (partition < 0)
        return at_ckpt__errf(err, errlen, AT_EINVALID, "partition %d is not valid", partition);
    at_ckpt_t *c = at_xcalloc(1, sizeof *c);
    c->dirfd = -1;
    c->dir = at_xstrdup(dir);
    c->partition = partition;
    if (opts)
        c->opts = *opts;
    if (c->opts.compact_ratio <= 0)
        c->opts.compact_ratio = 0.5;
    if (c->opts.compact_max_deltas <= 0)
        c->opts.compact_max_deltas = 64;
    int rc = c->opts.read_only ? 0 : at_mkdirs(dir, 0755);
    if (rc) {
        at_ckpt__errf(err, errlen, rc, "cannot create %s: %s", dir, at_strerror(rc));
        goto out;
    }
    c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->dirfd < 0) {
        rc = at_ckpt__errf(err, errlen, -errno, "cannot open %s: %s", dir, at_strerror(-errno));
        goto out;
    }
    if (!c->opts.read_only && flock(c->dirfd, LOCK_EX | LOCK_NB) < 0) {
        rc = at_ckpt__errf(err, errlen, -errno, "%s is in use by another store: %s", dir,
                           at_strerror(-errno));
        goto out;
    }
    rc = at_ckpt__scan(c, err, errlen);
    if (rc)
        goto out;
    at_ckpt__refresh(c);
    *out = c;
    c = NULL;
out:
    at_ckpt_close(c);
    return rc;
}

/* Closes the store (releasing its lock). Thread: the store's. */
void at_ckpt_close(at_ckpt_t *c)
{
    if (!c)
        return;
    if (c->dirfd >= 0)
        close(c->dirfd);
    free(c->files);
    free(c->dir);
    free(c);
}

/* True when the deltas of the newest chain exceed the options' limits.
 * Thread: the store's. */
bool at_ckpt_compact_due(const at_ckpt_t *c)
{
    uint64_t deltas = atomic_load(&c->st.deltas);
    if (!c->chain_ok || deltas == 0)
        return false;
    double base = (double)atomic_load(&c->st.base_bytes);
    double dbytes = (double)atomic_load(&c->st.delta_bytes);
    return dbytes > c->opts.compact_ratio * base || deltas > (uint64_t)c->opts.compact_max_deltas;
}

/* Fills st from the store's counters. Thread: any. */
void at_ckpt_stats(const at_ckpt_t *c, at_ckpt_stats_t *st)
{
    st->bytes = atomic_load(&c->st.bytes);
    st->files = atomic_load(&c->st.files);
    st->last_id = atomic_load(&c->st.last_id);
    st->base_id = atomic_load(&c->st.base_id);
    st->deltas = atomic_load(&c->st.deltas);
    st->base_bytes = atomic_load(&c->st.base_bytes);
    st->delta_bytes = atomic_load(&c->st.delta_bytes);
    st->writes = atomic_load(&c->st.writes);
    st->compactions = atomic_load(&c->st.compactions);
    st->last_write_ns = atomic_load(&c->st.last_write_ns);
    st->last_write_bytes = atomic_load(&c->st.last_write_bytes);
    st->last_write_keys = atomic_load(&c->st.last_write_keys);
    st->last_compact_ns = atomic_load(&c->st.last_compact_ns);
    st->last_load_ns = atomic_load(&c->st.last_load_ns);
}
