/*  dashboard.c - what the web dashboard draws (docs/CLUSTER.md 7): the
    last errors with their structured fields, and GET /api/status, a JSON
    snapshot of workers, tasks, totals and those errors.

    The errors ring exists only when the broker serves HTTP (b->recent is
    allocated by http.c): a broker without a dashboard pays one NULL test
    per failed answer. It keeps the last RECENT errors; of one message it
    reads at most PER_MESSAGE (a chunk of 10^6 failures costs what 4 do).
    Like the metrics, the JSON is rendered on the broker thread.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker_impl.h"
#include "mp/error.h"

#define RECENT 32
#define PER_MESSAGE 4

typedef struct {
    uint64_t time_ms; /* wall clock, for people */
    char task[MPP_MAX_NAME + 1];
    char message[200];
    char host[64];
    int code, kind;
    unsigned pid;
    uint64_t index;
} recent_t;

struct bk_recent {
    recent_t e[RECENT];
    size_t next, n; /* the ring: next slot, entries held */
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void copy(char *dst, size_t size, const char *s, size_t len)
{
    if (len >= size)
        len = size - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

static recent_t *slot(mp_broker_t *b)
{
    struct bk_recent *r = b->recent;
    recent_t *e = &r->e[r->next];
    r->next = (r->next + 1) % RECENT;
    if (r->n < RECENT)
        r->n++;
    memset(e, 0, sizeof *e);
    e->time_ms = wall_ms();
    return e;
}

void bk_recent_error(mp_broker_t *b, const char *task, size_t index, int code, int kind,
                     const char *msg, const char *host, unsigned pid)
{
    if (!b->recent)
        return;
    recent_t *e = slot(b);
    copy(e->task, sizeof e->task, task, strlen(task));
    copy(e->message, sizeof e->message, msg, strlen(msg));
    copy(e->host, sizeof e->host, host, strlen(host));
    e->code = code;
    e->kind = kind;
    e->pid = pid;
    e->index = index;
}

void bk_recent_errors(mp_broker_t *b, const char *task, size_t base, const void *frame, size_t size)
{
    if (!b->recent)
        return;
    mp__rd_t r;
    size_t n, k;
    mp__rd_init(&r, frame, size);
    if (mp__rd_array(&r, &n))
        return;
    for (size_t i = 0; i < n && i < PER_MESSAGE; i++) {
        uint64_t index, kind, pid;
        int64_t code;
        const char *msg, *host;
        size_t mlen, hlen;
        if (mp__rd_array(&r, &k) || k < 6 || mp__rd_uint(&r, &index) || mp__rd_int(&r, &code) ||
            mp__rd_uint(&r, &kind) || mp__rd_str(&r, &msg, &mlen) || mp__rd_str(&r, &host, &hlen) ||
            mp__rd_uint(&r, &pid))
            return; /* the client reads it; here it is only shown */
        for (size_t extra = 6; extra < k; extra++)
            if (mp__rd_skip(&r))
                return;
        recent_t *e = slot(b);
        copy(e->task, sizeof e->task, task, strlen(task));
        copy(e->message, sizeof e->message, msg, mlen);
        copy(e->host, sizeof e->host, host, hlen);
        e->code = (int)code;
        e->kind = (int)kind;
        e->pid = (unsigned)pid;
        e->index = base + index;
    }
}

int bk_recent_init(mp_broker_t *b)
{
    b->recent = calloc(1, sizeof *b->recent);
    return b->recent ? 0 : MP_ENOMEM;
}

void bk_recent_free(mp_broker_t *b)
{
    free(b->recent);
    b->recent = NULL;
}

/* ---- the JSON ----------------------------------------------------------------------- */

typedef struct {
    mp__buf_t *out;
    int rc;
} jout_t;

static void raw(jout_t *j, const char *s, size_t n)
{
    if (!j->rc)
        j->rc = mp__buf_append(j->out, s, n);
}

static void rawf(jout_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void rawf(jout_t *j, const char *fmt, ...)
{
    char s[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    raw(j, s, n < 0 ? 0 : (size_t)n < sizeof s ? (size_t)n : sizeof s - 1);
}

/* A JSON string: control characters, quotes and backslashes escaped; a
   peer's bytes that are not UTF-8 pass as they are (the page shows them). */
static void str(jout_t *j, const char *s)
{
    raw(j, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            raw(j, e, 2);
        } else if (c < 0x20) {
            rawf(j, "\\u%04x", c);
        } else {
            raw(j, s, 1);
        }
    }
    raw(j, "\"", 1);
}

static void key(jout_t *j, const char *k, bool first)
{
    if (!first)
        raw(j, ",", 1);
    str(j, k);
    raw(j, ":", 1);
}

static void workers(jout_t *j, mp_broker_t *b, uint64_t now)
{
    raw(j, "[", 1);
    bool first = true;
    for (size_t i = 0; i < b->npeers; i++) {
        const peer_t *w = b->peers[i];
        if (w->kind != PEER_WORKER)
            continue;
        raw(j, first ? "{" : ",{", first ? 1 : 2);
        first = false;
        key(j, "id", true);
        rawf(j, "%llu", (unsigned long long)w->serial);
        key(j, "host", false);
        str(j, w->host);
        key(j, "pid", false);
        rawf(j, "%u", w->pid);
        key(j, "processes", false);
        rawf(j, "%u", w->processes);
        key(j, "running", false);
        rawf(j, "%zu", w->nrunning);
        key(j, "done", false);
        rawf(j, "%llu", (unsigned long long)w->done);
        key(j, "failed", false);
        rawf(j, "%llu", (unsigned long long)w->failed);
        key(j, "heard_ms_ago", false);
        rawf(j, "%llu", (unsigned long long)((now - w->last_seen) / 1000000u));
        key(j, "draining", false);
        raw(j, w->draining ? "true" : "false", w->draining ? 4 : 5);
        raw(j, "}", 1);
    }
    raw(j, "]", 1);
}

static void tasks(jout_t *j, mp_broker_t *b)
{
    raw(j, "[", 1);
    for (const queue_t *q = b->queues; q; q = q->next) {
        uint64_t queued = bk_task_queued(q), running = bk_task_running(b, q);
        const task_stats_t *s = &q->stats;
        raw(j, q == b->queues ? "{" : ",{", q == b->queues ? 1 : 2);
        key(j, "name", true);
        str(j, q->name);
        rawf(j, ",\"queued\":%llu,\"running\":%llu,\"submitted\":%llu,\"done\":%llu,",
             (unsigned long long)queued, (unsigned long long)running,
             (unsigned long long)s->items_submitted, (unsigned long long)s->items_done);
        rawf(j, "\"failed\":%llu,\"lost\":%llu,\"retries\":%llu,\"dispatches\":%llu,",
             (unsigned long long)s->items_failed, (unsigned long long)s->items_lost,
             (unsigned long long)s->retries, (unsigned long long)s->latency_count);
        rawf(j, "\"mean_ms\":%.3f}",
             s->latency_count ? s->latency_sum * 1000.0 / (double)s->latency_count : 0.0);
    }
    raw(j, "]", 1);
}

static void errors(jout_t *j, mp_broker_t *b)
{
    raw(j, "[", 1);
    const struct bk_recent *r = b->recent;
    for (size_t i = 0; r && i < r->n; i++) { /* newest first */
        const recent_t *e = &r->e[(r->next + RECENT - 1 - i) % RECENT];
        raw(j, i ? ",{" : "{", i ? 2 : 1);
        rawf(j, "\"time_ms\":%llu,\"code\":%d,\"kind\":%d,\"pid\":%u,\"index\":%llu",
             (unsigned long long)e->time_ms, e->code, e->kind, e->pid,
             (unsigned long long)e->index);
        key(j, "task", false);
        str(j, e->task);
        key(j, "message", false);
        str(j, e->message);
        key(j, "host", false);
        str(j, e->host);
        raw(j, "}", 1);
    }
    raw(j, "]", 1);
}

int bk_status_json(mp_broker_t *b, mp__buf_t *out)
{
    jout_t j = {.out = out};
    uint64_t now = mp__now_ns();
    size_t clients = 0, executors = 0;
    for (size_t i = 0; i < b->npeers; i++) {
        if (b->peers[i]->kind == PEER_CLIENT)
            clients++;
        else
            executors += b->peers[i]->processes;
    }
    /* in parts: each fits rawf's line whatever the counters hold */
    rawf(&j, "{\"version\":\"%s\",\"uptime_ms\":%llu,\"clients\":%zu,\"executors\":%zu,",
         MP_BROKER_VERSION, (unsigned long long)((now - b->started_ns) / 1000000u), clients,
         executors);
    rawf(&j, "\"done\":%llu,\"failed\":%llu,\"lost\":%llu,\"retries\":%llu,",
         (unsigned long long)b->done, (unsigned long long)b->failed, (unsigned long long)b->lost,
         (unsigned long long)b->retries);
    rawf(&j, "\"workers_lost\":%llu,\"received_bytes\":%llu,\"sent_bytes\":%llu,\"workers\":",
         (unsigned long long)b->workers_lost, (unsigned long long)b->bytes_in,
         (unsigned long long)b->bytes_out);
    workers(&j, b, now);
    raw(&j, ",\"tasks\":", 9);
    tasks(&j, b);
    raw(&j, ",\"errors\":", 10);
    errors(&j, b);
    raw(&j, "}\n", 2);
    return j.rc ? MP_ENOMEM : 0;
}
