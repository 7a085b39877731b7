/*  bench_primitives.c - libmp's local primitives against raw limits.

    Prints one line per figure: "name <TAB> unit <TAB> value". bench/run pairs
    these with the Python figures of bench_primitives.py. Each workload runs
    several times; the median is printed. Not a test: it measures.
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "mp.h"

#define RUNS 5

static void emit(const char *name, const char *unit, double value)
{
    printf("%s\t%s\t%.3f\n", name, unit, value);
    fflush(stdout);
}

/* ---- locks ----------------------------------------------------------------- */

static double lock_ns(long n)
{
    mp_lock_t *lock = mp_lock_new();
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        mp_lock_acquire(lock, -1);
        mp_lock_release(lock);
    }
    double ns = (now_s() - t0) / n * 1e9;
    mp_lock_destroy(&lock);
    return ns;
}

static double raw_mutex_ns(long n, int robust)
{
    static pthread_mutex_t *shared;
    if (!shared) {
        mp_array_t *page = mp_array_new('B', 4096, NULL, &(mp_ctype_opts_t){.raw = true});
        shared = mp_array_ptr(page);
    }
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (robust)
        pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(shared, &attr);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(shared);
        pthread_mutex_unlock(shared);
    }
    return (now_s() - t0) / n * 1e9;
}

static double value_incr_ns(long n)
{
    mp_value_t *v = mp_value_new('l', NULL, NULL);
    mp_lock_t *lock = mp_value_get_lock(v);
    long *x = mp_value_ptr(v);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        mp_lock_acquire(lock, -1);
        *x += 1;
        mp_lock_release(lock);
    }
    double ns = (now_s() - t0) / n * 1e9;
    if (*x != n)
        fprintf(stderr, "value_increment_locked: wrong count\n");
    mp_value_destroy(&v);
    return ns;
}

/* ---- queue ----------------------------------------------------------------- */

#define QUEUE_ITEMS 1000000L

static int queue_consumer(void *arg)
{
    mp_queue_t *q = arg;
    for (long i = 0; i < QUEUE_ITEMS; i++) {
        mp_obj_t *o = NULL;
        if (mp_queue_get(q, &o, -1) || mp_obj_int(o) != i)
            return 1;
        mp_obj_destroy(&o);
    }
    return 0;
}

static double queue_items_per_s(void)
{
    mp_queue_t *q = mp_queue_new(NULL);
    mp_process_t *p = mp_process_new(queue_consumer, q, NULL);
    mp_process_start(p);
    double t0 = now_s();
    for (long i = 0; i < QUEUE_ITEMS; i++) {
        mp_obj_t *o = mp_obj_new_int(i);
        mp_queue_put(q, o, -1);
        mp_obj_destroy(&o);
    }
    mp_process_join(p, -1);
    double rate = QUEUE_ITEMS / (now_s() - t0);
    int code = -1;
    mp_process_exitcode(p, &code);
    if (code != 0)
        fprintf(stderr, "queue_put_get_2proc: consumer failed\n");
    mp_process_destroy(&p);
    mp_queue_destroy(&q);
    return rate;
}

/* ---- pipe ------------------------------------------------------------------ */

#define ROUND_TRIPS 20000

static mp_conn_t *pipe_parent_end;

static int pipe_echo(void *arg)
{
    mp_conn_t *c = arg;
    mp_conn_close(pipe_parent_end); /* or our copy would hide the EOF */
    for (;;) {
        mp_obj_t *o = NULL;
        if (mp_conn_recv(c, &o))
            return 0;
        mp_conn_send(c, o);
        mp_obj_destroy(&o);
    }
}

static double pipe_rtt_us(void)
{
    mp_conn_t *a, *b;
    mp_pipe(&a, &b, true);
    pipe_parent_end = a;
    mp_process_t *p = mp_process_new(pipe_echo, b, NULL);
    mp_process_start(p);
    mp_conn_close(b);
    mp_obj_t *o = mp_obj_new_int(12345);
    double t0 = now_s();
    for (int i = 0; i < ROUND_TRIPS; i++) {
        mp_obj_t *back = NULL;
        mp_conn_send(a, o);
        mp_conn_recv(a, &back);
        mp_obj_destroy(&back);
    }
    double us = (now_s() - t0) / ROUND_TRIPS * 1e6;
    mp_obj_destroy(&o);
    mp_conn_close(a);
    mp_process_join(p, -1);
    mp_process_destroy(&p);
    mp_conn_destroy(&a);
    mp_conn_destroy(&b);
    return us;
}

static double socketpair_rtt_us(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t pid = fork();
    char buf[16];
    if (pid == 0) {
        close(sv[0]);
        while (read(sv[1], buf, 8) == 8)
            if (write(sv[1], buf, 8) != 8)
                break;
        _exit(0);
    }
    close(sv[1]);
    memset(buf, 1, sizeof buf);
    double t0 = now_s();
    for (int i = 0; i < ROUND_TRIPS; i++) {
        if (write(sv[0], buf, 8) != 8 || read(sv[0], buf, 8) != 8)
            break;
    }
    double us = (now_s() - t0) / ROUND_TRIPS * 1e6;
    close(sv[0]);
    waitpid(pid, NULL, 0);
    return us;
}

static double lock_bench(void)
{
    return lock_ns(5000000);
}

static double raw_mutex_bench(void)
{
    return raw_mutex_ns(5000000, 0);
}

static double raw_robust_mutex_bench(void)
{
    return raw_mutex_ns(5000000, 1);
}

static double value_incr_bench(void)
{
    return value_incr_ns(5000000);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    /* an optional argument selects the workloads whose name contains it */
    const char *only = argc > 1 ? argv[1] : "";
    static const struct {
        const char *name, *unit;
        double (*fn)(void);
    } workloads[] = {
        {"lock_acquire_release", "ns", lock_bench},
        {"raw_pshared_mutex", "ns", raw_mutex_bench},
        {"raw_pshared_robust_mutex", "ns", raw_robust_mutex_bench},
        {"value_increment_locked", "ns", value_incr_bench},
        {"queue_put_get_2proc", "items/s", queue_items_per_s},
        {"pipe_round_trip", "us", pipe_rtt_us},
        {"raw_socketpair_round_trip", "us", socketpair_rtt_us},
    };
    for (size_t w = 0; w < sizeof workloads / sizeof *workloads; w++) {
        if (!strstr(workloads[w].name, only))
            continue;
        double v[RUNS];
        for (int r = 0; r < RUNS; r++)
            v[r] = workloads[w].fn();
        if (getenv("MP_BENCH_VERBOSE"))
            for (int r = 0; r < RUNS; r++)
                fprintf(stderr, "%s run %d: %.3f\n", workloads[w].name, r, v[r]);
        emit(workloads[w].name, workloads[w].unit, median(v, RUNS));
    }
    return 0;
}
