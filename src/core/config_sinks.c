/* config_sinks.c - the `sinks.webhooks` list of the configuration: each
 * webhook is a mapping {name, url, secret, events, segments, triggers,
 * timeout, max_attempts, backoff, backoff_max, concurrency,
 * breaker_failures, breaker_cooldown}; errors name the file's line and
 * column like the rest of the loader (config.c). */
#include "at_config.h"
#include "at_core.h"
#include "config_int.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_HOOK_MAX 64 /* webhooks in one config */

typedef struct at_hookld {
    yaml_document_t *doc;
    char *err;
    size_t errlen;
} at_hookld_t;

__attribute__((format(printf, 3, 4))) static int at_hook__fail(at_hookld_t *ld, yaml_mark_t m,
                                                               const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    /* ap is started on the line above; the analyzer loses track of it when it
     * checks this file after another. NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ld->err && ld->errlen)
        (void)snprintf(ld->err, ld->errlen, "%zu:%zu: %s", m.line + 1, m.column + 1, msg);
    return AT_EINVALID;
}

static yaml_node_t *at_hook__node(at_hookld_t *ld, int id)
{
    return yaml_document_get_node(ld->doc, id);
}

/* The text of scalar n, or NULL after an error naming field. */
static const char *at_hook__scalar(at_hookld_t *ld, yaml_node_t *n, const char *field, int *rc)
{
    if (n->type != YAML_SCALAR_NODE) {
        *rc = at_hook__fail(ld, n->start_mark, "sinks.webhooks.%s: expected a value", field);
        return NULL;
    }
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
        *rc = at_hook__fail(ld, n->start_mark, "sinks.webhooks.%s: contains a NUL byte", field);
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

void at_config_webhooks_free(at_config_webhook_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(w[i].name);
        free(w[i].url);
        free(w[i].secret);
        at_config__free_list(w[i].segments);
        at_config__free_list(w[i].triggers);
    }
    free(w);
}

/* A list of names (a YAML list or one scalar) into *out (owned). */
static int at_hook__names(at_hookld_t *ld, yaml_node_t *n, const char *field, char ***out)
{
    int rc = 0;
    bool seq = n->type == YAML_SEQUENCE_NODE;
    size_t cnt = seq ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 1;
    char **l = at_xcalloc(cnt + 1, sizeof *l);
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *it = seq ? at_hook__node(ld, n->data.sequence.items.start[i]) : n;
        const char *v = at_hook__scalar(ld, it, field, &rc);
        if (!v)
            goto out;
        if (!*v || strlen(v) > 128) {
            rc = at_hook__fail(ld, it->start_mark, "sinks.webhooks.%s: a name of 1 to 128 bytes",
                               field);
            goto out;
        }
        l[i] = at_xstrdup(v);
    }
    at_config__free_list(*out);
    *out = l;
    l = NULL;
out:
    at_config__free_list(l);
    return rc;
}

static int at_hook__events(at_hookld_t *ld, yaml_node_t *n, int *events)
{
    static const char *const names[] = {"segment_enter", "segment_exit", "trigger"};
    int rc = 0;
    bool seq = n->type == YAML_SEQUENCE_NODE;
    size_t cnt = seq ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 1;
    *events = 0;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *it = seq ? at_hook__node(ld, n->data.sequence.items.start[i]) : n;
        const char *v = at_hook__scalar(ld, it, "events", &rc);
        if (!v)
            return rc;
        int k = 0;
        while (k < 3 && strcmp(names[k], v) != 0)
            k++;
        if (k == 3)
            return at_hook__fail(ld, it->start_mark,
                                 "sinks.webhooks.events: unknown type '%.64s' (segment_enter, "
                                 "segment_exit or trigger)",
                                 v);
        *events |= 1 << k;
    }
    if (!*events)
        return at_hook__fail(ld, n->start_mark, "sinks.webhooks.events: must not be empty");
    return 0;
}

typedef struct at_hook__num {
    const char *name;
    size_t off;
    bool duration; /* int64_t ms, else int */
    int64_t min, max;
} at_hook__num_t;

#define HOFF(f) offsetof(at_config_webhook_t, f)
static const at_hook__num_t at_hook__nums[] = {
    {"timeout", HOFF(timeout_ms), true, 10, 600000},
    {"max_attempts", HOFF(max_attempts), false, 1, 1000},
    {"backoff", HOFF(backoff_ms), true, 1, 86400000},
    {"backoff_max", HOFF(backoff_max_ms), true, 1, 86400000},
    {"concurrency", HOFF(concurrency), false, 1, 1024},
    {"breaker_failures", HOFF(breaker_failures), false, 1, 1000000},
    {"breaker_cooldown", HOFF(breaker_cooldown_ms), true, 1, 86400000},
};

static int at_hook__number(at_hookld_t *ld, const at_hook__num_t *d, yaml_node_t *vn,
                           at_config_webhook_t *w)
{
    int rc = 0;
    const char *v = at_hook__scalar(ld, vn, d->name, &rc);
    if (!v)
        return rc;
    int64_t x = 0;
    char *end = NULL;
    if (d->duration) {
        if (at_parse_duration_ms(v, &x) != 0)
            return at_hook__fail(ld, vn->start_mark,
                                 "sinks.webhooks.%s: '%.64s' is not a duration like 250ms, 5s, "
                                 "10m or 2h",
                                 d->name, v);
    } else {
        long long l = strtoll(v, &end, 10);
        if (end == v || *end)
            return at_hook__fail(ld, vn->start_mark, "sinks.webhooks.%s: '%.64s' is not an integer",
                                 d->name, v);
        x = l;
    }
    if (x < d->min || x > d->max)
        return at_hook__fail(ld, vn->start_mark,
                             "sinks.webhooks.%s: %lld is out of range %lld..%lld", d->name,
                             (long long)x, (long long)d->min, (long long)d->max);
    if (d->duration)
        *(int64_t *)((char *)w + d->off) = x;
    else
        *(int *)((char *)w + d->off) = (int)x;
    return 0;
}

static void at_hook__defaults(at_config_webhook_t *w)
{
    memset(w, 0, sizeof *w);
    w->events = AT_SINK_EV_ALL;
    w->timeout_ms = 5000;
    w->max_attempts = 8;
    w->backoff_ms = 1000;
    w->backoff_max_ms = 300000;
    w->concurrency = 4;
    w->breaker_failures = 5;
    w->breaker_cooldown_ms = 30000;
}

static bool at_hook__name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int at_hook__string(at_hookld_t *ld, const char *k, yaml_node_t *vn, at_config_webhook_t *w)
{
    int rc = 0;
    const char *v = at_hook__scalar(ld, vn, k, &rc);
    if (!v)
        return rc;
    char **f = !strcmp(k, "name") ? &w->name : !strcmp(k, "url") ? &w->url : &w->secret;
    if (f == &w->name && !at_hook__name_ok(v))
        return at_hook__fail(ld, vn->start_mark,
                             "sinks.webhooks.name: '%.64s' must be 1 to 64 of A-Z a-z 0-9 _ -", v);
    if (f == &w->url && strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
        return at_hook__fail(ld, vn->start_mark,
                             "sinks.webhooks.url: '%.100s' must start with http:// or https://", v);
    if (f == &w->url && strlen(v) > 2048)
        return at_hook__fail(ld, vn->start_mark, "sinks.webhooks.url: longer than 2048 bytes");
    if (f == &w->secret && (strlen(v) < 8 || strlen(v) > 1024))
        return at_hook__fail(ld, vn->start_mark,
                             "sinks.webhooks.secret: must be 8 to 1024 bytes long");
    free(*f);
    *f = at_xstrdup(v);
    return 0;
}

/* One pair key: value of a webhook mapping. */
static int at_hook__field(at_hookld_t *ld, yaml_node_t *kn, yaml_node_t *vn, at_config_webhook_t *w)
{
    int rc = 0;
    const char *k = at_hook__scalar(ld, kn, "(key)", &rc);
    if (!k)
        return rc;
    if (!strcmp(k, "name") || !strcmp(k, "url") || !strcmp(k, "secret"))
        return at_hook__string(ld, k, vn, w);
    if (!strcmp(k, "events"))
        return at_hook__events(ld, vn, &w->events);
    if (!strcmp(k, "segments"))
        return at_hook__names(ld, vn, "segments", &w->segments);
    if (!strcmp(k, "triggers"))
        return at_hook__names(ld, vn, "triggers", &w->triggers);
    for (size_t i = 0; i < AT_ARRAY_LEN(at_hook__nums); i++) {
        if (!strcmp(k, at_hook__nums[i].name))
            return at_hook__number(ld, &at_hook__nums[i], vn, w);
    }
    return at_hook__fail(ld, kn->start_mark,
                         "unknown key 'sinks.webhooks.%.64s' (name, url, secret, events, "
                         "segments, triggers, timeout, max_attempts, backoff, backoff_max, "
                         "concurrency, breaker_failures, breaker_cooldown)",
                         k);
}

static int at_hook__load_one(at_hookld_t *ld, yaml_node_t *n, at_config_webhook_t *w)
{
    at_hook__defaults(w);
    w->line = (int)n->start_mark.line + 1;
    w->col = (int)n->start_mark.column + 1;
    if (n->type != YAML_MAPPING_NODE)
        return at_hook__fail(
            ld, n->start_mark,
            "sinks.webhooks: each webhook must be a mapping {name, url, secret, ...}");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = at_hook__node(ld, p->key);
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *prev = at_hook__node(ld, q->key);
            if (kn->type == YAML_SCALAR_NODE && prev->type == YAML_SCALAR_NODE &&
                !strcmp((const char *)kn->data.scalar.value, (const char *)prev->data.scalar.value))
                return at_hook__fail(ld, kn->start_mark, "sinks.webhooks.%.64s is set twice",
                                     (const char *)kn->data.scalar.value);
        }
        int rc = at_hook__field(ld, kn, at_hook__node(ld, p->value), w);
        if (rc)
            return rc;
    }
    const char *missing = !w->name ? "name" : !w->url ? "url" : !w->secret ? "secret" : NULL;
    if (missing)
        return at_hook__fail(ld, n->start_mark, "sinks.webhooks: '%s' is missing", missing);
    if (w->backoff_max_ms < w->backoff_ms)
        return at_hook__fail(ld, n->start_mark,
                             "sinks.webhooks: backoff_max (%lldms) is below backoff (%lldms)",
                             (long long)w->backoff_max_ms, (long long)w->backoff_ms);
    return 0;
}

int at_config__load_webhooks(yaml_document_t *doc, yaml_node_t *n, at_config_t *c, char *err,
                             size_t errlen)
{
    at_hookld_t ld = {doc, err, errlen};
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0) {
        at_config_webhooks_free(c->webhooks, c->nwebhooks);
        c->webhooks = NULL, c->nwebhooks = 0;
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return at_hook__fail(&ld, n->start_mark, "sinks.webhooks: expected a list of webhooks");
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt > AT_HOOK_MAX)
        return at_hook__fail(&ld, n->start_mark, "sinks.webhooks: more than %d webhooks",
                             AT_HOOK_MAX);
    at_config_webhook_t *w = at_xcalloc(cnt ? cnt : 1, sizeof *w);
    size_t i = 0;
    int rc = 0;
    for (; i < cnt; i++) {
        yaml_node_t *item = at_hook__node(&ld, n->data.sequence.items.start[i]);
        rc = at_hook__load_one(&ld, item, &w[i]);
        for (size_t j = 0; !rc && j < i; j++) {
            if (!strcmp(w[j].name, w[i].name))
                rc = at_hook__fail(&ld, item->start_mark,
                                   "sinks.webhooks: the name '%s' is used twice", w[i].name);
        }
        if (rc) {
            i++; /* w[i] holds owned strings too */
            goto out;
        }
    }
    at_config_webhooks_free(c->webhooks, c->nwebhooks);
    c->webhooks = w, c->nwebhooks = cnt;
    w = NULL;
out:
    if (w)
        at_config_webhooks_free(w, i);
    return rc;
}
