/* decide.c - placements and POST /v1/decide (DESIGN.md §4, §7): a
 * placement's variants are chosen by ordered rules (conditions in the
 * rule language over the live profile, the user's segments, affinities
 * and the request's context), with a fallback when nothing holds or data
 * is missing or late; an experiment splits users into arms by a stable
 * hash of the user key, with a holdout; the answer carries the variant,
 * why, the arm, recommendations and the exposure event to record when
 * the variant is shown (decide itself writes nothing).
 *
 * A placement definition (JSON, from the config's `placements:`):
 *   {"name","variants":[{"name","when"?},..],"fallback",
 *    "recommendations"?: N, "category"?: "...",
 *    "experiment"?: {"name","holdout"?: "10%"|0.1,
 *                    "arms":[{"name","weight"?,"variant"?},..]}}
 * A variant without `when` always holds (a last default). An arm with a
 * `variant` shows it; an arm without one goes by the rules.
 *
 * THREAD SAFETY: placements are immutable once loaded and read by every
 * shard; at_proc_decide runs on the user's shard.
 */
#include "at_json.h"
#include "proc_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct at_pvariant {
    char *name;
    char *when_src; /* NULL: always */
    at_expr_t *when;
} at_pvariant_t;

typedef struct at_parm {
    char *name;
    double weight;
    char *variant; /* NULL: the rules decide */
} at_parm_t;

struct at_placement {
    char *name;
    at_pvariant_t *v;
    size_t nv;
    char *fallback;
    int nrecs;
    char *category;
    char *exp;
    at_parm_t *arms;
    size_t narms;
    double holdout;
    at_fpath_t *fp; /* the fields the conditions read */
    size_t nfp;
    char **segs; /* the segments in_segment() names */
    size_t nsegs;
};

struct at_placements {
    at_placement_t *p;
    size_t n;
};

static void at_placement__free(at_placement_t *pl)
{
    for (size_t i = 0; i < pl->nv; i++) {
        free(pl->v[i].name);
        free(pl->v[i].when_src);
        at_expr_free(pl->v[i].when);
    }
    free(pl->v);
    for (size_t i = 0; i < pl->narms; i++) {
        free(pl->arms[i].name);
        free(pl->arms[i].variant);
    }
    free(pl->arms);
    for (size_t i = 0; i < pl->nfp; i++)
        at_proc__fpath_free(&pl->fp[i]);
    free(pl->fp);
    for (size_t i = 0; i < pl->nsegs; i++)
        free(pl->segs[i]);
    free(pl->segs);
    free(pl->name);
    free(pl->fallback);
    free(pl->category);
    free(pl->exp);
}

void at_placements_free(at_placements_t *ps)
{
    if (!ps)
        return;
    for (size_t i = 0; i < ps->n; i++)
        at_placement__free(&ps->p[i]);
    free(ps->p);
    free(ps);
}

/* ---- loading ----------------------------------------------------------------- */

static int at_placement__field(void *ud, const char *path, size_t n, char *why, size_t whylen)
{
    at_placement_t *pl = ud;
    for (size_t i = 0; i < pl->nfp; i++)
        if (strlen(pl->fp[i].path) == n && !memcmp(pl->fp[i].path, path, n))
            return (int)i;
    pl->fp = at_xrealloc(pl->fp, (pl->nfp + 1) * sizeof *pl->fp);
    at_fpath_t *f = &pl->fp[pl->nfp];
    at_proc__fpath_init(f, path, n);
    if (f->kind == AT_FP_NONE || f->kind == AT_FP_TIMESTAMP || f->kind == AT_FP_RECEIVED ||
        (f->kind == AT_FP_EVENT && !(f->nsteps >= 1 && f->steps[0].s && f->steps[0].len == 7 &&
                                     !memcmp(f->steps[0].s, "context", 7)))) {
        (void)snprintf(why, whylen,
                       "a placement's condition reads context.*, profile.* and traits, not '%.*s'",
                       (int)n, path);
        at_proc__fpath_free(f);
        return -1;
    }
    return (int)pl->nfp++;
}

static int at_placement__segment(void *ud, const char *name, size_t n)
{
    at_placement_t *pl = ud;
    for (size_t i = 0; i < pl->nsegs; i++)
        if (strlen(pl->segs[i]) == n && !memcmp(pl->segs[i], name, n))
            return (int)i;
    pl->segs = at_xrealloc(pl->segs, (pl->nsegs + 1) * sizeof *pl->segs);
    pl->segs[pl->nsegs] = at_xstrndup(name, n);
    return (int)pl->nsegs++;
}

static char *at_placement__str(const at_json_t *v)
{
    return v && v->type == AT_JSON_STRING && v->len ? at_xstrndup(v->s, v->len) : NULL;
}

/* The placement of definition json into pl; err names the field. */
static int at_placement__load(at_placement_t *pl, const char *json, size_t len, at_error_t *err)
{
    memset(pl, 0, sizeof *pl);
    at_arena_t a;
    at_arena_init(&a, 0);
    at_json_t *v = NULL;
    int rc = at_json_parse_all(json, len, &a, 32, &v, err);
    if (rc < 0)
        goto out;
#define BAD(field, ...)                                                                            \
    do {                                                                                           \
        rc = at_error_set(err, AT_EINVALID, "invalid_placement", field, __VA_ARGS__);              \
        goto out;                                                                                  \
    } while (0)
    if (v->type != AT_JSON_OBJECT)
        BAD(NULL, "a placement is a mapping");
    pl->name = at_placement__str(at_json_get(v, "name", 4));
    if (!pl->name)
        BAD("name", "a placement needs a name");
    pl->fallback = at_placement__str(at_json_get(v, "fallback", 8));
    if (!pl->fallback)
        BAD("fallback", "placement %s needs a fallback variant", pl->name);
    const at_json_t *vs = at_json_get(v, "variants", 8);
    if (vs && vs->type != AT_JSON_ARRAY)
        BAD("variants", "variants is a list of {name, when}");
    pl->nv = vs ? vs->len : 0;
    pl->v = at_xcalloc(pl->nv + 1, sizeof *pl->v);
    size_t i = 0;
    for (const at_json_t *x = vs ? vs->child : NULL; x; x = x->next, i++) {
        at_pvariant_t *pv = &pl->v[i];
        char f[64];
        (void)snprintf(f, sizeof f, "variants[%zu]", i);
        if (x->type != AT_JSON_OBJECT || !(pv->name = at_placement__str(at_json_get(x, "name", 4))))
            BAD(f, "placement %s: a variant is {name, when}", pl->name);
        const at_json_t *w = at_json_get(x, "when", 4);
        if (!w)
            continue;
        if (w->type != AT_JSON_STRING)
            BAD(f, "placement %s: a variant's when is an expression (text)", pl->name);
        pv->when_src = at_xstrndup(w->s, w->len);
        at_expr_env_t env = {.field = at_placement__field,
                             .segment = at_placement__segment,
                             .ud = pl,
                             .flags = AT_EXPR_BOOL};
        at_expr_err_t e;
        if (at_expr_compile(w->s, w->len, &env, &pv->when, &e) < 0) {
            (void)snprintf(f, sizeof f, "variants[%zu].when", i);
            BAD(f, "placement %s: %s", pl->name, e.msg);
        }
    }
    const at_json_t *nr = at_json_get(v, "recommendations", 15);
    int64_t k = 0;
    if (nr && (at_json_i64(nr, &k) < 0 || k < 0 || k > 100))
        BAD("recommendations", "recommendations is a count of items, 0 to 100");
    pl->nrecs = (int)k;
    pl->category = at_placement__str(at_json_get(v, "category", 8));
    const at_json_t *ex = at_json_get(v, "experiment", 10);
    if (ex) {
        if (ex->type != AT_JSON_OBJECT ||
            !(pl->exp = at_placement__str(at_json_get(ex, "name", 4))))
            BAD("experiment", "an experiment is {name, arms, holdout}");
        const at_json_t *h = at_json_get(ex, "holdout", 7);
        if (h && h->type == AT_JSON_STRING && h->len && h->s[h->len - 1] == '%')
            pl->holdout = strtod(h->s, NULL) / 100.0;
        else if (h && h->type == AT_JSON_NUMBER)
            pl->holdout = at_json_number(h);
        else if (h)
            BAD("experiment.holdout", "holdout is a share: 10%% or 0.1");
        if (!(pl->holdout >= 0 && pl->holdout < 1))
            BAD("experiment.holdout", "holdout is a share below 100%%");
        const at_json_t *arms = at_json_get(ex, "arms", 4);
        if (!arms || arms->type != AT_JSON_ARRAY || arms->len == 0)
            BAD("experiment.arms", "an experiment needs arms: [{name, weight, variant}]");
        pl->arms = at_xcalloc(arms->len, sizeof *pl->arms);
        for (const at_json_t *x = arms->child; x; x = x->next) {
            at_parm_t *arm = &pl->arms[pl->narms];
            char f[64];
            (void)snprintf(f, sizeof f, "experiment.arms[%zu]", pl->narms);
            if (x->type != AT_JSON_OBJECT ||
                !(arm->name = at_placement__str(at_json_get(x, "name", 4))))
                BAD(f, "an arm is {name, weight, variant}");
            pl->narms++;
            const at_json_t *w = at_json_get(x, "weight", 6);
            arm->weight = w ? at_json_number(w) : 1;
            if (!(arm->weight > 0))
                BAD(f, "an arm's weight is a positive number");
            arm->variant = at_placement__str(at_json_get(x, "variant", 7));
            bool known = arm->variant == NULL || !strcmp(arm->variant, pl->fallback);
            for (size_t j = 0; j < pl->nv && !known; j++)
                known = !strcmp(pl->v[j].name, arm->variant);
            if (!known)
                BAD(f, "arm %s shows variant %s, which the placement does not have", arm->name,
                    arm->variant);
        }
    }
#undef BAD
out:
    at_arena_deinit(&a);
    return rc;
}

int at_placements_new(const at_config_rules_t *defs, at_placements_t **out, char *err,
                      size_t errlen)
{
    at_placements_t *ps = at_xcalloc(1, sizeof *ps);
    ps->p = at_xcalloc(defs->n + 1, sizeof *ps->p);
    for (size_t i = 0; i < defs->n; i++) {
        at_error_t e = {0};
        int rc = at_placement__load(&ps->p[i], defs->v[i].json, strlen(defs->v[i].json), &e);
        ps->n++;
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (!strcmp(ps->p[j].name, ps->p[i].name))
                rc = at_error_set(&e, AT_EINVALID, "invalid_placement", "name",
                                  "placement %s is defined twice", ps->p[i].name);
        if (rc < 0) {
            (void)snprintf(err, errlen, "%d:%d: placements[%zu]%s%s: %s", defs->v[i].line,
                           defs->v[i].col, i, e.field[0] ? "." : "", e.field, e.message);
            at_placements_free(ps);
            return rc;
        }
    }
    *out = ps;
    return 0;
}

const at_placement_t *at_placements_find(const at_placements_t *ps, const char *name, size_t n)
{
    for (size_t i = 0; ps && i < ps->n; i++)
        if (strlen(ps->p[i].name) == n && !memcmp(ps->p[i].name, name, n))
            return &ps->p[i];
    return NULL;
}

void at_placements_render(const at_placements_t *ps, at_buf_t *out)
{
    AT_ASSERT(at_buf_puts(out, "{\"placements\":[") == 0);
    for (size_t i = 0; ps && i < ps->n; i++) {
        const at_placement_t *pl = &ps->p[i];
        AT_ASSERT(at_buf_puts(out, i ? ",{\"name\":" : "{\"name\":") == 0);
        AT_ASSERT(at_buf_json_str(out, pl->name, strlen(pl->name)) == 0);
        AT_ASSERT(at_buf_puts(out, ",\"variants\":[") == 0);
        for (size_t j = 0; j < pl->nv; j++) {
            AT_ASSERT(at_buf_puts(out, j ? ",{\"name\":" : "{\"name\":") == 0);
            AT_ASSERT(at_buf_json_str(out, pl->v[j].name, strlen(pl->v[j].name)) == 0);
            if (pl->v[j].when_src) {
                AT_ASSERT(at_buf_puts(out, ",\"when\":") == 0);
                AT_ASSERT(at_buf_json_str(out, pl->v[j].when_src, strlen(pl->v[j].when_src)) == 0);
            }
            AT_ASSERT(at_buf_putc(out, '}') == 0);
        }
        AT_ASSERT(at_buf_puts(out, "],\"fallback\":") == 0);
        AT_ASSERT(at_buf_json_str(out, pl->fallback, strlen(pl->fallback)) == 0);
        if (pl->exp) {
            AT_ASSERT(
                at_buf_printf(out, ",\"experiment\":{\"holdout\":%g,\"name\":", pl->holdout) >= 0);
            AT_ASSERT(at_buf_json_str(out, pl->exp, strlen(pl->exp)) == 0);
            AT_ASSERT(at_buf_puts(out, ",\"arms\":[") == 0);
            for (size_t j = 0; j < pl->narms; j++) {
                AT_ASSERT(at_buf_puts(out, j ? ",{\"name\":" : "{\"name\":") == 0);
                AT_ASSERT(at_buf_json_str(out, pl->arms[j].name, strlen(pl->arms[j].name)) == 0);
                AT_ASSERT(at_buf_printf(out, ",\"weight\":%g}", pl->arms[j].weight) >= 0);
            }
            AT_ASSERT(at_buf_puts(out, "]}") == 0);
        }
        AT_ASSERT(at_buf_putc(out, '}') == 0);
    }
    AT_ASSERT(at_buf_puts(out, "]}") == 0);
}

/* ---- deciding ------------------------------------------------------------------ */

/* What one decision's conditions read. */
typedef struct at_dctx {
    at_proc_t *pr;
    const at_placement_t *pl;
    at_host_t h;
    const at_user_t *u;
    const at_json_t *req; /* the request's object: context.* is read from it */
    const char *req_src;
    const char *key;
    size_t klen;
} at_dctx_t;

static void at_decide__field(void *ctx, int slot, at_val_t *out)
{
    at_dctx_t *d = ctx;
    if (slot < 0 || (size_t)slot >= d->pl->nfp)
        return;
    const at_fpath_t *f = &d->pl->fp[slot];
    if (f->kind == AT_FP_EVENT) {
        if (d->req)
            at_proc__jval(at_proc__walk(d->req, f->steps, f->nsteps), d->req_src, out);
        return;
    }
    if (d->u)
        at_proc__fetch_fp(&d->h, f, out);
}

static double at_decide__affinity(void *ctx, const char *cat, size_t n)
{
    const at_dctx_t *d = ctx;
    return d->u ? at_profile_affinity(&d->u->prof, cat, n) : 0;
}

static bool at_decide__in_segment(void *ctx, int id)
{
    const at_dctx_t *d = ctx;
    if (!d->u || id < 0 || (size_t)id >= d->pl->nsegs)
        return false;
    const char *name = d->pl->segs[id];
    return at_rstate_in_segment(d->pr->rs, &d->u->rst, d->key, d->klen, name, strlen(name));
}

/* A stable share in [0, 1) of user key for experiment exp. */
static double at_decide__bucket(const char *exp, const char *key, size_t klen)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    AT_ASSERT(at_buf_append(&b, exp, strlen(exp) + 1) == 0); /* the NUL separates */
    AT_ASSERT(at_buf_append(&b, key, klen) == 0);
    uint64_t h = at_hash64(b.data, b.len);
    at_buf_deinit(&b);
    return (double)(h >> 11) * 0x1.0p-53;
}

void at_proc_decide(at_proc_t *pr, const char *key, size_t klen, const at_placement_t *pl,
                    const char *req, size_t req_len, bool late, int64_t now_ms, at_reco_set_t *set,
                    at_buf_t *out)
{
    at_dctx_t d;
    memset(&d, 0, sizeof d);
    d.pr = pr;
    d.pl = pl;
    d.key = key;
    d.klen = klen;
    at_user_t u;
    size_t npend;
    bool known = at_proc__live(pr, at_keyed_find(pr->users, key, klen), &u, NULL, &npend) &&
                 u.prof.events > 0;
    if (known) {
        d.u = &u;
        at_proc__host(pr, &d.h, &u, NULL, now_ms, now_ms, now_ms);
    }
    at_json_t *root = NULL;
    at_error_t e;
    if (req_len && at_json_parse_all(req, req_len, &pr->arena, 32, &root, &e) == 0 &&
        root->type == AT_JSON_OBJECT) {
        d.req = root;
        d.req_src = req;
    }
    /* the arm first: it may fix the variant */
    const at_parm_t *arm = NULL;
    bool holdout = false;
    if (pl->exp) {
        double b = at_decide__bucket(pl->exp, key, klen);
        if (b < pl->holdout) {
            holdout = true;
        } else {
            double total = 0, x = (b - pl->holdout) / (1 - pl->holdout), acc = 0;
            for (size_t i = 0; i < pl->narms; i++)
                total += pl->arms[i].weight;
            for (size_t i = 0; i < pl->narms && !arm; i++) {
                acc += pl->arms[i].weight / total;
                if (x < acc || i + 1 == pl->narms)
                    arm = &pl->arms[i];
            }
        }
    }
    const char *variant = pl->fallback, *reason = "fallback";
    int rule = -1;
    if (holdout) {
        reason = "holdout";
    } else if (arm && arm->variant) {
        variant = arm->variant;
        reason = "arm";
    } else if (late) {
        reason = "late"; /* processing is behind what the request asked for */
    } else if (!known) {
        reason = "no_data";
    } else {
        at_expr_rt_t rt = {.field = at_decide__field,
                           .affinity = at_decide__affinity,
                           .in_segment = at_decide__in_segment,
                           .now_ms = now_ms,
                           .ctx = &d};
        for (size_t i = 0; i < pl->nv; i++) {
            if (!pl->v[i].when || at_expr_eval_bool(pl->v[i].when, &rt)) {
                variant = pl->v[i].name;
                reason = "rule";
                rule = (int)i;
                break;
            }
        }
    }
    AT_ASSERT(at_buf_puts(out, "{\"placement\":") == 0);
    AT_ASSERT(at_buf_json_str(out, pl->name, strlen(pl->name)) == 0);
    AT_ASSERT(at_buf_puts(out, ",\"user\":") == 0);
    AT_ASSERT(at_buf_json_str(out, key, klen) == 0);
    AT_ASSERT(at_buf_puts(out, known ? ",\"known\":true,\"variant\":"
                                     : ",\"known\":false,\"variant\":") == 0);
    AT_ASSERT(at_buf_json_str(out, variant, strlen(variant)) == 0);
    AT_ASSERT(at_buf_printf(out, ",\"reason\":\"%s\"", reason) >= 0);
    if (rule >= 0) {
        AT_ASSERT(at_buf_printf(out, ",\"rule\":%d", rule) >= 0);
        if (pl->v[rule].when_src) {
            AT_ASSERT(at_buf_puts(out, ",\"condition\":") == 0);
            AT_ASSERT(at_buf_json_str(out, pl->v[rule].when_src, strlen(pl->v[rule].when_src)) ==
                      0);
        }
    }
    const char *arm_name = holdout ? "holdout" : arm ? arm->name : ""; /* "": no arm */
    if (pl->exp) {
        AT_ASSERT(at_buf_puts(out, ",\"experiment\":") == 0);
        AT_ASSERT(at_buf_json_str(out, pl->exp, strlen(pl->exp)) == 0);
        AT_ASSERT(at_buf_puts(out, ",\"arm\":") == 0);
        AT_ASSERT(at_buf_json_str(out, arm_name, strlen(arm_name)) == 0);
    }
    if (pl->nrecs > 0) {
        at_reco_req_t rq = {.n = (size_t)pl->nrecs, .window = AT_RECO_W24H};
        if (pl->category) {
            rq.category = pl->category;
            rq.category_len = strlen(pl->category);
        }
        at_reco_result_t r;
        at_reco_result_init(&r);
        at_reco_user(set, known ? &u.prof : NULL, &rq, &r);
        AT_ASSERT(at_buf_puts(out, ",\"recommendations\":") == 0);
        at_reco_render(&r, out);
        at_reco_result_deinit(&r);
    }
    /* the event to send when the variant is shown */
    bool anon = klen >= 2 && key[0] == 'a' && key[1] == ':';
    AT_ASSERT(at_buf_printf(out, ",\"exposure\":{\"type\":\"exposure\",\"%s\":",
                            anon ? "anonymous_id" : "user_id") >= 0);
    AT_ASSERT(at_buf_json_str(out, key + 2, klen - 2) == 0);
    AT_ASSERT(at_buf_puts(out, ",\"properties\":{\"placement\":") == 0);
    AT_ASSERT(at_buf_json_str(out, pl->name, strlen(pl->name)) == 0);
    AT_ASSERT(at_buf_puts(out, ",\"variant\":") == 0);
    AT_ASSERT(at_buf_json_str(out, variant, strlen(variant)) == 0);
    if (pl->exp) {
        AT_ASSERT(at_buf_puts(out, ",\"experiment\":") == 0);
        AT_ASSERT(at_buf_json_str(out, pl->exp, strlen(pl->exp)) == 0);
        AT_ASSERT(at_buf_puts(out, ",\"arm\":") == 0);
        AT_ASSERT(at_buf_json_str(out, arm_name, strlen(arm_name)) == 0);
    }
    AT_ASSERT(at_buf_puts(out, "}}}") == 0);
    at_arena_reset(&pr->arena);
}
