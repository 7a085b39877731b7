/*  lock.c - Lock and RLock on one robust process-shared pthread mutex.

    The mutex is never recursive at the pthread level: RLock keeps its own
    owner thread id and depth beside it. That keeps Condition simple (a
    pthread condition wait releases the mutex exactly once, whatever the
    RLock depth) and lets both kinds report "not owned" precisely.

    owner_tid is written only by the holder of the mutex and read without it
    by other threads only to compare against their own id, which can never
    match spuriously: a thread id is unique among live threads.

    The sync layer (libmp/sync/): Lock, RLock, Semaphore, BoundedSemaphore,
    Condition, Event, Barrier, each in shared memory that fork children
    inherit, each surviving the death of a process inside it. lock.c is its
    centre (Condition and Value build on its mutex, lock_impl.h). Uses only
    libmp/base/.
*/
#include <stdatomic.h>
#include <stdlib.h>

#include "base/base.h"
#include "sync/lock_impl.h"
#include "mp/error.h"
#include "mp/lock.h"

int mp__lock_init_at(mp_lock_t *lock, bool recursive, bool embedded)
{
    lock->recursive = recursive;
    lock->embedded = embedded;
    atomic_store_explicit(&lock->owner_tid, 0, memory_order_relaxed);
    lock->depth = 0;
    return mp__mutex_init(&lock->mutex);
}

static mp_lock_t *lock_new(bool recursive)
{
    mp_lock_t *lock = mp__shared_alloc(sizeof *lock);
    if (lock && mp__lock_init_at(lock, recursive, false)) {
        mp__shared_free(lock, sizeof *lock);
        lock = NULL;
    }
    return lock;
}

mp_lock_t *mp_lock_new(void)
{
    return lock_new(false);
}

mp_lock_t *mp_rlock_new(void)
{
    return lock_new(true);
}

void mp_lock_destroy(mp_lock_t **lock_p)
{
    if (!lock_p || !*lock_p)
        return;
    if (!(*lock_p)->embedded)
        mp__shared_free(*lock_p, sizeof **lock_p);
    *lock_p = NULL;
}

static int owner(const mp_lock_t *lock)
{
    return atomic_load_explicit(&lock->owner_tid, memory_order_relaxed);
}

/* True when thread `me` holds the lock. owner_tid alone could lie: a holder
   killed while holding it leaves its id behind, and a later process may
   reuse that id. The robust mutex word carries the real holder's id (the
   kernel clears it when the holder dies), so both must agree. */
static bool held_by(const mp_lock_t *lock, int me)
{
    return owner(lock) == me &&
           (int)(__atomic_load_n(&lock->mutex.__data.__lock, __ATOMIC_RELAXED) & 0x3fffffff) == me;
}

int mp_lock_acquire(mp_lock_t *lock, int timeout_ms)
{
    if (!lock)
        return MP_EINVAL;
    int me = mp__tid();
    if (lock->recursive && held_by(lock, me)) {
        lock->depth++;
        return 0;
    }
    int rc;
    if (timeout_ms == 0) {
        rc = pthread_mutex_trylock(&lock->mutex);
        if (rc == EBUSY)
            return MP_ETIMEDOUT;
        if (rc == EOWNERDEAD) {
            pthread_mutex_consistent(&lock->mutex);
            rc = MP_EOWNERDEAD;
        } else {
            rc = -rc;
        }
    } else {
        struct timespec ts;
        rc = mp__mutex_lock(&lock->mutex, mp__deadline(timeout_ms, &ts));
    }
    if (rc != 0 && rc != MP_EOWNERDEAD)
        return rc;
    atomic_store_explicit(&lock->owner_tid, me, memory_order_relaxed);
    lock->depth = 1;
    return rc;
}

int mp_lock_release(mp_lock_t *lock)
{
    if (!lock)
        return MP_EINVAL;
    int me = mp__tid();
    if (!held_by(lock, me))
        return owner(lock) == 0 || owner(lock) == me ? MP_EVALUE : MP_EPERM;
    if (--lock->depth > 0)
        return 0;
    atomic_store_explicit(&lock->owner_tid, 0, memory_order_relaxed);
    mp__mutex_unlock(&lock->mutex);
    return 0;
}

int mp_lock_is_owned(const mp_lock_t *lock)
{
    return lock && held_by(lock, mp__tid());
}

int mp_lock_is_recursive(const mp_lock_t *lock)
{
    return lock && lock->recursive;
}

int mp__lock_wait(mp_lock_t *lock, mp__cond_t *cond, const struct timespec *deadline)
{
    int me = mp__tid();
    if (!held_by(lock, me))
        return MP_EPERM;
    unsigned depth = lock->depth;
    atomic_store_explicit(&lock->owner_tid, 0, memory_order_relaxed);
    lock->depth = 0;
    int rc = mp__cond_wait(cond, &lock->mutex, deadline);
    /* the mutex is held again whatever rc says */
    atomic_store_explicit(&lock->owner_tid, me, memory_order_relaxed);
    lock->depth = depth;
    return rc;
}
