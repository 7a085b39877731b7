/*  test_mpps.c - MPP/1 over a byte stream (libmp/codec/mpps.h), the
    framing an embedded pool's broker and worker speak on their socket
    pair: messages arrive whole, in order, frame for frame, also a 1 MiB
    one through a full socket and one delivered a byte at a time; what is
    not that framing is refused (MP_EBADMSG) before anything is built;
    more frames than MPP/1 has are counted as too many; the end is EOF. */
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/mpps.h"
#include "support.h"

static void frame(zmq_msg_t *f, const void *p, size_t n)
{
    zmq_msg_init_size(f, n);
    if (n)
        memcpy(zmq_msg_data(f), p, n);
}

/* Takes the next message from fd, reading as needed (2 s at most). */
static int take(mpps_buf_t *in, int fd, mpp_msg_t *m)
{
    uint64_t end = tu_now_ms() + 2000;
    for (;;) {
        int got = mpps_take(in, m, 0);
        if (got)
            return got;
        int rc = mpps_fill(in, fd);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (tu_now_ms() > end)
                return 0;
            struct pollfd p = {.fd = fd, .events = POLLIN};
            poll(&p, 1, 100);
        }
    }
}

static void test_mpps_messages_arrive_whole_and_in_order(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    mpps_buf_t out = {0}, in = {0};
    size_t big = 1u << 20;
    char *blob = malloc(big);
    for (size_t i = 0; i < big; i++)
        blob[i] = (char)(i * 31);
    zmq_msg_t pay[2];
    frame(&pay[0], "items", 5);
    frame(&pay[1], "", 0);
    assert_int_equal(mpps_put(&out, "MPW01", 0x02, "hdr", 3, pay, 2), 0);
    frame(&pay[0], blob, big);
    assert_int_equal(mpps_put(&out, "MPW01", 0x03, "h2", 2, pay, 1), 0);
    assert_int_equal(mpps_put(&out, "MPW01", 0x04, NULL, 0, NULL, 0), 0);
    /* more than the socket holds: written as the reader makes room */
    int rc = mpps_flush(&out, sv[0]);
    assert_int_equal(rc, 1);
    mpp_msg_t m;
    static const uint8_t cmds[] = {0x02, 0x03, 0x04};
    static const int frames[] = {5, 4, 3};
    for (int k = 0; k < 3; k++) {
        int got;
        while ((got = mpps_take(&in, &m, 0)) == 0) {
            if (mpps_pending(&out))
                assert_true(mpps_flush(&out, sv[0]) >= 0);
            struct pollfd p = {.fd = sv[1], .events = POLLIN};
            poll(&p, 1, 100);
            assert_true(mpps_fill(&in, sv[1]) >= 0);
        }
        assert_int_equal(got, 1);
        assert_int_equal(m.n, frames[k]);
        assert_false(m.too_many);
        assert_memory_equal(mpp_data(&m, 0), "MPW01", 5);
        assert_int_equal(mpp_data(&m, 1)[0], cmds[k]);
        if (k == 0) {
            assert_int_equal(mpp_size(&m, 3), 5);
            assert_int_equal(mpp_size(&m, 4), 0);
        }
        if (k == 1) {
            assert_int_equal(mpp_size(&m, 3), big);
            assert_memory_equal(mpp_data(&m, 3), blob, big);
        }
        mpp_close(&m);
    }
    assert_int_equal(mpps_pending(&out), 0);
    /* a byte at a time: nothing until the last one */
    assert_int_equal(mpps_put(&out, "MPC01", 0x09, "x", 1, NULL, 0), 0);
    size_t n = mpps_pending(&out);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(send(sv[0], out.buf + out.off + i, 1, 0), 1);
        struct pollfd p = {.fd = sv[1], .events = POLLIN};
        assert_int_equal(poll(&p, 1, 2000), 1);
        assert_int_equal(mpps_fill(&in, sv[1]), 1); /* the byte */
        assert_int_equal(mpps_take(&in, &m, 0), i + 1 == n ? 1 : 0);
    }
    assert_int_equal(mpp_data(&m, 1)[0], 0x09);
    mpp_close(&m);
    out.off = out.len = 0;
    /* the end */
    close(sv[0]);
    assert_int_equal(take(&in, sv[1], &m), MP_EEOF);
    close(sv[1]);
    mpps_free(&in);
    mpps_free(&out);
    free(blob);
}

/* Bytes handed to a reader as they are. */
static int take_bytes(const void *p, size_t n, mpp_msg_t *m)
{
    mpps_buf_t in = {.buf = malloc(n), .len = n, .cap = n};
    memcpy(in.buf, p, n);
    int got = mpps_take(&in, m, 0);
    mpps_free(&in);
    return got;
}

static void test_mpps_what_is_not_the_framing_is_refused(void **state)
{
    (void)state;
    mpp_msg_t m;
    static const struct {
        const char *what;
        const char *bytes;
        size_t n;
    } bad[] = {
        {"length 0", "\0\0\0\0", 4},
        {"no frame", "\0\0\0\1\0", 5},
        {"a frame past the end", "\0\0\0\x06\1\0\0\0\x09x", 10},
        {"bytes after the frames", "\0\0\0\x07\1\0\0\0\0xy", 11},
        {"over 64 MiB", "\x7f\xff\xff\xff\1", 5},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (take_bytes(bad[i].bytes, bad[i].n, &m) != MP_EBADMSG)
            fail_msg("%s: not refused", bad[i].what);
    /* seven empty frames: MPP/1 has at most six (with a routing id) */
    uint8_t seven[4 + 1 + 7 * 4] = {0, 0, 0, 29, 7};
    assert_int_equal(take_bytes(seven, sizeof seven, &m), 1);
    assert_true(m.too_many);
    assert_int_equal(m.n, MPP_MAX_FRAMES + 1);
    mpp_close(&m);
    /* a frame count the lengths do not match (3 said, 1 there) */
    uint8_t short_count[4 + 1 + 4] = {0, 0, 0, 5, 3};
    assert_int_equal(take_bytes(short_count, sizeof short_count, &m), MP_EBADMSG);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_mpps_messages_arrive_whole_and_in_order, tu_teardown),
        cmocka_unit_test_teardown(test_mpps_what_is_not_the_framing_is_refused, tu_teardown),
    };
    return cmocka_run_group_tests_name("mpps", tests, NULL, NULL);
}
