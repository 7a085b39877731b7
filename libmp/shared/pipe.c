/*  pipe.c - Pipe connections: length-prefixed messages on a socketpair.

    Frame: 4-byte native-endian length, then the payload (msgpack for
    send/recv, anything for send_bytes). Both ends are on one machine, so
    native byte order is fine.

    Each end reads through a buffer: one read() usually brings a whole small
    message (header and payload), so a round trip costs the same system calls
    as a raw socketpair. A small message is sent with one send() from a stack
    copy, a large one with sendmsg() of two iovecs (no copy).

    One-way pipes are socketpairs too, with the unused directions shut down:
    a socket accepts MSG_NOSIGNAL, so a send to a closed peer is -EPIPE
    rather than a SIGPIPE that would kill the process.
*/
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/base.h"
#include "codec/buf.h"
#include "shared/pipe_impl.h"
#include "mp/error.h"
#include "mp/pipe.h"

#define READ_BUFFER 65536
#define SMALL_SEND 4096
#define HEADER 4u

struct mp_conn {
    int fd;
    bool readable;
    bool writable;
    bool broken; /* a recv failed mid-message: the stream is out of sync */
    char *rbuf;  /* READ_BUFFER bytes, allocated at the first recv */
    size_t rpos; /* first unread byte */
    size_t rlen; /* end of buffered bytes */
};

static mp_conn_t *conn_new(int fd, bool readable, bool writable)
{
    mp_conn_t *c = calloc(1, sizeof *c);
    if (c) {
        c->fd = fd;
        c->readable = readable;
        c->writable = writable;
    }
    return c;
}

int mp_pipe(mp_conn_t **end1_p, mp_conn_t **end2_p, bool duplex)
{
    if (!end1_p || !end2_p)
        return MP_EINVAL;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    if (!duplex) {
        shutdown(sv[0], SHUT_WR);
        shutdown(sv[1], SHUT_RD);
    }
    mp_conn_t *a = conn_new(sv[0], true, duplex);
    mp_conn_t *b = conn_new(sv[1], duplex, true);
    if (!a || !b) {
        free(a);
        free(b);
        close(sv[0]);
        close(sv[1]);
        return MP_ENOMEM;
    }
    *end1_p = a;
    *end2_p = b;
    return 0;
}

/* ---- sending -------------------------------------------------------------- */

static int send_all(int fd, struct iovec *iov, int iovcnt)
{
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
    while (msg.msg_iovlen > 0) {
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (n > 0 && msg.msg_iovlen > 0) {
            if ((size_t)n >= msg.msg_iov->iov_len) {
                n -= (ssize_t)msg.msg_iov->iov_len;
                msg.msg_iov++;
                msg.msg_iovlen--;
            } else {
                msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + n;
                msg.msg_iov->iov_len -= (size_t)n;
                n = 0;
            }
        }
    }
    return 0;
}

int mp_conn_send_bytes(mp_conn_t *c, const void *data, size_t size)
{
    if (!c || (!data && size) || size > MP_CONN_MAX_MESSAGE)
        return MP_EINVAL;
    if (c->fd < 0)
        return MP_ECLOSED;
    if (!c->writable)
        return MP_EINVAL;
    uint32_t size32 = (uint32_t)size;
    if (size <= SMALL_SEND) {
        char frame[HEADER + SMALL_SEND];
        memcpy(frame, &size32, HEADER);
        if (size)
            memcpy(frame + HEADER, data, size);
        struct iovec iov = {frame, HEADER + size};
        return send_all(c->fd, &iov, 1);
    }
    struct iovec iov[2] = {{&size32, HEADER}, {(void *)data, size}};
    return send_all(c->fd, iov, 2);
}

int mp_conn_send(mp_conn_t *c, const mp_obj_t *item)
{
    if (!c || !item)
        return MP_EINVAL;
    char storage[SMALL_SEND];
    mp__buf_t buf;
    mp__buf_init(&buf, storage, sizeof storage);
    int rc = mp__obj_pack_into(item, &buf);
    if (!rc)
        rc = mp_conn_send_bytes(c, buf.data, buf.size);
    mp__buf_release(&buf);
    return rc;
}

/* ---- receiving ------------------------------------------------------------ */

/* Reads more bytes into the buffer (compacting it first). 0, MP_EEOF, -errno. */
static int fill(mp_conn_t *c)
{
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    for (;;) {
        ssize_t n = read(c->fd, c->rbuf + c->rlen, READ_BUFFER - c->rlen);
        if (n > 0) {
            c->rlen += (size_t)n;
            return 0;
        }
        if (n == 0)
            return MP_EEOF;
        if (errno != EINTR)
            return -errno;
    }
}

static size_t buffered(const mp_conn_t *c)
{
    return c->rlen - c->rpos;
}

/* Reads exactly n bytes into dst, buffered bytes first, the rest directly. */
static int read_exact(mp_conn_t *c, char *dst, size_t n)
{
    size_t have = buffered(c) < n ? buffered(c) : n;
    memcpy(dst, c->rbuf + c->rpos, have);
    c->rpos += have;
    while (have < n) {
        ssize_t r = read(c->fd, dst + have, n - have);
        if (r > 0)
            have += (size_t)r;
        else if (r == 0)
            return MP_EEOF;
        else if (errno != EINTR)
            return -errno;
    }
    return 0;
}

/* Receives one message; *data_p borrows the read buffer when *owned_p is
   false (valid until the next recv), else is malloc'd. */
static int recv_message(mp_conn_t *c, char **data_p, size_t *size_p, bool *owned_p,
                        size_t maxlength)
{
    if (!c)
        return MP_EINVAL;
    if (c->fd < 0)
        return MP_ECLOSED;
    if (!c->readable || c->broken)
        return c->broken ? MP_EBADMSG : MP_EINVAL;
    if (!c->rbuf && !(c->rbuf = malloc(READ_BUFFER)))
        return MP_ENOMEM;
    int rc = 0;
    while (buffered(c) < HEADER && !rc)
        rc = fill(c);
    if (rc) {
        if (rc == MP_EEOF && buffered(c) > 0)
            c->broken = true; /* a torn header: the peer died mid-send */
        return rc;
    }
    uint32_t size;
    memcpy(&size, c->rbuf + c->rpos, HEADER);
    if (size > (maxlength ? maxlength : MP_CONN_MAX_MESSAGE)) {
        c->broken = true;
        return MP_E2BIG;
    }
    c->rpos += HEADER;
    if (size <= READ_BUFFER - HEADER) {
        /* fits the buffer: bring it in whole, hand out a view */
        if (c->rpos + size > READ_BUFFER) {
            memmove(c->rbuf, c->rbuf + c->rpos, buffered(c));
            c->rlen -= c->rpos;
            c->rpos = 0;
        }
        while (buffered(c) < size && !rc) {
            ssize_t n = read(c->fd, c->rbuf + c->rlen, READ_BUFFER - c->rlen);
            if (n > 0)
                c->rlen += (size_t)n;
            else if (n == 0)
                rc = MP_EEOF;
            else if (errno != EINTR)
                rc = -errno;
        }
        if (rc) {
            c->broken = true;
            return rc;
        }
        *data_p = c->rbuf + c->rpos;
        *size_p = size;
        *owned_p = false;
        c->rpos += size;
        return 0;
    }
    char *data = malloc(size);
    if (!data) {
        c->broken = true;
        return MP_ENOMEM;
    }
    rc = read_exact(c, data, size);
    if (rc) {
        free(data);
        c->broken = true;
        return rc;
    }
    *data_p = data;
    *size_p = size;
    *owned_p = true;
    return 0;
}

int mp_conn_recv_bytes(mp_conn_t *c, void **data_p, size_t *size_p, size_t maxlength)
{
    if (!data_p || !size_p)
        return MP_EINVAL;
    char *data;
    size_t size;
    bool owned;
    int rc = recv_message(c, &data, &size, &owned, maxlength);
    if (rc)
        return rc;
    if (!owned) {
        char *copy = malloc(size ? size : 1);
        if (!copy)
            return MP_ENOMEM;
        memcpy(copy, data, size);
        data = copy;
    }
    *data_p = data;
    *size_p = size;
    return 0;
}

int mp_conn_recv(mp_conn_t *c, mp_obj_t **item_p)
{
    if (!item_p)
        return MP_EINVAL;
    char *data;
    size_t size;
    bool owned;
    int rc = recv_message(c, &data, &size, &owned, 0);
    if (rc)
        return rc;
    rc = mp_obj_unpack(data, size, item_p);
    if (owned)
        free(data);
    return rc;
}

bool mp__conn_has_buffered(const mp_conn_t *c)
{
    return c && c->fd >= 0 && buffered(c) > 0;
}

int mp_conn_poll(mp_conn_t *c, int timeout_ms)
{
    if (!c)
        return MP_EINVAL;
    if (c->fd < 0)
        return MP_ECLOSED;
    if (!c->readable)
        return MP_EINVAL;
    if (buffered(c) > 0)
        return 1;
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(timeout_ms, &ts);
    for (;;) {
        int n = poll(&pfd, 1, mp__remaining_ms(deadline));
        if (n >= 0)
            return n > 0;
        if (errno != EINTR)
            return -errno;
    }
}

bool mp_conn_readable(const mp_conn_t *c)
{
    return c && c->readable;
}

bool mp_conn_writable(const mp_conn_t *c)
{
    return c && c->writable;
}

int mp_conn_fileno(const mp_conn_t *c)
{
    return c ? c->fd : -1;
}

int mp_conn_close(mp_conn_t *c)
{
    if (!c)
        return MP_EINVAL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rpos = c->rlen = 0;
    return 0;
}

void mp_conn_destroy(mp_conn_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    mp_conn_close(*c_p);
    free(*c_p);
    *c_p = NULL;
}
