/* rules_def.h - segments and triggers (DESIGN.md §5): definitions, rule
 * sets, the per-user state of every rule, and its evaluation in event time.
 *
 * Evaluation model. The engine applies a user's events to the rules in
 * event-time order, once the watermark has passed them (the reorder buffer
 * of src/stream), and calls at_rules_on_time() at the instants the rules
 * asked for (at_rules_deadline()). In that order every rule is a plain state
 * machine over final input: a sliding window is a FIFO, a tumbling window a
 * bucket, a session window the entries since the session began, an absence
 * trigger a deadline. The only thing that runs before an event is final is
 * the early path (at_rules_early()): an enter that no later event can undo
 * (count, distinct, max, or sum of a non-negative field, compared with > or
 * >=) is announced when the event arrives, and the in-order run later
 * confirms it without announcing it again.
 *
 * THREAD SAFETY: a rule set is immutable and shared between threads by
 * reference count. A user's state belongs to the thread of its partition.
 * Nothing here reads the clock.
 */
#ifndef AT_RULES_DEF_H
#define AT_RULES_DEF_H

#include "at_rules.h"
#include "at_stream.h"
#include "at_tz.h"

#include <stdatomic.h>

#define AT_RULE_NAME_MAX 64
#define AT_RULE_NONE INT64_MIN   /* an instant that is not set */
#define AT_RULE_FIXED 1000000    /* sum and avg: fixed point, 10^-6 */
#define AT_RULE_MAX_ENTRIES 1024 /* window entries per (user, rule, group) */
#define AT_RULE_MAX_GROUPS 64    /* groups per (user, rule) */
#define AT_RULE_MAX_RULES 1024   /* rules in a set */
#define AT_RULE_RECENT_FIRES 10  /* triggers fired, kept per user for the profile */

typedef enum { AT_RULE_SEGMENT = 1, AT_RULE_TRIGGER = 2 } at_rule_kind_t;
typedef enum { AT_WIN_NONE = 0, AT_WIN_SLIDING, AT_WIN_TUMBLING, AT_WIN_SESSION } at_win_kind_t;
typedef enum { AT_RULE_ACTIVE = 0, AT_RULE_SHADOW = 1 } at_rule_mode_t;

/* One version of one segment or trigger, compiled. Immutable; shared by
 * the rule sets that hold it. */
typedef struct at_rule {
    _Atomic int refs;
    uint32_t id;      /* unique per (name, version) in a data directory */
    uint32_t version; /* 1, 2, ... per name */
    uint8_t kind;     /* at_rule_kind_t */
    uint8_t mode;     /* at_rule_mode_t */
    uint8_t rollout;  /* 1..100: the share of users it acts for */
    uint8_t win;      /* at_win_kind_t */
    char name[AT_RULE_NAME_MAX + 1];
    char *def; /* the definition as canonical JSON (owned) */
    size_t def_len;
    /* segments */
    at_expr_t *filter; /* NULL: every event */
    at_expr_t *when;   /* NULL: none */
    at_expr_t *group;  /* group_by: the group's value; NULL: none */
    int64_t win_ms;    /* sliding length or tumbling bucket */
    bool has_having;
    at_having_t having;
    bool early;        /* enters are final at once (see the file comment) */
    bool when_session; /* when reads profile.session.*: re-evaluated when the session ends */
    /* triggers */
    at_expr_t *on, *unless;
    int64_t within_ms;   /* 0: fires on the event itself */
    int64_t cooldown_ms; /* 0: none */
    char *action;        /* JSON value or NULL (owned) */
    size_t action_len;
    bool early_fire; /* a plain trigger without cooldown whose `on` reads no profile */
    uint32_t index;  /* position in the set's evaluation order */
    int name_id;     /* the set's id of the name (in_segment) */
    bool contested;  /* the set holds another version of the name rolled out to a share */
    uint32_t keep;   /* window entries per group the having clause can still need
                        (0: all); see at_rules__prune */
} at_rule_t;

/* A name that is not in force any more: the last version it had, so that
 * a put of the name again continues from there. */
typedef struct at_rule_past {
    uint8_t kind; /* at_rule_kind_t */
    uint32_t version;
    char name[AT_RULE_NAME_MAX + 1];
} at_rule_past_t;

/* The rules in force at one point of a partition's log. */
typedef struct at_ruleset {
    _Atomic int refs;
    uint64_t changes;  /* control records applied to reach it */
    at_rule_t **rules; /* evaluation order: a segment before those that ask in_segment() of it */
    size_t n;
    at_rule_t **by_id; /* the same rules sorted by id (at_ruleset_by_id) */
    /* slot table: the distinct field paths the rules read */
    char **fields;
    bool *field_profile;
    size_t nfields;
    /* names in_segment() may ask for */
    char **names;
    size_t nnames;
    uint32_t next_id;     /* the next rule id to give out: never one given out before */
    at_rule_past_t *past; /* deleted names and their last version, by (kind, name) */
    size_t npast;
    bool has_early; /* some rule has an early path */
} at_ruleset_t;

/* An empty set (owned: at_ruleset_unref). */
at_ruleset_t *at_ruleset_new(void);
void at_ruleset_ref(at_ruleset_t *rs);
void at_ruleset_unref(at_ruleset_t *rs);
/* The acting-or-candidate rule of kind and name with the highest version,
 * or NULL. */
const at_rule_t *at_ruleset_find(const at_ruleset_t *rs, int kind, const char *name, size_t n);
const at_rule_t *at_ruleset_by_id(const at_ruleset_t *rs, uint32_t id);
/* The version a new definition of kind/name gets: one more than the
 * highest it had in force or when it was deleted, 1 for a new name. */
uint32_t at_ruleset_next_version(const at_ruleset_t *rs, int kind, const char *name, size_t n);

/* A change of a rule set: what a control record carries (as JSON, see
 * at_rule_change_parse). */
typedef enum { AT_CHG_PUT = 1, AT_CHG_DELETE = 2 } at_chg_op_t;

/* Builds the set that follows prev after putting definition def (JSON
 * object text: the fields of docs/rules.md) as version `version` with id
 * `id` of a rule of kind, or deleting name. A put in mode active with
 * rollout 100 replaces every version of the name; otherwise it is added
 * next to the active one as a candidate (replacing an earlier candidate).
 * Returns 0 with *out owned, or <0 with err: AT_EPARSE / AT_EINVALID
 * (code "invalid_rule", field the definition's field, message with the
 * expression's line:column), AT_ECONFLICT (a segment used by another's
 * in_segment(), a cycle), AT_ENOTFOUND (delete of an unknown name). */
int at_ruleset_change(const at_ruleset_t *prev, int op, int kind, const char *name, size_t name_len,
                      const char *def, size_t def_len, uint32_t id, uint32_t version,
                      at_ruleset_t **out, at_error_t *err);
/* Checks a definition without building a set (for check-config and PUT):
 * the same errors as at_ruleset_change. */
int at_rule_validate(const at_ruleset_t *rs, int kind, const char *def, size_t len,
                     at_error_t *err);

/* A control record's value: {"op":"put"|"delete","kind":"segment"|"trigger",
 * "name":..,"id":..,"version":..,"def":{..}}. */
int at_rule_change_encode(at_buf_t *out, int op, int kind, const char *name, size_t name_len,
                          const char *def, size_t def_len, uint32_t id, uint32_t version);
/* Applies the control record value to prev. */
int at_ruleset_apply(const at_ruleset_t *prev, const char *rec, size_t len, at_ruleset_t **out,
                     at_error_t *err);
/* Writes the whole set as a JSON array of control record values, oldest
 * first: replaying them on an empty set rebuilds it (rules.json, control
 * records, checkpoints). When ids were given out past the highest in force
 * or names were deleted, a last element {"op":"ids","next_id":N,
 * "deleted":[{"kind":..,"name":..,"version":..},..]} keeps that, so ids and
 * versions are never given out twice; a dump without it (an older
 * release's) loads with the next id after the highest in force. */
void at_ruleset_dump(const at_ruleset_t *rs, at_buf_t *out);
int at_ruleset_load(const char *json, size_t len, at_ruleset_t **out, at_error_t *err);
/* The definition rendered for the API: {"name","kind","version","mode",
 * "rollout","definition":{..}}. */
void at_rule_render(const at_rule_t *r, at_buf_t *out);

/* Whether rule r acts for (is evaluated and announced for) user key. A
 * shadow rule is evaluated for everyone and never announced. */
bool at_rule_acts_for(const at_ruleset_t *rs, const at_rule_t *r, const char *key, size_t n);

/* ---- per-user state ---------------------------------------------------------- */

typedef struct at_rentry {
    int64_t ts;
    int64_t v; /* fixed-point value (sum, avg, min, max) or value hash (distinct) */
} at_rentry_t;

typedef struct at_rgroup {
    at_pstr_t key;  /* the group's value; empty without group_by */
    bool member;    /* announced */
    bool internal;  /* the in-order run's own answer */
    bool degraded;  /* past a cap: the window is incomplete */
    int64_t since;  /* announced since */
    int64_t early;  /* an early enter's instant, until the in-order run passes it */
    int64_t bucket; /* tumbling: start of the bucket; session: the session's start */
    uint32_t n, cap;
    at_rentry_t *e; /* oldest first (arena) */
} at_rgroup_t;

typedef struct at_rrule {
    uint32_t id;
    bool when_ok; /* the when condition's last value */
    uint32_t ng;
    at_rgroup_t *g;   /* arena */
    int64_t armed_at; /* triggers: AT_RULE_NONE when not armed */
    int64_t deadline;
    int64_t last_fired; /* AT_RULE_NONE: never */
    uint32_t nearly;    /* triggers: events fired on arrival, not yet final */
    int64_t *early_at;  /* their instants, oldest first (arena) */
} at_rrule_t;

/* A trigger fire in the profile's recent fires. One of a version that is
 * no longer in force (gone at a control record, see at_rules_migrate)
 * keeps that version's name and number instead of its id. */
typedef struct at_rfired {
    uint32_t id;      /* the version's id; 0: not in force any more */
    uint32_t version; /* id 0: the version that fired */
    at_pstr_t name;   /* id 0: its name */
    int64_t at;
} at_rfired_t;

typedef struct at_rstate {
    uint64_t out_seq; /* outputs emitted for this user */
    uint32_t nr;
    at_rrule_t *r; /* sorted by id (arena) */
    uint32_t nfired;
    at_rfired_t fired[AT_RULE_RECENT_FIRES]; /* newest first */
    uint64_t degraded;                       /* events that hit a cap */
    at_arena_t *arena;
} at_rstate_t;

void at_rstate_init(at_rstate_t *s, at_arena_t *arena);
/* Decodes bytes of at_rstate_encode made with the same dictionary (or
 * none); strings point into data. Returns the bytes consumed or
 * AT_ECORRUPT. */
int at_rstate_decode(at_rstate_t *s, const uint8_t *data, size_t n, const at_sdict_t *dict,
                     at_arena_t *arena);
/* Appends the encoding of s; dict as at_profile_encode's (NULL: state
 * that leaves the partition, or the digest's). */
void at_rstate_encode(const at_rstate_t *s, at_sdict_t *dict, at_buf_t *out);
/* Whether user key (s its state) is an announced member of segment name
 * under the version acting for it (at_rule_acts_for). */
bool at_rstate_in_segment(const at_ruleset_t *rs, const at_rstate_t *s, const char *key,
                          size_t klen, const char *name, size_t n);
/* Calls fn with the id of every segment version acting for user key of
 * which it is an announced member (what member counts count). */
void at_rstate_memberships(const at_ruleset_t *rs, const at_rstate_t *s, const char *key,
                           size_t klen, void (*fn)(void *ud, uint32_t id), void *ud);
/* Appends "segments":[...],"triggers":[...] (the profile's view of user
 * key): memberships of the versions acting for it; a fire as
 * {"name","version","at"[,"action"]}, the action while the version that
 * fired is in force. */
void at_rstate_render(const at_ruleset_t *rs, const at_rstate_t *s, const char *key, size_t klen,
                      at_buf_t *out);
/* Merges src (an anonymous user's state, handed off) into dst: window
 * entries interleave by time, groups join, armed triggers stay armed with
 * the later deadline. Memberships are re-evaluated by the next event or
 * timer of dst's user. */
void at_rstate_merge(const at_ruleset_t *rs, at_rstate_t *dst, const at_rstate_t *src);

/* ---- evaluation ----------------------------------------------------------------- */

/* What rules read of the event being applied and of the user. */
typedef struct at_rule_host {
    void (*field)(void *ctx, int slot, at_val_t *out); /* event and profile fields */
    double (*affinity)(void *ctx, const char *cat, size_t n);
    void *ctx;
    int64_t session_start; /* start of the user's session at the instant, or AT_RULE_NONE */
    const at_tz_t *tz;     /* the user's zone (tumbling windows), never NULL */
    const char *key;       /* the user key */
    size_t key_len;
} at_rule_host_t;

enum { AT_OUT_ENTER = 1, AT_OUT_EXIT = 2, AT_OUT_FIRE = 3 };

typedef struct at_rule_out {
    uint8_t kind; /* AT_OUT_* */
    bool shadow;  /* from a shadow rule: counted, not delivered */
    bool early;   /* announced before the event was final */
    const at_rule_t *rule;
    at_pstr_t group;
    int64_t at;         /* the event-time instant it happened */
    uint64_t seq;       /* the user's output sequence number (0 for shadow) */
    const char *reason; /* exits: "window", "session", "condition", "changed", "deleted",
                           "expired", "erased", "merged" */
    int8_t user_delta;  /* +1: the user became a member (its first group), -1: left (its
                           last group), 0: other groups remain */
} at_rule_out_t;

typedef void (*at_rule_emit_fn)(void *ud, const at_rule_out_t *o);

/* What the early path knows about an event that is not final yet: per rule
 * with an early path, whether the event passes the filter (or `on`), its
 * group and value. Computed at arrival with at_rules_facts(). */
typedef struct at_rule_fact {
    uint32_t rule; /* the rule's index in the set */
    at_pstr_t group;
    int64_t v;
} at_rule_fact_t;

typedef struct at_rule_facts {
    const at_ruleset_t *rs; /* the set the facts were computed under */
    uint32_t n;
    at_rule_fact_t *f; /* owned by whoever owns the pending event */
} at_rule_facts_t;

/* The facts of one event (host reads its fields; the profile is not
 * consulted) into *out, with strings copied into arena. */
void at_rules_facts(const at_ruleset_t *rs, const at_rule_host_t *h, at_arena_t *arena,
                    at_rule_facts_t *out);

/* A pending (not yet final) event of the user, for the early path. */
typedef struct at_rule_pending {
    int64_t ts;
    at_rule_facts_t *facts;
} at_rule_pending_t;

/* The user's pending events in (ts, id) order, the one that just arrived
 * among them: returns their number and points *pend at them (valid until
 * the early path returns). */
typedef size_t (*at_rule_pending_fn)(void *ud, const at_rule_pending_t **pend);

/* The early path, at the arrival of event `now` of the user: list gives
 * the user's pending events (called at most once, and only when a rule
 * needs them); sess_start and sess_last describe the session of the
 * user's final events (AT_RULE_NONE when none) and gap is the session gap.
 * Announces enters that are final at once and fires early triggers for
 * the new event (the state remembers it, so the in-order run, even after a
 * restart from a checkpoint, does not fire again). */
void at_rules_early(const at_ruleset_t *rs, at_rstate_t *s, const at_rule_host_t *h,
                    const at_rule_pending_t *now, at_rule_pending_fn list, void *list_ud,
                    int64_t sess_start, int64_t sess_last, int64_t gap, at_rule_emit_fn emit,
                    void *ud);

/* Applies a final event at instant t (after the profile took it). */
void at_rules_on_event(const at_ruleset_t *rs, at_rstate_t *s, const at_rule_host_t *h, int64_t t,
                       at_rule_emit_fn emit, void *ud);
/* Time reached instant t (a deadline from at_rules_deadline) with no event. */
void at_rules_on_time(const at_ruleset_t *rs, at_rstate_t *s, const at_rule_host_t *h, int64_t t,
                      at_rule_emit_fn emit, void *ud);
/* The next instant after `after` at which a rule's answer may change
 * without an event, or AT_TIMER_NONE. session_end: when the user's session
 * ends (AT_RULE_NONE if none). */
int64_t at_rules_deadline(const at_ruleset_t *rs, const at_rstate_t *s, const at_tz_t *tz,
                          int64_t after, int64_t session_end);
/* The set changed from `from` to `to` (a control record) at instant t.
 * The user keeps state only of the versions evaluated for it (acting for
 * it, or shadow): the state of a version that is gone or no longer acts
 * for the user (a rollout took the user, or gave it back) goes to the
 * version of the name acting for it now (a shadow's to a shadow) when
 * that one reads the same events (filter, group_by, window kind and
 * aggregate field, a sliding window no longer, and enough entries kept:
 * docs/rules.md "What a new or changed rule sees"); otherwise its members
 * exit (reason "changed", or "deleted" when the name is gone) and the
 * state goes. Every segment evaluated for the user is then evaluated at
 * t. Recent fires of versions that are gone keep their name and version.
 * Member counts: recount with at_rstate_memberships afterwards (a state
 * taken over moves memberships without a transition). */
void at_rules_migrate(const at_ruleset_t *from, const at_ruleset_t *to, at_rstate_t *s,
                      const at_rule_host_t *h, int64_t t, at_rule_emit_fn emit, void *ud);
/* The user stops being a member of everything at t (announced exits with
 * reason) but keeps its window state (an identity merge takes it along). */
void at_rules_leave(const at_ruleset_t *rs, at_rstate_t *s, int64_t t, const char *reason,
                    const at_rule_host_t *h, at_rule_emit_fn emit, void *ud);
/* The user's state is dropped (expired or erased) at t: members exit with
 * reason. */
void at_rules_drop(const at_ruleset_t *rs, at_rstate_t *s, int64_t t, const char *reason,
                   const at_rule_host_t *h, at_rule_emit_fn emit, void *ud);

#endif
