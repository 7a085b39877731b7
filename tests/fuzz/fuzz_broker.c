/*  fuzz_broker.c - the broker's MPP/1 engine with state: each input is a
    script of messages from four peers (clients or workers), handled one
    after the other by one broker (mp__broker_new_idle: the engine without
    its thread), so that a SUBMIT, the TASK it causes, a PARTIAL, a RETURN,
    a LOST and a RESULT for it can meet in one input. Between inputs the
    broker drops every peer, chunk and queue (mp__broker_reset).

    A message of the script:
        op      u8: bits 0-1 the peer, bit 2 a worker (else a client),
                    bits 3-4 payload frames (0-2; 3: 2 and too many), bit 5
                    a wrong signature,
                    bit 6 a heartbeat after it,
                    bit 7 raw bytes on a stream peer instead (below)
        cmd     u8
        header  u16 big-endian length, then the bytes
        payload per frame: u16 big-endian length, then the bytes
    With bit 7, cmd and the next byte are a u16 big-endian length, then
    come the bytes, written as they are to stream peer (op & 1), one of two connections the broker
    serves as it does those of mpp+tcp:// (streams.c, PROTOCOL.md 9.3):
    framing, half messages and garbage meet the engine the same way.
    An input that ends early ends its last message where it ends.
    Seeds: tests/fuzz/make_seeds.py (valid conversations). Any input must be
    handled without a crash, a leak or an out-of-bounds access (ASan,
    UBSan; LeakSanitizer at exit). */
#include <dirent.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_impl.h"
#include "broker/broker_shm.h"
#include "codec/mpp.h"
#include "mp.h"
#include "script.h"

#define PEERS 4

static mp_broker_t *broker;
static void *ctx, *peer[PEERS];      /* DEALERs with the ids "peer0".., connected */
static int stream_end[2] = {-1, -1}; /* our ends of the two stream peers */

static void die(const char *what)
{
    fprintf(stderr, "fuzz_broker: %s\n", what);
    abort();
}

/* The broker, and four peers it can send to (a send to an unknown id
   fails, and the broker would take every worker for lost at once). Each
   peer says something first, and the broker's router reads it (never
   handled): then the router knows the peer's id. */
static void make_broker(void)
{
    mp_log_set_level(MP_LOG_ERROR); /* a warning per malformed message is noise here */
    ctx = zmq_ctx_new();
    const char *binds[] = {"inproc://fuzz-broker"};
    mp_broker_options_t o = {
        .binds = binds, .nbinds = 1, .heartbeat_ms = 60000, .zmq_context = ctx};
    if (mp__broker_new_idle(&o, &broker))
        die("cannot make the broker");
    for (int i = 0; i < PEERS; i++) {
        char id[8];
        snprintf(id, sizeof id, "peer%d", i);
        peer[i] = zmq_socket(ctx, ZMQ_DEALER);
        int linger = 0;
        zmq_setsockopt(peer[i], ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(peer[i], ZMQ_ROUTING_ID, id, strlen(id));
        if (zmq_connect(peer[i], binds[0]) || zmq_send(peer[i], "hi", 2, 0) != 2)
            die("cannot connect a peer");
    }
    void *router = mp__broker_socket(broker);
    zmq_pollitem_t item = {router, 0, ZMQ_POLLIN, 0};
    for (int got = 0; got < PEERS;) {
        mpp_msg_t m;
        if (zmq_poll(&item, 1, 5000) <= 0 || mpp_recv(router, &m, ZMQ_DONTWAIT))
            die("the peers did not reach the broker");
        mpp_close(&m);
        got++;
    }
}

/* Two fresh stream peers: the broker's ends added as accepted ones. */
static void make_streams(void)
{
    bk_streams_free(broker);
    for (int i = 0; i < 2; i++) {
        int sv[2];
        if (stream_end[i] >= 0)
            close(stream_end[i]);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) ||
            bk_stream_add(broker, sv[0], false, "fuzz"))
            die("cannot make a stream peer");
        stream_end[i] = sv[1];
    }
}

/* The broker's stream peers, as its loop serves them: what they hold is
   read and routed, what waits for them written. */
static void pump_streams(void)
{
    int n;
    zmq_pollitem_t *items = bk_streams_items(broker, 0, &n);
    if (!items || n > 8)
        return;
    struct pollfd pf[8];
    for (int i = 0; i < n; i++)
        pf[i] = (struct pollfd){items[i].fd,
                                (short)(POLLIN | (items[i].events & ZMQ_POLLOUT ? POLLOUT : 0)), 0};
    if (poll(pf, (nfds_t)n, 0) <= 0)
        return;
    for (int i = 0; i < n; i++)
        items[i].revents = (short)((pf[i].revents & (POLLIN | POLLHUP) ? ZMQ_POLLIN : 0) |
                                   (pf[i].revents & POLLOUT ? ZMQ_POLLOUT : 0) |
                                   (pf[i].revents & POLLERR ? ZMQ_POLLERR : 0));
    bk_streams_ready(broker, items, 0, n, mp__broker_route);
    bk_streams_reap(broker, mp__broker_stream_gone);
}

/* What the broker sent the peers during an input: read and dropped. */
static void drain_peers(void)
{
    char b[65536];
    for (int i = 0; i < 2; i++)
        while (read(stream_end[i], b, sizeof b) > 0) {
        }
    zmq_msg_t f;
    zmq_msg_init(&f);
    for (int i = 0; i < PEERS; i++)
        while (zmq_msg_recv(&f, peer[i], ZMQ_DONTWAIT) >= 0) {
        }
    zmq_msg_close(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!broker) {
        make_broker();
        make_streams();
    }
    const uint8_t *p = data, *end = data + size;
    for (int k = 0; p + 2 <= end && k < 256; k++) {
        uint8_t op = *p++, cmd = *p++;
        if (op & 0x80) { /* raw bytes on a stream peer (cmd: the length's high byte) */
            size_t n = (size_t)cmd << 8 | (p < end ? *p++ : 0);
            n = n < (size_t)(end - p) ? n : (size_t)(end - p);
            if (n && send(stream_end[op & 1], p, n, MSG_NOSIGNAL) < 0) {
            }
            p += n;
            pump_streams();
            if (op & 0x40)
                mp__broker_tick(broker);
            drain_peers();
            continue;
        }
        char id[8];
        snprintf(id, sizeof id, "peer%u", op & (PEERS - 1));
        mpp_msg_t m = {.n = 0};
        zmq_msg_init_size(&m.f[m.n], strlen(id));
        memcpy(zmq_msg_data(&m.f[m.n++]), id, strlen(id));
        const char *sig = op & 0x20 ? "MPX01" : op & 4 ? MPP_SIG_WORKER : MPP_SIG_CLIENT;
        zmq_msg_init_size(&m.f[m.n], MPP_SIG_SIZE);
        memcpy(zmq_msg_data(&m.f[m.n++]), sig, MPP_SIG_SIZE);
        zmq_msg_init_size(&m.f[m.n], 1);
        *(uint8_t *)zmq_msg_data(&m.f[m.n++]) = cmd;
        take_frame(&p, end, take_len(&p, end), &m.f[m.n++]);
        int extra = (op >> 3) & 3; /* 3: two, and more than fit (as mpp_recv marks it) */
        for (int i = 0; i < (extra == 3 ? 2 : extra); i++)
            take_frame(&p, end, take_len(&p, end), &m.f[m.n++]);
        m.too_many = extra == 3;
        mp__broker_route(broker, &m);
        mpp_close(&m);
        if (op & 0x40)
            mp__broker_tick(broker);
    }
    mp__broker_reset(broker);
    drain_peers();
    make_streams(); /* a connection closed by bad framing: new ones */
    return 0;
}

#include "replay.h"
