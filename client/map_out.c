/*  map_out.c - a map's results, placed as they arrive.

    A map's RESULT pieces come in any order (chunks finish as executors
    free up; the broker may split a chunk). Each piece is appended to the
    job's one result list (map_out_t) as soon as every piece before it is
    there: one validating copy per value, while the executors still work,
    and nothing to assemble at the end. A piece ahead of a gap is held as
    it came (its frames, a list of failures, or its place in an executor's
    output ring, pinned with mp__pshm_out_hold) until its turn.

    Invariants: o->list holds items [0, list->len) of the job, in order;
    held pieces are sorted by index and start past list->len; a malformed
    piece commits nothing and fails whole (each of its items an error); out
    of memory on the way sets o->failed and the map ends with every item
    failed rather than hanging. Called by the I/O thread (recv.c, chunk.c)
    and job.c with the pool's mutex held.
*/
#include <stdlib.h>

#include "codec/items_impl.h"
#include "map_out.h"
#include "mp/error.h"
#include "pool_impl.h"
#include "results.h"

#define RING_MALFORMED "malformed result in shared memory"

/* Before the first piece: room for the whole map, guessed from that piece,
   so the list is not grown (and copied) piece after piece. */
static void reserve_all(const mp_async_t *job, size_t bytes, size_t count)
{
    mp_items_t *l = job->out->list;
    if (l->cap >= job->total || !count)
        return;
    size_t per_item = bytes / count + 1;
    mp__items_reserve(l, per_item * job->total + per_item * job->total / 8, job->total);
}

/* Appends a list of results (failures made here) at the end of the map's. */
static void place_items(map_out_t *o, size_t at, mp_items_t *items)
{
    if (!items || mp__items_concat(o->list, items) || mp__items_take_errors(o->list, items, at))
        o->failed = true;
}

/* Fails a piece that cannot be read: each of its items, with why. */
static void place_malformed(const mp_async_t *job, size_t at, size_t count, const char *why)
{
    mp_items_t *failed = mp__pool_failed_items(job->name, count, 0, MP_EBADREQUEST, why);
    place_items(job->out, at, failed);
    mp_items_destroy(&failed);
}

/* Appends a piece, items [at, at + count), at the end of the map's list:
   count values (vsize bytes at vals: a RESULT's frame or an output ring)
   in one checking copy (mp__items_append_packed). Its errors are decoded
   first, so a malformed piece commits nothing and fails whole (why). */
static void place_values(const mp_async_t *job, size_t at, size_t count, const char *vals,
                         size_t vsize, const zmq_msg_t *errors, const char *why)
{
    map_out_t *o = job->out;
    mp_items_t *errs = NULL;
    int rc = 0;
    if (errors) {
        errs = mp_items_new();
        rc = errs ? mp__pool_decode_errors(errs, job->name, zmq_msg_data((zmq_msg_t *)errors),
                                           zmq_msg_size((zmq_msg_t *)errors), at)
                  : MP_ENOMEM;
    }
    if (!rc) {
        reserve_all(job, vsize, count);
        rc = mp__items_append_packed(o->list, vals, vsize, count);
    }
    if (!rc && errs && mp__items_take_errors(o->list, errs, 0))
        o->failed = true;
    mp_items_destroy(&errs);
    if (rc == MP_EBADMSG)
        place_malformed(job, at, count, why);
    else if (rc)
        o->failed = true;
}

/* A RESULT's values frame: an array header of count, then the values. */
static void place_frames(const mp_async_t *job, size_t at, size_t count, const zmq_msg_t *values,
                         const zmq_msg_t *errors)
{
    static const char why[] = "malformed result from the broker";
    mp__rd_t r;
    size_t n;
    mp__rd_init(&r, zmq_msg_data((zmq_msg_t *)values), zmq_msg_size((zmq_msg_t *)values));
    if (mp__rd_array(&r, &n) || n != count)
        place_malformed(job, at, count, why);
    else
        place_values(job, at, count, (const char *)r.p, mp__rd_left(&r), errors, why);
}

static void held_free(const mp_async_t *job, held_t *h)
{
    if (h->ring_vals) /* the executor may write there again */
        mp__pshm_out_release(job->pool->shm, h->slot, h->ring_at);
    if (!h->items) {
        zmq_msg_close(&h->values);
        if (h->has_errors)
            zmq_msg_close(&h->errors);
    }
    mp_items_destroy(&h->items);
    free(h);
}

/* Keeps a piece until the pieces before it have come (sorted by index). */
static void hold(map_out_t *o, held_t *h)
{
    held_t **pp = &o->held;
    while (*pp && (*pp)->at < h->at)
        pp = &(*pp)->next;
    h->next = *pp;
    *pp = h;
}

/* Appends the held pieces that are next in order. */
static void place_held(const mp_async_t *job)
{
    map_out_t *o = job->out;
    while (o->held && o->held->at == o->list->len) {
        held_t *h = o->held;
        o->held = h->next;
        if (h->items)
            place_items(o, h->at, h->items);
        else if (h->ring_vals)
            place_values(job, h->at, h->count, h->ring_vals, h->vsize,
                         h->has_errors ? &h->errors : NULL, RING_MALFORMED);
        else
            place_frames(job, h->at, h->count, &h->values, h->has_errors ? &h->errors : NULL);
        held_free(job, h);
    }
}

void mp__pool_map_result(mp_async_t *job, size_t at, size_t count, zmq_msg_t *values,
                         zmq_msg_t *errors)
{
    map_out_t *o = job->out;
    if (at == o->list->len) {
        place_frames(job, at, count, values, errors);
        place_held(job);
        return;
    }
    held_t *h = calloc(1, sizeof *h);
    if (!h) {
        o->failed = true;
        return;
    }
    h->at = at;
    h->count = count;
    zmq_msg_init(&h->values);
    zmq_msg_move(&h->values, values);
    if (errors) {
        zmq_msg_init(&h->errors);
        zmq_msg_move(&h->errors, errors);
        h->has_errors = true;
    }
    hold(o, h);
}

void mp__pool_map_result_items(mp_async_t *job, size_t at, mp_items_t *items)
{
    map_out_t *o = job->out;
    if (!items) {
        o->failed = true;
        return;
    }
    if (at == o->list->len) {
        reserve_all(job, items->buf.size, items->len);
        place_items(o, at, items);
        mp_items_destroy(&items);
        place_held(job);
        return;
    }
    held_t *h = calloc(1, sizeof *h);
    if (!h) {
        o->failed = true;
        mp_items_destroy(&items);
        return;
    }
    h->at = at;
    h->count = items->len;
    h->items = items;
    hold(o, h);
}

void mp__pool_map_result_ring(mp_async_t *job, size_t at, size_t count, const char *vals,
                              size_t vsize, zmq_msg_t *errors, int slot, uint64_t ring_at)
{
    map_out_t *o = job->out;
    if (at == o->list->len) {
        place_values(job, at, count, vals, vsize, errors, RING_MALFORMED);
        place_held(job);
        return;
    }
    held_t *h = calloc(1, sizeof *h);
    if (h && mp__pshm_out_hold(job->pool->shm, slot, ring_at)) {
        *h = (held_t){.at = at,
                      .count = count,
                      .ring_vals = vals,
                      .vsize = vsize,
                      .slot = slot,
                      .ring_at = ring_at};
        zmq_msg_init(&h->values);
        if (errors) {
            zmq_msg_init(&h->errors);
            zmq_msg_move(&h->errors, errors);
            h->has_errors = true;
        }
        hold(o, h);
        return;
    }
    free(h);
    /* the ring holds as many as it may: copied out into a list of its own */
    mp_items_t *items = mp_items_new();
    int rc = items ? mp__items_append_packed(items, vals, vsize, count) : MP_ENOMEM;
    if (!rc && errors)
        rc =
            mp__pool_decode_errors(items, job->name, zmq_msg_data(errors), zmq_msg_size(errors), 0);
    if (rc) {
        mp_items_destroy(&items);
        if (rc != MP_EBADMSG) {
            o->failed = true;
            return;
        }
        items = mp__pool_failed_items(job->name, count, 0, MP_EBADREQUEST, RING_MALFORMED);
    }
    mp__pool_map_result_items(job, at, items);
}

void mp__pool_map_finish(mp_async_t *job)
{
    map_out_t *o = job->out;
    while (o->held) { /* only after running out of memory */
        held_t *h = o->held;
        o->held = h->next;
        held_free(job, h);
    }
    if (o->failed || o->list->len != job->total) /* report every item failed rather than hang */
        mp_items_destroy(&o->list);
    job->results =
        o->list ? o->list
                : mp__pool_failed_items(job->name, job->total, 0, MP_ENOMEM, "out of memory");
    o->list = NULL;
}

void mp__pool_map_out_free(mp_async_t *job)
{
    while (job->out->held) {
        held_t *h = job->out->held;
        job->out->held = h->next;
        held_free(job, h);
    }
    mp_items_destroy(&job->out->list);
    if (job->out->send)
        mp__pool_sendbuf_unref(NULL, job->out->send);
    free(job->out);
}
