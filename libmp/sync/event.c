/*  event.c - Event on a robust mutex and a condition; the flag is read
    atomically so is_set() and an already-set wait() never take the lock. */
#include "base/base.h"
#include "mp/error.h"
#include "mp/event.h"

struct mp_event {
    pthread_mutex_t mutex;
    mp__cond_t changed;
    int flag;
};

mp_event_t *mp_event_new(void)
{
    mp_event_t *event = mp__shared_alloc(sizeof *event);
    if (event && mp__mutex_init(&event->mutex)) {
        mp__shared_free(event, sizeof *event);
        event = NULL;
    }
    return event;
}

void mp_event_destroy(mp_event_t **event_p)
{
    if (!event_p || !*event_p)
        return;
    mp__shared_free(*event_p, sizeof **event_p);
    *event_p = NULL;
}

static int set_flag(mp_event_t *event, int value)
{
    if (!event)
        return MP_EINVAL;
    int rc = mp__mutex_lock(&event->mutex, NULL);
    if (rc && rc != MP_EOWNERDEAD)
        return rc;
    __atomic_store_n(&event->flag, value, __ATOMIC_RELEASE);
    if (value)
        mp__cond_broadcast(&event->changed);
    mp__mutex_unlock(&event->mutex);
    return 0;
}

int mp_event_set(mp_event_t *event)
{
    return set_flag(event, 1);
}

int mp_event_clear(mp_event_t *event)
{
    return set_flag(event, 0);
}

bool mp_event_is_set(const mp_event_t *event)
{
    return event && __atomic_load_n(&event->flag, __ATOMIC_ACQUIRE);
}

int mp_event_wait(mp_event_t *event, int timeout_ms)
{
    if (!event)
        return MP_EINVAL;
    if (mp_event_is_set(event))
        return 0;
    if (timeout_ms == 0)
        return MP_ETIMEDOUT;
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(timeout_ms, &ts);
    int rc = mp__mutex_lock(&event->mutex, NULL);
    if (rc && rc != MP_EOWNERDEAD)
        return rc;
    while (!event->flag) {
        rc = mp__cond_wait(&event->changed, &event->mutex, deadline);
        if (rc && rc != MP_EOWNERDEAD)
            break;
    }
    rc = event->flag ? 0 : MP_ETIMEDOUT;
    mp__mutex_unlock(&event->mutex);
    return rc;
}
