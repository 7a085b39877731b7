/*  async.h - the waits AsyncResult and the imap reader share (async.c). */
#ifndef MP_CLIENT_ASYNC_H_INCLUDED
#define MP_CLIENT_ASYNC_H_INCLUDED

#include <stdbool.h>
#include <time.h>

#include "mp/pool.h"

/* Waits on the pool's condition until pred(arg) or the deadline (NULL:
   none). 0 or MP_ETIMEDOUT. Mutex held. */
int mp__pool_wait_until(mp_pool_t *pool, const struct timespec *deadline, bool (*pred)(void *),
                        void *arg);

#endif
