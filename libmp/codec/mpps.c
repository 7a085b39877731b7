/*  mpps.c - MPP/1 messages over a byte stream (mpps.h). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/base.h"
#include "codec/mpps.h"
#include "mp/error.h"

#define CHUNK (64 * 1024)
/* the largest message: a maximal payload, its frame headers, slack */
#define MAX_MESSAGE MPPS_LIMIT(MPP_DEFAULT_MAX_MSG)

/* Room for more bytes at the end (what was taken or written moves out). */
static int reserve(mpps_buf_t *b, size_t more)
{
    if (b->off == b->len)
        b->off = b->len = 0;
    if (b->cap - b->len >= more)
        return 0;
    if (b->off) {
        memmove(b->buf, b->buf + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= more)
            return 0;
    }
    size_t cap = b->cap ? b->cap : CHUNK;
    while (cap - b->len < more)
        cap *= 2;
    uint8_t *p = realloc(b->buf, cap);
    if (!p)
        return MP_ENOMEM;
    b->buf = p;
    b->cap = cap;
    return 0;
}

int mpps_put(mpps_buf_t *out, const char *sig, uint8_t cmd, const void *header, size_t header_size,
             zmq_msg_t *payload, int npayload)
{
    size_t total = 1 + 4 + MPP_SIG_SIZE + 4 + 1 + 4 + header_size;
    for (int i = 0; i < npayload; i++)
        total += 4 + zmq_msg_size(&payload[i]);
    int rc = total > MAX_MESSAGE ? MP_E2BIG : reserve(out, 4 + total);
    if (!rc) {
        uint8_t *p = out->buf + out->len;
        mpps_put32(p, (uint32_t)total);
        p[4] = (uint8_t)(3 + npayload);
        p += 5;
        mpps_put32(p, MPP_SIG_SIZE);
        memcpy(p + 4, sig, MPP_SIG_SIZE);
        p += 4 + MPP_SIG_SIZE;
        mpps_put32(p, 1);
        p[4] = cmd;
        p += 5;
        mpps_put32(p, (uint32_t)header_size);
        if (header_size)
            memcpy(p + 4, header, header_size);
        p += 4 + header_size;
        for (int i = 0; i < npayload; i++) {
            size_t n = zmq_msg_size(&payload[i]);
            mpps_put32(p, (uint32_t)n);
            if (n)
                memcpy(p + 4, zmq_msg_data(&payload[i]), n);
            p += 4 + n;
        }
        out->len += 4 + total;
    }
    for (int i = 0; i < npayload; i++)
        zmq_msg_close(&payload[i]);
    return rc;
}

int mpps_flush(mpps_buf_t *out, int fd)
{
    while (out->off < out->len) {
        ssize_t w = send(fd, out->buf + out->off, out->len - out->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            out->off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 1;
        } else {
            return w < 0 ? -errno : -EPIPE;
        }
    }
    out->off = out->len = 0;
    if (out->cap > 16 * CHUNK) { /* a big message went: give its room back */
        free(out->buf);
        out->buf = NULL;
        out->cap = 0;
    }
    return 0;
}

int mpps_send(mpps_buf_t *out, int fd, int stall_ms, const char *sig, uint8_t cmd,
              const void *header, size_t header_size, zmq_msg_t *payload, int npayload)
{
    if (fd < 0) {
        for (int i = 0; i < npayload; i++)
            zmq_msg_close(&payload[i]);
        return -EPIPE;
    }
    int rc = mpps_put(out, sig, cmd, header, header_size, payload, npayload);
    uint64_t end = mp__now_ns() + (uint64_t)stall_ms * 1000000ull;
    while (!rc && (rc = mpps_flush(out, fd)) == 1) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        rc = mp__now_ns() < end ? 0 : -ETIMEDOUT;
        if (!rc && poll(&pf, 1, 100) < 0 && errno != EINTR)
            rc = -errno;
    }
    return rc;
}

int mpps_fill(mpps_buf_t *in, int fd)
{
    if (in->off == in->len && in->cap > 16 * CHUNK) /* a big message went: give its room back */
        mpps_free(in);
    size_t want = CHUNK, have = in->len - in->off;
    if (have >= 4) { /* room for the whole message under way */
        size_t need = 4 + (size_t)mpps_get32(in->buf + in->off);
        if (need > 4 + (in->limit ? in->limit : MAX_MESSAGE))
            return MP_EBADMSG;
        /* the whole message at once; a bounded reader (a peer from the
           network) grows its buffer 1 MiB at a time, as the bytes come */
        size_t step = in->limit ? (size_t)1 << 20 : SIZE_MAX;
        if (need > have && need - have > want)
            want = need - have < step ? need - have : step;
    }
    if (reserve(in, want))
        return MP_ENOMEM;
    int r = mpps_recv_some(fd, in->buf + in->len, in->cap - in->len);
    if (r > 0)
        in->len += (size_t)r;
    return r;
}

int mpps_recv_some(int fd, void *p, size_t n)
{
    for (;;) {
        ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
        if (r > 0)
            return r > 0x7fffffff ? 0x7fffffff : (int)r;
        if (r == 0)
            return MP_EEOF;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

int mpps_take(mpps_buf_t *in, mpp_msg_t *m, int at)
{
    size_t have = in->len - in->off;
    if (have < 4)
        return 0;
    const uint8_t *p = in->buf + in->off;
    size_t total = mpps_get32(p);
    if (total < 1 || total > (in->limit ? in->limit : MAX_MESSAGE))
        return MP_EBADMSG;
    if (have < 4 + total)
        return 0;
    const uint8_t *q = p + 5, *end = p + 4 + total;
    int nframes = p[4];
    /* check the frame lengths first: nothing is built from a bad message */
    const uint8_t *c = q;
    for (int i = 0; i < nframes; i++) {
        if (end - c < 4 || (size_t)(end - c - 4) < mpps_get32(c))
            return MP_EBADMSG;
        c += 4 + mpps_get32(c);
    }
    if (c != end || nframes < 1)
        return MP_EBADMSG;
    m->n = at;
    m->too_many = false;
    for (int i = 0; i < nframes; i++, q += 4 + mpps_get32(q)) {
        if (m->n > MPP_MAX_FRAMES) {
            m->too_many = true;
            continue;
        }
        size_t n = mpps_get32(q);
        if (zmq_msg_init_size(&m->f[m->n], n)) {
            for (int k = at; k < m->n; k++)
                zmq_msg_close(&m->f[k]);
            m->n = at;
            return MP_ENOMEM;
        }
        if (n)
            memcpy(zmq_msg_data(&m->f[m->n]), q + 4, n);
        m->n++;
    }
    in->off += 4 + total;
    return 1;
}

void mpps_free(mpps_buf_t *b)
{
    free(b->buf);
    *b = (mpps_buf_t){.limit = b->limit};
}
