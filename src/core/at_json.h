/* at_json.h - JSON for every subsystem: a strict single-pass parser into an
 * arena tree (docs/decisions/0002-json.md) and a compact writer with
 * canonical escapes.
 *
 * THREAD SAFETY: a parser and a writer belong to one thread; a finished tree
 * is immutable and may be read from any thread while its arena lives.
 */
#ifndef AT_JSON_H
#define AT_JSON_H

#include "at_core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- JSON tree ----------------------------------------------------------
 * Nodes live in an arena. Strings without escapes point into the source
 * (zero copy); strings with escapes are decoded into the arena. Neither is
 * NUL-terminated: always use the lengths. Numbers keep their text exactly
 * as sent, so re-serializing never changes a number. */
enum {
    AT_JSON_NULL,
    AT_JSON_FALSE,
    AT_JSON_TRUE,
    AT_JSON_NUMBER,
    AT_JSON_STRING,
    AT_JSON_ARRAY,
    AT_JSON_OBJECT,
};

enum {
    AT_JSON_F_INT = 1,     /* number written without fraction or exponent */
    AT_JSON_F_ESC = 2,     /* string value had escapes: s is decoded */
    AT_JSON_F_KEY_ESC = 4, /* member key had escapes: key is decoded */
};

typedef struct at_json at_json_t;
struct at_json {
    uint8_t type;  /* AT_JSON_* */
    uint8_t flags; /* AT_JSON_F_* */
    uint32_t len;  /* string: bytes; number: characters; array/object: members */
    uint32_t key_len;
    uint32_t off; /* the value's bytes in the source are [off, end) */
    uint32_t end;
    const char *s;    /* string bytes or number text */
    const char *key;  /* member name when the parent is an object, else NULL */
    at_json_t *child; /* first member of an array or object */
    at_json_t *next;  /* next member of the parent */
};

/* A parser over one source text. Fields after `pos` are set by
 * at_json_init; the caller may change build_limit, base and depth
 * between values. */
typedef struct at_jparse {
    const char *src;
    size_t len;
    size_t pos;        /* next byte to read */
    at_arena_t *arena; /* nodes and decoded strings */
    char *blk;         /* bump block carved from the arena */
    size_t blk_left;
    int max_depth;       /* hard nesting limit: deeper fails the parse */
    int depth;           /* current nesting */
    size_t base;         /* nodes are built while pos - base <= build_limit */
    size_t build_limit;  /* past it the value is only checked, not built */
    bool build;          /* false: check only, return no nodes */
    size_t err_pos;      /* where the error was found */
    const char *err_msg; /* static text */
} at_jparse_t;

void at_json_init(at_jparse_t *p, const char *src, size_t len, at_arena_t *arena, int max_depth);
void at_json_set_arena(at_jparse_t *p, at_arena_t *arena);
void at_json_ws(at_jparse_t *p);
int at_json_value(at_jparse_t *p, at_json_t **out);
int at_json_string(at_jparse_t *p, const char **s, uint32_t *n, uint8_t *esc);
/* Decodes the body s[0..n) of a string that the parser accepted (between
 * its quotes, escapes as sent) into d, which has room for the decoded
 * length (at most n: exactly that many bytes are written); returns it. */
size_t at_json_unescape(char *d, const char *s, size_t n);
int at_json_fail(at_jparse_t *p, size_t pos, const char *msg);
void at_json_where(const char *src, size_t pos, int *line, int *col);
int at_json_error(const at_jparse_t *p, at_error_t *err, const char *what);
int at_json_parse_all(const char *src, size_t len, at_arena_t *arena, int max_depth,
                      at_json_t **out, at_error_t *err);

/* A step on the way from a root down to a value, kept on the stack while
 * walking a tree so that an error can name the path ("properties.items[2].sku"). */
typedef struct at_jpath {
    const struct at_jpath *up;
    const char *name; /* member name, or NULL for an array element */
    uint32_t name_len;
    long index; /* array position when name is NULL */
} at_jpath_t;

/* Writes the dotted path of fr into out (n bytes, truncated). */
void at_json_path(const at_jpath_t *fr, char *out, size_t n);

/* Tree helpers. */
const at_json_t *at_json_get(const at_json_t *obj, const char *key, size_t n);
bool at_json_equal(const at_json_t *a, const at_json_t *b);
double at_json_number(const at_json_t *v);
int at_json_i64(const at_json_t *v, int64_t *out);

/* ---- JSON writer: compact, canonical escapes -------------------------
 * Into buffers without a cap (growth aborts only on OOM). */
static inline void at_json_w_need(at_buf_t *b, size_t n)
{
    if (b->cap - b->len < n + 1)
        AT_ASSERT(at_buf_reserve(b, n + 1) == 0);
}

static inline void at_json_w_raw(at_buf_t *b, const char *s, size_t n)
{
    at_json_w_need(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void at_json_w_str(at_buf_t *b, const char *s, size_t n, bool escaped);
void at_json_w_value(at_buf_t *b, const at_json_t *v);
void at_json_w_i64(at_buf_t *b, int64_t v);

/* Length of the valid UTF-8 sequence at s (n >= 1 bytes available), or 0:
 * no overlong forms, surrogates or code points past U+10FFFF. Shared by the
 * parser and ingestion's single pass, which must agree byte for byte. */
static inline size_t at_json_utf8_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
            return 0; /* overlong, or a surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
            return 0; /* overlong, or past U+10FFFF */
        return 4;
    }
    return 0;
}

/* The value of the four hex digits at s (either case) into *out: 0, or -1
 * when one is not a hex digit. */
static inline int at_json_hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = (uint8_t)s[i], d;
        if (c - '0' < 10)
            d = c - '0';
        else if ((c | 0x20) - 'a' < 6)
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* Writes code point cp (at most U+10FFFF) as UTF-8 at d; returns its
 * length (1-4). */
static inline size_t at_json_put_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xc0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xe0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (char)(0xf0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

#endif
