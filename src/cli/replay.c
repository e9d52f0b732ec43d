/* replay.c - `attune replay`: prints the log of a data directory as NDJSON,
 * one record per line, optionally between two positions or times; or its
 * output logs (segment and trigger events); or the digest of the state the
 * log leads to. */
#include "at_cli.h"
#include "at_core.h"
#include "attune.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct at_replay {
    int partition;          /* -1: all */
    int64_t to_offset;      /* with partition: last offset printed */
    int64_t from_ms, to_ms; /* receive-time range [from, to) */
    at_buf_t line;
    uint64_t n;
} at_replay_t;

static void at_cli__replay_usage(FILE *f)
{
    (void)fprintf(
        f,
        "usage: attune replay [OPTIONS]\n\n"
        "Prints the event log as NDJSON, one record per line:\n"
        "  {\"partition\":P,\"offset\":O,\"type\":\"event\",\"key\":\"u:42\",\"event_id\":\"..\",\n"
        "   \"recv_ms\":..,\"ts_ms\":..,\"value\":{the canonical event}}\n\n"
        "  -d, --data-dir DIR   data directory (default ./attune-data); the server may\n"
        "                       be running or stopped\n"
        "      --from POS|TIME  start at position P:OFFSET (that partition only), or at\n"
        "                       a receive time (RFC 3339 or epoch ms)\n"
        "      --to POS|TIME    stop after position P:OFFSET, or before a receive time\n"
        "      --outputs        print the output logs instead: segment_enter,\n"
        "                       segment_exit and trigger events, one per line\n"
        "      --digest         print the digest of the state the log leads to: the\n"
        "                       checkpoints restored and the rest of the log processed\n"
        "      --from-scratch   with --digest: process the whole log, ignoring the\n"
        "                       checkpoints (the two digests must be equal)\n"
        "                       (--digest --outputs also prints the outputs processing\n"
        "                       produces, before the digest)\n"
        "  -c, --config FILE    with --digest: the configuration (rules' settings)\n"
        "      --set NAME=VALUE with --digest: a setting, as for serve\n"
        "  -h, --help           this help\n");
}

/* Parses "P:OFFSET" (returns 1) or a time (returns 2); 0 if neither. */
static int at_cli__pos_or_time(const char *s, int *p, int64_t *off, int64_t *ms)
{
    char *end;
    const char *colon = strchr(s, ':');
    if (colon && !strchr(colon + 1, ':') && !strchr(s, 'T')) {
        long pp = strtol(s, &end, 10);
        if (end == colon) {
            long long o = strtoll(colon + 1, &end, 10);
            if (*end == 0 && pp >= 0 && o >= 0) {
                *p = (int)pp;
                *off = o;
                return 1;
            }
        }
    }
    long long v = strtoll(s, &end, 10);
    if (*end == 0 && end != s) {
        *ms = v;
        return 2;
    }
    return at_time_parse_rfc3339(s, strlen(s), ms) == 0 ? 2 : 0;
}

static int at_cli__replay_rec(void *ud, const attune_record_t *r)
{
    at_replay_t *rp = ud;
    if (rp->partition >= 0 && r->partition != rp->partition)
        return 0;
    if (rp->partition >= 0 && rp->to_offset >= 0 && r->offset > rp->to_offset)
        return 0;
    if (r->recv_ms < rp->from_ms || r->recv_ms >= rp->to_ms)
        return 0;
    at_buf_t *b = &rp->line;
    at_buf_reset(b);
    at_buf_printf(b, "{\"partition\":%d,\"offset\":%lld,\"type\":\"%s\",\"key\":", r->partition,
                  (long long)r->offset, r->type);
    at_buf_json_str(b, r->key, r->key_len);
    at_buf_puts(b, ",\"event_id\":");
    at_buf_json_str(b, r->id, r->id_len);
    at_buf_printf(b, ",\"recv_ms\":%lld,\"ts_ms\":%lld,\"value\":", (long long)r->recv_ms,
                  (long long)r->ts_ms);
    if (r->value_len)
        at_buf_append(b, r->value, r->value_len);
    else
        at_buf_puts(b, "null");
    at_buf_puts(b, "}\n");
    rp->n++;
    return fwrite(b->data, 1, b->len, stdout) == b->len ? 0 : -EIO;
}

static int at_cli__replay_out(void *ud, int partition, int64_t offset, const char *json, size_t len)
{
    (void)partition;
    (void)offset;
    uint64_t *n = ud;
    (*n)++;
    if (fwrite(json, 1, len, stdout) != len || fputc('\n', stdout) == EOF)
        return -EIO;
    return 0;
}

static int at_cli__replay_outputs(const char *dir)
{
    char err[512] = "";
    uint64_t n = 0;
    int rc = attune_outputs_read(dir, NULL, at_cli__replay_out, &n, err, sizeof err);
    if (fflush(stdout) != 0 && rc >= 0)
        rc = -EIO;
    if (rc < 0) {
        (void)fprintf(stderr, "attune replay: %s\n", err[0] ? err : attune_strerror(rc));
        return 1;
    }
    return 0;
}

static int at_cli__replay_digest(const char *dir, const char *config, const char **sets, int nsets,
                                 bool scratch, bool outputs)
{
    uint64_t nout = 0;
    const char *ov[70];
    char dd[4200];
    int k = 0;
    if (dir) {
        (void)snprintf(dd, sizeof dd, "data_dir=%s", dir);
        ov[k++] = dd;
    }
    for (int i = 0; i < nsets; i++)
        ov[k++] = sets[i];
    ov[k] = NULL;
    uint64_t d = 0;
    char err[512] = "";
    int rc = attune_state_digest(config, ov, scratch, &d, outputs ? at_cli__replay_out : NULL,
                                 &nout, err, sizeof err);
    if (rc < 0) {
        (void)fprintf(stderr, "attune replay: %s\n", err[0] ? err : attune_strerror(rc));
        return 1;
    }
    printf("%016llx\n", (unsigned long long)d);
    return fflush(stdout) == 0 ? 0 : 1;
}

int at_cli_replay(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'}, {"from", required_argument, NULL, 'F'},
        {"to", required_argument, NULL, 'T'},       {"outputs", no_argument, NULL, 'O'},
        {"digest", no_argument, NULL, 'D'},         {"from-scratch", no_argument, NULL, 'S'},
        {"config", required_argument, NULL, 'c'},   {"set", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *config = NULL;
    const char *sets[64];
    int nsets = 0;
    bool outputs = false, digest = false, scratch = false;
    at_replay_t rp = {.partition = -1, .to_offset = -1, .from_ms = INT64_MIN, .to_ms = INT64_MAX};
    int c, fp = -1, tp = -1;
    int64_t foff = 0, toff = -1;
    optind = 1;
    /* getopt_long() keeps its state in globals: this runs on the main thread
     * before any other thread exists. NOLINTNEXTLINE(concurrency-mt-unsafe) */
    while ((c = getopt_long(argc, argv, "d:c:h", opts, NULL)) != -1) {
        int kind;
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 's':
            if (nsets == 64 || !strchr(optarg, '=')) {
                (void)fprintf(stderr, "attune replay: --set wants NAME=VALUE (at most 64)\n");
                return 2;
            }
            sets[nsets++] = optarg;
            break;
        case 'O':
            outputs = true;
            break;
        case 'D':
            digest = true;
            break;
        case 'S':
            scratch = true;
            break;
        case 'F':
            kind = at_cli__pos_or_time(optarg, &fp, &foff, &rp.from_ms);
            if (!kind)
                goto bad;
            break;
        case 'T':
            kind = at_cli__pos_or_time(optarg, &tp, &toff, &rp.to_ms);
            if (!kind)
                goto bad;
            break;
        case 'h':
            at_cli__replay_usage(stdout);
            return 0;
        default:
            at_cli__replay_usage(stderr);
            return 2;
        }
    }
    if (digest)
        return at_cli__replay_digest(dir, config, sets, nsets, scratch, outputs);
    if (scratch || config || nsets) {
        (void)fprintf(stderr,
                      "attune replay: --from-scratch, --config and --set go with --digest\n");
        return 2;
    }
    if (!dir)
        dir = "./attune-data";
    if (outputs)
        return at_cli__replay_outputs(dir);
    if ((fp >= 4096) || (tp >= 4096)) {
        (void)fprintf(stderr, "attune replay: a partition is below 4096\n");
        return 2;
    }
    if (fp >= 0 && tp >= 0 && fp != tp) {
        (void)fprintf(stderr, "attune replay: --from and --to name different partitions\n");
        return 2;
    }
    rp.partition = fp >= 0 ? fp : tp;
    rp.to_offset = tp >= 0 ? toff : -1;
    int64_t *from = NULL; /* skip earlier records of the chosen partition */
    if (fp >= 0) {
        from = calloc(4096, sizeof *from); /* partitions are at most 4096 */
        if (!from)
            return 1;
        from[fp] = foff;
    }
    at_buf_init(&rp.line, 0);
    char err[512] = "";
    int rc = attune_log_read(dir, from, at_cli__replay_rec, &rp, err, sizeof err);
    free(from);
    at_buf_deinit(&rp.line);
    if (fflush(stdout) != 0 && rc >= 0) /* the last records are written only now */
        rc = -EIO;
    if (rc < 0) {
        (void)fprintf(stderr, "attune replay: %s\n", err[0] ? err : attune_strerror(rc));
        return 1;
    }
    return 0;
bad:
    (void)fprintf(stderr, "attune replay: '%s' is neither a position P:OFFSET nor a time\n",
                  optarg);
    return 2;
}
