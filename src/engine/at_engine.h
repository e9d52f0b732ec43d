/* at_engine.h - the engine's private parts shared between its files.
 *
 * THREAD SAFETY: struct attune is shared by the callers' threads (parsing,
 * queueing, reads of atomics) and the writer thread, which alone touches the
 * log, the dedup index and the rejected log.
 */
#ifndef AT_ENGINE_H
#define AT_ENGINE_H

#include "at_config.h"
#include "at_core.h"
#include "at_ingest.h"
#include "at_log.h"
#include "at_metrics.h"
#include "attune.h"
#include "rules_def.h"
#include "streams.h"
#include "watch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* One queued batch, parsed and waiting for the writer. */
typedef struct at_job {
    struct at_job *next;
    at_batch_t batch;
    attune_ingest_cb cb;
    void *ud;
    size_t cost;       /* bytes charged against max_memory */
    int64_t queued_ns; /* monotonic, for the queue-wait metric */
} at_job_t;

/* Records the engine appends itself: control records (rule changes),
 * erasures, and records a partition's processing sends to another
 * (handoffs, forwarded events). Appended by the writer with the next
 * group; done (may be NULL) runs on the writer thread once durable. */
typedef struct at_ijob {
    struct at_ijob *next;
    int src; /* the partition whose processing sent it, or -1 */
    size_t n;
    at_rec_t *recs; /* key, id and value point into data */
    void (*done)(void *ud, int status);
    void *ud;
    char data[];
} at_ijob_t;

#define AT_REJECT_CODES 8   /* distinct reject reasons counted by name */
#define AT_REJECT_RING 1000 /* rejected events kept in memory for GET /v1/rejected */

typedef struct at_engine_metrics {
    _Atomic uint64_t accepted;
    _Atomic uint64_t duplicates;
    _Atomic uint64_t clamped;
    _Atomic uint64_t batches;
    _Atomic uint64_t batches_full; /* refused with 429 */
    _Atomic uint64_t write_errors;
    _Atomic uint64_t commits; /* group commits (fsyncs under batch) */
    _Atomic uint64_t dedup_evicted;
    _Atomic uint64_t dedup_size;
    _Atomic uint64_t dedup_bytes;
    _Atomic uint64_t dedup_reads;
    _Atomic uint64_t dedup_errors;
    at_hist_t fsync;           /* seconds per log sync */
    at_hist_t commit_wait;     /* seconds from queueing to answer */
    pthread_mutex_t reject_mu; /* guards the two arrays below */
    char reject_code[AT_REJECT_CODES][32];
    uint64_t reject_count[AT_REJECT_CODES];
} at_engine_metrics_t;

struct attune {
    at_config_t cfg;
    char *log_dir;
    char *rejected_dir;
    char *schema_dir;
    at_log_t *log;
    at_log_t *rejlog;
    at_ingest_t *ingest;
    at_dedup_t *dedup; /* writer thread only */
    int partitions;

    pthread_t writer;
    pthread_mutex_t mu; /* guards the queues and stopping */
    pthread_cond_t cv;
    at_job_t *head, *tail;
    size_t queued_bytes;
    size_t queued_jobs;
    at_ijob_t *ihead, *itail;   /* internal appends */
    bool stopping;              /* no new batches */
    bool writer_stop;           /* the writer may exit once drained */
    atomic_int ready;           /* the writer recovered */
    _Atomic uint64_t ready_seq; /* processing must reach this to be ready */
    _Atomic uint64_t durable;   /* the writer's published durable end */
    atomic_int caught_up;

    /* processing (streams.c) */
    at_streams_t *streams;
    at_watch_t *watch;      /* users push connections watch (watch.c) */
    int64_t *tick_trusted;  /* [P] writer: the newest trusted time appended (AT_WM_NONE) */
    int64_t *last_append;   /* [P] writer: monotonic ms of the last record appended */
    uint64_t *last_control; /* [P] writer: hash of the last control record's value (0: none) */
    _Atomic uint64_t ticks;

    /* the rules in force (rules.c): the registry the API reads and changes */
    pthread_mutex_t rules_mu;
    at_ruleset_t *rules;
    char *rules_path;    /* DATA_DIR/rules.json */
    char **config_names; /* "segment:NAME" of the rules the config file defines */
    size_t nconfig_names;
    uint64_t rules_hash; /* hash of the dump of rules */

    pthread_mutex_t ring_mu; /* guards the rejected ring */
    char *ring[AT_REJECT_RING];
    size_t ring_next;

    at_engine_metrics_t m;
    at_placements_t *placements; /* decide.c: immutable once open */
};

/* writer.c */
void *at_engine__writer_main(void *arg);
/* Queues an internal append (takes ownership of j). Any thread. */
void at_engine__append(struct attune *a, at_ijob_t *j);
/* Builds a job holding copies of recs[0..n). */
at_ijob_t *at_engine__ijob(const at_rec_t *recs, size_t n, int src);
/* rules.c */
int at_engine__rules_open(struct attune *a, char *err, size_t errlen);
void at_engine__rules_close(struct attune *a);
/* The control record value every partition must have seen last: the
 * registry's dump (owned by the caller: free). */
char *at_engine__rules_dump(struct attune *a, size_t *len, uint64_t *hash);
/* state.c */
/* "u:42", "a:x" as they are; a bare id is a user id ("u:ID"). Returns the
 * key's length, 0 when it does not fit in cap or is empty. */
size_t at_engine__user_key(const char *id, size_t n, char *out, size_t cap);
/* The offset of partition p in a list of "P:OFFSET" positions, or -1. */
int64_t at_engine__position_for(const char *list, int p);
/* metrics.c */
void at_engine__count_reject(struct attune *a, const char *code);
void at_engine__ring_push(struct attune *a, char *json_owned);

#endif
