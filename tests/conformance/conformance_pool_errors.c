/*  conformance_pool_errors.c - the tests of conformance_pool that make their
    own pools (Pool(n) instead of the class pool): _TestPool's
    test_make_pool, test_empty_iterable, test_context, test_traceback,
    test_wrapped_exception and test_map_no_failfast, then
    _TestPoolWorkerErrors and _TestPoolWorkerLifetime. main, the fixtures
    and the helpers are in conformance_pool.c; see there for the two modes.
*/
#include <stdlib.h>
#include <sys/prctl.h>

#include "conformance_pool.h"

/* test_tasks.c's task codes for the Python exception classes (its enum):
   that file is compiled into conformance_pool.c only, so that its tasks
   register once. A mismatch fails the tests that compare task codes. */
enum { TT_VALUE_ERROR = 1001, TT_KEY_ERROR = 1002, TT_RUNTIME_ERROR = 1003 };

/* ---- _TestPool: the tests with a pool of their own ---------------------------------- */

static mp_obj_t *fail_args(int code, const char *message)
{
    mp_obj_t *a = int_args(1, (int64_t)code);
    assert_int_equal(mp_obj_array_add(a, mp_obj_new_str(message)), 0);
    return a;
}

/* test_make_pool: Pool(-1) is a ValueError (MP_EINVAL); Pool(3) has 3
   processes. Divergence: Pool(0) is a ValueError in CPython, but
   processes = 0 is the options struct's default, "cpu_count" (Python's
   processes=None). tcp: the executors are the cluster's, whatever
   processes says. */
void conformance_pool_test_make_pool(void **state)
{
    (void)state;
    mp_pool_options_t o = {.processes = -1, .broker = tcp_mode ? endpoint : NULL};
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&o, &pool), MP_EINVAL);
    assert_null(pool);

    if (tcp_mode) {
        pool = new_pool(0, NULL);
    } else {
        o.processes = 0;
        o.heartbeat_ms = 500;
        assert_int_equal(mp_pool_new(&o, &pool), 0);
    }
    assert_int_equal(mp_pool_processes(pool), tcp_mode ? CLASS_PROCESSES : mp_cpu_count());
    mp_pool_destroy(&pool);

    pool = new_pool(3, NULL);
    assert_int_equal(mp_pool_processes(pool), tcp_mode ? CLASS_PROCESSES : 3);
    assert_int_equal(mp_pool_close(pool), 0);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
}

/* test_empty_iterable: on Pool(1), map, imap, imap_unordered and
   map_async(...).get() over [] all give []. */
void conformance_pool_test_empty_iterable(void **state)
{
    (void)state;
    mp_pool_t *pool = new_pool(1, NULL);
    mp_items_t *in = mp_items_new(), *out = NULL;
    assert_int_equal(mp_pool_map(pool, "sqr", in, 0, &out), 0);
    assert_int_equal(mp_items_len(out), 0);
    mp_items_destroy(&out);

    for (int unordered = 0; unordered < 2; unordered++) {
        range_gen_t g = {0, 0};
        mp_imap_t *it = NULL;
        assert_int_equal(
            (unordered ? mp_pool_imap_unordered : mp_pool_imap)(pool, "sqr", range_gen, &g, 0, &it),
            0);
        int64_t v;
        assert_int_equal(mp_imap_next_int(it, WAIT_MS, &v), MP_EEOF);
        mp_imap_destroy(&it);
    }

    mp_async_t *r = NULL;
    assert_int_equal(mp_pool_map_async(pool, "sqr", in, NULL, &r), 0);
    const mp_items_t *got = NULL;
    assert_int_equal(mp_async_get(r, WAIT_MS, &got), 0);
    assert_int_equal(mp_items_len(got), 0);
    mp_async_destroy(&r);
    mp_items_destroy(&in);
    assert_int_equal(mp_pool_close(pool), 0);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
}

/* test_context: `with Pool(2) as p: p.map_async(sqr, range(10)).get()`;
   the with block's exit is terminate(); after join(), map_async raises
   ValueError (MP_ESTATE: the pool is not running). */
void conformance_pool_test_context(void **state)
{
    (void)state;
    mp_pool_t *pool = new_pool(2, NULL);
    mp_items_t *in = tu_range(10);
    mp_async_t *r = NULL;
    assert_int_equal(mp_pool_map_async(pool, "sqr", in, NULL, &r), 0);
    const mp_items_t *got = NULL;
    assert_int_equal(mp_async_get(r, WAIT_MS, &got), 0);
    tu_assert_squares(got, 10);
    mp_async_destroy(&r);
    assert_int_equal(mp_pool_terminate(pool), 0);
    assert_int_equal(mp_pool_join(pool), 0);
    assert_int_equal(mp_pool_map_async(pool, "sqr", in, NULL, &r), MP_ESTATE);
    assert_null(r);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

/* test_traceback: on Pool(1), apply of a task raising RuntimeError(123)
   raises RuntimeError with args (123,). C has no traceback: what carries
   over is the error's identity and where it was raised (MP_ETASK, the
   task's code and message, the task's name and the executor's pid). Then
   an exception of the input generator is not made a remote one: imap
   (C's map has no lazy input) returns SAY_WHEN, and its error is the
   generator's own (its message, raised in this process: Python's
   SayWhenError with no __cause__). */
void conformance_pool_test_traceback(void **state)
{
    (void)state;
    mp_pool_t *pool = new_pool(1, NULL);
    mp_obj_t *args = fail_args(TT_RUNTIME_ERROR, "123"), *v = NULL;
    assert_int_equal(mp_pool_apply(pool, "fail_with", args, &v), MP_ETASK);
    assert_null(v);
    mp_async_t *r = NULL;
    assert_int_equal(mp_pool_apply_async(pool, "fail_with", args, NULL, &r), 0);
    assert_int_equal(mp_async_get_obj(r, WAIT_MS, &v), MP_ETASK);
    const mp_task_error_t *e = mp_async_error(r);
    assert_non_null(e);
    assert_int_equal(e->code, MP_ETASK);
    assert_int_equal(e->task_code, TT_RUNTIME_ERROR);
    assert_string_equal(e->message, "123");
    assert_string_equal(e->task, "fail_with");
    assert_true(e->pid > 0 && e->pid != getpid());
    mp_async_destroy(&r);
    mp_obj_destroy(&args);
    assert_int_equal(mp_pool_terminate(pool), 0);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);

    pool = new_pool(1, NULL);
    saywhen_gen_t g = {1, -1, 0};
    mp_imap_t *it = NULL;
    assert_int_equal(mp_pool_imap(pool, "sqr", saywhen_gen, &g, 1, &it), 0);
    int64_t x;
    assert_int_equal(mp_imap_next_int(it, WAIT_MS, &x), SAY_WHEN);
    e = mp_imap_error(it);
    assert_non_null(e);
    assert_int_equal(e->code, SAY_WHEN);
    assert_string_equal(e->message, "Somebody said when");
    assert_int_equal(e->pid, getpid());
    mp_imap_destroy(&it);
    assert_int_equal(mp_pool_terminate(pool), 0);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
}

/* test_wrapped_exception: on Pool(1), apply of a task raising
   RuntimeError('foo') raises it as such: MP_ETASK. */
void conformance_pool_test_wrapped_exception(void **state)
{
    (void)state;
    mp_pool_t *pool = new_pool(1, NULL);
    mp_obj_t *args = fail_args(TT_RUNTIME_ERROR, "foo"), *v = NULL;
    assert_int_equal(mp_pool_apply(pool, "fail_with", args, &v), MP_ETASK);
    assert_null(v);
    mp_obj_destroy(&args);
    assert_int_equal(mp_pool_terminate(pool), 0);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
}

/* test_map_no_failfast: on Pool(2), map(raise_large_valuerror, [0, 1])
   (items failing after 0 and 1 s with a 1 MiB message) raises ValueError,
   and sleep(0.5), close(), join() return: more than 0.9 s in all (no
   fail-fast, no deadlock on the large errors). */
void conformance_pool_test_map_no_failfast(void **state)
{
    (void)state;
    uint64_t t0 = tu_now_ms();
    mp_pool_t *pool = new_pool(2, NULL);
    mp_items_t *in = tu_range(2), *out = NULL;
    assert_int_equal(mp_pool_map(pool, "raise_large_valuerror", in, 0, &out), MP_ETASK);
    assert_int_equal(mp_items_error(out, 0)->task_code, TT_VALUE_ERROR);
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    usleep(500000);
    assert_int_equal(mp_pool_close(pool), 0);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
    assert_true(tu_now_ms() - t0 > 900);
}

/* ---- _TestPoolWorkerErrors ---------------------------------------------------------- */

typedef struct {
    int calls, code, task_code;
    char message[64];
} scratchpad_t;

static int errback(mp_async_t *r, const mp_task_error_t *e, void *arg)
{
    (void)r;
    scratchpad_t *s = arg;
    s->calls++;
    s->code = e->code;
    s->task_code = e->task_code;
    snprintf(s->message, sizeof s->message, "%s", e->message);
    return 0;
}

/* test_async_error_callback: on Pool(2), apply_async(raising,
   error_callback=errback): get() raises KeyError (MP_ETASK, task code
   TT_KEY_ERROR) and errback got that KeyError. */
void conformance_pool_test_async_error_callback(void **state)
{
    (void)state;
    mp_pool_t *pool = new_pool(2, NULL);
    scratchpad_t s = {0};
    mp_call_options_t co = {.error_callback = errback, .arg = &s};
    mp_async_t *r = NULL;
    assert_int_equal(mp_pool_apply_async(pool, "raising", NULL, &co, &r), 0);
    mp_obj_t *v = NULL;
    assert_int_equal(mp_async_get_obj(r, WAIT_MS, &v), MP_ETASK);
    assert_int_equal(mp_async_error(r)->task_code, TT_KEY_ERROR);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.code, MP_ETASK);
    assert_int_equal(s.task_code, TT_KEY_ERROR);
    assert_string_equal(s.message, "'key'");
    mp_async_destroy(&r);
    assert_int_equal(mp_pool_close(pool), 0);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
}

/* test_unpickleable_result: on Pool(2), 20 times apply_async of a task
   whose result cannot be encoded (C: mp_task_return_packed of a byte that
   is no msgpack value) with error_callback: get() fails
   (MaybeEncodingError: here the task's failure, code MP_EINVAL), errback
   got it with a message; no executor is lost. */
void conformance_pool_test_unpickleable_result(void **state)
{
    (void)state;
    mp_pool_t *pool = new_pool(2, NULL);
    for (int iteration = 0; iteration < 20; iteration++) {
        scratchpad_t s = {0};
        mp_call_options_t co = {.error_callback = errback, .arg = &s};
        mp_async_t *r = NULL;
        assert_int_equal(mp_pool_apply_async(pool, "unencodable_result", NULL, &co, &r), 0);
        mp_obj_t *v = NULL;
        assert_int_equal(mp_async_get_obj(r, WAIT_MS, &v), MP_ETASK);
        assert_null(v);
        assert_int_equal(s.calls, 1);
        assert_int_equal(s.code, MP_ETASK);
        assert_int_equal(s.task_code, MP_EINVAL);
        assert_true(s.message[0] != '\0');
        mp_async_destroy(&r);
    }
    assert_int_equal(mp_pool_processes(pool), tcp_mode ? CLASS_PROCESSES : 2);
    assert_int_equal(mp_pool_close(pool), 0);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
}

/* ---- _TestPoolWorkerLifetime -------------------------------------------------------- */

/* The pid of the executor that runs one get_pid task. */
static int64_t executor_pid(mp_pool_t *pool)
{
    mp_obj_t *v = NULL;
    assert_int_equal(mp_pool_apply(pool, "get_pid", NULL, &v), 0);
    int64_t pid = mp_obj_int(v);
    mp_obj_destroy(&v);
    return pid;
}

/* test_pool_worker_lifetime: Pool(3, maxtasksperchild=10) has 3 processes;
   100 apply_async(sqr, (i,)) give sqr(i); then the worker pids have
   changed. C cannot list its executors: their pids are what get_pid tasks
   return before and after (embedded only: a cluster's workers are not the
   pool's). */
void conformance_pool_test_pool_worker_lifetime(void **state)
{
    (void)state;
    mp_pool_options_t o = {.maxtasksperchild = 10};
    mp_pool_t *pool = new_pool(3, &o);
    assert_int_equal(mp_pool_processes(pool), 3);
    int64_t orig[3];
    for (int i = 0; i < 3; i++)
        orig[i] = executor_pid(pool);
    enum { N = 100 };
    mp_async_t *results[N];
    for (int i = 0; i < N; i++) {
        mp_obj_t *args = int_args(1, (int64_t)i);
        assert_int_equal(mp_pool_apply_async(pool, "sqr", args, NULL, &results[i]), 0);
        mp_obj_destroy(&args);
    }
    for (int j = 0; j < N; j++) {
        mp_obj_t *v = NULL;
        assert_int_equal(mp_async_get_obj(results[j], WAIT_MS, &v), 0);
        assert_int_equal(mp_obj_int(v), (int64_t)j * j);
        mp_obj_destroy(&v);
        mp_async_destroy(&results[j]);
    }
    assert_int_equal(tu_wait_processes(pool, 3, 5000), 3); /* all alive again */
    bool changed = false;
    for (int i = 0; i < 3; i++) {
        int64_t pid = executor_pid(pool);
        assert_true(pid > 0);
        changed = changed || (pid != orig[0] && pid != orig[1] && pid != orig[2]);
    }
    assert_true(changed);
    assert_int_equal(mp_pool_close(pool), 0);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
}

/* test_pool_worker_lifetime_early_close: Pool(3, maxtasksperchild=1), six
   apply_async(sqr, (i, 0.3)), then close() and join() at once: join does
   not hang, and every result is sqr(i). */
void conformance_pool_test_pool_worker_lifetime_early_close(void **state)
{
    (void)state;
    mp_pool_options_t o = {.maxtasksperchild = 1};
    mp_pool_t *pool = new_pool(3, &o);
    mp_async_t *results[6];
    for (int i = 0; i < 6; i++) {
        mp_obj_t *args = sqr_args(i, 0.3);
        assert_int_equal(mp_pool_apply_async(pool, "sqr", args, NULL, &results[i]), 0);
        mp_obj_destroy(&args);
    }
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_pool_close(pool), 0);
    assert_int_equal(mp_pool_join(pool), 0);
    assert_true(tu_now_ms() - t0 < WAIT_MS);
    for (int j = 0; j < 6; j++) {
        mp_obj_t *v = NULL;
        assert_int_equal(mp_async_get_obj(results[j], 0, &v), 0);
        assert_int_equal(mp_obj_int(v), (int64_t)j * j);
        mp_obj_destroy(&v);
        mp_async_destroy(&results[j]);
    }
    mp_pool_destroy(&pool);
}

/* test_pool_maxtasksperchild_invalid: maxtasksperchild in [0, -1, 0.5,
   "12"] is a ValueError. -1: MP_EINVAL. 0.5 and "12" cannot be written
   (an int field). Divergence: 0 is the options struct's default, "never
   replace" (Python's None), so it makes a pool. */
void conformance_pool_test_pool_maxtasksperchild_invalid(void **state)
{
    (void)state;
    mp_pool_options_t o = {
        .processes = 3, .maxtasksperchild = -1, .broker = tcp_mode ? endpoint : NULL};
    mp_pool_t *pool = NULL;
    assert_int_equal(mp_pool_new(&o, &pool), MP_EINVAL);
    assert_null(pool);
    pool = new_pool(3, &(mp_pool_options_t){.maxtasksperchild = 0});
    mp_pool_destroy(&pool);
}

/* The program of test_worker_finalization_via_atexit_handler_...: a pool
   of 1 held by a global, a map over range(10), and exit from main without
   closing it. Runs in a child: no cmocka here, the exit code says. */
static mp_pool_t *problem;

static int finalization_program(void)
{
    mp_pool_options_t o = {.processes = 1, .heartbeat_ms = 500};
    if (tcp_mode)
        o.broker = endpoint;
    if (mp_pool_new(&o, &problem))
        return 2;
    mp_items_t *in = mp_items_new(), *out = NULL;
    for (int i = 0; i < 10; i++)
        mp_items_add_int(in, i);
    int rc = mp_pool_map(problem, "sqr", in, 0, &out);
    bool ok = !rc && mp_items_len(out) == 10;
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    return ok ? 0 : 3;
}

/* test_worker_finalization_via_atexit_handler_of_multiprocessing: that
   program exits with 0 (and in time: assert_python_ok would hang). As
   every test here, it must leave no process, no ipc file, no shm block. */
void conformance_pool_test_worker_finalization_via_atexit_handler_of_multiprocessing(void **state)
{
    (void)state;
    if (!tcp_mode)
        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* the pool's worker comes to us */
    fflush(NULL);
    pid_t child = tu_fork();
    if (child == 0)
        exit(finalization_program());
    int status = tu_wait_exit(child, WAIT_MS);
    if (status == -1)
        tu_kill_children();
    bool alone = true, no_ipc = true;
    if (!tcp_mode) {
        int st;
        alone = TU_WAIT_UNTIL(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, 5000);
        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
        char path[512];
        no_ipc = TU_WAIT_UNTIL(tu_ipc_files(child, NULL, 0) == 0, 1000);
        while (tu_ipc_files(child, path, sizeof path) > 0 && unlink(path) == 0)
            ; /* not ours to leave behind, whatever the result */
    }
    char prefix[32];
    snprintf(prefix, sizeof prefix, "mp_%d_", (int)child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(alone);
    assert_true(no_ipc);
    assert_int_equal(tu_shm_count(prefix), 0);
}
