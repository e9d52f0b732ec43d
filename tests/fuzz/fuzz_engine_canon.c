/* fuzz_engine_canon.c - arbitrary bytes through ingestion (as JSON and as
 * NDJSON, with the defaults and with the corpus configuration of mappings
 * and small limits), and every canonical event it writes through the
 * reader of canonical events (src/engine/proc_canon.c) and the event's
 * tree: the reader declines or gives the very same view
 * (tests/unit/engine/canon_test.h). */
#include <stddef.h>
#include <stdint.h>

#include "../unit/engine/canon_test.h"
#include "../unit/ingest/corpus_gen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static at_ingest_t *in[2];
    static at_proc_t *pr;
    if (!pr) {
        for (int k = 0; k < 2; k++) {
            at_config_t c;
            cg_config(k, &c);
            at_error_t e;
            AT_ASSERT(at_ingest_new(&in[k], &c, NULL, &e) == 0);
            at_config_free(&c);
        }
        pr = canon_proc();
    }
    for (int k = 0; k < 2; k++) {
        for (int kind = 0; kind < 2; kind++) {
            at_batch_t b;
            at_batch_init(&b);
            at_error_t e;
            if (at_ingest_parse(in[k], (const char *)data, size,
                                kind ? AT_BODY_NDJSON : AT_BODY_JSON, CG_RECV, 1, &b, &e) == 0) {
                for (size_t i = 0; i < b.nevents; i++) {
                    const char *why;
                    if (canon_diff(pr, b.events[i].json, b.events[i].json_len, &why) < 0) {
                        (void)fprintf(stderr, "%s differs on %.*s\n", why,
                                      (int)b.events[i].json_len, b.events[i].json);
                        AT_ASSERT(0);
                    }
                }
            }
            at_batch_deinit(&b);
        }
    }
    return 0;
}
