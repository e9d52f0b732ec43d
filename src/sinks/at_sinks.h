/* at_sinks.h - delivery of the output bus (segment enters and exits,
 * trigger fires) to webhooks (DESIGN.md §6 "Outputs"; docs/api.md
 * "Webhooks"; docs/decisions/0007-webhooks.md).
 *
 * One delivery thread follows the outputs from a durable position per sink
 * (DATA_DIR/sinks/NAME/position), POSTs each output, signed, with libcurl's
 * multi interface, retries with backoff behind a circuit breaker per
 * endpoint, and writes what it gives up on to a dead-letter log
 * (DATA_DIR/sinks/NAME/dead). A position moves only past outputs that
 * were delivered, dead-lettered or skipped: at-least-once across restarts
 * and kill -9, keyed by the output's id.
 *
 * THREAD SAFETY: at_sinks_start and at_sinks_stop on one thread (the
 * CLI's); at_sinks_list, at_sinks_dead, at_sinks_replay and
 * at_sinks_metrics from any thread while the sinks run. The pure helpers
 * below (signature, backoff, breaker, dead-letter records) are reentrant.
 */
#ifndef AT_SINKS_H
#define AT_SINKS_H

#include "at_core.h"
#include "attune.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct at_sinks at_sinks_t;

/* Starts delivery for the webhooks of a's configuration (none: *out is
 * NULL and nothing runs). Borrows a, which must outlive at_sinks_stop.
 * Returns 0 or <0 with a message in err (e.g. a corrupt position file). */
int at_sinks_start(attune_t *a, at_sinks_t **out, char *err, size_t errlen);
/* Stops reading, lets deliveries in flight finish (or leaves them for the
 * next start after the longest timeout), writes the positions and frees s.
 * NULL is a no-op. */
void at_sinks_stop(at_sinks_t *s);

/* Owned JSON {"sinks":[{name,url,state,breaker,position,lag,inflight,
 * counts:{ok,retry,dead,skipped,attempts},dead,latency_ms:{p50,p99}}]}. */
int at_sinks_list(at_sinks_t *s, char **json, size_t *len);
/* Owned JSON {"sink","dead":[{offset,id,reason,attempts,status,at,position,
 * replaying,output}],"total"} of the current dead letters, oldest first, at
 * most limit. AT_ENOTFOUND for an unknown sink. */
int at_sinks_dead(at_sinks_t *s, const char *name, int limit, char **json, size_t *len);
/* Queues the current dead letters of sink name for delivery again (with
 * fresh attempts). Owned JSON {"sink","replaying":N}. AT_ENOTFOUND. */
int at_sinks_replay(at_sinks_t *s, const char *name, char **json, size_t *len);
/* Appends the attune_sink_* metrics in the Prometheus text format. */
int at_sinks_metrics(at_sinks_t *s, at_buf_t *out);

/* ---- pieces, exposed for the tests ---------------------------------------- */

/* hex HMAC-SHA256(secret, TIMESTAMP "." BODY) into hex (65 bytes). */
void at_sink_sign(const char *secret, size_t slen, int64_t ts, const char *body, size_t blen,
                  char hex[65]);

/* The delay before retry number attempt (1 = after the first failure):
 * uniform in [0, min(max_ms, initial_ms * 2^(attempt-1))] (full jitter).
 * *rng is a xorshift state, never 0. */
int64_t at_sink_backoff_ms(int attempt, int64_t initial_ms, int64_t max_ms, uint64_t *rng);

typedef enum { AT_BREAKER_CLOSED, AT_BREAKER_OPEN, AT_BREAKER_HALF_OPEN } at_breaker_state_t;
typedef struct at_sink_breaker {
    at_breaker_state_t state;
    int failures;        /* consecutive, while closed */
    int threshold;       /* failures that open it */
    int64_t cooldown_ms; /* open this long before a probe */
    int64_t open_until;  /* ms on the caller's clock */
    bool probing;        /* half-open: the one probe is in flight */
    uint64_t opened;     /* times it opened */
} at_sink_breaker_t;
void at_sink_breaker_init(at_sink_breaker_t *b, int threshold, int64_t cooldown_ms);
/* True when an attempt may start now (half-open: only the one probe). */
bool at_sink_breaker_allow(at_sink_breaker_t *b, int64_t now_ms);
/* The outcome of an attempt: ok = the endpoint answered sanely. */
void at_sink_breaker_result(at_sink_breaker_t *b, bool ok, int64_t now_ms);

/* Dead-letter records: [u32 length][u32 check][length bytes of JSON], little
 * endian, check = the low 32 bits of XXH3-64 of the bytes. */
#define AT_DEAD_MAX_RECORD (8u << 20)
/* Appends the record of json to b. */
void at_sink_dead_encode(at_buf_t *b, const char *json, size_t len);
typedef int (*at_sink_dead_fn)(void *ud, uint64_t offset, const char *json, size_t len);
/* Calls fn for each whole record of data[0..len) from offset from on (fn
 * returning non-zero stops). Returns the length of the valid prefix: a
 * torn or corrupt tail ends the log there. */
uint64_t at_sink_dead_scan(const char *data, uint64_t len, uint64_t from, at_sink_dead_fn fn,
                           void *ud);

#endif
