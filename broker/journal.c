/*  journal.c - durable jobs (PROTOCOL.md 7.3, docs/JOURNAL.md): the
    broker's side of a durable SUBMIT, FETCH and FORGET, and the replay's
    chunks queued again at start.

    A durable chunk is the journal's, not a client's: chunk->client is
    NULL and chunk->durable its index entry (jstore.c), so a client that
    leaves takes nothing with it, and answers go to the journal (units.c,
    workers.c) instead of to a session. STORED goes out only after the
    fdatasync that covers the chunk, and FETCHED only for what is on disk:
    both wait for bk_journal_flush, which the loop calls once per pass, so
    one fdatasync covers every SUBMIT and RESULT of the pass. A FETCH of a
    chunk not answered yet is held (long polling) until it is, or until its
    wait runs out.

    Invariants: the STOREDs and held FETCHes name their client by routing
    id, not by pointer (a client may be gone when they are answered: they
    are then dropped); a jchunk's live chunk is queued or running, and
    holds exactly its unanswered items.

    Uses jstore.c, units.c, sched.c and peers.c; called by clients.c (the
    commands) and engine.c (open, flush, close).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "broker_impl.h"
#include "base/log.h"
#include "mp/error.h"

#define FETCH_BYTES (8u << 20) /* results per FETCH answer, about */
#define MAX_WAIT_MS 60000
#define MAX_PENDING 65536          /* STOREDs and held FETCHes waiting, each */
#define LINGER_NS 5000000ull       /* a held FETCH whose chunk is answered waits for more */
#define LAZY_SYNC_NS 1000000000ull /* answers nobody waits for reach the disk this often */

typedef struct {
    uint8_t id[256];
    size_t idlen;
    uint64_t chunk_id; /* STORED */
    char job[BK_MAX_JOB + 1];
    uint64_t from, deadline_ns; /* a held FETCH */
    uint64_t incarnation;       /* of the job it asked (the name may be reused meanwhile) */
    uint64_t ready_ns;          /* when its chunk was seen answered (0: not yet) */
} waiting_t;

struct bk_journal {
    waiting_t *stored, *held;
    size_t nstored, nheld;
    uint64_t last_sync_ns;
};

static bool owns(mp_broker_t *b, const bk_jjob_t *j, const peer_t *c, mpp_msg_t *m)
{
    if (!b->curve.on || strcmp(j->owner, c->source) == 0)
        return true;
    return bk_operator(b, m, c, "a durable job of another key");
}

static void send_stored(mp_broker_t *b, peer_t *c, uint64_t chunk_id)
{
    char hs[16];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 1);
    mp__w_uint(&h, chunk_id);
    bk_send_to(b, c, MPP_B_STORED, &h, NULL, 0);
}

static waiting_t *wait_add(waiting_t **v, size_t *n, const peer_t *c)
{
    if (*n == MAX_PENDING)
        return NULL;
    if (*n == 0 || (*n & (*n - 1)) == 0) { /* grows at powers of two */
        waiting_t *nv = realloc(*v, (*n < 4 ? 8 : *n * 2) * sizeof *nv);
        if (!nv)
            return NULL;
        *v = nv;
    }
    waiting_t *w = &(*v)[(*n)++];
    memset(w, 0, sizeof *w);
    memcpy(w->id, c->id, c->idlen);
    w->idlen = c->idlen;
    return w;
}

/* ---- making a durable chunk live: queued for its unanswered items ------- */

static int cmp_piece(const void *a, const void *b)
{
    const bk_jpiece_t *x = a, *y = b;
    return x->base < y->base ? -1 : x->base > y->base;
}

/* A chunk for jc, taking items and init (init may be NULL), queued as one
   unit per range of items no RESULT answered yet. */
static int make_live(mp_broker_t *b, bk_jchunk_t *jc, const char *task, uint8_t mode,
                     uint32_t limit, zmq_msg_t *items, zmq_msg_t *init)
{
    chunk_t *ch = calloc(1, sizeof *ch);
    queue_t *q = bk_queue_get(b, task, true);
    bk_jpiece_t *p = jc->npieces ? malloc(jc->npieces * sizeof *p) : NULL;
    if (!ch || !q || (jc->npieces && !p)) {
        free(ch);
        free(p);
        return q ? MP_ENOMEM : b->nqueues >= BK_MAX_QUEUES ? MP_EOVERLOADED : MP_ENOMEM;
    }
    ch->durable = jc;
    snprintf(ch->name, sizeof ch->name, "%s", task);
    ch->mode = mode;
    ch->count = jc->count;
    ch->pending = jc->count - jc->answered;
    ch->time_limit_ms = limit;
    zmq_msg_init(&ch->items);
    zmq_msg_move(&ch->items, items);
    if (init) {
        zmq_msg_init(&ch->init);
        zmq_msg_move(&ch->init, init);
        ch->has_init = true;
    }
    jc->live = ch;
    bk_chunk_attach(ch, q, ch->pending);
    /* a whole unit to slice the gaps from (never queued itself) */
    unit_t whole = {.chunk = ch, .count = jc->count, .attempt = 1};
    zmq_msg_init(&whole.items);
    zmq_msg_copy(&whole.items, &ch->items);
    if (jc->npieces) {
        memcpy(p, jc->pieces, jc->npieces * sizeof *p);
        qsort(p, jc->npieces, sizeof *p, cmp_piece);
    }
    size_t at = 0;
    int rc = 0;
    for (uint32_t i = 0; i <= jc->npieces; i++) {
        size_t end = i < jc->npieces ? p[i].base : jc->count;
        if (end > at) {
            unit_t *u = bk_unit_slice(&whole, at, end - at, 1);
            if (!u) { /* the items of this gap stay unanswered: the chunk ends, the job not */
                ch->pending -= end - at;
                rc = MP_ENOMEM;
            } else {
                bk_queue_push(q, u, false);
            }
        }
        if (i < jc->npieces)
            at = p[i].base + p[i].count;
    }
    zmq_msg_close(&whole.items);
    free(p);
    if (ch->pending == 0) { /* nothing could be queued */
        jc->live = NULL;
        q->chunks--;
        zmq_msg_close(&ch->items);
        if (ch->has_init)
            zmq_msg_close(&ch->init);
        free(ch);
    }
    return rc;
}

/* At start: every stored chunk with items not answered is queued again
   from its SUBMIT record (a restart counts no attempt). */
static size_t requeue_stored(mp_broker_t *b)
{
    size_t n = 0, left = 0;
    for (unsigned k = 0; k < BK_JOB_BUCKETS; k++)
        for (bk_jjob_t *j = b->jstore->buckets[k]; j; j = j->next)
            for (size_t i = 0; i < j->n; i++) {
                bk_jchunk_t *jc = j->chunks[i];
                if (jc->answered == jc->count)
                    continue;
                uint8_t *buf;
                bk_jframe_t f[3];
                if (bk_jstore_read(b->jstore, jc->off, jc->len, &buf, f))
                    continue;
                mp__rd_t r;
                size_t len, tl, ol;
                const char *s, *task, *owner;
                uint64_t seq, total, mode, count, limit;
                bool has_init = false;
                mp__rd_init(&r, f[0].p, f[0].len);
                zmq_msg_t items, init;
                if (mp__rd_array(&r, &len) == 0 && len >= 9 && mp__rd_str(&r, &s, &len) == 0 &&
                    mp__rd_uint(&r, &seq) == 0 && mp__rd_uint(&r, &total) == 0 &&
                    mp__rd_str(&r, &task, &tl) == 0 && tl > 0 && tl <= MPP_MAX_NAME &&
                    mp__rd_uint(&r, &mode) == 0 && mode <= MPP_MODE_STAR &&
                    mp__rd_uint(&r, &count) == 0 && mp__rd_uint(&r, &limit) == 0 &&
                    limit <= UINT32_MAX && mp__rd_str(&r, &owner, &ol) == 0 &&
                    mp__rd_bool(&r, &has_init) == 0 && zmq_msg_init_size(&items, f[1].len) == 0) {
                    char tname[MPP_MAX_NAME + 1];
                    memcpy(tname, task, tl);
                    tname[tl] = '\0';
                    memcpy(zmq_msg_data(&items), f[1].p, f[1].len);
                    if (has_init && zmq_msg_init_size(&init, f[2].len) == 0)
                        memcpy(zmq_msg_data(&init), f[2].p, f[2].len);
                    else
                        has_init = false;
                    if (make_live(b, jc, tname, (uint8_t)mode, (uint32_t)limit, &items,
                                  has_init ? &init : NULL) == 0)
                        n++;
                    else /* it stays stored: it runs after a later start */
                        left++;
                    zmq_msg_close(&items);
                    if (has_init)
                        zmq_msg_close(&init);
                }
                free(buf);
            }
    if (left)
        mp__log(MP_LOG_ERROR, WHO,
                "%zu stored chunk%s not queued (more than %d task names, or out of memory): "
                "they stay stored and run after a later start",
                left, left == 1 ? "" : "s", BK_MAX_QUEUES);
    return n;
}

int bk_journal_open(mp_broker_t *b, const char *dir, uint64_t max_bytes)
{
    int rc = bk_jstore_open(dir, max_bytes, b->max_message, &b->jstore);
    if (rc)
        return rc;
    b->journal = calloc(1, sizeof *b->journal);
    if (!b->journal) {
        bk_jstore_close(&b->jstore);
        return MP_ENOMEM;
    }
    size_t n = requeue_stored(b);
    mp__log(MP_LOG_INFO, WHO, "journal %s: %zu job%s, %zu chunk%s queued again, %llu bytes", dir,
            b->jstore->njobs, b->jstore->njobs == 1 ? "" : "s", n, n == 1 ? "" : "s",
            (unsigned long long)b->jstore->size);
    return 0;
}

void bk_journal_close(mp_broker_t *b)
{
    if (b->journal) {
        free(b->journal->stored);
        free(b->journal->held);
        free(b->journal);
        b->journal = NULL;
    }
    bk_jstore_close(&b->jstore);
}

/* ---- SUBMIT ------------------------------------------------------------- */

void bk_journal_submit(mp_broker_t *b, peer_t *c, const bk_jsubmit_t *s, uint64_t chunk_id,
                       mpp_msg_t *m)
{
    char why[6 * MPP_MAX_NAME + 128];
    const char *owner = b->curve.on ? c->source : "";
    bk_jjob_t *j = b->jstore ? bk_jstore_job(b->jstore, s->job, strlen(s->job)) : NULL;
    bk_jchunk_t *jc = j ? bk_jstore_chunk(j, s->seq) : NULL;
    int code = MP_EBADREQUEST;
    why[0] = '\0';
    if (!b->jstore)
        code = MP_ENOJOURNAL,
        snprintf(why, sizeof why, "no journal: this broker was started without --journal");
    else if (b->jstore->broken)
        code = MP_EOVERLOADED, snprintf(why, sizeof why, "the journal cannot be written");
    else if (!jc && bk_worker_count(b) > 0 && !bk_anyone_serves(b, s->task))
        code = MP_EUNKNOWNTASK, bk_unknown_task(b, s->task, why, sizeof why);
    else if (!jc && !bk_queue_room(b, s->task)) /* not stored: it could not run */
        code = MP_EOVERLOADED, snprintf(why, sizeof why, "%s", BK_QUEUES_FULL);
    else if (j && strcmp(j->owner, owner) != 0)
        snprintf(why, sizeof why, "job name '%s' is taken by another key", s->job);
    else if (j && j->total != s->total)
        snprintf(why, sizeof why, "job '%s' has %u chunks, not %llu", s->job, j->total,
                 (unsigned long long)s->total);
    else if (jc && jc->count != s->count)
        snprintf(why, sizeof why, "chunk %llu of job '%s' was stored with %u items, not %zu",
                 (unsigned long long)s->seq, s->job, jc->count, s->count);
    if (why[0]) {
        bk_send_failed(b, c, chunk_id, code, why);
        return;
    }
    if (!jc) { /* new: on disk now, in the queue now, STORED after the sync */
        bk_jsubmit_t own = *s;
        own.owner = owner;
        int rc = bk_jstore_submit(b->jstore, &own, &jc);
        if (rc) {
            if (rc == MP_EOVERLOADED)
                snprintf(why, sizeof why, "journal full (%llu bytes: --journal-max-mb)",
                         (unsigned long long)b->jstore->max_bytes);
            else
                snprintf(why, sizeof why, "journal write failed: %s", mp_strerror(rc));
            bk_send_failed(b, c, chunk_id, MP_EOVERLOADED, why);
            return;
        }
        rc = make_live(b, jc, s->task, s->mode, s->time_limit_ms, &m->f[4],
                       m->n == 6 ? &m->f[5] : NULL);
        if (rc) /* stored all the same: it runs after the broker's next start */
            mp__log(MP_LOG_ERROR, WHO, "job %s chunk %u stored but not queued: %s", s->job, jc->seq,
                    mp_strerror(rc));
    }
    waiting_t *w = wait_add(&b->journal->stored, &b->journal->nstored, c);
    if (w)
        w->chunk_id = chunk_id;
    else /* it is stored; the client sends it again and gets its STORED then */
        mp__log(MP_LOG_WARN, WHO, "too many STOREDs waiting: one dropped");
}

/* ---- FETCH -------------------------------------------------------------- */

static void send_end(mp_broker_t *b, peer_t *c, const char *job, const bk_jjob_t *j, uint64_t next)
{
    char hs[BK_MAX_JOB + 80];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 6);
    mp__w_str(&h, job);
    mp__w_uint(&h, next);
    mp__w_uint(&h, j ? j->total : 0);
    mp__w_uint(&h, j ? j->n : 0);
    mp__w_uint(&h, j ? j->answered : 0);
    mp__w_uint(&h, j ? j->incarnation : 0);
    bk_send_to(b, c, MPP_B_FETCHED_END, &h, NULL, 0);
}

/* One RESULT record of chunk jc as a FETCHED message, built (not sent)
   in h and frames; *nf frames. */
static int read_piece(mp_broker_t *b, const bk_jchunk_t *jc, const bk_jpiece_t *p, mp__buf_t *h,
                      zmq_msg_t frames[2], int *nf)
{
    uint8_t *buf;
    bk_jframe_t f[3];
    int rc = bk_jstore_read(b->jstore, p->off, p->len, &buf, f);
    if (rc)
        return rc;
    mp__rd_t r;
    size_t n;
    uint64_t skip, nerrors = 0;
    mp__rd_init(&r, f[0].p, f[0].len);
    if (mp__rd_array(&r, &n) || n < 5 || mp__rd_skip(&r) || mp__rd_uint(&r, &skip) ||
        mp__rd_uint(&r, &skip) || mp__rd_uint(&r, &skip) || mp__rd_uint(&r, &nerrors)) {
        free(buf);
        return MP_EBADMSG;
    }
    mp__w_array(h, 5);
    mp__w_str(h, jc->job->name);
    mp__w_uint(h, jc->seq);
    mp__w_uint(h, p->base);
    mp__w_uint(h, p->count);
    mp__w_uint(h, nerrors);
    *nf = 0;
    for (int i = 0; i < (nerrors ? 2 : 1) && !rc; i++)
        if (zmq_msg_init_size(&frames[i], f[1 + i].len) == 0) {
            memcpy(zmq_msg_data(&frames[i]), f[1 + i].p, f[1 + i].len);
            (*nf)++;
        } else {
            rc = MP_ENOMEM;
        }
    free(buf);
    return rc;
}

/* Chunk jc's pieces as FETCHED messages, in item order: all read first,
   then all sent, so a fetcher gets a chunk whole or not at all. */
static int send_chunk(mp_broker_t *b, peer_t *c, const bk_jchunk_t *jc, size_t *bytes)
{
    uint32_t np = jc->npieces;
    bk_jpiece_t *p = malloc((np ? np : 1) * sizeof *p);
    mp__buf_t *h = calloc(np ? np : 1, sizeof *h);
    zmq_msg_t(*frames)[2] = calloc(np ? np : 1, sizeof *frames);
    int *nf = calloc(np ? np : 1, sizeof *nf);
    int rc = p && h && frames && nf ? 0 : MP_ENOMEM;
    uint32_t built = 0;
    if (!rc && np) {
        memcpy(p, jc->pieces, np * sizeof *p);
        qsort(p, np, sizeof *p, cmp_piece);
    }
    for (; !rc && built < np; built++) {
        mp__buf_init(&h[built], NULL, 0);
        if ((rc = read_piece(b, jc, &p[built], &h[built], frames[built], &nf[built]))) {
            built++; /* its frames and buffer are released below */
            break;
        }
        *bytes += p[built].len;
    }
    for (uint32_t i = 0; i < built; i++) {
        if (!rc)
            bk_send_to(b, c, MPP_B_FETCHED, &h[i], frames[i], nf[i]); /* takes the frames */
        else
            for (int k = 0; k < nf[i]; k++)
                zmq_msg_close(&frames[i][k]);
        mp__buf_release(&h[i]);
    }
    free(p);
    free(h);
    free(frames);
    free(nf);
    return rc;
}

/* FETCHED for chunks from, from+1, ... answered whole, up to FETCH_BYTES;
   returns the next seq not sent. Nothing goes out that is not on disk: a
   journal whose sync failed sends no result. */
static uint64_t send_results(mp_broker_t *b, peer_t *c, const bk_jjob_t *j, uint64_t from)
{
    size_t bytes = 0;
    uint64_t seq = from;
    if (bk_jstore_sync(b->jstore) || b->jstore->broken)
        return from;
    while (seq < j->total && bytes < FETCH_BYTES) {
        const bk_jchunk_t *jc = bk_jstore_chunk(j, seq);
        if (!jc || jc->answered < jc->count)
            break;
        int rc = send_chunk(b, c, jc, &bytes);
        if (rc) { /* the fetcher asks for this chunk again */
            mp__log(MP_LOG_ERROR, WHO, "journal: cannot send job %s chunk %llu: %s", j->name,
                    (unsigned long long)seq, mp_strerror(rc));
            break;
        }
        seq++;
    }
    return seq;
}

static bool fetch_ready(const bk_jjob_t *j, uint64_t from)
{
    const bk_jchunk_t *jc = j ? bk_jstore_chunk(j, from) : NULL;
    return !j || from >= j->total || (jc && jc->answered == jc->count);
}

/* The header's job name (its first item, after the array header) into
   name, and the job of that name c may see: NULL when there is none, or
   it is another key's (it reads as unknown: no key learns another's job
   names). false when the name is malformed. */
static bool job_of(mp_broker_t *b, peer_t *c, mpp_msg_t *m, mp__rd_t *r, size_t min_items,
                   char name[BK_MAX_JOB + 1], bk_jjob_t **j_p)
{
    size_t n, len;
    const char *job;
    if (mp__rd_array(r, &n) || n < min_items || mp__rd_str(r, &job, &len) || len == 0 ||
        len > BK_MAX_JOB)
        return false;
    memcpy(name, job, len);
    name[len] = '\0';
    bk_jjob_t *j = b->jstore ? bk_jstore_job(b->jstore, name, len) : NULL;
    *j_p = j && owns(b, j, c, m) ? j : NULL;
    return true;
}

void bk_journal_fetch(mp_broker_t *b, peer_t *c, mp__rd_t *r, mpp_msg_t *m)
{
    uint64_t from, wait_ms;
    char name[BK_MAX_JOB + 1];
    bk_jjob_t *j;
    if (!job_of(b, c, m, r, 3, name, &j) || mp__rd_uint(r, &from) || mp__rd_uint(r, &wait_ms)) {
        bk_malformed(b, c, NULL, MPP_C_FETCH, "bad FETCH header");
        return;
    }
    if (j && !fetch_ready(j, from) && wait_ms > 0) {
        waiting_t *w = wait_add(&b->journal->held, &b->journal->nheld, c);
        if (w) {
            snprintf(w->job, sizeof w->job, "%s", name);
            w->incarnation = j->incarnation;
            w->from = from;
            w->deadline_ns =
                mp__now_ns() + (wait_ms > MAX_WAIT_MS ? MAX_WAIT_MS : wait_ms) * 1000000;
            return;
        }
    }
    send_end(b, c, name, j, j ? send_results(b, c, j, from) : from);
}

/* ---- FORGET ------------------------------------------------------------- */

/* Withdraws jc's live chunk: running units cancelled, queued ones dropped;
   the chunk becomes an orphan that ends when its workers answer. */
static void withdraw(mp_broker_t *b, bk_jchunk_t *jc)
{
    chunk_t *ch = jc->live;
    if (!ch)
        return;
    bk_cancel_running(b, NULL, ch, false);
    ch->durable = NULL;
    jc->live = NULL;
    b->dropping = true;
    for (unit_t *u = ch->queue->head, *next; u; u = next) {
        next = u->next;
        if (u->chunk == ch) {
            bk_queue_unlink(ch->queue, u);
            ch->pending -= bk_unit_left(u);
            bk_unit_free(b, u); /* the last one frees ch */
        }
    }
    b->dropping = false;
}

void bk_journal_forget(mp_broker_t *b, peer_t *c, mp__rd_t *r, mpp_msg_t *m)
{
    char name[BK_MAX_JOB + 1];
    bk_jjob_t *j;
    if (!job_of(b, c, m, r, 1, name, &j)) {
        bk_malformed(b, c, NULL, MPP_C_FORGET, "bad FORGET header");
        return;
    }
    if (j) {
        for (size_t i = 0; i < j->n; i++)
            withdraw(b, j->chunks[i]);
        mp__log(MP_LOG_INFO, WHO, "job %s forgotten (%zu of %u chunks stored, %u answered)", name,
                j->n, j->total, j->answered);
        bk_jstore_forget(b->jstore, j);
        bk_jstore_sync(b->jstore); /* FORGOTTEN means: gone from the disk too */
    }
    char hs[BK_MAX_JOB + 16];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 2);
    mp__w_str(&h, name);
    mp__w_bool(&h, j != NULL);
    bk_send_to(b, c, MPP_B_FORGOTTEN, &h, NULL, 0);
}

/* ---- once per loop pass ------------------------------------------------- */

/* Whether held FETCH w is due now: its job is gone, its wait is over, or
   its chunk is answered and either the job is done or LINGER_NS passed
   since (a fetcher then gets the chunks answered meanwhile in one answer,
   and the broker syncs once for them, not once per chunk). */
static bool held_due(mp_broker_t *b, waiting_t *w, uint64_t now)
{
    bk_jjob_t *j = bk_jstore_job(b->jstore, w->job, strlen(w->job));
    if (!j || j->incarnation != w->incarnation || now >= w->deadline_ns)
        return true;
    if (!fetch_ready(j, w->from))
        return false;
    if (!w->ready_ns)
        w->ready_ns = now;
    return j->answered == j->total || now - w->ready_ns >= LINGER_NS;
}

void bk_journal_flush(mp_broker_t *b)
{
    struct bk_journal *jn = b->journal;
    if (!jn)
        return;
    uint64_t now = mp__now_ns();
    bool due = false;
    for (size_t i = 0; i < jn->nheld; i++)
        due = held_due(b, &jn->held[i], now) || due;
    if (!jn->nstored && !due) { /* nobody waits: answers reach the disk lazily */
        if (b->jstore->dirty && now - jn->last_sync_ns >= LAZY_SYNC_NS) {
            bk_jstore_sync(b->jstore);
            jn->last_sync_ns = now;
        }
        return;
    }
    int rc = bk_jstore_sync(b->jstore);
    jn->last_sync_ns = now;
    char why[128];
    if (rc) /* not on disk, and maybe never: no STORED, no result (jstore: broken) */
        mp__log(MP_LOG_ERROR, WHO,
                "journal: fdatasync failed: %s; durable jobs are refused until a restart",
                mp_strerror(rc));
    snprintf(why, sizeof why, "the journal cannot be written: %s", mp_strerror(rc));
    for (size_t i = 0; i < jn->nstored; i++) {
        peer_t *c = bk_peer_find(b, jn->stored[i].id, jn->stored[i].idlen);
        if (c && c->kind == PEER_CLIENT && rc)
            bk_send_failed(b, c, jn->stored[i].chunk_id, MP_EOVERLOADED, why);
        else if (c && c->kind == PEER_CLIENT)
            send_stored(b, c, jn->stored[i].chunk_id);
    }
    jn->nstored = 0;
    size_t keep = 0;
    for (size_t i = 0; i < jn->nheld; i++) {
        waiting_t *w = &jn->held[i];
        if (!held_due(b, w, now)) {
            jn->held[keep++] = *w;
            continue;
        }
        bk_jjob_t *j = bk_jstore_job(b->jstore, w->job, strlen(w->job));
        if (j && j->incarnation != w->incarnation) /* forgotten, and its name used again */
            j = NULL;
        peer_t *c = bk_peer_find(b, w->id, w->idlen);
        if (c && c->kind == PEER_CLIENT)
            send_end(b, c, w->job, j, j ? send_results(b, c, j, w->from) : w->from);
    }
    jn->nheld = keep;
}

uint64_t bk_journal_next_deadline(const mp_broker_t *b)
{
    const struct bk_journal *jn = b->journal;
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; jn && i < jn->nheld; i++) {
        const waiting_t *w = &jn->held[i];
        uint64_t at = w->ready_ns ? w->ready_ns + LINGER_NS : w->deadline_ns;
        next = at < next ? at : next;
    }
    if (jn && b->jstore->dirty && jn->last_sync_ns + LAZY_SYNC_NS < next)
        next = jn->last_sync_ns + LAZY_SYNC_NS;
    return next;
}
