/* http_int.h - the HTTP server's insides, shared by src/serve/http*.c only.
 *
 * One loop per thread: an epoll set, its own SO_REUSEPORT listener, an
 * eventfd that wakes it (async responses, stop), and its connections. A
 * connection belongs to its loop for life; other threads reach it only
 * through the loop's async queue.
 *
 * Timeouts: every connection waiting on the network sits in one of three
 * FIFO lists whose entries all share one duration, so each list is sorted
 * by deadline and the loop only looks at the heads:
 *   idle    - keep-alive with nothing pending, or output waiting on a slow
 *             reader (deadline moves on progress);
 *   request - a request has started arriving (deadline fixed at its first
 *             byte: trickling bytes does not extend it);
 *   linger  - the response is out and the write side shut; input is read
 *             and dropped until the client closes, so a close never sends a
 *             reset that could destroy the response in flight.
 */
#ifndef AT_HTTP_INT_H
#define AT_HTTP_INT_H

#include "at_core.h"
#include "at_http.h"
#include "http_parse.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#define AT_HTTP__GRACE_NS (5 * 1000000000LL) /* at_http_stop: in-flight grace */
#define AT_HTTP__LINGER_NS (2 * 1000000000LL)
#define AT_HTTP__OUT_HIGH ((size_t)256 * 1024) /* stop taking pipelined requests past it */
#define AT_HTTP__RBUF_MIN ((size_t)4096)

/* What an epoll entry points at: each such struct starts with this. */
enum { AT_HTTP__EV_LISTEN = 1, AT_HTTP__EV_WAKE, AT_HTTP__EV_CONN };

typedef struct at_http__conn at_http__conn_t;
typedef struct at_http__loop at_http__loop_t;

typedef struct at_http__tlist {
    at_http__conn_t *head, *tail;
    int64_t dur_ns;
} at_http__tlist_t;

/* What an async queue entry asks of the loop. */
enum {
    AT_HTTP__OP_RESPOND = 0, /* a deferred answer for conn */
    AT_HTTP__OP_DATA,        /* stream bytes (SSE) or a text message (WebSocket) */
    AT_HTTP__OP_PING,        /* WebSocket ping */
    AT_HTTP__OP_END,         /* end the stream; len: 1 when going away */
};

/* A response serialized by another thread, or a stream operation, waiting
 * for the loop. A stream entry holds a reference on st. */
typedef struct at_http__async {
    struct at_http__async *next;
    at_http__conn_t *conn; /* OP_RESPOND */
    at_http_stream_t *st;  /* the other ops */
    int op;
    char *data; /* owned */
    size_t len;
} at_http__async_t;

/* A streaming answer (http_stream.c). conn, ws and the pre* fields belong
 * to the loop thread; the atomics are shared. */
struct at_http_stream {
    at_http__loop_t *loop;
    at_http__conn_t *conn; /* NULL once the connection closed */
    void *ws;              /* wslay_event_context_ptr, NULL for SSE */
    char *pre;             /* WebSocket bytes read with the upgrade request */
    size_t pre_len, pre_off;
    at_http_gone_fn gone;
    at_http_ws_msg_fn on_msg;
    void *ud;
    size_t max_unsent;
    atomic_size_t queued;      /* bytes in the async queue */
    atomic_size_t outstanding; /* bytes in conn->out not yet written */
    atomic_int refs;
    atomic_bool closed; /* the connection is gone */
    char peer[64];
};

struct at_http__conn {
    int kind; /* AT_HTTP__EV_CONN */
    int fd;   /* -1 once closed; the struct may outlive it while deferred */
    at_http__loop_t *loop;
    at_http__conn_t *prev, *next;   /* loop->conns */
    at_http__conn_t *tprev, *tnext; /* in *tlist */
    at_http__tlist_t *tlist;        /* NULL: no timer */
    int64_t deadline_ns;
    char *rbuf; /* received bytes; the current request starts at roff */
    size_t rlen, rcap, roff;
    size_t scan; /* at_http__head_end resume point, relative to roff */
    size_t need; /* whole request length (head + body) once the head parsed */
    at_http__head_t head;
    at_buf_t out; /* bytes to send, from out_off */
    size_t out_off;
    at_http_req_t req;
    bool has_head;      /* head parsed for the request at roff */
    bool in_flight;     /* req is with the handler */
    bool deferred;      /* the handler answers with at_http_respond_async */
    bool responded;     /* a response for req was queued */
    bool resp_close;    /* close after this request's response */
    bool resp_no_body;  /* HEAD: send headers only */
    bool continue_sent; /* "100 Continue" already sent */
    bool rd_eof;        /* the client shut its write side */
    bool closing;       /* no more requests: close once out is sent */
    bool lingering;
    bool started;             /* a request's first byte is in: the request timer runs */
    bool may_read;            /* input may be waiting (edge seen, not yet drained) */
    bool streaming;           /* the answer is a stream: no more requests, no read buffer */
    at_http_stream_t *stream; /* set by at_http_stream_start/at_http_ws_accept */
    char peer[64];
};

struct at_http__loop {
    int kind; /* AT_HTTP__EV_WAKE; the listener has its own tag below */
    int listen_kind;
    at_http_server_t *srv;
    int epfd, listen_fd, wake_fd;
    bool listening; /* listener in the epoll set */
    bool stopping;
    int64_t stop_deadline_ns;
    int64_t accept_retry_ns; /* after EMFILE: accept again at this time */
    int64_t now_ns;          /* monotonic time of this iteration */
    int nconns;              /* open sockets */
    int max_conns;           /* this loop's share of max_connections */
    at_http__conn_t *conns;  /* every conn, open or waiting for a deferred answer */
    at_http__conn_t *dead;   /* closed this iteration, freed at its end */
    at_http__tlist_t idle, request, linger;
    pthread_t thread;
    pthread_mutex_t mu; /* guards aq_head/aq_tail */
    at_http__async_t *aq_head, *aq_tail;
};

struct at_http_server {
    at_http_opts_t opts; /* defaults filled in */
    char *listen;        /* owned copy of opts.listen */
    int port;
    int nloops;
    at_http__loop_t *loops;
    atomic_int stop; /* set by at_http_stop (lock-free: signal-safe) */
    atomic_uint_fast64_t st_open, st_total, st_requests, st_rejected;
};

/* The functions below run on the loop thread, unless said otherwise. */

/* http.c: re-arms the listener when the loop is below its connection cap. */
void at_http__loop_listen(at_http__loop_t *l);

/* http_conn.c: takes ownership of the accepted socket fd. */
void at_http__conn_accept(at_http__loop_t *l, int fd, const struct sockaddr *sa);
/* Acts on epoll events for c. */
void at_http__conn_event(at_http__conn_t *c, uint32_t events);
/* c's deadline passed: 408 for a request in progress, else close. */
void at_http__conn_timeout(at_http__conn_t *c);
/* A deferred answer (data, owned, taken) arrived from the async queue. */
void at_http__conn_async_done(at_http__conn_t *c, char *data, size_t len);
/* The server is stopping: closes c when idle, else lets it finish. */
void at_http__conn_stop(at_http__conn_t *c);
/* Closes the socket; c is freed at the end of the iteration, or on its
 * deferred answer. */
void at_http__conn_close(at_http__conn_t *c);
/* Frees c and whatever it holds (loop teardown; any thread once the loop
 * stopped). */
void at_http__conn_free(at_http__conn_t *c);
/* Puts c at the tail of timer list tl with deadline start_ns + tl->dur_ns. */
void at_http__timer_set(at_http__conn_t *c, at_http__tlist_t *tl, int64_t start_ns);
void at_http__timer_clear(at_http__conn_t *c);

/* http_stream.c: the handler started a stream on c: switch c over. */
void at_http__stream_begin(at_http__conn_t *c);
/* Input (may_read) or writable socket on a streaming connection. */
void at_http__stream_event(at_http__conn_t *c, uint32_t events);
/* A stream entry from the async queue; consumes a (data and the entry's
 * reference). */
void at_http__stream_op(at_http__async_t *a);
/* The connection closes: detaches the stream and calls gone(). */
void at_http__stream_detach(at_http__conn_t *c);
/* Drops a reference; frees the stream at zero. Any thread. */
void at_http__stream_unref(at_http_stream_t *st);
/* The server stops: ends the stream (WebSocket: close 1001). */
void at_http__stream_stop(at_http__conn_t *c);
/* True when the comma-separated header value v[0..n) holds token tok
 * (any case). */
bool at_http__has_token(const char *v, size_t n, const char *tok);
/* True when v[0..n) is a valid Sec-WebSocket-Key. */
bool at_http__ws_key_valid(const char *v, size_t n);
/* Bytes of c->out not yet written: publish for the cap. */
void at_http__stream_account(at_http__conn_t *c);

/* http_conn.c: sends what is buffered; 0, or -1 when c closed. */
int at_http__conn_flush(at_http__conn_t *c);

/* http_resp.c: appends a whole response for c's current request to b (any
 * thread: reads only what is fixed while the request is in flight). */
void at_http__resp_build(at_buf_t *b, const at_http__conn_t *c, int status, const char *ctype,
                         const char *headers, const char *body, size_t len);
/* Appends the head of a streaming answer (no Content-Length,
 * Connection: close). */
void at_http__resp_stream_head(at_buf_t *b, int status, const char *ctype, const char *headers);
/* Appends a to l's async queue and wakes the loop. Any thread. */
void at_http__queue(at_http__loop_t *l, at_http__async_t *a);
/* Appends a JSON error response that closes the connection. */
void at_http__resp_error(at_buf_t *b, int status, const char *code, const char *msg);

#endif
