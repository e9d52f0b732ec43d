/* id.c - time-ordered ids in the UUIDv7 text form (RFC 9562).
 *
 * 48 bits of ms timestamp, then 74 bits that start random in each new
 * millisecond and count up within it (RFC 9562 §6.2, method 2: a
 * monotonic random). If the caller's clock goes back, the last timestamp is
 * kept, so ids from one process are strictly increasing. One mutex guards
 * the state; random bytes come from getrandom() in blocks. */
#include "at_core.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#define AT_ID_POOL 256

static pthread_mutex_t at_id__lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t at_id__last_ms = -1;
static uint64_t at_id__hi; /* 12 bits: rand_a */
static uint64_t at_id__lo; /* 62 bits: rand_b */
static unsigned char at_id__pool[AT_ID_POOL];
static size_t at_id__pool_used = AT_ID_POOL;

/* Returns 8 random bytes as an integer. Caller holds at_id__lock. */
static uint64_t at_id__rand64(void)
{
    if (at_id__pool_used + 8 > AT_ID_POOL) {
        size_t got = 0;
        while (got < AT_ID_POOL) {
            ssize_t r = getrandom(at_id__pool + got, AT_ID_POOL - got, 0);
            if (r < 0 && errno != EINTR)
                at_panic(__FILE__, __LINE__, "getrandom failed");
            if (r > 0)
                got += (size_t)r;
        }
        at_id__pool_used = 0;
    }
    uint64_t v;
    memcpy(&v, at_id__pool + at_id__pool_used, 8);
    at_id__pool_used += 8;
    return v;
}

/* Advances the state to the next id at now_ms. Caller holds the lock. */
static void at_id__advance(int64_t now_ms)
{
    if (now_ms > at_id__last_ms) {
        at_id__last_ms = now_ms;
        at_id__hi = at_id__rand64() & 0x7ff; /* top bit clear: room to count */
        at_id__lo = at_id__rand64() & 0x3fffffffffffffffULL;
        return;
    }
    at_id__lo = (at_id__lo + 1) & 0x3fffffffffffffffULL;
    if (at_id__lo == 0 && ++at_id__hi > 0xfff) {
        at_id__last_ms++;
        at_id__hi = 0;
    }
}

static void at_id__hex(char *out, const unsigned char *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
}

/* Writes a new id for time now_ms (ms since the epoch) into out: 36 chars
 * and a NUL, lowercase, strictly greater (as bytes) than any earlier id of
 * this process. Thread: any (takes a mutex). */
void at_id_new(char out[AT_ID_LEN + 1], int64_t now_ms)
{
    unsigned char b[16];
    pthread_mutex_lock(&at_id__lock);
    at_id__advance(now_ms < 0 ? 0 : now_ms);
    uint64_t ms = (uint64_t)at_id__last_ms, hi = at_id__hi, lo = at_id__lo;
    pthread_mutex_unlock(&at_id__lock);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (hi >> 8));
    b[7] = (unsigned char)hi;
    b[8] = (unsigned char)(0x80 | (lo >> 56));
    for (int i = 9; i < 16; i++)
        b[i] = (unsigned char)(lo >> (8 * (15 - i)));
    at_id__hex(out, b, 4);
    out[8] = '-';
    at_id__hex(out + 9, b + 4, 2);
    out[13] = '-';
    at_id__hex(out + 14, b + 6, 2);
    out[18] = '-';
    at_id__hex(out + 19, b + 8, 2);
    out[23] = '-';
    at_id__hex(out + 24, b + 10, 6);
    out[AT_ID_LEN] = '\0';
}
