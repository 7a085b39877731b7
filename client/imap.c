/*  imap.c - imap and imap_unordered: results read one by one while the
    input is still being produced (Python's Pool.imap[_unordered]).

    The input comes from the caller's generator, called by a feeder thread
    of the job's own (feeder.c); the I/O thread sends it as the window
    allows (send.c). Finished chunks wait in the job's list (job.c: sorted
    by sequence for imap, in arrival order for imap_unordered) until this
    reader takes them, one chunk at a time (it->cur).

    Invariants: only the reader frees the chunk it reads, so the bytes of
    a value it returned stay valid until its next call; a chunk read to
    its end frees a window slot (the feeder may pull, the I/O thread send);
    the end (MP_EEOF, or the generator's error) comes after every item the
    generator gave has been returned, each with its value or its error.
*/
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/base.h"
#include "async.h"
#include "codec/items_impl.h"
#include "feeder.h"
#include "job.h"
#include "mp/error.h"
#include "pool_impl.h"
#include "send.h"

struct mp_imap {
    mp_async_t *job;
    cres_t *cur;
    size_t pos;
    size_t read_seq; /* ordered: the next chunk to read */
    size_t returned;
    size_t last_index; /* of the item last returned; SIZE_MAX: none yet */
    mp_task_error_t last_error;
    bool has_error;
};

static int imap_new(mp_pool_t *pool, const char *name, mp_generator_fn gen, void *arg,
                    size_t chunksize, bool unordered, mp_imap_t **it_p)
{
    if (!pool || !gen || !it_p)
        return MP_EINVAL;
    mp_imap_t *it = calloc(1, sizeof *it);
    mp_async_t *job = mp__pool_job_new(pool, JOB_IMAP, name, MPP_MODE_MAP, NULL);
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
    pthread_mutex_lock(&pool->mutex);
    job->chunksize = mp__pool_chunk_limit(pool, chunksize ? chunksize : 1);
    pthread_mutex_unlock(&pool->mutex);
    it->job = job;
    it->last_index = SIZE_MAX;
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

/* The generator's failure, as mp_imap_error reports it (mutex held). */
static void generator_error(mp_imap_t *it, int code)
{
    mp_async_t *job = it->job;
    mp_task_error_t e = {.code = code,
                         .task_code = code,
                         .message = job->input_message ? job->input_message : mp_strerror(code),
                         .task = job->name,
                         .host = "",
                         .pid = (int)getpid(),
                         .index = job->total};
    if (it->has_error)
        mp__task_error_free(&it->last_error);
    it->has_error = mp__task_error_copy(&it->last_error, &e) == 0;
}

/* Reads the next item into *rd (borrowed) or reports its error. */
static int imap_take(mp_imap_t *it, int timeout_ms, mp__rd_t *rd)
{
    if (!it)
        return MP_EINVAL;
    mp_pool_t *pool = it->job->pool;
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(timeout_ms, &ts);
    pthread_mutex_lock(&pool->mutex);
    int rc;
    for (;;) {
        if (imap_advance(it))
            break;
        if (it->job->input_done && it->returned >= it->job->total && !it->job->in->head) {
            rc = it->job->input_error ? it->job->input_error : MP_EEOF;
            if (rc != MP_EEOF)
                generator_error(it, rc);
            pthread_mutex_unlock(&pool->mutex);
            return rc;
        }
        if ((rc = mp__pool_wait_until(pool, deadline, imap_can_read, it))) {
            pthread_mutex_unlock(&pool->mutex);
            return rc;
        }
    }
    size_t k = it->pos++;
    it->returned++;
    it->last_index = it->cur->first + k;
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

size_t mp_imap_index(const mp_imap_t *it)
{
    return it ? it->last_index : SIZE_MAX;
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
    if (job->done >= job->total && !job->finished) {
        /* nothing more will arrive: the pool lets go of it, and the I/O
           thread must not find it in its send queue (an imap whose
           generator gave nothing was still there: freed under it) */
        if (job->in_send_queue)
            mp__pool_send_queue_remove(pool, job);
        job->finished = job->ready = true;
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
