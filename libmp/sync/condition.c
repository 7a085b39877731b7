/*  condition.c - Condition on a pthread condition variable.

    The condition and, when the caller gives no lock, its own RLock share
    one shared mapping. The condition stores a pointer to its lock; that is
    valid in every fork child because they inherit the mapping at the same
    address.
*/
#include "base/base.h"
#include "sync/lock_impl.h"
#include "mp/condition.h"
#include "mp/error.h"

struct mp_condition {
    mp__cond_t cond;
    mp_lock_t *lock;
    mp_lock_t own_lock; /* used when no lock was given */
};

mp_condition_t *mp_condition_new(mp_lock_t *lock)
{
    mp_condition_t *cond = mp__shared_alloc(sizeof *cond);
    if (!cond)
        return NULL;
    int rc = 0;
    if (!lock) {
        rc = mp__lock_init_at(&cond->own_lock, true, true);
        lock = &cond->own_lock;
    }
    if (rc) {
        mp__shared_free(cond, sizeof *cond);
        return NULL;
    }
    cond->lock = lock;
    return cond;
}

void mp_condition_destroy(mp_condition_t **cond_p)
{
    if (!cond_p || !*cond_p)
        return;
    mp__shared_free(*cond_p, sizeof **cond_p);
    *cond_p = NULL;
}

mp_lock_t *mp_condition_lock(mp_condition_t *cond)
{
    return cond ? cond->lock : NULL;
}

int mp_condition_acquire(mp_condition_t *cond, int timeout_ms)
{
    return cond ? mp_lock_acquire(cond->lock, timeout_ms) : MP_EINVAL;
}

int mp_condition_release(mp_condition_t *cond)
{
    return cond ? mp_lock_release(cond->lock) : MP_EINVAL;
}

int mp_condition_wait(mp_condition_t *cond, int timeout_ms)
{
    if (!cond)
        return MP_EINVAL;
    struct timespec ts;
    return mp__lock_wait(cond->lock, &cond->cond, mp__deadline(timeout_ms, &ts));
}

int mp_condition_wait_for(mp_condition_t *cond, mp_predicate_fn *pred, void *arg, int timeout_ms)
{
    if (!cond || !pred)
        return MP_EINVAL;
    if (!mp_lock_is_owned(cond->lock))
        return MP_EPERM;
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(timeout_ms, &ts);
    while (!pred(arg)) {
        if (timeout_ms == 0)
            return MP_ETIMEDOUT;
        int rc = mp__lock_wait(cond->lock, &cond->cond, deadline);
        if (rc == MP_ETIMEDOUT)
            return pred(arg) ? 0 : MP_ETIMEDOUT;
        if (rc != 0 && rc != MP_EOWNERDEAD)
            return rc;
    }
    return 0;
}

int mp_condition_notify(mp_condition_t *cond, int n)
{
    if (!cond || n < 0)
        return MP_EINVAL;
    if (!mp_lock_is_owned(cond->lock))
        return MP_EPERM;
    mp__cond_wake(&cond->cond, n);
    return 0;
}

int mp_condition_notify_all(mp_condition_t *cond)
{
    if (!cond)
        return MP_EINVAL;
    if (!mp_lock_is_owned(cond->lock))
        return MP_EPERM;
    mp__cond_broadcast(&cond->cond);
    return 0;
}
