/*  test_curve_manager.c - CURVE on the remote Manager (MPM/1,
    docs/MANAGER.md 6.2): the server admits only the keys in its
    allow-list's managers/ directory.

    The server runs in this process (a thread), the clients connect over
    tcp://127.0.0.1. Refused: an unknown key, a plaintext client, a client
    with the wrong server key, a worker's key (admitted by the same root's
    ZAP handler, not by managers/); in each case the server's counter shows
    that no call ran and the served dict is untouched. A key added while
    the server runs is admitted without a restart. A broker and a manager
    server share the process's ZAP handler and its root; a second root is
    refused. Off loopback without keys is refused.
*/
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "mp/broker.h"
#include "mp/manager.h"
#include "support.h"

#define AUTHKEY "secret"

typedef struct {
    mp_manager_t *m;
    mp_mdict_t *d;
    mp_manager_server_t *s;
} served_t;

static int setup(void **state)
{
    const char *names[] = {"server", "m1", "stranger", "w1", "late"};
    tk_setup(names, sizeof names / sizeof *names);
    tk_allow("m1", "managers");
    tk_allow("w1", "workers");
    served_t *sv = calloc(1, sizeof *sv);
    assert_int_equal(mp_manager_new(NULL, &sv->m), 0);
    assert_int_equal(mp_manager_named_dict(sv->m, "d", &sv->d), 0);
    mp_manager_serve_options_t o = {.endpoint = "tcp://127.0.0.1:0",
                                    .authkey = AUTHKEY,
                                    .keylen = strlen(AUTHKEY),
                                    .curve_key = tk_key("server", true),
                                    .allow_dir = tk_allow_dir()};
    assert_int_equal(mp_manager_serve_with(sv->m, &o, &sv->s), 0);
    *state = sv;
    return 0;
}

static int teardown(void **state)
{
    served_t *sv = *state;
    mp_manager_server_stop(&sv->s);
    mp_manager_destroy(&sv->m);
    free(sv);
    return tk_teardown();
}

/* Connects as name (NULL: no CURVE) trusting server's public key. */
static int connect_as(served_t *sv, const char *name, const char *server, int timeout_ms,
                      mp_remote_t **r)
{
    mp_remote_options_t o = {.timeout_ms = timeout_ms,
                             .curve_key = name ? tk_key(name, true) : NULL,
                             .curve_server_key = name ? tk_key(server, false) : NULL};
    return mp_manager_connect(mp_manager_server_endpoint(sv->s), AUTHKEY, strlen(AUTHKEY), &o, r);
}

static uint64_t calls(served_t *sv)
{
    uint64_t n = 0;
    assert_int_equal(mp_manager_server_stats(sv->s, &n, NULL), 0);
    return n;
}

static size_t served_len(served_t *sv)
{
    size_t n = 0;
    assert_int_equal(mp_mdict_len(sv->d, &n), 0);
    return n;
}

static void test_curve_manager_admitted_key_works(void **state)
{
    served_t *sv = *state;
    mp_remote_t *r;
    mp_mdict_t *d;
    assert_int_equal(connect_as(sv, "m1", "server", 5000, &r), 0);
    assert_int_equal(mp_remote_dict(r, "d", &d), 0);
    mp_obj_t *k = mp_obj_new_str("k"), *v = mp_obj_new_int(42), *got = NULL;
    assert_int_equal(mp_mdict_set(d, k, v), 0);
    assert_int_equal(mp_mdict_get(sv->d, k, NULL, &got), 0); /* the server's own view */
    assert_int_equal(mp_obj_int(got), 42);
    assert_int_equal(calls(sv), 2); /* OPEN and SET */
    mp_obj_destroy(&got);
    mp_obj_destroy(&k);
    mp_obj_destroy(&v);
    mp_remote_disconnect(&r);
}

static void test_curve_manager_refuses_unknown_plaintext_and_worker_keys(void **state)
{
    served_t *sv = *state;
    mp_remote_t *r = NULL;
    uint64_t t0 = tu_now_ms();
    /* refused at the handshake: told at once, not after the 5 s timeout */
    assert_int_equal(connect_as(sv, "stranger", "server", 5000, &r), MP_EAUTH);
    assert_int_equal(connect_as(sv, NULL, NULL, 5000, &r), MP_EAUTH);
    assert_true(tu_now_ms() - t0 < 3000);
    /* a worker's key passes the root's ZAP handler, not managers/ */
    assert_int_equal(connect_as(sv, "w1", "server", 5000, &r), MP_EAUTH);
    uint64_t refused = 0;
    assert_int_equal(mp_manager_server_stats(sv->s, NULL, &refused), 0);
    assert_true(refused >= 1);
    /* a wrong server key: the server cannot read the HELLO and closes
       every handshake; told at once too */
    t0 = tu_now_ms();
    assert_int_equal(connect_as(sv, "m1", "stranger", 5000, &r), MP_EAUTH);
    assert_true(tu_now_ms() - t0 < 3000);
    assert_null(r);
    assert_int_equal(calls(sv), 0);
    assert_int_equal(served_len(sv), 0);
}

static void test_curve_manager_wrong_authkey_is_still_refused(void **state)
{
    served_t *sv = *state;
    mp_remote_options_t o = {.timeout_ms = 5000,
                             .curve_key = tk_key("m1", true),
                             .curve_server_key = tk_key("server", false)};
    mp_remote_t *r = NULL;
    assert_int_equal(mp_manager_connect(mp_manager_server_endpoint(sv->s), "wrong", 5, &o, &r),
                     MP_EAUTH);
    assert_int_equal(calls(sv), 0);
}

static void test_curve_manager_key_added_at_run_time_is_admitted(void **state)
{
    served_t *sv = *state;
    mp_remote_t *r = NULL;
    assert_int_equal(connect_as(sv, "late", "server", 5000, &r), MP_EAUTH);
    tk_allow("late", "managers"); /* no restart */
    assert_int_equal(connect_as(sv, "late", "server", 5000, &r), 0);
    mp_mdict_t *d;
    assert_int_equal(mp_remote_dict(r, "d", &d), 0);
    mp_remote_disconnect(&r);
}

static void test_curve_manager_shares_the_zap_handler_with_a_broker(void **state)
{
    served_t *sv = *state;
    const char *binds[] = {"tcp://127.0.0.1:0"};
    mp_broker_options_t bo = {.binds = binds,
                              .nbinds = 1,
                              .curve_key = tk_key("server", true),
                              .allow_dir = tk_allow_dir()};
    mp_broker_t *b = NULL;
    assert_int_equal(mp_broker_new(&bo, &b), 0); /* same root: one handler, both served */
    mp_remote_t *r = NULL;
    assert_int_equal(connect_as(sv, "m1", "server", 5000, &r), 0);
    mp_remote_disconnect(&r);
    mp_broker_destroy(&b);
    assert_int_equal(connect_as(sv, "m1", "server", 5000, &r), 0); /* still served after */
    mp_remote_disconnect(&r);
    /* another root in the same process: refused, not silently merged */
    mp_manager_serve_options_t o = {
        .endpoint = "tcp://127.0.0.1:0", .curve_key = tk_key("server", true), .allow_dir = "/tmp"};
    mp_manager_server_t *s2 = NULL;
    assert_int_equal(mp_manager_serve_with(sv->m, &o, &s2), MP_EINVAL);
    assert_null(s2);
}

static void test_curve_manager_no_keys_off_loopback_is_refused(void **state)
{
    served_t *sv = *state;
    mp_manager_server_t *s2 = NULL;
    unsetenv("MP_INSECURE");
    assert_int_equal(mp_manager_serve(sv->m, "tcp://*:0", NULL, 0, &s2), MP_EINSECURE);
    mp_manager_serve_options_t o = {.endpoint = "tcp://*:0"};
    assert_int_equal(mp_manager_serve_with(sv->m, &o, &s2), MP_EINSECURE);
    o.insecure = true; /* said out loud: allowed */
    assert_int_equal(mp_manager_serve_with(sv->m, &o, &s2), 0);
    mp_manager_server_stop(&s2);
    o.endpoint = "tcp://127.0.0.1:0"; /* loopback needs no keys */
    o.insecure = false;
    assert_int_equal(mp_manager_serve_with(sv->m, &o, &s2), 0);
    mp_manager_server_stop(&s2);
    o.curve_key = tk_key("server", true); /* half a key pair is refused, not ignored */
    assert_int_equal(mp_manager_serve_with(sv->m, &o, &s2), MP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_curve_manager_admitted_key_works, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_curve_manager_refuses_unknown_plaintext_and_worker_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curve_manager_wrong_authkey_is_still_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_curve_manager_key_added_at_run_time_is_admitted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_curve_manager_shares_the_zap_handler_with_a_broker,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_curve_manager_no_keys_off_loopback_is_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
