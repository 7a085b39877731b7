/*  callbacks.c - the thread that runs the calls' callbacks.

    A call with a callback (mp_call_options_t: callback / error_callback)
    ends on the I/O thread, with the pool's mutex held; its callback must
    run on neither. A thread of its own, started with the first call that
    has one, runs them in the order their calls ended (cbq, a FIFO); a slow
    callback delays the callbacks after it, never the I/O thread (whose
    heartbeats keep the pool's session alive).

    A job with a callback becomes ready (mp_async_ready, and every wait)
    once its callback returned, as in CPython: a caller woken by its result
    sees what the callback wrote. Inside the callback, the job's own handle
    reads as ready (mp__pool_visible), so the callback can read its results.

    Invariants: a callback runs without the mutex, exactly once, then its
    job is made ready and the pool's reference to it is dropped; a job without a callback has
    that reference dropped at once. When the thread cannot be started or
    the queue cannot grow, the caller of mp__pool_run_callbacks runs the
    callback itself: late, never lost. mp_pool_join waits until the queue
    is empty and no callback runs (mp__pool_callbacks_idle).
*/
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "callbacks.h"
#include "job.h"
#include "pool_impl.h"

static bool has_callback(const mp_async_t *job)
{
    return job->call.callback || job->call.error_callback;
}

/* The job whose callback this thread runs (NULL: none): its own handle
   reads as ready inside its callback (async.c, mp__pool_visible). */
static _Thread_local const mp_async_t *running;

/* Runs job's callback (mutex not held), then makes the job ready and
   drops the pool's reference. */
static void run_callback(mp_pool_t *pool, mp_async_t *job)
{
    int rc = 0;
    const mp_task_error_t *e = job->results ? mp_items_error_at(job->results, 0) : NULL;
    const mp_async_t *outer = running; /* a callback run by a caller inside a callback */
    running = job;
    if (e && job->call.error_callback)
        rc = job->call.error_callback(job, e, job->call.arg);
    else if (!e && job->call.callback)
        rc = job->call.callback(job, job->call.arg);
    running = outer;
    pthread_mutex_lock(&pool->mutex);
    job->ready = true;
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

bool mp__pool_visible(const mp_async_t *job)
{
    return job->ready || (job->finished && job == running);
}

bool mp__pool_callbacks_idle(const mp_pool_t *pool)
{
    return pool->cbq_n == 0 && !pool->cb_busy;
}

bool mp__pool_on_callback_thread(const mp_pool_t *pool)
{
    return pool->cb_started && pthread_equal(pthread_self(), pool->cb_thread);
}
