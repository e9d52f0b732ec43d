/* fuzz_serve_http.c - feeds bytes to the HTTP request parser as a client's
 * stream on one connection: finds each head (also byte by byte, which must
 * agree), parses it, checks that everything parsed points inside it, decodes
 * a few query parameters, skips the body, and goes on with the next request.
 */
#include "at_core.h"
#include "at_http.h"
#include "http_parse.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(const char *p, size_t n, const char *buf, size_t len)
{
    AT_ASSERT(n == 0 || (p >= buf && p + n <= buf + len));
}

static void check_query(const at_http__head_t *h)
{
    at_http_req_t req = {.query = h->query, .query_len = h->query_len};
    static const char *names[] = {"a", "n", "user_id", "b c", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char out[16];
        int n = at_http_query(&req, names[i], out, sizeof out);
        AT_ASSERT(n >= -1 && n <= (int)h->query_len);
        AT_ASSERT(strlen(out) < sizeof out);
    }
}

/* The head end found in one call must equal the one found a byte at a time. */
static size_t head_end_both(const char *p, size_t len)
{
    size_t scan = 0, whole = at_http__head_end(p, len, &scan);
    size_t scan2 = 0, step = 0;
    for (size_t i = 1; i <= len && !step; i++)
        step = at_http__head_end(p, i, &scan2);
    AT_ASSERT(step == whole);
    return whole;
}

static void check_head(const at_http__head_t *h, const char *p, size_t hl)
{
    check_inside(h->method, h->method_len, p, hl);
    AT_ASSERT(h->method_len > 0 && h->path_len > 0);
    if (h->path_len != 1 || h->path[0] != '/')
        check_inside(h->path, h->path_len, p, hl);
    check_inside(h->query, h->query_len, p, hl);
    AT_ASSERT(h->nhdrs <= AT_HTTP__MAX_HEADERS);
    for (size_t i = 0; i < h->nhdrs; i++) {
        check_inside(h->hdrs[i].name, h->hdrs[i].name_len, p, hl);
        check_inside(h->hdrs[i].value, h->hdrs[i].value_len, p, hl);
        AT_ASSERT(h->hdrs[i].name_len > 0);
    }
    check_query(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t off = 0;
    at_http__head_t h;
    while (off < size) {
        off += at_http__skip_crlf(buf + off, size - off);
        const char *p = buf + off;
        size_t hl = head_end_both(p, size - off);
        if (!hl)
            break;
        AT_ASSERT(hl <= size - off);
        int rc = at_http__parse(p, hl, &h);
        if (rc) {
            AT_ASSERT(h.err_status >= 400 && h.err_code && h.err_msg);
            break; /* the server answers and closes */
        }
        check_head(&h, p, hl);
        if (h.content_length > size - off - hl)
            break;
        off += hl + (size_t)h.content_length;
    }
    return 0;
}
