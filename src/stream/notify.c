/* notify.c - a generation counter with a condition variable. */
#include "at_stream.h"

#include <time.h>

void at_notify_init(at_notify_t *n)
{
    pthread_mutex_init(&n->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cv, &ca);
    pthread_condattr_destroy(&ca);
    n->gen = 0;
}

void at_notify_deinit(at_notify_t *n)
{
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
}

void at_notify_signal(at_notify_t *n)
{
    pthread_mutex_lock(&n->mu);
    n->gen++;
    pthread_mutex_unlock(&n->mu);
    /* after the unlock: a waiter woken under the lock would, on a busy
     * CPU, run only to block on the mutex and hand the CPU back */
    pthread_cond_broadcast(&n->cv);
}

void at_notify_wait(at_notify_t *n, uint64_t *seen, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&n->mu);
    while (n->gen == *seen) {
        if (pthread_cond_timedwait(&n->cv, &n->mu, &ts) != 0)
            break;
    }
    *seen = n->gen;
    pthread_mutex_unlock(&n->mu);
}
