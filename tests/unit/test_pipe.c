/*  test_pipe.c - Pipe: duplex and one-way, values and bytes, poll, EOF. */
#include <stdlib.h>

#include "support.h"

struct ends {
    mp_conn_t *mine;
    mp_conn_t *theirs;
};

/* echo server: doubles ints, echoes the rest, until EOF */
static int echo(void *arg)
{
    struct ends *e = arg;
    mp_conn_close(e->theirs); /* the parent's end: close our copy */
    for (;;) {
        mp_obj_t *o = NULL;
        int rc = mp_conn_recv(e->mine, &o);
        if (rc == MP_EEOF)
            return 0;
        if (rc)
            return 1;
        if (mp_obj_type(o) == MP_OBJ_INT) {
            mp_obj_t *d = mp_obj_new_int(mp_obj_int(o) * 2);
            mp_obj_destroy(&o);
            o = d;
        }
        rc = mp_conn_send(e->mine, o);
        mp_obj_destroy(&o);
        if (rc)
            return 2;
    }
}

static void test_duplex_values_both_ways_until_eof(void **state)
{
    mp_conn_t *a, *b;
    assert_int_equal(mp_pipe(&a, &b, true), 0);
    assert_true(mp_conn_readable(a) && mp_conn_writable(a));
    struct ends e = {b, a};
    mp_process_t *p = tu_start(echo, &e, NULL);
    mp_conn_close(b);
    for (int i = 0; i < 1000; i++) {
        mp_obj_t *o = mp_obj_new_int(i), *got = NULL;
        assert_int_equal(mp_conn_send(a, o), 0);
        assert_int_equal(mp_conn_recv(a, &got), 0);
        assert_int_equal(mp_obj_int(got), 2 * i);
        mp_obj_destroy(&o);
        mp_obj_destroy(&got);
    }
    /* a value larger than the read buffer, nested */
    mp_obj_t *big = mp_obj_new_map(), *got = NULL;
    char *blob = malloc(1 << 20);
    for (int i = 0; i < (1 << 20); i++)
        blob[i] = (char)(i * 31);
    mp_obj_map_add(big, mp_obj_new_str("blob"), mp_obj_new_bin(blob, 1 << 20));
    mp_obj_map_add(big, mp_obj_new_str("list"), mp_obj_new_array());
    assert_int_equal(mp_conn_send(a, big), 0);
    assert_int_equal(mp_conn_recv(a, &got), 0);
    assert_true(mp_obj_equal(big, got));
    mp_obj_destroy(&big);
    mp_obj_destroy(&got);
    free(blob);
    /* our close is the child's EOF: it exits 0 */
    mp_conn_close(a);
    assert_int_equal(mp_conn_send(a, NULL), MP_EINVAL);
    assert_int_equal(mp_conn_recv(a, &got), MP_ECLOSED);
    assert_int_equal(tu_join(&p, 5000), 0);
    mp_conn_destroy(&a);
    mp_conn_destroy(&b);
}

static int send_three_then_exit(void *arg)
{
    struct ends *e = arg;
    mp_conn_close(e->theirs);
    usleep(100 * 1000);
    const char *msgs[] = {"", "x", "hello bytes"};
    for (int i = 0; i < 3; i++)
        if (mp_conn_send_bytes(e->mine, msgs[i], strlen(msgs[i])))
            return 1;
    return 0; /* exit closes our end */
}

static void test_one_way_bytes_poll_and_eof(void **state)
{
    mp_conn_t *r, *w;
    assert_int_equal(mp_pipe(&r, &w, false), 0);
    assert_true(mp_conn_readable(r) && !mp_conn_writable(r));
    assert_true(!mp_conn_readable(w) && mp_conn_writable(w));
    assert_int_equal(mp_conn_send_bytes(r, "x", 1), MP_EINVAL); /* wrong way */
    struct ends e = {w, r};
    mp_process_t *p = tu_start(send_three_then_exit, &e, NULL);
    mp_conn_close(w);

    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_conn_poll(r, 20), 0); /* nothing yet */
    TU_ASSERT_ELAPSED(t0, 20, 60);
    assert_int_equal(mp_conn_poll(r, 5000), 1);
    const char *want[] = {"", "x", "hello bytes"};
    for (int i = 0; i < 3; i++) {
        void *data = NULL;
        size_t size = 99;
        assert_int_equal(mp_conn_recv_bytes(r, &data, &size, 0), 0);
        assert_int_equal(size, strlen(want[i]));
        assert_memory_equal(data, want[i], size);
        free(data);
    }
    /* the writer exited: EOF, also for poll (readable) and wait */
    assert_int_equal(mp_conn_poll(r, 5000), 1);
    mp_waitable_t items[] = {MP_WAITABLE_CONN(r)};
    assert_int_equal(mp_wait(items, 1, 5000), 1);
    void *data;
    size_t size;
    assert_int_equal(mp_conn_recv_bytes(r, &data, &size, 0), MP_EEOF);
    assert_int_equal(mp_process_join(p, 5000), 0);
    mp_process_destroy(&p);
    mp_conn_destroy(&r);
    mp_conn_destroy(&w);
}

static void test_limits_and_bad_data(void **state)
{
    mp_conn_t *a, *b;
    assert_int_equal(mp_pipe(&a, &b, true), 0);
    /* maxlength: too long is an error and the connection is done */
    assert_int_equal(mp_conn_send_bytes(a, "0123456789", 10), 0);
    void *data;
    size_t size;
    assert_int_equal(mp_conn_recv_bytes(b, &data, &size, 5), MP_E2BIG);
    assert_int_equal(mp_conn_recv_bytes(b, &data, &size, 0), MP_EBADMSG);
    mp_conn_destroy(&a);
    mp_conn_destroy(&b);

    /* bytes that are not msgpack: recv says so, the next message is fine */
    assert_int_equal(mp_pipe(&a, &b, true), 0);
    assert_int_equal(mp_conn_send_bytes(a, "\xc1", 1), 0);
    mp_obj_t *o = mp_obj_new_str("ok"), *got = NULL;
    assert_int_equal(mp_conn_send(a, o), 0);
    assert_int_equal(mp_conn_recv(b, &got), MP_EBADMSG);
    assert_null(got);
    assert_int_equal(mp_conn_recv(b, &got), 0);
    assert_true(mp_obj_equal(o, got));
    mp_obj_destroy(&o);
    mp_obj_destroy(&got);

    /* sending to a closed peer is -EPIPE, not a SIGPIPE */
    mp_conn_destroy(&b);
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = mp_conn_send_bytes(a, "x", 1);
    assert_int_equal(rc, -EPIPE);
    mp_conn_destroy(&a);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_duplex_values_both_ways_until_eof, tu_teardown),
        cmocka_unit_test_teardown(test_one_way_bytes_poll_and_eof, tu_teardown),
        cmocka_unit_test_teardown(test_limits_and_bad_data, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
