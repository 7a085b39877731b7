/*  repair.c - the arena's lock: one robust, process-shared mutex, and the
    repair that runs when a process died holding it (docs/MANAGER.md
    section 4).

    Crash safety: every mutation in table.c / vector.c (and dict.c /
    list.c, manager.c) becomes visible with one aligned word store, after
    its new blocks are complete, and frees the old blocks only afterwards.
    So a process killed in the middle leaves the objects either before or
    after its operation, plus unreachable blocks and stale derived data
    (free lists, counts, dict indexes). The repair rebuilds all of those
    from what the object table reaches: mark (table.c, vector.c), then
    sweep the heap block by block (arena.c, which keeps the heap walkable
    at every instant).
*/
#include "manager/repair.h"
#include "manager/table.h"
#include "manager/vector.h"
#include "mp/error.h"

static void repair(ma_arena_t *a)
{
    ma_heap_unmark(a);
    a->nobjects = 0;
    for (uint32_t slot = 1; slot <= MA_MAX_OBJECTS; slot++) {
        uint32_t off = a->objects[slot];
        if (!off)
            continue;
        struct mp_mobj *o = ma_at(a, off);
        a->nobjects++;
        ma_mark(a, off);
        if (o->type == MO_LIST)
            mlist_mark(a, o);
        else
            mdict_mark(a, o);
    }
    ma_heap_sweep(a);
    /* derived dict state (indexes, counts) last: rewritten in place */
    for (uint32_t slot = 1; slot <= MA_MAX_OBJECTS; slot++)
        if (a->objects[slot]) {
            struct mp_mobj *o = ma_at(a, a->objects[slot]);
            if (o->type != MO_LIST)
                mdict_rebuild(a, o);
        }
}

int ma_lock(ma_arena_t *a)
{
    int rc = mp__mutex_lock(&a->mutex, NULL);
    if (rc == MP_EOWNERDEAD) {
        /* the mutex is consistent again; if this process dies while
           repairing, the next one starts over (the repair is idempotent) */
        repair(a);
        a->repairs++;
        mp__mutex_unlock(&a->mutex);
        return MP_EREPAIRED;
    }
    return rc;
}

void ma_unlock(ma_arena_t *a)
{
    mp__mutex_unlock(&a->mutex);
}
