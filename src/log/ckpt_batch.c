/* ckpt_batch.c - a checkpoint being built in memory on the processing
 * thread.
 *
 * put and del copy the entry, already in its on-disk encoding, into the
 * current 1 MiB chunk and append a reference to it: no I/O, no sorting, one
 * memcpy. The checkpoint thread sorts the references by key when it writes
 * the batch (at_ckpt__batch_sort), so the processing thread never pays for
 * the order a file needs.
 */
#include "ckpt_int.h"

#include <stdlib.h>

#define AT_CKPT__CHUNK ((size_t)1 << 20)

/* Returns an empty batch, owned (at_ckpt_batch_free()). Thread: any. */
at_ckpt_batch_t *at_ckpt_batch_new(void)
{
    return at_xcalloc(1, sizeof(at_ckpt_batch_t));
}

/* Frees b and everything it holds. Thread: b's owner. */
void at_ckpt_batch_free(at_ckpt_batch_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->nchunks; i++)
        free(b->chunks[i]);
    free(b->chunks);
    free(b->sizes);
    free(b->refs);
    free(b->meta);
    free(b);
}

/* Empties b: keeps its first chunk and its index array, frees the rest.
 * Thread: b's owner. */
void at_ckpt_batch_reset(at_ckpt_batch_t *b)
{
    uint8_t *keep = NULL;
    for (size_t i = 0; i < b->nchunks; i++) {
        if (!keep && b->sizes[i] == AT_CKPT__CHUNK)
            keep = b->chunks[i];
        else
            free(b->chunks[i]);
    }
    b->nchunks = 0;
    if (keep) {
        b->chunks[0] = keep;
        b->sizes[0] = AT_CKPT__CHUNK;
        b->nchunks = 1;
    }
    b->used = 0;
    b->n = 0;
    b->next_seq = 0;
    free(b->meta);
    b->meta = NULL;
    b->meta_len = 0;
    b->full = false;
    b->bytes = b->nchunks * AT_CKPT__CHUNK + b->refs_cap * sizeof *b->refs;
}

/* Returns room for n bytes, starting a new chunk when the current one is
 * full (an entry bigger than a chunk gets one of its own size). */
static uint8_t *at_ckpt__batch_room(at_ckpt_batch_t *b, size_t n)
{
    size_t last = b->nchunks - 1;
    if (b->nchunks && b->sizes[last] - b->used >= n) {
        uint8_t *p = b->chunks[last] + b->used;
        b->used += n;
        return p;
    }
    if (b->nchunks == b->chunks_cap) {
        b->chunks_cap = b->chunks_cap ? 2 * b->chunks_cap : 16;
        b->chunks = at_xrealloc(b->chunks, b->chunks_cap * sizeof *b->chunks);
        b->sizes = at_xrealloc(b->sizes, b->chunks_cap * sizeof *b->sizes);
    }
    size_t size = AT_MAX(n, AT_CKPT__CHUNK);
    uint8_t *c = at_xmalloc(size);
    b->bytes += size;
    if (b->nchunks && size > AT_CKPT__CHUNK) {
        /* A big entry goes in behind the current chunk, which keeps
         * filling. */
        b->chunks[b->nchunks] = b->chunks[last];
        b->sizes[b->nchunks] = b->sizes[last];
        b->chunks[last] = c;
        b->sizes[last] = size;
        b->nchunks++;
        return c;
    }
    b->chunks[b->nchunks] = c;
    b->sizes[b->nchunks] = size;
    b->nchunks++;
    b->used = n;
    return c;
}

/* Encodes one entry and indexes it. */
static int at_ckpt__batch_add(at_ckpt_batch_t *b, int kind, const void *key, size_t klen,
                              const void *val, size_t vlen)
{
    if (klen == 0)
        return AT_EINVALID;
    if (klen > AT_CKPT_MAX_KEY || vlen > AT_CKPT_MAX_VALUE)
        return AT_ETOOBIG;
    if (b->n == b->refs_cap) {
        size_t cap = b->refs_cap ? 2 * b->refs_cap : 1024;
        b->refs = at_xrealloc(b->refs, cap * sizeof *b->refs);
        b->bytes += (cap - b->refs_cap) * sizeof *b->refs;
        b->refs_cap = cap;
    }
    uint8_t *p = at_ckpt__batch_room(b, AT_CKPT__ENT_HDR + klen + vlen);
    p[0] = (uint8_t)kind;
    at_log__put16(p + 1, (uint16_t)klen);
    at_log__put32(p + 3, (uint32_t)vlen);
    memcpy(p + AT_CKPT__ENT_HDR, key, klen);
    if (vlen)
        memcpy(p + AT_CKPT__ENT_HDR + klen, val, vlen);
    uint8_t pfx[8] = {0};
    memcpy(pfx, key, AT_MIN(klen, sizeof pfx));
    uint64_t v;
    memcpy(&v, pfx, 8);
    b->refs[b->n] = (at_ckpt__ref_t){.pfx = be64toh(v), .p = p, .seq = b->next_seq++};
    b->n++;
    return 0;
}

/* Records key = val (both copied). Returns 0, AT_EINVALID or AT_ETOOBIG.
 * Thread: b's owner. */
int at_ckpt_batch_put(at_ckpt_batch_t *b, const void *key, size_t klen, const void *val,
                      size_t vlen)
{
    return at_ckpt__batch_add(b, AT_CKPT__PUT, key, klen, val, vlen);
}

/* Records that key was dropped (copied). Returns 0, AT_EINVALID or
 * AT_ETOOBIG. Thread: b's owner. */
int at_ckpt_batch_del(at_ckpt_batch_t *b, const void *key, size_t klen)
{
    return at_ckpt__batch_add(b, AT_CKPT__DEL, key, klen, NULL, 0);
}

/* Sets the meta (copied). Returns 0 or AT_ETOOBIG. Thread: b's owner. */
int at_ckpt_batch_set_meta(at_ckpt_batch_t *b, const void *meta, size_t len)
{
    if (len > AT_CKPT_MAX_META)
        return AT_ETOOBIG;
    uint8_t *m = len ? at_xmalloc(len) : NULL;
    if (len)
        memcpy(m, meta, len);
    b->bytes = b->bytes - b->meta_len + len;
    free(b->meta);
    b->meta = m;
    b->meta_len = len;
    return 0;
}

/* Marks b as holding the whole state. Thread: b's owner. */
void at_ckpt_batch_set_full(at_ckpt_batch_t *b, bool full)
{
    b->full = full;
}

/* Returns the entries recorded. Thread: b's owner. */
size_t at_ckpt_batch_count(const at_ckpt_batch_t *b)
{
    return b->n;
}

/* Returns the bytes of memory b holds, about. Thread: b's owner. */
size_t at_ckpt_batch_bytes(const at_ckpt_batch_t *b)
{
    return b->bytes;
}

/* Orders references by key, then by arrival. */
static int at_ckpt__ref_cmp(const void *x, const void *y)
{
    const at_ckpt__ref_t *a = x, *b = y;
    if (a->pfx != b->pfx)
        return a->pfx < b->pfx ? -1 : 1;
    int c = at_ckpt__keycmp(a->p + AT_CKPT__ENT_HDR, at_log__get16(a->p + 1),
                            b->p + AT_CKPT__ENT_HDR, at_log__get16(b->p + 1));
    if (c)
        return c;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Sorts b's references by key and keeps only the last of equal keys, in
 * b->refs[0..returned). Thread: b's owner (the checkpoint thread). */
size_t at_ckpt__batch_sort(at_ckpt_batch_t *b)
{
    if (b->n > 1)
        qsort(b->refs, b->n, sizeof *b->refs, at_ckpt__ref_cmp);
    size_t out = 0;
    for (size_t i = 0; i < b->n; i++) {
        const at_ckpt__ref_t *r = &b->refs[i];
        if (i + 1 < b->n) {
            const at_ckpt__ref_t *nx = &b->refs[i + 1];
            if (r->pfx == nx->pfx &&
                at_ckpt__keycmp(r->p + AT_CKPT__ENT_HDR, at_log__get16(r->p + 1),
                                nx->p + AT_CKPT__ENT_HDR, at_log__get16(nx->p + 1)) == 0)
                continue; /* a later entry of this key follows */
        }
        b->refs[out++] = *r;
    }
    b->n = out;
    return out;
}
