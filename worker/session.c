/*  session.c - the worker's session with its broker (docs/PROTOCOL.md
    sections 4.4 and 6): the DEALER socket, READY with the served names,
    reconnecting with a new session, and the broker's messages (TASK,
    DISCONNECT, HEARTBEAT).

    A TASK becomes a job in the local FIFO; the supervisor (supervise.c)
    hands jobs to idle executors. A session number tags each job: a result
    for a job of an older session is dropped, because that broker has
    already re-queued it (or is gone). The bottom of the supervisor: it
    calls no other file of it.
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "base/log.h"
#include "codec/mpp.h"
#include "codec/plain.h"
#include "codec/wire.h"
#include "mp/error.h"
#include "mp/task.h"
#include "supervisor.h"

void wk_job_free(job_t *j)
{
    zmq_msg_close(&j->header);
    zmq_msg_close(&j->items);
    if (j->has_init)
        zmq_msg_close(&j->init);
    free(j);
}

/* On the socket pair: queued, then written, waiting for room at most one
   liveness span (the broker thread reads whenever it runs). */
static int stream_send(worker_t *w, uint8_t cmd, mp__buf_t *h, zmq_msg_t *payload, int n)
{
    return mpps_send(&w->stream_out, w->stream_fd, w->heartbeat_ms * MPP_LIVENESS, MPP_SIG_WORKER,
                     cmd, h->data, h->size, payload, n);
}

int wk_send_cmd(worker_t *w, uint8_t cmd, mp__buf_t *h, zmq_msg_t *payload, int n)
{
    /* the pair ended, or a plain stream is not connected: nobody to tell */
    if (!w->sock && w->stream_fd < 0 && (w->broker_gone || w->plain)) {
        for (int i = 0; i < n; i++)
            zmq_msg_close(&payload[i]);
        return -EPIPE;
    }
    int rc = w->stream_fd >= 0 || !w->sock
                 ? stream_send(w, cmd, h, payload, n)
                 : mpp_send(w->sock, NULL, 0, MPP_SIG_WORKER, cmd, h->data, h->size, payload, n, 0);
    if (rc)
        mp__log(MP_LOG_WARN, WHO, "send to broker failed: %s", zmq_strerror(-rc));
    return rc;
}

static void add_name(const char *name, void *arg)
{
    mp__buf_t *h = arg;
    mp__w_str(h, name);
}

static void count_name(const char *name, void *arg)
{
    (void)name;
    (*(size_t *)arg)++;
}

void wk_send_ready(worker_t *w)
{
    size_t nnames = 0;
    mp_task_each(count_name, &nnames);
    mp__buf_t h;
    mp__buf_init(&h, NULL, 0);
    mp__w_array(&h, w->shm ? 6 : 5);
    mp__w_array(&h, nnames);
    mp_task_each(add_name, &h);
    mp__w_uint(&h, (uint64_t)w->nex);
    mp__w_uint(&h, w->credit);
    mp__w_str(&h, w->host);
    mp__w_uint(&h, (uint64_t)getpid());
    if (w->shm) /* the pool's rings: its broker may send items through them */
        mp__w_uint(&h, mp__pshm_id(w->shm));
    wk_send_cmd(w, MPP_W_READY, &h, NULL, 0);
    mp__buf_release(&h);
}

/* A try that failed: the next one after connect_ivl_ms, which doubles up
   to 5 s (a broker away for long is not asked 10 times a second, nor its
   name resolved as often). */
static void connect_failed(worker_t *w, uint64_t now, int rc)
{
    w->next_connect = now + (uint64_t)w->connect_ivl_ms * 1000000ull;
    w->connect_ivl_ms = w->connect_ivl_ms >= 2500 ? 5000 : w->connect_ivl_ms * 2;
    mp__log(MP_LOG_DEBUG, WHO, "cannot connect to %s: %s", w->o.broker,
            rc < 0 ? zmq_strerror(-rc) : mp_strerror(rc));
}

static void connected(worker_t *w, int fd, uint64_t now)
{
    w->stream_fd = fd;
    w->connect_ivl_ms = 100;
    w->last_heard = now; /* as a ZeroMQ session starts its liveness span */
    wk_send_ready(w);
}

void wk_connect_done(worker_t *w, bool ready, uint64_t now)
{
    int fd = w->connecting_fd;
    if (fd < 0 || (!ready && now < w->connect_deadline))
        return; /* not yet */
    w->connecting_fd = -1;
    int rc = ready ? mp__plain_connect_finish(fd) : MP_ETIMEDOUT;
    if (rc) {
        close(fd);
        connect_failed(w, now, rc);
        return;
    }
    connected(w, fd, now);
}

/* A plain stream to the broker (mpp+tcp://, mpp+ipc://): connected at
   once (a local broker), or under way (connecting_fd, which the loop
   polls; given up after 2 s), or failed (tried again later). The loop
   never waits for it. */
static void open_plain(worker_t *w)
{
    mpps_free(&w->stream_in);
    mpps_free(&w->stream_out);
    w->stream_in.limit = MPPS_LIMIT(MPP_DEFAULT_MAX_MSG);
    if (w->connecting_fd >= 0)
        return;
    if (!w->connect_ivl_ms)
        w->connect_ivl_ms = 100;
    uint64_t now = mp__now_ns();
    int fd, rc = mp__plain_connect_start("mpp", w->o.broker, &fd);
    if (rc == 1) {
        w->connecting_fd = fd;
        w->connect_deadline = now + 2000000000ull;
    } else if (rc) {
        connect_failed(w, now, rc);
    } else {
        connected(w, fd, now);
    }
}

int wk_open_socket(worker_t *w)
{
    if (w->plain) { /* the broker's silence counts from the last connect, not each try */
        w->session++;
        w->heard = false;
        if (!w->last_heard)
            w->last_heard = mp__now_ns();
        open_plain(w);
        return 0;
    }
    if (w->stream_fd >= 0) { /* the pair is there: say READY on it */
        w->session++;
        w->last_heard = mp__now_ns();
        w->heard = false;
        wk_send_ready(w);
        return 0;
    }
    w->sock = zmq_socket(w->ctx, ZMQ_DEALER);
    /* backoff from 100 ms (10 ms on ipc://, where the broker is local and a
       fresh embedded pool binds a moment after its worker starts) to 5 s */
    int ivl = strncmp(w->o.broker, "ipc://", 6) == 0 ? 10 : 100, ivl_max = 5000;
    if (!w->sock || mpp_socket_setup(w->sock, MPP_DEFAULT_MAX_MSG) ||
        zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl) ||
        zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max) ||
        (w->curve.on && mp__curve_client(w->sock, &w->curve)))
        return -errno;
    if (zmq_connect(w->sock, w->o.broker) < 0) {
        int err = errno;
        mp__log(MP_LOG_ERROR, WHO, "cannot connect to %s: %s", w->o.broker, zmq_strerror(err));
        return -err;
    }
    w->session++;
    w->last_heard = mp__now_ns();
    w->heard = false;
    wk_send_ready(w);
    return 0;
}

/* Forgets the broker's jobs that are still queued here: after a reconnect
   that broker has re-queued them (or is gone). */
void wk_drop_queued(worker_t *w)
{
    while (w->queue_head) {
        job_t *j = w->queue_head;
        w->queue_head = j->next;
        wk_job_free(j);
        w->held--;
    }
    w->queue_tail = NULL;
}

int wk_reconnect(worker_t *w, const char *why)
{
    /* one warning per outage, not one per attempt */
    if (w->heard)
        mp__log(MP_LOG_WARN, WHO, "broker %s %s; reconnecting", w->o.broker, why);
    else if (!w->warned)
        mp__log(MP_LOG_WARN, WHO, "broker %s does not answer; retrying until it does", w->o.broker);
    else
        mp__log(MP_LOG_DEBUG, WHO, "broker %s still silent; retrying", w->o.broker);
    w->warned = !w->heard;
    if (w->sock)
        mpp_socket_close(w->sock);
    w->sock = NULL;
    if (w->plain && w->stream_fd >= 0) {
        close(w->stream_fd);
        w->stream_fd = -1;
    }
    wk_drop_queued(w);
    return wk_open_socket(w);
}

/* LOST of job j's item index; code 0, or MP_ETIMELIMIT / MP_ECANCELLED:
   the broker fails that item with it instead of trying it again. */
void wk_send_lost(worker_t *w, job_t *j, uint32_t index, const char *cause, int code)
{
    char hs[256];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, code ? 4 : 3);
    mp__w_uint(&h, j->dispatch);
    mp__w_uint(&h, index);
    mp__w_str(&h, cause);
    if (code)
        mp__w_int(&h, code);
    wk_send_cmd(w, MPP_W_LOST, &h, NULL, 0);
    mp__buf_release(&h);
}

/* B-WCANCEL [dispatch-id]: a dispatch still queued here is dropped and
   answered at once; a running one's executor is killed, and its death
   answers (supervise.c). An unknown id was answered already. */
static void on_cancel(worker_t *w, mpp_msg_t *m)
{
    mp__rd_t r;
    size_t n;
    uint64_t dispatch;
    mp__rd_init(&r, mpp_data(m, 2), mpp_size(m, 2));
    if (mp__rd_array(&r, &n) || n < 1 || mp__rd_uint(&r, &dispatch)) {
        if (mp__ratelimit(&w->malformed_rl, WHO, "malformed messages from the broker"))
            mp__log(MP_LOG_WARN, WHO, "malformed CANCEL from the broker; dropped");
        return;
    }
    job_t *prev = NULL;
    for (job_t *j = w->queue_head; j; prev = j, j = j->next) {
        if (j->dispatch != dispatch)
            continue;
        if (prev)
            prev->next = j->next;
        else
            w->queue_head = j->next;
        if (w->queue_tail == j)
            w->queue_tail = prev;
        wk_send_lost(w, j, 0, "cancelled before it ran", MP_ECANCELLED);
        wk_job_free(j);
        w->held--;
        return;
    }
    for (int i = 0; i < w->nex; i++) {
        exec_t *e = &w->ex[i];
        if (e->state == EX_BUSY && e->job && e->job->dispatch == dispatch && !e->cancelled) {
            mp__log(MP_LOG_INFO, WHO, "dispatch %llu cancelled: killing executor %d (pid %d)",
                    (unsigned long long)dispatch, e->slot, (int)e->pid);
            e->cancelled = true;
            if (e->pid > 0)
                kill(e->pid, SIGKILL);
            return;
        }
    }
}

static void on_task(worker_t *w, mpp_msg_t *m)
{
    mp__rd_t r;
    size_t n, namelen;
    uint64_t dispatch, mode, count, attempt;
    const char *name;
    mp__rd_init(&r, mpp_data(m, 2), mpp_size(m, 2));
    if (m->n < 4 || m->n > 5 || mp__rd_array(&r, &n) || n < 5 || mp__rd_uint(&r, &dispatch) ||
        mp__rd_str(&r, &name, &namelen) || namelen == 0 || namelen > MPP_MAX_NAME ||
        mp__rd_uint(&r, &mode) || mode > MPP_MODE_STAR || mp__rd_uint(&r, &count) ||
        mp__rd_uint(&r, &attempt)) {
        if (mp__ratelimit(&w->malformed_rl, WHO, "malformed messages from the broker"))
            mp__log(MP_LOG_WARN, WHO, "malformed TASK from the broker; dropped");
        return;
    }
    uint64_t limit = 0; /* [task-shm-or-nil time-limit] */
    if (n >= 7 && (mp__rd_skip(&r) || mp__rd_uint(&r, &limit) || limit > UINT32_MAX)) {
        if (mp__ratelimit(&w->malformed_rl, WHO, "malformed messages from the broker"))
            mp__log(MP_LOG_WARN, WHO, "malformed TASK from the broker (time limit); dropped");
        return;
    }
    job_t *j = calloc(1, sizeof *j);
    if (!j) {
        mp__log(MP_LOG_ERROR, WHO, "out of memory for dispatch %llu", (unsigned long long)dispatch);
        return;
    }
    j->dispatch = dispatch;
    j->queued_ns = mp__now_ns();
    j->session = w->session;
    memcpy(j->name, name, namelen);
    j->count = (size_t)count;
    j->time_limit_ms = (uint32_t)limit;
    zmq_msg_init(&j->header);
    zmq_msg_init(&j->items);
    zmq_msg_move(&j->header, &m->f[2]);
    zmq_msg_move(&j->items, &m->f[3]);
    if (m->n == 5) {
        zmq_msg_init(&j->init);
        zmq_msg_move(&j->init, &m->f[4]);
        j->has_init = true;
    }
    if (w->queue_tail)
        w->queue_tail->next = j;
    else
        w->queue_head = j;
    w->queue_tail = j;
    w->held++; /* the loop hands it to an idle executor (wk_assign) */
}

/* The next message from the broker: 0, or nothing (more) now. On the
   socket pair, its end means the broker is gone: the pool is stopping
   (its stop fd says so next) or died (SIGTERM, PR_SET_PDEATHSIG, comes
   next, and the pool's ipc socket is removed then); failing both, the
   silence ends the worker after the liveness span. On a plain stream,
   its end is a broker that went away: the loop connects again. */
static int next_message(worker_t *w, mpp_msg_t *m, bool first)
{
    if (w->stream_fd < 0)
        return w->sock ? mpp_recv(w->sock, m, ZMQ_DONTWAIT) : -EAGAIN;
    int rc = first ? mpps_fill(&w->stream_in, w->stream_fd) : 0;
    int got = mpps_take(&w->stream_in, m, 0);
    if (got == 1)
        return 0;
    if (got < 0 || rc < 0) { /* the end, or not MPP/1 */
        if (got < 0 || rc != MP_EEOF)
            mp__log(MP_LOG_WARN, WHO, "the %s stream failed: %s", w->plain ? "broker's" : "pool's",
                    mp_strerror(got < 0 ? got : rc));
        close(w->stream_fd);
        w->stream_fd = -1;
        if (w->plain) /* connect again soon (serve: next_connect) */
            w->next_connect = mp__now_ns() + 100000000ull;
        else
            w->broker_gone = true;
    }
    return -EAGAIN;
}

void wk_on_broker(worker_t *w)
{
    /* on the pair, every whole message read: poll(2) cannot see the buffer */
    for (int k = 0; k < 1000 || w->stream_fd >= 0; k++) {
        mpp_msg_t m;
        if (next_message(w, &m, k == 0))
            return;
        w->last_heard = mp__now_ns();
        w->broker_gone = false; /* it speaks */
        if (!w->heard) {
            if (w->warned)
                mp__log(MP_LOG_INFO, WHO, "broker %s answers again", w->o.broker);
            w->heard = w->ever_heard = true;
            w->warned = false;
        }
        if (m.too_many || m.n < 3 || mpp_size(&m, 0) != MPP_SIG_SIZE ||
            memcmp(mpp_data(&m, 0), MPP_SIG_WORKER, MPP_SIG_SIZE) || mpp_size(&m, 1) != 1) {
            if (mp__ratelimit(&w->malformed_rl, WHO, "malformed messages from the broker"))
                mp__log(MP_LOG_WARN, WHO, "malformed message from the broker; dropped");
            mpp_close(&m);
            continue;
        }
        uint8_t cmd = mpp_data(&m, 1)[0];
        if (cmd == MPP_B_TASK) {
            on_task(w, &m);
        } else if (cmd == MPP_B_WCANCEL) {
            on_cancel(w, &m);
        } else if (cmd == MPP_B_WDISCONNECT) {
            mp__rd_t r;
            size_t n, len = 0;
            const char *why = "";
            mp__rd_init(&r, mpp_data(&m, 2), mpp_size(&m, 2));
            bool stop = false; /* [reason, stop]: drained (mp-client drain): exit */
            if (mp__rd_array(&r, &n) == 0 && n >= 1 && mp__rd_str(&r, &why, &len) == 0 && n >= 2)
                mp__rd_bool(&r, &stop);
            mp__log(MP_LOG_INFO, WHO, "broker says: %.*s", (int)(len > 100 ? 100 : len), why);
            if (stop) {
                mp__log(MP_LOG_INFO, WHO, "drained: stopping");
                w->stopping = true;
                mpp_close(&m);
                continue;
            }
            /* "unknown worker": a restarted broker that is there; any
               other reason: it is going away (until it speaks again) */
            bool unknown = len >= 7 && memcmp(why, "unknown", 7) == 0;
            w->broker_gone = !unknown;
            if (w->o.exit_on_broker_loss) {
                w->stopping = true;
            } else if (unknown) {
                wk_drop_queued(w);
                w->session++; /* what we run now answers a forgotten session */
                wk_send_ready(w);
            }
        } /* B-WHEARTBEAT: hearing it was the point */
        mpp_close(&m);
    }
}
