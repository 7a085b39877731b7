/*  support_zmq.c - raw ZeroMQ sockets for the tests that speak a protocol
    by hand (only the programs that call these link libzmq's symbols).
*/
#include <string.h>
#include <zmq.h>

#include "support.h"

void *tu_dealer(void *ctx, const char *endpoint)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    assert_non_null(s);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(s, endpoint), 0);
    return s;
}

void tu_send_frames(void *sock, int n, const void *const *data, const size_t *size)
{
    for (int i = 0; i < n; i++)
        assert_true(zmq_send(sock, data[i], size[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
}

int tu_recv_frames(void *sock, int k, void *buf, size_t size, size_t *len)
{
    int n = 0, more = 1;
    *len = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, 0) < 0) {
            zmq_msg_close(&m);
            return -1;
        }
        if (n == k) {
            *len = zmq_msg_size(&m);
            memcpy(buf, zmq_msg_data(&m), *len < size ? *len : size);
        }
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        n++;
    }
    return n;
}
