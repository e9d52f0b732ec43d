/* segfile.c - segment files: names, listing, creation, zeroing, and a
 * buffered reader that recovery and iterators share.
 *
 * A new segment is born as "<name>.tmp": preallocated (so -ENOSPC shows
 * before any record is written), given its header, fdatasync'd, and only
 * then renamed into place. A segment visible under its own name therefore
 * always has a durable header; a leftover .tmp is a crash during creation.
 */
#include "log_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define AT_LOG__RD_CHUNK ((size_t)256 << 10)
/* A mapped reader gives the pages it has passed back (MADV_DONTNEED: out of
 * the process's RSS, still in the page cache) every this many bytes. */
#define AT_LOG__MAP_RELEASE ((int64_t)1 << 20)
#define AT_LOG__ZERO_CHUNK ((size_t)64 << 10)

/* Initializes an empty reader (no memory until the first read). */
void at_log__rd_init(at_log__rd_t *rd)
{
    memset(rd, 0, sizeof *rd);
}

/* Makes rd (initialized) read through mappings. */
void at_log__rd_map(at_log__rd_t *rd)
{
    rd->map_mode = true;
}

/* Forgets the file: unmaps it, drops buffered bytes. */
void at_log__rd_file(at_log__rd_t *rd)
{
    if (rd->map)
        (void)munmap(rd->map, rd->map_len);
    rd->map = NULL;
    rd->map_len = 0;
    rd->map_done = 0;
    rd->buf_len = 0;
}

/* Frees the reader's buffer and mapping. */
void at_log__rd_deinit(at_log__rd_t *rd)
{
    at_log__rd_file(rd);
    free(rd->buf);
    memset(rd, 0, sizeof *rd);
}

/* Forgets the buffered bytes so the next read goes to the file (a mapping
 * always shows the file's current bytes). */
void at_log__rd_drop(at_log__rd_t *rd)
{
    rd->buf_len = 0;
}

/* Maps fd whole (again, if it grew past the mapping). Returns 1, 0 when the
 * file is empty, or -errno; when no mapping can be made the reader stops
 * mapping (and reads) from then on, and 0 is returned. */
static int at_log__rd_remap(at_log__rd_t *rd, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (st.st_size <= 0)
        return 0;
    if (rd->map && rd->map_fd == fd && (size_t)st.st_size == rd->map_len)
        return 1;
    int64_t done = rd->map && rd->map_fd == fd ? rd->map_done : 0;
    at_log__rd_file(rd);
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        rd->map_mode = false;
        return 0;
    }
    rd->map = m;
    rd->map_len = (size_t)st.st_size;
    rd->map_fd = fd;
    rd->map_done = done;
    return 1;
}

/* [pos, pos + n) through the mapping: 1 with *p, 0 when past the file's
 * end (or when mapping stopped: see at_log__rd_remap), or -errno. */
static int at_log__rd_mapped(at_log__rd_t *rd, int fd, int64_t pos, size_t n, const uint8_t **p)
{
    if (!rd->map || rd->map_fd != fd || (uint64_t)pos + n > rd->map_len) {
        int rc = at_log__rd_remap(rd, fd);
        if (rc <= 0)
            return rc;
        if ((uint64_t)pos + n > rd->map_len)
            return 0;
    }
    if (pos - rd->map_done >= 2 * AT_LOG__MAP_RELEASE) {
        /* give back the pages behind the reader (the record at pos and the
         * one before it stay) */
        int64_t upto = (pos - AT_LOG__MAP_RELEASE) & ~(AT_LOG__MAP_RELEASE - 1);
        if (upto > rd->map_done) {
            (void)madvise(rd->map + rd->map_done, (size_t)(upto - rd->map_done), MADV_DONTNEED);
            rd->map_done = upto;
        }
    }
    *p = rd->map + pos;
    return 1;
}

/* Fills the buffer from pos with up to want bytes; returns bytes read or
 * -errno. */
static ssize_t at_log__rd_fill(at_log__rd_t *rd, int fd, int64_t pos, size_t want)
{
    size_t got = 0;
    rd->buf_pos = pos;
    rd->buf_len = 0;
    while (got < want) {
        ssize_t r = pread(fd, rd->buf + got, want - got, pos + (int64_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    rd->buf_len = got;
    return (ssize_t)got;
}

/* Makes [pos, pos + n) of fd available in the buffer, reading no further
 * than max_pos. Returns 1 with *p set (valid until the next call), 0 when
 * the bytes do not exist before max_pos, or -errno. Thread: the reader's
 * owner. */
int at_log__rd_get(at_log__rd_t *rd, int fd, int64_t pos, size_t n, int64_t max_pos,
                   const uint8_t **p)
{
    if (pos < 0 || pos > max_pos || (uint64_t)n > (uint64_t)(max_pos - pos))
        return 0;
    if (rd->map_mode) {
        int rc = at_log__rd_mapped(rd, fd, pos, n, p);
        if (rd->map_mode)
            return rc; /* else no mapping could be made: read */
    }
    if (rd->buf_len && pos >= rd->buf_pos &&
        (uint64_t)(pos - rd->buf_pos) + n <= (uint64_t)rd->buf_len) {
        *p = rd->buf + (pos - rd->buf_pos);
        return 1;
    }
    if (n > rd->cap || !rd->buf) {
        size_t cap = AT_MAX(n, AT_LOG__RD_CHUNK);
        free(rd->buf);
        rd->buf = at_xmalloc(cap);
        rd->cap = cap;
    }
    size_t want = (size_t)AT_MIN((uint64_t)rd->cap, (uint64_t)(max_pos - pos));
    ssize_t got = at_log__rd_fill(rd, fd, pos, want);
    if (got < 0)
        return (int)got;
    if ((size_t)got < n)
        return 0;
    *p = rd->buf;
    return 1;
}

/* Reads and checks the record at pos (no further than max_pos). Returns
 * its length and fills rec (pointers into the buffer, valid until the next
 * call), 0 when there is no valid record, or -errno. */
int64_t at_log__rd_rec(at_log__rd_t *rd, int fd, int64_t pos, int64_t max_pos, int partitions,
                       at_rec_t *rec)
{
    const uint8_t *p = NULL;
    int rc = at_log__rd_get(rd, fd, pos, AT_LOG_REC_HEADER_BYTES, max_pos, &p);
    if (rc <= 0)
        return rc;
    uint32_t len = at_log__rec_len(p);
    if (len < AT_LOG_REC_HEADER_BYTES || (int64_t)len > max_pos - pos)
        return 0;
    rc = at_log__rd_get(rd, fd, pos, len, max_pos, &p);
    if (rc <= 0)
        return rc;
    return (int64_t)at_log__rec_decode(p, len, partitions, rec);
}

/* Writes "<seq, 20 digits>.seg" into out (AT_LOG__NAME_LEN + 1 bytes). */
void at_log__seg_name(char *out, uint64_t seq)
{
    (void)snprintf(out, AT_LOG__NAME_LEN + 1, "%020llu.seg", (unsigned long long)seq);
}

/* Parses "<20 digits>.seg" (tmp: followed by ".tmp") into *seq. */
static bool at_log__parse_name(const char *name, bool tmp, uint64_t *seq)
{
    size_t n = strlen(name);
    size_t want = AT_LOG__NAME_LEN + (tmp ? strlen(AT_LOG__TMP_SUFFIX) : 0);
    if (n != want || memcmp(name + 20, ".seg", 4) != 0)
        return false;
    if (tmp && strcmp(name + AT_LOG__NAME_LEN, AT_LOG__TMP_SUFFIX) != 0)
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
    *seq = v;
    return true;
}

static int at_log__cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Lists the segment files of dirfd in order of sequence number into *out
 * (owned, free()) and *n; with clean_tmp deletes leftover .seg.tmp files.
 * Returns 0 or -errno. Thread: any (uses its own directory stream). */
int at_log__seg_list(int dirfd, bool clean_tmp, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    /* A fresh open file description: readdir positions are not shared with
     * other threads listing the same directory. */
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    size_t cap = 16, len = 0;
    uint64_t *seqs = at_xmalloc(cap * sizeof *seqs);
    struct dirent *e;
    uint64_t seq;
    while ((e = readdir(d)) != NULL) { /* NOLINT(concurrency-mt-unsafe): own stream */
        if (clean_tmp && at_log__parse_name(e->d_name, true, &seq)) {
            (void)unlinkat(dirfd, e->d_name, 0);
            continue;
        }
        if (!at_log__parse_name(e->d_name, false, &seq))
            continue;
        if (len == cap) {
            cap *= 2;
            seqs = at_xrealloc(seqs, cap * sizeof *seqs);
        }
        seqs[len++] = seq;
    }
    closedir(d);
    qsort(seqs, len, sizeof *seqs, at_log__cmp_u64);
    *out = seqs;
    *n = len;
    return 0;
}

/* Reads and checks the header of the segment file fd for P partitions into
 * h (h->next holds P entries). Returns 0, AT_ECORRUPT (short or bad),
 * AT_EVERSION or -errno. */
int at_log__seg_read_hdr(int fd, int partitions, at_log__hdr_t *h)
{
    size_t hb = at_log_seg_header_bytes(partitions);
    uint8_t *buf = at_xmalloc(hb);
    size_t got = 0;
    int rc = 0;
    while (got < hb) {
        ssize_t r = pread(fd, buf + got, hb - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    rc = at_log__hdr_decode(buf, got, partitions, h);
out:
    free(buf);
    return rc;
}

/* Writes p[0..n) at pos, retrying short writes. Returns 0 or -errno;
 * *done (may be NULL) gets the bytes written either way. */
int at_log__pwrite_all(int fd, const void *p, size_t n, int64_t pos, size_t *done)
{
    size_t w = 0;
    int rc = 0;
    while (w < n) {
        ssize_t r = pwrite(fd, (const char *)p + w, n - w, pos + (int64_t)w);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            break;
        }
        w += (size_t)r;
    }
    if (done)
        *done = w;
    return rc;
}

/* Formats "<name>.tmp" or "<name>" into out (AT_LOG__NAME_LEN + 5 bytes). */
static void at_log__seg_path(char *out, uint64_t seq, bool tmp)
{
    at_log__seg_name(out, seq);
    if (tmp)
        memcpy(out + AT_LOG__NAME_LEN, AT_LOG__TMP_SUFFIX, sizeof AT_LOG__TMP_SUFFIX);
}

/* Creates segment h->first_seq as "<name>.tmp": preallocated to bytes,
 * header written and fdatasync'd. Returns its fd (owned by the caller) or
 * -errno, having removed the file. Writer thread. */
int at_log__seg_create(int dirfd, int partitions, int64_t bytes, const at_log__hdr_t *h)
{
    char name[AT_LOG__NAME_LEN + sizeof AT_LOG__TMP_SUFFIX];
    at_log__seg_path(name, h->first_seq, true);
    size_t hb = at_log_seg_header_bytes(partitions);
    uint8_t *buf = at_xmalloc(hb);
    int rc = 0;
    int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = -posix_fallocate(fd, 0, bytes);
    if (rc)
        goto out;
    at_log__hdr_encode(buf, partitions, h);
    rc = at_log__pwrite_all(fd, buf, hb, 0, NULL);
    if (!rc && fdatasync(fd) < 0)
        rc = -errno;
out:
    free(buf);
    if (rc && fd >= 0) {
        close(fd);
        (void)unlinkat(dirfd, name, 0);
    }
    return rc ? rc : fd;
}

/* Renames the temporary file of segment seq into place (replacing a file
 * of that name). Returns 0 or -errno. Writer thread. */
int at_log__seg_publish(int dirfd, uint64_t seq)
{
    char tmp[AT_LOG__NAME_LEN + sizeof AT_LOG__TMP_SUFFIX], name[AT_LOG__NAME_LEN + 1];
    at_log__seg_path(tmp, seq, true);
    at_log__seg_name(name, seq);
    return renameat(dirfd, tmp, dirfd, name) < 0 ? -errno : 0;
}

/* Deletes segment seq, under its final name if published, else its
 * temporary one. Returns 0 or -errno. Writer thread. */
int at_log__seg_discard(int dirfd, uint64_t seq, bool published)
{
    char name[AT_LOG__NAME_LEN + sizeof AT_LOG__TMP_SUFFIX];
    at_log__seg_path(name, seq, !published);
    return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
}

/* Zeroes [from, to) of fd without changing its size: FALLOC_FL_ZERO_RANGE,
 * or written zeros where the file system lacks it. Returns 0 or -errno. */
int at_log__zero_range(int fd, int64_t from, int64_t to)
{
    if (to <= from)
        return 0;
    if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, from, to - from) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
        return -errno;
    static const uint8_t zeros[AT_LOG__ZERO_CHUNK];
    for (int64_t pos = from; pos < to;) {
        size_t n = (size_t)AT_MIN((int64_t)sizeof zeros, to - pos);
        int rc = at_log__pwrite_all(fd, zeros, n, pos, NULL);
        if (rc)
            return rc;
        pos += (int64_t)n;
    }
    return 0;
}

/* Returns one past the last non-zero byte of p[0..n), or 0. */
static size_t at_log__nonzero_end(const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p + n - 8, 8);
        if (w)
            break;
        n -= 8;
    }
    while (n > 0 && p[n - 1] == 0)
        n--;
    return n;
}

/* Sets *end to one past the last non-zero byte of [from, to) of fd (from
 * when all zero), skipping holes. Returns 0 or -errno. */
int at_log__last_nonzero(int fd, int64_t from, int64_t to, int64_t *end)
{
    *end = from;
    size_t cap = AT_LOG__RD_CHUNK;
    uint8_t *buf = at_xmalloc(cap);
    int rc = 0;
    for (int64_t pos = from; pos < to;) {
        /* Skip holes and unwritten extents: a preallocated tail reads as
         * one, so a clean open reads almost nothing. */
        off_t d = lseek(fd, pos, SEEK_DATA);
        if (d < 0 && errno == ENXIO)
            break;
        if (d >= 0)
            pos = d;
        if (pos >= to)
            break;
        size_t want = (size_t)AT_MIN((int64_t)cap, to - pos);
        ssize_t r = pread(fd, buf, want, pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        size_t nz = at_log__nonzero_end(buf, (size_t)r);
        if (nz)
            *end = pos + (int64_t)nz;
        pos += r;
    }
out:
    free(buf);
    return rc;
}
