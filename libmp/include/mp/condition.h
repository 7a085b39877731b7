/*  mp/condition.h - Condition variable over a Lock or RLock, process-shared.

    As Python's multiprocessing.Condition: wait() releases the lock (fully,
    for an RLock held several times), waits for a notify, and reacquires it.
    wait_for() loops on a predicate. notify/notify_all must be called with
    the lock held. Waits can wake spuriously; wait_for() handles that.

    Thread-safety: thread-safe. Fork: shared with children forked after
    mp_condition_new(); predicate functions must exist in the waiting process
    (true for fork children). Signals: not async-signal-safe.
*/
#ifndef MP_CONDITION_H_INCLUDED
#define MP_CONDITION_H_INCLUDED

#include <stdbool.h>

#include "mp/export.h"
#include "mp/lock.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_condition mp_condition_t;
typedef bool(mp_predicate_fn)(void *arg);

/* New condition over lock (borrowed: it must outlive the condition), or
   over a new RLock of its own when lock is NULL. NULL when out of memory. */
MP_EXPORT mp_condition_t *mp_condition_new(mp_lock_t *lock);
MP_EXPORT void mp_condition_destroy(mp_condition_t **cond_p);

/* The condition's lock (borrowed). */
MP_EXPORT mp_lock_t *mp_condition_lock(mp_condition_t *cond);
MP_EXPORT int mp_condition_acquire(mp_condition_t *cond, int timeout_ms);
MP_EXPORT int mp_condition_release(mp_condition_t *cond);

/* Waits for a notify. The lock is held again on every return but MP_EPERM.
   0 (notified or spurious), MP_ETIMEDOUT, MP_EOWNERDEAD (the lock was
   recovered from a dead owner), MP_EPERM (lock not held by the caller). */
MP_EXPORT int mp_condition_wait(mp_condition_t *cond, int timeout_ms);

/* Waits until pred(arg) is true, evaluating it with the lock held. Returns 0
   when it is true, MP_ETIMEDOUT when the timeout passed first (the
   predicate was false at the last check), MP_EPERM. */
MP_EXPORT int mp_condition_wait_for(mp_condition_t *cond, mp_predicate_fn *pred, void *arg,
                                    int timeout_ms);

/* Wakes up to n waiters / all waiters. MP_EPERM when the lock is not held. */
MP_EXPORT int mp_condition_notify(mp_condition_t *cond, int n);
MP_EXPORT int mp_condition_notify_all(mp_condition_t *cond);

#ifdef __cplusplus
}
#endif

#endif
