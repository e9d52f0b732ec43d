/* streams.h - the processing half of the engine: shard threads running the
 * partition processors (proc.h) over the log, each partition's output log,
 * checkpoints on a background thread, recovery, and reads of state.
 *
 * THREAD SAFETY: at_streams_open/close on the engine's owner thread;
 * at_streams_publish and at_streams_sent_durable on the writer thread; the
 * read calls from any thread (their callbacks run on a shard thread);
 * at_streams_stats from any thread.
 */
#ifndef AT_STREAMS_H
#define AT_STREAMS_H

#include "at_log.h"
#include "at_metrics.h"
#include "proc.h"

#include <stdatomic.h>

typedef struct at_streams at_streams_t;

typedef struct at_streams_cfg {
    const char *data_dir;
    const char *log_dir;
    int partitions;
    int shards;
    at_proc_cfg_t proc;
    int64_t ckpt_interval_ms;  /* 0: no periodic checkpoints (only at close) */
    int64_t out_segment_bytes; /* output log segments */
    int64_t out_writeback;     /* output log: writeback started every this many bytes */
    struct at_watch *watch;    /* users watched by push connections (watch.h); may be NULL */
} at_streams_cfg_t;

typedef struct at_streams_hooks {
    /* A record for the log (handoff, forwarded), from partition src's
     * processing; the writer appends it and later calls
     * at_streams_sent_durable(src, 1). Runs on a shard thread. */
    void (*send)(void *ud, int src, const at_rec_t *rec);
    void *ud;
} at_streams_hooks_t;

/* Loads every partition's newest checkpoint, opens the output logs and
 * starts the shards, which then replay the log from the checkpoints (up to
 * the durable end published so far). Returns 0 or <0 with err. */
int at_streams_open(at_streams_t **out, const at_streams_cfg_t *cfg, const at_streams_hooks_t *h,
                    uint64_t durable_seq, char *err, size_t errlen);
/* Writes a last checkpoint of every partition, after processing up to the
 * durable end, and stops. */
void at_streams_close(at_streams_t *s);

/* The writer made records below seq durable. */
void at_streams_publish(at_streams_t *s, uint64_t seq);
/* n records sent by partition src are durable now. */
void at_streams_sent_durable(at_streams_t *s, int src, uint64_t n);
/* Whether every shard has processed the log up to seq. */
bool at_streams_caught_up(const at_streams_t *s, uint64_t seq);
/* Bytes the reorder buffers hold (events waiting for the watermark): they
 * count against max_memory with the ingestion queues. Any thread. */
uint64_t at_streams_pending_bytes(const at_streams_t *s);
/* The smallest log offset of partition p that recovery still needs (the
 * newest complete checkpoint's replay point), for retention. */
int64_t at_streams_keep_from(const at_streams_t *s, int p);
/* The largest trusted time partition p had when processing resumed, or
 * AT_WM_NONE: where the writer's ticks start from. */
int64_t at_streams_recovered_trusted(const at_streams_t *s, int p);

/* ---- reads: the callback runs once, on a shard thread ------------------------- */
typedef void (*at_streams_cb)(void *ud, int status, const char *json, size_t len);

/* The user's profile / segments (what: AT_PROC_R_*), once the partition
 * has processed its log up to min_offset (-1: no wait; bounded by 1 s). */
int at_streams_user(at_streams_t *s, const char *key, size_t n, unsigned what, int64_t min_offset,
                    at_streams_cb cb, void *ud);
/* The user's recommendations ({"user","known","items"}: at_proc_render_reco),
 * once the partition has processed min_offset (-1: no wait). req is
 * copied. */
int at_streams_recommend(at_streams_t *s, const char *key, size_t n, const at_reco_req_t *req,
                         int64_t min_offset, at_streams_cb cb, void *ud);
/* The same answer from the cache of recent answers, on the calling thread:
 * appended to out when one was built for the same user and request, with
 * no record of the user processed since, within reco.cache, and the
 * partition is past min_offset. False: ask at_streams_recommend. */
bool at_streams_reco_cached(at_streams_t *s, const char *key, size_t n, const at_reco_req_t *req,
                            int64_t min_offset, at_buf_t *out);
/* Decides placement pl for user key on its shard (at_proc_decide) with
 * the request body req (copied), once the partition has processed
 * min_offset (-1: no wait; past the wait's bound it is decided as late). */
int at_streams_decide(at_streams_t *s, const char *key, size_t n, const at_placement_t *pl,
                      const char *req, size_t req_len, int64_t min_offset, int64_t now_ms,
                      at_streams_cb cb, void *ud);
/* Every partition's item aggregates, for reads on the calling thread
 * (similar, trending, items). Valid until at_streams_close. */
at_reco_set_t *at_streams_reco(at_streams_t *s);
/* A page of the members of segment name: {"members":[keys],"cursor":..}. */
int at_streams_members(at_streams_t *s, const char *name, size_t n, const char *cursor,
                       size_t limit, at_streams_cb cb, void *ud);
/* The digest of all state: {"digest":"16 hex","partitions":P}. */
int at_streams_digest(at_streams_t *s, at_streams_cb cb, void *ud);

/* ---- figures ------------------------------------------------------------------ */
typedef struct at_streams_stats {
    at_proc_stats_t total; /* summed over partitions (watermark: the lowest) */
    uint64_t checkpoints, checkpoint_errors, checkpoint_bytes;
    at_hist_t *ckpt_seconds; /* borrowed */
    at_lat_t *lat_early;     /* durable publish of the causing record to the output: early */
    at_lat_t *lat_final;     /* the same for outputs announced once final */
    uint64_t out_records, out_bytes;
} at_streams_stats_t;
void at_streams_stats(at_streams_t *s, at_streams_stats_t *st);
/* Member count of the segment rule id over all partitions. */
int64_t at_streams_members_count(at_streams_t *s, uint32_t id);
/* Per-partition watermark (AT_WM_NONE: none yet), for metrics. */
int64_t at_streams_watermark(at_streams_t *s, int p);

/* ---- the output bus -------------------------------------------------------------
 * Outputs go to the partition's output log; a reader follows them from its
 * own positions, in offset order per partition. */
typedef struct at_outreader at_outreader_t;
typedef int (*at_out_fn)(void *ud, int partition, int64_t offset, const char *key, size_t klen,
                         const char *json, size_t len);
/* from[p]: the first offset wanted (NULL: from the current end). */
int at_outreader_open(at_streams_t *s, const int64_t *from, at_outreader_t **out);
/* Calls fn for up to max outputs available now; returns how many or <0. */
int at_outreader_next(at_outreader_t *r, at_out_fn fn, void *ud, int max);
/* Waits until outputs may be available (or timeout_ms). */
void at_outreader_wait(at_outreader_t *r, int timeout_ms);
void at_outreader_close(at_outreader_t *r);

#endif
