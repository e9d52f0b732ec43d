/* http_parse.c - the HTTP/1.1 request head parser (RFC 9112 §2-§6).
 *
 * Finds the end of a head incrementally, then parses request line and
 * header fields in one pass, interpreting the fields the server itself acts
 * on: Content-Length, Transfer-Encoding, Connection and Expect.
 * Chunked request bodies are refused with 411 (docs/decisions/0001).
 */
#include "http_parse.h"

#include "at_core.h"

#include <string.h>

/* tchar of RFC 9110 §5.6.2 */
static const uint8_t at_http__tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* The path of an absolute-form target without one ("http://host"). */
static const char at_http__root[] = "/";

static int at_http__fail(at_http__head_t *h, int rc, int status, const char *code, const char *msg)
{
    h->err_status = status;
    h->err_code = code;
    h->err_msg = msg;
    return rc;
}

static int at_http__bad(at_http__head_t *h, const char *msg)
{
    return at_http__fail(h, AT_EPARSE, 400, "bad_request", msg);
}

/* ASCII case-insensitive equality of a[0..an) and b[0..bn). Any thread. */
bool at_http__ieq(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if ((unsigned)(x - 'A') < 26u)
            x |= 0x20;
        if ((unsigned)(y - 'A') < 26u)
            y |= 0x20;
        if (x != y)
            return false;
    }
    return true;
}

/* Returns the count of CR/LF bytes starting buf. Any thread. */
size_t at_http__skip_crlf(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
        i++;
    return i;
}

/* Returns the head length once "\n\n" or "\n\r\n" is found, else 0 with
 * *scan set to where the next call resumes. Any thread. */
size_t at_http__head_end(const char *buf, size_t len, size_t *scan)
{
    size_t i = *scan;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl)
            break;
        size_t k = (size_t)(nl - buf);
        if (k + 1 < len && buf[k + 1] == '\n')
            return k + 2;
        if (k + 2 < len && buf[k + 1] == '\r' && buf[k + 2] == '\n')
            return k + 3;
        if (k + 1 == len || (k + 2 == len && buf[k + 1] == '\r')) {
            *scan = k; /* undecided until more bytes arrive */
            return 0;
        }
        i = k + 1;
    }
    *scan = len;
    return 0;
}

/* Takes the next line from [*p, end): sets *ls and *ll to the line without its line end and
 * advances *p past it. Returns 0, or AT_EPARSE on a CR not before LF or a
 * missing line end. */
static int at_http__line(const char **p, const char *end, const char **ls, size_t *ll)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl)
        return AT_EPARSE;
    const char *le = nl;
    if (le > *p && le[-1] == '\r')
        le--;
    if (memchr(*p, '\r', (size_t)(le - *p)))
        return AT_EPARSE;
    *ls = *p;
    *ll = (size_t)(le - *p);
    *p = nl + 1;
    return 0;
}

/* Splits the request target into path and query. Accepts origin-form,
 * absolute-form ("http://host/p?q") and "*". */
static int at_http__target(at_http__head_t *h, const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= 0x20 || c == 0x7f)
            return at_http__bad(h, "invalid character in request target");
    }
    if (n == 1 && t[0] == '*') {
        h->path = t;
        h->path_len = 1;
        h->query = t + 1;
        h->query_len = 0;
        return 0;
    }
    if (t[0] != '/') {
        const char *sep = n > 3 ? memchr(t, ':', n) : NULL;
        if (!sep || (size_t)(t + n - sep) < 3 || sep[1] != '/' || sep[2] != '/')
            return at_http__bad(h, "request target must start with '/'");
        const char *auth = sep + 3;
        const char *slash = memchr(auth, '/', (size_t)(t + n - auth));
        if (!slash) {
            h->path = at_http__root;
            h->path_len = 1;
            const char *q = memchr(auth, '?', (size_t)(t + n - auth));
            h->query = q ? q + 1 : t + n;
            h->query_len = q ? (size_t)(t + n - q - 1) : 0;
            return 0;
        }
        n -= (size_t)(slash - t);
        t = slash;
    }
    const char *q = memchr(t, '?', n);
    h->path = t;
    h->path_len = q ? (size_t)(q - t) : n;
    h->query = q ? q + 1 : t + n;
    h->query_len = q ? n - h->path_len - 1 : 0;
    return 0;
}

static int at_http__version(at_http__head_t *h, const char *v, size_t n)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || (unsigned)(v[5] - '0') > 9u ||
        (unsigned)(v[7] - '0') > 9u)
        return at_http__bad(h, "malformed HTTP version");
    if (v[5] != '1')
        return at_http__fail(h, AT_EPARSE, 505, "version_not_supported",
                             "only HTTP/1.0 and HTTP/1.1 are supported");
    h->minor = v[7] == '0' ? 0 : 1;
    h->keep_alive = h->minor >= 1;
    return 0;
}

static int at_http__request_line(at_http__head_t *h, const char *l, size_t n)
{
    const char *end = l + n;
    const char *sp1 = memchr(l, ' ', n);
    if (!sp1 || sp1 == l)
        return at_http__bad(h, "malformed request line");
    for (const char *c = l; c < sp1; c++)
        if (!at_http__tchar[(unsigned char)*c])
            return at_http__bad(h, "invalid character in method");
    const char *t = sp1 + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2 || sp2 == t)
        return at_http__bad(h, "malformed request line");
    h->method = l;
    h->method_len = (size_t)(sp1 - l);
    int rc = at_http__target(h, t, (size_t)(sp2 - t));
    if (rc)
        return rc;
    return at_http__version(h, sp2 + 1, (size_t)(end - sp2 - 1));
}

static int at_http__content_length(at_http__head_t *h, const char *v, size_t n, bool *seen)
{
    uint64_t x = 0;
    if (n == 0)
        return at_http__bad(h, "empty Content-Length");
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)(v[i] - '0') > 9u)
            return at_http__bad(h, "malformed Content-Length");
        x = i < 18 ? x * 10 + (uint64_t)(v[i] - '0') : UINT64_MAX; /* huge: 413 later */
    }
    if (*seen && x != h->content_length)
        return at_http__bad(h, "conflicting Content-Length");
    *seen = true;
    h->content_length = x;
    return 0;
}

/* Connection: a comma-separated list of tokens; "close" wins. */
static void at_http__connection(at_http__head_t *h, const char *v, size_t n, bool *close)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (at_http__ieq(v + s, i - s, "close", 5))
            *close = true;
        else if (at_http__ieq(v + s, i - s, "keep-alive", 10))
            h->keep_alive = true;
    }
}

/* Acts on the fields the server interprets itself. */
static int at_http__field(at_http__head_t *h, const at_http__hdr_t *f, bool *cl_seen, bool *close)
{
    if (at_http__ieq(f->name, f->name_len, "content-length", 14))
        return at_http__content_length(h, f->value, f->value_len, cl_seen);
    if (at_http__ieq(f->name, f->name_len, "transfer-encoding", 17)) {
        for (size_t i = 0; i + 7 <= f->value_len; i++)
            if (at_http__ieq(f->value + i, 7, "chunked", 7))
                return at_http__fail(h, AT_EPARSE, 411, "length_required",
                                     "chunked request bodies are not supported: "
                                     "send Content-Length");
        return at_http__fail(h, AT_EPARSE, 501, "not_implemented", "unsupported Transfer-Encoding");
    }
    if (at_http__ieq(f->name, f->name_len, "connection", 10))
        at_http__connection(h, f->value, f->value_len, close);
    else if (at_http__ieq(f->name, f->name_len, "expect", 6))
        h->expect_continue = at_http__ieq(f->value, f->value_len, "100-continue", 12);
    return 0;
}

/* Splits one field line into name and trimmed value. */
static int at_http__field_line(at_http__head_t *h, const char *l, size_t n, at_http__hdr_t *f)
{
    if (l[0] == ' ' || l[0] == '\t')
        return at_http__bad(h, "obsolete header line folding");
    const char *colon = memchr(l, ':', n);
    if (!colon || colon == l)
        return at_http__bad(h, "malformed header line");
    for (const char *c = l; c < colon; c++)
        if (!at_http__tchar[(unsigned char)*c])
            return at_http__bad(h, "invalid character in header name");
    const char *v = colon + 1, *e = l + n;
    for (const char *c = v; c < e; c++) {
        unsigned char u = (unsigned char)*c;
        if ((u < 0x20 && u != '\t') || u == 0x7f)
            return at_http__bad(h, "invalid character in header value");
    }
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    f->name = l;
    f->name_len = (uint32_t)(colon - l);
    f->value = v;
    f->value_len = (uint32_t)(e - v);
    return 0;
}

static int at_http__fields(at_http__head_t *h, const char *p, const char *end)
{
    bool cl_seen = false, close = false;
    for (;;) {
        const char *l;
        size_t n;
        if (at_http__line(&p, end, &l, &n))
            return at_http__bad(h, "malformed line ending");
        if (n == 0)
            break;
        if (h->nhdrs == AT_HTTP__MAX_HEADERS)
            return at_http__fail(h, AT_ETOOBIG, 431, "header_too_large", "too many header fields");
        at_http__hdr_t *f = &h->hdrs[h->nhdrs];
        int rc = at_http__field_line(h, l, n, f);
        if (!rc)
            rc = at_http__field(h, f, &cl_seen, &close);
        if (rc)
            return rc;
        h->nhdrs++;
    }
    if (close)
        h->keep_alive = false;
    return 0;
}

/* Parses a complete head; returns 0, AT_EPARSE or AT_ETOOBIG with
 * h->err_* set. h borrows buf. Any thread. */
int at_http__parse(const char *buf, size_t head_len, at_http__head_t *h)
{
    h->nhdrs = 0;
    h->content_length = 0;
    h->expect_continue = false;
    h->keep_alive = false;
    h->err_status = 0;
    h->err_code = NULL;
    h->err_msg = NULL;
    h->head_len = head_len;
    const char *p = buf, *end = buf + head_len, *l;
    size_t n;
    if (at_http__line(&p, end, &l, &n) || n == 0)
        return at_http__bad(h, "malformed request line");
    int rc = at_http__request_line(h, l, n);
    if (rc)
        return rc;
    return at_http__fields(h, p, end);
}

/* Moves p by the distance the buffer moved, unless it is not in it. */
static const char *at_http__move(const char *p, uintptr_t from, uintptr_t to)
{
    if (p == at_http__root)
        return p;
    return (const char *)((uintptr_t)p - from + to);
}

/* Moves h's pointers from a buffer at address from to one at to. Any
 * thread. */
void at_http__head_rebase(at_http__head_t *h, uintptr_t from, uintptr_t to)
{
    if (from == to)
        return;
    h->method = at_http__move(h->method, from, to);
    h->path = at_http__move(h->path, from, to);
    h->query = at_http__move(h->query, from, to);
    for (size_t i = 0; i < h->nhdrs; i++) {
        h->hdrs[i].name = at_http__move(h->hdrs[i].name, from, to);
        h->hdrs[i].value = at_http__move(h->hdrs[i].value, from, to);
    }
}
