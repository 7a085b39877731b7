/*  units.c - chunks, units and the per-name queues that hold them.

    A chunk is what a client submitted; a unit is a dispatchable range of
    it, queued in its task name's FIFO or running on one worker. Every unit
    is in exactly one place; a chunk is freed when its last unit is
    answered. Items frames are sliced (after a LOST) by skipping values,
    never by decoding them. answer_with_errors ends a unit's items with one
    error each, in the RESULT format the client reads.

    Uses peers.c (sending); called by the scheduler and the command
    handlers.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "broker_impl.h"
#include "base/log.h"
#include "mp/error.h"

/* Answers the items of u not answered yet with one error each (kind,
   code, message). */
void bk_answer_with_errors(mp_broker_t *b, unit_t *u, int kind, int code, const char *msg)
{
    chunk_t *ch = u->chunk;
    size_t base = u->base + u->answered, count = bk_unit_left(u); /* after what PARTIALs answered */
    ch->pending -= count;
    if (kind == MPP_KIND_WORKER_LOST) {
        b->lost += count;
        ch->queue->stats.items_lost += count;
    } else {
        b->failed += count;
        ch->queue->stats.items_failed += count;
    }
    bk_recent_error(b, ch->name, base, code, kind, msg, u->worker ? u->worker->host : "",
                    u->worker ? u->worker->pid : 0);
    if (!ch->client && !ch->durable)
        return;
    mp__buf_t vals, errs, h;
    char hs[64];
    mp__buf_init(&vals, NULL, 0);
    mp__buf_init(&errs, NULL, 0);
    mp__buf_init(&h, hs, sizeof hs);
    int rc = mp__w_array(&vals, count);
    rc = rc ? rc : mp__w_array(&errs, count);
    const char *host = u->worker ? u->worker->host : "";
    unsigned pid = u->worker ? u->worker->pid : 0;
    for (size_t i = 0; i < count && !rc; i++) {
        rc = mp__w_nil(&vals);
        rc = rc ? rc : mp__w_array(&errs, 6);
        rc = rc ? rc : mp__w_uint(&errs, i);
        rc = rc ? rc : mp__w_int(&errs, code);
        rc = rc ? rc : mp__w_uint(&errs, (uint64_t)kind);
        rc = rc ? rc : mp__w_str(&errs, msg);
        rc = rc ? rc : mp__w_str(&errs, host);
        rc = rc ? rc : mp__w_uint(&errs, pid);
    }
    mp__w_array(&h, 4);
    mp__w_uint(&h, ch->chunk_id);
    mp__w_uint(&h, base);
    mp__w_uint(&h, count);
    mp__w_uint(&h, count);
    if (rc == 0 && ch->durable) {
        bk_journal_answer(b, ch, base, count, count, vals.data, vals.size, errs.data, errs.size);
    } else if (rc == 0) {
        zmq_msg_t frames[2];
        zmq_msg_init_size(&frames[0], vals.size);
        memcpy(zmq_msg_data(&frames[0]), vals.data, vals.size);
        zmq_msg_init_size(&frames[1], errs.size);
        memcpy(zmq_msg_data(&frames[1]), errs.data, errs.size);
        bk_send_to(b, ch->client, MPP_B_RESULT, &h, frames, 2);
    } else {
        mp__log(MP_LOG_ERROR, WHO, "out of memory answering chunk %llu",
                (unsigned long long)ch->chunk_id);
    }
    mp__buf_release(&vals);
    mp__buf_release(&errs);
    mp__buf_release(&h);
}

/* Answers of items [base, base+count) of a durable chunk: to the journal
   (PROTOCOL.md 7.3). A write that fails is logged: those items run again
   after the broker's next start. */
void bk_journal_answer(mp_broker_t *b, chunk_t *ch, size_t base, size_t count, size_t nerrors,
                       const void *values, size_t vsize, const void *errors, size_t esize)
{
    int rc = bk_jstore_result(b->jstore, ch->durable, base, count, nerrors, values, vsize, errors,
                              esize);
    if (rc)
        mp__log(MP_LOG_ERROR, WHO, "journal: cannot record items %zu..%zu of job %s chunk %u: %s",
                base, base + count - 1, ch->durable->job->name, ch->durable->seq, mp_strerror(rc));
}

static void chunk_free(mp_broker_t *b, chunk_t *ch)
{
    ch->queue->chunks--;
    if (ch->durable)
        ch->durable->live = NULL;
    if (ch->client) {
        peer_t *c = ch->client;
        if (ch->prev)
            ch->prev->next = ch->next;
        else
            c->chunks = ch->next;
        if (ch->next)
            ch->next->prev = ch->prev;
    }
    zmq_msg_close(&ch->items);
    if (ch->has_init)
        zmq_msg_close(&ch->init);
    free(ch);
    (void)b;
}

void bk_unit_free(mp_broker_t *b, unit_t *u)
{
    chunk_t *ch = u->chunk;
    zmq_msg_close(&u->items);
    free(u);
    if (ch->pending == 0) {
        if ((ch->client || ch->durable) && !b->dropping) /* answered whole */
            ch->queue->stats.chunks_done++;
        chunk_free(b, ch);
    }
}

/* Past BK_MAX_QUEUES: the queue of the name idle longest with no chunk
   alive, emptied of its name and counters (they go to b->retired), or
   NULL when every name has work alive. */
/* A queue another name may take: nothing queued, no chunk alive. */
static bool queue_idle(const queue_t *q)
{
    return q->chunks == 0 && !q->head;
}

static queue_t *queue_reclaim(mp_broker_t *b)
{
    queue_t *best = NULL, **best_link = NULL;
    for (queue_t **link = &b->queues; *link; link = &(*link)->next) {
        queue_t *q = *link;
        if (queue_idle(q) && (!best || q->used_ns < best->used_ns)) {
            best = q;
            best_link = link;
        }
    }
    if (!best)
        return NULL;
    *best_link = best->next;
    task_stats_t *r = &b->retired.stats, *s = &best->stats;
    r->chunks_submitted += s->chunks_submitted;
    r->items_submitted += s->items_submitted;
    r->chunks_done += s->chunks_done;
    r->items_done += s->items_done;
    r->items_failed += s->items_failed;
    r->items_lost += s->items_lost;
    r->retries += s->retries;
    for (size_t i = 0; i <= BK_LATENCY_BUCKETS; i++)
        r->latency[i] += s->latency[i];
    r->latency_count += s->latency_count;
    r->latency_sum += s->latency_sum;
    mp__log(MP_LOG_DEBUG, WHO, "task name '%.64s' idle: its queue goes to a new name", best->name);
    memset(best, 0, sizeof *best);
    b->nqueues--;
    return best;
}

bool bk_queue_room(mp_broker_t *b, const char *name)
{
    if (b->nqueues < BK_MAX_QUEUES || bk_queue_get(b, name, false))
        return true;
    for (queue_t *q = b->queues; q; q = q->next)
        if (queue_idle(q))
            return true;
    return false;
}

queue_t *bk_queue_get(mp_broker_t *b, const char *name, bool create)
{
    for (queue_t *q = b->queues; q; q = q->next)
        if (strcmp(q->name, name) == 0)
            return q;
    if (!create)
        return NULL;
    queue_t *q = b->nqueues >= BK_MAX_QUEUES ? queue_reclaim(b) : calloc(1, sizeof *q);
    if (!q)
        return NULL;
    snprintf(q->name, sizeof q->name, "%s", name);
    q->next = b->queues;
    b->queues = q;
    b->nqueues++;
    return q;
}

void bk_chunk_attach(chunk_t *ch, queue_t *q, size_t items)
{
    ch->queue = q;
    q->chunks++;
    q->used_ns = mp__now_ns();
    q->stats.chunks_submitted++;
    q->stats.items_submitted += items;
}

void bk_queue_push(queue_t *q, unit_t *u, bool front)
{
    u->worker = NULL;
    if (front) {
        u->prev = NULL;
        u->next = q->head;
        if (q->head)
            q->head->prev = u;
        else
            q->tail = u;
        q->head = u;
    } else {
        u->next = NULL;
        u->prev = q->tail;
        if (q->tail)
            q->tail->next = u;
        else
            q->head = u;
        q->tail = u;
    }
    q->depth++;
    if (u->chunk->client)
        u->chunk->client->queued++;
}

void bk_queue_unlink(queue_t *q, unit_t *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else
        q->head = u->next;
    if (u->next)
        u->next->prev = u->prev;
    else
        q->tail = u->prev;
    u->next = u->prev = NULL;
    q->depth--;
    if (u->chunk->client && u->chunk->client->queued)
        u->chunk->client->queued--;
}

void bk_running_unlink(peer_t *w, unit_t *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else
        w->running = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->next = u->prev = NULL;
    w->nrunning--;
}

/* Values [from, to) of the values back to back at r (r moves past them):
   where they start and how many bytes they take. MP_EBADMSG when r does
   not hold that many. */
int bk_values_span(mp__rd_t *r, size_t from, size_t to, const uint8_t **start, size_t *bytes)
{
    *start = r->p;
    for (size_t i = 0; i < to; i++) {
        if (i == from)
            *start = r->p;
        if (mp__rd_skip(r))
            return MP_EBADMSG;
    }
    *bytes = (size_t)(r->p - *start);
    return 0;
}

/* An items frame of count values: their array header, then bytes at p. */
int bk_items_frame(zmq_msg_t *dst, size_t count, const void *p, size_t bytes)
{
    char *at;
    int rc = mpp_items_frame(dst, count, bytes, &at);
    if (rc == 0)
        memcpy(at, p, bytes);
    return rc;
}

/* Builds the items frame of units [from, to) of chunk items in src. */
static int slice_items(const zmq_msg_t *src, size_t from, size_t to, zmq_msg_t *dst)
{
    mp__rd_t r;
    size_t n, bytes;
    const uint8_t *start;
    mp__rd_init(&r, zmq_msg_data((zmq_msg_t *)src), zmq_msg_size((zmq_msg_t *)src));
    if (mp__rd_array(&r, &n) || to > n || bk_values_span(&r, from, to, &start, &bytes))
        return MP_EBADMSG;
    return bk_items_frame(dst, to - from, start, bytes);
}

/* A new unit for items [base, base+count) of ch, from the items frame src
   whose item 0 is item `src_base` of the chunk. */
int bk_unit_trim(unit_t *u)
{
    if (u->answered == 0)
        return 0;
    zmq_msg_t rest;
    if (u->chunk->shm) /* a range of the ring's items: nothing to copy */
        zmq_msg_init(&rest);
    else if (slice_items(&u->items, u->answered, u->count, &rest))
        return MP_ENOMEM;
    /* move releases the old items itself (closing them first left the
       destination invalid: the move failed, the slice leaked, and the
       unit went back to its queue with no items) */
    zmq_msg_move(&u->items, &rest);
    zmq_msg_close(&rest);
    u->base += u->answered;
    u->count -= u->answered;
    u->answered = 0;
    return 0;
}

unit_t *bk_unit_slice(unit_t *u, size_t base, size_t count, unsigned attempt)
{
    unit_t *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    if (u->chunk->shm) /* a range of the ring's items: nothing to copy */
        zmq_msg_init(&v->items);
    else if (slice_items(&u->items, base - u->base, base - u->base + count, &v->items)) {
        free(v);
        return NULL;
    }
    v->chunk = u->chunk;
    v->base = base;
    v->count = count;
    v->attempt = attempt;
    snprintf(v->cause, sizeof v->cause, "%s", u->cause);
    return v;
}
