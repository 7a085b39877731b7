/*  task_impl.h - running a dispatch (a chunk of items) through its task.
    Used by the worker's executors. Not installed. */
#ifndef MP_TASK_IMPL_H_INCLUDED
#define MP_TASK_IMPL_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "codec/buf.h"
#include "mp/task.h"

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
    uint32_t *progress; /* index of the running item is stored here */
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
