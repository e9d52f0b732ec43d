/* http_req.c - what a handler reads from a request: header fields by name,
 * URL-decoded query parameters, and the peer address.
 *
 * THREAD SAFETY: any thread that holds the request (see at_http.h).
 */
#include "http_int.h"

#include <string.h>

/* Returns the first field named name (any case) and its length, or NULL
 * with *len = 0. Borrowed from req: valid while req is. Any thread holding
 * req. */
const char *at_http_header(const at_http_req_t *req, const char *name, size_t *len)
{
    const at_http__conn_t *c = req->priv;
    size_t nl = strlen(name);
    for (size_t i = 0; i < c->head.nhdrs; i++) {
        const at_http__hdr_t *h = &c->head.hdrs[i];
        if (at_http__ieq(h->name, h->name_len, name, nl)) {
            *len = h->value_len;
            return h->value;
        }
    }
    *len = 0;
    return NULL;
}

/* Returns the client address ("127.0.0.1:53422", "[::1]:5000"), valid
 * while req is. Any thread holding req. */
const char *at_http_peer(const at_http_req_t *req)
{
    const at_http__conn_t *c = req->priv;
    return c->peer;
}

static int at_http__hex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (char)(ch | 0x20);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Returns the next decoded byte of s[*i..n) and advances *i: "+" is a
 * space, "%XX" a byte, a '%' not followed by two hex digits itself. */
static char at_http__decode_step(const char *s, size_t n, size_t *i)
{
    char ch = s[(*i)++];
    if (ch == '+')
        return ' ';
    if (ch == '%' && *i + 2 <= n) {
        int hi = at_http__hex(s[*i]), lo = at_http__hex(s[*i + 1]);
        if (hi >= 0 && lo >= 0) {
            *i += 2;
            return (char)(hi << 4 | lo);
        }
    }
    return ch;
}

/* Returns true when s[0..n) decodes to exactly name[0..nl). */
static bool at_http__key_eq(const char *s, size_t n, const char *name, size_t nl)
{
    size_t i = 0, k = 0;
    while (i < n) {
        if (k == nl || at_http__decode_step(s, n, &i) != name[k])
            return false;
        k++;
    }
    return k == nl;
}

/* Decodes s[0..n) into out (NUL-terminated, truncated to outlen - 1);
 * returns the whole decoded length. */
static int at_http__decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t i = 0, k = 0;
    while (i < n) {
        char ch = at_http__decode_step(s, n, &i);
        if (k + 1 < outlen)
            out[k] = ch;
        k++;
    }
    if (outlen)
        out[AT_MIN(k, outlen - 1)] = '\0';
    return (int)AT_MIN(k, (size_t)INT32_MAX);
}

/* Returns the decoded length of the first parameter called name (after
 * decoding) and copies it, NUL-terminated, into out; -1 when absent (out
 * is then ""). Any thread holding req. */
int at_http_query(const at_http_req_t *req, const char *name, char *out, size_t outlen)
{
    if (outlen)
        out[0] = '\0';
    if (!req->query)
        return -1;
    const char *q = req->query, *end = req->query + req->query_len;
    size_t nl = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq ? eq : pe;
        if (ke > q && at_http__key_eq(q, (size_t)(ke - q), name, nl)) {
            const char *v = eq ? eq + 1 : pe;
            return at_http__decode(v, (size_t)(pe - v), out, outlen);
        }
        q = amp ? amp + 1 : end;
    }
    return -1;
}
