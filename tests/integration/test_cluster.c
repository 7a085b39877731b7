/*  test_cluster.c - the distributed pool through the real programs: one
    mp-broker on tcp://127.0.0.1 (port chosen by the broker) and mp-worker
    processes loading libtest_tasks.so. Heartbeats are 500 ms so that death
    detection (3 intervals) keeps the suite short.

    With MP_TEST_WORKERS=stream (ctest: cluster_stream) the broker also
    listens on mpp+tcp:// and every worker connects there, speaking MPP/1
    on a plain stream (PROTOCOL.md 9.3): the same tests, and those of the
    stream port itself at the end.

    Every process a test starts is killed and reaped in its teardown.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "support.h"

#define HB "500"

static char endpoint[256];  /* the broker's tcp://: pools */
static char wendpoint[256]; /* where workers connect: endpoint, or its mpp+tcp:// */
static bool stream_workers; /* MP_TEST_WORKERS=stream */

/* Starts mp-broker bound to `bind` (and, for stream workers, to
   wbind, or a free port), and sets the endpoints to what it printed. */
static pid_t start_broker_both(const char *bind, const char *wbind)
{
    if (!stream_workers) {
        pid_t pid = tu_start_broker(bind, HB, endpoint, sizeof endpoint);
        assert_true(strncmp(endpoint, "tcp://127.0.0.1:", 16) == 0);
        snprintf(wendpoint, sizeof wendpoint, "%s", endpoint);
        return pid;
    }
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char *argv[] = {MP_BUILD_DIR "/broker/mp-broker",
                    "--bind",
                    (char *)bind,
                    "--bind",
                    (char *)(wbind ? wbind : "mpp+tcp://127.0.0.1:0"),
                    "--heartbeat",
                    HB,
                    "-q",
                    NULL};
    pid_t pid = tu_spawn(argv, fds[1]);
    close(fds[1]);
    /* one line per endpoint; tu_read_line reads a byte at a time, and
       closes what it read (here a duplicate, then the pipe) */
    tu_read_line(dup(fds[0]), endpoint, sizeof endpoint);
    tu_read_line(fds[0], wendpoint, sizeof wendpoint);
    assert_true(strncmp(endpoint, "tcp://127.0.0.1:", 16) == 0);
    assert_true(strncmp(wendpoint, "mpp+tcp://127.0.0.1:", 20) == 0);
    return pid;
}

static pid_t start_broker_at(const char *bind)
{
    return start_broker_both(bind, NULL);
}

static pid_t start_broker(void)
{
    return start_broker_at("tcp://127.0.0.1:0");
}

static pid_t start_worker(const char *processes)
{
    return tu_start_worker(wendpoint, processes, HB);
}

static mp_pool_t *connect_pool(int want_processes)
{
    mp_pool_options_t o = {.broker = endpoint, .heartbeat_ms = 500, .connect_timeout_ms = 5000};
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    assert_int_equal(tu_wait_processes(pool, want_processes, 5000), want_processes);
    return pool;
}

/* Two workers of 2 executors, and a map of 10,000 slow squares a quarter
   done: the pid of the first worker (both are busy). */
static pid_t start_busy_map(mp_pool_t **pool, mp_items_t **in, mp_async_t **ar)
{
    start_broker();
    pid_t first = start_worker("2");
    start_worker("2");
    *pool = connect_pool(4);
    *in = tu_range(10000);
    mp_call_options_t co = {.chunksize = 25};
    assert_int_equal(mp_pool_map_async(*pool, "slow_square", *in, &co, ar), 0);
    size_t done = 0;
    while (done < 2500 && mp_async_wait(*ar, 5) == MP_ETIMEDOUT)
        mp_async_progress(*ar, &done, NULL);
    assert_true(done >= 2500 && done < 10000); /* still running */
    return first;
}

static void test_cluster_calls_in_order_and_work_shared_by_two_workers(void **state)
{
    (void)state;
    start_broker();
    start_worker("1");
    start_worker("1");
    mp_pool_t *pool = connect_pool(2);

    mp_obj_t *args = mp_obj_new_array(), *v = NULL;
    mp_obj_array_add(args, mp_obj_new_int(9));
    assert_int_equal(mp_pool_apply(pool, "square", args, &v), 0);
    assert_int_equal(mp_obj_int(v), 81);
    mp_obj_destroy(&v);
    mp_obj_destroy(&args);

    mp_items_t *in = tu_range(3000), *out = NULL;
    assert_int_equal(mp_pool_map(pool, "slow_square", in, 10, &out), 0);
    tu_assert_squares(out, 3000);
    mp_items_destroy(&out);
    mp_items_destroy(&in);

    in = mp_items_new();
    for (int i = 0; i < 100; i++) {
        mp_items_add_tuple(in, 2);
        mp_items_add_int(in, i);
        mp_items_add_int(in, -2 * i);
    }
    assert_int_equal(mp_pool_starmap(pool, "add", in, 3, &out), 0);
    for (int i = 0; i < 100; i++) {
        int64_t x;
        mp_items_int(out, (size_t)i, &x);
        assert_int_equal(x, -i);
    }
    mp_items_destroy(&out);
    mp_items_destroy(&in);

    /* both workers did part of the work */
    mp_obj_t *status = NULL;
    assert_int_equal(mp_pool_status(pool, 5000, &status), 0);
    const mp_obj_t *workers = mp_obj_map_get(status, "workers");
    assert_int_equal(mp_obj_len(workers), 2);
    for (size_t i = 0; i < 2; i++) {
        const mp_obj_t *w = mp_obj_array_at(workers, i);
        assert_true(mp_obj_int(mp_obj_map_get(w, "done")) > 100);
        assert_int_equal(mp_obj_int(mp_obj_map_get(w, "processes")), 1);
    }
    assert_int_equal(mp_obj_int(mp_obj_map_get(status, "done")), 1 + 3000 + 100);
    mp_obj_destroy(&status);
    mp_pool_destroy(&pool);
}

static void test_cluster_worker_killed_mid_map_every_result_once(void **state)
{
    (void)state;
    mp_pool_t *pool;
    mp_items_t *in;
    mp_async_t *ar;
    pid_t victim = start_busy_map(&pool, &in, &ar);
    kill(victim, SIGKILL);
    tu_reap(victim);
    if (stream_workers) { /* its stream ended: lost at once, not after 3 heartbeats */
        uint64_t t0 = tu_now_ms();
        assert_true(TU_WAIT_UNTIL(mp_pool_processes(pool) == 2, atoi(HB)));
        printf("# a stream worker SIGKILLed: the pool counts 2 executors after %llu ms\n",
               (unsigned long long)(tu_now_ms() - t0));
    }
    const mp_items_t *got;
    assert_int_equal(mp_async_get(ar, 30000, &got), 0);
    tu_assert_squares(got, 10000);
    mp_async_destroy(&ar);
    mp_items_destroy(&in);
    assert_int_equal(mp_pool_processes(pool), 2);
    mp_pool_destroy(&pool);
}

static void test_cluster_poison_task_is_worker_lost_and_the_rest_completes(void **state)
{
    (void)state;
    start_broker();
    start_worker("2");
    mp_pool_t *pool = connect_pool(2);
    mp_items_t *in = tu_pairs_with(200, 77), *out = NULL;
    assert_int_equal(mp_pool_starmap(pool, "crash_on", in, 20, &out), MP_EWORKERLOST);
    assert_int_equal(mp_items_nerrors(out), 1);
    const mp_task_error_t *e = mp_items_error(out, 77);
    assert_non_null(e);
    assert_non_null(strstr(e->message, "killed by signal 11 (SIGSEGV)"));
    assert_non_null(strstr(e->message, "after 3 attempts"));
    tu_assert_indexes(out, 200, 77);
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

static void test_cluster_unknown_task_is_an_error(void **state)
{
    (void)state;
    start_broker();
    start_worker("1");
    mp_pool_t *pool = connect_pool(1);
    mp_async_t *ar;
    assert_int_equal(mp_pool_apply_async(pool, "not_a_task", NULL, NULL, &ar), 0);
    mp_obj_t *v = NULL;
    assert_int_equal(mp_async_get_obj(ar, 5000, &v), MP_EUNKNOWNTASK);
    assert_non_null(strstr(mp_async_error(ar)->message, "not_a_task"));
    mp_async_destroy(&ar);
    /* a misspelt name: the message names what is served, closest first */
    assert_int_equal(mp_pool_apply_async(pool, "sqare", NULL, NULL, &ar), 0);
    assert_int_equal(mp_async_get_obj(ar, 5000, &v), MP_EUNKNOWNTASK);
    const char *msg = mp_async_error(ar)->message;
    assert_non_null(strstr(msg, "no worker serves 'sqare'; served: 'square', "));
    mp_async_destroy(&ar);
    mp_pool_destroy(&pool);
}

/* A broker address that cannot work fails at once, saying why; nothing
   listening fails at the connect timeout as "never reached", not "lost". */
static void test_cluster_bad_addresses_fail_distinctly(void **state)
{
    (void)state;
    static const struct {
        const char *address;
        int rc;
    } fast[] = {{"127.0.0.1:5555", MP_EINVAL},
                {"tcp://127.0.0.1", MP_EINVAL},
                {"tcp://127.0.0.1:port", MP_EINVAL},
                {"udp://127.0.0.1:5555", MP_EINVAL},
                {"tcp://no-such-host.invalid:5555", MP_EHOSTUNKNOWN}};
    for (size_t i = 0; i < sizeof fast / sizeof *fast; i++) {
        mp_pool_t *pool = NULL;
        uint64_t t0 = tu_now_ms();
        mp_pool_options_t o = {.broker = fast[i].address, .connect_timeout_ms = 20000};
        assert_int_equal(mp_pool_new(&o, &pool), fast[i].rc);
        assert_null(pool);
        assert_true(tu_now_ms() - t0 < 5000);
        char why[512];
        assert_int_equal(mp_broker_address_check(fast[i].address, why, sizeof why), fast[i].rc);
        assert_non_null(
            strstr(why, fast[i].rc == MP_EINVAL ? "tcp://HOST:PORT" : "cannot resolve"));
    }
    char why[8]; /* a short buffer: cut, and still a string */
    assert_int_equal(mp_broker_address_check("nonsense", why, sizeof why), MP_EINVAL);
    assert_int_equal(strlen(why), sizeof why - 1);
    assert_int_equal(mp_broker_address_check("tcp://127.0.0.1:5555", NULL, 0), 0);
    assert_int_equal(mp_broker_address_check("tcp://[::1]:5555", NULL, 0), 0);
    assert_int_equal(mp_broker_address_check("ipc:///tmp/x.ipc", NULL, 0), 0);

    char nobody[64];
    snprintf(nobody, sizeof nobody, "tcp://127.0.0.1:%d", tu_free_port());
    mp_pool_t *pool = NULL;
    uint64_t t0 = tu_now_ms();
    mp_pool_options_t o = {.broker = nobody, .connect_timeout_ms = 800};
    assert_int_equal(mp_pool_new(&o, &pool), MP_EBROKERUNREACHABLE);
    TU_ASSERT_ELAPSED(t0, 800, 1500);
    assert_null(pool);
}

static void test_cluster_broker_killed_mid_map_fails_within_bound(void **state)
{
    (void)state;
    pid_t broker = start_broker();
    start_worker("2");
    /* not waiting for it to come back (reconnect_timeout_ms < 0): the
       calls fail once it is found silent */
    mp_pool_options_t o = {.broker = endpoint,
                           .heartbeat_ms = 500,
                           .connect_timeout_ms = 5000,
                           .reconnect_timeout_ms = -1};
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    assert_int_equal(tu_wait_processes(pool, 2, 5000), 2);
    mp_items_t *in = tu_repeat(400, 50);
    mp_async_t *ar;
    mp_call_options_t co = {.chunksize = 1};
    assert_int_equal(mp_pool_map_async(pool, "sleep_ms", in, &co, &ar), 0);
    usleep(300000);
    kill(broker, SIGKILL);
    tu_reap(broker);
    uint64_t t0 = tu_now_ms();
    const mp_items_t *got;
    assert_int_equal(mp_async_get(ar, 10000, &got), MP_EBROKERLOST);
    uint64_t took = tu_now_ms() - t0;
    assert_true(took < 3500); /* 3 heartbeats of 500 ms, plus a margin */
    assert_true(mp_items_nerrors(got) > 0);
    mp_async_destroy(&ar);
    mp_items_destroy(&in);
    /* a call while the broker is gone fails too, and does not hang */
    mp_obj_t *v = NULL;
    assert_int_equal(mp_pool_apply(pool, "square", NULL, &v), MP_EBROKERLOST);
    mp_pool_destroy(&pool);
}

static void test_cluster_bad_input_never_kills_the_broker(void **state)
{
    (void)state;
    start_broker();
    start_worker("1");
    void *ctx = zmq_ctx_new();
    void *s = tu_dealer(ctx, endpoint);
    uint8_t hello_cmd = 0x01, submit = 0x02, ready = 0x01;
    const uint8_t bomb[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    const uint8_t hello_hdr[] = {0x93, 0xa1, 'x', 0xcd, 0x03, 0xe8, 0x01};
    /* SUBMIT [7, "square", 0, 5] with an items frame of 3 */
    const uint8_t sub_hdr[] = {0x94, 0x07, 0xa6, 's', 'q', 'u', 'a', 'r', 'e', 0x00, 0x05};
    const uint8_t items3[] = {0x93, 0x01, 0x02, 0x03};
    const uint8_t lying_ready[] = {0x95, 0xdd, 0x7f, 0xff, 0xff, 0xff};
    char many[12][1];
    const void *d[12];
    size_t z[12];
    for (int i = 0; i < 12; i++) {
        d[i] = many[i];
        z[i] = 1;
        many[i][0] = 'x';
    }
    tu_send_frames(s, 1, d, z);  /* one garbage frame */
    tu_send_frames(s, 12, d, z); /* too many frames */
    tu_send_frames(s, 4, (const void *[]){"XXXXX", &submit, bomb, "y"}, (size_t[]){5, 1, 5, 1});
    tu_send_frames(s, 4, (const void *[]){"MPC01", &submit, bomb, "y"}, (size_t[]){5, 1, 5, 1});
    tu_send_frames(s, 3, (const void *[]){"MPW01", &ready, lying_ready}, (size_t[]){5, 1, 6});
    tu_send_frames(s, 3, (const void *[]){"MPC01", &hello_cmd, hello_hdr},
                   (size_t[]){5, 1, sizeof hello_hdr});
    tu_send_frames(s, 4, (const void *[]){"MPC01", &submit, sub_hdr, items3},
                   (size_t[]){5, 1, sizeof sub_hdr, sizeof items3});
    /* the broker answers that SUBMIT with FAILED BAD_REQUEST for chunk 7 */
    zmq_pollitem_t pi = {s, 0, ZMQ_POLLIN, 0};
    bool got_failed = false;
    for (int tries = 0; tries < 20 && !got_failed; tries++) {
        if (zmq_poll(&pi, 1, 250) <= 0)
            continue;
        zmq_msg_t f[4];
        int n = 0, more = 1;
        while (more && n < 4) {
            zmq_msg_init(&f[n]);
            zmq_msg_recv(&f[n], s, 0);
            more = zmq_msg_more(&f[n]);
            n++;
        }
        if (n >= 3 && zmq_msg_size(&f[1]) == 1 && *(uint8_t *)zmq_msg_data(&f[1]) == 0x83) {
            const uint8_t *h = zmq_msg_data(&f[2]);
            got_failed = zmq_msg_size(&f[2]) > 3 && h[1] == 0x07 && h[2] == 0xd1; /* -4107 int16 */
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    }
    assert_true(got_failed);
    zmq_close(s);
    zmq_ctx_term(ctx);

    /* and it still serves a good client */
    mp_pool_t *pool = connect_pool(1);
    tu_assert_map_squares(pool, 100);
    mp_pool_destroy(&pool);
}

static void test_cluster_worker_started_before_its_broker_joins(void **state)
{
    (void)state;
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", tu_free_port());
    if (stream_workers)
        snprintf(wendpoint, sizeof wendpoint, "mpp+tcp://127.0.0.1:%d", tu_free_port());
    else
        snprintf(wendpoint, sizeof wendpoint, "%s", endpoint);
    char bind[256], wbind[256];
    snprintf(bind, sizeof bind, "%s", endpoint);
    snprintf(wbind, sizeof wbind, "%s", wendpoint);
    pid_t worker = start_worker("2");
    usleep(1500000); /* it retries: nothing listens yet */
    assert_int_equal(waitpid(worker, NULL, WNOHANG), 0);
    start_broker_both(bind, wbind);
    assert_string_equal(endpoint, bind);
    assert_string_equal(wendpoint, wbind);
    mp_pool_t *pool = connect_pool(2); /* it joined */
    mp_items_t *in = tu_range(1000), *out = NULL;
    assert_int_equal(mp_pool_map(pool, "square", in, 0, &out), 0);
    tu_assert_squares(out, 1000);
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

static void test_cluster_sigterm_on_a_busy_worker_loses_no_task(void **state)
{
    (void)state;
    mp_pool_t *pool;
    mp_items_t *in;
    mp_async_t *ar;
    pid_t victim = start_busy_map(&pool, &in, &ar); /* the victim is busy */
    kill(victim, SIGTERM);
    int status = tu_wait_exit(victim, 3000); /* it hands back and exits at once */
    assert_true(status != -1 && WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    const mp_items_t *got;
    assert_int_equal(mp_async_get(ar, 30000, &got), 0);
    tu_assert_squares(got, 10000); /* every item, once, no error */
    mp_async_destroy(&ar);
    mp_items_destroy(&in);
    assert_int_equal(mp_pool_processes(pool), 2);
    mp_pool_destroy(&pool);
}

static void test_cluster_tasks_on_mp_workers_use_a_served_manager(void **state)
{
    (void)state;
    start_broker();
    start_worker("2");
    start_worker("2");
    mp_manager_t *m;
    mp_mdict_t *d;
    mp_manager_server_t *srv;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    assert_int_equal(mp_manager_named_dict(m, "d", &d), 0);
    assert_int_equal(mp_manager_serve(m, "tcp://127.0.0.1:0", "k3y", 3, &srv), 0);
    mp_pool_t *pool = connect_pool(4);
    mp_items_t *in = mp_items_new(), *out = NULL;
    for (int i = 0; i < 400; i++) {
        mp_items_add_tuple(in, 2);
        mp_items_add_str(in, mp_manager_server_endpoint(srv));
        mp_items_add_str(in, "k3y");
    }
    assert_int_equal(mp_pool_starmap(pool, "remote_hit", in, 5, &out), 0);
    assert_int_equal(mp_items_nerrors(out), 0);
    /* the manager is this process's: read it directly */
    mp_obj_t *k = mp_obj_new_str("pool_hits"), *v = NULL;
    assert_int_equal(mp_mdict_get(d, k, NULL, &v), 0);
    assert_int_equal(mp_obj_int(v), 400);
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
    mp_items_destroy(&in);
    mp_items_destroy(&out);
    mp_pool_destroy(&pool);
    mp_manager_server_stop(&srv);
    mp_manager_destroy(&m);
}

/* ---- the stream port (MP_TEST_WORKERS=stream only) ---------------------------------- */

/* A plain TCP connection to wendpoint's port. */
static int stream_connect(void)
{
    const char *colon = strrchr(wendpoint, ':');
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)atoi(colon + 1)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* One MPP/1 message framed for a stream (PROTOCOL.md 9.2): its size. */
static size_t frame(uint8_t *out, int n, const void *const *d, const size_t *z)
{
    size_t total = 1;
    for (int i = 0; i < n; i++)
        total += 4 + z[i];
    put32(out, (uint32_t)total);
    out[4] = (uint8_t)n;
    uint8_t *p = out + 5;
    for (int i = 0; i < n; i++) {
        put32(p, (uint32_t)z[i]);
        memcpy(p + 4, d[i], z[i]);
        p += 4 + z[i];
    }
    return 4 + total;
}

/* Whether the broker closed fd within ms (reads to EOF). */
static bool closed_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char b[4096];
    for (int waited = 0; waited < ms; waited += 50) {
        if (poll(&p, 1, 50) == 1) {
            ssize_t r = read(fd, b, sizeof b);
            if (r <= 0)
                return true;
        }
    }
    return false;
}

static void test_cluster_stream_port_survives_hostile_bytes(void **state)
{
    (void)state;
    if (!stream_workers)
        skip();
    pid_t broker = start_broker();
    start_worker("2");
    mp_pool_t *pool = connect_pool(2);
    /* a ZeroMQ peer that takes the stream worker's id (slot 0, generation
       0) to speak for it: its READY of 50 processes is dropped */
    void *ctx = zmq_ctx_new(), *imp = zmq_socket(ctx, ZMQ_DEALER);
    int no_linger = 0;
    zmq_setsockopt(imp, ZMQ_LINGER, &no_linger, sizeof no_linger);
    assert_int_equal(zmq_setsockopt(imp, ZMQ_ROUTING_ID, "\0\0\0\0\0\0\0\0\0", 9), 0);
    assert_int_equal(zmq_connect(imp, endpoint), 0);
    const uint8_t ready_cmd = 0x01, evil[] = {0x95, 0x91, 0xa6, 's',  'q',  'u', 'a',
                                              'r',  'e',  0x32, 0x64, 0xa1, 'e', 0x01};
    tu_send_frames(imp, 3, (const void *[]){"MPW01", &ready_cmd, evil},
                   (size_t[]){5, 1, sizeof evil});
    usleep(1500000); /* three heartbeats: the pool hears the total */
    assert_int_equal(mp_pool_processes(pool), 2);
    zmq_close(imp);
    zmq_ctx_term(ctx);
    /* not MPP/1 framing: each closes its own connection, at once */
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    uint8_t zero[5] = {0, 0, 0, 0, 0};                 /* a length of 0 */
    uint8_t lying[13] = {0, 0, 0, 8, 3, 0, 0, 0, 200}; /* a frame longer than its message */
    uint8_t huge[5] = {0x7f, 0xff, 0xff, 0xff, 4};     /* over the message limit */
    const struct {
        const void *p;
        size_t n;
    } bad[] = {{http, strlen(http)}, {zero, 5}, {lying, 13}, {huge, 5}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int fd = stream_connect();
        assert_int_equal(write(fd, bad[i].p, bad[i].n), (ssize_t)bad[i].n);
        assert_true(closed_within(fd, 3000));
        close(fd);
    }
    /* well framed nonsense is malformed MPP/1: dropped, the connection stays */
    uint8_t msg[256], cmd = 0x01;
    int fd = stream_connect();
    size_t n = frame(msg, 3, (const void *[]){"XXXXX", &cmd, "\x90"}, (size_t[]){5, 1, 1});
    assert_int_equal(write(fd, msg, n), (ssize_t)n);
    assert_false(closed_within(fd, 300));
    /* and a client speaking on the stream is answered: HELLO, WELCOME */
    const uint8_t hello[] = {0x93, 0xa1, 'x', 0xcd, 0x03, 0xe8, 0x01};
    n = frame(msg, 3, (const void *[]){"MPC01", &cmd, hello}, (size_t[]){5, 1, sizeof hello});
    assert_int_equal(write(fd, msg, n), (ssize_t)n);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 3000), 1);
    uint8_t got[256];
    ssize_t r = read(fd, got, sizeof got);
    assert_true(r >= 5 + 4 + 5 + 4 + 1);
    assert_memory_equal(got + 9, "MPC01", 5); /* frame 0: the signature */
    assert_int_equal(got[18], 0x81);          /* frame 1: WELCOME */
    close(fd);
    /* 300 connections of random bytes at once, a half frame left on one */
    int many[300];
    uint8_t junk[512];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    for (int i = 0; i < 300; i++) {
        many[i] = stream_connect();
        if (i == 0) {
            n = frame(msg, 3, (const void *[]){"MPW01", &cmd, hello}, (size_t[]){5, 1, 7});
            assert_int_equal(write(many[i], msg, n - 3), (ssize_t)(n - 3));
        } else {
            assert_true(write(many[i], junk + i, 100) > 0);
        }
    }
    tu_assert_map_squares(pool, 2000); /* the workers on the stream serve meanwhile */
    for (int i = 0; i < 300; i++)
        close(many[i]);
    tu_assert_map_squares(pool, 1000);
    assert_int_equal(waitpid(broker, NULL, WNOHANG), 0); /* alive */
    mp_pool_destroy(&pool);
}

static void test_cluster_stream_worker_rejoins_a_restarted_broker(void **state)
{
    (void)state;
    if (!stream_workers)
        skip();
    pid_t broker = start_broker();
    char bind[256], wbind[256];
    snprintf(bind, sizeof bind, "%s", endpoint);
    snprintf(wbind, sizeof wbind, "%s", wendpoint);
    start_worker("2");
    mp_pool_t *pool = connect_pool(2);
    tu_assert_map_squares(pool, 500);
    mp_pool_destroy(&pool);
    kill(broker, SIGKILL);
    tu_wait_exit(broker, 3000);
    start_broker_both(bind, wbind); /* the same ports */
    pool = connect_pool(2);         /* the worker connected again */
    tu_assert_map_squares(pool, 3000);
    mp_pool_destroy(&pool);
}

static void test_cluster_stream_endpoints_refused_where_they_must_be(void **state)
{
    (void)state;
    if (!stream_workers)
        skip();
    start_broker();
    /* a pool speaks ZeroMQ only: a stream endpoint is the workers' */
    mp_pool_options_t o = {.broker = wendpoint, .connect_timeout_ms = 1000};
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&o, &pool), MP_EINVAL);
    /* no CURVE on a plain stream: a CURVE broker does not open one, nor
       does any broker off loopback without insecure */
    const char *binds[] = {"tcp://127.0.0.1:0", "mpp+tcp://127.0.0.1:0"};
    mp_broker_options_t bo = {.binds = binds,
                              .nbinds = 2,
                              .curve_key = "/nonexistent/broker.key_secret",
                              .allow_dir = "/nonexistent"};
    mp_broker_t *b = NULL;
    assert_int_equal(mp_broker_new(&bo, &b), MP_EINSECURE);
    const char *open_bind[] = {"mpp+tcp://0.0.0.0:0"};
    mp_broker_options_t open = {.binds = open_bind, .nbinds = 1};
    assert_int_equal(mp_broker_new(&open, &b), MP_EINSECURE);
    /* nor a worker asked for keys on one */
    char *argv[] = {MP_BUILD_DIR "/worker/mp-worker",
                    "--broker",
                    wendpoint,
                    "--tasks",
                    MP_BUILD_DIR "/tests/libtest_tasks.so",
                    "--curve-key",
                    "/nonexistent/w",
                    "--curve-server-key",
                    "/nonexistent/b",
                    "-q",
                    NULL};
    pid_t w = tu_spawn(argv, -1);
    int status = tu_wait_exit(w, 5000);
    assert_true(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    stream_workers = getenv("MP_TEST_WORKERS") && !strcmp(getenv("MP_TEST_WORKERS"), "stream");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_cluster_calls_in_order_and_work_shared_by_two_workers,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_cluster_worker_killed_mid_map_every_result_once,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_cluster_poison_task_is_worker_lost_and_the_rest_completes,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_cluster_unknown_task_is_an_error, tu_kill_teardown),
        cmocka_unit_test_teardown(test_cluster_bad_addresses_fail_distinctly, tu_kill_teardown),
        cmocka_unit_test_teardown(test_cluster_broker_killed_mid_map_fails_within_bound,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_cluster_bad_input_never_kills_the_broker, tu_kill_teardown),
        cmocka_unit_test_teardown(test_cluster_worker_started_before_its_broker_joins,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_cluster_sigterm_on_a_busy_worker_loses_no_task,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_cluster_tasks_on_mp_workers_use_a_served_manager,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_cluster_stream_port_survives_hostile_bytes,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_cluster_stream_worker_rejoins_a_restarted_broker,
                                  tu_kill_teardown),
        cmocka_unit_test_teardown(test_cluster_stream_endpoints_refused_where_they_must_be,
                                  tu_kill_teardown),
    };
    return cmocka_run_group_tests_name(stream_workers ? "cluster_stream" : "cluster", tests, NULL,
                                       NULL);
}
