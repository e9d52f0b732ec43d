/* routes_reco.c - the REST API of the item catalog and the recommender
 * (DESIGN.md §4, §7): POST /v1/items, GET /v1/items/{id},
 * GET /v1/items/{id}/similar, GET /v1/trending,
 * GET /v1/users/{id}/recommendations, POST /v1/decide and
 * GET /v1/placements. Query parameters: n (1..100),
 * category (a prefix: "electronics" matches "electronics/phones"),
 * exclude (comma separated item ids), window (1h, 24h, 7d). */
#include "at_core.h"
#include "serve_int.h"

#include <stdlib.h>
#include <string.h>

#define AT_RECO_MAX_EXCLUDE 100

/* The query of a request; false (answered with 400) when it is bad. */
typedef struct at_serve_rq {
    attune_reco_query_t q;
    char category[1024];
    char exclude[8192];
    const char *ex[AT_RECO_MAX_EXCLUDE];
} at_serve_rq_t;

static bool at_serve__rq(at_serve_t *s, at_http_req_t *r, at_serve_rq_t *rq)
{
    memset(&rq->q, 0, sizeof rq->q);
    char v[32];
    int n = at_http_query(r, "n", v, sizeof v);
    if (n >= 0) {
        char *end;
        long k = strtol(v, &end, 10);
        if (n == 0 || (size_t)n >= sizeof v || *end || k < 1 || k > 100) {
            at_serve__error(s, r, 400, NULL, "invalid_query", "n", "n must be 1 to 100");
            return false;
        }
        rq->q.n = (int)k;
    }
    n = at_http_query(r, "window", v, sizeof v);
    if (n >= 0) {
        int64_t ms = 0;
        if ((size_t)n >= sizeof v || at_parse_duration_ms(v, &ms) < 0 ||
            (ms != 3600000 && ms != 86400000 && ms != 7 * 86400000LL)) {
            at_serve__error(s, r, 400, NULL, "invalid_query", "window",
                            "window must be 1h, 24h or 7d");
            return false;
        }
        rq->q.window_ms = ms;
    }
    n = at_http_query(r, "category", rq->category, sizeof rq->category);
    if (n >= (int)sizeof rq->category) {
        at_serve__error(s, r, 400, NULL, "invalid_query", "category", "category is too long");
        return false;
    }
    if (n > 0)
        rq->q.category = rq->category;
    n = at_http_query(r, "exclude", rq->exclude, sizeof rq->exclude);
    if (n >= (int)sizeof rq->exclude) {
        at_serve__error(s, r, 400, NULL, "invalid_query", "exclude", "exclude is too long");
        return false;
    }
    size_t k = 0;
    for (char *p = n > 0 ? rq->exclude : NULL; p && k < AT_RECO_MAX_EXCLUDE;) {
        char *c = strchr(p, ',');
        if (c)
            *c = 0;
        if (*p)
            rq->ex[k++] = p;
        p = c ? c + 1 : NULL;
    }
    rq->q.exclude = rq->ex;
    rq->q.nexclude = k;
    return true;
}

int at_serve__recommendations(at_serve_t *s, at_http_req_t *r, const char *id, size_t n)
{
    at_serve_rq_t rqs; /* on the stack: the hot path allocates only its answer */
    at_serve_rq_t *rq = &rqs;
    if (!at_serve__rq(s, r, rq))
        return 0;
    char minpos[2048];
    int mp = at_http_query(r, "min_position", minpos, sizeof minpos);
    const char *mpos = mp > 0 && (size_t)mp < sizeof minpos ? minpos : NULL;
    /* a recent answer for the same user and state, here on the loop
     * thread; else the user's shard builds it */
    char *json = NULL;
    size_t len = 0;
    if (attune_recommend_cached(s->a, id, n, &rq->q, mpos, &json, &len) == 0) {
        at_serve__owned(s, r, 0, json, len, "recommendations");
        return 0;
    }
    at_serve_later_t *l = at_serve__later(s, r, "no such user");
    int rc = attune_recommend(s->a, id, n, &rq->q, mpos, at_serve__answer, l);
    if (rc == 0)
        return AT_HTTP_DEFERRED;
    free(l);
    if (rc == AT_EINVALID)
        at_serve__error(s, r, 400, NULL, "invalid_user", NULL,
                        "a user id is u:ID, a:ANONYMOUS_ID or a bare user id");
    else
        at_serve__error(s, r, 503, at_serve__retry_after(503), "unavailable", NULL,
                        "the engine is stopping");
    return 0;
}

int at_serve__trending(at_serve_t *s, at_http_req_t *r)
{
    if (!at_serve__is(r, "GET")) {
        at_serve__error(s, r, 405, "Allow: GET\r\n", "method_not_allowed", NULL, "use GET");
        return 0;
    }
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
        return 0;
    at_serve_rq_t *rq = at_xmalloc(sizeof *rq);
    if (at_serve__rq(s, r, rq)) {
        char *json = NULL;
        size_t len = 0;
        int rc = attune_trending(s->a, &rq->q, &json, &len);
        at_serve__owned(s, r, rc, json, len, "trending");
    }
    free(rq);
    return 0;
}

/* A call the engine refused at once: its status and error. */
static void at_serve__refused(at_serve_t *s, at_http_req_t *r, int rc, const attune_error_t *err)
{
    int st = at_serve__status(rc);
    at_serve__error(s, r, st, at_serve__retry_after(st), err->code, err->field, err->message);
}

static int at_serve__items_post(at_serve_t *s, at_http_req_t *r)
{
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_ADMIN, NULL))
        return 0;
    attune_error_t err = {0};
    at_serve_later_t *l = at_serve__later(s, r, "");
    int rc = attune_items_put(s->a, r->body, r->body_len, at_serve__answer, l, &err);
    if (rc == 0)
        return AT_HTTP_DEFERRED;
    free(l);
    at_serve__refused(s, r, rc, &err);
    return 0;
}

int at_serve__items(at_serve_t *s, at_http_req_t *r, size_t prefix)
{
    if (r->path_len == prefix) { /* /v1/items */
        if (!at_serve__is(r, "POST")) {
            at_serve__error(s, r, 405, "Allow: POST\r\n", "method_not_allowed", NULL,
                            "use POST to upsert items");
            return 0;
        }
        return at_serve__items_post(s, r);
    }
    const char *p = r->path + prefix + 1, *end = r->path + r->path_len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    size_t idn = (size_t)((slash ? slash : end) - p);
    bool similar = false;
    if (slash) {
        if ((size_t)(end - slash) == 8 && !memcmp(slash, "/similar", 8)) {
            similar = true;
        } else {
            at_serve__error(s, r, 404, NULL, "not_found", NULL, "no such route");
            return 0;
        }
    }
    char id[1100];
    size_t n;
    if (!at_serve__unescape(p, idn, id, sizeof id, &n)) {
        at_serve__error(s, r, 400, NULL, "invalid_item", NULL, "an item id is 1 to 1024 bytes");
        return 0;
    }
    if (!at_serve__is(r, "GET")) {
        at_serve__error(s, r, 405, "Allow: GET\r\n", "method_not_allowed", NULL, "use GET");
        return 0;
    }
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
        return 0;
    char *json = NULL;
    size_t len = 0;
    if (!similar) {
        int rc = attune_item_get(s->a, id, n, &json, &len);
        at_serve__owned(s, r, rc, json, len, "no such item");
        return 0;
    }
    at_serve_rq_t *rq = at_xmalloc(sizeof *rq);
    if (at_serve__rq(s, r, rq)) {
        int rc = attune_similar(s->a, id, n, &rq->q, &json, &len);
        at_serve__owned(s, r, rc, json, len, "no such item");
    }
    free(rq);
    return 0;
}

int at_serve__decide(at_serve_t *s, at_http_req_t *r)
{
    if (r->path_len == strlen("/v1/placements")) {
        if (!at_serve__is(r, "GET")) {
            at_serve__error(s, r, 405, "Allow: GET\r\n", "method_not_allowed", NULL, "use GET");
            return 0;
        }
        if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
            return 0;
        char *json = NULL;
        size_t len = 0;
        int rc = attune_placements(s->a, &json, &len);
        at_serve__owned(s, r, rc, json, len, "placements");
        return 0;
    }
    if (!at_serve__is(r, "POST")) {
        at_serve__error(s, r, 405, "Allow: POST\r\n", "method_not_allowed", NULL, "use POST");
        return 0;
    }
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
        return 0;
    attune_error_t err = {0};
    at_serve_later_t *l = at_serve__later(s, r, "no such user");
    int rc = attune_decide(s->a, r->body, r->body_len, at_serve__answer, l, &err);
    if (rc == 0)
        return AT_HTTP_DEFERRED;
    free(l);
    at_serve__refused(s, r, rc, &err);
    return 0;
}
