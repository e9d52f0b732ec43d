/* proc_bench.c - the processing path alone: one partition processor (the
 * code a shard thread runs per record) fed canonical events as fast as one
 * core goes, with the rules of a config file. For profiling (perf,
 * callgrind) without HTTP, the writer or threads in the way.
 *
 *   bench_proc RULES.yaml EVENTS.ndjson [REPEAT]
 *
 * EVENTS.ndjson comes from `attune load --out`. The events are made
 * canonical first (not timed), all in one partition; their times are
 * spread at the rate the file was generated at. Prints events/s of the
 * processing and the outputs it produced. */
#include "at_config.h"
#include "at_core.h"
#include "at_ingest.h"
#include "proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The engine's own translation of the configuration (src/engine/engine.c). */
void at_engine__proc_cfg(const at_config_t *c, at_proc_cfg_t *pc, int partitions);

typedef struct bench_out {
    uint64_t n;
} bench_out_t;

static void bench_output(void *ud, const at_proc_out_t *o)
{
    (void)o;
    ((bench_out_t *)ud)->n++;
}

static at_ruleset_t *bench_rules(const at_config_t *c)
{
    at_ruleset_t *rs = at_ruleset_new();
    const at_config_rules_t *lists[2] = {&c->segments, &c->triggers};
    for (int pass = 0; pass < 3; pass++) { /* in_segment() may refer forward */
        for (int l = 0; l < 2; l++) {
            for (size_t i = 0; i < lists[l]->n; i++) {
                at_ruleset_t *next = NULL;
                at_error_t e;
                const char *d = lists[l]->v[i].json;
                if (at_ruleset_change(rs, AT_CHG_PUT, l ? AT_RULE_TRIGGER : AT_RULE_SEGMENT, NULL,
                                      0, d, strlen(d), rs->next_id, 1, &next, &e) == 0) {
                    at_ruleset_unref(rs);
                    rs = next;
                }
            }
        }
    }
    return rs;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        (void)fprintf(stderr, "usage: bench_proc RULES.yaml EVENTS.ndjson [REPEAT]\n");
        return 2;
    }
    int repeat = argc > 3 ? atoi(argv[3]) : 1;
    at_config_t cfg;
    at_config_defaults(&cfg);
    char err[512];
    if (at_config_load_file(&cfg, argv[1], err, sizeof err) < 0) {
        (void)fprintf(stderr, "%s\n", err);
        return 1;
    }
    char *text = NULL;
    size_t len = 0;
    if (at_file_read(argv[2], (size_t)4 << 30, &text, &len) < 0) {
        (void)fprintf(stderr, "cannot read %s\n", argv[2]);
        return 1;
    }
    at_ingest_t *in = NULL;
    at_error_t e;
    if (at_ingest_new(&in, &cfg, NULL, &e) < 0)
        return 1;
    /* canonical events, in chunks of at most 500 lines (the batch limit) */
    at_batch_t *batches = NULL;
    size_t nb = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *q = p;
        for (int k = 0; k < 500 && q < end; k++) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            q = nl ? nl + 1 : end;
        }
        batches = realloc(batches, (nb + 1) * sizeof *batches);
        at_batch_init(&batches[nb]);
        if (at_ingest_parse(in, p, (size_t)(q - p), AT_BODY_NDJSON, at_time_now_ms(), 1,
                            &batches[nb], &e) < 0) {
            (void)fprintf(stderr, "parse: %s\n", e.message);
            return 1;
        }
        nb++;
        p = q;
    }
    at_proc_cfg_t pc;
    at_engine__proc_cfg(&cfg, &pc, 1); /* as the engine sets it up, reco.* included */
    at_ruleset_t *rs = bench_rules(&cfg);
    at_buf_t ctl;
    at_buf_init(&ctl, 0);
    at_ruleset_dump(rs, &ctl);
    uint64_t events = 0, outs = 0;
    int64_t t0 = at_time_mono_ns();
    for (int r = 0; r < repeat; r++) {
        bench_out_t bo = {0};
        at_proc_ops_t ops = {bench_output, NULL};
        at_proc_t *pr = at_proc_new(0, &pc, &ops, &bo);
        int64_t off = 0;
        at_rec_t c = {.partition = 0,
                      .offset = off++,
                      .type = AT_REC_CONTROL,
                      .key = "",
                      .id = "",
                      .value = ctl.data,
                      .value_len = (uint32_t)ctl.len};
        at_proc_record(pr, &c);
        for (size_t b = 0; b < nb; b++) {
            for (size_t i = 0; i < batches[b].nevents; i++) {
                const at_event_t *ev = &batches[b].events[i];
                at_rec_t rec = {.partition = 0,
                                .offset = off++,
                                .type = AT_REC_EVENT,
                                .version = 1,
                                .recv_ms = ev->recv_ms,
                                .ts_ms = ev->ts_ms,
                                .key = ev->key,
                                .key_len = ev->key_len,
                                .id = ev->event_id,
                                .id_len = ev->event_id_len,
                                .value = ev->json,
                                .value_len = ev->json_len};
                at_proc_record(pr, &rec);
                events++;
            }
        }
        /* the end: the watermark passes everything (a minute after the last) */
        int64_t last = 0;
        for (size_t b = 0; b < nb; b++)
            for (size_t i = 0; i < batches[b].nevents; i++)
                last = AT_MAX(last, batches[b].events[i].ts_ms);
        at_rec_t tick = {.partition = 0,
                         .offset = off++,
                         .type = AT_REC_TICK,
                         .key = "",
                         .id = "",
                         .value = "",
                         .ts_ms = last + 60000,
                         .recv_ms = last + 60000};
        at_proc_record(pr, &tick);
        at_proc_stats_t st;
        at_proc_stats(pr, &st);
        outs += bo.n;
        if (r == 0 && getenv("BENCH_STATE"))
            at_proc_debug_sizes(pr);
        if (r == 0)
            (void)fprintf(stderr, "users %llu, state %llu bytes (%.0f per user), late %llu\n",
                          (unsigned long long)st.users, (unsigned long long)st.state_bytes,
                          st.users ? (double)st.state_bytes / (double)st.users : 0.0,
                          (unsigned long long)st.late);
        at_proc_free(pr);
    }
    double secs = (double)(at_time_mono_ns() - t0) / 1e9;
    printf("proc: %llu events in %.3f s: %.0f events/s, %llu outputs, %zu rules\n",
           (unsigned long long)events, secs, (double)events / secs, (unsigned long long)outs,
           rs->n);
    at_buf_deinit(&ctl);
    at_ruleset_unref(rs);
    for (size_t b = 0; b < nb; b++)
        at_batch_deinit(&batches[b]);
    free(batches);
    at_ingest_free(in);
    free(text);
    at_config_free(&cfg);
    return 0;
}
