/*  pool_impl.h - the pool's internals, shared by pool.c (lifecycle, the I/O
    thread, the wire) and job.c (calls, results, AsyncResult, imap).

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
#include <zmq.h>

#include "codec/items_impl.h"
#include "mp/broker.h"
#include "mp/pool.h"
#include "mp/process.h"
#include "pool/poolshm.h"
#include "codec/wire.h"

enum { JOB_APPLY, JOB_MAP, JOB_IMAP };

/* A finished chunk's results, for imap's reader. */
typedef struct cres {
    size_t seq;
    size_t first; /* job index of its first item */
    mp_items_t *items;
    struct cres *next;
} cres_t;

/* An imap's input the feeder queued and the I/O thread has not sent yet,
   and what the I/O thread batches it by (pool.c: consecutive queued chunks
   travel as one chunk; how many is bounded by what the job's results say
   an item costs). Kept out of mp_async_t so that every other call stays
   small: 10^5 pending applies are common, and their size decides whether
   glibc trims the heap between batches (BENCHMARKS.md, apply_async: 3x). */
typedef struct {
    cres_t *head, *tail;
    size_t count;
    size_t bytes;          /* the queued chunks' buffers */
    uint64_t item_ns;      /* a moving average of the time between results,
                              per item; 0 until the first result */
    uint64_t last_done_ns; /* when its last chunk came back */
} imap_in_t;

/* A piece of a map's results that arrived before the pieces ahead of it:
   kept as it came (the RESULT's frames, or a list of failures) until it can
   be appended in order. */
typedef struct held {
    size_t at, count; /* job indexes [at, at + count) */
    zmq_msg_t values, errors;
    bool has_errors;
    mp_items_t *items; /* instead of the frames: failures made here */
    /* instead of the values frame: a reply left in an executor's output
       ring (mp__pshm_out_hold), read when its turn comes */
    const char *ring_vals;
    size_t vsize;
    int slot;
    uint64_t ring_at;
    struct held *next;
} held_t;

/* A map's results as they arrive (job.c). Each piece is appended to one
   list as soon as every piece before it is there, so a value is copied
   and validated once, while the executors still work, and nothing is
   assembled at the end. Pieces ahead of a gap wait in `held`, uncopied,
   sorted by index. */
typedef struct map_out {
    mp_items_t *list; /* items [0, list->len) of the job, in order */
    held_t *held;
    struct sendbuf *send; /* a large map's chunk frames (pool.c), while unsent */
    bool borrowed;        /* job->input is the caller's list (a blocking map) */
    bool failed;          /* out of memory on the way: every item fails at the end */
} map_out_t;

struct mp_async {
    mp_pool_t *pool;
    int kind;
    bool unordered;
    char name[MPP_MAX_NAME + 1];
    uint8_t mode;
    int refs; /* the caller's handle + the pool while not ready */
    bool released;
    /* input */
    mp_items_t *input; /* map: a copy; apply: the one argument tuple */
    size_t total;      /* items (imap: produced so far) */
    size_t chunksize;
    size_t next_item; /* next input item to send */
    size_t next_seq;  /* next chunk sequence number */
    mp_generator_fn gen;
    void *gen_arg;
    bool input_done;
    bool in_send_queue;
    struct mp_async *send_next;
    /* results */
    size_t done;
    size_t outstanding;  /* chunks sent, not finished */
    struct map_out *out; /* map: the results as they arrive (job.c) */
    mp_items_t *results;
    bool ready;
    int first_code;
    mp_call_options_t call;
    /* imap */
    cres_t *cres_head, *cres_tail;
    size_t unread; /* finished chunks not fully read */
    /* imap input: a feeder thread calls the generator (it may block: on
       stdin, say) and queues whole chunks for the I/O thread */
    pthread_t feeder;
    bool feeder_running; /* started and not joined yet */
    bool stop_feeding;
    int input_error;              /* the generator's error, reported at the end */
    imap_in_t *in;                /* its chunks of input not sent yet */
    struct mp_async *feeder_next; /* in pool->feeders while running */
};

struct mp_imap {
    mp_async_t *job;
    cres_t *cur;
    size_t pos;
    size_t read_seq; /* ordered: the next chunk to read */
    size_t returned;
    mp_task_error_t last_error;
    bool has_error;
};

/* A piece of a chunk's results (a RESULT message), before the chunk is whole.
   A map's pieces go to its results at once (items NULL): the record only
   says which items of the chunk have answered. */
typedef struct piece {
    size_t base, count;
    mp_items_t *items;
    struct piece *next;
} piece_t;

typedef struct chunk {
    uint64_t id;
    mp_async_t *job;      /* map / imap / single apply */
    mp_async_t **targets; /* coalesced applies: item k belongs to targets[k] */
    size_t count;
    size_t seq;   /* map/imap: chunk number in its job */
    size_t first; /* map/imap: job index of item 0 */
    size_t received;
    uint64_t sent_ns; /* imap: when it was sent (0: never) */
    bool shm_in;      /* its items are in the input ring (poolshm.h) */
    mp__pshm_in_t in; /* ... there, given back when the chunk ends */
    piece_t *pieces;
    struct chunk *hnext;
} chunk_t;

#define POOL_BUCKETS 1024

struct mp_pool {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    /* configuration */
    bool embedded;
    char endpoint[512]; /* what the DEALER connects to */
    char ipc_path[400]; /* embedded: the ipc file */
    int processes_wanted;
    int window;
    bool window_set; /* given in the options: not resized to the cluster */
    int heartbeat_ms;
    int timeout_ms;
    zmq_msg_t init; /* the init frame, when an initializer is set */
    bool has_init;
    /* embedded parts */
    void *ctx;
    mp_broker_t *broker;
    mp_process_t *worker;
    int stop_pipe[2];
    mp__pshm_t *shm; /* embedded: map items and results travel through it */
    /* I/O thread */
    pthread_t thread;
    bool thread_started;
    int wake_fd; /* eventfd */
    void *sock;  /* DEALER, owned by the I/O thread */
    uint64_t last_heard;
    /* shared state (mutex) */
    bool connected;
    int processes; /* executors, from the broker */
    bool closed, terminated, stopping;
    bool worker_dead; /* embedded: the worker process is gone */
    int connect_error;
    mp_async_t *send_head, *send_tail; /* jobs with input to send */
    size_t inflight;                   /* chunks sent, not finished */
    uint64_t next_chunk_id;
    chunk_t *buckets[POOL_BUCKETS];
    size_t active_jobs; /* not ready yet */
    size_t callback_errors;
    mp_async_t *feeders; /* imap jobs whose feeder thread runs */
    /* status request */
    mp_obj_t *status;
    bool status_wanted, status_sent;
    /* what ended every call, for blocking applies in flight (fail_all) */
    unsigned fail_gen;
    int fail_code;
    char fail_msg[128];
    /* blocking applies (pool.c, "blocking applies"): the calling thread
       speaks to the broker itself on a second session, so a call costs no
       hand-off to and from the I/O thread. One call at a time owns it. */
    pthread_mutex_t sync_mutex; /* owns sync_sock; try-locked: busy -> the I/O thread */
    void *sync_sock;            /* DEALER, opened by the first blocking apply */
    bool sync_welcomed;         /* HELLO sent in its current session */
    uint64_t sync_last_heard;
    int sync_fd; /* eventfd: fail_all ended the pool's calls */
    /* callbacks (job.c, "callbacks"): a thread of their own, started with
       the first call that has one, runs them in the order their calls
       ended; a slow callback delays the callbacks after it, never the I/O
       thread (whose heartbeats keep the pool's session alive) */
    pthread_t cb_thread;
    bool cb_started, cb_stop, cb_busy;
    pthread_cond_t cb_cond;
    mp_async_t **cbq; /* calls whose callback is due: cbq[cbq_head ...] */
    size_t cbq_head, cbq_n, cbq_cap;
};

/* ---- pool.c --------------------------------------------------------------- */

/* Drops a job's reference to its chunk frames' buffer (any thread). */
void mp__pool_sendbuf_unref(void *data, void *hint);

/* ---- job.c: called by pool.c with the mutex held unless said ----------- */

/* A finished chunk (whole): hands its results to its job(s). Takes items.
   Appends jobs that became ready to *ready (to run callbacks unlocked). */
void mp__pool_chunk_done(mp_pool_t *pool, chunk_t *c, mp_items_t *items, mp_async_t ***ready,
                         size_t *nready, size_t *readycap);
/* A RESULT piece of a map chunk: items [at, at + count) of the job. Its
   frames are moved when it has to wait for the pieces before it. */
void mp__pool_map_result(mp_async_t *job, size_t at, size_t count, zmq_msg_t *values,
                         zmq_msg_t *errors);
/* The same for a list of results made here (failures). Takes items. */
void mp__pool_map_result_items(mp_async_t *job, size_t at, mp_items_t *items);
/* A RESULT piece whose values are in an executor's output ring (slot, at
   ring_at): count values, vsize bytes at vals, checked as
   mp__pool_map_result checks its frame. Copied into the results at once
   when every piece before it is there; otherwise left in the ring, held
   (mp__pshm_out_hold), until they are. The caller consumes the ring
   after this returns. */
void mp__pool_map_result_ring(mp_async_t *job, size_t at, size_t count, const char *vals,
                              size_t vsize, zmq_msg_t *errors, int slot, uint64_t ring_at);
/* A map chunk whose pieces all went through mp__pool_map_result is whole. */
void mp__pool_map_chunk_done(mp_pool_t *pool, chunk_t *c, mp_async_t ***ready, size_t *nready,
                             size_t *readycap);
/* Hands ready jobs to their callbacks (mutex NOT held): a job with one goes
   to the callback thread, which runs it and then drops the pool's
   reference; the pool's reference to the others is dropped at once. */
void mp__pool_run_callbacks(mp_pool_t *pool, mp_async_t **ready, size_t n);
/* Runs the callbacks still due, then ends the callback thread (destroy,
   after the I/O thread has ended). */
void mp__pool_stop_callbacks(mp_pool_t *pool);
/* No callback due or running (mutex held). */
bool mp__pool_callbacks_idle(const mp_pool_t *pool);
/* Fails items [from, from+count) of a chunk-less part of job (unsent input)
   with code/message; used when the broker is lost or the pool terminates. */
void mp__pool_fail_unsent(mp_pool_t *pool, mp_async_t *job, int code, const char *msg,
                          mp_async_t ***ready, size_t *nready, size_t *readycap);
/* A result list of count nils, each failed with code/message. NULL on ENOMEM. */
mp_items_t *mp__pool_failed_items(const char *task, size_t count, size_t first_index, int code,
                                  const char *msg);
void mp__pool_job_unref(mp_async_t *job);
/* Wakes the I/O thread (any thread, mutex or not). */
void mp__pool_wake(mp_pool_t *pool);
/* A blocking apply on the caller's own session (name and args checked by
   the caller). MP_EAGAIN when another thread's blocking apply holds that
   session, or the pool is not connected: then the I/O thread's path. Mutex
   NOT held. */
int mp__pool_apply_sync(mp_pool_t *pool, const char *name, const mp_obj_t *args,
                        mp_obj_t **result_p);
/* HELLO on sock: the pool's DEALER, or the session of blocking applies. */
int mp__pool_send_hello_on(mp_pool_t *pool, void *sock);
/* The blocking session (sync.c): the I/O thread heartbeats it while no
   call holds it; destroy closes it (sync_mutex held). */
void mp__pool_sync_keepalive(mp_pool_t *pool);
void mp__pool_sync_close(mp_pool_t *pool);
/* Adds a job to the send queue and wakes the I/O thread. */
int mp__pool_submit(mp_pool_t *pool, mp_async_t *job);
/* Starts the feeder thread of an imap job (mutex NOT held). 0 or MP_ENOMEM. */
int mp__pool_start_feeder(mp_pool_t *pool, mp_async_t *job);
/* Stops and joins it; the generator is not running when this returns
   (mutex NOT held). */
void mp__pool_stop_feeder(mp_pool_t *pool, mp_async_t *job);
/* Decodes a RESULT's errors frame into items (index relative to base). */
int mp__pool_decode_errors(mp_items_t *items, const char *task, const void *data, size_t size,
                           size_t base);

#endif
