/*  feeder.h - imap feeder threads and imap batching (feeder.c). */
#ifndef MP_CLIENT_FEEDER_H_INCLUDED
#define MP_CLIENT_FEEDER_H_INCLUDED

#include <stddef.h>

#include "job.h"

/* Starts the feeder thread of an imap job (mutex NOT held). 0 or MP_ENOMEM.
   The job must hold a reference for it (dropped when it is joined). */
int mp__pool_start_feeder(mp_pool_t *pool, mp_async_t *job);
/* Stops and joins it; the generator is not running when this returns
   (mutex NOT held). */
void mp__pool_stop_feeder(mp_pool_t *pool, mp_async_t *job);
/* How many queued chunks of an imap may travel as one chunk (mutex held). */
size_t mp__pool_imap_batch(const mp_async_t *job);

#endif
