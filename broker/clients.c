/*  clients.c - the broker's side of the client commands (PROTOCOL.md
    section 5): HELLO, SUBMIT, CANCEL, STATUS, HEARTBEAT, DISCONNECT.

    Each command is one small function named after it; on_client() finds
    (or, for HELLO, makes) the peer and routes. A SUBMIT is validated whole
    (header, mode, count, frames, the items' array header or the shared
    ring range) before anything is queued: a bad one is answered with
    FAILED and logged, never half-queued.

    Uses sched.c, units.c and peers.c; called by the loop (engine.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "broker_impl.h"
#include "base/log.h"
#include "mp/error.h"
#include "pool/poolshm.h"

static void client_hello(mp_broker_t *b, peer_t *c, mp__rd_t *r)
{
    size_t n;
    const char *name = "";
    size_t namelen = 0;
    uint64_t hb = 0;
    if (mp__rd_array(r, &n) == 0 && n >= 2) {
        mp__rd_str(r, &name, &namelen);
        mp__rd_uint(r, &hb);
    }
    if (hb >= 100 && hb <= 60000 && hb > (uint64_t)b->heartbeat_ms)
        c->expiry_ns = hb * MPP_LIVENESS * 1000000ull;
    char hs[128];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 6);
    mp__w_str(&h, MP_BROKER_VERSION);
    mp__w_uint(&h, (uint64_t)b->heartbeat_ms);
    mp__w_uint(&h, bk_total_processes(b));
    mp__w_uint(&h, b->max_message);
    mp__w_uint(&h, MPP_MAX_COUNT);
    mp__w_uint(&h, b->max_queued);
    bk_send_to(b, c, MPP_B_WELCOME, &h, NULL, 0);
    mp__log(MP_LOG_INFO, WHO, "client %s hello: %.*s", c->hex, (int)(namelen > 64 ? 64 : namelen),
            name);
}

/* Why a SUBMIT of count items is refused, naming the limit (WELCOME's). */
static const char *over_limit(char *buf, size_t size, uint64_t count)
{
    snprintf(buf, size, "count %llu over the limit of %u items per chunk (WELCOME max-count)",
             (unsigned long long)count, MPP_MAX_COUNT);
    return buf;
}

/* SUBMIT's durable [job seq total] (PROTOCOL.md 7.3) into d; why not. */
static const char *read_durable(mp__rd_t *r, bool by_shm, char *job, bk_jsubmit_t *d)
{
    size_t k, len;
    const char *s;
    if (mp__rd_array(r, &k) || k < 3 || mp__rd_str(r, &s, &len) || len == 0 || len > BK_MAX_JOB ||
        memchr(s, 0, len) || mp__rd_uint(r, &d->seq) || mp__rd_uint(r, &d->total))
        return "bad durable [job seq total] (a job name is 1..64 octets, no NUL)";
    if (d->total == 0 || d->total > BK_MAX_JOB_CHUNKS || d->seq >= d->total)
        return "durable seq or total out of range (total 1..1048576, seq below it)";
    if (by_shm)
        return "a durable chunk cannot be in shared memory";
    memcpy(job, s, len);
    job[len] = '\0';
    d->job = job;
    return NULL;
}

static void client_submit(mp_broker_t *b, peer_t *c, mp__rd_t *r, mpp_msg_t *m)
{
    size_t n, namelen;
    uint64_t chunk_id, mode, count;
    const char *name;
    if (mp__rd_array(r, &n) || n < 4 || mp__rd_uint(r, &chunk_id)) {
        bk_malformed(b, c, NULL, MPP_C_SUBMIT, "bad SUBMIT header");
        return;
    }
    const char *why = NULL;
    char over[96];
    if (mp__rd_str(r, &name, &namelen) || namelen == 0 || namelen > MPP_MAX_NAME)
        why = "bad task name";
    else if (mp__rd_uint(r, &mode) || mode > MPP_MODE_STAR)
        why = "bad mode";
    else if (mp__rd_uint(r, &count) || count == 0)
        why = "bad count";
    else if (count > MPP_MAX_COUNT)
        why = over_limit(over, sizeof over, count);
    else if (m->n != 5 && m->n != 6)
        why = "wrong number of frames";
    size_t k;
    uint64_t shm[2] = {0, 0}, limit = 0;
    bool by_shm = !why && n >= 5 && mp__rd_peek(r) != MP_OBJ_NIL;
    if (!why && n >= 5 && !by_shm)
        mp__rd_nil(r); /* no in-shm, a time limit follows */
    if (by_shm) {      /* [pos len]: the items are in the pool's ring */
        if (!b->shm)
            why = "items in shared memory, but this broker has none";
        else if (mp__rd_array(r, &k) || k < 2 || mp__rd_uint(r, &shm[0]) || mp__rd_uint(r, &shm[1]))
            why = "bad shm item";
        else if (!mp__pshm_in_at(b->shm, shm[0], shm[1]) || shm[1] < count || mpp_size(m, 4) != 0)
            why = "shm item out of range";
    } else if (!why) {
        mp__rd_t ir;
        size_t items;
        mp__rd_init(&ir, mpp_data(m, 4), mpp_size(m, 4));
        if (mp__rd_array(&ir, &items) || items != count)
            why = "items frame does not hold count items";
    }
    if (!why && n >= 6 && (mp__rd_uint(r, &limit) || limit > UINT32_MAX))
        why = "bad time limit";
    bk_jsubmit_t durable = {0};
    char job[BK_MAX_JOB + 1];
    if (!why && n >= 7 && mp__rd_peek(r) != MP_OBJ_NIL)
        why = read_durable(r, by_shm, job, &durable);
    if (why) {
        bk_malformed(b, c, NULL, MPP_C_SUBMIT, why);
        bk_send_failed(b, c, chunk_id, MP_EBADREQUEST, why);
        return;
    }
    char tname[MPP_MAX_NAME + 1];
    memcpy(tname, name, namelen);
    tname[namelen] = '\0';
    if (durable.job) { /* the journal's from here (journal.c) */
        durable.task = tname;
        durable.mode = (uint8_t)mode;
        durable.count = count;
        durable.time_limit_ms = (uint32_t)limit;
        durable.items = mpp_data(m, 4);
        durable.items_size = mpp_size(m, 4);
        durable.init = m->n == 6 ? mpp_data(m, 5) : NULL;
        durable.init_size = m->n == 6 ? mpp_size(m, 5) : 0;
        bk_journal_submit(b, c, &durable, chunk_id, m);
        return;
    }
    if (bk_worker_count(b) > 0 && !bk_anyone_serves(b, tname)) {
        char msg[6 * MPP_MAX_NAME + 128];
        bk_unknown_task(b, tname, msg, sizeof msg);
        bk_send_failed(b, c, chunk_id, MP_EUNKNOWNTASK, msg);
        b->failed += count;
        return;
    }
    if (c->queued >= b->max_queued) {
        bk_send_failed(b, c, chunk_id, MP_EOVERLOADED, "too many queued chunks for this client");
        return;
    }
    chunk_t *ch = calloc(1, sizeof *ch);
    unit_t *u = calloc(1, sizeof *u);
    queue_t *q = bk_queue_get(b, tname, true);
    if (!ch || !u || !q) {
        free(ch);
        free(u);
        bk_send_failed(b, c, chunk_id, MP_EOVERLOADED,
                       ch && u && b->nqueues >= BK_MAX_QUEUES ? BK_QUEUES_FULL
                                                              : "broker out of memory");
        return;
    }
    ch->client = c;
    bk_chunk_attach(ch, q, count);
    ch->chunk_id = chunk_id;
    memcpy(ch->name, tname, namelen + 1);
    ch->mode = (uint8_t)mode;
    ch->count = ch->pending = count;
    ch->shm = by_shm;
    ch->shm_pos = shm[0];
    ch->shm_len = shm[1];
    ch->time_limit_ms = (uint32_t)limit;
    zmq_msg_init(&ch->items);
    zmq_msg_move(&ch->items, &m->f[4]);
    if (m->n == 6) {
        zmq_msg_init(&ch->init);
        zmq_msg_move(&ch->init, &m->f[5]);
        ch->has_init = true;
    }
    ch->next = c->chunks;
    if (c->chunks)
        c->chunks->prev = ch;
    c->chunks = ch;
    u->chunk = ch;
    u->base = 0;
    u->count = count;
    u->attempt = 1;
    zmq_msg_init(&u->items);
    zmq_msg_copy(&u->items, &ch->items);
    bk_queue_push(q, u, false);
}

static void client_cancel(mp_broker_t *b, peer_t *c, mp__rd_t *r)
{
    size_t n;
    uint64_t chunk_id;
    if (mp__rd_array(r, &n) || n < 1 || mp__rd_uint(r, &chunk_id)) {
        bk_malformed(b, c, NULL, MPP_C_CANCEL, "bad CANCEL header");
        return;
    }
    for (queue_t *q = b->queues; q; q = q->next) {
        unit_t *u = q->head;
        while (u) {
            unit_t *next = u->next;
            if (u->chunk->client == c && u->chunk->chunk_id == chunk_id) {
                bk_queue_unlink(q, u);
                bk_answer_with_errors(b, u, MPP_KIND_CANCELLED, MP_ECANCELLED, "cancelled");
                bk_unit_free(b, u);
            }
            u = next;
        }
    }
    for (chunk_t *ch = c->chunks; ch; ch = ch->next)
        if (ch->chunk_id == chunk_id) {
            bk_cancel_running(b, c, ch, true);
            break;
        }
}

static void write_status(mp_broker_t *b, mp__buf_t *s)
{
    size_t nw = bk_worker_count(b), nq = 0;
    for (queue_t *q = b->queues; q; q = q->next)
        nq += q->depth > 0;
    mp__w_map(s, 11);
    mp__w_str(s, "version");
    mp__w_str(s, MP_BROKER_VERSION);
    mp__w_str(s, "uptime_ms");
    mp__w_uint(s, (mp__now_ns() - b->started_ns) / 1000000);
    mp__w_str(s, "clients");
    mp__w_uint(s, b->npeers - nw);
    mp__w_str(s, "queued");
    mp__w_map(s, nq);
    for (queue_t *q = b->queues; q; q = q->next)
        if (q->depth) {
            mp__w_str(s, q->name);
            mp__w_uint(s, q->depth);
        }
    mp__w_str(s, "done");
    mp__w_uint(s, b->done);
    mp__w_str(s, "failed");
    mp__w_uint(s, b->failed);
    mp__w_str(s, "lost");
    mp__w_uint(s, b->lost);
    mp__w_str(s, "refused");
    mp__w_uint(s, b->refused);
    mp__w_str(s, "malformed");
    mp__w_uint(s, b->malformed);
    mp__w_str(s, "returned");
    mp__w_uint(s, b->returned);
    mp__w_str(s, "workers");
    mp__w_array(s, nw);
    for (size_t i = 0; i < b->npeers; i++) {
        peer_t *w = b->peers[i];
        if (w->kind != PEER_WORKER)
            continue;
        mp__w_map(s, 10);
        mp__w_str(s, "id");
        mp__w_uint(s, w->serial);
        mp__w_str(s, "draining");
        mp__w_bool(s, w->draining);
        mp__w_str(s, "host");
        mp__w_str(s, w->host);
        mp__w_str(s, "pid");
        mp__w_uint(s, w->pid);
        mp__w_str(s, "processes");
        mp__w_uint(s, w->processes);
        mp__w_str(s, "credit");
        mp__w_uint(s, w->credit);
        mp__w_str(s, "done");
        mp__w_uint(s, w->done);
        mp__w_str(s, "failed");
        mp__w_uint(s, w->failed);
        mp__w_str(s, "running");
        mp__w_array(s, w->nrunning);
        for (unit_t *u = w->running; u; u = u->next) {
            mp__w_map(s, 4);
            mp__w_str(s, "dispatch");
            mp__w_uint(s, u->dispatch_id);
            mp__w_str(s, "task");
            mp__w_str(s, u->chunk->name);
            mp__w_str(s, "count");
            mp__w_uint(s, u->count);
            mp__w_str(s, "attempt");
            mp__w_uint(s, u->attempt);
        }
        mp__w_str(s, "names");
        mp__w_array(s, w->nnames);
        for (size_t k = 0; k < w->nnames; k++)
            mp__w_str(s, w->names[k]);
    }
}

static void client_status(mp_broker_t *b, peer_t *c);

/* C-DRAIN [worker-id]: that worker gets no new dispatch; once it holds none
   it is told to stop (bk_drain_idle). Answered with STATUS, where the
   worker shows "draining" (or is absent: no such worker, or gone). With
   CURVE, only an operator's key may (bk_operator); the STATUS then shows
   the worker not draining. */
static void client_drain(mp_broker_t *b, peer_t *c, mp__rd_t *r, mpp_msg_t *m)
{
    size_t n;
    uint64_t id;
    if (mp__rd_array(r, &n) || n < 1 || mp__rd_uint(r, &id)) {
        bk_malformed(b, c, NULL, MPP_C_DRAIN, "bad DRAIN header");
        return;
    }
    bool may = bk_operator(b, m, c, "DRAIN");
    for (size_t i = 0; i < b->npeers && may; i++) {
        peer_t *w = b->peers[i];
        if (w->kind == PEER_WORKER && w->serial == id && !w->draining) {
            w->draining = true;
            b->ndraining++;
            mp__log(MP_LOG_INFO, WHO, "worker %s (%s pid %u) draining: %zu dispatch%s to finish",
                    w->hex, w->host, w->pid, w->nrunning, w->nrunning == 1 ? "" : "es");
        }
    }
    bk_drain_idle(b);
    client_status(b, c);
}

static void client_status(mp_broker_t *b, peer_t *c)
{
    mp__buf_t s, h;
    char hs[8];
    mp__buf_init(&s, NULL, 0);
    mp__buf_init(&h, hs, sizeof hs);
    write_status(b, &s);
    mp__w_array(&h, 0);
    zmq_msg_t f;
    if (zmq_msg_init_size(&f, s.size) == 0) {
        memcpy(zmq_msg_data(&f), s.data, s.size);
        bk_send_to(b, c, MPP_B_STATUS, &h, &f, 1);
    }
    mp__buf_release(&s);
}

void bk_on_client(mp_broker_t *b, mpp_msg_t *m, const void *id, size_t idlen, uint8_t cmd,
                  mp__rd_t *r)
{
    peer_t *c = bk_peer_find(b, id, idlen);
    if (c && c->kind != PEER_CLIENT) {
        bk_malformed(b, c, NULL, cmd, "client command from a worker");
        return;
    }
    if (!c) {
        if (cmd == MPP_C_DISCONNECT || cmd == MPP_C_HEARTBEAT)
            return;
        if (cmd != MPP_C_HELLO) {
            /* tell it: HELLO first (it may be a client of a broker that restarted) */
            bk_disconnect_id(b, id, idlen, MPP_SIG_CLIENT, MPP_B_DISCONNECT,
                             "unknown client: HELLO first");
            return;
        }
        if (!bk_admitted(b, m, id, idlen, PEER_CLIENT))
            return;
        c = bk_peer_add(b, m, id, idlen, PEER_CLIENT);
        if (!c)
            return;
    }
    c->last_seen = mp__now_ns();
    switch (cmd) {
    case MPP_C_HELLO:
        client_hello(b, c, r);
        break;
    case MPP_C_SUBMIT:
        client_submit(b, c, r, m);
        bk_dispatch(b);
        break;
    case MPP_C_CANCEL:
        client_cancel(b, c, r);
        break;
    case MPP_C_STATUS:
        client_status(b, c);
        break;
    case MPP_C_DRAIN:
        client_drain(b, c, r, m);
        break;
    case MPP_C_FETCH:
        bk_journal_fetch(b, c, r, m);
        break;
    case MPP_C_FORGET:
        bk_journal_forget(b, c, r, m);
        break;
    case MPP_C_HEARTBEAT:
        break;
    case MPP_C_DISCONNECT:
        bk_client_gone(b, c, "disconnected");
        break;
    default:
        bk_malformed(b, c, NULL, cmd, "unknown command");
    }
}
