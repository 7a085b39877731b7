/*  io.c - the pool's I/O thread: the one thread that speaks MPP/1 on the
    pool's own session.

    It owns the pool's DEALER socket. Its loop, with the mutex held except
    while it polls or hands ready calls to their callbacks: send what the
    window allows (send.c), ask for a STATUS when a caller wants one, poll
    the socket and the wake eventfd (callers poke it: mp__pool_wake) until
    the next heartbeat is due, handle what the broker sent (recv.c), and
    every heartbeat interval: HEARTBEAT, notice a dead embedded worker or a
    silent broker (each fails every call: mp__pool_fail_all; a silent
    broker gets a new socket and HELLO), and keep the blocking applies'
    session alive (sync.c).

    Invariants: no other thread touches pool->sock; callbacks never run
    with the mutex held; when the pool stops, everything left fails
    (CANCELLED) before the thread says DISCONNECT and closes its socket.
*/
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"
#include "callbacks.h"
#include "codec/mpp.h"
#include "io.h"
#include "mp/error.h"
#include "pool_impl.h"
#include "recv.h"
#include "send.h"
#include "session.h"
#include "sync.h"

#define WHO "mp-pool"

static int open_socket(mp_pool_t *pool)
{
    int rc = mp__session_open(pool->ctx, pool->endpoint, &pool->curve, &pool->sock);
    if (!rc && !pool->embedded)
        rc = mp__curve_watch(pool->ctx, pool->sock, &pool->watch);
    if (rc)
        return rc;
    pool->last_heard = mp__now_ns();
    mp__session_hello(MP__DEALER(pool->sock), false, pool->heartbeat_ms, pool->window);
    return 0;
}

static void close_socket(mp_pool_t *pool)
{
    mp__curve_unwatch(&pool->watch);
    mpp_socket_close(pool->sock);
    pool->sock = NULL;
}

/* A handshake failed before the broker ever answered: a CURVE broker
   refused this client's key (or it has none, or it speaks CURVE and the
   broker does not). mp_pool_new fails at once with MP_EAUTH. */
static void check_refused(mp_pool_t *pool)
{
    if (!mp__curve_refused(&pool->watch) || pool->ever_heard || pool->connect_error)
        return;
    mp__log(MP_LOG_WARN, WHO, "broker %s refused the handshake: it %s", pool->endpoint,
            pool->watch.why);
    pool->connect_error = MP_EAUTH;
    pool->stopping = true;
    pthread_cond_broadcast(&pool->cond);
}

/* Messages wait on the socket: the broker spoke while this thread was busy
   (placing or failing a million items), so it is not silent. */
static bool pending_input(mp_pool_t *pool)
{
    int events = mpp_events(pool->sock);
    if (events < 0 || !(events & ZMQ_POLLIN))
        return false;
    pool->last_heard = mp__now_ns();
    return true;
}

void *mp__pool_io_thread(void *arg)
{
    mp_pool_t *pool = arg;
    uint64_t interval = (uint64_t)pool->heartbeat_ms * 1000000ull;
    uint64_t next_hb = mp__now_ns() + interval;
    ready_t ready = {0};
    pthread_mutex_lock(&pool->mutex);
    int rc = open_socket(pool);
    if (rc) {
        pool->connect_error = rc;
        pool->stopping = true;
        pthread_cond_broadcast(&pool->cond);
    }
    while (!pool->stopping) {
        mp__pool_send_cancels(pool);
        mp__pool_pump(pool, &ready);
        if (pool->status_wanted && !pool->status_sent && pool->connected)
            pool->status_sent =
                (pool->drain_id ? mp__session_drain(MP__DEALER(pool->sock), pool->drain_id)
                                : mp__session_command(MP__DEALER(pool->sock), MPP_C_STATUS)) == 0;
        pthread_mutex_unlock(&pool->mutex);
        if (ready.n) {
            mp__pool_run_callbacks(pool, ready.v, ready.n);
            ready.n = 0;
        }
        /* the sockets first: both asked before sleeping (mpp_poll) */
        zmq_pollitem_t items[3] = {{pool->sock, 0, ZMQ_POLLIN, 0},
                                   {pool->watch.pair, 0, ZMQ_POLLIN, 0},
                                   {NULL, pool->wake_fd, ZMQ_POLLIN, 0}};
        if (!pool->watch.pair) /* no CURVE watch: the socket and the eventfd */
            items[1] = items[2];
        uint64_t now = mp__now_ns();
        long timeout = next_hb > now ? (long)((next_hb - now) / 1000000) + 1 : 0;
        int nitems = pool->watch.pair ? 3 : 2, at_wake = nitems - 1;
        mpp_poll(items, nitems, nitems - 1, timeout);
        if (items[at_wake].revents & ZMQ_POLLIN) {
            uint64_t v;
            ssize_t r = read(pool->wake_fd, &v, sizeof v);
            (void)r;
        }
        pthread_mutex_lock(&pool->mutex);
        if (pool->watch.pair && (items[1].revents & ZMQ_POLLIN))
            check_refused(pool);
        if (items[0].revents & ZMQ_POLLIN) {
            for (int k = 0; k < 256; k++) {
                mpp_msg_t m;
                if (mpp_recv(pool->sock, &m, ZMQ_DONTWAIT))
                    break;
                pool->last_heard = mp__now_ns();
                pool->ever_heard = true;
                mp__pool_on_message(pool, &m, &ready);
                mpp_close(&m);
                /* a heavy message (a million results to place, or to fail)
                   must not hold the heartbeat back: it goes first */
                if (mp__now_ns() >= next_hb)
                    break;
            }
        }
        now = mp__now_ns();
        if (now >= next_hb) {
            next_hb = now + interval;
            if (pool->embedded && !pool->worker_dead && !pool->terminated && !pool->closed &&
                pool->worker && !mp_process_is_alive(pool->worker)) {
                /* nobody else will serve this pool: fail, never wait */
                mp__log(MP_LOG_ERROR, WHO, "the pool's worker process exited");
                pool->worker_dead = true;
                mp__pool_fail_all(pool, MP_EWORKERLOST, "the pool's worker process exited", &ready);
            }
            if (now - pool->last_heard > interval * MPP_LIVENESS && !pending_input(pool)) {
                /* before its first answer the broker is not "silent": it
                   was never reached (mp_pool_new says so at its timeout) */
                mp__log(pool->ever_heard && !pool->holding ? MP_LOG_WARN : MP_LOG_DEBUG, WHO,
                        "broker %s silent for %llu ms%s", pool->endpoint,
                        (unsigned long long)((now - pool->last_heard) / 1000000),
                        pool->ever_heard ? "" : " (never answered yet); reconnecting");
                pool->connected = false;
                pool->status_sent = false; /* asked again of the next broker */
                if (pool->resend)
                    mp__pool_hold_all(pool, &ready); /* sent again when it is back */
                else
                    mp__pool_fail_all(pool, MP_EBROKERLOST, "the broker is silent (lost)", &ready);
                close_socket(pool);
                if (open_socket(pool))
                    break;
            } else {
                mp__session_command(MP__DEALER(pool->sock), MPP_C_HEARTBEAT);
            }
            mp__pool_sync_keepalive(pool);
            if (pool->holding &&
                mp__now_ns() - pool->lost_ns > (uint64_t)pool->reconnect_timeout_ms * 1000000ull) {
                char why[96];
                snprintf(why, sizeof why, "the broker was lost and did not come back within %d ms",
                         pool->reconnect_timeout_ms);
                mp__log(MP_LOG_WARN, WHO, "%s", why);
                mp__pool_fail_all(pool, MP_EBROKERLOST, why, &ready);
            }
        }
    }
    /* stopping: whatever is left ends now */
    mp__pool_fail_all(pool, MP_ECANCELLED, "the pool was terminated", &ready);
    pthread_mutex_unlock(&pool->mutex);
    if (ready.n)
        mp__pool_run_callbacks(pool, ready.v, ready.n);
    free(ready.v);
    if (pool->sock) {
        mp__session_command(MP__DEALER(pool->sock), MPP_C_DISCONNECT);
        close_socket(pool);
    }
    return NULL;
}
