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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/base.h"
#include "codec/mpp.h"
#include "codec/mpps.h"
#include "codec/plain.h"
#include "manager/stream.h"
#include "mp/error.h"

#define SIG "MPM01"
#define READ_CHUNK (64 * 1024)

bool mpms_is_stream(const char *endpoint)
{
    return mp__plain_is("mpm", endpoint);
}

int mpms_listen(const char *endpoint, int *fd_p, char *bound, size_t boundlen)
{
    return mp__plain_listen("mpm", endpoint, fd_p, bound, boundlen);
}

int mpms_accept(int listen_fd)
{
    return mp__plain_accept(listen_fd, NULL, 0);
}

int mpms_connect(const char *endpoint, uint64_t deadline, int *fd_p)
{
    return mp__plain_connect("mpm", endpoint, deadline, fd_p);
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
        else if ((w = mp__plain_wait(fd, POLLOUT, deadline)) <= 0)
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
        if ((rc = mp__plain_wait(fd, POLLIN, deadline)) < 0)
            return rc;
    }
}

void mpms_in_free(mpms_in_t *in)
{
    free(in->buf);
    *in = (mpms_in_t){.limit = in->limit};
}
