/*  session.h - the client side of an MPP/1 session on one DEALER socket
    (session.c): opening it, and the messages a client sends. Knows no
    pool: the I/O thread's session and the session of blocking applies
    (sync.c) both speak through it. */
#ifndef MP_CLIENT_SESSION_H_INCLUDED
#define MP_CLIENT_SESSION_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "codec/curve.h"
#include "codec/mpp.h"
#include "pool/poolshm.h"

/* A DEALER connected to endpoint with every client session's options.
   *sock_p is set whenever a socket was made, even when its setup failed
   (the caller closes it). 0 or -errno. */
int mp__session_open(void *ctx, const char *endpoint, const mp__curve_t *curve, void **sock_p);
/* HELLO, named "pool pid N" (the I/O thread's session) or "pool pid N
   (blocking applies)". 0 or -errno. */
int mp__session_hello(void *sock, bool blocking, int heartbeat_ms, int window);
/* A command whose header is an empty array: STATUS, HEARTBEAT,
   DISCONNECT. 0 or -errno. */
int mp__session_command(void *sock, uint8_t cmd);
/* DRAIN [worker-id] (PROTOCOL.md 4.1): answered with STATUS. 0 or -errno. */
int mp__session_drain(void *sock, uint64_t worker_id);
/* SUBMIT of chunk id: count items for name in mode. The items frame (an
   msgpack array of count items, or empty when in says where they are in
   the input ring) is consumed; init (NULL: none) is copied. 0 or -errno. */
int mp__session_submit(void *sock, uint64_t id, const char *name, uint8_t mode, size_t count,
                       const mp__pshm_in_t *in, uint32_t time_limit_ms, zmq_msg_t *items,
                       zmq_msg_t *init);
/* A durable SUBMIT (PROTOCOL.md 7.3): chunk seq of total of job, items
   copied (the caller sends them again until STORED). 0 or -errno. */
int mp__session_submit_durable(void *sock, uint64_t id, const char *name, uint8_t mode,
                               size_t count, uint32_t time_limit_ms, const char *job, uint64_t seq,
                               uint64_t total, zmq_msg_t *items);
/* FETCH [job from wait-ms] and FORGET [job]. 0 or -errno. */
int mp__session_fetch(void *sock, const char *job, uint64_t from, uint64_t wait_ms);
int mp__session_forget(void *sock, const char *job);
/* CANCEL of chunk id. 0 or -errno. */
int mp__session_cancel(void *sock, uint64_t id);
/* Frames 0..2 of a message from the broker are a client's signature, a
   one-octet command and a header: anything else is dropped. */
bool mp__session_valid(mpp_msg_t *m);

#endif
