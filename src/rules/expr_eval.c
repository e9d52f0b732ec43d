/* expr_eval.c - the evaluator: a stack machine over the compiled code.
 *
 * The stack lives in this function's frame with a size every program was
 * checked against at compile time; there is no allocation, no recursion,
 * no clock and no locale, so one program and one set of inputs always give
 * one result. Truth values have three states: true, false and unknown
 * (AT_VAL_MISSING), combined by Kleene's rules.
 */
#include "rules_int.h"

#include <math.h>
#include <string.h>

/* The static analyzer follows every possible instruction sequence, so it
 * sees operations that read stack slots nothing has pushed. The compiler
 * never emits such code: it tracks the depth of every instruction and
 * checks the bound (expr_gen.c), and the fuzz target runs the evaluator
 * under ASan and UBSan. Zeroing the stack on every evaluation would cost
 * more than most evaluations, hence this one suppression.
 * NOLINTBEGIN(clang-analyzer-core.UndefinedBinaryOperatorResult) */

/* The value of a slot, with what a host may hand over normalized: null is
 * missing, and so is anything that is not a value type. */
static inline void at_load(const at_expr_rt_t *rt, int slot, at_val_t *v)
{
    /* the types a host hands over; the others (null, list, junk) are missing */
    enum {
        AT_HOST_TYPES = 1u << AT_VAL_MISSING | 1u << AT_VAL_BOOL | 1u << AT_VAL_NUM |
                        1u << AT_VAL_STR | 1u << AT_VAL_TIME | 1u << AT_VAL_DUR | 1u << AT_VAL_JSON,
    };
    v->type = AT_VAL_MISSING;
    rt->field(rt->ctx, slot, v);
    v->flags = 0;
    if (v->type > AT_VAL_JSON || !((AT_HOST_TYPES >> v->type) & 1))
        v->type = AT_VAL_MISSING;
}

static inline at_val_t at_ord(int ord, unsigned mask)
{
    if (ord >= -1 && ord <= 1)
        return at_val_bool((mask >> (ord + 1)) & 1);
    if (ord == AT_ORD_UNEQUAL && (mask == AT_MASK_EQ || mask == AT_MASK_NE))
        return at_val_bool(mask == AT_MASK_NE);
    return at_val_missing();
}

static inline at_val_t at_cmp_num(const at_val_t *x, const at_val_t *y, unsigned mask)
{
    if (x->type != AT_VAL_NUM || y->type != AT_VAL_NUM)
        return at_val_missing();
    double a = x->u.num, b = y->u.num;
    int ord = a < b ? -1 : a > b ? 1 : a == b ? 0 : AT_ORD_NONE;
    return at_ord(ord, mask);
}

static inline at_val_t at_cmp_str(const at_val_t *x, const at_val_t *y, unsigned mask)
{
    if (x->type != AT_VAL_STR || y->type != AT_VAL_STR)
        return at_val_missing();
    if (mask == AT_MASK_EQ || mask == AT_MASK_NE) {
        bool eq = x->len == y->len && (!(x->flags | y->flags) ? memcmp(x->u.s, y->u.s, x->len) == 0
                                                              : at_rules__scmp(x, y) == 0);
        return at_val_bool(eq == (mask == AT_MASK_EQ));
    }
    int r = at_rules__scmp(x, y);
    return at_ord((r > 0) - (r < 0), mask);
}

static inline at_val_t at_cmp_i64(const at_val_t *x, const at_val_t *y, unsigned mask)
{
    if (x->type != y->type || (x->type != AT_VAL_TIME && x->type != AT_VAL_DUR))
        return at_val_missing();
    return at_ord((x->u.ms > y->u.ms) - (x->u.ms < y->u.ms), mask);
}

static inline at_val_t at_cmp_bool(const at_val_t *x, const at_val_t *y, unsigned mask)
{
    if (x->type != AT_VAL_BOOL || y->type != AT_VAL_BOOL)
        return at_val_missing();
    return at_ord(x->u.b == y->u.b ? 0 : AT_ORD_UNEQUAL, mask);
}

static inline at_val_t at_cmp_dyn(const at_val_t *x, const at_val_t *y, unsigned mask)
{
    if (x->type == AT_VAL_BOOL && mask != AT_MASK_EQ && mask != AT_MASK_NE)
        return at_val_missing(); /* true and false have no order */
    return at_ord(at_rules__cmp_dyn(x, y), mask);
}

static inline at_val_t at_in(const at_prog_t *p, const at_expr_set_t *set, const at_val_t *v,
                             unsigned neg)
{
    if (v->type == AT_VAL_MISSING)
        return at_val_missing();
    if (set->n == 0)
        return at_val_bool(neg);
    if (v->type != set->type)
        return at_val_missing();
    return at_val_bool(at_rules__set_has(p, set, v) != (neg != 0));
}

/* needle in a run-time collection: a JSON array or a list literal. */
static at_val_t at_in_dyn(const at_val_t *needle, const at_val_t *hay, unsigned neg)
{
    if (needle->type == AT_VAL_MISSING)
        return at_val_missing();
    int r = -1;
    if (hay->type == AT_VAL_JSON) {
        r = at_rules__json_has(hay, needle);
    } else if (hay->type == AT_VAL_LIST) {
        r = 0;
        for (uint32_t i = 0; i < hay->len && !r; i++)
            r = at_rules__cmp_dyn(needle, &hay->u.list[i]) == 0;
    }
    return r < 0 ? at_val_missing() : at_val_bool((r != 0) != (neg != 0));
}

static at_val_t at_strp(unsigned kind, const at_val_t *x, const at_val_t *y)
{
    if (kind == AT_SP_CONTAINS && (x->type == AT_VAL_JSON || x->type == AT_VAL_LIST))
        return at_in_dyn(y, x, 0);
    if (x->type != AT_VAL_STR || y->type != AT_VAL_STR)
        return at_val_missing();
    if (!(x->flags | y->flags) && kind != AT_SP_CONTAINS) { /* the common case, inline */
        if (y->len > x->len)
            return at_val_bool(false);
        const char *at = kind == AT_SP_STARTS ? x->u.s : x->u.s + (x->len - y->len);
        return at_val_bool(memcmp(at, y->u.s, y->len) == 0);
    }
    return at_val_bool(at_rules__strp((int)kind, x, y));
}

static inline at_val_t at_time_or_missing(int64_t ms)
{
    return ms >= -AT_TIME_LIMIT && ms <= AT_TIME_LIMIT ? at_val_time(ms) : at_val_missing();
}

static at_val_t at_num_or_missing(double d)
{
    return isfinite(d) ? at_val_num(d) : at_val_missing();
}

/* A duration from a double number of ms, rounded half away from zero. */
static at_val_t at_dur_of(double d)
{
    if (!isfinite(d) || fabs(d) >= 9.2e18)
        return at_val_missing();
    return at_val_dur((int64_t)llround(d));
}

static at_val_t at_arith_num(unsigned op, double a, double b)
{
    switch (op) {
    case AT_AR_ADD:
        return at_num_or_missing(a + b);
    case AT_AR_SUB:
        return at_num_or_missing(a - b);
    case AT_AR_MUL:
        return at_num_or_missing(a * b);
    case AT_AR_DIV:
        return b == 0 ? at_val_missing() : at_num_or_missing(a / b);
    default:
        return b == 0 ? at_val_missing() : at_num_or_missing(fmod(a, b));
    }
}

static at_val_t at_arith_dd(unsigned op, int64_t a, int64_t b)
{
    int64_t r;
    switch (op) {
    case AT_AR_ADD:
        return __builtin_add_overflow(a, b, &r) ? at_val_missing() : at_val_dur(r);
    case AT_AR_SUB:
        return __builtin_sub_overflow(a, b, &r) ? at_val_missing() : at_val_dur(r);
    case AT_AR_MOD:
        if (b == 0)
            return at_val_missing();
        return at_val_dur(b == -1 ? 0 : a % b);
    default:
        return at_val_missing();
    }
}

static at_val_t at_arith(unsigned op, unsigned kind, const at_val_t *x, const at_val_t *y)
{
    int64_t r;
    switch (kind) {
    case AT_AK_NUM:
        if (x->type == AT_VAL_NUM && y->type == AT_VAL_NUM)
            return at_arith_num(op, x->u.num, y->u.num);
        break;
    case AT_AK_TT:
        if (x->type == AT_VAL_TIME && y->type == AT_VAL_TIME &&
            !__builtin_sub_overflow(x->u.ms, y->u.ms, &r))
            return at_val_dur(r);
        break;
    case AT_AK_TD:
        if (x->type == AT_VAL_TIME && y->type == AT_VAL_DUR &&
            !(op == AT_AR_ADD ? __builtin_add_overflow(x->u.ms, y->u.ms, &r)
                              : __builtin_sub_overflow(x->u.ms, y->u.ms, &r)))
            return at_time_or_missing(r);
        break;
    case AT_AK_DT:
        if (x->type == AT_VAL_DUR && y->type == AT_VAL_TIME &&
            !__builtin_add_overflow(x->u.ms, y->u.ms, &r))
            return at_time_or_missing(r);
        break;
    case AT_AK_DD:
        if (x->type == AT_VAL_DUR && y->type == AT_VAL_DUR)
            return at_arith_dd(op, x->u.ms, y->u.ms);
        break;
    case AT_AK_DDN:
        if (x->type == AT_VAL_DUR && y->type == AT_VAL_DUR && y->u.ms != 0)
            return at_val_num((double)x->u.ms / (double)y->u.ms);
        break;
    case AT_AK_DN:
        if (x->type == AT_VAL_DUR && y->type == AT_VAL_NUM) {
            if (op == AT_AR_MUL)
                return at_dur_of((double)x->u.ms * y->u.num);
            if (y->u.num != 0)
                return at_dur_of((double)x->u.ms / y->u.num);
        }
        break;
    case AT_AK_ND:
        if (x->type == AT_VAL_NUM && y->type == AT_VAL_DUR)
            return at_dur_of(x->u.num * (double)y->u.ms);
        break;
    default:
        break;
    }
    return at_val_missing();
}

static int64_t at_fdiv(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* A calendar field of the instant t in zone tz. The hour, minute, second
 * and weekday need only the zone's offset; dates need the calendar. */
static at_val_t at_tpart(unsigned part, const at_tz_t *tz, const at_val_t *t)
{
    if (t->type != AT_VAL_TIME || t->u.ms < -AT_TIME_LIMIT || t->u.ms > AT_TIME_LIMIT)
        return at_val_missing();
    int64_t ms = t->u.ms;
    if (part >= AT_TP_HOUR) {
        int64_t l = ms + (int64_t)at_tz_offset(tz, ms) * 1000;
        int64_t days = at_fdiv(l, 86400000), rem = l - days * 86400000, v;
        switch (part) {
        case AT_TP_HOUR:
            v = rem / 3600000;
            break;
        case AT_TP_MINUTE:
            v = rem / 60000 % 60;
            break;
        case AT_TP_SECOND:
            v = rem / 1000 % 60;
            break;
        default: /* 1970-01-01 was a Thursday: ISO weekday 4 */
            v = (days % 7 + 7 + 3) % 7 + 1;
            break;
        }
        return at_val_num((double)v);
    }
    at_tm_t tm;
    at_tz_local(tz, ms, &tm);
    return at_val_num(part == AT_TP_YEAR ? tm.year : part == AT_TP_MONTH ? tm.mon : tm.mday);
}

/* The zone a run-time value names; UTC when missing or unknown. */
static const at_tz_t *at_tz_of(const at_val_t *v)
{
    if (v->type != AT_VAL_STR || v->len == 0)
        return at_tz_utc();
    const at_tz_t *tz;
    if (v->flags) {
        char name[64];
        if (v->len > sizeof name)
            return at_tz_utc();
        at_val_copy(v, name);
        tz = at_tz_get(name, v->len);
    } else {
        tz = at_tz_get(v->u.s, v->len);
    }
    return tz ? tz : at_tz_utc();
}

static at_val_t at_len(const at_val_t *v)
{
    switch (v->type) {
    case AT_VAL_STR:
        return at_val_num((double)at_rules__utf8_len(v->u.s, v->len));
    case AT_VAL_LIST:
        return at_val_num((double)v->len);
    case AT_VAL_JSON: {
        int64_t n = at_rules__json_len(v);
        return n < 0 ? at_val_missing() : at_val_num((double)n);
    }
    default:
        return at_val_missing();
    }
}

static at_val_t at_abs(const at_val_t *v)
{
    if (v->type == AT_VAL_NUM)
        return at_val_num(fabs(v->u.num));
    if (v->type == AT_VAL_DUR && v->u.ms != INT64_MIN)
        return at_val_dur(v->u.ms < 0 ? -v->u.ms : v->u.ms);
    return at_val_missing();
}

static at_val_t at_affinity(const at_expr_rt_t *rt, const at_val_t *cat)
{
    if (cat->type != AT_VAL_STR || !rt->affinity)
        return at_val_missing();
    double d;
    if (cat->flags) {
        char name[256];
        if (cat->len > sizeof name)
            return at_val_missing();
        at_val_copy(cat, name);
        d = rt->affinity(rt->ctx, name, cat->len);
    } else {
        d = rt->affinity(rt->ctx, cat->u.s, cat->len);
    }
    return at_num_or_missing(d);
}

static inline at_val_t at_and(const at_val_t *a, const at_val_t *b)
{
    if ((a->type == AT_VAL_BOOL && !a->u.b) || (b->type == AT_VAL_BOOL && !b->u.b))
        return at_val_bool(false);
    if (a->type == AT_VAL_BOOL && b->type == AT_VAL_BOOL)
        return at_val_bool(true);
    return at_val_missing();
}

static inline at_val_t at_or(const at_val_t *a, const at_val_t *b)
{
    if ((a->type == AT_VAL_BOOL && a->u.b) || (b->type == AT_VAL_BOOL && b->u.b))
        return at_val_bool(true);
    if (a->type == AT_VAL_BOOL && b->type == AT_VAL_BOOL)
        return at_val_bool(false);
    return at_val_missing();
}

void at_rules__run(const at_prog_t *p, uint32_t start, const at_expr_rt_t *rt, at_val_t *out)
{
    at_val_t st[AT_EXPR__STACK];
    at_val_t *sp = st; /* the next free slot */
    at_val_t t;
#define AT_K (&p->k[in.b]) /* the instruction's constant */
    const at_ins_t *code = p->code, *ip = code + start;
    for (;;) {
        const at_ins_t in = *ip++;
        switch (in.op) {
        case AT_OP_RET:
            *out = sp[-1];
            return;
        case AT_OP_CONST:
            *sp = *AT_K;
            if (sp->type == AT_VAL_LIST)
                sp->u.list = p->k + AT_K->u.ms;
            sp++;
            break;
        case AT_OP_LOAD:
            at_load(rt, in.c, sp++);
            break;
        case AT_OP_LOAD0:
            at_load(rt, in.c, sp);
            if (sp->type == AT_VAL_MISSING)
                *sp = at_val_num(0);
            sp++;
            break;
        case AT_OP_NOW:
            *sp++ = at_val_time(rt->now_ms);
            break;
        case AT_OP_NOT:
            sp[-1] = sp[-1].type == AT_VAL_BOOL ? at_val_bool(!sp[-1].u.b) : at_val_missing();
            break;
        case AT_OP_AND:
            sp--;
            sp[-1] = at_and(&sp[-1], sp);
            break;
        case AT_OP_OR:
            sp--;
            sp[-1] = at_or(&sp[-1], sp);
            break;
        case AT_OP_JFK:
            if (sp[-1].type == AT_VAL_BOOL && !sp[-1].u.b)
                ip = code + in.c;
            break;
        case AT_OP_JTK:
            if (sp[-1].type == AT_VAL_BOOL && sp[-1].u.b)
                ip = code + in.c;
            break;
        case AT_OP_ISNULL:
            sp[-1] = at_val_bool((sp[-1].type == AT_VAL_MISSING || sp[-1].type == AT_VAL_NULL) !=
                                 (in.a != 0));
            break;
        case AT_OP_EXISTS:
            at_load(rt, in.c, &t);
            *sp++ = at_val_bool((t.type != AT_VAL_MISSING) != (in.a != 0));
            break;
        case AT_OP_TOBOOL:
            if (sp[-1].type != AT_VAL_BOOL)
                sp[-1] = at_val_missing();
            break;
        case AT_OP_CMP_NUM:
            sp--;
            sp[-1] = at_cmp_num(&sp[-1], sp, in.a);
            break;
        case AT_OP_CMP_STR:
            sp--;
            sp[-1] = at_cmp_str(&sp[-1], sp, in.a);
            break;
        case AT_OP_CMP_I64:
            sp--;
            sp[-1] = at_cmp_i64(&sp[-1], sp, in.a);
            break;
        case AT_OP_CMP_BOOL:
            sp--;
            sp[-1] = at_cmp_bool(&sp[-1], sp, in.a);
            break;
        case AT_OP_CMP_DYN:
            sp--;
            sp[-1] = at_cmp_dyn(&sp[-1], sp, in.a);
            break;
        case AT_OP_CK_NUM:
            sp[-1] = at_cmp_num(&sp[-1], AT_K, in.a);
            break;
        case AT_OP_CK_STR:
            sp[-1] = at_cmp_str(&sp[-1], AT_K, in.a);
            break;
        case AT_OP_CK_I64:
            sp[-1] = at_cmp_i64(&sp[-1], AT_K, in.a);
            break;
        case AT_OP_CK_BOOL:
            sp[-1] = at_cmp_bool(&sp[-1], AT_K, in.a);
            break;
        case AT_OP_CK_DYN:
            sp[-1] = at_cmp_dyn(&sp[-1], AT_K, in.a);
            break;
        case AT_OP_FK_NUM:
            at_load(rt, in.c, &t);
            if ((in.a & AT_FK_ZERO) && t.type == AT_VAL_MISSING)
                t = at_val_num(0);
            *sp++ = at_cmp_num(&t, AT_K, in.a & 7);
            break;
        case AT_OP_FK_STR:
            at_load(rt, in.c, &t);
            *sp++ = at_cmp_str(&t, AT_K, in.a);
            break;
        case AT_OP_FK_I64:
            at_load(rt, in.c, &t);
            *sp++ = at_cmp_i64(&t, AT_K, in.a);
            break;
        case AT_OP_FK_BOOL:
            at_load(rt, in.c, &t);
            *sp++ = at_cmp_bool(&t, AT_K, in.a);
            break;
        case AT_OP_FK_DYN:
            at_load(rt, in.c, &t);
            *sp++ = at_cmp_dyn(&t, AT_K, in.a);
            break;
        case AT_OP_IN:
            sp[-1] = at_in(p, &p->sets[in.b], &sp[-1], in.a);
            break;
        case AT_OP_FK_IN:
            at_load(rt, in.c, &t);
            *sp++ = at_in(p, &p->sets[in.b], &t, in.a);
            break;
        case AT_OP_IN_DYN:
            sp--;
            sp[-1] = at_in_dyn(&sp[-1], sp, in.a);
            break;
        case AT_OP_STRP:
            sp--;
            sp[-1] = at_strp(in.a, &sp[-1], sp);
            break;
        case AT_OP_CK_STRP:
            sp[-1] = at_strp(in.a, &sp[-1], AT_K);
            break;
        case AT_OP_FK_STRP:
            at_load(rt, in.c, &t);
            *sp++ = at_strp(in.a, &t, AT_K);
            break;
        case AT_OP_ARITH:
            sp--;
            sp[-1] = at_arith(in.a, in.b, &sp[-1], sp);
            break;
        case AT_OP_NEG:
            t = sp[-1];
            if (in.a == AT_VAL_NUM && t.type == AT_VAL_NUM)
                sp[-1] = at_val_num(-t.u.num);
            else if (in.a == AT_VAL_DUR && t.type == AT_VAL_DUR && t.u.ms != INT64_MIN)
                sp[-1] = at_val_dur(-t.u.ms);
            else
                sp[-1] = at_val_missing();
            break;
        case AT_OP_TOTIME:
            at_rules__to_time(&sp[-1]);
            break;
        case AT_OP_TPART:
            sp[-1] = at_tpart(in.a, p->tzs[in.b], &sp[-1]);
            break;
        case AT_OP_TPART_DYN:
            sp--;
            sp[-1] = at_tpart(in.a, at_tz_of(sp), &sp[-1]);
            break;
        case AT_OP_FOLD:
            if (sp[-1].type == AT_VAL_STR)
                sp[-1].flags = in.a;
            else
                sp[-1] = at_val_missing();
            break;
        case AT_OP_LEN:
            sp[-1] = at_len(&sp[-1]);
            break;
        case AT_OP_ABS:
            sp[-1] = at_abs(&sp[-1]);
            break;
        case AT_OP_AFF:
            sp[-1] = at_affinity(rt, &sp[-1]);
            break;
        case AT_OP_AFFK:
            *sp++ = at_affinity(rt, AT_K);
            break;
        case AT_OP_INSEG:
            *sp++ = rt->in_segment ? at_val_bool(rt->in_segment(rt->ctx, in.c)) : at_val_missing();
            break;
        default:
            at_panic(__FILE__, __LINE__, "unknown expression opcode");
        }
    }
#undef AT_K
}
/* NOLINTEND(clang-analyzer-core.UndefinedBinaryOperatorResult) */

int at_expr_eval(const at_expr_t *e, const at_expr_rt_t *rt, at_val_t *out)
{
    at_rules__run(&e->prog, 0, rt, out);
    return 0;
}

bool at_expr_eval_bool(const at_expr_t *e, const at_expr_rt_t *rt)
{
    at_val_t v;
    at_rules__run(&e->prog, 0, rt, &v);
    return v.type == AT_VAL_BOOL && v.u.b;
}
