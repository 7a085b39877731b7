/*  queue.c - a byte ring of length-prefixed msgpack records in shared
    memory, for any number of producer and consumer processes.

    Layout: header | data[capacity]. head and tail are monotonic byte
    counters (position = counter % capacity), so "used" is tail - head and
    a full ring is never confused with an empty one. A record is a 4-byte
    native length followed by the payload, either possibly wrapping.

    Two locks, as in the classic two-lock queue: producers serialise on the
    put side (which owns tail), consumers on the get side (which owns head);
    each only reads the other's counter. A producer and a consumer therefore
    never wait for each other's lock, and each side's hot fields live on
    their own cache lines. "Not empty" and "not full" are signalled across
    the two locks, which mp__cond_wait_until() makes safe (waiters register
    before their last check; wakers publish before they look for waiters).

    Commit points: a put copies the record, then advances tail; a get
    copies the record out, then advances head. A process killed between the
    copy and the advance leaves the ring as if the operation never started.
    The item counters beside them are derived state, kept right after a
    holder's death by a one-entry journal per side (repair()).

    Before sleeping, a waiter spins briefly, reading the other side's
    counter rarely: with a producer and a consumer on two cores the other
    side usually moves within microseconds, far less than a sleep/wake
    round trip through the kernel.

    Rejected: Python's design (a pipe plus a feeder thread per process):
    a thread per queue, a kernel copy per item, and the join-before-drain
    deadlock of cpython gh-73983.

    The shared layer (libmp/shared/): what carries data between processes
    without a server: Value and Array (value.c), SharedMemory (shm.c),
    Queue, SimpleQueue and JoinableQueue (queue.c), Pipe (pipe.c). Uses
    libmp/base/, libmp/sync/ and libmp/codec/.
*/
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "codec/buf.h"
#include "mp/error.h"
#include "mp/queue.h"

#define HEADER_BYTES 4u
#define SPIN_LIMIT 500

/* One end of the ring: producers share the put side, consumers the get
   side. Three cache lines each: the lock and journal (touched by this side
   only), the published counters (written once per operation, read by the
   other side), and the condition (touched when someone sleeps). Sharing a
   line between the lock and the counters made the lock's line bounce
   between the cores on every read of the counter. */
struct side {
    alignas(64) pthread_mutex_t mutex;
    /* commit journal, for repair after a holder died: 0 idle, 1 journaled,
       2 unfinished counted (JoinableQueue put) */
    int pending;
    uint64_t pending_pos;
    uint64_t pending_n;
    /* the other side's pos as last read: a lower bound of the real one
       (tail for the get side, head for the put side), so the other side's
       line is read only when this cached value says "no" */
    uint64_t seen;
    alignas(64) uint64_t pos;    /* put: tail, get: head; the commit point */
    uint64_t n;                  /* items put / got */
    alignas(64) mp__cond_t cond; /* put: "not full", get: "not empty" */
};

struct ring {
    struct side put;
    struct side get;
    alignas(64) pthread_mutex_t join_mutex;
    mp__cond_t all_done;
    int64_t unfinished; /* JoinableQueue: put - task_done */
    uint64_t capacity;
    size_t map_size;
    uint32_t maxsize;
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
    if (!r || mp__mutex_init(&r->put.mutex) || mp__mutex_init(&r->get.mutex) ||
        mp__mutex_init(&r->join_mutex)) {
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

static uint64_t load(const uint64_t *x)
{
    return __atomic_load_n(x, __ATOMIC_ACQUIRE);
}

static void store(uint64_t *x, uint64_t v)
{
    __atomic_store_n(x, v, __ATOMIC_RELEASE);
}

/* After a holder of this side died: finish or undo its commit. The commit
   point (pos) tells whether the operation happened. */
static void repair(struct ring *r, struct side *s)
{
    if (s->pending) {
        bool committed = s->pos != s->pending_pos;
        store(&s->n, s->pending_n + committed);
        if (s == &r->put && s->pending == 2 && !committed &&
            __atomic_sub_fetch(&r->unfinished, 1, __ATOMIC_SEQ_CST) == 0)
            mp__cond_broadcast(&r->all_done);
        __atomic_store_n(&s->pending, 0, __ATOMIC_RELEASE);
    }
}

static int lock(struct ring *r, struct side *s)
{
    int rc = mp__mutex_lock(&s->mutex, NULL);
    if (rc == MP_EOWNERDEAD) {
        repair(r, s);
        rc = 0;
    }
    return rc;
}

struct room {
    struct ring *r;
    uint64_t need;
};

static bool has_room(void *arg)
{
    struct room *w = arg;
    struct ring *r = w->r;
    if (r->capacity - (r->put.pos - r->put.seen) < w->need) {
        r->put.seen = load(&r->get.pos);
        if (r->capacity - (r->put.pos - r->put.seen) < w->need)
            return false;
    }
    return !r->maxsize || r->put.n - load(&r->get.n) < r->maxsize;
}

static bool has_item(void *arg)
{
    struct ring *r = arg;
    if (r->get.seen != r->get.pos)
        return true;
    r->get.seen = load(&r->put.pos);
    return r->get.seen != r->get.pos;
}

/* Waits (holding s->mutex) until ready, spinning briefly first. */
static int wait_for(struct ring *r, struct side *s, bool (*ready)(void *), void *arg,
                    int timeout_ms, const struct timespec *deadline)
{
    if (ready(arg))
        return 0;
    if (timeout_ms == 0)
        return MP_ETIMEDOUT;
    /* the other side usually moves within microseconds on another core:
       check rarely so the writer keeps its cache line */
    for (int i = 0; i < SPIN_LIMIT; i++) {
        for (int j = 0; j < 16; j++)
            mp__cpu_relax();
        if (ready(arg))
            return 0;
    }
    for (;;) {
        int rc = mp__cond_wait_until(&s->cond, &s->mutex, deadline, ready, arg);
        if (rc != MP_EOWNERDEAD)
            return rc;
        repair(r, s);
    }
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
    struct room room = {r, HEADER_BYTES + size};
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(timeout_ms, &ts);
    /* the timeout applies to room in the ring, never to the mutex, which is
       held for a copy: put(0) fails only when the queue is full */
    int rc = lock(r, &r->put);
    if (rc)
        return rc;
    rc = wait_for(r, &r->put, has_room, &room, timeout_ms, deadline);
    if (rc) {
        mp__mutex_unlock(&r->put.mutex);
        return rc == MP_ETIMEDOUT ? MP_EFULL : rc;
    }
    uint32_t size32 = (uint32_t)size;
    copy_in(r, r->put.pos, &size32, HEADER_BYTES);
    copy_in(r, r->put.pos + HEADER_BYTES, data, size);
    r->put.pending_pos = r->put.pos;
    r->put.pending_n = r->put.n;
    /* release: the journal is complete before it is marked valid */
    __atomic_store_n(&r->put.pending, 1, __ATOMIC_RELEASE);
    if (r->joinable) {
        __atomic_fetch_add(&r->unfinished, 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&r->put.pending, 2, __ATOMIC_RELEASE);
    }
    store(&r->put.pos, r->put.pos + room.need); /* commit */
    store(&r->put.n, r->put.n + 1);
    __atomic_store_n(&r->put.pending, 0, __ATOMIC_RELEASE);
    mp__mutex_unlock(&r->put.mutex);
    mp__cond_signal(&r->get.cond);
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
    int rc = lock(r, &r->get);
    if (rc)
        return rc;
    rc = wait_for(r, &r->get, has_item, r, timeout_ms, deadline);
    if (rc) {
        mp__mutex_unlock(&r->get.mutex);
        return rc == MP_ETIMEDOUT ? MP_EEMPTY : rc;
    }
    uint64_t head = r->get.pos, avail = r->get.seen - head;
    uint32_t size = record_size(r, head);
    r->get.pending_pos = head;
    r->get.pending_n = r->get.n;
    __atomic_store_n(&r->get.pending, 1, __ATOMIC_RELEASE);
    if (avail < HEADER_BYTES || size > avail - HEADER_BYTES) {
        /* a foreign write corrupted the ring: drop what is there rather than
           hand out garbage or loop */
        store(&r->get.pos, head + avail);
        rc = MP_EBADMSG;
    } else {
        b->size = 0;
        rc = mp__buf_reserve(b, size);
        if (!rc) {
            copy_out(r, head + HEADER_BYTES, b->data, size);
            b->size = size;
            store(&r->get.pos, head + HEADER_BYTES + size); /* commit */
            store(&r->get.n, r->get.n + 1);
        }
    }
    __atomic_store_n(&r->get.pending, 0, __ATOMIC_RELEASE);
    mp__mutex_unlock(&r->get.mutex);
    /* all producers: they wait for different amounts of room, and one woken
       producer that still does not fit would swallow the wake-up of
       another that does (free while nobody waits) */
    mp__cond_broadcast(&r->put.cond);
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

/* A side's operations done: its n, or, while a journal is open (a holder
   between its commit and its count, or killed there and not repaired yet:
   repair() runs at the side's next lock), what repair() will make of it.
   Without this, qsize right after a holder was killed mid-get counted an
   item that is gone. */
static uint64_t done(const struct side *s)
{
    if (__atomic_load_n(&s->pending, __ATOMIC_ACQUIRE)) {
        uint64_t n = s->pending_n, at = s->pending_pos;
        bool committed = load(&s->pos) != at;
        if (__atomic_load_n(&s->pending, __ATOMIC_ACQUIRE)) /* still that journal */
            return n + committed;
    }
    return load(&s->n);
}

static size_t count(const struct ring *r)
{
    /* got first: a consumer may count its item before the producer counts it */
    uint64_t got = done(&r->get), put = done(&r->put);
    return put > got ? (size_t)(put - got) : 0;
}

size_t mp_queue_qsize(mp_queue_t *q)
{
    return q ? count(q->ring) : 0;
}

bool mp_queue_empty(mp_queue_t *q)
{
    return !q || load(&q->ring->put.pos) == load(&q->ring->get.pos);
}

bool mp_queue_full(mp_queue_t *q)
{
    return q && q->ring->maxsize && count(q->ring) >= q->ring->maxsize;
}

int mp_queue_close(mp_queue_t *q)
{
    if (!q)
        return MP_EINVAL;
    q->closed = true;
    return 0;
}

static int join_lock(struct ring *r)
{
    int rc = mp__mutex_lock(&r->join_mutex, NULL);
    return rc == MP_EOWNERDEAD ? 0 : rc; /* one counter: nothing to repair */
}

int mp_queue_task_done(mp_queue_t *q)
{
    if (!q || !q->ring->joinable)
        return MP_EINVAL;
    struct ring *r = q->ring;
    int rc = join_lock(r);
    if (rc)
        return rc;
    int64_t left = __atomic_load_n(&r->unfinished, __ATOMIC_SEQ_CST);
    if (left <= 0)
        rc = MP_EVALUE;
    else if (__atomic_sub_fetch(&r->unfinished, 1, __ATOMIC_SEQ_CST) == 0)
        mp__cond_broadcast(&r->all_done);
    mp__mutex_unlock(&r->join_mutex);
    return rc;
}

static bool all_done(void *arg)
{
    struct ring *r = arg;
    return __atomic_load_n(&r->unfinished, __ATOMIC_SEQ_CST) <= 0;
}

int mp_queue_join(mp_queue_t *q, int timeout_ms)
{
    if (!q || !q->ring->joinable)
        return MP_EINVAL;
    struct ring *r = q->ring;
    struct timespec ts;
    const struct timespec *deadline = mp__deadline(timeout_ms, &ts);
    int rc = join_lock(r);
    if (rc)
        return rc;
    if (!all_done(r) && timeout_ms == 0)
        rc = MP_ETIMEDOUT;
    while (!rc && (rc = mp__cond_wait_until(&r->all_done, &r->join_mutex, deadline, all_done, r)) ==
                      MP_EOWNERDEAD)
        rc = 0; /* recovered the mutex: wait again */
    if (rc == 0 && !all_done(r))
        rc = MP_ETIMEDOUT;
    mp__mutex_unlock(&r->join_mutex);
    return rc;
}
