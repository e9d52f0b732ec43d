/* fuzz_reco_item.c - arbitrary bytes as a catalog item (one item of POST
 * /v1/items) and as an item's checkpoint value.
 *
 * The item: at_reco_item_value either refuses it with a code, a message
 * and (for a JSON object) the field, or gives a canonical value that
 * at_reco_catalog accepts and that is itself accepted again unchanged by
 * at_reco_item_value (the canonical form is a fixed point). The value:
 * at_reco_restore either refuses it or restores an item whose encoding
 * (read back through a full round of at_reco_changes) restores again to
 * the same digest. Nothing may crash.
 */
#include "at_reco.h"

#include <stdlib.h>
#include <string.h>

static void fz_restore(void *ud, const char *key, size_t klen, const void *val, size_t vlen)
{
    if (at_reco_restore(ud, key, klen, val, vlen) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    at_reco_cfg_t rc;
    at_profile_cfg_t pc;
    at_reco_cfg_defaults(&rc);
    at_profile_cfg_defaults(&pc);
    at_reco_part_t *rp = at_reco_part_new(&rc, &pc);
    at_buf_t b, b2;
    at_buf_init(&b, 0);
    at_buf_init(&b2, 0);
    at_error_t err;
    memset(&err, 0, sizeof err);
    char *id = NULL, *id2 = NULL;
    size_t n = 0, n2 = 0;
    int r = at_reco_item_value((const char *)data, size, &b, &id, &n, &err);
    if (r == 0) {
        if (!n || at_reco_catalog(rp, b.data, b.len, 1) != 0)
            abort();
        if (at_reco_item_value(b.data, b.len, &b2, &id2, &n2, &err) != 0 || b2.len != b.len ||
            memcmp(b2.data, b.data, b.len) != 0 || n2 != n || memcmp(id, id2, n) != 0)
            abort();
        free(id);
        free(id2);
    } else if (!err.code[0] || !err.message[0]) {
        abort();
    }
    /* the same bytes as a checkpoint value of item 0 */
    char key[5] = {AT_RECO_KEY, 0, 0, 0, 0};
    at_reco_part_t *q = at_reco_part_new(&rc, &pc);
    if (at_reco_restore(q, key, sizeof key, data, size) == 0) {
        at_reco_part_t *q2 = at_reco_part_new(&rc, &pc);
        at_reco_changes(q, true, data[0], data[1], fz_restore, q2);
        if (at_reco_digest(q) != at_reco_digest(q2))
            abort();
        at_reco_part_free(q2);
    }
    at_reco_part_free(q);
    at_buf_deinit(&b);
    at_buf_deinit(&b2);
    at_reco_part_free(rp);
    return 0;
}
