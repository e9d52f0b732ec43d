/* serve.c - `attune serve`: the engine and its HTTP API in one process. */
#include "at_cli.h"
#include "at_serve.h"
#include "at_sinks.h"
#include "attune.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void at_cli__serve_usage(FILE *f)
{
    (void)fprintf(
        f, "usage: attune serve [OPTIONS]\n\n"
           "Runs the engine with its HTTP API. Settings come from the defaults, then\n"
           "the config file, then these flags.\n\n"
           "  -c, --config FILE      YAML configuration (see docs/configuration.md)\n"
           "  -l, --listen ADDR      address to listen on (default 127.0.0.1:8080)\n"
           "  -d, --data-dir DIR     data directory (default ./attune-data)\n"
           "  -p, --partitions N     log partitions; fixed when the data directory is\n"
           "                         created (default 16)\n"
           "  -s, --shards N         processing threads (default 1)\n"
           "  -f, --fsync MODE       always | batch (group commit, default) | never\n"
           "      --set NAME=VALUE   any other setting, e.g. --set http.max_body_bytes=2MiB\n"
           "  -h, --help             this help\n\n"
           "Stops cleanly on SIGINT or SIGTERM: in-flight batches are answered and\n"
           "made durable, then it exits 0.\n");
}

/* The sinks' functions as the API calls them (at_serve_sinks_t). */
static int at_cli__sinks_list(void *ud, char **json, size_t *len)
{
    return at_sinks_list(ud, json, len);
}

static int at_cli__sinks_dead(void *ud, const char *name, int limit, char **json, size_t *len)
{
    return at_sinks_dead(ud, name, limit, json, len);
}

static int at_cli__sinks_replay(void *ud, const char *name, char **json, size_t *len)
{
    return at_sinks_replay(ud, name, json, len);
}

static int at_cli__sinks_metrics(void *ud, struct at_buf *out)
{
    return at_sinks_metrics(ud, out);
}

int at_cli_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'},
        {"partitions", required_argument, NULL, 'p'},
        {"shards", required_argument, NULL, 's'},
        {"fsync", required_argument, NULL, 'f'},
        {"set", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    char *over[64]; /* owned: every exit goes through out */
    int nover = 0;
    int c, rc = 2;
    optind = 1;
    /* getopt_long() keeps its state in globals: this runs on the main thread
     * before any other thread exists. NOLINTNEXTLINE(concurrency-mt-unsafe) */
    while ((c = getopt_long(argc, argv, "c:l:d:p:s:f:h", opts, NULL)) != -1) {
        const char *name = NULL;
        switch (c) {
        case 'c':
            config = optarg;
            continue;
        case 'l':
            name = "listen";
            break;
        case 'd':
            name = "data_dir";
            break;
        case 'p':
            name = "partitions";
            break;
        case 's':
            name = "shards";
            break;
        case 'f':
            name = "fsync";
            break;
        case 'S':
            name = "";
            break;
        case 'h':
            at_cli__serve_usage(stdout);
            rc = 0;
            goto out;
        default:
            at_cli__serve_usage(stderr);
            goto out;
        }
        if (nover >= (int)(sizeof over / sizeof over[0]) - 1) {
            (void)fprintf(stderr, "attune serve: too many settings\n");
            goto out;
        }
        size_t n = strlen(name) + strlen(optarg) + 2;
        char *o = malloc(n);
        if (!o) {
            rc = 1;
            goto out;
        }
        (void)snprintf(o, n, "%s%s%s", name, *name ? "=" : "", optarg); /* n holds it exactly */
        over[nover++] = o;
    }
    over[nover] = NULL;
    if (optind < argc) {
        (void)fprintf(stderr, "attune serve: unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    rc = 1;
    char err[512] = "";
    attune_t *a = NULL;
    if (attune_open(&a, config, (const char *const *)over, err, sizeof err) < 0) {
        (void)fprintf(stderr, "attune serve: %s\n", err);
        goto out;
    }
    at_sinks_t *sinks = NULL;
    if (at_sinks_start(a, &sinks, err, sizeof err) < 0) {
        (void)fprintf(stderr, "attune serve: %s\n", err);
        attune_close(a);
        goto out;
    }
    at_serve_sinks_t sinks_ops = {sinks, at_cli__sinks_list, at_cli__sinks_dead,
                                  at_cli__sinks_replay, at_cli__sinks_metrics};
    if (sinks)
        at_serve_set_sinks(&sinks_ops);
    if (at_serve_run(a, err, sizeof err) < 0)
        (void)fprintf(stderr, "attune serve: %s\n", err);
    else
        rc = 0;
    at_serve_set_sinks(NULL);
    at_sinks_stop(sinks); /* in flight finished or left for the next start */
    attune_close(a);
out:
    for (int i = 0; i < nover; i++)
        free(over[i]);
    return rc;
}
