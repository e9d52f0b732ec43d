/* at_tz.h - time zones without the process environment: local calendar
 * fields of an instant in a named IANA zone, and the instants where local
 * hours, days and weeks begin. Used by the expression language (hour(),
 * day_of_week()) and by tumbling windows ("days in the user's timezone").
 *
 * Zones are read from the system's TZif files (/usr/share/zoneinfo, Debian
 * package tzdata), including the POSIX TZ rule at the end of a v2+ file for
 * instants past its table. A loaded zone is immutable and cached for the
 * life of the process. "UTC", "Etc/UTC", "Z" and fixed offsets such as
 * "+02:00" / "-0530" need no file.
 *
 * Buckets: the local hour / day / ISO week containing an instant is the
 * longest stretch of time around it during which the local clock shows the
 * same hour / date / week. So a day with a DST change lasts 23 or 25 hours,
 * an hour that is repeated when clocks go back is one two-hour bucket, and a
 * bucket whose start is skipped by a transition begins right after the gap.
 *
 * Instants are ms since the epoch, POSIX time (no leap seconds). Inputs
 * outside [-AT_TZ_MS_MAX, AT_TZ_MS_MAX] are clamped to that range.
 *
 * THREAD SAFETY: every function may be called from any thread. Looking up
 * a name that was looked up before takes no lock and allocates nothing.
 */
#ifndef AT_TZ_H
#define AT_TZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct at_tz at_tz_t;

/* Broken-down local time. */
typedef struct at_tm {
    int year;       /* e.g. 2026 */
    int mon;        /* 1..12 */
    int mday;       /* 1..31 */
    int hour;       /* 0..23 */
    int min;        /* 0..59 */
    int sec;        /* 0..59 */
    int ms;         /* 0..999 */
    int wday;       /* ISO: 1 = Monday .. 7 = Sunday */
    int yday;       /* 1..366 */
    int32_t utcoff; /* seconds east of UTC in effect at that instant */
} at_tm_t;

typedef enum { AT_TZ_HOUR, AT_TZ_DAY, AT_TZ_WEEK } at_tz_unit_t;

/* Longest zone name at_tz_get accepts, in bytes. */
#define AT_TZ_NAME_MAX 64
/* Instants are clamped to +-100,000,000 days (the range of a JavaScript
 * Date), about the years -271821 to 275760. */
#define AT_TZ_MS_MAX 8640000000000000LL

/* The zone named name (n bytes, not NUL-terminated), loaded on first use.
 * Returns a borrowed pointer valid for the life of the process, or NULL
 * when the name is unknown or its file is not a valid TZif file.
 *
 * Names may come from clients: a name is refused (NULL) before any file is
 * opened unless it is 1..AT_TZ_NAME_MAX bytes of [A-Za-z0-9_+/-] without a
 * leading, trailing or doubled '/' (so never "." or ".."). "UTC", "Etc/UTC",
 * "Z" and "GMT" are UTC; "+HH:MM", "+HHMM" and "+HH" (or '-'; HH 00..23,
 * MM 00..59) are fixed offsets; other names are files under
 * /usr/share/zoneinfo. Files with leap-second records (the right/ tree)
 * count time differently from attune's POSIX instants and are refused.
 *
 * The cache holds at most 4096 names, of which at most 1024 unknown names
 * and 1024 fixed-offset spellings. Past those bounds an unknown name is
 * checked again on every call (NULL, nothing kept), and a new fixed-offset
 * spelling gets a shared zone whose name is the canonical "+HH:MM". */
const at_tz_t *at_tz_get(const char *name, size_t n);
/* UTC; never NULL. */
const at_tz_t *at_tz_utc(void);
/* The zone's name as given to at_tz_get or at_tz_parse (NUL-terminated,
 * borrowed; see at_tz_get for the one exception). */
const char *at_tz_name(const at_tz_t *tz);

/* Seconds east of UTC in tz at the instant ms (ms since the epoch, UTC). */
int32_t at_tz_offset(const at_tz_t *tz, int64_t ms);
/* Local calendar fields of the instant ms in tz. */
void at_tz_local(const at_tz_t *tz, int64_t ms, at_tm_t *out);
/* The instant (UTC ms) at which the local hour / day / ISO week (Monday)
 * containing ms began in tz. Where a local midnight does not exist (a
 * transition skips it), the day begins at the first instant after the gap. */
int64_t at_tz_floor(const at_tz_t *tz, int64_t ms, at_tz_unit_t unit);
/* The first instant after ms at which a new local hour / day / week begins:
 * the end of the bucket at_tz_floor() names. Always > ms (for ms within
 * +-AT_TZ_MS_MAX). */
int64_t at_tz_next(const at_tz_t *tz, int64_t ms, at_tz_unit_t unit);
/* The first instant after ms at which tz's UTC offset changes, or INT64_MAX
 * when it never changes again. */
int64_t at_tz_next_change(const at_tz_t *tz, int64_t ms);

/* Parses a TZif file's bytes (RFC 8536 / RFC 9636, versions 1 to 4; for
 * tests and the fuzz target). name (NUL-terminated, may be NULL for "") is
 * copied. Returns an owned zone (at_tz_free) or NULL when the bytes are not
 * a valid TZif file or carry leap-second records. Never reads past len. */
at_tz_t *at_tz_parse(const char *name, const void *data, size_t len);
/* Frees a zone from at_tz_parse (NULL is ignored); never one from
 * at_tz_get or at_tz_utc, which live as long as the process. */
void at_tz_free(at_tz_t *tz);

#endif
