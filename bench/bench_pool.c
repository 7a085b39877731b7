/*  bench_pool.c - libmp's Pool against Python's multiprocessing.Pool.

    Prints one line per figure: "name <TAB> unit <TAB> value". bench/run pairs
    these with the Python figures of bench_pool.py. Each workload runs
    several times on one pool after one untimed warm-up run (the pool's
    start-up is not counted; pool_startup measures it alone); the median is
    printed. pool_lifecycle is a short program's whole life, 200 times: new,
    a map of 1,000 ints, destroy (median; pool_lifecycle_max the slowest).
    Not a test: it measures.

        bench_pool [--runs N] [--broker ENDPOINT] [--skip SUBSTRING] [FILTER]

    Without --broker: an embedded pool of 2 executors. With it: the same
    calls through that broker (its workers must serve this file's tasks:
    mp-worker --tasks libbench_tasks.so, which is this file built with
    BENCH_POOL_TASKS_ONLY); the names then end in "_tcp". FILTER selects
    the workloads whose name contains it, --skip leaves out those whose
    name contains SUBSTRING.

    imap_1e8_lazy reports the peak RSS of this process (getrusage
    ru_maxrss), which contains the embedded broker and the pool's I/O
    thread. The peak never goes down, so that workload runs first, before
    anything has allocated the 10^6-item lists of the maps. It runs once
    and also prints its rate (imap_1e8_lazy_rate). MP_BENCH_IMAP_ITEMS=N
    runs it over N items instead (the names then say N).
*/
#include <stdint.h>

#include "bench_util.h"
#include "mp.h"

/* map: x -> x*x */
MP_TASK(square)
{
    int64_t x = mp_task_int(task, 0);
    return mp_task_return_int(task, x * x);
}

/* starmap: (a, b) -> a+b */
MP_TASK(add)
{
    return mp_task_return_int(task, mp_task_int(task, 0) + mp_task_int(task, 1));
}

#ifndef BENCH_POOL_TASKS_ONLY

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define RUNS 5
#define MAP_ITEMS 1000000L
#define APPLY_ASYNC_CALLS 100000L
#define APPLY_SYNC_CALLS 10000L
#define IMAP_UNORDERED_ITEMS 100000L
#define IMAP_LAZY_ITEMS 100000000LL
#define IMAP_LAZY_CHUNKSIZE 10000
#define STARTUP_RUNS 9
#define LIFECYCLE_CYCLES 200
#define LIFECYCLE_ITEMS 1000

static mp_pool_t *pool;
static const char *broker; /* NULL: embedded */
static int failures;
static double imap_lazy_rate;   /* items/s of the imap_1e8_lazy run */
static char imap_lazy_name[32]; /* imap_1e8_lazy, or the trial size's name */
static double lifecycle_max;    /* ms, the slowest pool_lifecycle cycle */

static void emit(const char *name, const char *unit, double value)
{
    /* through a broker: _tcp, and _tcp_curve when the pool speaks CURVE
       (MP_CURVE_KEY set: the pool reads its keys from the environment);
       MP_BENCH_SUFFIX says otherwise (_mpp_tcp: the workers on mpp+tcp://) */
    const char *curve = getenv("MP_CURVE_KEY"), *suffix = getenv("MP_BENCH_SUFFIX");
    printf("%s%s\t%s\t%.3f\n", name,
           !broker           ? ""
           : suffix          ? suffix
           : curve && *curve ? "_tcp_curve"
                             : "_tcp",
           unit, value);
    fflush(stdout);
}

/* A wrong result makes the figure meaningless: say so, exit non-zero at the end. */
static void fail(const char *what, int rc)
{
    fprintf(stderr, "bench_pool: %s: %s\n", what, rc ? mp_strerror(rc) : "wrong result");
    failures++;
}

static int pool_open(mp_pool_t **p)
{
    mp_pool_options_t o = {.broker = broker, .processes = 2};
    int rc = mp_pool_new(&o, p);
    if (rc)
        return rc;
    if (broker) /* a cluster pool is ready when its broker answers: wait for both workers */
        for (int i = 0; i < 1000 && mp_pool_processes(*p) < 2; i++)
            usleep(10000);
    return 0;
}

/* ---- map / starmap -------------------------------------------------------------- */

/* Builds the input, maps, reads every result back: what Python's
   pool.map(square, range(10**6)) does, input list and result list included. */
/* Builds the input, maps with the automatic chunk size, reads every result
   back: what Python's pool.map(square, range(n)) does. */
static double map_n_ints_per_s(long n, const char *name)
{
    int64_t *buf = malloc((size_t)n * sizeof *buf);
    if (!buf) {
        fail(name, MP_ENOMEM);
        return 0;
    }
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        buf[i] = i;
    mp_items_t *in = mp_items_new(), *out = NULL;
    mp_items_add_ints(in, buf, (size_t)n);
    int rc = mp_pool_map(pool, "square", in, 0, &out);
    mp_items_destroy(&in);
    if (!rc && mp_items_len(out) == (size_t)n)
        rc = mp_items_ints(out, buf);
    double rate = n / (now_s() - t0);
    if (rc || mp_items_len(out) != (size_t)n || buf[n - 1] != (n - 1) * (n - 1))
        fail(name, rc);
    mp_items_destroy(&out);
    free(buf);
    return rate;
}

static double map_ints_per_s(void)
{
    return map_n_ints_per_s(MAP_ITEMS, "map_1e6_ints");
}

/* 10^7: an automatic chunk size above the broker's 2^20 items per chunk */
static double map_1e7_ints_per_s(void)
{
    return map_n_ints_per_s(10 * MAP_ITEMS, "map_1e7_ints");
}

/* Builds the pairs, starmaps, reads every result back: what Python's
   pool.starmap(add, [(i, i) for i in range(10**6)]) does. */
static double starmap_pairs_per_s(void)
{
    static int64_t pairs[2 * MAP_ITEMS], buf[MAP_ITEMS];
    double t0 = now_s();
    for (long i = 0; i < MAP_ITEMS; i++)
        pairs[2 * i] = pairs[2 * i + 1] = i;
    mp_items_t *in = mp_items_new(), *out = NULL;
    mp_items_add_int_tuples(in, pairs, MAP_ITEMS, 2);
    int rc = mp_pool_starmap(pool, "add", in, 0, &out);
    mp_items_destroy(&in);
    if (!rc && mp_items_len(out) == MAP_ITEMS)
        rc = mp_items_ints(out, buf);
    double rate = MAP_ITEMS / (now_s() - t0);
    if (rc || mp_items_len(out) != MAP_ITEMS || buf[MAP_ITEMS - 1] != 2 * (MAP_ITEMS - 1))
        fail("starmap_1e6_pairs", rc);
    mp_items_destroy(&out);
    return rate;
}

/* ---- apply ------------------------------------------------------------------------ */

static double apply_async_per_s(void)
{
    static mp_async_t *res[APPLY_ASYNC_CALLS];
    int rc = 0;
    double t0 = now_s();
    for (long i = 0; i < APPLY_ASYNC_CALLS && !rc; i++) {
        mp_obj_t *args = mp_obj_new_array();
        mp_obj_array_add(args, mp_obj_new_int(i));
        rc = mp_pool_apply_async(pool, "square", args, NULL, &res[i]);
        mp_obj_destroy(&args);
    }
    int64_t sum = 0;
    for (long i = 0; i < APPLY_ASYNC_CALLS && !rc; i++) {
        mp_obj_t *v = NULL;
        rc = mp_async_get_obj(res[i], -1, &v);
        if (!rc)
            sum += mp_obj_int(v) == (int64_t)i * i;
        mp_obj_destroy(&v);
    }
    double rate = APPLY_ASYNC_CALLS / (now_s() - t0);
    for (long i = 0; i < APPLY_ASYNC_CALLS; i++)
        mp_async_destroy(&res[i]);
    if (rc || sum != APPLY_ASYNC_CALLS)
        fail("apply_async_1e5", rc);
    return rate;
}

static double apply_sync_us(void)
{
    int rc = 0, good = 0;
    double t0 = now_s();
    for (long i = 0; i < APPLY_SYNC_CALLS && !rc; i++) {
        mp_obj_t *args = mp_obj_new_array(), *v = NULL;
        mp_obj_array_add(args, mp_obj_new_int(i));
        rc = mp_pool_apply(pool, "square", args, &v);
        good += !rc && mp_obj_int(v) == (int64_t)i * i;
        mp_obj_destroy(&v);
        mp_obj_destroy(&args);
    }
    double us = (now_s() - t0) / APPLY_SYNC_CALLS * 1e6;
    if (rc || good != APPLY_SYNC_CALLS)
        fail("apply_sync_1e4", rc);
    return us;
}

/* ---- imap --------------------------------------------------------------------------- */

typedef struct {
    int64_t next, end;
} counter_t;

static int counter_gen(void *arg, mp_items_t *out)
{
    counter_t *c = arg;
    if (c->next >= c->end)
        return MP_EEOF;
    return mp_items_add_int(out, c->next++);
}

static double imap_unordered_per_s(void)
{
    counter_t gen = {0, IMAP_UNORDERED_ITEMS};
    mp_imap_t *it = NULL;
    int64_t v, sum = 0, n = 0;
    double t0 = now_s();
    int rc = mp_pool_imap_unordered(pool, "square", counter_gen, &gen, 1, &it);
    while (!rc && (rc = mp_imap_next_int(it, -1, &v)) == 0) {
        sum += v;
        n++;
    }
    double rate = IMAP_UNORDERED_ITEMS / (now_s() - t0);
    mp_imap_destroy(&it);
    int64_t N = IMAP_UNORDERED_ITEMS;
    if (rc != MP_EEOF || n != N || sum != (N - 1) * N * (2 * N - 1) / 6)
        fail("imap_unordered_1e5_chunksize1", rc == MP_EEOF ? 0 : rc);
    return rate;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

/* One run (it is long, and a peak): RSS, and the time on stderr. */
static double imap_lazy_rss_mib(void)
{
    int64_t items = IMAP_LAZY_ITEMS;
    const char *env = getenv("MP_BENCH_IMAP_ITEMS"); /* a shorter trial run */
    if (env && atoll(env) > 0)
        items = atoll(env);
    counter_t gen = {0, items};
    mp_imap_t *it = NULL;
    int64_t v, expect = 0;
    double before = peak_rss_mib(), t0 = now_s();
    int rc = mp_pool_imap(pool, "square", counter_gen, &gen, IMAP_LAZY_CHUNKSIZE, &it);
    while (!rc && (rc = mp_imap_next_int(it, -1, &v)) == 0) {
        if (v != expect * expect)
            break;
        expect++;
    }
    double s = now_s() - t0;
    mp_imap_destroy(&it);
    if (rc != MP_EEOF || expect != items)
        fail("imap_1e8_lazy", rc == MP_EEOF || rc == 0 ? 0 : rc);
    int e = 0;
    int64_t x = items;
    for (; x % 10 == 0; x /= 10)
        e++;
    if (x == 1) /* a power of ten */
        snprintf(imap_lazy_name, sizeof imap_lazy_name, "imap_1e%d_lazy", e);
    else
        snprintf(imap_lazy_name, sizeof imap_lazy_name, "imap_%lld_lazy", (long long)items);
    imap_lazy_rate = items / s;
    fprintf(stderr,
            "# %s: chunksize %d, %.1f s (%.2f M items/s); peak RSS %.1f MiB before the call,"
            " %.1f MiB after\n",
            imap_lazy_name, IMAP_LAZY_CHUNKSIZE, s, items / s / 1e6, before, peak_rss_mib());
    return peak_rss_mib();
}

/* ---- start-up ------------------------------------------------------------------------- */

static double startup_ms(void)
{
    double v[STARTUP_RUNS];
    for (int r = 0; r < STARTUP_RUNS; r++) {
        mp_pool_t *p = NULL;
        double t0 = now_s();
        int rc = mp_pool_new(&(mp_pool_options_t){.processes = 2}, &p);
        v[r] = (now_s() - t0) * 1e3;
        if (rc || mp_pool_processes(p) != 2)
            fail("pool_startup", rc);
        mp_pool_destroy(&p);
    }
    if (getenv("MP_BENCH_VERBOSE"))
        for (int r = 0; r < STARTUP_RUNS; r++)
            fprintf(stderr, "pool_startup run %d: %.3f\n", r, v[r]);
    return median(v, STARTUP_RUNS);
}

/* What a short program pays: a pool made, a small map, the pool destroyed
   (a fixed wait anywhere in shutdown shows as the max). */
static double lifecycle_ms(void)
{
    static double v[LIFECYCLE_CYCLES];
    mp_items_t *in = mp_items_new();
    for (int i = 0; i < LIFECYCLE_ITEMS; i++)
        mp_items_add_int(in, i);
    lifecycle_max = 0;
    for (int r = 0; r < LIFECYCLE_CYCLES; r++) {
        mp_pool_t *p = NULL;
        mp_items_t *out = NULL;
        int64_t last = 0;
        double t0 = now_s();
        int rc = mp_pool_new(&(mp_pool_options_t){.processes = 2}, &p);
        rc = rc ? rc : mp_pool_map(p, "square", in, 0, &out);
        mp_pool_destroy(&p);
        v[r] = (now_s() - t0) * 1e3;
        if (rc || mp_items_int(out, LIFECYCLE_ITEMS - 1, &last) ||
            last != (int64_t)(LIFECYCLE_ITEMS - 1) * (LIFECYCLE_ITEMS - 1))
            fail("pool_lifecycle", rc);
        mp_items_destroy(&out);
        if (v[r] > lifecycle_max)
            lifecycle_max = v[r];
    }
    mp_items_destroy(&in);
    return median(v, LIFECYCLE_CYCLES);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const char *only = "", *skip = NULL;
    int runs = RUNS;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--broker") && i + 1 < argc)
            broker = argv[++i];
        else if (!strcmp(argv[i], "--skip") && i + 1 < argc)
            skip = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]) > 0 ? atoi(argv[i]) : RUNS;
        else
            only = argv[i];
    }
    static const struct {
        const char *name, *unit;
        double (*fn)(void);
        bool once;    /* one run (measures itself, or too long to repeat), no warm-up */
        bool cluster; /* also run through --broker */
    } workloads[] = {
        /* first: peak RSS only grows (see the top of this file) */
        {"imap_1e8_lazy", "peak_rss_MiB", imap_lazy_rss_mib, true, false},
        {"map_1e6_ints", "items/s", map_ints_per_s, false, true},
        {"map_1e7_ints", "items/s", map_1e7_ints_per_s, false, true},
        {"starmap_1e6_pairs", "items/s", starmap_pairs_per_s, false, false},
        {"apply_async_1e5", "tasks/s", apply_async_per_s, false, true},
        {"apply_sync_1e4", "us", apply_sync_us, false, true},
        {"imap_unordered_1e5_chunksize1", "items/s", imap_unordered_per_s, false, false},
        {"pool_startup", "ms", startup_ms, true, false},
        {"pool_lifecycle", "ms", lifecycle_ms, true, false},
    };
    for (size_t w = 0; w < sizeof workloads / sizeof *workloads; w++) {
        if (!strstr(workloads[w].name, only) || (skip && strstr(workloads[w].name, skip)) ||
            (broker && !workloads[w].cluster))
            continue;
        bool own_pools = workloads[w].fn == startup_ms || workloads[w].fn == lifecycle_ms;
        if (!pool && !own_pools) {
            int rc = pool_open(&pool);
            if (rc) {
                fprintf(stderr, "bench_pool: cannot start the pool: %s\n", mp_strerror(rc));
                return 1;
            }
        }
        if (own_pools)
            mp_pool_destroy(&pool); /* one pool at a time */
        int n = workloads[w].once ? 1 : runs;
        double v[64];
        if (n > 64)
            n = 64;
        if (!workloads[w].once)
            workloads[w].fn(); /* warm-up: the first run pays for the pool's first allocations */
        for (int r = 0; r < n; r++)
            v[r] = workloads[w].fn();
        if (getenv("MP_BENCH_VERBOSE") && n > 1)
            for (int r = 0; r < n; r++)
                fprintf(stderr, "%s run %d: %.3f\n", workloads[w].name, r, v[r]);
        if (workloads[w].fn == imap_lazy_rss_mib) {
            emit(imap_lazy_name, workloads[w].unit, v[0]);
            char rate_name[48];
            snprintf(rate_name, sizeof rate_name, "%s_rate", imap_lazy_name);
            emit(rate_name, "items/s", imap_lazy_rate);
            continue;
        }
        emit(workloads[w].name, workloads[w].unit, median(v, n));
        if (workloads[w].fn == lifecycle_ms)
            emit("pool_lifecycle_max", "ms", lifecycle_max);
    }
    mp_pool_destroy(&pool);
    return failures ? 1 : 0;
}

#endif /* BENCH_POOL_TASKS_ONLY */
