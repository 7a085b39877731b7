/*  mp/queue.h - Queue, SimpleQueue, JoinableQueue: many-to-many process
    queues in shared memory.

    As Python's multiprocessing queues, without their feeder thread and pipe:
    items are msgpack records (mp_obj_t) in a shared-memory ring guarded by
    a robust mutex. put() copies the item into the ring and returns; there is
    no background flush to wait for, so joining a producer before draining
    the queue cannot deadlock (cpython gh-73983).

    Capacity is bounded twice: by item count (maxsize, 0 = no count bound,
    Python's default) and by bytes (capacity; each item takes its encoded
    size + 4). A put blocks while either bound is reached. An item that could
    never fit (encoded size + 4 > capacity) fails at once with MP_E2BIG.

    JoinableQueue adds task_done()/join(): join returns once every item ever
    put has been marked done. SimpleQueue is a Queue without maxsize or
    timeouts in Python; here it is the same object with defaults.

    If a process dies inside a queue operation, the next one recovers the
    mutex and rebuilds the ring's item count from its records: an item being
    put or got at the moment of death is either wholly in the queue or not.

    Thread-safety: thread-safe. Fork: shared with children forked after
    creation; close() is per process. Signals: not async-signal-safe.
*/
#ifndef MP_QUEUE_H_INCLUDED
#define MP_QUEUE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "mp/export.h"
#include "mp/obj.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_queue mp_queue_t;

typedef struct {
    size_t maxsize;  /* max items; 0: no count bound */
    size_t capacity; /* ring bytes; 0: MP_QUEUE_DEFAULT_CAPACITY */
} mp_queue_opts_t;

#define MP_QUEUE_DEFAULT_CAPACITY (1u << 20)

/* opts may be NULL. NULL when out of memory or capacity > 4 GiB. */
MP_EXPORT mp_queue_t *mp_queue_new(const mp_queue_opts_t *opts);
MP_EXPORT mp_queue_t *mp_simple_queue_new(void);
MP_EXPORT mp_queue_t *mp_joinable_queue_new(const mp_queue_opts_t *opts);
/* Unmaps this process's view; other processes keep theirs. */
MP_EXPORT void mp_queue_destroy(mp_queue_t **q_p);

/* Puts a copy of item (the caller keeps item). 0; MP_EFULL (no room before
   the timeout, or at once for timeout 0: Python's put_nowait); MP_E2BIG;
   MP_ECLOSED; MP_EINVAL; MP_ENOMEM. */
MP_EXPORT int mp_queue_put(mp_queue_t *q, const mp_obj_t *item, int timeout_ms);
/* Same with an already encoded msgpack value (not validated here; get
   validates). */
MP_EXPORT int mp_queue_put_bytes(mp_queue_t *q, const void *data, size_t size, int timeout_ms);

/* Takes the oldest item: *item_p is a new object the caller owns. 0;
   MP_EEMPTY (nothing before the timeout; at once for timeout 0); MP_EBADMSG
   (the record was not valid msgpack: it is dropped); MP_ECLOSED; MP_ENOMEM. */
MP_EXPORT int mp_queue_get(mp_queue_t *q, mp_obj_t **item_p, int timeout_ms);
/* Same, raw: *data_p is malloc'd (caller frees), *size_p its size. */
MP_EXPORT int mp_queue_get_bytes(mp_queue_t *q, void **data_p, size_t *size_p, int timeout_ms);

/* Snapshots (may be stale by the time they return, as in Python). */
MP_EXPORT size_t mp_queue_qsize(mp_queue_t *q);
MP_EXPORT bool mp_queue_empty(mp_queue_t *q);
MP_EXPORT bool mp_queue_full(mp_queue_t *q);

/* This process will not use the queue again: later put/get return
   MP_ECLOSED here; other processes are unaffected. */
MP_EXPORT int mp_queue_close(mp_queue_t *q);

/* JoinableQueue only (MP_EINVAL otherwise). task_done: 0, or MP_EVALUE
   when called more times than items were put. join: 0 once every item is
   done, MP_ETIMEDOUT. */
MP_EXPORT int mp_queue_task_done(mp_queue_t *q);
MP_EXPORT int mp_queue_join(mp_queue_t *q, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
