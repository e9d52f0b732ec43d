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
    pthread_mutex_t mu; /* guards the queue and stopping */
    pthread_cond_t cv;
    at_job_t *head, *tail;
    size_t queued_bytes;
    size_t queued_jobs;
    bool stopping;
    atomic_int ready;

    pthread_mutex_t ring_mu; /* guards the rejected ring */
    char *ring[AT_REJECT_RING];
    size_t ring_next;

    at_engine_metrics_t m;
};

/* writer.c */
void *at_engine__writer_main(void *arg);
/* metrics.c */
void at_engine__count_reject(struct attune *a, const char *code);
void at_engine__ring_push(struct attune *a, char *json_owned);

#endif
