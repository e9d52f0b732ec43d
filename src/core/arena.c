/* arena.c - request- and batch-scoped memory, freed all at once.
 *
 * A list of chunks, newest first; allocation bumps a pointer in the head
 * chunk. A request larger than a quarter of the chunk size gets a chunk of
 * its own, linked behind the head so the head keeps serving small ones. */
#include "at_core.h"

#include <stdlib.h>
#include <string.h>

#define AT_ARENA_ALIGN 16

struct at_arena_chunk {
    at_arena_chunk_t *next;
    size_t size; /* usable bytes after the header */
    size_t used;
};

/* The header size rounded up, so the data that follows it is aligned. */
#define AT_ARENA_HDR                                                                               \
    ((sizeof(at_arena_chunk_t) + AT_ARENA_ALIGN - 1) & ~(size_t)(AT_ARENA_ALIGN - 1))

static unsigned char *at_arena__data(at_arena_chunk_t *c)
{
    return (unsigned char *)c + AT_ARENA_HDR;
}

static at_arena_chunk_t *at_arena__chunk_new(size_t size)
{
    if (size > SIZE_MAX - AT_ARENA_HDR)
        at_panic(__FILE__, __LINE__, "arena allocation too large");
    at_arena_chunk_t *c = aligned_alloc(AT_ARENA_ALIGN, (AT_ARENA_HDR + size + AT_ARENA_ALIGN - 1) &
                                                            ~(size_t)(AT_ARENA_ALIGN - 1));
    if (!c)
        at_panic(__FILE__, __LINE__, "out of memory");
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

/* Initialises a with chunks of chunk_size bytes (0 = 16 KiB); no memory is
 * taken until the first allocation. Thread: owner. */
void at_arena_init(at_arena_t *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 16384;
}

/* Frees every chunk; a is left empty and reusable. Thread: owner. */
void at_arena_deinit(at_arena_t *a)
{
    at_arena_chunk_t *c = a->head;
    while (c) {
        at_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

/* Invalidates every allocation; keeps the oldest chunk of the standard
 * size (the first one taken) for reuse and frees the rest. Thread: owner. */
void at_arena_reset(at_arena_t *a)
{
    at_arena_chunk_t *keep = NULL;
    for (at_arena_chunk_t *c = a->head; c; c = c->next) {
        if (c->size == a->chunk_size)
            keep = c;
    }
    at_arena_chunk_t *c = a->head;
    while (c) {
        at_arena_chunk_t *next = c->next;
        if (c != keep)
            free(c);
        c = next;
    }
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
    }
    a->head = keep;
}

/* Returns n bytes (16-byte aligned, uninitialised) that live until the
 * next reset/deinit. Aborts on OOM. Thread: owner. */
void *at_arena_alloc(at_arena_t *a, size_t n)
{
    if (n > SIZE_MAX / 2)
        at_panic(__FILE__, __LINE__, "arena allocation too large");
    size_t need = (n + AT_ARENA_ALIGN - 1) & ~(size_t)(AT_ARENA_ALIGN - 1);
    if (need == 0)
        need = AT_ARENA_ALIGN;
    at_arena_chunk_t *h = a->head;
    if (h && h->size - h->used >= need) {
        void *p = at_arena__data(h) + h->used;
        h->used += need;
        return p;
    }
    if (need > a->chunk_size / 4) {
        at_arena_chunk_t *big = at_arena__chunk_new(need);
        big->used = need;
        if (h) {
            big->next = h->next;
            h->next = big;
        } else {
            a->head = big;
        }
        return at_arena__data(big);
    }
    at_arena_chunk_t *c = at_arena__chunk_new(a->chunk_size);
    c->next = h;
    a->head = c;
    c->used = need;
    return at_arena__data(c);
}

/* Returns an arena copy of the n bytes at s plus a NUL (embedded NULs are
 * copied). Thread: owner. */
char *at_arena_strndup(at_arena_t *a, const char *s, size_t n)
{
    char *p = at_arena_alloc(a, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
