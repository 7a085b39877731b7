/*  worker.c - the worker supervisor (docs/PROTOCOL.md sections 4.4, 7, 9):
    its setup, its loop, its teardown, and mp_worker_run.

    One loop polls: the DEALER socket to the broker, a signalfd (SIGTERM,
    SIGINT), the zygote's control socket, the optional stop fd, and each
    executor's socket. The supervisor never runs task code, so its
    heartbeats keep their pace whatever the tasks do.

    Jobs (dispatches) wait in a local FIFO until an executor is idle; the
    broker's credit (2 per executor by default) keeps the FIFO short and the
    next chunk local when one finishes. The broker's side is session.c, the
    executors' supervise.c (supervisor.h says how the files depend).
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
#include "codec/plain.h"
#include "mp/error.h"
#include "mp/process.h"
#include "mp/task.h"
#include "mp/worker.h"
#include "codec/mpp.h"
#include "codec/wire.h"
#include "supervisor.h"
#include "worker_shm.h"

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

/* CURVE: both keys, or the worker does not start (a typo in a path must
   not become a plaintext connection). */
static int load_keys(worker_t *w)
{
    char why[256];
    int rc = w->o.curve_key && w->o.curve_server_key ? 0 : MP_EINVAL;
    if (rc)
        snprintf(why, sizeof why,
                 "CURVE needs both this worker's key (--curve-key) and the "
                 "broker's public key (--curve-server-key)");
    else
        rc = mp__curve_load(w->o.curve_key, w->o.curve_server_key, &w->curve, why, sizeof why);
    if (rc)
        mp__log(MP_LOG_ERROR, WHO, "%s", why);
    return rc;
}

static void teardown(worker_t *w)
{
    if ((w->sock || w->stream_fd >= 0) && !w->broker_gone && w->heard) {
        char hs[8];
        mp__buf_t h;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, 0);
        /* hand back what we hold: the broker re-queues it, no attempt
           counted. Only to a broker that is there: a DISCONNECT queued for
           one that is gone would hold zmq_ctx_term for the whole linger. */
        if (w->stream_fd >= 0) {
            wk_send_cmd(w, MPP_W_DISCONNECT, &h, NULL, 0);
        } else {
            mpp_send(w->sock, NULL, 0, MPP_SIG_WORKER, MPP_W_DISCONNECT, h.data, h.size, NULL, 0,
                     ZMQ_DONTWAIT);
            int linger = 500; /* let DISCONNECT leave */
            zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
        }
    }
    if (w->sock)
        mpp_socket_close(w->sock);
    if (w->stream_fd >= 0)
        close(w->stream_fd);
    if (w->connecting_fd >= 0)
        close(w->connecting_fd);
    mpps_free(&w->stream_in);
    mpps_free(&w->stream_out);
    if (w->ctx)
        zmq_ctx_term(w->ctx);
    mp__zygote_stop(&w->zygote);
    for (int i = 0; w->ex && i < w->nex; i++) {
        exec_t *e = &w->ex[i];
        if (e->fd >= 0)
            close(e->fd);
        if (e->job)
            wk_job_free(e->job);
        free(e->rbuf);
    }
    wk_drop_queued(w);
    free(w->ex);
    if (w->progress)
        mp__shared_free(w->progress, MAX_EXECUTORS * sizeof *w->progress);
    if (w->results)
        mp__shared_free(w->results, (size_t)w->nex * MP__RESULT_AREA);
    if (w->sfd >= 0)
        close(w->sfd);
}

int mp_worker_run(const mp_worker_options_t *o)
{
    return mp__worker_run_embedded(o, NULL, false, -1);
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
    w->progress = mp__shared_alloc(MAX_EXECUTORS * sizeof *w->progress);
    w->results = mp__shared_reserve((size_t)w->nex * MP__RESULT_AREA);
    if (w->sfd < 0 || !w->ex || !w->progress || !w->results)
        return w->sfd < 0 ? -errno : MP_ENOMEM;
    int rc = mp__zygote_start(&w->zygote, w->progress, w->results, w->o.maxtasksperchild, w->host,
                              w->shm, w->stream_fd);
    if (rc)
        return rc;
    for (int i = 0; i < w->nex; i++) {
        w->ex[i].slot = i;
        w->ex[i].fd = -1;
        wk_spawn_executor(w, &w->ex[i]);
    }
    w->ctx = zmq_ctx_new();
    if (!w->ctx || (rc = wk_open_socket(w)))
        return w->ctx ? rc : MP_ENOMEM;
    mp__log(MP_LOG_INFO, WHO, "serving %s with %d executor%s (credit %u, host %s)", w->o.broker,
            w->nex, w->nex == 1 ? "" : "s", w->credit, w->host);
    return 0;
}

/* A signal (SIGTERM, SIGINT) or the stop fd: the worker stops. An embedded
   pool's worker gets SIGTERM from the pool's pid when the pool's process
   dies (PR_SET_PDEATHSIG) or exits with the pool still open (its atexit
   handler terminates daemon children, as Python's does), or end-of-file on
   the stop fd: it removes the pool's ipc socket then. The pool's process
   sends SIGTERM for no other reason (mp_pool_destroy uses the stop fd). */
static void on_signal(worker_t *w)
{
    struct signalfd_siginfo si = {0};
    if (read(w->sfd, &si, sizeof si) > 0)
        mp__log(MP_LOG_INFO, WHO, "signal %u: handing back %zu dispatch%s and stopping",
                si.ssi_signo, w->held, w->held == 1 ? "" : "es");
    w->stopping = true;
    if (w->embedded && si.ssi_pid == (uint32_t)w->pool_pid)
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
        mp__log(MP_LOG_ERROR, WHO,
                "no broker answered at %s within %d ms: is mp-broker running there, and its "
                "port reachable from here?",
                o->broker, o->connect_timeout_ms);
        *rc = MP_EBROKERUNREACHABLE;
        return 1;
    }
    if (now - w->last_heard > interval * MPP_LIVENESS) {
        if (o->exit_on_broker_loss) {
            mp__log(MP_LOG_WARN, WHO, "broker silent; stopping");
            return 1;
        }
        *rc = wk_reconnect(w, "silent");
        return *rc != 0;
    }
    char hs[16];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 1);
    mp__w_uint(&h, w->held);
    wk_send_cmd(w, MPP_W_HEARTBEAT, &h, NULL, 0);
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
    uint64_t started = mp__now_ns();
    w->next_heartbeat = started + (uint64_t)w->heartbeat_ms * 1000000ull;
    while (!rc && !w->stopping) {
        if (w->plain && w->stream_fd < 0 && w->connecting_fd < 0 &&
            mp__now_ns() >= w->next_connect) /* mpp+: again */
            rc = wk_reconnect(w, w->heard ? "closed the connection" : "is not there");
        int n = 0;
        /* the socket pair or plain stream (-1: poll skips it), a plain
           stream's connect under way, or the DEALER */
        items[n++] = w->sock ? (zmq_pollitem_t){w->sock, 0, ZMQ_POLLIN, 0}
                     : w->connecting_fd >= 0
                         ? (zmq_pollitem_t){NULL, w->connecting_fd, ZMQ_POLLOUT, 0}
                         : (zmq_pollitem_t){NULL, w->stream_fd, ZMQ_POLLIN, 0};
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
        uint64_t now = mp__now_ns();
        long timeout =
            w->next_heartbeat > now ? (long)((w->next_heartbeat - now) / 1000000) + 1 : 0;
        uint64_t wake = w->connecting_fd >= 0 ? w->connect_deadline : w->next_connect;
        if (w->plain && w->stream_fd < 0 && wake > now &&
            (long)((wake - now) / 1000000) + 1 < timeout)
            timeout = (long)((wake - now) / 1000000) + 1;
        long watch = wk_check_limits(w, now); /* time limits: kill, and look again */
        if (watch >= 0 && watch < timeout)
            timeout = watch;
        watch = wk_check_hold(w, now); /* no hoarding */
        if (watch >= 0 && watch < timeout)
            timeout = watch;
        watch = wk_check_partials(w, now); /* one stuck item holds only itself */
        if (watch >= 0 && watch < timeout)
            timeout = watch;
        if (mpp_poll(items, n, 1, timeout) < 0 && errno != EINTR) {
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
            wk_on_zygote(w);
        /* on_zygote may have replaced an executor, and its new socket may
           have the old one's number: a result is only for the same process */
        for (int k = first_ex; k < n; k++)
            if (items[k].revents && w->ex[which[k]].fd == items[k].fd &&
                w->ex[which[k]].pid == pids[k])
                wk_executor_readable(w, &w->ex[which[k]]);
        if (w->connecting_fd >= 0) /* writable (or failed), or its deadline */
            wk_connect_done(w, items[0].revents != 0, mp__now_ns());
        else if (items[0].revents & ZMQ_POLLIN)
            wk_on_broker(w);
        wk_assign(w);
        now = mp__now_ns();
        if (now >= w->next_heartbeat && on_heartbeat_timer(w, now, started, &rc))
            break;
    }
    free(items);
    free(which);
    free(pids);
    return rc;
}

int mp__worker_run_embedded(const mp_worker_options_t *o, mp__pshm_t *shm, bool embedded,
                            int stream_fd)
{
    if (!o || !o->broker || o->processes < 0 || o->processes > MAX_EXECUTORS) {
        if (stream_fd >= 0)
            close(stream_fd);
        return MP_EINVAL;
    }
    if (o->verbose > 0)
        mp__log_set_level(o->verbose > 1 ? MP_LOG_DEBUG : MP_LOG_INFO);
    worker_t w = {.o = *o,
                  .sfd = -1,
                  .zygote = {-1, 0},
                  .shm = shm,
                  .embedded = embedded,
                  .stream_fd = stream_fd,
                  .plain = stream_fd < 0 && mp__plain_is("mpp", o->broker),
                  .connecting_fd = -1,
                  .pool_pid = getppid()};
    if (w.plain && (o->curve_key || o->curve_server_key)) {
        mp__log(MP_LOG_ERROR, WHO,
                "%s is a plain stream: it has no CURVE (connect to the broker's tcp:// "
                "endpoint for keys)",
                o->broker);
        return MP_EINVAL;
    }
    if (shm && mp__pshm_slots(shm) < (o->processes ? o->processes : mp_cpu_count()))
        w.shm = NULL; /* an executor without a ring of its own: none use them */
    w.nex = o->processes ? o->processes : mp_cpu_count();
    w.heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms : MPP_DEFAULT_HEARTBEAT_MS;
    w.credit = (unsigned)w.nex * (unsigned)(o->credit_per_process > 0 ? o->credit_per_process : 2);
    if (gethostname(w.host, sizeof w.host - 1))
        snprintf(w.host, sizeof w.host, "unknown");
    int rc = load_libraries(o);
    if (!rc && (o->curve_key || o->curve_server_key))
        rc = load_keys(&w);
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
