/*  mp/lock.h - Lock and RLock: robust, process-shared mutual exclusion.

    A lock lives in shared memory inherited by every process forked after
    mp_lock_new() (both start methods' fork children, Pool workers, ...).
    Python's multiprocessing.Lock and RLock, with one promise Python cannot
    make: when a process dies holding the lock, the next acquirer gets it
    together with MP_EOWNERDEAD (instead of everyone deadlocking, cpython
    gh-88304). The caller then owns the lock and should check the data it
    protects. Release it as after a normal acquire.

    Differences from Python: a Lock must be released by the thread that holds
    it (another thread gets MP_EPERM), as with pthread mutexes.

    Timeouts (all of libmp): timeout_ms < 0 waits forever, 0 does not wait,
    > 0 waits at most that long, measured on CLOCK_MONOTONIC.

    Thread-safety: all calls are thread-safe. Fork: the lock is shared with
    children; a lock held at fork() stays held by the parent's thread (the
    child does not own it). Signals: not async-signal-safe.
*/
#ifndef MP_LOCK_H_INCLUDED
#define MP_LOCK_H_INCLUDED

#include "mp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_lock mp_lock_t;

/* New unlocked Lock (non-recursive) or RLock (recursive: the owning thread may
   acquire again; it is free after as many releases). NULL when out of memory. */
MP_EXPORT mp_lock_t *mp_lock_new(void);
MP_EXPORT mp_lock_t *mp_rlock_new(void);

/* Unmaps this process's view of the lock; other processes keep theirs.
   Safe on NULL, sets *lock_p to NULL. */
MP_EXPORT void mp_lock_destroy(mp_lock_t **lock_p);

/* Acquires. Returns 0; MP_EOWNERDEAD (acquired: the previous owner died
   holding it); MP_ETIMEDOUT (not acquired in time, also for timeout 0);
   MP_EINVAL. A non-recursive Lock acquired again by its owner deadlocks
   (as Python) unless a timeout is given. */
MP_EXPORT int mp_lock_acquire(mp_lock_t *lock, int timeout_ms);

/* Releases. Returns 0; MP_EVALUE when the lock is not held by anyone;
   MP_EPERM when another thread or process holds it. */
MP_EXPORT int mp_lock_release(mp_lock_t *lock);

/* True when the calling thread holds the lock. */
MP_EXPORT int mp_lock_is_owned(const mp_lock_t *lock);

/* True for an RLock. */
MP_EXPORT int mp_lock_is_recursive(const mp_lock_t *lock);

#ifdef __cplusplus
}
#endif

#endif
