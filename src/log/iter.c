/* iter.c - reading the log back in log order.
 *
 * An iterator reads one segment file at a time through a buffered reader.
 * Where a segment ends is known exactly when the log knows it: for every
 * segment that has a successor (its header records the end), and for the
 * active segment of a log open for writing (the iterator runs on the writer
 * thread). A bad record before a known end is corruption. Over a read-only
 * log another process may be appending, so at the tail the end is where the
 * records stop passing their checks; a later call looks again, and once a
 * successor segment appears its header says where this one ended.
 *
 * from[p] skips records of p below it; whole segments are skipped using the
 * next-offset tables of the segment headers.
 */
#include "log_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct at_log_iter {
    at_log_t *log;
    int64_t *from;    /* [P] or NULL */
    int64_t *expect;  /* [P] offset the next record of p must have */
    int64_t *scratch; /* [P] for headers */
    at_log__rd_t rd;
    int fd;             /* current segment, -1 when none */
    bool started;       /* seq names a segment already entered */
    uint64_t seq;       /* current segment */
    int64_t pos;        /* file position of the next record */
    int64_t file_bytes; /* size of the current segment file */
    int64_t limit;      /* logical end of the segment, -1 while unknown */
    bool final;         /* limit will not grow */
    uint64_t gseq;      /* global sequence number of the next record */
    uint64_t max_seq;   /* stop before this sequence number (UINT64_MAX: no bound) */
};

/* Returns 0 with *out owned (at_log_iter_close()); from (may be NULL) is
 * copied. Thread: the writer's for a writable log, any for a read-only one. */
int at_log_iter_open(at_log_t *log, const int64_t *from, at_log_iter_t **out)
{
    size_t P = (size_t)log->partitions;
    at_log_iter_t *it = at_xcalloc(1, sizeof *it);
    it->log = log;
    it->fd = -1;
    it->limit = -1;
    it->max_seq = UINT64_MAX;
    if (from) {
        it->from = at_xmalloc(P * sizeof(int64_t));
        memcpy(it->from, from, P * sizeof(int64_t));
    }
    it->expect = at_xcalloc(P, sizeof(int64_t));
    it->scratch = at_xcalloc(P, sizeof(int64_t));
    at_log__rd_init(&it->rd);
    at_log__rd_map(&it->rd);
    *out = it;
    return 0;
}

/* Closes and frees the iterator (NULL is fine). */
void at_log_iter_close(at_log_iter_t *it)
{
    if (!it)
        return;
    if (it->fd >= 0)
        close(it->fd);
    at_log__rd_deinit(&it->rd);
    free(it->from);
    free(it->expect);
    free(it->scratch);
    free(it);
}

/* True when segment i of the table holds no record the iterator wants. */
static bool at_log__iter_skip(const at_log_iter_t *it, size_t i)
{
    const at_log_t *log = it->log;
    if (!it->from || i + 1 >= log->nsegs)
        return false;
    const int64_t *lo = log->segs[i].next, *hi = log->segs[i + 1].next;
    for (int p = 0; p < log->partitions; p++)
        if (hi[p] > lo[p] && hi[p] > it->from[p])
            return false;
    return true;
}

/* Finds the segment to read after `after` (any segment when !started),
 * skipping unwanted ones if skip. Looks in the table, then, for a read-only
 * log, in the directory. Returns 1 with *seq set, 0 if none, or -errno. */
static int at_log__iter_find(const at_log_iter_t *it, bool started, uint64_t after, bool skip,
                             uint64_t *seq, bool *in_table)
{
    const at_log_t *log = it->log;
    size_t i = 0;
    while (started && i < log->nsegs && log->segs[i].seq <= after)
        i++;
    while (skip && at_log__iter_skip(it, i))
        i++;
    *in_table = i < log->nsegs;
    if (*in_table) {
        *seq = log->segs[i].seq;
        return 1;
    }
    if (!log->read_only)
        return 0;
    uint64_t *seqs = NULL;
    size_t n = 0;
    int rc = at_log__seg_list(log->dirfd, false, &seqs, &n);
    for (size_t k = 0; !rc && k < n; k++) {
        if (!started || seqs[k] > after) {
            *seq = seqs[k];
            rc = 1;
        }
    }
    free(seqs);
    return rc;
}

/* Opens segment seq and reads its header into it->scratch. Returns the fd
 * or <0. */
static int at_log__iter_open_seg(at_log_iter_t *it, uint64_t seq, int64_t *size, at_log__hdr_t *h)
{
    char name[AT_LOG__NAME_LEN + 1];
    at_log__seg_name(name, seq);
    struct stat st;
    int fd = openat(it->log->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    h->next = it->scratch;
    if (!rc)
        rc = at_log__seg_read_hdr(fd, it->log->partitions, h);
    if (!rc && h->first_seq != seq)
        rc = AT_ECORRUPT;
    if (rc) {
        close(fd);
        return rc;
    }
    *size = (int64_t)st.st_size;
    return fd;
}

/* Moves to the next segment worth reading. Returns 1, 0 if there is none
 * (yet), or <0. */
static int at_log__iter_advance(at_log_iter_t *it)
{
    uint64_t after = it->seq;
    bool started = it->started;
    for (;;) {
        uint64_t seq = 0;
        bool in_table = false;
        int rc = at_log__iter_find(it, started, after, true, &seq, &in_table);
        if (rc <= 0)
            return rc;
        int64_t size = 0;
        at_log__hdr_t h;
        int fd = at_log__iter_open_seg(it, seq, &size, &h);
        if (fd == -ENOENT) { /* deleted by retention meanwhile */
            after = seq;
            started = true;
            continue;
        }
        if (fd == AT_ECORRUPT && !in_table)
            return 0; /* a crash leftover the writer has not removed yet */
        if (fd < 0)
            return fd;
        if (it->fd >= 0)
            close(it->fd);
        it->fd = fd;
        it->started = true;
        it->seq = seq;
        it->pos = (int64_t)it->log->hdr_bytes;
        it->file_bytes = size;
        it->limit = -1;
        it->final = false;
        it->gseq = seq;
        memcpy(it->expect, it->scratch, (size_t)it->log->partitions * sizeof(int64_t));
        at_log__rd_file(&it->rd);
        return 1;
    }
}

/* Updates where the current segment ends, as far as the log knows. */
static void at_log__iter_refresh(at_log_iter_t *it)
{
    const at_log_t *log = it->log;
    if (it->final)
        return;
    ssize_t i = at_log__seg_find(log, it->seq);
    bool has_next = i >= 0 && (size_t)i + 1 < log->nsegs;
    if (!log->read_only) {
        if (i >= 0)
            it->limit = log->segs[i].end;
        it->final = i < 0 || has_next;
    } else if (has_next) {
        it->limit = log->segs[i].end;
        it->final = true;
    }
}

/* At the tail of a read-only log: if a successor segment exists now, its
 * header says where the current one ends. Returns 1 when the end is now
 * known, 0 when there is no successor, or <0. */
static int at_log__iter_tail(at_log_iter_t *it)
{
    uint64_t seq = 0;
    bool in_table = false;
    int rc = at_log__iter_find(it, true, it->seq, false, &seq, &in_table);
    if (rc <= 0)
        return rc;
    int64_t size = 0;
    at_log__hdr_t h;
    int fd = at_log__iter_open_seg(it, seq, &size, &h);
    if (fd == -ENOENT || (fd == AT_ECORRUPT && !in_table))
        return 0;
    if (fd < 0)
        return fd;
    close(fd);
    if (h.prev_end < it->pos || h.prev_end > it->file_bytes)
        return AT_ECORRUPT;
    it->limit = h.prev_end;
    it->final = true;
    return 1;
}

/* Returns 1 with the next wanted record in rec (pointers valid until the
 * next call), 0 at the current end (a later call may return more), or
 * AT_ECORRUPT / -errno. Thread: the iterator's owner. */
int at_log_iter_next(at_log_iter_t *it, at_rec_t *rec)
{
    bool fresh = false;
    for (;;) {
        if (it->started && it->gseq >= it->max_seq)
            return 0;
        int rc = it->fd < 0 ? at_log__iter_advance(it) : 1;
        if (rc <= 0)
            return rc;
        if (it->gseq >= it->max_seq)
            return 0;
        at_log__iter_refresh(it);
        if (it->limit >= 0 && it->pos >= it->limit) {
            if (!it->final)
                return 0;
            rc = at_log__iter_advance(it);
            if (rc <= 0)
                return rc;
            continue;
        }
        int64_t max = it->limit >= 0 ? it->limit : it->file_bytes;
        int64_t len = at_log__rd_rec(&it->rd, it->fd, it->pos, max, it->log->partitions, rec);
        if (len < 0)
            return (int)len;
        if (len == 0 || rec->offset != it->expect[rec->partition]) {
            if (it->limit >= 0)
                return AT_ECORRUPT;
            /* Tail of a read-only log: the buffer may predate the writer's
             * last append; look once more before calling it the end. */
            at_log__rd_drop(&it->rd);
            if (!fresh) {
                fresh = true;
                continue;
            }
            rc = at_log__iter_tail(it);
            if (rc <= 0)
                return rc;
            continue;
        }
        it->pos += len;
        rec->seq = it->gseq;
        it->gseq++;
        it->expect[rec->partition]++;
        if (!it->from || rec->offset >= it->from[rec->partition])
            return 1;
    }
}

/* Bounds the iterator: records with a global sequence number >= max_seq
 * are not returned (at_log_iter_next() returns 0 before them, without
 * touching the file), so a reader in the writer's process can stop at what
 * the writer has made durable. Thread: the iterator's owner. */
void at_log_iter_set_limit(at_log_iter_t *it, uint64_t max_seq)
{
    it->max_seq = max_seq;
}

/* The global sequence number of the next record the iterator will look at
 * (records it skips included). Thread: the iterator's owner. */
uint64_t at_log_iter_seq(const at_log_iter_t *it)
{
    return it->gseq;
}
