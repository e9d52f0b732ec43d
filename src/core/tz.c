/* tz.c - IANA time zones read from TZif files (RFC 8536, RFC 9636), behind
 * at_tz.h.
 *
 * A zone is one immutable allocation holding the instants (ms) at which its
 * UTC offset changes: the file's own transitions, then the changes of the
 * file's footer rule (a POSIX TZ string) unrolled up to AT_TZ__UNROLL_END,
 * so that the offset of any instant before then costs one binary search.
 * Past the table the rule is evaluated directly (at_tz__rule_span). Only
 * offsets are kept: abbreviations and the isdst flag do not change local
 * time (and Europe/Dublin's negative DST shows the flag does not even mean
 * "summer").
 *
 * Zones returned by at_tz_get live in a fixed-size open-addressing table of
 * atomic pointers: readers probe it without a lock, writers insert under a
 * mutex and never remove, so an entry once seen stays valid for ever.
 *
 * THREAD SAFETY: all functions, any thread; see at_tz__get_slow for locks.
 */
#include "at_core.h"
#include "at_tz.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AT_TZ__DAY 86400000LL
#define AT_TZ__HOUR 3600000LL
/* File transitions beyond +-1e13 s (+-316,000 years) lie outside every
 * instant a caller can ask about; only the offset they leave matters. */
#define AT_TZ__LIM_S 10000000000000LL
/* The footer rule is unrolled into the table from the year before the
 * file's last transition up to this year (exclusive). */
#define AT_TZ__UNROLL_END 2200
#define AT_TZ__FILE_MAX (256L * 1024) /* largest TZif file read (Debian's: < 4 KiB) */

/* ---- calendar (proleptic Gregorian, days since 1970-01-01) ---------------- */

static int64_t at_tz__fdiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return q - (a % b < 0); /* b > 0 everywhere here */
}

static bool at_tz__leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int at_tz__mdays(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && at_tz__leap(y) ? 29 : dim[m - 1];
}

/* Days from 1970-01-01 to y-m-d. The year is counted from March so that the
 * leap day ends it; a 400-year era then always has 146097 days. */
static int64_t at_tz__days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = at_tz__fdiv(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* The inverse of at_tz__days. */
static void at_tz__civil(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = at_tz__fdiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t at_tz__year_of(int64_t ms)
{
    int64_t y;
    int m, d;
    at_tz__civil(at_tz__fdiv(ms, AT_TZ__DAY), &y, &m, &d);
    return y;
}

/* ---- the footer rule (POSIX TZ string) ------------------------------------ */

typedef struct at_tz__date {
    char kind;       /* 'J': a = 1..365, Feb 29 never counted; 'D': a = 0..365; 'M' */
    int16_t a, b, c; /* M: month a, week b (5 = last), weekday c (0 = Sunday) */
    int32_t secs;    /* local time of day of the change, -167h..167h */
} at_tz__date_t;

typedef struct at_tz__rule {
    int32_t std, dst;    /* seconds east of UTC */
    bool dst_on;         /* false: standard time all year */
    at_tz__date_t start; /* to daylight time, given in standard time */
    at_tz__date_t end;   /* back to standard time, given in daylight time */
} at_tz__rule_t;

/* Local date (days since the epoch) of the change d in year y. */
static int64_t at_tz__rule_day(const at_tz__date_t *d, int64_t y)
{
    if (d->kind == 'J')
        return at_tz__days(y, 1, 1) + d->a - 1 + (d->a >= 60 && at_tz__leap(y));
    if (d->kind == 'D')
        return at_tz__days(y, 1, 1) + d->a;
    int64_t first = at_tz__days(y, d->a, 1);
    int wd = (int)((first % 7 + 7 + 4) % 7); /* 0 = Sunday; 1970-01-01 was a Thursday */
    int day = 1 + (d->c - wd + 7) % 7 + 7 * (d->b - 1);
    if (day > at_tz__mdays(y, d->a))
        day -= 7;
    return first + day - 1;
}

/* The instant (ms) of the rule's change of the given kind in year y: kind 0
 * goes to daylight time, kind 1 back to standard time. For each kind these
 * instants grow by 359..372 days a year, which the callers rely on. */
static int64_t at_tz__rule_at(const at_tz__rule_t *r, int64_t y, int kind)
{
    const at_tz__date_t *d = kind ? &r->end : &r->start;
    int32_t before = kind ? r->dst : r->std;
    return (at_tz__rule_day(d, y) * 86400 + d->secs - before) * 1000;
}

/* The offset the rule gives at t, with the change that set it (*lo) and the
 * next change (*hi). Changes are ordered by (instant, year, kind): at equal
 * instants the later one wins, so "0/0,J365/25" is daylight time all year.
 * The year of t +-2 holds both neighbours, as a change moves at most 167 h
 * plus an offset away from its date. */
static int32_t at_tz__rule_span(const at_tz__rule_t *r, int64_t t, int64_t *lo, int64_t *hi)
{
    int32_t off = r->std;
    *lo = INT64_MIN;
    *hi = INT64_MAX;
    if (!r->dst_on)
        return off;
    int64_t y = at_tz__year_of(t);
    for (int64_t k = y - 2; k <= y + 2; k++) {
        for (int kind = 0; kind < 2; kind++) {
            int64_t at = at_tz__rule_at(r, k, kind);
            if (at <= t && at >= *lo) {
                *lo = at;
                off = kind ? r->std : r->dst;
            } else if (at > t && at < *hi) {
                *hi = at;
            }
        }
    }
    return off;
}

typedef struct at_tz__cur {
    const char *p, *end;
} at_tz__cur_t;

static bool at_tz__peek(const at_tz__cur_t *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

static bool at_tz__digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool at_tz__alpha(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

/* Reads mind..maxd decimal digits into *v. */
static bool at_tz__num(at_tz__cur_t *c, int mind, int maxd, int *v)
{
    int k = 0, x = 0;
    for (; k < maxd && c->p < c->end && at_tz__digit(*c->p); k++)
        x = x * 10 + (*c->p++ - '0');
    *v = x;
    return k >= mind;
}

/* [+-]hh[:mm[:ss]] with hh <= maxh, as signed seconds. */
static bool at_tz__hms(at_tz__cur_t *c, int maxh, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;
    if (at_tz__peek(c, '+') || at_tz__peek(c, '-'))
        sign = *c->p++ == '-' ? -1 : 1;
    if (!at_tz__num(c, 1, maxh > 99 ? 3 : 2, &h) || h > maxh)
        return false;
    if (at_tz__peek(c, ':')) {
        c->p++;
        if (!at_tz__num(c, 2, 2, &m) || m > 59)
            return false;
        if (at_tz__peek(c, ':')) {
            c->p++;
            if (!at_tz__num(c, 2, 2, &s) || s > 59)
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

/* A zone abbreviation: three or more letters, or <...> around three or more
 * of [A-Za-z0-9+-]. Its text is not kept. */
static bool at_tz__abbr(at_tz__cur_t *c)
{
    bool quoted = at_tz__peek(c, '<');
    c->p += quoted;
    const char *s = c->p;
    while (c->p < c->end && (at_tz__alpha(*c->p) ||
                             (quoted && (at_tz__digit(*c->p) || *c->p == '+' || *c->p == '-'))))
        c->p++;
    if (c->p - s < 3)
        return false;
    if (quoted && !at_tz__peek(c, '>'))
        return false;
    c->p += quoted;
    return true;
}

/* Jn, n or Mm.w.d, then an optional /time (v3: -167..167 hours). */
static bool at_tz__date(at_tz__cur_t *c, at_tz__date_t *d)
{
    int a, b = 0, w = 0;
    d->secs = 7200;
    if (at_tz__peek(c, 'J') || at_tz__peek(c, 'M')) {
        d->kind = *c->p++;
    } else {
        d->kind = 'D';
    }
    if (d->kind == 'M') {
        if (!at_tz__num(c, 1, 2, &a) || a < 1 || a > 12 || !at_tz__peek(c, '.'))
            return false;
        c->p++;
        if (!at_tz__num(c, 1, 1, &b) || b < 1 || b > 5 || !at_tz__peek(c, '.'))
            return false;
        c->p++;
        if (!at_tz__num(c, 1, 1, &w) || w > 6)
            return false;
    } else if (!at_tz__num(c, 1, 3, &a) || a > 365 || (d->kind == 'J' && a < 1)) {
        return false;
    }
    d->a = (int16_t)a;
    d->b = (int16_t)b;
    d->c = (int16_t)w;
    if (!at_tz__peek(c, '/'))
        return true;
    c->p++;
    return at_tz__hms(c, 167, &d->secs);
}

/* True for RFC 8536's spelling of daylight time all year: from Jan 1 00:00
 * to Dec 31 24:00 plus the daylight shift ("EST5EDT,0/0,J365/25"). Its two
 * changes of each new year meet at one instant and change nothing. */
static bool at_tz__all_year(const at_tz__rule_t *r)
{
    bool jan1 =
        (r->start.kind == 'D' && r->start.a == 0) || (r->start.kind == 'J' && r->start.a == 1);
    return jan1 && r->start.secs == 0 && r->end.kind == 'J' && r->end.a == 365 &&
           r->end.secs == 86400 + r->dst - r->std;
}

/* Parses "std offset [dst [offset] ,start[/time],end[/time]]". A daylight
 * name without a rule is refused: POSIX leaves its dates to each C library,
 * and zic always writes the rule. */
static bool at_tz__rule_parse(const char *s, size_t n, at_tz__rule_t *r)
{
    at_tz__cur_t c = {s, s + n};
    int32_t v;
    memset(r, 0, sizeof *r);
    if (!at_tz__abbr(&c) || !at_tz__hms(&c, 24, &v))
        return false;
    r->std = r->dst = -v; /* POSIX offsets count west of UTC */
    if (c.p == c.end)
        return true;
    if (!at_tz__abbr(&c))
        return false;
    r->dst = r->std + 3600;
    if (c.p < c.end && *c.p != ',') {
        if (!at_tz__hms(&c, 24, &v))
            return false;
        r->dst = -v;
    }
    if (!at_tz__peek(&c, ','))
        return false;
    c.p++;
    if (!at_tz__date(&c, &r->start) || !at_tz__peek(&c, ','))
        return false;
    c.p++;
    if (!at_tz__date(&c, &r->end) || c.p != c.end)
        return false;
    if (at_tz__all_year(r))
        r->std = r->dst;
    r->dst_on = r->dst != r->std;
    return true;
}

/* ---- zones ------------------------------------------------------------------ */

struct at_tz {
    const int64_t *at;  /* instants (ms) of offset changes, strictly ascending */
    const int32_t *off; /* off[i]: seconds east of UTC from at[i] on */
    uint32_t n;
    int32_t off0;      /* the offset before at[0], or everywhere when n == 0 */
    int64_t rule_from; /* from this instant on, rule gives the offset */
    at_tz__rule_t rule;
    const char *name;
};

static const at_tz_t at_tz__utc_zone = {
    .at = NULL, .off = NULL, .n = 0, .off0 = 0, .rule_from = INT64_MAX, .name = "UTC"};

/* A table under construction. Entries come in ascending order; a change that
 * keeps the offset is dropped, and of two at one instant the later wins. */
typedef struct at_tz__tab {
    int64_t *at;
    int32_t *off;
    uint32_t n, cap;
    int32_t off0;
} at_tz__tab_t;

static void at_tz__tab_add(at_tz__tab_t *t, int64_t at, int32_t off)
{
    AT_ASSERT(t->n == 0 || at >= t->at[t->n - 1]);
    if (t->n && t->at[t->n - 1] == at)
        t->n--;
    if (off == (t->n ? t->off[t->n - 1] : t->off0))
        return;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->at = at_xrealloc(t->at, t->cap * sizeof *t->at);
        t->off = at_xrealloc(t->off, t->cap * sizeof *t->off);
    }
    t->at[t->n] = at;
    t->off[t->n++] = off;
}

/* Adds the rule's changes after t (the file's last transition, from which
 * the rule holds) and returns the instant from which the rule must be
 * evaluated directly. The two kinds of change each grow with the year, so
 * merging the two sequences sorts them. */
static int64_t at_tz__unroll(at_tz__tab_t *tab, const at_tz__rule_t *r, int64_t t)
{
    int64_t lo, hi;
    at_tz__tab_add(tab, t, at_tz__rule_span(r, t, &lo, &hi)); /* at t the rule, not the file */
    if (!r->dst_on)
        return INT64_MAX;
    int64_t y = at_tz__year_of(t);
    if (y < 1800 || y > 2100) /* no real zone: not worth a table */
        return t;
    int64_t end =
        AT_MIN(at_tz__rule_at(r, AT_TZ__UNROLL_END, 0), at_tz__rule_at(r, AT_TZ__UNROLL_END, 1));
    int64_t ya = y - 1, yb = y - 1;
    while (ya < AT_TZ__UNROLL_END || yb < AT_TZ__UNROLL_END) {
        int64_t a = ya < AT_TZ__UNROLL_END ? at_tz__rule_at(r, ya, 0) : INT64_MAX;
        int64_t b = yb < AT_TZ__UNROLL_END ? at_tz__rule_at(r, yb, 1) : INT64_MAX;
        bool take_a = a < b || (a == b && ya <= yb); /* (instant, year, kind) order */
        int64_t at = take_a ? a : b;
        if (at > t && at < end)
            at_tz__tab_add(tab, at, take_a ? r->dst : r->std);
        if (take_a)
            ya++;
        else
            yb++;
    }
    return end;
}

/* Packs a finished table, the rule and a copy of name into one allocation.
 * Returns owned (at_tz_free); tab's arrays stay the caller's. */
static at_tz_t *at_tz__pack(const char *name, size_t nlen, const at_tz__tab_t *tab,
                            const at_tz__rule_t *rule, int64_t rule_from)
{
    size_t head = (sizeof(at_tz_t) + 15) & ~(size_t)15;
    at_tz_t *tz = at_xmalloc(head + (size_t)tab->n * 12 + nlen + 1);
    int64_t *at = (int64_t *)(void *)((char *)tz + head);
    int32_t *off = (int32_t *)(void *)(at + tab->n);
    char *nm = (char *)(off + tab->n);
    if (tab->n) {
        memcpy(at, tab->at, tab->n * sizeof *at);
        memcpy(off, tab->off, tab->n * sizeof *off);
    }
    memcpy(nm, name, nlen);
    nm[nlen] = '\0';
    memset(tz, 0, sizeof *tz);
    tz->at = at;
    tz->off = off;
    tz->n = tab->n;
    tz->off0 = tab->off0;
    tz->rule_from = rule_from;
    if (rule)
        tz->rule = *rule;
    tz->name = nm;
    return tz;
}

static at_tz_t *at_tz__fixed_new(const char *name, size_t nlen, int32_t off)
{
    at_tz__tab_t tab = {.off0 = off};
    return at_tz__pack(name, nlen, &tab, NULL, INT64_MAX);
}

/* ---- TZif ------------------------------------------------------------------- */

typedef struct at_tz__hdr {
    uint8_t version; /* 0, or '2' and up */
    uint32_t isut, isstd, leap, time, type, chars;
} at_tz__hdr_t;

static uint32_t at_tz__be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t at_tz__time(const uint8_t *p, unsigned tsize)
{
    if (tsize == 4)
        return (int32_t)at_tz__be32(p);
    return (int64_t)((uint64_t)at_tz__be32(p) << 32 | at_tz__be32(p + 4));
}

/* Reads the 44-byte header at p[at]. Versions after '4' are read like '4':
 * each version so far kept the layout and only relaxed the rules. */
static bool at_tz__hdr(const uint8_t *p, size_t len, uint64_t at, at_tz__hdr_t *h)
{
    if (at > len || len - at < 44 || memcmp(p + at, "TZif", 4) != 0)
        return false;
    p += at;
    h->version = p[4];
    if (h->version != 0 && (h->version < '2' || h->version > '9'))
        return false;
    h->isut = at_tz__be32(p + 20);
    h->isstd = at_tz__be32(p + 24);
    h->leap = at_tz__be32(p + 28);
    h->time = at_tz__be32(p + 32);
    h->type = at_tz__be32(p + 36);
    h->chars = at_tz__be32(p + 40);
    return h->type != 0 && h->chars != 0 && (h->isut == 0 || h->isut == h->type) &&
           (h->isstd == 0 || h->isstd == h->type);
}

static uint64_t at_tz__block_len(const at_tz__hdr_t *h, unsigned tsize)
{
    return (uint64_t)h->time * (tsize + 1) + (uint64_t)h->type * 6 + h->chars +
           (uint64_t)h->leap * (tsize + 4) + h->isstd + h->isut;
}

/* Checks a data block's types, transitions and indicators (RFC 8536 3.2). */
static bool at_tz__block_ok(const uint8_t *b, const at_tz__hdr_t *h, unsigned tsize)
{
    const uint8_t *idx = b + (size_t)h->time * tsize, *ty = idx + h->time;
    const uint8_t *ind = ty + (size_t)h->type * 6 + h->chars + (size_t)h->leap * (tsize + 4);
    for (uint32_t i = 0; i < h->type; i++) {
        int32_t utoff = (int32_t)at_tz__be32(ty + (size_t)6 * i);
        if (utoff < -89999 || utoff > 93599 || ty[6 * i + 4] > 1 || ty[6 * i + 5] >= h->chars)
            return false;
    }
    for (uint32_t i = 0; i < h->time; i++) {
        if (idx[i] >= h->type)
            return false;
        if (i && at_tz__time(b + (size_t)i * tsize, tsize) <=
                     at_tz__time(b + (size_t)(i - 1) * tsize, tsize))
            return false;
    }
    for (uint32_t i = 0; i < h->isstd + h->isut; i++)
        if (ind[i] > 1)
            return false;
    for (uint32_t i = 0; i < h->isut && h->isstd; i++)
        if (ind[h->isstd + i] && !ind[i]) /* UT implies standard */
            return false;
    return true;
}

static int32_t at_tz__utoff(const uint8_t *b, const at_tz__hdr_t *h, unsigned tsize, uint32_t t)
{
    return (int32_t)at_tz__be32(b + (size_t)h->time * (tsize + 1) + (size_t)6 * t);
}

/* Builds the zone from a checked block and the footer rule (NULL: none).
 * The rule holds from the last transition on (or everywhere without one). */
static at_tz_t *at_tz__build(const char *name, const uint8_t *b, const at_tz__hdr_t *h,
                             unsigned tsize, const at_tz__rule_t *rule)
{
    at_tz__tab_t tab = {.off0 = at_tz__utoff(b, h, tsize, 0)};
    const uint8_t *idx = b + (size_t)h->time * tsize;
    int64_t rule_from = INT64_MAX, last = h->time ? at_tz__time(idx - tsize, tsize) : 0;
    for (uint32_t i = 0; i < h->time; i++) {
        int64_t s = at_tz__time(b + (size_t)i * tsize, tsize);
        int32_t off = at_tz__utoff(b, h, tsize, idx[i]);
        if (s <= -AT_TZ__LIM_S)
            tab.off0 = off;
        else if (s < AT_TZ__LIM_S)
            at_tz__tab_add(&tab, s * 1000, off);
    }
    if (rule && (h->time == 0 || last <= -AT_TZ__LIM_S)) {
        if (rule->dst_on)
            rule_from = INT64_MIN;
        else
            tab.off0 = rule->std;
    } else if (rule && last < AT_TZ__LIM_S) {
        rule_from = at_tz__unroll(&tab, rule, last * 1000);
    }
    at_tz_t *tz = at_tz__pack(name, strlen(name), &tab, rule, rule_from);
    free(tab.at);
    free(tab.off);
    return tz;
}

/* Parses the footer "\nTZ string\n" at p[at]; *has is false when empty. */
static bool at_tz__footer(const uint8_t *p, size_t len, uint64_t at, at_tz__rule_t *r, bool *has)
{
    if (at >= len || p[at] != '\n')
        return false;
    const uint8_t *s = p + at + 1, *nl = memchr(s, '\n', len - at - 1);
    if (!nl)
        return false;
    *has = nl > s;
    return !*has || at_tz__rule_parse((const char *)s, (size_t)(nl - s), r);
}

/* Returns owned (at_tz_free) or NULL; see at_tz.h. Thread: any. */
at_tz_t *at_tz_parse(const char *name, const void *data, size_t len)
{
    const uint8_t *p = data;
    at_tz__hdr_t h;
    uint64_t at = 0;
    unsigned tsize = 4;
    if (!p || !at_tz__hdr(p, len, 0, &h))
        return NULL;
    if (h.version != 0) { /* skip the 32-bit block: the 64-bit one follows */
        at = 44 + at_tz__block_len(&h, 4);
        if (!at_tz__hdr(p, len, at, &h) || h.version == 0)
            return NULL;
        tsize = 8;
    }
    uint64_t blen = at_tz__block_len(&h, tsize);
    if (blen > len - at - 44 || h.leap != 0)
        return NULL;
    const uint8_t *b = p + at + 44;
    if (!at_tz__block_ok(b, &h, tsize))
        return NULL;
    at_tz__rule_t rule;
    bool has_rule = false;
    if (tsize == 8 && !at_tz__footer(p, len, at + 44 + blen, &rule, &has_rule))
        return NULL;
    return at_tz__build(name ? name : "", b, &h, tsize, has_rule ? &rule : NULL);
}

/* Frees a zone from at_tz_parse. Thread: any. */
void at_tz_free(at_tz_t *tz)
{
    free(tz);
}

/* ---- lookups ---------------------------------------------------------------- */

static int64_t at_tz__clamp(int64_t ms)
{
    return ms < -AT_TZ_MS_MAX ? -AT_TZ_MS_MAX : ms > AT_TZ_MS_MAX ? AT_TZ_MS_MAX : ms;
}

/* Index of the last change at or before t; needs tz->n > 0 and t >= at[0].
 * Branch-free, so the cost does not depend on how well t is predicted. */
static uint32_t at_tz__search(const at_tz_t *tz, int64_t t)
{
    const int64_t *base = tz->at;
    uint32_t len = tz->n;
    while (len > 1) {
        uint32_t half = len / 2;
        base = base[half] <= t ? base + half : base;
        len -= half;
    }
    return (uint32_t)(base - tz->at);
}

static int32_t at_tz__off(const at_tz_t *tz, int64_t t)
{
    int64_t lo, hi;
    if (t >= tz->rule_from)
        return at_tz__rule_span(&tz->rule, t, &lo, &hi);
    if (tz->n == 0 || t < tz->at[0])
        return tz->off0;
    return tz->off[at_tz__search(tz, t)];
}

/* The offset at t and the stretch [*lo, *hi) around t over which it holds
 * (INT64_MIN / INT64_MAX: unbounded). The ends need not be real changes. */
static int32_t at_tz__span(const at_tz_t *tz, int64_t t, int64_t *lo, int64_t *hi)
{
    int32_t off;
    if (t >= tz->rule_from) {
        off = at_tz__rule_span(&tz->rule, t, lo, hi);
        *lo = AT_MAX(*lo, tz->rule_from);
        return off;
    }
    if (tz->n == 0 || t < tz->at[0]) {
        *lo = INT64_MIN;
        *hi = tz->n ? tz->at[0] : INT64_MAX;
        off = tz->off0;
    } else {
        uint32_t i = at_tz__search(tz, t);
        *lo = tz->at[i];
        *hi = i + 1 < tz->n ? tz->at[i + 1] : INT64_MAX;
        off = tz->off[i];
    }
    *hi = AT_MIN(*hi, tz->rule_from);
    return off;
}

/* Returns the offset in seconds east of UTC at ms. Thread: any. */
int32_t at_tz_offset(const at_tz_t *tz, int64_t ms)
{
    return at_tz__off(tz, at_tz__clamp(ms));
}

/* Local days are counted from a day 700 eras of 400 years before year 0,
 * a March 1, so that every instant in range has a positive day number in 32
 * bits and the calendar is unsigned arithmetic (at_tz_local's hot path). */
#define AT_TZ__ERAS 700
#define AT_TZ__EPOCH_DAY (719468 + AT_TZ__ERAS * 146097) /* 1970-01-01 */

/* Year, month, day and day of the year of day n of that count, by Neri and
 * Schneider's method ("Euclidean affine functions and their application to
 * calendar algorithms", 2022): the year is found from the day of the
 * 400-year era, and month and day from the day of the March-based year,
 * each with one multiplication. Matches at_tz__civil. */
static void at_tz__civil32(uint32_t n, at_tm_t *out)
{
    uint32_t n1 = 4 * n + 3, c = n1 / 146097, nc = n1 % 146097 / 4;
    uint64_t p2 = 2939745ULL * (4 * nc + 3);
    uint32_t z = (uint32_t)(p2 >> 32), ny = (uint32_t)p2 / 2939745 / 4; /* year of century, day */
    uint32_t n3 = 2141 * ny + 197913, m = n3 >> 16, jan = ny >= 306;
    bool leap = (z != 0 ? z : c) % 4 == 0; /* of the year holding this March */
    out->year = (int)(100 * c + z + jan) - 400 * AT_TZ__ERAS;
    out->mon = (int)(jan ? m - 12 : m);
    out->mday = (int)((n3 & 0xffff) / 2141) + 1;
    out->yday = jan ? (int)(ny - 305) : (int)(ny + 60 + leap);
}

/* Fills out with the local fields of ms in tz. Thread: any. */
void at_tz_local(const at_tz_t *tz, int64_t ms, at_tm_t *out)
{
    ms = at_tz__clamp(ms);
    int32_t off = at_tz__off(tz, ms);
    uint64_t l = (uint64_t)(ms + (int64_t)off * 1000 + (int64_t)AT_TZ__EPOCH_DAY * AT_TZ__DAY);
    uint32_t days = (uint32_t)(l / AT_TZ__DAY), rem = (uint32_t)(l % AT_TZ__DAY), s = rem / 1000;
    out->ms = (int)(rem % 1000);
    out->sec = (int)(s % 60);
    out->min = (int)(s / 60 % 60);
    out->hour = (int)(s / 3600);
    out->wday = (int)((days + 2) % 7) + 1; /* 1970-01-01 was a Thursday (4) */
    at_tz__civil32(days, out);
    out->utcoff = off;
}

/* Start (local ms) of the local bucket containing local. */
static int64_t at_tz__bucket(int64_t local, at_tz_unit_t unit)
{
    if (unit == AT_TZ_HOUR)
        return at_tz__fdiv(local, AT_TZ__HOUR) * AT_TZ__HOUR;
    int64_t days = at_tz__fdiv(local, AT_TZ__DAY);
    if (unit == AT_TZ_DAY)
        return days * AT_TZ__DAY;
    return (at_tz__fdiv(days + 3, 7) * 7 - 3) * AT_TZ__DAY; /* back to Monday */
}

static int64_t at_tz__unit_len(at_tz_unit_t unit)
{
    return unit == AT_TZ_HOUR ? AT_TZ__HOUR : unit == AT_TZ_DAY ? AT_TZ__DAY : 7 * AT_TZ__DAY;
}

/* The walks below step over stretches of one offset while the local bucket
 * stays the same. A bucket is at most a week plus the widest offset swing
 * (51 h) long, which holds at most n table stretches and a handful of rule
 * ones, so the bound on steps is never reached; it only makes that plain. */
static uint32_t at_tz__max_steps(const at_tz_t *tz)
{
    return tz->n + 64;
}

/* Returns the instant the bucket containing ms began. Thread: any. */
int64_t at_tz_floor(const at_tz_t *tz, int64_t ms, at_tz_unit_t unit)
{
    AT_ASSERT(unit == AT_TZ_HOUR || unit == AT_TZ_DAY || unit == AT_TZ_WEEK);
    int64_t t = at_tz__clamp(ms), lo, hi;
    int32_t off = at_tz__span(tz, t, &lo, &hi);
    int64_t label = at_tz__bucket(t + (int64_t)off * 1000, unit);
    for (uint32_t i = 0; i < at_tz__max_steps(tz); i++) {
        int64_t b = label - (int64_t)off * 1000; /* where the bucket begins at this offset */
        if (b > lo)
            return b;
        int64_t plo; /* the bucket reaches back to the change at lo: before it too? */
        off = at_tz__span(tz, lo - 1, &plo, &hi);
        if (at_tz__bucket(lo - 1 + (int64_t)off * 1000, unit) != label)
            return lo;
        lo = plo;
    }
    return lo;
}

/* Returns the first instant after ms that begins a new bucket. Thread: any. */
int64_t at_tz_next(const at_tz_t *tz, int64_t ms, at_tz_unit_t unit)
{
    AT_ASSERT(unit == AT_TZ_HOUR || unit == AT_TZ_DAY || unit == AT_TZ_WEEK);
    int64_t t = at_tz__clamp(ms), lo, hi;
    int32_t off = at_tz__span(tz, t, &lo, &hi);
    int64_t label = at_tz__bucket(t + (int64_t)off * 1000, unit), len = at_tz__unit_len(unit);
    for (uint32_t i = 0; i < at_tz__max_steps(tz); i++) {
        int64_t e = label + len - (int64_t)off * 1000; /* where the bucket ends at this offset */
        if (e < hi)
            return e;
        int64_t nhi; /* the bucket reaches the change at hi: past it too? */
        off = at_tz__span(tz, hi, &lo, &nhi);
        if (at_tz__bucket(hi + (int64_t)off * 1000, unit) != label)
            return hi;
        hi = nhi;
    }
    return hi;
}

/* Returns the next instant after ms where the offset changes. Thread: any. */
int64_t at_tz_next_change(const at_tz_t *tz, int64_t ms)
{
    int64_t lo, hi, nhi;
    int32_t off = at_tz__span(tz, at_tz__clamp(ms), &lo, &hi);
    for (uint32_t i = 0; i < at_tz__max_steps(tz) && hi != INT64_MAX; i++) {
        if (at_tz__span(tz, hi, &lo, &nhi) != off)
            return hi;
        hi = nhi;
    }
    return hi;
}

/* ---- names ------------------------------------------------------------------ */

/* True if name may be looked up: see at_tz_get. '.' is not allowed at all,
 * so no component can be "." or "..", and the name stays under the zone
 * directory. */
static bool at_tz__name_ok(const char *s, size_t n)
{
    if (n == 0 || n > AT_TZ_NAME_MAX || s[0] == '/' || s[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!at_tz__alpha(c) && !at_tz__digit(c) && c != '_' && c != '+' && c != '-' && c != '/')
            return false;
        if (c == '/' && s[i + 1] == '/')
            return false;
    }
    return true;
}

/* "+HH", "+HHMM" or "+HH:MM" (or '-') into *off (seconds east of UTC). */
static bool at_tz__fixed_parse(const char *s, size_t n, int32_t *off)
{
    int h, m = 0;
    at_tz__cur_t c = {s + 1, s + n};
    if (n < 3 || (s[0] != '+' && s[0] != '-') || !at_tz__num(&c, 2, 2, &h) || h > 23)
        return false;
    if (at_tz__peek(&c, ':') && n == 6)
        c.p++;
    if (c.p < c.end && (!at_tz__num(&c, 2, 2, &m) || m > 59 || c.p != c.end))
        return false;
    *off = (s[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
    return true;
}

static bool at_tz__is_utc(const char *s, size_t n)
{
    return (n == 1 && s[0] == 'Z') || (n == 3 && !memcmp(s, "GMT", 3)) ||
           (n == 7 && !memcmp(s, "Etc/UTC", 7));
}

/* Loads the zone file for a checked name; NULL if it is missing, not a
 * regular file (opened non-blocking, so a FIFO cannot stall us) or not
 * valid. Returns owned. */
static at_tz_t *at_tz__load(const char *name, size_t n)
{
    static const char dir[] = "/usr/share/zoneinfo/";
    char path[sizeof dir + AT_TZ_NAME_MAX];
    memcpy(path, dir, sizeof dir - 1);
    memcpy(path + sizeof dir - 1, name, n);
    path[sizeof dir - 1 + n] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    at_tz_t *tz = NULL;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= AT_TZ__FILE_MAX) {
        uint8_t *buf = at_xmalloc((size_t)st.st_size + 1);
        size_t len = 0;
        ssize_t r;
        while ((r = read(fd, buf + len, (size_t)st.st_size + 1 - len)) > 0 ||
               (r < 0 && errno == EINTR))
            len += r > 0 ? (size_t)r : 0;
        if (r == 0 && len <= (size_t)st.st_size)
            tz = at_tz_parse(path + sizeof dir - 1, buf, len);
        free(buf);
    }
    close(fd);
    return tz;
}

/* ---- the cache -------------------------------------------------------------- */

#define AT_TZ__SLOTS 8192 /* power of two, twice the bound: probes stay short */
#define AT_TZ__MAX_NAMES 4096
#define AT_TZ__MAX_MISSES 1024
#define AT_TZ__MAX_FIXED 1024
#define AT_TZ__CANON_MAX (23 * 60 + 59) /* fixed offsets in minutes: -MAX..MAX */

typedef struct at_tz__entry {
    uint64_t hash;
    const at_tz_t *tz; /* NULL: the name is known not to be a zone */
    size_t len;
    char name[];
} at_tz__entry_t;

/* What a cached name is: a named zone (a file or a UTC alias), a fixed
 * offset, or known not to be a zone. Each has its own bound. */
typedef enum { AT_TZ__NAMED, AT_TZ__FIXED, AT_TZ__MISS } at_tz__kind_t;

static _Atomic(at_tz__entry_t *) at_tz__slots[AT_TZ__SLOTS];
static _Atomic(at_tz_t *) at_tz__canon[2 * AT_TZ__CANON_MAX + 1];
static pthread_mutex_t at_tz__lock = PTHREAD_MUTEX_INITIALIZER;
/* Written under at_tz__lock; read without it to skip the lock when full. */
static _Atomic uint32_t at_tz__names, at_tz__misses, at_tz__fixed;

/* Finds name; returns its entry, or NULL with *slot the empty slot that
 * ends its probe. Lock-free: slots only ever go from NULL to a complete
 * entry (release/acquire), and the table is never more than half full. */
static at_tz__entry_t *at_tz__find(const char *name, size_t n, uint64_t h, size_t *slot)
{
    for (size_t i = h & (AT_TZ__SLOTS - 1);; i = (i + 1) & (AT_TZ__SLOTS - 1)) {
        at_tz__entry_t *e = atomic_load_explicit(&at_tz__slots[i], memory_order_acquire);
        if (!e) {
            *slot = i;
            return NULL;
        }
        if (e->hash == h && e->len == n && memcmp(e->name, name, n) == 0)
            return e;
    }
}

/* The shared zone for a fixed offset, named "+HH:MM"; created once. Takes
 * at_tz__lock only the first time for each offset. */
static const at_tz_t *at_tz__canonical(int32_t off)
{
    _Atomic(at_tz_t *) *slot = &at_tz__canon[off / 60 + AT_TZ__CANON_MAX];
    at_tz_t *tz = atomic_load_explicit(slot, memory_order_acquire);
    if (tz)
        return tz;
    int a = abs(off) / 60;
    char name[7] = {off < 0 ? '-' : '+',
                    (char)('0' + a / 600),
                    (char)('0' + a / 60 % 10),
                    ':',
                    (char)('0' + a % 60 / 10),
                    (char)('0' + a % 10),
                    '\0'};
    pthread_mutex_lock(&at_tz__lock);
    tz = atomic_load_explicit(slot, memory_order_relaxed);
    if (!tz) {
        tz = at_tz__fixed_new(name, 6, off);
        atomic_store_explicit(slot, tz, memory_order_release);
    }
    pthread_mutex_unlock(&at_tz__lock);
    return tz;
}

/* True if the cache has room for one more name of this kind (under lock). */
static bool at_tz__room(at_tz__kind_t kind)
{
    if (atomic_load_explicit(&at_tz__names, memory_order_relaxed) >= AT_TZ__MAX_NAMES)
        return false;
    if (kind == AT_TZ__MISS)
        return atomic_load_explicit(&at_tz__misses, memory_order_relaxed) < AT_TZ__MAX_MISSES;
    if (kind == AT_TZ__FIXED)
        return atomic_load_explicit(&at_tz__fixed, memory_order_relaxed) < AT_TZ__MAX_FIXED;
    return true;
}

/* Caches name -> tz (tz owned, may be NULL) unless there is no room.
 * Returns true when name is cached, with *got the cached zone: tz, or the
 * zone of a thread that got there first. Takes at_tz__lock. */
static bool at_tz__insert(const char *name, size_t n, uint64_t h, at_tz_t *tz, at_tz__kind_t kind,
                          const at_tz_t **got)
{
    size_t slot;
    bool cached = true;
    pthread_mutex_lock(&at_tz__lock);
    at_tz__entry_t *e = at_tz__find(name, n, h, &slot);
    if (e) {
        *got = e->tz;
    } else if (at_tz__room(kind)) {
        e = at_xmalloc(sizeof *e + n + 1);
        e->hash = h;
        e->tz = tz;
        e->len = n;
        memcpy(e->name, name, n);
        e->name[n] = '\0';
        atomic_store_explicit(&at_tz__slots[slot], e, memory_order_release);
        atomic_fetch_add_explicit(&at_tz__names, 1, memory_order_relaxed);
        if (kind != AT_TZ__NAMED)
            atomic_fetch_add_explicit(kind == AT_TZ__MISS ? &at_tz__misses : &at_tz__fixed, 1,
                                      memory_order_relaxed);
        *got = tz;
    } else {
        cached = false;
    }
    pthread_mutex_unlock(&at_tz__lock);
    return cached;
}

/* First lookup of a name (or any lookup past the bounds): checks it, loads
 * it outside the lock, then caches it. */
static const at_tz_t *at_tz__get_slow(const char *name, size_t n, uint64_t h)
{
    int32_t off = 0;
    at_tz__kind_t kind = AT_TZ__FIXED;
    at_tz_t *tz;
    if (name[0] == '+' || name[0] == '-') { /* never a file name */
        if (!at_tz__fixed_parse(name, n, &off))
            return NULL;
        if (!at_tz__room(kind))
            return at_tz__canonical(off);
        tz = at_tz__fixed_new(name, n, off);
    } else if (!at_tz__name_ok(name, n)) {
        return NULL; /* refused by its spelling alone: nothing to remember */
    } else if (at_tz__is_utc(name, n)) {
        kind = AT_TZ__NAMED;
        tz = at_tz__fixed_new(name, n, 0);
    } else {
        tz = at_tz__load(name, n);
        kind = tz ? AT_TZ__NAMED : AT_TZ__MISS;
        if (!tz && !at_tz__room(kind))
            return NULL;
    }
    const at_tz_t *got;
    if (at_tz__insert(name, n, h, tz, kind, &got)) {
        if (got != tz)
            at_tz_free(tz); /* another thread's copy is the one kept */
        return got;
    }
    at_tz_free(tz);
    if (kind == AT_TZ__FIXED)
        return at_tz__canonical(off);
    if (kind == AT_TZ__NAMED)
        AT_WARN("tz: zone cache full", "name=%.*s", (int)n, name);
    return NULL;
}

/* Returns a borrowed zone for name, or NULL; see at_tz.h. Thread: any. */
const at_tz_t *at_tz_get(const char *name, size_t n)
{
    if (!name || n == 0 || n > AT_TZ_NAME_MAX)
        return NULL;
    if (n == 3 && memcmp(name, "UTC", 3) == 0)
        return &at_tz__utc_zone;
    uint64_t h = at_hash64(name, n);
    size_t slot;
    const at_tz__entry_t *e = at_tz__find(name, n, h, &slot);
    if (e)
        return e->tz;
    return at_tz__get_slow(name, n, h);
}

/* Returns UTC, never NULL. Thread: any. */
const at_tz_t *at_tz_utc(void)
{
    return &at_tz__utc_zone;
}

/* Returns the zone's borrowed NUL-terminated name. Thread: any. */
const char *at_tz_name(const at_tz_t *tz)
{
    return tz->name;
}
