/*  worker.c - the worker supervisor (docs/PROTOCOL.md sections 4.4, 7, 9).

    One loop polls: the DEALER socket to the broker, a signalfd (SIGTERM,
    SIGINT), the zygote's control socket, the optional stop fd, and each
    executor's socket. The supervisor never runs task code, so its
    heartbeats keep their pace whatever the tasks do.

    Jobs (dispatches) wait in a local FIFO until an executor is idle; the
    broker's credit (2 per executor by default) keeps the FIFO short and the
    next chunk local when one finishes. Each connection to the broker is a
    session; a result for a job of an older session is dropped (that broker
    has already re-queued it, or is gone).

    Executor death: its socket closes at once; the zygote reports the wait
    status right after. When both are known and the executor held a job, the
    supervisor sends LOST with the index of the item it was running (read
    from the executor's shared progress slot) and the cause, then asks the
    zygote for a new executor in the same slot.
*/
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "base/log.h"
#include "mp/error.h"
#include "mp/process.h"
#include "mp/task.h"
#include "mp/worker.h"
#include "codec/mpp.h"
#include "codec/wire.h"
#include "worker_impl.h"
#include "worker_shm.h"

#define WHO "mp-worker"
#define MAX_EXECUTORS 1024

typedef struct job {
    uint64_t dispatch;
    uint64_t session;
    char name[MPP_MAX_NAME + 1];
    size_t count;
    zmq_msg_t header, items, init;
    bool has_init;
    struct job *next;
} job_t;

enum { EX_NONE, EX_STARTING, EX_IDLE, EX_BUSY, EX_DYING };

typedef struct {
    int slot;
    pid_t pid;
    int fd;
    int state;
    job_t *job;
    char *rbuf;
    size_t rlen, rcap;
    unsigned dispatches;
} exec_t;

typedef struct {
    mp_worker_options_t o;
    char host[128];
    int heartbeat_ms;
    unsigned credit;
    void *ctx;
    void *sock;
    uint64_t session;
    uint64_t last_heard;
    bool heard;       /* the broker spoke in this session */
    bool ever_heard;  /* ... in any session: --connect-timeout is over */
    bool warned;      /* "does not answer" said once per outage */
    bool broker_gone; /* it said DISCONNECT, or the embedded pool stopped it */
    uint64_t next_heartbeat;
    mp__zygote_t zygote;
    uint32_t *progress;
    mp__pshm_t *shm; /* embedded: the pool's rings (poolshm.h), or NULL */
    bool embedded;   /* an embedded pool's worker: the pool is our parent */
    pid_t pool_pid;  /* the parent at the start */
    exec_t *ex;
    int nex;
    job_t *queue_head, *queue_tail;
    size_t held; /* jobs received and not answered (queued + running) */
    bool stopping;
    int sfd;
    sigset_t old_mask; /* restored when mp_worker_run returns */
    uint64_t done, lost;
} worker_t;

static uint64_t now_ns(void)
{
    return mp__now_ns();
}

static void job_free(job_t *j)
{
    zmq_msg_close(&j->header);
    zmq_msg_close(&j->items);
    if (j->has_init)
        zmq_msg_close(&j->init);
    free(j);
}

/* ---- talking to the broker ---------------------------------------------- */

static int send_cmd(worker_t *w, uint8_t cmd, mp__buf_t *h, zmq_msg_t *payload, int n)
{
    int rc = mpp_send(w->sock, NULL, 0, MPP_SIG_WORKER, cmd, h->data, h->size, payload, n, 0);
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

static void send_ready(worker_t *w)
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
    send_cmd(w, MPP_W_READY, &h, NULL, 0);
    mp__buf_release(&h);
}

static int open_socket(worker_t *w)
{
    w->sock = zmq_socket(w->ctx, ZMQ_DEALER);
    /* backoff from 100 ms (10 ms on ipc://, where the broker is local and a
       fresh embedded pool binds a moment after its worker starts) to 5 s */
    int ivl = strncmp(w->o.broker, "ipc://", 6) == 0 ? 10 : 100, ivl_max = 5000;
    if (!w->sock || mpp_socket_setup(w->sock, MPP_DEFAULT_MAX_MSG) ||
        zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl) ||
        zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max))
        return -errno;
    if (zmq_connect(w->sock, w->o.broker) < 0) {
        int err = errno;
        mp__log(MP_LOG_ERROR, WHO, "cannot connect to %s: %s", w->o.broker, zmq_strerror(err));
        return -err;
    }
    w->session++;
    w->last_heard = now_ns();
    w->heard = false;
    send_ready(w);
    return 0;
}

/* Forgets the broker's jobs that are still queued here: after a reconnect
   that broker has re-queued them (or is gone). */
static void drop_queued(worker_t *w)
{
    while (w->queue_head) {
        job_t *j = w->queue_head;
        w->queue_head = j->next;
        job_free(j);
        w->held--;
    }
    w->queue_tail = NULL;
}

static int reconnect(worker_t *w, const char *why)
{
    /* one warning per outage, not one per attempt */
    if (w->heard)
        mp__log(MP_LOG_WARN, WHO, "broker %s %s; reconnecting", w->o.broker, why);
    else if (!w->warned)
        mp__log(MP_LOG_WARN, WHO, "broker %s does not answer; retrying until it does", w->o.broker);
    else
        mp__log(MP_LOG_DEBUG, WHO, "broker %s still silent; retrying", w->o.broker);
    w->warned = !w->heard;
    zmq_close(w->sock);
    w->sock = NULL;
    drop_queued(w);
    return open_socket(w);
}

/* ---- executors ------------------------------------------------------------ */

static void spawn_executor(worker_t *w, exec_t *e)
{
    e->state = EX_STARTING;
    e->pid = 0;
    e->fd = -1;
    e->rlen = 0;
    e->dispatches = 0;
    if (mp__zygote_spawn(&w->zygote, e->slot))
        e->state = EX_NONE; /* the zygote is gone; the loop notices */
}

static void assign(worker_t *w)
{
    for (int i = 0; i < w->nex && w->queue_head; i++) {
        exec_t *e = &w->ex[i];
        /* an executor that has run maxtasksperchild dispatches is leaving */
        if (e->state != EX_IDLE ||
            (w->o.maxtasksperchild > 0 && e->dispatches >= (unsigned)w->o.maxtasksperchild))
            continue;
        job_t *j = w->queue_head;
        w->queue_head = j->next;
        if (!w->queue_head)
            w->queue_tail = NULL;
        j->next = NULL;
        uint32_t hl = (uint32_t)zmq_msg_size(&j->header), il = (uint32_t)zmq_msg_size(&j->items);
        uint32_t nl = j->has_init ? (uint32_t)zmq_msg_size(&j->init) : 0;
        uint32_t total = 12 + hl + il + nl;
        struct iovec iov[] = {{&total, 4},
                              {&hl, 4},
                              {zmq_msg_data(&j->header), hl},
                              {&il, 4},
                              {zmq_msg_data(&j->items), il},
                              {&nl, 4},
                              {j->has_init ? zmq_msg_data(&j->init) : NULL, nl}};
        __atomic_store_n(&w->progress[e->slot * MP__PROGRESS_STRIDE], 0, __ATOMIC_RELAXED);
        e->job = j;
        e->state = EX_BUSY;
        e->dispatches++;
        /* a failed write means the executor is dying: its death reports the job */
        mp__write_all(e->fd, iov, (int)MP__ARRAY_SIZE(iov));
    }
}

static void send_lost(worker_t *w, job_t *j, uint32_t index, const char *cause)
{
    char hs[256];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 3);
    mp__w_uint(&h, j->dispatch);
    mp__w_uint(&h, index);
    mp__w_str(&h, cause);
    send_cmd(w, MPP_W_LOST, &h, NULL, 0);
    mp__buf_release(&h);
}

/* The executor's socket closed or broke: wait for its wait status. */
static void executor_hangup(worker_t *w, exec_t *e)
{
    (void)w;
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
    e->state = EX_DYING;
}

static void executor_exited(worker_t *w, exec_t *e, int status)
{
    char cause[96];
    mp__describe_status(status, cause, sizeof cause);
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
    if (e->job) {
        job_t *j = e->job;
        uint32_t index =
            __atomic_load_n(&w->progress[e->slot * MP__PROGRESS_STRIDE], __ATOMIC_RELAXED);
        if (index >= j->count)
            index = 0;
        mp__log(MP_LOG_WARN, WHO,
                "executor %d (pid %d) died running %s item %u of dispatch %llu: %s; restarting",
                e->slot, (int)e->pid, j->name, index, (unsigned long long)j->dispatch, cause);
        if (j->session == w->session)
            send_lost(w, j, index, cause);
        job_free(j);
        e->job = NULL;
        w->held--;
        w->lost++;
    } else {
        mp__log(status == 0 ? MP_LOG_DEBUG : MP_LOG_WARN, WHO,
                "executor %d (pid %d) exited idle: %s; restarting", e->slot, (int)e->pid, cause);
    }
    e->state = EX_NONE;
    if (!w->stopping)
        spawn_executor(w, e);
}

/* Reads what the executor wrote (never blocks: MSG_DONTWAIT); forwards a
   complete reply. Returns false when nothing could be read. */
static bool executor_readable(worker_t *w, exec_t *e)
{
    if (e->rcap - e->rlen < 65536) {
        size_t cap = e->rcap ? e->rcap * 2 : 131072;
        char *grown = realloc(e->rbuf, cap);
        if (!grown) {
            mp__log(MP_LOG_ERROR, WHO, "out of memory reading executor %d", e->slot);
            return false;
        }
        e->rbuf = grown;
        e->rcap = cap;
    }
    ssize_t r = recv(e->fd, e->rbuf + e->rlen, e->rcap - e->rlen, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return false;
    if (r <= 0) {
        executor_hangup(w, e);
        return true;
    }
    e->rlen += (size_t)r;
    if (e->rlen < 4)
        return true;
    uint32_t len;
    memcpy(&len, e->rbuf, 4);
    if (e->rlen < 4 + (size_t)len)
        return true;
    if (e->rlen > 4 + (size_t)len || len < 24 || !e->job) {
        mp__log(MP_LOG_ERROR, WHO, "executor %d sent an unexpected reply; killing it", e->slot);
        kill(e->pid, SIGKILL);
        executor_hangup(w, e);
        return true;
    }
    const char *p = e->rbuf + 4;
    uint64_t dispatch;
    uint32_t count, nerrors, vlen, elen = 0;
    memcpy(&dispatch, p, 8);
    memcpy(&count, p + 8, 4);
    memcpy(&nerrors, p + 12, 4);
    memcpy(&vlen, p + 16, 4);
    const char *values = p + 20;
    if ((size_t)vlen + 24 <= len)
        memcpy(&elen, values + vlen, 4);
    const char *errors = values + vlen + 4;
    /* the values in the executor's output ring: u32 slot, u32 vsize, u64 at */
    size_t plain = 24 + (size_t)vlen + elen;
    bool in_ring = len == plain + 16;
    if ((len != plain && !in_ring) || (in_ring && !w->shm)) {
        mp__log(MP_LOG_ERROR, WHO, "executor %d sent a malformed reply; killing it", e->slot);
        kill(e->pid, SIGKILL);
        executor_hangup(w, e);
        return true;
    }
    job_t *j = e->job;
    e->job = NULL;
    e->state = EX_IDLE;
    e->rlen = 0;
    w->held--;
    w->done++;
    if (j->session == w->session && dispatch == j->dispatch) {
        char hs[64];
        mp__buf_t h;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, in_ring ? 4 : 3);
        mp__w_uint(&h, j->dispatch);
        mp__w_uint(&h, count);
        mp__w_uint(&h, nerrors);
        if (in_ring) {
            uint32_t slot, vsize;
            uint64_t at;
            memcpy(&slot, errors + elen, 4);
            memcpy(&vsize, errors + elen + 4, 4);
            memcpy(&at, errors + elen + 8, 8);
            mp__w_array(&h, 3);
            mp__w_uint(&h, slot);
            mp__w_uint(&h, at);
            mp__w_uint(&h, vsize);
        }
        zmq_msg_t frames[2];
        zmq_msg_init_size(&frames[0], vlen);
        memcpy(zmq_msg_data(&frames[0]), values, vlen);
        if (nerrors) {
            zmq_msg_init_size(&frames[1], elen);
            memcpy(zmq_msg_data(&frames[1]), errors, elen);
        }
        send_cmd(w, MPP_W_RESULT, &h, frames, nerrors ? 2 : 1);
    }
    job_free(j);
    if (e->rcap > (1u << 24)) { /* do not keep a huge buffer for small replies */
        free(e->rbuf);
        e->rbuf = NULL;
        e->rcap = 0;
    }
    assign(w);
    return true;
}

static void on_zygote(worker_t *w)
{
    for (;;) {
        mp__zygote_event_t ev;
        int rc = mp__zygote_read(&w->zygote, &ev);
        if (rc == MP_EAGAIN)
            return;
        if (rc) {
            mp__log(MP_LOG_ERROR, WHO, "executor zygote lost: %s", mp_strerror(rc));
            w->stopping = true;
            return;
        }
        if (ev.slot < 0 || ev.slot >= w->nex) {
            if (ev.fd >= 0)
                close(ev.fd);
            continue;
        }
        exec_t *e = &w->ex[ev.slot];
        switch (ev.type) {
        case ZYGOTE_SPAWNED:
            e->pid = ev.pid;
            e->fd = ev.fd;
            e->state = EX_IDLE;
            mp__log(MP_LOG_DEBUG, WHO, "executor %d started: pid %d", e->slot, (int)e->pid);
            break;
        case ZYGOTE_EXITED:
            if (ev.pid != e->pid)
                break;
            /* its last reply may still be in the socket: read it first */
            while (e->fd >= 0 && e->job && executor_readable(w, e)) {
            }
            executor_exited(w, e, ev.status);
            break;
        case ZYGOTE_FAILED:
            mp__log(MP_LOG_ERROR, WHO, "cannot start executor %d: %s", ev.slot,
                    mp_strerror(ev.status));
            e->state = EX_NONE;
            break;
        }
    }
}

/* ---- broker messages ------------------------------------------------------- */

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
        mp__log(MP_LOG_WARN, WHO, "malformed TASK from the broker; dropped");
        return;
    }
    job_t *j = calloc(1, sizeof *j);
    if (!j) {
        mp__log(MP_LOG_ERROR, WHO, "out of memory for dispatch %llu", (unsigned long long)dispatch);
        return;
    }
    j->dispatch = dispatch;
    j->session = w->session;
    memcpy(j->name, name, namelen);
    j->count = (size_t)count;
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
    w->held++;
    assign(w);
}

static void on_broker(worker_t *w)
{
    for (int k = 0; k < 1000; k++) {
        mpp_msg_t m;
        if (mpp_recv(w->sock, &m, ZMQ_DONTWAIT))
            return;
        w->last_heard = now_ns();
        w->broker_gone = false; /* it speaks */
        if (!w->heard) {
            if (w->warned)
                mp__log(MP_LOG_INFO, WHO, "broker %s answers again", w->o.broker);
            w->heard = w->ever_heard = true;
            w->warned = false;
        }
        if (m.too_many || m.n < 3 || mpp_size(&m, 0) != MPP_SIG_SIZE ||
            memcmp(mpp_data(&m, 0), MPP_SIG_WORKER, MPP_SIG_SIZE) || mpp_size(&m, 1) != 1) {
            mp__log(MP_LOG_WARN, WHO, "malformed message from the broker; dropped");
            mpp_close(&m);
            continue;
        }
        uint8_t cmd = mpp_data(&m, 1)[0];
        if (cmd == MPP_B_TASK) {
            on_task(w, &m);
        } else if (cmd == MPP_B_WDISCONNECT) {
            mp__rd_t r;
            size_t n, len = 0;
            const char *why = "";
            mp__rd_init(&r, mpp_data(&m, 2), mpp_size(&m, 2));
            if (mp__rd_array(&r, &n) == 0 && n >= 1)
                mp__rd_str(&r, &why, &len);
            mp__log(MP_LOG_INFO, WHO, "broker says: %.*s", (int)(len > 100 ? 100 : len), why);
            /* "unknown worker": a restarted broker that is there; any
               other reason: it is going away (until it speaks again) */
            bool unknown = len >= 7 && memcmp(why, "unknown", 7) == 0;
            w->broker_gone = !unknown;
            if (w->o.exit_on_broker_loss) {
                w->stopping = true;
            } else if (unknown) {
                drop_queued(w);
                w->session++; /* what we run now answers a forgotten session */
                send_ready(w);
            }
        } /* B-WHEARTBEAT: hearing it was the point */
        mpp_close(&m);
    }
}

/* ---- setup and the loop --------------------------------------------------------- */

/* True once this process's parent is no longer pool_pid, waiting up to 1 s
   for it: the kernel closes a dying process's files, and sends the
   parent-death signal, while it re-parents its children thread by thread,
   so either can come before getppid() says so. */
static bool reparented(pid_t pool_pid)
{
    for (int i = 0; i < 200 && getppid() == pool_pid; i++)
        usleep(5000);
    return getppid() != pool_pid;
}

/* The embedded pool whose worker this is died (a signal) and could not
   remove its ipc socket: removes it (endpoint: "ipc://path"). */
static void remove_pool_socket(const char *endpoint)
{
    if (!strncmp(endpoint, "ipc://", 6))
        unlink(endpoint + 6);
}

/* The stop fd of an embedded pool's worker: a pool that stops its worker
   writes a byte first; end-of-file without it means the pool's process
   died (a signal), and could not unlink its ipc socket. True then, once
   this process has been re-parented (the socket's path holds the pool's
   pid: no pool of that pid exists any more); false after 1 s without. */
static bool stop_fd_says_pool_died(int fd, pid_t pool_pid)
{
    char c;
    ssize_t r;
    while ((r = read(fd, &c, 1)) < 0 && errno == EINTR) {
    }
    return r == 0 && reparented(pool_pid);
}

static int load_libraries(const mp_worker_options_t *o)
{
    for (size_t i = 0; i < o->ntask_libs; i++) {
        if (!dlopen(o->task_libs[i], RTLD_NOW | RTLD_GLOBAL)) {
            mp__log(MP_LOG_ERROR, WHO, "cannot load task library %s: %s", o->task_libs[i],
                    dlerror());
            return MP_ENOENT;
        }
    }
    return 0;
}

static void teardown(worker_t *w)
{
    if (w->sock && !w->broker_gone && w->heard) {
        char hs[8];
        mp__buf_t h;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, 0);
        /* hand back what we hold: the broker re-queues it, no attempt
           counted. Only to a broker that is there: a DISCONNECT queued for
           one that is gone would hold zmq_ctx_term for the whole linger. */
        mpp_send(w->sock, NULL, 0, MPP_SIG_WORKER, MPP_W_DISCONNECT, h.data, h.size, NULL, 0,
                 ZMQ_DONTWAIT);
        int linger = 500; /* let DISCONNECT leave */
        zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
    }
    if (w->sock)
        zmq_close(w->sock);
    if (w->ctx)
        zmq_ctx_term(w->ctx);
    mp__zygote_stop(&w->zygote);
    for (int i = 0; w->ex && i < w->nex; i++) {
        exec_t *e = &w->ex[i];
        if (e->fd >= 0)
            close(e->fd);
        if (e->job)
            job_free(e->job);
        free(e->rbuf);
    }
    drop_queued(w);
    free(w->ex);
    if (w->progress)
        mp__shared_free(w->progress, MAX_EXECUTORS * MP__PROGRESS_STRIDE * sizeof *w->progress);
    if (w->sfd >= 0)
        close(w->sfd);
}

int mp_worker_run(const mp_worker_options_t *o)
{
    return mp__worker_run_embedded(o, NULL, false);
}

/* Signals to a signalfd, the executors' progress slots, the zygote and its
   executors, then the broker connection (in that order: the zygote must
   not inherit a ZeroMQ context or thread). */
static int start(worker_t *w)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, &w->old_mask);
    w->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    w->ex = calloc((size_t)w->nex, sizeof *w->ex);
    w->progress = mp__shared_alloc(MAX_EXECUTORS * MP__PROGRESS_STRIDE * sizeof *w->progress);
    if (w->sfd < 0 || !w->ex || !w->progress)
        return w->sfd < 0 ? -errno : MP_ENOMEM;
    int rc = mp__zygote_start(&w->zygote, w->progress, w->o.maxtasksperchild, w->host, w->shm);
    if (rc)
        return rc;
    for (int i = 0; i < w->nex; i++) {
        w->ex[i].slot = i;
        w->ex[i].fd = -1;
        spawn_executor(w, &w->ex[i]);
    }
    w->ctx = zmq_ctx_new();
    if (!w->ctx || (rc = open_socket(w)))
        return w->ctx ? rc : MP_ENOMEM;
    mp__log(MP_LOG_INFO, WHO, "serving %s with %d executor%s (credit %u, host %s)", w->o.broker,
            w->nex, w->nex == 1 ? "" : "s", w->credit, w->host);
    return 0;
}

/* A signal (SIGTERM, SIGINT) or the stop fd: the worker stops. An embedded
   pool's worker gets SIGTERM from the pool's pid when the pool's process
   dies (PR_SET_PDEATHSIG), or end-of-file on the stop fd: it removes the
   pool's ipc socket then. */
static void on_signal(worker_t *w)
{
    struct signalfd_siginfo si = {0};
    if (read(w->sfd, &si, sizeof si) > 0)
        mp__log(MP_LOG_INFO, WHO, "signal %u: handing back %zu dispatch%s and stopping",
                si.ssi_signo, w->held, w->held == 1 ? "" : "es");
    w->stopping = true;
    if (w->embedded && si.ssi_pid == (uint32_t)w->pool_pid && reparented(w->pool_pid))
        remove_pool_socket(w->o.broker);
}

static void on_stop_fd(worker_t *w)
{
    /* the embedded pool stops its broker before its worker */
    w->stopping = w->broker_gone = true;
    if (w->embedded && stop_fd_says_pool_died(w->o.stop_fd, w->pool_pid))
        remove_pool_socket(w->o.broker);
}

/* Once per heartbeat interval: give up on a broker never heard from (with
   a connect timeout), reconnect to a silent one, else send HEARTBEAT.
   1: stop serving (*rc says why); 0: go on. */
static int on_heartbeat_timer(worker_t *w, uint64_t now, uint64_t started, int *rc)
{
    uint64_t interval = (uint64_t)w->heartbeat_ms * 1000000ull;
    const mp_worker_options_t *o = &w->o;
    w->next_heartbeat = now + interval;
    if (!w->ever_heard && o->connect_timeout_ms > 0 &&
        now - started > (uint64_t)o->connect_timeout_ms * 1000000ull) {
        mp__log(MP_LOG_ERROR, WHO, "no broker answered at %s within %d ms", o->broker,
                o->connect_timeout_ms);
        *rc = MP_EBROKERLOST;
        return 1;
    }
    if (now - w->last_heard > interval * MPP_LIVENESS) {
        if (o->exit_on_broker_loss) {
            mp__log(MP_LOG_WARN, WHO, "broker silent; stopping");
            return 1;
        }
        *rc = reconnect(w, "silent");
        return *rc != 0;
    }
    char hs[16];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 1);
    mp__w_uint(&h, w->held);
    send_cmd(w, MPP_W_HEARTBEAT, &h, NULL, 0);
    return 0;
}

/* The loop: the broker socket, the signalfd, the zygote, the stop fd and
   every executor's socket, until a stop or a fatal error. */
static int serve(worker_t *w)
{
    size_t cap = (size_t)w->nex + 4;
    zmq_pollitem_t *items = calloc(cap, sizeof *items);
    int *which = calloc(cap, sizeof *which);
    pid_t *pids = calloc(cap, sizeof *pids);
    int rc = items && which && pids ? 0 : MP_ENOMEM;
    uint64_t started = now_ns();
    w->next_heartbeat = started + (uint64_t)w->heartbeat_ms * 1000000ull;
    while (!rc && !w->stopping) {
        int n = 0;
        items[n++] = (zmq_pollitem_t){w->sock, 0, ZMQ_POLLIN, 0};
        items[n++] = (zmq_pollitem_t){NULL, w->sfd, ZMQ_POLLIN, 0};
        items[n++] = (zmq_pollitem_t){NULL, w->zygote.ctl, ZMQ_POLLIN, 0};
        if (w->o.stop_fd >= 0)
            items[n++] = (zmq_pollitem_t){NULL, w->o.stop_fd, ZMQ_POLLIN, 0};
        int first_ex = n;
        for (int i = 0; i < w->nex; i++)
            if (w->ex[i].fd >= 0) {
                which[n] = i;
                pids[n] = w->ex[i].pid;
                items[n++] = (zmq_pollitem_t){NULL, w->ex[i].fd, ZMQ_POLLIN, 0};
            }
        uint64_t now = now_ns();
        long timeout =
            w->next_heartbeat > now ? (long)((w->next_heartbeat - now) / 1000000) + 1 : 0;
        if (zmq_poll(items, n, timeout) < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            on_signal(w);
            break;
        }
        if (w->o.stop_fd >= 0 && items[3].revents) {
            on_stop_fd(w);
            break;
        }
        if (items[2].revents)
            on_zygote(w);
        /* on_zygote may have replaced an executor, and its new socket may
           have the old one's number: a result is only for the same process */
        for (int k = first_ex; k < n; k++)
            if (items[k].revents && w->ex[which[k]].fd == items[k].fd &&
                w->ex[which[k]].pid == pids[k])
                executor_readable(w, &w->ex[which[k]]);
        if (items[0].revents & ZMQ_POLLIN)
            on_broker(w);
        assign(w);
        now = now_ns();
        if (now >= w->next_heartbeat && on_heartbeat_timer(w, now, started, &rc))
            break;
    }
    free(items);
    free(which);
    free(pids);
    return rc;
}

int mp__worker_run_embedded(const mp_worker_options_t *o, mp__pshm_t *shm, bool embedded)
{
    if (!o || !o->broker || o->processes < 0 || o->processes > MAX_EXECUTORS)
        return MP_EINVAL;
    if (o->verbose > 0)
        mp__log_set_level(o->verbose > 1 ? MP_LOG_DEBUG : MP_LOG_INFO);
    worker_t w = {.o = *o,
                  .sfd = -1,
                  .zygote = {-1, 0},
                  .shm = shm,
                  .embedded = embedded,
                  .pool_pid = getppid()};
    if (shm && mp__pshm_slots(shm) < (o->processes ? o->processes : mp_cpu_count()))
        w.shm = NULL; /* an executor without a ring of its own: none use them */
    w.nex = o->processes ? o->processes : mp_cpu_count();
    w.heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms : MPP_DEFAULT_HEARTBEAT_MS;
    w.credit = (unsigned)w.nex * (unsigned)(o->credit_per_process > 0 ? o->credit_per_process : 2);
    if (gethostname(w.host, sizeof w.host - 1))
        snprintf(w.host, sizeof w.host, "unknown");
    int rc = load_libraries(o);
    if (rc)
        return rc;
    pthread_sigmask(SIG_SETMASK, NULL, &w.old_mask);
    rc = start(&w);
    if (!rc)
        rc = serve(&w);
    teardown(&w);
    pthread_sigmask(SIG_SETMASK, &w.old_mask, NULL);
    if (rc == 0)
        mp__log(MP_LOG_INFO, WHO, "stopped");
    return rc;
}
