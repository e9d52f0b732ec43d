/* canon_test.h - what test_canon.c and fuzz_engine_canon.c share: a
 * processor whose rule set reads event fields by paths of every kind (top
 * level, context, properties, array elements, nested, missing), and the
 * comparison of the reader of canonical events (src/engine/proc_canon.c)
 * with the event's tree on one event. */
#ifndef CANON_TEST_H
#define CANON_TEST_H

#include "proc_int.h"

#include <stdio.h>
#include <string.h>

static const char *const g_filters[] = {
    "type == \"view_item\" || item_id == \"987\" || category == \"x\" || event_id == \"e\"",
    "properties.price > 1 || properties.quantity == 2 || properties.currency == \"EUR\" || "
    "properties.title == \"t\" || properties.sku == \"s\"",
    "properties.items[0].item_id == \"a\" || properties.items[1].category == \"b\" || "
    "properties.items[2] == 1 || properties.list[0] == 1",
    "context.device == \"mobile\" || context.timezone == \"UTC\" || context.page.session == "
    "\"s\" || context.locale == \"en\" || context.referrer == \"r\"",
    "properties.extra == \"web\" || context.x[1] == 2 || properties[0] == 1 || context[1] == 2",
    "properties.a.b.c == 1 || properties.b[0][1] == 2 || properties.c == true || "
    "properties.k == null || properties.position >= 3",
    "session_id == \"s\" || user_id == \"u\" || anonymous_id == \"a\"",
    "properties.id == \"i\" || properties.session == \"s\" || properties.product_id == \"p\" || "
    "context.a[0].b == 1 || context.items[3].x == 1",
};

static inline at_proc_t *canon_proc(void)
{
    at_proc_cfg_t pc;
    memset(&pc, 0, sizeof pc);
    at_profile_cfg_defaults(&pc.profile);
    pc.lateness_ms = 5000;
    pc.partitions = 1;
    at_proc_t *pr = at_proc_new(0, &pc, NULL, NULL);
    at_ruleset_t *rs = at_ruleset_new();
    for (size_t i = 0; i < AT_ARRAY_LEN(g_filters); i++) {
        char def[1024];
        snprintf(def, sizeof def, "{\"name\":\"r%zu\",\"filter\":\"", i);
        size_t o = strlen(def);
        for (const char *s = g_filters[i]; *s; s++) {
            if (*s == '"')
                def[o++] = '\\';
            def[o++] = *s;
        }
        snprintf(def + o, sizeof def - o, "\",\"window\":\"10m\",\"having\":\"count > 3\"}");
        at_ruleset_t *next = NULL;
        at_error_t e;
        memset(&e, 0, sizeof e);
        AT_ASSERT(at_ruleset_change(rs, AT_CHG_PUT, AT_RULE_SEGMENT, NULL, 0, def, strlen(def),
                                    rs->next_id, 1, &next, &e) == 0);
        at_ruleset_unref(rs);
        rs = next;
    }
    at_buf_t b;
    at_buf_init(&b, 0);
    at_ruleset_dump(rs, &b);
    at_rec_t c = {
        .type = AT_REC_CONTROL, .key = "", .id = "", .value = b.data, .value_len = (uint32_t)b.len};
    at_proc_record(pr, &c);
    at_buf_deinit(&b);
    at_ruleset_unref(rs);
    AT_ASSERT(pr->nfp > 30);
    return pr;
}

static inline bool canon_same_str(at_pstr_t a, at_pstr_t b)
{
    return a.n == b.n && (!a.n || (a.s == b.s));
}

static inline bool canon_same_val(const at_val_t *a, const at_val_t *b)
{
    if (a->type != b->type || a->len != b->len || a->flags != b->flags)
        return false;
    switch (a->type) {
    case AT_VAL_STR:
    case AT_VAL_JSON:
        return a->u.s == b->u.s;
    case AT_VAL_NUM:
        return memcmp(&a->u.num, &b->u.num, sizeof a->u.num) == 0;
    case AT_VAL_BOOL:
        return a->u.b == b->u.b;
    default:
        return true;
    }
}

/* On canonical event json: 0 when the reader declines, 1 when it gives
 * the tree's view; else the reader's view differs and *why says where. */
static inline int canon_diff(at_proc_t *pr, const char *json, size_t len, const char **why)
{
    at_pevent_t a, b;
    at_val_t *sa = at_arena_alloc(&pr->arena, (pr->nfp + 1) * sizeof *sa);
    at_val_t *sb = at_arena_alloc(&pr->arena, (pr->nfp + 1) * sizeof *sb);
    *why = NULL;
    int rc = 1;
    AT_ASSERT(at_proc__view_tree(pr, json, len, 7, &b, sb));
    if (!at_proc__canon(pr, json, len, 7, &a, sa)) {
        rc = 0;
        goto out;
    }
    bool same = a.ts == b.ts && canon_same_str(a.type, b.type) && canon_same_str(a.item, b.item) &&
                canon_same_str(a.category, b.category) && canon_same_str(a.tz, b.tz) &&
                canon_same_str(a.traits, b.traits) && a.nitems == b.nitems && !a.items == !b.items;
    for (size_t i = 0; same && i < a.nitems; i++)
        same = canon_same_str(a.items[i].item, b.items[i].item) &&
               canon_same_str(a.items[i].category, b.items[i].category);
    if (!same) {
        *why = "the profile's fields";
        rc = -1;
    }
    for (size_t i = 0; rc > 0 && i < pr->nfp; i++) {
        if (!canon_same_val(&sa[i], &sb[i])) {
            *why = pr->rs->fields[i];
            rc = -1;
        }
    }
out:
    at_arena_reset(&pr->arena);
    return rc;
}

#endif
