/* at_eval.h - the offline quality harness behind `attune eval` (DESIGN.md
 * §7, docs/decisions/0008-eval.md): datasets of interactions read into time
 * order, recommendation methods behind one interface, prequential next-item
 * evaluation with HR@k, MRR@k and NDCG@k and their bootstrap confidence
 * intervals, and the popularity and item-kNN baselines.
 *
 * THREAD SAFETY: nothing here is shared between threads. A dataset, a
 * result and a method instance belong to one thread at a time; the method
 * descriptors and the registry are constant.
 */
#ifndef AT_EVAL_H
#define AT_EVAL_H

#include "at_core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- interactions and datasets --------------------------------------------- */

typedef struct at_eval_ev { /* one interaction, in time order */
    const char *user;
    size_t user_len; /* the namespaced user key: "u:<user_id>", else "a:<anonymous_id>" */
    const char *item;
    size_t item_len; /* 0: an event without an item (observed, never scored) */
    const char *type;
    size_t type_len; /* "view_item" when the data has none */
    const char *category;
    size_t category_len; /* may be empty */
    int64_t ts_ms;
} at_eval_ev_t;

typedef enum {
    AT_EVAL_FMT_GUESS,     /* from the name and the first byte (at_eval_guess_format) */
    AT_EVAL_FMT_NDJSON,    /* attune events, one JSON object a line (DESIGN.md §3) */
    AT_EVAL_FMT_CSV,       /* a header row naming user, item, timestamp[, type][, category] */
    AT_EVAL_FMT_MOVIELENS, /* u.data: user TAB item TAB rating TAB unix seconds, no header */
} at_eval_format_t;

/* A dataset: interactions sorted by time, ties in input order. The
 * strings live in the dataset's arena. */
typedef struct at_eval_data {
    at_eval_ev_t *ev;
    size_t n, cap;
    at_arena_t arena;
} at_eval_data_t;

void at_eval_data_init(at_eval_data_t *d);
void at_eval_data_deinit(at_eval_data_t *d);

/* Reads the interactions of [src, src + len) in format fmt (not GUESS) into
 * d, which must be freshly initialized, and sorts them by timestamp, ties
 * by input line (a stable sort). Blank lines are skipped; a CR before a
 * line's LF is ignored. Returns 0, or AT_EPARSE / AT_EINVALID with err
 * naming the line and the field ("line 3, field 2 (timestamp): ..." in
 * CSV and u.data, "line 3, column 17 (timestamp): ..." in NDJSON, the
 * column of the value; err->field is the field's name when there is one),
 * or AT_ETOOBIG past 2^32 - 2 interactions. Borrows src: the strings are
 * copied. Thread: any. */
int at_eval_data_parse(at_eval_data_t *d, const char *src, size_t len, at_eval_format_t fmt,
                       at_error_t *err);
/* at_eval_data_parse over the file at path ("-": standard input), fmt GUESS
 * allowed. -errno when it cannot be read. */
int at_eval_data_load(at_eval_data_t *d, const char *path, at_eval_format_t fmt, at_error_t *err);

/* The format of a file from its name (.ndjson .jsonl .json: NDJSON; .csv
 * .tsv: CSV; u.data or .data: MovieLens), else from its first non-blank
 * byte ('{': NDJSON, anything else: CSV). */
at_eval_format_t at_eval_guess_format(const char *path, const char *src, size_t len);
/* "ndjson", "csv", "movielens" into a format; false when s is none of them. */
bool at_eval_format_parse(const char *s, at_eval_format_t *out);

/* ---- methods ----------------------------------------------------------------- */

/* true: do not return this item (the user has interacted with it). */
typedef bool (*at_eval_skip_fn)(void *ud, const char *item, size_t len);

/* What open() receives (as const void *). */
typedef struct at_eval_method_opts {
    size_t k;     /* the harness asks for lists of at most this length */
    size_t param; /* the value of the method's tuned parameter; 0 when it has none */
} at_eval_method_opts_t;

/* A recommendation method as the harness drives it. observe() shows the
 * method one interaction (in time order, every interaction of the data);
 * recommend() writes up to k item ids (borrowed until the next call on m)
 * best first into items/lens, never an item skip() says, and returns how
 * many. now_ms is the time of the interaction being predicted. */
typedef struct at_eval_method {
    const char *name;
    void *(*open)(const void *opts); /* opts: const at_eval_method_opts_t *, borrowed for the
                                        call; returns owned, freed by close() */
    void (*observe)(void *m, const at_eval_ev_t *ev);
    size_t (*recommend)(void *m, const char *user, size_t user_len, int64_t now_ms, size_t k,
                        at_eval_skip_fn skip, void *skip_ud, const char **items, size_t *lens);
    void (*close)(void *m);
    /* Optional: one integer parameter tuned on the tuning part of the data
     * (the value of grid with the best HR@k there, the first on a tie). */
    const char *param; /* its name, e.g. "neighbours"; NULL: nothing to tune */
    const size_t *grid;
    size_t ngrid;
} at_eval_method_t;

/* Most interactions so far (counts at the time of asking, repeats
 * included), ties by first appearance. */
extern const at_eval_method_t at_eval_popularity;
/* Item-kNN: cosine similarity between the items' sets of users seen so far;
 * a candidate scores the sum of its similarities to the user's 10 most
 * recent items of which it is one of the top-N neighbours; N
 * ("neighbours") is tuned. */
extern const at_eval_method_t at_eval_itemknn;
/* attune's own recommender, adapted to this interface in
 * src/reco/eval_attune.c. Registered only when that file exists (see
 * eval_methods.c): do not reference it elsewhere. */
extern const at_eval_method_t at_eval_attune;

/* The methods built in, in order (popularity, itemknn, attune when built):
 * returns their count; *out is static. */
size_t at_eval_methods(const at_eval_method_t *const **out);
/* The built-in method called name[0..n), or NULL. */
const at_eval_method_t *at_eval_method_find(const char *name, size_t n);

/* ---- the harness ----------------------------------------------------------- */

#define AT_EVAL_GRID_MAX 16
#define AT_EVAL_K_MAX 1000

typedef struct at_eval_opts {
    size_t k;           /* list length (1..AT_EVAL_K_MAX), default 10 */
    double tune;        /* the first fraction (by count, in time order) that tunes, default 0.1 */
    double warmup;      /* the first fraction only observed, never scored, default 0 */
    size_t limit;       /* use only the first limit interactions; 0: all */
    uint32_t resamples; /* bootstrap resamples, default 1000; 0: no intervals */
    uint64_t seed;      /* of the bootstrap, default 1 */
} at_eval_opts_t;

void at_eval_opts_default(at_eval_opts_t *o);

typedef struct at_eval_ci {
    double value, lo, hi; /* point estimate, 95% interval */
} at_eval_ci_t;

typedef struct at_eval_mresult {
    const at_eval_method_t *method;
    size_t param;                     /* the tuned value used, 0: none */
    size_t ngrid;                     /* tuning: the grid tried ... */
    size_t grid[AT_EVAL_GRID_MAX];    /* ... its values ... */
    double tune_hr[AT_EVAL_GRID_MAX]; /* ... and HR@k of each on the tuning part */
    at_eval_ci_t hr, mrr, ndcg;       /* on the scored part */
    uint64_t hits;                    /* scored interactions whose item was in the list */
    double seconds, tune_seconds;     /* in the method (open, observe, recommend, close) */
} at_eval_mresult_t;

typedef struct at_eval_result {
    at_eval_opts_t opts;
    size_t n;             /* interactions used */
    size_t users, items;  /* distinct, among them */
    size_t tune_end;      /* interactions [0, tune_end) tune */
    size_t score_from;    /* interactions [score_from, n) are scored */
    uint64_t tune_scored; /* new-item interactions scored while tuning */
    uint64_t scored;      /* new-item interactions scored */
    uint64_t repeats;     /* in the scored part, not scored: the user had the item */
    uint64_t no_item;     /* in the scored part, not scored: no item */
    size_t users_scored;  /* users with a scored interaction: the bootstrap's unit */
    size_t nm;
    at_eval_mresult_t *m; /* nm, in the order asked */
} at_eval_result_t;

/* Runs the prequential evaluation of the nm methods on d under o: each
 * method with a grid is tuned first (a run over [0, tune_end) per value),
 * then every method sees every interaction in order; at each interaction
 * [score_from, n) whose item the user has not had, each method is asked
 * for the user's top-k (skipping the user's items) before it observes the
 * interaction. Returns 0 with *res filled (free with
 * at_eval_result_free()), or AT_EINVALID with err for bad options.
 * Borrows d, methods and o. Thread: any (one run per thread). */
int at_eval_run(const at_eval_data_t *d, const at_eval_method_t *const *methods, size_t nm,
                const at_eval_opts_t *o, at_eval_result_t *res, at_error_t *err);
void at_eval_result_free(at_eval_result_t *res);

/* The result as a table for people (source names the dataset) and as one
 * JSON object (with a trailing newline); both append to b (no cap). The
 * JSON's "seconds" members are the only figures that vary between runs. */
void at_eval_write_table(at_buf_t *b, const at_eval_result_t *res, const char *source);
void at_eval_write_json(at_buf_t *b, const at_eval_result_t *res, const char *source);

#endif
