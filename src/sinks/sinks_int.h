/* sinks_int.h - what the files of the sinks share: a sink's state, the
 * items it is delivering, and its files (store.c).
 *
 * THREAD SAFETY: everything here belongs to the delivery thread except the
 * fields marked "any thread" (atomics, or under mu).
 */
#ifndef AT_SINKS_INT_H
#define AT_SINKS_INT_H

#include "at_config.h"
#include "at_metrics.h"
#include "at_sinks.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

enum { AT_ITEM_QUEUED, AT_ITEM_INFLIGHT };

typedef struct at_sink at_sink_t;

/* One output on its way to one sink. */
typedef struct at_sink_item {
    at_sink_t *sink;
    int partition;  /* -1: a dead letter being replayed */
    int64_t offset; /* in the output log; a replay: in the dead-letter log */
    char *json;     /* the output, owned */
    size_t len;
    char id[40];          /* the output's id: Attune-Id, Idempotency-Key */
    int64_t seq;          /* Attune-Seq */
    int64_t ts;           /* the output's event time, epoch ms */
    int attempts;         /* made so far */
    int state;            /* AT_ITEM_* */
    int64_t due_ms;       /* monotonic ms: not tried again before */
    long last_status;     /* HTTP status of the last attempt, 0: none */
    char last_error[128]; /* of the last attempt */
    int64_t read_ns;      /* monotonic ns when read off the bus */
    CURL *easy;           /* while in flight */
    struct curl_slist *hdrs;
} at_sink_item_t;

struct at_sink {
    const at_config_webhook_t *cfg;
    char dir[4096]; /* DATA_DIR/sinks/NAME */
    int partitions;
    attune_outputs_t *reader;
    int64_t *next_read;   /* per partition: the offset after the last one read */
    int64_t *pos;         /* per partition: the oldest output not finished */
    at_sink_item_t **win; /* unfinished items, in the order read */
    size_t nwin, capwin;
    size_t nlive;   /* of them, from the bus (not replays) */
    size_t nreplay; /* of them, replays */
    int inflight;
    at_sink_breaker_t br;
    uint64_t rng;
    int dead_fd, skip_fd;
    bool logs_unsynced; /* appended since the last fsync */
    uint64_t dead_end;  /* bytes of valid dead-letter log */
    bool dirty;         /* positions moved since written */
    int64_t saved_ms;   /* when they were last written */

    /* any thread */
    _Atomic uint64_t dead_done;   /* dead letters before this offset are handled */
    _Atomic uint64_t dead_target; /* a replay covers [dead_done, dead_target) */
    _Atomic bool replay_req;
    _Atomic uint64_t n_ok, n_retry, n_dead, n_skipped, n_attempts;
    _Atomic int a_inflight;
    _Atomic int a_breaker;     /* at_breaker_state_t */
    _Atomic uint64_t a_opened; /* breaker openings */
    _Atomic uint64_t a_dead;   /* current dead letters */
    at_lat_t lat;              /* read off the bus -> 2xx */
    at_lat_t lat_event;        /* the output's event time -> 2xx (wall clock) */
    pthread_mutex_t mu;        /* guards snap */
    int64_t *snap;             /* a copy of pos */
};

/* store.c: the files of a sink. Return 0 or <0 (-errno, AT_ECORRUPT). */
int at_sinks__open_files(at_sink_t *k, const char *data_dir, char *err, size_t errlen);
void at_sinks__close_files(at_sink_t *k);
/* Appends a record {id, reason, attempts, status, error, at, position,
 * output} to the dead-letter log (dead) or the skipped log. */
void at_sinks__record(at_sink_t *k, bool dead, const at_sink_item_t *it, const char *reason);
/* fsyncs the logs, then writes the positions (tmp, fsync, rename). */
int at_sinks__save(at_sink_t *k);
/* Writes the replay state (dead_done, dead_target). */
int at_sinks__save_replay(at_sink_t *k);
/* Reads the dead-letter log whole: owned data, free(). */
int at_sinks__read_dead(const at_sink_t *k, char **data, size_t *len);
/* Counts the records from from on. */
uint64_t at_sinks__count_dead(const char *data, size_t len, uint64_t from);

/* sinks.c, for the API (any thread): the sink called name or NULL; the
 * number of sinks and the j-th; its lag in outputs; wakes the thread. */
at_sink_t *at_sinks__find(at_sinks_t *s, const char *name);
size_t at_sinks__count(const at_sinks_t *s);
at_sink_t *at_sinks__at(at_sinks_t *s, size_t j);
int64_t at_sinks__lag(at_sinks_t *s, at_sink_t *k);
void at_sinks__wake(at_sinks_t *s);

#endif
