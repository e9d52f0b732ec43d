/* expr_value.c - the primitives values are compared and searched with:
 * byte-wise string order with lower()/upper() applied on the fly (ASCII
 * only, no locale), substring and affix tests, sorted constant sets, and
 * the few readings of raw JSON array/object text the language needs
 * (contains, in, len). None allocates; all are bounded by their inputs.
 */
#include "rules_int.h"

#include "at_json.h"

#include <math.h>
#include <string.h>

_Static_assert(sizeof(at_val_t) == 16, "a value is two words: it is copied on every operation");

static inline unsigned char at_fold(unsigned char ch, unsigned f)
{
    if ((f & AT_VAL_F_LOWER) && ch >= 'A' && ch <= 'Z')
        return (unsigned char)(ch + 32);
    if ((f & AT_VAL_F_UPPER) && ch >= 'a' && ch <= 'z')
        return (unsigned char)(ch - 32);
    return ch;
}

void at_val_copy(const at_val_t *v, char *dst)
{
    for (uint32_t i = 0; i < v->len; i++)
        dst[i] = (char)at_fold((unsigned char)v->u.s[i], v->flags);
}

const char *at_val_type_name(int type)
{
    static const char *const names[] = {
        "missing", "null", "bool", "number", "string", "time", "duration", "list", "json", "any",
    };
    return type >= 0 && type < (int)AT_ARRAY_LEN(names) ? names[type] : "?";
}

/* Compares x[0..n) read with flags fx against y[0..n) read with fy. */
static int at_region_cmp(const char *x, unsigned fx, const char *y, unsigned fy, size_t n)
{
    if (!(fx | fy))
        return n ? memcmp(x, y, n) : 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = at_fold((unsigned char)x[i], fx), b = at_fold((unsigned char)y[i], fy);
        if (a != b)
            return a < b ? -1 : 1;
    }
    return 0;
}

int at_rules__scmp(const at_val_t *a, const at_val_t *b)
{
    size_t n = AT_MIN(a->len, b->len);
    int r = at_region_cmp(a->u.s, a->flags, b->u.s, b->flags, n);
    if (r)
        return r;
    return (a->len > b->len) - (a->len < b->len);
}

bool at_rules__seq(const at_val_t *a, const char *s, size_t n)
{
    return a->len == n && at_region_cmp(a->u.s, a->flags, s, 0, n) == 0;
}

/* Whether needle occurs in hay, both read folded. Naive but bounded:
 * folded searches are rare (lower() of a field), plain ones use memmem. */
static bool at_find(const at_val_t *hay, const at_val_t *needle)
{
    size_t n = hay->len, m = needle->len;
    if (m == 0)
        return true;
    if (m > n)
        return false;
    if (!(hay->flags | needle->flags))
        return memmem(hay->u.s, n, needle->u.s, m) != NULL;
    unsigned char first = at_fold((unsigned char)needle->u.s[0], needle->flags);
    for (size_t i = 0; i + m <= n; i++)
        if (at_fold((unsigned char)hay->u.s[i], hay->flags) == first &&
            at_region_cmp(hay->u.s + i, hay->flags, needle->u.s, needle->flags, m) == 0)
            return true;
    return false;
}

bool at_rules__strp(int kind, const at_val_t *a, const at_val_t *b)
{
    switch (kind) {
    case AT_SP_STARTS:
        return b->len <= a->len && at_region_cmp(a->u.s, a->flags, b->u.s, b->flags, b->len) == 0;
    case AT_SP_ENDS:
        return b->len <= a->len &&
               at_region_cmp(a->u.s + (a->len - b->len), a->flags, b->u.s, b->flags, b->len) == 0;
    default:
        return at_find(a, b);
    }
}

int64_t at_rules__utf8_len(const char *s, size_t n)
{
    int64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* ---- sorted constant sets --------------------------------------------------
 * Strings are ordered by length first, so a search mostly compares
 * lengths and calls memcmp only on strings of the needle's length. */
int at_rules__set_cmp(const at_val_t *v, const at_val_t *k)
{
    switch (v->type) {
    case AT_VAL_STR:
        if (v->len != k->len)
            return v->len < k->len ? -1 : 1;
        return at_region_cmp(v->u.s, v->flags, k->u.s, k->flags, v->len);
    case AT_VAL_NUM:
        return (v->u.num > k->u.num) - (v->u.num < k->u.num);
    case AT_VAL_BOOL:
        return (int)v->u.b - (int)k->u.b;
    default:
        return (v->u.ms > k->u.ms) - (v->u.ms < k->u.ms);
    }
}

bool at_rules__set_has(const at_prog_t *p, const at_expr_set_t *set, const at_val_t *v)
{
    const at_val_t *k = p->k + set->first;
    if (v->type == AT_VAL_NUM && isnan(v->u.num))
        return false;
    if (v->type == AT_VAL_STR && set->n <= 8) {
        for (uint32_t i = 0; i < set->n; i++)
            if (k[i].len == v->len && at_region_cmp(v->u.s, v->flags, k[i].u.s, 0, v->len) == 0)
                return true;
        return false;
    }
    uint32_t lo = 0, hi = set->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int r = at_rules__set_cmp(v, &k[mid]);
        if (r == 0)
            return true;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

/* ---- dynamic comparison of two run-time values -------------------------- */
int at_rules__cmp_dyn(const at_val_t *a, const at_val_t *b)
{
    if (a->type != b->type)
        return AT_ORD_NONE; /* different types */
    switch (a->type) {
    case AT_VAL_NUM:
        if (a->u.num < b->u.num)
            return -1;
        if (a->u.num > b->u.num)
            return 1;
        return a->u.num == b->u.num ? 0 : AT_ORD_NONE; /* NaN */
    case AT_VAL_STR: {
        int r = at_rules__scmp(a, b);
        return (r > 0) - (r < 0);
    }
    case AT_VAL_TIME:
    case AT_VAL_DUR:
        return (a->u.ms > b->u.ms) - (a->u.ms < b->u.ms);
    case AT_VAL_BOOL:
        return a->u.b == b->u.b ? 0 : AT_ORD_UNEQUAL;
    default:
        return AT_ORD_NONE;
    }
}

void at_rules__to_time(at_val_t *v)
{
    int64_t ms;
    switch (v->type) {
    case AT_VAL_TIME:
        return;
    case AT_VAL_STR:
        if (at_time_parse_rfc3339(v->u.s, v->len, &ms) == 0) {
            *v = at_val_time(ms);
            return;
        }
        break;
    case AT_VAL_NUM:
        if (v->u.num == floor(v->u.num) && fabs(v->u.num) <= (double)AT_TIME_LIMIT) {
            *v = at_val_time((int64_t)v->u.num);
            return;
        }
        break;
    default:
        break;
    }
    *v = at_val_missing();
}

/* ---- raw JSON text ----------------------------------------------------------
 * The host passes arrays and objects as the text it received; it was valid
 * JSON when parsed, but these readers stay within len whatever it holds. */
static size_t at_jws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* The end of the string whose opening quote is at i, after its closing
 * quote; n when it does not end. */
static size_t at_jstr_end(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

/* The end of the value starting at i (after whitespace): iterative, so
 * any nesting costs no stack. */
static size_t at_jskip(const char *s, size_t i, size_t n)
{
    size_t depth = 0;
    do {
        if (i >= n)
            return n;
        char ch = s[i];
        if (ch == '"') {
            i = at_jstr_end(s, i, n);
        } else if (ch == '[' || ch == '{') {
            depth++;
            i++;
        } else if (ch == ']' || ch == '}') {
            if (depth == 0)
                return i;
            depth--;
            i++;
        } else if (depth > 0) {
            i++;
        } else {
            while (i < n && s[i] != ',' && s[i] != ']' && s[i] != '}' && s[i] != ' ' &&
                   s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && s[i] != ':')
                i++;
        }
    } while (depth > 0);
    return i;
}

static int at_hex4(const char *s, size_t i, size_t n)
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

/* Whether the JSON string at s[i] (its opening quote) decodes to exactly
 * the needle's folded text. */
static bool at_jstr_eq(const char *s, size_t i, size_t n, const at_val_t *nd)
{
    size_t k = 0;
    for (i++; i < n;) {
        unsigned char out[4];
        size_t w = 1;
        char ch = s[i];
        if (ch == '"')
            return k == nd->len;
        if (ch != '\\') {
            out[0] = (unsigned char)ch;
            i++;
        } else {
            if (i + 1 >= n)
                return false;
            char e = s[i + 1];
            i += 2;
            if (e == 'u') {
                int cp = at_hex4(s, i, n);
                if (cp < 0)
                    return false;
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < n && s[i] == '\\' && s[i + 1] == 'u') {
                    int lo = at_hex4(s, i + 2, n);
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                if (cp < 0x80) {
                    out[0] = (unsigned char)cp;
                } else if (cp < 0x800) {
                    out[0] = (unsigned char)(0xC0 | (cp >> 6));
                    out[1] = (unsigned char)(0x80 | (cp & 0x3F));
                    w = 2;
                } else if (cp < 0x10000) {
                    out[0] = (unsigned char)(0xE0 | (cp >> 12));
                    out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    out[2] = (unsigned char)(0x80 | (cp & 0x3F));
                    w = 3;
                } else {
                    out[0] = (unsigned char)(0xF0 | (cp >> 18));
                    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
                    w = 4;
                }
            } else {
                static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
                const char *p = memchr(from, e, sizeof from - 1);
                if (!p)
                    return false;
                out[0] = (unsigned char)to[p - from];
            }
        }
        for (size_t j = 0; j < w; j++, k++)
            if (k >= nd->len || out[j] != at_fold((unsigned char)nd->u.s[k], nd->flags))
                return false;
    }
    return false;
}

/* Whether the element s[i..end) equals the needle. */
static bool at_jelem_eq(const char *s, size_t i, size_t end, const at_val_t *nd)
{
    switch (nd->type) {
    case AT_VAL_STR:
        return s[i] == '"' && at_jstr_eq(s, i, end, nd);
    case AT_VAL_BOOL:
        return nd->u.b ? (end - i == 4 && memcmp(s + i, "true", 4) == 0)
                       : (end - i == 5 && memcmp(s + i, "false", 5) == 0);
    default: { /* number: read the way the JSON parser reads numbers */
        if (!(s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) || end - i > 63)
            return false; /* longer number texts are never equal to a literal */
        at_json_t node;
        memset(&node, 0, sizeof node);
        node.type = AT_JSON_NUMBER;
        node.s = s + i;
        node.len = (uint32_t)(end - i);
        return at_json_number(&node) == nd->u.num;
    }
    }
}

int at_rules__json_has(const at_val_t *j, const at_val_t *nd)
{
    const char *s = j->u.s;
    size_t n = j->len, i = at_jws(s, 0, n);
    if (i >= n || s[i] != '[')
        return -1;
    if (nd->type != AT_VAL_STR && nd->type != AT_VAL_NUM && nd->type != AT_VAL_BOOL)
        return -1;
    i = at_jws(s, i + 1, n);
    while (i < n && s[i] != ']') {
        size_t end = at_jskip(s, i, n);
        if (end <= i)
            return 0; /* malformed: stop */
        if (at_jelem_eq(s, i, end, nd))
            return 1;
        i = at_jws(s, end, n);
        if (i < n && s[i] == ',')
            i = at_jws(s, i + 1, n);
        else
            break;
    }
    return 0;
}

int64_t at_rules__json_len(const at_val_t *j)
{
    const char *s = j->u.s;
    size_t n = j->len, i = at_jws(s, 0, n);
    if (i >= n || (s[i] != '[' && s[i] != '{'))
        return -1;
    bool obj = s[i] == '{';
    char close = obj ? '}' : ']';
    int64_t count = 0;
    i = at_jws(s, i + 1, n);
    while (i < n && s[i] != close) {
        if (obj) { /* "key": */
            i = at_jws(s, at_jskip(s, i, n), n);
            if (i >= n || s[i] != ':')
                break;
            i = at_jws(s, i + 1, n);
        }
        size_t end = at_jskip(s, i, n);
        if (end <= i)
            break;
        count++;
        i = at_jws(s, end, n);
        if (i < n && s[i] == ',')
            i = at_jws(s, i + 1, n);
        else
            break;
    }
    return count;
}
