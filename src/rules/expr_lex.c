/* expr_lex.c - the expression lexer: identifiers, strings (double or single
 * quotes, JSON's escapes plus \'), numbers read exactly as the JSON parser
 * reads them, durations (250ms, 90s, 1h30m, 1.5h), operators. Also where an
 * error is (line and column in characters) and how it is recorded.
 */
#include "rules_int.h"

#include "at_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void at_rules__where(const char *src, size_t len, size_t pos, int *line, int *col)
{
    int l = 1, cl = 1;
    for (size_t i = 0; i < pos && i < len; i++) {
        if (src[i] == '\n') {
            l++;
            cl = 1;
        } else if (((unsigned char)src[i] & 0xC0) != 0x80) {
            cl++;
        }
    }
    *line = l;
    *col = cl;
}

int at_rules__fail(at_xc_t *c, int rc, size_t pos, const char *fmt, ...)
{
    if (c->rc)
        return c->rc;
    c->rc = rc;
    if (!c->err)
        return rc;
    at_expr_err_t *e = c->err;
    if (pos > c->len)
        pos = c->len;
    e->pos = pos;
    at_rules__where(c->src, c->len, pos, &e->line, &e->col);
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    va_end(ap);
    (void)snprintf(e->msg, sizeof e->msg, "%d:%d: %s", e->line, e->col, e->reason);
    return rc;
}

/* The length of the valid UTF-8 sequence at s[i], or 0. */
static size_t at_utf8_seq(const unsigned char *s, size_t i, size_t n)
{
    unsigned char b = s[i];
    if (b < 0x80)
        return 1;
    size_t w = b >= 0xC2 && b <= 0xDF   ? 2
               : b >= 0xE0 && b <= 0xEF ? 3
               : b >= 0xF0 && b <= 0xF4 ? 4
                                        : 0;
    if (w == 0 || i + w > n)
        return 0;
    for (size_t k = 1; k < w; k++)
        if ((s[i + k] & 0xC0) != 0x80)
            return 0;
    if (w == 3 && ((b == 0xE0 && s[i + 1] < 0xA0) || (b == 0xED && s[i + 1] > 0x9F)))
        return 0; /* overlong, or a surrogate */
    if (w == 4 && ((b == 0xF0 && s[i + 1] < 0x90) || (b == 0xF4 && s[i + 1] > 0x8F)))
        return 0; /* overlong, or past U+10FFFF */
    return w;
}

/* The offset of the first byte that is not valid UTF-8, or n. */
static size_t at_utf8_check(const char *src, size_t n)
{
    const unsigned char *s = (const unsigned char *)src;
    for (size_t i = 0; i < n;) {
        size_t w = at_utf8_seq(s, i, n);
        if (!w)
            return i;
        i += w;
    }
    return n;
}

static size_t at_put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int at_hexval(const char *s, size_t i, size_t n)
{
    if (i + 4 > n)
        return -1;
    int v = 0;
    for (size_t k = i; k < i + 4; k++) {
        char ch = s[k];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

int at_rules__unescape(const char *s, size_t n, char *out, size_t *outlen, size_t *errpos,
                       const char **why)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20) {
            *errpos = i;
            *why = "control character in a string (write \\n, \\t or \\u00XX)";
            return -1;
        }
        if (ch != '\\') {
            out[o++] = (char)ch;
            i++;
            continue;
        }
        *errpos = i;
        if (i + 1 >= n) {
            *why = "a string cannot end with '\\'";
            return -1;
        }
        char e = s[i + 1];
        i += 2;
        if (e != 'u') {
            static const char from[] = "\"'\\/bfnrt", to[] = "\"'\\/\b\f\n\r\t";
            const char *p = memchr(from, e, sizeof from - 1);
            if (!p) {
                *why = "unknown escape in a string (use \\\" \\' \\\\ \\/ \\b \\f \\n \\r \\t "
                       "\\uXXXX)";
                return -1;
            }
            out[o++] = to[p - from];
            continue;
        }
        int cp = at_hexval(s, i, n);
        if (cp < 0) {
            *why = "\\u needs four hex digits";
            return -1;
        }
        i += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            *why = "a low surrogate \\uDC00..\\uDFFF without a high one before it";
            return -1;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            int lo = i + 1 < n && s[i] == '\\' && s[i + 1] == 'u' ? at_hexval(s, i + 2, n) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) {
                *why = "a high surrogate \\uD800..\\uDBFF must be followed by a low one";
                return -1;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        }
        o += at_put_utf8(out + o, (uint32_t)cp);
    }
    *outlen = o;
    return 0;
}

int at_rules__xc_init(at_xc_t *c, const char *src, size_t len, const at_expr_env_t *env,
                      at_expr_err_t *err)
{
    memset(c, 0, sizeof *c);
    c->src = src ? src : "";
    c->len = src ? len : 0;
    c->env = env;
    c->flags = env ? env->flags : 0;
    c->err = err;
    if (err)
        memset(err, 0, sizeof *err);
    at_arena_init(&c->arena, 4096);
    if (c->len > AT_EXPR_MAX_LEN)
        return at_rules__fail(c, AT_ETOOBIG, 0, "expression longer than %d bytes", AT_EXPR_MAX_LEN);
    size_t bad = at_utf8_check(c->src, c->len);
    if (bad < c->len)
        return at_rules__fail(c, AT_EPARSE, bad, "invalid UTF-8");
    return 0;
}

void at_rules__lex_init(at_xc_t *c)
{
    c->pos = 0;
}

bool at_rules__tok_word(const at_tok_t *t, const char *w)
{
    size_t n = strlen(w);
    return t->kind == AT_TK_IDENT && t->len == n && memcmp(t->s, w, n) == 0;
}

const char *at_rules__tok_text(const at_xc_t *c, char *buf, size_t n)
{
    const at_tok_t *t = &c->tok;
    if (t->kind == AT_TK_EOF) {
        (void)snprintf(buf, n, "the end of the expression");
        return buf;
    }
    size_t len = t->end - t->pos;
    (void)snprintf(buf, n, "'%.*s%s'", (int)AT_MIN(len, 24), c->src + t->pos,
                   len > 24 ? "..." : "");
    return buf;
}

static bool at_is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static bool at_is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int at_lex_string(at_xc_t *c, size_t start)
{
    const char *s = c->src;
    char q = s[start];
    size_t i = start + 1;
    bool esc = false;
    while (i < c->len && s[i] != q && s[i] != '\n') {
        if (s[i] == '\\') {
            esc = true;
            i++;
        }
        i++;
    }
    if (i >= c->len || s[i] != q)
        return at_rules__fail(c, AT_EPARSE, start, "unterminated string");
    const char *body = s + start + 1;
    size_t n = i - start - 1, outlen = 0, errpos = 0;
    const char *why = NULL;
    char *out = esc ? at_arena_alloc(&c->arena, n + 1) : NULL;
    if (!esc) {
        for (size_t k = 0; k < n; k++)
            if ((unsigned char)body[k] < 0x20)
                return at_rules__fail(c, AT_EPARSE, start + 1 + k,
                                      "control character in a string (write \\t or \\u00XX)");
        outlen = n;
    } else if (at_rules__unescape(body, n, out, &outlen, &errpos, &why) < 0) {
        return at_rules__fail(c, AT_EPARSE, start + 1 + errpos, "%s", why);
    }
    c->tok.kind = AT_TK_STR;
    c->tok.s = esc ? out : body;
    c->tok.len = (uint32_t)outlen;
    c->pos = i + 1;
    return 0;
}

/* One part of a duration: digits [. digits] then a unit. ms is its value,
 * unit_ms the unit's size (for the decreasing-order check). */
static int at_lex_dur_part(at_xc_t *c, size_t *ip, int64_t *ms, int64_t *unit_ms)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {"w", 604800000}};
    const char *s = c->src;
    size_t i = *ip, start = i;
    uint64_t m = 0;
    int digits = 0, scale = 0;
    for (; i < c->len && at_is_digit(s[i]); i++, digits++)
        m = m * 10 + (uint64_t)(s[i] - '0');
    if (i < c->len && s[i] == '.' && i + 1 < c->len && at_is_digit(s[i + 1]))
        for (i++; i < c->len && at_is_digit(s[i]); i++, digits++, scale++)
            m = m * 10 + (uint64_t)(s[i] - '0');
    if (digits > 18)
        return at_rules__fail(c, AT_EINVALID, start, "duration out of range");
    size_t u = i;
    while (i < c->len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
        i++;
    if (u == i)
        return at_rules__fail(c, AT_EPARSE, u, "a duration part needs a unit (ms, s, m, h, d, w)");
    int64_t size = 0;
    for (size_t k = 0; k < AT_ARRAY_LEN(units); k++)
        if (strlen(units[k].name) == i - u && memcmp(units[k].name, s + u, i - u) == 0)
            size = units[k].ms;
    if (!size)
        return at_rules__fail(c, AT_EPARSE, u,
                              "unknown duration unit '%.*s' (use ms, s, m, h, d, w)",
                              (int)AT_MIN(i - u, 16), s + u);
    int64_t p10 = 1;
    for (int k = 0; k < scale; k++)
        p10 *= 10;
    int64_t v;
    if (__builtin_mul_overflow((int64_t)m, size, &v))
        return at_rules__fail(c, AT_EINVALID, start, "duration out of range");
    if (v % p10)
        return at_rules__fail(c, AT_EINVALID, start,
                              "a duration must be a whole number of milliseconds");
    *ms = v / p10;
    *unit_ms = size;
    *ip = i;
    return 0;
}

static int at_lex_number(at_xc_t *c, size_t start)
{
    const char *s = c->src;
    size_t i = start;
    bool is_int = true, expo = false;
    while (i < c->len && at_is_digit(s[i]))
        i++;
    if (i + 1 < c->len && s[i] == '.' && at_is_digit(s[i + 1])) {
        is_int = false;
        for (i++; i < c->len && at_is_digit(s[i]); i++)
            ;
    }
    if (i < c->len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < c->len && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < c->len && at_is_digit(s[j])) {
            is_int = false;
            expo = true;
            for (i = j; i < c->len && at_is_digit(s[i]); i++)
                ;
        }
    }
    if (i < c->len && at_is_alpha(s[i]) && s[i] != '_') { /* a duration */
        if (expo)
            return at_rules__fail(c, AT_EPARSE, start,
                                  "a duration takes a plain number, not an "
                                  "exponent");
        size_t j = start;
        int64_t total = 0, last_unit = INT64_MAX;
        do {
            int64_t part = 0, unit = 0;
            if (at_lex_dur_part(c, &j, &part, &unit) < 0)
                return c->rc;
            if (unit >= last_unit)
                return at_rules__fail(c, AT_EPARSE, j - 1,
                                      "the parts of a duration go from the largest unit to the "
                                      "smallest, each once (1h30m)");
            last_unit = unit;
            if (__builtin_add_overflow(total, part, &total))
                return at_rules__fail(c, AT_EINVALID, start, "duration out of range");
        } while (j < c->len && at_is_digit(s[j]));
        if (j < c->len && (at_is_alpha(s[j]) || s[j] == '.'))
            return at_rules__fail(c, AT_EPARSE, j, "unexpected '%c' in a duration", s[j]);
        c->tok.kind = AT_TK_DUR;
        c->tok.ms = total;
        c->pos = j;
        return 0;
    }
    if (i < c->len && (at_is_alpha(s[i]) || s[i] == '.'))
        return at_rules__fail(c, AT_EPARSE, i, "unexpected '%c' after a number", s[i]);
    at_json_t node;
    memset(&node, 0, sizeof node);
    node.type = AT_JSON_NUMBER;
    node.s = s + start;
    node.len = (uint32_t)(i - start);
    double d = at_json_number(&node);
    if (d != d || d > 1.7976931348623157e308)
        return at_rules__fail(c, AT_EINVALID, start, "number out of range");
    c->tok.kind = AT_TK_NUM;
    c->tok.num = d;
    c->tok.is_int = is_int;
    c->pos = i;
    return 0;
}

static int at_lex_op(at_xc_t *c, size_t i)
{
    static const struct {
        const char *text;
        uint8_t kind;
    } ops[] = {
        {"||", AT_TK_OROR}, {"&&", AT_TK_ANDAND}, {"==", AT_TK_EQ},   {"!=", AT_TK_NE},
        {"<=", AT_TK_LE},   {">=", AT_TK_GE},     {"!", AT_TK_BANG},  {"<", AT_TK_LT},
        {">", AT_TK_GT},    {"(", AT_TK_LP},      {")", AT_TK_RP},    {"[", AT_TK_LB},
        {"]", AT_TK_RB},    {",", AT_TK_COMMA},   {".", AT_TK_DOT},   {"+", AT_TK_PLUS},
        {"-", AT_TK_MINUS}, {"*", AT_TK_STAR},    {"/", AT_TK_SLASH}, {"%", AT_TK_PCT},
    };
    const char *s = c->src + i;
    size_t left = c->len - i;
    for (size_t k = 0; k < AT_ARRAY_LEN(ops); k++) {
        size_t n = strlen(ops[k].text);
        if (n <= left && memcmp(s, ops[k].text, n) == 0) {
            c->tok.kind = ops[k].kind;
            c->pos = i + n;
            return 0;
        }
    }
    switch (s[0]) {
    case '=':
        return at_rules__fail(c, AT_EPARSE, i, "use '==' to compare");
    case '&':
        return at_rules__fail(c, AT_EPARSE, i, "unexpected '&' (use '&&' or 'and')");
    case '|':
        return at_rules__fail(c, AT_EPARSE, i, "unexpected '|' (use '||' or 'or')");
    default:
        break;
    }
    unsigned char b = (unsigned char)s[0];
    if (b < 0x20 || b == 0x7F)
        return at_rules__fail(c, AT_EPARSE, i, "unexpected character \\x%02X", b);
    size_t w = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    return at_rules__fail(c, AT_EPARSE, i, "unexpected character '%.*s'", (int)AT_MIN(w, left), s);
}

int at_rules__next(at_xc_t *c)
{
    if (c->rc)
        return c->rc;
    const char *s = c->src;
    size_t i = c->pos;
    while (i < c->len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    memset(&c->tok, 0, sizeof c->tok);
    c->tok.pos = (uint32_t)i;
    int rc = 0;
    if (i >= c->len) {
        c->tok.kind = AT_TK_EOF;
        c->pos = i;
    } else if (s[i] == '"' || s[i] == '\'') {
        rc = at_lex_string(c, i);
    } else if (at_is_digit(s[i])) {
        rc = at_lex_number(c, i);
    } else if (at_is_alpha(s[i])) {
        size_t j = i;
        while (j < c->len && (at_is_alpha(s[j]) || at_is_digit(s[j])))
            j++;
        c->tok.kind = AT_TK_IDENT;
        c->tok.s = s + i;
        c->tok.len = (uint32_t)(j - i);
        c->pos = j;
    } else {
        rc = at_lex_op(c, i);
    }
    c->tok.end = (uint32_t)c->pos;
    return rc;
}
