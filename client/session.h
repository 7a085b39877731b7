/*  session.h - the client side of an MPP/1 session (session.c): opening
    it, and the messages a client sends, on a link: a DEALER socket, or a
    byte stream framed as codec/mpps.h says (an embedded pool's blocking
    applies: a socket pair to the broker thread, PROTOCOL.md 9.2). Knows no
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
#include "codec/mpps.h"
#include "pool/poolshm.h"

/* Where a session's messages go: a DEALER (sock), or, sock NULL, a byte
   stream to the broker (fd, -1: none). A stream's send waits for room at
   most stall_ms (the broker thread reads whenever it runs); what it has
   not taken stays queued in out, whole messages, and goes first next
   time. */
typedef struct {
    void *sock;
    int fd;
    int stall_ms;
    mpps_buf_t in, out;
} mp__link_t;

/* A link to a DEALER, for a call. */
#define MP__DEALER(s) (&(mp__link_t){.sock = (s), .fd = -1})

/* Sends a client's [sig cmd header payload...] on l (payload consumed
   whatever happens). 0 or -errno. */
int mp__link_send(mp__link_t *l, uint8_t cmd, const void *header, size_t header_size,
                  zmq_msg_t *payload, int npayload);
/* The next message from the broker, without waiting: 0, -EAGAIN (none
   yet), MP_EEOF (the stream ended) or another error (-errno, MP_EBADMSG:
   the stream is not MPP/1 framing). */
int mp__link_recv(mp__link_t *l, mpp_msg_t *m);
/* Whether l holds a whole message mp__link_recv would return at once
   (poll(2) does not see what was read already). */
bool mp__link_buffered(const mp__link_t *l);
/* Closes what l holds (a stream's buffers too); l may be used again. */
void mp__link_close(mp__link_t *l);

/* A DEALER connected to endpoint with every client session's options.
   *sock_p is set whenever a socket was made, even when its setup failed
   (the caller closes it). 0 or -errno. */
int mp__session_open(void *ctx, const char *endpoint, const mp__curve_t *curve, void **sock_p);
/* HELLO, named "pool pid N" (the I/O thread's session) or "pool pid N
   (blocking applies)". 0 or -errno. */
int mp__session_hello(mp__link_t *l, bool blocking, int heartbeat_ms, int window);
/* A command whose header is an empty array: STATUS, HEARTBEAT,
   DISCONNECT. 0 or -errno. */
int mp__session_command(mp__link_t *l, uint8_t cmd);
/* DRAIN [worker-id] (PROTOCOL.md 4.1): answered with STATUS. 0 or -errno. */
int mp__session_drain(mp__link_t *l, uint64_t worker_id);
/* SUBMIT of chunk id: count items for name in mode. The items frame (an
   msgpack array of count items, or empty when in says where they are in
   the input ring) is consumed; init (NULL: none) is copied. 0 or -errno. */
int mp__session_submit(mp__link_t *l, uint64_t id, const char *name, uint8_t mode, size_t count,
                       const mp__pshm_in_t *in, uint32_t time_limit_ms, zmq_msg_t *items,
                       zmq_msg_t *init);
/* A durable SUBMIT (PROTOCOL.md 7.3): chunk seq of total of job, items
   copied (the caller sends them again until STORED). 0 or -errno. */
int mp__session_submit_durable(mp__link_t *l, uint64_t id, const char *name, uint8_t mode,
                               size_t count, uint32_t time_limit_ms, const char *job, uint64_t seq,
                               uint64_t total, zmq_msg_t *items);
/* FETCH [job from wait-ms] and FORGET [job]. 0 or -errno. */
int mp__session_fetch(mp__link_t *l, const char *job, uint64_t from, uint64_t wait_ms);
int mp__session_forget(mp__link_t *l, const char *job);
/* CANCEL of chunk id. 0 or -errno. */
int mp__session_cancel(mp__link_t *l, uint64_t id);
/* Frames 0..2 of a message from the broker are a client's signature, a
   one-octet command and a header: anything else is dropped. */
bool mp__session_valid(mpp_msg_t *m);

#endif
