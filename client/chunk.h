/*  chunk.h - the chunks in flight (chunk.c); chunk_t is in job.h. Mutex
    held for each. */
#ifndef MP_CLIENT_CHUNK_H_INCLUDED
#define MP_CLIENT_CHUNK_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "job.h"

/* Records a chunk just sent (one more in flight). */
void mp__pool_chunk_insert(mp_pool_t *pool, chunk_t *c);
/* The chunk in flight with this id, or NULL; taken out of the table when
   remove. */
chunk_t *mp__pool_chunk_take(mp_pool_t *pool, uint64_t id, bool remove);
/* Frees a chunk that is not (any more) in the table. */
void mp__pool_chunk_free(chunk_t *c);
/* A chunk is whole: assemble its pieces in order and hand it over (a map's
   pieces are in its results already); it leaves the table and is freed. */
void mp__pool_chunk_finish(mp_pool_t *pool, chunk_t *c, ready_t *ready);
/* Ends a chunk with one error for every item not answered yet. */
void mp__pool_chunk_fail(mp_pool_t *pool, chunk_t *c, int code, const char *msg, ready_t *ready);

#endif
