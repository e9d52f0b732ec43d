/* watch.c - users someone is watching (an open push connection): after a
 * shard processed a record of one of them, a callback tells the watcher,
 * which then re-decides what the user sees (DESIGN.md §7 "Push").
 *
 * One set per partition of the key under its own mutex; while nobody
 * watches, the cost per record is one relaxed atomic load.
 *
 * THREAD SAFETY: at_watch_add/remove from any thread; at_watch_hit on the
 * partition's shard thread.
 */
#include "watch.h"
#include "at_engine.h"

#include <stdlib.h>
#include <string.h>

typedef struct at_wentry {
    char *key; /* NULL: empty; AT_WATCH_GONE: removed */
    uint32_t len;
    uint32_t refs;
    uint64_t h;
} at_wentry_t;

static char at_watch__gone_mark;
#define AT_WATCH_GONE (&at_watch__gone_mark)

typedef struct at_wpart {
    pthread_mutex_t mu;
    _Atomic uint32_t count; /* distinct keys watched */
    at_wentry_t *v;
    size_t cap, used; /* used counts removed slots too, until a rebuild */
} at_wpart_t;

struct at_watch {
    int partitions;
    at_wpart_t *parts;
    _Atomic uint32_t total; /* keys watched in all partitions */
    at_watch_fn fn;
    void *ud;
};

at_watch_t *at_watch_new(int partitions)
{
    at_watch_t *w = at_xcalloc(1, sizeof *w);
    w->partitions = partitions;
    w->parts = at_xcalloc((size_t)partitions, sizeof *w->parts);
    for (int p = 0; p < partitions; p++)
        pthread_mutex_init(&w->parts[p].mu, NULL);
    return w;
}

void at_watch_free(at_watch_t *w)
{
    if (!w)
        return;
    for (int p = 0; p < w->partitions; p++) {
        at_wpart_t *wp = &w->parts[p];
        for (size_t i = 0; i < wp->cap; i++)
            if (wp->v[i].key && wp->v[i].key != AT_WATCH_GONE)
                free(wp->v[i].key);
        free(wp->v);
        pthread_mutex_destroy(&wp->mu);
    }
    free(w->parts);
    free(w);
}

void at_watch_set_fn(at_watch_t *w, at_watch_fn fn, void *ud)
{
    w->fn = fn;
    w->ud = ud;
}

/* The slot holding key, or (when absent) NULL with *free_at the first
 * empty or removed slot of its probe sequence. Under wp->mu, cap > 0. */
static at_wentry_t *at_watch__find(at_wpart_t *wp, const char *key, size_t len, uint64_t h,
                                   at_wentry_t **free_at)
{
    size_t mask = wp->cap - 1;
    at_wentry_t *first = NULL;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        at_wentry_t *e = &wp->v[i];
        if (!e->key) {
            if (free_at)
                *free_at = first ? first : e;
            return NULL;
        }
        if (e->key == AT_WATCH_GONE) {
            if (!first)
                first = e;
            continue;
        }
        if (e->h == h && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    }
}

static void at_watch__grow(at_wpart_t *wp)
{
    size_t ncap = wp->cap ? wp->cap : 16;
    while (ncap < 4 * ((size_t)atomic_load(&wp->count) + 1))
        ncap *= 2;
    at_wentry_t *old = wp->v;
    size_t ocap = wp->cap;
    wp->v = at_xcalloc(ncap, sizeof *wp->v);
    wp->cap = ncap;
    wp->used = 0;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].key || old[i].key == AT_WATCH_GONE)
            continue;
        at_wentry_t *slot = NULL;
        (void)at_watch__find(wp, old[i].key, old[i].len, old[i].h, &slot);
        *slot = old[i];
        wp->used++;
    }
    free(old);
}

int at_watch_add(at_watch_t *w, const char *key, size_t len)
{
    if (len == 0 || len > UINT32_MAX)
        return AT_EINVALID;
    uint64_t h = at_hash64(key, len);
    at_wpart_t *wp = &w->parts[at_partition_of(key, len, w->partitions)];
    pthread_mutex_lock(&wp->mu);
    if (2 * (wp->used + 1) > wp->cap)
        at_watch__grow(wp);
    at_wentry_t *slot = NULL;
    at_wentry_t *e = at_watch__find(wp, key, len, h, &slot);
    if (e) {
        e->refs++;
    } else {
        if (!slot->key)
            wp->used++;
        slot->key = at_xmalloc(len);
        memcpy(slot->key, key, len);
        slot->len = (uint32_t)len;
        slot->h = h;
        slot->refs = 1;
        atomic_fetch_add_explicit(&wp->count, 1, memory_order_release);
        atomic_fetch_add_explicit(&w->total, 1, memory_order_release);
    }
    pthread_mutex_unlock(&wp->mu);
    return 0;
}

void at_watch_remove(at_watch_t *w, const char *key, size_t len)
{
    if (len == 0)
        return;
    uint64_t h = at_hash64(key, len);
    at_wpart_t *wp = &w->parts[at_partition_of(key, len, w->partitions)];
    pthread_mutex_lock(&wp->mu);
    at_wentry_t *e = wp->cap ? at_watch__find(wp, key, len, h, NULL) : NULL;
    if (e && --e->refs == 0) {
        free(e->key);
        e->key = AT_WATCH_GONE;
        atomic_fetch_sub_explicit(&wp->count, 1, memory_order_release);
        atomic_fetch_sub_explicit(&w->total, 1, memory_order_release);
    }
    pthread_mutex_unlock(&wp->mu);
}

void at_watch_hit(at_watch_t *w, const char *key, size_t len)
{
    if (atomic_load_explicit(&w->total, memory_order_relaxed) == 0 || len == 0)
        return;
    /* the key's own partition: a forwarded record's key may be an alias
     * held elsewhere */
    at_wpart_t *wp = &w->parts[at_partition_of(key, len, w->partitions)];
    uint64_t h = at_hash64(key, len);
    pthread_mutex_lock(&wp->mu);
    bool hit = wp->cap && at_watch__find(wp, key, len, h, NULL) != NULL;
    /* read under the lock: the callback was set before the first add */
    at_watch_fn fn = w->fn;
    void *ud = w->ud;
    pthread_mutex_unlock(&wp->mu);
    if (hit && fn)
        fn(ud, key, len);
}

uint32_t at_watch_count(const at_watch_t *w)
{
    return atomic_load_explicit(&w->total, memory_order_relaxed);
}
