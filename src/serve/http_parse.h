/* http_parse.h - the HTTP/1.1 request head parser, private to src/serve.
 *
 * Two steps, so a client that trickles its head in byte by byte costs linear
 * time: at_http__head_end() finds where the head ends, resuming its search
 * where the previous call stopped; at_http__parse() then reads the complete
 * head once. Strict where leniency lets requests be smuggled (obs-fold,
 * whitespace before ':', conflicting Content-Length, Transfer-Encoding),
 * lenient where it costs nothing (bare LF line ends, absolute-form target).
 *
 * THREAD SAFETY: pure functions over caller memory; any thread.
 */
#ifndef AT_HTTP_PARSE_H
#define AT_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AT_HTTP__MAX_HEADERS 64 /* more header lines: 431 */

typedef struct at_http__hdr {
    const char *name;
    const char *value; /* leading and trailing blanks trimmed */
    uint32_t name_len;
    uint32_t value_len;
} at_http__hdr_t;

/* A parsed request head. Pointers point into the parsed buffer. */
typedef struct at_http__head {
    const char *method;
    const char *path;  /* without the query; "*" for OPTIONS * */
    const char *query; /* after '?', without it; empty when absent */
    size_t method_len;
    size_t path_len;
    size_t query_len;
    size_t head_len;         /* request line + headers + empty line */
    uint64_t content_length; /* 0 when absent */
    int minor;               /* HTTP/1.<minor>: 0 or 1 */
    bool keep_alive;         /* after version default and Connection */
    bool expect_continue;    /* Expect: 100-continue */
    size_t nhdrs;
    at_http__hdr_t hdrs[AT_HTTP__MAX_HEADERS];
    /* on failure: the status to answer and the JSON error code/message */
    int err_status;
    const char *err_code;
    const char *err_msg;
} at_http__head_t;

/* Returns the length of the head in buf[0..len) (through the empty line that
 * ends it), or 0 while it is incomplete. *scan is where the search resumes:
 * start it at 0 for a new request and pass it back unchanged with the same
 * buffer grown. Leading empty lines must have been skipped by the caller
 * (at_http__skip_crlf). Thread: any. */
size_t at_http__head_end(const char *buf, size_t len, size_t *scan);

/* Returns how many CR/LF bytes start buf[0..len) (RFC 9112 §2.2: empty lines
 * before a request line are ignored). Thread: any. */
size_t at_http__skip_crlf(const char *buf, size_t len);

/* Parses the complete head buf[0..head_len) (head_len from
 * at_http__head_end) into *h. Returns 0, AT_EPARSE (malformed: 400, or
 * 411/501/505 as h->err_status says) or AT_ETOOBIG (too many headers: 431).
 * On error h->err_status, err_code and err_msg are set. Borrows buf: h
 * points into it. Thread: any. */
int at_http__parse(const char *buf, size_t head_len, at_http__head_t *h);

/* The buffer holding a parsed head moved from address from to address to
 * (realloc, compaction): moves h's pointers along. Thread: any. */
void at_http__head_rebase(at_http__head_t *h, uintptr_t from, uintptr_t to);

/* Returns true when a and b (lengths an, bn) are equal ignoring ASCII case.
 * Thread: any. */
bool at_http__ieq(const char *a, size_t an, const char *b, size_t bn);

#endif
