/* rules_int.h - what the files of src/rules share and nobody else sees: the
 * expression compiler's tokens, tree and state (expr_lex.c, expr_parse.c,
 * expr_names.c, expr_check.c, expr_gen.c) and the bytecode the evaluator
 * runs (expr_eval.c, expr_value.c).
 *
 * The pipeline: UTF-8 check -> lexer -> recursive-descent parser building a
 * tree in an arena (names resolved, depth bounded) -> type check with
 * constant folding (folding runs the evaluator itself on the folded piece,
 * so compile time and run time can never disagree) -> code for a stack
 * machine whose depth is computed at compile time -> one block.
 *
 * THREAD SAFETY: a compile state belongs to one thread; a program is
 * immutable and read by any number of threads.
 */
#ifndef AT_RULES_INT_H
#define AT_RULES_INT_H

#include "at_rules.h"
#include "at_tz.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Stack slots of the evaluator: every program's depth is checked against
 * it at compile time (the tree depth bounds it well below). */
#define AT_EXPR__STACK (AT_EXPR_MAX_DEPTH + 8)

/* ---- bytecode --------------------------------------------------------------
 * One 8-byte instruction: op, a small operand a, a 16-bit index b
 * (constant, set, zone) and a 32-bit c (host slot, jump target, segment).
 * Comparison ops carry in a the mask of orderings that make them true. */
typedef struct at_ins {
    uint8_t op;
    uint8_t a;
    uint16_t b;
    int32_t c;
} at_ins_t;

/* Orderings of a comparison: bit 0 less, bit 1 equal, bit 2 greater. */
enum {
    AT_MASK_LT = 1,
    AT_MASK_EQ = 2,
    AT_MASK_GT = 4,
    AT_MASK_NE = 5,
    AT_MASK_LE = 3,
    AT_MASK_GE = 6,
};

enum {
    AT_OP_RET,    /* the value on top is the result */
    AT_OP_CONST,  /* push k[b] */
    AT_OP_LOAD,   /* push slot c */
    AT_OP_LOAD0,  /* push slot c, missing as number 0 (profile.counters) */
    AT_OP_NOW,    /* push rt->now_ms as a time */
    AT_OP_NOT,    /* 3-valued not */
    AT_OP_AND,    /* pop 2, push 3-valued and */
    AT_OP_OR,     /* pop 2, push 3-valued or */
    AT_OP_JFK,    /* top is false: jump to c, keeping it */
    AT_OP_JTK,    /* top is true: jump to c, keeping it */
    AT_OP_ISNULL, /* top := top is missing or null (a = 1: negated) */
    AT_OP_EXISTS, /* push: slot c present and not null (a = 1: negated) */
    AT_OP_TOBOOL, /* top := top when bool, else missing */
    /* comparisons, per static kind: two stack values, top and a constant
     * k[b], or slot c and a constant k[b] (a = mask | AT_FK_ZERO) */
    AT_OP_CMP_NUM,
    AT_OP_CMP_STR,
    AT_OP_CMP_I64,
    AT_OP_CMP_BOOL,
    AT_OP_CMP_DYN,
    AT_OP_CK_NUM,
    AT_OP_CK_STR,
    AT_OP_CK_I64,
    AT_OP_CK_BOOL,
    AT_OP_CK_DYN,
    AT_OP_FK_NUM,
    AT_OP_FK_STR,
    AT_OP_FK_I64,
    AT_OP_FK_BOOL,
    AT_OP_FK_DYN,
    AT_OP_IN,     /* top := top in set b (a = 1: not in) */
    AT_OP_FK_IN,  /* push: slot c in set b (a = 1: not in) */
    AT_OP_IN_DYN, /* pop needle, haystack (JSON array): push (a = 1: not in) */
    AT_OP_STRP,   /* pop 2, push string predicate a (AT_SP_*) */
    AT_OP_CK_STRP,
    AT_OP_FK_STRP,
    AT_OP_ARITH,     /* pop 2, push: operator a (AT_AR_*), kinds b (AT_AK_*) */
    AT_OP_NEG,       /* a: AT_VAL_NUM or AT_VAL_DUR */
    AT_OP_TOTIME,    /* a time, an RFC 3339 string or integer epoch ms -> time */
    AT_OP_TPART,     /* top := part a (AT_TP_*) of the time in zone tz[b] */
    AT_OP_TPART_DYN, /* pop zone name, time: push part a */
    AT_OP_FOLD,      /* top := string with fold flags a */
    AT_OP_LEN,
    AT_OP_ABS,
    AT_OP_AFF,   /* top := affinity(top) */
    AT_OP_AFFK,  /* push affinity(k[b]) */
    AT_OP_INSEG, /* push in_segment(c) */
    AT_OP__COUNT,
};

#define AT_FK_ZERO 0x80 /* in a of FK_*: the slot's missing value is 0 */

enum { AT_SP_STARTS, AT_SP_ENDS, AT_SP_CONTAINS };
enum { AT_AR_ADD, AT_AR_SUB, AT_AR_MUL, AT_AR_DIV, AT_AR_MOD };
/* Operand kinds of arithmetic: which types meet and what comes out. */
enum {
    AT_AK_NUM, /* number op number -> number */
    AT_AK_TT,  /* time - time -> duration */
    AT_AK_TD,  /* time +- duration -> time */
    AT_AK_DT,  /* duration + time -> time */
    AT_AK_DD,  /* duration +-% duration -> duration */
    AT_AK_DDN, /* duration / duration -> number */
    AT_AK_DN,  /* duration times or divided by number -> duration */
    AT_AK_ND,  /* number * duration -> duration */
};
enum { AT_TP_YEAR, AT_TP_MONTH, AT_TP_DAY, AT_TP_HOUR, AT_TP_MINUTE, AT_TP_SECOND, AT_TP_DOW };

/* A sorted run of constants k[first .. first+n) of one type, for `in`. */
typedef struct at_expr_set {
    uint32_t first;
    uint32_t n;
    uint8_t type; /* AT_VAL_STR, AT_VAL_NUM, AT_VAL_BOOL, AT_VAL_TIME, AT_VAL_DUR; ANY: empty */
} at_expr_set_t;

/* What the evaluator reads: borrowed views, during compiling into the
 * growing arrays, afterwards into the expression's one block. A list
 * constant keeps the index of its first element in u.ms. */
typedef struct at_prog {
    const at_ins_t *code;
    const at_val_t *k;
    const at_expr_set_t *sets;
    const at_tz_t *const *tzs;
} at_prog_t;

struct at_expr {
    at_prog_t prog;
    const at_expr_field_t *fields;
    size_t nfields;
    const int *segments;
    size_t nsegments;
    unsigned reads;
    int type;
    uint32_t ncode;
    uint32_t nk;
    uint32_t nsets;
    uint32_t ntzs;
    uint16_t max_stack;
};

/* Runs prog from instruction start; the result into *out. */
void at_rules__run(const at_prog_t *p, uint32_t start, const at_expr_rt_t *rt, at_val_t *out);

/* ---- values (expr_value.c): the primitives the evaluator is made of ---- */
int at_rules__scmp(const at_val_t *a, const at_val_t *b);       /* <0, 0, >0 by bytes, folded */
bool at_rules__seq(const at_val_t *a, const char *s, size_t n); /* a's folded text == s */
bool at_rules__strp(int kind, const at_val_t *a, const at_val_t *b); /* AT_SP_* on strings */
/* Whether needle equals an element of JSON array text j: 1, 0, or -1 when
 * j is not an array or the needle is not a string, number or bool. */
int at_rules__json_has(const at_val_t *j, const at_val_t *needle);
int64_t at_rules__json_len(const at_val_t *j); /* elements or members; -1: not JSON */
int64_t at_rules__utf8_len(const char *s, size_t n);
/* The order of a set's constants (strings: by length, then bytes) and the
 * search in it; v is of the set's type. */
int at_rules__set_cmp(const at_val_t *v, const at_val_t *k);
bool at_rules__set_has(const at_prog_t *p, const at_expr_set_t *set, const at_val_t *v);
/* -1, 0, 1; AT_ORD_UNEQUAL: different but without an order (bools);
 * AT_ORD_NONE: not comparable (types differ, NaN, JSON). */
enum { AT_ORD_UNEQUAL = 2, AT_ORD_NONE = 3 };
int at_rules__cmp_dyn(const at_val_t *a, const at_val_t *b);
void at_rules__to_time(at_val_t *v);
/* The range of times: instants outside are missing. */
#define AT_TIME_LIMIT 8640000000000000LL

/* ---- tokens (expr_lex.c) ------------------------------------------------ */
enum {
    AT_TK_EOF,
    AT_TK_IDENT,
    AT_TK_STR,
    AT_TK_NUM,
    AT_TK_DUR,
    AT_TK_LP,
    AT_TK_RP,
    AT_TK_LB,
    AT_TK_RB,
    AT_TK_COMMA,
    AT_TK_DOT,
    AT_TK_OROR,
    AT_TK_ANDAND,
    AT_TK_BANG,
    AT_TK_EQ,
    AT_TK_NE,
    AT_TK_LT,
    AT_TK_LE,
    AT_TK_GT,
    AT_TK_GE,
    AT_TK_PLUS,
    AT_TK_MINUS,
    AT_TK_STAR,
    AT_TK_SLASH,
    AT_TK_PCT,
};

typedef struct at_tok {
    uint8_t kind;
    bool is_int;  /* a number written without fraction or exponent */
    uint32_t pos; /* byte span in the source */
    uint32_t end;
    double num;
    int64_t ms;    /* duration */
    const char *s; /* identifier (in the source) or decoded string (arena) */
    uint32_t len;
} at_tok_t;

/* ---- tree (expr_parse.c) -------------------------------------------------- */
enum {
    AT_N_CONST, /* k */
    AT_N_FIELD, /* field table entry fi */
    AT_N_NOW,
    AT_N_LIST, /* kids: constants after checking */
    AT_N_NEG,
    AT_N_NOT,
    AT_N_AND,    /* n-ary */
    AT_N_OR,     /* n-ary */
    AT_N_CMP,    /* op: AT_MASK_* */
    AT_N_IN,     /* op: 1 for not in */
    AT_N_STRP,   /* op: AT_SP_* (contains also on lists and JSON) */
    AT_N_ARITH,  /* op: AT_AR_* */
    AT_N_CALL,   /* op: AT_FN_* */
    AT_N_ISNULL, /* x == null (op 0) or x != null (op 1) */
    AT_N_TOTIME, /* conversion inserted by the checker */
    AT_N_TOBOOL, /* a single `any` operand kept as a truth value */
};

enum {
    AT_FN_EXISTS,
    AT_FN_YEAR,
    AT_FN_MONTH,
    AT_FN_DAY,
    AT_FN_HOUR,
    AT_FN_MINUTE,
    AT_FN_SECOND,
    AT_FN_DOW,
    AT_FN_LOWER,
    AT_FN_UPPER,
    AT_FN_LEN,
    AT_FN_ABS,
    AT_FN_AFFINITY,
    AT_FN_IN_SEGMENT,
    AT_FN_TIME,
    AT_FN__COUNT,
};

/* How a comparison compares, decided by the checker (node aux). */
enum { AT_CT_NUM, AT_CT_STR, AT_CT_I64, AT_CT_BOOL, AT_CT_DYN };

typedef struct at_node at_node_t;
struct at_node {
    uint8_t kind; /* AT_N_* */
    uint8_t op;
    uint8_t type;    /* static type once checked: AT_VAL_* or AT_VAL_ANY */
    uint8_t elem;    /* a list's element type */
    uint16_t depth;  /* 1 + the deepest child */
    uint32_t pos;    /* where an error about the node points */
    uint32_t op_pos; /* the operator's position, for binary nodes */
    at_val_t k;      /* AT_N_CONST */
    int fi;          /* AT_N_FIELD: index in the field table */
    int aux;         /* call: segment id or zone index */
    uint32_t nkids;
    at_node_t **kids;
};

/* ---- the namespace (expr_names.c) ---------------------------------------- */
typedef struct at_fn_info {
    const char *name;
    uint8_t id; /* AT_FN_* */
    uint8_t min_args;
    uint8_t max_args;
} at_fn_info_t;

const at_fn_info_t *at_rules__fn_find(const char *s, size_t n);
/* The closest of candidates to s (edit distance <= 2 and < len), or NULL. */
const char *at_rules__suggest(const char *s, size_t n, const char *const *cands, size_t ncands);
extern const char *const at_rules__fn_names[];
extern const size_t at_rules__fn_count;

/* One segment of a path as written. */
typedef struct at_pseg {
    const char *s;
    uint32_t len;
    uint32_t pos;
    int64_t index; /* >= 0: an array index [N]; -1: a name */
    bool quoted;
} at_pseg_t;

/* What a path means: its static type, canonical text and whether it is a
 * profile field or now. Fills why (a full sentence) and the position of
 * the offending segment when the path does not exist. */
typedef struct at_path_info {
    uint8_t type;
    bool profile;
    bool now;
    bool zero; /* missing reads as 0 */
} at_path_info_t;

#define AT_XC_HAVING 0x100 /* internal flag: resolving the field of an aggregate */
int at_rules__path_resolve(const at_pseg_t *segs, size_t nsegs, unsigned flags,
                           at_path_info_t *info, at_buf_t *canon, uint32_t *err_pos, char *why,
                           size_t whylen);

/* ---- compile state ---------------------------------------------------------- */
typedef struct at_cfield {
    char *path; /* canonical, NUL-terminated, heap */
    uint32_t len;
    int slot;
    uint8_t type;
    bool profile;
    bool zero;
    bool used; /* read by the final code */
} at_cfield_t;

typedef struct at_xc {
    const char *src;
    size_t len;
    const at_expr_env_t *env;
    unsigned flags;
    at_arena_t arena;
    /* lexer */
    size_t pos;
    at_tok_t tok;
    int depth;
    /* error */
    int rc;
    at_expr_err_t *err;
    /* tables */
    at_cfield_t *fields;
    size_t nfields, capfields;
    int *segs;
    size_t nsegs, capsegs;
    at_val_t *k;
    size_t nk, capk;
    at_expr_set_t *sets;
    size_t nsets, capsets;
    const at_tz_t **tzs;
    size_t ntzs, captzs;
    at_ins_t *code;
    size_t ncode, capcode;
    int sdepth; /* stack depth while generating */
    int smax;
    unsigned reads;
    bool having; /* parsing a having clause: aggregates allowed */
} at_xc_t;

/* Records the first error (later ones are ignored): the position pos is a
 * byte offset in the text, clamped to its length. Returns rc. */
int at_rules__fail(at_xc_t *c, int rc, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The 1-based line and column (in characters) of byte offset pos. */
void at_rules__where(const char *src, size_t len, size_t pos, int *line, int *col);

/* Decodes a string literal's body s[0..n) (no quotes) into out (n bytes
 * suffice). Returns 0, or -1 with the offending offset and a reason. */
int at_rules__unescape(const char *s, size_t n, char *out, size_t *outlen, size_t *errpos,
                       const char **why);
void at_rules__lex_init(at_xc_t *c);
int at_rules__next(at_xc_t *c); /* reads the next token into c->tok; 0 or c->rc */
const char *at_rules__tok_text(const at_xc_t *c, char *buf, size_t n); /* for messages */
bool at_rules__tok_word(const at_tok_t *t, const char *w);             /* the identifier w */

/* The tree of the whole text, or NULL with c->rc set. Nodes live in
 * c->arena. */
at_node_t *at_rules__parse(at_xc_t *c);
at_node_t *at_rules__node(at_xc_t *c, int kind, uint32_t pos, uint32_t nkids);
/* The rest of a path whose first name is first (already read; c->tok is
 * the token after it): a field or now node, or NULL with c->rc set. Asks
 * the env's resolver for the slot of a new field. */
at_node_t *at_rules__parse_path(at_xc_t *c, const at_tok_t *first);
/* Types and folds the tree in place. Returns 0 or c->rc. */
int at_rules__check(at_xc_t *c, at_node_t *n);
/* Appends the code of a checked tree, keeping the stack depth and its
 * maximum in c. Returns 0 or c->rc. */
int at_rules__emit(at_xc_t *c, const at_node_t *n);
int at_rules__emit_ins(at_xc_t *c, int op, int a, int b, int32_t cc);
/* The index of a constant (equal constants share one) / of a zone, or < 0
 * past the limits with c->rc set. */
int at_rules__add_const(at_xc_t *c, const at_val_t *v);
int at_rules__add_tz(at_xc_t *c, const at_tz_t *tz);
/* The program as compiled so far, for folding. Valid until the next emit. */
at_prog_t at_rules__view(const at_xc_t *c);
/* A compile state over src (borrowed); checks the length and UTF-8.
 * Returns 0 or the error; deinit in every case. */
int at_rules__xc_init(at_xc_t *c, const char *src, size_t len, const at_expr_env_t *env,
                      at_expr_err_t *err);
void at_rules__xc_deinit(at_xc_t *c);

#endif
