/* ckpt_file.c - the bytes of a checkpoint file (layout: ckpt_int.h): the
 * writer that streams sorted entries into checksummed blocks, and the
 * cursor that reads them back, checking every byte.
 *
 * The checksums form a chain (each seeded with the one before it, from the
 * header's to the trailer's), so a reader that reached the trailer and
 * found its checksum right has seen every byte of the file as written. The
 * cursor also checks what a checksum cannot: the order of keys, the counts,
 * the lengths, so that even a file crafted to pass its checksums cannot make
 * a reader return a key twice or read out of bounds.
 */
#include "ckpt_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define AT_CKPT__FLUSH ((size_t)1 << 20)      /* write pending blocks past this */
#define AT_CKPT__WRITEBACK ((int64_t)8 << 20) /* start writeback every this many bytes */

/* The magic numbers of ckpt_int.h as bytes (no NUL). */
static const uint8_t at_ckpt__magic[8] = {'A', 'T', 'C', 'K', 'P', 'T', 'R', 'N'};
static const uint8_t at_ckpt__end_magic[8] = {'A', 'T', 'C', 'K', 'E', 'N', 'D', '\n'};

/* Formats a message into err (may be NULL) and returns rc. Thread: any. */
int at_ckpt__errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Writes "<id, 20 digits>.base|.delta<suffix>" into out
 * (AT_CKPT__NAME_MAX bytes). Thread: any. */
void at_ckpt__name(char *out, uint64_t id, bool base, const char *suffix)
{
    (void)snprintf(out, AT_CKPT__NAME_MAX, "%020llu.%s%s", (unsigned long long)id,
                   base ? "base" : "delta", suffix ? suffix : "");
}

/* ---- header ---------------------------------------------------------------- */

/* Encodes h into out (AT_CKPT__HDR_FIXED + meta_len + 8 bytes); returns its
 * checksum. */
static uint64_t at_ckpt__hdr_encode(uint8_t *out, const at_ckpt__hdr_t *h)
{
    memcpy(out, at_ckpt__magic, sizeof at_ckpt__magic);
    at_log__put32(out + 8, AT_CKPT_FORMAT_VERSION);
    at_log__put32(out + 12, h->flags);
    at_log__put32(out + 16, h->partition);
    at_log__put32(out + 20, h->meta_len);
    at_log__put64(out + 24, h->id);
    at_log__put64(out + 32, h->base_id);
    at_log__put64(out + 40, (uint64_t)h->created_ms);
    if (h->meta_len)
        memcpy(out + AT_CKPT__HDR_FIXED, h->meta, h->meta_len);
    size_t n = AT_CKPT__HDR_FIXED + h->meta_len;
    uint64_t sum = XXH3_64bits(out, n);
    at_log__put64(out + n, sum);
    return sum;
}

/* ---- writer ---------------------------------------------------------------- */

/* Makes room for n more bytes in the writer's buffer. */
static void at_ckpt__wr_reserve(at_ckpt__wr_t *w, size_t n)
{
    if (w->len + n <= w->cap)
        return;
    size_t cap = w->cap ? w->cap : AT_CKPT__FLUSH + AT_CKPT__BLOCK_TARGET;
    while (cap < w->len + n)
        cap *= 2;
    w->buf = at_xrealloc(w->buf, cap);
    w->cap = cap;
}

/* Writes the pending bytes before the open block (all when none is open). */
static int at_ckpt__wr_flush(at_ckpt__wr_t *w)
{
    size_t n = w->blk == SIZE_MAX ? w->len : w->blk;
    if (n == 0)
        return 0;
    int rc = at_log__pwrite_all(w->fd, w->buf, n, w->pos, NULL);
    if (rc)
        return rc;
    memmove(w->buf, w->buf + n, w->len - n);
    w->len -= n;
    w->pos += (int64_t)n;
    if (w->blk != SIZE_MAX)
        w->blk -= n;
    if (w->pos - w->synced >= AT_CKPT__WRITEBACK) {
        /* Start writing back what is written so far: the final fdatasync
         * then waits for little, and a big base never piles up hundreds
         * of MB of dirty pages in front of the journal's syncs. Errors
         * show again at the fdatasync. */
        (void)sync_file_range(w->fd, w->synced, w->pos - w->synced, SYNC_FILE_RANGE_WRITE);
        w->synced = w->pos;
    }
    return 0;
}

/* Closes the open block: fills in its length, count and checksum. */
static void at_ckpt__wr_close_block(at_ckpt__wr_t *w)
{
    if (w->blk == SIZE_MAX)
        return;
    uint8_t *b = w->buf + w->blk;
    size_t body = w->len - w->blk - AT_CKPT__BLK_HDR;
    at_log__put32(b + 8, (uint32_t)body);
    at_log__put32(b + 12, w->blk_count);
    w->seed = XXH3_64bits_withSeed(b + 8, body + 8, w->seed);
    at_log__put64(b, w->seed);
    w->blk = SIZE_MAX;
    w->blk_count = 0;
    w->blocks++;
}

/* Creates tmp_name in dirfd (truncating a leftover of that name) and puts
 * h's encoding first in the buffer. Returns 0 or -errno. Thread: the
 * store's. */
int at_ckpt__wr_open(at_ckpt__wr_t *w, int dirfd, const char *tmp_name, const at_ckpt__hdr_t *h)
{
    memset(w, 0, offsetof(at_ckpt__wr_t, last_key));
    w->last_klen = 0;
    w->any = false;
    w->blk = SIZE_MAX;
    w->base = h->flags & AT_CKPT__F_BASE;
    w->fd = openat(dirfd, tmp_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0)
        return -errno;
    size_t n = AT_CKPT__HDR_FIXED + h->meta_len + 8;
    at_ckpt__wr_reserve(w, n);
    w->seed = at_ckpt__hdr_encode(w->buf, h);
    w->len = n;
    return 0;
}

/* Appends one entry, opening and closing blocks as they fill. Keys must be
 * strictly increasing (asserted: the callers sort or merge). A base takes
 * no deletes (asserted). Returns 0 or -errno. */
int at_ckpt__wr_add(at_ckpt__wr_t *w, int kind, const uint8_t *key, size_t klen, const uint8_t *val,
                    size_t vlen)
{
    AT_ASSERT(klen >= 1 && klen <= AT_CKPT_MAX_KEY && vlen <= AT_CKPT_MAX_VALUE);
    AT_ASSERT(kind == AT_CKPT__PUT || (kind == AT_CKPT__DEL && vlen == 0 && !w->base));
    AT_ASSERT(!w->any || at_ckpt__keycmp(w->last_key, w->last_klen, key, klen) < 0);
    memcpy(w->last_key, key, klen);
    w->last_klen = klen;
    w->any = true;
    size_t esz = AT_CKPT__ENT_HDR + klen + vlen;
    if (w->blk != SIZE_MAX && w->len - w->blk - AT_CKPT__BLK_HDR + esz > AT_CKPT__BLOCK_TARGET)
        at_ckpt__wr_close_block(w);
    if (w->blk == SIZE_MAX) {
        if (w->len >= AT_CKPT__FLUSH) {
            int rc = at_ckpt__wr_flush(w);
            if (rc)
                return rc;
        }
        at_ckpt__wr_reserve(w, AT_CKPT__BLK_HDR);
        w->blk = w->len;
        w->len += AT_CKPT__BLK_HDR;
    }
    at_ckpt__wr_reserve(w, esz);
    uint8_t *p = w->buf + w->len;
    p[0] = (uint8_t)kind;
    at_log__put16(p + 1, (uint16_t)klen);
    at_log__put32(p + 3, (uint32_t)vlen);
    memcpy(p + AT_CKPT__ENT_HDR, key, klen);
    if (vlen)
        memcpy(p + AT_CKPT__ENT_HDR + klen, val, vlen);
    w->len += esz;
    w->blk_count++;
    if (kind == AT_CKPT__PUT)
        w->puts++;
    else
        w->dels++;
    return 0;
}

/* Closes the last block, appends the trailer, writes everything and
 * fdatasyncs; closes the file. Returns 0 or -errno. */
int at_ckpt__wr_finish(at_ckpt__wr_t *w, int64_t *bytes)
{
    at_ckpt__wr_close_block(w);
    at_ckpt__wr_reserve(w, AT_CKPT__TRAILER);
    uint8_t *t = w->buf + w->len;
    int64_t size = w->pos + (int64_t)w->len + AT_CKPT__TRAILER;
    memcpy(t + 8, at_ckpt__end_magic, sizeof at_ckpt__end_magic);
    at_log__put64(t + 16, w->blocks);
    at_log__put64(t + 24, w->puts);
    at_log__put64(t + 32, w->dels);
    at_log__put64(t + 40, (uint64_t)size);
    at_log__put64(t, XXH3_64bits_withSeed(t + 8, AT_CKPT__TRAILER - 8, w->seed));
    w->len += AT_CKPT__TRAILER;
    int rc = at_ckpt__wr_flush(w);
    if (!rc && fdatasync(w->fd) < 0)
        rc = -errno;
    if (close(w->fd) < 0 && !rc)
        rc = -errno;
    w->fd = -1;
    if (!rc && bytes)
        *bytes = size;
    return rc;
}

/* Frees the buffer and closes the file if still open. */
void at_ckpt__wr_deinit(at_ckpt__wr_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    free(w->buf);
    w->buf = NULL;
    w->cap = w->len = 0;
}

/* ---- cursor ---------------------------------------------------------------- */

/* pread()s exactly n bytes at pos. Returns 0, AT_ECORRUPT (short) or
 * -errno. */
static int at_ckpt__pread(int fd, void *p, size_t n, int64_t pos)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (uint8_t *)p + got, n - got, pos + (int64_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return AT_ECORRUPT;
        got += (size_t)r;
    }
    return 0;
}

/* Reads and checks the header at the start of the file (size bytes). */
static int at_ckpt__cur_hdr(at_ckpt__cur_t *cur, int64_t size)
{
    uint8_t f[AT_CKPT__HDR_FIXED];
    if (size < AT_CKPT__HDR_FIXED + 8 + AT_CKPT__TRAILER)
        return AT_ECORRUPT;
    int rc = at_ckpt__pread(cur->fd, f, sizeof f, 0);
    if (rc)
        return rc;
    if (memcmp(f, at_ckpt__magic, 8) != 0)
        return AT_ECORRUPT;
    at_ckpt__hdr_t *h = &cur->hdr;
    h->format = at_log__get32(f + 8);
    h->flags = at_log__get32(f + 12);
    h->partition = at_log__get32(f + 16);
    h->meta_len = at_log__get32(f + 20);
    h->id = at_log__get64(f + 24);
    h->base_id = at_log__get64(f + 32);
    h->created_ms = (int64_t)at_log__get64(f + 40);
    if (h->meta_len > AT_CKPT_MAX_META ||
        (int64_t)h->meta_len > size - (AT_CKPT__HDR_FIXED + 8 + AT_CKPT__TRAILER))
        return AT_ECORRUPT;
    size_t n = AT_CKPT__HDR_FIXED + h->meta_len;
    uint8_t *all = at_xmalloc(n + 8);
    memcpy(all, f, sizeof f);
    rc = at_ckpt__pread(cur->fd, all + sizeof f, n + 8 - sizeof f, sizeof f);
    if (!rc && XXH3_64bits(all, n) != at_log__get64(all + n))
        rc = AT_ECORRUPT;
    /* The version is judged only once the header is known to be whole: a
     * garbled version field is corruption, a real newer one is not. */
    if (!rc && h->format != AT_CKPT_FORMAT_VERSION)
        rc = h->format > AT_CKPT_FORMAT_VERSION ? AT_EVERSION : AT_ECORRUPT;
    if (!rc) {
        cur->seed = at_log__get64(all + n);
        cur->pos = (int64_t)(n + 8);
        if (h->meta_len) {
            uint8_t *meta = at_xmalloc(h->meta_len);
            memcpy(meta, all + AT_CKPT__HDR_FIXED, h->meta_len);
            h->meta = meta;
        }
    }
    free(all);
    return rc;
}

/* Reads the trailer's fields (its checksum is checked at the end). */
static int at_ckpt__cur_trailer(at_ckpt__cur_t *cur, int64_t size)
{
    uint8_t t[AT_CKPT__TRAILER];
    int rc = at_ckpt__pread(cur->fd, t, sizeof t, size - AT_CKPT__TRAILER);
    if (rc)
        return rc;
    if (memcmp(t + 8, at_ckpt__end_magic, 8) != 0 || at_log__get64(t + 40) != (uint64_t)size)
        return AT_ECORRUPT;
    cur->t_sum = at_log__get64(t);
    cur->t_blocks = at_log__get64(t + 16);
    cur->t_puts = at_log__get64(t + 24);
    cur->t_dels = at_log__get64(t + 32);
    cur->end = size - AT_CKPT__TRAILER;
    return 0;
}

/* Opens the file name of dirfd as checkpoint id (a base or a delta as
 * named) of partition and checks its header and the trailer's framing.
 * Returns 0, AT_ECORRUPT, AT_EVERSION or -errno; on error the cursor holds
 * nothing. Thread: the caller's. */
int at_ckpt__cur_open(at_ckpt__cur_t *cur, int dirfd, const char *name, int partition, uint64_t id,
                      bool base)
{
    memset(cur, 0, sizeof *cur);
    cur->fd = -1;
    at_log__rd_init(&cur->rd);
    struct stat st;
    int rc = 0;
    cur->fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (cur->fd < 0 || fstat(cur->fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    (void)posix_fadvise(cur->fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* read once, front to back */
    rc = at_ckpt__cur_hdr(cur, (int64_t)st.st_size);
    if (!rc)
        rc = at_ckpt__cur_trailer(cur, (int64_t)st.st_size);
    if (rc)
        goto out;
    const at_ckpt__hdr_t *h = &cur->hdr;
    bool is_base = h->flags & AT_CKPT__F_BASE;
    if ((h->flags & ~AT_CKPT__F_BASE) || h->partition != (uint32_t)partition || h->id != id ||
        is_base != base || (base ? h->base_id != id : h->base_id >= id) || cur->pos > cur->end)
        rc = AT_ECORRUPT;
    if (!rc)
        cur->prev_key = at_xmalloc(AT_CKPT_MAX_KEY);
out:
    if (rc)
        at_ckpt__cur_deinit(cur);
    return rc;
}

/* Reads the next block into the buffer. Returns 1, 0 at the trailer
 * (verified) or <0. */
static int at_ckpt__cur_block(at_ckpt__cur_t *cur)
{
    if (cur->pos == cur->end) {
        uint8_t t[AT_CKPT__TRAILER - 8];
        memcpy(t, at_ckpt__end_magic, sizeof at_ckpt__end_magic);
        at_log__put64(t + 8, cur->t_blocks);
        at_log__put64(t + 16, cur->t_puts);
        at_log__put64(t + 24, cur->t_dels);
        at_log__put64(t + 32, (uint64_t)cur->end + AT_CKPT__TRAILER);
        if (XXH3_64bits_withSeed(t, sizeof t, cur->seed) != cur->t_sum ||
            cur->blocks != cur->t_blocks || cur->puts != cur->t_puts || cur->dels != cur->t_dels)
            return AT_ECORRUPT;
        return 0;
    }
    const uint8_t *p;
    int rc = at_log__rd_get(&cur->rd, cur->fd, cur->pos, AT_CKPT__BLK_HDR, cur->end, &p);
    if (rc <= 0)
        return rc ? rc : AT_ECORRUPT;
    uint64_t sum = at_log__get64(p);
    uint32_t body = at_log__get32(p + 8), count = at_log__get32(p + 12);
    if (body > AT_CKPT__MAX_BLOCK || count == 0 || (uint64_t)count * AT_CKPT__ENT_HDR > body)
        return AT_ECORRUPT;
    rc = at_log__rd_get(&cur->rd, cur->fd, cur->pos, AT_CKPT__BLK_HDR + body, cur->end, &p);
    if (rc <= 0)
        return rc ? rc : AT_ECORRUPT;
    if (XXH3_64bits_withSeed(p + 8, (size_t)body + 8, cur->seed) != sum)
        return AT_ECORRUPT;
    cur->seed = sum;
    cur->blocks++;
    cur->body = p + AT_CKPT__BLK_HDR;
    cur->body_len = body;
    cur->body_off = 0;
    cur->body_left = count;
    cur->pos += AT_CKPT__BLK_HDR + (int64_t)body;
    return 1;
}

/* Moves to the next entry. Returns 1 (entry fields set, valid until the
 * next call), 0 at the end of a whole and verified file, AT_ECORRUPT or
 * -errno. Thread: the cursor's owner. */
int at_ckpt__cur_next(at_ckpt__cur_t *cur)
{
    while (cur->body_left == 0) {
        if (cur->body && cur->body_off != cur->body_len)
            return AT_ECORRUPT; /* bytes after the block's last entry */
        if (cur->pkey && cur->pkey != cur->prev_key) {
            /* The block buffer is about to be reused: keep the last key. */
            memcpy(cur->prev_key, cur->pkey, cur->pklen);
            cur->pkey = cur->prev_key;
        }
        int rc = at_ckpt__cur_block(cur);
        if (rc <= 0) {
            cur->body = NULL;
            cur->key = cur->val = NULL;
            return rc;
        }
    }
    const uint8_t *p = cur->body + cur->body_off;
    size_t left = cur->body_len - cur->body_off;
    if (left < AT_CKPT__ENT_HDR)
        return AT_ECORRUPT;
    int kind = p[0];
    size_t klen = at_log__get16(p + 1), vlen = at_log__get32(p + 3);
    if (klen == 0 || klen > AT_CKPT_MAX_KEY || vlen > AT_CKPT_MAX_VALUE ||
        AT_CKPT__ENT_HDR + klen + vlen > left)
        return AT_ECORRUPT;
    bool base = cur->hdr.flags & AT_CKPT__F_BASE;
    if (kind != AT_CKPT__PUT && (kind != AT_CKPT__DEL || vlen != 0 || base))
        return AT_ECORRUPT;
    const uint8_t *key = p + AT_CKPT__ENT_HDR;
    if (cur->pkey && at_ckpt__keycmp(cur->pkey, cur->pklen, key, klen) >= 0)
        return AT_ECORRUPT;
    cur->kind = kind;
    cur->key = key;
    cur->klen = klen;
    cur->val = key + klen;
    cur->vlen = vlen;
    cur->pkey = key;
    cur->pklen = klen;
    cur->body_off += AT_CKPT__ENT_HDR + klen + vlen;
    cur->body_left--;
    if (kind == AT_CKPT__PUT)
        cur->puts++;
    else
        cur->dels++;
    return 1;
}

/* Closes the file and frees what the cursor holds (safe to repeat). */
void at_ckpt__cur_deinit(at_ckpt__cur_t *cur)
{
    if (cur->fd >= 0)
        close(cur->fd);
    cur->fd = -1;
    at_log__rd_deinit(&cur->rd);
    free((void *)cur->hdr.meta);
    cur->hdr.meta = NULL;
    free(cur->prev_key);
    cur->prev_key = NULL;
}
