/* fuzz_log_segment.c - arbitrary bytes as the last segment file of a log.
 *
 * The input is written as a segment (named by the sequence number its
 * header claims) next to a valid meta file, then the log is opened
 * read-only and read, opened for writing (which recovers the tail) and read,
 * appended to and read again. Nothing may crash, and every record returned
 * must be byte for byte the input at the place it came from, so its
 * checksum is valid.
 */
#include "at_core.h"
#include "at_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FZ_PARTITIONS 4
#define FZ_SEGMENT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_dir[4096];
static uint8_t fz_enc[1 << 16];

#define FZ_CHECK(c)                                                                                \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_log_segment: check failed: %s (line %d)\n", #c, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Creates the scratch directory with its meta file, once. */
static void fz_setup(void)
{
    const char *base = getenv("AT_TEST_TMP");
    snprintf(fz_dir, sizeof fz_dir, "%s/fuzz-log-XXXXXX", base && *base ? base : "/tmp");
    FZ_CHECK(at_mkdirs(base && *base ? base : "/tmp", 0755) == 0);
    FZ_CHECK(mkdtemp(fz_dir) != NULL);
    char path[4200], meta[64];
    int n = snprintf(meta, sizeof meta, "attune-log\nformat %d\npartitions %d\n",
                     AT_LOG_FORMAT_VERSION, FZ_PARTITIONS);
    snprintf(path, sizeof path, "%s/meta", fz_dir);
    FZ_CHECK(at_file_write_atomic(path, meta, (size_t)n) == 0);
}

/* Deletes every segment file, then writes the input as the only one. */
static void fz_reset(const uint8_t *data, size_t size)
{
    DIR *d = opendir(fz_dir);
    FZ_CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".seg"))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    uint64_t seq = 0;
    for (int i = 0; i < 8 && size >= 24; i++)
        seq |= (uint64_t)data[16 + i] << (8 * i);
    char path[4200];
    snprintf(path, sizeof path, "%s/%020llu.seg", fz_dir, (unsigned long long)seq);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    FZ_CHECK(fd >= 0);
    FZ_CHECK(write(fd, data, size) == (ssize_t)size);
    close(fd);
}

/* Reads the whole log; checks each record against the input at the running
 * position (the first n_input records), and returns how many there were.
 * *last gets a copy of the last record's encoding length. */
static size_t fz_read(at_log_t *log, const uint8_t *data, size_t size, size_t n_input,
                      const at_rec_t *extra)
{
    at_log_iter_t *it = NULL;
    FZ_CHECK(at_log_iter_open(log, NULL, &it) == 0);
    int64_t next[FZ_PARTITIONS] = {0};
    bool seen[FZ_PARTITIONS] = {false};
    size_t pos = at_log_seg_header_bytes(FZ_PARTITIONS), n = 0;
    at_rec_t rec;
    int rc;
    while ((rc = at_log_iter_next(it, &rec)) == 1) {
        FZ_CHECK(rec.partition >= 0 && rec.partition < FZ_PARTITIONS);
        FZ_CHECK(!seen[rec.partition] || rec.offset == next[rec.partition]);
        seen[rec.partition] = true;
        next[rec.partition] = rec.offset + 1;
        size_t len = at_log_rec_size(&rec);
        FZ_CHECK(len <= sizeof fz_enc);
        at_log_rec_encode(fz_enc, &rec);
        if (n < n_input || !extra) {
            FZ_CHECK(pos + len <= size && memcmp(fz_enc, data + pos, len) == 0);
            pos += len;
        } else {
            FZ_CHECK(rec.value_len == extra->value_len &&
                     memcmp(rec.value, extra->value, rec.value_len) == 0);
        }
        n++;
    }
    FZ_CHECK(rc == 0 || rc == AT_ECORRUPT || rc == AT_EVERSION);
    at_log_iter_close(it);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz_dir[0])
        fz_setup();
    fz_reset(data, size);
    char err[256];
    at_log_t *log = NULL;
    at_log_opts_t ro = {.read_only = true};
    size_t n_ro = SIZE_MAX;
    if (at_log_open(&log, fz_dir, &ro, err, sizeof err) == 0) {
        n_ro = fz_read(log, data, size, SIZE_MAX, NULL);
        at_log_close(log);
    }
    at_log_opts_t rw = {.segment_bytes = FZ_SEGMENT};
    if (at_log_open(&log, fz_dir, &rw, err, sizeof err) != 0)
        return 0;
    /* Recovery keeps exactly what a reader saw. */
    size_t n = fz_read(log, data, size, SIZE_MAX, NULL);
    FZ_CHECK(n_ro == SIZE_MAX || n == n_ro);
    at_rec_t add = {.partition = 1,
                    .type = AT_REC_EVENT,
                    .version = 1,
                    .key = "u:fz",
                    .key_len = 4,
                    .value = "{\"type\":\"x\"}",
                    .value_len = 12};
    FZ_CHECK(at_log_append(log, &add, 1) == 0);
    FZ_CHECK(fz_read(log, data, size, n, &add) == n + 1);
    at_log_close(log);
    return 0;
}
