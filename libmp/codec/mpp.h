/*  mpp.h - receiving and sending MPP/1 messages over libzmq.
    Shared by the broker, the worker supervisor and the pool. Not installed. */
#ifndef MP_MPP_H_INCLUDED
#define MP_MPP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "base/base.h"
#include "codec/wire.h"

/* A received message: routing id (ROUTER only) + up to MPP_MAX_FRAMES. */
typedef struct {
    zmq_msg_t f[MPP_MAX_FRAMES + 1];
    int n;         /* frames held */
    bool too_many; /* more frames arrived than fit (they were dropped) */
} mpp_msg_t;

/* Receives one whole message (flags: ZMQ_DONTWAIT or 0). 0 or -errno. */
int mpp_recv(void *sock, mpp_msg_t *m, int flags);
void mpp_close(mpp_msg_t *m);
static inline const uint8_t *mpp_data(mpp_msg_t *m, int i)
{
    return zmq_msg_data(&m->f[i]);
}
static inline size_t mpp_size(mpp_msg_t *m, int i)
{
    return zmq_msg_size(&m->f[i]);
}

/* Sends [id] sig cmd header [payload...]. Payload messages are consumed
   (closed) whatever happens. flags: ZMQ_DONTWAIT or 0. 0 or -errno. */
int mpp_send(void *sock, const void *id, size_t idlen, const char *sig, uint8_t cmd,
             const void *header, size_t header_size, zmq_msg_t *payload, int npayload, int flags);

/* zmq_close, for a socket this thread may have read with mpp_recv: the
   mark mpp_poll keeps of it goes too (a new socket may get its address). */
int mpp_socket_close(void *sock);

/* A socket's ZMQ_EVENTS (it runs the socket's pending commands), or
   -errno. Use it, not zmq_getsockopt, on a socket mpp_poll watches. */
int mpp_events(void *sock);

/* zmq_poll with fewer system calls. zmq_poll asks every socket for its
   state before and after it sleeps, each time a fork check and a poll(2)
   of its mailbox. Here only the first nhot sockets are asked before
   sleeping; after a wake-up, only those whose ZMQ_FD fired. The caller's
   rule for the others: when one is readable, read it until EAGAIN (a
   socket not drained does not signal its ZMQ_FD again). A hot socket
   that this thread's last mpp_recv found empty (EAGAIN), untouched by
   mpp_recv, mpp_send or mpp_events since, is not asked either: that
   EAGAIN already ran its commands. Items as
   zmq_poll's: sockets (ZMQ_POLLIN only) and plain fds. Returns as
   zmq_poll: the number of ready items, 0 (timeout), or -1 (errno). */
int mpp_poll(zmq_pollitem_t *items, int n, int nhot, long timeout_ms);

/* Socket options every MPP socket gets: linger 0, max message size,
   heartbeat-free TCP keepalive off, handshake interval. */
int mpp_socket_setup(void *sock, size_t max_message);

/* An items (or values) frame of count values: their array header, then
   room for bytes more, at *at. 0 or MP_ENOMEM. */
int mpp_items_frame(zmq_msg_t *frame, size_t count, size_t bytes, char **at);

/* Hex of a routing id, for logs ("00a1b2c3d4"). */
void mpp_id_hex(const void *id, size_t n, char *out, size_t outsize);

#endif
