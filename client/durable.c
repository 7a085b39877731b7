/*  durable.c - durable jobs, the client's side (PROTOCOL.md 7.3,
    docs/JOURNAL.md): mp_pool_submit, mp_pool_fetch, mp_pool_forget.

    Each call speaks on a session of its own (a DEALER it opens and closes,
    like sync.c's), in the calling thread: durable jobs never touch the I/O
    thread or the pool's chunk table, so the fast paths stay as they are.
    A lost broker (its DISCONNECT, or 3 silent heartbeat intervals) is met
    by a new session and the same request again, until timeout_ms pass
    without progress:
      submit  sends every chunk not STORED yet again (the broker keeps each
              (job, seq) once), at most WINDOW at a time;
      fetch   asks again from the first chunk it has not appended: it
              appends only at FETCHED-END, for the chunks the END covers,
              so a batch cut short is dropped whole and each item lands
              once, in order.

    Invariants: one session per call, closed before it returns; no pool
    lock is taken (only the pool's fixed configuration is read).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/items_impl.h"
#include "codec/mpp.h"
#include "mp/error.h"
#include "pool_impl.h"
#include "results.h"
#include "session.h"

#define WINDOW 64          /* chunks sent and not STORED yet */
#define FETCH_WAIT_MS 1000 /* the broker holds an unanswerable FETCH this long */

typedef struct {
    mp_pool_t *pool;
    void *sock;
    uint64_t last_heard, next_hb, interval;
    bool lost;
} dsession_t;

static int ds_open(dsession_t *s)
{
    s->lost = false;
    s->interval = (uint64_t)s->pool->heartbeat_ms * 1000000ull;
    s->last_heard = mp__now_ns();
    s->next_hb = s->last_heard + s->interval;
    int rc = mp__session_open(s->pool->ctx, s->pool->endpoint, &s->pool->curve, &s->sock);
    if (!rc && mp__session_hello(MP__DEALER(s->sock), false, s->pool->heartbeat_ms, WINDOW))
        rc = MP_EBROKERLOST;
    return rc;
}

static void ds_close(dsession_t *s)
{
    if (s->sock) {
        mp__session_command(MP__DEALER(s->sock), MPP_C_DISCONNECT);
        int zero = 0;
        zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(s->sock);
    }
    s->sock = NULL;
}

/* A new session after a lost one. */
static int ds_reopen(dsession_t *s)
{
    ds_close(s);
    return ds_open(s);
}

/* The next message for the caller (WELCOME, FAILED, STORED, FETCHED...),
   waiting at most wait_ms: 0 and *m, MP_ETIMEDOUT, or MP_EBROKERLOST
   (DISCONNECT, or silent for 3 intervals: s->lost). HEARTBEATs are read
   here. */
static int ds_next(dsession_t *s, int wait_ms, mpp_msg_t *m, uint8_t *cmd)
{
    uint64_t end = mp__now_ns() + (uint64_t)wait_ms * 1000000ull;
    for (;;) {
        uint64_t now = mp__now_ns();
        if (now >= s->next_hb) {
            mp__session_command(MP__DEALER(s->sock), MPP_C_HEARTBEAT);
            s->next_hb = now + s->interval;
        }
        if (now - s->last_heard > MPP_LIVENESS * s->interval) {
            s->lost = true;
            return MP_EBROKERLOST;
        }
        uint64_t until = end < s->next_hb ? end : s->next_hb;
        zmq_pollitem_t it = {s->sock, 0, ZMQ_POLLIN, 0};
        long ms = until > now ? (long)((until - now) / 1000000) + 1 : 0;
        if (zmq_poll(&it, 1, ms) > 0 && mpp_recv(s->sock, m, ZMQ_DONTWAIT) == 0) {
            s->last_heard = mp__now_ns();
            if (!mp__session_valid(m)) {
                mpp_close(m);
                continue;
            }
            *cmd = mpp_data(m, 1)[0];
            if (*cmd == MPP_B_DISCONNECT) {
                mpp_close(m);
                s->lost = true;
                return MP_EBROKERLOST;
            }
            if (*cmd == MPP_B_HEARTBEAT) {
                mpp_close(m);
                continue;
            }
            return 0;
        }
        if (mp__now_ns() >= end)
            return MP_ETIMEDOUT;
    }
}

/* The automatic chunk size of a durable job: from the item count alone
   (the executors may change between two submissions of one job, and the
   broker keeps each chunk once, with its count): about 64 chunks, of at
   least 64 items. */
static size_t auto_chunksize(size_t n)
{
    size_t size = (n + 63) / 64;
    return size < 64 ? 64 : size;
}

static bool job_name_ok(const char *job)
{
    size_t len = job ? strlen(job) : 0;
    return len > 0 && len <= 64;
}

/* ---- submit --------------------------------------------------------------- */

typedef struct {
    const char *job, *task;
    uint8_t mode;
    uint32_t limit;
    size_t total;
    zmq_msg_t *frames; /* one per chunk, kept until STORED */
    size_t *counts;
    bool *stored;
    size_t nstored;
} submit_t;

/* The items frames of the chunks: input items [k * size, ...). */
static int cut_chunks(submit_t *sb, const mp_items_t *items, size_t size)
{
    size_t n = mp_items_len(items);
    sb->total = (n + size - 1) / size;
    sb->frames = calloc(sb->total, sizeof *sb->frames);
    sb->counts = calloc(sb->total, sizeof *sb->counts);
    sb->stored = calloc(sb->total, sizeof *sb->stored);
    if (!sb->frames || !sb->counts || !sb->stored)
        return MP_ENOMEM;
    for (size_t k = 0; k < sb->total; k++) {
        size_t a = k * size, b = a + size < n ? a + size : n, bytes;
        const char *p;
        char *at;
        mp__items_span(items, a, b, &p, &bytes);
        if (mpp_items_frame(&sb->frames[k], b - a, bytes, &at))
            return MP_ENOMEM;
        memcpy(at, p, bytes);
        sb->counts[k] = b - a;
    }
    return 0;
}

static void submit_free(submit_t *sb)
{
    for (size_t k = 0; sb->frames && k < sb->total; k++)
        zmq_msg_close(&sb->frames[k]);
    free(sb->frames);
    free(sb->counts);
    free(sb->stored);
}

/* One answer to a SUBMIT: STORED marks its chunk; FAILED ends the call. */
static int submit_answer(submit_t *sb, mpp_msg_t *m, uint8_t cmd, size_t *outstanding)
{
    mp__rd_t r;
    size_t n;
    uint64_t id;
    mp__rd_init(&r, mpp_data(m, 2), mpp_size(m, 2));
    if (mp__rd_array(&r, &n) || n < 1 || mp__rd_uint(&r, &id) || id == 0 || id > sb->total)
        return 0; /* not about this call */
    if (cmd == MPP_B_STORED) {
        if (!sb->stored[id - 1]) {
            sb->stored[id - 1] = true;
            sb->nstored++;
            if (*outstanding)
                (*outstanding)--;
        }
        return 0;
    }
    int64_t code;
    const char *msg = "";
    size_t len = 0;
    if (cmd != MPP_B_FAILED)
        return 0;
    if (n < 3 || mp__rd_int(&r, &code) || mp__rd_str(&r, &msg, &len))
        code = MP_EBADREQUEST;
    mp__log(MP_LOG_WARN, "mp-pool", "job %s: chunk %llu of %zu refused: %.*s", sb->job,
            (unsigned long long)id - 1, sb->total, (int)(len > 300 ? 300 : len), msg);
    return code ? (int)code : MP_EBADREQUEST;
}

static int submit_run(dsession_t *s, submit_t *sb, uint64_t timeout_ns)
{
    size_t next = 0, outstanding = 0;
    uint64_t progress = mp__now_ns();
    size_t last_stored = 0;
    while (sb->nstored < sb->total) {
        while (outstanding < WINDOW && next < sb->total) {
            if (!sb->stored[next]) {
                if (mp__session_submit_durable(MP__DEALER(s->sock), next + 1, sb->task, sb->mode,
                                               sb->counts[next], sb->limit, sb->job, next,
                                               sb->total, &sb->frames[next]))
                    break; /* a full pipe: after the next answer */
                outstanding++;
            }
            next++;
        }
        mpp_msg_t m;
        uint8_t cmd;
        int rc = ds_next(s, 100, &m, &cmd);
        if (rc == 0) {
            rc = submit_answer(sb, &m, cmd, &outstanding);
            mpp_close(&m);
            if (rc)
                return rc;
        }
        if (sb->nstored != last_stored) {
            last_stored = sb->nstored;
            progress = mp__now_ns();
        }
        if (mp__now_ns() - progress > timeout_ns)
            return MP_EBROKERLOST;
        if (s->lost) { /* a new session sends every chunk not STORED again */
            mp__log(MP_LOG_INFO, "mp-pool", "job %s: broker lost, %zu of %zu chunks stored",
                    sb->job, sb->nstored, sb->total);
            if ((rc = ds_reopen(s)))
                return rc;
            next = 0;
            outstanding = 0;
        }
    }
    return 0;
}

int mp_pool_submit(mp_pool_t *pool, const char *job, const char *name, const mp_items_t *items,
                   const mp_submit_options_t *o)
{
    mp_submit_options_t opt = o ? *o : (mp_submit_options_t){0};
    if (!pool || !job_name_ok(job) || !name || !*name || strlen(name) > MPP_MAX_NAME || !items ||
        mp_items_len(items) == 0)
        return MP_EINVAL;
    dsession_t s = {.pool = pool};
    int rc = ds_open(&s);
    size_t n = mp_items_len(items), size = opt.chunksize;
    if (!size) /* from n alone, so that a submission sent again cuts the same chunks */
        size = auto_chunksize(n);
    if (size > MPP_MAX_COUNT)
        size = MPP_MAX_COUNT;
    if ((n + size - 1) / size > 1048576) /* the most chunks a job may have */
        size = (n + 1048575) / 1048576;
    submit_t sb = {.job = job,
                   .task = name,
                   .mode = opt.star ? MPP_MODE_STAR : MPP_MODE_MAP,
                   .limit = opt.time_limit_ms < 0    ? 0
                            : opt.time_limit_ms == 0 ? pool->time_limit_ms
                                                     : (uint32_t)opt.time_limit_ms};
    if (!rc)
        rc = cut_chunks(&sb, items, size);
    int timeout = opt.timeout_ms > 0 ? opt.timeout_ms : pool->reconnect_timeout_ms;
    if (!rc)
        rc = submit_run(&s, &sb, (uint64_t)(timeout > 0 ? timeout : 30000) * 1000000ull);
    if (!rc)
        mp__log(MP_LOG_INFO, "mp-pool", "job %s: %zu items in %zu chunks stored", job, n, sb.total);
    submit_free(&sb);
    ds_close(&s);
    return rc;
}

/* ---- fetch ---------------------------------------------------------------- */

typedef struct {
    const char *job;
    mp_items_t *batch; /* FETCHED since the last END */
    uint64_t seq;      /* of the last FETCHED, and the items it had so far */
    size_t at;
    uint64_t from;        /* the first chunk not appended to the results */
    uint64_t incarnation; /* the job's, from its first FETCHED-END (0: none yet) */
    bool any;
} fetch_t;

/* One FETCHED [job seq base count nerrors] values [errors] into the batch:
   pieces come in order, each chunk's from item 0. */
static int fetched(fetch_t *f, mpp_msg_t *m)
{
    mp__rd_t r, vr;
    size_t n, len, nv;
    const char *job;
    uint64_t seq, base, count, nerrors;
    mp__rd_init(&r, mpp_data(m, 2), mpp_size(m, 2));
    if (mp__rd_array(&r, &n) || n < 5 || mp__rd_str(&r, &job, &len) || len != strlen(f->job) ||
        memcmp(job, f->job, len) || mp__rd_uint(&r, &seq) || mp__rd_uint(&r, &base) ||
        mp__rd_uint(&r, &count) || mp__rd_uint(&r, &nerrors) || m->n != (nerrors ? 5 : 4))
        return MP_EBADREQUEST;
    bool next_chunk = f->any ? seq == f->seq + 1 : seq == f->from;
    if (!(next_chunk && base == 0) && !(f->any && seq == f->seq && base == f->at))
        return MP_EBADREQUEST; /* not where the last piece ended */
    mp__rd_init(&vr, mpp_data(m, 3), mpp_size(m, 3));
    if (mp__rd_array(&vr, &nv) || nv != count)
        return MP_EBADREQUEST;
    size_t first = mp_items_len(f->batch);
    int rc = mp__items_append_packed(f->batch, vr.p, mp__rd_left(&vr), count);
    if (!rc && nerrors)
        rc = mp__pool_decode_errors(f->batch, f->job, mpp_data(m, 4), mpp_size(m, 4), first);
    if (rc)
        return rc == MP_ENOMEM ? rc : MP_EBADREQUEST;
    f->any = true;
    f->seq = seq;
    f->at = base + count;
    return 0;
}

/* FETCHED-END [job next total stored answered]: the batch holds chunks
   [from, next) whole: appended. 1 when the job is done, 0 when not yet. */
static int fetch_end(fetch_t *f, mpp_msg_t *m, mp_items_t *results)
{
    mp__rd_t r;
    size_t n, len;
    const char *job;
    uint64_t next, total, stored, answered, incarnation = 0;
    mp__rd_init(&r, mpp_data(m, 2), mpp_size(m, 2));
    if (mp__rd_array(&r, &n) || n < 5 || mp__rd_str(&r, &job, &len) || len != strlen(f->job) ||
        memcmp(job, f->job, len) || mp__rd_uint(&r, &next) || mp__rd_uint(&r, &total) ||
        mp__rd_uint(&r, &stored) || mp__rd_uint(&r, &answered) ||
        (n >= 6 && mp__rd_uint(&r, &incarnation)))
        return MP_EBADREQUEST;
    if (total == 0)
        return MP_ENOENT;
    if (f->incarnation && incarnation != f->incarnation) {
        mp__log(MP_LOG_WARN, "mp-pool",
                "job %s was forgotten and submitted again while it was fetched", f->job);
        return MP_ENOENT; /* another job of the same name: not appended to the first's */
    }
    f->incarnation = incarnation;
    if (next < f->from || (next > f->from && !(f->any && f->seq == next - 1)) ||
        (next == f->from && f->any))
        return MP_EBADREQUEST; /* the END does not cover what came */
    if (next > f->from) {
        size_t at = mp_items_len(results), nb = mp_items_len(f->batch), bytes;
        const char *p;
        mp__items_span(f->batch, 0, nb, &p, &bytes);
        int rc = mp__items_append_packed(results, p, bytes, nb);
        if (!rc)
            rc = mp__items_take_errors(results, f->batch, at);
        if (rc)
            return rc;
    }
    mp_items_destroy(&f->batch);
    f->from = next;
    f->any = false;
    return next >= total ? 1 : 0;
}

/* Asks from f->from and reads the answers up to FETCHED-END: 1 done, 0 not
   yet, MP_EBROKERLOST (the batch is dropped), another error. */
static int fetch_round(dsession_t *s, fetch_t *f, mp_items_t *results, uint64_t wait_ms)
{
    mp_items_destroy(&f->batch);
    f->batch = mp_items_new();
    f->any = false;
    if (!f->batch)
        return MP_ENOMEM;
    if (mp__session_fetch(MP__DEALER(s->sock), f->job, f->from, wait_ms))
        return MP_EBROKERLOST;
    for (;;) {
        mpp_msg_t m;
        uint8_t cmd;
        int rc = ds_next(s, (int)wait_ms + 2 * s->pool->heartbeat_ms, &m, &cmd);
        if (rc == MP_ETIMEDOUT) /* no answer: the broker may have lost the request */
            return MP_EBROKERLOST;
        if (rc)
            return rc;
        if (cmd == MPP_B_FETCHED)
            rc = fetched(f, &m);
        else if (cmd == MPP_B_FETCHED_END)
            rc = fetch_end(f, &m, results);
        else
            rc = -1; /* not ours (a late answer of another call): read on */
        mpp_close(&m);
        if (cmd == MPP_B_FETCHED_END || (rc != 0 && rc != -1))
            return rc;
    }
}

int mp_pool_fetch(mp_pool_t *pool, const char *job, int timeout_ms, mp_items_t **results_p)
{
    if (!pool || !job_name_ok(job) || !results_p)
        return MP_EINVAL;
    *results_p = NULL;
    dsession_t s = {.pool = pool};
    fetch_t f = {.job = job};
    mp_items_t *results = mp_items_new();
    uint64_t start = mp__now_ns(), last = start;
    uint64_t deadline = timeout_ms >= 0 ? start + (uint64_t)timeout_ms * 1000000ull : UINT64_MAX;
    uint64_t lost_ns =
        (uint64_t)(pool->reconnect_timeout_ms > 0 ? pool->reconnect_timeout_ms : 30000) *
        1000000ull;
    int rc = results ? ds_open(&s) : MP_ENOMEM;
    while (rc == 0) {
        uint64_t now = mp__now_ns();
        uint64_t wait = deadline > now ? (deadline - now) / 1000000 : 0;
        uint64_t before = f.from;
        rc = fetch_round(&s, &f, results, wait < FETCH_WAIT_MS ? wait : FETCH_WAIT_MS);
        now = mp__now_ns();
        if (rc == 0) { /* not done yet */
            last = now;
            rc = now >= deadline ? MP_ETIMEDOUT : 0;
            if (!rc && f.from == before && now - start < deadline - start)
                usleep(20000); /* answered at once, with nothing (not held): no busy loop */
        } else if (rc == MP_EBROKERLOST && now >= deadline) {
            rc = MP_ETIMEDOUT;
        } else if (rc == MP_EBROKERLOST && now - last <= lost_ns) {
            rc = ds_reopen(&s); /* and ask again from the first chunk not appended */
        }
    }
    mp_items_destroy(&f.batch);
    ds_close(&s);
    if (rc == 1) {
        *results_p = results;
        return 0;
    }
    mp_items_destroy(&results);
    return rc;
}

/* ---- forget --------------------------------------------------------------- */

int mp_pool_forget(mp_pool_t *pool, const char *job)
{
    if (!pool || !job_name_ok(job))
        return MP_EINVAL;
    dsession_t s = {.pool = pool};
    int rc = ds_open(&s);
    uint64_t end = mp__now_ns() +
                   (uint64_t)(pool->reconnect_timeout_ms > 0 ? pool->reconnect_timeout_ms : 30000) *
                       1000000ull;
    bool sent = false;
    while (rc == 0 || rc == MP_EBROKERLOST) {
        if (mp__now_ns() > end) {
            rc = MP_EBROKERLOST;
            break;
        }
        if (rc == MP_EBROKERLOST || s.lost) {
            if ((rc = ds_reopen(&s)))
                break;
            sent = false;
        }
        if (!sent && mp__session_forget(MP__DEALER(s.sock), job) == 0)
            sent = true;
        mpp_msg_t m;
        uint8_t cmd;
        rc = ds_next(&s, 100, &m, &cmd);
        if (rc == MP_ETIMEDOUT) {
            rc = 0;
            continue;
        }
        if (rc)
            continue;
        if (cmd == MPP_B_FORGOTTEN) {
            mp__rd_t r;
            size_t n;
            bool found = false;
            mp__rd_init(&r, mpp_data(&m, 2), mpp_size(&m, 2));
            if (mp__rd_array(&r, &n) == 0 && n >= 2 && mp__rd_skip(&r) == 0)
                mp__rd_bool(&r, &found);
            mpp_close(&m);
            rc = found ? 0 : MP_ENOENT;
            break;
        }
        mpp_close(&m);
    }
    ds_close(&s);
    return rc;
}
