/* eval.c - `attune eval`: the offline quality harness (DESIGN.md §7,
 * docs/decisions/0008-eval.md). Reads a dataset of interactions, replays
 * it in time order through the chosen methods (prequential next-item
 * evaluation) and prints HR@k, MRR@k and NDCG@k with bootstrap intervals,
 * as a table or as JSON. The work is src/reco's (at_eval.h). */
#include "at_cli.h"
#include "at_core.h"
#include "at_eval.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_CLI__EVAL_METHODS 16 /* at most this many in one run */

static void at_cli__eval_usage(FILE *f)
{
    const at_eval_method_t *const *m;
    size_t nm = at_eval_methods(&m);
    (void)fprintf(f,
                  "usage: attune eval [OPTIONS] FILE\n\n"
                  "Replays the interactions in FILE ('-': standard input) in time order (ties\n"
                  "in input order) and, at each interaction whose item the user has not had\n"
                  "before, asks every method for the user's top k (the user's items excluded)\n"
                  "before showing it the interaction. Prints HR@k, MRR@k and NDCG@k per\n"
                  "method with 95%% bootstrap intervals (resampling users).\n\n"
                  "  -f, --format F       ndjson (attune events: user_id or anonymous_id,\n"
                  "                       item_id, type, timestamp, category), csv (a header\n"
                  "                       naming user, item, timestamp and optionally type and\n"
                  "                       category; comma or tab separated), or movielens\n"
                  "                       (u.data: user, item, rating, unix seconds, tab\n"
                  "                       separated); default: from the name (.ndjson .jsonl\n"
                  "                       .json, .csv .tsv, .data), else from the first byte\n"
                  "  -k, --k N            list length (default 10, at most %d)\n"
                  "  -m, --methods LIST   comma-separated, in the order printed (default: all):",
                  AT_EVAL_K_MAX);
    for (size_t i = 0; i < nm; i++)
        (void)fprintf(f, "%s %s", i ? "," : "", m[i]->name);
    (void)fprintf(f, "\n"
                     "      --tune F         the first fraction of the interactions (by time) on\n"
                     "                       which tunable methods are tuned, never scored\n"
                     "                       (default 0.1; item-kNN's neighbourhood size)\n"
                     "      --warmup F       the first fraction only observed, never scored\n"
                     "                       (default 0; scoring starts after both)\n"
                     "      --limit N        use only the first N interactions (by time)\n"
                     "      --resamples N    bootstrap resamples (default 1000; 0: no intervals)\n"
                     "      --seed N         the bootstrap's seed (default 1)\n"
                     "      --json           one JSON object instead of the table\n"
                     "  -h, --help           this help\n");
}

/* Fills out (at most max) from the comma-separated list s. Returns the
 * count, or -1 with a message printed. */
static int at_cli__eval_methods(const char *s, const at_eval_method_t **out, size_t max)
{
    size_t n = 0;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        const at_eval_method_t *m = at_eval_method_find(s, len);
        if (!m) {
            (void)fprintf(stderr, "attune eval: unknown method '%.*s'%s\n", (int)len, s,
                          len == 6 && !memcmp(s, "attune", 6)
                              ? " (attune's recommender is not built into this binary)"
                              : "");
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            if (out[i] == m) {
                (void)fprintf(stderr, "attune eval: method '%s' given twice\n", m->name);
                return -1;
            }
        if (n == max) {
            (void)fprintf(stderr, "attune eval: at most %zu methods\n", max);
            return -1;
        }
        out[n++] = m;
        s += len + (e ? 1 : 0);
    }
    if (!n)
        (void)fprintf(stderr, "attune eval: --methods names no method\n");
    return n ? (int)n : -1;
}

/* A number option: false (message printed) when s is not one in [lo, hi]. */
static bool at_cli__eval_num(const char *name, const char *s, double lo, double hi, double *v)
{
    char *end;
    *v = strtod(s, &end);
    if (end == s || *end || !(*v >= lo && *v <= hi)) {
        (void)fprintf(stderr, "attune eval: --%s wants a number in [%g, %g], not '%s'\n", name, lo,
                      hi, s);
        return false;
    }
    return true;
}

/* Parses the options into o and the rest; returns 0, or the exit code. */
static int at_cli__eval_opts(int argc, char **argv, at_eval_opts_t *o, at_eval_format_t *fmt,
                             const at_eval_method_t **ms, int *nm, bool *json)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"k", required_argument, NULL, 'k'},
        {"methods", required_argument, NULL, 'm'},
        {"tune", required_argument, NULL, 'T'},
        {"warmup", required_argument, NULL, 'W'},
        {"limit", required_argument, NULL, 'L'},
        {"resamples", required_argument, NULL, 'R'},
        {"seed", required_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    double v;
    optind = 1;
    /* getopt_long() keeps its state in globals: this runs on the main thread
     * before any other thread exists. NOLINTNEXTLINE(concurrency-mt-unsafe) */
    while ((c = getopt_long(argc, argv, "f:k:m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (!at_eval_format_parse(optarg, fmt)) {
                (void)fprintf(stderr, "attune eval: --format is ndjson, csv or movielens\n");
                return 2;
            }
            break;
        case 'k':
            if (!at_cli__eval_num("k", optarg, 1, AT_EVAL_K_MAX, &v) || v != (double)(size_t)v)
                return 2;
            o->k = (size_t)v;
            break;
        case 'm':
            if ((*nm = at_cli__eval_methods(optarg, ms, AT_CLI__EVAL_METHODS)) < 0)
                return 2;
            break;
        case 'T':
            if (!at_cli__eval_num("tune", optarg, 0, 0.99, &o->tune))
                return 2;
            break;
        case 'W':
            if (!at_cli__eval_num("warmup", optarg, 0, 0.99, &o->warmup))
                return 2;
            break;
        case 'L':
            if (!at_cli__eval_num("limit", optarg, 1, 4e9, &v) || v != (double)(size_t)v)
                return 2;
            o->limit = (size_t)v;
            break;
        case 'R':
            if (!at_cli__eval_num("resamples", optarg, 0, 1e6, &v) || v != (double)(uint32_t)v)
                return 2;
            o->resamples = (uint32_t)v;
            break;
        case 'S':
            if (!at_cli__eval_num("seed", optarg, 0, 9e15, &v) || v != (double)(uint64_t)v)
                return 2;
            o->seed = (uint64_t)v;
            break;
        case 'J':
            *json = true;
            break;
        case 'h':
            at_cli__eval_usage(stdout);
            return -1;
        default:
            at_cli__eval_usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        (void)fprintf(stderr, "attune eval: one dataset FILE is needed (attune eval --help)\n");
        return 2;
    }
    return 0;
}

int at_cli_eval(int argc, char **argv)
{
    at_eval_opts_t o;
    at_eval_opts_default(&o);
    at_eval_format_t fmt = AT_EVAL_FMT_GUESS;
    const at_eval_method_t *ms[AT_CLI__EVAL_METHODS];
    int nm = 0;
    bool json = false;
    int rc = at_cli__eval_opts(argc, argv, &o, &fmt, ms, &nm, &json);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!nm) {
        const at_eval_method_t *const *all;
        size_t n = at_eval_methods(&all);
        for (size_t i = 0; i < n && i < AT_CLI__EVAL_METHODS; i++)
            ms[nm++] = all[i];
    }
    const char *path = argv[optind];
    at_eval_data_t d;
    at_eval_data_init(&d);
    at_eval_result_t res = {0};
    at_error_t err = {0};
    at_buf_t out;
    at_buf_init(&out, 0);
    int code = 1;
    if (at_eval_data_load(&d, path, fmt, &err) < 0) {
        (void)fprintf(stderr, "attune eval: %s: %s\n", path, err.message);
        goto out;
    }
    if (at_eval_run(&d, ms, (size_t)nm, &o, &res, &err) < 0) {
        (void)fprintf(stderr, "attune eval: %s\n", err.message);
        code = 2;
        goto out;
    }
    if (json)
        at_eval_write_json(&out, &res, path);
    else
        at_eval_write_table(&out, &res, path);
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        (void)fprintf(stderr, "attune eval: cannot write the result\n");
        goto out;
    }
    code = 0;
out:
    at_buf_deinit(&out);
    at_eval_result_free(&res);
    at_eval_data_deinit(&d);
    return code;
}
