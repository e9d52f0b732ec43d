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

/* ---- streaming answers and WebSocket ------------------------------------ */

/* A long-lived answer: a Server-Sent Events stream, or a WebSocket after
 * the upgrade. Its connection takes no further requests and gives back its
 * read buffer; what the owner sends goes through the loop's async queue.
 *
 * Framing of a stream: close-delimited (no Content-Length, no chunked
 * coding, "Connection: close"): the body ends when the connection closes,
 * which is what an event stream does anyway.
 *
 * Memory: the bytes sent but not yet written to the socket (in the queue
 * and in the connection's output buffer) are capped per stream; a send
 * past the cap is refused (AT_EFULL) and the caller counts it. Nothing
 * blocks and nothing grows without bound.
 *
 * Lifetime: a stream has two references, the connection's and the
 * owner's. gone() runs exactly once, on the loop thread, when the
 * connection closes for whatever reason (client left, error, write stall
 * past idle_timeout_ms, server stop, or the owner's at_http_stream_end);
 * sends after it return AT_ECLOSED. The owner drops its reference with
 * at_http_stream_release() (in gone() or later) and must not touch the
 * stream afterwards. Sends must stop before at_http_free(). */
typedef struct at_http_stream at_http_stream_t;
typedef void (*at_http_gone_fn)(void *ud, at_http_stream_t *st);
/* A text message from a WebSocket client, on the loop thread; data is
 * valid during the call only. */
typedef void (*at_http_ws_msg_fn)(void *ud, at_http_stream_t *st, const char *data, size_t len);

/* Starts a streaming answer from the handler (which then returns 0): the
 * status line, Content-Type, the caller's header lines (each ending in
 * "\r\n", or NULL) and Connection: close are queued now. max_unsent: the
 * cap above (0: 64 KiB). Loop thread. The request stays readable until the
 * handler returns. */
at_http_stream_t *at_http_stream_start(at_http_req_t *req, int status, const char *ctype,
                                       const char *headers, size_t max_unsent, at_http_gone_fn gone,
                                       void *ud);
/* True when the request asks for a WebSocket (Upgrade: websocket). */
int at_http_ws_requested(const at_http_req_t *req);
/* Answers the upgrade (RFC 6455 handshake: 101 with Sec-WebSocket-Accept
 * and the caller's header lines) and hands the connection to a wslay
 * context: text messages come to on_msg, pings are answered, a close is
 * answered and ends the stream. Returns NULL after answering 400
 * (bad_upgrade) or 426 (another protocol version) itself. Text messages
 * longer than max_body_bytes close the connection with 1009. Loop
 * thread, from the handler. */
at_http_stream_t *at_http_ws_accept(at_http_req_t *req, const char *headers, size_t max_unsent,
                                    at_http_ws_msg_fn on_msg, at_http_gone_fn gone, void *ud);
/* Sends len bytes (SSE: raw bytes of the body; WebSocket: one text
 * message). Copies. Returns 0, AT_EFULL (past the cap: not sent) or
 * AT_ECLOSED (the connection is gone). Any thread. */
int at_http_stream_send(at_http_stream_t *st, const char *data, size_t len);
/* WebSocket: queues a ping (a no-op for SSE). Same returns. Any thread. */
int at_http_stream_ping(at_http_stream_t *st);
/* Ends the stream once what was sent is written (WebSocket: with a close
 * frame, code 1000 or 1001 when going_away); gone() follows. Any thread. */
void at_http_stream_end(at_http_stream_t *st, int going_away);
/* Bytes sent but not yet written to the socket. Any thread. */
size_t at_http_stream_unsent(const at_http_stream_t *st);
/* The peer address, copied at start ("127.0.0.1:53422"). Any thread. */
const char *at_http_stream_peer(const at_http_stream_t *st);
/* Drops the owner's reference. Any thread, once. */
void at_http_stream_release(at_http_stream_t *st);

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
