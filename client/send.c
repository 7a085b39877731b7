/*  send.c - the outgoing side of the I/O thread: the send queue, and the
    pump that cuts chunks from it while the window has room.

    Callers put jobs on the send queue (mp__pool_submit) and wake the I/O
    thread; the I/O thread cuts chunks while fewer than `window` are in
    flight: the next chunk of a map, up to MAX_COALESCE consecutive applies
    of one task in one chunk (under load applies travel together), or the
    chunks an imap's feeder queued, as one chunk (up to a batch:
    mp__pool_imap_batch), while that imap has fewer than `window` chunks
    in flight or unread. Alone when only one is ready; under a backlog
    together, so chunksize 1 costs a message per batch, not per item.

    A map chunk's items go into the input ring (docs/PROTOCOL.md 9.1) when
    it has room, else into a frame (frames.c). Invariants: every chunk
    sent is in the chunk table (chunk.c) until it is whole; a chunk that
    cannot be sent ends at once, each item failed (BROKER_LOST), so no call
    waits for a chunk that never left. Mutex held throughout, except
    mp__pool_submit, which takes it.
*/
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "base/log.h"
#include "chunk.h"
#include "codec/mpp.h"
#include "codec/wire.h"
#include "codec/items_impl.h"
#include "feeder.h"
#include "frames.h"
#include "map_out.h"
#include "mp/error.h"
#include "pool_impl.h"
#include "results.h"
#include "send.h"
#include "session.h"

#define WHO "mp-pool"

/* Sends one chunk whose items frame (an msgpack array of c->count items) is
   ready, or is empty when they are in the input ring (c->shm_in); the frame
   is consumed. Mutex held. */
static int send_frame(mp_pool_t *pool, chunk_t *c, const char *name, uint8_t mode, zmq_msg_t *items)
{
    mp_async_t *job = c->job ? c->job : c->targets[0];
    if (pool->resend && !c->shm_in) { /* kept for a resend: a reference, not a copy */
        zmq_msg_init(&c->frame);
        c->has_frame = zmq_msg_copy(&c->frame, items) == 0;
    }
    int rc = mp__session_submit(MP__DEALER(pool->sock), c->id, name, mode, c->count,
                                c->shm_in ? &c->in : NULL, job->time_limit_ms, items,
                                pool->has_init ? &pool->init : NULL);
    if (rc == 0)
        mp__pool_chunk_insert(pool, c);
    return rc;
}

/* A map's frames buffer (frames.c): every input byte plus an array header
   per chunk. NULL (frames malloc'd one by one) for a small map or without
   memory. */
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
    job->out->send = mp__pool_sendbuf_new(size + chunks * 8);
    return job->out->send;
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
    if (!pool->shm || !mp__chunk_is_map(c) || !mp__pshm_in_alloc(pool->shm, size, &c->in, &items))
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
    /* the buffer was sized for chunks of chunksize items: chunks cut short
       by their bytes may not all fit it, and get a frame of their own */
    if ((!sb || mp__pool_frame_in(sb, &frame, b - a, size, &at)) &&
        mpp_items_frame(&frame, b - a, size, &at))
        return MP_ENOMEM;
    memcpy(at, data, size);
    return send_frame(pool, c, name, mode, &frame);
}

void mp__pool_send_queue_remove(mp_pool_t *pool, mp_async_t *job)
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
         j && j->kind == JOB_APPLY && n < pool->coalesce_max && strcmp(j->name, first->name) == 0 &&
         j->time_limit_ms == first->time_limit_ms;
         j = j->send_next)
        n++;
    chunk_t *c = calloc(1, sizeof *c);
    mp_items_t *batch = n > 1 ? mp_items_new() : NULL;
    mp_async_t **targets = calloc(n, sizeof *targets);
    if (!c || !targets || (n > 1 && !batch)) {
        free(c);
        free(targets);
        mp_items_destroy(&batch);
        mp__pool_send_queue_remove(pool, first);
        mp__pool_fail_unsent(pool, first, MP_ENOMEM, "out of memory", ready);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        mp_async_t *j = pool->send_head;
        mp__pool_send_queue_remove(pool, j);
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
            ready);
        mp__pool_chunk_free(c);
    }
}

/* Sends the queued input of an imap, up to a batch (mp__pool_imap_batch), as one
   chunk: the chunks the feeder queued while the window was full cost one
   SUBMIT, one dispatch and one RESULT together. Their items have
   consecutive job indexes, so the reply needs no splitting: its item k is
   item first + k of the job, with its own value or error. false when the
   imap has nothing to send now. */
static bool pump_imap(mp_pool_t *pool, mp_async_t *job, ready_t *ready)
{
    if (!job->in->head) {
        if (job->input_done) {
            mp__pool_send_queue_remove(pool, job);
            if (job->done >= job->total && job->outstanding == 0 && !job->finished)
                mp__pool_fail_unsent(pool, job, 0, "", ready);
            return true;
        }
        return false;
    }
    if (job->outstanding + job->unread >= (size_t)pool->window)
        return false; /* its window is full: the reader wakes us when it frees a slot */
    size_t most = mp__pool_imap_batch(job), n = 0, count = 0, bytes = 0;
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
    char *at = NULL;
    /* one chunk of the generator's larger than the broker takes: its
       items fail (MP_E2BIG) rather than the whole session */
    bool too_big = bytes > pool->max_message - 16;
    if (!c || (!too_big && mpp_items_frame(&frame, count, bytes, &at))) {
        free(c);
        return false;
    }
    for (size_t k = 0; k < n; k++) {
        cres_t *r = job->in->head;
        const char *data;
        size_t size;
        mp__items_span(r->items, 0, r->items->len, &data, &size);
        if (!too_big) {
            memcpy(at, data, size);
            at += size;
        }
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
    if (too_big) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "chunk of %zu bytes is larger than the broker's largest message (%zu)", bytes,
                 pool->max_message);
        mp__pool_chunk_done(pool, c, mp__pool_failed_items(job->name, c->count, 0, MP_E2BIG, msg),
                            ready);
        mp__pool_chunk_free(c);
    } else if (send_frame(pool, c, job->name, job->mode, &frame)) {
        mp__pool_chunk_done(pool, c,
                            mp__pool_failed_items(job->name, c->count, 0, MP_EBROKERLOST,
                                                  "cannot send to the broker"),
                            ready);
        mp__pool_chunk_free(c);
    } else {
        c->sent_ns = mp__now_ns();
    }
    pthread_cond_broadcast(&pool->cond); /* the feeder may pull more */
    return true;
}

/* The end of a map chunk that starts at item a and would end at b: the
   largest end whose items frame fits the broker's largest message; a
   when item a alone does not. */
static size_t fit_bytes(const mp_pool_t *pool, const mp_items_t *src, size_t a, size_t b)
{
    size_t limit = pool->max_message - 16, size; /* 16: the array header, and margin */
    const char *data;
    mp__items_span(src, a, b, &data, &size);
    if (size <= limit)
        return b;
    size_t lo = a, hi = b; /* [a, lo) fits, [a, hi) does not */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        mp__items_span(src, a, mid, &data, &size);
        if (size <= limit)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Cuts and sends the next chunk of a map: job->chunksize items (within the
   broker's max-count since the call), fewer when their bytes would not fit
   one message; an item that alone does not fit fails with MP_E2BIG. */
static void pump_map(mp_pool_t *pool, mp_async_t *job, ready_t *ready)
{
    size_t a = job->next_item, b = a + job->chunksize;
    if (b > job->total)
        b = job->total;
    size_t end = fit_bytes(pool, job->input, a, b);
    bool too_big = end == a;
    b = too_big ? a + 1 : end;
    chunk_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->id = ++pool->next_chunk_id;
    c->job = job;
    c->count = b - a;
    c->seq = job->next_seq++;
    c->first = a;
    job->outstanding++;
    if (b >= job->total)
        mp__pool_send_queue_remove(pool, job);
    int rc = 0;
    char msg[160];
    if (too_big) {
        const char *data;
        size_t size;
        mp__items_span(job->input, a, b, &data, &size);
        snprintf(msg, sizeof msg,
                 "item of %zu bytes is larger than the broker's largest message (%zu)", size,
                 pool->max_message);
        rc = MP_E2BIG;
    } else {
        rc = send_chunk(pool, c, job->name, job->mode, job->input, a, b);
        if (rc)
            snprintf(msg, sizeof msg, "cannot send to the broker");
    }
    job->next_item = b;
    if (b >= job->total)
        sendbuf_release(job);
    if (rc) {
        mp__pool_chunk_done(pool, c,
                            mp__pool_failed_items(job->name, c->count, 0,
                                                  rc == MP_E2BIG ? MP_E2BIG : MP_EBROKERLOST, msg),
                            ready);
        mp__pool_chunk_free(c);
    }
}

/* Sends what the window allows. Mutex held. */
void mp__pool_pump(mp_pool_t *pool, ready_t *ready)
{
    size_t jobs = 0, rotations = 0;
    for (mp_async_t *j = pool->send_head; j; j = j->send_next)
        jobs++;
    while (pool->connected && pool->send_head && pool->inflight < (size_t)pool->window) {
        mp_async_t *job = pool->send_head;
        if (job->kind == JOB_APPLY) {
            pump_applies(pool, ready);
        } else if (job->kind == JOB_MAP) {
            size_t before = pool->next_chunk_id;
            pump_map(pool, job, ready);
            if (pool->next_chunk_id == before)
                break; /* out of memory: try again on the next wake */
        } else if (!pump_imap(pool, job, ready)) {
            /* this imap has nothing to send now: let the jobs behind it go */
            if (!job->send_next || rotations++ > jobs)
                break;
            mp__pool_send_queue_remove(pool, job);
            pool->send_tail->send_next = job;
            pool->send_tail = job;
            job->in_send_queue = true;
        }
    }
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
        job->finished = job->ready = true; /* no callback: as CPython, none runs */
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

/* Whether cancelling chunk o cancels only job: its own, or a batch of
   applies (coalesced) whose every other call is done already (a stuck
   one's batch-mates answered ahead of it: docs/PARTIAL-RESULTS.md). */
static bool cancels_only(const chunk_t *o, const mp_async_t *job)
{
    if (o->job)
        return o->job == job;
    bool found = false;
    for (size_t k = 0; o->targets && k < o->count; k++) {
        if (o->targets[k] == job)
            found = true;
        else if (!o->targets[k]->finished)
            return false;
    }
    return found;
}

void mp__pool_cancel(mp_pool_t *pool, mp_async_t *job, ready_t *ready)
{
    if (job->finished)
        return;
    if (job->in_send_queue) {
        mp__pool_send_queue_remove(pool, job);
        mp__pool_fail_unsent(pool, job, MP_ECANCELLED, "cancelled", ready);
    }
    /* a chunk shared with other applies (coalesced) still running is left
       to complete; one waiting for a lost broker to come back ends here */
    for (size_t b = 0; b < POOL_BUCKETS; b++)
        for (chunk_t *c = pool->buckets[b], *next; c; c = next) {
            next = c->hnext;
            const chunk_t *o = c->parent ? c->parent : c;
            bool mine = cancels_only(o, job);
            if (mine && c->orphan) { /* it leaves the table; an orphan has no gaps in flight */
                mp__pool_chunk_fail(pool, c, MP_ECANCELLED, "cancelled", ready);
                continue;
            }
            if (!mine || c->cancel_sent)
                continue;
            if (pool->ncancels == pool->cancelcap) {
                size_t cap = pool->cancelcap ? 2 * pool->cancelcap : 16;
                uint64_t *grown = realloc(pool->cancels, cap * sizeof *grown);
                if (!grown)
                    return; /* out of memory: the chunk completes instead */
                pool->cancels = grown;
                pool->cancelcap = cap;
            }
            pool->cancels[pool->ncancels++] = c->id;
            c->cancel_sent = true;
        }
    mp__pool_wake(pool);
}

void mp__pool_send_cancels(mp_pool_t *pool)
{
    if (!pool->connected)
        return; /* after a reconnect the chunks failed (BROKER_LOST) anyway */
    for (size_t i = 0; i < pool->ncancels; i++)
        mp__session_cancel(MP__DEALER(pool->sock), pool->cancels[i]);
    pool->ncancels = 0;
}

/* ---- a lost broker, and the one that comes back (PROTOCOL.md 7.1) ---------- */

void mp__pool_hold_all(mp_pool_t *pool, ready_t *ready)
{
    /* a blocking apply in flight goes the I/O thread's way (MP_EAGAIN) */
    pool->fail_gen++;
    pool->fail_code = MP_EAGAIN;
    uint64_t one = 1;
    ssize_t w = write(pool->sync_fd, &one, sizeof one);
    (void)w;
    mp__pool_chunk_drop_children(pool, NULL); /* a gap sent again goes again, from its parent */
    for (size_t b = 0; b < POOL_BUCKETS; b++)
        for (chunk_t *c = pool->buckets[b], *next; c; c = next) {
            next = c->hnext; /* c may end below; nothing else leaves the table */
            c->orphan = true;
            if (!c->has_frame) /* cannot be sent again: ends now */
                mp__pool_chunk_fail(pool, c, MP_EBROKERLOST, "the broker was lost", ready);
        }
    if (!pool->holding)
        pool->lost_ns = mp__now_ns();
    pool->holding = true;
}

/* Items [at, end) of c's frame as a frame of their own. */
static int slice_frame(const chunk_t *c, size_t at, size_t end, zmq_msg_t *out)
{
    if (at == 0 && end == c->count) {
        zmq_msg_init(out);
        return zmq_msg_copy(out, (zmq_msg_t *)&c->frame) ? MP_ENOMEM : 0;
    }
    mp__rd_t r;
    size_t n;
    mp__rd_init(&r, zmq_msg_data((zmq_msg_t *)&c->frame), zmq_msg_size((zmq_msg_t *)&c->frame));
    if (mp__rd_array(&r, &n) || n != c->count)
        return MP_EBADMSG;
    for (size_t i = 0; i < at; i++)
        if (mp__rd_skip(&r))
            return MP_EBADMSG;
    const char *from = (const char *)r.p;
    for (size_t i = at; i < end; i++)
        if (mp__rd_skip(&r))
            return MP_EBADMSG;
    char *to;
    size_t bytes = (size_t)((const char *)r.p - from);
    if (mpp_items_frame(out, end - at, bytes, &to))
        return MP_ENOMEM;
    memcpy(to, from, bytes);
    return 0;
}

/* One gap of an orphan, sent again as a child chunk. */
static int resend_gap(mp_pool_t *pool, chunk_t *c, size_t at, size_t end)
{
    mp_async_t *job = c->job ? c->job : c->targets[0];
    chunk_t *k = calloc(1, sizeof *k);
    zmq_msg_t frame;
    if (!k || slice_frame(c, at, end, &frame)) {
        free(k);
        return MP_ENOMEM;
    }
    k->id = ++pool->next_chunk_id;
    k->parent = c;
    k->offset = at;
    k->count = end - at;
    k->job = c->job;
    int rc = mp__session_submit(MP__DEALER(pool->sock), k->id, job->name,
                                c->job ? job->mode : MPP_MODE_STAR, k->count, NULL,
                                job->time_limit_ms, &frame, pool->has_init ? &pool->init : NULL);
    if (rc) {
        zmq_msg_close(&frame);
        free(k);
        return rc;
    }
    c->children++;
    mp__pool_chunk_insert(pool, k);
    return 0;
}

void mp__pool_resend(mp_pool_t *pool, ready_t *ready)
{
    if (!pool->holding)
        return;
    pool->holding = false;
    size_t sent = 0;
    for (size_t b = 0; b < POOL_BUCKETS; b++)
        for (chunk_t *c = pool->buckets[b], *next; c; c = next) {
            next = c->hnext;
            if (!c->orphan || c->parent)
                continue;
            c->orphan = false;
            size_t end;
            for (size_t at = mp__pool_chunk_gap(c, 0, &end); at < c->count;
                 at = mp__pool_chunk_gap(c, end, &end)) {
                if (resend_gap(pool, c, at, end) == 0) {
                    sent++;
                    continue;
                }
                /* cannot be sent again: this gap ends (and maybe the chunk) */
                mp__pool_chunk_fail_range(pool, c, at, end, MP_EBROKERLOST,
                                          "the broker was lost; could not send again", ready);
                break; /* c may have ended; its gaps sent so far sit before it */
            }
        }
    mp__log(MP_LOG_INFO, WHO, "the broker is back: %zu chunk%s sent again", sent,
            sent == 1 ? "" : "s");
}
