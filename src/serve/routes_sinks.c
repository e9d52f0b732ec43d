/* routes_sinks.c - the admin endpoints of the sinks (docs/api.md
 * "Webhooks"): GET /v1/sinks, GET /v1/sinks/{name}/dead?limit=, POST
 * /v1/sinks/{name}/dead/replay. The sinks library sits beside this one (both
 * on the engine), so the CLI hands its functions over with
 * at_serve_set_sinks(). */
#include "at_serve.h"
#include "serve_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const at_serve_sinks_t *_Atomic at_serve__sinks_ops;

void at_serve_set_sinks(const at_serve_sinks_t *ops)
{
    atomic_store(&at_serve__sinks_ops, ops);
}

int at_serve__sinks_metrics(at_buf_t *out)
{
    const at_serve_sinks_t *o = atomic_load(&at_serve__sinks_ops);
    return o && o->metrics ? o->metrics(o->ud, out) : 0;
}

/* /v1/sinks/{name}/dead or /v1/sinks/{name}/dead/replay: name into out,
 * *replay set for the second. */
static bool at_serve__sink_path(const at_http_req_t *r, char *out, size_t cap, bool *replay)
{
    size_t pre = strlen("/v1/sinks/");
    const char *p = r->path + pre, *end = r->path + r->path_len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (!slash || slash == p || (size_t)(slash - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(slash - p));
    out[slash - p] = '\0';
    size_t rest = (size_t)(end - slash);
    *replay = rest == strlen("/dead/replay") && !memcmp(slash, "/dead/replay", rest);
    return *replay || (rest == strlen("/dead") && !memcmp(slash, "/dead", rest));
}

int at_serve__sinks(at_serve_t *s, at_http_req_t *r)
{
    const at_serve_sinks_t *o = atomic_load(&at_serve__sinks_ops);
    char *json = NULL;
    size_t len = 0;
    if (at_serve__path(r, "/v1/sinks")) {
        if (!at_serve__is(r, "GET")) {
            at_serve__error(s, r, 405, "Allow: GET\r\n", "method_not_allowed", NULL, "use GET");
            return 0;
        }
        if (!at_serve__auth(s, r, ATTUNE_SCOPE_ADMIN, NULL))
            return 0;
        if (!o) {
            at_serve__json(s, r, 200, "{\"sinks\":[]}", 12);
            return 0;
        }
        int rc = o->list(o->ud, &json, &len);
        at_serve__owned(s, r, rc, json, len, "listing the sinks failed");
        return 0;
    }
    char name[80];
    bool replay = false;
    if (!at_serve__sink_path(r, name, sizeof name, &replay)) {
        at_serve__error(s, r, 404, NULL, "not_found", NULL, "no such route");
        return 0;
    }
    const char *want = replay ? "POST" : "GET";
    if (!at_serve__is(r, want)) {
        at_serve__error(s, r, 405, replay ? "Allow: POST\r\n" : "Allow: GET\r\n",
                        "method_not_allowed", NULL, replay ? "use POST" : "use GET");
        return 0;
    }
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_ADMIN, NULL))
        return 0;
    if (!o) {
        at_serve__error(s, r, 404, NULL, "not_found", "name", "no such sink");
        return 0;
    }
    int rc;
    if (replay) {
        rc = o->replay(o->ud, name, &json, &len);
    } else {
        char v[16];
        int limit = at_http_query(r, "limit", v, sizeof v) > 0 ? atoi(v) : 100;
        if (limit <= 0 || limit > 10000) {
            at_serve__error(s, r, 400, NULL, "invalid_parameter", "limit",
                            "limit must be 1 to 10000");
            return 0;
        }
        rc = o->dead(o->ud, name, limit, &json, &len);
    }
    if (rc == AT_ENOTFOUND) {
        at_serve__error(s, r, 404, NULL, "not_found", "name", "no such sink");
        return 0;
    }
    at_serve__owned(s, r, rc, json, len, "reading the dead-letter log failed");
    return 0;
}
