/*  engine.c - the MPP/1 broker engine (docs/PROTOCOL.md): its thread,
    its loop, and the public calls (mp/broker.h).

    One thread, one ROUTER socket bound to every endpoint, one control PAIR
    for stop. The state (peers, chunks, units) and its invariants are
    described in broker_impl.h.

    The items and values frames travel through the broker without being
    decoded: the broker reads headers only (validated), so a map of ints
    costs it a few microseconds per chunk, whatever the chunk holds.

    The engine's files, bottom up (each calls only those before it):
    peers.c (peers, sending), units.c (chunks, units, queues), sched.c
    (dispatch, departures), clients.c and workers.c (one function per
    command), engine.c (routing, heartbeats, shutdown, the thread).
*/
#include <errno.h>
#include <time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <czmq.h>
#include <sys/stat.h>
#include <zmq.h>

#include "broker_impl.h"
#include "broker_shm.h"
#include "codec/plain.h"
#include "base/log.h"
#include "mp/error.h"

#define MAX_ENDPOINT 256

static void route(mp_broker_t *b, mpp_msg_t *m)
{
    for (int i = 0; i < m->n; i++)
        b->bytes_in += mpp_size(m, i);
    char hex[16] = "?";
    if (m->n >= 1 && bk_stream_is(mpp_data(m, 0), mpp_size(m, 0)))
        bk_stream_name(b, mpp_data(m, 0), mpp_size(m, 0), hex, sizeof hex);
    else if (m->n >= 1)
        mpp_id_hex(mpp_data(m, 0), mpp_size(m, 0) < 6 ? mpp_size(m, 0) : 6, hex, sizeof hex);
    if (m->too_many || m->n < 4) {
        bk_malformed(b, NULL, hex, 0, m->too_many ? "too many frames" : "too few frames");
        return;
    }
    size_t hmax = MPP_MAX_HEADER;
    if (mpp_size(m, 1) != MPP_SIG_SIZE || mpp_size(m, 2) != 1) {
        bk_malformed(b, NULL, hex, 0, "bad signature or command frame");
        return;
    }
    uint8_t cmd = mpp_data(m, 2)[0];
    bool is_worker = memcmp(mpp_data(m, 1), MPP_SIG_WORKER, MPP_SIG_SIZE) == 0;
    bool is_client = memcmp(mpp_data(m, 1), MPP_SIG_CLIENT, MPP_SIG_SIZE) == 0;
    if (is_worker && cmd == MPP_W_READY)
        hmax = MPP_MAX_READY_HEADER;
    if (!is_worker && !is_client) {
        bk_malformed(b, NULL, hex, cmd, "unknown protocol signature");
        return;
    }
    if (mpp_size(m, 3) > hmax) {
        bk_malformed(b, NULL, hex, cmd, "header too large");
        return;
    }
    mp__rd_t r;
    mp__rd_init(&r, mpp_data(m, 3), mpp_size(m, 3));
    if (is_worker)
        bk_on_worker(b, m, mpp_data(m, 0), mpp_size(m, 0), cmd, &r);
    else
        bk_on_client(b, m, mpp_data(m, 0), mpp_size(m, 0), cmd, &r);
}

static bool has_peer(mp_broker_t *b, const void *id, size_t idlen)
{
    return bk_peer_find(b, id, idlen) != NULL;
}

/* A stream peer's connection closed (streams.c: it ended, broke, or a
   send to it failed): a process gone, or a peer starting over; either way
   its peer is gone now, not once its heartbeats lapse (a worker's
   dispatches go back to the queue at once). */
static void stream_gone(mp_broker_t *b, const void *id, size_t idlen, const char *why)
{
    peer_t *p = bk_peer_find(b, id, idlen);
    if (p && p->kind == PEER_WORKER)
        bk_worker_lost(b, p, why, true);
    else if (p)
        bk_client_gone(b, p, why);
}

static void heartbeat(mp_broker_t *b)
{
    uint64_t now = mp__now_ns();
    char hs[32];
    mp__buf_t h;
    /* the silent first: the count the clients get is the one after them */
    for (size_t i = 0; i < b->npeers;) {
        peer_t *p = b->peers[i];
        if (now - p->last_seen <= p->expiry_ns) {
            i++;
            continue;
        }
        char why[64];
        snprintf(why, sizeof why, "silent for %llu ms",
                 (unsigned long long)((now - p->last_seen) / 1000000));
        if (p->kind == PEER_WORKER)
            bk_worker_lost(b, p, why, true);
        else
            bk_client_gone(b, p, why);
        /* peers[i] is now another peer */
    }
    size_t processes = bk_total_processes(b); /* once: every client gets the same */
    for (size_t i = 0; i < b->npeers; i++) {
        peer_t *p = b->peers[i];
        mp__buf_init(&h, hs, sizeof hs);
        if (p->kind == PEER_WORKER) {
            mp__w_array(&h, 0);
            bk_send_to(b, p, MPP_B_WHEARTBEAT, &h, NULL, 0);
        } else {
            mp__w_array(&h, 1);
            mp__w_uint(&h, processes);
            bk_send_to(b, p, MPP_B_HEARTBEAT, &h, NULL, 0);
        }
    }
    bk_dispatch(b);
}

static void shutdown_peers(mp_broker_t *b)
{
    char hs[64];
    mp__buf_t h;
    while (b->npeers) {
        peer_t *p = b->peers[b->npeers - 1];
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, 1);
        mp__w_str(&h, "broker shutting down");
        bk_send_to(b, p, p->kind == PEER_WORKER ? MPP_B_WDISCONNECT : MPP_B_DISCONNECT, &h, NULL,
                   0);
        if (p->kind == PEER_WORKER) {
            while (p->running) { /* nobody will hear about them: drop */
                unit_t *u = p->running;
                bk_running_unlink(p, u);
                u->chunk->pending -= bk_unit_left(u);
                bk_unit_free(b, u);
            }
            bk_peer_remove(b, p);
        } else {
            bk_client_gone(b, p, "broker shutting down");
        }
    }
    while (b->queues) {
        queue_t *q = b->queues;
        while (q->head) {
            unit_t *u = q->head;
            bk_queue_unlink(q, u);
            u->chunk->pending -= bk_unit_left(u);
            bk_unit_free(b, u);
        }
        b->queues = q->next;
        free(q);
    }
    b->nqueues = 0;
}

static void *broker_thread(void *arg)
{
    mp_broker_t *b = arg;
    uint64_t interval = (uint64_t)b->heartbeat_ms * 1000000ull;
    uint64_t next_hb = mp__now_ns() + interval, next_running = 0;
    for (;;) {
        /* the router, ctl, http, then the stream peers (streams.c) */
        int fixed = b->http_thread_sock ? 3 : 2, nitems;
        zmq_pollitem_t *items = bk_streams_items(b, fixed, &nitems);
        if (!items) { /* out of memory: a moment, and again */
            nanosleep(&(struct timespec){0, 10000000}, NULL);
            continue;
        }
        items[0] = (zmq_pollitem_t){b->router, 0, ZMQ_POLLIN, 0};
        items[1] = (zmq_pollitem_t){b->ctl_thread, 0, ZMQ_POLLIN, 0};
        if (fixed == 3)
            items[2] = (zmq_pollitem_t){b->http_thread_sock, 0, ZMQ_POLLIN, 0};
        uint64_t now = mp__now_ns(), due = bk_journal_next_deadline(b);
        due = due < next_hb ? due : next_hb;
        long timeout = due > now ? (long)((due - now) / 1000000) + 1 : 0;
        /* the router is asked before sleeping; ctl and http are read to
           EAGAIN when ready (mpp_poll's rule) */
        long paused = bk_streams_paused_ms(b, now); /* accepting again then */
        if (paused >= 0 && paused < timeout)
            timeout = paused;
        int rc = mpp_poll(items, nitems, 1, timeout);
        if (rc < 0 && errno == ENOMEM) { /* its pollfd array: a moment, and again */
            nanosleep(&(struct timespec){0, 10000000}, NULL);
            continue;
        }
        if (rc < 0 && errno != EINTR)
            break;
        if (rc < 0) /* EINTR: the revents are last pass's, not news */
            continue;
        bool stop = false;
        char what[8];
        for (int n; (items[1].revents & ZMQ_POLLIN) && !stop &&
                    (n = zmq_recv(b->ctl_thread, what, sizeof what, ZMQ_DONTWAIT)) >= 0;) {
            if (n != 5 || memcmp(what, "drain", 5)) {
                stop = true; /* stop */
            } else {         /* answered once the count is exact: mp_broker_drain waits for it */
                b->draining = true;
                size_t running = 0;
                for (size_t i = 0; i < b->npeers; i++)
                    running += b->peers[i]->nrunning;
                __atomic_store_n(&b->running_now, running, __ATOMIC_RELEASE);
                zmq_send(b->ctl_thread, "ok", 2, ZMQ_DONTWAIT);
                mp__log(MP_LOG_INFO, WHO, "draining: nothing new is dispatched");
            }
        }
        if (stop)
            break;
        if (b->http_thread_sock && (items[2].revents & ZMQ_POLLIN))
            bk_http_answer(b);
        bk_streams_ready(b, items, fixed, nitems, route);
        if (items[0].revents & ZMQ_POLLIN) {
            /* drain what is there, bounded so heartbeats keep their pace */
            for (int k = 0; k < 1000; k++) {
                mpp_msg_t m;
                if (mpp_recv(b->router, &m, ZMQ_DONTWAIT))
                    break;
                /* a ZeroMQ peer may set any routing id, a stream id too: it
                   must not speak for a stream peer (streams.c) */
                if (m.n >= 1 && bk_stream_is(mpp_data(&m, 0), mpp_size(&m, 0)))
                    bk_malformed(b, NULL, "?", 0, "a stream peer's routing id on the ROUTER");
                else
                    route(b, &m);
                mpp_close(&m);
            }
        }
        if (mp__now_ns() >= next_hb) {
            heartbeat(b);
            bk_streams_sweep(b, mp__now_ns(), has_peer);
            next_hb = mp__now_ns() + interval;
        }
        bk_streams_reap(b, stream_gone); /* stream peers whose connection closed: gone */
        bk_drain_idle(b);
        bk_journal_flush(b); /* one fdatasync for the pass, then STORED and FETCHED */
        if (b->draining || mp__now_ns() >= next_running) { /* mp_broker_running's count */
            size_t running = 0;
            for (size_t i = 0; i < b->npeers; i++)
                running += b->peers[i]->nrunning;
            __atomic_store_n(&b->running_now, running, __ATOMIC_RELEASE);
            next_running = mp__now_ns() + 100000000ull; /* a scan of the peers, 10 a second */
        }
    }
    shutdown_peers(b);
    return NULL;
}

static void free_endpoints(mp_broker_t *b)
{
    for (size_t i = 0; i < b->nendpoints; i++) {
        const char *ep = b->endpoints[i], *plain = mp__plain_transport("mpp", ep);
        ep = plain ? plain : ep;
        if (strncmp(ep, "ipc://", 6) == 0 && ep[6] != '@')
            unlink(ep + 6);
        free(b->endpoints[i]);
    }
    free(b->endpoints);
    b->endpoints = NULL;
    b->nendpoints = 0;
}

void mp_broker_destroy(mp_broker_t **b_p)
{
    if (!b_p || !*b_p)
        return;
    mp_broker_t *b = *b_p;
    bk_http_stop(b); /* while the broker thread still answers its questions */
    if (b->started) {
        zmq_send(b->ctl_main, "", 0, 0);
        pthread_join(b->thread, NULL);
    } else {
        shutdown_peers(b); /* an idle broker's (mp__broker_new_idle) */
    }
    if (b->router)
        zmq_close(b->router);
    if (b->ctl_main)
        zmq_close(b->ctl_main);
    if (b->ctl_thread)
        zmq_close(b->ctl_thread);
    bk_http_free(b);
    bk_streams_free(b);
    free_endpoints(b);
    bk_journal_close(b);
    free(b->peers);
    free(b->slots);
    if (b->auth)
        mp__curve_auth_release();
    zcertstore_destroy(&b->workers_ok);
    zcertstore_destroy(&b->clients_ok);
    zcertstore_destroy(&b->operators_ok);
    if (b->own_ctx && b->ctx)
        zmq_ctx_term(b->ctx);
    free(b);
    *b_p = NULL;
}

int mp_broker_new(const mp_broker_options_t *o, mp_broker_t **b_p)
{
    return mp__broker_new_shm(o, NULL, -1, -1, b_p);
}

/* The security policy, before anything starts: CURVE keys both or
   neither; an endpoint that other hosts can reach needs them, or insecure
   (then a warning says what that means). */
static int check_security(const mp_broker_options_t *o)
{
    bool keys = o->curve_key || o->allow_dir;
    if (keys && !(o->curve_key && o->allow_dir)) {
        mp__log(MP_LOG_ERROR, WHO,
                "CURVE needs both the broker's key (--curve-key) and the "
                "allow-list directory (--allow-dir)");
        return MP_EINVAL;
    }
    if (keys && o->zmq_context) {
        mp__log(MP_LOG_ERROR, WHO, "a CURVE broker cannot run on the caller's ZeroMQ context");
        return MP_EINVAL;
    }
    for (size_t i = 0; i < o->nbinds; i++) {
        const char *plain = mp__plain_transport("mpp", o->binds[i]);
        if (plain && keys) { /* no CURVE there: nobody it could admit */
            mp__log(MP_LOG_ERROR, WHO,
                    "refusing to listen on %s: a plain stream has no CURVE, and this broker "
                    "admits peers by their keys; bind tcp:// for its peers",
                    o->binds[i]);
            return MP_EINSECURE;
        }
        int rc = mp__curve_policy(WHO, o->binds[i], keys, o->insecure,
                                  "--curve-key FILE --allow-dir DIR");
        if (rc)
            return rc;
    }
    return 0;
}

/* CURVE on: the certificate, then the ZAP handler (czmq's zauth, on
   czmq's context, which the ROUTER then shares) with the allow-list, and
   the role lists, all before the first bind: a CURVE socket that
   handshakes with no ZAP handler running admits any key. */
static int start_curve(mp_broker_t *b, const mp_broker_options_t *o)
{
    char why[1024], path[4096];
    int rc = mp__curve_load(o->curve_key, NULL, &b->curve, why, sizeof why);
    if (rc) {
        mp__log(MP_LOG_ERROR, WHO, "%s", why);
        return rc;
    }
    if ((rc = mp__curve_auth_acquire(o->allow_dir, &b->ctx, why, sizeof why))) {
        mp__log(MP_LOG_ERROR, WHO,
                "%s (it holds workers/ and clients/: the public NAME.key "
                "files of the peers admitted)",
                why);
        return rc;
    }
    b->auth = true;
    snprintf(path, sizeof path, "%s/workers", o->allow_dir);
    b->workers_ok = zcertstore_new(path);
    snprintf(path, sizeof path, "%s/clients", o->allow_dir);
    b->clients_ok = zcertstore_new(path);
    snprintf(path, sizeof path, "%s/operators", o->allow_dir); /* may be absent: none */
    b->operators_ok = zcertstore_new(path);
    if (!b->workers_ok || !b->clients_ok || !b->operators_ok)
        return MP_ENOMEM;
    mp__log(MP_LOG_INFO, WHO, "CURVE on: server key %s, allow-list %s", b->curve.public_txt,
            o->allow_dir);
    return 0;
}

/* The ROUTER, bound to every endpoint; b->endpoints what was bound. */
static int bind_all(mp_broker_t *b, const mp_broker_options_t *o)
{
    b->router = zmq_socket(b->ctx, ZMQ_ROUTER);
    int one = 1;
    if (!b->router || mpp_socket_setup(b->router, b->max_message) ||
        zmq_setsockopt(b->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one) ||
        (b->curve.on && mp__curve_server(b->router, &b->curve)))
        return -errno;
    b->endpoints = calloc(o->nbinds, sizeof *b->endpoints);
    if (!b->endpoints)
        return MP_ENOMEM;
    for (size_t i = 0; i < o->nbinds; i++) {
        if (mp__plain_is("mpp", o->binds[i])) { /* a stream listener (streams.c) */
            char ep[MAX_ENDPOINT];
            int rc = bk_stream_listen(b, o->binds[i], ep, sizeof ep);
            if (rc) {
                mp__log(MP_LOG_ERROR, WHO, "cannot listen on %s: %s", o->binds[i],
                        rc < 0 ? zmq_strerror(-rc) : mp_strerror(rc));
                return rc;
            }
            if (!(b->endpoints[b->nendpoints] = strdup(ep)))
                return MP_ENOMEM;
            b->nendpoints++;
            continue;
        }
        if (zmq_bind(b->router, o->binds[i]) < 0) {
            int err = errno;
            mp__log(MP_LOG_ERROR, WHO, "cannot bind %s: %s", o->binds[i], zmq_strerror(err));
            return -err;
        }
        char ep[MAX_ENDPOINT];
        size_t len = sizeof ep;
        if (strncmp(o->binds[i], "inproc://", 9) == 0 ||
            zmq_getsockopt(b->router, ZMQ_LAST_ENDPOINT, ep, &len) < 0)
            snprintf(ep, sizeof ep, "%s", o->binds[i]);
        if (!(b->endpoints[b->nendpoints] = strdup(ep)))
            return MP_ENOMEM;
        b->nendpoints++;
    }
    return 0;
}

static int create(const mp_broker_options_t *o, mp__pshm_t *shm, const int pairs[2], bool thread,
                  mp_broker_t **b_p);

int mp__broker_new_shm(const mp_broker_options_t *o, mp__pshm_t *shm, int stream_fd, int client_fd,
                       mp_broker_t **b_p)
{
    return create(o, shm, (int[2]){stream_fd, client_fd}, true, b_p);
}

int mp__broker_new_idle(const mp_broker_options_t *o, mp_broker_t **b_p)
{
    return create(o, NULL, (int[2]){-1, -1}, false, b_p);
}

void mp__broker_route(mp_broker_t *b, mpp_msg_t *m)
{
    route(b, m);
}

void mp__broker_stream_gone(mp_broker_t *b, const void *id, size_t idlen, const char *why)
{
    stream_gone(b, id, idlen, why);
}

void mp__broker_tick(mp_broker_t *b)
{
    heartbeat(b);
}

void *mp__broker_socket(mp_broker_t *b)
{
    return b->router;
}

void mp__broker_reset(mp_broker_t *b)
{
    shutdown_peers(b);
    b->next_dispatch = 0; /* the same input meets the same dispatch ids */
}

/* Closes the socket pair ends create did not hand to the broker. */
static void close_pairs(const int pairs[2], int from)
{
    for (int i = from; i < 2; i++)
        if (pairs[i] >= 0)
            close(pairs[i]);
}

static int create(const mp_broker_options_t *o, mp__pshm_t *shm, const int pairs[2], bool thread,
                  mp_broker_t **b_p)
{
    if (!o || !b_p || !o->binds || o->nbinds == 0) {
        close_pairs(pairs, 0);
        return MP_EINVAL;
    }
    if (o->verbose > 0)
        mp__log_set_level(o->verbose > 1 ? MP_LOG_DEBUG : MP_LOG_INFO);
    int rc = check_security(o);
    mp_broker_t *b = rc ? NULL : calloc(1, sizeof *b);
    if (!b) {
        close_pairs(pairs, 0);
        return rc ? rc : MP_ENOMEM;
    }
    b->shm = shm;
    static const char *const names[2] = {"pair", "sync pair"}; /* worker, blocking applies */
    for (int i = 0; i < 2; i++) {
        if (pairs[i] >= 0 && bk_stream_add(b, pairs[i], names[i], "local")) {
            close_pairs(pairs, i);
            bk_streams_free(b);
            free(b);
            return MP_ENOMEM;
        }
    }
    b->heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms : MPP_DEFAULT_HEARTBEAT_MS;
    b->max_attempts = o->max_attempts > 0 ? (unsigned)o->max_attempts : MPP_MAX_ATTEMPTS;
    b->max_message = o->max_message ? o->max_message : MPP_DEFAULT_MAX_MSG;
    b->max_queued = o->max_queued ? o->max_queued : MPP_DEFAULT_MAX_QUEUED;
    b->max_per_source = o->max_peers_per_source ? o->max_peers_per_source : 4096;
    b->started_ns = mp__now_ns();
    if (o->curve_key) {
        rc = start_curve(b, o);
    } else if ((b->ctx = o->zmq_context) == NULL) {
        b->ctx = zmq_ctx_new();
        b->own_ctx = true;
        rc = b->ctx ? 0 : MP_ENOMEM;
    }
    if (!rc)
        rc = bind_all(b, o);
    char ctl[64];
    snprintf(ctl, sizeof ctl, "inproc://mp-broker-ctl-%p", (void *)b);
    if (!rc) {
        b->ctl_thread = zmq_socket(b->ctx, ZMQ_PAIR);
        b->ctl_main = zmq_socket(b->ctx, ZMQ_PAIR);
        if (!b->ctl_thread || !b->ctl_main || zmq_bind(b->ctl_thread, ctl) ||
            zmq_connect(b->ctl_main, ctl))
            rc = -errno;
    }
    if (!rc && o->journal_dir)
        rc = bk_journal_open(b, o->journal_dir,
                             o->journal_max_bytes ? o->journal_max_bytes : (1ull << 30));
    if (!rc && o->http && thread)
        rc = bk_http_start(b, o);
    if (!rc && thread && pthread_create(&b->thread, NULL, broker_thread, b) != 0)
        rc = MP_ENOMEM;
    if (rc) {
        mp_broker_destroy(&b);
        return rc;
    }
    b->started = thread;
    mp__log(MP_LOG_INFO, WHO, "started (version %s), %zu endpoint%s", MP_BROKER_VERSION,
            b->nendpoints, b->nendpoints == 1 ? "" : "s");
    *b_p = b;
    return 0;
}

size_t mp_broker_endpoint_count(const mp_broker_t *b)
{
    return b ? b->nendpoints : 0;
}

const char *mp_broker_endpoint(const mp_broker_t *b, size_t i)
{
    return b && i < b->nendpoints ? b->endpoints[i] : NULL;
}

int mp_broker_drain(mp_broker_t *b)
{
    if (!b || !b->started)
        return MP_EINVAL;
    if (zmq_send(b->ctl_main, "drain", 5, 0) != 5)
        return -errno;
    /* the broker thread answers once it dispatches nothing more and has
       counted what runs: mp_broker_running is exact from here on */
    zmq_pollitem_t it = {b->ctl_main, 0, ZMQ_POLLIN, 0};
    char ok[4];
    if (zmq_poll(&it, 1, 10000) == 1)
        zmq_recv(b->ctl_main, ok, sizeof ok, ZMQ_DONTWAIT);
    return 0;
}

size_t mp_broker_running(const mp_broker_t *b)
{
    return b ? __atomic_load_n(&b->running_now, __ATOMIC_ACQUIRE) : 0;
}

const char *mp_broker_http_address(const mp_broker_t *b)
{
    return b ? bk_http_addr(b) : NULL;
}

bool mp_broker_http_tls(const mp_broker_t *b)
{
    return b && bk_http_tls(b);
}
