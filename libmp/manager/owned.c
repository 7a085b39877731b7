/*  owned.c - the SyncManager set: Queue, JoinableQueue, Lock, RLock,
    Semaphore, BoundedSemaphore, Condition, Event, Barrier, Value, Array
    handed out by a manager.

    They are libmp's own shared-memory primitives (every process forked
    afterwards uses them directly, no server in between); the manager only
    owns them: mp_manager_destroy() destroys them, newest first, so a
    Condition goes before its Lock.
*/
#include <stdlib.h>
#include <string.h>

#include "manager/owned.h"
#include "mp/barrier.h"
#include "mp/condition.h"
#include "mp/error.h"
#include "mp/event.h"
#include "mp/lock.h"
#include "mp/queue.h"
#include "mp/semaphore.h"
#include "mp/value.h"

enum { OWN_LOCK, OWN_SEMAPHORE, OWN_CONDITION, OWN_EVENT, OWN_BARRIER, OWN_ARRAY, OWN_QUEUE };

/* Records object as the manager's; false when out of memory. */
static bool own(mp_manager_t *m, int kind, void *object)
{
    pthread_mutex_lock(&m->owned_mutex);
    if (m->nowned == m->owned_cap) {
        size_t cap = m->owned_cap ? 2 * m->owned_cap : 16;
        ma_owned_t *grown = realloc(m->owned, cap * sizeof *grown);
        if (grown) {
            m->owned = grown;
            m->owned_cap = cap;
        }
    }
    bool kept = m->nowned < m->owned_cap;
    if (kept) /* a queue has an id from the start: children forked later know it */
        m->owned[m->nowned++] =
            (ma_owned_t){kind, object, kind == OWN_QUEUE ? ma_next_gen(m->arena) : 0};
    pthread_mutex_unlock(&m->owned_mutex);
    return kept;
}

struct ma_named_queue {
    char *name;
    mp_queue_t *queue;
};

void ma_destroy_owned(mp_manager_t *m)
{
    for (size_t i = 0; i < m->nqueues; i++)
        free(m->queues[i].name); /* the queues themselves are owned below */
    free(m->queues);
    m->queues = NULL;
    m->nqueues = 0;
    while (m->nowned) {
        ma_owned_t *o = &m->owned[--m->nowned];
        switch (o->kind) {
        case OWN_LOCK:
            mp_lock_destroy((mp_lock_t **)&o->object);
            break;
        case OWN_SEMAPHORE:
            mp_semaphore_destroy((mp_semaphore_t **)&o->object);
            break;
        case OWN_CONDITION:
            mp_condition_destroy((mp_condition_t **)&o->object);
            break;
        case OWN_EVENT:
            mp_event_destroy((mp_event_t **)&o->object);
            break;
        case OWN_BARRIER:
            mp_barrier_destroy((mp_barrier_t **)&o->object);
            break;
        case OWN_ARRAY:
            mp_array_destroy((mp_array_t **)&o->object);
            break;
        case OWN_QUEUE:
            mp_queue_destroy((mp_queue_t **)&o->object);
            break;
        }
    }
    free(m->owned);
    m->owned = NULL;
    m->owned_cap = 0;
}

/* Returns the new object, owned by the manager; NULL when it or its record
   could not be made (then nothing is left behind). */
#define OWN(m, kind, type, destroy, expr)                                                          \
    do {                                                                                           \
        type *obj_ = (expr);                                                                       \
        if (obj_ && !own((m), (kind), obj_)) {                                                     \
            destroy(&obj_);                                                                        \
            return NULL;                                                                           \
        }                                                                                          \
        return obj_;                                                                               \
    } while (0)

mp_lock_t *mp_manager_lock(mp_manager_t *m)
{
    OWN(m, OWN_LOCK, mp_lock_t, mp_lock_destroy, m ? mp_lock_new() : NULL);
}

mp_lock_t *mp_manager_rlock(mp_manager_t *m)
{
    OWN(m, OWN_LOCK, mp_lock_t, mp_lock_destroy, m ? mp_rlock_new() : NULL);
}

mp_semaphore_t *mp_manager_semaphore(mp_manager_t *m, int value)
{
    OWN(m, OWN_SEMAPHORE, mp_semaphore_t, mp_semaphore_destroy, m ? mp_semaphore_new(value) : NULL);
}

mp_semaphore_t *mp_manager_bounded_semaphore(mp_manager_t *m, int value)
{
    OWN(m, OWN_SEMAPHORE, mp_semaphore_t, mp_semaphore_destroy,
        m ? mp_bounded_semaphore_new(value) : NULL);
}

mp_condition_t *mp_manager_condition(mp_manager_t *m, mp_lock_t *lock)
{
    OWN(m, OWN_CONDITION, mp_condition_t, mp_condition_destroy, m ? mp_condition_new(lock) : NULL);
}

mp_event_t *mp_manager_event(mp_manager_t *m)
{
    OWN(m, OWN_EVENT, mp_event_t, mp_event_destroy, m ? mp_event_new() : NULL);
}

mp_barrier_t *mp_manager_barrier(mp_manager_t *m, int parties, const mp_barrier_opts_t *opts)
{
    OWN(m, OWN_BARRIER, mp_barrier_t, mp_barrier_destroy, m ? mp_barrier_new(parties, opts) : NULL);
}

mp_value_t *mp_manager_value(mp_manager_t *m, char typecode, const void *initial)
{
    OWN(m, OWN_ARRAY, mp_value_t, mp_value_destroy,
        m ? mp_value_new(typecode, initial, NULL) : NULL);
}

mp_array_t *mp_manager_array(mp_manager_t *m, char typecode, size_t length, const void *initial)
{
    OWN(m, OWN_ARRAY, mp_array_t, mp_array_destroy,
        m ? mp_array_new(typecode, length, initial, NULL) : NULL);
}

mp_queue_t *mp_manager_queue(mp_manager_t *m, const mp_queue_opts_t *opts)
{
    OWN(m, OWN_QUEUE, mp_queue_t, mp_queue_destroy, m ? mp_queue_new(opts) : NULL);
}

mp_queue_t *mp_manager_joinable_queue(mp_manager_t *m, const mp_queue_opts_t *opts)
{
    OWN(m, OWN_QUEUE, mp_queue_t, mp_queue_destroy, m ? mp_joinable_queue_new(opts) : NULL);
}

/* ---- queues by id: what references name (ref.c, serve.c) ---------------------- */

mp_queue_t *ma_queue_by_id(mp_manager_t *m, uint32_t id)
{
    mp_queue_t *q = NULL;
    pthread_mutex_lock(&m->owned_mutex);
    for (size_t i = 0; i < m->nowned && !q; i++)
        if (m->owned[i].kind == OWN_QUEUE && m->owned[i].id == id)
            q = m->owned[i].object;
    pthread_mutex_unlock(&m->owned_mutex);
    return id ? q : NULL;
}

uint32_t ma_queue_id(mp_manager_t *m, const mp_queue_t *queue)
{
    uint32_t id = 0;
    pthread_mutex_lock(&m->owned_mutex);
    for (size_t i = 0; i < m->nowned && !id; i++)
        if (m->owned[i].kind == OWN_QUEUE && m->owned[i].object == queue)
            id = m->owned[i].id;
    pthread_mutex_unlock(&m->owned_mutex);
    return id;
}

/* ---- named queues: what remote clients reach (serve.c) ------------------------ */

static int64_t find_queue(mp_manager_t *m, const char *name) /* owned_mutex held */
{
    for (size_t i = 0; i < m->nqueues; i++)
        if (strcmp(m->queues[i].name, name) == 0)
            return (int64_t)i + 1;
    return 0;
}

int64_t ma_queue_named(mp_manager_t *m, const char *name)
{
    pthread_mutex_lock(&m->owned_mutex);
    int64_t n = find_queue(m, name);
    pthread_mutex_unlock(&m->owned_mutex);
    if (n)
        return n;
    mp_queue_t *q = mp_manager_queue(m, NULL); /* owned: freed with the manager */
    char *copy = q ? strdup(name) : NULL;
    if (!copy)
        return 0;
    pthread_mutex_lock(&m->owned_mutex);
    if (!(n = find_queue(m, name))) { /* nobody made it meanwhile */
        struct ma_named_queue *grown = realloc(m->queues, (m->nqueues + 1) * sizeof *grown);
        if (grown) {
            m->queues = grown;
            m->queues[m->nqueues++] = (struct ma_named_queue){copy, q};
            n = (int64_t)m->nqueues;
            copy = NULL;
        }
    }
    pthread_mutex_unlock(&m->owned_mutex);
    free(copy);
    return n;
}

mp_queue_t *ma_queue_at(mp_manager_t *m, int64_t n)
{
    pthread_mutex_lock(&m->owned_mutex);
    mp_queue_t *q = n >= 1 && (size_t)n <= m->nqueues ? m->queues[n - 1].queue : NULL;
    pthread_mutex_unlock(&m->owned_mutex);
    return q;
}

int mp_manager_named_queue(mp_manager_t *m, const char *name, mp_queue_t **queue_p)
{
    if (!m || !name || !queue_p)
        return MP_EINVAL;
    int64_t n = ma_queue_named(m, name);
    *queue_p = n ? ma_queue_at(m, n) : NULL;
    return n ? 0 : MP_ENOMEM;
}
