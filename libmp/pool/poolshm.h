/*  poolshm.h - the shared memory an embedded pool's map items and results
    travel through (docs/POOL-SHM.md). Not installed.

    An embedded pool maps one MAP_SHARED|MAP_ANONYMOUS area before it forks
    its worker, so the worker's zygote and every executor inherit it at the
    same address; nothing has a name, nothing can be left in /dev/shm. The
    area holds:

      - the input ring, written by the pool's I/O thread only: a chunk's
        items (msgpack values back to back); executors and the embedded
        broker read it. Ranges are taken in
        order and given back in any order (mp__pshm_in_alloc/_in_free).
      - one output ring per executor slot, written by that slot's executor
        only: a reply's values back to back. The pool reads a reply
        when its RESULT arrives, then publishes how far it has consumed
        (mp__pshm_out_consume); the executor writes only over consumed
        bytes. Replies of one slot reach the pool in the order they were
        written (one executor -> supervisor -> broker -> pool, each FIFO),
        so one counter per slot is enough; a reply the broker discards is
        consumed implicitly by the next one.

    Positions in the output rings are monotonic byte counters (a ring's
    offset is the counter modulo its size), so a replacement executor in
    the same slot continues where the dead one published. Nothing blocks:
    an executor whose reply does not fit sends it inline, and a chunk that
    does not fit in the input ring is sent inline.

    Thread-safety: the input-ring allocator is the pool's (its mutex);
    the counters are atomics. Fork: inherited by design. Signals: no.
*/
#ifndef MP_POOLSHM_H_INCLUDED
#define MP_POOLSHM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mp__pshm mp__pshm_t;

/* Maps an area for nslots executors: in_cap bytes of input ring and
   out_cap per output ring (both rounded up to pages). NULL on failure. */
mp__pshm_t *mp__pshm_new(int nslots, size_t in_cap, size_t out_cap);
/* Unmaps the area (the pool, once its worker is gone). */
void mp__pshm_destroy(mp__pshm_t **s_p);

/* Identifies the area in READY (random, never 0). */
uint64_t mp__pshm_id(const mp__pshm_t *s);
int mp__pshm_slots(const mp__pshm_t *s);
/* Where arena offset off is, when [off, off + len) lies inside the input
   ring; NULL otherwise (a peer's numbers are checked before use). */
const char *mp__pshm_in_at(const mp__pshm_t *s, uint64_t off, uint64_t len);
/* mp__pshm_in_at for an executor about to read the range: its pages are
   mapped in this process first, in one call. */
const char *mp__pshm_in_read(mp__pshm_t *s, uint64_t off, uint64_t len);

/* ---- the input ring (the pool) ---------------------------------------------- */

typedef struct {
    uint64_t pos; /* arena offset of the items */
    uint64_t len; /* their bytes */
    uint32_t ticket;
} mp__pshm_in_t;

/* Takes room for bytes of items; false when the ring has no room now (the
   caller sends inline). *items is where to write them. */
bool mp__pshm_in_alloc(mp__pshm_t *s, size_t bytes, mp__pshm_in_t *r, char **items);
/* Gives a range back (in any order). */
void mp__pshm_in_free(mp__pshm_t *s, const mp__pshm_in_t *r);
/* Bytes of the input ring in use (tests). */
size_t mp__pshm_in_used(const mp__pshm_t *s);

/* ---- the output rings (an executor writes, the pool reads) ------------------ */

typedef struct {
    int slot;
    uint64_t at;   /* ring position of the reply */
    char *base;    /* where it starts */
    size_t room;   /* contiguous bytes from base */
    uint64_t from; /* the head before (private to poolshm.c) */
} mp__pshm_out_t;

/* The executor of slot: contiguous room for at least need bytes at the
   ring's head, or false. */
bool mp__pshm_out_reserve(mp__pshm_t *s, int slot, size_t need, mp__pshm_out_t *o);
/* The executor expects to write about bytes at o: their pages are mapped
   now, in one call, rather than faulted in one by one. */
void mp__pshm_out_expect(mp__pshm_t *s, const mp__pshm_out_t *o, size_t bytes);
/* Publishes a reply of used bytes written at o (the executor). */
void mp__pshm_out_commit(mp__pshm_t *s, const mp__pshm_out_t *o, size_t used);
/* The pool: where the reply [at, at + len) of slot is, after checking it
   lies inside what the executor published and was not consumed; NULL
   otherwise. */
const char *mp__pshm_out_at(mp__pshm_t *s, int slot, uint64_t at, uint64_t len);
/* The pool has seen every reply of slot before end: the executor may write
   there again, but for the replies the pool holds. */
void mp__pshm_out_consume(mp__pshm_t *s, int slot, uint64_t end);
/* The pool has no chunk in flight: whatever the executors published is
   nobody's (replies the broker discarded, of chunks already failed here),
   so every ring without held replies is consumed up to its head. Without
   this, such replies would stay until the next one of their slot, and a
   ring they filled would send every reply inline for good. */
void mp__pshm_out_idle(mp__pshm_t *s);
/* The pool keeps the reply at `at` of slot in the ring to read it later
   (a map's piece that came before the pieces ahead of it): until
   mp__pshm_out_release, consuming stops there. false when it already
   holds as many as it may (it copies the reply out instead). */
bool mp__pshm_out_hold(mp__pshm_t *s, int slot, uint64_t at);
void mp__pshm_out_release(mp__pshm_t *s, int slot, uint64_t at);

/* Whether [p, p + n) lies inside slot's output ring (a worker's supervisor
   checks where an executor says its values are before reading them). */
bool mp__pshm_out_contains(const mp__pshm_t *s, int slot, const void *p, size_t n);

/* Bytes a reply of vsize bytes of values occupies in its ring. */
static inline uint64_t mp__pshm_reply_len(uint64_t vsize)
{
    return (vsize + 7) & ~(uint64_t)7;
}

#endif
