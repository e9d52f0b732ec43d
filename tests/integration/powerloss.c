/* powerloss.c - simulates a power cut for the files under one directory.
 *
 * Built twice, by tests/integration/test_crash.sh, without sanitizers:
 *   cc -shared -fPIC -O1 -o powerloss.so powerloss.c -ldl      the shim
 *   cc -O1 -DPOWERLOSS_CUT -o powerloss-cut powerloss.c        the cut
 *
 * The shim is LD_PRELOADed into a process. For files under $POWERLOSS_DIR it
 * appends to $POWERLOSS_JOURNAL one line per change, with one write(2) on an
 * O_APPEND descriptor, so the journal sits in the page cache when the process
 * is SIGKILLed. Lines (tab separated, paths absolute and canonical):
 *   N id size path      first open of a file or directory; its size then is
 *                       taken as durable (the file predates the shim)
 *   W id off len        bytes written; the k-th W line of an id has seq k
 *   S id seq size       fsync/fdatasync returned: W 1..seq durable, and size
 *   C path              a directory entry created (open O_CREAT, mkdir)
 *   U bak path          an entry removed; bak is a hard link to its inode
 *   R bak old new       a rename; bak is a hard link to the replaced target
 *                       ("-" when there is none)
 *   D upto path         fsync of directory path returned: the first upto
 *                       C/U/R lines are durable as far as path is concerned
 *   Y                   sync()/syncfs() returned: everything before is durable
 * Snapshots (seq, upto) are taken when the fsync starts, so a write that
 * races with an fsync counts as not covered by it. $POWERLOSS_SYNC_DELAY_US
 * makes each fsync/fdatasync of a file that long slower (a slow disk), so
 * that a kill is more likely to find written but not yet durable bytes.
 *
 * Then `powerloss-cut JOURNAL SEED` does to the stopped directory what a real
 * power cut may do: every byte range written after its file's last fsync is
 * zeroed, garbled, kept, or cut off (a file's size goes back to its size at
 * its last fsync), chosen by SEED; every C/U/R not followed by an fsync of
 * the directories it touched is undone (newest first). Size changes need no
 * wrapper: the cut compares the size with the size at the last fsync.
 * sync_file_range is deliberately not wrapped: it makes nothing durable.
 *
 * A descriptor made by dup/dup2/dup3 is tracked as the one it copies (an
 * fsync of either covers the file's writes through both).
 * Not modelled (the shim is then lenient, never too harsh): stdio, mmap,
 * fcntl(F_DUPFD), O_TMPFILE, the old content of a file shrunk by
 * ftruncate/O_TRUNC, rmdir. Only one process may use a journal.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef POWERLOSS_CUT

#include <pthread.h>
#include <stdatomic.h>

#define PL_MAX_FD 65536
#define PL_MAX_FILES 16384

typedef struct {
    dev_t dev;
    ino_t ino; /* 0 once the inode may be reused (unlinked without a backup) */
    long nw;   /* W lines written so far for this id (id = index + 1) */
    int isdir;
} pl_file_t;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* guards all below */
static char g_dir[PATH_MAX];
static size_t g_dirlen;
static char g_jpath[PATH_MAX - 64]; /* room for ".bak.N" */
static int g_journal = -1;
static pl_file_t g_files[PL_MAX_FILES];
static int g_nfiles;
static long g_ndirops; /* C/U/R lines written */
static long g_nbak;
static long g_sync_delay_us;        /* $POWERLOSS_SYNC_DELAY_US */
static _Atomic int g_fd[PL_MAX_FD]; /* fd -> id * 2 + (O_DSYNC ? 1 : 0); 0 = untracked */

static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static void (*real_sync)(void);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_mkdirat)(int, const char *, mode_t);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup3)(int, int, int);

static void pl_init(void)
{
    real_openat = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
    real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    real_pwrite = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
    real_writev = (ssize_t(*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
    real_pwritev = (ssize_t(*)(int, const struct iovec *, int, off_t))dlsym(RTLD_NEXT, "pwritev64");
    real_fallocate = (int (*)(int, int, off_t, off_t))dlsym(RTLD_NEXT, "fallocate64");
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    real_syncfs = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
    real_sync = (void (*)(void))dlsym(RTLD_NEXT, "sync");
    real_renameat = (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");
    real_unlinkat = (int (*)(int, const char *, int))dlsym(RTLD_NEXT, "unlinkat");
    real_mkdirat = (int (*)(int, const char *, mode_t))dlsym(RTLD_NEXT, "mkdirat");
    real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    real_dup = (int (*)(int))dlsym(RTLD_NEXT, "dup");
    real_dup3 = (int (*)(int, int, int))dlsym(RTLD_NEXT, "dup3");

    const char *dir = getenv("POWERLOSS_DIR");
    const char *jp = getenv("POWERLOSS_JOURNAL");
    if (!dir || !jp || !realpath(dir, g_dir) || strlen(jp) >= sizeof(g_jpath))
        return;
    strcpy(g_jpath, jp);
    g_dirlen = strlen(g_dir);
    const char *delay = getenv("POWERLOSS_SYNC_DELAY_US");
    g_sync_delay_us = delay ? atol(delay) : 0;
    g_journal = real_openat(AT_FDCWD, jp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

#define PL_INIT() pthread_once(&g_once, pl_init)

/* Appends one journal line. Caller holds g_mu. */
__attribute__((format(printf, 1, 2))) static void pl_log(const char *fmt, ...)
{
    char line[3 * PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof(line))
        (void)real_write(g_journal, line, (size_t)n);
}

static int pl_under(const char *abs)
{
    return g_journal >= 0 && strncmp(abs, g_dir, g_dirlen) == 0 &&
           (abs[g_dirlen] == '/' || abs[g_dirlen] == '\0');
}

static int pl_fdpath(int fd, char *out)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, PATH_MAX - 1);
    if (n <= 0 || out[0] != '/')
        return -1;
    out[n] = '\0';
    return 0;
}

/* The canonical absolute path of (dirfd, path); its parent must exist. */
static int pl_abspath(int dirfd, const char *path, char *out)
{
    char raw[2 * PATH_MAX + 2], base[PATH_MAX], parent[PATH_MAX];
    if (path[0] == '/') {
        snprintf(raw, sizeof(raw), "%s", path);
    } else {
        if (dirfd == AT_FDCWD ? getcwd(base, sizeof(base)) == NULL : pl_fdpath(dirfd, base) != 0)
            return -1;
        snprintf(raw, sizeof(raw), "%s/%s", base, path);
    }
    size_t n = strlen(raw);
    while (n > 1 && raw[n - 1] == '/')
        raw[--n] = '\0';
    char *slash = strrchr(raw, '/');
    *slash = '\0';
    if (!realpath(raw[0] ? raw : "/", parent))
        return -1;
    int k = snprintf(out, PATH_MAX, "%s/%s", strcmp(parent, "/") ? parent : "", slash + 1);
    return k > 0 && k < PATH_MAX ? 0 : -1;
}

/* The id of the tracked inode of st, adding it (and an N line) if new.
 * Caller holds g_mu. Returns 0 when the table is full. */
static int pl_file_id(const struct stat *st, const char *path)
{
    for (int i = 0; i < g_nfiles; i++)
        if (g_files[i].ino == st->st_ino && g_files[i].dev == st->st_dev)
            return i + 1;
    if (g_nfiles == PL_MAX_FILES)
        return 0;
    pl_file_t *f = &g_files[g_nfiles++];
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->nw = 0;
    f->isdir = S_ISDIR(st->st_mode);
    pl_log("N\t%d\t%lld\t%s\n", g_nfiles, (long long)st->st_size, path);
    return g_nfiles;
}

static void pl_track(int fd, int flags, int created)
{
    char path[PATH_MAX];
    struct stat st;
    if (fd >= PL_MAX_FD || pl_fdpath(fd, path) != 0 || !pl_under(path) || fstat(fd, &st) != 0)
        return;
    pthread_mutex_lock(&g_mu);
    if (created) {
        pl_log("C\t%s\n", path);
        g_ndirops++;
    }
    int id = pl_file_id(&st, path);
    atomic_store(&g_fd[fd], id ? id * 2 + ((flags & O_DSYNC) != 0) : 0);
    pthread_mutex_unlock(&g_mu);
}

/* The id behind a tracked fd, or 0. Drops an entry whose fd was closed
 * behind our back (its inode changed). Caller holds g_mu. */
static int pl_fd_id(int fd, int *dsync)
{
    int v = fd >= 0 && fd < PL_MAX_FD ? atomic_load(&g_fd[fd]) : 0;
    struct stat st;
    if (v == 0)
        return 0;
    pl_file_t *f = &g_files[(v >> 1) - 1];
    if (fstat(fd, &st) != 0 || st.st_ino != f->ino || st.st_dev != f->dev) {
        atomic_store(&g_fd[fd], 0);
        return 0;
    }
    if (dsync)
        *dsync = v & 1;
    return v >> 1;
}

static void pl_wrote(int fd, off_t off, ssize_t len)
{
    int dsync = 0;
    if (len <= 0 || fd < 0 || fd >= PL_MAX_FD || atomic_load(&g_fd[fd]) == 0)
        return;
    pthread_mutex_lock(&g_mu);
    int id = pl_fd_id(fd, &dsync);
    if (id && !dsync) {
        g_files[id - 1].nw++;
        pl_log("W\t%d\t%lld\t%lld\n", id, (long long)off, (long long)len);
    }
    pthread_mutex_unlock(&g_mu);
}

static int pl_tracked(int fd)
{
    return fd >= 0 && fd < PL_MAX_FD && atomic_load(&g_fd[fd]) != 0;
}

static int pl_open(int dirfd, const char *path, int flags, mode_t mode)
{
    PL_INIT();
    char abs[PATH_MAX];
    struct stat st;
    int created = 0;
    if (g_journal >= 0 && (flags & O_CREAT) && pl_abspath(dirfd, path, abs) == 0 && pl_under(abs))
        created = fstatat(dirfd, path, &st, 0) != 0 && errno == ENOENT;
    int fd = real_openat(dirfd, path, flags, mode);
    int e = errno;
    if (fd >= 0 && g_journal >= 0)
        pl_track(fd, flags, created);
    errno = e;
    return fd;
}

#define PL_MODE(flags, mode)                                                                       \
    do {                                                                                           \
        if ((flags) & (O_CREAT | __O_TMPFILE)) {                                                   \
            va_list ap;                                                                            \
            va_start(ap, flags);                                                                   \
            mode = va_arg(ap, mode_t);                                                             \
            va_end(ap);                                                                            \
        }                                                                                          \
    } while (0)

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    PL_MODE(flags, mode);
    return pl_open(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    PL_MODE(flags, mode);
    return pl_open(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    PL_MODE(flags, mode);
    return pl_open(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    PL_MODE(flags, mode);
    return pl_open(dirfd, path, flags, mode);
}

int creat(const char *path, mode_t mode)
{
    return pl_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int creat64(const char *path, mode_t mode)
{
    return pl_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    PL_INIT();
    ssize_t r = real_write(fd, buf, n);
    if (r > 0 && pl_tracked(fd)) {
        int e = errno;
        pl_wrote(fd, lseek(fd, 0, SEEK_CUR) - r, r);
        errno = e;
    }
    return r;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    PL_INIT();
    ssize_t r = real_writev(fd, iov, cnt);
    if (r > 0 && pl_tracked(fd)) {
        int e = errno;
        pl_wrote(fd, lseek(fd, 0, SEEK_CUR) - r, r);
        errno = e;
    }
    return r;
}

static ssize_t pl_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    PL_INIT();
    ssize_t r = real_pwrite(fd, buf, n, off);
    int e = errno;
    pl_wrote(fd, off, r);
    errno = e;
    return r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return pl_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    return pl_pwrite(fd, buf, n, off);
}

static ssize_t pl_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    PL_INIT();
    ssize_t r = real_pwritev(fd, iov, cnt, off);
    int e = errno;
    pl_wrote(fd, off, r);
    errno = e;
    return r;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    return pl_pwritev(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
    return pl_pwritev(fd, iov, cnt, off);
}

/* Plain allocation changes only the size; punching or zeroing a range
 * changes its bytes, like a write. */
static int pl_fallocate(int fd, int mode, off_t off, off_t len)
{
    PL_INIT();
    int r = real_fallocate(fd, mode, off, len);
    int e = errno;
    if (r == 0 && (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
        pl_wrote(fd, off, len);
    errno = e;
    return r;
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    return pl_fallocate(fd, mode, off, len);
}

int fallocate64(int fd, int mode, off64_t off, off64_t len)
{
    return pl_fallocate(fd, mode, off, len);
}

static int pl_sync(int fd, int (*fn)(int))
{
    char dpath[PATH_MAX];
    struct stat st;
    long nw = 0, nd = 0;
    int id = 0, isdir = 0;
    if (pl_tracked(fd)) {
        pthread_mutex_lock(&g_mu);
        id = pl_fd_id(fd, NULL);
        if (id) {
            nw = g_files[id - 1].nw;
            nd = g_ndirops;
            isdir = g_files[id - 1].isdir;
        }
        pthread_mutex_unlock(&g_mu);
    }
    /* The size after the snapshot: it may include racing writes, which
     * makes the cut lenient, never too harsh. */
    if (id && (fstat(fd, &st) != 0 || (isdir && pl_fdpath(fd, dpath) != 0)))
        id = 0;
    if (id && !isdir && g_sync_delay_us > 0)
        usleep((useconds_t)g_sync_delay_us);
    int r = fn(fd);
    int e = errno;
    if (r == 0 && id) {
        pthread_mutex_lock(&g_mu);
        if (isdir)
            pl_log("D\t%ld\t%s\n", nd, dpath);
        else
            pl_log("S\t%d\t%ld\t%lld\n", id, nw, (long long)st.st_size);
        pthread_mutex_unlock(&g_mu);
    }
    errno = e;
    return r;
}

int fsync(int fd)
{
    PL_INIT();
    return pl_sync(fd, real_fsync);
}

int fdatasync(int fd)
{
    PL_INIT();
    return pl_sync(fd, real_fdatasync);
}

static void pl_synced_all(void)
{
    if (g_journal < 0)
        return;
    pthread_mutex_lock(&g_mu);
    pl_log("Y\n");
    pthread_mutex_unlock(&g_mu);
}

void sync(void)
{
    PL_INIT();
    real_sync();
    pl_synced_all();
}

int syncfs(int fd)
{
    PL_INIT();
    int r = real_syncfs(fd);
    int e = errno;
    if (r == 0)
        pl_synced_all();
    errno = e;
    return r;
}

/* Keeps the inode at abs alive under a new name next to the journal, so the
 * cut can put it back. Writes "-" to bak when abs is no regular file or the
 * link fails (then the inode's number may be reused: forget it). */
static void pl_backup(const char *abs, char *bak)
{
    struct stat st;
    strcpy(bak, "-");
    if (lstat(abs, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    pthread_mutex_lock(&g_mu);
    snprintf(bak, PATH_MAX, "%s.bak.%ld", g_jpath, ++g_nbak);
    if (link(abs, bak) != 0) {
        strcpy(bak, "-");
        for (int i = 0; i < g_nfiles; i++)
            if (g_files[i].ino == st.st_ino && g_files[i].dev == st.st_dev)
                g_files[i].ino = 0;
    }
    pthread_mutex_unlock(&g_mu);
}

static void pl_drop_backup(const char *bak)
{
    if (strcmp(bak, "-") != 0)
        (void)real_unlinkat(AT_FDCWD, bak, 0);
}

int renameat(int odir, const char *oldp, int ndir, const char *newp)
{
    PL_INIT();
    char a[PATH_MAX], b[PATH_MAX], bak[PATH_MAX];
    int mine = g_journal >= 0 && pl_abspath(odir, oldp, a) == 0 && pl_abspath(ndir, newp, b) == 0 &&
               (pl_under(a) || pl_under(b));
    if (mine)
        pl_backup(b, bak);
    int r = real_renameat(odir, oldp, ndir, newp);
    int e = errno;
    if (mine && r == 0) {
        pthread_mutex_lock(&g_mu);
        pl_log("R\t%s\t%s\t%s\n", bak, a, b);
        g_ndirops++;
        pthread_mutex_unlock(&g_mu);
    } else if (mine) {
        pl_drop_backup(bak);
    }
    errno = e;
    return r;
}

int rename(const char *oldp, const char *newp)
{
    return renameat(AT_FDCWD, oldp, AT_FDCWD, newp);
}

int unlinkat(int dirfd, const char *path, int flags)
{
    PL_INIT();
    char a[PATH_MAX], bak[PATH_MAX];
    int mine =
        g_journal >= 0 && !(flags & AT_REMOVEDIR) && pl_abspath(dirfd, path, a) == 0 && pl_under(a);
    if (mine)
        pl_backup(a, bak);
    int r = real_unlinkat(dirfd, path, flags);
    int e = errno;
    if (mine && r == 0) {
        pthread_mutex_lock(&g_mu);
        pl_log("U\t%s\t%s\n", bak, a);
        g_ndirops++;
        pthread_mutex_unlock(&g_mu);
    } else if (mine) {
        pl_drop_backup(bak);
    }
    errno = e;
    return r;
}

int unlink(const char *path)
{
    return unlinkat(AT_FDCWD, path, 0);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
    PL_INIT();
    char a[PATH_MAX];
    int r = real_mkdirat(dirfd, path, mode);
    int e = errno;
    if (r == 0 && g_journal >= 0 && pl_abspath(dirfd, path, a) == 0 && pl_under(a)) {
        pthread_mutex_lock(&g_mu);
        pl_log("C\t%s\n", a);
        g_ndirops++;
        pthread_mutex_unlock(&g_mu);
    }
    errno = e;
    return r;
}

int mkdir(const char *path, mode_t mode)
{
    return mkdirat(AT_FDCWD, path, mode);
}

/* The copy nfd of fd gets fd's tracking (or none). */
static int pl_dup_done(int fd, int nfd)
{
    if (nfd >= 0 && nfd < PL_MAX_FD)
        atomic_store(&g_fd[nfd], fd >= 0 && fd < PL_MAX_FD ? atomic_load(&g_fd[fd]) : 0);
    return nfd;
}

int dup(int fd)
{
    PL_INIT();
    return pl_dup_done(fd, real_dup(fd));
}

int dup2(int fd, int nfd)
{
    PL_INIT();
    if (fd == nfd) /* dup2 of itself changes nothing (dup3 refuses it) */
        return fcntl(fd, F_GETFD) < 0 ? -1 : fd;
    return pl_dup_done(fd, real_dup3(fd, nfd, 0));
}

int dup3(int fd, int nfd, int flags)
{
    PL_INIT();
    return pl_dup_done(fd, real_dup3(fd, nfd, flags));
}

int close(int fd)
{
    PL_INIT();
    /* Forget first: once closed, the number may be reused at once. */
    if (fd >= 0 && fd < PL_MAX_FD)
        atomic_store(&g_fd[fd], 0);
    return real_close(fd);
}

#else /* POWERLOSS_CUT */

#include <ftw.h>
#include <stdint.h>

typedef struct {
    long long off, len;
    long seq;
} pl_range_t;

typedef struct {
    char *path;      /* where the inode is now; NULL when gone */
    long nw, synced; /* W lines seen; W lines made durable */
    long long dsize; /* durable size, -1 unknown */
    pl_range_t *r;
    size_t nr, cap;
} pl_cfile_t;

typedef struct {
    char kind; /* 'C', 'U' or 'R' */
    char *bak, *a, *b;
    int a_ok, b_ok; /* the parent directory of a (b) was fsynced after it */
} pl_dirop_t;

static pl_cfile_t *g_f;
static long g_nf;
static pl_dirop_t *g_ops;
static long g_nops;
static uint64_t g_rng;

enum { MODE_ZERO, MODE_GARBAGE, MODE_TRUNCATE, MODE_PAGES, MODE_COUNT };
static const char *const g_mode_names[] = {"zero", "garbage", "truncate", "pages"};

static uint64_t pl_rand(void)
{
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void *pl_xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        fprintf(stderr, "powerloss-cut: out of memory\n");
        exit(1);
    }
    return p;
}

static char *pl_strdup(const char *s)
{
    return strcmp(s, "-") ? strcpy(pl_xrealloc(NULL, strlen(s) + 1), s) : NULL;
}

static pl_cfile_t *pl_get(long id)
{
    if (id <= 0 || id > 1000000)
        return NULL;
    if (id > g_nf) {
        g_f = pl_xrealloc(g_f, (size_t)id * sizeof(*g_f));
        memset(g_f + g_nf, 0, (size_t)(id - g_nf) * sizeof(*g_f));
        g_nf = id;
    }
    return &g_f[id - 1];
}

static int pl_parent_is(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return path && strncmp(path, dir, n) == 0 && path[n] == '/' && !strchr(path + n + 1, '/');
}

/* The inodes at from (or under from/) are now at to (NULL: gone). */
static void pl_move(const char *from, const char *to)
{
    size_t n = strlen(from);
    for (long i = 0; i < g_nf; i++) {
        char *p = g_f[i].path;
        if (!p || strncmp(p, from, n) != 0 || (p[n] != '\0' && p[n] != '/'))
            continue;
        char *q = NULL;
        if (to) {
            q = pl_xrealloc(NULL, strlen(to) + strlen(p + n) + 1);
            strcat(strcpy(q, to), p + n);
        }
        free(p);
        g_f[i].path = q;
    }
}

static void pl_line(char *line)
{
    char *v[5] = {0};
    int n = 0;
    for (char *save = NULL, *t = strtok_r(line, "\t\n", &save); t && n < 5;
         t = strtok_r(NULL, "\t\n", &save))
        v[n++] = t;
    if (n == 0)
        return;
    pl_cfile_t *f = n > 1 ? pl_get(atol(v[1])) : NULL;
    if (v[0][0] == 'N' && n == 4 && f) {
        f->path = pl_strdup(v[3]);
        f->dsize = atoll(v[2]);
    } else if (v[0][0] == 'W' && n == 4 && f) {
        if (f->nr == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 64;
            f->r = pl_xrealloc(f->r, f->cap * sizeof(*f->r));
        }
        f->r[f->nr++] = (pl_range_t){atoll(v[2]), atoll(v[3]), ++f->nw};
    } else if (v[0][0] == 'S' && n == 4 && f && atol(v[2]) >= f->synced) {
        f->synced = atol(v[2]);
        f->dsize = atoll(v[3]);
    } else if (v[0][0] == 'Y') {
        for (long i = 0; i < g_nf; i++) {
            g_f[i].synced = g_f[i].nw;
            g_f[i].dsize = -1; /* its size then is not known: never cut */
        }
        for (long i = 0; i < g_nops; i++)
            g_ops[i].a_ok = g_ops[i].b_ok = 1;
    } else if (v[0][0] == 'D' && n == 3) {
        for (long i = 0; i < g_nops && i < atol(v[1]); i++) {
            g_ops[i].a_ok |= pl_parent_is(g_ops[i].a, v[2]);
            g_ops[i].b_ok |= pl_parent_is(g_ops[i].b, v[2]);
        }
    } else if (strchr("CUR", v[0][0]) && n >= 2) {
        g_ops = pl_xrealloc(g_ops, (size_t)(g_nops + 1) * sizeof(*g_ops));
        pl_dirop_t *op = &g_ops[g_nops++];
        *op = (pl_dirop_t){v[0][0], NULL, NULL, NULL, 0, 1};
        if (op->kind == 'C') {
            op->a = pl_strdup(v[1]);
        } else if (op->kind == 'U' && n == 3) {
            op->bak = pl_strdup(v[1]);
            op->a = pl_strdup(v[2]);
            pl_move(v[2], op->bak);
        } else if (op->kind == 'R' && n == 4) {
            op->bak = pl_strdup(v[1]);
            op->a = pl_strdup(v[2]);
            op->b = pl_strdup(v[3]);
            op->b_ok = 0;
            pl_move(v[3], op->bak);
            pl_move(v[2], v[3]);
        }
    }
}

/* Loses the bytes [off, off+len) of fd in the way mode says. */
static long long pl_damage(int fd, long long off, long long len, int mode)
{
    static unsigned char buf[4096];
    long long lost = 0;
    while (len > 0) {
        long long n = 4096 - off % 4096;
        n = n < len ? n : len;
        int how = mode == MODE_PAGES ? (int)(pl_rand() % 3) : mode == MODE_GARBAGE ? 2 : 1;
        if (how > 0) {
            for (long long i = 0; i < n; i++)
                buf[i] = how == 2 ? (unsigned char)pl_rand() : 0;
            if (pwrite(fd, buf, (size_t)n, off) != n)
                return -1;
            lost += n;
        }
        off += n;
        len -= n;
    }
    return lost;
}

/* Damages what was written to f after its last fsync. Returns the number
 * of bytes lost (cut off or overwritten). */
static long long pl_cut_file(pl_cfile_t *f, int mode)
{
    struct stat st;
    long long lost = 0;
    if (!f->path || lstat(f->path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    int fd = open(f->path, O_RDWR);
    if (fd < 0)
        return 0;
    int cut = mode == MODE_TRUNCATE || (mode == MODE_PAGES && pl_rand() % 2);
    long long size = st.st_size;
    if (cut && f->dsize >= 0 && size > f->dsize) {
        lost += size - f->dsize;
        size = f->dsize;
        if (ftruncate(fd, size) != 0)
            perror("powerloss-cut: ftruncate");
    }
    for (size_t i = 0; i < f->nr; i++) {
        pl_range_t *r = &f->r[i];
        long long end = r->off + r->len < size ? r->off + r->len : size;
        if (r->seq > f->synced && r->off < end) {
            long long n = pl_damage(fd, r->off, end - r->off, mode == MODE_TRUNCATE ? 0 : mode);
            lost += n > 0 ? n : 0;
        }
    }
    close(fd);
    return lost;
}

static int pl_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Undoes one directory change that was not made durable. */
static void pl_undo(pl_dirop_t *op)
{
    if (op->kind == 'C') {
        (void)nftw(op->a, pl_rm, 16, FTW_DEPTH | FTW_PHYS);
    } else if (op->kind == 'U' && op->bak) {
        (void)rename(op->bak, op->a);
    } else if (op->kind == 'R') {
        (void)rename(op->b, op->a);
        if (op->bak)
            (void)rename(op->bak, op->b);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: powerloss-cut JOURNAL SEED\n");
        return 2;
    }
    FILE *j = fopen(argv[1], "r");
    if (!j) {
        perror(argv[1]);
        return 1;
    }
    g_rng = strtoull(argv[2], NULL, 10);
    int mode = (int)(pl_rand() % MODE_COUNT);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, j)) > 0)
        if (line[n - 1] == '\n') /* a torn last line is ignored */
            pl_line(line);
    free(line);
    fclose(j);

    long long lost = 0;
    long files = 0, undone = 0;
    for (long i = 0; i < g_nf; i++) {
        long long l = pl_cut_file(&g_f[i], mode);
        lost += l;
        files += l > 0;
    }
    for (long i = g_nops - 1; i >= 0; i--)
        if (!g_ops[i].a_ok || !g_ops[i].b_ok) {
            fprintf(
                stderr, "powerloss-cut: undone, its directory was not fsynced after: %c %s%s%s\n",
                g_ops[i].kind, g_ops[i].a, g_ops[i].b ? " -> " : "", g_ops[i].b ? g_ops[i].b : "");
            pl_undo(&g_ops[i]);
            undone++;
        }
    for (long i = 0; i < g_nops; i++) /* backups not put back */
        if (g_ops[i].bak)
            (void)unlink(g_ops[i].bak);
    printf("powerloss-cut: mode=%s files_damaged=%ld bytes_lost=%lld dir_changes_undone=%ld\n",
           g_mode_names[mode], files, lost, undone);
    return 0;
}

#endif
