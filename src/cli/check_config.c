/* check_config.c - `attune check-config FILE`: loads and validates a
 * configuration file without starting anything. */
#include "at_cli.h"
#include "at_config.h"
#include "at_ingest.h"
#include "attune.h"

#include <stdio.h>
#include <string.h>

int at_cli_check_config(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: attune check-config FILE\n"
               "       attune check-config --doc\n\n"
               "Checks a YAML configuration: syntax, known settings, types, values,\n"
               "schemas, segments and triggers (their expressions). Prints 'FILE: ok' or\n"
               "'FILE:LINE:COL: reason' and exits 0 or 1.\n"
               "--doc prints the table of every setting (Markdown).\n");
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--doc"))
        return at_config_doc_print(1) < 0 ? 1 : 0;
    if (argc != 2) {
        (void)fprintf(stderr, "usage: attune check-config FILE\n");
        return 2;
    }
    at_config_t c;
    at_config_defaults(&c);
    char err[512] = "";
    /* Load errors come as "FILE:LINE:COL: reason" already. */
    int rc = at_config_load_file(&c, argv[1], err, sizeof err);
    if (rc < 0) {
        (void)fprintf(stderr, "%s\n", err);
        goto out;
    }
    if ((rc = at_config_validate(&c, err, sizeof err)) < 0) {
        (void)fprintf(stderr, "%s: %s\n", argv[1], err);
        goto out;
    }
    at_ingest_t *in = NULL; /* schemas must compile */
    at_error_t e = {0};
    if ((rc = at_ingest_new(&in, &c, NULL, &e)) < 0) {
        (void)fprintf(stderr, "%s: %s: %s\n", argv[1], e.field, e.message);
        goto out;
    }
    at_ingest_free(in);
    if ((rc = attune_check_rules(&c, err, sizeof err)) < 0) { /* "LINE:COL: reason" */
        (void)fprintf(stderr, "%s:%s\n", argv[1], err);
        goto out;
    }
out:
    at_config_free(&c);
    if (rc < 0)
        return 1;
    printf("%s: ok\n", argv[1]);
    return 0;
}
