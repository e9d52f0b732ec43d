/* expr_gen.c - code generation and the compiled expression: the tree to
 * stack-machine code (superinstructions for "field op constant", sorted
 * sets for `in`, short-circuit jumps for && and ||), the stack bound, and
 * the one block an expression lives in (code, constants, strings, sets,
 * zones, the fields and segments it reads). at_expr_compile() drives the
 * whole pipeline.
 */
#include "rules_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_EXPR_MAX_CODE (1 << 20)

static int at_effect(int op)
{
    switch (op) {
    case AT_OP_CONST:
    case AT_OP_LOAD:
    case AT_OP_LOAD0:
    case AT_OP_NOW:
    case AT_OP_EXISTS:
    case AT_OP_FK_NUM:
    case AT_OP_FK_STR:
    case AT_OP_FK_I64:
    case AT_OP_FK_BOOL:
    case AT_OP_FK_DYN:
    case AT_OP_FK_IN:
    case AT_OP_FK_STRP:
    case AT_OP_AFFK:
    case AT_OP_INSEG:
        return 1;
    case AT_OP_AND:
    case AT_OP_OR:
    case AT_OP_CMP_NUM:
    case AT_OP_CMP_STR:
    case AT_OP_CMP_I64:
    case AT_OP_CMP_BOOL:
    case AT_OP_CMP_DYN:
    case AT_OP_IN_DYN:
    case AT_OP_STRP:
    case AT_OP_ARITH:
    case AT_OP_TPART_DYN:
        return -1;
    default:
        return 0;
    }
}

int at_rules__emit_ins(at_xc_t *c, int op, int a, int b, int32_t cc)
{
    if (c->ncode >= AT_EXPR_MAX_CODE)
        return at_rules__fail(c, AT_ETOOBIG, 0, "expression too large");
    if (c->ncode == c->capcode) {
        c->capcode = c->capcode ? 2 * c->capcode : 32;
        c->code = at_xrealloc(c->code, c->capcode * sizeof *c->code);
    }
    c->code[c->ncode++] = (at_ins_t){.op = (uint8_t)op, .a = (uint8_t)a, .b = (uint16_t)b, .c = cc};
    c->sdepth += at_effect(op);
    AT_ASSERT(c->sdepth >= 0);
    if (c->sdepth > c->smax)
        c->smax = c->sdepth;
    return 0;
}

static int at_push_const(at_xc_t *c, const at_val_t *v)
{
    if (c->nk >= UINT16_MAX)
        return at_rules__fail(c, AT_ETOOBIG, 0, "expression has too many constants");
    if (c->nk == c->capk) {
        c->capk = c->capk ? 2 * c->capk : 16;
        c->k = at_xrealloc(c->k, c->capk * sizeof *c->k);
    }
    c->k[c->nk] = *v;
    return (int)c->nk++;
}

static bool at_same_const(const at_val_t *a, const at_val_t *b)
{
    if (a->type != b->type || a->len != b->len || a->flags != b->flags)
        return false;
    switch (a->type) {
    case AT_VAL_STR:
        return memcmp(a->u.s, b->u.s, a->len) == 0;
    case AT_VAL_BOOL:
        return a->u.b == b->u.b;
    case AT_VAL_MISSING:
    case AT_VAL_NULL:
        return true;
    case AT_VAL_NUM: { /* by bits: -0 and 0 stay apart */
        uint64_t x, y;
        memcpy(&x, &a->u.num, sizeof x);
        memcpy(&y, &b->u.num, sizeof y);
        return x == y;
    }
    default: /* times, durations, list headers */
        return a->u.ms == b->u.ms;
    }
}

/* A constant, interned: equal constants share one entry. */
int at_rules__add_const(at_xc_t *c, const at_val_t *v)
{
    for (size_t i = 0; i < c->nk; i++)
        if (c->k[i].type != AT_VAL_LIST && at_same_const(&c->k[i], v))
            return (int)i;
    return at_push_const(c, v);
}

int at_rules__add_tz(at_xc_t *c, const at_tz_t *tz)
{
    for (size_t i = 0; i < c->ntzs; i++)
        if (c->tzs[i] == tz)
            return (int)i;
    if (c->ntzs >= UINT16_MAX)
        return at_rules__fail(c, AT_ETOOBIG, 0, "expression has too many time zones");
    if (c->ntzs == c->captzs) {
        c->captzs = c->captzs ? 2 * c->captzs : 4;
        c->tzs = at_xrealloc(c->tzs, c->captzs * sizeof(const at_tz_t *));
    }
    c->tzs[c->ntzs] = tz;
    return (int)c->ntzs++;
}

at_prog_t at_rules__view(const at_xc_t *c)
{
    at_prog_t p = {.code = c->code, .k = c->k, .sets = c->sets, .tzs = c->tzs};
    return p;
}

static int at_set_order(const void *a, const void *b)
{
    return at_rules__set_cmp(a, b);
}

/* The constants of list node l, sorted and without repeats, as a set. */
static int at_add_set(at_xc_t *c, const at_node_t *l)
{
    if (c->nsets >= UINT16_MAX)
        return at_rules__fail(c, AT_ETOOBIG, 0, "expression has too many lists");
    at_val_t *tmp = at_xmalloc((l->nkids ? l->nkids : 1) * sizeof *tmp);
    for (uint32_t i = 0; i < l->nkids; i++)
        tmp[i] = l->kids[i]->k;
    if (l->nkids)
        qsort(tmp, l->nkids, sizeof *tmp, at_set_order);
    at_expr_set_t set = {.first = (uint32_t)c->nk, .n = 0, .type = l->elem};
    int rc = 0;
    for (uint32_t i = 0; i < l->nkids && rc >= 0; i++) {
        if (set.n && at_set_order(&tmp[i], &c->k[c->nk - 1]) == 0)
            continue;
        rc = at_push_const(c, &tmp[i]);
        set.n++;
    }
    free(tmp);
    if (rc < 0)
        return rc;
    if (c->nsets == c->capsets) {
        c->capsets = c->capsets ? 2 * c->capsets : 4;
        c->sets = at_xrealloc(c->sets, c->capsets * sizeof *c->sets);
    }
    c->sets[c->nsets] = set;
    return (int)c->nsets++;
}

/* A list value: its elements in order, then a header naming them. */
static int at_add_list(at_xc_t *c, const at_node_t *l)
{
    uint32_t first = (uint32_t)c->nk;
    for (uint32_t i = 0; i < l->nkids; i++)
        if (at_push_const(c, &l->kids[i]->k) < 0)
            return c->rc;
    at_val_t h = {.type = AT_VAL_LIST, .len = l->nkids, .u.ms = first};
    return at_push_const(c, &h);
}

static const at_cfield_t *at_use_field(at_xc_t *c, const at_node_t *f)
{
    at_cfield_t *cf = &c->fields[f->fi];
    cf->used = true;
    c->reads |= cf->profile ? AT_EXPR_READS_PROFILE : AT_EXPR_READS_EVENT;
    return cf;
}

static int at_emit_kids(at_xc_t *c, const at_node_t *n, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        int rc = at_rules__emit(c, n->kids[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static unsigned at_flip(unsigned mask)
{
    return ((mask & 1) << 2) | (mask & 2) | ((mask & 4) >> 2);
}

static int at_emit_cmp(at_xc_t *c, const at_node_t *n)
{
    static const uint8_t cmp_ops[] = {AT_OP_CMP_NUM, AT_OP_CMP_STR, AT_OP_CMP_I64, AT_OP_CMP_BOOL,
                                      AT_OP_CMP_DYN};
    int ct = n->aux;
    unsigned mask = n->op;
    const at_node_t *l = n->kids[0], *r = n->kids[1];
    if (l->kind == AT_N_CONST && r->kind != AT_N_CONST) {
        const at_node_t *t = l;
        l = r;
        r = t;
        mask = at_flip(mask);
    }
    if (r->kind != AT_N_CONST) {
        int rc = at_rules__emit(c, l);
        if (rc == 0)
            rc = at_rules__emit(c, r);
        return rc ? rc : at_rules__emit_ins(c, cmp_ops[ct], (int)mask, 0, 0);
    }
    int k = at_rules__add_const(c, &r->k);
    if (k < 0)
        return c->rc;
    if (l->kind == AT_N_FIELD) {
        const at_cfield_t *f = at_use_field(c, l);
        int op = AT_OP_FK_NUM + (cmp_ops[ct] - AT_OP_CMP_NUM);
        return at_rules__emit_ins(c, op, (int)mask | (f->zero ? AT_FK_ZERO : 0), k, f->slot);
    }
    int rc = at_rules__emit(c, l);
    return rc ? rc
              : at_rules__emit_ins(c, AT_OP_CK_NUM + (cmp_ops[ct] - AT_OP_CMP_NUM), (int)mask, k,
                                   0);
}

static int at_emit_in(at_xc_t *c, const at_node_t *n)
{
    const at_node_t *l = n->kids[0], *r = n->kids[1];
    int rc;
    if (r->kind != AT_N_LIST) {
        if ((rc = at_emit_kids(c, n, 2)) != 0)
            return rc;
        return at_rules__emit_ins(c, AT_OP_IN_DYN, n->op, 0, 0);
    }
    int s = at_add_set(c, r);
    if (s < 0)
        return c->rc;
    if (l->kind == AT_N_FIELD && !c->fields[l->fi].zero) {
        const at_cfield_t *f = at_use_field(c, l);
        return at_rules__emit_ins(c, AT_OP_FK_IN, n->op, s, f->slot);
    }
    if ((rc = at_rules__emit(c, l)) != 0)
        return rc;
    return at_rules__emit_ins(c, AT_OP_IN, n->op, s, 0);
}

static int at_emit_strp(at_xc_t *c, const at_node_t *n)
{
    const at_node_t *l = n->kids[0], *r = n->kids[1];
    int rc;
    if (r->kind != AT_N_CONST) {
        if ((rc = at_emit_kids(c, n, 2)) != 0)
            return rc;
        return at_rules__emit_ins(c, AT_OP_STRP, n->op, 0, 0);
    }
    int k = at_rules__add_const(c, &r->k);
    if (k < 0)
        return c->rc;
    if (l->kind == AT_N_FIELD && !c->fields[l->fi].zero) {
        const at_cfield_t *f = at_use_field(c, l);
        return at_rules__emit_ins(c, AT_OP_FK_STRP, n->op, k, f->slot);
    }
    if ((rc = at_rules__emit(c, l)) != 0)
        return rc;
    return at_rules__emit_ins(c, AT_OP_CK_STRP, n->op, k, 0);
}

/* && / ||: each operand but the last may jump to the end with the value
 * that decides the chain; the jumps are linked through their c fields
 * until the end is known. */
static int at_emit_chain(at_xc_t *c, const at_node_t *n)
{
    bool is_and = n->kind == AT_N_AND;
    int32_t chain = -1;
    int rc = at_rules__emit(c, n->kids[0]);
    for (uint32_t i = 1; i < n->nkids && rc == 0; i++) {
        int32_t at = (int32_t)c->ncode;
        rc = at_rules__emit_ins(c, is_and ? AT_OP_JFK : AT_OP_JTK, 0, 0, chain);
        chain = at;
        if (rc == 0)
            rc = at_rules__emit(c, n->kids[i]);
        if (rc == 0)
            rc = at_rules__emit_ins(c, is_and ? AT_OP_AND : AT_OP_OR, 0, 0, 0);
    }
    while (rc == 0 && chain >= 0) {
        int32_t next = c->code[chain].c;
        c->code[chain].c = (int32_t)c->ncode;
        chain = next;
    }
    return rc;
}

static int at_emit_call(at_xc_t *c, const at_node_t *n)
{
    const at_node_t *x = n->kids[0];
    int rc;
    switch (n->op) {
    case AT_FN_EXISTS: {
        const at_cfield_t *f = at_use_field(c, x);
        return at_rules__emit_ins(c, AT_OP_EXISTS, 0, 0, f->slot);
    }
    case AT_FN_IN_SEGMENT:
        c->reads |= AT_EXPR_READS_PROFILE | AT_EXPR_READS_SEGMENT;
        return at_rules__emit_ins(c, AT_OP_INSEG, 0, 0, n->aux);
    case AT_FN_AFFINITY:
        c->reads |= AT_EXPR_READS_PROFILE | AT_EXPR_READS_AFFINITY;
        if (x->kind == AT_N_CONST && x->k.type == AT_VAL_STR) {
            int k = at_rules__add_const(c, &x->k);
            return k < 0 ? c->rc : at_rules__emit_ins(c, AT_OP_AFFK, 0, k, 0);
        }
        if ((rc = at_rules__emit(c, x)) != 0)
            return rc;
        return at_rules__emit_ins(c, AT_OP_AFF, 0, 0, 0);
    default:
        break;
    }
    if ((rc = at_rules__emit(c, x)) != 0)
        return rc;
    switch (n->op) {
    case AT_FN_LOWER:
        return at_rules__emit_ins(c, AT_OP_FOLD, AT_VAL_F_LOWER, 0, 0);
    case AT_FN_UPPER:
        return at_rules__emit_ins(c, AT_OP_FOLD, AT_VAL_F_UPPER, 0, 0);
    case AT_FN_LEN:
        return at_rules__emit_ins(c, AT_OP_LEN, 0, 0, 0);
    case AT_FN_ABS:
        return at_rules__emit_ins(c, AT_OP_ABS, 0, 0, 0);
    case AT_FN_TIME:
        return at_rules__emit_ins(c, AT_OP_TOTIME, 0, 0, 0);
    default: /* the date and time parts */
        if (n->aux >= 0)
            return at_rules__emit_ins(c, AT_OP_TPART, n->op - AT_FN_YEAR, n->aux, 0);
        if ((rc = at_rules__emit(c, n->kids[1])) != 0)
            return rc;
        return at_rules__emit_ins(c, AT_OP_TPART_DYN, n->op - AT_FN_YEAR, 0, 0);
    }
}

int at_rules__emit(at_xc_t *c, const at_node_t *n)
{
    int rc, k;
    switch (n->kind) {
    case AT_N_CONST:
        k = at_rules__add_const(c, &n->k);
        return k < 0 ? c->rc : at_rules__emit_ins(c, AT_OP_CONST, 0, k, 0);
    case AT_N_LIST:
        k = at_add_list(c, n);
        return k < 0 ? c->rc : at_rules__emit_ins(c, AT_OP_CONST, 0, k, 0);
    case AT_N_FIELD: {
        const at_cfield_t *f = at_use_field(c, n);
        return at_rules__emit_ins(c, f->zero ? AT_OP_LOAD0 : AT_OP_LOAD, 0, 0, f->slot);
    }
    case AT_N_NOW:
        c->reads |= AT_EXPR_READS_NOW;
        return at_rules__emit_ins(c, AT_OP_NOW, 0, 0, 0);
    case AT_N_AND:
    case AT_N_OR:
        return at_emit_chain(c, n);
    case AT_N_CMP:
        return at_emit_cmp(c, n);
    case AT_N_IN:
        return at_emit_in(c, n);
    case AT_N_STRP:
        return at_emit_strp(c, n);
    case AT_N_CALL:
        return at_emit_call(c, n);
    case AT_N_ISNULL:
        if (n->kids[0]->kind == AT_N_FIELD) {
            const at_cfield_t *f = at_use_field(c, n->kids[0]);
            return at_rules__emit_ins(c, AT_OP_EXISTS, n->op == 0, 0, f->slot);
        }
        break;
    default:
        break;
    }
    if ((rc = at_emit_kids(c, n, n->nkids)) != 0)
        return rc;
    switch (n->kind) {
    case AT_N_NEG:
        return at_rules__emit_ins(c, AT_OP_NEG, n->type, 0, 0);
    case AT_N_NOT:
        return at_rules__emit_ins(c, AT_OP_NOT, 0, 0, 0);
    case AT_N_ARITH:
        return at_rules__emit_ins(c, AT_OP_ARITH, n->op, n->aux, 0);
    case AT_N_ISNULL:
        return at_rules__emit_ins(c, AT_OP_ISNULL, n->op, 0, 0);
    case AT_N_TOTIME:
        return at_rules__emit_ins(c, AT_OP_TOTIME, 0, 0, 0);
    case AT_N_TOBOOL:
        return at_rules__emit_ins(c, AT_OP_TOBOOL, 0, 0, 0);
    default:
        at_panic(__FILE__, __LINE__, "unknown expression node");
    }
}

/* ---- the compiled block ---------------------------------------------------- */
static size_t at_align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static at_expr_t *at_finish(at_xc_t *c, int type)
{
    size_t nused = 0, strbytes = 0;
    for (size_t i = 0; i < c->nfields; i++)
        if (c->fields[i].used) {
            nused++;
            strbytes += c->fields[i].len + 1;
        }
    for (size_t i = 0; i < c->nk; i++)
        if (c->k[i].type == AT_VAL_STR)
            strbytes += c->k[i].len;
    size_t o_code = at_align16(sizeof(at_expr_t));
    size_t o_k = at_align16(o_code + c->ncode * sizeof(at_ins_t));
    size_t o_sets = at_align16(o_k + c->nk * sizeof(at_val_t));
    size_t o_tzs = at_align16(o_sets + c->nsets * sizeof(at_expr_set_t));
    size_t o_fields = at_align16(o_tzs + c->ntzs * sizeof(at_tz_t *));
    size_t o_segs = at_align16(o_fields + nused * sizeof(at_expr_field_t));
    size_t o_str = at_align16(o_segs + c->nsegs * sizeof(int));
    char *blk = at_xcalloc(1, o_str + strbytes + 1);
    at_expr_t *e = (at_expr_t *)blk;
    at_ins_t *code = (at_ins_t *)(blk + o_code);
    at_val_t *k = (at_val_t *)(blk + o_k);
    at_expr_set_t *sets = (at_expr_set_t *)(blk + o_sets);
    const at_tz_t **tzs = (const at_tz_t **)(blk + o_tzs);
    at_expr_field_t *fields = (at_expr_field_t *)(blk + o_fields);
    int *segs = (int *)(blk + o_segs);
    char *str = blk + o_str;
    if (c->ncode)
        memcpy(code, c->code, c->ncode * sizeof *code);
    for (size_t i = 0; i < c->nk; i++) {
        k[i] = c->k[i];
        if (k[i].type == AT_VAL_STR) {
            if (k[i].len)
                memcpy(str, k[i].u.s, k[i].len);
            k[i].u.s = str;
            str += k[i].len;
        }
    }
    if (c->nsets)
        memcpy(sets, c->sets, c->nsets * sizeof *sets);
    if (c->ntzs)
        memcpy(tzs, c->tzs, c->ntzs * sizeof(const at_tz_t *));
    if (c->nsegs)
        memcpy(segs, c->segs, c->nsegs * sizeof *segs);
    size_t j = 0;
    for (size_t i = 0; i < c->nfields; i++) {
        const at_cfield_t *f = &c->fields[i];
        if (!f->used)
            continue;
        memcpy(str, f->path, f->len + 1);
        fields[j++] = (at_expr_field_t){
            .path = str, .len = f->len, .slot = f->slot, .type = f->type, .profile = f->profile};
        str += f->len + 1;
    }
    e->prog = (at_prog_t){.code = code, .k = k, .sets = sets, .tzs = tzs};
    e->fields = fields;
    e->nfields = nused;
    e->segments = segs;
    e->nsegments = c->nsegs;
    e->reads = c->reads;
    e->type = type;
    e->ncode = (uint32_t)c->ncode;
    e->nk = (uint32_t)c->nk;
    e->nsets = (uint32_t)c->nsets;
    e->ntzs = (uint32_t)c->ntzs;
    e->max_stack = (uint16_t)c->smax;
    return e;
}

void at_rules__xc_deinit(at_xc_t *c)
{
    for (size_t i = 0; i < c->nfields; i++)
        free(c->fields[i].path);
    free(c->fields);
    free(c->segs);
    free(c->k);
    free(c->sets);
    free(c->tzs);
    free(c->code);
    at_arena_deinit(&c->arena);
}

int at_expr_compile(const char *src, size_t len, const at_expr_env_t *env, at_expr_t **out,
                    at_expr_err_t *err)
{
    at_xc_t c;
    *out = NULL;
    int rc = at_rules__xc_init(&c, src, len, env, err);
    if (rc)
        goto out;
    at_node_t *root = at_rules__parse(&c);
    if (!root) {
        rc = c.rc;
        AT_ASSERT(rc != 0);
        goto out;
    }
    if ((rc = at_rules__check(&c, root)) != 0)
        goto out;
    if ((c.flags & AT_EXPR_BOOL) && root->type != AT_VAL_BOOL && root->type != AT_VAL_ANY) {
        rc = at_rules__fail(&c, AT_EINVALID, root->pos,
                            "a condition must be true or false, but this is %s",
                            at_val_type_name(root->type));
        goto out;
    }
    /* Folding left temporaries in the pools that no node refers to: the
     * tree holds its constants itself, so the code starts from empty pools
     * (zones are referred to by the tree and stay). */
    c.nk = 0;
    c.nsets = 0;
    c.sdepth = 0;
    c.smax = 0;
    c.reads = 0;
    for (size_t i = 0; i < c.nfields; i++)
        c.fields[i].used = false;
    if ((rc = at_rules__emit(&c, root)) != 0 || (rc = at_rules__emit_ins(&c, AT_OP_RET, 0, 0, 0)))
        goto out;
    if (c.smax > AT_EXPR__STACK) { /* cannot happen within the depth limit */
        rc = at_rules__fail(&c, AT_ETOOBIG, 0, "expression too complex");
        goto out;
    }
    *out = at_finish(&c, root->type);
out:
    at_rules__xc_deinit(&c);
    return rc;
}

void at_expr_free(at_expr_t *e)
{
    free(e);
}

const at_expr_field_t *at_expr_fields(const at_expr_t *e, size_t *n)
{
    *n = e->nfields;
    return e->fields;
}

const int *at_expr_segments(const at_expr_t *e, size_t *n)
{
    *n = e->nsegments;
    return e->segments;
}

unsigned at_expr_reads(const at_expr_t *e)
{
    return e->reads;
}

int at_expr_type(const at_expr_t *e)
{
    return e->type;
}

/* ---- listing -------------------------------------------------------------- */
static const char *const at_op_names[AT_OP__COUNT] = {
    [AT_OP_RET] = "ret",
    [AT_OP_CONST] = "const",
    [AT_OP_LOAD] = "load",
    [AT_OP_LOAD0] = "load0",
    [AT_OP_NOW] = "now",
    [AT_OP_NOT] = "not",
    [AT_OP_AND] = "and",
    [AT_OP_OR] = "or",
    [AT_OP_JFK] = "jfalse",
    [AT_OP_JTK] = "jtrue",
    [AT_OP_ISNULL] = "isnull",
    [AT_OP_EXISTS] = "exists",
    [AT_OP_TOBOOL] = "tobool",
    [AT_OP_CMP_NUM] = "cmp.num",
    [AT_OP_CMP_STR] = "cmp.str",
    [AT_OP_CMP_I64] = "cmp.i64",
    [AT_OP_CMP_BOOL] = "cmp.bool",
    [AT_OP_CMP_DYN] = "cmp.dyn",
    [AT_OP_CK_NUM] = "ck.num",
    [AT_OP_CK_STR] = "ck.str",
    [AT_OP_CK_I64] = "ck.i64",
    [AT_OP_CK_BOOL] = "ck.bool",
    [AT_OP_CK_DYN] = "ck.dyn",
    [AT_OP_FK_NUM] = "fk.num",
    [AT_OP_FK_STR] = "fk.str",
    [AT_OP_FK_I64] = "fk.i64",
    [AT_OP_FK_BOOL] = "fk.bool",
    [AT_OP_FK_DYN] = "fk.dyn",
    [AT_OP_IN] = "in",
    [AT_OP_FK_IN] = "fk.in",
    [AT_OP_IN_DYN] = "in.dyn",
    [AT_OP_STRP] = "strp",
    [AT_OP_CK_STRP] = "ck.strp",
    [AT_OP_FK_STRP] = "fk.strp",
    [AT_OP_ARITH] = "arith",
    [AT_OP_NEG] = "neg",
    [AT_OP_TOTIME] = "totime",
    [AT_OP_TPART] = "tpart",
    [AT_OP_TPART_DYN] = "tpart.dyn",
    [AT_OP_FOLD] = "fold",
    [AT_OP_LEN] = "len",
    [AT_OP_ABS] = "abs",
    [AT_OP_AFF] = "affinity",
    [AT_OP_AFFK] = "affinity.k",
    [AT_OP_INSEG] = "in_segment",
};

static bool at_has_const(int op)
{
    return op == AT_OP_CONST || (op >= AT_OP_CK_NUM && op <= AT_OP_FK_DYN) || op == AT_OP_CK_STRP ||
           op == AT_OP_FK_STRP || op == AT_OP_AFFK;
}

static bool at_has_slot(int op)
{
    return op == AT_OP_LOAD || op == AT_OP_LOAD0 || op == AT_OP_EXISTS ||
           (op >= AT_OP_FK_NUM && op <= AT_OP_FK_DYN) || op == AT_OP_FK_IN || op == AT_OP_FK_STRP;
}

static void at_put_val(at_buf_t *b, const at_val_t *v)
{
    char t[40];
    switch (v->type) {
    case AT_VAL_STR:
        at_buf_json_str(b, v->u.s, v->len);
        break;
    case AT_VAL_NUM:
        at_buf_printf(b, "%.17g", v->u.num);
        break;
    case AT_VAL_BOOL:
        at_buf_puts(b, v->u.b ? "true" : "false");
        break;
    case AT_VAL_TIME:
        at_time_format_rfc3339(v->u.ms, t);
        at_buf_puts(b, t);
        break;
    case AT_VAL_DUR:
        at_buf_printf(b, "%lldms", (long long)v->u.ms);
        break;
    case AT_VAL_LIST:
        at_buf_printf(b, "list[%u]", v->len);
        break;
    default:
        at_buf_puts(b, at_val_type_name(v->type));
        break;
    }
}

int at_expr_disasm(const at_expr_t *e, at_buf_t *out)
{
    int rc = at_buf_printf(out, "; %u instructions, stack %u, type %s\n", e->ncode, e->max_stack,
                           at_val_type_name(e->type));
    for (uint32_t i = 0; i < e->ncode && rc == 0; i++) {
        const at_ins_t *in = &e->prog.code[i];
        rc = at_buf_printf(out, "%3u  %-10s a=%u b=%u c=%d", i, at_op_names[in->op], in->a, in->b,
                           in->c);
        if (rc == 0 && at_has_const(in->op)) {
            at_buf_puts(out, "  k=");
            at_put_val(out, &e->prog.k[in->b]);
        }
        if (rc == 0 && at_has_slot(in->op))
            for (size_t f = 0; f < e->nfields; f++)
                if (e->fields[f].slot == in->c) {
                    at_buf_printf(out, "  %s", e->fields[f].path);
                    break;
                }
        if (rc == 0 && (in->op == AT_OP_IN || in->op == AT_OP_FK_IN))
            rc = at_buf_printf(out, "  set of %u", e->prog.sets[in->b].n);
        if (rc == 0)
            rc = at_buf_putc(out, '\n');
    }
    return rc;
}
