/* ckpt_int.h - what the checkpoint files of src/log (ckpt*.c) share and
 * nothing outside may use: the on-disk format, the writer and the reader of
 * sorted runs, the k-way merge and the store's file table
 * (docs/decisions/0004-checkpoints.md).
 *
 * ON DISK, FORMAT 1 (all integers little-endian). The directory of one
 * partition's store holds:
 *   NNNN.base     a full checkpoint: every live key of the partition
 *   NNNN.delta    checkpoint NNNN as the changes since checkpoint NNNN - 1
 *   *.tmp         a file being written; a crash left it: deleted at open
 *   *.corrupt     a file set aside by a load that fell back; never read
 * NNNN is the checkpoint id, 20 decimal digits; ids count up by one per
 * write, from 1. The state of checkpoint n is n.base alone, or the chain
 * b.base, (b+1).delta, ..., n.delta, where b is the base id in the header of
 * n.delta and of every delta of the chain. Where both exist (a compaction
 * was cut short before deleting the chain it replaced) they hold the same
 * state and n.base is used.
 *
 * A file is a header, blocks of entries, and a trailer:
 *   header   "ATCKPTRN", u32 format (1), u32 flags (bit 0: base),
 *            u32 partition, u32 meta_len, u64 id, u64 base_id (== id for a
 *            base), i64 created_ms (wall clock, informational), meta bytes,
 *            u64 h0 = XXH3-64 (seed 0) of every header byte before it
 *   block    u64 h = XXH3-64 of the bytes after it to the end of the block,
 *            seeded with the previous block's h (h0 for the first);
 *            u32 body_len, u32 count, then count entries (body_len bytes).
 *            A block holds about 64 KiB; a bigger entry gets one of its own
 *   entry    u8 kind (1 put, 2 delete), u16 key_len (1..4096), u32 value_len
 *            (0 for a delete), key, value. Keys are strictly increasing over
 *            the whole file (memcmp order, a prefix before longer keys); a
 *            base holds no deletes
 *   trailer  the last 48 bytes: u64 t = XXH3-64 of the 40 bytes after it,
 *            seeded with the last block's h (h0 when there is no block);
 *            "ATCKEND\n", u64 blocks, u64 puts, u64 dels, u64 file_bytes
 *            (the file's size, trailer included)
 * Every checksum is seeded with the one before it, so the trailer's depends
 * on every byte of the file: a torn, truncated, garbled or spliced file (or
 * one copied from another partition or id: header fields) fails a check.
 * Entry counts live in the trailer because a compaction streams its output.
 * A later release reads format 1 as written here.
 */
#ifndef AT_CKPT_INT_H
#define AT_CKPT_INT_H

#include "at_ckpt.h"
#include "log_int.h"

#include <stdatomic.h>

#define AT_CKPT__HDR_FIXED 48 /* header bytes before meta */
#define AT_CKPT__TRAILER 48
#define AT_CKPT__BLK_HDR 16
#define AT_CKPT__ENT_HDR 7
#define AT_CKPT__BLOCK_TARGET ((size_t)64 << 10)
#define AT_CKPT__MAX_BLOCK (AT_CKPT__ENT_HDR + AT_CKPT_MAX_KEY + AT_CKPT_MAX_VALUE)
#define AT_CKPT__F_BASE 1u
#define AT_CKPT__PUT 1
#define AT_CKPT__DEL 2
#define AT_CKPT__NAME_LEN 26 /* 20 digits + ".delta" */
#define AT_CKPT__NAME_MAX 40 /* with ".tmp" or ".corrupt" and the NUL */

/* Formats a message into err (may be NULL) and returns rc. */
int at_ckpt__errf(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Compares two keys: memcmp order, a prefix before the longer key. */
static inline int at_ckpt__keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, AT_MIN(al, bl));
    if (c)
        return c;
    return (al > bl) - (al < bl);
}

/* "NNNN.base" / "NNNN.delta" plus an optional suffix (".tmp") into
 * out[AT_CKPT__NAME_MAX]. */
void at_ckpt__name(char *out, uint64_t id, bool base, const char *suffix);

/* ---- batches (ckpt_batch.c) --------------------------------------------- */

/* One entry of a batch: p points at its encoding (entry layout above). */
typedef struct at_ckpt__ref {
    uint64_t pfx; /* first 8 key bytes, big-endian, zero padded: sorts like the key */
    const uint8_t *p;
    size_t seq; /* order of arrival: among equal keys the last wins */
} at_ckpt__ref_t;

struct at_ckpt_batch {
    uint8_t **chunks; /* each AT_CKPT__CHUNK bytes, or one entry when bigger */
    size_t *sizes;    /* of each chunk */
    size_t nchunks, chunks_cap;
    size_t used; /* bytes used in the last chunk */
    at_ckpt__ref_t *refs;
    size_t n, refs_cap;
    size_t next_seq; /* arrival number of the next entry */
    uint8_t *meta;
    size_t meta_len;
    bool full;
    size_t bytes; /* memory held */
};

/* Sorts b's entries by key and drops all but the last of equal keys.
 * Returns the number left, in b->refs[0..n). */
size_t at_ckpt__batch_sort(at_ckpt_batch_t *b);

/* ---- the file format (ckpt_file.c) --------------------------------------- */

typedef struct at_ckpt__hdr {
    uint32_t format;
    uint32_t flags;
    uint32_t partition;
    uint64_t id;
    uint64_t base_id;
    int64_t created_ms;
    const uint8_t *meta; /* borrowed (writer) or owned by the cursor (reader) */
    uint32_t meta_len;
} at_ckpt__hdr_t;

/* The writer of one file, used by writes and compactions. */
typedef struct at_ckpt__wr {
    int fd;
    uint8_t *buf; /* pending bytes: whole blocks, and the open one */
    size_t len, cap;
    size_t blk;         /* offset in buf of the open block, SIZE_MAX if none */
    uint32_t blk_count; /* entries in the open block */
    int64_t pos;        /* file position of buf[0] */
    int64_t synced;     /* writeback started up to here */
    uint64_t seed;      /* checksum of the last block closed */
    uint64_t blocks, puts, dels;
    bool base;
    uint8_t last_key[AT_CKPT_MAX_KEY]; /* for asserting the order */
    size_t last_klen;
    bool any;
} at_ckpt__wr_t;

/* Creates NAME.tmp in dirfd (replacing a leftover) and writes h into the
 * writer's buffer. Returns 0 or -errno. */
int at_ckpt__wr_open(at_ckpt__wr_t *w, int dirfd, const char *tmp_name, const at_ckpt__hdr_t *h);
/* Adds an entry; keys must come in strictly increasing order (asserted).
 * Returns 0 or -errno (a write failed). */
int at_ckpt__wr_add(at_ckpt__wr_t *w, int kind, const uint8_t *key, size_t klen, const uint8_t *val,
                    size_t vlen);
/* Writes the last block and the trailer and fdatasyncs; closes the file.
 * *bytes gets the file's size. Returns 0 or -errno. */
int at_ckpt__wr_finish(at_ckpt__wr_t *w, int64_t *bytes);
/* Frees the writer (closing the file if still open); the caller removes
 * the .tmp. */
void at_ckpt__wr_deinit(at_ckpt__wr_t *w);

/* A reader of one file: its entries one at a time, every check made. */
typedef struct at_ckpt__cur {
    int fd;
    at_log__rd_t rd;
    at_ckpt__hdr_t hdr;                       /* hdr.meta owned */
    int64_t pos, end;                         /* next block; start of the trailer */
    uint64_t seed;                            /* checksum chain so far */
    uint64_t blocks, puts, dels;              /* counted */
    uint64_t t_blocks, t_puts, t_dels, t_sum; /* from the trailer */
    const uint8_t *body;                      /* the current block's entries */
    size_t body_len, body_off;
    uint32_t body_left;  /* entries not yet returned */
    const uint8_t *pkey; /* previous key (in body, or prev_key) */
    size_t pklen;
    uint8_t *prev_key; /* [AT_CKPT_MAX_KEY]: last key of the previous block */
    int rank;          /* position in the chain, 0 = base (merge) */
    /* the current entry, valid until the next at_ckpt__cur_next */
    int kind;
    const uint8_t *key, *val;
    size_t klen, vlen;
} at_ckpt__cur_t;

/* Opens the file name of dirfd and checks its header (partition, id and
 * kind as named: base true for a .base) and trailer framing. Returns 0,
 * AT_ECORRUPT, AT_EVERSION or -errno; the cursor is deinit'd on error. */
int at_ckpt__cur_open(at_ckpt__cur_t *cur, int dirfd, const char *name, int partition, uint64_t id,
                      bool base);
/* Moves to the next entry: 1 (fields set), 0 at the end (the trailer's
 * checksum and counts verified), AT_ECORRUPT or -errno. */
int at_ckpt__cur_next(at_ckpt__cur_t *cur);
void at_ckpt__cur_deinit(at_ckpt__cur_t *cur);

/* ---- k-way merge (ckpt_merge.c) ------------------------------------------ */

/* Merges cursors (cur[i] has rank i; higher ranks are newer) into one
 * stream that gives each key once, with its newest entry (a put or a
 * delete). */
typedef struct at_ckpt__merge {
    at_ckpt__cur_t *cur; /* borrowed, n of them */
    size_t n;
    size_t *heap; /* indices into cur */
    size_t nheap;
    size_t pending; /* the cursor returned last, to advance; SIZE_MAX */
    int failed;     /* index of the cursor whose error ended the merge */
} at_ckpt__merge_t;

/* Reads each cursor's first entry. Returns 0 or the first cursor error
 * (m->failed names it). */
int at_ckpt__merge_init(at_ckpt__merge_t *m, at_ckpt__cur_t *cur, size_t n);
/* Returns 1 with *top set to the cursor holding the next key's newest entry
 * (valid until the next call), 0 at the end, or <0 (m->failed). */
int at_ckpt__merge_next(at_ckpt__merge_t *m, at_ckpt__cur_t **top);
void at_ckpt__merge_deinit(at_ckpt__merge_t *m);

/* ---- the store (ckpt_store.c, ckpt_write.c, ckpt_load.c) ------------------ */

/* One file of the store, as its name and header say. */
typedef struct at_ckpt__file {
    uint64_t id;
    bool base;
    int64_t bytes;
    uint64_t base_id; /* from the header */
    int hdr_rc;       /* 0, or why the header (or trailer framing) is bad */
    int vrc;          /* contents: 1 unchecked, 0 verified, <0 bad */
} at_ckpt__file_t;

struct at_ckpt {
    int dirfd;
    char *dir;
    int partition;
    at_ckpt_opts_t opts;
    at_ckpt__file_t *files; /* sorted by (id, delta before base) */
    size_t nfiles, files_cap;
    uint64_t last_id; /* newest id on disk, 0 if none */
    uint64_t base_id; /* base of the newest chain (chain_ok) */
    bool chain_ok;    /* the newest chain is whole, as far as headers say */
    int failed;       /* a failed directory sync poisons the store */
    struct {
        _Atomic uint64_t bytes, files, last_id, base_id, deltas, base_bytes, delta_bytes;
        _Atomic uint64_t writes, compactions, last_write_ns, last_write_bytes;
        _Atomic uint64_t last_write_keys, last_compact_ns, last_load_ns;
    } st;
};

/* Index of file (id, base) in the table, or -1. */
ssize_t at_ckpt__file_find(const at_ckpt_t *c, uint64_t id, bool base);
/* Adds a file to the table (keeps it sorted). */
void at_ckpt__file_add(at_ckpt_t *c, const at_ckpt__file_t *f);
/* Removes table entry i. */
void at_ckpt__file_remove(at_ckpt_t *c, size_t i);
/* Puts the chain of checkpoint id into idx[] (oldest first; cap entries),
 * choosing id.base, else the delta chain; files with a bad header never
 * count, files whose contents failed only with skip_bad. Returns the
 * count, or 0 when there is no whole chain: bad (may be NULL) then gets the
 * first bad or missing file's name and *bad_rc (may be NULL) why
 * (AT_ENOTFOUND: missing). */
size_t at_ckpt__chain(const at_ckpt_t *c, uint64_t id, bool skip_bad, size_t *idx, size_t cap,
                      char *bad, size_t badlen, int *bad_rc);
/* Opens a cursor on every file of chain idx[0..n), cur[i] with rank i.
 * Returns 0 or the first file's error (named in err; a verdict on the file
 * is kept in its table entry); then no cursor is open (ckpt_write.c). */
int at_ckpt__open_chain(at_ckpt_t *c, const size_t *idx, size_t n, at_ckpt__cur_t *cur, char *err,
                        size_t errlen);
/* Recomputes chain_ok, base_id and the statistics from the table. */
void at_ckpt__refresh(at_ckpt_t *c);
/* Deletes every file with id <= upto that is not in keep[0..n) (table
 * indices; one found damaged is renamed NAME.corrupt), then fsyncs the
 * directory. Failures are logged, not returned:
 * a file left behind is deleted by a later load. */
void at_ckpt__delete_except(at_ckpt_t *c, uint64_t upto, const size_t *keep, size_t n);

#endif
