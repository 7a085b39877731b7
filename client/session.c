/*  session.c - the client's end of an MPP/1 session (docs/PROTOCOL.md 4.1).

    Encodes what a client sends (HELLO, SUBMIT, STATUS, HEARTBEAT,
    DISCONNECT) and checks the envelope of what the broker sends, on a link
    the caller owns: a DEALER socket, or a byte stream (codec/mpps.h). A
    pool has two sessions: the I/O thread's (io.c) and, from the first
    blocking apply on, the calling thread's (sync.c; on an embedded pool a
    socket pair to the broker thread); both encode here, so the two send
    the same bytes.

    Invariants: every DEALER send is ZMQ_DONTWAIT (a full pipe is an error
    the caller handles, never a block); a stream send waits for room at
    most the link's stall_ms; headers are built in a stack buffer (grown
    only for names past MPP_MAX_NAME, which callers reject); no state
    beyond the link's, no locks: the link's owner serialises its use.
*/
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "codec/wire.h"
#include "mp/error.h"
#include "session.h"

int mp__link_send(mp__link_t *l, uint8_t cmd, const void *header, size_t header_size,
                  zmq_msg_t *payload, int npayload)
{
    if (l->sock)
        return mpp_send(l->sock, NULL, 0, MPP_SIG_CLIENT, cmd, header, header_size, payload,
                        npayload, ZMQ_DONTWAIT);
    return mpps_send(&l->out, l->fd, l->stall_ms, MPP_SIG_CLIENT, cmd, header, header_size, payload,
                     npayload);
}

int mp__link_recv(mp__link_t *l, mpp_msg_t *m)
{
    if (l->sock)
        return mpp_recv(l->sock, m, ZMQ_DONTWAIT);
    if (l->fd < 0)
        return MP_EEOF;
    int got = mpps_take(&l->in, m, 0);
    if (got == 0) {
        int rc = mpps_fill(&l->in, l->fd);
        if (rc <= 0)
            return rc ? rc : -EAGAIN;
        got = mpps_take(&l->in, m, 0);
    }
    return got == 1 ? 0 : got == 0 ? -EAGAIN : got;
}

bool mp__link_buffered(const mp__link_t *l)
{
    return !l->sock && mpps_has_message(&l->in);
}

void mp__link_close(mp__link_t *l)
{
    if (l->sock)
        mpp_socket_close(l->sock);
    if (l->fd >= 0)
        close(l->fd);
    l->sock = NULL;
    l->fd = -1;
    mpps_free(&l->in);
    mpps_free(&l->out);
}

int mp__session_open(void *ctx, const char *endpoint, const mp__curve_t *curve, void **sock_p)
{
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    *sock_p = sock;
    int ivl = 100, ivl_max = 5000;
    if (!sock || mpp_socket_setup(sock, MPP_DEFAULT_MAX_MSG) ||
        zmq_setsockopt(sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl) ||
        zmq_setsockopt(sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max) ||
        (curve && curve->on && mp__curve_client(sock, curve)) || zmq_connect(sock, endpoint) < 0)
        return -errno;
    return 0;
}

int mp__session_hello(mp__link_t *l, bool blocking, int heartbeat_ms, int window)
{
    char hs[128], name[96];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    snprintf(name, sizeof name, "pool pid %d%s", (int)getpid(),
             blocking ? " (blocking applies)" : "");
    mp__w_array(&h, 3);
    mp__w_str(&h, name);
    mp__w_uint(&h, (uint64_t)heartbeat_ms);
    mp__w_uint(&h, (uint64_t)window);
    return mp__link_send(l, MPP_C_HELLO, h.data, h.size, NULL, 0);
}

int mp__session_command(mp__link_t *l, uint8_t cmd)
{
    char hs[4];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 0);
    return mp__link_send(l, cmd, h.data, h.size, NULL, 0);
}

int mp__session_drain(mp__link_t *l, uint64_t worker_id)
{
    char hs[16];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 1);
    mp__w_uint(&h, worker_id);
    return mp__link_send(l, MPP_C_DRAIN, h.data, h.size, NULL, 0);
}

int mp__session_submit(mp__link_t *l, uint64_t id, const char *name, uint8_t mode, size_t count,
                       const mp__pshm_in_t *in, uint32_t time_limit_ms, zmq_msg_t *items,
                       zmq_msg_t *init)
{
    char hs[MPP_MAX_NAME + 96];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, time_limit_ms ? 6 : in ? 5 : 4);
    mp__w_uint(&h, id);
    mp__w_str(&h, name);
    mp__w_uint(&h, mode);
    mp__w_uint(&h, count);
    if (in) {
        mp__w_array(&h, 2);
        mp__w_uint(&h, in->pos);
        mp__w_uint(&h, in->len);
    } else if (time_limit_ms) {
        mp__w_nil(&h);
    }
    if (time_limit_ms)
        mp__w_uint(&h, time_limit_ms);
    zmq_msg_t frames[2];
    zmq_msg_init(&frames[0]);
    zmq_msg_move(&frames[0], items);
    int n = 1;
    if (init) {
        zmq_msg_init(&frames[1]);
        zmq_msg_copy(&frames[1], init);
        n = 2;
    }
    int rc = mp__link_send(l, MPP_C_SUBMIT, h.data, h.size, frames, n);
    mp__buf_release(&h);
    return rc;
}

int mp__session_submit_durable(mp__link_t *l, uint64_t id, const char *name, uint8_t mode,
                               size_t count, uint32_t time_limit_ms, const char *job, uint64_t seq,
                               uint64_t total, zmq_msg_t *items)
{
    char hs[MPP_MAX_NAME + 192];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 7);
    mp__w_uint(&h, id);
    mp__w_str(&h, name);
    mp__w_uint(&h, mode);
    mp__w_uint(&h, count);
    mp__w_nil(&h);
    mp__w_uint(&h, time_limit_ms);
    mp__w_array(&h, 3);
    mp__w_str(&h, job);
    mp__w_uint(&h, seq);
    mp__w_uint(&h, total);
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    zmq_msg_copy(&frame, items); /* the caller keeps its own: sent again until STORED */
    int rc = mp__link_send(l, MPP_C_SUBMIT, h.data, h.size, &frame, 1);
    mp__buf_release(&h);
    return rc;
}

int mp__session_fetch(mp__link_t *l, const char *job, uint64_t from, uint64_t wait_ms)
{
    char hs[128];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 3);
    mp__w_str(&h, job);
    mp__w_uint(&h, from);
    mp__w_uint(&h, wait_ms);
    return mp__link_send(l, MPP_C_FETCH, h.data, h.size, NULL, 0);
}

int mp__session_forget(mp__link_t *l, const char *job)
{
    char hs[128];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 1);
    mp__w_str(&h, job);
    return mp__link_send(l, MPP_C_FORGET, h.data, h.size, NULL, 0);
}

int mp__session_cancel(mp__link_t *l, uint64_t id)
{
    char hs[16];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 1);
    mp__w_uint(&h, id);
    return mp__link_send(l, MPP_C_CANCEL, h.data, h.size, NULL, 0);
}

bool mp__session_valid(mpp_msg_t *m)
{
    return !(m->too_many || m->n < 3 || mpp_size(m, 0) != MPP_SIG_SIZE ||
             memcmp(mpp_data(m, 0), MPP_SIG_CLIENT, MPP_SIG_SIZE) || mpp_size(m, 1) != 1);
}
