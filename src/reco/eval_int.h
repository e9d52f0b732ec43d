/* eval_int.h - what the files of the evaluation harness share and nobody
 * else uses: a set of 64-bit keys, a map of 32-bit keys to counts, a
 * growable array of ids, and the bootstrap's random numbers. Private to
 * src/reco/eval*.c and their tests.
 *
 * THREAD SAFETY: each object belongs to one thread.
 */
#ifndef AT_EVAL_INT_H
#define AT_EVAL_INT_H

#include "at_eval.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A set of uint64 keys (open addressing); UINT64_MAX cannot be a key. */
typedef struct at_eval__set {
    uint64_t *k;
    size_t cap, used; /* cap: 0 or a power of 2 */
} at_eval__set_t;

void at_eval__set_deinit(at_eval__set_t *s);
/* true when key was not in the set (it is now). */
bool at_eval__set_add(at_eval__set_t *s, uint64_t key);
bool at_eval__set_has(const at_eval__set_t *s, uint64_t key);

static inline uint64_t at_eval__pair(uint32_t a, uint32_t b)
{
    return ((uint64_t)a << 32) | b;
}

/* A map of uint32 keys (below UINT32_MAX) to uint32 counts. */
typedef struct at_eval__cnt {
    uint32_t key; /* key + 1; 0: empty */
    uint32_t n;
} at_eval__cnt_t;

typedef struct at_eval__map {
    at_eval__cnt_t *e;
    uint32_t cap, used; /* cap: 0 or a power of 2 */
} at_eval__map_t;

void at_eval__map_deinit(at_eval__map_t *m);
/* Adds one to key's count (absent: 0); returns the new count. */
uint32_t at_eval__map_inc(at_eval__map_t *m, uint32_t key);

/* A growable array of uint32. */
typedef struct at_eval__vec {
    uint32_t *v;
    uint32_t n, cap;
} at_eval__vec_t;

void at_eval__vec_push(at_eval__vec_t *v, uint32_t x);

/* splitmix64: the next value of the sequence whose state is *s. */
static inline uint64_t at_eval__rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Item-kNN's neighbourhood when the harness gives none (tests, no tuning). */
#define AT_EVAL_KNN_DEFAULT 50
/* Item-kNN looks at the user's most recent this many items
 * (docs/decisions/0008-eval.md). */
#define AT_EVAL_KNN_RECENT 10

#endif
