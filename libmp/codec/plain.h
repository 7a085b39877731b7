/*  plain.h - plain stream sockets: the endpoints SCHEME+tcp://HOST:PORT
    and SCHEME+ipc://PATH, where a protocol runs on a bare byte stream
    instead of ZeroMQ (the Manager's MPM/1: "mpm", docs/MANAGER.md 6.3;
    the Pool's MPP/1: "mpp", docs/PROTOCOL.md 9.3). Listening, accepting
    and connecting; the framing is each protocol's own. Not installed.

    HOST is a name or address ([::1] for IPv6); a listener may say * for
    any address and port 0 or * for a free port.
*/
#ifndef MP_CODEC_PLAIN_H_INCLUDED
#define MP_CODEC_PLAIN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when endpoint is scheme+tcp:// or scheme+ipc:// (scheme: "mpm"). */
bool mp__plain_is(const char *scheme, const char *endpoint);
/* endpoint without its "scheme+" (tcp://... or ipc://...), for the rules
   ZeroMQ endpoints follow (mp__endpoint_is_local); NULL if not one. */
const char *mp__plain_transport(const char *scheme, const char *endpoint);
/* Listens: a non-blocking socket in *fd_p and the bound endpoint (the
   free port filled in) in bound. 0, MP_EINVAL (not one), or -errno. */
int mp__plain_listen(const char *scheme, const char *endpoint, int *fd_p, char *bound,
                     size_t boundlen);
/* Accepts a connection: its fd (non-blocking, no delay, keepalive), or
   -errno (-EAGAIN: none waiting). source (if not NULL): the peer's IP
   address, or "local" on ipc://. */
int mp__plain_accept(int listen_fd, char *source, size_t sourcelen);
/* Connects by deadline (mp__now_ns): a non-blocking socket in *fd_p.
   0, MP_EINVAL, MP_ETIMEDOUT, or -errno (-ECONNREFUSED: nobody there). */
int mp__plain_connect(const char *scheme, const char *endpoint, uint64_t deadline, int *fd_p);
/* The same in two steps, for a loop that must not wait: start puts a
   non-blocking socket in *fd_p and returns 0 (connected), 1 (under way:
   poll it for POLLOUT, then finish), or MP_EINVAL / -errno (no socket).
   finish: 0 (connected), or -errno (the caller closes fd). */
int mp__plain_connect_start(const char *scheme, const char *endpoint, int *fd_p);
int mp__plain_connect_finish(int fd);
/* Waits until deadline for events (POLLIN, POLLOUT) on fd: 1, 0 (the
   deadline), or -errno. */
int mp__plain_wait(int fd, short events, uint64_t deadline);

#endif
