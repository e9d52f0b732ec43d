/* proc.h - the processing of one partition: the records of its log, in
 * offset order, turned into user state (profiles and rule state), outputs
 * (segment and trigger events) and records for other partitions (identity
 * handoffs, forwarded events). Nothing here knows about threads: the shard
 * that owns the partition calls it, and tests call it directly.
 *
 * What happens to a record (DESIGN.md §6):
 *   event      arrives: late ones (at or before the watermark) update the
 *              profile at once; the others wait in the reorder buffer until
 *              the watermark passes them, then go to the profile and the
 *              rules in (ts, event_id) order. On arrival the early path may
 *              announce enters that are final at once.
 *   tick       raises the watermark like an event's trusted time would.
 *   control    a new rule set, applied at this point (every user migrated).
 *   merge      identify linked this anonymous key to a user: its state and
 *              pending events go to the user's partition as a handoff, and
 *              the key becomes an alias that forwards later events.
 *   handoff    an anonymous user's state merged into the user.
 *   forwarded  an event of an alias, re-appended to the user's partition.
 *   erase      the user's state and pending events are dropped.
 * Handoffs and forwarded records carry their source position; a partition
 * drops repeats by per-source high-water marks.
 *
 * THREAD SAFETY: one thread per at_proc_t. Nothing reads the clock.
 */
#ifndef AT_PROC_H
#define AT_PROC_H

#include "at_config.h"
#include "at_core.h"
#include "at_log.h"
#include "at_profile.h"
#include "at_reco.h"
#include "at_stream.h"
#include "rules_def.h"

/* The format of the user values and the checkpoint meta (2: profiles with
 * string dictionary ids). Another format's checkpoint is refused. */
#define AT_PROC_FORMAT 2

typedef struct at_proc at_proc_t;

typedef struct at_proc_cfg {
    at_profile_cfg_t profile;
    at_reco_cfg_t reco;
    int reco_answers;           /* recommendation answers cached per partition (0: none) */
    int64_t reco_answer_ttl_ms; /* how long one is served (0: none) */
    int64_t lateness_ms;        /* allowed lateness; default 5 s */
    int64_t ttl_ms;             /* state of users inactive this long expires; 0: never */
    int partitions;
    bool no_early; /* announce every transition only once final (no early path) */
} at_proc_cfg_t;

/* One output, ready to go into the partition's output log. */
typedef struct at_proc_out {
    int partition;
    int64_t offset; /* in the partition's output log */
    const at_rule_out_t *o;
    const char *key; /* user key */
    size_t key_len;
    const char *id;   /* deterministic id: 32 hex digits */
    const char *json; /* the message */
    size_t json_len;
} at_proc_out_t;

typedef struct at_proc_ops {
    /* An output that is not a regenerated one (offset >= the suppression
     * point) and not from a shadow rule. */
    void (*output)(void *ud, const at_proc_out_t *o);
    /* A record for another partition (key, id, value, type, ts, recv set),
     * to be appended to the log. */
    void (*send)(void *ud, const at_rec_t *rec);
} at_proc_ops_t;

typedef struct at_proc_stats {
    uint64_t records, events, late, ticks, controls, merges, handoffs, forwarded, erased;
    uint64_t duplicates_dropped; /* handoff/forwarded repeats */
    uint64_t outputs, outputs_suppressed, shadow_outputs, early_outputs;
    uint64_t expired_users, degraded;
    uint64_t items;            /* catalog records */
    uint64_t reco_cached;      /* recommendation answers given from the cache */
    uint64_t reco_built;       /* asked for and not in the cache: built */
    uint64_t reco_built_by[3]; /* the same by cause: absent, changed, expired (answers.h) */
    uint64_t pending;          /* events waiting for the watermark now */
    uint64_t pending_bytes;    /* memory they hold */
    uint64_t users;
    uint64_t state_bytes;
    int64_t watermark;   /* AT_WM_NONE when none */
    int64_t next_offset; /* of the input log */
    int64_t out_next;    /* of the output log */
} at_proc_stats_t;

at_proc_t *at_proc_new(int partition, const at_proc_cfg_t *cfg, const at_proc_ops_t *ops, void *ud);
void at_proc_free(at_proc_t *pr);

/* Processes one record of the partition (rec->partition must match).
 * Records below the next offset are ignored. */
void at_proc_record(at_proc_t *pr, const at_rec_t *rec);

/* Outputs below `offset` exist already (written before a restart): when
 * regenerated they are not handed to ops->output again. */
void at_proc_suppress_until(at_proc_t *pr, int64_t offset);

void at_proc_stats(const at_proc_t *pr, at_proc_stats_t *st);
const at_ruleset_t *at_proc_rules(const at_proc_t *pr);
int64_t at_proc_next_offset(const at_proc_t *pr);

typedef struct at_member_count {
    uint32_t id;
    int64_t n;
} at_member_count_t;

/* Member count of rule id (users), for GET /v1/segments. */
int64_t at_proc_members(const at_proc_t *pr, uint32_t id);

/* ---- reads ------------------------------------------------------------------ */
enum { AT_PROC_R_PROFILE = 1, AT_PROC_R_SEGMENTS = 2, AT_PROC_R_EXPORT = 4 };
/* The partition's item aggregates (written by its processing; read by
 * anyone through an at_reco_set_t of every partition's). */
at_reco_part_t *at_proc_reco(at_proc_t *pr);
/* The user's recommendations (following no alias: the caller does) as
 * {"user":KEY,"known":BOOL,"items":[..]}: a user not held gets the cold
 * start answer (trending). set: every partition's aggregates. */
void at_proc_render_reco(at_proc_t *pr, const char *key, size_t n, at_reco_set_t *set,
                         const at_reco_req_t *req, at_buf_t *out);
/* Renders the user (following an alias) as a JSON object into out: the
 * profile with its pending events applied, segments and triggers. Returns
 * 0, or AT_ENOTFOUND. */
int at_proc_render_user(at_proc_t *pr, const char *key, size_t n, unsigned what, at_buf_t *out);
/* Whether key is an alias; its target into *target (borrowed until the
 * next call that changes the partition). */
bool at_proc_alias(const at_proc_t *pr, const char *key, size_t n, at_pstr_t *target);
/* Appends up to limit member user keys of segment name (acting versions)
 * as JSON strings, comma separated (first: none before the first), starting
 * at *cursor (a slot position; updated). Returns how many. */
size_t at_proc_members_page(at_proc_t *pr, const char *name, size_t n, uint32_t *cursor,
                            size_t limit, bool first, at_buf_t *out, bool *more);

/* ---- placements (decide.c) --------------------------------------------------- */
typedef struct at_placement at_placement_t;
typedef struct at_placements at_placements_t;
/* Parses and compiles the config's placement definitions; err names the
 * placement, the field and (in a condition) the line and column. */
int at_placements_new(const at_config_rules_t *defs, at_placements_t **out, char *err,
                      size_t errlen);
void at_placements_free(at_placements_t *ps);
const at_placement_t *at_placements_find(const at_placements_t *ps, const char *name, size_t n);
/* {"placements":[{"name","variants":[..],"fallback","experiment"?},..]} */
void at_placements_render(const at_placements_t *ps, at_buf_t *out);
/* Decides placement pl for user key (following no alias) with the request
 * object req (its "context" is what context.* reads) at wall time now_ms;
 * late: processing had not reached the position the request asked for.
 * The answer JSON into out. */
void at_proc_decide(at_proc_t *pr, const char *key, size_t klen, const at_placement_t *pl,
                    const char *req, size_t req_len, bool late, int64_t now_ms, at_reco_set_t *set,
                    at_buf_t *out);

/* ---- checkpoints and digests ---------------------------------------------------- */
/* The partition's meta: the input offset processing has reached, the
 * oldest offset a pending event came from, the largest trusted time, the
 * output offset, per-source high-water marks and the rule set. */
void at_proc_meta(const at_proc_t *pr, at_buf_t *out);
/* The oldest input offset recovery must read again: the smallest offset of
 * a pending event, or the next offset. */
int64_t at_proc_replay_from(const at_proc_t *pr);
/* Calls fn for each user whose value changed since the last call (value
 * NULL for a deleted user), then forgets them. */
void at_proc_changes(at_proc_t *pr,
                     void (*fn)(void *ud, const char *key, size_t klen, const void *val,
                                size_t vlen),
                     void *ud);
/* Calls fn for every live user (for a full checkpoint), then forgets the
 * changes. */
void at_proc_all_users(at_proc_t *pr,
                       void (*fn)(void *ud, const char *key, size_t klen, const void *val,
                                  size_t vlen),
                       void *ud);
/* Restores from a checkpoint: meta, then every user (value as given to
 * at_proc_changes). Then records from at_proc_replay_from() on are fed with
 * at_proc_record as usual: those before the checkpoint's next offset only
 * refill the reorder buffer. Returns 0 or AT_ECORRUPT. */
int at_proc_restore_meta(at_proc_t *pr, const char *meta, size_t n, at_error_t *err);
int at_proc_restore_user(at_proc_t *pr, const char *key, size_t klen, const void *val, size_t vlen);
/* After the meta and the last user: sets every user's timer and marks the
 * restored state as the checkpoint's, not a change. */
void at_proc_restore_done(at_proc_t *pr);
/* Prints to stderr what the users' values are made of (benchmarks). */
void at_proc_debug_sizes(at_proc_t *pr);
/* An order-independent digest of all state (users, pending events,
 * watermark, rule set, output offset, high-water marks). */
uint64_t at_proc_digest(at_proc_t *pr);

#endif
