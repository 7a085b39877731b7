/*  mp/pool.h - Pool: Python's multiprocessing.Pool, local or distributed.

    mp_pool_new() with no broker address (and no MP_BROKER in the
    environment) starts an embedded pool: a broker thread inside this
    program and one worker process forked from it with N executors, talking
    over ipc://. With an address ("tcp://host:5555") the same calls run on a
    cluster of mp-worker processes behind mp-broker. Tasks are named C
    functions (mp/task.h); the embedded pool's executors are forked from this
    program, so every MP_TASK it defines is available to them.

        mp_pool_t *pool;
        mp_pool_new(NULL, &pool);                  // embedded, cpu_count executors
        mp_items_t *in = mp_items_new(), *out = NULL;
        for (int i = 0; i < 1000; i++) mp_items_add_int(in, i);
        mp_pool_map(pool, "square", in, 0, &out);  // results in input order
        ...
        mp_pool_destroy(&pool);                    // no process, file or shm left

    Python parity: apply, apply_async, map, map_async, imap, imap_unordered,
    starmap, starmap_async, close, terminate, join; chunksize (0 = automatic,
    ceil(n / (4 * executors)) as Python); initializer + initargs;
    maxtasksperchild; callback + error_callback; AsyncResult get(timeout),
    wait(timeout), ready, successful. Beyond Python: a killed or crashed
    executor never hangs a call (retried, then MP_EWORKERLOST naming the
    signal); imap pulls its input lazily through a bounded window; a running
    map reports done/total; errors carry code, message, task, host and pid.

    Results: a call that completes returns 0 when every item succeeded, or
    the code of its first failed item (MP_ETASK, MP_EWORKERLOST,
    MP_EUNKNOWNTASK, MP_EBADARGS, MP_EBROKERLOST, MP_ECANCELLED); the results
    are delivered in both cases, failed items read as nil, and
    mp_items_error() says why each failed.

    Thread-safety: every call may be made from any thread. Callbacks run on
    the pool's I/O thread: they must not wait for another result of the same
    pool (as in Python, that would wait forever). Fork: an embedded pool
    forks its worker process before it creates its ZeroMQ context; never
    fork a process that has a live pool unless the child only execs.
    Signals: none used; SIGPIPE is never raised.
*/
#ifndef MP_POOL_H_INCLUDED
#define MP_POOL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "mp/export.h"
#include "mp/items.h"
#include "mp/obj.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_pool mp_pool_t;
typedef struct mp_async mp_async_t;
typedef struct mp_imap mp_imap_t;

typedef struct {
    const char *broker;       /* NULL: $MP_BROKER if set, else an embedded pool */
    int processes;            /* embedded: executors (0: mp_cpu_count()) */
    const char *initializer;  /* task run once per executor before this pool's tasks */
    const mp_obj_t *initargs; /* its arguments: an array, or NULL */
    int maxtasksperchild;     /* embedded: replace an executor after N tasks (0: never);
                                 as in Python an apply is one task, a map's
                                 chunk one (applies then travel one by one) */
    int window;               /* chunks in flight (0: max(8, 4 * executors)) */
    int heartbeat_ms;         /* 0: 1000 */
    int connect_timeout_ms;   /* broker handshake / embedded start-up (0: 10000) */
    /* CURVE (docs/PROTOCOL.md 10), for a broker that speaks it, both or
       neither: this client's certificate (a NAME.key_secret file) and the
       broker's public key (40 Z85 characters, or its NAME.key file). NULL:
       $MP_CURVE_KEY and $MP_CURVE_SERVER_KEY when set. Embedded: unused. */
    const char *curve_key;
    const char *curve_server_key;
    /* The default time limit of one task (one item of a map), in ms: a task
       still running after it is killed with its executor, which is
       replaced, and its item fails with MP_ETIMELIMIT naming the limit; the
       call's other items complete. 0: none. A call may set its own. */
    int time_limit_ms;
    /* A cluster pool whose broker is lost (silent, or stopping) keeps every
       call in flight and, when a broker answers at the same address again,
       sends what was not answered once more; results are delivered once
       (docs/PROTOCOL.md 7.1). This is how long it waits before the calls
       fail with MP_EBROKERLOST (0: 30000; < 0: at once, as before). */
    int reconnect_timeout_ms;
    /* An embedded pool's broker serves GET /metrics on this "HOST:PORT"
       (loopback; port 0: a free one, mp_pool_http_address says which), as
       mp-broker --http does (docs/CLUSTER.md, "Metrics"). NULL: none. */
    const char *http;
} mp_pool_options_t;

/* Called when a call completes, on the pool's callback thread (one per
   pool, started with the first call that has a callback): callbacks run
   one at a time, in the order their calls completed, as in Python. A slow
   callback delays only the callbacks after it, not the pool; a nonzero
   return is counted (mp_pool_callback_errors) and logged. As in CPython,
   the result becomes ready (mp_async_ready, mp_async_wait and mp_async_get
   return) once its callback has returned, so a caller woken by it sees
   what the callback wrote; inside the callback its own result reads as
   ready. A callback must not wait for another call that has a callback of
   its own: callbacks run one at a time, so that one cannot become ready
   (CPython's result handler thread deadlocks the same way). mp_pool_join
   waits for every callback. A callback must not destroy its pool. */
typedef int (*mp_callback_fn)(mp_async_t *result, void *arg);
/* Called instead of callback when the call failed, with its first error. */
typedef int (*mp_error_callback_fn)(mp_async_t *result, const mp_task_error_t *error, void *arg);

typedef struct {
    size_t chunksize;  /* 0: automatic (imap: 1, as Python) */
    int time_limit_ms; /* per task, as mp_pool_options_t's: 0 the pool's, < 0 none */
    mp_callback_fn callback;
    mp_error_callback_fn error_callback;
    void *arg; /* passed to both */
} mp_call_options_t;

/* Generator for imap: append exactly one item to out and return 0, or
   return MP_EEOF at the end (any other negative code ends the input, and
   mp_imap_next returns that code instead of MP_EEOF once the results of the
   items produced before it are read). Called on a thread of the iterator's
   own, only as the window has room, so it may block (reading stdin, say)
   without stalling the pool; mp_imap_destroy waits for a running call. */
typedef int (*mp_generator_fn)(void *arg, mp_items_t *out);
/* A generator's failure with a message (Python: the exception it raised):
   `return mp_generator_fail(code, "bad line %zu", n);`. The reader's
   mp_imap_next returns code at the end and mp_imap_error describes it
   (code, message, task name, this process's pid, index: the input index
   the generator failed to produce). Returns code, or MP_EINVAL when code
   is not negative or is MP_EEOF. Call it only from the generator. */
MP_EXPORT int mp_generator_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the pool ------------------------------------------------------------- */

/* options may be NULL. On success *pool_p is a new pool the caller owns.
   With a broker address, fails at once with MP_EINVAL (not a broker
   address) or MP_EHOSTUNKNOWN (its host does not resolve), after
   connect_timeout_ms with MP_EBROKERUNREACHABLE (nothing answered there),
   MP_EAUTH as soon as the broker refuses the handshake (a CURVE key it
   does not admit as a client, no keys for a CURVE broker, the wrong
   server key: docs/PROTOCOL.md 10), or MP_EBROKERLOST (it answered, then
   went away); the reason is also
   logged (WARN); mp_broker_address_check (mp/broker.h) is the check.
   Embedded: MP_EBROKERLOST (its worker did not start in
   time), -errno of a failed bind/fork. MP_EINVAL (also a negative
   processes, maxtasksperchild or window, as Python's ValueError; the
   argument is named in the log), MP_ENOMEM. */
MP_EXPORT int mp_pool_new(const mp_pool_options_t *options, mp_pool_t **pool_p);

/* Terminates (outstanding calls end with MP_ECANCELLED), stops the embedded
   broker and workers, frees everything. Destroy the pool's AsyncResults and
   iterators first. Safe on NULL and twice. */
MP_EXPORT void mp_pool_destroy(mp_pool_t **pool_p);

/* No more calls (they fail with MP_ESTATE); outstanding ones finish. */
MP_EXPORT int mp_pool_close(mp_pool_t *pool);
/* Ends every outstanding call now with MP_ECANCELLED and stops the embedded
   workers (cluster workers finish what they run; results are dropped). */
MP_EXPORT int mp_pool_terminate(mp_pool_t *pool);
/* After close or terminate: waits for outstanding calls, then for the
   embedded workers to exit. MP_ESTATE when neither was called. */
MP_EXPORT int mp_pool_join(mp_pool_t *pool);

/* Executors serving the pool right now (embedded: its own; cluster: all). */
MP_EXPORT int mp_pool_processes(const mp_pool_t *pool);
/* The broker's STATUS map (docs/PROTOCOL.md 4.3); caller owns *status_p. */
MP_EXPORT int mp_pool_status(mp_pool_t *pool, int timeout_ms, mp_obj_t **status_p);
/* Drains the cluster's worker worker_id (STATUS's "id"): the broker gives
   it nothing new; once the dispatches it holds are answered it is told to
   stop, and it exits (docs/CLUSTER.md 4). *status_p: the broker's STATUS
   right after, where that worker shows "draining": true (absent: no such
   worker). Errors as mp_pool_status's; MP_EINVAL for id 0. */
MP_EXPORT int mp_pool_drain_worker(mp_pool_t *pool, uint64_t worker_id, int timeout_ms,
                                   mp_obj_t **status_p);
/* Callbacks that returned nonzero so far. */
MP_EXPORT size_t mp_pool_callback_errors(const mp_pool_t *pool);

/* ---- durable jobs (docs/JOURNAL.md): kept on the broker's disk ---------------

   A durable job is a map whose input and results the broker keeps in its
   journal (mp-broker --journal DIR): it runs to its end whether or not its
   submitter stays, across broker restarts, and any client that knows its
   name collects the results, each item once, in input order. Names are the
   caller's (1..64 bytes: "nightly-2026-12-05", "host:pid:n"). */
typedef struct {
    size_t chunksize;  /* 0: automatic, from the item count alone (about 64
                          chunks of at least 64 items), so that the job sent
                          again is cut the same way: a chunk size other than
                          the first submission's is refused (MP_EBADREQUEST) */
    int time_limit_ms; /* per task, as mp_call_options_t's: 0 the pool's, < 0 none */
    bool star;         /* items are argument tuples (starmap) */
    int timeout_ms;    /* how long without progress (a STORED) before giving
                          up, across broker restarts; 0: the pool's
                          reconnect_timeout_ms (30 s) */
} mp_submit_options_t;

/* Submits job: task name over items. Returns once every chunk is on the
   broker's disk (STORED), not when it ran. Sending it again is harmless:
   the broker keeps each chunk once. MP_ENOJOURNAL (the broker has no
   journal: an embedded pool's never has), MP_EBADREQUEST (the name is
   another key's, or was used for another input size), MP_EOVERLOADED
   (the journal is full), MP_EUNKNOWNTASK, MP_EBROKERLOST (no progress for
   timeout_ms), MP_EINVAL (a bad name, no items). */
MP_EXPORT int mp_pool_submit(mp_pool_t *pool, const char *job, const char *name,
                             const mp_items_t *items, const mp_submit_options_t *options);
/* Collects job's results: waits until every chunk is answered (timeout_ms,
   < 0: for ever), then *results_p (caller owns) holds one result per item
   in input order, failed items as errors (as mp_pool_map's). MP_ENOENT:
   no such job (or another key's); MP_ETIMEDOUT: not done in time (the
   job goes on; fetch again). The job stays until mp_pool_forget. */
MP_EXPORT int mp_pool_fetch(mp_pool_t *pool, const char *job, int timeout_ms,
                            mp_items_t **results_p);
/* Withdraws job (what runs is cancelled) and deletes it from the journal.
   0, or MP_ENOENT: no such job. */
MP_EXPORT int mp_pool_forget(mp_pool_t *pool, const char *job);
/* An embedded pool's metrics address ("HOST:PORT", options.http), or NULL. */
MP_EXPORT const char *mp_pool_http_address(const mp_pool_t *pool);

/* ---- calls ---------------------------------------------------------------- */

/* apply(name, *args): args is an array (NULL: no arguments). Blocks; on
   success *result_p is the value (caller owns). On failure returns the
   error code and leaves *result_p alone (use apply_async + mp_async_error
   for the message). */
MP_EXPORT int mp_pool_apply(mp_pool_t *pool, const char *name, const mp_obj_t *args,
                            mp_obj_t **result_p);
MP_EXPORT int mp_pool_apply_async(mp_pool_t *pool, const char *name, const mp_obj_t *args,
                                  const mp_call_options_t *options, mp_async_t **result_p);

/* map(name, items): each item is the single argument of one call. Blocks;
   *results_p (caller owns) holds one result per item, in input order. The
   input is copied: it may be freed as soon as the call returns. */
MP_EXPORT int mp_pool_map(mp_pool_t *pool, const char *name, const mp_items_t *items,
                          size_t chunksize, mp_items_t **results_p);
MP_EXPORT int mp_pool_map_async(mp_pool_t *pool, const char *name, const mp_items_t *items,
                                const mp_call_options_t *options, mp_async_t **result_p);
/* starmap: each item is an argument tuple (mp_items_add_tuple). */
MP_EXPORT int mp_pool_starmap(mp_pool_t *pool, const char *name, const mp_items_t *items,
                              size_t chunksize, mp_items_t **results_p);
MP_EXPORT int mp_pool_starmap_async(mp_pool_t *pool, const char *name, const mp_items_t *items,
                                    const mp_call_options_t *options, mp_async_t **result_p);

/* imap / imap_unordered: input from gen, results through mp_imap_next, in
   input order (imap) or as they complete (imap_unordered). At most `window`
   chunks are in flight or finished-but-unread, so memory stays constant
   whatever the input's length. chunksize 0 means 1, as Python. */
MP_EXPORT int mp_pool_imap(mp_pool_t *pool, const char *name, mp_generator_fn gen, void *gen_arg,
                           size_t chunksize, mp_imap_t **it_p);
MP_EXPORT int mp_pool_imap_unordered(mp_pool_t *pool, const char *name, mp_generator_fn gen,
                                     void *gen_arg, size_t chunksize, mp_imap_t **it_p);

/* Next result: 0 and *value_p (caller owns); MP_EEOF when every result was
   returned; MP_ETIMEDOUT; or the item's error code (*value_p untouched,
   mp_imap_error tells why; the iteration goes on). */
MP_EXPORT int mp_imap_next(mp_imap_t *it, int timeout_ms, mp_obj_t **value_p);
/* Same, as an int (MP_ETYPE when the result is not one). */
MP_EXPORT int mp_imap_next_int(mp_imap_t *it, int timeout_ms, int64_t *value);
/* The error of the item mp_imap_next last reported failed, or NULL; at the
   end, the generator's failure (mp_generator_fail). */
MP_EXPORT const mp_task_error_t *mp_imap_error(const mp_imap_t *it);
/* The input index (0-based, in the generator's order) of the item
   mp_imap_next last returned, with its value or its error: how
   imap_unordered's results are paired with their inputs. SIZE_MAX before
   the first. */
MP_EXPORT size_t mp_imap_index(const mp_imap_t *it);
/* Items produced so far and results returned so far. */
MP_EXPORT void mp_imap_progress(const mp_imap_t *it, size_t *returned, size_t *submitted);
/* Stops pulling input, drops what is not read. Safe on NULL and twice. */
MP_EXPORT void mp_imap_destroy(mp_imap_t **it_p);

/* ---- AsyncResult ------------------------------------------------------------ */

/* 0 when ready, MP_ETIMEDOUT. */
MP_EXPORT int mp_async_wait(mp_async_t *result, int timeout_ms);
MP_EXPORT bool mp_async_ready(mp_async_t *result);
/* True when ready and every item succeeded. */
MP_EXPORT bool mp_async_successful(mp_async_t *result);
/* Waits up to timeout_ms; then *results_p is the results (borrowed: valid
   until mp_async_destroy) and the return value is 0 or the first item's
   error code. MP_ETIMEDOUT leaves *results_p alone. */
MP_EXPORT int mp_async_get(mp_async_t *result, int timeout_ms, const mp_items_t **results_p);
/* For apply_async: the single value, decoded (caller owns). */
MP_EXPORT int mp_async_get_obj(mp_async_t *result, int timeout_ms, mp_obj_t **value_p);
/* The first error (lowest index), or NULL (not ready, or none). */
MP_EXPORT const mp_task_error_t *mp_async_error(mp_async_t *result);
/* Items finished and items in the call, while it runs. */
MP_EXPORT void mp_async_progress(mp_async_t *result, size_t *done, size_t *total);
/* Withdraws the call: items not sent yet fail at once, queued ones are
   dropped by the broker, running ones are killed on their workers (the
   executor is replaced); each of those items ends with MP_ECANCELLED,
   items already done keep their results, and the call becomes ready.
   An apply that left batched with other applies (under a backlog)
   completes instead, unless every other call of its batch is done (a
   stuck apply's batch-mates are answered ahead of it). 0 (also when the
   call was ready), MP_EINVAL. */
MP_EXPORT int mp_async_cancel(mp_async_t *result);
/* Releases the handle; a call still running completes unobserved. */
MP_EXPORT void mp_async_destroy(mp_async_t **result_p);

#ifdef __cplusplus
}
#endif

#endif
