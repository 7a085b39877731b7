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
                    bit 6 a heartbeat after it
        cmd     u8
        header  u16 big-endian length, then the bytes
        payload per frame: u16 big-endian length, then the bytes
    An input that ends early ends its last message where it ends.
    Seeds: tests/fuzz/make_seeds.py (valid conversations). Any input must be
    handled without a crash, a leak or an out-of-bounds access (ASan,
    UBSan; LeakSanitizer at exit). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_shm.h"
#include "codec/mpp.h"
#include "mp.h"
#include "script.h"

#define PEERS 4

static mp_broker_t *broker;
static void *ctx, *peer[PEERS]; /* DEALERs with the ids "peer0".., connected */

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

/* What the broker sent the peers during an input: read and dropped. */
static void drain_peers(void)
{
    zmq_msg_t f;
    zmq_msg_init(&f);
    for (int i = 0; i < PEERS; i++)
        while (zmq_msg_recv(&f, peer[i], ZMQ_DONTWAIT) >= 0) {
        }
    zmq_msg_close(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!broker)
        make_broker();
    const uint8_t *p = data, *end = data + size;
    for (int k = 0; p + 2 <= end && k < 256; k++) {
        uint8_t op = *p++, cmd = *p++;
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
    return 0;
}

#include "replay.h"
