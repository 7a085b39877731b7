/*  mpp.c - whole-message receive and send for MPP/1.

    A message is received completely or not at all: frames beyond the limit
    are read and dropped (libzmq delivers multipart messages atomically, so
    the rest is already here), which keeps a peer sending 10^6 frames from
    making us hold them.

    mp_broker_address_check (mp/broker.h) is here too: the address an MPP/1
    socket is connected to, checked before it is (its form, and that the
    host resolves), so a typo fails at once with a message instead of a
    silent wait. Clients and workers both use it.
*/
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "codec/mpp.h"
#include "mp/broker.h"
#include "mp/error.h"

/* The socket whose last mpp_recv on this thread ended in EAGAIN, untouched
   by mpp_recv or mpp_send since: that EAGAIN ran its pending commands and
   found it empty, so it will signal its ZMQ_FD for the next message, and
   mpp_poll's next pass need not ask it before sleeping (a fork check and a
   poll(2) saved per pass). One pass only: mpp_poll clears it. */
static _Thread_local void *drained;

int mpp_recv(void *sock, mpp_msg_t *m, int flags)
{
    drained = NULL;
    m->n = 0;
    m->too_many = false;
    for (;;) {
        zmq_msg_t *f;
        zmq_msg_t spare;
        if (m->n <= MPP_MAX_FRAMES)
            f = &m->f[m->n];
        else
            f = &spare;
        zmq_msg_init(f);
        if (zmq_msg_recv(f, sock, m->n == 0 ? flags : 0) < 0) {
            int err = errno;
            zmq_msg_close(f);
            mpp_close(m);
            if (err == EAGAIN && m->n == 0)
                drained = sock;
            return -err;
        }
        bool more = zmq_msg_more(f);
        if (f == &spare) {
            zmq_msg_close(f);
            m->too_many = true;
        } else {
            m->n++;
        }
        if (!more)
            return 0;
    }
}

int mpp_socket_close(void *sock)
{
    if (drained == sock) /* its address may be the next socket's */
        drained = NULL;
    return zmq_close(sock);
}

int mpp_events(void *sock)
{
    if (drained == sock) /* it may run the commands that signal ZMQ_FD */
        drained = NULL;
    int ev = 0;
    size_t len = sizeof ev;
    return zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &len) < 0 ? -errno : ev;
}

/* A socket's readiness (ZMQ_EVENTS runs its pending commands). */
static short socket_events(zmq_pollitem_t *it)
{
    int ev = mpp_events(it->socket);
    return ev < 0 ? ZMQ_POLLERR : (short)(ev & it->events & (ZMQ_POLLIN | ZMQ_POLLOUT));
}

int mpp_poll(zmq_pollitem_t *items, int n, int nhot, long timeout_ms)
{
    struct pollfd stack[16], *pf = n <= 16 ? stack : malloc((size_t)n * sizeof *pf);
    if (!pf) {
        errno = ENOMEM;
        return -1;
    }
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : mp__now_ns() + (uint64_t)timeout_ms * 1000000;
    int ready = 0;
    void *cold = drained; /* read to EAGAIN just now: no need to ask */
    drained = NULL;
    for (int i = 0; i < n; i++) { /* before sleeping: the hot sockets */
        bool ask = items[i].socket && i < nhot && items[i].socket != cold;
        items[i].revents = ask ? socket_events(&items[i]) : 0;
        ready += items[i].revents != 0;
        int fd = items[i].fd;
        size_t len = sizeof fd;
        if (items[i].socket && zmq_getsockopt(items[i].socket, ZMQ_FD, &fd, &len) < 0)
            fd = -1;
        short ev = items[i].socket ? POLLIN
                                   : (short)((items[i].events & ZMQ_POLLIN ? POLLIN : 0) |
                                             (items[i].events & ZMQ_POLLOUT ? POLLOUT : 0));
        pf[i] = (struct pollfd){.fd = fd, .events = ev};
    }
    /* poll(2) always, not sleeping when a hot socket is ready: the plain
       fds and the other sockets are reported beside it, never starved */
    for (bool first = true;; first = false) {
        int ms = -1;
        if (ready) {
            ms = 0;
        } else if (timeout_ms >= 0) {
            uint64_t now = mp__now_ns();
            ms = now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
        }
        if (poll(pf, (nfds_t)n, ms) < 0) {
            ready = -1;
            break;
        }
        ready = 0;
        for (int i = 0; i < n; i++) {
            if (items[i].socket) { /* its mailbox fired: what is it now? */
                if (pf[i].revents)
                    items[i].revents = socket_events(&items[i]);
                else if (!first)
                    items[i].revents = 0;
            } else { /* as zmq_poll maps them */
                items[i].revents =
                    (short)((pf[i].revents & POLLIN ? ZMQ_POLLIN : 0) |
                            (pf[i].revents & POLLOUT ? ZMQ_POLLOUT : 0) |
                            (pf[i].revents & ~(POLLIN | POLLOUT | POLLPRI) ? ZMQ_POLLERR : 0));
            }
            ready += items[i].revents != 0;
        }
        if (ready || (timeout_ms >= 0 && mp__now_ns() >= deadline))
            break;
    }
    if (pf != stack)
        free(pf);
    return ready;
}

void mpp_close(mpp_msg_t *m)
{
    for (int i = 0; i < m->n; i++)
        zmq_msg_close(&m->f[i]);
    m->n = 0;
}

int mpp_send(void *sock, const void *id, size_t idlen, const char *sig, uint8_t cmd,
             const void *header, size_t header_size, zmq_msg_t *payload, int npayload, int flags)
{
    int rc = 0;
    if (drained == sock) /* a send may run the commands that signal ZMQ_FD */
        drained = NULL;
    if (idlen && zmq_send(sock, id, idlen, flags | ZMQ_SNDMORE) < 0)
        rc = -errno;
    /* after the first frame libzmq queues the rest atomically */
    if (rc == 0 && zmq_send(sock, sig, MPP_SIG_SIZE, flags | ZMQ_SNDMORE) < 0)
        rc = -errno;
    if (rc == 0 && zmq_send(sock, &cmd, 1, flags | ZMQ_SNDMORE) < 0)
        rc = -errno;
    if (rc == 0 && zmq_send(sock, header, header_size, flags | (npayload ? ZMQ_SNDMORE : 0)) < 0)
        rc = -errno;
    for (int i = 0; i < npayload; i++) {
        if (rc == 0 &&
            zmq_msg_send(&payload[i], sock, flags | (i + 1 < npayload ? ZMQ_SNDMORE : 0)) < 0)
            rc = -errno;
        if (rc)
            zmq_msg_close(&payload[i]);
    }
    return rc;
}

int mpp_socket_setup(void *sock, size_t max_message)
{
    int linger = 0, hwm = 0, ivl = 5000;
    int64_t max = (int64_t)max_message;
    if (zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max) ||
        zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(sock, ZMQ_HANDSHAKE_IVL, &ivl, sizeof ivl))
        return -errno;
    return 0;
}

void mpp_id_hex(const void *id, size_t n, char *out, size_t outsize)
{
    const uint8_t *p = id;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 3 <= outsize; i++)
        k += (size_t)snprintf(out + k, outsize - k, "%02x", p[i]);
    if (outsize)
        out[k < outsize ? k : outsize - 1] = '\0';
}

int mpp_items_frame(zmq_msg_t *frame, size_t count, size_t bytes, char **at)
{
    char ah[8];
    mp__buf_t arr;
    mp__buf_init(&arr, ah, sizeof ah);
    mp__w_array(&arr, count);
    if (zmq_msg_init_size(frame, arr.size + bytes))
        return MP_ENOMEM;
    memcpy(zmq_msg_data(frame), arr.data, arr.size);
    *at = (char *)zmq_msg_data(frame) + arr.size;
    return 0;
}

int mp_broker_address_check(const char *address, char *why, size_t size)
{
    char dummy[1];
    if (!why || size == 0) {
        why = dummy;
        size = sizeof dummy;
    }
    why[0] = '\0';
    if (!address || !*address) {
        snprintf(why, size, "no broker address: use tcp://HOST:PORT or ipc://PATH");
        return MP_EINVAL;
    }
    const char *ep = address;
    if (strncmp(ep, "mpp+", 4) == 0) /* a plain stream: a worker's only (PROTOCOL.md 9.3) */
        ep += 4;
    if (strncmp(ep, "ipc://", 6) == 0 && ep[6])
        return 0;
    const char *colon = strrchr(ep, ':');
    bool form = strncmp(ep, "tcp://", 6) == 0 && colon && colon > ep + 6 && colon[1];
    for (const char *d = form ? colon + 1 : ""; *d && form; d++)
        form = *d >= '0' && *d <= '9';
    if (!form) {
        snprintf(why, size,
                 "'%s' is not a broker address: use tcp://HOST:PORT (tcp://127.0.0.1:5555, "
                 "tcp://[::1]:5555, tcp://broker.example:5555) or ipc://PATH",
                 address);
        return MP_EINVAL;
    }
    char host[256];
    const char *h = ep + 6;
    size_t n = (size_t)(colon - h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') { /* tcp://[::1]:5555 */
        h++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof host) {
        snprintf(why, size, "the host in '%s' is %s", ep, n ? "too long" : "empty");
        return MP_EINVAL;
    }
    memcpy(host, h, n);
    host[n] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int err = getaddrinfo(host, colon + 1, &hints, &res);
    if (err) {
        snprintf(why, size, "cannot resolve host '%s' of %s: %s", host, ep,
                 err == EAI_SYSTEM ? strerror(errno) : gai_strerror(err));
        return err == EAI_SERVICE ? MP_EINVAL : MP_EHOSTUNKNOWN;
    }
    freeaddrinfo(res);
    return 0;
}
