/*  stream.c - MPM/1 over a plain byte stream (stream.h, docs/MANAGER.md
    section 6.3): endpoints, the frame, and non-blocking reads and writes.

    A remote call over ZeroMQ crosses four threads (each side's I/O thread
    and caller); here the caller's thread writes the request and reads the
    reply itself, and the server's thread does the same, so a round trip
    is two system calls a side. A side that waits polls its socket for a
    few microseconds before it sleeps in poll(2): on an idle machine the
    reply usually comes within that time, and a sleep costs the wake-up.
*/
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "base/base.h"
#include "codec/mpp.h"
#include "codec/mpps.h"
#include "manager/stream.h"
#include "mp/error.h"

#define SIG "MPM01"
#define TCP "mpm+tcp://"
#define IPC "mpm+ipc://"
#define READ_CHUNK (64 * 1024)

bool mpms_is_stream(const char *endpoint)
{
    return endpoint && (!strncmp(endpoint, TCP, 10) || !strncmp(endpoint, IPC, 10));
}

/* ---- endpoints --------------------------------------------------------------------- */

typedef struct {
    struct sockaddr_storage sa;
    socklen_t len;
    int family;
} addr_t;

/* endpoint's address; for tcp, host "*" or "" is any address and port "*"
   is 0 (passive: for a listener). */
static int resolve(const char *endpoint, bool passive, addr_t *a)
{
    memset(a, 0, sizeof *a);
    if (!strncmp(endpoint, IPC, 10)) {
        struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;
        const char *path = endpoint + 10;
        if (!*path || strlen(path) >= sizeof un->sun_path)
            return MP_EINVAL;
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, path);
        a->len = (socklen_t)sizeof *un;
        a->family = AF_UNIX;
        return 0;
    }
    if (strncmp(endpoint, TCP, 10))
        return MP_EINVAL;
    char host[256], port[16];
    const char *hp = endpoint + 10, *colon = strrchr(hp, ':');
    size_t hl = colon ? (size_t)(colon - hp) : 0;
    if (!colon || hl >= sizeof host || strlen(colon + 1) >= sizeof port || !colon[1])
        return MP_EINVAL;
    memcpy(host, hp, hl);
    host[hl] = 0;
    strcpy(port, strcmp(colon + 1, "*") ? colon + 1 : "0");
    char *h = host;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') { /* [::1] */
        h[hl - 1] = 0;
        h++;
    }
    bool any = !*h || !strcmp(h, "*");
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | (passive && any ? AI_PASSIVE : 0)},
                    *res = NULL;
    if (any && !passive)
        return MP_EINVAL;
    if (getaddrinfo(any ? NULL : h, port, &hints, &res) || !res)
        return MP_EINVAL;
    memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
    a->len = res->ai_addrlen;
    a->family = res->ai_family;
    freeaddrinfo(res);
    return 0;
}

static void tune(int fd, int family)
{
    int one = 1;
    if (family != AF_UNIX) { /* keepalive: a peer whose host vanished is found out */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    }
}

int mpms_listen(const char *endpoint, int *fd_p, char *bound, size_t boundlen)
{
    addr_t a;
    int rc = resolve(endpoint, true, &a);
    if (rc)
        return rc;
    int fd = socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0)
        return -errno;
    if (a.family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    else /* as ZeroMQ's ipc://: a socket file left by a dead server is replaced */
        unlink(((struct sockaddr_un *)&a.sa)->sun_path);
    if (bind(fd, (struct sockaddr *)&a.sa, a.len) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&a.sa, &a.len) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    char host[INET6_ADDRSTRLEN] = "";
    if (a.family == AF_UNIX) {
        snprintf(bound, boundlen, "%s", endpoint);
    } else if (a.family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&a.sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(bound, boundlen, TCP "%s:%u", host, ntohs(in->sin_port));
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(bound, boundlen, TCP "[%s]:%u", host, ntohs(in6->sin6_port));
    }
    *fd_p = fd;
    return 0;
}

int mpms_accept(int listen_fd)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    int fd = accept4(listen_fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return -errno;
    tune(fd, sa.ss_family);
    return fd;
}

/* Waits until deadline for events on fd: 1, 0 (deadline), or -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = mp__now_ns();
        if (now >= deadline)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)((deadline - now + 999999) / 1000000));
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

int mpms_connect(const char *endpoint, uint64_t deadline, int *fd_p)
{
    addr_t a;
    int rc = resolve(endpoint, false, &a);
    if (rc)
        return rc;
    int fd = socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a.sa, a.len) < 0) {
        rc = errno == EINPROGRESS ? 0 : -errno;
        if (!rc) {
            int w = wait_fd(fd, POLLOUT, deadline), err = 0;
            socklen_t len = sizeof err;
            rc = w < 0                                                  ? w
                 : w == 0                                               ? MP_ETIMEDOUT
                 : getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ? -errno
                                                                        : -err;
        }
    }
    if (rc) {
        close(fd);
        return rc;
    }
    tune(fd, a.family);
    *fd_p = fd;
    return 0;
}

/* ---- writing ----------------------------------------------------------------------- */

int mpms_frame(uint8_t cmd, const mp_obj_t *body, uint8_t hdr[MPMS_HEADER], char **data,
               size_t *size)
{
    *data = NULL;
    *size = 0;
    int rc = mp_obj_pack(body, data, size);
    if (rc)
        return rc;
    if (*size > MPP_DEFAULT_MAX_MSG - 64) { /* as over ZeroMQ: the other side would drop it */
        free(*data);
        *data = NULL;
        return MP_E2BIG;
    }
    uint32_t len = (uint32_t)(*size + MPMS_HEADER - 4);
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
    memcpy(hdr + 4, SIG, 5);
    hdr[9] = cmd;
    return 0;
}

long mpms_write_some(int fd, const uint8_t *hdr, size_t hdrlen, const char *data, size_t size)
{
    struct iovec iov[2] = {{(void *)hdr, hdrlen}, {(void *)data, size}};
    struct msghdr mh = {.msg_iov = hdrlen ? iov : iov + 1, .msg_iovlen = hdrlen ? 2 : 1};
    for (;;) {
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0)
            return (long)w;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

int mpms_send(int fd, uint8_t cmd, const mp_obj_t *body, uint64_t deadline)
{
    uint8_t hdr[MPMS_HEADER];
    char *data;
    size_t size, done = 0, total;
    int rc = mpms_frame(cmd, body, hdr, &data, &size);
    for (total = size + MPMS_HEADER; !rc && done < total;) {
        long w = done < MPMS_HEADER
                     ? mpms_write_some(fd, hdr + done, MPMS_HEADER - done, data, size)
                     : mpms_write_some(fd, NULL, 0, data + (done - MPMS_HEADER), total - done);
        if (w < 0)
            rc = (int)w;
        else if (w > 0)
            done += (size_t)w;
        else if ((w = wait_fd(fd, POLLOUT, deadline)) <= 0)
            rc = w < 0 ? (int)w : MP_ETIMEDOUT;
    }
    free(data);
    return rc;
}

/* ---- reading ----------------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int mpms_fill(mpms_in_t *in, int fd)
{
    if (in->off == in->len) {
        in->off = in->len = 0;
        if (in->cap > 4 * READ_CHUNK) { /* a big message went: give its room back */
            free(in->buf);
            in->buf = NULL;
            in->cap = 0;
        }
    }
    size_t want = READ_CHUNK;
    if (in->len - in->off >= 4) { /* room for the whole message under way */
        size_t need = 4 + (size_t)be32(in->buf + in->off);
        if (need > in->limit + 4)
            return MP_EBADMSG;
        want = need > in->len - in->off ? need - (in->len - in->off) : READ_CHUNK;
    }
    if (in->cap - in->len < want && in->off) { /* move what is left to the front */
        memmove(in->buf, in->buf + in->off, in->len - in->off);
        in->len -= in->off;
        in->off = 0;
    }
    if (in->cap - in->len < want) {
        size_t cap = in->len + (want > READ_CHUNK ? want : READ_CHUNK);
        uint8_t *b = realloc(in->buf, cap);
        if (!b)
            return MP_ENOMEM;
        in->buf = b;
        in->cap = cap;
    }
    int r = mpps_recv_some(fd, in->buf + in->len, in->cap - in->len);
    if (r > 0)
        in->len += (size_t)r;
    return r;
}

int mpms_take(mpms_in_t *in, uint8_t *cmd, mp_obj_t **body)
{
    *body = NULL;
    size_t have = in->len - in->off;
    if (have < 4)
        return 0;
    const uint8_t *p = in->buf + in->off;
    size_t len = be32(p);
    if (len < MPMS_HEADER - 4 + 1 || len > in->limit)
        return MP_EBADMSG;
    if (have >= MPMS_HEADER && memcmp(p + 4, SIG, 5))
        return MP_EBADMSG; /* not MPM/1: known before the rest arrives */
    if (have < 4 + len)
        return 0;
    *cmd = p[9];
    if (mp_obj_unpack((const char *)p + MPMS_HEADER, len - (MPMS_HEADER - 4), body) ||
        mp_obj_type(*body) != MP_OBJ_ARRAY) {
        mp_obj_destroy(body);
        return MP_EBADMSG;
    }
    in->off += 4 + len;
    return 1;
}

int mpms_wait(mpms_in_t *in, int fd, uint64_t deadline, int spin_us, uint8_t *cmd, mp_obj_t **body)
{
    uint64_t spin_end = mp__now_ns() + (spin_us > 0 ? (uint64_t)spin_us * 1000 : 0);
    for (;;) {
        int rc = mpms_take(in, cmd, body);
        if (rc)
            return rc < 0 ? rc : 0;
        if ((rc = mpms_fill(in, fd)) < 0)
            return rc;
        if (rc > 0)
            continue;
        uint64_t now = mp__now_ns();
        if (now >= deadline)
            return MP_ETIMEDOUT;
        if (now < spin_end)
            continue;
        if ((rc = wait_fd(fd, POLLIN, deadline)) < 0)
            return rc;
    }
}

void mpms_in_free(mpms_in_t *in)
{
    free(in->buf);
    *in = (mpms_in_t){.limit = in->limit};
}
