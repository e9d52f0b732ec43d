/* main.c - the attune binary: one program, subcommands (DESIGN.md §1). */
#include "at_cli.h"
#include "attune.h"

#include <stdio.h>
#include <string.h>

typedef struct at_cli_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} at_cli_cmd_t;

static int at_cli__version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("attune %s\n", attune_version());
    return 0;
}

static const at_cli_cmd_t at_cli__cmds[] = {
    {"serve", at_cli_serve, "run the engine and its HTTP API"},
    {"import", at_cli_import, "put historical events (NDJSON, CSV) through the engine"},
    {"load", at_cli_load, "generate shopper traffic against a server, or to a file"},
    {"replay", at_cli_replay, "print the event log as NDJSON"},
    {"eval", at_cli_eval, "measure recommendation quality on a dataset (HR, MRR, NDCG)"},
    {"check-config", at_cli_check_config, "check a configuration file"},
    {"version", at_cli__version, "print the version"},
};

static void at_cli__usage(FILE *f)
{
    (void)fprintf(f, "usage: attune COMMAND [OPTIONS]\n\n"
                     "attune is a real-time personalization engine.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof at_cli__cmds / sizeof at_cli__cmds[0]; i++)
        (void)fprintf(f, "  %-14s %s\n", at_cli__cmds[i].name, at_cli__cmds[i].help);
    (void)fprintf(f, "\nRun 'attune COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        at_cli__usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        at_cli__usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version"))
        return at_cli__version(0, NULL);
    for (size_t i = 0; i < sizeof at_cli__cmds / sizeof at_cli__cmds[0]; i++)
        if (!strcmp(argv[1], at_cli__cmds[i].name))
            return at_cli__cmds[i].fn(argc - 1, argv + 1);
    (void)fprintf(stderr, "attune: unknown command '%s'\n\n", argv[1]);
    at_cli__usage(stderr);
    return 2;
}
