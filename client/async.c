/*  async.c - AsyncResult: waiting for a call and reading its results
    (mp_async_wait, _ready, _successful, _get, _get_obj, _error,
    _progress, _destroy), and the waits the imap reader (imap.c) shares.

    Invariants: a job's fields are read under the pool's mutex; waits are
    on the pool's condition (broadcast on every progress) against
    CLOCK_MONOTONIC deadlines; destroying a handle drops the caller's
    reference only (the pool's goes when the job is ready and its callback
    ran), so it is safe at any time.
*/
#include <errno.h>
#include <time.h>

#include "base/base.h"
#include "async.h"
#include "callbacks.h"
#include "job.h"
#include "mp/error.h"
#include "pool_impl.h"

/* Waits on the pool's condition until pred(arg) or the deadline. Mutex held. */
int mp__pool_wait_until(mp_pool_t *pool, const struct timespec *deadline, bool (*pred)(void *),
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
    return mp__pool_visible(arg);
}

int mp_async_wait(mp_async_t *job, int timeout_ms)
{
    if (!job)
        return MP_EINVAL;
    struct timespec ts;
    pthread_mutex_lock(&job->pool->mutex);
    int rc = mp__pool_wait_until(job->pool, mp__deadline(timeout_ms, &ts), job_ready, job);
    pthread_mutex_unlock(&job->pool->mutex);
    return rc;
}

bool mp_async_ready(mp_async_t *job)
{
    if (!job)
        return false;
    pthread_mutex_lock(&job->pool->mutex);
    bool r = mp__pool_visible(job);
    pthread_mutex_unlock(&job->pool->mutex);
    return r;
}

bool mp_async_successful(mp_async_t *job)
{
    if (!job)
        return false;
    pthread_mutex_lock(&job->pool->mutex);
    bool r = mp__pool_visible(job) && job->first_code == 0;
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
        mp__pool_visible(job) && job->results ? mp_items_error_at(job->results, 0) : NULL;
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
