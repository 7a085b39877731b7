/*  cli_ops.c - mp-client's operator commands (docs/CLUSTER.md 4).

    top: the cluster at a glance, redrawn every interval (as htop is for
    one machine): totals and rates, a line per worker (executors,
    dispatches running, items done and failed, draining), the queues. Rates
    are the change of the broker's counters between two snapshots. From
    STATUS only (docs/PROTOCOL.md 4.3).

    drain: DRAIN a worker, then wait until the broker no longer lists it.
*/
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_format.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* s for a terminal: a peer's control characters (an escape sequence in a
   host or task name) shown as '?' */
static const char *clean(const char *s, char *buf, size_t size)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

/* worker id's "done" in prev, or UINT64_MAX when it was not there */
static uint64_t prev_done(const mp_obj_t *prev, uint64_t id)
{
    const mp_obj_t *w = prev ? worker_by_id(prev, id) : NULL;
    return w ? field_uint(w, "done") : UINT64_MAX;
}

static void draw(const char *broker, const mp_obj_t *st, const mp_obj_t *prev, double secs)
{
    uint64_t up = field_uint(st, "uptime_ms") / 1000, done = field_uint(st, "done");
    uint64_t before = prev ? field_uint(prev, "done") : done;
    double rate =
        secs > 0 && done >= before ? (double)(done - before) / secs : 0; /* a restart: 0 */
    const mp_obj_t *workers = mp_obj_map_get(st, "workers");
    size_t nw = array_len(workers);
    uint64_t procs = 0, running = 0;
    char host[64], name[256];
    for (size_t i = 0; i < nw; i++) {
        procs += field_uint(mp_obj_array_at(workers, i), "processes");
        running += array_len(mp_obj_map_get(mp_obj_array_at(workers, i), "running"));
    }
    printf("mp-client top: broker %s, version %s, up %lluh%02llum%02llus, %llu client%s\n", broker,
           field_str(st, "version"), (unsigned long long)(up / 3600),
           (unsigned long long)(up / 60 % 60), (unsigned long long)(up % 60),
           (unsigned long long)field_uint(st, "clients"), plural(field_uint(st, "clients")));
    printf("items: %llu done (%.0f/s), %llu failed, %llu lost; workers %zu, executors %llu, "
           "dispatches running %llu\n\n",
           (unsigned long long)done, rate, (unsigned long long)field_uint(st, "failed"),
           (unsigned long long)field_uint(st, "lost"), nw, (unsigned long long)procs,
           (unsigned long long)running);
    printf("%6s %-20s %8s %5s %8s %10s %8s %8s  %s\n", "ID", "HOST", "PID", "EXEC", "RUNNING",
           "DONE", "ITEMS/S", "FAILED", "STATE");
    for (size_t i = 0; i < nw; i++) {
        const mp_obj_t *w = mp_obj_array_at(workers, i);
        uint64_t id = field_uint(w, "id"), wdone = field_uint(w, "done"), was = prev_done(prev, id);
        size_t nrun = array_len(mp_obj_map_get(w, "running"));
        const mp_obj_t *draining = mp_obj_map_get(w, "draining");
        bool drain = draining && mp_obj_type(draining) == MP_OBJ_BOOL && mp_obj_bool(draining);
        double wrate =
            was != UINT64_MAX && secs > 0 && wdone >= was ? (double)(wdone - was) / secs : 0;
        printf("%6llu %-20.20s %8llu %5llu %8zu %10llu %8.0f %8llu  %s\n", (unsigned long long)id,
               clean(field_str(w, "host"), host, sizeof host),
               (unsigned long long)field_uint(w, "pid"),
               (unsigned long long)field_uint(w, "processes"), nrun, (unsigned long long)wdone,
               wrate, (unsigned long long)field_uint(w, "failed"),
               drain  ? "draining"
               : nrun ? "busy"
                      : "idle");
    }
    const mp_obj_t *queued = mp_obj_map_get(st, "queued");
    size_t nq = mp_obj_type(queued) == MP_OBJ_MAP ? mp_obj_len(queued) : 0;
    printf("\nqueued:%s", nq ? "" : " none");
    for (size_t i = 0; i < nq; i++) {
        const mp_obj_t *k = mp_obj_map_key_at(queued, i), *v = mp_obj_map_value_at(queued, i);
        printf("%s %s %llu chunk%s", i ? "," : "",
               mp_obj_type(k) == MP_OBJ_STR ? clean(mp_obj_str(k, NULL), name, sizeof name) : "?",
               (unsigned long long)mp_obj_uint(v), plural(mp_obj_uint(v)));
    }
    printf("\n");
}

int cli_top(mp_pool_t *pool, const char *broker, int interval_ms, long iterations)
{
    bool tty = isatty(STDOUT_FILENO) == 1;
    mp_obj_t *prev = NULL;
    uint64_t prev_ns = 0;
    int rc = 0;
    for (long n = 0; iterations == 0 || n < iterations; n++) {
        if (n)
            usleep((useconds_t)interval_ms * 1000);
        mp_obj_t *st = NULL;
        if ((rc = mp_pool_status(pool, 10000, &st)) != 0 || mp_obj_type(st) != MP_OBJ_MAP) {
            say(NULL, "top: no status from the broker at %s: %s", broker,
                rc ? mp_strerror(rc) : "not a map");
            mp_obj_destroy(&st);
            mp_obj_destroy(&prev);
            return 1;
        }
        uint64_t t = now_ns();
        if (tty)
            fputs("\033[H\033[2J", stdout); /* home, clear */
        else if (n)
            putchar('\n');
        draw(broker, st, prev, prev ? (double)(t - prev_ns) / 1e9 : 0);
        if (fflush(stdout) != 0)
            break; /* the reader went away */
        mp_obj_destroy(&prev);
        prev = st;
        prev_ns = t;
    }
    mp_obj_destroy(&prev);
    return 0;
}

/* drain: asks, then waits (--timeout, default 60 s) until the worker is gone. */
int cli_drain(mp_pool_t *pool, const char *broker, uint64_t id, int wait_ms)
{
    mp_obj_t *st = NULL;
    int rc = mp_pool_drain_worker(pool, id, 10000, &st);
    if (rc) {
        say(NULL, "drain: no answer from the broker at %s: %s", broker, mp_strerror(rc));
        return 1;
    }
    const mp_obj_t *w = worker_by_id(st, id);
    const mp_obj_t *draining = w ? mp_obj_map_get(w, "draining") : NULL;
    if (w && draining && mp_obj_type(draining) == MP_OBJ_BOOL && !mp_obj_bool(draining)) {
        say(NULL,
            "drain: the broker at %s refused (with CURVE, the key must be in operators/ of "
            "its allow-list)",
            broker);
        mp_obj_destroy(&st);
        return 1;
    }
    const mp_obj_t *host = w ? mp_obj_map_get(w, "host") : NULL;
    if (w)
        say(NULL, "draining worker %llu (%s pid %lld): %zu dispatch(es) to finish",
            (unsigned long long)id, host ? mp_obj_str(host, NULL) : "?",
            (long long)mp_obj_int(mp_obj_map_get(w, "pid")),
            mp_obj_len(mp_obj_map_get(w, "running")));
    mp_obj_destroy(&st);
    for (int waited = 0; w && waited < wait_ms; waited += 100) {
        usleep(100 * 1000);
        if (mp_pool_status(pool, 10000, &st) == 0) {
            bool gone = !worker_by_id(st, id);
            mp_obj_destroy(&st);
            if (gone) {
                say(NULL, "worker %llu drained and stopped", (unsigned long long)id);
                return 0;
            }
        }
    }
    if (!w)
        say(NULL, "drain: no worker %llu at %s (mp-client status lists their ids)",
            (unsigned long long)id, broker);
    else
        say(NULL, "drain: worker %llu still busy after %d ms (it goes once its work is done)",
            (unsigned long long)id, wait_ms);
    return 1;
}
