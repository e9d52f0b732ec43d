/* at_ingest.h - turning request bodies into canonical events (DESIGN.md §3):
 * parsing the three body forms, field mapping (config and the Segment
 * spec's names), validation, schemas per event type with versions, and
 * exact deduplication by event_id.
 *
 * THREAD SAFETY: at_ingest_parse may run on several threads at once;
 * at_ingest_schema_put may run concurrently with it (the schema registry
 * is guarded by a rwlock taken once per batch). An at_dedup_t belongs to
 * one thread (the log writer).
 */
#ifndef AT_INGEST_H
#define AT_INGEST_H

#include "at_config.h"
#include "at_core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct at_ingest at_ingest_t;

/* Compiles the mappings and the schemas of cfg (borrowed for the call
 * only). schema_dir, when not NULL, is where schemas registered through the
 * API are kept (one file per type, all versions); they are loaded here.
 * Returns 0 or <0 with err filled (field = "schemas.TYPE" for a bad schema). */
int at_ingest_new(at_ingest_t **out, const at_config_t *cfg, const char *schema_dir,
                  at_error_t *err);
void at_ingest_free(at_ingest_t *in);

typedef enum {
    AT_BODY_JSON,   /* {"events":[...]} or a single event object */
    AT_BODY_NDJSON, /* one event object per line */
    AT_BODY_TEXT,   /* text/plain from sendBeacon: sniffed as JSON or NDJSON */
} at_body_kind_t;

/* One accepted event in canonical form. Strings point into the batch's
 * arena and are NUL-terminated. */
typedef struct at_event {
    int index;       /* position in the request */
    int partition;   /* at_partition_of(key) */
    const char *key; /* "u:<user_id>" or "a:<anonymous_id>" */
    uint32_t key_len;
    const char *event_id; /* given or server-assigned */
    uint32_t event_id_len;
    bool id_assigned; /* assigned by the server: cannot be deduplicated */
    bool clamped;     /* timestamp was in the future beyond the limit */
    const char *type;
    int64_t ts_ms; /* event time after clamping */
    int64_t recv_ms;
    const char *json; /* canonical enriched event: see docs/events.md */
    uint32_t json_len;
} at_event_t;

/* One rejected event: kept in the quarantine log with the reason. */
typedef struct at_reject {
    int index;
    at_error_t error; /* code "invalid_event" / "schema_violation" / "event_too_large" */
    const char *raw;  /* the event's bytes as sent (arena) */
    uint32_t raw_len;
} at_reject_t;

typedef struct at_batch {
    at_arena_t arena;
    at_event_t *events;
    size_t nevents;
    at_reject_t *rejects;
    size_t nrejects;
    const char *write_key; /* "write_key" found in the body, or NULL */
    size_t nclamped;
} at_batch_t;

void at_batch_init(at_batch_t *b);
void at_batch_deinit(at_batch_t *b);

/* Parses a request body into b (which must be fresh or reset with
 * at_batch_deinit+init). Event-level problems become rejects and do not fail
 * the call. Returns 0; or AT_EPARSE when the body as a whole cannot be
 * parsed (err: code "invalid_json", message with line and column), or
 * AT_ETOOBIG when it holds more than max_batch_events events (err: code
 * "batch_too_large"). The body-byte limit is the HTTP layer's. recv_ms is
 * the receive time stamped on every event. */
int at_ingest_parse(at_ingest_t *in, const char *body, size_t len, at_body_kind_t kind,
                    int64_t recv_ms, int partitions, at_batch_t *b, at_error_t *err);

/* Schemas. get writes {"type":T,"version":N,"schema":{...}} (latest when
 * version is 0) into out; AT_ENOTFOUND when none. put compiles the schema,
 * checks it is backward compatible with the latest version (AT_ECONFLICT,
 * err.code "incompatible_schema", message saying why) and stores it as the
 * next version (persisted in schema_dir before returning). */
int at_ingest_schema_get(at_ingest_t *in, const char *type, int version, at_buf_t *out);
int at_ingest_schema_put(at_ingest_t *in, const char *type, const char *json, size_t len,
                         int *version, at_error_t *err);
/* Writes a JSON array of {"type","version"} for every registered type. */
int at_ingest_schema_list(at_ingest_t *in, at_buf_t *out);

/* ---- dedup (DESIGN.md §6) ----------------------------------------------
 * Keyed by (partition, event_id) as a 128-bit fingerprint of the id (a
 * false duplicate has odds of about cap / 2^128 per id), over a horizon in
 * receive time, capped per partition (oldest evicted first, counted). The
 * fingerprints live in an unlinked scratch file in dir, a compact table of
 * short tags in memory (docs/decisions/0010). */
#define AT_DEDUP_MAX_CAP ((1 << 24) - 1) /* ids per partition */
typedef struct at_dedup at_dedup_t;
at_dedup_t *at_dedup_new(int partitions, int64_t horizon_ms, int64_t max_per_partition,
                         const char *dir);
void at_dedup_free(at_dedup_t *d);
/* Returns true if (p, id) was seen within the horizon before recv_ms;
 * otherwise records it and returns false. Entries older than
 * recv_ms - horizon are expired as a side effect. */
bool at_dedup_check(at_dedup_t *d, int p, const char *id, size_t n, int64_t recv_ms);
/* Forgets (p, id): used when a write that recorded it failed. */
void at_dedup_forget(at_dedup_t *d, int p, const char *id, size_t n);
uint64_t at_dedup_evicted(const at_dedup_t *d); /* evicted before their horizon */
uint64_t at_dedup_size(const at_dedup_t *d);
uint64_t at_dedup_bytes(const at_dedup_t *d);  /* of memory, not the file */
uint64_t at_dedup_reads(const at_dedup_t *d);  /* fingerprints read back from the file */
uint64_t at_dedup_errors(const at_dedup_t *d); /* failed reads and writes of the file */

#endif
