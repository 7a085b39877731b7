/*  job.h - the calls a pool runs (jobs), the chunks they are cut into, and
    the job table's functions (job.c): results of chunks go into their
    jobs here, whoever delivers them. */
#ifndef MP_CLIENT_JOB_H_INCLUDED
#define MP_CLIENT_JOB_H_INCLUDED

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "codec/wire.h"
#include "mp/pool.h"
#include "pool/poolshm.h"

enum { JOB_APPLY, JOB_MAP, JOB_IMAP };

/* A finished chunk's results, for imap's reader; also a chunk of an imap's
   input the feeder queued (imap_in_t). */
typedef struct cres {
    size_t seq;
    size_t first; /* job index of its first item */
    mp_items_t *items;
    struct cres *next;
} cres_t;

/* An imap's input the feeder queued and the I/O thread has not sent yet,
   and what the I/O thread batches it by (send.c: consecutive queued chunks
   travel as one chunk; how many is bounded by what the job's results say
   an item costs: feeder.c, mp__pool_imap_batch). Kept out of mp_async_t so
   that every other call stays small: 10^5 pending applies are common, and
   their size decides whether glibc trims the heap between batches
   (BENCHMARKS.md, apply_async: 3x). */
typedef struct {
    cres_t *head, *tail;
    size_t count;
    size_t bytes;          /* the queued chunks' buffers */
    uint64_t item_ns;      /* a moving average of the time between results,
                              per item; 0 until the first result */
    uint64_t last_done_ns; /* when its last chunk came back */
} imap_in_t;

struct mp_async {
    mp_pool_t *pool;
    int kind;
    bool unordered;
    char name[MPP_MAX_NAME + 1];
    uint8_t mode;
    int refs; /* the caller's handle + the pool until ready */
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
    struct map_out *out; /* map: the results as they arrive (map_out.c) */
    mp_items_t *results;
    bool finished; /* every item is in (the I/O thread's view) */
    bool ready;    /* finished, and its callback ran (the caller's view:
                      CPython runs callbacks before a result is ready) */
    int first_code;
    mp_call_options_t call;
    uint32_t time_limit_ms; /* per task, in every SUBMIT of its chunks (0: none) */
    /* imap */
    cres_t *cres_head, *cres_tail;
    size_t unread; /* finished chunks not fully read */
    /* imap input: a feeder thread calls the generator (it may block: on
       stdin, say) and queues whole chunks for the I/O thread */
    pthread_t feeder;
    bool feeder_running; /* started and not joined yet */
    bool stop_feeding;
    int input_error;              /* the generator's error, reported at the end */
    char *input_message;          /* its text (mp_generator_fail), or NULL */
    imap_in_t *in;                /* its chunks of input not sent yet */
    struct mp_async *feeder_next; /* in pool->feeders while running */
};

/* A piece of a chunk's results (a RESULT message), before the chunk is whole.
   A map's pieces go to its results at once (items NULL): the record only
   says which items of the chunk have answered. */
typedef struct piece {
    size_t base, count;
    mp_items_t *items;
    struct piece *next;
} piece_t;

struct chunk {
    uint64_t id;
    mp_async_t *job;      /* map / imap / single apply */
    mp_async_t **targets; /* coalesced applies: item k belongs to targets[k] */
    size_t count;
    size_t seq;   /* map/imap: chunk number in its job */
    size_t first; /* map/imap: job index of item 0 */
    size_t received;
    uint64_t sent_ns; /* imap: when it was sent (0: never) */
    bool shm_in;      /* its items are in the input ring (poolshm.h) */
    bool cancel_sent; /* mp_async_cancel queued a CANCEL for it */
    /* resending after a lost broker (send.c, mp__pool_resend): a remote
       chunk keeps its items frame (a reference, not a copy) until whole; an
       orphan was sent to a broker that is gone; a child is one gap of its
       parent sent again, whose pieces land in the parent at offset */
    zmq_msg_t frame;
    bool has_frame, orphan;
    struct chunk *parent;
    size_t offset, children;
    mp__pshm_in_t in; /* ... there, given back when the chunk ends */
    piece_t *pieces;
    struct chunk *hnext;
};
typedef struct chunk chunk_t;

/* Jobs that became ready while the mutex was held: their callbacks run
   once it is released (callbacks.c, mp__pool_run_callbacks). */
typedef struct {
    mp_async_t **v;
    size_t n, cap;
} ready_t;

static inline bool mp__chunk_is_map(const chunk_t *c)
{
    return c->job && c->job->kind == JOB_MAP;
}

/* Whether each piece of c goes to its calls as it arrives (coalesced
   applies, an unordered imap) rather than when c is whole: a stuck item
   holds only itself (docs/PARTIAL-RESULTS.md). */
static inline bool mp__chunk_is_early(const chunk_t *c)
{
    return c->targets || (c->job && c->job->kind == JOB_IMAP && c->job->unordered);
}

/* ---- job.c: the mutex held unless said ------------------------------------- */

/* A new job of kind for task name, two references (the caller's and the
   pool's); NULL for a bad name (mutex not needed). */
mp_async_t *mp__pool_job_new(mp_pool_t *pool, int kind, const char *name, uint8_t mode,
                             const mp_call_options_t *o);
void mp__pool_job_unref(mp_async_t *job);
/* A finished chunk (whole): hands its results to its job(s). Takes items
   (NULL: out of memory, each item fails). Appends jobs that became ready to
   ready (to run callbacks unlocked). */
void mp__pool_chunk_done(mp_pool_t *pool, chunk_t *c, mp_items_t *items, ready_t *ready);
/* Items [base, base + items->len) of an early chunk (mp__chunk_is_early),
   as they arrive: each coalesced apply among them is done, an unordered
   imap's reader gets them. Takes items. */
void mp__pool_piece_done(mp_pool_t *pool, chunk_t *c, size_t base, mp_items_t *items,
                         ready_t *ready);
/* An early chunk is whole: its pieces went already (an imap's chunk count
   and its end). */
void mp__pool_chunk_settled(mp_pool_t *pool, chunk_t *c, ready_t *ready);
/* A map chunk whose pieces all went to its results (map_out.c) is whole. */
void mp__pool_map_chunk_done(mp_pool_t *pool, chunk_t *c, ready_t *ready);
/* Fails the chunk-less part of job (unsent input) with code/message; used
   when the broker is lost or the pool terminates. */
void mp__pool_fail_unsent(mp_pool_t *pool, mp_async_t *job, int code, const char *msg,
                          ready_t *ready);

#endif
