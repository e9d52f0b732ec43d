/* expr_check.c - the type checker: gives every node its static type,
 * refuses what can never be right (docs/rules.md, "Types"), inserts the
 * conversions of `any` values to times, resolves literal time zones, and
 * folds constant pieces by running the evaluator on them, so a folded
 * value is exactly what run time would have computed.
 *
 * Recursive over the tree, whose depth the parser bounded.
 */
#include "rules_int.h"

#include <string.h>

static const char *at_an(int type)
{
    switch (type) {
    case AT_VAL_NULL:
        return "null";
    case AT_VAL_BOOL:
        return "a condition (true or false)";
    case AT_VAL_NUM:
        return "a number";
    case AT_VAL_STR:
        return "a string";
    case AT_VAL_TIME:
        return "a time";
    case AT_VAL_DUR:
        return "a duration";
    case AT_VAL_LIST:
        return "a list";
    case AT_VAL_MISSING:
        return "a missing value";
    default:
        return "a JSON value";
    }
}

static const char *at_plural(int type)
{
    switch (type) {
    case AT_VAL_BOOL:
        return "true/false values";
    case AT_VAL_NUM:
        return "numbers";
    case AT_VAL_STR:
        return "strings";
    case AT_VAL_TIME:
        return "times";
    case AT_VAL_DUR:
        return "durations";
    default:
        return "values";
    }
}

static const char *const at_op_text[] = {"+", "-", "*", "/", "%"};

static at_node_t *at_wrap(at_xc_t *c, int kind, at_node_t *x, int type)
{
    at_node_t *n = at_rules__node(c, kind, x->pos, 1);
    n->kids[0] = x;
    n->type = (uint8_t)type;
    n->depth = (uint16_t)(x->depth + 1);
    return n;
}

static void at_to_time(at_xc_t *c, at_node_t *n, uint32_t i)
{
    n->kids[i] = at_wrap(c, AT_N_TOTIME, n->kids[i], AT_VAL_TIME);
}

static bool at_is_const(const at_node_t *n)
{
    return n->kind == AT_N_CONST || n->kind == AT_N_LIST;
}

/* Replaces n by its value, computed by the evaluator itself. */
static int at_fold(at_xc_t *c, at_node_t *n)
{
    size_t mark = c->ncode;
    int sdepth = c->sdepth, smax = c->smax;
    unsigned reads = c->reads;
    c->sdepth = 0;
    int rc = at_rules__emit(c, n);
    if (rc == 0)
        rc = at_rules__emit_ins(c, AT_OP_RET, 0, 0, 0);
    if (rc)
        return rc;
    at_prog_t view = at_rules__view(c);
    at_expr_rt_t rt;
    memset(&rt, 0, sizeof rt);
    at_val_t v;
    at_rules__run(&view, (uint32_t)mark, &rt, &v);
    c->ncode = mark;
    c->sdepth = sdepth;
    c->smax = smax;
    c->reads = reads;
    if (v.type == AT_VAL_STR && v.flags) {
        char *p = at_arena_alloc(&c->arena, v.len + 1);
        at_val_copy(&v, p);
        v.u.s = p;
        v.flags = 0;
    }
    AT_ASSERT(v.type != AT_VAL_LIST && v.type != AT_VAL_JSON);
    n->kind = AT_N_CONST;
    n->k = v;
    n->nkids = 0;
    n->kids = NULL;
    return 0;
}

static int at_check_list(at_xc_t *c, at_node_t *n)
{
    n->type = AT_VAL_LIST;
    n->elem = AT_VAL_ANY;
    for (uint32_t i = 0; i < n->nkids; i++) {
        const at_node_t *e = n->kids[i];
        if (e->kind == AT_N_LIST)
            return at_rules__fail(c, AT_EINVALID, e->pos, "lists cannot be nested");
        if (e->kind != AT_N_CONST)
            return at_rules__fail(c, AT_EINVALID, e->pos,
                                  "the elements of a list must be constants");
        if (e->type == AT_VAL_NULL)
            return at_rules__fail(c, AT_EINVALID, e->pos,
                                  "null cannot be in a list (test with exists() instead)");
        if (e->k.type == AT_VAL_MISSING)
            return at_rules__fail(c, AT_EINVALID, e->pos, "this list element has no value");
        if (i == 0)
            n->elem = e->type;
        else if (e->type != n->elem)
            return at_rules__fail(c, AT_EINVALID, e->pos,
                                  "the elements of a list must all have the same type: this is %s, "
                                  "the first is %s",
                                  at_an(e->type), at_an(n->elem));
    }
    return 0;
}

/* Decides how the two sides of a comparison meet (n->aux = AT_CT_*). */
static int at_check_cmp(at_xc_t *c, at_node_t *n)
{
    bool ordering = n->op != AT_MASK_EQ && n->op != AT_MASK_NE;
    int a = n->kids[0]->type, b = n->kids[1]->type;
    if (a == AT_VAL_NULL || b == AT_VAL_NULL)
        return at_rules__fail(c, AT_EINVALID, n->op_pos,
                              "null can only be compared with == or != (or use exists())");
    if (a == AT_VAL_LIST || b == AT_VAL_LIST)
        return at_rules__fail(c, AT_EINVALID, n->op_pos,
                              "a list can only be used with in, contains and len()");
    if (a == AT_VAL_ANY && b == AT_VAL_ANY) {
        n->aux = AT_CT_DYN;
        return 0;
    }
    if (a == AT_VAL_ANY || b == AT_VAL_ANY) {
        int t = a == AT_VAL_ANY ? b : a;
        if (t == AT_VAL_DUR)
            return at_rules__fail(c, AT_EINVALID, n->op_pos,
                                  "a JSON value is never a duration: compare it with a number");
        if (t == AT_VAL_TIME)
            at_to_time(c, n, a == AT_VAL_ANY ? 0 : 1);
        a = b = t;
    }
    if (a != b) {
        const char *hint = "";
        if ((a == AT_VAL_TIME && b == AT_VAL_DUR) || (a == AT_VAL_DUR && b == AT_VAL_TIME))
            hint = " (for an age write now - timestamp > 10m)";
        else if ((a == AT_VAL_TIME && b == AT_VAL_STR) || (a == AT_VAL_STR && b == AT_VAL_TIME))
            hint = " (write a time as time(\"2026-05-01T00:00:00Z\"))";
        return at_rules__fail(c, AT_EINVALID, n->op_pos, "cannot compare %s with %s%s", at_an(a),
                              at_an(b), hint);
    }
    switch (a) {
    case AT_VAL_NUM:
        n->aux = AT_CT_NUM;
        break;
    case AT_VAL_STR:
        n->aux = AT_CT_STR;
        break;
    case AT_VAL_TIME:
    case AT_VAL_DUR:
        n->aux = AT_CT_I64;
        break;
    default:
        if (ordering)
            return at_rules__fail(c, AT_EINVALID, n->op_pos,
                                  "true and false have no order: use == or !=");
        n->aux = AT_CT_BOOL;
        break;
    }
    return 0;
}

static int at_check_in(at_xc_t *c, at_node_t *n)
{
    int a = n->kids[0]->type, b = n->kids[1]->type;
    if (a == AT_VAL_NULL || a == AT_VAL_LIST)
        return at_rules__fail(c, AT_EINVALID, n->kids[0]->pos, "cannot look for %s in a list",
                              at_an(a));
    if (b == AT_VAL_LIST) {
        int e = n->kids[1]->elem;
        if (e == AT_VAL_ANY)
            return 0;
        if (a == AT_VAL_ANY) {
            if (e == AT_VAL_DUR)
                return at_rules__fail(c, AT_EINVALID, n->op_pos,
                                      "a JSON value is never a duration: use a list of numbers");
            if (e == AT_VAL_TIME)
                at_to_time(c, n, 0);
            return 0;
        }
        if (a != e)
            return at_rules__fail(c, AT_EINVALID, n->op_pos, "cannot look for %s in a list of %s",
                                  at_an(a), at_plural(e));
        return 0;
    }
    if (b == AT_VAL_ANY) {
        if (a != AT_VAL_STR && a != AT_VAL_NUM && a != AT_VAL_BOOL && a != AT_VAL_ANY)
            return at_rules__fail(c, AT_EINVALID, n->op_pos,
                                  "JSON arrays hold strings, numbers and true/false, not %s",
                                  at_an(a));
        return 0;
    }
    if (b == AT_VAL_STR)
        return at_rules__fail(c, AT_EINVALID, n->op_pos,
                              "'in' needs a list on its right; for a substring write "
                              "s contains \"...\"");
    return at_rules__fail(c, AT_EINVALID, n->op_pos, "'in' needs a list on its right, not %s",
                          at_an(b));
}

static int at_check_strp(at_xc_t *c, at_node_t *n)
{
    static const char *const names[] = {"starts_with", "ends_with", "contains"};
    int a = n->kids[0]->type, b = n->kids[1]->type;
    bool sa = a == AT_VAL_STR || a == AT_VAL_ANY, sb = b == AT_VAL_STR || b == AT_VAL_ANY;
    if (n->op != AT_SP_CONTAINS) {
        if (!sa || !sb)
            return at_rules__fail(c, AT_EINVALID, n->op_pos,
                                  "%s needs strings on both sides, not %s", names[n->op],
                                  at_an(sa ? b : a));
        return 0;
    }
    if (a == AT_VAL_LIST) { /* list contains x is x in list */
        at_node_t *l = n->kids[0];
        n->kind = AT_N_IN;
        n->op = 0;
        n->kids[0] = n->kids[1];
        n->kids[1] = l;
        return at_check_in(c, n);
    }
    if (a == AT_VAL_STR && !sb)
        return at_rules__fail(c, AT_EINVALID, n->op_pos,
                              "a string can only contain a string, not %s", at_an(b));
    if (a == AT_VAL_ANY && b != AT_VAL_STR && b != AT_VAL_NUM && b != AT_VAL_BOOL &&
        b != AT_VAL_ANY)
        return at_rules__fail(c, AT_EINVALID, n->op_pos,
                              "JSON arrays hold strings, numbers and true/false, not %s", at_an(b));
    if (!sa)
        return at_rules__fail(c, AT_EINVALID, n->op_pos,
                              "contains needs a string, a list or a JSON array on its left, not %s",
                              at_an(a));
    return 0;
}

static bool at_is_zero(const at_node_t *n)
{
    return n->kind == AT_N_CONST && ((n->k.type == AT_VAL_NUM && n->k.u.num == 0) ||
                                     (n->k.type == AT_VAL_DUR && n->k.u.ms == 0));
}

/* Decides the operand kinds (n->aux = AT_AK_*) and the result type. */
static int at_check_arith(at_xc_t *c, at_node_t *n)
{
    int op = n->op, a = n->kids[0]->type, b = n->kids[1]->type;
    if (a == AT_VAL_ANY && (b == AT_VAL_NUM || b == AT_VAL_ANY))
        a = AT_VAL_NUM;
    if (b == AT_VAL_ANY && a == AT_VAL_NUM)
        b = AT_VAL_NUM;
    if (a == AT_VAL_ANY && (b == AT_VAL_TIME || b == AT_VAL_DUR)) {
        if (op == AT_AR_MUL && b == AT_VAL_DUR) {
            a = AT_VAL_NUM;
        } else {
            at_to_time(c, n, 0);
            a = AT_VAL_TIME;
        }
    }
    if (b == AT_VAL_ANY && (a == AT_VAL_TIME || a == AT_VAL_DUR)) {
        if (a == AT_VAL_DUR && (op == AT_AR_MUL || op == AT_AR_DIV)) {
            b = AT_VAL_NUM;
        } else {
            at_to_time(c, n, 1);
            b = AT_VAL_TIME;
        }
    }
    int kind = -1, type = AT_VAL_MISSING;
    if (a == AT_VAL_NUM && b == AT_VAL_NUM)
        kind = AT_AK_NUM, type = AT_VAL_NUM;
    else if (a == AT_VAL_TIME && b == AT_VAL_TIME && op == AT_AR_SUB)
        kind = AT_AK_TT, type = AT_VAL_DUR;
    else if (a == AT_VAL_TIME && b == AT_VAL_DUR && (op == AT_AR_ADD || op == AT_AR_SUB))
        kind = AT_AK_TD, type = AT_VAL_TIME;
    else if (a == AT_VAL_DUR && b == AT_VAL_TIME && op == AT_AR_ADD)
        kind = AT_AK_DT, type = AT_VAL_TIME;
    else if (a == AT_VAL_DUR && b == AT_VAL_DUR && op == AT_AR_DIV)
        kind = AT_AK_DDN, type = AT_VAL_NUM;
    else if (a == AT_VAL_DUR && b == AT_VAL_DUR && op != AT_AR_MUL)
        kind = AT_AK_DD, type = AT_VAL_DUR;
    else if (a == AT_VAL_DUR && b == AT_VAL_NUM && (op == AT_AR_MUL || op == AT_AR_DIV))
        kind = AT_AK_DN, type = AT_VAL_DUR;
    else if (a == AT_VAL_NUM && b == AT_VAL_DUR && op == AT_AR_MUL)
        kind = AT_AK_ND, type = AT_VAL_DUR;
    if (kind < 0)
        return at_rules__fail(c, AT_EINVALID, n->op_pos, "'%s' cannot combine %s and %s",
                              at_op_text[op], at_an(a), at_an(b));
    if ((op == AT_AR_DIV || op == AT_AR_MOD) && at_is_zero(n->kids[1]))
        return at_rules__fail(c, AT_EINVALID, n->op_pos, "division by zero");
    n->aux = kind;
    n->type = (uint8_t)type;
    return 0;
}

static int at_check_tpart(at_xc_t *c, at_node_t *n, const char *name)
{
    at_node_t *t = n->kids[0];
    if (t->type == AT_VAL_ANY)
        at_to_time(c, n, 0);
    else if (t->type != AT_VAL_TIME)
        return at_rules__fail(c, AT_EINVALID, t->pos, "%s() needs a time, not %s", name,
                              at_an(t->type));
    n->type = AT_VAL_NUM;
    if (n->nkids < 2) {
        n->aux = at_rules__add_tz(c, at_tz_utc());
        return n->aux < 0 ? c->rc : 0;
    }
    const at_node_t *z = n->kids[1];
    if (z->type != AT_VAL_STR && z->type != AT_VAL_ANY)
        return at_rules__fail(c, AT_EINVALID, z->pos,
                              "a time zone is a string such as \"Europe/Paris\", not %s",
                              at_an(z->type));
    n->aux = -1;
    if (z->kind == AT_N_CONST) {
        if (z->k.type != AT_VAL_STR)
            return at_rules__fail(c, AT_EINVALID, z->pos, "this time zone has no value");
        const at_tz_t *tz = at_tz_get(z->k.u.s, z->k.len);
        if (!tz)
            return at_rules__fail(c, AT_EINVALID, z->pos, "unknown time zone '%.*s'",
                                  (int)AT_MIN(z->k.len, 64), z->k.u.s);
        n->aux = at_rules__add_tz(c, tz);
        return n->aux < 0 ? c->rc : 0;
    }
    return 0;
}

static int at_check_call(at_xc_t *c, at_node_t *n)
{
    static const char *const names[] = {
        [AT_FN_YEAR] = "year",       [AT_FN_MONTH] = "month",   [AT_FN_DAY] = "day",
        [AT_FN_HOUR] = "hour",       [AT_FN_MINUTE] = "minute", [AT_FN_SECOND] = "second",
        [AT_FN_DOW] = "day_of_week", [AT_FN_LOWER] = "lower",   [AT_FN_UPPER] = "upper",
        [AT_FN_LEN] = "len",         [AT_FN_ABS] = "abs",       [AT_FN_AFFINITY] = "affinity",
        [AT_FN_TIME] = "time",
    };
    at_node_t *x = n->kids[0];
    int t = x->type;
    switch (n->op) {
    case AT_FN_EXISTS:
    case AT_FN_IN_SEGMENT:
        n->type = AT_VAL_BOOL;
        return 0;
    case AT_FN_LOWER:
    case AT_FN_UPPER:
    case AT_FN_AFFINITY:
        if (t != AT_VAL_STR && t != AT_VAL_ANY)
            return at_rules__fail(c, AT_EINVALID, x->pos, "%s() needs a string, not %s",
                                  names[n->op], at_an(t));
        n->type = n->op == AT_FN_AFFINITY ? AT_VAL_NUM : AT_VAL_STR;
        return 0;
    case AT_FN_LEN:
        if (t != AT_VAL_STR && t != AT_VAL_LIST && t != AT_VAL_ANY)
            return at_rules__fail(c, AT_EINVALID, x->pos, "len() needs a string or a list, not %s",
                                  at_an(t));
        n->type = AT_VAL_NUM;
        return 0;
    case AT_FN_ABS:
        if (t != AT_VAL_NUM && t != AT_VAL_DUR && t != AT_VAL_ANY)
            return at_rules__fail(c, AT_EINVALID, x->pos,
                                  "abs() needs a number or a duration, not %s", at_an(t));
        n->type = t == AT_VAL_DUR ? AT_VAL_DUR : AT_VAL_NUM;
        return 0;
    case AT_FN_TIME:
        if (t != AT_VAL_STR && t != AT_VAL_NUM && t != AT_VAL_TIME && t != AT_VAL_ANY)
            return at_rules__fail(c, AT_EINVALID, x->pos,
                                  "time() needs an RFC 3339 string or epoch milliseconds, not %s",
                                  at_an(t));
        if (x->kind == AT_N_CONST && x->k.type == AT_VAL_STR) {
            int64_t ms;
            if (at_time_parse_rfc3339(x->k.u.s, x->k.len, &ms) != 0)
                return at_rules__fail(c, AT_EINVALID, x->pos,
                                      "not an RFC 3339 time such as \"2026-05-01T00:00:00Z\"");
        }
        n->type = AT_VAL_TIME;
        return 0;
    default:
        return at_check_tpart(c, n, names[n->op]);
    }
}

/* && and ||: conditions only; a constant that decides the whole chain
 * folds it, and constants that cannot change it are dropped. */
static int at_check_chain(at_xc_t *c, at_node_t *n)
{
    bool is_and = n->kind == AT_N_AND;
    uint32_t keep = 0;
    for (uint32_t i = 0; i < n->nkids; i++) {
        at_node_t *x = n->kids[i];
        if (x->type != AT_VAL_BOOL && x->type != AT_VAL_ANY)
            return at_rules__fail(c, AT_EINVALID, x->pos, "'%s' needs conditions, not %s",
                                  is_and ? "&&" : "||", at_an(x->type));
        if (x->kind == AT_N_CONST && x->k.type == AT_VAL_BOOL) {
            if (x->k.u.b != is_and) { /* false && ... / true || ... */
                n->kind = AT_N_CONST;
                n->k = x->k;
                n->nkids = 0;
                n->kids = NULL;
                n->type = AT_VAL_BOOL;
                return 0;
            }
            continue; /* true && x is x */
        }
        n->kids[keep++] = x;
    }
    n->type = AT_VAL_BOOL;
    if (keep == 0) {
        n->kind = AT_N_CONST;
        n->k = at_val_bool(is_and);
        n->nkids = 0;
        return 0;
    }
    n->nkids = keep;
    if (keep == 1) {
        at_node_t *x = n->kids[0];
        if (x->type == AT_VAL_BOOL)
            *n = *x;
        else
            n->kind = AT_N_TOBOOL;
    }
    return 0;
}

static int at_check_node(at_xc_t *c, at_node_t *n)
{
    switch (n->kind) {
    case AT_N_CONST:
    case AT_N_FIELD:
    case AT_N_NOW:
        return 0;
    case AT_N_LIST:
        return at_check_list(c, n);
    case AT_N_NEG: {
        int t = n->kids[0]->type;
        if (t != AT_VAL_NUM && t != AT_VAL_DUR && t != AT_VAL_ANY)
            return at_rules__fail(c, AT_EINVALID, n->pos,
                                  "'-' needs a number or a duration, not %s", at_an(t));
        n->type = t == AT_VAL_DUR ? AT_VAL_DUR : AT_VAL_NUM;
        return 0;
    }
    case AT_N_NOT: {
        int t = n->kids[0]->type;
        if (t != AT_VAL_BOOL && t != AT_VAL_ANY)
            return at_rules__fail(c, AT_EINVALID, n->pos, "'!' needs a condition, not %s",
                                  at_an(t));
        n->type = AT_VAL_BOOL;
        return 0;
    }
    case AT_N_AND:
    case AT_N_OR:
        return at_check_chain(c, n);
    case AT_N_CMP:
        n->type = AT_VAL_BOOL;
        return at_check_cmp(c, n);
    case AT_N_IN:
        n->type = AT_VAL_BOOL;
        return at_check_in(c, n);
    case AT_N_STRP:
        n->type = AT_VAL_BOOL;
        return at_check_strp(c, n);
    case AT_N_ARITH:
        return at_check_arith(c, n);
    case AT_N_CALL:
        return at_check_call(c, n);
    case AT_N_ISNULL: {
        const at_node_t *x = n->kids[0];
        n->type = AT_VAL_BOOL;
        if (x->kind == AT_N_FIELD && c->fields[x->fi].zero) { /* counters always exist */
            n->kind = AT_N_CONST;
            n->k = at_val_bool(n->op == 1);
            n->nkids = 0;
        }
        return 0;
    }
    default:
        return 0;
    }
}

static bool at_foldable(const at_node_t *n)
{
    if (n->kind == AT_N_CONST || n->kind == AT_N_LIST || n->kind == AT_N_FIELD ||
        n->kind == AT_N_NOW || n->nkids == 0)
        return false;
    if (n->kind == AT_N_CALL &&
        (n->op == AT_FN_AFFINITY || n->op == AT_FN_IN_SEGMENT || n->op == AT_FN_EXISTS))
        return false;
    for (uint32_t i = 0; i < n->nkids; i++)
        if (!at_is_const(n->kids[i]))
            return false;
    return true;
}

int at_rules__check(at_xc_t *c, at_node_t *n)
{
    if (n->kind == AT_N_CALL && n->op == AT_FN_EXISTS) {
        const at_node_t *x = n->kids[0];
        n->type = AT_VAL_BOOL;
        if (c->fields[x->fi].zero) {
            n->kind = AT_N_CONST;
            n->k = at_val_bool(true);
            n->nkids = 0;
        }
        return 0;
    }
    for (uint32_t i = 0; i < n->nkids; i++) {
        int rc = at_rules__check(c, n->kids[i]);
        if (rc)
            return rc;
    }
    int rc = at_check_node(c, n);
    if (rc)
        return rc;
    return at_foldable(n) ? at_fold(c, n) : 0;
}
