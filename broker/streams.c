/*  streams.c - peers on plain byte streams (docs/PROTOCOL.md 9.2, 9.3):
    the embedded pool's worker and blocking applies on their socket pairs,
    and the connections a broker accepts on mpp+tcp:// and mpp+ipc://
    endpoints. They speak
    MPP/1 framed as codec/mpps.h says, straight to the broker thread: no
    ZeroMQ I/O thread stands between a peer and the broker.

    Each connection is a slot; its messages are routed as a ROUTER's are,
    with a routing id of 9 bytes, 0x00 | slot (u32) | generation (u32),
    and the generation makes an id name one connection, never its slot's
    next: a send to a closed one fails with EHOSTUNREACH, as
    ROUTER_MANDATORY's. libzmq makes 5-byte ids, but a ZeroMQ peer may set
    any id, a stream id too: the broker loop drops ROUTER messages that
    carry one (engine.c), so only a stream speaks for a stream peer.

    Bounded: BK_MAX_STREAMS connections, or half the descriptors the
    process may open (more are closed at once), max_per_source from one
    address; each message max_message, its buffer grown as its bytes come;
    each connection's unsent bytes BK_STREAM_OUT_MAX (a peer that does not
    read is closed); a connection that is no peer's (none yet, or its
    peer's gone) for BK_STREAM_HELLO_MS is closed. A malformed stream
    closes only itself. Out of descriptors, the listeners rest 100 ms.
    Calls nothing above peers.c's level: messages go up through the route
    function the loop passes, and it says which ids are peers'.
*/
#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>

#include "broker_impl.h"
#include "codec/plain.h"
#include "mp/error.h"

#define BK_MAX_STREAMS 4096
#define BK_STREAM_OUT_MAX ((size_t)256 << 20)
#define BK_STREAM_HELLO_MS 10000

bool bk_stream_is(const void *id, size_t idlen)
{
    return idlen == BK_STREAM_IDLEN && ((const uint8_t *)id)[0] == 0;
}

/* The open connection id names, or NULL. */
static bk_conn_t *conn_of(mp_broker_t *b, const void *id, size_t idlen)
{
    if (!bk_stream_is(id, idlen))
        return NULL;
    uint32_t slot = mpps_get32((const uint8_t *)id + 1), gen = mpps_get32((const uint8_t *)id + 5);
    bk_conn_t *c = slot < b->conncap ? &b->conns[slot] : NULL;
    return c && c->fd >= 0 && c->gen == gen ? c : NULL;
}

static void conn_id(mp_broker_t *b, const bk_conn_t *c, uint8_t id[BK_STREAM_IDLEN])
{
    id[0] = 0;
    mpps_put32(id + 1, (uint32_t)(c - b->conns));
    mpps_put32(id + 5, c->gen);
}

const char *bk_stream_source(mp_broker_t *b, const void *id, size_t idlen)
{
    bk_conn_t *c = conn_of(b, id, idlen);
    return c ? c->source : NULL;
}

void bk_stream_name(mp_broker_t *b, const void *id, size_t idlen, char *out, size_t size)
{
    bk_conn_t *c = conn_of(b, id, idlen);
    if (c && c->pair)
        snprintf(out, size, "%s", c->pair);
    else /* its slot and generation */
        snprintf(out, size, "s%u.%u", (unsigned)mpps_get32((const uint8_t *)id + 1),
                 (unsigned)mpps_get32((const uint8_t *)id + 5) & 0xffff);
}

/* Closes c; why (NULL: the broker is stopping) is what the loop tells of
   it (bk_streams_reap). A record that cannot be kept (no memory) leaves
   its peer to lapse by heartbeats. */
static void conn_close(mp_broker_t *b, bk_conn_t *c, const char *why)
{
    if (c->fd < 0)
        return;
    if (why && b->nended == b->endedcap) {
        size_t cap = b->endedcap ? b->endedcap * 2 : 16;
        bk_ended_t *grown = realloc(b->ended, cap * sizeof *grown);
        if (grown) {
            b->ended = grown;
            b->endedcap = cap;
        }
    }
    if (why && b->nended < b->endedcap) {
        conn_id(b, c, b->ended[b->nended].id);
        b->ended[b->nended++].why = why;
    }
    close(c->fd);
    c->fd = -1;
    c->gen++; /* its id names nobody from now on */
    mpps_free(&c->in);
    mpps_free(&c->out);
    b->nconns--;
}

/* The most connections: BK_MAX_STREAMS, or half the descriptors the
   process may open (the ROUTER, the journal and the HTTP port need some). */
static size_t max_streams(void)
{
    struct rlimit rl;
    size_t half = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                      ? (size_t)rl.rlim_cur / 2
                      : BK_MAX_STREAMS;
    return half < BK_MAX_STREAMS ? half : BK_MAX_STREAMS;
}

int bk_stream_add(mp_broker_t *b, int fd, const char *pair, const char *source)
{
    if (!pair) { /* the bounds: all, and from one source */
        size_t same = 0;
        for (size_t i = 0; i < b->conncap; i++)
            same += b->conns[i].fd >= 0 && !strcmp(b->conns[i].source, source);
        if (b->nconns >= max_streams() || same >= b->max_per_source)
            return MP_EBUSY;
    }
    size_t slot = 0;
    while (slot < b->conncap && b->conns[slot].fd >= 0)
        slot++;
    if (slot == b->conncap) {
        size_t cap = b->conncap ? b->conncap * 2 : 8;
        bk_conn_t *grown = realloc(b->conns, cap * sizeof *grown);
        if (!grown)
            return MP_ENOMEM;
        for (size_t i = b->conncap; i < cap; i++)
            grown[i] = (bk_conn_t){.fd = -1};
        b->conns = grown;
        b->conncap = cap;
    }
    bk_conn_t *c = &b->conns[slot];
    c->fd = fd;
    c->pair = pair;
    c->peerless_ns = mp__now_ns();
    snprintf(c->source, sizeof c->source, "%s", source);
    /* the pair's bound is the framing's own, as before it was a slot */
    c->in = (mpps_buf_t){.limit = pair ? 0 : MPPS_LIMIT(b->max_message)};
    c->out = (mpps_buf_t){0};
    b->nconns++;
    return 0;
}

int bk_stream_listen(mp_broker_t *b, const char *endpoint, char *bound, size_t boundlen)
{
    int *grown = realloc(b->listeners, (b->nlisteners + 1) * sizeof *grown), fd;
    if (!grown)
        return MP_ENOMEM;
    b->listeners = grown;
    int rc = mp__plain_listen("mpp", endpoint, &fd, bound, boundlen);
    if (rc)
        return rc;
    b->listeners[b->nlisteners++] = fd;
    return 0;
}

int bk_stream_send(mp_broker_t *b, const void *id, size_t idlen, const char *sig, uint8_t cmd,
                   const void *hdr, size_t hsize, zmq_msg_t *payload, int npayload)
{
    bk_conn_t *c = conn_of(b, id, idlen);
    if (!c) {
        for (int i = 0; i < npayload; i++)
            zmq_msg_close(&payload[i]);
        return -EHOSTUNREACH;
    }
    int rc = mpps_put(&c->out, sig, cmd, hdr, hsize, payload, npayload);
    if (!rc && mpps_flush(&c->out, c->fd) < 0)
        rc = -EHOSTUNREACH; /* the peer is gone: not delivered */
    else if (!rc && mpps_pending(&c->out) > BK_STREAM_OUT_MAX && !c->pair)
        rc = -EHOSTUNREACH; /* it does not read: as gone (the pair is bounded by credit) */
    if (rc == -EHOSTUNREACH)
        conn_close(b, c, "its stream broke (a send failed, or it does not read)");
    return rc;
}

zmq_pollitem_t *bk_streams_items(mp_broker_t *b, int fixed, int *n_p)
{
    size_t want = (size_t)fixed + b->nlisteners + b->nconns;
    if (want > b->pcap) {
        zmq_pollitem_t *items = realloc(b->pitems, want * sizeof *items);
        int *slots = items ? realloc(b->pslots, want * sizeof *slots) : NULL;
        if (items)
            b->pitems = items;
        if (!slots)
            return NULL;
        b->pslots = slots;
        b->pcap = want;
    }
    int n = fixed;
    bool resting = mp__now_ns() < b->accept_rest_until; /* out of descriptors */
    for (size_t i = 0; i < b->nlisteners; i++) {
        b->pslots[n] = -1;
        b->pitems[n++] = (zmq_pollitem_t){NULL, resting ? -1 : b->listeners[i], ZMQ_POLLIN, 0};
    }
    for (size_t i = 0; i < b->conncap; i++) {
        bk_conn_t *c = &b->conns[i];
        if (c->fd < 0)
            continue;
        short ev = ZMQ_POLLIN | (mpps_pending(&c->out) ? ZMQ_POLLOUT : 0);
        b->pslots[n] = (int)i;
        b->pitems[n++] = (zmq_pollitem_t){NULL, c->fd, ev, 0};
    }
    *n_p = n;
    return b->pitems;
}

static void on_accept(mp_broker_t *b, int listen_fd)
{
    for (int k = 0; k < 64; k++) {
        char source[64];
        int fd = mp__plain_accept(listen_fd, source, sizeof source);
        if (fd == -EAGAIN || fd == -EWOULDBLOCK)
            return;
        if (fd == -EINTR || fd == -ECONNABORTED) /* that one only */
            continue;
        if (fd < 0) { /* out of descriptors or memory: rest, or the loop spins */
            b->accept_rest_until = mp__now_ns() + 100000000ull;
            if (mp__ratelimit(&b->crowded_rl, WHO, "stream connections refused"))
                mp__log(MP_LOG_WARN, WHO, "cannot accept a stream connection: %s",
                        zmq_strerror(-fd));
            return;
        }
        if (bk_stream_add(b, fd, NULL, source)) {
            b->refused++;
            if (mp__ratelimit(&b->crowded_rl, WHO, "stream connections refused"))
                mp__log(MP_LOG_WARN, WHO,
                        "refused a stream connection from %s: %zu open (at most %zu, %zu a source)",
                        source, b->nconns, max_streams(), b->max_per_source);
            close(fd);
        }
    }
}

/* What connection c sent, routed; what waits to go to it, written. */
static void on_conn(mp_broker_t *b, bk_conn_t *c, short revents, bk_route_fn route)
{
    if ((revents & ZMQ_POLLOUT) && mpps_flush(&c->out, c->fd) < 0) {
        conn_close(b, c, "its stream broke");
        return;
    }
    if (!(revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
        return;
    uint8_t id[BK_STREAM_IDLEN];
    conn_id(b, c, id);
    uint32_t gen = c->gen;
    int rc = mpps_fill(&c->in, c->fd), got;
    do {
        mpp_msg_t m;
        zmq_msg_init_size(&m.f[0], sizeof id);
        memcpy(zmq_msg_data(&m.f[0]), id, sizeof id);
        m.n = 1;
        if ((got = mpps_take(&c->in, &m, 1)) == 1)
            route(b, &m); /* may close c (a send to it failed) */
        mpp_close(&m);
    } while (got == 1 && c->fd >= 0 && c->gen == gen);
    if (c->fd < 0 || c->gen != gen)
        return;
    if (got < 0) {
        b->malformed++;
        if (mp__ratelimit(&b->malformed_rl, WHO, "malformed messages"))
            mp__log(MP_LOG_WARN, WHO, "%s%s stream from %s is not MPP/1 framing: closed",
                    c->pair ? "the embedded pool's " : "a", c->pair ? c->pair : "", c->source);
    }
    if (got < 0 || rc < 0)
        conn_close(b, c,
                   got < 0         ? "its stream is not MPP/1 framing"
                   : rc == MP_EEOF ? "its stream ended"
                                   : "its stream broke");
}

void bk_streams_ready(mp_broker_t *b, const zmq_pollitem_t *items, int from, int n,
                      bk_route_fn route)
{
    for (int i = from; i < n; i++) {
        if (!items[i].revents)
            continue;
        int slot = b->pslots[i];
        if (slot < 0) {
            on_accept(b, items[i].fd);
            continue;
        }
        bk_conn_t *c = (size_t)slot < b->conncap ? &b->conns[slot] : NULL;
        if (c && c->fd == items[i].fd) /* still the one polled */
            on_conn(b, c, items[i].revents, route);
    }
}

void bk_streams_reap(mp_broker_t *b, bk_gone_fn gone)
{
    /* gone may close more (its sends): they are told of in this pass too */
    for (size_t i = 0; i < b->nended; i++) {
        bk_ended_t e = b->ended[i];
        gone(b, e.id, sizeof e.id, e.why);
    }
    b->nended = 0;
}

long bk_streams_paused_ms(mp_broker_t *b, uint64_t now)
{
    return now < b->accept_rest_until ? (long)((b->accept_rest_until - now) / 1000000) + 1 : -1;
}

void bk_streams_sweep(mp_broker_t *b, uint64_t now, bk_has_peer_fn has_peer)
{
    for (size_t i = 0; i < b->conncap; i++) {
        bk_conn_t *c = &b->conns[i];
        if (c->fd < 0 || c->pair)
            continue;
        uint8_t id[BK_STREAM_IDLEN];
        conn_id(b, c, id);
        if (has_peer(b, id, sizeof id)) {
            c->peerless_ns = 0;
        } else if (!c->peerless_ns) {
            c->peerless_ns = now;
        } else if (now - c->peerless_ns > BK_STREAM_HELLO_MS * 1000000ull) {
            mp__log(MP_LOG_DEBUG, WHO, "a stream connection from %s is no peer's: closed",
                    c->source);
            conn_close(b, c, "no peer's");
        }
    }
}

void bk_streams_free(mp_broker_t *b)
{
    for (size_t i = 0; i < b->conncap; i++)
        conn_close(b, &b->conns[i], NULL);
    free(b->conns);
    b->conns = NULL;
    b->conncap = 0;
    free(b->ended);
    b->ended = NULL;
    b->nended = b->endedcap = 0;
    for (size_t i = 0; i < b->nlisteners; i++)
        close(b->listeners[i]);
    free(b->listeners);
    b->listeners = NULL;
    b->nlisteners = 0;
    free(b->pitems);
    free(b->pslots);
    b->pitems = NULL;
    b->pslots = NULL;
    b->pcap = 0;
}
