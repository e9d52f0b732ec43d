/* at_log.h - the durable event log (DESIGN.md §6).
 *
 * P partitions; records shaped like Kafka records (key, value, headers,
 * offset within the partition; positions are written "P:OFFSET"). On disk
 * all partitions share one sequence of preallocated, append-only segment
 * files (docs/decisions/0003-one-journal.md): one fdatasync makes a whole
 * group commit durable whatever partitions it touched. Every record carries
 * a checksum; files carry a format version. A torn or garbled tail is found
 * and cut at open.
 *
 * THREAD SAFETY: one writer thread calls at_log_append/at_log_sync/
 * at_log_retain. Iterators may run on other threads over a log opened
 * read-only, or on the writer thread. at_log_stats may be called from any
 * thread (it reads atomics).
 */
#ifndef AT_LOG_H
#define AT_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AT_LOG_FORMAT_VERSION 1

typedef enum {
    AT_REC_EVENT = 1,
    AT_REC_TICK = 2,
    AT_REC_CONTROL = 3,
    AT_REC_MERGE = 4,
    AT_REC_HANDOFF = 5,
    AT_REC_FORWARDED = 6,
    AT_REC_ERASE = 7,
    AT_REC_REDACTED = 8,
    AT_REC_ITEM = 9, /* a catalog upsert (POST /v1/items), key "i:ITEM" */
} at_rec_type_t;

const char *at_rec_type_name(int type); /* "event", "tick", ... */

/* One record. On append the caller fills everything but offset; the log
 * assigns offset. On read all pointers point into the log's buffers and are
 * valid until the next at_log_iter_next() or at_log_iter_close(). */
typedef struct at_rec {
    int32_t partition;
    int64_t offset;  /* within the partition, assigned by the log, increasing */
    uint8_t type;    /* at_rec_type_t */
    uint8_t version; /* format version of value (1) */
    uint16_t flags;  /* AT_REC_F_* */
    int64_t recv_ms; /* receive time, ms since epoch */
    int64_t ts_ms;   /* event time (after clamping), ms since epoch */
    const char *key; /* the namespaced user key "u:..." / "a:..." */
    uint32_t key_len;
    const char *id; /* event_id, the dedup key */
    uint32_t id_len;
    const char *value; /* canonical event JSON */
    uint32_t value_len;
    uint64_t seq; /* on read: its global sequence number in the whole log; unused on append */
} at_rec_t;

#define AT_REC_F_CLIENT_ID 1 /* id came from the client: dedupable */
#define AT_REC_F_CLAMPED 2   /* timestamp was clamped to receive time */

#define AT_LOG_MAX_PARTITIONS 4096
#define AT_LOG_DEFAULT_SEGMENT_BYTES ((int64_t)64 << 20)
#define AT_LOG_REC_HEADER_BYTES 56 /* bytes of a record before key, id, value */

/* Bytes rec takes on disk: AT_LOG_REC_HEADER_BYTES + key, id, value. Thread:
 * any. */
size_t at_log_rec_size(const at_rec_t *rec);
/* Encodes rec (offset included) exactly as a segment stores it, checksum and
 * all, into out (at_log_rec_size(rec) bytes, borrowed). For tools and tests.
 * Thread: any. */
void at_log_rec_encode(void *out, const at_rec_t *rec);
/* Bytes of a segment file's header for a log of P partitions: the first
 * record starts there. Thread: any. */
size_t at_log_seg_header_bytes(int partitions);

typedef struct at_log at_log_t;

typedef struct at_log_opts {
    int partitions;        /* for a new log; 0 = take the existing log's */
    int64_t segment_bytes; /* preallocated size of each new segment file (0: default) */
    bool read_only;        /* no recovery writes, no appends */
    int64_t zero_ahead;    /* zeros written this far ahead of the appends by a thread of the
                              log's own, so syncs write no metadata (0: none; zero.c) */
    int64_t writeback;     /* start the writeback of the active segment's appends each time
                              this many bytes are written since the last start, so a log
                              synced rarely (the outputs) meets its sync with little dirty
                              data instead of a burst in front of other syncs (0: never) */
} at_log_opts_t;

/* Opens (creating if needed) the log in dir. A new log takes
 * opts->partitions; an existing one keeps its own, and a different non-zero
 * opts->partitions is an error (AT_EINVALID, message in err). Recovery cuts a
 * torn tail and zeroes what follows it, then fsyncs. Returns 0 or <0 with a
 * message in err. *out is owned: at_log_close(). */
int at_log_open(at_log_t **out, const char *dir, const at_log_opts_t *opts, char *err,
                size_t errlen);
void at_log_close(at_log_t *log);
int at_log_partitions(const at_log_t *log);

/* Appends n records (written to the page cache, not yet durable), assigning
 * recs[i].offset. All or nothing: on error (-ENOSPC, -EIO) none of the n
 * records is in the log and the log stays usable. Writer thread only. */
int at_log_append(at_log_t *log, at_rec_t *recs, size_t n);
/* Makes every appended record durable (fdatasync of the segments written
 * since the last sync, and the directory when a segment was created). */
int at_log_sync(at_log_t *log);
/* at_log_sync in two steps, so that the waiting can happen on another
 * thread while the writer goes on appending: begin (writer thread) takes
 * duplicates of the descriptors that need syncing into *job and clears the
 * log's dirty state; run (any thread, once) syncs and closes them. What was
 * appended before begin is durable when run returns 0. A failed run leaves
 * the log as it was: the caller poisons it with at_log_fail (writer
 * thread), since the page cache's state is then unknown. */
typedef struct at_log_syncjob {
    int fd, dirfd; /* -1: nothing to sync */
} at_log_syncjob_t;
int at_log_sync_begin(at_log_t *log, at_log_syncjob_t *job);
int at_log_sync_run(at_log_syncjob_t *job);
/* Fails the log with rc (< 0): every later append and sync returns it. */
void at_log_fail(at_log_t *log, int rc);
/* The offset the next record of partition p will get. */
int64_t at_log_next_offset(const at_log_t *log, int p);

/* Deletes whole segments that are older than max_age_ms (by their newest
 * receive time) or beyond max_bytes in total, oldest first, but never one
 * holding a record of partition p at or after keep_from[p] (keep_from may be
 * NULL: keep nothing back). 0 limits mean unlimited. Returns the number of
 * segments deleted or <0. */
int at_log_retain(at_log_t *log, int64_t max_bytes, int64_t max_age_ms, int64_t now_ms,
                  const int64_t *keep_from);

typedef struct at_log_stats {
    uint64_t bytes; /* logical bytes in all segments */
    uint64_t segments;
    uint64_t records;         /* appended since open */
    uint64_t truncated_bytes; /* cut from a torn tail at open */
    uint64_t zeroed_bytes;    /* zeros written ahead of the appends since open */
    uint64_t writeback_bytes; /* appended bytes whose writeback was started early since open */
} at_log_stats_t;
void at_log_stats(const at_log_t *log, at_log_stats_t *st);

/* Iterates records in log order (all partitions interleaved as written).
 * from[p] (may be NULL = everything) skips records of partition p with
 * offset < from[p]. */
typedef struct at_log_iter at_log_iter_t;
int at_log_iter_open(at_log_t *log, const int64_t *from, at_log_iter_t **out);
/* Returns 1 and fills rec, 0 at the end, or <0 (AT_ECORRUPT). */
int at_log_iter_next(at_log_iter_t *it, at_rec_t *rec);
void at_log_iter_close(at_log_iter_t *it);

/* Bounds what the iterator returns to records with a global sequence
 * number (their place in the whole log, all partitions counted) below
 * max_seq; at the bound at_log_iter_next() returns 0 without I/O. */
void at_log_iter_set_limit(at_log_iter_t *it, uint64_t max_seq);
/* The global sequence number of the next record the iterator will read. */
uint64_t at_log_iter_seq(const at_log_iter_t *it);
/* The global sequence number the next appended record will get: every
 * record below it has been appended. Writer thread. */
uint64_t at_log_seq(const at_log_t *log);

/* Parses "P:OFFSET". Returns 0 or AT_EPARSE. */
int at_log_parse_position(const char *s, int *partition, int64_t *offset);

#endif
