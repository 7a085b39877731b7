/*  repair.h - the arena's lock (repair.c), which repairs the arena when a
    process died holding it. What every call on a local object takes. Not
    installed.
*/
#ifndef MP_MANAGER_REPAIR_H_INCLUDED
#define MP_MANAGER_REPAIR_H_INCLUDED

#include "manager/arena.h"

/* Locks the arena. 0, or MP_EREPAIRED after a repair (the lock is then
   released again: the caller does not hold it). */
int ma_lock(ma_arena_t *a);
void ma_unlock(ma_arena_t *a);

#endif
