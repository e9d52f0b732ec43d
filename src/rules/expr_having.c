/* expr_having.c - `having:` clauses of segments: exactly one aggregate
 * (count, sum, avg, min, max, distinct) compared with one number, in either
 * order. Shares the expression lexer and the resolution of field paths.
 */
#include "rules_int.h"

#include <string.h>

static const char *const at_agg_names[] = {"count", "sum", "avg", "min", "max", "distinct"};

const char *at_agg_name(int agg)
{
    return agg >= 0 && agg < (int)AT_ARRAY_LEN(at_agg_names) ? at_agg_names[agg] : "?";
}

bool at_expr_having_holds(const at_having_t *h, double v)
{
    switch (h->cmp) {
    case AT_CMP_EQ:
        return v == h->threshold;
    case AT_CMP_NE:
        return v != h->threshold;
    case AT_CMP_LT:
        return v < h->threshold;
    case AT_CMP_LE:
        return v <= h->threshold;
    case AT_CMP_GT:
        return v > h->threshold;
    default:
        return v >= h->threshold;
    }
}

#define AT_HAVING_SHAPE                                                                            \
    "a having clause is one aggregate compared with a number, as in count > 3 or "                 \
    "sum(properties.revenue) >= 500"

static int at_h_fail_tok(at_xc_t *c, const char *what)
{
    char t[48];
    return at_rules__fail(c, AT_EPARSE, c->tok.pos, "expected %s, found %s", what,
                          at_rules__tok_text(c, t, sizeof t));
}

static int at_h_cmp(at_xc_t *c, int *cmp)
{
    static const struct {
        uint8_t tk, cmp;
    } ops[] = {{AT_TK_EQ, AT_CMP_EQ}, {AT_TK_NE, AT_CMP_NE}, {AT_TK_LT, AT_CMP_LT},
               {AT_TK_LE, AT_CMP_LE}, {AT_TK_GT, AT_CMP_GT}, {AT_TK_GE, AT_CMP_GE}};
    for (size_t i = 0; i < AT_ARRAY_LEN(ops); i++)
        if (c->tok.kind == ops[i].tk) {
            *cmp = ops[i].cmp;
            return at_rules__next(c);
        }
    return at_h_fail_tok(c, "a comparison (==, !=, <, <=, >, >=)");
}

/* [-] number */
static int at_h_number(at_xc_t *c, double *out)
{
    bool neg = false;
    if (c->tok.kind == AT_TK_MINUS) {
        neg = true;
        if (at_rules__next(c))
            return c->rc;
    }
    if (c->tok.kind == AT_TK_DUR)
        return at_rules__fail(c, AT_EINVALID, c->tok.pos,
                              "an aggregate is compared with a number, not a duration");
    if (c->tok.kind != AT_TK_NUM)
        return at_h_fail_tok(c, "a number");
    *out = neg ? -c->tok.num : c->tok.num;
    return at_rules__next(c);
}

static int at_h_aggregate(at_xc_t *c, at_having_t *h)
{
    if (c->tok.kind != AT_TK_IDENT)
        return at_h_fail_tok(c, "an aggregate (count, sum, avg, min, max, distinct)");
    at_tok_t name = c->tok;
    int agg = -1;
    for (size_t i = 0; i < AT_ARRAY_LEN(at_agg_names); i++)
        if (at_rules__tok_word(&name, at_agg_names[i]))
            agg = (int)i;
    if (agg < 0) {
        const char *sug =
            at_rules__suggest(name.s, name.len, at_agg_names, AT_ARRAY_LEN(at_agg_names));
        return at_rules__fail(c, AT_EINVALID, name.pos,
                              "unknown aggregate '%.*s'%s%s%s; the aggregates are count, sum(f), "
                              "avg(f), min(f), max(f), distinct(f)",
                              (int)AT_MIN(name.len, 32), name.s, sug ? " (did you mean '" : "",
                              sug ? sug : "", sug ? "'?)" : "");
    }
    h->agg = (uint8_t)agg;
    h->slot = -1;
    if (at_rules__next(c))
        return c->rc;
    if (agg == AT_AGG_COUNT) { /* count or count() */
        if (c->tok.kind != AT_TK_LP)
            return 0;
        if (at_rules__next(c))
            return c->rc;
        if (c->tok.kind != AT_TK_RP)
            return at_rules__fail(c, AT_EINVALID, c->tok.pos,
                                  "count takes no field: it counts the window's events");
        return at_rules__next(c);
    }
    if (c->tok.kind != AT_TK_LP)
        return at_h_fail_tok(c, "'(' and a field after the aggregate");
    if (at_rules__next(c))
        return c->rc;
    if (c->tok.kind != AT_TK_IDENT)
        return at_h_fail_tok(c, "a field of the events");
    at_tok_t first = c->tok;
    if (at_rules__next(c))
        return c->rc;
    at_node_t *f = at_rules__parse_path(c, &first);
    if (!f)
        return c->rc;
    if (f->kind != AT_N_FIELD)
        return at_rules__fail(c, AT_EINVALID, first.pos, "%s() needs a field of the events",
                              at_agg_names[agg]);
    if (agg != AT_AGG_DISTINCT && f->type != AT_VAL_NUM && f->type != AT_VAL_ANY)
        return at_rules__fail(c, AT_EINVALID, first.pos,
                              "%s() needs a number field, and %s is a %s", at_agg_names[agg],
                              c->fields[f->fi].path, at_val_type_name(f->type));
    h->slot = c->fields[f->fi].slot;
    if (c->tok.kind != AT_TK_RP)
        return at_h_fail_tok(c, "')' after the field");
    return at_rules__next(c);
}

static int at_h_parse(at_xc_t *c, at_having_t *h)
{
    static const uint8_t mirror[] = {
        [AT_CMP_EQ] = AT_CMP_EQ, [AT_CMP_NE] = AT_CMP_NE, [AT_CMP_LT] = AT_CMP_GT,
        [AT_CMP_LE] = AT_CMP_GE, [AT_CMP_GT] = AT_CMP_LT, [AT_CMP_GE] = AT_CMP_LE};
    int cmp = 0;
    at_rules__lex_init(c);
    if (at_rules__next(c))
        return c->rc;
    if (c->tok.kind == AT_TK_EOF)
        return at_rules__fail(c, AT_EPARSE, 0, "empty having clause; " AT_HAVING_SHAPE);
    if (c->tok.kind == AT_TK_NUM || c->tok.kind == AT_TK_MINUS || c->tok.kind == AT_TK_DUR) {
        if (at_h_number(c, &h->threshold) || at_h_cmp(c, &cmp) || at_h_aggregate(c, h))
            return c->rc;
        cmp = mirror[cmp];
    } else {
        if (at_h_aggregate(c, h) || at_h_cmp(c, &cmp))
            return c->rc;
        if (c->tok.kind == AT_TK_IDENT)
            return at_rules__fail(c, AT_EINVALID, c->tok.pos,
                                  "an aggregate is compared with a number; " AT_HAVING_SHAPE);
        if (at_h_number(c, &h->threshold))
            return c->rc;
    }
    h->cmp = (uint8_t)cmp;
    if (c->tok.kind != AT_TK_EOF) {
        char t[48];
        return at_rules__fail(c, AT_EPARSE, c->tok.pos, "unexpected %s: %s",
                              at_rules__tok_text(c, t, sizeof t), AT_HAVING_SHAPE);
    }
    return 0;
}

int at_expr_having_parse(const char *src, size_t len, const at_expr_env_t *env, at_having_t *out,
                         at_expr_err_t *err)
{
    at_xc_t c;
    memset(out, 0, sizeof *out);
    out->slot = -1;
    int rc = at_rules__xc_init(&c, src, len, env, err);
    if (rc == 0) {
        c.having = true;
        rc = at_h_parse(&c, out);
    }
    at_rules__xc_deinit(&c);
    return rc;
}
