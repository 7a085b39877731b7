/*  barrier.c - Barrier, the algorithm of CPython's threading.Barrier on a
    robust process-shared mutex and condition.

    State machine: FILLING (parties arrive) -> DRAINING (the barrier tripped;
    the woken parties leave; new arrivals wait until the last one left) ->
    FILLING. BROKEN is sticky until reset(). `count` is the number of
    parties of the current generation inside wait().

    reset() starts a new generation with count 0 instead of waiting for the
    old parties to leave (CPython's RESETTING state): a party that died
    inside wait() never leaves, and would otherwise jam the barrier forever.
    Parties of an old generation return MP_EBROKEN and leave no trace.
*/
#include "base/base.h"
#include "mp/barrier.h"
#include "mp/error.h"

enum { FILLING = 0, DRAINING = 1, BROKEN = -2 };

struct mp_barrier {
    pthread_mutex_t mutex;
    mp__cond_t cond;
    int parties;
    int count;
    int state;
    unsigned generation;
    int timeout_ms;
    mp_barrier_action_fn *action;
    void *action_arg;
};

mp_barrier_t *mp_barrier_new(int parties, const mp_barrier_opts_t *opts)
{
    if (parties < 1)
        return NULL;
    mp_barrier_t *b = mp__shared_alloc(sizeof *b);
    if (!b)
        return NULL;
    if (mp__mutex_init(&b->mutex)) {
        mp__shared_free(b, sizeof *b);
        return NULL;
    }
    b->parties = parties;
    b->timeout_ms = opts ? opts->timeout_ms : -1;
    b->action = opts ? opts->action : NULL;
    b->action_arg = opts ? opts->action_arg : NULL;
    return b;
}

void mp_barrier_destroy(mp_barrier_t **barrier_p)
{
    if (!barrier_p || !*barrier_p)
        return;
    mp__shared_free(*barrier_p, sizeof **barrier_p);
    *barrier_p = NULL;
}

static void lock(mp_barrier_t *b)
{
    /* a party that died under this mutex (or inside wait) leaves at worst a
       stale count, which reset() discards */
    (void)mp__mutex_lock(&b->mutex, NULL);
}

static void break_barrier(mp_barrier_t *b)
{
    b->state = BROKEN;
    mp__cond_broadcast(&b->cond);
}

/* Caller holds the mutex. Waits while the previous cycle drains. */
static int enter(mp_barrier_t *b, const struct timespec *deadline)
{
    while (b->state == DRAINING) {
        int rc = mp__cond_wait(&b->cond, &b->mutex, deadline);
        if (rc == MP_ETIMEDOUT) {
            break_barrier(b);
            return MP_ETIMEDOUT;
        }
    }
    return b->state == BROKEN ? MP_EBROKEN : 0;
}

static int release(mp_barrier_t *b)
{
    if (b->action && b->action(b->action_arg) != 0) {
        break_barrier(b);
        return MP_EBROKEN;
    }
    b->state = DRAINING;
    mp__cond_broadcast(&b->cond);
    return 0;
}

static int wait_trip(mp_barrier_t *b, unsigned generation, const struct timespec *deadline)
{
    while (b->state == FILLING && b->generation == generation) {
        int rc = mp__cond_wait(&b->cond, &b->mutex, deadline);
        if (rc == MP_ETIMEDOUT && b->state == FILLING && b->generation == generation) {
            break_barrier(b);
            return MP_ETIMEDOUT;
        }
    }
    return b->state < 0 ? MP_EBROKEN : 0;
}

static void leave(mp_barrier_t *b)
{
    b->count--;
    if (b->count == 0 && b->state == DRAINING) {
        b->state = FILLING;
        mp__cond_broadcast(&b->cond);
    }
}

int mp_barrier_wait(mp_barrier_t *b, int timeout_ms)
{
    if (!b)
        return MP_EINVAL;
    if (timeout_ms == MP_BARRIER_DEFAULT)
        timeout_ms = b->timeout_ms;
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(timeout_ms, &ts);
    lock(b);
    int rc = enter(b, deadline);
    if (rc) {
        mp__mutex_unlock(&b->mutex);
        return rc;
    }
    unsigned generation = b->generation;
    int index = b->count++;
    if (index + 1 == b->parties)
        rc = release(b);
    else
        rc = wait_trip(b, generation, deadline);
    if (b->generation == generation)
        leave(b);
    else
        rc = MP_EBROKEN; /* reset while we waited */
    mp__mutex_unlock(&b->mutex);
    return rc ? rc : index;
}

int mp_barrier_reset(mp_barrier_t *b)
{
    if (!b)
        return MP_EINVAL;
    lock(b);
    b->generation++;
    b->count = 0;
    b->state = FILLING;
    mp__cond_broadcast(&b->cond);
    mp__mutex_unlock(&b->mutex);
    return 0;
}

int mp_barrier_abort(mp_barrier_t *b)
{
    if (!b)
        return MP_EINVAL;
    lock(b);
    break_barrier(b);
    mp__mutex_unlock(&b->mutex);
    return 0;
}

int mp_barrier_parties(const mp_barrier_t *b)
{
    return b ? b->parties : MP_EINVAL;
}

int mp_barrier_n_waiting(mp_barrier_t *b)
{
    if (!b)
        return MP_EINVAL;
    lock(b);
    int n = b->state == FILLING ? b->count : 0;
    mp__mutex_unlock(&b->mutex);
    return n;
}

bool mp_barrier_broken(mp_barrier_t *b)
{
    if (!b)
        return false;
    lock(b);
    bool broken = b->state == BROKEN;
    mp__mutex_unlock(&b->mutex);
    return broken;
}
