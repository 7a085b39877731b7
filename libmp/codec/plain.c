/*  plain.c - plain stream sockets (plain.h): SCHEME+tcp:// and
    SCHEME+ipc:// endpoints, resolved, listened on, accepted, connected.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/base.h"
#include "codec/plain.h"
#include "mp/error.h"

/* "tcp://..." or "ipc://..." after "scheme+", or NULL. */
const char *mp__plain_transport(const char *scheme, const char *endpoint)
{
    size_t n = scheme ? strlen(scheme) : 0;
    if (!endpoint || !n || strncmp(endpoint, scheme, n) || endpoint[n] != '+')
        return NULL;
    const char *t = endpoint + n + 1;
    return !strncmp(t, "tcp://", 6) || !strncmp(t, "ipc://", 6) ? t : NULL;
}

bool mp__plain_is(const char *scheme, const char *endpoint)
{
    return mp__plain_transport(scheme, endpoint) != NULL;
}

typedef struct {
    struct sockaddr_storage sa;
    socklen_t len;
    int family;
} addr_t;

/* endpoint's address; for tcp, host "*" or "" is any address and port "*"
   is 0 (passive: for a listener). */
static int resolve(const char *scheme, const char *endpoint, bool passive, addr_t *a)
{
    memset(a, 0, sizeof *a);
    const char *t = mp__plain_transport(scheme, endpoint);
    if (!t)
        return MP_EINVAL;
    if (!strncmp(t, "ipc://", 6)) {
        struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;
        const char *path = t + 6;
        if (!*path || strlen(path) >= sizeof un->sun_path)
            return MP_EINVAL;
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, path);
        a->len = (socklen_t)sizeof *un;
        a->family = AF_UNIX;
        return 0;
    }
    char host[256], port[16];
    const char *hp = t + 6, *colon = strrchr(hp, ':');
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

int mp__plain_listen(const char *scheme, const char *endpoint, int *fd_p, char *bound,
                     size_t boundlen)
{
    addr_t a;
    int rc = resolve(scheme, endpoint, true, &a);
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
        snprintf(bound, boundlen, "%s+tcp://%s:%u", scheme, host, ntohs(in->sin_port));
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(bound, boundlen, "%s+tcp://[%s]:%u", scheme, host, ntohs(in6->sin6_port));
    }
    *fd_p = fd;
    return 0;
}

int mp__plain_accept(int listen_fd, char *source, size_t sourcelen)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    int fd = accept4(listen_fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return -errno;
    tune(fd, sa.ss_family);
    if (source && sourcelen) {
        char host[INET6_ADDRSTRLEN] = "local";
        if (sa.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, host, sizeof host);
        else if (sa.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, host, sizeof host);
        snprintf(source, sourcelen, "%s", host);
    }
    return fd;
}

int mp__plain_wait(int fd, short events, uint64_t deadline)
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

int mp__plain_connect_start(const char *scheme, const char *endpoint, int *fd_p)
{
    addr_t a;
    int rc = resolve(scheme, endpoint, false, &a);
    if (rc)
        return rc;
    int fd = socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a.sa, a.len) < 0) {
        if (errno == EINPROGRESS) {
            *fd_p = fd;
            return 1;
        }
        rc = -errno;
        close(fd);
        return rc;
    }
    tune(fd, a.family);
    *fd_p = fd;
    return 0;
}

int mp__plain_connect_finish(int fd)
{
    int err = 0, family = AF_UNIX;
    socklen_t len = sizeof err, flen = sizeof family;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    if (err)
        return -err;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &flen) == 0)
        tune(fd, family);
    return 0;
}

int mp__plain_connect(const char *scheme, const char *endpoint, uint64_t deadline, int *fd_p)
{
    int fd, rc = mp__plain_connect_start(scheme, endpoint, &fd);
    if (rc == 1) {
        int w = mp__plain_wait(fd, POLLOUT, deadline);
        rc = w < 0 ? w : w == 0 ? MP_ETIMEDOUT : mp__plain_connect_finish(fd);
        if (rc)
            close(fd);
    }
    if (!rc)
        *fd_p = fd;
    return rc;
}
