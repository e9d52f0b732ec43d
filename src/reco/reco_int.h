/* reco_int.h - what the files of the recommender share: one partition's
 * item table (reco.c) and the reads over every partition (reco_read.c).
 *
 * THREAD SAFETY: see at_reco.h: the item table is written under the
 * part's write lock and read under its read lock.
 */
#ifndef AT_RECO_INT_H
#define AT_RECO_INT_H

#include "at_reco.h"

#include <pthread.h>

#define AT_RECO_F_CATALOG 1 /* the catalog has it (category, availability, attributes) */
#define AT_RECO_F_UNAVAILABLE 2
#define AT_RECO_BUCKETS 43  /* 12 + 24 + 7 */
#define AT_RECO_REBASE 30.0 /* half-lives past the base before values are rescaled */
#define AT_RECO_SID 16      /* ids of at most this many bytes are kept in the item too */

/* A neighbour; an item's list is sorted by index. */
typedef struct at_reco_nb {
    uint32_t item; /* index in the same part */
    float v;       /* decayed co-occurrence, scaled to the owner's base */
} at_reco_nb_t;

typedef struct at_reco_item {
    /* what a lookup and a pair update read come first: one or two cache
     * lines per item touched (docs/recommendations.md, "What is kept") */
    uint32_t hash; /* at_reco__hash of id */
    uint32_t id_len;
    char sid[AT_RECO_SID]; /* the id again when it fits: compared without reading id */
    at_reco_nb_t *nb;
    uint16_t nnb, cap;
    uint16_t minpos; /* where the weakest neighbour is, when minok */
    bool minok;
    bool dirty;
    int64_t base;    /* AT_PROFILE_NONE: no value yet */
    int64_t updated; /* event time of the last change */
    float pop;       /* decayed interaction weight, scaled to base */
    uint8_t flags;
    char *id;
    uint32_t cat_len;
    uint32_t attrs_len;
    char *cat;
    char *attrs;                 /* the catalog's attributes as JSON text, or NULL */
    int64_t tb[AT_RECO_WINDOWS]; /* the newest bucket of each window, INT64_MIN: none */
    float tv[AT_RECO_BUCKETS];
} at_reco_item_t;

struct at_reco_part {
    at_reco_cfg_t cfg;
    at_profile_cfg_t pcfg;
    pthread_rwlock_t lock;
    at_reco_item_t *items;
    uint32_t n, cap;
    uint32_t *slots; /* index + 1, 0: empty; a power of two, at most half full */
    uint32_t nslots;
    uint32_t *dirty;
    uint32_t ndirty, dirty_cap;
    /* by the dictionary id a profile's recent item was decoded from (its
     * partition's dictionary, at_profile.h): the item's index + 1, 0 not
     * known yet. Both ids and indices are never reused, so an entry once
     * set stays right; it is not state (rebuilt as lookups go). */
    uint32_t *by_sym;
    uint32_t nby_sym;
    int64_t clock; /* the newest event time seen, AT_PROFILE_NONE */
    size_t bytes;
};

/* The windows' bucket widths and counts, and where their buckets start in tv. */
extern const int64_t at_reco__wsize[AT_RECO_WINDOWS];
extern const int at_reco__wcount[AT_RECO_WINDOWS];
extern const int at_reco__woff[AT_RECO_WINDOWS];

/* The hash items are found by. */
uint32_t at_reco__hash(const char *s, size_t n);
/* The index of item id (whose hash is given), or AT_RECO_NONE. Under
 * either lock. */
uint32_t at_reco__find_h(const at_reco_part_t *rp, const char *id, size_t n, uint32_t hash);
uint32_t at_reco__find(const at_reco_part_t *rp, const char *id, size_t n);
/* An item's decayed value v (scaled to its base) at time t. */
double at_reco__at(const at_reco_part_t *rp, const at_reco_item_t *it, double v, int64_t t);
/* Its weight in window w ending at t. */
double at_reco__window_sum(const at_reco_item_t *it, int w, int64_t t);

#endif
