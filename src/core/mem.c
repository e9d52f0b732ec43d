/* mem.c - allocators that abort with file and line when memory runs out.
 * Sizes that come from clients are checked against limits before they get
 * here, so running out of memory is an engine bug or a host problem. */
#include "at_core.h"

#include <stdlib.h>
#include <string.h>

/* Returns owned memory of n bytes (n = 0 gives a unique pointer); free with
 * free(). Aborts on OOM. Thread: any. */
void *at_xmalloc_(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        at_panic(file, line, "out of memory");
    return p;
}

/* Returns owned zeroed memory of n * m bytes; aborts on OOM or overflow.
 * Thread: any. */
void *at_xcalloc_(size_t n, size_t m, const char *file, int line)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        at_panic(file, line, "out of memory");
    return p;
}

/* Resizes p (owned by the caller) to n bytes; returns the new owned
 * pointer. Aborts on OOM. Thread: any. */
void *at_xrealloc_(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        at_panic(file, line, "out of memory");
    return q;
}

/* Returns an owned copy of the first n bytes of s plus a NUL (s must have n
 * readable bytes; embedded NULs are copied). Free with free(). Thread: any. */
char *at_xstrndup_(const char *s, size_t n, const char *file, int line)
{
    if (n == SIZE_MAX)
        at_panic(file, line, "size overflow");
    char *p = at_xmalloc_(n + 1, file, line);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
