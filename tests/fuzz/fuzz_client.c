/*  fuzz_client.c - the client library's handling of what a broker sends
    (client/recv.c and what it drives: chunks, pieces, jobs, maps, applies,
    resends), with state: one real pool, connected to this harness's ROUTER
    as its broker, has a map of 6 items (two chunks) and an apply in flight
    when each input is sent to it, message by message, through the socket
    (its I/O thread handles them: only that thread may touch its socket).
    Then our WELCOME (limits back as every input starts) and a marker (a
    HEARTBEAT with a new executor count): once the pool shows it, it has
    handled the whole script. Between inputs everything still in flight is failed
    (mp__pool_fail_all) and the calls are destroyed.

    A message of the script:
        op      u8: bits 0-1 payload frames (0-3), bit 2 a wrong signature,
                    bit 3 the header starts with a live chunk id (the
                    header's first byte, then chunk (op >> 4) & 3 of those
                    in flight, then the rest), bit 7 frames past the
                    protocol's most
        cmd     u8
        header  u16 big-endian length, then the bytes
        payload per frame: u16 big-endian length, then the bytes
    Seeds: tests/fuzz/make_seeds.py. Any input must be handled without a
    crash, a leak, a hang or an out-of-bounds access (ASan, UBSan). */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/callbacks.h"
#include "client/pool_impl.h"
#include "client/recv.h"
#include "codec/wire.h"
#include "mp.h"
#include "script.h"

static mp_pool_t *pool;
static void *ctx, *router;
static char endpoint[128];
static uint8_t peer[256]; /* the pool's routing id */
static size_t peerlen;
static uint64_t chunks[4]; /* ids of the chunks in flight */
static int nchunks, welcomed;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_client: %s\n", what);
    abort();
}

static void welcome(void)
{
    static const uint8_t w[] = {0x96, 0xa1, 'f',  0xcd, 0xea, 0x60, 0x02, 0xce, 0x04, 0x00,
                                0x00, 0x00, 0xce, 0x00, 0x10, 0x00, 0x00, 0xcd, 0x10, 0x00};
    uint8_t cmd = MPP_B_WELCOME;
    zmq_send(router, peer, peerlen, ZMQ_SNDMORE);
    zmq_send(router, MPP_SIG_CLIENT, MPP_SIG_SIZE, ZMQ_SNDMORE);
    zmq_send(router, &cmd, 1, ZMQ_SNDMORE);
    zmq_send(router, w, sizeof w, 0);
}

/* Reads what the pool sent for up to timeout_ms, or until it has sent
   `want` SUBMITs (want 0: until a HELLO): HELLOs are welcomed, SUBMITs'
   chunk ids kept. */
static void pump(int timeout_ms, int want)
{
    zmq_pollitem_t pi = {router, 0, ZMQ_POLLIN, 0};
    int hellos = welcomed;
    while (want > 0 ? nchunks < want : welcomed == hellos) {
        if (zmq_poll(&pi, 1, timeout_ms) != 1)
            return;
        zmq_msg_t f[8];
        int n = 0, more = 1;
        while (more && n < 8) {
            zmq_msg_init(&f[n]);
            zmq_msg_recv(&f[n], router, 0);
            more = zmq_msg_more(&f[n]);
            n++;
        }
        if (n >= 4 && zmq_msg_size(&f[2]) == 1) {
            peerlen = zmq_msg_size(&f[0]) < sizeof peer ? zmq_msg_size(&f[0]) : 0;
            memcpy(peer, zmq_msg_data(&f[0]), peerlen);
            uint8_t cmd = *(uint8_t *)zmq_msg_data(&f[2]);
            mp__rd_t r;
            size_t k;
            uint64_t id;
            mp__rd_init(&r, zmq_msg_data(&f[3]), zmq_msg_size(&f[3]));
            if (cmd == MPP_C_HELLO) {
                welcome();
                welcomed++;
            } else if (cmd == MPP_C_SUBMIT && !mp__rd_array(&r, &k) && !mp__rd_uint(&r, &id) &&
                       nchunks < 4) {
                chunks[nchunks++] = id;
            }
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
}

static volatile bool opened;

static void *open_pool(void *arg)
{
    mp_pool_options_t o = {.broker = endpoint, .heartbeat_ms = 60000};
    if (mp_pool_new(&o, &pool))
        die("cannot open the pool");
    opened = true;
    (void)arg;
    return NULL;
}

static void remove_endpoint(void)
{
    unlink(endpoint + strlen("ipc://"));
}

/* The pool (again, after an input made it stop: a DISCONNECT "refused"). */
static void make_pool(void)
{
    if (!router) {
        mp_log_set_level(MP_LOG_ERROR);
        snprintf(endpoint, sizeof endpoint, "ipc:///tmp/mp-fuzz-client-%d", (int)getpid());
        ctx = zmq_ctx_new();
        router = zmq_socket(ctx, ZMQ_ROUTER);
        if (zmq_bind(router, endpoint))
            die("cannot bind");
        atexit(remove_endpoint);
    }
    pthread_t t;
    opened = false;
    pthread_create(&t, NULL, open_pool, NULL);
    nchunks = 0;
    while (!opened) /* its HELLO welcomed (and any late one of the pool before) */
        pump(20, 0);
    pthread_join(t, NULL);
}

/* A marker after the script: a HEARTBEAT with a number of executors the
   pool has not seen; once its I/O thread has set it, it has handled
   everything sent before (the pipe is in order). */
static void sync_pool(void)
{
    static int serial;
    int mark = 1000 + (++serial % 100000);
    uint8_t hb = MPP_B_HEARTBEAT, body[6] = {0x91, 0xce};
    for (int i = 0; i < 4; i++)
        body[2 + i] = (uint8_t)((unsigned)mark >> (24 - 8 * i));
    zmq_send(router, peer, peerlen, ZMQ_SNDMORE);
    zmq_send(router, MPP_SIG_CLIENT, MPP_SIG_SIZE, ZMQ_SNDMORE);
    zmq_send(router, &hb, 1, ZMQ_SNDMORE);
    zmq_send(router, body, sizeof body, 0);
    struct timespec until; /* the pool's condition variable waits on CLOCK_MONOTONIC */
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += 500000000; /* a marker lost (a reconnect): half a second */
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&pool->mutex);
    while (pool->processes != mark && !pool->stopping &&
           pthread_cond_timedwait(&pool->cond, &pool->mutex, &until) == 0) {
    }
    pthread_mutex_unlock(&pool->mutex);
}

/* A frame of the next n bytes (fewer when the input ends); with a chunk
   id (sub >= 0) after its first byte. */
static void take_sub_frame(const uint8_t **p, const uint8_t *end, size_t n, int sub, zmq_msg_t *f)
{
    if (n > (size_t)(end - *p))
        n = (size_t)(end - *p);
    uint8_t buf[9 + 65536];
    mp__buf_t b;
    mp__buf_init(&b, (char *)buf, sizeof buf);
    if (sub >= 0 && n > 0) {
        mp__w_raw(&b, *p, 1);
        mp__w_uint(&b, chunks[sub]);
        mp__w_raw(&b, *p + 1, n - 1);
    } else {
        mp__w_raw(&b, *p, n);
    }
    *p += n;
    zmq_msg_init_size(f, b.size);
    memcpy(zmq_msg_data(f), b.data, b.size);
    mp__buf_release(&b);
}

static void run_ready(ready_t *ready)
{
    if (ready->n)
        mp__pool_run_callbacks(pool, ready->v, ready->n);
    ready->n = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!pool)
        make_pool();
    /* in flight: a map of 6 in two chunks, and an apply */
    mp_items_t *in = mp_items_new();
    for (int i = 0; i < 6; i++)
        mp_items_add_int(in, i);
    mp_call_options_t co = {.chunksize = 3};
    mp_async_t *map = NULL, *apply = NULL;
    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_int(5));
    nchunks = 0;
    if (mp_pool_map_async(pool, "sq", in, &co, &map) ||
        mp_pool_apply_async(pool, "sq", args, NULL, &apply))
        die("cannot call");
    mp_obj_destroy(&args);
    pump(2000, 3);

    const uint8_t *p = data, *end = data + size;
    for (int k = 0; p + 2 <= end && k < 64; k++) {
        uint8_t op = *p++, cmd = *p++;
        zmq_msg_t f[9];
        int n = 0;
        const char *sig = op & 4 ? "MPX01" : MPP_SIG_CLIENT;
        zmq_msg_init_size(&f[n], MPP_SIG_SIZE);
        memcpy(zmq_msg_data(&f[n++]), sig, MPP_SIG_SIZE);
        zmq_msg_init_size(&f[n], 1);
        *(uint8_t *)zmq_msg_data(&f[n++]) = cmd;
        int sub = op & 8 && nchunks ? (op >> 4 & 3) % nchunks : -1;
        take_sub_frame(&p, end, take_len(&p, end), sub, &f[n++]);
        for (int i = 0; i < (op & 3); i++)
            take_sub_frame(&p, end, take_len(&p, end), -1, &f[n++]);
        for (int i = 0; op & 0x80 && i < 3; i++) /* past MPP_MAX_FRAMES */
            zmq_msg_init_size(&f[n++], 0);
        zmq_send(router, peer, peerlen, ZMQ_SNDMORE);
        for (int i = 0; i < n; i++)
            zmq_msg_send(&f[i], router, i + 1 < n ? ZMQ_SNDMORE : 0);
    }
    welcome(); /* the limits every input starts with */
    sync_pool();

    ready_t ready = {0};
    pthread_mutex_lock(&pool->mutex);
    mp__pool_fail_all(pool, MP_ECANCELLED, "fuzz: next input", &ready);
    bool stopped = pool->stopping;
    pthread_mutex_unlock(&pool->mutex);
    run_ready(&ready);
    free(ready.v);
    if (mp_async_wait(map, 5000) || mp_async_wait(apply, 5000))
        die("a call did not end");
    mp_async_destroy(&map);
    mp_async_destroy(&apply);
    mp_items_destroy(&in);
    pump(0, 4); /* what else it sent (CANCELs, HELLO after a DISCONNECT) */
    if (stopped)
        mp_pool_destroy(&pool); /* the next input makes another */
    return 0;
}

#include "replay.h"
