/*  workers.c - the broker's side of the worker commands (PROTOCOL.md
    section 6): READY, RESULT, LOST, HEARTBEAT, DISCONNECT.

    A result is forwarded only for a unit that is running on the worker
    that sent it, so each item is answered once; a late or unknown one is
    dropped. A LOST names the item whose executor died: the items before and
    after it go back unchanged, the culprit alone counts an attempt.

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

/* false when the READY was malformed (the worker is left as it was) */
static bool worker_ready(mp_broker_t *b, peer_t *w, mp__rd_t *r)
{
    size_t n, nnames;
    if (mp__rd_array(r, &n) || n < 5 || mp__rd_array(r, &nnames) || nnames > MPP_MAX_NAMES) {
        bk_malformed(b, w, NULL, MPP_W_READY, "bad READY header");
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
        bk_malformed(b, w, NULL, MPP_W_READY, "bad READY fields");
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

/* The answer (RESULT or LOST) to a withdrawn dispatch: its credit comes
   back, its items were answered when it was withdrawn. */
static void drop_cancelled(mp_broker_t *b, peer_t *w, unit_t *u)
{
    bk_running_unlink(w, u);
    w->credit++;
    u->chunk->pending -= bk_unit_left(u);
    bk_unit_free(b, u);
    bk_dispatch(b);
}

static void worker_result(mp_broker_t *b, peer_t *w, mp__rd_t *r, mpp_msg_t *m)
{
    size_t n;
    uint64_t dispatch_id, count, nerrors;
    if (mp__rd_array(r, &n) || n < 3 || mp__rd_uint(r, &dispatch_id) || mp__rd_uint(r, &count) ||
        mp__rd_uint(r, &nerrors) || m->n < 5 || m->n != (nerrors ? 6 : 5)) {
        bk_malformed(b, w, NULL, MPP_W_RESULT, "bad RESULT header or frames");
        return;
    }
    unit_t *u = find_running(w, dispatch_id);
    if (!u) {
        mp__log(MP_LOG_DEBUG, WHO, "late result for dispatch %llu from %s discarded",
                (unsigned long long)dispatch_id, w->hex);
        return;
    }
    if (u->cancelled) {
        drop_cancelled(b, w, u);
        return;
    }
    /* [slot at vsize]: the values are in the executor's output ring, for
       the pool that shares it (only a chunk of its gets such a reply) */
    uint64_t ring[3];
    size_t k;
    bool in_ring = n >= 4;
    bool bad = count != bk_unit_left(u) || nerrors > count;
    if (in_ring)
        bad = bad || !u->chunk->shm || !w->shm_id || mp__rd_array(r, &k) || k < 3 ||
              mp__rd_uint(r, &ring[0]) || mp__rd_uint(r, &ring[1]) || mp__rd_uint(r, &ring[2]) ||
              mpp_size(m, 4) != 0;
    mp__rd_t vr;
    size_t nv;
    mp__rd_init(&vr, mpp_data(m, 4), mpp_size(m, 4));
    if (bad || (!in_ring && (mp__rd_array(&vr, &nv) || nv != count))) {
        /* a worker that answers wrongly is treated as having lost the unit */
        bk_malformed(b, w, NULL, MPP_W_RESULT, "values frame does not match the dispatch");
        bk_running_unlink(w, u);
        w->credit++;
        bk_requeue_or_lose(b, u, true, "worker sent a malformed result");
        bk_dispatch(b);
        return;
    }
    bk_running_unlink(w, u);
    w->credit++;
    w->done += count - nerrors;
    w->failed += nerrors;
    b->done += count - nerrors;
    b->failed += nerrors;
    chunk_t *ch = u->chunk;
    ch->queue->stats.items_done += count - nerrors;
    ch->queue->stats.items_failed += nerrors;
    bk_observe_latency(ch->queue, mp__now_ns() - u->dispatched_ns);
    if (nerrors)
        bk_recent_errors(b, ch->name, u->base + u->answered, mpp_data(m, 5), mpp_size(m, 5));
    ch->pending -= bk_unit_left(u);
    if (ch->client) {
        char hs[64];
        mp__buf_t h;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, in_ring ? 5 : 4);
        mp__w_uint(&h, ch->chunk_id);
        mp__w_uint(&h, u->base + u->answered);
        mp__w_uint(&h, count);
        mp__w_uint(&h, nerrors);
        if (in_ring) {
            mp__w_array(&h, 3);
            for (int i = 0; i < 3; i++)
                mp__w_uint(&h, ring[i]);
        }
        bk_send_to(b, ch->client, MPP_B_RESULT, &h, &m->f[4], nerrors ? 2 : 1);
        /* mpp_send consumed the frames: forget them */
        for (int i = 4; i < m->n; i++)
            zmq_msg_init(&m->f[i]);
    } else if (ch->durable) {
        bk_journal_answer(b, ch, u->base + u->answered, count, nerrors, mpp_data(m, 4),
                          mpp_size(m, 4), nerrors ? mpp_data(m, 5) : NULL,
                          nerrors ? mpp_size(m, 5) : 0);
    }
    bk_unit_free(b, u);
    bk_dispatch(b);
}

/* W-PARTIAL [dispatch-id from count nerrors] values [errors]: items
   [from, from + count) of a dispatch still running, answered ahead of the
   item its executor is stuck on (PROTOCOL.md 4.4): forwarded as RESULT,
   recorded as the unit's answered prefix. No credit comes back. */
static void worker_partial(mp_broker_t *b, peer_t *w, mp__rd_t *r, mpp_msg_t *m)
{
    size_t n, nv;
    uint64_t dispatch_id, from, count, nerrors;
    if (mp__rd_array(r, &n) || n < 4 || mp__rd_uint(r, &dispatch_id) || mp__rd_uint(r, &from) ||
        mp__rd_uint(r, &count) || mp__rd_uint(r, &nerrors) || m->n != (nerrors ? 6 : 5)) {
        bk_malformed(b, w, NULL, MPP_W_PARTIAL, "bad PARTIAL header or frames");
        return;
    }
    unit_t *u = find_running(w, dispatch_id);
    if (!u || u->cancelled) /* re-queued, or withdrawn: its answer is dropped */
        return;
    mp__rd_t vr;
    mp__rd_init(&vr, mpp_data(m, 4), mpp_size(m, 4));
    if (from != u->answered || count == 0 || count >= bk_unit_left(u) || nerrors > count ||
        mp__rd_array(&vr, &nv) || nv != count) {
        /* dropped: the dispatch's RESULT will not match it, and the unit
           is then re-queued (after the prefix answered before) */
        bk_malformed(b, w, NULL, MPP_W_PARTIAL, "PARTIAL does not match the dispatch");
        return;
    }
    chunk_t *ch = u->chunk;
    if (nerrors)
        bk_recent_errors(b, ch->name, u->base + from, mpp_data(m, 5), mpp_size(m, 5));
    if (ch->client) {
        char hs[64];
        mp__buf_t h;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, 4);
        mp__w_uint(&h, ch->chunk_id);
        mp__w_uint(&h, u->base + from);
        mp__w_uint(&h, count);
        mp__w_uint(&h, nerrors);
        bk_send_to(b, ch->client, MPP_B_RESULT, &h, &m->f[4], nerrors ? 2 : 1);
        for (int i = 4; i < m->n; i++)
            zmq_msg_init(&m->f[i]);
    } else if (ch->durable) {
        bk_journal_answer(b, ch, u->base + from, count, nerrors, mpp_data(m, 4), mpp_size(m, 4),
                          nerrors ? mpp_data(m, 5) : NULL, nerrors ? mpp_size(m, 5) : 0);
    }
    u->answered += count;
    ch->pending -= count;
    ch->queue->stats.items_done += count - nerrors;
    ch->queue->stats.items_failed += nerrors;
    w->done += count - nerrors;
    w->failed += nerrors;
    b->done += count - nerrors;
    b->failed += nerrors;
}

/* W-RETURN [dispatch-id from]: items [from, count) of a dispatch still
   running wait behind an item its executor is stuck on: they go to the
   front of their queue, without an attempt; the dispatch now ends at from
   and keeps its credit (PROTOCOL.md 4.4). */
static void return_tail(mp_broker_t *b, peer_t *w, unit_t *u, uint64_t from)
{
    if (from <= u->answered || from >= u->count) {
        bk_malformed(b, w, NULL, MPP_W_RETURN, "RETURN range does not match the dispatch");
        return;
    }
    unit_t *tail = bk_unit_slice(u, u->base + from, u->count - from, u->attempt);
    if (!tail) /* out of memory: the dispatch's RESULT will not match, and it is re-queued */
        return;
    u->count = from;
    mp__log(MP_LOG_DEBUG, WHO, "dispatch %llu: items %zu.. handed back by %s (behind a stuck one)",
            (unsigned long long)u->dispatch_id, (size_t)from, w->hex);
    bk_requeue_or_lose(b, tail, false, "handed back behind a stuck item");
    b->returned++;
}

/* W-RETURN [dispatch-id]: the worker hands back a dispatch it has not
   started (every executor busy): it goes to the front of its queue for
   another worker, without an attempt; the worker's credit stays one lower
   until its next READY (PROTOCOL.md 5). With `from`, return_tail. */
static void worker_return(mp_broker_t *b, peer_t *w, mp__rd_t *r)
{
    size_t n;
    uint64_t dispatch_id, from = 0;
    if (mp__rd_array(r, &n) || n < 1 || mp__rd_uint(r, &dispatch_id) ||
        (n >= 2 && mp__rd_uint(r, &from))) {
        bk_malformed(b, w, NULL, MPP_W_RETURN, "bad RETURN header");
        return;
    }
    unit_t *u = find_running(w, dispatch_id);
    if (!u)
        return;
    if (n >= 2) {
        if (!u->cancelled) /* withdrawn: what it answers is dropped anyway */
            return_tail(b, w, u, from);
        bk_dispatch(b);
        return;
    }
    bk_running_unlink(w, u);
    mp__log(MP_LOG_DEBUG, WHO, "dispatch %llu handed back by %s (busy)",
            (unsigned long long)dispatch_id, w->hex);
    bk_requeue_or_lose(b, u, false, "handed back by a busy worker");
    b->returned++;
    bk_dispatch(b);
}

static void worker_lost_item(mp_broker_t *b, peer_t *w, mp__rd_t *r)
{
    size_t n, causelen;
    uint64_t dispatch_id, index;
    int64_t code = 0;
    const char *cause;
    if (mp__rd_array(r, &n) || n < 3 || mp__rd_uint(r, &dispatch_id) || mp__rd_uint(r, &index) ||
        mp__rd_str(r, &cause, &causelen) || (n >= 4 && mp__rd_int(r, &code))) {
        bk_malformed(b, w, NULL, MPP_W_LOST, "bad LOST header");
        return;
    }
    unit_t *u = find_running(w, dispatch_id);
    if (!u)
        return;
    if (u->cancelled) {
        drop_cancelled(b, w, u);
        return;
    }
    bk_running_unlink(w, u);
    w->credit++;
    char why[200];
    snprintf(why, sizeof why, "%.*s (worker %s pid %u)", (int)(causelen > 100 ? 100 : causelen),
             cause, w->host, w->pid);
    if (index >= u->count || index < u->answered)
        index = u->answered;                   /* out of range: blame the first item not answered */
    size_t k = (size_t)index, a = u->answered; /* [0, a): answered by PARTIALs */
    mp__log(MP_LOG_WARN, WHO, "dispatch %llu (%s chunk %llu item %zu, attempt %u) lost: %s",
            (unsigned long long)dispatch_id, u->chunk->name, (unsigned long long)u->chunk->chunk_id,
            u->base + k, u->attempt, why);
    /* the innocent items before and after go back unchanged */
    unit_t *before = k > a ? bk_unit_slice(u, u->base + a, k - a, u->attempt) : NULL;
    unit_t *after =
        k + 1 < u->count ? bk_unit_slice(u, u->base + k + 1, u->count - k - 1, u->attempt) : NULL;
    unit_t *culprit = u->count > 1 ? bk_unit_slice(u, u->base + k, 1, u->attempt) : NULL;
    if ((k > a && !before) || (k + 1 < u->count && !after) || (u->count > 1 && !culprit)) {
        /* could not split (out of memory, or items that do not parse):
           treat the whole unit as lost; the slices made are dropped, their
           items frames with them */
        unit_t *made[3] = {before, after, culprit};
        for (int i = 0; i < 3; i++)
            if (made[i]) {
                zmq_msg_close(&made[i]->items);
                free(made[i]);
            }
        bk_requeue_or_lose(b, u, true, why);
        bk_dispatch(b);
        return;
    }
    if (after)
        bk_requeue_or_lose(b, after, false, why);
    if (before)
        bk_requeue_or_lose(b, before, false, why);
    if (culprit) {
        zmq_msg_close(&u->items);
        free(u); /* replaced by its slices; the chunk lives on */
        u = culprit;
    }
    if (code == MP_ETIMELIMIT) { /* over its time limit: failed, never tried again */
        bk_answer_with_errors(b, u, MPP_KIND_TIMED_OUT, MP_ETIMELIMIT, why);
        bk_unit_free(b, u);
    } else {
        bk_requeue_or_lose(b, u, true, why);
    }
    bk_dispatch(b);
}

void bk_on_worker(mp_broker_t *b, mpp_msg_t *m, const void *id, size_t idlen, uint8_t cmd,
                  mp__rd_t *r)
{
    peer_t *w = bk_peer_find(b, id, idlen);
    if (w && w->kind != PEER_WORKER) {
        bk_malformed(b, w, NULL, cmd, "worker command from a client");
        return;
    }
    bool fresh = !w;
    if (!w) {
        if (cmd == MPP_W_DISCONNECT)
            return;
        if (cmd != MPP_W_READY) {
            bk_disconnect_id(b, id, idlen, MPP_SIG_WORKER, MPP_B_WDISCONNECT,
                             "unknown worker: READY first");
            return;
        }
        if (!bk_admitted(b, m, id, idlen, PEER_WORKER))
            return; /* no TASK ever reaches it */
        w = bk_peer_add(b, m, id, idlen, PEER_WORKER);
        if (!w)
            return;
    }
    w->last_seen = mp__now_ns();
    switch (cmd) {
    case MPP_W_READY:
        if (!worker_ready(b, w, r)) {
            if (fresh) /* a peer is a worker only once it said READY properly */
                bk_peer_remove(b, w);
            break;
        }
        bk_announce_processes(b);
        bk_dispatch(b);
        break;
    case MPP_W_RESULT:
        worker_result(b, w, r, m);
        break;
    case MPP_W_RETURN:
        worker_return(b, w, r);
        break;
    case MPP_W_PARTIAL:
        worker_partial(b, w, r, m);
        break;
    case MPP_W_LOST:
        worker_lost_item(b, w, r);
        break;
    case MPP_W_HEARTBEAT:
        break;
    case MPP_W_DISCONNECT:
        bk_worker_lost(b, w, "worker disconnected", false);
        bk_dispatch(b);
        break;
    default:
        bk_malformed(b, w, NULL, cmd, "unknown command");
    }
}
