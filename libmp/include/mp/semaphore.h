/*  mp/semaphore.h - Semaphore and BoundedSemaphore, process-shared.

    A counter with blocking acquire, as Python's multiprocessing.Semaphore.
    A BoundedSemaphore refuses a release that would exceed its initial value
    (MP_EVALUE), catching a release without acquire.

    Thread-safety: thread-safe. Fork: shared with children forked after
    mp_semaphore_new(). Signals: not async-signal-safe.
*/
#ifndef MP_SEMAPHORE_H_INCLUDED
#define MP_SEMAPHORE_H_INCLUDED

#include "mp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_semaphore mp_semaphore_t;

/* NULL when out of memory or value < 0. */
MP_EXPORT mp_semaphore_t *mp_semaphore_new(int value);
MP_EXPORT mp_semaphore_t *mp_bounded_semaphore_new(int value);
MP_EXPORT void mp_semaphore_destroy(mp_semaphore_t **sem_p);

/* Decrements, waiting while the value is 0. 0 or MP_ETIMEDOUT. */
MP_EXPORT int mp_semaphore_acquire(mp_semaphore_t *sem, int timeout_ms);
/* Increments and wakes one waiter. 0, or MP_EVALUE for a BoundedSemaphore
   already at its initial value. */
MP_EXPORT int mp_semaphore_release(mp_semaphore_t *sem);
/* The current value (a snapshot). */
MP_EXPORT int mp_semaphore_get_value(mp_semaphore_t *sem);

#ifdef __cplusplus
}
#endif

#endif
