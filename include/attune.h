/* attune.h - the public API of libattune, a real-time personalization
 * engine. The server (`attune serve`), the CLI tools and the tests are built
 * on this header alone.
 *
 *   attune_t *a;
 *   attune_open(&a, "attune.yaml", NULL, err, sizeof err);
 *   attune_ingest(a, body, len, ATTUNE_BODY_JSON, 0, on_done, ctx);
 *   ...
 *   attune_close(a);
 *
 * Errors: functions return 0 or a negative code (attune_strerror()).
 * Memory: what a function returns as "owned" is freed with attune_free().
 *
 * THREAD SAFETY: every function may be called from any thread, except
 * attune_close(), which must be the last call. Callbacks run on the engine's
 * log writer thread and must not block.
 */
#ifndef ATTUNE_H
#define ATTUNE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attune attune_t;
struct at_config;

/* An error for people: the HTTP error body and CLI messages. */
typedef struct attune_error {
    char code[32]; /* "invalid_json", "batch_too_large", "queue_full", ... */
    char message[256];
    char field[128]; /* may be empty */
} attune_error_t;

/* Opens the engine. config_path may be NULL (defaults). overrides is a
 * NULL-terminated list of "name=value" settings applied over the file (the
 * command-line flags), or NULL. Creates the data directory if needed,
 * recovers the log (a torn tail is cut) and starts the writer thread; the
 * engine rebuilds its dedup index in the background and is ready
 * (attune_ready) after that. Returns 0 or <0 with a message in err. */
int attune_open(attune_t **out, const char *config_path, const char *const *overrides, char *err,
                size_t errlen);
/* Drains queued batches (each answered), makes them durable, stops the
 * threads and frees a. */
void attune_close(attune_t *a);
/* 1 once recovery is done, else 0. */
int attune_ready(const attune_t *a);

/* ---- ingestion (DESIGN.md §3) ------------------------------------------- */
enum { ATTUNE_BODY_JSON = 0, ATTUNE_BODY_NDJSON = 1, ATTUNE_BODY_TEXT = 2 };
#define ATTUNE_INGEST_NEED_KEY 1 /* the caller had no key: the body's write_key must be one */

typedef struct attune_ingest_result {
    int status; /* 0, or <0: the batch was not written (error says why) */
    attune_error_t error;
    uint32_t accepted;
    uint32_t duplicates;
    uint32_t rejected;
    const char *json; /* the answer body: {"accepted":..,"duplicates":..,"rejected":[..],
                         "positions":["P:OFFSET",..]}; valid during the callback */
    size_t json_len;
} attune_ingest_result_t;
typedef void (*attune_ingest_cb)(void *ud, const attune_ingest_result_t *res);

/* Parses and validates body on the calling thread and queues it for the
 * log. Returns <0 without calling cb when the batch is refused at once:
 * ATTUNE_EPARSE (body not parseable), ATTUNE_ETOOBIG (too many events),
 * ATTUNE_EFULL (queues full: retry later), ATTUNE_EUNAVAIL (recovering),
 * ATTUNE_EAUTH (flags has ATTUNE_INGEST_NEED_KEY and the body carries no
 * valid write_key); err says why. Otherwise returns 0 and calls cb once, on
 * the writer thread, after the accepted events are durable under the fsync
 * policy (or with status <0 if writing failed: -ENOSPC, -EIO). body is
 * borrowed for the call only. */
int attune_ingest(attune_t *a, const char *body, size_t len, int kind, unsigned flags,
                  attune_ingest_cb cb, void *ud, attune_error_t *err);

/* ---- schemas ------------------------------------------------------------ */
/* Returns owned JSON {"type","version","schema"} (version 0 = latest);
 * ATTUNE_ENOTFOUND. */
int attune_schema_get(attune_t *a, const char *type, int version, char **json, size_t *len);
/* Registers the next version; ATTUNE_EINVALID (bad schema) or
 * ATTUNE_ECONFLICT (not backward compatible) with err filled. */
int attune_schema_put(attune_t *a, const char *type, const char *json, size_t len, int *version,
                      attune_error_t *err);
int attune_schema_list(attune_t *a, char **json, size_t *len);

/* ---- segments and triggers (DESIGN.md §5, docs/rules.md) ---------------- */
enum { ATTUNE_SEGMENT = 1, ATTUNE_TRIGGER = 2 };

/* An answer that comes later: status 0 with json (valid during the call),
 * or <0. Runs on an engine thread (the writer's or a shard's): must not
 * block. */
typedef void (*attune_done_cb)(void *ud, int status, const char *json, size_t len);

/* Puts a new version of segment or trigger `name` (def: the JSON definition;
 * its own "name", if any, must match). Refused at once (returns <0, err
 * filled, cb not called) with ATTUNE_EPARSE / ATTUNE_EINVALID (the field,
 * and the line and column inside an expression) or ATTUNE_ECONFLICT (a
 * cycle of in_segment()). Otherwise cb gets the rule as rendered by
 * attune_rule_get once the change is durable in every partition's log. A
 * definition equal to the newest version changes nothing and is answered
 * at once. Any thread. */
int attune_rule_put(attune_t *a, int kind, const char *name, size_t nlen, const char *def,
                    size_t len, attune_done_cb cb, void *ud, attune_error_t *err);
/* Deletes every version of the rule: ATTUNE_ENOTFOUND, ATTUNE_ECONFLICT
 * (another segment's in_segment() uses it), else cb once durable. */
int attune_rule_delete(attune_t *a, int kind, const char *name, size_t nlen, attune_done_cb cb,
                       void *ud, attune_error_t *err);
/* Owned JSON: the newest version {"name","kind","id","version","mode",
 * "rollout","final_at_once","definition","members","versions":[..]};
 * ATTUNE_ENOTFOUND. */
int attune_rule_get(attune_t *a, int kind, const char *name, size_t nlen, char **json, size_t *len);
/* Owned JSON {"segments":[..]} or {"triggers":[..]}: every version in force. */
int attune_rule_list(attune_t *a, int kind, char **json, size_t *len);

/* ---- users (DESIGN.md §4) --------------------------------------------------- */
enum { ATTUNE_USER_PROFILE = 1, ATTUNE_USER_SEGMENTS = 2, ATTUNE_USER_EXPORT = 4 };

/* Reads user id ("u:KEY", "a:KEY", or a bare user id meaning "u:id"),
 * following an identity alias. min_position (may be NULL): "P:OFFSET"
 * positions from an ingest answer, comma separated; the read waits (up to
 * 1 s) until the user's partition has processed its position. cb gets
 * ATTUNE_ENOTFOUND or the user's JSON. Returns <0 (cb not called) when the
 * engine is stopping or an argument is bad. */
int attune_user(attune_t *a, const char *id, size_t n, unsigned what, const char *min_position,
                attune_done_cb cb, void *ud);
/* A page of the members of a segment: {"members":[user keys],"cursor":C}
 * where C (null at the end) continues. cursor NULL: from the start. */
int attune_segment_members(attune_t *a, const char *name, size_t n, const char *cursor, int limit,
                           attune_done_cb cb, void *ud);
/* The order-independent digest of all processing state:
 * {"digest":"HEX","partitions":P}. */
int attune_digest(attune_t *a, attune_done_cb cb, void *ud);
/* Waits until every record durable so far has been processed; 0, or
 * ATTUNE_EUNAVAIL after timeout_ms. */
int attune_wait_idle(attune_t *a, int timeout_ms);
int attune_partitions(const attune_t *a);

/* ---- recommendations and the item catalog (DESIGN.md §7) ----------------------- */
typedef struct attune_reco_query {
    int n;                      /* items wanted, 1..100; 0: 10 */
    const char *category;       /* only items in this category or below it; NULL: any */
    const char *const *exclude; /* items not wanted (at most 100 are read) */
    size_t nexclude;
    int64_t window_ms; /* trending window: 1 h, 24 h or 7 d; 0: 24 h */
} attune_reco_query_t;

/* Upserts catalog items: body is one item, an array of them or
 * {"items":[..]}, each {"item_id","category"?,"available"?,"attributes"?}.
 * Refused at once (err names the field, e.g. "items[2].available"):
 * ATTUNE_EPARSE, ATTUNE_EINVALID, ATTUNE_ETOOBIG (over 1,000 items),
 * ATTUNE_EUNAVAIL. Otherwise cb gets {"accepted":N} once durable. */
int attune_items_put(attune_t *a, const char *body, size_t len, attune_done_cb cb, void *ud,
                     attune_error_t *err);
/* Owned JSON: what is known of the item (catalog and learned from
 * events); ATTUNE_ENOTFOUND. */
int attune_item_get(attune_t *a, const char *item, size_t n, char **json, size_t *len);
/* The user's recommendations, on the user's shard: cb gets
 * {"user","known","items":[{"item_id","score","reason","because"|
 * "category_of_interest"?,"category"?},..]}. A user not held gets the
 * cold-start answer. min_position as for attune_user. ATTUNE_EINVALID for
 * a bad query. */
int attune_recommend(attune_t *a, const char *user, size_t n, const attune_reco_query_t *q,
                     const char *min_position, attune_done_cb cb, void *ud);
/* The same answer on the calling thread when a recent one is kept
 * (reco.answers): built for the same user and query within reco.cache,
 * with no record of the user processed since, and the user's partition
 * past min_position. 0 and owned JSON (attune_free), else
 * ATTUNE_ENOTFOUND (ask attune_recommend) or ATTUNE_EINVALID. */
int attune_recommend_cached(attune_t *a, const char *user, size_t n, const attune_reco_query_t *q,
                            const char *min_position, char **json, size_t *len);
/* Owned JSON {"item_id","items":[..]}: items seen together with item;
 * ATTUNE_ENOTFOUND for an item never seen. */
int attune_similar(attune_t *a, const char *item, size_t n, const attune_reco_query_t *q,
                   char **json, size_t *len);
/* Owned JSON {"window","items":[..]}: the most interacted-with items in
 * the window, newest event time as "now". */
int attune_trending(attune_t *a, const attune_reco_query_t *q, char **json, size_t *len);

/* ---- placements and decisions (DESIGN.md §4, §7) ------------------------------- */
/* Decides a placement for a user: body {"user_id"|"anonymous_id"|"user",
 * "placement","context"?:{..},"min_position"?}. Refused at once:
 * ATTUNE_EPARSE, ATTUNE_EINVALID (err names the field), ATTUNE_ENOTFOUND
 * (no such placement), ATTUNE_EUNAVAIL. Otherwise cb gets, from the user's
 * shard, {"placement","user","known","variant","reason","rule"?,
 * "condition"?,"experiment"?,"arm"?,"recommendations"?,"exposure"}. A
 * read: what is shown is recorded by sending "exposure" as an event. */
int attune_decide(attune_t *a, const char *body, size_t len, attune_done_cb cb, void *ud,
                  attune_error_t *err);
/* Owned JSON {"placements":[..]}: the configured placements. */
int attune_placements(attune_t *a, char **json, size_t *len);

/* ---- watched users (push re-decides for them, DESIGN.md §7) --------------------- */
/* Runs on a shard thread after a record of a watched user (an event, a
 * merge, a handoff, a forwarded event) was processed, with the user's
 * namespaced key ("u:42"); what the user's reads return may have changed.
 * Must not block: hand the key over to another thread. */
typedef void (*attune_change_fn)(void *ud, const char *user_key, size_t len);
/* Sets the one callback; call it before the first attune_watch. */
void attune_watch_callback(attune_t *a, attune_change_fn fn, void *ud);
/* Watches a user (id as for attune_user). Counted: a user watched twice
 * is watched until unwatched twice. ATTUNE_EINVALID for a bad id. Any
 * thread. */
int attune_watch(attune_t *a, const char *id, size_t n);
void attune_unwatch(attune_t *a, const char *id, size_t n);

/* ---- the output bus (segment and trigger events) ------------------------------ */
typedef struct attune_outputs attune_outputs_t;
/* One output: partition, offset in its output log, the message JSON. Return
 * non-zero to stop. */
typedef int (*attune_output_cb)(void *ud, int partition, int64_t offset, const char *json,
                                size_t len);
/* Follows the outputs from from[p] (NULL: from now) with its own positions. */
int attune_outputs_open(attune_t *a, const int64_t *from, attune_outputs_t **out);
/* Up to max outputs available now, in offset order per partition; returns
 * how many, or <0. */
int attune_outputs_next(attune_outputs_t *o, attune_output_cb cb, void *ud, int max);
/* Waits until more may be available, or timeout_ms. */
void attune_outputs_wait(attune_outputs_t *o, int timeout_ms);
void attune_outputs_close(attune_outputs_t *o);

/* ---- offline tools (the engine need not run) ------------------------------------ */
/* Reads the output logs of a data directory, from from[p] on (NULL: all). */
int attune_outputs_read(const char *data_dir, const int64_t *from, attune_output_cb cb, void *ud,
                        char *err, size_t errlen);
/* The state digest of a data directory, computed by restoring the
 * checkpoints and processing the rest of the log, or (from_scratch) by
 * processing the whole log: the two must be equal. config_path and
 * overrides as for attune_open. outputs (may be NULL) gets the outputs
 * that processing produces (those before the checkpoints are not
 * produced again). */
int attune_state_digest(const char *config_path, const char *const *overrides, int from_scratch,
                        uint64_t *digest, attune_output_cb outputs, void *ud, char *err,
                        size_t errlen);
/* Checks the segments and triggers of a loaded configuration; errors name
 * the file's line and column. */
int attune_check_rules(const struct at_config *cfg, char *err, size_t errlen);

/* ---- operations --------------------------------------------------------- */
/* Owned JSON {"rejected":[{"received_at","index","error":{..},"raw"},..]}, newest last. */
int attune_rejected(attune_t *a, int limit, char **json, size_t *len);
/* Owned Prometheus text exposition of the engine's metrics. */
int attune_metrics(attune_t *a, char **text, size_t *len);

enum { ATTUNE_SCOPE_INGEST = 1, ATTUNE_SCOPE_READ = 2, ATTUNE_SCOPE_ADMIN = 4 };
/* 0 if key (not NUL-terminated) is configured with scope, or if no key is
 * configured at all (development mode); else ATTUNE_EAUTH. Constant time in
 * the key's bytes. */
int attune_auth(const attune_t *a, const char *key, size_t len, int scope);
/* 1 when no API key is configured. */
int attune_dev_mode(const attune_t *a);

/* The loaded configuration, for the server's own settings (listen, HTTP
 * limits): see src/core/at_config.h. */
const struct at_config *attune_config(const attune_t *a);

/* ---- reading the log ----------------------------------------------------- */
typedef struct attune_record {
    int32_t partition;
    int64_t offset;
    const char *type; /* "event", "tick", "control", ... */
    int64_t recv_ms;
    int64_t ts_ms;
    const char *key;
    size_t key_len;
    const char *id;
    size_t id_len;
    const char *value;
    size_t value_len;
} attune_record_t;
/* Return non-zero from the callback to stop. */
typedef int (*attune_record_cb)(void *ud, const attune_record_t *rec);
/* Reads the log of a data directory (the engine may be running or stopped)
 * in log order, records of partition p from offset from[p] on (from may be
 * NULL). Returns 0, the callback's non-zero value, or <0. */
int attune_log_read(const char *data_dir, const int64_t *from, attune_record_cb cb, void *ud,
                    char *err, size_t errlen);

void attune_free(void *p);
const char *attune_strerror(int code);
const char *attune_version(void);

/* Error codes (the same numbers as the engine's own). */
#define ATTUNE_EPARSE (-10001)
#define ATTUNE_EINVALID (-10002)
#define ATTUNE_ETOOBIG (-10003)
#define ATTUNE_EFULL (-10004)
#define ATTUNE_ECORRUPT (-10005)
#define ATTUNE_ECONFLICT (-10006)
#define ATTUNE_ENOTFOUND (-10007)
#define ATTUNE_EAUTH (-10008)
#define ATTUNE_EVERSION (-10009)
#define ATTUNE_ECLOSED (-10010)
#define ATTUNE_EUNAVAIL (-10011)

#ifdef __cplusplus
}
#endif
#endif
