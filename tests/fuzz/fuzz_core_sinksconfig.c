/* fuzz_core_sinksconfig.c - arbitrary bytes as the `sinks:` section of a
 * config: the webhook loader must fail with a located reason or produce
 * webhooks whose every field is set and in range; nothing leaks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "at_config.h"
#include "at_core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char pre[] = "sinks:\n";
    char *text = malloc(sizeof pre + size);
    AT_ASSERT(text);
    memcpy(text, pre, sizeof pre - 1);
    memcpy(text + sizeof pre - 1, data, size);
    at_config_t c;
    char err[512];
    at_config_defaults(&c);
    int rc = at_config_load_text(&c, text, sizeof pre - 1 + size, err, sizeof err);
    if (rc != 0) {
        AT_ASSERT(rc == AT_EPARSE || rc == AT_EINVALID);
        AT_ASSERT(strchr(err, ':') != NULL);
    } else {
        for (size_t i = 0; i < c.nwebhooks; i++) {
            const at_config_webhook_t *w = &c.webhooks[i];
            AT_ASSERT(w->name && w->url && w->secret);
            AT_ASSERT(w->max_attempts >= 1 && w->concurrency >= 1 && w->timeout_ms > 0);
            AT_ASSERT(w->backoff_ms <= w->backoff_max_ms);
            AT_ASSERT(w->events > 0 && w->events <= AT_SINK_EV_ALL);
        }
    }
    at_config_free(&c);
    free(text);
    return 0;
}
