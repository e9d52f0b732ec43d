/* deadlog.c - the record format of a sink's dead-letter and skipped logs:
 * append-only, each record framed and checked so that a torn tail (a crash
 * in the middle of a write) is recognized and cut. */
#include "at_sinks.h"

#include <string.h>

static void at_sink__put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

static uint32_t at_sink__get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void at_sink_dead_encode(at_buf_t *b, const char *json, size_t len)
{
    AT_ASSERT(len <= AT_DEAD_MAX_RECORD);
    unsigned char h[8];
    at_sink__put32(h, (uint32_t)len);
    at_sink__put32(h + 4, (uint32_t)at_hash64(json, len));
    AT_ASSERT(at_buf_append(b, h, sizeof h) == 0 && at_buf_append(b, json, len) == 0);
}

uint64_t at_sink_dead_scan(const char *data, uint64_t len, uint64_t from, at_sink_dead_fn fn,
                           void *ud)
{
    uint64_t off = 0;
    bool stop = false;
    while (len - off >= 8) {
        const unsigned char *h = (const unsigned char *)data + off;
        uint32_t n = at_sink__get32(h);
        if (n == 0 || n > AT_DEAD_MAX_RECORD || len - off - 8 < n)
            break;
        if ((uint32_t)at_hash64(data + off + 8, n) != at_sink__get32(h + 4))
            break;
        if (!stop && off >= from && fn && fn(ud, off, data + off + 8, n) != 0)
            stop = true;
        off += 8 + (uint64_t)n;
    }
    return off;
}
