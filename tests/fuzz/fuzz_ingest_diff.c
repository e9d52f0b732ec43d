/* fuzz_ingest_diff.c - feeds arbitrary bytes to at_ingest_parse as JSON,
 * NDJSON and text twice, with the single pass (src/ingest/scan.c) on and
 * off, and requires the very same result: events (canonical JSON, key,
 * partition, id, type, times), rejects (code, field, message, raw bytes)
 * and body errors. The single pass stands in for the tree path on the
 * events it accepts; any difference is a bug. Two configurations: the
 * small limits, mappings and schema of fuzz_ingest_batch.c, and the
 * defaults. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/ingest/corpus_gen.h"
#include "at_config.h"
#include "at_core.h"
#include "at_ingest.h"
#include "ingest_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static at_ingest_t *fuzz_new(int small, bool scan)
{
    at_config_t c;
    at_config_defaults(&c);
    if (small) {
        c.max_batch_events = 64;
        c.max_event_bytes = 2048;
        c.max_field_length = 64;
        c.max_depth = 4;
        c.mappings = at_xcalloc(2, sizeof *c.mappings);
        c.mappings[0].from = at_xstrdup("properties.sku");
        c.mappings[0].to = at_xstrdup("item_id");
        c.mappings[1].from = at_xstrdup("context.page.session");
        c.mappings[1].to = at_xstrdup("session_id");
        c.nmappings = 2;
        c.schemas = at_xcalloc(1, sizeof *c.schemas);
        c.schemas[0].type = at_xstrdup("s");
        c.schemas[0].json = at_xstrdup("{\"required\":[\"n\"],\"properties\":{\"n\":{\"type\":"
                                       "\"integer\",\"minimum\":0},\"e\":{\"enum\":[\"a\",1]},"
                                       "\"p\":{\"pattern\":\"^[a-z]+$\",\"maxLength\":5}}}");
        c.nschemas = 1;
    }
    at_ingest_t *in;
    at_error_t e;
    AT_ASSERT(at_ingest_new(&in, &c, NULL, &e) == 0);
    at_config_free(&c);
    in->scan = scan && in->scan;
    return in;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static at_ingest_t *in[2][2]; /* [config][scan] */
    static cg_buf_t x, y;
    if (!in[0][0])
        for (int k = 0; k < 2; k++)
            for (int s = 0; s < 2; s++)
                in[k][s] = fuzz_new(k, s);
    cg_buf_t body = {(char *)data, size, size};
    for (int k = 0; k < 2; k++) {
        AT_ASSERT(in[k][1]->scan);
        for (int kind = 0; kind < 3; kind++) {
            cg_run(in[k][1], &body, (at_body_kind_t)kind, &x);
            cg_run(in[k][0], &body, (at_body_kind_t)kind, &y);
            AT_ASSERT(x.n == y.n && memcmp(x.p, y.p, x.n) == 0);
        }
    }
    return 0;
}
