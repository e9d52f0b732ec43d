/* zero.c - zeros written ahead of the appends (docs/decisions/0003,
 * "Zeros ahead of the appends").
 *
 * A segment is preallocated with posix_fallocate, which on ext4 and XFS
 * leaves unwritten extents: the first write into one converts it to a
 * written extent, a metadata change, so the fdatasync of a group commit
 * that lands in fresh blocks also commits the file system's journal (on
 * ext4 about twice the time of a data-only sync). A thread of the log
 * writes zeros over the active segment's preallocated space a little ahead
 * of the appends (O_DIRECT where the file system takes it, then
 * fdatasync), so the appends overwrite written blocks and their syncs write
 * data only; the conversions are paid here, a chunk at a time, off the
 * writer's path.
 *
 * The thread only claims a range that starts a chunk past the writer's
 * furthest write, and the writer, before every write into the active
 * segment, raises that mark and waits out a claim it would overlap (which
 * takes a batch larger than the distance kept ahead), so a zero never lands
 * on a record. Zeros past the logical end are what a segment holds there
 * anyway, so a crash at any point leaves a valid log. Where the segment has
 * no unwritten extents (file systems that write zeros themselves or copy on
 * write), the thread leaves it alone.
 *
 * THREAD SAFETY: at_log__zero_before_write and at_log__zero_roll run on the
 * writer thread; the zero thread touches only this struct and its own fd.
 */
#include "log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define AT_ZERO__ALIGN 4096
#define AT_ZERO__MAX_CHUNK ((int64_t)256 << 10)

struct at_log__zero {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t work;    /* the thread waits for something to do */
    pthread_cond_t claimed; /* the writer waits for a claim to end */
    int dirfd;              /* borrowed from the log */
    int64_t ahead, chunk, seg_bytes;
    bool stop;

    /* the segment being zeroed; fd -1: none */
    uint64_t seq;
    int fd;
    int64_t done;               /* zeros are on disk in [.., done) */
    int64_t wend;               /* the writer's writes end at or before this */
    int64_t claim_lo, claim_hi; /* being written: [lo, hi); lo == hi: nothing */

    /* a roll the thread has not taken yet */
    bool next;
    uint64_t next_seq;
    int64_t next_end, next_bytes;

    void *zeros; /* chunk bytes of zeros, aligned for O_DIRECT */
    _Atomic uint64_t *written;
};

static int64_t at_zero__align_up(int64_t v)
{
    return (v + AT_ZERO__ALIGN - 1) / AT_ZERO__ALIGN * AT_ZERO__ALIGN;
}

/* Where the next claim would start, or -1 when there is none to make now:
 * the segment is covered, or the zeros are already `ahead` past the writer
 * (less `slack`, so a waiting thread is woken once a chunk is due, not on
 * every append). Under mu. */
static int64_t at_zero__next_lo(const at_log__zero_t *z, int64_t slack)
{
    if (z->fd < 0 || z->claim_lo < z->claim_hi)
        return -1;
    int64_t lo = AT_MAX(z->done, at_zero__align_up(z->wend + z->chunk));
    if (lo + AT_ZERO__ALIGN > z->seg_bytes || lo - z->wend >= z->ahead - slack)
        return -1;
    return lo;
}

/* Whether [from, from + len) of fd holds an unwritten extent (FIEMAP). */
static bool at_zero__unwritten(int fd, int64_t from, int64_t len)
{
    enum { N = 8 };
    struct fiemap *fm = at_xcalloc(1, sizeof *fm + N * sizeof(struct fiemap_extent));
    fm->fm_start = (uint64_t)from;
    fm->fm_length = (uint64_t)len;
    fm->fm_extent_count = N;
    bool any = false;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) == 0)
        for (uint32_t i = 0; i < fm->fm_mapped_extents && i < N; i++)
            any |= (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN) != 0;
    free(fm);
    return any;
}

/* Opens segment seq for the thread's writes: O_DIRECT if the file system
 * takes it. -1 when the segment is not worth zeroing or cannot be opened. */
static int at_zero__open(const at_log__zero_t *z, uint64_t seq, int64_t end, int64_t bytes)
{
    char name[AT_LOG__NAME_LEN + 1];
    at_log__seg_name(name, seq);
    int fd = openat(z->dirfd, name, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0 && errno == EINVAL)
        fd = openat(z->dirfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int64_t from = at_zero__align_up(end + z->chunk);
    if (from >= bytes || !at_zero__unwritten(fd, from, bytes - from)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Takes a roll the writer announced. Under mu; drops it around the open,
 * during which the writer's appends to the new segment still raise
 * next_end. */
static void at_zero__take_roll(at_log__zero_t *z)
{
    if (z->fd >= 0)
        close(z->fd);
    z->fd = -1;
    uint64_t seq = z->next_seq;
    int64_t end = z->next_end, bytes = z->next_bytes;
    pthread_mutex_unlock(&z->mu);
    int fd = at_zero__open(z, seq, end, bytes);
    pthread_mutex_lock(&z->mu);
    if (z->next_seq != seq) { /* rolled again meanwhile */
        if (fd >= 0)
            close(fd);
        return;
    }
    z->next = false;
    z->seq = seq;
    z->fd = fd;
    z->seg_bytes = bytes;
    z->done = 0;
    z->wend = z->next_end;
}

static void *at_zero__main(void *arg)
{
    at_log__zero_t *z = arg;
    (void)pthread_setname_np(pthread_self(), "log-zero");
    pthread_mutex_lock(&z->mu);
    while (!z->stop) {
        if (z->next) {
            at_zero__take_roll(z);
            continue;
        }
        int64_t lo = at_zero__next_lo(z, 0);
        if (lo < 0) {
            pthread_cond_wait(&z->work, &z->mu);
            continue;
        }
        int64_t hi = AT_MIN(lo + z->chunk, z->seg_bytes / AT_ZERO__ALIGN * AT_ZERO__ALIGN);
        int fd = z->fd;
        z->claim_lo = lo;
        z->claim_hi = hi;
        pthread_mutex_unlock(&z->mu);
        int rc = at_log__pwrite_all(fd, z->zeros, (size_t)(hi - lo), lo, NULL);
        if (!rc && fdatasync(fd) < 0)
            rc = -errno;
        pthread_mutex_lock(&z->mu);
        z->claim_lo = z->claim_hi = 0;
        if (rc) {
            AT_WARN("zeroing the log segment ahead failed; appends go on over its allocated space",
                    "err=\"%s\"", at_strerror(rc));
            z->done = z->seg_bytes; /* leave this segment alone */
        } else {
            z->done = hi;
            atomic_fetch_add_explicit(z->written, (uint64_t)(hi - lo), memory_order_relaxed);
        }
        pthread_cond_broadcast(&z->claimed);
    }
    pthread_mutex_unlock(&z->mu);
    return NULL;
}

/* Frees z once its thread is gone (or never ran). */
static void at_zero__free(at_log__zero_t *z)
{
    if (z->fd >= 0)
        close(z->fd);
    pthread_cond_destroy(&z->claimed);
    pthread_cond_destroy(&z->work);
    pthread_mutex_destroy(&z->mu);
    free(z->zeros);
    free(z);
}

int at_log__zero_start(at_log_t *log, int64_t ahead)
{
    if (ahead <= 0 || log->read_only || !log->nsegs)
        return 0;
    at_log__zero_t *z = at_xcalloc(1, sizeof *z);
    z->dirfd = log->dirfd;
    z->ahead = at_zero__align_up(ahead);
    z->chunk = AT_MAX(AT_ZERO__ALIGN,
                      AT_MIN(AT_ZERO__MAX_CHUNK, z->ahead / 4 / AT_ZERO__ALIGN * AT_ZERO__ALIGN));
    z->fd = -1;
    z->written = &log->st.zeroed_bytes;
    const at_log__seg_t *act = &log->segs[log->nsegs - 1];
    z->next = true;
    z->next_seq = act->seq;
    z->next_end = act->end;
    z->next_bytes = act->file_bytes;
    if (posix_memalign(&z->zeros, AT_ZERO__ALIGN, (size_t)z->chunk) != 0) {
        free(z);
        return -ENOMEM;
    }
    memset(z->zeros, 0, (size_t)z->chunk);
    pthread_mutex_init(&z->mu, NULL);
    pthread_cond_init(&z->work, NULL);
    pthread_cond_init(&z->claimed, NULL);
    int rc = pthread_create(&z->th, NULL, at_zero__main, z);
    if (rc) {
        at_zero__free(z);
        return -rc;
    }
    log->zero = z;
    return 0;
}

void at_log__zero_stop(at_log_t *log)
{
    at_log__zero_t *z = log->zero;
    if (!z)
        return;
    pthread_mutex_lock(&z->mu);
    z->stop = true;
    pthread_mutex_unlock(&z->mu);
    pthread_cond_signal(&z->work);
    pthread_join(z->th, NULL);
    at_zero__free(z);
    log->zero = NULL;
}

void at_log__zero_before_write(at_log_t *log, uint64_t seq, int64_t from, int64_t to)
{
    at_log__zero_t *z = log->zero;
    if (!z)
        return;
    bool wake = false;
    pthread_mutex_lock(&z->mu);
    if (z->next && seq == z->next_seq) {
        z->next_end = AT_MAX(z->next_end, to);
    } else if (!z->next && seq == z->seq) {
        while (z->claim_lo < z->claim_hi && from < z->claim_hi && to > z->claim_lo)
            pthread_cond_wait(&z->claimed, &z->mu);
        z->wend = AT_MAX(z->wend, to);
        wake = at_zero__next_lo(z, z->chunk) >= 0;
    }
    pthread_mutex_unlock(&z->mu);
    if (wake)
        pthread_cond_signal(&z->work);
}

void at_log__zero_roll(at_log_t *log, uint64_t seq, int64_t end, int64_t bytes)
{
    at_log__zero_t *z = log->zero;
    if (!z)
        return;
    pthread_mutex_lock(&z->mu);
    z->next = true;
    z->next_seq = seq;
    z->next_end = end;
    z->next_bytes = bytes;
    pthread_mutex_unlock(&z->mu);
    pthread_cond_signal(&z->work);
}
