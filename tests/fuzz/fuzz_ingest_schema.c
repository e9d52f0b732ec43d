/* fuzz_ingest_schema.c - feeds arbitrary bytes to the schema registry: as
 * version 2 of a type whose version 1 is fixed (compatibility rules), as
 * version 1 of a new type (compiling), and then checks an event against
 * it. The bytes before the first NUL are the schema, the rest the
 * event's properties. Every outcome is a known code; an accepted schema
 * reads back as JSON and putting it again is idempotent. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "at_config.h"
#include "at_core.h"
#include "at_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_put(int rc, const at_error_t *e)
{
    AT_ASSERT(rc == 0 || rc == AT_EPARSE || rc == AT_EINVALID || rc == AT_ECONFLICT ||
              rc == AT_ETOOBIG);
    AT_ASSERT(rc == 0 || (e->code[0] && e->message[0]));
    AT_ASSERT(rc != AT_ECONFLICT || strcmp(e->code, "incompatible_schema") == 0);
}

static void reput(at_ingest_t *in, const char *type, int version)
{
    at_buf_t out;
    at_buf_init(&out, 0);
    AT_ASSERT(at_ingest_schema_get(in, type, 0, &out) == 0);
    const char *s = strstr(out.data, ",\"schema\":");
    AT_ASSERT(s && out.data[out.len - 1] == '}');
    s += 10;
    int v = 0;
    at_error_t e;
    AT_ASSERT(at_ingest_schema_put(in, type, s, (size_t)(out.data + out.len - 1 - s), &v, &e) == 0);
    AT_ASSERT(v == version);
    at_buf_deinit(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t slen = nul ? (size_t)(nul - text) : size;
    at_config_t c;
    at_config_defaults(&c);
    c.schemas = at_xcalloc(1, sizeof *c.schemas);
    c.schemas[0].type = at_xstrdup("t");
    c.schemas[0].json = at_xstrdup("{\"required\":[\"a\"],\"properties\":{\"a\":{\"type\":"
                                   "\"number\",\"minimum\":0},\"b\":{\"enum\":[1,\"x\"]},\"c\":"
                                   "{\"items\":{\"maxLength\":3}}}}");
    c.nschemas = 1;
    at_ingest_t *in;
    at_error_t e;
    AT_ASSERT(at_ingest_new(&in, &c, NULL, &e) == 0);
    at_config_free(&c);

    int v = 0;
    int rc = at_ingest_schema_put(in, "t", text, slen, &v, &e);
    check_put(rc, &e);
    if (rc == 0)
        reput(in, "t", v);
    rc = at_ingest_schema_put(in, "u", text, slen, &v, &e);
    check_put(rc, &e);
    if (rc == 0) {
        AT_ASSERT(v == 1);
        reput(in, "u", 1);
        size_t plen = nul ? size - slen - 1 : 0;
        char *body = at_xmalloc(plen + 64);
        int n = snprintf(body, 64, "{\"type\":\"u\",\"user_id\":\"1\",\"properties\":");
        memcpy(body + n, nul ? nul + 1 : "", plen);
        body[(size_t)n + plen] = '}';
        at_batch_t b;
        at_batch_init(&b);
        rc = at_ingest_parse(in, body, (size_t)n + plen + 1, AT_BODY_JSON, 1, 1, &b, &e);
        AT_ASSERT(rc == 0 || rc == AT_EPARSE);
        AT_ASSERT(rc != 0 || b.nevents + b.nrejects == 1);
        at_batch_deinit(&b);
        free(body);
    }
    at_ingest_free(in);
    return 0;
}
