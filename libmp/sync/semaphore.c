/*  semaphore.c - counting semaphores on a robust mutex and a condition.

    Rejected: POSIX sem_t. It is fast, but a BoundedSemaphore needs "check
    then post" as one step, which sem_getvalue()+sem_post() cannot give.
    The state is one counter, so a holder that dies inside the (tiny)
    critical section leaves nothing to repair: MP_EOWNERDEAD is absorbed.
*/
#include "base/base.h"
#include "mp/error.h"
#include "mp/semaphore.h"

struct mp_semaphore {
    pthread_mutex_t mutex;
    mp__cond_t nonzero;
    int value;
    int bound; /* 0: unbounded, -1: BoundedSemaphore(0) */
};

static mp_semaphore_t *sem_new(int value, int bound)
{
    if (value < 0)
        return NULL;
    mp_semaphore_t *sem = mp__shared_alloc(sizeof *sem);
    if (!sem)
        return NULL;
    if (mp__mutex_init(&sem->mutex)) {
        mp__shared_free(sem, sizeof *sem);
        return NULL;
    }
    sem->value = value;
    sem->bound = bound;
    return sem;
}

mp_semaphore_t *mp_semaphore_new(int value)
{
    return sem_new(value, 0);
}

mp_semaphore_t *mp_bounded_semaphore_new(int value)
{
    /* a bound of 0 would mean "unbounded": BoundedSemaphore(0) can never be
       released, which is still a bound of 0; use -1 as its marker */
    return sem_new(value, value ? value : -1);
}

void mp_semaphore_destroy(mp_semaphore_t **sem_p)
{
    if (!sem_p || !*sem_p)
        return;
    mp__shared_free(*sem_p, sizeof **sem_p);
    *sem_p = NULL;
}

static int lock(mp_semaphore_t *sem)
{
    int rc = mp__mutex_lock(&sem->mutex, NULL);
    return rc == MP_EOWNERDEAD ? 0 : rc;
}

int mp_semaphore_acquire(mp_semaphore_t *sem, int timeout_ms)
{
    if (!sem)
        return MP_EINVAL;
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(timeout_ms, &ts);
    /* the mutex is held for a few instructions: the timeout applies to the
       value, never to the mutex (acquire(0) fails only at value 0) */
    int rc = lock(sem);
    if (rc)
        return rc;
    while (sem->value == 0 && rc == 0) {
        if (timeout_ms == 0) {
            rc = MP_ETIMEDOUT;
            break;
        }
        rc = mp__cond_wait(&sem->nonzero, &sem->mutex, deadline);
        if (rc == MP_EOWNERDEAD)
            rc = 0;
    }
    if (sem->value > 0) {
        sem->value--;
        rc = 0;
    }
    mp__mutex_unlock(&sem->mutex);
    return rc;
}

int mp_semaphore_release(mp_semaphore_t *sem)
{
    if (!sem)
        return MP_EINVAL;
    int rc = lock(sem);
    if (rc)
        return rc;
    int bound = sem->bound < 0 ? 0 : sem->bound;
    if (sem->bound && sem->value >= bound) {
        rc = MP_EVALUE;
    } else {
        sem->value++;
        mp__cond_signal(&sem->nonzero);
    }
    mp__mutex_unlock(&sem->mutex);
    return rc;
}

int mp_semaphore_get_value(mp_semaphore_t *sem)
{
    if (!sem)
        return MP_EINVAL;
    return __atomic_load_n(&sem->value, __ATOMIC_RELAXED);
}
