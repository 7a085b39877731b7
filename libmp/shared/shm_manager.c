/*  shm_manager.c - SharedMemoryManager: blocks and ShareableLists that are
    all unlinked at shutdown (mp/shm_manager.h).

    CPython's SharedMemoryManager runs a server process that keeps the
    names its clients made; here the registry of names is itself a block,
    created tracked by mp_shm_manager_new and mapped MAP_SHARED, so the
    owner and every child forked afterwards add to the same table:

        registry_t: robust process-shared mutex, shut flag, cap, n, then
        cap names of ENTRY bytes; names[0 .. n) are the blocks made and
        not yet unlinked.

    Invariants: n only changes with the mutex held, and after the name it
    covers is written (make) or unlinked (shutdown, from the end), so a
    process killed while holding the mutex leaves a consistent table: the
    next holder gets MP_EOWNERDEAD from mp__mutex_lock and carries on. A
    block is created before its name is recorded, under the mutex; a
    process killed between the two leaves a tracked block that the
    tracker removes when the family exits.

    Why the registry is a named, tracked block rather than anonymous
    memory: creating it starts this process's tracker (tracker.c) before
    any child is forked, so children share it. A child that started its
    own tracker would have its blocks removed when it exits, while the
    manager still holds them. Rejected: derived names (prefix + counter,
    no table): shutdown would unlink a name someone else took meanwhile.
*/
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "mp/error.h"
#include "mp/shm_manager.h"

#define ENTRY 256 /* > MP_SHM_NAME_MAX: a name and its NUL */
#define DEFAULT_CAPACITY 4096
#define LOCK_TIMEOUT_MS 10000

_Static_assert(ENTRY > MP_SHM_NAME_MAX, "a registry entry holds any block name");

typedef struct {
    pthread_mutex_t mutex;
    uint32_t shut;
    uint64_t cap;
    uint64_t n;
    char names[][ENTRY];
} registry_t;

struct mp_shm_manager {
    mp_shm_t *shm; /* the registry's block */
    registry_t *reg;
    size_t cap; /* our copy: the bound on every index */
    pid_t owner;
};

int mp_shm_manager_new(mp_shm_manager_t **m_p, const mp_shm_manager_options_t *options)
{
    if (!m_p)
        return MP_EINVAL;
    size_t cap = options && options->capacity ? options->capacity : DEFAULT_CAPACITY;
    if (cap > (SIZE_MAX - sizeof(registry_t)) / ENTRY / 2)
        return MP_EINVAL;
    mp_shm_manager_t *m = calloc(1, sizeof *m);
    if (!m)
        return MP_ENOMEM;
    int rc = mp_shm_create_with(&m->shm, NULL, sizeof(registry_t) + cap * ENTRY,
                                &(mp_shm_options_t){.track = true});
    if (!rc) {
        m->reg = mp_shm_buf(m->shm);
        m->reg->cap = cap;
        rc = mp__mutex_init(&m->reg->mutex);
        if (rc) {
            mp_shm_unlink(m->shm);
            mp_shm_destroy(&m->shm);
        }
    }
    if (rc) {
        free(m);
        return rc;
    }
    m->cap = cap;
    m->owner = getpid();
    *m_p = m;
    return 0;
}

static int lock(mp_shm_manager_t *m)
{
    struct timespec ts;
    int rc = mp__mutex_lock(&m->reg->mutex, mp__deadline(LOCK_TIMEOUT_MS, &ts));
    return rc == MP_EOWNERDEAD ? 0 : rc; /* the table is consistent at every step */
}

static size_t entries(const mp_shm_manager_t *m)
{
    uint64_t n = __atomic_load_n(&m->reg->n, __ATOMIC_ACQUIRE);
    return n < m->cap ? (size_t)n : m->cap;
}

/* Records name (mutex held): the block is now the manager's. */
static void record(mp_shm_manager_t *m, const char *name)
{
    size_t n = entries(m);
    snprintf(m->reg->names[n], ENTRY, "%s", name);
    __atomic_store_n(&m->reg->n, n + 1, __ATOMIC_RELEASE);
}

/* Mutex held: MP_ESTATE after shutdown, MP_ENOSPC when full. */
static int can_make(mp_shm_manager_t *m)
{
    if (m->reg->shut)
        return MP_ESTATE;
    return entries(m) >= m->cap ? MP_ENOSPC : 0;
}

int mp_shm_manager_shm(mp_shm_manager_t *m, mp_shm_t **shm_p, size_t size)
{
    if (!m || !shm_p || size == 0)
        return MP_EINVAL;
    int rc = lock(m);
    if (rc)
        return rc;
    if (!(rc = can_make(m)) &&
        !(rc = mp_shm_create_with(shm_p, NULL, size, &(mp_shm_options_t){.track = true})))
        record(m, mp_shm_name(*shm_p));
    mp__mutex_unlock(&m->reg->mutex);
    return rc;
}

int mp_shm_manager_list(mp_shm_manager_t *m, mp_shm_list_t **list_p, const mp_obj_t *items)
{
    if (!m || !list_p)
        return MP_EINVAL;
    int rc = lock(m);
    if (rc)
        return rc;
    if (!(rc = can_make(m)) &&
        !(rc = mp_shm_list_create(list_p, NULL, items, &(mp_shm_options_t){.track = true})))
        record(m, mp_shm_list_name(*list_p));
    mp__mutex_unlock(&m->reg->mutex);
    return rc;
}

size_t mp_shm_manager_count(mp_shm_manager_t *m)
{
    return m ? entries(m) : 0;
}

int mp_shm_manager_shutdown(mp_shm_manager_t *m)
{
    if (!m)
        return MP_EINVAL;
    int rc = lock(m);
    if (rc)
        return rc;
    m->reg->shut = 1;
    /* from the end, n dropping after each unlink: a process killed here
       leaves the rest for the next shutdown */
    for (size_t n = entries(m); n > 0; n--) {
        mp_shm_unlink_name(m->reg->names[n - 1]); /* MP_ENOENT: the user unlinked it */
        __atomic_store_n(&m->reg->n, n - 1, __ATOMIC_RELEASE);
    }
    mp_shm_unlink(m->shm); /* MP_ENOENT after the first shutdown */
    mp__mutex_unlock(&m->reg->mutex);
    return 0;
}

void mp_shm_manager_destroy(mp_shm_manager_t **m_p)
{
    if (!m_p || !*m_p)
        return;
    mp_shm_manager_t *m = *m_p;
    if (getpid() == m->owner)
        mp_shm_manager_shutdown(m);
    mp_shm_destroy(&m->shm);
    free(m);
    *m_p = NULL;
}
