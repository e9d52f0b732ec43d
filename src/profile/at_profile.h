/* at_profile.h - live user profiles (DESIGN.md §4, §6): first and last
 * seen, counters by event type, category affinities with exponential time
 * decay, the last items interacted with, the current session, traits from
 * identify; identity merges; and the compact encoding a profile lives in.
 *
 * A profile is kept encoded (at_profile_encode) in the keyed state of its
 * partition. Processing decodes it into an at_profile_t, applies events and
 * encodes it back. Encoded bytes are the state: checkpoints store them as
 * they are, and the digest hashes them, so a profile decoded and encoded
 * again without a change gives the same bytes.
 *
 * Events are applied in event-time order (the reorder buffer sees to it),
 * except late ones, which still update counters, affinities, first/last
 * seen and recent items, but not the session.
 *
 * THREAD SAFETY: an at_profile_t belongs to one thread. Nothing here reads
 * the clock.
 */
#ifndef AT_PROFILE_H
#define AT_PROFILE_H

#include "at_core.h"
#include "at_stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AT_PROFILE_FORMAT 3
#define AT_PROFILE_MAX_COUNTERS 64
#define AT_PROFILE_MAX_CATEGORIES 64
#define AT_PROFILE_MAX_RECENT 100
#define AT_PROFILE_MAX_WEIGHTS 32
#define AT_PROFILE_NONE INT64_MIN /* a time that is not set */

typedef struct at_profile_weight {
    char type[48];
    double weight;
} at_profile_weight_t;

/* Settings (profile.* in the configuration). */
typedef struct at_profile_cfg {
    int64_t half_life_ms;      /* affinity half-life; default 7 d */
    int64_t session_gap_ms;    /* inactivity that ends a session; default 30 min */
    int recent_items;          /* items kept; default 20, at most AT_PROFILE_MAX_RECENT */
    int max_categories;        /* default 16 */
    int max_counters;          /* event types counted; default 32; others count as "other" */
    uint32_t max_traits_bytes; /* default 4096 */
    at_profile_weight_t weights[AT_PROFILE_MAX_WEIGHTS]; /* affinity weight by type */
    int nweights;
    double default_weight; /* for types not listed; default 0 */
} at_profile_cfg_t;

/* The defaults: view_item 1, add_to_cart 3, purchase 5, click 0.5,
 * page_view 0.25, search 0.25, others 0. */
void at_profile_cfg_defaults(at_profile_cfg_t *c);
double at_profile_weight(const at_profile_cfg_t *c, const char *type, size_t n);

/* What the profile reads of an event; strings borrowed. */
typedef struct at_pitem {
    at_pstr_t item;
    at_pstr_t category;
} at_pitem_t;

typedef struct at_pevent {
    at_pstr_t type;
    int64_t ts;
    at_pstr_t item;          /* may be empty */
    at_pstr_t category;      /* may be empty */
    at_pstr_t tz;            /* context.timezone, may be empty */
    at_pstr_t traits;        /* identify: the properties object as JSON text */
    const at_pitem_t *items; /* purchase: properties.items[] with item_id/category */
    size_t nitems;
} at_pevent_t;

enum { AT_PK_VIEW = 1, AT_PK_CART = 2, AT_PK_PURCHASE = 4, AT_PK_OTHER = 8 };

typedef struct at_profile {
    int64_t first_seen, last_seen; /* AT_PROFILE_NONE when no event yet */
    uint64_t events;               /* all events applied */
    uint64_t late;                 /* of which late */
    uint32_t ncounters;
    /* sym, here and below: the id of the dictionary entry the string was
     * decoded from, or AT_SDICT_NONE (not encoded: decode sets it).
     * Encoding with that dictionary writes it without interning the
     * string again (which reads the entry), and the recommender finds a
     * recent item by it without reading or hashing its id. */
    struct {
        at_pstr_t type;
        uint64_t n;
        uint32_t sym;
    } counters[AT_PROFILE_MAX_COUNTERS + 1]; /* + "other" */
    int64_t aff_ref;                         /* the time the scores below are decayed to */
    uint32_t naff;
    struct {
        at_pstr_t cat;
        float score;
        uint32_t sym;
    } aff[AT_PROFILE_MAX_CATEGORIES + 1];
    uint32_t nrecent; /* newest first */
    struct {
        at_pstr_t item;
        int64_t ts;    /* last interaction */
        uint8_t kinds; /* AT_PK_* seen */
        uint32_t sym;
    } recent[AT_PROFILE_MAX_RECENT + 1];
    struct {
        int64_t start, last; /* AT_PROFILE_NONE: no session yet */
        uint32_t events, pages;
    } session;
    at_pstr_t traits; /* JSON object text, or empty */
    at_pstr_t tz;     /* the newest event's context.timezone */
    uint32_t tz_sym;
    at_arena_t *arena; /* where strings created by apply/merge live (the caller's) */
} at_profile_t;

/* An empty profile whose new strings go to arena (borrowed). */
void at_profile_init(at_profile_t *p, at_arena_t *arena);
/* Decodes bytes made by at_profile_encode with the same dictionary (or
 * none); strings point into data and dict, which must outlive p's use.
 * Returns the bytes consumed or AT_ECORRUPT. */
int at_profile_decode(at_profile_t *p, const uint8_t *data, size_t n, const at_sdict_t *dict,
                      at_arena_t *arena);
/* Appends the encoding of p to out. The event types, categories and time
 * zone are stored as ids of dict (interned as needed) while it has room;
 * dict NULL stores them as bytes (for state that leaves the partition).
 * dict, when given, must be the one p was decoded with (if any): recent
 * items keep the ids they were decoded from. */
void at_profile_encode(const at_profile_t *p, at_sdict_t *dict, at_buf_t *out);

/* Applies one event. late: the event was at or before the watermark on
 * arrival (the session is left alone). */
void at_profile_apply(at_profile_t *p, const at_profile_cfg_t *cfg, const at_pevent_t *ev,
                      bool late);
/* Merges src (an anonymous profile handed off by identify) into dst:
 * counters add, affinities combine at the later reference time, recent
 * items interleave by time, sessions that overlap join, dst's traits win. */
void at_profile_merge(at_profile_t *dst, const at_profile_t *src, const at_profile_cfg_t *cfg);

/* The user's share of decayed interest in category prefix (itself and its
 * subcategories "prefix/..."), in [0, 1]; 0 without any interest. */
double at_profile_affinity(const at_profile_t *p, const char *prefix, size_t n);
/* The count of events of type (0 when none). */
uint64_t at_profile_counter(const at_profile_t *p, const char *type, size_t n);
/* Whether the session is still open at instant t. */
bool at_profile_session_open(const at_profile_t *p, const at_profile_cfg_t *cfg, int64_t t);
/* The instant the current session ends (last + gap), or AT_PROFILE_NONE. */
int64_t at_profile_session_end(const at_profile_t *p, const at_profile_cfg_t *cfg);

/* Appends the profile's JSON members (no braces) to out: "first_seen",
 * "last_seen", "events", "counters", "affinities", "recent_items",
 * "session", "traits". wm is the partition's watermark (for "active"). */
void at_profile_render(const at_profile_t *p, const at_profile_cfg_t *cfg, int64_t wm,
                       at_buf_t *out);

#endif
