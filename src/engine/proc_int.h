/* proc_int.h - what the files of the partition processor share (proc.c
 * records and time, proc_user.c user values and fields, proc_ident.c
 * identity and erasure, proc_ckpt.c checkpoints and digests).
 *
 * A user's value in keyed state: u8 AT_PROC_FORMAT, u8 kind; for a user:
 * varint profile length, the profile's encoding, the rules' encoding; for
 * an alias: str target key, varint the merge record's offset.
 *
 * The partition's string dictionary (pr->dict, the strings profiles store
 * as ids) is checkpointed beside the users: key AT_PROC_DICT_KEY and the
 * id as 4 bytes big-endian, value u8 AT_PROC_FORMAT, u8 AT_PROC_DICT, the
 * bytes. No user key starts with that byte.
 *
 * THREAD SAFETY: the partition's thread.
 */
#ifndef AT_PROC_INT_H
#define AT_PROC_INT_H

#include "at_json.h"
#include "proc.h"

#define AT_PROC_USER 1
#define AT_PROC_ALIAS 2
#define AT_PROC_DICT 3
#define AT_PROC_ITEM 4 /* an item of the recommender (at_reco.h), key AT_RECO_KEY + index */
#define AT_PROC_DICT_KEY '\x01'
#define AT_PROC_DICT_ENTRIES 65536    /* per partition */
#define AT_PROC_DICT_BYTES (4u << 20) /* per partition */
#define AT_PROC_MAX_STEPS 16

/* What processing reads of one event, taken from its JSON once: the
 * profile's fields and the value of every event field of the rule set.
 * Strings point into the event's JSON (or into mem for decoded ones). */
typedef struct at_eview {
    at_pevent_t pev;
    const at_ruleset_t *rs; /* the set the slots are for */
    at_val_t *slot;         /* [nfp]; profile fields are left missing */
    void *mem;              /* owned: slots, purchase items, decoded strings */
    size_t mem_bytes;
} at_eview_t;

/* A pending event: waits in the reorder buffer for the watermark. */
#define AT_PEV_GROUP 16 /* a group kept in the item itself */

typedef struct at_pev {
    at_pend_t h;              /* ts, id, seq (its position: see at_proc__pev_new) */
    struct at_pev *older;     /* the user's pending events in (ts, id) order; the */
    struct at_pev *newer;     /* slot's aux (at_pev_user_t) points at the newest */
    struct at_pev_user *user; /* that aux, while in the list */
    /* the early path's view, read with the list (so next to it): facts.f
     * is fact1 for one fact whose group fits group1, else in facts_mem */
    at_rule_facts_t facts;
    at_rule_fact_t fact1;
    char group1[AT_PEV_GROUP];
    void *facts_mem;
    uint32_t slot;
    int64_t recv;
    int64_t offset; /* input offset of the record it came in */
    at_eview_t view;
    uint32_t json_len;
    char *json;  /* into data */
    char data[]; /* id, NUL, json, NUL */
} at_pev_t;

/* A user's pending events, what the slot's aux points to while there are
 * any: the list, and their times and facts in an array in the same order,
 * which the early path reads instead of walking the list (cold nodes, one
 * after another: the array is one read, the facts' lines then come in
 * parallel). The array is v[first .. first + n): applying takes the
 * oldest, so it moves first rather than the rest. It starts in the same
 * block as the head (one allocation, and the head's line holds the first
 * entries that both paths read); a user with more pending events than
 * that moves it to its own. */
#define AT_PEV_INLINE 13 /* the block is then 256 bytes with malloc's header */

typedef struct at_pev_user {
    at_pev_t *newest;
    uint32_t n, cap, first;
    at_rule_pending_t *v; /* oldest first; inl or its own allocation */
    at_rule_pending_t inl[AT_PEV_INLINE];
} at_pev_user_t;

/* A field of the rule set, prepared for fetching. */
enum {
    AT_FP_NONE,
    AT_FP_TIMESTAMP,
    AT_FP_RECEIVED,
    AT_FP_EVENT, /* a path from the event's root */
    AT_FP_COUNTER,
    AT_FP_FIRST,
    AT_FP_LAST,
    AT_FP_SESS_START,
    AT_FP_SESS_EVENTS,
    AT_FP_SESS_PAGES,
    AT_FP_SESS_DURATION,
    AT_FP_TRAIT, /* a path inside the traits */
};

typedef struct at_fpath {
    uint8_t kind;
    int nsteps;
    at_expr_step_t steps[AT_PROC_MAX_STEPS];
    char *buf;  /* owned: decoded names the steps point into */
    char *path; /* owned copy the steps may borrow */
} at_fpath_t;

struct at_proc {
    int p;
    at_proc_cfg_t cfg;
    at_proc_ops_t ops;
    void *ud;
    at_keyed_t *users;
    at_sdict_t *dict;     /* strings profiles share, as ids */
    at_reco_part_t *reco; /* the partition's item aggregates */
    at_reorder_t pend;
    at_wm_t wm;
    at_ruleset_t *rs;
    at_fpath_t *fp;
    size_t nfp;
    int64_t next_offset;    /* the next input offset to process */
    int64_t refill_until;   /* records below this (after a restore) only refill the buffer */
    int64_t refill_trusted; /* the restored largest trusted time */
    int64_t out_next;       /* the next output offset */
    int64_t out_suppress;   /* outputs below this are not handed out again */
    int64_t *hwm;           /* [P] per-source high-water marks, -1: none */
    at_member_count_t *members;
    size_t nmembers;
    at_proc_stats_t st;
    at_arena_t arena;  /* scratch of one record */
    at_buf_t enc, msg; /* scratch encodings */
};

/* A user's state, decoded for one step of processing. Strings point into
 * the keyed value or the scratch arena: valid until the value is stored. */
typedef struct at_user {
    uint32_t slot;
    const char *key;
    size_t klen;
    bool alias;
    at_pstr_t target;
    int64_t alias_offset;
    at_profile_t prof;
    at_rstate_t rst;
    uint64_t degraded0; /* rst.degraded when loaded: stores count the growth */
} at_user_t;

/* What rule expressions read while one event (or none, at a timer) is
 * applied to one user. */
typedef struct at_host {
    at_proc_t *pr;
    const at_eview_t *view; /* the event's fields, or NULL (timers) */
    int64_t ts, recv;
    int64_t now;
    const at_user_t *u;
    const at_json_t *traits;
    bool traits_done;
    at_val_t *cache; /* [nfp] each field fetched once per host (one event) */
    uint8_t *cached;
    at_rule_host_t rh;
} at_host_t;

/* proc_user.c */
void at_proc__load(at_proc_t *pr, uint32_t slot, at_user_t *u);
/* Decodes a value (as stored, or as encoded without the dictionary) that
 * is not in the table, e.g. a handoff's. */
void at_proc__decode(at_proc_t *pr, const uint8_t *v, size_t n, at_user_t *u);
/* The value of u into b (reset first); with the partition's dictionary, or
 * with every string written out when dict is NULL (state that leaves the
 * partition, digests). */
void at_proc__encode(at_user_t *u, at_sdict_t *dict, at_buf_t *b);
void at_proc__store(at_proc_t *pr, at_user_t *u);
/* Whether the live slot holds an alias, and its target. */
bool at_proc__alias_at(const at_proc_t *pr, uint32_t slot, at_pstr_t *target);
/* Stores u and sets its timer to its next deadline after `after`. */
void at_proc__store_at(at_proc_t *pr, at_user_t *u, int64_t after);
void at_proc__store_alias(at_proc_t *pr, uint32_t slot, at_pstr_t target, int64_t offset);
void at_proc__host(at_proc_t *pr, at_host_t *h, const at_user_t *u, const at_eview_t *view,
                   int64_t ts, int64_t recv, int64_t now);
void at_proc__pevent(const at_json_t *root, const char *src, int64_t ts, at_pevent_t *ev,
                     at_arena_t *arena);
/* Parses json (which must stay where it is while the view is used) into v.
 * With own (a pending event's view), what does not point into json is
 * copied into v->mem; else it stays in the scratch arena. Returns false
 * when json is not an object (cannot happen for logged events). */
bool at_proc__view(at_proc_t *pr, const char *json, size_t len, int64_t ts, at_eview_t *v,
                   bool own);
void at_proc__view_free(at_eview_t *v);
/* The profile's fields of event json into *ev and the rule set's event
 * fields into slot[0..nfp), from the event's tree (decoded strings in
 * pr->arena, the others into json); false when json is not an object. */
bool at_proc__view_tree(at_proc_t *pr, const char *json, size_t len, int64_t ts, at_pevent_t *ev,
                        at_val_t *slot);
/* proc_canon.c: the same from canonical event json without a tree (every
 * string points into json); false when json is not of the canonical shape
 * or holds what only the tree reads right (then *ev and slot are
 * undefined). Borrows json; scratch from pr->arena. */
bool at_proc__canon(at_proc_t *pr, const char *json, size_t len, int64_t ts, at_pevent_t *ev,
                    at_val_t *slot);
void at_proc__prepare_fields(at_proc_t *pr);
/* The live view of the user in slot (AT_KEYED_NONE allowed): the stored
 * state with the pending events applied to the profile; *pending (may be
 * NULL) and *npend the pending events, oldest first. False (nothing
 * loaded) for no user or an alias. */
bool at_proc__live(at_proc_t *pr, uint32_t slot, at_user_t *u, at_pev_t ***pending, size_t *npend);
/* Classifies and splits one field path (owned copies in f). */
void at_proc__fpath_init(at_fpath_t *f, const char *path, size_t n);
void at_proc__fpath_free(at_fpath_t *f);
/* The value of a field that is not an event field (profile.*, timestamp,
 * received_at) for host h. */
void at_proc__fetch_fp(at_host_t *h, const at_fpath_t *f, at_val_t *out);
/* The JSON value at steps s[0..n) below v, or NULL; and a JSON value as
 * an expression value (strings borrowed from src). */
const at_json_t *at_proc__walk(const at_json_t *v, const at_expr_step_t *s, int n);
void at_proc__jval(const at_json_t *v, const char *src, at_val_t *out);
void at_proc__free_fields(at_proc_t *pr);
int64_t at_proc__deadline(at_proc_t *pr, const at_user_t *u, int64_t after);
void at_proc__emit(void *ud, const at_rule_out_t *o);

/* proc.c */
at_pev_t *at_proc__pev_new(at_proc_t *pr, uint32_t slot, const char *id, size_t id_len,
                           const char *json, size_t json_len, int64_t ts, int64_t recv,
                           int64_t offset);
void at_proc__pev_free(at_proc_t *pr, at_pev_t *it);
void at_proc__pending_add(at_proc_t *pr, at_pev_t *it, bool early);
void at_proc__pending_drop(at_proc_t *pr, uint32_t slot, bool free_them, at_pev_t **taken);
/* The user's pending events, oldest first, into an arena array; returns
 * how many. */
size_t at_proc__pending_of(at_proc_t *pr, uint32_t slot, at_pev_t ***out);
/* The same from a list taken with at_proc__pending_drop (its newest). */
size_t at_proc__pending_list(at_proc_t *pr, at_pev_t *newest, at_pev_t ***out);
void at_proc__apply(at_proc_t *pr, uint32_t slot, const at_eview_t *v, int64_t ts, int64_t recv,
                    bool late);
void at_proc__facts(at_proc_t *pr, at_pev_t *it);
int64_t at_proc__now(const at_proc_t *pr);

void at_proc__event(at_proc_t *pr, const char *key, size_t klen, const char *id, size_t id_len,
                    const char *json, size_t jlen, int64_t ts, int64_t recv, int64_t offset);

/* proc_ident.c. refill: replaying records before a restored checkpoint's
 * offset, where only pending events after watermark w are taken back. */
void at_proc__merge(at_proc_t *pr, const at_rec_t *rec);
void at_proc__handoff(at_proc_t *pr, const at_rec_t *rec, int64_t w, bool refill);
void at_proc__forwarded(at_proc_t *pr, const at_rec_t *rec, int64_t w, bool refill);
void at_proc__forward(at_proc_t *pr, const at_rec_t *rec, at_pstr_t target);
void at_proc__erase(at_proc_t *pr, const at_rec_t *rec);

#endif
