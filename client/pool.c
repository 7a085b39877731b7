/*  pool.c - the pool's lifecycle: mp_pool_new, close, terminate, join,
    destroy, and what a caller may ask of a running pool (processes,
    callback errors, status).

    Embedded start-up, in this order:
      1. fork the worker process while this pool has no ZeroMQ context or
         thread yet; it speaks to the broker on a socket pair made before
         the fork (PROTOCOL.md 9.2: no ZeroMQ I/O thread in between);
      2. make the context, start the broker thread with the pair's other
         end, bound to ipc:// (for workers from elsewhere) and inproc://
         (this pool's DEALER, no syscalls per message);
      3. start the I/O thread (io.c), HELLO, and wait until the broker
         reports the worker's executors.
    A cluster pool (options.broker or $MP_BROKER) skips 1 and the broker.

    Tear-down is the reverse, and each part is stopped before what it uses:
    the I/O thread (it fails what is left), the imap feeders, the callback
    thread (it runs the callbacks still due), the blocking applies' session,
    the broker, the worker, the rings, the context. This file sits on top of
    the I/O thread and the job side: nothing calls into it.
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"
#include "base/log.h"
#include "callbacks.h"
#include "codec/mpp.h"
#include "feeder.h"
#include "io.h"
#include "mp/broker.h"
#include "mp/error.h"
#include "mp/worker.h"
#include "broker_shm.h"
#include "pool_impl.h"
#include "recv.h"
#include "sync.h"
#include "worker_shm.h"

#define WHO "mp-pool"
/* the embedded pool's rings (poolshm.h): sparse, a page costs memory once
   a chunk has used it */
#define POOL_SHM_IN (64u << 20)
#define POOL_SHM_OUT (32u << 20)

static int maxtasks_of(const mp_pool_options_t *o)
{
    return o && o->maxtasksperchild > 0 ? o->maxtasksperchild : 0;
}

typedef struct {
    mp_pool_t *pool;
    int maxtasks;
} worker_arg_t;

static int worker_entry(void *arg)
{
    worker_arg_t *wa = arg;
    mp_pool_t *pool = wa->pool;
    close(pool->stop_pipe[1]);
    close(pool->stream_pair[0]); /* the broker's end */
    /* if this process dies, the worker stops cleanly (SIGTERM, not the
       daemon's SIGKILL): it hands back its work and removes the ipc socket
       this process could not */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    mp_worker_options_t o = {.broker = pool->endpoint,
                             .processes = pool->processes_wanted,
                             .maxtasksperchild = wa->maxtasks,
                             .heartbeat_ms = pool->heartbeat_ms,
                             .exit_on_broker_loss = true,
                             .stop_fd = pool->stop_pipe[0],
                             .hold_ms = -1 /* the only worker: nobody to hand to */};
    return mp__worker_run_embedded(&o, pool->shm, true, pool->stream_pair[1]) ? 1 : 0;
}

static int pack_init(mp_pool_t *pool, const mp_pool_options_t *o)
{
    if (!o || !o->initializer)
        return 0;
    if (strlen(o->initializer) == 0 || strlen(o->initializer) > MPP_MAX_NAME ||
        (o->initargs && mp_obj_type(o->initargs) != MP_OBJ_ARRAY))
        return MP_EINVAL;
    mp__buf_t b;
    mp__buf_init(&b, NULL, 0);
    int rc = mp__w_array(&b, 2);
    rc = rc ? rc : mp__w_str(&b, o->initializer);
    rc = rc ? rc : o->initargs ? mp__obj_pack_into(o->initargs, &b) : mp__w_array(&b, 0);
    if (!rc && zmq_msg_init_size(&pool->init, b.size) == 0) {
        memcpy(zmq_msg_data(&pool->init), b.data, b.size);
        pool->has_init = true;
    } else if (!rc) {
        rc = MP_ENOMEM;
    }
    mp__buf_release(&b);
    return rc;
}

static bool connected_enough(void *arg)
{
    mp_pool_t *pool = arg;
    if (pool->stopping)
        return true;
    if (!pool->connected)
        return false;
    return !pool->embedded || pool->processes >= pool->processes_wanted;
}

/* Step 1 of an embedded start-up: the ipc endpoint, the rings, and the
   worker process, forked before any ZeroMQ state exists here. */
static int start_worker(mp_pool_t *pool, const mp_pool_options_t *o)
{
    static unsigned counter; /* ipc names only; not state that outlives a call */
    worker_arg_t wa = {pool, maxtasks_of(o)};
    int rc;
    const char *dir = getenv("XDG_RUNTIME_DIR");
    if (!dir || access(dir, W_OK) != 0)
        dir = "/tmp";
    unsigned n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    snprintf(pool->ipc_path, sizeof pool->ipc_path, "%s/mp-pool-%d-%u.ipc", dir, (int)getpid(), n);
    snprintf(pool->endpoint, sizeof pool->endpoint, "ipc://%s", pool->ipc_path);
    /* the rings map items and results travel through, before the fork
       that shares them (MP_POOL_SHM=0: every chunk in frames) */
    const char *use_shm = getenv("MP_POOL_SHM");
    if (!use_shm || strcmp(use_shm, "0") != 0)
        pool->shm = mp__pshm_new(pool->processes_wanted, POOL_SHM_IN, POOL_SHM_OUT);
    /* a socket pair, not a pipe: the stop byte is sent with MSG_NOSIGNAL (a
       worker already gone must not SIGPIPE us) */
    /* and a second pair: the broker thread and the worker speak MPP/1 on
       it (PROTOCOL.md 9.2), without ZeroMQ's I/O threads in between */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pool->stop_pipe) < 0) {
        rc = -errno;
    } else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pool->stream_pair) < 0) {
        rc = -errno;
        close(pool->stop_pipe[0]);
        pool->stop_pipe[0] = -1; /* stop_pipe[1] goes with the pool */
    } else {
        mp_process_opts_t po = {
            .name = "PoolWorker", .daemon = true, .start_method = MP_START_FORK};
        pool->worker = mp_process_new(worker_entry, &wa, &po);
        rc = pool->worker ? mp_process_start(pool->worker) : MP_ENOMEM;
        close(pool->stop_pipe[0]);
        pool->stop_pipe[0] = -1;
        close(pool->stream_pair[1]); /* the worker's end */
        pool->stream_pair[1] = -1;
    }
    return rc;
}

/* Step 2 of an embedded start-up: the broker thread, bound to the worker's
   ipc endpoint and to the inproc endpoint this pool connects to, serving
   the worker's socket pair and the blocking applies' one. */
static int start_broker(mp_pool_t *pool, const mp_pool_options_t *o)
{
    /* the blocking applies' session: a socket pair the broker thread
       serves as a stream peer (sync.c), made after the worker's fork */
    int sync[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0)
        return -errno;
    pool->sync.fd = sync[0];
    char inproc[64];
    snprintf(inproc, sizeof inproc, "inproc://mp-pool-%p", (void *)pool);
    const char *binds[] = {pool->endpoint, inproc};
    mp_broker_options_t bo = {.binds = binds,
                              .nbinds = 2,
                              .zmq_context = pool->ctx,
                              .heartbeat_ms = pool->heartbeat_ms,
                              .http = o ? o->http : NULL};
    int rc = mp__broker_new_shm(&bo, pool->shm, pool->stream_pair[0], sync[1], &pool->broker);
    pool->stream_pair[0] = -1; /* the broker's now, also when it failed, as sync[1] */
    snprintf(pool->endpoint, sizeof pool->endpoint, "%s", inproc);
    return rc;
}

/* Step 3, once the I/O thread runs: waits until the broker welcomed the
   pool (and, embedded, reported every executor), at most timeout_ms. */
static int wait_connected(mp_pool_t *pool)
{
    int rc = 0;
    struct timespec ts;
    mp__deadline(pool->timeout_ms, &ts);
    pthread_mutex_lock(&pool->mutex);
    while (!connected_enough(pool) && !pool->connect_error)
        if (pthread_cond_timedwait(&pool->cond, &pool->mutex, &ts) == ETIMEDOUT)
            break;
    bool heard = pool->ever_heard;
    if (pool->connect_error)
        rc = pool->connect_error;
    else if (!connected_enough(pool) || pool->stopping)
        rc = pool->embedded || heard ? MP_EBROKERLOST : MP_EBROKERUNREACHABLE;
    pthread_mutex_unlock(&pool->mutex);
    if (rc == MP_EBROKERUNREACHABLE)
        mp__log(MP_LOG_WARN, WHO,
                "no broker answered at %s within %d ms: is mp-broker running there, "
                "and its port reachable from here?",
                pool->endpoint, pool->timeout_ms);
    else if (rc && pool->embedded)
        mp__log(MP_LOG_WARN, WHO, "the embedded pool's worker did not start within %d ms",
                pool->timeout_ms);
    else if (rc && rc != MP_EAUTH) /* a refusal was logged where it was seen */
        mp__log(MP_LOG_WARN, WHO, "broker %s answered, then went away during the handshake: %s",
                pool->endpoint, mp_strerror(rc));
    return rc;
}

/* CURVE keys from the options or the environment, both or neither: a
   half-given pair fails (a typo must not become a plaintext session). */
static int load_keys(mp_pool_t *pool, const mp_pool_options_t *o)
{
    const char *key = o && o->curve_key ? o->curve_key : getenv("MP_CURVE_KEY");
    const char *server =
        o && o->curve_server_key ? o->curve_server_key : getenv("MP_CURVE_SERVER_KEY");
    key = key && *key ? key : NULL;
    server = server && *server ? server : NULL;
    if (!key && !server)
        return 0;
    char why[256];
    int rc = key && server ? 0 : MP_EINVAL;
    if (rc)
        snprintf(why, sizeof why,
                 "CURVE needs both this client's key (curve_key, "
                 "MP_CURVE_KEY) and the broker's (curve_server_key, "
                 "MP_CURVE_SERVER_KEY)");
    else
        rc = mp__curve_load(key, server, &pool->curve, why, sizeof why);
    if (rc)
        mp__log(MP_LOG_WARN, WHO, "%s", why);
    return rc;
}

/* A pool with its options applied, nothing started. */
static mp_pool_t *pool_alloc(const mp_pool_options_t *o, const char *broker)
{
    mp_pool_t *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->cond, &ca);
    pthread_cond_init(&pool->cb_cond, NULL);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&pool->sync_mutex, NULL);
    pool->wake_fd = pool->sync_fd = -1;
    pool->stop_pipe[0] = pool->stop_pipe[1] = -1;
    pool->stream_pair[0] = pool->stream_pair[1] = -1;
    pool->heartbeat_ms = o && o->heartbeat_ms > 0 ? o->heartbeat_ms : MPP_DEFAULT_HEARTBEAT_MS;
    pool->sync = (mp__link_t){.fd = -1, .stall_ms = pool->heartbeat_ms * MPP_LIVENESS};
    pool->timeout_ms = o && o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    pool->time_limit_ms = o && o->time_limit_ms > 0 ? (uint32_t)o->time_limit_ms : 0;
    pool->reconnect_timeout_ms = o && o->reconnect_timeout_ms > 0 ? o->reconnect_timeout_ms : 30000;
    pool->embedded = !broker || !*broker;
    pool->resend = !pool->embedded && !(o && o->reconnect_timeout_ms < 0);
    pool->processes_wanted = o && o->processes > 0 ? o->processes : mp_cpu_count();
    int wanted = pool->embedded ? pool->processes_wanted : 2;
    pool->window = o && o->window > 0 ? o->window : (wanted * 4 > 8 ? wanted * 4 : 8);
    pool->window_set = o && o->window > 0;
    pool->window_asked = pool->window;
    pool->coalesce_max = pool->embedded && maxtasks_of(o) > 0 ? 1 : MAX_COALESCE;
    pool->max_message = MPP_DEFAULT_MAX_MSG;
    pool->max_count = MPP_MAX_COUNT;
    pool->max_queued = MPP_DEFAULT_MAX_QUEUED;
    mp__pool_set_window(pool, pool->window);
    return pool;
}

/* Python's Pool(processes=-1) and maxtasksperchild=-1 are ValueErrors:
   here MP_EINVAL, the argument named in the log. */
static int check_counts(const mp_pool_options_t *o)
{
    const char *bad = !o                        ? NULL
                      : o->processes < 0        ? "processes"
                      : o->maxtasksperchild < 0 ? "maxtasksperchild"
                      : o->window < 0           ? "window"
                                                : NULL;
    if (bad)
        mp__log(MP_LOG_WARN, WHO, "mp_pool_new: %s must be 0 (the default) or more, not %d", bad,
                !strcmp(bad, "processes")          ? o->processes
                : !strcmp(bad, "maxtasksperchild") ? o->maxtasksperchild
                                                   : o->window);
    return bad ? MP_EINVAL : 0;
}

int mp_pool_new(const mp_pool_options_t *o, mp_pool_t **pool_p)
{
    if (!pool_p || check_counts(o))
        return MP_EINVAL;
    const char *broker = o ? o->broker : NULL;
    if (!broker || !*broker)
        broker = getenv("MP_BROKER");
    if (broker && *broker) {
        char why[512];
        int rc = mp_broker_address_check(broker, why, sizeof why);
        if (!rc && strncmp(broker, "mpp+", 4) == 0) { /* workers' only */
            snprintf(why, sizeof why,
                     "%s is a plain stream endpoint, which serves workers: a pool connects to "
                     "the broker's tcp:// or ipc:// endpoint",
                     broker);
            rc = MP_EINVAL;
        }
        if (rc) {
            mp__log(MP_LOG_WARN, WHO, "%s", why);
            return rc;
        }
    }
    mp_pool_t *pool = pool_alloc(o, broker);
    if (!pool)
        return MP_ENOMEM;
    int keys = pool->embedded ? 0 : load_keys(pool, o);
    if (keys) {
        mp_pool_destroy(&pool);
        return keys;
    }
    int rc = pack_init(pool, o);
    /* 1. the worker process, before any ZeroMQ state exists here */
    if (!rc && pool->embedded)
        rc = start_worker(pool, o);
    else if (!rc)
        snprintf(pool->endpoint, sizeof pool->endpoint, "%s", broker);
    /* 2. the context (and the broker for an embedded pool) */
    if (!rc && !(pool->ctx = zmq_ctx_new()))
        rc = MP_ENOMEM;
    if (!rc && pool->embedded)
        rc = start_broker(pool, o);
    /* 3. the I/O thread, and the handshake */
    if (!rc && ((pool->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
                (pool->sync_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0))
        rc = -errno;
    if (!rc && pthread_create(&pool->thread, NULL, mp__pool_io_thread, pool) != 0)
        rc = MP_ENOMEM;
    if (!rc) {
        pool->thread_started = true;
        rc = wait_connected(pool);
    }
    if (rc) {
        mp_pool_destroy(&pool);
        return rc;
    }
    *pool_p = pool;
    return 0;
}

static void stop_workers(mp_pool_t *pool)
{
    if (!pool->worker)
        return;
    if (pool->stop_pipe[1] >= 0) {
        /* a byte, then EOF: the worker stops (EOF alone would mean this
           process died, and the worker would remove the ipc socket) */
        ssize_t w = send(pool->stop_pipe[1], "s", 1, MSG_NOSIGNAL);
        (void)w;
        close(pool->stop_pipe[1]);
        pool->stop_pipe[1] = -1;
    }
    if (mp_process_join(pool->worker, 5000) == MP_ETIMEDOUT) {
        mp_process_kill(pool->worker);
        mp_process_join(pool->worker, -1);
    }
}

/* Every call has ended and its callback has run (Python's join waits for
   its result handler too); a join called from a callback cannot wait for
   the callbacks, its own included: only for the calls. */
static bool all_done(mp_pool_t *pool, bool in_callback)
{
    return pool->active_jobs == 0 && (in_callback || mp__pool_callbacks_idle(pool));
}

int mp_pool_close(mp_pool_t *pool)
{
    if (!pool)
        return MP_EINVAL;
    pthread_mutex_lock(&pool->mutex);
    pool->closed = true;
    pthread_mutex_unlock(&pool->mutex);
    return 0;
}

int mp_pool_terminate(mp_pool_t *pool)
{
    if (!pool)
        return MP_EINVAL;
    ready_t ready = {0};
    pthread_mutex_lock(&pool->mutex);
    pool->terminated = true;
    mp__pool_fail_all(pool, MP_ECANCELLED, "the pool was terminated", &ready);
    pthread_mutex_unlock(&pool->mutex);
    if (ready.n)
        mp__pool_run_callbacks(pool, ready.v, ready.n);
    free(ready.v);
    stop_workers(pool);
    return 0;
}

int mp_pool_join(mp_pool_t *pool)
{
    if (!pool)
        return MP_EINVAL;
    pthread_mutex_lock(&pool->mutex);
    if (!pool->closed && !pool->terminated) {
        pthread_mutex_unlock(&pool->mutex);
        return MP_ESTATE;
    }
    bool in_callback = mp__pool_on_callback_thread(pool);
    while (!all_done(pool, in_callback))
        pthread_cond_wait(&pool->cond, &pool->mutex);
    pthread_mutex_unlock(&pool->mutex);
    stop_workers(pool);
    return 0;
}

void mp_pool_destroy(mp_pool_t **pool_p)
{
    if (!pool_p || !*pool_p)
        return;
    mp_pool_t *pool = *pool_p;
    if (pool->thread_started) {
        pthread_mutex_lock(&pool->mutex);
        pool->stopping = true;
        pthread_mutex_unlock(&pool->mutex);
        mp__pool_wake(pool);
        pthread_join(pool->thread, NULL);
    }
    for (;;) { /* imaps the caller did not destroy: stop their generators */
        pthread_mutex_lock(&pool->mutex);
        mp_async_t *job = pool->feeders;
        pthread_mutex_unlock(&pool->mutex);
        if (!job)
            break;
        mp__pool_stop_feeder(pool, job);
    }
    mp__pool_stop_callbacks(pool);         /* the I/O thread has queued its last */
    pthread_mutex_lock(&pool->sync_mutex); /* no blocking apply may still run */
    mp__pool_sync_close(pool);
    pthread_mutex_unlock(&pool->sync_mutex);
    mp_broker_destroy(&pool->broker); /* the worker hears DISCONNECT and stops */
    stop_workers(pool);
    mp_process_destroy(&pool->worker);
    mp__pshm_destroy(&pool->shm); /* nobody maps it any more */
    if (pool->ctx)
        zmq_ctx_term(pool->ctx);
    if (pool->ipc_path[0])
        unlink(pool->ipc_path);
    if (pool->has_init)
        zmq_msg_close(&pool->init);
    if (pool->wake_fd >= 0)
        close(pool->wake_fd);
    if (pool->sync_fd >= 0)
        close(pool->sync_fd);
    if (pool->stop_pipe[1] >= 0)
        close(pool->stop_pipe[1]);
    if (pool->stream_pair[0] >= 0) /* a start that failed before the broker took it */
        close(pool->stream_pair[0]);
    mp_obj_destroy(&pool->status);
    free(pool->cancels);
    pthread_mutex_destroy(&pool->mutex);
    pthread_mutex_destroy(&pool->sync_mutex);
    pthread_cond_destroy(&pool->cond);
    pthread_cond_destroy(&pool->cb_cond);
    free(pool);
    *pool_p = NULL;
}

int mp_pool_processes(const mp_pool_t *pool)
{
    if (!pool)
        return MP_EINVAL;
    mp_pool_t *p = (mp_pool_t *)pool;
    pthread_mutex_lock(&p->mutex);
    int n = p->processes;
    pthread_mutex_unlock(&p->mutex);
    return n;
}

size_t mp_pool_callback_errors(const mp_pool_t *pool)
{
    if (!pool)
        return 0;
    mp_pool_t *p = (mp_pool_t *)pool;
    pthread_mutex_lock(&p->mutex);
    size_t n = p->callback_errors;
    pthread_mutex_unlock(&p->mutex);
    return n;
}

static bool status_arrived(void *arg)
{
    mp_pool_t *pool = arg;
    return !pool->status_wanted || pool->stopping;
}

/* STATUS, or DRAIN of worker drain_id (answered with STATUS). */
static int ask_status(mp_pool_t *pool, uint64_t drain_id, int timeout_ms, mp_obj_t **status_p)
{
    if (!pool || !status_p)
        return MP_EINVAL;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int t = timeout_ms < 0 ? 3600000 : timeout_ms;
    ts.tv_sec += t / 1000;
    ts.tv_nsec += (long)(t % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&pool->mutex);
    if (pool->drain_id != drain_id) /* a different question than the one in flight */
        pool->status_sent = false;
    pool->status_wanted = true;
    pool->drain_id = drain_id;
    mp__pool_wake(pool);
    int rc = 0;
    while (!status_arrived(pool))
        if (pthread_cond_timedwait(&pool->cond, &pool->mutex, &ts) == ETIMEDOUT) {
            rc = MP_ETIMEDOUT;
            break;
        }
    if (!rc && pool->status) {
        *status_p = pool->status;
        pool->status = NULL;
    } else if (!rc) {
        rc = MP_EBROKERLOST;
    }
    pool->status_wanted = false;
    pool->drain_id = 0;
    if (rc == MP_ETIMEDOUT) /* the next question is sent, not waited for */
        pool->status_sent = false;
    pthread_mutex_unlock(&pool->mutex);
    return rc;
}

int mp_pool_status(mp_pool_t *pool, int timeout_ms, mp_obj_t **status_p)
{
    return ask_status(pool, 0, timeout_ms, status_p);
}

int mp_pool_drain_worker(mp_pool_t *pool, uint64_t worker_id, int timeout_ms, mp_obj_t **status_p)
{
    return worker_id ? ask_status(pool, worker_id, timeout_ms, status_p) : MP_EINVAL;
}

const char *mp_pool_http_address(const mp_pool_t *pool)
{
    return pool && pool->broker ? mp_broker_http_address(pool->broker) : NULL;
}
