/* fuzz_core_config.c - feeds arbitrary bytes to the config loader, then
 * validates, documents and frees the result (ASan finds leaks and
 * overreads; the loader must never crash or abort on any input). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "at_config.h"
#include "at_core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    at_config_t c;
    char err[512];
    at_config_defaults(&c);
    int rc = at_config_load_text(&c, (const char *)data, size, err, sizeof err);
    if (rc != 0) {
        /* every failure names a position and a reason */
        AT_ASSERT(rc == AT_EPARSE || rc == AT_EINVALID);
        AT_ASSERT(strchr(err, ':') != NULL);
    } else {
        at_config_validate(&c, err, sizeof err);
        for (size_t i = 0; i < c.nschemas; i++)
            AT_ASSERT(c.schemas[i].json && c.schemas[i].json[0] == '{');
    }
    at_config_free(&c);
    return 0;
}
