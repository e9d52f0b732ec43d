/* at_config.h - the engine's configuration: defaults, the YAML file, and
 * command-line overrides. One table (src/core/config.c) lists every setting
 * with its type, default and help text; the loader, `attune check-config`
 * and docs/configuration.md all come from it.
 *
 * THREAD SAFETY: a loaded at_config_t is immutable and may be read from any
 * thread.
 */
#ifndef AT_CONFIG_H
#define AT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { AT_FSYNC_ALWAYS, AT_FSYNC_BATCH, AT_FSYNC_NEVER } at_fsync_t;

enum { AT_SCOPE_INGEST = 1, AT_SCOPE_READ = 2, AT_SCOPE_ADMIN = 4 };

typedef struct at_config_key {
    char *name;   /* label for logs and metrics */
    char *secret; /* the bearer token */
    int scopes;   /* AT_SCOPE_* bits */
} at_config_key_t;

typedef struct at_config_map {
    char *from; /* dotted source path, e.g. "customer_id" or "properties.sku" */
    char *to;   /* canonical field: type, user_id, anonymous_id, event_id, item_id,
                   category, timestamp, session_id */
} at_config_map_t;

typedef struct at_config_schema {
    char *type; /* event type */
    char *json; /* the schema as JSON text (converted from YAML) */
    int line;   /* where it was defined, for error messages */
} at_config_schema_t;

/* A segment or trigger definition from the file (DESIGN.md §5), as JSON
 * text, with where its fields' values start in the file so that an error
 * inside an expression can name the file's line and column. */
typedef struct at_config_rule_field {
    char name[24];
    int line, col; /* 1-based; col is where the text of the value begins */
    int block;     /* the value is a block scalar (| or >): its text starts on the next line */
} at_config_rule_field_t;

typedef struct at_config_rule {
    char *json;
    int line, col; /* of the definition */
    at_config_rule_field_t fields[16];
    int nfields;
} at_config_rule_t;

typedef struct at_config_rules {
    at_config_rule_t *v;
    size_t n;
} at_config_rules_t;

/* A webhook sink (DESIGN.md §6 "Outputs", docs/api.md "Webhooks"). */
typedef struct at_config_webhook {
    char *name;                  /* the sink's name: DATA_DIR/sinks/NAME, metrics label */
    char *url;                   /* http:// or https:// */
    char *secret;                /* HMAC-SHA256 key of the signature */
    int events;                  /* AT_SINK_EV_* bits; default all */
    char **segments;             /* NULL-terminated names, or NULL: all */
    char **triggers;             /* NULL-terminated names, or NULL: all */
    int64_t timeout_ms;          /* one attempt; default 5 s */
    int max_attempts;            /* default 8 */
    int64_t backoff_ms;          /* first retry delay bound; default 1 s */
    int64_t backoff_max_ms;      /* default 5 min */
    int concurrency;             /* deliveries in flight; default 4 */
    int breaker_failures;        /* consecutive failures that open the breaker; default 5 */
    int64_t breaker_cooldown_ms; /* open this long, then one probe; default 30 s */
    int line, col;               /* where it was defined */
} at_config_webhook_t;

enum { AT_SINK_EV_ENTER = 1, AT_SINK_EV_EXIT = 2, AT_SINK_EV_TRIGGER = 4, AT_SINK_EV_ALL = 7 };

typedef struct at_config {
    /* server */
    char *listen;       /* "127.0.0.1:8080" */
    char *data_dir;     /* "./attune-data" */
    int partitions;     /* fixed when the data directory is created; default 16 */
    int shards;         /* processing threads; default 1 */
    at_fsync_t fsync;   /* default batch */
    int64_t max_memory; /* bytes of queued request data; default 256 MiB */
    char *log_level;    /* debug|info|warn|error */

    /* http */
    int http_threads;           /* default 1 */
    int64_t max_header_bytes;   /* default 16 KiB */
    int64_t max_body_bytes;     /* default 1 MiB (= batch byte limit) */
    int64_t idle_timeout_ms;    /* keep-alive idle; default 60 s */
    int64_t request_timeout_ms; /* whole request must arrive within; default 10 s */
    int max_connections;        /* default 10000 */
    char **cors_origins;        /* NULL-terminated list, may be NULL */

    /* push (src/serve/push.c) */
    int64_t push_heartbeat_ms;     /* default 15 s */
    int64_t push_max_buffer;       /* bytes waiting per connection; default 64 KiB */
    char *push_token_secret;       /* NULL: random per start */
    int64_t push_token_ttl_ms;     /* default 15 min */
    int64_t push_reco_interval_ms; /* default 1 s */

    /* events */
    int64_t max_event_bytes; /* default 32 KiB */
    int max_batch_events;    /* default 500 */
    int max_field_length;    /* default 1024 bytes for string fields */
    int max_depth;           /* default 8 */
    int64_t max_future_ms;   /* clamp beyond now + this; default 5 min */

    /* dedup */
    int64_t dedup_horizon_ms;        /* default 24 h, in receive time */
    int64_t dedup_max_per_partition; /* default 1,000,000 */

    /* log */
    int64_t segment_bytes;      /* default 64 MiB */
    int64_t zero_ahead;         /* zeros written ahead of the appends; default 0 (off) */
    int64_t retention_bytes;    /* default 0 = unlimited */
    int64_t retention_ms;       /* default 7 d; 0 = unlimited */
    int64_t rejected_max_bytes; /* quarantine log cap; default 64 MiB */

    /* security */
    at_config_key_t *keys;
    size_t nkeys;

    /* field mapping and schemas */
    at_config_map_t *mappings;
    size_t nmappings;
    at_config_schema_t *schemas;
    size_t nschemas;

    /* stream processing (DESIGN.md §5, §6) */
    int64_t lateness_ms;  /* allowed lateness; default 5 s */
    int64_t idle_tick_ms; /* an idle partition's watermark moves after this; default 1 s */
    int ticks;            /* write tick records; default 1 (off for `attune import`) */
    int early;            /* announce final-at-once transitions on arrival; default 1 */
    int64_t checkpoint_interval_ms; /* default 10 s; 0: only at shutdown */
    int64_t state_ttl_ms;           /* inactive users' state expires; default 30 d; 0: never */
    int64_t out_segment_bytes;      /* output log segments; default 8 MiB */
    int64_t out_writeback;          /* output log writeback started every this many bytes */
    int64_t half_life_ms;           /* affinity half-life; default 7 d */
    int64_t session_gap_ms;         /* default 30 min */
    int recent_items;               /* default 20 */
    int max_categories;             /* default 16 */
    /* recommendations (DESIGN.md §7) */
    int reco_neighbours;         /* default 30 */
    int64_t reco_half_life_ms;   /* default 7 d */
    int64_t reco_pair_window_ms; /* default 30 min */
    int reco_max_pairs;          /* default 10 */
    int64_t reco_cache_ms;       /* default 10 s */
    int reco_answers;            /* default 4096 */
    int64_t reco_answer_ttl_ms;  /* default 60 s */
    at_config_rules_t segments;
    at_config_rules_t triggers;
    at_config_rules_t placements; /* POST /v1/decide (src/engine/decide.c) */
    /* sinks (src/sinks/) */
    int64_t sinks_max_age_ms; /* outputs older than this are recorded, not delivered; 1 h */
    at_config_webhook_t *webhooks;
    size_t nwebhooks;
} at_config_t;

/* Fills c with the defaults. Returns owned fields: free with at_config_free(). */
void at_config_defaults(at_config_t *c);
/* Loads YAML text over the values already in c. On error returns AT_EPARSE or
 * AT_EINVALID and writes "LINE:COL: reason" into err. path is used only in
 * messages. */
int at_config_load_text(at_config_t *c, const char *text, size_t len, char *err, size_t errlen);
int at_config_load_file(at_config_t *c, const char *path, char *err, size_t errlen);
/* Sets one setting by name from a string ("fsync", "always"), as a flag
 * would. Returns 0 or AT_EINVALID with a reason in err. */
int at_config_set(at_config_t *c, const char *name, const char *value, char *err, size_t errlen);
/* Checks cross-field rules (e.g. no keys => loopback only). */
int at_config_validate(const at_config_t *c, char *err, size_t errlen);
void at_config_free(at_config_t *c);

/* "90s", "10m", "2h", "7d", "250ms" -> milliseconds. */
int at_parse_duration_ms(const char *s, int64_t *ms);
/* "512", "64KiB", "1MiB", "10GiB", "1MB" -> bytes. */
int at_parse_size(const char *s, int64_t *bytes);
/* Writes the documented table of settings as Markdown to out (for docs). */
struct at_buf;
int at_config_doc(struct at_buf *out);
/* Writes the same table to the file descriptor fd (e.g. 1 for stdout).
 * Returns 0 or -errno. */
int at_config_doc_print(int fd);

/* config_sinks.c: frees a webhook list. */
void at_config_webhooks_free(at_config_webhook_t *w, size_t n);

#endif
