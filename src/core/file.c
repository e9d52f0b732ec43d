/* file.c - whole-file reads and crash-safe writes.
 *
 * at_file_write_atomic follows the usual recipe: write a temporary file in
 * the same directory, fsync it, rename it over the target, fsync the
 * directory so the rename itself survives a crash. */
#include "at_core.h"

#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads all of fd into an owned buffer, refusing more than max bytes
 * (0 = no cap). */
static int at_file__read_fd(int fd, size_t max, char **out, size_t *len)
{
    at_buf_t b;
    at_buf_init(&b, max);
    int rc = 0;
    for (;;) {
        size_t want = 65536;
        char probe;
        if (max && b.len == max) {
            ssize_t more = read(fd, &probe, 1); /* is there anything past the cap? */
            if (more < 0 && errno == EINTR)
                continue;
            if (more != 0) {
                rc = more > 0 ? AT_ETOOBIG : -errno;
                goto out;
            }
            break;
        }
        if (max)
            want = AT_MIN(want, max - b.len);
        if ((rc = at_buf_reserve(&b, want)) != 0)
            goto out;
        ssize_t r = read(fd, b.data + b.len, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        b.len += (size_t)r;
        b.data[b.len] = '\0';
    }
    *out = at_buf_steal(&b, len);
out:
    at_buf_deinit(&b);
    return rc;
}

/* Reads the whole file at path (at most max bytes; 0 = no cap) into *out,
 * owned and NUL-terminated (free with free()), its size in *len (may be
 * NULL). Returns 0, -errno or AT_ETOOBIG. Thread: any. */
int at_file_read(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        goto out;
    }
    if (max && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
        rc = AT_ETOOBIG;
        goto out;
    }
    rc = at_file__read_fd(fd, max, out, len);
out:
    close(fd);
    return rc;
}

static int at_file__write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes the directory part of path into dir ("." when there is none);
 * dirname() is not used because it may keep static state. */
static void at_file__dirname(const char *path, char *dir, size_t dirlen)
{
    const char *slash = strrchr(path, '/');
    while (slash && slash > path && slash[-1] == '/')
        slash--;
    if (!slash) {
        (void)snprintf(dir, dirlen, ".");
        return;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    (void)snprintf(dir, dirlen, "%.*s", (int)n, path);
}

/* Writes data to path so that after a crash the file holds either the old
 * or the new content: tmp file, fsync, rename, fsync of the directory.
 * Returns 0 or -errno (the tmp file is removed on error). Thread: any;
 * concurrent writers of one path end with one of their contents. */
int at_file_write_atomic(const char *path, const void *data, size_t len)
{
    static atomic_uint seq;
    char tmp[PATH_MAX];
    char dir[PATH_MAX];
    int n =
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&seq, 1));
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = at_file__write_all(fd, data, len);
    if (!rc && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) < 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        return rc;
    }
    at_file__dirname(path, dir, sizeof dir);
    return at_fsync_dir(dir);
}

/* Creates path and its missing parents with mode (like mkdir -p). Returns
 * 0 (also when it exists as a directory) or -errno. Thread: any. */
/* fsyncs the directory holding path (a path without '/' is in "."). */
static int at_file__sync_parent(char *path)
{
    char *slash = strrchr(path, '/');
    if (!slash)
        return at_fsync_dir(".");
    if (slash == path)
        return at_fsync_dir("/");
    *slash = '\0';
    int rc = at_fsync_dir(path);
    *slash = '/';
    return rc;
}

int at_mkdirs(const char *path, int mode)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0)
        return -ENOENT;
    if (n >= sizeof p)
        return -ENAMETOOLONG;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, (mode_t)mode) == 0) {
            /* The new entry is durable only once its parent is synced. */
            int rc = at_file__sync_parent(p);
            if (rc < 0)
                return rc;
        } else if (errno != EEXIST) {
            return -errno;
        }
        p[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* fsyncs the directory at path, making renames and creations in it
 * durable. Returns 0 or -errno. Thread: any. */
int at_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}
