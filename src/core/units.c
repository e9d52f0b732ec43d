/* units.c - the size ("64KiB") and duration ("90s") syntax shared by the
 * config file, command-line flags and rule definitions. */
#include "at_config.h"
#include "at_core.h"

#include <string.h>
#include <strings.h>

/* Reads decimal digits at *s into *v; returns the count or -1 on overflow. */
static int at_units__digits(const char **s, int64_t *v)
{
    int n = 0;
    *v = 0;
    while (**s >= '0' && **s <= '9') {
        int d = **s - '0';
        if (*v > (INT64_MAX - d) / 10)
            return -1;
        *v = *v * 10 + d;
        (*s)++;
        n++;
    }
    return n;
}

/* Parses a size: an integer optionally followed by a unit, B, KB/MB/GB/TB
 * (powers of 1000) or KiB/MiB/GiB/TiB (powers of 1024), case-insensitive,
 * an optional space between. Returns 0 or AT_EINVALID. Thread: any. */
int at_parse_size(const char *s, int64_t *bytes)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"kb", 1000LL},
        {"mb", 1000LL * 1000},
        {"gb", 1000LL * 1000 * 1000},
        {"tb", 1000LL * 1000 * 1000 * 1000},
        {"kib", 1LL << 10},
        {"mib", 1LL << 20},
        {"gib", 1LL << 30},
        {"tib", 1LL << 40},
    };
    int64_t v;
    if (!s || at_units__digits(&s, &v) <= 0)
        return AT_EINVALID;
    if (*s == ' ' && s[1])
        s++; /* "64 KiB", but not "64 " */
    for (size_t i = 0; i < AT_ARRAY_LEN(units); i++) {
        if (strcasecmp(s, units[i].unit) != 0)
            continue;
        if (v > INT64_MAX / units[i].mult)
            return AT_EINVALID;
        *bytes = v * units[i].mult;
        return 0;
    }
    return AT_EINVALID;
}

/* Returns the ms per unit at *s (ms, s, m, h, d, w) and advances, or 0. */
static int64_t at_units__duration_unit(const char **s)
{
    if (strncmp(*s, "ms", 2) == 0) {
        *s += 2;
        return 1;
    }
    int64_t m;
    switch (**s) {
    case 's':
        m = 1000;
        break;
    case 'm':
        m = 60LL * 1000;
        break;
    case 'h':
        m = 3600LL * 1000;
        break;
    case 'd':
        m = 86400LL * 1000;
        break;
    case 'w':
        m = 7LL * 86400 * 1000;
        break;
    default:
        return 0;
    }
    (*s)++;
    return m;
}

/* Parses a duration: one or more NUMBER UNIT pairs ("250ms", "90s", "10m",
 * "2h", "7d", "1w", "1h30m"), or a bare "0". Returns 0 or AT_EINVALID.
 * Thread: any. */
int at_parse_duration_ms(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return AT_EINVALID;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    int64_t total = 0;
    while (*s) {
        int64_t v;
        if (at_units__digits(&s, &v) <= 0)
            return AT_EINVALID;
        int64_t mult = at_units__duration_unit(&s);
        if (mult == 0 || v > INT64_MAX / mult || total > INT64_MAX - v * mult)
            return AT_EINVALID;
        total += v * mult;
    }
    *ms = total;
    return 0;
}
