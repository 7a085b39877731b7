/*  mpps.h - MPP/1 messages over a byte stream (docs/PROTOCOL.md 9.2): how
    an embedded pool's broker thread and its worker process talk, over a
    socket pair instead of ZeroMQ's ipc://, so that no I/O thread stands
    between them. Shared by the broker and the worker supervisor. Not
    installed.

    A message: u32 length (big-endian, of what follows) | u8 frame count |
    per frame: u32 length | its bytes. The frames are the ones a DEALER
    sends: signature, command, header, payload.
*/
#ifndef MP_MPPS_H_INCLUDED
#define MP_MPPS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/mpp.h"

/* The framing's big-endian u32 (also the broker's stream ids). */
static inline void mpps_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t mpps_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The largest message a reader takes when the broker's limit is max
   (payload) bytes: the frames' headers and slack on top. */
#define MPPS_LIMIT(max) ((size_t)(max) + 64 * 1024)

/* Bytes received and not yet taken, or queued and not yet written. */
typedef struct {
    uint8_t *buf;
    size_t off, len, cap;
    size_t limit; /* a reader's largest message (0: MPP_DEFAULT_MAX_MSG + 64 KiB) */
} mpps_buf_t;

/* Queues [sig cmd header payload...] (the payload messages are consumed
   whatever happens). 0 or MP_ENOMEM. */
int mpps_put(mpps_buf_t *out, const char *sig, uint8_t cmd, const void *header, size_t header_size,
             zmq_msg_t *payload, int npayload);
/* Writes what out holds, without blocking: 0 (all written), 1 (the socket
   is full: wait for POLLOUT), or -errno. */
int mpps_flush(mpps_buf_t *out, int fd);
/* mpps_put, then mpps_flush until all is written, waiting for room at
   most stall_ms (a blocking writer's send: a reader that runs whenever it
   can is on the other end); what is left stays queued, whole messages,
   and goes first next time. fd < 0: -EPIPE. 0, -ETIMEDOUT or -errno. */
int mpps_send(mpps_buf_t *out, int fd, int stall_ms, const char *sig, uint8_t cmd,
              const void *header, size_t header_size, zmq_msg_t *payload, int npayload);
/* Reads what the socket has, without blocking: > 0, 0 (nothing there),
   MP_EEOF (the other end closed), -errno. */
int mpps_fill(mpps_buf_t *in, int fd);
/* One recv of up to n bytes without blocking: > 0, 0 (nothing there),
   MP_EEOF (the other end closed), -errno. */
int mpps_recv_some(int fd, void *p, size_t n);
/* Takes the next whole message into m's frames from m->f[at] on (frames
   before at are the caller's: the broker's routing id): 1, 0 (not whole
   yet), MP_EBADMSG (not this framing: drop the stream), MP_ENOMEM. More
   than MPP_MAX_FRAMES frames: m->too_many, as mpp_recv. */
int mpps_take(mpps_buf_t *in, mpp_msg_t *m, int at);
/* Bytes queued and not yet written (or received and not yet taken). */
static inline size_t mpps_pending(const mpps_buf_t *b)
{
    return b->len - b->off;
}
/* Whether in holds a whole message, which mpps_take returns without
   reading the socket (poll(2) does not see it). */
static inline bool mpps_has_message(const mpps_buf_t *in)
{
    return mpps_pending(in) >= 4 && mpps_pending(in) - 4 >= mpps_get32(in->buf + in->off);
}
/* Frees the buffer (its limit stays). */
void mpps_free(mpps_buf_t *b);

#endif
