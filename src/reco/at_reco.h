/* at_reco.h - the online recommender (DESIGN.md §7): item-to-item
 * co-occurrence from what users interact with close together, weighted by
 * event type and decayed over time, with at most K neighbours per item;
 * trending items over sliding windows; the item catalog; and the blend of
 * them into one user's recommendations.
 *
 * State is kept per partition (at_reco_part_t), updated by the partition's
 * processing in log order, so it is as deterministic as the rest of the
 * partition's state: it is checkpointed with it (at_reco_changes,
 * at_reco_restore) and part of its digest. Reads merge every partition's
 * part (a catalog entry lives in the partition of the key "i:ITEM"; the
 * co-occurrences of an item are spread over the partitions of the users
 * who made them).
 *
 * Scores decay exponentially with reco.half_life: a neighbour's stored
 * value v means v * 2^-((t - base) / half_life) at time t, with the item's
 * own base, so an update costs one multiplication, not one per neighbour;
 * the base moves forward (every value rescaled) when the factor grows too
 * large for a float.
 *
 * THREAD SAFETY: a part is written by its partition's thread, which holds
 * the part's write lock around each update; reads from any thread take the
 * read lock of each part they visit (at_reco_read* do that themselves).
 * Nothing here reads the clock, except the trending cache's refresh on the
 * read side.
 */
#ifndef AT_RECO_H
#define AT_RECO_H

#include "at_core.h"
#include "at_profile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AT_RECO_FORMAT 1
#define AT_RECO_MAX_NEIGHBOURS 200
#define AT_RECO_NONE UINT32_MAX
#define AT_RECO_SEEDS 10 /* a user's most recent items that recommendations start from */

/* Settings (reco.* in the configuration). */
typedef struct at_reco_cfg {
    int neighbours;         /* K: neighbours kept per item and partition; default 100 */
    int64_t half_life_ms;   /* co-occurrence and popularity decay; default 30 d */
    int64_t pair_window_ms; /* items interacted with this close together pair up; default 30 min */
    int max_pairs; /* an interaction pairs with at most this many recent items; default 10 */
    double w_cooc, w_affinity, w_trending; /* the blend; defaults 1, 0.3, 0.1 */
    int64_t cache_ms; /* reads reuse merged item data this long; default 10 s */
} at_reco_cfg_t;

void at_reco_cfg_defaults(at_reco_cfg_t *c);

/* The trending windows: buckets of 5 min over 1 h, 1 h over 24 h, 1 d over
 * 7 d, aligned to the epoch (a window ends with the bucket of "now"). */
enum { AT_RECO_W1H = 0, AT_RECO_W24H = 1, AT_RECO_W7D = 2, AT_RECO_WINDOWS = 3 };
/* The window of a duration: 1h, 24h (or 1d), 7d exactly; -1 for others. */
int at_reco_window_of(int64_t ms);

typedef struct at_reco_part at_reco_part_t;

at_reco_part_t *at_reco_part_new(const at_reco_cfg_t *cfg, const at_profile_cfg_t *pcfg);
void at_reco_part_free(at_reco_part_t *rp);

/* ---- processing (the partition's thread) --------------------------------------- */
/* The user with profile p (after ev was applied to it) interacted as ev
 * says: the items of ev gain popularity and trending weight (the event
 * type's weight, profile.weights), and pair with the user's other recent
 * items within the pair window. Events without an item, or whose type
 * weighs 0, change nothing. The dictionary ids of p's recent items (sym)
 * must all be of one dictionary for a given part: the partition's. */
void at_reco_observe(at_reco_part_t *rp, const at_profile_t *p, const at_pevent_t *ev);
/* A catalog upsert (the value of an item record: {"item_id":..,
 * "category":..,"available":..,"attributes":{..}}) at event time ts.
 * Returns 0 or AT_EPARSE (the record is ignored). */
int at_reco_catalog(at_reco_part_t *rp, const char *json, size_t len, int64_t ts);

/* ---- checkpoints and digests (the partition's thread) -------------------------- */
typedef void (*at_reco_kv_fn)(void *ud, const char *key, size_t klen, const void *val, size_t vlen);
/* Items changed since the last call (all: every item) to fn, keyed
 * AT_RECO_KEY + 4-byte big-endian index, value u8 fmt, u8 kind, the item's
 * encoding; then forgets the changes. fmt and kind are the caller's (the
 * processor's format and its item kind). */
#define AT_RECO_KEY '\x02'
void at_reco_changes(at_reco_part_t *rp, bool all, uint8_t fmt, uint8_t kind, at_reco_kv_fn fn,
                     void *ud);
/* Restores one item from a value given to fn above. AT_ECORRUPT. */
int at_reco_restore(at_reco_part_t *rp, const char *key, size_t klen, const void *val, size_t vlen);
uint64_t at_reco_digest(at_reco_part_t *rp);
/* Items and bytes held. Any thread (under the read lock). */
size_t at_reco_items(at_reco_part_t *rp);
size_t at_reco_bytes(at_reco_part_t *rp);

/* ---- reads (any thread) -------------------------------------------------------- */
/* Every partition's part, in partition order: what reads merge. */
typedef struct at_reco_set {
    at_reco_part_t **parts;
    int n;
    struct at_reco_tcache *trend; /* the trending cache (owned) */
    bool trend_by_data_time;      /* refresh as data time moves, not with the clock (eval) */
    int64_t cache_ms;             /* merged item data is reused this long by a thread (the parts'
                                     reco.cache); 0: never (every read sees every update: tests, eval) */
    uint64_t gen;                 /* tells one set's cached data from another's */
} at_reco_set_t;

void at_reco_set_init(at_reco_set_t *s, at_reco_part_t **parts, int n);
void at_reco_set_deinit(at_reco_set_t *s);

/* What a request asks for. */
typedef struct at_reco_req {
    size_t n;             /* items wanted; 1..100 */
    const char *category; /* a category prefix the items must be in, or NULL */
    size_t category_len;
    const at_pstr_t *exclude; /* items not wanted */
    size_t nexclude;
    int window;                                           /* trending window (AT_RECO_W*) */
    bool (*skip)(void *ud, const char *item, size_t len); /* more exclusions, or NULL */
    void *skip_ud;
} at_reco_req_t;

/* One recommended item. Strings are borrowed from the result. */
typedef struct at_reco_hit {
    at_pstr_t item;
    at_pstr_t category;
    double score;
    int reason;    /* AT_RECO_R_* */
    at_pstr_t via; /* the recent item (viewed_with) or the category (affinity) behind it */
} at_reco_hit_t;
enum { AT_RECO_R_COOC = 1, AT_RECO_R_AFFINITY = 2, AT_RECO_R_TRENDING = 3 };

typedef struct at_reco_result {
    at_reco_hit_t *hits;
    size_t n;
    at_arena_t arena; /* where the strings live */
} at_reco_result_t;

void at_reco_result_init(at_reco_result_t *r);
void at_reco_result_deinit(at_reco_result_t *r);

/* The user's recommendations: neighbours of p's recent items, their
 * category affinities and trending items, blended; minus what they bought
 * and what they interacted with recently, unavailable items and req's
 * exclusions; only in req's category. A profile with no history (p NULL
 * or empty) gets trending items. */
void at_reco_user(at_reco_set_t *s, const at_profile_t *p, const at_reco_req_t *req,
                  at_reco_result_t *out);
/* Items seen together with item (scores: decayed co-occurrence over the
 * geometric mean of the two items' popularity). */
void at_reco_similar(at_reco_set_t *s, const char *item, size_t len, const at_reco_req_t *req,
                     at_reco_result_t *out);
/* The items with the most (type-weighted) interactions in req's window. */
void at_reco_trending(at_reco_set_t *s, const at_reco_req_t *req, at_reco_result_t *out);
/* Renders a result's items as a JSON array: [{"item_id","score","reason",
 * "because"|"category_of_interest"?,"category"?},..]. */
void at_reco_render(const at_reco_result_t *r, at_buf_t *out);

/* What is known of an item: {"item_id","category","available","attributes",
 * "popularity","catalog"}; AT_ENOTFOUND. */
int at_reco_item_render(at_reco_set_t *s, const char *item, size_t len, at_buf_t *out);
/* The newest event time any part has seen (AT_PROFILE_NONE: none): reads'
 * "now". */
int64_t at_reco_now(at_reco_set_t *s);

/* Builds the value of a catalog record from one item of POST /v1/items
 * (an object with item_id or id, category, available, attributes): the
 * canonical JSON into out (reset first), the item id into *id (owned:
 * free). Returns 0, AT_EPARSE or AT_EINVALID with err naming the field. */
int at_reco_item_value(const char *json, size_t len, at_buf_t *out, char **id, size_t *id_len,
                       at_error_t *err);

#endif
