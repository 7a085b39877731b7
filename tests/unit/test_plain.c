/*  test_plain.c - plain stream endpoints' connect (libmp/codec/plain.c):
    the two-step connect a worker's loop uses (start, then finish once the
    socket is writable) never waits, whether the listener accepts at once,
    nobody listens, or the listener's queue is full and drops the
    handshake; the blocking connect gives up at its deadline.
*/
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support.h"

#include "base/base.h"
#include "codec/plain.h"
#include "mp/error.h"

/* Whether fd becomes writable within ms. */
static bool writable_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    return poll(&p, 1, ms) == 1;
}

/* A listener on a free loopback port, and its mpp+tcp:// endpoint. */
static int listener(int backlog, char *ep, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, backlog), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    snprintf(ep, size, "mpp+tcp://127.0.0.1:%d", ntohs(a.sin_port));
    return fd;
}

static void test_plain_connect_in_two_steps_to_a_listener(void **state)
{
    (void)state;
    char ep[64];
    int l = listener(16, ep, sizeof ep), fd = -1;
    uint64_t t0 = mp__now_ns();
    int rc = mp__plain_connect_start("mpp", ep, &fd);
    assert_true(mp__now_ns() - t0 < 50000000ull); /* it did not wait */
    assert_true(rc == 0 || rc == 1);
    if (rc == 1) {
        assert_true(writable_within(fd, 2000));
        assert_int_equal(mp__plain_connect_finish(fd), 0);
    }
    int peer = accept(l, NULL, NULL);
    assert_true(peer >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    char c = 0;
    assert_int_equal(read(peer, &c, 1), 1);
    assert_int_equal(c, 'x');
    close(peer);
    close(fd);
    close(l);
}

static void test_plain_connect_to_nobody_is_refused(void **state)
{
    (void)state;
    char ep[64];
    close(listener(1, ep, sizeof ep)); /* a port nobody listens on now */
    int fd = -1, rc = mp__plain_connect_start("mpp", ep, &fd);
    if (rc == 1) {
        assert_true(writable_within(fd, 2000));
        rc = mp__plain_connect_finish(fd);
        close(fd);
    }
    assert_int_equal(rc, -ECONNREFUSED);
    assert_int_equal(mp__plain_connect("mpp", ep, mp__now_ns() + 1000000000ull, &fd),
                     -ECONNREFUSED);
    assert_int_equal(mp__plain_connect_start("mpp", "tcp://127.0.0.1:1", &fd), MP_EINVAL);
}

/* A listener that accepts nobody, its queue full: the kernel drops the
   handshake, so a connect stays under way. start returns at once, and the
   blocking connect returns at its deadline. */
static void test_plain_connect_to_a_full_listener_never_waits(void **state)
{
    (void)state;
    char ep[64];
    int l = listener(0, ep, sizeof ep), filler[4], fd = -1;
    for (int i = 0; i < 4; i++) { /* fill the accept queue */
        filler[i] = -1;
        if (mp__plain_connect_start("mpp", ep, &filler[i]) == 1)
            writable_within(filler[i], 200);
    }
    uint64_t t0 = mp__now_ns();
    int rc = mp__plain_connect_start("mpp", ep, &fd);
    assert_true(mp__now_ns() - t0 < 50000000ull);
    assert_int_equal(rc, 1);
    assert_false(writable_within(fd, 300)); /* still under way */
    close(fd);
    t0 = mp__now_ns();
    assert_int_equal(mp__plain_connect("mpp", ep, t0 + 300000000ull, &fd), MP_ETIMEDOUT);
    uint64_t took = (mp__now_ns() - t0) / 1000000;
    printf("# a connect to a full listener: MP_ETIMEDOUT after %llu ms (deadline 300)\n",
           (unsigned long long)took);
    assert_true(took >= 290 && took < 1000);
    for (int i = 0; i < 4; i++)
        if (filler[i] >= 0)
            close(filler[i]);
    close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_connect_in_two_steps_to_a_listener),
        cmocka_unit_test(test_plain_connect_to_nobody_is_refused),
        cmocka_unit_test(test_plain_connect_to_a_full_listener_never_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
