/*  fuzz_worker.c - a worker's handling of what a broker sends (worker/
    session.c: TASK, CANCEL, DISCONNECT, heartbeats and garbage), and what
    it does with the dispatches it was given (queueing, handing back when
    every executor is busy, cancelling a queued one), with state: one
    worker supervisor (worker_t) whose two executors are both busy, so
    that its queue fills, connected to this harness's ROUTER as its broker.
    Each input is a script of messages handled exactly as the worker's
    loop would (wk_on_broker, then wk_check_hold); between inputs the
    queue is dropped and what the worker sent is read.

    Also mp__partial_slice (worker/partial.c), which reads what an
    executor wrote into shared memory while its task may still run: a
    message with command 0xEE hands its header as values (after a one-byte
    array header) and its first payload as errors, and slices items
    [op >> 4, (op >> 4) + 8).

    A message of the script:
        op      u8: bits 0-1 payload frames (0-3), bit 2 a wrong signature,
                bits 4-7 (0xEE) where the slice starts
        cmd     u8
        header  u16 big-endian length, then the bytes
        payload per frame: u16 big-endian length, then the bytes
    Seeds: tests/fuzz/make_seeds.py. Any input must be handled without a
    crash, a leak or an out-of-bounds access (ASan, UBSan). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp.h"
#include "script.h"
#include "worker/supervisor.h"

static worker_t w;
static void *router;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_worker: %s\n", what);
    abort();
}

static uint8_t id[256]; /* the worker's routing id */
static size_t idlen;

/* Reads (and drops) what the worker sent, keeping its routing id. */
static void drain(int timeout_ms)
{
    zmq_pollitem_t pi = {router, 0, ZMQ_POLLIN, 0};
    zmq_msg_t f;
    zmq_msg_init(&f);
    bool first = true; /* of a message: the id */
    while (zmq_poll(&pi, 1, timeout_ms) == 1) {
        while (zmq_msg_recv(&f, router, ZMQ_DONTWAIT) >= 0) {
            if (first && zmq_msg_size(&f) <= sizeof id) {
                idlen = zmq_msg_size(&f);
                memcpy(id, zmq_msg_data(&f), idlen);
            }
            first = !zmq_msg_more(&f);
        }
        timeout_ms = 0;
    }
    zmq_msg_close(&f);
}

static void setup(void)
{
    mp_log_set_level(MP_LOG_ERROR);
    w.o.broker = "inproc://fuzz-worker";
    w.o.hold_ms = 1; /* hand back queued work almost at once */
    w.heartbeat_ms = 60000;
    w.credit = 4;
    snprintf(w.host, sizeof w.host, "fuzz");
    w.nex = 2;
    w.ex = calloc(2, sizeof *w.ex);
    w.progress = calloc(2, sizeof *w.progress);
    w.sfd = w.stream_fd = -1; /* a DEALER, not a socket pair */
    w.ctx = zmq_ctx_new();
    router = zmq_socket(w.ctx, ZMQ_ROUTER);
    if (!w.ex || !w.progress || zmq_bind(router, w.o.broker))
        die("cannot set up");
    for (int i = 0; i < 2; i++) { /* busy for good: no process behind them */
        w.ex[i].slot = i;
        w.ex[i].fd = -1;
        w.ex[i].state = EX_BUSY;
    }
    if (wk_open_socket(&w))
        die("cannot connect");
    drain(1000);
}

/* Header as values (value 0 after its first byte's worth of array
   header: vstart 1), payload as errors; items [from, from + 8). */
static void slice(zmq_msg_t *vals, zmq_msg_t *errs, uint64_t from)
{
    mp__buf_t v, e;
    mp__buf_init(&v, NULL, 0);
    mp__buf_init(&e, NULL, 0);
    uint32_t nerr;
    size_t vn = zmq_msg_size(vals);
    mp__partial_slice(zmq_msg_data(vals), vn ? 1 : 0, vn, errs ? zmq_msg_data(errs) : NULL,
                      errs ? zmq_msg_size(errs) : 0, from, from + 8, &v, &e, &nerr);
    mp__buf_release(&v);
    mp__buf_release(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!router)
        setup();
    const uint8_t *p = data, *end = data + size;
    for (int k = 0; p + 2 <= end && k < 64; k++) {
        uint8_t op = *p++, cmd = *p++;
        zmq_msg_t f[6];
        int n = 0;
        zmq_msg_init_size(&f[n], MPP_SIG_SIZE);
        memcpy(zmq_msg_data(&f[n++]), op & 4 ? "MPX01" : MPP_SIG_WORKER, MPP_SIG_SIZE);
        zmq_msg_init_size(&f[n], 1);
        *(uint8_t *)zmq_msg_data(&f[n++]) = cmd;
        take_frame(&p, end, take_len(&p, end), &f[n++]);
        for (int i = 0; i < (op & 3); i++)
            take_frame(&p, end, take_len(&p, end), &f[n++]);
        if (cmd == 0xEE) {
            slice(&f[2], n > 3 ? &f[3] : NULL, op >> 4);
            for (int i = 0; i < n; i++)
                zmq_msg_close(&f[i]);
            continue;
        }
        /* as from the broker: through the ROUTER to the worker's socket */
        zmq_send(router, id, idlen, ZMQ_SNDMORE);
        for (int i = 0; i < n; i++)
            zmq_msg_send(&f[i], router, i + 1 < n ? ZMQ_SNDMORE : 0);
        zmq_pollitem_t pi = {w.sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&pi, 1, 1000) == 1)
            wk_on_broker(&w);
        wk_check_hold(&w, mp__now_ns() + 1000000000ull); /* as if a second later */
    }
    wk_drop_queued(&w);
    drain(0);
    return 0;
}

#include "replay.h"
