/* routes.c - the REST API (DESIGN.md §4): routing, keys and scopes, CORS,
 * JSON errors, and the handlers of ingestion, schemas, the rejected log,
 * metrics and health. */
#include "at_config.h"
#include "at_core.h"
#include "at_http.h"
#include "at_metrics.h"
#include "at_serve.h"
#include "push_int.h"
#include "serve_int.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static at_http_server_t *_Atomic at_serve__running;

/* ---- answers ------------------------------------------------------------ */

bool at_serve__is(const at_http_req_t *r, const char *method)
{
    return r->method_len == strlen(method) && !memcmp(r->method, method, r->method_len);
}

/* CORS: echo the Origin back when it is configured. Writes header lines,
 * or none when they would not fit in out (an Origin longer than any real
 * one is not echoed). */
void at_serve__cors(at_serve_t *s, const at_http_req_t *r, char *out, size_t outlen)
{
    out[0] = 0;
    size_t n = 0;
    const char *origin = at_http_header(r, "origin", &n);
    if (!origin || !s->cfg->cors_origins || n >= outlen)
        return;
    for (char **o = s->cfg->cors_origins; *o; o++) {
        if ((strlen(*o) == n && !memcmp(*o, origin, n)) || !strcmp(*o, "*")) {
            int w = snprintf(out, outlen,
                             "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n"
                             "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
                             "Access-Control-Allow-Methods: GET, POST, PUT, DELETE, OPTIONS\r\n",
                             (int)n, origin);
            if (w < 0 || (size_t)w >= outlen)
                out[0] = 0; /* cut header lines would corrupt the answer */
            return;
        }
    }
}

void at_serve__observe(at_serve_t *s, const at_http_req_t *r, int status, bool events)
{
    at_hist_observe_ns(events ? &s->lat_events : &s->lat_other, at_time_mono_ns() - r->start_ns);
    if (status >= 100 && status < 600)
        atomic_fetch_add_explicit(&s->status[status / 100], 1, memory_order_relaxed);
}

void at_serve__send(at_serve_t *s, at_http_req_t *r, int status, const char *extra,
                    const char *ctype, const char *body, size_t len)
{
    char hdr[1024];
    size_t room = extra ? strlen(extra) : 0; /* kept free for extra, which is never cut */
    AT_ASSERT(room < sizeof hdr / 2);
    at_serve__cors(s, r, hdr, sizeof hdr - room);
    if (extra)
        strncat(hdr, extra, sizeof hdr - strlen(hdr) - 1);
    at_serve__observe(s, r, status, false);
    at_http_respond(r, status, ctype, hdr[0] ? hdr : NULL, body, len);
}

void at_serve__json(at_serve_t *s, at_http_req_t *r, int status, const char *body, size_t len)
{
    at_serve__send(s, r, status, NULL, "application/json", body, len);
}

/* Formats {"error":{"code","message","field"?}} into b. */
void at_serve__error_body(at_buf_t *b, const char *code, const char *field, const char *msg)
{
    at_buf_puts(b, "{\"error\":{\"code\":");
    at_buf_json_str(b, code, strlen(code));
    at_buf_puts(b, ",\"message\":");
    at_buf_json_str(b, msg, strlen(msg));
    if (field && *field) {
        at_buf_puts(b, ",\"field\":");
        at_buf_json_str(b, field, strlen(field));
    }
    at_buf_puts(b, "}}");
}

void at_serve__error(at_serve_t *s, at_http_req_t *r, int status, const char *extra,
                     const char *code, const char *field, const char *msg)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    at_serve__error_body(&b, code, field, msg);
    at_serve__send(s, r, status, extra, "application/json", b.data, b.len);
    at_buf_deinit(&b);
}

/* Maps an engine error code to an HTTP status. */
int at_serve__status(int rc)
{
    switch (rc) {
    case AT_EPARSE:
    case AT_EINVALID:
        return 400;
    case AT_EAUTH:
        return 401;
    case AT_ENOTFOUND:
        return 404;
    case AT_ECONFLICT:
        return 409;
    case AT_ETOOBIG:
        return 413;
    case AT_EFULL:
        return 429;
    case AT_EUNAVAIL:
    case AT_ECLOSED:
    case -ENOSPC:
        return 503;
    default:
        return 500;
    }
}

const char *at_serve__retry_after(int status)
{
    return status == 429 || status == 503 ? "Retry-After: 1\r\n" : NULL;
}

/* ---- keys ---------------------------------------------------------------- */

/* Returns true when the request may go on. A bearer token must carry scope;
 * an ingest request may also bring ?key= or write_key (need_key says the
 * body must then be checked). */
bool at_serve__auth(at_serve_t *s, at_http_req_t *r, int scope, unsigned *need_key)
{
    if (attune_dev_mode(s->a))
        return true;
    size_t n = 0;
    const char *h = at_http_header(r, "authorization", &n);
    if (h && n > 7 && !strncasecmp(h, "Bearer ", 7)) {
        if (attune_auth(s->a, h + 7, n - 7, scope) == 0)
            return true;
        at_serve__error(s, r, 403, NULL, "forbidden", NULL, "the key is not valid for this scope");
        return false;
    }
    char key[256];
    int kn;
    if (scope == ATTUNE_SCOPE_INGEST && (kn = at_http_query(r, "key", key, sizeof key)) >= 0) {
        if (attune_auth(s->a, key, (size_t)kn, scope) == 0)
            return true;
        at_serve__error(s, r, 403, NULL, "forbidden", "key", "the key is not an ingest key");
        return false;
    }
    if (scope == ATTUNE_SCOPE_INGEST && need_key) {
        *need_key = ATTUNE_INGEST_NEED_KEY;
        return true;
    }
    at_serve__error(s, r, 401, "WWW-Authenticate: Bearer\r\n", "unauthorized", NULL,
                    "an API key is required (Authorization: Bearer KEY)");
    return false;
}

/* ---- POST /v1/events ------------------------------------------------------ */

typedef struct at_serve_pending {
    at_serve_t *s;
    at_http_req_t *r;
    char cors[512];
} at_serve_pending_t;

/* Runs on the engine's writer thread once the batch is durable. */
static void at_serve__ingested(void *ud, const attune_ingest_result_t *res)
{
    at_serve_pending_t *p = ud;
    at_serve_t *s = p->s;
    if (res->status == 0) {
        at_serve__observe(s, p->r, 200, true);
        at_http_respond_async(p->r, 200, "application/json", p->cors[0] ? p->cors : NULL, res->json,
                              res->json_len);
    } else {
        int st = at_serve__status(res->status);
        at_buf_t b;
        at_buf_init(&b, 0);
        at_serve__error_body(&b, res->error.code, res->error.field, res->error.message);
        char hdr[sizeof p->cors + sizeof "Retry-After: 1\r\n"]; /* holds both */
        (void)snprintf(hdr, sizeof hdr, "%s%s", p->cors, st == 503 ? "Retry-After: 1\r\n" : "");
        at_serve__observe(s, p->r, st, true);
        at_http_respond_async(p->r, st, "application/json", hdr[0] ? hdr : NULL, b.data, b.len);
        at_buf_deinit(&b);
    }
    free(p);
}

static int at_serve__body_kind(const at_http_req_t *r)
{
    size_t n = 0;
    const char *ct = at_http_header(r, "content-type", &n);
    if (!ct)
        return ATTUNE_BODY_TEXT;
    if (n >= 20 && !strncasecmp(ct, "application/x-ndjson", 20))
        return ATTUNE_BODY_NDJSON;
    if (n >= 16 && !strncasecmp(ct, "application/json", 16))
        return ATTUNE_BODY_JSON;
    return ATTUNE_BODY_TEXT;
}

static int at_serve__events(at_serve_t *s, at_http_req_t *r)
{
    unsigned flags = 0;
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_INGEST, &flags))
        return 0;
    at_serve_pending_t *p = at_xcalloc(1, sizeof *p);
    p->s = s;
    p->r = r;
    at_serve__cors(s, r, p->cors, sizeof p->cors);
    attune_error_t err = {0};
    int rc = attune_ingest(s->a, r->body, r->body_len, at_serve__body_kind(r), flags,
                           at_serve__ingested, p, &err);
    if (rc == 0)
        return AT_HTTP_DEFERRED;
    free(p);
    int st = at_serve__status(rc);
    at_serve__error(s, r, st, at_serve__retry_after(st), err.code, err.field, err.message);
    return 0;
}

/* ---- schemas ------------------------------------------------------------ */

/* Copies the path segment after prefix into out; false if empty/too long. */
bool at_serve__tail(const at_http_req_t *r, size_t prefix, char *out, size_t outlen)
{
    size_t n = r->path_len - prefix;
    if (n == 0 || n >= outlen || memchr(r->path + prefix, '/', n))
        return false;
    memcpy(out, r->path + prefix, n);
    out[n] = 0;
    return true;
}

void at_serve__owned(at_serve_t *s, at_http_req_t *r, int rc, char *json, size_t len,
                     const char *what)
{
    if (rc == 0) {
        at_serve__json(s, r, 200, json, len);
        attune_free(json);
    } else {
        at_serve__error(s, r, at_serve__status(rc), NULL,
                        rc == AT_ENOTFOUND ? "not_found" : "internal", NULL, what);
    }
}

static int at_serve__schema(at_serve_t *s, at_http_req_t *r, size_t prefix)
{
    char type[128];
    if (!at_serve__tail(r, prefix, type, sizeof type)) {
        at_serve__error(s, r, 404, NULL, "not_found", NULL, "no such schema path");
        return 0;
    }
    if (at_serve__is(r, "GET")) {
        if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
            return 0;
        char v[16];
        int version = at_http_query(r, "version", v, sizeof v) > 0 ? atoi(v) : 0;
        char *json = NULL;
        size_t len = 0;
        int rc = attune_schema_get(s->a, type, version, &json, &len);
        at_serve__owned(s, r, rc, json, len, "no schema for this event type and version");
        return 0;
    }
    if (!at_serve__is(r, "PUT")) {
        at_serve__error(s, r, 405, "Allow: GET, PUT\r\n", "method_not_allowed", NULL,
                        "use GET or PUT");
        return 0;
    }
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_ADMIN, NULL))
        return 0;
    attune_error_t err = {0};
    int version = 0;
    int rc = attune_schema_put(s->a, type, r->body, r->body_len, &version, &err);
    if (rc < 0) {
        at_serve__error(s, r, at_serve__status(rc), NULL, err.code, err.field, err.message);
        return 0;
    }
    char body[256];
    int n = snprintf(body, sizeof body, "{\"type\":\"%s\",\"version\":%d}", type, version);
    at_serve__json(s, r, 200, body, (size_t)n);
    return 0;
}

/* ---- operations ------------------------------------------------------------ */

static int at_serve__metrics(at_serve_t *s, at_http_req_t *r)
{
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
        return 0;
    char *text = NULL;
    size_t len = 0;
    attune_metrics(s->a, &text, &len);
    at_buf_t b;
    at_buf_init(&b, 0);
    at_buf_append(&b, text, len);
    attune_free(text);
    at_hist_write(&s->lat_events, &b, "attune_http_request_seconds",
                  "Time from a request's first byte to its answer.", "route=\"events\"");
    at_hist_write(&s->lat_other, &b, "attune_http_request_seconds", NULL, "route=\"other\"");
    at_buf_puts(&b, "# HELP attune_http_responses_total Answers by status class.\n"
                    "# TYPE attune_http_responses_total counter\n");
    for (int c = 1; c <= 5; c++) {
        char lb[32]; /* holds any int */
        (void)snprintf(lb, sizeof lb, "class=\"%dxx\"", c);
        at_metric_write(&b, "attune_http_responses_total", "counter", NULL, lb,
                        (double)atomic_load(&s->status[c]));
    }
    at_http_stats_t hs;
    at_http_stats(s->http, &hs);
    at_metric_write(&b, "attune_http_connections", "gauge", "Open HTTP connections.", NULL,
                    (double)hs.connections_open);
    at_metric_write(&b, "attune_http_limit_refusals_total", "counter",
                    "Requests refused by the server's own limits (408, 413, 431, 503).", NULL,
                    (double)hs.rejected_limits);
    (void)at_serve__sinks_metrics(&b);
    at_push_metrics(s->push, &b);
    at_serve__send(s, r, 200, NULL, "text/plain; version=0.0.4", b.data, b.len);
    at_buf_deinit(&b);
    return 0;
}

static int at_serve__rejected(at_serve_t *s, at_http_req_t *r)
{
    if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
        return 0;
    char v[16];
    int limit = at_http_query(r, "limit", v, sizeof v) > 0 ? atoi(v) : 100;
    char *json = NULL;
    size_t len = 0;
    int rc = attune_rejected(s->a, limit, &json, &len);
    at_serve__owned(s, r, rc, json, len, "reading the rejected log failed");
    return 0;
}

static const char at_serve__ok[] = "{\"status\":\"ok\"}";

static int at_serve__readyz(at_serve_t *s, at_http_req_t *r)
{
    if (attune_ready(s->a))
        at_serve__json(s, r, 200, "{\"status\":\"ready\"}", 18);
    else
        at_serve__error(s, r, 503, "Retry-After: 1\r\n", "recovering", NULL,
                        "the engine is recovering its log");
    return 0;
}

/* ---- routing ------------------------------------------------------------------ */

bool at_serve__path(const at_http_req_t *r, const char *p)
{
    return r->path_len == strlen(p) && !memcmp(r->path, p, r->path_len);
}

bool at_serve__prefix(const at_http_req_t *r, const char *p)
{
    return r->path_len > strlen(p) && !memcmp(r->path, p, strlen(p));
}

static int at_serve__handle(void *ud, at_http_req_t *r)
{
    at_serve_t *s = ud;
    if (at_serve__path(r, "/healthz")) {
        at_serve__observe(s, r, 200, false);
        at_http_respond(r, 200, "application/json", NULL, at_serve__ok, sizeof at_serve__ok - 1);
        return 0;
    }
    if (at_serve__is(r, "OPTIONS")) {
        at_serve__send(s, r, 204, NULL, "text/plain", "", 0);
        return 0;
    }
    if (at_serve__path(r, "/v1/events")) {
        if (at_serve__is(r, "POST"))
            return at_serve__events(s, r);
        at_serve__error(s, r, 405, "Allow: POST\r\n", "method_not_allowed", NULL, "use POST");
        return 0;
    }
    if (at_serve__path(r, "/readyz"))
        return at_serve__readyz(s, r);
    if (at_serve__path(r, "/metrics"))
        return at_serve__metrics(s, r);
    if (at_serve__prefix(r, "/v1/schemas/"))
        return at_serve__schema(s, r, strlen("/v1/schemas/"));
    if (at_serve__path(r, "/v1/schemas") && at_serve__is(r, "GET")) {
        if (!at_serve__auth(s, r, ATTUNE_SCOPE_READ, NULL))
            return 0;
        char *json = NULL;
        size_t len = 0;
        int rc = attune_schema_list(s->a, &json, &len);
        at_serve__owned(s, r, rc, json, len, "listing schemas failed");
        return 0;
    }
    if (at_serve__path(r, "/v1/rejected") && at_serve__is(r, "GET"))
        return at_serve__rejected(s, r);
    if (at_serve__path(r, "/v1/ws"))
        return at_push_ws_route(s, r);
    if (at_serve__prefix(r, "/v1/users/"))
        return at_serve__users(s, r, strlen("/v1/users/"));
    if (at_serve__path(r, "/v1/items") || at_serve__prefix(r, "/v1/items/"))
        return at_serve__items(s, r, strlen("/v1/items"));
    if (at_serve__path(r, "/v1/trending"))
        return at_serve__trending(s, r);
    if (at_serve__path(r, "/v1/decide") || at_serve__path(r, "/v1/placements"))
        return at_serve__decide(s, r);
    if (at_serve__prefix(r, "/v1/segments/"))
        return at_serve__rules(s, r, ATTUNE_SEGMENT, strlen("/v1/segments/"));
    if (at_serve__path(r, "/v1/segments"))
        return at_serve__rules_list(s, r, ATTUNE_SEGMENT);
    if (at_serve__prefix(r, "/v1/triggers/"))
        return at_serve__rules(s, r, ATTUNE_TRIGGER, strlen("/v1/triggers/"));
    if (at_serve__path(r, "/v1/triggers"))
        return at_serve__rules_list(s, r, ATTUNE_TRIGGER);
    if (at_serve__path(r, "/v1/admin/digest") && at_serve__is(r, "GET"))
        return at_serve__digest(s, r);
    if (at_serve__path(r, "/v1/sinks") || at_serve__prefix(r, "/v1/sinks/"))
        return at_serve__sinks(s, r);
    at_serve__error(s, r, 404, NULL, "not_found", NULL, "no such route");
    return 0;
}

static void at_serve__on_signal(int sig)
{
    (void)sig;
    at_serve_stop();
}

void at_serve_stop(void)
{
    at_http_server_t *h = atomic_load(&at_serve__running);
    if (h)
        at_http_stop(h);
}

int at_serve_run(attune_t *a, char *err, size_t errlen)
{
    at_serve_t *s = at_xcalloc(1, sizeof *s);
    s->a = a;
    s->cfg = attune_config(a);
    at_hist_init(&s->lat_events);
    at_hist_init(&s->lat_other);
    at_http_opts_t o = {
        .listen = s->cfg->listen,
        .threads = s->cfg->http_threads,
        .max_header_bytes = (size_t)s->cfg->max_header_bytes,
        .max_body_bytes = (size_t)s->cfg->max_body_bytes,
        .idle_timeout_ms = s->cfg->idle_timeout_ms,
        .request_timeout_ms = s->cfg->request_timeout_ms,
        .max_connections = s->cfg->max_connections,
        .handler = at_serve__handle,
        .ud = s,
    };
    int rc = at_http_new(&s->http, &o, err, errlen);
    if (rc < 0)
        goto out;
    s->push = at_push_new(s);
    if ((rc = at_push_start(s->push)) < 0) {
        (void)snprintf(err, errlen, "push: cannot start its threads: %s", at_strerror(rc));
        goto out;
    }
    atomic_store(&at_serve__running, s->http);
    struct sigaction sa = {.sa_handler = at_serve__on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    (void)signal(SIGPIPE, SIG_IGN); /* cannot fail for SIGPIPE */
    AT_INFO("listening", "addr=%s port=%d data_dir=%s fsync=%s dev_mode=%d", s->cfg->listen,
            at_http_port(s->http), s->cfg->data_dir,
            s->cfg->fsync == AT_FSYNC_ALWAYS  ? "always"
            : s->cfg->fsync == AT_FSYNC_BATCH ? "batch"
                                              : "never",
            attune_dev_mode(a));
    rc = at_http_run(s->http);
    atomic_store(&at_serve__running, NULL);
    AT_INFO("stopped", "%s", "reason=signal");
out:
    at_push_stop(s->push); /* no more sends: the loops have ended */
    if (s->http)
        at_http_free(s->http);
    at_push_free(s->push);
    free(s);
    return rc;
}
