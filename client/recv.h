/*  recv.h - messages from the broker, and failing everything (recv.c). */
#ifndef MP_CLIENT_RECV_H_INCLUDED
#define MP_CLIENT_RECV_H_INCLUDED

#include "codec/mpp.h"
#include "job.h"

/* One message from the broker on the pool's session (mutex held). */
void mp__pool_on_message(mp_pool_t *pool, mpp_msg_t *m, ready_t *ready);
/* Fails everything in flight and everything unsent with code/msg, blocking
   applies in flight included: the broker or the worker is gone, or the
   pool terminates (mutex held). */
void mp__pool_fail_all(mp_pool_t *pool, int code, const char *msg, ready_t *ready);

#endif
