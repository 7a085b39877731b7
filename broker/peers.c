/*  peers.c - the broker's peers and what it sends them (docs/PROTOCOL.md).

    A peer is a client or a worker, found by its routing id through a hash
    table (open addressing, linear probing, deletion by backward shift): a
    broker with a thousand workers handles each message without a scan of
    them all (BENCHMARKS.md, "Scale"). b->peers keeps them in an array too,
    each knowing its slot, for the loops over all of them. The
    senders below never block: a peer that cannot take a message is gone
    (ROUTER_MANDATORY, ZMQ_DONTWAIT), and its departure is noticed by the
    caller or by the heartbeat.

    The bottom of the broker: it calls no other broker file.
*/
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <czmq.h>
#include <zmq.h>

#include "broker_impl.h"
#include "base/log.h"
#include "mp/error.h"

static size_t id_hash(const void *id, size_t idlen)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < idlen; i++)
        h = (h ^ ((const uint8_t *)id)[i]) * 1099511628211ull;
    return (size_t)(h ^ h >> 29);
}

/* The slot of id in the hash table: where it is, or the free slot where it
   would go. The table is never full (at most half). */
static size_t slot_of(const mp_broker_t *b, const void *id, size_t idlen)
{
    size_t mask = b->slotcap - 1, i = id_hash(id, idlen) & mask;
    for (peer_t *p; (p = b->slots[i]); i = (i + 1) & mask)
        if (p->idlen == idlen && memcmp(p->id, id, idlen) == 0)
            break;
    return i;
}

peer_t *bk_peer_find(mp_broker_t *b, const void *id, size_t idlen)
{
    return b->slotcap ? b->slots[slot_of(b, id, idlen)] : NULL;
}

/* The table at twice the peers' array capacity: rehashed on growth. */
static int slots_grow(mp_broker_t *b, size_t cap)
{
    peer_t **old = b->slots;
    size_t oldcap = b->slotcap;
    if (!(b->slots = calloc(cap, sizeof *b->slots))) {
        b->slots = old;
        return MP_ENOMEM;
    }
    b->slotcap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            b->slots[slot_of(b, old[i]->id, old[i]->idlen)] = old[i];
    free(old);
    return 0;
}

/* Removes p from the table, shifting back the entries of its run so that
   no probe stops early at the hole. */
static void slots_delete(mp_broker_t *b, const peer_t *p)
{
    size_t mask = b->slotcap - 1, i = slot_of(b, p->id, p->idlen);
    if (b->slots[i] != p)
        return;
    b->slots[i] = NULL;
    for (size_t j = (i + 1) & mask; b->slots[j]; j = (j + 1) & mask) {
        size_t home = id_hash(b->slots[j]->id, b->slots[j]->idlen) & mask;
        /* the entry at j may move to the hole i unless its home lies in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            b->slots[i] = b->slots[j];
            b->slots[j] = NULL;
            i = j;
        }
    }
}

/* Where a peer's message came from: its CURVE key when the broker checks
   keys, else its IP address; "local" for ipc:// and inproc://. A stream
   peer's is its connection's. */
static void peer_source(mp_broker_t *b, mpp_msg_t *m, char *out, size_t size)
{
    const char *stream =
        m && m->n >= 1 ? bk_stream_source(b, mpp_data(m, 0), mpp_size(m, 0)) : NULL;
    if (stream) {
        snprintf(out, size, "%s", stream);
        return;
    }
    const char *key = m && m->n >= 2 ? zmq_msg_gets(&m->f[1], "User-Id") : NULL;
    const char *addr = m && m->n >= 2 ? zmq_msg_gets(&m->f[1], "Peer-Address") : NULL;
    snprintf(out, size, "%s", key && *key ? key : addr && *addr ? addr : "local");
}

/* Whether source may have one more peer (PROTOCOL.md 10): a bound per
   source, and no eviction, so that nobody's peers make room for
   another's. Says no to a refused one (DISCONNECT). */
static bool room_for(mp_broker_t *b, const char *source, const void *id, size_t idlen, int kind)
{
    size_t n = 0;
    for (size_t i = 0; i < b->npeers; i++)
        n += strcmp(b->peers[i]->source, source) == 0;
    if (n < b->max_per_source)
        return true;
    b->refused++;
    if (mp__ratelimit(&b->crowded_rl, WHO, "peers refused over the per-source bound"))
        mp__log(MP_LOG_WARN, WHO, "refused a new peer from %s: it has %zu already (the bound)",
                source, n);
    char why[128];
    snprintf(why, sizeof why, "refused: too many peers from this source (%zu)", n);
    bk_disconnect_id(b, id, idlen, kind == PEER_WORKER ? MPP_SIG_WORKER : MPP_SIG_CLIENT,
                     kind == PEER_WORKER ? MPP_B_WDISCONNECT : MPP_B_DISCONNECT, why);
    return false;
}

peer_t *bk_peer_add(mp_broker_t *b, mpp_msg_t *m, const void *id, size_t idlen, int kind)
{
    char source[64];
    peer_source(b, m, source, sizeof source);
    if (idlen > sizeof((peer_t *)0)->id || !room_for(b, source, id, idlen, kind))
        return NULL;
    if (b->npeers == b->peercap) {
        size_t cap = b->peercap ? b->peercap * 2 : 16;
        peer_t **grown = realloc(b->peers, cap * sizeof *grown);
        if (!grown)
            return NULL;
        b->peers = grown;
        b->peercap = cap;
    }
    /* the table at twice the array's capacity (never over half full); a
       growth that failed is tried again at the next peer */
    if (b->slotcap < 2 * b->peercap && slots_grow(b, 2 * b->peercap))
        return NULL;
    peer_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    memcpy(p->id, id, idlen);
    p->idlen = idlen;
    snprintf(p->source, sizeof p->source, "%s", source);
    p->stream = bk_stream_is(id, idlen);
    if (p->stream)
        bk_stream_name(b, id, idlen, p->hex, sizeof p->hex);
    else
        mpp_id_hex(id, idlen < 6 ? idlen : 6, p->hex, sizeof p->hex);
    p->kind = kind;
    if (kind == PEER_WORKER)
        b->workers_seen++;
    else
        b->clients_seen++;
    p->last_seen = mp__now_ns();
    p->expiry_ns = (uint64_t)b->heartbeat_ms * MPP_LIVENESS * 1000000ull;
    p->serial = ++b->peer_serial;
    p->index = b->npeers;
    b->peers[b->npeers++] = p;
    b->slots[slot_of(b, id, idlen)] = p;
    if (kind == PEER_WORKER)
        b->nworkers++;
    return p;
}

void bk_peer_remove(mp_broker_t *b, peer_t *p)
{
    slots_delete(b, p);
    if (p->index < b->npeers && b->peers[p->index] == p) { /* the last one takes its place */
        b->peers[p->index] = b->peers[--b->npeers];
        b->peers[p->index]->index = p->index;
    }
    if (p->kind == PEER_WORKER)
        b->nworkers--;
    if (p->draining)
        b->ndraining--;
    for (size_t i = 0; i < p->nnames; i++)
        free(p->names[i]);
    free(p->names);
    free(p);
}

size_t bk_total_processes(mp_broker_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->npeers; i++)
        if (b->peers[i]->kind == PEER_WORKER)
            n += b->peers[i]->processes;
    return n;
}

size_t bk_worker_count(mp_broker_t *b)
{
    return b->nworkers;
}

bool bk_serves(const peer_t *w, const char *name)
{
    for (size_t i = 0; i < w->nnames; i++)
        if (strcmp(w->names[i], name) == 0)
            return true;
    return false;
}

bool bk_anyone_serves(mp_broker_t *b, const char *name)
{
    for (size_t i = 0; i < b->npeers; i++)
        if (b->peers[i]->kind == PEER_WORKER && bk_serves(b->peers[i], name))
            return true;
    return false;
}

/* Sends to a peer; EHOSTUNREACH means it is gone (ROUTER_MANDATORY). */
int bk_send_to(mp_broker_t *b, peer_t *p, uint8_t cmd, mp__buf_t *hdr, zmq_msg_t *payload,
               int npayload)
{
    const char *sig = p->kind == PEER_WORKER ? MPP_SIG_WORKER : MPP_SIG_CLIENT;
    uint64_t bytes = p->idlen + MPP_SIG_SIZE + 1 + hdr->size;
    for (int i = 0; i < npayload; i++)
        bytes += zmq_msg_size(&payload[i]);
    int rc = p->stream ? bk_stream_send(b, p->id, p->idlen, sig, cmd, hdr->data, hdr->size, payload,
                                        npayload)
                       : mpp_send(b->router, p->id, p->idlen, sig, cmd, hdr->data, hdr->size,
                                  payload, npayload, ZMQ_DONTWAIT);
    if (rc)
        mp__log(MP_LOG_DEBUG, WHO, "send to %s failed: %s", p->hex, zmq_strerror(-rc));
    else
        b->bytes_out += bytes; /* what left */
    return rc;
}

/* DISCONNECT [why] to a routing id the broker does not know as a peer. */
void bk_disconnect_id(mp_broker_t *b, const void *id, size_t idlen, const char *sig, uint8_t cmd,
                      const char *why)
{
    char hs[64];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 1);
    mp__w_str(&h, why);
    if (bk_stream_is(id, idlen))
        bk_stream_send(b, id, idlen, sig, cmd, h.data, h.size, NULL, 0);
    else
        mpp_send(b->router, id, idlen, sig, cmd, h.data, h.size, NULL, 0, ZMQ_DONTWAIT);
    mp__buf_release(&h);
}

void bk_send_failed(mp_broker_t *b, peer_t *c, uint64_t chunk_id, int code, const char *msg)
{
    char st[512];
    mp__buf_t h;
    mp__buf_init(&h, st, sizeof st);
    mp__w_array(&h, 3);
    mp__w_uint(&h, chunk_id);
    mp__w_int(&h, code);
    mp__w_str(&h, msg);
    bk_send_to(b, c, MPP_B_FAILED, &h, NULL, 0);
    mp__buf_release(&h);
}

void bk_malformed(mp_broker_t *b, peer_t *p, const char *hex, uint8_t cmd, const char *why)
{
    b->malformed++;
    if (mp__ratelimit(&b->malformed_rl, WHO, "malformed messages")) /* a burst per 10 s */
        mp__log(MP_LOG_WARN, WHO, "malformed message from %s (command 0x%02x): %s; dropped",
                p     ? p->hex
                : hex ? hex
                      : "?",
                cmd, why);
}

/* Edit distance between a and b, ignoring case (Levenshtein, one row);
   names longer than MPP_MAX_NAME are cut there. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strnlen(a, MPP_MAX_NAME), lb = strnlen(b, MPP_MAX_NAME);
    size_t row[MPP_MAX_NAME + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

void bk_unknown_task(mp_broker_t *b, const char *name, char *msg, size_t size)
{
    /* the closest served names, fewest edits first (then by name), each once */
    enum { SHOWN = 5 };
    const char *best[SHOWN];
    size_t dist[SHOWN], nbest = 0;
    for (size_t i = 0; i < b->npeers; i++) {
        const peer_t *w = b->peers[i];
        for (size_t k = 0; w->kind == PEER_WORKER && k < w->nnames; k++) {
            const char *n = w->names[k];
            bool seen = false;
            for (size_t j = 0; j < nbest && !seen; j++)
                seen = strcmp(best[j], n) == 0;
            if (seen)
                continue;
            size_t d = distance(name, n), at = nbest;
            while (at > 0 &&
                   (d < dist[at - 1] || (d == dist[at - 1] && strcmp(n, best[at - 1]) < 0)))
                at--;
            if (at >= SHOWN)
                continue;
            if (nbest < SHOWN)
                nbest++;
            memmove(&best[at + 1], &best[at], (nbest - 1 - at) * sizeof *best);
            memmove(&dist[at + 1], &dist[at], (nbest - 1 - at) * sizeof *dist);
            best[at] = n;
            dist[at] = d;
        }
    }
    int len = snprintf(msg, size, "unknown task: no worker serves '%s'", name);
    for (size_t j = 0; j < nbest && len >= 0 && (size_t)len < size; j++)
        len += snprintf(msg + len, size - (size_t)len, "%s'%s'", j ? ", " : "; served: ", best[j]);
    if (nbest == 0 && len >= 0 && (size_t)len < size)
        snprintf(msg + len, size - (size_t)len, "; no worker is connected");
}

bool bk_admitted(mp_broker_t *b, mpp_msg_t *m, const void *id, size_t idlen, int role)
{
    if (!b->curve.on)
        return true;
    const char *key = m->n >= 2 ? zmq_msg_gets(&m->f[1], "User-Id") : NULL;
    zcertstore_t *ok = role == PEER_WORKER ? b->workers_ok : b->clients_ok;
    if (key && zcertstore_lookup(ok, key))
        return true;
    const char *what = role == PEER_WORKER ? "worker" : "client";
    char hex[16] = "?", why[96];
    mpp_id_hex(id, idlen < 6 ? idlen : 6, hex, sizeof hex);
    b->refused++;
    mp__log(MP_LOG_WARN, WHO, "refused %s %s: key %s is not in %s/ of the allow-list", what, hex,
            key ? key : "(none)", role == PEER_WORKER ? "workers" : "clients");
    snprintf(why, sizeof why, "refused: this key is not allowed as a %s", what);
    bk_disconnect_id(b, id, idlen, role == PEER_WORKER ? MPP_SIG_WORKER : MPP_SIG_CLIENT,
                     role == PEER_WORKER ? MPP_B_WDISCONNECT : MPP_B_DISCONNECT, why);
    return false;
}

bool bk_operator(mp_broker_t *b, mpp_msg_t *m, const peer_t *c, const char *what)
{
    if (!b->curve.on)
        return true;
    const char *key = m->n >= 2 ? zmq_msg_gets(&m->f[1], "User-Id") : NULL;
    if (key && b->operators_ok && zcertstore_lookup(b->operators_ok, key))
        return true;
    b->refused++;
    mp__log(MP_LOG_WARN, WHO,
            "refused %s from client %s: key %s is not in operators/ of the "
            "allow-list",
            what, c->hex, key ? key : "(none)");
    return false;
}
