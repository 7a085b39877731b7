/*  test_manager_remote.c - managers served on tcp loopback (MPM/1): every
    call through a proxy, concurrent remote increments, a wrong key refused
    before any operation (also with a hand-made CALL), the serving process
    killed (bounded error), Pool tasks using the manager, and the SHA-256 /
    HMAC-SHA256 the handshake rests on, against the standards' vectors.

    The serving process is a child forked before this process makes any
    ZeroMQ context (the fork rule); it exits when its pipe closes.

    Run twice by ctest: over ZeroMQ (tcp://), and with
    MP_TEST_TRANSPORT=stream over a plain TCP stream (mpm+tcp://), where
    the tests that speak raw ZeroMQ are left to test_manager_stream.c. */
#include <signal.h>
#include <stdlib.h>
#include <zmq.h>

#include "../integration/test_tasks.c"
#include "base/hmac.h"
#include "manager/arena.h"
#include "manager/mpm.h"
#include "support.h"

#define KEY "s3cret-key"

static bool stream; /* MP_TEST_TRANSPORT=stream */
#define SERVE_EP (stream ? "mpm+tcp://127.0.0.1:0" : "tcp://127.0.0.1:0")
#define BOUND_PREFIX (stream ? "mpm+tcp://127.0.0.1:" : "tcp://127.0.0.1:")

typedef struct {
    pid_t pid;
    int ctl; /* write end: closing it stops the server */
    char endpoint[256];
} server_t;

/* The child: a manager with a dict "d" holding "seed": 1, served. */
static void serve_child(int ctl, int out)
{
    mp_manager_t *m;
    mp_mdict_t *d;
    mp_manager_server_t *s;
    if (mp_manager_new(NULL, &m) || mp_manager_named_dict(m, "d", &d))
        _exit(1);
    mp_obj_t *k = mp_obj_new_str("seed"), *v = mp_obj_new_int(1);
    mp_mdict_set(d, k, v);
    if (mp_manager_serve(m, SERVE_EP, KEY, strlen(KEY), &s))
        _exit(2);
    const char *ep = mp_manager_server_endpoint(s);
    if (write(out, ep, strlen(ep) + 1) < 0)
        _exit(3);
    close(out);
    char c;
    while (read(ctl, &c, 1) > 0) { /* until the parent closes it */
    }
    mp_manager_server_stop(&s);
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
    mp_manager_destroy(&m);
    _exit(0);
}

static void start_server(server_t *srv)
{
    int ctl[2], out[2];
    assert_int_equal(pipe(ctl), 0);
    assert_int_equal(pipe(out), 0);
    srv->pid = tu_fork();
    if (srv->pid == 0) {
        close(ctl[1]);
        close(out[0]);
        serve_child(ctl[0], out[1]);
    }
    close(ctl[0]);
    close(out[1]);
    srv->ctl = ctl[1];
    tu_read_line(out[0], srv->endpoint, sizeof srv->endpoint);
    assert_true(strncmp(srv->endpoint, BOUND_PREFIX, strlen(BOUND_PREFIX)) == 0);
}

static int stop_server(server_t *srv)
{
    close(srv->ctl);
    return tu_reap(srv->pid);
}

static mp_remote_t *connect_ok(const server_t *srv)
{
    mp_remote_t *r = NULL;
    mp_remote_options_t o = {.timeout_ms = 3000};
    assert_int_equal(mp_manager_connect(srv->endpoint, KEY, strlen(KEY), &o, &r), 0);
    return r;
}

static void test_remote_sha256_and_hmac_match_the_standard_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *key, *msg, *hex;
    } v[] = {
        {NULL, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {NULL, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {NULL, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"Jefe", "what do ya want for nothing?", /* RFC 4231 test case 2 */
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t out[32];
        char hex[65];
        if (v[i].key)
            mp__hmac_sha256(v[i].key, strlen(v[i].key), v[i].msg, strlen(v[i].msg), out);
        else
            mp__sha256(v[i].msg, strlen(v[i].msg), out);
        for (int k = 0; k < 32; k++)
            snprintf(hex + 2 * k, 3, "%02x", out[k]);
        assert_string_equal(hex, v[i].hex);
    }
    uint8_t key[131], out[32]; /* RFC 4231 test case 6: a key longer than a block */
    memset(key, 0xaa, sizeof key);
    const char *m = "Test Using Larger Than Block-Size Key - Hash Key First";
    mp__hmac_sha256(key, sizeof key, m, strlen(m), out);
    assert_int_equal(out[0], 0x60);
    assert_int_equal(out[31], 0x54);
}

/* A client process: connects itself, increments "hits" n times. */
static int remote_incr_child(void *arg)
{
    const server_t *srv = arg;
    mp_remote_t *r = NULL;
    mp_mdict_t *d;
    if (mp_manager_connect(srv->endpoint, KEY, strlen(KEY), NULL, &r) || mp_remote_dict(r, "d", &d))
        return 1;
    mp_obj_t *k = mp_obj_new_str("hits");
    int bad = 0;
    for (int i = 0; i < 500 && !bad; i++)
        bad = mp_mdict_incr(d, k, 1, NULL) != 0;
    mp_obj_destroy(&k);
    mp_remote_disconnect(&r);
    return bad;
}

static void test_remote_every_call_through_a_proxy(void **state)
{
    (void)state;
    server_t srv;
    start_server(&srv);
    mp_process_t *kids[2]; /* forked before this process has a ZeroMQ context */
    for (int i = 0; i < 2; i++)
        kids[i] = tu_start(remote_incr_child, &srv, NULL);
    mp_remote_t *r = connect_ok(&srv);
    mp_mdict_t *d;
    mp_mlist_t *l;
    mp_mns_t *ns;
    assert_int_equal(mp_remote_dict(r, "d", &d), 0);
    assert_int_equal(mp_remote_list(r, "l", &l), 0);
    assert_int_equal(mp_remote_namespace(r, "ns", &ns), 0);

    mp_obj_t *seed = mp_obj_new_str("seed"), *v = NULL, *k = mp_obj_new_str("k"),
             *val = mp_obj_new_int(5), *dflt = mp_obj_new_str("dflt");
    assert_int_equal(mp_mdict_get(d, seed, NULL, &v), 0); /* set by the server's process */
    assert_int_equal(mp_obj_int(v), 1);
    mp_obj_destroy(&v);
    assert_int_equal(mp_mdict_get(d, k, NULL, &v), MP_ENOENT);
    assert_int_equal(mp_mdict_get(d, k, dflt, &v), 0);
    assert_string_equal(mp_obj_str(v, NULL), "dflt");
    mp_obj_destroy(&v);
    assert_int_equal(mp_mdict_set(d, k, val), 0);
    assert_int_equal(mp_mdict_contains(d, k), 1);
    bool swapped;
    mp_obj_t *six = mp_obj_new_int(6);
    assert_int_equal(mp_mdict_cas(d, k, six, val, &swapped), 0);
    assert_false(swapped);
    assert_int_equal(mp_mdict_cas(d, k, val, six, &swapped), 0);
    assert_true(swapped);
    int64_t now;
    assert_int_equal(mp_mdict_incr(d, k, 10, &now), 0);
    assert_int_equal(now, 16);
    double f;
    assert_int_equal(mp_mdict_incr_float(d, k, 0.5, &f), 0);
    assert_true(f == 16.5);
    assert_int_equal(mp_mdict_setdefault(d, k, val, &v), 0);
    assert_true(mp_obj_float(v) == 16.5);
    mp_obj_destroy(&v);
    mp_obj_t *upd = mp_obj_new_map();
    mp_obj_map_add(upd, mp_obj_new_str("u1"), mp_obj_new_int(1));
    mp_obj_map_add(upd, mp_obj_new_str("u2"), mp_obj_new_array());
    assert_int_equal(mp_mdict_update(d, upd), 0);
    mp_obj_destroy(&upd);
    mp_obj_t *keys, *items;
    assert_int_equal(mp_mdict_keys(d, &keys), 0);
    assert_int_equal(mp_mdict_items(d, &items), 0);
    assert_true(mp_obj_len(keys) >= 4); /* seed k u1 u2 (+ hits, being written) */
    assert_string_equal(mp_obj_str(mp_obj_array_at(keys, 0), NULL), "seed");
    assert_int_equal(mp_obj_len(items), mp_obj_len(keys));
    mp_obj_destroy(&keys);
    mp_obj_destroy(&items);
    assert_int_equal(mp_mdict_pop(d, k, NULL, &v), 0);
    mp_obj_destroy(&v);
    assert_int_equal(mp_mdict_pop(d, k, dflt, &v), 0);
    assert_string_equal(mp_obj_str(v, NULL), "dflt");
    mp_obj_destroy(&v);
    assert_int_equal(mp_mdict_del(d, k), MP_ENOENT);
    assert_int_equal(mp_mdict_update_fn(d, k, NULL, NULL), MP_EINVAL); /* local only */

    /* list */
    for (int i = 0; i < 5; i++) {
        mp_obj_t *x = mp_obj_new_int(i);
        assert_int_equal(mp_mlist_append(l, x), 0);
        mp_obj_destroy(&x);
    }
    assert_int_equal(mp_mlist_insert(l, 0, val), 0); /* [5 0 1 2 3 4] */
    assert_int_equal(mp_mlist_set(l, -1, six), 0);   /* [5 0 1 2 3 6] */
    assert_int_equal(mp_mlist_get(l, -1, &v), 0);
    assert_int_equal(mp_obj_int(v), 6);
    mp_obj_destroy(&v);
    assert_int_equal(mp_mlist_get(l, 6, &v), MP_ERANGE);
    size_t n;
    assert_int_equal(mp_mlist_index(l, val, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(mp_mlist_count(l, six, &n), 0);
    assert_int_equal(n, 1);
    bool appended;
    assert_int_equal(mp_mlist_append_unique(l, six, &appended), 0);
    assert_false(appended);
    assert_int_equal(mp_mlist_pop(l, 0, &v), 0);
    assert_int_equal(mp_obj_int(v), 5);
    mp_obj_destroy(&v);
    assert_int_equal(mp_mlist_remove(l, six), 0);
    mp_obj_t *sl;
    assert_int_equal(mp_mlist_slice(l, 1, -1, &sl), 0); /* [0 1 2 3][1:-1] */
    assert_int_equal(mp_obj_len(sl), 2);
    assert_int_equal(mp_obj_int(mp_obj_array_at(sl, 0)), 1);
    mp_obj_destroy(&sl);
    mp_obj_t *ext = mp_obj_new_array();
    mp_obj_array_add(ext, mp_obj_new_int(9));
    assert_int_equal(mp_mlist_extend(l, ext), 0);
    mp_obj_destroy(&ext);
    assert_int_equal(mp_mlist_len(l, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(mp_mlist_clear(l), 0);
    assert_int_equal(mp_mlist_len(l, &n), 0);
    assert_int_equal(n, 0);

    /* Namespace */
    assert_int_equal(mp_mns_set(ns, "x", val), 0);
    assert_int_equal(mp_mns_get(ns, "x", &v), 0);
    assert_int_equal(mp_obj_int(v), 5);
    mp_obj_destroy(&v);
    assert_int_equal(mp_mns_del(ns, "x"), 0);
    assert_int_equal(mp_mns_get(ns, "x", &v), MP_ENOENT);

    /* two other processes incremented "hits" 500 times each, concurrently */
    for (int i = 0; i < 2; i++)
        assert_int_equal(tu_join(&kids[i], 30000), 0);
    mp_obj_t *hits = mp_obj_new_str("hits");
    assert_int_equal(mp_mdict_get(d, hits, NULL, &v), 0);
    assert_int_equal(mp_obj_int(v), 1000);
    mp_obj_destroy(&v);
    mp_obj_destroy(&hits);
    mp_obj_destroy(&seed);
    mp_obj_destroy(&k);
    mp_obj_destroy(&val);
    mp_obj_destroy(&six);
    mp_obj_destroy(&dflt);
    mp_remote_disconnect(&r);
    assert_null(r);
    assert_int_equal(stop_server(&srv), 0);
}

/* A remote consumer: takes 100 items from the queue "jobs", checks their
   order, and puts their sum on "done". */
static int consumer_child(void *arg)
{
    const server_t *srv = arg;
    mp_remote_t *r = NULL;
    mp_rqueue_t *jobs, *done;
    if (mp_manager_connect(srv->endpoint, KEY, strlen(KEY), NULL, &r) ||
        mp_remote_queue(r, "jobs", &jobs) || mp_remote_queue(r, "done", &done))
        return 1;
    int64_t sum = 0;
    for (int i = 0; i < 100; i++) {
        mp_obj_t *item = NULL;
        if (mp_rqueue_get(jobs, &item, 10000) || mp_obj_int(item) != i)
            return 2;
        sum += mp_obj_int(item);
        mp_obj_destroy(&item);
    }
    mp_obj_t *total = mp_obj_new_int(sum);
    int rc = mp_rqueue_put(done, total, 5000);
    mp_obj_destroy(&total);
    mp_remote_disconnect(&r);
    return rc ? 3 : 0;
}

static void test_remote_queues_between_processes(void **state)
{
    (void)state;
    server_t srv;
    start_server(&srv);
    mp_process_t *kid = tu_start(consumer_child, &srv, NULL);
    mp_remote_t *r = connect_ok(&srv);
    mp_rqueue_t *jobs, *done;
    assert_int_equal(mp_remote_queue(r, "jobs", &jobs), 0);
    assert_int_equal(mp_remote_queue(r, "done", &done), 0);
    mp_obj_t *got = NULL;
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_rqueue_get(done, &got, 200), MP_EEMPTY); /* nothing yet */
    assert_true(tu_now_ms() - t0 >= 150);
    for (int i = 0; i < 100; i++) {
        mp_obj_t *item = mp_obj_new_int(i);
        assert_int_equal(mp_rqueue_put(jobs, item, 1000), 0);
        mp_obj_destroy(&item);
    }
    assert_int_equal(mp_rqueue_get(done, &got, 20000), 0); /* the consumer's answer */
    assert_int_equal(mp_obj_int(got), 4950);
    mp_obj_destroy(&got);
    size_t n = 9;
    assert_int_equal(mp_rqueue_qsize(jobs, &n), 0);
    assert_int_equal(n, 0);
    /* a proxy only takes the calls of its kind */
    mp_mlist_t *l;
    mp_obj_t *k = mp_obj_new_int(1);
    assert_int_equal(mp_remote_list(r, "l", &l), 0);
    assert_int_equal(mp_mdict_set(l, k, k), MP_EINVAL);
    assert_int_equal(mp_mlist_append(jobs, k), MP_EINVAL);
    mp_obj_destroy(&k);
    assert_int_equal(tu_join(&kid, 30000), 0);
    mp_remote_disconnect(&r);
    assert_int_equal(stop_server(&srv), 0);
}

/* Sends one MPM/1 message on a raw DEALER. */
static void raw_send(void *s, uint8_t cmd, const mp_obj_t *body)
{
    char *data;
    size_t size;
    assert_int_equal(mp_obj_pack(body, &data, &size), 0);
    assert_int_equal(zmq_send(s, "MPM01", 5, ZMQ_SNDMORE), 5);
    assert_int_equal(zmq_send(s, &cmd, 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(s, data, size, 0), (int)size);
    free(data);
}

/* Receives one message: its command byte (0 when none within 2 s). */
static uint8_t raw_recv(void *s)
{
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 2000) <= 0)
        return 0;
    char buf[512];
    uint8_t cmd = 0;
    int more = 1, frame = 0;
    size_t len = sizeof more;
    while (more) {
        int n = zmq_recv(s, buf, sizeof buf, 0);
        if (frame++ == 1 && n == 1)
            cmd = (uint8_t)buf[0];
        zmq_getsockopt(s, ZMQ_RCVMORE, &more, &len);
    }
    return cmd;
}

static void test_remote_wrong_key_is_refused_before_any_operation(void **state)
{
    (void)state;
    server_t srv;
    start_server(&srv);
    mp_remote_t *r = NULL;
    mp_remote_options_t o = {.timeout_ms = 3000};
    assert_int_equal(mp_manager_connect(srv.endpoint, "wrong", 5, &o, &r), MP_EAUTH);
    assert_null(r);

    /* a client that ignores the refusal and sends a CALL (set "evil"), and
       one that sends a CALL without any handshake: both DENIED (0x83) */
    void *ctx = zmq_ctx_new(), *s = tu_dealer(ctx, srv.endpoint);
    mp_obj_t *empty = mp_obj_new_array(), *auth = mp_obj_new_array(), *callb = mp_obj_new_array();
    raw_send(s, 1, empty); /* HELLO */
    assert_int_equal(raw_recv(s), 0x81);
    uint8_t junk[32] = {0};
    mp_obj_array_add(auth, mp_obj_new_bin(junk, sizeof junk));
    raw_send(s, 2, auth); /* AUTH with a wrong MAC */
    assert_int_equal(raw_recv(s), 0x83);
    mp_obj_array_add(callb, mp_obj_new_int(1)); /* id */
    mp_obj_array_add(callb, mp_obj_new_int(2)); /* MR_D_SET */
    mp_obj_array_add(callb, mp_obj_new_int(1)); /* slot 1 */
    mp_obj_array_add(callb, mp_obj_new_str("evil"));
    mp_obj_array_add(callb, mp_obj_new_int(666));
    raw_send(s, 3, callb); /* CALL */
    assert_int_equal(raw_recv(s), 0x83);
    zmq_close(s);
    s = tu_dealer(ctx, srv.endpoint);
    raw_send(s, 3, callb); /* CALL, no handshake at all */
    assert_int_equal(raw_recv(s), 0x83);
    zmq_close(s);
    zmq_ctx_term(ctx);
    mp_obj_destroy(&empty);
    mp_obj_destroy(&auth);
    mp_obj_destroy(&callb);

    /* zero operations were done: the dict still holds only "seed" */
    r = connect_ok(&srv);
    mp_mdict_t *d;
    assert_int_equal(mp_remote_dict(r, "d", &d), 0);
    mp_obj_t *keys;
    assert_int_equal(mp_mdict_keys(d, &keys), 0);
    assert_int_equal(mp_obj_len(keys), 1);
    assert_string_equal(mp_obj_str(mp_obj_array_at(keys, 0), NULL), "seed");
    mp_obj_destroy(&keys);
    mp_remote_disconnect(&r);
    assert_int_equal(stop_server(&srv), 0);
}

static void test_remote_serving_process_killed_errors_within_the_timeout(void **state)
{
    (void)state;
    server_t srv;
    start_server(&srv);
    mp_remote_t *r = NULL;
    mp_remote_options_t o = {.timeout_ms = 500};
    assert_int_equal(mp_manager_connect(srv.endpoint, KEY, strlen(KEY), &o, &r), 0);
    mp_mdict_t *d;
    assert_int_equal(mp_remote_dict(r, "d", &d), 0);
    size_t n;
    assert_int_equal(mp_mdict_len(d, &n), 0);
    kill(srv.pid, SIGKILL);
    stop_server(&srv);
    for (int i = 0; i < 3; i++) { /* each call: an error within the bound, never a hang */
        uint64_t t0 = tu_now_ms();
        assert_int_equal(mp_mdict_len(d, &n), MP_EMANAGERLOST);
        uint64_t took = tu_now_ms() - t0;
        assert_true(took >= 400 && took < 1500);
    }
    mp_remote_disconnect(&r);
    /* connecting to nobody: the same bound */
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_manager_connect(srv.endpoint, KEY, strlen(KEY), &o, &r), MP_EMANAGERLOST);
    assert_true(tu_now_ms() - t0 < 1500);
}

/* ---- Pool tasks using a remote manager -------------------------------------------------- */

static void test_remote_pool_tasks_use_a_served_manager(void **state)
{
    (void)state;
    server_t srv;
    start_server(&srv);
    mp_pool_t *pool; /* forks its worker before this process has ZeroMQ threads */
    mp_pool_options_t po = {.processes = 2};
    assert_int_equal(mp_pool_new(&po, &pool), 0);
    mp_items_t *in = mp_items_new(), *out = NULL;
    for (int i = 0; i < 200; i++) {
        mp_items_add_tuple(in, 2);
        mp_items_add_str(in, srv.endpoint);
        mp_items_add_str(in, KEY);
    }
    assert_int_equal(mp_pool_starmap(pool, "remote_hit", in, 10, &out), 0);
    assert_int_equal(mp_items_nerrors(out), 0);
    int64_t max = 0;
    for (size_t i = 0; i < mp_items_len(out); i++) {
        int64_t v = 0;
        mp_items_int(out, i, &v);
        max = v > max ? v : max;
    }
    assert_int_equal(max, 200); /* every increment counted once */
    mp_items_destroy(&in);
    mp_items_destroy(&out);
    mp_pool_destroy(&pool);
    assert_int_equal(stop_server(&srv), 0);
}

/* Authenticates a raw DEALER with the right key (the test knows MPM/1). */
static void raw_auth(void *s)
{
    mp_obj_t *empty = mp_obj_new_array(), *auth = mp_obj_new_array();
    raw_send(s, 1, empty);
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&it, 1, 2000), 1);
    char f[3][256];
    int n[3], more = 1, i = 0;
    size_t len = sizeof more;
    while (more && i < 3) {
        n[i] = zmq_recv(s, f[i], sizeof f[i], 0);
        zmq_getsockopt(s, ZMQ_RCVMORE, &more, &len);
        i++;
    }
    mp_obj_t *body = NULL;
    assert_int_equal(mp_obj_unpack(f[2], (size_t)n[2], &body), 0);
    size_t nl;
    const uint8_t *nonce = mp_obj_bin(mp_obj_array_at(body, 0), &nl);
    uint8_t msg[32 + 17], mac[32];
    memcpy(msg, nonce, 32);
    memcpy(msg + 32, "mp-manager-client", 17);
    mp__hmac_sha256(KEY, strlen(KEY), msg, sizeof msg, mac);
    mp_obj_array_add(auth, mp_obj_new_bin(mac, sizeof mac));
    raw_send(s, 2, auth);
    assert_int_equal(raw_recv(s), 0x82); /* WELCOME */
    mp_obj_destroy(&body);
    mp_obj_destroy(&empty);
    mp_obj_destroy(&auth);
}

static void test_remote_bad_input_never_kills_the_server(void **state)
{
    (void)state;
    server_t srv;
    start_server(&srv);
    void *ctx = zmq_ctx_new(), *s = tu_dealer(ctx, srv.endpoint);
    raw_auth(s);
    /* frames that are not MPM/1: dropped without an answer */
    assert_int_equal(zmq_send(s, "x", 1, 0), 1);
    assert_int_equal(zmq_send(s, "MPM01", 5, ZMQ_SNDMORE), 5);
    assert_int_equal(zmq_send(s, "\x03", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(s, "\xdd\xff\xff\xff\xff", 5, 0), 5); /* an array of 4 G items */
    assert_int_equal(zmq_send(s, "MPX01", 5, ZMQ_SNDMORE), 5);
    assert_int_equal(zmq_send(s, "\x03", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(s, "\x90", 1, 0), 1);
    /* well-formed CALLs with nonsense: an unknown op, a slot out of range,
       a list op on the dict, missing arguments: each a REPLY with an error */
    static const int64_t calls[][3] = {
        {1, 999, 1}, {2, 2, 70000}, {3, 20, 1}, {4, 2, 1}, {5, 3, -1}};
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        mp_obj_t *b = mp_obj_new_array();
        for (int k = 0; k < 3; k++)
            mp_obj_array_add(b, mp_obj_new_int(calls[i][k]));
        raw_send(s, 3, b);
        mp_obj_destroy(&b);
        assert_int_equal(raw_recv(s), 0x84);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    /* and it still serves a proper client */
    mp_remote_t *r = connect_ok(&srv);
    mp_mdict_t *d;
    assert_int_equal(mp_remote_dict(r, "d", &d), 0);
    size_t n;
    assert_int_equal(mp_mdict_len(d, &n), 0);
    assert_int_equal(n, 1);
    mp_remote_disconnect(&r);
    assert_int_equal(stop_server(&srv), 0);
}

/* get_many / set_many: 10,000 keys in three BATCHes each way, on a remote
   dict and on the local one behind it; absent keys read MP_ENOENT; a BATCH
   inside a BATCH, or an empty one, is answered (REPLY, its code an error:
   serve.c) and the server serves on. */
static void test_remote_get_many_and_set_many(void **state)
{
    (void)state;
    enum { N = 10000, MISSING = 5 };
    mp_manager_t *m;
    mp_manager_server_t *srv;
    mp_manager_options_t mo = {.capacity = 256u << 20}; /* room for 72 MiB of values below */
    assert_int_equal(mp_manager_new(&mo, &m), 0);
    assert_int_equal(mp_manager_serve(m, SERVE_EP, KEY, strlen(KEY), &srv), 0);
    mp_remote_t *r = NULL;
    assert_int_equal(
        mp_manager_connect(mp_manager_server_endpoint(srv), KEY, strlen(KEY), NULL, &r), 0);
    mp_mdict_t *d, *local;
    assert_int_equal(mp_remote_dict(r, "many", &d), 0);
    assert_int_equal(mp_manager_named_dict(m, "many", &local), 0);
    mp_obj_t **keys = calloc(N + MISSING, sizeof *keys), **vals = calloc(N, sizeof *vals);
    mp_obj_t **got = calloc(N + MISSING, sizeof *got);
    int *rcs = calloc(N + MISSING, sizeof *rcs);
    for (int i = 0; i < N + MISSING; i++)
        keys[i] = mp_obj_new_int(i);
    for (int i = 0; i < N; i++)
        vals[i] = mp_obj_new_int((int64_t)i * 3);
    assert_int_equal(
        mp_mdict_set_many(d, (const mp_obj_t *const *)keys, (const mp_obj_t *const *)vals, N), 0);
    for (int pass = 0; pass < 2; pass++) { /* the remote proxy, then the local dict */
        mp_mdict_t *dd = pass ? local : d;
        assert_int_equal(
            mp_mdict_get_many(dd, (const mp_obj_t *const *)keys, N + MISSING, got, rcs), 0);
        for (int i = 0; i < N + MISSING; i++) {
            if (i < N) {
                assert_int_equal(rcs[i], 0);
                assert_int_equal(mp_obj_int(got[i]), (int64_t)i * 3);
            } else {
                assert_int_equal(rcs[i], MP_ENOENT);
                assert_null(got[i]);
            }
            mp_obj_destroy(&got[i]);
        }
    }
    size_t len = 0;
    assert_int_equal(mp_mdict_len(local, &len), 0);
    assert_int_equal(len, N);
    /* a nested BATCH and an empty one, sent raw: refused, and the server
       serves on (over a stream: test_manager_stream.c) */
    void *ctx = zmq_ctx_new(), *s = stream ? NULL : tu_dealer(ctx, mp_manager_server_endpoint(srv));
    if (s)
        raw_auth(s);
    for (int k = 0; s && k < 2; k++) {
        mp_obj_t *b = mp_obj_new_array(), *subs = mp_obj_new_array();
        mp_obj_array_add(b, mp_obj_new_int(7));
        mp_obj_array_add(b, mp_obj_new_int(MR_BATCH));
        mp_obj_array_add(b, mp_obj_new_int(1));
        if (k == 0) {
            mp_obj_t *inner = mp_obj_new_array();
            mp_obj_array_add(inner, mp_obj_new_int(0));
            mp_obj_array_add(inner, mp_obj_new_int(MR_BATCH));
            mp_obj_array_add(inner, mp_obj_new_int(1));
            mp_obj_array_add(subs, inner);
        }
        mp_obj_array_add(b, subs);
        raw_send(s, 3, b);
        mp_obj_destroy(&b);
        assert_int_equal(raw_recv(s), 0x84);
    }
    if (s)
        zmq_close(s);
    zmq_ctx_term(ctx);
    mp_obj_t *v = NULL;
    assert_int_equal(mp_mdict_get(d, keys[1], NULL, &v), 0);
    assert_int_equal(mp_obj_int(v), 3);
    mp_obj_destroy(&v);
    /* eight 9 MiB values: a batch of them is over the 64 MiB message limit
       both ways (MP_E2BIG), so it goes in halves, and every value arrives */
    enum { BIG = 8 };
    char *blob = malloc(9u << 20);
    memset(blob, 'x', 9u << 20);
    mp_obj_t *bigv[BIG], *bigk[BIG], *bigg[BIG];
    for (int i = 0; i < BIG; i++) {
        blob[0] = (char)('a' + i);
        bigv[i] = mp_obj_new_bin(blob, 9u << 20);
        bigk[i] = mp_obj_new_int(-1 - i);
    }
    assert_int_equal(
        mp_mdict_set_many(d, (const mp_obj_t *const *)bigk, (const mp_obj_t *const *)bigv, BIG), 0);
    assert_int_equal(mp_mdict_get_many(d, (const mp_obj_t *const *)bigk, BIG, bigg, NULL), 0);
    for (int i = 0; i < BIG; i++) {
        assert_true(mp_obj_equal(bigg[i], bigv[i]));
        mp_obj_destroy(&bigg[i]);
        mp_obj_destroy(&bigv[i]);
        mp_obj_destroy(&bigk[i]);
    }
    free(blob);
    /* no NULL key or value */
    const mp_obj_t *nullkey[1] = {NULL};
    assert_int_equal(mp_mdict_get_many(d, nullkey, 1, got, NULL), MP_EINVAL);
    for (int i = 0; i < N + MISSING; i++)
        mp_obj_destroy(&keys[i]);
    for (int i = 0; i < N; i++)
        mp_obj_destroy(&vals[i]);
    free(keys);
    free(vals);
    free(got);
    free(rcs);
    mp_remote_disconnect(&r);
    mp_manager_server_stop(&srv);
    mp_manager_destroy(&m);
}

/* The same over ipc://, in one process: a server thread and a client. */
static void test_remote_over_ipc(void **state)
{
    (void)state;
    char ep[128];
    snprintf(ep, sizeof ep, "ipc:///tmp/mp-test-manager-%d.ipc", (int)getpid());
    mp_manager_t *m;
    mp_manager_server_t *srv;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_serve(m, ep, KEY, strlen(KEY), &srv), 0);
    assert_string_equal(mp_manager_server_endpoint(srv), ep);
    mp_remote_t *r = NULL;
    assert_int_equal(mp_manager_connect(ep, KEY, strlen(KEY), NULL, &r), 0);
    mp_mlist_t *l, *local;
    assert_int_equal(mp_remote_list(r, "l", &l), 0);
    mp_obj_t *v = mp_obj_new_str("over ipc"), *got = NULL;
    assert_int_equal(mp_mlist_append(l, v), 0);
    assert_int_equal(mp_manager_named_list(m, "l", &local), 0); /* the same object */
    assert_int_equal(mp_mlist_get(local, 0, &got), 0);
    assert_true(mp_obj_equal(got, v));
    mp_obj_destroy(&got);
    mp_obj_destroy(&v);
    mp_remote_disconnect(&r);
    mp_manager_server_stop(&srv);
    mp_manager_destroy(&m);
    assert_int_equal(access(ep + 6, F_OK), -1); /* the socket file is gone */
}

/* The next MPM/1 message on sock within 5 s: its command, its body in *b. */
static uint8_t recv_body(void *sock, mp_obj_t **b)
{
    zmq_pollitem_t pi = {sock, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&pi, 1, 5000), 1);
    mpp_msg_t m;
    uint8_t cmd = 0;
    assert_int_equal(mpp_recv(sock, &m, 0), 0);
    assert_int_equal(mpm_parse(&m, 0, &cmd, b), 0);
    mpp_close(&m);
    return cmd;
}

/* 5,000 HELLOs from 5,000 sockets that never authenticate do not push an
   authenticated peer out of the server's table (it holds at most 256
   unauthenticated ones): its next CALL is answered, not DENIED. */
static void test_remote_hello_flood_never_evicts_an_authenticated_peer(void **state)
{
    (void)state;
    mp_manager_t *m;
    mp_manager_server_t *srv;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_serve(m, "tcp://127.0.0.1:0", KEY, strlen(KEY), &srv), 0);
    const char *ep = mp_manager_server_endpoint(srv);
    void *ctx = zmq_ctx_new(), *a = tu_dealer(ctx, ep);
    mp_obj_t *empty = mp_obj_new_array(), *b = NULL;
    assert_int_equal(mpm_send(a, NULL, 0, MPM_HELLO, empty), 0);
    assert_int_equal(recv_body(a, &b), MPM_CHALLENGE);
    size_t len = 0;
    const void *nonce = mp_obj_bin(mpm_arg(b, 0), &len);
    assert_int_equal(len, 32);
    uint8_t mac[32];
    mpm_auth_mac(KEY, strlen(KEY), nonce, mac);
    mp_obj_destroy(&b);
    mp_obj_t *auth = mp_obj_new_array();
    mp_obj_array_add(auth, mp_obj_new_bin(mac, sizeof mac));
    assert_int_equal(mpm_send(a, NULL, 0, MPM_AUTH, auth), 0);
    assert_int_equal(recv_body(a, &b), MPM_WELCOME);
    mp_obj_destroy(&b);
    for (int batch = 0; batch < 10; batch++) { /* a context per 500: fds stay bounded */
        void *fctx = zmq_ctx_new();
        for (int i = 0; i < 500; i++) {
            void *f = tu_dealer(fctx, ep);
            assert_int_equal(mpm_send(f, NULL, 0, MPM_HELLO, empty), 0);
            zmq_pollitem_t pi = {f, 0, ZMQ_POLLIN, 0}; /* the server met this one */
            assert_int_equal(zmq_poll(&pi, 1, 5000), 1);
            zmq_close(f);
        }
        zmq_ctx_term(fctx);
    }
    mp_obj_t *call = mp_obj_new_array();
    mp_obj_array_add(call, mp_obj_new_int(1));
    mp_obj_array_add(call, mp_obj_new_int(MR_OPEN));
    mp_obj_array_add(call, mp_obj_new_int(MO_DICT));
    mp_obj_array_add(call, mp_obj_new_nil());
    mp_obj_array_add(call, mp_obj_new_str("d"));
    assert_int_equal(mpm_send(a, NULL, 0, MPM_CALL, call), 0);
    assert_int_equal(recv_body(a, &b), MPM_REPLY); /* not DENIED: still known */
    assert_int_equal(mpm_arg_int(b, 1), 0);
    mp_obj_destroy(&b);
    mp_obj_destroy(&call);
    mp_obj_destroy(&auth);
    mp_obj_destroy(&empty);
    zmq_close(a);
    zmq_ctx_term(ctx);
    mp_manager_server_stop(&srv);
    mp_manager_destroy(&m);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const char *t = getenv("MP_TEST_TRANSPORT");
    stream = t && strcmp(t, "stream") == 0;
    const struct CMUnitTest both[] = {
        cmocka_unit_test_teardown(test_remote_pool_tasks_use_a_served_manager, tu_teardown),
        cmocka_unit_test_teardown(test_remote_every_call_through_a_proxy, tu_teardown),
        cmocka_unit_test_teardown(test_remote_serving_process_killed_errors_within_the_timeout,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_remote_get_many_and_set_many, tu_teardown),
        cmocka_unit_test_teardown(test_remote_queues_between_processes, tu_teardown),
    };
    if (stream)
        return cmocka_run_group_tests_name("manager_remote_stream", both, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_remote_sha256_and_hmac_match_the_standard_vectors,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_remote_pool_tasks_use_a_served_manager, tu_teardown),
        cmocka_unit_test_teardown(test_remote_every_call_through_a_proxy, tu_teardown),
        cmocka_unit_test_teardown(test_remote_wrong_key_is_refused_before_any_operation,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_remote_serving_process_killed_errors_within_the_timeout,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_remote_bad_input_never_kills_the_server, tu_teardown),
        cmocka_unit_test_teardown(test_remote_over_ipc, tu_teardown),
        cmocka_unit_test_teardown(test_remote_get_many_and_set_many, tu_teardown),
        cmocka_unit_test_teardown(test_remote_hello_flood_never_evicts_an_authenticated_peer,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_remote_queues_between_processes, tu_teardown),
    };
    return cmocka_run_group_tests_name("manager_remote", tests, NULL, NULL);
}
