/*  map_out.h - a map's results as they arrive (map_out.c). */
#ifndef MP_CLIENT_MAP_OUT_H_INCLUDED
#define MP_CLIENT_MAP_OUT_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "frames.h"
#include "job.h"

/* A piece of a map's results that arrived before the pieces ahead of it:
   kept as it came (the RESULT's frames, or a list of failures) until it can
   be appended in order. */
typedef struct held {
    size_t at, count; /* job indexes [at, at + count) */
    zmq_msg_t values, errors;
    bool has_errors;
    mp_items_t *items; /* instead of the frames: failures made here */
    /* instead of the values frame: a reply left in an executor's output
       ring (mp__pshm_out_hold), read when its turn comes */
    const char *ring_vals;
    size_t vsize;
    int slot;
    uint64_t ring_at;
    struct held *next;
} held_t;

/* A map's results as they arrive. Each piece is appended to one list as
   soon as every piece before it is there, so a value is copied and
   validated once, while the executors still work, and nothing is
   assembled at the end. Pieces ahead of a gap wait in `held`, uncopied,
   sorted by index. */
typedef struct map_out {
    mp_items_t *list; /* items [0, list->len) of the job, in order */
    held_t *held;
    sendbuf_t *send; /* a large map's chunk frames (send.c), while unsent */
    bool borrowed;   /* job->input is the caller's list (a blocking map) */
    bool failed;     /* out of memory on the way: every item fails at the end */
} map_out_t;

/* A RESULT piece of a map chunk: items [at, at + count) of the job. Its
   frames are moved when it has to wait for the pieces before it. */
void mp__pool_map_result(mp_async_t *job, size_t at, size_t count, zmq_msg_t *values,
                         zmq_msg_t *errors);
/* The same for a list of results made here (failures). Takes items. */
void mp__pool_map_result_items(mp_async_t *job, size_t at, mp_items_t *items);
/* A RESULT piece whose values are in an executor's output ring (slot, at
   ring_at): count values, vsize bytes at vals, checked as
   mp__pool_map_result checks its frame. Copied into the results at once
   when every piece before it is there; otherwise left in the ring, held
   (mp__pshm_out_hold), until they are. The caller consumes the ring
   after this returns. */
void mp__pool_map_result_ring(mp_async_t *job, size_t at, size_t count, const char *vals,
                              size_t vsize, zmq_msg_t *errors, int slot, uint64_t ring_at);
/* Every item of the map has answered: its list becomes job->results. */
void mp__pool_map_finish(mp_async_t *job);
/* Frees job->out (the job's last reference is going). */
void mp__pool_map_out_free(mp_async_t *job);

#endif
