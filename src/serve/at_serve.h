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

#endif
