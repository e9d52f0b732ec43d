/* registry.c - schemas by event type, with versions 1, 2, 3...
 *
 * Every version of a type is kept in one file, schema_dir/<type>.json:
 *   {"type":"add_to_cart","versions":[{"version":1,"schema":{...}},...]}
 * written atomically (at_file_write_atomic) before a new version becomes
 * visible. The config's schema for a type is its version 1; when the
 * config later holds a schema that is none of the stored versions it is
 * registered as the next version, under the same compatibility rules.
 *
 * THREAD SAFETY: lookups take the read lock (once per batch, by
 * at_ingest_parse); a put is serialized by put_lock, writes its file
 * without blocking readers, then publishes under the write lock.
 */
#include "ingest_int.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_SCHEMA_MAX_TYPE 80           /* bytes; keeps file names short */
#define AT_SCHEMA_MAX_BYTES (256 << 10) /* one schema's text */
#define AT_SCHEMA_MAX_FILE (64 << 20)

static at_schema_type_t *at_registry__get(const at_registry_t *r, const char *type, size_t n,
                                          uint64_t h)
{
    if (!r->nslots)
        return NULL;
    for (size_t i = h & (r->nslots - 1);; i = (i + 1) & (r->nslots - 1)) {
        size_t k = r->slots[i];
        if (!k)
            return NULL;
        at_schema_type_t *t = r->types[k - 1];
        if (t->hash == h && t->type_len == n && memcmp(t->type, type, n) == 0)
            return t;
    }
}

/* See ingest_int.h. */
const at_schema_t *at_ingest__registry_find(const at_registry_t *r, const char *type, size_t n)
{
    const at_schema_type_t *t = at_registry__get(r, type, n, at_hash64(type, n));
    return t && t->nversions ? t->versions[t->nversions - 1] : NULL;
}

static void at_registry__rehash(at_registry_t *r)
{
    size_t n = 16;
    while (n < r->ntypes * 2)
        n *= 2;
    free(r->slots);
    r->slots = at_xcalloc(n, sizeof *r->slots);
    r->nslots = n;
    for (size_t k = 0; k < r->ntypes; k++) {
        size_t i = r->types[k]->hash & (n - 1);
        while (r->slots[i])
            i = (i + 1) & (n - 1);
        r->slots[i] = k + 1;
    }
}

static at_schema_type_t *at_registry__add_type(at_registry_t *r, const char *type, size_t n)
{
    at_schema_type_t *t = at_xcalloc(1, sizeof *t);
    t->type = at_xstrndup(type, n);
    t->type_len = n;
    t->hash = at_hash64(type, n);
    r->types = at_xrealloc(r->types, (r->ntypes + 1) * sizeof(at_schema_type_t *));
    r->types[r->ntypes++] = t;
    at_registry__rehash(r);
    return t;
}

static void at_registry__push(at_schema_type_t *t, at_schema_t *s)
{
    s->version = (int)t->nversions + 1;
    s->type = t->type;
    t->versions = at_xrealloc(t->versions, (t->nversions + 1) * sizeof(at_schema_t *));
    t->versions[t->nversions++] = s;
}

/* schema_dir/<type>.json with bytes outside [A-Za-z0-9_-] as %XX. */
static char *at_registry__path(const at_registry_t *r, const char *type, size_t n)
{
    at_buf_t b;
    at_buf_init(&b, 0);
    AT_ASSERT(at_buf_printf(&b, "%s/", r->dir) == 0);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)type[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '-';
        AT_ASSERT((plain ? at_buf_putc(&b, (char)c) : at_buf_printf(&b, "%%%02X", c)) == 0);
    }
    AT_ASSERT(at_buf_puts(&b, ".json") == 0);
    size_t len;
    return at_buf_steal(&b, &len);
}

/* Writes the file of type holding versions v[0..nv) and then extra. */
static int at_registry__save(const at_registry_t *r, const char *type, size_t n,
                             at_schema_t *const *v, size_t nv, const at_schema_t *extra,
                             at_error_t *err)
{
    if (!r->dir)
        return 0;
    at_buf_t b;
    at_buf_init(&b, 0);
    at_json_w_raw(&b, "{\"type\":", 8);
    at_json_w_str(&b, type, n, true);
    at_json_w_raw(&b, ",\"versions\":[", 13);
    for (size_t i = 0; i <= nv; i++) {
        const at_schema_t *s = i < nv ? v[i] : extra;
        at_json_w_raw(&b, i ? ",{\"version\":" : "{\"version\":", i ? 12 : 11);
        at_json_w_i64(&b, (int64_t)i + 1);
        at_json_w_raw(&b, ",\"schema\":", 10);
        at_json_w_raw(&b, s->json, s->json_len);
        at_json_w_raw(&b, "}", 1);
    }
    at_json_w_raw(&b, "]}\n", 3);
    char *path = at_registry__path(r, type, n);
    int rc = at_file_write_atomic(path, b.data, b.len);
    if (rc < 0)
        at_error_set(err, rc, "io_error", NULL, "writing %s: %s", path, at_strerror(rc));
    free(path);
    at_buf_deinit(&b);
    return rc;
}

static bool at_registry__same(const at_schema_t *a, const at_schema_t *b)
{
    return a->json_len == b->json_len && memcmp(a->json, b->json, a->json_len) == 0;
}

/* Registers s (owned) as the next version of type unless it equals the
 * latest; *version gets the version. Caller holds put_lock, not the
 * rwlock. */
static int at_registry__add(at_registry_t *r, const char *type, size_t n, at_schema_t *s,
                            int *version, at_error_t *err)
{
    at_schema_type_t *t = at_registry__get(r, type, n, at_hash64(type, n));
    const at_schema_t *latest = t && t->nversions ? t->versions[t->nversions - 1] : NULL;
    if (latest && at_registry__same(latest, s)) {
        *version = latest->version;
        at_ingest__schema_free(s);
        return 0;
    }
    s->version = latest ? latest->version + 1 : 1;
    int rc = latest ? at_ingest__schema_compat(latest, s, err) : 0;
    if (rc == 0)
        rc = at_registry__save(r, type, n, t ? t->versions : NULL, t ? t->nversions : 0, s, err);
    if (rc < 0) {
        at_ingest__schema_free(s);
        return rc;
    }
    AT_ASSERT(pthread_rwlock_wrlock(&r->lock) == 0);
    if (!t)
        t = at_registry__add_type(r, type, n);
    at_registry__push(t, s);
    AT_ASSERT(pthread_rwlock_unlock(&r->lock) == 0);
    *version = s->version;
    return 0;
}

static int at_registry__check_type(const char *type, size_t n, at_error_t *err)
{
    if (n == 0 || n > AT_SCHEMA_MAX_TYPE)
        return at_error_set(err, AT_EINVALID, "invalid_schema", "type",
                            "an event type with a schema must be 1 to %d bytes",
                            AT_SCHEMA_MAX_TYPE);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)type[i] < 0x20)
            return at_error_set(err, AT_EINVALID, "invalid_schema", "type",
                                "the event type contains a control character");
    return 0;
}

/* See at_ingest.h. Thread: any. */
int at_ingest_schema_put(at_ingest_t *in, const char *type, const char *json, size_t len,
                         int *version, at_error_t *err)
{
    size_t n = strlen(type);
    int rc = at_registry__check_type(type, n, err);
    if (rc < 0)
        return rc;
    if (len > AT_SCHEMA_MAX_BYTES)
        return at_error_set(err, AT_ETOOBIG, "schema_too_large", NULL,
                            "a schema may be at most %d bytes", AT_SCHEMA_MAX_BYTES);
    at_schema_t *s;
    if ((rc = at_ingest__schema_compile(json, len, &s, err)) < 0)
        return rc;
    AT_ASSERT(pthread_mutex_lock(&in->reg.put_lock) == 0);
    rc = at_registry__add(&in->reg, type, n, s, version, err);
    AT_ASSERT(pthread_mutex_unlock(&in->reg.put_lock) == 0);
    return rc;
}

/* See at_ingest.h. Thread: any. */
int at_ingest_schema_get(at_ingest_t *in, const char *type, int version, at_buf_t *out)
{
    size_t n = strlen(type);
    int rc = AT_ENOTFOUND;
    AT_ASSERT(pthread_rwlock_rdlock(&in->reg.lock) == 0);
    const at_schema_type_t *t = at_registry__get(&in->reg, type, n, at_hash64(type, n));
    if (t && t->nversions && version >= 0 && (size_t)version <= t->nversions) {
        const at_schema_t *s = t->versions[version ? version - 1 : (int)t->nversions - 1];
        rc = at_buf_puts(out, "{\"type\":");
        if (rc == 0)
            rc = at_buf_json_str(out, t->type, t->type_len);
        if (rc == 0)
            rc = at_buf_printf(out, ",\"version\":%d,\"schema\":", s->version);
        if (rc == 0)
            rc = at_buf_append(out, s->json, s->json_len);
        if (rc == 0)
            rc = at_buf_putc(out, '}');
    }
    AT_ASSERT(pthread_rwlock_unlock(&in->reg.lock) == 0);
    return rc;
}

static int at_registry__cmp(const void *a, const void *b)
{
    const at_schema_type_t *x = *(const at_schema_type_t *const *)a;
    const at_schema_type_t *y = *(const at_schema_type_t *const *)b;
    int c = memcmp(x->type, y->type, AT_MIN(x->type_len, y->type_len));
    return c ? c : (x->type_len > y->type_len) - (x->type_len < y->type_len);
}

/* See at_ingest.h: sorted by type. Thread: any. */
int at_ingest_schema_list(at_ingest_t *in, at_buf_t *out)
{
    AT_ASSERT(pthread_rwlock_rdlock(&in->reg.lock) == 0);
    size_t n = in->reg.ntypes;
    at_schema_type_t **v = at_xmalloc((n + 1) * sizeof(at_schema_type_t *));
    if (n)
        memcpy(v, in->reg.types, n * sizeof(at_schema_type_t *));
    qsort(v, n, sizeof(at_schema_type_t *), at_registry__cmp);
    int rc = at_buf_putc(out, '[');
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!v[i]->nversions)
            continue;
        rc = at_buf_puts(out, out->data[out->len - 1] == '[' ? "{\"type\":" : ",{\"type\":");
        if (rc == 0)
            rc = at_buf_json_str(out, v[i]->type, v[i]->type_len);
        if (rc == 0)
            rc = at_buf_printf(out, ",\"version\":%zu}", v[i]->nversions);
    }
    if (rc == 0)
        rc = at_buf_putc(out, ']');
    AT_ASSERT(pthread_rwlock_unlock(&in->reg.lock) == 0);
    free(v);
    return rc;
}

/* Rewrites err (from compiling or checking the schema of type) so that it
 * names where the schema came from. Returns rc. */
static int at_registry__wrap(at_error_t *err, int rc, const char *type, const char *where)
{
    at_error_t in = *err;
    char field[sizeof err->field];
    (void)snprintf(field, sizeof field, "schemas.%s", type); /* cut like at_error_t's field */
    return at_error_set(err, rc, in.code, field, "%s %s: %s", field, where, in.message);
}

static int at_registry__load_versions(at_registry_t *r, const at_json_t *root, at_error_t *err)
{
    const at_json_t *type = at_json_get(root, "type", 4);
    const at_json_t *vers = at_json_get(root, "versions", 8);
    at_error_t in;
    if (!type || type->type != AT_JSON_STRING || !vers || vers->type != AT_JSON_ARRAY ||
        at_registry__check_type(type->s, type->len, &in) < 0)
        return at_error_set(err, AT_ECORRUPT, "corrupt_schema", NULL,
                            "expected {\"type\":T,\"versions\":[...]}");
    if (at_registry__get(r, type->s, type->len, at_hash64(type->s, type->len)))
        return at_error_set(err, AT_ECORRUPT, "corrupt_schema", NULL, "type %.*s stored twice",
                            (int)type->len, type->s);
    at_schema_type_t *t = at_registry__add_type(r, type->s, type->len);
    int64_t want = 1;
    for (const at_json_t *v = vers->child; v; v = v->next, want++) {
        const at_json_t *num = at_json_get(v, "version", 7);
        const at_json_t *sch = at_json_get(v, "schema", 6);
        int64_t got;
        if (!num || at_json_i64(num, &got) < 0 || got != want || !sch)
            return at_error_set(err, AT_ECORRUPT, "corrupt_schema", NULL,
                                "type %s: version %lld missing or out of order", t->type,
                                (long long)want);
        at_buf_t b;
        at_buf_init(&b, 0);
        at_json_w_value(&b, sch);
        at_schema_t *s;
        int rc = at_ingest__schema_compile(b.data, b.len, &s, &in);
        at_buf_deinit(&b);
        if (rc < 0)
            return at_error_set(err, AT_ECORRUPT, "corrupt_schema", NULL,
                                "type %s version %lld: %s", t->type, (long long)want, in.message);
        at_registry__push(t, s);
    }
    return 0;
}

static int at_registry__load_file(at_registry_t *r, const char *path, at_error_t *err)
{
    char *data = NULL;
    size_t len = 0;
    at_arena_t a;
    at_arena_init(&a, 16 << 10);
    at_json_t *root;
    int rc = at_file_read(path, AT_SCHEMA_MAX_FILE, &data, &len);
    if (rc < 0) {
        at_error_set(err, rc, "io_error", NULL, "%s", at_strerror(rc));
        goto out;
    }
    rc = at_json_parse_all(data, len, &a, 80, &root, err);
    if (rc == 0)
        rc = at_registry__load_versions(r, root, err);
    else
        rc = AT_ECORRUPT;
out:
    if (rc < 0) {
        at_error_t in = *err;
        at_error_set(err, rc, rc == AT_ECORRUPT ? "corrupt_schema" : in.code, NULL, "%s: %s", path,
                     in.message);
    }
    at_arena_deinit(&a);
    free(data);
    return rc;
}

static bool at_registry__is_file(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".json") == 0;
}

/* Loads every <type>.json of r->dir (a missing directory holds none). */
static int at_registry__load_dir(at_registry_t *r, at_error_t *err)
{
    DIR *d = opendir(r->dir);
    if (!d)
        return errno == ENOENT ? 0
                               : at_error_set(err, -errno, "io_error", NULL, "%s: %s", r->dir,
                                              at_strerror(-errno));
    int rc = 0;
    struct dirent *e;
    /* readdir() races only on a shared stream (glibc: MT-Unsafe
     * race:dirstream) and d is ours; readdir_r() is deprecated.
     * NOLINTNEXTLINE(concurrency-mt-unsafe) */
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!at_registry__is_file(e->d_name))
            continue;
        size_t n = strlen(r->dir) + strlen(e->d_name) + 2;
        char *path = at_xmalloc(n);
        AT_ASSERT(snprintf(path, n, "%s/%s", r->dir, e->d_name) == (int)n - 1);
        rc = at_registry__load_file(r, path, err);
        free(path);
    }
    closedir(d);
    return rc;
}

/* The config's schema for a type: version 1, or the next version when it
 * is none of the stored ones. */
static int at_registry__config(at_registry_t *r, const at_config_schema_t *cs, at_error_t *err)
{
    char where[32]; /* holds any int */
    (void)snprintf(where, sizeof where, "(config line %d)", cs->line);
    const char *type = cs->type ? cs->type : "";
    size_t n = strlen(type);
    int rc = at_registry__check_type(type, n, err);
    if (rc < 0)
        return at_registry__wrap(err, rc, type, where);
    at_schema_t *s;
    rc = at_ingest__schema_compile(cs->json ? cs->json : "", cs->json ? strlen(cs->json) : 0, &s,
                                   err);
    if (rc < 0)
        return at_registry__wrap(err, rc, type, where);
    const at_schema_type_t *t = at_registry__get(r, type, n, at_hash64(type, n));
    for (size_t i = 0; t && i < t->nversions; i++) {
        if (at_registry__same(t->versions[i], s)) {
            at_ingest__schema_free(s);
            return 0;
        }
    }
    int version;
    if ((rc = at_registry__add(r, type, n, s, &version, err)) < 0)
        return at_registry__wrap(err, rc, type, where);
    return 0;
}

/* See ingest_int.h. On failure r is left deinitialized. */
int at_ingest__registry_init(at_registry_t *r, const at_config_t *cfg, const char *dir,
                             at_error_t *err)
{
    memset(r, 0, sizeof *r);
    AT_ASSERT(pthread_rwlock_init(&r->lock, NULL) == 0);
    AT_ASSERT(pthread_mutex_init(&r->put_lock, NULL) == 0);
    r->dir = dir ? at_xstrdup(dir) : NULL;
    int rc = r->dir ? at_registry__load_dir(r, err) : 0;
    for (size_t i = 0; i < cfg->nschemas && rc == 0; i++)
        rc = at_registry__config(r, &cfg->schemas[i], err);
    if (rc < 0)
        at_ingest__registry_deinit(r);
    return rc;
}

/* Frees everything r holds. Thread: nobody else may use r. */
void at_ingest__registry_deinit(at_registry_t *r)
{
    for (size_t i = 0; i < r->ntypes; i++) {
        at_schema_type_t *t = r->types[i];
        for (size_t k = 0; k < t->nversions; k++)
            at_ingest__schema_free(t->versions[k]);
        free(t->versions);
        free(t->type);
        free(t);
    }
    free(r->types);
    free(r->slots);
    free(r->dir);
    pthread_rwlock_destroy(&r->lock);
    pthread_mutex_destroy(&r->put_lock);
    memset(r, 0, sizeof *r);
}
