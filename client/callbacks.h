/*  callbacks.h - the callback thread (callbacks.c). */
#ifndef MP_CLIENT_CALLBACKS_H_INCLUDED
#define MP_CLIENT_CALLBACKS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "mp/pool.h"

/* Hands ready jobs to their callbacks (mutex NOT held): a job with one goes
   to the callback thread, which runs it and then drops the pool's
   reference; the pool's reference to the others is dropped at once. */
void mp__pool_run_callbacks(mp_pool_t *pool, mp_async_t **ready, size_t n);
/* Runs the callbacks still due, then ends the callback thread (destroy,
   after the I/O thread has ended). */
void mp__pool_stop_callbacks(mp_pool_t *pool);
/* The caller may read job's results: it is ready, or it is finished and
   the calling thread runs its callback (mutex held). */
bool mp__pool_visible(const mp_async_t *job);
/* No callback due or running (mutex held). */
bool mp__pool_callbacks_idle(const mp_pool_t *pool);
/* The calling thread is the callback thread (mutex held). */
bool mp__pool_on_callback_thread(const mp_pool_t *pool);

#endif
