/* json.c - the single-pass JSON parser and compact writer of ingestion.
 *
 * Why hand-written rather than a Debian library: docs/decisions/0002-json.md
 * (several times faster on event batches, exact number text, byte spans of
 * each event for the quarantine log, a size cap that stops building a tree
 * for oversized events, line and column in errors).
 *
 * The parser is strict RFC 8259: UTF-8 is validated, lone surrogates are
 * refused, nesting is capped. Strings without escapes are not copied.
 */
#include "at_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_JSON_BLOCK 8192

/* Bytes that stand for themselves inside a JSON string: printable ASCII
 * other than '"' and '\\'. */
/* clang-format off */
static const uint8_t at_json__plain[256] = {
#define R4(x) x, x, x, x
#define R16(x) R4(x), R4(x), R4(x), R4(x)
    R16(0), R16(0),                                                           /* 0x00-0x1f */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,                           /* 0x20-0x2f */
    R16(1),                                                                   /* 0x30-0x3f */
    R16(1),                                                                   /* 0x40-0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,                           /* 0x50-0x5f */
    R16(1), R16(1),                                                           /* 0x60-0x7f */
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0),           /* 0x80-0xff */
#undef R16
#undef R4
};
/* clang-format on */

/* Index of the first byte at or after i that does not stand for itself in
 * a string; eight bytes at a time where the byte order allows. */
static size_t at_json__scan_plain(const char *s, size_t i, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (i + 8 <= n) {
        uint64_t w, q, b;
        memcpy(&w, s + i, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        /* high bit of each byte that is >= 0x80, < 0x20, '"' or '\\'; the
         * lowest one flagged is always a real one */
        uint64_t m = (w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
        if (m)
            return i + (size_t)(__builtin_ctzll(m) >> 3);
        i += 8;
    }
#endif
    while (i < n && at_json__plain[(uint8_t)s[i]])
        i++;
    return i;
}

/* Prepares p to parse src (borrowed; must outlive the trees built).
 * Thread: the caller's. */
void at_json_init(at_jparse_t *p, const char *src, size_t len, at_arena_t *arena, int max_depth)
{
    memset(p, 0, sizeof *p);
    p->src = src;
    p->len = len;
    p->arena = arena;
    p->max_depth = max_depth;
    p->build_limit = SIZE_MAX;
    p->build = true;
}

/* Makes later nodes come from arena (e.g. after it was reset). */
void at_json_set_arena(at_jparse_t *p, at_arena_t *arena)
{
    p->arena = arena;
    p->blk = NULL;
    p->blk_left = 0;
}

static void *at_json__alloc(at_jparse_t *p, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n > p->blk_left) {
        if (n > AT_JSON_BLOCK / 4)
            return at_arena_alloc(p->arena, n);
        p->blk = at_arena_alloc(p->arena, AT_JSON_BLOCK);
        p->blk_left = AT_JSON_BLOCK;
    }
    void *r = p->blk;
    p->blk += n;
    p->blk_left -= n;
    return r;
}

/* Records the error at pos (msg is static text); returns AT_EPARSE. */
int at_json_fail(at_jparse_t *p, size_t pos, const char *msg)
{
    p->err_pos = pos;
    p->err_msg = msg;
    return AT_EPARSE;
}

/* Skips JSON whitespace. */
void at_json_ws(at_jparse_t *p)
{
    const char *s = p->src;
    size_t i = p->pos, n = p->len;
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
        i++;
    p->pos = i;
}

/* Checks the escape at s[i] (s[i] == '\\'); returns its length or 0. */
static size_t at_json__escape_len(const char *s, size_t i, size_t n)
{
    if (i + 1 >= n)
        return 0;
    switch (s[i + 1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return 2;
    case 'u':
        break;
    default:
        return 0;
    }
    unsigned u, lo;
    if (i + 6 > n || at_json_hex4(s + i + 2, &u) < 0)
        return 0;
    if (u >= 0xdc00 && u <= 0xdfff)
        return 0; /* lone low surrogate */
    if (u < 0xd800 || u > 0xdbff)
        return 6;
    if (i + 12 > n || s[i + 6] != '\\' || s[i + 7] != 'u' || at_json_hex4(s + i + 8, &lo) < 0 ||
        lo < 0xdc00 || lo > 0xdfff)
        return 0; /* high surrogate without its low half */
    return 12;
}

/* Decodes the already-checked string body s[0..n) into d; returns the
 * decoded length (never more than n). */
static size_t at_json__decode(char *d, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            d[o++] = s[i++];
            continue;
        }
        char c = s[i + 1];
        i += 2;
        if (c != 'u') {
            static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
            const char *k = memchr(from, c, sizeof from - 1); /* else '"', '\\' or '/' */
            d[o++] = k ? to[k - from] : c;
            continue;
        }
        /* at_json__escape_len() accepted this escape, so the digits are
         * hex and a high surrogate has its low half. */
        unsigned u, lo;
        AT_ASSERT(at_json_hex4(s + i, &u) == 0);
        i += 4;
        if (u >= 0xd800 && u <= 0xdbff) {
            AT_ASSERT(at_json_hex4(s + i + 2, &lo) == 0);
            i += 6;
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }
        o += at_json_put_utf8(d + o, u);
    }
    return o;
}

/* See at_json.h. Thread: any. */
size_t at_json_unescape(char *d, const char *s, size_t n)
{
    return at_json__decode(d, s, n);
}

/* Parses the string at p->pos (which is '"'). On success *s and *n give
 * its bytes (decoded when *esc) when building; returns 0 or AT_EPARSE. */
int at_json_string(at_jparse_t *p, const char **s, uint32_t *n, uint8_t *esc)
{
    const char *src = p->src;
    size_t start = p->pos + 1, i = start, len = p->len;
    bool escaped = false;
    for (;;) {
        i = at_json__scan_plain(src, i, len);
        if (i >= len)
            return at_json_fail(p, p->pos, "unterminated string");
        uint8_t c = (uint8_t)src[i];
        if (c == '"')
            break;
        if (c == '\\') {
            size_t e = at_json__escape_len(src, i, len);
            if (!e)
                return at_json_fail(p, i, "invalid escape in string");
            escaped = true;
            i += e;
        } else if (c >= 0x80) {
            size_t u = at_json_utf8_len((const uint8_t *)src + i, len - i);
            if (!u)
                return at_json_fail(p, i, "invalid UTF-8 in string");
            i += u;
        } else {
            return at_json_fail(p, i, "control character in string");
        }
    }
    if (i - start > UINT32_MAX)
        return at_json_fail(p, p->pos, "string too long");
    p->pos = i + 1;
    *esc = escaped;
    if (!p->build) {
        *s = NULL;
        *n = 0;
    } else if (!escaped) {
        *s = src + start;
        *n = (uint32_t)(i - start);
    } else {
        char *d = at_json__alloc(p, i - start);
        *n = (uint32_t)at_json__decode(d, src + start, i - start);
        *s = d;
    }
    return 0;
}

static int at_json__number(at_jparse_t *p, at_json_t *v)
{
    const char *s = p->src;
    size_t i = p->pos, n = p->len, start = i;
    bool is_int = true;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return at_json_fail(p, start, "invalid number");
    if (i < n && s[i] == '.') {
        is_int = false;
        if (++i >= n || s[i] < '0' || s[i] > '9')
            return at_json_fail(p, i, "invalid number: digit expected after '.'");
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        is_int = false;
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return at_json_fail(p, i, "invalid number: digit expected in exponent");
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    p->pos = i;
    if (v) {
        v->type = AT_JSON_NUMBER;
        v->flags = is_int ? AT_JSON_F_INT : 0;
        v->s = s + start;
        v->len = (uint32_t)(i - start);
    }
    return 0;
}

static int at_json__literal(at_jparse_t *p, const char *word, size_t n, int type, at_json_t *v)
{
    if (p->len - p->pos < n || memcmp(p->src + p->pos, word, n) != 0)
        return at_json_fail(p, p->pos, "unexpected character: a value was expected");
    p->pos += n;
    if (v)
        v->type = (uint8_t)type;
    return 0;
}

static at_json_t *at_json__node(at_jparse_t *p)
{
    if (!p->build)
        return NULL;
    if (p->pos - p->base > p->build_limit) {
        p->build = false; /* oversized: check the rest, build nothing */
        return NULL;
    }
    at_json_t *v = at_json__alloc(p, sizeof *v);
    memset(v, 0, sizeof *v);
    return v;
}

static int at_json__enter(at_jparse_t *p)
{
    if (++p->depth > p->max_depth)
        return at_json_fail(p, p->pos, "nesting too deep");
    return 0;
}

/* Links child after *tail under parent (either may be NULL when not
 * building). */
static void at_json__link(at_json_t *parent, at_json_t ***tail, at_json_t *child)
{
    if (!parent || !child)
        return;
    **tail = child;
    *tail = &child->next;
    parent->len++;
}

static int at_json__array(at_jparse_t *p, at_json_t *v)
{
    int rc = at_json__enter(p);
    if (rc < 0)
        return rc;
    at_json_t **tail = v ? &v->child : NULL;
    p->pos++;
    at_json_ws(p);
    if (p->pos < p->len && p->src[p->pos] == ']') {
        p->pos++;
        p->depth--;
        return 0;
    }
    for (;;) {
        at_json_t *c = NULL;
        if ((rc = at_json_value(p, &c)) < 0)
            return rc;
        at_json__link(v, &tail, c);
        at_json_ws(p);
        if (p->pos >= p->len)
            return at_json_fail(p, p->pos, "unexpected end of input in array");
        char ch = p->src[p->pos++];
        if (ch == ']')
            break;
        if (ch != ',')
            return at_json_fail(p, p->pos - 1, "expected ',' or ']'");
    }
    p->depth--;
    return 0;
}

static int at_json__member(at_jparse_t *p, at_json_t **out)
{
    at_json_ws(p);
    if (p->pos >= p->len || p->src[p->pos] != '"')
        return at_json_fail(p, p->pos, "expected a string key");
    const char *k;
    uint32_t kn;
    uint8_t kesc;
    int rc = at_json_string(p, &k, &kn, &kesc);
    if (rc < 0)
        return rc;
    at_json_ws(p);
    if (p->pos >= p->len || p->src[p->pos] != ':')
        return at_json_fail(p, p->pos, "expected ':' after key");
    p->pos++;
    if ((rc = at_json_value(p, out)) < 0)
        return rc;
    if (*out) {
        (*out)->key = k;
        (*out)->key_len = kn;
        if (kesc)
            (*out)->flags |= AT_JSON_F_KEY_ESC;
    }
    return 0;
}

static int at_json__object(at_jparse_t *p, at_json_t *v)
{
    int rc = at_json__enter(p);
    if (rc < 0)
        return rc;
    at_json_t **tail = v ? &v->child : NULL;
    p->pos++;
    at_json_ws(p);
    if (p->pos < p->len && p->src[p->pos] == '}') {
        p->pos++;
        p->depth--;
        return 0;
    }
    for (;;) {
        at_json_t *c = NULL;
        if ((rc = at_json__member(p, &c)) < 0)
            return rc;
        at_json__link(v, &tail, c);
        at_json_ws(p);
        if (p->pos >= p->len)
            return at_json_fail(p, p->pos, "unexpected end of input in object");
        char ch = p->src[p->pos++];
        if (ch == '}')
            break;
        if (ch != ',')
            return at_json_fail(p, p->pos - 1, "expected ',' or '}'");
    }
    p->depth--;
    return 0;
}

/* Parses one value at p->pos (leading whitespace skipped). *out is the
 * node (arena) or NULL when not building. Returns 0 or AT_EPARSE with
 * p->err_pos and p->err_msg set. */
int at_json_value(at_jparse_t *p, at_json_t **out)
{
    at_json_ws(p);
    *out = NULL;
    if (p->pos >= p->len)
        return at_json_fail(p, p->pos, "unexpected end of input: a value was expected");
    at_json_t *v = at_json__node(p);
    size_t start = p->pos;
    int rc;
    switch (p->src[p->pos]) {
    case '{':
        if (v)
            v->type = AT_JSON_OBJECT;
        rc = at_json__object(p, v);
        break;
    case '[':
        if (v)
            v->type = AT_JSON_ARRAY;
        rc = at_json__array(p, v);
        break;
    case '"': {
        const char *s;
        uint32_t n;
        uint8_t esc;
        rc = at_json_string(p, &s, &n, &esc);
        if (rc == 0 && v) {
            v->type = AT_JSON_STRING;
            v->s = s;
            v->len = n;
            v->flags = esc ? AT_JSON_F_ESC : 0;
        }
        break;
    }
    case 't':
        rc = at_json__literal(p, "true", 4, AT_JSON_TRUE, v);
        break;
    case 'f':
        rc = at_json__literal(p, "false", 5, AT_JSON_FALSE, v);
        break;
    case 'n':
        rc = at_json__literal(p, "null", 4, AT_JSON_NULL, v);
        break;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        rc = at_json__number(p, v);
        break;
    default:
        rc = at_json_fail(p, p->pos, "unexpected character: a value was expected");
        break;
    }
    if (rc < 0)
        return rc;
    if (v) {
        if (p->pos > UINT32_MAX)
            return at_json_fail(p, start, "input too long");
        v->off = (uint32_t)start;
        v->end = (uint32_t)p->pos;
    }
    *out = p->build ? v : NULL;
    return 0;
}

/* 1-based line and column (in bytes) of pos in src. */
void at_json_where(const char *src, size_t pos, int *line, int *col)
{
    int l = 1;
    size_t bol = 0;
    for (size_t i = 0; i < pos; i++) {
        if (src[i] == '\n') {
            l++;
            bol = i + 1;
        }
    }
    *line = l;
    *col = (int)(pos - bol) + 1;
}

/* Fills err from p's error: code "invalid_json", message "what: line L,
 * column C: reason". Returns AT_EPARSE. */
int at_json_error(const at_jparse_t *p, at_error_t *err, const char *what)
{
    int line, col;
    at_json_where(p->src, p->err_pos, &line, &col);
    return at_error_set(err, AT_EPARSE, "invalid_json", NULL, "%s: line %d, column %d: %s", what,
                        line, col, p->err_msg ? p->err_msg : "invalid JSON");
}

/* Parses all of src as one JSON value (whitespace around it allowed) into
 * arena. Returns 0 or AT_EPARSE with err ("invalid_json", line, column). */
int at_json_parse_all(const char *src, size_t len, at_arena_t *arena, int max_depth,
                      at_json_t **out, at_error_t *err)
{
    at_jparse_t p;
    at_json_init(&p, src, len, arena, max_depth);
    int rc = at_json_value(&p, out);
    if (rc == 0) {
        at_json_ws(&p);
        if (p.pos != p.len)
            rc = at_json_fail(&p, p.pos, "unexpected data after the JSON value");
    }
    if (rc < 0)
        return at_json_error(&p, err, "invalid JSON");
    return 0;
}

/* ---- tree helpers ------------------------------------------------------- */

/* See at_json.h. */
void at_json_path(const at_jpath_t *fr, char *out, size_t n)
{
    const at_jpath_t *st[64];
    size_t k = 0, o = 0;
    for (; fr && k < AT_ARRAY_LEN(st); fr = fr->up)
        st[k++] = fr;
    out[0] = '\0';
    for (size_t i = k; i > 0 && o < n; i--) { /* st[0..k) holds it leaf first */
        const at_jpath_t *f = st[i - 1];
        int w = f->name
                    ? snprintf(out + o, n - o, "%s%.*s", o ? "." : "", (int)f->name_len, f->name)
                    : snprintf(out + o, n - o, "[%ld]", f->index);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

/* The member of obj named key[0..n), or NULL (also when obj is not an
 * object). The first one wins if a name repeats. */
const at_json_t *at_json_get(const at_json_t *obj, const char *key, size_t n)
{
    if (!obj || obj->type != AT_JSON_OBJECT)
        return NULL;
    for (const at_json_t *c = obj->child; c; c = c->next)
        if (c->key_len == n && memcmp(c->key, key, n) == 0)
            return c;
    return NULL;
}

/* The common short case without strtod: at most 15 significant digits and
 * a scale within 10^22 are exact in a double, so one multiplication or
 * division rounds correctly (Clinger's fast path). Returns false when the
 * number is not of that shape. */
static bool at_json__number_fast(const char *s, size_t n, double *out)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t i = s[0] == '-', digits = 0;
    uint64_t m = 0;
    int scale = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++)
        m = m * 10 + (uint64_t)(s[i] - '0');
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++, scale++)
            m = m * 10 + (uint64_t)(s[i] - '0');
    if (i != n || digits > 15 || scale > 22)
        return false;
    double d = (double)m / p10[scale];
    *out = s[0] == '-' ? -d : d;
    return true;
}

/* The value of a number node as a double (may be +-inf when huge). */
double at_json_number(const at_json_t *v)
{
    double d;
    if (at_json__number_fast(v->s, v->len, &d))
        return d;
    char tmp[64];
    char *heap = NULL, *s = tmp;
    if (v->len >= sizeof tmp)
        s = heap = at_xmalloc(v->len + 1);
    memcpy(s, v->s, v->len);
    s[v->len] = '\0';
    d = strtod(s, NULL);
    free(heap);
    return d;
}

/* The value of an integer-syntax number node in *out. Returns 0 or
 * AT_EINVALID when it is not an integer or does not fit in 64 bits. */
int at_json_i64(const at_json_t *v, int64_t *out)
{
    if (v->type != AT_JSON_NUMBER || !(v->flags & AT_JSON_F_INT))
        return AT_EINVALID;
    size_t i = 0;
    bool neg = v->s[0] == '-';
    if (neg)
        i++;
    uint64_t acc = 0;
    for (; i < v->len; i++) {
        unsigned d = (unsigned)(v->s[i] - '0');
        if (acc > (UINT64_MAX - d) / 10)
            return AT_EINVALID;
        acc = acc * 10 + d;
    }
    if (acc > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
        return AT_EINVALID;
    *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return 0;
}

/* JSON equality: numbers by value, objects regardless of member order. */
bool at_json_equal(const at_json_t *a, const at_json_t *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case AT_JSON_NUMBER:
        return at_json_number(a) == at_json_number(b);
    case AT_JSON_STRING:
        return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    case AT_JSON_ARRAY: {
        if (a->len != b->len)
            return false;
        const at_json_t *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!at_json_equal(x, y))
                return false;
        return true;
    }
    case AT_JSON_OBJECT:
        if (a->len != b->len)
            return false;
        for (const at_json_t *x = a->child; x; x = x->next) {
            const at_json_t *y = at_json_get(b, x->key, x->key_len);
            if (!y || !at_json_equal(x, y))
                return false;
        }
        return true;
    default:
        return true;
    }
}

/* ---- writer ------------------------------------------------------------- */

/* Writes the escape of c (a control character, '"' or '\\') at d; returns
 * the new end. */
static char *at_json__escape(char *d, uint8_t c)
{
    static const char hex[] = "0123456789abcdef";
    static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
    const char *k = c ? memchr(from, c, sizeof from - 1) : NULL;
    *d++ = '\\';
    if (k) {
        *d++ = to[k - from];
        return d;
    }
    d[0] = 'u';
    d[1] = '0';
    d[2] = '0';
    d[3] = hex[c >> 4];
    d[4] = hex[c & 15];
    return d + 5;
}

/* Appends s[0..n) as a JSON string. escaped: s may hold characters that
 * need escapes (it was decoded); otherwise it is copied as is. */
void at_json_w_str(at_buf_t *b, const char *s, size_t n, bool escaped)
{
    at_json_w_need(b, escaped ? n * 6 + 2 : n + 2);
    char *d = b->data + b->len;
    *d++ = '"';
    if (!escaped) {
        memcpy(d, s, n);
        d += n;
    } else {
        for (size_t i = 0; i < n; i++) {
            uint8_t c = (uint8_t)s[i];
            if (c >= 0x20 && c != '"' && c != '\\') {
                *d++ = (char)c;
                continue;
            }
            d = at_json__escape(d, c);
        }
    }
    *d++ = '"';
    b->len = (size_t)(d - b->data);
    b->data[b->len] = '\0';
}

/* Appends v compactly (no whitespace), keys in their order. */
void at_json_w_value(at_buf_t *b, const at_json_t *v)
{
    switch (v->type) {
    case AT_JSON_NULL:
        at_json_w_raw(b, "null", 4);
        return;
    case AT_JSON_FALSE:
        at_json_w_raw(b, "false", 5);
        return;
    case AT_JSON_TRUE:
        at_json_w_raw(b, "true", 4);
        return;
    case AT_JSON_NUMBER:
        at_json_w_raw(b, v->s, v->len);
        return;
    case AT_JSON_STRING:
        at_json_w_str(b, v->s, v->len, v->flags & AT_JSON_F_ESC);
        return;
    default:
        break;
    }
    bool obj = v->type == AT_JSON_OBJECT;
    at_json_w_raw(b, obj ? "{" : "[", 1);
    for (const at_json_t *c = v->child; c; c = c->next) {
        if (c != v->child)
            at_json_w_raw(b, ",", 1);
        if (obj) {
            at_json_w_str(b, c->key, c->key_len, c->flags & AT_JSON_F_KEY_ESC);
            at_json_w_raw(b, ":", 1);
        }
        at_json_w_value(b, c);
    }
    at_json_w_raw(b, obj ? "}" : "]", 1);
}

/* Appends v in decimal. */
void at_json_w_i64(at_buf_t *b, int64_t v)
{
    char tmp[20];
    size_t n = at_fmt_i64(tmp, v);
    at_json_w_raw(b, tmp, n);
}
