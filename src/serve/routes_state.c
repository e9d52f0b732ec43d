/* routes_state.c - the REST API of processing state (DESIGN.md §4):
 * GET /v1/users/{id}[/segments|/export], segments and triggers with
 * GET/PUT/DELETE, segment members, and the state digest. Reads of users
 * and every rule change are answered later, from an engine thread. */
#include "at_core.h"
#include "push_int.h"
#include "serve_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

at_serve_later_t *at_serve__later(at_serve_t *s, at_http_req_t *r, const char *what)
{
    at_serve_later_t *l = at_xcalloc(1, sizeof *l);
    l->s = s;
    l->r = r;
    l->what = what;
    at_serve__cors(s, r, l->cors, sizeof l->cors);
    return l;
}

/* The code of an error answer for a failure rc that is not the client's
 * (docs/api.md): the engine stopping or a full disk, or anything else. */
static const char *at_serve__server_code(int rc)
{
    if (rc == -ENOSPC)
        return "disk_full";
    return at_serve__status(rc) == 503 ? "unavailable" : "internal";
}

/* An error answer for a failure rc that is not the client's, with
 * Retry-After when it is temporary. */
static void at_serve__server_error(at_serve_t *s, at_http_req_t *r, int rc, const char *msg)
{
    int st = at_serve__status(rc);
    if (st < 500)
        st = 500; /* not the client's fault, whatever the code says */
    at_serve__error(s, r, st, at_serve__retry_after(st), at_serve__server_code(rc), NULL, msg);
}

void at_serve__answer(void *ud, int status, const char *json, size_t len)
{
    at_serve_later_t *l = ud;
    if (status == 0) {
        at_serve__observe(l->s, l->r, 200, false);
        at_http_respond_async(l->r, 200, "application/json", l->cors[0] ? l->cors : NULL, json,
                              len);
    } else {
        bool nf = status == AT_ENOTFOUND;
        int st = nf ? 404 : AT_MAX(at_serve__status(status), 500);
        at_buf_t b;
        at_buf_init(&b, 0);
        at_serve__error_body(&b, nf ? "not_found" : at_serve__server_code(status), NULL,
                             nf ? l->what : at_strerror(status));
        /* the CORS lines and, when it is temporary, Retry-After */
        const char *ra = at_serve__retry_after(st);
        char hdr[sizeof l->cors + sizeof "Retry-After: 1\r\n"];
        (void)snprintf(hdr, sizeof hdr, "%s%s", l->cors, ra ? ra : "");
        at_serve__observe(l->s, l->r, st, false);
        at_http_respond_async(l->r, st, "application/json", hdr[0] ? hdr : NULL, b.data, b.len);
        at_buf_deinit(&b);
    }
    free(l);
}

bool at_serve__unescape(const char *s, size_t n, char *out, size_t cap, size_t *len)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int v = 0;
            for (int j = 1; j <= 2; j++) {
                char h = i + (size_t)j < n ? s[i + (size_t)j] : 0;
                int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (d < 0)
                    return false;
                v = v * 16 + d;
            }
            c = (char)v;
            i += 2;
        }
        if (k + 1 >= cap || c == '\0')
            return false;
        out[k++] = c;
    }
    out[k] = '\0';
    *len = k;
    return k > 0;
}

int at_serve__users(at_serve_t *s, at_http_req_t *r, size_t prefix)
{
    const char *p = r->path + prefix, *end = r->path + r->path_len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    size_t idn = (size_t)((slash ? slash : end) - p);
    unsigned what = ATTUNE_USER_PROFILE | ATTUNE_USER_SEGMENTS;
    if (slash && end - slash >= 7 && !memcmp(slash, "/stream", 7)) /* push.c */
        return at_push_users_route(s, r, p, idn, slash + 7, (size_t)(end - slash - 7));
    if (slash) {
        size_t rest = (size_t)(end - slash);
        if (rest == 9 && !memcmp(slash, "/segments", 9)) {
            what = ATTUNE_USER_SEGMENTS;
        } else if (rest == 7 && !memcmp(slash, "/export", 7)) {
            what = ATTUNE_USER_EXPORT | ATTUNE_USER_SEGMENTS;
        } else if (rest == 16 && !memcmp(slash, "/recommendations", 16)) {
            what = 0; /* routes_reco.c */
        } else {
            at_serve__error(s, r, 404, NULL, "not_found", NULL, "no such route");
            return 0;
        }
    }
    char id[1024];
    size_t n;
    if (!at_serve__unescape(p, idn, id, sizeof id, &n)) {
        at_serve__error(s, r, 400, NULL, "invalid_user", NULL,
                        "a user id is u:ID, a:ANONYMOUS_ID or a bare user id");
        return 0;
    }
    if (!at_serve__is(r, "GET")) {
        at_serve__error(s, r, 405, "Allow: GET\r\n", "method_not_allowed", NULL, "use GET");
        return 0;
    }
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
        return 0;
    if (!what)
        return at_serve__recommendations(s, r, id, n);
    char minpos[2048];
    int mp = at_http_query(r, "min_position", minpos, sizeof minpos);
    at_serve_later_t *l = at_serve__later(s, r, "no such user");
    int rc = attune_user(s->a, id, n, what, mp > 0 && (size_t)mp < sizeof minpos ? minpos : NULL,
                         at_serve__answer, l);
    if (rc == 0)
        return AT_HTTP_DEFERRED;
    free(l);
    if (rc == AT_EINVALID)
        at_serve__error(s, r, 400, NULL, "invalid_user", NULL,
                        "a user id is u:ID, a:ANONYMOUS_ID or a bare user id");
    else
        at_serve__server_error(s, r, rc,
                               rc == AT_ECLOSED ? "the engine is stopping" : at_strerror(rc));
    return 0;
}

static int at_serve__members(at_serve_t *s, at_http_req_t *r, const char *name, size_t n)
{
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
        return 0;
    char cursor[64], lim[16];
    int cn = at_http_query(r, "cursor", cursor, sizeof cursor);
    int limit = at_http_query(r, "limit", lim, sizeof lim) > 0 ? atoi(lim) : 100;
    char *rule = NULL;
    size_t rl = 0;
    if (attune_rule_get(s->a, ATTUNE_SEGMENT, name, n, &rule, &rl) < 0) {
        at_serve__error(s, r, 404, NULL, "not_found", NULL, "no such segment");
        return 0;
    }
    attune_free(rule);
    at_serve_later_t *l = at_serve__later(s, r, "no such segment");
    int rc =
        attune_segment_members(s->a, name, n, cn > 0 ? cursor : NULL, limit, at_serve__answer, l);
    if (rc == 0)
        return AT_HTTP_DEFERRED;
    free(l);
    if (rc == AT_EINVALID)
        at_serve__error(s, r, 400, NULL, "invalid_cursor", "cursor",
                        "the cursor is not one this server gave out");
    else
        at_serve__server_error(s, r, rc,
                               rc == AT_ECLOSED ? "the engine is stopping" : at_strerror(rc));
    return 0;
}

int at_serve__rules(at_serve_t *s, at_http_req_t *r, int kind, size_t prefix)
{
    const char *p = r->path + prefix, *end = r->path + r->path_len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    char name[128];
    size_t n;
    if (!at_serve__unescape(p, (size_t)((slash ? slash : end) - p), name, sizeof name, &n)) {
        at_serve__error(s, r, 404, NULL, "not_found", NULL, "no such rule");
        return 0;
    }
    if (slash) {
        if (kind == ATTUNE_SEGMENT && end - slash == 8 && !memcmp(slash, "/members", 8) &&
            at_serve__is(r, "GET"))
            return at_serve__members(s, r, name, n);
        at_serve__error(s, r, 404, NULL, "not_found", NULL, "no such route");
        return 0;
    }
    const char *what = kind == ATTUNE_SEGMENT ? "no such segment" : "no such trigger";
    if (at_serve__is(r, "GET")) {
        if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
            return 0;
        char *json = NULL;
        size_t len = 0;
        int rc = attune_rule_get(s->a, kind, name, n, &json, &len);
        at_serve__owned(s, r, rc, json, len, what);
        return 0;
    }
    bool put = at_serve__is(r, "PUT");
    if (!put && !at_serve__is(r, "DELETE")) {
        at_serve__error(s, r, 405, "Allow: GET, PUT, DELETE\r\n", "method_not_allowed", NULL,
                        "use GET, PUT or DELETE");
        return 0;
    }
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_ADMIN, NULL))
        return 0;
    attune_error_t err = {0};
    at_serve_later_t *l = at_serve__later(s, r, what);
    int rc =
        put ? attune_rule_put(s->a, kind, name, n, r->body, r->body_len, at_serve__answer, l, &err)
            : attune_rule_delete(s->a, kind, name, n, at_serve__answer, l, &err);
    if (rc == 0)
        return AT_HTTP_DEFERRED;
    free(l);
    int st = at_serve__status(rc);
    if (!err.code[0] && st >= 500) { /* rules.json or the log could not be written */
        at_serve__server_error(s, r, rc, at_strerror(rc));
        return 0;
    }
    at_serve__error(s, r, st, at_serve__retry_after(st), err.code[0] ? err.code : "invalid_rule",
                    err.field, err.message[0] ? err.message : at_strerror(rc));
    return 0;
}

int at_serve__rules_list(at_serve_t *s, at_http_req_t *r, int kind)
{
    if (!at_serve__is(r, "GET")) {
        at_serve__error(s, r, 405, "Allow: GET\r\n", "method_not_allowed", NULL, "use GET");
        return 0;
    }
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
        return 0;
    char *json = NULL;
    size_t len = 0;
    int rc = attune_rule_list(s->a, kind, &json, &len);
    at_serve__owned(s, r, rc, json, len, "listing failed");
    return 0;
}

int at_serve__digest(at_serve_t *s, at_http_req_t *r)
{
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_ADMIN, NULL))
        return 0;
    at_serve_later_t *l = at_serve__later(s, r, "");
    if (attune_digest(s->a, at_serve__answer, l) == 0)
        return AT_HTTP_DEFERRED;
    free(l);
    at_serve__error(s, r, 503, "Retry-After: 1\r\n", "unavailable", NULL, "the engine is stopping");
    return 0;
}
