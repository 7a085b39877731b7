/*  sync.c - blocking applies on the caller's own session.

    A blocking mp_pool_apply used to cross main -> I/O thread (eventfd) ->
    broker and back broker -> I/O thread -> main (condition variable): two
    of the ~12 thread wake-ups of a round trip, at ~11 us each on the VMs of
    BENCHMARKS.md, plus the I/O thread's work in between. Now the calling
    thread sends the SUBMIT and waits for the RESULT itself, on a DEALER of
    its own: a second client session to the same broker (PROTOCOL.md allows
    any number). ZeroMQ sockets are not thread-safe, so sync_mutex owns that
    socket: a call that finds it taken (another thread's blocking apply)
    goes through the I/O thread as before, and so does every call while the
    pool is not connected. While no call holds it, the I/O thread keeps the
    session alive (mp__pool_sync_keepalive). Everything that ends the pool's
    calls (mp__pool_fail_all: terminate, a lost worker or broker) ends a
    blocking apply too, through fail_gen and sync_fd.

    On an embedded pool the session is not a DEALER but one end of a socket
    pair the broker thread serves as a stream peer (PROTOCOL.md 9.2, made
    with the broker: pool.c): a call is a write and a read, with no ZeroMQ
    mailbox between the caller and the broker thread. Should that stream
    end (it ends only with the broker), the next call opens a DEALER.

    Invariants: only the holder of sync_mutex touches pool->sync and the
    sync_* fields; the pool's mutex is taken only briefly (to count the
    call and to read fail_gen), never while waiting. Messages are encoded
    by session.c, as the I/O thread's, and error lists decoded by
    results.c: this file calls nothing above them.
*/

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/mpp.h"
#include "mp/error.h"
#include "pool_impl.h"
#include "results.h"
#include "session.h"
#include "sync.h"

#define WHO "mp-pool"

static int sync_open(mp_pool_t *pool)
{
    void *sock;
    int rc = mp__session_open(pool->ctx, pool->endpoint, &pool->curve, &sock);
    if (rc) {
        if (sock)
            zmq_close(sock);
        return rc;
    }
    pool->sync.sock = sock;
    pool->sync_welcomed = false;
    pool->sync_last_heard = mp__now_ns();
    return 0;
}

void mp__pool_sync_close(mp_pool_t *pool)
{
    mp__link_close(&pool->sync);
    pool->sync_welcomed = false;
}

/* The SUBMIT of one apply; the items frame is copied first (a resend after
   an unknown-client DISCONNECT needs it again). sync_mutex held. */
static int sync_submit(mp_pool_t *pool, uint64_t id, const char *name, zmq_msg_t *items)
{
    int rc = 0;
    if (!pool->sync_welcomed) { /* the broker handles HELLO before the SUBMIT behind it */
        rc = mp__session_hello(&pool->sync, true, pool->heartbeat_ms, pool->window);
        pool->sync_welcomed = rc == 0;
    }
    if (!rc) {
        zmq_msg_t copy;
        zmq_msg_init(&copy);
        zmq_msg_copy(&copy, items);
        rc = mp__session_submit(&pool->sync, id, name, MPP_MODE_STAR, 1, NULL, pool->time_limit_ms,
                                &copy, pool->has_init ? &pool->init : NULL);
    }
    /* a stream that did not take it whole (the broker thread stalled, or
       is gone) is closed: what it holds must not run later, for a call
       that failed (the broker drops a closed stream's work) */
    if (rc && !pool->sync.sock)
        mp__pool_sync_close(pool);
    return rc ? MP_EBROKERLOST : 0;
}

/* The one RESULT of a one-item chunk: its value, or the code its error
   gives (as the I/O thread's path: job.c, job_set_ready). */
static int sync_result(mpp_msg_t *m, mp__rd_t *r, const char *name, mp_obj_t **result_p)
{
    size_t n, nv;
    uint64_t id, base, count, nerrors;
    if (mp__rd_array(r, &n) || n < 4 || mp__rd_uint(r, &id) || mp__rd_uint(r, &base) ||
        mp__rd_uint(r, &count) || mp__rd_uint(r, &nerrors) || m->n != (nerrors ? 5 : 4) ||
        base != 0 || count != 1)
        return MP_EBADREQUEST;
    if (nerrors) {
        mp_items_t *e = mp_items_new();
        int rc = e ? mp__pool_decode_errors(e, name, mpp_data(m, 4), mpp_size(m, 4), 0) : MP_ENOMEM;
        if (!rc)
            rc = mp_items_nerrors(e) ? mp_items_error_at(e, 0)->code : MP_EBADREQUEST;
        mp_items_destroy(&e);
        return rc == MP_EBADMSG ? MP_EBADREQUEST : rc;
    }
    mp__rd_t vr;
    mp__rd_init(&vr, mpp_data(m, 3), mpp_size(m, 3));
    if (mp__rd_array(&vr, &nv) || nv != 1)
        return MP_EBADREQUEST;
    int rc = mp_obj_unpack(vr.p, mp__rd_left(&vr), result_p);
    return rc == MP_ENOMEM ? rc : rc ? MP_EBADREQUEST : 0;
}

/* What a blocking apply waits for. */
typedef struct {
    uint64_t id;
    const char *name;
    zmq_msg_t *items;
    mp_obj_t **result_p;
    bool resent; /* after an unknown-client DISCONNECT */
    bool done;
    int rc;
} sync_call_t;

/* One message on the blocking session. sync_mutex held. */
static void sync_on_message(mp_pool_t *pool, mpp_msg_t *m, sync_call_t *call)
{
    pool->sync_last_heard = mp__now_ns();
    if (!mp__session_valid(m))
        return;
    mp__rd_t r, peek;
    size_t n;
    uint64_t id;
    mp__rd_init(&r, mpp_data(m, 2), mpp_size(m, 2));
    peek = r;
    uint8_t cmd = mpp_data(m, 1)[0];
    bool ours = (cmd == MPP_B_RESULT || cmd == MPP_B_FAILED) && call &&
                mp__rd_array(&peek, &n) == 0 && n >= 1 && mp__rd_uint(&peek, &id) == 0 &&
                id == call->id; /* else an abandoned call's answer, or a WELCOME */
    if (ours && cmd == MPP_B_RESULT) {
        call->rc = sync_result(m, &r, call->name, call->result_p);
        call->done = true;
    } else if (ours) {
        int64_t code;
        call->rc = mp__rd_array(&r, &n) == 0 && n >= 3 && mp__rd_uint(&r, &id) == 0 &&
                           mp__rd_int(&r, &code) == 0
                       ? (int)code
                       : MP_EBADREQUEST;
        call->done = true;
    } else if (cmd == MPP_B_DISCONNECT) {
        /* the broker forgot this session (it expired it, or restarted): a
           new one, and the SUBMIT again (it was not queued: the broker
           answers an unknown client's SUBMIT with this) */
        const char *why = "";
        size_t len = 0;
        if (mp__rd_array(&r, &n) == 0 && n >= 1)
            mp__rd_str(&r, &why, &len);
        pool->sync_welcomed = false;
        bool unknown = len >= 7 && memcmp(why, "unknown", 7) == 0;
        if (call && !call->done && unknown && !call->resent) {
            call->resent = true;
            if (sync_submit(pool, call->id, call->name, call->items) == 0)
                return;
        }
        if (call && !call->done) {
            call->rc = MP_EBROKERLOST;
            call->done = true;
        }
    }
}

/* Reads what the blocking session holds. A stream that ended or broke
   (the broker thread is gone) ends the call, and the next call opens a
   DEALER instead. sync_mutex held. */
static void sync_drain(mp_pool_t *pool, sync_call_t *call)
{
    for (int k = 0; k < 256 && !(call && call->done); k++) {
        mpp_msg_t m;
        int rc = mp__link_recv(&pool->sync, &m);
        if (rc && !pool->sync.sock && rc != -EAGAIN) {
            mp__log(MP_LOG_WARN, WHO, "the blocking applies' stream to the broker ended: %s",
                    mp_strerror(rc));
            mp__pool_sync_close(pool);
            if (call) {
                call->rc = MP_EBROKERLOST;
                call->done = true;
            }
        }
        if (rc)
            break;
        sync_on_message(pool, &m, call);
        mpp_close(&m);
    }
}

/* Never waits for room on a stream (the I/O thread's tick holds the
   pool's mutex; a waiting call must see terminate): what the socket does
   not take goes with the next send. */
static void sync_heartbeat(mp_pool_t *pool)
{
    int stall = pool->sync.stall_ms;
    pool->sync.stall_ms = 0;
    mp__session_command(&pool->sync, MPP_C_HEARTBEAT);
    pool->sync.stall_ms = stall;
}

/* The I/O thread's heartbeat tick: an idle blocking session stays known to
   the broker, and what the broker sent it meanwhile is read. Never waits
   for a call in progress (that call heartbeats itself). */
void mp__pool_sync_keepalive(mp_pool_t *pool)
{
    if (pthread_mutex_trylock(&pool->sync_mutex))
        return;
    if (pool->sync.sock || pool->sync.fd >= 0) {
        sync_drain(pool, NULL);
        if (pool->sync_welcomed)
            sync_heartbeat(pool);
    }
    pthread_mutex_unlock(&pool->sync_mutex);
}

/* Waits for call's answer, heartbeating; ends it early when
   mp__pool_fail_all ends the pool's calls (generation gen) or the broker
   falls silent. */
static void sync_wait(mp_pool_t *pool, sync_call_t *call, unsigned gen)
{
    uint64_t interval = (uint64_t)pool->heartbeat_ms * 1000000ull;
    uint64_t next_hb = mp__now_ns() + interval;
    while (!call->done) {
        mp__link_t *l = &pool->sync;
        zmq_pollitem_t items[2] = {{l->sock, l->sock ? 0 : l->fd, ZMQ_POLLIN, 0},
                                   {NULL, pool->sync_fd, ZMQ_POLLIN, 0}};
        uint64_t now = mp__now_ns();
        long timeout = next_hb > now ? (long)((next_hb - now) / 1000000) + 1 : 0;
        bool buffered = mp__link_buffered(l); /* read already: poll(2) cannot tell */
        mpp_poll(items, 2, l->sock ? 1 : 0, buffered ? 0 : timeout);
        if (buffered)
            items[0].revents |= ZMQ_POLLIN;
        if (items[0].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
            sync_drain(pool, call);
        if (call->done)
            break;
        if (items[1].revents & ZMQ_POLLIN) {
            uint64_t v;
            ssize_t r = read(pool->sync_fd, &v, sizeof v);
            (void)r;
        }
        pthread_mutex_lock(&pool->mutex);
        if (pool->fail_gen != gen) {
            call->rc = pool->fail_code;
            call->done = true;
        }
        pthread_mutex_unlock(&pool->mutex);
        now = mp__now_ns();
        if (call->done || now < next_hb)
            continue;
        next_hb = now + interval;
        if (now - pool->sync_last_heard > interval * MPP_LIVENESS) {
            call->rc = pool->resend ? MP_EAGAIN : MP_EBROKERLOST; /* EAGAIN: the I/O path */
            call->done = true;
            /* a late answer must not meet the next call; a closed stream's
               work is dropped by the broker, so the call does not run
               after it failed (the next call opens a DEALER) */
            mp__pool_sync_close(pool);
        } else {
            sync_heartbeat(pool);
        }
    }
}

int mp__pool_apply_sync(mp_pool_t *pool, const char *name, const mp_obj_t *args,
                        mp_obj_t **result_p)
{
    if (pthread_mutex_trylock(&pool->sync_mutex))
        return MP_EAGAIN;
    /* the items frame: [args], packed before anything is counted */
    char ab[256];
    mp__buf_t b;
    mp__buf_init(&b, ab, sizeof ab);
    int rc = mp__w_array(&b, 1);
    rc = rc ? rc : args ? mp__obj_pack_into(args, &b) : mp__w_array(&b, 0);
    zmq_msg_t items;
    if (!rc && zmq_msg_init_size(&items, b.size) == 0)
        memcpy(zmq_msg_data(&items), b.data, b.size);
    else if (!rc)
        rc = MP_ENOMEM;
    mp__buf_release(&b);
    if (rc) {
        pthread_mutex_unlock(&pool->sync_mutex);
        return rc;
    }
    pthread_mutex_lock(&pool->mutex);
    if (pool->closed || pool->terminated || pool->stopping || pool->worker_dead)
        rc = pool->worker_dead ? MP_EWORKERLOST : MP_ESTATE; /* as mp__pool_submit (send.c) */
    else if (!pool->connected)
        rc = MP_EAGAIN; /* the I/O thread's path waits for the broker */
    sync_call_t call = {
        .id = ++pool->next_chunk_id, .name = name, .items = &items, .result_p = result_p};
    unsigned gen = pool->fail_gen;
    bool counted = rc == 0;
    if (counted)
        pool->active_jobs++; /* mp_pool_join waits for it */
    pthread_mutex_unlock(&pool->mutex);
    if (!rc && !pool->sync.sock && pool->sync.fd < 0)
        rc = sync_open(pool);
    if (!rc) {
        sync_drain(pool, NULL); /* heartbeats and stale answers since the last call */
        if (!pool->sync.sock && pool->sync.fd < 0) /* that found the stream ended */
            rc = sync_open(pool);
    }
    if (!rc)
        rc = sync_submit(pool, call.id, name, &items);
    if (!rc) {
        sync_wait(pool, &call, gen);
        rc = call.rc;
    }
    if (counted) {
        pthread_mutex_lock(&pool->mutex);
        if (--pool->active_jobs == 0)
            pthread_cond_broadcast(&pool->cond);
        pthread_mutex_unlock(&pool->mutex);
    }
    zmq_msg_close(&items);
    pthread_mutex_unlock(&pool->sync_mutex);
    return rc;
}
