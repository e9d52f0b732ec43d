/* buf.c - the capped, growable, always NUL-terminated byte buffer.
 *
 * Anything a client sends goes through one of these with max set, so a
 * large body fails with AT_ETOOBIG instead of reaching the allocator. An
 * append either fits whole or changes nothing. */
#include "at_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An empty buffer points here, so data is a valid "" before any allocation.
 * Nothing writes into it: the first append allocates (cap stays 0 until). */
static char at_buf__empty[1];

/* Initialises b empty with the cap max (0 = unlimited). Thread: owner. */
void at_buf_init(at_buf_t *b, size_t max)
{
    b->data = at_buf__empty;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

/* Frees b's memory; b is left empty and reusable. Thread: owner. */
void at_buf_deinit(at_buf_t *b)
{
    if (b->cap)
        free(b->data);
    at_buf_init(b, b->max);
}

/* Empties b, keeping its memory. Thread: owner. */
void at_buf_reset(at_buf_t *b)
{
    b->len = 0;
    if (b->cap > 0) /* an empty buffer points at a shared static "" */
        b->data[0] = '\0';
}

/* Makes room for extra more bytes (plus the NUL). Returns 0 or AT_ETOOBIG
 * when len + extra would pass max; b is unchanged on error. Thread: owner. */
int at_buf_reserve(at_buf_t *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        return AT_ETOOBIG;
    size_t need = b->len + extra;
    if (b->max && need > b->max)
        return AT_ETOOBIG;
    if (need < b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap <= need)
        cap *= 2;
    if (b->max && cap > b->max + 1)
        cap = b->max + 1;
    if (b->cap) {
        b->data = at_xrealloc(b->data, cap);
    } else {
        b->data = at_xmalloc(cap);
        b->data[0] = '\0';
    }
    b->cap = cap;
    return 0;
}

/* Appends n bytes of p. Returns 0 or AT_ETOOBIG (b unchanged). */
int at_buf_append(at_buf_t *b, const void *p, size_t n)
{
    int rc = at_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* Appends the C string s. Returns 0 or AT_ETOOBIG (b unchanged). */
int at_buf_puts(at_buf_t *b, const char *s)
{
    return at_buf_append(b, s, strlen(s));
}

/* Appends one byte. Returns 0 or AT_ETOOBIG (b unchanged). */
int at_buf_putc(at_buf_t *b, char c)
{
    return at_buf_append(b, &c, 1);
}

/* at_buf_vprintf has no format attribute in the header (callers forward a
 * va_list from their own checked printf-like functions), so the check is off
 * here only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

/* Appends printf-formatted text. Returns 0, AT_ETOOBIG or AT_EINVALID (bad
 * format); b is unchanged on error. */
int at_buf_vprintf(at_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->cap ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        if (b->cap) /* never write the shared empty "" (other threads read it) */
            b->data[b->len] = '\0';
        return AT_EINVALID;
    }
    if ((size_t)n < room && (!b->max || b->len + (size_t)n <= b->max)) {
        b->len += (size_t)n;
        return 0;
    }
    if (b->cap)
        b->data[b->len] = '\0';
    int rc = at_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    (void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

#pragma GCC diagnostic pop

/* Appends printf-formatted text; see at_buf_vprintf. */
int at_buf_printf(at_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = at_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when the
 * bytes there are not one (overlong forms, surrogates, > U+10FFFF). */
static size_t at_buf__utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Appends the escape for the byte c, or U+FFFD for a byte that does not
 * start valid UTF-8 (so the output is always valid JSON). */
static int at_buf__json_escape(at_buf_t *b, unsigned char c)
{
    switch (c) {
    case '"':
        return at_buf_append(b, "\\\"", 2);
    case '\\':
        return at_buf_append(b, "\\\\", 2);
    case '\b':
        return at_buf_append(b, "\\b", 2);
    case '\f':
        return at_buf_append(b, "\\f", 2);
    case '\n':
        return at_buf_append(b, "\\n", 2);
    case '\r':
        return at_buf_append(b, "\\r", 2);
    case '\t':
        return at_buf_append(b, "\\t", 2);
    default:
        break;
    }
    if (c < 0x20) {
        char u[6] = {'\\', 'u', '0', '0', "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]};
        return at_buf_append(b, u, sizeof u);
    }
    return at_buf_append(b, "\\ufffd", 6);
}

/* Appends s[0..n) as a JSON string literal: quotes, RFC 8259 escapes,
 * control characters as \u00XX, valid UTF-8 passed through and invalid
 * bytes replaced by \ufffd. Returns 0 or AT_ETOOBIG (b unchanged). */
int at_buf_json_str(at_buf_t *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start_len = b->len;
    size_t i = 0;
    int rc = at_buf_putc(b, '"');
    while (!rc && i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            rc = at_buf_append(b, p + i, run - i);
            i = run;
            continue;
        }
        size_t u = p[i] >= 0x80 ? at_buf__utf8_len(p + i, n - i) : 0;
        if (u) {
            rc = at_buf_append(b, p + i, u);
            i += u;
        } else {
            rc = at_buf__json_escape(b, p[i]);
            i++;
        }
    }
    if (!rc)
        rc = at_buf_putc(b, '"');
    if (rc) {
        b->len = start_len;
        b->data[b->len] = '\0';
    }
    return rc;
}

/* See at_core.h. Thread: any. */
size_t at_fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + i, sizeof tmp - i);
    return sizeof tmp - i;
}

/* See at_core.h. Thread: any. */
size_t at_fmt_i64(char *out, int64_t v)
{
    if (v >= 0)
        return at_fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + at_fmt_u64(out + 1, 0 - (uint64_t)v);
}

/* Appends v in decimal. Returns 0 or AT_ETOOBIG (b unchanged). */
int at_buf_i64(at_buf_t *b, int64_t v)
{
    char tmp[20];
    size_t n = at_fmt_i64(tmp, v);
    return at_buf_append(b, tmp, n);
}

/* Appends v in decimal. Returns 0 or AT_ETOOBIG (b unchanged). */
int at_buf_u64(at_buf_t *b, uint64_t v)
{
    char tmp[20];
    size_t n = at_fmt_u64(tmp, v);
    return at_buf_append(b, tmp, n);
}

/* Returns b's bytes as an owned NUL-terminated string (free with free()),
 * its length in *len (len may be NULL); b is left empty, same max. */
char *at_buf_steal(at_buf_t *b, size_t *len)
{
    char *p = b->cap ? b->data : at_xstrndup("", 0);
    if (len)
        *len = b->len;
    at_buf_init(b, b->max);
    return p;
}
