/* at_rules.h - the rules subsystem: the expression language of segment and
 * trigger conditions (docs/rules.md, "Expressions"), and the definitions
 * of segments and triggers built on it.
 *
 * THREAD SAFETY: compiling runs on the calling thread (the env callbacks
 * are called on it, before at_expr_compile returns). A compiled expression
 * is immutable: any number of threads may evaluate it at the same time.
 * Evaluation takes no lock, allocates nothing and never reads the clock.
 */
#ifndef AT_RULES_H
#define AT_RULES_H

#include "at_core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ==== expressions =======================================================
 * Conditions over an event and the user's live profile, such as
 *   type == "view_item" && context.device == "mobile"
 *   hour(timestamp, context.timezone) >= 18
 *   affinity("electronics") > 0.4 && profile.counters.purchase >= 1
 * The language (names, types, operators, missing values) is defined in
 * docs/rules.md; this is how a host compiles and evaluates it.
 */

/* Limits: past them a compile fails with AT_ETOOBIG and a message. */
#define AT_EXPR_MAX_LEN 8192 /* bytes of expression text */
#define AT_EXPR_MAX_DEPTH 64 /* nesting of the expression tree (&&/|| chains count once) */

/* ---- values --------------------------------------------------------------
 * What a slot holds for one evaluation, and what an evaluation returns.
 * Strings and JSON text are borrowed, never NUL-terminated: use len. */
enum {
    AT_VAL_MISSING = 0, /* absent; as a truth value: unknown */
    AT_VAL_NULL,        /* JSON null: treated as missing by every operator */
    AT_VAL_BOOL,
    AT_VAL_NUM,  /* double */
    AT_VAL_STR,  /* UTF-8 bytes s[0..len) */
    AT_VAL_TIME, /* ms since the epoch, UTC */
    AT_VAL_DUR,  /* ms */
    AT_VAL_LIST, /* a list literal: list[0..len) */
    AT_VAL_JSON, /* a JSON array or object: its raw text s[0..len) */
    AT_VAL_ANY,  /* static type only: known at run time (properties.*, context.*, traits) */
};

/* Flags of a string value made by lower() / upper(): the bytes are the
 * original ones and are to be read case-folded (ASCII only). at_val_copy()
 * writes the folded text. */
enum {
    AT_VAL_F_LOWER = 1,
    AT_VAL_F_UPPER = 2,
};

typedef struct at_val {
    uint8_t type;  /* AT_VAL_* */
    uint8_t flags; /* AT_VAL_F_* for strings; a host sets 0 */
    uint16_t pad_;
    uint32_t len; /* string or JSON bytes, list elements */
    union {
        double num;
        int64_t ms; /* time or duration */
        bool b;
        const char *s; /* string or JSON text */
        const struct at_val *list;
    } u;
} at_val_t;

static inline at_val_t at_val_missing(void)
{
    at_val_t v = {.type = AT_VAL_MISSING};
    return v;
}
static inline at_val_t at_val_bool(bool b)
{
    at_val_t v = {.type = AT_VAL_BOOL, .u.b = b};
    return v;
}
static inline at_val_t at_val_num(double d)
{
    at_val_t v = {.type = AT_VAL_NUM, .u.num = d};
    return v;
}
static inline at_val_t at_val_str(const char *s, size_t n)
{
    at_val_t v = {.type = AT_VAL_STR, .len = (uint32_t)n, .u.s = s};
    return v;
}
static inline at_val_t at_val_time(int64_t ms)
{
    at_val_t v = {.type = AT_VAL_TIME, .u.ms = ms};
    return v;
}
static inline at_val_t at_val_dur(int64_t ms)
{
    at_val_t v = {.type = AT_VAL_DUR, .u.ms = ms};
    return v;
}
/* A JSON array or object, by its raw text (as sent: escapes undecoded). */
static inline at_val_t at_val_json(const char *s, size_t n)
{
    at_val_t v = {.type = AT_VAL_JSON, .len = (uint32_t)n, .u.s = s};
    return v;
}

/* Copies the text of string v (len bytes, case-folded as its flags say)
 * into dst, which holds at least v->len bytes. No NUL is written. */
void at_val_copy(const at_val_t *v, char *dst);
/* The name of a type code ("string", "time", ...): static storage. */
const char *at_val_type_name(int type);

/* ---- compiling -------------------------------------------------------------
 * The language knows which names exist and their types; the host decides
 * how each field is fetched and hands out slots for them. */
enum {
    AT_EXPR_NO_PROFILE = 1, /* profile.*, affinity() and in_segment() are refused */
    AT_EXPR_BOOL = 2,       /* the expression must be a condition (bool or any) */
};

typedef struct at_expr_env {
    /* Maps a field path (canonical text, docs/rules.md: "properties.price",
     * "profile.counters.purchase", 'properties["my key"]') to a host slot
     * >= 0; called once per distinct path. May refuse with < 0 after
     * writing a reason into why (whylen bytes). NULL: the n-th distinct
     * path gets slot n. */
    int (*field)(void *ud, const char *path, size_t n, char *why, size_t whylen);
    /* Maps a segment name (for in_segment) to an id >= 0, or < 0 when
     * unknown. NULL: in_segment() is refused. */
    int (*segment)(void *ud, const char *name, size_t n);
    void *ud;
    unsigned flags; /* AT_EXPR_* */
} at_expr_env_t;

/* A compile error: where (1-based, in the expression's text; columns count
 * characters, not bytes) and why. */
typedef struct at_expr_err {
    int line;
    int col;
    size_t pos;       /* byte offset, <= the text's length */
    char reason[256]; /* "unknown function 'huor' (did you mean 'hour'?)" */
    char msg[288];    /* the same prefixed by "line:col: " */
} at_expr_err_t;

typedef struct at_expr at_expr_t;

/* Compiles src[0..len) (UTF-8; need not be NUL-terminated). env is
 * borrowed for the call (NULL: all defaults). On success *out is owned,
 * free with at_expr_free(). Returns 0, AT_EPARSE (syntax), AT_EINVALID
 * (names, types, arity) or AT_ETOOBIG (limits), with err filled (err may
 * be NULL). */
int at_expr_compile(const char *src, size_t len, const at_expr_env_t *env, at_expr_t **out,
                    at_expr_err_t *err);
void at_expr_free(at_expr_t *e); /* NULL is fine */

/* One step of a canonical path: a member name or an array index. */
typedef struct at_expr_step {
    const char *s; /* the name's bytes (decoded), NULL for an index */
    size_t len;
    int64_t index; /* >= 0 for an index [N], -1 for a name */
} at_expr_step_t;

/* Splits canonical path text (as handed to env->field) into at most max
 * steps: "properties.items[0].sku" gives properties, items, [0], sku.
 * Quoted names are decoded into buf (buflen bytes; path's length always
 * suffices); other names borrow from path. Returns the number of steps,
 * or AT_EINVALID (not canonical text) or AT_ETOOBIG (more than max). */
int at_expr_path_split(const char *path, size_t n, at_expr_step_t *steps, int max, char *buf,
                       size_t buflen);

/* ---- introspection: what an expression depends on --------------------- */
typedef struct at_expr_field {
    const char *path; /* canonical text, NUL-terminated, owned by the expression */
    uint32_t len;
    int slot;     /* as the env's resolver gave it */
    uint8_t type; /* static type: AT_VAL_* or AT_VAL_ANY */
    bool profile; /* a profile.* path */
} at_expr_field_t;

enum {
    AT_EXPR_READS_EVENT = 1,    /* an event field (not profile.*) */
    AT_EXPR_READS_PROFILE = 2,  /* a profile field, affinity() or in_segment() */
    AT_EXPR_READS_NOW = 4,      /* now: the value changes with time alone */
    AT_EXPR_READS_AFFINITY = 8, /* affinity() */
    AT_EXPR_READS_SEGMENT = 16, /* in_segment() */
};

/* The fields the compiled code reads (each once), borrowed; *n their count. */
const at_expr_field_t *at_expr_fields(const at_expr_t *e, size_t *n);
/* The segment ids in_segment() refers to (each once), borrowed. */
const int *at_expr_segments(const at_expr_t *e, size_t *n);
unsigned at_expr_reads(const at_expr_t *e); /* AT_EXPR_READS_* bits */
static inline bool at_expr_reads_profile(const at_expr_t *e)
{
    return (at_expr_reads(e) & AT_EXPR_READS_PROFILE) != 0;
}
/* The static type of the expression's value: AT_VAL_* or AT_VAL_ANY. */
int at_expr_type(const at_expr_t *e);
/* Appends a readable listing of the compiled code to out (tests, tools). */
int at_expr_disasm(const at_expr_t *e, at_buf_t *out);

/* ---- evaluating ----------------------------------------------------------
 * What one evaluation reads. Any thread; the callbacks run on it. */
typedef struct at_expr_rt {
    /* The value of a slot for this evaluation; out is preset to missing.
     * Strings are borrowed until the evaluation returns. Required when
     * the expression reads fields. */
    void (*field)(void *ctx, int slot, at_val_t *out);
    /* The user's affinity to a category, in [0, 1]. NULL: missing. */
    double (*affinity)(void *ctx, const char *cat, size_t n);
    /* Whether the user is in the segment. NULL: unknown. */
    bool (*in_segment)(void *ctx, int segment_id);
    int64_t now_ms; /* the evaluation instant: the event's time or a timer's */
    void *ctx;
} at_expr_rt_t;

/* Whether the condition holds: true only when it evaluates to true
 * (false, unknown and non-bool values do not hold). */
bool at_expr_eval_bool(const at_expr_t *e, const at_expr_rt_t *rt);
/* The value of any expression into *out (an unknown truth value or an
 * absent result is AT_VAL_MISSING). Strings in *out are borrowed from
 * the expression or from the slots. Never fails: returns 0. */
int at_expr_eval(const at_expr_t *e, const at_expr_rt_t *rt, at_val_t *out);

/* ---- having clauses ----------------------------------------------------
 * `having:` of a segment: one aggregate compared with a number, such as
 * `count > 3`, `sum(properties.revenue) > 500`, `distinct(item_id) >= 5`
 * or mirrored `3 < count`. */
typedef enum {
    AT_AGG_COUNT,
    AT_AGG_SUM,
    AT_AGG_AVG,
    AT_AGG_MIN,
    AT_AGG_MAX,
    AT_AGG_DISTINCT,
} at_agg_kind_t;

typedef enum {
    AT_CMP_EQ,
    AT_CMP_NE,
    AT_CMP_LT,
    AT_CMP_LE,
    AT_CMP_GT,
    AT_CMP_GE,
} at_cmp_t;

typedef struct at_having {
    uint8_t agg;      /* at_agg_kind_t */
    uint8_t cmp;      /* at_cmp_t, with the aggregate on the left */
    int slot;         /* the field's slot from env->field; -1 for count */
    double threshold; /* finite */
} at_having_t;

/* Parses a having clause. env resolves the field as for expressions
 * (profile fields are refused: aggregates read the window's events).
 * Returns 0, AT_EPARSE, AT_EINVALID or AT_ETOOBIG with err filled. */
int at_expr_having_parse(const char *src, size_t len, const at_expr_env_t *env, at_having_t *out,
                         at_expr_err_t *err);
/* Whether an aggregate's value satisfies the clause. */
bool at_expr_having_holds(const at_having_t *h, double value);
const char *at_agg_name(int agg); /* "count", "sum", ... */

/* ==== segments and triggers ============================================= */

#endif
