/*  queue.c - a byte ring of length-prefixed msgpack records in shared
    memory, for any number of producer and consumer processes.

    Layout: header | data[capacity]. head and tail are monotonic byte
    counters (position = counter % capacity), so "used" is tail - head and
    a full ring is never confused with an empty one. A record is a 4-byte
    native length followed by the payload, either possibly wrapping.

    Commit points: a put copies the record, then advances tail; a get
    copies the record out, then advances head. A process killed between the
    copy and the advance leaves the ring as if the operation never started.
    The item count is derived state; after EOWNERDEAD it is rebuilt by
    walking the records (repair()).

    Conditions count their waiters, so the common case (nobody waiting)
    never makes a futex wake-up system call. Before sleeping, a getter or putter
    spins briefly on the lock-free counters: with a producer and a consumer
    on two cores, the other side usually makes progress within a few
    microseconds, far less than a sleep/wake round trip through the kernel.

    Rejected: Python's design (a pipe plus a feeder thread per process):
    a thread per queue, a kernel copy per item, and the join-before-drain
    deadlock of cpython gh-73983.
*/
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mp/error.h"
#include "mp/queue.h"

#define HEADER_BYTES 4u
#define SPIN_LIMIT 500

struct ring {
    pthread_mutex_t mutex;
    mp__cond_t not_empty;
    mp__cond_t not_full;
    mp__cond_t all_done;
    uint64_t head;
    uint64_t tail;
    uint64_t capacity;
    size_t map_size;
    uint32_t count;
    uint32_t maxsize;
    int64_t unfinished; /* JoinableQueue: put - task_done */
    bool joinable;
    alignas(64) unsigned char data[];
};

struct mp_queue {
    struct ring *ring;
    bool closed; /* per process */
};

static mp_queue_t *queue_new(const mp_queue_opts_t *opts, bool joinable)
{
    uint64_t capacity = opts && opts->capacity ? opts->capacity : MP_QUEUE_DEFAULT_CAPACITY;
    size_t maxsize = opts ? opts->maxsize : 0;
    if (capacity > UINT32_MAX || capacity < 2 * HEADER_BYTES || maxsize > UINT32_MAX)
        return NULL;
    mp_queue_t *q = calloc(1, sizeof *q);
    size_t map_size = sizeof(struct ring) + capacity;
    struct ring *r = q ? mp__shared_alloc(map_size) : NULL;
    if (!r || mp__mutex_init(&r->mutex)) {
        mp__shared_free(r, map_size);
        free(q);
        return NULL;
    }
    r->capacity = capacity;
    r->map_size = map_size;
    r->maxsize = (uint32_t)maxsize;
    r->joinable = joinable;
    q->ring = r;
    return q;
}

mp_queue_t *mp_queue_new(const mp_queue_opts_t *opts)
{
    return queue_new(opts, false);
}

mp_queue_t *mp_simple_queue_new(void)
{
    return queue_new(NULL, false);
}

mp_queue_t *mp_joinable_queue_new(const mp_queue_opts_t *opts)
{
    return queue_new(opts, true);
}

void mp_queue_destroy(mp_queue_t **q_p)
{
    if (!q_p || !*q_p)
        return;
    mp__shared_free((*q_p)->ring, (*q_p)->ring->map_size);
    free(*q_p);
    *q_p = NULL;
}

/* ---- ring copies ---------------------------------------------------------- */

static void copy_in(struct ring *r, uint64_t at, const void *src, size_t n)
{
    size_t pos = (size_t)(at % r->capacity);
    size_t first = n < r->capacity - pos ? n : (size_t)(r->capacity - pos);
    memcpy(r->data + pos, src, first);
    memcpy(r->data, (const char *)src + first, n - first);
}

static void copy_out(const struct ring *r, uint64_t at, void *dst, size_t n)
{
    size_t pos = (size_t)(at % r->capacity);
    size_t first = n < r->capacity - pos ? n : (size_t)(r->capacity - pos);
    memcpy(dst, r->data + pos, first);
    memcpy((char *)dst + first, r->data, n - first);
}

static uint32_t record_size(const struct ring *r, uint64_t at)
{
    uint32_t size;
    copy_out(r, at, &size, sizeof size);
    return size;
}

/* After a holder died: make head..tail a whole number of sane records. */
static void repair(struct ring *r)
{
    uint32_t count = 0;
    uint64_t at = r->head;
    while (at < r->tail) {
        uint64_t left = r->tail - at;
        if (left < HEADER_BYTES || record_size(r, at) > left - HEADER_BYTES)
            break;
        at += HEADER_BYTES + record_size(r, at);
        count++;
    }
    r->tail = at;
    r->count = count;
}

static int lock(struct ring *r)
{
    int rc = mp__mutex_lock(&r->mutex, NULL);
    if (rc == MP_EOWNERDEAD) {
        repair(r);
        rc = 0;
    }
    return rc;
}

static int wait_on(struct ring *r, mp__cond_t *cond, const struct timespec *deadline)
{
    int rc = mp__cond_wait(cond, &r->mutex, deadline);
    if (rc == MP_EOWNERDEAD) {
        repair(r);
        rc = 0;
    }
    return rc;
}

static bool has_room(const struct ring *r, uint64_t need)
{
    return r->capacity - (r->tail - r->head) >= need && (!r->maxsize || r->count < r->maxsize);
}

/* Spins while cond is false, without the lock. True when it became true. */
#define SPIN_UNTIL(cond)                                                                       \
    ({                                                                                         \
        bool ok_ = false;                                                                      \
        for (int i_ = 0; i_ < SPIN_LIMIT && !(ok_ = (cond)); i_++)                             \
            mp__cpu_relax();                                                            \
        ok_;                                                                                   \
    })

static uint32_t load_count(const struct ring *r)
{
    return __atomic_load_n(&r->count, __ATOMIC_ACQUIRE);
}

/* ---- put / get ------------------------------------------------------------ */

int mp_queue_put_bytes(mp_queue_t *q, const void *data, size_t size, int timeout_ms)
{
    if (!q || (!data && size))
        return MP_EINVAL;
    if (q->closed)
        return MP_ECLOSED;
    struct ring *r = q->ring;
    if (size > r->capacity - HEADER_BYTES)
        return MP_E2BIG;
    uint64_t need = HEADER_BYTES + size;
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(timeout_ms, &ts);
    /* the timeout applies to room in the ring, never to the mutex, which is
       held for a copy: get(0)/put(0) fail only when empty/full */
    int rc = lock(r);
    if (rc)
        return rc;
    while (!has_room(r, need)) {
        if (timeout_ms == 0) {
            mp__mutex_unlock(&r->mutex);
            return MP_EFULL;
        }
        mp__mutex_unlock(&r->mutex);
        uint32_t seen = load_count(r);
        SPIN_UNTIL(load_count(r) != seen);
        if ((rc = lock(r)))
            return rc;
        if (has_room(r, need))
            break;
        rc = wait_on(r, &r->not_full, deadline);
        if (rc == MP_ETIMEDOUT && !has_room(r, need)) {
            mp__mutex_unlock(&r->mutex);
            return MP_EFULL;
        }
    }
    uint32_t size32 = (uint32_t)size;
    copy_in(r, r->tail, &size32, HEADER_BYTES);
    copy_in(r, r->tail + HEADER_BYTES, data, size);
    __atomic_store_n(&r->tail, r->tail + need, __ATOMIC_RELEASE);
    __atomic_store_n(&r->count, r->count + 1, __ATOMIC_RELEASE);
    if (r->joinable)
        r->unfinished++;
    mp__cond_signal(&r->not_empty);
    mp__mutex_unlock(&r->mutex);
    return 0;
}

int mp_queue_put(mp_queue_t *q, const mp_obj_t *item, int timeout_ms)
{
    if (!q || !item)
        return MP_EINVAL;
    char storage[512];
    mp__buf_t buf;
    mp__buf_init(&buf, storage, sizeof storage);
    int rc = mp__obj_pack_into(item, &buf);
    if (!rc)
        rc = mp_queue_put_bytes(q, buf.data, buf.size, timeout_ms);
    mp__buf_release(&buf);
    return rc;
}

/* Takes the oldest record into b. */
static int get_record(mp_queue_t *q, mp__buf_t *b, int timeout_ms)
{
    if (q->closed)
        return MP_ECLOSED;
    struct ring *r = q->ring;
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(timeout_ms, &ts);
    if (timeout_ms != 0 && load_count(r) == 0)
        SPIN_UNTIL(load_count(r) != 0);
    int rc = lock(r);
    if (rc)
        return rc;
    while (r->count == 0) {
        if (timeout_ms == 0) {
            mp__mutex_unlock(&r->mutex);
            return MP_EEMPTY;
        }
        rc = wait_on(r, &r->not_empty, deadline);
        if (rc == MP_ETIMEDOUT && r->count == 0) {
            mp__mutex_unlock(&r->mutex);
            return MP_EEMPTY;
        }
    }
    uint32_t size = record_size(r, r->head);
    if (size > r->tail - r->head - HEADER_BYTES) {
        /* a foreign write corrupted the ring: drop everything rather than
           hand out garbage or loop */
        r->head = r->tail;
        r->count = 0;
        rc = MP_EBADMSG;
    } else {
        b->size = 0;
        rc = mp__buf_reserve(b, size);
        if (!rc) {
            copy_out(r, r->head + HEADER_BYTES, b->data, size);
            b->size = size;
            __atomic_store_n(&r->head, r->head + HEADER_BYTES + size, __ATOMIC_RELEASE);
            __atomic_store_n(&r->count, r->count - 1, __ATOMIC_RELEASE);
        }
    }
    if (!rc)
        mp__cond_signal(&r->not_full);
    mp__mutex_unlock(&r->mutex);
    return rc;
}

int mp_queue_get(mp_queue_t *q, mp_obj_t **item_p, int timeout_ms)
{
    if (!q || !item_p)
        return MP_EINVAL;
    char storage[512];
    mp__buf_t buf;
    mp__buf_init(&buf, storage, sizeof storage);
    int rc = get_record(q, &buf, timeout_ms);
    if (!rc)
        rc = mp_obj_unpack(buf.data, buf.size, item_p);
    mp__buf_release(&buf);
    return rc;
}

int mp_queue_get_bytes(mp_queue_t *q, void **data_p, size_t *size_p, int timeout_ms)
{
    if (!q || !data_p || !size_p)
        return MP_EINVAL;
    mp__buf_t buf;
    mp__buf_init(&buf, NULL, 0);
    int rc = get_record(q, &buf, timeout_ms);
    if (rc) {
        mp__buf_release(&buf);
        return rc;
    }
    if (!buf.owned) { /* empty record: give the caller a real allocation */
        buf.data = malloc(1);
        if (!buf.data)
            return MP_ENOMEM;
    }
    *data_p = buf.data;
    *size_p = buf.size;
    return 0;
}

/* ---- state ---------------------------------------------------------------- */

size_t mp_queue_qsize(mp_queue_t *q)
{
    return q ? load_count(q->ring) : 0;
}

bool mp_queue_empty(mp_queue_t *q)
{
    return mp_queue_qsize(q) == 0;
}

bool mp_queue_full(mp_queue_t *q)
{
    return q && q->ring->maxsize && load_count(q->ring) >= q->ring->maxsize;
}

int mp_queue_close(mp_queue_t *q)
{
    if (!q)
        return MP_EINVAL;
    q->closed = true;
    return 0;
}

int mp_queue_task_done(mp_queue_t *q)
{
    if (!q || !q->ring->joinable)
        return MP_EINVAL;
    struct ring *r = q->ring;
    int rc = lock(r);
    if (rc)
        return rc;
    if (r->unfinished <= 0) {
        rc = MP_EVALUE;
    } else if (--r->unfinished == 0) {
        mp__cond_broadcast(&r->all_done);
    }
    mp__mutex_unlock(&r->mutex);
    return rc;
}

int mp_queue_join(mp_queue_t *q, int timeout_ms)
{
    if (!q || !q->ring->joinable)
        return MP_EINVAL;
    struct ring *r = q->ring;
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(timeout_ms, &ts);
    int rc = lock(r);
    if (rc)
        return rc;
    while (r->unfinished > 0 && rc == 0) {
        if (timeout_ms == 0)
            rc = MP_ETIMEDOUT;
        else
            rc = wait_on(r, &r->all_done, deadline);
    }
    rc = r->unfinished > 0 ? MP_ETIMEDOUT : 0;
    mp__mutex_unlock(&r->mutex);
    return rc;
}
