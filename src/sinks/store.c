/* store.c - a sink's files under DATA_DIR/sinks/NAME: `position` (the
 * per-partition offsets of the oldest output not yet finished, written
 * atomically), `dead` and `skipped` (append-only framed records, see
 * deadlog.c; a torn tail is cut at open) and `replay` (which dead letters a
 * replay covers, so that one interrupted by a crash resumes). */
#include "at_core.h"
#include "sinks_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AT_SINK_MAX_LOG (1ull << 30) /* a dead-letter log read whole */

static int at_sinks__path(const at_sink_t *k, const char *file, char *out, size_t n)
{
    return snprintf(out, n, "%s/%s", k->dir, file) >= (int)n ? -ENAMETOOLONG : 0;
}

/* "v1 P o0 o1 ...\n" into pos (P entries). A missing file: all 0. */
static int at_sinks__load_pos(at_sink_t *k, char *err, size_t errlen)
{
    char path[4200];
    int rc = at_sinks__path(k, "position", path, sizeof path);
    char *text = NULL;
    size_t len = 0;
    if (rc == 0 && (rc = at_file_read(path, 1 << 20, &text, &len)) == -ENOENT)
        return 0;
    if (rc < 0) {
        (void)snprintf(err, errlen, "%s: %s", path, at_strerror(rc));
        return rc;
    }
    char *p = text, *end = NULL;
    long parts = 0;
    if (strncmp(p, "v1 ", 3) == 0)
        parts = strtol(p + 3, &end, 10);
    if (!end || parts != k->partitions)
        rc = AT_ECORRUPT;
    for (int i = 0; rc == 0 && i < k->partitions; i++) {
        p = end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0)
            rc = AT_ECORRUPT;
        else
            k->pos[i] = k->next_read[i] = v;
    }
    if (rc < 0)
        (void)snprintf(err, errlen, "%s: not a position file for %d partitions", path,
                       k->partitions);
    free(text);
    return rc;
}

static int at_sinks__load_replay(at_sink_t *k)
{
    char path[4200];
    char *text = NULL;
    size_t len = 0;
    int rc = at_sinks__path(k, "replay", path, sizeof path);
    if (rc == 0 && (rc = at_file_read(path, 4096, &text, &len)) == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    unsigned long long d = 0, t = 0;
    if (sscanf(text, "%llu %llu", &d, &t) != 2 || t < d) /* NOLINT(cert-err34-c): checked */
        rc = AT_ECORRUPT;
    free(text);
    if (rc == 0) {
        atomic_store(&k->dead_done, d);
        atomic_store(&k->dead_target, t);
    }
    return rc;
}

/* Opens an append-only log, cutting a torn tail; *end gets its length. */
static int at_sinks__open_log(at_sink_t *k, const char *file, int *fd, uint64_t *end)
{
    char path[4200];
    int rc = at_sinks__path(k, file, path, sizeof path);
    if (rc < 0)
        return rc;
    *fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (*fd < 0)
        return -errno;
    char *data = NULL;
    size_t len = 0;
    if ((rc = at_file_read(path, AT_SINK_MAX_LOG, &data, &len)) < 0)
        return rc;
    uint64_t ok = at_sink_dead_scan(data, len, 0, NULL, NULL);
    free(data);
    if (ok < len && ftruncate(*fd, (off_t)ok) != 0)
        return -errno;
    if (ok < len)
        AT_WARN("sink_log_cut", "file=%s kept=%llu dropped=%llu", path, (unsigned long long)ok,
                (unsigned long long)(len - ok));
    if (end)
        *end = ok;
    return 0;
}

int at_sinks__read_dead(const at_sink_t *k, char **data, size_t *len)
{
    char path[4200];
    int rc = at_sinks__path(k, "dead", path, sizeof path);
    return rc < 0 ? rc : at_file_read(path, AT_SINK_MAX_LOG, data, len);
}

static int at_sinks__count_fn(void *ud, uint64_t off, const char *json, size_t len)
{
    (void)off, (void)json, (void)len;
    (*(uint64_t *)ud)++;
    return 0;
}

uint64_t at_sinks__count_dead(const char *data, size_t len, uint64_t from)
{
    uint64_t n = 0;
    (void)at_sink_dead_scan(data, len, from, at_sinks__count_fn, &n);
    return n;
}

int at_sinks__open_files(at_sink_t *k, const char *data_dir, char *err, size_t errlen)
{
    int rc = 0;
    k->dead_fd = k->skip_fd = -1;
    if (snprintf(k->dir, sizeof k->dir, "%s/sinks/%s", data_dir, k->cfg->name) >=
        (int)sizeof k->dir)
        rc = -ENAMETOOLONG;
    if (rc == 0)
        rc = at_mkdirs(k->dir, 0755);
    if (rc == 0 && (rc = at_sinks__load_pos(k, err, errlen)) < 0)
        return rc;
    if (rc == 0)
        rc = at_sinks__load_replay(k);
    if (rc == 0)
        rc = at_sinks__open_log(k, "dead", &k->dead_fd, &k->dead_end);
    if (rc == 0)
        rc = at_sinks__open_log(k, "skipped", &k->skip_fd, NULL);
    if (rc == 0) {
        char *data = NULL;
        size_t len = 0;
        if ((rc = at_sinks__read_dead(k, &data, &len)) == 0)
            atomic_store(&k->a_dead, at_sinks__count_dead(data, len, atomic_load(&k->dead_done)));
        free(data);
    }
    if (rc < 0)
        (void)snprintf(err, errlen, "%s: %s", k->dir, at_strerror(rc));
    return rc;
}

void at_sinks__close_files(at_sink_t *k)
{
    if (k->dead_fd >= 0)
        (void)close(k->dead_fd);
    if (k->skip_fd >= 0)
        (void)close(k->skip_fd);
    k->dead_fd = k->skip_fd = -1;
}

static int at_sinks__write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w, n -= (size_t)w;
    }
    return 0;
}

void at_sinks__record(at_sink_t *k, bool dead, const at_sink_item_t *it, const char *reason)
{
    at_buf_t j, rec;
    at_buf_init(&j, 0);
    at_buf_init(&rec, 0);
    char at[40];
    (void)at_time_format_rfc3339(at_time_now_ms(), at);
    (void)at_buf_printf(&j, "{\"id\":");
    (void)at_buf_json_str(&j, it->id, strlen(it->id));
    (void)at_buf_puts(&j, ",\"reason\":");
    (void)at_buf_json_str(&j, reason, strlen(reason));
    (void)at_buf_printf(&j, ",\"attempts\":%d,\"status\":%ld,\"error\":", it->attempts,
                        it->last_status);
    (void)at_buf_json_str(&j, it->last_error, strlen(it->last_error));
    (void)at_buf_printf(&j, ",\"at\":\"%s\",\"seq\":%lld,\"output\":", at, (long long)it->seq);
    (void)at_buf_append(&j, it->json, it->len);
    (void)at_buf_putc(&j, '}');
    at_sink_dead_encode(&rec, j.data, j.len);
    int fd = dead ? k->dead_fd : k->skip_fd;
    int rc = at_sinks__write_all(fd, rec.data, rec.len);
    if (rc < 0) {
        AT_WARN("sink_log_write", "sink=%s log=%s error=%s", k->cfg->name,
                dead ? "dead" : "skipped", at_strerror(rc));
    } else if (dead) {
        k->dead_end += rec.len;
        atomic_fetch_add(&k->a_dead, 1);
    }
    k->logs_unsynced = true;
    at_buf_deinit(&j);
    at_buf_deinit(&rec);
}

int at_sinks__save(at_sink_t *k)
{
    if (k->logs_unsynced) {
        if (fdatasync(k->dead_fd) != 0 || fdatasync(k->skip_fd) != 0)
            return -errno; /* the position stays behind what is not durable */
        k->logs_unsynced = false;
    }
    at_buf_t b;
    at_buf_init(&b, 0);
    (void)at_buf_printf(&b, "v1 %d", k->partitions);
    for (int p = 0; p < k->partitions; p++)
        (void)at_buf_printf(&b, " %lld", (long long)k->pos[p]);
    (void)at_buf_putc(&b, '\n');
    char path[4200];
    int rc = at_sinks__path(k, "position", path, sizeof path);
    if (rc == 0)
        rc = at_file_write_atomic(path, b.data, b.len);
    at_buf_deinit(&b);
    return rc;
}

int at_sinks__save_replay(at_sink_t *k)
{
    char path[4200], text[64];
    int rc = at_sinks__path(k, "replay", path, sizeof path);
    int n =
        snprintf(text, sizeof text, "%llu %llu\n", (unsigned long long)atomic_load(&k->dead_done),
                 (unsigned long long)atomic_load(&k->dead_target));
    return rc < 0 ? rc : at_file_write_atomic(path, text, (size_t)n);
}
