/* ckpt_write.c - writing a checkpoint and compacting a chain.
 *
 * Both produce one new file the same way: NAME.tmp, written in order,
 * fdatasync'd, renamed to NAME, directory fsync'd. Until the rename the new
 * file does not exist for a reader (a leftover .tmp is deleted at open);
 * after the directory sync it is durable. A write adds checkpoint n + 1 as
 * a delta on the newest chain (or as a base: the first checkpoint, or a
 * full batch). A compaction merges the chain of checkpoint n into n.base,
 * which holds the same state under the same id, so deleting the chain
 * afterwards changes nothing a load returns, at whatever step a crash
 * stops it.
 */
#include "ckpt_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Renames file (id, base)'s .tmp into place and syncs the directory.
 * Returns 0 or -errno; the .tmp is gone on failure. After a failed
 * directory sync the store is poisoned (the rename may or may not
 * survive a crash). */
static int at_ckpt__publish(at_ckpt_t *c, uint64_t id, bool base)
{
    char tmp[AT_CKPT__NAME_MAX], name[AT_CKPT__NAME_MAX];
    at_ckpt__name(tmp, id, base, ".tmp");
    at_ckpt__name(name, id, base, NULL);
    if (renameat(c->dirfd, tmp, c->dirfd, name) < 0) {
        int rc = -errno;
        (void)unlinkat(c->dirfd, tmp, 0);
        return rc;
    }
    if (fsync(c->dirfd) < 0)
        return c->failed = -errno;
    return 0;
}

/* Finishes a new file: trailer, sync, rename, directory sync; enters it in
 * the table and, for a base, deletes (or sets aside) every older file.
 * Returns 0 or -errno (the .tmp is removed on failure). */
static int at_ckpt__commit(at_ckpt_t *c, at_ckpt__wr_t *w, const at_ckpt__hdr_t *h, int rc)
{
    bool base = h->flags & AT_CKPT__F_BASE;
    int64_t bytes = 0;
    if (!rc)
        rc = at_ckpt__wr_finish(w, &bytes);
    at_ckpt__wr_deinit(w);
    if (!rc)
        return at_ckpt__publish(c, h->id, base);
    char tmp[AT_CKPT__NAME_MAX];
    at_ckpt__name(tmp, h->id, base, ".tmp");
    (void)unlinkat(c->dirfd, tmp, 0);
    return rc;
}

/* Enters the new file (id, base) in the table; a base makes every older
 * file obsolete. */
static void at_ckpt__adopt(at_ckpt_t *c, const at_ckpt__hdr_t *h, int64_t bytes)
{
    bool base = h->flags & AT_CKPT__F_BASE;
    at_ckpt__file_t f = {
        .id = h->id, .base = base, .bytes = bytes, .base_id = h->base_id, .hdr_rc = 0, .vrc = 1};
    at_ckpt__file_add(c, &f);
    if (base) {
        size_t keep = (size_t)at_ckpt__file_find(c, h->id, true);
        at_ckpt__delete_except(c, h->id, &keep, 1);
    }
    at_ckpt__refresh(c);
}

/* Size of the file just published (for the table and the statistics). */
static int64_t at_ckpt__size(const at_ckpt_t *c, uint64_t id, bool base)
{
    char name[AT_CKPT__NAME_MAX];
    at_ckpt__name(name, id, base, NULL);
    struct stat st;
    return fstatat(c->dirfd, name, &st, 0) == 0 ? (int64_t)st.st_size : 0;
}

/* Writes b as checkpoint last_id + 1. See at_ckpt.h. Thread: the store's
 * (the checkpoint thread). */
int at_ckpt_write(at_ckpt_t *c, at_ckpt_batch_t *b, uint64_t *id)
{
    if (c->opts.read_only)
        return -EROFS;
    if (c->failed)
        return c->failed;
    bool base = b->full || c->last_id == 0;
    if (!base && !c->chain_ok)
        return AT_ECORRUPT;
    int64_t t0 = at_time_mono_ns();
    size_t n = at_ckpt__batch_sort(b);
    at_ckpt__hdr_t h = {.flags = base ? AT_CKPT__F_BASE : 0,
                        .partition = (uint32_t)c->partition,
                        .id = c->last_id + 1,
                        .base_id = base ? c->last_id + 1 : c->base_id,
                        .created_ms = at_time_now_ms(),
                        .meta = b->meta,
                        .meta_len = (uint32_t)b->meta_len};
    char tmp[AT_CKPT__NAME_MAX];
    at_ckpt__name(tmp, h.id, base, ".tmp");
    at_ckpt__wr_t w;
    int rc = at_ckpt__wr_open(&w, c->dirfd, tmp, &h);
    uint64_t keys = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const uint8_t *p = b->refs[i].p;
        size_t klen = at_log__get16(p + 1), vlen = at_log__get32(p + 3);
        if (base && p[0] == AT_CKPT__DEL)
            continue; /* nothing to delete in a whole state */
        rc = at_ckpt__wr_add(&w, p[0], p + AT_CKPT__ENT_HDR, klen, p + AT_CKPT__ENT_HDR + klen,
                             vlen);
        keys++;
    }
    rc = at_ckpt__commit(c, &w, &h, rc);
    if (rc)
        return rc;
    int64_t bytes = at_ckpt__size(c, h.id, base);
    at_ckpt__adopt(c, &h, bytes);
    atomic_fetch_add(&c->st.writes, 1);
    atomic_store(&c->st.last_write_ns, (uint64_t)(at_time_mono_ns() - t0));
    atomic_store(&c->st.last_write_bytes, (uint64_t)bytes);
    atomic_store(&c->st.last_write_keys, keys);
    if (id)
        *id = h.id;
    return 0;
}

/* Opens a cursor on every file of chain idx[0..n) (rank = position) into
 * cur[0..n). Returns 0, or the error of the file it could not open (named
 * in err and recorded in its table entry when it is a verdict on the
 * file), every cursor then closed. Thread: the store's. */
int at_ckpt__open_chain(at_ckpt_t *c, const size_t *idx, size_t n, at_ckpt__cur_t *cur, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        cur[i].fd = -1;
    for (size_t i = 0; i < n; i++) {
        at_ckpt__file_t *f = &c->files[idx[i]];
        char name[AT_CKPT__NAME_MAX];
        at_ckpt__name(name, f->id, f->base, NULL);
        int rc = at_ckpt__cur_open(&cur[i], c->dirfd, name, c->partition, f->id, f->base);
        if (!rc && !f->base && cur[i].hdr.base_id != f->base_id)
            rc = AT_ECORRUPT;
        if (rc) {
            if (rc == AT_ECORRUPT || rc == AT_EVERSION || rc == -EIO)
                f->vrc = rc;
            for (size_t k = 0; k <= i; k++)
                at_ckpt__cur_deinit(&cur[k]);
            return at_ckpt__errf(err, errlen, rc, "%s/%s: %s", c->dir, name, at_strerror(rc));
        }
        cur[i].rank = (int)i;
    }
    return 0;
}

/* Merges the newest chain into one base. See at_ckpt.h. Thread: the
 * store's (the checkpoint thread). */
int at_ckpt_compact(at_ckpt_t *c, bool force, char *err, size_t errlen)
{
    if (c->opts.read_only)
        return -EROFS;
    if (c->failed)
        return c->failed;
    if (c->last_id == 0)
        return 0;
    if (!c->chain_ok)
        return at_ckpt__errf(err, errlen, AT_ECORRUPT, "%s: the newest checkpoint is not whole",
                             c->dir);
    if (atomic_load(&c->st.deltas) == 0 || (!force && !at_ckpt_compact_due(c)))
        return 0;
    int64_t t0 = at_time_mono_ns();
    size_t *idx = at_xmalloc(c->nfiles * sizeof *idx);
    size_t n = at_ckpt__chain(c, c->last_id, true, idx, c->nfiles, NULL, 0, NULL);
    AT_ASSERT(n >= 2);
    at_ckpt__cur_t *cur = at_xcalloc(n, sizeof *cur);
    at_ckpt__merge_t m = {.failed = -1};
    at_ckpt__wr_t w = {.fd = -1};
    at_ckpt__hdr_t h = {0};
    int rc = at_ckpt__open_chain(c, idx, n, cur, err, errlen);
    if (rc)
        goto out;
    h = (at_ckpt__hdr_t){.flags = AT_CKPT__F_BASE,
                         .partition = (uint32_t)c->partition,
                         .id = c->last_id,
                         .base_id = c->last_id,
                         .created_ms = at_time_now_ms(),
                         .meta = cur[n - 1].hdr.meta,
                         .meta_len = cur[n - 1].hdr.meta_len};
    char tmp[AT_CKPT__NAME_MAX];
    at_ckpt__name(tmp, h.id, true, ".tmp");
    rc = at_ckpt__wr_open(&w, c->dirfd, tmp, &h);
    if (!rc)
        rc = at_ckpt__merge_init(&m, cur, n);
    at_ckpt__cur_t *top;
    int r;
    while (!rc && (r = at_ckpt__merge_next(&m, &top)) != 0) {
        if (r < 0)
            rc = r;
        else if (top->kind == AT_CKPT__PUT)
            rc = at_ckpt__wr_add(&w, AT_CKPT__PUT, top->key, top->klen, top->val, top->vlen);
    }
    if (rc && m.failed >= 0) {
        at_ckpt__file_t *f = &c->files[idx[m.failed]];
        char name[AT_CKPT__NAME_MAX];
        at_ckpt__name(name, f->id, f->base, NULL);
        if (rc == AT_ECORRUPT || rc == -EIO)
            f->vrc = rc;
        at_ckpt__errf(err, errlen, rc, "%s/%s: %s", c->dir, name, at_strerror(rc));
    } else if (rc) {
        at_ckpt__errf(err, errlen, rc, "%s: cannot write a base: %s", c->dir, at_strerror(rc));
    }
    rc = at_ckpt__commit(c, &w, &h, rc);
    if (rc)
        goto out;
    at_ckpt__adopt(c, &h, at_ckpt__size(c, h.id, true));
    atomic_fetch_add(&c->st.compactions, 1);
    atomic_store(&c->st.last_compact_ns, (uint64_t)(at_time_mono_ns() - t0));
    rc = 1;
out:
    if (rc < 0)
        at_ckpt__refresh(c); /* a file found bad no longer makes a chain */
    at_ckpt__merge_deinit(&m);
    for (size_t i = 0; i < n && cur; i++)
        at_ckpt__cur_deinit(&cur[i]);
    free(cur);
    free(idx);
    return rc;
}
