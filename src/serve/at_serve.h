/* at_serve.h - the REST API over HTTP (DESIGN.md §4) on top of at_http.h
 * and attune.h.
 *
 * THREAD SAFETY: at_serve_run blocks the calling thread until SIGINT or
 * SIGTERM (or at_serve_stop), then returns; at_serve_stop is
 * async-signal-safe.
 */
#ifndef AT_SERVE_H
#define AT_SERVE_H

#include "attune.h"

#include <stddef.h>

/* Binds the configured address, serves until stopped, then lets requests in
 * flight finish. Installs SIGINT/SIGTERM handlers that stop it. Returns 0 or
 * <0 with a message in err (e.g. the address is in use). */
int at_serve_run(attune_t *a, char *err, size_t errlen);
void at_serve_stop(void);

/* The sinks' side of GET /v1/sinks, GET /v1/sinks/{name}/dead and POST
 * /v1/sinks/{name}/dead/replay and of /metrics (src/sinks/at_sinks.h), set
 * by the CLI before at_serve_run. JSON answers are owned (free()); unknown
 * sink: AT_ENOTFOUND. Borrowed until at_serve_run returns. */
struct at_buf;
typedef struct at_serve_sinks {
    void *ud;
    int (*list)(void *ud, char **json, size_t *len);
    int (*dead)(void *ud, const char *name, int limit, char **json, size_t *len);
    int (*replay)(void *ud, const char *name, char **json, size_t *len);
    int (*metrics)(void *ud, struct at_buf *out);
} at_serve_sinks_t;
void at_serve_set_sinks(const at_serve_sinks_t *ops);

#endif
