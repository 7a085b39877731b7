/*  test_curve.c - CURVE on MPP/1 (docs/PROTOCOL.md 10): the broker admits
    only the keys of its allow-list, each in its own role.

    One mp-broker with a key pair and an allow-list directory (workers/,
    clients/), mp-workers and pools with their own keys. Refused: an
    unknown client key, an unknown worker key, a plaintext peer, a client
    with the wrong server key, a client's key offered as a worker's; in
    each case the broker's counters show that no task ran, and a refused
    "worker" receives no TASK (no task argument reaches it). A key added
    to the allow-list while the broker runs is admitted without a restart.
    A broker refuses to listen off loopback without keys.
*/
#include <czmq.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zmq.h>

#include "keys.h"
#include "support.h"

#define HB "500"

static char endpoint[256];

static int setup(void **state)
{
    (void)state;
    const char *names[] = {"broker", "w1", "c1", "stranger", "late", "other_broker"};
    tk_setup(names, sizeof names / sizeof *names);
    tk_allow("w1", "workers");
    tk_allow("c1", "clients");
    return 0;
}

static int teardown(void **state)
{
    tu_kill_children();
    if (tk_teardown())
        return -1;
    return tu_teardown(state);
}

static void start_broker(void)
{
    setenv("MP_CURVE_KEY", tk_key("broker", true), 1);
    setenv("MP_CURVE_ALLOW_DIR", tk_allow_dir(), 1);
    tu_start_broker("tcp://127.0.0.1:0", HB, endpoint, sizeof endpoint);
    unsetenv("MP_CURVE_KEY");
    unsetenv("MP_CURVE_ALLOW_DIR");
}

static void start_worker(const char *name)
{
    setenv("MP_CURVE_KEY", tk_key(name, true), 1);
    setenv("MP_CURVE_SERVER_KEY", tk_key("broker", false), 1);
    tu_start_worker(endpoint, "1", HB);
    unsetenv("MP_CURVE_KEY");
    unsetenv("MP_CURVE_SERVER_KEY");
}

/* A pool with a client's key (name NULL: none) and a server key. */
static int open_pool(const char *name, const char *server, int timeout_ms, mp_pool_t **pool)
{
    mp_pool_options_t o = {.broker = endpoint,
                           .heartbeat_ms = 500,
                           .connect_timeout_ms = timeout_ms,
                           .curve_key = name ? tk_key(name, true) : NULL,
                           .curve_server_key = name ? tk_key(server, false) : NULL};
    *pool = NULL;
    return mp_pool_new(&o, pool);
}

/* The broker's counter (through an admitted client): "done", "refused". */
static int64_t counter(const char *name)
{
    mp_pool_t *pool;
    assert_int_equal(open_pool("c1", "broker", 5000, &pool), 0);
    mp_obj_t *st = NULL;
    assert_int_equal(mp_pool_status(pool, 5000, &st), 0);
    int64_t v = mp_obj_int(mp_obj_map_get(st, name));
    mp_obj_destroy(&st);
    mp_pool_destroy(&pool);
    return v;
}

static void test_curve_admitted_keys_work(void **state)
{
    (void)state;
    start_broker();
    start_worker("w1");
    mp_pool_t *pool;
    assert_int_equal(open_pool("c1", "broker", 5000, &pool), 0);
    assert_int_equal(tu_wait_processes(pool, 1, 5000), 1);
    tu_assert_map_squares(pool, 1000);
    mp_pool_destroy(&pool);
    assert_int_equal(counter("done"), 1000);
}

static void test_curve_unknown_plaintext_and_wrong_server_clients_are_refused(void **state)
{
    (void)state;
    start_broker();
    start_worker("w1");
    mp_pool_t *pool;
    /* an unknown key, no key at all, the wrong broker key (the broker
       cannot read the handshake and closes it, every time), a worker's key
       (not a client's: the broker refuses it by role): each told so at
       once, not at the 10 s timeout */
    const char *keys[][2] = {
        {"stranger", "broker"}, {NULL, NULL}, {"c1", "other_broker"}, {"w1", "broker"}};
    for (size_t i = 0; i < 4; i++) {
        uint64_t t0 = tu_now_ms();
        assert_int_equal(open_pool(keys[i][0], keys[i][1], 10000, &pool), MP_EAUTH);
        assert_true(tu_now_ms() - t0 < 5000);
    }
    assert_true(counter("refused") >= 1);
    assert_int_equal(counter("done"), 0); /* no task ran */
}

/* A raw DEALER speaking CURVE with key name: it says READY for "square". */
static void *raw_worker(void *ctx, const char *name)
{
    zcert_t *own = zcert_load(tk_key(name, true)), *srv = zcert_load(tk_key("broker", false));
    assert_non_null(own);
    assert_non_null(srv);
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, zcert_public_key(srv), 32);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, zcert_public_key(own), 32);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, zcert_secret_key(own), 32);
    zcert_destroy(&own);
    zcert_destroy(&srv);
    assert_int_equal(zmq_connect(s, endpoint), 0);
    /* READY [["square"] 1 2 "raw" 1] */
    const uint8_t ready = 0x01;
    const uint8_t hdr[] = {0x95, 0x91, 0xa6, 's',  'q', 'u', 'a', 'r',
                           'e',  0x01, 0x02, 0xa3, 'r', 'a', 'w', 0x01};
    tu_send_frames(s, 3, (const void *[]){"MPW01", &ready, hdr}, (size_t[]){5, 1, sizeof hdr});
    return s;
}

/* Reads what reaches s for ms: how many TASK messages (command 0x81). */
static int tasks_received(void *s, int ms)
{
    int tasks = 0;
    uint64_t end = tu_now_ms() + (uint64_t)ms;
    while (tu_now_ms() < end) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        uint8_t cmd = 0;
        size_t len;
        if (zmq_poll(&it, 1, 50) > 0 && tu_recv_frames(s, 1, &cmd, 1, &len) >= 2 && len == 1 &&
            cmd == 0x81)
            tasks++;
    }
    return tasks;
}

static void test_curve_refused_workers_receive_no_task(void **state)
{
    (void)state;
    start_broker();
    void *ctx = zmq_ctx_new();
    void *as_client = raw_worker(ctx, "c1");      /* admitted, but as a client */
    void *stranger = raw_worker(ctx, "stranger"); /* on no list */
    mp_pool_t *pool;
    assert_int_equal(open_pool("c1", "broker", 5000, &pool), 0);
    mp_items_t *in = tu_range(100);
    mp_async_t *ar;
    assert_int_equal(mp_pool_map_async(pool, "square", in, NULL, &ar), 0);
    /* the only "workers" are refused: the map waits, nothing reaches them */
    assert_int_equal(tasks_received(as_client, 1000), 0);
    assert_int_equal(tasks_received(stranger, 100), 0);
    assert_int_equal(mp_async_wait(ar, 0), MP_ETIMEDOUT);
    assert_true(counter("refused") >= 1);
    /* an admitted worker then takes it all */
    start_worker("w1");
    const mp_items_t *out;
    assert_int_equal(mp_async_get(ar, 10000, &out), 0);
    tu_assert_squares(out, 100);
    assert_int_equal(tasks_received(as_client, 300), 0);
    mp_async_destroy(&ar);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
    zmq_close(as_client);
    zmq_close(stranger);
    zmq_ctx_term(ctx);
}

static void test_curve_key_added_at_run_time_is_admitted(void **state)
{
    (void)state;
    start_broker();
    start_worker("w1");
    mp_pool_t *pool;
    assert_int_equal(open_pool("late", "broker", 800, &pool), MP_EAUTH);
    tk_allow("late", "clients"); /* no restart */
    assert_int_equal(open_pool("late", "broker", 5000, &pool), 0);
    assert_int_equal(tu_wait_processes(pool, 1, 5000), 1);
    tu_assert_map_squares(pool, 10);
    mp_pool_destroy(&pool);
}

/* The worker's "draining" in a STATUS (-1: no worker). */
static int draining_of(const mp_obj_t *st)
{
    const mp_obj_t *w = mp_obj_array_at(mp_obj_map_get(st, "workers"), 0);
    return w ? mp_obj_bool(mp_obj_map_get(w, "draining")) : -1;
}

/* DRAIN takes a worker away for good: with CURVE only an operator's key
   (allow/operators/, besides clients/) may. */
static void test_curve_drain_needs_an_operator_key(void **state)
{
    (void)state;
    start_broker();
    start_worker("w1");
    mp_pool_t *pool;
    assert_int_equal(open_pool("c1", "broker", 5000, &pool), 0);
    assert_int_equal(tu_wait_processes(pool, 1, 5000), 1);
    mp_obj_t *st = NULL;
    assert_int_equal(mp_pool_status(pool, 5000, &st), 0);
    uint64_t id = (uint64_t)mp_obj_int(
        mp_obj_map_get(mp_obj_array_at(mp_obj_map_get(st, "workers"), 0), "id"));
    int64_t refused = mp_obj_int(mp_obj_map_get(st, "refused"));
    mp_obj_destroy(&st);
    assert_int_equal(mp_pool_drain_worker(pool, id, 5000, &st), 0);
    assert_int_equal(draining_of(st), 0); /* refused: c1 is a client, not an operator */
    assert_int_equal(mp_obj_int(mp_obj_map_get(st, "refused")), refused + 1);
    mp_obj_destroy(&st);
    tk_allow("c1", "operators"); /* no restart */
    usleep(1200 * 1000);         /* zcertstore rereads the directory when it changed */
    assert_int_equal(mp_pool_drain_worker(pool, id, 5000, &st), 0);
    int d = draining_of(st);
    assert_true(d == 1 || d == -1); /* draining, or gone already */
    mp_obj_destroy(&st);
    assert_true(TU_WAIT_UNTIL((mp_pool_status(pool, 5000, &st) == 0 &&
                               (d = draining_of(st), mp_obj_destroy(&st), d == -1)),
                              5000));
    mp_pool_destroy(&pool);
}

static void test_curve_no_keys_off_loopback_is_refused(void **state)
{
    (void)state;
    const char *binds[] = {"tcp://*:0"};
    mp_broker_options_t o = {.binds = binds, .nbinds = 1};
    mp_broker_t *b = NULL;
    assert_int_equal(mp_broker_new(&o, &b), MP_EINSECURE);
    assert_null(b);
    o.insecure = true; /* said out loud: allowed */
    assert_int_equal(mp_broker_new(&o, &b), 0);
    mp_broker_destroy(&b);
    const char *local[] = {"tcp://127.0.0.1:0"};
    mp_broker_options_t lo = {.binds = local, .nbinds = 1};
    assert_int_equal(mp_broker_new(&lo, &b), 0); /* loopback needs no keys */
    mp_broker_destroy(&b);
    /* half a key pair is refused, not ignored */
    mp_broker_options_t half = {.binds = local, .nbinds = 1, .curve_key = tk_key("broker", true)};
    assert_int_equal(mp_broker_new(&half, &b), MP_EINVAL);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_curve_admitted_keys_work, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_curve_unknown_plaintext_and_wrong_server_clients_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curve_refused_workers_receive_no_task, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_curve_key_added_at_run_time_is_admitted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_curve_drain_needs_an_operator_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curve_no_keys_off_loopback_is_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
