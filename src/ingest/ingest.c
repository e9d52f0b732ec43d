/* ingest.c - the ingest object: limits, the field mapping table compiled
 * from the config and the Segment spec's names, and the schema registry.
 *
 * A canonical field (type, user_id, ...) may come from several source
 * paths; they are tried in order: the config's mappings (the operator said
 * so), then the canonical name itself, then the Segment names that are
 * understood out of the box (docs/events.md, "Field mapping").
 */
#include "ingest_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const at_ingest__field_names[AT_F_NFIELDS] = {
    [AT_F_TYPE] = "type",
    [AT_F_USER_ID] = "user_id",
    [AT_F_ANONYMOUS_ID] = "anonymous_id",
    [AT_F_EVENT_ID] = "event_id",
    [AT_F_SESSION_ID] = "session_id",
    [AT_F_ITEM_ID] = "item_id",
    [AT_F_CATEGORY] = "category",
    [AT_F_TIMESTAMP] = "timestamp",
};

/* The Segment spec's names, tried after the canonical name. */
static const struct {
    int field;
    const char *from;
} at_ingest__builtin[] = {
    {AT_F_TYPE, "event"},
    {AT_F_USER_ID, "userId"},
    {AT_F_ANONYMOUS_ID, "anonymousId"},
    {AT_F_EVENT_ID, "messageId"},
    {AT_F_SESSION_ID, "sessionId"},
    {AT_F_ITEM_ID, "properties.product_id"},
    {AT_F_CATEGORY, "properties.category"},
    {AT_F_TIMESTAMP, "originalTimestamp"},
};

/* Top-level names with a fixed meaning besides the sources. */
static const struct {
    const char *name;
    uint8_t kind;
} at_ingest__fixed[] = {
    {"context", AT_TOP_CONTEXT},     {"properties", AT_TOP_PROPERTIES}, {"traits", AT_TOP_TRAITS},
    {"write_key", AT_TOP_WRITE_KEY}, {"sentAt", AT_TOP_SENT_AT},
};

/* Index into in->top of the top-level name s[0..n), or -1. Thread: any. */
int at_ingest__top_find(const at_ingest_t *in, const char *s, size_t n)
{
    for (unsigned h = at_ingest__top_hash(s, n);; h = (h + 1) & 255u) {
        int i = in->top_slot[h];
        if (!i)
            return -1;
        const at_topname_t *t = &in->top[i - 1];
        if (t->len == n && memcmp(t->name, s, n) == 0)
            return i - 1;
    }
}

/* Index of the top-level name (added when new), or AT_ETOOBIG. */
static int at_ingest__top_add(at_ingest_t *in, const char *s, size_t n, uint8_t kind)
{
    int i = at_ingest__top_find(in, s, n);
    if (i >= 0) {
        if (kind != AT_TOP_SOURCE)
            in->top[i].kind = kind;
        return i;
    }
    if (in->ntop == AT_INGEST_MAX_TOP)
        return AT_ETOOBIG;
    at_topname_t *t = &in->top[in->ntop];
    t->name = at_xstrndup(s, n);
    t->len = (uint32_t)n;
    t->kind = kind;
    unsigned h = at_ingest__top_hash(s, n);
    while (in->top_slot[h])
        h = (h + 1) & 255u;
    in->top_slot[h] = (uint8_t)(++in->ntop);
    return (int)in->ntop - 1;
}

static int at_ingest__field_of(const char *name)
{
    for (int f = 0; f < AT_F_NFIELDS; f++)
        if (strcmp(at_ingest__field_names[f], name) == 0)
            return f;
    return -1;
}

/* Splits the dotted path and appends it to field f's sources. */
static int at_ingest__add_source(at_ingest_t *in, int f, const char *path, at_error_t *err)
{
    size_t n = strlen(path), nsegs = 1;
    for (size_t i = 0; i < n; i++)
        nsegs += path[i] == '.';
    at_source_t src = {.text = at_xstrdup(path), .nsegs = nsegs, .slot = -1};
    src.segs = at_xcalloc(nsegs, sizeof *src.segs);
    src.seg_lens = at_xcalloc(nsegs, sizeof *src.seg_lens);
    const char *s = path;
    int rc = 0;
    for (size_t k = 0; k < nsegs; k++) {
        const char *dot = strchr(s, '.');
        size_t len = dot ? (size_t)(dot - s) : strlen(s);
        src.segs[k] = at_xstrndup(s, len);
        src.seg_lens[k] = (uint32_t)len;
        if (len == 0 && rc == 0)
            rc = at_error_set(err, AT_EINVALID, "invalid_config", "mappings",
                              "mapping from \"%s\": empty path segment", path);
        s = dot ? dot + 1 : s + len;
    }
    if (rc == 0 &&
        (src.top = at_ingest__top_add(in, src.segs[0], src.seg_lens[0], AT_TOP_SOURCE)) < 0)
        rc = at_error_set(err, AT_ETOOBIG, "invalid_config", "mappings", "too many mappings");
    if (rc == 0 && nsegs == 1)
        in->top[src.top].consumed = true;
    in->sources[f] = at_xrealloc(in->sources[f], (in->nsources[f] + 1) * sizeof src);
    in->sources[f][in->nsources[f]++] = src;
    return rc;
}

static int at_ingest__build_mappings(at_ingest_t *in, const at_config_t *cfg, at_error_t *err)
{
    int ix[AT_ARRAY_LEN(at_ingest__fixed)];
    for (size_t k = 0; k < AT_ARRAY_LEN(at_ingest__fixed); k++) {
        ix[k] = at_ingest__top_add(in, at_ingest__fixed[k].name, strlen(at_ingest__fixed[k].name),
                                   at_ingest__fixed[k].kind);
        AT_ASSERT(ix[k] >= 0);
    }
    in->ix_context = ix[0];
    in->ix_properties = ix[1];
    in->ix_traits = ix[2];
    in->ix_write_key = ix[3];
    in->ix_sent_at = ix[4];
    int rc = 0;
    for (size_t i = 0; i < cfg->nmappings && rc == 0; i++) {
        const at_config_map_t *m = &cfg->mappings[i];
        int f = m->to ? at_ingest__field_of(m->to) : -1;
        if (f < 0 || !m->from)
            return at_error_set(err, AT_EINVALID, "invalid_config", "mappings",
                                "mapping to \"%s\": not a canonical field (type, user_id, "
                                "anonymous_id, event_id, session_id, item_id, category, "
                                "timestamp)",
                                m->to ? m->to : "");
        rc = at_ingest__add_source(in, f, m->from, err);
    }
    for (int f = 0; f < AT_F_NFIELDS && rc == 0; f++)
        rc = at_ingest__add_source(in, f, at_ingest__field_names[f], err);
    for (size_t k = 0; k < AT_ARRAY_LEN(at_ingest__builtin) && rc == 0; k++)
        rc =
            at_ingest__add_source(in, at_ingest__builtin[k].field, at_ingest__builtin[k].from, err);
    return rc;
}

static int64_t at_ingest__clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* See at_ingest.h. Thread: any; the result may be shared by threads. */
int at_ingest_new(at_ingest_t **out, const at_config_t *cfg, const char *schema_dir,
                  at_error_t *err)
{
    at_ingest_t *in = at_xcalloc(1, sizeof *in);
    in->max_event_bytes = at_ingest__clamp(cfg->max_event_bytes, 64, (int64_t)1 << 30);
    in->max_batch_events = (int)at_ingest__clamp(cfg->max_batch_events, 1, 1 << 24);
    in->max_field_length = (int)at_ingest__clamp(cfg->max_field_length, 1, 1 << 24);
    in->max_depth = (int)at_ingest__clamp(cfg->max_depth, 1, 256);
    in->max_future_ms = at_ingest__clamp(cfg->max_future_ms, 0, INT64_MAX / 4);
    int rc = at_ingest__build_mappings(in, cfg, err);
    if (rc == 0)
        at_ingest__scan_plan(in);
    if (rc == 0 && (rc = at_ingest__registry_init(&in->reg, cfg, schema_dir, err)) == 0)
        in->has_reg = true;
    if (rc < 0) {
        at_ingest_free(in);
        in = NULL;
    }
    *out = in;
    return rc;
}

/* Frees in and everything it owns; NULL is fine. Thread: no parse or
 * schema call may be running. */
void at_ingest_free(at_ingest_t *in)
{
    if (!in)
        return;
    for (int f = 0; f < AT_F_NFIELDS; f++) {
        for (size_t i = 0; i < in->nsources[f]; i++) {
            at_source_t *s = &in->sources[f][i];
            for (size_t k = 0; k < s->nsegs; k++)
                free(s->segs[k]);
            free(s->segs);
            free(s->seg_lens);
            free((char *)s->text);
        }
        free(in->sources[f]);
    }
    for (size_t i = 0; i < in->ntop; i++)
        free((char *)in->top[i].name);
    if (in->has_reg)
        at_ingest__registry_deinit(&in->reg);
    free(in);
}
