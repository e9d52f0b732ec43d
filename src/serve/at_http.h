/* at_http.h - the HTTP/1.1 server under the REST API: keep-alive,
 * pipelining, limits on headers, body size and idle time, defence against
 * slow clients, and responses that may be given later from another thread
 * (an ingest answer is sent only after its group commit's fsync).
 *
 * The library underneath was chosen by measurement:
 * docs/decisions/0001-http-server.md. Nothing outside src/serve/http*.c
 * depends on it.
 *
 * THREAD SAFETY: handlers run on a loop thread. at_http_respond() is called
 * on that loop thread; at_http_respond_async() from any thread.
 */
#ifndef AT_HTTP_H
#define AT_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct at_http_server at_http_server_t;

/* A request. Valid from the handler call until it is responded to, even if
 * the client went away meanwhile (the response is then discarded). Strings
 * are not NUL-terminated unless said. */
typedef struct at_http_req {
    const char *method;
    size_t method_len;
    const char *path; /* decoded? no: raw path without the query */
    size_t path_len;
    const char *query; /* after '?', without it; may be empty */
    size_t query_len;
    const char *body;
    size_t body_len;
    int64_t start_ns; /* monotonic time the request's first byte arrived */
    void *priv;       /* the server's */
} at_http_req_t;

/* Returns a header's value (case-insensitive name) or NULL; *len set. */
const char *at_http_header(const at_http_req_t *req, const char *name, size_t *len);
/* Copies the URL-decoded value of query parameter name into out (NUL-
 * terminated, truncated to outlen-1). Returns the decoded length, or -1 when
 * absent. The length is the whole value's, so a result >= outlen means it
 * was truncated. "%XX" and "+" are decoded, in the name too. */
int at_http_query(const at_http_req_t *req, const char *name, char *out, size_t outlen);
/* The peer address as text ("127.0.0.1:53422"). */
const char *at_http_peer(const at_http_req_t *req);

/* A handler returns 0 after calling at_http_respond(), or AT_HTTP_DEFERRED
 * when it will answer later with at_http_respond_async(). While a request is
 * deferred, later pipelined requests on that connection wait. */
#define AT_HTTP_DEFERRED 1
typedef int (*at_http_handler_fn)(void *ud, at_http_req_t *req);

/* Sends the response. headers: extra header lines, each ending in "\r\n",
 * or NULL. body is copied. Loop thread only. */
void at_http_respond(at_http_req_t *req, int status, const char *content_type, const char *headers,
                     const char *body, size_t len);
/* The same from any thread: body and headers are copied, the loop thread
 * is woken and sends it. */
void at_http_respond_async(at_http_req_t *req, int status, const char *content_type,
                           const char *headers, const char *body, size_t len);
/* Answers {"error":{"code":code,"message":message}} as application/json
 * (message is JSON-escaped). Loop thread only, like at_http_respond(). */
void at_http_respond_error(at_http_req_t *req, int status, const char *code, const char *message);
/* The same from any thread, like at_http_respond_async(). */
void at_http_respond_error_async(at_http_req_t *req, int status, const char *code,
                                 const char *message);

/* Zero fields take defaults: threads 1, max_header_bytes 16 KiB (at most
 * 1 MiB), max_body_bytes 1 MiB, idle_timeout_ms 60 s, request_timeout_ms
 * 30 s, max_connections 10000 (split evenly over the threads). Request
 * bodies must come with Content-Length: chunked ones get 411. */
typedef struct at_http_opts {
    const char *listen;         /* "127.0.0.1:8080", "[::1]:8080", ":8080" */
    int threads;                /* loop threads (SO_REUSEPORT); default 1 */
    size_t max_header_bytes;    /* request line + headers; 431 past it */
    size_t max_body_bytes;      /* 413 past it (checked on Content-Length first) */
    int64_t idle_timeout_ms;    /* keep-alive connection with no request */
    int64_t request_timeout_ms; /* a request must arrive whole within this (408) */
    int max_connections;        /* accept pauses past it */
    at_http_handler_fn handler;
    void *ud;
} at_http_opts_t;

/* Binds and listens (returns -errno, e.g. -EADDRINUSE, with err filled);
 * does not start threads. */
int at_http_new(at_http_server_t **out, const at_http_opts_t *opts, char *err, size_t errlen);
/* The port actually bound (for listen ":0"). */
int at_http_port(const at_http_server_t *s);
/* Runs the loop threads until at_http_stop(); returns after they exit. */
int at_http_run(at_http_server_t *s);
/* Async-signal-safe and thread-safe: stops accepting, lets requests in
 * flight finish (deferred ones included, up to a grace period of 5 s), then
 * makes at_http_run() return. */
void at_http_stop(at_http_server_t *s);
/* After at_http_run() returned: frees everything, requests still deferred
 * included (an at_http_respond_async() before this is dropped; one after it
 * is a use after free). */
void at_http_free(at_http_server_t *s);

/* Counters for /metrics. */
typedef struct at_http_stats {
    uint64_t connections_open;
    uint64_t connections_total;
    uint64_t requests_total;
    uint64_t rejected_limits; /* 408/413/431/503 by the server itself */
} at_http_stats_t;
void at_http_stats(const at_http_server_t *s, at_http_stats_t *st);

#endif
