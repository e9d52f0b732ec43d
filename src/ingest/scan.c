/* scan.c - the single pass from an event's bytes to its canonical event
 * (docs/events.md, docs/decisions/0002-json.md): the event is checked and
 * its fields picked while it is read, with no tree in between, and the
 * canonical JSON is written straight into the batch.
 *
 * Two readers, tried in turn:
 * - the plain path: most events are sent compact, in ASCII and without
 *   escapes; then the canonical text of every value is the text as sent,
 *   and the event only needs checking (strings 16 bytes at a time with
 *   SSE2), nothing is written until the canonical event itself;
 * - the writing path: anything else that is valid (whitespace, escapes,
 *   UTF-8), written in canonical form as it is read.
 * When both give up - a syntax error, a limit reached, a field of the
 * wrong type, a duplicate key, an escaped top-level name, a schema
 * refusing the event, anything unusual - nothing has been left behind and
 * the caller runs the tree path (at_json_value, event.c) over the same
 * bytes, which finds the parse error or writes the reject. So the tree
 * path defines the behaviour, and this file only has to produce the very
 * same accepted event whenever it accepts one: tests/unit/ingest/
 * test_scan.c and tests/fuzz/fuzz_ingest_diff.c compare the two, and
 * test_corpus.c compares both with results recorded before this file.
 *
 * What the scan checks everywhere in the event is stricter than what the
 * tree path checks (lengths, depth and duplicates only in what it copies):
 * the difference sends more events to the tree path, never changes one.
 *
 * THREAD SAFETY: as at_ingest_parse; the tables it reads are immutable.
 */
#include "ingest_int.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define AT_SCAN_KEYS 256                 /* keys of the open objects, checked for duplicates */
#define AT_SCAN_EXTRA 64                 /* top-level members that go under "extra" */
#define AT_SCAN_F_CTRL 0x80              /* string: the decoded text holds a control character */
#define AT_SCAN_TS_MAX 253402300799999LL /* 9999-12-31T23:59:59.999Z */
#define AT_SCAN_MISSES 4                 /* plain path misses in a row before it is skipped */
#define AT_SCAN_RETRY 64                 /* ... until this many events have gone by */

/* A value that was read: where its text is, raw and canonical. */
typedef struct at_sval {
    uint8_t type;  /* AT_JSON_* */
    uint8_t flags; /* AT_JSON_F_INT, AT_JSON_F_ESC, AT_SCAN_F_CTRL */
    uint32_t len;  /* string: raw bytes between the quotes; number: characters */
    uint32_t dlen; /* string: decoded bytes */
    const char *s; /* string: raw bytes between the quotes; number: its text */
    const char *c; /* its canonical text, in the scan's output or the source */
    uint32_t clen;
    uint32_t roff, rend; /* the value's bytes in the source */
} at_sval_t;

/* A key of an open object, for the duplicate check. */
typedef struct at_skey {
    const char *k; /* canonical, with its quotes, in the output */
    uint32_t n;
    uint32_t sig; /* length and two bytes: most different keys differ here */
} at_skey_t;

/* A top-level member that may go under "extra". */
typedef struct at_sextra {
    int top; /* index into in->top, or -1 for an unknown name */
    const char *k;
    uint32_t kn;
    const char *c; /* its value, canonical */
    uint32_t clen;
} at_sextra_t;

typedef struct at_scan {
    const char *src;
    size_t end;      /* the event lies before this */
    size_t load_end; /* 16-byte loads may read up to here */
    char *base, *o;  /* the output buffer and its cursor */
    const char *lim; /* canonical texts may be read up to here (NULL: no limit) */
    uint32_t max_len;
    int max_depth;
    const at_ingest_t *in;
    uint64_t sub_set; /* slots of sub[] that were found */
    at_sval_t sub[AT_INGEST_MAX_SLOTS];
    size_t nkeys;
    at_skey_t keys[AT_SCAN_KEYS];
} at_scan_t;

/* Bytes that stand for themselves inside a JSON string and in canonical
 * output: printable ASCII other than '"' and '\\'. */
static bool at_scan__is_plain(uint8_t c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

static bool at_scan__ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static size_t at_scan__skip_ws(const char *s, size_t i, size_t end)
{
    while (i < end && at_scan__ws(s[i]))
        i++;
    return i;
}

/* The byte at *pi after whitespace (*pi moved to it), or 0 at the end:
 * events are mostly sent without whitespace, so one test usually does. */
static inline char at_scan__peek(const char *s, size_t *pi, size_t end)
{
    size_t i = *pi;
    if (i < end && (uint8_t)s[i] > ' ')
        return s[i];
    *pi = i = at_scan__skip_ws(s, i, end);
    return i < end ? s[i] : 0;
}

/* Writes the canonical form of the decoded character u at o (the writer's
 * escapes of at_json_w_str); returns the new end. *grow gets the bytes the
 * form has beyond the decoded ones. */
static char *at_scan__put_char(char *o, unsigned u, uint32_t *grow, uint8_t *flags)
{
    static const char hex[] = "0123456789abcdef";
    if (u < 0x20) {
        static const char short_esc[32] = {
            ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
        *flags |= AT_SCAN_F_CTRL;
        o[0] = '\\';
        if (short_esc[u]) {
            o[1] = short_esc[u];
            *grow += 1;
            return o + 2;
        }
        o[1] = 'u', o[2] = '0', o[3] = '0', o[4] = hex[u >> 4], o[5] = hex[u & 15];
        *grow += 5;
        return o + 6;
    }
    if (u == '"' || u == '\\') {
        o[0] = '\\', o[1] = (char)u;
        *grow += 1;
        return o + 2;
    }
    return o + at_json_put_utf8(o, u);
}

/* The escape at s[i] ('\\'), n bytes available in all: its canonical form
 * at *po. Returns the escape's length in the source, or 0 when invalid. */
static size_t at_scan__escape(const char *s, size_t i, size_t n, char **po, uint32_t *grow,
                              uint8_t *flags)
{
    if (i + 1 >= n)
        return 0;
    unsigned u;
    size_t adv = 2;
    switch (s[i + 1]) {
    case '"':
        u = '"';
        break;
    case '\\':
        u = '\\';
        break;
    case '/':
        u = '/';
        break;
    case 'b':
        u = '\b';
        break;
    case 'f':
        u = '\f';
        break;
    case 'n':
        u = '\n';
        break;
    case 'r':
        u = '\r';
        break;
    case 't':
        u = '\t';
        break;
    case 'u':
        if (i + 6 > n || at_json_hex4(s + i + 2, &u) < 0 || (u >= 0xdc00 && u <= 0xdfff))
            return 0;
        adv = 6;
        if (u >= 0xd800 && u <= 0xdbff) {
            unsigned lo;
            if (i + 12 > n || s[i + 6] != '\\' || s[i + 7] != 'u' ||
                at_json_hex4(s + i + 8, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                return 0;
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            adv = 12;
        }
        break;
    default:
        return 0;
    }
    *flags |= AT_JSON_F_ESC;
    *po = at_scan__put_char(*po, u, grow, flags);
    return adv;
}

/* Index of the first byte at or after i (before end) that is not plain,
 * copying the plain ones to *po; 16 bytes at a time where loads allow
 * (a copy may store up to 16 bytes past what it keeps). */
static size_t at_scan__plain_run(const at_scan_t *x, size_t i, char **po)
{
    const char *s = x->src;
    char *o = *po;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(' ');
    while (i < x->end && i + 16 <= x->load_end) {
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        _mm_storeu_si128((__m128i *)(void *)o, c);
        /* signed: bytes >= 0x80 are below ' ' too */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(c, quote), _mm_cmpeq_epi8(c, bslash)),
                                 _mm_cmplt_epi8(c, space));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits) {
            unsigned k = (unsigned)__builtin_ctz(bits);
            *po = o + k;
            return i + k;
        }
        i += 16;
        o += 16;
    }
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (i < x->end && i + 8 <= x->load_end) {
        uint64_t w, q, b;
        memcpy(&w, s + i, 8);
        memcpy(o, &w, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        /* high bit of each byte that is >= 0x80, < 0x20, '"' or '\\'; the
         * lowest one flagged is always a real one */
        uint64_t m = (w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
        if (m) {
            unsigned k = (unsigned)(__builtin_ctzll(m) >> 3);
            *po = o + k;
            return i + k;
        }
        i += 8;
        o += 8;
    }
#endif
    while (i < x->end && at_scan__is_plain((uint8_t)s[i]))
        *o++ = s[i++];
    *po = o;
    return i;
}

/* Reads the string at src[*pi] ('"') and writes it in canonical form at
 * x->o. Fills v (when not NULL). Returns 0, or -1 to give up (invalid,
 * more than max bytes decoded, or past the end). */
static int at_scan__string_slow(at_scan_t *x, size_t *pi, at_sval_t *v, uint32_t max)
{
    const char *s = x->src;
    size_t start = *pi + 1, i = start;
    char *o = x->o;
    *o++ = '"';
    uint32_t grow = 0;
    uint8_t flags = 0;
    for (;;) {
        i = at_scan__plain_run(x, i, &o);
        if (i >= x->end)
            return -1;
        uint8_t c = (uint8_t)s[i];
        if (c == '"')
            break;
        if (c == '\\') {
            size_t e = at_scan__escape(s, i, x->end, &o, &grow, &flags);
            if (!e)
                return -1;
            i += e;
        } else if (c >= 0x80) {
            size_t u = at_json_utf8_len((const uint8_t *)s + i, x->end - i);
            if (!u)
                return -1;
            memcpy(o, s + i, u);
            o += u;
            i += u;
        } else {
            return -1; /* a control character */
        }
    }
    *o++ = '"';
    uint32_t dlen = (uint32_t)(o - x->o) - 2 - grow;
    if (dlen > max)
        return -1;
    if (v) {
        v->type = AT_JSON_STRING;
        v->flags = flags;
        v->s = s + start;
        v->len = (uint32_t)(i - start);
        v->dlen = dlen;
        v->c = x->o;
        v->clen = (uint32_t)(o - x->o);
    }
    x->o = o;
    *pi = i + 1;
    return 0;
}

/* The short path of a string: plain bytes up to the closing quote, 16 at
 * a time, copied to *po as they are (which is their canonical form). *pi
 * is just past the opening quote. Returns false, having changed nothing,
 * when the string holds anything else (escapes, non-ASCII) or is longer
 * than max, or the chunk would read past load_end. */
static inline bool at_scan__short(const char *s, size_t *pi, char **po, size_t end, size_t load_end,
                                  uint32_t max)
{
#if defined(__SSE2__)
    size_t start = *pi, i = start;
    char *o = *po;
    while (i < end && i + 16 <= load_end) {
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        _mm_storeu_si128((__m128i *)(void *)o, c);
        __m128i q = _mm_cmpeq_epi8(c, _mm_set1_epi8('"'));
        /* signed: bytes >= 0x80 are below ' ' too */
        __m128i m = _mm_or_si128(_mm_or_si128(q, _mm_cmpeq_epi8(c, _mm_set1_epi8('\\'))),
                                 _mm_cmplt_epi8(c, _mm_set1_epi8(' ')));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits) {
            if (!(bits & (unsigned)_mm_movemask_epi8(q) & (0u - bits)))
                return false; /* the first one is not the closing quote */
            unsigned k = (unsigned)__builtin_ctz(bits);
            i += k;
            if (i >= end || i - start > max)
                return false;
            *pi = i;
            *po = o + k;
            return true;
        }
        i += 16;
        o += 16;
    }
#else
    (void)s, (void)pi, (void)po, (void)end, (void)load_end, (void)max;
#endif
    return false;
}

/* The string at s[*pi] ('"') written in canonical form at *po (x->o is
 * left alone unless the slow path runs). Fills v when not NULL. Returns 0
 * or -1 to give up. */
static inline int at_scan__str(at_scan_t *x, const char *s, size_t end, size_t load_end, size_t *pi,
                               char **po, uint32_t max, at_sval_t *v)
{
    char *o0 = *po, *o = o0 + 1;
    size_t i = *pi + 1;
    if (at_scan__short(s, &i, &o, end, load_end, max)) {
        *o0 = '"';
        *o = '"';
        if (v) {
            v->type = AT_JSON_STRING;
            v->flags = 0;
            v->s = s + *pi + 1;
            v->len = v->dlen = (uint32_t)(o - o0 - 1);
            v->c = o0;
            v->clen = (uint32_t)(o - o0 + 1);
        }
        *pi = i + 1;
        *po = o + 1;
        return 0;
    }
    x->o = o0;
    size_t j = *pi;
    if (at_scan__string_slow(x, &j, v, max) < 0)
        return -1;
    *pi = j;
    *po = x->o;
    return 0;
}

/* at_scan__str at x->o. */
static int at_scan__string(at_scan_t *x, size_t *pi, at_sval_t *v)
{
    char *o = x->o;
    if (at_scan__str(x, x->src, x->end, x->load_end, pi, &o, x->max_len, v) < 0)
        return -1;
    x->o = o;
    return 0;
}

static bool at_scan__digit(char c)
{
    return (unsigned)(c - '0') < 10;
}

/* A number, with the grammar of at_json_value, copied as written. */
static inline int at_scan__number(at_scan_t *x, size_t *pi, at_sval_t *v, bool write)
{
    const char *s = x->src;
    size_t i = *pi, n = x->end, start = i;
    uint8_t flags = AT_JSON_F_INT;
    if (s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && at_scan__digit(s[i]))
            i++;
    else
        return -1;
    if (i < n && s[i] == '.') {
        flags = 0;
        if (++i >= n || !at_scan__digit(s[i]))
            return -1;
        while (i < n && at_scan__digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        flags = 0;
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !at_scan__digit(s[i]))
            return -1;
        while (i < n && at_scan__digit(s[i]))
            i++;
    }
    size_t len = i - start;
    if (v) {
        v->type = AT_JSON_NUMBER;
        v->flags = flags;
        v->s = s + start;
        v->len = (uint32_t)len;
        v->c = write ? x->o : s + start;
        v->clen = (uint32_t)len;
    }
    if (write) {
        memcpy(x->o, s + start, len);
        x->o += len;
    }
    *pi = i;
    return 0;
}

static int at_scan__literal(at_scan_t *x, size_t *pi, const char *word, size_t n, int type,
                            at_sval_t *v, bool write)
{
    if (x->end - *pi < n || memcmp(x->src + *pi, word, n) != 0)
        return -1;
    if (v) {
        v->type = (uint8_t)type;
        v->c = write ? x->o : x->src + *pi;
        v->clen = (uint32_t)n;
    }
    if (write) {
        memcpy(x->o, word, n);
        x->o += n;
    }
    *pi += n;
    return 0;
}

static int at_scan__value(at_scan_t *x, size_t *pi, int depth, int path, at_sval_t *v);

/* a[0..n) == b[0..n), for the short names of the top-level table. */
static inline bool at_scan__same(const char *a, const char *b, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, a, 8), memcpy(&b0, b, 8);
        memcpy(&a1, a + n - 8, 8), memcpy(&b1, b + n - 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t a0, a1, b0, b1;
        memcpy(&a0, a, 4), memcpy(&b0, b, 4);
        memcpy(&a1, a + n - 4, 4), memcpy(&b1, b + n - 4, 4);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    return memcmp(a, b, n) == 0;
}

/* The nested step below path (a list head) named by the canonical key
 * k[0..n) (with quotes), or -1. */
static inline int at_scan__step(const at_ingest_t *in, int path, const char *k, uint32_t n)
{
    if (path < 0 || !(in->spath[path].lens >> (n & 63) & 1) ||
        !(in->spath[path].firsts >> ((uint8_t)k[1] & 63) & 1))
        return -1;
    for (; path >= 0; path = in->spath[path].next) {
        const at_srcstep_t *p = &in->spath[path];
        if (p->len + 2 == n && at_scan__same(p->name, k + 1, p->len))
            return path;
    }
    return -1;
}

/* Records the key k[0..n) of the object whose keys start at keys[base];
 * -1 when it repeats one of them (or there are too many to check). bloom
 * has a bit for each key of the object so far: the list is searched only
 * when the bit of this one is set. */
static inline int at_scan__key(at_scan_t *x, size_t base, uint64_t *bloom, const char *k,
                               uint32_t n)
{
    uint32_t sig = n << 16 | (uint32_t)(uint8_t)k[1] << 8 | (uint8_t)k[n - 2];
    uint64_t bit = 1ULL << ((n * 5 + (uint8_t)k[1] + (uint8_t)k[n - 2] * 3) & 63);
    if (*bloom & bit) {
        for (size_t j = base; j < x->nkeys; j++)
            if (x->keys[j].sig == sig && memcmp(x->keys[j].k, k, n) == 0)
                return -1;
    }
    *bloom |= bit;
    if (x->nkeys == AT_SCAN_KEYS)
        return -1;
    x->keys[x->nkeys++] = (at_skey_t){k, n, sig};
    return 0;
}

/* Moves *pi past the byte c, which may follow whitespace; false when it
 * is not there. */
static inline bool at_scan__expect(const char *s, size_t *pi, size_t end, char c)
{
    size_t i = *pi;
    if (!(i < end && s[i] == c)) {
        i = at_scan__skip_ws(s, i, end);
        if (!(i < end && s[i] == c))
            return false;
    }
    *pi = i + 1;
    return true;
}

/* An object at nesting level depth. path: the list of nested source steps
 * that may be found among its members, or -1. */
static int at_scan__object(at_scan_t *x, size_t *pi, int depth, int path)
{
    if (depth > x->max_depth)
        return -1;
    const char *const s = x->src;
    const size_t end = x->end, load_end = x->load_end, base = x->nkeys;
    const uint32_t max = x->max_len;
    uint64_t bloom = 0;
    size_t i = *pi + 1;
    char *o = x->o;
    *o++ = '{';
    char c = at_scan__peek(s, &i, end);
    if (c == '}') {
        i++;
    } else {
        for (;;) {
            if (c != '"')
                return -1;
            char *k = o;
            at_sval_t kv;
            if (at_scan__str(x, s, end, load_end, &i, &o, max, path >= 0 ? &kv : NULL) < 0)
                return -1;
            uint32_t kn = (uint32_t)(o - k);
            if (at_scan__key(x, base, &bloom, k, kn) < 0)
                return -1;
            const at_srcstep_t *sp = NULL;
            if (path >= 0) {
                if (kv.flags & AT_JSON_F_ESC)
                    return -1; /* a source name may be spelled with escapes */
                int step = at_scan__step(x->in, path, k, kn);
                sp = step >= 0 ? &x->in->spath[step] : NULL;
            }
            if (!at_scan__expect(s, &i, end, ':') || !(c = at_scan__peek(s, &i, end)))
                return -1;
            *o++ = ':';
            at_sval_t *slot = sp && sp->slot >= 0 ? &x->sub[sp->slot] : NULL;
            if (c == '"') {
                if (at_scan__str(x, s, end, load_end, &i, &o, max, slot) < 0)
                    return -1;
            } else {
                x->o = o;
                size_t j = i;
                if (at_scan__value(x, &j, depth + 1, sp ? sp->child : -1, slot) < 0)
                    return -1;
                i = j;
                o = x->o;
            }
            if (slot)
                x->sub_set |= 1ULL << sp->slot;
            c = at_scan__peek(s, &i, end);
            i++;
            if (c == '}')
                break;
            if (c != ',')
                return -1;
            *o++ = ',';
            c = at_scan__peek(s, &i, end);
        }
    }
    *o++ = '}';
    x->o = o;
    x->nkeys = base;
    *pi = i;
    return 0;
}

static int at_scan__array(at_scan_t *x, size_t *pi, int depth)
{
    if (depth > x->max_depth)
        return -1;
    const char *const s = x->src;
    const size_t end = x->end;
    size_t i = *pi + 1;
    *x->o++ = '[';
    char c = at_scan__peek(s, &i, end);
    if (c == ']') {
        i++;
    } else {
        for (;;) {
            if (!c || at_scan__value(x, &i, depth + 1, -1, NULL) < 0)
                return -1;
            c = at_scan__peek(s, &i, end);
            i++;
            if (c == ']')
                break;
            if (c != ',')
                return -1;
            *x->o++ = ',';
            c = at_scan__peek(s, &i, end);
        }
    }
    *x->o++ = ']';
    *pi = i;
    return 0;
}

/* The value at src[*pi] (not whitespace, before end) at nesting level
 * depth, written in canonical form; v (when not NULL) describes it. */
static int at_scan__value(at_scan_t *x, size_t *pi, int depth, int path, at_sval_t *v)
{
    size_t at = *pi;
    uint32_t out = (uint32_t)(x->o - x->base);
    int rc;
    switch (x->src[at]) {
    case '"':
        rc = at_scan__string(x, pi, v);
        break;
    case '{':
        rc = at_scan__object(x, pi, depth, path);
        if (v)
            v->type = AT_JSON_OBJECT;
        break;
    case '[':
        rc = at_scan__array(x, pi, depth);
        if (v)
            v->type = AT_JSON_ARRAY;
        break;
    case 't':
        return at_scan__literal(x, pi, "true", 4, AT_JSON_TRUE, v, true);
    case 'f':
        return at_scan__literal(x, pi, "false", 5, AT_JSON_FALSE, v, true);
    case 'n':
        return at_scan__literal(x, pi, "null", 4, AT_JSON_NULL, v, true);
    default:
        rc = at_scan__number(x, pi, v, true);
        break;
    }
    if (rc == 0 && v) {
        if (v->type == AT_JSON_OBJECT || v->type == AT_JSON_ARRAY) {
            v->flags = 0;
            v->c = x->base + out;
            v->clen = (uint32_t)(x->o - x->base) - out;
        }
        v->roff = (uint32_t)at;
        v->rend = (uint32_t)*pi;
    }
    return rc;
}

/* ---- the event --------------------------------------------------------- */

/* The event as read: its top-level members by name, and what goes under
 * "extra", in order. */
typedef struct at_sev {
    uint64_t seen; /* bits of in->top that are present */
    at_sval_t top[AT_INGEST_MAX_TOP];
    size_t nextra;
    at_sextra_t extra[AT_SCAN_EXTRA];
    const at_sval_t *f[AT_F_NFIELDS]; /* the fields picked */
    const at_sval_t *props;           /* written as "properties" */
    bool traits_used;
    int64_t ts;
    bool clamped;
    bool ts_as_sent; /* the timestamp's text is already canonical */
} at_sev_t;

static const at_sval_t *at_scan__member(const at_sev_t *ev, int i)
{
    return ev->seen >> i & 1 ? &ev->top[i] : NULL;
}

/* at_ingest__top_find, inlined, and first through the table of names by
 * length and first byte. */
static inline int at_scan__top_find(const at_ingest_t *in, const char *s, size_t n)
{
    if (n - 1 < AT_INGEST_DIRECT - 1) {
        unsigned d = in->top_direct[n][(uint8_t)s[0] & (AT_INGEST_DIRECT - 1)];
        if (d != 255) {
            if (!d || !at_scan__same(in->top[d - 1].name, s, n))
                return -1;
            return (int)d - 1;
        }
    }
    for (unsigned h = at_ingest__top_hash(s, n);; h = (h + 1) & 255u) {
        int i = in->top_slot[h];
        if (!i)
            return -1;
        const at_topname_t *t = &in->top[i - 1];
        if (t->len == n && at_scan__same(t->name, s, n))
            return i - 1;
    }
}

/* One top-level member at src[*pi] (its key). */
static int at_scan__top_member(at_scan_t *x, at_sev_t *ev, size_t *pi)
{
    const char *const s = x->src;
    const size_t end = x->end;
    size_t i = *pi;
    char *o = x->o;
    at_sval_t kv;
    /* only names that go under "extra" have a limit, checked below; the
     * name's canonical text is not kept */
    if (at_scan__str(x, s, end, x->load_end, &i, &o, UINT32_MAX, &kv) < 0 ||
        (kv.flags & AT_JSON_F_ESC))
        return -1; /* an escaped top-level name: left to the tree path */
    const char *k = kv.s;
    uint32_t kn = kv.len;
    int t = at_scan__top_find(x->in, k, kn);
    bool extra;
    if (t >= 0) {
        if (ev->seen >> t & 1)
            return -1; /* a duplicate field */
        extra = x->in->top_extra >> t & 1;
    } else {
        for (size_t j = 0; j < ev->nextra; j++)
            if (ev->extra[j].top < 0 && ev->extra[j].kn == kn && memcmp(ev->extra[j].k, k, kn) == 0)
                return -1;
        extra = true;
    }
    char c;
    if (!at_scan__expect(s, &i, end, ':') || !(c = at_scan__peek(s, &i, end)))
        return -1;
    at_sval_t tmp = {0}, *v = t >= 0 ? &ev->top[t] : &tmp;
    if (c == '"') {
        o = x->o;
        if (at_scan__str(x, s, end, x->load_end, &i, &o, x->max_len, v) < 0)
            return -1;
        x->o = o;
    } else if (at_scan__value(x, &i, 2, t >= 0 ? x->in->top_spath[t] : -1, v) < 0) {
        return -1;
    }
    if (t >= 0)
        ev->seen |= 1ULL << t;
    if (extra) {
        if (ev->nextra == AT_SCAN_EXTRA || kn > x->max_len)
            return -1;
        ev->extra[ev->nextra++] = (at_sextra_t){t, k, kn, v->c, v->clen};
    }
    *pi = i;
    return 0;
}

/* Reads the event object at src[*pi] into ev and the output. */
static int at_scan__read(at_scan_t *x, at_sev_t *ev, size_t *pi)
{
    const char *const s = x->src;
    const size_t end = x->end;
    size_t i = *pi + 1;
    char c = at_scan__peek(s, &i, end);
    if (c == '}') {
        *pi = i + 1;
        return 0;
    }
    for (;;) {
        if (c != '"' || at_scan__top_member(x, ev, &i) < 0)
            return -1;
        c = at_scan__peek(s, &i, end);
        i++;
        if (c == '}')
            break;
        if (c != ',')
            return -1;
        c = at_scan__peek(s, &i, end);
    }
    *pi = i;
    return 0;
}

/* ---- the plain path ----------------------------------------------------
 * Most events are sent compact, in ASCII and without escapes: then the
 * canonical text of every value is its text as sent, and the event only
 * needs checking, with nothing written. At the first thing outside that
 * (whitespace, an escape, a byte >= 0x80, anything unexpected) the plain
 * path gives up and the writing path above reads the event from its start
 * (and may give up in turn, for the tree path). */

/* The closing quote of the plain string whose opening quote is s[i - 1]:
 * printable ASCII other than '\\' up to it, before end. Returns its
 * position, or 0 when the string is not plain or not closed before end. */
static inline size_t at_scan__plain_close(const char *s, size_t i, size_t end, size_t load_end)
{
#if defined(__SSE2__)
    while (i + 16 <= load_end) {
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        unsigned q = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(c, _mm_set1_epi8('"')));
        unsigned m =
            q | (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8('\\')),
                                                         _mm_cmplt_epi8(c, _mm_set1_epi8(' '))));
        if (m) {
            i += (unsigned)__builtin_ctz(m);
            return (q & m & (0u - m)) && i < end ? i : 0; /* the closing quote first */
        }
        i += 16;
        if (i >= end)
            return 0;
    }
#endif
    while (i < end && at_scan__is_plain((uint8_t)s[i]))
        i++;
    return i < end && s[i] == '"' ? i : 0;
}

/* The plain string at src[*pi] ('"'), at most max bytes; fills v when not
 * NULL. */
static inline int at_scan__plain_string(const at_scan_t *x, size_t *pi, uint32_t max, at_sval_t *v)
{
    const char *s = x->src;
    size_t start = *pi + 1, q = at_scan__plain_close(s, start, x->end, x->load_end);
    if (!q || q - start > max)
        return -1;
    if (v) {
        v->type = AT_JSON_STRING;
        v->flags = 0;
        v->s = s + start;
        v->len = v->dlen = (uint32_t)(q - start);
        v->c = s + start - 1;
        v->clen = (uint32_t)(q - start + 2);
    }
    *pi = q + 1;
    return 0;
}

static int at_scan__plain_value(at_scan_t *x, size_t *pi, int depth, int path, at_sval_t *v);

/* A plain object at nesting level depth (see at_scan__object). */
static int at_scan__plain_object(at_scan_t *x, size_t *pi, int depth, int path)
{
    if (depth > x->max_depth)
        return -1;
    const char *const s = x->src;
    const size_t end = x->end, load_end = x->load_end, base = x->nkeys;
    const uint32_t max = x->max_len;
    uint64_t bloom = 0;
    size_t i = *pi + 1;
    if (i < end && s[i] == '}') {
        *pi = i + 1;
        return 0;
    }
    for (;;) {
        if (i >= end || s[i] != '"')
            return -1;
        size_t kq = at_scan__plain_close(s, i + 1, end, load_end);
        if (!kq || kq - i - 1 > max)
            return -1;
        const char *k = s + i;
        uint32_t kn = (uint32_t)(kq + 1 - i); /* with its quotes */
        if (at_scan__key(x, base, &bloom, k, kn) < 0)
            return -1;
        const at_srcstep_t *sp = NULL;
        if (path >= 0) {
            int step = at_scan__step(x->in, path, k, kn);
            sp = step >= 0 ? &x->in->spath[step] : NULL;
        }
        i = kq + 2;
        if (i >= end || s[kq + 1] != ':')
            return -1;
        at_sval_t *slot = sp && sp->slot >= 0 ? &x->sub[sp->slot] : NULL;
        char c0 = s[i];
        if (c0 == '"' && !slot) {
            size_t q = at_scan__plain_close(s, i + 1, end, load_end);
            if (!q || q - i - 1 > max)
                return -1;
            i = q + 1;
        } else if (c0 == '"') {
            if (at_scan__plain_string(x, &i, max, slot) < 0)
                return -1;
        } else if (at_scan__digit(c0) || c0 == '-') {
            if (at_scan__number(x, &i, slot, false) < 0)
                return -1;
        } else if (at_scan__plain_value(x, &i, depth + 1, sp ? sp->child : -1, slot) < 0) {
            return -1;
        }
        if (slot)
            x->sub_set |= 1ULL << sp->slot;
        if (i >= end)
            return -1;
        char c = s[i++];
        if (c == ',')
            continue;
        if (c != '}')
            return -1;
        break;
    }
    x->nkeys = base;
    *pi = i;
    return 0;
}

static int at_scan__plain_array(at_scan_t *x, size_t *pi, int depth)
{
    if (depth > x->max_depth)
        return -1;
    const char *const s = x->src;
    const size_t end = x->end;
    size_t i = *pi + 1;
    if (i < end && s[i] == ']') {
        *pi = i + 1;
        return 0;
    }
    for (;;) {
        if (i >= end || at_scan__plain_value(x, &i, depth + 1, -1, NULL) < 0 || i >= end)
            return -1;
        char c = s[i++];
        if (c == ',')
            continue;
        if (c != ']')
            return -1;
        break;
    }
    *pi = i;
    return 0;
}

/* A plain value at src[*pi] (before end) at nesting level depth. */
static int at_scan__plain_value(at_scan_t *x, size_t *pi, int depth, int path, at_sval_t *v)
{
    size_t at = *pi;
    int rc, type;
    switch (x->src[at]) {
    case '"':
        return at_scan__plain_string(x, pi, x->max_len, v);
    case '{':
        rc = at_scan__plain_object(x, pi, depth, path);
        type = AT_JSON_OBJECT;
        break;
    case '[':
        rc = at_scan__plain_array(x, pi, depth);
        type = AT_JSON_ARRAY;
        break;
    case 't':
        return at_scan__literal(x, pi, "true", 4, AT_JSON_TRUE, v, false);
    case 'f':
        return at_scan__literal(x, pi, "false", 5, AT_JSON_FALSE, v, false);
    case 'n':
        return at_scan__literal(x, pi, "null", 4, AT_JSON_NULL, v, false);
    default:
        return at_scan__number(x, pi, v, false);
    }
    if (rc == 0 && v) {
        v->type = (uint8_t)type;
        v->flags = 0;
        v->c = x->src + at;
        v->clen = (uint32_t)(*pi - at);
        v->roff = (uint32_t)at;
        v->rend = (uint32_t)*pi;
    }
    return rc;
}

/* Reads the plain event object at src[*pi] into ev (at_scan__read with
 * at_scan__top_member, for plain events). */
static int at_scan__plain_read(at_scan_t *x, at_sev_t *ev, size_t *pi)
{
    const char *const s = x->src;
    const size_t end = x->end, load_end = x->load_end;
    const at_ingest_t *const in = x->in;
    size_t i = *pi + 1;
    if (i < end && s[i] == '}') {
        *pi = i + 1;
        return 0;
    }
    for (;;) {
        if (i >= end || s[i] != '"')
            return -1;
        size_t k0 = i + 1, kq = at_scan__plain_close(s, k0, end, load_end);
        if (!kq)
            return -1;
        const char *k = s + k0;
        uint32_t kn = (uint32_t)(kq - k0);
        int t = at_scan__top_find(in, k, kn);
        bool extra;
        if (t >= 0) {
            if (ev->seen >> t & 1)
                return -1; /* a duplicate field */
            extra = in->top_extra >> t & 1;
        } else {
            for (size_t j = 0; j < ev->nextra; j++)
                if (ev->extra[j].top < 0 && ev->extra[j].kn == kn &&
                    memcmp(ev->extra[j].k, k, kn) == 0)
                    return -1;
            extra = true;
        }
        i = kq + 2;
        if (i >= end || s[kq + 1] != ':')
            return -1;
        at_sval_t tmp = {0}, *v = t >= 0 ? &ev->top[t] : &tmp;
        if (s[i] == '"') {
            size_t q = at_scan__plain_close(s, i + 1, end, load_end);
            if (!q || q - i - 1 > x->max_len)
                return -1;
            v->type = AT_JSON_STRING;
            v->flags = 0;
            v->s = s + i + 1;
            v->len = v->dlen = (uint32_t)(q - i - 1);
            v->c = s + i;
            v->clen = (uint32_t)(q - i + 1);
            i = q + 1;
        } else if (s[i] == '{') {
            size_t at = i;
            if (at_scan__plain_object(x, &i, 2, t >= 0 ? in->top_spath[t] : -1) < 0)
                return -1;
            *v = (at_sval_t){.type = AT_JSON_OBJECT,
                             .c = s + at,
                             .clen = (uint32_t)(i - at),
                             .roff = (uint32_t)at,
                             .rend = (uint32_t)i};
        } else if (at_scan__plain_value(x, &i, 2, t >= 0 ? in->top_spath[t] : -1, v) < 0) {
            return -1;
        }
        if (t >= 0)
            ev->seen |= 1ULL << t;
        if (extra) {
            if (ev->nextra == AT_SCAN_EXTRA || kn > x->max_len)
                return -1;
            ev->extra[ev->nextra++] = (at_sextra_t){t, k, kn, v->c, v->clen};
        }
        if (i >= end)
            return -1;
        char c = s[i++];
        if (c == ',')
            continue;
        if (c != '}')
            return -1;
        break;
    }
    *pi = i;
    return 0;
}

/* The decoded text of the string v into d (room for v->len bytes). */
static const char *at_scan__text(const at_sval_t *v, char *d)
{
    if (!(v->flags & AT_JSON_F_ESC))
        return v->s;
    AT_ASSERT(at_json_unescape(d, v->s, v->len) == v->dlen);
    return d;
}

static bool at_scan__is_track(const at_sval_t *v)
{
    if (v->type != AT_JSON_STRING || v->dlen != 5)
        return false;
    char tmp[64]; /* five decoded bytes come from at most 30 */
    return memcmp(at_scan__text(v, tmp), "track", 5) == 0;
}

/* The value of field f by the order of its sources (at_event__resolve),
 * when several of them are in the event. */
static const at_sval_t *at_scan__pick(const at_scan_t *x, const at_sev_t *ev, int f)
{
    const at_ingest_t *in = x->in;
    const at_sval_t *track = NULL;
    for (size_t i = 0; i < in->nsources[f]; i++) {
        unsigned code = in->field_src[f][i];
        const at_sval_t *v;
        if (code < AT_INGEST_MAX_TOP) {
            if (!(ev->seen >> code & 1))
                continue;
            v = &ev->top[code];
        } else {
            code -= AT_INGEST_MAX_TOP;
            if (!(x->sub_set >> code & 1))
                continue;
            v = &x->sub[code];
        }
        if (v->type == AT_JSON_NULL || (v->type == AT_JSON_STRING && v->dlen == 0))
            continue;
        if (f == AT_F_TYPE && at_scan__is_track(v) && strcmp(in->sources[f][i].text, "type") == 0) {
            track = v;
            continue;
        }
        return v;
    }
    return track;
}

/* Picks each canonical field from its first present source, as
 * at_event__resolve does, and checks it as at_event__check_str: -1 where
 * that would reject. A field with one of its sources in the event (nearly
 * always) takes it without looking at the order, nor at "track". */
static int at_scan__resolve(const at_scan_t *x, at_sev_t *ev)
{
    const at_ingest_t *in = x->in;
    unsigned several = 0; /* fields with two sources or more in the event */
    for (uint64_t m = ev->seen & in->source_tops; m; m &= m - 1) {
        int t = __builtin_ctzll(m);
        unsigned fm = in->top_fields[t];
        int f = __builtin_ctz(fm);
        if ((fm & (fm - 1)) || ev->f[f])
            several |= fm;
        else
            ev->f[f] = &ev->top[t];
    }
    for (uint64_t m = x->sub_set; m; m &= m - 1) {
        int k = __builtin_ctzll(m);
        unsigned fm = in->slot_fields[k];
        int f = __builtin_ctz(fm);
        if ((fm & (fm - 1)) || ev->f[f])
            several |= fm;
        else
            ev->f[f] = &x->sub[k];
    }
    for (int f = 0; f < AT_F_NFIELDS; f++) {
        const at_sval_t *v = ev->f[f];
        if (several >> f & 1)
            v = at_scan__pick(x, ev, f);
        else if (v && (v->type == AT_JSON_NULL || (v->type == AT_JSON_STRING && v->dlen == 0)))
            v = NULL; /* null and "" are absent */
        ev->f[f] = v;
        if (!v || f == AT_F_TIMESTAMP)
            continue;
        if (v->type == AT_JSON_STRING) {
            if (v->dlen > x->max_len || (v->flags & AT_SCAN_F_CTRL))
                return -1;
        } else if (v->type != AT_JSON_NUMBER || !(v->flags & AT_JSON_F_INT) ||
                   (f != AT_F_USER_ID && f != AT_F_ITEM_ID) || v->len > x->max_len) {
            return -1;
        }
    }
    return 0;
}

/* The time of day in ms of "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 bytes), as
 * at_time_parse_rfc3339 reads it (a leap second :60 counts as the next
 * second), or -1 when s does not have exactly that shape. Eight bytes at
 * a time: "HH:MM:SS", then "mmmZ". */
static int64_t at_scan__time_of_day(const char *s)
{
    const uint64_t zeros = 0x3030303030303030ULL, highs = 0xf0f0f0f0f0f0f0f0ULL;
    const uint64_t digits = 0xffff00ffff00ffffULL; /* H H : M M : S S */
    uint64_t w;
    uint32_t f;
    memcpy(&w, s + 11, 8);
    memcpy(&f, s + 20, 4);
    if (s[10] != 'T' || s[19] != '.' || (w & ~digits) != 0x00003a00003a0000ULL ||
        (w & highs & digits) != (zeros & digits) ||
        ((w + 0x0606060606060606ULL) & highs & digits) != (zeros & digits) ||
        (f & 0xfff0f0f0u) != 0x5a303030u || ((f + 0x00060606u) & 0x00f0f0f0u) != 0x00303030u)
        return -1;
    uint64_t d = w - zeros;
    uint32_t g = f - 0x30303030u;
    int h = (int)(d & 0xff) * 10 + (int)(d >> 8 & 0xff);
    int mi = (int)(d >> 24 & 0xff) * 10 + (int)(d >> 32 & 0xff);
    int sec = (int)(d >> 48 & 0xff) * 10 + (int)(d >> 56);
    if (h > 23 || mi > 59 || sec > 60)
        return -1;
    int ms = (int)(g & 0xff) * 100 + (int)(g >> 8 & 0xff) * 10 + (int)(g >> 16 & 0xff);
    return ((int64_t)(h * 60 + mi) * 60 + sec) * 1000 + ms;
}

/* A timestamp string: events of a batch mostly share their date, so the
 * day of the last "YYYY-MM-DDTHH:MM:SS.mmmZ" parsed is remembered (the
 * date alone decides it) and the same date is not parsed again. */
static int at_scan__time_text(at_evctx_t *c, const char *s, size_t n, int64_t *ms)
{
    const int64_t day_ms = 86400000;
    int64_t tod = n == 24 ? at_scan__time_of_day(s) : -1;
    if (tod >= 0 && c->parse_day >= 0) {
        uint64_t a, b;
        uint16_t a2, b2;
        memcpy(&a, s, 8), memcpy(&b, c->parse_date, 8);
        memcpy(&a2, s + 8, 2), memcpy(&b2, c->parse_date + 8, 2);
        if (a == b && a2 == b2) {
            *ms = c->parse_day * day_ms + tod;
            return 0;
        }
    }
    int rc = at_time_parse_rfc3339(s, n, ms);
    if (rc == 0 && tod >= 0 && *ms >= tod) {
        c->parse_day = (*ms - tod) / day_ms;
        memcpy(c->parse_date, s, 10);
    }
    return rc;
}

/* A time value (RFC 3339 string or epoch ms) as at_event__time reads it;
 * -1 when it is not one. */
static inline int at_scan__time(at_evctx_t *c, const at_sval_t *v, int64_t *ms)
{
    int rc = -1;
    if (v->type == AT_JSON_STRING) {
        char tmp[64];
        if (v->len < sizeof tmp)
            rc = at_scan__time_text(c, at_scan__text(v, tmp), v->dlen, ms);
        /* longer ones are never valid times: left to the tree path */
    } else if (v->type == AT_JSON_NUMBER) {
        at_json_t n = {.type = AT_JSON_NUMBER, .flags = v->flags, .s = v->s, .len = v->len};
        rc = at_json_i64(&n, ms);
    }
    if (rc == 0 && (*ms < 0 || *ms > AT_SCAN_TS_MAX))
        rc = -1;
    return rc < 0 ? -1 : 0;
}

/* The checks of at_event__fields; -1 where that would reject. */
static int at_scan__check(const at_scan_t *x, at_evctx_t *c, at_sev_t *ev)
{
    const at_ingest_t *in = x->in;
    if (!ev->f[AT_F_TYPE] || (!ev->f[AT_F_USER_ID] && !ev->f[AT_F_ANONYMOUS_ID]))
        return -1;
    const int objs[3] = {in->ix_context, in->ix_properties, in->ix_traits};
    for (int k = 0; k < 3; k++) {
        const at_sval_t *m = at_scan__member(ev, objs[k]);
        if (m && m->type != AT_JSON_OBJECT && m->type != AT_JSON_NULL)
            return -1;
    }
    const at_sval_t *p = at_scan__member(ev, in->ix_properties);
    const at_sval_t *tr = at_scan__member(ev, in->ix_traits);
    if (p && p->type == AT_JSON_OBJECT) {
        ev->props = p;
    } else if (tr && tr->type == AT_JSON_OBJECT) {
        ev->props = tr;
        ev->traits_used = true;
    }
    ev->ts = c->recv_ms;
    const at_sval_t *t = ev->f[AT_F_TIMESTAMP];
    if (!t)
        return 0;
    if (at_scan__time(c, t, &ev->ts) < 0)
        return -1;
    /* "YYYY-MM-DDTHH:MM:SS.mmmZ" as sent is what the writer would make of
     * it (a leap second :60 aside, which counts as the next second) */
    ev->ts_as_sent = t->type == AT_JSON_STRING && t->len == 24 && !(t->flags & AT_JSON_F_ESC) &&
                     t->s[10] == 'T' && t->s[19] == '.' && t->s[23] == 'Z' && t->s[17] != '6';
    const at_sval_t *sent = at_scan__member(ev, in->ix_sent_at);
    if (sent && sent->type != AT_JSON_NULL) {
        int64_t sent_ms;
        if (at_scan__time(c, sent, &sent_ms) < 0)
            return -1;
        ev->ts = AT_MAX(ev->ts + (c->recv_ms - sent_ms), 0);
        ev->ts_as_sent = false;
    }
    if (ev->ts > c->recv_ms + in->max_future_ms) {
        ev->ts = c->recv_ms;
        ev->clamped = true;
        ev->ts_as_sent = false;
    }
    return 0;
}

/* The schema of the event's type, if any, run on a tree of its
 * properties (the only part a schema sees); -1 when it refuses them.
 * *type is the decoded type (in c->scratch when it had escapes). The tree
 * lives in c->scratch, reset here as the tree path resets it per event. */
static int at_scan__schema(const at_scan_t *x, at_evctx_t *c, const at_sev_t *ev, const char **type)
{
    const at_sval_t *t = ev->f[AT_F_TYPE];
    bool fresh = false; /* c->scratch was reset for this event */
    *type = t->s;
    if (t->flags & AT_JSON_F_ESC) {
        at_arena_reset(c->scratch);
        fresh = true;
        *type = at_scan__text(t, at_arena_alloc(c->scratch, t->dlen));
    }
    const at_registry_t *reg = &x->in->reg;
    const at_schema_t *s = reg->ntypes ? at_ingest__registry_find(reg, *type, t->dlen) : NULL;
    if (!s)
        return 0;
    static const at_json_t empty = {.type = AT_JSON_OBJECT};
    const at_json_t *props = &empty;
    if (ev->props) {
        if (!fresh)
            at_arena_reset(c->scratch); /* the last event's tree */
        at_jparse_t p;
        at_json_init(&p, x->src, ev->props->rend, c->scratch, INT32_MAX);
        p.pos = ev->props->roff;
        at_json_t *tree;
        if (at_json_value(&p, &tree) < 0 || !tree)
            return -1;
        props = tree;
    }
    at_error_t e;
    return at_ingest__schema_check(s, props, ev->traits_used ? "traits" : "properties", &e) < 0 ? -1
                                                                                                : 0;
}

static size_t at_scan__field_len(const at_sval_t *v)
{
    return v->type == AT_JSON_NUMBER ? v->len + 2 : v->clen;
}

static char *at_scan__put(char *d, const void *s, size_t n)
{
    memcpy(d, s, n);
    return d + n;
}

/* Copies n bytes of s to d, where d may be written up to 16 bytes past n
 * (the event's allocation has room), and so may s be read when that stays
 * before lim (NULL: s has room, as the tables below and the output). */
static inline char *at_scan__copy(char *d, const char *s, size_t n, const char *lim)
{
#if defined(__SSE2__)
    if (n <= 16 && (!lim || s + 16 <= lim)) {
        _mm_storeu_si128((__m128i *)(void *)d, _mm_loadu_si128((const __m128i *)(const void *)s));
        return d + n;
    }
    if (n > 16 && n <= 32) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i z = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
        _mm_storeu_si128((__m128i *)(void *)d, a);
        _mm_storeu_si128((__m128i *)(void *)(d + n - 16), z);
        return d + n;
    }
#endif
    memcpy(d, s, n);
    return d + n;
}

/* A canonical field as at_event__w_field writes it: strings as they are
 * in canonical form, numbers (their text is in the output too) in quotes. */
static char *at_scan__put_field(char *d, const at_scan_t *x, const at_sval_t *v)
{
    if (v->type != AT_JSON_NUMBER)
        return at_scan__copy(d, v->c, v->clen, x->lim);
    *d++ = '"';
    d = at_scan__copy(d, v->c, v->len, x->lim);
    *d++ = '"';
    return d;
}

/* The decoded bytes of a field (a string, or a number's text) at d. */
static inline char *at_scan__put_text(char *d, const at_scan_t *x, const at_sval_t *v)
{
    if (v->type == AT_JSON_NUMBER)
        return at_scan__copy(d, v->c, v->len, x->lim);
    if (v->flags & AT_JSON_F_ESC)
        return d + at_json_unescape(d, v->s, v->len);
    return at_scan__copy(d, v->c + 1, v->len, x->lim); /* canonical is as sent */
}

static size_t at_scan__text_len(const at_sval_t *v)
{
    return v->type == AT_JSON_NUMBER ? v->len : v->dlen;
}

static bool at_scan__in_extra(const at_sev_t *ev, const at_sextra_t *m, int ix_traits)
{
    return !(m->top == ix_traits && ev->traits_used);
}

static const struct {
    int f;
    char name[32]; /* room for at_scan__copy */
    size_t len;
} at_scan__opt[] = {
    {AT_F_USER_ID, ",\"user_id\":", 11},       {AT_F_ANONYMOUS_ID, ",\"anonymous_id\":", 16},
    {AT_F_SESSION_ID, ",\"session_id\":", 14}, {AT_F_ITEM_ID, ",\"item_id\":", 11},
    {AT_F_CATEGORY, ",\"category\":", 12},
};

/* Bytes of the canonical event (at_event__write's layout). */
static size_t at_scan__json_len(const at_scan_t *x, const at_evctx_t *c, const at_sev_t *ev,
                                const at_sval_t *ctx, size_t ts_digits)
{
    size_t n =
        12 + (ev->f[AT_F_EVENT_ID] ? at_scan__field_len(ev->f[AT_F_EVENT_ID]) : AT_ID_LEN + 2);
    n += 8 + at_scan__field_len(ev->f[AT_F_TYPE]);
    for (size_t i = 0; i < AT_ARRAY_LEN(at_scan__opt); i++)
        if (ev->f[at_scan__opt[i].f])
            n += at_scan__opt[i].len + at_scan__field_len(ev->f[at_scan__opt[i].f]);
    n += 14 + 24 + 7 + ts_digits + c->recv_text_len + (ev->clamped ? 15 : 0);
    if (ctx)
        n += 11 + ctx->clen;
    if (ev->props)
        n += 14 + ev->props->clen;
    size_t nextra = 0;
    for (size_t i = 0; i < ev->nextra; i++) {
        const at_sextra_t *m = &ev->extra[i];
        if (at_scan__in_extra(ev, m, x->in->ix_traits))
            n += (nextra++ ? 1 : 10) + m->kn + 3 + m->clen;
    }
    return n + (nextra ? 1 : 0) + 1;
}

/* Writes the canonical event (at_event__write) at d; returns the end. */
static char *at_scan__put_json(char *d, const at_scan_t *x, at_evctx_t *c, const at_sev_t *ev,
                               const at_sval_t *ctx, const char *id, const char *ts_text,
                               size_t ts_digits)
{
    d = at_scan__put(d, "{\"event_id\":", 12);
    if (ev->f[AT_F_EVENT_ID]) {
        d = at_scan__put_field(d, x, ev->f[AT_F_EVENT_ID]);
    } else {
        *d++ = '"';
        d = at_scan__put(d, id, AT_ID_LEN);
        *d++ = '"';
    }
    d = at_scan__put(d, ",\"type\":", 8);
    d = at_scan__put_field(d, x, ev->f[AT_F_TYPE]);
    for (size_t i = 0; i < AT_ARRAY_LEN(at_scan__opt); i++) {
        const at_sval_t *v = ev->f[at_scan__opt[i].f];
        if (v) {
            d = at_scan__copy(d, at_scan__opt[i].name, at_scan__opt[i].len, NULL);
            d = at_scan__put_field(d, x, v);
        }
    }
    d = at_scan__put(d, ",\"timestamp\":\"", 14);
    const at_sval_t *t = ev->f[AT_F_TIMESTAMP];
    if (ev->ts_as_sent)
        d = at_scan__copy(d, t->c + 1, 24, x->lim);
    else
        at_ingest__time_text(c, ev->ts, d), d += 24;
    d = at_scan__put(d, "\",\"ts\":", 7);
    memcpy(d, ts_text, 24); /* the digits and what follows them in ts_buf */
    d += ts_digits;
    d = at_scan__copy(d, c->recv_text, c->recv_text_len, NULL);
    if (ev->clamped)
        d = at_scan__put(d, ",\"clamped\":true", 15);
    if (ctx) {
        d = at_scan__put(d, ",\"context\":", 11);
        d = at_scan__copy(d, ctx->c, ctx->clen, x->lim);
    }
    if (ev->props) {
        d = at_scan__put(d, ",\"properties\":", 14);
        d = at_scan__copy(d, ev->props->c, ev->props->clen, x->lim);
    }
    size_t nextra = 0;
    for (size_t i = 0; i < ev->nextra; i++) {
        const at_sextra_t *m = &ev->extra[i];
        if (!at_scan__in_extra(ev, m, x->in->ix_traits))
            continue;
        d = nextra++ ? at_scan__put(d, ",", 1) : at_scan__put(d, ",\"extra\":{", 10);
        *d++ = '"';
        d = at_scan__put(d, m->k, m->kn);
        *d++ = '"';
        *d++ = ':';
        d = at_scan__copy(d, m->c, m->clen, x->lim);
    }
    if (nextra)
        *d++ = '}';
    *d++ = '}';
    return d;
}

/* Writes v in decimal ending at d + 24; returns the number of digits. */
static size_t at_scan__decimal(char *d, uint64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char *e = d + 24, *p = e;
    while (v >= 10000) {
        unsigned r = (unsigned)(v % 10000);
        v /= 10000;
        p -= 4;
        memcpy(p, pairs + 2 * (size_t)(r / 100), 2);
        memcpy(p + 2, pairs + 2 * (size_t)(r % 100), 2);
    }
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, pairs + 2 * (size_t)r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return (size_t)(e - p);
}

/* at_scan__decimal of ts (>= 0): the digits above the last five mostly
 * repeat from one event of a batch to the next, and are kept. */
static size_t at_scan__ts_decimal(at_evctx_t *c, char d[48], int64_t ts)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    uint64_t hi = (uint64_t)ts / 100000;
    if (hi == 0)
        return at_scan__decimal(d, (uint64_t)ts);
    unsigned lo = (unsigned)((uint64_t)ts % 100000);
    if ((int64_t)hi != c->dec_hi) {
        c->dec_len = (uint8_t)at_scan__decimal(c->dec_text, hi);
        c->dec_hi = (int64_t)hi;
    }
    char *e = d + 24;
    memcpy(e - 2, pairs + 2 * (size_t)(lo % 100), 2);
    memcpy(e - 4, pairs + 2 * (size_t)(lo / 100 % 100), 2);
    e[-5] = (char)('0' + lo / 10000);
    memcpy(e - 5 - 16, c->dec_text + 8, 16); /* hi has at most 10 digits (ts <= 9999) */
    return (size_t)c->dec_len + 5;
}

/* Appends the event to the batch (at_event__accept): the canonical JSON,
 * key, id and type in one allocation of the batch arena. */
static void at_scan__accept(const at_scan_t *x, at_evctx_t *c, const at_sev_t *ev, int index,
                            const char *type)
{
    at_batch_t *b = c->b;
    const at_ingest_t *in = x->in;
    const at_sval_t *w = at_scan__member(ev, in->ix_write_key);
    if (w && w->type == AT_JSON_STRING && !b->write_key) {
        char *k = at_arena_alloc(&b->arena, w->dlen + 17);
        *at_scan__put_text(k, x, w) = '\0';
        b->write_key = k;
    }
    char id[AT_ID_LEN + 1];
    const at_sval_t *eid = ev->f[AT_F_EVENT_ID];
    if (!eid)
        at_id_new(id, c->recv_ms);
    char ts_buf[48]; /* digits end at 24: room for at_scan__copy */
    size_t ts_digits = at_scan__ts_decimal(c, ts_buf, ev->ts);
    const char *ts_text = ts_buf + 24 - ts_digits;
    const at_sval_t *ctx = at_scan__member(ev, in->ix_context);
    if (ctx && ctx->type != AT_JSON_OBJECT)
        ctx = NULL;

    bool user = ev->f[AT_F_USER_ID] != NULL;
    const at_sval_t *kv = ev->f[user ? AT_F_USER_ID : AT_F_ANONYMOUS_ID];
    const at_sval_t *tv = ev->f[AT_F_TYPE];
    size_t json_len = at_scan__json_len(x, c, ev, ctx, ts_digits);
    size_t key_len = 2 + at_scan__text_len(kv);
    size_t eid_len = eid ? at_scan__text_len(eid) : AT_ID_LEN;
    size_t type_len = tv->dlen;
    /* 16 bytes more than the four strings: at_scan__copy writes past */
    char *m = at_arena_alloc(&b->arena, json_len + key_len + eid_len + type_len + 4 + 16);

    char *d = at_scan__put_json(m, x, c, ev, ctx, id, ts_text, ts_digits);
    AT_ASSERT((size_t)(d - m) == json_len);
    *d++ = '\0';
    char *key = d;
    *d++ = user ? 'u' : 'a';
    *d++ = ':';
    d = at_scan__put_text(d, x, kv);
    *d++ = '\0';
    char *event_id = d;
    d = eid ? at_scan__put_text(d, x, eid) : at_scan__put(d, id, AT_ID_LEN);
    *d++ = '\0';
    char *type_text = d;
    d = tv->flags & AT_JSON_F_ESC ? at_scan__put(d, type, type_len) : at_scan__put_text(d, x, tv);
    *d = '\0';
    at_event_t *o = b->nevents < c->events_cap ? &b->events[b->nevents++] : at_ingest__event_new(c);
    *o = (at_event_t){
        .index = index,
        .partition = at_partition_of(key, key_len, c->partitions),
        .key = key,
        .key_len = (uint32_t)key_len,
        .event_id = event_id,
        .event_id_len = (uint32_t)eid_len,
        .id_assigned = eid == NULL,
        .clamped = ev->clamped,
        .type = type_text,
        .ts_ms = ev->ts,
        .recv_ms = c->recv_ms,
        .json = m,
        .json_len = (uint32_t)json_len,
    };
    if (ev->clamped)
        b->nclamped++;
}

/* See ingest_int.h. Thread: the batch's. */
bool at_ingest__scan(at_evctx_t *c, int index, const char *src, size_t pos, size_t end,
                     size_t load_end, unsigned flags, size_t *after)
{
    const at_ingest_t *in = c->in;
    AT_ASSERT(in->scan && pos < end && end <= load_end);
    if (src[pos] != '{')
        return false;
    at_scan_t x;
    x.src = src;
    x.end = end;
    x.load_end = load_end;
    x.base = x.o = NULL;
    x.lim = src + load_end; /* the plain path's canonical texts are the source */
    x.max_len = (uint32_t)in->max_field_length;
    x.max_depth = in->max_depth;
    x.in = in;
    x.sub_set = 0;
    x.nkeys = 0;
    at_sev_t ev;
    ev.seen = 0;
    ev.nextra = 0;
    size_t i = pos;
    /* A producer that escapes or indents does so in every event: after a
     * few events the plain path gave up on, the next ones go straight to
     * the writing path, and the plain path is tried again now and then. */
    bool plain = c->plain_misses < AT_SCAN_MISSES;
    if (!plain && ++c->plain_misses == AT_SCAN_RETRY) {
        c->plain_misses = 0;
        plain = true;
    }
    if (plain && at_scan__plain_read(&x, &ev, &i) == 0) {
        c->plain_misses = 0;
    } else {
        c->plain_misses += plain;
        plain = false;
        /* the writing path: the canonical text of a value is never longer
         * than its source, and a copy stores at most 16 bytes past its end */
        at_buf_reset(&c->out);
        AT_ASSERT(at_buf_reserve(&c->out, end - pos + 64) == 0);
        x.base = x.o = c->out.data;
        x.lim = NULL;
        x.sub_set = 0;
        x.nkeys = 0;
        ev.seen = 0;
        ev.nextra = 0;
        i = pos;
        if (at_scan__read(&x, &ev, &i) < 0)
            return false;
    }
    if (flags & AT_SCAN_LINE) {
        /* the plain path allows no whitespace, so no '\n', in the event */
        if (!plain && memchr(src + pos, '\n', i - pos))
            return false;
        while (i < load_end && (src[i] == ' ' || src[i] == '\t' || src[i] == '\r'))
            i++;
        if (i < load_end && src[i] != '\n')
            return false;
    }
    memset(ev.f, 0, sizeof ev.f);
    ev.props = NULL;
    ev.traits_used = ev.clamped = ev.ts_as_sent = false;
    const char *type;
    if (at_scan__resolve(&x, &ev) < 0 || at_scan__check(&x, c, &ev) < 0 ||
        at_scan__schema(&x, c, &ev, &type) < 0)
        return false;
    at_scan__accept(&x, c, &ev, index, type);
    *after = i;
    return true;
}

/* See ingest_int.h. Thread: at_ingest_new's. */
void at_ingest__scan_plan(at_ingest_t *in)
{
    in->scan = true;
    in->top_extra = 0;
    memset(in->top_direct, 0, sizeof in->top_direct);
    for (size_t i = 0; i < in->ntop; i++) {
        const at_topname_t *t = &in->top[i];
        if (t->len == 0 || t->len >= AT_INGEST_DIRECT)
            continue;
        uint8_t *d = &in->top_direct[t->len][(uint8_t)t->name[0] & (AT_INGEST_DIRECT - 1)];
        *d = *d ? 255 : (uint8_t)(i + 1); /* two names here: search by hash */
    }
    in->nspath = 0;
    in->nslots = 0;
    for (size_t i = 0; i < in->ntop; i++) {
        const at_topname_t *t = &in->top[i];
        if ((t->kind == AT_TOP_SOURCE && !t->consumed) || t->kind == AT_TOP_TRAITS)
            in->top_extra |= 1ULL << i;
        in->top_spath[i] = -1;
    }
    in->source_tops = 0;
    memset(in->top_fields, 0, sizeof in->top_fields);
    memset(in->slot_fields, 0, sizeof in->slot_fields);
    for (int f = 0; f < AT_F_NFIELDS; f++) {
        in->field_tops[f] = in->field_slots[f] = 0;
        for (size_t k = 0; k < in->nsources[f]; k++) {
            at_source_t *sc = &in->sources[f][k];
            if (k >= AT_INGEST_MAX_FSRC) {
                in->scan = false;
                return;
            }
            if (sc->nsegs < 2) {
                in->field_tops[f] |= 1ULL << sc->top;
                in->source_tops |= 1ULL << sc->top;
                in->top_fields[sc->top] |= (uint8_t)(1u << f);
                in->field_src[f][k] = (uint8_t)sc->top;
                continue;
            }
            int16_t *head = &in->top_spath[sc->top];
            at_srcstep_t *node = NULL;
            for (size_t g = 1; g < sc->nsegs; g++) {
                int j = *head;
                while (j >= 0 && !(in->spath[j].len == sc->seg_lens[g] &&
                                   memcmp(in->spath[j].name, sc->segs[g], sc->seg_lens[g]) == 0))
                    j = in->spath[j].next;
                if (j < 0) {
                    if (in->nspath == AT_INGEST_MAX_SPATH) {
                        in->scan = false;
                        return;
                    }
                    j = (int)in->nspath++;
                    in->spath[j] =
                        (at_srcstep_t){sc->segs[g], sc->seg_lens[g], -1, -1, *head, 0, 0};
                    *head = (int16_t)j;
                }
                node = &in->spath[j];
                head = &node->child;
            }
            AT_ASSERT(node); /* nsegs >= 2: the loop ran */
            if (node->slot < 0) {
                if (in->nslots == AT_INGEST_MAX_SLOTS) {
                    in->scan = false;
                    return;
                }
                node->slot = (int16_t)in->nslots++;
            }
            sc->slot = node->slot;
            in->field_slots[f] |= 1ULL << sc->slot;
            in->slot_fields[sc->slot] |= (uint8_t)(1u << f);
            in->field_src[f][k] = (uint8_t)(AT_INGEST_MAX_TOP + sc->slot);
        }
    }
    /* each step knows the lengths of the names from it to the end of its
     * list (as canonical keys, with quotes) */
    for (size_t j = 0; j < in->nspath; j++) { /* next is always an older step */
        at_srcstep_t *st = &in->spath[j];
        st->lens = (1ULL << ((st->len + 2) & 63)) | (st->next >= 0 ? in->spath[st->next].lens : 0);
        st->firsts = (st->len ? 1ULL << ((uint8_t)st->name[0] & 63) : 1ULL << ('"' & 63)) |
                     (st->next >= 0 ? in->spath[st->next].firsts : 0);
    }
}
