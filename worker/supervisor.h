/*  supervisor.h - the worker supervisor's state, shared by its files.
    Private to the worker engine.

    The files, bottom up; each calls only those before it: session.c (the
    broker connection, TASKs into the local FIFO), supervise.c (executors:
    jobs out, replies and deaths in), worker.c (setup, the loop, teardown,
    mp_worker_run).
*/
#ifndef MP_WORKER_SUPERVISOR_H_INCLUDED
#define MP_WORKER_SUPERVISOR_H_INCLUDED

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <zmq.h>

#include "base/log.h"
#include "codec/curve.h"
#include "codec/mpp.h"
#include "codec/mpps.h"
#include "codec/wire.h"
#include "mp/worker.h"
#include "pool/poolshm.h"
#include "worker_impl.h"

#define WHO "mp-worker"
#define MAX_EXECUTORS 1024

typedef struct job {
    uint64_t dispatch;
    uint64_t queued_ns; /* when it arrived (no hoarding: wk_check_hold) */
    uint64_t session;
    char name[MPP_MAX_NAME + 1];
    size_t count;
    uint32_t time_limit_ms; /* per item (0: none): the executor is killed past it */
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
    /* its job's time limit: the item it was last seen running, since when */
    uint32_t seen_index;
    uint64_t seen_ns;
    bool timed_out; /* killed over the limit: its death is reported as such */
    bool cancelled; /* killed because the broker withdrew its dispatch */
    /* partial results: items of its job sent ahead (W-PARTIAL), and the
       item it was last seen running for wk_check_partials, since when */
    uint64_t sent;
    uint64_t handed_back; /* items from here on were handed back (0: none) */
    uint32_t flush_index;
    uint64_t flush_ns;
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
    mp__progress_t *progress; /* the executors' slots, shared (task_impl.h) */
    char *results;            /* their result areas, shared (worker_impl.h) */
    mp__pshm_t *shm;          /* embedded: the pool's rings (poolshm.h), or NULL */
    bool embedded;            /* an embedded pool's worker: the pool is our parent */
    pid_t pool_pid;           /* the parent at the start */
    exec_t *ex;
    int nex;
    job_t *queue_head, *queue_tail;
    size_t held; /* jobs received and not answered (queued + running) */
    bool stopping;
    int sfd;
    sigset_t old_mask; /* restored when mp_worker_run returns */
    mp__curve_t curve; /* keys, when the broker speaks CURVE */
    uint64_t done, lost;
    unsigned withheld;            /* credit handed back with queued dispatches (wk_check_hold) */
    mp__ratelimit_t malformed_rl; /* warnings about the broker's messages */
    /* The broker on a plain stream (codec/mpps.h), not a DEALER: an
       embedded pool's socket pair end, or (plain) a connection to an
       mpp+tcp:// or mpp+ipc:// endpoint; -1 otherwise (or not connected) */
    int stream_fd;
    mpps_buf_t stream_in, stream_out;
    bool plain;                /* o.broker is mpp+...: connected by wk_open_socket */
    uint64_t next_connect;     /* plain, not connected: when to try again */
    int connecting_fd;         /* plain: a connect under way (poll it for POLLOUT), or -1 */
    uint64_t connect_deadline; /* when that one is given up */
    uint32_t connect_ivl_ms;   /* the wait before the next try: 100 ms, doubling to 5 s */
} worker_t;

/* ---- session.c ---- */
/* The loop's poll found a connect under way (connecting_fd) ready, or
   not (then only its deadline counts): connected (READY sent), closed and
   tried again later, or left under way. */
void wk_connect_done(worker_t *w, bool ready, uint64_t now);
void wk_job_free(job_t *j);
int wk_send_cmd(worker_t *w, uint8_t cmd, mp__buf_t *h, zmq_msg_t *payload, int n);
void wk_send_ready(worker_t *w);
/* LOST of job j's item index; code 0, or MP_ETIMELIMIT / MP_ECANCELLED
   (lost-code: the broker does not run the item again). */
void wk_send_lost(worker_t *w, job_t *j, uint32_t index, const char *cause, int code);
int wk_open_socket(worker_t *w);
/* Forgets the broker's jobs that are still queued here: after a reconnect
   that broker has re-queued them (or is gone). */
void wk_drop_queued(worker_t *w);
int wk_reconnect(worker_t *w, const char *why);
void wk_on_broker(worker_t *w);

/* ---- supervise.c ---- */
void wk_spawn_executor(worker_t *w, exec_t *e);
void wk_assign(worker_t *w);
/* Reads what the executor wrote (never blocks: MSG_DONTWAIT); forwards a
   complete reply. Returns false when nothing could be read. */
bool wk_executor_readable(worker_t *w, exec_t *e);
void wk_on_zygote(worker_t *w);
/* Kills every executor whose current item has run past its job's time
   limit (seen through the progress slots). Returns how long the loop may
   sleep before the next look, in ms (-1: no limit to watch). */
long wk_check_limits(worker_t *w, uint64_t now);
/* No hoarding: when every executor is busy and the oldest queued dispatch
   has waited hold_ms, hands every queued one back (W-RETURN); once an
   executor is free and nothing is queued, READY again restores the
   credit. Returns how long the loop may sleep before looking again, in ms
   (-1: nothing to watch). */
long wk_check_hold(worker_t *w, uint64_t now);

/* ---- partial.c ---- */
/* Partial results (docs/PARTIAL-RESULTS.md): sends W-PARTIAL for the
   finished items of every dispatch whose executor has been on one item for
   flush_ms. Returns how long the loop may sleep before looking again, in
   ms (-1: nothing to watch). */
long wk_check_partials(worker_t *w, uint64_t now);
/* Executor e replied with count items after the e->sent sent ahead: when
   they end before its job does and the rest was not handed back yet (the
   executor stopped at a limit set as it moved on), hands it back now. Call
   before forwarding the reply. */
void wk_partial_reply(worker_t *w, const exec_t *e, const job_t *j, uint64_t count);

#endif
