/*  sched.c - the broker's scheduling: who runs what, and what happens to
    work when a peer leaves.

    dispatch() hands the head of each name's queue to the least recently
    used worker with credit that serves the name (pull-based: a worker
    advertises credit in READY and gets one back with each answer). A unit
    whose worker is lost goes back to the front of its queue, counting an
    attempt when the loss may be its fault; past max_attempts its items end
    as WORKER_LOST. A client's departure drops its queued units; its running
    ones are answered into the void and then freed.

    Uses units.c and peers.c; called by the command handlers and the loop.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "broker_impl.h"
#include "base/log.h"
#include "mp/error.h"
#include "pool/poolshm.h"

/* Puts u back in its queue after its worker lost it (whole unit), counting
   an attempt; past max_attempts the items end as WORKER_LOST. */
void bk_requeue_or_lose(mp_broker_t *b, unit_t *u, bool count_attempt, const char *cause)
{
    snprintf(u->cause, sizeof u->cause, "%s", cause);
    if ((!u->chunk->client && !u->chunk->durable) || u->cancelled) { /* nobody waits for it */
        u->chunk->pending -= bk_unit_left(u);
        bk_unit_free(b, u);
        return;
    }
    if (count_attempt && u->attempt >= b->max_attempts) {
        char msg[256];
        snprintf(msg, sizeof msg, "worker lost after %u attempts: %s", u->attempt, cause);
        mp__log(MP_LOG_WARN, WHO, "chunk %llu items %zu..%zu of %s: %s",
                (unsigned long long)u->chunk->chunk_id, u->base, u->base + u->count - 1,
                u->chunk->name, msg);
        bk_answer_with_errors(b, u, MPP_KIND_WORKER_LOST, MP_EWORKERLOST, msg);
        bk_unit_free(b, u);
        return;
    }
    if (count_attempt) {
        u->attempt++;
        u->chunk->queue->stats.retries++;
        b->retries++;
    }
    u->worker = NULL;
    queue_t *q = u->chunk->queue; /* its chunk's, alive as long as the chunk */
    if (bk_unit_trim(u)) {
        bk_answer_with_errors(b, u, MPP_KIND_WORKER_LOST, MP_EWORKERLOST, "broker out of memory");
        bk_unit_free(b, u);
        return;
    }
    bk_queue_push(q, u, true);
}

/* Fails every queued unit of names nobody serves, when workers exist. */
static void fail_unserved(mp_broker_t *b)
{
    if (bk_worker_count(b) == 0)
        return;
    for (queue_t *q = b->queues; q; q = q->next) {
        if (!q->head || bk_anyone_serves(b, q->name))
            continue;
        char msg[6 * MPP_MAX_NAME + 128];
        bk_unknown_task(b, q->name, msg, sizeof msg);
        for (unit_t *u = q->head, *next; u; u = next) {
            next = u->next;
            if (u->chunk->durable) /* stored: it waits for a worker that serves it */
                continue;
            bk_queue_unlink(q, u);
            bk_answer_with_errors(b, u, MPP_KIND_UNKNOWN, MP_EUNKNOWNTASK, msg);
            bk_unit_free(b, u);
        }
    }
}

static peer_t *pick_worker(mp_broker_t *b, const char *name)
{
    peer_t *best = NULL;
    for (size_t i = 0; i < b->npeers; i++) {
        peer_t *w = b->peers[i];
        if (w->kind != PEER_WORKER || w->credit == 0 || w->draining || !bk_serves(w, name))
            continue;
        if (!best || w->last_used < best->last_used)
            best = w;
    }
    return best;
}

/* Where unit u's items are in the pool's input ring: [*pos, *pos + *len),
   the whole chunk or, after a split, the items found by skipping values
   (a split is rare: a LOST). by_ref: *frame is an empty frame; otherwise
   the items are copied into *frame as an items frame. 0, MP_EBADMSG (not
   count values there), MP_ENOMEM. */
static int shm_items(mp_broker_t *b, unit_t *u, bool by_ref, uint64_t *pos, uint64_t *len,
                     zmq_msg_t *frame)
{
    chunk_t *ch = u->chunk;
    const char *items = mp__pshm_in_at(b->shm, ch->shm_pos, ch->shm_len);
    if (!items)
        return MP_EBADMSG;
    const uint8_t *start = (const uint8_t *)items;
    size_t bytes = (size_t)ch->shm_len;
    if (u->base != 0 || u->count != ch->count) {
        mp__rd_t r;
        mp__rd_init(&r, items, ch->shm_len);
        if (bk_values_span(&r, u->base, u->base + u->count, &start, &bytes))
            return MP_EBADMSG;
    }
    *pos = ch->shm_pos + (uint64_t)(start - (const uint8_t *)items);
    *len = bytes;
    if (by_ref) {
        zmq_msg_init(frame);
        return 0;
    }
    return bk_items_frame(frame, u->count, start, bytes);
}

void bk_dispatch(mp_broker_t *b)
{
    if (b->draining) /* stopping: what is queued is handed back to its clients */
        return;
    for (queue_t *q = b->queues; q; q = q->next) {
        while (q->head) {
            peer_t *w = pick_worker(b, q->name);
            if (!w)
                break;
            unit_t *u = q->head;
            bk_queue_unlink(q, u);
            chunk_t *ch = u->chunk;
            zmq_msg_t frames[2];
            uint64_t pos = 0, len = 0;
            /* items in the pool's ring: by reference to a worker that shares
               it, copied into the frame for any other */
            bool by_ref = ch->shm && w->shm_id == mp__pshm_id(b->shm);
            int rc = ch->shm ? shm_items(b, u, by_ref, &pos, &len, &frames[0]) : 0;
            if (rc) {
                bk_answer_with_errors(b, u,
                                      rc == MP_ENOMEM ? MPP_KIND_WORKER_LOST : MPP_KIND_BADARGS,
                                      rc == MP_ENOMEM ? MP_EWORKERLOST : MP_EBADARGS,
                                      rc == MP_ENOMEM ? "broker out of memory"
                                                      : "malformed items in the pool's ring");
                bk_unit_free(b, u);
                continue;
            }
            u->dispatch_id = ++b->next_dispatch;
            char hs[MPP_MAX_NAME + 64];
            mp__buf_t h;
            mp__buf_init(&h, hs, sizeof hs);
            mp__w_array(&h, ch->time_limit_ms ? 7 : by_ref ? 6 : 5);
            mp__w_uint(&h, u->dispatch_id);
            mp__w_str(&h, ch->name);
            mp__w_uint(&h, ch->mode);
            mp__w_uint(&h, u->count);
            mp__w_uint(&h, u->attempt);
            if (by_ref) {
                mp__w_array(&h, 2);
                mp__w_uint(&h, pos);
                mp__w_uint(&h, len);
            } else if (ch->time_limit_ms) {
                mp__w_nil(&h);
            }
            if (ch->time_limit_ms)
                mp__w_uint(&h, ch->time_limit_ms);
            int n = 1;
            if (!ch->shm) {
                zmq_msg_init(&frames[0]);
                zmq_msg_copy(&frames[0], &u->items); /* reference-counted, no copy */
            }
            if (ch->has_init) {
                zmq_msg_init(&frames[1]);
                zmq_msg_copy(&frames[1], &ch->init);
                n = 2;
            }
            u->worker = w;
            u->dispatched_ns = mp__now_ns();
            u->next = w->running;
            u->prev = NULL;
            if (w->running)
                w->running->prev = u;
            w->running = u;
            w->nrunning++;
            w->credit--;
            w->last_used = ++b->use_counter;
            rc = bk_send_to(b, w, MPP_B_TASK, &h, frames, n);
            mp__buf_release(&h);
            if (rc) {
                /* the worker is gone (its connection closed: it died). This
                   unit never reached it and goes back as it was; the ones
                   it was running count an attempt, as for a silent worker
                   (PROTOCOL.md 7), however its loss was noticed */
                bk_running_unlink(w, u);
                w->credit++;
                bk_requeue_or_lose(b, u, false, "worker unreachable");
                bk_worker_lost(b, w, "worker unreachable", true);
                continue;
            }
            mp__log(MP_LOG_DEBUG, WHO,
                    "dispatch %llu: %s chunk %llu items %zu..%zu attempt %u -> %s",
                    (unsigned long long)u->dispatch_id, ch->name, (unsigned long long)ch->chunk_id,
                    u->base, u->base + u->count - 1, u->attempt, w->hex);
        }
    }
}

/* Tells every client the executor count now (embedded pools wait for it). */
void bk_announce_processes(mp_broker_t *b)
{
    char hs[32];
    mp__buf_t h;
    size_t n = bk_total_processes(b);
    for (size_t i = 0; i < b->npeers; i++) {
        if (b->peers[i]->kind != PEER_CLIENT)
            continue;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, 1);
        mp__w_uint(&h, n);
        bk_send_to(b, b->peers[i], MPP_B_HEARTBEAT, &h, NULL, 0);
    }
}

void bk_worker_lost(mp_broker_t *b, peer_t *w, const char *cause, bool count_attempts)
{
    if (count_attempts) /* lost, not left */
        b->workers_lost++;
    mp__log(count_attempts || w->nrunning ? MP_LOG_WARN : MP_LOG_INFO, WHO,
            "worker %s (%s pid %u) %s: %s; %zu dispatch%s re-queued", w->hex, w->host, w->pid,
            count_attempts ? "lost" : "left", cause, w->nrunning, w->nrunning == 1 ? "" : "es");
    while (w->running) {
        unit_t *u = w->running;
        bk_running_unlink(w, u);
        char why[200];
        snprintf(why, sizeof why, "%s (worker %s pid %u)", cause, w->host, w->pid);
        bk_requeue_or_lose(b, u, count_attempts, why);
    }
    bk_peer_remove(b, w);
    fail_unserved(b);
    bk_announce_processes(b);
}

size_t bk_cancel_running(mp_broker_t *b, peer_t *c, chunk_t *ch, bool answer)
{
    size_t n = 0;
    for (size_t i = 0; i < b->npeers; i++) {
        peer_t *w = b->peers[i];
        if (w->kind != PEER_WORKER)
            continue;
        for (unit_t *u = w->running; u; u = u->next) {
            if (u->cancelled || (ch ? u->chunk != ch : u->chunk->client != c))
                continue;
            u->cancelled = true;
            if (answer) {
                bk_answer_with_errors(b, u, MPP_KIND_CANCELLED, MP_ECANCELLED, "cancelled");
                /* its items stay counted until the worker answers: the
                   chunk outlives the unit that points at it */
                u->chunk->pending += bk_unit_left(u);
            }
            char hs[32];
            mp__buf_t h;
            mp__buf_init(&h, hs, sizeof hs);
            mp__w_array(&h, 1);
            mp__w_uint(&h, u->dispatch_id);
            bk_send_to(b, w, MPP_B_WCANCEL, &h, NULL, 0);
            n++;
        }
    }
    return n;
}

void bk_client_gone(mp_broker_t *b, peer_t *c, const char *why)
{
    size_t dropped = 0, killed = bk_cancel_running(b, c, NULL, false);
    b->dropping = true; /* not "done": nobody is answered */
    for (queue_t *q = b->queues; q; q = q->next) {
        unit_t *u = q->head;
        while (u) {
            unit_t *next = u->next;
            if (u->chunk->client == c) {
                bk_queue_unlink(q, u);
                u->chunk->pending -= bk_unit_left(u);
                bk_unit_free(b, u);
                dropped++;
            }
            u = next;
        }
    }
    b->dropping = false;
    /* chunks with running units stay, orphaned, until those come back */
    chunk_t *ch = c->chunks;
    while (ch) {
        chunk_t *next = ch->next;
        ch->client = NULL;
        ch->next = ch->prev = NULL;
        ch = next;
    }
    c->chunks = NULL;
    mp__log(MP_LOG_INFO, WHO,
            "client %s gone (%s); %zu queued dispatch%s dropped, %zu running cancelled", c->hex,
            why, dropped, dropped == 1 ? "" : "es", killed);
    bk_peer_remove(b, c);
}

void bk_drain_idle(mp_broker_t *b)
{
    for (size_t i = 0; b->ndraining && i < b->npeers;) {
        peer_t *w = b->peers[i];
        if (w->kind != PEER_WORKER || !w->draining || w->nrunning) {
            i++;
            continue;
        }
        char hs[64];
        mp__buf_t h;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, 2);
        mp__w_str(&h, "drained");
        mp__w_bool(&h, true);                                   /* stop: do not reconnect */
        if (bk_send_to(b, w, MPP_B_WDISCONNECT, &h, NULL, 0)) { /* not sent: next pass */
            i++;
            continue;
        }
        mp__log(MP_LOG_INFO, WHO, "worker %s (%s pid %u) drained: told to stop", w->hex, w->host,
                w->pid);
        bk_peer_remove(b, w); /* peers[i] is now another peer */
        fail_unserved(b);     /* as when a worker leaves */
        bk_announce_processes(b);
    }
}
