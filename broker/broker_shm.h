/*  broker_shm.h - the broker as an embedded pool starts it. Not installed.

    Thread-safety: as mp_broker_new. Fork: as mp_broker_new (never fork
    with a broker running unless the child only execs). Signals: no.
*/
#ifndef MP_BROKER_SHM_H_INCLUDED
#define MP_BROKER_SHM_H_INCLUDED

#include "codec/mpp.h"
#include "mp/broker.h"
#include "pool/poolshm.h"

/* mp_broker_new that accepts SUBMITs whose items are in shm (poolshm.h)
   and forwards results from workers that announced it, and serves peers
   on socket pair ends (codec/mpps.h, PROTOCOL.md 9.2) beside its
   endpoints: stream_fd the worker's, client_fd the pool's blocking
   applies' (each -1: none; taken over, also on failure). */
int mp__broker_new_shm(const mp_broker_options_t *o, mp__pshm_t *shm, int stream_fd, int client_fd,
                       mp_broker_t **b_p);

/* For fuzzing (tests/fuzz/fuzz_broker.c): the engine without its thread.
   mp__broker_route handles one message as if the ROUTER had received it
   (frame 0 the peer's routing id), mp__broker_tick runs one heartbeat,
   mp__broker_reset drops every peer, chunk and queue (as a shutdown
   does). Only on a broker from mp__broker_new_idle. */
int mp__broker_new_idle(const mp_broker_options_t *o, mp_broker_t **b_p);
void mp__broker_route(mp_broker_t *b, mpp_msg_t *m);
/* What the loop does for each stream connection closed (bk_streams_reap). */
void mp__broker_stream_gone(mp_broker_t *b, const void *id, size_t idlen, const char *why);
void mp__broker_tick(mp_broker_t *b);
void mp__broker_reset(mp_broker_t *b);
/* Its ROUTER socket (the fuzzer's peers say something first, and read it
   off here, so that the router knows their ids). */
void *mp__broker_socket(mp_broker_t *b);

#endif
