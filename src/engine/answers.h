/* answers.h - recent recommendation answers (answers.c): built on the
 * user's shard, served again from any thread while the user's state and
 * the request are the same and reco.cache has not passed.
 *
 * THREAD SAFETY: at_answers_touch and at_answers_put on the partition's
 * shard thread; at_answers_get, at_answers_gen and at_answers_stats from
 * any thread.
 */
#ifndef AT_ANSWERS_H
#define AT_ANSWERS_H

#include "at_core.h"
#include "at_reco.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct at_answers at_answers_t;

/* NULL (no cache) when per_partition or ttl_ms is not positive. */
at_answers_t *at_answers_new(int partitions, int per_partition, int64_t ttl_ms);
void at_answers_free(at_answers_t *a);

/* The hash of a namespaced user key, and of a request of that user. */
uint64_t at_answers_user(const char *key, size_t n);
uint64_t at_answers_tag(uint64_t user, const at_reco_req_t *req);
/* A record of the user was processed: the user's answers are invalid. */
void at_answers_touch(at_answers_t *a, int p, uint64_t user);
/* The user's generation now (store it with an answer built now). */
uint32_t at_answers_gen(at_answers_t *a, int p, uint64_t user);
/* Appends the answer to out when one is valid; false otherwise. */
bool at_answers_get(at_answers_t *a, int p, uint64_t user, uint64_t tag, int64_t now_ms,
                    at_buf_t *out);
void at_answers_put(at_answers_t *a, int p, uint64_t tag, uint32_t gen, int64_t now_ms,
                    const char *json, size_t len);
/* Lookups answered, and answers put, since the start (a NULL cache: zeros). */
void at_answers_stats(const at_answers_t *a, uint64_t *hits, uint64_t *built);

/* Why an answer had to be built (at_answers_put): */
enum {
    AT_ANSWERS_ABSENT,  /* none kept for the request: never asked, or replaced */
    AT_ANSWERS_CHANGED, /* a record of the user (or of one sharing its generation) since */
    AT_ANSWERS_EXPIRED, /* older than reco.answer_ttl */
    AT_ANSWERS_CAUSES
};
/* Answers put since the start, by cause (a NULL cache: zeros). */
void at_answers_causes(const at_answers_t *a, uint64_t out[AT_ANSWERS_CAUSES]);

#endif
