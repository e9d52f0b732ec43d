/* watch.h - the users open push connections watch (watch.c): a shard
 * reports each processed record of a watched user through one callback.
 *
 * THREAD SAFETY: at_watch_add/remove/count from any thread; at_watch_hit
 * from shard threads; at_watch_set_fn before the shards run.
 */
#ifndef AT_WATCH_H
#define AT_WATCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct at_watch at_watch_t;
/* Runs on a shard thread with the namespaced user key; must not block. */
typedef void (*at_watch_fn)(void *ud, const char *key, size_t len);

at_watch_t *at_watch_new(int partitions);
void at_watch_free(at_watch_t *w);
void at_watch_set_fn(at_watch_t *w, at_watch_fn fn, void *ud);
/* Counted: a key added twice is watched until removed twice. AT_EINVALID
 * for an empty key. */
int at_watch_add(at_watch_t *w, const char *key, size_t len);
void at_watch_remove(at_watch_t *w, const char *key, size_t len);
/* A record of key was processed: calls the callback when it is watched. */
void at_watch_hit(at_watch_t *w, const char *key, size_t len);
/* Distinct keys watched. */
uint32_t at_watch_count(const at_watch_t *w);

#endif
