/* load_http.c - the little HTTP/1.1 client `attune load` needs: the head of
 * a POST /v1/events request, an incremental response parser (status,
 * Content-Length, Connection, Retry-After), and a scanner for the counts in
 * an ingest answer. No pipelining: one request per connection at a time, so
 * anything after a complete response is a protocol error.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "load.h"

/* Writes the request head into out. Returns its length or AT_ETOOBIG. */
int at_load_request_head(char *out, size_t cap, const char *hostport, const char *key,
                         size_t body_len)
{
    int n = snprintf(out, cap,
                     "POST /v1/events HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "User-Agent: attune-load/" AT_VERSION "\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "%s%s%s"
                     "\r\n",
                     hostport, body_len, key ? "Authorization: Bearer " : "", key ? key : "",
                     key ? "\r\n" : "");
    if (n < 0 || (size_t)n >= cap)
        return AT_ETOOBIG;
    return n;
}

/* ---- responses ----------------------------------------------------------- */

/* Sets r up empty; its buffer is capped at AT_LOAD_RESP_MAX. Free with
 * at_load_resp_deinit(). Thread: r's owner. */
void at_load_resp_init(at_load_resp_t *r)
{
    at_buf_init(&r->in, AT_LOAD_RESP_MAX);
    at_load_resp_reset(r);
}

/* Frees r's buffer. */
void at_load_resp_deinit(at_load_resp_t *r)
{
    at_buf_deinit(&r->in);
}

/* Forgets the response, keeping the buffer's memory. */
void at_load_resp_reset(at_load_resp_t *r)
{
    at_buf_reset(&r->in);
    r->status = 0;
    r->head_len = 0;
    r->content_length = -1;
    r->retry_after_ms = -1;
    r->close = false;
}

/* Parses a decimal number of at most 18 digits from [p, end); returns -1 when
 * there is none or anything else follows. */
static int64_t parse_decimal(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (p == end || end - p > 18)
        return -1;
    int64_t v = 0;
    for (; p < end; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

static bool name_is(const char *p, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(p, name, n) == 0;
}

static bool value_has(const char *p, const char *end, const char *token)
{
    size_t tn = strlen(token);
    for (; p + tn <= end; p++)
        if (strncasecmp(p, token, tn) == 0)
            return true;
    return false;
}

/* Applies one header line [p, end) to r. */
static int parse_header(at_load_resp_t *r, const char *p, const char *end)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (!colon || colon == p)
        return AT_EPARSE;
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1;
    if (name_is(p, nlen, "content-length")) {
        r->content_length = parse_decimal(v, end);
        if (r->content_length < 0)
            return AT_EPARSE;
        if (r->content_length > (int64_t)AT_LOAD_RESP_MAX)
            return AT_ETOOBIG;
    } else if (name_is(p, nlen, "connection")) {
        if (value_has(v, end, "close"))
            r->close = true;
        else if (value_has(v, end, "keep-alive"))
            r->close = false;
    } else if (name_is(p, nlen, "retry-after")) {
        int64_t s = parse_decimal(v, end);
        /* An HTTP-date is not worth parsing here: wait a second. */
        r->retry_after_ms = s < 0 ? 1000 : AT_MIN(s, (int64_t)3600) * 1000;
    } else if (name_is(p, nlen, "transfer-encoding")) {
        return AT_EPARSE; /* chunked answers are not supported */
    }
    return 0;
}

/* Parses the status line and headers in [p, p + n) (without the blank
 * line). */
static int parse_head(at_load_resp_t *r, const char *p, size_t n)
{
    const char *end = p + n;
    const char *eol = memmem(p, n, "\r\n", 2);
    if (!eol)
        eol = end;
    if (eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
        return AT_EPARSE;
    if (!isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) ||
        !isdigit((unsigned char)p[11]) || (eol - p > 12 && p[12] != ' '))
        return AT_EPARSE;
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    r->close = p[7] == '0'; /* HTTP/1.0 closes unless it says keep-alive */
    while (eol < end) {
        const char *line = eol + 2;
        eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!eol)
            eol = end;
        int rc = parse_header(r, line, eol);
        if (rc < 0)
            return rc;
    }
    if (r->status == 204 || r->status == 304)
        r->content_length = 0;
    if (r->content_length < 0)
        r->close = true;
    return 0;
}

/* Drops an interim (1xx) response from the front of r->in. */
static void drop_interim(at_load_resp_t *r)
{
    size_t rest = r->in.len - r->head_len;
    memmove(r->in.data, r->in.data + r->head_len, rest);
    r->in.len = rest;
    r->in.data[rest] = '\0';
    r->head_len = 0;
    r->status = 0;
    r->content_length = -1;
    r->retry_after_ms = -1;
    r->close = false;
}

/* Returns 1 with a whole response in r->in, 0 when more is needed, or
 * AT_EPARSE / AT_ETOOBIG. Thread: r's owner. */
int at_load_resp_parse(at_load_resp_t *r, bool eof, size_t *body_len)
{
    while (r->head_len == 0) {
        const char *sep = memmem(r->in.data, r->in.len, "\r\n\r\n", 4);
        if (!sep)
            return eof ? AT_EPARSE : 0;
        int rc = parse_head(r, r->in.data, (size_t)(sep - r->in.data));
        if (rc < 0)
            return rc;
        r->head_len = (size_t)(sep - r->in.data) + 4;
        if (r->status >= 100 && r->status < 200)
            drop_interim(r);
    }
    size_t have = r->in.len - r->head_len;
    if (r->content_length < 0) {
        if (!eof)
            return 0;
        *body_len = have;
        return 1;
    }
    if (have < (size_t)r->content_length)
        return eof ? AT_EPARSE : 0;
    if (have > (size_t)r->content_length)
        return AT_EPARSE; /* bytes nobody asked for */
    *body_len = have;
    return 1;
}

/* ---- the ingest answer ---------------------------------------------------- */

/* Returns the index just past the JSON string starting at body[i] == '"',
 * or 0 when it is not terminated. */
static size_t skip_string(const char *body, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (body[i] == '\\')
            i++;
        else if (body[i] == '"')
            return i + 1;
    }
    return 0;
}

static size_t skip_ws(const char *body, size_t len, size_t i)
{
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r'))
        i++;
    return i;
}

static int64_t read_int(const char *body, size_t len, size_t i)
{
    int64_t v = 0;
    size_t start = i;
    while (i < len && i - start < 18 && isdigit((unsigned char)body[i]))
        v = v * 10 + (body[i++] - '0');
    return i == start ? -1 : v;
}

static bool key_is(const char *body, size_t i, size_t j, const char *key)
{
    size_t n = strlen(key);
    return j - i - 2 == n && memcmp(body + i + 1, key, n) == 0;
}

/* Scans body for "accepted", "duplicates" and each rejected "index".
 * Returns 0 or AT_EPARSE. */
int at_load_ack_parse(const char *body, size_t len, at_load_ack_t *a, uint8_t *rejected_flags,
                      size_t n)
{
    a->accepted = a->duplicates = -1;
    a->rejected = 0;
    size_t i = skip_ws(body, len, 0);
    if (i >= len || body[i] != '{')
        return AT_EPARSE;
    while (i < len) {
        if (body[i] != '"') {
            i++;
            continue;
        }
        size_t j = skip_string(body, len, i);
        if (j == 0)
            return AT_EPARSE;
        size_t k = skip_ws(body, len, j);
        if (k < len && body[k] == ':') {
            int64_t v = read_int(body, len, skip_ws(body, len, k + 1));
            if (key_is(body, i, j, "accepted"))
                a->accepted = v;
            else if (key_is(body, i, j, "duplicates"))
                a->duplicates = v;
            else if (key_is(body, i, j, "index") && v >= 0) {
                a->rejected++;
                if (rejected_flags && (uint64_t)v < n)
                    rejected_flags[v] = 1;
            }
        }
        i = j;
    }
    return 0;
}
