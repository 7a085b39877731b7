/*  supervise.c - the supervisor's executors: starting them through the
    zygote, handing them jobs, reading their replies, and their deaths.

    Executor death: its socket closes at once; the zygote reports the wait
    status right after. When both are known and the executor held a job, the
    supervisor sends LOST with the index of the item it was running (read
    from the executor's shared progress slot) and the cause, then asks the
    zygote for a new executor in the same slot. Uses session.c (sending);
    called by the loop (worker.c).
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "base/log.h"
#include "codec/mpp.h"
#include "codec/wire.h"
#include "mp/error.h"
#include "mp/task.h"
#include "supervisor.h"

void wk_spawn_executor(worker_t *w, exec_t *e)
{
    e->state = EX_STARTING;
    e->pid = 0;
    e->fd = -1;
    e->rlen = 0;
    e->dispatches = 0;
    if (mp__zygote_spawn(&w->zygote, e->slot))
        e->state = EX_NONE; /* the zygote is gone; the loop notices */
}

void wk_assign(worker_t *w)
{
    for (int i = 0; i < w->nex && w->queue_head; i++) {
        exec_t *e = &w->ex[i];
        /* an executor that has run maxtasksperchild dispatches is leaving */
        if (e->state != EX_IDLE ||
            (w->o.maxtasksperchild > 0 && e->dispatches >= (unsigned)w->o.maxtasksperchild))
            continue;
        job_t *j = w->queue_head;
        w->queue_head = j->next;
        if (!w->queue_head)
            w->queue_tail = NULL;
        j->next = NULL;
        uint32_t hl = (uint32_t)zmq_msg_size(&j->header), il = (uint32_t)zmq_msg_size(&j->items);
        uint32_t nl = j->has_init ? (uint32_t)zmq_msg_size(&j->init) : 0;
        uint32_t total = 12 + hl + il + nl;
        struct iovec iov[] = {{&total, 4},
                              {&hl, 4},
                              {zmq_msg_data(&j->header), hl},
                              {&il, 4},
                              {zmq_msg_data(&j->items), il},
                              {&nl, 4},
                              {j->has_init ? zmq_msg_data(&j->init) : NULL, nl}};
        mp__progress_t *pg = &w->progress[e->slot];
        __atomic_store_n(&pg->index, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&pg->dispatch, 0, __ATOMIC_RELAXED); /* the executor sets it */
        __atomic_store_n(&pg->limit, UINT32_MAX, __ATOMIC_RELAXED);
        e->seen_index = e->flush_index = 0;
        e->seen_ns = e->flush_ns = mp__now_ns();
        e->sent = e->handed_back = 0;
        e->timed_out = e->cancelled = false;
        e->job = j;
        e->state = EX_BUSY;
        e->dispatches++;
        /* a failed write means the executor is dying: its death reports the job */
        mp__write_all(e->fd, iov, (int)MP__ARRAY_SIZE(iov));
    }
}

/* The executor's socket closed or broke: wait for its wait status. */
static void executor_hangup(worker_t *w, exec_t *e)
{
    (void)w;
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
    e->state = EX_DYING;
}

static void executor_exited(worker_t *w, exec_t *e, int status)
{
    char cause[160];
    mp__describe_status(status, cause, sizeof cause);
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
    if (e->job) {
        job_t *j = e->job;
        uint32_t index = __atomic_load_n(&w->progress[e->slot].index, __ATOMIC_RELAXED);
        if (index >= j->count)
            index = 0;
        mp__log(e->cancelled ? MP_LOG_INFO : MP_LOG_WARN, WHO,
                "executor %d (pid %d) died running %s item %u of dispatch %llu: %s; restarting",
                e->slot, (int)e->pid, j->name, index, (unsigned long long)j->dispatch, cause);
        int code = 0;
        if (e->timed_out) {
            snprintf(cause, sizeof cause, "over its time limit of %u ms: killed", j->time_limit_ms);
            code = MP_ETIMELIMIT;
        } else if (e->cancelled) {
            snprintf(cause, sizeof cause, "cancelled: killed");
            code = MP_ECANCELLED;
        }
        if (j->session == w->session)
            wk_send_lost(w, j, index, cause, code);
        wk_job_free(j);
        e->job = NULL;
        w->held--;
        w->lost++;
    } else {
        mp__log(status == 0 ? MP_LOG_DEBUG : MP_LOG_WARN, WHO,
                "executor %d (pid %d) exited idle: %s; restarting", e->slot, (int)e->pid, cause);
    }
    e->state = EX_NONE;
    if (!w->stopping)
        wk_spawn_executor(w, e);
}

long wk_check_limits(worker_t *w, uint64_t now)
{
    long sleep_ms = -1;
    for (int i = 0; i < w->nex; i++) {
        exec_t *e = &w->ex[i];
        if (e->state != EX_BUSY || !e->job || !e->job->time_limit_ms || e->timed_out ||
            e->cancelled)
            continue;
        uint32_t limit = e->job->time_limit_ms;
        uint32_t index = __atomic_load_n(&w->progress[e->slot].index, __ATOMIC_RELAXED);
        if (index != e->seen_index) { /* a new item since the last look */
            e->seen_index = index;
            e->seen_ns = now;
        } else if (now - e->seen_ns > (uint64_t)limit * 1000000ull) {
            mp__log(MP_LOG_WARN, WHO,
                    "executor %d (pid %d): %s item %u of dispatch %llu ran past its time limit of "
                    "%u ms; killing it",
                    e->slot, (int)e->pid, e->job->name, index, (unsigned long long)e->job->dispatch,
                    limit);
            e->timed_out = true;
            if (e->pid > 0)
                kill(e->pid, SIGKILL); /* its death reports the item (executor_exited) */
            continue;
        }
        /* look again soon enough that an item overruns by at most ~1/8 */
        long tick = (long)limit / 8;
        tick = tick < 5 ? 5 : tick > 250 ? 250 : tick;
        if (sleep_ms < 0 || tick < sleep_ms)
            sleep_ms = tick;
    }
    return sleep_ms;
}

long wk_check_hold(worker_t *w, uint64_t now)
{
    if (w->o.hold_ms < 0)
        return -1;
    uint64_t hold = (uint64_t)(w->o.hold_ms ? w->o.hold_ms : 250) * 1000000ull;
    bool idle = false;
    for (int i = 0; i < w->nex && !idle; i++)
        idle = w->ex[i].state == EX_IDLE;
    if (idle && !w->queue_head && w->withheld) { /* room again: the credit comes back */
        mp__log(MP_LOG_DEBUG, WHO, "an executor is free: credit %u again", w->credit);
        w->withheld = 0;
        wk_send_ready(w);
        return -1;
    }
    if (idle || !w->queue_head)
        return -1;
    uint64_t waited = now - w->queue_head->queued_ns;
    if (waited < hold)
        return (long)((hold - waited) / 1000000) + 1;
    unsigned n = 0;
    while (w->queue_head) {
        job_t *j = w->queue_head;
        w->queue_head = j->next;
        char hs[32];
        mp__buf_t h;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, 1);
        mp__w_uint(&h, j->dispatch);
        if (j->session == w->session)
            wk_send_cmd(w, MPP_W_RETURN, &h, NULL, 0);
        wk_job_free(j);
        w->held--;
        n++;
    }
    w->queue_tail = NULL;
    w->withheld += n;
    mp__log(MP_LOG_INFO, WHO,
            "every executor busy for %llu ms: %u queued dispatch%s handed back to the broker",
            (unsigned long long)(waited / 1000000), n, n == 1 ? "" : "es");
    return -1;
}

/* Reads what the executor wrote (never blocks: MSG_DONTWAIT); forwards a
   complete reply. Returns false when nothing could be read. */
bool wk_executor_readable(worker_t *w, exec_t *e)
{
    if (e->rcap - e->rlen < 65536) {
        size_t cap = e->rcap ? e->rcap * 2 : 131072;
        char *grown = realloc(e->rbuf, cap);
        if (!grown) {
            mp__log(MP_LOG_ERROR, WHO, "out of memory reading executor %d", e->slot);
            return false;
        }
        e->rbuf = grown;
        e->rcap = cap;
    }
    ssize_t r = recv(e->fd, e->rbuf + e->rlen, e->rcap - e->rlen, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return false;
    if (r <= 0) {
        executor_hangup(w, e);
        return true;
    }
    e->rlen += (size_t)r;
    if (e->rlen < 4)
        return true;
    uint32_t len;
    memcpy(&len, e->rbuf, 4);
    if (e->rlen < 4 + (size_t)len)
        return true;
    if (e->rlen > 4 + (size_t)len || len < 24 || !e->job) {
        mp__log(MP_LOG_ERROR, WHO, "executor %d sent an unexpected reply; killing it", e->slot);
        kill(e->pid, SIGKILL);
        executor_hangup(w, e);
        return true;
    }
    const char *p = e->rbuf + 4;
    uint64_t dispatch;
    uint32_t count, nerrors, vlen, elen = 0;
    memcpy(&dispatch, p, 8);
    memcpy(&count, p + 8, 4);
    memcpy(&nerrors, p + 12, 4);
    memcpy(&vlen, p + 16, 4);
    const char *values = p + 20;
    if ((size_t)vlen + 24 <= len)
        memcpy(&elen, values + vlen, 4);
    const char *errors = values + vlen + 4;
    /* the values in the executor's output ring: u32 slot, u32 vsize, u64 at */
    size_t plain = 24 + (size_t)vlen + elen;
    bool in_ring = len == plain + 16;
    if ((len != plain && !in_ring) || (in_ring && !w->shm)) {
        mp__log(MP_LOG_ERROR, WHO, "executor %d sent a malformed reply; killing it", e->slot);
        kill(e->pid, SIGKILL);
        executor_hangup(w, e);
        return true;
    }
    job_t *j = e->job;
    e->job = NULL;
    e->state = EX_IDLE;
    e->rlen = 0;
    w->held--;
    w->done++;
    if (j->session == w->session && dispatch == j->dispatch) {
        wk_partial_reply(w, e, j, count);
        char hs[64];
        mp__buf_t h;
        mp__buf_init(&h, hs, sizeof hs);
        mp__w_array(&h, in_ring ? 4 : 3);
        mp__w_uint(&h, j->dispatch);
        mp__w_uint(&h, count);
        mp__w_uint(&h, nerrors);
        if (in_ring) {
            uint32_t slot, vsize;
            uint64_t at;
            memcpy(&slot, errors + elen, 4);
            memcpy(&vsize, errors + elen + 4, 4);
            memcpy(&at, errors + elen + 8, 8);
            mp__w_array(&h, 3);
            mp__w_uint(&h, slot);
            mp__w_uint(&h, at);
            mp__w_uint(&h, vsize);
        }
        zmq_msg_t frames[2];
        zmq_msg_init_size(&frames[0], vlen);
        memcpy(zmq_msg_data(&frames[0]), values, vlen);
        if (nerrors) {
            zmq_msg_init_size(&frames[1], elen);
            memcpy(zmq_msg_data(&frames[1]), errors, elen);
        }
        wk_send_cmd(w, MPP_W_RESULT, &h, frames, nerrors ? 2 : 1);
    }
    wk_job_free(j);
    if (e->rcap > (1u << 24)) { /* do not keep a huge buffer for small replies */
        free(e->rbuf);
        e->rbuf = NULL;
        e->rcap = 0;
    }
    wk_assign(w);
    return true;
}

void wk_on_zygote(worker_t *w)
{
    for (;;) {
        mp__zygote_event_t ev;
        int rc = mp__zygote_read(&w->zygote, &ev);
        if (rc == MP_EAGAIN)
            return;
        if (rc) {
            mp__log(MP_LOG_ERROR, WHO, "executor zygote lost: %s", mp_strerror(rc));
            w->stopping = true;
            return;
        }
        if (ev.slot < 0 || ev.slot >= w->nex) {
            if (ev.fd >= 0)
                close(ev.fd);
            continue;
        }
        exec_t *e = &w->ex[ev.slot];
        switch (ev.type) {
        case ZYGOTE_SPAWNED:
            e->pid = ev.pid;
            e->fd = ev.fd;
            e->state = EX_IDLE;
            mp__log(MP_LOG_DEBUG, WHO, "executor %d started: pid %d", e->slot, (int)e->pid);
            break;
        case ZYGOTE_EXITED:
            if (ev.pid != e->pid)
                break;
            /* its last reply may still be in the socket: read it first */
            while (e->fd >= 0 && e->job && wk_executor_readable(w, e)) {
            }
            executor_exited(w, e, ev.status);
            break;
        case ZYGOTE_FAILED:
            mp__log(MP_LOG_ERROR, WHO, "cannot start executor %d: %s", ev.slot,
                    mp_strerror(ev.status));
            e->state = EX_NONE;
            break;
        }
    }
}
