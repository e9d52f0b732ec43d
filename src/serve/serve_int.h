/* serve_int.h - what the files of the REST API share: the server's state
 * and the helpers that answer, check keys and map errors (routes.c), and
 * the handlers of users, segments and triggers (routes_state.c).
 *
 * THREAD SAFETY: handlers run on the HTTP loop threads; deferred answers
 * come from engine threads through at_http_respond_async().
 */
#ifndef AT_SERVE_INT_H
#define AT_SERVE_INT_H

#include "at_config.h"
#include "at_http.h"
#include "at_metrics.h"
#include "attune.h"

#include <stdatomic.h>
#include <stdbool.h>

typedef struct at_serve {
    attune_t *a;
    const at_config_t *cfg;
    at_http_server_t *http;
    at_hist_t lat_events;       /* request latency of POST /v1/events */
    at_hist_t lat_other;        /* of everything else */
    _Atomic uint64_t status[6]; /* answers by class: 1xx..5xx (index 1..5) */
    struct at_push *push;       /* push.c: streams to browsers */
} at_serve_t;

bool at_serve__is(const at_http_req_t *r, const char *method);
void at_serve__cors(at_serve_t *s, const at_http_req_t *r, char *out, size_t outlen);
void at_serve__observe(at_serve_t *s, const at_http_req_t *r, int status, bool events);
void at_serve__send(at_serve_t *s, at_http_req_t *r, int status, const char *extra,
                    const char *ctype, const char *body, size_t len);
void at_serve__json(at_serve_t *s, at_http_req_t *r, int status, const char *body, size_t len);
void at_serve__error_body(at_buf_t *b, const char *code, const char *field, const char *msg);
void at_serve__error(at_serve_t *s, at_http_req_t *r, int status, const char *extra,
                     const char *code, const char *field, const char *msg);
int at_serve__status(int rc);
const char *at_serve__retry_after(int status);
bool at_serve__auth(at_serve_t *s, at_http_req_t *r, int scope, unsigned *need_key);
bool at_serve__tail(const at_http_req_t *r, size_t prefix, char *out, size_t outlen);
void at_serve__owned(at_serve_t *s, at_http_req_t *r, int rc, char *json, size_t len,
                     const char *what);
bool at_serve__path(const at_http_req_t *r, const char *p);
bool at_serve__prefix(const at_http_req_t *r, const char *p);

/* An answer to come: the request, and the CORS lines computed now. */
typedef struct at_serve_later {
    at_serve_t *s;
    at_http_req_t *r;
    const char *what; /* for a 404 */
    char cors[512];
} at_serve_later_t;
at_serve_later_t *at_serve__later(at_serve_t *s, at_http_req_t *r, const char *what);
/* An attune_done_cb answering a later (and freeing it). Runs on an engine thread. */
void at_serve__answer(void *ud, int status, const char *json, size_t len);
/* Decodes %XX of a path segment into out; false when malformed or too long. */
bool at_serve__unescape(const char *s, size_t n, char *out, size_t cap, size_t *len);

/* routes_reco.c: return 0 or AT_HTTP_DEFERRED like a handler. */
int at_serve__items(at_serve_t *s, at_http_req_t *r, size_t prefix);
int at_serve__trending(at_serve_t *s, at_http_req_t *r);
/* POST /v1/decide, GET /v1/placements */
int at_serve__decide(at_serve_t *s, at_http_req_t *r);
/* GET /v1/users/{id}/recommendations, authorized already. */
int at_serve__recommendations(at_serve_t *s, at_http_req_t *r, const char *id, size_t n);

/* routes_state.c: return 0 or AT_HTTP_DEFERRED like a handler. */
int at_serve__users(at_serve_t *s, at_http_req_t *r, size_t prefix);
int at_serve__rules(at_serve_t *s, at_http_req_t *r, int kind, size_t prefix);
int at_serve__rules_list(at_serve_t *s, at_http_req_t *r, int kind);
int at_serve__digest(at_serve_t *s, at_http_req_t *r);

/* routes_sinks.c: the /v1/sinks endpoints; the sinks' metrics appended to out. */
int at_serve__sinks(at_serve_t *s, at_http_req_t *r);
int at_serve__sinks_metrics(at_buf_t *out);

#endif
