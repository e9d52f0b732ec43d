/* policy.c - when to try again: exponential backoff with full jitter, and
 * the circuit breaker of an endpoint (closed -> open after N consecutive
 * failures -> half-open after a cool-down, one probe -> closed or open). */
#include "at_sinks.h"

static uint64_t at_sink__rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

int64_t at_sink_backoff_ms(int attempt, int64_t initial_ms, int64_t max_ms, uint64_t *rng)
{
    if (attempt < 1)
        attempt = 1;
    int64_t cap = initial_ms;
    for (int i = 1; i < attempt && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    if (cap <= 0)
        return 0;
    return (int64_t)(at_sink__rand(rng) % ((uint64_t)cap + 1));
}

void at_sink_breaker_init(at_sink_breaker_t *b, int threshold, int64_t cooldown_ms)
{
    *b = (at_sink_breaker_t){.state = AT_BREAKER_CLOSED,
                             .threshold = threshold > 0 ? threshold : 1,
                             .cooldown_ms = cooldown_ms};
}

bool at_sink_breaker_allow(at_sink_breaker_t *b, int64_t now_ms)
{
    if (b->state == AT_BREAKER_OPEN && now_ms >= b->open_until) {
        b->state = AT_BREAKER_HALF_OPEN;
        b->probing = false;
    }
    switch (b->state) {
    case AT_BREAKER_CLOSED:
        return true;
    case AT_BREAKER_HALF_OPEN:
        if (b->probing)
            return false;
        b->probing = true;
        return true;
    default:
        return false;
    }
}

void at_sink_breaker_result(at_sink_breaker_t *b, bool ok, int64_t now_ms)
{
    if (ok) {
        b->state = AT_BREAKER_CLOSED;
        b->failures = 0;
        b->probing = false;
        return;
    }
    if (b->state == AT_BREAKER_CLOSED && ++b->failures < b->threshold)
        return;
    if (b->state != AT_BREAKER_OPEN)
        b->opened++;
    b->state = AT_BREAKER_OPEN; /* a failed probe, or too many failures */
    b->open_until = now_ms + b->cooldown_ms;
    b->probing = false;
    b->failures = 0;
}
