/*  conformance_pool.c - CPython 3.11's _TestPool, _TestPoolWorkerErrors and
    _TestPoolWorkerLifetime (Lib/test/_test_multiprocessing.py), ported
    method by method to mp/pool.h: same inputs, same assertions.

    Run as `conformance_pool embedded` (pools from mp_pool_new with no
    broker) or `conformance_pool tcp` (a real mp-broker on a loopback port
    and one mp-worker of CLASS_PROCESSES executors serving test_tasks.c,
    started in the group setup). Python's functions become the tasks of
    test_tasks.c (sqr, mul, raising, ...); a Python exception class becomes
    the task code it fails with (TT_VALUE_ERROR, ...), which the caller sees
    as MP_ETASK with that task_code. The table is tests/conformance/pool.rows.md.

    This file holds main, the fixtures, the helpers and the _TestPool
    tests on the class pool; the tests that make their own pools are in
    conformance_pool_errors.c (one executable, conformance_pool.h between).
*/
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "conformance_pool.h"

#include "../integration/test_tasks.c"

bool tcp_mode;
char endpoint[256];
static pid_t broker_pid, worker_pid;

/* ---- fixtures ----------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    if (!tcp_mode)
        return 0;
    broker_pid = tu_start_broker("tcp://127.0.0.1:0", "500", endpoint, sizeof endpoint);
    assert_non_null(strstr(endpoint, "tcp://127.0.0.1:"));
    char n[16];
    snprintf(n, sizeof n, "%d", CLASS_PROCESSES);
    worker_pid = tu_start_worker(endpoint, n, "500");
    mp_pool_t *pool = tu_cluster_pool(endpoint, 500, CLASS_PROCESSES); /* the worker is up */
    mp_pool_destroy(&pool);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (!tcp_mode)
        return 0;
    kill(worker_pid, SIGTERM);
    kill(broker_pid, SIGTERM);
    tu_wait_exit(worker_pid, 5000);
    tu_wait_exit(broker_pid, 5000);
    tu_kill_children(); /* what did not stop in time */
    tu_assert_no_children();
    return 0;
}

/* Nothing left: no child (tcp: none but the two live daemons), no shm
   block, no ipc file. */
static int teardown(void **state)
{
    if (!tcp_mode) {
        assert_int_equal(tu_ipc_files(getpid(), NULL, 0), 0);
        return tu_teardown(state);
    }
    assert_int_equal(waitpid(-1, NULL, WNOHANG), 0);
    assert_int_equal(kill(broker_pid, 0), 0);
    assert_int_equal(kill(worker_pid, 0), 0);
    char own[32];
    snprintf(own, sizeof own, "mp_%d_", (int)getpid());
    assert_int_equal(tu_shm_count(own), 0);
    return 0;
}

/* Python's Pool(processes, ...): embedded, that many executors; tcp, a
   pool on the cluster, whose executors are the cluster's. */
mp_pool_t *new_pool(int processes, const mp_pool_options_t *extra)
{
    if (!tcp_mode)
        return tu_new_pool(processes, extra);
    mp_pool_options_t o = extra ? *extra : (mp_pool_options_t){0};
    o.broker = endpoint;
    o.heartbeat_ms = 500;
    o.connect_timeout_ms = 5000;
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&o, &pool), 0);
    assert_int_equal(tu_wait_processes(pool, CLASS_PROCESSES, WAIT_MS), CLASS_PROCESSES);
    return pool;
}

/* _TestPool.setUpClass: the class pool, Pool(4). */
static int setup_class_pool(void **state)
{
    *state = new_pool(CLASS_PROCESSES, NULL);
    return 0;
}

/* _TestPool.tearDownClass: terminate, join. */
static int teardown_class_pool(void **state)
{
    mp_pool_t *pool = *state;
    assert_int_equal(mp_pool_terminate(pool), 0);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
    return teardown(state);
}

/* ---- helpers ------------------------------------------------------------------------ */

/* An argument tuple of n ints. */
mp_obj_t *int_args(int n, ...)
{
    mp_obj_t *a = mp_obj_new_array();
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(mp_obj_array_add(a, mp_obj_new_int(va_arg(ap, int64_t))), 0);
    va_end(ap);
    return a;
}

/* (x, wait): sqr's arguments, wait in seconds as in CPython. */
mp_obj_t *sqr_args(int64_t x, double wait)
{
    mp_obj_t *a = int_args(1, x);
    assert_int_equal(mp_obj_array_add(a, mp_obj_new_float(wait)), 0);
    return a;
}

/* zip(range(n), range(n - 1, -1, -1)) */
static mp_items_t *zip_down(int n)
{
    mp_items_t *l = mp_items_new();
    for (int i = 0; i < n; i++) {
        assert_int_equal(mp_items_add_tuple(l, 2), 0);
        assert_int_equal(mp_items_add_int(l, i), 0);
        assert_int_equal(mp_items_add_int(l, n - 1 - i), 0);
    }
    return l;
}

/* list(itertools.starmap(mul, zip_down(n))) */
static void assert_products(const mp_items_t *r, int n)
{
    assert_int_equal(mp_items_len(r), n);
    assert_int_equal(mp_items_nerrors(r), 0);
    for (int i = 0; i < n; i++) {
        int64_t v = -1;
        assert_int_equal(mp_items_int(r, (size_t)i, &v), 0);
        assert_int_equal(v, (int64_t)i * (n - 1 - i));
    }
}

int range_gen(void *arg, mp_items_t *out)
{
    range_gen_t *g = arg;
    return g->next < g->end ? mp_items_add_int(out, g->next++) : MP_EEOF;
}

int saywhen_gen(void *arg, mp_items_t *out)
{
    saywhen_gen_t *g = arg;
    if (g->when == -1 || g->next == g->when) /* raise SayWhenError("Somebody said when") */
        return mp_generator_fail(SAY_WHEN, "Somebody said when");
    return g->next < g->total ? mp_items_add_int(out, g->next++) : MP_EEOF;
}

static int cmp_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* sorted(imap_unordered(sqr, range(n), chunksize)) == list(map(sqr, range(n))) */
static void assert_unordered_squares(mp_pool_t *pool, int n, size_t chunksize)
{
    range_gen_t g = {0, n};
    mp_imap_t *it = NULL;
    assert_int_equal(mp_pool_imap_unordered(pool, "sqr", range_gen, &g, chunksize, &it), 0);
    int64_t *got = calloc((size_t)n + 1, sizeof *got);
    int k = 0, rc;
    while (k <= n && (rc = mp_imap_next_int(it, WAIT_MS, &got[k])) == 0)
        k++;
    assert_int_equal(rc, MP_EEOF);
    assert_int_equal(k, n);
    qsort(got, (size_t)n, sizeof *got, cmp_int64);
    for (int i = 0; i < n; i++)
        assert_int_equal(got[i], (int64_t)i * i);
    free(got);
    mp_imap_destroy(&it);
}

/* ---- _TestPool ---------------------------------------------------------------------- */

/* test_apply: apply(sqr, (5,)) == 25 and apply(sqr, (), {'x': 3}) == 9; C
   has no keyword arguments, so x=3 travels as the positional (3,). */
static void conformance_pool_test_apply(void **state)
{
    mp_pool_t *pool = *state;
    int64_t xs[] = {5, 3};
    for (int i = 0; i < 2; i++) {
        mp_obj_t *args = int_args(1, xs[i]), *v = NULL;
        assert_int_equal(mp_pool_apply(pool, "sqr", args, &v), 0);
        assert_int_equal(mp_obj_int(v), xs[i] * xs[i]);
        mp_obj_destroy(&v);
        mp_obj_destroy(&args);
    }
}

/* test_map: map(sqr, range(10)) and map(sqr, range(100), chunksize=20). */
static void conformance_pool_test_map(void **state)
{
    mp_pool_t *pool = *state;
    int n[] = {10, 100};
    size_t chunksize[] = {0, 20};
    for (int i = 0; i < 2; i++) {
        mp_items_t *in = tu_range(n[i]), *out = NULL;
        assert_int_equal(mp_pool_map(pool, "sqr", in, chunksize[i], &out), 0);
        tu_assert_squares(out, n[i]);
        mp_items_destroy(&out);
        mp_items_destroy(&in);
    }
}

/* test_starmap: starmap(mul, zip(range(10), range(9, -1, -1))) and the
   same over 100 with chunksize=20, against itertools.starmap. */
static void conformance_pool_test_starmap(void **state)
{
    mp_pool_t *pool = *state;
    int n[] = {10, 100};
    size_t chunksize[] = {0, 20};
    for (int i = 0; i < 2; i++) {
        mp_items_t *in = zip_down(n[i]), *out = NULL;
        assert_int_equal(mp_pool_starmap(pool, "mul", in, chunksize[i], &out), 0);
        assert_products(out, n[i]);
        mp_items_destroy(&out);
        mp_items_destroy(&in);
    }
}

/* test_starmap_async: starmap_async(mul, 100 tuples).get(). */
static void conformance_pool_test_starmap_async(void **state)
{
    mp_pool_t *pool = *state;
    mp_items_t *in = zip_down(100);
    mp_async_t *r = NULL;
    assert_int_equal(mp_pool_starmap_async(pool, "mul", in, NULL, &r), 0);
    const mp_items_t *got = NULL;
    assert_int_equal(mp_async_get(r, WAIT_MS, &got), 0);
    assert_products(got, 100);
    mp_async_destroy(&r);
    mp_items_destroy(&in);
}

/* test_map_async: map_async(sqr, range(10)).get(). */
static void conformance_pool_test_map_async(void **state)
{
    mp_pool_t *pool = *state;
    mp_items_t *in = tu_range(10);
    mp_async_t *r = NULL;
    assert_int_equal(mp_pool_map_async(pool, "sqr", in, NULL, &r), 0);
    const mp_items_t *got = NULL;
    assert_int_equal(mp_async_get(r, WAIT_MS, &got), 0);
    tu_assert_squares(got, 10);
    mp_async_destroy(&r);
    mp_items_destroy(&in);
}

/* call_args of test_map_async_callbacks: what callback and error_callback
   appended. */
typedef struct {
    int n;
    struct {
        bool ok;       /* callback (a result list) or error_callback */
        int rc;        /* mp_async_get inside the callback */
        size_t len;    /* the list's length */
        int64_t first; /* its first value */
        int code, task_code;
        char message[128];
    } calls[4];
} call_args_t;

static int append_result(mp_async_t *r, void *arg)
{
    call_args_t *c = arg;
    if (c->n >= 4)
        return -1;
    const mp_items_t *got = NULL;
    c->calls[c->n].ok = true;
    c->calls[c->n].rc = mp_async_get(r, 0, &got);
    c->calls[c->n].len = got ? mp_items_len(got) : 0;
    if (got)
        mp_items_int(got, 0, &c->calls[c->n].first);
    c->n++;
    return 0;
}

static int append_error(mp_async_t *r, const mp_task_error_t *e, void *arg)
{
    (void)r;
    call_args_t *c = arg;
    if (c->n >= 4)
        return -1;
    c->calls[c->n].ok = false;
    c->calls[c->n].code = e->code;
    c->calls[c->n].task_code = e->task_code;
    snprintf(c->calls[c->n].message, sizeof c->calls[c->n].message, "%s", e->message);
    c->n++;
    return 0;
}

/* test_map_async_callbacks: map_async(int, ['1'], callback=append,
   error_callback=append).wait() appended [1]; map_async(int, ['a'], ...)
   appended a ValueError (here MP_ETASK with task code TT_VALUE_ERROR).
   The lists are checked right after wait(): the callback ran before. */
static void conformance_pool_test_map_async_callbacks(void **state)
{
    mp_pool_t *pool = *state;
    call_args_t c = {0};
    mp_call_options_t co = {.callback = append_result, .error_callback = append_error, .arg = &c};
    const char *inputs[] = {"1", "a"};
    for (int i = 0; i < 2; i++) {
        mp_items_t *in = mp_items_new();
        assert_int_equal(mp_items_add_str(in, inputs[i]), 0);
        mp_async_t *r = NULL;
        assert_int_equal(mp_pool_map_async(pool, "parse_int", in, &co, &r), 0);
        assert_int_equal(mp_async_wait(r, WAIT_MS), 0);
        assert_int_equal(c.n, i + 1);
        mp_async_destroy(&r);
        mp_items_destroy(&in);
    }
    assert_true(c.calls[0].ok);
    assert_int_equal(c.calls[0].rc, 0);
    assert_int_equal(c.calls[0].len, 1);
    assert_int_equal(c.calls[0].first, 1);
    assert_false(c.calls[1].ok);
    assert_int_equal(c.calls[1].code, MP_ETASK);
    assert_int_equal(c.calls[1].task_code, TT_VALUE_ERROR);
    assert_string_equal(c.calls[1].message, "invalid literal for int() with base 10: 'a'");
}

/* test_map_chunksize: map_async(sqr, [], chunksize=1).get(timeout=TIMEOUT1)
   does not stall (TIMEOUT1 = 0.1 s). */
static void conformance_pool_test_map_chunksize(void **state)
{
    mp_pool_t *pool = *state;
    mp_items_t *in = mp_items_new();
    mp_call_options_t co = {.chunksize = 1};
    mp_async_t *r = NULL;
    assert_int_equal(mp_pool_map_async(pool, "sqr", in, &co, &r), 0);
    const mp_items_t *got = NULL;
    assert_int_equal(mp_async_get(r, 100, &got), 0);
    assert_int_equal(mp_items_len(got), 0);
    mp_async_destroy(&r);
    mp_items_destroy(&in);
}

/* test_async: apply_async(sqr, (7, TIMEOUT1)).get() == 49 after about
   TIMEOUT1 (0.1 s; CPython checks the time only with CHECK_TIMINGS: here
   at least the sleep, and at most 1.5 s more). */
static void conformance_pool_test_async(void **state)
{
    mp_pool_t *pool = *state;
    mp_obj_t *args = sqr_args(7, 0.1), *v = NULL;
    mp_async_t *r = NULL;
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_pool_apply_async(pool, "sqr", args, NULL, &r), 0);
    assert_int_equal(mp_async_get_obj(r, WAIT_MS, &v), 0);
    TU_ASSERT_ELAPSED(t0, 100, 1500);
    assert_int_equal(mp_obj_int(v), 49);
    mp_obj_destroy(&v);
    mp_async_destroy(&r);
    mp_obj_destroy(&args);
}

/* test_async_timeout: apply_async(sqr, (6, TIMEOUT2 + 1.0)).get(timeout=
   TIMEOUT2) raises TimeoutError (MP_ETIMEDOUT) after about TIMEOUT2. */
static void conformance_pool_test_async_timeout(void **state)
{
    mp_pool_t *pool = *state;
    mp_obj_t *args = sqr_args(6, 0.1 + 1.0), *v = NULL;
    mp_async_t *r = NULL;
    assert_int_equal(mp_pool_apply_async(pool, "sqr", args, NULL, &r), 0);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_async_get_obj(r, 100, &v), MP_ETIMEDOUT);
    TU_ASSERT_ELAPSED(t0, 100, 500);
    assert_null(v);
    mp_async_destroy(&r);
    mp_obj_destroy(&args);
}

/* test_imap: list(imap(sqr, range(10))); ten next() then StopIteration
   (MP_EEOF); the same over range(1000) with chunksize=100. */
static void conformance_pool_test_imap(void **state)
{
    mp_pool_t *pool = *state;
    int n[] = {10, 10, 1000};
    size_t chunksize[] = {0, 0, 100};
    for (int k = 0; k < 3; k++) {
        range_gen_t g = {0, n[k]};
        mp_imap_t *it = NULL;
        assert_int_equal(mp_pool_imap(pool, "sqr", range_gen, &g, chunksize[k], &it), 0);
        for (int i = 0; i < n[k]; i++) {
            int64_t v = -1;
            assert_int_equal(mp_imap_next_int(it, WAIT_MS, &v), 0);
            assert_int_equal(v, (int64_t)i * i);
        }
        int64_t v;
        assert_int_equal(mp_imap_next_int(it, WAIT_MS, &v), MP_EEOF);
        mp_imap_destroy(&it);
    }
}

/* imap(sqr, exception_throwing_generator(total, when), chunksize): the
   first `good` values are the squares, then SayWhenError (SAY_WHEN). */
static void assert_imap_says_when(mp_pool_t *pool, int total, int when, size_t chunksize, int good)
{
    saywhen_gen_t g = {total, when, 0};
    mp_imap_t *it = NULL;
    assert_int_equal(mp_pool_imap(pool, "sqr", saywhen_gen, &g, chunksize, &it), 0);
    for (int i = 0; i < good; i++) {
        int64_t v = -1;
        assert_int_equal(mp_imap_next_int(it, WAIT_MS, &v), 0);
        assert_int_equal(v, (int64_t)i * i);
    }
    int64_t v;
    assert_int_equal(mp_imap_next_int(it, WAIT_MS, &v), SAY_WHEN);
    mp_imap_destroy(&it);
}

/* test_imap_handle_iterable_exception: a generator failing at once (twice:
   reentrant), after 3 items (chunksize 1), after 7 (chunksize 2 and 4).
   Divergence (mp/pool.h, mp_generator_fn): libmp returns the result of
   every item the generator produced before failing, then its code;
   CPython drops the part of a chunk built before the exception (with
   chunksize 2 it returns 6 results, with 4 only 4). Here: 7, 7. */
static void conformance_pool_test_imap_handle_iterable_exception(void **state)
{
    mp_pool_t *pool = *state;
    assert_imap_says_when(pool, 1, -1, 1, 0);
    assert_imap_says_when(pool, 1, -1, 1, 0);
    assert_imap_says_when(pool, 10, 3, 1, 3);
    assert_imap_says_when(pool, 20, 7, 2, 7); /* CPython: 6 */
    assert_imap_says_when(pool, 20, 7, 4, 7); /* CPython: 4 */
}

/* test_imap_unordered: sorted(imap_unordered(sqr, range(10))) and the same
   over range(1000) with chunksize=100. */
static void conformance_pool_test_imap_unordered(void **state)
{
    assert_unordered_squares(*state, 10, 0);
    assert_unordered_squares(*state, 1000, 100);
}

/* imap_unordered over exception_throwing_generator(total, when): within
   total next() calls SayWhenError comes, every value before it one of the
   expected squares, none twice. */
static void assert_unordered_says_when(mp_pool_t *pool, int total, int when, size_t chunksize)
{
    saywhen_gen_t g = {total, when, 0};
    mp_imap_t *it = NULL;
    assert_int_equal(mp_pool_imap_unordered(pool, "sqr", saywhen_gen, &g, chunksize, &it), 0);
    bool seen[32] = {false};
    int rc = 0;
    for (int i = 0; i < (total > 1 ? total : 1) && rc == 0; i++) {
        int64_t v = -1;
        rc = mp_imap_next_int(it, WAIT_MS, &v);
        if (rc == 0) {
            int64_t root = 0;
            while (root * root < v)
                root++;
            assert_true(root < total && root * root == v && !seen[root]);
            seen[root] = true;
        }
    }
    assert_int_equal(rc, SAY_WHEN);
    mp_imap_destroy(&it);
}

/* test_imap_unordered_handle_iterable_exception: as the imap case, in
   completion order. */
static void conformance_pool_test_imap_unordered_handle_iterable_exception(void **state)
{
    mp_pool_t *pool = *state;
    assert_unordered_says_when(pool, 1, -1, 1);
    assert_unordered_says_when(pool, 1, -1, 1);
    assert_unordered_says_when(pool, 10, 3, 1);
    assert_unordered_says_when(pool, 20, 7, 2);
}

/* test_terminate: map_async(time.sleep, [0.1] * 10000, chunksize=1), then
   terminate(); join() takes less than 2 s. */
static void conformance_pool_test_terminate(void **state)
{
    mp_pool_t *pool = *state;
    mp_items_t *in = tu_repeat(10000, 100);
    mp_call_options_t co = {.chunksize = 1};
    mp_async_t *r = NULL;
    assert_int_equal(mp_pool_map_async(pool, "sleep_ms", in, &co, &r), 0);
    assert_int_equal(mp_pool_terminate(pool), 0);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_pool_join(pool), 0);
    assert_true(tu_now_ms() - t0 < 2000);
    mp_async_destroy(&r);
    mp_items_destroy(&in);
}

/* ---- main --------------------------------------------------------------------------- */

/* A test, and whether it runs on a cluster (false: its meaning is the
   local executors'). */
#define CLASS_TEST(f)                                                                              \
    {                                                                                              \
        cmocka_unit_test_setup_teardown(f, setup_class_pool, teardown_class_pool), true            \
    }
#define OWN_POOL_TEST(f)                                                                           \
    {                                                                                              \
        cmocka_unit_test_teardown(f, teardown), true                                               \
    }
#define EMBEDDED_TEST(f)                                                                           \
    {                                                                                              \
        cmocka_unit_test_teardown(f, teardown), false                                              \
    }

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    if (argc != 2 || (strcmp(argv[1], "embedded") && strcmp(argv[1], "tcp"))) {
        fprintf(stderr, "usage: %s embedded|tcp\n", argv[0]);
        return 2;
    }
    tcp_mode = !strcmp(argv[1], "tcp");
    /* In CPython's order. test_map_unplicklable, test_map_handle_iterable_
       exception, test_release_task_refs, test_enter and test_resource_
       warning do not carry over to C (pool.rows.md says why). */
    const struct {
        struct CMUnitTest test;
        bool on_cluster;
    } all[] = {
        CLASS_TEST(conformance_pool_test_apply),
        CLASS_TEST(conformance_pool_test_map),
        CLASS_TEST(conformance_pool_test_starmap),
        CLASS_TEST(conformance_pool_test_starmap_async),
        CLASS_TEST(conformance_pool_test_map_async),
        CLASS_TEST(conformance_pool_test_map_async_callbacks),
        CLASS_TEST(conformance_pool_test_map_chunksize),
        CLASS_TEST(conformance_pool_test_async),
        CLASS_TEST(conformance_pool_test_async_timeout),
        CLASS_TEST(conformance_pool_test_imap),
        CLASS_TEST(conformance_pool_test_imap_handle_iterable_exception),
        CLASS_TEST(conformance_pool_test_imap_unordered),
        CLASS_TEST(conformance_pool_test_imap_unordered_handle_iterable_exception),
        OWN_POOL_TEST(conformance_pool_test_make_pool),
        CLASS_TEST(conformance_pool_test_terminate),
        OWN_POOL_TEST(conformance_pool_test_empty_iterable),
        OWN_POOL_TEST(conformance_pool_test_context),
        OWN_POOL_TEST(conformance_pool_test_traceback),
        OWN_POOL_TEST(conformance_pool_test_wrapped_exception),
        OWN_POOL_TEST(conformance_pool_test_map_no_failfast),
        OWN_POOL_TEST(conformance_pool_test_async_error_callback),
        OWN_POOL_TEST(conformance_pool_test_unpickleable_result),
        EMBEDDED_TEST(conformance_pool_test_pool_worker_lifetime),
        EMBEDDED_TEST(conformance_pool_test_pool_worker_lifetime_early_close),
        OWN_POOL_TEST(conformance_pool_test_pool_maxtasksperchild_invalid),
        OWN_POOL_TEST(
            conformance_pool_test_worker_finalization_via_atexit_handler_of_multiprocessing),
    };
    enum { N = sizeof all / sizeof all[0] };
    struct CMUnitTest tests[N];
    size_t n = 0;
    for (size_t i = 0; i < N; i++)
        if (!tcp_mode || all[i].on_cluster)
            tests[n++] = all[i].test;
    return _cmocka_run_group_tests(tcp_mode ? "conformance_pool_tcp" : "conformance_pool_embedded",
                                   tests, n, group_setup, group_teardown);
}
