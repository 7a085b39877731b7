/*  manager.c - the manager and its object table (docs/MANAGER.md sections
    1 and 3): mp_manager_new() maps the arena, mp_manager_destroy() unmaps
    it and destroys what the manager owns (owned.c); objects are made,
    named (the directory: a dict of name -> slot, table.c) and freed here.

    An object's slot in the table is its commit point: it exists once its
    offset is stored there, and is gone once that is cleared.

    The manager layer (libmp/manager/): the Manager's shared arena and its
    objects, bottom up: arena.c (allocator), table.c and vector.c (dict and
    list layouts), repair.c (the lock and the repair), proxy.c (the remote
    client), dict.c and list.c (the public calls), owned.c and manager.c
    (what a manager owns), serve.c (the remote server, MPM/1). Uses the
    layers below it; nothing of the Pool.
*/
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "manager/owned.h"
#include "manager/repair.h"
#include "manager/table.h"
#include "manager/vector.h"
#include "mp/error.h"

/* ---- the manager ----------------------------------------------------------------- */

/* This process's managers, so that a reference to a queue (a process-local
   handle: ref.c) is found from any object of its arena. Inherited by fork,
   as the managers are. */
static pthread_mutex_t managers_mutex = PTHREAD_MUTEX_INITIALIZER;
static mp_manager_t **managers;
static size_t nmanagers, managers_cap;

static bool register_manager(mp_manager_t *m)
{
    pthread_mutex_lock(&managers_mutex);
    if (nmanagers == managers_cap) {
        size_t cap = managers_cap ? 2 * managers_cap : 4;
        mp_manager_t **grown = realloc(managers, cap * sizeof *grown);
        if (grown) {
            managers = grown;
            managers_cap = cap;
        }
    }
    bool kept = nmanagers < managers_cap;
    if (kept)
        managers[nmanagers++] = m;
    pthread_mutex_unlock(&managers_mutex);
    return kept;
}

static void unregister_manager(mp_manager_t *m)
{
    pthread_mutex_lock(&managers_mutex);
    for (size_t i = 0; i < nmanagers; i++)
        if (managers[i] == m) {
            managers[i] = managers[--nmanagers];
            break;
        }
    pthread_mutex_unlock(&managers_mutex);
}

mp_queue_t *ma_queue_of(const ma_arena_t *a, uint32_t id)
{
    mp_queue_t *q = NULL;
    pthread_mutex_lock(&managers_mutex);
    for (size_t i = 0; i < nmanagers && !q; i++)
        if (managers[i]->arena == a)
            q = ma_queue_by_id(managers[i], id);
    pthread_mutex_unlock(&managers_mutex);
    return q;
}

int mp_manager_new(const mp_manager_options_t *options, mp_manager_t **manager_p)
{
    if (!manager_p)
        return MP_EINVAL;
    *manager_p = NULL;
    size_t cap = options && options->capacity ? options->capacity : MA_DEFAULT_CAPACITY;
    size_t head = (sizeof(ma_arena_t) + 15) & ~(size_t)15;
    if (cap > MA_MAX_CAPACITY || cap < head + 4096)
        return MP_EINVAL;
    mp_manager_t *m = calloc(1, sizeof *m);
    if (!m)
        return MP_ENOMEM;
    /* untouched pages cost nothing: capacity is a limit, not a reservation */
    void *p =
        mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        free(m);
        return MP_ENOMEM;
    }
    ma_arena_t *a = p;
    a->magic = MA_MAGIC;
    a->capacity = cap;
    a->heap_start = a->bump = (uint32_t)head;
    a->slot_hint = 1;
    if (getrandom(&a->next_gen, sizeof a->next_gen, GRND_NONBLOCK) != sizeof a->next_gen)
        a->next_gen = (uint32_t)(mp__now_ns() ^ ((uint64_t)getpid() << 20));
    int rc = mp__mutex_init(&a->mutex);
    if (rc || !register_manager(m)) {
        munmap(p, cap);
        free(m);
        return rc ? rc : MP_ENOMEM;
    }
    m->arena = a;
    m->size = cap;
    pthread_mutex_init(&m->owned_mutex, NULL);
    *manager_p = m;
    return 0;
}

void mp_manager_destroy(mp_manager_t **manager_p)
{
    if (!manager_p || !*manager_p)
        return;
    mp_manager_t *m = *manager_p;
    unregister_manager(m);
    ma_destroy_owned(m);
    pthread_mutex_destroy(&m->owned_mutex);
    munmap(m->arena, m->size);
    free(m);
    *manager_p = NULL;
}

int mp_manager_stats(mp_manager_t *m, mp_manager_stats_t *st)
{
    if (!m || !st)
        return MP_EINVAL;
    ma_arena_t *a = m->arena;
    int rc = ma_lock(a);
    if (rc)
        return rc;
    *st = (mp_manager_stats_t){.capacity = a->capacity,
                               .used = a->used,
                               .reserved = a->bump - a->heap_start,
                               .objects = a->nobjects,
                               .repairs = a->repairs};
    ma_unlock(a);
    return 0;
}

/* ---- objects: made, named, freed ------------------------------------------------- */

/* A new object (lock held). */
static int new_object_locked(ma_arena_t *a, uint32_t type, struct mp_mobj **o_p)
{
    uint32_t slot = 0;
    for (uint32_t i = 0; i < MA_MAX_OBJECTS && !slot; i++) {
        uint32_t s = (a->slot_hint + i - 1) % MA_MAX_OBJECTS + 1;
        if (!a->objects[s])
            slot = s;
    }
    uint32_t off = slot ? ma_alloc(a, sizeof(struct mp_mobj)) : 0;
    if (!off)
        return MP_ENOSPC;
    struct mp_mobj *o = ma_at(a, off);
    *o =
        (struct mp_mobj){.type = type, .slot = slot, .data = 0, .self = off, .gen = ma_next_gen(a)};
    __atomic_store_n(&a->objects[slot], off, __ATOMIC_RELEASE); /* the commit */
    a->slot_hint = slot % MA_MAX_OBJECTS + 1;
    a->nobjects++;
    *o_p = o;
    return 0;
}

static int new_object(mp_manager_t *m, uint32_t type, struct mp_mobj **o_p)
{
    if (!m || !o_p)
        return MP_EINVAL;
    *o_p = NULL;
    int rc = ma_lock(m->arena);
    if (rc)
        return rc;
    rc = new_object_locked(m->arena, type, o_p);
    ma_unlock(m->arena);
    return rc;
}

/* The object called name, made when there is none (or when the one of that
   name was freed or has another type). A process killed between making it
   and naming it leaves an unnamed object behind, nothing worse. */
static int named_object(mp_manager_t *m, uint32_t type, const char *name, struct mp_mobj **o_p)
{
    if (!m || !name || !o_p)
        return MP_EINVAL;
    *o_p = NULL;
    ma_arena_t *a = m->arena;
    int rc = ma_lock(a);
    if (rc)
        return rc;
    uint32_t dir_off = a->directory ? a->objects[a->directory] : 0;
    struct mp_mobj *dir = dir_off ? ma_at(a, dir_off) : NULL;
    if (!dir && !(rc = new_object_locked(a, MO_DICT, &dir)))
        a->directory = dir->slot; /* the commit */
    uint32_t slot = rc ? 0 : mdict_get_slot(a, dir, name);
    struct mp_mobj *o = slot && a->objects[slot] ? ma_at(a, a->objects[slot]) : NULL;
    if (!rc && (!o || o->type != type)) {
        o = NULL;
        rc = new_object_locked(a, type, &o);
        if (!rc && (rc = mdict_put_slot(a, dir, name, o->slot))) {
            a->objects[o->slot] = 0; /* no room to name it: take it back */
            a->nobjects--;
            ma_free(a, o->self);
            o = NULL;
        }
    }
    ma_unlock(a);
    *o_p = o;
    return rc;
}

int mp_manager_named_dict(mp_manager_t *m, const char *name, mp_mdict_t **dict_p)
{
    return named_object(m, MO_DICT, name, dict_p);
}

int mp_manager_named_list(mp_manager_t *m, const char *name, mp_mlist_t **list_p)
{
    return named_object(m, MO_LIST, name, list_p);
}

int mp_manager_named_namespace(mp_manager_t *m, const char *name, mp_mns_t **ns_p)
{
    return named_object(m, MO_NS, name, ns_p);
}

int mp_manager_dict(mp_manager_t *m, mp_mdict_t **dict_p)
{
    return new_object(m, MO_DICT, dict_p);
}

int mp_manager_list(mp_manager_t *m, mp_mlist_t **list_p)
{
    return new_object(m, MO_LIST, list_p);
}

int mp_manager_namespace(mp_manager_t *m, mp_mns_t **ns_p)
{
    return new_object(m, MO_NS, ns_p);
}

int mp_mobj_free(mp_manager_t *m, struct mp_mobj **o_p)
{
    if (!m || !o_p || !*o_p || ma_of(*o_p) != m->arena)
        return MP_EINVAL;
    struct mp_mobj *o = *o_p;
    ma_arena_t *a = m->arena;
    int rc = ma_lock(a);
    if (rc)
        return rc;
    a->objects[o->slot] = 0; /* the commit: unreachable from here on */
    a->nobjects--;
    if (o->type == MO_LIST)
        mlist_free_data(a, o);
    else
        mdict_free_data(a, o);
    ma_free(a, o->self);
    ma_unlock(a);
    *o_p = NULL;
    return 0;
}
