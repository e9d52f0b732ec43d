/* format.c - the bytes of the log: records and segment headers, their
 * checksums, and the small text forms (record type names, "P:OFFSET").
 *
 * Layout: log_int.h. Checksums are XXH3-64. A record's checksum covers every
 * byte after it and is seeded with the record's length, so a garbled length
 * fails the check too.
 */
#include "log_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <xxhash.h>

static const char *const at_log__type_names[] = {
    [AT_REC_EVENT] = "event", [AT_REC_TICK] = "tick",         [AT_REC_CONTROL] = "control",
    [AT_REC_MERGE] = "merge", [AT_REC_HANDOFF] = "handoff",   [AT_REC_FORWARDED] = "forwarded",
    [AT_REC_ERASE] = "erase", [AT_REC_REDACTED] = "redacted", [AT_REC_ITEM] = "item",
};

/* Returns the static name of a record type, "unknown" for others. Thread:
 * any. */
const char *at_rec_type_name(int type)
{
    if (type > 0 && (size_t)type < AT_ARRAY_LEN(at_log__type_names))
        return at_log__type_names[type];
    return "unknown";
}

/* Parses the non-negative decimal s[0..n) into *v (no sign, no overflow).
 * Returns 0 or AT_EPARSE. */
static int at_log__parse_u63(const char *s, size_t n, int64_t max, int64_t *v)
{
    if (n == 0 || n > 19)
        return AT_EPARSE;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return AT_EPARSE;
        int d = s[i] - '0';
        if (x > (max - d) / 10)
            return AT_EPARSE;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

/* Parses "P:OFFSET" (both non-negative decimals, nothing around them).
 * Returns 0 and fills both outputs, or AT_EPARSE leaving them alone. Thread:
 * any. */
int at_log_parse_position(const char *s, int *partition, int64_t *offset)
{
    if (!s)
        return AT_EPARSE;
    const char *colon = strchr(s, ':');
    if (!colon)
        return AT_EPARSE;
    int64_t p, off;
    if (at_log__parse_u63(s, (size_t)(colon - s), INT32_MAX, &p) < 0 ||
        at_log__parse_u63(colon + 1, strlen(colon + 1), INT64_MAX, &off) < 0)
        return AT_EPARSE;
    *partition = (int)p;
    *offset = off;
    return 0;
}

/* Returns the bytes rec takes on disk. Borrows rec. Thread: any. */
size_t at_log_rec_size(const at_rec_t *rec)
{
    return AT_LOG_REC_HEADER_BYTES + (size_t)rec->key_len + rec->id_len + rec->value_len;
}

/* Returns the header size of a segment for P partitions (1..AT_LOG_MAX_PARTITIONS,
 * asserted). Thread: any. */
size_t at_log_seg_header_bytes(int partitions)
{
    AT_ASSERT(partitions > 0 && partitions <= AT_LOG_MAX_PARTITIONS);
    return AT_LOG__SEG_FIXED + 8 * (size_t)partitions + 8;
}

/* Encodes rec into out (at_log_rec_size(rec) bytes, asserted to fit 32 bits;
 * append checks first). Borrows both. Thread: any. */
void at_log_rec_encode(void *out, const at_rec_t *rec)
{
    uint8_t *p = out;
    size_t len = at_log_rec_size(rec);
    AT_ASSERT(len <= UINT32_MAX);
    at_log__put32(p, (uint32_t)len);
    p[12] = rec->version;
    p[13] = rec->type;
    at_log__put16(p + 14, rec->flags);
    at_log__put32(p + 16, (uint32_t)rec->partition);
    at_log__put64(p + 20, (uint64_t)rec->offset);
    at_log__put64(p + 28, (uint64_t)rec->recv_ms);
    at_log__put64(p + 36, (uint64_t)rec->ts_ms);
    at_log__put32(p + 44, rec->key_len);
    at_log__put32(p + 48, rec->id_len);
    at_log__put32(p + 52, rec->value_len);
    uint8_t *q = p + AT_LOG_REC_HEADER_BYTES;
    if (rec->key_len)
        memcpy(q, rec->key, rec->key_len);
    q += rec->key_len;
    if (rec->id_len)
        memcpy(q, rec->id, rec->id_len);
    q += rec->id_len;
    if (rec->value_len)
        memcpy(q, rec->value, rec->value_len);
    at_log__put64(p + 4, XXH3_64bits_withSeed(p + 12, len - 12, len));
}

/* Returns the length of the valid record at p (avail bytes) and fills rec
 * with pointers into p, or 0 when there is none (end, torn, garbled).
 * Thread: any. */
size_t at_log__rec_decode(const uint8_t *p, size_t avail, int partitions, at_rec_t *rec)
{
    if (avail < AT_LOG_REC_HEADER_BYTES)
        return 0;
    uint32_t len = at_log__get32(p);
    uint32_t klen = at_log__get32(p + 44), ilen = at_log__get32(p + 48);
    uint32_t vlen = at_log__get32(p + 52);
    uint64_t want = (uint64_t)AT_LOG_REC_HEADER_BYTES + klen + ilen + vlen;
    if (len != want || len > avail)
        return 0;
    uint32_t part = at_log__get32(p + 16);
    if (part >= (uint32_t)partitions)
        return 0;
    if (at_log__get64(p + 4) != XXH3_64bits_withSeed(p + 12, len - 12, len))
        return 0;
    rec->version = p[12];
    rec->type = p[13];
    rec->flags = at_log__get16(p + 14);
    rec->partition = (int32_t)part;
    rec->offset = (int64_t)at_log__get64(p + 20);
    rec->recv_ms = (int64_t)at_log__get64(p + 28);
    rec->ts_ms = (int64_t)at_log__get64(p + 36);
    rec->key_len = klen;
    rec->id_len = ilen;
    rec->value_len = vlen;
    rec->key = (const char *)p + AT_LOG_REC_HEADER_BYTES;
    rec->id = rec->key + klen;
    rec->value = rec->id + ilen;
    return len;
}

/* Encodes h for P partitions into out (at_log_seg_header_bytes(P) bytes),
 * checksum last. Borrows both. Thread: any. */
void at_log__hdr_encode(uint8_t *out, int partitions, const at_log__hdr_t *h)
{
    static const uint8_t magic[8] = {'A', 'T', 'L', 'O', 'G', 'S', 'E', 'G'};
    memcpy(out, magic, sizeof magic);
    at_log__put32(out + 8, AT_LOG_FORMAT_VERSION);
    at_log__put32(out + 12, (uint32_t)partitions);
    at_log__put64(out + 16, h->first_seq);
    at_log__put64(out + 24, (uint64_t)h->prev_end);
    at_log__put64(out + 32, (uint64_t)h->prev_max_recv_ms);
    uint8_t *q = out + AT_LOG__SEG_FIXED;
    for (int i = 0; i < partitions; i++, q += 8)
        at_log__put64(q, (uint64_t)h->next[i]);
    at_log__put64(q, XXH3_64bits(out, (size_t)(q - out)));
}

/* Checks p[0..n) as a header of a P-partition log and fills h (h->next
 * holds P entries). Returns 0, AT_ECORRUPT or AT_EVERSION (a newer
 * format). Thread: any. */
int at_log__hdr_decode(const uint8_t *p, size_t n, int partitions, at_log__hdr_t *h)
{
    size_t hb = at_log_seg_header_bytes(partitions);
    if (n < AT_LOG__SEG_FIXED || memcmp(p, AT_LOG__SEG_MAGIC, 8) != 0)
        return AT_ECORRUPT;
    uint32_t version = at_log__get32(p + 8);
    if (version == 0)
        return AT_ECORRUPT;
    if (version > AT_LOG_FORMAT_VERSION)
        return AT_EVERSION;
    if (n < hb || at_log__get32(p + 12) != (uint32_t)partitions ||
        at_log__get64(p + hb - 8) != XXH3_64bits(p, hb - 8))
        return AT_ECORRUPT;
    h->first_seq = at_log__get64(p + 16);
    if (h->first_seq > AT_LOG__MAX_SEQ)
        return AT_ECORRUPT;
    h->prev_end = (int64_t)at_log__get64(p + 24);
    h->prev_max_recv_ms = (int64_t)at_log__get64(p + 32);
    const uint8_t *q = p + AT_LOG__SEG_FIXED;
    for (int i = 0; i < partitions; i++, q += 8) {
        h->next[i] = (int64_t)at_log__get64(q);
        if (h->next[i] < 0 || (uint64_t)h->next[i] > AT_LOG__MAX_SEQ)
            return AT_ECORRUPT;
    }
    return 0;
}
