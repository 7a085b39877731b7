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
/* The first gap at or after `at` among c's answered pieces: its start
   (c->count when none is left) and, in *end, where it stops. */
size_t mp__pool_chunk_gap(const chunk_t *c, size_t at, size_t *end);
/* Fails the unanswered items of c in [from, to); true when that made c
   whole (it is then finished and freed). */
bool mp__pool_chunk_fail_range(mp_pool_t *pool, chunk_t *c, size_t from, size_t to, int code,
                               const char *msg, ready_t *ready);
/* Takes every resent gap of parent (NULL: of every chunk) out of the table
   and frees it. */
void mp__pool_chunk_drop_children(mp_pool_t *pool, chunk_t *parent);
/* Ends a chunk with one error for every item not answered yet. */
void mp__pool_chunk_fail(mp_pool_t *pool, chunk_t *c, int code, const char *msg, ready_t *ready);

#endif
