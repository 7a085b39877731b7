/*  metrics.c - what the broker counts, and its OpenMetrics / Prometheus
    text (docs/CLUSTER.md, "Metrics").

    The counters are plain increments where the events happen (the broker
    thread owns them all: no lock, no atomics); per task name they live in
    the name's queue, which lives as long as the broker. The gauges (queued,
    running, workers by state) are computed when the text is rendered, by
    walking the queues and the workers: rendering costs O(units), paid only
    when someone scrapes. Rendering runs on the broker thread (http.c asks
    it through an inproc pair), so one scrape is one consistent snapshot.

    Reads the peers' and units' state (no calls); called by workers.c (the
    latency of a dispatch) and http.c (the text).
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker_impl.h"
#include "mp/error.h"

/* Upper bounds of the latency buckets, in seconds (le="..."); +Inf last. */
static const double bounds[BK_LATENCY_BUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                  0.25,  0.5,   1,    2.5,   10,   60};

void bk_observe_latency(queue_t *q, uint64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < BK_LATENCY_BUCKETS && s > bounds[i])
        i++;
    q->stats.latency[i]++; /* cumulated when rendered */
    q->stats.latency_count++;
    q->stats.latency_sum += s;
}

/* ---- the text ------------------------------------------------------------------------ */

typedef struct {
    mp__buf_t *out;
    bool om; /* OpenMetrics: a counter's family is named without _total */
    int rc;
} text_t;

static void put(text_t *t, const char *s, size_t n)
{
    if (!t->rc)
        t->rc = mp__buf_append(t->out, s, n);
}

static void putf(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(text_t *t, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    put(t, line, n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* # HELP and # TYPE of a family (name: without _total). */
static void family(text_t *t, const char *name, const char *type, const char *help)
{
    bool counter = strcmp(type, "counter") == 0;
    putf(t, "# HELP %s%s %s\n", name, counter && !t->om ? "_total" : "", help);
    putf(t, "# TYPE %s%s %s\n", name, counter && !t->om ? "_total" : "", type);
}

/* Bytes of the valid UTF-8 sequence at p (1-4), or 0 when there is none. */
static size_t utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = p[0] >= 0xc2 && p[0] <= 0xdf   ? 2
               : p[0] >= 0xe0 && p[0] <= 0xef ? 3
               : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
        return 0; /* overlong, a surrogate, past U+10FFFF */
    return n;
}

/* A label value: backslash, double quote and newline escaped; a byte that
   is not UTF-8 (a task name is a peer's bytes) becomes U+FFFD, so one odd
   name cannot make the whole text unreadable to Prometheus. */
static void label_value(text_t *t, const char *v)
{
    const unsigned char *p = (const unsigned char *)v;
    while (*p) {
        size_t n = utf8_len(p);
        if (*p == '\\' || *p == '"')
            put(t, "\\", 1);
        if (*p == '\n')
            put(t, "\\n", 2);
        else if (n)
            put(t, (const char *)p, n);
        else
            put(t, "\xef\xbf\xbd", 3);
        p += n ? n : 1;
    }
}

static void task_sample(text_t *t, const char *name, const char *task, uint64_t v)
{
    putf(t, "%s{task=\"", name);
    label_value(t, task);
    putf(t, "\"} %llu\n", (unsigned long long)v);
}

/* One per-task family: a value of each queue's stats or state. */
typedef uint64_t (*task_value_fn)(mp_broker_t *b, const queue_t *q);

static uint64_t v_chunks_submitted(mp_broker_t *b, const queue_t *q)
{
    (void)b;
    return q->stats.chunks_submitted;
}
static uint64_t v_items_submitted(mp_broker_t *b, const queue_t *q)
{
    (void)b;
    return q->stats.items_submitted;
}
static uint64_t v_chunks_done(mp_broker_t *b, const queue_t *q)
{
    (void)b;
    return q->stats.chunks_done;
}
static uint64_t v_items_done(mp_broker_t *b, const queue_t *q)
{
    (void)b;
    return q->stats.items_done;
}
static uint64_t v_items_failed(mp_broker_t *b, const queue_t *q)
{
    (void)b;
    return q->stats.items_failed;
}
static uint64_t v_items_lost(mp_broker_t *b, const queue_t *q)
{
    (void)b;
    return q->stats.items_lost;
}
static uint64_t v_retries(mp_broker_t *b, const queue_t *q)
{
    (void)b;
    return q->stats.retries;
}
static uint64_t v_chunks_queued(mp_broker_t *b, const queue_t *q)
{
    (void)b;
    return q->depth;
}
uint64_t bk_task_queued(const queue_t *q)
{
    uint64_t n = 0;
    for (const unit_t *u = q->head; u; u = u->next)
        n += bk_unit_left(u);
    return n;
}

uint64_t bk_task_running(const mp_broker_t *b, const queue_t *q)
{
    uint64_t n = 0;
    for (size_t i = 0; i < b->npeers; i++)
        for (const unit_t *u = b->peers[i]->running; u; u = u->next)
            if (u->chunk->queue == q && !u->cancelled)
                n += bk_unit_left(u);
    return n;
}

static uint64_t v_items_queued(mp_broker_t *b, const queue_t *q)
{
    (void)b;
    return bk_task_queued(q);
}
static uint64_t v_items_running(mp_broker_t *b, const queue_t *q)
{
    return bk_task_running(b, q);
}

/* The per-task series: each queue's, then the counters of the names
   whose queue went to another (units.c), when there are any. */
static const queue_t *next_queue(const mp_broker_t *b, const queue_t *q)
{
    if (q && q != &b->retired && q->next)
        return q->next;
    return q != &b->retired && b->retired.stats.chunks_submitted ? &b->retired : NULL;
}

static const queue_t *first_queue(const mp_broker_t *b)
{
    return b->queues ? b->queues : next_queue(b, NULL);
}

static void per_task(text_t *t, mp_broker_t *b, const char *name, const char *type,
                     const char *help, task_value_fn fn)
{
    family(t, name, type, help);
    char sample[128];
    snprintf(sample, sizeof sample, "%s%s", name, strcmp(type, "counter") ? "" : "_total");
    for (const queue_t *q = first_queue(b); q; q = next_queue(b, q))
        task_sample(t, sample, q->name, fn(b, q));
}

static void latency(text_t *t, mp_broker_t *b)
{
    family(t, "mp_broker_task_seconds", "histogram",
           "Seconds from a dispatch to its worker until its RESULT, per task name.");
    for (const queue_t *q = first_queue(b); q; q = next_queue(b, q)) {
        uint64_t cum = 0;
        for (size_t i = 0; i <= BK_LATENCY_BUCKETS; i++) {
            cum += q->stats.latency[i];
            putf(t, "mp_broker_task_seconds_bucket{task=\"");
            label_value(t, q->name);
            if (i < BK_LATENCY_BUCKETS)
                putf(t, "\",le=\"%g\"} %llu\n", bounds[i], (unsigned long long)cum);
            else
                putf(t, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        putf(t, "mp_broker_task_seconds_sum{task=\"");
        label_value(t, q->name);
        putf(t, "\"} %.6f\n", q->stats.latency_sum);
        task_sample(t, "mp_broker_task_seconds_count", q->name, q->stats.latency_count);
    }
}

static void global(text_t *t, const char *name, const char *type, const char *help, uint64_t v)
{
    family(t, name, type, help);
    putf(t, "%s%s %llu\n", name, strcmp(type, "counter") ? "" : "_total", (unsigned long long)v);
}

int bk_metrics_render(mp_broker_t *b, bool openmetrics, mp__buf_t *out)
{
    text_t t = {.out = out, .om = openmetrics};
    size_t clients = 0, idle = 0, busy = 0, executors = 0, running = 0;
    for (size_t i = 0; i < b->npeers; i++) {
        const peer_t *p = b->peers[i];
        if (p->kind == PEER_CLIENT) {
            clients++;
            continue;
        }
        executors += p->processes;
        running += p->nrunning;
        if (p->nrunning)
            busy++;
        else
            idle++;
    }
    family(&t, "mp_broker_info", "gauge", "The broker's version.");
    putf(&t, "mp_broker_info{version=\"%s\"} 1\n", MP_BROKER_VERSION);
    family(&t, "mp_broker_uptime_seconds", "gauge", "Seconds since the broker started.");
    putf(&t, "mp_broker_uptime_seconds %.3f\n", (double)(mp__now_ns() - b->started_ns) / 1e9);
    family(&t, "mp_broker_workers", "gauge",
           "Workers connected, by state: busy (running a dispatch) or idle.");
    putf(&t, "mp_broker_workers{state=\"idle\"} %zu\n", idle);
    putf(&t, "mp_broker_workers{state=\"busy\"} %zu\n", busy);
    global(&t, "mp_broker_executors", "gauge", "Executors of the workers connected.", executors);
    global(&t, "mp_broker_dispatches_running", "gauge", "Dispatches running on workers.", running);
    global(&t, "mp_broker_clients", "gauge", "Clients connected (sessions).", clients);
    per_task(&t, b, "mp_broker_chunks_submitted", "counter", "Chunks submitted, per task name.",
             v_chunks_submitted);
    per_task(&t, b, "mp_broker_items_submitted", "counter", "Items submitted, per task name.",
             v_items_submitted);
    per_task(&t, b, "mp_broker_chunks_done", "counter",
             "Chunks whose every item was answered, per task name.", v_chunks_done);
    per_task(&t, b, "mp_broker_items_done", "counter", "Items that succeeded, per task name.",
             v_items_done);
    per_task(&t, b, "mp_broker_items_failed", "counter",
             "Items that failed (the task's error, a time limit, cancelled), per task name.",
             v_items_failed);
    per_task(&t, b, "mp_broker_items_lost", "counter",
             "Items that ended as WORKER_LOST after their retries, per task name.", v_items_lost);
    per_task(&t, b, "mp_broker_retries", "counter",
             "Dispatches queued again after their worker or executor was lost, per task name.",
             v_retries);
    per_task(&t, b, "mp_broker_chunks_queued", "gauge",
             "Units (chunks or their parts) waiting for a worker, per task name.", v_chunks_queued);
    per_task(&t, b, "mp_broker_items_queued", "gauge", "Items waiting for a worker, per task name.",
             v_items_queued);
    per_task(&t, b, "mp_broker_items_running", "gauge", "Items running on workers, per task name.",
             v_items_running);
    latency(&t, b);
    global(&t, "mp_broker_received_bytes", "counter", "Bytes of the messages received.",
           b->bytes_in);
    global(&t, "mp_broker_sent_bytes", "counter", "Bytes of the messages sent.", b->bytes_out);
    global(&t, "mp_broker_workers_lost", "counter",
           "Workers lost (silent, or their messages undeliverable).", b->workers_lost);
    global(&t, "mp_broker_workers_joined", "counter", "Workers that registered.", b->workers_seen);
    global(&t, "mp_broker_clients_joined", "counter", "Client sessions opened.", b->clients_seen);
    global(&t, "mp_broker_returned_dispatches", "counter",
           "Dispatches handed back by busy workers (no hoarding).", b->returned);
    global(&t, "mp_broker_malformed_messages", "counter", "Malformed messages dropped.",
           b->malformed);
    global(&t, "mp_broker_refused_peers", "counter",
           "Peers refused (a key not admitted for their role, or too many from one source).",
           b->refused);
    if (b->jstore) { /* --journal: durable jobs (docs/JOURNAL.md) */
        const bk_jstore_t *js = b->jstore;
        global(&t, "mp_broker_journal_jobs", "gauge", "Durable jobs in the journal.", js->njobs);
        global(&t, "mp_broker_journal_bytes", "gauge", "Size of the journal file.", js->size);
        global(&t, "mp_broker_journal_live_bytes", "gauge",
               "Bytes of the journal's records of jobs not forgotten.", js->live_bytes);
        global(&t, "mp_broker_journal_syncs", "counter",
               "fdatasync calls on the journal (one per loop pass with writes).", js->syncs);
        global(&t, "mp_broker_journal_compactions", "counter",
               "Rewrites of the journal without its forgotten records.", js->compactions);
    }
    if (openmetrics)
        put(&t, "# EOF\n", 6);
    return t.rc ? MP_ENOMEM : 0;
}
