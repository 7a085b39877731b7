/*  job.c - Pool calls: apply/map/starmap (sync and async), imap, and what
    happens to a chunk's results when they arrive.

    A call is a job. Its input is cut into chunks by the I/O thread (pool.c)
    as the window allows; each finished chunk comes back here as one result
    list (chunk-relative indexes):

      apply     the chunk may carry many applies (coalesced by the I/O
                thread); item k goes to targets[k], which becomes ready
      map       the chunk's values are appended to the job's result list as
                soon as the chunks before it are there (map_out_t); when every
                item is done that list is job->results
      imap      the chunk goes to the reader's list (sorted by seq for imap,
                in arrival order for imap_unordered)

    A job holds two references: the caller's handle and the pool's (dropped
    once the job is ready and its callback ran), so a caller may destroy a
    handle at any time and the I/O thread never touches freed memory.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "pool_impl.h"

/* ---- results ------------------------------------------------------------------ */

mp_items_t *mp__pool_failed_items(const char *task, size_t count, size_t first_index, int code,
                                  const char *msg)
{
    mp_items_t *l = mp_items_new();
    if (!l)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        mp_task_error_t e = {.code = code,
                             .task_code = code,
                             .message = msg,
                             .task = task,
                             .host = "",
                             .index = first_index + i};
        if (mp_items_add_nil(l) || mp__items_add_error(l, &e)) {
            mp_items_destroy(&l);
            return NULL;
        }
    }
    return l;
}

int mp__pool_decode_errors(mp_items_t *items, const char *task, const void *data, size_t size,
                           size_t base)
{
    mp__rd_t r;
    size_t n;
    mp__rd_init(&r, data, size);
    if (mp__rd_array(&r, &n))
        return MP_EBADMSG;
    for (size_t k = 0; k < n; k++) {
        size_t fields, msglen, hostlen;
        uint64_t index, kind, pid;
        int64_t code;
        const char *msg, *host;
        if (mp__rd_array(&r, &fields) || fields < 6 || mp__rd_uint(&r, &index) ||
            mp__rd_int(&r, &code) || mp__rd_uint(&r, &kind) || mp__rd_str(&r, &msg, &msglen) ||
            mp__rd_str(&r, &host, &hostlen) || mp__rd_uint(&r, &pid))
            return MP_EBADMSG;
        for (size_t extra = 6; extra < fields; extra++)
            if (mp__rd_skip(&r))
                return MP_EBADMSG;
        char *m = strndup(msg, msglen), *h = strndup(host, hostlen);
        int mapped = mp__kind_code((unsigned)kind);
        mp_task_error_t e = {.code = mapped,
                             .task_code = kind == MPP_KIND_TASK ? (int)code : mapped,
                             .message = m ? m : "",
                             .task = task,
                             .host = h ? h : "",
                             .pid = (int)pid,
                             .index = base + (size_t)index};
        int rc = mp__items_add_error(items, &e);
        free(m);
        free(h);
        if (rc)
            return rc;
    }
    return 0;
}

static void push_ready(mp_async_t *job, mp_async_t ***ready, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        mp_async_t **grown = realloc(*ready, c * sizeof *grown);
        if (!grown)
            return; /* the job is ready; only its callback is skipped */
        *ready = grown;
        *cap = c;
    }
    (*ready)[(*n)++] = job;
}

static void job_set_ready(mp_pool_t *pool, mp_async_t *job, mp_async_t ***ready, size_t *n,
                          size_t *cap)
{
    job->ready = true;
    if (job->results && mp_items_nerrors(job->results))
        job->first_code = mp_items_error_at(job->results, 0)->code;
    pool->active_jobs--;
    push_ready(job, ready, n, cap);
    pthread_cond_broadcast(&pool->cond);
}

/* ---- map results: placed as they arrive ------------------------------------------ */

#define RING_MALFORMED "malformed result in shared memory"

/* Before the first piece: room for the whole map, guessed from that piece,
   so the list is not grown (and copied) piece after piece. */
static void reserve_all(const mp_async_t *job, size_t bytes, size_t count)
{
    mp_items_t *l = job->out->list;
    if (l->cap >= job->total || !count)
        return;
    size_t per_item = bytes / count + 1;
    mp__items_reserve(l, per_item * job->total + per_item * job->total / 8, job->total);
}

/* Appends a list of results (failures made here) at the end of the map's. */
static void place_items(map_out_t *o, size_t at, mp_items_t *items)
{
    if (!items || mp__items_concat(o->list, items) || mp__items_take_errors(o->list, items, at))
        o->failed = true;
}

/* Appends a RESULT piece, items [at, at + count), at the end of the map's
   list: one validating copy (mp__items_append_packed). Its errors are
   decoded first, so a malformed piece commits nothing and fails whole. */

/* Fails a piece that cannot be read: each of its items, with why. */
static void place_malformed(const mp_async_t *job, size_t at, size_t count, const char *why)
{
    mp_items_t *failed = mp__pool_failed_items(job->name, count, 0, MP_EBADREQUEST, why);
    place_items(job->out, at, failed);
    mp_items_destroy(&failed);
}

/* Appends a piece, items [at, at + count), at the end of the map's list:
   count values (vsize bytes at vals: a RESULT's frame or an output ring)
   in one checking copy (mp__items_append_packed). Its errors are decoded
   first, so a malformed piece commits nothing and fails whole (why). */
static void place_values(const mp_async_t *job, size_t at, size_t count, const char *vals,
                         size_t vsize, const zmq_msg_t *errors, const char *why)
{
    map_out_t *o = job->out;
    mp_items_t *errs = NULL;
    int rc = 0;
    if (errors) {
        errs = mp_items_new();
        rc = errs ? mp__pool_decode_errors(errs, job->name, zmq_msg_data((zmq_msg_t *)errors),
                                           zmq_msg_size((zmq_msg_t *)errors), at)
                  : MP_ENOMEM;
    }
    if (!rc) {
        reserve_all(job, vsize, count);
        rc = mp__items_append_packed(o->list, vals, vsize, count);
    }
    if (!rc && errs && mp__items_take_errors(o->list, errs, 0))
        o->failed = true;
    mp_items_destroy(&errs);
    if (rc == MP_EBADMSG)
        place_malformed(job, at, count, why);
    else if (rc)
        o->failed = true;
}

/* A RESULT's values frame: an array header of count, then the values. */
static void place_frames(const mp_async_t *job, size_t at, size_t count, const zmq_msg_t *values,
                         const zmq_msg_t *errors)
{
    static const char why[] = "malformed result from the broker";
    mp__rd_t r;
    size_t n;
    mp__rd_init(&r, zmq_msg_data((zmq_msg_t *)values), zmq_msg_size((zmq_msg_t *)values));
    if (mp__rd_array(&r, &n) || n != count)
        place_malformed(job, at, count, why);
    else
        place_values(job, at, count, (const char *)r.p, mp__rd_left(&r), errors, why);
}

static void held_free(const mp_async_t *job, held_t *h)
{
    if (h->ring_vals) /* the executor may write there again */
        mp__pshm_out_release(job->pool->shm, h->slot, h->ring_at);
    if (!h->items) {
        zmq_msg_close(&h->values);
        if (h->has_errors)
            zmq_msg_close(&h->errors);
    }
    mp_items_destroy(&h->items);
    free(h);
}

/* Keeps a piece until the pieces before it have come (sorted by index). */
static void hold(map_out_t *o, held_t *h)
{
    held_t **pp = &o->held;
    while (*pp && (*pp)->at < h->at)
        pp = &(*pp)->next;
    h->next = *pp;
    *pp = h;
}

/* Appends the held pieces that are next in order. */
static void place_held(const mp_async_t *job)
{
    map_out_t *o = job->out;
    while (o->held && o->held->at == o->list->len) {
        held_t *h = o->held;
        o->held = h->next;
        if (h->items)
            place_items(o, h->at, h->items);
        else if (h->ring_vals)
            place_values(job, h->at, h->count, h->ring_vals, h->vsize,
                         h->has_errors ? &h->errors : NULL, RING_MALFORMED);
        else
            place_frames(job, h->at, h->count, &h->values, h->has_errors ? &h->errors : NULL);
        held_free(job, h);
    }
}

void mp__pool_map_result(mp_async_t *job, size_t at, size_t count, zmq_msg_t *values,
                         zmq_msg_t *errors)
{
    map_out_t *o = job->out;
    if (at == o->list->len) {
        place_frames(job, at, count, values, errors);
        place_held(job);
        return;
    }
    held_t *h = calloc(1, sizeof *h);
    if (!h) {
        o->failed = true;
        return;
    }
    h->at = at;
    h->count = count;
    zmq_msg_init(&h->values);
    zmq_msg_move(&h->values, values);
    if (errors) {
        zmq_msg_init(&h->errors);
        zmq_msg_move(&h->errors, errors);
        h->has_errors = true;
    }
    hold(o, h);
}

void mp__pool_map_result_items(mp_async_t *job, size_t at, mp_items_t *items)
{
    map_out_t *o = job->out;
    if (!items) {
        o->failed = true;
        return;
    }
    if (at == o->list->len) {
        reserve_all(job, items->buf.size, items->len);
        place_items(o, at, items);
        mp_items_destroy(&items);
        place_held(job);
        return;
    }
    held_t *h = calloc(1, sizeof *h);
    if (!h) {
        o->failed = true;
        mp_items_destroy(&items);
        return;
    }
    h->at = at;
    h->count = items->len;
    h->items = items;
    hold(o, h);
}

void mp__pool_map_result_ring(mp_async_t *job, size_t at, size_t count, const char *vals,
                              size_t vsize, zmq_msg_t *errors, int slot, uint64_t ring_at)
{
    map_out_t *o = job->out;
    if (at == o->list->len) {
        place_values(job, at, count, vals, vsize, errors, RING_MALFORMED);
        place_held(job);
        return;
    }
    held_t *h = calloc(1, sizeof *h);
    if (h && mp__pshm_out_hold(job->pool->shm, slot, ring_at)) {
        *h = (held_t){.at = at,
                      .count = count,
                      .ring_vals = vals,
                      .vsize = vsize,
                      .slot = slot,
                      .ring_at = ring_at};
        zmq_msg_init(&h->values);
        if (errors) {
            zmq_msg_init(&h->errors);
            zmq_msg_move(&h->errors, errors);
            h->has_errors = true;
        }
        hold(o, h);
        return;
    }
    free(h);
    /* the ring holds as many as it may: copied out into a list of its own */
    mp_items_t *items = mp_items_new();
    int rc = items ? mp__items_append_packed(items, vals, vsize, count) : MP_ENOMEM;
    if (!rc && errors)
        rc =
            mp__pool_decode_errors(items, job->name, zmq_msg_data(errors), zmq_msg_size(errors), 0);
    if (rc) {
        mp_items_destroy(&items);
        if (rc != MP_EBADMSG) {
            o->failed = true;
            return;
        }
        items = mp__pool_failed_items(job->name, count, 0, MP_EBADREQUEST, RING_MALFORMED);
    }
    mp__pool_map_result_items(job, at, items);
}

/* Every item of the map has answered: its list becomes the results. */
static void map_finish(mp_async_t *job)
{
    map_out_t *o = job->out;
    while (o->held) { /* only after running out of memory */
        held_t *h = o->held;
        o->held = h->next;
        held_free(job, h);
    }
    if (o->failed || o->list->len != job->total) /* report every item failed rather than hang */
        mp_items_destroy(&o->list);
    job->results =
        o->list ? o->list
                : mp__pool_failed_items(job->name, job->total, 0, MP_ENOMEM, "out of memory");
    o->list = NULL;
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

static void map_progress(mp_pool_t *pool, mp_async_t *job, mp_async_t ***ready, size_t *nready,
                         size_t *readycap)
{
    if (job->done >= job->total) {
        map_finish(job);
        job_set_ready(pool, job, ready, nready, readycap);
    } else {
        pthread_cond_broadcast(&pool->cond); /* progress */
    }
}

void mp__pool_map_chunk_done(mp_pool_t *pool, chunk_t *c, mp_async_t ***ready, size_t *nready,
                             size_t *readycap)
{
    mp_async_t *job = c->job;
    job->outstanding--;
    job->done += c->count;
    map_progress(pool, job, ready, nready, readycap);
}

void mp__pool_chunk_done(mp_pool_t *pool, chunk_t *c, mp_items_t *items, mp_async_t ***ready,
                         size_t *nready, size_t *readycap)
{
    if (c->targets) {
        for (size_t k = 0; k < c->count; k++) {
            mp_async_t *job = c->targets[k];
            job->outstanding--;
            if (items)
                apply_result(job, items, k);
            else
                job->results = mp__pool_failed_items(job->name, 1, 0, MP_ENOMEM, "out of memory");
            job_set_ready(pool, job, ready, nready, readycap);
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
        job_set_ready(pool, job, ready, nready, readycap);
        return;
    }
    if (job->kind == JOB_MAP) {
        mp__pool_map_result_items(job, c->first, items);
        map_progress(pool, job, ready, nready, readycap);
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
    if (job->input_done && job->done >= job->total && !job->ready)
        job_set_ready(pool, job, ready, nready, readycap);
    else
        pthread_cond_broadcast(&pool->cond);
}

void mp__pool_fail_unsent(mp_pool_t *pool, mp_async_t *job, int code, const char *msg,
                          mp_async_t ***ready, size_t *nready, size_t *readycap)
{
    if (job->ready)
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
                                ready, nready, readycap);
        }
    } else if (job->kind == JOB_APPLY && job->outstanding == 0) {
        job->results = mp__pool_failed_items(job->name, 1, 0, code, msg);
        job->done = 1;
        job_set_ready(pool, job, ready, nready, readycap);
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
                                ready, nready, readycap);
        }
        job->in->tail = NULL;
        if (job->done >= job->total && !job->ready)
            job_set_ready(pool, job, ready, nready, readycap);
    }
}

void mp__pool_job_unref(mp_async_t *job)
{
    if (--job->refs > 0)
        return;
    if (!job->out || !job->out->borrowed)
        mp_items_destroy(&job->input);
    mp_items_destroy(&job->results);
    if (job->out) {
        while (job->out->held) {
            held_t *h = job->out->held;
            job->out->held = h->next;
            held_free(job, h);
        }
        mp_items_destroy(&job->out->list);
        if (job->out->send)
            mp__pool_sendbuf_unref(NULL, job->out->send);
        free(job->out);
    }
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
    free(job);
}

/* ---- callbacks ---------------------------------------------------------------- */

static bool has_callback(const mp_async_t *job)
{
    return job->call.callback || job->call.error_callback;
}

/* Runs job's callback (mutex not held), then drops the pool's reference. */
static void run_callback(mp_pool_t *pool, mp_async_t *job)
{
    int rc = 0;
    const mp_task_error_t *e = job->results ? mp_items_error_at(job->results, 0) : NULL;
    if (e && job->call.error_callback)
        rc = job->call.error_callback(job, e, job->call.arg);
    else if (!e && job->call.callback)
        rc = job->call.callback(job, job->call.arg);
    pthread_mutex_lock(&pool->mutex);
    if (rc) {
        pool->callback_errors++;
        mp__log(MP_LOG_WARN, "mp-pool", "%s callback of a %s call returned %d",
                e ? "error" : "result", job->name, rc);
    }
    mp__pool_job_unref(job); /* the pool's reference */
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->mutex);
}

static void *callback_thread(void *arg)
{
    mp_pool_t *pool = arg;
    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        while (pool->cbq_n == 0 && !pool->cb_stop)
            pthread_cond_wait(&pool->cb_cond, &pool->mutex);
        if (pool->cbq_n == 0) /* stopping, and nothing is due any more */
            break;
        mp_async_t *job = pool->cbq[pool->cbq_head++];
        if (--pool->cbq_n == 0)
            pool->cbq_head = 0;
        pool->cb_busy = true;
        pthread_mutex_unlock(&pool->mutex);
        run_callback(pool, job);
        pthread_mutex_lock(&pool->mutex);
        pool->cb_busy = false;
        pthread_cond_broadcast(&pool->cond); /* mp_pool_join may wait for this */
    }
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

/* Queues job for the callback thread (mutex held); false when it cannot
   (out of memory, no thread): the caller runs the callback itself. */
static bool queue_callback(mp_pool_t *pool, mp_async_t *job)
{
    if (!pool->cb_started) {
        if (pool->cb_stop || pthread_create(&pool->cb_thread, NULL, callback_thread, pool) != 0)
            return false;
        pool->cb_started = true;
    }
    if (pool->cbq_head + pool->cbq_n == pool->cbq_cap) {
        if (pool->cbq_head > 0) {
            memmove(pool->cbq, pool->cbq + pool->cbq_head, pool->cbq_n * sizeof *pool->cbq);
            pool->cbq_head = 0;
        } else {
            size_t cap = pool->cbq_cap ? pool->cbq_cap * 2 : 64;
            mp_async_t **grown = realloc(pool->cbq, cap * sizeof *grown);
            if (!grown)
                return false;
            pool->cbq = grown;
            pool->cbq_cap = cap;
        }
    }
    pool->cbq[pool->cbq_head + pool->cbq_n++] = job;
    pthread_cond_signal(&pool->cb_cond);
    return true;
}

void mp__pool_run_callbacks(mp_pool_t *pool, mp_async_t **ready, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mp_async_t *job = ready[i];
        pthread_mutex_lock(&pool->mutex);
        if (!has_callback(job)) {
            mp__pool_job_unref(job); /* the pool's reference */
            pthread_cond_broadcast(&pool->cond);
            pthread_mutex_unlock(&pool->mutex);
            continue;
        }
        bool queued = queue_callback(pool, job);
        pthread_mutex_unlock(&pool->mutex);
        if (!queued)
            run_callback(pool, job);
    }
}

void mp__pool_stop_callbacks(mp_pool_t *pool)
{
    pthread_mutex_lock(&pool->mutex);
    pool->cb_stop = true;
    pthread_cond_signal(&pool->cb_cond);
    bool started = pool->cb_started;
    pthread_mutex_unlock(&pool->mutex);
    if (started)
        pthread_join(pool->cb_thread, NULL);
    pool->cb_started = false;
    free(pool->cbq);
    pool->cbq = NULL;
    pool->cbq_cap = 0;
}

bool mp__pool_callbacks_idle(const mp_pool_t *pool)
{
    return pool->cbq_n == 0 && !pool->cb_busy;
}

/* ---- making calls ------------------------------------------------------------- */

static mp_async_t *job_new(mp_pool_t *pool, int kind, const char *name, uint8_t mode,
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
    return job;
}

/* Automatic chunk size, as Python: ceil(n / (4 * executors)). */
static size_t auto_chunksize(mp_pool_t *pool, size_t n)
{
    pthread_mutex_lock(&pool->mutex);
    size_t workers = pool->processes > 0 ? (size_t)pool->processes : 1;
    pthread_mutex_unlock(&pool->mutex);
    size_t cs = n / (workers * 4);
    if (n % (workers * 4))
        cs++;
    return cs ? cs : 1;
}

/* A copy of a caller's list: one copy, no re-validation (a list only ever
   holds whole, valid values). */
static int items_copy(const mp_items_t *src, mp_items_t **dst)
{
    mp_items_t *l = mp_items_new();
    if (!l || mp__items_concat(l, src)) {
        mp_items_destroy(&l);
        return MP_ENOMEM;
    }
    *dst = l;
    return 0;
}

int mp_pool_apply_async(mp_pool_t *pool, const char *name, const mp_obj_t *args,
                        const mp_call_options_t *o, mp_async_t **result_p)
{
    if (!pool || !result_p || (args && mp_obj_type(args) != MP_OBJ_ARRAY))
        return MP_EINVAL;
    mp_async_t *job = job_new(pool, JOB_APPLY, name, MPP_MODE_STAR, o);
    if (!job)
        return name ? MP_ENOMEM : MP_EINVAL;
    job->input = mp_items_new();
    int rc = job->input ? 0 : MP_ENOMEM;
    if (!rc && args)
        rc = mp_items_add_obj(job->input, args);
    else if (!rc)
        rc = mp_items_add_tuple(job->input, 0);
    job->total = 1;
    job->chunksize = 1;
    if (!rc)
        rc = mp__pool_submit(pool, job);
    if (rc) {
        job->refs = 1;
        mp__pool_job_unref(job);
        return rc;
    }
    *result_p = job;
    return 0;
}

/* borrow: the caller waits for the results (a blocking map), so its list
   outlives every read of the input (the I/O thread reads it only to send
   chunks, all sent before the job can be ready): no copy. */
static int map_async(mp_pool_t *pool, const char *name, const mp_items_t *items, uint8_t mode,
                     const mp_call_options_t *o, bool borrow, mp_async_t **result_p)
{
    if (!pool || !items || !result_p)
        return MP_EINVAL;
    if (items->tuple_left)
        return MP_ESTATE; /* an unfinished tuple: a programmer error */
    mp_async_t *job = job_new(pool, JOB_MAP, name, mode, o);
    if (!job)
        return name ? MP_ENOMEM : MP_EINVAL;
    job->out = calloc(1, sizeof *job->out);
    int rc = job->out && (job->out->list = mp_items_new()) ? 0 : MP_ENOMEM;
    if (!rc && borrow) {
        job->input = (mp_items_t *)items;
        job->out->borrowed = true;
    } else if (!rc) {
        rc = items_copy(items, &job->input);
    }
    if (!rc) {
        job->total = job->input->len;
        job->chunksize = o && o->chunksize ? o->chunksize : auto_chunksize(pool, job->total);
    }
    if (!rc)
        rc = mp__pool_submit(pool, job);
    if (rc) {
        job->refs = 1;
        mp__pool_job_unref(job);
        return rc;
    }
    *result_p = job;
    return 0;
}

int mp_pool_map_async(mp_pool_t *pool, const char *name, const mp_items_t *items,
                      const mp_call_options_t *o, mp_async_t **result_p)
{
    return map_async(pool, name, items, MPP_MODE_MAP, o, false, result_p);
}

int mp_pool_starmap_async(mp_pool_t *pool, const char *name, const mp_items_t *items,
                          const mp_call_options_t *o, mp_async_t **result_p)
{
    return map_async(pool, name, items, MPP_MODE_STAR, o, false, result_p);
}

/* Waits for a job and moves its results out. */
static int take_results(mp_async_t *job, mp_items_t **results_p)
{
    int rc = mp_async_wait(job, -1);
    if (rc == 0) {
        pthread_mutex_lock(&job->pool->mutex);
        rc = job->first_code;
        *results_p = job->results;
        job->results = NULL;
        pthread_mutex_unlock(&job->pool->mutex);
    }
    mp_async_destroy(&job);
    return rc;
}

static int map_sync(mp_pool_t *pool, const char *name, const mp_items_t *items, uint8_t mode,
                    size_t chunksize, mp_items_t **results_p)
{
    if (!results_p)
        return MP_EINVAL;
    mp_call_options_t o = {.chunksize = chunksize};
    mp_async_t *job;
    int rc = map_async(pool, name, items, mode, &o, true, &job);
    return rc ? rc : take_results(job, results_p);
}

int mp_pool_map(mp_pool_t *pool, const char *name, const mp_items_t *items, size_t chunksize,
                mp_items_t **results_p)
{
    return map_sync(pool, name, items, MPP_MODE_MAP, chunksize, results_p);
}

int mp_pool_starmap(mp_pool_t *pool, const char *name, const mp_items_t *items, size_t chunksize,
                    mp_items_t **results_p)
{
    return map_sync(pool, name, items, MPP_MODE_STAR, chunksize, results_p);
}

int mp_pool_apply(mp_pool_t *pool, const char *name, const mp_obj_t *args, mp_obj_t **result_p)
{
    if (!result_p)
        return MP_EINVAL;
    /* the caller's own session when it is free (pool.c, "blocking
       applies"): no hand-off to the I/O thread and back */
    if (pool && name && *name && strlen(name) <= MPP_MAX_NAME &&
        (!args || mp_obj_type(args) == MP_OBJ_ARRAY)) {
        int rc = mp__pool_apply_sync(pool, name, args, result_p);
        if (rc != MP_EAGAIN)
            return rc;
    }
    mp_async_t *job;
    int rc = mp_pool_apply_async(pool, name, args, NULL, &job);
    if (rc)
        return rc;
    rc = mp_async_get_obj(job, -1, result_p);
    mp_async_destroy(&job);
    return rc;
}

/* ---- AsyncResult ------------------------------------------------------------------ */

static struct timespec *abs_deadline(int timeout_ms, struct timespec *ts)
{
    if (timeout_ms < 0)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Waits on the pool's condition until pred(arg) or the deadline. Mutex held. */
static int wait_until(mp_pool_t *pool, const struct timespec *deadline, bool (*pred)(void *),
                      void *arg)
{
    while (!pred(arg)) {
        if (!deadline) {
            pthread_cond_wait(&pool->cond, &pool->mutex);
        } else if (pthread_cond_timedwait(&pool->cond, &pool->mutex, deadline) == ETIMEDOUT) {
            return pred(arg) ? 0 : MP_ETIMEDOUT;
        }
    }
    return 0;
}

static bool job_ready(void *arg)
{
    return ((mp_async_t *)arg)->ready;
}

int mp_async_wait(mp_async_t *job, int timeout_ms)
{
    if (!job)
        return MP_EINVAL;
    struct timespec ts;
    pthread_mutex_lock(&job->pool->mutex);
    int rc = wait_until(job->pool, abs_deadline(timeout_ms, &ts), job_ready, job);
    pthread_mutex_unlock(&job->pool->mutex);
    return rc;
}

bool mp_async_ready(mp_async_t *job)
{
    if (!job)
        return false;
    pthread_mutex_lock(&job->pool->mutex);
    bool r = job->ready;
    pthread_mutex_unlock(&job->pool->mutex);
    return r;
}

bool mp_async_successful(mp_async_t *job)
{
    if (!job)
        return false;
    pthread_mutex_lock(&job->pool->mutex);
    bool r = job->ready && job->first_code == 0;
    pthread_mutex_unlock(&job->pool->mutex);
    return r;
}

int mp_async_get(mp_async_t *job, int timeout_ms, const mp_items_t **results_p)
{
    if (!job || !results_p || job->kind == JOB_IMAP)
        return MP_EINVAL;
    int rc = mp_async_wait(job, timeout_ms);
    if (rc)
        return rc;
    pthread_mutex_lock(&job->pool->mutex);
    *results_p = job->results;
    rc = job->results ? job->first_code : MP_ESTATE; /* moved out by mp_pool_map */
    pthread_mutex_unlock(&job->pool->mutex);
    return rc;
}

int mp_async_get_obj(mp_async_t *job, int timeout_ms, mp_obj_t **value_p)
{
    const mp_items_t *r;
    if (!value_p)
        return MP_EINVAL;
    int rc = mp_async_get(job, timeout_ms, &r);
    if (rc)
        return rc;
    if (mp_items_len(r) < 1)
        return MP_ESTATE;
    return mp_items_get(r, 0, value_p);
}

const mp_task_error_t *mp_async_error(mp_async_t *job)
{
    if (!job)
        return NULL;
    pthread_mutex_lock(&job->pool->mutex);
    const mp_task_error_t *e =
        job->ready && job->results ? mp_items_error_at(job->results, 0) : NULL;
    pthread_mutex_unlock(&job->pool->mutex);
    return e;
}

void mp_async_progress(mp_async_t *job, size_t *done, size_t *total)
{
    if (!job)
        return;
    pthread_mutex_lock(&job->pool->mutex);
    if (done)
        *done = job->done;
    if (total)
        *total = job->total;
    pthread_mutex_unlock(&job->pool->mutex);
}

void mp_async_destroy(mp_async_t **job_p)
{
    if (!job_p || !*job_p)
        return;
    mp_async_t *job = *job_p;
    mp_pool_t *pool = job->pool;
    pthread_mutex_lock(&pool->mutex);
    job->released = true;
    mp__pool_job_unref(job);
    pthread_mutex_unlock(&pool->mutex);
    *job_p = NULL;
}

/* ---- imap ----------------------------------------------------------------------- */

static int imap_new(mp_pool_t *pool, const char *name, mp_generator_fn gen, void *arg,
                    size_t chunksize, bool unordered, mp_imap_t **it_p)
{
    if (!pool || !gen || !it_p)
        return MP_EINVAL;
    mp_imap_t *it = calloc(1, sizeof *it);
    mp_async_t *job = job_new(pool, JOB_IMAP, name, MPP_MODE_MAP, NULL);
    imap_in_t *in = calloc(1, sizeof *in);
    if (!it || !job || !in) {
        free(it);
        free(job);
        free(in);
        return name ? MP_ENOMEM : MP_EINVAL;
    }
    job->in = in;
    job->unordered = unordered;
    job->gen = gen;
    job->gen_arg = arg;
    job->chunksize = chunksize ? chunksize : 1;
    it->job = job;
    job->refs++; /* the feeder's */
    int rc = mp__pool_start_feeder(pool, job);
    if (rc == 0 && (rc = mp__pool_submit(pool, job)))
        mp__pool_stop_feeder(pool, job);
    if (rc) {
        job->refs = 1;
        mp__pool_job_unref(job);
        free(it);
        return rc;
    }
    *it_p = it;
    return 0;
}

int mp_pool_imap(mp_pool_t *pool, const char *name, mp_generator_fn gen, void *arg,
                 size_t chunksize, mp_imap_t **it_p)
{
    return imap_new(pool, name, gen, arg, chunksize, false, it_p);
}

int mp_pool_imap_unordered(mp_pool_t *pool, const char *name, mp_generator_fn gen, void *arg,
                           size_t chunksize, mp_imap_t **it_p)
{
    return imap_new(pool, name, gen, arg, chunksize, true, it_p);
}

/* The chunk the reader may read now, or NULL. */
static cres_t *readable(mp_imap_t *it)
{
    cres_t *r = it->job->cres_head;
    if (!r)
        return NULL;
    return it->job->unordered || r->seq == it->read_seq ? r : NULL;
}

static bool imap_can_read(void *arg)
{
    mp_imap_t *it = arg;
    mp_async_t *job = it->job;
    return it->cur || readable(it) ||
           (job->input_done && !job->in->head && it->returned >= job->total &&
            job->outstanding == 0);
}

/* Positions it->cur on an unread item; false at the end. Mutex held. */
static bool imap_advance(mp_imap_t *it)
{
    mp_async_t *job = it->job;
    if (it->cur && it->pos >= it->cur->items->len) {
        mp_items_destroy(&it->cur->items);
        free(it->cur);
        it->cur = NULL;
        job->unread--;
        pthread_cond_broadcast(&job->pool->cond); /* the feeder may go on */
        mp__pool_wake(job->pool);                 /* and the I/O thread send */
    }
    if (!it->cur) {
        cres_t *r = readable(it);
        if (!r)
            return false;
        job->cres_head = r->next;
        if (!job->cres_head)
            job->cres_tail = NULL;
        r->next = NULL;
        it->cur = r;
        it->pos = 0;
        it->read_seq++;
    }
    return true;
}

/* Reads the next item into *rd (borrowed) or reports its error. */
static int imap_take(mp_imap_t *it, int timeout_ms, mp__rd_t *rd)
{
    if (!it)
        return MP_EINVAL;
    mp_pool_t *pool = it->job->pool;
    struct timespec ts;
    const struct timespec *deadline = abs_deadline(timeout_ms, &ts);
    pthread_mutex_lock(&pool->mutex);
    int rc;
    for (;;) {
        if (imap_advance(it))
            break;
        if (it->job->input_done && it->returned >= it->job->total && !it->job->in->head) {
            rc = it->job->input_error ? it->job->input_error : MP_EEOF;
            pthread_mutex_unlock(&pool->mutex);
            return rc;
        }
        if ((rc = wait_until(pool, deadline, imap_can_read, it))) {
            pthread_mutex_unlock(&pool->mutex);
            return rc;
        }
    }
    size_t k = it->pos++;
    it->returned++;
    const mp_task_error_t *e = mp_items_error(it->cur->items, k);
    if (it->has_error)
        mp__task_error_free(&it->last_error);
    it->has_error = false;
    if (e) {
        rc = e->code;
        if (mp__task_error_copy(&it->last_error, e) == 0) {
            it->last_error.index = it->cur->first + k;
            it->has_error = true;
        }
    } else {
        const void *p;
        size_t n;
        mp_items_packed(it->cur->items, k, &p, &n);
        mp__rd_init(rd, p, n);
        rc = 0;
    }
    pthread_mutex_unlock(&pool->mutex);
    return rc;
}

int mp_imap_next(mp_imap_t *it, int timeout_ms, mp_obj_t **value_p)
{
    if (!value_p)
        return MP_EINVAL;
    mp__rd_t r;
    int rc = imap_take(it, timeout_ms, &r);
    /* the bytes stay valid: only this reader frees the chunk it reads */
    return rc ? rc : mp__rd_obj(&r, value_p);
}

int mp_imap_next_int(mp_imap_t *it, int timeout_ms, int64_t *value)
{
    if (!value)
        return MP_EINVAL;
    mp__rd_t r;
    int rc = imap_take(it, timeout_ms, &r);
    return rc ? rc : mp__rd_int(&r, value);
}

const mp_task_error_t *mp_imap_error(const mp_imap_t *it)
{
    return it && it->has_error ? &it->last_error : NULL;
}

void mp_imap_progress(const mp_imap_t *it, size_t *returned, size_t *submitted)
{
    if (!it)
        return;
    pthread_mutex_lock(&it->job->pool->mutex);
    if (returned)
        *returned = it->returned;
    if (submitted)
        *submitted = it->job->total;
    pthread_mutex_unlock(&it->job->pool->mutex);
}

void mp_imap_destroy(mp_imap_t **it_p)
{
    if (!it_p || !*it_p)
        return;
    mp_imap_t *it = *it_p;
    mp_async_t *job = it->job;
    mp_pool_t *pool = job->pool;
    mp__pool_stop_feeder(pool, job); /* the generator is not running after this */
    pthread_mutex_lock(&pool->mutex);
    job->input_done = true;
    while (job->in->head) { /* input never sent */
        cres_t *r = job->in->head;
        job->in->head = r->next;
        mp_items_destroy(&r->items);
        free(r);
    }
    job->in->tail = NULL;
    job->in->count = 0;
    job->in->bytes = 0;
    if (job->done >= job->total && !job->ready) {
        job->ready = true;
        pool->active_jobs--;
        job->refs--; /* the pool's reference: nothing more will arrive */
        pthread_cond_broadcast(&pool->cond);
    }
    if (it->cur) {
        mp_items_destroy(&it->cur->items);
        free(it->cur);
    }
    if (it->has_error)
        mp__task_error_free(&it->last_error);
    job->released = true;
    mp__pool_job_unref(job);
    pthread_mutex_unlock(&pool->mutex);
    free(it);
    *it_p = NULL;
}
