/*  broker_impl.h - the broker engine's state, shared by its files. Not
    installed.

    State (all of it owned by the broker thread):

      peer    a client or a worker, by routing id
      chunk   what a client submitted: its items frame (a zmq_msg_t moved
              from the SUBMIT, never copied), task name, mode, init frame,
              and how many of its items are not answered yet
      unit    a dispatchable range [base, base+count) of a chunk with an
              attempt number; queued in its name's FIFO or running on one
              worker under a dispatch id. A chunk starts as one unit; an
              executor death splits one (PROTOCOL.md section 7).

    Invariants: every unit is in exactly one place (a queue or a worker's
    running list); a chunk is freed when its last unit is answered; a result
    is forwarded only for a unit that is running on the worker that sent it
    (so each item is answered once); an orphaned chunk (its client left) is
    still tracked until its running units come back, then dropped.

    The files, bottom up; each calls only the files above it in this list:
    peers.c, metrics.c (counters, their text), dashboard.c (the last
    errors, the status JSON), units.c, http.c (GET /metrics, /api/status,
    /), sched.c, then clients.c and workers.c (the commands), then
    engine.c (the loop and the public calls).
*/
#ifndef MP_BROKER_IMPL_H_INCLUDED
#define MP_BROKER_IMPL_H_INCLUDED

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "base/log.h"
#include "codec/curve.h"
#include "codec/mpp.h"
#include "codec/mpps.h"
#include "codec/wire.h"
#include "mp/broker.h"
#include "mp/version.h"
#include "pool/poolshm.h"

#define WHO "mp-broker"
#define MP_BROKER_VERSION MP_VERSION_STRING

typedef struct peer peer_t;
typedef struct chunk chunk_t;
typedef struct unit unit_t;
typedef struct queue queue_t;

/* ---- the journal's index (jstore.c; PROTOCOL.md 7.3) ---------------------- */

#define BK_MAX_JOB 64              /* octets of a job name */
#define BK_MAX_JOB_CHUNKS 1048576u /* chunks of one job */
#define BK_JOB_BUCKETS 1024

typedef struct bk_jjob bk_jjob_t;
typedef struct {
    uint64_t off; /* a RESULT record: where, how long, which items */
    uint32_t len, base, count;
} bk_jpiece_t;
typedef struct {
    uint32_t seq, count;
    uint32_t answered; /* items, in the pieces */
    uint64_t off;      /* its SUBMIT record */
    uint32_t len;
    bk_jpiece_t *pieces;
    uint32_t npieces, cap;
    chunk_t *live; /* queued or running in the broker now, or NULL */
    bk_jjob_t *job;
} bk_jchunk_t;
struct bk_jjob {
    char name[BK_MAX_JOB + 1];
    char owner[48]; /* the CURVE key that stored it ("" without CURVE) */
    uint32_t total;
    uint32_t answered;    /* chunks answered whole */
    bk_jchunk_t **chunks; /* stored ones, by seq */
    size_t n, cap;
    uint64_t bytes;       /* its records' */
    uint64_t incarnation; /* random: the same name forgotten and used again is another job */
    unsigned bucket;      /* in the index's hash */
    bk_jjob_t *next;
};
typedef struct {
    int fd, lockfd, dirfd;
    char path[4096];
    uint64_t size, live_bytes, max_bytes;
    size_t max_record;
    bool dirty;  /* written since the last fdatasync */
    bool broken; /* a failed write could not be undone: no new durable SUBMIT */
    uint64_t syncs, compactions;
    size_t njobs;
    bk_jjob_t *buckets[BK_JOB_BUCKETS];
} bk_jstore_t;
typedef struct {
    const char *job, *task, *owner;
    uint64_t seq, total;
    uint8_t mode;
    size_t count;
    uint32_t time_limit_ms;
    const void *items, *init; /* init: NULL when none */
    size_t items_size, init_size;
} bk_jsubmit_t;
typedef struct {
    const uint8_t *p;
    size_t len;
} bk_jframe_t;
struct bk_journal; /* journal.c's: STOREDs to send, FETCHes held */

struct chunk {
    peer_t *client; /* NULL once the client left */
    queue_t *queue; /* its task name's queue (and counters): queues live as long as the broker */
    uint64_t chunk_id;
    char name[MPP_MAX_NAME + 1];
    uint8_t mode;
    size_t count;
    size_t pending;  /* items not answered yet */
    zmq_msg_t items; /* empty when shm */
    zmq_msg_t init;
    /* the items are in the embedded pool's input ring (poolshm.h): count
       values at arena offset shm_pos, shm_len bytes */
    bool shm;
    uint64_t shm_pos, shm_len;
    uint32_t time_limit_ms; /* per task, passed on in TASK (0: none) */
    bool has_init;
    bk_jchunk_t *durable; /* a durable job's chunk: no client, answers to the journal */
    chunk_t *next, *prev; /* in the client's chunk list */
};

struct unit {
    chunk_t *chunk;
    size_t base, count;
    /* running: items [base, base + answered) were answered ahead of the
       rest by the worker's PARTIALs; a queued unit has none */
    size_t answered;
    unsigned attempt;
    zmq_msg_t items; /* this range's items frame (shares the chunk's data) */
    uint64_t dispatch_id;
    uint64_t dispatched_ns; /* when it was sent to its worker (metrics.c: latency) */
    peer_t *worker;         /* running on, or NULL when queued */
    char cause[200];        /* why the last attempt was lost (what a loss says fits) */
    /* running, and withdrawn (CANCEL, or its client left): its worker was
       told to kill it (B-WCANCEL); whatever it answers is dropped */
    bool cancelled;
    unit_t *next, *prev;
};

/* What the broker counts per task name (metrics.c), since it started. */
#define BK_LATENCY_BUCKETS 12
typedef struct {
    uint64_t chunks_submitted, items_submitted;
    uint64_t chunks_done;                          /* every item answered, one way or another */
    uint64_t items_done, items_failed, items_lost; /* lost: WORKER_LOST after the retries */
    uint64_t retries;                              /* dispatches re-queued after a loss */
    uint64_t latency[BK_LATENCY_BUCKETS + 1];      /* dispatches by seconds to their RESULT */
    uint64_t latency_count;
    double latency_sum;
} task_stats_t;

/* The most task names the broker keeps a queue (and counters) for: a new
   name past it takes the queue of the name idle longest (no chunk of it
   alive), whose counters go to the series of the empty name (no task's:
   a SUBMIT needs a name); with none idle, its SUBMIT is refused
   (MP_EOVERLOADED). */
#define BK_MAX_QUEUES 4096
#define BK_QUEUES_FULL "too many task names with work in flight (4096)" /* the refusal */

struct queue {
    char name[MPP_MAX_NAME + 1];
    unit_t *head, *tail;
    size_t depth;
    size_t chunks;    /* alive (queued, running or waiting for answers) */
    uint64_t used_ns; /* its last SUBMIT */
    task_stats_t stats;
    queue_t *next;
};

enum { PEER_CLIENT, PEER_WORKER };

struct peer {
    uint8_t id[256];
    size_t idlen;
    bool stream; /* on a plain stream (streams.c), not the ROUTER */
    char hex[16];
    int kind;
    uint64_t last_seen; /* ns */
    uint64_t expiry_ns;
    /* client */
    chunk_t *chunks;
    size_t queued;
    /* worker */
    char **names;
    size_t nnames;
    unsigned processes;
    unsigned credit;
    uint64_t last_used;
    unit_t *running;
    size_t nrunning;
    uint64_t done, failed;
    char host[128];
    unsigned pid;
    uint64_t serial;
    uint64_t shm_id; /* READY: the pool rings it shares with us, 0: none */
    bool draining;   /* C-DRAIN: no new dispatches; told to stop once it holds none */
    char source[64]; /* its CURVE key, or IP address, or "local": peers are bounded per source */
    size_t index;    /* in b->peers */
};

/* A peer on a plain stream (streams.c): one of the embedded pool's socket
   pairs (its worker's, its blocking applies'), or a connection accepted on
   an mpp+ endpoint. */
typedef struct {
    int fd;               /* -1: a free slot */
    uint32_t gen;         /* its routing id's generation: a closed one's names nobody */
    const char *pair;     /* a socket pair's name ("pair", "sync pair"), or NULL */
    uint64_t peerless_ns; /* since when no peer has its id (0: one has) */
    char source[64];      /* its IP address, or "local" */
    mpps_buf_t in, out;
} bk_conn_t;

/* A stream connection that was closed, for the loop to tell of (streams.c:
   bk_streams_reap). */
#define BK_STREAM_IDLEN 9 /* a stream peer's routing id: 0x00 | slot | generation */
typedef struct {
    uint8_t id[BK_STREAM_IDLEN];
    const char *why;
} bk_ended_t;

struct mp_broker {
    /* Stream peers (streams.c): their slots, the mpp+ listeners, and the
       broker loop's poll items (the fixed ones, then these) */
    bk_conn_t *conns;
    size_t conncap, nconns;
    bk_ended_t *ended; /* connections closed since the loop last reaped them */
    size_t nended, endedcap;
    int *listeners;
    size_t nlisteners;
    zmq_pollitem_t *pitems;
    int *pslots; /* per poll item: its connection's slot, -1 a listener */
    size_t pcap;
    uint64_t accept_rest_until; /* out of descriptors: the listeners rest until then */
    void *ctx;
    bool own_ctx;
    void *router;
    void *ctl_main, *ctl_thread;
    pthread_t thread;
    bool started;
    char **endpoints;
    size_t nendpoints;
    int heartbeat_ms;
    unsigned max_attempts;
    size_t max_message;
    size_t max_queued;
    size_t max_per_source;      /* peers from one source (PROTOCOL.md 10) */
    mp__ratelimit_t crowded_rl; /* warnings about refused peers over that bound */
    mp__pshm_t *shm;            /* embedded: the pool's rings, or NULL */
    /* CURVE (PROTOCOL.md 10): the ZAP handler admits the keys of either
       list; the broker thread tells a worker's key from a client's */
    uint64_t returned;            /* dispatches handed back by busy workers (W-RETURN) */
    mp__ratelimit_t malformed_rl; /* malformed-message warnings: a burst per 10 s */
    mp__curve_t curve;
    bool auth;                                     /* holds the process's ZAP handler */
    struct _zcertstore_t *workers_ok, *clients_ok; /* allow_dir/workers, /clients */
    struct _zcertstore_t *operators_ok;            /* allow_dir/operators: who may DRAIN */
    /* thread state */
    peer_t **peers;
    size_t npeers, peercap;
    peer_t **slots; /* the hash table of peers by routing id (peers.c) */
    size_t slotcap;
    size_t nworkers, ndraining; /* workers; of those, draining */
    queue_t *queues;
    size_t nqueues;
    queue_t retired; /* named "": the counters of names whose queue went to another */
    uint64_t next_dispatch;
    uint64_t use_counter;
    uint64_t peer_serial;
    uint64_t started_ns;
    uint64_t done, failed, lost, malformed;
    uint64_t refused; /* peers refused: a key the allow-list of their role lacks, or
                         one source over max_per_source */
    uint64_t bytes_in, bytes_out, workers_lost, retries, clients_seen, workers_seen;
    void *http_thread_sock;   /* the HTTP server's requests (http.c), or NULL */
    struct bk_recent *recent; /* the last errors, for the dashboard (dashboard.c) */
    bool draining;            /* stopping gracefully: nothing new is dispatched */
    bool dropping;            /* units freed now are dropped (their client left), not done */
    size_t running_now;       /* dispatches running, for mp_broker_running (atomic) */
    struct bk_http *http;
    bk_jstore_t *jstore;        /* --journal DIR, or NULL (jstore.c) */
    struct bk_journal *journal; /* what journal.c waits to send */
};

/* ---- peers.c: peers and sending ------------------------------------------ */

/* ---- streams.c: peers on plain streams (PROTOCOL.md 9.2, 9.3) --------- */

typedef void (*bk_route_fn)(mp_broker_t *b, mpp_msg_t *m);
typedef bool (*bk_has_peer_fn)(mp_broker_t *b, const void *id, size_t idlen);
/* A stream connection was closed (its peer closed it, it broke, it was not
   MPP/1 framing, or a send to it failed): the peer that spoke on it, if
   any, is gone now. */
typedef void (*bk_gone_fn)(mp_broker_t *b, const void *id, size_t idlen, const char *why);

/* Whether a routing id is a stream peer's. */
bool bk_stream_is(const void *id, size_t idlen);
/* Its source (IP address or "local"), or NULL: not an open connection. */
const char *bk_stream_source(mp_broker_t *b, const void *id, size_t idlen);
/* A stream peer's name in logs and STATUS: a socket pair's ("pair", "sync
   pair"), or s<slot>.<generation>. */
void bk_stream_name(mp_broker_t *b, const void *id, size_t idlen, char *out, size_t size);
/* A connection to serve (the broker owns fd from here): pair names one of
   the embedded pool's socket pairs (unbounded, never swept), NULL an
   accepted connection. 0, MP_EBUSY (the table is full), MP_ENOMEM. */
int bk_stream_add(mp_broker_t *b, int fd, const char *pair, const char *source);
/* Listens on an mpp+tcp:// or mpp+ipc:// endpoint; bound: what it is. */
int bk_stream_listen(mp_broker_t *b, const char *endpoint, char *bound, size_t boundlen);
/* A message to the stream peer id: queued, and written at once as far as
   the socket takes it. EHOSTUNREACH when that connection is closed (or
   is now, having failed), as a ROUTER says of a gone peer. */
int bk_stream_send(mp_broker_t *b, const void *id, size_t idlen, const char *sig, uint8_t cmd,
                   const void *hdr, size_t hsize, zmq_msg_t *payload, int npayload);
/* The loop's poll items: b->pitems with room for fixed items first, then
   the listeners and connections; *n_p all of them. NULL: out of memory. */
zmq_pollitem_t *bk_streams_items(mp_broker_t *b, int fixed, int *n_p);
/* Accepts, reads (each whole message to route), and writes, for the items
   from..n that bk_streams_items made and poll found ready. A connection
   that ended is closed (bk_streams_reap tells of it). */
void bk_streams_ready(mp_broker_t *b, const zmq_pollitem_t *items, int from, int n,
                      bk_route_fn route);
/* Tells gone of every connection closed since the last call, whatever
   closed it (its peer, a failed send, a bound): at the top of the loop,
   where no caller holds a peer. */
void bk_streams_reap(mp_broker_t *b, bk_gone_fn gone);
/* Closes the connections no peer has had for BK_STREAM_HELLO_MS (none
   said HELLO or READY, or the peer is gone). */
void bk_streams_sweep(mp_broker_t *b, uint64_t now, bk_has_peer_fn has_peer);
/* While the listeners rest (out of descriptors): ms until they listen
   again, else -1. */
long bk_streams_paused_ms(mp_broker_t *b, uint64_t now);
void bk_streams_free(mp_broker_t *b);
peer_t *bk_peer_find(mp_broker_t *b, const void *id, size_t idlen);
/* A new peer, whose first message is m. NULL when out of memory, the id
   is too long, or its source has max_per_source peers already (it is told
   with a DISCONNECT "refused: ..."). */
peer_t *bk_peer_add(mp_broker_t *b, mpp_msg_t *m, const void *id, size_t idlen, int kind);
void bk_peer_remove(mp_broker_t *b, peer_t *p);
/* Executors of all workers. */
size_t bk_total_processes(mp_broker_t *b);
size_t bk_worker_count(mp_broker_t *b);
bool bk_serves(const peer_t *w, const char *name);
bool bk_anyone_serves(mp_broker_t *b, const char *name);
/* Sends to a peer; EHOSTUNREACH means it is gone (ROUTER_MANDATORY). */
int bk_send_to(mp_broker_t *b, peer_t *p, uint8_t cmd, mp__buf_t *hdr, zmq_msg_t *payload,
               int npayload);
/* DISCONNECT [why] to a routing id the broker does not know as a peer. */
void bk_disconnect_id(mp_broker_t *b, const void *id, size_t idlen, const char *sig, uint8_t cmd,
                      const char *why);
void bk_send_failed(mp_broker_t *b, peer_t *c, uint64_t chunk_id, int code, const char *msg);
/* The message of an MP_EUNKNOWNTASK for name: the served names closest
   to it first, five at most. */
void bk_unknown_task(mp_broker_t *b, const char *name, char *msg, size_t size);
/* With CURVE: true when the key of message m (its User-Id) is in the
   allow-list of role (PEER_CLIENT or PEER_WORKER); else refuses the peer
   (DISCONNECT, logged, counted) and returns false. True without CURVE. */
bool bk_admitted(mp_broker_t *b, mpp_msg_t *m, const void *id, size_t idlen, int role);
/* With CURVE: true when the key of message m is an operator's (in
   allow_dir/operators/; a client's key too, to be admitted at all); else
   logs and counts the refusal. True without CURVE: whoever reaches the
   broker may use it whole. */
bool bk_operator(mp_broker_t *b, mpp_msg_t *m, const peer_t *c, const char *what);
/* Counts and logs a malformed message (p, or hex when no peer). */
void bk_malformed(mp_broker_t *b, peer_t *p, const char *hex, uint8_t cmd, const char *why);

/* ---- jstore.c: the journal's file and index (docs/JOURNAL.md) ---------------- */

/* Opens (makes) dir, locks it (MP_EBUSY: another broker has it), replays
   its journal into the index; the file is cut at a damaged record. */
int bk_jstore_open(const char *dir, uint64_t max_bytes, size_t max_message, bk_jstore_t **js_p);
void bk_jstore_close(bk_jstore_t **js_p);
bk_jjob_t *bk_jstore_job(bk_jstore_t *js, const char *name, size_t len);
bk_jchunk_t *bk_jstore_chunk(const bk_jjob_t *j, uint64_t seq);
/* Appends a durable chunk's SUBMIT (making its job); the chunk must be
   new. MP_EOVERLOADED past max_bytes, -errno from the disk. */
int bk_jstore_submit(bk_jstore_t *js, const bk_jsubmit_t *s, bk_jchunk_t **c_p);
/* Appends answers for items [base, base+count) of c. */
int bk_jstore_result(bk_jstore_t *js, bk_jchunk_t *c, size_t base, size_t count, size_t nerrors,
                     const void *values, size_t vsize, const void *errors, size_t esize);
/* Appends a FORGET and drops j from the index (its chunks must not be
   live); the file is emptied or rewritten when that pays. */
void bk_jstore_forget(bk_jstore_t *js, bk_jjob_t *j);
/* A record's three frames, read into *buf_p (the caller frees it). */
int bk_jstore_read(bk_jstore_t *js, uint64_t off, uint32_t len, uint8_t **buf_p, bk_jframe_t f[3]);
/* fdatasync when something was written since the last. */
int bk_jstore_sync(bk_jstore_t *js);

/* ---- units.c: chunks, units, queues ---------------------------------------- */

/* Answers the items of u with one error each (kind, code, message). */
void bk_answer_with_errors(mp_broker_t *b, unit_t *u, int kind, int code, const char *msg);
/* Answers of items [base, base+count) of a durable chunk, to the journal. */
void bk_journal_answer(mp_broker_t *b, chunk_t *ch, size_t base, size_t count, size_t nerrors,
                       const void *values, size_t vsize, const void *errors, size_t esize);
/* Frees u, and its chunk when no item of it is pending any more. */
void bk_unit_free(mp_broker_t *b, unit_t *u);
/* The queue of a task name; made when create (NULL: out of memory, or
   BK_MAX_QUEUES names all have chunks alive). */
queue_t *bk_queue_get(mp_broker_t *b, const char *name, bool create);

/* Whether a chunk of name would get a queue now (bk_queue_get, create):
   the name has one, or there is room for one. */
bool bk_queue_room(mp_broker_t *b, const char *name);
/* ch is q's: counted there (items submitted), and q is in use. */
void bk_chunk_attach(chunk_t *ch, queue_t *q, size_t items);
void bk_queue_push(queue_t *q, unit_t *u, bool front);
void bk_queue_unlink(queue_t *q, unit_t *u);
void bk_running_unlink(peer_t *w, unit_t *u);
/* Values [from, to) of the values back to back at r (r moves past them):
   where they start and how many bytes they take. MP_EBADMSG when r does
   not hold that many. */
int bk_values_span(mp__rd_t *r, size_t from, size_t to, const uint8_t **start, size_t *bytes);
/* An items frame of count values: their array header, then bytes at p. */
int bk_items_frame(zmq_msg_t *dst, size_t count, const void *p, size_t bytes);
/* Items of u not answered yet. */
static inline size_t bk_unit_left(const unit_t *u)
{
    return u->count - u->answered;
}
/* Drops the answered prefix of u before it is queued again: its range
   becomes the items not answered yet. 0 or MP_ENOMEM. */
int bk_unit_trim(unit_t *u);
/* A new unit for items [base, base+count) of u's chunk (u holds them). */
unit_t *bk_unit_slice(unit_t *u, size_t base, size_t count, unsigned attempt);

/* ---- sched.c: dispatch and departures -------------------------------------- */

/* Puts u back in its queue after its worker lost it (whole unit), counting
   an attempt; past max_attempts the items end as WORKER_LOST. */
void bk_requeue_or_lose(mp_broker_t *b, unit_t *u, bool count_attempt, const char *cause);
/* Hands queued units to workers with credit, as long as there are both. */
void bk_dispatch(mp_broker_t *b);
/* Tells every client the executor count now (embedded pools wait for it). */
void bk_announce_processes(mp_broker_t *b);
void bk_worker_lost(mp_broker_t *b, peer_t *w, const char *cause, bool count_attempts);
void bk_client_gone(mp_broker_t *b, peer_t *c, const char *why);
/* Tells the draining workers that hold nothing any more to stop, and
   forgets them. */
void bk_drain_idle(mp_broker_t *b);
/* Withdraws the running units of chunk ch (every chunk of client c when ch
   is NULL): each worker is told to kill its dispatch (B-WCANCEL); with
   answer, the client gets the items as CANCELLED at once. Returns how many. */
size_t bk_cancel_running(mp_broker_t *b, peer_t *c, chunk_t *ch, bool answer);

/* ---- metrics.c: counters and their text -------------------------------------- */

/* Items of q's task waiting for a worker, and running on workers now. */
uint64_t bk_task_queued(const queue_t *q);
uint64_t bk_task_running(const mp_broker_t *b, const queue_t *q);
/* A dispatch of q's task answered after ns. */
void bk_observe_latency(queue_t *q, uint64_t ns);
/* The OpenMetrics text (openmetrics: with "# EOF"; else Prometheus 0.0.4)
   of everything the broker counts, into out. 0 or MP_ENOMEM. */
int bk_metrics_render(mp_broker_t *b, bool openmetrics, mp__buf_t *out);

/* ---- dashboard.c: the last errors, and the JSON the dashboard polls ---------- */

/* Records the errors frame of a RESULT or PARTIAL (errors [index code kind
   message host pid]..., indexes relative to base) of a chunk of task:
   the first few, for the dashboard. Cheap when nobody asked for HTTP. */
void bk_recent_errors(mp_broker_t *b, const char *task, size_t base, const void *frame,
                      size_t size);
/* Records one error the broker made itself (lost, cancelled, ...). */
void bk_recent_error(mp_broker_t *b, const char *task, size_t index, int code, int kind,
                     const char *msg, const char *host, unsigned pid);
/* GET /api/status: the JSON the dashboard draws (docs/CLUSTER.md 7). */
int bk_status_json(mp_broker_t *b, mp__buf_t *out);
/* The errors ring: made when the broker serves HTTP, freed with it. */
int bk_recent_init(mp_broker_t *b);
void bk_recent_free(mp_broker_t *b);

/* ---- http.c: GET /metrics (libmicrohttpd's thread asks the broker's) --------- */

/* Listens on o->http ("HOST:PORT"), with TLS and a token when o gives
   them; off loopback only with both, or insecure. 0, MP_EINVAL,
   MP_EHOSTUNKNOWN, MP_EINSECURE, MP_ENOENT (a file), -errno (logged). */
int bk_http_start(mp_broker_t *b, const mp_broker_options_t *o);
/* On the broker thread: answers the HTTP thread's questions. */
void bk_http_answer(mp_broker_t *b);
/* Stops listening (before the broker thread stops), then frees (after). */
void bk_http_stop(mp_broker_t *b);
void bk_http_free(mp_broker_t *b);
/* "HOST:PORT" actually bound, or NULL; whether it speaks HTTPS. */
const char *bk_http_addr(const mp_broker_t *b);
bool bk_http_tls(const mp_broker_t *b);

/* ---- journal.c: durable jobs (PROTOCOL.md 7.3) ---------------------------------- */

/* Opens the journal at dir and queues again what it holds unanswered. */
int bk_journal_open(mp_broker_t *b, const char *dir, uint64_t max_bytes);
void bk_journal_close(mp_broker_t *b);
/* A durable SUBMIT, checked as any SUBMIT: stored (m's items and init
   frames taken), queued, STORED after the next sync; or FAILED. */
void bk_journal_submit(mp_broker_t *b, peer_t *c, const bk_jsubmit_t *s, uint64_t chunk_id,
                       mpp_msg_t *m);
void bk_journal_fetch(mp_broker_t *b, peer_t *c, mp__rd_t *r, mpp_msg_t *m);
void bk_journal_forget(mp_broker_t *b, peer_t *c, mp__rd_t *r, mpp_msg_t *m);
/* Once per loop pass: one fdatasync for what was written, then the
   STOREDs and the held FETCHes that are due. */
void bk_journal_flush(mp_broker_t *b);
/* When the earliest held FETCH is due (UINT64_MAX: none). */
uint64_t bk_journal_next_deadline(const mp_broker_t *b);

/* ---- clients.c and workers.c: the commands ---------------------------------- */

void bk_on_client(mp_broker_t *b, mpp_msg_t *m, const void *id, size_t idlen, uint8_t cmd,
                  mp__rd_t *r);
void bk_on_worker(mp_broker_t *b, mpp_msg_t *m, const void *id, size_t idlen, uint8_t cmd,
                  mp__rd_t *r);

#endif
