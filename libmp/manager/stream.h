/*  stream.h - MPM/1 over a plain byte stream (docs/MANAGER.md section
    6.3): the endpoints mpm+tcp://HOST:PORT and mpm+ipc://PATH, the frame,
    and the reads and writes both ends use (proxy.c, serve.c). No ZeroMQ
    here: a call is one write and one read on each side, and a waiting
    side polls its socket briefly before it sleeps. Not installed.

    Frame: u32 length (big-endian, of what follows) | "MPM01" | command
    (1 byte) | msgpack body (an array): MPM/1's three frames, in a row.
*/
#ifndef MP_MANAGER_STREAM_H_INCLUDED
#define MP_MANAGER_STREAM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp/obj.h"

#define MPMS_HEADER 10       /* length, signature, command */
#define MPMS_UNAUTH_MAX 4096 /* a message from a peer not yet authenticated */
#define MPMS_SPIN_DEFAULT_US 50

/* What a reader has received and not yet taken. */
typedef struct {
    uint8_t *buf;
    size_t off, len, cap; /* taken up to off; received up to len */
    size_t limit;         /* the largest message accepted (its length field) */
} mpms_in_t;

/* True for mpm+tcp:// and mpm+ipc:// endpoints. */
bool mpms_is_stream(const char *endpoint);
/* Listens on endpoint (port 0 or *: a free one): a non-blocking socket in
 *fd_p and the bound endpoint in bound. 0, MP_EINVAL (not one), or -errno. */
int mpms_listen(const char *endpoint, int *fd_p, char *bound, size_t boundlen);
/* Accepts a connection from a listening socket: its fd (non-blocking, no
   delay), or -errno (-EAGAIN: none waiting). */
int mpms_accept(int listen_fd);
/* Connects by deadline (mp__now_ns): a non-blocking socket in *fd_p.
   0, MP_EINVAL, MP_ETIMEDOUT, or -errno (-ECONNREFUSED: nobody there). */
int mpms_connect(const char *endpoint, uint64_t deadline, int *fd_p);

/* The frame of cmd and body: its header (hdr) and packed body (*data,
   malloc'd). 0, MP_E2BIG (over the 64 MiB message limit), MP_ENOMEM. */
int mpms_frame(uint8_t cmd, const mp_obj_t *body, uint8_t hdr[MPMS_HEADER], char **data,
               size_t *size);
/* Writes hdr then data[0..size) without blocking: the bytes written
   (fewer: the socket is full), or -errno. */
long mpms_write_some(int fd, const uint8_t *hdr, size_t hdrlen, const char *data, size_t size);
/* Sends one message, waiting for room until deadline. 0, MP_E2BIG,
   MP_ETIMEDOUT, or -errno (-EPIPE: the peer closed). */
int mpms_send(int fd, uint8_t cmd, const mp_obj_t *body, uint64_t deadline);

/* Reads what the socket has without blocking: > 0 bytes read, 0 nothing
   there, MP_EEOF (the peer closed), -errno. */
int mpms_fill(mpms_in_t *in, int fd);
/* Takes the next whole message received: 1 (cmd, *body), 0 (not whole
   yet), MP_EBADMSG (not MPM/1, or over in->limit: drop the connection). */
int mpms_take(mpms_in_t *in, uint8_t *cmd, mp_obj_t **body);
/* Waits until deadline for the next message, polling without sleeping
   for the first spin_us: 0, MP_ETIMEDOUT, MP_EEOF, MP_EBADMSG, -errno. */
int mpms_wait(mpms_in_t *in, int fd, uint64_t deadline, int spin_us, uint8_t *cmd, mp_obj_t **body);
void mpms_in_free(mpms_in_t *in);

#endif
