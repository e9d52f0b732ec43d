/* ckpt_load.c - loading the newest complete checkpoint of a partition.
 *
 * Two passes over the chosen chain: the first reads every file to its
 * trailer, checking every checksum, the key order and the counts; only when
 * all passed does the second merge the files and hand each live key to the
 * caller. So nothing is delivered from a damaged checkpoint, and the choice
 * of an older checkpoint (fallback) is made before the caller has seen any
 * key. The second pass mostly reads the page cache.
 *
 * Which checkpoint: the one with the newest id, as n.base or as its delta
 * chain (the same state). When neither is whole, older ids are offered to
 * the caller's fallback function, newest first, if it has one; otherwise
 * the load fails naming the first bad or missing file. Only after a load
 * succeeded does a writable store clean up: files the loaded chain makes
 * obsolete are deleted, damaged ones renamed NAME.corrupt, and after a
 * fallback every newer file is renamed NAME.corrupt so the next write
 * continues the loaded chain.
 */
#include "ckpt_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* True when rc is a verdict on a file (it is damaged, unreadable or of a
 * newer format) rather than a failure to look at it. */
static bool at_ckpt__verdict(int rc)
{
    return rc == AT_ECORRUPT || rc == AT_EVERSION || rc == -EIO || rc == -ENOENT;
}

/* Reads file f whole, checking everything. Returns 0 or <0. */
static int at_ckpt__verify(at_ckpt_t *c, const at_ckpt__file_t *f)
{
    char name[AT_CKPT__NAME_MAX];
    at_ckpt__name(name, f->id, f->base, NULL);
    at_ckpt__cur_t cur;
    int rc = at_ckpt__cur_open(&cur, c->dirfd, name, c->partition, f->id, f->base);
    if (rc)
        return rc;
    if (!f->base && cur.hdr.base_id != f->base_id)
        rc = AT_ECORRUPT; /* changed since open */
    while (!rc && (rc = at_ckpt__cur_next(&cur)) == 1)
        rc = 0;
    at_ckpt__cur_deinit(&cur);
    return rc;
}

/* The reason the newest checkpoint could not be loaded, for the message. */
typedef struct at_ckpt__why {
    char file[AT_CKPT__NAME_MAX];
    int rc; /* 0 while nothing failed */
} at_ckpt__why_t;

/* Finds a whole, verified chain for checkpoint id into idx[]. Returns its
 * length, 0 when there is none (why filled if still empty), or <0 when a
 * file could not be looked at. */
static ssize_t at_ckpt__intact(at_ckpt_t *c, uint64_t id, size_t *idx, at_ckpt__why_t *why)
{
    for (;;) {
        char bad[AT_CKPT__NAME_MAX];
        int bad_rc = 0;
        size_t n = at_ckpt__chain(c, id, true, idx, c->nfiles, bad, sizeof bad, &bad_rc);
        if (n == 0) {
            if (!why->rc) {
                memcpy(why->file, bad, sizeof bad);
                why->rc = bad_rc ? bad_rc : AT_ECORRUPT;
            }
            return 0;
        }
        size_t j = 0;
        for (; j < n; j++) {
            at_ckpt__file_t *f = &c->files[idx[j]];
            if (f->vrc == 1) {
                int rc = at_ckpt__verify(c, f);
                if (rc && !at_ckpt__verdict(rc))
                    return rc;
                f->vrc = rc;
            }
            if (f->vrc < 0) {
                if (!why->rc) {
                    at_ckpt__name(why->file, f->id, f->base, NULL);
                    why->rc = f->vrc;
                }
                AT_WARN("ckpt: damaged checkpoint file", "dir=%s file=%020" PRIu64 ".%s err=\"%s\"",
                        c->dir, f->id, f->base ? "base" : "delta", at_strerror(f->vrc));
                break;
            }
        }
        if (j == n)
            return (ssize_t)n;
        /* f is now known bad: look for another chain of the same id. */
    }
}

/* Asks the caller's fallback whether checkpoint id (chain idx[0..n)) may
 * stand in for the newest one. */
static bool at_ckpt__fallback_ok(at_ckpt_t *c, uint64_t id, const size_t *idx, size_t n)
{
    if (!c->opts.fallback)
        return false;
    const at_ckpt__file_t *f = &c->files[idx[n - 1]];
    char name[AT_CKPT__NAME_MAX];
    at_ckpt__name(name, f->id, f->base, NULL);
    at_ckpt__cur_t cur;
    if (at_ckpt__cur_open(&cur, c->dirfd, name, c->partition, f->id, f->base) != 0)
        return false;
    bool ok = c->opts.fallback(c->opts.fallback_ud, id, cur.hdr.meta, cur.hdr.meta_len);
    at_ckpt__cur_deinit(&cur);
    if (ok)
        AT_WARN("ckpt: loading an older checkpoint", "dir=%s id=%" PRIu64 " newest=%" PRIu64,
                c->dir, id, c->last_id);
    return ok;
}

/* Chooses the checkpoint to load: its chain into idx, its id into *id.
 * Returns the chain's length, or <0 with a message in err. */
static ssize_t at_ckpt__choose(at_ckpt_t *c, size_t *idx, uint64_t *id, char *err, size_t errlen)
{
    at_ckpt__why_t why = {.rc = 0};
    for (size_t i = c->nfiles; i > 0;) {
        uint64_t k = c->files[i - 1].id;
        ssize_t n = at_ckpt__intact(c, k, idx, &why);
        if (n < 0)
            return at_ckpt__errf(err, errlen, (int)n, "%s: checkpoint %" PRIu64 ": %s", c->dir, k,
                                 at_strerror((int)n));
        if (n > 0 && (k == c->last_id || at_ckpt__fallback_ok(c, k, idx, (size_t)n))) {
            *id = k;
            return n;
        }
        if (n > 0 || !c->opts.fallback)
            break; /* the caller refused this one, or allows no fallback */
        while (i > 0 && c->files[i - 1].id == k)
            i--;
    }
    int rc = why.rc == AT_EVERSION ? AT_EVERSION : AT_ECORRUPT;
    const char *what = why.rc == AT_ENOTFOUND ? "missing" : at_strerror(why.rc);
    return at_ckpt__errf(err, errlen, rc, "%s/%s: %s (checkpoint %" PRIu64 " cannot be loaded)",
                         c->dir, why.file, what, c->last_id);
}

/* Merges chain idx[0..n) and calls cb for every live key; *meta gets the
 * newest file's meta. Returns 0, cb's non-zero return or <0. */
static int at_ckpt__deliver(at_ckpt_t *c, const size_t *idx, size_t n, void **meta,
                            size_t *meta_len, at_ckpt_load_fn cb, void *ud, char *err,
                            size_t errlen)
{
    at_ckpt__cur_t *cur = at_xcalloc(n, sizeof *cur);
    at_ckpt__merge_t m = {.failed = -1};
    int rc = at_ckpt__open_chain(c, idx, n, cur, err, errlen);
    if (rc) {
        free(cur);
        return rc;
    }
    rc = at_ckpt__merge_init(&m, cur, n);
    at_ckpt__cur_t *top;
    int r;
    while (!rc && (r = at_ckpt__merge_next(&m, &top)) != 0) {
        if (r < 0)
            rc = r;
        else if (top->kind == AT_CKPT__PUT)
            rc = cb(ud, top->key, top->klen, top->val, top->vlen);
    }
    if (rc && m.failed >= 0) {
        const at_ckpt__file_t *f = &c->files[idx[m.failed]];
        at_ckpt__errf(err, errlen, rc, "%s/%020" PRIu64 ".%s: %s", c->dir, f->id,
                      f->base ? "base" : "delta", at_strerror(rc));
    }
    if (!rc) {
        *meta = (void *)cur[n - 1].hdr.meta;
        *meta_len = cur[n - 1].hdr.meta_len;
        cur[n - 1].hdr.meta = NULL;
    }
    at_ckpt__merge_deinit(&m);
    for (size_t i = 0; i < n; i++)
        at_ckpt__cur_deinit(&cur[i]);
    free(cur);
    return rc;
}

/* After loading checkpoint id: renames every newer file aside (a
 * fallback), then deletes what the loaded chain makes obsolete. */
static void at_ckpt__clean(at_ckpt_t *c, uint64_t id, const size_t *idx, size_t n)
{
    at_ckpt__delete_except(c, id, idx, n); /* only touches ids <= id */
    bool any = false;
    while (c->nfiles && c->files[c->nfiles - 1].id > id) {
        const at_ckpt__file_t *f = &c->files[c->nfiles - 1];
        char name[AT_CKPT__NAME_MAX], aside[AT_CKPT__NAME_MAX];
        at_ckpt__name(name, f->id, f->base, NULL);
        at_ckpt__name(aside, f->id, f->base, ".corrupt");
        if (renameat(c->dirfd, name, c->dirfd, aside) < 0 && errno != ENOENT) {
            AT_WARN("ckpt: cannot set a file aside", "dir=%s file=%s err=\"%s\"", c->dir, name,
                    at_strerror(-errno));
            break;
        }
        any = true;
        c->nfiles--;
    }
    if (any && fsync(c->dirfd) < 0)
        AT_WARN("ckpt: cannot sync the directory", "dir=%s err=\"%s\"", c->dir,
                at_strerror(-errno));
    at_ckpt__refresh(c);
}

/* Loads the newest complete checkpoint. See at_ckpt.h. Thread: the
 * store's. */
int at_ckpt_load(at_ckpt_t *c, void **meta, size_t *meta_len, uint64_t *id, at_ckpt_load_fn cb,
                 void *ud, char *err, size_t errlen)
{
    *meta = NULL;
    *meta_len = 0;
    *id = 0;
    if (c->nfiles == 0)
        return at_ckpt__errf(err, errlen, AT_ENOTFOUND, "%s holds no checkpoint", c->dir);
    int64_t t0 = at_time_mono_ns();
    size_t *idx = at_xmalloc(c->nfiles * sizeof *idx);
    uint64_t k = 0;
    ssize_t n = at_ckpt__choose(c, idx, &k, err, errlen);
    int rc = n < 0 ? (int)n : 0;
    if (!rc)
        rc = at_ckpt__deliver(c, idx, (size_t)n, meta, meta_len, cb, ud, err, errlen);
    if (!rc) {
        *id = k;
        if (!c->opts.read_only)
            at_ckpt__clean(c, k, idx, (size_t)n);
        atomic_store(&c->st.last_load_ns, (uint64_t)(at_time_mono_ns() - t0));
    } else {
        at_ckpt__refresh(c); /* files found bad no longer make a chain */
        free(*meta);
        *meta = NULL;
        *meta_len = 0;
    }
    free(idx);
    return rc;
}
