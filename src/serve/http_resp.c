/* http_resp.c - writing responses: status line, the headers the server
 * owns (Date, Content-Type, Content-Length, Connection), JSON error bodies,
 * and handing responses made on other threads to the owning loop.
 */
#include "http_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct {
    int status;
    const char *reason;
} at_http__reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Content"},
    {426, "Upgrade Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {503, "Service Unavailable"},
    {505, "HTTP Version Not Supported"},
};

static const char *at_http__reason(int status)
{
    for (size_t i = 0; i < AT_ARRAY_LEN(at_http__reasons); i++)
        if (at_http__reasons[i].status == status)
            return at_http__reasons[i].reason;
    return "Unknown";
}

static void at_http__put(at_buf_t *b, const char *p, size_t n)
{
    int rc = at_buf_append(b, p, n);
    AT_ASSERT(rc == 0); /* response buffers have no cap */
}

/* A response head composed on the stack and appended to its buffer at
 * once: a dozen small appends cost more than the answer's copy. */
typedef struct at_http__out {
    at_buf_t *b;
    size_t n;
    char v[512];
} at_http__out_t;

static void at_http__hflush(at_http__out_t *h)
{
    at_http__put(h->b, h->v, h->n);
    h->n = 0;
}

static void at_http__hput(at_http__out_t *h, const char *p, size_t n)
{
    if (h->n + n > sizeof h->v) {
        at_http__hflush(h);
        if (n > sizeof h->v) {
            at_http__put(h->b, p, n);
            return;
        }
    }
    memcpy(h->v + h->n, p, n);
    h->n += n;
}

static void at_http__hputs(at_http__out_t *h, const char *s)
{
    at_http__hput(h, s, strlen(s));
}

static void at_http__hputu(at_http__out_t *h, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    at_http__hput(h, tmp + i, sizeof tmp - i);
}

/* "Date: Mon, 23 Nov 2026 18:47:01 GMT\r\n", formatted once a second per
 * thread, without the locale. */
static void at_http__date(at_http__out_t *h)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char mons[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char line[48];
    static _Thread_local size_t line_len;
    time_t now = time(NULL);
    if (now != cached_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        int n = snprintf(line, sizeof line, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                         days[tm.tm_wday], tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900,
                         tm.tm_hour, tm.tm_min, tm.tm_sec);
        AT_ASSERT(n > 0 && (size_t)n < sizeof line);
        line_len = (size_t)n;
        cached_sec = now;
    }
    at_http__hput(h, line, line_len);
}

/* The status line, Date and Content-Type (when ctype is non-empty). */
static void at_http__resp_start(at_http__out_t *h, int status, const char *ctype)
{
    char line[14] = "HTTP/1.1 000 ";
    line[9] = (char)('0' + status / 100);
    line[10] = (char)('0' + status / 10 % 10);
    line[11] = (char)('0' + status % 10);
    at_http__hput(h, line, 13);
    at_http__hputs(h, at_http__reason(status));
    at_http__hput(h, "\r\n", 2);
    at_http__date(h);
    if (ctype && *ctype) {
        at_http__hput(h, "Content-Type: ", 14);
        at_http__hputs(h, ctype);
        at_http__hput(h, "\r\n", 2);
    }
}

/* Appends status line, Date, Content-Type (when ctype is non-empty),
 * Content-Length (not for 1xx/204/304), Connection when needed, the
 * caller's header lines, and the body (not for HEAD) to b. Reads only what
 * stays fixed while c's request is in flight, so any thread may call it. */
void at_http__resp_build(at_buf_t *b, const at_http__conn_t *c, int status, const char *ctype,
                         const char *headers, const char *body, size_t len)
{
    bool bodyless = status < 200 || status == 204 || status == 304;
    AT_ASSERT(status >= 100 && status <= 599);
    at_http__out_t h;
    h.b = b;
    h.n = 0;
    at_http__resp_start(&h, status, ctype);
    if (!bodyless) {
        at_http__hput(&h, "Content-Length: ", 16);
        at_http__hputu(&h, len);
        at_http__hput(&h, "\r\n", 2);
    }
    if (c->resp_close)
        at_http__hput(&h, "Connection: close\r\n", 19);
    else if (c->head.minor == 0)
        at_http__hput(&h, "Connection: keep-alive\r\n", 24);
    if (headers)
        at_http__hputs(&h, headers);
    at_http__hput(&h, "\r\n", 2);
    bool with_body = !bodyless && !c->resp_no_body && len;
    AT_ASSERT(at_buf_reserve(b, h.n + (with_body ? len : 0)) == 0);
    at_http__hflush(&h);
    if (with_body)
        at_http__put(b, body, len);
}

/* Appends the head of a streaming answer: status line, Date,
 * Content-Type, the caller's lines and Connection: close, no
 * Content-Length: the body ends when the connection closes. Any thread. */
void at_http__resp_stream_head(at_buf_t *b, int status, const char *ctype, const char *headers)
{
    at_http__out_t h;
    h.b = b;
    h.n = 0;
    at_http__resp_start(&h, status, ctype);
    if (headers)
        at_http__hputs(&h, headers);
    at_http__hput(&h, "Connection: close\r\n\r\n", 21);
    at_http__hflush(&h);
}

/* Appends {"error":{"code":..,"message":..}} to b. */
static void at_http__error_json(at_buf_t *b, const char *code, const char *msg)
{
    at_http__put(b, "{\"error\":{\"code\":", 17);
    int rc = at_buf_json_str(b, code, strlen(code));
    AT_ASSERT(rc == 0);
    at_http__put(b, ",\"message\":", 11);
    rc = at_buf_json_str(b, msg, strlen(msg));
    AT_ASSERT(rc == 0);
    at_http__put(b, "}}", 2);
}

/* Appends a JSON error response that says Connection: close. Any
 * thread. */
void at_http__resp_error(at_buf_t *b, int status, const char *code, const char *msg)
{
    /* the server's own errors always close: a stub conn says so */
    static const at_http__conn_t closing = {.resp_close = true, .head = {.minor = 1}};
    at_buf_t body;
    at_buf_init(&body, 0);
    at_http__error_json(&body, code, msg);
    at_http__resp_build(b, &closing, status, "application/json", NULL, body.data, body.len);
    at_buf_deinit(&body);
}

/* Queues the answer to req on its connection (copied); sent when the
 * handler returns. Once per request, from the handler. Loop thread. */
void at_http_respond(at_http_req_t *req, int status, const char *content_type, const char *headers,
                     const char *body, size_t len)
{
    at_http__conn_t *c = req->priv;
    AT_ASSERT(c->in_flight && !c->responded && !c->deferred);
    c->responded = true;
    at_http__resp_build(&c->out, c, status, content_type, headers, body, len);
}

/* Serializes the answer here (copies body and headers), queues it to the
 * request's loop and wakes it. Once per deferred request; never after
 * at_http_free(). Any thread. */
void at_http_respond_async(at_http_req_t *req, int status, const char *content_type,
                           const char *headers, const char *body, size_t len)
{
    at_http__conn_t *c = req->priv;
    at_http__loop_t *l = c->loop;
    at_buf_t b;
    at_buf_init(&b, 0);
    at_http__resp_build(&b, c, status, content_type, headers, body, len);
    at_http__async_t *a = at_xcalloc(1, sizeof *a);
    a->conn = c;
    a->op = AT_HTTP__OP_RESPOND;
    a->data = at_buf_steal(&b, &a->len);
    at_buf_deinit(&b);
    at_http__queue(l, a);
}

/* Appends a to the loop's queue and writes its eventfd when the queue was
 * empty. Any thread. */
void at_http__queue(at_http__loop_t *l, at_http__async_t *a)
{
    a->next = NULL;
    pthread_mutex_lock(&l->mu);
    bool was_empty = l->aq_head == NULL;
    if (l->aq_tail)
        l->aq_tail->next = a;
    else
        l->aq_head = a;
    l->aq_tail = a;
    pthread_mutex_unlock(&l->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(l->wake_fd, &one, sizeof one);
        (void)w; /* EAGAIN: the counter is already non-zero, the loop wakes */
    }
}

static void at_http__error_body(at_buf_t *b, const char *code, const char *message)
{
    at_buf_init(b, 0);
    at_http__error_json(b, code, message);
}

/* A JSON error answer through at_http_respond(). Loop thread. */
void at_http_respond_error(at_http_req_t *req, int status, const char *code, const char *message)
{
    at_buf_t b;
    at_http__error_body(&b, code, message);
    at_http_respond(req, status, "application/json", NULL, b.data, b.len);
    at_buf_deinit(&b);
}

/* A JSON error answer through at_http_respond_async(). Any thread. */
void at_http_respond_error_async(at_http_req_t *req, int status, const char *code,
                                 const char *message)
{
    at_buf_t b;
    at_http__error_body(&b, code, message);
    at_http_respond_async(req, status, "application/json", NULL, b.data, b.len);
    at_buf_deinit(&b);
}
