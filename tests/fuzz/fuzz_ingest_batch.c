/* fuzz_ingest_batch.c - feeds arbitrary bytes to at_ingest_parse as JSON,
 * NDJSON and text, and checks what every batch must satisfy: each index
 * accounted for exactly once, events in canonical form (valid JSON, a
 * namespaced key, the right partition, no clamped time in the future),
 * rejects with a code, and the clamped count. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "at_config.h"
#include "at_core.h"
#include "at_ingest.h"
#include "ingest_int.h"

#define RECV 1777300560000LL
#define PARTS 8
#define MAX_EVENTS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static at_ingest_t *fuzz_ingest(void)
{
    static at_ingest_t *in;
    if (in)
        return in;
    at_config_t c;
    at_config_defaults(&c);
    c.max_batch_events = MAX_EVENTS;
    c.max_event_bytes = 2048;
    c.max_field_length = 64;
    c.max_depth = 4;
    c.mappings = at_xcalloc(1, sizeof *c.mappings);
    c.mappings[0].from = at_xstrdup("properties.sku");
    c.mappings[0].to = at_xstrdup("item_id");
    c.nmappings = 1;
    c.schemas = at_xcalloc(1, sizeof *c.schemas);
    c.schemas[0].type = at_xstrdup("s");
    c.schemas[0].json = at_xstrdup("{\"required\":[\"n\"],\"properties\":{\"n\":{\"type\":"
                                   "\"integer\",\"minimum\":0},\"e\":{\"enum\":[\"a\",1]},"
                                   "\"p\":{\"pattern\":\"^[a-z]+$\",\"maxLength\":5}}}");
    c.nschemas = 1;
    at_error_t e;
    AT_ASSERT(at_ingest_new(&in, &c, NULL, &e) == 0);
    at_config_free(&c);
    return in;
}

static void check_event(const at_event_t *ev, size_t size)
{
    AT_ASSERT(ev->json_len == strlen(ev->json));
    AT_ASSERT(memcmp(ev->json, "{\"event_id\":", 12) == 0);
    AT_ASSERT(ev->key_len == strlen(ev->key) && ev->key_len >= 3);
    AT_ASSERT(ev->key[0] == 'u' || ev->key[0] == 'a');
    AT_ASSERT(ev->key[1] == ':');
    AT_ASSERT(ev->partition == at_partition_of(ev->key, ev->key_len, PARTS));
    AT_ASSERT(ev->event_id_len == strlen(ev->event_id) && ev->event_id_len > 0);
    AT_ASSERT(!ev->id_assigned || ev->event_id_len == AT_ID_LEN);
    AT_ASSERT(ev->type && ev->type[0]);
    AT_ASSERT(ev->recv_ms == RECV && ev->ts_ms >= 0 && ev->ts_ms <= RECV + 5 * 60 * 1000);
    AT_ASSERT(!ev->clamped || ev->ts_ms == RECV);
    AT_ASSERT(ev->json_len < size * 2 + 512); /* nothing balloons */
    at_arena_t a;
    at_arena_init(&a, 0);
    at_json_t *root;
    at_error_t e;
    AT_ASSERT(at_json_parse_all(ev->json, ev->json_len, &a, 64, &root, &e) == 0);
    AT_ASSERT(root->type == AT_JSON_OBJECT);
    at_arena_deinit(&a);
}

static void check_batch(const at_batch_t *b, size_t size)
{
    size_t n = b->nevents + b->nrejects, clamped = 0;
    AT_ASSERT(n <= MAX_EVENTS);
    unsigned char seen[MAX_EVENTS] = {0};
    for (size_t i = 0; i < b->nevents; i++) {
        const at_event_t *ev = &b->events[i];
        AT_ASSERT(ev->index >= 0 && (size_t)ev->index < n && !seen[ev->index]);
        AT_ASSERT(i == 0 || ev->index > b->events[i - 1].index);
        seen[ev->index] = 1;
        clamped += ev->clamped;
        check_event(ev, size);
    }
    for (size_t i = 0; i < b->nrejects; i++) {
        const at_reject_t *r = &b->rejects[i];
        AT_ASSERT(r->index >= 0 && (size_t)r->index < n && !seen[r->index]);
        seen[r->index] = 1;
        AT_ASSERT(r->error.code[0] && r->error.message[0]);
        AT_ASSERT(r->raw_len <= size && r->raw[r->raw_len] == '\0');
    }
    AT_ASSERT(clamped == b->nclamped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    at_ingest_t *in = fuzz_ingest();
    static const at_body_kind_t kinds[] = {AT_BODY_JSON, AT_BODY_NDJSON, AT_BODY_TEXT};
    for (size_t k = 0; k < 3; k++) {
        at_batch_t b;
        at_error_t e;
        at_batch_init(&b);
        memset(&e, 0, sizeof e);
        int rc = at_ingest_parse(in, (const char *)data, size, kinds[k], RECV, PARTS, &b, &e);
        if (rc == 0)
            check_batch(&b, size);
        else if (rc == AT_EPARSE)
            AT_ASSERT(strcmp(e.code, "invalid_json") == 0 && strstr(e.message, "line "));
        else
            AT_ASSERT(rc == AT_ETOOBIG && strcmp(e.code, "batch_too_large") == 0);
        at_batch_deinit(&b);
    }
    return 0;
}
