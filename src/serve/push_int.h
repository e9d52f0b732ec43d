/* push_int.h - push to the browser (DESIGN.md §4, §7): the hub that
 * follows the output bus and routes each output to its user's open
 * connections (push.c), and the signed per-user stream tokens
 * (push_token.c). docs/decisions/0006-push.md.
 *
 * THREAD SAFETY: at_push_new/start/stop/free on the serving thread; the
 * route handlers on HTTP loop threads; at_push_metrics from any thread.
 */
#ifndef AT_PUSH_INT_H
#define AT_PUSH_INT_H

#include "serve_int.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct at_push at_push_t;

/* The hub, not yet running (no thread). */
at_push_t *at_push_new(at_serve_t *s);
/* Starts the hub's threads; 0 or -errno. */
int at_push_start(at_push_t *p);
/* Stops and joins the threads (after the HTTP loops ended). */
void at_push_stop(at_push_t *p);
/* After at_http_free(): frees what is left. NULL is fine. */
void at_push_free(at_push_t *p);
/* Appends the attune_push_* metrics. Any thread. */
void at_push_metrics(at_push_t *p, at_buf_t *b);

/* GET /v1/users/{id}/stream and POST /v1/users/{id}/stream-token: id is
 * the raw (escaped) path segment, rest what follows "/stream" ("" or
 * "-token"). Returns 0 like a handler. */
int at_push_users_route(at_serve_t *s, at_http_req_t *r, const char *id, size_t idn,
                        const char *rest, size_t restn);
/* GET /v1/ws. */
int at_push_ws_route(at_serve_t *s, at_http_req_t *r);

/* Parses a Last-Event-ID "P:OFFSET" (P below partitions). Any thread. */
bool at_push_position_parse(const char *s, size_t n, int partitions, int *part, int64_t *off);

/* ---- tokens (push_token.c) ----------------------------------------------- */
#define AT_PUSH_SECRET_MAX 256
#define AT_PUSH_USER_MAX 512
#define AT_PUSH_TOKEN_MAX 1024

/* Writes the token for user (namespaced key) valid until exp_s (Unix
 * seconds) into out: "EXP.USER.SIG", USER base64url of the key, SIG
 * base64url of HMAC-SHA256(secret, "EXP.USER"). Returns its length, or 0
 * when the user key is too long. Any thread. */
size_t at_push_token_make(const unsigned char *secret, size_t slen, const char *user, size_t ulen,
                          int64_t exp_s, char *out, size_t cap);
enum { AT_PUSH_TOKEN_OK = 0, AT_PUSH_TOKEN_BAD = 1, AT_PUSH_TOKEN_EXPIRED = 2 };
/* Checks token t[0..n) at time now_s: AT_PUSH_TOKEN_OK with the user key
 * copied into user (NUL-terminated, *ulen set) and *exp_s, BAD when
 * malformed or the signature is wrong (compared in constant time),
 * EXPIRED when the signature holds but the time passed. Any thread. */
int at_push_token_check(const unsigned char *secret, size_t slen, const char *t, size_t n,
                        int64_t now_s, char *user, size_t ucap, size_t *ulen, int64_t *exp_s);

#endif
