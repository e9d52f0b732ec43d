/* fuzz_core_tz.c - feeds arbitrary bytes to the TZif parser; when they parse,
 * asks the zone about instants across its whole range and checks what must
 * hold for any zone: local fields in range, the offset the same both ways,
 * floor <= ms < next with both ends bucket starts, changes in order. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "at_core.h"
#include "at_tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_local(const at_tz_t *tz, int64_t ms)
{
    at_tm_t t;
    at_tz_local(tz, ms, &t);
    AT_ASSERT(t.mon >= 1 && t.mon <= 12 && t.mday >= 1 && t.mday <= 31);
    AT_ASSERT(t.hour >= 0 && t.hour <= 23 && t.min >= 0 && t.min <= 59);
    AT_ASSERT(t.sec >= 0 && t.sec <= 59 && t.ms >= 0 && t.ms <= 999);
    AT_ASSERT(t.wday >= 1 && t.wday <= 7 && t.yday >= 1 && t.yday <= 366);
    AT_ASSERT(t.utcoff == at_tz_offset(tz, ms));
    AT_ASSERT(t.utcoff >= -26 * 3600 && t.utcoff <= 26 * 3600);
}

static void check_bucket(const at_tz_t *tz, int64_t ms, at_tz_unit_t unit)
{
    int64_t f = at_tz_floor(tz, ms, unit), n = at_tz_next(tz, ms, unit);
    AT_ASSERT(f <= ms && ms < n);
    AT_ASSERT(n - f <= 7 * 86400000LL + 60 * 3600000LL); /* a week plus offset swings */
    AT_ASSERT(at_tz_floor(tz, f, unit) == f);
    if (n <= AT_TZ_MS_MAX) /* beyond it, instants are clamped */
        AT_ASSERT(at_tz_floor(tz, n, unit) == n);
    if (f - 1 >= -AT_TZ_MS_MAX)
        AT_ASSERT(at_tz_next(tz, f - 1, unit) == f);
}

/* Instants in range: fixed ones from -AT_TZ_MS_MAX to AT_TZ_MS_MAX, then
 * some taken from the input itself (so the fuzzer can aim at its own
 * transitions), and the offset changes that follow a few of them. */
static void probe(const at_tz_t *tz, const uint8_t *data, size_t size)
{
    static const int64_t fixed[] = {
        -AT_TZ_MS_MAX,
        -10000000000000000LL / 2,
        -62135596800000LL,
        -2208988800000LL,
        -1,
        0,
        1234567890123LL,
        1774746000000LL,
        2147483647000LL,
        4102444800000LL,
        7258118400000LL,
        16725225600000LL,
        AT_TZ_MS_MAX - 1,
        AT_TZ_MS_MAX,
    };
    int64_t ms[AT_ARRAY_LEN(fixed) + 8];
    size_t n = AT_ARRAY_LEN(fixed);
    memcpy(ms, fixed, sizeof fixed);
    for (size_t at = 0; at + 8 <= size && n < AT_ARRAY_LEN(ms); at += size / 8 + 1) {
        uint64_t v = 0;
        for (int k = 0; k < 8; k++)
            v = v << 8 | data[at + k];
        ms[n++] = (int64_t)(v % (2 * (uint64_t)AT_TZ_MS_MAX)) - AT_TZ_MS_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        check_local(tz, ms[i]);
        for (at_tz_unit_t u = AT_TZ_HOUR; u <= AT_TZ_WEEK; u++)
            if (ms[i] > -AT_TZ_MS_MAX && ms[i] < AT_TZ_MS_MAX)
                check_bucket(tz, ms[i], u);
        int64_t c = ms[i];
        for (int k = 0; k < 4 && c < AT_TZ_MS_MAX; k++) {
            int64_t next = at_tz_next_change(tz, c);
            AT_ASSERT(next > c);
            if (next < AT_TZ_MS_MAX)
                check_local(tz, next);
            c = next;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    at_tz_t *tz = at_tz_parse("fuzz", data, size);
    if (tz) {
        AT_ASSERT(strcmp(at_tz_name(tz), "fuzz") == 0);
        probe(tz, data, size);
    }
    at_tz_free(tz);
    return 0;
}
