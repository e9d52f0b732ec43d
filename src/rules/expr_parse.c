/* expr_parse.c - the recursive-descent parser: one function per precedence
 * level (docs/rules.md, "Grammar"), a tree in the compile arena, paths
 * resolved against the namespace and the host's resolver as they are read.
 *
 * Recursion is bounded: every way down (parentheses, calls, lists, prefix
 * operators) passes at_enter(), which refuses more than AT_EXPR_MAX_DEPTH
 * levels, and every node's depth is checked as it is built, so the later
 * passes over the tree (also recursive) are bounded by the same limit.
 */
#include "rules_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct at_kids {
    at_node_t **v;
    size_t n, cap;
} at_kids_t;

static void at_kids_push(at_kids_t *k, at_node_t *x)
{
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 8;
        k->v = at_xrealloc(k->v, k->cap * sizeof(at_node_t *));
    }
    k->v[k->n++] = x;
}

at_node_t *at_rules__node(at_xc_t *c, int kind, uint32_t pos, uint32_t nkids)
{
    at_node_t *n = at_arena_alloc(&c->arena, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->pos = pos;
    n->op_pos = pos;
    n->type = AT_VAL_ANY;
    n->fi = -1;
    n->nkids = nkids;
    if (nkids) {
        n->kids = at_arena_alloc(&c->arena, nkids * sizeof(at_node_t *));
        memset(n->kids, 0, nkids * sizeof(at_node_t *));
    }
    return n;
}

/* Sets the node's depth from its children; NULL past the limit. */
static at_node_t *at_fin(at_xc_t *c, at_node_t *n)
{
    uint16_t d = 0;
    for (uint32_t i = 0; i < n->nkids; i++)
        d = AT_MAX(d, n->kids[i]->depth);
    n->depth = (uint16_t)(d + 1);
    if (n->depth > AT_EXPR_MAX_DEPTH) {
        at_rules__fail(c, AT_ETOOBIG, n->pos, "expression nested too deeply (more than %d levels)",
                       AT_EXPR_MAX_DEPTH);
        return NULL;
    }
    return n;
}

static at_node_t *at_binary(at_xc_t *c, int kind, int op, uint32_t op_pos, at_node_t *l,
                            at_node_t *r)
{
    at_node_t *n = at_rules__node(c, kind, l->pos, 2);
    n->op = (uint8_t)op;
    n->op_pos = op_pos;
    n->kids[0] = l;
    n->kids[1] = r;
    return at_fin(c, n);
}

static at_node_t *at_from_kids(at_xc_t *c, int kind, uint32_t pos, at_kids_t *k)
{
    at_node_t *n = at_rules__node(c, kind, pos, (uint32_t)k->n);
    if (k->n)
        memcpy(n->kids, k->v, k->n * sizeof(at_node_t *));
    return at_fin(c, n);
}

static bool at_enter(at_xc_t *c)
{
    if (++c->depth > AT_EXPR_MAX_DEPTH) {
        at_rules__fail(c, AT_ETOOBIG, c->tok.pos,
                       "expression nested too deeply (more than %d levels)", AT_EXPR_MAX_DEPTH);
        return false;
    }
    return true;
}

static at_node_t *at_expected(at_xc_t *c, const char *what)
{
    char t[48];
    at_rules__fail(c, AT_EPARSE, c->tok.pos, "expected %s, found %s", what,
                   at_rules__tok_text(c, t, sizeof t));
    return NULL;
}

static bool at_is_keyword(const at_tok_t *t)
{
    static const char *const kw[] = {"and",         "or",        "not",     "in",
                                     "starts_with", "ends_with", "contains"};
    for (size_t i = 0; i < AT_ARRAY_LEN(kw); i++)
        if (at_rules__tok_word(t, kw[i]))
            return true;
    return false;
}

static at_node_t *at_p_or(at_xc_t *c);

/* ---- paths ----------------------------------------------------------------- */

/* The field table entry for a canonical path, asking the host for a slot
 * the first time; -1 on error. */
static int at_field_ref(at_xc_t *c, const at_buf_t *canon, const at_path_info_t *info, uint32_t pos)
{
    for (size_t i = 0; i < c->nfields; i++)
        if (c->fields[i].len == canon->len &&
            memcmp(c->fields[i].path, canon->data, canon->len) == 0)
            return (int)i;
    int slot = (int)c->nfields;
    if (c->env && c->env->field) {
        char why[160] = "";
        slot = c->env->field(c->env->ud, canon->data, canon->len, why, sizeof why);
        if (slot < 0) {
            at_rules__fail(c, AT_EINVALID, pos, "field '%.*s' is not available here%s%s",
                           (int)AT_MIN(canon->len, 64), canon->data, why[0] ? ": " : "", why);
            return -1;
        }
    }
    if (c->nfields == c->capfields) {
        c->capfields = c->capfields ? 2 * c->capfields : 8;
        c->fields = at_xrealloc(c->fields, c->capfields * sizeof *c->fields);
    }
    at_cfield_t *f = &c->fields[c->nfields];
    memset(f, 0, sizeof *f);
    f->path = at_xstrndup(canon->data, canon->len);
    f->len = (uint32_t)canon->len;
    f->slot = slot;
    f->type = info->type;
    f->profile = info->profile;
    f->zero = info->zero;
    return (int)c->nfields++;
}

/* One segment after the first: .name, ."quoted", ["quoted"] or [N]. */
static int at_path_seg(at_xc_t *c, at_pseg_t *g)
{
    memset(g, 0, sizeof *g);
    g->index = -1;
    if (c->tok.kind == AT_TK_DOT) {
        if (at_rules__next(c))
            return c->rc;
        if (c->tok.kind != AT_TK_IDENT && c->tok.kind != AT_TK_STR) {
            at_expected(c, "a field name after '.'");
            return c->rc;
        }
        g->quoted = c->tok.kind == AT_TK_STR;
    } else {
        if (at_rules__next(c))
            return c->rc;
        if (c->tok.kind == AT_TK_NUM && c->tok.is_int && c->tok.num <= 2147483647.0) {
            g->index = (int64_t)c->tok.num;
        } else if (c->tok.kind == AT_TK_STR) {
            g->quoted = true;
        } else {
            at_expected(c, "a quoted name or an index in [...]");
            return c->rc;
        }
    }
    g->s = c->tok.s;
    g->len = c->tok.len;
    g->pos = c->tok.pos;
    return at_rules__next(c);
}

at_node_t *at_rules__parse_path(at_xc_t *c, const at_tok_t *first)
{
    at_pseg_t segs[32];
    size_t n = 0;
    at_buf_t canon;
    at_node_t *node = NULL;
    at_buf_init(&canon, 4 * (size_t)AT_EXPR_MAX_LEN);
    segs[n++] = (at_pseg_t){.s = first->s, .len = first->len, .pos = first->pos, .index = -1};
    while (c->tok.kind == AT_TK_DOT || c->tok.kind == AT_TK_LB) {
        bool bracket = c->tok.kind == AT_TK_LB;
        if (n == AT_ARRAY_LEN(segs)) {
            at_rules__fail(c, AT_ETOOBIG, c->tok.pos, "field path longer than %zu steps",
                           AT_ARRAY_LEN(segs));
            goto out;
        }
        if (at_path_seg(c, &segs[n]))
            goto out;
        n++;
        if (bracket) {
            if (c->tok.kind != AT_TK_RB) {
                at_expected(c, "']'");
                goto out;
            }
            if (at_rules__next(c))
                goto out;
        }
    }
    at_path_info_t info;
    uint32_t err_pos = first->pos;
    char why[256];
    unsigned flags = c->flags | (c->having ? AT_XC_HAVING | AT_EXPR_NO_PROFILE : 0);
    int rc = at_rules__path_resolve(segs, n, flags, &info, &canon, &err_pos, why, sizeof why);
    if (rc) {
        at_rules__fail(c, rc, err_pos, "%s", why);
        goto out;
    }
    if (info.now) {
        node = at_rules__node(c, AT_N_NOW, first->pos, 0);
        node->type = AT_VAL_TIME;
        node->depth = 1;
        goto out;
    }
    int fi = at_field_ref(c, &canon, &info, first->pos);
    if (fi < 0)
        goto out;
    node = at_rules__node(c, AT_N_FIELD, first->pos, 0);
    node->fi = fi;
    node->type = info.type;
    node->depth = 1;
out:
    at_buf_deinit(&canon);
    return node;
}

/* ---- calls --------------------------------------------------------------- */
static int at_segment_ref(at_xc_t *c, const at_node_t *arg)
{
    if (arg->kind != AT_N_CONST || arg->k.type != AT_VAL_STR)
        return at_rules__fail(c, AT_EINVALID, arg->pos,
                              "in_segment() takes a segment name in quotes, as in "
                              "in_segment(\"high_intent\")");
    if (c->flags & AT_EXPR_NO_PROFILE)
        return at_rules__fail(c, AT_EINVALID, arg->pos,
                              "in_segment() reads the profile, which is not available here");
    if (!c->env || !c->env->segment)
        return at_rules__fail(c, AT_EINVALID, arg->pos, "segments are not available here");
    int id = c->env->segment(c->env->ud, arg->k.u.s, arg->k.len);
    if (id < 0)
        return at_rules__fail(c, AT_EINVALID, arg->pos, "unknown segment '%.*s'",
                              (int)AT_MIN(arg->k.len, 64), arg->k.u.s);
    size_t i = 0;
    while (i < c->nsegs && c->segs[i] != id)
        i++;
    if (i == c->nsegs) {
        if (c->nsegs == c->capsegs) {
            c->capsegs = c->capsegs ? 2 * c->capsegs : 4;
            c->segs = at_xrealloc(c->segs, c->capsegs * sizeof *c->segs);
        }
        c->segs[c->nsegs++] = id;
    }
    return id;
}

static const char *const at_aggs[] = {"count", "sum", "avg", "min", "max", "distinct"};

static at_node_t *at_p_call(at_xc_t *c, const at_tok_t *name)
{
    const at_fn_info_t *fn = at_rules__fn_find(name->s, name->len);
    if (!fn) {
        for (size_t i = 0; i < AT_ARRAY_LEN(at_aggs); i++)
            if (at_rules__tok_word(name, at_aggs[i])) {
                at_rules__fail(c, AT_EINVALID, name->pos,
                               "the aggregate %s() is only allowed in a having clause", at_aggs[i]);
                return NULL;
            }
        const char *sug =
            at_rules__suggest(name->s, name->len, at_rules__fn_names, at_rules__fn_count);
        if (sug)
            at_rules__fail(c, AT_EINVALID, name->pos,
                           "unknown function '%.*s' (did you mean '%s'?)",
                           (int)AT_MIN(name->len, 32), name->s, sug);
        else
            at_rules__fail(c, AT_EINVALID, name->pos,
                           "unknown function '%.*s'; the functions are exists, year, month, day, "
                           "hour, minute, second, day_of_week, lower, upper, len, abs, affinity, "
                           "in_segment, time",
                           (int)AT_MIN(name->len, 32), name->s);
        return NULL;
    }
    at_kids_t args = {0};
    at_node_t *n = NULL;
    uint32_t lp = c->tok.pos;
    if (at_rules__next(c))
        goto out;
    if (c->tok.kind != AT_TK_RP) {
        for (;;) {
            at_node_t *a = at_p_or(c);
            if (!a)
                goto out;
            at_kids_push(&args, a);
            if (c->tok.kind == AT_TK_RP)
                break;
            if (c->tok.kind != AT_TK_COMMA) {
                at_expected(c, "',' or ')' in the arguments");
                goto out;
            }
            if (at_rules__next(c))
                goto out;
        }
    }
    if (at_rules__next(c)) /* past ')' */
        goto out;
    if (args.n < fn->min_args || args.n > fn->max_args) {
        if (fn->min_args == fn->max_args)
            at_rules__fail(c, AT_EINVALID, name->pos, "%s() takes %d argument%s, not %zu", fn->name,
                           fn->min_args, fn->min_args == 1 ? "" : "s", args.n);
        else
            at_rules__fail(c, AT_EINVALID, name->pos, "%s() takes %d or %d arguments, not %zu",
                           fn->name, fn->min_args, fn->max_args, args.n);
        goto out;
    }
    AT_ASSERT(args.n >= 1); /* every function takes an argument */
    if (fn->id == AT_FN_EXISTS && args.v[0]->kind != AT_N_FIELD) {
        at_rules__fail(c, AT_EINVALID, args.v[0]->pos,
                       "exists() takes a field path, as in exists(properties.coupon)");
        goto out;
    }
    if ((fn->id == AT_FN_AFFINITY) && (c->flags & AT_EXPR_NO_PROFILE)) {
        at_rules__fail(c, AT_EINVALID, name->pos,
                       "affinity() reads the profile, which is not available here");
        goto out;
    }
    int aux = 0;
    if (fn->id == AT_FN_IN_SEGMENT && (aux = at_segment_ref(c, args.v[0])) < 0)
        goto out;
    n = at_from_kids(c, AT_N_CALL, name->pos, &args);
    if (n) {
        n->op = fn->id;
        n->aux = aux;
        n->op_pos = lp;
    }
out:
    free(args.v);
    return n;
}

/* ---- values ------------------------------------------------------------------ */
static at_node_t *at_p_list(at_xc_t *c)
{
    uint32_t pos = c->tok.pos;
    at_kids_t elems = {0};
    at_node_t *n = NULL;
    if (at_rules__next(c))
        goto out;
    while (c->tok.kind != AT_TK_RB) {
        at_node_t *e = at_p_or(c);
        if (!e)
            goto out;
        at_kids_push(&elems, e);
        if (c->tok.kind == AT_TK_COMMA) {
            if (at_rules__next(c))
                goto out;
        } else if (c->tok.kind != AT_TK_RB) {
            at_expected(c, "',' or ']' in the list");
            goto out;
        }
    }
    if (at_rules__next(c))
        goto out;
    n = at_from_kids(c, AT_N_LIST, pos, &elems);
out:
    free(elems.v);
    return n;
}

static at_node_t *at_const(at_xc_t *c, uint32_t pos, at_val_t v)
{
    at_node_t *n = at_rules__node(c, AT_N_CONST, pos, 0);
    n->k = v;
    n->type = v.type;
    n->depth = 1;
    return n;
}

static at_node_t *at_p_primary(at_xc_t *c)
{
    at_tok_t t = c->tok;
    switch (t.kind) {
    case AT_TK_NUM:
        return at_rules__next(c) ? NULL : at_const(c, t.pos, at_val_num(t.num));
    case AT_TK_DUR:
        return at_rules__next(c) ? NULL : at_const(c, t.pos, at_val_dur(t.ms));
    case AT_TK_STR:
        return at_rules__next(c) ? NULL : at_const(c, t.pos, at_val_str(t.s, t.len));
    case AT_TK_LB:
        return at_p_list(c);
    case AT_TK_LP: {
        if (at_rules__next(c))
            return NULL;
        at_node_t *e = at_p_or(c);
        if (!e)
            return NULL;
        if (c->tok.kind != AT_TK_RP) {
            int line, col;
            at_rules__where(c->src, c->len, t.pos, &line, &col);
            char what[64];
            (void)snprintf(what, sizeof what, "')' to close the '(' at %d:%d", line, col);
            return at_expected(c, what);
        }
        return at_rules__next(c) ? NULL : e;
    }
    case AT_TK_IDENT:
        break;
    default:
        return at_expected(c, "a value");
    }
    if (at_rules__tok_word(&t, "true") || at_rules__tok_word(&t, "false"))
        return at_rules__next(c) ? NULL : at_const(c, t.pos, at_val_bool(t.s[0] == 't'));
    if (at_rules__tok_word(&t, "null")) {
        at_val_t v = {.type = AT_VAL_NULL};
        return at_rules__next(c) ? NULL : at_const(c, t.pos, v);
    }
    if (at_is_keyword(&t))
        return at_expected(c, "a value");
    if (at_rules__next(c))
        return NULL;
    if (c->tok.kind == AT_TK_LP)
        return at_p_call(c, &t);
    if (at_rules__tok_word(&t, "count") && !c->having) {
        at_rules__fail(c, AT_EINVALID, t.pos,
                       "the aggregate count is only allowed in a having clause");
        return NULL;
    }
    return at_rules__parse_path(c, &t);
}

/* ---- operators, loosest last ---------------------------------------------- */
static at_node_t *at_p_unary(at_xc_t *c)
{
    if (c->tok.kind != AT_TK_MINUS)
        return at_p_primary(c);
    uint32_t pos = c->tok.pos;
    if (!at_enter(c) || at_rules__next(c))
        return NULL;
    at_node_t *x = at_p_unary(c);
    c->depth--;
    if (!x)
        return NULL;
    at_node_t *n = at_rules__node(c, AT_N_NEG, pos, 1);
    n->kids[0] = x;
    return at_fin(c, n);
}

static at_node_t *at_p_mul(at_xc_t *c)
{
    at_node_t *l = at_p_unary(c);
    while (l &&
           (c->tok.kind == AT_TK_STAR || c->tok.kind == AT_TK_SLASH || c->tok.kind == AT_TK_PCT)) {
        int op = c->tok.kind == AT_TK_STAR    ? AT_AR_MUL
                 : c->tok.kind == AT_TK_SLASH ? AT_AR_DIV
                                              : AT_AR_MOD;
        uint32_t op_pos = c->tok.pos;
        if (at_rules__next(c))
            return NULL;
        at_node_t *r = at_p_unary(c);
        l = r ? at_binary(c, AT_N_ARITH, op, op_pos, l, r) : NULL;
    }
    return l;
}

static at_node_t *at_p_add(at_xc_t *c)
{
    at_node_t *l = at_p_mul(c);
    while (l && (c->tok.kind == AT_TK_PLUS || c->tok.kind == AT_TK_MINUS)) {
        int op = c->tok.kind == AT_TK_PLUS ? AT_AR_ADD : AT_AR_SUB;
        uint32_t op_pos = c->tok.pos;
        if (at_rules__next(c))
            return NULL;
        at_node_t *r = at_p_mul(c);
        l = r ? at_binary(c, AT_N_ARITH, op, op_pos, l, r) : NULL;
    }
    return l;
}

/* The comparison operator at the current token: node kind and op, or -1. */
static int at_cmp_op(at_xc_t *c, int *op)
{
    static const struct {
        uint8_t tk;
        uint8_t mask;
    } ops[] = {{AT_TK_EQ, AT_MASK_EQ}, {AT_TK_NE, AT_MASK_NE}, {AT_TK_LT, AT_MASK_LT},
               {AT_TK_LE, AT_MASK_LE}, {AT_TK_GT, AT_MASK_GT}, {AT_TK_GE, AT_MASK_GE}};
    for (size_t i = 0; i < AT_ARRAY_LEN(ops); i++)
        if (c->tok.kind == ops[i].tk) {
            *op = ops[i].mask;
            return AT_N_CMP;
        }
    *op = 0;
    if (at_rules__tok_word(&c->tok, "in"))
        return AT_N_IN;
    if (at_rules__tok_word(&c->tok, "not")) {
        *op = 1;
        return AT_N_IN;
    }
    *op = AT_SP_STARTS;
    if (at_rules__tok_word(&c->tok, "starts_with"))
        return AT_N_STRP;
    *op = AT_SP_ENDS;
    if (at_rules__tok_word(&c->tok, "ends_with"))
        return AT_N_STRP;
    *op = AT_SP_CONTAINS;
    if (at_rules__tok_word(&c->tok, "contains"))
        return AT_N_STRP;
    return -1;
}

static at_node_t *at_p_cmp(at_xc_t *c)
{
    at_node_t *l = at_p_add(c);
    int op, kind;
    if (!l || (kind = at_cmp_op(c, &op)) < 0)
        return l;
    uint32_t op_pos = c->tok.pos;
    bool not_in = kind == AT_N_IN && op == 1;
    if (at_rules__next(c))
        return NULL;
    if (not_in) {
        if (!at_rules__tok_word(&c->tok, "in"))
            return at_expected(c, "'in' after 'not'");
        if (at_rules__next(c))
            return NULL;
    }
    at_node_t *r = at_p_add(c);
    if (!r)
        return NULL;
    int op2;
    if (at_cmp_op(c, &op2) >= 0) {
        at_rules__fail(c, AT_EPARSE, c->tok.pos, "comparisons do not chain: write a < b && b < c");
        return NULL;
    }
    bool lnull = l->kind == AT_N_CONST && l->k.type == AT_VAL_NULL;
    bool rnull = r->kind == AT_N_CONST && r->k.type == AT_VAL_NULL;
    if (kind == AT_N_CMP && (op == AT_MASK_EQ || op == AT_MASK_NE) && (lnull || rnull)) {
        at_node_t *n = at_rules__node(c, AT_N_ISNULL, l->pos, 1);
        n->op = op == AT_MASK_NE;
        n->op_pos = op_pos;
        n->kids[0] = rnull ? l : r;
        return at_fin(c, n);
    }
    return at_binary(c, kind, op, op_pos, l, r);
}

static at_node_t *at_p_not(at_xc_t *c)
{
    if (c->tok.kind != AT_TK_BANG && !at_rules__tok_word(&c->tok, "not"))
        return at_p_cmp(c);
    uint32_t pos = c->tok.pos;
    if (!at_enter(c) || at_rules__next(c))
        return NULL;
    at_node_t *x = at_p_not(c);
    c->depth--;
    if (!x)
        return NULL;
    at_node_t *n = at_rules__node(c, AT_N_NOT, pos, 1);
    n->kids[0] = x;
    return at_fin(c, n);
}

static bool at_is_and(const at_tok_t *t)
{
    return t->kind == AT_TK_ANDAND || at_rules__tok_word(t, "and");
}

static bool at_is_or(const at_tok_t *t)
{
    return t->kind == AT_TK_OROR || at_rules__tok_word(t, "or");
}

/* One level of an n-ary chain: && over not-expressions, || over &&. */
static at_node_t *at_p_chain(at_xc_t *c, bool is_or)
{
    at_node_t *first = is_or ? at_p_chain(c, false) : at_p_not(c);
    if (!first || !(is_or ? at_is_or(&c->tok) : at_is_and(&c->tok)))
        return first;
    at_kids_t k = {0};
    at_node_t *n = NULL;
    at_kids_push(&k, first);
    while (is_or ? at_is_or(&c->tok) : at_is_and(&c->tok)) {
        if (at_rules__next(c))
            goto out;
        at_node_t *x = is_or ? at_p_chain(c, false) : at_p_not(c);
        if (!x)
            goto out;
        at_kids_push(&k, x);
    }
    n = at_from_kids(c, is_or ? AT_N_OR : AT_N_AND, first->pos, &k);
out:
    free(k.v);
    return n;
}

static at_node_t *at_p_or(at_xc_t *c)
{
    if (!at_enter(c))
        return NULL;
    at_node_t *n = at_p_chain(c, true);
    c->depth--;
    return n;
}

at_node_t *at_rules__parse(at_xc_t *c)
{
    at_rules__lex_init(c);
    if (at_rules__next(c))
        return NULL;
    if (c->tok.kind == AT_TK_EOF) {
        at_rules__fail(c, AT_EPARSE, 0, "empty expression");
        return NULL;
    }
    at_node_t *root = at_p_or(c);
    if (root && c->tok.kind != AT_TK_EOF) {
        char t[48];
        at_rules__fail(c, AT_EPARSE, c->tok.pos, "unexpected %s after a complete expression",
                       at_rules__tok_text(c, t, sizeof t));
        return NULL;
    }
    return root;
}
