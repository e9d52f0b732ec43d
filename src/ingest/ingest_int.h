/* ingest_int.h - what the files of src/ingest share and nobody else sees:
 * the JSON tree and its single-pass parser (docs/decisions/0002-json.md),
 * the JSON writer, compiled schemas, and the ingest object itself.
 *
 * THREAD SAFETY: a parser and a writer belong to one thread. Compiled
 * schemas are immutable once published in the registry.
 */
#ifndef AT_INGEST_INT_H
#define AT_INGEST_INT_H

#include "at_ingest.h"

#include <pthread.h>
#include <regex.h>
#include <string.h>

/* ---- JSON tree ----------------------------------------------------------
 * Nodes live in an arena. Strings without escapes point into the source
 * (zero copy); strings with escapes are decoded into the arena. Neither is
 * NUL-terminated: always use the lengths. Numbers keep their text exactly
 * as sent, so re-serializing never changes a number. */
enum {
    AT_JSON_NULL,
    AT_JSON_FALSE,
    AT_JSON_TRUE,
    AT_JSON_NUMBER,
    AT_JSON_STRING,
    AT_JSON_ARRAY,
    AT_JSON_OBJECT,
};

enum {
    AT_JSON_F_INT = 1,     /* number written without fraction or exponent */
    AT_JSON_F_ESC = 2,     /* string value had escapes: s is decoded */
    AT_JSON_F_KEY_ESC = 4, /* member key had escapes: key is decoded */
};

typedef struct at_json at_json_t;
struct at_json {
    uint8_t type;  /* AT_JSON_* */
    uint8_t flags; /* AT_JSON_F_* */
    uint32_t len;  /* string: bytes; number: characters; array/object: members */
    uint32_t key_len;
    uint32_t off; /* the value's bytes in the source are [off, end) */
    uint32_t end;
    const char *s;    /* string bytes or number text */
    const char *key;  /* member name when the parent is an object, else NULL */
    at_json_t *child; /* first member of an array or object */
    at_json_t *next;  /* next member of the parent */
};

/* A parser over one source text. Fields after `pos` are set by
 * at_ingest__json_init; the caller may change build_limit, base and depth
 * between values. */
typedef struct at_jparse {
    const char *src;
    size_t len;
    size_t pos;        /* next byte to read */
    at_arena_t *arena; /* nodes and decoded strings */
    char *blk;         /* bump block carved from the arena */
    size_t blk_left;
    int max_depth;       /* hard nesting limit: deeper fails the parse */
    int depth;           /* current nesting */
    size_t base;         /* nodes are built while pos - base <= build_limit */
    size_t build_limit;  /* past it the value is only checked, not built */
    bool build;          /* false: check only, return no nodes */
    size_t err_pos;      /* where the error was found */
    const char *err_msg; /* static text */
} at_jparse_t;

void at_ingest__json_init(at_jparse_t *p, const char *src, size_t len, at_arena_t *arena,
                          int max_depth);
void at_ingest__json_set_arena(at_jparse_t *p, at_arena_t *arena);
void at_ingest__json_ws(at_jparse_t *p);
int at_ingest__json_value(at_jparse_t *p, at_json_t **out);
int at_ingest__json_string(at_jparse_t *p, const char **s, uint32_t *n, uint8_t *esc);
int at_ingest__json_fail(at_jparse_t *p, size_t pos, const char *msg);
void at_ingest__json_where(const char *src, size_t pos, int *line, int *col);
int at_ingest__json_error(const at_jparse_t *p, at_error_t *err, const char *what);
int at_ingest__json_parse_all(const char *src, size_t len, at_arena_t *arena, int max_depth,
                              at_json_t **out, at_error_t *err);

/* A step on the way from a root down to a value, kept on the stack while
 * walking a tree so that an error can name the path ("properties.items[2].sku"). */
typedef struct at_jpath {
    const struct at_jpath *up;
    const char *name; /* member name, or NULL for an array element */
    uint32_t name_len;
    long index; /* array position when name is NULL */
} at_jpath_t;

/* Writes the dotted path of fr into out (n bytes, truncated). */
void at_ingest__path(const at_jpath_t *fr, char *out, size_t n);

/* Tree helpers. */
const at_json_t *at_ingest__json_get(const at_json_t *obj, const char *key, size_t n);
bool at_ingest__json_equal(const at_json_t *a, const at_json_t *b);
double at_ingest__json_number(const at_json_t *v);
int at_ingest__json_i64(const at_json_t *v, int64_t *out);

/* ---- JSON writer: compact, canonical escapes -------------------------
 * Into buffers without a cap (growth aborts only on OOM). */
static inline void at_ingest__w_need(at_buf_t *b, size_t n)
{
    if (b->cap - b->len < n + 1)
        AT_ASSERT(at_buf_reserve(b, n + 1) == 0);
}

static inline void at_ingest__w_raw(at_buf_t *b, const char *s, size_t n)
{
    at_ingest__w_need(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void at_ingest__w_str(at_buf_t *b, const char *s, size_t n, bool escaped);
void at_ingest__w_value(at_buf_t *b, const at_json_t *v);
void at_ingest__w_i64(at_buf_t *b, int64_t v);

/* ---- schemas (schema.c) --------------------------------------------------
 * The subset of JSON Schema of docs/events.md, compiled from a tree. */
enum {
    AT_ST_OBJECT = 1,
    AT_ST_STRING = 2,
    AT_ST_NUMBER = 4,
    AT_ST_INTEGER = 8,
    AT_ST_BOOLEAN = 16,
    AT_ST_ARRAY = 32,
    AT_ST_NULL = 64,
};

typedef struct at_schema_node at_schema_node_t;
typedef struct at_schema_prop {
    const char *name;
    uint32_t name_len;
    at_schema_node_t *node;
} at_schema_prop_t;

struct at_schema_node {
    unsigned types; /* AT_ST_* bits; 0 = any type */
    bool has_min, has_max;
    double min, max;
    const at_json_t *min_json, *max_json; /* as written, for messages */
    int64_t max_length;                   /* -1: none; counted in Unicode code points */
    const char *pattern;                  /* NULL: none (NUL-terminated) */
    regex_t *re;
    const at_json_t **enums; /* NULL: no enum */
    size_t nenums;
    const at_json_t **required;
    size_t nrequired;
    at_schema_prop_t *props;
    size_t nprops;
    bool additional;         /* additionalProperties; default true */
    at_schema_node_t *items; /* NULL: any items */
};

typedef struct at_schema {
    int version;
    const char *type; /* the registry's name for it, for messages */
    char *json;       /* the schema as compact JSON, NUL-terminated */
    size_t json_len;
    at_arena_t arena; /* nodes, trees, names */
    at_schema_node_t *root;
    regex_t **regexes; /* to regfree */
    size_t nregexes;
} at_schema_t;

void at_ingest__types_text(unsigned types, char *out, size_t n);
int at_ingest__schema_compile(const char *json, size_t len, at_schema_t **out, at_error_t *err);
void at_ingest__schema_free(at_schema_t *s);
int at_ingest__schema_compat(const at_schema_t *old, const at_schema_t *neu, at_error_t *err);
int at_ingest__schema_check(const at_schema_t *s, const at_json_t *props, const char *root,
                            at_error_t *err);

/* ---- the registry of schemas by type (registry.c) --------------------- */
typedef struct at_schema_type {
    char *type;
    size_t type_len;
    uint64_t hash;
    at_schema_t **versions; /* versions[i]->version == i + 1 */
    size_t nversions;
} at_schema_type_t;

typedef struct at_registry {
    pthread_rwlock_t lock;    /* readers: parse, get, list; writer: publishing a version */
    pthread_mutex_t put_lock; /* one put at a time */
    char *dir;                /* NULL: nothing is persisted */
    at_schema_type_t **types;
    size_t ntypes;
    size_t *slots; /* open addressing: index + 1 into types, 0 = empty */
    size_t nslots;
} at_registry_t;

int at_ingest__registry_init(at_registry_t *r, const at_config_t *cfg, const char *dir,
                             at_error_t *err);
void at_ingest__registry_deinit(at_registry_t *r);
/* Latest version for type; the caller holds the read lock. */
const at_schema_t *at_ingest__registry_find(const at_registry_t *r, const char *type, size_t n);

/* ---- field mapping (ingest.c) ----------------------------------------- */
enum {
    AT_F_TYPE,
    AT_F_USER_ID,
    AT_F_ANONYMOUS_ID,
    AT_F_EVENT_ID,
    AT_F_SESSION_ID,
    AT_F_ITEM_ID,
    AT_F_CATEGORY,
    AT_F_TIMESTAMP,
    AT_F_NFIELDS,
};

/* One place a canonical field may come from: a dotted path. */
typedef struct at_source {
    char **segs;
    uint32_t *seg_lens;
    size_t nsegs;
    const char *text; /* the dotted path, for error fields */
    int top;          /* index of the first segment in the top-level name table */
} at_source_t;

/* What a top-level member name means. */
enum {
    AT_TOP_OTHER,  /* unknown: goes under "extra" */
    AT_TOP_SOURCE, /* the first segment of a source path */
    AT_TOP_CONTEXT,
    AT_TOP_PROPERTIES,
    AT_TOP_TRAITS,
    AT_TOP_WRITE_KEY,
    AT_TOP_SENT_AT,
};

typedef struct at_topname {
    const char *name;
    uint32_t len;
    uint8_t kind;  /* AT_TOP_* */
    bool consumed; /* a top-level alias: never copied to "extra" */
} at_topname_t;

#define AT_INGEST_MAX_TOP 64

struct at_ingest {
    int64_t max_event_bytes;
    int max_batch_events;
    int max_field_length;
    int max_depth;
    int64_t max_future_ms;
    at_source_t *sources[AT_F_NFIELDS]; /* tried in order */
    size_t nsources[AT_F_NFIELDS];
    at_topname_t top[AT_INGEST_MAX_TOP];
    size_t ntop;
    uint8_t top_slot[256]; /* hash of a top-level name -> index + 1 into top */
    int ix_context, ix_properties, ix_traits, ix_write_key, ix_sent_at; /* into top */
    bool has_reg;
    at_registry_t reg;
};

int at_ingest__top_find(const at_ingest_t *in, const char *name, size_t n);

/* ---- one event (event.c) ---------------------------------------------- */
typedef struct at_evctx {
    at_ingest_t *in;
    at_batch_t *b;
    int64_t recv_ms;
    int partitions;
    at_arena_t *scratch; /* the current event's tree; reset between events */
    at_buf_t out;        /* canonical JSON of the current event */
    size_t events_cap;   /* capacity of b->events */
    size_t rejects_cap;  /* capacity of b->rejects */
    char recv_text[40];  /* ,"received_at":<recv_ms> */
    size_t recv_text_len;
    int64_t day;   /* the day whose date is in date[], or -1 */
    char date[16]; /* "YYYY-MM-DD" of day */
} at_evctx_t;

/* Turns the parsed event v (raw bytes [raw, raw+raw_len)) into an accepted
 * event or a reject in c->b. v is NULL when the event was not built
 * because it is larger than max_event_bytes. */
void at_ingest__event(at_evctx_t *c, int index, const at_json_t *v, const char *raw,
                      size_t raw_len);
void at_ingest__reject(at_evctx_t *c, int index, const char *raw, size_t raw_len,
                       const at_error_t *e);

#endif
