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
#include "at_json.h"

#include <pthread.h>
#include <regex.h>
#include <string.h>

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
    int slot;         /* nested path (nsegs > 1): its value slot in scan.c, else -1 */
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

/* A step of a nested source path below a top-level name, for scan.c: the
 * nested sources form a tree (properties -> product_id, category; context
 * -> page -> session), walked while the event is read. */
typedef struct at_srcstep {
    const char *name; /* the segment (the source's own copy) */
    uint32_t len;
    int16_t slot;    /* the value slot of the path that ends here, or -1 */
    int16_t child;   /* first step below this one, or -1 */
    int16_t next;    /* next step at the same level, or -1 */
    uint64_t lens;   /* bit (len + 2) % 64 of this step and the next ones */
    uint64_t firsts; /* bit name[0] % 64 of them (that of '"' for "") */
} at_srcstep_t;

#define AT_INGEST_MAX_SPATH 64 /* steps; more nested sources disable scan.c */
#define AT_INGEST_MAX_SLOTS 64
#define AT_INGEST_MAX_FSRC 32 /* sources of one field; more disable scan.c */
#define AT_INGEST_DIRECT 32   /* see top_direct */

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
    /* the single-pass path (scan.c) */
    bool scan; /* false: every event takes the tree path */
    /* top-level names by length and first byte % AT_INGEST_DIRECT: index + 1
     * into top, 0 for none, 255 when two share the place (then top_slot) */
    uint8_t top_direct[AT_INGEST_DIRECT][AT_INGEST_DIRECT];
    uint64_t top_extra;                   /* top-level names that go under "extra" */
    int16_t top_spath[AT_INGEST_MAX_TOP]; /* first nested step below each name, or -1 */
    at_srcstep_t spath[AT_INGEST_MAX_SPATH];
    size_t nspath;
    int nslots;
    uint64_t field_tops[AT_F_NFIELDS];     /* top-level names that are sources of each field */
    uint64_t field_slots[AT_F_NFIELDS];    /* nested slots that are */
    uint64_t source_tops;                  /* top-level names that are sources */
    uint8_t top_fields[AT_INGEST_MAX_TOP]; /* bit f: the name is a source of field f */
    uint8_t slot_fields[AT_INGEST_MAX_SLOTS];
    /* each field's sources in order: a top-level name, or
     * AT_INGEST_MAX_TOP + the slot of a nested one */
    uint8_t field_src[AT_F_NFIELDS][AT_INGEST_MAX_FSRC];
};

int at_ingest__top_find(const at_ingest_t *in, const char *name, size_t n);

/* The slot in top_slot where the search for a top-level name starts.
 * Cheap on purpose: it runs for every top-level member of every event,
 * and a collision costs one more probe. */
static inline unsigned at_ingest__top_hash(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned h =
        (unsigned)n * 131u + (uint8_t)s[0] * 31u + (uint8_t)s[n - 1] * 7u + (uint8_t)s[n / 2];
    return (h ^ (h >> 8)) & 255u;
}

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
    int64_t day;         /* the day whose date is in date[], or -1 */
    char date[16];       /* "YYYY-MM-DD" of day */
    int64_t parse_day;   /* scan.c: the day of the date in parse_date, or -1 */
    char parse_date[16]; /* "YYYY-MM-DD" last parsed by scan.c */
    int64_t dec_hi;      /* scan.c: ts / 100000 whose digits end at dec_text + 24, or -1 */
    char dec_text[24];
    uint8_t dec_len;
    int plain_misses; /* scan.c: events in a row its plain path gave up on */
} at_evctx_t;

/* Turns the parsed event v (raw bytes [raw, raw+raw_len)) into an accepted
 * event or a reject in c->b. v is NULL when the event was not built
 * because it is larger than max_event_bytes. */
void at_ingest__event(at_evctx_t *c, int index, const at_json_t *v, const char *raw,
                      size_t raw_len);
void at_ingest__reject(at_evctx_t *c, int index, const char *raw, size_t raw_len,
                       const at_error_t *e);
/* Appends a zeroed event to c->b and returns it (in the batch arena). */
at_event_t *at_ingest__event_new(at_evctx_t *c);
/* Writes ms (>= 0) as the 24 bytes YYYY-MM-DDTHH:MM:SS.mmmZ (no NUL). */
void at_ingest__time_text(at_evctx_t *c, int64_t ms, char out[24]);

/* ---- the single-pass path (scan.c) ------------------------------------
 * Reads the event at src[pos] (an object) and, when it is one the scan
 * handles, appends it to c->b as an accepted event exactly as the tree
 * path (at_ingest__event) would, sets *after to the position past it and
 * returns true. Otherwise it returns false having changed nothing the
 * tree path depends on, and the caller parses the same bytes into a tree.
 * The event must lie within [pos, end); bytes up to load_end may be read.
 * Requires in->scan. flags: */
enum {
    AT_SCAN_LINE = 1, /* the event is its NDJSON line: no '\n' in it, only ' ', '\t',
                       * '\r' after it up to a '\n' or load_end, where *after is */
};
bool at_ingest__scan(at_evctx_t *c, int index, const char *src, size_t pos, size_t end,
                     size_t load_end, unsigned flags, size_t *after);
/* Builds the scan's tables of in (top_extra, the nested path tree, source
 * slots) once the sources are known; clears in->scan when they do not fit. */
void at_ingest__scan_plan(at_ingest_t *in);

#endif
