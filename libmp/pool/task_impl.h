/*  task_impl.h - running a dispatch (a chunk of items) through its task.
    Used by the worker's executors. Not installed. */
#ifndef MP_TASK_IMPL_H_INCLUDED
#define MP_TASK_IMPL_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "codec/buf.h"
#include "mp/task.h"

/* An executor's progress slot: one cache line of shared memory, written by
   the executor, read by its supervisor (time limits, LOST, partial
   results: docs/PARTIAL-RESULTS.md). Before each item the executor stores
   the sizes, then the item's index with release order: a reader that
   loads index with acquire order sees sizes covering every item before
   it. An executor stopped by limit leaves count at the items it ran. */
typedef struct {
    uint32_t index; /* the item running now */
    /* the supervisor's: the executor runs no item at or past it (checked
       after storing index; the supervisor's side is a membarrier) */
    uint32_t limit;
    uint64_t dispatch; /* the dispatch it describes (the supervisor zeroes it) */
    /* items the supervisor sent ahead (W-PARTIAL); MP__SENT_CLOSED once the
       executor took what it finds here out of its reply (an atomic swap,
       against the supervisor's compare-and-swap) */
    uint64_t sent;
    uint64_t vdata, vstart, vsize; /* values: where, first value's offset, bytes */
    uint64_t edata, esize;         /* errors (an array32 header first): where, bytes */
} mp__progress_t;

_Static_assert(sizeof(mp__progress_t) == 64, "a progress slot is one cache line");

#define MP__SENT_CLOSED UINT64_MAX

typedef struct {
    /* in */
    const char *name; /* NUL-terminated */
    int mode;         /* MPP_MODE_MAP or MPP_MODE_STAR */
    unsigned attempt;
    const void *items; /* the items frame: msgpack array of count values */
    size_t items_size;
    bool raw; /* items are raw_count values back to back, no array
                 header, and values get none either (poolshm.h) */
    size_t raw_count;
    const void *init; /* the init frame, or NULL */
    size_t init_size;
    const char *host; /* for error entries */
    int pid;
    mp__progress_t *progress; /* published before each item, or NULL */
    /* out: caller-initialised buffers, appended to */
    mp__buf_t *values; /* msgpack array of count values */
    mp__buf_t *errors; /* msgpack array of error entries */
    size_t count;      /* items in the frame (out) */
    size_t nerrors;    /* entries in errors (out) */
} mp__chunk_t;

/* Runs every item of c. Returns 0 (item failures are in c->errors), or
   MP_ENOMEM. Malformed items fail as MP_EBADARGS entries, never abort. */
int mp__task_run_chunk(mp__chunk_t *c);
/* Forgets the inits this process has run (an executor starts clean). */
void mp__task_reset_inits(void);

#endif
