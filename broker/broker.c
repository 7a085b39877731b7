/*  broker.c - the MPP/1 broker engine (docs/PROTOCOL.md).

    One thread, one ROUTER socket bound to every endpoint, one control PAIR
    for stop. State:

      peer    a client or a worker, by routing id (a short array: a broker
              serves tens of peers, and a scan of 5-byte ids is cheaper than
              hashing at that size)
      chunk   what a client submitted: its items frame (a zmq_msg_t moved
              from the SUBMIT, never copied), task name, mode, init frame,
              and how many of its items are not answered yet
      unit    a dispatchable range [base, base+count) of a chunk with an
              attempt number; queued in its name's FIFO or running on one
              worker under a dispatch id. A chunk starts as one unit; an
              executor death splits one (PROTOCOL.md section 7).

    Invariants: every unit is in exactly one place (a queue or a worker's
    running list); a chunk is freed when its last unit is answered; a result
    is forwarded only for a unit that is running on the worker that sent it
    (so each item is answered once); an orphaned chunk (its client left) is
    still tracked until its running units come back, then dropped.

    The items and values frames travel through the broker without being
    decoded: the broker reads headers only (validated), so a map of ints
    costs it a few microseconds per chunk, whatever the chunk holds.
*/
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "broker_impl.h"
#include "base/log.h"
#include "mp/broker.h"
#include "mp/error.h"
#include "codec/mpp.h"
#include "pool/poolshm.h"
#include "codec/wire.h"

#define WHO "mp-broker"
#define MAX_ENDPOINT 256

typedef struct peer peer_t;
typedef struct chunk chunk_t;
typedef struct unit unit_t;
typedef struct queue queue_t;

struct chunk {
    peer_t *client; /* NULL once the client left */
    uint64_t chunk_id;
    char name[MPP_MAX_NAME + 1];
    uint8_t mode;
    size_t count;
    size_t pending;  /* items not answered yet */
    zmq_msg_t items; /* empty when shm */
    zmq_msg_t init;
    /* the items are in the embedded pool's input ring (poolshm.h): count
       values at arena offset shm_pos, shm_len bytes */
    bool shm;
    uint64_t shm_pos, shm_len;
    bool has_init;
    chunk_t *next, *prev; /* in the client's chunk list */
};

struct unit {
    chunk_t *chunk;
    size_t base, count;
    unsigned attempt;
    zmq_msg_t items; /* this range's items frame (shares the chunk's data) */
    uint64_t dispatch_id;
    peer_t *worker;  /* running on, or NULL when queued */
    char cause[160]; /* why the last attempt was lost */
    unit_t *next, *prev;
};

struct queue {
    char name[MPP_MAX_NAME + 1];
    unit_t *head, *tail;
    size_t depth;
    queue_t *next;
};

enum { PEER_CLIENT, PEER_WORKER };

struct peer {
    uint8_t id[256];
    size_t idlen;
    char hex[16];
    int kind;
    uint64_t last_seen; /* ns */
    uint64_t expiry_ns;
    /* client */
    chunk_t *chunks;
    size_t queued;
    /* worker */
    char **names;
    size_t nnames;
    unsigned processes;
    unsigned credit;
    uint64_t last_used;
    unit_t *running;
    size_t nrunning;
    uint64_t done, failed;
    char host[128];
    unsigned pid;
    uint64_t serial;
    uint64_t shm_id; /* READY: the pool rings it shares with us, 0: none */
};

struct mp_broker {
    void *ctx;
    bool own_ctx;
    void *router;
    void *ctl_main, *ctl_thread;
    pthread_t thread;
    bool started;
    char **endpoints;
    size_t nendpoints;
    int heartbeat_ms;
    unsigned max_attempts;
    size_t max_message;
    size_t max_queued;
    mp__pshm_t *shm; /* embedded: the pool's rings, or NULL */
    /* thread state */
    peer_t **peers;
    size_t npeers, peercap;
    queue_t *queues;
    uint64_t next_dispatch;
    uint64_t use_counter;
    uint64_t peer_serial;
    uint64_t started_ns;
    uint64_t done, failed, lost, malformed;
};

static uint64_t now_ns(void)
{
    return mp__now_ns();
}

/* ---- peers ------------------------------------------------------------------ */

static peer_t *peer_find(mp_broker_t *b, const void *id, size_t idlen)
{
    for (size_t i = 0; i < b->npeers; i++)
        if (b->peers[i]->idlen == idlen && memcmp(b->peers[i]->id, id, idlen) == 0)
            return b->peers[i];
    return NULL;
}

static peer_t *peer_add(mp_broker_t *b, const void *id, size_t idlen, int kind)
{
    if (idlen > sizeof((peer_t *)0)->id)
        return NULL;
    if (b->npeers == b->peercap) {
        size_t cap = b->peercap ? b->peercap * 2 : 16;
        peer_t **grown = realloc(b->peers, cap * sizeof *grown);
        if (!grown)
            return NULL;
        b->peers = grown;
        b->peercap = cap;
    }
    peer_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    memcpy(p->id, id, idlen);
    p->idlen = idlen;
    mpp_id_hex(id, idlen < 6 ? idlen : 6, p->hex, sizeof p->hex);
    p->kind = kind;
    p->last_seen = now_ns();
    p->expiry_ns = (uint64_t)b->heartbeat_ms * MPP_LIVENESS * 1000000ull;
    p->serial = ++b->peer_serial;
    b->peers[b->npeers++] = p;
    return p;
}

static void peer_remove(mp_broker_t *b, peer_t *p)
{
    for (size_t i = 0; i < b->npeers; i++)
        if (b->peers[i] == p) {
            b->peers[i] = b->peers[--b->npeers];
            break;
        }
    for (size_t i = 0; i < p->nnames; i++)
        free(p->names[i]);
    free(p->names);
    free(p);
}

static size_t total_processes(mp_broker_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->npeers; i++)
        if (b->peers[i]->kind == PEER_WORKER)
            n += b->peers[i]->processes;
    return n;
}

static size_t worker_count(mp_broker_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->npeers; i++)
        n += b->peers[i]->kind == PEER_WORKER;
    return n;
}

static bool serves(const peer_t *w, const char *name)
{
    for (size_t i = 0; i < w->nnames; i++)
        if (strcmp(w->names[i], name) == 0)
            return true;
    return false;
}

static bool anyone_serves(mp_broker_t *b, const char *name)
{
    for (size_t i = 0; i < b->npeers; i++)
        if (b->peers[i]->kind == PEER_WORKER && serves(b->peers[i], name))
            return true;
    return false;
}

/* ---- sending ----------------------------------------------------------------- */

/* Sends to a peer; EHOSTUNREACH means it is gone (ROUTER_MANDATORY). */
static int send_to(mp_broker_t *b, peer_t *p, uint8_t cmd, mp__buf_t *hdr, zmq_msg_t *payload,
                   int npayload)
{
    const char *sig = p->kind == PEER_WORKER ? MPP_SIG_WORKER : MPP_SIG_CLIENT;
    int rc = mpp_send(b->router, p->id, p->idlen, sig, cmd, hdr->data, hdr->size, payload, npayload,
                      ZMQ_DONTWAIT);
    if (rc)
        mp__log(MP_LOG_DEBUG, WHO, "send to %s failed: %s", p->hex, zmq_strerror(-rc));
    return rc;
}

/* DISCONNECT [why] to a routing id the broker does not know as a peer. */
static void disconnect_id(mp_broker_t *b, const void *id, size_t idlen, const char *sig,
                          uint8_t cmd, const char *why)
{
    char hs[64];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 1);
    mp__w_str(&h, why);
    mpp_send(b->router, id, idlen, sig, cmd, h.data, h.size, NULL, 0, ZMQ_DONTWAIT);
    mp__buf_release(&h);
}

static void send_failed(mp_broker_t *b, peer_t *c, uint64_t chunk_id, int code, const char *msg)
{
    char st[512];
    mp__buf_t h;
    mp__buf_init(&h, st, sizeof st);
    mp__w_array(&h, 3);
    mp__w_uint(&h, chunk_id);
    mp__w_int(&h, code);
    mp__w_str(&h, msg);
    send_to(b, c, MPP_B_FAILED, &h, NULL, 0);
    mp__buf_release(&h);
}

/* Answers the items of u with one error each (kind, code, message). */
static void answer_with_errors(mp_broker_t *b, unit_t *u, int kind, int code, const char *msg)
{
    chunk_t *ch = u->chunk;
    ch->pending -= u->count;
    if (kind == MPP_KIND_WORKER_LOST)
        b->lost += u->count;
    else
        b->failed += u->count;
    if (!ch->client)
        return;
    mp__buf_t vals, errs, h;
    char hs[64];
    mp__buf_init(&vals, NULL, 0);
    mp__buf_init(&errs, NULL, 0);
    mp__buf_init(&h, hs, sizeof hs);
    int rc = mp__w_array(&vals, u->count);
    rc = rc ? rc : mp__w_array(&errs, u->count);
    const char *host = u->worker ? u->worker->host : "";
    unsigned pid = u->worker ? u->worker->pid : 0;
    for (size_t i = 0; i < u->count && !rc; i++) {
        rc = mp__w_nil(&vals);
        rc = rc ? rc : mp__w_array(&errs, 6);
        rc = rc ? rc : mp__w_uint(&errs, i);
        rc = rc ? rc : mp__w_int(&errs, code);
        rc = rc ? rc : mp__w_uint(&errs, (uint64_t)kind);
        rc = rc ? rc : mp__w_str(&errs, msg);
        rc = rc ? rc : mp__w_str(&errs, host);
        rc = rc ? rc : mp__w_uint(&errs, pid);
    }
    mp__w_array(&h, 4);
    mp__w_uint(&h, ch->chunk_id);
    mp__w_uint(&h, u->base);
    mp__w_uint(&h, u->count);
    mp__w_uint(&h, u->count);
    if (rc == 0) {
        zmq_msg_t frames[2];
        zmq_msg_init_size(&frames[0], vals.size);
        memcpy(zmq_msg_data(&frames[0]), vals.data, vals.size);
        zmq_msg_init_size(&frames[1], errs.size);
        memcpy(zmq_msg_data(&frames[1]), errs.data, errs.size);
        send_to(b, ch->client, MPP_B_RESULT, &h, frames, 2);
    } else {
        mp__log(MP_LOG_ERROR, WHO, "out of memory answering chunk %llu",
                (unsigned long long)ch->chunk_id);
    }
    mp__buf_release(&vals);
    mp__buf_release(&errs);
    mp__buf_release(&h);
}

/* ---- chunks and units -------------------------------------------------------- */

static void chunk_free(mp_broker_t *b, chunk_t *ch)
{
    if (ch->client) {
        peer_t *c = ch->client;
        if (ch->prev)
            ch->prev->next = ch->next;
        else
            c->chunks = ch->next;
        if (ch->next)
            ch->next->prev = ch->prev;
    }
    zmq_msg_close(&ch->items);
    if (ch->has_init)
        zmq_msg_close(&ch->init);
    free(ch);
    (void)b;
}

static void unit_free(mp_broker_t *b, unit_t *u)
{
    chunk_t *ch = u->chunk;
    zmq_msg_close(&u->items);
    free(u);
    if (ch->pending == 0)
        chunk_free(b, ch);
}

static queue_t *queue_get(mp_broker_t *b, const char *name, bool create)
{
    for (queue_t *q = b->queues; q; q = q->next)
        if (strcmp(q->name, name) == 0)
            return q;
    if (!create)
        return NULL;
    queue_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    snprintf(q->name, sizeof q->name, "%s", name);
    q->next = b->queues;
    b->queues = q;
    return q;
}

static void queue_push(queue_t *q, unit_t *u, bool front)
{
    u->worker = NULL;
    if (front) {
        u->prev = NULL;
        u->next = q->head;
        if (q->head)
            q->head->prev = u;
        else
            q->tail = u;
        q->head = u;
    } else {
        u->next = NULL;
        u->prev = q->tail;
        if (q->tail)
            q->tail->next = u;
        else
            q->head = u;
        q->tail = u;
    }
    q->depth++;
    if (u->chunk->client)
        u->chunk->client->queued++;
}

static void queue_unlink(queue_t *q, unit_t *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else
        q->head = u->next;
    if (u->next)
        u->next->prev = u->prev;
    else
        q->tail = u->prev;
    u->next = u->prev = NULL;
    q->depth--;
    if (u->chunk->client && u->chunk->client->queued)
        u->chunk->client->queued--;
}

static void running_unlink(peer_t *w, unit_t *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else
        w->running = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->next = u->prev = NULL;
    w->nrunning--;
}

/* Values [from, to) of the values back to back at r (r moves past them):
   where they start and how many bytes they take. MP_EBADMSG when r does
   not hold that many. */
static int values_span(mp__rd_t *r, size_t from, size_t to, const uint8_t **start, size_t *bytes)
{
    *start = r->p;
    for (size_t i = 0; i < to; i++) {
        if (i == from)
            *start = r->p;
        if (mp__rd_skip(r))
            return MP_EBADMSG;
    }
    *bytes = (size_t)(r->p - *start);
    return 0;
}

/* An items frame of count values: their array header, then bytes at p. */
static int items_frame(zmq_msg_t *dst, size_t count, const void *p, size_t bytes)
{
    char ah[8];
    mp__buf_t arr;
    mp__buf_init(&arr, ah, sizeof ah);
    mp__w_array(&arr, count);
    if (zmq_msg_init_size(dst, arr.size + bytes))
        return MP_ENOMEM;
    memcpy(zmq_msg_data(dst), arr.data, arr.size);
    memcpy((char *)zmq_msg_data(dst) + arr.size, p, bytes);
    return 0;
}

/* Builds the items frame of units [from, to) of chunk items in src. */
static int slice_items(const zmq_msg_t *src, size_t from, size_t to, zmq_msg_t *dst)
{
    mp__rd_t r;
    size_t n, bytes;
    const uint8_t *start;
    mp__rd_init(&r, zmq_msg_data((zmq_msg_t *)src), zmq_msg_size((zmq_msg_t *)src));
    if (mp__rd_array(&r, &n) || to > n || values_span(&r, from, to, &start, &bytes))
        return MP_EBADMSG;
    return items_frame(dst, to - from, start, bytes);
}

/* A new unit for items [base, base+count) of ch, from the items frame src
   whose item 0 is item `src_base` of the chunk. */
static unit_t *unit_slice(unit_t *u, size_t base, size_t count, unsigned attempt)
{
    unit_t *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    if (u->chunk->shm) /* a range of the ring's items: nothing to copy */
        zmq_msg_init(&v->items);
    else if (slice_items(&u->items, base - u->base, base - u->base + count, &v->items)) {
        free(v);
        return NULL;
    }
    v->chunk = u->chunk;
    v->base = base;
    v->count = count;
    v->attempt = attempt;
    snprintf(v->cause, sizeof v->cause, "%s", u->cause);
    return v;
}

/* Puts u back in its queue after its worker lost it (whole unit), counting
   an attempt; past max_attempts the items end as WORKER_LOST. */
static void requeue_or_lose(mp_broker_t *b, unit_t *u, bool count_attempt, const char *cause)
{
    snprintf(u->cause, sizeof u->cause, "%s", cause);
    if (!u->chunk->client) { /* nobody waits for it */
        u->chunk->pending -= u->count;
        unit_free(b, u);
        return;
    }
    if (count_attempt && u->attempt >= b->max_attempts) {
        char msg[256];
        snprintf(msg, sizeof msg, "worker lost after %u attempts: %s", u->attempt, cause);
        mp__log(MP_LOG_WARN, WHO, "chunk %llu items %zu..%zu of %s: %s",
                (unsigned long long)u->chunk->chunk_id, u->base, u->base + u->count - 1,
                u->chunk->name, msg);
        answer_with_errors(b, u, MPP_KIND_WORKER_LOST, MP_EWORKERLOST, msg);
        unit_free(b, u);
        return;
    }
    if (count_attempt)
        u->attempt++;
    u->worker = NULL;
    queue_t *q = queue_get(b, u->chunk->name, true);
    if (!q) {
        answer_with_errors(b, u, MPP_KIND_WORKER_LOST, MP_EWORKERLOST, "broker out of memory");
        unit_free(b, u);
        return;
    }
    queue_push(q, u, true);
}

/* Fails every queued unit of names nobody serves, when workers exist. */
static void fail_unserved(mp_broker_t *b)
{
    if (worker_count(b) == 0)
        return;
    for (queue_t *q = b->queues; q; q = q->next) {
        if (!q->head || anyone_serves(b, q->name))
            continue;
        char msg[MPP_MAX_NAME + 64];
        snprintf(msg, sizeof msg, "unknown task: no worker serves '%s'", q->name);
        while (q->head) {
            unit_t *u = q->head;
            queue_unlink(q, u);
            answer_with_errors(b, u, MPP_KIND_UNKNOWN, MP_EUNKNOWNTASK, msg);
            unit_free(b, u);
        }
    }
}

/* ---- dispatch ------------------------------------------------------------- */

static peer_t *pick_worker(mp_broker_t *b, const char *name)
{
    peer_t *best = NULL;
    for (size_t i = 0; i < b->npeers; i++) {
        peer_t *w = b->peers[i];
        if (w->kind != PEER_WORKER || w->credit == 0 || !serves(w, name))
            continue;
        if (!best || w->last_used < best->last_used)
            best = w;
    }
    return best;
}

static void worker_lost(mp_broker_t *b, peer_t *w, const char *cause, bool count_attempts);

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
        if (values_span(&r, u->base, u->base + u->count, &start, &bytes))
            return MP_EBADMSG;
    }
    *pos = ch->shm_pos + (uint64_t)(start - (const uint8_t *)items);
    *len = bytes;
    if (by_ref) {
        zmq_msg_init(frame);
        return 0;
    }
    return items_frame(frame, u->count, start, bytes);
}

static void dispatch(mp_broker_t *b)
{
    for (queue_t *q = b->queues; q; q = q->next) {
        while (q->head) {
            peer_t *w = pick_worker(b, q->name);
            if (!w)
                break;
            unit_t *u = q->head;
            queue_unlink(q, u);
            chunk_t *ch = u->chunk;
            zmq_msg_t frames[2];
            uint64_t pos = 0, len = 0;
            /* items in the pool's ring: by reference to a worker that shares
               it, copied into the frame for any other */
            bool by_ref = ch->shm && w->shm_id == mp__pshm_id(b->shm);
            int rc = ch->shm ? shm_items(b, u, by_ref, &pos, &len, &frames[0]) : 0;
            if (rc) {
                answer_with_errors(b, u, rc == MP_ENOMEM ? MPP_KIND_WORKER_LOST : MPP_KIND_BADARGS,
                                   rc == MP_ENOMEM ? MP_EWORKERLOST : MP_EBADARGS,
                                   rc == MP_ENOMEM ? "broker out of memory"
                                                   : "malformed items in the pool's ring");
                unit_free(b, u);
                continue;
            }
            u->dispatch_id = ++b->next_dispatch;
            char hs[MPP_MAX_NAME + 64];
            mp__buf_t h;
            mp__buf_init(&h, hs, sizeof hs);
            mp__w_array(&h, by_ref ? 6 : 5);
            mp__w_uint(&h, u->dispatch_id);
            mp__w_str(&h, ch->name);
            mp__w_uint(&h, ch->mode);
            mp__w_uint(&h, u->count);
            mp__w_uint(&h, u->attempt);
            if (by_ref) {
                mp__w_array(&h, 2);
                mp__w_uint(&h, pos);
                mp__w_uint(&h, len);
            }
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
            u->next = w->running;
            u->prev = NULL;
            if (w->running)
                w->running->prev = u;
            w->running = u;
            w->nrunning++;
            w->credit--;
            w->last_used = ++b->use_counter;
            rc = send_to(b, w, MPP_B_TASK, &h, frames, n);
            mp__buf_release(&h);
            if (rc) { /* the worker is gone: its units (this one too) go back */
                worker_lost(b, w, "worker unreachable", false);
                continue;
            }
            mp__log(MP_LOG_DEBUG, WHO,
                    "dispatch %llu: %s chunk %llu items %zu..%zu attempt %u -> %s",
                    (unsigned long long)u->dispatch_id, ch->name, (unsigned long long)ch->chunk_id,
                    u->base, u->base + u->count - 1, u->attempt, w->hex);
        }
    }
}

/* ---- worker and client departures --------------------------------------- */

/* Tells every client the executor count now (embedded pools wait for it). */
static void announce_processes(mp_broker_t *b)
{
    char hs[32];
    mp__buf_t h;
    size_t n = total_processes(b);
    for (size_t i = 0; i < b->npeers; i++) {
        if (b->peers[i]->kind != PEER_CLIENT)
            continue;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, 1);
        mp__w_uint(&h, n);
        send_to(b, b->peers[i], MPP_B_HEARTBEAT, &h, NULL, 0);
    }
}

static void worker_lost(mp_broker_t *b, peer_t *w, const char *cause, bool count_attempts)
{
    mp__log(count_attempts || w->nrunning ? MP_LOG_WARN : MP_LOG_INFO, WHO,
            "worker %s (%s pid %u) %s: %s; %zu dispatch%s re-queued", w->hex, w->host, w->pid,
            count_attempts ? "lost" : "left", cause, w->nrunning, w->nrunning == 1 ? "" : "es");
    while (w->running) {
        unit_t *u = w->running;
        running_unlink(w, u);
        char why[200];
        snprintf(why, sizeof why, "%s (worker %s pid %u)", cause, w->host, w->pid);
        requeue_or_lose(b, u, count_attempts, why);
    }
    peer_remove(b, w);
    fail_unserved(b);
    announce_processes(b);
}

static void client_gone(mp_broker_t *b, peer_t *c, const char *why)
{
    size_t dropped = 0;
    for (queue_t *q = b->queues; q; q = q->next) {
        unit_t *u = q->head;
        while (u) {
            unit_t *next = u->next;
            if (u->chunk->client == c) {
                queue_unlink(q, u);
                u->chunk->pending -= u->count;
                unit_free(b, u);
                dropped++;
            }
            u = next;
        }
    }
    /* chunks with running units stay, orphaned, until those come back */
    chunk_t *ch = c->chunks;
    while (ch) {
        chunk_t *next = ch->next;
        ch->client = NULL;
        ch->next = ch->prev = NULL;
        ch = next;
    }
    c->chunks = NULL;
    mp__log(MP_LOG_INFO, WHO, "client %s gone (%s); %zu queued dispatch%s dropped", c->hex, why,
            dropped, dropped == 1 ? "" : "es");
    peer_remove(b, c);
}

/* ---- client commands ------------------------------------------------------ */

static void malformed(mp_broker_t *b, peer_t *p, const char *hex, uint8_t cmd, const char *why)
{
    b->malformed++;
    mp__log(MP_LOG_WARN, WHO, "malformed message from %s (command 0x%02x): %s; dropped",
            p ? p->hex : hex, cmd, why);
}

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
    mp__w_array(&h, 4);
    mp__w_str(&h, MP_BROKER_VERSION);
    mp__w_uint(&h, (uint64_t)b->heartbeat_ms);
    mp__w_uint(&h, total_processes(b));
    mp__w_uint(&h, b->max_message);
    send_to(b, c, MPP_B_WELCOME, &h, NULL, 0);
    mp__log(MP_LOG_INFO, WHO, "client %s hello: %.*s", c->hex, (int)(namelen > 64 ? 64 : namelen),
            name);
}

static void client_submit(mp_broker_t *b, peer_t *c, mp__rd_t *r, mpp_msg_t *m)
{
    size_t n, namelen;
    uint64_t chunk_id, mode, count;
    const char *name;
    if (mp__rd_array(r, &n) || n < 4 || mp__rd_uint(r, &chunk_id)) {
        malformed(b, c, NULL, MPP_C_SUBMIT, "bad SUBMIT header");
        return;
    }
    const char *why = NULL;
    if (mp__rd_str(r, &name, &namelen) || namelen == 0 || namelen > MPP_MAX_NAME)
        why = "bad task name";
    else if (mp__rd_uint(r, &mode) || mode > MPP_MODE_STAR)
        why = "bad mode";
    else if (mp__rd_uint(r, &count) || count == 0 || count > MPP_MAX_COUNT)
        why = "bad count";
    else if (m->n != 5 && m->n != 6)
        why = "wrong number of frames";
    size_t k;
    uint64_t shm[2] = {0, 0};
    bool by_shm = !why && n >= 5;
    if (by_shm) { /* [pos len]: the items are in the pool's ring */
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
    if (why) {
        malformed(b, c, NULL, MPP_C_SUBMIT, why);
        send_failed(b, c, chunk_id, MP_EBADREQUEST, why);
        return;
    }
    char tname[MPP_MAX_NAME + 1];
    memcpy(tname, name, namelen);
    tname[namelen] = '\0';
    if (worker_count(b) > 0 && !anyone_serves(b, tname)) {
        char msg[MPP_MAX_NAME + 64];
        snprintf(msg, sizeof msg, "unknown task: no worker serves '%s'", tname);
        send_failed(b, c, chunk_id, MP_EUNKNOWNTASK, msg);
        b->failed += count;
        return;
    }
    if (c->queued >= b->max_queued) {
        send_failed(b, c, chunk_id, MP_EOVERLOADED, "too many queued chunks for this client");
        return;
    }
    chunk_t *ch = calloc(1, sizeof *ch);
    unit_t *u = calloc(1, sizeof *u);
    queue_t *q = queue_get(b, tname, true);
    if (!ch || !u || !q) {
        free(ch);
        free(u);
        send_failed(b, c, chunk_id, MP_EOVERLOADED, "broker out of memory");
        return;
    }
    ch->client = c;
    ch->chunk_id = chunk_id;
    memcpy(ch->name, tname, namelen + 1);
    ch->mode = (uint8_t)mode;
    ch->count = ch->pending = count;
    ch->shm = by_shm;
    ch->shm_pos = shm[0];
    ch->shm_len = shm[1];
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
    queue_push(q, u, false);
}

static void client_cancel(mp_broker_t *b, peer_t *c, mp__rd_t *r)
{
    size_t n;
    uint64_t chunk_id;
    if (mp__rd_array(r, &n) || n < 1 || mp__rd_uint(r, &chunk_id)) {
        malformed(b, c, NULL, MPP_C_CANCEL, "bad CANCEL header");
        return;
    }
    for (queue_t *q = b->queues; q; q = q->next) {
        unit_t *u = q->head;
        while (u) {
            unit_t *next = u->next;
            if (u->chunk->client == c && u->chunk->chunk_id == chunk_id) {
                queue_unlink(q, u);
                answer_with_errors(b, u, MPP_KIND_TASK, MP_ECANCELLED, "cancelled");
                unit_free(b, u);
            }
            u = next;
        }
    }
}

static void write_status(mp_broker_t *b, mp__buf_t *s)
{
    size_t nw = worker_count(b), nq = 0;
    for (queue_t *q = b->queues; q; q = q->next)
        nq += q->depth > 0;
    mp__w_map(s, 8);
    mp__w_str(s, "version");
    mp__w_str(s, MP_BROKER_VERSION);
    mp__w_str(s, "uptime_ms");
    mp__w_uint(s, (now_ns() - b->started_ns) / 1000000);
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
    mp__w_str(s, "workers");
    mp__w_array(s, nw);
    for (size_t i = 0; i < b->npeers; i++) {
        peer_t *w = b->peers[i];
        if (w->kind != PEER_WORKER)
            continue;
        mp__w_map(s, 9);
        mp__w_str(s, "id");
        mp__w_uint(s, w->serial);
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
        send_to(b, c, MPP_B_STATUS, &h, &f, 1);
    }
    mp__buf_release(&s);
}

static void on_client(mp_broker_t *b, mpp_msg_t *m, const void *id, size_t idlen, uint8_t cmd,
                      mp__rd_t *r)
{
    peer_t *c = peer_find(b, id, idlen);
    if (c && c->kind != PEER_CLIENT) {
        malformed(b, c, NULL, cmd, "client command from a worker");
        return;
    }
    if (!c) {
        if (cmd == MPP_C_DISCONNECT || cmd == MPP_C_HEARTBEAT)
            return;
        if (cmd != MPP_C_HELLO) {
            /* tell it: HELLO first (it may be a client of a broker that restarted) */
            disconnect_id(b, id, idlen, MPP_SIG_CLIENT, MPP_B_DISCONNECT,
                          "unknown client: HELLO first");
            return;
        }
        c = peer_add(b, id, idlen, PEER_CLIENT);
        if (!c)
            return;
    }
    c->last_seen = now_ns();
    switch (cmd) {
    case MPP_C_HELLO:
        client_hello(b, c, r);
        break;
    case MPP_C_SUBMIT:
        client_submit(b, c, r, m);
        dispatch(b);
        break;
    case MPP_C_CANCEL:
        client_cancel(b, c, r);
        break;
    case MPP_C_STATUS:
        client_status(b, c);
        break;
    case MPP_C_HEARTBEAT:
        break;
    case MPP_C_DISCONNECT:
        client_gone(b, c, "disconnected");
        break;
    default:
        malformed(b, c, NULL, cmd, "unknown command");
    }
}

/* ---- worker commands ------------------------------------------------------ */

/* false when the READY was malformed (the worker is left as it was) */
static bool worker_ready(mp_broker_t *b, peer_t *w, mp__rd_t *r)
{
    size_t n, nnames;
    if (mp__rd_array(r, &n) || n < 5 || mp__rd_array(r, &nnames) || nnames > MPP_MAX_NAMES) {
        malformed(b, w, NULL, MPP_W_READY, "bad READY header");
        return false;
    }
    char **names = calloc(nnames ? nnames : 1, sizeof *names);
    if (!names)
        return false;
    size_t k = 0;
    bool ok = true;
    for (; k < nnames && ok; k++) {
        const char *s;
        size_t len;
        ok = mp__rd_str(r, &s, &len) == 0 && len > 0 && len <= MPP_MAX_NAME &&
             (names[k] = strndup(s, len)) != NULL;
    }
    uint64_t processes = 0, credit = 0, pid = 0;
    const char *host = "";
    size_t hostlen = 0;
    ok = ok && mp__rd_uint(r, &processes) == 0 && mp__rd_uint(r, &credit) == 0 &&
         mp__rd_str(r, &host, &hostlen) == 0 && mp__rd_uint(r, &pid) == 0 && processes <= 65536 &&
         credit <= 65536;
    uint64_t shm_id = 0;
    if (ok && n >= 6 && mp__rd_uint(r, &shm_id))
        shm_id = 0; /* not the pool's rings: items travel in frames */
    if (!ok) {
        for (size_t i = 0; i < nnames; i++)
            free(names[i]);
        free(names);
        malformed(b, w, NULL, MPP_W_READY, "bad READY fields");
        return false;
    }
    for (size_t i = 0; i < w->nnames; i++)
        free(w->names[i]);
    free(w->names);
    w->names = names;
    w->nnames = nnames;
    w->processes = (unsigned)processes;
    /* credit counts what the worker holds: a repeated READY keeps that */
    w->credit = credit > w->nrunning ? (unsigned)(credit - w->nrunning) : 0;
    snprintf(w->host, sizeof w->host, "%.*s", (int)(hostlen > 127 ? 127 : hostlen), host);
    w->pid = (unsigned)pid;
    w->shm_id = b->shm && shm_id == mp__pshm_id(b->shm) ? shm_id : 0;
    mp__log(MP_LOG_INFO, WHO,
            "worker %s ready: host %s pid %u, %u processes, credit %u, %zu task%s", w->hex, w->host,
            w->pid, w->processes, (unsigned)credit, nnames, nnames == 1 ? "" : "s");
    return true;
}

static unit_t *find_running(peer_t *w, uint64_t dispatch_id)
{
    for (unit_t *u = w->running; u; u = u->next)
        if (u->dispatch_id == dispatch_id)
            return u;
    return NULL;
}

static void worker_result(mp_broker_t *b, peer_t *w, mp__rd_t *r, mpp_msg_t *m)
{
    size_t n;
    uint64_t dispatch_id, count, nerrors;
    if (mp__rd_array(r, &n) || n < 3 || mp__rd_uint(r, &dispatch_id) || mp__rd_uint(r, &count) ||
        mp__rd_uint(r, &nerrors) || m->n < 5 || m->n != (nerrors ? 6 : 5)) {
        malformed(b, w, NULL, MPP_W_RESULT, "bad RESULT header or frames");
        return;
    }
    unit_t *u = find_running(w, dispatch_id);
    if (!u) {
        mp__log(MP_LOG_DEBUG, WHO, "late result for dispatch %llu from %s discarded",
                (unsigned long long)dispatch_id, w->hex);
        return;
    }
    /* [slot at vsize]: the values are in the executor's output ring, for
       the pool that shares it (only a chunk of its gets such a reply) */
    uint64_t ring[3];
    size_t k;
    bool in_ring = n >= 4;
    bool bad = count != u->count || nerrors > count;
    if (in_ring)
        bad = bad || !u->chunk->shm || !w->shm_id || mp__rd_array(r, &k) || k < 3 ||
              mp__rd_uint(r, &ring[0]) || mp__rd_uint(r, &ring[1]) || mp__rd_uint(r, &ring[2]) ||
              mpp_size(m, 4) != 0;
    mp__rd_t vr;
    size_t nv;
    mp__rd_init(&vr, mpp_data(m, 4), mpp_size(m, 4));
    if (bad || (!in_ring && (mp__rd_array(&vr, &nv) || nv != count))) {
        /* a worker that answers wrongly is treated as having lost the unit */
        malformed(b, w, NULL, MPP_W_RESULT, "values frame does not match the dispatch");
        running_unlink(w, u);
        w->credit++;
        requeue_or_lose(b, u, true, "worker sent a malformed result");
        dispatch(b);
        return;
    }
    running_unlink(w, u);
    w->credit++;
    w->done += count - nerrors;
    w->failed += nerrors;
    b->done += count - nerrors;
    b->failed += nerrors;
    chunk_t *ch = u->chunk;
    ch->pending -= u->count;
    if (ch->client) {
        char hs[64];
        mp__buf_t h;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, in_ring ? 5 : 4);
        mp__w_uint(&h, ch->chunk_id);
        mp__w_uint(&h, u->base);
        mp__w_uint(&h, u->count);
        mp__w_uint(&h, nerrors);
        if (in_ring) {
            mp__w_array(&h, 3);
            for (int i = 0; i < 3; i++)
                mp__w_uint(&h, ring[i]);
        }
        send_to(b, ch->client, MPP_B_RESULT, &h, &m->f[4], nerrors ? 2 : 1);
        /* mpp_send consumed the frames: forget them */
        for (int i = 4; i < m->n; i++)
            zmq_msg_init(&m->f[i]);
    }
    unit_free(b, u);
    dispatch(b);
}

static void worker_lost_item(mp_broker_t *b, peer_t *w, mp__rd_t *r)
{
    size_t n, causelen;
    uint64_t dispatch_id, index;
    const char *cause;
    if (mp__rd_array(r, &n) || n < 3 || mp__rd_uint(r, &dispatch_id) || mp__rd_uint(r, &index) ||
        mp__rd_str(r, &cause, &causelen)) {
        malformed(b, w, NULL, MPP_W_LOST, "bad LOST header");
        return;
    }
    unit_t *u = find_running(w, dispatch_id);
    if (!u)
        return;
    running_unlink(w, u);
    w->credit++;
    char why[200];
    snprintf(why, sizeof why, "%.*s (worker %s pid %u)", (int)(causelen > 100 ? 100 : causelen),
             cause, w->host, w->pid);
    if (index >= u->count)
        index = 0; /* out of range: blame the first item */
    size_t k = (size_t)index;
    mp__log(MP_LOG_WARN, WHO, "dispatch %llu (%s chunk %llu item %zu, attempt %u) lost: %s",
            (unsigned long long)dispatch_id, u->chunk->name, (unsigned long long)u->chunk->chunk_id,
            u->base + k, u->attempt, why);
    /* the innocent items before and after go back unchanged */
    unit_t *before = k > 0 ? unit_slice(u, u->base, k, u->attempt) : NULL;
    unit_t *after =
        k + 1 < u->count ? unit_slice(u, u->base + k + 1, u->count - k - 1, u->attempt) : NULL;
    unit_t *culprit = u->count > 1 ? unit_slice(u, u->base + k, 1, u->attempt) : NULL;
    if ((k > 0 && !before) || (k + 1 < u->count && !after) || (u->count > 1 && !culprit)) {
        /* could not split (out of memory): treat the whole unit as lost */
        free(before);
        free(after);
        free(culprit);
        requeue_or_lose(b, u, true, why);
        dispatch(b);
        return;
    }
    if (after)
        requeue_or_lose(b, after, false, why);
    if (before)
        requeue_or_lose(b, before, false, why);
    if (culprit) {
        zmq_msg_close(&u->items);
        free(u); /* replaced by its slices; the chunk lives on */
        requeue_or_lose(b, culprit, true, why);
    } else {
        requeue_or_lose(b, u, true, why);
    }
    dispatch(b);
}

static void on_worker(mp_broker_t *b, mpp_msg_t *m, const void *id, size_t idlen, uint8_t cmd,
                      mp__rd_t *r)
{
    peer_t *w = peer_find(b, id, idlen);
    if (w && w->kind != PEER_WORKER) {
        malformed(b, w, NULL, cmd, "worker command from a client");
        return;
    }
    bool fresh = !w;
    if (!w) {
        if (cmd == MPP_W_DISCONNECT)
            return;
        if (cmd != MPP_W_READY) {
            disconnect_id(b, id, idlen, MPP_SIG_WORKER, MPP_B_WDISCONNECT,
                          "unknown worker: READY first");
            return;
        }
        w = peer_add(b, id, idlen, PEER_WORKER);
        if (!w)
            return;
    }
    w->last_seen = now_ns();
    switch (cmd) {
    case MPP_W_READY:
        if (!worker_ready(b, w, r)) {
            if (fresh) /* a peer is a worker only once it said READY properly */
                peer_remove(b, w);
            break;
        }
        announce_processes(b);
        dispatch(b);
        break;
    case MPP_W_RESULT:
        worker_result(b, w, r, m);
        break;
    case MPP_W_LOST:
        worker_lost_item(b, w, r);
        break;
    case MPP_W_HEARTBEAT:
        break;
    case MPP_W_DISCONNECT:
        worker_lost(b, w, "worker disconnected", false);
        dispatch(b);
        break;
    default:
        malformed(b, w, NULL, cmd, "unknown command");
    }
}

/* ---- the loop --------------------------------------------------------------- */

static void on_message(mp_broker_t *b, mpp_msg_t *m)
{
    char hex[16] = "?";
    if (m->n >= 1)
        mpp_id_hex(mpp_data(m, 0), mpp_size(m, 0) < 6 ? mpp_size(m, 0) : 6, hex, sizeof hex);
    if (m->too_many || m->n < 4) {
        malformed(b, NULL, hex, 0, m->too_many ? "too many frames" : "too few frames");
        return;
    }
    size_t hmax = MPP_MAX_HEADER;
    if (mpp_size(m, 1) != MPP_SIG_SIZE || mpp_size(m, 2) != 1) {
        malformed(b, NULL, hex, 0, "bad signature or command frame");
        return;
    }
    uint8_t cmd = mpp_data(m, 2)[0];
    bool is_worker = memcmp(mpp_data(m, 1), MPP_SIG_WORKER, MPP_SIG_SIZE) == 0;
    bool is_client = memcmp(mpp_data(m, 1), MPP_SIG_CLIENT, MPP_SIG_SIZE) == 0;
    if (is_worker && cmd == MPP_W_READY)
        hmax = MPP_MAX_READY_HEADER;
    if (!is_worker && !is_client) {
        malformed(b, NULL, hex, cmd, "unknown protocol signature");
        return;
    }
    if (mpp_size(m, 3) > hmax) {
        malformed(b, NULL, hex, cmd, "header too large");
        return;
    }
    mp__rd_t r;
    mp__rd_init(&r, mpp_data(m, 3), mpp_size(m, 3));
    if (is_worker)
        on_worker(b, m, mpp_data(m, 0), mpp_size(m, 0), cmd, &r);
    else
        on_client(b, m, mpp_data(m, 0), mpp_size(m, 0), cmd, &r);
}

static void heartbeat(mp_broker_t *b)
{
    uint64_t now = now_ns();
    char hs[32];
    mp__buf_t h;
    for (size_t i = 0; i < b->npeers;) {
        peer_t *p = b->peers[i];
        if (now - p->last_seen > p->expiry_ns) {
            char why[64];
            snprintf(why, sizeof why, "silent for %llu ms",
                     (unsigned long long)((now - p->last_seen) / 1000000));
            if (p->kind == PEER_WORKER)
                worker_lost(b, p, why, true);
            else
                client_gone(b, p, why);
            continue; /* peers[i] is now another peer */
        }
        mp__buf_init(&h, hs, sizeof hs);
        if (p->kind == PEER_WORKER) {
            mp__w_array(&h, 0);
            send_to(b, p, MPP_B_WHEARTBEAT, &h, NULL, 0);
        } else {
            mp__w_array(&h, 1);
            mp__w_uint(&h, total_processes(b));
            send_to(b, p, MPP_B_HEARTBEAT, &h, NULL, 0);
        }
        i++;
    }
    dispatch(b);
}

static void shutdown_peers(mp_broker_t *b)
{
    char hs[64];
    mp__buf_t h;
    while (b->npeers) {
        peer_t *p = b->peers[b->npeers - 1];
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, 1);
        mp__w_str(&h, "broker shutting down");
        send_to(b, p, p->kind == PEER_WORKER ? MPP_B_WDISCONNECT : MPP_B_DISCONNECT, &h, NULL, 0);
        if (p->kind == PEER_WORKER) {
            while (p->running) { /* nobody will hear about them: drop */
                unit_t *u = p->running;
                running_unlink(p, u);
                u->chunk->pending -= u->count;
                unit_free(b, u);
            }
            peer_remove(b, p);
        } else {
            client_gone(b, p, "broker shutting down");
        }
    }
    while (b->queues) {
        queue_t *q = b->queues;
        while (q->head) {
            unit_t *u = q->head;
            queue_unlink(q, u);
            u->chunk->pending -= u->count;
            unit_free(b, u);
        }
        b->queues = q->next;
        free(q);
    }
}

static void *broker_thread(void *arg)
{
    mp_broker_t *b = arg;
    uint64_t interval = (uint64_t)b->heartbeat_ms * 1000000ull;
    uint64_t next_hb = now_ns() + interval;
    zmq_pollitem_t items[2] = {{b->router, 0, ZMQ_POLLIN, 0}, {b->ctl_thread, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        uint64_t now = now_ns();
        long timeout = next_hb > now ? (long)((next_hb - now) / 1000000) + 1 : 0;
        int rc = zmq_poll(items, 2, timeout);
        if (rc < 0 && errno != EINTR)
            break;
        if (items[1].revents & ZMQ_POLLIN)
            break; /* stop */
        if (items[0].revents & ZMQ_POLLIN) {
            /* drain what is there, bounded so heartbeats keep their pace */
            for (int k = 0; k < 1000; k++) {
                mpp_msg_t m;
                if (mpp_recv(b->router, &m, ZMQ_DONTWAIT))
                    break;
                on_message(b, &m);
                mpp_close(&m);
            }
        }
        if (now_ns() >= next_hb) {
            heartbeat(b);
            next_hb = now_ns() + interval;
        }
    }
    shutdown_peers(b);
    return NULL;
}

/* ---- public ------------------------------------------------------------------ */

static void free_endpoints(mp_broker_t *b)
{
    for (size_t i = 0; i < b->nendpoints; i++) {
        if (strncmp(b->endpoints[i], "ipc://", 6) == 0 && b->endpoints[i][6] != '@')
            unlink(b->endpoints[i] + 6);
        free(b->endpoints[i]);
    }
    free(b->endpoints);
    b->endpoints = NULL;
    b->nendpoints = 0;
}

void mp_broker_destroy(mp_broker_t **b_p)
{
    if (!b_p || !*b_p)
        return;
    mp_broker_t *b = *b_p;
    if (b->started) {
        zmq_send(b->ctl_main, "", 0, 0);
        pthread_join(b->thread, NULL);
    }
    if (b->router)
        zmq_close(b->router);
    if (b->ctl_main)
        zmq_close(b->ctl_main);
    if (b->ctl_thread)
        zmq_close(b->ctl_thread);
    free_endpoints(b);
    free(b->peers);
    if (b->own_ctx && b->ctx)
        zmq_ctx_term(b->ctx);
    free(b);
    *b_p = NULL;
}

int mp_broker_new(const mp_broker_options_t *o, mp_broker_t **b_p)
{
    return mp__broker_new_shm(o, NULL, b_p);
}

int mp__broker_new_shm(const mp_broker_options_t *o, mp__pshm_t *shm, mp_broker_t **b_p)
{
    if (!o || !b_p || !o->binds || o->nbinds == 0)
        return MP_EINVAL;
    mp_broker_t *b = calloc(1, sizeof *b);
    if (!b)
        return MP_ENOMEM;
    b->shm = shm;
    b->heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms : MPP_DEFAULT_HEARTBEAT_MS;
    b->max_attempts = o->max_attempts > 0 ? (unsigned)o->max_attempts : MPP_MAX_ATTEMPTS;
    b->max_message = o->max_message ? o->max_message : MPP_DEFAULT_MAX_MSG;
    b->max_queued = o->max_queued ? o->max_queued : 4096;
    b->started_ns = now_ns();
    if (o->verbose > 0)
        mp__log_set_level(o->verbose > 1 ? MP_LOG_DEBUG : MP_LOG_INFO);
    b->ctx = o->zmq_context;
    if (!b->ctx) {
        b->ctx = zmq_ctx_new();
        b->own_ctx = true;
        if (!b->ctx) {
            free(b);
            return MP_ENOMEM;
        }
    }
    int rc = 0;
    b->router = zmq_socket(b->ctx, ZMQ_ROUTER);
    int one = 1;
    if (!b->router || mpp_socket_setup(b->router, b->max_message) ||
        zmq_setsockopt(b->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one))
        rc = -errno;
    b->endpoints = calloc(o->nbinds, sizeof *b->endpoints);
    if (!rc && !b->endpoints)
        rc = MP_ENOMEM;
    for (size_t i = 0; i < o->nbinds && !rc; i++) {
        if (zmq_bind(b->router, o->binds[i]) < 0) {
            rc = -errno;
            mp__log(MP_LOG_ERROR, WHO, "cannot bind %s: %s", o->binds[i], zmq_strerror(errno));
            break;
        }
        char ep[MAX_ENDPOINT];
        size_t len = sizeof ep;
        if (strncmp(o->binds[i], "inproc://", 9) == 0 ||
            zmq_getsockopt(b->router, ZMQ_LAST_ENDPOINT, ep, &len) < 0)
            snprintf(ep, sizeof ep, "%s", o->binds[i]);
        if (!(b->endpoints[b->nendpoints] = strdup(ep)))
            rc = MP_ENOMEM;
        else
            b->nendpoints++;
    }
    char ctl[64];
    snprintf(ctl, sizeof ctl, "inproc://mp-broker-ctl-%p", (void *)b);
    if (!rc) {
        b->ctl_thread = zmq_socket(b->ctx, ZMQ_PAIR);
        b->ctl_main = zmq_socket(b->ctx, ZMQ_PAIR);
        if (!b->ctl_thread || !b->ctl_main || zmq_bind(b->ctl_thread, ctl) ||
            zmq_connect(b->ctl_main, ctl))
            rc = -errno;
    }
    if (!rc && pthread_create(&b->thread, NULL, broker_thread, b) != 0)
        rc = MP_ENOMEM;
    if (rc) {
        mp_broker_destroy(&b);
        return rc;
    }
    b->started = true;
    mp__log(MP_LOG_INFO, WHO, "started (version %s), %zu endpoint%s", MP_BROKER_VERSION,
            b->nendpoints, b->nendpoints == 1 ? "" : "s");
    *b_p = b;
    return 0;
}

size_t mp_broker_endpoint_count(const mp_broker_t *b)
{
    return b ? b->nendpoints : 0;
}

const char *mp_broker_endpoint(const mp_broker_t *b, size_t i)
{
    return b && i < b->nendpoints ? b->endpoints[i] : NULL;
}
