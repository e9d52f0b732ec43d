/* test_tz.c - time zones: local fields against glibc's localtime_r (in a
 * child process, since TZ is process-wide state), hour / day / week buckets
 * across DST changes at hand-checked instants, TZif and footer parsing,
 * names and the bounded cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "at_core.h"
#include "at_tz.h"

#define ZONEINFO "/usr/share/zoneinfo/"
#define MS_1900 (-2208988800000LL)
#define MS_2100 (4102444800000LL)
#define MS_2500 (16725225600000LL)
#define HOUR 3600000LL
#define DAY 86400000LL

static int64_t ms_of(const char *s)
{
    int64_t ms = 0;
    if (at_time_parse_rfc3339(s, strlen(s), &ms) != 0)
        fail_msg("bad instant %s in the test", s);
    return ms;
}

static const at_tz_t *zone(const char *name)
{
    const at_tz_t *tz = at_tz_get(name, strlen(name));
    if (!tz)
        fail_msg("zone %s did not load", name);
    return tz;
}

static uint8_t *slurp(const char *name, size_t *len)
{
    char path[256], *data = NULL;
    snprintf(path, sizeof path, ZONEINFO "%s", name);
    if (at_file_read(path, 1 << 20, &data, len) != 0)
        fail_msg("cannot read %s", path);
    return (uint8_t *)data;
}

/* xorshift64*: deterministic instants. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static int64_t rnd_in(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd(s) % (uint64_t)(hi - lo));
}

/* ---- a list of instants to compare ---------------------------------------- */

typedef struct instants {
    int64_t *ms;
    size_t n, cap;
} instants_t;

static void add(instants_t *v, int64_t ms)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 4096;
        v->ms = realloc(v->ms, v->cap * sizeof *v->ms);
        assert_non_null(v->ms);
    }
    v->ms[v->n++] = ms;
}

/* An instant and its neighbours at +-1 ms and +-1 s. */
static void add_around(instants_t *v, int64_t ms)
{
    static const int64_t d[] = {-1000, -1, 0, 1, 999, 1000};
    for (size_t i = 0; i < AT_ARRAY_LEN(d); i++)
        add(v, ms + d[i]);
}

/* The 64-bit transition times of a v2+ TZif file, read independently of
 * tz.c so that its transitions are checked by something it did not make. */
static void add_file_transitions(instants_t *v, const char *name)
{
    size_t len;
    uint8_t *p = slurp(name, &len);
    uint32_t c[6];
    for (int pass = 0, at = 0; pass < 2; pass++) {
        assert_true(len >= (size_t)at + 44 && memcmp(p + at, "TZif", 4) == 0);
        for (int i = 0; i < 6; i++)
            c[i] = (uint32_t)p[at + 20 + 4 * i] << 24 | (uint32_t)p[at + 21 + 4 * i] << 16 |
                   (uint32_t)p[at + 22 + 4 * i] << 8 | p[at + 23 + 4 * i];
        if (pass == 1) {
            for (uint32_t i = 0; i < c[3]; i++) {
                int64_t t = 0;
                for (int k = 0; k < 8; k++)
                    t = (int64_t)((uint64_t)t << 8 | p[at + 44 + 8 * i + k]);
                if (t > -1e13 && t < 1e13)
                    add_around(v, t * 1000);
            }
        }
        at += 44 + c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    }
    free(p);
}

/* Every offset change tz reports in [from, to), 20000 random instants and
 * one every step. */
static void add_sweep(instants_t *v, const at_tz_t *tz, int64_t from, int64_t to, int64_t step,
                      uint64_t seed)
{
    for (int64_t t = at_tz_next_change(tz, from); t < to; t = at_tz_next_change(tz, t))
        add_around(v, t);
    for (int i = 0; i < 20000; i++)
        add(v, rnd_in(&seed, from, to));
    for (int64_t t = from; t < to; t += step)
        add(v, t);
}

/* ---- glibc in a child process ---------------------------------------------- */

static int64_t fdiv(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

/* Compares at_tz_local with localtime_r under TZ=tzenv at every instant;
 * returns the number of mismatches (printing the first few). Child only. */
static size_t libc_mismatches(const at_tz_t *tz, const char *tzenv, const instants_t *v)
{
    size_t bad = 0;
    setenv("TZ", tzenv, 1);
    tzset();
    for (size_t i = 0; i < v->n; i++) {
        int64_t ms = v->ms[i];
        time_t s = (time_t)fdiv(ms, 1000);
        struct tm b;
        at_tm_t a;
        if (!localtime_r(&s, &b))
            continue;
        at_tz_local(tz, ms, &a);
        if (a.year == b.tm_year + 1900 && a.mon == b.tm_mon + 1 && a.mday == b.tm_mday &&
            a.hour == b.tm_hour && a.min == b.tm_min && a.sec == b.tm_sec &&
            a.ms == (int)(ms - fdiv(ms, 1000) * 1000) && a.wday == (b.tm_wday ? b.tm_wday : 7) &&
            a.yday == b.tm_yday + 1 && a.utcoff == b.tm_gmtoff)
            continue;
        if (bad++ < 5)
            fprintf(stderr,
                    "%s at %lld ms: attune %04d-%02d-%02d %02d:%02d:%02d %+d, "
                    "libc %04d-%02d-%02d %02d:%02d:%02d %+ld\n",
                    tzenv, (long long)ms, a.year, a.mon, a.mday, a.hour, a.min, a.sec, a.utcoff,
                    b.tm_year + 1900, b.tm_mon + 1, b.tm_mday, b.tm_hour, b.tm_min, b.tm_sec,
                    b.tm_gmtoff);
    }
    return bad;
}

/* Runs libc_mismatches in a child so that TZ does not leak into this
 * process; fails the test if anything differs. */
static void check_against_libc(const at_tz_t *tz, const char *tzenv, const instants_t *v)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(libc_mismatches(tz, tzenv, v) ? 1 : 0);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("%s: attune and glibc disagree (%zu instants; see stderr)", tzenv, v->n);
}

static const char *const zones[] = {
    "Europe/Paris",      "America/New_York", "Australia/Lord_Howe", /* 30-minute DST */
    "Asia/Kolkata",      "Asia/Kathmandu",   "America/Santiago",    /* changes at 24:00 */
    "Pacific/Apia",                                                 /* skipped 2011-12-30 */
    "Africa/Casablanca",                                            /* table to 2087 */
    "Europe/Dublin",                                                /* negative DST */
    "America/St_Johns",  "America/Havana",   "Asia/Beirut",         /* skip midnight */
    "Asia/Gaza",                                                    /* rule at 50:00 */
    "America/Nuuk",                                                 /* rule at -1:00 */
    "Pacific/Chatham",                                              /* +12:45 / +13:45 */
    "Antarctica/Troll",                                             /* two-hour DST */
    "posix/Asia/Tokyo",
};

static void test_zones_match_libc(void **state)
{
    (void)state;
    for (size_t z = 0; z < AT_ARRAY_LEN(zones); z++) {
        const at_tz_t *tz = zone(zones[z]);
        char tzenv[128];
        instants_t v = {0};
        add_file_transitions(&v, zones[z]);
        add_sweep(&v, tz, MS_1900, MS_2100, 12 * HOUR + 7 * 60000, 0x9e3779b97f4a7c15ULL + z);
        /* past the table, where the rule is evaluated directly */
        add_sweep(&v, tz, MS_2100, MS_2500, 5 * DAY + 7 * 60000, 0x2545f4914f6cdd1dULL + z);
        snprintf(tzenv, sizeof tzenv, ":%s", zones[z]);
        check_against_libc(tz, tzenv, &v);
        free(v.ms);
    }
}

/* "Slim" files (zic -b slim: no 32-bit data, the table stops where the
 * footer can take over: 1996 for Europe/Paris) read the same as Debian's
 * fat ones, and as glibc reads them. They are in the fuzz corpus. */
static void test_slim_files(void **state)
{
    (void)state;
    static const char *const slim[][2] = {
        {"slim_europe_paris", "Europe/Paris"},
        {"slim_america_new_york", "America/New_York"},
        {"slim_america_santiago", "America/Santiago"},
    };
    const char *src = getenv("AT_SOURCE_DIR");
    if (!src)
        src = ".";
    for (size_t i = 0; i < AT_ARRAY_LEN(slim); i++) {
        char path[1024], *data = NULL;
        size_t len;
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/core_tz/%s", src, slim[i][0]);
        if (at_file_read(path, 1 << 20, &data, &len) != 0)
            fail_msg("cannot read %s", path);
        at_tz_t *tz = at_tz_parse(slim[i][1], data, len);
        assert_non_null(tz);
        const at_tz_t *fat = zone(slim[i][1]);
        instants_t v = {0};
        add_sweep(&v, fat, MS_1900, MS_2500, 3 * DAY + 7 * 60000, 1234 + i);
        for (size_t k = 0; k < v.n; k++)
            assert_int_equal(at_tz_offset(tz, v.ms[k]), at_tz_offset(fat, v.ms[k]));
        char tzenv[1100];
        snprintf(tzenv, sizeof tzenv, ":%s", path);
        check_against_libc(tz, tzenv, &v);
        free(v.ms);
        free(data);
        at_tz_free(tz);
    }
}

/* ---- hand-made TZif files ------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A TZif file of the given version with no transitions, one type of utoff
 * seconds, and footer (for versions >= '2'). Returns its length in out. */
static size_t tzif_rule_only(uint8_t *out, char version, int32_t utoff, const char *footer)
{
    size_t n = 0;
    for (int pass = 0; pass < (version ? 2 : 1); pass++) {
        memset(out + n, 0, 44);
        memcpy(out + n, "TZif", 4);
        out[n + 4] = (uint8_t)version;
        put32(out + n + 36, 1); /* typecnt */
        put32(out + n + 40, 4); /* charcnt */
        n += 44;
        put32(out + n, (uint32_t)utoff);
        out[n + 4] = 0;
        out[n + 5] = 0;
        memcpy(out + n + 6, "ZZZ", 4);
        n += 10;
    }
    if (version) {
        n += (size_t)sprintf((char *)out + n, "\n%s\n", footer);
    }
    return n;
}

static at_tz_t *parse_rule(const char *footer)
{
    uint8_t buf[512];
    size_t n = tzif_rule_only(buf, '3', 0, footer);
    return at_tz_parse(footer, buf, n);
}

/* Footer-only zones cover the rule forms real files do not use (Jn, n,
 * seconds) and the v3 extensions; glibc reads the same strings from TZ.
 * glibc places a TZ rule's changes before 1970 in 1970, so the comparison
 * starts there; earlier years are checked by hand below. */
static void test_footer_rules_match_libc(void **state)
{
    (void)state;
    static const char *const rules[] = {
        "AAA3BBB,J60,J300",
        "AAA-10BBB-11,59/3,300/3",
        "AAA4BBB3:30:15,M4.1.0/1:02:03,M10.5.6/23:59:59",
        "AAA-2BBB,M3.4.4/50,M10.4.4/50",
        "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
        "<-04>4<-03>,M9.1.6/24,M4.1.6/24",
        "IST-1GMT0,M10.5.0,M3.5.0/1",
        "<+0330>-3:30",
        "AAA0BBB0,M3.5.0,M10.5.0", /* daylight time with the same offset: none */
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(rules); i++) {
        at_tz_t *tz = parse_rule(rules[i]);
        if (!tz)
            fail_msg("footer %s refused", rules[i]);
        assert_string_equal(at_tz_name(tz), rules[i]);
        instants_t v = {0};
        add_sweep(&v, tz, 0, MS_2500, 2 * DAY + 7 * 60000, 77 + i);
        check_against_libc(tz, rules[i], &v);
        free(v.ms);
        at_tz_free(tz);
    }
    at_tz_t *tz = parse_rule("AAA3BBB,59,J300");
    assert_non_null(tz); /* day 59 from 0 is Feb 29 in leap years; J300 is always Oct 27 */
    assert_int_equal(at_tz_offset(tz, ms_of("1960-02-29T04:59:59Z")), -3 * 3600);
    assert_int_equal(at_tz_offset(tz, ms_of("1960-02-29T05:00:00Z")), -2 * 3600);
    assert_int_equal(at_tz_offset(tz, ms_of("1961-03-01T04:59:59Z")), -3 * 3600);
    assert_int_equal(at_tz_offset(tz, ms_of("1961-03-01T05:00:00Z")), -2 * 3600);
    assert_int_equal(at_tz_next_change(tz, ms_of("1961-06-01T00:00:00Z")),
                     ms_of("1961-10-27T04:00:00Z"));
    assert_int_equal(at_tz_next_change(tz, ms_of("1964-06-01T00:00:00Z")),
                     ms_of("1964-10-27T04:00:00Z"));
    assert_int_equal(at_tz_next_change(tz, ms_of("1963-11-01T00:00:00Z")),
                     ms_of("1964-02-29T05:00:00Z"));
    at_tz_free(tz);
}

/* Daylight time all year (RFC 8536 3.3.1): the change back at 25:00 on day
 * 365 meets the next year's change forward. glibc shows standard time for
 * the first hours of each year, so this one is checked by hand. */
static void test_footer_all_year_dst(void **state)
{
    (void)state;
    at_tz_t *tz = parse_rule("EST5EDT,0/0,J365/25");
    assert_non_null(tz);
    assert_int_equal(at_tz_offset(tz, ms_of("2026-01-01T02:00:00Z")), -4 * 3600);
    assert_int_equal(at_tz_offset(tz, ms_of("2026-06-01T00:00:00Z")), -4 * 3600);
    assert_int_equal(at_tz_offset(tz, ms_of("2028-12-31T23:00:00Z")), -4 * 3600);
    assert_int_equal(at_tz_offset(tz, ms_of("2400-01-01T05:00:00Z")), -4 * 3600);
    assert_int_equal(at_tz_next_change(tz, 0), INT64_MAX);
    at_tz_free(tz);
}

static void test_footer_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "CET-1CEST",                       /* daylight time without a rule */
        "CET-1CEST,M3.5.0",                /* one date */
        "CET-1CEST,M13.5.0,M10.5.0",       /* month 13 */
        "CET-1CEST,M3.6.0,M10.5.0",        /* week 6 */
        "CET-1CEST,M3.5.7,M10.5.0",        /* weekday 7 */
        "CET-1CEST,M3.5.0/168,M10.5.0",    /* 168 hours */
        "CET-1CEST,J0,J100",               /* J counts from 1 */
        "CET-1CEST,366,100",               /* n counts to 365 */
        "CET-25",                          /* offset hours */
        "CET-1:60",                        /* minutes */
        "CET-1:5",                         /* two-digit minutes */
        "CE-1",                            /* two-letter name */
        "<AB>-1",                          /* two-character quoted name */
        "<CET-1",                          /* unterminated */
        "CET",                             /* no offset */
        "CET-1CEST,M3.5.0,M10.5.0 ",       /* trailing space */
        "CET-1CEST,M3.5.0,M10.5.0,M1.1.0", /* three dates */
        "1CET",
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(bad); i++) {
        at_tz_t *tz = parse_rule(bad[i]);
        if (tz)
            fail_msg("footer \"%s\" accepted", bad[i]);
    }
}

/* A version 1 file (no 64-bit data, no footer) reads the same as the v2+
 * file it came from inside the 32-bit range, and after its last transition
 * keeps that transition's offset; a version 4 file reads like version 2. */
static void test_versions(void **state)
{
    (void)state;
    size_t len;
    uint8_t *p = slurp("Europe/Paris", &len);
    at_tz_t *v2 = at_tz_parse("v2", p, len);
    assert_non_null(v2);
    uint32_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = (uint32_t)p[20 + 4 * i] << 24 | (uint32_t)p[21 + 4 * i] << 16 |
               (uint32_t)p[22 + 4 * i] << 8 | p[23 + 4 * i];
    size_t v1len = 44 + c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    uint8_t *v1bytes = malloc(v1len);
    memcpy(v1bytes, p, v1len);
    v1bytes[4] = 0;
    at_tz_t *v1 = at_tz_parse("v1", v1bytes, v1len);
    assert_non_null(v1);
    uint64_t seed = 5;
    for (int i = 0; i < 20000; i++) {
        int64_t ms = rnd_in(&seed, -2147483648000LL, 2147483647000LL);
        assert_int_equal(at_tz_offset(v1, ms), at_tz_offset(v2, ms));
    }
    assert_int_equal(at_tz_offset(v1, ms_of("2040-07-01T00:00:00Z")), 3600);
    assert_int_equal(at_tz_offset(v2, ms_of("2040-07-01T00:00:00Z")), 7200);
    p[4] = '4';
    p[v1len + 4] = '4'; /* the second header */
    at_tz_t *v4 = at_tz_parse("v4", p, len);
    assert_non_null(v4);
    assert_int_equal(at_tz_offset(v4, ms_of("2040-07-01T00:00:00Z")), 7200);
    p[4] = '1'; /* no such version */
    assert_null(at_tz_parse("v?", p, len));
    at_tz_free(v1);
    at_tz_free(v2);
    at_tz_free(v4);
    free(v1bytes);
    free(p);
}

/* Every proper prefix of a v2+ file lacks the footer's closing newline. */
static void test_truncated_and_garbled(void **state)
{
    (void)state;
    size_t len;
    uint8_t *p = slurp("America/Santiago", &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, p, n);
        assert_null(at_tz_parse("cut", copy, n));
        free(copy);
    }
    uint64_t seed = 11;
    for (int i = 0; i < 3000; i++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, p, len);
        for (int k = 0; k < 1 + i % 4; k++)
            copy[rnd(&seed) % (i % 2 ? 120 : len)] ^= (uint8_t)(1u << (rnd(&seed) % 8));
        at_tz_t *tz = at_tz_parse("garbled", copy, len);
        if (tz) {
            int64_t ms = rnd_in(&seed, -AT_TZ_MS_MAX, AT_TZ_MS_MAX);
            assert_true(at_tz_floor(tz, ms, AT_TZ_DAY) <= ms);
            assert_true(at_tz_next(tz, ms, AT_TZ_WEEK) > ms);
        }
        at_tz_free(tz);
        free(copy);
    }
    assert_null(at_tz_parse("null", NULL, 0));
    free(p);
}

static void test_leap_second_files_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *p = slurp("right/Europe/Paris", &len);
    assert_null(at_tz_parse("right", p, len));
    assert_null(at_tz_get("right/Europe/Paris", 18));
    free(p);
}

/* ---- buckets ---------------------------------------------------------------- */

/* The bucket of unit around `at` is [begin, end). */
static void bucket_is(const char *zname, const char *at, at_tz_unit_t unit, const char *begin,
                      const char *end)
{
    const at_tz_t *tz = zone(zname);
    int64_t ms = ms_of(at), b = ms_of(begin), e = ms_of(end);
    int64_t fb = at_tz_floor(tz, ms, unit), ne = at_tz_next(tz, ms, unit);
    if (fb != b || ne != e) {
        char s1[32], s2[32];
        at_time_format_rfc3339(fb, s1);
        at_time_format_rfc3339(ne, s2);
        fail_msg("%s %s unit %d: [%s, %s), expected [%s, %s)", zname, at, unit, s1, s2, begin, end);
    }
}

static void test_days_across_dst(void **state)
{
    (void)state;
    /* Europe/Paris: a 23-hour and a 25-hour day */
    bucket_is("Europe/Paris", "2026-03-29T12:00:00Z", AT_TZ_DAY, "2026-03-28T23:00:00Z",
              "2026-03-29T22:00:00Z");
    bucket_is("Europe/Paris", "2026-03-28T23:00:00Z", AT_TZ_DAY, "2026-03-28T23:00:00Z",
              "2026-03-29T22:00:00Z");
    bucket_is("Europe/Paris", "2026-03-29T21:59:59.999Z", AT_TZ_DAY, "2026-03-28T23:00:00Z",
              "2026-03-29T22:00:00Z");
    bucket_is("Europe/Paris", "2026-10-25T12:00:00Z", AT_TZ_DAY, "2026-10-24T22:00:00Z",
              "2026-10-25T23:00:00Z");
    bucket_is("Europe/Paris", "2026-10-25T00:30:00Z", AT_TZ_DAY, "2026-10-24T22:00:00Z",
              "2026-10-25T23:00:00Z");
    /* America/New_York */
    bucket_is("America/New_York", "2026-03-08T12:00:00Z", AT_TZ_DAY, "2026-03-08T05:00:00Z",
              "2026-03-09T04:00:00Z");
    bucket_is("America/New_York", "2026-11-01T05:30:00Z", AT_TZ_DAY, "2026-11-01T04:00:00Z",
              "2026-11-02T05:00:00Z");
    /* Europe/Dublin: IST (summer) is its standard time in the data */
    bucket_is("Europe/Dublin", "2026-03-29T12:00:00Z", AT_TZ_DAY, "2026-03-29T00:00:00Z",
              "2026-03-29T23:00:00Z");
    /* Australia/Lord_Howe: 24.5 hours when its 30-minute DST ends */
    bucket_is("Australia/Lord_Howe", "2026-04-05T00:00:00Z", AT_TZ_DAY, "2026-04-04T13:00:00Z",
              "2026-04-05T13:30:00Z");
    /* 30 and 45 minutes */
    bucket_is("Asia/Kolkata", "2026-06-01T00:00:00Z", AT_TZ_DAY, "2026-05-31T18:30:00Z",
              "2026-06-01T18:30:00Z");
    bucket_is("Asia/Kathmandu", "2026-06-01T12:00:00Z", AT_TZ_DAY, "2026-05-31T18:15:00Z",
              "2026-06-01T18:15:00Z");
    bucket_is("America/St_Johns", "2026-03-08T12:00:00Z", AT_TZ_DAY, "2026-03-08T03:30:00Z",
              "2026-03-09T02:30:00Z");
}

/* Where a transition skips local midnight, the day begins after the gap;
 * where it repeats the last hour before midnight, the day has 25 hours. */
static void test_days_without_midnight(void **state)
{
    (void)state;
    /* America/Santiago: 24:00 -04 becomes 01:00 -03 on Sunday 2026-09-06 */
    bucket_is("America/Santiago", "2026-09-06T12:00:00Z", AT_TZ_DAY, "2026-09-06T04:00:00Z",
              "2026-09-07T03:00:00Z");
    bucket_is("America/Santiago", "2026-09-05T12:00:00Z", AT_TZ_DAY, "2026-09-05T04:00:00Z",
              "2026-09-06T04:00:00Z");
    /* ... and 24:00 -03 becomes 23:00 -04 on Saturday 2026-04-04 */
    bucket_is("America/Santiago", "2026-04-04T12:00:00Z", AT_TZ_DAY, "2026-04-04T03:00:00Z",
              "2026-04-05T04:00:00Z");
    bucket_is("America/Santiago", "2026-04-05T03:30:00Z", AT_TZ_DAY, "2026-04-04T03:00:00Z",
              "2026-04-05T04:00:00Z");
    /* America/Havana: 00:00 CST becomes 01:00 CDT on 2026-03-08 */
    bucket_is("America/Havana", "2026-03-08T12:00:00Z", AT_TZ_DAY, "2026-03-08T05:00:00Z",
              "2026-03-09T04:00:00Z");
    bucket_is("America/Havana", "2026-03-07T12:00:00Z", AT_TZ_DAY, "2026-03-07T05:00:00Z",
              "2026-03-08T05:00:00Z");
    bucket_is("America/Havana", "2026-11-01T05:30:00Z", AT_TZ_DAY, "2026-11-01T04:00:00Z",
              "2026-11-02T05:00:00Z");
    /* Asia/Beirut 2022: 00:00 EET becomes 01:00 EEST on 2022-03-27, and
     * 00:00 EEST becomes 23:00 EET of Saturday 2022-10-29 */
    bucket_is("Asia/Beirut", "2022-03-27T12:00:00Z", AT_TZ_DAY, "2022-03-26T22:00:00Z",
              "2022-03-27T21:00:00Z");
    bucket_is("Asia/Beirut", "2022-10-29T12:00:00Z", AT_TZ_DAY, "2022-10-28T21:00:00Z",
              "2022-10-29T22:00:00Z");
    /* Pacific/Apia skipped Friday 2011-12-30: Thursday ends at 24:00 -10,
     * then it is Saturday 00:00 +14 */
    bucket_is("Pacific/Apia", "2011-12-29T12:00:00Z", AT_TZ_DAY, "2011-12-29T10:00:00Z",
              "2011-12-30T10:00:00Z");
    bucket_is("Pacific/Apia", "2011-12-30T10:00:00Z", AT_TZ_DAY, "2011-12-30T10:00:00Z",
              "2011-12-31T10:00:00Z");
    at_tm_t tm;
    at_tz_local(zone("Pacific/Apia"), ms_of("2011-12-30T10:00:00Z"), &tm);
    assert_int_equal(tm.mday, 31);
    assert_int_equal(tm.wday, 6);
}

static void test_hours_and_weeks(void **state)
{
    (void)state;
    /* a repeated local hour is one two-hour bucket; a skipped one is none */
    bucket_is("Europe/Paris", "2026-10-25T01:30:00Z", AT_TZ_HOUR, "2026-10-25T00:00:00Z",
              "2026-10-25T02:00:00Z");
    bucket_is("Europe/Paris", "2026-03-29T00:59:59Z", AT_TZ_HOUR, "2026-03-29T00:00:00Z",
              "2026-03-29T01:00:00Z");
    bucket_is("Europe/Paris", "2026-03-29T01:00:00Z", AT_TZ_HOUR, "2026-03-29T01:00:00Z",
              "2026-03-29T02:00:00Z");
    bucket_is("Asia/Kathmandu", "2026-06-01T12:00:00Z", AT_TZ_HOUR, "2026-06-01T11:15:00Z",
              "2026-06-01T12:15:00Z");
    bucket_is("Australia/Lord_Howe", "2026-04-04T15:10:00Z", AT_TZ_HOUR, "2026-04-04T14:00:00Z",
              "2026-04-04T15:30:00Z");
    bucket_is("America/Santiago", "2026-04-05T03:30:00Z", AT_TZ_HOUR, "2026-04-05T02:00:00Z",
              "2026-04-05T04:00:00Z");
    /* ISO weeks begin on Monday; these contain a DST change */
    bucket_is("Europe/Paris", "2026-03-29T12:00:00Z", AT_TZ_WEEK, "2026-03-22T23:00:00Z",
              "2026-03-29T22:00:00Z");
    bucket_is("Europe/Paris", "2026-10-25T12:00:00Z", AT_TZ_WEEK, "2026-10-18T22:00:00Z",
              "2026-10-25T23:00:00Z");
    bucket_is("Europe/Paris", "2026-03-29T22:00:00Z", AT_TZ_WEEK, "2026-03-29T22:00:00Z",
              "2026-04-05T22:00:00Z");
    bucket_is("Pacific/Apia", "2011-12-29T12:00:00Z", AT_TZ_WEEK, "2011-12-26T10:00:00Z",
              "2012-01-01T10:00:00Z");
    bucket_is("UTC", "1970-01-01T00:00:00Z", AT_TZ_WEEK, "1969-12-29T00:00:00Z",
              "1970-01-05T00:00:00Z");
    bucket_is("-05:30", "2026-06-01T00:00:00Z", AT_TZ_DAY, "2026-05-31T05:30:00Z",
              "2026-06-01T05:30:00Z");
}

/* The label of ms's bucket: the local date, hour and ISO week. */
static int64_t label(const at_tz_t *tz, int64_t ms, at_tz_unit_t unit)
{
    at_tm_t t;
    at_tz_local(tz, ms, &t);
    int64_t day = t.year * 400LL + t.yday;
    if (unit == AT_TZ_HOUR)
        return day * 24 + t.hour;
    if (unit == AT_TZ_DAY)
        return day;
    return fdiv(ms + (int64_t)t.utcoff * 1000, DAY) - (t.wday - 1); /* the local Monday */
}

/* floor <= ms < next; both ends are bucket starts; the bucket shows one
 * label and its neighbours others; a day begins at midnight or at a change. */
static void check_bucket(const at_tz_t *tz, int64_t ms, at_tz_unit_t unit)
{
    int64_t f = at_tz_floor(tz, ms, unit), n = at_tz_next(tz, ms, unit);
    assert_true(f <= ms && ms < n);
    assert_int_equal(at_tz_floor(tz, f, unit), f);
    assert_int_equal(at_tz_floor(tz, n, unit), n);
    assert_int_equal(at_tz_next(tz, f - 1, unit), f);
    assert_int_equal(at_tz_next(tz, n - 1, unit), n);
    assert_int_equal(label(tz, f, unit), label(tz, ms, unit));
    assert_int_equal(label(tz, n - 1, unit), label(tz, ms, unit));
    assert_true(label(tz, f - 1, unit) != label(tz, f, unit));
    assert_true(label(tz, n, unit) != label(tz, ms, unit));
    at_tm_t t;
    at_tz_local(tz, f, &t);
    if (unit != AT_TZ_HOUR && (t.hour || t.min || t.sec || t.ms))
        assert_true(at_tz_offset(tz, f - 1) != at_tz_offset(tz, f));
}

static void test_bucket_invariants(void **state)
{
    (void)state;
    uint64_t seed = 99;
    for (size_t z = 0; z < AT_ARRAY_LEN(zones); z++) {
        const at_tz_t *tz = zone(zones[z]);
        for (int i = 0; i < 3000; i++) {
            int64_t ms = rnd_in(&seed, MS_1900, MS_2500);
            for (at_tz_unit_t u = AT_TZ_HOUR; u <= AT_TZ_WEEK; u++)
                check_bucket(tz, ms, u);
        }
        /* right at and around every change */
        for (int64_t t = at_tz_next_change(tz, MS_1900); t < MS_2100;
             t = at_tz_next_change(tz, t)) {
            for (at_tz_unit_t u = AT_TZ_HOUR; u <= AT_TZ_WEEK; u++) {
                check_bucket(tz, t - 1, u);
                check_bucket(tz, t, u);
            }
        }
    }
}

/* ---- names, fixed offsets, the edges of time ------------------------------ */

static void test_names_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "/etc/passwd",
        "../etc/passwd",
        "Europe/../../etc/passwd",
        "./Europe/Paris",
        "Europe//Paris",
        "Europe/Paris/",
        "Europe/Paris.",
        "zone.tab",
        "tzdata.zi",
        "Europe/Pa ris",
        "Europe\\Paris",
        "Europe/Par%73",
        "+2",
        "+02:0",
        "+02:000",
        "+020",
        "+24:00",
        "+02:60",
        "-",
        "+",
        "++02",
        "0200",
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(bad); i++)
        if (at_tz_get(bad[i], strlen(bad[i])))
            fail_msg("name \"%s\" accepted", bad[i]);
    assert_null(at_tz_get("Europe/Paris\0x", 14)); /* an embedded NUL */
    char longname[AT_TZ_NAME_MAX + 2];
    memset(longname, 'A', sizeof longname);
    assert_null(at_tz_get(longname, sizeof longname));
    assert_null(at_tz_get(NULL, 3));
}

static void test_unknown_zones(void **state)
{
    (void)state;
    assert_null(at_tz_get("Mars/Olympus_Mons", 17));
    assert_null(at_tz_get("Mars/Olympus_Mons", 17)); /* now from the cache */
    assert_null(at_tz_get("Europe", 6));             /* a directory */
    assert_null(at_tz_get("leapseconds", 11));       /* not a TZif file */
}

static void test_utc_and_fixed(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int32_t off;
    } ok[] = {
        {"UTC", 0},
        {"Etc/UTC", 0},
        {"Z", 0},
        {"GMT", 0},
        {"+02:00", 7200},
        {"-05:30", -19800},
        {"+0530", 19800},
        {"+02", 7200},
        {"-00:00", 0},
        {"+23:59", 86340},
        {"-0945", -35100},
        {"Etc/GMT+5", -18000},
        {"Asia/Kolkata", 19800},
    };
    for (size_t i = 0; i < AT_ARRAY_LEN(ok); i++) {
        const at_tz_t *tz = zone(ok[i].name);
        assert_string_equal(at_tz_name(tz), ok[i].name);
        assert_int_equal(at_tz_offset(tz, ms_of("2026-07-01T00:00:00Z")), ok[i].off);
        assert_ptr_equal(tz, zone(ok[i].name)); /* cached: the same zone */
    }
    assert_ptr_equal(at_tz_get("Europe/Parisian", 12), zone("Europe/Paris")); /* n bytes only */
    const at_tz_t *utc = at_tz_utc();
    assert_string_equal(at_tz_name(utc), "UTC");
    at_tm_t t;
    at_tz_local(utc, 0, &t);
    assert_int_equal(t.year, 1970);
    assert_int_equal(t.yday, 1);
    assert_int_equal(t.wday, 4);
    at_tz_local(utc, ms_of("2024-12-31T23:59:59.999Z"), &t);
    assert_int_equal(t.yday, 366);
    assert_int_equal(t.ms, 999);
    at_tz_local(utc, -1, &t);
    assert_int_equal(t.year, 1969);
    assert_int_equal(t.ms, 999);
    assert_int_equal(t.wday, 3);
}

static void test_edges_of_time(void **state)
{
    (void)state;
    const at_tz_t *tz = zone("America/New_York");
    at_tm_t t;
    at_tz_local(tz, INT64_MAX, &t); /* clamped to +275760-09-13 */
    assert_int_equal(t.year, 275760);
    at_tz_local(tz, INT64_MIN, &t);
    assert_int_equal(t.year, -271821);
    for (at_tz_unit_t u = AT_TZ_HOUR; u <= AT_TZ_WEEK; u++) {
        assert_true(at_tz_next(tz, AT_TZ_MS_MAX, u) > AT_TZ_MS_MAX);
        assert_true(at_tz_floor(tz, -AT_TZ_MS_MAX, u) <= -AT_TZ_MS_MAX);
        check_bucket(tz, AT_TZ_MS_MAX - 400 * DAY, u);
        check_bucket(tz, -AT_TZ_MS_MAX + 400 * DAY, u);
    }
    assert_int_equal(at_tz_next_change(zone("+05:00"), 0), INT64_MAX);
    assert_int_equal(at_tz_next_change(zone("Asia/Kolkata"), 0), INT64_MAX);
    assert_int_equal(at_tz_next_change(zone("Europe/Paris"), ms_of("2026-06-01T00:00:00Z")),
                     ms_of("2026-10-25T01:00:00Z"));
    assert_int_equal(at_tz_next_change(zone("Europe/Paris"), ms_of("2238-06-01T00:00:00Z")),
                     ms_of("2238-10-28T01:00:00Z"));
}

/* ---- the cache ---------------------------------------------------------------- */

/* Fills the cache with unknown names and fixed-offset spellings, in a child
 * process so the other tests keep an empty cache. Returns 0 if all held. */
static int fill_cache(void)
{
    char name[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "Nowhere/Z%04d", i);
        if (at_tz_get(name, strlen(name)))
            return 1;
    }
    if (at_tz_get("Nowhere/Z0001", 13) || !at_tz_get("Asia/Tokyo", 10))
        return 2;
    for (int sign = -1; sign <= 1; sign += 2) {
        for (int m = 0; m < 24 * 60; m++) {
            for (int form = 0; form < 2; form++) {
                snprintf(name, sizeof name, form ? "%c%02d%02d" : "%c%02d:%02d",
                         sign < 0 ? '-' : '+', m / 60, m % 60);
                const at_tz_t *tz = at_tz_get(name, strlen(name));
                char canon[8];
                snprintf(canon, sizeof canon, "%c%02d:%02d", sign < 0 ? '-' : '+', m / 60, m % 60);
                if (!tz || at_tz_offset(tz, 0) != sign * m * 60)
                    return 3;
                if (strcmp(at_tz_name(tz), name) != 0 && strcmp(at_tz_name(tz), canon) != 0)
                    return 4;
                if (at_tz_get(name, strlen(name)) != tz && strcmp(at_tz_name(tz), canon) != 0)
                    return 5;
            }
        }
    }
    if (!at_tz_get("Europe/Lisbon", 13) || !at_tz_get("Z", 1) || !at_tz_get("+0100", 5))
        return 6;
    return 0;
}

static void test_cache_bounded(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fill_cache());
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static const char *const thread_names[] = {
    "Europe/Berlin", "Asia/Shanghai",  "America/Chicago", "Africa/Lagos", "Europe/Rome",
    "Asia/Dubai",    "America/Denver", "Nowhere/Else",    "+03:00",       "Etc/UTC",
};

static void *lookup_thread(void *arg)
{
    const at_tz_t **seen = arg;
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < AT_ARRAY_LEN(thread_names); i++) {
            const at_tz_t *tz = at_tz_get(thread_names[i], strlen(thread_names[i]));
            if (round == 0)
                seen[i] = tz;
            else if (tz != seen[i])
                seen[i] = (const at_tz_t *)(uintptr_t)1; /* changed: flagged for the main thread */
        }
    }
    return NULL;
}

/* Threads racing on first lookups all end up with the one cached zone. */
static void test_cache_threads(void **state)
{
    (void)state;
    enum { N = 4 };
    pthread_t th[N];
    const at_tz_t *seen[N][AT_ARRAY_LEN(thread_names)];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, lookup_thread, seen[i]), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (size_t k = 0; k < AT_ARRAY_LEN(thread_names); k++) {
        const at_tz_t *want = at_tz_get(thread_names[k], strlen(thread_names[k]));
        assert_true((want == NULL) == (strcmp(thread_names[k], "Nowhere/Else") == 0));
        for (int i = 0; i < N; i++)
            assert_ptr_equal(seen[i][k], want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zones_match_libc),
        cmocka_unit_test(test_slim_files),
        cmocka_unit_test(test_footer_rules_match_libc),
        cmocka_unit_test(test_footer_all_year_dst),
        cmocka_unit_test(test_footer_rejects),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_truncated_and_garbled),
        cmocka_unit_test(test_leap_second_files_refused),
        cmocka_unit_test(test_days_across_dst),
        cmocka_unit_test(test_days_without_midnight),
        cmocka_unit_test(test_hours_and_weeks),
        cmocka_unit_test(test_bucket_invariants),
        cmocka_unit_test(test_names_refused),
        cmocka_unit_test(test_unknown_zones),
        cmocka_unit_test(test_utc_and_fixed),
        cmocka_unit_test(test_edges_of_time),
        cmocka_unit_test(test_cache_bounded),
        cmocka_unit_test(test_cache_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
