/* test_engine.c - libattune through its public header: open, ingest,
 * answers after durability, dedup across a reopen, group commit under many
 * writers, read back, metrics. */
#include "attune.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Waits for one ingest answer. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    attune_ingest_result_t res;
    char json[4096];
} waiter_t;

static void on_done(void *ud, const attune_ingest_result_t *res)
{
    waiter_t *w = ud;
    pthread_mutex_lock(&w->mu);
    w->res = *res;
    snprintf(w->json, sizeof w->json, "%.*s", (int)res->json_len, res->json ? res->json : "");
    w->res.json = w->json;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void wait_ready(attune_t *a)
{
    for (int i = 0; i < 2000 && !attune_ready(a); i++)
        usleep(1000);
    assert_true(attune_ready(a));
}

/* Ingests body and waits for the answer. Returns attune_ingest's rc. */
static int ingest(attune_t *a, const char *body, waiter_t *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    attune_error_t err;
    int rc = attune_ingest(a, body, strlen(body), ATTUNE_BODY_JSON, 0, on_done, w, &err);
    if (rc == 0) {
        pthread_mutex_lock(&w->mu);
        while (!w->done)
            pthread_cond_wait(&w->cv, &w->mu);
        pthread_mutex_unlock(&w->mu);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    return rc;
}

static char *tmpdir(void)
{
    const char *root = getenv("AT_TEST_TMP");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/engine.XXXXXX", root && *root ? root : "/tmp");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", root && *root ? root : "/tmp");
    assert_int_equal(system(cmd), 0);
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static attune_t *open_at(const char *dir, const char *fsync)
{
    char o1[600], o2[64];
    snprintf(o1, sizeof o1, "data_dir=%s", dir);
    snprintf(o2, sizeof o2, "fsync=%s", fsync);
    const char *over[] = {o1, o2, "partitions=4", NULL};
    char err[512] = "";
    attune_t *a = NULL;
    int rc = attune_open(&a, NULL, over, err, sizeof err);
    if (rc < 0)
        fail_msg("attune_open: %s", err);
    wait_ready(a);
    return a;
}

static int count_rec(void *ud, const attune_record_t *r)
{
    int *n = ud;
    assert_string_equal(r->type, "event");
    (*n)++;
    return 0;
}

static void test_ingest_dedup_reopen(void **state)
{
    (void)state;
    char *dir = tmpdir();
    attune_t *a = open_at(dir, "batch");
    waiter_t w;
    assert_int_equal(ingest(a,
                            "{\"events\":[{\"event_id\":\"x1\",\"type\":\"view_item\","
                            "\"user_id\":\"1\"},{\"event_id\":\"x2\",\"type\":\"view_item\","
                            "\"user_id\":\"2\"},{\"user_id\":\"3\"}]}",
                            &w),
                     0);
    assert_int_equal(w.res.status, 0);
    assert_int_equal(w.res.accepted, 2);
    assert_int_equal(w.res.rejected, 1);
    assert_non_null(strstr(w.json, "\"positions\":[\""));
    assert_int_equal(
        ingest(a, "{\"event_id\":\"x1\",\"type\":\"view_item\",\"user_id\":\"1\"}", &w), 0);
    assert_int_equal(w.res.accepted, 0);
    assert_int_equal(w.res.duplicates, 1);

    attune_error_t err;
    assert_int_equal(attune_ingest(a, "{nope", 5, ATTUNE_BODY_JSON, 0, on_done, &w, &err),
                     ATTUNE_EPARSE);
    assert_string_equal(err.code, "invalid_json");
    attune_close(a);

    /* Reopen: the dedup index is rebuilt from the log. */
    a = open_at(dir, "batch");
    assert_int_equal(
        ingest(a, "{\"event_id\":\"x2\",\"type\":\"view_item\",\"user_id\":\"2\"}", &w), 0);
    assert_int_equal(w.res.duplicates, 1);
    char *m = NULL;
    size_t mlen = 0;
    assert_int_equal(attune_metrics(a, &m, &mlen), 0);
    assert_non_null(strstr(m, "attune_events_duplicate_total 1\n"));
    attune_free(m);
    attune_close(a);

    int n = 0;
    char e[256];
    assert_int_equal(attune_log_read(dir, NULL, count_rec, &n, e, sizeof e), 0);
    assert_int_equal(n, 2);
    free(dir);
}

/* Many threads ingesting at once: every event is written exactly once and
 * the group commit takes fewer syncs than batches. */
#define WRITERS 8
#define PER_WRITER 50

static attune_t *g_engine;

static void *writer_main(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < PER_WRITER; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"event_id\":\"w%ld-%d\",\"type\":\"click\",\"user_id\":\"u%d\"}", id, i, i);
        waiter_t w;
        int rc;
        while ((rc = ingest(g_engine, body, &w)) == ATTUNE_EFULL)
            usleep(1000);
        assert_int_equal(rc, 0);
        assert_int_equal(w.res.accepted, 1);
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    (void)state;
    char *dir = tmpdir();
    g_engine = open_at(dir, "batch");
    pthread_t t[WRITERS];
    for (long i = 0; i < WRITERS; i++)
        pthread_create(&t[i], NULL, writer_main, (void *)i);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    char *m = NULL;
    size_t mlen = 0;
    attune_metrics(g_engine, &m, &mlen);
    unsigned long commits = 0, accepted = 0;
    const char *c = strstr(m, "\nattune_log_commits_total ");
    const char *acc = strstr(m, "\nattune_events_accepted_total ");
    assert_non_null(c);
    assert_non_null(acc);
    sscanf(c, "\nattune_log_commits_total %lu", &commits);
    sscanf(acc, "\nattune_events_accepted_total %lu", &accepted);
    attune_free(m);
    assert_int_equal(accepted, WRITERS * PER_WRITER);
    assert_true(commits >= 1);
    assert_true(commits < WRITERS * PER_WRITER); /* groups of more than one */
    attune_close(g_engine);
    int n = 0;
    char e[256];
    assert_int_equal(attune_log_read(dir, NULL, count_rec, &n, e, sizeof e), 0);
    assert_int_equal(n, WRITERS * PER_WRITER);
    free(dir);
}

/* Watched users: the callback names each processed event's user while it
 * is watched (counted), and never another user. */
typedef struct seen {
    pthread_mutex_t mu;
    char keys[64][32];
    int n;
} seen_t;

static void on_change(void *ud, const char *key, size_t len)
{
    seen_t *s = ud;
    pthread_mutex_lock(&s->mu);
    if (s->n < 64)
        snprintf(s->keys[s->n++], sizeof s->keys[0], "%.*s", (int)len, key);
    pthread_mutex_unlock(&s->mu);
}

static int seen_count(seen_t *s, const char *key)
{
    pthread_mutex_lock(&s->mu);
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += strcmp(s->keys[i], key) == 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void test_watch(void **state)
{
    (void)state;
    char *dir = tmpdir();
    attune_t *a = open_at(dir, "never");
    seen_t s = {.n = 0};
    pthread_mutex_init(&s.mu, NULL);
    attune_watch_callback(a, on_change, &s);
    assert_int_equal(attune_watch(a, "", 0), ATTUNE_EINVALID);
    assert_int_equal(attune_watch(a, "w1", 2), 0);
    assert_int_equal(attune_watch(a, "u:w1", 4), 0); /* the same user, counted twice */
    waiter_t w;
    assert_int_equal(ingest(a,
                            "{\"events\":[{\"type\":\"view_item\",\"user_id\":\"w1\"},"
                            "{\"type\":\"view_item\",\"user_id\":\"w2\"},"
                            "{\"type\":\"page_view\",\"user_id\":\"w1\"}]}",
                            &w),
                     0);
    assert_int_equal(attune_wait_idle(a, 5000), 0);
    assert_int_equal(seen_count(&s, "u:w1"), 2);
    assert_int_equal(seen_count(&s, "u:w2"), 0);
    attune_unwatch(a, "w1", 2); /* still watched once */
    assert_int_equal(ingest(a, "{\"type\":\"view_item\",\"user_id\":\"w1\"}", &w), 0);
    assert_int_equal(attune_wait_idle(a, 5000), 0);
    assert_int_equal(seen_count(&s, "u:w1"), 3);
    attune_unwatch(a, "u:w1", 4);
    assert_int_equal(ingest(a, "{\"type\":\"view_item\",\"user_id\":\"w1\"}", &w), 0);
    assert_int_equal(attune_wait_idle(a, 5000), 0);
    assert_int_equal(seen_count(&s, "u:w1"), 3);
    /* many users watched and unwatched: the set grows and reuses its slots */
    char id[32];
    for (int i = 0; i < 500; i++) {
        int n = snprintf(id, sizeof id, "m%d", i);
        assert_int_equal(attune_watch(a, id, (size_t)n), 0);
    }
    for (int i = 0; i < 500; i += 2) {
        int n = snprintf(id, sizeof id, "m%d", i);
        attune_unwatch(a, id, (size_t)n);
    }
    assert_int_equal(ingest(a,
                            "{\"events\":[{\"type\":\"view_item\",\"user_id\":\"m10\"},"
                            "{\"type\":\"view_item\",\"user_id\":\"m11\"}]}",
                            &w),
                     0);
    assert_int_equal(attune_wait_idle(a, 5000), 0);
    assert_int_equal(seen_count(&s, "u:m10"), 0);
    assert_int_equal(seen_count(&s, "u:m11"), 1);
    attune_close(a);
    pthread_mutex_destroy(&s.mu);
    free(dir);
}

static void test_open_errors(void **state)
{
    (void)state;
    char *dir = tmpdir();
    attune_t *a = open_at(dir, "never");
    attune_close(a);
    char o1[600];
    snprintf(o1, sizeof o1, "data_dir=%s", dir);
    const char *over[] = {o1, "partitions=8", NULL};
    char err[512] = "";
    /* The partition count is fixed when the data directory is created. */
    assert_true(attune_open(&a, NULL, over, err, sizeof err) < 0);
    assert_true(strlen(err) > 0);
    const char *bad[] = {"fsync=sometimes", NULL};
    assert_true(attune_open(&a, NULL, bad, err, sizeof err) < 0);
    assert_non_null(strstr(err, "fsync"));
    /* A name longer than any setting's is unknown, and named whole. */
    char name[201], o2[220];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(o2, sizeof o2, "%s=1", name);
    const char *longname[] = {o2, NULL};
    assert_true(attune_open(&a, NULL, longname, err, sizeof err) < 0);
    assert_non_null(strstr(err, "unknown setting"));
    assert_non_null(strstr(err, name));
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ingest_dedup_reopen),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
