/*  test_pool.c - the embedded pool: every call, in order; errors, timeouts,
    callbacks, crashes, initializer, maxtasksperchild, terminate; nothing
    left behind (no process, no ipc file, no shm). Blocking applies:
    test_pool_sync.c; tuples in bulk: test_pool_bulk.c.
*/
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <unistd.h>

#include "support.h"

#include "../integration/test_tasks.c"

static int gen_range(void *arg, mp_items_t *out)
{
    int *st = arg; /* st[0] next, st[1] end */
    if (st[0] >= st[1])
        return MP_EEOF;
    return mp_items_add_int(out, st[0]++);
}

static void test_pool_every_call_returns_values_in_order(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    mp_obj_t *args = mp_obj_new_array(), *v = NULL;
    mp_obj_array_add(args, mp_obj_new_int(12));
    assert_int_equal(mp_pool_apply(pool, "square", args, &v), 0);
    assert_int_equal(mp_obj_int(v), 144);
    mp_obj_destroy(&v);

    mp_async_t *ars[50];
    for (int i = 0; i < 50; i++) {
        mp_obj_t *a = mp_obj_new_array();
        mp_obj_array_add(a, mp_obj_new_int(i));
        assert_int_equal(mp_pool_apply_async(pool, "square", a, NULL, &ars[i]), 0);
        mp_obj_destroy(&a);
    }
    for (int i = 0; i < 50; i++) {
        assert_int_equal(mp_async_get_obj(ars[i], 10000, &v), 0);
        assert_int_equal(mp_obj_int(v), i * i);
        assert_true(mp_async_ready(ars[i]));
        assert_true(mp_async_successful(ars[i]));
        mp_obj_destroy(&v);
        mp_async_destroy(&ars[i]);
    }

    mp_items_t *in = tu_range(1000), *out = NULL;
    assert_int_equal(mp_pool_map(pool, "square", in, 7, &out), 0); /* 143 chunks */
    tu_assert_squares(out, 1000);
    mp_items_destroy(&out);
    assert_int_equal(mp_pool_map(pool, "square", in, 0, &out), 0); /* automatic */
    tu_assert_squares(out, 1000);
    mp_items_destroy(&out);

    mp_async_t *ar;
    const mp_items_t *got;
    assert_int_equal(mp_pool_map_async(pool, "square", in, NULL, &ar), 0);
    assert_int_equal(mp_async_get(ar, 10000, &got), 0);
    tu_assert_squares(got, 1000);
    size_t done = 0, total = 0;
    mp_async_progress(ar, &done, &total);
    assert_int_equal(done, 1000);
    assert_int_equal(total, 1000);
    mp_async_destroy(&ar);
    mp_items_destroy(&in);

    in = mp_items_new();
    for (int i = 0; i < 300; i++) {
        mp_items_add_tuple(in, 2);
        mp_items_add_int(in, i);
        mp_items_add_int(in, 1000 * i);
    }
    assert_int_equal(mp_pool_starmap(pool, "add", in, 0, &out), 0);
    assert_int_equal(mp_items_len(out), 300);
    for (int i = 0; i < 300; i++) {
        int64_t x;
        mp_items_int(out, (size_t)i, &x);
        assert_int_equal(x, 1001 * i);
    }
    mp_items_destroy(&out);
    assert_int_equal(mp_pool_starmap_async(pool, "add", in, NULL, &ar), 0);
    assert_int_equal(mp_async_get(ar, 10000, &got), 0);
    assert_int_equal(mp_items_len(got), 300);
    mp_async_destroy(&ar);
    mp_items_destroy(&in);

    int st[2] = {0, 500};
    mp_imap_t *it;
    assert_int_equal(mp_pool_imap(pool, "square", gen_range, st, 3, &it), 0);
    int64_t x;
    int i = 0, rc;
    while ((rc = mp_imap_next_int(it, 10000, &x)) == 0) {
        assert_int_equal(x, (int64_t)i * i);
        i++;
    }
    assert_int_equal(rc, MP_EEOF);
    assert_int_equal(i, 500);
    mp_imap_destroy(&it);

    st[0] = 0;
    st[1] = 500;
    assert_int_equal(mp_pool_imap_unordered(pool, "square", gen_range, st, 1, &it), 0);
    char seen[500] = {0};
    for (i = 0; (rc = mp_imap_next_int(it, 10000, &x)) == 0; i++) {
        int64_t root = 0;
        while (root * root < x)
            root++;
        assert_true(root < 500 && root * root == x && !seen[root]);
        seen[root] = 1;
    }
    assert_int_equal(rc, MP_EEOF);
    assert_int_equal(i, 500);
    mp_imap_destroy(&it);

    mp_obj_destroy(&args);
    assert_int_equal(mp_pool_close(pool), 0);
    assert_int_equal(mp_pool_apply(pool, "square", NULL, &v), MP_ESTATE);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
    mp_pool_destroy(&pool); /* safe twice */
}

static void test_pool_task_errors_reach_the_caller_with_code_and_message(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    mp_items_t *in = tu_range(10), *out = NULL;
    assert_int_equal(mp_pool_map(pool, "even_only", in, 3, &out), MP_ETASK);
    assert_int_equal(mp_items_len(out), 10);
    assert_int_equal(mp_items_nerrors(out), 5);
    for (size_t i = 0; i < 10; i++) {
        const mp_task_error_t *e = mp_items_error(out, i);
        if (i % 2 == 0) {
            int64_t v;
            assert_null(e);
            assert_int_equal(mp_items_int(out, i, &v), 0);
            assert_int_equal(v, (int64_t)i);
        } else {
            assert_non_null(e);
            assert_int_equal(e->code, MP_ETASK);
            assert_int_equal(e->task_code, 42);
            assert_int_equal(e->index, i);
            assert_string_equal(e->task, "even_only");
            char want[32];
            snprintf(want, sizeof want, "odd input %zu", i);
            assert_string_equal(e->message, want);
            assert_true(e->pid > 0);
            assert_int_equal(mp_items_type(out, i), MP_OBJ_NIL);
        }
    }
    mp_items_destroy(&out);
    mp_items_destroy(&in);

    /* wrong argument type: MP_EBADARGS naming the argument */
    mp_obj_t *args = mp_obj_new_array(), *v = NULL;
    mp_obj_array_add(args, mp_obj_new_str("seven"));
    mp_async_t *ar;
    assert_int_equal(mp_pool_apply_async(pool, "square", args, NULL, &ar), 0);
    assert_int_equal(mp_async_get_obj(ar, 10000, &v), MP_EBADARGS);
    assert_false(mp_async_successful(ar));
    const mp_task_error_t *e = mp_async_error(ar);
    assert_non_null(e);
    assert_non_null(strstr(e->message, "argument 0: expected int, got str"));
    mp_async_destroy(&ar);
    mp_obj_destroy(&args);
    mp_pool_destroy(&pool);
}

static void test_pool_unknown_task_is_an_error_not_a_hang(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(1, NULL);
    mp_obj_t *v = NULL;
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_pool_apply(pool, "no_such_task", NULL, &v), MP_EUNKNOWNTASK);
    mp_items_t *in = tu_range(5), *out = NULL;
    assert_int_equal(mp_pool_map(pool, "no_such_task", in, 2, &out), MP_EUNKNOWNTASK);
    assert_int_equal(mp_items_nerrors(out), 5);
    assert_non_null(strstr(mp_items_error(out, 4)->message, "no_such_task"));
    assert_true(tu_now_ms() - t0 < 2000);
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

static void test_pool_get_times_out_then_succeeds(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(1, NULL);
    mp_obj_t *args = mp_obj_new_array(), *v = NULL;
    mp_obj_array_add(args, mp_obj_new_int(400));
    mp_obj_array_add(args, mp_obj_new_int(77));
    mp_async_t *ar;
    assert_int_equal(mp_pool_apply_async(pool, "sleep_ms", args, NULL, &ar), 0);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_async_get_obj(ar, 100, &v), MP_ETIMEDOUT);
    uint64_t waited = tu_now_ms() - t0;
    assert_true(waited >= 95 && waited < 350);
    assert_int_equal(mp_async_wait(ar, 0), MP_ETIMEDOUT);
    assert_false(mp_async_ready(ar));
    assert_int_equal(mp_async_get_obj(ar, 10000, &v), 0);
    assert_int_equal(mp_obj_int(v), 77);
    mp_obj_destroy(&v);
    mp_async_destroy(&ar);
    mp_obj_destroy(&args);
    mp_pool_destroy(&pool);
}

static int failing_callback(mp_async_t *r, void *arg)
{
    (void)r;
    (*(int *)arg)++;
    return -1;
}

static int error_callback(mp_async_t *r, const mp_task_error_t *e, void *arg)
{
    (void)r;
    ((int *)arg)[1] = e->task_code;
    return 0;
}

static void test_pool_failing_callback_does_not_hang_the_pool(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(1, NULL);
    int calls[2] = {0, 0};
    mp_call_options_t co = {
        .callback = failing_callback, .error_callback = error_callback, .arg = calls};
    mp_items_t *in = tu_range(20);
    mp_async_t *ar;
    assert_int_equal(mp_pool_map_async(pool, "square", in, &co, &ar), 0);
    const mp_items_t *got;
    assert_int_equal(mp_async_get(ar, 10000, &got), 0);
    mp_async_destroy(&ar);
    mp_items_destroy(&in);
    /* the pool still works, and the failure was counted */
    mp_obj_t *args = mp_obj_new_array(), *v = NULL;
    mp_obj_array_add(args, mp_obj_new_int(3));
    assert_int_equal(mp_pool_apply_async(pool, "even_only", args, &co, &ar), 0);
    assert_int_equal(mp_async_get_obj(ar, 10000, &v), MP_ETASK);
    mp_async_destroy(&ar);
    assert_int_equal(mp_pool_apply(pool, "square", args, &v), 0);
    assert_int_equal(mp_obj_int(v), 9);
    mp_obj_destroy(&v);
    mp_obj_destroy(&args);
    mp_pool_close(pool);
    mp_pool_join(pool); /* callbacks have all run */
    assert_int_equal(calls[0], 1);
    assert_int_equal(calls[1], 42);
    assert_int_equal(mp_pool_callback_errors(pool), 1);
    mp_pool_destroy(&pool);
}

/* A callback runs on a thread of its own: one that takes longer than the
   pool's heartbeat liveness (3 x 500 ms here) delays only the callbacks
   after it. Before, it ran on the pool's I/O thread, the broker took the
   silent pool for gone, and every call in flight failed (BROKER_LOST). */
static int slow_callback(mp_async_t *r, void *arg)
{
    (void)r;
    int *state = arg;
    __atomic_store_n(&state[0], 1, __ATOMIC_SEQ_CST); /* sleeping */
    usleep(2500000);
    __atomic_store_n(&state[0], 2, __ATOMIC_SEQ_CST); /* done */
    return 0;
}

static void test_pool_slow_callback_does_not_stop_the_pool(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    int cb[1] = {0};
    mp_call_options_t co = {.callback = slow_callback, .arg = cb};
    mp_obj_t *args = mp_obj_new_array(), *v = NULL;
    mp_obj_array_add(args, mp_obj_new_int(6));
    mp_async_t *slow;
    assert_int_equal(mp_pool_apply_async(pool, "square", args, &co, &slow), 0);
    TU_WAIT_UNTIL(__atomic_load_n(&cb[0], __ATOMIC_SEQ_CST) != 0, 2000);
    assert_int_equal(__atomic_load_n(&cb[0], __ATOMIC_SEQ_CST), 1);
    assert_false(mp_async_ready(slow)); /* ready once its callback returned */
    /* while it sleeps: 2 s of calls, across the liveness limit */
    for (int round = 0; round < 10; round++) {
        mp_items_t *in = tu_range(1000), *out = NULL;
        assert_int_equal(mp_pool_map(pool, "square", in, 0, &out), 0);
        tu_assert_squares(out, 1000);
        mp_items_destroy(&in);
        mp_items_destroy(&out);
        assert_int_equal(mp_pool_apply(pool, "square", args, &v), 0);
        assert_int_equal(mp_obj_int(v), 36);
        mp_obj_destroy(&v);
        usleep(200000);
    }
    assert_int_equal(__atomic_load_n(&cb[0], __ATOMIC_SEQ_CST), 1); /* still sleeping */
    assert_int_equal(mp_async_get_obj(slow, 10000, &v), 0);
    assert_int_equal(__atomic_load_n(&cb[0], __ATOMIC_SEQ_CST), 2); /* before get returned */
    assert_int_equal(mp_obj_int(v), 36);
    mp_obj_destroy(&v);
    mp_async_destroy(&slow);
    mp_pool_close(pool);
    assert_int_equal(mp_pool_join(pool), 0); /* waits for the callback too */
    assert_int_equal(__atomic_load_n(&cb[0], __ATOMIC_SEQ_CST), 2);
    assert_int_equal(mp_pool_callback_errors(pool), 0);
    mp_obj_destroy(&args);
    mp_pool_destroy(&pool);
}

/* A program killed with its pool open cannot remove the pool's ipc socket;
   the pool's worker (its child, re-parented) does, and exits. */
static void test_pool_killed_program_leaves_no_ipc_file(void **state)
{
    (void)state;
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* its orphans come to us */
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(ready[0]);
        mp_pool_options_t o = {.processes = 1};
        mp_pool_t *pool = NULL;
        if (mp_pool_new(&o, &pool))
            _exit(1);
        ssize_t w = write(ready[1], "r", 1);
        (void)w;
        for (;;)
            pause(); /* until killed */
    }
    close(ready[1]);
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_int_equal(tu_ipc_files(child, NULL, 0), 1);
    kill(child, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(TU_WAIT_UNTIL(tu_ipc_files(child, NULL, 0) == 0, 5000));
    /* the worker (and its zygote and executors, whose parent dies with it)
       exit: reap what comes to us */
    TU_WAIT_UNTIL(waitpid(-1, &status, WNOHANG) < 0 && errno == ECHILD, 5000);
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

static void test_pool_crashing_task_is_worker_lost_after_3_attempts(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    mp_items_t *in = tu_pairs_with(40, 13), *out = NULL;
    assert_int_equal(mp_pool_starmap(pool, "crash_on", in, 10, &out), MP_EWORKERLOST);
    assert_int_equal(mp_items_len(out), 40);
    assert_int_equal(mp_items_nerrors(out), 1);
    tu_assert_indexes(out, 40, 13);
    const mp_task_error_t *e = mp_items_error(out, 13);
    assert_non_null(e);
    assert_int_equal(e->code, MP_EWORKERLOST);
    assert_non_null(strstr(e->message, "after 3 attempts"));
    assert_non_null(strstr(e->message, "SIGSEGV"));
    mp_items_destroy(&out);

    /* a task killed once is retried and the map is complete and exact */
    mp_items_destroy(&in);
    in = tu_pairs_with(1000, 500);
    assert_int_equal(mp_pool_starmap(pool, "die_once", in, 50, &out), 0);
    tu_assert_indexes(out, 1000, -1);
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

static void test_pool_initializer_runs_in_every_executor(void **state)
{
    (void)state;
    mp_obj_t *initargs = mp_obj_new_array();
    mp_obj_array_add(initargs, mp_obj_new_int(4242));
    mp_pool_options_t o = {.initializer = "set_init", .initargs = initargs};
    mp_pool_t *pool = tu_new_pool(2, &o);
    mp_obj_destroy(&initargs);
    mp_items_t *in = tu_range(64), *out = NULL;
    assert_int_equal(mp_pool_map(pool, "get_init", in, 1, &out), 0);
    for (size_t i = 0; i < 64; i++) {
        int64_t v;
        mp_items_int(out, i, &v);
        assert_int_equal(v, 4242);
    }
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

static void test_pool_maxtasksperchild_replaces_executors(void **state)
{
    (void)state;
    mp_pool_options_t o = {.maxtasksperchild = 1};
    mp_pool_t *pool = tu_new_pool(2, &o);
    mp_items_t *in = tu_range(12), *out = NULL;
    assert_int_equal(mp_pool_map(pool, "get_pid", in, 1, &out), 0);
    int distinct = 0;
    for (size_t i = 0; i < 12; i++) {
        int64_t v, w;
        mp_items_int(out, i, &v);
        bool seen = false;
        for (size_t k = 0; k < i; k++) {
            mp_items_int(out, k, &w);
            seen = seen || w == v;
        }
        distinct += !seen;
    }
    assert_int_equal(distinct, 12); /* one chunk per executor life */
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

static void test_pool_terminate_ends_outstanding_calls(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(1, NULL);
    mp_items_t *in = tu_repeat(20, 200);
    mp_async_t *ar;
    assert_int_equal(mp_pool_map_async(pool, "sleep_ms", in, NULL, &ar), 0);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(mp_pool_terminate(pool), 0);
    const mp_items_t *got;
    assert_int_equal(mp_async_get(ar, 5000, &got), MP_ECANCELLED);
    assert_true(tu_now_ms() - t0 < 3000);
    mp_async_destroy(&ar);
    mp_items_destroy(&in);
    assert_int_equal(mp_pool_join(pool), 0);
    mp_pool_destroy(&pool);
}

static void test_pool_progress_counts_a_running_map(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    mp_items_t *in = tu_range(2000);
    mp_async_t *ar;
    mp_call_options_t co = {.chunksize = 50};
    assert_int_equal(mp_pool_map_async(pool, "slow_square", in, &co, &ar), 0);
    size_t done = 0, total = 0, last = 0;
    bool saw_partial = false;
    while (mp_async_wait(ar, 20) == MP_ETIMEDOUT) {
        mp_async_progress(ar, &done, &total);
        assert_int_equal(total, 2000);
        assert_true(done >= last && done <= 2000);
        saw_partial = saw_partial || (done > 0 && done < 2000);
        last = done;
    }
    assert_true(saw_partial);
    const mp_items_t *got;
    assert_int_equal(mp_async_get(ar, 0, &got), 0);
    tu_assert_squares(got, 2000);
    mp_async_destroy(&ar);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

/* Pauses 1.8 s (beyond 3 heartbeats) before item 3, fails at item 6. */
static int slow_then_failing_gen(void *arg, mp_items_t *out)
{
    int *next = arg;
    if (*next == 3)
        usleep(1800000);
    if (*next == 6)
        return MP_EBADARGS;
    return mp_items_add_int(out, (*next)++);
}

static void test_pool_imap_generator_may_block_and_its_error_ends_the_call(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(1, NULL);
    int next = 0;
    mp_imap_t *it;
    assert_int_equal(mp_pool_imap(pool, "square", slow_then_failing_gen, &next, 1, &it), 0);
    int64_t v;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(mp_imap_next_int(it, 10000, &v), 0);
        assert_int_equal(v, (int64_t)i * i);
    }
    assert_int_equal(mp_imap_next_int(it, 10000, &v), MP_EBADARGS);
    mp_imap_destroy(&it);
    mp_pool_destroy(&pool);
}

/* 0, 1, 2, ... but -1 in place of st[2] (a poison for crash_if_negative) */
static int gen_range_with_poison(void *arg, mp_items_t *out)
{
    int *st = arg; /* st[0] next, st[1] end, st[2] the poisoned index */
    if (st[0] >= st[1])
        return MP_EEOF;
    int i = st[0]++;
    return mp_items_add_int(out, i == st[2] ? -1 : i);
}

/* A fast generator with chunksize 1 keeps a backlog, so consecutive items
   travel as one chunk (send.c, pump_imap); each must still come back once,
   at its own index, with its own value or error. */
static void test_pool_imap_chunksize1_batches_keep_items_exact(void **state)
{
    (void)state;
    enum { N = 2000 };
    mp_pool_t *pool = tu_new_pool(2, NULL);
    int st[3] = {0, N, -1};
    mp_imap_t *it;
    int64_t x;
    int i, rc;

    /* unordered: every index exactly once */
    assert_int_equal(mp_pool_imap_unordered(pool, "square", gen_range, st, 1, &it), 0);
    static char seen[N];
    memset(seen, 0, sizeof seen);
    for (i = 0; (rc = mp_imap_next_int(it, 10000, &x)) == 0; i++) {
        int64_t root = 0;
        while (root * root < x)
            root++;
        assert_true(root < N && root * root == x && !seen[root]);
        seen[root] = 1;
    }
    assert_int_equal(rc, MP_EEOF);
    assert_int_equal(i, N);
    mp_imap_destroy(&it);

    /* ordered, chunksize 1 and 3 (whole chunks coalesce): exact order */
    for (size_t cs = 1; cs <= 3; cs += 2) {
        st[0] = 0;
        assert_int_equal(mp_pool_imap(pool, "square", gen_range, st, cs, &it), 0);
        for (i = 0; (rc = mp_imap_next_int(it, 10000, &x)) == 0; i++)
            assert_int_equal(x, (int64_t)i * i);
        assert_int_equal(rc, MP_EEOF);
        assert_int_equal(i, N);
        mp_imap_destroy(&it);
    }

    /* task errors: each odd item fails alone, with its own index */
    st[0] = 0;
    assert_int_equal(mp_pool_imap(pool, "even_only", gen_range, st, 1, &it), 0);
    for (i = 0; (rc = mp_imap_next_int(it, 10000, &x)) != MP_EEOF; i++) {
        if (i % 2 == 0) {
            assert_int_equal(rc, 0);
            assert_int_equal(x, i);
            assert_null(mp_imap_error(it));
        } else {
            assert_int_equal(rc, MP_ETASK);
            const mp_task_error_t *e = mp_imap_error(it);
            assert_non_null(e);
            assert_int_equal(e->index, (size_t)i);
            assert_int_equal(e->task_code, 42);
            char want[32];
            snprintf(want, sizeof want, "odd input %d", i);
            assert_string_equal(e->message, want);
        }
    }
    assert_int_equal(i, N);
    mp_imap_destroy(&it);

    /* an item that kills its executor, in the middle of a batch: it alone
       ends as WORKER_LOST (after the broker's retries), the rest complete */
    int poison[3] = {0, N, 1500};
    assert_int_equal(mp_pool_imap(pool, "crash_if_negative", gen_range_with_poison, poison, 1, &it),
                     0);
    for (i = 0; (rc = mp_imap_next_int(it, 20000, &x)) != MP_EEOF; i++) {
        if (i == poison[2]) {
            assert_int_equal(rc, MP_EWORKERLOST);
            const mp_task_error_t *e = mp_imap_error(it);
            assert_non_null(e);
            assert_int_equal(e->index, (size_t)i);
            assert_non_null(strstr(e->message, "after 3 attempts"));
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(x, i);
        }
    }
    assert_int_equal(i, N);
    mp_imap_destroy(&it);
    mp_pool_destroy(&pool);
}

/* A map's results go into place as they arrive (map_out.c): chunks
   that finish before the first one wait, then land at their own indexes,
   with their errors; through mp_pool_starmap (the caller's list is sent
   without a copy) and mp_pool_starmap_async (a copy). */
static void test_pool_map_results_arriving_out_of_order_land_in_place(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    enum { N = 60, BAD = 17 };
    mp_items_t *in = mp_items_new();
    for (int i = 0; i < N; i++) {
        if (i == BAD) { /* not an argument tuple: this item alone fails */
            mp_items_add_int(in, i);
            continue;
        }
        mp_items_add_tuple(in, 2);
        mp_items_add_int(in, i < 5 ? 60 : 0); /* chunk 0 (chunksize 5) ends last */
        mp_items_add_int(in, i);
    }
    for (int async = 0; async < 2; async++) {
        mp_items_t *out = NULL;
        mp_async_t *ar = NULL;
        const mp_items_t *r;
        if (async) {
            mp_call_options_t co = {.chunksize = 5};
            assert_int_equal(mp_pool_starmap_async(pool, "sleep_ms", in, &co, &ar), 0);
            assert_int_not_equal(mp_async_get(ar, 10000, &r), 0);
        } else {
            assert_int_not_equal(mp_pool_starmap(pool, "sleep_ms", in, 5, &out), 0);
            r = out;
        }
        assert_int_equal(mp_items_len(r), N);
        assert_int_equal(mp_items_nerrors(r), 1);
        assert_non_null(mp_items_error(r, BAD));
        tu_assert_indexes(r, N, BAD);
        mp_items_destroy(&out);
        mp_async_destroy(&ar);
    }
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

/* A map large enough for the lists' own mappings (items.c, large buffers)
   whose executor is killed in the middle of a chunk: the broker splits the
   chunk, its pieces come back apart, and every result is there once. */
static void test_pool_large_map_whose_executor_dies_keeps_every_result_once(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    enum { N = 600000 }; /* a 4.8 MB index: mapped */
    mp_items_t *in = tu_pairs_with(N, N / 2 + 7), *out = NULL;
    assert_int_equal(mp_pool_starmap(pool, "die_once", in, 0, &out), 0);
    assert_int_equal(mp_items_len(out), N);
    assert_int_equal(mp_items_nerrors(out), 0);
    int64_t *v = malloc(N * sizeof *v);
    assert_non_null(v);
    assert_int_equal(mp_items_ints(out, v), 0);
    for (int i = 0; i < N; i++)
        if (v[i] != i)
            fail_msg("item %d is %lld", i, (long long)v[i]);
    free(v);
    mp_items_destroy(&out);
    mp_items_destroy(&in);
    mp_pool_destroy(&pool);
}

static void test_pool_whose_worker_process_dies_fails_instead_of_hanging(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    mp_items_t *in = tu_repeat(200, 50);
    mp_call_options_t co = {.chunksize = 1};
    mp_async_t *ar;
    assert_int_equal(mp_pool_map_async(pool, "sleep_ms", in, &co, &ar), 0);
    mp_process_t *kids[4];
    assert_int_equal(mp_active_children(kids, 4), 1); /* the pool's worker */
    kill(mp_process_pid(kids[0]), SIGKILL);
    uint64_t t0 = tu_now_ms();
    const mp_items_t *got;
    assert_int_equal(mp_async_get(ar, 10000, &got), MP_EWORKERLOST);
    assert_true(tu_now_ms() - t0 < 3000);
    mp_async_destroy(&ar);
    mp_items_destroy(&in);
    mp_obj_t *v = NULL;
    assert_int_equal(mp_pool_apply(pool, "square", NULL, &v), MP_EWORKERLOST);
    mp_pool_destroy(&pool);
}

static int gen_50s(void *arg, mp_items_t *out)
{
    int *left = arg;
    if (*left <= 0)
        return MP_EEOF;
    (*left)--;
    return mp_items_add_int(out, 50);
}

/* An imap whose pool loses its worker: every item the generator gave (in
   flight, or queued behind a full window) ends with an error, then the end. */
static void test_pool_imap_whose_worker_process_dies_ends_every_item(void **state)
{
    (void)state;
    mp_pool_t *pool = tu_new_pool(2, NULL);
    int left = 100000;
    mp_imap_t *it;
    assert_int_equal(mp_pool_imap(pool, "sleep_ms", gen_50s, &left, 1, &it), 0);
    int64_t x;
    assert_int_equal(mp_imap_next_int(it, 10000, &x), 0); /* running */
    assert_int_equal(x, 50);
    mp_process_t *kids[4];
    assert_int_equal(mp_active_children(kids, 4), 1); /* the pool's worker */
    kill(mp_process_pid(kids[0]), SIGKILL);
    size_t n = 1, lost = 0;
    int rc;
    while ((rc = mp_imap_next_int(it, 10000, &x)) != MP_EEOF) {
        assert_true(rc == 0 || rc == MP_EWORKERLOST);
        lost += rc == MP_EWORKERLOST;
        n++;
    }
    size_t returned, submitted;
    mp_imap_progress(it, &returned, &submitted);
    assert_int_equal(returned, n);
    assert_int_equal(submitted, n);
    assert_true(lost > 0);
    mp_imap_destroy(&it);
    mp_pool_destroy(&pool);
}

int main(int argc, char **argv)
{
    mp_bootstrap(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pool_every_call_returns_values_in_order, tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_task_errors_reach_the_caller_with_code_and_message,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_unknown_task_is_an_error_not_a_hang, tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_get_times_out_then_succeeds, tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_failing_callback_does_not_hang_the_pool,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_slow_callback_does_not_stop_the_pool, tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_killed_program_leaves_no_ipc_file, tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_crashing_task_is_worker_lost_after_3_attempts,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_initializer_runs_in_every_executor, tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_maxtasksperchild_replaces_executors, tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_terminate_ends_outstanding_calls, tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_progress_counts_a_running_map, tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_imap_generator_may_block_and_its_error_ends_the_call,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_imap_chunksize1_batches_keep_items_exact,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_map_results_arriving_out_of_order_land_in_place,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_large_map_whose_executor_dies_keeps_every_result_once,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_whose_worker_process_dies_fails_instead_of_hanging,
                                  tu_pool_teardown),
        cmocka_unit_test_teardown(test_pool_imap_whose_worker_process_dies_ends_every_item,
                                  tu_pool_teardown),
    };
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
