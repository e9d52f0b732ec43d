/* at_stream.h - the generic machinery of stream processing (DESIGN.md §6):
 * keyed state with event-time timers, the reorder buffer that turns an
 * out-of-order stream into event-time order, watermarks, and shard threads
 * that tail the log and hand each owned partition's records, in offset
 * order, to a processor. Nothing here knows what a profile or a rule is:
 * that is src/profile, src/rules and src/engine.
 *
 * THREAD SAFETY: an at_keyed_t, at_reorder_t and at_wm_t belong to the one
 * shard thread that owns their partition. at_shard_post() and
 * at_notify_*() may be called from any thread; everything else of a shard
 * runs on its thread.
 */
#ifndef AT_STREAM_H
#define AT_STREAM_H

#include "at_core.h"
#include "at_log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- keyed state ----------------------------------------------------------
 * A table of keys (namespaced user keys) to opaque value bytes, with one
 * event-time timer per key and dirty tracking for incremental checkpoints.
 * Entries are addressed by a slot number that stays the same while the key
 * lives. A deleted key keeps its slot (marked deleted) until the next
 * at_keyed_clean(), so the checkpoint can write its tombstone.
 *
 * Timers fire in (deadline, key bytes) order, a total order that does not
 * depend on the table's history: a table rebuilt from a checkpoint fires
 * its timers in the same order as the one that was never restarted. */
#define AT_KEYED_NONE UINT32_MAX
#define AT_TIMER_NONE INT64_MAX

typedef struct at_keyed at_keyed_t;

at_keyed_t *at_keyed_new(void);
void at_keyed_free(at_keyed_t *t);
/* Live keys (deleted ones not counted). */
size_t at_keyed_count(const at_keyed_t *t);
/* The slot of key, or AT_KEYED_NONE when absent or deleted. */
uint32_t at_keyed_find(const at_keyed_t *t, const char *key, size_t n);
/* The slot of key, created (with an empty value) when absent or deleted;
 * *created tells which (may be NULL). */
uint32_t at_keyed_get(at_keyed_t *t, const char *key, size_t n, bool *created);
/* The key and value of a live or deleted slot; borrowed until the slot's
 * value is next set or the slot is cleaned. */
const char *at_keyed_key(const at_keyed_t *t, uint32_t slot, size_t *n);
const uint8_t *at_keyed_value(const at_keyed_t *t, uint32_t slot, size_t *n);
/* Replaces the value (copied) and marks the slot dirty. */
void at_keyed_set(at_keyed_t *t, uint32_t slot, const void *v, size_t n);
/* Deletes the key: value dropped, timer cancelled, slot marked dirty. */
void at_keyed_delete(at_keyed_t *t, uint32_t slot);
bool at_keyed_deleted(const at_keyed_t *t, uint32_t slot);
/* A word of the caller's per slot (e.g. a pending-list head); 0 when new. */
void *at_keyed_aux(const at_keyed_t *t, uint32_t slot);
void at_keyed_set_aux(at_keyed_t *t, uint32_t slot, void *aux);

/* Timers: one deadline per slot (AT_TIMER_NONE: none). */
void at_keyed_timer_set(at_keyed_t *t, uint32_t slot, int64_t deadline);
int64_t at_keyed_timer_get(const at_keyed_t *t, uint32_t slot);
/* The slot whose timer is first, or AT_KEYED_NONE; its deadline in *dl. */
uint32_t at_keyed_timer_first(const at_keyed_t *t, int64_t *dl);
size_t at_keyed_timers(const at_keyed_t *t);

/* Dirty slots since the last at_keyed_clean(), in the order they were first
 * made dirty. *slots is borrowed until the next call that changes t. */
size_t at_keyed_dirty(const at_keyed_t *t, const uint32_t **slots);
/* Forgets the dirty set; frees deleted slots for reuse. */
void at_keyed_clean(at_keyed_t *t);
/* Iterates live slots: start with *pos = 0; returns the next live slot or
 * AT_KEYED_NONE at the end. Order is the table's, not meaningful. */
uint32_t at_keyed_next(const at_keyed_t *t, uint32_t *pos);
/* Bytes of memory held by the table itself and its values, for metrics. */
size_t at_keyed_bytes(const at_keyed_t *t);

/* ---- string dictionary -----------------------------------------------------
 * A partition's table of the strings many users share (event types,
 * categories, time zones): each has a small id, so a profile stores the id
 * instead of the bytes. Ids are given in the order strings are first
 * interned, which processing makes deterministic (the same log gives the
 * same ids); entries are never removed, so an id held in any state stays
 * valid. Bounded: once max_entries or max_bytes is reached, intern refuses
 * and the caller stores the string itself. Checkpoints save the entries
 * added since the last one (at_sdict_dirty); restore puts them back by id,
 * in any order.
 *
 * THREAD SAFETY: one thread (the partition's shard). */
#define AT_SDICT_NONE UINT32_MAX
typedef struct at_sdict at_sdict_t;

at_sdict_t *at_sdict_new(uint32_t max_entries, size_t max_bytes);
void at_sdict_free(at_sdict_t *d);
/* The id of s, added when absent; AT_SDICT_NONE when absent and full or
 * when n is 0. */
uint32_t at_sdict_intern(at_sdict_t *d, const char *s, size_t n);
/* The same, but adding only while the dictionary is less than half full
 * (entries and bytes): for strings of which there are many (item ids), so
 * that those most profiles share (event types, categories, time zones)
 * still find room after them. */
uint32_t at_sdict_intern_half(at_sdict_t *d, const char *s, size_t n);
/* The string of id (borrowed for the dictionary's life); false when none. */
bool at_sdict_get(const at_sdict_t *d, uint32_t id, const char **s, uint32_t *n);
/* Restore: entry id is s. AT_ECORRUPT when id is taken by another string
 * or s is already another id's. */
int at_sdict_put(at_sdict_t *d, uint32_t id, const char *s, size_t n);
/* One past the largest id. */
uint32_t at_sdict_count(const at_sdict_t *d);
/* Ids added since the last at_sdict_clean: [*from, at_sdict_count()). */
void at_sdict_dirty(const at_sdict_t *d, uint32_t *from);
void at_sdict_clean(at_sdict_t *d);
/* Bytes of memory held, for metrics. */
size_t at_sdict_bytes(const at_sdict_t *d);

/* ---- reorder buffer ---------------------------------------------------------
 * Events wait here until the watermark passes them, then leave in
 * (ts, id, seq) order, the order DESIGN.md §3 gives events of one user.
 * Items are the caller's: it embeds an at_pend_t at the start of its own
 * struct, allocates and frees it.
 *
 * Events mostly arrive in time order, so the buffer is two parts: a run, a
 * ring of items each at or after the one before (an arrival at or after
 * the run's newest goes there, O(1), and the run's oldest is its first),
 * and a binary heap for the others. With tens of thousands waiting (an
 * import, a large lateness) a heap alone would walk cold memory log n
 * levels deep per event. */
typedef struct at_pend {
    int64_t ts;
    const char *id; /* borrowed from the caller's item */
    uint32_t id_len;
    uint32_t heap; /* position in the buffer, private */
    uint64_t seq;  /* the caller's tie-break of last resort (e.g. log offset) */
} at_pend_t;

typedef struct at_reorder {
    size_t n;                 /* items held */
    at_pend_t **v;            /* the heap */
    size_t nh, cap;           /* its items, capacity */
    at_pend_t **run;          /* the ring; NULL: a removed item's slot */
    size_t rhead, rlen, rcap; /* first slot, slots used (head to newest), capacity (power of 2) */
} at_reorder_t;

void at_reorder_init(at_reorder_t *r);
void at_reorder_deinit(at_reorder_t *r);
void at_reorder_push(at_reorder_t *r, at_pend_t *p);
/* The first item, or NULL. */
at_pend_t *at_reorder_first(const at_reorder_t *r);
at_pend_t *at_reorder_pop(at_reorder_t *r);
/* Takes p (which is in r) out of the buffer. */
void at_reorder_remove(at_reorder_t *r, at_pend_t *p);
/* Iterates every item, in no particular order: start with *pos = 0; NULL
 * at the end. The buffer must not change meanwhile. */
at_pend_t *at_reorder_next(const at_reorder_t *r, size_t *pos);
/* True when a orders before b. */
bool at_pend_before(const at_pend_t *a, const at_pend_t *b);

/* ---- watermarks ---------------------------------------------------------------
 * A partition's watermark is its largest trusted time (min(event time,
 * receive time)) minus the allowed lateness; none before its first event.
 * Tick records raise the largest trusted time like an event would. */
#define AT_WM_NONE INT64_MIN

typedef struct at_wm {
    int64_t max_trusted; /* AT_WM_NONE until the first event */
    int64_t lateness_ms;
} at_wm_t;

static inline int64_t at_wm_get(const at_wm_t *w)
{
    return w->max_trusted == AT_WM_NONE ? AT_WM_NONE : w->max_trusted - w->lateness_ms;
}
/* Raises the largest trusted time; returns true when the watermark moved. */
static inline bool at_wm_observe(at_wm_t *w, int64_t trusted)
{
    if (w->max_trusted != AT_WM_NONE && trusted <= w->max_trusted)
        return false;
    w->max_trusted = trusted;
    return true;
}
/* An event at ts is late when its time is at or before the watermark. */
static inline bool at_wm_late(const at_wm_t *w, int64_t ts)
{
    return w->max_trusted != AT_WM_NONE && ts <= at_wm_get(w);
}

/* ---- notifications --------------------------------------------------------------
 * A counter with a condition variable: a thread waits until the counter
 * moves past what it last saw, or a timeout. */
typedef struct at_notify {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t gen;
} at_notify_t;

void at_notify_init(at_notify_t *n);
void at_notify_deinit(at_notify_t *n);
void at_notify_signal(at_notify_t *n); /* any thread */
/* Waits until gen differs from *seen or timeout_ms passes; updates *seen. */
void at_notify_wait(at_notify_t *n, uint64_t *seen, int timeout_ms);

/* ---- shards ------------------------------------------------------------------------
 * A shard thread owns whole partitions. It tails the log with its own
 * read-only view, up to the durable sequence number the writer publishes
 * (records past it may not survive a power cut and are not processed yet),
 * and calls the processor for each record of an owned partition in offset
 * order. Between records it runs messages posted from other threads. */
typedef struct at_shard at_shard_t;

typedef struct at_shard_msg at_shard_msg_t;
struct at_shard_msg {
    at_shard_msg_t *next;
    /* Runs on the shard thread; owns m from then on. */
    void (*fn)(at_shard_msg_t *m, void *ud);
};

typedef struct at_shard_ops {
    /* A record of an owned partition; pointers valid for the call only. */
    void (*record)(void *ud, const at_rec_t *rec);
    /* After each batch of records (outputs can be written out here). May
     * be NULL. */
    void (*flush)(void *ud);
    /* The shard caught up with the durable end and is about to wait;
     * also called about every idle_ms while idle. */
    void (*idle)(void *ud);
} at_shard_ops_t;

typedef struct at_shard_opts {
    const char *log_dir;
    int partitions;
    const bool *owned;   /* [partitions]: true for the partitions of this shard */
    const int64_t *from; /* [partitions]: first offset to process of each owned one */
    const _Atomic uint64_t
        *durable_seq; /* global sequence number below which records are durable */
    int idle_ms;      /* default 100 */
    int batch;        /* records between message checks; default 256 */
    at_shard_ops_t ops;
    void *ud;
    const char *name; /* thread name, e.g. "shard-0" */
} at_shard_opts_t;

/* Starts the thread. Returns 0 or <0 (message in err). */
int at_shard_start(at_shard_t **out, const at_shard_opts_t *o, char *err, size_t errlen);
/* Wakes the shard: the durable end moved. Any thread. */
void at_shard_wake(at_shard_t *s);
/* Queues m to run on the shard's thread. Any thread. Returns AT_ECLOSED
 * (m not taken) once the shard is stopping. */
int at_shard_post(at_shard_t *s, at_shard_msg_t *m);
/* Processes everything up to the durable end as it is now, runs the queued
 * messages, stops the thread and frees s. Messages posted later are
 * refused. */
void at_shard_stop(at_shard_t *s);
/* Records processed so far (any thread). */
uint64_t at_shard_processed(const at_shard_t *s);
/* The global sequence number of the next record the shard will read. */
uint64_t at_shard_position(const at_shard_t *s);
/* 1 while the thread is running, -errno once it stopped on an error (the
 * log could not be read). */
int at_shard_status(const at_shard_t *s);

/* ---- compact encoding of state ----------------------------------------------
 * Values in keyed state are encoded with these: LEB128 varints, zigzag for
 * signed numbers, length-prefixed strings, little-endian floats. */
typedef struct at_pstr {
    const char *s; /* not NUL-terminated */
    uint32_t n;
} at_pstr_t;

/* Encoding is on the per-event path: inline, one capacity check each. */
static inline void at_enc_varint(at_buf_t *b, uint64_t v)
{
    if (b->cap - b->len <= 10)
        AT_ASSERT(at_buf_reserve(b, 10) == 0);
    uint8_t *p = (uint8_t *)b->data + b->len;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    b->len = (size_t)((char *)p - b->data);
    b->data[b->len] = '\0';
}
static inline void at_enc_zigzag(at_buf_t *b, int64_t v)
{
    at_enc_varint(b, ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63))); /* all ones when v < 0 */
}
void at_enc_str(at_buf_t *b, const char *s, size_t n);
void at_enc_f32(at_buf_t *b, float f);
void at_enc_f64(at_buf_t *b, double d);
/* A reader over encoded bytes; any read past the end sets bad. */
typedef struct at_dec {
    const uint8_t *p, *end;
    bool bad;
} at_dec_t;
uint64_t at_dec_varint_slow(at_dec_t *d);
static inline uint64_t at_dec_varint(at_dec_t *d)
{
    if (d->p < d->end && *d->p < 0x80)
        return *d->p++;
    return at_dec_varint_slow(d);
}
static inline int64_t at_dec_zigzag(at_dec_t *d)
{
    uint64_t u = at_dec_varint(d);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}
at_pstr_t at_dec_str(at_dec_t *d);
float at_dec_f32(at_dec_t *d);
double at_dec_f64(at_dec_t *d);

#endif
