/* ingest_test.h - helpers shared by the ingest unit tests: a config with
 * chosen limits and mappings, parsing a body into a batch, scratch
 * directories. */
#ifndef INGEST_TEST_H
#define INGEST_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "at_config.h"
#include "at_core.h"
#include "at_ingest.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 2026-04-27T14:36:00Z, the receive time of every test batch. */
#define IT_RECV 1777300560000LL
#define IT_PARTS 16

/* Adds a mapping from -> to to c (owned by c). */
static inline void it_map(at_config_t *c, const char *from, const char *to)
{
    c->mappings = realloc(c->mappings, (c->nmappings + 1) * sizeof *c->mappings);
    assert_non_null(c->mappings);
    c->mappings[c->nmappings].from = strdup(from);
    c->mappings[c->nmappings].to = strdup(to);
    c->nmappings++;
}

/* Adds a schema for type to c (owned by c). */
static inline void it_schema(at_config_t *c, const char *type, const char *json)
{
    c->schemas = realloc(c->schemas, (c->nschemas + 1) * sizeof *c->schemas);
    assert_non_null(c->schemas);
    c->schemas[c->nschemas].type = strdup(type);
    c->schemas[c->nschemas].json = strdup(json);
    c->schemas[c->nschemas].line = 7;
    c->nschemas++;
}

static inline at_ingest_t *it_new(const at_config_t *c, const char *dir)
{
    at_ingest_t *in = NULL;
    at_error_t e;
    memset(&e, 0, sizeof e);
    int rc = at_ingest_new(&in, c, dir, &e);
    if (rc != 0)
        fail_msg("at_ingest_new: %s (%s)", e.message, e.field);
    return in;
}

/* Parses body into b (initialized here); returns the result code. */
static inline int it_parse(at_ingest_t *in, const char *body, at_body_kind_t kind, at_batch_t *b,
                           at_error_t *e)
{
    at_batch_init(b);
    memset(e, 0, sizeof *e);
    return at_ingest_parse(in, body, strlen(body), kind, IT_RECV, IT_PARTS, b, e);
}

/* The accepted event's canonical JSON, or the reject's message. */
static inline void it_dump(const at_batch_t *b)
{
    for (size_t i = 0; i < b->nevents; i++)
        print_message("event %d: %s\n", b->events[i].index, b->events[i].json);
    for (size_t i = 0; i < b->nrejects; i++)
        print_message("reject %d: %s %s [%s]\n", b->rejects[i].index, b->rejects[i].error.code,
                      b->rejects[i].error.message, b->rejects[i].error.field);
}

/* Creates a fresh directory under $AT_TEST_TMP (or /tmp); returns it owned. */
static inline char *it_tmpdir(void)
{
    const char *base = getenv("AT_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    assert_int_equal(at_mkdirs(base, 0755), 0);
    char *path = malloc(strlen(base) + 32);
    assert_non_null(path);
    sprintf(path, "%s/ingest-XXXXXX", base);
    assert_non_null(mkdtemp(path));
    return path;
}

static inline int it_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static inline void it_rmtree(char *dir)
{
    nftw(dir, it_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

#endif
