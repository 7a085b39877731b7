/*  job.c - the job table: a call's life from its creation to its last
    reference, and what happens to a chunk's results when they arrive.

    A call is a job. Its input is cut into chunks by the I/O thread (send.c)
    as the window allows; each finished chunk comes back here as one result
    list (chunk-relative indexes):

      apply     the chunk may carry many applies (coalesced by the I/O
                thread); item k goes to targets[k], which becomes ready
      map       the chunk's values are appended to the job's result list as
                soon as the chunks before it are there (map_out.c); when
                every item is done that list is job->results
      imap      the chunk goes to the reader's list (sorted by seq for imap,
                in arrival order for imap_unordered)

    A job holds two references: the caller's handle and the pool's (dropped
    once the job is ready and its callback ran: callbacks.c), so a caller
    may destroy a handle at any time and the I/O thread never touches freed
    memory. A job that becomes ready is appended to a ready_t, whose
    callbacks run once the mutex is released. Everything here runs with
    the pool's mutex held (mp__pool_job_new excepted) and calls only down:
    map_out.c, results.c.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/items_impl.h"
#include "job.h"
#include "map_out.h"
#include "mp/error.h"
#include "pool_impl.h"
#include "results.h"

static bool push_ready(ready_t *ready, mp_async_t *job)
{
    if (ready->n == ready->cap) {
        size_t c = ready->cap ? ready->cap * 2 : 16;
        mp_async_t **grown = realloc(ready->v, c * sizeof *grown);
        if (!grown)
            return false;
        ready->v = grown;
        ready->cap = c;
    }
    ready->v[ready->n++] = job;
    return true;
}

/* Every item of job is in. A job with a callback becomes ready once its
   callback ran (callbacks.c), as in CPython, so a caller woken by
   mp_async_wait sees what the callback did; without one, now. */
static void job_set_ready(mp_pool_t *pool, mp_async_t *job, ready_t *ready)
{
    job->finished = true;
    if (job->results && mp_items_nerrors(job->results))
        job->first_code = mp_items_error_at(job->results, 0)->code;
    pool->active_jobs--;
    bool queued = push_ready(ready, job);
    if (!queued || !(job->call.callback || job->call.error_callback))
        job->ready = true; /* out of memory: only the callback is skipped */
    pthread_cond_broadcast(&pool->cond);
}

mp_async_t *mp__pool_job_new(mp_pool_t *pool, int kind, const char *name, uint8_t mode,
                             const mp_call_options_t *o)
{
    if (!name || strlen(name) == 0 || strlen(name) > MPP_MAX_NAME)
        return NULL;
    mp_async_t *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->pool = pool;
    job->kind = kind;
    job->mode = mode;
    snprintf(job->name, sizeof job->name, "%s", name);
    job->refs = 2;
    if (o)
        job->call = *o;
    /* the time limit its chunks carry (0: none) */
    job->time_limit_ms = job->call.time_limit_ms > 0   ? (uint32_t)job->call.time_limit_ms
                         : job->call.time_limit_ms < 0 ? 0
                                                       : pool->time_limit_ms;
    return job;
}

/* One item (index k of items) becomes the whole result of an apply job. */
static void apply_result(mp_async_t *job, mp_items_t *items, size_t k)
{
    mp_items_t *one = mp_items_new();
    const void *p;
    size_t n;
    const mp_task_error_t *e = mp_items_error(items, k);
    if (one && mp_items_packed(items, k, &p, &n) == 0 && mp_items_add_packed(one, p, n) == 0) {
        if (e) {
            mp_task_error_t copy = *e;
            copy.index = 0;
            copy.task = job->name;
            mp__items_add_error(one, &copy);
        }
    } else {
        mp_items_destroy(&one);
        one = mp__pool_failed_items(job->name, 1, 0, MP_ENOMEM, "out of memory");
    }
    job->results = one;
    job->done = 1;
}

/* What an item of an imap costs, for the I/O thread's batching: the time
   since the later of the chunk's sending and the job's previous result,
   per item. With chunks queued behind each other this is the time between
   results (the rate the pool gets through the job, whatever holds it
   back); a chunk sent into an idle pipeline counts its round trip. */
static void imap_measure(mp_async_t *job, const chunk_t *c)
{
    if (!c->sent_ns)
        return; /* never sent: failed here */
    uint64_t now = mp__now_ns();
    uint64_t since = job->in->last_done_ns > c->sent_ns ? job->in->last_done_ns : c->sent_ns;
    uint64_t per_item = (now - since) / (c->count ? c->count : 1);
    job->in->last_done_ns = now;
    /* a moving average: one slow or fast chunk does not swing the batches */
    job->in->item_ns = job->in->item_ns ? (3 * job->in->item_ns + per_item) / 4 : per_item;
    if (!job->in->item_ns)
        job->in->item_ns = 1;
}

static void map_progress(mp_pool_t *pool, mp_async_t *job, ready_t *ready)
{
    if (job->done >= job->total) {
        mp__pool_map_finish(job);
        job_set_ready(pool, job, ready);
    } else {
        pthread_cond_broadcast(&pool->cond); /* progress */
    }
}

void mp__pool_map_chunk_done(mp_pool_t *pool, chunk_t *c, ready_t *ready)
{
    mp_async_t *job = c->job;
    job->outstanding--;
    job->done += c->count;
    map_progress(pool, job, ready);
}

void mp__pool_piece_done(mp_pool_t *pool, chunk_t *c, size_t base, mp_items_t *items,
                         ready_t *ready)
{
    if (c->targets) { /* coalesced applies: each call is done */
        for (size_t k = 0; k < items->len && base + k < c->count; k++) {
            mp_async_t *job = c->targets[base + k];
            job->outstanding--;
            apply_result(job, items, k);
            job_set_ready(pool, job, ready);
        }
        mp_items_destroy(&items);
        return;
    }
    mp_async_t *job = c->job; /* an unordered imap: to its reader */
    job->done += items->len;
    cres_t *r = calloc(1, sizeof *r);
    if (!r) {
        mp_items_destroy(&items);
        return;
    }
    r->seq = c->seq;
    r->first = c->first + base;
    r->items = items;
    job->unread++;
    if (job->cres_tail)
        job->cres_tail->next = r;
    else
        job->cres_head = r;
    job->cres_tail = r;
    pthread_cond_broadcast(&pool->cond);
}

void mp__pool_chunk_settled(mp_pool_t *pool, chunk_t *c, ready_t *ready)
{
    if (c->targets)
        return;
    mp_async_t *job = c->job;
    job->outstanding--;
    imap_measure(job, c);
    if (job->input_done && job->done >= job->total && !job->finished)
        job_set_ready(pool, job, ready);
}

void mp__pool_chunk_done(mp_pool_t *pool, chunk_t *c, mp_items_t *items, ready_t *ready)
{
    if (c->targets) {
        for (size_t k = 0; k < c->count; k++) {
            mp_async_t *job = c->targets[k];
            job->outstanding--;
            if (items)
                apply_result(job, items, k);
            else
                job->results = mp__pool_failed_items(job->name, 1, 0, MP_ENOMEM, "out of memory");
            job_set_ready(pool, job, ready);
        }
        mp_items_destroy(&items);
        return;
    }
    mp_async_t *job = c->job;
    job->outstanding--;
    if (!items)
        items = mp__pool_failed_items(job->name, c->count, 0, MP_ENOMEM, "out of memory");
    job->done += c->count;
    if (job->kind == JOB_APPLY) {
        apply_result(job, items, 0);
        mp_items_destroy(&items);
        job_set_ready(pool, job, ready);
        return;
    }
    if (job->kind == JOB_MAP) {
        mp__pool_map_result_items(job, c->first, items);
        map_progress(pool, job, ready);
        return;
    }
    /* imap: to the reader, sorted by seq unless unordered */
    imap_measure(job, c);
    cres_t *r = calloc(1, sizeof *r);
    if (!r) {
        mp_items_destroy(&items);
        return;
    }
    r->seq = c->seq;
    r->first = c->first;
    r->items = items;
    job->unread++;
    if (job->unordered || !job->cres_tail || job->cres_tail->seq < r->seq) {
        if (job->cres_tail)
            job->cres_tail->next = r;
        else
            job->cres_head = r;
        job->cres_tail = r;
    } else {
        cres_t **pp = &job->cres_head;
        while (*pp && (*pp)->seq < r->seq)
            pp = &(*pp)->next;
        r->next = *pp;
        *pp = r;
    }
    if (job->input_done && job->done >= job->total && !job->finished)
        job_set_ready(pool, job, ready);
    else
        pthread_cond_broadcast(&pool->cond);
}

void mp__pool_fail_unsent(mp_pool_t *pool, mp_async_t *job, int code, const char *msg,
                          ready_t *ready)
{
    if (job->finished)
        return;
    if (job->kind == JOB_MAP) {
        while (job->next_item < job->total) {
            size_t count = job->total - job->next_item;
            if (count > job->chunksize)
                count = job->chunksize;
            chunk_t c = {
                .job = job, .count = count, .seq = job->next_seq++, .first = job->next_item};
            job->next_item += count;
            job->outstanding++;
            mp__pool_chunk_done(pool, &c, mp__pool_failed_items(job->name, count, 0, code, msg),
                                ready);
        }
    } else if (job->kind == JOB_APPLY && job->outstanding == 0) {
        job->results = mp__pool_failed_items(job->name, 1, 0, code, msg);
        job->done = 1;
        job_set_ready(pool, job, ready);
    } else if (job->kind == JOB_IMAP) {
        job->input_done = true;
        /* input the generator gave but the window held back: each item
           fails, so the reader gets every item it was promised and an end */
        while (job->in->head) {
            cres_t *r = job->in->head;
            size_t count = r->items->len;
            job->in->head = r->next;
            job->in->count--;
            job->in->bytes -= r->items->buf.size;
            mp_items_destroy(&r->items);
            free(r);
            chunk_t c = {.job = job, .count = count, .seq = job->next_seq++, .first = job->total};
            job->total += count;
            job->outstanding++;
            mp__pool_chunk_done(pool, &c, mp__pool_failed_items(job->name, count, 0, code, msg),
                                ready);
        }
        job->in->tail = NULL;
        if (job->done >= job->total && !job->finished)
            job_set_ready(pool, job, ready);
    }
}

void mp__pool_job_unref(mp_async_t *job)
{
    if (--job->refs > 0)
        return;
    if (!job->out || !job->out->borrowed)
        mp_items_destroy(&job->input);
    mp_items_destroy(&job->results);
    if (job->out)
        mp__pool_map_out_free(job);
    while (job->cres_head) {
        cres_t *r = job->cres_head;
        job->cres_head = r->next;
        mp_items_destroy(&r->items);
        free(r);
    }
    while (job->in && job->in->head) {
        cres_t *r = job->in->head;
        job->in->head = r->next;
        mp_items_destroy(&r->items);
        free(r);
    }
    free(job->in);
    free(job->input_message);
    free(job);
}
