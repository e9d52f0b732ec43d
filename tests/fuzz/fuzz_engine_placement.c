/* fuzz_engine_placement.c - arbitrary bytes as a placement definition and
 * a decision request: the first line is the definition (JSON, as the
 * config's loader makes it), the rest the body of POST /v1/decide.
 *
 * at_placements_new either refuses the definition with a message or
 * loads it; a loaded placement is rendered, and decided for a user with a
 * profile (events applied through a partition processor) and for one
 * without, with the request's bytes as the request. The answer must be
 * JSON with the placement's name and a variant. Nothing may crash.
 */
#include "at_json.h"
#include "proc.h"

#include <stdlib.h>
#include <string.h>

static void fz_output(void *ud, const at_proc_out_t *o)
{
    (void)ud;
    (void)o;
}

static void fz_send(void *ud, const at_rec_t *rec)
{
    (void)ud;
    (void)rec;
}

static void fz_check(const at_buf_t *b)
{
    at_arena_t a;
    at_arena_init(&a, 0);
    at_json_t *v = NULL;
    at_error_t e;
    if (at_json_parse_all(b->data, b->len, &a, 64, &v, &e) != 0 || v->type != AT_JSON_OBJECT ||
        !at_json_get(v, "variant", 7) || !at_json_get(v, "placement", 9))
        abort();
    at_arena_deinit(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t dl = nl ? (size_t)(nl - s) : size;
    char *def = at_xstrndup(s, dl);
    at_config_rule_t r = {.json = def, .line = 1, .col = 1};
    at_config_rules_t defs = {&r, 1};
    at_placements_t *ps = NULL;
    char err[512];
    if (at_placements_new(&defs, &ps, err, sizeof err) != 0) {
        if (!err[0])
            abort();
        free(def);
        return 0;
    }
    at_buf_t b;
    at_buf_init(&b, 0);
    at_placements_render(ps, &b);
    at_reco_part_t *parts[1];
    at_proc_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    at_profile_cfg_defaults(&cfg.profile);
    at_reco_cfg_defaults(&cfg.reco);
    cfg.lateness_ms = 0;
    cfg.partitions = 1;
    at_proc_ops_t ops = {fz_output, fz_send};
    at_proc_t *pr = at_proc_new(0, &cfg, &ops, NULL);
    parts[0] = at_proc_reco(pr);
    at_reco_set_t set;
    at_reco_set_init(&set, parts, 1);
    const char *ev[] = {
        "{\"type\":\"view_item\",\"user_id\":\"1\",\"item_id\":\"a\",\"category\":\"x/"
        "y\",\"ts\":1000}",
        "{\"type\":\"purchase\",\"user_id\":\"1\",\"item_id\":\"b\",\"category\":\"x\",\"ts\":"
        "2000}",
    };
    for (int i = 0; i < 2; i++) {
        at_rec_t rec = {.partition = 0,
                        .offset = i,
                        .type = AT_REC_EVENT,
                        .version = 1,
                        .recv_ms = 1000 * (i + 1),
                        .ts_ms = 1000 * (i + 1),
                        .key = "u:1",
                        .key_len = 3,
                        .id = i ? "e2" : "e1",
                        .id_len = 2,
                        .value = ev[i],
                        .value_len = (uint32_t)strlen(ev[i])};
        at_proc_record(pr, &rec);
    }
    const at_placement_t *pl = NULL;
    {
        /* the one placement, whatever its name */
        at_arena_t a;
        at_arena_init(&a, 0);
        at_json_t *v = NULL;
        at_error_t e;
        if (at_json_parse_all(def, strlen(def), &a, 32, &v, &e) == 0) { /* as loaded */
            const at_json_t *n = at_json_get(v, "name", 4);
            if (n && n->type == AT_JSON_STRING)
                pl = at_placements_find(ps, n->s, n->len);
        }
        at_arena_deinit(&a);
    }
    if (!pl)
        abort();
    const char *body = nl ? nl + 1 : "";
    size_t bl = nl ? size - dl - 1 : 0;
    for (int u = 0; u < 2; u++) {
        at_buf_reset(&b);
        at_proc_decide(pr, u ? "u:1" : "a:zz", 3 + (size_t)(u ? 0 : 1), pl, body, bl, false, 5000,
                       &set, &b);
        fz_check(&b);
    }
    at_reco_set_deinit(&set);
    at_proc_free(pr);
    at_buf_deinit(&b);
    at_placements_free(ps);
    free(def);
    return 0;
}
