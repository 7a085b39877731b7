/*  conformance_connection.c - CPython 3.11's _TestConnection, _TestPoll and
    TestWait (Lib/test/_test_multiprocessing.py) ported to mp/pipe.h and
    mp/wait.h, one test per method with its inputs and assertions.

    How Python maps onto C here: Pipe() is mp_pipe(); send/recv carry an
    mp_obj (msgpack) where Python pickles, send_bytes/recv_bytes carry bytes.
    EOFError is MP_EEOF, OSError on a closed connection MP_ECLOSED and on
    the wrong direction MP_EINVAL. poll(t) is mp_conn_poll(c, t ms): Python's
    poll() is poll(0). wait(objects, t) is mp_wait() over MP_WAITABLE_*;
    its result list is the items marked ready. Python's negative timeouts
    (which do not wait) have no counterpart: libmp's timeout_ms < 0 waits
    forever (mp/lock.h). The connection a Python target gets as an argument
    is a global the fork child inherits; children report through exit codes.
    CPython's own timing checks are off (CHECK_TIMINGS) except TestWait's;
    the bounds TestWait states are asserted as stated.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "support.h"

#define TIMEOUT1_MS 100 /* CPython's TIMEOUT1 without CHECK_TIMINGS */

static mp_conn_t *g_conn;
static bool g_slow;
static struct sockaddr_in g_addr;
static mp_semaphore_t *g_sem;

static int send_obj(mp_conn_t *c, mp_obj_t *o)
{
    int rc = mp_conn_send(c, o);
    mp_obj_destroy(&o);
    return rc;
}

/* Receives bytes and checks they are want (size n). */
static void assert_recv_bytes(mp_conn_t *c, const void *want, size_t n)
{
    void *data = NULL;
    size_t size = 0;
    assert_int_equal(mp_conn_recv_bytes(c, &data, &size, 0), 0);
    assert_int_equal(size, n);
    assert_memory_equal(data, want, n);
    free(data);
}

/* CPython's _echo: echoes messages until the empty one (SENTINEL). */
static int echo(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        void *msg = NULL;
        size_t size = 0;
        if (mp_conn_recv_bytes(g_conn, &msg, &size, 0))
            return 1;
        if (size == 0) {
            free(msg);
            break;
        }
        int rc = mp_conn_send_bytes(g_conn, msg, size);
        free(msg);
        if (rc)
            return 2;
    }
    mp_conn_close(g_conn);
    return 0;
}

/* test_connection: through an echo child, a value, bytes and 16 MiB come
   back equal; poll times out empty and sees a pending message; after the
   child quits, recv and recv_bytes see EOF. Python's recv_bytes_into
   (with offset, BufferTooShort) has no C counterpart and is left out, as
   is poll(-1), which does not wait in Python and waits forever here. */
static void conformance_connection_test_connection(void **state)
{
    mp_conn_t *conn, *child_conn;
    assert_int_equal(mp_pipe(&conn, &child_conn, true), 0);
    g_conn = child_conn;
    mp_process_t *p = tu_start(echo, NULL, &(mp_process_opts_t){.daemon = true});

    assert_true(mp_conn_fileno(conn) >= 0);

    mp_obj_t *seq = mp_obj_new_array();
    mp_obj_array_add(seq, mp_obj_new_int(1));
    mp_obj_array_add(seq, mp_obj_new_float(2.25));
    mp_obj_array_add(seq, mp_obj_new_nil());
    assert_int_equal(mp_conn_send(conn, seq), 0);
    mp_obj_t *got = NULL;
    assert_int_equal(mp_conn_recv(conn, &got), 0);
    assert_true(mp_obj_equal(got, seq));
    mp_obj_destroy(&got);
    mp_obj_destroy(&seq);

    static const char msg[] = "hello world";
    assert_int_equal(mp_conn_send_bytes(conn, msg, strlen(msg)), 0);
    assert_recv_bytes(conn, msg, strlen(msg));

    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_conn_poll(conn, 0), 0);
    TU_ASSERT_ELAPSED(t0, 0, 500);

    t0 = tu_now_ms();
    assert_int_equal(mp_conn_poll(conn, TIMEOUT1_MS), 0);
    TU_ASSERT_ELAPSED(t0, TIMEOUT1_MS, 500);

    assert_int_equal(send_obj(conn, mp_obj_new_nil()), 0);
    usleep(100 * 1000);

    t0 = tu_now_ms();
    assert_int_equal(mp_conn_poll(conn, TIMEOUT1_MS), 1);
    TU_ASSERT_ELAPSED(t0, 0, 500);

    assert_int_equal(mp_conn_recv(conn, &got), 0);
    assert_int_equal(mp_obj_type(got), MP_OBJ_NIL);
    mp_obj_destroy(&got);

    size_t big = 1024 * 1024 * 16;
    char *really_big_msg = malloc(big);
    assert_non_null(really_big_msg);
    memset(really_big_msg, 'X', big);
    assert_int_equal(mp_conn_send_bytes(conn, really_big_msg, big), 0);
    assert_recv_bytes(conn, really_big_msg, big);
    free(really_big_msg);

    assert_int_equal(mp_conn_send_bytes(conn, "", 0), 0); /* tell child to quit */
    assert_int_equal(mp_conn_close(child_conn), 0);

    assert_true(mp_conn_readable(conn));
    assert_true(mp_conn_writable(conn));
    assert_int_equal(mp_conn_recv(conn, &got), MP_EEOF);
    void *data = NULL;
    size_t size;
    assert_int_equal(mp_conn_recv_bytes(conn, &data, &size, 0), MP_EEOF);

    assert_int_equal(tu_join(&p, 10000), 0);
    mp_conn_destroy(&conn);
    mp_conn_destroy(&child_conn);
}

/* test_duplex_false: a one-way pipe carries a value from writer to reader;
   readable/writable say which end is which; send on the reader, recv and
   poll on the writer fail (OSError: MP_EINVAL). */
static void conformance_connection_test_duplex_false(void **state)
{
    mp_conn_t *reader, *writer;
    assert_int_equal(mp_pipe(&reader, &writer, false), 0);
    assert_int_equal(send_obj(writer, mp_obj_new_int(1)), 0);
    mp_obj_t *got = NULL;
    assert_int_equal(mp_conn_recv(reader, &got), 0);
    assert_int_equal(mp_obj_int(got), 1);
    mp_obj_destroy(&got);
    assert_true(mp_conn_readable(reader));
    assert_false(mp_conn_writable(reader));
    assert_false(mp_conn_readable(writer));
    assert_true(mp_conn_writable(writer));
    assert_int_equal(send_obj(reader, mp_obj_new_int(2)), MP_EINVAL);
    assert_int_equal(mp_conn_recv(writer, &got), MP_EINVAL);
    assert_int_equal(mp_conn_poll(writer, 0), MP_EINVAL);
    mp_conn_destroy(&reader);
    mp_conn_destroy(&writer);
}

/* test_spawn_close: the parent may close the child's end right after
   starting the child; the echo still works. */
static void conformance_connection_test_spawn_close(void **state)
{
    mp_conn_t *conn, *child_conn;
    assert_int_equal(mp_pipe(&conn, &child_conn, true), 0);
    g_conn = child_conn;
    mp_process_t *p = tu_start(echo, NULL, &(mp_process_opts_t){.daemon = true});
    assert_int_equal(mp_conn_close(child_conn), 0);

    assert_int_equal(mp_conn_send_bytes(conn, "hello", 5), 0);
    assert_recv_bytes(conn, "hello", 5);

    assert_int_equal(mp_conn_send_bytes(conn, "", 0), 0);
    assert_int_equal(mp_conn_close(conn), 0);
    assert_int_equal(tu_join(&p, 10000), 0);
    mp_conn_destroy(&conn);
    mp_conn_destroy(&child_conn);
}

/* test_sendbytes: slices of a message (offset, size) arrive as sent,
   empty ones included. C slices by pointer and length; Python's five
   ValueError cases (offset or size out of the buffer) cannot be expressed. */
static void conformance_connection_test_sendbytes(void **state)
{
    static const char msg[] = "abcdefghijklmnopqrstuvwxyz";
    mp_conn_t *a, *b;
    assert_int_equal(mp_pipe(&a, &b, true), 0);

    assert_int_equal(mp_conn_send_bytes(a, msg, 26), 0);
    assert_recv_bytes(b, msg, 26);

    assert_int_equal(mp_conn_send_bytes(a, msg + 5, 26 - 5), 0); /* send_bytes(msg, 5) */
    assert_recv_bytes(b, msg + 5, 26 - 5);

    assert_int_equal(mp_conn_send_bytes(a, msg + 7, 8), 0); /* send_bytes(msg, 7, 8) */
    assert_recv_bytes(b, msg + 7, 8);

    assert_int_equal(mp_conn_send_bytes(a, msg + 26, 0), 0); /* send_bytes(msg, 26) */
    assert_recv_bytes(b, "", 0);

    assert_int_equal(mp_conn_send_bytes(a, msg + 26, 0), 0); /* send_bytes(msg, 26, 0) */
    assert_recv_bytes(b, "", 0);

    mp_conn_destroy(&a);
    mp_conn_destroy(&b);
}

/* test_context: after `with a, b:` both ends are closed and recv fails
   (OSError: MP_ECLOSED). Python's context manager is mp_conn_close here;
   `closed` is fileno() == -1. */
static void conformance_connection_test_context(void **state)
{
    mp_conn_t *a, *b;
    assert_int_equal(mp_pipe(&a, &b, true), 0);
    assert_int_equal(send_obj(a, mp_obj_new_int(1729)), 0);
    mp_obj_t *got = NULL;
    assert_int_equal(mp_conn_recv(b, &got), 0);
    assert_int_equal(mp_obj_int(got), 1729);
    mp_obj_destroy(&got);
    assert_true(mp_conn_fileno(a) >= 0);
    assert_true(mp_conn_fileno(b) >= 0);

    assert_int_equal(mp_conn_close(a), 0);
    assert_int_equal(mp_conn_close(b), 0);

    assert_int_equal(mp_conn_fileno(a), -1);
    assert_int_equal(mp_conn_fileno(b), -1);
    assert_int_equal(mp_conn_recv(a, &got), MP_ECLOSED);
    assert_int_equal(mp_conn_recv(b, &got), MP_ECLOSED);
    mp_conn_destroy(&a);
    mp_conn_destroy(&b);
}

/* ---- _TestPoll ------------------------------------------------------------- */

/* test_empty_string: an empty message makes poll true, and stays there. */
static void conformance_connection_test_empty_string(void **state)
{
    mp_conn_t *a, *b;
    assert_int_equal(mp_pipe(&a, &b, true), 0);
    assert_int_equal(mp_conn_poll(a, 0), 0);
    assert_int_equal(mp_conn_send_bytes(b, "", 0), 0);
    assert_int_equal(mp_conn_poll(a, 0), 1);
    assert_int_equal(mp_conn_poll(a, 0), 1);
    mp_conn_destroy(&a);
    mp_conn_destroy(&b);
}

static const char *const g_strings[] = {"hello", "", "a", "b", "", "bye", "", "lop"};

static int child_strings(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < sizeof g_strings / sizeof *g_strings; i++) {
        usleep(100 * 1000);
        if (mp_conn_send_bytes(g_conn, g_strings[i], strlen(g_strings[i])))
            return 1;
    }
    mp_conn_close(g_conn);
    return 0;
}

/* test_strings: messages sent 100 ms apart, empty ones among them, are
   each seen by short polls and received whole and in order. */
static void conformance_connection_test_strings(void **state)
{
    mp_conn_t *a, *b;
    assert_int_equal(mp_pipe(&a, &b, true), 0);
    g_conn = b;
    mp_process_t *p = tu_start(child_strings, NULL, NULL);

    for (size_t i = 0; i < sizeof g_strings / sizeof *g_strings; i++) {
        for (int k = 0; k < 200; k++)
            if (mp_conn_poll(a, 10) == 1)
                break;
        assert_recv_bytes(a, g_strings[i], strlen(g_strings[i]));
    }

    assert_int_equal(tu_join(&p, 10000), 0);
    mp_conn_destroy(&a);
    mp_conn_destroy(&b);
}

static int child_boundaries(void *arg)
{
    (void)arg;
    mp_conn_poll(g_conn, 5000);
    return 0;
}

/* test_boundaries: a child polling the read end while two messages arrive
   does not take part of one: the parent then receives a whole one. */
static void conformance_connection_test_boundaries(void **state)
{
    mp_conn_t *r, *w;
    assert_int_equal(mp_pipe(&r, &w, false), 0);
    g_conn = r;
    mp_process_t *p = tu_start(child_boundaries, NULL, NULL);
    sleep(2);
    assert_int_equal(mp_conn_send_bytes(w, "first", 5), 0);
    assert_int_equal(mp_conn_send_bytes(w, "second", 6), 0);
    assert_int_equal(mp_conn_close(w), 0);
    assert_int_equal(tu_join(&p, 10000), 0);
    void *data = NULL;
    size_t size = 0;
    assert_int_equal(mp_conn_recv_bytes(r, &data, &size, 0), 0);
    assert_true((size == 5 && memcmp(data, "first", 5) == 0) ||
                (size == 6 && memcmp(data, "second", 6) == 0));
    free(data);
    mp_conn_destroy(&r);
    mp_conn_destroy(&w);
}

static int child_dont_merge(void *arg)
{
    (void)arg;
    return mp_conn_send_bytes(g_conn, "a", 1) || mp_conn_send_bytes(g_conn, "b", 1) ||
           mp_conn_send_bytes(g_conn, "cd", 2);
}

/* test_dont_merge: three messages sent back to back are received as
   three, with poll true before each. */
static void conformance_connection_test_dont_merge(void **state)
{
    mp_conn_t *a, *b;
    assert_int_equal(mp_pipe(&a, &b, true), 0);
    assert_int_equal(mp_conn_poll(a, 0), 0);
    assert_int_equal(mp_conn_poll(a, 100), 0);

    g_conn = b;
    mp_process_t *p = tu_start(child_dont_merge, NULL, NULL);

    assert_recv_bytes(a, "a", 1);
    assert_int_equal(mp_conn_poll(a, 1000), 1);
    assert_int_equal(mp_conn_poll(a, 1000), 1);
    assert_recv_bytes(a, "b", 1);
    assert_int_equal(mp_conn_poll(a, 1000), 1);
    assert_int_equal(mp_conn_poll(a, 1000), 1);
    assert_int_equal(mp_conn_poll(a, 0), 1);
    assert_recv_bytes(a, "cd", 2);

    assert_int_equal(tu_join(&p, 10000), 0);
    mp_conn_destroy(&a);
    mp_conn_destroy(&b);
}

/* ---- TestWait -------------------------------------------------------------- */

static void random_sleep(void)
{
    if (g_slow)
        usleep((useconds_t)(rand() % 100000)); /* random.random() * 0.1 s */
}

static int child_test_wait(void *arg)
{
    (void)arg;
    srand((unsigned)getpid());
    for (int i = 0; i < 10; i++) {
        random_sleep();
        mp_obj_t *msg = mp_obj_new_array();
        mp_obj_array_add(msg, mp_obj_new_int(i));
        mp_obj_array_add(msg, mp_obj_new_int(getpid()));
        if (send_obj(g_conn, msg))
            return 1;
    }
    mp_conn_close(g_conn);
    return 0;
}

static int cmp_pair(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

/* CPython's test_wait(slow): four children each send (i, pid) for i in
   0..9 and close; waiting on the four readers until each is at EOF gets
   exactly those 40 messages. */
static void check_wait(bool slow)
{
    enum { N = 4, MSGS = 10 };
    mp_conn_t *readers[N];
    mp_process_t *procs[N];
    g_slow = slow;
    for (int i = 0; i < N; i++) {
        mp_conn_t *w;
        assert_int_equal(mp_pipe(&readers[i], &w, false), 0);
        g_conn = w;
        procs[i] = tu_start(child_test_wait, NULL, &(mp_process_opts_t){.daemon = true});
        mp_conn_destroy(&w);
    }

    int64_t messages[N * MSGS + 1][2];
    int nmsg = 0, left = N;
    for (int round = 0; left > 0 && round < 1000; round++) {
        mp_waitable_t items[N];
        int idx[N], n = 0;
        for (int i = 0; i < N; i++)
            if (readers[i]) {
                idx[n] = i;
                items[n++] = MP_WAITABLE_CONN(readers[i]);
            }
        assert_true(mp_wait(items, (size_t)n, 10000) > 0);
        for (int k = 0; k < n; k++) {
            if (!items[k].ready)
                continue;
            mp_obj_t *msg = NULL;
            int rc = mp_conn_recv(readers[idx[k]], &msg);
            if (rc == MP_EEOF) {
                mp_conn_destroy(&readers[idx[k]]);
                left--;
                continue;
            }
            assert_int_equal(rc, 0);
            assert_true(nmsg < N * MSGS);
            messages[nmsg][0] = mp_obj_int(mp_obj_array_at(msg, 0));
            messages[nmsg][1] = mp_obj_int(mp_obj_array_at(msg, 1));
            nmsg++;
            mp_obj_destroy(&msg);
        }
    }
    assert_int_equal(left, 0);

    int64_t expected[N * MSGS][2];
    for (int i = 0; i < MSGS; i++)
        for (int k = 0; k < N; k++) {
            expected[i * N + k][0] = i;
            expected[i * N + k][1] = mp_process_pid(procs[k]);
        }
    assert_int_equal(nmsg, N * MSGS);
    qsort(messages, (size_t)nmsg, sizeof *messages, cmp_pair);
    qsort(expected, N * MSGS, sizeof *expected, cmp_pair);
    assert_memory_equal(messages, expected, sizeof expected);
    for (int i = 0; i < N; i++)
        assert_int_equal(tu_join(&procs[i], 10000), 0);
}

static int child_test_wait_socket(void *arg)
{
    (void)arg;
    srand((unsigned)getpid());
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&g_addr, sizeof g_addr))
        return 1;
    for (int i = 0; i < 10; i++) {
        random_sleep();
        char line[8];
        int len = snprintf(line, sizeof line, "%d\n", i);
        if (send(s, line, (size_t)len, MSG_NOSIGNAL) != len)
            return 2;
    }
    close(s);
    return 0;
}

/* CPython's test_wait_socket(slow): four children each write the lines
   "0\n" .. "9\n" to a loopback TCP socket; waiting on the four accepted
   sockets (plain fds) until each is at EOF reads exactly those lines. */
static void check_wait_socket(bool slow)
{
    enum { N = 4 };
    g_slow = slow;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(l, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(l, N), 0);
    socklen_t alen = sizeof g_addr;
    assert_int_equal(getsockname(l, (struct sockaddr *)&g_addr, &alen), 0);

    mp_process_t *procs[N];
    for (int i = 0; i < N; i++)
        procs[i] = tu_start(child_test_wait_socket, NULL, &(mp_process_opts_t){.daemon = true});

    int readers[N];
    char got[N][64];
    size_t got_len[N];
    for (int i = 0; i < N; i++) {
        struct pollfd pfd = {.fd = l, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 10000), 1);
        readers[i] = accept(l, NULL, NULL);
        assert_true(readers[i] >= 0);
        got_len[i] = 0;
    }
    close(l);

    int left = N;
    for (int round = 0; left > 0 && round < 1000; round++) {
        mp_waitable_t items[N];
        int idx[N], n = 0;
        for (int i = 0; i < N; i++)
            if (readers[i] >= 0) {
                idx[n] = i;
                items[n++] = MP_WAITABLE_FD(readers[i]);
            }
        assert_true(mp_wait(items, (size_t)n, 10000) > 0);
        for (int k = 0; k < n; k++) {
            if (!items[k].ready)
                continue;
            int i = idx[k];
            char msg[32];
            ssize_t len = recv(readers[i], msg, sizeof msg, 0);
            assert_true(len >= 0);
            if (len == 0) {
                close(readers[i]);
                readers[i] = -1;
                left--;
                continue;
            }
            assert_true(got_len[i] + (size_t)len <= sizeof got[i]);
            memcpy(got[i] + got_len[i], msg, (size_t)len);
            got_len[i] += (size_t)len;
        }
    }
    assert_int_equal(left, 0);

    static const char expected[] = "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n";
    for (int i = 0; i < N; i++) {
        assert_int_equal(got_len[i], strlen(expected));
        assert_memory_equal(got[i], expected, strlen(expected));
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(tu_join(&procs[i], 10000), 0);
}

/* test_wait: check_wait without delays. */
static void conformance_connection_test_wait(void **state)
{
    check_wait(false);
}

/* test_wait_socket: check_wait_socket without delays; sockets are plain
   fds (MP_WAITABLE_FD). */
static void conformance_connection_test_wait_socket(void **state)
{
    check_wait_socket(false);
}

/* test_wait_slow: check_wait with random sends up to 0.1 s apart. */
static void conformance_connection_test_wait_slow(void **state)
{
    check_wait(true);
}

/* test_wait_socket_slow: check_wait_socket with random delays. */
static void conformance_connection_test_wait_socket_slow(void **state)
{
    check_wait_socket(true);
}

/* test_wait_timeout: wait on a quiet pipe returns nothing after its 5 s
   timeout (between 2.5 s and 10 s); with a message pending it returns
   that end alone in under 0.4 s. */
static void conformance_connection_test_wait_timeout(void **state)
{
    const uint64_t expected = 5000;
    mp_conn_t *a, *b;
    assert_int_equal(mp_pipe(&a, &b, true), 0);
    mp_waitable_t items[2] = {MP_WAITABLE_CONN(a), MP_WAITABLE_CONN(b)};

    uint64_t start = tu_now_ms();
    int res = mp_wait(items, 2, (int)expected);
    uint64_t delta = tu_now_ms() - start;
    assert_int_equal(res, 0);
    assert_true(delta < expected * 2);
    assert_true(delta > expected / 2);

    assert_int_equal(send_obj(b, mp_obj_new_nil()), 0);

    start = tu_now_ms();
    res = mp_wait(items, 2, 20000);
    delta = tu_now_ms() - start;
    assert_int_equal(res, 1);
    assert_true(items[0].ready);
    assert_false(items[1].ready);
    assert_true(delta < 400);
    mp_conn_destroy(&a);
    mp_conn_destroy(&b);
}

static int signal_and_sleep(void *arg)
{
    mp_semaphore_release(g_sem);
    sleep((unsigned)(intptr_t)arg);
    return 0;
}

/* test_wait_integer: wait on [a, the process sentinel (an int fd), b]
   returns the sentinel alone when the child ends after 3 s (between 1 s
   and 5 s); then with messages pending on b, then on a too, those are
   ready as well, each in under 0.4 s. */
static void conformance_connection_test_wait_integer(void **state)
{
    const uint64_t expected = 3;
    g_sem = mp_semaphore_new(0);
    mp_conn_t *a, *b;
    assert_int_equal(mp_pipe(&a, &b, true), 0);
    mp_process_t *p = tu_start(signal_and_sleep, (void *)(intptr_t)expected, NULL);
    int sentinel = mp_process_sentinel(p);
    assert_true(sentinel >= 0);
    assert_int_equal(mp_semaphore_acquire(g_sem, 20000), 0);

    mp_waitable_t items[3] = {MP_WAITABLE_CONN(a), MP_WAITABLE_FD(sentinel), MP_WAITABLE_CONN(b)};
    uint64_t start = tu_now_ms();
    int res = mp_wait(items, 3, (int)(expected + 20) * 1000);
    uint64_t delta = tu_now_ms() - start;
    assert_int_equal(res, 1);
    assert_true(items[1].ready);
    assert_true(delta < (expected + 2) * 1000);
    assert_true(delta > (expected - 2) * 1000);

    assert_int_equal(send_obj(a, mp_obj_new_nil()), 0);

    start = tu_now_ms();
    res = mp_wait(items, 3, 20000);
    delta = tu_now_ms() - start;
    assert_int_equal(res, 2);
    assert_false(items[0].ready);
    assert_true(items[1].ready && items[2].ready);
    assert_true(delta < 400);

    assert_int_equal(send_obj(b, mp_obj_new_nil()), 0);

    start = tu_now_ms();
    res = mp_wait(items, 3, 20000);
    delta = tu_now_ms() - start;
    assert_int_equal(res, 3);
    assert_true(items[0].ready && items[1].ready && items[2].ready);
    assert_true(delta < 400);

    assert_int_equal(mp_process_terminate(p), 0);
    assert_int_equal(tu_join(&p, 10000), 0);
    mp_conn_destroy(&a);
    mp_conn_destroy(&b);
    mp_semaphore_destroy(&g_sem);
}

static void *send_after_200ms(void *arg)
{
    usleep(200 * 1000);
    send_obj(arg, mp_obj_new_nil());
    return NULL;
}

/* test_neg_timeout: Python's wait([a], timeout=-1) returns [] at once.
   Divergence: libmp's negative timeout waits forever (mp/lock.h, "all of
   libmp"), C's usual convention. Asserted: wait([a], 0) returns nothing
   at once (Python's bound: under 1 s), and wait([a], -1) waits until a
   has a message (sent by a thread after 200 ms). */
static void conformance_connection_test_neg_timeout(void **state)
{
    mp_conn_t *a, *b;
    assert_int_equal(mp_pipe(&a, &b, true), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, send_after_200ms, b), 0);
    mp_waitable_t item = MP_WAITABLE_CONN(a);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_wait(&item, 1, 0), 0); /* what Python's -1 does: no wait */
    assert_true(tu_now_ms() - t0 < 1000);
    t0 = tu_now_ms();
    int res = mp_wait(&item, 1, -1);
    uint64_t delta = tu_now_ms() - t0;
    pthread_join(t, NULL);
    assert_int_equal(res, 1);
    assert_true(delta >= 150);
    assert_int_equal(mp_conn_close(a), 0);
    assert_int_equal(mp_conn_close(b), 0);
    mp_conn_destroy(&a);
    mp_conn_destroy(&b);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(conformance_connection_test_connection, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_duplex_false, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_spawn_close, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_sendbytes, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_context, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_empty_string, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_strings, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_boundaries, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_dont_merge, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_wait, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_wait_socket, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_wait_slow, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_wait_socket_slow, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_wait_timeout, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_wait_integer, tu_teardown),
        cmocka_unit_test_teardown(conformance_connection_test_neg_timeout, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
