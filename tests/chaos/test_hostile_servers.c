/*  test_hostile_servers.c - hostile servers: a raw ZeroMQ ROUTER that
    plays mp-broker to a real mp-worker, then to the client library (a
    pool in this process), then a Manager server to the remote Manager
    client (mp_manager_connect), and sends them what no server should: random
    frames, every truncation of a valid header, bombs (an array header
    claiming 2^32 - 1 elements, 10^5 levels of nesting, counts that do not
    match their frames, shared-memory fields to a peer that has none, huge
    numbers), strings full of control characters, cancels and results for
    work never sent. After each class: the peer is alive, its resident
    memory is within 2x of what it was after a first call, and a normal
    call through it is still right; its log holds no raw control character.
    Label "chaos": run once, not again under sanitizers.
*/
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "mp/manager.h"
#include "mp/pool.h"
#include "hostile_server.h"
#include "support.h"

/* ---- against mp-worker ---------------------------------------------------------------- */

static uint64_t next_dispatch = 1;

/* TASK square [1 2 3] -> RESULT [1 4 9], whatever the worker went through
   (it may have reconnected: a new READY, a new id). */
static void worker_square(hb_t *h)
{
    uint64_t d = next_dispatch++;
    pk_t hdr = {.n = 0}, in, out;
    pk_arr(&hdr, 5);
    pk_uint(&hdr, d);
    pk_str(&hdr, "square");
    pk_uint(&hdr, 0);
    pk_uint(&hdr, 3);
    pk_uint(&hdr, 1);
    static const uint8_t items[] = {0x93, 1, 2, 3}, squares[] = {0x93, 1, 4, 9};
    hb_send(h, 0x81, &hdr, items, sizeof items, NULL, 0, 1);
    uint64_t end = tu_now_ms() + 10000;
    while (tu_now_ms() < end) {
        int cmd = hb_recv(h, 500, &in, &out);
        if (cmd == 0x01) { /* READY again (it reconnected): the TASK again */
            hb_send(h, 0x81, &hdr, items, sizeof items, NULL, 0, 1);
            continue;
        }
        if (cmd == 0x02 && in.n >= 2 && in.b[1] == (uint8_t)d) {
            assert_int_equal(out.n, sizeof squares);
            assert_memory_equal(out.b, squares, sizeof squares);
            return;
        }
    }
    fail_msg("the worker did not answer TASK %llu", (unsigned long long)d);
}

static void worker_bad_tasks(hb_t *h)
{
    static const uint8_t items[] = {0x93, 1, 2, 3};
    pk_t hdr;
    struct {
        uint64_t count, mode, attempt, limit;
        int extra; /* 0: none, 1: task-shm [0 2^63], 2: nil + time limit */
        const char *name;
    } cases[] = {
        {UINT32_MAX, 0, 1, 0, 0, "square"}, /* a count its items do not hold */
        {1048577, 0, 1, 0, 0, "square"},    /* over the largest chunk */
        {3, 7, 1, 0, 0, "square"},          /* no such mode */
        {3, 1, 1, 0, 0, "square"},          /* star, but the items are ints */
        {3, 0, 0, 0, 0, "square"},          /* attempt 0 */
        {3, 0, 1, 0, 1, "square"},          /* shared memory it does not have */
        {3, 0, 1, UINT64_MAX, 2, "square"}, /* an absurd time limit */
        {3, 0, 1, 0, 0, forged},            /* a task name to forge a log line */
        {3, 0, 1, 0, 0, ""},                /* an empty name */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hdr.n = 0;
        pk_arr(&hdr, cases[i].extra ? 7 : 5);
        pk_uint(&hdr, next_dispatch++);
        pk_str(&hdr, cases[i].name);
        pk_uint(&hdr, cases[i].mode);
        pk_uint(&hdr, cases[i].count);
        pk_uint(&hdr, cases[i].attempt);
        if (cases[i].extra == 1) {
            pk_arr(&hdr, 2);
            pk_uint(&hdr, 0);
            pk_uint(&hdr, 1ull << 63);
            pk_uint(&hdr, 0);
        } else if (cases[i].extra == 2) {
            hdr.b[hdr.n++] = 0xc0;
            pk_uint(&hdr, cases[i].limit);
        }
        hb_send(h, 0x81, &hdr, items, sizeof items, "\x92\xa1x", 3, i % 2 ? 2 : 1);
    }
    for (int i = 0; i < 1000; i++) { /* cancels of work never sent */
        hdr.n = 0;
        pk_arr(&hdr, 1);
        pk_uint(&hdr, UINT64_MAX - (uint64_t)i);
        hb_send(h, 0x84, &hdr, NULL, 0, NULL, 0, 0);
    }
    hdr.n = 0;
    pk_arr(&hdr, 1);
    pk_str(&hdr, forged);
    hb_send(h, 0x83, &hdr, NULL, 0, NULL, 0, 0); /* DISCONNECT: it reconnects */
}

static void check_worker(hb_t *h, pid_t worker, long base, const char *what)
{
    usleep(200000);
    assert_int_equal(kill(worker, 0), 0);
    worker_square(h);
    long rss = tu_rss_kib(worker);
    printf("# mp-worker after %s: alive, answers, RSS %ld KiB (%.2fx)\n", what, rss,
           (double)rss / (double)base);
    assert_true(rss <= 2 * base);
}

static void test_chaos_hostile_broker_leaves_the_worker_serving(void **state)
{
    (void)state;
    hb_t h;
    hb_open(&h, "MPW01");
    char logpath[128];
    snprintf(logpath, sizeof logpath, "/tmp/mp-hostile-worker-%d.log", (int)getpid());
    int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(log >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(log, STDERR_FILENO);
    char *argv[] = {MP_TEST_BUILD_DIR "/worker/mp-worker",
                    "--broker",
                    h.ep,
                    "--tasks",
                    MP_TEST_BUILD_DIR "/tests/libtest_tasks.so",
                    "-p",
                    "1",
                    "--heartbeat",
                    "300",
                    "--log-level",
                    "info",
                    NULL};
    pid_t worker = tu_spawn(argv, -1);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(log);
    pk_t in, out;
    int cmd;
    while ((cmd = hb_recv(&h, 10000, &in, &out)) != 0x01 && cmd != -1) {
    }
    assert_int_equal(cmd, 0x01); /* READY */
    worker_square(&h);
    long base = tu_rss_kib(worker);

    random_frames(&h, 7);
    check_worker(&h, worker, base, "3,000 random messages");
    pk_t task = {.n = 0}, items = {.n = 0};
    pk_arr(&task, 5);
    pk_uint(&task, 999);
    pk_str(&task, "square");
    pk_uint(&task, 0);
    pk_uint(&task, 1);
    pk_uint(&task, 1);
    pk_arr(&items, 1);
    pk_uint(&items, 5);
    truncations(&h, 0x81, &task, &items);
    check_worker(&h, worker, base, "every truncation of a TASK");
    bombs(&h, 0x81);
    check_worker(&h, worker, base, "bombs");
    worker_bad_tasks(&h);
    check_worker(&h, worker, base, "TASKs that lie, 1,000 cancels, a forged DISCONNECT");

    kill(worker, SIGTERM);
    assert_true(tu_wait_exit(worker, 10000) >= 0);
    hb_close(&h);
    bool raw = false;
    size_t lines = tu_log_scan(logpath, NULL, &raw);
    printf("# mp-worker log: %zu lines, no raw control character: %s\n", lines, raw ? "NO" : "yes");
    assert_false(raw);
    unlink(logpath);
}

/* ---- against the client library ---------------------------------------------------------- */

typedef struct {
    const char *ep;
    mp_pool_t *pool;
    int rc;
} opener_t;

static void *open_pool(void *arg)
{
    opener_t *o = arg;
    mp_pool_options_t po = {.broker = o->ep, .heartbeat_ms = 300, .connect_timeout_ms = 10000};
    o->rc = mp_pool_new(&po, &o->pool);
    return NULL;
}

static void welcome(hb_t *h)
{
    pk_t w = {.n = 0};
    pk_arr(&w, 6);
    pk_str(&w, "hostile");
    pk_uint(&w, 300);
    pk_uint(&w, 2);
    pk_uint(&w, 64u << 20);
    pk_uint(&w, 1048576);
    pk_uint(&w, 4096);
    hb_send(h, 0x81, &w, NULL, 0, NULL, 0, 0);
}

/* The chunk id of a SUBMIT header [chunk-id ...] (small ids: one byte). */
static uint64_t chunk_of(const pk_t *hdr)
{
    return hdr->n >= 2 && hdr->b[1] < 128 ? hdr->b[1] : UINT64_MAX;
}

/* map square [1 2 3] through the pool, answered right by us: [1 4 9]. A
   HELLO on the way (the pool reconnected) is welcomed. */
static void client_square(hb_t *h, mp_pool_t *pool)
{
    mp_items_t *in = mp_items_new();
    for (int i = 1; i <= 3; i++)
        mp_items_add_int(in, i);
    mp_call_options_t co = {.chunksize = 3};
    mp_async_t *r;
    assert_int_equal(mp_pool_map_async(pool, "square", in, &co, &r), 0);
    pk_t hdr, pay;
    uint64_t end = tu_now_ms() + 10000;
    while (!mp_async_ready(r) && tu_now_ms() < end) {
        int cmd = hb_recv(h, 200, &hdr, &pay);
        if (cmd == 0x01)
            welcome(h);
        if (cmd != 0x02)
            continue;
        pk_t res = {.n = 0};
        pk_arr(&res, 4);
        pk_uint(&res, chunk_of(&hdr));
        pk_uint(&res, 0);
        pk_uint(&res, 3);
        pk_uint(&res, 0);
        static const uint8_t squares[] = {0x93, 1, 4, 9};
        hb_send(h, 0x82, &res, squares, sizeof squares, NULL, 0, 1);
    }
    const mp_items_t *out;
    assert_int_equal(mp_async_get(r, 0, &out), 0);
    for (size_t i = 0; i < 3; i++) {
        int64_t v;
        assert_int_equal(mp_items_int(out, i, &v), 0);
        assert_int_equal(v, (int64_t)((i + 1) * (i + 1)));
    }
    mp_async_destroy(&r);
    mp_items_destroy(&in);
}

/* RESULTs, FAILEDs, STATUSes, WELCOMEs and HEARTBEATs that lie, for the
   chunk in flight and for chunks never sent. */
static void client_bad_replies(hb_t *h, uint64_t chunk)
{
    static const uint8_t vals[] = {0x93, 1, 4, 9},
                         errs[] = {0x91, 0x96, 9, 0xff, 0, 0xa1, 'x', 0xa0, 1};
    struct {
        uint64_t id, base, count, nerrors;
        bool ring;
    } results[] = {
        {chunk, 0, 0, 0, false},          {chunk, 5, 1, 0, false},
        {chunk, 0, UINT64_MAX, 0, false}, {chunk, 0, 3, 9, false},
        {chunk, 0, 1, 0, true},           {12345, 0, 3, 0, false},
        {UINT64_MAX, 0, 3, 1, false},     {chunk, UINT64_MAX - 1, 3, 0, false},
    };
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
        pk_t hdr = {.n = 0};
        pk_arr(&hdr, results[i].ring ? 5 : 4);
        pk_uint(&hdr, results[i].id);
        pk_uint(&hdr, results[i].base);
        pk_uint(&hdr, results[i].count);
        pk_uint(&hdr, results[i].nerrors);
        if (results[i].ring) {
            pk_arr(&hdr, 3);
            pk_uint(&hdr, 0);
            pk_uint(&hdr, 1ull << 40);
            pk_uint(&hdr, 1ull << 40);
        }
        hb_send(h, 0x82, &hdr, vals, results[i].ring ? 0 : sizeof vals, errs, sizeof errs,
                results[i].nerrors ? 2 : 1);
    }
    static char big[1 << 20];
    memset(big, 'A', sizeof big - 1);
    memcpy(big, forged, strlen(forged));
    pk_t f = {.n = 0};
    pk_arr(&f, 3);
    pk_uint(&f, 777);
    pk_uint(&f, 5);
    pk_str(&f, forged);
    hb_send(h, 0x83, &f, NULL, 0, NULL, 0, 0); /* FAILED for a chunk never sent */
    pk_t st = {.n = 0};
    pk_arr(&st, 0);
    hb_send(h, 0x84, &st, big, sizeof big, NULL, 0, 1); /* STATUS nobody asked for */
    pk_t w = {.n = 0};
    pk_arr(&w, 3);
    pk_str(&w, forged);
    pk_uint(&w, UINT64_MAX);
    pk_uint(&w, UINT64_MAX);
    hb_send(h, 0x81, &w, NULL, 0, NULL, 0, 0); /* WELCOME again, absurd */
    pk_t hb = {.n = 0};
    pk_arr(&hb, 1);
    pk_uint(&hb, UINT64_MAX);
    hb_send(h, 0x85, &hb, NULL, 0, NULL, 0, 0); /* 2^64 - 1 executors */
}

static void check_client(hb_t *h, mp_pool_t *pool, long base, const char *what)
{
    client_square(h, pool);
    long rss = tu_rss_kib(0);
    printf("# the client after %s: answers right, RSS %ld KiB (%.2fx)\n", what, rss,
           (double)rss / (double)base);
    assert_true(rss <= 2 * base);
}

static void test_chaos_hostile_broker_leaves_the_client_working(void **state)
{
    (void)state;
    hb_t h;
    hb_open(&h, "MPC01");
    char logpath[128];
    snprintf(logpath, sizeof logpath, "/tmp/mp-hostile-client-%d.log", (int)getpid());
    int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int saved = dup(STDERR_FILENO);
    dup2(log, STDERR_FILENO); /* the pool's log, to be read */
    opener_t o = {.ep = h.ep};
    pthread_t t;
    pthread_create(&t, NULL, open_pool, &o);
    pk_t hdr, pay;
    int cmd;
    while ((cmd = hb_recv(&h, 10000, &hdr, &pay)) != 0x01 && cmd != -1) {
    }
    assert_int_equal(cmd, 0x01); /* HELLO */
    welcome(&h);
    pthread_join(t, NULL);
    assert_int_equal(o.rc, 0);
    mp_pool_t *pool = o.pool;
    client_square(&h, pool);
    long base = tu_rss_kib(0);

    /* an apply in flight while the lies come: it ends, one way or another */
    mp_obj_t *args = mp_obj_new_array();
    mp_obj_array_add(args, mp_obj_new_int(5));
    mp_async_t *r;
    assert_int_equal(mp_pool_apply_async(pool, "square", args, NULL, &r), 0);
    mp_obj_destroy(&args);
    while ((cmd = hb_recv(&h, 5000, &hdr, &pay)) != 0x02 && cmd != -1) {
    }
    assert_int_equal(cmd, 0x02);
    uint64_t chunk = chunk_of(&hdr);

    random_frames(&h, 11);
    check_client(&h, pool, base, "3,000 random messages");
    pk_t res = {.n = 0}, vals = {.n = 0};
    pk_arr(&res, 4);
    pk_uint(&res, chunk);
    pk_uint(&res, 0);
    pk_uint(&res, 1);
    pk_uint(&res, 0);
    pk_arr(&vals, 1);
    pk_uint(&vals, 25);
    truncations(&h, 0x82, &res, &vals);
    check_client(&h, pool, base, "every truncation of a RESULT");
    bombs(&h, 0x82);
    check_client(&h, pool, base, "bombs");
    client_bad_replies(&h, chunk);
    check_client(&h, pool, base, "RESULTs, FAILEDs, STATUS, WELCOME, HEARTBEAT that lie");
    /* the apply: answered by one of the lies (a clear error) or still
       waiting; either way cancelling ends it at once */
    mp_async_cancel(r);
    assert_int_equal(mp_async_wait(r, 5000), 0);
    mp_async_destroy(&r);
    pk_t d = {.n = 0};
    pk_arr(&d, 1);
    pk_str(&d, forged);
    hb_send(&h, 0x86, &d, NULL, 0, NULL, 0, 0); /* DISCONNECT: it reconnects */
    check_client(&h, pool, base, "a forged DISCONNECT");

    mp_pool_terminate(pool);
    mp_pool_destroy(&pool);
    hb_close(&h);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(log);
    bool raw = false;
    size_t lines = tu_log_scan(logpath, NULL, &raw);
    printf("# the client's log: %zu lines, no raw control character: %s\n", lines,
           raw ? "NO" : "yes");
    assert_false(raw);
    unlink(logpath);
}

/* ---- against the remote Manager client ------------------------------------------- */

/* One client operation, run on a thread while the main thread plays the
   server: which (0 connect, 1 open "d", 2 get "k", 3 len), its rc. */
typedef struct {
    const char *ep;
    int which, rc;
    mp_remote_t *remote;
    mp_mdict_t *dict;
    mp_obj_t *value;
    size_t len;
    pthread_t t;
} mop_t;

static void *mop_run(void *arg)
{
    mop_t *o = arg;
    mp_obj_t *key = mp_obj_new_str("k");
    mp_remote_options_t ro = {.timeout_ms = 1500};
    switch (o->which) {
    case 0:
        o->rc = mp_manager_connect(o->ep, "key", 3, &ro, &o->remote);
        break;
    case 1:
        o->rc = mp_remote_dict(o->remote, "d", &o->dict);
        break;
    case 2:
        mp_obj_destroy(&o->value);
        o->rc = mp_mdict_get(o->dict, key, NULL, &o->value);
        break;
    default:
        o->rc = mp_mdict_len(o->dict, &o->len);
    }
    mp_obj_destroy(&key);
    return NULL;
}

/* The next MPM message within 3 s: its command (-1: none), body bytes. */
static int mpm_next(hb_t *h, pk_t *body)
{
    zmq_pollitem_t pi = {h->router, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&pi, 1, 3000) != 1)
        return -1;
    zmq_msg_t f[6];
    int n = 0, more = 1, cmd = -1;
    while (more && n < 6) {
        zmq_msg_init(&f[n]);
        zmq_msg_recv(&f[n], h->router, 0);
        more = zmq_msg_more(&f[n]);
        n++;
    }
    if (n == 4 && zmq_msg_size(&f[2]) == 1 && zmq_msg_size(&f[3]) < sizeof body->b) {
        h->idlen = zmq_msg_size(&f[0]);
        memcpy(h->id, zmq_msg_data(&f[0]), h->idlen);
        cmd = *(uint8_t *)zmq_msg_data(&f[2]);
        body->n = zmq_msg_size(&f[3]);
        memcpy(body->b, zmq_msg_data(&f[3]), body->n);
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    return cmd;
}

/* HELLO -> CHALLENGE, AUTH -> WELCOME (any MAC: we are not checking). */
static void mpm_handshake(hb_t *h, int cmd)
{
    pk_t b = {.n = 0}, in;
    if (cmd != 1)
        assert_int_equal(mpm_next(h, &in), 1); /* HELLO */
    pk_arr(&b, 1);
    b.b[b.n++] = 0xc4; /* bin8 */
    b.b[b.n++] = 32;
    memset(b.b + b.n, 7, 32);
    b.n += 32;
    hb_send(h, 0x81, &b, NULL, 0, NULL, 0, 0);
    assert_int_equal(mpm_next(h, &in), 2); /* AUTH */
    b.n = 0;
    pk_arr(&b, 0);
    hb_send(h, 0x82, &b, NULL, 0, NULL, 0, 0);
}

/* REPLY [id rc result extra], for the CALL in body (its id: one byte). */
static void mpm_reply(hb_t *h, const pk_t *call, int64_t rc, const void *result, size_t rn,
                      int64_t extra)
{
    pk_t b = {.n = 0};
    pk_arr(&b, 4);
    pk_raw(&b, call->b + 1, 1); /* the call's id (small: one byte) */
    b.b[b.n++] = 0xd3;
    for (int i = 7; i >= 0; i--)
        b.b[b.n++] = (uint8_t)((uint64_t)rc >> (8 * i));
    pk_raw(&b, result, rn);
    b.b[b.n++] = 0xd3;
    for (int i = 7; i >= 0; i--)
        b.b[b.n++] = (uint8_t)((uint64_t)extra >> (8 * i));
    hb_send(h, 0x84, &b, NULL, 0, NULL, 0, 0);
}

/* Runs op which on a thread; the server's side: junk first (lie), then
   the right answer. Returns the op's rc. */
static int mop(hb_t *h, mop_t *o, int which, void (*lie)(hb_t *, const pk_t *))
{
    o->which = which;
    pthread_create(&o->t, NULL, mop_run, o);
    pk_t call;
    int cmd;
    while ((cmd = mpm_next(h, &call)) == 1) /* it authenticates again (after DENIED) */
        mpm_handshake(h, 1);
    if (cmd == 3) {
        if (lie)
            lie(h, &call);
        static const uint8_t v[] = {0xa1, 'v'};
        mpm_reply(h, &call, 0, v, sizeof v, which == 1 ? 5 : 3);
    }
    pthread_join(o->t, NULL);
    return o->rc;
}

static void lie_noise(hb_t *h, const pk_t *call)
{
    (void)call;
    random_frames(h, 3);
}

static void lie_replies(hb_t *h, const pk_t *call)
{
    static const uint8_t map[] = {0x81, 0xa1, 'a', 0x01}, nil[] = {0xc0};
    pk_t b = {.n = 0};
    pk_arr(&b, 4);
    pk_str(&b, forged); /* the id a string */
    hb_send(h, 0x84, &b, NULL, 0, NULL, 0, 0);
    b.n = 0;
    pk_arr(&b, 1); /* only an id */
    pk_raw(&b, call->b + 1, 1);
    hb_send(h, 0x84, &b, NULL, 0, NULL, 0, 0);
    pk_t other = *call;
    other.b[1] ^= 0x40; /* another call's id */
    mpm_reply(h, &other, 0, map, sizeof map, -1);
    mpm_reply(h, &other, INT64_MIN, nil, 1, INT64_MAX);
    bombs(h, 0x84);
}

static void test_chaos_hostile_server_leaves_the_manager_client_working(void **state)
{
    (void)state;
    hb_t h;
    hb_open(&h, "MPM01");
    mop_t o = {.ep = h.ep};
    o.which = 0;
    pthread_create(&o.t, NULL, mop_run, &o);
    mpm_handshake(&h, 0);
    pthread_join(o.t, NULL);
    assert_int_equal(o.rc, 0);
    assert_int_equal(mop(&h, &o, 1, NULL), 0); /* the dict "d" */
    assert_int_equal(mop(&h, &o, 2, NULL), 0);
    long base = tu_rss_kib(0);
    assert_int_equal(mop(&h, &o, 2, lie_noise), 0);
    assert_string_equal(mp_obj_str(o.value, NULL), "v");
    assert_int_equal(mop(&h, &o, 2, lie_replies), 0);
    assert_string_equal(mp_obj_str(o.value, NULL), "v");
    /* a REPLY whose rc is no libmp code: a clear error, not a success */
    o.which = 3;
    pthread_create(&o.t, NULL, mop_run, &o);
    pk_t call;
    assert_int_equal(mpm_next(&h, &call), 3);
    static const uint8_t nil[] = {0xc0};
    mpm_reply(&h, &call, 7, nil, 1, -1);
    pthread_join(o.t, NULL);
    printf("# remote Manager client: a REPLY with rc 7 gives %s\n", mp_strerror(o.rc));
    assert_int_equal(o.rc, MP_EBADMSG);
    /* DENIED: it authenticates again once, then answers */
    o.which = 3;
    pthread_create(&o.t, NULL, mop_run, &o);
    assert_int_equal(mpm_next(&h, &call), 3);
    pk_t d = {.n = 0};
    pk_arr(&d, 1);
    pk_str(&d, forged);
    hb_send(&h, 0x83, &d, NULL, 0, NULL, 0, 0);
    mpm_handshake(&h, 0);
    assert_int_equal(mpm_next(&h, &call), 3);
    mpm_reply(&h, &call, 0, nil, 1, 3);
    pthread_join(o.t, NULL);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.len, 3);
    /* silence: MP_EMANAGERLOST within its timeout, and then it works again */
    o.which = 3;
    uint64_t t0 = tu_now_ms();
    pthread_create(&o.t, NULL, mop_run, &o);
    assert_int_equal(mpm_next(&h, &call), 3);
    pthread_join(o.t, NULL);
    printf("# remote Manager client: a silent server -> %s after %llu ms\n", mp_strerror(o.rc),
           (unsigned long long)(tu_now_ms() - t0));
    assert_int_equal(o.rc, MP_EMANAGERLOST);
    assert_int_equal(mop(&h, &o, 2, NULL), 0);
    long rss = tu_rss_kib(0);
    printf("# remote Manager client after noise, lying REPLYs, DENIED, silence: answers right, "
           "RSS %.2fx\n",
           (double)rss / (double)base);
    assert_true(rss <= 2 * base);
    mp_obj_destroy(&o.value);
    mp_remote_disconnect(&o.remote);
    hb_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_chaos_hostile_broker_leaves_the_worker_serving,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_chaos_hostile_broker_leaves_the_client_working,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_chaos_hostile_server_leaves_the_manager_client_working,
                                  tu_kill_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
