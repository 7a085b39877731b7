/*  lock_impl.h - the shared layout of mp_lock_t, for modules that embed a
    lock (Value, Array) or wait on one (Condition). Not installed. */
#ifndef MP_LOCK_IMPL_H_INCLUDED
#define MP_LOCK_IMPL_H_INCLUDED

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "mp/lock.h"

struct mp_lock {
    pthread_mutex_t mutex;
    _Atomic int owner_tid; /* 0 when free */
    unsigned depth;        /* RLock recursion depth of the owner */
    bool recursive;
    bool embedded; /* lives inside another object's mapping */
};

int mp__lock_init_at(mp_lock_t *lock, bool recursive, bool embedded);
/* Condition wait on lock (held by the caller, any depth): releases it fully,
   waits on cond, reacquires it at the same depth. 0, MP_ETIMEDOUT,
   MP_EOWNERDEAD or MP_EPERM (caller does not hold the lock). */
int mp__lock_wait(mp_lock_t *lock, mp__cond_t *cond, const struct timespec *deadline);

#endif
