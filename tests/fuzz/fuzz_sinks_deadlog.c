/* fuzz_sinks_deadlog.c - arbitrary bytes as a dead-letter log: the reader
 * stops at the first torn or corrupt record, never reads past the input,
 * and what it accepts re-encodes to the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "at_sinks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int at_fuzz__copy(void *ud, uint64_t off, const char *json, size_t len)
{
    (void)off;
    at_sink_dead_encode(ud, json, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    uint64_t ok = at_sink_dead_scan((const char *)data, size, 0, at_fuzz__copy, &b);
    AT_ASSERT(ok <= size);
    AT_ASSERT(b.len == ok && (ok == 0 || memcmp(b.data, data, ok) == 0));
    /* a valid prefix scans to itself */
    AT_ASSERT(at_sink_dead_scan((const char *)data, ok, 0, NULL, NULL) == ok);
    at_buf_deinit(&b);
    return 0;
}
