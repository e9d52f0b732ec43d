/* at_core.h - the core every subsystem stands on: errors, assertions,
 * memory, capped buffers, time, hashing, ids and structured logging.
 *
 * THREAD SAFETY: every function here may be called from any thread, except
 * that an at_buf_t / at_arena_t belongs to one thread at a time.
 */
#ifndef AT_CORE_H
#define AT_CORE_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ------------------------------------------------------------
 * A function that can fail returns int: 0, or a negative code. System call
 * failures are -errno; the codes below are attune's own and lie outside the
 * errno range. */
#define AT_OK 0
#define AT_EPARSE (-10001)    /* input not parseable (JSON, YAML, expression) */
#define AT_EINVALID (-10002)  /* parseable but not valid (missing field, wrong type) */
#define AT_ETOOBIG (-10003)   /* a size limit was exceeded */
#define AT_EFULL (-10004)     /* a bounded queue is full: retry later */
#define AT_ECORRUPT (-10005)  /* on-disk data failed a checksum or format check */
#define AT_ECONFLICT (-10006) /* e.g. an incompatible schema version */
#define AT_ENOTFOUND (-10007) /* no such object */
#define AT_EAUTH (-10008)     /* missing or wrong credentials / scope */
#define AT_EVERSION (-10009)  /* unknown on-disk format version */
#define AT_ECLOSED (-10010)   /* the object is shutting down */
#define AT_EUNAVAIL (-10011)  /* temporarily unavailable (recovering, disk full) */

/* Returns a static string describing code (an AT_E* code or -errno). */
const char *at_strerror(int code);

/* An error a person reads: the HTTP error body {"error":{"code","message",
 * "field"}} and CLI messages. code is a short snake_case word
 * ("invalid_event", "body_too_large"); field may be empty. */
typedef struct at_error {
    char code[32];
    char message[256];
    char field[128];
} at_error_t;

/* Fills e (field may be NULL); returns rc so callers can write
 * `return at_error_set(e, AT_EINVALID, "invalid_event", "timestamp", "...")`. */
int at_error_set(at_error_t *e, int rc, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- assertions and memory --------------------------------------------
 * AT_ASSERT stays on in release builds. Allocation failure inside the
 * engine aborts with file and line: sizes that come from clients are
 * checked against limits before they reach an allocator. */
void at_panic(const char *file, int line, const char *what) __attribute__((noreturn));
#define AT_ASSERT(c)                                                                               \
    do {                                                                                           \
        if (__builtin_expect(!(c), 0))                                                             \
            at_panic(__FILE__, __LINE__, #c);                                                      \
    } while (0)

void *at_xmalloc_(size_t n, const char *file, int line);
void *at_xcalloc_(size_t n, size_t m, const char *file, int line);
void *at_xrealloc_(void *p, size_t n, const char *file, int line);
char *at_xstrndup_(const char *s, size_t n, const char *file, int line);
#define at_xmalloc(n) at_xmalloc_((n), __FILE__, __LINE__)
#define at_xcalloc(n, m) at_xcalloc_((n), (m), __FILE__, __LINE__)
#define at_xrealloc(p, n) at_xrealloc_((p), (n), __FILE__, __LINE__)
#define at_xstrndup(s, n) at_xstrndup_((s), (n), __FILE__, __LINE__)
#define at_xstrdup(s) at_xstrndup_((s), strlen(s), __FILE__, __LINE__)

#define AT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define AT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define AT_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- capped buffer -----------------------------------------------------
 * A growable byte buffer that refuses to grow past max (0 = no cap). Data is
 * always NUL-terminated (the NUL is not counted in len). */
typedef struct at_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* 0: unlimited; else appends past max fail with AT_ETOOBIG */
} at_buf_t;

void at_buf_init(at_buf_t *b, size_t max);
void at_buf_deinit(at_buf_t *b);
void at_buf_reset(at_buf_t *b); /* len = 0, keeps memory */
int at_buf_reserve(at_buf_t *b, size_t extra);
int at_buf_append(at_buf_t *b, const void *p, size_t n);
int at_buf_puts(at_buf_t *b, const char *s);
int at_buf_putc(at_buf_t *b, char c);
int at_buf_printf(at_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int at_buf_vprintf(at_buf_t *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, with quotes and escapes. */
int at_buf_json_str(at_buf_t *b, const char *s, size_t n);
/* Appends v in decimal (as printf's %lld / %llu). */
int at_buf_i64(at_buf_t *b, int64_t v);
int at_buf_u64(at_buf_t *b, uint64_t v);
/* Writes v in decimal at out, which has room for 20 bytes (no NUL), as
 * printf's %llu / %lld write it; returns the length. */
size_t at_fmt_u64(char *out, uint64_t v);
size_t at_fmt_i64(char *out, int64_t v);
/* Takes the buffer's memory: returns owned, free with free(); b is reset. */
char *at_buf_steal(at_buf_t *b, size_t *len);

/* ---- arena -------------------------------------------------------------
 * Request- and batch-scoped memory freed at once. */
typedef struct at_arena_chunk at_arena_chunk_t;
typedef struct at_arena {
    at_arena_chunk_t *head;
    size_t chunk_size;
} at_arena_t;

void at_arena_init(at_arena_t *a, size_t chunk_size);
void at_arena_deinit(at_arena_t *a);
void at_arena_reset(at_arena_t *a);            /* frees all but the first chunk */
void *at_arena_alloc(at_arena_t *a, size_t n); /* 16-byte aligned, aborts on OOM */
char *at_arena_strndup(at_arena_t *a, const char *s, size_t n);

/* ---- time --------------------------------------------------------------
 * Milliseconds since the Unix epoch (UTC) are the unit of event time. */
int64_t at_time_now_ms(void);  /* CLOCK_REALTIME */
int64_t at_time_mono_ns(void); /* CLOCK_MONOTONIC */
/* Parses an RFC 3339 date-time ("2026-04-27T14:35:00.123+02:00", 'Z' or
 * offset required; fractions finer than ms are truncated) into *ms.
 * Returns 0 or AT_EPARSE. */
int at_time_parse_rfc3339(const char *s, size_t n, int64_t *ms);
/* Formats ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (at least 32 bytes);
 * returns the length. */
int at_time_format_rfc3339(int64_t ms, char *out);

/* ---- hashing -------------------------------------------------------------
 * at_murmur2 is Kafka's Java client's murmur2 (seed 0x9747b28c), so
 * at_partition_of() equals Kafka's default partitioner for the same key. */
uint32_t at_murmur2(const void *data, size_t n);
int at_partition_of(const void *key, size_t n, int partitions);
uint64_t at_hash64(const void *data, size_t n); /* XXH3 64 */
/* XXH3 128 with a seed: out[0] the low half, out[1] the high. */
void at_hash128(const void *data, size_t n, uint64_t seed, uint64_t out[2]);

/* ---- ids ---------------------------------------------------------------
 * Writes a time-ordered id (UUIDv7 text form, 36 chars + NUL) into out.
 * Ids from one process are strictly increasing. Thread-safe. */
#define AT_ID_LEN 36
void at_id_new(char out[AT_ID_LEN + 1], int64_t now_ms);

/* ---- structured logging to stderr ----------------------------------------
 * One line per message in logfmt: ts=... level=info msg="..." k=v ...
 * fmt gives the key=value pairs after msg (may be NULL). Thread-safe. */
typedef enum { AT_LOG_DEBUG, AT_LOG_INFO, AT_LOG_WARN, AT_LOG_ERROR } at_loglevel_t;
void at_logf(at_loglevel_t lvl, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void at_logf_level(at_loglevel_t lvl); /* messages below lvl are dropped */
#define AT_DEBUG(msg, ...) at_logf(AT_LOG_DEBUG, msg, __VA_ARGS__)
#define AT_INFO(msg, ...) at_logf(AT_LOG_INFO, msg, __VA_ARGS__)
#define AT_WARN(msg, ...) at_logf(AT_LOG_WARN, msg, __VA_ARGS__)
#define AT_ERROR(msg, ...) at_logf(AT_LOG_ERROR, msg, __VA_ARGS__)

/* ---- files -------------------------------------------------------------- */
/* Reads a whole file (at most max bytes) into *out (owned, free()).
 * Returns 0, -errno, or AT_ETOOBIG. */
int at_file_read(const char *path, size_t max, char **out, size_t *len);
/* Writes data to path atomically (tmp file, fsync, rename, fsync dir). */
int at_file_write_atomic(const char *path, const void *data, size_t len);
/* mkdir -p; each directory it creates is made durable (its parent is
 * fsynced). Returns 0 or -errno. */
int at_mkdirs(const char *path, int mode);
int at_fsync_dir(const char *path);

#endif
