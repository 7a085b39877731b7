/*  sync.h - blocking applies on the caller's own session (sync.c). */
#ifndef MP_CLIENT_SYNC_H_INCLUDED
#define MP_CLIENT_SYNC_H_INCLUDED

#include "mp/pool.h"

/* A blocking apply on the caller's own session (name and args checked by
   the caller). MP_EAGAIN when another thread's blocking apply holds that
   session, or the pool is not connected: then the I/O thread's path. Mutex
   NOT held. */
int mp__pool_apply_sync(mp_pool_t *pool, const char *name, const mp_obj_t *args,
                        mp_obj_t **result_p);
/* The I/O thread's heartbeat tick: an idle blocking session stays known to
   the broker (pool mutex held; sync_mutex only try-locked). */
void mp__pool_sync_keepalive(mp_pool_t *pool);
/* Closes the blocking session (destroy, sync_mutex held). */
void mp__pool_sync_close(mp_pool_t *pool);

#endif
