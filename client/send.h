/*  send.h - the send queue and the pump (send.c). */
#ifndef MP_CLIENT_SEND_H_INCLUDED
#define MP_CLIENT_SEND_H_INCLUDED

#include "job.h"

/* Adds a job to the send queue and wakes the I/O thread (mutex NOT held).
   0, MP_ESTATE (closed, terminated), MP_EWORKERLOST or MP_ENOMEM. */
int mp__pool_submit(mp_pool_t *pool, mp_async_t *job);
/* Sends what the window allows (the I/O thread, mutex held). */
void mp__pool_pump(mp_pool_t *pool, ready_t *ready);
/* Takes a job off the send queue, if it is there (mutex held). */
void mp__pool_send_queue_remove(mp_pool_t *pool, mp_async_t *job);
/* Withdraws a job (mutex held): what it has not sent fails now with
   MP_ECANCELLED; each chunk in flight that is its alone gets a CANCEL,
   which the I/O thread sends (mp__pool_send_cancels). */
void mp__pool_cancel(mp_pool_t *pool, mp_async_t *job, ready_t *ready);
/* Sends the CANCELs queued by mp__pool_cancel (the I/O thread, mutex held). */
void mp__pool_send_cancels(mp_pool_t *pool);
/* The broker is lost and may come back (a remote pool): every chunk in
   flight waits (an orphan) to be sent again, what cannot be fails now
   (BROKER_LOST), a blocking apply in flight moves to the I/O thread's
   path. Mutex held. */
void mp__pool_hold_all(mp_pool_t *pool, ready_t *ready);
/* A broker welcomed the pool: each orphan's unanswered gaps are sent again,
   as child chunks whose answers land in it. Mutex held. */
void mp__pool_resend(mp_pool_t *pool, ready_t *ready);

#endif
