/*  feeder.c - the input side of an imap: one feeder thread per imap.

    An imap's generator is the caller's code and may block (on stdin, say),
    so neither the caller nor the I/O thread calls it: a thread of the
    job's own does, without the mutex, and queues whole chunks of input
    (job->in) for the I/O thread (send.c), which sends what the window
    allows, batching queued chunks (mp__pool_imap_batch).

    Invariants: the feeder pulls only while the imap holds fewer than
    window + 1 batches in flight, unread or queued, so an imap of any
    length holds bounded memory; it holds a reference to its job until it
    is joined (mp__pool_stop_feeder); after that the generator never runs
    again. Input that arrives after the job ended (the broker was lost) is
    dropped.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "codec/items_impl.h"
#include "feeder.h"
#include "mp/error.h"
#include "mp/task.h"
#include "pool_impl.h"

#define WHO "mp-pool"
/* imap: a coalesced chunk holds at most about this much of the job's work,
   at the rate its results come back */
#define BATCH_BUDGET_NS 5000000u

/* How many queued chunks of an imap may travel as one chunk on the wire: at
   most MAX_COALESCE items (one chunk when chunks are bigger), and at most
   what the job finishes in BATCH_BUDGET_NS at the rate its results come
   back. So fast items travel by the hundred while slow ones still go one by
   one to whichever executor is free (load-balancing as with chunksize 1).
   Before the first result: one chunk. */
size_t mp__pool_imap_batch(const mp_async_t *job)
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
    return job->in->count < mp__pool_imap_batch(job) * (room + 1) &&
           job->in->bytes < (size_t)MAX_COALESCE_BYTES * (room + 1);
}

/* The message mp_generator_fail gave on this thread (a feeder thread runs
   one generator: it takes the message after each call that failed). */
static _Thread_local char *gen_message;

int mp_generator_fail(int code, const char *fmt, ...)
{
    free(gen_message);
    gen_message = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&gen_message, fmt, ap) < 0)
            gen_message = NULL;
        va_end(ap);
    }
    if (gen_message && strlen(gen_message) >= MP_TASK_MESSAGE_MAX) /* as a task's */
        gen_message[MP_TASK_MESSAGE_MAX - 1] = '\0';
    return code < 0 && code != MP_EEOF ? code : MP_EINVAL;
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
            if ((rc == 0 || rc == MP_EEOF) && gen_message) { /* a message, then no failure */
                free(gen_message);
                gen_message = NULL;
            }
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
                /* its own text (mp_generator_fail), else its code's name
                   when it is one of ours or an errno */
                const char *text = mp_strerror(rc);
                bool known = strcmp(text, mp_strerror(-999999)) != 0;
                free(job->input_message);
                job->input_message = gen_message;
                gen_message = NULL;
                if (job->input_message)
                    text = job->input_message;
                mp__log(MP_LOG_WARN, WHO, "imap %s: the generator failed with code %d%s%s",
                        job->name, rc, known || job->input_message ? ": " : "",
                        known || job->input_message ? text : "");
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
