/* log.c - opening the log (meta file, segment table, recovery of the tail),
 * closing it, and reading its state.
 *
 * Recovery looks at the last segment only: every earlier one was
 * fdatasync'd before its successor was renamed into place (append.c), and
 * the successor's header records where it ends. The last segment is scanned
 * from its header while records pass their length, checksum and offset
 * checks; what follows is the torn tail, which is zeroed and fdatasync'd so
 * a stale record can never come back once new records are written there.
 */
#include "log_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define AT_LOG__META_MAX 4096

/* Formats a message into err (may be NULL) and returns rc. */
__attribute__((format(printf, 4, 5))) static int at_log__errf(char *err, size_t errlen, int rc,
                                                              const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Returns the table index of segment seq, or -1. Thread: the writer, or any
 * for a read-only log (its table never changes). */
ssize_t at_log__seg_find(const at_log_t *log, uint64_t seq)
{
    size_t lo = 0, hi = log->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (log->segs[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < log->nsegs && log->segs[lo].seq == seq ? (ssize_t)lo : -1;
}

/* Appends *s to the table, taking ownership of s->next. Writer thread (or
 * open). */
void at_log__seg_push(at_log_t *log, const at_log__seg_t *s)
{
    if (log->nsegs == log->segs_cap) {
        log->segs_cap = log->segs_cap ? 2 * log->segs_cap : 16;
        log->segs = at_xrealloc(log->segs, log->segs_cap * sizeof *log->segs);
    }
    log->segs[log->nsegs++] = *s;
}

/* Reads "<word> <non-negative int>\n" at *s, advancing it. */
static bool at_log__meta_field(const char **s, const char *end, const char *word, int *v)
{
    size_t wl = strlen(word);
    const char *p = *s;
    if ((size_t)(end - p) < wl + 2 || memcmp(p, word, wl) != 0 || p[wl] != ' ')
        return false;
    p += wl + 1;
    long x = 0;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9' && x <= INT32_MAX)
        x = x * 10 + (*p++ - '0');
    if (p == digits || p == end || *p != '\n' || x > INT32_MAX)
        return false;
    *v = (int)x;
    *s = p + 1;
    return true;
}

/* Parses the meta file. Returns 0 or AT_ECORRUPT. */
static int at_log__meta_parse(const char *s, size_t len, int *format, int *partitions)
{
    static const char magic[] = "attune-log\n";
    const char *end = s + len;
    if (len < sizeof magic - 1 || memcmp(s, magic, sizeof magic - 1) != 0)
        return AT_ECORRUPT;
    s += sizeof magic - 1;
    if (!at_log__meta_field(&s, end, "format", format) ||
        !at_log__meta_field(&s, end, "partitions", partitions) || s != end)
        return AT_ECORRUPT;
    return 0;
}

/* Writes the meta file of a new log. */
static int at_log__meta_create(at_log_t *log, const char *path, char *err, size_t errlen)
{
    char text[128];
    int n = snprintf(text, sizeof text, "attune-log\nformat %d\npartitions %d\n",
                     AT_LOG_FORMAT_VERSION, log->partitions);
    AT_ASSERT(n > 0 && (size_t)n < sizeof text);
    int rc = at_file_write_atomic(path, text, (size_t)n);
    if (rc)
        return at_log__errf(err, errlen, rc, "cannot write %s: %s", path, at_strerror(rc));
    return 0;
}

/* Reads (or, for a new log, writes) the meta file; sets log->partitions. */
static int at_log__meta_load(at_log_t *log, const at_log_opts_t *opts, size_t nsegs, char *err,
                             size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", log->dir, AT_LOG__META) >= (int)sizeof path)
        return at_log__errf(err, errlen, -ENAMETOOLONG, "log path too long");
    char *data = NULL;
    size_t len = 0;
    int format = 0, rc = at_file_read(path, AT_LOG__META_MAX, &data, &len);
    if (rc == -ENOENT && !log->read_only && nsegs == 0) {
        if (opts->partitions <= 0)
            return at_log__errf(err, errlen, AT_EINVALID, "a new log in %s needs partitions > 0",
                                log->dir);
        log->partitions = opts->partitions;
        return at_log__meta_create(log, path, err, errlen);
    }
    if (rc) {
        rc = at_log__errf(err, errlen, rc == -ENOENT && nsegs ? AT_ECORRUPT : rc,
                          "cannot read %s: %s", path, at_strerror(rc));
        goto out;
    }
    rc = at_log__meta_parse(data, len, &format, &log->partitions);
    if (!rc && format > AT_LOG_FORMAT_VERSION)
        rc = at_log__errf(err, errlen, AT_EVERSION, "%s: format %d is newer than this release's %d",
                          path, format, AT_LOG_FORMAT_VERSION);
    else if (rc || format < 1 || log->partitions < 1 || log->partitions > AT_LOG_MAX_PARTITIONS)
        rc = at_log__errf(err, errlen, AT_ECORRUPT, "%s is not a valid log meta file", path);
    else if (opts->partitions && opts->partitions != log->partitions)
        rc = at_log__errf(err, errlen, AT_EINVALID,
                          "the log in %s has %d partitions, not %d (fixed at creation)", log->dir,
                          log->partitions, opts->partitions);
out:
    free(data);
    return rc;
}

/* The last segment's header is bad. If nothing but zeros follows where its
 * header should end, its creation was cut short and it holds no record:
 * forget it (and delete it unless read-only). Returns 0 or AT_ECORRUPT. */
static int at_log__drop_new(at_log_t *log, int fd, uint64_t seq, int64_t size, const char *name)
{
    int64_t nz = 0;
    int rc = at_log__last_nonzero(fd, (int64_t)log->hdr_bytes, size, &nz);
    if (rc)
        return rc;
    if (nz > (int64_t)log->hdr_bytes || (log->nsegs == 0 && seq != 0))
        return AT_ECORRUPT;
    AT_WARN("log: dropping segment with a torn header", "dir=%s segment=%s", log->dir, name);
    if (log->read_only)
        return 0;
    if (unlinkat(log->dirfd, name, 0) < 0 || fsync(log->dirfd) < 0)
        return -errno;
    return 0;
}

/* Checks hdr (of segment seq) against the segment before it and completes
 * that one's entry from it. */
static int at_log__link_prev(at_log_t *log, uint64_t seq, const at_log__hdr_t *h)
{
    if (h->first_seq != seq)
        return AT_ECORRUPT;
    if (log->nsegs == 0)
        return 0;
    at_log__seg_t *prev = &log->segs[log->nsegs - 1];
    if (seq <= prev->seq || h->prev_end < (int64_t)log->hdr_bytes || h->prev_end > prev->file_bytes)
        return AT_ECORRUPT;
    for (int p = 0; p < log->partitions; p++)
        if (h->next[p] < prev->next[p])
            return AT_ECORRUPT;
    prev->end = h->prev_end;
    prev->max_recv_ms = h->prev_max_recv_ms;
    return 0;
}

/* Reads the header of segment seq into the table. */
static int at_log__load_one(at_log_t *log, uint64_t seq, bool last, char *err, size_t errlen)
{
    char name[AT_LOG__NAME_LEN + 1];
    at_log__seg_name(name, seq);
    at_log__hdr_t h = {.next = at_xmalloc((size_t)log->partitions * sizeof(int64_t))};
    struct stat stt;
    int rc = 0, fd = openat(log->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &stt) < 0) {
        rc = -errno;
        goto out;
    }
    rc = at_log__seg_read_hdr(fd, log->partitions, &h);
    if (rc == AT_ECORRUPT && last) {
        rc = at_log__drop_new(log, fd, seq, (int64_t)stt.st_size, name);
        goto out;
    }
    if (!rc)
        rc = at_log__link_prev(log, seq, &h);
    if (rc)
        goto out;
    at_log__seg_t s = {seq, (int64_t)stt.st_size, (int64_t)log->hdr_bytes, INT64_MIN, h.next};
    at_log__seg_push(log, &s);
    h.next = NULL;
out:
    if (fd >= 0)
        close(fd);
    free(h.next);
    if (rc)
        at_log__errf(err, errlen, rc, "%s/%s: %s", log->dir, name, at_strerror(rc));
    return rc;
}

/* Scans the last segment from its header: sets its end and newest receive
 * time, the next offsets and the next sequence number. */
static int at_log__scan(at_log_t *log, int fd, at_log__seg_t *s)
{
    at_log__rd_t rd;
    at_log__rd_init(&rd);
    memcpy(log->next, s->next, (size_t)log->partitions * sizeof(int64_t));
    int64_t pos = (int64_t)log->hdr_bytes, max_recv = INT64_MIN;
    uint64_t count = 0;
    int rc = 0;
    for (;;) {
        at_rec_t rec;
        int64_t len = at_log__rd_rec(&rd, fd, pos, s->file_bytes, log->partitions, &rec);
        if (len < 0)
            rc = (int)len;
        if (len <= 0 || rec.offset != log->next[rec.partition])
            break;
        log->next[rec.partition]++;
        pos += len;
        count++;
        max_recv = AT_MAX(max_recv, rec.recv_ms);
    }
    at_log__rd_deinit(&rd);
    s->end = pos;
    s->max_recv_ms = max_recv;
    log->seq = s->seq + count;
    return rc;
}

/* The last segment holds no record but is smaller than a new segment
 * would be (segment_bytes grew, or the file was cut short): a record that
 * does not fit would need a successor with the same name. Replace it with a
 * full-size copy of its header instead. */
static int at_log__regrow_empty(at_log_t *log, at_log__seg_t *s, int *fd)
{
    at_log__hdr_t h = {.next = at_xmalloc((size_t)log->partitions * sizeof(int64_t))};
    int rc = at_log__seg_read_hdr(*fd, log->partitions, &h);
    int nfd = rc ? rc : at_log__seg_create(log->dirfd, log->partitions, log->segment_bytes, &h);
    free(h.next);
    if (nfd < 0)
        return nfd;
    rc = at_log__seg_publish(log->dirfd, s->seq);
    if (!rc && fsync(log->dirfd) < 0)
        rc = -errno;
    if (rc) {
        close(nfd);
        (void)at_log__seg_discard(log->dirfd, s->seq, false);
        return rc;
    }
    close(*fd);
    *fd = nfd;
    s->file_bytes = log->segment_bytes;
    return 0;
}

/* Finds the logical end of the last segment and cuts the torn tail. */
static int at_log__recover(at_log_t *log, char *err, size_t errlen)
{
    at_log__seg_t *s = &log->segs[log->nsegs - 1];
    char name[AT_LOG__NAME_LEN + 1];
    at_log__seg_name(name, s->seq);
    int64_t nz = 0;
    int rc = 0, fd = openat(log->dirfd, name, (log->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = at_log__scan(log, fd, s);
    if (!rc && !log->read_only && s->end == (int64_t)log->hdr_bytes &&
        s->file_bytes < log->segment_bytes)
        rc = at_log__regrow_empty(log, s, &fd);
    if (!rc)
        rc = at_log__last_nonzero(fd, s->end, s->file_bytes, &nz);
    if (rc || nz <= s->end)
        goto out;
    atomic_store(&log->st.truncated_bytes, (uint64_t)(nz - s->end));
    AT_WARN("log: cutting a torn tail", "dir=%s segment=%s at=%" PRId64 " bytes=%" PRId64, log->dir,
            name, s->end, nz - s->end);
    if (!log->read_only) {
        rc = at_log__zero_range(fd, s->end, nz);
        if (!rc && fdatasync(fd) < 0)
            rc = -errno;
    }
out:
    if (rc) {
        if (fd >= 0)
            close(fd);
        return at_log__errf(err, errlen, rc, "recovering %s/%s: %s", log->dir, name,
                            at_strerror(rc));
    }
    if (log->read_only)
        close(fd);
    else
        log->fd = fd;
    return 0;
}

/* Creates the first segment of an empty log. */
static int at_log__create_first(at_log_t *log, char *err, size_t errlen)
{
    at_log__hdr_t h = {0, 0, INT64_MIN, log->next};
    int fd = at_log__seg_create(log->dirfd, log->partitions, log->segment_bytes, &h);
    int rc = fd < 0 ? fd : at_log__seg_publish(log->dirfd, 0);
    if (!rc && fsync(log->dirfd) < 0)
        rc = -errno;
    if (rc) {
        if (fd >= 0) {
            close(fd);
            (void)at_log__seg_discard(log->dirfd, 0, false);
        }
        return at_log__errf(err, errlen, rc, "creating the first segment in %s: %s", log->dir,
                            at_strerror(rc));
    }
    at_log__seg_t s = {0, log->segment_bytes, (int64_t)log->hdr_bytes, INT64_MIN,
                       at_xcalloc((size_t)log->partitions, sizeof(int64_t))};
    at_log__seg_push(log, &s);
    log->fd = fd;
    log->seq = 0;
    return 0;
}

/* Opens (creating if writable) the directory and takes the writer's lock. */
static int at_log__open_dir(at_log_t *log, char *err, size_t errlen)
{
    int rc = log->read_only ? 0 : at_mkdirs(log->dir, 0755);
    if (!rc) {
        log->dirfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = log->dirfd < 0 ? -errno : 0;
    }
    if (rc)
        return at_log__errf(err, errlen, rc, "cannot open log directory %s: %s", log->dir,
                            at_strerror(rc));
    if (!log->read_only && flock(log->dirfd, LOCK_EX | LOCK_NB) < 0)
        return at_log__errf(err, errlen, errno == EWOULDBLOCK ? -EBUSY : -errno,
                            "log %s is open for writing elsewhere", log->dir);
    return 0;
}

/* Checks opts before anything is touched. */
static int at_log__check_opts(const at_log_opts_t *opts, char *err, size_t errlen)
{
    if (opts->partitions < 0 || opts->partitions > AT_LOG_MAX_PARTITIONS)
        return at_log__errf(err, errlen, AT_EINVALID, "partitions must be 1..%d",
                            AT_LOG_MAX_PARTITIONS);
    if (opts->segment_bytes &&
        (opts->segment_bytes < AT_LOG__MIN_SEGMENT || opts->segment_bytes > AT_LOG__MAX_SEGMENT))
        return at_log__errf(err, errlen, AT_EINVALID, "segment_bytes must be %d..%" PRId64,
                            AT_LOG__MIN_SEGMENT, AT_LOG__MAX_SEGMENT);
    if (opts->writeback < 0)
        return at_log__errf(err, errlen, AT_EINVALID, "writeback must be 0 or more");
    return 0;
}

/* Builds the segment table and recovers the tail (the body of
 * at_log_open once the meta file is read). */
static int at_log__load(at_log_t *log, const uint64_t *seqs, size_t n, char *err, size_t errlen)
{
    int P = log->partitions;
    log->hdr_bytes = at_log_seg_header_bytes(P);
    if (log->segment_bytes < (int64_t)log->hdr_bytes + 1024)
        return at_log__errf(err, errlen, AT_EINVALID,
                            "segment_bytes %" PRId64 " too small for %d partitions",
                            log->segment_bytes, P);
    log->next = at_xcalloc((size_t)P, sizeof(int64_t));
    log->tmp_next = at_xcalloc((size_t)P, sizeof(int64_t));
    for (size_t i = 0; i < n; i++) {
        int rc = at_log__load_one(log, seqs[i], i + 1 == n, err, errlen);
        if (rc)
            return rc;
    }
    int rc = 0;
    if (log->nsegs)
        rc = at_log__recover(log, err, errlen);
    else if (!log->read_only)
        rc = at_log__create_first(log, err, errlen);
    uint64_t bytes = 0;
    for (size_t i = 0; i < log->nsegs; i++)
        bytes += (uint64_t)log->segs[i].end;
    atomic_store(&log->st.bytes, bytes);
    atomic_store(&log->st.segments, (uint64_t)log->nsegs);
    return rc;
}

/* Opens or creates the log in dir; see at_log.h. Returns 0 with *out owned
 * (at_log_close()), or <0 with a message in err. Thread: any; the returned
 * log then belongs to one writer thread (or, read-only, to readers). */
int at_log_open(at_log_t **out, const char *dir, const at_log_opts_t *opts, char *err,
                size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    int rc = at_log__check_opts(opts, err, errlen);
    if (rc)
        return rc;
    at_log_t *log = at_xcalloc(1, sizeof *log);
    log->dirfd = log->fd = -1;
    log->dir = at_xstrdup(dir);
    log->read_only = opts->read_only;
    log->segment_bytes = opts->segment_bytes ? opts->segment_bytes : AT_LOG_DEFAULT_SEGMENT_BYTES;
    uint64_t *seqs = NULL;
    size_t n = 0;
    rc = at_log__open_dir(log, err, errlen);
    if (rc)
        goto out;
    rc = at_log__seg_list(log->dirfd, !log->read_only, &seqs, &n);
    if (rc) {
        at_log__errf(err, errlen, rc, "listing %s: %s", dir, at_strerror(rc));
        goto out;
    }
    rc = at_log__meta_load(log, opts, n, err, errlen);
    if (!rc)
        rc = at_log__load(log, seqs, n, err, errlen);
    if (!rc && (rc = at_log__zero_start(log, opts->zero_ahead)) < 0)
        at_log__errf(err, errlen, rc, "starting the log's zero thread: %s", at_strerror(rc));
    if (!rc) {
        log->writeback = opts->writeback;
        log->wb_from =
            log->nsegs ? log->segs[log->nsegs - 1].end & ~(int64_t)(AT_LOG__PAGE - 1) : 0;
        *out = log;
        log = NULL;
    }
out:
    free(seqs);
    at_log_close(log);
    return rc;
}

/* Closes the log and frees it (NULL is fine). Does not sync: call
 * at_log_sync() first. Iterators must be closed before. */
void at_log_close(at_log_t *log)
{
    if (!log)
        return;
    at_log__zero_stop(log);
    if (log->fd >= 0)
        close(log->fd);
    if (log->dirfd >= 0)
        close(log->dirfd); /* releases the writer's lock */
    for (size_t i = 0; i < log->nsegs; i++)
        free(log->segs[i].next);
    free(log->segs);
    free(log->next);
    free(log->tmp_next);
    free(log->wbuf);
    free(log->parts);
    free(log->dir);
    free(log);
}

/* Returns the partition count. Thread: any. */
int at_log_partitions(const at_log_t *log)
{
    return log->partitions;
}

/* Returns the offset the next record of partition p (asserted in range)
 * will get. Writer thread (read-only: fixed at open). */
int64_t at_log_next_offset(const at_log_t *log, int p)
{
    AT_ASSERT(p >= 0 && p < log->partitions);
    return log->next[p];
}

/* Returns the global sequence number of the next record. Writer thread. */
uint64_t at_log_seq(const at_log_t *log)
{
    return log->seq;
}

/* Fills st from relaxed atomic loads. Thread: any. */
void at_log_stats(const at_log_t *log, at_log_stats_t *st)
{
    at_log_t *l = (at_log_t *)log; /* atomics: loads only */
    st->bytes = atomic_load_explicit(&l->st.bytes, memory_order_relaxed);
    st->segments = atomic_load_explicit(&l->st.segments, memory_order_relaxed);
    st->records = atomic_load_explicit(&l->st.records, memory_order_relaxed);
    st->truncated_bytes = atomic_load_explicit(&l->st.truncated_bytes, memory_order_relaxed);
    st->zeroed_bytes = atomic_load_explicit(&l->st.zeroed_bytes, memory_order_relaxed);
    st->writeback_bytes = atomic_load_explicit(&l->st.writeback_bytes, memory_order_relaxed);
}
