/* time.c - clocks and RFC 3339 timestamps at millisecond resolution.
 *
 * Calendar arithmetic is done here on the proleptic Gregorian calendar
 * (days since 1970-01-01) rather than with timegm()/gmtime_r(), so parsing
 * and formatting do not depend on the C library's time zone state. */
#include "at_core.h"

#include <stdio.h>
#include <time.h>

#define AT_MS_PER_DAY 86400000LL

/* Returns the wall clock in ms since the epoch. Thread: any. */
int64_t at_time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns the monotonic clock in ns (arbitrary origin). Thread: any. */
int64_t at_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool at_time__leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int at_time__days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && at_time__leap(y) ? 29 : dim[m - 1];
}

/* Days from 1970-01-01 to y-m-d. Years are counted from March, so the leap
 * day falls at the end of a year and each 400-year era has 146097 days. */
static int64_t at_time__days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* The inverse of at_time__days_from_civil. */
static void at_time__civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Reads exactly width digits at s[*i]; returns the value or -1. */
static int at_time__digits(const char *s, size_t n, size_t *i, int width)
{
    int v = 0;
    for (int k = 0; k < width; k++, (*i)++) {
        if (*i >= n || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (s[*i] - '0');
    }
    return v;
}

static bool at_time__expect(const char *s, size_t n, size_t *i, char c)
{
    if (*i >= n || s[*i] != c)
        return false;
    (*i)++;
    return true;
}

/* Parses "." 1*DIGIT at s[*i] if present into ms (digits past 3 dropped). */
static int at_time__fraction(const char *s, size_t n, size_t *i, int *ms)
{
    *ms = 0;
    if (*i >= n || s[*i] != '.')
        return 0;
    (*i)++;
    int k = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        if (k < 3)
            *ms = *ms * 10 + (s[*i] - '0');
        k++;
        (*i)++;
    }
    if (k == 0)
        return AT_EPARSE;
    for (; k < 3; k++)
        *ms *= 10;
    return 0;
}

/* Parses "Z" or "+HH:MM"/"-HH:MM" at s[*i] into an offset in minutes. */
static int at_time__offset(const char *s, size_t n, size_t *i, int *off_min)
{
    *off_min = 0;
    if (*i < n && (s[*i] == 'Z' || s[*i] == 'z')) {
        (*i)++;
        return 0;
    }
    if (*i >= n || (s[*i] != '+' && s[*i] != '-'))
        return AT_EPARSE;
    int sign = s[*i] == '-' ? -1 : 1;
    (*i)++;
    int oh = at_time__digits(s, n, i, 2);
    if (oh < 0 || oh > 23 || !at_time__expect(s, n, i, ':'))
        return AT_EPARSE;
    int om = at_time__digits(s, n, i, 2);
    if (om < 0 || om > 59)
        return AT_EPARSE;
    *off_min = sign * (oh * 60 + om);
    return 0;
}

/* The value of the two digits at s, or -1. */
static int at_time__2digits(const char *s)
{
    unsigned a = (unsigned)(uint8_t)s[0] - '0', b = (unsigned)(uint8_t)s[1] - '0';
    return a < 10 && b < 10 ? (int)(a * 10 + b) : -1;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" and "YYYY-MM-DDTHH:MM:SSZ", the shapes nearly
 * every producer sends, without the general path. Returns false when s is
 * not one of them or not a valid time: the general path then decides, so
 * the result is always the same as its own. */
static bool at_time__parse_fast(const char *s, size_t n, int64_t *ms)
{
    if (!(n == 24 || n == 20) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[n - 1] != 'Z' || (n == 24 && s[19] != '.'))
        return false;
    int y1 = at_time__2digits(s), y2 = at_time__2digits(s + 2), mo = at_time__2digits(s + 5);
    int d = at_time__2digits(s + 8), h = at_time__2digits(s + 11), mi = at_time__2digits(s + 14);
    int sec = at_time__2digits(s + 17), frac = 0;
    if (n == 24) {
        unsigned c = (unsigned)(uint8_t)s[22] - '0';
        int f2 = at_time__2digits(s + 20);
        if (f2 < 0 || c > 9)
            return false;
        frac = f2 * 10 + (int)c;
    }
    if ((y1 | y2 | d | h | mi | sec) < 0 || mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 60)
        return false;
    int y = y1 * 100 + y2;
    if (d < 1 || d > at_time__days_in_month(y, mo))
        return false;
    int64_t secs =
        at_time__days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec;
    *ms = secs * 1000 + frac;
    return true;
}

/* Parses an RFC 3339 date-time (date, 'T'/'t'/' ', time with seconds,
 * optional fraction, 'Z' or offset) spanning exactly s[0..n) into ms since
 * the epoch. A leap second (:60) counts as the next second. Returns 0 or
 * AT_EPARSE (*ms untouched). Thread: any. */
int at_time_parse_rfc3339(const char *s, size_t n, int64_t *ms)
{
    if (at_time__parse_fast(s, n, ms))
        return 0;
    size_t i = 0;
    int y = at_time__digits(s, n, &i, 4);
    if (y < 0 || !at_time__expect(s, n, &i, '-'))
        return AT_EPARSE;
    int mo = at_time__digits(s, n, &i, 2);
    if (mo < 1 || mo > 12 || !at_time__expect(s, n, &i, '-'))
        return AT_EPARSE;
    int d = at_time__digits(s, n, &i, 2);
    if (d < 1 || d > at_time__days_in_month(y, mo))
        return AT_EPARSE;
    if (i >= n || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        return AT_EPARSE;
    i++;
    int h = at_time__digits(s, n, &i, 2);
    if (h < 0 || h > 23 || !at_time__expect(s, n, &i, ':'))
        return AT_EPARSE;
    int mi = at_time__digits(s, n, &i, 2);
    if (mi < 0 || mi > 59 || !at_time__expect(s, n, &i, ':'))
        return AT_EPARSE;
    int sec = at_time__digits(s, n, &i, 2);
    if (sec < 0 || sec > 60)
        return AT_EPARSE;
    int frac, off;
    if (at_time__fraction(s, n, &i, &frac) || at_time__offset(s, n, &i, &off) || i != n)
        return AT_EPARSE;
    int64_t secs =
        at_time__days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec;
    *ms = (secs - (int64_t)off * 60) * 1000 + frac;
    return 0;
}

/* Writes ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" plus a NUL into out (>= 32
 * bytes); returns the length (24 for years 0..9999). Thread: any. */
int at_time_format_rfc3339(int64_t ms, char *out)
{
    int64_t days = ms / AT_MS_PER_DAY;
    int64_t rem = ms % AT_MS_PER_DAY;
    if (rem < 0) {
        rem += AT_MS_PER_DAY;
        days--;
    }
    int64_t y;
    int m, d;
    at_time__civil_from_days(days, &y, &m, &d);
    int secs = (int)(rem / 1000);
    if (y >= 0 && y <= 9999) {
        /* what the format below writes, without printf (one per output) */
        int v[7] = {(int)y, m, d, secs / 3600, secs / 60 % 60, secs % 60, (int)(rem % 1000)};
        static const char width[7] = {4, 2, 2, 2, 2, 2, 3}, after[7] = "--T::.Z";
        char *o = out;
        for (int i = 0; i < 7; i++) {
            for (int k = width[i] - 1; k >= 0; k--) {
                o[k] = (char)('0' + v[i] % 10);
                v[i] /= 10;
            }
            o += width[i];
            *o++ = after[i];
        }
        *o = '\0';
        return (int)(o - out);
    }
    int n = snprintf(out, 32, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
                     secs / 3600, secs / 60 % 60, secs % 60, (int)(rem % 1000));
    return n < 32 ? n : 31;
}
