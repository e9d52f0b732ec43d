/* error.c - error codes, messages a person reads, and panics.
 *
 * at_strerror() uses its own tables instead of strerror(): the result is a
 * static string, so it is safe from any thread without a caller buffer. */
#include "at_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const at_error__own[] = {
    [-AT_EPARSE - 10001] = "input could not be parsed",
    [-AT_EINVALID - 10001] = "input is not valid",
    [-AT_ETOOBIG - 10001] = "size limit exceeded",
    [-AT_EFULL - 10001] = "queue is full, retry later",
    [-AT_ECORRUPT - 10001] = "data is corrupt",
    [-AT_ECONFLICT - 10001] = "conflicting change",
    [-AT_ENOTFOUND - 10001] = "not found",
    [-AT_EAUTH - 10001] = "missing or wrong credentials",
    [-AT_EVERSION - 10001] = "unknown format version",
    [-AT_ECLOSED - 10001] = "shutting down",
    [-AT_EUNAVAIL - 10001] = "temporarily unavailable",
};

/* The errno values a server meets in practice; others read "system error". */
static const char *const at_error__errno[] = {
    [EPERM] = "operation not permitted",
    [ENOENT] = "no such file or directory",
    [ESRCH] = "no such process",
    [EINTR] = "interrupted system call",
    [EIO] = "input/output error",
    [ENXIO] = "no such device or address",
    [E2BIG] = "argument list too long",
    [EBADF] = "bad file descriptor",
    [ECHILD] = "no child processes",
    [EAGAIN] = "resource temporarily unavailable",
    [ENOMEM] = "cannot allocate memory",
    [EACCES] = "permission denied",
    [EFAULT] = "bad address",
    [EBUSY] = "device or resource busy",
    [EEXIST] = "file exists",
    [EXDEV] = "invalid cross-device link",
    [ENODEV] = "no such device",
    [ENOTDIR] = "not a directory",
    [EISDIR] = "is a directory",
    [EINVAL] = "invalid argument",
    [ENFILE] = "too many open files in system",
    [EMFILE] = "too many open files",
    [EFBIG] = "file too large",
    [ENOSPC] = "no space left on device",
    [ESPIPE] = "illegal seek",
    [EROFS] = "read-only file system",
    [EMLINK] = "too many links",
    [EPIPE] = "broken pipe",
    [ERANGE] = "result out of range",
    [EDEADLK] = "resource deadlock avoided",
    [ENAMETOOLONG] = "file name too long",
    [ENOSYS] = "function not implemented",
    [ENOTEMPTY] = "directory not empty",
    [ELOOP] = "too many levels of symbolic links",
    [EOVERFLOW] = "value too large for defined data type",
    [ENOTSOCK] = "socket operation on non-socket",
    [EMSGSIZE] = "message too long",
    [EPROTONOSUPPORT] = "protocol not supported",
    [EOPNOTSUPP] = "operation not supported",
    [EAFNOSUPPORT] = "address family not supported by protocol",
    [EADDRINUSE] = "address already in use",
    [EADDRNOTAVAIL] = "cannot assign requested address",
    [ENETDOWN] = "network is down",
    [ENETUNREACH] = "network is unreachable",
    [ECONNABORTED] = "software caused connection abort",
    [ECONNRESET] = "connection reset by peer",
    [ENOBUFS] = "no buffer space available",
    [EISCONN] = "transport endpoint is already connected",
    [ENOTCONN] = "transport endpoint is not connected",
    [ESHUTDOWN] = "cannot send after transport endpoint shutdown",
    [ETIMEDOUT] = "connection timed out",
    [ECONNREFUSED] = "connection refused",
    [EHOSTUNREACH] = "no route to host",
    [EALREADY] = "operation already in progress",
    [EINPROGRESS] = "operation now in progress",
    [EPROTO] = "protocol error",
    [EDQUOT] = "disk quota exceeded",
    [ECANCELED] = "operation canceled",
};

/* Returns a static string for code: AT_OK, an AT_E* code, or -errno (a
 * positive errno is accepted too). Never NULL. Thread: any. */
const char *at_strerror(int code)
{
    if (code == 0)
        return "success";
    if (code <= AT_EPARSE && code >= AT_EUNAVAIL)
        return at_error__own[-code - 10001];
    int e = code < 0 ? -code : code;
    if (e > 0 && (size_t)e < AT_ARRAY_LEN(at_error__errno) && at_error__errno[e])
        return at_error__errno[e];
    return "system error";
}

/* Fills e with code, field (NULL = "") and a formatted message, truncating
 * each to its array. e may be NULL. Returns rc unchanged. Thread: any. */
int at_error_set(at_error_t *e, int rc, const char *code, const char *field, const char *fmt, ...)
{
    if (!e)
        return rc;
    (void)snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    (void)snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return rc;
}

/* Prints "attune: panic at FILE:LINE: WHAT" to stderr in one write and
 * aborts. Thread: any; never returns. */
void at_panic(const char *file, int line, const char *what)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "attune: panic at %s:%d: %s\n", file, line, what);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof msg)
        n = sizeof msg - 1;
    ssize_t w = write(STDERR_FILENO, msg, (size_t)n);
    (void)w;
    abort();
}
