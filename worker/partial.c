/*  partial.c - partial results: one stuck item holds only itself.

    An executor builds its reply in shared memory its supervisor can read
    (its result area, or an embedded pool's output ring) and publishes,
    before each item, how far it has written (mp__progress_t). When an
    executor has been on one item for flush_ms, the supervisor copies the
    items finished before it and not sent yet, claims them with a
    compare-and-swap of the slot's `sent` word, and sends them as
    W-PARTIAL; the executor's reply leaves out what it finds claimed there
    when it swaps the word closed (executor.c). docs/PARTIAL-RESULTS.md
    has the design, PROTOCOL.md 4.4 the message.

    mp__partial_slice is used by both sides; the rest runs in the
    supervisor's loop (worker.c) and sends through session.c.
*/
#include <linux/membarrier.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zmq.h>

#include "base/log.h"
#include "codec/mpp.h"
#include "codec/wire.h"
#include "mp/error.h"
#include "supervisor.h"

#define FLUSH_MS 200 /* flush_ms when the options say 0 */

/* Appends the error entries of errs (esize bytes from its array32 header)
   whose index is in [from, to) to eout, rebased. */
static int slice_errors(const char *errs, size_t esize, uint64_t from, uint64_t to, mp__buf_t *eout,
                        uint32_t *nerr)
{
    size_t at = eout->size;
    int rc = mp__w_tagged(eout, 0xdd, 0, 4); /* array32, patched below */
    mp__rd_t r;
    mp__rd_init(&r, esize > 5 ? errs + 5 : "", esize > 5 ? esize - 5 : 0);
    *nerr = 0;
    while (!rc && mp__rd_left(&r) > 0) {
        size_t n;
        uint64_t index;
        if (mp__rd_array(&r, &n) || n < 1 || mp__rd_uint(&r, &index))
            return MP_EBADMSG;
        const uint8_t *rest = r.p;
        for (size_t k = 1; k < n; k++)
            if (mp__rd_skip(&r))
                return MP_EBADMSG;
        if (index < from || index >= to)
            continue;
        rc = mp__w_array(eout, n);
        rc = rc ? rc : mp__w_uint(eout, index - from);
        rc = rc ? rc : mp__w_raw(eout, rest, (size_t)(r.p - rest));
        ++*nerr;
    }
    if (rc)
        return rc;
    uint8_t *h = (uint8_t *)eout->data + at + 1;
    for (int i = 0; i < 4; i++)
        h[i] = (uint8_t)(*nerr >> (24 - 8 * i));
    return 0;
}

int mp__partial_slice(const char *vals, size_t vstart, size_t vsize, const char *errs, size_t esize,
                      uint64_t from, uint64_t to, mp__buf_t *vout, mp__buf_t *eout, uint32_t *nerr)
{
    if (vstart > vsize || from > to)
        return MP_EBADMSG;
    mp__rd_t r;
    mp__rd_init(&r, vals + vstart, vsize - vstart);
    const uint8_t *start = r.p;
    for (uint64_t i = 0; i < to; i++) {
        if (i == from)
            start = r.p;
        if (mp__rd_skip(&r))
            return MP_EBADMSG;
    }
    int rc = mp__w_array(vout, (size_t)(to - from));
    rc = rc ? rc : mp__w_raw(vout, start, (size_t)(r.p - start));
    return rc ? rc : slice_errors(errs, esize, from, to, eout, nerr);
}

/* Where executor e says its reply is, if the supervisor may read it there:
   its result area, or (values only) its output ring. */
static bool readable(const worker_t *w, const exec_t *e, const char *p, size_t n, bool values)
{
    const char *area = w->results + (size_t)e->slot * MP__RESULT_AREA;
    const char *lo = values ? area : area + MP__RESULT_VALUES;
    size_t cap = values ? MP__RESULT_VALUES : MP__RESULT_ERRORS;
    if (p >= lo && n <= cap && (size_t)(p - lo) <= cap - n)
        return true;
    return values && w->shm && mp__pshm_out_contains(w->shm, e->slot, p, n);
}

/* Sends items [e->sent, upto) of e's job, finished while it runs item
   upto, unless the executor has replied meanwhile. */
static void flush(worker_t *w, exec_t *e, uint32_t upto)
{
    mp__progress_t *pg = &w->progress[e->slot];
    const char *vals = (const char *)(uintptr_t)__atomic_load_n(&pg->vdata, __ATOMIC_RELAXED);
    const char *errs = (const char *)(uintptr_t)__atomic_load_n(&pg->edata, __ATOMIC_RELAXED);
    size_t vstart = (size_t)__atomic_load_n(&pg->vstart, __ATOMIC_RELAXED);
    size_t vsize = (size_t)__atomic_load_n(&pg->vsize, __ATOMIC_RELAXED);
    size_t esize = (size_t)__atomic_load_n(&pg->esize, __ATOMIC_RELAXED);
    if (!readable(w, e, vals, vsize, true) || !readable(w, e, errs, esize, false)) {
        mp__log(MP_LOG_DEBUG, WHO, "executor %d: its reply outgrew shared memory: not sent in part",
                e->slot);
        return;
    }
    mp__buf_t v, er;
    mp__buf_init(&v, NULL, 0);
    mp__buf_init(&er, NULL, 0);
    uint32_t nerr = 0;
    uint64_t from = e->sent;
    int rc = mp__partial_slice(vals, vstart, vsize, errs, esize, from, upto, &v, &er, &nerr);
    /* claim them: fails once the executor has replied (its reply has them) */
    uint64_t expect = from;
    if (!rc && __atomic_compare_exchange_n(&pg->sent, &expect, upto, false, __ATOMIC_ACQ_REL,
                                           __ATOMIC_ACQUIRE)) {
        e->sent = upto;
        job_t *j = e->job;
        char hs[64];
        mp__buf_t h;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, 4);
        mp__w_uint(&h, j->dispatch);
        mp__w_uint(&h, from);
        mp__w_uint(&h, upto - from);
        mp__w_uint(&h, nerr);
        zmq_msg_t frames[2];
        zmq_msg_init_size(&frames[0], v.size);
        memcpy(zmq_msg_data(&frames[0]), v.data, v.size);
        if (nerr) {
            zmq_msg_init_size(&frames[1], er.size);
            memcpy(zmq_msg_data(&frames[1]), er.data, er.size);
        }
        if (j->session == w->session)
            wk_send_cmd(w, MPP_W_PARTIAL, &h, frames, nerr ? 2 : 1);
        else
            for (int i = 0; i < (nerr ? 2 : 1); i++)
                zmq_msg_close(&frames[i]);
        mp__log(MP_LOG_DEBUG, WHO, "dispatch %llu: items %llu..%u sent ahead of stuck item %u",
                (unsigned long long)j->dispatch, (unsigned long long)from, upto - 1, upto);
    } else if (rc) {
        mp__log(MP_LOG_WARN, WHO, "executor %d: its results do not parse (%s): not sent in part",
                e->slot, mp_strerror(rc));
    }
    mp__buf_release(&v);
    mp__buf_release(&er);
}

/* W-RETURN [dispatch-id from]: items [from, count) of j are handed back,
   to be run elsewhere (PROTOCOL.md 4.4). */
static void hand_back(worker_t *w, const job_t *j, uint64_t from)
{
    char hs[48];
    mp__buf_t h;
    mp__buf_init(&h, hs, sizeof hs);
    mp__w_array(&h, 2);
    mp__w_uint(&h, j->dispatch);
    mp__w_uint(&h, from);
    if (j->session == w->session)
        wk_send_cmd(w, MPP_W_RETURN, &h, NULL, 0);
    mp__log(MP_LOG_INFO, WHO, "dispatch %llu: items %llu..%zu handed back (item %llu is stuck)",
            (unsigned long long)j->dispatch, (unsigned long long)from, j->count - 1,
            (unsigned long long)from - 1);
}

/* Whether the system can order another process's plain store before its
   load (membarrier: every CPU passes a full barrier). Asked once. */
static bool can_membarrier(void)
{
    static int ok = -1;
    if (ok < 0) {
        long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0);
        ok = cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL);
    }
    return ok;
}

/* The items after the one e is stuck on (stuck) wait behind it: the
   executor is told to stop before stuck + 1 (its limit), and if it has
   not reached that item (the membarrier makes its store of the index and
   our load agree: Dekker's protocol, with the fence on our side only),
   they are handed back. If it has, it stopped or it runs them:
   wk_partial_reply hands back what it did not run. */
static void detach_tail(worker_t *w, exec_t *e, uint32_t stuck)
{
    mp__progress_t *pg = &w->progress[e->slot];
    if (stuck + 1 >= e->job->count || e->handed_back || !can_membarrier())
        return;
    __atomic_store_n(&pg->limit, stuck + 1, __ATOMIC_SEQ_CST);
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0) != 0)
        return; /* the limit stands: what it does not run is handed back later */
    e->handed_back = stuck + 1;
    if (__atomic_load_n(&pg->index, __ATOMIC_SEQ_CST) == stuck)
        hand_back(w, e->job, stuck + 1);
    else
        e->handed_back = 0; /* it moved on: its reply says how far it went */
}

void wk_partial_reply(worker_t *w, const exec_t *e, const job_t *j, uint64_t count)
{
    uint64_t upto = e->sent + count;
    if (upto < j->count && e->handed_back != upto)
        hand_back(w, j, upto);
}

long wk_check_partials(worker_t *w, uint64_t now)
{
    if (w->o.flush_ms < 0)
        return -1;
    uint64_t after = (uint64_t)(w->o.flush_ms ? w->o.flush_ms : FLUSH_MS) * 1000000ull;
    long sleep_ms = -1;
    for (int i = 0; i < w->nex; i++) {
        exec_t *e = &w->ex[i];
        if (e->state != EX_BUSY || !e->job || e->job->count < 2 || e->timed_out || e->cancelled)
            continue;
        mp__progress_t *pg = &w->progress[e->slot];
        /* look again in half the wait: a stall is seen within 1.5 flush_ms */
        long tick = (long)(after / 2000000) + 1;
        if (sleep_ms < 0 || tick < sleep_ms)
            sleep_ms = tick;
        if (__atomic_load_n(&pg->dispatch, __ATOMIC_ACQUIRE) != e->job->dispatch)
            continue; /* not started yet */
        uint32_t index = __atomic_load_n(&pg->index, __ATOMIC_ACQUIRE);
        if (index != e->flush_index) {
            e->flush_index = index;
            e->flush_ns = now;
        } else if (index < e->job->count && now - e->flush_ns >= after &&
                   (index > e->sent || (!e->handed_back && index + 1u < e->job->count))) {
            if (index > e->sent)
                flush(w, e, index);
            detach_tail(w, e, index);
            e->flush_ns = now; /* a reply that could not be read: try again later */
        }
    }
    return sleep_ms;
}
