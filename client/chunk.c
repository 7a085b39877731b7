/*  chunk.c - the chunks in flight: sent, not finished.

    The I/O thread records every chunk it sends (send.c) in a hash table by
    chunk id, and finds it again when a RESULT or FAILED names that id
    (recv.c). A chunk may be answered piece by piece (the broker splits
    chunks on retries, PROTOCOL.md 7; a stalled worker sends what it
    finished, 4.4); pieces are recorded until every item has answered
    once, then the chunk is whole and goes to its job(s) (job.c) and leaves
    the table. A map's pieces go to its results on arrival (map_out.c), and
    those of batched applies and an unordered imap to their calls: their
    record only marks them answered.

    Invariants: a chunk is in the table from its successful send until it
    is whole; pool->inflight counts them; a chunk's input range in the
    input ring is given back when it leaves. chunk_fail answers every gap
    between the pieces, so every item ends exactly once. Mutex held.
*/
#include <stdlib.h>

#include "chunk.h"
#include "codec/items_impl.h"
#include "map_out.h"
#include "pool_impl.h"
#include "results.h"

static chunk_t **bucket(mp_pool_t *pool, uint64_t id)
{
    return &pool->buckets[id % POOL_BUCKETS];
}

chunk_t *mp__pool_chunk_take(mp_pool_t *pool, uint64_t id, bool remove)
{
    for (chunk_t **pp = bucket(pool, id); *pp; pp = &(*pp)->hnext)
        if ((*pp)->id == id) {
            chunk_t *c = *pp;
            if (remove)
                *pp = c->hnext;
            return c;
        }
    return NULL;
}

void mp__pool_chunk_free(chunk_t *c)
{
    while (c->pieces) {
        piece_t *p = c->pieces;
        c->pieces = p->next;
        mp_items_destroy(&p->items);
        free(p);
    }
    if (c->has_frame)
        zmq_msg_close(&c->frame);
    if (c->parent)
        c->parent->children--;
    free(c->targets);
    free(c);
}

void mp__pool_chunk_insert(mp_pool_t *pool, chunk_t *c)
{
    chunk_t **bp = bucket(pool, c->id);
    c->hnext = *bp;
    *bp = c;
    if (!c->parent) /* a resent gap is its parent's, already counted */
        pool->inflight++;
}

void mp__pool_chunk_drop_children(mp_pool_t *pool, chunk_t *parent)
{
    for (size_t b = 0; b < POOL_BUCKETS && (!parent || parent->children); b++)
        for (chunk_t **pp = &pool->buckets[b]; *pp;) {
            chunk_t *c = *pp;
            if (c->parent && (!parent || c->parent == parent)) {
                *pp = c->hnext;
                mp__pool_chunk_free(c);
            } else {
                pp = &c->hnext;
            }
        }
}

size_t mp__pool_chunk_gap(const chunk_t *c, size_t at, size_t *end)
{
    for (;;) {
        const piece_t *cover = NULL;
        size_t next = c->count;
        if (at >= c->count) {
            *end = c->count;
            return c->count;
        }
        for (const piece_t *p = c->pieces; p; p = p->next) {
            if (p->base <= at && at < p->base + p->count)
                cover = p;
            if (p->base > at && p->base < next)
                next = p->base;
        }
        if (!cover) {
            *end = next;
            return at;
        }
        at = cover->base + cover->count;
    }
}

/* A chunk is whole: assemble its pieces in order and hand it over (a map's
   pieces are in its results already). */
void mp__pool_chunk_finish(mp_pool_t *pool, chunk_t *c, ready_t *ready)
{
    mp__pool_chunk_drop_children(pool, c);
    mp__pool_chunk_take(pool, c->id, true);
    pool->inflight--;
    if (c->shm_in) /* no executor reads it for this chunk any more */
        mp__pshm_in_free(pool->shm, &c->in);
    if (pool->shm && pool->inflight == 0)
        mp__pshm_out_idle(pool->shm);
    if (mp__chunk_is_map(c)) {
        mp__pool_map_chunk_done(pool, c, ready);
        mp__pool_chunk_free(c);
        return;
    }
    if (mp__chunk_is_early(c)) { /* its pieces went to their calls as they came */
        mp__pool_chunk_settled(pool, c, ready);
        mp__pool_chunk_free(c);
        return;
    }
    mp_items_t *all = NULL;
    if (c->pieces && !c->pieces->next && c->pieces->base == 0) {
        all = c->pieces->items;
        c->pieces->items = NULL;
    } else {
        all = mp_items_new();
        for (size_t at = 0; all && at < c->count;) {
            piece_t *p = c->pieces;
            while (p && p->base != at)
                p = p->next;
            const char *data;
            size_t size;
            if (!p) {
                mp_items_destroy(&all);
                break;
            }
            mp__items_span(p->items, 0, p->items->len, &data, &size);
            if (mp__items_append_packed(all, data, size, p->items->len) ||
                mp__items_take_errors(all, p->items, at))
                mp_items_destroy(&all);
            at += p->items->len;
        }
    }
    mp__pool_chunk_done(pool, c, all, ready);
    mp__pool_chunk_free(c);
}

bool mp__pool_chunk_fail_range(mp_pool_t *pool, chunk_t *c, size_t from, size_t to, int code,
                               const char *msg, ready_t *ready)
{
    const char *task = c->job ? c->job->name : c->targets[0]->name;
    size_t end;
    for (size_t at = mp__pool_chunk_gap(c, from, &end); at < to;
         at = mp__pool_chunk_gap(c, end, &end)) {
        if (end > to)
            end = to;
        piece_t *f = calloc(1, sizeof *f);
        if (f)
            f->items = mp__pool_failed_items(task, end - at, 0, code, msg);
        if (!f || !f->items) {
            free(f);
            break;
        }
        f->base = at;
        f->count = end - at;
        if (mp__chunk_is_map(c)) { /* to the results now: the record only marks them answered */
            mp__pool_map_result_items(c->job, c->first + at, f->items);
            f->items = NULL;
        } else if (mp__chunk_is_early(c)) {
            mp__pool_piece_done(pool, c, at, f->items, ready);
            f->items = NULL;
        }
        f->next = c->pieces;
        c->pieces = f;
        c->received += end - at;
    }
    if (c->received < c->count)
        return false;
    mp__pool_chunk_finish(pool, c, ready);
    return true;
}

/* Ends a chunk with one error for every item not answered yet. */
void mp__pool_chunk_fail(mp_pool_t *pool, chunk_t *c, int code, const char *msg, ready_t *ready)
{
    c->received = 0; /* recounted below: answered pieces, then the gaps */
    for (const piece_t *p = c->pieces; p; p = p->next)
        c->received += p->count;
    if (!mp__pool_chunk_fail_range(pool, c, 0, c->count, code, msg, ready))
        mp__pool_chunk_finish(pool, c, ready); /* out of memory left a gap: ends anyway */
}
