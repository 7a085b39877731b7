/*  recv.c - the incoming side of the I/O thread: what the broker says
    (docs/PROTOCOL.md 4.2), and what ends every call when it is gone.

    RESULT pieces are matched to their chunk in flight (chunk.c) by chunk
    id: a map's values go to its results at once (map_out.c; from the
    message's frame, or from an executor's output ring: 9.1), anything
    else is recorded with its chunk until the chunk is whole. FAILED ends a
    chunk; WELCOME and HEARTBEAT update the executor count (and the
    window, unless the caller set it); STATUS answers mp_pool_status;
    DISCONNECT fails everything and says HELLO again.

    Invariants: every field of a message is checked before use, and a
    malformed message is logged and dropped (a malformed piece of a known
    chunk fails its items instead); an answer for a chunk that is not in
    flight (any more), or a duplicate, is dropped; an output ring's reply
    is consumed once it was copied, held or found not ours. Mutex held.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "chunk.h"
#include "codec/items_impl.h"
#include "map_out.h"
#include "mp/error.h"
#include "pool_impl.h"
#include "recv.h"
#include "results.h"
#include "send.h"
#include "session.h"

#define WHO "mp-pool"

static void on_result_piece(mp_pool_t *pool, mpp_msg_t *m, uint64_t id, uint64_t base,
                            uint64_t count, uint64_t nerrors, const uint64_t *ring, const char *at,
                            ready_t *ready);

/* A RESULT whose values are in an executor's output ring ([slot at vsize]
   in its header): where they are, checked, or NULL. */
static const char *ring_values(mp_pool_t *pool, const uint64_t ring[3])
{
    if (!pool->shm || ring[0] > INT32_MAX || ring[2] > UINT32_MAX)
        return NULL;
    return mp__pshm_out_at(pool->shm, (int)ring[0], ring[1], mp__pshm_reply_len(ring[2]));
}

/* A chunk id's chunk, for count items at *base: a resent gap's answer
   lands in its parent (base translated); the gap leaves the table once
   all of it has answered. NULL when not ours (any more), or a duplicate. */
static chunk_t *answered(mp_pool_t *pool, uint64_t id, uint64_t *base, uint64_t count)
{
    chunk_t *c = mp__pool_chunk_take(pool, id, false);
    if (!c || !c->parent)
        return c;
    if (*base + count > c->count || c->received + count > c->count)
        return NULL;
    chunk_t *parent = c->parent;
    *base += c->offset;
    c->received += count;
    if (c->received == c->count) {
        mp__pool_chunk_take(pool, id, true);
        mp__pool_chunk_free(c);
    }
    return parent;
}

static void on_result(mp_pool_t *pool, mpp_msg_t *m, mp__rd_t *r, ready_t *ready)
{
    size_t n, k;
    uint64_t id, base, count, nerrors, ring[3];
    if (mp__rd_array(r, &n) || n < 4 || mp__rd_uint(r, &id) || mp__rd_uint(r, &base) ||
        mp__rd_uint(r, &count) || mp__rd_uint(r, &nerrors) || m->n != (nerrors ? 5 : 4) ||
        (n >= 5 && (mp__rd_array(r, &k) || k < 3 || mp__rd_uint(r, &ring[0]) ||
                    mp__rd_uint(r, &ring[1]) || mp__rd_uint(r, &ring[2])))) {
        if (mp__ratelimit(&pool->malformed_rl, WHO, "malformed messages from the broker"))
            mp__log(MP_LOG_WARN, WHO, "malformed RESULT from the broker; dropped");
        return;
    }
    bool in_ring = n >= 5;
    const char *at = in_ring ? ring_values(pool, ring) : NULL;
    on_result_piece(pool, m, id, base, count, nerrors, in_ring ? ring : NULL, at, ready);
    if (at) /* copied out, held, or not ours: the executor may write there again */
        mp__pshm_out_consume(pool->shm, (int)ring[0], ring[1] + mp__pshm_reply_len(ring[2]));
}

/* One RESULT's piece of chunk id: values in frame 3, or, when ring is not
   NULL ([slot at vsize]), in an output ring at `at` (NULL when the ring's
   numbers were wrong). */
static void on_result_piece(mp_pool_t *pool, mpp_msg_t *m, uint64_t id, uint64_t base,
                            uint64_t count, uint64_t nerrors, const uint64_t *ring, const char *at,
                            ready_t *ready)
{
    bool in_ring = ring != NULL;
    chunk_t *c = answered(pool, id, &base, count);
    if (!c || base + count > c->count || c->received + count > c->count)
        return; /* not ours (any more), or a duplicate */
    if (mp__chunk_is_map(c)) {
        piece_t *p = calloc(1, sizeof *p);
        if (!p)
            return; /* as if lost: the chunk fails when the broker or pool does */
        p->base = base;
        p->count = count;
        p->next = c->pieces;
        c->pieces = p;
        c->received += count;
        if (!in_ring)
            mp__pool_map_result(c->job, c->first + base, count, &m->f[3],
                                nerrors ? &m->f[4] : NULL);
        else if (at)
            mp__pool_map_result_ring(c->job, c->first + base, count, at, ring[2],
                                     nerrors ? &m->f[4] : NULL, (int)ring[0], ring[1]);
        else
            mp__pool_map_result_items(c->job, c->first + base,
                                      mp__pool_failed_items(c->job->name, count, 0, MP_EBADREQUEST,
                                                            "malformed result from the broker"));
        if (c->received == c->count)
            mp__pool_chunk_finish(pool, c, ready);
        else
            pthread_cond_broadcast(&pool->cond);
        return;
    }
    const char *task = c->job ? c->job->name : c->targets[0]->name;
    mp__rd_t vr;
    size_t nv;
    mp__rd_init(&vr, mpp_data(m, 3), mpp_size(m, 3));
    piece_t *p = calloc(1, sizeof *p);
    mp_items_t *items = mp_items_new();
    int rc = p && items ? 0 : MP_ENOMEM;
    if (!rc && (in_ring || mp__rd_array(&vr, &nv) || nv != count)) /* rings carry maps only */
        rc = MP_EBADMSG;
    if (!rc)
        rc = mp__items_append_packed(items, vr.p, mp__rd_left(&vr), count);
    if (!rc && nerrors)
        rc = mp__pool_decode_errors(items, task, mpp_data(m, 4), mpp_size(m, 4), 0);
    if (rc) {
        free(p);
        mp_items_destroy(&items);
        items = mp__pool_failed_items(task, count, 0, MP_EBADREQUEST,
                                      "malformed result from the broker");
        p = calloc(1, sizeof *p);
        if (!p || !items) {
            free(p);
            mp_items_destroy(&items);
            return;
        }
    }
    p->base = base;
    p->count = count;
    p->items = items;
    p->next = c->pieces;
    c->pieces = p;
    c->received += count;
    if (mp__chunk_is_early(c)) { /* to its calls now: the record marks them answered */
        mp__pool_piece_done(pool, c, base, items, ready);
        p->items = NULL;
    }
    if (c->received == c->count)
        mp__pool_chunk_finish(pool, c, ready);
    else if (c->job)
        pthread_cond_broadcast(&pool->cond);
}

static void on_failed(mp_pool_t *pool, mp__rd_t *r, ready_t *ready)
{
    size_t n, len;
    uint64_t id;
    int64_t code;
    const char *msg;
    if (mp__rd_array(r, &n) || n < 3 || mp__rd_uint(r, &id) || mp__rd_int(r, &code) ||
        mp__rd_str(r, &msg, &len))
        return;
    chunk_t *c = mp__pool_chunk_take(pool, id, false);
    if (!c)
        return;
    char text[512];
    snprintf(text, sizeof text, "%.*s", (int)(len < sizeof text ? len : sizeof text - 1), msg);
    if (c->parent) { /* a resent gap: that range of its parent */
        chunk_t *parent = c->parent;
        size_t from = c->offset, to = c->offset + c->count;
        mp__pool_chunk_take(pool, id, true);
        mp__pool_chunk_free(c);
        mp__pool_chunk_fail_range(pool, parent, from, to, (int)code, text, ready);
        return;
    }
    mp__pool_chunk_fail(pool, c, (int)code, text, ready);
}

/* Fails everything in flight and everything unsent: the broker is gone. */
void mp__pool_fail_all(mp_pool_t *pool, int code, const char *msg, ready_t *ready)
{
    /* a blocking apply in flight is not in the chunk table: it ends too */
    pool->fail_gen++;
    pool->fail_code = code;
    snprintf(pool->fail_msg, sizeof pool->fail_msg, "%s", msg);
    uint64_t one = 1;
    ssize_t w = write(pool->sync_fd, &one, sizeof one);
    (void)w;
    pool->holding = false;
    mp__pool_chunk_drop_children(pool, NULL); /* resent gaps first: they point at parents */
    for (size_t b = 0; b < POOL_BUCKETS; b++)
        while (pool->buckets[b])
            mp__pool_chunk_fail(pool, pool->buckets[b], code, msg, ready);
    while (pool->send_head) {
        mp_async_t *job = pool->send_head;
        mp__pool_send_queue_remove(pool, job);
        mp__pool_fail_unsent(pool, job, code, msg, ready);
    }
}

/* WELCOME's limits after its first three items (r is past them); a broker
   that sends fewer keeps the defaults, a value out of range is ignored. */
static void welcome_limits(mp_pool_t *pool, mp__rd_t *r, size_t n)
{
    uint64_t v;
    if (n >= 4 && mp__rd_uint(r, &v) == 0 && v >= 4096)
        pool->max_message = v;
    if (n >= 5 && mp__rd_uint(r, &v) == 0 && v >= 1 && v <= MPP_MAX_COUNT)
        pool->max_count = v;
    if (n >= 6 && mp__rd_uint(r, &v) == 0 && v >= 1 && v <= INT32_MAX)
        pool->max_queued = v;
}

/* A DISCONNECT before WELCOME whose reason begins "refused:" (a CURVE key
   admitted in another role, docs/PROTOCOL.md 10): mp_pool_new fails at
   once with MP_EAUTH instead of saying HELLO again until its timeout. */
static bool refused(mp_pool_t *pool, mpp_msg_t *m)
{
    mp_obj_t *body = NULL, *why;
    if (m->n < 3 || mp_obj_unpack(mpp_data(m, 2), mpp_size(m, 2), &body))
        return false;
    why = mp_obj_type(body) == MP_OBJ_ARRAY ? mp_obj_array_at(body, 0) : NULL;
    const char *s = why && mp_obj_type(why) == MP_OBJ_STR ? mp_obj_str(why, NULL) : NULL;
    bool yes = s && strncmp(s, "refused:", 8) == 0;
    if (yes) {
        mp__log(MP_LOG_WARN, WHO, "broker %s: %s", pool->endpoint, s);
        /* its key was refused, or its address has too many peers there */
        pool->connect_error = strstr(s, "too many peers") ? MP_EOVERLOADED : MP_EAUTH;
        pool->stopping = true;
        pthread_cond_broadcast(&pool->cond);
    }
    mp_obj_destroy(&body);
    return yes;
}

/* Executors a broker may claim (WELCOME, HEARTBEAT): a larger number is
   taken as this many, so that the window it sizes (4 per executor) stays
   an int. */
#define MAX_PROCESSES (1u << 20)

void mp__pool_on_message(mp_pool_t *pool, mpp_msg_t *m, ready_t *ready)
{
    if (!mp__session_valid(m)) {
        if (mp__ratelimit(&pool->malformed_rl, WHO, "malformed messages from the broker"))
            mp__log(MP_LOG_WARN, WHO, "malformed message from the broker; dropped");
        return;
    }
    mp__rd_t r;
    mp__rd_init(&r, mpp_data(m, 2), mpp_size(m, 2));
    size_t n;
    uint64_t v;
    switch (mpp_data(m, 1)[0]) {
    case MPP_B_RESULT:
        on_result(pool, m, &r, ready);
        break;
    case MPP_B_FAILED:
        on_failed(pool, &r, ready);
        break;
    case MPP_B_WELCOME: {
        const char *ver;
        size_t len;
        if (mp__rd_array(&r, &n) == 0 && n >= 3 && mp__rd_str(&r, &ver, &len) == 0 &&
            mp__rd_uint(&r, &v) == 0 && mp__rd_uint(&r, &v) == 0) {
            v = v > MAX_PROCESSES ? MAX_PROCESSES : v; /* a broker's number, checked */
            pool->processes = (int)v;
            welcome_limits(pool, &r, n);
            if (!pool->window_set && v > 0)
                mp__pool_set_window(pool, v * 4 > 8 ? (int)v * 4 : 8);
            else /* the one asked for, within this broker's max-queued */
                mp__pool_set_window(pool, pool->window_set ? pool->window_asked : pool->window);
            pool->connected = true;
            mp__pool_resend(pool, ready); /* what a lost broker held, first */
            pthread_cond_broadcast(&pool->cond);
        }
        break;
    }
    case MPP_B_HEARTBEAT:
        if (mp__rd_array(&r, &n) == 0 && n >= 1 && mp__rd_uint(&r, &v) == 0 &&
            (v = v > MAX_PROCESSES ? MAX_PROCESSES : v, pool->processes != (int)v)) {
            pool->processes = (int)v;
            pthread_cond_broadcast(&pool->cond);
        }
        break;
    case MPP_B_STATUS:
        if (m->n == 4 && pool->status_sent) {
            mp_obj_destroy(&pool->status);
            if (mp_obj_unpack(mpp_data(m, 3), mpp_size(m, 3), &pool->status))
                pool->status = NULL;
            pool->status_sent = false;
            pool->status_wanted = false;
            pthread_cond_broadcast(&pool->cond);
        }
        break;
    case MPP_B_DISCONNECT:
        if (!pool->connected && refused(pool, m))
            break;
        mp__log(MP_LOG_WARN, WHO, "the broker disconnected this pool");
        pool->connected = false;
        pool->status_sent = false; /* a STATUS or DRAIN asked is asked again */
        if (pool->resend)          /* a broker stopping may be restarting: wait for it */
            mp__pool_hold_all(pool, ready);
        else
            mp__pool_fail_all(pool, MP_EBROKERLOST, "the broker disconnected", ready);
        mp__session_hello(MP__DEALER(pool->sock), false, pool->heartbeat_ms, pool->window);
        break;
    default:
        break;
    }
}
