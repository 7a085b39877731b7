/*  pool_impl.h - the pool's shared state (struct mp_pool). Every client
    module reads or writes part of it; the functions of each role are
    declared in that role's own header. The modules, top down; each calls
    only modules below it (the call graph of their objects has no circle):

      pool.c       lifecycle                  -> io recv feeder callbacks sync
      call.c       apply, map, starmap, cancel -> async callbacks send sync job
      imap.c       imap's reader              -> async send feeder job
      io.c         the I/O thread's loop      -> recv send callbacks sync session
      recv.c       broker messages, fail_all  -> send chunk job map_out session results
      send.c       send queue, the pump       -> feeder chunk job frames session results
      async.c      AsyncResult                -> callbacks job
      callbacks.c  the callback thread        -> job
      chunk.c      chunks in flight           -> job map_out results
      feeder.c     imap feeder threads        -> job
      job.c        jobs; results into jobs    -> map_out results
      sync.c       blocking applies           -> session results
      map_out.c    a map's results, in place  -> frames results
      session.c    MPP/1 client messages      (bottom)
      frames.c     SUBMIT items frames        (bottom)
      results.c    failure lists, errors      (bottom)

    Calls enter at the top (pool.c, call.c, imap.c) and reach the I/O
    thread through the send queue; results leave the I/O thread by calls
    down into the job side (chunk.c, job.c, map_out.c), never back up.
    Waking the I/O thread is mp__pool_wake below, which anyone may do.

    Locking: pool->mutex guards every field below that both the I/O thread
    and callers touch (jobs, chunks, counters, state). pool->cond is
    broadcast whenever a job progresses or the pool's state changes.
    Callbacks run on the pool's callback thread, generators on their imap's
    feeder thread, both without the mutex.
*/
#ifndef MP_POOL_IMPL_H_INCLUDED
#define MP_POOL_IMPL_H_INCLUDED

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <zmq.h>

#include "base/log.h"
#include "codec/curve.h"
#include "mp/broker.h"
#include "mp/pool.h"
#include "mp/process.h"
#include "pool/poolshm.h"
#include "session.h"

#define POOL_BUCKETS 1024
#define MAX_COALESCE 512 /* applies, or imap items, in one chunk */
/* imap: queued chunks travel together up to this many bytes of input (the
   broker's message limit is 64 MiB) */
#define MAX_COALESCE_BYTES (1u << 20)

typedef struct chunk chunk_t; /* job.h */

struct mp_pool {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    /* configuration */
    bool embedded;
    char endpoint[512]; /* what the DEALER connects to */
    char ipc_path[400]; /* embedded: the ipc file */
    int processes_wanted;
    int window;
    bool window_set;  /* given in the options: not resized to the cluster */
    int window_asked; /* that one, before the broker's max-queued bounds it */
    /* applies one chunk may carry (send.c); 1 on an embedded pool with
       maxtasksperchild: each apply is one task of an executor's life, as
       in Python */
    size_t coalesce_max;
    /* the broker's limits (WELCOME; PROTOCOL.md 4.1): every chunk and the
       window keep within them */
    size_t max_message, max_count, max_queued;
    mp__curve_t curve; /* keys, for a broker that speaks CURVE */
    int heartbeat_ms;
    int timeout_ms;
    uint32_t time_limit_ms; /* the default per task (options; 0: none) */
    bool resend;            /* remote: chunks wait for a lost broker (send.c) */
    int reconnect_timeout_ms;
    zmq_msg_t init; /* the init frame, when an initializer is set */
    bool has_init;
    /* embedded parts */
    void *ctx;
    mp_broker_t *broker;
    mp_process_t *worker;
    int stop_pipe[2];
    int stream_pair[2]; /* embedded: the broker's and the worker's ends (codec/mpps.h) */
    mp__pshm_t *shm;    /* embedded: map items and results travel through it */
    /* I/O thread */
    pthread_t thread;
    bool thread_started;
    int wake_fd;             /* eventfd */
    void *sock;              /* DEALER, owned by the I/O thread */
    mp__curve_watch_t watch; /* its handshakes (remote pools): a refusal is MP_EAUTH */
    uint64_t last_heard;
    /* shared state (mutex) */
    bool connected;
    bool ever_heard; /* the broker has answered once: "lost", not "not reached" */
    int processes;   /* executors, from the broker */
    bool closed, terminated, stopping;
    bool worker_dead; /* embedded: the worker process is gone */
    int connect_error;
    bool holding;                      /* the broker was lost; orphans wait for the next one */
    mp__ratelimit_t malformed_rl;      /* I/O thread: warnings about the broker's messages */
    uint64_t lost_ns;                  /* when it was lost */
    mp_async_t *send_head, *send_tail; /* jobs with input to send (send.c) */
    uint64_t *cancels;                 /* chunk ids to CANCEL (send.c) */
    size_t ncancels, cancelcap;
    size_t inflight; /* chunks sent, not finished */
    uint64_t next_chunk_id;
    chunk_t *buckets[POOL_BUCKETS]; /* chunks in flight (chunk.c) */
    size_t active_jobs;             /* not ready yet */
    size_t callback_errors;
    mp_async_t *feeders; /* imap jobs whose feeder thread runs (feeder.c) */
    /* status request */
    mp_obj_t *status;
    bool status_wanted, status_sent;
    uint64_t drain_id; /* the STATUS wanted is DRAIN's answer for this worker (0: plain) */
    /* what ended every call, for blocking applies in flight (recv.c,
       mp__pool_fail_all) */
    unsigned fail_gen;
    int fail_code;
    char fail_msg[128];
    /* blocking applies (sync.c): the calling thread speaks to the broker
       itself on a second session, so a call costs no hand-off to and from
       the I/O thread. One call at a time owns it. */
    pthread_mutex_t sync_mutex; /* owns sync; try-locked: busy -> the I/O thread */
    mp__link_t sync;            /* embedded: a socket pair to the broker thread, from the start;
                                   else a DEALER, opened by the first blocking apply */
    bool sync_welcomed;         /* HELLO sent in its current session */
    uint64_t sync_last_heard;
    int sync_fd; /* eventfd: fail_all ended the pool's calls */
    /* callbacks (callbacks.c): a thread of their own, started with the
       first call that has one, runs them in the order their calls ended;
       a slow callback delays the callbacks after it, never the I/O thread
       (whose heartbeats keep the pool's session alive) */
    pthread_t cb_thread;
    bool cb_started, cb_stop, cb_busy;
    pthread_cond_t cb_cond;
    mp_async_t **cbq; /* calls whose callback is due: cbq[cbq_head ...] */
    size_t cbq_head, cbq_n, cbq_cap;
};

/* Wakes the I/O thread (any thread, mutex or not). */
static inline void mp__pool_wake(mp_pool_t *pool)
{
    uint64_t one = 1;
    ssize_t r = write(pool->wake_fd, &one, sizeof one);
    (void)r;
}

/* The window (chunks in flight): w, within the broker's max_queued. */
static inline void mp__pool_set_window(mp_pool_t *pool, int w)
{
    pool->window = (size_t)w > pool->max_queued ? (int)pool->max_queued : w;
}

/* A chunk size within the broker's max_count (a larger one is split). */
static inline size_t mp__pool_chunk_limit(mp_pool_t *pool, size_t chunksize)
{
    return chunksize > pool->max_count ? pool->max_count : chunksize;
}

#endif
