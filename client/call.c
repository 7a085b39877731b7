/*  call.c - the pool's calls: apply, map and starmap, blocking and async
    (Python's Pool.apply[_async], map[_async], starmap[_async]).

    Each call makes a job (job.c) and puts it on the send queue (send.c);
    the I/O thread does the rest. A blocking map borrows the caller's list
    instead of copying it (the caller waits, so the list outlives every
    read of it); a blocking apply first tries the caller's own session
    (sync.c), which costs no hand-off to the I/O thread and back. The
    waiting and reading of results is AsyncResult's (async.c).

    Invariants: arguments are checked before anything is queued; a call
    that cannot be queued frees its job and returns the error (nothing
    half-made is left behind). The top of the client: nothing calls in
    here but the caller.
*/
#include <stdlib.h>
#include <string.h>

#include "callbacks.h"
#include "codec/items_impl.h"
#include "job.h"
#include "map_out.h"
#include "mp/error.h"
#include "pool_impl.h"
#include "send.h"
#include "sync.h"

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
    mp_async_t *job = mp__pool_job_new(pool, JOB_APPLY, name, MPP_MODE_STAR, o);
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
    mp_async_t *job = mp__pool_job_new(pool, JOB_MAP, name, mode, o);
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
        pthread_mutex_lock(&pool->mutex);
        job->chunksize = mp__pool_chunk_limit(pool, job->chunksize);
        pthread_mutex_unlock(&pool->mutex);
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
    /* the caller's own session when it is free (sync.c): no hand-off to
       the I/O thread and back */
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

int mp_async_cancel(mp_async_t *job)
{
    if (!job)
        return MP_EINVAL;
    mp_pool_t *pool = job->pool;
    ready_t ready = {0};
    pthread_mutex_lock(&pool->mutex);
    mp__pool_cancel(pool, job, &ready);
    pthread_mutex_unlock(&pool->mutex);
    if (ready.n)
        mp__pool_run_callbacks(pool, ready.v, ready.n);
    free(ready.v);
    return 0;
}
