/* log_int.h - what the files of src/log share and nothing outside may use:
 * the on-disk layout, the in-memory segment table and the helpers that read
 * and write segment files (docs/decisions/0003-one-journal.md).
 *
 * On disk (all integers little-endian):
 *   meta             text: "attune-log\nformat 1\npartitions P\n"
 *   NNNN(20).seg     one segment, named by the global sequence number of its
 *                    first record, preallocated to its full size:
 *     header  "ATLOGSEG", u32 format, u32 P, u64 first_seq, i64 prev_end,
 *             i64 prev_max_recv_ms, i64 next_offset[P], u64 XXH3 of the above
 *     records back to back, then zeros up to the end of the file
 *   record   u32 len, u64 XXH3_withSeed(bytes after it, seed len), u8 version,
 *            u8 type, u16 flags, u32 partition, i64 offset, i64 recv_ms,
 *            i64 ts_ms, u32 key_len, u32 id_len, u32 value_len, key, id, value
 * prev_end and prev_max_recv_ms describe the segment before this one (its
 * logical end and newest receive time), so only the last segment is ever
 * scanned at open.
 */
#ifndef AT_LOG_INT_H
#define AT_LOG_INT_H

#include "at_core.h"
#include "at_log.h"

#include <endian.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>

#define AT_LOG__SEG_MAGIC "ATLOGSEG"
#define AT_LOG__SEG_FIXED 40 /* header bytes before next_offset[] */
#define AT_LOG__META "meta"
#define AT_LOG__NAME_LEN 24 /* 20 digits + ".seg" */
#define AT_LOG__TMP_SUFFIX ".tmp"
#define AT_LOG__MIN_SEGMENT 4096
#define AT_LOG__PAGE 4096 /* the unit of the early writeback (opts.writeback) */
#define AT_LOG__MAX_SEGMENT ((int64_t)1 << 40)
#define AT_LOG__MAX_SEQ ((uint64_t)1 << 62) /* bound on sequence numbers and offsets */

/* ---- little-endian fields ---------------------------------------------- */
static inline void at_log__put16(uint8_t *p, uint16_t v)
{
    v = htole16(v);
    memcpy(p, &v, 2);
}
static inline void at_log__put32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, 4);
}
static inline void at_log__put64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, 8);
}
static inline uint16_t at_log__get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return le16toh(v);
}
static inline uint32_t at_log__get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}
static inline uint64_t at_log__get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

/* ---- records and segment headers (format.c) ----------------------------- */

/* A segment header in memory. next is owned by whoever filled it. */
typedef struct at_log__hdr {
    uint64_t first_seq;
    int64_t prev_end;         /* logical end of the previous segment, 0 if none */
    int64_t prev_max_recv_ms; /* its newest recv_ms, INT64_MIN if none */
    int64_t *next;            /* [P] offset of each partition's first record here */
} at_log__hdr_t;

/* Writes the header for P partitions into out (at_log_seg_header_bytes(P)). */
void at_log__hdr_encode(uint8_t *out, int partitions, const at_log__hdr_t *h);
/* Checks and decodes a header of n bytes; h->next must hold P entries.
 * Returns 0, AT_ECORRUPT (short, bad magic, checksum, P) or AT_EVERSION. */
int at_log__hdr_decode(const uint8_t *p, size_t n, int partitions, at_log__hdr_t *h);

/* Checks the record at p (avail bytes readable) for P partitions and fills
 * rec with pointers into p. Returns the record's length, or 0 when there is
 * no valid record there (end marker, torn, garbled). Does not check the
 * offset sequence: the caller does. */
size_t at_log__rec_decode(const uint8_t *p, size_t avail, int partitions, at_rec_t *rec);
/* The length field of a record header (no checks). */
static inline uint32_t at_log__rec_len(const uint8_t *p)
{
    return at_log__get32(p);
}

/* ---- segment files (segfile.c) ------------------------------------------ */

/* A buffered reader over one file; pointers it returns stay valid until the
 * next call. A mapped reader (at_log__rd_map) reads through a read-only
 * shared mapping of the file instead: no copy, and the page cache's current
 * bytes at every call. */
typedef struct at_log__rd {
    uint8_t *buf;
    size_t cap;
    int64_t buf_pos; /* file position of buf[0] */
    size_t buf_len;
    bool map_mode;    /* read through a mapping */
    uint8_t *map;     /* the mapping of map_fd, or NULL */
    size_t map_len;   /* bytes mapped (the file's size when mapped) */
    int map_fd;       /* the descriptor mapped */
    int64_t map_done; /* below this offset, pages were given back */
} at_log__rd_t;

void at_log__rd_init(at_log__rd_t *rd);
/* An initialized reader that reads through mappings (iterators). */
void at_log__rd_map(at_log__rd_t *rd);
void at_log__rd_deinit(at_log__rd_t *rd);
void at_log__rd_drop(at_log__rd_t *rd); /* forget buffered bytes */
/* The file changes (a descriptor may be reused): unmaps, forgets. */
void at_log__rd_file(at_log__rd_t *rd);
/* Makes [pos, pos + n) available, reading at most up to max_pos. Returns 1
 * and sets *p, 0 when fewer than n bytes exist before max_pos (or the file
 * ends), or -errno. */
int at_log__rd_get(at_log__rd_t *rd, int fd, int64_t pos, size_t n, int64_t max_pos,
                   const uint8_t **p);
/* Reads the record at pos (limit max_pos) for P partitions. Returns its
 * length (> 0) and fills rec, 0 if there is no valid record, or -errno. */
int64_t at_log__rd_rec(at_log__rd_t *rd, int fd, int64_t pos, int64_t max_pos, int partitions,
                       at_rec_t *rec);

/* Formats the segment file name of seq into out[AT_LOG__NAME_LEN + 1]. */
void at_log__seg_name(char *out, uint64_t seq);
/* Lists the segments of dirfd, sorted: *out owned (free()), *n entries.
 * With clean_tmp, deletes leftover "*.seg.tmp" files. Returns 0 or -errno. */
int at_log__seg_list(int dirfd, bool clean_tmp, uint64_t **out, size_t *n);
/* Reads and checks the header of fd. Returns 0, AT_ECORRUPT, AT_EVERSION or
 * -errno; h->next must hold P entries. */
int at_log__seg_read_hdr(int fd, int partitions, at_log__hdr_t *h);
/* Creates "<name>.tmp" holding h's header, preallocated to bytes and
 * fdatasync'd; returns its fd (>= 0) or -errno (-ENOSPC from the
 * preallocation, before anything is written). The caller renames it into
 * place with at_log__seg_publish() or deletes it with at_log__seg_discard(). */
int at_log__seg_create(int dirfd, int partitions, int64_t bytes, const at_log__hdr_t *h);
int at_log__seg_publish(int dirfd, uint64_t seq);
/* Deletes the segment seq (published or not); returns 0 or -errno. */
int at_log__seg_discard(int dirfd, uint64_t seq, bool published);
/* Zeroes [from, to) of fd (FALLOC_FL_ZERO_RANGE, else written zeros). */
int at_log__zero_range(int fd, int64_t from, int64_t to);
/* Finds the end of the last non-zero byte in [from, to) of fd: *end = from
 * when all zero. Returns 0 or -errno. */
int at_log__last_nonzero(int fd, int64_t from, int64_t to, int64_t *end);
/* write()/pwrite() until done; *done gets the bytes written even on error. */
int at_log__pwrite_all(int fd, const void *p, size_t n, int64_t pos, size_t *done);

/* ---- the log (log.c) ---------------------------------------------------- */

/* One segment in the table. */
typedef struct at_log__seg {
    uint64_t seq;        /* global sequence number of the first record; the name */
    int64_t file_bytes;  /* size on disk */
    int64_t end;         /* logical end: header plus records */
    int64_t max_recv_ms; /* newest recv_ms, INT64_MIN if no record */
    int64_t *next;       /* [P] next offsets at the segment's start (owned) */
} at_log__seg_t;

/* A stretch of an append that lands in one segment (append.c). */
typedef struct at_log__part {
    size_t buf_off;    /* where its bytes start in wbuf */
    size_t len;        /* bytes of records */
    int64_t pos;       /* file position of the first record */
    at_log__seg_t seg; /* for a new segment: its table entry to be */
    int fd;            /* new segment's fd, -1 until created */
    bool published;    /* renamed into place */
    size_t written;    /* bytes pwrite() wrote, even when it then failed */
} at_log__part_t;

typedef struct at_log__zero at_log__zero_t;

struct at_log {
    int dirfd;
    char *dir;
    int partitions;
    bool read_only;
    int64_t segment_bytes; /* size of new segments */
    size_t hdr_bytes;      /* at_log_seg_header_bytes(partitions) */

    at_log__seg_t *segs; /* oldest first; the last one is active */
    size_t nsegs, segs_cap;
    int fd;        /* the active segment, -1 when read-only */
    int64_t *next; /* [P] next offset of each partition */
    uint64_t seq;  /* global sequence number of the next record */

    bool dirty;     /* appended since the last sync */
    bool dir_dirty; /* a segment was created since the last sync */
    int failed;     /* a failed fdatasync poisons the log: reopen to recover */

    /* append scratch, reused so the append path allocates nothing */
    uint8_t *wbuf;
    size_t wbuf_cap;
    at_log__part_t *parts;
    size_t parts_cap;
    int64_t *tmp_next; /* [P] */

    struct {
        _Atomic uint64_t bytes, segments, records, truncated_bytes, zeroed_bytes, writeback_bytes;
    } st;

    int64_t writeback; /* opts.writeback: 0 = never */
    int64_t wb_from;   /* the active segment's writeback is started up to here */

    at_log__zero_t *zero; /* zeros ahead of the appends (zero.c), or NULL */
};

/* ---- zeros ahead of the appends (zero.c) ------------------------------- */
/* Starts the thread that writes zeros up to `ahead` bytes past the appends
 * into the active segment (ahead <= 0: none). Returns 0 or -errno. */
int at_log__zero_start(at_log_t *log, int64_t ahead);
/* Stops and joins it (none running is fine). */
void at_log__zero_stop(at_log_t *log);
/* Before the writer writes [from, to) of segment seq: waits out a claim it
 * would overlap and marks the range as the writer's. */
void at_log__zero_before_write(at_log_t *log, uint64_t seq, int64_t from, int64_t to);
/* After the writer moved on to segment seq (file_bytes long), written up to
 * end. */
void at_log__zero_roll(at_log_t *log, uint64_t seq, int64_t end, int64_t file_bytes);

/* Finds the table index of seq (exact), or -1. */
ssize_t at_log__seg_find(const at_log_t *log, uint64_t seq);
/* Appends a table entry (takes ownership of s->next). */
void at_log__seg_push(at_log_t *log, const at_log__seg_t *s);

#endif
