/*  pool.c - the pool: lifecycle, the embedded broker and worker, and the I/O
    thread that speaks MPP/1 for every call.

    Embedded start-up, in this order (ARCHITECTURE.md section 7):
      1. fork the worker process (mp_worker_run on an ipc:// endpoint) while
         this pool has no ZeroMQ context or thread yet;
      2. make the context, start the broker thread bound to ipc:// (the
         worker) and inproc:// (this pool's DEALER, no syscalls per message);
      3. start the I/O thread, HELLO, and wait until the broker reports the
         worker's executors.

    The I/O thread owns the DEALER socket. Callers put jobs on the send
    queue and poke an eventfd; the I/O thread cuts chunks while fewer than
    `window` are in flight: the next chunk of a map, up to 512 consecutive
    applies of one task in one chunk (under load applies travel together),
    or the chunks an imap's feeder queued, as one chunk (up to a batch:
    imap_batch), while that imap has fewer than `window` chunks in flight
    or unread. Alone when only one is ready; under a backlog together, so
    chunksize 1 costs a message per batch, not per item.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "mp/broker.h"
#include "mp/error.h"
#include "mp/worker.h"
#include "broker_shm.h"
#include "codec/mpp.h"
#include "pool_impl.h"
#include "worker_shm.h"

#define WHO "mp-pool"
#define MAX_COALESCE 512 /* applies, or imap items, in one chunk */
/* imap: queued chunks travel together up to this many bytes of input (the
   broker's message limit is 64 MiB) */
#define MAX_COALESCE_BYTES (1u << 20)
/* imap: a coalesced chunk holds at most about this much of the job's work,
   at the rate its results come back */
#define BATCH_BUDGET_NS 5000000u
/* the embedded pool's rings (poolshm.h): sparse, a page costs memory once
   a chunk has used it */
#define POOL_SHM_IN (64u << 20)
#define POOL_SHM_OUT (32u << 20)

/* ---- chunk table -------------------------------------------------------------- */

static chunk_t **bucket(mp_pool_t *pool, uint64_t id)
{
    return &pool->buckets[id % POOL_BUCKETS];
}

static chunk_t *chunk_take(mp_pool_t *pool, uint64_t id, bool remove)
{
    for (chunk_t **pp = bucket(pool, id); *pp; pp = &(*pp)->hnext)
        if ((*pp)->id == id) {
            chunk_t *c = *pp;
            if (remove)
                *pp = c->hnext;
            return c;
        }
    return NULL;
}

static void chunk_free(chunk_t *c)
{
    while (c->pieces) {
        piece_t *p = c->pieces;
        c->pieces = p->next;
        mp_items_destroy(&p->items);
        free(p);
    }
    free(c->targets);
    free(c);
}

typedef struct {
    mp_async_t **v;
    size_t n, cap;
} ready_t;

static bool is_map(const chunk_t *c)
{
    return c->job && c->job->kind == JOB_MAP;
}

/* A chunk is whole: assemble its pieces in order and hand it over (a map's
   pieces are in its results already). */
static void chunk_finish(mp_pool_t *pool, chunk_t *c, ready_t *ready)
{
    chunk_take(pool, c->id, true);
    pool->inflight--;
    if (c->shm_in) /* no executor reads it for this chunk any more */
        mp__pshm_in_free(pool->shm, &c->in);
    if (pool->shm && pool->inflight == 0)
        mp__pshm_out_idle(pool->shm);
    if (is_map(c)) {
        mp__pool_map_chunk_done(pool, c, &ready->v, &ready->n, &ready->cap);
        chunk_free(c);
        return;
    }
    mp_items_t *all = NULL;
    if (c->pieces && !c->pieces->next && c->pieces->base == 0) {
        all = c->pieces->items;
        c->pieces->items = NULL;
    } else {
        all = mp_items_new();
        for (size_t at = 0; all && at < c->count;) {
            piece_t *p = c->pieces;
            while (p && p->base != at)
                p = p->next;
            const char *data;
            size_t size;
            if (!p) {
                mp_items_destroy(&all);
                break;
            }
            mp__items_span(p->items, 0, p->items->len, &data, &size);
            if (mp__items_append_packed(all, data, size, p->items->len) ||
                mp__items_take_errors(all, p->items, at))
                mp_items_destroy(&all);
            at += p->items->len;
        }
    }
    mp__pool_chunk_done(pool, c, all, &ready->v, &ready->n, &ready->cap);
    chunk_free(c);
}

/* Ends a chunk with one error for every item not answered yet. */
static void chunk_fail(mp_pool_t *pool, chunk_t *c, int code, const char *msg, ready_t *ready)
{
    size_t at = 0;
    while (at < c->count) { /* fill every gap between pieces */
        piece_t *p = c->pieces;
        size_t next = c->count;
        bool covered = false;
        for (; p; p = p->next) {
            if (p->base == at)
                covered = true;
            if (p->base > at && p->base < next)
                next = p->base;
        }
        if (covered) {
            for (p = c->pieces; p && p->base != at; p = p->next) {
            }
            at += p->count;
            continue;
        }
        piece_t *f = calloc(1, sizeof *f);
        const char *task = c->job ? c->job->name : c->targets[0]->name;
        if (f)
            f->items = mp__pool_failed_items(task, next - at, 0, code, msg);
        if (!f || !f->items) {
            free(f);
            break;
        }
        f->base = at;
        f->count = next - at;
        if (is_map(c)) { /* to the results now: the record only marks them answered */
            mp__pool_map_result_items(c->job, c->first + at, f->items);
            f->items = NULL;
        }
        f->next = c->pieces;
        c->pieces = f;
        at = next;
    }
    chunk_finish(pool, c, ready);
}

/* ---- sending -------------------------------------------------------------------- */

static int send_simple(mp_pool_t *pool, uint8_t cmd, mp__buf_t *h)
{
    return mpp_send(pool->sock, NULL, 0, MPP_SIG_CLIENT, cmd, h->data, h->size, NULL, 0,
                    ZMQ_DONTWAIT);
}

/* HELLO on sock: the pool's DEALER, or the session of blocking applies. */
int mp__pool_send_hello_on(mp_pool_t *pool, void *sock)
{
    char hs[128], name[96];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    snprintf(name, sizeof name, "pool pid %d%s", (int)getpid(),
             sock == pool->sock ? "" : " (blocking applies)");
    mp__w_array(&h, 3);
    mp__w_str(&h, name);
    mp__w_uint(&h, (uint64_t)pool->heartbeat_ms);
    mp__w_uint(&h, (uint64_t)pool->window);
    return mpp_send(sock, NULL, 0, MPP_SIG_CLIENT, MPP_C_HELLO, h.data, h.size, NULL, 0,
                    ZMQ_DONTWAIT);
}

static void send_hello(mp_pool_t *pool)
{
    mp__pool_send_hello_on(pool, pool->sock);
}

/* Sends one chunk whose items frame (an msgpack array of c->count items) is
   ready, or is empty when they are in the input ring (c->shm_in); the frame
   is consumed. Mutex held. */
static int send_frame(mp_pool_t *pool, chunk_t *c, const char *name, uint8_t mode, zmq_msg_t *items)
{
    char hs[MPP_MAX_NAME + 96];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, c->shm_in ? 5 : 4);
    mp__w_uint(&h, c->id);
    mp__w_str(&h, name);
    mp__w_uint(&h, mode);
    mp__w_uint(&h, c->count);
    if (c->shm_in) {
        mp__w_array(&h, 2);
        mp__w_uint(&h, c->in.pos);
        mp__w_uint(&h, c->in.len);
    }
    zmq_msg_t frames[2];
    zmq_msg_init(&frames[0]);
    zmq_msg_move(&frames[0], items);
    int n = 1;
    if (pool->has_init) {
        zmq_msg_init(&frames[1]);
        zmq_msg_copy(&frames[1], &pool->init);
        n = 2;
    }
    int rc = mpp_send(pool->sock, NULL, 0, MPP_SIG_CLIENT, MPP_C_SUBMIT, h.data, h.size, frames, n,
                      ZMQ_DONTWAIT);
    mp__buf_release(&h);
    if (rc == 0) {
        chunk_t **bp = bucket(pool, c->id);
        c->hnext = *bp;
        *bp = c;
        pool->inflight++;
    }
    return rc;
}

/* Starts an items frame of count items with room for bytes of them; *at is
   where they go. */
static int frame_init(zmq_msg_t *frame, size_t count, size_t bytes, char **at)
{
    char ah[8];
    mp__buf_t arr;
    mp__buf_init(&arr, ah, sizeof ah);
    mp__w_array(&arr, count);
    if (zmq_msg_init_size(frame, arr.size + bytes))
        return MP_ENOMEM;
    memcpy(zmq_msg_data(frame), arr.data, arr.size);
    *at = (char *)zmq_msg_data(frame) + arr.size;
    return 0;
}

/* The chunk frames of a large map: one mapping (huge pages: items.c, large
   buffers) cut chunk by chunk, instead of a fresh malloc per frame. glibc
   returns blocks that large to the kernel once freed, so each frame was
   faulted in page by page, on the I/O thread: the critical path of a map.
   Each frame holds a reference (ZeroMQ drops it when it is done with the
   frame: the broker keeps a chunk's input until the chunk is done, for
   retries), and so does the job until its last chunk is sent. */
typedef struct sendbuf {
    int refs; /* atomic */
    char *base;
    size_t len, used;
} sendbuf_t;

#define SENDBUF_MIN (1u << 20) /* smaller maps: a malloc'd frame per chunk */

void mp__pool_sendbuf_unref(void *data, void *hint)
{
    (void)data;
    sendbuf_t *b = hint;
    if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        mp__big_free(b->base, b->len);
        free(b);
    }
}

/* A map's frames buffer: every input byte plus an array header per chunk.
   NULL (frames malloc'd one by one) for a small map or without memory. */
static sendbuf_t *sendbuf_of(mp_async_t *job)
{
    if (job->kind != JOB_MAP || !job->out)
        return NULL;
    if (job->out->send || job->next_item > 0)
        return job->out->send; /* made before its first chunk, or never */
    const char *data;
    size_t size;
    mp__items_span(job->input, 0, job->total, &data, &size);
    if (size < SENDBUF_MIN)
        return NULL;
    size_t chunks = (job->total + job->chunksize - 1) / job->chunksize;
    sendbuf_t *b = calloc(1, sizeof *b);
    if (b) {
        b->base = mp__big_alloc(size + chunks * 8, &b->len);
        b->refs = 1; /* the job's */
    }
    if (!b || !b->base) {
        free(b);
        return NULL;
    }
    job->out->send = b;
    return b;
}

/* Starts an items frame of count items in b, as frame_init does. */
static int frame_in(sendbuf_t *b, zmq_msg_t *frame, size_t count, size_t bytes, char **at)
{
    char ah[8];
    mp__buf_t arr;
    mp__buf_init(&arr, ah, sizeof ah);
    mp__w_array(&arr, count);
    if (b->len - b->used < arr.size + bytes)
        return MP_ENOMEM; /* cannot be: sized for every chunk */
    char *p = b->base + b->used;
    memcpy(p, arr.data, arr.size);
    __atomic_add_fetch(&b->refs, 1, __ATOMIC_ACQ_REL);
    if (zmq_msg_init_data(frame, p, arr.size + bytes, mp__pool_sendbuf_unref, b)) {
        __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL); /* the job's is still held */
        return MP_ENOMEM;
    }
    b->used += arr.size + bytes;
    *at = p + arr.size;
    return 0;
}

/* The job's last chunk has been cut: its frames hold the buffer now. */
static void sendbuf_release(mp_async_t *job)
{
    if (job->kind == JOB_MAP && job->out && job->out->send) {
        mp__pool_sendbuf_unref(NULL, job->out->send);
        job->out->send = NULL;
    }
}

/* A map chunk's items (size bytes at data) into the input ring, when it
   has room. */
static bool ring_items(mp_pool_t *pool, chunk_t *c, const char *data, size_t size)
{
    char *items;
    if (!pool->shm || !is_map(c) || !mp__pshm_in_alloc(pool->shm, size, &c->in, &items))
        return false;
    memcpy(items, data, size);
    c->shm_in = true;
    return true;
}

/* Sends one chunk: items [a, b) of src in job's mode. Mutex held. */
static int send_chunk(mp_pool_t *pool, chunk_t *c, const char *name, uint8_t mode,
                      const mp_items_t *src, size_t a, size_t b)
{
    const char *data;
    size_t size;
    mp__items_span(src, a, b, &data, &size);
    zmq_msg_t frame;
    if (ring_items(pool, c, data, size)) {
        zmq_msg_init(&frame);
        int rc = send_frame(pool, c, name, mode, &frame);
        if (rc) {
            mp__pshm_in_free(pool->shm, &c->in);
            c->shm_in = false;
        }
        return rc;
    }
    char *at;
    sendbuf_t *sb = c->job ? sendbuf_of(c->job) : NULL;
    if (sb ? frame_in(sb, &frame, b - a, size, &at) : frame_init(&frame, b - a, size, &at))
        return MP_ENOMEM;
    memcpy(at, data, size);
    return send_frame(pool, c, name, mode, &frame);
}

static void send_queue_remove(mp_pool_t *pool, mp_async_t *job)
{
    mp_async_t **pp = &pool->send_head;
    mp_async_t *prev = NULL;
    while (*pp && *pp != job) {
        prev = *pp;
        pp = &(*pp)->send_next;
    }
    if (!*pp)
        return;
    *pp = job->send_next;
    if (pool->send_tail == job)
        pool->send_tail = prev;
    job->send_next = NULL;
    job->in_send_queue = false;
}

/* Coalesces the applies at the head of the queue that share its task. */
static void pump_applies(mp_pool_t *pool, ready_t *ready)
{
    mp_async_t *first = pool->send_head;
    size_t n = 0;
    for (mp_async_t *j = first;
         j && j->kind == JOB_APPLY && n < MAX_COALESCE && strcmp(j->name, first->name) == 0;
         j = j->send_next)
        n++;
    chunk_t *c = calloc(1, sizeof *c);
    mp_items_t *batch = n > 1 ? mp_items_new() : NULL;
    mp_async_t **targets = calloc(n, sizeof *targets);
    if (!c || !targets || (n > 1 && !batch)) {
        free(c);
        free(targets);
        mp_items_destroy(&batch);
        send_queue_remove(pool, first);
        mp__pool_fail_unsent(pool, first, MP_ENOMEM, "out of memory", &ready->v, &ready->n,
                             &ready->cap);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        mp_async_t *j = pool->send_head;
        send_queue_remove(pool, j);
        targets[k] = j;
        j->outstanding++;
        j->next_item = 1;
        if (batch) {
            const void *p;
            size_t size;
            mp_items_packed(j->input, 0, &p, &size);
            mp_items_add_packed(batch, p, size);
        }
    }
    c->id = ++pool->next_chunk_id;
    c->count = n;
    c->targets = targets;
    int rc = send_chunk(pool, c, first->name, MPP_MODE_STAR, batch ? batch : first->input, 0, n);
    mp_items_destroy(&batch);
    if (rc) {
        mp__pool_chunk_done(
            pool, c,
            mp__pool_failed_items(first->name, n, 0, MP_EBROKERLOST, "cannot send to the broker"),
            &ready->v, &ready->n, &ready->cap);
        chunk_free(c);
    }
}

/* ---- imap feeders ---------------------------------------------------------------- */

/* How many queued chunks of an imap may travel as one chunk on the wire: at
   most MAX_COALESCE items (one chunk when chunks are bigger), and at most
   what the job finishes in BATCH_BUDGET_NS at the rate its results come
   back. So fast items travel by the hundred while slow ones still go one by
   one to whichever executor is free (load-balancing as with chunksize 1).
   Before the first result: one chunk. */
static size_t imap_batch(const mp_async_t *job)
{
    size_t most = job->chunksize < MAX_COALESCE ? MAX_COALESCE / job->chunksize : 1;
    if (!job->in->item_ns)
        return 1;
    uint64_t n = BATCH_BUDGET_NS / job->in->item_ns / job->chunksize;
    return n < 1 ? 1 : n > most ? most : (size_t)n;
}

/* The window bounds the chunks of an imap in flight or unread; queued input
   may fill one batch per free slot, plus one batch that fills while the
   window is full (it leaves as soon as a slot frees: without it a full
   window would let only single chunks through, one per freed slot). So an
   imap holds at most window + 1 batches, whatever its length. */
static bool feeder_may_pull(void *arg)
{
    mp_async_t *job = arg;
    if (job->stop_feeding || job->input_done)
        return true;
    size_t busy = job->outstanding + job->unread, window = (size_t)job->pool->window;
    size_t room = busy < window ? window - busy : 0;
    return job->in->count < imap_batch(job) * (room + 1) &&
           job->in->bytes < (size_t)MAX_COALESCE_BYTES * (room + 1);
}

/* Calls the generator (unlocked: it may block) and queues whole chunks. */
static void *feeder_thread(void *arg)
{
    mp_async_t *job = arg;
    mp_pool_t *pool = job->pool;
    pthread_mutex_lock(&pool->mutex);
    while (!job->stop_feeding && !job->input_done) {
        while (!feeder_may_pull(job))
            pthread_cond_wait(&pool->cond, &pool->mutex);
        if (job->stop_feeding || job->input_done)
            break;
        pthread_mutex_unlock(&pool->mutex);
        mp_items_t *items = mp_items_new();
        int rc = items ? 0 : MP_ENOMEM;
        while (!rc && items->len < job->chunksize) {
            rc = job->gen(job->gen_arg, items);
            if (rc == 0 && items->tuple_left)
                rc = MP_ESTATE; /* a tuple left open: a programmer error */
        }
        cres_t *r = items && items->len ? calloc(1, sizeof *r) : NULL;
        pthread_mutex_lock(&pool->mutex);
        /* the I/O thread sends everything queued whenever the window has
           room, so a non-empty queue means it was woken already or cannot
           send now (a result or the reader wakes it): wake it on the first */
        bool wake = rc || !job->in->head;
        if (r && job->input_done) { /* ended meanwhile (the broker is lost): drop it */
            free(r);
            r = NULL;
        }
        if (r) {
            r->items = items;
            items = NULL;
            if (job->in->tail)
                job->in->tail->next = r;
            else
                job->in->head = r;
            job->in->tail = r;
            job->in->count++;
            job->in->bytes += r->items->buf.size;
        }
        mp_items_destroy(&items);
        if (rc) {
            job->input_done = true;
            if (rc != MP_EEOF) {
                job->input_error = rc;
                mp__log(MP_LOG_WARN, WHO, "imap %s: the generator failed: %s", job->name,
                        mp_strerror(rc));
            }
        }
        if (wake)
            mp__pool_wake(pool);
    }
    mp__pool_wake(pool);
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

int mp__pool_start_feeder(mp_pool_t *pool, mp_async_t *job)
{
    pthread_mutex_lock(&pool->mutex);
    int rc = pthread_create(&job->feeder, NULL, feeder_thread, job) ? MP_ENOMEM : 0;
    if (rc == 0) {
        job->feeder_running = true;
        job->feeder_next = pool->feeders;
        pool->feeders = job;
    }
    pthread_mutex_unlock(&pool->mutex);
    return rc;
}

void mp__pool_stop_feeder(mp_pool_t *pool, mp_async_t *job)
{
    pthread_mutex_lock(&pool->mutex);
    bool join = job->feeder_running;
    job->feeder_running = false;
    for (mp_async_t **pp = &pool->feeders; *pp; pp = &(*pp)->feeder_next)
        if (*pp == job) {
            *pp = job->feeder_next;
            break;
        }
    job->stop_feeding = true;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->mutex);
    if (join) {
        pthread_join(job->feeder, NULL);
        pthread_mutex_lock(&pool->mutex);
        mp__pool_job_unref(job); /* the feeder's reference */
        pthread_mutex_unlock(&pool->mutex);
    }
}

/* Sends the queued input of an imap, up to a batch (imap_batch), as one
   chunk: the chunks the feeder queued while the window was full cost one
   SUBMIT, one dispatch and one RESULT together. Their items have
   consecutive job indexes, so the reply needs no splitting: its item k is
   item first + k of the job, with its own value or error. false when the
   imap has nothing to send now. */
static bool pump_imap(mp_pool_t *pool, mp_async_t *job, ready_t *ready)
{
    if (!job->in->head) {
        if (job->input_done) {
            send_queue_remove(pool, job);
            if (job->done >= job->total && job->outstanding == 0 && !job->ready)
                mp__pool_fail_unsent(pool, job, 0, "", &ready->v, &ready->n, &ready->cap);
            return true;
        }
        return false;
    }
    if (job->outstanding + job->unread >= (size_t)pool->window)
        return false; /* its window is full: the reader wakes us when it frees a slot */
    size_t most = imap_batch(job), n = 0, count = 0, bytes = 0;
    for (cres_t *r = job->in->head; r && n < most; r = r->next) {
        const char *data;
        size_t size;
        mp__items_span(r->items, 0, r->items->len, &data, &size);
        if (n && bytes + size > MAX_COALESCE_BYTES)
            break; /* big items: stay well under the broker's message limit */
        n++;
        count += r->items->len;
        bytes += size;
    }
    chunk_t *c = calloc(1, sizeof *c);
    zmq_msg_t frame;
    char *at;
    if (!c || frame_init(&frame, count, bytes, &at)) {
        free(c);
        return false;
    }
    for (size_t k = 0; k < n; k++) {
        cres_t *r = job->in->head;
        const char *data;
        size_t size;
        mp__items_span(r->items, 0, r->items->len, &data, &size);
        memcpy(at, data, size);
        at += size;
        job->in->head = r->next;
        job->in->count--;
        job->in->bytes -= r->items->buf.size;
        mp_items_destroy(&r->items);
        free(r);
    }
    if (!job->in->head)
        job->in->tail = NULL;
    c->id = ++pool->next_chunk_id;
    c->job = job;
    c->count = count;
    c->seq = job->next_seq++;
    c->first = job->total;
    job->total += c->count;
    job->outstanding++;
    if (send_frame(pool, c, job->name, job->mode, &frame)) {
        mp__pool_chunk_done(pool, c,
                            mp__pool_failed_items(job->name, c->count, 0, MP_EBROKERLOST,
                                                  "cannot send to the broker"),
                            &ready->v, &ready->n, &ready->cap);
        chunk_free(c);
    } else {
        c->sent_ns = mp__now_ns();
    }
    pthread_cond_broadcast(&pool->cond); /* the feeder may pull more */
    return true;
}

/* Sends what the window allows. Mutex held. */
static void pump(mp_pool_t *pool, ready_t *ready)
{
    size_t jobs = 0, rotations = 0;
    for (mp_async_t *j = pool->send_head; j; j = j->send_next)
        jobs++;
    while (pool->connected && pool->send_head && pool->inflight < (size_t)pool->window) {
        mp_async_t *job = pool->send_head;
        if (job->kind == JOB_APPLY) {
            pump_applies(pool, ready);
        } else if (job->kind == JOB_MAP) {
            size_t a = job->next_item, b = a + job->chunksize;
            if (b > job->total)
                b = job->total;
            chunk_t *c = calloc(1, sizeof *c);
            if (!c)
                break;
            c->id = ++pool->next_chunk_id;
            c->job = job;
            c->count = b - a;
            c->seq = job->next_seq++;
            c->first = a;
            job->outstanding++;
            if (b >= job->total)
                send_queue_remove(pool, job);
            int rc = send_chunk(pool, c, job->name, job->mode, job->input, a, b);
            job->next_item = b;
            if (b >= job->total)
                sendbuf_release(job);
            if (rc) {
                mp__pool_chunk_done(pool, c,
                                    mp__pool_failed_items(job->name, c->count, 0, MP_EBROKERLOST,
                                                          "cannot send to the broker"),
                                    &ready->v, &ready->n, &ready->cap);
                chunk_free(c);
            }
        } else if (!pump_imap(pool, job, ready)) {
            /* this imap has nothing to send now: let the jobs behind it go */
            if (!job->send_next || rotations++ > jobs)
                break;
            send_queue_remove(pool, job);
            pool->send_tail->send_next = job;
            pool->send_tail = job;
            job->in_send_queue = true;
        }
    }
}

/* ---- receiving ------------------------------------------------------------------- */

static void on_result_piece(mp_pool_t *pool, mpp_msg_t *m, uint64_t id, uint64_t base,
                            uint64_t count, uint64_t nerrors, const uint64_t *ring, const char *at,
                            ready_t *ready);

/* A RESULT whose values are in an executor's output ring ([slot at vsize]
   in its header): where they are, checked, or NULL. */
static const char *ring_values(mp_pool_t *pool, const uint64_t ring[3])
{
    if (!pool->shm || ring[0] > INT32_MAX || ring[2] > UINT32_MAX)
        return NULL;
    return mp__pshm_out_at(pool->shm, (int)ring[0], ring[1], mp__pshm_reply_len(ring[2]));
}

static void on_result(mp_pool_t *pool, mpp_msg_t *m, mp__rd_t *r, ready_t *ready)
{
    size_t n, k;
    uint64_t id, base, count, nerrors, ring[3];
    if (mp__rd_array(r, &n) || n < 4 || mp__rd_uint(r, &id) || mp__rd_uint(r, &base) ||
        mp__rd_uint(r, &count) || mp__rd_uint(r, &nerrors) || m->n != (nerrors ? 5 : 4) ||
        (n >= 5 && (mp__rd_array(r, &k) || k < 3 || mp__rd_uint(r, &ring[0]) ||
                    mp__rd_uint(r, &ring[1]) || mp__rd_uint(r, &ring[2])))) {
        mp__log(MP_LOG_WARN, WHO, "malformed RESULT from the broker; dropped");
        return;
    }
    bool in_ring = n >= 5;
    const char *at = in_ring ? ring_values(pool, ring) : NULL;
    on_result_piece(pool, m, id, base, count, nerrors, in_ring ? ring : NULL, at, ready);
    if (at) /* copied out, held, or not ours: the executor may write there again */
        mp__pshm_out_consume(pool->shm, (int)ring[0], ring[1] + mp__pshm_reply_len(ring[2]));
}

/* One RESULT's piece of chunk id: values in frame 3, or, when ring is not
   NULL ([slot at vsize]), in an output ring at `at` (NULL when the ring's
   numbers were wrong). */
static void on_result_piece(mp_pool_t *pool, mpp_msg_t *m, uint64_t id, uint64_t base,
                            uint64_t count, uint64_t nerrors, const uint64_t *ring, const char *at,
                            ready_t *ready)
{
    bool in_ring = ring != NULL;
    chunk_t *c = chunk_take(pool, id, false);
    if (!c || base + count > c->count || c->received + count > c->count)
        return; /* not ours (any more), or a duplicate */
    if (is_map(c)) {
        piece_t *p = calloc(1, sizeof *p);
        if (!p)
            return; /* as if lost: the chunk fails when the broker or pool does */
        p->base = base;
        p->count = count;
        p->next = c->pieces;
        c->pieces = p;
        c->received += count;
        if (!in_ring)
            mp__pool_map_result(c->job, c->first + base, count, &m->f[3],
                                nerrors ? &m->f[4] : NULL);
        else if (at)
            mp__pool_map_result_ring(c->job, c->first + base, count, at, ring[2],
                                     nerrors ? &m->f[4] : NULL, (int)ring[0], ring[1]);
        else
            mp__pool_map_result_items(c->job, c->first + base,
                                      mp__pool_failed_items(c->job->name, count, 0, MP_EBADREQUEST,
                                                            "malformed result from the broker"));
        if (c->received == c->count)
            chunk_finish(pool, c, ready);
        else
            pthread_cond_broadcast(&pool->cond);
        return;
    }
    const char *task = c->job ? c->job->name : c->targets[0]->name;
    mp__rd_t vr;
    size_t nv;
    mp__rd_init(&vr, mpp_data(m, 3), mpp_size(m, 3));
    piece_t *p = calloc(1, sizeof *p);
    mp_items_t *items = mp_items_new();
    int rc = p && items ? 0 : MP_ENOMEM;
    if (!rc && (in_ring || mp__rd_array(&vr, &nv) || nv != count)) /* rings carry maps only */
        rc = MP_EBADMSG;
    if (!rc)
        rc = mp__items_append_packed(items, vr.p, mp__rd_left(&vr), count);
    if (!rc && nerrors)
        rc = mp__pool_decode_errors(items, task, mpp_data(m, 4), mpp_size(m, 4), 0);
    if (rc) {
        free(p);
        mp_items_destroy(&items);
        items = mp__pool_failed_items(task, count, 0, MP_EBADREQUEST,
                                      "malformed result from the broker");
        p = calloc(1, sizeof *p);
        if (!p || !items) {
            free(p);
            mp_items_destroy(&items);
            return;
        }
    }
    p->base = base;
    p->count = count;
    p->items = items;
    p->next = c->pieces;
    c->pieces = p;
    c->received += count;
    if (c->received == c->count)
        chunk_finish(pool, c, ready);
    else if (c->job)
        pthread_cond_broadcast(&pool->cond);
}

static void on_failed(mp_pool_t *pool, mp__rd_t *r, ready_t *ready)
{
    size_t n, len;
    uint64_t id;
    int64_t code;
    const char *msg;
    if (mp__rd_array(r, &n) || n < 3 || mp__rd_uint(r, &id) || mp__rd_int(r, &code) ||
        mp__rd_str(r, &msg, &len))
        return;
    chunk_t *c = chunk_take(pool, id, false);
    if (!c)
        return;
    char text[512];
    snprintf(text, sizeof text, "%.*s", (int)(len < sizeof text ? len : sizeof text - 1), msg);
    chunk_fail(pool, c, (int)code, text, ready);
}

/* Fails everything in flight and everything unsent: the broker is gone. */
static void fail_all(mp_pool_t *pool, int code, const char *msg, ready_t *ready)
{
    /* a blocking apply in flight is not in the chunk table: it ends too */
    pool->fail_gen++;
    pool->fail_code = code;
    snprintf(pool->fail_msg, sizeof pool->fail_msg, "%s", msg);
    uint64_t one = 1;
    ssize_t w = write(pool->sync_fd, &one, sizeof one);
    (void)w;
    for (size_t b = 0; b < POOL_BUCKETS; b++)
        while (pool->buckets[b])
            chunk_fail(pool, pool->buckets[b], code, msg, ready);
    while (pool->send_head) {
        mp_async_t *job = pool->send_head;
        send_queue_remove(pool, job);
        mp__pool_fail_unsent(pool, job, code, msg, &ready->v, &ready->n, &ready->cap);
    }
}

static void on_broker_message(mp_pool_t *pool, mpp_msg_t *m, ready_t *ready)
{
    if (m->too_many || m->n < 3 || mpp_size(m, 0) != MPP_SIG_SIZE ||
        memcmp(mpp_data(m, 0), MPP_SIG_CLIENT, MPP_SIG_SIZE) || mpp_size(m, 1) != 1) {
        mp__log(MP_LOG_WARN, WHO, "malformed message from the broker; dropped");
        return;
    }
    mp__rd_t r;
    mp__rd_init(&r, mpp_data(m, 2), mpp_size(m, 2));
    size_t n;
    uint64_t v;
    switch (mpp_data(m, 1)[0]) {
    case MPP_B_RESULT:
        on_result(pool, m, &r, ready);
        break;
    case MPP_B_FAILED:
        on_failed(pool, &r, ready);
        break;
    case MPP_B_WELCOME: {
        const char *ver;
        size_t len;
        if (mp__rd_array(&r, &n) == 0 && n >= 3 && mp__rd_str(&r, &ver, &len) == 0 &&
            mp__rd_uint(&r, &v) == 0 && mp__rd_uint(&r, &v) == 0) {
            pool->processes = (int)v;
            if (!pool->window_set && v > 0)
                pool->window = v * 4 > 8 ? (int)v * 4 : 8;
            pool->connected = true;
            pthread_cond_broadcast(&pool->cond);
        }
        break;
    }
    case MPP_B_HEARTBEAT:
        if (mp__rd_array(&r, &n) == 0 && n >= 1 && mp__rd_uint(&r, &v) == 0 &&
            pool->processes != (int)v) {
            pool->processes = (int)v;
            pthread_cond_broadcast(&pool->cond);
        }
        break;
    case MPP_B_STATUS:
        if (m->n == 4 && pool->status_sent) {
            mp_obj_destroy(&pool->status);
            if (mp_obj_unpack(mpp_data(m, 3), mpp_size(m, 3), &pool->status))
                pool->status = NULL;
            pool->status_sent = false;
            pool->status_wanted = false;
            pthread_cond_broadcast(&pool->cond);
        }
        break;
    case MPP_B_DISCONNECT:
        mp__log(MP_LOG_WARN, WHO, "the broker disconnected this pool");
        pool->connected = false;
        fail_all(pool, MP_EBROKERLOST, "the broker disconnected", ready);
        send_hello(pool);
        break;
    default:
        break;
    }
}

/* ---- the I/O thread ----------------------------------------------------------------- */

static int open_socket(mp_pool_t *pool)
{
    pool->sock = zmq_socket(pool->ctx, ZMQ_DEALER);
    int ivl = 100, ivl_max = 5000;
    if (!pool->sock || mpp_socket_setup(pool->sock, MPP_DEFAULT_MAX_MSG) ||
        zmq_setsockopt(pool->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl) ||
        zmq_setsockopt(pool->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max) ||
        zmq_connect(pool->sock, pool->endpoint) < 0)
        return -errno;
    pool->last_heard = mp__now_ns();
    send_hello(pool);
    return 0;
}

static void *io_thread(void *arg)
{
    mp_pool_t *pool = arg;
    uint64_t interval = (uint64_t)pool->heartbeat_ms * 1000000ull;
    uint64_t next_hb = mp__now_ns() + interval;
    ready_t ready = {0};
    pthread_mutex_lock(&pool->mutex);
    int rc = open_socket(pool);
    if (rc) {
        pool->connect_error = rc;
        pool->stopping = true;
        pthread_cond_broadcast(&pool->cond);
    }
    while (!pool->stopping) {
        pump(pool, &ready);
        if (pool->status_wanted && !pool->status_sent && pool->connected) {
            char hs[4];
            mp__buf_t h;
            mp__buf_init(&h, hs, sizeof hs);
            mp__w_array(&h, 0);
            pool->status_sent = send_simple(pool, MPP_C_STATUS, &h) == 0;
        }
        pthread_mutex_unlock(&pool->mutex);
        if (ready.n) {
            mp__pool_run_callbacks(pool, ready.v, ready.n);
            ready.n = 0;
        }
        zmq_pollitem_t items[2] = {{pool->sock, 0, ZMQ_POLLIN, 0},
                                   {NULL, pool->wake_fd, ZMQ_POLLIN, 0}};
        uint64_t now = mp__now_ns();
        long timeout = next_hb > now ? (long)((next_hb - now) / 1000000) + 1 : 0;
        zmq_poll(items, 2, timeout);
        if (items[1].revents & ZMQ_POLLIN) {
            uint64_t v;
            ssize_t r = read(pool->wake_fd, &v, sizeof v);
            (void)r;
        }
        pthread_mutex_lock(&pool->mutex);
        if (items[0].revents & ZMQ_POLLIN) {
            for (int k = 0; k < 256; k++) {
                mpp_msg_t m;
                if (mpp_recv(pool->sock, &m, ZMQ_DONTWAIT))
                    break;
                pool->last_heard = mp__now_ns();
                on_broker_message(pool, &m, &ready);
                mpp_close(&m);
            }
        }
        now = mp__now_ns();
        if (now >= next_hb) {
            next_hb = now + interval;
            if (pool->embedded && !pool->worker_dead && !pool->terminated && !pool->closed &&
                pool->worker && !mp_process_is_alive(pool->worker)) {
                /* nobody else will serve this pool: fail, never wait */
                mp__log(MP_LOG_ERROR, WHO, "the pool's worker process exited");
                pool->worker_dead = true;
                fail_all(pool, MP_EWORKERLOST, "the pool's worker process exited", &ready);
            }
            if (now - pool->last_heard > interval * MPP_LIVENESS) {
                mp__log(MP_LOG_WARN, WHO, "broker %s silent for %llu ms", pool->endpoint,
                        (unsigned long long)((now - pool->last_heard) / 1000000));
                pool->connected = false;
                fail_all(pool, MP_EBROKERLOST, "the broker is silent (lost)", &ready);
                zmq_close(pool->sock);
                if (open_socket(pool))
                    break;
            } else {
                char hs[4];
                mp__buf_t h;
                mp__buf_init(&h, hs, sizeof hs);
                mp__w_array(&h, 0);
                send_simple(pool, MPP_C_HEARTBEAT, &h);
            }
            mp__pool_sync_keepalive(pool);
        }
    }
    /* stopping: whatever is left ends now */
    fail_all(pool, MP_ECANCELLED, "the pool was terminated", &ready);
    pthread_mutex_unlock(&pool->mutex);
    if (ready.n)
        mp__pool_run_callbacks(pool, ready.v, ready.n);
    free(ready.v);
    if (pool->sock) {
        char hs[4];
        mp__buf_t h;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, 0);
        send_simple(pool, MPP_C_DISCONNECT, &h);
        zmq_close(pool->sock);
        pool->sock = NULL;
    }
    return NULL;
}

void mp__pool_wake(mp_pool_t *pool)
{
    uint64_t one = 1;
    ssize_t r = write(pool->wake_fd, &one, sizeof one);
    (void)r;
}

int mp__pool_submit(mp_pool_t *pool, mp_async_t *job)
{
    pthread_mutex_lock(&pool->mutex);
    if (pool->closed || pool->terminated || pool->stopping || pool->worker_dead) {
        int rc = pool->worker_dead ? MP_EWORKERLOST : MP_ESTATE;
        pthread_mutex_unlock(&pool->mutex);
        return rc;
    }
    pool->active_jobs++;
    if (job->kind == JOB_MAP && job->total == 0) { /* nothing to send */
        job->results = mp_items_new();
        job->ready = true;
        job->refs--;
        pool->active_jobs--;
        pthread_mutex_unlock(&pool->mutex);
        return job->results ? 0 : MP_ENOMEM;
    }
    job->in_send_queue = true;
    if (pool->send_tail)
        pool->send_tail->send_next = job;
    else
        pool->send_head = job;
    pool->send_tail = job;
    pthread_mutex_unlock(&pool->mutex);
    mp__pool_wake(pool);
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

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
    /* if this process dies, the worker stops cleanly (SIGTERM, not the
       daemon's SIGKILL): it hands back its work and removes the ipc socket
       this process could not */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    mp_worker_options_t o = {.broker = pool->endpoint,
                             .processes = pool->processes_wanted,
                             .maxtasksperchild = wa->maxtasks,
                             .heartbeat_ms = pool->heartbeat_ms,
                             .exit_on_broker_loss = true,
                             .stop_fd = pool->stop_pipe[0]};
    return mp__worker_run_embedded(&o, pool->shm, true) ? 1 : 0;
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

int mp_pool_new(const mp_pool_options_t *o, mp_pool_t **pool_p)
{
    if (!pool_p)
        return MP_EINVAL;
    static unsigned counter; /* ipc names only; not state that outlives a call */
    mp_pool_t *pool = calloc(1, sizeof *pool);
    if (!pool)
        return MP_ENOMEM;
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
    pool->heartbeat_ms = o && o->heartbeat_ms > 0 ? o->heartbeat_ms : MPP_DEFAULT_HEARTBEAT_MS;
    pool->timeout_ms = o && o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    const char *broker = o ? o->broker : NULL;
    if (!broker || !*broker)
        broker = getenv("MP_BROKER");
    pool->embedded = !broker || !*broker;
    pool->processes_wanted = o && o->processes > 0 ? o->processes : mp_cpu_count();
    int wanted = pool->embedded ? pool->processes_wanted : 2;
    pool->window = o && o->window > 0 ? o->window : (wanted * 4 > 8 ? wanted * 4 : 8);
    pool->window_set = o && o->window > 0;
    int rc = pack_init(pool, o);
    worker_arg_t wa = {pool, maxtasks_of(o)};
    if (!rc && pool->embedded) {
        const char *dir = getenv("XDG_RUNTIME_DIR");
        if (!dir || access(dir, W_OK) != 0)
            dir = "/tmp";
        unsigned n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
        snprintf(pool->ipc_path, sizeof pool->ipc_path, "%s/mp-pool-%d-%u.ipc", dir, (int)getpid(),
                 n);
        snprintf(pool->endpoint, sizeof pool->endpoint, "ipc://%s", pool->ipc_path);
        /* the rings map items and results travel through, before the fork
           that shares them (MP_POOL_SHM=0: every chunk in frames) */
        const char *use_shm = getenv("MP_POOL_SHM");
        if (!use_shm || strcmp(use_shm, "0") != 0)
            pool->shm = mp__pshm_new(pool->processes_wanted, POOL_SHM_IN, POOL_SHM_OUT);
        /* 1. the worker process, before any ZeroMQ state exists here */
        /* a socket pair, not a pipe: the stop byte is sent with
           MSG_NOSIGNAL (a worker already gone must not SIGPIPE us) */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pool->stop_pipe) < 0) {
            rc = -errno;
        } else {
            mp_process_opts_t po = {
                .name = "PoolWorker", .daemon = true, .start_method = MP_START_FORK};
            pool->worker = mp_process_new(worker_entry, &wa, &po);
            rc = pool->worker ? mp_process_start(pool->worker) : MP_ENOMEM;
            close(pool->stop_pipe[0]);
            pool->stop_pipe[0] = -1;
        }
    } else if (!rc) {
        snprintf(pool->endpoint, sizeof pool->endpoint, "%s", broker);
    }
    /* 2. the context (and the broker for an embedded pool) */
    if (!rc && !(pool->ctx = zmq_ctx_new()))
        rc = MP_ENOMEM;
    if (!rc && pool->embedded) {
        char inproc[64];
        snprintf(inproc, sizeof inproc, "inproc://mp-pool-%p", (void *)pool);
        const char *binds[] = {pool->endpoint, inproc};
        mp_broker_options_t bo = {.binds = binds,
                                  .nbinds = 2,
                                  .zmq_context = pool->ctx,
                                  .heartbeat_ms = pool->heartbeat_ms};
        rc = mp__broker_new_shm(&bo, pool->shm, &pool->broker);
        snprintf(pool->endpoint, sizeof pool->endpoint, "%s", inproc);
    }
    /* 3. the I/O thread, and the handshake */
    if (!rc && ((pool->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
                (pool->sync_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0))
        rc = -errno;
    if (!rc && pthread_create(&pool->thread, NULL, io_thread, pool) != 0)
        rc = MP_ENOMEM;
    if (!rc) {
        pool->thread_started = true;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += pool->timeout_ms / 1000;
        ts.tv_nsec += (long)(pool->timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&pool->mutex);
        while (!connected_enough(pool))
            if (pthread_cond_timedwait(&pool->cond, &pool->mutex, &ts) == ETIMEDOUT)
                break;
        if (pool->connect_error)
            rc = pool->connect_error;
        else if (!connected_enough(pool) || pool->stopping)
            rc = MP_EBROKERLOST;
        pthread_mutex_unlock(&pool->mutex);
        if (rc)
            mp__log(MP_LOG_WARN, WHO, "%s %s did not answer within %d ms",
                    pool->embedded ? "embedded pool at" : "broker", pool->endpoint,
                    pool->timeout_ms);
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
    fail_all(pool, MP_ECANCELLED, "the pool was terminated", &ready);
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
    bool in_callback = pool->cb_started && pthread_equal(pthread_self(), pool->cb_thread);
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
    mp_obj_destroy(&pool->status);
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

int mp_pool_status(mp_pool_t *pool, int timeout_ms, mp_obj_t **status_p)
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
    pool->status_wanted = true;
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
    pthread_mutex_unlock(&pool->mutex);
    return rc;
}
