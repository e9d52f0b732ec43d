/* state.c - the calls of attune.h that read processing state (users,
 * segment members, digests), the output bus, and the offline tools that
 * read a data directory without a running engine.
 *
 * THREAD SAFETY: any thread; answers come on shard threads.
 */
#include "at_ckpt.h"
#include "at_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

size_t at_engine__user_key(const char *id, size_t n, char *out, size_t cap)
{
    bool ns = n >= 2 && (id[0] == 'u' || id[0] == 'a') && id[1] == ':';
    size_t len = ns ? n : n + 2;
    if (n == 0 || len >= cap)
        return 0;
    if (ns) {
        memcpy(out, id, n);
    } else {
        out[0] = 'u';
        out[1] = ':';
        memcpy(out + 2, id, n);
    }
    return len;
}

int64_t at_engine__position_for(const char *list, int p)
{
    for (const char *s = list; s && *s;) {
        char *end;
        long q = strtol(s, &end, 10);
        if (*end == ':') {
            long long off = strtoll(end + 1, &end, 10);
            if (q == p)
                return off;
        }
        s = strchr(end, ',');
        if (s)
            s++;
    }
    return -1;
}

int attune_user(attune_t *a, const char *id, size_t n, unsigned what, const char *min_position,
                attune_done_cb cb, void *ud)
{
    char key[1100];
    size_t kl = at_engine__user_key(id, n, key, sizeof key);
    if (!kl)
        return AT_EINVALID;
    int p = at_partition_of(key, kl, a->partitions);
    int64_t min_offset = min_position ? at_engine__position_for(min_position, p) : -1;
    return at_streams_user(a->streams, key, kl, what, min_offset, cb, ud);
}

void attune_watch_callback(attune_t *a, attune_change_fn fn, void *ud)
{
    at_watch_set_fn(a->watch, fn, ud);
}

int attune_watch(attune_t *a, const char *id, size_t n)
{
    char key[1100];
    size_t kl = at_engine__user_key(id, n, key, sizeof key);
    return kl ? at_watch_add(a->watch, key, kl) : AT_EINVALID;
}

void attune_unwatch(attune_t *a, const char *id, size_t n)
{
    char key[1100];
    size_t kl = at_engine__user_key(id, n, key, sizeof key);
    if (kl)
        at_watch_remove(a->watch, key, kl);
}

int attune_segment_members(attune_t *a, const char *name, size_t n, const char *cursor, int limit,
                           attune_done_cb cb, void *ud)
{
    if (limit <= 0 || limit > 10000)
        limit = limit <= 0 ? 100 : 10000;
    return at_streams_members(a->streams, name, n, cursor, (size_t)limit, cb, ud);
}

int attune_digest(attune_t *a, attune_done_cb cb, void *ud)
{
    return at_streams_digest(a->streams, cb, ud);
}

int attune_wait_idle(attune_t *a, int timeout_ms)
{
    for (int i = 0; i <= timeout_ms; i++) {
        pthread_mutex_lock(&a->mu);
        bool queued = a->head || a->ihead;
        pthread_mutex_unlock(&a->mu);
        if (!queued && at_streams_caught_up(a->streams, atomic_load(&a->durable)))
            return 0;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return AT_EUNAVAIL;
}

int attune_partitions(const attune_t *a)
{
    return a->partitions;
}

/* ---- the output bus ----------------------------------------------------------- */

struct attune_outputs {
    at_outreader_t *r;
};

int attune_outputs_open(attune_t *a, const int64_t *from, attune_outputs_t **out)
{
    attune_outputs_t *o = at_xcalloc(1, sizeof *o);
    int rc = at_outreader_open(a->streams, from, &o->r);
    if (rc < 0) {
        free(o);
        return rc;
    }
    *out = o;
    return 0;
}

typedef struct at_out_adapter {
    attune_output_cb cb;
    void *ud;
} at_out_adapter_t;

static int at_engine__out_fn(void *ud, int partition, int64_t offset, const char *key, size_t klen,
                             const char *json, size_t len)
{
    (void)key;
    (void)klen;
    at_out_adapter_t *x = ud;
    return x->cb(x->ud, partition, offset, json, len);
}

int attune_outputs_next(attune_outputs_t *o, attune_output_cb cb, void *ud, int max)
{
    at_out_adapter_t x = {cb, ud};
    return at_outreader_next(o->r, at_engine__out_fn, &x, max);
}

void attune_outputs_wait(attune_outputs_t *o, int timeout_ms)
{
    at_outreader_wait(o->r, timeout_ms);
}

void attune_outputs_close(attune_outputs_t *o)
{
    if (!o)
        return;
    at_outreader_close(o->r);
    free(o);
}

int attune_outputs_read(const char *data_dir, const int64_t *from, attune_output_cb cb, void *ud,
                        char *err, size_t errlen)
{
    char dir[4096];
    int rc = 0;
    for (int p = 0; rc == 0; p++) {
        if (snprintf(dir, sizeof dir, "%s/out/p%04d", data_dir, p) >= (int)sizeof dir)
            return -ENAMETOOLONG;
        char meta[4200];
        (void)snprintf(meta, sizeof meta, "%s/meta", dir);
        if (access(meta, F_OK) != 0)
            break; /* no more partitions */
        at_log_t *log = NULL;
        at_log_opts_t lo = {.partitions = 1, .read_only = true};
        if ((rc = at_log_open(&log, dir, &lo, err, errlen)) < 0)
            return rc;
        at_log_iter_t *it = NULL;
        int64_t f = from ? from[p] : 0;
        rc = at_log_iter_open(log, &f, &it);
        at_rec_t r;
        while (rc == 0 && (rc = at_log_iter_next(it, &r)) == 1)
            rc = cb(ud, p, r.offset, r.value, r.value_len);
        at_log_iter_close(it);
        at_log_close(log);
        if (rc < 0)
            (void)snprintf(err, errlen, "%s: %s", dir, at_strerror(rc));
    }
    return rc > 0 ? rc : rc < 0 ? rc : 0;
}

/* ---- the offline digest ---------------------------------------------------------- */

typedef struct at_offline_out {
    attune_output_cb cb;
    void *ud;
} at_offline_out_t;

static void at_engine__offline_output(void *ud, const at_proc_out_t *po)
{
    at_offline_out_t *o = ud;
    if (o->cb)
        (void)o->cb(o->ud, po->partition, po->offset, po->json, po->json_len);
}

static int at_engine__offline_user(void *ud, const void *key, size_t klen, const void *val,
                                   size_t vlen)
{
    return at_proc_restore_user(ud, key, klen, val, vlen);
}

void at_engine__proc_cfg(const at_config_t *c, at_proc_cfg_t *pc, int partitions);

int attune_state_digest(const char *config_path, const char *const *overrides, int from_scratch,
                        uint64_t *digest, attune_output_cb outputs, void *ud, char *err,
                        size_t errlen)
{
    at_offline_out_t oo = {outputs, ud};
    at_proc_ops_t ops = {at_engine__offline_output, NULL};
    at_config_t cfg;
    if (errlen)
        err[0] = '\0';
    at_config_defaults(&cfg);
    int rc = config_path ? at_config_load_file(&cfg, config_path, err, errlen) : 0;
    for (size_t i = 0; rc == 0 && overrides && overrides[i]; i++) {
        const char *eq = strchr(overrides[i], '=');
        char name[128];
        if (!eq || (size_t)(eq - overrides[i]) >= sizeof name) {
            (void)snprintf(err, errlen, "bad setting '%s'", overrides[i]);
            rc = AT_EINVALID;
            break;
        }
        memcpy(name, overrides[i], (size_t)(eq - overrides[i]));
        name[eq - overrides[i]] = '\0';
        rc = at_config_set(&cfg, name, eq + 1, err, errlen);
    }
    char logdir[4096];
    at_log_t *log = NULL;
    if (rc == 0) {
        (void)snprintf(logdir, sizeof logdir, "%s/log", cfg.data_dir);
        at_log_opts_t lo = {.read_only = true};
        rc = at_log_open(&log, logdir, &lo, err, errlen);
    }
    if (rc < 0) {
        at_config_free(&cfg);
        return rc;
    }
    int P = at_log_partitions(log);
    at_proc_cfg_t pc;
    at_engine__proc_cfg(&cfg, &pc, P);
    at_proc_t **pr = at_xcalloc((size_t)P, sizeof(at_proc_t *));
    int64_t *from = at_xcalloc((size_t)P, sizeof *from);
    for (int p = 0; p < P && rc == 0; p++) {
        pr[p] = at_proc_new(p, &pc, &ops, &oo);
        if (from_scratch)
            continue;
        char dir[4096];
        at_ckpt_t *ck = NULL;
        at_ckpt_opts_t co = {.read_only = true};
        if ((rc = at_ckpt_dir(dir, sizeof dir, cfg.data_dir, p)) < 0 ||
            (rc = at_ckpt_open(&ck, dir, p, &co, err, errlen)) < 0)
            break;
        void *meta = NULL;
        size_t mlen = 0;
        uint64_t id;
        rc = at_ckpt_load(ck, &meta, &mlen, &id, at_engine__offline_user, pr[p], err, errlen);
        if (rc == 0) {
            at_error_t e;
            if ((rc = at_proc_restore_meta(pr[p], meta, mlen, &e)) < 0)
                (void)snprintf(err, errlen, "partition %d: %s", p, e.message);
            at_proc_restore_done(pr[p]);
        } else if (rc == AT_ENOTFOUND) {
            rc = 0;
        }
        free(meta);
        at_ckpt_close(ck);
        from[p] = at_proc_next_offset(pr[p]);
    }
    at_log_iter_t *it = NULL;
    if (rc == 0)
        rc = at_log_iter_open(log, from, &it);
    at_rec_t r;
    while (rc == 0 && (rc = at_log_iter_next(it, &r)) == 1) {
        at_proc_record(pr[r.partition], &r);
        rc = 0;
    }
    at_log_iter_close(it);
    if (rc < 0 && !err[0])
        (void)snprintf(err, errlen, "reading the log: %s", at_strerror(rc));
    uint64_t d = 0;
    const char *verbose =
        getenv("ATTUNE_DIGEST_VERBOSE"); /* NOLINT(concurrency-mt-unsafe): one thread */
    for (int p = 0; p < P; p++) {
        if (rc == 0) {
            uint64_t x = at_proc_digest(pr[p]);
            d += x;
            if (verbose) {
                at_proc_stats_t st;
                at_proc_stats(pr[p], &st);
                (void)fprintf(stderr,
                              "partition %d: digest %016llx users %llu pending %llu wm %lld "
                              "next %lld out %lld\n",
                              p, (unsigned long long)x, (unsigned long long)st.users,
                              (unsigned long long)st.pending, (long long)st.watermark,
                              (long long)st.next_offset, (long long)st.out_next);
            }
        }
        at_proc_free(pr[p]);
    }
    free(pr);
    free(from);
    at_log_close(log);
    at_config_free(&cfg);
    if (rc == 0)
        *digest = d;
    return rc;
}
