/* at_ckpt.h - checkpoint storage: the durable, incremental snapshots of a
 * partition's keyed state (DESIGN.md §6, docs/decisions/0004-checkpoints.md).
 *
 * A checkpoint is the state of one log partition at a log position: an
 * opaque meta blob (input and output offsets, watermark, rule versions...:
 * the caller's, never interpreted here) and one opaque value per live key.
 * Checkpoint n is written as the changes since checkpoint n - 1 (a delta of
 * puts and deletions) on top of a full base; every file is a run sorted by
 * key, so loading and compaction are a k-way merge in bounded memory, and
 * compaction folds base + deltas into a new base when the deltas grow too
 * big. Files are written as NAME.tmp, fdatasync'd, renamed, and the
 * directory fsync'd: after a crash the newest complete checkpoint is either
 * the previous one or the new one, never a mix. The file format is written
 * down in ckpt_int.h.
 *
 * USE: at recovery, open the store and load it (AT_ENOTFOUND: a fresh
 * partition), then replay the log from the input offset in meta. Every few
 * seconds the processing thread fills a batch with the users changed (put)
 * or dropped (del) since the last checkpoint that was written successfully,
 * sets meta, and hands the batch to the checkpoint thread, which writes it
 * and then, when at_ckpt_compact_due(), compacts. The log must keep every
 * record from the newest checkpoint's input offset on (DESIGN.md §6).
 *
 * THREAD SAFETY: a batch (at_ckpt_batch_t) belongs to one thread at a time:
 * the processing thread fills it, hands it over (through a queue) to the
 * checkpoint thread, which writes it and may hand it back for reuse. A store
 * (at_ckpt_t) is used by one thread at a time, normally the partition's
 * background checkpoint thread: open, load, write, compact and close never
 * run concurrently on one store (writes and compactions are serialized by
 * construction). at_ckpt_stats may be called from any thread (atomics).
 * Stores of different partitions share nothing.
 *
 * OWNERSHIP: the store copies nothing it is given beyond the call, except
 * the batch, which copies every key, value and meta on put (so the caller's
 * state may change right after). Pointers handed to the load callback are
 * valid only during the call.
 */
#ifndef AT_CKPT_H
#define AT_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AT_CKPT_FORMAT_VERSION 1
#define AT_CKPT_MAX_KEY 4096                 /* bytes; keys are 1..this */
#define AT_CKPT_MAX_VALUE ((size_t)16 << 20) /* bytes of one value */
#define AT_CKPT_MAX_META ((size_t)1 << 20)   /* bytes of meta */

/* ---- batches: one checkpoint being built (processing thread, no I/O) ---- */

typedef struct at_ckpt_batch at_ckpt_batch_t;

/* Returns an empty batch, owned: at_ckpt_batch_free(). Thread: any. */
at_ckpt_batch_t *at_ckpt_batch_new(void);
void at_ckpt_batch_free(at_ckpt_batch_t *b); /* NULL is fine */
/* Empties b for reuse (keeps one chunk of memory). Thread: b's owner. */
void at_ckpt_batch_reset(at_ckpt_batch_t *b);

/* Records that key now has value val (copies both). A key should appear at
 * most once per batch; if it appears again (put or del), the last one wins.
 * Returns 0, AT_EINVALID (klen 0) or AT_ETOOBIG (klen > AT_CKPT_MAX_KEY,
 * vlen > AT_CKPT_MAX_VALUE). Memory is taken from chunks of 1 MiB: about
 * 7 + klen + vlen bytes plus 24 bytes of index per entry. Thread: b's owner. */
int at_ckpt_batch_put(at_ckpt_batch_t *b, const void *key, size_t klen, const void *val,
                      size_t vlen);
/* Records that key's state was dropped (copies key). Same rules and
 * returns as at_ckpt_batch_put. */
int at_ckpt_batch_del(at_ckpt_batch_t *b, const void *key, size_t klen);
/* Sets the checkpoint's meta (copied; replaces an earlier one; default
 * empty). Returns 0 or AT_ETOOBIG (len > AT_CKPT_MAX_META). */
int at_ckpt_batch_set_meta(at_ckpt_batch_t *b, const void *meta, size_t len);
/* Marks b as the whole state (every live key), not a delta: it is written
 * as a new base, deletions are dropped, and every older file goes. The
 * first checkpoint of a store is always a base. Default false. */
void at_ckpt_batch_set_full(at_ckpt_batch_t *b, bool full);
size_t at_ckpt_batch_count(const at_ckpt_batch_t *b); /* puts + dels recorded */
size_t at_ckpt_batch_bytes(const at_ckpt_batch_t *b); /* memory held, about */

/* ---- stores ------------------------------------------------------------ */

typedef struct at_ckpt at_ckpt_t;

/* Asked by at_ckpt_load, before any key is delivered, whether the older
 * checkpoint id (with its meta) may stand in for a newest one that is
 * corrupt. Return true only if the log still holds every record of the
 * partition from the input offset in meta on: replaying from there then
 * rebuilds the lost checkpoints exactly. */
typedef bool (*at_ckpt_fallback_fn)(void *ud, uint64_t id, const void *meta, size_t meta_len);

typedef struct at_ckpt_opts {
    /* at_ckpt_compact is due when the deltas since the base hold more bytes
     * than compact_ratio * the base's bytes (0: 0.5) ... */
    double compact_ratio;
    /* ... or when there are more than compact_max_deltas of them (0: 64).
     * Load and compaction keep one 256 KiB buffer per file of the chain. */
    int compact_max_deltas;
    /* NULL (the default): a corrupt file in the newest checkpoint's chain
     * makes at_ckpt_load fail with AT_ECORRUPT. Else the newest older
     * checkpoint that is intact is offered to fallback(); see above. */
    at_ckpt_fallback_fn fallback;
    void *fallback_ud;
    bool read_only; /* no writes, no clean-up, no lock: for tools */
} at_ckpt_opts_t;

/* Formats the directory of partition p's store, "DATA_DIR/ckpt/pNNNN",
 * into out. Returns 0 or -ENAMETOOLONG. Thread: any. */
int at_ckpt_dir(char *out, size_t outlen, const char *data_dir, int partition);

/* Opens the store of partition (>= 0) in dir, creating dir (durably) as
 * needed unless read-only, and takes an exclusive lock on it (a second
 * writable open fails with -EWOULDBLOCK). Deletes leftover .tmp files
 * (writes cut short). Reads only the files' headers: contents are checked
 * by at_ckpt_load. opts may be NULL (defaults). Returns 0 with *out owned
 * (at_ckpt_close()), or <0 with a message in err (may be NULL). */
int at_ckpt_open(at_ckpt_t **out, const char *dir, int partition, const at_ckpt_opts_t *opts,
                 char *err, size_t errlen);
void at_ckpt_close(at_ckpt_t *c); /* NULL is fine */

/* Writes b as the next checkpoint: durable (file and directory synced)
 * when it returns 0, with its id (the previous id + 1, 1 for the first) in
 * *id (may be NULL). Sorts b's index in place (dropping entries that a
 * later one of the same key replaced); b stays the caller's (reset or free
 * it). Blocking I/O: the checkpoint thread.
 * On error nothing was published and the store is unchanged: the next
 * batch must then still hold b's changes (a delta is always relative to
 * the last checkpoint written successfully). If syncing the directory
 * fails after the rename, the new checkpoint may or may not survive a
 * crash: the store refuses every later write with that error until it is
 * reopened. Returns 0, -errno (-ENOSPC...), AT_ECORRUPT (a delta on a
 * chain found corrupt: write a full batch instead), -EROFS (read-only
 * store). */
int at_ckpt_write(at_ckpt_t *c, at_ckpt_batch_t *b, uint64_t *id);

/* Called once per live key of the checkpoint being loaded, in key order
 * (memcmp, shorter first), with its newest value; pointers valid during
 * the call only. A non-zero return stops the load, which returns it. */
typedef int (*at_ckpt_load_fn)(void *ud, const void *key, size_t klen, const void *val,
                               size_t vlen);

/* Loads the newest complete checkpoint: first checks every byte of every
 * file of its chain (checksums, order, counts), then calls cb for every
 * live key (deletions applied) and returns its meta in *meta (owned,
 * free(); NULL when empty) and *meta_len, and its id in *id. Nothing is
 * delivered from a checkpoint that fails a check.
 * Returns 0; AT_ENOTFOUND when the store holds no checkpoint (fresh);
 * AT_ECORRUPT (message names the file) when a file of the newest chain is
 * damaged or missing and no fallback was accepted; AT_EVERSION for a file
 * of a newer format; -errno; or cb's non-zero return (nothing on disk is
 * changed then). A writable store then deletes what the loaded chain made
 * obsolete (leftovers of a compaction cut short) and, after a fallback,
 * renames the unusable newer files to NAME.corrupt (kept for inspection),
 * so the next write continues from the loaded checkpoint. Thread: the
 * store's. */
int at_ckpt_load(at_ckpt_t *c, void **meta, size_t *meta_len, uint64_t *id, at_ckpt_load_fn cb,
                 void *ud, char *err, size_t errlen);

/* True when the deltas since the base exceed the limits of the options. */
bool at_ckpt_compact_due(const at_ckpt_t *c);
/* When due (or with force, whenever there is a delta), merges the base and
 * its deltas into a new base with the newest checkpoint's id and meta, then
 * deletes the files it replaces; the state loaded is the same before and
 * after, and after a crash at any step. Streams: memory is one buffer per
 * file. Returns 1 when it compacted, 0 when there was nothing to do, or <0
 * (AT_ECORRUPT naming the file in err, -errno; the store is unchanged).
 * Blocking I/O: the checkpoint thread (never concurrent with a write). */
int at_ckpt_compact(at_ckpt_t *c, bool force, char *err, size_t errlen);

typedef struct at_ckpt_stats {
    uint64_t bytes;       /* all checkpoint files on disk */
    uint64_t files;       /* how many */
    uint64_t last_id;     /* newest checkpoint, 0 if none */
    uint64_t base_id;     /* base of its chain */
    uint64_t deltas;      /* deltas in its chain */
    uint64_t base_bytes;  /* size of that base */
    uint64_t delta_bytes; /* size of those deltas */
    uint64_t writes;      /* successful writes since open */
    uint64_t compactions; /* since open */
    uint64_t last_write_ns;
    uint64_t last_write_bytes;
    uint64_t last_write_keys; /* entries of the last write */
    uint64_t last_compact_ns;
    uint64_t last_load_ns;
} at_ckpt_stats_t;
/* Fills st. Thread: any. */
void at_ckpt_stats(const at_ckpt_t *c, at_ckpt_stats_t *st);

#endif
