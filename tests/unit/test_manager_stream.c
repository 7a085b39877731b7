/*  test_manager_stream.c - MPM/1 over a plain stream (mpm+tcp://,
    mpm+ipc://; docs/MANAGER.md 6.3), spoken raw: a wrong key and calls
    before the handshake do nothing; hostile bytes close only their own
    connection; a flood of connections that never authenticate does not
    drop an authenticated one; a client stuck not reading its replies does
    not stall the others; the server restarting between calls, or while a
    call waits, is met by reconnecting; 40 MiB values and 1,000 pipelined
    calls arrive whole and in order; endpoints and the listening policy.
    The calls themselves, over both transports: test_manager_remote.c. */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "base/base.h"
#include "base/hmac.h"
#include "manager/arena.h"
#include "manager/mpm.h"
#include "manager/stream.h"
#include "support.h"

#define KEY "s3cret-key"
#define EP "mpm+tcp://127.0.0.1:0"

static uint64_t deadline_in(int ms)
{
    return mp__now_ns() + (uint64_t)ms * 1000000ull;
}

typedef struct {
    int fd;
    mpms_in_t in;
} raw_t;

static raw_t raw_open(const char *ep)
{
    raw_t r = {.fd = -1, .in = {.limit = 1u << 30}};
    assert_int_equal(mpms_connect(ep, deadline_in(2000), &r.fd), 0);
    return r;
}

static void raw_close(raw_t *r)
{
    close(r->fd);
    mpms_in_free(&r->in);
}

static void raw_send(raw_t *r, uint8_t cmd, const mp_obj_t *body)
{
    assert_int_equal(mpms_send(r->fd, cmd, body, deadline_in(2000)), 0);
}

/* The next message's command (its body in *b when b), or 0: the server
   closed the connection or said nothing within 3 s. */
static uint8_t raw_recv(raw_t *r, mp_obj_t **b)
{
    uint8_t cmd = 0;
    mp_obj_t *body = NULL;
    int rc = mpms_wait(&r->in, r->fd, deadline_in(3000), 0, &cmd, &body);
    if (b)
        *b = body;
    else
        mp_obj_destroy(&body);
    return rc ? 0 : cmd;
}

/* True when the server closed r's connection within 3 s. */
static bool raw_closed(raw_t *r)
{
    uint64_t end = deadline_in(3000);
    for (;;) {
        int rc = mpms_fill(&r->in, r->fd);
        if (rc < 0)
            return rc == MP_EEOF || rc == -ECONNRESET;
        if (mp__now_ns() > end)
            return false;
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        poll(&p, 1, 100);
    }
}

static mp_obj_t *call_body(int64_t id, int64_t op, int64_t address, mp_obj_t *a0, mp_obj_t *a1)
{
    mp_obj_t *b = mp_obj_new_array();
    mp_obj_array_add(b, mp_obj_new_int(id));
    mp_obj_array_add(b, mp_obj_new_int(op));
    mp_obj_array_add(b, mp_obj_new_int(address));
    if (a0)
        mp_obj_array_add(b, a0);
    if (a1)
        mp_obj_array_add(b, a1);
    return b;
}

/* HELLO, AUTH with the right key (the test knows MPM/1): WELCOME. */
static void raw_auth(raw_t *r)
{
    mp_obj_t *empty = mp_obj_new_array(), *b = NULL;
    raw_send(r, MPM_HELLO, empty);
    assert_int_equal(raw_recv(r, &b), MPM_CHALLENGE);
    size_t len = 0;
    const void *nonce = mp_obj_bin(mpm_arg(b, 0), &len);
    assert_int_equal(len, 32);
    uint8_t mac[32];
    mpm_auth_mac(KEY, strlen(KEY), nonce, mac);
    mp_obj_destroy(&b);
    mp_obj_t *auth = mp_obj_new_array();
    mp_obj_array_add(auth, mp_obj_new_bin(mac, sizeof mac));
    raw_send(r, MPM_AUTH, auth);
    assert_int_equal(raw_recv(r, NULL), MPM_WELCOME);
    mp_obj_destroy(&auth);
    mp_obj_destroy(&empty);
}

typedef struct {
    mp_manager_t *m;
    mp_manager_server_t *srv;
    mp_remote_t *r;
    mp_mdict_t *d, *local;
    char ep[256];
} fixture_t;

/* A manager with d = {"seed": 1}, served on ep; a client connected. */
static void fixture_up(fixture_t *f, const char *ep)
{
    memset(f, 0, sizeof *f);
    mp_manager_options_t mo = {.capacity = 256u << 20}; /* room for 40 MiB values */
    assert_int_equal(mp_manager_new(&mo, &f->m), 0);
    assert_int_equal(mp_manager_named_dict(f->m, "d", &f->local), 0);
    mp_obj_t *k = mp_obj_new_str("seed"), *v = mp_obj_new_int(1);
    assert_int_equal(mp_mdict_set(f->local, k, v), 0);
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
    assert_int_equal(mp_manager_serve(f->m, ep, KEY, strlen(KEY), &f->srv), 0);
    snprintf(f->ep, sizeof f->ep, "%s", mp_manager_server_endpoint(f->srv));
    mp_remote_options_t o = {.timeout_ms = 3000};
    assert_int_equal(mp_manager_connect(f->ep, KEY, strlen(KEY), &o, &f->r), 0);
    assert_int_equal(mp_remote_dict(f->r, "d", &f->d), 0);
}

static void fixture_down(fixture_t *f)
{
    mp_remote_disconnect(&f->r);
    mp_manager_server_stop(&f->srv);
    mp_manager_destroy(&f->m);
}

/* The remote dict's length, through the authenticated client. */
static size_t remote_len(fixture_t *f)
{
    size_t n = 0;
    assert_int_equal(mp_mdict_len(f->d, &n), 0);
    return n;
}

static void test_stream_wrong_key_and_calls_before_the_handshake_do_nothing(void **state)
{
    (void)state;
    fixture_t f;
    fixture_up(&f, EP);
    mp_remote_t *bad = NULL;
    mp_remote_options_t o = {.timeout_ms = 3000};
    assert_int_equal(mp_manager_connect(f.ep, "wrong", 5, &o, &bad), MP_EAUTH);
    assert_null(bad);
    raw_t r = raw_open(f.ep);
    mp_obj_t *empty = mp_obj_new_array(), *auth = mp_obj_new_array();
    raw_send(&r, MPM_HELLO, empty);
    assert_int_equal(raw_recv(&r, NULL), MPM_CHALLENGE);
    uint8_t junk[32] = {0};
    mp_obj_array_add(auth, mp_obj_new_bin(junk, sizeof junk));
    raw_send(&r, MPM_AUTH, auth); /* a wrong MAC */
    assert_int_equal(raw_recv(&r, NULL), MPM_DENIED);
    mp_obj_t *set = call_body(1, MR_D_SET, 1, mp_obj_new_str("evil"), mp_obj_new_int(666));
    raw_send(&r, MPM_CALL, set); /* ignores the refusal */
    assert_int_equal(raw_recv(&r, NULL), MPM_DENIED);
    raw_close(&r);
    r = raw_open(f.ep);
    raw_send(&r, MPM_CALL, set); /* no handshake at all */
    assert_int_equal(raw_recv(&r, NULL), MPM_DENIED);
    raw_close(&r);
    /* an AUTH without a CHALLENGE, right for the nonce a fresh peer starts
       with (zeros): DENIED, and the CALL after it too */
    uint8_t zero[32] = {0}, mac[32];
    mpm_auth_mac(KEY, strlen(KEY), zero, mac);
    mp_obj_t *zauth = mp_obj_new_array();
    mp_obj_array_add(zauth, mp_obj_new_bin(mac, sizeof mac));
    r = raw_open(f.ep);
    raw_send(&r, MPM_AUTH, zauth);
    assert_int_equal(raw_recv(&r, NULL), MPM_DENIED);
    raw_send(&r, MPM_CALL, set);
    assert_int_equal(raw_recv(&r, NULL), MPM_DENIED);
    raw_close(&r);
    mp_obj_destroy(&zauth);
    mp_obj_destroy(&set);
    mp_obj_destroy(&auth);
    mp_obj_destroy(&empty);
    assert_int_equal(remote_len(&f), 1); /* only "seed" */
    fixture_down(&f);
}

/* Bytes to send raw, then whether the server must close the connection. */
static void send_bytes(raw_t *r, const void *p, size_t n)
{
    assert_int_equal(send(r->fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void test_stream_hostile_bytes_close_only_their_connection(void **state)
{
    (void)state;
    fixture_t f;
    fixture_up(&f, EP);
    static const struct {
        const char *what;
        const char *bytes;
        size_t n;
    } bad[] = {
        {"not MPM/1", "GET / HTTP/1.1\r\n\r\n", 18},
        {"a 4 GiB length", "\xff\xff\xff\xffMPM01\x01\x90", 11},
        {"a length under the header", "\x00\x00\x00\x03MPM", 7},
        {"a wrong signature", "\x00\x00\x00\x07MPX01\x01\x90", 11},
        {"a body that is not an array", "\x00\x00\x00\x07MPM01\x01\x05", 11},
        {"a body array of 4 G items", "\x00\x00\x00\x0bMPM01\x01\xdd\xff\xff\xff\xff", 15},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        raw_t r = raw_open(f.ep);
        send_bytes(&r, bad[i].bytes, bad[i].n);
        if (!raw_closed(&r))
            fail_msg("%s: the connection stayed open", bad[i].what);
        raw_close(&r);
    }
    /* before authenticating, a message over 4 KiB closes the connection */
    raw_t big = raw_open(f.ep);
    uint8_t hdr[10] = {0, 0, 0x13, 0x8e, 'M', 'P', 'M', '0', '1', MPM_HELLO}; /* 5,006 */
    char *pad = calloc(1, 5000);
    send_bytes(&big, hdr, sizeof hdr);
    send(big.fd, pad, 5000, MSG_NOSIGNAL);
    assert_true(raw_closed(&big));
    raw_close(&big);
    free(pad);
    /* half a message left hanging, and 200 connections of random bytes:
       meanwhile the authenticated client is served */
    raw_t half = raw_open(f.ep);
    send_bytes(&half, "\x00\x00\x00\x40MPM01\x01", 10);
    srand(17);
    for (int i = 0; i < 200; i++) {
        raw_t r = raw_open(f.ep);
        char junk[64];
        for (size_t k = 0; k < sizeof junk; k++)
            junk[k] = (char)rand();
        send(r.fd, junk, (size_t)(1 + rand() % 64), MSG_NOSIGNAL);
        raw_close(&r);
    }
    assert_int_equal(remote_len(&f), 1);
    raw_close(&half);
    /* well-framed calls with nonsense (an unknown op, a slot out of range, a
       list op on the dict, missing arguments, a BATCH in a BATCH, an empty
       BATCH): each answered with an error, the connection kept */
    raw_t r = raw_open(f.ep);
    raw_auth(&r);
    static const int64_t calls[][3] = {
        {1, 999, 1}, {2, 2, 70000}, {3, 20, 1}, {4, 2, 1}, {5, 3, -1}};
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        mp_obj_t *b = call_body(calls[i][0], calls[i][1], calls[i][2], NULL, NULL), *rep = NULL;
        raw_send(&r, MPM_CALL, b);
        assert_int_equal(raw_recv(&r, &rep), MPM_REPLY);
        assert_int_equal(mpm_arg_int(rep, 0), calls[i][0]);
        assert_true(mpm_arg_int(rep, 1) < 0);
        mp_obj_destroy(&rep);
        mp_obj_destroy(&b);
    }
    for (int k = 0; k < 2; k++) {
        mp_obj_t *subs = mp_obj_new_array(), *rep = NULL;
        if (k == 0)
            mp_obj_array_add(subs, call_body(0, MR_BATCH, 1, NULL, NULL));
        mp_obj_t *b = call_body(7, MR_BATCH, 1, subs, NULL);
        raw_send(&r, MPM_CALL, b);
        assert_int_equal(raw_recv(&r, &rep), MPM_REPLY);
        mp_obj_destroy(&rep);
        mp_obj_destroy(&b);
    }
    raw_close(&r);
    assert_int_equal(remote_len(&f), 1);
    fixture_down(&f);
}

/* 300 connections that say HELLO and never authenticate: the server keeps
   at most 256 such (it closes the oldest), and the authenticated client
   keeps its connection: its next call is answered. */
static void test_stream_hello_flood_never_drops_an_authenticated_peer(void **state)
{
    (void)state;
    enum { N = 300 };
    fixture_t f;
    fixture_up(&f, EP);
    raw_t *flood = calloc(N, sizeof *flood);
    mp_obj_t *empty = mp_obj_new_array();
    for (int i = 0; i < N; i++) {
        flood[i] = raw_open(f.ep);
        raw_send(&flood[i], MPM_HELLO, empty);
        assert_int_equal(raw_recv(&flood[i], NULL), MPM_CHALLENGE);
    }
    int closed = 0;
    for (int i = 0; i < N; i++) {
        closed += i < 44 && raw_closed(&flood[i]); /* the oldest went */
        raw_close(&flood[i]);
    }
    assert_int_equal(closed, 44);
    assert_int_equal(remote_len(&f), 1);
    mp_obj_destroy(&empty);
    free(flood);
    fixture_down(&f);
}

/* A client that sends calls for big replies and never reads them fills
   its socket; the server stops reading that connection (it keeps one
   reply's bytes), and serves the others meanwhile. */
static void test_stream_a_client_not_reading_stalls_nobody_else(void **state)
{
    (void)state;
    fixture_t f;
    fixture_up(&f, EP);
    mp_obj_t *k = mp_obj_new_str("blob"), *v;
    char *blob = malloc(1u << 20);
    memset(blob, 'b', 1u << 20);
    v = mp_obj_new_bin(blob, 1u << 20);
    assert_int_equal(mp_mdict_set(f.d, k, v), 0);
    raw_t r = raw_open(f.ep);
    raw_auth(&r);
    mp_obj_t *get = call_body(1, MR_D_GET, ((struct mp_mobj *)f.local)->slot, mp_obj_dup(k), NULL);
    for (int i = 0; i < 64; i++) /* 64 MiB of replies asked for, none read */
        raw_send(&r, MPM_CALL, get);
    uint64_t t0 = tu_now_ms();
    for (int i = 0; i < 100; i++)
        assert_int_equal(remote_len(&f), 2);
    assert_true(tu_now_ms() - t0 < 2000);
    /* and the stuck client gets every reply, in order, when it reads */
    for (int i = 0; i < 64; i++) {
        mp_obj_t *rep = NULL;
        assert_int_equal(raw_recv(&r, &rep), MPM_REPLY);
        assert_int_equal(mpm_arg_int(rep, 1), 0);
        assert_true(mp_obj_equal(mpm_arg(rep, 2), v));
        mp_obj_destroy(&rep);
    }
    raw_close(&r);
    mp_obj_destroy(&get);
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
    free(blob);
    fixture_down(&f);
}

/* 1,000 CALLs written at once: 1,000 REPLYs, in order. */
static void test_stream_pipelined_calls_and_big_values(void **state)
{
    (void)state;
    enum { N = 1000 };
    fixture_t f;
    fixture_up(&f, EP);
    raw_t r = raw_open(f.ep);
    raw_auth(&r);
    int64_t address = ((struct mp_mobj *)f.local)->slot;
    for (int i = 1; i <= N; i++) {
        mp_obj_t *b = call_body(i, MR_D_SET, address, mp_obj_new_int(i), mp_obj_new_int(i * 2));
        raw_send(&r, MPM_CALL, b);
        mp_obj_destroy(&b);
    }
    for (int i = 1; i <= N; i++) {
        mp_obj_t *rep = NULL;
        assert_int_equal(raw_recv(&r, &rep), MPM_REPLY);
        assert_int_equal(mpm_arg_int(rep, 0), i);
        assert_int_equal(mpm_arg_int(rep, 1), 0);
        mp_obj_destroy(&rep);
    }
    raw_close(&r);
    assert_int_equal(remote_len(&f), N + 1);
    /* 40 MiB each way through the proxy: partial writes on both sides */
    size_t big = 40u << 20;
    char *blob = malloc(big);
    for (size_t i = 0; i < big; i++)
        blob[i] = (char)(i * 7);
    mp_obj_t *k = mp_obj_new_str("big"), *v = mp_obj_new_bin(blob, big), *got = NULL;
    assert_int_equal(mp_mdict_set(f.d, k, v), 0);
    assert_int_equal(mp_mdict_get(f.d, k, NULL, &got), 0);
    assert_true(mp_obj_equal(got, v));
    mp_obj_destroy(&got);
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
    free(blob);
    fixture_down(&f);
}

typedef struct {
    mp_manager_t *m;
    char ep[256];
    mp_manager_server_t *srv;
    int after_ms;
} later_t;

static void *serve_later(void *arg)
{
    later_t *l = arg;
    usleep((useconds_t)l->after_ms * 1000);
    int rc = mp_manager_serve(l->m, l->ep, KEY, strlen(KEY), &l->srv);
    return rc ? (void *)1 : NULL;
}

/* The server stops and serves again on the same port: the client's next
   call reconnects and authenticates again, unseen by the caller; a call
   made while nobody listens waits for the server's return (within its
   timeout); a call while nobody comes back fails within the timeout. */
static void test_stream_server_restart_is_met_by_reconnecting(void **state)
{
    (void)state;
    fixture_t f;
    fixture_up(&f, EP);
    assert_int_equal(remote_len(&f), 1);
    mp_manager_server_stop(&f.srv); /* the same manager, served again */
    assert_int_equal(mp_manager_serve(f.m, f.ep, KEY, strlen(KEY), &f.srv), 0);
    assert_int_equal(remote_len(&f), 1);
    mp_manager_server_stop(&f.srv);
    later_t l = {.m = f.m, .after_ms = 300};
    snprintf(l.ep, sizeof l.ep, "%s", f.ep);
    pthread_t t;
    pthread_create(&t, NULL, serve_later, &l);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(remote_len(&f), 1);
    assert_true(tu_now_ms() - t0 >= 250);
    void *failed;
    pthread_join(t, &failed);
    assert_null(failed);
    f.srv = l.srv;
    mp_manager_server_stop(&f.srv);
    size_t n;
    t0 = tu_now_ms();
    assert_int_equal(mp_mdict_len(f.d, &n), MP_EMANAGERLOST);
    uint64_t took = tu_now_ms() - t0;
    assert_true(took >= 2500 && took < 4500);
    fixture_down(&f);
}

static void test_stream_endpoints_and_policy(void **state)
{
    (void)state;
    fixture_t f;
    char ep[128];
    snprintf(ep, sizeof ep, "mpm+ipc:///tmp/mp-test-stream-%d.ipc", (int)getpid());
    fixture_up(&f, ep);
    assert_string_equal(f.ep, ep);
    assert_int_equal(remote_len(&f), 1);
    fixture_down(&f);
    assert_int_equal(access(ep + 10, F_OK), -1); /* the socket file is gone */

    mp_manager_t *m;
    mp_manager_server_t *s = NULL;
    assert_int_equal(mp_manager_new(NULL, &m), 0);
    static const char *bad[] = {"mpm+tcp://127.0.0.1", "mpm+tcp://127.0.0.1:", "mpm+tcp://:5",
                                "mpm+ipc://", "mpm+tcp://no.such.host.invalid:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_not_equal(mp_manager_serve(m, bad[i], KEY, strlen(KEY), &s), 0);
    assert_null(s);
    /* off loopback: refused unless insecure (CURVE cannot ride a stream) */
    mp_manager_serve_options_t o = {.endpoint = "mpm+tcp://*:0", .authkey = KEY, .keylen = 3};
    assert_int_equal(mp_manager_serve_with(m, &o, &s), MP_EINSECURE);
    o.curve_key = "x.key_secret";
    o.allow_dir = "/nonexistent";
    assert_int_equal(mp_manager_serve_with(m, &o, &s), MP_EINVAL);
    mp_remote_t *r = NULL;
    mp_remote_options_t ro = {.curve_key = "a", .curve_server_key = "b"};
    assert_int_equal(mp_manager_connect("mpm+tcp://127.0.0.1:1", KEY, 3, &ro, &r), MP_EINVAL);
    /* nobody there: MP_EMANAGERLOST within the timeout */
    ro = (mp_remote_options_t){.timeout_ms = 300};
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_manager_connect("mpm+tcp://127.0.0.1:1", KEY, 3, &ro, &r), MP_EMANAGERLOST);
    assert_true(tu_now_ms() - t0 < 1000);
    assert_null(r);
    mp_manager_destroy(&m);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_stream_wrong_key_and_calls_before_the_handshake_do_nothing,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_stream_hostile_bytes_close_only_their_connection,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_stream_hello_flood_never_drops_an_authenticated_peer,
                                  tu_teardown),
        cmocka_unit_test_teardown(test_stream_a_client_not_reading_stalls_nobody_else, tu_teardown),
        cmocka_unit_test_teardown(test_stream_pipelined_calls_and_big_values, tu_teardown),
        cmocka_unit_test_teardown(test_stream_server_restart_is_met_by_reconnecting, tu_teardown),
        cmocka_unit_test_teardown(test_stream_endpoints_and_policy, tu_teardown),
    };
    return cmocka_run_group_tests_name("manager_stream", tests, NULL, NULL);
}
