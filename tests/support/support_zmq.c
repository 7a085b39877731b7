/*  support_zmq.c - raw ZeroMQ sockets for the tests that speak a protocol
    by hand (only the programs that call these link libzmq's symbols).
*/
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
