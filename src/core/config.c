/* config.c - the engine's settings: one table, and everything driven by it.
 *
 * Each row of at_config__table names a setting by its dotted YAML path,
 * says where it lives in at_config_t, its type, bounds, default and help.
 * Defaults, command-line overrides (at_config_set), the YAML loader and the
 * Markdown reference (at_config_doc, docs/configuration.md) all read the
 * table, so a setting is added in one place. Defaults are written in the
 * same syntax a user would type and go through the same parser.
 *
 * The YAML file is read with libyaml's document API. Errors name the line
 * and column of the offending node: "LINE:COL: reason".
 */
#include "at_config.h"
#include "at_core.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "config_int.h"

#define AT_CONFIG_MAX_FILE (16u << 20)  /* a config file larger than this is a mistake */
#define AT_CONFIG_MAX_DEPTH 32          /* nesting of a schema */
#define AT_CONFIG_MAX_SCHEMA (1u << 20) /* bytes of one schema as JSON */

typedef enum {
    AT_CFG_STRING,   /* char * */
    AT_CFG_INT,      /* int */
    AT_CFG_INT64,    /* int64_t */
    AT_CFG_SIZE,     /* int64_t bytes */
    AT_CFG_DURATION, /* int64_t ms */
    AT_CFG_BOOL,     /* int 0/1 */
    AT_CFG_ENUM,     /* int (an index into choices) */
    AT_CFG_LIST,     /* char **, NULL-terminated */
    AT_CFG_KEYS,     /* keys / nkeys */
    AT_CFG_MAPPING,  /* mappings / nmappings */
    AT_CFG_SCHEMAS,  /* schemas / nschemas */
    AT_CFG_RULES,    /* at_config_rules_t: a list of segment or trigger definitions */
    AT_CFG_WEBHOOKS, /* webhooks / nwebhooks (config_sinks.c) */
} at_config__type_t;

typedef struct at_config__setting {
    const char *name; /* dotted YAML path: "listen", "http.max_header_bytes" */
    at_config__type_t type;
    size_t off;                 /* offset of the field in at_config_t */
    const char *def;            /* default in flag syntax; NULL = empty */
    int64_t min, max;           /* bounds of numeric types */
    const char *const *choices; /* ENUM values, or the allowed STRING values */
    int (*check)(const char *v, char *why, size_t whylen); /* extra STRING check */
    const char *help;
} at_config__setting_t;

static const char *const at_config__fsync_names[] = {"always", "batch", "never", NULL};
static const char *const at_config__level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const at_config__scope_names[] = {"ingest", "read", "admin", NULL};
static const char *const at_config__canonical[] = {"type",      "user_id",    "anonymous_id",
                                                   "event_id",  "item_id",    "category",
                                                   "timestamp", "session_id", NULL};

static int at_config__check_listen(const char *v, char *why, size_t whylen);

#define OFF(f) offsetof(at_config_t, f)
#define KIB 1024LL
#define MIB (1024LL * 1024)
#define GIB (1024LL * 1024 * 1024)
#define DAY_MS (86400LL * 1000)

/* THE table. Keep the rows in the order the documentation shows them. */
static const at_config__setting_t at_config__table[] = {
    {"listen", AT_CFG_STRING, OFF(listen), "127.0.0.1:8080", 0, 0, NULL, at_config__check_listen,
     "Address the HTTP server binds, HOST:PORT (`[::1]:8080` for IPv6, `:8080` or "
     "`0.0.0.0:8080` for all interfaces). Without `keys` only a loopback address is allowed."},
    {"data_dir", AT_CFG_STRING, OFF(data_dir), "./attune-data", 0, 0, NULL, NULL,
     "Directory holding the event log, checkpoints and state."},
    {"partitions", AT_CFG_INT, OFF(partitions), "0", 0, 4096, NULL, NULL,
     "Number of log partitions. Fixed when the data directory is created; a user key's "
     "partition is murmur2(key) mod this, as in Kafka. 0: 16 for a new data directory, the "
     "existing count otherwise; another count than the existing one is an error."},
    {"shards", AT_CFG_INT, OFF(shards), "1", 1, 4096, NULL, NULL,
     "Processing threads; each owns whole partitions (at most `partitions`)."},
    {"fsync", AT_CFG_ENUM, OFF(fsync), "batch", 0, 0, at_config__fsync_names, NULL,
     "When the log is flushed to disk before an answer: every record, once per batch, or "
     "never (left to the OS)."},
    {"max_memory", AT_CFG_SIZE, OFF(max_memory), "256MiB", MIB, 1LL << 50, NULL, NULL,
     "Bytes of request data that may wait in queues; past this ingestion answers 429."},
    {"log_level", AT_CFG_STRING, OFF(log_level), "info", 0, 0, at_config__level_names, NULL,
     "Least severe level written to stderr."},

    {"http.threads", AT_CFG_INT, OFF(http_threads), "1", 1, 256, NULL, NULL,
     "HTTP event-loop threads."},
    {"http.max_header_bytes", AT_CFG_SIZE, OFF(max_header_bytes), "16KiB", KIB, MIB, NULL, NULL,
     "Largest request head (request line and headers); larger gets 431."},
    {"http.max_body_bytes", AT_CFG_SIZE, OFF(max_body_bytes), "1MiB", KIB, GIB, NULL, NULL,
     "Largest request body, and so the largest event batch in bytes; larger gets 413."},
    {"http.idle_timeout", AT_CFG_DURATION, OFF(idle_timeout_ms), "60s", 100, DAY_MS, NULL, NULL,
     "A keep-alive connection idle this long is closed."},
    {"http.request_timeout", AT_CFG_DURATION, OFF(request_timeout_ms), "10s", 100, DAY_MS, NULL,
     NULL, "A whole request must arrive within this long after its first byte."},
    {"http.max_connections", AT_CFG_INT, OFF(max_connections), "10000", 1, 1000000, NULL, NULL,
     "Open connections beyond this are refused."},
    {"http.cors_origins", AT_CFG_LIST, OFF(cors_origins), NULL, 0, 0, NULL, NULL,
     "Origins allowed by CORS, e.g. `[\"https://shop.example.com\"]`; `*` allows any. As a "
     "flag: comma-separated."},

    {"push.heartbeat", AT_CFG_DURATION, OFF(push_heartbeat_ms), "15s", 100, DAY_MS, NULL, NULL,
     "Push streams (GET /v1/users/{id}/stream, /v1/ws) get a heartbeat this often: an SSE "
     "comment, a WebSocket ping."},
    {"push.max_buffer", AT_CFG_SIZE, OFF(push_max_buffer), "64KiB", KIB, 64 * MIB, NULL, NULL,
     "Bytes a push connection may have waiting to be sent; what does not fit is dropped, "
     "counted and announced to the client with an `event: dropped` message."},
    {"push.token_secret", AT_CFG_STRING, OFF(push_token_secret), NULL, 0, 0, NULL, NULL,
     "Secret that signs stream tokens (POST /v1/users/{id}/stream-token, HMAC-SHA256). Unset: "
     "a random secret per start, so tokens do not survive a restart."},
    {"push.token_ttl", AT_CFG_DURATION, OFF(push_token_ttl_ms), "15m", 1000, DAY_MS, NULL, NULL,
     "How long a stream token is valid."},
    {"push.reco_interval", AT_CFG_DURATION, OFF(push_reco_interval_ms), "1s", 0, 3600000, NULL,
     NULL, "Least time between two `recommendations` messages to one push connection."},

    {"events.max_event_bytes", AT_CFG_SIZE, OFF(max_event_bytes), "32KiB", 64, 16 * MIB, NULL, NULL,
     "Largest single event, in bytes of JSON."},
    {"events.max_batch_events", AT_CFG_INT, OFF(max_batch_events), "500", 1, 100000, NULL, NULL,
     "Most events in one request."},
    {"events.max_field_length", AT_CFG_INT, OFF(max_field_length), "1024", 1, 1 << 20, NULL, NULL,
     "Longest string value of an event field, in bytes."},
    {"events.max_depth", AT_CFG_INT, OFF(max_depth), "8", 1, 64, NULL, NULL,
     "Deepest nesting of objects and arrays in an event."},
    {"events.max_future", AT_CFG_DURATION, OFF(max_future_ms), "5m", 0, 365 * DAY_MS, NULL, NULL,
     "An event time later than receive time plus this is clamped to receive time."},

    {"dedup.horizon", AT_CFG_DURATION, OFF(dedup_horizon_ms), "24h", 0, 365 * DAY_MS, NULL, NULL,
     "How long, in receive time, an `event_id` is remembered; 0 turns dedup off."},
    {"dedup.max_per_partition", AT_CFG_INT64, OFF(dedup_max_per_partition), "1000000", 0,
     (1LL << 24) - 1 /* AT_DEDUP_MAX_CAP */, NULL, NULL,
     "Most remembered event ids per partition; older ones are evicted early (and counted)."},

    {"log.segment_bytes", AT_CFG_SIZE, OFF(segment_bytes), "64MiB", 4 * KIB, 64 * GIB, NULL, NULL,
     "Size at which a log segment file is closed and a new one started."},
    {"log.zero_ahead", AT_CFG_SIZE, OFF(zero_ahead), "0", 0, 1 * GIB, NULL, NULL,
     "How far ahead of the appends a thread writes zeros over the active segment's preallocated "
     "space, so a group commit's sync writes data only instead of also journaling the file "
     "system's conversion of fresh blocks (ext4, XFS); 0 = off. Unused with fsync never and by "
     "`attune import`."},
    {"log.retention_bytes", AT_CFG_SIZE, OFF(retention_bytes), "0", 0, INT64_MAX, NULL, NULL,
     "Total bytes of log segments kept (all partitions); the oldest whole segments go first (a "
     "size cap below the dedup horizon's worth of events shortens what dedup can rebuild after a "
     "restart); 0 = unlimited."},
    {"log.retention", AT_CFG_DURATION, OFF(retention_ms), "7d", 0, INT64_MAX, NULL, NULL,
     "How long log records are kept (by receive time, whole segments); 0 = forever. Never less "
     "than the dedup horizon."},
    {"log.rejected_max_bytes", AT_CFG_SIZE, OFF(rejected_max_bytes), "64MiB", 0, INT64_MAX, NULL,
     NULL, "Cap of the quarantine log of rejected events; the oldest are dropped past it."},

    {"keys", AT_CFG_KEYS, OFF(keys), NULL, 0, 0, at_config__scope_names, NULL,
     "API keys: a list of `{name, key, scopes}`, scopes from ingest, read, admin. Sent as "
     "`Authorization: Bearer KEY`. With no keys the server is in development mode."},
    {"mapping", AT_CFG_MAPPING, OFF(mappings), NULL, 0, 0, at_config__canonical, NULL,
     "Producer field names for the canonical fields: `{CANONICAL: SOURCE_PATH}`, e.g. "
     "`{type: event_type, user_id: customer_id, item_id: properties.sku}`."},
    {"schemas", AT_CFG_SCHEMAS, OFF(schemas), NULL, 0, 0, NULL, NULL,
     "Event schemas: `{EVENT_TYPE: SCHEMA}`, each a JSON Schema subset (type, required, "
     "properties, enum, minimum, maximum, maxLength, pattern) written in YAML."},

    {"stream.lateness", AT_CFG_DURATION, OFF(lateness_ms), "5s", 0, DAY_MS, NULL, NULL,
     "Allowed lateness: a partition's watermark is its newest trusted event time minus this; "
     "events at or before the watermark are late (they update profiles, never windows)."},
    {"stream.idle_tick", AT_CFG_DURATION, OFF(idle_tick_ms), "1s", 10, DAY_MS, NULL, NULL,
     "A partition with no record for this long gets tick records that move its watermark with "
     "the wall clock, so windows close and absence triggers fire without traffic."},
    {"stream.ticks", AT_CFG_BOOL, OFF(ticks), "true", 0, 1, NULL, NULL,
     "Write tick records. `attune import` turns them off: historical data keeps its own time."},
    {"stream.early", AT_CFG_BOOL, OFF(early), "true", 0, 1, NULL, NULL,
     "Announce transitions that are final at once (an enter on count, distinct or max compared "
     "with > or >=, a plain trigger's fire) when their event arrives, instead of when the "
     "watermark passes it."},
    {"checkpoint.interval", AT_CFG_DURATION, OFF(checkpoint_interval_ms), "10s", 0, DAY_MS, NULL,
     NULL, "How often each partition writes an incremental checkpoint; 0: only at shutdown."},
    {"state.ttl", AT_CFG_DURATION, OFF(state_ttl_ms), "30d", 0, 3650 * DAY_MS, NULL, NULL,
     "The state of a user with no event for this long (in event time) expires; 0: never."},
    {"outputs.segment_bytes", AT_CFG_SIZE, OFF(out_segment_bytes), "8MiB", 4 * KIB, 4 * GIB, NULL,
     NULL, "Preallocated size of each segment of a partition's output log."},
    {"outputs.writeback", AT_CFG_SIZE, OFF(out_writeback), "256KiB", 0, 1 * GIB, NULL, NULL,
     "Start writing a partition's output log to the disk each time this much was appended, "
     "so the sync before a checkpoint finds little left to write and does not delay the "
     "group commits' syncs; 0: leave it to the sync."},
    {"profile.half_life", AT_CFG_DURATION, OFF(half_life_ms), "7d", 0, 3650 * DAY_MS, NULL, NULL,
     "Half-life of category affinities: interest shown this long ago counts half."},
    {"profile.session_gap", AT_CFG_DURATION, OFF(session_gap_ms), "30m", 1000, DAY_MS, NULL, NULL,
     "Inactivity that ends a session."},
    {"profile.recent_items", AT_CFG_INT, OFF(recent_items), "20", 1, 100, NULL, NULL,
     "Items kept in a profile's list of recent items."},
    {"profile.max_categories", AT_CFG_INT, OFF(max_categories), "16", 1, 64, NULL, NULL,
     "Categories a profile keeps affinities for; past it the weakest is dropped."},
    /* ---- recommendations ---- */
    {"reco.neighbours", AT_CFG_INT, OFF(reco_neighbours), "100", 1, 200, NULL, NULL,
     "Neighbours (co-occurring items) kept per item and partition; past it a heavier "
     "newcomer replaces the weakest."},
    {"reco.half_life", AT_CFG_DURATION, OFF(reco_half_life_ms), "30d", 60000, 3650 * DAY_MS, NULL,
     NULL, "Half-life of co-occurrences and item popularity."},
    {"reco.pair_window", AT_CFG_DURATION, OFF(reco_pair_window_ms), "30m", 1000, DAY_MS, NULL, NULL,
     "Items one user interacts with this close together in time count as seen together."},
    {"reco.cache", AT_CFG_DURATION, OFF(reco_cache_ms), "10s", 0, 3600000, NULL, NULL,
     "How long a reading thread reuses an item's data merged over the partitions (its "
     "neighbours, popularity, availability), and every thread a trending list; 0: merged "
     "again for every read."},
    {"reco.answers", AT_CFG_INT, OFF(reco_answers), "8192", 0, 1 << 20, NULL, NULL,
     "Recommendation answers each partition keeps for `reco.answer_ttl`: the same user asking "
     "the same again, with no new event of theirs processed since, gets it from the HTTP "
     "thread without a new computation. About 1 KiB each for 10 items, held only once asked "
     "for. 0: none."},
    {"reco.answer_ttl", AT_CFG_DURATION, OFF(reco_answer_ttl_ms), "300s", 0, 3600000, NULL, NULL,
     "How long a kept recommendation answer is served while the user has no new event (their "
     "own events make it invalid at once): the most its items' aggregates can lag behind, "
     "with `reco.cache`. 0: answers are not kept."},
    {"reco.max_pairs", AT_CFG_INT, OFF(reco_max_pairs), "10", 1, 100, NULL, NULL,
     "An interaction pairs with at most this many of the user's most recent other items."},
    {"segments", AT_CFG_RULES, OFF(segments), NULL, 0, 0, NULL, NULL,
     "Segment definitions: a list of `{name, filter, group_by, window, having, when, mode, "
     "rollout}` (docs/rules.md). Each becomes a version of the segment at start."},
    {"placements", AT_CFG_RULES, OFF(placements), NULL, 0, 0, NULL, NULL,
     "Placements for POST /v1/decide: a list of `{name, variants: [{name, when}], fallback, "
     "recommendations, category, experiment: {name, holdout, arms: [{name, weight, variant}]}}` "
     "(docs/api.md). The first variant whose condition holds is chosen."},
    {"triggers", AT_CFG_RULES, OFF(triggers), NULL, 0, 0, NULL, NULL,
     "Trigger definitions: a list of `{name, on, unless, within, cooldown, when, action, mode, "
     "rollout}` (docs/rules.md)."},
    {"sinks.max_age", AT_CFG_DURATION, OFF(sinks_max_age_ms), "1h", 0, 3650 * DAY_MS, NULL, NULL,
     "Outputs whose event time is older than this when read (e.g. after a backfill) are "
     "recorded in each sink's `skipped` log and counted, not delivered; 0: no limit."},
    {"sinks.webhooks", AT_CFG_WEBHOOKS, OFF(webhooks), NULL, 0, 0, NULL, NULL,
     "Webhook sinks: a list of `{name, url, secret, events, segments, triggers, timeout, "
     "max_attempts, backoff, backoff_max, concurrency, breaker_failures, breaker_cooldown}` "
     "(docs/api.md \"Webhooks\"). Each output is POSTed, signed, to every sink that wants it."},
};

#define AT_CONFIG_NSETTINGS AT_ARRAY_LEN(at_config__table)

/* ---- fields and names ---------------------------------------------------- */

static void *at_config__field(at_config_t *c, const at_config__setting_t *s)
{
    return (char *)c + s->off;
}

/* Compares names treating '-', '_' and '.' alike, so "http-max-body-bytes"
 * finds "http.max_body_bytes". */
static bool at_config__name_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        char x = *a == '-' || *a == '.' ? '_' : *a;
        char y = *b == '-' || *b == '.' ? '_' : *b;
        if (x != y)
            return false;
        if (!x)
            return true;
    }
}

static const at_config__setting_t *at_config__find(const char *name)
{
    for (size_t i = 0; i < AT_CONFIG_NSETTINGS; i++) {
        if (at_config__name_eq(at_config__table[i].name, name))
            return &at_config__table[i];
    }
    return NULL;
}

static int at_config__choice(const char *const *choices, const char *v)
{
    for (int i = 0; choices[i]; i++) {
        if (strcmp(choices[i], v) == 0)
            return i;
    }
    return -1;
}

/* Writes "a, b or c" for a choice list into why after prefix. */
static void at_config__choices_text(const char *const *choices, char *out, size_t outlen)
{
    at_buf_t b;
    at_buf_init(&b, outlen ? outlen - 1 : 1);
    for (int i = 0; choices[i]; i++) {
        if (i)
            at_buf_puts(&b, choices[i + 1] ? ", " : " or ");
        at_buf_puts(&b, choices[i]);
    }
    (void)snprintf(out, outlen, "%s", b.data);
    at_buf_deinit(&b);
}

/* ---- freeing ------------------------------------------------------------- */

void at_config__free_list(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

static void at_config__free_keys(at_config_key_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(keys[i].name);
        free(keys[i].secret);
    }
    free(keys);
}

static void at_config__free_mappings(at_config_map_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].from);
        free(m[i].to);
    }
    free(m);
}

static void at_config__free_schemas(at_config_schema_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].type);
        free(s[i].json);
    }
    free(s);
}

static void at_config__free_rules(at_config_rules_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].json);
    free(r->v);
    r->v = NULL;
    r->n = 0;
}

/* Frees what the setting s owns in c and leaves the field empty. */
static void at_config__clear(at_config_t *c, const at_config__setting_t *s)
{
    void *f = at_config__field(c, s);
    switch (s->type) {
    case AT_CFG_STRING:
        free(*(char **)f);
        *(char **)f = NULL;
        break;
    case AT_CFG_LIST:
        at_config__free_list(*(char ***)f);
        *(char ***)f = NULL;
        break;
    case AT_CFG_KEYS:
        at_config__free_keys(c->keys, c->nkeys);
        c->keys = NULL, c->nkeys = 0;
        break;
    case AT_CFG_MAPPING:
        at_config__free_mappings(c->mappings, c->nmappings);
        c->mappings = NULL, c->nmappings = 0;
        break;
    case AT_CFG_SCHEMAS:
        at_config__free_schemas(c->schemas, c->nschemas);
        c->schemas = NULL, c->nschemas = 0;
        break;
    case AT_CFG_RULES:
        at_config__free_rules((at_config_rules_t *)f);
        break;
    case AT_CFG_WEBHOOKS:
        at_config_webhooks_free(c->webhooks, c->nwebhooks);
        c->webhooks = NULL, c->nwebhooks = 0;
        break;
    default:
        break;
    }
}

/* Frees everything c owns; c is left zeroed. Thread: the owner. */
void at_config_free(at_config_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < AT_CONFIG_NSETTINGS; i++)
        at_config__clear(c, &at_config__table[i]);
    memset(c, 0, sizeof *c);
}

/* ---- setting a value from text --------------------------------------------- */

static int at_config__parse_int(const char *v, int64_t *out)
{
    const char *p = v;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    if (*p < '0' || *p > '9')
        return AT_EINVALID;
    int64_t x = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (x > (INT64_MAX - (*p - '0')) / 10)
            return AT_EINVALID;
        x = x * 10 + (*p - '0');
    }
    if (*p)
        return AT_EINVALID;
    *out = neg ? -x : x;
    return 0;
}

static int at_config__parse_bool(const char *v, int64_t *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < AT_ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(v, no[i]) == 0)
            return *out = 0, 0;
    }
    return AT_EINVALID;
}

/* Parses v as the number kind of s and checks its bounds. */
static int at_config__number(const at_config__setting_t *s, const char *v, int64_t *x, char *why,
                             size_t whylen)
{
    int rc;
    const char *kind;
    switch (s->type) {
    case AT_CFG_SIZE:
        rc = at_parse_size(v, x), kind = "a size like 512, 64KiB, 1MiB or 10GB";
        break;
    case AT_CFG_DURATION:
        rc = at_parse_duration_ms(v, x), kind = "a duration like 250ms, 90s, 10m, 2h or 7d";
        break;
    case AT_CFG_BOOL:
        rc = at_config__parse_bool(v, x), kind = "true or false";
        break;
    default:
        rc = at_config__parse_int(v, x), kind = "an integer";
        break;
    }
    if (rc) {
        (void)snprintf(why, whylen, "%s: expected %s, got '%s'", s->name, kind, v);
        return AT_EINVALID;
    }
    if (s->type != AT_CFG_BOOL && (*x < s->min || *x > s->max)) {
        (void)snprintf(why, whylen, "%s: %s is out of range [%lld, %lld]", s->name, v,
                       (long long)s->min, (long long)s->max);
        return AT_EINVALID;
    }
    return 0;
}

/* Splits "a, b,c" into an owned NULL-terminated list (empty items dropped). */
static char **at_config__split(const char *v)
{
    size_t n = 1;
    for (const char *p = v; *p; p++)
        n += *p == ',';
    char **list = at_xcalloc(n + 1, sizeof *list);
    size_t k = 0;
    while (*v) {
        const char *end = strchr(v, ',');
        size_t len = end ? (size_t)(end - v) : strlen(v);
        const char *a = v, *b = v + len;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a)
            list[k++] = at_xstrndup(a, (size_t)(b - a));
        v += len + (end ? 1 : 0);
    }
    return list;
}

static int at_config__set_string(at_config_t *c, const at_config__setting_t *s, const char *v,
                                 char *why, size_t whylen)
{
    if (s->choices && at_config__choice(s->choices, v) < 0) {
        char list[128];
        at_config__choices_text(s->choices, list, sizeof list);
        (void)snprintf(why, whylen, "%s: '%s' is not one of %s", s->name, v, list);
        return AT_EINVALID;
    }
    if (s->check && s->check(v, why, whylen))
        return AT_EINVALID;
    char **f = at_config__field(c, s);
    free(*f);
    *f = at_xstrdup(v);
    return 0;
}

/* Sets the scalar or list setting s from the text v. Returns 0 or
 * AT_EINVALID with a reason (starting with the setting's name) in why. */
static int at_config__set_text(at_config_t *c, const at_config__setting_t *s, const char *v,
                               char *why, size_t whylen)
{
    void *f = at_config__field(c, s);
    int64_t x = 0;
    switch (s->type) {
    case AT_CFG_STRING:
        return at_config__set_string(c, s, v, why, whylen);
    case AT_CFG_LIST:
        at_config__free_list(*(char ***)f);
        *(char ***)f = at_config__split(v);
        return 0;
    case AT_CFG_ENUM: {
        int i = at_config__choice(s->choices, v);
        if (i < 0) {
            char list[128];
            at_config__choices_text(s->choices, list, sizeof list);
            (void)snprintf(why, whylen, "%s: '%s' is not one of %s", s->name, v, list);
            return AT_EINVALID;
        }
        *(int *)f = i;
        return 0;
    }
    case AT_CFG_KEYS:
    case AT_CFG_MAPPING:
    case AT_CFG_SCHEMAS:
    case AT_CFG_WEBHOOKS:
    case AT_CFG_RULES:
        (void)snprintf(why, whylen, "%s can only be set in the config file", s->name);
        return AT_EINVALID;
    default:
        break;
    }
    if (at_config__number(s, v, &x, why, whylen))
        return AT_EINVALID;
    if (s->type == AT_CFG_INT || s->type == AT_CFG_BOOL)
        *(int *)f = (int)x;
    else
        *(int64_t *)f = x;
    return 0;
}

/* Fills c with every setting's default. c need not be initialised; free
 * the result with at_config_free(). Thread: any. */
void at_config_defaults(at_config_t *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < AT_CONFIG_NSETTINGS; i++) {
        const at_config__setting_t *s = &at_config__table[i];
        char why[256];
        if (s->def && at_config__set_text(c, s, s->def, why, sizeof why) != 0)
            at_panic(__FILE__, __LINE__, why); /* a bad default is a bug in the table */
    }
}

/* Sets the setting called name (dotted, or with '-'/'_' for '.') from
 * value, as a command-line flag would. Lists take comma-separated values.
 * Returns 0 or AT_EINVALID with "reason" in err. Thread: the owner of c. */
int at_config_set(at_config_t *c, const char *name, const char *value, char *err, size_t errlen)
{
    char why[512];
    const at_config__setting_t *s = at_config__find(name);
    int rc = AT_EINVALID;
    if (!s)
        (void)snprintf(why, sizeof why, "unknown setting '%s'", name);
    else
        rc = at_config__set_text(c, s, value, why, sizeof why);
    if (rc && err && errlen)
        (void)snprintf(err, errlen, "%s", why);
    return rc;
}

/* ---- the listen address ---------------------------------------------------- */

/* Splits "HOST:PORT" / "[V6]:PORT" into host (without brackets) and port. */
static int at_config__split_listen(const char *v, char *host, size_t hostlen, long *port)
{
    const char *colon;
    const char *h = v;
    size_t hl;
    if (*v == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':')
            return AT_EINVALID;
        h = v + 1, hl = (size_t)(close - h), colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon)
            return AT_EINVALID;
        hl = (size_t)(colon - v);
        if (memchr(v, ':', hl))
            return AT_EINVALID; /* a bare IPv6 address needs brackets */
    }
    if (hl >= hostlen || strpbrk(v, " \t/"))
        return AT_EINVALID;
    memcpy(host, h, hl);
    host[hl] = '\0';
    int64_t p;
    if (at_config__parse_int(colon + 1, &p) || colon[1] == '+' || colon[1] == '-' || p > 65535)
        return AT_EINVALID;
    *port = (long)p;
    return 0;
}

static int at_config__check_listen(const char *v, char *why, size_t whylen)
{
    char host[256];
    long port;
    if (at_config__split_listen(v, host, sizeof host, &port) == 0)
        return 0;
    (void)snprintf(why, whylen, "listen: expected HOST:PORT (or [IPV6]:PORT), got '%s'", v);
    return AT_EINVALID;
}

/* True when host is localhost or a loopback address (127/8, ::1). */
static bool at_config__is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return false;
}

/* Checks the rules between settings. Returns 0 or AT_EINVALID with the
 * reason in err. Thread: any (c is only read). */
int at_config_validate(const at_config_t *c, char *err, size_t errlen)
{
    char host[256];
    long port;
    char dummy[8];
    if (!err || !errlen)
        err = dummy, errlen = sizeof dummy;
    if (c->partitions < 0 || c->partitions > 4096) {
        (void)snprintf(err, errlen, "partitions: %d is out of range [0, 4096]", c->partitions);
        return AT_EINVALID;
    }
    /* with partitions 0 the count is known only at open: shards past it
     * are then simply fewer */
    if (c->shards < 1 || (c->partitions && c->shards > c->partitions)) {
        (void)snprintf(err, errlen, "shards: %d must be between 1 and partitions (%d)", c->shards,
                       c->partitions);
        return AT_EINVALID;
    }
    if (!c->data_dir || !*c->data_dir) {
        (void)snprintf(err, errlen, "data_dir: must not be empty");
        return AT_EINVALID;
    }
    if (c->max_event_bytes > c->max_body_bytes) {
        (void)snprintf(err, errlen,
                       "events.max_event_bytes (%lld) is larger than http.max_body_bytes (%lld)",
                       (long long)c->max_event_bytes, (long long)c->max_body_bytes);
        return AT_EINVALID;
    }
    if (!c->listen || at_config__split_listen(c->listen, host, sizeof host, &port)) {
        (void)snprintf(err, errlen, "listen: expected HOST:PORT, got '%s'",
                       c->listen ? c->listen : "");
        return AT_EINVALID;
    }
    if (c->nkeys == 0 && !at_config__is_loopback(host)) {
        (void)snprintf(err, errlen,
                       "no API key is configured: refusing to listen on %s (development mode binds "
                       "to loopback only; add keys: to the config)",
                       c->listen);
        return AT_EINVALID;
    }
    return 0;
}

/* ---- the YAML loader --------------------------------------------------------- */

typedef struct at_config__loader {
    at_config_t *c;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
    const char *text; /* the input, to place reader errors */
    size_t len;
    bool seen[AT_CONFIG_NSETTINGS]; /* each setting may appear once */
    yaml_mark_t seen_at[AT_CONFIG_NSETTINGS];
} at_config__loader_t;

/* Writes "LINE:COL: message" into the loader's err; returns rc. */
__attribute__((format(printf, 4, 5))) static int
at_config__fail(at_config__loader_t *ld, yaml_mark_t m, int rc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ld->err && ld->errlen)
        (void)snprintf(ld->err, ld->errlen, "%zu:%zu: %s", m.line + 1, m.column + 1, msg);
    return rc;
}

static const char *at_config__kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

/* True for an empty value: `key:` with nothing, `~` or `null`. */
static bool at_config__is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return n->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Returns the text of a scalar node, or NULL (with err set) when n is not a
 * scalar or holds a NUL byte. what names the setting in the message. */
static const char *at_config__scalar(at_config__loader_t *ld, yaml_node_t *n, const char *what,
                                     int *rc)
{
    if (n->type != YAML_SCALAR_NODE) {
        *rc = at_config__fail(ld, n->start_mark, AT_EINVALID, "%s: expected a value, got %s", what,
                              at_config__kind(n));
        return NULL;
    }
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
        *rc = at_config__fail(ld, n->start_mark, AT_EINVALID, "%s: contains a NUL byte", what);
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

static yaml_node_t *at_config__node(at_config__loader_t *ld, int id)
{
    return yaml_document_get_node(ld->doc, id);
}

/* Loads a list setting: a YAML list of scalars, a single scalar
 * (comma-separated), or null (empty). */
static int at_config__load_list(at_config__loader_t *ld, const at_config__setting_t *s,
                                yaml_node_t *n)
{
    char ***f = at_config__field(ld->c, s);
    int rc = 0;
    if (n->type != YAML_SEQUENCE_NODE) {
        const char *v = at_config__is_null(n) ? "" : at_config__scalar(ld, n, s->name, &rc);
        if (!v)
            return rc;
        at_config__free_list(*f);
        *f = at_config__split(v);
        return 0;
    }
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **list = at_xcalloc(cnt + 1, sizeof *list);
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *item = at_config__node(ld, n->data.sequence.items.start[i]);
        const char *v = at_config__scalar(ld, item, s->name, &rc);
        if (!v)
            goto out;
        list[i] = at_xstrdup(v);
    }
    at_config__free_list(*f);
    *f = list;
    list = NULL;
out:
    at_config__free_list(list);
    return rc;
}

/* Reads the scopes of one key: a list (or comma-separated scalar) of names. */
static int at_config__load_scopes(at_config__loader_t *ld, yaml_node_t *n, int *scopes)
{
    int rc = 0;
    *scopes = 0;
    size_t cnt = n->type == YAML_SEQUENCE_NODE
                     ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
                     : 1;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *item = n->type == YAML_SEQUENCE_NODE
                                ? at_config__node(ld, n->data.sequence.items.start[i])
                                : n;
        const char *v = at_config__scalar(ld, item, "keys.scopes", &rc);
        if (!v)
            return rc;
        int k = at_config__choice(at_config__scope_names, v);
        if (k < 0)
            return at_config__fail(ld, item->start_mark, AT_EINVALID,
                                   "keys.scopes: unknown scope '%s' (ingest, read or admin)", v);
        *scopes |= 1 << k;
    }
    if (*scopes == 0)
        return at_config__fail(ld, n->start_mark, AT_EINVALID, "keys.scopes: must not be empty");
    return 0;
}

/* Loads one {name, key, scopes} item into k (owned strings). */
static int at_config__load_key(at_config__loader_t *ld, yaml_node_t *n, at_config_key_t *k)
{
    int rc = 0;
    if (n->type != YAML_MAPPING_NODE)
        return at_config__fail(ld, n->start_mark, AT_EINVALID,
                               "keys: each key must be a mapping {name, key, scopes}, got %s",
                               at_config__kind(n));
    bool has_scopes = false;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = at_config__node(ld, p->key), *vn = at_config__node(ld, p->value);
        const char *name = at_config__scalar(ld, kn, "keys", &rc);
        if (!name)
            return rc;
        if (strcmp(name, "scopes") == 0) {
            if ((rc = at_config__load_scopes(ld, vn, &k->scopes)) != 0)
                return rc;
            has_scopes = true;
            continue;
        }
        char **dst = strcmp(name, "name") == 0  ? &k->name
                     : strcmp(name, "key") == 0 ? &k->secret
                                                : NULL;
        if (!dst)
            return at_config__fail(ld, kn->start_mark, AT_EINVALID,
                                   "unknown key 'keys.%s' (name, key or scopes)", name);
        const char *v = at_config__scalar(ld, vn, "keys", &rc);
        if (!v)
            return rc;
        if (!*v)
            return at_config__fail(ld, vn->start_mark, AT_EINVALID, "keys.%s: must not be empty",
                                   name);
        free(*dst);
        *dst = at_xstrdup(v);
    }
    const char *missing = !k->name ? "name" : !k->secret ? "key" : !has_scopes ? "scopes" : NULL;
    if (missing)
        return at_config__fail(ld, n->start_mark, AT_EINVALID, "keys: '%s' is missing", missing);
    return 0;
}

/* A repeated key name or secret is almost surely a copy-paste mistake. */
static int at_config__check_key_dup(at_config__loader_t *ld, yaml_node_t *n,
                                    const at_config_key_t *keys, size_t i)
{
    for (size_t j = 0; j < i; j++) {
        if (strcmp(keys[j].name, keys[i].name) == 0)
            return at_config__fail(ld, n->start_mark, AT_EINVALID,
                                   "keys: the name '%s' is used twice", keys[i].name);
        if (strcmp(keys[j].secret, keys[i].secret) == 0)
            return at_config__fail(ld, n->start_mark, AT_EINVALID,
                                   "keys: '%s' has the same key as '%s'", keys[i].name,
                                   keys[j].name);
    }
    return 0;
}

static int at_config__load_keys(at_config__loader_t *ld, yaml_node_t *n)
{
    if (at_config__is_null(n)) {
        at_config__free_keys(ld->c->keys, ld->c->nkeys);
        ld->c->keys = NULL, ld->c->nkeys = 0;
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return at_config__fail(ld, n->start_mark, AT_EINVALID, "keys: expected a list, got %s",
                               at_config__kind(n));
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    at_config_key_t *keys = at_xcalloc(cnt ? cnt : 1, sizeof *keys);
    int rc = 0;
    size_t i;
    for (i = 0; i < cnt; i++) {
        yaml_node_t *item = at_config__node(ld, n->data.sequence.items.start[i]);
        if ((rc = at_config__load_key(ld, item, &keys[i])) != 0 ||
            (rc = at_config__check_key_dup(ld, item, keys, i)) != 0) {
            i++;
            goto out;
        }
    }
    at_config__free_keys(ld->c->keys, ld->c->nkeys);
    ld->c->keys = keys, ld->c->nkeys = cnt;
    keys = NULL;
out:
    if (keys)
        at_config__free_keys(keys, i);
    return rc;
}

static int at_config__load_mapping(at_config__loader_t *ld, yaml_node_t *n)
{
    if (at_config__is_null(n)) {
        at_config__free_mappings(ld->c->mappings, ld->c->nmappings);
        ld->c->mappings = NULL, ld->c->nmappings = 0;
        return 0;
    }
    if (n->type != YAML_MAPPING_NODE)
        return at_config__fail(ld, n->start_mark, AT_EINVALID,
                               "mapping: expected a mapping {CANONICAL: SOURCE}, got %s",
                               at_config__kind(n));
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    at_config_map_t *maps = at_xcalloc(cnt ? cnt : 1, sizeof *maps);
    size_t i;
    int rc = 0;
    for (i = 0; i < cnt; i++) {
        yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        yaml_node_t *kn = at_config__node(ld, p->key), *vn = at_config__node(ld, p->value);
        const char *to = at_config__scalar(ld, kn, "mapping", &rc);
        if (!to)
            goto out;
        if (at_config__choice(at_config__canonical, to) < 0) {
            rc = at_config__fail(ld, kn->start_mark, AT_EINVALID,
                                 "mapping: '%s' is not a canonical field (type, user_id, "
                                 "anonymous_id, event_id, item_id, category, timestamp, "
                                 "session_id)",
                                 to);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(maps[j].to, to) == 0) {
                rc = at_config__fail(ld, kn->start_mark, AT_EINVALID,
                                     "mapping: '%s' is mapped twice", to);
                goto out;
            }
        }
        const char *from = at_config__scalar(ld, vn, "mapping", &rc);
        if (!from)
            goto out;
        if (!*from) {
            rc = at_config__fail(ld, vn->start_mark, AT_EINVALID,
                                 "mapping.%s: the source field must not be empty", to);
            goto out;
        }
        maps[i].to = at_xstrdup(to);
        maps[i].from = at_xstrdup(from);
    }
    at_config__free_mappings(ld->c->mappings, ld->c->nmappings);
    ld->c->mappings = maps, ld->c->nmappings = cnt;
    maps = NULL;
out:
    if (maps)
        at_config__free_mappings(maps, i + 1 <= cnt ? i + 1 : cnt);
    return rc;
}

/* ---- schemas: YAML to JSON ------------------------------------------------- */

/* True when s is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool at_config__is_json_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return false;
    if (*s == '.') {
        if (*++s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

/* Appends a scalar as JSON: a plain true/false/null/number as itself,
 * anything else (and every quoted scalar) as a string. */
static int at_config__json_scalar(yaml_node_t *n, at_buf_t *out)
{
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        static const char *const words[][2] = {
            {"true", "true"},   {"True", "true"},   {"TRUE", "true"}, {"false", "false"},
            {"False", "false"}, {"FALSE", "false"}, {"null", "null"}, {"Null", "null"},
            {"NULL", "null"},   {"~", "null"},      {"", "null"},
        };
        for (size_t i = 0; i < AT_ARRAY_LEN(words); i++) {
            if (strcmp(v, words[i][0]) == 0 && strlen(v) == len)
                return at_buf_puts(out, words[i][1]);
        }
        if (strlen(v) == len && at_config__is_json_number(v))
            return at_buf_append(out, v, len);
    }
    return at_buf_json_str(out, v, len);
}

static int at_config__json(at_config__loader_t *ld, yaml_node_t *n, at_buf_t *out, int depth);

static int at_config__json_object(at_config__loader_t *ld, yaml_node_t *n, at_buf_t *out, int depth)
{
    int rc = at_buf_putc(out, '{');
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; !rc && p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = at_config__node(ld, p->key);
        if (kn->type != YAML_SCALAR_NODE)
            return at_config__fail(ld, kn->start_mark, AT_EINVALID,
                                   "schemas: a key must be a scalar, got %s", at_config__kind(kn));
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *prev = at_config__node(ld, q->key);
            if (prev->type == YAML_SCALAR_NODE &&
                prev->data.scalar.length == kn->data.scalar.length &&
                memcmp(prev->data.scalar.value, kn->data.scalar.value, kn->data.scalar.length) == 0)
                return at_config__fail(ld, kn->start_mark, AT_EINVALID,
                                       "schemas: duplicate key '%s'", kn->data.scalar.value);
        }
        if (p > n->data.mapping.pairs.start)
            rc = at_buf_putc(out, ',');
        if (!rc)
            rc = at_buf_json_str(out, (const char *)kn->data.scalar.value, kn->data.scalar.length);
        if (!rc)
            rc = at_buf_putc(out, ':');
        if (!rc)
            rc = at_config__json(ld, at_config__node(ld, p->value), out, depth + 1);
    }
    return rc ? rc : at_buf_putc(out, '}');
}

/* Appends node n as JSON to out. Returns 0, AT_ETOOBIG (out is full; the
 * caller reports it) or AT_EINVALID (err written). */
static int at_config__json(at_config__loader_t *ld, yaml_node_t *n, at_buf_t *out, int depth)
{
    if (depth > AT_CONFIG_MAX_DEPTH)
        return at_config__fail(ld, n->start_mark, AT_EINVALID,
                               "schemas: nested more than %d levels", AT_CONFIG_MAX_DEPTH);
    if (n->type == YAML_SCALAR_NODE)
        return at_config__json_scalar(n, out);
    if (n->type == YAML_MAPPING_NODE)
        return at_config__json_object(ld, n, out, depth);
    if (n->type != YAML_SEQUENCE_NODE)
        return at_config__fail(ld, n->start_mark, AT_EINVALID, "schemas: empty node");
    int rc = at_buf_putc(out, '[');
    for (yaml_node_item_t *it = n->data.sequence.items.start;
         !rc && it < n->data.sequence.items.top; it++) {
        if (it > n->data.sequence.items.start)
            rc = at_buf_putc(out, ',');
        if (!rc)
            rc = at_config__json(ld, at_config__node(ld, *it), out, depth + 1);
    }
    return rc ? rc : at_buf_putc(out, ']');
}

/* Converts one schema (a YAML mapping) to owned JSON text in *json. */
static int at_config__schema_json(at_config__loader_t *ld, const char *type, yaml_node_t *n,
                                  char **json)
{
    if (n->type != YAML_MAPPING_NODE)
        return at_config__fail(ld, n->start_mark, AT_EINVALID,
                               "schemas.%s: expected a mapping (a JSON Schema), got %s", type,
                               at_config__kind(n));
    at_buf_t out;
    at_buf_init(&out, AT_CONFIG_MAX_SCHEMA);
    int rc = at_config__json(ld, n, &out, 0);
    if (rc == AT_ETOOBIG)
        rc =
            at_config__fail(ld, n->start_mark, AT_EINVALID,
                            "schemas.%s: larger than %u bytes as JSON", type, AT_CONFIG_MAX_SCHEMA);
    if (!rc)
        *json = at_buf_steal(&out, NULL);
    at_buf_deinit(&out);
    return rc;
}

static int at_config__load_schemas(at_config__loader_t *ld, yaml_node_t *n)
{
    if (at_config__is_null(n)) {
        at_config__free_schemas(ld->c->schemas, ld->c->nschemas);
        ld->c->schemas = NULL, ld->c->nschemas = 0;
        return 0;
    }
    if (n->type != YAML_MAPPING_NODE)
        return at_config__fail(ld, n->start_mark, AT_EINVALID,
                               "schemas: expected a mapping {EVENT_TYPE: SCHEMA}, got %s",
                               at_config__kind(n));
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    at_config_schema_t *schemas = at_xcalloc(cnt ? cnt : 1, sizeof *schemas);
    size_t i;
    int rc = 0;
    for (i = 0; i < cnt; i++) {
        yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        yaml_node_t *kn = at_config__node(ld, p->key);
        const char *type = at_config__scalar(ld, kn, "schemas", &rc);
        if (!type)
            goto out;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(schemas[j].type, type) == 0) {
                rc = at_config__fail(ld, kn->start_mark, AT_EINVALID,
                                     "schemas: '%s' is defined twice", type);
                goto out;
            }
        }
        schemas[i].type = at_xstrdup(type);
        schemas[i].line = (int)kn->start_mark.line + 1;
        rc = at_config__schema_json(ld, type, at_config__node(ld, p->value), &schemas[i].json);
        if (rc)
            goto out;
    }
    at_config__free_schemas(ld->c->schemas, ld->c->nschemas);
    ld->c->schemas = schemas, ld->c->nschemas = cnt;
    schemas = NULL;
out:
    if (schemas)
        at_config__free_schemas(schemas, i + 1 <= cnt ? i + 1 : cnt);
    return rc;
}

/* ---- segments and triggers -------------------------------------------------- */

/* Where a value's text begins: plain scalars at their mark, quoted ones one
 * column further, block scalars on the next line. */
static void at_config__value_pos(yaml_node_t *v, at_config_rule_field_t *f)
{
    f->line = (int)v->start_mark.line + 1;
    f->col = (int)v->start_mark.column + 1;
    f->block = 0;
    if (v->type != YAML_SCALAR_NODE)
        return;
    switch (v->data.scalar.style) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        f->col++;
        break;
    case YAML_LITERAL_SCALAR_STYLE:
    case YAML_FOLDED_SCALAR_STYLE:
        f->block = 1;
        break;
    default:
        break;
    }
}

static int at_config__load_rules(at_config__loader_t *ld, const at_config__setting_t *s,
                                 yaml_node_t *n)
{
    at_config_rules_t *dst = (at_config_rules_t *)at_config__field(ld->c, s);
    if (at_config__is_null(n)) {
        at_config__free_rules(dst);
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return at_config__fail(ld, n->start_mark, AT_EINVALID,
                               "%s: expected a list of definitions, got %s", s->name,
                               at_config__kind(n));
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    at_config_rules_t r = {at_xcalloc(cnt ? cnt : 1, sizeof(at_config_rule_t)), 0};
    int rc = 0;
    for (size_t i = 0; i < cnt && !rc; i++) {
        yaml_node_t *d = at_config__node(ld, n->data.sequence.items.start[i]);
        at_config_rule_t *x = &r.v[r.n];
        if (d->type != YAML_MAPPING_NODE) {
            rc = at_config__fail(ld, d->start_mark, AT_EINVALID,
                                 "%s[%zu]: expected a mapping (a definition), got %s", s->name, i,
                                 at_config__kind(d));
            break;
        }
        x->line = (int)d->start_mark.line + 1;
        x->col = (int)d->start_mark.column + 1;
        for (yaml_node_pair_t *p = d->data.mapping.pairs.start;
             p < d->data.mapping.pairs.top && x->nfields < (int)AT_ARRAY_LEN(x->fields); p++) {
            yaml_node_t *kn = at_config__node(ld, p->key);
            if (kn->type != YAML_SCALAR_NODE)
                continue;
            at_config_rule_field_t *f = &x->fields[x->nfields++];
            (void)snprintf(f->name, sizeof f->name, "%s", (const char *)kn->data.scalar.value);
            at_config__value_pos(at_config__node(ld, p->value), f);
        }
        at_buf_t out;
        at_buf_init(&out, AT_CONFIG_MAX_SCHEMA);
        rc = at_config__json(ld, d, &out, 0);
        if (rc == AT_ETOOBIG)
            rc = at_config__fail(ld, d->start_mark, AT_EINVALID, "%s[%zu]: larger than %u bytes",
                                 s->name, i, AT_CONFIG_MAX_SCHEMA);
        if (!rc) {
            x->json = at_buf_steal(&out, NULL);
            r.n++;
        }
        at_buf_deinit(&out);
    }
    if (rc) {
        at_config__free_rules(&r);
        return rc;
    }
    at_config__free_rules(dst);
    *dst = r;
    return 0;
}

/* ---- walking the document ----------------------------------------------- */

/* Loads value node v for the setting s, named at key node k. */
static int at_config__load_setting(at_config__loader_t *ld, const at_config__setting_t *s,
                                   yaml_node_t *k, yaml_node_t *v)
{
    size_t idx = (size_t)(s - at_config__table);
    if (ld->seen[idx])
        return at_config__fail(ld, k->start_mark, AT_EINVALID, "%s is set twice (first at %zu:%zu)",
                               s->name, ld->seen_at[idx].line + 1, ld->seen_at[idx].column + 1);
    ld->seen[idx] = true;
    ld->seen_at[idx] = k->start_mark;
    switch (s->type) {
    case AT_CFG_KEYS:
        return at_config__load_keys(ld, v);
    case AT_CFG_MAPPING:
        return at_config__load_mapping(ld, v);
    case AT_CFG_SCHEMAS:
        return at_config__load_schemas(ld, v);
    case AT_CFG_RULES:
        return at_config__load_rules(ld, s, v);
    case AT_CFG_WEBHOOKS:
        return at_config__load_webhooks(ld->doc, v, ld->c, ld->err, ld->errlen);
    case AT_CFG_LIST:
        return at_config__load_list(ld, s, v);
    default:
        break;
    }
    int rc = 0;
    const char *text = at_config__scalar(ld, v, s->name, &rc);
    if (!text)
        return rc;
    char why[512];
    if (at_config__set_text(ld->c, s, text, why, sizeof why))
        return at_config__fail(ld, v->start_mark, AT_EINVALID, "%s", why);
    return 0;
}

/* True when some setting's name starts with "section.". */
static bool at_config__is_section(const char *section)
{
    size_t n = strlen(section);
    for (size_t i = 0; i < AT_CONFIG_NSETTINGS; i++) {
        const char *name = at_config__table[i].name;
        if (strncmp(name, section, n) == 0 && name[n] == '.')
            return true;
    }
    return false;
}

/* Finds the setting named exactly prefix + key (no '-'/'_' folding in the
 * file: it is read by people, so one spelling). */
static const at_config__setting_t *at_config__find_exact(const char *prefix, const char *key)
{
    char name[160];
    (void)snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key);
    for (size_t i = 0; i < AT_CONFIG_NSETTINGS; i++) {
        if (strcmp(at_config__table[i].name, name) == 0)
            return &at_config__table[i];
    }
    return NULL;
}

static int at_config__load_map(at_config__loader_t *ld, yaml_node_t *n, const char *section);

/* Loads one key: value pair of the root or of a section. */
static int at_config__load_pair(at_config__loader_t *ld, yaml_node_pair_t *p, const char *section)
{
    yaml_node_t *k = at_config__node(ld, p->key);
    yaml_node_t *v = at_config__node(ld, p->value);
    if (k->type != YAML_SCALAR_NODE)
        return at_config__fail(ld, k->start_mark, AT_EINVALID, "a key must be a plain name, got %s",
                               at_config__kind(k));
    const char *key = (const char *)k->data.scalar.value;
    const at_config__setting_t *s = at_config__find_exact(section, key);
    if (s)
        return at_config__load_setting(ld, s, k, v);
    if (!*section && at_config__is_section(key)) {
        if (at_config__is_null(v))
            return 0;
        if (v->type != YAML_MAPPING_NODE)
            return at_config__fail(ld, v->start_mark, AT_EINVALID,
                                   "%s: expected a mapping of settings, got %s", key,
                                   at_config__kind(v));
        return at_config__load_map(ld, v, key);
    }
    return at_config__fail(ld, k->start_mark, AT_EINVALID, "unknown key '%s%s%.*s'", section,
                           *section ? "." : "", 100, key);
}

static int at_config__load_map(at_config__loader_t *ld, yaml_node_t *n, const char *section)
{
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        int rc = at_config__load_pair(ld, p, section);
        if (rc)
            return rc;
    }
    return 0;
}

/* Reports a libyaml parser error as "LINE:COL: YAML syntax error: ...". */
static int at_config__syntax_error(at_config__loader_t *ld, yaml_parser_t *parser)
{
    yaml_mark_t m = parser->problem_mark;
    if (parser->error == YAML_READER_ERROR) {
        /* the reader reports a byte offset: turn it into a line and column */
        m.line = m.column = 0;
        for (size_t i = 0; i < parser->problem_offset && i < ld->len; i++) {
            if (ld->text[i] == '\n')
                m.line++, m.column = 0;
            else
                m.column++;
        }
    }
    if (parser->context)
        return at_config__fail(ld, m, AT_EPARSE, "YAML syntax error: %s %s",
                               parser->problem ? parser->problem : "", parser->context);
    return at_config__fail(ld, m, AT_EPARSE, "YAML syntax error: %s",
                           parser->problem ? parser->problem : "invalid input");
}

/* Loads YAML text over the values already in c (a setting present in the
 * text replaces the old value whole, lists included). On error returns
 * AT_EPARSE (not YAML) or AT_EINVALID (not a valid config), writes "LINE:COL:
 * reason" into err, and leaves c valid (possibly with some settings
 * applied): free it with at_config_free() either way. Thread: owner of c. */
int at_config_load_text(at_config_t *c, const char *text, size_t len, char *err, size_t errlen)
{
    at_config__loader_t ld = {.c = c, .err = err, .errlen = errlen, .text = text, .len = len};
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool have_doc = false, have_extra = false;
    int rc = 0;
    if (err && errlen)
        err[0] = '\0';
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    ld.doc = &doc;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = at_config__syntax_error(&ld, &parser);
        goto out;
    }
    have_doc = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || at_config__is_null(root))
        goto out; /* an empty file changes nothing */
    if (root->type != YAML_MAPPING_NODE) {
        rc = at_config__fail(&ld, root->start_mark, AT_EINVALID,
                             "the config must be a mapping of settings, got %s",
                             at_config__kind(root));
        goto out;
    }
    if ((rc = at_config__load_map(&ld, root, "")) != 0)
        goto out;
    if (!yaml_parser_load(&parser, &extra)) {
        rc = at_config__syntax_error(&ld, &parser);
        goto out;
    }
    have_extra = true;
    if (yaml_document_get_root_node(&extra))
        rc = at_config__fail(&ld, extra.start_mark, AT_EINVALID,
                             "only one YAML document is allowed");
out:
    if (have_extra)
        yaml_document_delete(&extra);
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

/* Reads the file at path and loads it with at_config_load_text; errors read
 * "PATH:LINE:COL: reason" (or "PATH: reason" when the file can't be read).
 * Returns 0, AT_EPARSE, AT_EINVALID, AT_ETOOBIG or -errno. */
int at_config_load_file(at_config_t *c, const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = at_file_read(path, AT_CONFIG_MAX_FILE, &text, &len);
    if (rc) {
        if (err && errlen)
            (void)snprintf(err, errlen, "%s: %s", path, at_strerror(rc));
        return rc;
    }
    char msg[512];
    rc = at_config_load_text(c, text, len, msg, sizeof msg);
    if (rc && err && errlen)
        (void)snprintf(err, errlen, "%s:%s", path, msg);
    free(text);
    return rc;
}

/* ---- documentation ---------------------------------------------------------- */

static const char *at_config__type_name(at_config__type_t t)
{
    static const char *const names[] = {
        [AT_CFG_STRING] = "string",
        [AT_CFG_INT] = "int",
        [AT_CFG_INT64] = "int",
        [AT_CFG_SIZE] = "size",
        [AT_CFG_DURATION] = "duration",
        [AT_CFG_BOOL] = "bool",
        [AT_CFG_ENUM] = "enum",
        [AT_CFG_LIST] = "list",
        [AT_CFG_KEYS] = "list of keys",
        [AT_CFG_MAPPING] = "map",
        [AT_CFG_SCHEMAS] = "map of schemas",
        [AT_CFG_RULES] = "list of definitions",
        [AT_CFG_WEBHOOKS] = "list of webhooks",
    };
    return names[t];
}

static int at_config__doc_row(at_buf_t *out, const at_config__setting_t *s)
{
    int rc = at_buf_printf(out, "| `%s` | %s | ", s->name, at_config__type_name(s->type));
    if (!rc)
        rc = s->def && *s->def ? at_buf_printf(out, "`%s`", s->def) : at_buf_puts(out, "(none)");
    if (!rc)
        rc = at_buf_printf(out, " | %s", s->help);
    if (!rc && s->choices && s->type != AT_CFG_KEYS && s->type != AT_CFG_MAPPING) {
        rc = at_buf_puts(out, " One of: ");
        for (int i = 0; !rc && s->choices[i]; i++)
            rc = at_buf_printf(out, "%s`%s`", i ? ", " : "", s->choices[i]);
        if (!rc)
            rc = at_buf_putc(out, '.');
    }
    if (!rc && (s->type == AT_CFG_INT || s->type == AT_CFG_INT64))
        rc = at_buf_printf(out, " Range %lld..%lld.", (long long)s->min, (long long)s->max);
    return rc ? rc : at_buf_puts(out, " |\n");
}

/* Appends the settings reference as a Markdown table to out. Returns 0 or
 * AT_ETOOBIG (out's cap). Thread: any. */
int at_config_doc(struct at_buf *out)
{
    int rc = at_buf_puts(out, "| setting | type | default | description |\n"
                              "|---|---|---|---|\n");
    for (size_t i = 0; !rc && i < AT_CONFIG_NSETTINGS; i++)
        rc = at_config__doc_row(out, &at_config__table[i]);
    return rc;
}

/* Writes the at_config_doc table to fd (for the CLI).
 * Returns 0 or -errno. Thread: any. */
int at_config_doc_print(int fd)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    int rc = at_config_doc(&b);
    const char *p = b.data;
    size_t left = b.len;
    while (!rc && left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            rc = -errno;
        else
            p += w, left -= (size_t)w;
    }
    at_buf_deinit(&b);
    return rc;
}
