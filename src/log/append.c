/* append.c - the writer's side: appending a batch, making it durable, and
 * retention.
 *
 * An append encodes the whole batch into one reused buffer and writes it
 * with one pwrite per segment it touches. When the batch does not fit in the
 * active segment, the next segment is created first under a temporary name
 * (so -ENOSPC shows before anything is written); then the active segment's
 * part is written and fdatasync'd, and only then is the new segment renamed
 * into place and written. So a segment that has a successor on disk is
 * always complete and durable, and recovery only has to look at the last
 * one. The in-memory state changes only once every write succeeded; on
 * failure the bytes written are zeroed again and new files deleted, so the
 * next append writes over the same place and no stale record can follow it.
 *
 * THREAD: everything here runs on the writer thread.
 */
#include "log_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Checks the batch and returns its encoded size in *total. */
static int at_log__check_batch(const at_log_t *log, const at_rec_t *recs, size_t n, size_t *total)
{
    int64_t room = log->segment_bytes - (int64_t)log->hdr_bytes;
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].partition < 0 || recs[i].partition >= log->partitions)
            return AT_EINVALID;
        size_t len = at_log_rec_size(&recs[i]);
        if ((uint64_t)len > (uint64_t)room || len > UINT32_MAX)
            return AT_ETOOBIG;
        sum += len;
    }
    *total = sum;
    return 0;
}

/* Returns part k of the plan, growing the array when needed. */
static at_log__part_t *at_log__part(at_log_t *log, size_t k)
{
    if (k >= log->parts_cap) {
        log->parts_cap = log->parts_cap ? 2 * log->parts_cap : 4;
        log->parts = at_xrealloc(log->parts, log->parts_cap * sizeof *log->parts);
    }
    return &log->parts[k];
}

/* Starts part k (k > 0: a new segment beginning with the record whose
 * global sequence number is seq). */
static at_log__part_t *at_log__part_begin(at_log_t *log, size_t k, size_t buf_off, uint64_t seq)
{
    at_log__part_t *pt = at_log__part(log, k);
    size_t P = (size_t)log->partitions;
    memset(pt, 0, sizeof *pt);
    pt->buf_off = buf_off;
    pt->pos = (int64_t)log->hdr_bytes;
    pt->fd = -1;
    pt->seg = (at_log__seg_t){seq, log->segment_bytes, (int64_t)log->hdr_bytes, INT64_MIN,
                              at_xmalloc(P * sizeof(int64_t))};
    memcpy(pt->seg.next, log->tmp_next, P * sizeof(int64_t));
    return pt;
}

/* Encodes the batch into wbuf, assigning offsets from tmp_next and
 * splitting it into parts by segment. Returns the number of parts. */
static size_t at_log__encode(at_log_t *log, at_rec_t *recs, size_t n, uint64_t *seq)
{
    const at_log__seg_t *act = &log->segs[log->nsegs - 1];
    at_log__part_t *pt = at_log__part(log, 0);
    *pt = (at_log__part_t){.pos = act->end, .fd = log->fd, .published = true};
    pt->seg = (at_log__seg_t){act->seq, act->file_bytes, act->end, act->max_recv_ms, NULL};
    memcpy(log->tmp_next, log->next, (size_t)log->partitions * sizeof(int64_t));
    size_t np = 1, off = 0;
    for (size_t i = 0; i < n; i++, (*seq)++) {
        at_rec_t *r = &recs[i];
        size_t len = at_log_rec_size(r);
        if (pt->seg.end + (int64_t)len > pt->seg.file_bytes)
            pt = at_log__part_begin(log, np++, off, *seq);
        r->offset = log->tmp_next[r->partition]++;
        at_log_rec_encode(log->wbuf + off, r);
        off += len;
        pt->len += len;
        pt->seg.end += (int64_t)len;
        pt->seg.max_recv_ms = AT_MAX(pt->seg.max_recv_ms, r->recv_ms);
    }
    return np;
}

/* Creates the temporary files of the new segments (parts 1..np-1). */
static int at_log__create_parts(at_log_t *log, size_t np)
{
    for (size_t k = 1; k < np; k++) {
        at_log__part_t *pt = &log->parts[k], *prev = &log->parts[k - 1];
        at_log__hdr_t h = {pt->seg.seq, prev->seg.end, prev->seg.max_recv_ms, pt->seg.next};
        int fd = at_log__seg_create(log->dirfd, log->partitions, pt->seg.file_bytes, &h);
        if (fd < 0)
            return fd;
        pt->fd = fd;
    }
    return 0;
}

/* Writes every part; before a new segment is renamed into place the one
 * before it is fdatasync'd. */
static int at_log__write_parts(at_log_t *log, size_t np)
{
    for (size_t k = 0; k < np; k++) {
        at_log__part_t *pt = &log->parts[k];
        if (k > 0) {
            if (fdatasync(log->parts[k - 1].fd) < 0)
                return log->failed = -errno; /* page state unknown: reopen */
            int rc = at_log__seg_publish(log->dirfd, pt->seg.seq);
            if (rc)
                return rc;
            pt->published = true;
        } else {
            at_log__zero_before_write(log, pt->seg.seq, pt->pos, pt->pos + (int64_t)pt->len);
        }
        int rc =
            at_log__pwrite_all(pt->fd, log->wbuf + pt->buf_off, pt->len, pt->pos, &pt->written);
        if (rc)
            return rc;
    }
    return 0;
}

/* Undoes a failed append: deletes the new segments and zeroes what was
 * written into the active one. If that fails too, the log is poisoned. */
static void at_log__rollback(at_log_t *log, size_t np)
{
    bool published = false;
    int rc = 0;
    for (size_t k = np; k-- > 1;) {
        at_log__part_t *pt = &log->parts[k];
        if (pt->fd < 0)
            continue;
        close(pt->fd);
        int r = at_log__seg_discard(log->dirfd, pt->seg.seq, pt->published);
        if (r && pt->published)
            rc = r;
        published |= pt->published;
    }
    if (!rc && published && fsync(log->dirfd) < 0)
        rc = -errno;
    at_log__part_t *act = &log->parts[0];
    if (!rc && act->written)
        rc = at_log__zero_range(log->fd, act->pos, act->pos + (int64_t)act->written);
    /* The active segment was fdatasync'd when a new one was published. */
    if (!rc && act->written && published && fdatasync(log->fd) < 0)
        rc = -errno;
    if (rc && !log->failed)
        log->failed = rc;
}

/* Starts the writeback of the active segment's whole pages appended since
 * the last start, once there are opts.writeback bytes of them: a log that
 * is synced rarely (a partition's outputs, synced before a checkpoint)
 * then trickles to the disk as it grows, instead of meeting its sync with
 * seconds of dirty pages that queue in front of the group commits' syncs
 * on the same disk. SYNC_FILE_RANGE_WRITE only submits the writes; a
 * failure is not this append's (the data is in the page cache) and the
 * sync that makes it durable reports any error. */
static void at_log__writeback(at_log_t *log)
{
    if (log->writeback <= 0)
        return;
    int64_t to = log->segs[log->nsegs - 1].end & ~(int64_t)(AT_LOG__PAGE - 1);
    if (to - log->wb_from < log->writeback)
        return;
    if (sync_file_range(log->fd, log->wb_from, to - log->wb_from, SYNC_FILE_RANGE_WRITE) == 0)
        atomic_fetch_add_explicit(&log->st.writeback_bytes, (uint64_t)(to - log->wb_from),
                                  memory_order_relaxed);
    log->wb_from = to;
}

/* Makes a successful append visible: table, fds, offsets, stats. */
static void at_log__commit(at_log_t *log, size_t np, size_t n, uint64_t seq)
{
    at_log__seg_t *act = &log->segs[log->nsegs - 1];
    act->end = log->parts[0].seg.end;
    act->max_recv_ms = log->parts[0].seg.max_recv_ms;
    uint64_t bytes = log->parts[0].len;
    for (size_t k = 1; k < np; k++) {
        at_log__part_t *pt = &log->parts[k];
        close(log->fd);
        log->fd = pt->fd;
        at_log__seg_push(log, &pt->seg);
        bytes += (uint64_t)pt->seg.end;
    }
    memcpy(log->next, log->tmp_next, (size_t)log->partitions * sizeof(int64_t));
    log->seq = seq;
    log->dirty = true;
    log->dir_dirty |= np > 1;
    atomic_fetch_add_explicit(&log->st.records, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&log->st.bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&log->st.segments, np - 1, memory_order_relaxed);
    if (np > 1) {
        const at_log__seg_t *last = &log->segs[log->nsegs - 1];
        at_log__zero_roll(log, last->seq, last->end, last->file_bytes);
        log->wb_from = 0; /* the segments before were synced when it was published */
    }
    at_log__writeback(log);
}

/* Appends recs[0..n) (borrowed), setting recs[i].offset; all or nothing.
 * Returns 0, AT_EINVALID (bad partition, read-only log), AT_ETOOBIG (a
 * record larger than a segment), -errno from the file system (the log stays
 * usable), or the error that poisoned the log. Writer thread. */
int at_log_append(at_log_t *log, at_rec_t *recs, size_t n)
{
    if (log->read_only)
        return AT_EINVALID;
    if (log->failed)
        return log->failed;
    if (n == 0)
        return 0;
    size_t total = 0;
    int rc = at_log__check_batch(log, recs, n, &total);
    if (rc)
        return rc;
    if (total > log->wbuf_cap) {
        free(log->wbuf);
        log->wbuf_cap = AT_MAX(total, (size_t)64 << 10);
        log->wbuf = at_xmalloc(log->wbuf_cap);
    }
    uint64_t seq = log->seq;
    size_t np = at_log__encode(log, recs, n, &seq);
    rc = at_log__create_parts(log, np);
    if (!rc)
        rc = at_log__write_parts(log, np);
    if (rc)
        at_log__rollback(log, np);
    else
        at_log__commit(log, np, n, seq);
    for (size_t k = 1; k < np && rc; k++)
        free(log->parts[k].seg.next); /* committed ones now belong to the table */
    return rc;
}

/* fdatasyncs the active segment (earlier ones were synced when their
 * successor was published) and the directory if a segment appeared.
 * Returns 0 or -errno; a failure poisons the log (reopen to recover), since
 * after a failed fdatasync the state of the page cache is unknown. Writer
 * thread. */
int at_log_sync(at_log_t *log)
{
    if (log->read_only)
        return AT_EINVALID;
    if (log->failed)
        return log->failed;
    if (log->dirty && fdatasync(log->fd) < 0)
        return log->failed = -errno;
    if (log->dir_dirty && fsync(log->dirfd) < 0)
        return log->failed = -errno;
    log->dirty = log->dir_dirty = false;
    return 0;
}

int at_log_sync_begin(at_log_t *log, at_log_syncjob_t *job)
{
    job->fd = job->dirfd = -1;
    if (log->read_only)
        return AT_EINVALID;
    if (log->failed)
        return log->failed;
    if (log->dirty && (job->fd = dup(log->fd)) < 0)
        return -errno;
    if (log->dir_dirty && (job->dirfd = dup(log->dirfd)) < 0) {
        int rc = -errno;
        close(job->fd);
        job->fd = -1;
        return rc;
    }
    log->dirty = log->dir_dirty = false;
    return 0;
}

int at_log_sync_run(at_log_syncjob_t *job)
{
    int rc = 0;
    if (job->fd >= 0 && fdatasync(job->fd) < 0)
        rc = -errno;
    if (!rc && job->dirfd >= 0 && fsync(job->dirfd) < 0)
        rc = -errno;
    if (job->fd >= 0)
        close(job->fd);
    if (job->dirfd >= 0)
        close(job->dirfd);
    job->fd = job->dirfd = -1;
    return rc;
}

void at_log_fail(at_log_t *log, int rc)
{
    if (rc < 0 && !log->failed)
        log->failed = rc;
}

/* True when segment i holds a record of some partition p at or after
 * keep_from[p]: its records of p are [segs[i].next[p], segs[i+1].next[p]). */
static bool at_log__holds_kept(const at_log_t *log, size_t i, const int64_t *keep_from)
{
    const int64_t *lo = log->segs[i].next, *hi = log->segs[i + 1].next;
    for (int p = 0; p < log->partitions; p++)
        if (hi[p] > lo[p] && hi[p] > keep_from[p])
            return true;
    return false;
}

/* Drops the first k entries of the table. */
static void at_log__seg_shift(at_log_t *log, size_t k)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < k; i++) {
        bytes += (uint64_t)log->segs[i].end;
        free(log->segs[i].next);
    }
    memmove(log->segs, log->segs + k, (log->nsegs - k) * sizeof *log->segs);
    log->nsegs -= k;
    atomic_fetch_sub_explicit(&log->st.bytes, bytes, memory_order_relaxed);
    atomic_fetch_sub_explicit(&log->st.segments, k, memory_order_relaxed);
}

/* Deletes old segments from the front, see at_log.h; the size limit counts
 * the files' allocated size. Returns the number deleted or -errno. Writer
 * thread; an iterator of the writer's keeps reading a deleted segment it
 * already opened. */
int at_log_retain(at_log_t *log, int64_t max_bytes, int64_t max_age_ms, int64_t now_ms,
                  const int64_t *keep_from)
{
    if (log->read_only)
        return AT_EINVALID;
    int64_t total = 0;
    for (size_t i = 0; i < log->nsegs; i++)
        total += log->segs[i].file_bytes;
    size_t k = 0;
    int rc = 0;
    for (; k + 1 < log->nsegs; k++) {
        const at_log__seg_t *s = &log->segs[k];
        bool too_big = max_bytes > 0 && total > max_bytes;
        bool too_old = max_age_ms > 0 && s->max_recv_ms < now_ms - max_age_ms;
        if ((!too_big && !too_old) || (keep_from && at_log__holds_kept(log, k, keep_from)))
            break;
        rc = at_log__seg_discard(log->dirfd, s->seq, true);
        if (rc && rc != -ENOENT)
            break;
        rc = 0;
        total -= s->file_bytes;
    }
    if (k && fsync(log->dirfd) < 0 && !rc)
        rc = -errno;
    at_log__seg_shift(log, k);
    return rc ? rc : (int)k;
}
