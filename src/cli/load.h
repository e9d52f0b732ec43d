/* load.h - the insides of `attune load`, an open-loop load generator that
 * simulates shoppers against attune's HTTP API. Private to src/cli/load*.c
 * and their unit tests.
 *
 * Four parts, one file each:
 *   load_gen.c   the shopper model: sessions, funnel, Zipf item popularity,
 *                events as JSON with deterministic ids ("ld-<seed>-<n>")
 *   load_hist.c  a log-linear latency histogram (HDR style, < 1% error)
 *   load_http.c  the minimal HTTP/1.1 client pieces: request head, response
 *                parser (Content-Length), ingest answer scanner
 *   load_run.c   the open-loop scheduler over epoll and keep-alive
 *                connections; latency counts from each batch's intended time
 *   load.c       options, --out, the report, at_cli_load()
 *
 * THREAD SAFETY: nothing is shared; each object belongs to one thread.
 */
#ifndef AT_LOAD_H
#define AT_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "at_core.h"

/* ---- random numbers and Zipf --------------------------------------------- */

/* xoshiro256** seeded through splitmix64: fast, and the same sequence for
 * the same seed on every platform. */
typedef struct at_load_rng {
    uint64_t s[4];
} at_load_rng_t;

void at_load_rng_seed(at_load_rng_t *r, uint64_t seed);
uint64_t at_load_rng_next(at_load_rng_t *r);
/* Uniform double in [0, 1). */
double at_load_rng_unit(at_load_rng_t *r);
/* Uniform integer in [0, n); n > 0. */
uint64_t at_load_rng_below(at_load_rng_t *r, uint64_t n);

/* Zipf over ranks 1..n: P(k) is proportional to 1 / k^s. Sampling inverts a
 * cumulative table by binary search (8 bytes per rank). */
typedef struct at_load_zipf {
    double *cdf; /* cdf[k-1] = sum of 1/j^s for j <= k (not normalized) */
    uint64_t n;
    double s;
} at_load_zipf_t;

#define AT_LOAD_MAX_ITEMS 10000000u

/* n in 1..AT_LOAD_MAX_ITEMS, s in [0, 10]. Aborts on OOM. Deinit frees. */
void at_load_zipf_init(at_load_zipf_t *z, uint64_t n, double s);
void at_load_zipf_deinit(at_load_zipf_t *z);
/* Returns a rank in 1..n; rank 1 is the most likely. */
uint64_t at_load_zipf_sample(const at_load_zipf_t *z, at_load_rng_t *r);
/* The probability of rank k (for tests and reports). */
double at_load_zipf_prob(const at_load_zipf_t *z, uint64_t k);

/* ---- shopper model ----------------------------------------------------- */

typedef enum {
    AT_LOAD_PAGE_VIEW,
    AT_LOAD_VIEW_ITEM,
    AT_LOAD_ADD_TO_CART,
    AT_LOAD_PURCHASE,
    AT_LOAD_SEARCH,
    AT_LOAD_NTYPES
} at_load_type_t;

typedef struct at_load_gen_cfg {
    uint64_t seed;
    uint64_t users;      /* user ids 1..users */
    uint64_t items;      /* item ids 1..items; popularity by Zipf rank = id */
    uint64_t categories; /* category of an item is fixed: a hash of its id */
    double zipf;         /* item popularity exponent */
    double anonymous;    /* share of sessions without a user id */
} at_load_gen_cfg_t;

typedef struct at_load_session at_load_session_t;

typedef struct at_load_gen {
    at_load_gen_cfg_t cfg;
    at_load_rng_t rng;
    at_load_zipf_t zipf;
    at_load_session_t *sessions; /* the pool of concurrently active sessions */
    size_t nsessions;
    uint64_t next_event;   /* counter of the next event_id */
    uint64_t next_session; /* counter of the next session id */
    uint64_t by_type[AT_LOAD_NTYPES];
    uint64_t anonymous_sessions;
    int64_t ts_ms; /* the timestamp cached in ts */
    char ts[40];   /* RFC 3339 text of ts_ms */
} at_load_gen_t;

/* Sets up a generator; the same cfg gives the same events in the same order
 * (timestamps aside: those come from the caller). Aborts on OOM; free with
 * at_load_gen_deinit(). cfg is copied. */
void at_load_gen_init(at_load_gen_t *g, const at_load_gen_cfg_t *cfg);
void at_load_gen_deinit(at_load_gen_t *g);
/* Appends the next event as one JSON object (no newline) to out, with
 * timestamp now_ms. Returns 0, or AT_ETOOBIG when out's cap is reached (out
 * is unchanged, the event is skipped: its event_id number is used up). */
int at_load_gen_next(at_load_gen_t *g, int64_t now_ms, at_buf_t *out);
/* Writes the event_id of event number n into out (at least 48 bytes);
 * returns its length. */
int at_load_event_id(uint64_t seed, uint64_t n, char *out);
/* The category path of an item ("electronics/phones"), into out (at least
 * 64 bytes); returns its length. */
int at_load_item_category(const at_load_gen_cfg_t *cfg, uint64_t item, char *out);
const char *at_load_type_name(at_load_type_t t);

/* ---- latency histogram --------------------------------------------------- */

/* Values are nanoseconds. Values below 2^AT_LOAD_HIST_SUB_BITS+1 are kept
 * exactly; above, each power of two is cut into 2^AT_LOAD_HIST_SUB_BITS
 * linear buckets, so a reported value is within 1/256 of the truth. */
#define AT_LOAD_HIST_SUB_BITS 7
#define AT_LOAD_HIST_MAX_BITS 50 /* values >= 2^50 ns (13 days) are clamped */
#define AT_LOAD_HIST_BUCKETS                                                                       \
    ((2u << AT_LOAD_HIST_SUB_BITS) +                                                               \
     (AT_LOAD_HIST_MAX_BITS - AT_LOAD_HIST_SUB_BITS - 1) * (1u << AT_LOAD_HIST_SUB_BITS))

typedef struct at_load_hist {
    uint64_t counts[AT_LOAD_HIST_BUCKETS];
    uint64_t total;
    uint64_t min, max; /* exact */
    double sum;
} at_load_hist_t;

void at_load_hist_init(at_load_hist_t *h);
void at_load_hist_record(at_load_hist_t *h, uint64_t v);
/* The value at percentile p (0..100): the smallest recorded value v such
 * that at least p% of the values are <= v, within the histogram's
 * precision. 0 when empty. */
uint64_t at_load_hist_percentile(const at_load_hist_t *h, double p);
double at_load_hist_mean(const at_load_hist_t *h);
/* Bucket index of v, and the range [lo, hi] of values a bucket holds. */
size_t at_load_hist_index(uint64_t v);
void at_load_hist_range(size_t idx, uint64_t *lo, uint64_t *hi);

/* ---- HTTP/1.1 client pieces ----------------------------------------------- */

#define AT_LOAD_RESP_MAX (1u << 20) /* a response larger than 1 MiB is an error */

/* An incremental response parser: read into in, then call parse. */
typedef struct at_load_resp {
    at_buf_t in;            /* bytes received, capped at AT_LOAD_RESP_MAX */
    int status;             /* after the head is parsed */
    size_t head_len;        /* 0 until the head is complete */
    int64_t content_length; /* -1: the body runs until the peer closes */
    int64_t retry_after_ms; /* -1: no (parseable) Retry-After */
    bool close;             /* the connection closes after this response */
} at_load_resp_t;

void at_load_resp_init(at_load_resp_t *r);
void at_load_resp_deinit(at_load_resp_t *r);
/* Forgets the current response (keeps memory) for the next one. */
void at_load_resp_reset(at_load_resp_t *r);
/* Looks at what is in r->in. Returns 1 when a whole response is there (its
 * body is r->in.data + head_len, body_len bytes), 0 when more is needed,
 * AT_EPARSE on a malformed head or unsupported framing (chunked). eof says
 * the peer closed: a response without Content-Length ends there, any other
 * incomplete one is AT_EPARSE. */
int at_load_resp_parse(at_load_resp_t *r, bool eof, size_t *body_len);

/* Writes the head of POST /v1/events with body_len bytes of JSON into out
 * (cap bytes). key may be NULL. Returns the length, or AT_ETOOBIG. */
int at_load_request_head(char *out, size_t cap, const char *hostport, const char *key,
                         size_t body_len);

/* What a 200 answer to an event batch says. */
typedef struct at_load_ack {
    int64_t accepted, duplicates; /* -1 when absent */
    uint64_t rejected;            /* entries with an "index" */
} at_load_ack_t;

/* Scans a 200 answer body. rejected_flags (n bytes, may be NULL) gets a 1 at
 * each rejected index < n. String-aware, so text inside error messages is
 * never mistaken for a key. Returns 0 or AT_EPARSE. */
int at_load_ack_parse(const char *body, size_t len, at_load_ack_t *a, uint8_t *rejected_flags,
                      size_t n);

/* ---- the run ----------------------------------------------------------- */

typedef struct at_load_opts {
    char host[256]; /* from --url */
    char port[8];
    double rate; /* events per second (target) */
    int64_t duration_ms;
    uint32_t batch; /* events per request */
    uint32_t connections;
    uint64_t events;       /* 0: duration * rate */
    at_load_gen_cfg_t gen; /* the seed lives here */
    bool seed_set;
    const char *key;   /* bearer key, or NULL */
    const char *out;   /* --out file, "-" for stdout, or NULL */
    const char *acked; /* --acked file or NULL */
    bool json;
    int64_t drain_ms; /* after the last intended send, wait this long */
    int64_t start_ms; /* --out: time of the first event; 0 = now */
} at_load_opts_t;

typedef struct at_load_report {
    double target_rate;
    double elapsed_s; /* from the first intended send to the last answer */
    uint64_t events_total, batches_total;
    uint64_t events_acked, batches_acked, batches_failed;
    uint64_t requests; /* answers received, any status */
    uint64_t st_200, st_429, st_503, st_other;
    uint64_t errors;                         /* requests lost to broken connections, bad answers */
    uint64_t connect_errors;                 /* connections that could not be opened */
    uint64_t connects;                       /* connections opened */
    uint64_t accepted, duplicates, rejected; /* summed from the 200 answers */
    at_load_hist_t *hist;                    /* per acknowledged batch, ns */
} at_load_report_t;

/* Sets defaults (the values --help shows). */
void at_load_opts_default(at_load_opts_t *o);
/* Parses argv (argv[0] is the subcommand's name) into o. Returns 0, 1 when
 * --help was printed to out, or AT_EINVALID with a message in err. */
int at_load_opts_parse(at_load_opts_t *o, int argc, char **argv, FILE *out, char *err,
                       size_t errlen);
/* Parses "10s", "500ms", "2m", "1h", or a bare number of seconds. */
int at_load_parse_duration(const char *s, int64_t *ms);
/* Parses "http://host:port" (or "host:port"; path "/" allowed). */
int at_load_parse_url(const char *url, at_load_opts_t *o);

/* Runs the load: open loop at o->rate for the count of events o gives.
 * Fills rep (rep->hist must point to an initialized histogram). Returns 0
 * when every batch was acknowledged, 1 when some failed, or a negative
 * code when the run could not start (address, --acked file). Blocks; uses
 * SIGINT to stop early (the handler is installed by the caller). */
int at_load_run(const at_load_opts_t *o, at_load_report_t *rep);
/* Set from a signal handler: stop scheduling, drain, report. */
void at_load_request_stop(void);

/* Prints rep as text or JSON. */
void at_load_report_print(FILE *f, const at_load_opts_t *o, const at_load_report_t *rep, bool json);

#endif
